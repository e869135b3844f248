/* Simulation driver (see run.h): run_simulation, a list of phases.
 *
 * Decomposition: the particles of a grid point are split into blocks of
 * ensemble.block_size; (grid point, block) work items are spread over the
 * ranks by estimated cost (plan_assign), so a grid point may span several
 * ranks and a rank may hold several grid points.  Every observable is kept
 * per block, and rank 0 combines the blocks in block order, so results do
 * not depend on the number of ranks or on the assignment.  Particle i of
 * every grid point uses the same random stream (common random numbers),
 * which makes differences between grid points less noisy.
 *
 * Order of work: (1) every grid point's model and theory first (theory.c),
 * so a bad input fails before any simulation; (2) each rank runs its work
 * items, grid point by grid point (point.c), keeping block sums and sampled
 * trajectories in memory (a restart first loads them from the checkpoint);
 * all ranks meet once per step (run_sync, sync.c) to agree on checkpoints,
 * stops and failures, ranks without work included, so checkpoints are
 * collective and taken at step boundaries; (3) block sums are reduced to
 * rank 0, which reports (report.c), and everything is written to the HDF5
 * file collectively. */
#define _POSIX_C_SOURCE 200809L /* fsync */
#include "core/integrate.h"
#include "io/h5out.h"
#include "run/checkpoint.h"
#include "run/run.h"
#include "run/runctx.h"
#include "util/error.h"
#include "util/log.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------- context */

/* Output times (statistics) and frames (trajectories): every `every` steps
 * of t[0..steps] plus the last step.  Returns how many; *step and *time
 * receive them, *index each step's place among them (-1: not sampled). */
static long sample_steps(long steps, long every, const double *t, long **step,
                         double **time, long **index) {
  long n = steps / every + 1 + (steps % every != 0);
  *step = NRD_XCALLOC((size_t)n, sizeof **step);
  *time = NRD_XCALLOC((size_t)n, sizeof **time);
  *index = NRD_XCALLOC((size_t)steps + 1, sizeof **index);
  for (long k = 0; k <= steps; k++)
    (*index)[k] = -1;
  for (long i = 0; i < n; i++) {
    long k = i < n - 1 || steps % every == 0 ? i * every : steps;
    (*step)[i] = k;
    (*time)[i] = t[k];
    (*index)[k] = i;
  }
  return n;
}

void run_ctx_build(run_ctx *c, const nrd_params *p, const run_plan *plan,
                   int only_point) {
  memset(c, 0, sizeof *c);
  c->t_start = nrd_log_elapsed();
  c->p = p;
  c->plan = plan;
  c->data = run_data_load(p);
  run_data_describe(c->data, p);
  long steps = plan->steps;
  c->t = NRD_XCALLOC((size_t)steps + 1, sizeof *c->t);
  if (timegrid_build(p->time.spacing, p->time.T, p->time.t_min, steps, c->t) !=
      NRD_OK)
    nrd_fatal(NRD_EXIT_RUNTIME, "cannot build the time grid");
  c->n_out = sample_steps(steps, p->output.every, c->t, &c->out_step,
                          &c->out_time, &c->out_index);
  c->n_frames = sample_steps(steps, p->output.trajectory_every, c->t,
                             &c->frame_step, &c->frame_time, &c->frame_index);
  /* sampled trajectories: evenly spread particle ids */
  c->n_traj = p->output.trajectories < plan->particles ? p->output.trajectories
                                                       : plan->particles;
  c->traj_ids = NRD_XCALLOC((size_t)c->n_traj, sizeof *c->traj_ids);
  for (long j = 0; j < c->n_traj; j++)
    c->traj_ids[j] = (long)((double)j * plan->particles / c->n_traj);
  int P = plan->n_points;
  c->owner = NRD_XCALLOC((size_t)P * plan->n_blocks, sizeof *c->owner);
  RUN_MUST(plan_assign(plan, nrd_log_size(), only_point, c->owner, NULL));
  c->selected = NRD_XCALLOC((size_t)P, sizeof *c->selected);
  c->point_failed = NRD_XCALLOC((size_t)P, sizeof *c->point_failed);
  for (int i = 0; i < P; i++) {
    c->selected[i] = only_point < 0 || i == only_point;
    c->n_selected += c->selected[i];
  }
  c->shape = (run_shape){.n_points = P,
                         .n_blocks = plan->n_blocks,
                         .block_size = plan->block_size,
                         .particles = plan->particles,
                         .steps = steps,
                         .n_out = c->n_out,
                         .n_frames = c->n_frames,
                         .n_traj = c->n_traj,
                         .selected = c->selected,
                         .data_digest = c->data ? c->data->digest : 0};
  c->state = NRD_XCALLOC((size_t)P, sizeof *c->state);
  c->proto = NRD_XCALLOC((size_t)P, sizeof *c->proto);
  for (int i = 0; i < P; i++)
    RUN_MUST(proto_layout_init(&c->proto[i], p, &plan->points[i],
                               c->data ? c->data->K : (int)p->data.classes,
                               c->t, steps));
  c->layout = NRD_XCALLOC((size_t)P, sizeof *c->layout);
  c->last_checkpoint = nrd_log_elapsed();
}

