/* Time grids and reverse-time steps (see integrate.h). */
#include "core/integrate.h"
#include "util/simd.h"
#include "util/error.h"
#include "core/linalg.h"
#include "core/parallel.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int timegrid_build(int spacing, double T, double t_min, long steps, double *t) {
  if (steps < 1 || !(T > t_min) || t_min < 0)
    return NRD_FAIL(NRD_ERR_INPUT,
                    "time grid: %ld steps from T = %g to t_min = %g", steps, T,
                    t_min);
  if (spacing == TIME_LOG) {
    if (!(t_min > 0))
      return NRD_FAIL(NRD_ERR_INPUT, "log time grid: t_min = %g is not > 0",
                      t_min);
    double a = log(T), b = log(t_min);
    for (long k = 0; k <= steps; k++)
      t[k] = exp(a + (b - a) * (double)k / (double)steps);
  } else {
    for (long k = 0; k <= steps; k++)
      t[k] = T + (t_min - T) * (double)k / (double)steps;
  }
  /* End points exactly, whatever the rounding of the formulas. */
  t[0] = T;
  t[steps] = t_min;
  return NRD_OK;
}

/* 1 and *v = c if M (d x d) is c I to within 4 d eps |c| (every
 * off-diagonal |M_ij| and |M_ii - c|, c = M_00 != 0): replacing such a
 * matrix by c I changes products by the size of their round-off.  Else 0. */
static int scalar_of(int d, const double *M, double *v) {
  double c = M[0];
  if (!(c != 0) || !isfinite(c)) return 0;
  double lim = 4.0 * d * DBL_EPSILON * fabs(c);
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++) {
      double x = M[(size_t)i * d + j] - (i == j ? c : 0.0);
      if (!(fabs(x) <= lim)) return 0;
    }
  *v = c;
  return 1;
}

int step_ops_init(step_ops *s, const ou_op *op, int scheme) {
  memset(s, 0, sizeof *s);
  s->d = op->d;
  s->scheme = scheme;
  s->h = -1.0;
  s->A = op->A;
  s->iso_A = scalar_of(op->d, op->A, &s->s_A);
  if (scheme == STEP_EXPONENTIAL) {
    size_t dd = (size_t)op->d * (size_t)op->d;
    s->F = malloc(dd * sizeof *s->F);
    s->G = malloc(dd * sizeof *s->G);
    s->Ln = malloc(dd * sizeof *s->Ln);
    if (!s->F || !s->G || !s->Ln) {
      step_ops_free(s);
      return NRD_FAIL(NRD_ERR_NOMEM, "the exponential scheme, d = %d", op->d);
    }
  }
  return NRD_OK;
}

void step_ops_free(step_ops *s) {
  free(s->F);
  free(s->G);
  free(s->Ln);
  s->F = s->G = s->Ln = NULL;
}

/* G = A^{-1}(e^{Ah} - I) = sum_j h^{j+1} A^j / (j+1)!: taken from the
 * exponential of the block matrix [[A h, h I], [0, 0]] (its top-right block),
 * which avoids inverting A and stays accurate for small h. */
static int phi1(int d, const double *A, double h, double *F, double *G) {
  int n = 2 * d;
  double *M = calloc((size_t)n * n, sizeof *M);
  double *E = malloc((size_t)n * n * sizeof *E);
  if (!M || !E) {
    free(M);
    free(E);
    return NRD_FAIL(NRD_ERR_NOMEM, "the 2d x 2d phi_1 block, d = %d", d);
  }
  for (int i = 0; i < d; i++) {
    for (int j = 0; j < d; j++)
      M[i * n + j] = A[i * d + j] * h;
    M[i * n + d + i] = h;
  }
  int rc = NRD_OK;
  NRD_TRY(rc, la_expm(n, M, E));
  if (rc == NRD_OK)
    for (int i = 0; i < d; i++) {
      memcpy(F + (size_t)i * d, E + (size_t)i * n, (size_t)d * sizeof *F);
      memcpy(G + (size_t)i * d, E + (size_t)i * n + d, (size_t)d * sizeof *G);
    }
  free(M);
  free(E);
  return rc;
}

