/* MPI test of the output file (io/h5out.h; tests/check_mpi.sh runs it at 1,
 * 2 and 3 ranks): a small output written with h5out_open,
 * h5out_write_point and h5out_close from synthetic points, then read back
 * by rank 0 with serial HDF5.  It must hold: every observable's value =
 * the block sums' total / the particle count (in block order, exactly),
 * the count's value the total; block_sum rows of every block from the rank
 * that holds it; the sampled trajectories from every rank; the protocols'
 * results and final sums; the point's attributes as rank 0 has them (the
 * other ranks pass other scalars); a failed point with its attributes only;
 * /code, /parameters and /grid.  h5out_abandon leaves no file.  Assertions
 * are reduced over ranks (mpi_assert.h). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpi_assert.h"
#include "mpi_main.h"
#include "io/h5out.h"
#include "util/error.h"
#include "util/log.h"

enum {
  D = 2,
  K = 2,
  PARTICLES = 10,
  BLOCK_SIZE = 4,
  B = 3, /* blocks of 4, 4, 2 */
  N_OUT = 3,
  N_FRAMES = 2,
  N_TRAJ = 3,
  FINAL_WIDTH = 3,
};
static const long OUT_STEP[N_OUT] = {0, 5, 10};
static const double OUT_TIME[N_OUT] = {1.0, 0.5, 0.0};
static const long FRAME_STEP[N_FRAMES] = {0, 10};
static const double FRAME_TIME[N_FRAMES] = {1.0, 0.0};
static const long TRAJ_IDS[N_TRAJ] = {0, 4, 8}; /* one in every block */

static int rank, nranks;

static long block_count(long b) {
  long left = PARTICLES - b * BLOCK_SIZE;
  return left < BLOCK_SIZE ? left : BLOCK_SIZE;
}

static int owner(long b) {
  return (int)((b + 1) % nranks); /* rank 0 need not hold block 0 */
}

/* The global block sums, n_out x B x record: counts in the count slot,
 * arbitrary values elsewhere. */
static double *global_blocks(const obs_layout *L) {
  double *v = calloc((size_t)N_OUT * B * L->record, sizeof *v);
  for (long i = 0; i < N_OUT; i++)
    for (long b = 0; b < B; b++)
      for (int k = 0; k < L->record; k++)
        v[((size_t)i * B + b) * L->record + k] =
            k == L->offset[OBS_COUNT] ? (double)block_count(b)
                                      : 0.1 * (i + 1) * (b + 2) + k / 3.0;
  return v;
}

static double position(long f, long j, int k) {
  return 100.0 * f + 10.0 * j + k + 0.5;
}

typedef struct {
  obs_layout L;
  proto_layout X;
  proto_results results;
  double curve[N_OUT];
  double *blocks, *local_records, *local_positions;
  long local_blocks[B], local_traj[N_TRAJ];
  h5out_point pt;
} synthetic;

/* Point `index`: this rank's blocks and trajectories; rank 0's scalars
 * differ from the others'. */
