/* nrdiff-post: the serial post-processing stage (doc/post-processing.md).
 *
 * Reads nrdiff run files and turns them into critical times with errors,
 * curves with theory beside them, a summary table (stdout, CSV, HDF5) and,
 * with --plot, figures (postprocess/nrdiff_plots.py).  Per grid point:
 *   t_S   where phi crosses F(1) = 0.7752 (the project's definition,
 *         physics.md 4.2): the headline from the clone-free estimator
 *         (speciation_phi, every output time), t_S_clone from cloning
 *         (the branch times only);
 *   t_C   where Y2 (the headline) and phi_C (cloning, t_C_clone) cross 1/2,
 *         the nearest-point freezing time, and the zero of the excess
 *         entropy f^e;
 *   curves: phi, phi_C, Y2, f^e/alpha, C_UT, the trajectory
 *         autocorrelation (FFTW) and the forward correlations.
 * Crossings use monotone interpolation and jackknife errors over particle
 * blocks (analysis.h), the functions the run's report uses on the same
 * block sums: the headline equals the run's critical_time_measured.  Theory comes from the same library as the run,
 * rebuilt from the parameters stored in the file.  A missing dataset or a
 * curve that never reaches its level is reported, never made up. */
#define _POSIX_C_SOURCE 200809L /* mkstemp, fdopen */
#include "config.h"

#include "nrdiff/analysis.h"
#include "nrdiff/error.h"
#include "nrdiff/grid.h"
#include "nrdiff/linalg.h"
#include "nrdiff/model.h"
#include "nrdiff/params.h"
#include "nrdiff/theory.h"
#include "nrdiff/version.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef NRD_PKGDATADIR
#define NRD_PKGDATADIR "."
#endif
#ifndef NRD_SRCDIR
#define NRD_SRCDIR "."
#endif

static int quiet = 0;

static void warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "nrdiff-post: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

static void *xmalloc(size_t n) {
  void *p = calloc(n ? n : 1, 1);
  if (!p) {
    warn("out of memory");
    exit(1);
  }
  return p;
}

/* ------------------------------------------------------------- results */

/* One row of the summary: a grid point of a run file.  NaN = not
 * available or not reached (the notes say which). */
typedef struct {
  char file[512];
  int index;
  long dimension, n_train;
  double separation, strength;
  /* headlines: t_S from the clone-free phi, t_C from Y2 */
  double tS, tS_err, tS_theory, tS_clone, tS_clone_err, tS_matrix;
  double tC, tC_err, tC_theory, tC_clone, tC_clone_err;
  double t_freeze, t_freeze_err, t_freeze_spread, tC_fe, tC_fe_err, alpha;
  int free_S, free_C;     /* the clone-free curve (phi, Y2) is in the file */
  int cloned_S, cloned_C; /* the cloning protocol ran (speciation, collapse) */
  char notes[512];
} row;

typedef struct {
  int index;
  const char *curve;
  double t, value, err, theory;
  const char *file; /* the run file (a row's file field) */
  int file_index;   /* its position on the command line */
} curve_point;

typedef struct {
  long n, cap;
  curve_point *v;
} curve_list;

static const char *current_file = ""; /* the file being read */
static int current_file_index = 0;

static void curve_add(curve_list *c, int index, const char *name, double t,
                      double value, double err, double theory) {
  if (c->n == c->cap) {
    c->cap = c->cap ? 2 * c->cap : 1024;
    c->v = realloc(c->v, (size_t)c->cap * sizeof *c->v);
    if (!c->v) {
      warn("out of memory");
      exit(1);
    }
  }
  c->v[c->n++] = (curve_point){index, name, t, value, err, theory, current_file,
                                current_file_index};
}

static void note(row *r, const char *fmt, ...) {
  size_t n = strlen(r->notes);
  if (n + 3 >= sizeof r->notes) return;
  if (n) strcat(r->notes, "; ");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->notes + strlen(r->notes), sizeof r->notes - strlen(r->notes),
            fmt, ap);
  va_end(ap);
}

/* ------------------------------------------------------------ reading */

/* A double dataset (any rank <= 3) or NULL if absent/unreadable; dims of
 * the missing trailing axes are 1. */
static double *read_doubles(hid_t loc, const char *path, hsize_t dims[3]) {
  dims[0] = dims[1] = dims[2] = 1;
  if (H5Lexists(loc, path, H5P_DEFAULT) <= 0) return NULL;
  hid_t d = H5Dopen2(loc, path, H5P_DEFAULT);
  if (d < 0) return NULL;
  hid_t s = H5Dget_space(d);
  int rank = H5Sget_simple_extent_ndims(s);
  double *v = NULL;
  if (rank >= 1 && rank <= 3) {
    H5Sget_simple_extent_dims(s, dims, NULL);
    size_t n = (size_t)(dims[0] * dims[1] * dims[2]);
    v = xmalloc(n * sizeof *v);
    if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
      free(v);
      v = NULL;
    }
  }
  H5Sclose(s);
  H5Dclose(d);
  return v;
}

static int read_attr(hid_t obj, const char *name, hid_t type, void *v) {
  if (H5Aexists(obj, name) <= 0) return -1;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  int rc = a >= 0 && H5Aread(a, type, v) >= 0 ? 0 : -1;
  if (a >= 0) H5Aclose(a);
  return rc;
}

/* A variable-length string attribute into buf ("" if absent). */
static void read_attr_string(hid_t obj, const char *name, char *buf,
                             size_t len) {
  buf[0] = 0;
  if (H5Aexists(obj, name) <= 0) return;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t t = H5Aget_type(a);
  if (H5Tis_variable_str(t) > 0) {
    char *s = NULL;
    if (H5Aread(a, t, &s) >= 0 && s) {
      snprintf(buf, len, "%s", s);
      H5free_memory(s);
    }
  }
  H5Tclose(t);
  H5Aclose(a);
}

