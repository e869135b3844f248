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

static void point_state_free(point_state *w) {
  free(w->blocks);
  free(w->first_row);
  free(w->count);
  free(w->next_step);
  free(w->Y);
  free(w->records);
  free(w->traj);
  free(w->traj_row);
  free(w->traj_block);
  free(w->positions);
  memset(w, 0, sizeof *w);
}

/* Initial condition at forward time T: N(0, S) or the exact p_T. */
static int initial_state(const nrd_params *p, const model *m,
                         const run_plan *plan, point_state *lb, double T,
                         double *Y, double *Xi, double *Yblock) {
  int d = m->d;
  size_t dd = (size_t)d * d;
  double *L = malloc(dd * sizeof *L), *E = malloc(dd * sizeof *E);
  double *X0 = malloc((size_t)d * sizeof *X0);
  int rc = (L && E && X0) ? NRD_OK : NRD_ERR_NOMEM;
  int exact = p->integrator.start == START_EXACT;
  if (rc == NRD_OK && exact) {
    rc = ou_propagator(&m->op, T, E);
    if (rc == NRD_OK) rc = ou_noise_cov(&m->op, T, L);
    if (rc == NRD_OK) {
      double *Dl = malloc(dd * sizeof *Dl);
      rc = Dl ? la_cholesky(d, L, Dl) : NRD_ERR_NOMEM;
      if (rc == NRD_OK) memcpy(L, Dl, dd * sizeof *L);
      free(Dl);
    }
  } else if (rc == NRD_OK) {
    rc = la_cholesky(d, m->op.S, L);
  }
  for (long ib = 0; rc == NRD_OK && ib < lb->n_blocks; ib++) {
    if (lb->next_step[ib] != BLOCK_NOT_STARTED) continue;
    lb->next_step[ib] = 0;
    long first, count;
    plan_block_range(plan, lb->blocks[ib], &first, &count);
    double *Yb = Yblock;
    for (long i = 0; i < count; i++) {
      uint64_t pid = (uint64_t)(first + i);
      rng_normals(m->seed, RNG_PURPOSE_INIT, pid, 0, (size_t)d, Xi + i * d);
      if (exact) {
        int label;
        rc = mixture_sample(&m->mix, m->seed, RNG_PURPOSE_FORWARD, pid, 1, X0,
                            &label);
        if (rc != NRD_OK) break;
        forward_sample(d, 1, E, L, X0, Xi + i * d, Yb + i * d);
      }
    }
    if (!exact)
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)count, d, d,
                  1.0, Xi, d, L, d, 0.0, Yb, d);
    for (long i = 0; i < count; i++)
      memcpy(Y + (size_t)(lb->first_row[ib] + i) * lb->width, Yb + i * d,
             (size_t)d * sizeof *Y);
  }
  free(L);
  free(E);
  free(X0);
  return rc;
}


/* ------------------------------------------------------- local work */

static void point_state_build(const run_ctx *c, int point, int d,
                              const obs_layout *L, point_state *w) {
  const run_plan *plan = c->plan;
  int rank = nrd_log_rank();
  long B = plan->n_blocks;
  memset(w, 0, sizeof *w);
  w->d = d;
  w->width = c->proto[point].width;
  w->record = L->record;
  w->blocks = NRD_XCALLOC((size_t)B, sizeof *w->blocks);
  w->first_row = NRD_XCALLOC((size_t)B, sizeof *w->first_row);
  w->count = NRD_XCALLOC((size_t)B, sizeof *w->count);
  w->next_step = NRD_XCALLOC((size_t)B, sizeof *w->next_step);
  w->traj = NRD_XCALLOC((size_t)c->n_traj, sizeof *w->traj);
  w->traj_row = NRD_XCALLOC((size_t)c->n_traj, sizeof *w->traj_row);
  w->traj_block = NRD_XCALLOC((size_t)c->n_traj, sizeof *w->traj_block);
  for (long b = 0; b < B; b++) {
    if (c->owner[(size_t)point * B + b] != rank) continue;
    long first, count;
    plan_block_range(plan, b, &first, &count);
    long ib = w->n_blocks++;
    w->blocks[ib] = b;
    w->first_row[ib] = w->n_rows;
    w->count[ib] = count;
    w->next_step[ib] = BLOCK_NOT_STARTED;
    for (long j = 0; j < c->n_traj; j++)
      if (c->traj_ids[j] >= first && c->traj_ids[j] < first + count) {
        w->traj[w->n_traj] = j;
        w->traj_block[w->n_traj] = ib;
        w->traj_row[w->n_traj++] = w->n_rows + (c->traj_ids[j] - first);
      }
    w->n_rows += count;
  }
  w->records = NRD_XCALLOC((size_t)c->n_out * w->n_blocks * L->record,
                       sizeof *w->records);
  w->positions = NRD_XCALLOC((size_t)c->n_frames * w->n_traj * d,
                         sizeof *w->positions);
  w->Y = NULL; /* allocated while the point runs */
}

