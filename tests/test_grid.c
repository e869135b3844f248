/* Run plan (grid.c): cartesian product order, blocks independent of the
 * rank count, cost estimates that grow with the problem. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "util/error.h"
#include "core/grid.h"
#include "config/params.h"

static void set_axes(nrd_params *p) {
  char err[512];
  char *over[] = {"grid.dimension=[2, 8]", "grid.separation=[1, 4, 9]",
                  "grid.strength=[0, 0.5]", "grid.n_train=[0, 100]",
                  "ensemble.particles=1001", "ensemble.block_size=100"};
  assert_int_equal(params_load(p, NULL, 6, over, err, sizeof err), NRD_OK);
}

static void test_product_order(void **state) {
  (void)state;
  nrd_params p;
  params_init_defaults(&p);
  set_axes(&p);
  run_plan plan;
  assert_int_equal(plan_build(&p, &plan), NRD_OK);
  assert_int_equal(plan.n_points, 2 * 3 * 2 * 2);
  /* n_train varies fastest, dimension slowest */
  assert_int_equal(plan.points[0].dimension, 2);
  assert_int_equal(plan.points[1].n_train, 100);
  assert_true(plan.points[2].strength == 0.5);
  assert_true(plan.points[4].separation == 4);
  assert_int_equal(plan.points[12].dimension, 8);
  for (int i = 0; i < plan.n_points; i++)
    assert_int_equal(plan.points[i].index, i);
  /* index = ((i_d * n_sep + i_sep) * n_g + i_g) * n_n + i_n */
  const grid_point *g = &plan.points[((1 * 3 + 2) * 2 + 1) * 2 + 0];
  assert_true(g->dimension == 8 && g->separation == 9 && g->strength == 0.5 &&
              g->n_train == 0);
  plan_free(&plan);
  params_free(&p);
}

static void test_blocks(void **state) {
  (void)state;
  nrd_params p;
  params_init_defaults(&p);
  set_axes(&p);
  run_plan plan;
  assert_int_equal(plan_build(&p, &plan), NRD_OK);
  assert_int_equal(plan.n_blocks, 11);
  long total = 0;
  for (long b = 0; b < plan.n_blocks; b++) {
    long first, count;
    plan_block_range(&plan, b, &first, &count);
    assert_int_equal(first, total);
    total += count;
  }
  assert_int_equal(total, 1001);
  long first, count;
  plan_block_range(&plan, 10, &first, &count);
  assert_int_equal(count, 1);
  plan_free(&plan);
  params_free(&p);
}

static void test_costs_grow(void **state) {
  (void)state;
  nrd_params p;
  params_init_defaults(&p);
  set_axes(&p);
  run_plan plan;
  assert_int_equal(plan_build(&p, &plan), NRD_OK);
  /* larger d and n cost more time and memory */
  assert_true(plan.flops[12] > plan.flops[0]);
  assert_true(plan.bytes[12] > plan.bytes[0]);
  assert_true(plan.flops[1] > plan.flops[0]);
  assert_true(plan.bytes[1] > plan.bytes[0]);
  plan_free(&plan);
  params_free(&p);
}

/* plan_assign: every selected block has exactly one owner in [0, nranks),
 * every load is within one work item of the fair share (grid.h), one rank
 * gets everything, and only_point leaves the other points unowned. */
static void test_assign(void **state) {
  (void)state;
  nrd_params p;
  params_init_defaults(&p);
  set_axes(&p);
  run_plan plan;
  assert_int_equal(plan_build(&p, &plan), NRD_OK);
  long B = plan.n_blocks, n = (long)plan.n_points * B;
  int *owner = malloc((size_t)n * sizeof *owner);
  for (int nr = 1; nr <= 5; nr++) {
    double load[5], total = 0, biggest = 0;
    assert_int_equal(plan_assign(&plan, nr, -1, owner, load), NRD_OK);
    for (long k = 0; k < n; k++)
      assert_true(owner[k] >= 0 && owner[k] < nr);
    for (int i = 0; i < plan.n_points; i++) {
      total += plan.flops[i];
      biggest = fmax(biggest, plan.flops[i] * plan.block_size / plan.particles);
    }
    double lo = load[0], hi = load[0], sum = 0;
    for (int q = 0; q < nr; q++) {
      lo = fmin(lo, load[q]);
      hi = fmax(hi, load[q]);
      sum += load[q];
    }
    assert_true(fabs(sum - total) <= 1e-9 * total);
    assert_true(hi - lo <= 2 * biggest * (1 + 1e-12));
    for (int q = 0; q < nr; q++)
      assert_true(fabs(load[q] - total / nr) <= biggest * (1 + 1e-12));
  }
  assert_int_equal(plan_assign(&plan, 3, 2, owner, NULL), NRD_OK);
  for (int i = 0; i < plan.n_points; i++)
    for (long b = 0; b < B; b++)
      assert_true(i == 2 ? owner[i * B + b] >= 0 : owner[i * B + b] == -1);
  free(owner);
  plan_free(&plan);
  params_free(&p);
}

/* Number of ranks holding blocks of point i. */
static int holders(const run_plan *plan, const int *owner, int i, int nr) {
  int h = 0;
  for (int q = 0; q < nr; q++) {
    int holds = 0;
    for (long b = 0; b < plan->n_blocks; b++)
      holds |= owner[i * plan->n_blocks + b] == q;
    h += holds;
  }
  return h;
}

/* Equal points: 4 on 2 ranks go whole to one rank each (their per-time
 * work is not repeated); 3 on 2 ranks cannot, so every point is dealt over
 * both ranks (ranks step in lockstep: equal work per step). */
static void test_assign_whole_points(void **state) {
  (void)state;
  const char *strengths[] = {"grid.strength=[0, 0, 0, 0]",
                             "grid.strength=[0, 0, 0]"};
  for (int c = 0; c < 2; c++) {
    char err[512];
    char *over[] = {"grid.dimension=[8]", (char *)strengths[c],
                    "ensemble.particles=1000", "ensemble.block_size=100"};
    nrd_params p;
    params_init_defaults(&p);
    assert_int_equal(params_load(&p, NULL, 4, over, err, sizeof err), NRD_OK);
    run_plan plan;
    assert_int_equal(plan_build(&p, &plan), NRD_OK);
    int owner[4 * 10];
    double load[2];
    assert_int_equal(plan_assign(&plan, 2, -1, owner, load), NRD_OK);
    for (int i = 0; i < plan.n_points; i++)
      assert_int_equal(holders(&plan, owner, i, 2), c == 0 ? 1 : 2);
    assert_true(fabs(load[0] - load[1]) <= 1e-9 * load[0]);
    plan_free(&plan);
    params_free(&p);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_product_order),
      cmocka_unit_test(test_blocks),
      cmocka_unit_test(test_costs_grow),
      cmocka_unit_test(test_assign),
      cmocka_unit_test(test_assign_whole_points),
  };
  return cmocka_run_group_tests_name("grid", tests, NULL, NULL);
}
