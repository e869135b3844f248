/* Forward operator (ou.c) against the exact numbers and identities of
 * doc/theory.md sections 1 and 3 and doc/validation.md's reference cases.
 * Printed reference numbers are
 * checked to their printed precision; identities to a few ulps times the
 * conditioning of the quantity, stated at each test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lapacke.h>

#include "util/error.h"
#include "core/linalg.h"
#include "core/ou.h"
#include "core/rng.h"

#define DMAX 64

static double max_abs(int n, const double *a) {
  double m = 0.0;
  for (int k = 0; k < n; k++)
    m = fmax(m, fabs(a[k]));
  return m;
}

static double max_diff(int n, const double *a, const double *b) {
  double m = 0.0;
  for (int k = 0; k < n; k++)
    m = fmax(m, fabs(a[k] - b[k]));
  return m;
}

static double trace(int d, const double *M) {
  double s = 0.0;
  for (int i = 0; i < d; i++)
    s += M[i * d + i];
  return s;
}

/* Random SPD U = G G^T / d + 0.1 I, G Gaussian (seeded, RNG_PURPOSE_TRAIN
 * as an arbitrary test stream): condition numbers up to ~50 at d = 64. */
static double *random_spd(int d, uint32_t seed) {
  double *G = malloc((size_t)d * d * sizeof *G);
  double *U = malloc((size_t)d * d * sizeof *U);
  rng_normals(seed, RNG_PURPOSE_TRAIN, 7, 0, (size_t)d * d, G);
  la_matmul_nt(d, G, G, U);
  for (int k = 0; k < d * d; k++)
    U[k] /= d;
  for (int i = 0; i < d; i++)
    U[i * d + i] += 0.1;
  la_symmetrize(d, U);
  free(G);
  return U;
}

/* The d = 2 example of doc/theory.md section 3.4: U = diag(1,4), Qhat =
 * [[0,1],[-1,0]]. */
static const double U2[4] = {1, 0, 0, 4};
static const double J2[4] = {0, 1, -1, 0};
static const double Sigma0_v2[4] = {3, 1, 1, 0.5};

/* ------------------------------------------------------------ V1, V2 */

/* V1 (doc/validation.md): A = I, t = 1: e^{-1} = 0.3678794, Delta = 0.8646647
 * (printed to 7 decimals, tol 1e-7); the isotropic path is exact to
 * rounding, so also 1e-15 against exp/expm1. */
static void test_v1_biroli(void **state) {
  (void)state;
  enum { d = 3 };
  double U[d * d], E[d * d], D[d * d];
  ou_u_isotropic(d, 1.0, U);
  ou_op op;
  assert_int_equal(ou_init(&op, d, U, NULL, 0.0), NRD_OK);
  assert_true(op.isotropic);
  assert_int_equal(ou_propagator(&op, 1.0, E), NRD_OK);
  assert_int_equal(ou_noise_cov(&op, 1.0, D), NRD_OK);
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++) {
      double e = i == j ? 0.3678794 : 0.0, dl = i == j ? 0.8646647 : 0.0;
      assert_true(fabs(E[i * d + j] - e) < 1e-7);
      assert_true(fabs(D[i * d + j] - dl) < 1e-7);
      if (i == j) {
        assert_true(fabs(E[i * d + j] - exp(-1.0)) < 1e-15);
        assert_true(fabs(D[i * d + j] + expm1(-2.0)) < 1e-15);
      }
    }
  ou_free(&op);
}

/* V2 / V2b (doc/validation.md): U = diag(1,4), Q = q[[0,1],[-1,0]],
 * Sigma0 = [[3,1],[1,.5]], t = 0.6: e^{-At}, Delta_t, Sigma_t printed to 6
 * decimals, so tol 1e-6 (rounding of the print is <= 5e-7). */
static void check_v2(double q, const double *Ew, const double *Dw,
                     const double *Sw) {
  double E[4], D[4], S[4];
  ou_op op;
  assert_int_equal(ou_init(&op, 2, U2, J2, q), NRD_OK);
  assert_false(op.isotropic);
  assert_int_equal(ou_propagator(&op, 0.6, E), NRD_OK);
  assert_int_equal(ou_noise_cov(&op, 0.6, D), NRD_OK);
  assert_int_equal(ou_marginal_cov(&op, 0.6, Sigma0_v2, S), NRD_OK);
  assert_true(max_diff(4, E, Ew) < 1e-6);
  assert_true(max_diff(4, D, Dw) < 1e-6);
  assert_true(max_diff(4, S, Sw) < 1e-6);
  ou_free(&op);
}

static void test_v2_reversible(void **state) {
  (void)state;
  double E[4] = {0.548812, 0, 0, 0.090718};
  double D[4] = {0.698806, 0, 0, 0.247943};
  double S[4] = {1.602388, 0.049787, 0.049787, 0.252057};
  check_v2(0.0, E, D, S);
}

static void test_v2b_q2(void **state) {
  (void)state;
  double E[4] = {-0.064124, -0.382040, 0.095510, -0.207388};
  double D[4] = {0.959400, -0.013683, -0.013683, 0.230125};
  double S[4] = {1.093708, -0.015631, -0.015631, 0.239381};
  check_v2(2.0, E, D, S);
  /* A = (I + Q) U = [[1,8],[-2,4]] exactly */
  ou_op op;
  assert_int_equal(ou_init(&op, 2, U2, J2, 2.0), NRD_OK);
  double A[4] = {1, 8, -2, 4};
  assert_true(max_diff(4, op.A, A) == 0.0);
  ou_free(&op);
}

