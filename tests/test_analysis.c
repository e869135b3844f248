/* The estimators (analysis.c): the jackknife against direct computations
 * (a ratio with known leave-one-out values, a non-linear function), monotone
 * fits, crossings on synthetic curves with known crossings and their
 * jackknife errors in closed form, "not reached", one block, the jackknife
 * error of a crossing against the spread of independent repetitions, and
 * the FFT autocorrelation against the direct O(N^2) sum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "core/analysis.h"

/* A small deterministic normal generator for synthetic noise. */
static uint64_t lcg = 88172645463325252ULL;
static double uniform(void) {
  lcg ^= lcg << 13, lcg ^= lcg >> 7, lcg ^= lcg << 17; /* xorshift64 */
  return ((double)(lcg >> 11) + 0.5) / 9007199254740992.0;
}
static double normal(void) {
  return sqrt(-2 * log(uniform())) * cos(6.283185307179586 * uniform());
}

static void test_isotonic(void **state) {
  (void)state;
  double y[4] = {1, 3, 2, 4}, fit[4];
  an_isotonic(4, y, NULL, +1, fit);
  assert_true(fit[0] == 1 && fit[1] == 2.5 && fit[2] == 2.5 && fit[3] == 4);
  double z[3] = {1, 3, 2};
  an_isotonic(3, z, NULL, -1, fit);
  assert_true(fit[0] == 2 && fit[1] == 2 && fit[2] == 2);
  double w[3] = {3, 1, 1}; /* weighted pools: (3 + 3)/4, then (6 + 2)/5 */
  an_isotonic(3, z, w, -1, fit);
  for (int i = 0; i < 3; i++)
    assert_true(fabs(fit[i] - 1.6) < 1e-15);
}

static double phi_curve(double t) { /* falls from 1 to 1/2, crosses 3/4 at 2 */
  return 0.5 + 0.25 * (1 - tanh(t - 2));
}

static void test_crossing_exact_curves(void **state) {
  (void)state;
  enum { N = 41 };
  double t[N], y[N];
  for (int i = 0; i < N; i++) { /* decreasing t, as in the output */
    t[i] = 4 - 0.1 * i;
    y[i] = phi_curve(t[i]);
  }
  /* the grid is symmetric about 2, so linear interpolation is exact */
  assert_true(fabs(an_crossing(N, t, y, 0.75, -1) - 2) < 1e-12);
  /* a level the curve never reaches */
  assert_true(isnan(an_crossing(N, t, y, 0.3, -1)));
  assert_true(isnan(an_crossing(N, t, y, 1.1, -1)));
  /* rising curve: f(t) = t^2 crosses 2 at sqrt 2 (linear interpolation
   * between 1.4 and 1.5) */
  double u[N], f[N];
  for (int i = 0; i < N; i++)
    u[i] = 0.1 * i, f[i] = u[i] * u[i];
  double want = 1.4 + 0.1 * (2 - 1.96) / (2.25 - 1.96);
  assert_true(fabs(an_crossing(N, u, f, 2, +1) - want) < 1e-12);
  /* NaN points are ignored; order does not matter */
  y[20] = NAN;
  double s[3] = {3, 1, 2}, v[3] = {0.2, 0.9, 0.6};
  assert_true(fabs(an_crossing(3, s, v, 0.75, -1) - 1.5) < 1e-12);
  assert_false(isnan(an_crossing(N, t, y, 0.75, -1)));
}

static void test_crossing_noise_is_monotonised(void **state) {
  (void)state;
  /* a non-monotone wiggle at the level would give three crossings; the
   * monotone fit (0.74, 0.76 pooled to 0.75) gives one, in the wiggle */
  double t[6] = {0, 1, 2, 3, 4, 5}, y[6] = {1, 0.8, 0.74, 0.76, 0.7, 0.6};
  double c = an_crossing(6, t, y, 0.75, -1);
  assert_true(c >= 2 && c <= 3);
}

/* A ratio of sums: a = {1, 2, 3, 4}, n = 2 per block.  Totals 10 / 8; the
 * leave-one-out values 9/6, 8/6, 7/6, 6/6 have mean 5/4 and deviations
 * +-1/4, +-1/12, so err^2 = 3/4 (2/16 + 2/144) = 5/48. */
static void test_jackknife_ratio_known(void **state) {
  (void)state;
  double sums[8] = {1, 2, 2, 2, 3, 2, 4, 2}, v, e;
  an_jackknife(4, 2, sums, an_ratio, NULL, &v, &e);
  assert_true(v == 10.0 / 8);
  assert_true(fabs(e - sqrt(5.0 / 48)) < 1e-15);
  /* an_ratio_curve is the same at every point */
  double num[4] = {1, 2, 3, 4}, den[4] = {2, 2, 2, 2}, c, ce;
  an_ratio_curve(1, 4, num, den, &c, &ce);
  assert_true(c == v && ce == e);
}

