/* Loops over the rows of a particle block split across threads, for the
 * memory-bound passes of the scores and the integrator (score_mixture.c,
 * score_empirical.c, integrate.c). */
#ifndef NRDIFF_PARALLEL_H
#define NRDIFF_PARALLEL_H

/* fn(ctx, p0, p1) over the rows
 * [0, P) in contiguous ranges, one per thread (as many as OpenBLAS uses and
 * the CPU mask allows; one for less than ~1 M element operations, P times
 * work_per_row).  fn must treat rows independently, so that results do
 * not depend on the number of threads. */
typedef void (*nrd_rows_fn)(void *ctx, int p0, int p1);
void nrd_par_rows(int P, double work_per_row, nrd_rows_fn fn, void *ctx);

#endif
