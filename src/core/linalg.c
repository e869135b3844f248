/* Small dense linear algebra on row-major d x d doubles (linalg.h).
 *
 * Thin wrappers over CBLAS/LAPACKE, plus the matrix exponential of Higham
 * (2005), "The scaling and squaring method for the matrix exponential
 * revisited", SIAM J. Matrix Anal. Appl. 26, 1179 (Algorithm 2.3, the one
 * behind MATLAB's expm). */
#include "core/linalg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <lapacke.h>

#include "util/error.h"

static size_t sq(int d) {
  return (size_t)d * (size_t)d;
}

/* A LAPACK info as a status, the failure started (NRD_FAIL) at the caller's
 * line: info > 0 is a property of the matrix (`what`: not positive
 * definite, singular, no convergence), info < 0 a bad call. */
static int lapack_status_at(lapack_int info, const char *routine,
                            const char *what, int d, int line,
                            const char *func) {
  if (info == 0) return NRD_OK;
  if (info > 0)
    return nrd_error_fail(NRD_ERR_NUMERIC, __FILE__, line, func,
                          "%s of a %d x %d matrix: %s (info = %d)", routine, d,
                          d, what, (int)info);
  return nrd_error_fail(NRD_ERR_LAPACK, __FILE__, line, func,
                        "%s of a %d x %d matrix: argument %d is invalid",
                        routine, d, d, (int)-info);
}
#define LAPACK_STATUS(call, routine, what, d)                                \
  lapack_status_at((call), routine, what, d, __LINE__, __func__)

/* The failures of a bad dimension and of memory, started here. */
#define BAD_DIMENSION(d) NRD_FAIL(NRD_ERR_INPUT, "dimension d = %d < 1", d)
#define NO_MEMORY(what, d)                                                   \
  NRD_FAIL(NRD_ERR_NOMEM, "%s for d = %d", what, d)

int la_is_diagonal(int d, const double *M) {
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++)
      if (i != j && M[(size_t)i * d + j] != 0.0) return 0;
  return 1;
}

/* The products below take O(d^2) when a factor is diagonal (e^{-At} and
 * Delta_t for A = U diagonal, Q = 0: the common reversible runs, where
 * the theory's d^3 work dominated at d = 4096).  A GEMM adds the same one
 * nonzero product to exact zeros, so the results are the same bits. */
void la_matmul(int d, const double *A, const double *B, double *C) {
  if (la_is_diagonal(d, A)) {
    for (int i = 0; i < d; i++)
      for (int j = 0; j < d; j++)
        C[(size_t)i * d + j] = A[(size_t)i * d + i] * B[(size_t)i * d + j];
  } else if (la_is_diagonal(d, B)) {
    for (int i = 0; i < d; i++)
      for (int j = 0; j < d; j++)
        C[(size_t)i * d + j] = A[(size_t)i * d + j] * B[(size_t)j * d + j];
  } else {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, A, d,
                B, d, 0.0, C, d);
  }
}

void la_matmul_nt(int d, const double *A, const double *B, double *C) {
  /* diagonal B first: its loop reads A by rows, the other B by columns */
  if (la_is_diagonal(d, B)) {
    for (int i = 0; i < d; i++)
      for (int j = 0; j < d; j++)
        C[(size_t)i * d + j] = A[(size_t)i * d + j] * B[(size_t)j * d + j];
  } else if (la_is_diagonal(d, A)) {
    for (int i = 0; i < d; i++)
      for (int j = 0; j < d; j++)
        C[(size_t)i * d + j] = A[(size_t)i * d + i] * B[(size_t)j * d + i];
  } else {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d, d, d, 1.0, A, d, B,
                d, 0.0, C, d);
  }
}

void la_congruence(int d, const double *A, const double *M, double *C,
                   double *work) {
  la_matmul(d, A, M, work);
  la_matmul_nt(d, work, A, C);
}

void la_matvec(int d, const double *A, const double *x, double *y) {
  if (la_is_diagonal(d, A)) {
    for (int i = 0; i < d; i++)
      y[i] = A[(size_t)i * d + i] * x[i];
    return;
  }
  cblas_dgemv(CblasRowMajor, CblasNoTrans, d, d, 1.0, A, d, x, 1, 0.0, y, 1);
}

void la_symmetrize(int d, double *M) {
  /* in 64 x 64 tiles: the column reads of a plain loop miss the cache on
   * every entry once a row no longer fits (d = 4096: 1 s per call) */
  enum { TILE = 64 };
  for (int i0 = 0; i0 < d; i0 += TILE)
    for (int j0 = i0; j0 < d; j0 += TILE)
      for (int i = i0; i < i0 + TILE && i < d; i++)
        for (int j = j0 > i ? j0 : i + 1; j < j0 + TILE && j < d; j++) {
          double m = 0.5 * (M[(size_t)i * d + j] + M[(size_t)j * d + i]);
          M[(size_t)i * d + j] = m;
          M[(size_t)j * d + i] = m;
        }
}

