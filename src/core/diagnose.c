/* Physics checks of a run's settings (see diagnose.h). */
#include "core/diagnose.h"
#include "util/error.h"
#include "core/integrate.h"
#include "core/linalg.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------- parameters */

static void add_line(char **s, size_t *len, const char *fmt, ...) {
  if (!*s) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *t = realloc(*s, *len + (size_t)n + 2);
  if (!t) {
    free(*s);
    *s = NULL;
    return;
  }
  *s = t;
  va_start(ap, fmt);
  vsnprintf(*s + *len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  *len += (size_t)n;
  (*s)[(*len)++] = '\n';
  (*s)[*len] = 0;
}

/* U = u I whatever the spelling: isotropic, a constant diagonal, or a
 * geometric spectrum of one value. */
static int u_is_isotropic(const nrd_params *p) {
  switch (p->forward.u) {
  case U_ISOTROPIC:
    return 1;
  case U_DIAGONAL:
    for (int i = 1; i < p->forward.u_diagonal.n; i++)
      if (p->forward.u_diagonal.v[i] != p->forward.u_diagonal.v[0]) return 0;
    return 1;
  case U_GEOMETRIC:
    return p->forward.u_min == p->forward.u_max;
  default:
    return 0; /* a file: checked per grid point (diagnose_operator) */
  }
}

char *diagnose_parameters(const nrd_params *p) {
  size_t len = 0;
  char *s = calloc(1, 1);
  int sigma = params_schema_find("data.sigma");
  if (p->data.covariance == COV_STATIONARY && p->sources && sigma >= 0 &&
      p->sources[sigma] != PSRC_DEFAULT)
    add_line(&s, &len,
             "data.sigma has no effect: data.covariance is stationary, so "
             "the classes' covariance is U^-1 exactly");
  const nrd_dlist *g = &p->grid.strength;
  int perturbed = 0;
  for (int i = 0; i < g->n; i++)
    perturbed |= g->v[i] != 0;
  if (!perturbed) return s;
  if (p->forward.q == Q_NONE) {
    add_line(&s, &len,
             "grid.strength has no effect: forward.q is none (Q = 0), so "
             "A = U for every g and the grid points with different g are "
             "the same process; set forward.q (random, optimal or file) to "
             "break detailed balance");
    return s;
  }
  if (u_is_isotropic(p))
    add_line(&s, &len,
             "forward.q changes no transition here: U = u I (forward.u), so "
             "e^{-At} = e^{-ut} R_t with R_t a rotation and the law of the "
             "process at every t is that of Q = 0 rotated by R_t; "
             "speciation, collapse, U-turn and correlation results are the "
             "same for every g (doc/theory.md, exact negative controls); "
             "use an anisotropic U (forward.u: diagonal, geometric or "
             "file) for g to matter");
  int all_one = 1;
  for (int i = 0; i < p->grid.dimension.n; i++)
    all_one &= p->grid.dimension.v[i] == 1;
  if (all_one)
    add_line(&s, &len,
             "grid.strength has no effect: in dimension 1 the only "
             "antisymmetric Q is 0");
  return s;
}

/* ------------------------------------------------------------- a point */

/* Stationary covariance C of the linear chain y <- M y + noise (Cov N):
 * C = sum_k M^k N M^kT by doubling (C += Mj C Mj^T, Mj <- Mj^2), which
 * converges when the spectral radius of M is below 1. */
static int chain_covariance(int d, const double *M, const double *N,
                            double *C) {
  size_t dd = (size_t)d * d;
  double *Mj = malloc(dd * sizeof *Mj), *T = malloc(dd * sizeof *T);
  double *W = malloc(dd * sizeof *W);
  int rc = Mj && T && W ? NRD_OK : NRD_ERR_NOMEM;
  if (rc == NRD_OK) {
    memcpy(Mj, M, dd * sizeof *Mj);
    memcpy(C, N, dd * sizeof *C);
    rc = NRD_ERR_NUMERIC;
    for (int it = 0; it < 64; it++) {
      la_congruence(d, Mj, C, T, W); /* T = Mj C Mj^T */
      double add = 0, tot = 0;
      for (size_t k = 0; k < dd; k++) {
        C[k] += T[k];
        add += fabs(T[k]);
        tot += fabs(C[k]);
      }
      if (!isfinite(tot)) break;
      if (add <= 1e-15 * tot) {
        rc = NRD_OK;
        break;
      }
      la_matmul(d, Mj, Mj, T);
      memcpy(Mj, T, dd * sizeof *Mj);
    }
  }
  free(Mj);
  free(T);
  free(W);
  return rc;
}

static double spectral_radius(int d, const double *M, int *ok) {
  double *re = malloc((size_t)d * sizeof *re);
  double *im = malloc((size_t)d * sizeof *im);
  double r = NAN;
  *ok = re && im && la_general_eigvals(d, M, re, im) == NRD_OK;
  for (int k = 0; *ok && k < d; k++) {
    double a = hypot(re[k], im[k]);
    if (!(a <= r)) r = a; /* also replaces the initial NaN */
  }
  free(re);
  free(im);
  return r;
}

/* The linearised step y <- M y + noise (Cov N) of each scheme around the
 * stationary law, where the score is -U y:
 *   euler        M = I + h (A - 2U),          N = 2h I
 *   exponential  M = F - 2 G U,               N = F S F^T - S
 *   ode_heun     M = I + h L + h^2 L^2 / 2,   L = A - U, no noise. */
static int step_map(const ou_op *op, int scheme, double h, double *M,
                    double *N) {
  int d = op->d;
  size_t dd = (size_t)d * d;
  int rc = NRD_OK;
  if (scheme == SCHEME_EULER) {
    for (size_t k = 0; k < dd; k++) {
      M[k] = h * (op->A[k] - 2 * op->U[k]);
      N[k] = 0;
    }
    for (int i = 0; i < d; i++) {
      M[(size_t)i * d + i] += 1;
      N[(size_t)i * d + i] = 2 * h;
    }
  } else if (scheme == SCHEME_EXPONENTIAL) {
    step_ops s;
    NRD_TRY(rc, step_ops_init(&s, op, SCHEME_EXPONENTIAL));
    NRD_TRY(rc, step_ops_set_h(&s, op, h));
    if (rc == NRD_OK) {
      la_matmul(d, s.G, op->U, M);
      for (size_t k = 0; k < dd; k++)
        M[k] = s.F[k] - 2 * M[k];
      la_matmul_nt(d, s.Ln, s.Ln, N);
    }
    step_ops_free(&s);
  } else {
    double *L = malloc(dd * sizeof *L);
    if (!L) return NRD_FAIL(NRD_ERR_NOMEM, "the step map, d = %d", d);
    for (size_t k = 0; k < dd; k++)
      L[k] = op->A[k] - op->U[k];
    la_matmul(d, L, L, M);
    for (size_t k = 0; k < dd; k++) {
      M[k] = h * L[k] + 0.5 * h * h * M[k];
      N[k] = 0;
    }
    for (int i = 0; i < d; i++)
      M[(size_t)i * d + i] += 1;
    free(L);
  }
  return rc;
}

/* Every map is diagonal when U is and Q = 0: one mode per eigenvalue u,
 * the chain's stationary variance n / (1 - m^2) against 1/u, summed into
 * the traces as in the dense case. */
static void check_diagonal(int d, const double *uu, int scheme, double h,
                           step_check *c) {
  double tr = 0, trS = 0;
  c->amplification = 0;
  for (int i = 0; i < d; i++) {
    double u = uu[i], m = 1, n = 0;
    if (scheme == SCHEME_EULER) {
      m = 1 - h * u;
      n = 2 * h;
    } else if (scheme == SCHEME_EXPONENTIAL) {
      m = 2 - exp(h * u);
      n = expm1(2 * h * u) / u;
    } /* ode_heun: the flow's linear part A - U vanishes, m = 1, exact */
    if (!(fabs(m) <= c->amplification)) c->amplification = fabs(m);
    tr += scheme == SCHEME_ODE_HEUN ? 1 / u : n / (1 - m * m);
    trS += 1 / u;
  }
  c->bias = c->amplification < 1 || scheme == SCHEME_ODE_HEUN
                ? fabs(tr / trS - 1)
                : INFINITY;
}

/* Dense operators: eigenvalues of U, A and the step map, and the chain's
 * stationary covariance where it is affordable. */
static int check_dense(const ou_op *op, int scheme, double h, long steps,
                       step_check *c) {
  int d = op->d;
  size_t dd = (size_t)d * d;
  double *w = malloc((size_t)d * sizeof *w);
  double *M = malloc(dd * sizeof *M), *N = malloc(dd * sizeof *N);
  int rc = w && M && N ? NRD_OK
                       : NRD_FAIL(NRD_ERR_NOMEM, "the step check, d = %d", d);
  NRD_TRY(rc, la_sym_eig(d, op->U, w, M));
  if (rc == NRD_OK) {
    c->u_min = c->u_max = w[0];
    for (int i = 1; i < d; i++) {
      if (w[i] < c->u_min) c->u_min = w[i];
      if (w[i] > c->u_max) c->u_max = w[i];
    }
  }
  if (rc == NRD_OK && op->rotates) {
    /* [Q, U] = 0 (to round-off, in the max norm, which cannot overflow
     * as sums of squares would): e^{-QUt} is a rotation commuting with U */
    double diff = 0, norm = 0;
    la_matmul(d, op->Q, op->U, M);
    la_matmul(d, op->U, op->Q, N);
    for (size_t k = 0; k < dd; k++) {
      diff = fmax(diff, fabs(M[k] - N[k]));
      norm = fmax(norm, fabs(M[k]));
    }
    c->commuting = isfinite(diff) && diff <= 1e-12 * norm;
  }
  int ok = 1;
  if (rc == NRD_OK) c->rho = spectral_radius(d, op->A, &ok);
  if (rc == NRD_OK && !ok)
    rc = NRD_FAIL(NRD_ERR_LAPACK, "the eigenvalues of A (d = %d)", d);
  if (rc == NRD_OK) {
    ok = step_map(op, scheme, h, M, N) == NRD_OK;
    c->amplification = ok ? spectral_radius(d, M, &ok) : INFINITY;
    if (!ok || !isfinite(c->amplification)) c->amplification = INFINITY;
    if (!ok) nrd_error_reset(); /* handled: no step map, no bound */
  }
  if (rc == NRD_OK && scheme == SCHEME_ODE_HEUN) {
    /* no noise: second moments grow by up to amplification^2 a step */
    c->bias = fabs(expm1(2.0 * (double)steps * log(c->amplification)));
  } else if (rc == NRD_OK && !(c->amplification < 1)) {
    c->bias = INFINITY;
  } else if (rc == NRD_OK && d <= NRD_DIAGNOSE_MAX_LYAPUNOV) {
    double *C = malloc(dd * sizeof *C);
    c->bias = NAN;
    if (C && chain_covariance(d, M, N, C) == NRD_OK) {
      double tr = 0, trS = 0;
      for (int i = 0; i < d; i++)
        tr += C[(size_t)i * d + i], trS += op->S[(size_t)i * d + i];
      c->bias = fabs(tr / trS - 1);
    }
    free(C);
  } else if (rc == NRD_OK) { /* first order in h, per mode */
    c->estimated = 1;
    c->bias = scheme == SCHEME_EULER ? h * c->rho / 2 : h * c->u_max;
  }
  free(w);
  free(M);
  free(N);
  return rc;
}

void diagnose_diagonal(int d, const double *u, int scheme, double h,
                       step_check *c) {
  memset(c, 0, sizeof *c);
  c->checked = 1;
  c->h = h;
  c->u_min = c->u_max = u[0];
  for (int i = 0; i < d; i++) {
    if (u[i] < c->u_min) c->u_min = u[i];
    if (u[i] > c->u_max) c->u_max = u[i];
  }
  c->rho = c->u_max; /* A = U */
  check_diagonal(d, u, scheme, h, c);
}

int diagnose_operator(const ou_op *op, int scheme, double h, long steps,
                      step_check *c) {
  int d = op->d;
  if (la_is_diagonal(d, op->U) && !op->rotates) {
    double *u = malloc((size_t)d * sizeof *u);
    if (!u) return NRD_FAIL(NRD_ERR_NOMEM, "the step check, d = %d", d);
    for (int i = 0; i < d; i++)
      u[i] = op->U[(size_t)i * d + i];
    diagnose_diagonal(d, u, scheme, h, c);
    free(u);
    return NRD_OK;
  }
  memset(c, 0, sizeof *c);
  c->h = h;
  c->rho = c->u_min = c->u_max = c->amplification = c->bias = NAN;
  if (d > NRD_DIAGNOSE_MAX_DENSE) return NRD_OK; /* too costly */
  c->checked = 1;
  NRD_CHECK(check_dense(op, scheme, h, steps, c));
  return NRD_OK;
}

static const char *scheme_name(int scheme) {
  return scheme == SCHEME_EULER         ? "euler"
         : scheme == SCHEME_EXPONENTIAL ? "exponential"
                                        : "ode_heun";
}

int diagnose_point_text(const step_check *c, const nrd_params *p,
                        const grid_point *g, char *buf, size_t len) {
  int scheme = p->integrator.scheme;
  int n = 0;
  size_t used = strlen(buf);
#define LINE(...)                                                          \
  do {                                                                     \
    if (used < len) snprintf(buf + used, len - used, __VA_ARGS__);         \
    used = strlen(buf);                                                    \
    n++;                                                                   \
  } while (0)
  const char *sch = scheme_name(scheme);
  if (c->commuting && !u_is_isotropic(p)) /* else diagnose_parameters */
    LINE("grid point %d: Q commutes with U, so e^{-QUt} is a rotation that "
         "commutes with U and g = %g moves no transition (doc/theory.md, "
         "exact negative controls)\n",
         g->index, g->strength);
  if (!c->checked) return n;
  int unstable = scheme == SCHEME_ODE_HEUN ? !(c->bias < 1)
                                           : !(c->amplification < 1);
  if (unstable)
    LINE("grid point %d: the %s scheme is unstable with h = %.3g: its "
         "linearisation around the stationary law grows by %.4g per step "
         "(h times the largest |eigenvalue| is %.3g for A, %.3g for U); "
         "the state will overflow: raise time.steps%s\n",
         g->index, sch, c->h, c->amplification, c->h * c->rho,
         c->h * c->u_max,
         scheme == SCHEME_EULER ? " or use integrator.scheme: exponential"
                                : "");
  else if (c->bias > 0.01)
    LINE("grid point %d: the %s scheme is biased with h = %.3g: the "
         "stationary second moments of its linearisation are off by %s"
         "%.2g %% (h times the largest |eigenvalue| is %.3g for A, %.3g "
         "for U); raise time.steps for results within the statistics\n",
         g->index, sch, c->h, c->estimated ? "about " : "", 100 * c->bias,
         c->h * c->rho, c->h * c->u_max);
#undef LINE
  return n;
}

/* "0-3, 7, 9-10" of the indices i with flag[i] set, into buf. */
static void index_ranges(int n, const int *flag, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = 0;
  for (int i = 0; i < n; i++) {
    if (!flag[i]) continue;
    int j = i;
    while (j + 1 < n && flag[j + 1])
      j++;
    if (used < len)
      snprintf(buf + used, len - used, j > i ? "%s%d-%d" : "%s%d",
               used ? ", " : "", i, j);
    used = strlen(buf);
    i = j;
  }
}

char *diagnose_summary_text(const step_check *c, int n, const nrd_params *p) {
  int *flag = calloc((size_t)(n ? n : 1), sizeof *flag);
  size_t len = 0;
  char *s = calloc(1, 1), list[256];
  if (!flag) {
    free(s);
    return NULL;
  }
  int scheme = p->integrator.scheme;
  const char *sch = scheme_name(scheme);
  /* no transition moves */
  int any = 0;
  for (int i = 0; i < n; i++)
    any |= flag[i] = c[i].commuting && !u_is_isotropic(p);
  index_ranges(n, flag, list, sizeof list);
  if (any)
    add_line(&s, &len,
             "grid point(s) %s: Q commutes with U, so e^{-QUt} is a rotation "
             "that commutes with U and g moves no transition (doc/theory.md, "
             "exact negative controls)",
             list);
  /* unstable, then biased: the worst values and the points */
  for (int kind = 0; kind < 2; kind++) {
    double worst = 0, rho = 0, umax = 0, h = 0;
    int est = 0;
    any = 0;
    for (int i = 0; i < n; i++) {
      int bad = c[i].checked &&
                (scheme == SCHEME_ODE_HEUN ? !(c[i].bias < 1)
                                           : !(c[i].amplification < 1));
      if (kind) bad = c[i].checked && !bad && c[i].bias > 0.01;
      flag[i] = bad;
      if (!bad) continue;
      double v = kind ? c[i].bias : c[i].amplification;
      if (!any || !(v <= worst)) {
        worst = v, rho = c[i].h * c[i].rho, umax = c[i].h * c[i].u_max;
        h = c[i].h;
      }
      est |= c[i].estimated;
      any = 1;
    }
    if (!any) continue;
    index_ranges(n, flag, list, sizeof list);
    if (!kind)
      add_line(&s, &len,
               "grid point(s) %s: the %s scheme is unstable with h = %.3g: "
               "its linearisation around the stationary law grows by up to "
               "%.4g per step (h times the largest |eigenvalue| is %.3g for "
               "A, %.3g for U); the state will overflow: raise time.steps%s",
               list, sch, h, worst, rho, umax,
               scheme == SCHEME_EULER ? " or use integrator.scheme: exponential"
                                      : "");
    else
      add_line(&s, &len,
               "grid point(s) %s: the %s scheme is biased with h = %.3g: the "
               "stationary second moments of its linearisation are off by up "
               "to %s%.2g %% (h times the largest |eigenvalue| is %.3g for A, "
               "%.3g for U); raise time.steps if E|y|^2 must match E|x_t|^2 "
               "within the statistics",
               list, sch, h, est ? "about " : "", 100 * worst, rho, umax);
  }
  free(flag);
  return s;
}
