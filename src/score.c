/* Exact scores of the noised data law p_t (physics.md 1.3 (a), (b)).
 *
 * Batches of P particles are evaluated with BLAS-3 calls, so a particle's
 * score depends at round-off level on the batch it was evaluated in (GEMM
 * blocking); callers that need rank-count independence evaluate fixed
 * particle blocks, as the run plan does. */
#include "nrdiff/score.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <lapacke.h>

#include "nrdiff/error.h"

#define LN_2PI 1.83787706640934548356
#define LN_2 0.69314718055994530942

/* ------------------------------------------------------------- helpers */

/* M <- its lower Cholesky factor, in place, upper triangle zeroed.  A
 * row-major lower factor is the column-major upper one of the same memory,
 * which spares LAPACKE's transposition. */
static int chol_lower(int d, double *M) {
  int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', d, M, d);
  if (info != 0) return info > 0 ? NRD_ERR_NUMERIC : NRD_ERR_LAPACK;
  for (int i = 0; i < d; i++)
    for (int j = i + 1; j < d; j++)
      M[(size_t)i * d + j] = 0;
  return NRD_OK;
}

/* Minv = M^{-1} from the lower Cholesky factor L of M. */
static int chol_inverse(int d, const double *L, double *Minv) {
  memcpy(Minv, L, (size_t)d * d * sizeof *Minv);
  if (LAPACKE_dpotri(LAPACK_COL_MAJOR, 'U', d, Minv, d) != 0)
    return NRD_ERR_LAPACK;
  for (int i = 0; i < d; i++)
    for (int j = i + 1; j < d; j++)
      Minv[(size_t)i * d + j] = Minv[(size_t)j * d + i];
  return NRD_OK;
}

static double chol_logdet(int d, const double *L) {
  double s = 0;
  for (int i = 0; i < d; i++)
    s += log(L[(size_t)i * d + i]);
  return 2 * s;
}

/* (M + M^T)/2 into S. */
static void symmetrized(int d, const double *M, double *S) {
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++)
      S[(size_t)i * d + j] =
          0.5 * (M[(size_t)i * d + j] + M[(size_t)j * d + i]);
}

/* ln cosh w without overflow for any w. */
static double log_cosh(double w) {
  double a = fabs(w);
  return a + log1p(exp(-2 * a)) - LN_2;
}

/* ------------------------------------------------- vectorised exp */

/* The empirical score takes P x n exponentials per evaluation (as many as
 * GEMM multiply-adds / d); libm's exp is not vectorised without
 * -ffast-math, so this is fdlibm's e_exp.c (< 1 ulp) written branch-free
 * for non-positive arguments, in chunks of compile-time length that GCC
 * vectorises at -O2.  Results below e^-708 (relative to a weight of 1) are
 * flushed to 0, which keeps 2^k normal; a NaN argument also gives 0 (NaN
 * inputs still reach the outputs through the other terms). */
enum { EXP_CHUNK = 64 };

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) &&         \
    defined(__linux__)
#define NRD_CLONES                                                             \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NRD_CLONES
#endif

static inline void exp_chunk(double *x, double shift) {
  const double inv_ln2 = 1.44269504088896338700e+00,
               ln2_hi = 6.93147180369123816490e-01,
               ln2_lo = 1.90821492927058770002e-10,
               P1 = 1.66666666666666019037e-01,
               P2 = -2.77777777770155933842e-03,
               P3 = 6.61375632143793436117e-05,
               P4 = -1.65339022054652515390e-06,
               P5 = 4.13813679705723846039e-08;
  const uint64_t sign = 0x8000000000000000ULL;
  const double lowest = -708.0;
  uint64_t lowest_bits;
  memcpy(&lowest_bits, &lowest, sizeof lowest_bits);
  for (int i = 0; i < EXP_CHUNK; i++) {
    /* x < -708 as an integer compare (an FP compare would keep GCC from
     * vectorising without AVX-512): for x <= 0 the bit patterns order like
     * |x|, and the forced sign bit puts +0 with -0 (and a NaN below). */
    double xs = x[i] - shift;
    uint64_t xb;
    memcpy(&xb, &xs, sizeof xb);
    uint64_t low = 0 - (uint64_t)((xb | sign) > lowest_bits);
    uint64_t cb = (xb & ~low) | (lowest_bits & low);
    double xc;
    memcpy(&xc, &cb, sizeof xc);
    /* k = round(x / ln 2) from the bits of x/ln2 + 1.5 2^52. */
    double t = xc * inv_ln2 + 0x1.8p52;
    uint64_t tb;
    memcpy(&tb, &t, sizeof tb);
    double k = t - 0x1.8p52;
    double hi = xc - k * ln2_hi, lo = k * ln2_lo, r = hi - lo;
    double r2 = r * r;
    double c = r - r2 * (P1 + r2 * (P2 + r2 * (P3 + r2 * (P4 + r2 * P5))));
    double y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    /* 2^k, k in [-1022, 0]: the low 12 bits of tb + 1023 are k + 1023;
     * below the range the mask makes the result +0. */
    uint64_t pb = ((tb + 1023) << 52) & ~low;
    double p2k;
    memcpy(&p2k, &pb, sizeof p2k);
    x[i] = y * p2k;
  }
}

