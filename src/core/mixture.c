/* Gaussian-mixture data models p_0 = sum_k pi_k N(mu_k, C_k) (doc/theory.md section 4.1)
 * and deterministic sampling from them. */
#include "core/mixture.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <lapacke.h>

#include "util/error.h"
#include "core/linalg.h"
#include "core/rng.h"

/* Weights must sum to 1 up to round-off of a sum of K doubles. */
#define WEIGHT_SUM_TOL 1e-12

/* F with F F^T = C (C symmetric PSD, d x d row-major): the lower Cholesky
 * factor when C > 0; otherwise V diag(sqrt(w)) from the eigendecomposition,
 * which also serves singular C (data on a subspace).  *lower tells which. */
static int cov_factor(int d, const double *C, double *F, int *lower) {
  size_t dd = (size_t)d * d;
  memcpy(F, C, dd * sizeof *F);
  /* Row-major lower == column-major upper of the same memory: no copy. */
  *lower = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', d, F, d) == 0;
  if (*lower) {
    for (int i = 0; i < d; i++)
      for (int j = i + 1; j < d; j++)
        F[(size_t)i * d + j] = 0;
    return NRD_OK;
  }
  double *w = malloc((size_t)d * sizeof *w);
  double *V = malloc(dd * sizeof *V);
  int rc = w && V ? NRD_OK
                  : NRD_FAIL(NRD_ERR_NOMEM, "eigenvectors of C_k, d = %d", d);
  if (rc == NRD_OK) {
    memcpy(V, C, dd * sizeof *V);
    /* Column-major on symmetric input: eigenvector k is row k of V. */
    int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', d, V, d, w);
    if (info != 0)
      rc = NRD_FAIL(NRD_ERR_LAPACK, "dsyevd of C_k (d = %d): info = %d", d,
                    info);
    else if (w[0] < -1e-12 * fabs(w[d - 1]))
      rc = NRD_FAIL(NRD_ERR_NUMERIC,
                    "C_k is not positive semi-definite: eigenvalue %g", w[0]);
  }
  if (rc == NRD_OK)
    for (int k = 0; k < d; k++) {
      double s = w[k] > 0 ? sqrt(w[k]) : 0;
      for (int i = 0; i < d; i++)
        F[(size_t)i * d + k] = V[(size_t)k * d + i] * s;
    }
  free(w);
  free(V);
  return rc;
}

/* Fill cov (from kind), detect shared covariances and symmetric2, and build
 * the sampling factors.  weights/means are already in place. */
static int finish(mixture *m, mix_cov_kind kind, double sigma2, const double *S,
                  const double *cov) {
  int d = m->d, K = m->K;
  size_t dd = (size_t)d * d;
  m->cov_kind = kind;
  m->sigma2 = kind == MIX_COV_ISOTROPIC ? sigma2 : 0;
  m->cov = calloc((size_t)K * dd, sizeof *m->cov);
  if (!m->cov)
    return NRD_FAIL(NRD_ERR_NOMEM, "K = %d covariances, d = %d", K, d);
  for (int k = 0; k < K; k++) {
    double *Ck = m->cov + (size_t)k * dd;
    const double *src = kind == MIX_COV_STATIONARY ? S
                        : kind == MIX_COV_FULL     ? cov + (size_t)k * dd
                                                   : NULL;
    for (int i = 0; i < d; i++)
      for (int j = 0; j < d; j++)
        /* Symmetrise: matrices read from files carry round-off asymmetry. */
        Ck[(size_t)i * d + j] =
            src ? 0.5 * (src[(size_t)i * d + j] + src[(size_t)j * d + i])
                : (i == j ? sigma2 : 0);
  }
  m->cov_shared = 1;
  for (int k = 1; k < K && m->cov_shared; k++)
    m->cov_shared =
        !memcmp(m->cov, m->cov + (size_t)k * dd, dd * sizeof(double));
  /* The tanh form is exact only for exact symmetry, so compare exactly. */
  m->symmetric2 =
      K == 2 && m->weights[0] == 0.5 && m->weights[1] == 0.5 && m->cov_shared;
  for (int i = 0; i < d && m->symmetric2; i++)
    m->symmetric2 = m->means[d + i] == -m->means[i];
  if (kind == MIX_COV_ISOTROPIC) return NRD_OK;
  int nf = m->cov_shared ? 1 : K;
  m->cov_factor = malloc((size_t)nf * dd * sizeof *m->cov_factor);
  if (!m->cov_factor)
    return NRD_FAIL(NRD_ERR_NOMEM, "%d covariance factors, d = %d", nf, d);
  int all_lower = 1, all_diag = 1;
  for (int k = 0; k < nf; k++) {
    double *F = m->cov_factor + (size_t)k * dd;
    int lower;
    NRD_CHECK(cov_factor(d, m->cov + (size_t)k * dd, F, &lower));
    all_lower &= lower;
    all_diag &= la_is_diagonal(d, F);
  }
  /* Stationary clusters with diagonal U sample in O(d), not O(d^2). */
  m->cov_factor_form = all_diag    ? MIX_FACTOR_DIAGONAL
                       : all_lower ? MIX_FACTOR_LOWER
                                   : MIX_FACTOR_DENSE;
  return NRD_OK;
}

