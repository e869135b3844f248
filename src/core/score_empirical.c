/* The exact empirical score of a training set (doc/theory.md section 4.3; see
 * score.h), in double or with its two large products in single precision.
 *
 * Batches of P particles are evaluated with BLAS-3 calls, so a particle's
 * score depends at round-off level on the batch it was evaluated in (GEMM
 * blocking); callers that need rank-count independence evaluate fixed
 * particle blocks, as the run plan does.  The element-wise passes between
 * the GEMMs (log-sum-exp, the final combination) are split over rows among
 * as many threads as OpenBLAS uses; every row is computed by the same code
 * whatever the split, so results do not depend on the thread count. */
#include "core/score.h"
#include "core/parallel.h"
#include "core/score_kernels.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "util/error.h"
#include "core/linalg.h"

/* ------------------------------------------- vectorised log-sum-exp */

/* The empirical score takes P x n exponentials per evaluation (as many as
 * GEMM multiply-adds / d), plus a max and a sum over the same logits.
 * libm's exp is not vectorised without -ffast-math, and GCC 12 at -O2
 * (its "very cheap" vectoriser) leaves loops of unknown length scalar, so
 * the hot loops are written with GCC's generic vectors of 8 doubles
 * (AVX-512, two AVX2 or four SSE2 registers, per target clone).  The same
 * IEEE operations run in the same order in every clone and in the scalar
 * fallback (ISO C mode does not contract a*b+c into FMAs), so results do
 * not depend on the CPU.
 *
 * exp is fdlibm's e_exp.c (< 1 ulp) written branch-free for non-positive
 * arguments.  Results below e^-708 (relative to a weight of 1) are flushed
 * to 0, which keeps 2^k normal; a NaN argument also gives 0 (NaN inputs
 * still reach the outputs through the other terms). */
/* NRD_CLONES, v8d, splat: score_kernels.h */

#define EXP_INV_LN2 1.44269504088896338700e+00
#define EXP_LN2_HI 6.93147180369123816490e-01
#define EXP_LN2_LO 1.90821492927058770002e-10
#define EXP_P1 1.66666666666666019037e-01
#define EXP_P2 -2.77777777770155933842e-03
#define EXP_P3 6.61375632143793436117e-05
#define EXP_P4 -1.65339022054652515390e-06
#define EXP_P5 4.13813679705723846039e-08
#define EXP_SIGN 0x8000000000000000ULL
#define EXP_LOWEST_BITS 0xC086200000000000ULL /* -708.0 */

/* exp(xs) for one value xs <= 0 (NaN: 0), the reference form. */
static inline double exp_one(double xs) {
  uint64_t xb;
  memcpy(&xb, &xs, sizeof xb);
  /* xs < -708 as an integer compare: for xs <= 0 the bit patterns order
   * like |xs|, and the forced sign bit puts +0 with -0 (and a NaN below). */
  uint64_t low = 0 - (uint64_t)((xb | EXP_SIGN) > EXP_LOWEST_BITS);
  uint64_t cb = (xb & ~low) | (EXP_LOWEST_BITS & low);
  double xc;
  memcpy(&xc, &cb, sizeof xc);
  /* k = round(x / ln 2) from the bits of x/ln2 + 1.5 2^52. */
  double t = xc * EXP_INV_LN2 + 0x1.8p52;
  uint64_t tb;
  memcpy(&tb, &t, sizeof tb);
  double k = t - 0x1.8p52;
  double hi = xc - k * EXP_LN2_HI, lo = k * EXP_LN2_LO, r = hi - lo;
  double r2 = r * r;
  double c = r - r2 * (EXP_P1 +
                       r2 * (EXP_P2 + r2 * (EXP_P3 + r2 * (EXP_P4 + r2 * EXP_P5))));
  double y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
  /* 2^k, k in [-1022, 0]: the low 12 bits of tb + 1023 are k + 1023;
   * below the range the mask makes the result +0. */
  uint64_t pb = ((tb + 1023) << 52) & ~low;
  double p2k;
  memcpy(&p2k, &pb, sizeof p2k);
  return y * p2k;
}