/* x <- exp(x - shift) for n values x <= shift (NaN in, 0 out). */
NRD_CLONES static void exp_shifted(size_t n, double *x, double shift) {
  size_t i = 0;
  for (; i + EXP_CHUNK <= n; i += EXP_CHUNK)
    exp_chunk(x + i, shift);
  if (i < n) {
    double buf[EXP_CHUNK];
    for (size_t j = 0; j < EXP_CHUNK; j++)
      buf[j] = shift;
    memcpy(buf, x + i, (n - i) * sizeof *x);
    exp_chunk(buf, shift);
    memcpy(x + i, buf, (n - i) * sizeof *x);
  }
}

/* g <- g - hb and return max_j g_j: eight running maxima (the form
 * GCC vectorises to maxpd; a single one is a serial dependence). */
NRD_CLONES static double shift_max(int n, double *g, const double *hb) {
  double m[8];
  for (int k = 0; k < 8; k++)
    m[k] = -INFINITY;
  int j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; k++) {
      double x = g[j + k] - hb[j + k];
      g[j + k] = x;
      m[k] = x > m[k] ? x : m[k];
    }
  for (; j < n; j++) {
    g[j] -= hb[j];
    m[0] = g[j] > m[0] ? g[j] : m[0];
  }
  double r = m[0];
  for (int k = 1; k < 8; k++)
    r = m[k] > r ? m[k] : r;
  return r;
}

/* -------------------------------------------------- mixture score (a) */

int score_mixture_init(score_mixture *s, const mixture *mix) {
  memset(s, 0, sizeof *s);
  if (!mix || mix->d < 1 || mix->K < 1) return NRD_ERR_INPUT;
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
  if (!s->m_t || !s->L || !s->Ginv || !s->logdet || !s->Ginv_m) {
    score_mixture_free(s);
    return NRD_ERR_NOMEM;
  }
  return NRD_OK;
}

void score_mixture_free(score_mixture *s) {
  free(s->m_t);
  free(s->L);
  free(s->Ginv);
  free(s->logdet);
  free(s->Ginv_m);
  memset(s, 0, sizeof *s);
}

/* G = E C_k E^T + Delta = (E F_k)(E F_k)^T + Delta, with F_k the mixture's
 * sampling factor (sigma E for isotropic C); only the lower triangle of G
 * is meaningful afterwards.  T: d x d scratch. */
static void gamma_k(const mixture *mix, int k, const double *E,
                    const double *Dsym, double *G, double *T) {
  int d = mix->d;
  size_t dd = (size_t)d * d;
  memcpy(G, Dsym, dd * sizeof *G);
  if (mix->cov_kind == MIX_COV_ISOTROPIC) {
    if (mix->sigma2 > 0)
      cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, d, d, mix->sigma2, E,
                  d, 1.0, G, d);
    return;
  }
  const double *F = mix->cov_factor + (mix->cov_shared ? 0 : (size_t)k * dd);
  if (mix->cov_factor_form == MIX_FACTOR_DIAGONAL) {
    for (int i = 0; i < d; i++)
      for (int j = 0; j < d; j++)
        T[(size_t)i * d + j] = E[(size_t)i * d + j] * F[(size_t)j * d + j];
  } else {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, E, d,
                F, d, 0.0, T, d);
  }
  cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, d, d, 1.0, T, d, 1.0, G,
              d);
}

