/* The run's HDF5 output file (layout: doc/file-format.md), written with
 * parallel HDF5 over MPI_COMM_WORLD once its name has been checked and
 * locked (output_target.h).  Every function is collective: every rank calls
 * it with the same arguments except where a comment says "local"; ranks
 * with nothing to write select nothing.  HDF5 failures abort with file:line
 * and HDF5's message (NRD_H5_CHECK). */
#ifndef NRDIFF_H5OUT_H
#define NRDIFF_H5OUT_H

#include <hdf5.h>

#include "core/grid.h"
#include "core/dataset.h"
#include "core/observe.h"
#include "core/protocol.h"
#include "config/params.h"

typedef struct {
  hid_t file, dxpl;
  char *path, *tmp_path;
} h5out;

/* Create output.file.tmp and write /h5md, /code, /parameters, /grid.
 * command_line: the program's arguments joined by spaces (rank 0's is used). */
void h5out_open(h5out *h, const nrd_params *p, const run_plan *plan,
                const char *command_line);

/* Results of one grid point.  Scalars and `blocks` are rank 0's (others may
 * pass anything: rank 0's values are written); local block and trajectory
 * data are each rank's own. */
typedef struct {
  int index;
  long dimension, n_train, classes;
  double separation, strength;
  double relaxation_rate, entropy_production;
  const char *critical_kind; /* "speciation" or "collapse" */
  /* the headline critical time (clone-free: speciation_phi through F(1),
   * Y2 through 1/2), its jackknife error; has_cloning: the cloning protocol
   * of the kind ran (same on every rank), critical_cloning its estimate */
  double critical_theory, critical_measured, critical_error;
  int has_cloning;
  double critical_cloning, critical_cloning_error;
  /* an empirical score of labelled training points (same on every rank):
   * its clone-free t_S, the t_S of its data's classes and the class-free
   * one of their covariance */
  int labelled;
  double speciation_measured, speciation_error, speciation_theory,
      speciation_covariance;
  int has_speciation_cloning; /* and its speciation protocol ran */
  double speciation_cloning, speciation_cloning_error;
  /* "ok" or "failed: why" (same on every rank); a failed point is written
   * with its attributes only: nothing is computed from a non-finite state */
  int failed;
  const char *status;
  const char *warnings; /* the point's physics checks (diagnose.h) or "" */
  const obs_layout *layout;
  long n_out;
  const long *out_step;
  const double *out_time;
  const double *blocks; /* rank 0: n_out x n_blocks x record, every block's
                           sums (the reduction), for values and errors */
  long n_blocks;       /* of the grid point */
  long n_local_blocks; /* local: blocks held here, ascending ids */
  const long *local_blocks;
  const double *local_records; /* n_out x n_local_blocks x record */
  long n_traj, n_frames;
  const long *traj_ids;     /* n_traj global particle ids */
  const long *frame_step;   /* n_frames */
  const double *frame_time; /* n_frames */
  long n_local_traj;        /* local: sampled trajectories held here */
  const long *local_traj;   /* their indices in 0 .. n_traj-1, ascending */
  const double *local_positions; /* n_frames x n_local_traj x dimension */
  const proto_results *results;  /* the protocols' results (data: rank 0) */
  const proto_layout *protocols; /* their end-of-run sums' layout */
} h5out_point;

void h5out_write_point(h5out *h, const nrd_params *p, const h5out_point *pt);
/* Collective: /data, what a run of data.source: file used (the file, its
 * points and classes, the normalisation, a digest of the prepared data). */
void h5out_write_data(h5out *h, const nrd_params *p, const data_set *D);

/* After a failure: close and delete FILE.tmp (FILE is untouched). */
void h5out_abandon(h5out *h);

/* Record the wall time, close, and rename FILE.tmp to FILE. */
void h5out_close(h5out *h, double wall_seconds);

#endif