int step_ops_set_h(step_ops *s, const ou_op *op, double h) {
  if (!(h > 0)) return NRD_FAIL(NRD_ERR_INPUT, "step h = %g is not > 0", h);
  if (h == s->h) return NRD_OK;
  s->h = h;
  if (s->scheme != STEP_EXPONENTIAL) return NRD_OK;
  int d = s->d;
  NRD_CHECK(phi1(d, op->A, h, s->F, s->G));
  int rc = NRD_OK;
  /* noise covariance F S F^T - S = (e^{-Ah})^{-1} Delta_h (e^{-Ah})^{-T}:
   * computed from Delta_h, which ou_noise_cov evaluates accurately for small
   * h, instead of as a difference of O(1) matrices. */
  size_t dd = (size_t)d * d;
  double *Dh = malloc(dd * sizeof *Dh), *C = malloc(dd * sizeof *C);
  double *W = malloc(dd * sizeof *W);
  if (!Dh || !C || !W) {
    rc = NRD_FAIL(NRD_ERR_NOMEM, "the exponential scheme's noise, d = %d", d);
    goto out;
  }
  NRD_TRY(rc, ou_noise_cov(op, h, Dh));
  if (rc != NRD_OK) goto out;
  la_congruence(d, s->F, Dh, C, W);
  la_symmetrize(d, C);
  NRD_TRY(rc, la_cholesky(d, C, s->Ln));
  if (rc == NRD_OK) {
    s->iso_F = scalar_of(d, s->F, &s->s_F);
    s->iso_G = scalar_of(d, s->G, &s->s_G);
    s->iso_Ln = scalar_of(d, s->Ln, &s->s_Ln);
  }
out:
  free(Dh);
  free(C);
  free(W);
  return rc;
}

/* ------------------------------------------- element-wise step updates */

/* The updates below are memory-bound passes over P x d arrays.  GCC 12 at
 * -O2 leaves such loops scalar, so they use GCC's generic vectors of 8
 * doubles (one AVX-512, two AVX2 or four SSE2 registers, per target clone)
 * with the scalar expression unchanged: the same IEEE operations in every
 * clone and in the tail, so results do not depend on the CPU.  Rows are
 * split over threads by nrd_par_rows (no effect on results either). */
/* NRD_CLONES, NRD_VEC, v8d, ld8, st8: nrdiff/simd.h */

enum { UPD_EULER, UPD_EULER_ISO, UPD_EXP_ISO, UPD_EXP_MIXED };

typedef struct {
  int kind, d;
  double *Y;
  const double *W, *S, *Xi; /* W: the GEMMs' sum (may be NULL) */
  double h, sq, a;          /* Euler */
  double f, g, l;           /* exponential: multiples of I (0: via W) */
  int use_f, use_g, use_l;
} upd_ctx;

/*   UPD_EULER:      y += h (w + 2 s) + sq xi      (w = A y from a GEMM)
 *   UPD_EULER_ISO:  y += h (a y + 2 s) + sq xi
 *   UPD_EXP_ISO:    y = f y + g s + l xi
 *   UPD_EXP_MIXED:  y = ((w + f y) + g s) + l xi, the iso terms only */
NRD_CLONES static void upd_range(const upd_ctx *c, size_t i0, size_t i1) {
  double *Y = c->Y;
  const double *W = c->W, *S = c->S, *Xi = c->Xi;
  double h = c->h, sq = c->sq, a = c->a, f = c->f, g = c->g, l = c->l;
  size_t i = i0;
  switch (c->kind) {
  case UPD_EULER:
#ifdef NRD_VEC
    for (; i + 8 <= i1; i += 8)
      st8(Y + i, ld8(Y + i) + (h * (ld8(W + i) + 2.0 * ld8(S + i)) +
                               sq * ld8(Xi + i)));
#endif
    for (; i < i1; i++)
      Y[i] += h * (W[i] + 2.0 * S[i]) + sq * Xi[i];
    break;
  case UPD_EULER_ISO:
#ifdef NRD_VEC
    for (; i + 8 <= i1; i += 8) {
      v8d y = ld8(Y + i);
      st8(Y + i, y + (h * (a * y + 2.0 * ld8(S + i)) + sq * ld8(Xi + i)));
    }
#endif
    for (; i < i1; i++)
      Y[i] += h * (a * Y[i] + 2.0 * S[i]) + sq * Xi[i];
    break;
  case UPD_EXP_ISO:
#ifdef NRD_VEC
    for (; i + 8 <= i1; i += 8)
      st8(Y + i, f * ld8(Y + i) + g * ld8(S + i) + l * ld8(Xi + i));
#endif
    for (; i < i1; i++)
      Y[i] = f * Y[i] + g * S[i] + l * Xi[i];
    break;
  default: /* UPD_EXP_MIXED, rare: scalar */
    for (; i < i1; i++) {
      double y = W[i];
      if (c->use_f) y += f * Y[i];
      if (c->use_g) y += g * S[i];
      if (c->use_l) y += l * Xi[i];
      Y[i] = y;
    }
  }
}

