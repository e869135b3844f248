/* Dense linear algebra (linalg.c): wrappers against naive loops, and the
 * matrix exponential against exact exponentials.  Tolerances are multiples
 * of the unit roundoff 1.1e-16 scaled by the conditioning of each case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include <cblas.h>
#include <lapacke.h>
#undef I /* complex.h's, via lapacke.h: the tests name identities I */

#include "util/error.h"
#include "core/linalg.h"

#define NMAX 12

/* Deterministic pseudo-random entries in (-1, 1) (tests only). */
static double prand(uint64_t *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return ((double)(*s >> 11) * 0x1.0p-53) * 2.0 - 1.0;
}

static void fill(int n, uint64_t seed, double *M) {
  for (int k = 0; k < n; k++)
    M[k] = prand(&seed);
}

static double max_diff(int n, const double *a, const double *b) {
  double m = 0.0;
  for (int k = 0; k < n; k++)
    if (fabs(a[k] - b[k]) > m) m = fabs(a[k] - b[k]);
  return m;
}

static void naive_mul(int d, const double *A, const double *B, double *C) {
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++) {
      long double s = 0;
      for (int k = 0; k < d; k++)
        s += (long double)A[i * d + k] * B[k * d + j];
      C[i * d + j] = (double)s;
    }
}

/* Random SPD: G G^T + d I. */
static void spd(int d, uint64_t seed, double *M) {
  double G[NMAX * NMAX];
  fill(d * d, seed, G);
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++) {
      double s = i == j ? d : 0.0;
      for (int k = 0; k < d; k++)
        s += G[i * d + k] * G[j * d + k];
      M[i * d + j] = s;
    }
}

static void test_products(void **state) {
  (void)state;
  enum { d = 5 };
  double A[d * d], B[d * d], C[d * d], R[d * d], Bt[d * d], W[d * d];
  double x[d], y[d];
  fill(d * d, 1, A);
  fill(d * d, 2, B);
  fill(d, 3, x);
  la_matmul(d, A, B, C);
  naive_mul(d, A, B, R);
  assert_true(max_diff(d * d, C, R) < 1e-14);
  la_transpose(d, B, Bt);
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++)
      assert_true(Bt[j * d + i] == B[i * d + j]);
  la_matmul_nt(d, A, B, C);
  naive_mul(d, A, Bt, R);
  assert_true(max_diff(d * d, C, R) < 1e-14);
  /* A B A^T */
  la_congruence(d, A, B, C, W);
  naive_mul(d, A, B, W);
  double At[d * d];
  la_transpose(d, A, At);
  naive_mul(d, W, At, R);
  assert_true(max_diff(d * d, C, R) < 1e-14);
  la_matvec(d, A, x, y);
  for (int i = 0; i < d; i++) {
    double s = 0;
    for (int k = 0; k < d; k++)
      s += A[i * d + k] * x[k];
    assert_true(fabs(y[i] - s) < 1e-15);
  }
  la_symmetrize(d, B);
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++)
      assert_true(B[i * d + j] == B[j * d + i]);
  la_identity(d, C);
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++)
      assert_true(C[i * d + j] == (i == j));
}

static void test_sym_eig(void **state) {
  (void)state;
  enum { d = 6 };
  double M[d * d], w[d], V[d * d], T[d * d], R[d * d];
  fill(d * d, 7, M);
  la_symmetrize(d, M);
  assert_int_equal(la_sym_eig(d, M, w, V), NRD_OK);
  for (int k = 1; k < d; k++)
    assert_true(w[k - 1] <= w[k]);
  /* M V = V diag(w) and V^T V = I */
  naive_mul(d, M, V, T);
  for (int i = 0; i < d; i++)
    for (int k = 0; k < d; k++)
      assert_true(fabs(T[i * d + k] - V[i * d + k] * w[k]) < 1e-14);
  double Vt[d * d];
  la_transpose(d, V, Vt);
  naive_mul(d, Vt, V, R);
  la_identity(d, T);
  assert_true(max_diff(d * d, R, T) < 1e-14);
  assert_int_equal(la_sym_eig(0, M, w, V), NRD_ERR_INPUT);
}

