/* Reference theory (theory.c) against the exact numbers of doc/validation.md
 * (its reference cases; the equations are in doc/theory.md sections 5-7).
 * A number printed with k decimals is checked to half a unit of its last
 * digit (plus 1e-12 for our quadrature and root finding), so a failure
 * means a disagreement in the printed digits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

static const double NRD_PI = 3.14159265358979323846;

#include "util/error.h"
#include "core/linalg.h"
#include "core/ou.h"
#include "core/theory.h"

/* |x - ref| within half a unit of the `decimals`-th decimal. */
static void assert_printed(double x, double ref, int decimals) {
  double tol = 0.5 * pow(10.0, -decimals) + 1e-12;
  if (!(fabs(x - ref) <= tol))
    fail_msg("got %.10f, the reference says %.*f (tol %.1e)", x, decimals, ref,
             tol);
}

/* The d = 2 system of doc/validation.md (V2, V18, V20): U = diag(1,4),
 * Q = q [[0,1],[-1,0]], C = S = U^{-1}. */
static const double U2[4] = {1, 0, 0, 4};
static const double J2[4] = {0, 1, -1, 0};
static const double S2[4] = {1, 0, 0, 0.25};

static void op_d2(ou_op *op, double q) {
  assert_int_equal(ou_init(op, 2, U2, J2, q), NRD_OK);
}

static void op_identity(ou_op *op, int d) {
  double *U = malloc((size_t)d * d * sizeof *U);
  ou_u_isotropic(d, 1.0, U);
  assert_int_equal(ou_init(op, d, U, NULL, 0.0), NRD_OK);
  free(U);
}

/* ------------------------------------------------------------- V5, V6, V7 */

/* V5: F(kappa) for kappa = 0.1 ... 8 (5 decimals), F(1) = 0.7752002 (7),
 * F(0) = 1/2 exactly; the Nishimori identity E tanh = E tanh^2 is what makes
 * F the clone agreement probability, so the two forms must agree. */
static void test_v5_F(void **state) {
  (void)state;
  const double k[] = {0.1, 0.25, 0.5, 1, 2, 4, 8};
  const double F[] = {0.54567, 0.60203, 0.67506, 0.77520,
                      0.88449, 0.96570, 0.99641};
  for (int i = 0; i < 7; i++)
    assert_printed(theory_F(k[i]), F[i], 5);
  assert_printed(theory_F(1.0), 0.7752002, 7);
  assert_true(fabs(theory_F(0.0) - 0.5) < 1e-15);
  assert_true(isnan(theory_F(-1.0)));
  /* Nishimori: E tanh^2 w = E tanh w for w ~ N(k, k), by midpoint sums on
   * a fine grid (an independent quadrature) */
  for (int i = 0; i < 7; i++) {
    double s1 = 0, s2 = 0, h = 1e-3;
    for (double z = -12 + h / 2; z < 12; z += h) {
      double w = k[i] + sqrt(k[i]) * z, g = exp(-0.5 * z * z);
      s1 += g * tanh(w);
      s2 += g * tanh(w) * tanh(w);
    }
    assert_true(fabs(s1 - s2) * h / sqrt(2 * NRD_PI) < 1e-9);
    assert_true(fabs(0.5 * (1 + s1 * h / sqrt(2 * NRD_PI)) - theory_F(k[i])) <
                1e-9);
  }
}

/* V6: Biroli's phi(t), d = 256, 4 decimals. */
static void test_v6_biroli_phi(void **state) {
  (void)state;
  const double t[] = {1, 2, 3, 3.5, 4, 4.5, 5, 6};
  const double phi[] = {1.0000, 0.9770, 0.7069, 0.5964,
                        0.5397, 0.5153, 0.5057, 0.5008};
  for (int i = 0; i < 8; i++)
    assert_printed(theory_phi_biroli(256, t[i]), phi[i], 4);
}

/* V7: t_S (kappa = 1) = 1/2 ln d for m = (1,...,1), sigma = 1, A = I
 * (4 decimals).  d = 256 through the root finder on the general matrix code;
 * d = 1024 (where one kappa evaluation costs ~0.25 s) by checking that
 * kappa is exactly 1 at the printed 1/2 ln d = 3.4657 to its precision.
 * kappa_t = d e^{-2t} exactly (1e-12). */
