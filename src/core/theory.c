/* Reference theory (see theory.h). */
#include "core/theory.h"
#include "util/error.h"
#include "core/linalg.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const double NRD_PI = 3.14159265358979323846;

/* ------------------------------------------------ Gaussian expectations */

enum { GAUSS_INTERVALS = 4096 };
static const double GAUSS_HALF_WIDTH = 12.0; /* standard deviations */

/* E f(w), w ~ N(m, v): composite Simpson on m +- 12 sqrt(v). */
static double gauss_expect(double m, double v,
                           double (*f)(double w, const void *ctx),
                           const void *ctx) {
  if (v <= 0) return f(m, ctx);
  double s = sqrt(v), h = 2 * GAUSS_HALF_WIDTH / GAUSS_INTERVALS, sum = 0;
  for (int i = 0; i <= GAUSS_INTERVALS; i++) {
    double z = -GAUSS_HALF_WIDTH + i * h;
    double wgt = (i == 0 || i == GAUSS_INTERVALS) ? 1 : (i % 2 ? 4 : 2);
    sum += wgt * exp(-0.5 * z * z) * f(m + s * z, ctx);
  }
  return sum * h / 3 / sqrt(2 * NRD_PI);
}

static double f_tanh(double w, const void *ctx) {
  (void)ctx;
  return tanh(w);
}

/* ln(1 + e^{-2w}) without overflow */
static double f_log1pexp(double w, const void *ctx) {
  (void)ctx;
  return w >= 0 ? log1p(exp(-2 * w)) : -2 * w + log1p(exp(2 * w));
}

double theory_F(double kappa) {
  if (!(kappa >= 0)) return NAN;
  return 0.5 * (1 + gauss_expect(kappa, kappa, f_tanh, NULL));
}

double theory_mutual_info(double kappa) {
  if (!(kappa >= 0)) return NAN;
  return log(2.0) - gauss_expect(kappa, kappa, f_log1pexp, NULL);
}

/* --------------------------------------------------------- root finding */

typedef int (*criterion_fn)(const void *ctx, double t, double *c);

enum { SCAN_POINTS = 64 };

/* Largest root of c(t) (c > 0 at small t, c < 0 at large t), see theory.h. */
static int largest_root(criterion_fn c, const void *ctx, double *root) {
  double hi = 1, v;
  int rc;
  for (;;) {
    if ((rc = c(ctx, hi, &v)) != NRD_OK) return rc;
    if (v < 0) break;
    if ((hi *= 2) > 1e6) return NRD_ERR_NUMERIC;
  }
  double lo = NAN;
  for (int i = SCAN_POINTS - 1; i >= 1 && isnan(lo); i--) {
    double t = hi * i / SCAN_POINTS;
    if ((rc = c(ctx, t, &v)) != NRD_OK) return rc;
    if (v >= 0) lo = t;
    else hi = t;
  }
  /* below the scan: halve towards 0 */
  for (int k = 0; k < 60 && isnan(lo); k++) {
    double t = hi / 2;
    if ((rc = c(ctx, t, &v)) != NRD_OK) return rc;
    if (v >= 0) lo = t;
    else hi = t;
  }
  if (isnan(lo)) return NRD_ERR_NUMERIC;
  while (hi - lo > 4 * 2.2e-16 * hi) {
    double mid = 0.5 * (lo + hi);
    if ((rc = c(ctx, mid, &v)) != NRD_OK) return rc;
    if (v >= 0) lo = mid;
    else hi = mid;
  }
  *root = 0.5 * (lo + hi);
  return NRD_OK;
}

/* ------------------------------------------- moments at one time t */

/* Workspace for criteria built from E = e^{-At}, Delta_t and congruences. */
typedef struct {
  const ou_op *op;
  int d;
  double *E, *Delta, *G, *M, *L, *W, *w, *V, *x;
  int L_diagonal; /* L = chol(G) is diagonal: solves are divisions */
} moments;