static void test_sqrt_invsqrt(void **state) {
  (void)state;
  enum { d = 5 };
  double M[d * d], S[d * d], Si[d * d], T[d * d], R[d * d], I[d * d];
  spd(d, 11, M);
  assert_int_equal(la_sym_sqrt(d, M, S), NRD_OK);
  assert_int_equal(la_sym_invsqrt(d, M, Si), NRD_OK);
  naive_mul(d, S, S, T);
  assert_true(max_diff(d * d, T, M) < 1e-12 * 10); /* ||M|| ~ 10 */
  naive_mul(d, Si, M, T);
  naive_mul(d, T, Si, R);
  la_identity(d, I);
  assert_true(max_diff(d * d, R, I) < 1e-13);
  /* a negative eigenvalue has no real square root */
  double N[4] = {1, 0, 0, -1};
  assert_int_equal(la_sym_sqrt(2, N, T), NRD_ERR_NUMERIC);
  assert_int_equal(la_sym_invsqrt(2, N, T), NRD_ERR_NUMERIC);
}

static void test_cholesky_inverse(void **state) {
  (void)state;
  enum { d = 7 };
  double M[d * d], L[d * d], Lt[d * d], T[d * d], Mi[d * d], I[d * d];
  spd(d, 5, M);
  assert_int_equal(la_cholesky(d, M, L), NRD_OK);
  for (int i = 0; i < d; i++)
    for (int j = i + 1; j < d; j++)
      assert_true(L[i * d + j] == 0.0);
  la_transpose(d, L, Lt);
  naive_mul(d, L, Lt, T);
  assert_true(max_diff(d * d, T, M) < 1e-13 * 10);
  assert_int_equal(la_spd_inverse(d, M, Mi), NRD_OK);
  naive_mul(d, M, Mi, T);
  la_identity(d, I);
  assert_true(max_diff(d * d, T, I) < 1e-13);
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++)
      assert_true(Mi[i * d + j] == Mi[j * d + i]);
  /* log det of diag(2, 3, 0.5) */
  double D[9] = {2, 0, 0, 0, 3, 0, 0, 0, 0.5}, LD[9];
  assert_int_equal(la_cholesky(3, D, LD), NRD_OK);
  assert_true(fabs(la_chol_logdet(3, LD) - log(3.0)) < 1e-15);
  /* indefinite: [[1,2],[2,1]] has eigenvalues 3, -1 */
  double N[4] = {1, 2, 2, 1};
  assert_int_equal(la_cholesky(2, N, L), NRD_ERR_NUMERIC);
  assert_int_equal(la_spd_inverse(2, N, L), NRD_ERR_NUMERIC);
}

static void test_general_eigvals_norm(void **state) {
  (void)state;
  double re[3], im[3];
  /* rotation generator: eigenvalues +-i */
  double G[4] = {0, 1, -1, 0};
  assert_int_equal(la_general_eigvals(2, G, re, im), NRD_OK);
  assert_true(fabs(re[0]) < 1e-15 && fabs(re[1]) < 1e-15);
  assert_true(fabs(fabs(im[0]) - 1) < 1e-15 && fabs(im[0] + im[1]) < 1e-15);
  /* upper triangular: eigenvalues on the diagonal */
  double T[9] = {2, 5, 7, 0, -1, 3, 0, 0, 4};
  assert_int_equal(la_general_eigvals(3, T, re, im), NRD_OK);
  double want[3] = {-1, 2, 4};
  for (int w = 0; w < 3; w++) {
    int found = 0;
    for (int k = 0; k < 3; k++)
      found |= fabs(re[k] - want[w]) < 1e-14 && im[k] == 0.0;
    assert_true(found);
  }
  double nrm;
  double D[9] = {3, 0, 0, 0, -5, 0, 0, 0, 1};
  assert_int_equal(la_spectral_norm(3, D, &nrm), NRD_OK);
  assert_true(fabs(nrm - 5) < 1e-14);
  /* rank one u v^T: norm |u| |v| = 3 * 5 */
  double u[3] = {1, 2, 2}, v[3] = {3, 0, 4}, R[9];
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++)
      R[i * 3 + j] = u[i] * v[j];
  assert_int_equal(la_spectral_norm(3, R, &nrm), NRD_OK);
  assert_true(fabs(nrm - 15) < 1e-13);
}