static void test_v7_tS_biroli(void **state) {
  (void)state;
  const int dims[] = {256, 1024};
  const double tS[] = {2.7726, 3.4657};
  for (int n = 0; n < 2; n++) {
    int d = dims[n];
    ou_op op;
    op_identity(&op, d);
    double *mu = malloc((size_t)d * sizeof *mu);
    double *C = calloc((size_t)d * d, sizeof *C);
    for (int i = 0; i < d; i++) {
      mu[i] = 1;
      C[(size_t)i * d + i] = 1;
    }
    double t, k;
    if (n == 0) {
      assert_int_equal(theory_tS_kappa(&op, mu, C, &t), NRD_OK);
      assert_printed(t, tS[n], 4);
      assert_true(fabs(t - 0.5 * log(d)) < 1e-10);
    }
    assert_int_equal(theory_kappa(&op, mu, C, tS[n], &k), NRD_OK);
    assert_true(fabs(k / (d * exp(-2 * tS[n])) - 1) < 1e-12);
    /* |d kappa/dt| = 2 kappa: 5e-5 in t is 1e-4 in kappa */
    assert_true(fabs(k - 1) < 1.0001e-4 * 2 + 1e-12);
    free(mu);
    free(C);
    ou_free(&op);
  }
}

/* ---------------------------------------------------------- V18, V19 */

/* t_S (kappa = 1), d = 2 system, |mu|^2 = 100 along the slow e1 and the fast
 * e2, q = 0 ... 4 (4 decimals).  Includes the t_S of the Monte Carlo check
 * V19 (2.3026, 1.4629, 0.9952). */
static void test_tS_table_d2(void **state) {
  (void)state;
  const double q[] = {0, 0.25, 0.5, 0.75, 1, 2, 4};
  const double slow[] = {2.3026, 2.1614, 1.8265, 1.4629,
                         1.1773, 0.9952, 0.9553};
  const double fast[] = {0.7489, 1.1266, 1.5997, 1.6100,
                         1.4755, 1.2398, 1.1987};
  const double e1[2] = {10, 0}, e2[2] = {0, 10};
  for (int i = 0; i < 7; i++) {
    ou_op op;
    op_d2(&op, q[i]);
    double t, k;
    assert_int_equal(theory_tS_kappa(&op, e1, S2, &t), NRD_OK);
    assert_printed(t, slow[i], 4);
    assert_int_equal(theory_kappa(&op, e1, S2, t, &k), NRD_OK);
    assert_true(fabs(k - 1) < 1e-10);
    /* from E and Delta at hand (the driver's theory per output time, src/run/theory.c): the same
     * bits as theory_kappa */
    double E[4], D[4], kf;
    assert_int_equal(ou_propagator(&op, t, E), NRD_OK);
    assert_int_equal(ou_noise_cov(&op, t, D), NRD_OK);
    assert_int_equal(theory_kappa_from(&op, E, D, e1, S2, &kf), NRD_OK);
    assert_memory_equal(&kf, &k, sizeof k);
    assert_int_equal(theory_tS_kappa(&op, e2, S2, &t), NRD_OK);
    assert_printed(t, fast[i], 4);
    ou_free(&op);
  }
}

/* The matrix criterion (5.8) for two symmetric classes is kappa_t = 1
 * (1e-10: both are roots found to ~1e-15 of smooth functions); with three
 * collinear classes it is the two-class criterion for the scatter's mean. */
static void test_matrix_criterion(void **state) {
  (void)state;
  const double q[] = {0, 0.75, 2};
  for (int i = 0; i < 3; i++) {
    ou_op op;
    op_d2(&op, q[i]);
    const double means[4] = {3, 4, -3, -4}, w[2] = {0.5, 0.5};
    double t1, t2;
    assert_int_equal(theory_tS_kappa(&op, means, S2, &t1), NRD_OK);
    assert_int_equal(theory_tS_matrix(&op, 2, w, means, S2, &t2), NRD_OK);
    assert_true(fabs(t1 - t2) < 1e-10);
    /* K = 3 at -mu, 0, +mu with weights 1/4, 1/2, 1/4: B = mu mu^T / 2,
     * the same as two classes +- mu / sqrt 2 */
    const double m3[6] = {-3, -4, 0, 0, 3, 4}, w3[3] = {0.25, 0.5, 0.25};
    const double mh[2] = {3 / sqrt(2.0), 4 / sqrt(2.0)};
    assert_int_equal(theory_tS_matrix(&op, 3, w3, m3, S2, &t2), NRD_OK);
    assert_int_equal(theory_tS_kappa(&op, mh, S2, &t1), NRD_OK);
    assert_true(fabs(t1 - t2) < 1e-10);
    ou_free(&op);
  }
}

