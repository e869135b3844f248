/* Builders of the forward operator's matrices (ou.h): U isotropic,
 * diagonal or geometric; Qhat random or the Lelievre-Nier-Pavliotis optimal
 * perturbation (doc/theory.md section 3.2). */
#include "core/ou.h"
#include "core/ou_checks.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "util/error.h"
#include "core/linalg.h"
#include "core/rng.h"

static size_t sq(int d) {
  return (size_t)d * (size_t)d;
}

void ou_u_isotropic(int d, double u, double *U) {
  memset(U, 0, sq(d) * sizeof *U);
  for (int i = 0; i < d; i++)
    U[(size_t)i * d + i] = u;
}

void ou_u_diagonal(int d, const double *diag, double *U) {
  memset(U, 0, sq(d) * sizeof *U);
  for (int i = 0; i < d; i++)
    U[(size_t)i * d + i] = diag[i];
}

void ou_u_geometric(int d, double umin, double umax, double *U) {
  memset(U, 0, sq(d) * sizeof *U);
  for (int i = 0; i < d; i++) {
    double f = d > 1 ? (double)i / (d - 1) : 0.0;
    U[(size_t)i * d + i] = umin * pow(umax / umin, f);
  }
}

int ou_q_random(int d, uint32_t seed, double *Qhat) {
  if (d <= 0) return NRD_FAIL(NRD_ERR_INPUT, "random Qhat: d = %d < 1", d);
  size_t n = sq(d);
  double *G = malloc(n * sizeof *G);
  if (!G) return NRD_FAIL(NRD_ERR_NOMEM, "random Qhat, d = %d", d);
  rng_normals(seed, RNG_PURPOSE_QHAT, 0, 0, n, G);
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++)
      Qhat[(size_t)i * d + j] =
          0.5 * (G[(size_t)i * d + j] - G[(size_t)j * d + i]);
  free(G);
  double nrm = 0.0;
  NRD_CHECK(la_spectral_norm(d, Qhat, &nrm));
  if (nrm > 0) /* d = 1 has only the zero antisymmetric matrix */
    for (size_t k = 0; k < n; k++)
      Qhat[k] /= nrm;
  return NRD_OK;
}

/* lambda_k = k by default; must be positive, finite and distinct. */
static int get_lambda(int d, const double *lambda, double *lam) {
  for (int k = 0; k < d; k++) {
    lam[k] = lambda ? lambda[k] : k + 1.0;
    if (!(lam[k] > 0) || !isfinite(lam[k]))
      return NRD_FAIL(NRD_ERR_INPUT, "lambda_%d = %g is not positive", k,
                      lam[k]);
  }
  for (int k = 0; k < d; k++)
    for (int l = k + 1; l < d; l++)
      if (lam[k] == lam[l])
        return NRD_FAIL(NRD_ERR_INPUT, "lambda_%d = lambda_%d = %g", k, l,
                        lam[k]);
  return NRD_OK;
}

/* K^psi_kl = (lambda_k + lambda_l)/(lambda_k - lambda_l) M_kl, zero diagonal:
 * makes C = (M - tau I) + K^psi skew-adjoint in the Lambda^{-1} inner product,
 * hence diagonalizable with imaginary spectrum (doc/theory.md (3.7)). */
static void k_psi(int d, const double *lam, const double *M, double *Kp) {
  for (int k = 0; k < d; k++)
    for (int l = 0; l < d; l++)
      Kp[(size_t)k * d + l] =
          k == l ? 0.0
                 : (lam[k] + lam[l]) / (lam[k] - lam[l]) * M[(size_t)k * d + l];
}

static void antisymmetrize(int d, double *J) {
  for (int i = 0; i < d; i++) {
    J[(size_t)i * d + i] = 0.0;
    for (int j = i + 1; j < d; j++) {
      double a = 0.5 * (J[(size_t)i * d + j] - J[(size_t)j * d + i]);
      J[(size_t)i * d + j] = a;
      J[(size_t)j * d + i] = -a;
    }
  }
}