/* expm of a diagonal matrix: entrywise exp, relative accuracy ~eps even for
 * entries of size 50 (scaling and squaring of a diagonal is exact up to
 * rounding of each squaring: 2^s steps lose ~s eps). */
static void test_expm_diagonal(void **state) {
  (void)state;
  double dg[4] = {-50.0, 3.0, 0.5, 0.0};
  double M[16] = {0}, E[16];
  for (int i = 0; i < 4; i++)
    M[i * 4 + i] = dg[i];
  assert_int_equal(la_expm(4, M, E), NRD_OK);
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) {
      if (i == j)
        assert_true(fabs(E[i * 4 + i] / exp(dg[i]) - 1) < 1e-14);
      else
        assert_true(E[i * 4 + j] == 0.0);
    }
}

/* exp(t [[0,1],[-1,0]]) = [[cos t, sin t], [-sin t, cos t]].  Error grows
 * like s eps with s the number of squarings (s = 3 at t = 30). */
static void test_expm_rotation(void **state) {
  (void)state;
  double ts[5] = {1e-3, 0.3, 1.0, 2.0, 30.0};
  for (int k = 0; k < 5; k++) {
    double t = ts[k], M[4] = {0, t, -t, 0}, E[4];
    assert_int_equal(la_expm(2, M, E), NRD_OK);
    double W[4] = {cos(t), sin(t), -sin(t), cos(t)};
    assert_true(max_diff(4, E, W) < 1e-14);
  }
}

/* Jordan blocks: exp([[a,1],[0,a]]) = e^a [[1,1],[0,1]]; exp(N) for the 3x3
 * shift N is I + N + N^2/2 (the Pade approximant is exact for nilpotent
 * matrices only up to rounding, hence 1e-15). */
static void test_expm_jordan(void **state) {
  (void)state;
  double as[3] = {-2.0, 0.7, 4.0};
  for (int k = 0; k < 3; k++) {
    double a = as[k], M[4] = {a, 1, 0, a}, E[4];
    assert_int_equal(la_expm(2, M, E), NRD_OK);
    double W[4] = {exp(a), exp(a), 0, exp(a)};
    for (int i = 0; i < 4; i++)
      assert_true(fabs(E[i] - W[i]) <= 1e-14 * exp(a));
  }
  double N[9] = {0, 1, 0, 0, 0, 1, 0, 0, 0}, E[9];
  double W[9] = {1, 1, 0.5, 0, 1, 1, 0, 0, 1};
  assert_int_equal(la_expm(3, N, E), NRD_OK);
  assert_true(max_diff(9, E, W) < 1e-15);
}

/* doc/validation.md V2b: A = [[1,8],[-2,4]], t = 0.6: e^{-At} printed to 6
 * decimals; also against the closed form for 2x2 with complex eigenvalues
 * c +- i w:  e^{-At} = e^{-ct} (cos(wt) I - sin(wt)/w (A - cI)), c = 2.5,
 * w = sqrt(det A - c^2) = sqrt(13.75), to 1e-14 (s = 1 squaring). */
static void test_expm_v2b(void **state) {
  (void)state;
  double t = 0.6, A[4] = {1, 8, -2, 4}, M[4], E[4];
  for (int k = 0; k < 4; k++)
    M[k] = -t * A[k];
  assert_int_equal(la_expm(2, M, E), NRD_OK);
  double printed[4] = {-0.064124, -0.382040, 0.095510, -0.207388};
  for (int k = 0; k < 4; k++)
    assert_true(fabs(E[k] - printed[k]) < 1e-6);
  double c = 2.5, w = sqrt(13.75), ec = exp(-c * t);
  double W[4];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++)
      W[i * 2 + j] = ec * ((i == j) * cos(w * t) -
                           sin(w * t) / w * (A[i * 2 + j] - c * (i == j)));
  assert_true(max_diff(4, E, W) < 1e-14);
}

