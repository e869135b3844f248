/* Whether a run fits in memory (see memory.h). */
#define _POSIX_C_SOURCE 200809L /* gethostname */
#include "run/memory.h"
#include "util/error.h"
#include "util/log.h"

#include <mpi.h>
#include <stdio.h>
#include <unistd.h>

int plan_check_memory(const run_plan *plan, int only_point, char *err,
                      size_t errlen) {
  int rank, size, on_node;
  NRD_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  NRD_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
  MPI_Comm node;
  NRD_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank,
                                    MPI_INFO_NULL, &node));
  NRD_MPI_CHECK(MPI_Comm_size(node, &on_node));
  int at;
  double mine = plan_rank_peak(plan, size, rank, only_point, &at);
  /* the node's total, and its largest rank (with the point it is at) */
  double total = 0;
  struct {
    double v;
    int i;
  } big = {mine, at}, node_big;
  NRD_MPI_CHECK(MPI_Allreduce(&mine, &total, 1, MPI_DOUBLE, MPI_SUM, node));
  NRD_MPI_CHECK(
      MPI_Allreduce(&big, &node_big, 1, MPI_DOUBLE_INT, MPI_MAXLOC, node));
  NRD_MPI_CHECK(MPI_Comm_free(&node));
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  double phys = pages > 0 && page > 0 ? (double)pages * page : 0;
  /* the worst node decides, on every rank alike */
  struct {
    double v;
    int i;
  } ratio = {phys > 0 ? total / phys : 0, rank}, worst;
  NRD_MPI_CHECK(MPI_Allreduce(&ratio, &worst, 1, MPI_DOUBLE_INT, MPI_MAXLOC,
                              MPI_COMM_WORLD));
  double v[5] = {total, phys, on_node, node_big.v, node_big.i};
  char host[256] = "";
  if (rank == worst.i) gethostname(host, sizeof host - 1);
  NRD_MPI_CHECK(MPI_Bcast(v, 5, MPI_DOUBLE, worst.i, MPI_COMM_WORLD));
  NRD_MPI_CHECK(MPI_Bcast(host, sizeof host, MPI_CHAR, worst.i, MPI_COMM_WORLD));
  if (v[1] <= 0 || worst.v <= 0.8) return NRD_OK;
  char need[32], have[32], each[32];
  plan_human_bytes(v[0], need, sizeof need);
  plan_human_bytes(v[1], have, sizeof have);
  plan_human_bytes(v[3], each, sizeof each);
  int pt = (int)v[4];
  const grid_point *g = pt >= 0 ? &plan->points[pt] : &plan->points[0];
  char where[400];
  snprintf(where, sizeof where,
           "about %s on node '%s' (%d rank(s) there, up to %s each, at grid "
           "point %d: d = %ld, n_train = %ld, %ld particles)",
           need, host, (int)v[2], each, pt, g->dimension, g->n_train,
           plan->particles);
  if (worst.v > 1.0) {
    snprintf(err, errlen,
             "the run does not fit in memory: it needs %s, and the node has "
             "%s of physical memory.  The estimate (the plan's) grows with "
             "ensemble.particles x grid.dimension (the particles' states), "
             "grid.dimension^2 (operators) and grid.n_train x grid.dimension "
             "(the training set): reduce them, or spread the ranks over more "
             "nodes",
             where, have);
    return NRD_ERR_INPUT;
  }
  if (rank == 0)
    nrd_warn("the run needs %s: %.0f %% of the node's %s of physical memory",
             where, 100.0 * worst.v, have);
  return NRD_OK;
}
