/* Observables (observe.c): the record layout of doc/file-format.md and the
 * per-block sums, against sums written out by hand for a few particles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "core/observe.h"

/* d = 2, two classes +-(3, 4): unit directions +-(0.6, 0.8). */
static const double MEANS[4] = {3, 4, -3, -4};

static void test_layout(void **state) {
  (void)state;
  obs_layout L;
  assert_int_equal(obs_layout_init(&L, 2, 2, MEANS, 0), NRD_OK);
  /* mixture score: phi and histogram, no Y2 */
  assert_int_equal(L.width[OBS_POSITION], 2);
  assert_int_equal(L.width[OBS_PROJECTION], 2);
  assert_int_equal(L.width[OBS_SPECIATION_PHI], 1);
  assert_int_equal(L.width[OBS_COMMITMENT_HIST], OBS_HIST_BINS);
  assert_int_equal(L.width[OBS_PARTICIPATION_Y2], 0);
  int total = 0;
  for (int o = 0; o < OBS_N; o++) {
    assert_int_equal(L.offset[o], total);
    total += L.width[o];
    assert_non_null(obs_describe(o));
  }
  assert_int_equal(L.record, total);
  assert_true(fabs(L.dirs[0] - 0.6) < 1e-15 && fabs(L.dirs[3] + 0.8) < 1e-15);
  obs_layout_free(&L);
  assert_int_equal(obs_layout_init(&L, 2, 2, MEANS, 1), NRD_OK);
  assert_int_equal(L.width[OBS_SPECIATION_PHI], 0);
  assert_int_equal(L.width[OBS_COMMITMENT_HIST], 0);
  assert_int_equal(L.width[OBS_PARTICIPATION_Y2], 1);
  obs_layout_free(&L);
  assert_null(obs_describe(OBS_N));
}

/* Two particles, mixture score: every sum by hand (exact in binary, 1e-15). */
static void test_mixture_sums(void **state) {
  (void)state;
  obs_layout L;
  assert_int_equal(obs_layout_init(&L, 2, 2, MEANS, 0), NRD_OK);
  const double Y[4] = {1, 2, -0.5, 0.25}, S[4] = {0.5, -1, 2, 0};
  const double resp[4] = {0.75, 0.25, 0.5, 0.5};
  double *rec = calloc((size_t)L.record, sizeof *rec);
  obs_accumulate(&L, 2, Y, S, resp, NULL, 1, rec);
  assert_true(rec[L.offset[OBS_COUNT]] == 2);
  assert_true(rec[L.offset[OBS_POSITION]] == 0.5);
  assert_true(rec[L.offset[OBS_POSITION] + 1] == 2.25);
  assert_true(rec[L.offset[OBS_NORM2]] == 5 + 0.3125);
  assert_true(rec[L.offset[OBS_SCORE_NORM2]] == 1.25 + 4);
  /* u . y = 0.6 + 1.6 = 2.2 and -0.3 + 0.2 = -0.1 */
  assert_true(fabs(rec[L.offset[OBS_PROJECTION]] - 2.1) < 1e-15);
  assert_true(fabs(rec[L.offset[OBS_PROJECTION] + 1] + 2.1) < 1e-15);
  assert_true(fabs(rec[L.offset[OBS_PROJECTION2]] - 4.85) < 1e-14);
  assert_true(rec[L.offset[OBS_SPECIATION_PHI]] == 0.625 + 0.5);
  /* commitment (2 max r - 1): 0.5 -> bin 10, 0 -> bin 0 */
  const double *h = rec + L.offset[OBS_COMMITMENT_HIST];
  for (int j = 0; j < OBS_HIST_BINS; j++)
    assert_true(h[j] == (j == 10 || j == 0 ? 1 : 0));
  /* full commitment goes to the last bin, not past it */
  const double full[2] = {1, 0};
  obs_accumulate(&L, 1, Y, S, full, NULL, 1, rec);
  assert_true(h[OBS_HIST_BINS - 1] == 1);
  free(rec);
  obs_layout_free(&L);
}

/* Empirical score: Y2 summed; a singular score makes the score observables
 * NaN but keeps the positions. */
static void test_empirical_and_singular(void **state) {
  (void)state;
  obs_layout L;
  assert_int_equal(obs_layout_init(&L, 2, 2, MEANS, 1), NRD_OK);
  const double Y[4] = {1, 2, -0.5, 0.25}, S[4] = {0};
  const double y2[2] = {0.25, 0.5};
  double *rec = calloc((size_t)L.record, sizeof *rec);
  obs_accumulate(&L, 2, Y, S, NULL, y2, 1, rec);
  assert_true(rec[L.offset[OBS_PARTICIPATION_Y2]] == 0.75);
  obs_accumulate(&L, 2, Y, S, NULL, y2, 0, rec);
  assert_true(isnan(rec[L.offset[OBS_PARTICIPATION_Y2]]));
  assert_true(isnan(rec[L.offset[OBS_SCORE_NORM2]]));
  assert_true(rec[L.offset[OBS_COUNT]] == 4);
  assert_true(rec[L.offset[OBS_POSITION]] == 1);
  free(rec);
  obs_layout_free(&L);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_layout),
      cmocka_unit_test(test_mixture_sums),
      cmocka_unit_test(test_empirical_and_singular),
  };
  return cmocka_run_group_tests_name("observe", tests, NULL, NULL);
}
