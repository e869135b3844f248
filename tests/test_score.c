/* Exact scores (score.c) against independent references, doc/theory.md
 * sections 4.2 (a) and 4.3 (b):
 * (a) the Gaussian-mixture score in its general-K form (closed-form 2 x 2
 * densities, finite differences of ln p), its tanh form, Biroli's isotropic
 * score and the stationary-compatible clusters; (b) the blocked, whitened
 * empirical score against a naive O(n d^2) implementation, finite
 * differences, far-away points and Tweedie's identity.
 *
 * Tolerances.  Exact-vs-exact comparisons use 1e-12 (relative to the
 * quantity's scale): the matrices here have condition numbers < 100, so
 * round-off stays below 1e-13.  Finite differences use central differences
 * with h = 1e-5: truncation h^2/6 |f'''| ~ 1e-10 and cancellation
 * 1e-16 |ln p| / h ~ 1e-10 for |ln p| ~ 10, so 1e-7 is a safe bound that
 * still catches any wrong term (which would be O(1)). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "core/mixture.h"
#include "core/rng.h"
#include "core/score.h"

#define LN_2PI 1.83787706640934548356

/* ------------------------------------------------------------ helpers */

static double *alloc(size_t n) {
  double *p = malloc((n ? n : 1) * sizeof *p);
  assert_non_null(p);
  return p;
}

/* Deterministic "random" matrices from the project's RNG. */
static void randn(uint64_t stream, size_t n, double scale, double *out) {
  rng_normals(12345, RNG_PURPOSE_QHAT, stream, 0, n, out);
  for (size_t i = 0; i < n; i++)
    out[i] *= scale;
}

/* SPD: B B^T / d + c I. */
static void rand_spd(int d, uint64_t stream, double c, double *M) {
  double *B = alloc((size_t)d * d);
  randn(stream, (size_t)d * d, 1.0, B);
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++) {
      double s = 0;
      for (int k = 0; k < d; k++)
        s += B[i * d + k] * B[j * d + k];
      M[i * d + j] = s / d + (i == j ? c : 0);
    }
  free(B);
}

/* Gauss-Jordan inverse with partial pivoting and ln|det|, independent of
 * LAPACK (small d only). */
static void gj_inverse(int d, const double *A, double *Ainv, double *logdet) {
  double *M = alloc((size_t)d * 2 * d);
  for (int i = 0; i < d; i++)
    for (int j = 0; j < 2 * d; j++)
      M[i * 2 * d + j] = j < d ? A[i * d + j] : (j - d == i);
  double ld = 0;
  for (int c = 0; c < d; c++) {
    int piv = c;
    for (int r = c + 1; r < d; r++)
      if (fabs(M[r * 2 * d + c]) > fabs(M[piv * 2 * d + c])) piv = r;
    for (int j = 0; j < 2 * d; j++) {
      double t = M[c * 2 * d + j];
      M[c * 2 * d + j] = M[piv * 2 * d + j];
      M[piv * 2 * d + j] = t;
    }
    double p = M[c * 2 * d + c];
    ld += log(fabs(p));
    for (int j = 0; j < 2 * d; j++)
      M[c * 2 * d + j] /= p;
    for (int r = 0; r < d; r++)
      if (r != c) {
        double f = M[r * 2 * d + c];
        for (int j = 0; j < 2 * d; j++)
          M[r * 2 * d + j] -= f * M[c * 2 * d + j];
      }
  }
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++)
      Ainv[i * d + j] = M[i * 2 * d + d + j];
  if (logdet) *logdet = ld;
  free(M);
}

static void matvec(int d, const double *A, const double *x, double *y) {
  for (int i = 0; i < d; i++) {
    double s = 0;
    for (int j = 0; j < d; j++)
      s += A[i * d + j] * x[j];
    y[i] = s;
  }
}

/* C = A M A^T */
static void congruence(int d, const double *A, const double *M, double *C) {
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++) {
      double s = 0;
      for (int k = 0; k < d; k++)
        for (int l = 0; l < d; l++)
          s += A[i * d + k] * M[k * d + l] * A[j * d + l];
      C[i * d + j] = s;
    }
}

static double max_abs(size_t n, const double *x) {
  double m = 0;
  for (size_t i = 0; i < n; i++)
    if (fabs(x[i]) > m) m = fabs(x[i]);
  return m;
}

/* max |a - b| / (1 + max |b|) */
static double rel_diff(size_t n, const double *a, const double *b) {
  double m = 0;
  for (size_t i = 0; i < n; i++)
    if (fabs(a[i] - b[i]) > m) m = fabs(a[i] - b[i]);
  return m / (1 + max_abs(n, b));
}

/* A random propagator-like E (I e^{-t}-ish plus a non-normal part) and a
 * Delta that is SPD. */
static void rand_E_Delta(int d, uint64_t stream, double *E, double *Delta) {
  randn(stream, (size_t)d * d, 0.3, E);
  for (int i = 0; i < d; i++)
    E[i * d + i] += 0.6;
  rand_spd(d, stream + 1, 0.3, Delta);
}

/* ---------------------------------------------- (a) mixture score */

/* A general mixture in d dimensions, K = 3, full distinct covariances. */
static void general_mixture(mixture *m, int d) {
  double w[3] = {0.2, 0.45, 0.35};
  double *mu = alloc(3 * (size_t)d), *cov = alloc(3 * (size_t)d * d);
  randn(100, 3 * (size_t)d, 1.5, mu);
  for (int k = 0; k < 3; k++)
    rand_spd(d, 200 + 2 * k, 0.2, cov + k * d * d);
  assert_int_equal(mixture_general(m, d, 3, w, mu, MIX_COV_FULL, 0, NULL, cov),
                   NRD_OK);
  assert_false(m->symmetric2);
  free(mu);
  free(cov);
}

/* d = 2, K = 3: ln p, responsibilities and score against the densities
 * written with closed-form 2 x 2 inverses and determinants. */
