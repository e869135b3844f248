/* Simulation driver (see run.h).
 *
 * Decomposition: the particles of a grid point are split into blocks of
 * ensemble.block_size; block b lives on rank b mod nranks.  Every observable
 * is accumulated per block, and the blocks' partial sums are combined on
 * rank 0 in block order, so results do not depend on the number of ranks.
 * Particle i of every grid point uses the same random stream (common random
 * numbers), which makes differences between grid points less noisy. */
#include "nrdiff/run.h"
#include "nrdiff/error.h"
#include "nrdiff/integrate.h"
#include "nrdiff/linalg.h"
#include "nrdiff/log.h"
#include "nrdiff/model.h"
#include "nrdiff/rng.h"
#include "nrdiff/theory.h"

#include <math.h>
#include <cblas.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

/* Per-block sums recorded at every output time. */
enum {
  OBS_COUNT,  /* particles */
  OBS_PHI,    /* sum_k r_k^2: clone-free speciation estimator */
  OBS_Y2,     /* sum_mu w_mu^2: training-point participation */
  OBS_NORM2,  /* |y|^2 */
  OBS_PROJ,   /* class direction . y */
  OBS_PROJ2,  /* (class direction . y)^2 */
  OBS_SCORE2, /* |s|^2 */
  N_OBS
};

/* The level phi = F(1) at which the project defines t_S (physics.md 4.2). */
static double phi_level(void) {
  return theory_F(1.0);
}

typedef struct {
  long n_out;
  long *step;   /* output step indices */
  double *sums; /* n_out x n_blocks x N_OBS */
} obs_table;

static double *obs_at(obs_table *o, long n_blocks, long out, long b) {
  return o->sums + ((size_t)out * n_blocks + b) * N_OBS;
}

/* Output steps: every `every` steps, plus the last one. */
static int obs_init(obs_table *o, long steps, long every, long n_blocks) {
  o->n_out = steps / every + 1 + (steps % every ? 1 : 0);
  o->step = malloc((size_t)o->n_out * sizeof *o->step);
  o->sums = calloc((size_t)o->n_out * n_blocks * N_OBS, sizeof *o->sums);
  if (!o->step || !o->sums) return NRD_ERR_NOMEM;
  long i = 0;
  for (long k = 0; k <= steps; k += every)
    o->step[i++] = k;
  if (steps % every) o->step[i++] = steps;
  return NRD_OK;
}

static void obs_free(obs_table *o) {
  free(o->step);
  free(o->sums);
}

/* Accumulate one block's observables (sums in particle order). */
static void observe_block(const model *m, long count, const double *Y,
                          const double *S, const double *resp, const double *y2,
                          int score_ok, double *acc) {
  int d = m->d, K = m->mix.K;
  for (long i = 0; i < count; i++) {
    const double *y = Y + i * d, *s = S + i * d;
    double n2 = 0, pr = 0, s2 = 0;
    for (int j = 0; j < d; j++) {
      n2 += y[j] * y[j];
      pr += m->direction[j] * y[j];
      s2 += s[j] * s[j];
    }
    acc[OBS_COUNT] += 1.0;
    acc[OBS_NORM2] += n2;
    acc[OBS_PROJ] += pr;
    acc[OBS_PROJ2] += pr * pr;
    if (!score_ok) {
      acc[OBS_PHI] = acc[OBS_Y2] = acc[OBS_SCORE2] = NAN;
      continue;
    }
    acc[OBS_SCORE2] += s2;
    if (m->n_train > 0) {
      acc[OBS_Y2] += y2[i];
    } else {
      double ph = 0;
      for (int k = 0; k < K; k++)
        ph += resp[i * K + k] * resp[i * K + k];
      acc[OBS_PHI] += ph;
    }
  }
}

typedef struct {
  long n_local; /* local particles */
  long *blocks; /* local block ids */
  long n_blocks;
  long *first; /* first local row of each local block */
} local_blocks;

