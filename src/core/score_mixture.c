/* The exact Gaussian-mixture score (doc/theory.md section 4.2; see score.h).
 *
 * Batches of P particles are evaluated with BLAS-3 calls, so a particle's
 * score depends at round-off level on the batch it was evaluated in (GEMM
 * blocking); callers that need rank-count independence evaluate fixed
 * particle blocks, as the run plan does.  The element-wise passes between
 * the GEMMs (the softmax over components, the tanh form) are split over
 * rows among as many threads as OpenBLAS uses; every row is computed by the
 * same code whatever the split, so results do not depend on the thread
 * count. */
#include "core/score.h"
#include "core/parallel.h"
#include "core/score_kernels.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "util/error.h"
#include "core/linalg.h"

#define LN_2 0.69314718055994530942

/* Tolerance for "Gamma is a multiple of I": a matrix that is gamma I in
 * exact arithmetic (U = u I, isotropic or stationary clusters, any Q) comes
 * out of e^{-At} C e^{-A^T t} + Delta with errors of a few d eps gamma at
 * most (sums of d products); replacing it by gamma I changes the score by
 * that relative amount, the size of the round-off of the dense path. */
static double iso_tol(int d) { return 4.0 * d * DBL_EPSILON; }

/* ln cosh w without overflow for any w. */
static double log_cosh(double w) {
  double a = fabs(w);
  return a + log1p(exp(-2 * a)) - LN_2;
}

int score_mixture_init(score_mixture *s, const mixture *mix) {
  memset(s, 0, sizeof *s);
  if (!mix || mix->d < 1 || mix->K < 1)
    return NRD_FAIL(NRD_ERR_INPUT, "mixture score: no mixture, or d or K < 1");
  int d = mix->d, K = mix->K;
  size_t dd = (size_t)d * d;
  s->d = d;
  s->K = K;
  s->mix = mix;
  s->m_t = malloc((size_t)K * d * sizeof *s->m_t);
  s->L = malloc((size_t)K * dd * sizeof *s->L);
  s->Ginv = malloc((size_t)K * dd * sizeof *s->Ginv);
  s->logdet = malloc((size_t)K * sizeof *s->logdet);
  s->Ginv_m = malloc((size_t)K * d * sizeof *s->Ginv_m);
  s->iso = malloc((size_t)K * sizeof *s->iso);
  if (!s->m_t || !s->L || !s->Ginv || !s->logdet || !s->Ginv_m || !s->iso) {
    score_mixture_free(s);
    return NRD_FAIL(NRD_ERR_NOMEM, "mixture score: K = %d, d = %d", K, d);
  }
  return NRD_OK;
}

void score_mixture_free(score_mixture *s) {
  free(s->m_t);
  free(s->L);
  free(s->Ginv);
  free(s->logdet);
  free(s->Ginv_m);
  free(s->iso);
  memset(s, 0, sizeof *s);
}

/* G = E C_k E^T + Delta = (E F_k)(E F_k)^T + Delta, with F_k the mixture's
 * sampling factor (sigma E for isotropic C); only the lower triangle of G
 * is meaningful afterwards.  When E and F_k are diagonal (Q = 0 and a
 * diagonal U, diagonal C) E C E^T is diagonal: O(d) instead of the d^3
 * products.  T: d x d scratch. */
static void gamma_k(const mixture *mix, int k, const double *E, int E_diag,
                    const double *Dsym, double *G, double *T) {
  int d = mix->d;
  size_t dd = (size_t)d * d;
  memcpy(G, Dsym, dd * sizeof *G);
  if (mix->cov_kind == MIX_COV_ISOTROPIC) {
    if (!(mix->sigma2 > 0)) return;
    if (E_diag)
      for (int i = 0; i < d; i++) {
        double e = E[(size_t)i * d + i];
        G[(size_t)i * d + i] += mix->sigma2 * e * e;
      }
    else
      cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, d, d, mix->sigma2, E,
                  d, 1.0, G, d);
    return;
  }
  const double *F = mix->cov_factor + (mix->cov_shared ? 0 : (size_t)k * dd);
  if (E_diag &&
      (mix->cov_factor_form == MIX_FACTOR_DIAGONAL || la_is_diagonal(d, F))) {
    for (int i = 0; i < d; i++) {
      double t = E[(size_t)i * d + i] * F[(size_t)i * d + i];
      G[(size_t)i * d + i] += t * t;
    }
    return;
  }
  la_matmul(d, E, F, T); /* a scaling of columns when F is diagonal */
  cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, d, d, 1.0, T, d, 1.0, G,
              d);
}

