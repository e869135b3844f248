/* Simulation driver (see run.h).
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
 * Order of work: (1) rank 0 builds every grid point's model and its theory
 * first, so a bad input fails before any simulation; (2) each rank runs its
 * work items, grid point by grid point, keeping block sums and sampled
 * trajectories in memory (a restart first loads them from the checkpoint);
 * all ranks meet once per step (run_sync) to agree on checkpoints, stops and
 * failures, ranks without work included, so checkpoints are collective and
 * taken at step boundaries; (3) block sums are reduced to rank 0, which
 * reports, and everything is written to the HDF5 file collectively. */
#define _POSIX_C_SOURCE 200809L /* fsync */
#include "run/run.h"
#include "run/runctx.h"
#include "core/analysis.h"
#include "run/checkpoint.h"
#include "core/diagnose.h"
#include "util/error.h"
#include "io/h5out.h"
#include "core/integrate.h"
#include "core/linalg.h"
#include "util/log.h"
#include "core/model.h"
#include "io/matrix_file.h"
#include "io/matrix_file.h"
#include "core/observe.h"
#include "core/protocol.h"
#include "core/rng.h"
#include "core/theory.h"

#include <cblas.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
/* Output times (statistics) and frames (trajectories): every `every` steps
 * plus the last step. */
static long sample_steps(long steps, long every, long *out) {
  long n = 0;
  for (long k = 0; k <= steps; k += every) {
    if (out) out[n] = k;
    n++;
  }
  if (steps % every) {
    if (out) out[n] = steps;
    n++;
  }
  return n;
}

/* ------------------------------------------------------------ driver */

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
    ok = f && fprintf(f, "nrdiff run complete: %s, %s\n", p->output.file,
                      what) > 0;
    ok = f && fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    if (f && fclose(f) != 0) ok = 0;
    if (!ok) nrd_warn("cannot write the completion marker '%s'", marker);
    free(marker);
  }
  NRD_MPI_CHECK(MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD));
  if (ok) checkpoint_remove(p); /* else keep them: nothing to lose */
}

static void ctx_build(run_ctx *c, const nrd_params *p, const run_plan *plan,
                      const double *t, int only_point) {
  memset(c, 0, sizeof *c);
  c->p = p;
  c->plan = plan;
  c->t = t;
  long steps = plan->steps;
  c->n_out = sample_steps(steps, p->output.every, NULL);
  c->out_step = NRD_XCALLOC((size_t)c->n_out, sizeof *c->out_step);
  c->out_time = NRD_XCALLOC((size_t)c->n_out, sizeof *c->out_time);
  sample_steps(steps, p->output.every, c->out_step);
  for (long i = 0; i < c->n_out; i++)
    c->out_time[i] = t[c->out_step[i]];
  c->n_frames = sample_steps(steps, p->output.trajectory_every, NULL);
  c->frame_step = NRD_XCALLOC((size_t)c->n_frames, sizeof *c->frame_step);
  c->frame_time = NRD_XCALLOC((size_t)c->n_frames, sizeof *c->frame_time);
  sample_steps(steps, p->output.trajectory_every, c->frame_step);
  for (long i = 0; i < c->n_frames; i++)
    c->frame_time[i] = t[c->frame_step[i]];
  /* sampled trajectories: evenly spread particle ids */
  c->n_traj = p->output.trajectories < plan->particles ? p->output.trajectories
                                                       : plan->particles;
  c->traj_ids = NRD_XCALLOC((size_t)c->n_traj, sizeof *c->traj_ids);
  for (long j = 0; j < c->n_traj; j++)
    c->traj_ids[j] = (long)((double)j * plan->particles / c->n_traj);
  c->out_index = NRD_XCALLOC((size_t)steps + 1, sizeof *c->out_index);
  c->frame_index = NRD_XCALLOC((size_t)steps + 1, sizeof *c->frame_index);
  for (long k = 0; k <= steps; k++)
    c->out_index[k] = c->frame_index[k] = -1;
  for (long i = 0; i < c->n_out; i++)
    c->out_index[c->out_step[i]] = i;
  for (long i = 0; i < c->n_frames; i++)
    c->frame_index[c->frame_step[i]] = i;
  c->owner = NRD_XCALLOC((size_t)plan->n_points * plan->n_blocks, sizeof *c->owner);
  if (plan_assign(plan, nrd_log_size(), only_point, c->owner, NULL) != NRD_OK)
    NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  c->selected = NRD_XCALLOC((size_t)plan->n_points, sizeof *c->selected);
  c->point_failed = NRD_XCALLOC((size_t)plan->n_points, sizeof *c->point_failed);
  for (int i = 0; i < plan->n_points; i++)
    c->selected[i] = only_point < 0 || i == only_point;
  c->shape = (run_shape){.n_points = plan->n_points,
                         .n_blocks = plan->n_blocks,
                         .block_size = plan->block_size,
                         .particles = plan->particles,
                         .steps = steps,
                         .n_out = c->n_out,
                         .n_frames = c->n_frames,
                         .n_traj = c->n_traj,
                         .selected = c->selected};
  c->state = NRD_XCALLOC((size_t)plan->n_points, sizeof *c->state);
  c->proto = NRD_XCALLOC((size_t)plan->n_points, sizeof *c->proto);
  for (int i = 0; i < plan->n_points; i++)
    if (proto_layout_init(&c->proto[i], p, &plan->points[i],
                          (int)p->data.classes, t, steps) != NRD_OK)
      NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  c->last_checkpoint = nrd_log_elapsed();
}

