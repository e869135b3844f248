/* Gaussian-mixture data models (mixture.c, doc/theory.md section 4.1):
 * construction,
 * detection of the symmetric two-class case that admits the tanh form of the
 * score, the data covariance Sigma_0, and sampling: moments against the
 * exact ones (seeded, sample size and 5-sigma bounds stated) and bitwise
 * determinism under any partitioning of the sample indices. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "core/mixture.h"
#include "core/rng.h"

/* A three-component mixture in d = 3 with full, distinct covariances. */
static const double W3[3] = {0.2, 0.5, 0.3};
static const double MU3[9] = {1, 0, -1, -2, 0.5, 0, 0, 3, 1};
static const double COV3[27] = {
    1.0, 0.3, 0.0, 0.3, 0.5, 0.1, 0.0, 0.1, 0.8, /* k = 0 */
    2.0, 0.0, 0.5, 0.0, 1.0, 0.0, 0.5, 0.0, 0.7, /* k = 1 */
    0.4, 0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1, 0.4, /* k = 2 */
};

static void test_two_class_construction(void **state) {
  (void)state;
  enum { D = 4 };
  double dir[D] = {1, 2, 0, -2}; /* |dir| = 3, not normalised on purpose */
  double S[D * D] = {0};
  for (int i = 0; i < D; i++)
    S[i * D + i] = 1.0 + i;
  mixture m;
  assert_int_equal(
      mixture_two_class(&m, D, 2.5, dir, MIX_COV_STATIONARY, 0, S, NULL),
      NRD_OK);
  assert_int_equal(m.K, 2);
  assert_true(m.symmetric2 && m.cov_shared);
  assert_true(m.weights[0] == 0.5 && m.weights[1] == 0.5);
  double n2 = 0;
  for (int i = 0; i < D; i++) {
    n2 += m.means[i] * m.means[i];
    /* mu = sqrt(separation d) dir/|dir| and mu_2 = -mu_1 */
    assert_true(fabs(m.means[i] - sqrt(2.5 * D) * dir[i] / 3) < 1e-15);
    assert_true(m.means[D + i] == -m.means[i]);
  }
  assert_true(fabs(n2 - 2.5 * D) < 1e-13);
  assert_memory_equal(m.cov, S, sizeof S);
  assert_memory_equal(m.cov + D * D, S, sizeof S);
  assert_int_equal(m.cov_factor_form, MIX_FACTOR_DIAGONAL);
  mixture_free(&m);

  assert_int_equal(
      mixture_two_class(&m, D, 1.0, dir, MIX_COV_ISOTROPIC, 0.25, NULL, NULL),
      NRD_OK);
  for (int i = 0; i < D; i++)
    for (int j = 0; j < D; j++)
      assert_true(m.cov[i * D + j] == (i == j ? 0.25 : 0));
  assert_null(m.cov_factor);
  mixture_free(&m);

  double zero[D] = {0};
  assert_int_equal(
      mixture_two_class(&m, D, 1.0, zero, MIX_COV_ISOTROPIC, 1, NULL, NULL),
      NRD_ERR_INPUT);
  assert_int_equal(
      mixture_two_class(&m, D, 1.0, dir, MIX_COV_STATIONARY, 0, NULL, NULL),
      NRD_ERR_INPUT);
  assert_int_equal(
      mixture_two_class(&m, D, 1.0, dir, MIX_COV_ISOTROPIC, -1, NULL, NULL),
      NRD_ERR_INPUT);
}

/* symmetric2 needs K = 2, pi = (1/2, 1/2), mu_2 = -mu_1 and C_1 = C_2
 * exactly: the tanh form is an identity only then. */