/* The resolved parameter file stored in the run (a fixed-length string
 * scalar), loaded through the same schema as the run; 0 on success.
 * Messages name it "PATH:/parameters/resolved:LINE:COLUMN". */
static int load_parameters(hid_t file, const char *path, nrd_params *p,
                           char *err, size_t len) {
  hid_t d = H5Lexists(file, "parameters/resolved", H5P_DEFAULT) > 0
                ? H5Dopen2(file, "parameters/resolved", H5P_DEFAULT)
                : -1;
  if (d < 0) {
    snprintf(err, len, "no /parameters/resolved");
    return -1;
  }
  hid_t t = H5Dget_type(d);
  size_t n =
      t >= 0 && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) == 0
          ? H5Tget_size(t)
          : 0;
  char *text = n ? xmalloc(n + 1) : NULL;
  int rc =
      text && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, text) >= 0 ? 0 : -1;
  if (t >= 0) H5Tclose(t);
  H5Dclose(d);
  if (rc != 0) {
    snprintf(err, len, "cannot read /parameters/resolved");
    free(text);
    return -1;
  }
  text[n] = '\0'; /* a fixed-length string: NUL-padded, or full */
  size_t name_len = strlen(path) + sizeof ":/parameters/resolved";
  char *name = xmalloc(name_len);
  snprintf(name, name_len, "%s:/parameters/resolved", path);
  params_init_defaults(p);
  rc = params_load_text(p, name, text, strlen(text), err, len) == NRD_OK ? 0
                                                                         : -1;
  free(name);
  free(text);
  return rc;
}

/* Block sums of an observable as B x n (block-major), from its
 * [n_out][B] (or [n_out][B][m], column col) dataset. */
static double *block_major(const double *v, const hsize_t dims[3], int col) {
  long n = (long)dims[0], B = (long)dims[1], m = (long)dims[2];
  double *out = xmalloc((size_t)(n * B) * sizeof *out);
  for (long i = 0; i < n; i++)
    for (long b = 0; b < B; b++)
      out[b * n + i] = v[(i * B + b) * m + col];
  return out;
}

/* ------------------------------------------------------------- theory */

typedef struct {
  int ok;
  model m;
} point_model;

static double F1(void) {
  return theory_F(1.0);
}

/* tr(e^{-A tau} S) / tr S. */
static double stationary_corr(const model *m, double tau) {
  int d = m->d;
  double *E = xmalloc((size_t)d * d * sizeof *E), num = 0, den = 0;
  double c = NAN;
  if (ou_propagator(&m->op, tau, E) == NRD_OK) {
    for (int i = 0; i < d; i++)
      for (int k = 0; k < d; k++)
        num += E[(size_t)i * d + k] * m->op.S[(size_t)k * d + i];
    for (int i = 0; i < d; i++)
      den += m->op.S[(size_t)i * d + i];
    c = num / den;
  }
  free(E);
  return c;
}

static void theory_times(row *r, const point_model *pm) {
  if (!pm->ok) return;
  const model *m = &pm->m;
  const mixture *mx = &m->mix;
  double t = NAN;
  if (mx->symmetric2 && theory_tS_kappa(&m->op, mx->means, mx->cov, &t) == NRD_OK)
    r->tS_theory = t;
  if (mx->cov_shared &&
      theory_tS_matrix(&m->op, mx->K, mx->weights, mx->means, mx->cov, &t) ==
          NRD_OK) {
    r->tS_matrix = t;
    if (isnan(r->tS_theory)) r->tS_theory = t;
  }
  if (m->n_train > 0) {
    double alpha = log((double)m->n_train) / m->d;
    int rc = mx->symmetric2
                 ? theory_tC_rem_gm2(&m->op, mx->means, mx->cov, alpha, &t)
                 : theory_tC_rem(&m->op, mx->cov, alpha, &t);
    if (alpha > 0 && rc == NRD_OK) r->tC_theory = t;
  }
}

/* ---------------------------------------------------------- per point */

typedef struct {
  double acf_from; /* frames at t >= this enter the autocorrelation */
  double fe_level; /* f^e / alpha level taken as its zero */
} options;

/* Ratio curve of block sums (num/den, B x n) with pointwise errors, its
 * crossing of `level` with a jackknife error; adds the curve. */
static void measure_curve(curve_list *cv, int index, const char *name, long n,
                          const double *t, long B, const double *num,
                          const double *den, const double *theory,
                          double level, int dir, double scale, double *cross,
                          double *cross_err) {
  double *c = xmalloc((size_t)n * sizeof *c), *e = xmalloc((size_t)n * sizeof *e);
  an_ratio_curve(n, B, num, den, c, e);
  for (long i = 0; i < n; i++)
    curve_add(cv, index, name, t[i], c[i] / scale, e[i] / scale,
              theory ? theory[i] : NAN);
  if (cross) an_jackknife_crossing(n, t, B, num, den, level, dir, cross, cross_err);
  free(c);
  free(e);
}

static void say_crossing(row *r, const char *what, double v, double err) {
  if (isnan(v))
    note(r, "%s: not reached", what);
  else if (isnan(err))
    note(r, "%s: no error (a leave-one-block-out curve does not reach the "
            "level, or one block)",
         what);
}

