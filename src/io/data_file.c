/* Data files (see data_file.h). */
#include "io/data_file.h"
#include "util/error.h"

#include <errno.h>
#include <hdf5.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  const char *file;
  char *err;
  size_t errlen;
} where;

/* The message "data.file 'F': dataset 'D': ..." into err, and status
 * (recorded in the error trace). */
__attribute__((format(printf, 4, 5))) static int
bad(const where *w, int status, const char *dset, const char *fmt, ...) {
  if (dset)
    snprintf(w->err, w->errlen, "data.file '%s': dataset '%s': ", w->file,
             dset);
  else
    snprintf(w->err, w->errlen, "data.file '%s': ", w->file);
  size_t used = strlen(w->err);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->err + used, w->errlen - used, fmt, ap);
  va_end(ap);
  return NRD_FAIL(status, "%s", w->err);
}

/* The points' own shape, from the importer's attribute "shape" (or none). */
static void read_shape(hid_t ds, data_raw *raw) {
  if (H5Aexists(ds, "shape") <= 0) return;
  hid_t a = H5Aopen(ds, "shape", H5P_DEFAULT);
  hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
  hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
  long v[4];
  if (n >= 1 && n <= 4 && H5Aread(a, H5T_NATIVE_LONG, v) >= 0) {
    raw->shape_rank = (int)n;
    memcpy(raw->shape, v, (size_t)n * sizeof *v);
  }
  if (sp >= 0) H5Sclose(sp);
  if (a >= 0) H5Aclose(a);
}

static int read_points(const where *w, hid_t f, const char *dset,
                       data_raw *raw) {
  if (H5Lexists(f, dset, H5P_DEFAULT) <= 0)
    return bad(w, NRD_ERR_INPUT, dset, "no such dataset (data.dataset)");
  hid_t ds = H5Dopen2(f, dset, H5P_DEFAULT);
  if (ds < 0) return bad(w, NRD_ERR_INPUT, dset, "not a dataset");
  int rc = NRD_OK;
  hid_t sp = H5Dget_space(ds), ty = H5Dget_type(ds);
  hsize_t dims[2] = {0, 0};
  H5T_class_t cls = H5Tget_class(ty);
  if (H5Sget_simple_extent_ndims(sp) != 2) {
    rc = bad(w, NRD_ERR_INPUT, dset,
             "must be 2-dimensional, n points x d coordinates (it has %d "
             "dimensions)",
             H5Sget_simple_extent_ndims(sp));
  } else if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
    rc = bad(w, NRD_ERR_INPUT, dset, "must hold numbers (integers or floats)");
  } else {
    H5Sget_simple_extent_dims(sp, dims, NULL);
    if (dims[0] < 1 || dims[1] < 1 || dims[1] > 1048576 ||
        dims[0] > (hsize_t)1 << 40)
      rc = bad(w, NRD_ERR_INPUT, dset,
               "has %llu x %llu elements (needs n >= 1 points of 1 to "
               "1048576 coordinates)",
               (unsigned long long)dims[0], (unsigned long long)dims[1]);
  }
  if (rc == NRD_OK) {
    raw->n = (long)dims[0];
    raw->d = (int)dims[1];
    raw->pixels = cls == H5T_INTEGER && H5Tget_size(ty) == 1 &&
                  H5Tget_sign(ty) == H5T_SGN_NONE;
    raw->x = malloc((size_t)raw->n * raw->d * sizeof *raw->x);
    if (!raw->x)
      rc = NRD_FAIL(NRD_ERR_NOMEM, "the data: n = %ld, d = %d", raw->n, raw->d);
    else if (H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                     raw->x) < 0)
      rc = bad(w, NRD_ERR_IO, dset, "cannot be read");
    read_shape(ds, raw);
  }
  H5Tclose(ty);
  H5Sclose(sp);
  H5Dclose(ds);
  return rc;
}

static int read_labels(const where *w, hid_t f, const char *dset,
                       data_raw *raw) {
  if (H5Lexists(f, dset, H5P_DEFAULT) <= 0)
    return bad(w, NRD_ERR_INPUT, dset,
               "no such dataset (data.labels; \"\" for unlabelled data)");
  hid_t ds = H5Dopen2(f, dset, H5P_DEFAULT);
  if (ds < 0) return bad(w, NRD_ERR_INPUT, dset, "not a dataset");
  int rc = NRD_OK;
  hid_t sp = H5Dget_space(ds), ty = H5Dget_type(ds);
  hsize_t n = 0;
  if (H5Sget_simple_extent_ndims(sp) != 1 || H5Tget_class(ty) != H5T_INTEGER) {
    rc = bad(w, NRD_ERR_INPUT, dset,
             "must be 1-dimensional integers, one label per point");
  } else {
    H5Sget_simple_extent_dims(sp, &n, NULL);
    if (n != (hsize_t)raw->n)
      rc = bad(w, NRD_ERR_INPUT, dset, "has %llu labels for %ld points",
               (unsigned long long)n, raw->n);
  }
  if (rc == NRD_OK) {
    raw->label = malloc((size_t)raw->n * sizeof *raw->label);
    if (!raw->label)
      rc = NRD_FAIL(NRD_ERR_NOMEM, "%ld labels", raw->n);
    else if (H5Dread(ds, H5T_NATIVE_LONG, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                     raw->label) < 0)
      rc = bad(w, NRD_ERR_IO, dset, "cannot be read");
  }
  H5Tclose(ty);
  H5Sclose(sp);
  H5Dclose(ds);
  return rc;
}

int data_file_read(const char *file, const char *dataset, const char *labels,
                   data_raw *raw, char *err, size_t errlen) {
  memset(raw, 0, sizeof *raw);
  where w = {file, err, errlen};
  H5E_auto2_t old_func;
  void *old_data;
  H5Eget_auto2(H5E_DEFAULT, &old_func, &old_data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  int rc = NRD_OK;
  hid_t f = -1;
  if (access(file, R_OK) != 0)
    rc = bad(&w, NRD_ERR_IO, NULL, "cannot read it: %s", strerror(errno));
  else if ((f = H5Fis_hdf5(file) > 0
                    ? H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT)
                    : -1) < 0)
    rc = bad(&w, NRD_ERR_INPUT, NULL,
             "not an HDF5 file (nrdiff-import writes one from IDX or .npy "
             "files)");
  NRD_TRY(rc, read_points(&w, f, dataset, raw));
  if (labels[0]) NRD_TRY(rc, read_labels(&w, f, labels, raw));
  if (f >= 0) H5Fclose(f);
  H5Eset_auto2(H5E_DEFAULT, old_func, old_data);
  if (rc != NRD_OK) data_raw_free(raw);
  return rc;
}
