/* Time grids and reverse-time steps (see integrate.h). */
#include "nrdiff/integrate.h"
#include "nrdiff/error.h"
#include "nrdiff/linalg.h"
#include "nrdiff/params.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int timegrid_build(int spacing, double T, double t_min, long steps, double *t) {
  if (steps < 1 || !(T > t_min) || t_min < 0) return NRD_ERR_INPUT;
  if (spacing == SPACING_LOG) {
    if (!(t_min > 0)) return NRD_ERR_INPUT;
    double a = log(T), b = log(t_min);
    for (long k = 0; k <= steps; k++)
      t[k] = exp(a + (b - a) * (double)k / (double)steps);
  } else {
    for (long k = 0; k <= steps; k++)
      t[k] = T + (t_min - T) * (double)k / (double)steps;
  }
  /* End points exactly, whatever the rounding of the formulas. */
  t[0] = T;
  t[steps] = t_min;
  return NRD_OK;
}

int step_ops_init(step_ops *s, const ou_op *op, int scheme) {
  memset(s, 0, sizeof *s);
  s->d = op->d;
  s->scheme = scheme;
  s->h = -1.0;
  s->A = op->A;
  if (scheme == SCHEME_EXPONENTIAL) {
    size_t dd = (size_t)op->d * (size_t)op->d;
    s->F = malloc(dd * sizeof *s->F);
    s->G = malloc(dd * sizeof *s->G);
    s->Ln = malloc(dd * sizeof *s->Ln);
    if (!s->F || !s->G || !s->Ln) {
      step_ops_free(s);
      return NRD_ERR_NOMEM;
    }
  }
  return NRD_OK;
}

void step_ops_free(step_ops *s) {
  free(s->F);
  free(s->G);
  free(s->Ln);
  s->F = s->G = s->Ln = NULL;
}

/* G = A^{-1}(e^{Ah} - I) = sum_j h^{j+1} A^j / (j+1)!: taken from the
 * exponential of the block matrix [[A h, h I], [0, 0]] (its top-right block),
 * which avoids inverting A and stays accurate for small h. */
static int phi1(int d, const double *A, double h, double *F, double *G) {
  int n = 2 * d;
  double *M = calloc((size_t)n * n, sizeof *M);
  double *E = malloc((size_t)n * n * sizeof *E);
  if (!M || !E) {
    free(M);
    free(E);
    return NRD_ERR_NOMEM;
  }
  for (int i = 0; i < d; i++) {
    for (int j = 0; j < d; j++)
      M[i * n + j] = A[i * d + j] * h;
    M[i * n + d + i] = h;
  }
  int rc = la_expm(n, M, E);
  if (rc == NRD_OK)
    for (int i = 0; i < d; i++) {
      memcpy(F + (size_t)i * d, E + (size_t)i * n, (size_t)d * sizeof *F);
      memcpy(G + (size_t)i * d, E + (size_t)i * n + d, (size_t)d * sizeof *G);
    }
  free(M);
  free(E);
  return rc;
}

int step_ops_set_h(step_ops *s, const ou_op *op, double h) {
  if (!(h > 0)) return NRD_ERR_INPUT;
  if (h == s->h) return NRD_OK;
  s->h = h;
  if (s->scheme != SCHEME_EXPONENTIAL) return NRD_OK;
  int d = s->d;
  int rc = phi1(d, op->A, h, s->F, s->G);
  if (rc != NRD_OK) return rc;
  /* noise covariance F S F^T - S = (e^{-Ah})^{-1} Delta_h (e^{-Ah})^{-T}:
   * computed from Delta_h, which ou_noise_cov evaluates accurately for small
   * h, instead of as a difference of O(1) matrices. */
  size_t dd = (size_t)d * d;
  double *Dh = malloc(dd * sizeof *Dh), *C = malloc(dd * sizeof *C);
  double *W = malloc(dd * sizeof *W);
  if (!Dh || !C || !W) {
    rc = NRD_ERR_NOMEM;
    goto out;
  }
  rc = ou_noise_cov(op, h, Dh);
  if (rc != NRD_OK) goto out;
  la_congruence(d, s->F, Dh, C, W);
  la_symmetrize(d, C);
  rc = la_cholesky(d, C, s->Ln);
out:
  free(Dh);
  free(C);
  free(W);
  return rc;
}

void reverse_sde_step(const step_ops *s, int P, double *Y, const double *S,
                      const double *Xi, double *work) {
  int d = s->d;
  size_t n = (size_t)P * d;
  if (s->scheme == SCHEME_EXPONENTIAL) {
    /* work = Y F^T + 2 S G^T + Xi Ln^T (row-vector form of F y + ...) */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, d, d, 1.0, Y, d,
                s->F, d, 0.0, work, d);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, d, d, 2.0, S, d,
                s->G, d, 1.0, work, d);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, d, d, 1.0, Xi, d,
                s->Ln, d, 1.0, work, d);
    memcpy(Y, work, n * sizeof *Y);
    return;
  }
  /* Euler-Maruyama: work = Y A^T, then y += h (A y + 2 s) + sqrt(2h) xi */
  double h = s->h, sq = sqrt(2.0 * h);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, d, d, 1.0, Y, d, s->A,
              d, 0.0, work, d);
  for (size_t i = 0; i < n; i++)
    Y[i] += h * (work[i] + 2.0 * S[i]) + sq * Xi[i];
}

void ode_predict(const step_ops *s, int P, const double *Y, const double *S0,
                 double *Ystar) {
  int d = s->d;
  size_t n = (size_t)P * d;
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, d, d, 1.0, Y, d, s->A,
              d, 0.0, Ystar, d);
  for (size_t i = 0; i < n; i++)
    Ystar[i] = Y[i] + s->h * (Ystar[i] + S0[i]);
}

void ode_correct(const step_ops *s, int P, double *Y, const double *S0,
                 const double *Ystar, const double *S1, double *work) {
  int d = s->d;
  size_t n = (size_t)P * d;
  /* work = A y + A y* (one GEMM on the sum) */
  for (size_t i = 0; i < n; i++)
    work[n + i] = Y[i] + Ystar[i];
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, d, d, 1.0, work + n,
              d, s->A, d, 0.0, work, d);
  for (size_t i = 0; i < n; i++)
    Y[i] += 0.5 * s->h * (work[i] + S0[i] + S1[i]);
}

void forward_sample(int d, int P, const double *E, const double *L,
                    const double *X0, const double *Xi, double *Xt) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, d, d, 1.0, X0, d, E,
              d, 0.0, Xt, d);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, d, d, 1.0, Xi, d, L,
              d, 1.0, Xt, d);
}
