/* One grid point on this rank (runctx.h), in three calls, after FFTW's
 * plan and execute:
 *
 *   point_setup  everything that can fail: the point's model, the state and
 *                scratch arrays, the score at two times, the step's maps
 *                and fold, the protocols' state, the initial state of the
 *                blocks not started yet;
 *   point_steps  the step loop.  At every step all ranks meet (run_sync),
 *                the step's decisions are made once (the score's time, the
 *                step size, whether the step folds the score's linear part)
 *                and every block still at this step is observed, carried
 *                through the protocols and stepped, with no allocation of
 *                its own.
 *                Its expected failures are the point's and numerical: the
 *                score or the step's maps cannot be formed, or a block's
 *                state is not finite; the point's blocks are then marked
 *                failed (the marks below), the run goes on and the report
 *                says why.  What else may fail is inside a protocol's step
 *                (protocol.h): that is the run's failure, with a trace;
 *   point_free   one free, whatever happened.
 *
 * Every random draw is keyed by (seed, purpose, particle, step), so a block
 * gives the same sums on whichever rank it runs and after a restart. */
#include "core/integrate.h"
#include "core/linalg.h"
#include "core/rng.h"
#include "io/matrix_file.h"
#include "run/runctx.h"
#include "util/error.h"
#include "util/log.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------- this rank's share */

void point_state_build(const run_ctx *c, int point, point_state *w) {
  const run_plan *plan = c->plan;
  const obs_layout *L = &c->layout[point];
  int rank = nrd_log_rank();
  long B = plan->n_blocks;
  memset(w, 0, sizeof *w);
  w->d = L->d;
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
  w->positions =
      NRD_XCALLOC((size_t)c->n_frames * w->n_traj * w->d, sizeof *w->positions);
  w->Y = NULL; /* allocated when the point runs (or by a restart) */
}

