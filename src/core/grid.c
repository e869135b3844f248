/* Run plan: grid points, blocks, and cost/memory estimates (see grid.h). */
#include "core/grid.h"
#include "util/error.h"
#include "core/score.h"

#include <math.h>
#include <stdlib.h>

/* Rough estimates, good to a factor of two: they size allocations in the
 * dry-run report and balance work, nothing depends on them numerically. */
static void estimate(const nrd_params *p, const grid_point *g, long block,
                     double *bytes, double *fixed, double *per_particle,
                     double *flops) {
  double d = (double)g->dimension, n = (double)g->n_train;
  double P = (double)p->ensemble.particles;
  double K = (double)p->data.classes;
  double steps = (double)p->time.steps;
  double blk =
      (double)(block < p->ensemble.particles ? block : p->ensemble.particles);
  /* operator: ~12 d x d matrices; mixture: K Cholesky factors and inverses */
  double mat = 12.0 * d * d + 2.0 * K * d * d;
  /* protocols: trajectories carried per particle (clones and U-turns, each
   * alive from its time down to t_min) and their share of the run */
  int spec = params_has_protocol(p, "speciation");
  int coll = params_has_protocol(p, "collapse") && g->n_train > 0;
  int ut = params_has_protocol(p, "uturn");
  int fwd = params_has_protocol(p, "forward");
  double span = p->time.T - p->time.t_min, rows = 1, alive = 1;
  const nrd_dlist *bt = &p->experiment.branch_times;
  const nrd_dlist *uts = &p->experiment.uturn_times;
  for (int k = 0; (spec || coll) && k < bt->n; k++)
    rows += 1, alive += (bt->v[k] - p->time.t_min) / span;
  for (int k = 0; ut && k < uts->n; k++)
    rows += 1, alive += (uts->v[k] - p->time.t_min) / span;
  int nref = p->experiment.reference_times.n ? p->experiment.reference_times.n : 1;
  if (fwd) rows += 2 + 2.0 * nref;
  /* particles (state rows, score, noise) and per-block scratch */
  double part = (rows + 3.0) * P * d + 4.0 * blk * d;
  /* empirical score: training set, its image and whitened image, and the
   * logits of a block (score.h: all n, or at least NRD_SCORE_BLOCK training
   * points at a time, within NRD_SCORE_MAX_LOGITS) */
  double logits = blk * NRD_SCORE_BLOCK;
  if (logits < (double)NRD_SCORE_MAX_LOGITS) logits = (double)NRD_SCORE_MAX_LOGITS;
  if (logits > blk * n) logits = blk * n;
  double emp = n > 0 ? 3.0 * n * d + logits : 0.0;
  *bytes = 8.0 * (mat + part + emp);
  /* the same, split into what a rank holding any of the point's blocks
   * needs whatever its share, and what each of its particles adds */
  *fixed = 8.0 * (mat + 4.0 * blk * d + emp);
  *per_particle = 8.0 * (rows + 3.0) * d;
  /* per step: the exact-time moments (e^{-At} and Delta_t, each a d x d
   * expm for most t, plus the mixture's Gamma_t^{-1}: ~60 d^3 measured at
   * d = 512; O(d^2) when the operator is diagonal: U diagonal, no
   * rotation; a log grid's exponential scheme adds a 2d x 2d expm per step,
   * not counted), the score
   * (mixture: K Gamma^{-1} products; empirical: two GEMMs) and the update
   * (d x d maps; scalings when U = u I without rotation), plus the
   * memory-bound work per particle and step (normals, observables,
   * bookkeeping, clones), in GEMM-flop equivalents calibrated on the default
   * job (d = 2) and Biroli's speciation input at d = 256 and 1024 */
  int rot = p->forward.q != Q_NONE && g->strength != 0;
  int diag = p->forward.u != U_FILE && !rot;
  int scalar = p->forward.u == U_ISOTROPIC && !rot;
  double moments = diag ? 50.0 * d * d : 60.0 * d * d * d;
  double maps = p->integrator.scheme == SCHEME_EXPONENTIAL ? 4.0 : 1.0;
  double per_step = P * (2000.0 + 350.0 * d);
  if (!scalar) per_step += 2.0 * maps * P * d * d;
  if (n > 0) /* its -Delta^{-1} y rides on the update's map (step_fold) */
    per_step += 4.0 * P * n * d;
  else if (!scalar)
    per_step += 2.0 * P * K * d * d;
  per_step = moments + per_step * alive;
  if (fwd) per_step += 4.0 * P * d * d; /* two exact forward transitions */
  *flops = steps * per_step;
}