/* f(T) = T0 T1 / T2^2, computed by hand: totals, leave-one-out values, their
 * spread. */
static double nonlinear(const double *T, const void *ctx) {
  const double *scale = ctx;
  return *scale * T[0] * T[1] / (T[2] * T[2]);
}

static void test_jackknife_nonlinear(void **state) {
  (void)state;
  enum { B = 7, NV = 3 };
  double sums[B * NV], scale = 2.5;
  for (int b = 0; b < B; b++)
    for (int v = 0; v < NV; v++)
      sums[b * NV + v] = 1 + uniform() * (v + 1);
  double T[NV] = {0}, loo[B], mean = 0, ss = 0;
  for (int b = 0; b < B; b++)
    for (int v = 0; v < NV; v++)
      T[v] += sums[b * NV + v];
  for (int b = 0; b < B; b++) {
    double L[NV];
    for (int v = 0; v < NV; v++)
      L[v] = T[v] - sums[b * NV + v];
    loo[b] = scale * L[0] * L[1] / (L[2] * L[2]);
    mean += loo[b] / B;
  }
  for (int b = 0; b < B; b++)
    ss += (loo[b] - mean) * (loo[b] - mean);
  double want = sqrt(ss * (B - 1) / B), v, e;
  an_jackknife(B, NV, sums, nonlinear, &scale, &v, &e);
  assert_true(fabs(v - scale * T[0] * T[1] / (T[2] * T[2])) < 1e-14 * fabs(v));
  assert_true(fabs(e - want) < 1e-12 * want && e > 0);
}

/* One block: a value, no error; a NaN value or a NaN leave-one-out value:
 * no error. */
static double nan_without_block0(const double *T, const void *ctx) {
  (void)ctx;
  return T[1] < 5 ? NAN : T[0];
}

static void test_jackknife_undefined(void **state) {
  (void)state;
  double one[2] = {3, 4}, v, e;
  an_jackknife(1, 2, one, an_ratio, NULL, &v, &e);
  assert_true(v == 0.75 && isnan(e));
  double zero[4] = {0, 0, 0, 0}; /* 0/0 */
  an_jackknife(2, 2, zero, an_ratio, NULL, &v, &e);
  assert_true(isnan(v) && isnan(e));
  double s[6] = {1, 5, 2, 1, 3, 1}; /* without block 0, T[1] = 2 */
  an_jackknife(3, 2, s, nan_without_block0, NULL, &v, &e);
  assert_true(v == 6 && isnan(e));
  double num[3] = {1, 2, 3}, den[3] = {4, 4, 4}, c[3], ce[3];
  an_ratio_curve(3, 1, num, den, c, ce);
  for (int i = 0; i < 3; i++)
    assert_true(c[i] == num[i] / 4 && isnan(ce[i]));
  double t[3] = {3, 2, 1}, cross;
  an_jackknife_crossing(3, t, 1, num, den, 0.4, -1, &cross, &e);
  assert_true(fabs(cross - 2.4) < 1e-12 && isnan(e));
}

/* Exact monotone data: block b holds the straight line a_b - t (count 1 per
 * time), so the curve of totals is mean(a) - t and every leave-one-out
 * curve is mean_{c != b}(a) - t; linear interpolation is exact on a line.
 * The crossing of level L is mean(a) - L, and its jackknife error is that
 * of a mean, sqrt(sum (a_b - mean)^2 / (B (B - 1))). */
static void test_jackknife_crossing_exact(void **state) {
  (void)state;
  enum { N = 31, B = 5 };
  double t[N], num[B * N], den[B * N], a[B] = {3.1, 2.9, 3.4, 2.7, 3.0};
  for (int i = 0; i < N; i++)
    t[i] = 3 - 0.1 * i; /* decreasing, as in the output */
  for (int b = 0; b < B; b++)
    for (int i = 0; i < N; i++)
      num[b * N + i] = a[b] - t[i], den[b * N + i] = 1;
  double mean = 0, ss = 0;
  for (int b = 0; b < B; b++)
    mean += a[b] / B;
  for (int b = 0; b < B; b++)
    ss += (a[b] - mean) * (a[b] - mean);
  double level = 1.5, v, e;
  an_jackknife_crossing(N, t, B, num, den, level, -1, &v, &e);
  assert_true(fabs(v - (mean - level)) < 1e-12);
  assert_true(fabs(e - sqrt(ss / (B * (B - 1)))) < 1e-12);
  /* not reached: the curve (mean - 3 .. mean over t in [0, 3]) stays below
   * 4, and reaches mean + 0.001 only at t = -0.001 */
  an_jackknife_crossing(N, t, B, num, den, 4.0, -1, &v, &e);
  assert_true(isnan(v) && isnan(e));
  an_jackknife_crossing(N, t, B, num, den, mean + 0.001, -1, &v, &e);
  assert_true(isnan(v) && isnan(e));
  /* reached, but not by every leave-one-out curve: the curve reaches
   * mean - 0.02 at t = 0.02; without block 2 (a = 3.4) the mean is lower by
   * 0.095 and the level is reached only at t < 0: a value, no error */
  an_jackknife_crossing(N, t, B, num, den, mean - 0.02, -1, &v, &e);
  assert_true(fabs(v - 0.02) < 1e-12 && isnan(e));
  /* two identical blocks: every leave-one-out curve is the curve itself,
   * and 2 - t crosses 1/2 at 1.5 */
  double twin[2 * N], ones[2 * N];
  for (int b = 0; b < 2; b++)
    for (int i = 0; i < N; i++)
      twin[b * N + i] = 2 - t[i], ones[b * N + i] = 1;
  an_jackknife_crossing(N, t, 2, twin, ones, 0.5, -1, &v, &e);
  assert_true(fabs(v - 1.5) < 1e-12 && e == 0);
}