#if defined(NRD_VEC)
/* exp_one(x_j - shift) on 8 lanes: the same operations.  (Vector casts
 * reinterpret the bits; vectors are not passed by value, to spare GCC's
 * notes on the 64-byte parameter ABI.) */
static inline NRD_INLINE v8d exp8(const double *x, double shift) {
  v8d xs = ld8(x) - shift;
  v8u xb = (v8u)xs;
  v8u low = (v8u)((xb | EXP_SIGN) > EXP_LOWEST_BITS);
  v8d xc = (v8d)((xb & ~low) | (EXP_LOWEST_BITS & low));
  v8d t = xc * EXP_INV_LN2 + 0x1.8p52;
  v8u tb = (v8u)t;
  v8d k = t - 0x1.8p52;
  v8d hi = xc - k * EXP_LN2_HI, lo = k * EXP_LN2_LO, r = hi - lo;
  v8d r2 = r * r;
  v8d c = r - r2 * (EXP_P1 +
                    r2 * (EXP_P2 + r2 * (EXP_P3 + r2 * (EXP_P4 + r2 * EXP_P5))));
  v8d y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
  v8u pb = ((tb + 1023) << 52) & ~low;
  return y * (v8d)pb;
}
#endif

/* x <- exp(x - shift) for n values x <= shift (NaN in, 0 out); returns
 * sum x and, if sum2, stores sum x^2 (both >= 0).  The sums run in 32 fixed
 * lanes (lane j % 32), added pairwise at the end: a fixed order. */
NRD_CLONES static double exp_shifted_sum(size_t n, double *x, double shift,
                                         double *sum2) {
  double acc[32] = {0}, acc2[32] = {0};
  size_t i = 0;
#ifdef NRD_VEC
  v8d a[4] = {splat(0), splat(0), splat(0), splat(0)}, b[4] = {a[0], a[0], a[0], a[0]};
  for (; i + 32 <= n; i += 32)
    for (int u = 0; u < 4; u++) {
      v8d e = exp8(x + i + 8 * u, shift);
      st8(x + i + 8 * u, e);
      a[u] += e;
      if (sum2) b[u] += e * e;
    }
  for (int u = 0; u < 4; u++) {
    st8(acc + 8 * u, a[u]);
    st8(acc2 + 8 * u, b[u]);
  }
#endif
  for (size_t j = 0; i < n; i++, j = (j + 1) % 32) {
    double e = exp_one(x[i] - shift);
    x[i] = e;
    acc[j] += e;
    acc2[j] += e * e;
  }
  for (int w = 16; w >= 1; w /= 2)
    for (int j = 0; j < w; j++) {
      acc[j] += acc[j + w];
      acc2[j] += acc2[j + w];
    }
  if (sum2) *sum2 = acc2[0];
  return acc[0];
}

/* g <- g - hb and return max_j g_j (lane-wise running maxima; a NaN never
 * wins, as in a scalar x > m). */
NRD_CLONES static double shift_max(int n, double *g, const double *hb) {
  double m[8];
  int j = 0;
#ifdef NRD_VEC
  v8d mv = splat(-INFINITY);
  for (; j + 8 <= n; j += 8) {
    v8d x = ld8(g + j) - ld8(hb + j);
    st8(g + j, x);
    v8u gt = (v8u)(x > mv);
    mv = (v8d)(((v8u)x & gt) | ((v8u)mv & ~gt));
  }
  st8(m, mv);
#else
  for (int k = 0; k < 8; k++)
    m[k] = -INFINITY;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; k++) {
      double x = g[j + k] - hb[j + k];
      g[j + k] = x;
      m[k] = x > m[k] ? x : m[k];
    }
#endif
  for (; j < n; j++) {
    g[j] -= hb[j];
    m[0] = g[j] > m[0] ? g[j] : m[0];
  }
  double r = m[0];
  for (int k = 1; k < 8; k++)
    r = m[k] > r ? m[k] : r;
  return r;
}

