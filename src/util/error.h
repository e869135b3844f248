/* Status codes and where a failure happened.
 *
 * One way to fail: library functions return an nrd_status (0 = success)
 * and never exit; the caller decides whether an error is fatal, collective
 * or recoverable.  Calls are made through NRD_CHECK (return at once) or
 * NRD_TRY (in a chain of calls that ends in common clean-up), and a failure
 * is started with NRD_FAIL: each records the file, line, function and call
 * (PETSc's PetscCall), so that the driver can say where and why, e.g.
 *   "grid point 1: la_cholesky(d, U, L) failed: numerical failure (not
 *    positive definite) [src/core/linalg.c:140 in la_spd_inverse] <- ..."
 * The trace is per thread.  Out of memory in the pure layers (config,
 * core) is NRD_ERR_NOMEM, returned like any failure; the drivers allocate
 * with NRD_XCALLOC (util/log.h), which ends the process with file and
 * line. */
#ifndef NRDIFF_ERROR_H
#define NRDIFF_ERROR_H

#include <stddef.h>

enum nrd_status {
  NRD_OK = 0,
  NRD_ERR_NOMEM,   /* allocation failed */
  NRD_ERR_INPUT,   /* invalid argument or parameter value */
  NRD_ERR_LAPACK,  /* LAPACK reported failure (info != 0) */
  NRD_ERR_NUMERIC, /* a numerical method did not converge / not SPD */
  NRD_ERR_IO,      /* file system or HDF5 failure */
  NRD_ERR_MPI,     /* MPI failure */
};

/* Short human-readable name of a status code ("out of memory", ...). */
const char *nrd_strerror(int status);

/* Record that `call` (the text of the failing call, or a message) failed
 * with status at file:line in func, on top of the thread's trace; returns
 * status.  A status of NRD_OK records nothing. */
int nrd_error_at(int status, const char *file, int line, const char *func,
                 const char *call);
/* The same with a printf-style message (the failure's origin). */
int nrd_error_fail(int status, const char *file, int line, const char *func,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The thread's trace, innermost failure first ("" if none). */
const char *nrd_error_trace(void);
/* Forget the thread's trace (after an error has been handled). */
void nrd_error_reset(void);

/* Call a function that returns an nrd_status; on failure record where and
 * return its status from the calling function. */
#define NRD_CHECK(call)                                                      \
  do {                                                                       \
    int nrd_check_ = (call);                                                 \
    if (nrd_check_ != NRD_OK)                                                \
      return nrd_error_at(nrd_check_, __FILE__, __LINE__, __func__, #call);  \
  } while (0)

/* In a chain: run call only while rc is NRD_OK, store its status in rc and
 * record a failure:  int rc = NRD_OK; NRD_TRY(rc, a()); NRD_TRY(rc, b());
 * ... clean up ...; return rc; */
#define NRD_TRY(rc, call)                                                    \
  do {                                                                       \
    if ((rc) == NRD_OK && ((rc) = (call)) != NRD_OK)                         \
      nrd_error_at((rc), __FILE__, __LINE__, __func__, #call);               \
  } while (0)

/* Start a failure with a message:  return NRD_FAIL(NRD_ERR_INPUT, "U is
 * not symmetric (|U - U^T| = %g)", asym); */
#define NRD_FAIL(status, ...)                                                \
  nrd_error_fail((status), __FILE__, __LINE__, __func__, __VA_ARGS__)

#endif
