/* Data sets from files, prepared for a run (core/dataset.c): the classes
 * kept and numbered, the seeded order (independent of what else is kept),
 * the normalisations, the classes' Gaussians against sums written out
 * here, and the refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config/params.h"
#include "core/dataset.h"
#include "util/error.h"

enum { N = 60, D = 3 };

/* Labels 5, 2, 9 in turn; point i = (i, 2 i + label, (i mod 7) - 3). */
static void raw_make(data_raw *r, int pixels) {
  memset(r, 0, sizeof *r);
  r->n = N;
  r->d = D;
  r->pixels = pixels;
  r->x = malloc(N * D * sizeof *r->x);
  r->label = malloc(N * sizeof *r->label);
  static const long L[3] = {5, 2, 9};
  for (int i = 0; i < N; i++) {
    r->label[i] = L[i % 3];
    r->x[i * D] = pixels ? (i * 4) % 256 : i;
    r->x[i * D + 1] = 2.0 * i + (double)r->label[i];
    r->x[i * D + 2] = (i % 7) - 3;
  }
}

static void test_classes_and_order(void **state) {
  (void)state;
  data_raw r;
  data_set all, sub;
  char err[256];
  raw_make(&r, 0);
  assert_int_equal(
      dataset_prepare(&all, &r, NULL, 0, NORMALIZE_NONE, 7, err, sizeof err),
      NRD_OK);
  assert_null(r.x); /* taken over */
  assert_int_equal(all.n, N);
  assert_int_equal(all.K, 3);
  /* every label, increasing */
  assert_int_equal(all.class_label[0], 2);
  assert_int_equal(all.class_label[1], 5);
  assert_int_equal(all.class_label[2], 9);
  for (int k = 0; k < 3; k++)
    assert_int_equal(all.class_count[k], N / 3);
  /* a permutation of the rows, not the identity, each point its row's */
  int seen[N] = {0}, moved = 0;
  for (long i = 0; i < all.n; i++) {
    long row = all.row[i];
    seen[row]++;
    moved += row != i;
    assert_true(all.x[i * D] == (double)row);
    static const long L[3] = {5, 2, 9};
    assert_int_equal(all.class_label[all.label[i]], L[row % 3]);
  }
  for (int i = 0; i < N; i++)
    assert_int_equal(seen[i], 1);
  assert_true(moved > N / 2);
  /* the subset [9, 5]: numbered in its order, its points in the same
   * relative order as among all */
  raw_make(&r, 0);
  long subset[2] = {9, 5};
  assert_int_equal(
      dataset_prepare(&sub, &r, subset, 2, NORMALIZE_NONE, 7, err, sizeof err),
      NRD_OK);
  assert_int_equal(sub.n, 2 * N / 3);
  assert_int_equal(sub.K, 2);
  assert_int_equal(sub.class_label[0], 9);
  long j = 0;
  for (long i = 0; i < all.n; i++) {
    if (all.row[i] % 3 == 1) continue; /* label 2: not kept */
    assert_int_equal(sub.row[j], all.row[i]);
    assert_int_equal(sub.label[j], all.row[i] % 3 == 2 ? 0 : 1);
    j++;
  }
  assert_int_equal(j, sub.n);
  /* another seed, another order; the same seed, the same bits */
  data_set other, again;
  raw_make(&r, 0);
  dataset_prepare(&other, &r, NULL, 0, NORMALIZE_NONE, 8, err, sizeof err);
  raw_make(&r, 0);
  dataset_prepare(&again, &r, NULL, 0, NORMALIZE_NONE, 7, err, sizeof err);
  assert_memory_not_equal(other.row, all.row, N * sizeof *all.row);
  assert_memory_equal(again.x, all.x, N * D * sizeof *all.x);
  assert_true(again.digest == all.digest && other.digest != all.digest);
  dataset_free(&all);
  dataset_free(&sub);
  dataset_free(&other);
  dataset_free(&again);
}

/* Pixels to [-1, 1]; centre: mean 0; standardise: mean 0 and mean
 * variance per coordinate 1; the pooled within-class covariance equals
 * sum_k pi_k Cov_k computed here from centred classes. */
