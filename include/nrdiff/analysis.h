/* Critical times and autocorrelations from measured curves (nrdiff-post).
 * Pure numerics: no MPI, no HDF5.
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

/* Ratio curves from block sums and their crossing with a jackknife error.
 * num, den: B x n (block-major) sums, curve = sum num / sum den.  curve and
 * curve_err (n, may be NULL) receive the curve and its pointwise jackknife
 * error.  *err is NaN when B < 2 or when a leave-one-out curve does not
 * reach the level. */
void an_ratio_curve(long n, long B, const double *num, const double *den,
                    double *curve, double *curve_err);
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