void point_state_free(point_state *w) {
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

double point_share_cost(const run_ctx *c, int point) {
  return c->plan->flops[point] * c->state[point].n_rows / c->plan->particles;
}

/* ---------------------------------------------------- the failure marks */

/* A block that fails (its state is not finite, or a step cannot be made)
 * stops, and its |y|^2 sum at output time o becomes NaN: the mark of a
 * failed grid point, which checkpoints carry and the report reads
 * (point_failed_at); |y|^2 of a finite state is never NaN. */
static void block_fail(point_state *w, const obs_layout *L, long ib, long o,
                       long steps) {
  w->records[((size_t)o * w->n_blocks + ib) * L->record +
             L->offset[OBS_NORM2]] = NAN;
  w->next_step[ib] = steps + 1;
}

/* Every block of this rank still running at step k fails, marked at the
 * first output time at or after k; why: the numerical cause. */
static void point_fail(point_run *r, long k, const char *why) {
  run_ctx *c = r->c;
  point_state *w = r->w;
  long o = 0, steps = c->plan->steps;
  while (o + 1 < c->n_out && c->out_step[o] < k)
    o++;
  for (long ib = 0; ib < w->n_blocks; ib++)
    if (w->next_step[ib] <= steps) block_fail(w, r->L, ib, o, steps);
  if (!c->point_failed[r->index]++)
    nrd_warn("grid point %d: %s at step %ld (t = %.6g); the grid point "
             "fails",
             r->index, why, k, c->t[k]);
  nrd_error_reset(); /* handled: the point's failure, not the run's */
}

long point_failed_at(const obs_layout *L, long n_out, long B,
                     const double *blocks) {
  for (long i = 0; i < n_out; i++)
    for (long b = 0; b < B; b++)
      if (!isfinite(
              blocks[((size_t)i * B + b) * L->record + L->offset[OBS_NORM2]]))
        return i;
  return -1;
}

/* ---------------------------------------------------------------- set-up */

/* The first step of any block of the point not done (steps + 1: none). */
static long first_step(const point_state *w, long steps) {
  long done = steps + 1, kmin = done;
  for (long ib = 0; ib < w->n_blocks; ib++)
    if (w->next_step[ib] != done)
      kmin = w->next_step[ib] == BLOCK_NOT_STARTED
                 ? 0
                 : (w->next_step[ib] < kmin ? w->next_step[ib] : kmin);
  return kmin;
}

/* The blocks not started get their initial condition at forward time T:
 * N(0, S) or the exact p_T.  Xi, Yblock: block_size x d scratch. */
static int initial_state(const nrd_params *p, const model *m,
                         const run_plan *plan, point_state *w, double T,
                         double *Xi, double *Yblock) {
  int d = m->d, rc = NRD_OK, exact = p->integrator.start == START_EXACT;
  size_t dd = (size_t)d * d;
  double *L = NRD_XCALLOC(dd, sizeof *L), *E = NRD_XCALLOC(dd, sizeof *E);
  double *D = NRD_XCALLOC(dd, sizeof *D);
  double *X0 = NRD_XCALLOC((size_t)d, sizeof *X0);
  if (exact) {
    NRD_TRY(rc, ou_propagator(&m->op, T, E));
    NRD_TRY(rc, ou_noise_cov(&m->op, T, D));
    NRD_TRY(rc, la_cholesky(d, D, L));
  } else {
    NRD_TRY(rc, la_cholesky(d, m->op.S, L));
  }
  for (long ib = 0; rc == NRD_OK && ib < w->n_blocks; ib++) {
    if (w->next_step[ib] != BLOCK_NOT_STARTED) continue;
    w->next_step[ib] = 0;
    long first, count;
    plan_block_range(plan, w->blocks[ib], &first, &count);
    for (long i = 0; rc == NRD_OK && i < count; i++) {
      uint64_t pid = (uint64_t)(first + i);
      rng_normals(m->seed, RNG_PURPOSE_INIT, pid, 0, (size_t)d, Xi + i * d);
      if (!exact) continue;
      int label;
      NRD_TRY(rc, mixture_sample(&m->mix, m->seed, RNG_PURPOSE_FORWARD, pid, 1,
                                 X0, &label));
      if (rc == NRD_OK)
        forward_sample(d, 1, E, L, X0, Xi + i * d, Yblock + i * d);
    }
    if (!exact)
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)count, d, d,
                  1.0, Xi, d, L, d, 0.0, Yblock, d);
    for (long i = 0; i < count; i++)
      memcpy(w->Y + (size_t)(w->first_row[ib] + i) * w->width, Yblock + i * d,
             (size_t)d * sizeof *w->Y);
  }
  free(L);
  free(E);
  free(D);
  free(X0);
  return rc;
}

