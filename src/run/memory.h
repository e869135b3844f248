/* Whether a run fits in the memory of the nodes it runs on. */
#ifndef NRDIFF_MEMORY_H
#define NRDIFF_MEMORY_H

#include <stddef.h>

#include "core/grid.h"

/* Collective (MPI_COMM_WORLD): whether the run fits in memory.  Each rank's
 * peak is the plan's estimate for the rows it runs under plan_assign (only
 * only_point if >= 0); the ranks of one node (MPI_COMM_TYPE_SHARED) share
 * its physical memory (sysconf).  Beyond it: NRD_ERR_INPUT, with a message
 * naming the estimate, the node's memory and the keys that drive it; above
 * 80 % a warning (rank 0).  Every rank gets the same answer. */
int plan_check_memory(const run_plan *plan, int only_point, char *err,
                      size_t errlen);

#endif
