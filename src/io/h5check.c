/* HDF5 error reporting for NRD_H5_CHECK, and the files being written (see
 * h5check.h). */
#define _POSIX_C_SOURCE 200809L /* pwrite, fsync, strdup */
#include "io/h5check.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* ------------------------------------------------ files being written */

enum { MAX_WRITING = 2 };
static char *writing[MAX_WRITING];

/* A fatal error's cleanup: a partial file is worth nothing (FILE.tmp is
 * only ever renamed once complete), and a stray one blocks the next run. */
static void remove_partial_files(void) {
  for (int i = 0; i < MAX_WRITING; i++)
    if (writing[i]) {
      unlink(writing[i]);
      free(writing[i]);
      writing[i] = NULL;
    }
}

void nrd_h5_writing(const char *path) {
  nrd_at_fatal(remove_partial_files);
  for (int i = 0; i < MAX_WRITING; i++)
    if (!writing[i]) {
      size_t n = strlen(path) + 1;
      writing[i] = memcpy(NRD_XCALLOC(n, 1), path, n);
      return;
    }
}

void nrd_h5_written(const char *path) {
  for (int i = 0; i < MAX_WRITING; i++)
    if (writing[i] && strcmp(writing[i], path) == 0) {
      free(writing[i]);
      writing[i] = NULL;
    }
}

/* Why writes to `path` fail, as the system says it.  MPI-IO (Open MPI's
 * ompio) reports a failed pwritev as a short write to HDF5, which says only
 * "file write failed"; errno is gone by then.  So write 64 KiB past the
 * end of the file (partial, about to be removed) and keep the error the
 * system gives: ENOSPC, EDQUOT, EIO, EROFS, ...; 0 if it is accepted now. */
int nrd_h5_write_error(const char *path) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  struct stat st;
  int err = fstat(fd, &st) == 0 ? 0 : errno;
  static const char zero[65536];
  off_t at = err ? 0 : st.st_size;
  size_t left = sizeof zero;
  while (!err && left > 0) {
    ssize_t w = pwrite(fd, zero, left, at);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      err = w < 0 ? errno : EIO;
      break;
    }
    at += w;
    left -= (size_t)w;
  }
  if (!err && fsync(fd) != 0) err = errno;
  close(fd);
  return err;
}

_Noreturn void nrd_h5_fail(const char *call, const char *file, int line) {
  char msg[512];
  nrd_h5_last_error(msg, sizeof msg);
  const char *path = NULL;
  for (int i = 0; i < MAX_WRITING && !path; i++)
    path = writing[i];
  if (!path)
    nrd_abort(NRD_EXIT_RUNTIME, file, line, "HDF5 call %s failed: %s", call,
              msg);
  int err = nrd_h5_write_error(path);
  char *name = strdup(path); /* not NRD_XCALLOC: this is the error path */
  /* the cleanup (in nrd_abort) removes the partial file */
  nrd_abort(NRD_EXIT_RUNTIME, file, line,
            "writing '%s' failed: %s (HDF5 call %s: %s); the partial file is "
            "removed, older files are untouched",
            name ? name : "?",
            err ? strerror(err)
                : "the system gives no reason (a test write succeeds now)",
            call, msg);
}