/* Class-free criterion (5.9): A = I gives 1/2 ln(1 + Lambda), Lambda the top
 * eigenvalue of Sigma0 (1e-10). */
static void test_covariance_criterion(void **state) {
  (void)state;
  ou_op op;
  op_identity(&op, 2);
  const double Sigma0[4] = {3, 1, 1, 0.5};
  double w[2], V[4], t;
  la_sym_eig(2, Sigma0, w, V);
  assert_int_equal(theory_tS_covariance(&op, Sigma0, &t), NRD_OK);
  assert_true(fabs(t - 0.5 * log1p(w[1])) < 1e-10);
  ou_free(&op);
}

/* ------------------------------------------------------------- collapse */

/* V20: t_C for C = S on the d = 2 system (4 decimals). */
static void test_tC_table_d2(void **state) {
  (void)state;
  const double q[] = {0, 0.25, 0.5, 0.75, 1, 2, 4};
  const double alpha[] = {0.05, 0.2, 1.0};
  const double tC[3][7] = {
      {0.8563, 0.8345, 0.7816, 0.7202, 0.6638, 0.5244, 0.4754},
      {0.3305, 0.3291, 0.3250, 0.3189, 0.3115, 0.2808, 0.2403},
      {0.0370, 0.0370, 0.0370, 0.0370, 0.0370, 0.0370, 0.0367}};
  for (int i = 0; i < 7; i++) {
    ou_op op;
    op_d2(&op, q[i]);
    for (int a = 0; a < 3; a++) {
      double t;
      assert_int_equal(theory_tC_rem(&op, S2, alpha[a], &t), NRD_OK);
      assert_printed(t, tC[a][i], 4);
    }
    ou_free(&op);
  }
}

/* Isotropic closed form t_C = 1/2 ln(1 + s2 / (e^{2 alpha} - 1)) (1e-10),
 * e.g. the d = 4 control t_C(alpha = 0.1, C = I) = 0.853886; and the
 * finite-d correction: I(kappa)/d raises the left side of the criterion, so
 * t_C is larger (as for fewer points), tending to the alpha -> alpha - ln2/d
 * shift when classes are separate (doc/theory.md (6.5)). */
static void test_tC_isotropic_and_gm2(void **state) {
  (void)state;
  const double s2[] = {1, 0.25, 4}, alpha[] = {0.05, 0.1, 0.7};
  for (int i = 0; i < 3; i++)
    for (int a = 0; a < 3; a++) {
      ou_op op;
      op_identity(&op, 4);
      double C[16] = {0}, t;
      for (int k = 0; k < 4; k++)
        C[k * 5] = s2[i];
      assert_int_equal(theory_tC_rem(&op, C, alpha[a], &t), NRD_OK);
      assert_true(fabs(t - 0.5 * log1p(s2[i] / expm1(2 * alpha[a]))) < 1e-10);
      ou_free(&op);
    }
  ou_op op;
  op_identity(&op, 4);
  double C[16] = {0}, t, tg, ts;
  for (int k = 0; k < 4; k++)
    C[k * 5] = 1;
  assert_int_equal(theory_tC_rem(&op, C, 0.1, &t), NRD_OK);
  assert_printed(t, 0.853886, 6);
  /* d = 4 control: |mu|^2 = 64 gives t_S = 1/2 ln 64 = 2.079442 */
  const double mu[4] = {4, 4, 4, 4};
  assert_int_equal(theory_tS_kappa(&op, mu, C, &ts), NRD_OK);
  assert_printed(ts, 2.079442, 6);
  /* with kappa ~ 64 e^{-2t} >> 1 at t_C, I = ln 2 to 1e-9 and the shift is
   * exactly alpha -> alpha - ln 2 / d */
  assert_int_equal(theory_tC_rem_gm2(&op, mu, C, 0.4, &tg), NRD_OK);
  assert_int_equal(theory_tC_rem(&op, C, 0.4 - log(2.0) / 4, &t), NRD_OK);
  assert_true(fabs(tg - t) < 1e-6);
  ou_free(&op);
}