static int moments_init(moments *mo, const ou_op *op) {
  int d = op->d;
  size_t dd = (size_t)d * d;
  memset(mo, 0, sizeof *mo);
  mo->op = op;
  mo->d = d;
  double **f[] = {&mo->E, &mo->Delta, &mo->G, &mo->M, &mo->L, &mo->W, &mo->V};
  for (size_t k = 0; k < sizeof f / sizeof *f; k++)
    if (!(*f[k] = malloc(dd * sizeof(double)))) return NRD_ERR_NOMEM;
  mo->w = malloc((size_t)d * sizeof(double));
  mo->x = malloc((size_t)d * sizeof(double));
  return mo->w && mo->x ? NRD_OK : NRD_ERR_NOMEM;
}

static void moments_free(moments *mo) {
  free(mo->E);
  free(mo->Delta);
  free(mo->G);
  free(mo->M);
  free(mo->L);
  free(mo->W);
  free(mo->V);
  free(mo->w);
  free(mo->x);
}

/* G = E C E^T + Delta from mo's E and Delta (C may be NULL: G = Delta). */
static void moments_G(moments *mo, const double *C) {
  if (C) {
    ou_marginal_from(mo->d, mo->E, mo->Delta, C, mo->G, mo->W);
    return;
  }
  memcpy(mo->G, mo->Delta, (size_t)mo->d * mo->d * sizeof *mo->G);
  la_symmetrize(mo->d, mo->G);
}

/* E, Delta at t; G = E C E^T + Delta (C may be NULL: G = Delta). */
static int moments_at(moments *mo, double t, const double *C) {
  int rc = ou_moments(mo->op, t, mo->E, mo->Delta);
  if (rc != NRD_OK) return rc;
  moments_G(mo, C);
  return NRD_OK;
}

/* L = chol(G), noting whether it is diagonal (E, Delta and the data
 * covariance all diagonal: A = U diagonal, Q = 0), which turns the O(d^2)
 * solves below into d divisions with the same results. */
static int cholesky_G(moments *mo) {
  int rc = la_cholesky(mo->d, mo->G, mo->L);
  mo->L_diagonal = rc == NRD_OK && la_is_diagonal(mo->d, mo->L);
  return rc;
}

/* Solve L y = b in place (L = chol(G), lower triangular, row-major). */
static void forward_subst(const moments *mo, double *b) {
  int d = mo->d;
  const double *L = mo->L;
  for (int i = 0; i < d; i++) {
    double s = b[i];
    for (int j = 0; !mo->L_diagonal && j < i; j++)
      s -= L[(size_t)i * d + j] * b[j];
    b[i] = s / L[(size_t)i * d + i];
  }
}

/* Eigenvalues (ascending, in mo->w) of L^{-1} E X E^T L^{-T} with L the
 * Cholesky factor of mo->G: the spectrum of G^{-1/2} E X E^T G^{-1/2}. */
static int whitened_spectrum(moments *mo, const double *X) {
  int d = mo->d, rc = cholesky_G(mo);
  if (rc != NRD_OK) return rc;
  la_congruence(d, mo->E, X, mo->M, mo->W); /* M = E X E^T */
  /* M <- L^{-1} M L^{-T}: two triangular solves (BLAS-3; column by column
   * they were most of the start-up of a d = 784 run) */
  if (mo->L_diagonal) {
    for (int i = 0; i < d; i++)
      for (int j = 0; j < d; j++)
        mo->M[(size_t)i * d + j] /=
            mo->L[(size_t)i * d + i] * mo->L[(size_t)j * d + j];
  } else {
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans,
                CblasNonUnit, d, d, 1.0, mo->L, d, mo->M, d);
    cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans,
                CblasNonUnit, d, d, 1.0, mo->L, d, mo->M, d);
  }
  la_symmetrize(d, mo->M);
  return la_sym_eigvals(d, mo->M, mo->w, mo->V);
}

/* kappa from mo's G (and E). */
static int kappa_of_G(moments *mo, const double *mu, double *kappa) {
  int rc = cholesky_G(mo);
  if (rc != NRD_OK) return rc;
  la_matvec(mo->d, mo->E, mu, mo->x);
  forward_subst(mo, mo->x);
  double k = 0;
  for (int i = 0; i < mo->d; i++)
    k += mo->x[i] * mo->x[i];
  *kappa = k;
  return NRD_OK;
}