void la_identity(int d, double *M) {
  memset(M, 0, sq(d) * sizeof *M);
  for (int i = 0; i < d; i++)
    M[(size_t)i * d + i] = 1.0;
}

void la_transpose(int d, const double *A, double *At) {
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++)
      At[(size_t)j * d + i] = A[(size_t)i * d + j];
}

typedef struct {
  double value;
  int index;
} indexed;

/* ascending values, ties in index order */
static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int cmp_indexed(const void *a, const void *b) {
  const indexed *x = a, *y = b;
  if (x->value != y->value) return x->value < y->value ? -1 : 1;
  return (x->index > y->index) - (x->index < y->index);
}

int la_sym_eig(int d, const double *M, double *w, double *V) {
  if (d <= 0) return BAD_DIMENSION(d);
  if (la_is_diagonal(d, M)) {
    /* LAPACK returns the diagonal itself, sorted: skip its O(d^3) */
    indexed *p = malloc((size_t)d * sizeof *p);
    if (!p) return NO_MEMORY("the sorted diagonal", d);
    for (int i = 0; i < d; i++)
      p[i] = (indexed){M[(size_t)i * d + i], i};
    qsort(p, (size_t)d, sizeof *p, cmp_indexed);
    memset(V, 0, sq(d) * sizeof *V);
    for (int k = 0; k < d; k++) {
      w[k] = p[k].value;
      V[(size_t)p[k].index * d + k] = 1.0;
    }
    free(p);
    return NRD_OK;
  }
  memcpy(V, M, sq(d) * sizeof *V);
  /* dsyevd returns the eigenvectors in the columns of V and w ascending */
  return LAPACK_STATUS(LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', d, V, d, w),
                       "dsyevd", "no convergence", d);
}

int la_sym_eigvals(int d, const double *M, double *w, double *work) {
  if (d <= 0) return BAD_DIMENSION(d);
  if (la_is_diagonal(d, M)) {
    for (int i = 0; i < d; i++)
      w[i] = M[(size_t)i * d + i];
    qsort(w, (size_t)d, sizeof *w, cmp_double);
    return NRD_OK;
  }
  memcpy(work, M, sq(d) * sizeof *work);
  return LAPACK_STATUS(LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', d, work, d,
                                      w),
                       "dsyevd", "no convergence", d);
}

/* F = V diag(w^p) V^T.  Needs w > 0 for p < 0 and w >= 0 for p > 0. */
static int sym_power(int d, const double *M, double p, double *F) {
  if (d <= 0) return BAD_DIMENSION(d);
  double *w = malloc((size_t)d * sizeof *w);
  double *V = malloc(sq(d) * sizeof *V);
  double *Y = malloc(sq(d) * sizeof *Y);
  int rc = w && V && Y ? NRD_OK : NO_MEMORY("eigenvectors", d);
  NRD_TRY(rc, la_sym_eig(d, M, w, V));
  for (int k = 0; rc == NRD_OK && k < d; k++)
    if (!(w[k] > 0 || (p > 0 && w[k] == 0)))
      rc = NRD_FAIL(NRD_ERR_NUMERIC, "eigenvalue %d is %g: no power %g", k,
                    w[k], p);
  if (rc == NRD_OK) {
    for (int k = 0; k < d; k++)
      w[k] = pow(w[k], p);
    for (int i = 0; i < d; i++)
      for (int k = 0; k < d; k++)
        Y[(size_t)i * d + k] = V[(size_t)i * d + k] * w[k];
    la_matmul_nt(d, Y, V, F);
    la_symmetrize(d, F);
  }
  free(w);
  free(V);
  free(Y);
  return rc;
}

int la_sym_sqrt(int d, const double *M, double *Msqrt) {
  return sym_power(d, M, 0.5, Msqrt);
}

int la_sym_invsqrt(int d, const double *M, double *Minvsqrt) {
  return sym_power(d, M, -0.5, Minvsqrt);
}

int la_cholesky(int d, const double *M, double *L) {
  if (d <= 0) return BAD_DIMENSION(d);
  if (la_is_diagonal(d, M)) {
    /* what dpotrf computes for a diagonal matrix, without its O(d^3) */
    memset(L, 0, sq(d) * sizeof *L);
    for (int i = 0; i < d; i++) {
      double m = M[(size_t)i * d + i];
      if (!(m > 0))
        return NRD_FAIL(NRD_ERR_NUMERIC,
                        "not positive definite: diagonal, M[%d][%d] = %g", i,
                        i, m);
      L[(size_t)i * d + i] = sqrt(m);
    }
    return NRD_OK;
  }
  memcpy(L, M, sq(d) * sizeof *L);
  int rc = LAPACK_STATUS(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', d, L, d),
                         "dpotrf", "not positive definite", d);
  if (rc != NRD_OK) return rc;
  for (int i = 0; i < d; i++)
    for (int j = i + 1; j < d; j++)
      L[(size_t)i * d + j] = 0.0;
  return NRD_OK;
}

