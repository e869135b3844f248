/* HDF5 error reporting for NRD_H5_CHECK (see h5check.h). */
#include "nrdiff/h5check.h"
#include "nrdiff/log.h"

#include <stdio.h>
#include <string.h>

void nrd_h5_quiet(void) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* The innermost (first-walked) entry names the real cause. */
static herr_t take_innermost(unsigned n, const H5E_error2_t *err, void *data) {
  char *buf = data;
  if (n == 0)
    snprintf(buf, 512, "%s (in %s)", err->desc ? err->desc : "?",
             err->func_name ? err->func_name : "?");
  return 0;
}

void nrd_h5_last_error(char *buf, size_t len) {
  char tmp[512] = "no HDF5 error message";
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, take_innermost, tmp);
  snprintf(buf, len, "%s", tmp);
}

_Noreturn void nrd_h5_fail(const char *call, const char *file, int line) {
  char msg[512];
  nrd_h5_last_error(msg, sizeof msg);
  nrd_abort(NRD_EXIT_RUNTIME, file, line, "HDF5 call %s failed: %s", call, msg);
}
