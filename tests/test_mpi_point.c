/* MPI test of the driver's pieces (run at 1, 2 and 3 ranks by
 * tests/check_mpi.sh): small grid points run through the run's context,
 * point_setup, point_steps and point_free, in lockstep (run_sync), without
 * an output file.  Assertions are reduced over ranks (mpi_assert.h). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/linalg.h"
#include "core/rng.h"
#include "mpi_assert.h"
#include "run/runctx.h"

static char dir[256];

/* A run set up as run_simulation does it, up to the points; one_rank: rank
 * 0 holds every block (the others take part in the agreement only). */
typedef struct {
  nrd_params p;
  run_plan plan;
  run_ctx c;
  point_theory *th;
} test_run;

static void run_open(test_run *r, const char *yaml, int one_rank) {
  char text[4096], err[1024] = "";
  snprintf(text, sizeof text,
           "%s\noutput:\n  file: %s/out.h5\n  every: 10\n  trajectories: 6\n"
           "  trajectory_every: 7\ncheckpoint:\n  interval: 0\n"
           "  stop_file: %s/stop\n",
           yaml, dir, dir);
  params_init_defaults(&r->p);
  int rc =
      params_load_text(&r->p, "test.yml", text, strlen(text), err, sizeof err);
  if (rc != NRD_OK) fprintf(stderr, "%s\n", err);
  mpi_assert_all(rc == NRD_OK);
  mpi_assert_all(plan_build(&r->p, &r->plan) == NRD_OK);
  run_ctx_build(&r->c, &r->p, &r->plan, -1);
  if (one_rank)
    mpi_assert_all(plan_assign(&r->plan, 1, -1, r->c.owner, NULL) == NRD_OK);
  r->th = prepare_theory(&r->c);
  run_ctx_build_points(&r->c, r->th);
}

/* Every point through set-up, step loop and free, as run_points does;
 * returns whether no rank failed. */
static int run_all(test_run *r) {
  int ok = 1;
  for (int i = 0; i < r->plan.n_points; i++) {
    if (r->c.stopped || r->c.peer_failed) break;
    if (r->c.state[i].n_blocks == 0) continue;
    point_run pr;
    int rc = point_setup(&pr, &r->c, i);
    if (rc == NRD_OK) rc = point_steps(&pr, NULL);
    point_free(&pr);
    if (rc != NRD_OK) {
      fprintf(stderr, "grid point %d failed: %s\n", i, nrd_error_trace());
      r->c.failed = 1;
      ok = 0;
    }
  }
  return run_sync_until_done(&r->c) && ok;
}

static void run_close(test_run *r) {
  theory_free(r->th, r->plan.n_points);
  run_ctx_free(&r->c);
  plan_free(&r->plan);
  params_free(&r->p);
}

static int rank0(void) {
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank == 0;
}

/* Rank 0's reduced block sums of point i (n_out x n_blocks x record). */
static size_t blocks_size(const test_run *r, int i) {
  return (size_t)r->c.n_out * r->plan.n_blocks * r->c.layout[i].record;
}

/* Four points (mixture and empirical score, g = 0 and 1.5), blocks of 5
 * particles with a short last one, the protocols that run at both kinds of
 * point (collapse needs n_train > 0 everywhere), trajectories across
 * blocks. */
static const char *MIXED =
    "grid:\n  dimension: [3]\n  strength: [0, 1.5]\n  n_train: [0, 20]\n"
    "forward:\n  u: geometric\n  q: random\n"
    "data:\n  covariance: stationary\n"
    "ensemble:\n  particles: 33\n  block_size: 5\n"
    "time:\n  T: 4\n  steps: 60\n"
    "experiment:\n  protocol: [generate, speciation, uturn, forward]\n"
    "  branch_times: [0.5, 1.0]\n  uturn_times: [0.5]\n"
    "  reference_times: [0.5]\n";

/* The blocks dealt over the ranks give the same sums, to the bit, as rank
 * 0 running every block; every output time of every block counts its
 * particles once; nothing fails. */