void run_ctx_build_points(run_ctx *c, const point_theory *th) {
  const run_plan *plan = c->plan;
  c->progress =
      (progress){.start = nrd_log_elapsed(), .last = nrd_log_elapsed()};
  for (int i = 0; i < plan->n_points; i++) {
    if (!c->selected[i]) continue;
    const grid_point *g = &plan->points[i];
    RUN_MUST(obs_layout_init(&c->layout[i], (int)g->dimension, th[i].K,
                             th[i].means, th[i].score));
    proto_layout_observables(&c->proto[i], &c->layout[i]);
    point_state_build(c, i, &c->state[i]);
    if (c->state[i].n_blocks > 0) {
      c->progress.total += point_share_cost(c, i);
      c->progress.points_total++;
    }
  }
}

void run_ctx_free(run_ctx *c) {
  run_data_free(c->data);
  free(c->t);
  free(c->out_step);
  free(c->out_time);
  free(c->frame_step);
  free(c->frame_time);
  free(c->traj_ids);
  free(c->out_index);
  free(c->frame_index);
  free(c->owner);
  free(c->point_failed);
  for (int i = 0; i < c->plan->n_points; i++) {
    point_state_free(&c->state[i]);
    proto_layout_free(&c->proto[i]);
    if (c->selected[i]) obs_layout_free(&c->layout[i]);
  }
  free(c->selected); /* after the loop: it says which layouts exist */
  free(c->state);
  free(c->proto);
  free(c->layout);
  memset(c, 0, sizeof *c);
}

/* -------------------------------------------------------------- points */

/* Collective: every block where the newest valid checkpoint left it. */
static void resume(run_ctx *c) {
  char err[1024] = "", *used = NULL;
  int st = checkpoint_read(c->p, &c->shape, c->state, &used, err, sizeof err);
  if (st != NRD_OK)
    nrd_fatal(st == NRD_ERR_INPUT ? NRD_EXIT_USAGE : NRD_EXIT_RUNTIME, "%s",
              err);
  nrd_info("restarting from %s", used);
  free(used);
}

/* This rank's work items, point by point, until a stop or a failure. */
static void run_points(run_ctx *c) {
  int rank = nrd_log_rank();
  for (int i = 0;
       i < c->plan->n_points && !c->stopped && !c->peer_failed && !c->failed;
       i++) {
    if (!c->selected[i] || c->state[i].n_blocks == 0) continue;
    if (run_point(c, i, rank == 0 ? &c->progress : NULL) != NRD_OK) {
      c->failed = 1;
      nrd_warn("rank %d: grid point %d failed: %s", rank, i, nrd_error_trace());
    }
    c->progress.points_done++;
  }
}

/* ------------------------------------------------------------- results */

double *point_blocks_reduce(const run_ctx *c, int i) {
  const point_state *w = &c->state[i];
  long B = c->plan->n_blocks;
  size_t R = (size_t)c->layout[i].record, n = (size_t)c->n_out * B * R;
  /* every block's record is non-zero on exactly one rank, so this sum is
   * exact and independent of the rank count */
  double *blocks = NRD_XCALLOC(n, sizeof *blocks);
  for (long o = 0; o < c->n_out; o++)
    for (long ib = 0; ib < w->n_blocks; ib++)
      memcpy(blocks + ((size_t)o * B + w->blocks[ib]) * R,
             w->records + ((size_t)o * w->n_blocks + ib) * R,
             R * sizeof *blocks);
  void *send = nrd_log_rank() == 0 ? MPI_IN_PLACE : (void *)blocks;
  NRD_MPI_CHECK(
      MPI_Reduce(send, blocks, (int)n, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD));
  return blocks;
}