static int check_kind(mix_cov_kind kind, double sigma2, const double *S,
                      const double *cov) {
  switch (kind) {
  case MIX_COV_ISOTROPIC:
    if (sigma2 >= 0) return NRD_OK;
    return NRD_FAIL(NRD_ERR_INPUT, "sigma^2 = %g is not >= 0", sigma2);
  case MIX_COV_STATIONARY:
    if (S) return NRD_OK;
    return NRD_FAIL(NRD_ERR_INPUT, "stationary clusters without S");
  case MIX_COV_FULL:
    if (cov) return NRD_OK;
    return NRD_FAIL(NRD_ERR_INPUT, "full covariances not given");
  }
  return NRD_FAIL(NRD_ERR_INPUT, "no covariance kind %d", (int)kind);
}

int mixture_two_class(mixture *m, int d, double separation,
                      const double *direction, mix_cov_kind kind, double sigma2,
                      const double *S, const double *full_cov) {
  memset(m, 0, sizeof *m);
  if (d < 1 || !(separation >= 0) || !direction)
    return NRD_FAIL(NRD_ERR_INPUT,
                    "two classes: d = %d, separation %g, %s direction", d,
                    separation, direction ? "a" : "no");
  NRD_CHECK(check_kind(kind, sigma2, S, full_cov));
  double n2 = 0;
  for (int i = 0; i < d; i++)
    n2 += direction[i] * direction[i];
  if (!(n2 > 0) || !isfinite(n2))
    return NRD_FAIL(NRD_ERR_INPUT, "class direction of |v|^2 = %g", n2);
  m->d = d;
  m->K = 2;
  m->weights = malloc(2 * sizeof *m->weights);
  m->means = malloc((size_t)2 * d * sizeof *m->means);
  if (!m->weights || !m->means) {
    mixture_free(m);
    return NRD_FAIL(NRD_ERR_NOMEM, "two class means, d = %d", d);
  }
  m->weights[0] = m->weights[1] = 0.5;
  double r = sqrt(separation * d / n2);
  for (int i = 0; i < d; i++) {
    m->means[i] = r * direction[i];
    m->means[d + i] = -m->means[i];
  }
  /* One common covariance for both classes: pass full_cov for k = 0 and 1. */
  double *cov2 = NULL;
  if (kind == MIX_COV_FULL) {
    size_t dd = (size_t)d * d;
    cov2 = malloc(2 * dd * sizeof *cov2);
    if (!cov2) {
      mixture_free(m);
      return NRD_FAIL(NRD_ERR_NOMEM, "two covariances, d = %d", d);
    }
    memcpy(cov2, full_cov, dd * sizeof *cov2);
    memcpy(cov2 + dd, full_cov, dd * sizeof *cov2);
  }
  int rc = NRD_OK;
  NRD_TRY(rc, finish(m, kind, sigma2, S, cov2));
  free(cov2);
  if (rc != NRD_OK) mixture_free(m);
  return rc;
}

int mixture_general(mixture *m, int d, int K, const double *weights,
                    const double *means, mix_cov_kind kind, double sigma2,
                    const double *S, const double *cov) {
  memset(m, 0, sizeof *m);
  if (d < 1 || K < 1 || !weights || !means)
    return NRD_FAIL(NRD_ERR_INPUT, "mixture: d = %d, K = %d, %s", d, K,
                    weights && means ? "weights and means"
                                     : "no weights or means");
  NRD_CHECK(check_kind(kind, sigma2, S, cov));
  double wsum = 0;
  for (int k = 0; k < K; k++) {
    if (!(weights[k] >= 0))
      return NRD_FAIL(NRD_ERR_INPUT, "weight %d is %g", k, weights[k]);
    wsum += weights[k];
  }
  if (!(fabs(wsum - 1) <= WEIGHT_SUM_TOL * K))
    return NRD_FAIL(NRD_ERR_INPUT, "the weights sum to %.17g, not 1", wsum);
  m->d = d;
  m->K = K;
  m->weights = malloc((size_t)K * sizeof *m->weights);
  m->means = malloc((size_t)K * d * sizeof *m->means);
  if (!m->weights || !m->means) {
    mixture_free(m);
    return NRD_FAIL(NRD_ERR_NOMEM, "K = %d means, d = %d", K, d);
  }
  memcpy(m->weights, weights, (size_t)K * sizeof *m->weights);
  memcpy(m->means, means, (size_t)K * d * sizeof *m->means);
  int rc = NRD_OK;
  NRD_TRY(rc, finish(m, kind, sigma2, S, cov));
  if (rc != NRD_OK) mixture_free(m);
  return rc;
}