static void test_normalise_and_gaussians(void **state) {
  (void)state;
  data_raw r;
  data_set s;
  char err[256];
  raw_make(&r, 1);
  assert_int_equal(
      dataset_prepare(&s, &r, NULL, 0, NORMALIZE_NONE, 1, err, sizeof err),
      NRD_OK);
  for (long i = 0; i < s.n; i++)
    assert_true(fabs(s.x[i * D] - ((s.row[i] * 4) % 256 / 127.5 - 1)) < 1e-15);
  dataset_free(&s);
  for (int mode = NORMALIZE_CENTER; mode <= NORMALIZE_STANDARDIZE; mode++) {
    raw_make(&r, 0);
    assert_int_equal(dataset_prepare(&s, &r, NULL, 0, mode, 1, err, sizeof err),
                     NRD_OK);
    double mean[D] = {0}, var = 0;
    for (long i = 0; i < s.n; i++)
      for (int c = 0; c < D; c++)
        mean[c] += s.x[i * D + c] / s.n;
    for (long i = 0; i < s.n; i++)
      for (int c = 0; c < D; c++)
        var += s.x[i * D + c] * s.x[i * D + c] / ((double)s.n * D);
    for (int c = 0; c < D; c++)
      assert_true(fabs(mean[c]) < 1e-12);
    if (mode == NORMALIZE_STANDARDIZE) {
      assert_true(fabs(var - 1) < 1e-12);
      assert_true(s.scale > 0 && s.scale < 1);
    }
    assert_true(s.mean_norm > 10);
    /* the Gaussians of the classes */
    double W[D * D] = {0};
    for (int k = 0; k < s.K; k++) {
      double mu[D] = {0};
      long nk = 0;
      for (long i = 0; i < s.n; i++)
        if (s.label[i] == k) {
          nk++;
          for (int c = 0; c < D; c++)
            mu[c] += s.x[i * D + c];
        }
      for (int c = 0; c < D; c++) {
        mu[c] /= nk;
        assert_true(fabs(mu[c] - s.means[k * D + c]) < 1e-12);
      }
      assert_true(fabs(s.weights[k] - (double)nk / s.n) < 1e-15);
      for (long i = 0; i < s.n; i++)
        if (s.label[i] == k)
          for (int a = 0; a < D; a++)
            for (int b = 0; b < D; b++)
              W[a * D + b] +=
                  (s.x[i * D + a] - mu[a]) * (s.x[i * D + b] - mu[b]) / s.n;
    }
    for (int ab = 0; ab < D * D; ab++)
      assert_true(fabs(W[ab] - s.within[ab]) < 1e-10 * (1 + fabs(W[ab])));
    dataset_free(&s);
  }
}

static void test_refusals(void **state) {
  (void)state;
  data_raw r;
  data_set s;
  char err[256];
  raw_make(&r, 0);
  r.x[4 * D + 2] = NAN;
  assert_int_equal(
      dataset_prepare(&s, &r, NULL, 0, NORMALIZE_NONE, 1, err, sizeof err),
      NRD_ERR_INPUT);
  assert_non_null(strstr(err, "row 4, coordinate 2 is nan"));
  assert_null(r.x); /* freed on failure too */
  nrd_error_reset();
  raw_make(&r, 0);
  long absent[2] = {5, 3};
  assert_int_equal(
      dataset_prepare(&s, &r, absent, 2, NORMALIZE_NONE, 1, err, sizeof err),
      NRD_ERR_INPUT);
  assert_non_null(strstr(err, "label 3 is not among the file's labels (2 to 9, "
                              "3 distinct)"));
  nrd_error_reset();
  /* unlabelled: one class, every point */
  raw_make(&r, 0);
  free(r.label);
  r.label = NULL;
  assert_int_equal(
      dataset_prepare(&s, &r, NULL, 0, NORMALIZE_NONE, 1, err, sizeof err),
      NRD_OK);
  assert_int_equal(s.K, 1);
  assert_null(s.label);
  assert_int_equal(s.class_count[0], N);
  dataset_free(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_classes_and_order),
      cmocka_unit_test(test_normalise_and_gaussians),
      cmocka_unit_test(test_refusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