int score_empirical_init(score_empirical *s, int d, int n, const double *a,
                         int block) {
  memset(s, 0, sizeof *s);
  if (d < 1 || n < 1 || !a || block < 1)
    return NRD_FAIL(NRD_ERR_INPUT,
                    "empirical score: d = %d, n = %d, block = %d%s", d, n,
                    block, a ? "" : ", no training set");
  s->d = d;
  s->n = n;
  s->block = block < n ? block : n;
  s->a = a;
  s->b = malloc((size_t)n * d * sizeof *s->b);
  s->c = malloc((size_t)n * d * sizeof *s->c);
  s->half_b2 = malloc((size_t)n * sizeof *s->half_b2);
  s->L = malloc((size_t)d * d * sizeof *s->L);
  s->Dinv = malloc((size_t)d * d * sizeof *s->Dinv);
  if (!s->b || !s->c || !s->half_b2 || !s->L || !s->Dinv) {
    score_empirical_free(s);
    return NRD_FAIL(NRD_ERR_NOMEM, "empirical score: n = %d, d = %d", n, d);
  }
  return NRD_OK;
}

void score_empirical_free(score_empirical *s) {
  free(s->b);
  free(s->c);
  free(s->half_b2);
  free(s->L);
  free(s->Dinv);
  free(s->cf);
  memset(s, 0, sizeof *s);
}

int score_empirical_set_single(score_empirical *s, int single) {
  free(s->cf);
  s->cf = NULL;
  if (single && !(s->cf = malloc((size_t)s->n * s->d * sizeof *s->cf)))
    return NRD_FAIL(NRD_ERR_NOMEM, "float32 training set: n = %d, d = %d",
                    s->n, s->d);
  return NRD_OK;
}

/* Everything that depends on the time but not on the particles, once:
 * b = a E^T, L L^T = Delta, c = b Delta^{-1} (the training side carries
 * Delta^{-1}, so that the particle side needs no triangular solve) and
 * half_b2 = b.c/2.  Delta = delta I exactly (U = u I, any Q): no
 * factorisation, c = b/delta. */
int score_empirical_set_time(score_empirical *s, const double *E,
                             const double *Delta) {
  int d = s->d, n = s->n;
  /* b_mu = E a_mu for all mu at once: b = a E^T (E diagonal, as for Q = 0
   * and a diagonal U: a scaling). */
  if (la_is_diagonal(d, E))
    for (int mu = 0; mu < n; mu++)
      for (int j = 0; j < d; j++)
        s->b[(size_t)mu * d + j] = s->a[(size_t)mu * d + j] * E[(size_t)j * d + j];
  else
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, d, d, 1.0, s->a, d,
                E, d, 0.0, s->b, d);
  score_symmetrized(d, Delta, s->L);
  double delta = score_iso_value(d, s->L, 0.0);
  s->iso = delta;
  if (delta > 0) {
    double sq = sqrt(delta), inv = 1.0 / delta;
    memset(s->L, 0, (size_t)d * d * sizeof *s->L);
    for (int i = 0; i < d; i++)
      s->L[(size_t)i * d + i] = sq;
    s->logdet = d * LN_2PI + d * log(delta);
    for (size_t i = 0; i < (size_t)n * d; i++)
      s->c[i] = s->b[i] * inv;
  } else {
    NRD_CHECK(score_chol_lower(d, s->L, "Delta_t"));
    NRD_CHECK(score_chol_inverse(d, s->L, s->Dinv, "Delta_t"));
    s->logdet = d * LN_2PI + la_chol_logdet(d, s->L);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, d, 1.0, s->b,
                d, s->Dinv, d, 0.0, s->c, d);
  }
  for (int mu = 0; mu < n; mu++)
    s->half_b2[mu] =
        0.5 * score_dot8(d, s->b + (size_t)mu * d, s->c + (size_t)mu * d);
  if (s->cf)
    for (size_t i = 0; i < (size_t)n * d; i++)
      s->cf[i] = (float)s->c[i];
  return NRD_OK;
}

/* The whole batch goes through each block of training points.  Taking the
 * particles 1024 at a time instead, to keep a chunk's logits in cache
 * between the GEMM that writes them, the log-sum-exp and the GEMM that
 * reads them, was measured slower (P = 4096, d = 512, n = 4096: the smaller
 * GEMMs lost 8 % of their rate, more than the log-sum-exp gained).  Larger
 * blocks are faster: with max_logits set, a batch of P takes
 * max(block, max_logits / P) training points at a time (all n if they fit),
 * so that the run's 256-particle batches make GEMMs of 256 x n instead of
 * 256 x 1024 (P = 256, d = 512, n = 4096: step efficiency 0.65 -> 0.79). */
