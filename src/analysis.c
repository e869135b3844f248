/* Curve analysis for nrdiff-post (see analysis.h). */
#include "nrdiff/analysis.h"

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

void an_ratio_curve(long n, long B, const double *num, const double *den,
                    double *curve, double *curve_err) {
  for (long i = 0; i < n; i++) {
    double N = 0, D = 0;
    for (long b = 0; b < B; b++)
      N += num[b * n + i], D += den[b * n + i];
    double c = N / D, mean = 0, ss = 0;
    if (curve) curve[i] = c;
    if (!curve_err) continue;
    for (long b = 0; b < B; b++)
      mean += (N - num[b * n + i]) / (D - den[b * n + i]) / (double)B;
    for (long b = 0; b < B; b++) {
      double e = (N - num[b * n + i]) / (D - den[b * n + i]) - mean;
      ss += e * e;
    }
    curve_err[i] = B > 1 ? sqrt(ss * (double)(B - 1) / (double)B) : NAN;
  }
}

void an_jackknife_crossing(long n, const double *t, long B, const double *num,
                           const double *den, double level, int dir,
                           double *value, double *err) {
  double *c = calloc((size_t)(n ? n : 1), sizeof *c);
  double *cb = malloc((size_t)(B ? B : 1) * sizeof *cb);
  *value = *err = NAN;
  if (!c || !cb) {
    free(c), free(cb);
    return;
  }
  an_ratio_curve(n, B, num, den, c, NULL);
  *value = an_crossing(n, t, c, level, dir);
  int valid = B > 1 && !isnan(*value);
  double mean = 0, ss = 0;
  double *tot = calloc((size_t)(n > 0 ? 2 * n : 1), sizeof *tot);
  if (!tot) valid = 0;
  for (long b = 0; valid && b < B; b++)
    for (long i = 0; i < n; i++)
      tot[i] += num[b * n + i], tot[n + i] += den[b * n + i];
  for (long b = 0; valid && b < B; b++) {
    for (long i = 0; i < n; i++)
      c[i] = (tot[i] - num[b * n + i]) / (tot[n + i] - den[b * n + i]);
    cb[b] = an_crossing(n, t, c, level, dir);
    if (isnan(cb[b])) valid = 0;
    mean += cb[b] / (double)B;
  }
  for (long b = 0; valid && b < B; b++)
    ss += (cb[b] - mean) * (cb[b] - mean);
  if (valid) *err = sqrt(ss * (double)(B - 1) / (double)B);
  free(tot);
  free(c);
  free(cb);
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
