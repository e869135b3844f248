/* Integrators (integrate.c) with the exact scores: time grids, the
 * exponential step's matrices, covariance transport by the probability-flow
 * ODE, the reverse SDE returning the data law for Q != 0, stationarity of
 * N(0, U^{-1}) under the non-reversible forward process, and speciation
 * measured by cloning against F(kappa) (doc/theory.md (2.1)-(2.7), (5.3);
 * doc/validation.md V19, V22). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "core/integrate.h"
#include "core/linalg.h"
#include "core/mixture.h"
#include "core/ou.h"
#include "config/params.h"
#include "core/rng.h"
#include "core/score.h"

static const double J2[4] = {0, 1, -1, 0};
static const double SIGMA0[4] = {3, 1, 1, 0.5};

/* The d = 2 system of doc/validation.md V2: U = diag(1, 4),
 * Q = q [[0,1],[-1,0]]. */
static void v2_operator(ou_op *op, double q) {
  double U[4] = {1, 0, 0, 4};
  assert_int_equal(ou_init(op, 2, U, J2, q), NRD_OK);
}

static void test_timegrid(void **state) {
  (void)state;
  double t[11];
  assert_int_equal(timegrid_build(SPACING_UNIFORM, 10, 0, 10, t), NRD_OK);
  assert_true(t[0] == 10 && t[10] == 0);
  for (int k = 0; k < 10; k++) assert_true(fabs(t[k] - t[k + 1] - 1) < 1e-14);
  assert_int_equal(timegrid_build(SPACING_LOG, 10, 1e-3, 10, t), NRD_OK);
  assert_true(t[0] == 10 && t[10] == 1e-3);
  for (int k = 0; k < 10; k++)
    assert_true(fabs(t[k] / t[k + 1] - pow(1e4, 0.1)) < 1e-12);
  assert_int_equal(timegrid_build(SPACING_LOG, 10, 0, 10, t), NRD_ERR_INPUT);
  assert_int_equal(timegrid_build(SPACING_UNIFORM, 1, 2, 10, t),
                   NRD_ERR_INPUT);
}

/* F = e^{Ah} is the inverse of the propagator, A G = F - I, and
 * Ln Ln^T = F S F^T - S, for the non-normal V2b operator (q = 2). */
static void test_exponential_step_matrices(void **state) {
  (void)state;
  ou_op op;
  v2_operator(&op, 2.0);
  step_ops s;
  assert_int_equal(step_ops_init(&s, &op, SCHEME_EXPONENTIAL), NRD_OK);
  double h = 0.05;
  assert_int_equal(step_ops_set_h(&s, &op, h), NRD_OK);
  double E[4], P[4], AG[4], LL[4], FSF[4], W[4];
  ou_propagator(&op, h, E);
  la_matmul(2, s.F, E, P);
  la_matmul(2, op.A, s.G, AG);
  la_matmul_nt(2, s.Ln, s.Ln, LL);
  la_congruence(2, s.F, op.S, FSF, W);
  for (int i = 0; i < 4; i++) {
    double I = (i == 0 || i == 3) ? 1.0 : 0.0;
    assert_true(fabs(P[i] - I) < 1e-13);
    assert_true(fabs(AG[i] - (s.F[i] - I)) < 1e-13);
    assert_true(fabs(LL[i] - (FSF[i] - op.S[i])) < 1e-13);
  }
  step_ops_free(&s);
  ou_free(&op);
}

/* Gaussian data N(0, Sigma0) as a one-component mixture. */
static void gaussian_mixture(mixture *m) {
  double w = 1.0, mu[2] = {0, 0};
  assert_int_equal(
      mixture_general(m, 2, 1, &w, mu, MIX_COV_FULL, 0, NULL, SIGMA0),
      NRD_OK);
}

/* For Gaussian data the flow ODE is linear, so transporting the columns of
 * chol(Sigma_T) from T to 0 must give back chol-columns of Sigma0:
 * sum_i y_i y_i^T -> Sigma0.  Deterministic: Heun is second order, so the
 * error must drop by ~4 when h halves (measured ratio checked in [3, 5]),
 * and be below 1e-4 at h = 2.5e-3.  T = 10 makes the e^{-2rT} start error
 * ~1e-9. */