static void test_mixture_closed_form_d2(void **state) {
  (void)state;
  enum { D = 2, K = 3, P = 7 };
  mixture mix;
  general_mixture(&mix, D);
  double E[4], Delta[4];
  rand_E_Delta(D, 300, E, Delta);
  score_mixture sm;
  assert_int_equal(score_mixture_init(&sm, &mix), NRD_OK);
  assert_int_equal(score_mixture_set_time(&sm, E, Delta), NRD_OK);
  double X[P * D], S[P * D], R[P * K], LP[P];
  randn(301, P * D, 2.0, X);
  size_t wsz = score_mixture_work_size(&sm, P);
  double *work = alloc(wsz);
  for (size_t i = 0; i < wsz; i++)
    work[i] = NAN; /* must not be read */
  assert_int_equal(score_mixture_eval(&sm, P, X, S, R, LP, work), NRD_OK);
  for (int p = 0; p < P; p++) {
    const double *x = X + p * D;
    double l[K], g[K][2], lmax = -INFINITY;
    for (int k = 0; k < K; k++) {
      double G[4], m[2];
      congruence(D, E, mix.cov + k * 4, G);
      for (int i = 0; i < 4; i++)
        G[i] += Delta[i];
      matvec(D, E, mix.means + k * D, m);
      double det = G[0] * G[3] - G[1] * G[2];
      double Gi[4] = {G[3] / det, -G[1] / det, -G[2] / det, G[0] / det};
      double r[2] = {x[0] - m[0], x[1] - m[1]};
      matvec(D, Gi, r, g[k]);
      l[k] = log(mix.weights[k]) - 0.5 * log(det) -
             0.5 * (r[0] * g[k][0] + r[1] * g[k][1]);
      if (l[k] > lmax) lmax = l[k];
    }
    double Z = 0;
    for (int k = 0; k < K; k++)
      Z += exp(l[k] - lmax);
    double lp = lmax + log(Z) - LN_2PI, s[2] = {0, 0};
    assert_true(fabs(LP[p] - lp) < 1e-12 * (1 + fabs(lp)));
    for (int k = 0; k < K; k++) {
      double r = exp(l[k] - lmax) / Z;
      assert_true(fabs(R[p * K + k] - r) < 1e-12);
      s[0] -= r * g[k][0];
      s[1] -= r * g[k][1];
    }
    assert_true(rel_diff(2, S + p * D, s) < 1e-12);
  }
  free(work);
  score_mixture_free(&sm);
  mixture_free(&mix);
}

/* The general-K score is the gradient of its ln p (central differences,
 * h = 1e-5, tolerance 1e-7: see the header), d = 5. */
static void test_mixture_score_is_gradient(void **state) {
  (void)state;
  enum { D = 5, P = 4 };
  mixture mix;
  general_mixture(&mix, D);
  double E[D * D], Delta[D * D];
  rand_E_Delta(D, 400, E, Delta);
  score_mixture sm;
  assert_int_equal(score_mixture_init(&sm, &mix), NRD_OK);
  assert_int_equal(score_mixture_set_time(&sm, E, Delta), NRD_OK);
  double X[P * D], S[P * D], LP[P], R[P * 3];
  randn(401, P * D, 1.5, X);
  double *work = alloc(score_mixture_work_size(&sm, P));
  assert_int_equal(score_mixture_eval(&sm, P, X, S, R, LP, work), NRD_OK);
  const double h = 1e-5;
  for (int p = 0; p < P; p++) {
    assert_true(fabs(R[3 * p] + R[3 * p + 1] + R[3 * p + 2] - 1) < 1e-14);
    for (int i = 0; i < D; i++) {
      double xp[D], s1[D], lp[2];
      for (int sgn = 0; sgn < 2; sgn++) {
        memcpy(xp, X + p * D, sizeof xp);
        xp[i] += sgn ? -h : h;
        assert_int_equal(
            score_mixture_eval(&sm, 1, xp, s1, NULL, lp + sgn, work), NRD_OK);
      }
      double fd = (lp[0] - lp[1]) / (2 * h);
      assert_true(fabs(fd - S[p * D + i]) < 1e-7 * (1 + fabs(fd)));
    }
  }
  free(work);
  score_mixture_free(&sm);
  mixture_free(&mix);
}

/* For a symmetric two-class mixture the tanh form and the general form are
 * the same function (doc/theory.md (4.4), (4.6)); exact both, so 1e-12.
 * Also: one particle at a time gives the batch's result (to GEMM
 * round-off). */
static void test_tanh_form_equals_general(void **state) {
  (void)state;
  enum { D = 6, P = 11 };
  double dir[D], C[D * D], E[D * D], Delta[D * D];
  randn(500, D, 1.0, dir);
  rand_spd(D, 501, 0.3, C);
  rand_E_Delta(D, 502, E, Delta);
  mixture mix;
  assert_int_equal(
      mixture_two_class(&mix, D, 1.5, dir, MIX_COV_FULL, 0, NULL, C), NRD_OK);
  assert_true(mix.symmetric2);
  mixture gen = mix; /* same arrays, forced through the general path */
  gen.symmetric2 = 0;
  score_mixture a, b;
  assert_int_equal(score_mixture_init(&a, &mix), NRD_OK);
  assert_int_equal(score_mixture_init(&b, &gen), NRD_OK);
  assert_int_equal(score_mixture_set_time(&a, E, Delta), NRD_OK);
  assert_int_equal(score_mixture_set_time(&b, E, Delta), NRD_OK);
  assert_true(a.kappa > 0 && b.kappa == 0);
  double X[P * D], Sa[P * D], Sb[P * D], Ra[P * 2], Rb[P * 2], La[P], Lb[P];
  randn(503, P * D, 2.0, X);
  for (int i = 0; i < D; i++)
    X[i] = 30 * a.m_t[i]; /* deep in class 1 */
  double *work = alloc(score_mixture_work_size(&a, P));
  assert_int_equal(score_mixture_eval(&a, P, X, Sa, Ra, La, work), NRD_OK);
  assert_int_equal(score_mixture_eval(&b, P, X, Sb, Rb, Lb, work), NRD_OK);
  assert_true(rel_diff(P * D, Sa, Sb) < 1e-12);
  assert_true(rel_diff(P * 2, Ra, Rb) < 1e-12);
  for (int p = 0; p < P; p++)
    assert_true(fabs(La[p] - Lb[p]) < 1e-12 * (1 + fabs(Lb[p])));
  for (int p = 0; p < P; p++) {
    double s1[D], r1[2], l1;
    assert_int_equal(score_mixture_eval(&a, 1, X + p * D, s1, r1, &l1, work),
                     NRD_OK);
    assert_true(rel_diff(D, s1, Sa + p * D) < 1e-13);
  }
  free(work);
  score_mixture_free(&a);
  score_mixture_free(&b);
  mixture_free(&mix);
}

/* Biroli's case, A = I, C = sigma^2 I (doc/theory.md (4.8)):
 * s(x) = -x/Gamma + (e^{-t}/Gamma) m tanh(e^{-t} m.x / Gamma),
 * Gamma = Delta + sigma^2 e^{-2t}, Delta = 1 - e^{-2t}; and
 * kappa = e^{-2t} |m|^2 / Gamma (doc/theory.md (5.1)). */
static void test_biroli_isotropic(void **state) {
  (void)state;
  enum { D = 8, P = 5 };
  double dir[D], E[D * D], Delta[D * D];
  randn(600, D, 1.0, dir);
  const double sigma2 = 0.5, ts[] = {0.05, 1.0, 3.0};
  mixture mix;
  assert_int_equal(mixture_two_class(&mix, D, 2.0, dir, MIX_COV_ISOTROPIC,
                                     sigma2, NULL, NULL),
                   NRD_OK);
  const double *m = mix.means;
  score_mixture sm;
  assert_int_equal(score_mixture_init(&sm, &mix), NRD_OK);
  double *work = alloc(score_mixture_work_size(&sm, P));
  for (int it = 0; it < 3; it++) {
    double t = ts[it], et = exp(-t), Dl = 1 - exp(-2 * t);
    double G = Dl + sigma2 * et * et;
    for (int i = 0; i < D * D; i++)
      E[i] = Delta[i] = 0;
    for (int i = 0; i < D; i++) {
      E[i * D + i] = et;
      Delta[i * D + i] = Dl;
    }
    assert_int_equal(score_mixture_set_time(&sm, E, Delta), NRD_OK);
    double m2 = 0;
    for (int i = 0; i < D; i++)
      m2 += m[i] * m[i];
    assert_true(fabs(sm.kappa - et * et * m2 / G) < 1e-12 * sm.kappa);
    double X[P * D], S[P * D];
    randn(601 + it, P * D, 2.0, X);
    assert_int_equal(score_mixture_eval(&sm, P, X, S, NULL, NULL, work),
                     NRD_OK);
    for (int p = 0; p < P; p++) {
      const double *x = X + p * D;
      double mx = 0, ref[D];
      for (int i = 0; i < D; i++)
        mx += m[i] * x[i];
      for (int i = 0; i < D; i++)
        ref[i] = -x[i] / G + et / G * m[i] * tanh(et * mx / G);
      assert_true(rel_diff(D, S + p * D, ref) < 1e-12);
    }
  }
  free(work);
  score_mixture_free(&sm);
  mixture_free(&mix);
}

