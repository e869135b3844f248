/* The run plan: the cartesian product of the grid axes and, for each grid
 * point, its ensemble of particles split into fixed-size blocks.  The block
 * size never depends on the number of ranks, which is what makes reductions
 * (done per block, in block order) independent of the decomposition. */
#ifndef NRDIFF_GRID_H
#define NRDIFF_GRID_H

#include <stdio.h>

#include "config/params.h"

typedef struct {
  int index;         /* position in the plan (0-based) */
  long dimension;    /* d */
  double separation; /* |mu|^2 / d */
  double strength;   /* g */
  long n_train;      /* 0 = exact mixture score */
} grid_point;

typedef struct {
  int n_points;
  grid_point *points;
  long particles;  /* per grid point */
  long block_size; /* particles per block (last block may be shorter) */
  long n_blocks;   /* per grid point */
  long steps;
  double *bytes;   /* per grid point: peak memory estimate of one rank */
  double *flops;   /* per grid point: arithmetic cost estimate */
  char *warnings;  /* the parameters' physics checks (diagnose.h), one a
                      line, or NULL; plan_free frees it */
  /* per grid point: bytes = bytes_fixed + particles x bytes_particle, the
   * parts any rank running blocks of the point needs, and each particle */
  double *bytes_fixed, *bytes_particle;
} run_plan;

/* Axes are ordered dimension (slowest), separation, strength, n_train
 * (fastest), so grid index = ((i_d * n_sep + i_sep) * n_g + i_g) * n_n + i_n. */
int plan_build(const nrd_params *p, run_plan *plan);
void plan_free(run_plan *plan);
/* Human-readable plan: grid points, particles, steps, memory, cost. */
void plan_print(const run_plan *plan, const nrd_params *p, int nranks,
                FILE *out);
/* The estimated peak memory of rank `rank` of nranks: the largest, over
 * the points it runs blocks of under plan_assign (only only_point if >= 0),
 * of the point's fixed part plus its particles' part; *at: that point (-1
 * if none).  Fair shares when the assignment is too big to build. */
double plan_rank_peak(const run_plan *plan, int nranks, int rank,
                      int only_point, int *at);
/* "1.5 GiB" */
void plan_human_bytes(double bytes, char *buf, size_t len);
/* Particles [first, first+count) of block b. */
void plan_block_range(const run_plan *plan, long b, long *first, long *count);

/* Work assignment: owner[i * n_blocks + b] is the rank that runs block b of
 * grid point i (-1: not run, when only_point >= 0 selects a single point).
 * Work items (point, block) cost their share of the point's estimated
 * flops.  Points are taken in descending cost, their blocks in order, and
 * the sequence is cut into nranks contiguous shares of the total (an item
 * goes to the share holding its midpoint): when no point is split, each
 * point's per-time work (its moments, the score's set-up) runs on one
 * rank only.  When a point would be split, the items are dealt instead
 * (longest first to the least loaded rank, ties: lowest rank), so that
 * ranks stepping in lockstep do the same work per step.  Either way loads
 * differ by at most two items' cost.  A pure function of the
 * plan, nranks and only_point: every rank computes the same table, and no
 * result depends on it (sums are kept per block).  load (nranks, may be
 * NULL) receives each rank's estimated flops. */
int plan_assign(const run_plan *plan, int nranks, int only_point, int *owner,
                double *load);

#endif