static void synthetic_build(synthetic *s, int index, const char *status) {
  memset(s, 0, sizeof *s);
  static const double means[K * D] = {1, 0, -1, 0};
  obs_layout_init(&s->L, D, K, means, 0);
  obs_layout_add(&s->L, OBS_FINAL, FINAL_WIDTH);
  s->X.f_count = 0, s->X.f_class = 1, s->X.f_nearest = 2;
  s->X.n_branch = 1;
  s->blocks = global_blocks(&s->L);
  long R = s->L.record, nlb = 0, nlt = 0;
  s->local_records = calloc((size_t)N_OUT * B * R, sizeof(double));
  for (long b = 0; b < B; b++)
    if (owner(b) == rank) s->local_blocks[nlb++] = b;
  for (long i = 0; i < N_OUT; i++)
    for (long ib = 0; ib < nlb; ib++)
      memcpy(s->local_records + ((size_t)i * nlb + ib) * R,
             s->blocks + ((size_t)i * B + s->local_blocks[ib]) * R,
             (size_t)R * sizeof(double));
  for (long j = 0; j < N_TRAJ; j++)
    if (owner(TRAJ_IDS[j] / BLOCK_SIZE) == rank) s->local_traj[nlt++] = j;
  s->local_positions = calloc((size_t)N_FRAMES * N_TRAJ * D, sizeof(double));
  for (long f = 0; f < N_FRAMES; f++)
    for (long jl = 0; jl < nlt; jl++)
      for (int k = 0; k < D; k++)
        s->local_positions[((size_t)f * nlt + jl) * D + k] =
            position(f, s->local_traj[jl], k);
  for (long i = 0; i < N_OUT; i++)
    s->curve[i] = 0.25 * i;
  s->results.n = 1;
  s->results.v[0] = (proto_dataset){.group = "speciation",
                                    .name = "test_curve",
                                    .description = "a curve of the test",
                                    .rank = 1,
                                    .dims = {N_OUT, 0},
                                    .data = rank == 0 ? s->curve : NULL};
  double mine = rank == 0 ? 1.0 : -99.0; /* only rank 0's may show */
  s->pt = (h5out_point){.index = index,
                        .dimension = D,
                        .n_train = 0,
                        .classes = K,
                        .separation = 4,
                        .strength = 0.5 + index,
                        .relaxation_rate = 0.75 * mine,
                        .entropy_production = 0.125 * mine,
                        .critical_kind = "speciation",
                        .critical_theory = 1.5 * mine,
                        .critical_measured = 1.25 * mine,
                        .critical_error = 0.0625 * mine,
                        .has_cloning = 1,
                        .critical_cloning = 2.5 * mine,
                        .critical_cloning_error = 0.5 * mine,
                        .failed = status != NULL,
                        .status = status ? status : "ok",
                        .warnings = "",
                        .layout = &s->L,
                        .n_out = N_OUT,
                        .out_step = OUT_STEP,
                        .out_time = OUT_TIME,
                        .blocks = rank == 0 ? s->blocks : NULL,
                        .n_blocks = B,
                        .n_local_blocks = nlb,
                        .local_blocks = s->local_blocks,
                        .local_records = s->local_records,
                        .n_traj = N_TRAJ,
                        .traj_ids = TRAJ_IDS,
                        .n_local_traj = nlt,
                        .local_traj = s->local_traj,
                        .n_frames = N_FRAMES,
                        .frame_step = FRAME_STEP,
                        .frame_time = FRAME_TIME,
                        .local_positions = s->local_positions,
                        .results = &s->results,
                        .protocols = &s->X};
}

static void synthetic_free(synthetic *s) {
  obs_layout_free(&s->L);
  free(s->blocks);
  free(s->local_records);
  free(s->local_positions);
}

/* ------------------------------------------------ reading back (rank 0) */

static char failure[512]; /* the first check that failed, on rank 0 */

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond) && !failure[0])                                                \
      snprintf(failure, sizeof failure, __VA_ARGS__);                          \
  } while (0)

static double attr_double(hid_t obj, const char *path, const char *name) {
  double v = NAN;
  hid_t a = H5Aopen_by_name(obj, path, name, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0 || H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) v = NAN;
  if (a >= 0) H5Aclose(a);
  return v;
}

/* A variable-length string attribute, copied into buf ("" if absent). */
static const char *attr_string(hid_t obj, const char *path, const char *name,
                               char *buf, size_t len) {
  buf[0] = 0;
  hid_t a = H5Aopen_by_name(obj, path, name, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0) return buf;
  hid_t t = H5Aget_type(a);
  char *v = NULL;
  if (H5Aread(a, t, &v) >= 0 && v) snprintf(buf, len, "%s", v);
  if (v) H5free_memory(v);
  H5Tclose(t);
  H5Aclose(a);
  return buf;
}