int plan_build(const nrd_params *p, run_plan *plan) {
  const nrd_ilist *dim = &p->grid.dimension, *ntr = &p->grid.n_train;
  const nrd_dlist *sep = &p->grid.separation, *str = &p->grid.strength;
  plan->n_points = dim->n * sep->n * str->n * ntr->n;
  plan->particles = p->ensemble.particles;
  plan->block_size = p->ensemble.block_size;
  plan->n_blocks = (plan->particles + plan->block_size - 1) / plan->block_size;
  plan->steps = p->time.steps;
  plan->warnings = NULL;
  plan->points = calloc((size_t)plan->n_points, sizeof *plan->points);
  plan->bytes = calloc((size_t)plan->n_points, sizeof *plan->bytes);
  plan->flops = calloc((size_t)plan->n_points, sizeof *plan->flops);
  plan->bytes_fixed = calloc((size_t)plan->n_points, sizeof *plan->bytes_fixed);
  plan->bytes_particle =
      calloc((size_t)plan->n_points, sizeof *plan->bytes_particle);
  if (!plan->points || !plan->bytes || !plan->flops || !plan->bytes_fixed ||
      !plan->bytes_particle) {
    int n = plan->n_points;
    plan_free(plan);
    return NRD_FAIL(NRD_ERR_NOMEM, "the plan of %d grid points", n);
  }
  int i = 0;
  for (int a = 0; a < dim->n; a++)
    for (int b = 0; b < sep->n; b++)
      for (int c = 0; c < str->n; c++)
        for (int e = 0; e < ntr->n; e++, i++) {
          grid_point *g = &plan->points[i];
          g->index = i;
          g->dimension = dim->v[a];
          g->separation = sep->v[b];
          g->strength = str->v[c];
          g->n_train = ntr->v[e];
          estimate(p, g, plan->block_size, &plan->bytes[i],
                   &plan->bytes_fixed[i], &plan->bytes_particle[i],
                   &plan->flops[i]);
        }
  return NRD_OK;
}

void plan_free(run_plan *plan) {
  free(plan->points);
  free(plan->bytes);
  free(plan->flops);
  free(plan->warnings);
  plan->warnings = NULL;
  free(plan->bytes_fixed);
  free(plan->bytes_particle);
  plan->points = NULL;
  plan->bytes = plan->flops = plan->bytes_fixed = plan->bytes_particle = NULL;
  plan->n_points = 0;
}

void plan_block_range(const run_plan *plan, long b, long *first, long *count) {
  *first = b * plan->block_size;
  long left = plan->particles - *first;
  *count = left < plan->block_size ? left : plan->block_size;
}

void plan_human_bytes(double b, char *buf, size_t len) {
  const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (b >= 1024.0 && u < 6) {
    b /= 1024.0;
    u++;
  }
  snprintf(buf, len, "%.1f %s", b, unit[u]);
}

void plan_print(const run_plan *plan, const nrd_params *p, int nranks,
                FILE *out) {
  double total_flops = 0.0, peak = 0.0;
  for (int i = 0; i < plan->n_points; i++) {
    total_flops += plan->flops[i];
    if (plan->bytes[i] > peak) peak = plan->bytes[i];
  }
  char mem[32];
  plan_human_bytes(peak, mem, sizeof mem);
  fprintf(out, "Run plan\n");
  fprintf(out,
          "  grid points        : %d (dimension x separation x strength "
          "x n_train = %d x %d x %d x %d)\n",
          plan->n_points, p->grid.dimension.n, p->grid.separation.n,
          p->grid.strength.n, p->grid.n_train.n);
  fprintf(out, "  particles          : %ld per grid point, %ld blocks of %ld\n",
          plan->particles, plan->n_blocks, plan->block_size);
  fprintf(out, "  time steps         : %ld from t = %g down to t = %g (%s)\n",
          plan->steps, p->time.T, p->time.t_min,
          p->time.spacing == SPACING_LOG ? "log-spaced" : "uniform");
  fprintf(out, "  MPI ranks          : %d\n", nranks);
  fprintf(out, "  memory (per rank)  : about %s at the largest grid point\n",
          mem);
  /* 20 GFLOP/s per rank is a conservative sustained rate for this code mix */
  double seconds = total_flops / (20e9 * (nranks > 0 ? nranks : 1));
  fprintf(out,
          "  cost               : about %.3g GFLOP, roughly %.3g s on %d "
          "rank(s)\n",
          total_flops / 1e9, seconds, nranks);
  fprintf(out, "  %5s %9s %11s %10s %9s %12s %12s\n", "index", "dimension",
          "separation", "strength", "n_train", "memory", "GFLOP");
  for (int i = 0; i < plan->n_points; i++) {
    const grid_point *g = &plan->points[i];
    plan_human_bytes(plan->bytes[i], mem, sizeof mem);
    fprintf(out, "  %5d %9ld %11g %10g %9ld %12s %12.3g\n", g->index,
            g->dimension, g->separation, g->strength, g->n_train, mem,
            plan->flops[i] / 1e9);
  }
}

typedef struct {
  double cost;
  int point;
  long block;
} work_item;

/* Descending cost, then ascending (point, block): a total order, so qsort's
 * instability cannot make ranks disagree. */
static int by_cost(const void *pa, const void *pb) {
  const work_item *a = pa, *b = pb;
  if (a->cost != b->cost) return a->cost > b->cost ? -1 : 1;
  if (a->point != b->point) return a->point < b->point ? -1 : 1;
  return (a->block > b->block) - (a->block < b->block);
}