/* Stationary-compatible clusters C = S = U^{-1} with Delta = S - E S E^T
 * (doc/theory.md (4.9)): Gamma_t = S for every E, so
 * s = -U x + U m_t tanh(m_t^T U x).  E is the V2b propagator (q = 2,
 * t = 0.6, doc/validation.md V2b) as printed, U a non-diagonal SPD matrix: the
 * identity must hold for any E once Delta is built from it. */
static void test_stationary_compatible(void **state) {
  (void)state;
  enum { D = 2, P = 6 };
  const double U[4] = {2.0, 0.5, 0.5, 1.0};
  const double E[4] = {-0.064124, -0.382040, 0.095510, -0.207388};
  double S[4], ESE[4], Delta[4], dir[2] = {1, 0.3};
  gj_inverse(D, U, S, NULL);
  congruence(D, E, S, ESE);
  for (int i = 0; i < 4; i++)
    Delta[i] = S[i] - ESE[i];
  mixture mix;
  assert_int_equal(
      mixture_two_class(&mix, D, 8.0, dir, MIX_COV_STATIONARY, 0, S, NULL),
      NRD_OK);
  score_mixture sm;
  assert_int_equal(score_mixture_init(&sm, &mix), NRD_OK);
  assert_int_equal(score_mixture_set_time(&sm, E, Delta), NRD_OK);
  assert_true(rel_diff(4, sm.Ginv, U) < 1e-13); /* Gamma_t^{-1} = U */
  double mt[2], Umt[2], X[P * D], Sc[P * D];
  matvec(D, E, mix.means, mt);
  matvec(D, U, mt, Umt);
  randn(700, P * D, 1.0, X);
  double *work = alloc(score_mixture_work_size(&sm, P));
  assert_int_equal(score_mixture_eval(&sm, P, X, Sc, NULL, NULL, work), NRD_OK);
  for (int p = 0; p < P; p++) {
    double Ux[2], ref[2];
    matvec(D, U, X + p * D, Ux);
    double w = mt[0] * Ux[0] + mt[1] * Ux[1];
    for (int i = 0; i < D; i++)
      ref[i] = -Ux[i] + Umt[i] * tanh(w);
    assert_true(rel_diff(D, Sc + p * D, ref) < 1e-12);
  }
  free(work);
  score_mixture_free(&sm);
  mixture_free(&mix);
}

/* At t = 0 (E = I, Delta = 0) point masses have no density: set_time
 * reports NRD_ERR_NUMERIC; clusters with sigma > 0 give the data score.
 * Bad arguments are refused. */
static void test_mixture_edge_cases(void **state) {
  (void)state;
  double dir[2] = {1, 0}, I[4] = {1, 0, 0, 1}, Z[4] = {0}, X[2] = {0.3, -1},
         S[2], w[8];
  mixture mix;
  assert_int_equal(
      mixture_two_class(&mix, 2, 1, dir, MIX_COV_ISOTROPIC, 0, NULL, NULL),
      NRD_OK);
  score_mixture sm;
  assert_int_equal(score_mixture_init(&sm, &mix), NRD_OK);
  assert_int_equal(score_mixture_set_time(&sm, I, Z), NRD_ERR_NUMERIC);
  score_mixture_free(&sm);
  mixture_free(&mix);
  assert_int_equal(
      mixture_two_class(&mix, 2, 1, dir, MIX_COV_ISOTROPIC, 2, NULL, NULL),
      NRD_OK);
  assert_int_equal(score_mixture_init(&sm, &mix), NRD_OK);
  assert_int_equal(score_mixture_set_time(&sm, I, Z), NRD_OK);
  assert_true(score_mixture_work_size(&sm, 1) <= 8);
  assert_int_equal(score_mixture_eval(&sm, 1, X, S, NULL, NULL, w), NRD_OK);
  /* s = -x/2 + (m/2) tanh(m.x/2), m = (sqrt 2, 0) */
  double m0 = sqrt(2.0);
  assert_true(fabs(S[0] - (-X[0] / 2 + m0 / 2 * tanh(m0 * X[0] / 2))) < 1e-15);
  assert_true(fabs(S[1] + X[1] / 2) < 1e-15);
  assert_int_equal(score_mixture_eval(&sm, 0, NULL, NULL, NULL, NULL, NULL),
                   NRD_OK);
  assert_int_equal(score_mixture_eval(&sm, 1, X, NULL, NULL, NULL, w),
                   NRD_ERR_INPUT);
  score_mixture_free(&sm);
  mixture_free(&mix);
}

/* -------------------------------------------- (b) empirical score */

typedef struct {
  double *score, *logp, *y2, *wts; /* wts: P x n softmax weights */
  int *nearest;
} naive_out;

/* Direct doc/theory.md (4.11)-(4.12): Delta^{-1} by Gauss-Jordan,
 * b_mu = E a_mu, l_mu = -1/2 (x - b_mu)^T Delta^{-1} (x - b_mu), softmax
 * with the max subtracted, O(n d^2) per particle. */
static void naive_empirical(int d, int n, const double *a, const double *E,
                            const double *Delta, int P, const double *X,
                            naive_out *o) {
  double *Di = alloc((size_t)d * d), *b = alloc((size_t)n * d),
         *l = alloc((size_t)n), *r = alloc((size_t)d), *q = alloc((size_t)d);
  double ld;
  gj_inverse(d, Delta, Di, &ld);
  for (int mu = 0; mu < n; mu++)
    matvec(d, E, a + mu * d, b + mu * d);
  for (int p = 0; p < P; p++) {
    const double *x = X + p * d;
    double lmax = -INFINITY;
    int arg = 0;
    for (int mu = 0; mu < n; mu++) {
      for (int i = 0; i < d; i++)
        r[i] = x[i] - b[mu * d + i];
      matvec(d, Di, r, q);
      double s = 0;
      for (int i = 0; i < d; i++)
        s += r[i] * q[i];
      l[mu] = -0.5 * s;
      if (l[mu] > lmax) {
        lmax = l[mu];
        arg = mu;
      }
    }
    double Z = 0, Z2 = 0, mean[64] = {0};
    for (int mu = 0; mu < n; mu++)
      Z += exp(l[mu] - lmax);
    for (int mu = 0; mu < n; mu++) {
      double wmu = exp(l[mu] - lmax) / Z;
      if (o->wts) o->wts[(size_t)p * n + mu] = wmu;
      Z2 += wmu * wmu;
      for (int i = 0; i < d; i++)
        mean[i] += wmu * b[mu * d + i];
    }
    for (int i = 0; i < d; i++)
      r[i] = x[i] - mean[i];
    matvec(d, Di, r, q);
    for (int i = 0; i < d; i++)
      o->score[p * d + i] = -q[i];
    o->logp[p] = lmax + log(Z) - log((double)n) - 0.5 * (d * LN_2PI + ld);
    o->y2[p] = Z2;
    o->nearest[p] = arg;
  }
  free(Di);
  free(b);
  free(l);
  free(r);
  free(q);
}

