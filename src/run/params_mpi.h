/* Collective parameter loading: rank 0 reads and validates the file, every
 * rank receives either the same parameters or the same error message. */
#ifndef NRDIFF_PARAMS_MPI_H
#define NRDIFF_PARAMS_MPI_H

#include <mpi.h>

#include "config/params.h"

/* Collective over comm.  p must hold defaults on entry.  Returns the same
 * status on every rank; on failure err holds the same message everywhere. */
int params_load_collective(nrd_params *p, const char *path, int n_overrides,
                           char *const *overrides, MPI_Comm comm, char *err,
                           size_t errlen);

#endif