/* ---------------------------------------------------------------- V3 */

/* V3 (doc/validation.md; doc/theory.md (3.9)): sigma(A) of the d = 2
 * example, printed to 4
 * decimals (tol 1e-4).  At q_c = |a-b|/(2 sqrt(ab)) = 0.75 A has a Jordan
 * block, where the eigenvalues are only sqrt(eps)-accurate: tol 1e-7. */
static void test_v3_spectrum(void **state) {
  (void)state;
  double qs[5] = {0, 0.3, 0.75, 1, 2};
  double want_re[5][2] = {
      {1, 4}, {1.1252, 3.8748}, {2.5, 2.5}, {2.5, 2.5}, {2.5, 2.5}};
  double want_im[5] = {0, 0, 0, 1.3229, 3.7081};
  double qc = fabs(1.0 - 4.0) / (2 * sqrt(1.0 * 4.0));
  assert_true(qc == 0.75);
  for (int c = 0; c < 5; c++) {
    ou_op op;
    double re[2], im[2], r;
    assert_int_equal(ou_init(&op, 2, U2, J2, qs[c]), NRD_OK);
    assert_int_equal(ou_spectrum(&op, re, im), NRD_OK);
    double tol = qs[c] == qc ? 1e-7 : 1e-4;
    for (int k = 0; k < 2; k++) {
      assert_true(fabs(re[k] - want_re[c][k]) < tol);
      assert_true(fabs(fabs(im[k]) - want_im[c]) < tol);
    }
    /* sorted by real part, then imaginary part */
    assert_true(re[0] < re[1] || (re[0] == re[1] && im[0] <= im[1]));
    /* the closed form (a+b)/2 +- sqrt((a-b)^2/4 - ab q^2) to full precision */
    double disc = 9.0 / 4 - 4 * qs[c] * qs[c];
    if (disc > 0 && qs[c] != qc) {
      assert_true(fabs(re[0] - (2.5 - sqrt(disc))) < 1e-14);
      assert_true(fabs(re[1] - (2.5 + sqrt(disc))) < 1e-14);
    } else if (qs[c] != qc) {
      assert_true(fabs(im[1] - sqrt(-disc)) < 1e-14);
    }
    /* relaxation rate: r(0) = lambda_min(U) = 1, r = Tr U/d = 2.5 past q_c */
    assert_int_equal(ou_relaxation_rate(&op, &r), NRD_OK);
    assert_true(fabs(r - want_re[c][0]) < tol);
    ou_free(&op);
  }
}

/* ---------------------------------------------------------------- V4 */

/* max_k |Re sigma((I+J)U) - Tr U/d|, from dgeev of (I+J)U formed here. */
static double lnp_defect(int d, const double *U, const double *J) {
  double *A = malloc((size_t)d * d * sizeof *A);
  double *re = malloc((size_t)d * sizeof *re), *im = malloc(d * sizeof *im);
  memcpy(A, U, (size_t)d * d * sizeof *A);
  double *T = malloc((size_t)d * d * sizeof *T);
  la_matmul(d, J, U, T);
  for (int k = 0; k < d * d; k++)
    A[k] += T[k];
  assert_int_equal(la_general_eigvals(d, A, re, im), NRD_OK);
  double tau = trace(d, U) / d, m = 0.0;
  for (int k = 0; k < d; k++)
    m = fmax(m, fabs(re[k] - tau));
  free(A);
  free(re);
  free(im);
  free(T);
  return m;
}

static void assert_antisymmetric(int d, const double *J) {
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++)
      assert_true(J[i * d + j] == -J[j * d + i]);
}

/* V4 (doc/theory.md section 3.2): LNP J_opt for random SPD U.  The target
 * Re sigma = Tr U/d holds exactly in exact arithmetic; numerically the
 * eigenvalues of the non-normal but diagonalizable (I+J)U move by about
 * cond(eigenvectors) * eps * ||(I+J)U||, with cond <= sqrt(cond U *
 * lambda_max/lambda_min) (doc/theory.md (3.7): C is Lambda^{-1}-skew, so it is
 * diagonalised by a Lambda^{1/2}-scaled unitary) and ||J|| ~ 15 here.  That
 * predicts <~1e-13 up to d = 64 (measured: <= 1e-14 relative), so 1e-12
 * relative to Tr U/d leaves a margin for other seeds; the same through
 * ou_init + ou_spectrum (which works on B). */
static void test_v4_generic(void **state) {
  (void)state;
  int ds[7] = {2, 3, 5, 8, 16, 33, 64};
  for (int c = 0; c < 7; c++) {
    int d = ds[c];
    double *U = random_spd(d, 1000 + d);
    double *J = malloc((size_t)d * d * sizeof *J);
    assert_int_equal(ou_q_optimal_generic(d, U, NULL, J), NRD_OK);
    assert_antisymmetric(d, J);
    double tau = trace(d, U) / d;
    double tol = 1e-12 * tau;
    double defect = lnp_defect(d, U, J);
    assert_true(defect < tol);
    /* ou_q_optimal on a non-diagonal U is the generic construction */
    double *J2b = malloc((size_t)d * d * sizeof *J2b);
    assert_int_equal(ou_q_optimal(d, U, NULL, J2b), NRD_OK);
    assert_true(max_diff(d * d, J, J2b) == 0.0);
    /* through the operator at g = 1: relaxation rate = Tr U/d, the bound */
    ou_op op;
    double r;
    assert_int_equal(ou_init(&op, d, U, J, 1.0), NRD_OK);
    assert_int_equal(ou_relaxation_rate(&op, &r), NRD_OK);
    assert_true(fabs(r - tau) < tol);
    ou_free(&op);
    free(U);
    free(J);
    free(J2b);
  }
}