static void upd_rows(void *vc, int p0, int p1) {
  const upd_ctx *c = vc;
  upd_range(c, (size_t)p0 * c->d, (size_t)p1 * c->d);
}

/* work (+)= alpha X M^T, or nothing when M is a multiple of I (added
 * element-wise by the caller).  Returns 1 if work was written. */
static int gemm_unless_iso(int P, int d, int iso, double alpha,
                           const double *X, const double *M, int written,
                           double *work) {
  if (iso) return written;
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, d, d, alpha, X, d, M,
              d, written ? 1.0 : 0.0, work, d);
  return 1;
}

void reverse_sde_step(const step_ops *s, int P, double *Y, const double *S,
                      const double *Xi, double *work) {
  int d = s->d;
  size_t n = (size_t)P * d;
  upd_ctx c = {.d = d, .Y = Y, .W = work, .S = S, .Xi = Xi};
  if (s->scheme == STEP_EXPONENTIAL) {
    /* y = F y + 2 G s + Ln xi; the multiples of I element-wise */
    c.f = s->iso_F ? s->s_F : 0, c.g = s->iso_G ? 2.0 * s->s_G : 0;
    c.l = s->iso_Ln ? s->s_Ln : 0;
    if (s->iso_F && s->iso_G && s->iso_Ln) {
      c.kind = UPD_EXP_ISO;
      nrd_par_rows(P, 4.0 * d, upd_rows, &c);
      return;
    }
    /* work = Y F^T + 2 S G^T + Xi Ln^T (row-vector form of F y + ...) */
    int w = gemm_unless_iso(P, d, s->iso_F, 1.0, Y, s->F, 0, work);
    w = gemm_unless_iso(P, d, s->iso_G, 2.0, S, s->G, w, work);
    gemm_unless_iso(P, d, s->iso_Ln, 1.0, Xi, s->Ln, w, work);
    if (!s->iso_F && !s->iso_G && !s->iso_Ln) {
      memcpy(Y, work, n * sizeof *Y);
      return;
    }
    c.kind = UPD_EXP_MIXED;
    c.use_f = s->iso_F, c.use_g = s->iso_G, c.use_l = s->iso_Ln;
    nrd_par_rows(P, 4.0 * d, upd_rows, &c);
    return;
  }
  /* Euler-Maruyama: y += h (A y + 2 s) + sqrt(2h) xi */
  c.h = s->h, c.sq = sqrt(2.0 * s->h);
  if (s->iso_A) {
    c.kind = UPD_EULER_ISO, c.a = s->s_A;
  } else {
    c.kind = UPD_EULER;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, d, d, 1.0, Y, d,
                s->A, d, 0.0, work, d);
  }
  nrd_par_rows(P, 4.0 * d, upd_rows, &c);
}

int step_fold_init(step_fold *f, int d) {
  memset(f, 0, sizeof *f);
  f->d = d;
  f->M = malloc((size_t)d * d * sizeof *f->M);
  if (!f->M) return NRD_FAIL(NRD_ERR_NOMEM, "the folded step, d = %d", d);
  return NRD_OK;
}

void step_fold_free(step_fold *f) {
  free(f->M);
  memset(f, 0, sizeof *f);
}

