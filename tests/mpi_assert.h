/* CMocka assertions for MPI tests, reduced over all ranks: every rank
 * evaluates its condition, the results are combined with MPI_Allreduce, and
 * every rank then asserts the combined result.  A failure on one rank thus
 * fails the test on all ranks instead of leaving the others waiting in the
 * next collective call. */
#ifndef NRDIFF_TESTS_MPI_ASSERT_H
#define NRDIFF_TESTS_MPI_ASSERT_H

#include <mpi.h>
#include <stdio.h>

#define mpi_assert_all(cond)                                                   \
  do {                                                                         \
    int mpi_ok_ = (cond) ? 1 : 0, mpi_all_ = 0, mpi_rank_ = 0;                 \
    MPI_Comm_rank(MPI_COMM_WORLD, &mpi_rank_);                                 \
    if (!mpi_ok_)                                                              \
      fprintf(stderr, "rank %d: assertion failed: %s\n", mpi_rank_, #cond);    \
    MPI_Allreduce(&mpi_ok_, &mpi_all_, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);   \
    assert_true(mpi_all_);                                                     \
  } while (0)

#endif