static int emp_block(const score_empirical *s, size_t P) {
  size_t n = (size_t)s->n, B = (size_t)s->block;
  if (s->max_logits > 0 && P > 0 && s->max_logits / P > B)
    B = s->max_logits / P;
  return (int)(B < n ? B : n);
}

/* Room for the logits of a batch of up to P particles (P x its block):
 * nondecreasing in P, so that work sized for P serves smaller batches. */
static size_t emp_logits_room(const score_empirical *s, size_t P) {
  size_t room = P * (size_t)s->block;
  if (s->max_logits > room) room = s->max_logits;
  return room < P * (size_t)s->n ? room : P * (size_t)s->n;
}

void score_empirical_set_max_logits(score_empirical *s, size_t max_logits) {
  s->max_logits = max_logits;
}

size_t score_empirical_work_size(const score_empirical *s, int P) {
  size_t p = P > 0 ? (size_t)P : 0, room = emp_logits_room(s, p);
  /* single precision: X, the block's V and its logits also in floats */
  size_t single = p * s->d + (room + 1) / 2;
  return p * s->d + room + 3 * p + (s->label ? p * (size_t)s->K : 0) +
         (s->cf ? single : 0);
}

typedef struct {
  const score_empirical *s;
  int nb, mu0;
  const double *X;
  double *G, *V, *M, *S0, *S2, *SK, *score, *logp, *y2, *resp;
  int *nearest;
  int linear; /* 0: the score without its linear term -Delta^{-1} x */
  float *Gf, *Vf; /* single precision: logits/weights and the block's V */
} emp_ctx;

/* One row p of a block of logits g: shift by -half_b2, new running maximum
 * (rescaling what was summed), weights e^{l - M} in place and their sums. */
static void emp_lse_row(const emp_ctx *c, int p, double *g) {
  int d = c->s->d, nb = c->nb, mu0 = c->mu0;
  const double *hb = c->s->half_b2 + mu0;
  double bmax = shift_max(nb, g, hb);
  if (bmax > c->M[p]) { /* new running maximum: rescale the sums */
    double f = exp(c->M[p] - bmax);
    c->S0[p] *= f;
    c->S2[p] *= f * f;
    for (int k = 0; c->SK && k < c->s->K; k++)
      c->SK[(size_t)p * c->s->K + k] *= f;
    if (mu0 > 0) { /* else V is not set yet */
      score_scale(d, c->V + (size_t)p * d, f);
    }
    c->M[p] = bmax;
    if (c->nearest) { /* first index of the maximum */
      int arg = 0;
      while (arg < nb - 1 && g[arg] != bmax)
        arg++;
      c->nearest[p] = mu0 + arg;
    }
  }
  double s2 = 0;
  c->S0[p] += exp_shifted_sum((size_t)nb, g, c->M[p], c->y2 ? &s2 : NULL);
  c->S2[p] += s2;
  if (c->SK) { /* the weights, now in g, summed per class */
    double *sk = c->SK + (size_t)p * c->s->K;
    const int *lab = c->s->label + mu0;
    for (int j = 0; j < nb; j++)
      sk[lab[j]] += g[j];
  }
}

static void emp_lse_rows(void *vc, int p0, int p1) {
  const emp_ctx *c = vc;
  for (int p = p0; p < p1; p++)
    emp_lse_row(c, p, c->G + (size_t)p * c->nb);
}

/* Single precision: the same row work in double on the float logits copied
 * into G; weights below FLT_MIN (relative to the row's largest, 1) are
 * flushed to 0, which keeps subnormals out of the next SGEMM. */