/* V4, Hadamard shortcut (doc/theory.md (3.8)) for diagonal U, d = 4, 8, 64: a
 * different basis Psi than the generic one, so a different J, with the same
 * property and the same tolerance argument as above (||J|| is larger, ~50
 * at d = 64; measured defect 1e-14). */
static void test_v4_hadamard(void **state) {
  (void)state;
  int ds[3] = {4, 8, 64};
  for (int c = 0; c < 3; c++) {
    int d = ds[c];
    double *U = malloc((size_t)d * d * sizeof *U);
    double *u = malloc((size_t)d * sizeof *u);
    rng_uniforms(77, RNG_PURPOSE_TRAIN, (uint64_t)d, 0, (size_t)d, u);
    for (int i = 0; i < d; i++)
      u[i] = 0.2 + 5.0 * u[i];
    ou_u_diagonal(d, u, U);
    double *J = malloc((size_t)d * d * sizeof *J);
    double *Jg = malloc((size_t)d * d * sizeof *Jg);
    assert_int_equal(ou_q_optimal(d, U, NULL, J), NRD_OK);
    assert_int_equal(ou_q_optimal_generic(d, U, NULL, Jg), NRD_OK);
    assert_antisymmetric(d, J);
    double tau = trace(d, U) / d;
    assert_true(lnp_defect(d, U, J) < 1e-12 * tau);
    assert_true(lnp_defect(d, U, Jg) < 1e-12 * tau);
    assert_true(max_diff(d * d, J, Jg) > 1e-3); /* another optimum */
    free(U);
    free(u);
    free(J);
    free(Jg);
  }
  /* geometric spectrum as used by the grid, d = 64, range 100 */
  int d = 64;
  double *U = malloc((size_t)d * d * sizeof *U);
  double *J = malloc((size_t)d * d * sizeof *J);
  ou_u_geometric(d, 0.1, 10.0, U);
  assert_int_equal(ou_q_optimal(d, U, NULL, J), NRD_OK);
  assert_true(lnp_defect(d, U, J) < 1e-12 * trace(d, U) / d);
  free(U);
  free(J);
}

/* d = 2 (doc/theory.md section 3.4): J_opt for U = diag(1,4) must reach the
 * optimum,
 * i.e. |J_12| >= q_c = 0.75, and explicit lambda are honoured; bad lambda
 * or U are rejected. */
static void test_optimal_d2_and_errors(void **state) {
  (void)state;
  double J[4], Jl[4];
  assert_int_equal(ou_q_optimal(2, U2, NULL, J), NRD_OK);
  assert_true(fabs(J[1]) >= 0.75 - 1e-12);
  assert_true(lnp_defect(2, U2, J) < 1e-14);
  double lam[2] = {1.0, 6.0};
  assert_int_equal(ou_q_optimal(2, U2, lam, Jl), NRD_OK);
  assert_true(lnp_defect(2, U2, Jl) < 1e-14);
  double same[2] = {2.0, 2.0}, neg[2] = {-1.0, 1.0};
  assert_int_equal(ou_q_optimal(2, U2, same, J), NRD_ERR_INPUT);
  assert_int_equal(ou_q_optimal_generic(2, U2, neg, J), NRD_ERR_INPUT);
  double bad[4] = {1, 0, 0, -4};
  assert_int_equal(ou_q_optimal(2, bad, NULL, J), NRD_ERR_INPUT);
  assert_int_equal(ou_q_optimal_generic(2, bad, NULL, J), NRD_ERR_INPUT);
  /* d = 1: the only antisymmetric matrix is 0 */
  double one = 3.0, j1 = 1.0;
  assert_int_equal(ou_q_optimal(1, &one, NULL, &j1), NRD_OK);
  assert_true(j1 == 0.0);
}

/* ---------------------------------------------------------- invariants */

static double det_lu(int d, const double *M) {
  double *T = malloc((size_t)d * d * sizeof *T);
  lapack_int *ip = malloc((size_t)d * sizeof *ip);
  memcpy(T, M, (size_t)d * d * sizeof *T);
  assert_int_equal(LAPACKE_dgetrf(LAPACK_ROW_MAJOR, d, d, T, d, ip), 0);
  double det = 1.0;
  for (int i = 0; i < d; i++)
    det *= (ip[i] != i + 1 ? -1 : 1) * T[i * d + i];
  free(T);
  free(ip);
  return det;
}

/* doc/theory.md (1.15) (invariant under Q), random dense SPD U (d = 5) and
 * random Qhat at g = 2.5:
 *  - Tr A = Tr U (tol 1e-13 Tr U: one rounding per entry of QU);
 *  - det e^{-At} = e^{-t Tr U} (relative 1e-12: a few ulps per squaring and
 *    the LU determinant);
 *  - sum of eigenvalues = Tr U (1e-12 relative);
 *  - stationarity e^{-At} S e^{-A^T t} + Delta_t = S for t from 1e-6 to 30
 *    (both terms are bounded by S in the Loewner order; the whitening maps
 *    cost ~eps cond(U) ~ 1e-14 relative, so tol 1e-12 ||S||). */