/* Jackknife error of a crossing against the spread of 400 independent
 * repetitions: B = 20 blocks of 100 samples, noise sd 0.1 per sample. */
static void test_jackknife_error_is_the_spread(void **state) {
  (void)state;
  enum { N = 21, B = 20, REPS = 400 };
  double t[N], num[B * N], den[B * N], est[REPS], errs = 0;
  for (int i = 0; i < N; i++)
    t[i] = 1 + 0.1 * i;
  for (int r = 0; r < REPS; r++) {
    for (int b = 0; b < B; b++)
      for (int i = 0; i < N; i++) {
        den[b * N + i] = 100;
        num[b * N + i] = 100 * phi_curve(t[i]) + 10 * 0.1 * normal();
      }
    double v, e;
    an_jackknife_crossing(N, t, B, num, den, 0.75, -1, &v, &e);
    assert_false(isnan(v) || isnan(e));
    est[r] = v;
    errs += e / REPS;
  }
  double mean = 0, ss = 0;
  for (int r = 0; r < REPS; r++)
    mean += est[r] / REPS;
  for (int r = 0; r < REPS; r++)
    ss += (est[r] - mean) * (est[r] - mean);
  double sd = sqrt(ss / (REPS - 1));
  /* unbiased: the mean of 400 estimates within 4 standard errors of 2 */
  assert_true(fabs(mean - 2) < 4 * sd / sqrt(REPS));
  /* the jackknife error estimates the spread (the sd of an sd from 400
   * repetitions is 3.5%; the jackknife itself is good to ~15% here) */
  assert_true(fabs(errs / sd - 1) < 0.25);
}

static void test_acf_fft_equals_direct(void **state) {
  (void)state;
  long sizes[3] = {1, 77, 128};
  for (int k = 0; k < 3; k++) {
    long N = sizes[k], m = 3;
    double *x = malloc((size_t)(N * m) * sizeof *x);
    double *a = malloc((size_t)N * sizeof *a), *b = malloc((size_t)N * sizeof *b);
    for (long i = 0; i < N * m; i++)
      x[i] = normal();
    assert_int_equal(an_acf_fft(N, m, x, a), 0);
    assert_int_equal(an_acf_direct(N, m, x, b), 0);
    for (long i = 0; i < N; i++)
      assert_true(fabs(a[i] - b[i]) < 1e-12);
    assert_true(a[0] == 1.0 || fabs(a[0] - 1) < 1e-15);
    free(x), free(a), free(b);
  }
  double zero[4] = {0};
  double out[4];
  assert_int_equal(an_acf_fft(4, 1, zero, out), -1);
}

/* AR(1) with coefficient rho: acf(tau) = rho^tau, within the statistics
 * (64 series of 4096 steps: sd of the estimate ~ 0.003 at small lags). */
static void test_acf_of_ar1(void **state) {
  (void)state;
  enum { N = 4096, M = 64 };
  double rho = 0.9, *x = malloc((size_t)N * M * sizeof *x), acf[N];
  for (int s = 0; s < M; s++) {
    x[s * N] = normal();
    for (int i = 1; i < N; i++)
      x[s * N + i] = rho * x[s * N + i - 1] + sqrt(1 - rho * rho) * normal();
  }
  assert_int_equal(an_acf_fft(N, M, x, acf), 0);
  for (int tau = 1; tau <= 20; tau++)
    assert_true(fabs(acf[tau] - pow(rho, tau)) < 0.03);
  free(x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_isotonic),
      cmocka_unit_test(test_crossing_exact_curves),
      cmocka_unit_test(test_crossing_noise_is_monotonised),
      cmocka_unit_test(test_jackknife_ratio_known),
      cmocka_unit_test(test_jackknife_nonlinear),
      cmocka_unit_test(test_jackknife_undefined),
      cmocka_unit_test(test_jackknife_crossing_exact),
      cmocka_unit_test(test_jackknife_error_is_the_spread),
      cmocka_unit_test(test_acf_fft_equals_direct),
      cmocka_unit_test(test_acf_of_ar1),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