static int kappa_at(moments *mo, const double *mu, const double *C, double t,
                    double *kappa) {
  int rc = moments_at(mo, t, C);
  if (rc == NRD_OK) rc = kappa_of_G(mo, mu, kappa);
  return rc == NRD_ERR_NUMERIC && t == 0 ? NRD_ERR_INPUT : rc;
}

static int check_sym(int d, const double *M) {
  for (int i = 0; i < d * d; i++)
    if (!isfinite(M[i])) return NRD_ERR_INPUT;
  return NRD_OK;
}

int theory_kappa_from(const ou_op *op, const double *E, const double *Delta,
                      const double *mu, const double *C, double *kappa) {
  if (check_sym(op->d, C) != NRD_OK) return NRD_ERR_INPUT;
  moments mo;
  int rc = moments_init(&mo, op);
  if (rc == NRD_OK) {
    size_t dd = (size_t)op->d * op->d;
    memcpy(mo.E, E, dd * sizeof *E);
    memcpy(mo.Delta, Delta, dd * sizeof *Delta);
    moments_G(&mo, C);
    rc = kappa_of_G(&mo, mu, kappa);
  }
  moments_free(&mo);
  return rc;
}

int theory_kappa(const ou_op *op, const double *mu, const double *C, double t,
                 double *kappa) {
  if (!(t >= 0) || !isfinite(t) || check_sym(op->d, C) != NRD_OK)
    return NRD_ERR_INPUT;
  moments mo;
  int rc = moments_init(&mo, op);
  if (rc == NRD_OK) rc = kappa_at(&mo, mu, C, t, kappa);
  moments_free(&mo);
  return rc;
}

/* ------------------------------------------------ speciation criteria */

typedef struct {
  moments *mo;
  const double *mu, *C, *X; /* class mean, within-class cov, scatter */
  double alpha;             /* collapse: ln n / d */
  int gm2;                  /* collapse: add I(kappa_t)/d */
} crit_ctx;

static int crit_kappa(const void *p, double t, double *c) {
  const crit_ctx *x = p;
  double k;
  int rc = kappa_at(x->mo, x->mu, x->C, t, &k);
  *c = k - 1;
  return rc;
}

/* lambda_max of the whitened scatter X, minus 1 (C NULL: Gamma = Delta). */
static int crit_scatter(const void *p, double t, double *c) {
  const crit_ctx *x = p;
  int rc = moments_at(x->mo, t, x->C);
  if (rc == NRD_OK) rc = whitened_spectrum(x->mo, x->X);
  if (rc == NRD_OK) *c = x->mo->w[x->mo->d - 1] - 1;
  return rc;
}

int theory_tS_kappa(const ou_op *op, const double *mu, const double *C,
                    double *tS) {
  if (check_sym(op->d, C) != NRD_OK) return NRD_ERR_INPUT;
  moments mo;
  int rc = moments_init(&mo, op);
  crit_ctx x = {.mo = &mo, .mu = mu, .C = C};
  if (rc == NRD_OK) rc = largest_root(crit_kappa, &x, tS);
  moments_free(&mo);
  return rc;
}

int theory_tS_matrix(const ou_op *op, int K, const double *weights,
                     const double *means, const double *C, double *tS) {
  int d = op->d;
  if (K < 1 || check_sym(d, C) != NRD_OK) return NRD_ERR_INPUT;
  double *B = calloc((size_t)d * d, sizeof *B), *bar = calloc(d, sizeof *bar);
  moments mo;
  int rc = B && bar ? moments_init(&mo, op) : NRD_ERR_NOMEM;
  if (rc == NRD_OK) {
    for (int k = 0; k < K; k++)
      for (int i = 0; i < d; i++)
        bar[i] += weights[k] * means[(size_t)k * d + i];
    for (int k = 0; k < K; k++)
      for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
          B[(size_t)i * d + j] += weights[k] *
                                  (means[(size_t)k * d + i] - bar[i]) *
                                  (means[(size_t)k * d + j] - bar[j]);
    crit_ctx x = {.mo = &mo, .C = C, .X = B};
    rc = largest_root(crit_scatter, &x, tS);
  }
  if (B && bar) moments_free(&mo);
  free(B);
  free(bar);
  return rc;
}