/* I(kappa): 0 at 0, ln 2 at large kappa, increasing (1e-12). */
static void test_mutual_info(void **state) {
  (void)state;
  assert_true(fabs(theory_mutual_info(0)) < 1e-12);
  assert_true(fabs(theory_mutual_info(200) - log(2.0)) < 1e-12);
  double prev = 0;
  for (double k = 0.05; k < 20; k *= 1.5) {
    double v = theory_mutual_info(k);
    assert_true(v > prev && v < log(2.0));
    prev = v;
  }
}

/* --------------------------------------------------- autocorrelations */

/* V11: C_UT, Gaussian data, A = I, lambda = (5, 2, 1, 0.5) (6 decimals),
 * and the closed A = I form (7.5) (1e-12). */
static void test_v11_cuturn(void **state) {
  (void)state;
  ou_op op;
  op_identity(&op, 4);
  const double lam[4] = {5, 2, 1, 0.5}, T[] = {0.1, 0.5, 1, 2};
  const double ref[] = {0.912227, 0.620886, 0.334532, 0.061355};
  double S0[16] = {0};
  for (int k = 0; k < 4; k++)
    S0[k * 5] = lam[k];
  for (int i = 0; i < 4; i++) {
    double c, e = exp(-2 * T[i]), num = 0;
    assert_int_equal(theory_cuturn_gaussian(&op, S0, NULL, T[i], &c), NRD_OK);
    assert_printed(c, ref[i], 6);
    for (int k = 0; k < 4; k++)
      num += e * lam[k] * lam[k] / (e * lam[k] + 1 - e);
    assert_true(fabs(c - num / 8.5) < 1e-12);
  }
  ou_free(&op);
}

/* Data with a mean m (K > 2 random class means have one): the Gaussian
 * U-turn form adds |m|^2 to both expectations, E[x0.y0] = |m|^2 +
 * tr(Sigma0 E^T Sigma_T^-1 E Sigma0); in d = 1 with A = I, Sigma0 = s2:
 * (m^2 + s2^2 e^{-2T} / (s2 e^{-2T} + 1 - e^{-2T})) / (m^2 + s2). */
static void test_cuturn_with_mean(void **state) {
  (void)state;
  ou_op op;
  op_identity(&op, 1);
  double s2 = 3, m = 2, T = 0.7, c, e = exp(-2 * T);
  assert_int_equal(theory_cuturn_gaussian(&op, &s2, &m, T, &c), NRD_OK);
  double want = (m * m + s2 * s2 * e / (s2 * e + 1 - e)) / (m * m + s2);
  assert_true(fabs(c - want) < 1e-14);
  ou_free(&op);
}

/* V13: C_UT on the non-reversible V2 system, q = 0 (5 decimals); for q != 0
 * the value must stay in (0, 1) and differ from q = 0 (Q enters). */
static void test_v13_cuturn_nonreversible(void **state) {
  (void)state;
  const double S0[4] = {3, 1, 1, 0.5}, T[] = {0.1, 0.3, 0.6, 1, 2};
  const double ref[] = {0.91035, 0.75826, 0.53974, 0.30454, 0.05048};
  ou_op op, op2;
  op_d2(&op, 0);
  op_d2(&op2, 2);
  for (int i = 0; i < 5; i++) {
    double c, c2;
    assert_int_equal(theory_cuturn_gaussian(&op, S0, NULL, T[i], &c), NRD_OK);
    assert_printed(c, ref[i], 5);
    assert_int_equal(theory_cuturn_gaussian(&op2, S0, NULL, T[i], &c2), NRD_OK);
    assert_true(c2 > 0 && c2 < 1 && fabs(c2 - c) > 1e-3);
  }
  ou_free(&op);
  ou_free(&op2);
}

/* Two-class GM C_UT (7.6): as |m| -> 0 it is the Gaussian formula with
 * Sigma0 = sigma^2 I (1e-12); and for sigma = 0 and large separation the
 * reverse process returns the same class, C_UT -> 1 at small T. */