enum { ED = 6, EN = 50, EP = 9 };

static void empirical_setup(double *a, double *E, double *Delta, double *X) {
  randn(800, EN * ED, 1.0, a);
  rand_E_Delta(ED, 801, E, Delta);
  randn(803, EP * ED, 1.0, X);
  /* a few particles right next to training points: peaked weights */
  for (int i = 0; i < ED; i++) {
    double b0 = 0, b1 = 0;
    for (int j = 0; j < ED; j++) {
      b0 += E[i * ED + j] * a[3 * ED + j];
      b1 += E[i * ED + j] * a[17 * ED + j];
    }
    X[i] = b0 + 0.01 * X[i];
    X[ED + i] = b1;
  }
}

/* score_empirical_eval of the first P particles (score into S) equals the
 * naive results to 1e-12 (score, ln p, y2) with the same nearest points. */
static void check_eval_naive(const score_empirical *se, int P, const double *X,
                             const double *ns, const double *nl,
                             const double *ny, const int *nn, double *work,
                             double *S) {
  double LP[EP], Y2[EP];
  int NN[EP];
  assert_int_equal(score_empirical_eval(se, P, X, S, LP, Y2, NN, work), NRD_OK);
  assert_true(rel_diff(P * ED, S, ns) < 1e-12);
  for (int p = 0; p < P; p++) {
    assert_true(fabs(LP[p] - nl[p]) < 1e-12 * (1 + fabs(nl[p])));
    assert_true(fabs(Y2[p] - ny[p]) < 1e-12);
    assert_int_equal(NN[p], nn[p]);
  }
}

/* The split s = r - Delta^{-1} x (score_empirical_eval_nonlinear, _dinv):
 * r minus Delta^{-1} x formed here gives the naive score to 1e-12, with the
 * same y2 and nearest points; Delta^{-1} is a matrix unless iso_inv > 0. */
static void check_nonlinear(score_empirical *se, const double *X,
                            const double *ns, const double *ny, const int *nn,
                            double iso_inv, double *work) {
  double R[EP * ED], S[EP * ED], Y2[EP];
  int NN[EP];
  assert_int_equal(
      score_empirical_eval_nonlinear(se, EP, X, R, Y2, NN, work), NRD_OK);
  double inv = -1;
  const double *Di = score_empirical_dinv(se, &inv);
  assert_true(iso_inv > 0 ? (!Di && inv == iso_inv) : (Di && inv == 0));
  for (int p = 0; p < EP; p++) {
    for (int i = 0; i < ED; i++) {
      double dx = 0;
      for (int j = 0; j < ED; j++)
        dx += (Di ? Di[i * ED + j] : (i == j ? inv : 0)) * X[p * ED + j];
      S[p * ED + i] = R[p * ED + i] - dx;
    }
    assert_true(fabs(Y2[p] - ny[p]) < 1e-12);
    assert_int_equal(NN[p], nn[p]);
  }
  assert_true(rel_diff(EP * ED, S, ns) < 1e-12);
}

/* Block sizes 1, 7 (not dividing n), n and > n give the naive results to
 * 1e-12 (score, ln p, y2) and the same nearest point. */
static void test_empirical_vs_naive_blocks(void **state) {
  (void)state;
  double a[EN * ED], E[ED * ED], Delta[ED * ED], X[EP * ED];
  empirical_setup(a, E, Delta, X);
  double ns[EP * ED], nl[EP], ny[EP];
  int nn[EP];
  naive_out ref = {ns, nl, ny, NULL, nn};
  naive_empirical(ED, EN, a, E, Delta, EP, X, &ref);
  assert_true(nn[1] == 17 && ny[1] > 0.5); /* the setup's peaked case */
  int blocks[] = {1, 7, EN, 1000};
  for (int ib = 0; ib < 4; ib++) {
    score_empirical se;
    assert_int_equal(score_empirical_init(&se, ED, EN, a, blocks[ib]), NRD_OK);
    assert_int_equal(score_empirical_set_time(&se, E, Delta), NRD_OK);
    size_t wsz = score_empirical_work_size(&se, EP);
    double *work = alloc(wsz);
    for (size_t i = 0; i < wsz; i++)
      work[i] = NAN; /* must not be read */
    double S[EP * ED];
    check_eval_naive(&se, EP, X, ns, nl, ny, nn, work, S);
    /* only the score requested */
    double S2[EP * ED];
    assert_int_equal(
        score_empirical_eval(&se, EP, X, S2, NULL, NULL, NULL, work), NRD_OK);
    assert_true(rel_diff(EP * ED, S2, S) < 1e-14);
    check_nonlinear(&se, X, ns, ny, nn, 0.0, work);
    free(work);
    score_empirical_free(&se);
  }
}

/* Class weights of labelled training points (score_empirical_set_labels):
 * resp_k = sum of the naive softmax weights w_mu over class k, to 1e-12,
 * in blocks of 1, 7 and all n, through both evaluations, and the scores
 * unchanged by asking for them; in single precision within its rounding.
 * Labels outside [0, K) are refused. */
