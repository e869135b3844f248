/* Grid-point physics (model.c) built from parameters: the forward operator
 * A = (I + g Qhat) U for every kind of U and Q, the class direction, the
 * mixture and the training set; matrices read from HDF5 files and the errors
 * of doing so; the time-dependent score model against direct calls of the
 * score module; and, through the integrator (integrate.c), the exact
 * negative control of doc/theory.md section 1.6 (isotropic U: Q changes
 * nothing rotation-covariant) with its positive control (anisotropic U,
 * doc/theory.md section 5.3: Q moves speciation).
 *
 * Tolerances: identities that hold in exact arithmetic are checked to a few
 * ulps times the size of the quantity (stated at each test); Monte Carlo
 * comparisons are seeded, state their sample size, and use 5 standard errors
 * measured from the per-particle spread. */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/error.h"
#include "core/grid.h"
#include "core/integrate.h"
#include "core/linalg.h"
#include "core/mixture.h"
#include "core/model.h"
#include "io/matrix_file.h"
#include "core/ou.h"
#include "config/params.h"
#include "core/rng.h"
#include "core/score.h"

#define ERRLEN 1024

static double max_abs(size_t n, const double *a) {
  double m = 0.0;
  for (size_t k = 0; k < n; k++) m = fmax(m, fabs(a[k]));
  return m;
}

static double max_diff(size_t n, const double *a, const double *b) {
  double m = 0.0;
  for (size_t k = 0; k < n; k++) m = fmax(m, fabs(a[k] - b[k]));
  return m;
}

/* Load the defaults plus "-P"-style overrides and build the model of grid
 * point `ip`.  Returns the first failing status (parameters or model) with
 * its message in err; the parameters must be valid unless allow_bad_params
 * (a missing file may legitimately be reported by either stage). */
static int try_build(model *m, int n, char **over, int ip, char *err,
                     int allow_bad_params) {
  nrd_params p;
  assert_int_equal(params_init_defaults(&p), NRD_OK);
  err[0] = '\0';
  int rc = params_load(&p, NULL, n, over, err, ERRLEN);
  if (rc != NRD_OK) {
    if (!allow_bad_params) print_message("params_load: %s\n", err);
    assert_true(allow_bad_params);
    params_free(&p);
    memset(m, 0, sizeof *m);
    return rc;
  }
  run_plan plan;
  assert_int_equal(plan_build(&p, &plan), NRD_OK);
  assert_true(ip >= 0 && ip < plan.n_points);
  rc = model_build(m, &p, &plan.points[ip], matrix_file_read, err, ERRLEN);
  plan_free(&plan);
  params_free(&p);
  return rc;
}

static void build_ok(model *m, int n, char **over, int ip) {
  char err[ERRLEN];
  int rc = try_build(m, n, over, ip, err, 0);
  if (rc != NRD_OK) print_message("model_build: %s\n", err);
  assert_int_equal(rc, NRD_OK);
}

/* ------------------------------------------------------------------ 1 */

/* doc/theory.md (1.1): A = (I + Q) U with Q = g Qhat (model.h).  For each
 * forward.u (isotropic / diagonal / geometric) and forward.q (none /
 * random / optimal) at d = 4, g = 0.7: U is the documented matrix, Qhat is
 * the right builder's output with the run seed and has its defining
 * property (random: antisymmetric with unit spectral norm; optimal, LNP
 * doc/theory.md (3.1): every eigenvalue of (I + Qhat)U has real part Tr U / d),
 * and A equals (I + g Qhat) U formed here by a plain product.  The model
 * forms A by another summation order (entrywise for diagonal U), so the
 * tolerance is 1e-14 relative to max|A| (a few ulps for d = 4 sums); the
 * LNP spectrum is checked to 1e-10 relative (eigenvalues of a non-normal
 * matrix: conditioning ~1e4 times eps). */
