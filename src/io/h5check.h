/* Checking macro for HDF5 calls: a negative return aborts this rank with
 * file:line, the failing call and HDF5's own innermost error message; while
 * a file is being written (nrd_h5_writing), the system's reason why writing
 * it fails ("No space left on device") and the partial file is removed. */
#ifndef NRDIFF_H5CHECK_H
#define NRDIFF_H5CHECK_H

#include <hdf5.h>

/* Silence HDF5's automatic stack dump; our macro reports instead. */
void nrd_h5_quiet(void);
/* Copy HDF5's innermost error description into buf. */
void nrd_h5_last_error(char *buf, size_t len);
_Noreturn void nrd_h5_fail(const char *call, const char *file, int line);

/* Local: `path` is being written (before it is created) / is complete
 * (closed without error).  In between, a fatal error (nrd_h5_fail,
 * nrd_fatal, nrd_abort) on this rank removes it.  Two at a time at most. */
void nrd_h5_writing(const char *path);
void nrd_h5_written(const char *path);
/* Local: the errno that writing to the end of `path` gives now (0 if the
 * write succeeds): the system's reason when a write through MPI-IO failed
 * without one.  Extends the file: for partial files about to be removed. */
int nrd_h5_write_error(const char *path);

#define NRD_H5_CHECK(call)                                                     \
  ({                                                                           \
    __typeof__(call) nrd_h5rc_ = (call);                                       \
    if (nrd_h5rc_ < 0) nrd_h5_fail(#call, __FILE__, __LINE__);                 \
    nrd_h5rc_;                                                                 \
  })

#endif
