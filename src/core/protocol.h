/* Measurement protocols (doc/theory.md sections 5.6, 6.3 and 7): what runs beside the main
 * reverse-time ensemble of a grid point, particle by particle.
 *
 *   speciation  at each branch time t_b, particle i's trajectory is cloned:
 *               the clone continues with its own noise while the original
 *               goes on with its own, and at t_min their classes are
 *               compared (phi(t_b)).  The original serves as the first
 *               clone of every pair: the two futures are independent given
 *               x_{t_b}, which is all the estimator needs.
 *   collapse    the same clones compared by nearest training point
 *               (phi_C), the nearest-point freezing time of every main
 *               trajectory, and ln p^e_t on direct samples of p^e_t (the
 *               excess entropy f^e of doc/theory.md (6.9)).  Y_2 is an
 *               observable of the main ensemble.
 *   uturn       for each T_u, particle i starts from a data point x_0
 *               noised exactly to T_u and runs the reverse SDE to t_min;
 *               C_UT compares x_0 with the end point.
 *   forward     forward (noising) paths from the data and from the
 *               stationary law, with the two-time correlations
 *               x_t . x_s at reference times s.
 *
 * Everything a particle carries (its clones, U-turn and forward positions,
 * its freezing state) lives in one state row of `width` doubles, and end-of-
 * run sums in the OBS_FINAL slice of the block records, so checkpoints and
 * the block-order reduction treat protocols like the main ensemble: results
 * are independent of the rank count and restart exactly.  Every random draw
 * is keyed by (particle id, protocol, set, step).  Numerics only: no MPI,
 * no HDF5.  (protocol.c: layout and stepping; protocol_theory.c: the exact
 * values; protocol_results.c: the derived results, from descriptor
 * tables.) */
#ifndef NRDIFF_PROTOCOL_H
#define NRDIFF_PROTOCOL_H

#include "core/grid.h"
#include "core/integrate.h"
#include "core/model.h"
#include "core/observe.h"
#include "config/params.h"

typedef struct {
  int d, K;
  long steps, n_train;
  int speciation, collapse, uturn, forward; /* active at this grid point */
  int n_branch;       /* clone sets (speciation or collapse) */
  long *branch_step;  /* grid step of each t_b (reverse index) */
  double *branch_time;
  int n_uturn;
  long *uturn_step;   /* grid step of each T_u */
  double *uturn_time;
  int uturn_train;    /* x_0 = training points (else mixture samples) */
  int n_ref;
  long *ref_step;     /* grid index of each reference time s */
  double *ref_time;
  /* state row: main position at 0, then these offsets (doubles) */
  int width, off_clone, off_uturn, off_fwd, off_ref, off_freeze;
  /* OBS_FINAL slice: count, classes agree [n_branch], nearest points agree
   * [n_branch], freezing time sum and square sum [2], U-turn sums
   * [n_uturn][uturn_stride] = sum x.y/|x|^2, sum x.y, sum |x|^2, then per
   * class k: count, the same three sums */
  int final_width, f_count, f_class, f_nearest, f_freeze, f_uturn;
  int uturn_stride;
} proto_layout;

/* From the parameters, one grid point and the time grid t[0..steps]
 * (decreasing).  K = number of mixture components. */
int proto_layout_init(proto_layout *X, const nrd_params *p,
                      const grid_point *g, int K, const double *t,
                      long steps);
void proto_layout_free(proto_layout *X);
/* Add the protocol observables to a layout built by obs_layout_init. */
void proto_layout_observables(const proto_layout *X, obs_layout *L);
/* Per grid point, while it runs: matrices and scratch. */
typedef struct {
  const proto_layout *lay;
  const model *m;
  long bs;             /* largest block */
  double *Eu, *Lu;     /* n_uturn x d x d: e^{-A T_u}, chol Delta_{T_u} */
  double *E0, *L0;     /* forward start at t_min (L0 NULL when t_min = 0) */
  double *Ls;          /* chol S */
  double *Ef, *Lf, hf; /* forward step of size hf */
  score_mixture cls;   /* the classifier: mixture posterior at t_min */
  int cls_ok;
  double *X, *S, *Xi, *tmp, *X0, *logp, *resp, *work, *dots, *a2;
  int *cls_main, *near_main, *near_now, *labels;
} proto_run;

int proto_run_init(proto_run *R, const proto_layout *X, const model *m,
                   const score_model *s, const double *t, long block_size);
void proto_run_free(proto_run *R);

/* One block at step k (state at forward time t[k]), after the main
 * ensemble was evaluated (main_nearest from that evaluation, or NULL) and
 * before it is stepped; ops and cur are set for step k. */
typedef struct {
  long k;
  long first, count;       /* global particle ids of the block */
  double *state;           /* count x width */
  const double *main;      /* count x d main positions at t[k] */
  const int *main_nearest; /* empirical score: nearest points, or NULL */
  int score_ok;            /* cur is valid at t[k] */
  double *rec_out;         /* record at output time t[k], or NULL */
  double *rec_fwd;         /* record at output time t[steps - k], or NULL */
  double *rec_final;       /* record at the last output time */
} proto_block;

int proto_block_step(proto_run *R, score_model *cur, const step_ops *ops,
                     const obs_layout *L, const double *t,
                     const proto_block *b);

/* ------------------------------------------------ theory and results */

typedef struct {
  double alpha;      /* ln n / d (collapse) */
  double *phi;       /* n_branch: F(kappa_{t_b}) (two symmetric classes) */
  double *cut_gauss; /* n_uturn: Gaussian closed form, Sigma_0 of the data */
  double *cut_gm2;   /* n_uturn: two-class closed form (A = I, isotropic) */
  double *corr_data, *corr_stat; /* n_ref x n_out: doc/theory.md (7.8) */
  double *fe_offset; /* n_out: alpha + (1/2d) ln det(2 pi e Delta_t) */
} proto_theory;

int proto_theory_build(proto_theory *th, const proto_layout *X,
                       const model *m, long n_out, const double *out_time);
void proto_theory_free(proto_theory *th);

/* A derived result: a 1-D or 2-D dataset of a protocol's group. */
typedef struct {
  const char *group, *name, *description;
  int rank;
  long dims[2];
  double *data; /* rank 0 only */
} proto_dataset;

typedef struct {
  int n;
  proto_dataset v[48];
} proto_results;

/* The results of a grid point from its block sums (n_out x B x record, on
 * the rank that has them; NULL elsewhere gives the same list of datasets
 * without data, for collective writes).  Errors are jackknife errors over
 * blocks (an_jackknife, analysis.h).  NRD_ERR_NOMEM (r then empty). */
int proto_results_build(proto_results *r, const proto_layout *X,
                        const proto_theory *th, const obs_layout *L,
                        long n_out, const double *out_time, long B,
                        const double *blocks);
void proto_results_free(proto_results *r);
/* A readable table of the results (rank 0). */
void proto_results_print(const proto_results *r, const proto_layout *X,
                         FILE *out);

#endif