static void test_operator_from_params(void **state) {
  (void)state;
  const int d = 4;
  const double g = 0.7;
  const char *uk[] = {"forward.u=isotropic", "forward.u=diagonal",
                      "forward.u=geometric"};
  const char *qk[] = {"forward.q=none", "forward.q=random",
                      "forward.q=optimal"};
  double Uexp[3][16] = {{0}};
  const double diag[4] = {1, 4, 2, 0.5};
  for (int i = 0; i < d; i++) {
    Uexp[0][i * d + i] = 2.5;
    Uexp[1][i * d + i] = diag[i];
    Uexp[2][i * d + i] = 0.5 * pow(16.0, i / 3.0); /* 0.5 ... 8 geometric */
  }
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++) {
      char *over[] = {"grid.dimension=[4]",
                      "grid.strength=[0.7]",
                      "grid.n_train=[0]",
                      "run.seed=31",
                      (char *)uk[a],
                      (char *)qk[b],
                      "forward.u_scale=2.5",
                      "forward.u_diagonal=[1, 4, 2, 0.5]",
                      "forward.u_min=0.5",
                      "forward.u_max=8"};
      model m;
      build_ok(&m, 10, over, 0);
      assert_int_equal(m.d, d);
      assert_true(m.op.g == g);
      assert_true(max_diff(16, m.op.U, Uexp[a]) <= 1e-15 * 8);
      double Qexp[16] = {0}, A[16], IQ[16], re[4], im[4];
      if (b == 1) {
        assert_int_equal(ou_q_random(d, 31, Qexp), NRD_OK);
        double nrm;
        assert_int_equal(la_spectral_norm(d, m.op.Qhat, &nrm), NRD_OK);
        assert_true(fabs(nrm - 1.0) < 1e-13);
      } else if (b == 2) {
        assert_int_equal(ou_q_optimal(d, Uexp[a], NULL, Qexp), NRD_OK);
        for (int k = 0; k < 16; k++) IQ[k] = (k % 5 == 0) + m.op.Qhat[k];
        la_matmul(d, IQ, m.op.U, A);
        assert_int_equal(la_general_eigvals(d, A, re, im), NRD_OK);
        double tau = 0;
        for (int i = 0; i < d; i++) tau += m.op.U[i * d + i] / d;
        for (int i = 0; i < d; i++) assert_true(fabs(re[i] - tau) < 1e-10 * tau);
      }
      for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
          assert_true(fabs(m.op.Qhat[i * d + j] + m.op.Qhat[j * d + i]) <
                      1e-15);
      double qs = max_abs(16, Qexp);
      assert_true(max_diff(16, m.op.Qhat, Qexp) <= 1e-14 * (qs > 0 ? qs : 1));
      if (b == 0) assert_true(max_abs(16, m.op.Qhat) == 0.0);
      for (int k = 0; k < 16; k++) IQ[k] = (k % 5 == 0) + g * Qexp[k];
      la_matmul(d, IQ, Uexp[a], A);
      assert_true(max_diff(16, m.op.A, A) <= 1e-14 * max_abs(16, A));
      model_free(&m);
    }
}

/* The unit class direction (model.h, doc/theory.md section 4.1: "mu along
 * the slow direction"): ones = (1,..,1)/sqrt d; slowest / fastest = the
 * eigenvector of the smallest / largest eigenvalue of U, here for
 * U = diag(3, 1, 4, 2) so the answers are +-e_2 and +-e_3 (not simply the
 * first or last axis); random = a unit vector, reproducible for a seed and
 * different for another.  Exact up to the rounding of a normalisation:
 * 1e-14. */
static void test_class_direction(void **state) {
  (void)state;
  const char *dk[] = {"data.direction=ones", "data.direction=slowest",
                      "data.direction=fastest", "data.direction=random"};
  double vrand[3][4];
  for (int a = 0; a < 4; a++)
    for (int s = 0; s < (a == 3 ? 3 : 1); s++) {
      char seed[32];
      snprintf(seed, sizeof seed, "run.seed=%d", s < 2 ? 5 : 6);
      char *over[] = {"grid.dimension=[4]", "forward.u=diagonal",
                      "forward.u_diagonal=[3, 1, 4, 2]", "forward.q=none",
                      (char *)dk[a], seed};
      model m;
      build_ok(&m, 6, over, 0);
      const double *v = m.direction;
      double n2 = 0;
      for (int i = 0; i < 4; i++) n2 += v[i] * v[i];
      assert_true(fabs(n2 - 1.0) < 1e-14);
      if (a == 0)
        for (int i = 0; i < 4; i++) assert_true(fabs(v[i] - 0.5) < 1e-15);
      if (a == 1 || a == 2) {
        int axis = a == 1 ? 1 : 2;
        for (int i = 0; i < 4; i++)
          assert_true(fabs(fabs(v[i]) - (i == axis)) < 1e-14);
      }
      if (a == 3) memcpy(vrand[s], v, sizeof vrand[s]);
      model_free(&m);
    }
  /* random: same seed -> same vector, another seed -> another one */
  assert_true(memcmp(vrand[0], vrand[1], sizeof vrand[0]) == 0);
  assert_true(max_diff(4, vrand[0], vrand[2]) > 1e-3);
  assert_true(max_diff(4, vrand[0], (double[]){0.5, 0.5, 0.5, 0.5}) > 1e-3);
}

/* The two-class mixture (doc/theory.md sections 4.1 and 4.2):
 * |mu|^2 = separation * d, means +-mu along the class direction, weights
 * 1/2, and the covariance: stationary C = S = U^{-1} (here diag(1/u_i),
 * exact to rounding: 1e-15 relative), isotropic C = sigma^2 I. */
static void test_mixture_from_params(void **state) {
  (void)state;
  for (int cov = 0; cov < 2; cov++) {
    char *over[] = {"grid.dimension=[4]",
                    "grid.separation=[2.5]",
                    "forward.u=diagonal",
                    "forward.u_diagonal=[3, 1, 4, 2]",
                    "forward.q=random",
                    "grid.strength=[1]",
                    "data.classes=2",
                    "data.direction=random",
                    "data.sigma=0.5",
                    cov ? "data.covariance=isotropic"
                        : "data.covariance=stationary"};
    model m;
    build_ok(&m, 10, over, 0);
    const mixture *x = &m.mix;
    assert_int_equal(x->d, 4);
    assert_int_equal(x->K, 2);
    assert_true(x->symmetric2);
    assert_true(fabs(x->weights[0] - 0.5) < 1e-15 &&
                fabs(x->weights[1] - 0.5) < 1e-15);
    double n2 = 0;
    for (int i = 0; i < 4; i++) {
      n2 += x->means[i] * x->means[i];
      assert_true(fabs(x->means[i] + x->means[4 + i]) < 1e-15);
      assert_true(fabs(x->means[i] - sqrt(10.0) * m.direction[i]) < 1e-14);
    }
    assert_true(fabs(n2 - 2.5 * 4) < 1e-13);
    const double u[4] = {3, 1, 4, 2};
    for (int k = 0; k < 2; k++)
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
          double c = x->cov[(size_t)k * 16 + i * 4 + j];
          double want = i != j ? 0.0 : cov ? 0.25 : 1.0 / u[i];
          assert_true(fabs(c - want) <= 1e-15 * fabs(want) + 1e-300);
        }
    model_free(&m);
  }
}

