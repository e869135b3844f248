/* The estimators: jackknife, curves, crossings, autocorrelations (see
 * analysis.h). */
#include "core/analysis.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void an_isotonic(long n, const double *y, const double *w, int dir,
                 double *fit) {
  /* pool adjacent violators on s*y (s = dir), non-decreasing; blocks kept
   * as (mean, weight, length) on a stack */
  double *mean = malloc((size_t)(n ? n : 1) * sizeof *mean);
  double *wt = malloc((size_t)(n ? n : 1) * sizeof *wt);
  long *len = malloc((size_t)(n ? n : 1) * sizeof *len);
  if (!mean || !wt || !len) {
    memcpy(fit, y, (size_t)n * sizeof *fit);
    free(mean), free(wt), free(len);
    return;
  }
  long top = 0;
  for (long i = 0; i < n; i++) {
    mean[top] = dir * y[i];
    wt[top] = w ? w[i] : 1.0;
    len[top] = 1;
    top++;
    while (top > 1 && mean[top - 2] > mean[top - 1]) {
      double W = wt[top - 2] + wt[top - 1];
      mean[top - 2] = (wt[top - 2] * mean[top - 2] + wt[top - 1] * mean[top - 1]) / W;
      wt[top - 2] = W;
      len[top - 2] += len[top - 1];
      top--;
    }
  }
  long i = 0;
  for (long b = 0; b < top; b++)
    for (long k = 0; k < len[b]; k++)
      fit[i++] = dir * mean[b];
  free(mean);
  free(wt);
  free(len);
}

typedef struct {
  double t, y;
} point;

static int by_t(const void *a, const void *b) {
  double x = ((const point *)a)->t, y = ((const point *)b)->t;
  return (x > y) - (x < y);
}

double an_crossing(long n, const double *t, const double *y, double level,
                   int dir) {
  point *p = malloc((size_t)(n ? n : 1) * sizeof *p);
  double *ys = malloc((size_t)(n ? n : 1) * sizeof *ys);
  double *fit = malloc((size_t)(n ? n : 1) * sizeof *fit);
  double cross = NAN;
  long m = 0;
  if (!p || !ys || !fit) goto done;
  for (long i = 0; i < n; i++)
    if (!isnan(t[i]) && !isnan(y[i])) p[m++] = (point){t[i], y[i]};
  qsort(p, (size_t)m, sizeof *p, by_t);
  for (long i = 0; i < m; i++)
    ys[i] = p[i].y;
  an_isotonic(m, ys, NULL, dir, fit);
  for (long i = 0; i + 1 < m; i++) {
    double a = fit[i] - level, b = fit[i + 1] - level;
    if (a == 0) {
      cross = p[i].t;
      break;
    }
    if ((a < 0) != (b < 0) || b == 0) {
      cross = p[i].t + (p[i + 1].t - p[i].t) * a / (a - b);
      break;
    }
  }
  if (isnan(cross) && m > 0 && fit[m - 1] == level) cross = p[m - 1].t;
done:
  free(p);
  free(ys);
  free(fit);
  return cross;
}

/* ------------------------------------------------------------ jackknife */

void an_jackknife(long B, long nv, const double *sums, an_stat f,
                  const void *ctx, double *value, double *err) {
  *value = *err = NAN;
  double *tot = malloc((size_t)(nv > 0 ? 2 * nv : 1) * sizeof *tot);
  double *fb = malloc((size_t)(B > 0 ? B : 1) * sizeof *fb);
  if (!tot || !fb) {
    free(tot), free(fb);
    return;
  }
  double *loo = tot + nv;
  for (long v = 0; v < nv; v++)
    tot[v] = 0;
  for (long b = 0; b < B; b++) /* block order: independent of the ranks */
    for (long v = 0; v < nv; v++)
      tot[v] += sums[b * nv + v];
  *value = f(tot, ctx);
  if (B >= 2 && !isnan(*value)) {
    double mean = 0, ss = 0;
    int defined = 1;
    for (long b = 0; b < B; b++) {
      for (long v = 0; v < nv; v++)
        loo[v] = tot[v] - sums[b * nv + v];
      fb[b] = f(loo, ctx);
      if (isnan(fb[b])) defined = 0;
      mean += fb[b] / (double)B;
    }
    for (long b = 0; defined && b < B; b++)
      ss += (fb[b] - mean) * (fb[b] - mean);
    if (defined) *err = sqrt(ss * (double)(B - 1) / (double)B);
  }
  free(tot);
  free(fb);
}

double an_ratio(const double *totals, const void *ctx) {
  (void)ctx;
  return totals[0] / totals[1];
}