static void local_blocks_build(const run_plan *plan, local_blocks *lb) {
  int rank = nrd_log_rank(), size = nrd_log_size();
  lb->n_blocks = 0;
  lb->n_local = 0;
  lb->blocks = malloc((size_t)(plan->n_blocks / size + 1) * sizeof(long));
  lb->first = malloc((size_t)(plan->n_blocks / size + 1) * sizeof(long));
  if (!lb->blocks || !lb->first) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  for (long b = rank; b < plan->n_blocks; b += size) {
    long f, c;
    plan_block_range(plan, b, &f, &c);
    lb->blocks[lb->n_blocks] = b;
    lb->first[lb->n_blocks++] = lb->n_local;
    lb->n_local += c;
  }
}

/* Initial condition at forward time T: N(0, S) or the exact p_T. */
static int initial_state(const nrd_params *p, const model *m,
                         const run_plan *plan, const local_blocks *lb, double T,
                         double *Y, double *Xi) {
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
    long first, count;
    plan_block_range(plan, lb->blocks[ib], &first, &count);
    double *Yb = Y + (size_t)lb->first[ib] * d;
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
  }
  free(L);
  free(E);
  free(X0);
  return rc;
}

/* Linear interpolation of the first crossing of `level` by y(t), scanning in
 * the order of the arrays (decreasing t); NAN if there is none. */
static double crossing(long n, const double *t, const double *y, double level) {
  for (long i = 0; i + 1 < n; i++) {
    double a = y[i] - level, b = y[i + 1] - level;
    if (isnan(a) || isnan(b)) continue;
    if ((a < 0) != (b < 0) || b == 0)
      return t[i] + (t[i + 1] - t[i]) * a / (a - b);
  }
  return NAN;
}

/* Report one grid point from the block sums (rank 0).  Errors are jackknife
 * errors over blocks: leave one block out, recompute, take the spread. */