static void test_invariants_random_q(void **state) {
  (void)state;
  enum { d = 5 };
  double *U = random_spd(d, 5);
  double Qh[d * d], E[d * d], D[d * d], C[d * d], W[d * d];
  assert_int_equal(ou_q_random(d, 9, Qh), NRD_OK);
  ou_op op;
  assert_int_equal(ou_init(&op, d, U, Qh, 2.5), NRD_OK);
  double tr = trace(d, U);
  assert_true(fabs(trace(d, op.A) - tr) < 1e-13 * tr);
  double re[d], im[d], sum = 0.0;
  assert_int_equal(ou_spectrum(&op, re, im), NRD_OK);
  for (int k = 0; k < d; k++)
    sum += re[k];
  assert_true(fabs(sum - tr) < 1e-12 * tr);
  double ts[6] = {1e-6, 0.1, 0.7, 1.0, 5.0, 30.0};
  for (int c = 0; c < 6; c++) {
    double t = ts[c];
    assert_int_equal(ou_propagator(&op, t, E), NRD_OK);
    if (t <= 5.0) {
      double det = det_lu(d, E);
      assert_true(fabs(det / exp(-t * tr) - 1) < 1e-12);
    }
    assert_int_equal(ou_noise_cov(&op, t, D), NRD_OK);
    la_congruence(d, E, op.S, C, W);
    for (int k = 0; k < d * d; k++)
      C[k] += D[k];
    assert_true(max_diff(d * d, C, op.S) < 1e-12 * max_abs(d * d, op.S));
    /* Delta_t is SPD (a covariance) */
    assert_int_equal(la_cholesky(d, D, W), NRD_OK);
  }
  ou_free(&op);
  free(U);
}

/* Lyapunov ODE dDelta/dt = 2I - A Delta - Delta A^T, Delta_0 = 0
 * (doc/theory.md (1.7)), classical RK4 with n steps. */
static void lyapunov_rk4(int d, const double *A, double t, int n, double *D) {
  size_t dd = (size_t)d * d;
  double *k1 = malloc(4 * dd * sizeof *k1), *k2 = k1 + dd, *k3 = k2 + dd;
  double *k4 = k3 + dd, *Y = malloc(dd * sizeof *Y);
  double h = t / n;
  memset(D, 0, dd * sizeof *D);
  double *ks[4] = {k1, k2, k3, k4};
  double cs[4] = {0.0, 0.5, 0.5, 1.0};
  for (int s = 0; s < n; s++) {
    for (int st = 0; st < 4; st++) {
      for (size_t k = 0; k < dd; k++)
        Y[k] = D[k] + (st ? cs[st] * h * ks[st - 1][k] : 0.0);
      for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
          double f = i == j ? 2.0 : 0.0;
          for (int k = 0; k < d; k++)
            f -= A[i * d + k] * Y[k * d + j] + Y[i * d + k] * A[j * d + k];
          ks[st][i * d + j] = f;
        }
    }
    for (size_t k = 0; k < dd; k++)
      D[k] += h / 6 * (k1[k] + 2 * k2[k] + 2 * k3[k] + k4[k]);
  }
  free(k1);
  free(Y);
}

/* Delta_t against the Lyapunov ODE (doc/theory.md (1.7)): RK4
 * with h ||A|| <= 1e-3 has global error ~ t (h ||A||)^4 ||S|| < 1e-11, so
 * 1e-10 is a clean margin.  V2b system at t = 0.6 and a random dense d = 5
 * operator at t = 1.3. */
static void test_lyapunov_ode(void **state) {
  (void)state;
  double D[4], R[4];
  ou_op op;
  assert_int_equal(ou_init(&op, 2, U2, J2, 2.0), NRD_OK);
  assert_int_equal(ou_noise_cov(&op, 0.6, D), NRD_OK);
  lyapunov_rk4(2, op.A, 0.6, 6000, R);
  assert_true(max_diff(4, D, R) < 1e-10);
  ou_free(&op);

  enum { d = 5 };
  double *U = random_spd(d, 21);
  double Qh[d * d], Dd[d * d], Rd[d * d];
  assert_int_equal(ou_q_random(d, 4, Qh), NRD_OK);
  assert_int_equal(ou_init(&op, d, U, Qh, 1.5), NRD_OK);
  double nA = max_abs(d * d, op.A) * d;
  int n = (int)ceil(1.3 * nA / 1e-3);
  assert_int_equal(ou_noise_cov(&op, 1.3, Dd), NRD_OK);
  lyapunov_rk4(d, op.A, 1.3, n, Rd);
  assert_true(max_diff(d * d, Dd, Rd) < 1e-10);
  ou_free(&op);
  free(U);
}

/* Taylor series of Delta_t (doc/theory.md (1.7)): Delta = sum_k
 * c_k t^k, c_1 = 2I, c_{k+1} = -(A c_k + c_k A^T)/(k+1), i.e.
 * 2tI - t^2 (A + A^T) + ...; summed in long double with A built here, it
 * is an independent reference, exact to < 1e-18 relative for ||A|| t <= 1. */
