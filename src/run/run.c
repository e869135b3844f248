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
#define _POSIX_C_SOURCE 200809L /* sigaction */
#include "run/run.h"
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

/* The level phi = F(1) at which the project defines t_S (physics.md 4.2). */
static double phi_level(void) {
  return theory_F(1.0);
}

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  return p;
}

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


/* ------------------------------------------------------------ theory */

/* The step the physics checks judge: the nominal one of a uniform grid
 * (what run_point steps with), the first and longest of a log grid. */
static double largest_step(const run_ctx *c) {
  const nrd_params *p = c->p;
  long n = c->plan->steps;
  if (p->time.spacing == SPACING_UNIFORM)
    return (p->time.T - p->time.t_min) / (double)(n > 0 ? n : 1);
  return n > 0 ? c->t[0] - c->t[1] : 0;
}

static void theory_for_point(const run_ctx *c, const model *m,
                             point_theory *th) {
  const mixture *mx = &m->mix;
  th->empirical = m->n_train > 0;
  th->symmetric2 = mx->symmetric2;
  th->K = mx->K;
  th->rate = NAN;
  ou_relaxation_rate(&m->op, &th->rate);
  th->entropy = ou_entropy_production(&m->op);
  if (diagnose_operator(&m->op, c->p->integrator.scheme, largest_step(c),
                        c->plan->steps, &th->check) != NRD_OK)
    memset(&th->check, 0, sizeof th->check); /* not checked */
  /* kappa_t = 1 for two symmetric classes, the matrix criterion
   * (physics.md 4.3) otherwise; for the empirical score the REM collapse
   * time with the finite-d mixture correction, alpha = ln n / d (an
   * n, d -> infinity result: a reference, not a prediction, at small d) */
  double tc = NAN;
  if (th->empirical) {
    double alpha = log((double)m->n_train) / m->d;
    if (alpha > 0) {
      if (mx->symmetric2)
        theory_tC_rem_gm2(&m->op, mx->means, mx->cov, alpha, &tc);
      else
        theory_tC_rem(&m->op, mx->cov, alpha, &tc);
    }
  } else if (mx->symmetric2) {
    theory_tS_kappa(&m->op, mx->means, mx->cov, &tc);
  } else if (mx->cov_shared) {
    theory_tS_matrix(&m->op, mx->K, mx->weights, mx->means, mx->cov, &tc);
  }
  th->critical = tc;
  if (proto_theory_build(&th->proto, &c->proto[m->point.index], m, c->n_out,
                         c->out_time) != NRD_OK)
    NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  th->phi_theory = xcalloc((size_t)c->n_out, sizeof *th->phi_theory);
  th->norm2_theory = xcalloc((size_t)c->n_out, sizeof *th->norm2_theory);
  int d = m->d;
  size_t dd = (size_t)d * d;
  double *S0 = xcalloc(dd, sizeof *S0), *St = xcalloc(dd, sizeof *St);
  double *W = xcalloc(dd, sizeof *W), *D = xcalloc(dd, sizeof *D);
  mixture_covariance(mx, S0);
  double mean2 = 0; /* |E x_0|^2, carried by e^{-At} */
  double *mean = xcalloc((size_t)d, sizeof *mean);
  for (int k = 0; k < mx->K; k++)
    for (int j = 0; j < d; j++)
      mean[j] += mx->weights[k] * mx->means[(size_t)k * d + j];
  double *E = xcalloc(dd, sizeof *E), *Em = xcalloc((size_t)d, sizeof *Em);
  double *M2 = NULL, *EM2 = NULL; /* second moment of the training set */
  if (th->empirical) {
    M2 = xcalloc(dd, sizeof *M2);
    EM2 = xcalloc(dd, sizeof *EM2);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, (int)m->n_train,
                1.0 / (double)m->n_train, m->train, d, m->train, d, 0.0, M2, d);
  }
  /* e^{-At} and Delta_t once per output time (d^3 each for a dense
   * operator), for E|x_t|^2 and kappa_t alike */
  for (long i = 0; i < c->n_out; i++) {
    double t = c->out_time[i];
    th->norm2_theory[i] = th->phi_theory[i] = NAN;
    if (ou_moments(&m->op, t, E, D) != NRD_OK) continue;
    double tr = 0;
    mean2 = 0;
    if (th->empirical) {
      /* p^e_t = mean over mu of N(e^{-At} a_mu, Delta_t): tr Delta_t plus
       * the mean of |e^{-At} a_mu|^2 = tr(E M2 E^T), M2 = mean a a^T */
      memcpy(St, D, dd * sizeof *St);
      la_matmul(d, E, M2, EM2);
      for (size_t k = 0; k < dd; k++)
        mean2 += EM2[k] * E[k];
    } else {
      ou_marginal_from(d, E, D, S0, St, W);
      la_matvec(d, E, mean, Em);
      for (int j = 0; j < d; j++)
        mean2 += Em[j] * Em[j];
    }
    for (int j = 0; j < d; j++)
      tr += St[(size_t)j * d + j];
    th->norm2_theory[i] = tr + mean2;
    double kap = NAN;
    if (!th->empirical && mx->symmetric2 &&
        theory_kappa_from(&m->op, E, D, mx->means, mx->cov, &kap) == NRD_OK)
      th->phi_theory[i] = theory_F(kap);
  }
  free(S0);
  free(St);
  free(W);
  free(D);
  free(mean);
  free(E);
  free(Em);
  free(M2);
  free(EM2);
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
  w->blocks = xcalloc((size_t)B, sizeof *w->blocks);
  w->first_row = xcalloc((size_t)B, sizeof *w->first_row);
  w->count = xcalloc((size_t)B, sizeof *w->count);
  w->next_step = xcalloc((size_t)B, sizeof *w->next_step);
  w->traj = xcalloc((size_t)c->n_traj, sizeof *w->traj);
  w->traj_row = xcalloc((size_t)c->n_traj, sizeof *w->traj_row);
  w->traj_block = xcalloc((size_t)c->n_traj, sizeof *w->traj_block);
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
  w->records = xcalloc((size_t)c->n_out * w->n_blocks * L->record,
                       sizeof *w->records);
  w->positions = xcalloc((size_t)c->n_frames * w->n_traj * d,
                         sizeof *w->positions);
  w->Y = NULL; /* allocated while the point runs */
}