static void ctx_free(run_ctx *c) {
  free(c->out_step);
  free(c->out_time);
  free(c->frame_step);
  free(c->frame_time);
  free(c->traj_ids);
  free(c->out_index);
  free(c->frame_index);
  free(c->owner);
  free(c->selected);
  free(c->point_failed);
  for (int i = 0; i < c->plan->n_points; i++) {
    point_state_free(&c->state[i]);
    proto_layout_free(&c->proto[i]);
  }
  free(c->state);
  free(c->proto);
  free(c->layout);
}


int run_simulation(const nrd_params *p, const run_plan *plan, int only_point,
                   int restart, const char *command_line) {
  double t_start = nrd_log_elapsed();
  double *t = NRD_XCALLOC((size_t)plan->steps + 1, sizeof *t);
  if (timegrid_build(p->time.spacing, p->time.T, p->time.t_min, plan->steps,
                     t) != NRD_OK)
    nrd_fatal(NRD_EXIT_RUNTIME, "cannot build the time grid");
  int rank = nrd_log_rank(), P = plan->n_points;
  run_ctx c;
  ctx_build(&c, p, plan, t, only_point);
  point_theory *th = NRD_XCALLOC((size_t)P, sizeof *th);
  prepare_theory(&c, th);

  /* (2) this rank's work items, point by point, in lockstep with the other
   * ranks (run_sync) so that checkpoints and stops are collective */
  progress pr = {.start = nrd_log_elapsed(), .last = nrd_log_elapsed()};
  c.layout = NRD_XCALLOC((size_t)P, sizeof *c.layout);
  obs_layout *lay = c.layout;
  for (int i = 0; i < P; i++) {
    if (!c.selected[i]) continue;
    /* sizes only; the class directions are set when the point runs */
    const grid_point *g = &plan->points[i];
    double *zero = NRD_XCALLOC((size_t)p->data.classes * g->dimension, sizeof *zero);
    if (obs_layout_init(&lay[i], (int)g->dimension, (int)p->data.classes, zero,
                        g->n_train > 0) != NRD_OK)
      NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
    proto_layout_observables(&c.proto[i], &lay[i]);
    free(zero);
    point_state_build(&c, i, &c.state[i]);
    if (c.state[i].n_blocks > 0) {
      pr.total += point_share_cost(&c, i);
      pr.points_total++;
    }
  }
  if (restart) {
    char err[1024] = "", *used = NULL;
    int st = checkpoint_read(p, &c.shape, c.state, &used, err, sizeof err);
    if (st != NRD_OK)
      nrd_fatal(st == NRD_ERR_INPUT ? NRD_EXIT_USAGE : NRD_EXIT_RUNTIME, "%s",
                err);
    nrd_info("restarting from %s", used);
    free(used);
  }
  int rc = NRD_OK;
  for (int i = 0; i < P && !c.stopped && !c.peer_failed && !c.failed; i++) {
    if (!c.selected[i] || c.state[i].n_blocks == 0) continue;
    /* the layout again, with the class directions */
    model m;
    char err[1024];
    if (model_build(&m, p, &plan->points[i], matrix_file_read, err, sizeof err) != NRD_OK)
      NRD_ABORT(NRD_EXIT_RUNTIME, "grid point %d: %s", i, err);
    obs_layout_free(&lay[i]);
    if (obs_layout_init(&lay[i], m.d, m.mix.K, m.mix.means, m.n_train > 0) !=
        NRD_OK)
      NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
    proto_layout_observables(&c.proto[i], &lay[i]);
    model_free(&m);
    rc = run_point(&c, i, rank == 0 ? &pr : NULL);
    if (rc != NRD_OK) {
      c.failed = 1;
      nrd_warn("rank %d: grid point %d failed: %s", rank, i, nrd_error_trace());
    }
    pr.points_done++;
  }
  /* keep taking part in the per-step agreement until every rank is done */
  while (!c.stopped && !c.peer_failed) {
    int sync = run_sync(&c, 1);
    if (sync == SYNC_ALL_DONE) break;
    if (sync == SYNC_FAILED) c.peer_failed = 1;
  }
  if (c.peer_failed)
    nrd_fatal(NRD_EXIT_RUNTIME, "the simulation failed (see the messages "
                                "above); no output written");
  if (c.stopped) {
    char *ck = checkpoint_path(p, 0);
    if (rank == 0)
      printf("\nStopped on request (%s) after %.1f s; checkpoint: %s.\n"
             "Continue with: nrdiff --restart <same parameters>\n",
             c.stop_reason, nrd_log_elapsed() - t_start, ck);
    free(ck);
    for (int i = 0; i < P; i++)
      if (c.selected[i]) obs_layout_free(&lay[i]);
    for (int i = 0; i < P; i++)
      free(th[i].phi_theory), free(th[i].norm2_theory),
          proto_theory_free(&th[i].proto);
    free(th);
    ctx_free(&c);
    free(t);
    return NRD_EXIT_STOPPED;
  }

  h5out out;
  h5out_open(&out, p, plan, command_line);

  /* (3) reduce, report, write */
  point_report *rep = NRD_XCALLOC((size_t)P, sizeof *rep); /* rank 0 */
  long B = plan->n_blocks;
  int n_failed = 0; /* the same on every rank */
  for (int i = 0; i < P; i++) {
    if (only_point >= 0 && i != only_point) continue;
    const obs_layout *L = &lay[i];
    size_t R = (size_t)L->record, n = (size_t)c.n_out * B * R;
    /* every block's record is non-zero on exactly one rank, so this sum is
     * exact and independent of the rank count */
    double *blocks = NRD_XCALLOC(n, sizeof *blocks);
    for (long o = 0; o < c.n_out; o++)
      for (long ib = 0; ib < c.state[i].n_blocks; ib++)
        memcpy(blocks + ((size_t)o * B + c.state[i].blocks[ib]) * R,
               c.state[i].records + ((size_t)o * c.state[i].n_blocks + ib) * R,
               R * sizeof *blocks);
    void *send = rank == 0 ? MPI_IN_PLACE : (void *)blocks;
    NRD_MPI_CHECK(MPI_Reduce(send, blocks, (int)n, MPI_DOUBLE, MPI_SUM, 0,
                             MPI_COMM_WORLD));
    const grid_point *g = &plan->points[i];
    long failed_at = rank == 0 ? point_failed_at(L, c.n_out, B, blocks) : -1;
    NRD_MPI_CHECK(MPI_Bcast(&failed_at, 1, MPI_LONG, 0, MPI_COMM_WORLD));
    char status[1400] = "ok", warnings[1024] = "";
    diagnose_point_text(&th[i].check, p, g, warnings, sizeof warnings);
    proto_results res;
    memset(&res, 0, sizeof res);
    if (failed_at >= 0) {
      n_failed++;
      failure_text(&c, &th[i], g, failed_at, status, sizeof status);
      if (rank == 0) report_failed_point(g, &rep[i], status);
    } else {
      if (rank == 0)
        report_point(&c, g, &th[i], L, &c.proto[i], blocks, &rep[i]);
      if (proto_results_build(&res, &c.proto[i],
                              rank == 0 ? &th[i].proto : NULL, L, c.n_out,
                              c.out_time, B, rank == 0 ? blocks : NULL) !=
          NRD_OK)
        NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory for the results");
      if (rank == 0) {
        proto_results_print(&res, &c.proto[i], stdout);
        fflush(stdout);
      }
    }
    h5out_point pt = {
        .index = i,
        .dimension = g->dimension,
        .n_train = g->n_train,
        .classes = p->data.classes,
        .separation = g->separation,
        .strength = g->strength,
        .relaxation_rate = th[i].rate,
        .entropy_production = th[i].entropy,
        .critical_kind = g->n_train > 0 ? "collapse" : "speciation",
        .critical_theory = th[i].critical,
        .critical_measured = rep[i].headline.value,
        .critical_error = rep[i].headline.error,
        /* known on every rank (the layout); the values are rank 0's */
        .has_cloning = g->n_train > 0
                           ? c.proto[i].collapse && c.proto[i].n_branch > 0
                           : c.proto[i].speciation && c.proto[i].n_branch > 0,
        .critical_cloning = point_report_cloning(&rep[i]).value,
        .critical_cloning_error = point_report_cloning(&rep[i]).error,
        .failed = failed_at >= 0,
        .status = status,
        .warnings = warnings,
        .layout = L,
        .n_out = c.n_out,
        .out_step = c.out_step,
        .out_time = c.out_time,
        .blocks = rank == 0 ? blocks : NULL,
        .n_blocks = B,
        .n_local_blocks = c.state[i].n_blocks,
        .local_blocks = c.state[i].blocks,
        .local_records = c.state[i].records,
        .n_traj = c.n_traj,
        .n_frames = c.n_frames,
        .traj_ids = c.traj_ids,
        .frame_step = c.frame_step,
        .frame_time = c.frame_time,
        .n_local_traj = c.state[i].n_traj,
        .local_traj = c.state[i].traj,
        .local_positions = c.state[i].positions,
    };
    pt.results = &res;
    pt.protocols = &c.proto[i];
    h5out_write_point(&out, p, &pt);
    proto_results_free(&res);
    free(blocks);
  }
  double wall = nrd_log_elapsed() - t_start;
  h5out_close(&out, wall);
  char done[256];
  snprintf(done, sizeof done, "%d grid point(s), %d of them failed, %.1f s",
           only_point >= 0 ? 1 : P, n_failed, wall);
  run_mark_complete(p, done);
  if (rank == 0) {
    print_summary(plan, rep);
    long n_run = only_point >= 0 ? 1 : P;
    double psteps = (double)n_run * plan->particles * plan->steps;
    printf("\nDone: %ld grid point(s), %.3g particle-steps in %.1f s on %d "
           "rank(s): %.3g particle-steps/s.  Output: %s\n",
           n_run, psteps, wall, nrd_log_size(), psteps / wall, p->output.file);
    fflush(stdout);
  }
  if (n_failed > 0 && rank == 0)
    fprintf(stderr,
            "nrdiff: error: %d grid point(s) failed (their state stopped "
            "being finite; see 'FAILED' above and /points/IIII@status); the "
            "other points' results are in %s\n",
            n_failed, p->output.file);
  for (int i = 0; i < P; i++) {
    obs_layout_free(&lay[i]);
    free(th[i].phi_theory);
    free(th[i].norm2_theory);
    proto_theory_free(&th[i].proto);
  }
  free(th);
  free(rep);
  ctx_free(&c);
  free(t);
  return n_failed > 0 ? NRD_EXIT_RUNTIME : NRD_EXIT_OK;
}
