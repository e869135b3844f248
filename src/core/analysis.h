/* The estimators of nrdiff: jackknife errors over particle blocks, curves
 * and critical times from block sums, autocorrelations.  The run (its
 * report, observables' errors and protocol results) and nrdiff-post use
 * these same functions on the same block sums, so a quantity has one value
 * wherever it is printed or stored.  Pure numerics: no MPI, no HDF5, no
 * logging, no exit.
 *
 * A measured crossing is found by "monotone interpolation": the curve is
 * replaced by its least-squares monotone fit (pool-adjacent-violators),
 * which the exact curve is (phi, phi_C and Y2 fall with t, f^e rises), and
 * the crossing of the fit is interpolated linearly between neighbouring
 * times.  Noise can then not produce several crossings.  Errors are
 * jackknife errors over particle blocks: the crossing is recomputed with
 * each block left out. */
#ifndef NRDIFF_ANALYSIS_H
#define NRDIFF_ANALYSIS_H

/* Least-squares fit of y[0..n) that is non-decreasing (dir = +1) or
 * non-increasing (dir = -1) in array order; weights w (NULL: equal). */
void an_isotonic(long n, const double *y, const double *w, int dir,
                 double *fit);

/* Where the curve y(t) crosses `level`.  t need not be sorted (the points
 * are taken in increasing t); NaN points are ignored; dir is the monotone
 * direction of y in t (+1 rising, -1 falling).  Returns NaN if the fitted
 * curve does not reach the level inside the measured range ("not
 * reached"). */
double an_crossing(long n, const double *t, const double *y, double level,
                   int dir);

/* ------------------------------------------------------------ jackknife
 *
 * The one estimator of errors in nrdiff (the run's report, its protocol
 * results and observables' errors, nrdiff-post): leave-one-block-out
 * jackknife over the B particle blocks.  sums holds B x nv block sums
 * (block-major: block b's nv sums at sums[b * nv]).  With the totals
 * T = sum_b sums[b] (added in block order) and the leave-one-out totals
 * T_b = T - sums[b],
 *   value = f(T),   err = sqrt((B - 1)/B sum_b (f(T_b) - mean_b f(T_b))^2).
 * err is NaN when B < 2, when value is NaN or when any f(T_b) is NaN (a
 * leave-one-out estimate that does not exist: say, a crossing not reached
 * without block b).  Out of memory: both NaN. */
typedef double (*an_stat)(const double *totals, const void *ctx);
void an_jackknife(long B, long nv, const double *sums, an_stat f,
                  const void *ctx, double *value, double *err);

/* totals[0] / totals[1] (ctx unused): the mean of a per-particle quantity
 * from (sum, count). */
double an_ratio(const double *totals, const void *ctx);

/* Ratio curve from block sums: num, den B x n (block-major), curve[i] =
 * sum_b num[b][i] / sum_b den[b][i], curve_err[i] its jackknife error
 * (an_jackknife of an_ratio at each i).  curve or curve_err may be NULL. */
void an_ratio_curve(long n, long B, const double *num, const double *den,
                    double *curve, double *curve_err);

/* The measured critical time of a ratio curve: where the curve of totals
 * (an_ratio_curve) crosses `level` (an_crossing, monotone fit), with its
 * jackknife error (an_jackknife: the whole analysis repeated with each block
 * left out).  *value is NaN when the curve does not reach the level ("not
 * reached"); *err as for an_jackknife. */
void an_jackknife_crossing(long n, const double *t, long B, const double *num,
                           const double *den, double level, int dir,
                           double *value, double *err);

/* Normalised time autocorrelation of m real series of length N (m x N,
 * series-major), lags 0 .. N-1:
 *   r(tau) = sum_series sum_{s < N - tau} x_s x_{s+tau} / (m (N - tau)),
 *   acf(tau) = r(tau) / r(0)
 * (no mean subtracted: the processes are centred).  an_acf_fft uses the
 * Wiener-Khinchin theorem with FFTW, zero padding to at least 2N so the
 * circular correlation has no wrap-around; an_acf_direct is the O(m N^2)
 * sum it is tested against.  Return 0, or -1 if out of memory or r(0) = 0. */
int an_acf_fft(long N, long m, const double *x, double *acf);
int an_acf_direct(long N, long m, const double *x, double *acf);

#endif
