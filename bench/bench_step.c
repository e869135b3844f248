/* Reverse-SDE steps with exact scores, each against a baseline measured in
 * the same run with the same BLAS.  Every figure is the median of `reps`
 * repetitions after one warm-up.  Nothing here asserts a time.
 *
 * Empirical score (the collapse studies' kernel), against the two bare
 * GEMMs of the same shapes, G = Y C^T (P x d by d x n) and V = G C
 * (P x n by n x d):  efficiency = time(two GEMMs) / time(step).
 *
 *   bench_step [P d n reps scheme]          (defaults 4096 512 4096 5 euler)
 *       one line: empirical_step,P,d,n,scheme,step_ms,gemm_ms,normals_ms,
 *       efficiency (the general operator; the line `make bench` prints)
 *   bench_step emp P d n reps scheme op [block]
 *       one line (EMP_HEADER below).  op: general (U geometric in [1, 4],
 *       Q random, g = 1: Delta_t and A dense), isoq (U = I, Q random,
 *       g = 1: Delta_t = delta I, A dense), iso (U = I, g = 0: everything a
 *       multiple of I).  block: particles per score evaluation and step
 *       (default P; the run plan's ensemble.block_size, default 256).
 *   bench_step mix P d reps scheme [block]
 *       the exact two-class mixture step (isotropic clusters, U = I,
 *       g = 0), against drawing the step's P x d normals (MIX_HEADER).
 *   bench_step single P d n reps scheme op [block]
 *       run.precision float32 against float64 in the same process: both
 *       steps, both pairs of bare GEMMs (DGEMM, SGEMM) and the largest
 *       relative difference of the two scores on the first block
 *       (SINGLE_HEADER).
 *   bench_step info
 *       OpenBLAS's kernel set (core name), OPENBLAS_CORETYPE, threads.
 *   bench_step dump P d n dir
 *       write the general empirical problem (b, Delta^{-1}, A, Y and the
 *       score at Y) as raw float64 files for bench/peers.py.
 *
 * OpenBLAS's kernels are chosen as nrdiff chooses them (blaskernel.h:
 * NRDIFF_BLAS_KERNEL, OPENBLAS_CORETYPE, else auto); `bench_step info`
 * says which.
 *
 * The step is what a run does per block and time step: the score
 * evaluation, the normals (one Philox stream per particle, as in run.c) and
 * reverse_sde_step.  score_*_set_time runs once per time step for all
 * blocks; it is timed apart (set_ms).  For the empirical score, step_ms is
 * a step without output (run.c folds the score's -Delta^{-1} y into the
 * update: score_empirical_eval_nonlinear + reverse_sde_step_folded, the
 * fold's matrix set with the time, in set_ms) and full_step_ms a step with
 * output (the whole score, which the observables need). */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/blaskernel.h"
#include "core/integrate.h"
#include "core/mixture.h"
#include "core/ou.h"
#include "config/params.h"
#include "core/rng.h"
#include "core/score.h"

#define EMP_HEADER                                                             \
  "kernel,op,scheme,threads,P,d,n,block,step_ms,score_ms,normals_ms,"          \
  "update_ms,set_ms,gemm_ms,gemm_gflops,efficiency,efficiency_with_set,"       \
  "full_step_ms,efficiency_full"
#define SINGLE_HEADER                                                          \
  "kernel,op,scheme,threads,P,d,n,block,step64_ms,step32_ms,speedup,"         \
  "dgemm_ms,sgemm_ms,efficiency32,score_maxrel"
#define MIX_HEADER                                                             \
  "kernel,op,scheme,threads,P,d,block,step_ms,score_ms,normals_ms,"            \
  "update_ms,set_ms,step_over_normals,score_update_over_normals"

enum { MAX_REPS = 100 };

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(int n, const double *v) {
  double w[MAX_REPS];
  memcpy(w, v, (size_t)n * sizeof *w);
  qsort(w, (size_t)n, sizeof *w, cmp);
  return n % 2 ? w[n / 2] : 0.5 * (w[n / 2 - 1] + w[n / 2]);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fprintf(stderr, "bench_step: out of memory\n");
    exit(1);
  }
  return p;
}

static void die(const char *what) {
  fprintf(stderr, "bench_step: %s failed\n", what);
  exit(1);
}