double la_chol_logdet(int d, const double *L) {
  double s = 0.0;
  for (int i = 0; i < d; i++)
    s += log(L[(size_t)i * d + i]);
  return 2.0 * s;
}

int la_spd_inverse(int d, const double *M, double *Minv) {
  if (d <= 0) return BAD_DIMENSION(d);
  memcpy(Minv, M, sq(d) * sizeof *Minv);
  int rc = LAPACK_STATUS(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', d, Minv, d),
                         "dpotrf", "not positive definite", d);
  if (rc == NRD_OK)
    rc = LAPACK_STATUS(LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', d, Minv, d),
                       "dpotri", "singular", d);
  if (rc != NRD_OK) return rc;
  /* dpotri fills only the lower triangle */
  for (int i = 0; i < d; i++)
    for (int j = i + 1; j < d; j++)
      Minv[(size_t)i * d + j] = Minv[(size_t)j * d + i];
  return NRD_OK;
}

int la_general_eigvals(int d, const double *M, double *re, double *im) {
  if (d <= 0) return BAD_DIMENSION(d);
  double *T = malloc(sq(d) * sizeof *T);
  if (!T) return NO_MEMORY("a d x d copy", d);
  memcpy(T, M, sq(d) * sizeof *T);
  int rc = LAPACK_STATUS(LAPACKE_dgeev(LAPACK_ROW_MAJOR, 'N', 'N', d, T, d, re,
                                       im, NULL, 1, NULL, 1),
                         "dgeev", "no convergence", d);
  free(T);
  return rc;
}

int la_spectral_norm(int d, const double *M, double *norm) {
  if (d <= 0) return BAD_DIMENSION(d);
  double *T = malloc(sq(d) * sizeof *T);
  double *s = malloc((size_t)d * sizeof *s);
  int rc = T && s ? NRD_OK : NO_MEMORY("a d x d copy", d);
  if (rc == NRD_OK) {
    memcpy(T, M, sq(d) * sizeof *T);
    /* jobz = N: u and vt are not referenced, but LAPACKE checks ldvt >= d */
    rc = LAPACK_STATUS(
        LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'N', d, d, T, d, s, NULL, d, NULL, d),
        "dgesdd", "no convergence", d);
    if (rc == NRD_OK) *norm = s[0]; /* singular values come descending */
  }
  free(T);
  free(s);
  return rc;
}

/* ---------------------------------------------------------------- expm */

/* Higham (2005) Table 2.3: largest 1-norm for which the [m/m] Pade
 * approximant of exp has backward error below the unit roundoff. */
static const int pade_m[5] = {3, 5, 7, 9, 13};
static const double pade_theta[5] = {1.495585217958292e-2, 2.539398330063230e-1,
                                     9.504178996162932e-1, 2.097847961257068e0,
                                     5.371920351148152e0};

/* Coefficients b_0..b_m of the [m/m] Pade numerator p(x) = sum b_k x^k. */
static const double *pade_b(int m) {
  static const double b3[] = {120.0, 60.0, 12.0, 1.0};
  static const double b5[] = {30240.0, 15120.0, 3360.0, 420.0, 30.0, 1.0};
  static const double b7[] = {17297280.0, 8648640.0, 1995840.0, 277200.0,
                              25200.0,    1512.0,    56.0,      1.0};
  static const double b9[] = {
      17643225600.0, 8821612800.0, 2075673600.0, 302702400.0, 30270240.0,
      2162160.0,     110880.0,     3960.0,       90.0,        1.0};
  static const double b13[] = {64764752532480000.0,
                               32382376266240000.0,
                               7771770303897600.0,
                               1187353796428800.0,
                               129060195264000.0,
                               10559470521600.0,
                               670442572800.0,
                               33522128640.0,
                               1323241920.0,
                               40840800.0,
                               960960.0,
                               16380.0,
                               182.0,
                               1.0};
  switch (m) {
  case 3:
    return b3;
  case 5:
    return b5;
  case 7:
    return b7;
  case 9:
    return b9;
  default:
    return b13;
  }
}

static double norm1(int d, const double *M) {
  double best = 0.0;
  for (int j = 0; j < d; j++) {
    double s = 0.0;
    for (int i = 0; i < d; i++)
      s += fabs(M[(size_t)i * d + j]);
    if (!(s <= best)) best = s; /* also propagates NaN */
  }
  return best;
}

/* Y += a X */
static void axpy(size_t n, double a, const double *X, double *Y) {
  cblas_daxpy((int)n, a, X, 1, Y, 1);
}