/* Every Pade degree (norms 0.01 .. 0.9 select m = 3, 5, 7 and 9 without
 * scaling) against a Taylor series summed in long double, which converges
 * to far below double precision there; 1e-15 relative to ||exp(M)|| ~ 1. */
static void test_expm_degrees_taylor(void **state) {
  (void)state;
  enum { d = 6 };
  double norms[5] = {0.01, 0.2, 0.9, 2.0, 5.0};
  for (int c = 0; c < 5; c++) {
    double M[d * d], E[d * d];
    fill(d * d, 100 + c, M);
    double n1 = 0;
    for (int j = 0; j < d; j++) {
      double s = 0;
      for (int i = 0; i < d; i++)
        s += fabs(M[i * d + j]);
      if (s > n1) n1 = s;
    }
    for (int k = 0; k < d * d; k++)
      M[k] *= norms[c] / n1;
    assert_int_equal(la_expm(d, M, E), NRD_OK);
    long double S[d * d], T[d * d], T2[d * d];
    for (int k = 0; k < d * d; k++)
      S[k] = T[k] = (k % (d + 1) == 0);
    for (int p = 1; p < 80; p++) {
      for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
          long double s = 0;
          for (int k = 0; k < d; k++)
            s += T[i * d + k] * M[k * d + j];
          T2[i * d + j] = s / p;
        }
      for (int k = 0; k < d * d; k++) {
        T[k] = T2[k];
        S[k] += T[k];
      }
    }
    double scale = 0, err = 0;
    for (int k = 0; k < d * d; k++) {
      scale = fmax(scale, fabs((double)S[k]));
      err = fmax(err, fabs(E[k] - (double)S[k]));
    }
    /* degree-13 cases scale and square, which costs a few more ulps */
    assert_true(err < (norms[c] < 1 ? 2e-15 : 1e-14) * scale);
  }
}

/* Large norm: symmetric M = V diag(w) V^T has exp(M) = V diag(e^w) V^T; and
 * exp(M) exp(-M) = I for a non-normal M.  Relative error of the
 * exponential ~ s eps ||M|| (Higham 2005), here ~1e-13. */
static void test_expm_large(void **state) {
  (void)state;
  enum { d = 8 };
  double M[d * d], w[d], V[d * d], E[d * d], R[d * d], Y[d * d];
  fill(d * d, 42, M);
  la_symmetrize(d, M);
  for (int k = 0; k < d * d; k++)
    M[k] *= 4.0;
  assert_int_equal(la_sym_eig(d, M, w, V), NRD_OK);
  for (int i = 0; i < d; i++)
    for (int k = 0; k < d; k++)
      Y[i * d + k] = V[i * d + k] * exp(w[k]);
  la_matmul_nt(d, Y, V, R);
  assert_int_equal(la_expm(d, M, E), NRD_OK);
  double emax = exp(w[d - 1]);
  assert_true(max_diff(d * d, E, R) < 1e-13 * emax);

  double N[d * d], Nm[d * d], E2[d * d], I[d * d];
  fill(d * d, 43, N);
  for (int k = 0; k < d * d; k++) {
    N[k] *= 3.0;
    Nm[k] = -N[k];
  }
  assert_int_equal(la_expm(d, N, E), NRD_OK);
  assert_int_equal(la_expm(d, Nm, E2), NRD_OK);
  la_matmul(d, E, E2, R);
  la_identity(d, I);
  assert_true(max_diff(d * d, R, I) < 1e-11);
}