/* The clone-free speciation estimator and Y2 (time-resolved). */
static void measure_observables(hid_t pg, const point_model *pm,
                                const options *o, row *r, curve_list *cv) {
  hsize_t dc[3], dv[3], dt[3];
  double *cnt = read_doubles(pg, "observables/count/block_sum", dc);
  double *time = read_doubles(pg, "observables/count/time", dt);
  if (!cnt || !time) {
    note(r, "no observables/count: time-resolved estimators skipped");
    free(cnt), free(time);
    return;
  }
  long n = (long)dc[0], B = (long)dc[1];
  double *den = block_major(cnt, dc, 0);
  double *phi = read_doubles(pg, "observables/speciation_phi/block_sum", dv);
  if (phi && dv[0] == dc[0] && dv[1] == dc[1]) {
    double *num = block_major(phi, dv, 0);
    double *th = xmalloc((size_t)n * sizeof *th);
    for (long i = 0; i < n; i++) {
      double k;
      const mixture *mx = &pm->m.mix;
      th[i] = NAN;
      if (pm->ok && mx->symmetric2 &&
          theory_kappa(&pm->m.op, mx->means, mx->cov, time[i], &k) == NRD_OK)
        th[i] = theory_F(k);
    }
    measure_curve(cv, r->index, "phi_free", n, time, B, num, den, th, F1(), -1,
                  1, &r->tS, &r->tS_err);
    r->free_S = 1;
    say_crossing(r, "t_S (clone-free)", r->tS, r->tS_err);
    free(num), free(th);
  }
  free(phi);
  double *y2 = read_doubles(pg, "observables/participation_y2/block_sum", dv);
  if (y2 && dv[0] == dc[0] && dv[1] == dc[1]) {
    double *num = block_major(y2, dv, 0);
    measure_curve(cv, r->index, "Y2", n, time, B, num, den, NULL, 0.5, -1, 1,
                  &r->tC, &r->tC_err);
    r->free_C = 1;
    say_crossing(r, "t_C (Y2)", r->tC, r->tC_err);
    free(num);
  }
  free(y2);
  /* excess entropy: d f^e = d offset_t + ln p^e, so the ratio curve of
   * (sum ln p + d offset count) / count crosses 0 where f^e does */
  double *lp = read_doubles(pg, "observables/log_pe/block_sum", dv);
  hsize_t de[3], da[3];
  double *fe = read_doubles(pg, "collapse/excess_entropy", de);
  double *alpha = read_doubles(pg, "collapse/alpha", da);
  if (lp && fe && alpha && dv[0] == dc[0] && dv[1] == dc[1] &&
      (long)de[0] == n) {
    int d = (int)r->dimension;
    double *num = block_major(lp, dv, 0);
    for (long i = 0; i < n; i++) {
      double L = 0, N = 0;
      for (long b = 0; b < B; b++)
        L += num[b * n + i], N += den[b * n + i];
      double offset = fe[i] - L / N / d; /* alpha + ln det(2 pi e Delta)/2d */
      for (long b = 0; b < B; b++)
        num[b * n + i] += d * offset * den[b * n + i];
    }
    r->alpha = alpha[0];
    /* f^e reaches 0 only asymptotically at finite d: its "zero" is where
     * f^e / alpha falls to fe_level [I] */
    measure_curve(cv, r->index, "fe_over_alpha", n, time, B, num, den, NULL,
                  o->fe_level * d * alpha[0], +1, d * alpha[0], &r->tC_fe,
                  &r->tC_fe_err);
    say_crossing(r, "t_C_fe (zero of f^e)", r->tC_fe, r->tC_fe_err);
    free(num);
  } else if (lp || fe) {
    note(r, "excess entropy incomplete (log_pe, excess_entropy, alpha)");
  }
  free(lp), free(fe), free(alpha);
  free(cnt), free(time), free(den);
}

