/* nrdiff-post: the measurements of a grid point -- critical times with
 * jackknife errors and the curves behind them (clone-free observables,
 * cloning, freezing, U-turn, forward correlations, the trajectory
 * autocorrelation) -- and their theory from the run's own model. */
#include "config.h"

#include "post.h"

#include "core/analysis.h"
#include "core/linalg.h"
#include "core/theory.h"
#include "util/error.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void curve_add(curve_list *c, int index, const char *name, double t,
               double value, double err, double theory) {
  if (c->n == c->cap) { /* out of memory: the point is dropped, recorded */
    long cap = c->cap ? 2 * c->cap : 1024;
    curve_point *v = realloc(c->v, (size_t)cap * sizeof *v);
    if (!v) {
      refuse(-1, NULL, "out of memory (%ld curve points)", cap);
      return;
    }
    c->v = v, c->cap = cap;
  }
  c->v[c->n++] = (curve_point){
      index, name, t, value, err, theory, post_in.path, post_in.index};
}

void note(row *r, const char *fmt, ...) {
  size_t n = strlen(r->notes);
  if (n + 3 >= sizeof r->notes) return;
  if (n) strcat(r->notes, "; ");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->notes + strlen(r->notes), sizeof r->notes - strlen(r->notes),
            fmt, ap);
  va_end(ap);
}

/* Block sums of an observable as B x n (block-major), from its
 * [n_out][B] (or [n_out][B][m], column col) dataset. */
static double *block_major(const double *v, const hsize_t dims[3], int col) {
  long n = (long)dims[0], B = (long)dims[1], m = (long)dims[2];
  double *out = file_calloc((size_t)(n * B), sizeof *out);
  for (long i = 0; out && i < n; i++)
    for (long b = 0; b < B; b++)
      out[b * n + i] = v[(i * B + b) * m + col];
  return out;
}

static double F1(void) {
  return theory_F(1.0);
}