static void add_diag(int d, double a, double *Y) {
  for (int i = 0; i < d; i++)
    Y[(size_t)i * d + i] += a;
}

int la_expm(int d, const double *M, double *E) {
  if (d <= 0) return BAD_DIMENSION(d);
  double nrm = norm1(d, M);
  if (!isfinite(nrm))
    return NRD_FAIL(NRD_ERR_INPUT,
                    "exp of a %d x %d matrix with a non-finite entry", d, d);
  size_t n = sq(d);
  /* work: A, A2, A4, A6, A8, Uo (odd part), Ve (even part), T */
  double *buf = malloc(8 * n * sizeof *buf);
  lapack_int *ipiv = malloc((size_t)d * sizeof *ipiv);
  if (!buf || !ipiv) {
    free(buf);
    free(ipiv);
    return NO_MEMORY("8 d x d work matrices", d);
  }
  double *A = buf, *A2 = buf + n, *A4 = buf + 2 * n, *A6 = buf + 3 * n;
  double *A8 = buf + 4 * n, *Uo = buf + 5 * n, *Ve = buf + 6 * n;
  double *T = buf + 7 * n;

  /* Lowest degree whose theta covers the norm; otherwise [13/13] after
   * scaling by 2^-s so that ||A/2^s||_1 <= theta_13. */
  int m = 13, s = 0;
  for (int k = 0; k < 4; k++)
    if (nrm <= pade_theta[k]) {
      m = pade_m[k];
      break;
    }
  if (m == 13 && nrm > pade_theta[4]) {
    s = (int)ceil(log2(nrm / pade_theta[4]));
    if (s < 0) s = 0;
  }
  for (size_t k = 0; k < n; k++)
    A[k] = ldexp(M[k], -s); /* exact scaling */
  const double *b = pade_b(m);

  la_matmul(d, A, A, A2);
  if (m < 13) {
    /* p(A) = Ve + Uo with Ve = sum b_2k A^2k, Uo = A sum b_2k+1 A^2k */
    const double *pw[5] = {NULL, A2, A4, A6, A8};
    if (m >= 5) la_matmul(d, A2, A2, A4);
    if (m >= 7) la_matmul(d, A2, A4, A6);
    if (m >= 9) la_matmul(d, A4, A4, A8);
    memset(T, 0, n * sizeof *T);
    memset(Ve, 0, n * sizeof *Ve);
    add_diag(d, b[1], T);
    add_diag(d, b[0], Ve);
    for (int k = 1; 2 * k <= m; k++) {
      axpy(n, b[2 * k + 1], pw[k], T);
      axpy(n, b[2 * k], pw[k], Ve);
    }
    la_matmul(d, A, T, Uo);
  } else {
    la_matmul(d, A2, A2, A4);
    la_matmul(d, A2, A4, A6);
    /* Uo = A [A6 (b13 A6 + b11 A4 + b9 A2) + b7 A6 + b5 A4 + b3 A2 + b1 I] */
    memset(T, 0, n * sizeof *T);
    axpy(n, b[13], A6, T);
    axpy(n, b[11], A4, T);
    axpy(n, b[9], A2, T);
    la_matmul(d, A6, T, A8); /* A8 as scratch */
    axpy(n, b[7], A6, A8);
    axpy(n, b[5], A4, A8);
    axpy(n, b[3], A2, A8);
    add_diag(d, b[1], A8);
    la_matmul(d, A, A8, Uo);
    /* Ve = A6 (b12 A6 + b10 A4 + b8 A2) + b6 A6 + b4 A4 + b2 A2 + b0 I */
    memset(T, 0, n * sizeof *T);
    axpy(n, b[12], A6, T);
    axpy(n, b[10], A4, T);
    axpy(n, b[8], A2, T);
    la_matmul(d, A6, T, Ve);
    axpy(n, b[6], A6, Ve);
    axpy(n, b[4], A4, Ve);
    axpy(n, b[2], A2, Ve);
    add_diag(d, b[0], Ve);
  }
  /* r = q(A)^{-1} p(A) with q(A) = Ve - Uo, p(A) = Ve + Uo */
  for (size_t k = 0; k < n; k++) {
    double v = Ve[k], u = Uo[k];
    T[k] = v - u;
    E[k] = v + u;
  }
  int rc =
      LAPACK_STATUS(LAPACKE_dgesv(LAPACK_ROW_MAJOR, d, d, T, d, ipiv, E, d),
                    "dgesv", "the Pade denominator is singular", d);
  /* undo the scaling: exp(M) = r^(2^s) */
  for (int k = 0; rc == NRD_OK && k < s; k++) {
    la_matmul(d, E, E, T);
    memcpy(E, T, n * sizeof *E);
  }
  free(buf);
  free(ipiv);
  return rc;
}