/* End-of-run sums: cloning (speciation, collapse) and freezing times. */
static void measure_final(hid_t pg, row *r, curve_list *cv) {
  hsize_t df[3], db[3];
  int has_spec = H5Lexists(pg, "speciation", H5P_DEFAULT) > 0;
  int has_coll = H5Lexists(pg, "collapse", H5P_DEFAULT) > 0;
  if (!has_spec && !has_coll) return;
  hid_t g = H5Lexists(pg, "final", H5P_DEFAULT) > 0
                ? H5Gopen2(pg, "final", H5P_DEFAULT)
                : -1;
  double *fin = g >= 0 ? read_doubles(g, "block_sum", df) : NULL;
  long off[6];
  const char *names[6] = {"f_count", "f_class", "f_nearest", "f_freeze",
                          "n_branch", "f_uturn"};
  int ok = fin != NULL;
  for (int i = 0; ok && i < 6; i++)
    ok = read_attr(g, names[i], H5T_NATIVE_LONG, &off[i]) == 0;
  if (g >= 0) H5Gclose(g);
  if (!ok) {
    note(r, "no /final block sums: cloning and freezing times skipped");
    free(fin);
    return;
  }
  long B = (long)df[1], F = (long)df[2];
  double *den = NULL;
  for (int kind = 0; kind < 2; kind++) {
    const char *grp = kind ? "collapse" : "speciation";
    if (!(kind ? has_coll : has_spec)) continue;
    char path[64];
    snprintf(path, sizeof path, "%s/branch_time", grp);
    double *tb = read_doubles(pg, path, db);
    long nb = tb ? (long)db[0] : 0, col = kind ? off[2] : off[1];
    if (!tb || nb != off[4] || col + nb > F) {
      free(tb);
      continue;
    }
    double *num = xmalloc((size_t)(B * nb) * sizeof *num);
    den = xmalloc((size_t)(B * nb) * sizeof *den);
    for (long b = 0; b < B; b++)
      for (long s = 0; s < nb; s++) {
        num[b * nb + s] = fin[b * F + col + s];
        den[b * nb + s] = fin[b * F + off[0]];
      }
    double *th = NULL;
    if (!kind) th = read_doubles(pg, "speciation/phi_theory", db);
    if (kind) r->cloned_C = 1;
    else r->cloned_S = 1;
    if (kind) {
      measure_curve(cv, r->index, "phiC_clone", nb, tb, B, num, den, NULL, 0.5,
                    -1, 1, &r->tC_clone, &r->tC_clone_err);
      say_crossing(r, "t_C_clone (phi_C, branch times only)", r->tC_clone,
                   r->tC_clone_err);
    } else {
      measure_curve(cv, r->index, "phi_clone", nb, tb, B, num, den, th, F1(),
                    -1, 1, &r->tS_clone, &r->tS_clone_err);
      say_crossing(r, "t_S_clone (cloning, branch times only)", r->tS_clone,
                   r->tS_clone_err);
    }
    free(th), free(num), free(den), free(tb);
    den = NULL;
  }
  if (has_coll && off[3] + 2 <= F) { /* freezing: mean and spread */
    double *sum = xmalloc((size_t)B * sizeof *sum), *cnt = xmalloc((size_t)B * sizeof *cnt);
    double sq = 0, n = 0;
    for (long b = 0; b < B; b++) {
      sum[b] = fin[b * F + off[3]];
      cnt[b] = fin[b * F + off[0]];
      sq += fin[b * F + off[3] + 1];
      n += cnt[b];
    }
    an_ratio_curve(1, B, sum, cnt, &r->t_freeze, &r->t_freeze_err);
    r->t_freeze_spread = sqrt(fmax(sq / n - r->t_freeze * r->t_freeze, 0));
    free(sum), free(cnt);
  }
  free(fin);
}

/* U-turn curves, straight from the run's results (already with errors). */
static void measure_uturn(hid_t pg, row *r, curve_list *cv) {
  if (H5Lexists(pg, "uturn", H5P_DEFAULT) <= 0) return;
  hsize_t d[3];
  const char *names[7] = {"uturn/T_u", "uturn/c_uturn", "uturn/c_uturn_err",
                          "uturn/c_uturn_ratio", "uturn/c_uturn_ratio_err",
                          "uturn/theory_gaussian", "uturn/theory_gm2"};
  double *v[7];
  int ok = 1;
  long n = -1;
  for (int k = 0; k < 7; k++) {
    v[k] = read_doubles(pg, names[k], d);
    if (!v[k]) ok = 0;
    if (v[k] && n < 0) n = (long)d[0];
    if (v[k] && (long)d[0] != n) ok = 0;
  }
  if (!ok) {
    note(r, "uturn group incomplete: U-turn curves skipped");
  } else {
    for (long i = 0; i < n; i++) {
      double th = !isnan(v[6][i]) ? v[6][i] : v[5][i];
      curve_add(cv, r->index, "c_uturn", v[0][i], v[1][i], v[2][i], NAN);
      curve_add(cv, r->index, "c_uturn_ratio", v[0][i], v[3][i], v[4][i], th);
      curve_add(cv, r->index, "c_uturn_gaussian", v[0][i], v[5][i], NAN, NAN);
    }
  }
  for (int k = 0; k < 7; k++)
    free(v[k]);
}

/* Forward-path correlations for the first reference time. */
static void measure_forward(hid_t pg, row *r, curve_list *cv) {
  if (H5Lexists(pg, "forward", H5P_DEFAULT) <= 0) return;
  hsize_t ds[3], dt[3], dv[3];
  double *s = read_doubles(pg, "forward/reference_time", ds);
  double *t = read_doubles(pg, "forward/time", dt);
  if (!s || !t) {
    note(r, "forward group incomplete: forward curves skipped");
    free(s), free(t);
    return;
  }
  long n = (long)dt[0];
  static const char *const kind[2] = {"corr_stationary", "corr_data"};
  for (int k = 0; k < 2; k++) {
    char p[3][64];
    snprintf(p[0], 64, "forward/%s", kind[k]);
    snprintf(p[1], 64, "forward/%s_err", kind[k]);
    snprintf(p[2], 64, "forward/%s_theory", kind[k]);
    double *v = read_doubles(pg, p[0], dv), *e = read_doubles(pg, p[1], dv);
    double *th = read_doubles(pg, p[2], dv);
    if (v && e && th && (long)dv[1] == n)
      for (long i = 0; i < n; i++) /* row 0: the first reference time */
        if (t[i] >= s[0])
          curve_add(cv, r->index, kind[k], k ? t[i] : t[i] - s[0], v[i], e[i],
                    th[i]);
    free(v), free(e), free(th);
  }
  free(s), free(t);
}

/* Autocorrelation of the sampled trajectories over their uniformly spaced
 * frames at t >= acf_from (where the reverse process is stationary when
 * acf_from is well above t_S), every trajectory and coordinate one series. */
