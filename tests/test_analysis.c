/* Curve analysis (analysis.c): monotone fits, crossings on synthetic curves
 * with known crossings, the jackknife error of a crossing against the
 * spread of independent repetitions, and the FFT autocorrelation against
 * the direct O(N^2) sum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "nrdiff/analysis.h"

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
      cmocka_unit_test(test_jackknife_error_is_the_spread),
      cmocka_unit_test(test_acf_fft_equals_direct),
      cmocka_unit_test(test_acf_of_ar1),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