static void test_empirical_class_weights(void **state) {
  (void)state;
  enum { K = 3 };
  double a[EN * ED], E[ED * ED], Delta[ED * ED], X[EP * ED];
  empirical_setup(a, E, Delta, X);
  double ns[EP * ED], nl[EP], ny[EP], *wts = alloc((size_t)EP * EN);
  int nn[EP], lab[EN];
  naive_out ref = {ns, nl, ny, wts, nn};
  naive_empirical(ED, EN, a, E, Delta, EP, X, &ref);
  for (int mu = 0; mu < EN; mu++)
    lab[mu] = (mu * 7) % K;
  double want[EP * K] = {0};
  for (int p = 0; p < EP; p++)
    for (int mu = 0; mu < EN; mu++)
      want[p * K + lab[mu]] += wts[(size_t)p * EN + mu];
  int blocks[] = {1, 7, EN};
  for (int single = 0; single < 2; single++)
    for (int ib = 0; ib < 3; ib++) {
      score_empirical se;
      assert_int_equal(score_empirical_init(&se, ED, EN, a, blocks[ib]), NRD_OK);
      assert_int_equal(score_empirical_set_single(&se, single), NRD_OK);
      lab[5] = K; /* out of range */
      assert_int_equal(score_empirical_set_labels(&se, K, lab), NRD_ERR_INPUT);
      nrd_error_reset();
      lab[5] = (5 * 7) % K;
      assert_int_equal(score_empirical_set_labels(&se, K, lab), NRD_OK);
      assert_int_equal(score_empirical_set_time(&se, E, Delta), NRD_OK);
      size_t wsz = score_empirical_work_size(&se, EP);
      double *work = alloc(wsz);
      for (size_t i = 0; i < wsz; i++)
        work[i] = NAN; /* must not be read */
      double S[EP * ED], S0[EP * ED], R[EP * ED], resp[EP * K], resp2[EP * K];
      assert_int_equal(score_empirical_eval(&se, EP, X, S0, NULL, NULL, NULL,
                                            work),
                       NRD_OK);
      assert_int_equal(score_empirical_eval_classes(&se, EP, X, S, resp, NULL,
                                                    NULL, NULL, work),
                       NRD_OK);
      assert_memory_equal(S, S0, sizeof S); /* the same score, bit for bit */
      assert_int_equal(score_empirical_eval_nonlinear_classes(
                           &se, EP, X, R, resp2, NULL, NULL, work),
                       NRD_OK);
      double tol = single ? 1e-4 : 1e-12;
      for (int p = 0; p < EP; p++) {
        double sum = 0;
        for (int k = 0; k < K; k++) {
          assert_true(fabs(resp[p * K + k] - want[p * K + k]) < tol);
          assert_true(resp2[p * K + k] == resp[p * K + k]);
          sum += resp[p * K + k];
        }
        assert_true(fabs(sum - 1) < 1e-12); /* the weights sum to 1 */
      }
      free(work);
      score_empirical_free(&se);
    }
  /* without labels, class weights are refused */
  score_empirical se;
  assert_int_equal(score_empirical_init(&se, ED, EN, a, EN), NRD_OK);
  assert_int_equal(score_empirical_set_time(&se, E, Delta), NRD_OK);
  double *work = alloc(score_empirical_work_size(&se, EP));
  double S[EP * ED], resp[EP * K];
  assert_int_equal(score_empirical_eval_classes(&se, EP, X, S, resp, NULL, NULL,
                                                NULL, work),
                   NRD_ERR_INPUT);
  nrd_error_reset();
  free(work);
  score_empirical_free(&se);
  free(wts);
}

/* With max_logits, a batch of P takes max(block, max_logits / P) training
 * points at a time: 9 particles in blocks of 25, 3 in one block of all 50,
 * both the naive results to 1e-12, in work sized for the larger batch
 * (never read beyond: NaN-filled, and the size is nondecreasing in P). */
static void test_empirical_max_logits(void **state) {
  (void)state;
  double a[EN * ED], E[ED * ED], Delta[ED * ED], X[EP * ED];
  empirical_setup(a, E, Delta, X);
  double ns[EP * ED], nl[EP], ny[EP];
  int nn[EP];
  naive_out ref = {ns, nl, ny, NULL, nn};
  naive_empirical(ED, EN, a, E, Delta, EP, X, &ref);
  score_empirical se;
  assert_int_equal(score_empirical_init(&se, ED, EN, a, 7), NRD_OK);
  score_empirical_set_max_logits(&se, 25 * EP);
  assert_int_equal(score_empirical_set_time(&se, E, Delta), NRD_OK);
  size_t wsz = score_empirical_work_size(&se, EP);
  for (int p = 1; p < EP; p++)
    assert_true(score_empirical_work_size(&se, p) <=
                score_empirical_work_size(&se, p + 1));
  double *work = alloc(wsz);
  for (int P = EP; P >= 3; P -= 6) {
    for (size_t i = 0; i < wsz; i++)
      work[i] = NAN;
    double S[EP * ED];
    check_eval_naive(&se, P, X, ns, nl, ny, nn, work, S);
  }
  free(work);
  score_empirical_free(&se);
}

/* run.precision float32: the two large products in SGEMM.  Error model: a
 * logit l = x.c - b.c/2 computed from x, c rounded to float and summed in
 * float carries |dl| <= (d + 2) u |x|.|c| (u = 2^-24, |x|.|c| the sum of
 * |x_i c_i|, largest over mu); a weight then moves by ~2 dl relative, and
 * the score's mean part V/S0 = sum w c / sum w by 2 dl max|c| plus the
 * float rounding of c and of the block sums, (nb + 2) u max|c|.  The test
 * allows 4 times these first-order bounds, and checks that the single path
 * was taken (differences above double round-off). */
static void test_empirical_single_precision(void **state) {
  (void)state;
  double a[EN * ED], E[ED * ED], Delta[ED * ED], X[EP * ED];
  empirical_setup(a, E, Delta, X);
  double ns[EP * ED], nl[EP], ny[EP];
  int nn[EP];
  naive_out ref = {ns, nl, ny, NULL, nn};
  naive_empirical(ED, EN, a, E, Delta, EP, X, &ref);
  const double u = 0x1.0p-24;
  int blocks[] = {7, EN};
  for (int ib = 0; ib < 2; ib++) {
    score_empirical se;
    assert_int_equal(score_empirical_init(&se, ED, EN, a, blocks[ib]), NRD_OK);
    assert_int_equal(score_empirical_set_single(&se, 1), NRD_OK);
    assert_int_equal(score_empirical_set_time(&se, E, Delta), NRD_OK);
    double cmax = max_abs((size_t)EN * ED, se.c);
    size_t wsz = score_empirical_work_size(&se, EP);
    double *work = alloc(wsz);
    for (size_t i = 0; i < wsz; i++)
      work[i] = NAN; /* must not be read */
    double S[EP * ED], LP[EP], Y2[EP];
    int NN[EP];
    assert_int_equal(score_empirical_eval(&se, EP, X, S, LP, Y2, NN, work),
                     NRD_OK);
    double worst = 0;
    for (int p = 0; p < EP; p++) {
      double xc = 0;
      for (int mu = 0; mu < EN; mu++) {
        double t = 0;
        for (int i = 0; i < ED; i++)
          t += fabs(X[p * ED + i] * se.c[mu * ED + i]);
        xc = fmax(xc, t);
      }
      double dl = (ED + 2) * u * xc;
      double tol = 4 * (2 * dl + (blocks[ib] + 2) * u) * cmax;
      for (int i = 0; i < ED; i++) {
        double err = fabs(S[p * ED + i] - ns[p * ED + i]);
        assert_true(err <= tol);
        worst = fmax(worst, err / (1 + fabs(ns[p * ED + i])));
      }
      assert_true(fabs(LP[p] - nl[p]) <= 4 * dl + 1e-12 * fabs(nl[p]));
      assert_true(fabs(Y2[p] - ny[p]) <= 4 * 4 * dl * ny[p] + 1e-15);
      assert_int_equal(NN[p], nn[p]); /* the setup's nearest points are clear */
    }
    assert_true(worst > 1e-12); /* single precision was used */
    assert_int_equal(score_empirical_set_single(&se, 0), NRD_OK);
    assert_null(se.cf);
    free(work);
    score_empirical_free(&se);
  }
}

