/* Error codes shared by every nrdiff module.
 *
 * Library functions return one of these (0 = success) and never exit: the
 * caller decides whether an error is fatal, collective or recoverable. */
#ifndef NRDIFF_ERROR_H
#define NRDIFF_ERROR_H

enum nrd_status {
  NRD_OK = 0,
  NRD_ERR_NOMEM,   /* allocation failed */
  NRD_ERR_INPUT,   /* invalid argument or parameter value */
  NRD_ERR_LAPACK,  /* LAPACK reported failure (info != 0) */
  NRD_ERR_NUMERIC, /* a numerical method did not converge / not SPD */
  NRD_ERR_IO,      /* file system or HDF5 failure */
  NRD_ERR_MPI,     /* MPI failure */
};

/* Short human-readable name of a status code ("out of memory", ...). */
const char *nrd_strerror(int status);

#endif