static void test_symmetric2_detection(void **state) {
  (void)state;
  double w[2] = {0.5, 0.5}, mu[4] = {1, -2, -1, 2};
  double cov[8] = {1, 0.2, 0.2, 1, 1, 0.2, 0.2, 1};
  mixture m;
  assert_int_equal(mixture_general(&m, 2, 2, w, mu, MIX_COV_FULL, 0, NULL, cov),
                   NRD_OK);
  assert_true(m.symmetric2);
  mixture_free(&m);
  double w2[2] = {0.25, 0.75};
  assert_int_equal(
      mixture_general(&m, 2, 2, w2, mu, MIX_COV_FULL, 0, NULL, cov), NRD_OK);
  assert_false(m.symmetric2);
  mixture_free(&m);
  double mu2[4] = {1, -2, -1, 2.0000001};
  assert_int_equal(
      mixture_general(&m, 2, 2, w, mu2, MIX_COV_ISOTROPIC, 1, NULL, NULL),
      NRD_OK);
  assert_false(m.symmetric2);
  mixture_free(&m);
  double cov2[8] = {1, 0.2, 0.2, 1, 1, 0.1, 0.1, 1};
  assert_int_equal(
      mixture_general(&m, 2, 2, w, mu, MIX_COV_FULL, 0, NULL, cov2), NRD_OK);
  assert_false(m.symmetric2);
  assert_false(m.cov_shared);
  mixture_free(&m);
  /* invalid weights */
  double wbad[2] = {0.5, 0.6}, wneg[2] = {1.5, -0.5};
  assert_int_equal(
      mixture_general(&m, 2, 2, wbad, mu, MIX_COV_ISOTROPIC, 1, NULL, NULL),
      NRD_ERR_INPUT);
  assert_int_equal(
      mixture_general(&m, 2, 2, wneg, mu, MIX_COV_ISOTROPIC, 1, NULL, NULL),
      NRD_ERR_INPUT);
}

/* Sigma_0 = sum pi_k (C_k + mu_k mu_k^T) - mean mean^T, against the formula
 * written out by hand; all entries are short sums of exact products, so
 * agreement to 1e-14 is round-off. */
static void test_mixture_covariance(void **state) {
  (void)state;
  mixture m;
  assert_int_equal(
      mixture_general(&m, 3, 3, W3, MU3, MIX_COV_FULL, 0, NULL, COV3), NRD_OK);
  double S0[9], mean[3] = {0};
  mixture_covariance(&m, S0);
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < 3; i++)
      mean[i] += W3[k] * MU3[3 * k + i];
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) {
      double ref = -mean[i] * mean[j];
      for (int k = 0; k < 3; k++)
        ref +=
            W3[k] * (COV3[9 * k + 3 * i + j] + MU3[3 * k + i] * MU3[3 * k + j]);
      assert_true(fabs(S0[3 * i + j] - ref) < 1e-14);
    }
  mixture_free(&m);
}

/* N = 2 10^5 samples of the three-component mixture: label frequencies
 * within 5 sqrt(pi(1-pi)/N), and per component the sample mean within 5
 * sqrt(C_ii/N_k) of mu_k and the sample covariance within 5 sigma of C_k,
 * sigma_ij = sqrt((C_ii C_jj + C_ij^2)/N_k) (the variance of a Gaussian
 * product); the pooled covariance is then checked against
 * mixture_covariance with the same rule using Sigma_0. */
static void test_sample_moments(void **state) {
  (void)state;
  enum { N = 200000, D = 3, K = 3 };
  mixture m;
  assert_int_equal(
      mixture_general(&m, D, K, W3, MU3, MIX_COV_FULL, 0, NULL, COV3), NRD_OK);
  assert_int_equal(m.cov_factor_form, MIX_FACTOR_LOWER);
  double *X = malloc((size_t)N * D * sizeof *X);
  int *lab = malloc(N * sizeof *lab);
  assert_int_equal(mixture_sample(&m, 99, RNG_PURPOSE_TRAIN, 0, N, X, lab),
                   NRD_OK);
  for (int k = 0; k < K; k++) {
    double nk = 0, mean[D] = {0}, cov[D * D] = {0};
    for (int s = 0; s < N; s++)
      if (lab[s] == k) {
        nk++;
        for (int i = 0; i < D; i++)
          mean[i] += X[s * D + i];
      }
    assert_true(fabs(nk / N - W3[k]) < 5 * sqrt(W3[k] * (1 - W3[k]) / N));
    for (int i = 0; i < D; i++)
      mean[i] /= nk;
    for (int s = 0; s < N; s++)
      if (lab[s] == k)
        for (int i = 0; i < D; i++)
          for (int j = 0; j < D; j++)
            cov[i * D + j] +=
                (X[s * D + i] - mean[i]) * (X[s * D + j] - mean[j]);
    const double *C = COV3 + 9 * k, *mu = MU3 + 3 * k;
    for (int i = 0; i < D; i++) {
      assert_true(fabs(mean[i] - mu[i]) < 5 * sqrt(C[i * D + i] / nk));
      for (int j = 0; j < D; j++) {
        double sig = sqrt(
            (C[i * D + i] * C[j * D + j] + C[i * D + j] * C[i * D + j]) / nk);
        assert_true(fabs(cov[i * D + j] / nk - C[i * D + j]) < 5 * sig);
      }
    }
  }
  double S0[D * D], mean[D] = {0}, cov[D * D] = {0};
  mixture_covariance(&m, S0);
  for (int s = 0; s < N; s++)
    for (int i = 0; i < D; i++)
      mean[i] += X[s * D + i] / N;
  for (int s = 0; s < N; s++)
    for (int i = 0; i < D; i++)
      for (int j = 0; j < D; j++)
        cov[i * D + j] +=
            (X[s * D + i] - mean[i]) * (X[s * D + j] - mean[j]) / N;
  /* The mixture is not Gaussian; its product variance is bounded here by
   * the sample fourth moment, estimated from the same samples. */
  for (int i = 0; i < D; i++)
    for (int j = 0; j < D; j++) {
      double m4 = 0;
      for (int s = 0; s < N; s++) {
        double q = (X[s * D + i] - mean[i]) * (X[s * D + j] - mean[j]) -
                   cov[i * D + j];
        m4 += q * q / N;
      }
      assert_true(fabs(cov[i * D + j] - S0[i * D + j]) < 5 * sqrt(m4 / N));
    }
  free(X);
  free(lab);
  mixture_free(&m);
}

