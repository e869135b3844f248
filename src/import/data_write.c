/* Writing the data file (see data_write.h).  Serial HDF5 calls with the
 * default file access (the sec2 driver): no MPI is needed, although the
 * library linked is the parallel one.  HDF5 converts the source's bytes
 * (big-endian IDX, either npy byte order, integers to float64) as it
 * writes, a strip at a time, so the data is never held twice. */
#define _XOPEN_SOURCE 700 /* mkstemp, link, fsync, sigaction */
#include "import/data_write.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

out_type data_out_type(imp_kind k) {
  if (k.cls == IMP_UINT && k.size == 1) return OUT_U8;
  if (k.cls == IMP_FLOAT) return k.size == 4 ? OUT_F32 : OUT_F64;
  /* other integers: float64 holds them exactly (int64: checked first);
   * uint64 is refused, as the layout's table says */
  if (k.cls == IMP_UINT && k.size == 8) return OUT_NONE;
  return OUT_F64;
}

const char *data_out_name(out_type t) {
  return t == OUT_U8 ? "uint8" : t == OUT_F32 ? "float32" : "float64";
}

/* The HDF5 type that describes the source's bytes as they are. */
static hid_t source_type(imp_kind k) {
  int be = k.big_endian;
  if (k.cls == IMP_FLOAT)
    return k.size == 4 ? (be ? H5T_IEEE_F32BE : H5T_IEEE_F32LE)
                       : (be ? H5T_IEEE_F64BE : H5T_IEEE_F64LE);
  static const int sizes[4] = {1, 2, 4, 8};
  const hid_t u[2][4] = {
      {H5T_STD_U8LE, H5T_STD_U16LE, H5T_STD_U32LE, H5T_STD_U64LE},
      {H5T_STD_U8BE, H5T_STD_U16BE, H5T_STD_U32BE, H5T_STD_U64BE}};
  const hid_t s[2][4] = {
      {H5T_STD_I8LE, H5T_STD_I16LE, H5T_STD_I32LE, H5T_STD_I64LE},
      {H5T_STD_I8BE, H5T_STD_I16BE, H5T_STD_I32BE, H5T_STD_I64BE}};
  int i = 0;
  while (sizes[i] != k.size)
    i++;
  return k.cls == IMP_UINT ? u[be][i] : s[be][i];
}

/* ------------------------------------------------------------ HDF5 errors */

/* HDF5's most specific message for the first failure (the system's, for a
 * failed write: "error message = 'No space left on device'"), taken at
 * once: the next HDF5 call clears the stack.  HDF5's own printing of the
 * stack is off. */
static char reason[256];

static herr_t first_desc(unsigned n, const H5E_error2_t *e, void *unused) {
  if (n == 0 && e->desc) snprintf(reason, sizeof reason, "%s", e->desc);
  return 0;
}

static hid_t ck(hid_t v) {
  if (v >= 0 || reason[0]) return v;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, first_desc, NULL);
  char *m = strstr(reason, "error message = '");
  if (m) {
    memmove(reason, m + 17, strlen(m + 17) + 1);
    char *q = strchr(reason, '\'');
    if (q) *q = 0;
  }
  if (!reason[0]) snprintf(reason, sizeof reason, "HDF5 error");
  return v;
}

/* ----------------------------------------------------------- the file */

static herr_t attr_string(hid_t obj, const char *name, const char *value) {
  hid_t t = ck(H5Tcopy(H5T_C_S1)), sp = ck(H5Screate(H5S_SCALAR)), a = -1;
  herr_t rc = -1;
  if (t >= 0 && sp >= 0 && ck(H5Tset_size(t, H5T_VARIABLE)) >= 0 &&
      ck(H5Tset_cset(t, H5T_CSET_UTF8)) >= 0)
    a = ck(H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT));
  if (a >= 0) rc = (herr_t)ck(H5Awrite(a, t, &value));
  if (a >= 0 && ck(H5Aclose(a)) < 0) rc = -1;
  if (sp >= 0) H5Sclose(sp);
  if (t >= 0) H5Tclose(t);
  return rc;
}

static herr_t attr_numbers(hid_t obj, const char *name, hid_t file_type,
                           hid_t mem_type, hsize_t n, const void *v) {
  hid_t sp = ck(n ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR));
  hid_t a =
      sp >= 0
          ? ck(H5Acreate2(obj, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT))
          : -1;
  herr_t rc = a >= 0 ? (herr_t)ck(H5Awrite(a, mem_type, v)) : -1;
  if (a >= 0 && ck(H5Aclose(a)) < 0) rc = -1;
  if (sp >= 0) H5Sclose(sp);
  return rc;
}

/* A contiguous dataset of rank 1 or 2 with its @source. */
static herr_t dataset(hid_t file, const char *name, hid_t file_type,
                      hid_t mem_type, int rank, const hsize_t *dims,
                      const void *buf, const char *source, hid_t *out) {
  hid_t sp = ck(H5Screate_simple(rank, dims, NULL));
  hid_t d = sp >= 0 ? ck(H5Dcreate2(file, name, file_type, sp, H5P_DEFAULT,
                                    H5P_DEFAULT, H5P_DEFAULT))
                    : -1;
  herr_t rc = d >= 0 ? (herr_t)ck(H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL,
                                           H5P_DEFAULT, buf))
                     : -1;
  if (rc >= 0) rc = attr_string(d, "source", source);
  if (sp >= 0) H5Sclose(sp);
  *out = d;
  return rc;
}