/* A grid point's results: rank 0's block sums and measurements, and what
 * every rank agrees on (failure, status, warnings, the datasets' list). */
typedef struct {
  double *blocks;      /* point_blocks_reduce */
  long failed_at;      /* point_failed_at, the same on every rank */
  char status[1400];   /* "ok" or "failed: why" */
  char warnings[1024]; /* the point's physics checks (diagnose.h) */
  point_report rep;    /* rank 0 */
  proto_results res;   /* the protocols' results (data: rank 0) */
} point_result;

/* Collective: reduce point i and report it (rank 0). */
static void point_result_build(const run_ctx *c, const point_theory *th, int i,
                               point_result *r) {
  const grid_point *g = &c->plan->points[i];
  const obs_layout *L = &c->layout[i];
  long B = c->plan->n_blocks;
  int rank0 = nrd_log_rank() == 0;
  memset(r, 0, sizeof *r);
  r->blocks = point_blocks_reduce(c, i);
  r->failed_at = rank0 ? point_failed_at(L, c->n_out, B, r->blocks) : -1;
  NRD_MPI_CHECK(MPI_Bcast(&r->failed_at, 1, MPI_LONG, 0, MPI_COMM_WORLD));
  snprintf(r->status, sizeof r->status, "ok");
  diagnose_point_text(&th->check, c->p, g, r->warnings, sizeof r->warnings);
  if (r->failed_at >= 0) {
    failure_text(c, th, g, r->failed_at, r->status, sizeof r->status);
    if (rank0) report_failed_point(g, &r->rep, r->status);
    return;
  }
  if (rank0) report_point(c, g, th, L, &c->proto[i], r->blocks, &r->rep);
  RUN_MUST(proto_results_build(&r->res, &c->proto[i], rank0 ? &th->proto : NULL,
                               L, c->n_out, c->out_time, B,
                               rank0 ? r->blocks : NULL));
  if (rank0) {
    proto_results_print(&r->res, &c->proto[i], stdout);
    fflush(stdout);
  }
}

/* What the output file holds of point i (h5out.h). */
static h5out_point point_output(const run_ctx *c, const point_theory *th, int i,
                                const point_result *r) {
  const grid_point *g = &c->plan->points[i];
  const proto_layout *X = &c->proto[i];
  const point_state *w = &c->state[i];
  estimate cloning = point_report_cloning(&r->rep);
  return (h5out_point){
      .index = i,
      .dimension = g->dimension,
      .n_train = g->n_train,
      .classes = th->K,
      .separation = g->separation,
      .strength = g->strength,
      .relaxation_rate = th->rate,
      .entropy_production = th->entropy,
      .critical_kind = g->n_train > 0 ? "collapse" : "speciation",
      .critical_theory = th->critical,
      .critical_measured = r->rep.headline.value,
      .critical_error = r->rep.headline.error,
      /* known on every rank (the layout); the values are rank 0's */
      .has_cloning =
          (g->n_train > 0 ? X->collapse : X->speciation) && X->n_branch > 0,
      .critical_cloning = cloning.value,
      .critical_cloning_error = cloning.error,
      .labelled = th->score == OBS_EMPIRICAL_CLASSES,
      .speciation_measured = r->rep.speciation.value,
      .speciation_error = r->rep.speciation.error,
      .speciation_theory = th->speciation,
      .speciation_covariance = th->speciation_cov,
      .has_speciation_cloning = X->speciation && X->n_branch > 0,
      .speciation_cloning = r->rep.clone_S.value,
      .speciation_cloning_error = r->rep.clone_S.error,
      .failed = r->failed_at >= 0,
      .status = r->status,
      .warnings = r->warnings,
      .layout = &c->layout[i],
      .n_out = c->n_out,
      .out_step = c->out_step,
      .out_time = c->out_time,
      .blocks = nrd_log_rank() == 0 ? r->blocks : NULL,
      .n_blocks = c->plan->n_blocks,
      .n_local_blocks = w->n_blocks,
      .local_blocks = w->blocks,
      .local_records = w->records,
      .n_traj = c->n_traj,
      .n_frames = c->n_frames,
      .traj_ids = c->traj_ids,
      .frame_step = c->frame_step,
      .frame_time = c->frame_time,
      .n_local_traj = w->n_traj,
      .local_traj = w->traj,
      .local_positions = w->positions,
      .results = &r->res,
      .protocols = X,
  };
}