/* Gamma_k's diagonal into gd (d) when E, Delta and C_k are all diagonal
 * (Q = 0, a diagonal U, isotropic or diagonal clusters): O(d), no d x d
 * matrix formed.  Returns 0 (gd unset) otherwise. */
static int gamma_k_diagonal(const mixture *mix, int k, const double *E,
                            const double *Delta, double *gd) {
  int d = mix->d;
  size_t dd = (size_t)d * d;
  const double *F = NULL;
  if (mix->cov_kind != MIX_COV_ISOTROPIC) {
    F = mix->cov_factor + (mix->cov_shared ? 0 : (size_t)k * dd);
    if (mix->cov_factor_form != MIX_FACTOR_DIAGONAL && !la_is_diagonal(d, F))
      return 0;
  }
  for (int i = 0; i < d; i++) {
    double e = E[(size_t)i * d + i], v;
    if (F) {
      double t = e * F[(size_t)i * d + i];
      v = t * t;
    } else {
      v = mix->sigma2 > 0 ? mix->sigma2 * e * e : 0;
    }
    gd[i] = Delta[(size_t)i * d + i] + v;
  }
  return 1;
}

#define GAMMA_K "Gamma_{k,t} = e^{-At} C_k e^{-A^T t} + Delta_t"

int score_mixture_set_time(score_mixture *s, const double *E,
                           const double *Delta) {
  const mixture *mix = s->mix;
  int d = s->d, K = s->K;
  size_t dd = (size_t)d * d;
  int E_diag = la_is_diagonal(d, E), diag = E_diag && la_is_diagonal(d, Delta);
  double *gd = diag ? malloc((size_t)d * sizeof *gd) : NULL;
  double *Dsym = NULL, *T = NULL; /* the dense path's, when first needed */
  int rc = !diag || gd ? NRD_OK : NRD_FAIL(NRD_ERR_NOMEM, "d = %d", d);
  for (int k = 0; k < K && rc == NRD_OK; k++) {
    const double *mu = mix->means + (size_t)k * d;
    double *mt = s->m_t + (size_t)k * d;
    if (E_diag)
      for (int j = 0; j < d; j++)
        mt[j] = E[(size_t)j * d + j] * mu[j];
    else
      cblas_dgemv(CblasRowMajor, CblasNoTrans, d, d, 1.0, E, d, mu, 1, 0.0, mt,
                  1);
    double *L = s->L + (size_t)k * dd, *Gi = s->Ginv + (size_t)k * dd;
    if (k > 0 && mix->cov_shared) { /* Gamma_k = Gamma_0 */
      s->iso[k] = s->iso[0];
      if (!(s->iso[0] > 0)) {
        memcpy(L, s->L, dd * sizeof *L);
        memcpy(Gi, s->Ginv, dd * sizeof *Gi);
      }
      s->logdet[k] = s->logdet[0];
    } else {
      double g = 0;
      int have_diag = diag && gamma_k_diagonal(mix, k, E, Delta, gd);
      if (have_diag && gd[0] > 0 && isfinite(gd[0])) {
        g = gd[0];
        for (int i = 1; i < d && g > 0; i++)
          if (!(fabs(gd[i] - g) <= iso_tol(d) * g)) g = 0;
      }
      if (g == 0) { /* dense: Gamma_k, its Cholesky factor and inverse */
        if (!Dsym) {
          Dsym = malloc(dd * sizeof *Dsym);
          T = malloc(dd * sizeof *T);
          if (!Dsym || !T) {
            rc = NRD_FAIL(NRD_ERR_NOMEM, "Gamma_{k,t}, d = %d", d);
            break;
          }
          score_symmetrized(d, Delta, Dsym);
        }
        gamma_k(mix, k, E, E_diag, Dsym, L, T);
        g = score_iso_value(d, L, iso_tol(d));
      }
      s->iso[k] = g;
      if (g > 0) { /* Gamma = g I: no factorisation, no GEMM in eval */
        s->logdet[k] = d * log(g);
      } else {
        /* reads the lower triangle only */
        NRD_TRY(rc, score_chol_lower(d, L, GAMMA_K));
        NRD_TRY(rc, score_chol_inverse(d, L, Gi, GAMMA_K));
        if (rc == NRD_OK) s->logdet[k] = la_chol_logdet(d, L);
      }
    }
    if (rc != NRD_OK) break;
    double *gm = s->Ginv_m + (size_t)k * d;
    if (s->iso[k] > 0)
      for (int j = 0; j < d; j++)
        gm[j] = mt[j] / s->iso[k];
    else
      cblas_dsymv(CblasRowMajor, CblasLower, d, 1.0, Gi, d, mt, 1, 0.0, gm, 1);
  }
  s->kappa =
      rc == NRD_OK && mix->symmetric2 ? score_dot8(d, s->m_t, s->Ginv_m) : 0;
  free(gd);
  free(Dsym);
  free(T);
  return rc;
}