static double ode_covariance_error(const ou_op *op, const mixture *mix,
                                   long steps) {
  double T = 10, t[steps + 1];
  timegrid_build(SPACING_UNIFORM, T, 0, steps, t);
  double E[4], D[4], ST[4], L[4], Y[4], Ys[4], S0[4], S1[4], work[8];
  ou_propagator(op, T, E);
  ou_noise_cov(op, T, D);
  ou_marginal_cov(op, T, SIGMA0, ST);
  la_cholesky(2, ST, L);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++) Y[i * 2 + j] = L[j * 2 + i]; /* row i = col i */
  score_mixture a, b;
  score_mixture_init(&a, mix);
  score_mixture_init(&b, mix);
  step_ops s;
  step_ops_init(&s, op, SCHEME_ODE_HEUN);
  size_t wsz = score_mixture_work_size(&a, 2);
  double *sw = malloc(wsz * sizeof *sw);
  for (long k = 0; k < steps; k++) {
    step_ops_set_h(&s, op, t[k] - t[k + 1]);
    ou_propagator(op, t[k], E);
    ou_noise_cov(op, t[k], D);
    score_mixture_set_time(&a, E, D);
    score_mixture_eval(&a, 2, Y, S0, NULL, NULL, sw);
    ode_predict(&s, 2, Y, S0, Ys);
    ou_propagator(op, t[k + 1], E);
    ou_noise_cov(op, t[k + 1], D);
    score_mixture_set_time(&b, E, D);
    score_mixture_eval(&b, 2, Ys, S1, NULL, NULL, sw);
    ode_correct(&s, 2, Y, S0, Ys, S1, work);
  }
  double C[4], err = 0;
  la_matmul(2, (double[]){Y[0], Y[2], Y[1], Y[3]}, Y, C); /* Y^T Y */
  for (int i = 0; i < 4; i++) err = fmax(err, fabs(C[i] - SIGMA0[i]));
  free(sw);
  step_ops_free(&s);
  score_mixture_free(&a);
  score_mixture_free(&b);
  return err;
}

static void test_ode_transports_covariance(void **state) {
  (void)state;
  ou_op op;
  v2_operator(&op, 2.0);
  mixture mix;
  gaussian_mixture(&mix);
  double e1 = ode_covariance_error(&op, &mix, 2000);
  double e2 = ode_covariance_error(&op, &mix, 4000);
  print_message("flow ODE covariance error: %.3g (h = 5e-3), %.3g (h = "
                "2.5e-3), ratio %.2f\n",
                e1, e2, e1 / e2);
  /* Heun is second order: halving h divides the error by ~4 (observed
   * 4.6); the absolute error at h = 2.5e-3 is ~2e-4 on entries of size 3 */
  assert_true(e2 < 5e-4);
  assert_true(e1 / e2 > 3.0 && e1 / e2 < 5.0);
  mixture_free(&mix);
  ou_free(&op);
}

/* Reverse SDE from N(0, S) at T back to t = 0 for P particles; returns the
 * sample covariance of the end points. */
