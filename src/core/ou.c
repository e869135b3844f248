/* Forward Ornstein-Uhlenbeck operator A = (I + g Qhat) U: propagator, noise
 * covariance, spectrum (doc/theory.md sections 1.3-1.5); the builders of U and
 * Qhat, with the Lelievre-Nier-Pavliotis optimal perturbation, are in
 * ou_builders.c.
 *
 * Most work happens in the whitened frame y = U^{1/2} x, where the drift is
 * B = U + K with K = U^{1/2} Q U^{1/2} antisymmetric: e^{-Bt} is a
 * contraction there (its symmetric part U is positive), so nothing grows and
 * the stationary covariance is I. */
#include "core/ou.h"
#include "core/ou_checks.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "util/error.h"
#include "core/linalg.h"

/* Relative tolerance of the symmetry / antisymmetry checks (ou.h). */
#define OU_SYM_TOL 1e-12

static size_t sq(int d) {
  return (size_t)d * (size_t)d;
}

static int all_finite(size_t n, const double *x) {
  for (size_t k = 0; k < n; k++)
    if (!isfinite(x[k])) return 0;
  return 1;
}

static double max_abs(size_t n, const double *x) {
  double m = 0.0;
  for (size_t k = 0; k < n; k++)
    if (fabs(x[k]) > m) m = fabs(x[k]);
  return m;
}

/* Copy a symmetric (sign = +1) or antisymmetric (sign = -1) matrix, removing
 * round-off asymmetry so that downstream identities hold exactly; refuse
 * anything off by more than OU_SYM_TOL relative to the largest entry. */
static int copy_checked(int d, const double *M, double sign, const char *name,
                        double *out) {
  double tol = OU_SYM_TOL * max_abs(sq(d), M);
  for (int i = 0; i < d; i++)
    for (int j = i; j < d; j++) {
      double a = M[(size_t)i * d + j], b = M[(size_t)j * d + i];
      if (fabs(a - sign * b) > tol)
        return NRD_FAIL(NRD_ERR_INPUT,
                        "%s is not %s: %s[%d][%d] = %g, %s[%d][%d] = %g "
                        "(tolerance %g)",
                        name, sign > 0 ? "symmetric" : "antisymmetric", name,
                        i, j, a, name, j, i, b, tol);
      double m = 0.5 * (a + sign * b);
      /* diagonal written last: sign * m would give -0.0 there */
      out[(size_t)j * d + i] = sign * m;
      out[(size_t)i * d + j] = m;
    }
  return NRD_OK;
}

/* (ou_checks.h) */
int ou_check_spd(int d, const double *U, double *Ucopy, double *work) {
  if (!all_finite(sq(d), U))
    return NRD_FAIL(NRD_ERR_INPUT, "U has a non-finite entry");
  NRD_CHECK(copy_checked(d, U, 1.0, "U", Ucopy));
  for (int i = 0; i < d; i++) /* the common diagonal U: name the entry */
    if (!(Ucopy[(size_t)i * d + i] > 0))
      return NRD_FAIL(NRD_ERR_INPUT,
                      "U is not positive definite: U[%d][%d] = %g", i, i,
                      Ucopy[(size_t)i * d + i]);
  int rc = la_cholesky(d, Ucopy, work); /* its other failures as they come */
  if (rc == NRD_ERR_NUMERIC)
    rc = NRD_FAIL(NRD_ERR_INPUT,
                  "U is not positive definite (no Cholesky factor)");
  return rc;
}

void ou_free(ou_op *op) {
  free(op->U);
  free(op->Qhat);
  free(op->Q);
  free(op->A);
  free(op->S);
  free(op->Uh);
  free(op->Umh);
  free(op->B);
  op->U = op->Qhat = op->Q = op->A = op->S = op->Uh = op->Umh = op->B = NULL;
}

/* S, U^{1/2}, U^{-1/2} from one eigendecomposition (elementwise when U is
 * diagonal, which is the common case and exact). */