static void test_block_sums_independent_of_rank_count(void **state) {
  (void)state;
  test_run spread, alone;
  run_open(&spread, MIXED, 0);
  run_open(&alone, MIXED, 1);
  mpi_assert_all(run_all(&spread));
  mpi_assert_all(run_all(&alone));
  mpi_assert_all(!spread.c.stopped && !alone.c.stopped);
  for (int i = 0; i < spread.plan.n_points; i++) {
    double *a = point_blocks_reduce(&spread.c, i);
    double *b = point_blocks_reduce(&alone.c, i);
    const obs_layout *L = &spread.c.layout[i];
    long B = spread.plan.n_blocks;
    int same = memcmp(a, b, blocks_size(&spread, i) * sizeof *a) == 0;
    int counted = 1, finite = 1;
    for (long o = 0; o < spread.c.n_out; o++)
      for (long bl = 0; bl < B; bl++) {
        long first, count;
        plan_block_range(&spread.plan, bl, &first, &count);
        const double *rec = a + ((size_t)o * B + bl) * L->record;
        counted &= rec[L->offset[OBS_COUNT]] == (double)count;
        finite &= isfinite(rec[L->offset[OBS_NORM2]]);
      }
    long failed_at = point_failed_at(L, spread.c.n_out, B, a);
    mpi_assert_all(!rank0() || same);
    mpi_assert_all(!rank0() || counted);
    mpi_assert_all(!rank0() || (finite && failed_at < 0));
    mpi_assert_all(spread.c.point_failed[i] == 0);
    free(a);
    free(b);
  }
  /* every block of every point ran to the end (each rank its own) */
  int ended = 1;
  for (int i = 0; i < spread.plan.n_points; i++)
    for (long ib = 0; ib < spread.c.state[i].n_blocks; ib++)
      ended &= spread.c.state[i].next_step[ib] == spread.plan.steps + 1;
  mpi_assert_all(ended);
  run_close(&spread);
  run_close(&alone);
}

/* At the first output time (t = T, before any step) the block sums are
 * those of the initial state N(0, S): particle i is L xi_i with L L^T = S
 * and xi_i its own normals (RNG_PURPOSE_INIT), recomputed here. */
static void test_initial_block_sums_known(void **state) {
  (void)state;
  test_run r;
  run_open(&r,
           "grid:\n  dimension: [3]\n  strength: [0.5]\n"
           "forward:\n  u: geometric\n  q: random\n"
           "ensemble:\n  particles: 23\n  block_size: 4\n"
           "time:\n  T: 3\n  steps: 20\n",
           0);
  mpi_assert_all(run_all(&r));
  double *blocks = point_blocks_reduce(&r.c, 0);
  model m;
  char err[512];
  mpi_assert_all(model_build(&m, &r.p, &r.plan.points[0], NULL, err,
                             sizeof err) == NRD_OK);
  int d = m.d, ok = 1;
  double L[9], xi[3];
  mpi_assert_all(la_cholesky(d, m.op.S, L) == NRD_OK);
  const obs_layout *lay = &r.c.layout[0];
  for (long b = 0; b < r.plan.n_blocks; b++) {
    long first, count;
    plan_block_range(&r.plan, b, &first, &count);
    double norm2 = 0, pos[3] = {0, 0, 0};
    for (long i = first; i < first + count; i++) {
      rng_normals(m.seed, RNG_PURPOSE_INIT, (uint64_t)i, 0, (size_t)d, xi);
      for (int j = 0; j < d; j++) {
        double y = 0;
        for (int l = 0; l <= j; l++)
          y += L[j * d + l] * xi[l];
        pos[j] += y;
        norm2 += y * y;
      }
    }
    const double *rec = blocks + (size_t)b * lay->record; /* output 0 */
    ok &= fabs(rec[lay->offset[OBS_NORM2]] - norm2) <= 1e-12 * norm2;
    for (int j = 0; j < d; j++)
      ok &= fabs(rec[lay->offset[OBS_POSITION] + j] - pos[j]) <=
            1e-12 * (1 + sqrt(norm2));
    ok &= rec[lay->offset[OBS_COUNT]] == (double)count;
  }
  mpi_assert_all(!rank0() || ok);
  model_free(&m);
  free(blocks);
  run_close(&r);
}

/* g = 1e6 with Euler: the state of point 1 grows by 1e5 per step and is
 * not finite by step 70 (an output time).  The point is marked failed (its
 * |y|^2 sums NaN from some output time on, every block stopped, warned
 * where it happened), the run itself does not fail, the handled failure
 * leaves no trace, and point 0 is untouched. */
