/* Protocols (protocol.c): the state-row and final-record layouts, the
 * snapping of protocol times to the time grid, and the estimators with
 * their jackknife errors on block sums written out by hand.  The physics of
 * the protocols is checked end to end by tests/check_protocols.sh. */
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
#include "core/protocol.h"

enum { STEPS = 100 };

static void load(nrd_params *p, int n, char **over) {
  char err[512] = "";
  params_init_defaults(p);
  assert_int_equal(params_load(p, NULL, n, over, err, sizeof err), NRD_OK);
}

static void test_layout_all_protocols(void **state) {
  (void)state;
  char *over[] = {
      "experiment.protocol=[generate, speciation, collapse, uturn, forward]",
      "experiment.branch_times=[1.01, 2]", "experiment.uturn_times=[0.5]",
      "grid.n_train=[10]", "time.T=10", "time.steps=100"};
  nrd_params p;
  load(&p, 6, over);
  double t[STEPS + 1];
  assert_int_equal(timegrid_build(SPACING_UNIFORM, 10, 0, STEPS, t), NRD_OK);
  grid_point g = {.dimension = 3, .n_train = 10};
  proto_layout X;
  assert_int_equal(proto_layout_init(&X, &p, &g, 2, t, STEPS), NRD_OK);
  assert_true(X.speciation && X.collapse && X.uturn && X.forward);
  /* grid step 0.1: 1.01 snaps to 1.0 (step 90), 2 to step 80 */
  assert_int_equal(X.branch_step[0], 90);
  assert_true(fabs(X.branch_time[0] - 1.0) < 1e-12);
  assert_int_equal(X.branch_step[1], 80);
  assert_int_equal(X.uturn_step[0], 95);
  /* no reference times given: s = t_min, the last grid index */
  assert_int_equal(X.n_ref, 1);
  assert_int_equal(X.ref_step[0], STEPS);
  /* state row: position 3, clones 2 x 3, U-turn 3, forward 2 x 3,
   * references 2 x 3, freezing 2 */
  assert_int_equal(X.off_clone, 3);
  assert_int_equal(X.off_uturn, 9);
  assert_int_equal(X.off_fwd, 12);
  assert_int_equal(X.off_ref, 18);
  assert_int_equal(X.off_freeze, 24);
  assert_int_equal(X.width, 26);
  /* final record: count, 2 class agreements, 2 nearest agreements,
   * 2 freezing sums, one U-turn of 3 + 4 K */
  assert_int_equal(X.f_class, 1);
  assert_int_equal(X.f_nearest, 3);
  assert_int_equal(X.f_freeze, 5);
  assert_int_equal(X.f_uturn, 7);
  assert_int_equal(X.final_width, 18);
  obs_layout L;
  double means[6] = {1, 0, 0, -1, 0, 0};
  assert_int_equal(obs_layout_init(&L, 3, 2, means, 1), NRD_OK);
  int before = L.record;
  proto_layout_observables(&X, &L);
  assert_int_equal(L.width[OBS_LOG_PE], 1);
  assert_int_equal(L.width[OBS_FWD_DATA_CORR], 2);
  assert_int_equal(L.width[OBS_FINAL], 18);
  assert_int_equal(L.record, before + 1 + 1 + 2 + 1 + 2 + 18);
  obs_layout_free(&L);
  proto_layout_free(&X);
  params_free(&p);
}

static void test_layout_inactive(void **state) {
  (void)state;
  /* collapse is a no-op at a point with the exact mixture score, and the
   * default (generate) carries nothing */
  char *over[] = {"experiment.protocol=[generate]"};
  nrd_params p;
  load(&p, 1, over);
  double t[STEPS + 1];
  timegrid_build(SPACING_UNIFORM, 10, 0, STEPS, t);
  grid_point g = {.dimension = 4, .n_train = 0};
  proto_layout X;
  assert_int_equal(proto_layout_init(&X, &p, &g, 2, t, STEPS), NRD_OK);
  assert_false(X.speciation || X.collapse || X.uturn || X.forward);
  assert_int_equal(X.width, 4);
  obs_layout L;
  double means[8] = {0};
  obs_layout_init(&L, 4, 2, means, 0);
  int before = L.record;
  proto_layout_observables(&X, &L);
  assert_int_equal(L.record, before);
  obs_layout_free(&L);
  proto_layout_free(&X);
  params_free(&p);
}

/* Jackknife of a ratio of sums over blocks, written out. */
static void jackknife_ratio(int B, const double *a, const double *n,
                            double *value, double *err) {
  double A = 0, N = 0, mean = 0, ss = 0, loo[8];
  for (int b = 0; b < B; b++)
    A += a[b], N += n[b];
  for (int b = 0; b < B; b++)
    mean += (loo[b] = (A - a[b]) / (N - n[b])) / B;
  for (int b = 0; b < B; b++)
    ss += (loo[b] - mean) * (loo[b] - mean);
  *value = A / N;
  *err = sqrt(ss * (B - 1) / B);
}