static void reverse_sde_covariance(const ou_op *op, const mixture *mix,
                                   int scheme, long steps, int P,
                                   double *C) {
  double T = 6, *t = malloc((size_t)(steps + 1) * sizeof *t);
  timegrid_build(SPACING_UNIFORM, T, 0, steps, t);
  double *Y = malloc((size_t)P * 2 * sizeof *Y);
  double *S = malloc((size_t)P * 2 * sizeof *S);
  double *Xi = malloc((size_t)P * 2 * sizeof *Xi);
  double *work = malloc((size_t)P * 4 * sizeof *work);
  double L[4], E[4], D[4];
  la_cholesky(2, op->S, L);
  for (int i = 0; i < P; i++) {
    double xi[2];
    rng_normals(7, RNG_PURPOSE_INIT, (uint64_t)i, 0, 2, xi);
    Y[2 * i] = L[0] * xi[0];
    Y[2 * i + 1] = L[2] * xi[0] + L[3] * xi[1];
  }
  score_mixture sm;
  score_mixture_init(&sm, mix);
  double *sw = malloc(score_mixture_work_size(&sm, P) * sizeof *sw);
  step_ops s;
  step_ops_init(&s, op, scheme);
  for (long k = 0; k < steps; k++) {
    ou_propagator(op, t[k], E);
    ou_noise_cov(op, t[k], D);
    score_mixture_set_time(&sm, E, D);
    score_mixture_eval(&sm, P, Y, S, NULL, NULL, sw);
    for (int i = 0; i < P; i++)
      rng_normals(7, RNG_PURPOSE_STEP, (uint64_t)i, (uint32_t)k, 2,
                  Xi + 2 * i);
    step_ops_set_h(&s, op, t[k] - t[k + 1]);
    reverse_sde_step(&s, P, Y, S, Xi, work);
  }
  memset(C, 0, 4 * sizeof *C);
  for (int i = 0; i < P; i++)
    for (int a = 0; a < 2; a++)
      for (int b = 0; b < 2; b++) C[a * 2 + b] += Y[2 * i + a] * Y[2 * i + b];
  for (int a = 0; a < 4; a++) C[a] /= P;
  free(sw);
  free(t);
  free(Y);
  free(S);
  free(Xi);
  free(work);
  step_ops_free(&s);
  score_mixture_free(&sm);
}

/* doc/validation.md V22: d = 2, U = diag(1,4), Q = 2[[0,1],[-1,0]],
 * Gaussian data Sigma0 = [[3,1],[1,.5]]: the reverse SDE returns Sigma0.
 * P = 20000 paths, seed 7; the standard error of a sample second moment is
 * sqrt((S_aa S_bb + S_ab^2)/P) (0.030 for the (1,1) entry); tolerance 5
 * sigma.  Time-discretisation bias at h = 2e-3 is well below that. */
static void test_reverse_sde_returns_data_covariance(void **state) {
  (void)state;
  ou_op op;
  v2_operator(&op, 2.0);
  mixture mix;
  gaussian_mixture(&mix);
  int P = 20000;
  for (int scheme = SCHEME_EULER; scheme <= SCHEME_EXPONENTIAL; scheme++) {
    double C[4];
    reverse_sde_covariance(&op, &mix, scheme, 3000, P, C);
    print_message("%s: Cov = [[%.4f, %.4f], [%.4f, %.4f]]\n",
                  scheme == SCHEME_EULER ? "euler" : "exponential", C[0],
                  C[1], C[2], C[3]);
    for (int a = 0; a < 2; a++)
      for (int b = 0; b < 2; b++) {
        double sd = sqrt((SIGMA0[a * 3] * SIGMA0[b * 3] +
                          SIGMA0[a * 2 + b] * SIGMA0[a * 2 + b]) /
                         P);
        assert_true(fabs(C[a * 2 + b] - SIGMA0[a * 2 + b]) < 5 * sd);
      }
  }
  mixture_free(&mix);
  ou_free(&op);
}

/* Stationarity of N(0, U^{-1}) under the non-reversible forward process
 * (doc/theory.md (1.2)): exact forward sampling from x0 ~ N(0, S) to
 * t = 0.7 with g = 2 keeps the covariance S.  P = 40000 samples, 5 sigma
 * as above. */