size_t score_mixture_work_size(const score_mixture *s, int P) {
  size_t p = P > 0 ? (size_t)P : 0;
  return 2 * p * s->d + p * (s->K + 2);
}

/* Symmetric two classes +-m, common Gamma (doc/theory.md (4.6), (4.7)):
 *   s = -G x + (G m) tanh(w),  w = m^T G x,  r_+ = 1 / (1 + e^{-2w}),
 *   ln p = -1/2 ln det Gamma - 1/2 (x^T G x + kappa) + ln cosh w
 *          - d/2 ln 2 pi.
 * x^T G x + kappa - 2|w| = (x -+ m)^T G (x -+ m) cancels at relative
 * precision 1e-16 kappa, harmless for ln p at the separations used.
 * Gamma = g I: G x = x/g, one pass over the particles, no GEMM. */
typedef struct {
  const score_mixture *s;
  const double *X;
  double *score, *resp, *logp;
} sym2_ctx;

static void sym2_rows(void *vc, int p0, int p1) {
  const sym2_ctx *c = vc;
  const score_mixture *s = c->s;
  int d = s->d;
  const double *gm = s->Ginv_m;
  double g = s->iso[0], ginv = g > 0 ? 1.0 / g : 0;
  for (int p = p0; p < p1; p++) {
    const double *x = c->X + (size_t)p * d;
    double *r = c->score + (size_t)p * d;
    double w = score_dot8(d, x, gm), th = tanh(w), xGx = 0;
    if (g > 0) {
      if (c->logp) xGx = ginv * score_dot8(d, x, x);
      score_lincomb(d, r, th, gm, -ginv, x);
    } else { /* r = -G x from the GEMM */
      if (c->logp) xGx = -score_dot8(d, x, r);
      score_lincomb(d, r, th, gm, 1.0, r);
    }
    if (c->logp)
      c->logp[p] = -0.5 * s->logdet[0] - 0.5 * (xGx + s->kappa) + log_cosh(w) -
                   0.5 * d * LN_2PI;
    if (c->resp) {
      c->resp[2 * p] = 1 / (1 + exp(-2 * w));
      c->resp[2 * p + 1] = 1 / (1 + exp(2 * w));
    }
  }
}

static void eval_symmetric2(const score_mixture *s, int P, const double *X,
                            double *score, double *resp, double *logp) {
  int d = s->d;
  if (!(s->iso[0] > 0))
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, P, d, d, -1.0, X, d,
                s->Ginv, d, 0.0, score, d);
  sym2_ctx c = {s, X, score, resp, logp};
  nrd_par_rows(P, 3.0 * d, sym2_rows, &c);
}

/* General K (doc/theory.md (4.3)-(4.5)): l_k = ln pi_k - 1/2 ln det Gamma_k
 * - 1/2 (x - m_k)^T G_k (x - m_k), s = -sum_k r_k G_k (x - m_k), with the
 * softmax accumulated online over k (running max, rescaled sums) so that
 * only one P x d product is held at a time.  Gamma_k = g I: G_k D = D/g,
 * no GEMM. */
typedef struct {
  const score_mixture *s;
  int k, P;
  const double *X;
  double *score, *resp, *logp, *D, *Y, *l, *M, *S0;
} gen_ctx;

static void gen_diff_rows(void *vc, int p0, int p1) { /* D = X - m_k */
  const gen_ctx *c = vc;
  int d = c->s->d;
  const double *mk = c->s->m_t + (size_t)c->k * d;
  for (int p = p0; p < p1; p++) {
    const double *x = c->X + (size_t)p * d;
    score_lincomb(d, c->D + (size_t)p * d, 1.0, x, -1.0, mk);
  }
}