static int roots(int d, const double *U, double *S, double *Uh, double *Umh,
                 double *u_min) {
  size_t n = sq(d);
  if (la_is_diagonal(d, U)) {
    memset(S, 0, n * sizeof *S);
    memset(Uh, 0, n * sizeof *Uh);
    memset(Umh, 0, n * sizeof *Umh);
    *u_min = INFINITY;
    for (int i = 0; i < d; i++) {
      double u = U[(size_t)i * d + i];
      *u_min = fmin(*u_min, u);
      S[(size_t)i * d + i] = 1.0 / u;
      Uh[(size_t)i * d + i] = sqrt(u);
      Umh[(size_t)i * d + i] = 1.0 / sqrt(u);
    }
    return NRD_OK;
  }
  double *w = malloc((size_t)d * sizeof *w);
  double *V = malloc(n * sizeof *V);
  double *Y = malloc(n * sizeof *Y);
  int rc = w && V && Y ? NRD_OK : NRD_FAIL(NRD_ERR_NOMEM, "eigenvectors of U");
  NRD_TRY(rc, la_sym_eig(d, U, w, V));
  if (rc == NRD_OK && !(w[0] > 0))
    rc = NRD_FAIL(NRD_ERR_INPUT,
                  "U is not positive definite: smallest eigenvalue %g", w[0]);
  if (rc == NRD_OK) {
    *u_min = w[0]; /* ascending */
    for (int i = 0; i < d; i++)
      for (int k = 0; k < d; k++)
        Y[(size_t)i * d + k] = V[(size_t)i * d + k] * sqrt(w[k]);
    la_matmul_nt(d, Y, V, Uh);
    for (int i = 0; i < d; i++)
      for (int k = 0; k < d; k++)
        Y[(size_t)i * d + k] = V[(size_t)i * d + k] / sqrt(w[k]);
    la_matmul_nt(d, Y, V, Umh);
    la_symmetrize(d, Uh);
    la_symmetrize(d, Umh);
    /* Cholesky-based inverse: backward stable, unlike V diag(1/w) V^T */
    NRD_TRY(rc, la_spd_inverse(d, U, S));
  }
  free(w);
  free(V);
  free(Y);
  return rc;
}

int ou_init(ou_op *op, int d, const double *U, const double *Qhat, double g) {
  memset(op, 0, sizeof *op);
  if (d <= 0 || !U)
    return NRD_FAIL(NRD_ERR_INPUT, "d = %d and %s: no operator", d,
                    U ? "U given" : "no U");
  if (!isfinite(g))
    return NRD_FAIL(NRD_ERR_INPUT, "the strength g = %g is not finite", g);
  size_t n = sq(d);
  op->d = d;
  op->g = g;
  double **fields[] = {&op->U, &op->Qhat, &op->Q,   &op->A,
                       &op->S, &op->Uh,   &op->Umh, &op->B};
  for (size_t k = 0; k < sizeof fields / sizeof *fields; k++)
    if (!(*fields[k] = malloc(n * sizeof(double)))) {
      ou_free(op);
      return NRD_FAIL(NRD_ERR_NOMEM, "the operator's matrices, d = %d", d);
    }
  int rc = NRD_OK;
  NRD_TRY(rc, ou_check_spd(d, U, op->U, op->S));
  if (rc == NRD_OK && Qhat && !all_finite(n, Qhat))
    rc = NRD_FAIL(NRD_ERR_INPUT, "Qhat has a non-finite entry");
  if (Qhat)
    NRD_TRY(rc, copy_checked(d, Qhat, -1.0, "Qhat", op->Qhat));
  else
    memset(op->Qhat, 0, n * sizeof *op->Qhat);
  NRD_TRY(rc, roots(d, op->U, op->S, op->Uh, op->Umh, &op->u_min));
  if (rc != NRD_OK) {
    ou_free(op);
    return rc;
  }
  for (size_t k = 0; k < n; k++)
    op->Q[k] = g * op->Qhat[k];
  int diag = la_is_diagonal(d, op->U);
  if (diag) {
    /* A = U + Q U and B = U + Uh Q Uh entrywise: O(d^2) for large d */
    for (int i = 0; i < d; i++)
      for (int j = 0; j < d; j++) {
        size_t ij = (size_t)i * d + j;
        double ui = op->U[(size_t)i * d + i], uj = op->U[(size_t)j * d + j];
        op->A[ij] = op->U[ij] + op->Q[ij] * uj;
        op->B[ij] = op->U[ij] + op->Q[ij] * (sqrt(ui) * sqrt(uj));
      }
  } else {
    memcpy(op->A, op->U, n * sizeof *op->A);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, op->Q,
                d, op->U, d, 1.0, op->A, d);
    /* B = U + Uh Q Uh, with the antisymmetric part made exact */
    double *W = op->B; /* B's storage doubles as scratch for the product */
    double *K = malloc(n * sizeof *K);
    if (!K) {
      ou_free(op);
      return NRD_FAIL(NRD_ERR_NOMEM, "U^{1/2} Q U^{1/2}, d = %d", d);
    }
    la_congruence(d, op->Uh, op->Q, K, W);
    for (int i = 0; i < d; i++)
      for (int j = 0; j < d; j++) {
        size_t ij = (size_t)i * d + j, ji = (size_t)j * d + i;
        op->B[ij] = op->U[ij] + 0.5 * (K[ij] - K[ji]);
      }
    free(K);
  }
  op->isotropic = diag;
  for (int i = 1; diag && i < d; i++)
    if (op->U[(size_t)i * d + i] != op->U[0]) op->isotropic = 0;
  op->rotates = 0;
  for (size_t k = 0; k < n && !op->rotates; k++)
    op->rotates = op->Q[k] != 0.0;
  return NRD_OK;
}