static void series_delta(int d, const double *U, const double *Q, double t,
                         double *D) {
  long double A[DMAX * DMAX], c[DMAX * DMAX], c2[DMAX * DMAX];
  long double S[DMAX * DMAX];
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++) {
      long double s = U[i * d + j];
      for (int k = 0; k < d; k++)
        s += (long double)Q[i * d + k] * U[k * d + j];
      A[i * d + j] = s;
      c[i * d + j] = i == j ? 2.0L * t : 0.0L;
      S[i * d + j] = c[i * d + j];
    }
  for (int p = 1; p < 60; p++) {
    for (int i = 0; i < d; i++)
      for (int j = 0; j < d; j++) {
        long double s = 0;
        for (int k = 0; k < d; k++)
          s += A[i * d + k] * c[k * d + j] + c[i * d + k] * A[j * d + k];
        c2[i * d + j] = -s * t / (p + 1);
      }
    for (int k = 0; k < d * d; k++) {
      c[k] = c2[k];
      S[k] += c[k];
    }
  }
  for (int k = 0; k < d * d; k++)
    D[k] = (double)S[k];
}

/* The two operators of the small-t and switch tests: s = 0 the V2b system
 * (d = 2, g = 2), s = 1 a d = 6 operator with the given U and Qhat, g = 3. */
static void v2b_or_d6(int s, const double *U6, const double *Qh6, ou_op *op) {
  if (s == 0)
    assert_int_equal(ou_init(op, 2, U2, J2, 2.0), NRD_OK);
  else
    assert_int_equal(ou_init(op, 6, U6, Qh6, 3.0), NRD_OK);
}

/* Small-t accuracy (ou.h): Delta_t ~ 2t I, so S - e^{-At} S e^{-A^T t}
 * would lose all digits at t = 1e-8; the whitened Van Loan + doubling
 * method must stay at ~1e-15 relative.  Tol 1e-14 relative to max|Delta|
 * for the V2b system and a random dense d = 6 operator with g = 3. */
static void test_small_t(void **state) {
  (void)state;
  double ts[7] = {1e-12, 1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 5e-2};
  enum { d = 6 };
  double *Ur = random_spd(d, 33);
  double Qh[d * d], D[d * d], R[d * d];
  assert_int_equal(ou_q_random(d, 8, Qh), NRD_OK);
  for (int s = 0; s < 2; s++) {
    ou_op op;
    v2b_or_d6(s, Ur, Qh, &op);
    int n = op.d;
    for (int c = 0; c < 7; c++) {
      assert_int_equal(ou_noise_cov(&op, ts[c], D), NRD_OK);
      series_delta(n, op.U, op.Q, ts[c], R);
      double err = max_diff(n * n, D, R) / max_abs(n * n, R);
      assert_true(err < 1e-14);
    }
    ou_free(&op);
  }
  free(Ur);
}

/* The two methods of ou_noise_cov meet at 2 u_min t = ln 2: the difference
 * I - X X^T above, Van Loan + doubling below.  The semigroup identity
 * Delta_t = Delta_{t/2} + E_{t/2} Delta_{t/2} E_{t/2}^T, with t above the
 * switch and t/2 below it, ties one to the other: 1e-14 relative, for the
 * V2b system and U = diag(1, 1.5, ..., 3.5) with a random Q at g = 3
 * (strongly non-normal B; U well conditioned, so that the identity's own
 * rounding, which grows with cond(U), stays below the tolerance). */
static void test_noise_cov_methods_agree(void **state) {
  (void)state;
  enum { d = 6 };
  double Ud[d * d], u[d], Qh[d * d], D[d * d], Dh[d * d], E[d * d];
  double C[d * d], W[d * d];
  for (int i = 0; i < d; i++)
    u[i] = 1.0 + 0.5 * i;
  ou_u_diagonal(d, u, Ud);
  assert_int_equal(ou_q_random(d, 8, Qh), NRD_OK);
  for (int s = 0; s < 2; s++) {
    ou_op op;
    v2b_or_d6(s, Ud, Qh, &op);
    int n = op.d;
    assert_true(op.u_min == 1.0);
    double tsw = log(2.0) / (2.0 * op.u_min);
    double fs[3] = {1.01, 1.5, 1.99};
    for (int c = 0; c < 3; c++) {
      double t = fs[c] * tsw;
      assert_int_equal(ou_noise_cov(&op, t, D), NRD_OK);
      assert_int_equal(ou_noise_cov(&op, t / 2, Dh), NRD_OK);
      assert_int_equal(ou_propagator(&op, t / 2, E), NRD_OK);
      la_congruence(n, E, Dh, C, W);
      for (int k = 0; k < n * n; k++)
        C[k] += Dh[k];
      assert_true(max_diff(n * n, D, C) < 1e-14 * max_abs(n * n, D));
    }
    ou_free(&op);
  }
}

/* ou_moments gives the bits of ou_propagator and ou_noise_cov, for a
 * dense operator on both sides of the switch, an isotropic one and t = 0. */
