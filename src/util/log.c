/* Rank/time-tagged logging and fatal-error handling (see log.h). */
#define _POSIX_C_SOURCE 200809L /* _exit */
#include "util/log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct {
  MPI_Comm comm;
  int rank, size, verbose;
  double t0;
} ctx = {MPI_COMM_NULL, 0, 1, 0, 0.0};

void nrd_log_init(MPI_Comm comm, int verbose) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  ctx.comm = comm;
  ctx.verbose = verbose;
  if (initialized) {
    MPI_Comm_rank(comm, &ctx.rank);
    MPI_Comm_size(comm, &ctx.size);
    ctx.t0 = MPI_Wtime();
  }
}

int nrd_log_rank(void) {
  return ctx.rank;
}
int nrd_log_size(void) {
  return ctx.size;
}
int nrd_log_verbose(void) {
  return ctx.verbose;
}
double nrd_log_elapsed(void) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  return initialized ? MPI_Wtime() - ctx.t0 : 0.0;
}

static void emit(FILE *out, const char *level, const char *fmt, va_list ap) {
  /* One fprintf of a preformatted line keeps lines of different ranks from
   * interleaving mid-line. */
  char msg[4096];
  vsnprintf(msg, sizeof msg, fmt, ap);
  fprintf(out, "[nrdiff %8.3fs r%d] %s%s\n", nrd_log_elapsed(), ctx.rank, level,
          msg);
  fflush(out);
}

void nrd_info(const char *fmt, ...) {
  if (ctx.rank != 0 && !ctx.verbose) return;
  va_list ap;
  va_start(ap, fmt);
  emit(stdout, "", fmt, ap);
  va_end(ap);
}

void nrd_debug(const char *fmt, ...) {
  if (!ctx.verbose) return;
  va_list ap;
  va_start(ap, fmt);
  emit(stdout, "debug: ", fmt, ap);
  va_end(ap);
}

void nrd_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit(stderr, "warning: ", fmt, ap);
  va_end(ap);
}

void nrd_warn_lines(const char *text) {
  while (text && *text) {
    const char *nl = strchr(text, '\n');
    int n = nl ? (int)(nl - text) : (int)strlen(text);
    nrd_warn("%.*s", n, text);
    text += n + (nl != NULL);
  }
}

/* Cleanups for a fatal error, newest first, each run at most once (a
 * cleanup that fails fatally itself must not loop). */
enum { MAX_CLEANUPS = 8 };
static void (*cleanups[MAX_CLEANUPS])(void);
static int n_cleanups;

void nrd_at_fatal(void (*fn)(void)) {
  for (int i = 0; i < n_cleanups; i++)
    if (cleanups[i] == fn) return;
  if (n_cleanups < MAX_CLEANUPS) cleanups[n_cleanups++] = fn;
}

void nrd_fatal_cleanup(void) {
  while (n_cleanups > 0)
    cleanups[--n_cleanups]();
}

_Noreturn void nrd_fatal(int status, const char *fmt, ...) {
  if (ctx.rank == 0) {
    va_list ap;
    va_start(ap, fmt);
    fputs("nrdiff: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
    va_end(ap);
  }
  nrd_fatal_cleanup();
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
  exit(status);
}

_Noreturn void nrd_abort(int status, const char *file, int line,
                         const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char msg[4096];
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "nrdiff: error on rank %d (%s:%d): %s\n", ctx.rank, file,
          line, msg);
  fflush(stderr);
  nrd_fatal_cleanup();
  fflush(NULL);
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized && ctx.size > 1)
    MPI_Abort(MPI_COMM_WORLD, status);
  /* Not exit(): its handlers include HDF5's, which closes every file still
   * open, and a file a failed write left half-open cannot be closed (HDF5
   * 1.10's close fails, frees the file's shared state and keeps its id, and
   * its next pass dereferences the freed state: a segfault, exit 139). */
  _exit(status);
}

void *nrd_xcalloc(size_t n, size_t size, const char *file, int line) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p)
    nrd_abort(NRD_EXIT_RUNTIME, file, line, "out of memory (%zu x %zu bytes)",
              n, size);
  return p;
}