int point_setup(point_run *r, run_ctx *c, int point) {
  const nrd_params *p = c->p;
  const run_plan *plan = c->plan;
  memset(r, 0, sizeof *r);
  r->c = c;
  r->index = point;
  r->w = &c->state[point];
  r->L = &c->layout[point];
  r->X = &c->proto[point];
  r->cost = point_share_cost(c, point);
  r->key_value = NAN;
  r->kmin = first_step(r->w, plan->steps);
  if (r->kmin > plan->steps) return NRD_OK; /* finished before a restart */
  nrd_error_reset();
  char err[1024] = "";
  int rc = model_build_data(&r->m, p, &plan->points[point], matrix_file_read,
                            c->data, err, sizeof err);
  if (rc != NRD_OK) return NRD_FAIL(rc, "%s", err);
  point_state *w = r->w;
  const proto_layout *X = r->X;
  size_t bd = (size_t)plan->block_size * r->m.d;
  if (!w->Y) w->Y = NRD_XCALLOC((size_t)w->n_rows * w->width, sizeof *w->Y);
  r->Ymain = NRD_XCALLOC(bd, sizeof *r->Ymain);
  r->Ystar = NRD_XCALLOC(bd, sizeof *r->Ystar);
  r->S0 = NRD_XCALLOC(bd, sizeof *r->S0);
  r->S1 = NRD_XCALLOC(bd, sizeof *r->S1);
  r->Xi = NRD_XCALLOC(bd, sizeof *r->Xi);
  r->tmp = NRD_XCALLOC(2 * bd, sizeof *r->tmp);
  r->resp = NRD_XCALLOC((size_t)plan->block_size * r->m.mix.K, sizeof *r->resp);
  r->y2 = NRD_XCALLOC((size_t)plan->block_size, sizeof *r->y2);
  r->nearest = NRD_XCALLOC((size_t)plan->block_size, sizeof *r->nearest);
  r->ode = p->integrator.scheme == SCHEME_ODE_HEUN;
  r->protocols = X->speciation || X->collapse || X->uturn || X->forward;
  NRD_TRY(rc, score_model_init(&r->cur, &r->m));
  NRD_TRY(rc, score_model_init(&r->nxt, &r->m));
  NRD_TRY(rc, step_ops_init(&r->ops, &r->m.op, p->integrator.scheme));
  NRD_TRY(rc, step_fold_init(&r->fold, r->m.d));
  if (r->protocols)
    NRD_TRY(rc, proto_run_init(&r->prun, X, &r->m, &r->cur, c->t,
                               plan->block_size));
  if (rc == NRD_OK)
    r->work = NRD_XCALLOC(score_model_work_size(&r->cur, (int)plan->block_size),
                          sizeof *r->work);
  NRD_TRY(rc, initial_state(p, &r->m, plan, w, c->t[0], r->Xi, r->Ymain));
  return rc;
}