static void test_forward_stationarity(void **state) {
  (void)state;
  ou_op op;
  v2_operator(&op, 2.0);
  int P = 40000;
  double E[4], D[4], L[4], Ls[4];
  ou_propagator(&op, 0.7, E);
  ou_noise_cov(&op, 0.7, D);
  la_cholesky(2, D, L);
  la_cholesky(2, op.S, Ls);
  double *X0 = malloc((size_t)P * 2 * sizeof *X0);
  double *Xi = malloc((size_t)P * 2 * sizeof *Xi);
  double *Xt = malloc((size_t)P * 2 * sizeof *Xt);
  for (int i = 0; i < P; i++) {
    double z[2];
    rng_normals(11, RNG_PURPOSE_INIT, (uint64_t)i, 0, 2, z);
    X0[2 * i] = Ls[0] * z[0];
    X0[2 * i + 1] = Ls[2] * z[0] + Ls[3] * z[1];
    rng_normals(11, RNG_PURPOSE_FORWARD, (uint64_t)i, 0, 2, Xi + 2 * i);
  }
  forward_sample(2, P, E, L, X0, Xi, Xt);
  double C[4] = {0, 0, 0, 0};
  for (int i = 0; i < P; i++)
    for (int a = 0; a < 2; a++)
      for (int b = 0; b < 2; b++)
        C[a * 2 + b] += Xt[2 * i + a] * Xt[2 * i + b] / P;
  for (int a = 0; a < 2; a++)
    for (int b = 0; b < 2; b++) {
      const double *S = op.S;
      double sd = sqrt((S[a * 3] * S[b * 3] + S[a * 2 + b] * S[a * 2 + b]) / P);
      assert_true(fabs(C[a * 2 + b] - S[a * 2 + b]) < 5 * sd);
    }
  free(X0);
  free(Xi);
  free(Xt);
  ou_free(&op);
}

/* Cloning (doc/theory.md section 5.6) on the d = 2 system of the Monte Carlo
 * check doc/validation.md V19: U =
 * diag(1,4), C = S, mu = (10, 0), g = 0.75, where kappa = 1 at t_S = 1.4629.
 * P = 10000 trajectories from N(0, S) at T = 6, exponential scheme,
 * h ~ 2e-3; at t_b each is split into two clones with independent noise, run
 * to 0 and classified by sign(mu . x).  phi_clone must match F(1) = 0.7752
 * within 4 binomial sigmas (0.017); the clone-free estimator E[sum r_k^2]
 * at t_b must match within 4 of its sigmas (measured spread of sum r^2). */
