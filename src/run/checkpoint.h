/* Checkpoints (doc/restart.md): the whole run state in one HDF5 file,
 * written collectively to FILE.tmp, flushed, then renamed to FILE after the
 * previous FILE has become FILE.prev.  FILE = output.file + ".ckpt".
 * No random-number state is stored: every draw is a function of (seed,
 * purpose, particle, step). */
#ifndef NRDIFF_CHECKPOINT_H
#define NRDIFF_CHECKPOINT_H

#include <stddef.h>

#include "config/params.h"
#include "run/runstate.h"

/* Checkpoint path (malloc'd): output.file + ".ckpt" (+ ".prev" if prev). */
char *checkpoint_path(const nrd_params *p, int prev);

/* Collective: write every rank's state. */
void checkpoint_write(const nrd_params *p, const run_shape *sh,
                      point_state *ps);

/* Collective: fill every rank's state (its blocks under the current
 * assignment, already set up in ps) from the newest valid checkpoint.
 * Returns NRD_OK, or NRD_ERR_INPUT with a message when a parameter that may
 * not change on restart differs (naming the key), or NRD_ERR_IO when
 * neither FILE nor FILE.prev is a valid checkpoint of this run.  Damaged
 * files (truncated, wrong signature or checksum) are reported with
 * nrd_warn and skipped.  *used receives the path read (malloc'd). */
int checkpoint_read(const nrd_params *p, const run_shape *sh, point_state *ps,
                    char **used, char *err, size_t errlen);

/* Remove FILE and FILE.prev (rank 0), after a completed run. */
void checkpoint_remove(const nrd_params *p);

#endif
