/* Small helpers for collective parallel-HDF5 writes (see h5util.h). */
#define _POSIX_C_SOURCE 200809L /* O_CLOEXEC */
#include "io/h5util.h"
#include "io/h5check.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define H5 NRD_H5_CHECK

int h5u_root(void) {
  return nrd_log_rank() == 0;
}

void h5u_attr_string(hid_t obj, const char *name, const char *value) {
  hid_t t = H5(H5Tcopy(H5T_C_S1));
  H5(H5Tset_size(t, H5T_VARIABLE));
  H5(H5Tset_cset(t, H5T_CSET_UTF8));
  hid_t sp = H5(H5Screate(H5S_SCALAR));
  hid_t a = H5(H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT));
  const char *v = value ? value : "";
  H5(H5Awrite(a, t, &v));
  H5(H5Aclose(a));
  H5(H5Sclose(sp));
  H5(H5Tclose(t));
}

/* A fixed-length string attribute: stored inside the object header (no
 * global heap reference a damaged file could send astray). */
void h5u_attr_fixed_string(hid_t obj, const char *name, const char *value) {
  const char *v = value ? value : "";
  size_t n = strlen(v);
  hid_t t = H5(H5Tcopy(H5T_C_S1));
  H5(H5Tset_size(t, n ? n : 1));
  H5(H5Tset_strpad(t, H5T_STR_NULLPAD));
  H5(H5Tset_cset(t, H5T_CSET_UTF8));
  hid_t sp = H5(H5Screate(H5S_SCALAR));
  hid_t a = H5(H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT));
  char *buf = NRD_XCALLOC(n, 1);
  memcpy(buf, v, n);
  H5(H5Awrite(a, t, buf));
  free(buf);
  H5(H5Aclose(a));
  H5(H5Sclose(sp));
  H5(H5Tclose(t));
}

void h5u_attr_numbers(hid_t obj, const char *name, hid_t type, int n,
                         const void *v) {
  hsize_t dim = (hsize_t)n;
  hid_t sp = H5(n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL));
  hid_t ft = type == H5T_NATIVE_LONG     ? H5T_STD_I64LE
             : type == H5T_NATIVE_INT    ? H5T_STD_I32LE
             : type == H5T_NATIVE_ULLONG ? H5T_STD_U64LE
                                         : H5T_IEEE_F64LE;
  hid_t a = H5(H5Acreate2(obj, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT));
  H5(H5Awrite(a, type, v));
  H5(H5Aclose(a));
  H5(H5Sclose(sp));
}

void h5u_attr_long(hid_t obj, const char *name, long v) {
  h5u_attr_numbers(obj, name, H5T_NATIVE_LONG, 1, &v);
}

void h5u_attr_double(hid_t obj, const char *name, double v) {
  h5u_attr_numbers(obj, name, H5T_NATIVE_DOUBLE, 1, &v);
}