static void emp_lse_rows_single(void *vc, int p0, int p1) {
  const emp_ctx *c = vc;
  int nb = c->nb;
  for (int p = p0; p < p1; p++) {
    float *gf = c->Gf + (size_t)p * nb;
    double *g = c->G + (size_t)p * nb;
    for (int j = 0; j < nb; j++)
      g[j] = gf[j];
    emp_lse_row(c, p, g);
    for (int j = 0; j < nb; j++)
      gf[j] = g[j] >= FLT_MIN ? (float)g[j] : 0.0f;
  }
}

/* V (double) = V + the block's single-precision weighted sum */
static void emp_accumulate_rows(void *vc, int p0, int p1) {
  const emp_ctx *c = vc;
  size_t d = (size_t)c->s->d;
  for (size_t i = (size_t)p0 * d; i < (size_t)p1 * d; i++)
    c->V[i] = c->mu0 > 0 ? c->V[i] + c->Vf[i] : c->Vf[i];
}

/* score = V/S0 - Delta^{-1} x (the latter already in score unless Delta is
 * isotropic, left out when c->linear = 0), ln p and y2. */
static void emp_final_rows(void *vc, int p0, int p1) {
  const emp_ctx *c = vc;
  const score_empirical *s = c->s;
  int d = s->d;
  double iinv = s->iso > 0 ? 1.0 / s->iso : 0;
  for (int p = p0; p < p1; p++) {
    const double *x = c->X + (size_t)p * d, *v = c->V + (size_t)p * d;
    double *r = c->score + (size_t)p * d, inv = 1.0 / c->S0[p];
    if (c->logp) {
      double zz = s->iso > 0 ? iinv * score_dot8(d, x, x) : score_dot8(d, x, r);
      c->logp[p] = c->M[p] + log(c->S0[p]) - log((double)s->n) -
                   0.5 * s->logdet - 0.5 * zz;
    }
    if (!c->linear) /* r = v/S0 (b = 0: V is finite) */
      score_lincomb(d, r, inv, v, 0.0, v);
    else if (s->iso > 0)
      score_lincomb(d, r, inv, v, -iinv, x);
    else
      score_lincomb(d, r, inv, v, -1.0, r);
    if (c->y2) c->y2[p] = c->S2[p] / (c->S0[p] * c->S0[p]);
    for (int k = 0; c->resp && k < s->K; k++)
      c->resp[(size_t)p * s->K + k] = c->SK[(size_t)p * s->K + k] * inv;
  }
}

/* doc/theory.md (4.14) with c_mu = Delta^{-1} b_mu: l_mu = x.c_mu - b_mu.c_mu/2
 * equals -1/2 (x - b_mu)^T Delta^{-1} (x - b_mu) + x^T Delta^{-1} x/2.  Over
 * blocks of training points: G = X c_blk^T (GEMM), a running max M per
 * particle with rescaled sums S0 = sum e^{l-M}, S2 = sum e^{2(l-M)} and
 * V = sum e^{l-M} c_mu (GEMM), so V/S0 = Delta^{-1} mean; then
 * score = V/S0 - X Delta^{-1} (one GEMM, none when Delta = delta I). */