static void test_cloning_matches_F_kappa(void **state) {
  (void)state;
  ou_op op;
  v2_operator(&op, 0.75);
  double dir[2] = {1, 0};
  mixture mix;
  assert_int_equal(mixture_two_class(&mix, 2, 50.0, dir, MIX_COV_STATIONARY,
                                     0, op.S, NULL),
                   NRD_OK);
  int P = 10000;
  double T = 6, tb = 1.4629;
  long n1 = 2300, n2 = 730;
  double *t1 = malloc((size_t)(n1 + 1) * sizeof *t1);
  double *t2 = malloc((size_t)(n2 + 1) * sizeof *t2);
  timegrid_build(SPACING_UNIFORM, T, tb, n1, t1);
  timegrid_build(SPACING_UNIFORM, tb, 0, n2, t2);
  double *Y = malloc((size_t)P * 2 * sizeof *Y);
  double *Z = malloc((size_t)P * 2 * sizeof *Z);
  double *S = malloc((size_t)P * 2 * sizeof *S);
  double *Xi = malloc((size_t)P * 2 * sizeof *Xi);
  double *work = malloc((size_t)P * 4 * sizeof *work);
  double *resp = malloc((size_t)P * 2 * sizeof *resp);
  double L[4], E[4], D[4];
  la_cholesky(2, op.S, L);
  for (int i = 0; i < P; i++) {
    double xi[2];
    rng_normals(3, RNG_PURPOSE_INIT, (uint64_t)i, 0, 2, xi);
    Y[2 * i] = L[0] * xi[0];
    Y[2 * i + 1] = L[2] * xi[0] + L[3] * xi[1];
  }
  score_mixture sm;
  score_mixture_init(&sm, &mix);
  double *sw = malloc(score_mixture_work_size(&sm, P) * sizeof *sw);
  step_ops s;
  step_ops_init(&s, &op, SCHEME_EXPONENTIAL);
  /* run the pair of clones (Y with STEP noise, Z with CLONE noise) */
  for (int phase = 0; phase < 2; phase++) {
    double *t = phase ? t2 : t1;
    long n = phase ? n2 : n1;
    for (long k = 0; k < n; k++) {
      ou_propagator(&op, t[k], E);
      ou_noise_cov(&op, t[k], D);
      score_mixture_set_time(&sm, E, D);
      step_ops_set_h(&s, &op, t[k] - t[k + 1]);
      for (int c = 0; c < 1 + phase; c++) {
        double *X = c ? Z : Y;
        uint32_t purpose = c ? RNG_PURPOSE_CLONE : RNG_PURPOSE_STEP;
        score_mixture_eval(&sm, P, X, S, NULL, NULL, sw);
        for (int i = 0; i < P; i++)
          rng_normals(3, purpose, (uint64_t)i, (uint32_t)(phase * n1 + k), 2,
                      Xi + 2 * i);
        reverse_sde_step(&s, P, X, S, Xi, work);
      }
    }
    if (phase == 0) {
      /* at t_b: clone-free estimator, then the split */
      ou_propagator(&op, tb, E);
      ou_noise_cov(&op, tb, D);
      score_mixture_set_time(&sm, E, D);
      score_mixture_eval(&sm, P, Y, S, resp, NULL, sw);
      double m1 = 0, m2 = 0;
      for (int i = 0; i < P; i++) {
        double r2 = resp[2 * i] * resp[2 * i] + resp[2 * i + 1] * resp[2 * i + 1];
        m1 += r2 / P;
        m2 += r2 * r2 / P;
      }
      double sd = sqrt((m2 - m1 * m1) / P);
      print_message("clone-free phi(t_S) = %.4f +- %.4f (F(1) = 0.7752)\n",
                    m1, sd);
      assert_true(fabs(m1 - 0.7752002) < 4 * sd + 0.002);
      memcpy(Z, Y, (size_t)P * 2 * sizeof *Y);
    }
  }
  int agree = 0;
  for (int i = 0; i < P; i++) agree += (Y[2 * i] > 0) == (Z[2 * i] > 0);
  double phi = (double)agree / P;
  double sd = sqrt(0.7752 * 0.2248 / P);
  print_message("cloning phi(t_S) = %.4f +- %.4f (F(1) = 0.7752)\n", phi, sd);
  assert_true(fabs(phi - 0.7752002) < 4 * sd);
  free(t1);
  free(t2);
  free(Y);
  free(Z);
  free(S);
  free(Xi);
  free(work);
  free(resp);
  free(sw);
  step_ops_free(&s);
  score_mixture_free(&sm);
  mixture_free(&mix);
  ou_free(&op);
}

/* Multiples of I are found and applied without GEMMs: U = 2 I, g = 0
 * makes A, F, G and Ln multiples of I; U = 2 I, g = 1 (a rotation) only
 * Ln; V2's U = diag(1, 4) none.  In every case reverse_sde_step equals
 * F y + 2 G s + Ln xi (or y + h (A y + 2 s) + sqrt(2h) xi) formed densely
 * here from the stored matrices, to 1e-14. */