static void measure_acf(hid_t pg, const point_model *pm, const options *o,
                        double T, row *r, curve_list *cv) {
  hsize_t dv[3], dt[3];
  if (H5Lexists(pg, "particles", H5P_DEFAULT) <= 0) return;
  double *x = read_doubles(pg, "particles/trajectory/position/value", dv);
  double *t = read_doubles(pg, "particles/trajectory/position/time", dt);
  long nf = (long)dv[0], nt = (long)dv[1], d = (long)dv[2];
  double from = isnan(o->acf_from) ? T / 2 : o->acf_from;
  long N = 0;
  if (x && t && nf >= 2) {
    double h = t[0] - t[1];
    while (N < nf && t[N] >= from - 1e-12 &&
           (N == 0 || fabs((t[N - 1] - t[N]) - h) <= 1e-9 * fabs(h)))
      N++;
  }
  if (N < 8) {
    note(r, "acf: fewer than 8 uniform trajectory frames at t >= %g", from);
    free(x), free(t);
    return;
  }
  long m = nt * d;
  double *series = xmalloc((size_t)(m * N) * sizeof *series);
  double *acf = xmalloc((size_t)N * sizeof *acf);
  for (long j = 0; j < nt; j++)
    for (long c = 0; c < d; c++)
      for (long f = 0; f < N; f++)
        series[(j * d + c) * N + f] = x[(f * nt + j) * d + c];
  if (an_acf_fft(N, m, series, acf) == 0)
    for (long k = 0; k < N / 2; k++) { /* longer lags: too few pairs */
      double tau = t[0] - t[k];
      curve_add(cv, r->index, "acf", tau, acf[k], NAN,
                pm->ok ? stationary_corr(&pm->m, tau) : NAN);
    }
  free(series), free(acf), free(x), free(t);
}

/* ------------------------------------------------------------ one file */

typedef struct {
  long n, cap;
  row *v;
} row_list;

static row *row_new(row_list *rl) {
  if (rl->n == rl->cap) {
    rl->cap = rl->cap ? 2 * rl->cap : 16;
    rl->v = realloc(rl->v, (size_t)rl->cap * sizeof *rl->v);
    if (!rl->v) {
      warn("out of memory");
      exit(1);
    }
  }
  row *r = &rl->v[rl->n++];
  memset(r, 0, sizeof *r);
  double *nanfields[] = {&r->separation, &r->strength, &r->tS, &r->tS_err,
                         &r->tS_theory, &r->tS_clone, &r->tS_clone_err,
                         &r->tS_matrix, &r->tC, &r->tC_err, &r->tC_theory,
                         &r->tC_clone, &r->tC_clone_err, &r->t_freeze,
                         &r->t_freeze_err, &r->t_freeze_spread, &r->tC_fe,
                         &r->tC_fe_err, &r->alpha};
  for (size_t i = 0; i < sizeof nanfields / sizeof *nanfields; i++)
    *nanfields[i] = NAN;
  return r;
}

/* 0: processed (possibly partly); -1: not a usable nrdiff output. */
static int process_file(const char *path, const options *o, row_list *rows,
                        curve_list *cv) {
  if (access(path, R_OK) != 0) {
    warn("%s: %s", path, strerror(errno));
    return -1;
  }
  if (H5Fis_hdf5(path) <= 0) {
    warn("%s: not an HDF5 file", path);
    return -1;
  }
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) {
    warn("%s: cannot open (damaged?)", path);
    return -1;
  }
  char format[64], sig[64];
  read_attr_string(f, "file_format", format, sizeof format);
  read_attr_string(f, "signature", sig, sizeof sig);
  if (strcmp(format, "nrdiff-output") != 0) {
    if (strcmp(sig, "nrdiff-checkpoint") == 0)
      warn("%s: a checkpoint of an unfinished run, not an output; continue "
           "the run with 'nrdiff --restart' and post-process its output",
           path);
    else
      warn("%s: not an nrdiff output file (no file_format = "
           "\"nrdiff-output\" attribute)",
           path);
    H5Fclose(f);
    return -1;
  }
  double wall;
  hid_t code = H5Lexists(f, "code", H5P_DEFAULT) > 0
                   ? H5Gopen2(f, "code", H5P_DEFAULT)
                   : -1;
  int finished = code >= 0 && read_attr(code, "wall_seconds",
                                        H5T_NATIVE_DOUBLE, &wall) == 0;
  if (code >= 0) H5Gclose(code);
  nrd_params p;
  memset(&p, 0, sizeof p);
  char err[1024] = "";
  int have_params = load_parameters(f, path, &p, err, sizeof err) == 0;
  if (!have_params)
    warn("%s: parameters unreadable (%s): no theory beside the measurements",
         path, err);
  run_plan plan;
  memset(&plan, 0, sizeof plan);
  if (have_params && plan_build(&p, &plan) != NRD_OK) have_params = 0;
  hid_t pts = H5Lexists(f, "points", H5P_DEFAULT) > 0
                  ? H5Gopen2(f, "points", H5P_DEFAULT)
                  : -1;
  hsize_t n_groups = 0;
  if (pts >= 0) H5Gget_num_objs(pts, &n_groups);
  hsize_t dg[3];
  double *gd = read_doubles(f, "grid/strength", dg);
  long planned = gd ? (long)dg[0] : -1;
  free(gd);
  if (!finished || pts < 0)
    warn("%s: unfinished run (no wall time recorded): using the %llu grid "
         "point(s) present%s",
         path, (unsigned long long)n_groups,
         planned >= 0 ? "" : " (no /grid)");
  else if (planned > (long)n_groups && !quiet)
    warn("%s: %llu of %ld grid points present (a --grid-index run?)", path,
         (unsigned long long)n_groups, planned);
  for (hsize_t k = 0; pts >= 0 && k < n_groups; k++) {
    char name[64];
    H5Gget_objname_by_idx(pts, k, name, sizeof name);
    hid_t pg = H5Gopen2(pts, name, H5P_DEFAULT);
    if (pg < 0) continue;
    row *r = row_new(rows);
    snprintf(r->file, sizeof r->file, "%s", path);
    long idx = -1;
    read_attr(pg, "index", H5T_NATIVE_LONG, &idx);
    r->index = (int)idx;
    read_attr(pg, "dimension", H5T_NATIVE_LONG, &r->dimension);
    read_attr(pg, "n_train", H5T_NATIVE_LONG, &r->n_train);
    read_attr(pg, "separation", H5T_NATIVE_DOUBLE, &r->separation);
    read_attr(pg, "strength", H5T_NATIVE_DOUBLE, &r->strength);
    point_model pm = {0};
    if (have_params && idx >= 0 && idx < plan.n_points) {
      pm.ok = model_build(&pm.m, &p, &plan.points[idx], err, sizeof err) ==
              NRD_OK;
      if (!pm.ok) note(r, "no theory: %s", err);
    }
    if (pm.ok) {
      theory_times(r, &pm);
    } else { /* the run's own theory value */
      double th = NAN;
      read_attr(pg, "critical_time_theory", H5T_NATIVE_DOUBLE, &th);
      if (r->n_train > 0) r->tC_theory = th;
      else r->tS_theory = th;
    }
    measure_observables(pg, &pm, o, r, cv);
    measure_final(pg, r, cv);
    measure_uturn(pg, r, cv);
    measure_forward(pg, r, cv);
    measure_acf(pg, &pm, o, have_params ? p.time.T : NAN, r, cv);
    if (pm.ok) model_free(&pm.m);
    H5Gclose(pg);
  }
  if (pts >= 0) H5Gclose(pts);
  if (have_params) plan_free(&plan);
  params_free(&p);
  H5Fclose(f);
  return 0;
}