static void test_expm_errors(void **state) {
  (void)state;
  double M[4] = {0, NAN, 0, 0}, E[4];
  assert_int_equal(la_expm(2, M, E), NRD_ERR_INPUT);
  M[1] = INFINITY;
  assert_int_equal(la_expm(2, M, E), NRD_ERR_INPUT);
  assert_int_equal(la_expm(0, M, E), NRD_ERR_INPUT);
  /* the zero matrix gives exactly I */
  double Z[9] = {0}, Id[9];
  assert_int_equal(la_expm(3, Z, Id), NRD_OK);
  for (int k = 0; k < 9; k++)
    assert_true(Id[k] == (k % 4 == 0));
  /* E may alias M (linalg.h): in place, scaled case, same bits */
  double R[4] = {0, 7, -7, 0}, Rc[4];
  assert_int_equal(la_expm(2, R, Rc), NRD_OK);
  assert_int_equal(la_expm(2, R, R), NRD_OK);
  assert_true(memcmp(R, Rc, sizeof R) == 0);
}

/* The O(d^2) paths for diagonal factors give what the BLAS/LAPACK calls they
 * replace give, bit for bit (the runs' outputs must not depend on which path
 * a configuration takes); a diagonal with one negative entry fails as
 * dpotrf does. */
static void test_diagonal_shortcuts(void **state) {
  (void)state;
  enum { d = 9 };
  double D[d * d] = {0}, B[d * d], S[d * d], R[d * d], C[d * d], x[d], y[d];
  fill(d * d, 31, B);
  fill(d, 32, x);
  for (int i = 0; i < d; i++)
    D[i * d + i] = 1.5 + prand(&(uint64_t){(uint64_t)i + 7});
  D[4 * d + 4] = D[2 * d + 2]; /* a tie for the eigenvalue order */
  assert_true(la_is_diagonal(d, D));
  assert_false(la_is_diagonal(d, B));
  const double *AB[2][2] = {{D, B}, {B, D}};
  for (int c = 0; c < 2; c++) {
    la_matmul(d, AB[c][0], AB[c][1], R);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0,
                AB[c][0], d, AB[c][1], d, 0.0, C, d);
    assert_memory_equal(R, C, sizeof R);
    la_matmul_nt(d, AB[c][0], AB[c][1], R);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d, d, d, 1.0,
                AB[c][0], d, AB[c][1], d, 0.0, C, d);
    assert_memory_equal(R, C, sizeof R);
  }
  la_matvec(d, D, x, y);
  double z[d];
  cblas_dgemv(CblasRowMajor, CblasNoTrans, d, d, 1.0, D, d, x, 1, 0.0, z, 1);
  assert_memory_equal(y, z, sizeof y);

  assert_int_equal(la_cholesky(d, D, R), NRD_OK);
  memcpy(C, D, sizeof C);
  assert_int_equal(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', d, C, d), 0);
  for (int i = 0; i < d; i++)
    for (int j = i + 1; j < d; j++)
      C[i * d + j] = 0.0;
  assert_memory_equal(R, C, sizeof R);

  double w[d], w2[d];
  assert_int_equal(la_sym_eig(d, D, w, R), NRD_OK);
  memcpy(S, D, sizeof S);
  assert_int_equal(LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', d, S, d, w2), 0);
  assert_memory_equal(w, w2, sizeof w);
  la_matmul(d, D, R, C); /* eigenvectors: D V = V diag(w) */
  for (int i = 0; i < d; i++)
    for (int k = 0; k < d; k++)
      assert_true(C[i * d + k] == R[i * d + k] * w[k]);

  D[3 * d + 3] = -0.5;
  assert_int_equal(la_cholesky(d, D, R), NRD_ERR_NUMERIC);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_products),
      cmocka_unit_test(test_sym_eig),
      cmocka_unit_test(test_sqrt_invsqrt),
      cmocka_unit_test(test_cholesky_inverse),
      cmocka_unit_test(test_general_eigvals_norm),
      cmocka_unit_test(test_expm_diagonal),
      cmocka_unit_test(test_expm_rotation),
      cmocka_unit_test(test_expm_jordan),
      cmocka_unit_test(test_expm_v2b),
      cmocka_unit_test(test_expm_degrees_taylor),
      cmocka_unit_test(test_expm_large),
      cmocka_unit_test(test_expm_errors),
      cmocka_unit_test(test_diagonal_shortcuts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