int score_mixture_set_time(score_mixture *s, const double *E,
                           const double *Delta) {
  const mixture *mix = s->mix;
  int d = s->d, K = s->K;
  size_t dd = (size_t)d * d;
  double *Dsym = malloc(dd * sizeof *Dsym), *T = malloc(dd * sizeof *T);
  int rc = Dsym && T ? NRD_OK : NRD_ERR_NOMEM;
  if (rc == NRD_OK) symmetrized(d, Delta, Dsym);
  for (int k = 0; k < K && rc == NRD_OK; k++) {
    cblas_dgemv(CblasRowMajor, CblasNoTrans, d, d, 1.0, E, d,
                mix->means + (size_t)k * d, 1, 0.0, s->m_t + (size_t)k * d, 1);
    double *L = s->L + (size_t)k * dd, *Gi = s->Ginv + (size_t)k * dd;
    if (k > 0 && mix->cov_shared) { /* Gamma_k = Gamma_0 */
      memcpy(L, s->L, dd * sizeof *L);
      memcpy(Gi, s->Ginv, dd * sizeof *Gi);
      s->logdet[k] = s->logdet[0];
    } else {
      gamma_k(mix, k, E, Dsym, L, T);
      rc = chol_lower(d, L); /* reads the lower triangle only */
      if (rc == NRD_OK) rc = chol_inverse(d, L, Gi);
      if (rc == NRD_OK) s->logdet[k] = chol_logdet(d, L);
    }
    if (rc == NRD_OK)
      cblas_dsymv(CblasRowMajor, CblasLower, d, 1.0, Gi, d,
                  s->m_t + (size_t)k * d, 1, 0.0, s->Ginv_m + (size_t)k * d, 1);
  }
  s->kappa = rc == NRD_OK && mix->symmetric2
                 ? cblas_ddot(d, s->m_t, 1, s->Ginv_m, 1)
                 : 0;
  free(Dsym);
  free(T);
  return rc;
}

size_t score_mixture_work_size(const score_mixture *s, int P) {
  size_t p = P > 0 ? (size_t)P : 0;
  return 2 * p * s->d + p * (s->K + 2);
}

/* Symmetric two classes +-m, common Gamma (physics.md 1.3 (a)):
 *   s = -G x + (G m) tanh(w),  w = m^T G x,  r_+ = 1 / (1 + e^{-2w}),
 *   ln p = -1/2 ln det Gamma - 1/2 (x^T G x + kappa) + ln cosh w
 *          - d/2 ln 2 pi.
 * x^T G x + kappa - 2|w| = (x -+ m)^T G (x -+ m) cancels at relative
 * precision 1e-16 kappa, harmless for ln p at the separations used. */
static void eval_symmetric2(const score_mixture *s, int P, const double *X,
                            double *score, double *resp, double *logp,
                            double *work) {
  int d = s->d;
  const double *gm = s->Ginv_m;
  double *w = work, *th = work + P;
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, P, d, d, -1.0, X, d,
              s->Ginv, d, 0.0, score, d);
  cblas_dgemv(CblasRowMajor, CblasNoTrans, P, d, 1.0, X, d, gm, 1, 0.0, w, 1);
  for (int p = 0; p < P; p++) {
    th[p] = tanh(w[p]);
    if (logp) {
      double xGx =
          -cblas_ddot(d, X + (size_t)p * d, 1, score + (size_t)p * d, 1);
      logp[p] = -0.5 * s->logdet[0] - 0.5 * (xGx + s->kappa) + log_cosh(w[p]) -
                0.5 * d * LN_2PI;
    }
    if (resp) {
      resp[2 * p] = 1 / (1 + exp(-2 * w[p]));
      resp[2 * p + 1] = 1 / (1 + exp(2 * w[p]));
    }
  }
  cblas_dger(CblasRowMajor, P, d, 1.0, th, 1, gm, 1, score, d);
}

/* General K (physics.md 1.3 (a)): l_k = ln pi_k - 1/2 ln det Gamma_k
 * - 1/2 (x - m_k)^T G_k (x - m_k), s = -sum_k r_k G_k (x - m_k), with the
 * softmax accumulated online over k (running max, rescaled sums) so that
 * only one P x d product is held at a time. */