static void test_moments_same_bits(void **state) {
  (void)state;
  enum { d = 6 };
  double Ud[d * d], Ui[d * d], u[d], Qh[d * d];
  double E[d * d], D[d * d], E1[d * d], D1[d * d];
  for (int i = 0; i < d; i++)
    u[i] = 1.0 + 0.5 * i;
  ou_u_diagonal(d, u, Ud);
  ou_u_isotropic(d, 2.0, Ui);
  assert_int_equal(ou_q_random(d, 8, Qh), NRD_OK);
  const double *Us[2] = {Ud, Ui};
  double ts[5] = {0.0, 1e-3, 0.3, 0.36, 4.0};
  for (int s = 0; s < 2; s++) {
    ou_op op;
    assert_int_equal(ou_init(&op, d, Us[s], Qh, 3.0), NRD_OK);
    for (int c = 0; c < 5; c++) {
      assert_int_equal(ou_moments(&op, ts[c], E, D), NRD_OK);
      assert_int_equal(ou_propagator(&op, ts[c], E1), NRD_OK);
      assert_int_equal(ou_noise_cov(&op, ts[c], D1), NRD_OK);
      assert_memory_equal(E, E1, sizeof E);
      assert_memory_equal(D, D1, sizeof D);
    }
    assert_int_equal(ou_moments(&op, -1.0, E, D), NRD_ERR_INPUT);
    ou_free(&op);
  }
}

/* doc/theory.md (1.12), (1.19), negative control: U = uI gives
 * e^{-At} = e^{-ut} R_t with
 * R_t orthogonal and Delta_t = (1 - e^{-2ut})/u I independent of Q.
 * Orthogonality to 1e-14 (a few ulps of expm of a normal matrix, s <= 3
 * squarings); Delta equal to the g = 0 result exactly (isotropic path),
 * and equal to S - E S E^T (at t = 1 no cancellation: 1e-15). */
static void test_isotropic_control(void **state) {
  (void)state;
  enum { d = 4 };
  double u = 1.7, U[d * d], Qh[d * d], E[d * d], R[d * d], Id[d * d];
  double D[d * d], D0[d * d], C[d * d], W[d * d];
  ou_u_isotropic(d, u, U);
  assert_int_equal(ou_q_random(d, 3, Qh), NRD_OK);
  ou_op op, op0;
  assert_int_equal(ou_init(&op, d, U, Qh, 2.0), NRD_OK);
  assert_int_equal(ou_init(&op0, d, U, NULL, 0.0), NRD_OK);
  assert_true(op.isotropic);
  double ts[3] = {0.01, 1.0, 3.0};
  la_identity(d, Id);
  for (int c = 0; c < 3; c++) {
    double t = ts[c];
    assert_int_equal(ou_propagator(&op, t, E), NRD_OK);
    for (int k = 0; k < d * d; k++)
      E[k] *= exp(u * t);
    la_matmul_nt(d, E, E, R);
    assert_true(max_diff(d * d, R, Id) < 1e-14);
    assert_int_equal(ou_noise_cov(&op, t, D), NRD_OK);
    assert_int_equal(ou_noise_cov(&op0, t, D0), NRD_OK);
    assert_true(max_diff(d * d, D, D0) == 0.0);
    /* Q = 0: the shortcut e^{-ut} I is what e^{-ut} expm(0) gives, bit
     * for bit (the zero rotation goes through la_expm as above) */
    double Z[d * d], E0[d * d];
    for (int k = 0; k < d * d; k++)
      Z[k] = -u * t * op0.Q[k];
    assert_int_equal(la_expm(d, Z, R), NRD_OK);
    assert_int_equal(ou_propagator(&op0, t, E0), NRD_OK);
    for (int k = 0; k < d * d; k++)
      assert_true(memcmp(&E0[k], &(double){R[k] * exp(-u * t)},
                         sizeof(double)) == 0);
  }
  assert_int_equal(ou_propagator(&op, 1.0, E), NRD_OK);
  assert_int_equal(ou_noise_cov(&op, 1.0, D), NRD_OK);
  la_congruence(d, E, op.S, C, W);
  for (int k = 0; k < d * d; k++)
    C[k] = op.S[k] - C[k];
  assert_true(max_diff(d * d, C, D) < 1e-15);
  double r;
  assert_int_equal(ou_relaxation_rate(&op, &r), NRD_OK);
  assert_true(r == u);
  ou_free(&op);
  ou_free(&op0);
}

/* doc/theory.md section 1.6: [Q, U] = 0 (U = diag(2, 2, 5), Q rotating the
 * degenerate
 * pair) leaves Delta_t unchanged although U is not isotropic, and
 * e^{-At} = e^{-Ut} times an orthogonal matrix commuting with U.  Both
 * paths go through the generic whitened method: 1e-14 relative. */
static void test_commuting_control(void **state) {
  (void)state;
  enum { d = 3 };
  double u[d] = {2, 2, 5}, U[d * d], Qh[d * d] = {0, 1, 0, -1, 0, 0, 0, 0, 0};
  double D[d * d], D0[d * d], E[d * d], R[d * d], Id[d * d];
  ou_u_diagonal(d, u, U);
  ou_op op, op0;
  assert_int_equal(ou_init(&op, d, U, Qh, 3.0), NRD_OK);
  assert_int_equal(ou_init(&op0, d, U, NULL, 0.0), NRD_OK);
  assert_false(op.isotropic);
  la_identity(d, Id);
  double ts[4] = {1e-7, 0.1, 1.0, 4.0};
  for (int c = 0; c < 4; c++) {
    double t = ts[c];
    assert_int_equal(ou_noise_cov(&op, t, D), NRD_OK);
    assert_int_equal(ou_noise_cov(&op0, t, D0), NRD_OK);
    assert_true(max_diff(d * d, D, D0) < 1e-14 * max_abs(d * d, D0));
    assert_int_equal(ou_propagator(&op, t, E), NRD_OK);
    for (int i = 0; i < d; i++)
      for (int j = 0; j < d; j++)
        E[i * d + j] *= exp(u[i] * t);
    la_matmul_nt(d, E, E, R);
    assert_true(max_diff(d * d, R, Id) < 1e-13);
  }
  ou_free(&op);
  ou_free(&op0);
}

