/* Matrices of the forward operator read from HDF5 files (forward.u_file,
 * forward.q_file): the reader the model is given (core/model.h). */
#ifndef NRDIFF_MATRIX_FILE_H
#define NRDIFF_MATRIX_FILE_H

#include <stddef.h>

/* Read the d x d double dataset `dataset` of `file` into M (row-major).
 * Local (every rank may read the same small file).  NRD_ERR_IO if the file
 * or dataset cannot be read, NRD_ERR_INPUT for another shape, with a
 * message naming `key` (the parameter), the file and the dataset. */
int matrix_file_read(const char *file, const char *dataset, int d, double *M,
                     const char *key, char *err, size_t errlen);

#endif