/* E = L X R for diagonal-or-dense L, R (the whitening maps). */
static int unwhiten(const ou_op *op, const double *L, const double *X,
                    const double *R, double *E) {
  int d = op->d;
  if (la_is_diagonal(d, op->U)) {
    for (int i = 0; i < d; i++)
      for (int j = 0; j < d; j++)
        E[(size_t)i * d + j] =
            L[(size_t)i * d + i] * X[(size_t)i * d + j] * R[(size_t)j * d + j];
    return NRD_OK;
  }
  double *T = malloc(sq(d) * sizeof *T);
  if (!T) return NRD_FAIL(NRD_ERR_NOMEM, "a d x d product, d = %d", d);
  la_matmul(d, L, X, T);
  la_matmul(d, T, R, E);
  free(T);
  return NRD_OK;
}

/* Late enough for the difference: the symmetric part of B is U, so
 * ||X_t||_2 <= e^{-u_min t} <= 1/sqrt(2) once 2 u_min t >= ln 2, every
 * eigenvalue of W_t = I - X_t X_t^T is then >= 1/2, and its entries, each
 * rounded to a few eps, are as accurate relative to W as the doubling's.
 * One d x d expm (X_t, which e^{-At} needs too) instead of a 2d x 2d one
 * (at d = 512: 540 -> 71 ms). */
static int noise_by_difference(const ou_op *op, double t) {
  return !op->isotropic && 2.0 * op->u_min * t >= 0.69314718055994531;
}

/* X = e^{-Bt} */
static int whitened_propagator(const ou_op *op, double t, double *X) {
  size_t n = sq(op->d);
  double *M = malloc(n * sizeof *M);
  if (!M) return NRD_FAIL(NRD_ERR_NOMEM, "-B t, d = %d", op->d);
  for (size_t k = 0; k < n; k++)
    M[k] = -t * op->B[k];
  int rc = NRD_OK;
  NRD_TRY(rc, la_expm(op->d, M, X));
  free(M);
  return rc;
}

/* W = I - X X^T */
static void noise_from_X(int d, const double *X, double *W) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d, d, d, -1.0, X, d, X,
              d, 0.0, W, d);
  for (int i = 0; i < d; i++)
    W[(size_t)i * d + i] += 1.0;
  la_symmetrize(d, W);
}

