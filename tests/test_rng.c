/* Counter-based random numbers (rng.c): Philox4x32-10 known answers, the
 * documented addressing (key = {seed, purpose}, counter = {k/2, step,
 * stream_lo, stream_hi}), determinism and the prefix property that make
 * results independent of rank count and restarts (DESIGN.md, conventions),
 * and the statistics of the variates.  Every Monte Carlo check is seeded,
 * states its sample size, and allows 5 standard deviations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <Random123/philox.h>

#include "core/rng.h"

enum { NMC = 1000000 };

/* The uniform rng.c documents: 53 bits k = (a >> 5) 2^26 + (b >> 6),
 * u = k 2^-53, k = 0 mapped to 2^-54. */
static double ref_uniform(uint32_t a, uint32_t b) {
  double k = (double)(a >> 5) * 67108864.0 + (double)(b >> 6);
  return k > 0 ? k * 0x1p-53 : 0x1p-54;
}

static philox4x32_ctr_t ref_philox(uint32_t seed, uint32_t purpose,
                                   uint64_t stream, uint32_t step, size_t k) {
  philox4x32_key_t key = {{seed, purpose}};
  philox4x32_ctr_t ctr = {
      {(uint32_t)(k / 2), step, (uint32_t)stream, (uint32_t)(stream >> 32)}};
  return philox4x32_R(10, ctr, key);
}

/* Random123's kat_vectors for philox4x32_10, checked against the installed
 * header (librandom123-dev 1.14). */