hid_t h5u_group(hid_t parent, const char *name) {
  return H5(H5Gcreate2(parent, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
}

/* Create a dataset of `rank` dims; rank 0 writes all of `data` (the others'
 * `data` is ignored). */
void h5u_dataset_root(hid_t dxpl, hid_t parent, const char *name,
                         hid_t file_type, hid_t mem_type, int rank,
                         const hsize_t *dims, const void *data) {
  hid_t fs = H5(H5Screate_simple(rank, dims, NULL));
  hid_t ds = H5(H5Dcreate2(parent, name, file_type, fs, H5P_DEFAULT,
                           H5P_DEFAULT, H5P_DEFAULT));
  hid_t ms = H5(H5Scopy(fs));
  static const char dummy[16];
  if (!h5u_root()) {
    H5(H5Sselect_none(fs));
    H5(H5Sselect_none(ms));
    data = dummy;
  }
  H5(H5Dwrite(ds, mem_type, ms, fs, dxpl, data));
  H5(H5Sclose(ms));
  H5(H5Sclose(fs));
  H5(H5Dclose(ds));
}

void h5u_dataset_1d(hid_t dxpl, hid_t parent, const char *name, int is_long,
                       long n, const void *data) {
  hsize_t dim = (hsize_t)n;
  h5u_dataset_root(dxpl, parent, name, is_long ? H5T_STD_I64LE : H5T_IEEE_F64LE,
               is_long ? H5T_NATIVE_LONG : H5T_NATIVE_DOUBLE, 1, &dim, data);
}

/* Fixed-length strings: parallel HDF5 cannot write variable-length data. */
void h5u_dataset_strings(hid_t dxpl, hid_t parent, const char *name, size_t n,
                            char *const *v, int scalar) {
  size_t width = 1;
  for (size_t i = 0; i < n; i++)
    if (strlen(v[i]) + 1 > width) width = strlen(v[i]) + 1;
  char *buf = NRD_XCALLOC(n, width);
  for (size_t i = 0; i < n; i++)
    memcpy(buf + (size_t)i * width, v[i], strlen(v[i]));
  hid_t t = H5(H5Tcopy(H5T_C_S1));
  H5(H5Tset_size(t, width));
  H5(H5Tset_strpad(t, H5T_STR_NULLTERM));
  H5(H5Tset_cset(t, H5T_CSET_UTF8));
  hsize_t dim = (hsize_t)n;
  if (scalar) {
    hid_t fs = H5(H5Screate(H5S_SCALAR));
    hid_t ds = H5(H5Dcreate2(parent, name, t, fs, H5P_DEFAULT, H5P_DEFAULT,
                             H5P_DEFAULT));
    hid_t ms = H5(H5Scopy(fs));
    if (!h5u_root()) {
      H5(H5Sselect_none(fs));
      H5(H5Sselect_none(ms));
    }
    H5(H5Dwrite(ds, t, ms, fs, dxpl, buf));
    H5(H5Sclose(ms));
    H5(H5Sclose(fs));
    H5(H5Dclose(ds));
  } else {
    h5u_dataset_root(dxpl, parent, name, t, t, 1, &dim, buf);
  }
  H5(H5Tclose(t));
  free(buf);
}

void h5u_param_text(const nrd_params *p, char ***key, char ***value) {
  int n = params_schema_size();
  *key = NRD_XCALLOC((size_t)n, sizeof **key);
  *value = NRD_XCALLOC((size_t)n, sizeof **value);
  for (int i = 0; i < n; i++) {
    (*key)[i] = (char *)params_schema_name(i);
    if (!((*value)[i] = params_value_yaml(p, i)))
      NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  }
}

void h5u_param_text_free(char **key, char **value) {
  for (int i = 0; value && i < params_schema_size(); i++)
    free(value[i]);
  free(value);
  free(key); /* the names are the schema's */
}

/* Rank 0's string, on every rank (malloc'd). */
char *h5u_bcast_string(const char *s) {
  int n = h5u_root() ? (int)strlen(s) + 1 : 0;
  NRD_MPI_CHECK(MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD));
  char *out = NRD_XCALLOC((size_t)n, 1);
  if (h5u_root()) memcpy(out, s, (size_t)n);
  NRD_MPI_CHECK(MPI_Bcast(out, n, MPI_CHAR, 0, MPI_COMM_WORLD));
  return out;
}

/* Why `path` cannot be created: the system's reason, by creating it. */
static int create_error(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  close(fd);
  return nrd_h5_write_error(path);
}

hid_t h5u_create_file(const char *path, hid_t fapl, const char *what,
                      const char *note) {
  nrd_h5_writing(path); /* removed on a fatal error from here on */
  hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  /* agree: a rank that could not create it must not leave the others
   * waiting in the next collective call */
  int bad[2] = {file < 0, file >= 0}; /* any rank failed, any succeeded */
  NRD_MPI_CHECK(
      MPI_Allreduce(MPI_IN_PLACE, bad, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  if (bad[0]) {
    char msg[512] = "";
    int e = 0;
    if (file < 0) {
      nrd_h5_last_error(msg, sizeof msg);
      e = create_error(path);
    }
    if (!bad[1]) /* every rank failed */
      nrd_fatal(NRD_EXIT_RUNTIME, "cannot create %s '%s': %s (HDF5: %s)%s",
                what, path, e ? strerror(e) : "reason unknown", msg, note);
    if (file < 0)
      NRD_ABORT(NRD_EXIT_RUNTIME, "cannot create %s '%s': %s (HDF5: %s)", what,
                path, e ? strerror(e) : "reason unknown", msg);
    NRD_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD)); /* until that rank aborts */
  }
  return file;
}

/* Select, in a dataset of dims (n0, n1[, n2]), the rows idx[0..n) of axis 1
 * (every i0, every i2). */
static hid_t rows_space(int rank, const hsize_t *dims, long n,
                        const long *idx) {
  hid_t fs = H5(H5Screate_simple(rank, dims, NULL));
  H5(H5Sselect_none(fs));
  for (long j = 0; j < n; j++) {
    hsize_t start[3] = {0, (hsize_t)idx[j], 0};
    hsize_t count[3] = {dims[0], 1, rank > 2 ? dims[2] : 1};
    H5(H5Sselect_hyperslab(fs, H5S_SELECT_OR, start, NULL, count, NULL));
  }
  return fs;
}

static hid_t rows_memspace(size_t n) {
  hsize_t m = n ? n : 1;
  hid_t ms = H5(H5Screate_simple(1, &m, NULL));
  if (!n) H5(H5Sselect_none(ms));
  return ms;
}

void h5u_write_rows(hid_t dxpl, hid_t parent, const char *name, hid_t type,
                    int rank, const hsize_t *dims, long n, const long *idx,
                    const void *buf) {
  hid_t fs = H5(H5Screate_simple(rank, dims, NULL));
  hid_t file_type = type == H5T_NATIVE_LONG ? H5T_STD_I64LE
                    : type == H5T_NATIVE_ULLONG ? H5T_STD_U64LE
                                                : H5T_IEEE_F64LE;
  hid_t ds = H5(H5Dcreate2(parent, name, file_type, fs, H5P_DEFAULT,
                           H5P_DEFAULT, H5P_DEFAULT));
  H5(H5Sclose(fs));
  fs = rows_space(rank, dims, n, idx);
  size_t count = (size_t)n * dims[0] * (rank > 2 ? dims[2] : 1);
  hid_t ms = rows_memspace(count);
  static const double dummy[1];
  H5(H5Dwrite(ds, type, ms, fs, dxpl, count ? buf : dummy));
  H5(H5Sclose(ms));
  H5(H5Sclose(fs));
  H5(H5Dclose(ds));
}

int h5u_read_rows(hid_t dxpl, hid_t parent, const char *name, hid_t type,
                  int rank, const hsize_t *dims, long n, const long *idx,
                  void *buf) {
  hid_t ds = H5Dopen2(parent, name, H5P_DEFAULT);
  if (ds < 0) return -1;
  hid_t fs = H5Dget_space(ds);
  hsize_t have[3] = {0, 0, 0};
  int ok = fs >= 0 && H5Sget_simple_extent_ndims(fs) == rank &&
           H5Sget_simple_extent_dims(fs, have, NULL) == rank;
  for (int k = 0; ok && k < rank; k++)
    ok = have[k] == dims[k];
  if (fs >= 0) H5Sclose(fs);
  herr_t rc = -1;
  if (ok) {
    fs = rows_space(rank, dims, n, idx);
    size_t count = (size_t)n * dims[0] * (rank > 2 ? dims[2] : 1);
    hid_t ms = rows_memspace(count);
    static double dummy[1];
    rc = H5Dread(ds, type, ms, fs, dxpl, count ? buf : dummy);
    H5Sclose(ms);
    H5Sclose(fs);
  }
  H5Dclose(ds);
  return ok && rc >= 0 ? 0 : -1;
}
