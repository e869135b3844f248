/* Data models: Gaussian mixtures p_0 = sum_k pi_k N(mu_k, C_k) and training
 * sets drawn from them (doc/theory.md section 4.1). */
#ifndef NRDIFF_MIXTURE_H
#define NRDIFF_MIXTURE_H

#include <stdint.h>

typedef enum {
  MIX_COV_ISOTROPIC,  /* C_k = sigma^2 I (sigma may be 0: point masses) */
  MIX_COV_STATIONARY, /* C_k = S = U^{-1}, the stationary covariance */
  MIX_COV_FULL,       /* C_k given explicitly (d x d each) */
} mix_cov_kind;

typedef struct {
  int d, K;
  double *weights; /* K, sum to 1 */
  double *means;   /* K x d row-major */
  mix_cov_kind cov_kind;
  double sigma2;  /* MIX_COV_ISOTROPIC */
  double *cov;    /* K x d x d: always filled (isotropic/stationary too) */
  int symmetric2; /* K = 2, pi = 1/2, mu_2 = -mu_1, C_1 = C_2: tanh form */
  /* Sampling factors F_k F_k^T = C_k (d x d; the lower Cholesky factor when
   * C_k > 0, else V diag(sqrt(w)) from C_k = V diag(w) V^T).  One matrix
   * shared by all k when every C_k is equal (cov_shared); NULL for
   * MIX_COV_ISOTROPIC, which samples mu_k + sigma xi directly. */
  double *cov_factor;
  int cov_shared;      /* all C_k equal (always for ISOTROPIC, STATIONARY) */
  int cov_factor_form; /* MIX_FACTOR_DENSE, _LOWER or _DIAGONAL (all k) */
} mixture;

enum { MIX_FACTOR_DENSE, MIX_FACTOR_LOWER, MIX_FACTOR_DIAGONAL };

/* Two symmetric classes +-mu with |mu|^2 = separation * d along unit vector
 * `direction` (length d); covariance per cov_kind (S needed for STATIONARY,
 * full_cov for FULL, else may be NULL). */
int mixture_two_class(mixture *m, int d, double separation,
                      const double *direction, mix_cov_kind kind, double sigma2,
                      const double *S, const double *full_cov);
/* General K-component mixture (copies all arrays; cov is K x d x d, or NULL
 * for isotropic sigma2 / stationary S). */
int mixture_general(mixture *m, int d, int K, const double *weights,
                    const double *means, mix_cov_kind kind, double sigma2,
                    const double *S, const double *cov);
void mixture_free(mixture *m);
/* Data covariance Sigma_0 = sum pi_k (C_k + mu_k mu_k^T) - mean mean^T. */
void mixture_covariance(const mixture *m, double *Sigma0);

/* Draw n samples (n x d) and their component labels (labels may be NULL),
 * sample i depending only on (seed, purpose, first_index + i), bit for bit,
 * whatever the partitioning: label from rng_uniforms(seed,
 * RNG_PURPOSE_LABEL, index, purpose, 1), x = mu + F xi with xi =
 * rng_normals(seed, purpose, index, 0, d), computed one sample at a time (a
 * batched GEMM would round differently for different batch sizes). */
int mixture_sample(const mixture *m, uint32_t seed, uint32_t purpose,
                   uint64_t first_index, int n, double *X, int *labels);

#endif