/* Everything of the layout into path; the message names f->out. */
static int write_h5(const data_file *f, const char *path) {
  const imp_array *a = f->data;
  const char *step = "create the file";
  hid_t file = ck(H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  hid_t d = -1, l = -1;
  herr_t rc = file >= 0 ? 0 : -1;
  if (rc >= 0) {
    step = "write /data";
    out_type t = data_out_type(a->kind);
    hid_t ft = t == OUT_U8    ? H5T_STD_U8LE
               : t == OUT_F32 ? H5T_IEEE_F32LE
                              : H5T_IEEE_F64LE;
    hsize_t dims[2] = {a->dims[0], imp_row_size(a)};
    rc = dataset(file, "data", ft, source_type(a->kind), 2, dims, a->data,
                 f->data_path, &d);
  }
  if (rc >= 0 && a->ndim > 2) {
    int64_t shape[IMP_MAX_DIMS];
    for (int i = 1; i < a->ndim; i++)
      shape[i - 1] = (int64_t)a->dims[i];
    rc = attr_numbers(d, "shape", H5T_STD_I64LE, H5T_NATIVE_INT64,
                      (hsize_t)(a->ndim - 1), shape);
  }
  if (rc >= 0 && f->labels) {
    step = "write /labels";
    hsize_t n = a->dims[0];
    rc = dataset(file, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, &n,
                 f->labels, f->labels_path, &l);
  }
  if (rc >= 0) {
    step = "write the attributes";
    int version = DATA_FILE_VERSION;
    rc = attr_numbers(file, "nrdiff_data_version", H5T_STD_I32LE,
                      H5T_NATIVE_INT, 0, &version);
    if (rc >= 0) rc = attr_string(file, "creator", f->creator);
  }
  if (d >= 0 && ck(H5Dclose(d)) < 0) rc = -1;
  if (l >= 0 && ck(H5Dclose(l)) < 0) rc = -1;
  if (file >= 0 && ck(H5Fclose(file)) < 0 && rc >= 0) {
    step = "finish writing"; /* the last writes happen on closing */
    rc = -1;
  }
  if (rc < 0) return imp_error(f->out, IMP_IO, "cannot %s: %s", step, reason);
  return IMP_OK;
}

/* --------------------------------------- the temporary file, then the name */

/* The temporary file, removed on SIGINT, SIGTERM or SIGHUP too. */
static char tmp_path[4096];
static volatile sig_atomic_t have_tmp;

static void on_signal(int sig) {
  if (have_tmp) unlink(tmp_path);
  signal(sig, SIG_DFL);
  raise(sig);
}

static int sync_file(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  if (close(fd) != 0) rc = -1;
  return rc;
}

/* tmp to f->out, never replacing a file that appeared meanwhile: link()
 * fails if the name exists; where the file system has no hard links,
 * rename() after a last look. */
static int publish(const data_file *f) {
  if (link(tmp_path, f->out) == 0) return IMP_OK;
  int e = errno;
  struct stat st;
  if (e == EPERM || e == EOPNOTSUPP || e == ENOTSUP || e == EMLINK) {
    if (lstat(f->out, &st) == 0) {
      e = EEXIST;
    } else if (rename(tmp_path, f->out) == 0) {
      have_tmp = 0;
      return IMP_OK;
    } else {
      e = errno;
    }
  }
  if (e == EEXIST)
    return imp_error(f->out, IMP_BAD,
                     "exists; remove it or choose another --output");
  return imp_error(f->out, IMP_IO, "cannot create: %s", strerror(e));
}

int data_write(const data_file *f) {
  const char *slash = strrchr(f->out, '/');
  const char *base = slash ? slash + 1 : f->out;
  int dir_len = slash ? (int)(slash - f->out) : 0;
  int n = snprintf(tmp_path, sizeof tmp_path, "%.*s%s.%s.tmp-XXXXXX", dir_len,
                   f->out, slash ? "/" : "", base);
  if (n < 0 || (size_t)n >= sizeof tmp_path)
    return imp_error(f->out, IMP_BAD, "the output name is too long");
  char dir[4096];
  snprintf(dir, sizeof dir, "%.*s", slash ? (dir_len ? dir_len : 1) : 1,
           slash ? f->out : ".");
  /* HDF5 1.10 crashes at exit closing a file whose H5Fclose failed (a full
   * disk): no clean-up at exit, H5close below when all went well */
  H5dont_atexit();
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our messages, not the stack */

  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  int sigs[] = {SIGINT, SIGTERM, SIGHUP};
  for (int i = 0; i < 3; i++)
    sigaction(sigs[i], &sa, NULL);
  int fd = mkstemp(tmp_path);
  if (fd < 0)
    return imp_error(f->out, IMP_IO, "cannot create a file in %s: %s", dir,
                     strerror(errno));
  have_tmp = 1;
  mode_t mask = umask(0); /* the mode a new file gets, not mkstemp's 0600 */
  umask(mask);
  int rc = fchmod(fd, 0666 & ~mask);
  if (close(fd) != 0) rc = -1;
  if (rc) rc = imp_error(f->out, IMP_IO, "cannot create: %s", strerror(errno));
  if (!rc) rc = write_h5(f, tmp_path);
  if (!rc) H5close();
  if (!rc && sync_file(tmp_path) != 0)
    rc = imp_error(f->out, IMP_IO, "cannot write: %s", strerror(errno));
  if (!rc) rc = publish(f);
  if (have_tmp) unlink(tmp_path);
  have_tmp = 0;
  if (!rc) sync_file(dir); /* the new name on disk (best effort) */
  return rc;
}