/* ----------------------------------------------------- stop and resume */

/* The stop signal received (SIGTERM, SIGUSR1: what Slurm and scancel send
 * before the time limit; SIGINT: Ctrl-C), 0 if none.  A second SIGINT
 * while the first is being honoured ends the process at once. */
static volatile sig_atomic_t stop_signal = 0;

static void on_stop_signal(int sig) {
  if (sig == SIGINT && stop_signal == SIGINT) {
    signal(SIGINT, SIG_DFL);
    raise(SIGINT);
  }
  stop_signal = sig;
}

static const int STOP_SIGNALS[] = {SIGTERM, SIGUSR1, SIGINT};
enum { N_STOP_SIGNALS = 3 };

void run_catch_stop_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigset_t set;
  sigemptyset(&set);
  for (int i = 0; i < N_STOP_SIGNALS; i++) {
    sigaction(STOP_SIGNALS[i], &sa, NULL);
    sigaddset(&set, STOP_SIGNALS[i]);
  }
  /* blocked across a re-execution (blaskernel.c), which resets handlers
   * but keeps the mask and pending signals: deliver them now */
  sigprocmask(SIG_UNBLOCK, &set, NULL);
}

void run_block_stop_signals(void) {
  sigset_t set;
  sigemptyset(&set);
  for (int i = 0; i < N_STOP_SIGNALS; i++)
    sigaddset(&set, STOP_SIGNALS[i]);
  sigprocmask(SIG_BLOCK, &set, NULL);
}

static const char *signal_name(int sig) {
  return sig == SIGTERM ? "SIGTERM" : sig == SIGUSR1 ? "SIGUSR1" : "SIGINT";
}

enum { SYNC_CONTINUE, SYNC_STOPPED, SYNC_FAILED, SYNC_ALL_DONE };

/* Collective, once per step of every rank (ranks without work call it too
 * until everyone is done): agree on whether to checkpoint and whether to
 * stop.  A stop (signal on any rank, the stop file, run.max_wall_time)
 * writes a checkpoint first.  The state must be at a step boundary. */