/* The step's normals as run.c draws them: one stream per particle. */
static void step_normals(int first, int P, int d, uint32_t k, double *Xi) {
  for (int i = 0; i < P; i++)
    rng_normals(1, RNG_PURPOSE_STEP, (uint64_t)(first + i), k, (size_t)d,
                Xi + (size_t)i * d);
}

static int scheme_of(const char *name) {
  return strcmp(name, "exponential") == 0 ? SCHEME_EXPONENTIAL : SCHEME_EULER;
}

/* ------------------------------------------------------ empirical score */

typedef struct {
  int P, d, n, block, scheme;
  ou_op op;
  double *E, *D, *a, *Y;
  score_empirical se;
  step_ops ops;
} emp_problem;

/* op: "general", "isoq" or "iso" (see the header); t = 0.5, h = 1e-3. */
static void emp_setup(emp_problem *e, int P, int d, int n, int block,
                      int scheme, const char *opname) {
  memset(e, 0, sizeof *e);
  e->P = P, e->d = d, e->n = n, e->block = block, e->scheme = scheme;
  size_t dd = (size_t)d * d;
  double *U = xmalloc(dd * sizeof *U), *Q = xmalloc(dd * sizeof *Q);
  double g = 1.0;
  if (strcmp(opname, "general") == 0)
    ou_u_geometric(d, 1.0, 4.0, U);
  else
    ou_u_isotropic(d, 1.0, U);
  if (strcmp(opname, "iso") == 0) g = 0.0;
  ou_q_random(d, 7, Q);
  if (ou_init(&e->op, d, U, g != 0 ? Q : NULL, g) != 0) die("ou_init");
  free(U);
  free(Q);
  e->E = xmalloc(dd * sizeof *e->E);
  e->D = xmalloc(dd * sizeof *e->D);
  if (ou_moments(&e->op, 0.5, e->E, e->D) != 0) die("ou_moments");
  e->a = xmalloc((size_t)n * d * sizeof *e->a);
  rng_normals(1, RNG_PURPOSE_TRAIN, 0, 0, (size_t)n * d, e->a);
  if (score_empirical_init(&e->se, d, n, e->a, NRD_SCORE_BLOCK) != 0)
    die("score_empirical_init");
  /* the training-point blocks as model.c sets them for runs */
  score_empirical_set_max_logits(&e->se, NRD_SCORE_MAX_LOGITS);
  if (score_empirical_set_time(&e->se, e->E, e->D) != 0)
    die("score_empirical_set_time");
  if (step_ops_init(&e->ops, &e->op, scheme) != 0 ||
      step_ops_set_h(&e->ops, &e->op, 1e-3) != 0)
    die("step_ops");
  e->Y = xmalloc((size_t)P * d * sizeof *e->Y);
  rng_normals(1, RNG_PURPOSE_INIT, 0, 0, (size_t)P * d, e->Y);
}

static void emp_free(emp_problem *e) {
  score_empirical_free(&e->se);
  step_ops_free(&e->ops);
  ou_free(&e->op);
  free(e->E);
  free(e->D);
  free(e->a);
  free(e->Y);
}

typedef struct {
  double step, score, normals, update, set, gemm, normals_alone, full;
} emp_times;