/* tr(e^{-A tau} S) / tr S. */
static double stationary_corr(const model *m, double tau) {
  int d = m->d;
  double *E = file_calloc((size_t)d * d, sizeof *E), num = 0, den = 0;
  double c = NAN;
  if (E && ou_propagator(&m->op, tau, E) == NRD_OK) {
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

void theory_times(row *r, const point_model *pm) {
  if (!pm->ok) return;
  const model *m = &pm->m;
  const mixture *mx = &m->mix;
  double t = NAN;
  if (mx->symmetric2 &&
      theory_tS_kappa(&m->op, mx->means, mx->cov, &t) == NRD_OK)
    r->tS_theory = t;
  if (mx->cov_shared && theory_tS_matrix(&m->op, mx->K, mx->weights, mx->means,
                                         mx->cov, &t) == NRD_OK) {
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

/* Ratio curve of block sums (num/den, B x n) with pointwise errors, its
 * crossing of `level` with a jackknife error; adds the curve. */
static void measure_curve(curve_list *cv, int index, const char *name, long n,
                          const double *t, long B, const double *num,
                          const double *den, const double *theory, double level,
                          int dir, double scale, double *cross,
                          double *cross_err) {
  if (!num || !den) return; /* out of memory: recorded, the file refused */
  double *c = file_calloc((size_t)n, sizeof *c),
         *e = file_calloc((size_t)n, sizeof *e);
  if (!c || !e) {
    free(c), free(e);
    return;
  }
  an_ratio_curve(n, B, num, den, c, e);
  for (long i = 0; i < n; i++)
    curve_add(cv, index, name, t[i], c[i] / scale, e[i] / scale,
              theory ? theory[i] : NAN);
  if (cross)
    an_jackknife_crossing(n, t, B, num, den, level, dir, cross, cross_err);
  free(c);
  free(e);
}

static void say_crossing(row *r, const char *what, double v, double err) {
  if (isnan(v))
    note(r, "%s: not reached", what);
  else if (isnan(err))
    note(r,
         "%s: no error (a leave-one-block-out curve does not reach the "
         "level, or one block)",
         what);
}

/* The clone-free speciation estimator and Y2 (time-resolved). */
void measure_observables(hid_t pg, const point_model *pm, const options *o,
                         row *r, curve_list *cv) {
  hsize_t dc[3], dv[3], dt[3];
  double *cnt = read_counts(pg, "observables/count/block_sum", dc);
  double *time =
      read_dataset(pg, "observables/count/time", 1,
                   SHAPE(cnt ? (long)dc[0] : ANY, ANY, ANY), V_TIME_AXIS, dt);
  if (!cnt || !time) {
    note(r, "no observables/count: time-resolved estimators skipped");
    free(cnt), free(time);
    return;
  }
  long n = (long)dc[0], B = (long)dc[1];
  double *den = block_major(cnt, dc, 0);
  double *phi = read_dataset(pg, "observables/speciation_phi/block_sum", 2,
                             SHAPE(n, B, ANY), V_NAN | V_NONNEG, dv);
  if (phi && dv[0] == dc[0] && dv[1] == dc[1]) {
    double *num = block_major(phi, dv, 0);
    double *th = file_calloc((size_t)n, sizeof *th);
    for (long i = 0; th && i < n; i++) {
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
  double *y2 = read_dataset(pg, "observables/participation_y2/block_sum", 2,
                            SHAPE(n, B, ANY), V_NAN | V_NONNEG, dv);
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
  double *lp = read_dataset(pg, "observables/log_pe/block_sum", 2,
                            SHAPE(n, B, ANY), V_NAN, dv);
  hsize_t de[3], da[3];
  double *fe = read_dataset(pg, "collapse/excess_entropy", 1,
                            SHAPE(n, ANY, ANY), V_NAN, de);
  double *alpha =
      read_dataset(pg, "collapse/alpha", 1, SHAPE(1, ANY, ANY), V_NONNEG, da);
  if (lp && fe && alpha && dv[0] == dc[0] && dv[1] == dc[1] &&
      (long)de[0] == n && r->dimension > 0 && alpha[0] > 0) {
    int d = (int)r->dimension;
    double *num = block_major(lp, dv, 0);
    for (long i = 0; num && den && i < n; i++) {
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
void measure_final(hid_t pg, row *r, curve_list *cv) {
  hsize_t df[3], db[3];
  int has_spec = H5Lexists(pg, "speciation", H5P_DEFAULT) > 0;
  int has_coll = H5Lexists(pg, "collapse", H5P_DEFAULT) > 0;
  if (!has_spec && !has_coll) return;
  hid_t g = open_group(pg, "final");
  long off[6];
  double *fin = g >= 0 ? read_final(g, has_spec, has_coll, off, df) : NULL;
  int ok = fin != NULL;
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
    double *tb =
        read_dataset(pg, path, 1, SHAPE(off[4], ANY, ANY), V_TIMES, db);
    long nb = tb ? (long)db[0] : 0, col = kind ? off[2] : off[1];
    if (!tb || nb != off[4] || col + nb > F) {
      free(tb);
      continue;
    }
    double *num = file_calloc((size_t)(B * nb), sizeof *num);
    den = file_calloc((size_t)(B * nb), sizeof *den);
    for (long b = 0; num && den && b < B; b++)
      for (long s = 0; s < nb; s++) {
        num[b * nb + s] = fin[b * F + col + s];
        den[b * nb + s] = fin[b * F + off[0]];
      }
    double *th = NULL;
    if (!kind)
      th = read_dataset(pg, "speciation/phi_theory", 1, SHAPE(nb, ANY, ANY),
                        V_NAN | V_NONNEG, db);
    if (kind)
      r->cloned_C = 1;
    else
      r->cloned_S = 1;
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
    double *sum = file_calloc((size_t)B, sizeof *sum),
           *cnt = file_calloc((size_t)B, sizeof *cnt);
    double sq = 0, n = 0;
    for (long b = 0; sum && cnt && b < B; b++) {
      sum[b] = fin[b * F + off[3]];
      cnt[b] = fin[b * F + off[0]];
      sq += fin[b * F + off[3] + 1];
      n += cnt[b];
    }
    if (sum && cnt)
      an_ratio_curve(1, B, sum, cnt, &r->t_freeze, &r->t_freeze_err);
    r->t_freeze_spread = sqrt(fmax(sq / n - r->t_freeze * r->t_freeze, 0));
    free(sum), free(cnt);
  }
  free(fin);
}

/* U-turn curves, straight from the run's results (already with errors). */
void measure_uturn(hid_t pg, row *r, curve_list *cv) {
  if (H5Lexists(pg, "uturn", H5P_DEFAULT) <= 0) return;
  hsize_t d[3];
  const char *names[7] = {
      "uturn/T_u",           "uturn/c_uturn",           "uturn/c_uturn_err",
      "uturn/c_uturn_ratio", "uturn/c_uturn_ratio_err", "uturn/theory_gaussian",
      "uturn/theory_gm2"};
  double *v[7];
  int ok = 1;
  long n = -1;
  for (int k = 0; k < 7; k++) {
    v[k] = read_dataset(pg, names[k], 1, SHAPE(n >= 0 ? n : ANY, ANY, ANY),
                        k == 0             ? V_TIMES
                        : k == 2 || k == 4 ? V_NAN | V_NONNEG
                                           : V_NAN,
                        d);
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
void measure_forward(hid_t pg, row *r, curve_list *cv) {
  if (H5Lexists(pg, "forward", H5P_DEFAULT) <= 0) return;
  hsize_t ds[3], dt[3], dv[3];
  double *s = read_dataset(pg, "forward/reference_time", 1,
                           SHAPE(ANY, ANY, ANY), V_TIMES | V_NONEMPTY, ds);
  double *t = read_dataset(pg, "forward/time", 1, SHAPE(ANY, ANY, ANY),
                           V_TIME_AXIS, dt);
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
    const long *want = SHAPE((long)ds[0], n, ANY); /* [n_ref][n_out] */
    double *v = read_dataset(pg, p[0], 2, want, V_NAN, dv);
    double *e = read_dataset(pg, p[1], 2, want, V_NAN | V_NONNEG, dv);
    double *th = read_dataset(pg, p[2], 2, want, V_NAN, dv);
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
void measure_acf(hid_t pg, const point_model *pm, const options *o, double T,
                 row *r, curve_list *cv) {
  hsize_t dv[3], dt[3];
  if (H5Lexists(pg, "particles", H5P_DEFAULT) <= 0) return;
  double *x = read_dataset(
      pg, "particles/trajectory/position/value", 3,
      SHAPE(ANY, ANY, r->dimension > 0 ? r->dimension : ANY), V_NONEMPTY, dv);
  double *t = read_dataset(pg, "particles/trajectory/position/time", 1,
                           SHAPE(x ? (long)dv[0] : ANY, ANY, ANY), V_TIME_AXIS,
                           dt); /* one time per frame */
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
  double *series = file_calloc((size_t)(m * N), sizeof *series);
  double *acf = file_calloc((size_t)N, sizeof *acf);
  for (long j = 0; series && acf && j < nt; j++)
    for (long c = 0; c < d; c++)
      for (long f = 0; f < N; f++)
        series[(j * d + c) * N + f] = x[(f * nt + j) * d + c];
  if (series && acf && an_acf_fft(N, m, series, acf) == 0)
    for (long k = 0; k < N / 2; k++) { /* longer lags: too few pairs */
      double tau = t[0] - t[k];
      curve_add(cv, r->index, "acf", tau, acf[k], NAN,
                pm->ok ? stationary_corr(&pm->m, tau) : NAN);
    }
  free(series), free(acf), free(x), free(t);
}