static int all_finite(size_t n, const double *x) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

/* A block that fails (its state is not finite, or a step cannot be made)
 * stops, and its |y|^2 sum at output time o becomes NaN: the mark of a
 * failed grid point, which checkpoints carry and the report reads
 * (point_failed_at); |y|^2 of a finite state is never NaN. */
static void fail_block(point_state *w, const obs_layout *L, long ib, long o,
                       long steps) {
  w->records[((size_t)o * w->n_blocks + ib) * L->record +
             L->offset[OBS_NORM2]] = NAN;
  w->next_step[ib] = steps + 1;
}

/* Every block of this rank still running at step k fails, marked at the
 * first output time at or after k; why: the numerical cause. */
static void fail_point(point_state *w, const obs_layout *L, run_ctx *c,
                       int point, long k, const char *why) {
  long o = 0, steps = c->plan->steps;
  while (o + 1 < c->n_out && c->out_step[o] < k)
    o++;
  for (long ib = 0; ib < w->n_blocks; ib++)
    if (w->next_step[ib] <= steps) fail_block(w, L, ib, o, steps);
  if (!c->point_failed[point]++)
    nrd_warn("grid point %d: %s at step %ld (t = %.6g); the grid point "
             "fails", point, why, k, c->t[k]);
}

/* Folding the empirical score's -Delta^{-1} y into the step saves a
 * P x d x d product per block; the exponential scheme with dense G and
 * Delta^{-1} pays one d x d x d product per time for G Delta^{-1}. */
static int fold_pays(const step_ops *ops, const double *dinv, long particles) {
  if (ops->scheme != SCHEME_EXPONENTIAL || ops->iso_G || !dinv) return 1;
  return particles > ops->d;
}

/* Run this rank's blocks of one grid point from where each block stands
 * (not started, or at its checkpointed step) to the end, synchronising with
 * the other ranks at every step.  Returns NRD_OK (SYNC_STOPPED in
 * c->stopped when a stop was requested) or an error. */