int ou_propagator(const ou_op *op, double t, double *E) {
  if (!isfinite(t))
    return NRD_FAIL(NRD_ERR_INPUT, "e^{-At} needs a finite t, not %g", t);
  int d = op->d;
  size_t n = sq(d);
  double *M = calloc(n, sizeof *M);
  double *X = malloc(n * sizeof *X);
  int rc = M && X ? NRD_OK : NRD_FAIL(NRD_ERR_NOMEM, "e^{-At}, d = %d", d);
  if (rc == NRD_OK) {
    if (op->isotropic && !op->rotates) {
      /* e^{-ut} I: what the expm of the zero matrix below gives, bit for bit,
       * without its O(d^3) cost (8.5 s per time at d = 4096) */
      memset(E, 0, n * sizeof *E);
      for (int i = 0; i < d; i++)
        E[(size_t)i * d + i] = exp(-op->U[0] * t);
    } else if (op->isotropic) {
      /* e^{-At} = e^{-ut} e^{-uQt}: the rotation stays exactly separate */
      double u = op->U[0];
      for (size_t k = 0; k < n; k++)
        M[k] = -u * t * op->Q[k];
      NRD_TRY(rc, la_expm(d, M, E));
      if (rc == NRD_OK)
        for (size_t k = 0; k < n; k++)
          E[k] *= exp(-u * t);
    } else {
      /* e^{-At} = U^{-1/2} e^{-Bt} U^{1/2} (doc/theory.md (1.11)) */
      NRD_TRY(rc, whitened_propagator(op, t, X));
      NRD_TRY(rc, unwhiten(op, op->Umh, X, op->Uh, E));
    }
  }
  free(M);
  free(X);
  return rc;
}

/* Whitened noise covariance W_t = U^{1/2} Delta_t U^{1/2} = I - X_t X_t^T
 * = int_0^t X_s 2U X_s^T ds, X_t = e^{-Bt} (the noise is 2U in this frame).
 * Late (noise_by_difference) as that difference; earlier without forming
 * it (it loses all digits as t -> 0, since W_t ~ 2t U):
 * 1. base step t0 = t / 2^k with ||B t0||_1, ||B^T t0||_1 <= 1/2: Van Loan's
 *    block exponential exp([[-B t0, U/c], [0, B^T t0]]) = [[X, F], [0, *]],
 *    c = ||U||_1, gives W_t0 = 2 t0 c F X^T with full relative accuracy
 *    (F ~ U/c; the block has norm <= 3/2, so expm needs no squaring);
 * 2. k doublings W_2t = W_t + X_t W_t X_t^T, X_2t = X_t^2 (the semigroup
 *    property): a sum of positive semidefinite terms, so no cancellation,
 *    and X_t is a contraction, so nothing grows.
 * Cost: one 2d x 2d expm plus 3 products per doubling. */
