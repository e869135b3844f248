/* The driver's own parts, shared by its files (run.h is the public API):
 *   driver.c  run_simulation, as a list of phases: the run's context, the
 *             theory, the points, the agreement to end, reduce, report and
 *             write, the completion marker
 *   theory.c  every selected point's model checked and its theory, dealt
 *             round-robin to the ranks and broadcast
 *   point.c   one grid point on this rank: a set-up that does everything
 *             that can fail, a step loop, one free; the failure marks
 *   sync.c    stop signals and the per-step agreement of every rank
 *   report.c  what rank 0 prints: progress, each point, the summary */
#ifndef NRDIFF_RUNCTX_H
#define NRDIFF_RUNCTX_H

#include <stddef.h>

#include "config/params.h"
#include "core/diagnose.h"
#include "core/grid.h"
#include "core/model.h"
#include "core/dataset.h"
#include "core/observe.h"
#include "core/protocol.h"
#include "run/runstate.h"
#include "util/error.h"
#include "util/log.h"

/* Theory and metadata of a grid point, computed up front (prepare_theory). */
typedef struct {
  double rate, entropy; /* min Re sigma(A), tr(Q^T Q U) */
  double critical;      /* theory t_S or t_C (NaN if undefined) */
  /* t_S of the data behind an empirical score (NaN without classes): the
   * kappa_t = 1 or matrix criterion of its classes, and the class-free
   * criterion of its covariance (doc/theory.md (5.8), (5.9)) */
  double speciation, speciation_cov;
  double *phi_theory;   /* n_out: F(kappa_t) (two classes, mixture score) */
  double *norm2_theory; /* n_out: E|x_t|^2 under the exact p_t (mixture)
                           or p^e_t (empirical score) */
  int empirical, symmetric2, K;
  int score; /* enum obs_score: what the observables can measure */
  double *means;      /* K x d class means (the observables' directions) */
  proto_theory proto; /* the protocols' theory (protocol.h) */
  step_check check;   /* the step-size and no-op check (diagnose.h) */
} point_theory;

/* Progress of rank 0's own work, which plan_assign balanced against the
 * other ranks' (so its ETA is the run's). */
typedef struct {
  double total, done; /* estimated flops of rank 0's work items */
  double start, last;
  long steps_done; /* over all of rank 0's grid points */
  int points_done, points_total;
} progress;

/* The run on this rank: its description (read-only once built), every
 * point's state here, and what the ranks have agreed so far. */
typedef struct {
  const nrd_params *p;
  const run_plan *plan;
  data_set *data; /* data.source: file: the prepared data (run_data_load) */
  double t_start; /* nrd_log_elapsed() when the run began */
  double *t;      /* steps + 1 forward times, decreasing */
  long n_out, n_frames, n_traj;
  long *out_step, *frame_step, *traj_ids;
  double *out_time, *frame_time;
  long *out_index, *frame_index; /* steps + 1: index of step k, or -1 */
  int *owner;                    /* n_points x n_blocks */
  int *selected;                 /* n_points: runs in this invocation */
  int n_selected;
  run_shape shape;
  point_state *state;  /* n_points: this rank's share */
  proto_layout *proto; /* n_points: the protocols of each point */
  obs_layout *layout;  /* n_points: the observables of each selected point */
  progress progress;   /* rank 0's */
  long rounds;         /* synchronised steps so far (same on every rank) */
  double last_checkpoint;
  int *point_failed;     /* n_points: this rank saw the point fail (warned) */
  int stopped;           /* a stop was requested and checkpointed */
  char stop_reason[256]; /* why, as agreed by every rank */
  int failed;            /* this rank failed (local) */
  int peer_failed;       /* some rank failed (collective) */
} run_ctx;

/* A call whose failure ends this rank (out of memory while the run is set
 * up): NRD_ABORT saying where and why (nrd_error_trace). */
#define RUN_MUST(call)                                                         \
  do {                                                                         \
    int run_must_ = NRD_OK;                                                    \
    NRD_TRY(run_must_, call);                                                  \
    if (run_must_ != NRD_OK)                                                   \
      NRD_ABORT(NRD_EXIT_RUNTIME, "%s", nrd_error_trace());                    \
  } while (0)

/* -------------------------------------------------------------- data.c */

/* Collective: the data of data.source: file read and prepared on every rank
 * (NULL for data.source: mixture); a bad file is a collective usage error
 * (nrd_fatal) naming it. */
data_set *run_data_load(const nrd_params *p);
void run_data_free(data_set *D);
/* Rank 0 prints what the data are (file, points, classes, normalisation,
 * memory, digest); nothing for NULL. */
void run_data_describe(const data_set *D, const nrd_params *p);

/* ------------------------------------------------------------ driver.c */

/* Collective (nrd_fatal if the time grid cannot be built): the time grid,
 * output times and frames, trajectories, the work assignment over the
 * ranks (plan_assign; only_point >= 0: that point alone), every point's
 * protocols; the layouts and states follow in run_ctx_build_points. */
void run_ctx_build(run_ctx *c, const nrd_params *p, const run_plan *plan,
                   int only_point);
/* Each selected point's observables (from its theory: the class means) and
 * this rank's share of its blocks under c->owner. */
void run_ctx_build_points(run_ctx *c, const point_theory *th);
void run_ctx_free(run_ctx *c);
/* Collective: point i's records of every block, n_out x n_blocks x record
 * (malloc'd on every rank; the sums are rank 0's). */
double *point_blocks_reduce(const run_ctx *c, int i);

/* ------------------------------------------------------------ theory.c */