/* V16 (doc/theory.md (7.9)): stationary autocorrelation C(tau) =
 * tr(e^{-A tau} S)/tr S = e^{-tau} cos(q tau) for U = I, d = 2,
 * Q = q[[0,1],[-1,0]].  expm of the rotation generator is accurate to a few
 * ulps (s <= 2 squarings at q tau = 7.5): tol 1e-14. */
static void test_v16_autocorrelation(void **state) {
  (void)state;
  double U[4], E[4], qs[3] = {0.0, 0.5, 3.0}, taus[3] = {0.1, 1.0, 2.5};
  ou_u_isotropic(2, 1.0, U);
  for (int a = 0; a < 3; a++) {
    ou_op op;
    assert_int_equal(ou_init(&op, 2, U, J2, qs[a]), NRD_OK);
    for (int b = 0; b < 3; b++) {
      double tau = taus[b], ES[4];
      assert_int_equal(ou_propagator(&op, tau, E), NRD_OK);
      la_matmul(2, E, op.S, ES);
      double c = trace(2, ES) / trace(2, op.S);
      assert_true(fabs(c - exp(-tau) * cos(qs[a] * tau)) < 1e-14);
    }
    ou_free(&op);
  }
}

/* doc/theory.md (1.18): entropy production tr(Q^T Q U) = E_pi |QUx|^2.  For the
 * d = 2 example Q^T Q = q^2 I, so it is q^2 (a + b) = 20 at q = 2, a = 1,
 * b = 4; the same for any rotated U = R diag(1,4) R^T (Q commutes with 2-D
 * rotations), which takes the dense path.  Tol 1e-14 relative. */
static void test_entropy_production(void **state) {
  (void)state;
  ou_op op;
  assert_int_equal(ou_init(&op, 2, U2, J2, 2.0), NRD_OK);
  assert_true(fabs(ou_entropy_production(&op) - 20.0) < 1e-14 * 20);
  ou_free(&op);
  double c = cos(0.3), s = sin(0.3);
  double Rot[4] = {c, -s, s, c}, Ur[4], W[4];
  la_congruence(2, Rot, U2, Ur, W);
  la_symmetrize(2, Ur);
  assert_int_equal(ou_init(&op, 2, Ur, J2, 2.0), NRD_OK);
  assert_true(fabs(ou_entropy_production(&op) - 20.0) < 1e-14 * 20);
  ou_free(&op);
  assert_int_equal(ou_init(&op, 2, U2, J2, 0.0), NRD_OK);
  assert_true(ou_entropy_production(&op) == 0.0);
  ou_free(&op);
}

/* doc/theory.md (1.1): U must be SPD and Qhat antisymmetric (ou.h: to 1e-12
 * relative); anything else is NRD_ERR_INPUT, and a rejected init leaves
 * nothing allocated (ASan/LSan would see it). */
static void test_errors(void **state) {
  (void)state;
  ou_op op;
  double indef[4] = {1, 2, 2, 1}, negd[4] = {1, 0, 0, -1};
  double sing[4] = {1, 1, 1, 1}, nonsym[4] = {2, 0.5, 0.4, 2};
  assert_int_equal(ou_init(&op, 2, indef, NULL, 0.0), NRD_ERR_INPUT);
  assert_true(op.U == NULL && op.B == NULL);
  assert_int_equal(ou_init(&op, 2, negd, J2, 1.0), NRD_ERR_INPUT);
  assert_int_equal(ou_init(&op, 2, sing, NULL, 0.0), NRD_ERR_INPUT);
  assert_int_equal(ou_init(&op, 2, nonsym, NULL, 0.0), NRD_ERR_INPUT);
  double notanti[4] = {0, 1, 1, 0}, diag[4] = {0.1, 1, -1, 0};
  double nanq[4] = {0, NAN, -NAN, 0}, nanu[4] = {1, 0, 0, NAN};
  assert_int_equal(ou_init(&op, 2, U2, notanti, 1.0), NRD_ERR_INPUT);
  assert_int_equal(ou_init(&op, 2, U2, diag, 1.0), NRD_ERR_INPUT);
  assert_int_equal(ou_init(&op, 2, U2, nanq, 1.0), NRD_ERR_INPUT);
  assert_int_equal(ou_init(&op, 2, nanu, NULL, 0.0), NRD_ERR_INPUT);
  assert_int_equal(ou_init(&op, 0, U2, NULL, 0.0), NRD_ERR_INPUT);
  assert_int_equal(ou_init(&op, 2, U2, J2, INFINITY), NRD_ERR_INPUT);
  /* round-off asymmetry within tolerance is accepted and removed */
  double near[4] = {0, 1, -1 - 1e-14, 0};
  assert_int_equal(ou_init(&op, 2, U2, near, 1.0), NRD_OK);
  assert_true(op.Qhat[1] == -op.Qhat[2] && op.Qhat[0] == 0.0);
  double E[4];
  assert_int_equal(ou_noise_cov(&op, -1.0, E), NRD_ERR_INPUT);
  assert_int_equal(ou_noise_cov(&op, NAN, E), NRD_ERR_INPUT);
  assert_int_equal(ou_propagator(&op, INFINITY, E), NRD_ERR_INPUT);
  assert_int_equal(ou_noise_cov(&op, 0.0, E), NRD_OK);
  assert_true(max_abs(4, E) == 0.0);
  assert_int_equal(ou_propagator(&op, 0.0, E), NRD_OK);
  double I2[4] = {1, 0, 0, 1};
  assert_true(max_diff(4, E, I2) < 1e-16);
  ou_free(&op);
  ou_free(&op); /* idempotent */
}