void point_free(point_run *r) {
  step_ops_free(&r->ops);
  step_fold_free(&r->fold);
  proto_run_free(&r->prun);
  score_model_free(&r->cur);
  score_model_free(&r->nxt);
  model_free(&r->m);
  free(r->Ymain);
  free(r->Ystar);
  free(r->S0);
  free(r->S1);
  free(r->Xi);
  free(r->tmp);
  free(r->resp);
  free(r->y2);
  free(r->nearest);
  free(r->work);
  if (r->w && r->kmin <= r->c->plan->steps && !r->c->stopped) {
    free(r->w->Y); /* the positions are not needed any more */
    r->w->Y = NULL;
  }
  memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------ the loop */

/* What step k does, decided once for every block: it depends only on the
 * step and the point, never on the rank. */
typedef struct {
  long k;
  long out, frame; /* the step's output time and frame, or -1 */
  int score_ok;    /* the score at t[k] is valid */
  int folded;      /* the step applies the score's -Delta^{-1} y itself */
  int next_ok;     /* the ODE's score at t[k + 1] is valid */
} step_plan;

/* Folding the empirical score's -Delta^{-1} y into the step saves a
 * P x d x d product per block; the exponential scheme with dense G and
 * Delta^{-1} pays one d x d x d product per time for G Delta^{-1}. */
static int fold_pays(const step_ops *ops, const double *dinv, long particles) {
  if (ops->scheme != SCHEME_EXPONENTIAL || ops->iso_G || !dinv) return 1;
  return particles > ops->d;
}

/* The decisions of step k; 0 when the point fails there (marked). */
static int step_decide(point_run *r, long k, step_plan *s) {
  const run_ctx *c = r->c;
  const nrd_params *p = c->p;
  const double *t = c->t;
  long steps = c->plan->steps;
  s->k = k;
  s->out = c->out_index[k];
  s->frame = c->frame_index[k];
  s->score_ok = score_model_set_time(&r->cur, t[k]) == NRD_OK;
  if (!s->score_ok && k < steps) {
    point_fail(r, k,
               "the score cannot be evaluated (e^{-At} or Delta_t "
               "not finite, or Delta_t singular)");
    return 0;
  }
  /* A uniform grid's steps are all the nominal (T - t_min)/steps: the
   * differences t[k] - t[k+1] vary in their last bits, and each new h
   * would rebuild the exponential scheme's matrices (a 2d x 2d expm, half
   * the time of a d = 512 run) */
  double h = p->time.spacing == SPACING_UNIFORM
                 ? (p->time.T - p->time.t_min) / (double)steps
                 : (k < steps ? t[k] - t[k + 1] : 0.0);
  if (k < steps && step_ops_set_h(&r->ops, &r->m.op, h) != NRD_OK) {
    point_fail(r, k,
               "the step's maps e^{Ah} cannot be formed (h |A| "
               "overflows)");
    return 0;
  }
  /* Steps without output let the integrator apply the empirical score's
   * -Delta^{-1} y with its own map (integrate.h, step_fold); output steps
   * need the whole score for the observables. */
  int split = 0;
  double dinv_iso = 0;
  const double *dinv = score_model_dinv(&r->cur, &split, &dinv_iso);
  s->folded = split && s->score_ok && !r->ode && k < steps && s->out < 0 &&
              fold_pays(&r->ops, dinv, c->plan->particles);
  if (s->folded) step_fold_set(&r->fold, &r->ops, dinv, dinv_iso);
  s->next_ok =
      r->ode && k < steps && score_model_set_time(&r->nxt, t[k + 1]) == NRD_OK;
  nrd_error_reset(); /* a score singular at the last time is expected */
  return 1;
}

/* The sampled trajectories of blocks at step k, at the step's frame. */
static void record_frames(point_run *r, const step_plan *s) {
  point_state *w = r->w;
  int d = r->m.d;
  for (long j = 0; s->frame >= 0 && j < w->n_traj; j++)
    if (w->next_step[w->traj_block[j]] == s->k)
      memcpy(w->positions + ((size_t)s->frame * w->n_traj + j) * d,
             w->Y + (size_t)w->traj_row[j] * w->width,
             (size_t)d * sizeof *w->Y);
}

static int all_finite(size_t n, const double *x) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

/* Block ib at step k: observed (at output times), carried through the
 * protocols, then stepped to k + 1. */
static int block_step(point_run *r, long ib, const step_plan *s) {
  run_ctx *c = r->c;
  point_state *w = r->w;
  const obs_layout *L = r->L;
  const model *m = &r->m;
  long k = s->k, out = s->out, steps = c->plan->steps;
  long first = w->blocks[ib] * c->plan->block_size, count = w->count[ib];
  int d = m->d, W = w->width;
  /* the main positions, contiguous for the score's GEMMs */
  double *Yrow = w->Y + (size_t)w->first_row[ib] * W;
  double *Yb = W == d ? Yrow : r->Ymain;
  for (long i = 0; W != d && i < count; i++)
    memcpy(Yb + i * d, Yrow + i * W, (size_t)d * sizeof *Yb);
  if (out >= 0 && !all_finite((size_t)count * W, Yrow)) {
    block_fail(w, L, ib, out, steps);
    if (!c->point_failed[r->index]++)
      nrd_warn("grid point %d: the state of particles %ld..%ld is not "
               "finite at step %ld (t = %.6g); the grid point fails "
               "(likely a time step too large for h |A|, see the "
               "step-size check, or an overflow)",
               r->index, first, first + count - 1, k, c->t[k]);
    return NRD_OK;
  }
  if (s->folded)
    NRD_CHECK(score_model_eval_nonlinear(&r->cur, (int)count, Yb, r->S0,
                                         r->resp, r->y2, r->nearest, r->work));
  else if (s->score_ok)
    NRD_CHECK(score_model_eval(&r->cur, (int)count, Yb, r->S0, r->resp, NULL,
                               r->y2, r->nearest, r->work));
  double *rec = w->records + (size_t)ib * L->record;
  size_t stride = (size_t)w->n_blocks * L->record;
  if (out >= 0)
    obs_accumulate(L, count, Yb, r->S0, L->classes ? r->resp : NULL,
                   L->empirical ? r->y2 : NULL, s->score_ok,
                   rec + out * stride);
  if (r->protocols) {
    long fwd = c->out_index[steps - k];
    proto_block b = {
        .k = k,
        .first = first,
        .count = count,
        .state = Yrow,
        .main = Yb,
        .main_nearest = L->empirical && s->score_ok ? r->nearest : NULL,
        .score_ok = s->score_ok,
        .rec_out = out >= 0 ? rec + out * stride : NULL,
        .rec_fwd = fwd >= 0 ? rec + fwd * stride : NULL,
        .rec_final = L->width[OBS_FINAL] > 0
                         ? rec + (c->n_out - 1) * stride + L->offset[OBS_FINAL]
                         : NULL,
    };
    NRD_CHECK(proto_block_step(&r->prun, &r->cur, &r->ops, L, c->t, &b));
  }
  w->next_step[ib] = k + 1;
  if (k == steps) return NRD_OK;
  if (r->ode) {
    ode_predict(&r->ops, (int)count, Yb, r->S0, r->Ystar);
    if (s->next_ok) {
      NRD_CHECK(score_model_eval(&r->nxt, (int)count, r->Ystar, r->S1, NULL,
                                 NULL, NULL, NULL, r->work));
      ode_correct(&r->ops, (int)count, Yb, r->S0, r->Ystar, r->S1, r->tmp);
    } else { /* score singular at the final time: Euler last step */
      memcpy(Yb, r->Ystar, (size_t)count * d * sizeof *Yb);
    }
  } else {
    for (long i = 0; i < count; i++)
      rng_normals(m->seed, RNG_PURPOSE_STEP, (uint64_t)(first + i), (uint32_t)k,
                  (size_t)d, r->Xi + i * d);
    if (s->folded)
      reverse_sde_step_folded(&r->ops, &r->fold, (int)count, Yb, r->S0, r->Xi,
                              r->tmp);
    else
      reverse_sde_step(&r->ops, (int)count, Yb, r->S0, r->Xi, r->tmp);
  }
  for (long i = 0; W != d && i < count; i++)
    memcpy(Yrow + i * W, Yb + i * d, (size_t)d * sizeof *Yb);
  return NRD_OK;
}

/* The headline observable's mean over this rank's blocks at output time o
 * (what the progress line shows). */
static double key_mean(const point_run *r, int key, long o) {
  const point_state *w = r->w;
  double sum = 0, n = 0;
  for (long ib = 0; ib < w->n_blocks; ib++) {
    const double *rec =
        w->records + ((size_t)o * w->n_blocks + ib) * r->L->record;
    sum += rec[r->L->offset[key]];
    n += rec[r->L->offset[OBS_COUNT]];
  }
  return sum / n;
}

int point_steps(point_run *r, progress *pr) {
  run_ctx *c = r->c;
  long steps = c->plan->steps;
  double step_cost = r->cost / (double)(steps > 0 ? steps : 1);
  int key = r->L->empirical ? OBS_PARTICIPATION_Y2 : OBS_SPECIATION_PHI;
  int rc = NRD_OK;
  for (long k = r->kmin; rc == NRD_OK && k <= steps; k++) {
    /* every block of this point is now at a step boundary */
    int sync = run_sync(c, 0);
    if (sync == SYNC_STOPPED) break;
    if (sync == SYNC_FAILED) {
      c->peer_failed = 1;
      break;
    }
    step_plan s;
    if (!step_decide(r, k, &s)) break; /* the point failed (marked) */
    record_frames(r, &s);
    for (long ib = 0; rc == NRD_OK && ib < r->w->n_blocks; ib++)
      if (r->w->next_step[ib] == k) /* not done, nor ahead after a restart */
        NRD_TRY(rc, block_step(r, ib, &s));
    if (s.out >= 0) r->key_value = key_mean(r, key, s.out);
    if (pr) {
      pr->done += step_cost;
      pr->steps_done++;
      progress_report(pr, c, r->index, k, r->key_value,
                      obs_describe(key)->name);
    }
  }
  return rc;
}

int run_point(run_ctx *c, int point, progress *pr) {
  point_run r;
  int rc = point_setup(&r, c, point);
  if (rc == NRD_OK) rc = point_steps(&r, pr);
  point_free(&r);
  return rc;
}