static void report_point(const nrd_params *p, const model *m,
                         const run_plan *plan, obs_table *o, const double *t,
                         double *tS_meas, double *tS_err, double *tS_theory) {
  long B = plan->n_blocks, n = o->n_out;
  double *tt = malloc((size_t)n * sizeof *tt);
  double *phi = malloc((size_t)n * sizeof *phi);
  double *err = malloc((size_t)n * sizeof *err);
  double *tot = calloc((size_t)n * N_OBS, sizeof *tot);
  double *jk = malloc((size_t)n * sizeof *jk);
  double *jk_cross = malloc((size_t)B * sizeof *jk_cross);
  if (!tt || !phi || !err || !tot || !jk || !jk_cross)
    NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  for (long i = 0; i < n; i++) {
    tt[i] = t[o->step[i]];
    for (long b = 0; b < B; b++)
      for (int q = 0; q < N_OBS; q++)
        tot[i * N_OBS + q] += obs_at(o, B, i, b)[q];
  }
  int emp = m->n_train > 0;
  int key = emp ? OBS_Y2 : OBS_PHI;
  for (long i = 0; i < n; i++)
    phi[i] = tot[i * N_OBS + key] / tot[i * N_OBS + OBS_COUNT];
  double level = emp ? 0.5 : phi_level();
  double c = crossing(n, tt, phi, level);
  /* jackknife over blocks for the curve and the crossing */
  for (long i = 0; i < n; i++)
    err[i] = 0;
  double cmean = 0;
  int cvalid = B > 1 && !isnan(c);
  for (long b = 0; b < B; b++) {
    for (long i = 0; i < n; i++) {
      const double *s = obs_at(o, B, i, b);
      jk[i] = (tot[i * N_OBS + key] - s[key]) /
              (tot[i * N_OBS + OBS_COUNT] - s[OBS_COUNT]);
      err[i] += (jk[i] - phi[i]) * (jk[i] - phi[i]);
    }
    jk_cross[b] = crossing(n, tt, jk, level);
    if (isnan(jk_cross[b])) cvalid = 0;
    cmean += jk_cross[b] / B;
  }
  double cerr = 0;
  for (long i = 0; i < n; i++)
    err[i] = sqrt(err[i] * (B - 1) / B);
  if (cvalid) {
    for (long b = 0; b < B; b++)
      cerr += (jk_cross[b] - cmean) * (jk_cross[b] - cmean);
    cerr = sqrt(cerr * (B - 1) / B);
  } else {
    cerr = NAN;
  }

  /* theory: kappa_t = 1 for two symmetric classes, the matrix criterion
   * (physics.md 4.3) otherwise; for the empirical score the REM collapse
   * time with the finite-d mixture correction, alpha = ln n / d (an
   * n, d -> infinity result: a reference, not a prediction, at small d) */
  double th = NAN;
  const mixture *mx = &m->mix;
  if (emp) {
    double alpha = log((double)m->n_train) / m->d;
    if (alpha > 0) {
      if (mx->symmetric2)
        theory_tC_rem_gm2(&m->op, mx->means, mx->cov, alpha, &th);
      else
        theory_tC_rem(&m->op, mx->cov, alpha, &th);
    }
  } else if (mx->symmetric2) {
    theory_tS_kappa(&m->op, mx->means, mx->cov, &th);
  } else if (mx->cov_shared) {
    theory_tS_matrix(&m->op, mx->K, mx->weights, mx->means, mx->cov, &th);
  }

  const grid_point *g = &m->point;
  printf("\nGrid point %d: d = %ld, separation = %g, strength g = %g, "
         "n_train = %ld\n",
         g->index, g->dimension, g->separation, g->strength, g->n_train);
  double rate = NAN;
  ou_relaxation_rate(&m->op, &rate);
  printf("  relaxation rate min Re sigma(A) = %.4f, entropy production = "
         "%.4g\n",
         rate, ou_entropy_production(&m->op));
  if (emp)
    printf("  %10s %12s %10s %12s\n", "t", "Y2", "+-", "E|y|^2");
  else
    printf("  %10s %12s %10s %12s %12s\n", "t", "phi(t)", "+-", "F(kappa_t)",
           "E|y|^2");
  long stride = n > 24 ? (n + 23) / 24 : 1;
  for (long i = 0; i < n; i++) {
    if (i % stride && i != n - 1) continue;
    double y2 = tot[i * N_OBS + OBS_NORM2] / tot[i * N_OBS + OBS_COUNT];
    if (emp) {
      printf("  %10.4f %12.5f %10.5f %12.5g\n", tt[i], phi[i], err[i], y2);
    } else {
      double th_phi = NAN;
      if (mx->symmetric2) {
        double kap = NAN;
        if (theory_kappa(&m->op, mx->means, mx->cov, tt[i], &kap) == NRD_OK)
          th_phi = theory_F(kap);
      }
      printf("  %10.4f %12.5f %10.5f %12.5f %12.5g\n", tt[i], phi[i], err[i],
             th_phi, y2);
    }
  }
  if (emp)
    printf("  measured: Y2 crosses 1/2 at t = %.4f +- %.4f; REM collapse time "
           "t_C (d -> infinity, alpha = ln n / d) = %.4f\n",
           c, cerr, th);
  else
    printf("  measured t_S (phi crosses F(1) = %.4f) = %.4f +- %.4f; "
           "theory (%s) = %.4f\n",
           level, c, cerr,
           mx->symmetric2 ? "kappa_t = 1" : "matrix criterion", th);
  /* A digest of every block sum: equal digests mean bit-identical science,
   * whatever the number of ranks. */
  unsigned long long h = 1469598103934665603ULL;
  const unsigned char *bytes = (const unsigned char *)o->sums;
  size_t nbytes = (size_t)n * B * N_OBS * sizeof *o->sums;
  for (size_t i = 0; i < nbytes; i++)
    h = (h ^ bytes[i]) * 1099511628211ULL;
  printf("  observables checksum: %016llx\n", h);
  *tS_meas = c;
  *tS_err = cerr;
  *tS_theory = th;
  (void)p;
  free(tt);
  free(phi);
  free(err);
  free(tot);
  free(jk);
  free(jk_cross);
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

/* Findings: per grid point the measured critical time, its theory, the
 * deviation in units of the error, and the shift relative to the
 * reversible process (g = 0) at the same d, separation and n. */
static void print_summary(const run_plan *plan, const double *meas) {
  printf("\nSummary: critical time per grid point (n_train = 0: speciation "
         "t_S, phi crossing F(1) vs kappa_t = 1;\n         n_train > 0: Y2 "
         "crossing 1/2 vs the REM collapse time)\n");
  printf("  %5s %9s %10s %8s %7s %9s %8s %9s %7s %11s\n", "index", "dimension",
         "separation", "strength", "n_train", "measured", "+-", "theory",
         "z", "t/t(g=0)");
  for (int i = 0; i < plan->n_points; i++) {
    const grid_point *g = &plan->points[i];
    const double *x = meas + 3 * i;
    int r = reversible_partner(plan, i);
    double ratio = r >= 0 ? x[0] / meas[3 * r] : NAN;
    printf("  %5d %9ld %10g %8g %7ld %9.4f %8.4f %9.4f %7.2f %11.4f\n",
           g->index, g->dimension, g->separation, g->strength, g->n_train,
           x[0], x[1], x[2], (x[0] - x[2]) / x[1], ratio);
  }
  printf("  z = (measured - theory) / error; |z| > 3 at n_train = 0 means "
         "disagreement beyond the statistics.\n");
  fflush(stdout);
}

/* Run one grid point; rank 0 gets the reduced block sums in `o`. */
static int run_point(const nrd_params *p, const run_plan *plan, const model *m,
                     const double *t, obs_table *o) {
  int d = m->d, K = m->mix.K;
  long steps = plan->steps;
  local_blocks lb;
  local_blocks_build(plan, &lb);
  long bs = plan->block_size, nl = lb.n_local;
  size_t rows = (size_t)(nl > 0 ? nl : 1);
  double *Y = malloc(rows * d * sizeof *Y);
  double *Ystar = malloc((size_t)bs * d * sizeof *Ystar);
  double *S0 = malloc((size_t)bs * d * sizeof *S0);
  double *S1 = malloc((size_t)bs * d * sizeof *S1);
  double *Xi = malloc((size_t)bs * d * sizeof *Xi);
  double *tmp = malloc((size_t)2 * bs * d * sizeof *tmp);
  double *resp = malloc((size_t)bs * K * sizeof *resp);
  double *y2 = malloc((size_t)bs * sizeof *y2);
  int *nearest = malloc((size_t)bs * sizeof *nearest);
  score_model cur, nxt;
  int rc = score_model_init(&cur, m);
  if (rc == NRD_OK) rc = score_model_init(&nxt, m);
  step_ops ops;
  if (rc == NRD_OK) rc = step_ops_init(&ops, &m->op, p->integrator.scheme);
  size_t wsz = rc == NRD_OK ? score_model_work_size(&cur, (int)bs) : 0;
  double *work = malloc((wsz ? wsz : 1) * sizeof *work);
  if (!Y || !Ystar || !S0 || !S1 || !Xi || !tmp || !resp || !y2 || !nearest ||
      !work)
    rc = NRD_ERR_NOMEM;
  if (rc == NRD_OK) rc = initial_state(p, m, plan, &lb, t[0], Y, Xi);
  int ode = p->integrator.scheme == SCHEME_ODE_HEUN;
  long out = 0;
  double start = nrd_log_elapsed(), last_report = start;
  for (long k = 0; rc == NRD_OK && k <= steps; k++) {
    int score_ok = score_model_set_time(&cur, t[k]) == NRD_OK;
    if (!score_ok && k < steps) {
      rc = NRD_ERR_NUMERIC;
      break;
    }
    int is_out = out < o->n_out && o->step[out] == k;
    if (k < steps) rc = step_ops_set_h(&ops, &m->op, t[k] - t[k + 1]);
    int next_ok = 0;
    if (rc == NRD_OK && ode && k < steps)
      next_ok = score_model_set_time(&nxt, t[k + 1]) == NRD_OK;
    for (long ib = 0; rc == NRD_OK && ib < lb.n_blocks; ib++) {
      long first, count;
      plan_block_range(plan, lb.blocks[ib], &first, &count);
      double *Yb = Y + (size_t)lb.first[ib] * d;
      if (score_ok)
        rc = score_model_eval(&cur, (int)count, Yb, S0, resp, NULL, y2, nearest,
                              work);
      if (rc != NRD_OK) break;
      if (is_out)
        observe_block(m, count, Yb, S0, resp, y2, score_ok,
                      obs_at(o, plan->n_blocks, out, lb.blocks[ib]));
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
        reverse_sde_step(&ops, (int)count, Yb, S0, Xi, tmp);
      }
    }
    if (is_out) out++;
    double now = nrd_log_elapsed();
    if (now - last_report > 5.0 && k > 0) {
      double per_step = (now - start) / (double)k;
      nrd_info("grid point %d/%d: step %ld/%ld, t = %.4f, %.2f ms/step, "
               "ETA for this point %.0f s",
               m->point.index + 1, plan->n_points, k, steps, t[k],
               1e3 * per_step, per_step * (double)(steps - k));
      last_report = now;
    }
  }
  /* Make the status collective before any further collective call. */
  int any_bad = rc != NRD_OK, bad = 0;
  NRD_MPI_CHECK(
      MPI_Allreduce(&any_bad, &bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  if (!bad) {
    /* Each block's sums are non-zero on exactly one rank, so this sum is
     * exact and independent of the rank count. */
    size_t n = (size_t)o->n_out * plan->n_blocks * N_OBS;
    void *sendbuf = nrd_log_rank() == 0 ? MPI_IN_PLACE : (void *)o->sums;
    NRD_MPI_CHECK(MPI_Reduce(sendbuf, o->sums, (int)n, MPI_DOUBLE, MPI_SUM, 0,
                             MPI_COMM_WORLD));
  }
  step_ops_free(&ops);
  score_model_free(&cur);
  score_model_free(&nxt);
  free(Y);
  free(Ystar);
  free(S0);
  free(S1);
  free(Xi);
  free(tmp);
  free(resp);
  free(y2);
  free(nearest);
  free(work);
  free(lb.blocks);
  free(lb.first);
  return bad ? (rc != NRD_OK ? rc : NRD_ERR_NUMERIC) : NRD_OK;
}

int run_simulation(const nrd_params *p, const run_plan *plan) {
  double *t = malloc((size_t)(plan->steps + 1) * sizeof *t);
  if (!t || timegrid_build(p->time.spacing, p->time.T, p->time.t_min,
                           plan->steps, t) != NRD_OK)
    nrd_fatal(NRD_EXIT_RUNTIME, "cannot build the time grid");
  int rank = nrd_log_rank();
  double *meas = calloc((size_t)plan->n_points * 3, sizeof *meas);
  for (int i = 0; i < plan->n_points; i++) {
    model m;
    char err[1024] = "";
    int rc = model_build(&m, p, &plan->points[i], err, sizeof err);
    if (rc != NRD_OK)
      nrd_fatal(rc == NRD_ERR_INPUT ? NRD_EXIT_USAGE : NRD_EXIT_RUNTIME, "%s",
                err);
    obs_table o;
    if (obs_init(&o, plan->steps, p->output.every, plan->n_blocks) != NRD_OK)
      NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
    double t0 = nrd_log_elapsed();
    rc = run_point(p, plan, &m, t, &o);
    if (rc != NRD_OK)
      nrd_fatal(NRD_EXIT_RUNTIME, "grid point %d failed: %s", i,
                nrd_strerror(rc));
    nrd_info("grid point %d done in %.2f s", i, nrd_log_elapsed() - t0);
    if (rank == 0)
      report_point(p, &m, plan, &o, t, &meas[3 * i], &meas[3 * i + 1],
                   &meas[3 * i + 2]);
    obs_free(&o);
    model_free(&m);
  }
  if (rank == 0) print_summary(plan, meas);
  free(meas);
  free(t);
  return NRD_EXIT_OK;
}
