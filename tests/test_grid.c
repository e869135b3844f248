/* Run plan (grid.c): cartesian product order, blocks independent of the
 * rank count, cost estimates that grow with the problem. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "nrdiff/error.h"
#include "nrdiff/grid.h"
#include "nrdiff/params.h"

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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_product_order),
      cmocka_unit_test(test_blocks),
      cmocka_unit_test(test_costs_grow),
  };
  return cmocka_run_group_tests_name("grid", tests, NULL, NULL);
}