static void test_step_multiples_of_identity(void **state) {
  (void)state;
  enum { D = 4, P = 5 };
  double U[D * D] = {0}, Qh[D * D];
  for (int i = 0; i < D; i++)
    U[i * D + i] = 2.0;
  assert_int_equal(ou_q_random(D, 3, Qh), NRD_OK);
  for (int c = 0; c < 3; c++) {
    ou_op op;
    if (c < 2) {
      assert_int_equal(ou_init(&op, D, U, c ? Qh : NULL, c ? 1.0 : 0.0),
                       NRD_OK);
    } else {
      double Ud[D * D] = {0};
      for (int i = 0; i < D; i++)
        Ud[i * D + i] = 1.0 + i;
      assert_int_equal(ou_init(&op, D, Ud, Qh, 0.5), NRD_OK);
    }
    for (int scheme = SCHEME_EULER; scheme <= SCHEME_EXPONENTIAL; scheme++) {
      step_ops s;
      assert_int_equal(step_ops_init(&s, &op, scheme), NRD_OK);
      assert_int_equal(step_ops_set_h(&s, &op, 0.01), NRD_OK);
      assert_int_equal(s.iso_A, c == 0);
      if (c == 0) assert_true(s.s_A == 2.0);
      if (scheme == SCHEME_EXPONENTIAL) {
        assert_int_equal(s.iso_F, c == 0);
        assert_int_equal(s.iso_G, c == 0);
        assert_int_equal(s.iso_Ln, c < 2);
      }
      double Y[P * D], S[P * D], Xi[P * D], ref[P * D], work[P * D];
      rng_normals(5, RNG_PURPOSE_INIT, 0, 0, P * D, Y);
      rng_normals(5, RNG_PURPOSE_STEP, 0, 0, P * D, S);
      rng_normals(5, RNG_PURPOSE_STEP, 1, 0, P * D, Xi);
      for (int p = 0; p < P; p++)
        for (int i = 0; i < D; i++) {
          double r = 0;
          const double *y = Y + p * D, *sc = S + p * D, *xi = Xi + p * D;
          if (scheme == SCHEME_EXPONENTIAL) {
            for (int j = 0; j < D; j++)
              r += s.F[i * D + j] * y[j] + 2 * s.G[i * D + j] * sc[j] +
                   s.Ln[i * D + j] * xi[j];
          } else {
            double ay = 0;
            for (int j = 0; j < D; j++)
              ay += op.A[i * D + j] * y[j];
            r = y[i] + 0.01 * (ay + 2 * sc[i]) + sqrt(0.02) * xi[i];
          }
          ref[p * D + i] = r;
        }
      reverse_sde_step(&s, P, Y, S, Xi, work);
      for (int k = 0; k < P * D; k++)
        assert_true(fabs(Y[k] - ref[k]) < 1e-14 * (1 + fabs(ref[k])));
      step_ops_free(&s);
    }
    ou_free(&op);
  }
}

/* A score s = r - Dinv y (the empirical score's split): the folded step with
 * r equals the plain step with s to round-off, for the three operators of
 * the test above, both schemes, Dinv dense and a multiple of I; the fold is
 * a multiple of I exactly when A (Euler) or F and G (exponential) and Dinv
 * are. */
static void test_step_folded(void **state) {
  (void)state;
  enum { D = 4, P = 5 };
  double U[D * D] = {0}, Ud[D * D] = {0}, Qh[D * D], B[D * D], Dd[D * D];
  for (int i = 0; i < D; i++)
    U[i * D + i] = 2.0, Ud[i * D + i] = 1.0 + i;
  assert_int_equal(ou_q_random(D, 3, Qh), NRD_OK);
  rng_normals(8, RNG_PURPOSE_INIT, 0, 0, D * D, B);
  for (int i = 0; i < D; i++) /* Dd = B B^T / D + I: SPD */
    for (int j = 0; j < D; j++) {
      double x = i == j ? 1.0 : 0.0;
      for (int k = 0; k < D; k++)
        x += B[i * D + k] * B[j * D + k] / D;
      Dd[i * D + j] = x;
    }
  for (int c = 0; c < 3; c++) {
    ou_op op;
    assert_int_equal(ou_init(&op, D, c < 2 ? U : Ud, c ? Qh : NULL,
                             c == 0 ? 0.0 : (c == 1 ? 1.0 : 0.5)),
                     NRD_OK);
    for (int scheme = SCHEME_EULER; scheme <= SCHEME_EXPONENTIAL; scheme++)
      for (int dense = 0; dense < 2; dense++) {
        step_ops s;
        step_fold f;
        assert_int_equal(step_ops_init(&s, &op, scheme), NRD_OK);
        assert_int_equal(step_ops_set_h(&s, &op, 0.01), NRD_OK);
        assert_int_equal(step_fold_init(&f, D), NRD_OK);
        const double *Dinv = dense ? Dd : NULL;
        double inv = dense ? 0.0 : 2.5;
        step_fold_set(&f, &s, Dinv, inv);
        assert_int_equal(f.iso, c == 0 && !dense);
        double Y[P * D], Y2[P * D], R[P * D], S[P * D], Xi[P * D];
        double work[P * D];
        rng_normals(9, RNG_PURPOSE_INIT, 0, 0, P * D, Y);
        rng_normals(9, RNG_PURPOSE_STEP, 0, 0, P * D, R);
        rng_normals(9, RNG_PURPOSE_STEP, 1, 0, P * D, Xi);
        for (int p = 0; p < P; p++)
          for (int i = 0; i < D; i++) {
            double dy = 0;
            for (int j = 0; j < D; j++)
              dy += (dense ? Dd[i * D + j] : (i == j ? inv : 0)) * Y[p * D + j];
            S[p * D + i] = R[p * D + i] - dy;
          }
        memcpy(Y2, Y, sizeof Y);
        reverse_sde_step(&s, P, Y, S, Xi, work);
        reverse_sde_step_folded(&s, &f, P, Y2, R, Xi, work);
        for (int k = 0; k < P * D; k++)
          assert_true(fabs(Y2[k] - Y[k]) < 1e-14 * (1 + fabs(Y[k])));
        step_fold_free(&f);
        step_ops_free(&s);
      }
    ou_free(&op);
  }
}