static int run_sync(run_ctx *c, int finished) {
  const nrd_params *p = c->p;
  /* signal (the largest number seen), stop file, wall time, periodic
   * checkpoint, work left, failure: the reasons are agreed, so every rank
   * reports the same one */
  enum { W_SIGNAL, W_FILE, W_WALL, W_PERIODIC, W_WORK, W_FAILED, W_N };
  int want[W_N] = {(int)stop_signal, 0, 0, 0, !finished, c->failed};
  if (nrd_log_rank() == 0) {
    double now = nrd_log_elapsed();
    want[W_FILE] = access(p->checkpoint.stop_file, F_OK) == 0;
    /* a segment always makes one step: a budget smaller than the set-up
     * time must not leave a job chain restarting forever */
    want[W_WALL] = p->run.max_wall_time > 0 && now >= p->run.max_wall_time &&
                   c->rounds > 0;
    want[W_PERIODIC] = (p->checkpoint.every > 0 && c->rounds > 0 &&
                        c->rounds % p->checkpoint.every == 0) ||
                       (p->checkpoint.interval > 0 &&
                        now - c->last_checkpoint >= p->checkpoint.interval);
  }
  NRD_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, want, W_N, MPI_INT, MPI_MAX,
                              MPI_COMM_WORLD));
  c->rounds++;
  if (want[W_FAILED]) return SYNC_FAILED;
  if (!want[W_WORK]) return SYNC_ALL_DONE;
  int stop = want[W_SIGNAL] || want[W_FILE] || want[W_WALL];
  if (stop || want[W_PERIODIC]) {
    checkpoint_write(p, &c->shape, c->state);
    c->last_checkpoint = nrd_log_elapsed();
  }
  if (!stop) return SYNC_CONTINUE;
  c->stopped = 1;
  if (want[W_SIGNAL])
    snprintf(c->stop_reason, sizeof c->stop_reason, "%s",
             signal_name(want[W_SIGNAL]));
  else if (want[W_FILE])
    snprintf(c->stop_reason, sizeof c->stop_reason, "stop file %.200s",
             p->checkpoint.stop_file);
  else
    snprintf(c->stop_reason, sizeof c->stop_reason, "run.max_wall_time = %g s",
             p->run.max_wall_time);
  /* an honoured stop file goes, or every restart would stop again (its
   * checkpoint is written: nothing is lost) */
  if (want[W_FILE] && nrd_log_rank() == 0 &&
      unlink(p->checkpoint.stop_file) != 0)
    nrd_warn("cannot remove the stop file '%s': remove it before restarting",
             p->checkpoint.stop_file);
  return SYNC_STOPPED;
}

/* Progress of rank 0's own work, which plan_assign balanced against the
 * other ranks' (so its ETA is the run's). */
typedef struct {
  double total, done; /* estimated flops of rank 0's work items */
  double start, last;
  long steps_done; /* over all of rank 0's grid points */
  int points_done, points_total;
} progress;