/* n_train > 0 (doc/theory.md section 4.3): a training set of exactly n points
 * drawn from the mixture, reproducible bit for bit for the same run.seed
 * and different for another seed.  With |mu| = 10 and unit within-class
 * noise along mu (U = I, C = S), each point lies on its label's side:
 * sign(direction . a) = +1 for component 0 (P(wrong) = Phi(-10) ~ 1e-23). */
static void test_training_set(void **state) {
  (void)state;
  const long n = 200;
  double *a[3];
  int *lab[3];
  for (int s = 0; s < 3; s++) {
    char seed[32];
    snprintf(seed, sizeof seed, "run.seed=%d", s < 2 ? 11 : 12);
    char *over[] = {"grid.dimension=[4]", "grid.separation=[25]",
                    "grid.n_train=[0, 200]", "forward.u=isotropic",
                    "forward.u_scale=1", "forward.q=random",
                    "grid.strength=[0.5]", "data.covariance=stationary",
                    "data.direction=ones", seed};
    model m;
    build_ok(&m, 10, over, 1); /* grid point 1: n_train = 200 */
    assert_int_equal(m.n_train, n);
    assert_non_null(m.train);
    assert_non_null(m.train_label);
    a[s] = malloc((size_t)n * 4 * sizeof *a[s]);
    lab[s] = malloc((size_t)n * sizeof *lab[s]);
    memcpy(a[s], m.train, (size_t)n * 4 * sizeof *a[s]);
    memcpy(lab[s], m.train_label, (size_t)n * sizeof *lab[s]);
    int count[2] = {0, 0};
    for (long i = 0; i < n; i++) {
      int l = m.train_label[i];
      assert_true(l == 0 || l == 1);
      count[l]++;
      double proj = 0;
      for (int j = 0; j < 4; j++) proj += m.direction[j] * m.train[i * 4 + j];
      assert_true(l == 0 ? proj > 0 : proj < 0);
    }
    assert_true(count[0] > 0 && count[1] > 0);
    model_free(&m);
    /* grid point 0 of the same plan has no training set */
    build_ok(&m, 10, over, 0);
    assert_int_equal(m.n_train, 0);
    assert_null(m.train);
    model_free(&m);
  }
  assert_true(memcmp(a[0], a[1], (size_t)n * 4 * sizeof *a[0]) == 0);
  assert_true(memcmp(lab[0], lab[1], (size_t)n * sizeof *lab[0]) == 0);
  assert_true(max_diff((size_t)n * 4, a[0], a[2]) > 0.1);
  for (int s = 0; s < 3; s++) {
    free(a[s]);
    free(lab[s]);
  }
}

/* ------------------------------------------------------------------ 2 */

typedef struct {
  char dir[64];
  char file[128];
} tmpdir_state;

static void write_dataset(hid_t f, const char *name, int rank,
                          const hsize_t *dims, const double *data) {
  hid_t sp = H5Screate_simple(rank, dims, NULL);
  assert_true(sp >= 0);
  hid_t ds = H5Dcreate2(f, name, H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT,
                        H5P_DEFAULT, H5P_DEFAULT);
  assert_true(ds >= 0);
  assert_true(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                       data) >= 0);
  H5Dclose(ds);
  H5Sclose(sp);
}

static const double FILE_U[4] = {2, 1, 1, 2};      /* eig 1: (1,-1)/sqrt2 */
static const double FILE_Q[4] = {0, 0.5, -0.5, 0}; /* antisymmetric */

/* A fresh temporary directory with ops.h5: U (2x2 SPD, not diagonal),
 * Q (2x2 antisymmetric), U3 (3x3: wrong shape for d = 2), vec (rank 1). */
