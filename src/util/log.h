/* Rank- and time-tagged messages, and the two kinds of fatal error.
 *
 * Only rank 0 prints info messages unless verbose is set; warnings and errors
 * from any rank always print.  Every line looks like
 *   [nrdiff    1.234s r0] message
 * so the output of several ranks can be merged and sorted. */
#ifndef NRDIFF_LOG_H
#define NRDIFF_LOG_H

#include <mpi.h>
#include <stdio.h>

/* Exit statuses of the nrdiff program (documented in doc/user-guide.md). */
enum nrd_exit {
  NRD_EXIT_OK = 0,
  NRD_EXIT_RUNTIME = 1, /* a runtime failure (I/O, numerics, MPI) */
  NRD_EXIT_USAGE = 2,   /* bad command line or parameter file */
  NRD_EXIT_STOPPED = 3, /* stopped on request after a checkpoint: restart */
};

void nrd_log_init(MPI_Comm comm, int verbose);
int nrd_log_rank(void);
int nrd_log_size(void);
int nrd_log_verbose(void);
/* Seconds since nrd_log_init. */
double nrd_log_elapsed(void);

void nrd_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void nrd_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void nrd_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Each line of text as a warning (no-op for NULL or ""). */
void nrd_warn_lines(const char *text);

/* Collective fatal error: every rank of the communicator calls it with the
 * same arguments; rank 0 prints "nrdiff: error: ...", all ranks run the
 * cleanups (nrd_at_fatal), finalize MPI and exit with `status`. */
_Noreturn void nrd_fatal(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Single-rank fatal error: this rank prints (with file:line and its rank),
 * runs the cleanups and calls MPI_Abort so the other ranks cannot hang in a
 * collective (one rank: _exit, without exit()'s handlers, HDF5's among
 * them, which may crash on a file left half-written). */
_Noreturn void nrd_abort(int status, const char *file, int line,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Register a cleanup that nrd_fatal and nrd_abort run (on the ranks that
 * call them, newest first, once) before the process ends: removing a
 * partial file, releasing a lock.  It must be safe on any rank and at any
 * point of the run; registering the same function twice is a no-op. */
void nrd_at_fatal(void (*fn)(void));
/* Run the registered cleanups now (and forget them). */
void nrd_fatal_cleanup(void);

#define NRD_ABORT(status, ...) nrd_abort((status), __FILE__, __LINE__, __VA_ARGS__)

/* The drivers' allocation (run, io, nrdiff-post): zeroed, and out of memory
 * ends this rank with file, line and the size asked for (a single-rank
 * fatal error).  The pure layers return NRD_ERR_NOMEM instead (error.h). */
void *nrd_xcalloc(size_t n, size_t size, const char *file, int line);
#define NRD_XCALLOC(n, size) nrd_xcalloc((n), (size), __FILE__, __LINE__)

/* Abort with file:line and MPI's own message if an MPI call fails. */
#define NRD_MPI_CHECK(call)                                                    \
  do {                                                                         \
    int nrd_rc_ = (call);                                                      \
    if (nrd_rc_ != MPI_SUCCESS) {                                              \
      char nrd_msg_[MPI_MAX_ERROR_STRING];                                     \
      int nrd_len_ = 0;                                                        \
      MPI_Error_string(nrd_rc_, nrd_msg_, &nrd_len_);                          \
      nrd_abort(NRD_EXIT_RUNTIME, __FILE__, __LINE__, "%s failed: %s", #call, \
                nrd_msg_);                                                     \
    }                                                                          \
  } while (0)

#endif
