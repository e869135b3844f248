/* Row-parallel loops (see parallel.h). */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* sched_getcpu, CPU_SET, pthread_attr_setaffinity_np */
#endif
#include "core/parallel.h"

#include <cblas.h>
#include <pthread.h>
#include <sched.h>

/* fn(ctx, p0, p1) over the rows [0, P), split into contiguous ranges for
 * as many threads as OpenBLAS is set to use (openblas_set_num_threads /
 * OPENBLAS_NUM_THREADS) and the process may run on, the calling thread
 * taking the first range.  Small jobs (fewer than ~1 M element operations)
 * run in the calling thread.  fn must treat every row independently: then
 * the split cannot change results.
 *
 * Right after a GEMM, OpenBLAS's idle workers spin (sched_yield) for up to
 * 2^28 cycles; a new thread left to the scheduler then often shares the
 * caller's core instead of displacing a spinner (measured: no speed-up at
 * all in half the runs).  On Linux each helper is therefore bound to one
 * CPU of the process's mask other than the caller's current one; the
 * helpers live for one call only. */
typedef struct {
  nrd_rows_fn fn;
  void *ctx;
  int p0, p1;
} rows_job;

static void *rows_run(void *arg) {
  rows_job *j = arg;
  j->fn(j->ctx, j->p0, j->p1);
  return NULL;
}

enum { PAR_MAX_THREADS = 32 };
#define PAR_MIN_WORK 1048576.0

void nrd_par_rows(int P, double work_per_row, nrd_rows_fn fn, void *ctx) {
  int nt = openblas_get_num_threads();
  if (nt > PAR_MAX_THREADS) nt = PAR_MAX_THREADS;
  if (nt > P) nt = P;
  if (nt < 2 || (double)P * work_per_row < PAR_MIN_WORK) {
    fn(ctx, 0, P);
    return;
  }
#if defined(__linux__)
  cpu_set_t mask;
  int here = sched_getcpu(), cpu = 0;
  int pin = here >= 0 && sched_getaffinity(0, sizeof mask, &mask) == 0;
  if (pin && CPU_COUNT(&mask) < nt) nt = CPU_COUNT(&mask);
  if (nt < 2) {
    fn(ctx, 0, P);
    return;
  }
#endif
  pthread_t th[PAR_MAX_THREADS];
  rows_job job[PAR_MAX_THREADS];
  int started[PAR_MAX_THREADS];
  for (int i = 0; i < nt; i++)
    job[i] = (rows_job){fn, ctx, (int)((long long)P * i / nt),
                        (int)((long long)P * (i + 1) / nt)};
  for (int i = 1; i < nt; i++) {
    pthread_attr_t at;
    int have_at = pthread_attr_init(&at) == 0;
#if defined(__linux__)
    while (pin && cpu < CPU_SETSIZE && (cpu == here || !CPU_ISSET(cpu, &mask)))
      cpu++;
    if (have_at && pin && cpu < CPU_SETSIZE) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      pthread_attr_setaffinity_np(&at, sizeof one, &one);
      cpu++;
    }
#endif
    started[i] =
        pthread_create(&th[i], have_at ? &at : NULL, rows_run, &job[i]) == 0;
    if (have_at) pthread_attr_destroy(&at);
  }
  fn(ctx, job[0].p0, job[0].p1);
  for (int i = 1; i < nt; i++) {
    if (started[i])
      pthread_join(th[i], NULL);
    else /* no thread: do it here, same result */
      fn(ctx, job[i].p0, job[i].p1);
  }
}