static void test_results_from_block_sums(void **state) {
  (void)state;
  char *over[] = {"experiment.protocol=[speciation, uturn]",
                  "experiment.branch_times=[1]", "experiment.uturn_times=[2]",
                  "time.T=10", "time.steps=100", "output.every=50"};
  nrd_params p;
  load(&p, 6, over);
  double t[STEPS + 1];
  timegrid_build(SPACING_UNIFORM, 10, 0, STEPS, t);
  grid_point g = {.dimension = 2, .n_train = 0};
  proto_layout X;
  assert_int_equal(proto_layout_init(&X, &p, &g, 2, t, STEPS), NRD_OK);
  obs_layout L;
  double means[4] = {1, 0, -1, 0};
  obs_layout_init(&L, 2, 2, means, 0);
  proto_layout_observables(&X, &L);
  enum { B = 4, NOUT = 3 };
  double out_time[NOUT] = {10, 5, 0};
  double *blocks = calloc((size_t)NOUT * B * L.record, sizeof *blocks);
  double agree[B] = {7, 9, 6, 10}, count[B] = {10, 10, 10, 10};
  double r[B] = {5.5, 6, 4, 7}, xy[B] = {20, 30, 25, 10}, xx[B] = {40, 50, 45, 30};
  int fo = L.offset[OBS_FINAL];
  for (int b = 0; b < B; b++) {
    double *f = blocks + ((size_t)(NOUT - 1) * B + b) * L.record + fo;
    f[X.f_count] = count[b];
    f[X.f_class] = agree[b];
    double *u = f + X.f_uturn;
    u[0] = r[b], u[1] = xy[b], u[2] = xx[b];
    u[3] = count[b], u[4] = r[b], u[5] = xy[b], u[6] = xx[b]; /* class 0 */
  }
  proto_theory th;
  memset(&th, 0, sizeof th);
  double phi_th = 0.75, g1 = 0.4, g2 = NAN;
  th.phi = &phi_th;
  th.cut_gauss = &g1;
  th.cut_gm2 = &g2;
  proto_results res;
  proto_results_build(&res, &X, &th, &L, NOUT, out_time, B, blocks);
  double v, e;
  const proto_dataset *ds = NULL;
  for (int i = 0; i < res.n; i++) {
    ds = &res.v[i];
    if (!strcmp(ds->name, "phi_clone")) {
      jackknife_ratio(B, agree, count, &v, &e);
      assert_true(fabs(ds->data[0] - v) < 1e-15 && v == 32.0 / 40);
      assert_true(fabs(res.v[i + 1].data[0] - e) < 1e-15 && e > 0);
    }
    if (!strcmp(ds->name, "phi_theory")) assert_true(ds->data[0] == 0.75);
    if (!strcmp(ds->name, "c_uturn")) {
      jackknife_ratio(B, r, count, &v, &e);
      assert_true(fabs(ds->data[0] - v) < 1e-15);
      assert_true(fabs(res.v[i + 1].data[0] - e) < 1e-15);
    }
    if (!strcmp(ds->name, "c_uturn_ratio")) {
      jackknife_ratio(B, xy, xx, &v, &e);
      assert_true(fabs(ds->data[0] - v) < 1e-15 && v == 85.0 / 165);
      assert_true(fabs(res.v[i + 1].data[0] - e) < 1e-15);
    }
    if (!strcmp(ds->name, "class_count")) {
      assert_int_equal(ds->rank, 2);
      assert_true(ds->data[0] == 40 && ds->data[1] == 0);
    }
    if (!strcmp(ds->name, "theory_gaussian")) assert_true(ds->data[0] == 0.4);
  }
  /* without data (the other ranks): the same datasets, no values */
  proto_results bare;
  proto_results_build(&bare, &X, NULL, &L, NOUT, out_time, B, NULL);
  assert_int_equal(bare.n, res.n);
  for (int i = 0; i < bare.n; i++) {
    assert_null(bare.v[i].data);
    assert_string_equal(bare.v[i].name, res.v[i].name);
    assert_true(bare.v[i].dims[0] == res.v[i].dims[0]);
  }
  proto_results_free(&bare);
  proto_results_free(&res);
  free(blocks);
  obs_layout_free(&L);
  proto_layout_free(&X);
  params_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_layout_all_protocols),
      cmocka_unit_test(test_layout_inactive),
      cmocka_unit_test(test_results_from_block_sums),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