/* ------------------------------------------------------------ outputs */

static void csv_number(FILE *f, double v) {
  if (!isnan(v)) fprintf(f, "%.10g", v);
}

static const char *const COLUMNS =
    "grid_index,dimension,separation,strength,n_train,t_S,t_S_err,t_S_theory,"
    "t_C,t_C_err,t_C_theory,t_S_clone,t_S_clone_err,t_S_matrix,t_C_clone,"
    "t_C_clone_err,t_freeze,t_freeze_err,t_freeze_spread,t_C_fe,t_C_fe_err,alpha,"
    "file,notes";

static double *row_values(const row *r, double v[19]) {
  double w[19] = {r->tS,       r->tS_err,       r->tS_theory, r->tC,
                  r->tC_err,   r->tC_theory,    r->tS_clone,  r->tS_clone_err,
                  r->tS_matrix, r->tC_clone,    r->tC_clone_err, r->t_freeze,
                  r->t_freeze_err, r->t_freeze_spread, r->tC_fe,
                  r->tC_fe_err, r->alpha,       0,            0};
  memcpy(v, w, sizeof w);
  return v;
}

/* A CSV field: quoted when it holds a comma or a quote. */
static void csv_text(FILE *f, const char *s) {
  if (!strpbrk(s, ",\"\n")) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

static int write_csv(const char *path, const row_list *rows,
                     const curve_list *cv) {
  char name[1100];
  snprintf(name, sizeof name, "%s.summary.csv", path);
  FILE *f = fopen(name, "w");
  if (!f) {
    warn("cannot write %s: %s", name, strerror(errno));
    return -1;
  }
  fprintf(f, "%s\n", COLUMNS);
  for (long i = 0; i < rows->n; i++) {
    const row *r = &rows->v[i];
    double v[19];
    row_values(r, v);
    fprintf(f, "%d,%ld,%.10g,%.10g,%ld", r->index, r->dimension, r->separation,
            r->strength, r->n_train);
    for (int k = 0; k < 17; k++) {
      fputc(',', f);
      csv_number(f, v[k]);
    }
    fputc(',', f);
    csv_text(f, r->file);
    fputc(',', f);
    csv_text(f, r->notes);
    fputc('\n', f);
  }
  int bad = fclose(f) != 0;
  snprintf(name, sizeof name, "%s.curves.csv", path);
  f = fopen(name, "w");
  if (!f) {
    warn("cannot write %s: %s", name, strerror(errno));
    return -1;
  }
  fprintf(f, "grid_index,curve,t,value,err,theory,file\n");
  for (long i = 0; i < cv->n; i++) {
    const curve_point *c = &cv->v[i];
    fprintf(f, "%d,%s,", c->index, c->curve);
    csv_number(f, c->t);
    fputc(',', f);
    csv_number(f, c->value);
    fputc(',', f);
    csv_number(f, c->err);
    fputc(',', f);
    csv_number(f, c->theory);
    fputc(',', f);
    csv_text(f, c->file);
    fputc('\n', f);
  }
  bad |= fclose(f) != 0;
  return bad ? -1 : 0;
}

static void h5_column(hid_t g, const char *name, hsize_t n, const double *v,
                      const char *description) {
  hid_t s = H5Screate_simple(1, &n, NULL);
  hid_t d = H5Dcreate2(g, name, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT,
                       H5P_DEFAULT);
  H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
  hid_t ts = H5Screate(H5S_SCALAR), tt = H5Tcopy(H5T_C_S1);
  H5Tset_size(tt, H5T_VARIABLE);
  H5Tset_cset(tt, H5T_CSET_UTF8);
  hid_t a = H5Acreate2(d, "description", tt, ts, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, tt, &description);
  H5Aclose(a), H5Tclose(tt), H5Sclose(ts), H5Sclose(s), H5Dclose(d);
}

static int write_h5(const char *path, const row_list *rows,
                    const curve_list *cv) {
  char name[1100];
  snprintf(name, sizeof name, "%s.summary.h5", path);
  hid_t f = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) {
    warn("cannot write %s", name);
    return -1;
  }
  static const char *const cols[17] = {
      "t_S",        "t_S_err",        "t_S_theory", "t_C",         "t_C_err",
      "t_C_theory", "t_S_clone",      "t_S_clone_err", "t_S_matrix", "t_C_clone",
      "t_C_clone_err", "t_freeze",    "t_freeze_err", "t_freeze_spread",
      "t_C_fe",     "t_C_fe_err",     "alpha"};
  static const char *const what[17] = {
      "speciation time (headline): the clone-free phi (speciation_phi) crosses "
      "F(1) = 0.7752 [the project's definition]; = the run's "
      "critical_time_measured",
      "jackknife error of t_S",
      "kappa_t = 1 (two symmetric classes), else the matrix criterion",
      "collapse time (headline): mean Y2 crosses 1/2 [I]; = the run's "
      "critical_time_measured",
      "jackknife error of t_C",
      "REM collapse time (alpha = ln n / d, finite-d mixture correction)",
      "speciation time by cloning: phi_clone crosses F(1) between branch "
      "times (the branch times only)",
      "its jackknife error",
      "matrix criterion lambda_max = 1 (physics.md 4.3)",
      "collapse time by cloning: phi_C crosses 1/2 between branch times",
      "its jackknife error",
      "mean nearest-training-point freezing time",
      "its jackknife error",
      "spread of the freezing times over trajectories",
      "zero of the excess entropy: f^e/alpha falls to --fe-level (0.02) [I]",
      "its jackknife error",
      "ln n / d"};
  hsize_t n = (hsize_t)rows->n;
  double *col = xmalloc((size_t)(n ? n : 1) * sizeof *col);
  hid_t g = H5Gcreate2(f, "summary", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  double v[19];
  const char *ids[5] = {"grid_index", "dimension", "separation", "strength",
                        "n_train"};
  for (int k = 0; k < 5; k++) {
    for (hsize_t i = 0; i < n; i++) {
      const row *r = &rows->v[i];
      double x[5] = {r->index, (double)r->dimension, r->separation, r->strength,
                     (double)r->n_train};
      col[i] = x[k];
    }
    h5_column(g, ids[k], n, col, "grid coordinate");
  }
  for (int k = 0; k < 17; k++) {
    for (hsize_t i = 0; i < n; i++)
      col[i] = row_values(&rows->v[i], v)[k];
    h5_column(g, cols[k], n, col, what[k]);
  }
  /* the run file of each row, fixed-length strings */
  size_t w = 1;
  for (hsize_t i = 0; i < n; i++)
    if (strlen(rows->v[i].file) + 1 > w) w = strlen(rows->v[i].file) + 1;
  char *names = xmalloc((size_t)(n ? n : 1) * w);
  for (hsize_t i = 0; i < n; i++)
    memcpy(names + i * w, rows->v[i].file, strlen(rows->v[i].file));
  hid_t st = H5Tcopy(H5T_C_S1);
  H5Tset_size(st, w);
  hid_t ss = H5Screate_simple(1, &n, NULL);
  hid_t fd = H5Dcreate2(g, "file", st, ss, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(fd, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, names);
  H5Dclose(fd), H5Sclose(ss), H5Tclose(st);
  free(names);
  H5Gclose(g);
  /* curves: /curves/<file number>/<IIII>/<curve>/{t, value, err, theory} */
  hid_t cg = H5Gcreate2(f, "curves", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  for (long i = 0; i < cv->n;) {
    const curve_point *c0 = &cv->v[i];
    long j = i;
    while (j < cv->n && cv->v[j].file_index == c0->file_index &&
           cv->v[j].index == c0->index && !strcmp(cv->v[j].curve, c0->curve))
      j++;
    char gname[96];
    snprintf(gname, sizeof gname, "%d/%04d/%s", c0->file_index, c0->index,
             c0->curve);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t c = H5Lexists(cg, gname, H5P_DEFAULT) > 0
                  ? -1
                  : H5Gcreate2(cg, gname, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lcpl);
    if (c >= 0) {
      double *buf = xmalloc((size_t)(j - i) * sizeof *buf);
      const char *fields[4] = {"t", "value", "err", "theory"};
      for (int k = 0; k < 4; k++) {
        for (long q = i; q < j; q++) {
          const curve_point *p = &cv->v[q];
          buf[q - i] = k == 0 ? p->t : k == 1 ? p->value : k == 2 ? p->err : p->theory;
        }
        h5_column(c, fields[k], (hsize_t)(j - i), buf, fields[k]);
      }
      free(buf);
      H5Gclose(c);
    }
    i = j;
  }
  H5Gclose(cg);
  free(col);
  return H5Fclose(f) < 0 ? -1 : 0;
}

/* An estimate in a 17-wide column: "-" where it was not measured (no data,
 * or the protocol did not run), "not reached" where its curve never reaches
 * the level, the value alone where it has no error. */
static void print_value(int measured, double v, double e) {
  if (!measured)
    printf(" %17s", "-");
  else if (isnan(v))
    printf(" %17s", "not reached");
  else if (isnan(e))
    printf(" %9.4f        ", v);
  else
    printf(" %9.4f+-%-6.4f", v, e);
}

static void print_theory(double v) {
  if (isnan(v))
    printf(" %9s", "-");
  else
    printf(" %9.4f", v);
}

static void print_table(const row_list *rows) {
  printf("%5s %6s %6s %6s %6s %17s %17s %9s %17s %17s %9s  %s\n", "index", "d",
         "sep", "g", "n", "t_S", "t_S_clone", "theory", "t_C", "t_C_clone",
         "theory", "notes");
  for (long i = 0; i < rows->n; i++) {
    const row *r = &rows->v[i];
    printf("%5d %6ld %6.3g %6.3g %6ld", r->index, r->dimension, r->separation,
           r->strength, r->n_train);
    print_value(r->free_S, r->tS, r->tS_err);
    print_value(r->cloned_S, r->tS_clone, r->tS_clone_err);
    print_theory(r->tS_theory);
    print_value(r->free_C, r->tC, r->tC_err);
    print_value(r->cloned_C, r->tC_clone, r->tC_clone_err);
    print_theory(r->tC_theory);
    printf("  %s\n", r->notes);
  }
  printf("t_S: the clone-free phi crosses F(1) = 0.7752 (monotone interpolation, "
         "jackknife error over blocks;\n     = the run's "
         "critical_time_measured); t_S_clone: phi by cloning, between branch "
         "times only;\n     theory kappa_t = 1 / matrix criterion.\n"
         "t_C: mean Y2 crosses 1/2 [I]; t_C_clone: phi_C by cloning; theory: "
         "the REM collapse time (n, d -> infinity).\n"
         "-: not measured; not reached: the curve never reaches its level in "
         "the measured times.\n");
}

/* The figures: postprocess/nrdiff_plots.py under Debian's python3. */
static int plot(const char *prefix) {
  const char *env = getenv("NRDIFF_PLOTS");
  char script[1200];
  const char *cands[3] = {env, NRD_PKGDATADIR "/nrdiff_plots.py",
                          NRD_SRCDIR "/postprocess/nrdiff_plots.py"};
  script[0] = 0;
  for (int k = 0; k < 3 && !script[0]; k++)
    if (cands[k] && access(cands[k], R_OK) == 0)
      snprintf(script, sizeof script, "%s", cands[k]);
  if (!script[0]) {
    warn("--plot: nrdiff_plots.py not found (set NRDIFF_PLOTS)");
    return -1;
  }
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 '%s' '%s.summary.csv' '%s.curves.csv' --out '%s'",
           script, prefix, prefix, prefix);
  fflush(stdout);
  int rc = system(cmd);
  if (rc != 0) warn("--plot: the figure script failed (exit %d)", rc);
  return rc == 0 ? 0 : -1;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: nrdiff-post [options] RUN.h5 [more run files]\n"
          "  -o, --output PREFIX  write PREFIX.summary.{h5,csv} and "
          "PREFIX.curves.csv\n"
          "                       (default: the first file without .h5)\n"
          "      --plot           also draw the figures (PREFIX.*.png; Debian "
          "python3-matplotlib)\n"
          "      --acf-from T     trajectory frames at t >= T enter the "
          "autocorrelation\n"
          "                       (default time.T / 2)\n"
          "      --fe-level X     the zero of f^e is where f^e/alpha falls to "
          "X (default 0.02)\n"
          "  -q, --quiet          no table on stdout\n"
          "  -V, --version        versions\n"
          "  -h, --help           this help\n"
          "Exit status: 0 done; 2 bad usage or an input file that is not a "
          "usable nrdiff\noutput (the others are still processed); 1 cannot "
          "write the results.\n");
}

int main(int argc, char **argv) {
  options o = {.acf_from = NAN, .fe_level = 0.02};
  const char *prefix = NULL;
  int want_plot = 0, n_files = 0;
  char **files = xmalloc((size_t)argc * sizeof *files);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
      printf("nrdiff-post %s (%s)\n", version_nrdiff(), version_git());
      return 0;
    } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
      quiet = 1;
    } else if (!strcmp(a, "--plot")) {
      want_plot = 1;
    } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc) {
      prefix = argv[++i];
    } else if ((!strcmp(a, "--acf-from") || !strcmp(a, "--fe-level")) &&
               i + 1 < argc) {
      char *end;
      double v = strtod(argv[++i], &end);
      if (*end || end == argv[i] || !isfinite(v)) {
        warn("%s: not a number: '%s'", a, argv[i]);
        return 2;
      }
      *(a[2] == 'a' ? &o.acf_from : &o.fe_level) = v;
    } else if (a[0] == '-' && a[1]) {
      warn("unknown option '%s' (or missing value)", a);
      usage(stderr);
      return 2;
    } else {
      files[n_files++] = argv[i];
    }
  }
  if (n_files == 0) {
    warn("no run file given");
    usage(stderr);
    return 2;
  }
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our messages, not HDF5's stack */
  row_list rows = {0};
  curve_list cv = {0};
  int bad = 0;
  for (int i = 0; i < n_files; i++) {
    current_file = files[i];
    current_file_index = i;
    if (process_file(files[i], &o, &rows, &cv) != 0) bad = 1;
  }
  if (rows.n == 0) {
    warn("no grid point to post-process");
    return 2;
  }
  char stem[1024];
  if (prefix) {
    snprintf(stem, sizeof stem, "%s", prefix);
  } else {
    snprintf(stem, sizeof stem, "%s", files[0]);
    size_t n = strlen(stem);
    if (n > 3 && !strcmp(stem + n - 3, ".h5")) stem[n - 3] = 0;
  }
  if (!quiet) print_table(&rows);
  int rc = write_csv(stem, &rows, &cv) || write_h5(stem, &rows, &cv);
  if (rc) return 1;
  if (!quiet)
    printf("wrote %s.summary.csv, %s.curves.csv, %s.summary.h5\n", stem, stem,
           stem);
  if (want_plot && plot(stem) != 0) return 1;
  free(rows.v);
  free(cv.v);
  free(files);
  return bad ? 2 : 0;
}
