/* One reverse-SDE step with the exact empirical score (the collapse
 * studies' kernel), against the two bare GEMMs of the same shapes measured
 * in the same run with the same BLAS:
 *   G = Z B^T  (P x d times d x n)  and  V = W B  (P x n times n x d).
 * efficiency = time(two GEMMs) / time(step).  Every figure is the median of
 * `reps` repetitions after one warm-up.
 *
 *   bench_step [P d n reps scheme]   (defaults 4096 512 4096 5 euler)
 *
 * Prints one CSV line: kernel,P,d,n,scheme,step_ms,gemm_ms,normals_ms,
 * efficiency. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nrdiff/integrate.h"
#include "nrdiff/ou.h"
#include "nrdiff/params.h"
#include "nrdiff/rng.h"
#include "nrdiff/score.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(int n, double *v) {
  qsort(v, (size_t)n, sizeof *v, cmp);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) {
    fprintf(stderr, "bench_step: out of memory\n");
    exit(1);
  }
  return p;
}

int main(int argc, char **argv) {
  int P = argc > 1 ? atoi(argv[1]) : 4096, d = argc > 2 ? atoi(argv[2]) : 512;
  int n = argc > 3 ? atoi(argv[3]) : 4096, reps = argc > 4 ? atoi(argv[4]) : 5;
  const char *scheme_name = argc > 5 ? argv[5] : "euler";
  int scheme = strcmp(scheme_name, "exponential") == 0 ? SCHEME_EXPONENTIAL
                                                       : SCHEME_EULER;
  if (P < 1 || d < 1 || n < 1 || reps < 1 || reps > 100) {
    fprintf(stderr, "usage: bench_step [P d n reps euler|exponential]\n");
    return 2;
  }
  size_t Pd = (size_t)P * d, nd = (size_t)n * d, Pn = (size_t)P * n;
  /* a non-reversible operator on an anisotropic U (the general code path) */
  double *U = xmalloc((size_t)d * d * sizeof *U);
  double *Q = xmalloc((size_t)d * d * sizeof *Q);
  ou_u_geometric(d, 1.0, 4.0, U);
  ou_q_random(d, 7, Q);
  ou_op op;
  if (ou_init(&op, d, U, Q, 1.0) != 0) return 1;
  double *E = xmalloc((size_t)d * d * sizeof *E);
  double *D = xmalloc((size_t)d * d * sizeof *D);
  ou_propagator(&op, 0.5, E);
  ou_noise_cov(&op, 0.5, D);
  double *a = xmalloc(nd * sizeof *a);
  rng_normals(1, RNG_PURPOSE_TRAIN, 0, 0, nd, a);
  score_empirical se;
  if (score_empirical_init(&se, d, n, a, 1024) != 0 ||
      score_empirical_set_time(&se, E, D) != 0)
    return 1;
  step_ops ops;
  step_ops_init(&ops, &op, scheme);
  step_ops_set_h(&ops, &op, 1e-3);
  double *Y = xmalloc(Pd * sizeof *Y), *S = xmalloc(Pd * sizeof *S);
  double *Xi = xmalloc(Pd * sizeof *Xi), *tmp = xmalloc(Pd * sizeof *tmp);
  double *work = xmalloc(score_empirical_work_size(&se, P) * sizeof *work);
  rng_normals(1, RNG_PURPOSE_INIT, 0, 0, Pd, Y);
  double *G = xmalloc(Pn * sizeof *G), *V = xmalloc(Pd * sizeof *V);
  double t_step[100], t_gemm[100], t_norm[100];
  for (int r = -1; r < reps; r++) {
    double t0 = now();
    score_empirical_eval(&se, P, Y, S, NULL, NULL, NULL, work);
    rng_normals(1, RNG_PURPOSE_STEP, 0, (uint32_t)(r + 1), Pd, Xi);
    reverse_sde_step(&ops, P, Y, S, Xi, tmp);
    double t1 = now();
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, n, d, 1.0, Y, d,
                se.beta, d, 0.0, G, n);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, P, d, n, 1.0, G, n,
                se.b, d, 0.0, V, d);
    double t2 = now();
    rng_normals(1, RNG_PURPOSE_STEP, 0, (uint32_t)(r + 1), Pd, Xi);
    double t3 = now();
    if (r >= 0) {
      t_step[r] = t1 - t0;
      t_gemm[r] = t2 - t1;
      t_norm[r] = t3 - t2;
    }
  }
  double ms = median(reps, t_step) * 1e3, mg = median(reps, t_gemm) * 1e3;
  double mn = median(reps, t_norm) * 1e3;
  printf("empirical_step,%d,%d,%d,%s,%.2f,%.2f,%.2f,%.3f\n", P, d, n,
         scheme_name, ms, mg, mn, mg / ms);
  return 0;
}