static int whitened_noise(const ou_op *op, double t, double *W) {
  int d = op->d, n2 = 2 * d;
  size_t n = sq(d);
  if (noise_by_difference(op, t)) {
    double *X = malloc(n * sizeof *X);
    int rc = X ? NRD_OK : NRD_FAIL(NRD_ERR_NOMEM, "e^{-Bt}, d = %d", d);
    NRD_TRY(rc, whitened_propagator(op, t, X));
    if (rc == NRD_OK) noise_from_X(d, X, W);
    free(X);
    return rc;
  }
  /* nb bounds the 1-norms of B and B^T, nu = ||U||_1 */
  double nb = 0.0, nu = 0.0;
  for (int j = 0; j < d; j++) {
    double s = 0.0, sr = 0.0, su = 0.0;
    for (int i = 0; i < d; i++) {
      s += fabs(op->B[(size_t)i * d + j]);
      sr += fabs(op->B[(size_t)j * d + i]);
      su += fabs(op->U[(size_t)i * d + j]);
    }
    nb = fmax(nb, fmax(s, sr));
    nu = fmax(nu, su);
  }
  int k = 0;
  double t0 = t;
  while (nb * t0 > 0.5) {
    t0 *= 0.5;
    k++;
  }
  double *blk = calloc(4 * n, sizeof *blk);
  double *Eb = malloc(4 * n * sizeof *Eb);
  double *X = malloc(n * sizeof *X);
  double *T = malloc(n * sizeof *T);
  int rc = NRD_OK;
  if (!blk || !Eb || !X || !T) {
    rc = NRD_FAIL(NRD_ERR_NOMEM, "the 2d x 2d block exponential, d = %d", d);
    goto out;
  }
  for (int i = 0; i < d; i++) {
    for (int j = 0; j < d; j++) {
      blk[(size_t)i * n2 + j] = -t0 * op->B[(size_t)i * d + j];
      blk[(size_t)(d + i) * n2 + d + j] = t0 * op->B[(size_t)j * d + i];
    }
  }
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++)
      blk[(size_t)i * n2 + d + j] = op->U[(size_t)i * d + j] / nu;
  NRD_TRY(rc, la_expm(n2, blk, Eb));
  if (rc != NRD_OK) goto out;
  for (int i = 0; i < d; i++) {
    memcpy(X + (size_t)i * d, Eb + (size_t)i * n2, d * sizeof *X);
    memcpy(T + (size_t)i * d, Eb + (size_t)i * n2 + d, d * sizeof *T);
  }
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d, d, d, 2.0 * t0 * nu,
              T, d, X, d, 0.0, W, d);
  la_symmetrize(d, W);
  for (int s = 0; s < k; s++) {
    la_matmul(d, X, W, T);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d, d, d, 1.0, T, d, X,
                d, 1.0, W, d);
    la_symmetrize(d, W);
    if (s + 1 < k) {
      la_matmul(d, X, X, T);
      memcpy(X, T, n * sizeof *X);
    }
  }
out:
  free(blk);
  free(Eb);
  free(X);
  free(T);
  return rc;
}

/* Delta = U^{-1/2} W U^{-1/2}, symmetrised */
static int noise_unwhitened(const ou_op *op, const double *W, double *Delta) {
  int rc = NRD_OK;
  NRD_TRY(rc, unwhiten(op, op->Umh, W, op->Umh, Delta));
  if (rc == NRD_OK) la_symmetrize(op->d, Delta);
  return rc;
}

int ou_noise_cov(const ou_op *op, double t, double *Delta) {
  if (!(t >= 0) || !isfinite(t))
    return NRD_FAIL(NRD_ERR_INPUT, "Delta_t needs a finite t >= 0, not %g", t);
  int d = op->d;
  size_t n = sq(d);
  if (t == 0) {
    memset(Delta, 0, n * sizeof *Delta);
    return NRD_OK;
  }
  if (op->isotropic) {
    /* rotation drops out: Delta = (1 - e^{-2ut})/u I, exactly as for Q = 0 */
    double u = op->U[0];
    memset(Delta, 0, n * sizeof *Delta);
    for (int i = 0; i < d; i++)
      Delta[(size_t)i * d + i] = -expm1(-2 * u * t) / u;
    return NRD_OK;
  }
  double *W = malloc(n * sizeof *W);
  if (!W) return NRD_FAIL(NRD_ERR_NOMEM, "Delta_t, d = %d", d);
  int rc = NRD_OK;
  NRD_TRY(rc, whitened_noise(op, t, W));
  NRD_TRY(rc, noise_unwhitened(op, W, Delta));
  free(W);
  return rc;
}

int ou_moments(const ou_op *op, double t, double *E, double *Delta) {
  if (!(t >= 0) || !isfinite(t))
    return NRD_FAIL(NRD_ERR_INPUT, "Delta_t needs a finite t >= 0, not %g", t);
  if (!noise_by_difference(op, t)) {
    NRD_CHECK(ou_propagator(op, t, E));
    NRD_CHECK(ou_noise_cov(op, t, Delta));
    return NRD_OK;
  }
  /* the steps of ou_propagator and ou_noise_cov, with X = e^{-Bt} once */
  int d = op->d;
  size_t n = sq(d);
  double *X = malloc(n * sizeof *X), *W = malloc(n * sizeof *W);
  int rc = X && W ? NRD_OK
                  : NRD_FAIL(NRD_ERR_NOMEM, "e^{-At} and Delta_t, d = %d", d);
  NRD_TRY(rc, whitened_propagator(op, t, X));
  NRD_TRY(rc, unwhiten(op, op->Umh, X, op->Uh, E));
  if (rc == NRD_OK) {
    noise_from_X(d, X, W);
    NRD_TRY(rc, noise_unwhitened(op, W, Delta));
  }
  free(X);
  free(W);
  return rc;
}