/* Sample i depends only on (seed, purpose, first_index + i): the same 100
 * samples drawn in one call and in uneven pieces agree bit for bit, for
 * every way of applying the covariance (isotropic, diagonal, Cholesky,
 * eigen-factor of a singular C, distinct C_k). */
static void check_partitioning(const mixture *m) {
  enum { N = 100 };
  int d = m->d;
  double *A = malloc((size_t)N * d * sizeof *A);
  double *B = malloc((size_t)N * d * sizeof *B);
  int la[N], lb[N];
  assert_int_equal(mixture_sample(m, 5, RNG_PURPOSE_FORWARD, 1000, N, A, la),
                   NRD_OK);
  int cuts[] = {0, 37, 38, 64, 99, N};
  for (int c = 0; c + 1 < 6; c++) {
    int n = cuts[c + 1] - cuts[c];
    assert_int_equal(mixture_sample(m, 5, RNG_PURPOSE_FORWARD,
                                    1000 + (uint64_t)cuts[c], n,
                                    B + (size_t)cuts[c] * d, lb + cuts[c]),
                     NRD_OK);
  }
  assert_memory_equal(A, B, (size_t)N * d * sizeof *A);
  assert_memory_equal(la, lb, sizeof la);
  /* labels are optional */
  assert_int_equal(mixture_sample(m, 5, RNG_PURPOSE_FORWARD, 1000, N, B, NULL),
                   NRD_OK);
  assert_memory_equal(A, B, (size_t)N * d * sizeof *A);
  free(A);
  free(B);
}

static void test_sampling_partition_independent(void **state) {
  (void)state;
  enum { D = 5 };
  double dir[D] = {1, 1, 1, 1, 1}, S[D * D], diag[D * D] = {0}, sing[D * D];
  double v[D] = {1, -1, 0.5, 2, 0};
  for (int i = 0; i < D; i++) {
    diag[i * D + i] = 0.5 + i;
    for (int j = 0; j < D; j++) {
      S[i * D + j] = (i == j ? 2.0 : 0) + 0.3 / (1 + i + j);
      sing[i * D + j] = v[i] * v[j]; /* rank one */
    }
  }
  mixture m;
  assert_int_equal(
      mixture_two_class(&m, D, 2, dir, MIX_COV_ISOTROPIC, 0.7, NULL, NULL),
      NRD_OK);
  check_partitioning(&m);
  mixture_free(&m);
  assert_int_equal(
      mixture_two_class(&m, D, 2, dir, MIX_COV_STATIONARY, 0, diag, NULL),
      NRD_OK);
  assert_int_equal(m.cov_factor_form, MIX_FACTOR_DIAGONAL);
  check_partitioning(&m);
  mixture_free(&m);
  assert_int_equal(
      mixture_two_class(&m, D, 2, dir, MIX_COV_STATIONARY, 0, S, NULL), NRD_OK);
  assert_int_equal(m.cov_factor_form, MIX_FACTOR_LOWER);
  check_partitioning(&m);
  mixture_free(&m);
  assert_int_equal(
      mixture_two_class(&m, D, 2, dir, MIX_COV_FULL, 0, NULL, sing), NRD_OK);
  assert_int_equal(m.cov_factor_form, MIX_FACTOR_DENSE);
  check_partitioning(&m);
  mixture_free(&m);
  assert_int_equal(
      mixture_general(&m, 3, 3, W3, MU3, MIX_COV_FULL, 0, NULL, COV3), NRD_OK);
  check_partitioning(&m);
  mixture_free(&m);
}