static void emp_measure(emp_problem *e, int reps, emp_times *out) {
  int P = e->P, d = e->d, n = e->n, bs = e->block;
  size_t Pd = (size_t)P * d, bd = (size_t)bs * d;
  double *S = xmalloc(bd * sizeof *S), *Xi = xmalloc(bd * sizeof *Xi);
  double *tmp = xmalloc(bd * sizeof *tmp);
  double *work = xmalloc(score_empirical_work_size(&e->se, bs) * sizeof *work);
  double *G = xmalloc((size_t)P * n * sizeof *G), *V = xmalloc(Pd * sizeof *V);
  double *XiAll = xmalloc(Pd * sizeof *XiAll);
  double ts[MAX_REPS], tsc[MAX_REPS], tn[MAX_REPS], tu[MAX_REPS],
      tset[MAX_REPS], tg[MAX_REPS], tna[MAX_REPS], tf[MAX_REPS];
  step_fold fold;
  if (step_fold_init(&fold, d) != 0) die("step_fold_init");
  double inv;
  const double *dinv = score_empirical_dinv(&e->se, &inv);
  step_fold_set(&fold, &e->ops, dinv, inv);
  for (int r = -1; r < reps; r++) {
    double sc = 0, no = 0, up = 0;
    uint32_t k = (uint32_t)(r + 1);
    /* a step without output, as run.c does most steps: the score's
     * -Delta^{-1} y folded into the update's map */
    double t0 = now();
    for (int f = 0; f < P; f += bs) {
      int c = P - f < bs ? P - f : bs;
      double *Yb = e->Y + (size_t)f * d;
      double a0 = now();
      score_empirical_eval_nonlinear(&e->se, c, Yb, S, NULL, NULL, work);
      double a1 = now();
      step_normals(f, c, d, k, Xi);
      double a2 = now();
      reverse_sde_step_folded(&e->ops, &fold, c, Yb, S, Xi, tmp);
      double a3 = now();
      sc += a1 - a0, no += a2 - a1, up += a3 - a2;
    }
    double t1 = now();
    score_empirical_set_time(&e->se, e->E, e->D);
    dinv = score_empirical_dinv(&e->se, &inv);
    step_fold_set(&fold, &e->ops, dinv, inv);
    double t2 = now();
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, n, d, 1.0, e->Y, d,
                e->se.c, d, 0.0, G, n);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, P, d, n, 1.0, G, n,
                e->se.c, d, 0.0, V, d);
    double t3 = now();
    step_normals(0, P, d, k, XiAll);
    double t4 = now();
    /* a step with output: the whole score (the observables need it) */
    for (int f = 0; f < P; f += bs) {
      int c = P - f < bs ? P - f : bs;
      double *Yb = e->Y + (size_t)f * d;
      score_empirical_eval(&e->se, c, Yb, S, NULL, NULL, NULL, work);
      step_normals(f, c, d, k, Xi);
      reverse_sde_step(&e->ops, c, Yb, S, Xi, tmp);
    }
    double t5 = now();
    if (r >= 0) {
      ts[r] = t1 - t0, tsc[r] = sc, tn[r] = no, tu[r] = up;
      tset[r] = t2 - t1, tg[r] = t3 - t2, tna[r] = t4 - t3, tf[r] = t5 - t4;
    }
  }
  step_fold_free(&fold);
  out->full = median(reps, tf);
  out->step = median(reps, ts), out->score = median(reps, tsc);
  out->normals = median(reps, tn), out->update = median(reps, tu);
  out->set = median(reps, tset), out->gemm = median(reps, tg);
  out->normals_alone = median(reps, tna);
  free(S);
  free(Xi);
  free(tmp);
  free(work);
  free(G);
  free(V);
  free(XiAll);
}

static int run_emp(int P, int d, int n, int reps, const char *scheme_name,
                   const char *opname, int block) {
  emp_problem e;
  emp_setup(&e, P, d, n, block, scheme_of(scheme_name), opname);
  emp_times t;
  emp_measure(&e, reps, &t);
  double gf = 4.0 * P * (double)n * d / t.gemm * 1e-9;
  printf("empirical_step,%s,%s,%d,%d,%d,%d,%d,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f,"
         "%.1f,%.3f,%.3f,%.2f,%.3f\n",
         opname, scheme_name, openblas_get_num_threads(), P, d, n, block,
         t.step * 1e3, t.score * 1e3, t.normals * 1e3, t.update * 1e3,
         t.set * 1e3, t.gemm * 1e3, gf, t.gemm / t.step,
         t.gemm / (t.step + t.set), t.full * 1e3, t.gemm / t.full);
  emp_free(&e);
  return 0;
}

/* The two bare SGEMMs of the step's shapes (the float32 baseline). */
static double sgemm_pair(const emp_problem *e, int reps) {
  int P = e->P, d = e->d, n = e->n;
  size_t Pd = (size_t)P * d, nd = (size_t)n * d;
  float *Y = xmalloc(Pd * sizeof *Y), *C = xmalloc(nd * sizeof *C);
  float *G = xmalloc((size_t)P * n * sizeof *G), *V = xmalloc(Pd * sizeof *V);
  for (size_t i = 0; i < Pd; i++)
    Y[i] = (float)e->Y[i];
  for (size_t i = 0; i < nd; i++)
    C[i] = (float)e->se.c[i];
  double t[MAX_REPS];
  for (int r = -1; r < reps; r++) {
    double t0 = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, n, d, 1.0f, Y, d,
                C, d, 0.0f, G, n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, P, d, n, 1.0f, G, n,
                C, d, 0.0f, V, d);
    if (r >= 0) t[r] = now() - t0;
  }
  free(Y);
  free(C);
  free(G);
  free(V);
  return median(reps, t);
}