static void progress_report(progress *pr, const run_ctx *c, const model *m,
                            long k, double key, const char *key_name) {
  double now = nrd_log_elapsed();
  if (now - pr->last < 5.0 || pr->done <= 0 || pr->steps_done <= 0) return;
  pr->last = now;
  double f = pr->done / pr->total, spent = now - pr->start;
  nrd_info("point %d (%d/%d done here) step %ld/%ld t = %.4f %s = %.4f | "
           "%.3f ms/step, %.0f%% of this rank's work, ETA %.0f s",
           m->point.index, pr->points_done, pr->points_total, k,
           c->plan->steps, c->t[k], key_name, key,
           1e3 * spent / (double)pr->steps_done, 100 * f,
           spent * (1 - f) / f);
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
  if (!w->Y) w->Y = xcalloc((size_t)w->n_rows * W, sizeof *w->Y);
  double *Y = w->Y;
  double *Ymain = xcalloc((size_t)bs * d, sizeof *Ymain);
  int proto_on = X->speciation || X->collapse || X->uturn || X->forward;
  double *Ystar = xcalloc((size_t)bs * d, sizeof *Ystar);
  double *S0 = xcalloc((size_t)bs * d, sizeof *S0);
  double *S1 = xcalloc((size_t)bs * d, sizeof *S1);
  double *Xi = xcalloc((size_t)bs * d, sizeof *Xi);
  double *tmp = xcalloc((size_t)2 * bs * d, sizeof *tmp);
  double *resp = xcalloc((size_t)bs * K, sizeof *resp);
  double *y2 = xcalloc((size_t)bs, sizeof *y2);
  int *nearest = xcalloc((size_t)bs, sizeof *nearest);
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
  double *work = xcalloc(
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

/* ------------------------------------------------------------ report */

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
static int kind_cloned(const point_report *r) {
  return r->empirical ? r->cloned_C : r->cloned_S;
}
static estimate kind_clone(const point_report *r) {
  return r->empirical ? r->clone_C : r->clone_S;
}

/* "1.8221 +- 0.0034", "not reached", or the value without an error. */
static const char *estimate_text(char *buf, size_t len, estimate e) {
  if (isnan(e.value))
    snprintf(buf, len, "not reached");
  else if (isnan(e.error))
    snprintf(buf, len, "%.4f (no error: a leave-one-block-out curve does not "
             "reach the level, or one block)", e.value);
  else
    snprintf(buf, len, "%.4f +- %.4f", e.value, e.error);
  return buf;
}

/* A theory value, or "not available" (no closed form here). */
static const char *theory_text(char *buf, size_t len, double v) {
  if (isnan(v))
    snprintf(buf, len, "not available");
  else
    snprintf(buf, len, "%.4f", v);
  return buf;
}

/* Observable column q of every (output time, block) record as B x n
 * block-major (the layout of an_ratio_curve). */
static void block_column(long n, long B, long R, const double *blocks, int q,
                         double *out) {
  for (long i = 0; i < n; i++)
    for (long b = 0; b < B; b++)
      out[b * n + i] = blocks[((size_t)i * B + b) * R + q];
}

/* The crossing of a cloning curve: pairs that agree (columns `agree` ..
 * of the end-of-run sums) over the pairs (the count), at the branch times. */
static estimate clone_crossing(const proto_layout *X, const obs_layout *L,
                               long n_out, long B, const double *blocks,
                               int agree, double level) {
  long nb = X->n_branch, R = L->record;
  const double *fin = blocks + (size_t)(n_out - 1) * B * R +
                      L->offset[OBS_FINAL];
  double *num = xcalloc((size_t)(B * nb), sizeof *num);
  double *den = xcalloc((size_t)(B * nb), sizeof *den);
  for (long b = 0; b < B; b++)
    for (long s = 0; s < nb; s++) {
      num[b * nb + s] = fin[b * R + agree + s];
      den[b * nb + s] = fin[b * R + X->f_count];
    }
  estimate e;
  an_jackknife_crossing(nb, X->branch_time, B, num, den, level, -1, &e.value,
                        &e.error);
  free(num);
  free(den);
  return e;
}

/* The first output time at which a block of the point failed (its |y|^2
 * sum is not finite: fail_block's mark, or an overflow), or -1. */
static long point_failed_at(const obs_layout *L, long n_out, long B,
                            const double *blocks) {
  for (long i = 0; i < n_out; i++)
    for (long b = 0; b < B; b++)
      if (!isfinite(blocks[((size_t)i * B + b) * L->record +
                           L->offset[OBS_NORM2]]))
        return i;
  return -1;
}

/* Why a grid point failed, for the report and its status attribute. */
static void failure_text(const run_ctx *c, const point_theory *th,
                         const grid_point *g, long at, char *buf,
                         size_t len) {
  char check[1024] = "";
  diagnose_point_text(&th->check, c->p, g, check, sizeof check);
  /* the most telling warning: instability, else bias, else the first */
  char *line = strstr(check, "unstable");
  if (!line) line = strstr(check, "biased");
  while (line && line > check && line[-1] != '\n')
    line--;
  if (!line) line = check;
  char *nl = strchr(line, '\n');
  if (nl) *nl = 0;
  const char *why = strstr(line, ": "); /* after "grid point I" */
  why = why ? why + 2 : line;
  snprintf(buf, len,
           "failed: the state of its particles is not finite by t = %.6g; "
           "no result is computed from it (%s)",
           c->out_time[at],
           why[0] ? why
                  : "no step-size warning: an overflow or a numerical "
                      "failure; try a smaller time step");
}

/* Rank 0: print one grid point and measure its critical times from the
 * block sums (n_out x n_blocks x record).  Curves, their pointwise errors
 * and the crossings come from analysis.h, as in nrdiff-post. */
static void report_point(const run_ctx *c, const grid_point *g,
                         const point_theory *th, const obs_layout *L,
                         const proto_layout *X, const double *blocks,
                         point_report *rep) {
  long B = c->plan->n_blocks, n = c->n_out, R = L->record;
  const double *tt = c->out_time;
  int key = th->empirical ? OBS_PARTICIPATION_Y2 : OBS_SPECIATION_PHI;
  double *phi = xcalloc((size_t)n, sizeof *phi);
  double *err = xcalloc((size_t)n, sizeof *err);
  double *y2 = xcalloc((size_t)n, sizeof *y2);
  double *num = xcalloc((size_t)(n * B), sizeof *num);
  double *cnt = xcalloc((size_t)(n * B), sizeof *cnt);
  double *nrm = xcalloc((size_t)(n * B), sizeof *nrm);
  block_column(n, B, R, blocks, L->offset[key], num);
  block_column(n, B, R, blocks, L->offset[OBS_COUNT], cnt);
  block_column(n, B, R, blocks, L->offset[OBS_NORM2], nrm);
  an_ratio_curve(n, B, num, cnt, phi, err);
  an_ratio_curve(n, B, nrm, cnt, y2, NULL);
  double level = th->empirical ? 0.5 : phi_level();
  memset(rep, 0, sizeof *rep);
  rep->ran = 1;
  rep->empirical = th->empirical;
  rep->theory = th->critical;
  an_jackknife_crossing(n, tt, B, num, cnt, level, -1, &rep->headline.value,
                        &rep->headline.error);
  rep->clone_S = rep->clone_C = (estimate){NAN, NAN};
  rep->cloned_S = X->speciation && X->n_branch > 0;
  rep->cloned_C = X->collapse && X->n_branch > 0;
  if (rep->cloned_S)
    rep->clone_S = clone_crossing(X, L, n, B, blocks, X->f_class, phi_level());
  if (rep->cloned_C)
    rep->clone_C = clone_crossing(X, L, n, B, blocks, X->f_nearest, 0.5);

  printf("\nGrid point %d: d = %ld, separation = %g, strength g = %g, "
         "n_train = %ld\n",
         g->index, g->dimension, g->separation, g->strength, g->n_train);
  printf("  relaxation rate min Re sigma(A) = %.4f, entropy production = "
         "%.4g\n",
         th->rate, th->entropy);
  if (th->empirical)
    printf("  %10s %12s %10s %12s %12s\n", "t", "Y2", "+-", "E|y|^2",
           "E|x_t|^2");
  else
    printf("  %10s %12s %10s %12s %12s %12s\n", "t", "phi(t)", "+-",
           "F(kappa_t)", "E|y|^2", "E|x_t|^2");
  long stride = n > 24 ? (n + 23) / 24 : 1;
  for (long i = 0; i < n; i++) {
    if (i % stride && i != n - 1) continue;
    if (th->empirical)
      printf("  %10.4f %12.5f %10.5f %12.5g %12.5g\n", tt[i], phi[i], err[i],
             y2[i], th->norm2_theory[i]);
    else
      printf("  %10.4f %12.5f %10.5f %12.5f %12.5g %12.5g\n", tt[i], phi[i],
             err[i], th->phi_theory[i], y2[i], th->norm2_theory[i]);
  }
  char v[160], w[64];
  if (th->empirical)
    printf("  measured t_C (Y2 crosses 1/2) = %s; REM collapse time t_C "
           "(d -> infinity, alpha = ln n / d) = %s\n",
           estimate_text(v, sizeof v, rep->headline),
           theory_text(w, sizeof w, th->critical));
  else
    printf("  measured t_S (phi crosses F(1) = %.4f) = %s; theory (%s) = %s\n",
           level, estimate_text(v, sizeof v, rep->headline),
           th->symmetric2 ? "kappa_t = 1" : "matrix criterion",
           theory_text(w, sizeof w, th->critical));
  if (rep->cloned_S)
    printf("  t_S by cloning (branch times only) = %s\n",
           estimate_text(v, sizeof v, rep->clone_S));
  if (rep->cloned_C)
    printf("  t_C by cloning (phi_C crosses 1/2, branch times only) = %s\n",
           estimate_text(v, sizeof v, rep->clone_C));
  fflush(stdout);
  free(phi);
  free(err);
  free(y2);
  free(num);
  free(cnt);
  free(nrm);
}

/* Rank 0: a failed grid point, with why. */
static void report_failed_point(const grid_point *g, point_report *rep,
                                const char *status) {
  memset(rep, 0, sizeof *rep);
  rep->ran = rep->failed = 1;
  rep->empirical = g->n_train > 0;
  rep->headline = rep->clone_S = rep->clone_C = (estimate){NAN, NAN};
  rep->theory = NAN;
  printf("\nGrid point %d: d = %ld, separation = %g, strength g = %g, "
         "n_train = %ld\n  FAILED: %s\n",
         g->index, g->dimension, g->separation, g->strength, g->n_train,
         status + strlen("failed: "));
  fflush(stdout);
}

/* The reversible point (strength 0) with the same other coordinates as
 * point i, or -1. */
static int reversible_partner(const run_plan *plan, int i) {
  const grid_point *g = &plan->points[i];
  for (int j = 0; j < plan->n_points; j++) {
    const grid_point *h = &plan->points[j];
    if (h->strength == 0 && h->dimension == g->dimension &&
        h->separation == g->separation && h->n_train == g->n_train)
      return j;
  }
  return -1;
}

/* A number in a column of `width`, "not reached" (NaN measurement) or "-"
 * (nothing to show). */
static void column(int width, double v, const char *if_nan) {
  if (isnan(v))
    printf(" %*s", width, if_nan);
  else
    printf(" %*.4f", width, v);
}

/* Findings: per grid point the measured critical time (the headline, as
 * reported above), its theory, the deviation in units of the error, the
 * shift relative to the reversible process (g = 0) at the same d,
 * separation and n, and the cloning estimate where it ran. */
static void print_summary(const run_plan *plan, const point_report *rep) {
  printf("\nSummary: critical time per grid point (n_train = 0: speciation "
         "t_S, phi crossing F(1) vs kappa_t = 1;\n         n_train > 0: Y2 "
         "crossing 1/2 vs the REM collapse time; cloning: phi_clone or phi_C "
         "at the branch times)\n");
  printf("  %5s %9s %10s %8s %7s %11s %8s %9s %7s %11s %11s %8s\n", "index",
         "dimension", "separation", "strength", "n_train", "measured", "+-",
         "theory", "z", "t/t(g=0)", "cloning", "+-");
  for (int i = 0; i < plan->n_points; i++) {
    const grid_point *g = &plan->points[i];
    const point_report *x = &rep[i];
    if (!x->ran) continue;
    int r = reversible_partner(plan, i);
    double ratio = r >= 0 && rep[r].ran && !rep[r].failed
                       ? x->headline.value / rep[r].headline.value
                       : NAN;
    printf("  %5d %9ld %10g %8g %7ld", g->index, g->dimension, g->separation,
           g->strength, g->n_train);
    if (x->failed) {
      printf(" %11s  (the grid point failed: see above)\n", "FAILED");
      continue;
    }
    column(11, x->headline.value, "not reached");
    column(8, x->headline.error, "-");
    column(9, x->theory, "-");
    double z = (x->headline.value - x->theory) / x->headline.error;
    if (isnan(z))
      printf(" %7s", "-");
    else
      printf(" %7.2f", z);
    column(11, ratio, "-");
    estimate cl = kind_clone(x);
    if (kind_cloned(x)) {
      column(11, cl.value, "not reached");
      column(8, cl.error, "-");
    } else {
      printf(" %11s %8s", "-", "-");
    }
    printf("\n");
  }
  printf("  z = (measured - theory) / error; |z| > 3 at n_train = 0 means "
         "disagreement beyond the statistics.\n");
  fflush(stdout);
}

/* ------------------------------------------------------------ driver */

char *done_marker_path(const nrd_params *p) {
  size_t n = strlen(p->output.file) + 8;
  char *s = xcalloc(n, 1);
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
  c->out_step = xcalloc((size_t)c->n_out, sizeof *c->out_step);
  c->out_time = xcalloc((size_t)c->n_out, sizeof *c->out_time);
  sample_steps(steps, p->output.every, c->out_step);
  for (long i = 0; i < c->n_out; i++)
    c->out_time[i] = t[c->out_step[i]];
  c->n_frames = sample_steps(steps, p->output.trajectory_every, NULL);
  c->frame_step = xcalloc((size_t)c->n_frames, sizeof *c->frame_step);
  c->frame_time = xcalloc((size_t)c->n_frames, sizeof *c->frame_time);
  sample_steps(steps, p->output.trajectory_every, c->frame_step);
  for (long i = 0; i < c->n_frames; i++)
    c->frame_time[i] = t[c->frame_step[i]];
  /* sampled trajectories: evenly spread particle ids */
  c->n_traj = p->output.trajectories < plan->particles ? p->output.trajectories
                                                       : plan->particles;
  c->traj_ids = xcalloc((size_t)c->n_traj, sizeof *c->traj_ids);
  for (long j = 0; j < c->n_traj; j++)
    c->traj_ids[j] = (long)((double)j * plan->particles / c->n_traj);
  c->out_index = xcalloc((size_t)steps + 1, sizeof *c->out_index);
  c->frame_index = xcalloc((size_t)steps + 1, sizeof *c->frame_index);
  for (long k = 0; k <= steps; k++)
    c->out_index[k] = c->frame_index[k] = -1;
  for (long i = 0; i < c->n_out; i++)
    c->out_index[c->out_step[i]] = i;
  for (long i = 0; i < c->n_frames; i++)
    c->frame_index[c->frame_step[i]] = i;
  c->owner = xcalloc((size_t)plan->n_points * plan->n_blocks, sizeof *c->owner);
  if (plan_assign(plan, nrd_log_size(), only_point, c->owner, NULL) != NRD_OK)
    NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  c->selected = xcalloc((size_t)plan->n_points, sizeof *c->selected);
  c->point_failed = xcalloc((size_t)plan->n_points, sizeof *c->point_failed);
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
  c->state = xcalloc((size_t)plan->n_points, sizeof *c->state);
  c->proto = xcalloc((size_t)plan->n_points, sizeof *c->proto);
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

/* The arrays of a point's theory (where each pointer is kept, and its
 * length), for sending it whole; the lengths follow from the layout, known
 * on every rank. */
enum { THEORY_ARRAYS = 8 };
static void theory_arrays(point_theory *th, const proto_layout *X, long n_out,
                          double ***slot, long *len) {
  proto_theory *pt = &th->proto;
  long nr = (long)X->n_ref * n_out;
  double **s[THEORY_ARRAYS] = {&th->phi_theory, &th->norm2_theory,
                               &pt->phi,        &pt->cut_gauss,
                               &pt->cut_gm2,    &pt->corr_data,
                               &pt->corr_stat,  &pt->fe_offset};
  long l[THEORY_ARRAYS] = {n_out,      n_out, X->n_branch, X->n_uturn,
                           X->n_uturn, nr,    nr,          n_out};
  memcpy(slot, s, sizeof s);
  memcpy(len, l, sizeof l);
}

/* Every selected point's model and theory, the points dealt round-robin
 * to the ranks (the theory at every output time is d^3 work per time and
 * was a serial share of runs on rank 0), then broadcast by their owners so
 * that every rank holds all of it.  A bad input (say, a U file of the wrong
 * shape) is a collective usage error, reported for the first bad point,
 * before any simulation or output. */
static void prepare_theory(const run_ctx *c, point_theory *th) {
  char err[1024] = "";
  int rank = nrd_log_rank(), size = 1, P = c->plan->n_points;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int *owner = xcalloc((size_t)P, sizeof *owner), n_sel = 0, first_bad = P;
  for (int i = 0; i < P; i++)
    owner[i] = c->selected[i] ? n_sel++ % size : -1;
  int status = NRD_OK;
  for (int i = 0; i < P; i++) {
    if (owner[i] != rank) continue;
    model m;
    status = model_build(&m, c->p, &c->plan->points[i], matrix_file_read, err,
                         sizeof err);
    if (status != NRD_OK) {
      first_bad = i;
      break;
    }
    theory_for_point(c, &m, &th[i]);
    model_free(&m);
  }
  int bad = first_bad;
  NRD_MPI_CHECK(
      MPI_Allreduce(&first_bad, &bad, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  if (bad < P) {
    NRD_MPI_CHECK(MPI_Bcast(&status, 1, MPI_INT, owner[bad], MPI_COMM_WORLD));
    NRD_MPI_CHECK(MPI_Bcast(err, sizeof err, MPI_CHAR, owner[bad],
                            MPI_COMM_WORLD));
    nrd_fatal(status == NRD_ERR_INPUT ? NRD_EXIT_USAGE : NRD_EXIT_RUNTIME,
              "%s", err[0] ? err : nrd_strerror(status));
  }
  for (int i = 0; i < P; i++) {
    if (owner[i] < 0) continue;
    point_theory *t = &th[i];
    double **slot[THEORY_ARRAYS];
    long len[THEORY_ARRAYS];
    theory_arrays(t, &c->proto[i], c->n_out, slot, len);
    for (int f = 0; owner[i] != rank && f < THEORY_ARRAYS; f++)
      *slot[f] = xcalloc((size_t)len[f] + 1, sizeof(double)); /* room */
    int flags[3] = {t->empirical, t->symmetric2, t->K};
    double num[4] = {t->rate, t->entropy, t->critical, t->proto.alpha};
    NRD_MPI_CHECK(MPI_Bcast(flags, 3, MPI_INT, owner[i], MPI_COMM_WORLD));
    NRD_MPI_CHECK(MPI_Bcast(num, 4, MPI_DOUBLE, owner[i], MPI_COMM_WORLD));
    t->empirical = flags[0], t->symmetric2 = flags[1], t->K = flags[2];
    t->rate = num[0], t->entropy = num[1], t->critical = num[2];
    t->proto.alpha = num[3];
    for (int f = 0; f < THEORY_ARRAYS; f++)
      if (len[f] > 0)
        NRD_MPI_CHECK(MPI_Bcast(*slot[f], (int)len[f], MPI_DOUBLE, owner[i],
                                MPI_COMM_WORLD));
    NRD_MPI_CHECK(MPI_Bcast(&t->check, sizeof t->check, MPI_BYTE, owner[i],
                            MPI_COMM_WORLD));
  }
  free(owner);
  if (rank == 0) { /* the checks of every point, each kind said once */
    step_check *all = xcalloc((size_t)P, sizeof *all);
    for (int i = 0; i < P; i++)
      all[i] = th[i].check;
    char *text = diagnose_summary_text(all, P, c->p);
    nrd_warn_lines(text);
    free(text);
    free(all);
  }
}

int run_simulation(const nrd_params *p, const run_plan *plan, int only_point,
                   int restart, const char *command_line) {
  double t_start = nrd_log_elapsed();
  double *t = xcalloc((size_t)plan->steps + 1, sizeof *t);
  if (timegrid_build(p->time.spacing, p->time.T, p->time.t_min, plan->steps,
                     t) != NRD_OK)
    nrd_fatal(NRD_EXIT_RUNTIME, "cannot build the time grid");
  int rank = nrd_log_rank(), P = plan->n_points;
  run_ctx c;
  ctx_build(&c, p, plan, t, only_point);
  point_theory *th = xcalloc((size_t)P, sizeof *th);
  prepare_theory(&c, th);

  /* (2) this rank's work items, point by point, in lockstep with the other
   * ranks (run_sync) so that checkpoints and stops are collective */
  progress pr = {.start = nrd_log_elapsed(), .last = nrd_log_elapsed()};
  obs_layout *lay = xcalloc((size_t)P, sizeof *lay);
  for (int i = 0; i < P; i++) {
    if (!c.selected[i]) continue;
    /* sizes only; the class directions are set when the point runs */
    const grid_point *g = &plan->points[i];
    double *zero = xcalloc((size_t)p->data.classes * g->dimension, sizeof *zero);
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
  point_report *rep = xcalloc((size_t)P, sizeof *rep); /* rank 0 */
  long B = plan->n_blocks;
  int n_failed = 0; /* the same on every rank */
  for (int i = 0; i < P; i++) {
    if (only_point >= 0 && i != only_point) continue;
    const obs_layout *L = &lay[i];
    size_t R = (size_t)L->record, n = (size_t)c.n_out * B * R;
    /* every block's record is non-zero on exactly one rank, so this sum is
     * exact and independent of the rank count */
    double *blocks = xcalloc(n, sizeof *blocks);
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
        .critical_cloning = kind_clone(&rep[i]).value,
        .critical_cloning_error = kind_clone(&rep[i]).error,
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
