/* The simulation driver: for every grid point, run the reverse dynamics of
 * the ensemble (distributed over ranks in fixed blocks), accumulate the
 * observables per block, reduce them in block order, and report. */
#ifndef NRDIFF_RUN_H
#define NRDIFF_RUN_H

#include "nrdiff/grid.h"
#include "nrdiff/params.h"

/* Collective over MPI_COMM_WORLD; returns a process exit status. */
int run_simulation(const nrd_params *p, const run_plan *plan);

#endif