/* The empirical score is the gradient of its ln p (central differences,
 * h = 1e-5, tolerance 1e-7: see the header). */
static void test_empirical_score_is_gradient(void **state) {
  (void)state;
  double a[EN * ED], E[ED * ED], Delta[ED * ED], X[EP * ED];
  empirical_setup(a, E, Delta, X);
  score_empirical se;
  assert_int_equal(score_empirical_init(&se, ED, EN, a, 16), NRD_OK);
  assert_int_equal(score_empirical_set_time(&se, E, Delta), NRD_OK);
  double *work = alloc(score_empirical_work_size(&se, EP));
  double S[EP * ED];
  assert_int_equal(score_empirical_eval(&se, EP, X, S, NULL, NULL, NULL, work),
                   NRD_OK);
  const double h = 1e-5;
  for (int p = 0; p < EP; p++)
    for (int i = 0; i < ED; i++) {
      double xp[ED], s1[ED], lp[2];
      for (int sgn = 0; sgn < 2; sgn++) {
        memcpy(xp, X + p * ED, sizeof xp);
        xp[i] += sgn ? -h : h;
        assert_int_equal(
            score_empirical_eval(&se, 1, xp, s1, lp + sgn, NULL, NULL, work),
            NRD_OK);
      }
      double fd = (lp[0] - lp[1]) / (2 * h);
      assert_true(fabs(fd - S[p * ED + i]) < 1e-7 * (1 + fabs(fd)));
    }
  free(work);
  score_empirical_free(&se);
}

/* Far from the data (|l| ~ 1e4 .. 1e7, where e^l underflows) the log-sum-exp
 * keeps everything finite: the weight collapses on the nearest point, so the
 * score is -Delta^{-1}(x - b_nearest) and ln p = l_nearest - ln n
 * - 1/2 ln det(2 pi Delta) (the other weights are < e^-50 here: relative
 * effect < 1e-20, below round-off; the 1e-10 tolerance covers the
 * cancellation in l at |z|^2 ~ 1e7). */
static void test_empirical_far_points(void **state) {
  (void)state;
  enum { D = 3, N = 4, P = 3 };
  double a[N * D] = {0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3};
  double E[D * D] = {0.5, 0, 0, 0, 0.5, 0, 0, 0, 0.5};
  double Delta[D * D] = {0.01, 0, 0, 0, 0.02, 0, 0, 0, 0.01};
  double X[P * D] = {20, 0, 0, 0, 25, 0, -30, -40, 300};
  int expect[P] = {1, 2, 3};
  score_empirical se;
  assert_int_equal(score_empirical_init(&se, D, N, a, 3), NRD_OK);
  assert_int_equal(score_empirical_set_time(&se, E, Delta), NRD_OK);
  double *work = alloc(score_empirical_work_size(&se, P));
  double S[P * D], LP[P], Y2[P];
  int NN[P];
  assert_int_equal(score_empirical_eval(&se, P, X, S, LP, Y2, NN, work),
                   NRD_OK);
  double ldet = D * LN_2PI + log(0.01 * 0.02 * 0.01);
  for (int p = 0; p < P; p++) {
    const double *x = X + p * D, *an = a + expect[p] * D;
    assert_int_equal(NN[p], expect[p]);
    double ref[D], l = 0;
    for (int i = 0; i < D; i++) {
      double r = x[i] - 0.5 * an[i];
      ref[i] = -r / Delta[i * D + i];
      l -= 0.5 * r * r / Delta[i * D + i];
    }
    assert_true(l < -1e4);
    for (int i = 0; i < D; i++)
      assert_true(isfinite(S[p * D + i]));
    assert_true(rel_diff(D, S + p * D, ref) < 1e-10);
    assert_true(isfinite(LP[p]));
    assert_true(fabs(LP[p] - (l - log((double)N) - 0.5 * ldet)) <
                1e-10 * fabs(l));
    assert_true(fabs(Y2[p] - 1) < 1e-12);
  }
  free(work);
  score_empirical_free(&se);
}

/* Tweedie with general A (doc/theory.md (4.15)): E[x_0 | x_t = x] =
 * e^{At}(x + Delta s(x)) is the posterior mean sum_mu w_mu a_mu, i.e.
 * E sum_mu w_mu a_mu = x + Delta s(x), with w from the naive softmax. */
static void test_empirical_tweedie(void **state) {
  (void)state;
  double a[EN * ED], E[ED * ED], Delta[ED * ED], X[EP * ED];
  empirical_setup(a, E, Delta, X);
  score_empirical se;
  assert_int_equal(score_empirical_init(&se, ED, EN, a, 7), NRD_OK);
  assert_int_equal(score_empirical_set_time(&se, E, Delta), NRD_OK);
  double *work = alloc(score_empirical_work_size(&se, EP));
  double S[EP * ED];
  assert_int_equal(score_empirical_eval(&se, EP, X, S, NULL, NULL, NULL, work),
                   NRD_OK);
  double ns[EP * ED], nl[EP], ny[EP], *wts = alloc(EP * EN);
  int nn[EP];
  naive_out ref = {ns, nl, ny, wts, nn};
  naive_empirical(ED, EN, a, E, Delta, EP, X, &ref);
  for (int p = 0; p < EP; p++) {
    double post[ED] = {0}, lhs[ED], DS[ED], rhs[ED];
    for (int mu = 0; mu < EN; mu++)
      for (int i = 0; i < ED; i++)
        post[i] += wts[p * EN + mu] * a[mu * ED + i];
    matvec(ED, E, post, lhs);
    matvec(ED, Delta, S + p * ED, DS);
    for (int i = 0; i < ED; i++)
      rhs[i] = X[p * ED + i] + DS[i];
    assert_true(rel_diff(ED, lhs, rhs) < 1e-12);
  }
  free(wts);
  free(work);
  score_empirical_free(&se);
}

/* Delta that is not SPD (t = 0) is reported, and bad arguments refused. */
static void test_empirical_edge_cases(void **state) {
  (void)state;
  double a[4] = {1, 2, 3, 4}, I[4] = {1, 0, 0, 1}, Z[4] = {0};
  score_empirical se;
  assert_int_equal(score_empirical_init(&se, 2, 2, a, 0), NRD_ERR_INPUT);
  assert_int_equal(score_empirical_init(&se, 2, 2, NULL, 1), NRD_ERR_INPUT);
  assert_int_equal(score_empirical_init(&se, 2, 2, a, 100), NRD_OK);
  assert_int_equal(se.block, 2);
  nrd_error_reset();
  assert_int_equal(score_empirical_set_time(&se, I, Z), NRD_ERR_NUMERIC);
  /* the trace names the singular matrix and where it was found */
  print_message("trace: %s\n", nrd_error_trace());
  const char *trace = nrd_error_trace();
  assert_non_null(strstr(trace, "Delta_t is not positive definite"));
  assert_non_null(strstr(trace, "in score_empirical_set_time]"));
  nrd_error_reset();
  assert_int_equal(score_empirical_set_time(&se, I, I), NRD_OK);
  assert_int_equal(
      score_empirical_eval(&se, 0, NULL, NULL, NULL, NULL, NULL, NULL), NRD_OK);
  double X[2] = {0, 0}, S[2];
  assert_int_equal(score_empirical_eval(&se, 1, X, S, NULL, NULL, NULL, NULL),
                   NRD_ERR_INPUT);
  score_empirical_free(&se);
}

