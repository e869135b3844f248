/* Small dense linear algebra on row-major double matrices, on top of
 * CBLAS/LAPACKE.  Every matrix is d x d, row-major, contiguous, unless the
 * prototype says otherwise.  Functions return an nrd_status. */
#ifndef NRDIFF_LINALG_H
#define NRDIFF_LINALG_H

#include <stddef.h>

/* 1 if every off-diagonal entry is exactly zero. */
int la_is_diagonal(int d, const double *M);

/* C = A * B (all d x d). C must not alias A or B. */
void la_matmul(int d, const double *A, const double *B, double *C);
/* C = A * B^T */
void la_matmul_nt(int d, const double *A, const double *B, double *C);
/* C = A * M * A^T, work: d*d scratch. C must not alias A or M. */
void la_congruence(int d, const double *A, const double *M, double *C,
                   double *work);
/* y = A x */
void la_matvec(int d, const double *A, const double *x, double *y);
/* Symmetrise in place: M <- (M + M^T)/2 (removes round-off asymmetry). */
void la_symmetrize(int d, double *M);
void la_identity(int d, double *M);
void la_transpose(int d, const double *A, double *At);

/* Symmetric eigendecomposition M = V diag(w) V^T, w ascending; V columns are
 * eigenvectors (row-major V[i*d+k] = component i of eigenvector k). */
int la_sym_eig(int d, const double *M, double *w, double *V);
/* The eigenvalues alone (ascending), a third of the work of la_sym_eig at
 * large d; work: d x d scratch. */
int la_sym_eigvals(int d, const double *M, double *w, double *work);
/* F = V f(w) V^T for a symmetric M: square root, inverse square root, ... */
int la_sym_sqrt(int d, const double *M, double *Msqrt);
int la_sym_invsqrt(int d, const double *M, double *Minvsqrt);
/* Lower Cholesky factor L (L L^T = M), upper triangle zeroed.
 * NRD_ERR_NUMERIC if M is not positive definite (also for la_spd_inverse,
 * la_sym_invsqrt, and la_sym_sqrt with a negative eigenvalue). */
int la_cholesky(int d, const double *M, double *L);
/* ln det M for SPD M from its Cholesky factor L. */
double la_chol_logdet(int d, const double *L);
/* Inverse of SPD M. */
int la_spd_inverse(int d, const double *M, double *Minv);
/* Eigenvalues of a general real matrix (re, im arrays of length d). */
int la_general_eigvals(int d, const double *M, double *re, double *im);
/* Matrix exponential of a general real matrix: E = exp(M)
 * (scaling and squaring with a [13/13] Pade approximant, Higham 2005;
 * degrees 3..9 without scaling for ||M||_1 <= 2.1, as in that paper).
 * NRD_ERR_INPUT if M has a non-finite entry.  E may alias M. */
int la_expm(int d, const double *M, double *E);
/* Largest singular value (spectral norm). */
int la_spectral_norm(int d, const double *M, double *norm);

#endif