static int setup_h5(void **state) {
  tmpdir_state *s = calloc(1, sizeof *s);
  if (!s) return -1;
  snprintf(s->dir, sizeof s->dir, "/tmp/nrdiff-test-model-XXXXXX");
  if (!mkdtemp(s->dir)) {
    free(s);
    return -1;
  }
  snprintf(s->file, sizeof s->file, "%s/ops.h5", s->dir);
  hid_t f = H5Fcreate(s->file, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) return -1;
  hsize_t d2[2] = {2, 2}, d3[2] = {3, 3}, d1[1] = {4};
  double U3[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  write_dataset(f, "U", 2, d2, FILE_U);
  write_dataset(f, "Q", 2, d2, FILE_Q);
  write_dataset(f, "U3", 2, d3, U3);
  write_dataset(f, "vec", 1, d1, FILE_U);
  H5Fclose(f);
  *state = s;
  return 0;
}

static int teardown_h5(void **state) {
  tmpdir_state *s = *state;
  int rc = 0;
  if (unlink(s->file) != 0) rc = -1;
  if (rmdir(s->dir) != 0) rc = -1;
  free(s);
  return rc;
}

/* forward.u = file, forward.q = file (model.h): the matrices come back
 * exactly (HDF5 stores the doubles), A = (I + g Q) U (1e-14 relative, as
 * above), S = U^{-1} = [[2,-1],[-1,2]]/3 (1e-14), and the class direction
 * slowest / fastest is the eigenvector (1,-1)/sqrt2 / (1,1)/sqrt2 of the
 * non-diagonal U (1e-14). */
static void test_matrices_from_file(void **state) {
  tmpdir_state *s = *state;
  char uf[200], qf[200];
  snprintf(uf, sizeof uf, "forward.u_file=%s", s->file);
  snprintf(qf, sizeof qf, "forward.q_file=%s", s->file);
  for (int dir = 0; dir < 2; dir++) {
    char *over[] = {"grid.dimension=[2]",
                    "grid.strength=[1.5]",
                    "forward.u=file",
                    uf,
                    "forward.u_dataset=U",
                    "forward.q=file",
                    qf,
                    "forward.q_dataset=Q",
                    "data.covariance=stationary",
                    dir ? "data.direction=fastest" : "data.direction=slowest"};
    model m;
    build_ok(&m, 10, over, 0);
    assert_true(memcmp(m.op.U, FILE_U, sizeof FILE_U) == 0);
    assert_true(memcmp(m.op.Qhat, FILE_Q, sizeof FILE_Q) == 0);
    double IQ[4], A[4];
    for (int k = 0; k < 4; k++) IQ[k] = (k % 3 == 0) + 1.5 * FILE_Q[k];
    la_matmul(2, IQ, FILE_U, A);
    assert_true(max_diff(4, m.op.A, A) <= 1e-14 * max_abs(4, A));
    const double S[4] = {2.0 / 3, -1.0 / 3, -1.0 / 3, 2.0 / 3};
    assert_true(max_diff(4, m.op.S, S) < 1e-14);
    for (int k = 0; k < 2; k++)
      assert_true(max_diff(4, m.mix.cov + 4 * k, S) < 1e-14);
    double r = 1 / sqrt(2.0);
    double sgn = m.direction[0] > 0 ? 1 : -1;
    assert_true(fabs(sgn * m.direction[0] - r) < 1e-14);
    assert_true(fabs(sgn * m.direction[1] - (dir ? r : -r)) < 1e-14);
    model_free(&m);
  }
}

/* Errors of forward.u/q = file: a missing file, a missing dataset, a
 * dataset of the wrong shape (3x3 for d = 2, and rank 1), and a file matrix
 * that is not SPD all give a non-OK status and a message naming the key
 * (forward.u_file / forward.q_file) and the file. */
static void expect_file_error(const char *key, const char *file,
                              const char *dataset, const char *also) {
  char fkey[240], dkey[120], kind[40];
  int is_u = strcmp(key, "forward.u_file") == 0;
  snprintf(fkey, sizeof fkey, "%s=%s", key, file);
  snprintf(dkey, sizeof dkey, "forward.%c_dataset=%s", is_u ? 'u' : 'q',
           dataset);
  snprintf(kind, sizeof kind, "forward.%c=file", is_u ? 'u' : 'q');
  char *over[] = {"grid.dimension=[2]", "grid.strength=[1]", kind, fkey,
                  dkey};
  char err[ERRLEN];
  model m;
  int rc = try_build(&m, 5, over, 0, err, 1);
  print_message("%s=%s [%s]: %s\n", key, file, dataset, err);
  assert_int_not_equal(rc, NRD_OK);
  assert_non_null(strstr(err, key));
  assert_non_null(strstr(err, file));
  if (also) assert_non_null(strstr(err, also));
}

static void test_file_errors(void **state) {
  tmpdir_state *s = *state;
  char missing[200];
  snprintf(missing, sizeof missing, "%s/missing.h5", s->dir);
  expect_file_error("forward.u_file", missing, "U", NULL);
  expect_file_error("forward.q_file", missing, "Q", NULL);
  expect_file_error("forward.u_file", s->file, "nope", "nope");
  expect_file_error("forward.q_file", s->file, "nope", "nope");
  expect_file_error("forward.u_file", s->file, "U3", "U3");
  expect_file_error("forward.q_file", s->file, "U3", "U3");
  expect_file_error("forward.u_file", s->file, "vec", "vec");
  /* U read from the antisymmetric dataset is not SPD: invalid operator */
  char uf[200];
  snprintf(uf, sizeof uf, "forward.u_file=%s", s->file);
  char *over[] = {"grid.dimension=[2]", "forward.u=file", uf,
                  "forward.u_dataset=Q", "forward.q=none"};
  char err[ERRLEN];
  model m;
  int rc = try_build(&m, 5, over, 0, err, 0);
  print_message("non-SPD U: %s\n", err);
  assert_int_not_equal(rc, NRD_OK);
  assert_non_null(strstr(err, "SPD"));
}

/* ------------------------------------------------------------------ 3 */

/* score_model (model.h) is a thin layer over the score module: after
 * set_time(t) its E, Delta equal ou_propagator / ou_noise_cov (bitwise: the
 * same calls), and eval equals score_mixture / score_empirical built and set
 * directly (doc/theory.md sections 4.2, 4.3).  Mixture: same code path, 1e-14
 * relative.  Empirical: the direct instance uses another block size (16
 * against the model's), which reorders the log-sum-exp over blocks: 1e-12
 * relative.  The empirical score at t = 0 is singular (Delta_0 = 0):
 * NRD_ERR_NUMERIC, after which the model must still set a valid time. */
static void test_score_model_mixture(void **state) {
  (void)state;
  char *over[] = {"grid.dimension=[3]",         "grid.separation=[2]",
                  "grid.strength=[1.3]",        "forward.u=diagonal",
                  "forward.u_diagonal=[1, 2, 3]", "forward.q=random",
                  "data.covariance=stationary", "data.direction=random"};
  model m;
  build_ok(&m, 8, over, 0);
  enum { d = 3, P = 64 };
  double X[P * d], S1[P * d], S2[P * d], r1[P * 2], r2[P * 2], l1[P], l2[P];
  rng_normals(1, RNG_PURPOSE_INIT, 0, 0, (size_t)P * d, X);
  for (int k = 0; k < P * d; k++) X[k] *= 2;
  score_model sm;
  assert_int_equal(score_model_init(&sm, &m), NRD_OK);
  score_mixture dm;
  assert_int_equal(score_mixture_init(&dm, &m.mix), NRD_OK);
  size_t w1 = score_model_work_size(&sm, P), w2 = score_mixture_work_size(&dm, P);
  double *work = malloc((w1 > w2 ? w1 : w2) * sizeof *work);
  const double times[] = {0.7, 0.0, 3.0, 0.7};
  for (int it = 0; it < 4; it++) {
    double t = times[it], E[9], D[9];
    /* the stationary-covariance mixture has Gamma_t = S for all t, so t = 0
     * is regular */
    assert_int_equal(score_model_set_time(&sm, t), NRD_OK);
    assert_int_equal(ou_propagator(&m.op, t, E), NRD_OK);
    assert_int_equal(ou_noise_cov(&m.op, t, D), NRD_OK);
    assert_true(memcmp(sm.E, E, sizeof E) == 0);
    assert_true(memcmp(sm.Delta, D, sizeof D) == 0);
    assert_int_equal(score_mixture_set_time(&dm, E, D), NRD_OK);
    assert_int_equal(
        score_model_eval(&sm, P, X, S1, r1, l1, NULL, NULL, work), NRD_OK);
    assert_int_equal(score_mixture_eval(&dm, P, X, S2, r2, l2, work), NRD_OK);
    double sc = max_abs((size_t)P * d, S2);
    assert_true(max_diff((size_t)P * d, S1, S2) <= 1e-14 * sc);
    assert_true(max_diff((size_t)P * 2, r1, r2) <= 1e-14);
    assert_true(max_diff((size_t)P, l1, l2) <= 1e-14 * max_abs((size_t)P, l2));
    assert_true(fabs(sm.mixture.kappa - dm.kappa) <= 1e-14 * dm.kappa);
  }
  free(work);
  score_mixture_free(&dm);
  score_model_free(&sm);
  model_free(&m);
}

static void test_score_model_empirical(void **state) {
  (void)state;
  char *over[] = {"grid.dimension=[3]",         "grid.separation=[2]",
                  "grid.strength=[1.3]",        "grid.n_train=[40]",
                  "forward.u=diagonal",         "forward.u_diagonal=[1, 2, 3]",
                  "forward.q=random",           "data.covariance=stationary",
                  "data.direction=random"};
  model m;
  build_ok(&m, 9, over, 0);
  assert_int_equal(m.n_train, 40);
  enum { d = 3, P = 64, n = 40 };
  double X[P * d], S1[P * d], S2[P * d], l1[P], l2[P], y1[P], y2[P];
  int n1[P], n2[P];
  rng_normals(2, RNG_PURPOSE_INIT, 0, 0, (size_t)P * d, X);
  for (int k = 0; k < P * d; k++) X[k] *= 2;
  score_model sm;
  assert_int_equal(score_model_init(&sm, &m), NRD_OK);
  score_empirical de;
  assert_int_equal(score_empirical_init(&de, d, n, m.train, 16), NRD_OK);
  size_t w1 = score_model_work_size(&sm, P),
         w2 = score_empirical_work_size(&de, P);
  double *work = malloc((w1 > w2 ? w1 : w2) * sizeof *work);
  const double times[] = {0.7, 0.05, 2.0};
  for (int it = 0; it < 3; it++) {
    double t = times[it], E[9], D[9];
    assert_int_equal(score_model_set_time(&sm, t), NRD_OK);
    assert_int_equal(ou_propagator(&m.op, t, E), NRD_OK);
    assert_int_equal(ou_noise_cov(&m.op, t, D), NRD_OK);
    assert_true(memcmp(sm.E, E, sizeof E) == 0);
    assert_true(memcmp(sm.Delta, D, sizeof D) == 0);
    assert_int_equal(score_empirical_set_time(&de, E, D), NRD_OK);
    assert_int_equal(score_model_eval(&sm, P, X, S1, NULL, l1, y1, n1, work),
                     NRD_OK);
    assert_int_equal(score_empirical_eval(&de, P, X, S2, l2, y2, n2, work),
                     NRD_OK);
    double sc = max_abs((size_t)P * d, S2);
    assert_true(max_diff((size_t)P * d, S1, S2) <= 1e-12 * sc);
    assert_true(max_diff((size_t)P, l1, l2) <=
                1e-12 * max_abs((size_t)P, l2));
    assert_true(max_diff((size_t)P, y1, y2) <= 1e-12);
    assert_true(memcmp(n1, n2, sizeof n1) == 0);
  }
  /* t = 0: Delta_0 = 0, the empirical score is singular */
  assert_int_equal(score_model_set_time(&sm, 0.0), NRD_ERR_NUMERIC);
  /* ... and the model recovers: back to t = 2 (the last valid time) gives
   * the matrices of t = 2 and the same score as before */
  double E[9];
  assert_int_equal(score_model_set_time(&sm, 2.0), NRD_OK);
  assert_int_equal(ou_propagator(&m.op, 2.0, E), NRD_OK);
  assert_true(memcmp(sm.E, E, sizeof E) == 0);
  assert_int_equal(score_model_eval(&sm, P, X, S1, NULL, NULL, NULL, NULL,
                                    work),
                   NRD_OK);
  assert_true(max_diff((size_t)P * d, S1, S2) <=
              1e-12 * max_abs((size_t)P * d, S2));
  free(work);
  score_empirical_free(&de);
  score_model_free(&sm);
  model_free(&m);
}

/* ------------------------------------------------------------------ 4 */

/* F(kappa) = (1 + E_{w~N(kappa,kappa)} tanh w) / 2 (doc/theory.md (5.3)) by the
 * trapezoid rule over +-12 standard deviations (analytic integrand: the
 * rule converges geometrically; checked against F(1) = 0.7752002). */
static double F_kappa(double kappa) {
  const int n = 4800;
  double s = 0, sd = sqrt(kappa), h = 24.0 / n;
  for (int i = 0; i <= n; i++) {
    double z = -12 + i * h, wgt = (i == 0 || i == n) ? 0.5 : 1.0;
    s += wgt * exp(-0.5 * z * z) * tanh(kappa + sd * z);
  }
  return 0.5 * (1 + s * h / sqrt(2 * 3.14159265358979323846));
}

/* Run the reverse SDE (exponential scheme, scores from score_model) for P
 * particles from N(0, S) at t[0] down the grid t[0..steps]; at the grid
 * indices kobs[0..nobs) record the clone-free speciation estimator
 * phi = E[sum_k r_k^2] (doc/theory.md (5.14)) and its standard error from the
 * per-particle spread.  Noise: Philox(noise_seed), independent per run. */
static void run_phi(const model *m, uint32_t noise_seed, int P,
                    const double *t, long steps, int nobs, const long *kobs,
                    double *phi, double *err) {
  int d = m->d, K = m->mix.K;
  size_t n = (size_t)P * d;
  double *Y = malloc(n * sizeof *Y), *S = malloc(n * sizeof *S);
  double *Xi = malloc(n * sizeof *Xi), *tmp = malloc(n * sizeof *tmp);
  double *resp = malloc((size_t)P * K * sizeof *resp);
  double *L = malloc((size_t)d * d * sizeof *L);
  assert_true(Y && S && Xi && tmp && resp && L);
  assert_int_equal(la_cholesky(d, m->op.S, L), NRD_OK);
  rng_normals(noise_seed, RNG_PURPOSE_INIT, 0, 0, n, Xi);
  /* Y = Xi L^T: rows ~ N(0, S) */
  for (int i = 0; i < P; i++)
    for (int a = 0; a < d; a++) {
      double v = 0;
      for (int b = 0; b <= a; b++) v += L[a * d + b] * Xi[(size_t)i * d + b];
      Y[(size_t)i * d + a] = v;
    }
  score_model sm;
  assert_int_equal(score_model_init(&sm, m), NRD_OK);
  double *work = malloc(score_model_work_size(&sm, P) * sizeof *work);
  step_ops ops;
  assert_int_equal(step_ops_init(&ops, &m->op, SCHEME_EXPONENTIAL), NRD_OK);
  int o = 0;
  for (long k = 0; k <= steps; k++) {
    assert_int_equal(score_model_set_time(&sm, t[k]), NRD_OK);
    int obs = o < nobs && kobs[o] == k;
    assert_int_equal(score_model_eval(&sm, P, Y, S, obs ? resp : NULL, NULL,
                                      NULL, NULL, work),
                     NRD_OK);
    if (obs) {
      double s1 = 0, s2 = 0;
      for (int i = 0; i < P; i++) {
        double r2 = 0;
        for (int c = 0; c < K; c++) r2 += resp[i * K + c] * resp[i * K + c];
        s1 += r2;
        s2 += r2 * r2;
      }
      phi[o] = s1 / P;
      err[o] = sqrt(fmax(s2 / P - phi[o] * phi[o], 0) / (P - 1));
      o++;
    }
    if (k == steps) break;
    assert_int_equal(step_ops_set_h(&ops, &m->op, t[k] - t[k + 1]), NRD_OK);
    rng_normals(noise_seed, RNG_PURPOSE_STEP, 0, (uint32_t)k, n, Xi);
    reverse_sde_step(&ops, P, Y, S, Xi, tmp);
  }
  assert_int_equal(o, nobs);
  step_ops_free(&ops);
  score_model_free(&sm);
  free(work);
  free(Y);
  free(S);
  free(Xi);
  free(tmp);
  free(resp);
  free(L);
}

/* kappa_t = m_t^T Gamma_t^{-1} m_t of a model (doc/theory.md (5.1)). */
static double kappa_at(const model *m, double t) {
  score_model sm;
  assert_int_equal(score_model_init(&sm, m), NRD_OK);
  assert_int_equal(score_model_set_time(&sm, t), NRD_OK);
  double k = sm.mixture.kappa;
  score_model_free(&sm);
  return k;
}

/* Exact negative control (doc/theory.md (1.19)): with U = u I and any Q,
 * e^{-At} =
 * e^{-ut} R_t with R_t orthogonal and Delta_t unchanged, so p_t^{(Q)} is
 * p_t^{(0)} rotated and every rotation-covariant observable equals its
 * g = 0 value.  Here d = 4, U = I, Q random, two classes with
 * |mu|^2 = 16 * 4 = 64 and C = S, g = 0 against g = 2.
 *
 * Moments: Delta_t(g=2) = Delta_t(g=0) to 1e-13 (both are (1-e^{-2t}) I,
 * O(1)), kappa_t equal to 1e-12 relative and equal to 64 e^{-2t} (the
 * closed form for U = I, C = S), while e^{-At} itself differs by O(1) (the
 * control is not vacuous).
 *
 * Simulation: the reverse SDE from N(0, S) at T = 6 (start error
 * kappa_6 = 64 e^{-12} ~ 4e-4 in signal, negligible) to t = 0, exponential
 * scheme, h = 5e-3, P = 4000 particles per run with independent noise.  The
 * clone-free estimator phi(t) = E[sum_k r_k^2] at t = 3, 2.08 (~t_S =
 * ln 8), 1.5, 0.5 must agree between g = 0 and g = 2 within 5 combined
 * standard errors sqrt(se_0^2 + se_2^2), se measured from the per-particle
 * spread of sum_k r_k^2.  As a sanity check that both runs are right and
 * not merely equal, each must match F(kappa_t) within 5 se + 0.01 (the
 * 0.01 allows for the time-discretisation bias of the h = 5e-3 scheme,
 * measured below 0.005). */
static void test_isotropic_invariance(void **state) {
  (void)state;
  assert_true(fabs(F_kappa(1.0) - 0.7752002) < 1e-6);
  char *over[] = {"grid.dimension=[4]",         "grid.separation=[16]",
                  "grid.strength=[0, 2]",       "grid.n_train=[0]",
                  "forward.u=isotropic",        "forward.u_scale=1",
                  "forward.q=random",           "data.classes=2",
                  "data.covariance=stationary", "data.direction=random",
                  "run.seed=2026"};
  model m0, m2;
  build_ok(&m0, 11, over, 0);
  build_ok(&m2, 11, over, 1);
  assert_true(m0.op.g == 0 && m2.op.g == 2);
  double mu2 = 0;
  for (int i = 0; i < 4; i++) mu2 += m0.mix.means[i] * m0.mix.means[i];
  assert_true(fabs(mu2 - 64) < 1e-12);

  /* exact moments */
  const double tm[] = {0.1, 0.5, 1.0, 2.0794415, 3.0, 6.0};
  for (int i = 0; i < 6; i++) {
    double E0[16], E2[16], D0[16], D2[16];
    assert_int_equal(ou_propagator(&m0.op, tm[i], E0), NRD_OK);
    assert_int_equal(ou_propagator(&m2.op, tm[i], E2), NRD_OK);
    assert_int_equal(ou_noise_cov(&m0.op, tm[i], D0), NRD_OK);
    assert_int_equal(ou_noise_cov(&m2.op, tm[i], D2), NRD_OK);
    assert_true(max_diff(16, D0, D2) < 1e-13);
    if (tm[i] == 1.0) assert_true(max_diff(16, E0, E2) > 0.1);
    double k0 = kappa_at(&m0, tm[i]), k2 = kappa_at(&m2, tm[i]);
    double kx = 64 * exp(-2 * tm[i]);
    assert_true(fabs(k0 - k2) <= 1e-12 * kx);
    assert_true(fabs(k0 - kx) <= 1e-12 * kx);
  }

  /* simulation */
  const double T = 6, h = 5e-3;
  const long steps = 1200;
  const int P = 4000, nobs = 4;
  const double tobs[4] = {3.0, 2.08, 1.5, 0.5};
  double *t = malloc((size_t)(steps + 1) * sizeof *t);
  assert_int_equal(timegrid_build(SPACING_UNIFORM, T, 0, steps, t), NRD_OK);
  long kobs[4];
  for (int o = 0; o < nobs; o++) kobs[o] = lround((T - tobs[o]) / h);
  double phi0[4], se0[4], phi2[4], se2[4];
  run_phi(&m0, 101, P, t, steps, nobs, kobs, phi0, se0);
  run_phi(&m2, 202, P, t, steps, nobs, kobs, phi2, se2);
  for (int o = 0; o < nobs; o++) {
    double tk = t[kobs[o]], F = F_kappa(64 * exp(-2 * tk));
    double comb = sqrt(se0[o] * se0[o] + se2[o] * se2[o]);
    print_message("t = %.3f: phi(g=0) = %.4f +- %.4f, phi(g=2) = %.4f +- "
                  "%.4f, diff = %.2f sigma; F(kappa) = %.4f\n",
                  tk, phi0[o], se0[o], phi2[o], se2[o],
                  (phi2[o] - phi0[o]) / comb, F);
    assert_true(fabs(phi2[o] - phi0[o]) < 5 * comb);
    assert_true(fabs(phi0[o] - F) < 5 * se0[o] + 0.01);
    assert_true(fabs(phi2[o] - F) < 5 * se2[o] + 0.01);
  }
  free(t);
  model_free(&m0);
  model_free(&m2);
}

/* Positive control (doc/theory.md section 5.3): anisotropic U = diag(1, 4),
 * C = S, mu
 * along the slow axis e1 with |mu|^2 = 50 * 2 = 100; Q = +-[[0,1],[-1,0]]
 * (q = random at d = 2; the sign does not matter by the reflection
 * x2 -> -x2).  Exact moments: kappa = 1 at t_S = 2.3026 (g = 0) and 1.4629
 * (g = 0.75), tabulated to 4 decimals, so |kappa - 1| < 2e-3 (|d ln kappa /
 * dt| < 5 times a rounding of 5e-5, with margin).  Simulation as in the
 * negative control (P = 4000 per run, T = 6, h = 5e-3, stopped at 1.8):
 * at t = 1.8, between the two speciation times, phi must differ between
 * g = 0 and g = 0.75 by more than 5 combined standard errors, and each run
 * must match its F(kappa_t) within 5 se + 0.01. */
static void test_anisotropic_positive_control(void **state) {
  (void)state;
  char *over[] = {"grid.dimension=[2]",         "grid.separation=[50]",
                  "grid.strength=[0, 0.75]",    "grid.n_train=[0]",
                  "forward.u=diagonal",         "forward.u_diagonal=[1, 4]",
                  "forward.q=random",           "data.classes=2",
                  "data.covariance=stationary", "data.direction=slowest",
                  "run.seed=2026"};
  model m0, m1;
  build_ok(&m0, 11, over, 0);
  build_ok(&m1, 11, over, 1);
  assert_true(fabs(fabs(m1.op.Qhat[1]) - 1) < 1e-14 &&
              m1.op.Qhat[1] == -m1.op.Qhat[2]);
  assert_true(fabs(fabs(m0.direction[0]) - 1) < 1e-15);
  assert_true(fabs(kappa_at(&m0, 2.3026) - 1) < 2e-3);
  assert_true(fabs(kappa_at(&m1, 1.4629) - 1) < 2e-3);

  const double T = 6, tend = 1.8;
  const long steps = 840; /* h = 5e-3 */
  double t[841];
  assert_int_equal(timegrid_build(SPACING_UNIFORM, T, tend, steps, t),
                   NRD_OK);
  long kobs = steps;
  double phi0, se0, phi1, se1;
  run_phi(&m0, 303, 4000, t, steps, 1, &kobs, &phi0, &se0);
  run_phi(&m1, 404, 4000, t, steps, 1, &kobs, &phi1, &se1);
  double F0 = F_kappa(kappa_at(&m0, tend)), F1 = F_kappa(kappa_at(&m1, tend));
  double comb = sqrt(se0 * se0 + se1 * se1);
  print_message("t = 1.8: phi(g=0) = %.4f +- %.4f (F = %.4f), phi(g=0.75) = "
                "%.4f +- %.4f (F = %.4f), diff = %.1f sigma\n",
                phi0, se0, F0, phi1, se1, F1, (phi0 - phi1) / comb);
  assert_true(fabs(phi0 - phi1) > 5 * comb);
  assert_true(fabs(phi0 - F0) < 5 * se0 + 0.01);
  assert_true(fabs(phi1 - F1) < 5 * se1 + 0.01);
  model_free(&m0);
  model_free(&m1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_operator_from_params),
      cmocka_unit_test(test_class_direction),
      cmocka_unit_test(test_mixture_from_params),
      cmocka_unit_test(test_training_set),
      cmocka_unit_test_setup_teardown(test_matrices_from_file, setup_h5,
                                      teardown_h5),
      cmocka_unit_test_setup_teardown(test_file_errors, setup_h5,
                                      teardown_h5),
      cmocka_unit_test(test_score_model_mixture),
      cmocka_unit_test(test_score_model_empirical),
      cmocka_unit_test(test_isotropic_invariance),
      cmocka_unit_test(test_anisotropic_positive_control),
  };
  return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