int theory_tS_covariance(const ou_op *op, const double *Sigma0, double *tS) {
  if (check_sym(op->d, Sigma0) != NRD_OK) return NRD_ERR_INPUT;
  moments mo;
  int rc = moments_init(&mo, op);
  crit_ctx x = {.mo = &mo, .X = Sigma0};
  if (rc == NRD_OK) rc = largest_root(crit_scatter, &x, tS);
  moments_free(&mo);
  return rc;
}

/* -------------------------------------------------------------- collapse */

/* (1/2d) sum ln(1 + rho_i) [+ I(kappa_t)/d] - alpha */
static int crit_rem(const void *p, double t, double *c) {
  const crit_ctx *x = p;
  moments *mo = x->mo;
  int rc = moments_at(mo, t, NULL); /* Gamma = Delta */
  if (rc == NRD_OK) rc = whitened_spectrum(mo, x->C);
  if (rc != NRD_OK) return rc;
  double s = 0;
  for (int i = 0; i < mo->d; i++)
    s += log1p(fmax(mo->w[i], 0));
  s /= 2.0 * mo->d;
  if (x->gm2) {
    double k;
    if ((rc = kappa_at(mo, x->mu, x->C, t, &k)) != NRD_OK) return rc;
    s += theory_mutual_info(k) / mo->d;
  }
  *c = s - x->alpha;
  return NRD_OK;
}

static int tC(const ou_op *op, const double *mu, const double *C, double alpha,
              double *tC_out) {
  if (!(alpha > 0) || !isfinite(alpha) || check_sym(op->d, C) != NRD_OK)
    return NRD_ERR_INPUT;
  moments mo;
  int rc = moments_init(&mo, op);
  crit_ctx x = {.mo = &mo, .mu = mu, .C = C, .alpha = alpha, .gm2 = mu != NULL};
  if (rc == NRD_OK) rc = largest_root(crit_rem, &x, tC_out);
  moments_free(&mo);
  return rc;
}

int theory_tC_rem(const ou_op *op, const double *C, double alpha, double *t) {
  return tC(op, NULL, C, alpha, t);
}

int theory_tC_rem_gm2(const ou_op *op, const double *mu, const double *C,
                      double alpha, double *t) {
  return mu ? tC(op, mu, C, alpha, t) : NRD_ERR_INPUT;
}

/* ------------------------------------------------------ autocorrelations */

static double trace(int d, const double *M) {
  double s = 0;
  for (int i = 0; i < d; i++)
    s += M[(size_t)i * d + i];
  return s;
}

int theory_cuturn_gaussian(const ou_op *op, const double *Sigma0,
                           const double *mean, double T, double *c) {
  int d = op->d;
  if (!(T > 0) || !isfinite(T) || check_sym(d, Sigma0) != NRD_OK)
    return NRD_ERR_INPUT;
  moments mo;
  int rc = moments_init(&mo, op);
  if (rc == NRD_OK) rc = moments_at(&mo, T, Sigma0); /* G = Sigma_T */
  if (rc == NRD_OK) rc = cholesky_G(&mo);
  if (rc == NRD_OK) {
    /* tr(N^T Sigma_T^{-1} N) = |L^{-1} N|_F^2 with N = E Sigma0 */
    la_matmul(d, mo.E, Sigma0, mo.M);
    double s = 0;
    for (int j = 0; j < d; j++) {
      for (int i = 0; i < d; i++)
        mo.x[i] = mo.M[(size_t)i * d + j];
      forward_subst(&mo, mo.x);
      for (int i = 0; i < d; i++)
        s += mo.x[i] * mo.x[i];
    }
    /* with a mean mu: E[x0.y0] = |mu|^2 + that trace, E|x0|^2 = |mu|^2 +
     * tr Sigma0 (the conditional mean's centred part is uncorrelated) */
    double m2 = 0;
    for (int i = 0; mean && i < d; i++)
      m2 += mean[i] * mean[i];
    *c = (m2 + s) / (m2 + trace(d, Sigma0));
  }
  moments_free(&mo);
  return rc;
}