static void eval_general(const score_mixture *s, int P, const double *X,
                         double *score, double *resp, double *logp,
                         double *work) {
  int d = s->d, K = s->K;
  size_t Pd = (size_t)P * d;
  double *D = work, *Y = work + Pd, *l = Y + Pd, *M = l + (size_t)P * K,
         *S0 = M + P;
  memset(score, 0, Pd * sizeof *score);
  for (int p = 0; p < P; p++) {
    M[p] = -INFINITY;
    S0[p] = 0;
  }
  for (int k = 0; k < K; k++) {
    double wk = s->mix->weights[k];
    const double *mk = s->m_t + (size_t)k * d;
    if (!(wk > 0)) { /* absent component: r_k = 0 */
      for (int p = 0; p < P; p++)
        l[(size_t)p * K + k] = -INFINITY;
      continue;
    }
    for (int p = 0; p < P; p++)
      for (int j = 0; j < d; j++)
        D[(size_t)p * d + j] = X[(size_t)p * d + j] - mk[j];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, P, d, d, 1.0, D, d,
                s->Ginv + (size_t)k * d * d, d, 0.0, Y, d);
    double c = log(wk) - 0.5 * s->logdet[k];
    for (int p = 0; p < P; p++) {
      double *acc = score + (size_t)p * d, *y = Y + (size_t)p * d;
      double lk = c - 0.5 * cblas_ddot(d, D + (size_t)p * d, 1, y, 1);
      l[(size_t)p * K + k] = lk;
      if (lk > M[p]) { /* new maximum: rescale what was summed so far */
        double f = exp(M[p] - lk);
        S0[p] *= f;
        cblas_dscal(d, f, acc, 1);
        M[p] = lk;
      }
      double e = exp(lk - M[p]);
      S0[p] += e;
      cblas_daxpy(d, e, y, 1, acc, 1);
    }
  }
  for (int p = 0; p < P; p++) {
    cblas_dscal(d, -1.0 / S0[p], score + (size_t)p * d, 1);
    if (logp) logp[p] = M[p] + log(S0[p]) - 0.5 * d * LN_2PI;
    if (resp)
      for (int k = 0; k < K; k++)
        resp[(size_t)p * K + k] = exp(l[(size_t)p * K + k] - M[p]) / S0[p];
  }
}

int score_mixture_eval(const score_mixture *s, int P, const double *X,
                       double *score, double *resp, double *logp,
                       double *work) {
  if (P < 0 || (P > 0 && (!X || !score || !work))) return NRD_ERR_INPUT;
  if (P == 0) return NRD_OK;
  if (s->mix->symmetric2)
    eval_symmetric2(s, P, X, score, resp, logp, work);
  else
    eval_general(s, P, X, score, resp, logp, work);
  return NRD_OK;
}

/* ------------------------------------------------ empirical score (b) */

int score_empirical_init(score_empirical *s, int d, int n, const double *a,
                         int block) {
  memset(s, 0, sizeof *s);
  if (d < 1 || n < 1 || !a || block < 1) return NRD_ERR_INPUT;
  s->d = d;
  s->n = n;
  s->block = block < n ? block : n;
  s->a = a;
  s->b = malloc((size_t)n * d * sizeof *s->b);
  s->beta = malloc((size_t)n * d * sizeof *s->beta);
  s->half_b2 = malloc((size_t)n * sizeof *s->half_b2);
  s->L = malloc((size_t)d * d * sizeof *s->L);
  if (!s->b || !s->beta || !s->half_b2 || !s->L) {
    score_empirical_free(s);
    return NRD_ERR_NOMEM;
  }
  return NRD_OK;
}

void score_empirical_free(score_empirical *s) {
  free(s->b);
  free(s->beta);
  free(s->half_b2);
  free(s->L);
  memset(s, 0, sizeof *s);
}

int score_empirical_set_time(score_empirical *s, const double *E,
                             const double *Delta) {
  int d = s->d, n = s->n;
  /* b_mu = E a_mu for all mu at once: b = a E^T. */
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, d, d, 1.0, s->a, d, E,
              d, 0.0, s->b, d);
  symmetrized(d, Delta, s->L);
  int rc = chol_lower(d, s->L);
  if (rc != NRD_OK) return rc;
  /* beta_mu = L^{-1} b_mu: beta = b L^{-T}. */
  memcpy(s->beta, s->b, (size_t)n * d * sizeof *s->beta);
  cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit,
              n, d, 1.0, s->L, d, s->beta, d);
  for (int mu = 0; mu < n; mu++) {
    const double *bm = s->beta + (size_t)mu * d;
    s->half_b2[mu] = 0.5 * cblas_ddot(d, bm, 1, bm, 1);
  }
  s->logdet = d * LN_2PI + chol_logdet(d, s->L);
  return NRD_OK;
}