void ou_marginal_from(int d, const double *E, const double *Delta,
                      const double *Sigma0, double *Sigma_t, double *work) {
  la_congruence(d, E, Sigma0, Sigma_t, work);
  for (size_t k = 0; k < sq(d); k++)
    Sigma_t[k] += Delta[k];
  la_symmetrize(d, Sigma_t);
}

int ou_marginal_cov(const ou_op *op, double t, const double *Sigma0,
                    double *Sigma_t) {
  int d = op->d;
  size_t n = sq(d);
  double *E = malloc(n * sizeof *E);
  double *D = malloc(n * sizeof *D);
  double *T = malloc(n * sizeof *T);
  int rc = E && D && T ? NRD_OK
                       : NRD_FAIL(NRD_ERR_NOMEM, "Sigma_t, d = %d", d);
  NRD_TRY(rc, ou_moments(op, t, E, D));
  if (rc == NRD_OK) ou_marginal_from(d, E, D, Sigma0, Sigma_t, T);
  free(E);
  free(D);
  free(T);
  return rc;
}

typedef struct {
  double re, im;
} cplx;

static int cmp_cplx(const void *a, const void *b) {
  const cplx *x = a, *y = b;
  if (x->re != y->re) return x->re < y->re ? -1 : 1;
  if (x->im != y->im) return x->im < y->im ? -1 : 1;
  return 0;
}

int ou_spectrum(const ou_op *op, double *re, double *im) {
  int d = op->d;
  cplx *z = malloc((size_t)d * sizeof *z);
  if (!z) return NRD_FAIL(NRD_ERR_NOMEM, "the spectrum, d = %d", d);
  /* B is similar to A and better scaled (symmetric part U > 0) */
  int rc = NRD_OK;
  NRD_TRY(rc, la_general_eigvals(d, op->B, re, im));
  if (rc == NRD_OK) {
    for (int k = 0; k < d; k++)
      z[k] = (cplx){re[k], im[k]};
    qsort(z, (size_t)d, sizeof *z, cmp_cplx);
    for (int k = 0; k < d; k++) {
      re[k] = z[k].re;
      im[k] = z[k].im;
    }
  }
  free(z);
  return rc;
}

int ou_relaxation_rate(const ou_op *op, double *rate) {
  int d = op->d;
  if (op->isotropic) {
    /* sigma(u (I + Q)) = u + i u sigma(Q/i), all on Re = u */
    *rate = op->U[0];
    return NRD_OK;
  }
  double *re = malloc((size_t)d * sizeof *re);
  double *im = malloc((size_t)d * sizeof *im);
  int rc = re && im ? NRD_OK
                     : NRD_FAIL(NRD_ERR_NOMEM, "the spectrum, d = %d", d);
  NRD_TRY(rc, ou_spectrum(op, re, im));
  if (rc == NRD_OK) *rate = re[0];
  free(re);
  free(im);
  return rc;
}

double ou_entropy_production(const ou_op *op) {
  /* tr(Q^T Q U) = sum_ij Q_ij (Q U)_ij */
  int d = op->d;
  size_t n = sq(d);
  double s = 0.0;
  if (la_is_diagonal(d, op->U)) {
    for (int i = 0; i < d; i++)
      for (int j = 0; j < d; j++) {
        double q = op->Q[(size_t)i * d + j];
        s += q * q * op->U[(size_t)j * d + j];
      }
    return s;
  }
  double *T = malloc(n * sizeof *T);
  if (!T) return NAN;
  la_matmul(d, op->Q, op->U, T);
  for (size_t k = 0; k < n; k++)
    s += op->Q[k] * T[k];
  free(T);
  return s;
}
