/* Checking macro for HDF5 calls: a negative return aborts this rank with
 * file:line, the failing call and HDF5's own innermost error message. */
#ifndef NRDIFF_H5CHECK_H
#define NRDIFF_H5CHECK_H

#include <hdf5.h>

/* Silence HDF5's automatic stack dump; our macro reports instead. */
void nrd_h5_quiet(void);
/* Copy HDF5's innermost error description into buf. */
void nrd_h5_last_error(char *buf, size_t len);
_Noreturn void nrd_h5_fail(const char *call, const char *file, int line);

#define NRD_H5_CHECK(call)                                                     \
  ({                                                                           \
    __typeof__(call) nrd_h5rc_ = (call);                                       \
    if (nrd_h5rc_ < 0) nrd_h5_fail(#call, __FILE__, __LINE__);                 \
    nrd_h5rc_;                                                                 \
  })

#endif
