/* Matrices from HDF5 files (see matrix_file.h). */
#include "io/matrix_file.h"
#include "util/error.h"

#include <hdf5.h>
#include <stdio.h>

/* Read a d x d double dataset (rank 0 and the others read the same file
 * independently: it is small and read-only). */
int matrix_file_read(const char *file, const char *dset, int d, double *M,
                     const char *key, char *err, size_t errlen) {
  H5E_auto2_t old_func;
  void *old_data;
  H5Eget_auto2(H5E_DEFAULT, &old_func, &old_data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  int rc = NRD_ERR_IO;
  hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT), ds = -1, sp = -1;
  if (f < 0) {
    snprintf(err, errlen, "%s: cannot open HDF5 file '%s'", key, file);
    goto out;
  }
  ds = H5Dopen2(f, dset, H5P_DEFAULT);
  if (ds < 0) {
    snprintf(err, errlen, "%s: no dataset '%s' in '%s'", key, dset, file);
    goto out;
  }
  sp = H5Dget_space(ds);
  hsize_t dims[2] = {0, 0};
  if (H5Sget_simple_extent_ndims(sp) != 2 ||
      H5Sget_simple_extent_dims(sp, dims, NULL) != 2 || dims[0] != (hsize_t)d ||
      dims[1] != (hsize_t)d) {
    snprintf(err, errlen,
             "%s: dataset '%s' in '%s' must be %d x %d (grid.dimension)", key,
             dset, file, d, d);
    rc = NRD_ERR_INPUT;
    goto out;
  }
  if (H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, M) < 0) {
    snprintf(err, errlen, "%s: cannot read dataset '%s' in '%s'", key, dset,
             file);
    goto out;
  }
  rc = NRD_OK;
out:
  if (sp >= 0) H5Sclose(sp);
  if (ds >= 0) H5Dclose(ds);
  if (f >= 0) H5Fclose(f);
  H5Eset_auto2(H5E_DEFAULT, old_func, old_data);
  return rc;
}

