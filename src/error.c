/* Names of the shared status codes. */
#include "nrdiff/error.h"

const char *nrd_strerror(int status) {
  switch (status) {
  case NRD_OK:
    return "success";
  case NRD_ERR_NOMEM:
    return "out of memory";
  case NRD_ERR_INPUT:
    return "invalid input";
  case NRD_ERR_LAPACK:
    return "LAPACK failure";
  case NRD_ERR_NUMERIC:
    return "numerical failure";
  case NRD_ERR_IO:
    return "I/O failure";
  case NRD_ERR_MPI:
    return "MPI failure";
  }
  return "unknown error";
}
