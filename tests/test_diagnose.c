/* Unit tests of the physics checks (diagnose.h): the no-op warnings, and
 * the linearised step against closed forms. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/diagnose.h"
#include "util/error.h"
#include "config/params.h"

/* |a - b| <= tol, relative to max(1, |b|) */
#define assert_double_equal(a, b, tol)                                       \
  assert_true(fabs((double)(a) - (double)(b)) <=                             \
              (tol) * fmax(1.0, fabs((double)(b))))

static void no_op_warnings(void **state) {
  (void)state;
  nrd_params p;
  assert_int_equal(params_init_defaults(&p), NRD_OK);
  char *s = diagnose_parameters(&p); /* g = 0 only: nothing to say */
  assert_string_equal(s, "");
  free(s);
  p.grid.strength.v[0] = 1.0; /* q: none */
  s = diagnose_parameters(&p);
  assert_non_null(strstr(s, "grid.strength has no effect"));
  free(s);
  p.forward.q = Q_RANDOM; /* u: isotropic */
  s = diagnose_parameters(&p);
  assert_non_null(strstr(s, "forward.q changes no transition"));
  free(s);
  p.forward.u = U_GEOMETRIC; /* u_min 1, u_max 4 */
  s = diagnose_parameters(&p);
  assert_string_equal(s, "");
  free(s);
  p.forward.u_max = p.forward.u_min; /* a geometric spectrum of one value */
  s = diagnose_parameters(&p);
  assert_non_null(strstr(s, "changes no transition"));
  free(s);
  params_free(&p);
}

/* d = 2 operator: U (row-major), Qhat = [[0,1],[-1,0]] times g. */
static void op2(ou_op *op, const double U[4], double g) {
  const double Q[4] = {0, 1, -1, 0};
  assert_int_equal(ou_init(op, 2, U, Q, g), NRD_OK);
}

/* One mode u: Euler's chain y <- (1 - hu) y + sqrt(2h) xi has variance
 * 2h / (1 - (1-hu)^2) = (1/u) / (1 - hu/2); the exponential scheme's,
 * for A = I, (e^h + 1) / (3 - e^h). */
static void diagonal_closed_forms(void **state) {
  (void)state;
  double u = 4, h = 0.1;
  step_check c;
  diagnose_diagonal(1, &u, SCHEME_EULER, h, &c);
  assert_true(c.checked);
  assert_double_equal(c.amplification, 0.6, 1e-15);
  assert_double_equal(c.bias, h * u / (2 - h * u), 1e-14);
  double one = 1;
  diagnose_diagonal(1, &one, SCHEME_EXPONENTIAL, h, &c);
  assert_double_equal(c.bias, (exp(h) + 1) / (3 - exp(h)) - 1, 1e-13);
  diagnose_diagonal(1, &one, SCHEME_EXPONENTIAL, 1.2, &c); /* e^h > 3 */
  assert_true(c.amplification > 1);
  diagnose_diagonal(1, &u, SCHEME_EULER, 0.6, &c); /* |1 - 2.4| */
  assert_double_equal(c.amplification, 1.4, 1e-15);
  assert_true(isinf(c.bias));
}

/* The dense path (eigenvalues, the chain's Lyapunov equation by doubling)
 * on U = R diag(1, 4) R^T without Q equals the diagonal closed form. */
static void dense_equals_diagonal(void **state) {
  (void)state;
  double a = 0.3, c0 = cos(a), s0 = sin(a);
  double U[4] = {c0 * c0 + 4 * s0 * s0, (1 - 4) * c0 * s0,
                 (1 - 4) * c0 * s0, s0 * s0 + 4 * c0 * c0};
  double w[2] = {1, 4};
  for (int scheme = SCHEME_EULER; scheme <= SCHEME_EXPONENTIAL; scheme++) {
    ou_op op;
    op2(&op, U, 0.0);
    step_check dense, diag;
    assert_int_equal(diagnose_operator(&op, scheme, 0.05, 100, &dense),
                     NRD_OK);
    diagnose_diagonal(2, w, scheme, 0.05, &diag);
    assert_true(dense.checked && !dense.estimated && !dense.commuting);
    assert_double_equal(dense.rho, 4, 1e-12);
    assert_double_equal(dense.amplification, diag.amplification, 1e-12);
    assert_double_equal(dense.bias, diag.bias, 1e-10);
    ou_free(&op);
  }
}

/* U = I with rotation: sigma(A) = 1 +- i g, Euler's step 1 - h(1 +- ig);
 * Heun's flow part g Qhat, eigenvalues +-ig, |1 + z + z^2/2| for z = ihg;
 * [Q, U] = 0 here, not for U = diag(1, 4). */
static void rotation(void **state) {
  (void)state;
  const double I[4] = {1, 0, 0, 1}, D[4] = {1, 0, 0, 4};
  double g = 3, h = 0.2;
  ou_op op;
  op2(&op, I, g);
  step_check c;
  assert_int_equal(diagnose_operator(&op, SCHEME_EULER, h, 50, &c), NRD_OK);
  assert_double_equal(c.rho, hypot(1, g), 1e-12);
  assert_double_equal(c.amplification, hypot(1 - h, h * g), 1e-12);
  assert_true(c.commuting);
  assert_int_equal(diagnose_operator(&op, SCHEME_ODE_HEUN, h, 50, &c),
                   NRD_OK);
  double z2 = h * g * h * g;
  assert_double_equal(c.amplification, sqrt(1 + z2 * z2 / 4), 1e-12);
  assert_double_equal(c.bias, pow(1 + z2 * z2 / 4, 50) - 1, 1e-9);
  ou_free(&op);
  op2(&op, D, g);
  assert_int_equal(diagnose_operator(&op, SCHEME_EULER, h, 50, &c), NRD_OK);
  assert_false(c.commuting);
  ou_free(&op);
}

/* The text: unstable and biased points listed once, with ranges. */
static void summary_text(void **state) {
  (void)state;
  nrd_params p;
  assert_int_equal(params_init_defaults(&p), NRD_OK);
  step_check c[5];
  memset(c, 0, sizeof c);
  double u = 1;
  for (int i = 0; i < 5; i++)
    diagnose_diagonal(1, &u, SCHEME_EULER, i < 2 ? 0.001 : i < 4 ? 0.1 : 3.0,
                      &c[i]);
  char *s = diagnose_summary_text(c, 5, &p);
  assert_non_null(strstr(s, "grid point(s) 4: the euler scheme is unstable"));
  assert_non_null(strstr(s, "grid point(s) 2-3: the euler scheme is biased"));
  assert_null(strstr(s, "grid point(s) 0"));
  free(s);
  params_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(no_op_warnings),
      cmocka_unit_test(diagonal_closed_forms),
      cmocka_unit_test(dense_equals_diagonal),
      cmocka_unit_test(rotation),
      cmocka_unit_test(summary_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