static int emp_eval(const score_empirical *s, int P, const double *X,
                    double *score, double *resp, double *logp, double *y2,
                    int *nearest, double *work, int linear) {
  if (P < 0 || (P > 0 && (!X || !score || !work)))
    return NRD_FAIL(NRD_ERR_INPUT, "empirical score of %d particles: no %s",
                    P, P < 0 ? "batch" : "X, score or work");
  if (logp && !linear) /* ln p needs Delta^{-1} x */
    return NRD_FAIL(NRD_ERR_INPUT, "ln p^e_t asked of the nonlinear part");
  if (resp && !s->label)
    return NRD_FAIL(NRD_ERR_INPUT, "class weights of unlabelled training points");
  if (P == 0) return NRD_OK;
  int d = s->d, n = s->n, B = emp_block(s, (size_t)P);
  size_t Pd = (size_t)P * d;
  double *V = work, *G = V + Pd, *M = G + (size_t)P * B, *S0 = M + P,
         *S2 = S0 + P, *SK = resp ? S2 + P : NULL;
  for (int p = 0; p < P; p++) {
    M[p] = -INFINITY;
    S0[p] = S2[p] = 0;
  }
  if (SK) memset(SK, 0, (size_t)P * s->K * sizeof *SK);
  /* single precision (run.precision float32): the two big products in
   * SGEMM on float copies of X and c, everything else in double */
  double *end = S2 + P + (s->label ? (size_t)P * s->K : 0);
  float *Xf = s->cf ? (float *)end : NULL, *Vf = Xf ? Xf + Pd : NULL;
  float *Gf = Xf ? Vf + Pd : NULL;
  if (Xf)
    for (size_t i = 0; i < Pd; i++)
      Xf[i] = (float)X[i];
  for (int mu0 = 0; mu0 < n; mu0 += B) {
    int nb = n - mu0 < B ? n - mu0 : B;
    const double *cb = s->c + (size_t)mu0 * d;
    emp_ctx c = {.s = s,
                 .nb = nb,
                 .mu0 = mu0,
                 .X = X,
                 .G = G,
                 .V = V,
                 .M = M,
                 .S0 = S0,
                 .S2 = S2,
                 .SK = SK,
                 .y2 = y2,
                 .nearest = nearest,
                 .Gf = Gf,
                 .Vf = Vf};
    if (Xf) {
      const float *cfb = s->cf + (size_t)mu0 * d;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, nb, d, 1.0f, Xf,
                  d, cfb, d, 0.0f, c.Gf, nb);
      nrd_par_rows(P, 10.0 * nb, emp_lse_rows_single, &c);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, P, d, nb, 1.0f,
                  c.Gf, nb, cfb, d, 0.0f, Vf, d);
      nrd_par_rows(P, d, emp_accumulate_rows, &c);
      continue;
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, nb, d, 1.0, X, d,
                cb, d, 0.0, G, nb);
    nrd_par_rows(P, 8.0 * nb, emp_lse_rows, &c); /* exp: ~8 flops */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, P, d, nb, 1.0, G, nb,
                cb, d, mu0 > 0 ? 1.0 : 0.0, V, d);
  }
  if (linear && !(s->iso > 0))
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, P, d, d, 1.0, X, d,
                s->Dinv, d, 0.0, score, d);
  emp_ctx c = {.s = s, .X = X, .V = V, .M = M, .S0 = S0, .S2 = S2,
               .SK = SK, .score = score, .logp = logp, .y2 = y2,
               .resp = resp, .linear = linear};
  nrd_par_rows(P, 2.0 * d, emp_final_rows, &c);
  return NRD_OK;
}

int score_empirical_eval(const score_empirical *s, int P, const double *X,
                         double *score, double *logp, double *y2, int *nearest,
                         double *work) {
  return emp_eval(s, P, X, score, NULL, logp, y2, nearest, work, 1);
}

int score_empirical_eval_classes(const score_empirical *s, int P,
                                 const double *X, double *score, double *resp,
                                 double *logp, double *y2, int *nearest,
                                 double *work) {
  return emp_eval(s, P, X, score, resp, logp, y2, nearest, work, 1);
}

int score_empirical_eval_nonlinear_classes(const score_empirical *s, int P,
                                           const double *X, double *r,
                                           double *resp, double *y2,
                                           int *nearest, double *work) {
  return emp_eval(s, P, X, r, resp, NULL, y2, nearest, work, 0);
}

int score_empirical_set_labels(score_empirical *s, int K, const int *label) {
  s->K = 0;
  s->label = NULL;
  if (K <= 0 || !label) return NRD_OK;
  for (int mu = 0; mu < s->n; mu++)
    if (label[mu] < 0 || label[mu] >= K)
      return NRD_FAIL(NRD_ERR_INPUT, "training point %d has label %d, not in "
                      "[0, %d)", mu, label[mu], K);
  s->K = K;
  s->label = label;
  return NRD_OK;
}

int score_empirical_eval_nonlinear(const score_empirical *s, int P,
                                   const double *X, double *r, double *y2,
                                   int *nearest, double *work) {
  return emp_eval(s, P, X, r, NULL, NULL, y2, nearest, work, 0);
}

const double *score_empirical_dinv(const score_empirical *s, double *inv) {
  *inv = s->iso > 0 ? 1.0 / s->iso : 0.0;
  return s->iso > 0 ? NULL : s->Dinv;
}