static void test_philox_known_answers(void **state) {
  (void)state;
  static const uint32_t kat[3][10] = {
      {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
      {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
       0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
      {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
       0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}};
  for (int t = 0; t < 3; t++) {
    philox4x32_ctr_t c = {{kat[t][0], kat[t][1], kat[t][2], kat[t][3]}};
    philox4x32_key_t k = {{kat[t][4], kat[t][5]}};
    philox4x32_ctr_t r = philox4x32_R(10, c, k);
    for (int j = 0; j < 4; j++)
      assert_int_equal(r.v[j], kat[t][6 + j]);
  }
}

/* rng_uniforms is exactly the documented function of Philox's words, for
 * lengths that exercise the chunked code (1, odd, > 128) and a stream with
 * both 32-bit halves non-zero. */
static void test_uniforms_follow_documented_layout(void **state) {
  (void)state;
  const uint64_t stream = 0x123456789abcULL;
  size_t lens[] = {1, 7, 300};
  double u[300];
  for (int t = 0; t < 3; t++) {
    rng_uniforms(42, RNG_PURPOSE_LABEL, stream, 17, lens[t], u);
    for (size_t k = 0; k < lens[t]; k++) {
      philox4x32_ctr_t r = ref_philox(42, RNG_PURPOSE_LABEL, stream, 17, k);
      double ref =
          (k & 1) ? ref_uniform(r.v[2], r.v[3]) : ref_uniform(r.v[0], r.v[1]);
      assert_true(u[k] == ref);
    }
  }
}

/* Normals against Box-Muller with libm on the same uniforms.  rng.c's own
 * ln and sincos are < 1 ulp on exactly reduced arguments and libm's are
 * too, so the two differ by a few ulp of |z| <= 8.7: bound 1e-14 (measured
 * 2.4e-15 here; against long double, rng.c is within 8.9e-16 over 2e6
 * draws). */
static void test_normals_match_libm_box_muller(void **state) {
  (void)state;
  enum { N = 20000 };
  double *z = malloc(N * sizeof *z);
  rng_normals(3, RNG_PURPOSE_STEP, 99, 5, N, z);
  double maxdiff = 0;
  for (size_t k = 0; k < N; k++) {
    philox4x32_ctr_t r = ref_philox(3, RNG_PURPOSE_STEP, 99, 5, k);
    double u1 = ref_uniform(r.v[0], r.v[1]), u2 = ref_uniform(r.v[2], r.v[3]);
    double rad = sqrt(-2.0 * log(u1)), th = 6.28318530717958647692 * u2;
    double ref = rad * ((k & 1) ? sin(th) : cos(th));
    double diff = fabs(z[k] - ref);
    if (diff > maxdiff) maxdiff = diff;
  }
  assert_true(maxdiff < 1e-14);
  free(z);
}

/* Draw k depends only on (seed, purpose, stream, step, k): every shorter
 * request is a prefix of a longer one (lengths 1..300 cover the vectorised
 * chunks of 128, the pieces of 16 and the scalar rest), and repeating a call
 * repeats the numbers bit for bit. */
static void test_determinism_and_prefix(void **state) {
  (void)state;
  enum { L = 300 };
  double full[L], part[L], again[L];
  rng_normals(11, RNG_PURPOSE_INIT, 1234, 0, L, full);
  rng_normals(11, RNG_PURPOSE_INIT, 1234, 0, L, again);
  assert_memory_equal(full, again, sizeof full);
  for (size_t n = 1; n <= L; n++) {
    rng_normals(11, RNG_PURPOSE_INIT, 1234, 0, n, part);
    assert_memory_equal(full, part, n * sizeof *part);
  }
  double u5[5], u8[8];
  rng_uniforms(11, RNG_PURPOSE_INIT, 1234, 0, 5, u5);
  rng_uniforms(11, RNG_PURPOSE_INIT, 1234, 0, 8, u8);
  assert_memory_equal(u5, u8, sizeof u5);
  /* A long request stays a prefix across many chunks. */
  enum { LL = 5000 };
  double *a = malloc(LL * sizeof *a), *b = malloc(LL * sizeof *b);
  rng_normals(11, RNG_PURPOSE_INIT, 1234, 0, LL, a);
  rng_normals(11, RNG_PURPOSE_INIT, 1234, 0, LL - 37, b);
  assert_memory_equal(a, b, (LL - 37) * sizeof *a);
  free(a);
  free(b);
}

/* Changing any one coordinate of the address changes the numbers: no two of
 * the first 64 draws coincide (a coincidence has probability ~1e-13). */
static void test_addresses_are_distinct(void **state) {
  (void)state;
  enum { L = 64 };
  double base[L], other[L];
  rng_normals(1, RNG_PURPOSE_STEP, 7, 3, L, base);
  uint32_t seeds[] = {2, 1, 1, 1, 1};
  uint32_t purposes[] = {RNG_PURPOSE_STEP, RNG_PURPOSE_CLONE, RNG_PURPOSE_STEP,
                         RNG_PURPOSE_STEP, RNG_PURPOSE_STEP};
  uint64_t streams[] = {7, 7, 8, 7 + (1ULL << 32), 7};
  uint32_t steps[] = {3, 3, 3, 3, 4};
  for (int t = 0; t < 5; t++) {
    rng_normals(seeds[t], purposes[t], streams[t], steps[t], L, other);
    for (int k = 0; k < L; k++)
      assert_true(other[k] != base[k]);
  }
}

/* Moments of N = 10^6 normals, each within 5 sigma of its exact value:
 * sigma(mean) = 1/sqrt(N), sigma(<z^2>) = sqrt(2/N), sigma(<z^3>) =
 * sqrt(15/N), sigma(<z^4>) = sqrt((105 - 9)/N); and the two members of a
 * Box-Muller pair (cos and sin branch) are uncorrelated, sigma =
 * sqrt(2/N). */
static void test_normal_moments(void **state) {
  (void)state;
  double *z = malloc(NMC * sizeof *z);
  rng_normals(2024, RNG_PURPOSE_FORWARD, 5, 0, NMC, z);
  double m1 = 0, m2 = 0, m3 = 0, m4 = 0, pair = 0;
  for (size_t k = 0; k < NMC; k++) {
    double x = z[k], x2 = x * x;
    m1 += x;
    m2 += x2;
    m3 += x2 * x;
    m4 += x2 * x2;
    if (k & 1) pair += z[k - 1] * x;
  }
  double N = NMC;
  m1 /= N, m2 /= N, m3 /= N, m4 /= N, pair /= N / 2;
  assert_true(fabs(m1) < 5 * sqrt(1 / N));
  assert_true(fabs(m2 - 1) < 5 * sqrt(2 / N));
  assert_true(fabs(m3) < 5 * sqrt(15 / N));
  assert_true(fabs(m4 - 3) < 5 * sqrt(96 / N));
  assert_true(fabs(pair) < 5 * sqrt(2 / N));
  free(z);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Kolmogorov-Smirnov distance of sorted x (n) from the CDF F. */
static double ks_distance(size_t n, double *x, double (*F)(double)) {
  qsort(x, n, sizeof *x, cmp_double);
  double D = 0;
  for (size_t i = 0; i < n; i++) {
    double f = F(x[i]);
    double lo = f - (double)i / n, hi = (double)(i + 1) / n - f;
    if (lo > D) D = lo;
    if (hi > D) D = hi;
  }
  return D;
}

static double normal_cdf(double x) {
  return 0.5 * erfc(-x / sqrt(2.0));
}

static double uniform_cdf(double x) {
  return x;
}

/* Uniforms lie in (0, 1) with mean 1/2 (sigma = sqrt(1/(12 N)), N = 10^6);
 * KS distances of 10^5 uniforms and of 10^5 normals from their laws stay
 * below 1.95/sqrt(n), the 0.1 % critical value (the seeds are fixed, so
 * this is a deterministic check that the transform is not grossly wrong). */
static void test_uniforms_range_and_ks(void **state) {
  (void)state;
  double *u = malloc(NMC * sizeof *u);
  rng_uniforms(77, RNG_PURPOSE_LABEL, 0, 0, NMC, u);
  double mean = 0;
  for (size_t k = 0; k < NMC; k++) {
    assert_true(u[k] > 0 && u[k] < 1);
    mean += u[k];
  }
  mean /= NMC;
  assert_true(fabs(mean - 0.5) < 5 * sqrt(1.0 / (12.0 * NMC)));
  enum { NKS = 100000 };
  assert_true(ks_distance(NKS, u, uniform_cdf) < 1.95 / sqrt(NKS));
  rng_normals(77, RNG_PURPOSE_STEP, 3, 9, NKS, u);
  assert_true(ks_distance(NKS, u, normal_cdf) < 1.95 / sqrt(NKS));
  free(u);
}

/* A chi-square test of the normals' tails, where a wrong ln would show:
 * counts in |z| bins edged at 0, 1, 2, 3, 4, inf for N = 10^6, against the
 * exact probabilities; chi2 with 4 degrees of freedom stays below 18.5
 * (p = 0.001). */
static void test_normal_tails_chi2(void **state) {
  (void)state;
  double *z = malloc(NMC * sizeof *z);
  rng_normals(5, RNG_PURPOSE_INIT, 0, 0, NMC, z);
  double edges[] = {0, 1, 2, 3, 4, INFINITY};
  double count[5] = {0};
  for (size_t k = 0; k < NMC; k++) {
    double a = fabs(z[k]);
    int b = a < 1 ? 0 : a < 2 ? 1 : a < 3 ? 2 : a < 4 ? 3 : 4;
    count[b] += 1;
  }
  double chi2 = 0;
  for (int b = 0; b < 5; b++) {
    double p = erfc(edges[b] / sqrt(2.0)) - erfc(edges[b + 1] / sqrt(2.0));
    double e = p * NMC;
    chi2 += (count[b] - e) * (count[b] - e) / e;
  }
  assert_true(chi2 < 18.5);
  free(z);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_philox_known_answers),
      cmocka_unit_test(test_uniforms_follow_documented_layout),
      cmocka_unit_test(test_normals_match_libm_box_muller),
      cmocka_unit_test(test_determinism_and_prefix),
      cmocka_unit_test(test_addresses_are_distinct),
      cmocka_unit_test(test_normal_moments),
      cmocka_unit_test(test_uniforms_range_and_ks),
      cmocka_unit_test(test_normal_tails_chi2),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