/* out = c I or the matrix M (d x d). */
static void full_matrix(int d, int iso, double c, const double *M,
                        double *out) {
  if (!iso) {
    memcpy(out, M, (size_t)d * d * sizeof *out);
    return;
  }
  memset(out, 0, (size_t)d * d * sizeof *out);
  for (int i = 0; i < d; i++)
    out[(size_t)i * d + i] = c;
}

void step_fold_set(step_fold *f, const step_ops *s, const double *Dinv,
                   double dinv_iso) {
  int d = s->d, exp_scheme = s->scheme == STEP_EXPONENTIAL;
  /* M = B - 2 C Dinv: B = A, C = I (Euler) or B = F, C = G (exponential) */
  int iso_B = exp_scheme ? s->iso_F : s->iso_A;
  double s_B = exp_scheme ? s->s_F : s->s_A;
  int iso_C = exp_scheme ? s->iso_G : 1;
  double s_C = exp_scheme ? s->s_G : 1.0;
  f->iso = iso_B && iso_C && !Dinv;
  if (f->iso) {
    f->s = s_B - 2.0 * s_C * dinv_iso;
    return;
  }
  size_t dd = (size_t)d * d;
  full_matrix(d, iso_B, s_B, exp_scheme ? s->F : s->A, f->M);
  if (Dinv && !iso_C) /* M -= 2 G Dinv */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, -2.0,
                s->G, d, Dinv, d, 1.0, f->M, d);
  else if (Dinv) /* M -= 2 g Dinv */
    for (size_t i = 0; i < dd; i++)
      f->M[i] -= 2.0 * s_C * Dinv[i];
  else if (!iso_C) /* M -= 2 (1/delta) G */
    for (size_t i = 0; i < dd; i++)
      f->M[i] -= 2.0 * dinv_iso * s->G[i];
  else /* M -= 2 g (1/delta) I */
    for (int i = 0; i < d; i++)
      f->M[(size_t)i * d + i] -= 2.0 * s_C * dinv_iso;
}

void reverse_sde_step_folded(const step_ops *s, const step_fold *f, int P,
                             double *Y, const double *R, const double *Xi,
                             double *work) {
  step_ops t = *s; /* the step with M in place of A or F */
  if (s->scheme == STEP_EXPONENTIAL)
    t.F = f->M, t.iso_F = f->iso, t.s_F = f->s;
  else
    t.A = f->M, t.iso_A = f->iso, t.s_A = f->s;
  reverse_sde_step(&t, P, Y, R, Xi, work);
}

/* out = X A^T (P x d), by a GEMM or a scaling. */
static void times_A(const step_ops *s, int P, const double *X, double *out) {
  int d = s->d;
  if (s->iso_A) {
    for (size_t i = 0; i < (size_t)P * d; i++)
      out[i] = s->s_A * X[i];
    return;
  }
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, d, d, 1.0, X, d, s->A,
              d, 0.0, out, d);
}

void ode_predict(const step_ops *s, int P, const double *Y, const double *S0,
                 double *Ystar) {
  int d = s->d;
  size_t n = (size_t)P * d;
  times_A(s, P, Y, Ystar);
  for (size_t i = 0; i < n; i++)
    Ystar[i] = Y[i] + s->h * (Ystar[i] + S0[i]);
}

void ode_correct(const step_ops *s, int P, double *Y, const double *S0,
                 const double *Ystar, const double *S1, double *work) {
  int d = s->d;
  size_t n = (size_t)P * d;
  /* work = A y + A y* (one GEMM on the sum) */
  for (size_t i = 0; i < n; i++)
    work[n + i] = Y[i] + Ystar[i];
  times_A(s, P, work + n, work);
  for (size_t i = 0; i < n; i++)
    Y[i] += 0.5 * s->h * (work[i] + S0[i] + S1[i]);
}

void forward_sample(int d, int P, const double *E, const double *L,
                    const double *X0, const double *Xi, double *Xt) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, d, d, 1.0, X0, d, E,
              d, 0.0, Xt, d);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, d, d, 1.0, Xi, d, L,
              d, 1.0, Xt, d);
}