static int run_point(run_ctx *c, const model *m, const obs_layout *L,
                     const proto_layout *X, point_state *w, double point_cost,
                     progress *pr) {
  const nrd_params *p = c->p;
  const run_plan *plan = c->plan;
  const double *t = c->t;
  int d = m->d, K = m->mix.K;
  long steps = plan->steps, bs = plan->block_size, done = steps + 1;
  long kmin = done;
  for (long ib = 0; ib < w->n_blocks; ib++)
    if (w->next_step[ib] != done)
      kmin = w->next_step[ib] == BLOCK_NOT_STARTED
                 ? 0
                 : (w->next_step[ib] < kmin ? w->next_step[ib] : kmin);
  if (kmin == done) return NRD_OK; /* finished before a restart */
  int W = w->width;
  if (!w->Y) w->Y = NRD_XCALLOC((size_t)w->n_rows * W, sizeof *w->Y);
  double *Y = w->Y;
  double *Ymain = NRD_XCALLOC((size_t)bs * d, sizeof *Ymain);
  int proto_on = X->speciation || X->collapse || X->uturn || X->forward;
  double *Ystar = NRD_XCALLOC((size_t)bs * d, sizeof *Ystar);
  double *S0 = NRD_XCALLOC((size_t)bs * d, sizeof *S0);
  double *S1 = NRD_XCALLOC((size_t)bs * d, sizeof *S1);
  double *Xi = NRD_XCALLOC((size_t)bs * d, sizeof *Xi);
  double *tmp = NRD_XCALLOC((size_t)2 * bs * d, sizeof *tmp);
  double *resp = NRD_XCALLOC((size_t)bs * K, sizeof *resp);
  double *y2 = NRD_XCALLOC((size_t)bs, sizeof *y2);
  int *nearest = NRD_XCALLOC((size_t)bs, sizeof *nearest);
  score_model cur, nxt;
  step_ops ops;
  step_fold fold;
  proto_run prun;
  memset(&prun, 0, sizeof prun);
  int rc = score_model_init(&cur, m), ops_ok = 0;
  if (rc == NRD_OK) rc = score_model_init(&nxt, m);
  if (rc == NRD_OK) rc = step_ops_init(&ops, &m->op, p->integrator.scheme);
  ops_ok = rc == NRD_OK;
  if (ops_ok && (rc = step_fold_init(&fold, d)) != NRD_OK) {
    step_ops_free(&ops);
    ops_ok = 0;
  }
  if (rc == NRD_OK && proto_on) rc = proto_run_init(&prun, X, m, &cur, t, bs);
  double *work = NRD_XCALLOC(
      rc == NRD_OK ? score_model_work_size(&cur, (int)bs) : 1, sizeof *work);
  if (rc == NRD_OK) rc = initial_state(p, m, plan, w, t[0], Y, Xi, Ymain);
  int ode = p->integrator.scheme == SCHEME_ODE_HEUN;
  double step_cost = point_cost / (double)(steps > 0 ? steps : 1);
  int key = L->empirical ? OBS_PARTICIPATION_Y2 : OBS_SPECIATION_PHI;
  double key_value = NAN;
  for (long k = kmin; rc == NRD_OK && k <= steps; k++) {
    /* every block of this point is now at a step boundary */
    int sync = run_sync(c, 0);
    if (sync == SYNC_STOPPED) break;
    if (sync == SYNC_FAILED) {
      c->peer_failed = 1;
      break;
    }
    int score_ok = score_model_set_time(&cur, t[k]) == NRD_OK;
    long out = c->out_index[k], frame = c->frame_index[k];
    if (!score_ok && k < steps) {
      fail_point(w, L, c, m->point.index, k, "the score cannot be evaluated "
                 "(e^{-At} or Delta_t not finite, or Delta_t singular)");
      break;
    }
    /* A uniform grid's steps are all the nominal (T - t_min)/steps: the
     * differences t[k] - t[k+1] vary in their last bits, and each new h
     * would rebuild the exponential scheme's matrices (a 2d x 2d expm, half
     * the time of a d = 512 run) */
    double h = p->time.spacing == SPACING_UNIFORM
                   ? (p->time.T - p->time.t_min) / (double)steps
                   : (k < steps ? t[k] - t[k + 1] : 0.0);
    if (k < steps && step_ops_set_h(&ops, &m->op, h) != NRD_OK) {
      fail_point(w, L, c, m->point.index, k, "the step's maps e^{Ah} cannot "
                 "be formed (h |A| overflows)");
      break;
    }
    /* Steps without output let the integrator apply the empirical score's
     * -Delta^{-1} y with its own map (integrate.h, step_fold); output steps
     * need the whole score for the observables.  The choice depends only on
     * the step and the point, never on the rank. */
    int split = 0;
    double dinv_iso = 0;
    const double *dinv = score_model_dinv(&cur, &split, &dinv_iso);
    int folded = rc == NRD_OK && split && score_ok && !ode && k < steps &&
                 out < 0 && fold_pays(&ops, dinv, plan->particles);
    if (folded) step_fold_set(&fold, &ops, dinv, dinv_iso);
    int next_ok = 0;
    if (rc == NRD_OK && ode && k < steps)
      next_ok = score_model_set_time(&nxt, t[k + 1]) == NRD_OK;
    for (long j = 0; frame >= 0 && j < w->n_traj; j++)
      if (w->next_step[w->traj_block[j]] == k)
        memcpy(w->positions + ((size_t)frame * w->n_traj + j) * d,
               Y + (size_t)w->traj_row[j] * W, (size_t)d * sizeof *Y);
    for (long ib = 0; rc == NRD_OK && ib < w->n_blocks; ib++) {
      if (w->next_step[ib] != k) continue; /* done, or ahead after a restart */
      long first = w->blocks[ib] * bs, count = w->count[ib];
      /* the main positions, contiguous for the score's GEMMs */
      double *Yrow = Y + (size_t)w->first_row[ib] * W;
      double *Yb = W == d ? Yrow : Ymain;
      for (long i = 0; W != d && i < count; i++)
        memcpy(Yb + i * d, Yrow + i * W, (size_t)d * sizeof *Yb);
      if (out >= 0 && !all_finite((size_t)count * W, Yrow)) {
        fail_block(w, L, ib, out, steps);
        if (!c->point_failed[m->point.index]++)
          nrd_warn("grid point %d: the state of particles %ld..%ld is not "
                   "finite at step %ld (t = %.6g); the grid point fails "
                   "(likely a time step too large for h |A|, see the "
                   "step-size check, or an overflow)",
                   m->point.index, first, first + count - 1, k, t[k]);
        continue;
      }
      if (folded)
        rc = score_model_eval_nonlinear(&cur, (int)count, Yb, S0, y2, nearest,
                                        work);
      else if (score_ok)
        rc = score_model_eval(&cur, (int)count, Yb, S0, resp, NULL, y2, nearest,
                              work);
      if (rc != NRD_OK) break;
      double *rec = w->records + (size_t)ib * L->record;
      size_t stride = (size_t)w->n_blocks * L->record;
      if (out >= 0)
        obs_accumulate(L, count, Yb, S0, L->empirical ? NULL : resp,
                       L->empirical ? y2 : NULL, score_ok, rec + out * stride);
      if (proto_on) {
        long fwd = c->out_index[steps - k];
        proto_block b = {
            .k = k,
            .first = first,
            .count = count,
            .state = Yrow,
            .main = Yb,
            .main_nearest = L->empirical && score_ok ? nearest : NULL,
            .score_ok = score_ok,
            .rec_out = out >= 0 ? rec + out * stride : NULL,
            .rec_fwd = fwd >= 0 ? rec + fwd * stride : NULL,
            .rec_final = L->width[OBS_FINAL] > 0
                             ? rec + (c->n_out - 1) * stride +
                                   L->offset[OBS_FINAL]
                             : NULL,
        };
        rc = proto_block_step(&prun, &cur, &ops, L, t, &b);
        if (rc != NRD_OK) break;
      }
      w->next_step[ib] = k + 1;
      if (k == steps) continue;
      if (ode) {
        ode_predict(&ops, (int)count, Yb, S0, Ystar);
        if (next_ok) {
          rc = score_model_eval(&nxt, (int)count, Ystar, S1, NULL, NULL, NULL,
                                NULL, work);
          ode_correct(&ops, (int)count, Yb, S0, Ystar, S1, tmp);
        } else { /* score singular at the final time: Euler last step */
          memcpy(Yb, Ystar, (size_t)count * d * sizeof *Yb);
        }
      } else {
        for (long i = 0; i < count; i++)
          rng_normals(m->seed, RNG_PURPOSE_STEP, (uint64_t)(first + i),
                      (uint32_t)k, (size_t)d, Xi + i * d);
        if (folded)
          reverse_sde_step_folded(&ops, &fold, (int)count, Yb, S0, Xi, tmp);
        else
          reverse_sde_step(&ops, (int)count, Yb, S0, Xi, tmp);
      }
      for (long i = 0; W != d && i < count; i++)
        memcpy(Yrow + i * W, Yb + i * d, (size_t)d * sizeof *Yb);
    }
    if (out >= 0) {
      double sum = 0, n = 0;
      for (long ib = 0; ib < w->n_blocks; ib++) {
        const double *r =
            w->records + ((size_t)out * w->n_blocks + ib) * L->record;
        sum += r[L->offset[key]];
        n += r[L->offset[OBS_COUNT]];
      }
      key_value = sum / n;
    }
    if (pr) {
      pr->done += step_cost;
      pr->steps_done++;
      progress_report(pr, c, m, k, key_value, obs_describe(key)->name);
    }
  }
  if (ops_ok) {
    step_ops_free(&ops);
    step_fold_free(&fold);
  }
  if (proto_on) proto_run_free(&prun);
  free(Ymain);
  score_model_free(&cur);
  score_model_free(&nxt);
  if (!c->stopped) { /* positions are not needed any more */
    free(w->Y);
    w->Y = NULL;
  }
  free(Ystar);
  free(S0);
  free(S1);
  free(Xi);
  free(tmp);
  free(resp);
  free(y2);
  free(nearest);
  free(work);
  return rc;
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
  obs_layout *lay = NRD_XCALLOC((size_t)P, sizeof *lay);
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
    point_state_build(&c, i, (int)g->dimension, &lay[i], &c.state[i]);
    if (c.state[i].n_blocks > 0) {
      pr.total += plan->flops[i] * c.state[i].n_rows / plan->particles;
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
    model m;
    char err[1024];
    if (model_build(&m, p, &plan->points[i], matrix_file_read, err, sizeof err) != NRD_OK)
      NRD_ABORT(NRD_EXIT_RUNTIME, "grid point %d: %s", i, err);
    obs_layout_free(&lay[i]);
    if (obs_layout_init(&lay[i], m.d, m.mix.K, m.mix.means, m.n_train > 0) !=
        NRD_OK)
      NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
    proto_layout_observables(&c.proto[i], &lay[i]);
    double share = plan->flops[i] * c.state[i].n_rows / plan->particles;
    rc = run_point(&c, &m, &lay[i], &c.proto[i], &c.state[i], share,
                   rank == 0 ? &pr : NULL);
    if (rc != NRD_OK) {
      c.failed = 1;
      nrd_warn("rank %d: grid point %d failed: %s", rank, i, nrd_strerror(rc));
    }
    pr.points_done++;
    model_free(&m);
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
    free(lay);
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
  free(lay);
  free(th);
  free(rep);
  ctx_free(&c);
  free(t);
  return n_failed > 0 ? NRD_EXIT_RUNTIME : NRD_EXIT_OK;
}
