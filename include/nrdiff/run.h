/* The simulation driver: for every grid point, run the reverse dynamics of
 * the ensemble (distributed over ranks in fixed blocks), accumulate the
 * observables per block, reduce them in block order, and report. */
#ifndef NRDIFF_RUN_H
#define NRDIFF_RUN_H

#include "nrdiff/grid.h"
#include "nrdiff/params.h"

/* Collective over MPI_COMM_WORLD; returns a process exit status.
 * only_point >= 0 runs that grid point alone (--grid-index); command_line is
 * recorded in the output's provenance. */
int run_simulation(const nrd_params *p, const run_plan *plan, int only_point,
                   const char *command_line);

#endif