void mixture_free(mixture *m) {
  free(m->weights);
  free(m->means);
  free(m->cov);
  free(m->cov_factor);
  memset(m, 0, sizeof *m);
}

void mixture_covariance(const mixture *m, double *Sigma0) {
  int d = m->d;
  size_t dd = (size_t)d * d;
  double *mean = calloc((size_t)d, sizeof *mean);
  memset(Sigma0, 0, dd * sizeof *Sigma0);
  for (int k = 0; k < m->K; k++) {
    const double *mu = m->means + (size_t)k * d, *C = m->cov + (size_t)k * dd;
    double w = m->weights[k];
    for (size_t ij = 0; ij < dd; ij++)
      Sigma0[ij] += w * C[ij];
    cblas_dger(CblasRowMajor, d, d, w, mu, 1, mu, 1, Sigma0, d);
    if (mean) cblas_daxpy(d, w, mu, 1, mean, 1);
  }
  /* Without memory for the mean, fall back to pairwise sums: mean mean^T =
   * sum_kl pi_k pi_l mu_k mu_l^T. */
  if (mean) {
    cblas_dger(CblasRowMajor, d, d, -1.0, mean, 1, mean, 1, Sigma0, d);
  } else {
    for (int k = 0; k < m->K; k++)
      for (int l = 0; l < m->K; l++)
        cblas_dger(CblasRowMajor, d, d, -m->weights[k] * m->weights[l],
                   m->means + (size_t)k * d, 1, m->means + (size_t)l * d, 1,
                   Sigma0, d);
  }
  free(mean);
}

/* Component of a uniform u: the first k with u < pi_0 + ... + pi_k (the
 * last component absorbs round-off in the cumulative sum). */
static int pick_component(const mixture *m, double u) {
  double c = 0;
  for (int k = 0; k < m->K - 1; k++) {
    c += m->weights[k];
    if (u < c) return k;
  }
  return m->K - 1;
}

/* Sample i (global index g = first_index + i):
 *   label = pick_component(u),  u = rng_uniforms(seed, LABEL, g, purpose, 1)
 *   x     = mu_label + F_label xi,  xi = rng_normals(seed, purpose, g, 0, d).
 * The label's step coordinate is the sampling purpose, so that training
 * point g (TRAIN) and particle g's exact initial condition (FORWARD) do not
 * share their class. */
int mixture_sample(const mixture *m, uint32_t seed, uint32_t purpose,
                   uint64_t first_index, int n, double *X, int *labels) {
  if (n < 0 || (n > 0 && !X))
    return NRD_FAIL(NRD_ERR_INPUT, "%d mixture samples%s", n,
                    X ? "" : " and nowhere to put them");
  if (n == 0) return NRD_OK;
  int d = m->d;
  size_t dd = (size_t)d * d;
  int *lab = labels ? labels : malloc((size_t)n * sizeof *lab);
  double *xi = malloc((size_t)d * sizeof *xi);
  if (!lab || !xi) {
    if (!labels) free(lab);
    free(xi);
    return NRD_FAIL(NRD_ERR_NOMEM, "%d mixture samples, d = %d", n, d);
  }
  for (int i = 0; i < n; i++) {
    double u;
    rng_uniforms(seed, RNG_PURPOSE_LABEL, first_index + (uint64_t)i, purpose, 1,
                 &u);
    lab[i] = pick_component(m, u);
  }
  double sigma = sqrt(m->sigma2);
  for (int i = 0; i < n; i++) {
    double *x = X + (size_t)i * d;
    const double *mu = m->means + (size_t)lab[i] * d;
    rng_normals(seed, purpose, first_index + (uint64_t)i, 0, (size_t)d, x);
    if (m->cov_kind == MIX_COV_ISOTROPIC) {
      for (int j = 0; j < d; j++)
        x[j] = mu[j] + sigma * x[j];
      continue;
    }
    const double *F = m->cov_factor + (m->cov_shared ? 0 : (size_t)lab[i] * dd);
    switch (m->cov_factor_form) {
    case MIX_FACTOR_DIAGONAL:
      for (int j = 0; j < d; j++)
        x[j] = mu[j] + F[(size_t)j * d + j] * x[j];
      break;
    case MIX_FACTOR_LOWER:
      cblas_dtrmv(CblasRowMajor, CblasLower, CblasNoTrans, CblasNonUnit, d, F,
                  d, x, 1);
      for (int j = 0; j < d; j++)
        x[j] += mu[j];
      break;
    default:
      cblas_dgemv(CblasRowMajor, CblasNoTrans, d, d, 1.0, F, d, x, 1, 0.0, xi,
                  1);
      for (int j = 0; j < d; j++)
        x[j] = mu[j] + xi[j];
    }
  }
  free(xi);
  if (!labels) free(lab);
  return NRD_OK;
}