/* ------------------------------- fast paths and thread-count independence */

/* Delta = delta I (U = u I, any Q): the score module takes the path
 * without factorisation (se.iso = delta) and still matches the naive
 * results to 1e-12, for a block size that divides n and one that does
 * not. */
static void test_empirical_isotropic_delta(void **state) {
  (void)state;
  double a[EN * ED], E[ED * ED], Delta[ED * ED], X[EP * ED];
  empirical_setup(a, E, Delta, X);
  for (int i = 0; i < ED * ED; i++)
    Delta[i] = i % (ED + 1) == 0 ? 0.37 : 0.0;
  double ns[EP * ED], nl[EP], ny[EP];
  int nn[EP];
  naive_out ref = {ns, nl, ny, NULL, nn};
  naive_empirical(ED, EN, a, E, Delta, EP, X, &ref);
  int blocks[] = {7, EN};
  for (int ib = 0; ib < 2; ib++) {
    score_empirical se;
    assert_int_equal(score_empirical_init(&se, ED, EN, a, blocks[ib]), NRD_OK);
    assert_int_equal(score_empirical_set_time(&se, E, Delta), NRD_OK);
    assert_true(se.iso == 0.37);
    assert_true(se.L[0] == sqrt(0.37) && se.L[1] == 0);
    double *work = alloc(score_empirical_work_size(&se, EP));
    double S[EP * ED];
    check_eval_naive(&se, EP, X, ns, nl, ny, nn, work, S);
    check_nonlinear(&se, X, ns, ny, nn, 1.0 / 0.37, work);
    free(work);
    score_empirical_free(&se);
  }
}

/* OpenBLAS's thread count, which the score's element-wise passes follow
 * (declared here: cblas.h brings complex.h's I). */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
static int blas_threads_saved;
static void threads_begin(int n) {
  blas_threads_saved = openblas_get_num_threads();
  openblas_set_num_threads(n);
}
static void threads_end(void) { openblas_set_num_threads(blas_threads_saved); }

/* Sizes at which the log-sum-exp and the final pass are split over threads
 * (P x block above ~1 M), for the general and the isotropic Delta: 1 and 2
 * threads agree to round-off, not bitwise, because OpenBLAS's own GEMMs
 * round differently on different thread counts (they always did: runs keep
 * blas_threads fixed).  The row passes themselves are checked bitwise on
 * the mixture forms below; here the index of the nearest point must be
 * the same. */
static void test_empirical_thread_independent(void **state) {
  (void)state;
  enum { D = 24, N = 2600, P = 700, B = 1024 };
  double *a = alloc((size_t)N * D), *X = alloc((size_t)P * D);
  double E[D * D], Delta[D * D];
  randn(900, (size_t)N * D, 1.0, a);
  randn(901, (size_t)P * D, 1.2, X);
  rand_E_Delta(D, 902, E, Delta);
  for (int iso = 0; iso < 2; iso++) {
    if (iso)
      for (int i = 0; i < D * D; i++)
        Delta[i] = i % (D + 1) == 0 ? 0.5 : 0.0;
    score_empirical se;
    assert_int_equal(score_empirical_init(&se, D, N, a, B), NRD_OK);
    assert_int_equal(score_empirical_set_time(&se, E, Delta), NRD_OK);
    assert_true((se.iso > 0) == iso);
    double *work = alloc(score_empirical_work_size(&se, P));
    double *S[2], *LP[2], *Y2[2];
    int *NN[2];
    for (int t = 0; t < 2; t++) {
      S[t] = alloc((size_t)P * D), LP[t] = alloc(P), Y2[t] = alloc(P);
      NN[t] = malloc(P * sizeof(int));
      threads_begin(t + 1);
      assert_int_equal(
          score_empirical_eval(&se, P, X, S[t], LP[t], Y2[t], NN[t], work),
          NRD_OK);
      threads_end();
    }
    assert_true(rel_diff((size_t)P * D, S[1], S[0]) < 1e-13);
    for (int p = 0; p < P; p++) {
      assert_true(fabs(LP[1][p] - LP[0][p]) < 1e-13 * (1 + fabs(LP[0][p])));
      assert_true(fabs(Y2[1][p] - Y2[0][p]) < 1e-13);
    }
    assert_memory_equal(NN[0], NN[1], P * sizeof(int));
    /* and the batch agrees with one particle at a time (GEMM round-off) */
    for (int p = 0; p < P; p += 97) {
      double s1[D], l1;
      assert_int_equal(score_empirical_eval(&se, 1, X + (size_t)p * D, s1, &l1,
                                            NULL, NULL, work),
                       NRD_OK);
      assert_true(rel_diff(D, s1, S[0] + (size_t)p * D) < 1e-12);
      assert_true(fabs(l1 - LP[0][p]) < 1e-12 * (1 + fabs(l1)));
    }
    for (int t = 0; t < 2; t++) {
      free(S[t]);
      free(LP[t]);
      free(Y2[t]);
      free(NN[t]);
    }
    free(work);
    score_empirical_free(&se);
  }
  free(a);
  free(X);
}

/* E = e^{-t} R with R a rotation (U = I, Q != 0), isotropic clusters and
 * Delta = delta I: Gamma = (sigma^2 e^{-2t} + delta) I up to the round-off
 * of R R^T, which the score module recognises (iso > 0, no GEMM); against
 * Gamma formed and inverted densely here: K = 3 (general form) and the
 * symmetric two-class (tanh) form, 1e-12. */
