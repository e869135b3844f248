/* The simulation driver: for every grid point, run the reverse dynamics of
 * the ensemble (distributed over ranks in fixed blocks), accumulate the
 * observables per block, reduce them in block order, and report. */
#ifndef NRDIFF_RUN_H
#define NRDIFF_RUN_H

#include "core/grid.h"
#include "config/params.h"

/* Collective over MPI_COMM_WORLD; returns a process exit status:
 * NRD_EXIT_OK (output written, OUTPUT.done created, checkpoints removed) or
 * NRD_EXIT_STOPPED (a stop was requested: checkpoint written, no output).
 * only_point >= 0 runs that grid point alone (--grid-index); restart
 * continues from the newest valid checkpoint; command_line is recorded in
 * the output's provenance. */
int run_simulation(const nrd_params *p, const run_plan *plan, int only_point,
                   int restart, const char *command_line);

/* SIGTERM, SIGUSR1 and SIGINT (Ctrl-C; a second one ends the process at
 * once) then request a checkpoint and a clean stop (exit status 3).  Call
 * first in main; it also unblocks them (run_block_stop_signals). */
void run_catch_stop_signals(void);
/* Block them (before a re-execution: they stay pending, not fatal). */
void run_block_stop_signals(void);

/* output.file + ".done", written when a run completes (malloc'd). */
char *done_marker_path(const nrd_params *p);

/* Collective, once OUTPUT is complete: write OUTPUT.done (one line: the
 * output and `what`), durably, then remove the checkpoints. */
void run_mark_complete(const nrd_params *p, const char *what);

#endif
