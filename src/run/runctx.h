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
#include "core/observe.h"
#include "core/protocol.h"
#include "run/runstate.h"

/* Theory and metadata of a grid point, computed up front (prepare_theory). */
typedef struct {
  double rate, entropy;  /* min Re sigma(A), tr(Q^T Q U) */
  double critical;       /* theory t_S or t_C (NaN if undefined) */
  double *phi_theory;    /* n_out: F(kappa_t) (two classes, mixture score) */
  double *norm2_theory;  /* n_out: E|x_t|^2 under the exact p_t (mixture)
                            or p^e_t (empirical score) */
  int empirical, symmetric2, K;
  proto_theory proto;    /* the protocols' theory (protocol.h) */
  step_check check;      /* the step-size and no-op check (diagnose.h) */
} point_theory;

/* Progress of rank 0's own work, which plan_assign balanced against the
 * other ranks' (so its ETA is the run's). */
typedef struct {
  double total, done; /* estimated flops of rank 0's work items */
  double start, last;
  long steps_done; /* over all of rank 0's grid points */
  int points_done, points_total;
} progress;

/* Shared, read-only description of the run. */
typedef struct {
  const nrd_params *p;
  const run_plan *plan;
  const double *t; /* steps + 1 forward times, decreasing */
  long n_out, n_frames, n_traj;
  long *out_step, *frame_step, *traj_ids;
  double *out_time, *frame_time;
  long *out_index, *frame_index; /* steps + 1: index of step k, or -1 */
  int *owner;    /* n_points x n_blocks */
  int *selected; /* n_points: runs in this invocation */
  run_shape shape;
  point_state *state; /* n_points: this rank's share */
  proto_layout *proto; /* n_points: the protocols of each point */
  long rounds;        /* synchronised steps so far (same on every rank) */
  double last_checkpoint;
  int *point_failed; /* n_points: this rank saw the point fail (warned) */
  int stopped;        /* a stop was requested and checkpointed */
  char stop_reason[256]; /* why, as agreed by every rank */
  int failed;         /* this rank failed (local) */
  int peer_failed;    /* some rank failed (collective) */
} run_ctx;

/* ------------------------------------------------------------ theory.c */

/* Collective: every selected point's model and theory (see theory.c);
 * th: n_points, filled on every rank. */
void prepare_theory(const run_ctx *c, point_theory *th);

/* -------------------------------------------------------------- sync.c */

enum { SYNC_CONTINUE, SYNC_STOPPED, SYNC_FAILED, SYNC_ALL_DONE };

/* Collective, once per step of every rank: see sync.c. */
int run_sync(run_ctx *c, int finished);

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
  double theory;
} point_report;

/* The cloning estimate of the point's kind: the one stored beside the
 * headline in /points/IIII (critical_time_cloning). */
estimate point_report_cloning(const point_report *r);

void progress_report(progress *pr, const run_ctx *c, const model *m, long k,
                     double key, const char *key_name);
/* The first output time at which a block of the point failed, or -1. */
long point_failed_at(const obs_layout *L, long n_out, long B,
                     const double *blocks);
void failure_text(const run_ctx *c, const point_theory *th,
                  const grid_point *g, long at, char *buf, size_t len);
void report_point(const run_ctx *c, const grid_point *g,
                  const point_theory *th, const obs_layout *L,
                  const proto_layout *X, const double *blocks,
                  point_report *rep);
void report_failed_point(const grid_point *g, point_report *rep,
                         const char *status);
void print_summary(const run_plan *plan, const point_report *rep);

#endif