/* The element-wise update is split over threads above ~1 M operations:
 * with A = 2 I (no BLAS call) 1 and 2 threads give the same bits. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

static void test_step_thread_independent(void **state) {
  (void)state;
  enum { D = 64, P = 5000 };
  double *U = calloc(D * D, sizeof *U);
  for (int i = 0; i < D; i++)
    U[i * D + i] = 2.0;
  ou_op op;
  assert_int_equal(ou_init(&op, D, U, NULL, 0.0), NRD_OK);
  size_t n = (size_t)P * D;
  double *Y0 = malloc(n * sizeof *Y0), *S = malloc(n * sizeof *S);
  double *Xi = malloc(n * sizeof *Xi), *work = malloc(n * sizeof *work);
  double *Y[2] = {malloc(n * sizeof(double)), malloc(n * sizeof(double))};
  rng_normals(6, RNG_PURPOSE_INIT, 0, 0, n, Y0);
  rng_normals(6, RNG_PURPOSE_STEP, 0, 0, n, S);
  rng_normals(6, RNG_PURPOSE_STEP, 1, 0, n, Xi);
  int saved = openblas_get_num_threads();
  for (int scheme = SCHEME_EULER; scheme <= SCHEME_EXPONENTIAL; scheme++) {
    step_ops s;
    assert_int_equal(step_ops_init(&s, &op, scheme), NRD_OK);
    assert_int_equal(step_ops_set_h(&s, &op, 1e-3), NRD_OK);
    for (int t = 0; t < 2; t++) {
      memcpy(Y[t], Y0, n * sizeof *Y0);
      openblas_set_num_threads(t + 1);
      reverse_sde_step(&s, P, Y[t], S, Xi, work);
    }
    openblas_set_num_threads(saved);
    assert_memory_equal(Y[0], Y[1], n * sizeof(double));
    step_ops_free(&s);
  }
  free(U);
  free(Y0);
  free(S);
  free(Xi);
  free(work);
  free(Y[0]);
  free(Y[1]);
  ou_free(&op);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_timegrid),
      cmocka_unit_test(test_exponential_step_matrices),
      cmocka_unit_test(test_ode_transports_covariance),
      cmocka_unit_test(test_reverse_sde_returns_data_covariance),
      cmocka_unit_test(test_forward_stationarity),
      cmocka_unit_test(test_cloning_matches_F_kappa),
      cmocka_unit_test(test_step_multiples_of_identity),
      cmocka_unit_test(test_step_folded),
      cmocka_unit_test(test_step_thread_independent),
  };
  return cmocka_run_group_tests_name("integrate", tests, NULL, NULL);
}