static void test_mixture_isotropic_gamma(void **state) {
  (void)state;
  enum { D = 5, P = 9 };
  const double et = exp(-0.4), delta = -expm1(-0.8), sigma2 = 0.3;
  const double c = cos(0.7), sn = sin(0.7);
  double E[D * D] = {0}, Delta[D * D] = {0};
  for (int i = 0; i < D; i++) {
    E[i * D + i] = et;
    Delta[i * D + i] = delta;
  }
  E[0] = E[D + 1] = et * c; /* rotation in the (0, 1) plane ... */
  E[1] = -et * sn, E[D] = et * sn;
  E[2 * D + 2] = et * c, E[3 * D + 3] = et * c; /* ... and in (2, 3) */
  E[2 * D + 3] = et * sn, E[3 * D + 2] = -et * sn;
  double w[3] = {0.2, 0.5, 0.3}, mu[3 * D], dir[D], X[P * D];
  randn(950, 3 * D, 1.5, mu);
  randn(951, D, 1.0, dir);
  randn(952, P * D, 1.5, X);
  mixture mk, m2;
  assert_int_equal(mixture_general(&mk, D, 3, w, mu, MIX_COV_ISOTROPIC, sigma2,
                                   NULL, NULL),
                   NRD_OK);
  assert_int_equal(mixture_two_class(&m2, D, 1.2, dir, MIX_COV_ISOTROPIC,
                                     sigma2, NULL, NULL),
                   NRD_OK);
  mixture *mixes[2] = {&mk, &m2};
  for (int im = 0; im < 2; im++) {
    mixture *mix = mixes[im];
    int K = mix->K;
    score_mixture sm;
    assert_int_equal(score_mixture_init(&sm, mix), NRD_OK);
    assert_int_equal(score_mixture_set_time(&sm, E, Delta), NRD_OK);
    for (int k = 0; k < K; k++)
      assert_true(fabs(sm.iso[k] - (sigma2 * et * et + delta)) < 1e-15);
    double S[P * D], R[P * 3], LP[P];
    double *work = alloc(score_mixture_work_size(&sm, P));
    assert_int_equal(score_mixture_eval(&sm, P, X, S, R, LP, work), NRD_OK);
    /* reference: Gamma = sigma^2 E E^T + Delta, dense */
    double Cs[D * D] = {0}, G[D * D], Gi[D * D], ld;
    for (int i = 0; i < D; i++)
      Cs[i * D + i] = sigma2;
    congruence(D, E, Cs, G);
    for (int i = 0; i < D * D; i++)
      G[i] += Delta[i];
    gj_inverse(D, G, Gi, &ld);
    for (int p = 0; p < P; p++) {
      const double *x = X + p * D;
      double l[3], g[3][D], lmax = -INFINITY;
      for (int k = 0; k < K; k++) {
        double m[D], r[D];
        matvec(D, E, mix->means + k * D, m);
        for (int i = 0; i < D; i++)
          r[i] = x[i] - m[i];
        matvec(D, Gi, r, g[k]);
        double q = 0;
        for (int i = 0; i < D; i++)
          q += r[i] * g[k][i];
        l[k] = log(mix->weights[k]) - 0.5 * ld - 0.5 * q;
        lmax = fmax(lmax, l[k]);
      }
      double Z = 0, ref[D] = {0};
      for (int k = 0; k < K; k++)
        Z += exp(l[k] - lmax);
      for (int k = 0; k < K; k++) {
        double r = exp(l[k] - lmax) / Z;
        assert_true(fabs(R[p * K + k] - r) < 1e-12);
        for (int i = 0; i < D; i++)
          ref[i] -= r * g[k][i];
      }
      double lp = lmax + log(Z) - 0.5 * D * LN_2PI;
      assert_true(rel_diff(D, S + p * D, ref) < 1e-12);
      assert_true(fabs(LP[p] - lp) < 1e-12 * (1 + fabs(lp)));
    }
    free(work);
    score_mixture_free(&sm);
  }
  mixture_free(&mk);
  mixture_free(&m2);
}

/* The mixture's row passes on 1 and 2 threads: with Gamma = g I (no BLAS
 * call at all) the same bits; with a dense Gamma (tanh and general forms)
 * the same to round-off, as OpenBLAS's GEMM may round differently on
 * different thread counts. */
static void test_mixture_thread_independent(void **state) {
  (void)state;
  enum { D = 96, P = 4000 };
  double *X = alloc((size_t)P * D), *dir = alloc(D);
  double *E = alloc(D * D), *Delta = alloc(D * D), *C = alloc(D * D);
  randn(960, (size_t)P * D, 1.5, X);
  randn(961, D, 1.0, dir);
  rand_E_Delta(D, 962, E, Delta);
  rand_spd(D, 964, 0.3, C);
  mixture mixes[3];
  assert_int_equal(
      mixture_two_class(&mixes[0], D, 1.0, dir, MIX_COV_FULL, 0, NULL, C),
      NRD_OK);
  assert_int_equal(mixture_two_class(&mixes[1], D, 1.0, dir, MIX_COV_ISOTROPIC,
                                     0.2, NULL, NULL),
                   NRD_OK);
  mixes[2] = mixes[0];
  mixes[2].symmetric2 = 0; /* the general form, same arrays */
  for (int im = 0; im < 3; im++) {
    double *E_use = E, *D_use = Delta, *Ei = NULL, *Di = NULL;
    if (im == 1) { /* isotropic: E = 0.7 I, Delta = 0.5 I */
      Ei = calloc(D * D, sizeof *Ei), Di = calloc(D * D, sizeof *Di);
      for (int i = 0; i < D; i++)
        Ei[i * D + i] = 0.7, Di[i * D + i] = 0.5;
      E_use = Ei, D_use = Di;
    }
    score_mixture sm;
    assert_int_equal(score_mixture_init(&sm, &mixes[im]), NRD_OK);
    assert_int_equal(score_mixture_set_time(&sm, E_use, D_use), NRD_OK);
    assert_true((sm.iso[0] > 0) == (im == 1));
    double *work = alloc(score_mixture_work_size(&sm, P));
    double *S[2], *R[2], *LP[2];
    for (int t = 0; t < 2; t++) {
      S[t] = alloc((size_t)P * D), R[t] = alloc(2 * P), LP[t] = alloc(P);
      threads_begin(t + 1);
      assert_int_equal(score_mixture_eval(&sm, P, X, S[t], R[t], LP[t], work),
                       NRD_OK);
      threads_end();
    }
    if (im == 1) {
      assert_memory_equal(S[0], S[1], (size_t)P * D * sizeof(double));
      assert_memory_equal(R[0], R[1], 2 * P * sizeof(double));
      assert_memory_equal(LP[0], LP[1], P * sizeof(double));
    } else {
      assert_true(rel_diff((size_t)P * D, S[1], S[0]) < 1e-13);
      assert_true(rel_diff(2 * P, R[1], R[0]) < 1e-13);
      for (int p = 0; p < P; p++)
        assert_true(fabs(LP[1][p] - LP[0][p]) < 1e-13 * (1 + fabs(LP[0][p])));
    }
    for (int t = 0; t < 2; t++) {
      free(S[t]);
      free(R[t]);
      free(LP[t]);
    }
    free(work);
    free(Ei);
    free(Di);
    score_mixture_free(&sm);
  }
  mixture_free(&mixes[0]);
  mixture_free(&mixes[1]);
  free(X);
  free(dir);
  free(E);
  free(Delta);
  free(C);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mixture_closed_form_d2),
      cmocka_unit_test(test_mixture_score_is_gradient),
      cmocka_unit_test(test_tanh_form_equals_general),
      cmocka_unit_test(test_biroli_isotropic),
      cmocka_unit_test(test_stationary_compatible),
      cmocka_unit_test(test_mixture_edge_cases),
      cmocka_unit_test(test_empirical_vs_naive_blocks),
      cmocka_unit_test(test_empirical_max_logits),
      cmocka_unit_test(test_empirical_class_weights),
      cmocka_unit_test(test_empirical_single_precision),
      cmocka_unit_test(test_empirical_score_is_gradient),
      cmocka_unit_test(test_empirical_far_points),
      cmocka_unit_test(test_empirical_tweedie),
      cmocka_unit_test(test_empirical_edge_cases),
      cmocka_unit_test(test_empirical_isotropic_delta),
      cmocka_unit_test(test_empirical_thread_independent),
      cmocka_unit_test(test_mixture_isotropic_gamma),
      cmocka_unit_test(test_mixture_thread_independent),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
