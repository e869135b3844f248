/* Rank 0 parses, everyone gets a copy (see params_mpi.h). */
#include "run/params_mpi.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

int params_load_collective(nrd_params *p, const char *path, int n_overrides,
                           char *const *overrides, MPI_Comm comm, char *err,
                           size_t errlen) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  int status = NRD_OK;
  char *buf = NULL;
  size_t len = 0;
  if (rank == 0) {
    status = params_load(p, path, n_overrides, overrides, err, errlen);
    if (status == NRD_OK) status = params_pack(p, &buf, &len);
  }
  if (MPI_Bcast(&status, 1, MPI_INT, 0, comm) != MPI_SUCCESS)
    return NRD_ERR_MPI;
  if (status != NRD_OK) {
    /* the message travels with its terminating zero */
    unsigned long long n = rank == 0 ? strlen(err) + 1 : 0;
    MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, 0, comm);
    char *msg = malloc(n);
    if (msg) {
      if (rank == 0) memcpy(msg, err, n);
      MPI_Bcast(msg, (int)n, MPI_CHAR, 0, comm);
      snprintf(err, errlen, "%s", msg);
      free(msg);
    }
    free(buf);
    return status;
  }
  unsigned long long n = len;
  MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, 0, comm);
  if (rank != 0) buf = malloc(n ? n : 1);
  int ok = buf != NULL, all = 0;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm);
  if (!all) {
    free(buf);
    snprintf(err, errlen, "out of memory for the parameters");
    return NRD_ERR_NOMEM;
  }
  MPI_Bcast(buf, (int)n, MPI_CHAR, 0, comm);
  status = rank == 0 ? NRD_OK : params_unpack(p, buf, n);
  free(buf);
  int worst = 0;
  MPI_Allreduce(&status, &worst, 1, MPI_INT, MPI_MAX, comm);
  if (worst != NRD_OK)
    snprintf(err, errlen, "could not unpack the broadcast parameters");
  return worst;
}