static void test_cuturn_gm2(void **state) {
  (void)state;
  const int d = 3;
  ou_op op;
  op_identity(&op, d);
  const double s = 1.5, T[] = {0.2, 0.7, 1.5};
  double S0[9] = {0};
  for (int k = 0; k < 3; k++)
    S0[k * 4] = s * s;
  for (int i = 0; i < 3; i++) {
    double c;
    assert_int_equal(theory_cuturn_gaussian(&op, S0, NULL, T[i], &c), NRD_OK);
    assert_true(fabs(theory_cuturn_gm2_isotropic(d, 0, s, T[i]) - c) < 1e-12);
  }
  /* m = (mu, 0, 0), sigma small: nearly Gaussian 1-D data +-mu; the GM value
   * exceeds the Gaussian formula with the same Sigma0 (the mixture is easier
   * to reconstruct than a Gaussian of the same covariance) */
  double mu = 3, sig = 0.1, S1[9] = {0};
  S1[0] = mu * mu + sig * sig;
  S1[4] = S1[8] = sig * sig;
  for (int i = 0; i < 3; i++) {
    double cg, cm = theory_cuturn_gm2_isotropic(d, mu, sig, T[i]);
    assert_int_equal(theory_cuturn_gaussian(&op, S1, NULL, T[i], &cg), NRD_OK);
    assert_true(cm > cg && cm <= 1);
  }
  assert_true(theory_cuturn_gm2_isotropic(d, 20, 0, 0.05) > 0.99);
  ou_free(&op);
}

/* V16: stationary correlation, U = I, d = 2: C(tau) = e^{-tau} cos(q tau)
 * (1e-13: closed form versus a rotation matrix exponential). */
static void test_v16_two_time_stationary(void **state) {
  (void)state;
  const double I2[4] = {1, 0, 0, 1};
  const double q[] = {0, 0.5, 2, 5}, tau[] = {0.1, 0.7, 1.9};
  for (int i = 0; i < 4; i++) {
    ou_op op;
    assert_int_equal(ou_init(&op, 2, I2, J2, q[i]), NRD_OK);
    for (int j = 0; j < 3; j++) {
      double c;
      /* stationary data: Sigma0 = S = I, so Sigma_s = I for every s */
      assert_int_equal(theory_two_time_corr(&op, I2, 0.3, 0.3 + tau[j], &c),
                       NRD_OK);
      assert_true(fabs(c - exp(-tau[j]) * cos(q[i] * tau[j])) < 1e-13);
    }
    ou_free(&op);
  }
}

/* V17: C(s, t) = tr(e^{-A(t-s)} Sigma_s) / sqrt(tr Sigma_s tr Sigma_t) on
 * the V2b system, against the printed E[y_0 y_T^T] = Sigma0 e^{-A^T T}
 * (T = 0.6, 3 decimals) and an explicit computation (1e-14). */
static void test_v17_two_time(void **state) {
  (void)state;
  const double S0[4] = {3, 1, 1, 0.5};
  ou_op op;
  op_d2(&op, 2);
  /* the printed simulation check: Sigma0 e^{-A^T T} = [[-0.574, 0.079],
   * [-0.255, -0.008]] (theory column, 3 decimals) */
  double E[4], Et[4], P[4];
  assert_int_equal(ou_propagator(&op, 0.6, E), NRD_OK);
  la_transpose(2, E, Et);
  la_matmul(2, S0, Et, P);
  const double ref[4] = {-0.574, 0.079, -0.255, -0.008};
  for (int k = 0; k < 4; k++)
    assert_printed(P[k], ref[k], 3);
  double c, St[4];
  assert_int_equal(theory_two_time_corr(&op, S0, 0, 0.6, &c), NRD_OK);
  assert_int_equal(ou_marginal_cov(&op, 0.6, S0, St), NRD_OK);
  assert_true(fabs(c - (P[0] + P[3]) / sqrt(3.5 * (St[0] + St[3]))) < 1e-14);
  assert_int_equal(theory_two_time_corr(&op, S0, 0.2, 0.2, &c), NRD_OK);
  assert_true(fabs(c - 1) < 1e-14);
  ou_free(&op);
}