/* Online softmax update of component k for rows [p0, p1). */
static void gen_acc_rows(void *vc, int p0, int p1) {
  const gen_ctx *c = vc;
  const score_mixture *s = c->s;
  int d = s->d, K = s->K, k = c->k;
  double g = s->iso[k], ginv = g > 0 ? 1.0 / g : 0;
  double cst = log(s->mix->weights[k]) - 0.5 * s->logdet[k];
  const double *mk = s->m_t + (size_t)k * d;
  for (int p = p0; p < p1; p++) {
    double *acc = c->score + (size_t)p * d, lk;
    const double *x = c->X + (size_t)p * d, *D = NULL, *y = NULL;
    if (g > 0) {
      lk = cst - 0.5 * ginv * score_dist2(d, x, mk);
    } else {
      D = c->D + (size_t)p * d;
      y = c->Y + (size_t)p * d;
      lk = cst - 0.5 * score_dot8(d, D, y);
    }
    c->l[(size_t)p * K + k] = lk;
    if (lk > c->M[p]) { /* new maximum: rescale what was summed so far */
      double f = exp(c->M[p] - lk);
      c->S0[p] *= f;
      score_scale(d, acc, f);
      c->M[p] = lk;
    }
    double e = exp(lk - c->M[p]);
    c->S0[p] += e;
    if (g > 0)
      score_add_scaled_diff(d, acc, e * ginv, x, mk);
    else
      score_lincomb(d, acc, e, y, 1.0, acc);
  }
}

static void gen_init_rows(void *vc, int p0, int p1) {
  const gen_ctx *c = vc;
  int d = c->s->d;
  memset(c->score + (size_t)p0 * d, 0, (size_t)(p1 - p0) * d * sizeof(double));
  for (int p = p0; p < p1; p++) {
    c->M[p] = -INFINITY;
    c->S0[p] = 0;
  }
}

static void gen_final_rows(void *vc, int p0, int p1) {
  const gen_ctx *c = vc;
  int d = c->s->d, K = c->s->K;
  for (int p = p0; p < p1; p++) {
    score_scale(d, c->score + (size_t)p * d, -1.0 / c->S0[p]);
    if (c->logp) c->logp[p] = c->M[p] + log(c->S0[p]) - 0.5 * d * LN_2PI;
    if (c->resp)
      for (int k = 0; k < K; k++)
        c->resp[(size_t)p * K + k] =
            exp(c->l[(size_t)p * K + k] - c->M[p]) / c->S0[p];
  }
}

static void eval_general(const score_mixture *s, int P, const double *X,
                         double *score, double *resp, double *logp,
                         double *work) {
  int d = s->d, K = s->K;
  size_t Pd = (size_t)P * d;
  double *D = work, *Y = work + Pd, *l = Y + Pd, *M = l + (size_t)P * K,
         *S0 = M + P;
  gen_ctx c = {s, 0, P, X, score, resp, logp, D, Y, l, M, S0};
  nrd_par_rows(P, d, gen_init_rows, &c);
  for (int k = 0; k < K; k++) {
    c.k = k;
    if (!(s->mix->weights[k] > 0)) { /* absent component: r_k = 0 */
      for (int p = 0; p < P; p++)
        l[(size_t)p * K + k] = -INFINITY;
      continue;
    }
    if (!(s->iso[k] > 0)) {
      nrd_par_rows(P, d, gen_diff_rows, &c);
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, P, d, d, 1.0, D,
                  d, s->Ginv + (size_t)k * d * d, d, 0.0, Y, d);
    }
    nrd_par_rows(P, 4.0 * d, gen_acc_rows, &c);
  }
  nrd_par_rows(P, d + K, gen_final_rows, &c);
}

int score_mixture_eval(const score_mixture *s, int P, const double *X,
                       double *score, double *resp, double *logp,
                       double *work) {
  if (P < 0 || (P > 0 && (!X || !score || !work)))
    return NRD_FAIL(NRD_ERR_INPUT, "mixture score of %d particles: no %s", P,
                    P < 0 ? "batch" : "X, score or work");
  if (P == 0) return NRD_OK;
  if (s->mix->symmetric2)
    eval_symmetric2(s, P, X, score, resp, logp);
  else
    eval_general(s, P, X, score, resp, logp, work);
  return NRD_OK;
}