static int run_single(int P, int d, int n, int reps, const char *scheme_name,
                      const char *opname, int block) {
  emp_problem e;
  emp_setup(&e, P, d, n, block, scheme_of(scheme_name), opname);
  size_t bd = (size_t)block * d;
  double *S64 = xmalloc(bd * sizeof *S64), *S32 = xmalloc(bd * sizeof *S32);
  /* both scores at the same Y first (the timed steps move the particles);
   * the work area sized for single precision serves both */
  if (score_empirical_set_single(&e.se, 1) != 0 ||
      score_empirical_set_time(&e.se, e.E, e.D) != 0)
    die("score_empirical_set_single");
  double *work = xmalloc(score_empirical_work_size(&e.se, block) * sizeof *work);
  score_empirical_eval(&e.se, block, e.Y, S32, NULL, NULL, NULL, work);
  score_empirical_set_single(&e.se, 0);
  score_empirical_eval(&e.se, block, e.Y, S64, NULL, NULL, NULL, work);
  emp_times t64, t32;
  emp_measure(&e, reps, &t64);
  score_empirical_set_single(&e.se, 1);
  score_empirical_set_time(&e.se, e.E, e.D);
  emp_measure(&e, reps, &t32);
  double ts = sgemm_pair(&e, reps), smax = 0, rel = 0;
  for (size_t i = 0; i < bd; i++)
    smax = fmax(smax, fabs(S64[i]));
  for (size_t i = 0; i < bd; i++)
    rel = fmax(rel, fabs(S32[i] - S64[i]) / smax);
  printf("single_step,%s,%s,%d,%d,%d,%d,%d,%.2f,%.2f,%.3f,%.2f,%.2f,%.3f,"
         "%.2e\n",
         opname, scheme_name, openblas_get_num_threads(), P, d, n, block,
         t64.step * 1e3, t32.step * 1e3, t64.step / t32.step, t64.gemm * 1e3,
         ts * 1e3, ts / t32.step, rel);
  free(S64);
  free(S32);
  free(work);
  emp_free(&e);
  return 0;
}

/* The line the Makefile's bench target prints (general operator, one
 * block of P). */
static int run_legacy(int P, int d, int n, int reps, const char *scheme_name) {
  emp_problem e;
  emp_setup(&e, P, d, n, P, scheme_of(scheme_name), "general");
  emp_times t;
  emp_measure(&e, reps, &t);
  printf("empirical_step,%d,%d,%d,%s,%.2f,%.2f,%.2f,%.3f\n", P, d, n,
         scheme_name, t.step * 1e3, t.gemm * 1e3, t.normals_alone * 1e3,
         t.gemm / t.step);
  emp_free(&e);
  return 0;
}

static void write_raw(const char *dir, const char *name, size_t n,
                      const double *x) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(x, sizeof *x, n, f) != n || fclose(f) != 0) die(path);
}

/* Inputs of the peers' step and nrdiff's score at Y for their check. */
static int run_dump(int P, int d, int n, const char *dir) {
  emp_problem e;
  emp_setup(&e, P, d, n, P, SCHEME_EULER, "general");
  size_t Pd = (size_t)P * d, dd = (size_t)d * d;
  double *S = xmalloc(Pd * sizeof *S);
  double *work = xmalloc(score_empirical_work_size(&e.se, P) * sizeof *work);
  score_empirical_eval(&e.se, P, e.Y, S, NULL, NULL, NULL, work);
  /* Delta^{-1} from the score module's Cholesky factor, densely */
  double *Di = xmalloc(dd * sizeof *Di);
  if (e.se.iso > 0) {
    memset(Di, 0, dd * sizeof *Di);
    for (int i = 0; i < d; i++)
      Di[(size_t)i * d + i] = 1.0 / e.se.iso;
  } else {
    memcpy(Di, e.se.Dinv, dd * sizeof *Di);
  }
  write_raw(dir, "b.f64", (size_t)n * d, e.se.b);
  write_raw(dir, "Dinv.f64", dd, Di);
  write_raw(dir, "A.f64", dd, e.op.A);
  write_raw(dir, "Y.f64", Pd, e.Y);
  write_raw(dir, "S.f64", Pd, S);
  free(S);
  free(work);
  free(Di);
  emp_free(&e);
  return 0;
}