/* Collective: reduce, report and write every selected point, close the
 * output, mark the run complete, print the summary.  Returns the exit
 * status: NRD_EXIT_RUNTIME if a grid point failed. */
static int write_results(const run_ctx *c, const point_theory *th,
                         const char *command_line) {
  const run_plan *plan = c->plan;
  int P = plan->n_points, n_failed = 0; /* the same on every rank */
  point_report *rep = NRD_XCALLOC((size_t)P, sizeof *rep); /* rank 0 */
  h5out out;
  h5out_open(&out, c->p, plan, command_line);
  h5out_write_data(&out, c->p, c->data);
  for (int i = 0; i < P; i++) {
    if (!c->selected[i]) continue;
    point_result r;
    point_result_build(c, &th[i], i, &r);
    n_failed += r.failed_at >= 0;
    rep[i] = r.rep;
    h5out_point pt = point_output(c, &th[i], i, &r);
    h5out_write_point(&out, c->p, &pt);
    proto_results_free(&r.res);
    free(r.blocks);
  }
  double wall = nrd_log_elapsed() - c->t_start;
  h5out_close(&out, wall);
  char done[256];
  snprintf(done, sizeof done, "%d grid point(s), %d of them failed, %.1f s",
           c->n_selected, n_failed, wall);
  run_mark_complete(c->p, done);
  if (nrd_log_rank() == 0) report_done(c, rep, n_failed, wall);
  free(rep);
  return n_failed > 0 ? NRD_EXIT_RUNTIME : NRD_EXIT_OK;
}

/* ---------------------------------------------------------- completion */

char *done_marker_path(const nrd_params *p) {
  size_t n = strlen(p->output.file) + 8;
  char *s = NRD_XCALLOC(n, 1);
  snprintf(s, n, "%s.done", p->output.file);
  return s;
}

void run_mark_complete(const nrd_params *p, const char *what) {
  int ok = 1;
  if (nrd_log_rank() == 0) {
    /* the marker first and durably, then the checkpoints go: a kill in
     * between leaves a marked, complete run with stale checkpoints, never
     * a complete output that a job chain cannot recognise */
    char *marker = done_marker_path(p);
    FILE *f = fopen(marker, "w");
    ok = f &&
         fprintf(f, "nrdiff run complete: %s, %s\n", p->output.file, what) > 0;
    ok = f && fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    if (f && fclose(f) != 0) ok = 0;
    if (!ok) nrd_warn("cannot write the completion marker '%s'", marker);
    free(marker);
  }
  NRD_MPI_CHECK(MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD));
  if (ok) checkpoint_remove(p); /* else keep them: nothing to lose */
}

/* -------------------------------------------------------------- the run */

int run_simulation(const nrd_params *p, const run_plan *plan, int only_point,
                   int restart, const char *command_line) {
  run_ctx c;
  /* the run's description: time grid, output times and frames, which rank
   * runs which block, every point's protocols */
  run_ctx_build(&c, p, plan, only_point);
  /* every selected point's model and theory, before any simulation: a bad
   * input ends the run here, naming the point */
  point_theory *th = prepare_theory(&c);
  /* each point's observables, and this rank's share of its blocks */
  run_ctx_build_points(&c, th);
  /* a restart: every block where the newest checkpoint left it */
  if (restart) resume(&c);
  /* this rank's blocks, point by point, in lockstep with the other ranks
   * (run_sync) so that checkpoints and stops are collective */
  run_points(&c);
  /* take part in the agreement until every rank is done: a stop is agreed
   * (and checkpointed), or a failure anywhere ends the run */
  if (!run_sync_until_done(&c))
    nrd_fatal(NRD_EXIT_RUNTIME, "the simulation failed (see the messages "
                                "above); no output written");
  /* stopped: the checkpoint is all; complete: reduce, report, write, mark */
  int status =
      c.stopped ? report_stop(&c) : write_results(&c, th, command_line);
  theory_free(th, plan->n_points);
  run_ctx_free(&c);
  return status;
}
