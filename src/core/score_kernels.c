/* Kernels shared by the two exact scores (see score_kernels.h). */
#include "core/score_kernels.h"

#include <lapacke.h>

#include <math.h>
#include <string.h>

#include "util/error.h"

/* A row-major lower factor is the column-major upper one of the same
 * memory, which spares LAPACKE's transposition. */
int score_chol_lower(int d, double *M, const char *what) {
  int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', d, M, d);
  if (info > 0)
    return NRD_FAIL(NRD_ERR_NUMERIC,
                    "%s is not positive definite (dpotrf, d = %d: info = %d)",
                    what, d, info);
  if (info < 0)
    return NRD_FAIL(NRD_ERR_LAPACK, "dpotrf of %s: argument %d is invalid",
                    what, -info);
  for (int i = 0; i < d; i++)
    for (int j = i + 1; j < d; j++)
      M[(size_t)i * d + j] = 0;
  return NRD_OK;
}

/* Minv = M^{-1} from the lower Cholesky factor L of M. */
int score_chol_inverse(int d, const double *L, double *Minv,
                       const char *what) {
  memcpy(Minv, L, (size_t)d * d * sizeof *Minv);
  int info = LAPACKE_dpotri(LAPACK_COL_MAJOR, 'U', d, Minv, d);
  if (info != 0)
    return NRD_FAIL(NRD_ERR_LAPACK, "dpotri of %s (d = %d): info = %d", what,
                    d, info);
  for (int i = 0; i < d; i++)
    for (int j = i + 1; j < d; j++)
      Minv[(size_t)i * d + j] = Minv[(size_t)j * d + i];
  return NRD_OK;
}

/* (M + M^T)/2 into S. */
void score_symmetrized(int d, const double *M, double *S) {
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++)
      S[(size_t)i * d + j] =
          0.5 * (M[(size_t)i * d + j] + M[(size_t)j * d + i]);
}

/* gamma = M_00 > 0 if the symmetric matrix M (lower triangle read) is
 * gamma I to within tol relative (every off-diagonal |M_ij| and every
 * |M_ii - gamma| at most tol gamma), else 0.  tol = 0 asks for exactly
 * gamma I. */
double score_iso_value(int d, const double *M, double tol) {
  double g = M[0];
  if (!(g > 0) || !isfinite(g)) return 0;
  double lim = tol * g;
  for (int i = 0; i < d; i++) {
    const double *r = M + (size_t)i * d;
    if (tol == 0 ? r[i] != g : !(fabs(r[i] - g) <= lim)) return 0;
    for (int j = 0; j < i; j++)
      if (tol == 0 ? r[j] != 0 : !(fabs(r[j]) <= lim)) return 0;
  }
  return g;
}

/* sum_j x_j y_j in 8 lanes (lane j % 8), fixed order. */
NRD_CLONES double score_dot8(int n, const double *x, const double *y) {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int j = 0;
#ifdef NRD_VEC
  v8d a = splat(0);
  for (; j + 8 <= n; j += 8)
    a += ld8(x + j) * ld8(y + j);
  st8(s, a);
#endif
  for (int k = 0; j < n; j++, k++)
    s[k % 8] += x[j] * y[j];
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

/* sum_j (x_j - m_j)^2 in 8 lanes, fixed order. */
NRD_CLONES double score_dist2(int n, const double *x, const double *m) {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int j = 0;
#ifdef NRD_VEC
  v8d a = splat(0);
  for (; j + 8 <= n; j += 8) {
    v8d r = ld8(x + j) - ld8(m + j);
    a += r * r;
  }
  st8(s, a);
#endif
  for (int k = 0; j < n; j++, k++)
    s[k % 8] += (x[j] - m[j]) * (x[j] - m[j]);
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

/* r_j = a x_j + b y_j (r may be x or y). */
NRD_CLONES void score_lincomb(int n, double *r, double a, const double *x,
                               double b, const double *y) {
  int j = 0;
#ifdef NRD_VEC
  v8d av = splat(a), bv = splat(b);
  for (; j + 8 <= n; j += 8)
    st8(r + j, av * ld8(x + j) + bv * ld8(y + j));
#endif
  for (; j < n; j++)
    r[j] = a * x[j] + b * y[j];
}

/* x_j <- a x_j */
NRD_CLONES void score_scale(int n, double *x, double a) {
  int j = 0;
#ifdef NRD_VEC
  v8d av = splat(a);
  for (; j + 8 <= n; j += 8)
    st8(x + j, av * ld8(x + j));
#endif
  for (; j < n; j++)
    x[j] *= a;
}

/* r_j = a (x_j - m_j) + r_j */
NRD_CLONES void score_add_scaled_diff(int n, double *r, double a,
                                       const double *x, const double *m) {
  int j = 0;
#ifdef NRD_VEC
  v8d av = splat(a);
  for (; j + 8 <= n; j += 8)
    st8(r + j, av * (ld8(x + j) - ld8(m + j)) + ld8(r + j));
#endif
  for (; j < n; j++)
    r[j] = a * (x[j] - m[j]) + r[j];
}