/* ---------------------------------------------- V9, V10, Raya-Ambrogioni */

static void test_v9_v10_exact_finite_d(void **state) {
  (void)state;
  double th = theory_theta_c_1d();
  assert_printed(th, 0.6435943, 7);
  assert_printed(-log(th), 0.4406868, 7);
  assert_printed(theory_tc_symmetric(1.0), 0.4406868, 7);
  assert_true(fabs(theory_tc_symmetric(1.0) + log(th)) < 1e-15);
  /* large Lambda: 1/2 ln(2 Lambda) */
  assert_true(fabs(theory_tc_symmetric(1e4) - 0.5 * log(2e4)) < 1e-8);
  const double t[] = {0.7, 0.8, 0.9, 0.95};
  const double x[] = {0.69917, 0.94704, 0.99431, 0.99869};
  for (int i = 0; i < 4; i++) {
    double xs = theory_fixed_point_1d(t[i]);
    assert_printed(xs, x[i], 5);
    double b = t[i] / (1 - t[i] * t[i]);
    assert_true(fabs((1 + t[i] * t[i]) * xs - 2 * t[i] * tanh(b * xs)) <
                1e-13);
  }
  assert_true(isnan(theory_fixed_point_1d(0.5)));
  assert_int_equal(theory_ddpm_first_step_below(th, 1000, 1e-4, 0.02), 292);
  /* V10 */
  double h2 = theory_theta_hyperspherical(2, 1.0);
  double h10 = theory_theta_hyperspherical(10, 1.0);
  assert_printed(h2, 0.786151, 6);
  assert_printed(-log(h2), 0.240606, 6);
  assert_printed(h10, 0.951308, 6);
  assert_printed(-log(h10), 0.049917, 6);
  /* r^2 = D gives theta_c */
  assert_true(fabs(theory_theta_hyperspherical(3, sqrt(3.0)) - th) < 1e-15);
}

/* ------------------------------------------------------------- errors */

static void test_errors(void **state) {
  (void)state;
  ou_op op;
  op_d2(&op, 1);
  const double mu[2] = {10, 0}, bad[4] = {1, 0, 0, NAN};
  const double notspd[4] = {1, 2, 2, 1};
  double x;
  assert_int_equal(theory_kappa(&op, mu, S2, -1, &x), NRD_ERR_INPUT);
  assert_int_equal(theory_kappa(&op, mu, bad, 1, &x), NRD_ERR_INPUT);
  assert_int_equal(theory_kappa(&op, mu, notspd, 0, &x), NRD_ERR_INPUT);
  assert_int_equal(theory_tC_rem(&op, S2, 0, &x), NRD_ERR_INPUT);
  assert_int_equal(theory_tC_rem(&op, S2, -1, &x), NRD_ERR_INPUT);
  assert_int_equal(theory_cuturn_gaussian(&op, S2, NULL, 0, &x), NRD_ERR_INPUT);
  assert_int_equal(theory_two_time_corr(&op, S2, 1, 0.5, &x), NRD_ERR_INPUT);
  /* never separated: kappa_0 = 0.04 < 1, no root */
  const double small[2] = {0.2, 0};
  assert_int_equal(theory_tS_kappa(&op, small, S2, &x), NRD_ERR_NUMERIC);
  ou_free(&op);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_v5_F),
      cmocka_unit_test(test_v6_biroli_phi),
      cmocka_unit_test(test_v7_tS_biroli),
      cmocka_unit_test(test_tS_table_d2),
      cmocka_unit_test(test_matrix_criterion),
      cmocka_unit_test(test_covariance_criterion),
      cmocka_unit_test(test_tC_table_d2),
      cmocka_unit_test(test_tC_isotropic_and_gm2),
      cmocka_unit_test(test_mutual_info),
      cmocka_unit_test(test_v11_cuturn),
      cmocka_unit_test(test_v13_cuturn_nonreversible),
      cmocka_unit_test(test_cuturn_gm2),
      cmocka_unit_test(test_cuturn_with_mean),
      cmocka_unit_test(test_v16_two_time_stationary),
      cmocka_unit_test(test_v17_two_time),
      cmocka_unit_test(test_v9_v10_exact_finite_d),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