int ou_q_optimal_generic(int d, const double *U, const double *lambda,
                         double *J) {
  if (d <= 0 || !U || !J)
    return NRD_FAIL(NRD_ERR_INPUT, "optimal Q: d = %d, or no U or J", d);
  size_t n = sq(d);
  double *lam = malloc((size_t)d * sizeof *lam);
  double *w = malloc((size_t)d * sizeof *w);
  double *q = malloc((size_t)d * sizeof *q);
  int *rem = malloc((size_t)d * sizeof *rem);
  int *order = malloc((size_t)d * sizeof *order);
  double *V = malloc(n * sizeof *V);
  double *P = malloc(n * sizeof *P);
  double *Ps = malloc(n * sizeof *Ps);
  double *M = malloc(n * sizeof *M);
  double *T = malloc(n * sizeof *T);
  int rc = NRD_OK;
  if (!lam || !w || !q || !rem || !order || !V || !P || !Ps || !M || !T)
    rc = NRD_FAIL(NRD_ERR_NOMEM, "optimal Q, d = %d", d);
  NRD_TRY(rc, ou_check_spd(d, U, M, T));
  NRD_TRY(rc, get_lambda(d, lambda, lam));
  NRD_TRY(rc, la_sym_eig(d, M, w, V));
  if (rc == NRD_OK && !(w[0] > 0))
    rc = NRD_FAIL(NRD_ERR_INPUT,
                  "U is not positive definite: smallest eigenvalue %g", w[0]);
  if (rc != NRD_OK) goto out;

  /* Step 2 in eigen-coordinates: the basis starts as I and U as diag(w).
   * The remaining vectors stay U-orthogonal (each rotation mixes two of
   * them, and the complement of psi_k is U-orthogonal to the rest), so
   * their Rayleigh quotients q are tracked exactly and
   * cos^2 theta = (tau - q_j)/(q_i - q_j).  We pair the largest with the
   * smallest remaining quotient.  tau = mean(w) = Tr U/d up to rounding,
   * which keeps the tracked quotients summing to d tau. */
  double tau = 0.0;
  for (int k = 0; k < d; k++)
    tau += w[k];
  tau /= d;
  la_identity(d, P);
  for (int k = 0; k < d; k++) {
    q[k] = w[k];
    rem[k] = k;
  }
  int nrem = d;
  for (int step = 0; step < d - 1; step++) {
    int a = 0, b = 0; /* positions in rem of max / min quotient */
    for (int r = 1; r < nrem; r++) {
      if (q[rem[r]] > q[rem[a]]) a = r;
      if (q[rem[r]] < q[rem[b]]) b = r;
    }
    int i = rem[a], j = rem[b];
    double c = 1.0, s = 0.0, gap = q[i] - q[j];
    if (gap > 0) {
      double c2 = fmin(fmax((tau - q[j]) / gap, 0.0), 1.0);
      double s2 = fmin(fmax((q[i] - tau) / gap, 0.0), 1.0);
      double h = sqrt(c2 + s2);
      c = sqrt(c2) / h;
      s = sqrt(s2) / h;
    }
    for (int r = 0; r < d; r++) {
      double pi = P[(size_t)r * d + i], pj = P[(size_t)r * d + j];
      P[(size_t)r * d + i] = c * pi + s * pj;
      P[(size_t)r * d + j] = -s * pi + c * pj;
    }
    q[j] = q[i] + q[j] - tau;
    q[i] = tau;
    order[step] = i;
    rem[a] = rem[--nrem];
  }
  order[d - 1] = rem[0];
  for (int r = 0; r < d; r++)
    for (int k = 0; k < d; k++)
      Ps[(size_t)r * d + k] = P[(size_t)r * d + order[k]];

  /* Step 3: M = Psi^T diag(w) Psi, then K^psi */
  for (int r = 0; r < d; r++)
    for (int k = 0; k < d; k++)
      T[(size_t)r * d + k] = w[r] * Ps[(size_t)r * d + k];
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, d, 1.0, Ps, d, T,
              d, 0.0, M, d);
  la_symmetrize(d, M);
  k_psi(d, lam, M, P);

  /* Step 4: K = Psi K^psi Psi^T (eigen-coordinates), then
   * J = U^{-1/2} K U^{-1/2} = V diag(w^-1/2) K diag(w^-1/2) V^T */
  la_matmul(d, Ps, P, T);
  la_matmul_nt(d, T, Ps, M);
  for (int r = 0; r < d; r++)
    for (int k = 0; k < d; k++)
      M[(size_t)r * d + k] /= sqrt(w[r] * w[k]);
  la_matmul(d, V, M, T);
  la_matmul_nt(d, T, V, J);
  antisymmetrize(d, J);
