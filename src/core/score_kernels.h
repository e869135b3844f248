/* Kernels shared by the two exact scores (score_mixture.c,
 * score_empirical.c); private to them, not part of the score API (score.h).
 *
 * Small-matrix helpers of set_time (the Cholesky factor through LAPACK, its
 * log det and inverse, symmetrisation, "is a multiple of I") and the
 * vectorised row kernels of the evaluations.  The row kernels are compiled
 * per target (NRD_CLONES, util/simd.h) with GCC's generic vectors of 8
 * doubles; the same IEEE operations run in the same order in every clone
 * and in the scalar fallback (ISO C mode does not contract a*b+c into FMAs),
 * so results do not depend on the CPU.  Sums run in 8 fixed lanes (lane
 * j % 8) added in a fixed order. */
#ifndef NRDIFF_SCORE_KERNELS_H
#define NRDIFF_SCORE_KERNELS_H

#include <stdint.h>

#include "util/simd.h"

#define LN_2PI 1.83787706640934548356

/* M <- its lower Cholesky factor, in place, upper triangle zeroed;
 * NRD_ERR_NUMERIC if M (named `what` in the failure) is not positive
 * definite. */
int score_chol_lower(int d, double *M, const char *what);
/* Minv = M^{-1} from the lower Cholesky factor L of M (ln det M:
 * la_chol_logdet). */
int score_chol_inverse(int d, const double *L, double *Minv,
                       const char *what);
/* (M + M^T)/2 into S. */
void score_symmetrized(int d, const double *M, double *S);
/* gamma = M_00 > 0 if the symmetric matrix M (lower triangle read) is
 * gamma I to within tol relative, else 0; tol = 0 asks for exactly
 * gamma I. */
double score_iso_value(int d, const double *M, double tol);

/* sum_j x_j y_j */
double score_dot8(int n, const double *x, const double *y);
/* sum_j (x_j - m_j)^2 */
double score_dist2(int n, const double *x, const double *m);
/* r_j = a x_j + b y_j (r may be x or y) */
void score_lincomb(int n, double *r, double a, const double *x, double b,
                   const double *y);
/* x_j <- a x_j */
void score_scale(int n, double *x, double a);
/* r_j = a (x_j - m_j) + r_j */
void score_add_scaled_diff(int n, double *r, double a, const double *x,
                           const double *m);

#if defined(NRD_VEC) /* v8d, ld8, st8: util/simd.h */
typedef uint64_t v8u __attribute__((vector_size(64)));
static inline NRD_INLINE v8d splat(double x) {
  return (v8d){x, x, x, x, x, x, x, x};
}
#endif

#endif