/* The failure a rejected operator or time leaves in nrd_error_trace()
 * (util/error.h): why (the message at the origin) and where (the origin,
 * then each function that passed it on, ou_init's call included). */
static void assert_trace_has(const char *what) {
  const char *trace = nrd_error_trace();
  print_message("trace: %s\n", trace);
  assert_non_null(strstr(trace, what));
}

static void test_error_traces(void **state) {
  (void)state;
  ou_op op;
  double indef[4] = {1, 2, 2, 1}, negd[4] = {1, 0, 0, -1};
  double notanti[4] = {0, 1, 1, 0}, E[4];
  nrd_error_reset();
  assert_int_equal(ou_init(&op, 2, indef, NULL, 0.0), NRD_ERR_INPUT);
  assert_trace_has("U is not positive definite");
  assert_trace_has("in ou_check_spd] <- ou_check_spd(");
  assert_trace_has("in ou_init]");
  assert_int_equal(ou_init(&op, 2, negd, NULL, 0.0), NRD_ERR_INPUT);
  assert_trace_has("U[1][1] = -1");
  assert_int_equal(ou_init(&op, 2, U2, notanti, 1.0), NRD_ERR_INPUT);
  assert_trace_has("Qhat is not antisymmetric");
  assert_trace_has("src/core/ou.c:");
  assert_trace_has("in ou_init]");
  assert_int_equal(ou_init(&op, 2, U2, J2, 1.0), NRD_OK);
  assert_int_equal(ou_propagator(&op, NAN, E), NRD_ERR_INPUT);
  assert_trace_has("needs a finite t");
  assert_trace_has("in ou_propagator]");
  assert_int_equal(ou_noise_cov(&op, -1.0, E), NRD_ERR_INPUT);
  assert_trace_has("in ou_noise_cov]");
  /* a new failure starts a new trace: nothing of the one before */
  assert_null(strstr(nrd_error_trace(), "ou_propagator"));
  ou_free(&op);
  nrd_error_reset();
}

/* Builders (ou.h): geometric end points, q_random antisymmetric with unit
 * spectral norm (1e-14: one SVD) and a pure function of the seed. */
static void test_builders(void **state) {
  (void)state;
  enum { d = 5 };
  double U[d * d], v[d] = {1, 2, 3, 4, 5};
  ou_u_diagonal(d, v, U);
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++)
      assert_true(U[i * d + j] == (i == j) * v[i]);
  ou_u_geometric(d, 0.1, 10.0, U);
  assert_true(U[0] == 0.1 && fabs(U[d * d - 1] - 10.0) < 1e-14);
  assert_true(fabs(U[2 * d + 2] - 1.0) < 1e-15 && U[1] == 0.0);
  double one;
  ou_u_geometric(1, 0.5, 2.0, &one);
  assert_true(one == 0.5);
  ou_u_isotropic(d, 2.5, U);
  ou_op op;
  assert_int_equal(ou_init(&op, d, U, NULL, 0.0), NRD_OK);
  assert_true(op.isotropic);
  ou_free(&op);

  double Q[d * d], Q2[d * d], Q3[d * d], nrm;
  assert_int_equal(ou_q_random(d, 12, Q), NRD_OK);
  assert_int_equal(ou_q_random(d, 12, Q2), NRD_OK);
  assert_int_equal(ou_q_random(d, 13, Q3), NRD_OK);
  assert_antisymmetric(d, Q);
  assert_true(memcmp(Q, Q2, sizeof Q) == 0);
  assert_true(max_diff(d * d, Q, Q3) > 1e-3);
  assert_int_equal(la_spectral_norm(d, Q, &nrm), NRD_OK);
  assert_true(fabs(nrm - 1.0) < 1e-14);
  double q1 = 1.0;
  assert_int_equal(ou_q_random(1, 12, &q1), NRD_OK);
  assert_true(q1 == 0.0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_v1_biroli),
      cmocka_unit_test(test_v2_reversible),
      cmocka_unit_test(test_v2b_q2),
      cmocka_unit_test(test_v3_spectrum),
      cmocka_unit_test(test_v4_generic),
      cmocka_unit_test(test_v4_hadamard),
      cmocka_unit_test(test_optimal_d2_and_errors),
      cmocka_unit_test(test_invariants_random_q),
      cmocka_unit_test(test_lyapunov_ode),
      cmocka_unit_test(test_small_t),
      cmocka_unit_test(test_noise_cov_methods_agree),
      cmocka_unit_test(test_moments_same_bits),
      cmocka_unit_test(test_isotropic_control),
      cmocka_unit_test(test_commuting_control),
      cmocka_unit_test(test_v16_autocorrelation),
      cmocka_unit_test(test_entropy_production),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_error_traces),
      cmocka_unit_test(test_builders),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