/* A dataset of doubles (malloc'd) and its number of elements. */
static double *dataset(hid_t f, const char *path, hsize_t *n) {
  *n = 0;
  hid_t ds = H5Dopen2(f, path, H5P_DEFAULT);
  if (ds < 0) return NULL;
  hid_t sp = H5Dget_space(ds);
  *n = (hsize_t)H5Sget_simple_extent_npoints(sp);
  double *v = calloc(*n ? *n : 1, sizeof *v);
  if (H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
    *n = 0;
  H5Sclose(sp);
  H5Dclose(ds);
  return v;
}

static int exists(hid_t f, const char *path) {
  return H5Lexists(f, path, H5P_DEFAULT) > 0;
}

/* Observable o of point 0: value, error and block_sum. */
static void check_observable(hid_t f, const synthetic *s, int o) {
  const obs_layout *L = &s->L;
  int m = L->width[o];
  char path[128];
  hsize_t n = 0;
  snprintf(path, sizeof path, "points/0000/observables/%s/value",
           obs_describe(o)->name);
  double *v = dataset(f, path, &n);
  CHECK(n == (hsize_t)N_OUT * m, "%s: %llu values", path,
        (unsigned long long)n);
  for (long i = 0; n && i < N_OUT; i++)
    for (int j = 0; j < m; j++) {
      double num = 0, den = 0; /* block order, as the writer sums */
      for (long b = 0; b < B; b++) {
        const double *r = s->blocks + ((size_t)i * B + b) * L->record;
        num += r[L->offset[o] + j];
        den += r[L->offset[OBS_COUNT]];
      }
      double want = o == OBS_COUNT ? num : num / den;
      CHECK(v[i * m + j] == want, "%s[%ld][%d] = %.17g, not %.17g", path, i, j,
            v[i * m + j], want);
    }
  free(v);
  snprintf(path, sizeof path, "points/0000/observables/%s/error",
           obs_describe(o)->name);
  CHECK(exists(f, path) == (o != OBS_COUNT), "%s: there or not", path);
  snprintf(path, sizeof path, "points/0000/observables/%s/block_sum",
           obs_describe(o)->name);
  v = dataset(f, path, &n);
  CHECK(n == (hsize_t)N_OUT * B * m, "%s: %llu values", path,
        (unsigned long long)n);
  for (long i = 0; n && i < N_OUT; i++)
    for (long b = 0; b < B; b++)
      CHECK(!memcmp(v + ((size_t)i * B + b) * m,
                    s->blocks + ((size_t)i * B + b) * L->record + L->offset[o],
                    (size_t)m * sizeof *v),
            "%s: row %ld of output %ld is not that block's", path, b, i);
  free(v);
}

static void check_file(const char *path, const synthetic *s, int n_params) {
  char buf[256];
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  CHECK(f >= 0, "cannot open %s", path);
  if (f < 0) return;
  CHECK(!strcmp(attr_string(f, ".", "file_format", buf, sizeof buf),
                "nrdiff-output"),
        "file_format '%s'", buf);
  CHECK(attr_double(f, "code", "wall_seconds") == 12.5, "wall_seconds");
  CHECK(attr_double(f, "code", "mpi_size") == nranks, "mpi_size");
  CHECK(!strcmp(attr_string(f, "code", "command_line", buf, sizeof buf),
                "nrdiff --test"),
        "command_line '%s'", buf);
  CHECK(!strcmp(attr_string(f, "parameters", "warnings", buf, sizeof buf),
                "a warning of the plan"),
        "parameters' warnings '%s'", buf);
  hid_t key = H5Dopen2(f, "parameters/key", H5P_DEFAULT);
  hid_t sp = key >= 0 ? H5Dget_space(key) : -1;
  CHECK(sp >= 0 && H5Sget_simple_extent_npoints(sp) == n_params,
        "parameters/key: not one per schema entry");
  if (sp >= 0) H5Sclose(sp);
  if (key >= 0) H5Dclose(key);
  hsize_t n;
  double *g = dataset(f, "grid/strength", &n);
  CHECK(n == 2 && g[0] == 0.5 && g[1] == 1.5, "grid/strength");
  free(g);

  /* point 0: rank 0's scalars, every observable, trajectories, results */
  const char *p0 = "points/0000";
  CHECK(attr_double(f, p0, "critical_time_measured") == 1.25,
        "critical_time_measured: not rank 0's");
  CHECK(attr_double(f, p0, "critical_time_cloning_error") == 0.5,
        "critical_time_cloning_error: not rank 0's");
  CHECK(attr_double(f, p0, "relaxation_rate") == 0.75, "relaxation_rate");
  CHECK(attr_double(f, p0, "n_blocks") == B, "n_blocks");
  CHECK(attr_double(f, p0, "strength") == 0.5, "strength");
  CHECK(!strcmp(attr_string(f, p0, "status", buf, sizeof buf), "ok"),
        "status '%s'", buf);
  CHECK(!strcmp(attr_string(f, p0, "critical_time_kind", buf, sizeof buf),
                "speciation"),
        "critical_time_kind '%s'", buf);
  for (int o = 0; o < OBS_N; o++)
    if (s->L.width[o] > 0 && o != OBS_FINAL) check_observable(f, s, o);
  CHECK(!exists(f, "points/0000/observables/final"), "final as observable");
  double *v = dataset(f, "points/0000/particles/trajectory/position/value", &n);
  CHECK(n == (hsize_t)N_FRAMES * N_TRAJ * D, "trajectories: %llu values",
        (unsigned long long)n);
  for (long fr = 0; n && fr < N_FRAMES; fr++)
    for (long j = 0; j < N_TRAJ; j++)
      for (int k = 0; k < D; k++)
        CHECK(v[((size_t)fr * N_TRAJ + j) * D + k] == position(fr, j, k),
              "trajectory %ld, frame %ld: not from its rank", j, fr);
  free(v);
  v = dataset(f, "points/0000/particles/trajectory/id", &n);
  CHECK(n == N_TRAJ && v[1] == TRAJ_IDS[1], "trajectory ids");
  free(v);
  v = dataset(f, "points/0000/speciation/test_curve", &n);
  CHECK(n == N_OUT && v[2] == s->curve[2], "the protocol's result");
  free(v);
  CHECK(!strcmp(attr_string(f, "points/0000/speciation/test_curve",
                            "description", buf, sizeof buf),
                "a curve of the test"),
        "the result's description '%s'", buf);
  v = dataset(f, "points/0000/final/block_sum", &n);
  CHECK(n == (hsize_t)B * FINAL_WIDTH, "final/block_sum: %llu values",
        (unsigned long long)n);
  for (long b = 0; n && b < B; b++)
    CHECK(!memcmp(v + b * FINAL_WIDTH,
                  s->blocks + ((size_t)(N_OUT - 1) * B + b) * s->L.record +
                      s->L.offset[OBS_FINAL],
                  FINAL_WIDTH * sizeof *v),
          "final/block_sum row %ld: not the last output's", b);
  free(v);
  CHECK(attr_double(f, "points/0000/final", "f_nearest") == 2,
        "final's offsets");

  /* point 1 failed: its attributes, nothing computed */
  const char *p1 = "points/0001";
  CHECK(!strcmp(attr_string(f, p1, "status", buf, sizeof buf),
                "failed: a non-finite state at step 3"),
        "failed point's status '%s'", buf);
  CHECK(attr_double(f, p1, "index") == 1 &&
            attr_double(f, p1, "strength") == 1.5,
        "failed point's attributes");
  CHECK(!exists(f, "points/0001/observables") &&
            !exists(f, "points/0001/particles") &&
            !exists(f, "points/0001/speciation") &&
            !exists(f, "points/0001/final"),
        "the failed point has more than its attributes");
  H5Fclose(f);
}

/* Every rank: rank 0's verdict. */
static void assert_no_failure(void) {
  MPI_Bcast(failure, sizeof failure, MPI_CHAR, 0, MPI_COMM_WORLD);
  if (rank == 0 && failure[0]) fprintf(stderr, "%s\n", failure);
  mpi_assert_all(failure[0] == 0);
  failure[0] = 0;
}

/* ------------------------------------------------------------- tests */

/* An output being written: parameters for output.file = scratch/name, a
 * plan of two grid points, h5out_open'ed, and the synthetic point 0. */
typedef struct {
  nrd_params p;
  grid_point points[2];
  run_plan plan;
  h5out h;
  synthetic ok;
  char tmp[600]; /* output.file.tmp */
} writing;

static void writing_open(writing *w, const char *name) {
  memset(w, 0, sizeof *w);
  char file[512];
  snprintf(file, sizeof file, "%s/%s", mpi_scratch, name);
  params_init_defaults(&w->p);
  free(w->p.output.file);
  w->p.output.file = strdup(file);
  w->p.ensemble.particles = PARTICLES;
  w->p.ensemble.block_size = BLOCK_SIZE;
  snprintf(w->tmp, sizeof w->tmp, "%s.tmp", file);
  for (int i = 0; i < 2; i++)
    w->points[i] = (grid_point){
        .index = i, .dimension = D, .separation = 4, .strength = 0.5 + i};
  w->plan = (run_plan){.n_points = 2,
                       .points = w->points,
                       .particles = PARTICLES,
                       .block_size = BLOCK_SIZE,
                       .n_blocks = B,
                       .warnings = "a warning of the plan"};
  h5out_open(&w->h, &w->p, &w->plan,
             rank == 0 ? "nrdiff --test" : "not rank 0's");
  synthetic_build(&w->ok, 0, NULL);
  h5out_write_point(&w->h, &w->p, &w->ok.pt);
}

static void writing_free(writing *w) {
  synthetic_free(&w->ok);
  params_free(&w->p);
}

static void test_written_file_holds_every_rank_s_part(void **state) {
  (void)state;
  writing w;
  writing_open(&w, "out.h5");
  synthetic failed;
  synthetic_build(&failed, 1, "failed: a non-finite state at step 3");
  h5out_write_point(&w.h, &w.p, &failed.pt);
  h5out_close(&w.h, rank == 0 ? 12.5 : -1);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    CHECK(access(w.tmp, F_OK) != 0, "the partial file is left behind");
    check_file(w.p.output.file, &w.ok, params_schema_size());
  }
  assert_no_failure();
  synthetic_free(&failed);
  writing_free(&w);
}

static void test_abandoned_file_is_removed(void **state) {
  (void)state;
  writing w;
  writing_open(&w, "abandoned.h5");
  mpi_assert_all(access(w.tmp, F_OK) == 0);
  h5out_abandon(&w.h);
  MPI_Barrier(MPI_COMM_WORLD);
  mpi_assert_all(access(w.tmp, F_OK) != 0 &&
                 access(w.p.output.file, F_OK) != 0);
  writing_free(&w);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_written_file_holds_every_rank_s_part),
      cmocka_unit_test(test_abandoned_file_is_removed),
  };
  mpi_test_begin(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  return mpi_test_end(cmocka_run_group_tests_name(
      "mpi_h5out", tests, mpi_scratch_make, mpi_scratch_remove));
}