/* A singular covariance v v^T (d = 2) puts every sample on the line
 * mu_k + t v with t ~ N(0, 1): the component normal to v vanishes to
 * round-off and t has unit variance (N = 10^4, 5 sigma = 5 sqrt(2/N)).
 * Point masses (sigma = 0) give the means exactly. */
static void test_degenerate_covariances(void **state) {
  (void)state;
  enum { N = 10000 };
  double v[2] = {0.6, 0.8}, C[4] = {0.36, 0.48, 0.48, 0.64}, dir[2] = {1, 0};
  mixture m;
  assert_int_equal(mixture_two_class(&m, 2, 1, dir, MIX_COV_FULL, 0, NULL, C),
                   NRD_OK);
  double *X = malloc(2 * N * sizeof *X);
  int *lab = malloc(N * sizeof *lab);
  assert_int_equal(mixture_sample(&m, 1, RNG_PURPOSE_TRAIN, 0, N, X, lab),
                   NRD_OK);
  double t2 = 0;
  for (int s = 0; s < N; s++) {
    double y0 = X[2 * s] - m.means[2 * lab[s]];
    double y1 = X[2 * s + 1] - m.means[2 * lab[s] + 1];
    assert_true(fabs(y0 * v[1] - y1 * v[0]) < 1e-13);
    double t = y0 * v[0] + y1 * v[1];
    t2 += t * t / N;
  }
  assert_true(fabs(t2 - 1) < 5 * sqrt(2.0 / N));
  mixture_free(&m);
  assert_int_equal(
      mixture_two_class(&m, 2, 1, dir, MIX_COV_ISOTROPIC, 0, NULL, NULL),
      NRD_OK);
  assert_int_equal(mixture_sample(&m, 1, RNG_PURPOSE_TRAIN, 0, N, X, lab),
                   NRD_OK);
  for (int s = 0; s < N; s++)
    for (int i = 0; i < 2; i++)
      assert_true(X[2 * s + i] == m.means[2 * lab[s] + i]);
  mixture_free(&m);
  free(X);
  free(lab);
}

/* Sampling purposes draw independent labels: training point g and the
 * particle g sampled for another purpose agree in class only by chance
 * (N = 10^4, K = 2: agreement 1/2 within 5 sqrt(1/(4N))). */
static void test_labels_independent_across_purposes(void **state) {
  (void)state;
  enum { N = 10000 };
  double dir[1] = {1};
  mixture m;
  assert_int_equal(
      mixture_two_class(&m, 1, 1, dir, MIX_COV_ISOTROPIC, 1, NULL, NULL),
      NRD_OK);
  double *X = malloc(N * sizeof *X);
  int *la = malloc(N * sizeof *la), *lb = malloc(N * sizeof *lb);
  mixture_sample(&m, 3, RNG_PURPOSE_TRAIN, 0, N, X, la);
  mixture_sample(&m, 3, RNG_PURPOSE_FORWARD, 0, N, X, lb);
  double agree = 0;
  for (int s = 0; s < N; s++)
    agree += la[s] == lb[s];
  assert_true(fabs(agree / N - 0.5) < 5 * sqrt(0.25 / N));
  free(X);
  free(la);
  free(lb);
  mixture_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_two_class_construction),
      cmocka_unit_test(test_symmetric2_detection),
      cmocka_unit_test(test_mixture_covariance),
      cmocka_unit_test(test_sample_moments),
      cmocka_unit_test(test_sampling_partition_independent),
      cmocka_unit_test(test_degenerate_covariances),
      cmocka_unit_test(test_labels_independent_across_purposes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