/* -------------------------------------------------------- mixture score */

static int run_mix(int P, int d, int reps, const char *scheme_name,
                   int block) {
  int scheme = scheme_of(scheme_name), bs = block;
  size_t dd = (size_t)d * d, Pd = (size_t)P * d, bd = (size_t)bs * d;
  double *U = xmalloc(dd * sizeof *U);
  ou_u_isotropic(d, 1.0, U);
  ou_op op;
  if (ou_init(&op, d, U, NULL, 0.0) != 0) die("ou_init");
  free(U);
  double *E = xmalloc(dd * sizeof *E), *D = xmalloc(dd * sizeof *D);
  if (ou_moments(&op, 0.5, E, D) != 0) die("ou_moments");
  double *dir = xmalloc((size_t)d * sizeof *dir);
  for (int i = 0; i < d; i++)
    dir[i] = i == 0 ? 1.0 : 0.0;
  mixture mix;
  if (mixture_two_class(&mix, d, 4.0, dir, MIX_COV_ISOTROPIC, 0.25, NULL,
                        NULL) != 0)
    die("mixture_two_class");
  score_mixture sm;
  if (score_mixture_init(&sm, &mix) != 0 ||
      score_mixture_set_time(&sm, E, D) != 0)
    die("score_mixture");
  step_ops ops;
  if (step_ops_init(&ops, &op, scheme) != 0 ||
      step_ops_set_h(&ops, &op, 1e-3) != 0)
    die("step_ops");
  double *Y = xmalloc(Pd * sizeof *Y), *S = xmalloc(bd * sizeof *S);
  double *Xi = xmalloc(bd * sizeof *Xi), *tmp = xmalloc(bd * sizeof *tmp);
  double *XiAll = xmalloc(Pd * sizeof *XiAll);
  /* not touched by the two-class form; allocated as run.c does */
  double *work = xmalloc(score_mixture_work_size(&sm, bs) * sizeof *work);
  rng_normals(1, RNG_PURPOSE_INIT, 0, 0, Pd, Y);
  double ts[MAX_REPS], tsc[MAX_REPS], tn[MAX_REPS], tu[MAX_REPS],
      tset[MAX_REPS], tna[MAX_REPS];
  for (int r = -1; r < reps; r++) {
    double sc = 0, no = 0, up = 0;
    uint32_t k = (uint32_t)(r + 1);
    double t0 = now();
    for (int f = 0; f < P; f += bs) {
      int c = P - f < bs ? P - f : bs;
      double *Yb = Y + (size_t)f * d;
      double a0 = now();
      score_mixture_eval(&sm, c, Yb, S, NULL, NULL, work);
      double a1 = now();
      step_normals(f, c, d, k, Xi);
      double a2 = now();
      reverse_sde_step(&ops, c, Yb, S, Xi, tmp);
      double a3 = now();
      sc += a1 - a0, no += a2 - a1, up += a3 - a2;
    }
    double t1 = now();
    score_mixture_set_time(&sm, E, D);
    double t2 = now();
    step_normals(0, P, d, k, XiAll);
    double t3 = now();
    if (r >= 0) {
      ts[r] = t1 - t0, tsc[r] = sc, tn[r] = no, tu[r] = up;
      tset[r] = t2 - t1, tna[r] = t3 - t2;
    }
  }
  double step = median(reps, ts), sc = median(reps, tsc);
  double no = median(reps, tn), up = median(reps, tu);
  double set = median(reps, tset), na = median(reps, tna);
  printf("mixture_step,iso,%s,%d,%d,%d,%d,%.2f,%.2f,%.2f,%.2f,%.2f,%.3f,%.3f\n",
         scheme_name, openblas_get_num_threads(), P, d, bs, step * 1e3,
         sc * 1e3, no * 1e3, up * 1e3, set * 1e3, step / na, (sc + up) / na);
  score_mixture_free(&sm);
  mixture_free(&mix);
  step_ops_free(&ops);
  ou_free(&op);
  free(E);
  free(D);
  free(dir);
  free(Y);
  free(S);
  free(Xi);
  free(tmp);
  free(XiAll);
  free(work);
  return 0;
}

