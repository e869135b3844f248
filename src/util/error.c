/* Status codes and the failure trace (see error.h). */
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *nrd_strerror(int status) {
  switch (status) {
  case NRD_OK:
    return "success";
  case NRD_ERR_NOMEM:
    return "out of memory";
  case NRD_ERR_INPUT:
    return "invalid input";
  case NRD_ERR_LAPACK:
    return "LAPACK failure";
  case NRD_ERR_NUMERIC:
    return "numerical failure";
  case NRD_ERR_IO:
    return "I/O failure";
  case NRD_ERR_MPI:
    return "MPI failure";
  }
  return "unknown error";
}

/* The trace: the innermost failure first, then each caller that passed it
 * on ("<- call [file:line in func]"); cut, never overflowing. */
static _Thread_local char trace[2048];

/* "src/core/ou.c" of a compiler's __FILE__, however the build named it. */
static const char *short_path(const char *file) {
  const char *s = strstr(file, "src/");
  if (!s) s = strstr(file, "postprocess/");
  return s ? s : file;
}

static int record(int status, const char *file, int line, const char *func,
                  const char *what) {
  if (status == NRD_OK) return status;
  size_t used = strlen(trace);
  if (used + 1 >= sizeof trace) return status;
  if (used == 0)
    snprintf(trace, sizeof trace, "%s failed: %s [%s:%d in %s]", what,
             nrd_strerror(status), short_path(file), line, func);
  else
    snprintf(trace + used, sizeof trace - used, " <- %s [%s:%d in %s]", what,
             short_path(file), line, func);
  return status;
}

int nrd_error_at(int status, const char *file, int line, const char *func,
                 const char *call) {
  return record(status, file, line, func, call);
}

int nrd_error_fail(int status, const char *file, int line, const char *func,
                   const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  nrd_error_reset(); /* a new failure starts a new trace */
  if (status == NRD_OK) return status;
  snprintf(trace, sizeof trace, "%s (%s) [%s:%d in %s]", msg,
           nrd_strerror(status), short_path(file), line, func);
  return status;
}

const char *nrd_error_trace(void) {
  return trace;
}

void nrd_error_reset(void) {
  trace[0] = 0;
}
