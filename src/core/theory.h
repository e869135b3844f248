/* Reference theory: closed forms and quasi-exact numbers that measurements
 * are compared with (doc/theory.md sections 5-7).  Pure numerics: no MPI, no HDF5.
 *
 * Critical times are roots of a criterion c(t) that is positive at small t
 * (classes / training points still resolved) and tends to a negative value
 * at large t.  Where a non-normal A makes c non-monotone, the root returned
 * is the LARGEST one, i.e. the first crossing met by the reverse process
 * coming down from large t (a scan of 64 points on (0, t_hi] followed by
 * bisection to machine precision).  NRD_ERR_NUMERIC if there is no root.
 *
 * Gaussian expectations E f(w), w ~ N(m, v), use composite Simpson's rule
 * on m +- 12 sqrt(v) with 4096 intervals: error < 1e-12 for the smooth,
 * bounded integrands used here. */
#ifndef NRDIFF_THEORY_H
#define NRDIFF_THEORY_H

#include "core/ou.h"

/* F(kappa) = 1/2 (1 + E tanh w), w ~ N(kappa, kappa): the probability that
 * two clones of the exact reverse SDE end in the same class (doc/theory.md (5.3));
 * F(0) = 1/2, F(1) = 0.7752002.  kappa >= 0 (NAN otherwise). */
double theory_F(double kappa);
/* I(kappa) = ln 2 - E ln(1 + e^{-2w}), w ~ N(kappa, kappa): mutual
 * information between label and position of the two-class mixture
 * (doc/theory.md (6.5)); I(0) = 0, I -> ln 2. */
double theory_mutual_info(double kappa);

/* kappa_t = m_t^T Gamma_t^{-1} m_t, m_t = e^{-At} mu,
 * Gamma_t = e^{-At} C e^{-A^T t} + Delta_t (doc/theory.md (5.1)), for two classes
 * +-mu with common covariance C.  t >= 0 (C must be SPD at t = 0). */
int theory_kappa(const ou_op *op, const double *mu, const double *C, double t,
                 double *kappa);
/* The same from E = e^{-At} and Delta_t already at hand (the same bits). */
int theory_kappa_from(const ou_op *op, const double *E, const double *Delta,
                      const double *mu, const double *C, double *kappa);
/* t_S from kappa_{t_S} = 1 [I: the project's definition, doc/theory.md (5.5)]. */
int theory_tS_kappa(const ou_op *op, const double *mu, const double *C,
                    double *tS);
/* t_S from the matrix criterion [I, doc/theory.md (5.8)]:
 * lambda_max(Gamma_t^{-1/2} e^{-At} B e^{-A^T t} Gamma_t^{-1/2}) = 1, with the
 * between-class scatter B = sum_k pi_k (mu_k - mubar)(mu_k - mubar)^T and a
 * common within-class C (means: K x d).  Two symmetric classes: kappa = 1. */
int theory_tS_matrix(const ou_op *op, int K, const double *weights,
                     const double *means, const double *C, double *tS);
/* The class-free version [I, doc/theory.md (5.9)]:
 * lambda_max(Delta_t^{-1/2} e^{-At} Sigma0 e^{-A^T t} Delta_t^{-1/2}) = 1;
 * A = I gives 1/2 ln(1 + Lambda). */
int theory_tS_covariance(const ou_op *op, const double *Sigma0, double *tS);

/* REM collapse time (doc/theory.md (6.3)): the root of
 * (1/2d) sum_i ln(1 + rho_i(t)) = alpha, rho_i = eig(Delta_t^{-1} e^{-At} C
 * e^{-A^T t}), alpha = ln(n)/d > 0.  A = I, C = s2 I: 1/2 ln(1 + s2/(e^{2a}-1)).
 * [D/I: the Mahalanobis-SNR form for A != I is the project's.] */
int theory_tC_rem(const ou_op *op, const double *C, double alpha, double *tC);
/* The same with the finite-d two-class mixture correction [I, doc/theory.md (6.5)]:
 * I(kappa_t)/d added to the left-hand side (classes +-mu, covariance C). */
int theory_tC_rem_gm2(const ou_op *op, const double *mu, const double *C,
                      double alpha, double *tC);

/* U-turn autocorrelation, ratio-of-expectations form, Gaussian data with
 * covariance Sigma0 and mean `mean` (NULL: centred) (doc/theory.md (7.4), (7.4')):
 * (|mean|^2 + tr(Sigma0 e^{-A^T T} Sigma_T^{-1} e^{-AT} Sigma0)) /
 * (|mean|^2 + tr Sigma0).  T > 0. */
int theory_cuturn_gaussian(const ou_op *op, const double *Sigma0,
                           const double *mean, double T, double *c);
/* The same for two classes +-m, |m| = mu_norm, covariance sigma^2 I in d
 * dimensions, A = I, exact score (doc/theory.md (7.6)).  T > 0. */
double theory_cuturn_gm2_isotropic(int d, double mu_norm, double sigma,
                                   double T);
/* Normalised two-time correlation along exact reverse trajectories, s <= t
 * (doc/theory.md (7.8)): tr(e^{-A(t-s)} M_s) / sqrt(tr M_s tr M_t), M_t the
 * second moment at t pushed from M0 = E[x_0 x_0^T] (the covariance for
 * centred data; data with a mean need the mean's part too).  Exact for
 * any data law. */
int theory_two_time_corr(const ou_op *op, const double *Sigma0, double s,
                         double t, double *c);

/* Biroli et al.'s mixture (A = I, sigma = 1, m = (1,...,1)): kappa_t =
 * d e^{-2t}, phi(t) = F(d e^{-2t}) (doc/theory.md (5.4), doc/validation.md V6). */
double theory_phi_biroli(int d, double t);

/* Raya-Ambrogioni type results, A = I (doc/theory.md section 5.5). */
/* 1-D data +-1: theta_c = sqrt(sqrt 2 - 1); t_c = -ln theta_c. */
double theory_theta_c_1d(void);
/* Positive root of (1 + th^2) x = 2 th tanh(th x / (1 - th^2)) for
 * theta_c < th < 1 (NAN outside). */
double theory_fixed_point_1d(double theta);
/* Centred equal-norm data along the top direction (eigenvalue Lambda):
 * t_c = 1/2 asinh(Lambda). */
double theory_tc_symmetric(double Lambda);
/* Hyperspherical Laplacian criterion: theta*^2 = (sqrt(D^2 + r^4) - r^2)/D. */
double theory_theta_hyperspherical(int D, double r);
/* DDPM with the linear schedule beta_k from beta1 to betaT, k = 0..nsteps-1
 * (0-based, as DDPM code indexes its steps): the first k with
 * sqrt(alphabar_k) < theta, alphabar_k = prod_{i<=k} (1 - beta_i); -1 if
 * none.  doc/validation.md V9: 292 for theta_c, 1000 steps, 1e-4 .. 0.02. */
int theory_ddpm_first_step_below(double theta, int nsteps, double beta1,
                                 double betaT);

#endif
