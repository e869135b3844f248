/* Observables: what is measured on the ensemble at every output time, as
 * per-block sums over particles (doc/file-format.md).  A block's sums for
 * one output time form a record of obs_layout.record doubles; observable o
 * occupies width[o] doubles at offset[o] (width 0: not measured). */
#ifndef NRDIFF_OBSERVE_H
#define NRDIFF_OBSERVE_H

enum obs_id {
  OBS_COUNT,            /* particles */
  OBS_POSITION,         /* y (d) */
  OBS_NORM2,            /* |y|^2 */
  OBS_PROJECTION,       /* u_k . y, u_k unit class directions (K) */
  OBS_PROJECTION2,      /* (u_k . y)^2 (K) */
  OBS_SCORE_NORM2,      /* |s|^2 */
  OBS_SPECIATION_PHI,   /* sum_k r_k^2 (mixture score, labelled empirical) */
  OBS_COMMITMENT_HIST,  /* histogram of (K max r_k - 1)/(K - 1) */
  OBS_PARTICIPATION_Y2, /* sum_mu w_mu^2 (empirical score only) */
  /* Protocol observables (protocol.h), present only when their protocol
   * runs at the grid point (obs_layout_add): */
  OBS_LOG_PE,           /* ln p^e_t(x), x drawn from p^e_t (collapse) */
  OBS_FWD_DATA_NORM2,   /* |x_t|^2, forward paths from data (forward) */
  OBS_FWD_DATA_CORR,    /* per reference time s: x_t . x_s, |x_s|^2 */
  OBS_FWD_STAT_NORM2,   /* the same from the stationary law */
  OBS_FWD_STAT_CORR,
  OBS_FINAL,            /* end-of-run sums (protocol.h), last output only */
  OBS_N
};

enum { OBS_HIST_BINS = 20 };

typedef struct {
  const char *name;        /* dataset group name in the output */
  const char *description; /* what is averaged over particles */
  const char *unit;
} obs_info;

const obs_info *obs_describe(int o);

typedef struct {
  int d, K;
  int empirical;     /* empirical score: Y2 measured */
  int classes;       /* class weights r_k: phi and commitment measured */
  int width[OBS_N];  /* doubles per observable, 0 if absent */
  int offset[OBS_N]; /* within a record */
  int record;        /* doubles per (output time, block) */
  double *dirs;      /* K x d unit class directions (owned) */
} obs_layout;

/* The score behind the observables: the exact mixture (class
 * responsibilities r_k), the empirical score of unlabelled training points
 * (participation Y2), or of labelled ones (both: r_k are the class weights
 * sum of w_mu over class k, doc/theory.md (10.1)). */
enum obs_score { OBS_MIXTURE, OBS_EMPIRICAL, OBS_EMPIRICAL_CLASSES };

/* means: K x d class means (their directions are used; a zero mean gives a
 * zero direction); score: enum obs_score. */
int obs_layout_init(obs_layout *L, int d, int K, const double *means,
                    int score);
void obs_layout_free(obs_layout *L);
/* Give observable o (absent so far) `width` doubles at the end of the
 * record. */
void obs_layout_add(obs_layout *L, int o, int width);

/* Add `count` particles to a block's record.  Y, S: count x d positions and
 * scores; resp: count x K class responsibilities (L->classes) or NULL;
 * y2: count participations (L->empirical) or NULL.  score_ok = 0 (singular
 * score at this time) makes the score observables NaN. */
void obs_accumulate(const obs_layout *L, long count, const double *Y,
                    const double *S, const double *resp, const double *y2,
                    int score_ok, double *record);

#endif
