/* Forward operator of the (possibly non-reversible) Ornstein-Uhlenbeck
 * process  dx = -A x dt + sqrt(2) dW,  A = (I + g Qhat) U  (doc/theory.md (1.1)).
 *
 * U is SPD, Qhat antisymmetric; the stationary law is N(0, S), S = U^{-1},
 * for every strength g.  All matrices are d x d row-major doubles. */
#ifndef NRDIFF_OU_H
#define NRDIFF_OU_H

#include <stdint.h>

typedef struct {
  int d;
  double g;      /* perturbation strength */
  double *U;     /* SPD precision of the stationary law */
  double *Qhat;  /* antisymmetric direction of the perturbation */
  double *Q;     /* g * Qhat */
  double *A;     /* (I + Q) U */
  double *S;     /* U^{-1}, stationary covariance */
  double *Uh;    /* U^{1/2} */
  double *Umh;   /* U^{-1/2} */
  double *B;     /* U + K, K = U^{1/2} Q U^{1/2}:  A = Umh B Uh */
  double u_min;  /* smallest eigenvalue of U */
  int isotropic; /* U = u I and so e^{-At} = e^{-ut} R_t exactly */
  int rotates;   /* Q != 0 */
} ou_op;

/* Build the operator.  Copies U and Qhat (Qhat may be NULL = no perturbation).
 * Checks U is SPD and Qhat antisymmetric (to 1e-12 relative). */
int ou_init(ou_op *op, int d, const double *U, const double *Qhat, double g);
void ou_free(ou_op *op);

/* E = e^{-A t} (mean map: E[x_t | x_0] = E x_0), from U^{-1/2} e^{-Bt} U^{1/2}
 * (or e^{-ut} e^{-uQt} when isotropic).  Any finite t; t < 0 gives the
 * inverse map.  NRD_ERR_INPUT for non-finite t. */
int ou_propagator(const ou_op *op, double t, double *E);
/* Delta = Cov[x_t | x_0] = S - e^{-At} S e^{-A^T t}, accurate also for small t:
 * in the whitened frame W_t = U^{1/2} Delta_t U^{1/2}, for 2 u_min t < ln 2
 * from Van Loan's block exponential at t/2^k followed by k exact doublings
 * W_2t = W_t + X_t W_t X_t^T (X_t = e^{-Bt}), never as a difference; later,
 * where every eigenvalue of W_t is >= 1/2, as I - X_t X_t^T; relative
 * accuracy a few 1e-15 for every t > 0.  Isotropic U: (1 - e^{-2ut})/u I
 * exactly.  t >= 0. */
int ou_noise_cov(const ou_op *op, double t, double *Delta);
/* E = e^{-At} and Delta_t together, the same bits as ou_propagator and
 * ou_noise_cov, sharing e^{-Bt} where both need it (half the work for a
 * dense operator at 2 u_min t >= ln 2).  t >= 0. */
int ou_moments(const ou_op *op, double t, double *E, double *Delta);
/* Sigma_t = E Sigma0 E^T + Delta (symmetrised) from E and Delta at hand;
 * work: d x d scratch. */
void ou_marginal_from(int d, const double *E, const double *Delta,
                      const double *Sigma0, double *Sigma_t, double *work);
/* Sigma_t = e^{-At} Sigma0 e^{-A^T t} + Delta_t. */
int ou_marginal_cov(const ou_op *op, double t, const double *Sigma0,
                    double *Sigma_t);
/* Eigenvalues of A (re, im of length d), computed from the similar and
 * better-scaled B, sorted by real part, then imaginary part. */
int ou_spectrum(const ou_op *op, double *re, double *im);
/* r = min Re sigma(A) (exactly u when U = u I). */
int ou_relaxation_rate(const ou_op *op, double *rate);
/* Stationary entropy production rate tr(Q^T Q U) (doc/theory.md (1.18)); NaN only if
 * out of memory. */
double ou_entropy_production(const ou_op *op);

/* Builders for U. */
void ou_u_isotropic(int d, double u, double *U);
void ou_u_diagonal(int d, const double *diag, double *U);
/* Geometric spectrum u_i = umin (umax/umin)^{i/(d-1)}, i = 0..d-1 (diagonal;
 * d = 1 gives umin). */
void ou_u_geometric(int d, double umin, double umax, double *U);

/* Builders for Qhat. */
/* Random antisymmetric, Gaussian entries from Philox(seed, RNG_PURPOSE_QHAT),
 * stream 0, step 0, d*d draws G:  Qhat = (G - G^T)/2 normalised to unit
 * spectral norm (d = 1: the zero matrix). */
int ou_q_random(int d, uint32_t seed, double *Qhat);
/* Lelievre-Nier-Pavliotis optimal J (doc/theory.md section 3.2) with lambda_k = k
 * (lambda may be NULL for the default), so sigma((I+J)U) has real part
 * Tr U / d.  Uses the Hadamard shortcut when U is diagonal and d = 2^p.
 *
 * J is the full optimal perturbation, not normalised: with Qhat = J the
 * strength g = 1 is the LNP optimum, and a grid over g scans from the
 * reversible process (g = 0) towards it and past it (g > 1 is no longer
 * optimal in general).  This differs from q = random, where ||Qhat||_2 = 1.
 * The optimum is not unique: the shortcut uses another basis Psi than the
 * generic construction, so the two J differ while both have the property.
 * lambda must be positive and distinct; U must be SPD (else NRD_ERR_INPUT).
 * Size: ||J|| <= 2 d (max lambda / min gap of lambda) ||U|| / min eig U. */
int ou_q_optimal(int d, const double *U, const double *lambda, double *J);
/* The generic O(d^3) construction, exposed for tests of the shortcut. */
int ou_q_optimal_generic(int d, const double *U, const double *lambda,
                         double *J);

#endif