out:
  free(lam);
  free(w);
  free(q);
  free(rem);
  free(order);
  free(V);
  free(P);
  free(Ps);
  free(M);
  free(T);
  return rc;
}

/* In-place unnormalised Walsh-Hadamard transform of each row (rows = 0) or of
 * each column (rows = 1) of a d x d matrix, d = 2^p.  The column transform
 * combines whole rows, so it runs on contiguous memory. */
static void fwht_matrix(int d, double *X, int columns) {
  if (columns) {
    for (int h = 1; h < d; h *= 2)
      for (int i = 0; i < d; i += 2 * h)
        for (int j = i; j < i + h; j++) {
          double *a = X + (size_t)j * d, *b = X + (size_t)(j + h) * d;
          for (int c = 0; c < d; c++) {
            double x = a[c], y = b[c];
            a[c] = x + y;
            b[c] = x - y;
          }
        }
    return;
  }
  for (int r = 0; r < d; r++) {
    double *v = X + (size_t)r * d;
    for (int h = 1; h < d; h *= 2)
      for (int i = 0; i < d; i += 2 * h)
        for (int j = i; j < i + h; j++) {
          double x = v[j], y = v[j + h];
          v[j] = x + y;
          v[j + h] = x - y;
        }
  }
}

/* Hadamard shortcut (doc/theory.md (3.8)) for U = diag(u), d = 2^p:
 * Psi = H/sqrt(d) has |psi_k(i)|^2 = 1/d, so diag(M) = tau at once, and
 * M_kl = hhat(k XOR l) with hhat = WHT(u)/d.  K = H K^psi H / d costs two
 * fast transforms instead of two dense products. */
static int q_optimal_hadamard(int d, const double *u, const double *lam,
                              double *J) {
  double *h = malloc((size_t)d * sizeof *h);
  if (!h) return NRD_FAIL(NRD_ERR_NOMEM, "optimal Q, d = %d", d);
  memcpy(h, u, (size_t)d * sizeof *h);
  for (int hs = 1; hs < d; hs *= 2)
    for (int i = 0; i < d; i += 2 * hs)
      for (int j = i; j < i + hs; j++) {
        double x = h[j], y = h[j + hs];
        h[j] = x + y;
        h[j + hs] = x - y;
      }
  for (int k = 0; k < d; k++)
    h[k] /= d;
  for (int k = 0; k < d; k++)
    for (int l = 0; l < d; l++)
      J[(size_t)k * d + l] =
          k == l ? 0.0 : (lam[k] + lam[l]) / (lam[k] - lam[l]) * h[k ^ l];
  free(h);
  fwht_matrix(d, J, 0);
  fwht_matrix(d, J, 1);
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++)
      J[(size_t)i * d + j] /= d * sqrt(u[i] * u[j]);
  antisymmetrize(d, J);
  return NRD_OK;
}

int ou_q_optimal(int d, const double *U, const double *lambda, double *J) {
  if (d <= 0 || !U || !J)
    return NRD_FAIL(NRD_ERR_INPUT, "optimal Q: d = %d, or no U or J", d);
  int pow2 = d >= 2 && (d & (d - 1)) == 0;
  if (!pow2 || !la_is_diagonal(d, U)) {
    NRD_CHECK(ou_q_optimal_generic(d, U, lambda, J));
    return NRD_OK;
  }
  double *u = malloc((size_t)d * sizeof *u);
  double *lam = malloc((size_t)d * sizeof *lam);
  int rc = u && lam ? NRD_OK : NRD_FAIL(NRD_ERR_NOMEM, "optimal Q, d = %d", d);
  NRD_TRY(rc, get_lambda(d, lambda, lam));
  for (int i = 0; rc == NRD_OK && i < d; i++) {
    u[i] = U[(size_t)i * d + i];
    if (!(u[i] > 0) || !isfinite(u[i]))
      rc = NRD_FAIL(NRD_ERR_INPUT, "U is not positive definite: U[%d][%d] = %g",
                    i, i, u[i]);
  }
  NRD_TRY(rc, q_optimal_hadamard(d, u, lam, J));
  free(u);
  free(lam);
  return rc;
}