static void test_failing_point_marked(void **state) {
  (void)state;
  test_run r;
  nrd_error_reset();
  run_open(&r,
           "grid:\n  dimension: [2]\n  strength: [0, 1000000]\n"
           "forward:\n  u: geometric\n  q: random\n"
           "integrator:\n  scheme: euler\n"
           "ensemble:\n  particles: 40\n  block_size: 10\n"
           "time:\n  T: 4\n  steps: 80\n",
           0);
  mpi_assert_all(run_all(&r));
  mpi_assert_all(!r.c.failed && !r.c.peer_failed && !r.c.stopped);
  mpi_assert_all(nrd_error_trace()[0] == '\0');
  long B = r.plan.n_blocks;
  double *good = point_blocks_reduce(&r.c, 0);
  double *bad = point_blocks_reduce(&r.c, 1);
  long good_at = point_failed_at(&r.c.layout[0], r.c.n_out, B, good);
  long bad_at = point_failed_at(&r.c.layout[1], r.c.n_out, B, bad);
  mpi_assert_all(!rank0() || (good_at < 0 && bad_at >= 0));
  int seen = r.c.point_failed[1] > 0, seen_any = 0;
  MPI_Allreduce(&seen, &seen_any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  mpi_assert_all(seen_any && r.c.point_failed[0] == 0);
  int stopped = 1;
  for (long ib = 0; ib < r.c.state[1].n_blocks; ib++)
    stopped &= r.c.state[1].next_step[ib] == r.plan.steps + 1;
  mpi_assert_all(stopped);
  free(good);
  free(bad);
  run_close(&r);
}

/* The stop file, seen by rank 0 at the first agreement: every rank stops
 * there with the same reason, the checkpoint is written, the stop file is
 * gone, and no block made a step. */
static void test_stop_file_agreed(void **state) {
  (void)state;
  test_run r;
  run_open(&r,
           "grid:\n  dimension: [2]\n  strength: [0, 1]\n"
           "ensemble:\n  particles: 30\n  block_size: 10\n"
           "time:\n  T: 4\n  steps: 20\n",
           0);
  if (rank0()) {
    FILE *f = fopen(r.p.checkpoint.stop_file, "w");
    if (f) fclose(f);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  mpi_assert_all(run_all(&r));
  mpi_assert_all(r.c.stopped && r.c.rounds == 1);
  char reason[256];
  memcpy(reason, r.c.stop_reason, sizeof reason);
  MPI_Bcast(reason, sizeof reason, MPI_CHAR, 0, MPI_COMM_WORLD);
  mpi_assert_all(strcmp(reason, r.c.stop_reason) == 0);
  mpi_assert_all(strncmp(r.c.stop_reason, "stop file ", 10) == 0);
  char ckpt[600];
  snprintf(ckpt, sizeof ckpt, "%s.ckpt", r.p.output.file);
  mpi_assert_all(!rank0() || (access(r.p.checkpoint.stop_file, F_OK) != 0 &&
                              access(ckpt, F_OK) == 0));
  int unstepped = 1;
  for (int i = 0; i < r.plan.n_points; i++)
    for (long ib = 0; ib < r.c.state[i].n_blocks; ib++)
      unstepped &= r.c.state[i].next_step[ib] <= 0;
  mpi_assert_all(unstepped);
  run_close(&r);
  if (rank0()) unlink(ckpt);
}

/* A set-up that fails says where and why: the U file of point 0 cannot be
 * read when the point runs (its theory was built from a good one). */
static void test_setup_failure_traced(void **state) {
  (void)state;
  test_run r;
  run_open(&r,
           "grid:\n  dimension: [2]\n  strength: [0]\n"
           "ensemble:\n  particles: 8\n  block_size: 4\n"
           "time:\n  T: 4\n  steps: 5\n",
           1);
  nrd_params bad;
  params_init_defaults(&bad);
  char text[512], err[1024] = "";
  snprintf(text, sizeof text,
           "grid:\n  dimension: [2]\n  strength: [0]\nforward:\n  u: file\n"
           "  u_file: %s/missing.h5\nensemble:\n  particles: 8\n"
           "  block_size: 4\ntime:\n  T: 4\n  steps: 5\n",
           dir);
  mpi_assert_all(params_load_text(&bad, "bad.yml", text, strlen(text), err,
                                  sizeof err) == NRD_OK);
  r.c.p = &bad;
  int rc = NRD_OK;
  if (rank0()) { /* rank 0 holds the blocks: no agreement is reached */
    point_run pr;
    rc = point_setup(&pr, &r.c, 0);
    point_free(&pr);
  }
  const char *trace = nrd_error_trace();
  if (rank0() && rc != NRD_OK) fprintf(stderr, "trace: %s\n", trace);
  mpi_assert_all(!rank0() || (rc != NRD_OK && strstr(trace, "missing.h5") &&
                              strstr(trace, "src/run/point.c") &&
                              strstr(trace, "in point_setup")));
  nrd_error_reset();
  r.c.p = &r.p;
  params_free(&bad);
  run_close(&r);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  nrd_log_init(MPI_COMM_WORLD, 0);
  if (rank0()) {
    snprintf(dir, sizeof dir, "/tmp/nrdiff-mpi-point-XXXXXX");
    if (!mkdtemp(dir)) dir[0] = '\0';
  }
  MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
  /* only rank 0 reports, the others' CMocka output is redundant */
  if (!rank0()) cmocka_set_message_output(CM_OUTPUT_SUBUNIT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_block_sums_independent_of_rank_count),
      cmocka_unit_test(test_initial_block_sums_known),
      cmocka_unit_test(test_failing_point_marked),
      cmocka_unit_test(test_stop_file_agreed),
      cmocka_unit_test(test_setup_failure_traced),
  };
  int failed = cmocka_run_group_tests_name("mpi_point", tests, NULL, NULL);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank0()) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  }
  MPI_Finalize();
  return failed ? 1 : 0;
}
