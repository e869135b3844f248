/* NumPy .npy files: "\x93NUMPY", a version (1.0, 2.0 or 3.0), the header's
 * length (uint16, or uint32 from 2.0 on, little-endian), the header (a
 * Python dict literal: {'descr': '<f8', 'fortran_order': False, 'shape':
 * (60000, 784), }), then the elements.  Only plain numbers are read:
 * integers, float32 and float64, either byte order; an object array
 * (pickled Python objects) is refused, never unpickled. */
#ifndef NRDIFF_IMPORT_NPY_H
#define NRDIFF_IMPORT_NPY_H

#include "import/source.h"

/* The rest of a .npy file whose first 4 bytes were read from s (at most
 * limit rows, 0: all).  A Fortran-order array is transposed to C order. */
int npy_read(imp_source *s, uint64_t limit, imp_array *a);

#endif