/* Collective: every selected point's model checked and its theory, on
 * every rank (n_points; theory_free).  A bad input is a collective usage
 * error naming the first bad point. */
point_theory *prepare_theory(const run_ctx *c);
void theory_free(point_theory *th, int n_points);

/* ------------------------------------------------------------- point.c */

/* This rank's share of grid point `point` under c->owner: its blocks, their
 * records and sampled trajectories (the positions come when it runs). */
void point_state_build(const run_ctx *c, int point, point_state *w);
void point_state_free(point_state *w);
/* The estimated flops of this rank's share of the point (progress). */
double point_share_cost(const run_ctx *c, int point);

/* One grid point while it runs on this rank (point.c).  Not to be copied
 * once set up (the score models point into it). */
typedef struct {
  run_ctx *c;
  int index;             /* the grid point */
  point_state *w;        /* this rank's share of it */
  const obs_layout *L;   /* its observables */
  const proto_layout *X; /* its protocols */
  double cost;           /* point_share_cost */
  long kmin;             /* the first step to make; steps + 1: none */
  model m;
  int ode, protocols;   /* probability-flow ODE; a protocol runs */
  score_model cur, nxt; /* the score at t[k] and (ODE) at t[k + 1] */
  step_ops ops;         /* the step's maps */
  step_fold fold;       /* the empirical score's linear part, folded */
  proto_run prun;       /* the protocols' matrices and scratch */
  double *Ymain, *Ystar, *S0, *S1, *Xi, *tmp, *resp, *y2, *work;
  int *nearest;     /* block-sized scratch */
  double key_value; /* the headline observable, last output time */
} point_run;

/* Everything that can fail, for this rank's blocks of the point: NRD_OK,
 * or a status with nrd_error_trace() saying where and why.  Nothing to do
 * (no blocks left) is NRD_OK with r->kmin = steps + 1. */
int point_setup(point_run *r, run_ctx *c, int point);
/* Collective (run_sync at every step): run the blocks from where each
 * stands to the end, or until a stop (c->stopped) or another rank's
 * failure (c->peer_failed).  A numerical failure of the point marks its
 * blocks (point_failed_at) and is NRD_OK; any other status (a protocol's
 * step, with nrd_error_trace()) is the run's failure.  pr: rank 0's
 * progress, or NULL. */
int point_steps(point_run *r, progress *pr);
/* After any of the above (also a failed set-up). */
void point_free(point_run *r);
/* The three in a row. */
int run_point(run_ctx *c, int point, progress *pr);

/* The first output time at which a block of the point failed (its |y|^2
 * sum is not finite: the failure mark, or an overflow), or -1.  blocks:
 * n_out x B x record, as reduced. */
long point_failed_at(const obs_layout *L, long n_out, long B,
                     const double *blocks);

/* -------------------------------------------------------------- sync.c */

enum { SYNC_CONTINUE, SYNC_STOPPED, SYNC_FAILED, SYNC_ALL_DONE };

/* Collective, once per step of every rank (ranks without work call it too
 * until everyone is done): agree on whether to checkpoint and whether to
 * stop.  A stop (signal on any rank, the stop file, run.max_wall_time)
 * writes a checkpoint first and sets c->stopped and c->stop_reason.  The
 * state must be at a step boundary.  finished: this rank has no work left;
 * c->failed: this rank failed. */
int run_sync(run_ctx *c, int finished);
/* Collective, after this rank's points: run_sync until every rank is done
 * or a stop is agreed.  0 if a rank failed (c->peer_failed). */
int run_sync_until_done(run_ctx *c);

/* ------------------------------------------------------------ report.c */

/* A measured critical time and its jackknife error (NaN: not reached / no
 * error), from an_jackknife_crossing, the function nrdiff-post uses on the
 * same block sums. */
typedef struct {
  double value, error;
} estimate;

/* What rank 0 reports of a grid point.  The headline is the clone-free
 * estimate (speciation_phi through F(1), or Y2 through 1/2); beside it the
 * cloning estimates where the protocol ran: phi_clone through F(1)
 * (speciation) and phi_C through 1/2 (collapse), at the branch times. */
typedef struct {
  int ran, empirical;
  int failed; /* the state stopped being finite: nothing is computed */
  estimate headline;
  int cloned_S, cloned_C;
  estimate clone_S, clone_C;
  /* an empirical score of labelled training points: its clone-free t_S
   * (speciation_phi through F(1)) beside the collapse headline, and the
   * t_S of its data's classes */
  int labelled;
  estimate speciation;
  double speciation_theory;
  double theory;
} point_report;

/* The cloning estimate of the point's kind: the one stored beside the
 * headline in /points/IIII (critical_time_cloning). */
estimate point_report_cloning(const point_report *r);

/* At most every 5 s: where rank 0 is (point, step k) and its ETA. */
void progress_report(progress *pr, const run_ctx *c, int point, long k,
                     double key, const char *key_name);
void failure_text(const run_ctx *c, const point_theory *th, const grid_point *g,
                  long at, char *buf, size_t len);
void report_point(const run_ctx *c, const grid_point *g, const point_theory *th,
                  const obs_layout *L, const proto_layout *X,
                  const double *blocks, point_report *rep);
void report_failed_point(const grid_point *g, point_report *rep,
                         const char *status);
/* Rank 0, at the end: the summary, the "Done" line, and an error line
 * if grid points failed. */
void report_done(const run_ctx *c, const point_report *rep, int n_failed,
                 double wall);
/* Collective: say that the run stopped (rank 0); NRD_EXIT_STOPPED. */
int report_stop(const run_ctx *c);

#endif