void an_ratio_curve(long n, long B, const double *num, const double *den,
                    double *curve, double *curve_err) {
  double *s = malloc((size_t)(B > 0 ? 2 * B : 1) * sizeof *s);
  for (long i = 0; i < n; i++) {
    double v = NAN, e = NAN;
    if (s) {
      for (long b = 0; b < B; b++)
        s[2 * b] = num[b * n + i], s[2 * b + 1] = den[b * n + i];
      an_jackknife(B, 2, s, an_ratio, NULL, &v, &e);
    }
    if (curve) curve[i] = v;
    if (curve_err) curve_err[i] = e;
  }
  free(s);
}

/* The crossing of the ratio curve of totals: totals[0..n) numerators,
 * totals[n..2n) denominators. */
typedef struct {
  long n;
  const double *t;
  double level;
  int dir;
  double *curve; /* n, scratch */
} crossing_ctx;

static double ratio_crossing(const double *totals, const void *ctx) {
  const crossing_ctx *c = ctx;
  for (long i = 0; i < c->n; i++)
    c->curve[i] = totals[i] / totals[c->n + i];
  return an_crossing(c->n, c->t, c->curve, c->level, c->dir);
}

void an_jackknife_crossing(long n, const double *t, long B, const double *num,
                           const double *den, double level, int dir,
                           double *value, double *err) {
  *value = *err = NAN;
  double *s = malloc((size_t)(n > 0 && B > 0 ? 2 * n * B : 1) * sizeof *s);
  double *curve = malloc((size_t)(n > 0 ? n : 1) * sizeof *curve);
  if (s && curve) {
    for (long b = 0; b < B; b++)
      for (long i = 0; i < n; i++) {
        s[b * 2 * n + i] = num[b * n + i];
        s[b * 2 * n + n + i] = den[b * n + i];
      }
    crossing_ctx c = {n, t, level, dir, curve};
    an_jackknife(B, 2 * n, s, ratio_crossing, &c, value, err);
  }
  free(s);
  free(curve);
}

int an_acf_fft(long N, long m, const double *x, double *acf) {
  if (N < 1) return -1;
  long M = 1;
  while (M < 2 * N) /* zero padding: no circular wrap-around */
    M *= 2;
  double *in = fftw_malloc((size_t)M * sizeof *in);
  fftw_complex *out = fftw_malloc((size_t)(M / 2 + 1) * sizeof *out);
  double *r = calloc((size_t)N, sizeof *r);
  int rc = -1;
  if (!in || !out || !r) goto done;
  /* plan once (the arrays are overwritten by planning), execute per series */
  fftw_plan fwd = fftw_plan_dft_r2c_1d((int)M, in, out, FFTW_ESTIMATE);
  fftw_plan back = fftw_plan_dft_c2r_1d((int)M, out, in, FFTW_ESTIMATE);
  for (long s = 0; s < m; s++) {
    memcpy(in, x + s * N, (size_t)N * sizeof *in);
    memset(in + N, 0, (size_t)(M - N) * sizeof *in);
    fftw_execute(fwd);
    for (long k = 0; k <= M / 2; k++) { /* |X_k|^2 */
      out[k][0] = out[k][0] * out[k][0] + out[k][1] * out[k][1];
      out[k][1] = 0;
    }
    fftw_execute(back); /* unnormalised: M times the correlation */
    for (long tau = 0; tau < N; tau++)
      r[tau] += in[tau] / (double)M;
  }
  fftw_destroy_plan(fwd);
  fftw_destroy_plan(back);
  for (long tau = 0; tau < N; tau++)
    r[tau] /= (double)(N - tau);
  if (r[0] > 0) {
    for (long tau = 0; tau < N; tau++)
      acf[tau] = r[tau] / r[0];
    rc = 0;
  }
done:
  fftw_free(in);
  fftw_free(out);
  free(r);
  return rc;
}

int an_acf_direct(long N, long m, const double *x, double *acf) {
  if (N < 1) return -1;
  double *r = calloc((size_t)N, sizeof *r);
  if (!r) return -1;
  for (long s = 0; s < m; s++)
    for (long tau = 0; tau < N; tau++)
      for (long i = 0; i + tau < N; i++)
        r[tau] += x[s * N + i] * x[s * N + i + tau];
  for (long tau = 0; tau < N; tau++)
    r[tau] /= (double)(N - tau);
  int rc = r[0] > 0 ? 0 : -1;
  for (long tau = 0; rc == 0 && tau < N; tau++)
    acf[tau] = r[tau] / r[0];
  free(r);
  return rc;
}
