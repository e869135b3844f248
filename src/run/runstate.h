/* The state of a run on one rank: for every grid point, the blocks this
 * rank owns, how far each has got, their block sums and sampled
 * trajectories, and the particle positions of blocks in progress.  Shared
 * by the driver (src/run/point.c, driver.c) and checkpoints (checkpoint*.c). */
#ifndef NRDIFF_RUNSTATE_H
#define NRDIFF_RUNSTATE_H

#include <stdint.h>

/* next_step of a block: NOT_STARTED, k in 0..steps (positions hold the
 * state at time t[k], before step k's observation), or DONE = steps + 1. */
enum { BLOCK_NOT_STARTED = -1 };

typedef struct {
  int d, record;   /* dimension; doubles per (output time, block) record */
  int width;       /* doubles per particle state row: the position (d) and
                      the protocols' state (protocol.h) */
  long n_blocks;   /* local blocks */
  long *blocks;    /* global block ids, ascending */
  long *first_row; /* first local particle row of each local block */
  long *count;     /* particles of each local block */
  long *next_step; /* per local block, see above */
  long n_rows;     /* local particles */
  double *Y;       /* n_rows x width states (NULL until the point starts) */
  double *records; /* n_out x n_blocks x record */
  long n_traj;     /* local sampled trajectories */
  long *traj;      /* their index in 0 .. n_traj_total-1, ascending */
  long *traj_row;  /* their local particle row */
  long *traj_block; /* their local block */
  double *positions; /* n_frames x n_traj x d */
} point_state;

/* Sizes common to every grid point of a run. */
typedef struct {
  int n_points;
  long n_blocks, block_size, particles, steps, n_out, n_frames, n_traj;
  const int *selected; /* n_points: 1 if the point runs (see --grid-index) */
  uint64_t data_digest; /* data.source: file: the prepared data's, else 0 */
} run_shape;

#endif