/* What the run measures with: OpenBLAS's kernels (chosen as nrdiff
 * chooses them, blaskernel.h) and threads. */
static int run_info(void) {
  printf("openblas_core=%s,threads=%d,choice=%s,config=%s\n",
         openblas_get_corename(), openblas_get_num_threads(),
         blas_kernel_reason(), openblas_get_config());
  return 0;
}

static int usage(void) {
  fprintf(stderr,
          "usage: bench_step [P d n reps euler|exponential]\n"
          "       bench_step emp P d n reps scheme general|isoq|iso [block]\n"
          "       bench_step single P d n reps scheme general|isoq|iso [block]\n"
          "       bench_step mix P d reps scheme [block]\n"
          "       bench_step dump P d n dir\n"
          "       bench_step header emp|mix|single\n"
          "       bench_step info\n");
  return 2;
}

int main(int argc, char **argv) {
  /* the kernels nrdiff itself would run with (may re-execute; honours
   * NRDIFF_BLAS_KERNEL and an OPENBLAS_CORETYPE already set) */
  blas_kernel_select(&argc, argv);
  if (argc > 1 && strcmp(argv[1], "info") == 0) return run_info();
  if (argc > 1 && strcmp(argv[1], "header") == 0) {
    if (argc < 3) return usage();
    puts(strcmp(argv[2], "mix") == 0      ? MIX_HEADER
         : strcmp(argv[2], "single") == 0 ? SINGLE_HEADER
                                          : EMP_HEADER);
    return 0;
  }
  if (argc > 1 && strcmp(argv[1], "emp") == 0) {
    if (argc < 8) return usage();
    int P = atoi(argv[2]), d = atoi(argv[3]), n = atoi(argv[4]);
    int reps = atoi(argv[5]), block = argc > 8 ? atoi(argv[8]) : P;
    if (P < 1 || d < 1 || n < 1 || reps < 1 || reps > MAX_REPS || block < 1)
      return usage();
    return run_emp(P, d, n, reps, argv[6], argv[7], block);
  }
  if (argc > 1 && strcmp(argv[1], "single") == 0) {
    if (argc < 8) return usage();
    int P = atoi(argv[2]), d = atoi(argv[3]), n = atoi(argv[4]);
    int reps = atoi(argv[5]), block = argc > 8 ? atoi(argv[8]) : P;
    if (P < 1 || d < 1 || n < 1 || reps < 1 || reps > MAX_REPS || block < 1 ||
        block > P)
      return usage();
    return run_single(P, d, n, reps, argv[6], argv[7], block);
  }
  if (argc > 1 && strcmp(argv[1], "mix") == 0) {
    if (argc < 6) return usage();
    int P = atoi(argv[2]), d = atoi(argv[3]), reps = atoi(argv[4]);
    int block = argc > 6 ? atoi(argv[6]) : P;
    if (P < 1 || d < 1 || reps < 1 || reps > MAX_REPS || block < 1)
      return usage();
    return run_mix(P, d, reps, argv[5], block);
  }
  if (argc > 1 && strcmp(argv[1], "dump") == 0) {
    if (argc < 6) return usage();
    int P = atoi(argv[2]), d = atoi(argv[3]), n = atoi(argv[4]);
    if (P < 1 || d < 1 || n < 1) return usage();
    return run_dump(P, d, n, argv[5]);
  }
  int P = argc > 1 ? atoi(argv[1]) : 4096, d = argc > 2 ? atoi(argv[2]) : 512;
  int n = argc > 3 ? atoi(argv[3]) : 4096, reps = argc > 4 ? atoi(argv[4]) : 5;
  const char *scheme_name = argc > 5 ? argv[5] : "euler";
  if (P < 1 || d < 1 || n < 1 || reps < 1 || reps > MAX_REPS) return usage();
  return run_legacy(P, d, n, reps, scheme_name);
}