int plan_assign(const run_plan *plan, int nranks, int only_point, int *owner,
                double *load) {
  long B = plan->n_blocks, n = 0;
  work_item *items = malloc((size_t)plan->n_points * B * sizeof *items);
  double *ld = calloc((size_t)nranks, sizeof *ld);
  if (!items || !ld) {
    free(items);
    free(ld);
    return NRD_FAIL(NRD_ERR_NOMEM, "the work list of %d grid points",
                    plan->n_points);
  }
  for (int i = 0; i < plan->n_points; i++)
    for (long b = 0; b < B; b++) {
      owner[(size_t)i * B + b] = -1;
      if (only_point >= 0 && i != only_point) continue;
      long first, count;
      plan_block_range(plan, b, &first, &count);
      items[n++] = (work_item){plan->flops[i] * count / plan->particles, i, b};
    }
  /* points in descending cost (blocks of a point in order, the last one may
   * be smaller: sort on the point's cost, not the item's) */
  for (long k = 0; k < n; k++)
    items[k].cost = plan->flops[items[k].point];
  qsort(items, (size_t)n, sizeof *items, by_cost);
  double total = 0;
  for (long k = 0; k < n; k++) {
    long first, count;
    plan_block_range(plan, items[k].block, &first, &count);
    items[k].cost *= (double)count / plan->particles;
    total += items[k].cost;
  }
  /* cut the sequence into nranks contiguous shares: an item goes to the
   * rank whose share [r, r + 1) fair contains the item's midpoint */
  double fair = total / nranks, before = 0;
  int split = 0;
  for (long k = 0; k < n; k++) {
    double mid = before + 0.5 * items[k].cost;
    int r = fair > 0 ? (int)(mid / fair) : 0;
    if (r > nranks - 1) r = nranks - 1;
    owner[(size_t)items[k].point * B + items[k].block] = r;
    ld[r] += items[k].cost;
    before += items[k].cost;
    split |= k > 0 && items[k].point == items[k - 1].point &&
             r != owner[(size_t)items[k - 1].point * B + items[k - 1].block];
  }
  /* Ranks step in lockstep (one agreement per step), so a split point,
   * whose blocks are fewer on each rank than a whole point's, leaves the
   * other rank waiting at every step of that phase (3 points on 2 ranks:
   * 20 % slower).  Then deal the items instead: longest first to the least
   * loaded rank, which gives every rank a share of every point. */
  if (split) {
    qsort(items, (size_t)n, sizeof *items, by_cost);
    for (int q = 0; q < nranks; q++)
      ld[q] = 0;
    for (long k = 0; k < n; k++) {
      int r = 0;
      for (int q = 1; q < nranks; q++)
        if (ld[q] < ld[r]) r = q;
      owner[(size_t)items[k].point * B + items[k].block] = r;
      ld[r] += items[k].cost;
    }
  }
  if (load)
    for (int q = 0; q < nranks; q++)
      load[q] = ld[q];
  free(items);
  free(ld);
  return NRD_OK;
}

/* ------------------------------------------------------------ memory */

/* Above this many work items the assignment itself is too big to build
 * for a check (24 bytes each): the check assumes fair shares instead. */
enum { MEMORY_CHECK_MAX_ITEMS = 1 << 22 };

/* This rank's peak: the largest, over the points it runs blocks of, of the
 * point's fixed part plus its particles' part for the rows it holds (the
 * state of one point at a time is allocated: src/run/point.c).  *at: that point. */
double plan_rank_peak(const run_plan *plan, int nranks, int rank,
                      int only_point, int *at) {
  long B = plan->n_blocks;
  double peak = 0;
  *at = -1;
  int *owner = NULL;
  if ((double)plan->n_points * B <= MEMORY_CHECK_MAX_ITEMS) {
    owner = malloc((size_t)plan->n_points * B * sizeof *owner);
    if (owner && plan_assign(plan, nranks, only_point, owner, NULL) != NRD_OK) {
      free(owner);
      owner = NULL;
    }
  }
  /* without the table: a fair share of all particles run, plus two blocks
   * (loads differ by at most two items), at most a whole point */
  double n_run = only_point >= 0 ? 1 : plan->n_points;
  double fair = ceil(n_run * plan->particles / nranks) + 2.0 * plan->block_size;
  if (fair > plan->particles) fair = (double)plan->particles;
  for (int i = 0; i < plan->n_points; i++) {
    if (only_point >= 0 && i != only_point) continue;
    double rows = 0;
    if (owner) {
      for (long b = 0; b < B; b++)
        if (owner[(size_t)i * B + b] == rank) {
          long first, count;
          plan_block_range(plan, b, &first, &count);
          rows += (double)count;
        }
    } else {
      rows = fair;
    }
    if (rows == 0) continue;
    double bytes = plan->bytes_fixed[i] + plan->bytes_particle[i] * rows;
    if (bytes > peak) peak = bytes, *at = i;
  }
  free(owner);
  return peak;
}