typedef struct {
  double a;
  int with_u;
} tanh_ctx;

static double f_tanh_au(double u, const void *p) {
  const tanh_ctx *x = p;
  double th = tanh(x->a * u);
  return x->with_u ? u * th : th * th;
}

double theory_cuturn_gm2_isotropic(int d, double mu, double sigma, double T) {
  if (d < 1 || !(T > 0) || !(mu >= 0) || !(sigma >= 0)) return NAN;
  double e1 = exp(-T), e2 = exp(-2 * T), D = -expm1(-2 * T);
  double G = D + sigma * sigma * e2, c = sigma * sigma * e1 / G;
  double a = mu * e1 / G, r = D / G;
  tanh_ctx sq = {a, 0}, lin = {a, 1};
  double Et2 = gauss_expect(mu * e1, G, f_tanh_au, &sq);
  double Eut = gauss_expect(mu * e1, G, f_tanh_au, &lin);
  double num = r * r * mu * mu * Et2 + 2 * c * r * mu * Eut +
               c * c * (mu * mu * e2 + d * G);
  return num / (mu * mu + d * sigma * sigma);
}

int theory_two_time_corr(const ou_op *op, const double *Sigma0, double s,
                         double t, double *c) {
  int d = op->d;
  if (!(s >= 0) || !(t >= s) || !isfinite(t) || check_sym(d, Sigma0) != NRD_OK)
    return NRD_ERR_INPUT;
  size_t dd = (size_t)d * d;
  double *Ss = malloc(dd * sizeof *Ss), *St = malloc(dd * sizeof *St);
  double *E = malloc(dd * sizeof *E), *P = malloc(dd * sizeof *P);
  int rc = Ss && St && E && P ? NRD_OK : NRD_ERR_NOMEM;
  if (rc == NRD_OK) rc = ou_marginal_cov(op, s, Sigma0, Ss);
  if (rc == NRD_OK) rc = ou_marginal_cov(op, t, Sigma0, St);
  if (rc == NRD_OK) rc = ou_propagator(op, t - s, E);
  if (rc == NRD_OK) {
    la_matmul(d, E, Ss, P);
    *c = trace(d, P) / sqrt(trace(d, Ss) * trace(d, St));
  }
  free(Ss);
  free(St);
  free(E);
  free(P);
  return rc;
}

/* ------------------------------------------------ Biroli, Raya-Ambrogioni */

double theory_phi_biroli(int d, double t) {
  return theory_F(d * exp(-2 * t));
}

double theory_theta_c_1d(void) {
  return sqrt(sqrt(2.0) - 1);
}

double theory_fixed_point_1d(double th) {
  if (!(th > theory_theta_c_1d() && th < 1)) return NAN;
  double k = 1 + th * th, b = th / (1 - th * th);
  /* g(x) = k x - 2 th tanh(b x): g < 0 just above 0 (th > theta_c),
   * g >= 0 at x = 2 th / k */
  double lo = 1e-9, hi = 2 * th / k;
  while (hi - lo > 1e-15) {
    double mid = 0.5 * (lo + hi);
    if (k * mid - 2 * th * tanh(b * mid) < 0) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

double theory_tc_symmetric(double Lambda) {
  return 0.5 * asinh(Lambda);
}

double theory_theta_hyperspherical(int D, double r) {
  double r2 = r * r;
  return sqrt((sqrt((double)D * D + r2 * r2) - r2) / D);
}

int theory_ddpm_first_step_below(double theta, int nsteps, double beta1,
                                 double betaT) {
  double abar = 1;
  for (int k = 1; k <= nsteps; k++) {
    double beta =
        nsteps > 1 ? beta1 + (betaT - beta1) * (k - 1) / (nsteps - 1) : beta1;
    abar *= 1 - beta;
    if (sqrt(abar) < theta) return k - 1;
  }
  return -1;
}
