/* What the main of an MPI CMocka test needs (include after cmocka.h):
 *   mpi_test_begin   MPI and nrdiff's logging set up; only rank 0 reports
 *                    (the others' CMocka output would repeat it);
 *   mpi_scratch_make, mpi_scratch_remove
 *                    group fixtures: rank 0 makes a scratch directory
 *                    before the tests (its name in mpi_scratch on every
 *                    rank) and removes it after them;
 *   mpi_test_end     MPI finalized; main's status.
 *   int main(int argc, char **argv) {
 *     const struct CMUnitTest tests[] = {...};
 *     mpi_test_begin(&argc, &argv);
 *     return mpi_test_end(cmocka_run_group_tests_name(
 *         "name", tests, mpi_scratch_make, mpi_scratch_remove));
 *   } */
#ifndef NRDIFF_TESTS_MPI_MAIN_H
#define NRDIFF_TESTS_MPI_MAIN_H

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/log.h"

static char mpi_scratch[256];

static inline void mpi_test_begin(int *argc, char ***argv) {
  MPI_Init(argc, argv);
  nrd_log_init(MPI_COMM_WORLD, 0);
  if (nrd_log_rank() != 0) cmocka_set_message_output(CM_OUTPUT_SUBUNIT);
}

static inline int mpi_test_end(int failed) {
  MPI_Finalize();
  return failed ? 1 : 0;
}

static inline int mpi_scratch_make(void **state) {
  (void)state;
  if (nrd_log_rank() == 0) {
    snprintf(mpi_scratch, sizeof mpi_scratch, "/tmp/nrdiff-test-XXXXXX");
    if (!mkdtemp(mpi_scratch)) mpi_scratch[0] = 0;
  }
  MPI_Bcast(mpi_scratch, sizeof mpi_scratch, MPI_CHAR, 0, MPI_COMM_WORLD);
  return mpi_scratch[0] ? 0 : -1;
}

static inline int mpi_scratch_remove(void **state) {
  (void)state;
  MPI_Barrier(MPI_COMM_WORLD); /* every rank is done with it */
  char rm[300];
  snprintf(rm, sizeof rm, "rm -rf '%s'", mpi_scratch);
  return nrd_log_rank() != 0 || system(rm) == 0 ? 0 : -1;
}

#endif
