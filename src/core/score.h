/* Exact scores of the noised data law p_t for the forward OU process
 * (doc/theory.md sections 4.2 and 4.3).  A score model is first "set" to a time t
 * with the operator's E = e^{-At} and Delta_t; then it is evaluated on
 * batches of P particles (X is P x d row-major). */
#ifndef NRDIFF_SCORE_H
#define NRDIFF_SCORE_H

#include <stddef.h>

#include "core/mixture.h"

/* Exact Gaussian-mixture score at one time. */
typedef struct {
  int d, K;
  const mixture *mix;
  double *m_t;    /* K x d:  e^{-At} mu_k */
  double *L;      /* K x d x d lower Cholesky of Gamma_{k,t} */
  double *Ginv;   /* K x d x d Gamma_{k,t}^{-1} */
  double *logdet; /* K: ln det Gamma_{k,t} */
  double *Ginv_m; /* K x d: Gamma^{-1} m_t (tanh form) */
  double kappa;   /* m_t^T Gamma^{-1} m_t for symmetric two-class, else 0 */
  /* K: g when Gamma_{k,t} = g I (to a few d eps relative: U = u I with
   * isotropic or stationary clusters), else 0.  Then L_k and Ginv_k are
   * not filled (they would be sqrt(g) I and I/g) and the evaluation needs
   * no P x d x d product. */
  double *iso;
} score_mixture;

int score_mixture_init(score_mixture *s, const mixture *mix);
void score_mixture_free(score_mixture *s);
/* Set the time: E = e^{-At}, Delta = Delta_t (d x d). */
int score_mixture_set_time(score_mixture *s, const double *E,
                           const double *Delta);
/* Score (P x d) of each particle.  Optional outputs (NULL to skip):
 * resp (P x K) class responsibilities r_k, logp (P) ln p_t(x).
 * work: scratch of score_mixture_work_size(s, P) doubles. */
size_t score_mixture_work_size(const score_mixture *s, int P);
int score_mixture_eval(const score_mixture *s, int P, const double *X,
                       double *score, double *resp, double *logp, double *work);

/* The runs' empirical score: training points per block, and at most this
 * many logits per batch (128 MiB; see score_empirical_set_max_logits). */
#define NRD_SCORE_BLOCK 1024
#define NRD_SCORE_MAX_LOGITS ((size_t)1 << 24)

/* Exact empirical score of n training points a_mu (n x d). */
typedef struct {
  int d, n;
  int block;       /* training points per block (bounds memory) */
  size_t max_logits; /* 0, or larger blocks while P x block <= max_logits */
  const double *a; /* n x d training set (not owned) */
  double *b;       /* n x d: e^{-At} a_mu */
  double *c;       /* n x d: Delta_t^{-1} b_mu */
  double *half_b2; /* n: b_mu^T Delta_t^{-1} b_mu / 2 */
  double *L;       /* d x d lower Cholesky of Delta_t */
  double *Dinv;    /* d x d Delta_t^{-1} (not filled when iso > 0) */
  double iso;      /* delta when Delta_t = delta I exactly, else 0 */
  double logdet;   /* ln det(2 pi Delta_t) */
  float *cf;       /* n x d: c in single precision, or NULL (double) */
  int K;           /* classes of the training points (0: no labels) */
  const int *label; /* n labels in [0, K) (not owned), or NULL */
} score_empirical;

int score_empirical_init(score_empirical *s, int d, int n, const double *a,
                         int block);
void score_empirical_free(score_empirical *s);
/* single = 1: the two large products (logits and weighted means) in
 * single precision (SGEMM), the rest in double; call before set_time. */
int score_empirical_set_single(score_empirical *s, int single);
/* Let a batch of P particles take up to max_logits / P training points at
 * a time (at least block): bigger, faster GEMMs for small batches; the
 * block then depends on P (the same for the same batch).  Call before
 * score_empirical_work_size. */
void score_empirical_set_max_logits(score_empirical *s, size_t max_logits);
int score_empirical_set_time(score_empirical *s, const double *E,
                             const double *Delta);
/* Score (P x d).  Optional outputs (NULL to skip): logp (P) ln p^e_t(x),
 * y2 (P) participation sum_mu w_mu^2, nearest (P) argmax_mu w_mu (the
 * Mahalanobis-nearest training point).  work: score_empirical_work_size. */
size_t score_empirical_work_size(const score_empirical *s, int P);
int score_empirical_eval(const score_empirical *s, int P, const double *X,
                         double *score, double *logp, double *y2, int *nearest,
                         double *work);
/* The score is affine in x but for its softmax part:
 *   s(x) = r(x) - Delta_t^{-1} x,   r(x) = Delta_t^{-1} sum_mu w_mu b_mu.
 * _eval_nonlinear returns r only, for an integrator that applies
 * -Delta_t^{-1} together with its own d x d map (step_fold: one P x d x d
 * product fewer per step).  _dinv gives Delta_t^{-1}: the d x d matrix, or
 * NULL with *inv = 1/delta when Delta_t = delta I. */
int score_empirical_eval_nonlinear(const score_empirical *s, int P,
                                   const double *X, double *r, double *y2,
                                   int *nearest, double *work);
const double *score_empirical_dinv(const score_empirical *s, double *inv);
/* Labelled training points (label: n values in [0, K), not owned; K = 0
 * or label NULL: none): then the _classes evaluations also give the class
 * weights resp (P x K), resp_k = sum of w_mu over the points of class k,
 * the probability that the reverse process from x ends in class k
 * (doc/theory.md (10.1)).  Call before score_empirical_work_size. */
int score_empirical_set_labels(score_empirical *s, int K, const int *label);
int score_empirical_eval_classes(const score_empirical *s, int P,
                                 const double *X, double *score, double *resp,
                                 double *logp, double *y2, int *nearest,
                                 double *work);
int score_empirical_eval_nonlinear_classes(const score_empirical *s, int P,
                                           const double *X, double *r,
                                           double *resp, double *y2,
                                           int *nearest, double *work);



#endif