size_t score_empirical_work_size(const score_empirical *s, int P) {
  size_t p = P > 0 ? (size_t)P : 0;
  return 2 * p * s->d + p * s->block + 4 * p;
}

/* Whitened (physics.md 1.3 (b)): z = L^{-1} x, l_mu = z.beta_mu -
 * |beta_mu|^2/2 equals -1/2 (x - b_mu)^T Delta^{-1} (x - b_mu) + |z|^2/2.
 * Over blocks of training points: G = Z beta_blk^T (GEMM), a running max M
 * per particle with rescaled sums S0 = sum e^{l-M}, S2 = sum e^{2(l-M)} and
 * V = sum e^{l-M} b_mu (GEMM); then mean = V/S0 and
 * score = -Delta^{-1}(x - mean) by two triangular solves. */
int score_empirical_eval(const score_empirical *s, int P, const double *X,
                         double *score, double *logp, double *y2, int *nearest,
                         double *work) {
  if (P < 0 || (P > 0 && (!X || !score || !work))) return NRD_ERR_INPUT;
  if (P == 0) return NRD_OK;
  int d = s->d, n = s->n, B = s->block;
  size_t Pd = (size_t)P * d;
  double *Z = work, *V = Z + Pd, *G = V + Pd, *M = G + (size_t)P * B,
         *S0 = M + P, *S2 = S0 + P, *zz = S2 + P;
  memcpy(Z, X, Pd * sizeof *Z);
  cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit,
              P, d, 1.0, s->L, d, Z, d);
  for (int p = 0; p < P; p++) {
    const double *z = Z + (size_t)p * d;
    zz[p] = cblas_ddot(d, z, 1, z, 1);
    M[p] = -INFINITY;
    S0[p] = S2[p] = 0;
  }
  for (int mu0 = 0; mu0 < n; mu0 += B) {
    int nb = n - mu0 < B ? n - mu0 : B;
    const double *hb = s->half_b2 + mu0;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, nb, d, 1.0, Z, d,
                s->beta + (size_t)mu0 * d, d, 0.0, G, nb);
    /* Row by row, so that each row of G is read from cache, not memory,
     * by the max, exp and sum passes. */
    for (int p = 0; p < P; p++) {
      double *g = G + (size_t)p * nb;
      double bmax = shift_max(nb, g, hb);
      if (bmax > M[p]) { /* new running maximum: rescale the sums */
        double f = exp(M[p] - bmax);
        S0[p] *= f;
        S2[p] *= f * f;
        if (mu0 > 0) cblas_dscal(d, f, V + (size_t)p * d, 1); /* else unset */
        M[p] = bmax;
        if (nearest) { /* first index of the maximum */
          int arg = 0;
          while (arg < nb - 1 && g[arg] != bmax)
            arg++;
          nearest[p] = mu0 + arg;
        }
      }
      exp_shifted((size_t)nb, g, M[p]);
      S0[p] += cblas_dasum(nb, g, 1); /* weights are >= 0 */
      if (y2) S2[p] += cblas_ddot(nb, g, 1, g, 1);
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, P, d, nb, 1.0, G, nb,
                s->b + (size_t)mu0 * d, d, mu0 > 0 ? 1.0 : 0.0, V, d);
  }
  /* score = -Delta^{-1} (x - V/S0) = -L^{-T} L^{-1} (x - mean). */
  for (int p = 0; p < P; p++) {
    const double *x = X + (size_t)p * d, *v = V + (size_t)p * d;
    double *r = score + (size_t)p * d, inv = 1.0 / S0[p];
    for (int j = 0; j < d; j++)
      r[j] = v[j] * inv - x[j];
    if (logp)
      logp[p] =
          M[p] + log(S0[p]) - log((double)n) - 0.5 * s->logdet - 0.5 * zz[p];
    if (y2) y2[p] = S2[p] / (S0[p] * S0[p]);
  }
  cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit,
              P, d, 1.0, s->L, d, score, d);
  cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit,
              P, d, 1.0, s->L, d, score, d);
  return NRD_OK;
}
