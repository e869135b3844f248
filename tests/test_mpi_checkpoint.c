/* MPI test of checkpoints (run/checkpoint.h; tests/check_mpi.sh runs it at
 * 1, 2 and 3 ranks): a synthetic run state (three grid points of five
 * blocks, the last block short; blocks done, in progress and not started;
 * sampled trajectories) is written and read back, and every block's
 * next_step, records, particle states and trajectories must come back bit
 * for bit.  A damaged byte is a rejection (FILE.prev is used, and with both
 * damaged the read fails and forgets what it read); a changed key that may
 * not change on restart is NRD_ERR_INPUT naming it; another run shape with
 * the same parameters is damage.  Assertions are reduced over ranks.
 *
 *   test_mpi_checkpoint             all of that at this rank count
 *   test_mpi_checkpoint write DIR   write DIR/run.h5.ckpt, to be read ...
 *   test_mpi_checkpoint read DIR    ... at another rank count */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mpi_assert.h"
#include "mpi_main.h"
#include "run/checkpoint.h"
#include "util/error.h"
#include "util/log.h"

enum {
  POINTS = 3,
  BLOCKS = 5,
  BLOCK_SIZE = 4,
  PARTICLES = 18, /* the last block holds 2 */
  STEPS = 6,
  N_OUT = 3,
  N_FRAMES = 2,
  N_TRAJ = 4,
  DONE = STEPS + 1,
};

/* next_step of block b of point i: point 0 done, point 1 every kind (block
 * 4, the short one, in progress), point 2 not started */
static const long NEXT_STEP[POINTS][BLOCKS] = {
    {DONE, DONE, DONE, DONE, DONE},
    {BLOCK_NOT_STARTED, 0, 3, DONE, 5},
    {BLOCK_NOT_STARTED, BLOCK_NOT_STARTED, BLOCK_NOT_STARTED, BLOCK_NOT_STARTED,
     BLOCK_NOT_STARTED},
};
static const int SELECTED[POINTS] = {1, 1, 1};

static const char *shared; /* write/read mode: the directory given */

/* Per point: dimension, state width, record. */
static int dim_of(int i) {
  return 1 + i;
}
static int width_of(int i) {
  return dim_of(i) + 1;
}
static int record_of(int i) {
  return 3 + i;
}

/* The run's shape, with n_out output times. */
static run_shape shape(long n_out) {
  run_shape sh = {.selected = SELECTED};
  sh.n_points = POINTS, sh.n_blocks = BLOCKS, sh.block_size = BLOCK_SIZE;
  sh.particles = PARTICLES, sh.steps = STEPS, sh.n_out = n_out;
  sh.n_frames = N_FRAMES, sh.n_traj = N_TRAJ;
  return sh;
}

/* A double of arbitrary bits (splitmix64 of the arguments): any change of
 * any bit on the way shows. */
static double value(int generation, int kind, long a, long b, long c) {
  uint64_t z = ((uint64_t)generation << 56) ^ ((uint64_t)kind << 48) ^
               ((uint64_t)a << 32) ^ ((uint64_t)b << 16) ^ (uint64_t)c;
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return ((double)(z >> 11) * 0x1p-53 - 0.5) * 1e3;
}

static int rank_of_block(long b, int nranks) {
  return (int)(b % nranks); /* any assignment with ascending local blocks */
}

/* Point i's local state at this rank count, every value zero, as run.c
 * builds it before a restart (Y: NULL until the point runs). */
static void state_build(const run_shape *sh, int i, point_state *w) {
  int rank, nranks;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  memset(w, 0, sizeof *w);
  w->d = dim_of(i);
  w->width = width_of(i);
  w->record = record_of(i);
  w->blocks = calloc(BLOCKS, sizeof *w->blocks);
  w->first_row = calloc(BLOCKS, sizeof *w->first_row);
  w->count = calloc(BLOCKS, sizeof *w->count);
  w->next_step = calloc(BLOCKS, sizeof *w->next_step);
  w->traj = calloc(N_TRAJ, sizeof *w->traj);
  w->traj_row = calloc(N_TRAJ, sizeof *w->traj_row);
  w->traj_block = calloc(N_TRAJ, sizeof *w->traj_block);
  for (long b = 0; b < BLOCKS; b++) {
    if (rank_of_block(b, nranks) != rank) continue;
    long first = b * BLOCK_SIZE, left = PARTICLES - first;
    long count = left < BLOCK_SIZE ? left : BLOCK_SIZE;
    long ib = w->n_blocks++;
    w->blocks[ib] = b;
    w->first_row[ib] = w->n_rows;
    w->count[ib] = count;
    w->next_step[ib] = BLOCK_NOT_STARTED;
    for (long j = 0; j < N_TRAJ; j++) {
      long id = j * PARTICLES / N_TRAJ;
      if (id >= first && id < first + count) {
        w->traj[w->n_traj] = j;
        w->traj_block[w->n_traj] = ib;
        w->traj_row[w->n_traj++] = w->n_rows + (id - first);
      }
    }
    w->n_rows += count;
  }
  w->records = calloc((size_t)sh->n_out * (w->n_blocks + 1) * w->record,
                      sizeof *w->records);
  w->positions =
      calloc((size_t)N_FRAMES * (w->n_traj + 1) * w->d, sizeof *w->positions);
}

/* The state a run of `generation` has reached: what each block holds by
 * its next_step (records and trajectories once started, particle states
 * while in progress), zero elsewhere. */
static void state_fill(const run_shape *sh, int i, int generation,
                       point_state *w) {
  free(w->Y);
  w->Y = calloc((size_t)(w->n_rows + 1) * w->width, sizeof *w->Y);
  for (long ib = 0; ib < w->n_blocks; ib++) {
    long b = w->blocks[ib], next = NEXT_STEP[i][b];
    w->next_step[ib] = next;
    if (next == BLOCK_NOT_STARTED) continue;
    for (long o = 0; o < sh->n_out; o++)
      for (int k = 0; k < w->record; k++)
        w->records[((size_t)o * w->n_blocks + ib) * w->record + k] =
            value(generation, 0, i, o * BLOCKS + b, k);
    if (next <= STEPS)
      for (long r = 0; r < w->count[ib]; r++)
        for (int k = 0; k < w->width; k++)
          w->Y[(size_t)(w->first_row[ib] + r) * w->width + k] =
              value(generation, 1, i, b * BLOCK_SIZE + r, k);
  }
  for (long j = 0; j < w->n_traj; j++) {
    if (w->next_step[w->traj_block[j]] == BLOCK_NOT_STARTED) continue;
    for (long f = 0; f < N_FRAMES; f++)
      for (int k = 0; k < w->d; k++)
        w->positions[((size_t)f * w->n_traj + j) * w->d + k] =
            value(generation, 2, i, f * N_TRAJ + w->traj[j], k);
  }
}

static void state_free(point_state *w) {
  void *owned[] = {w->blocks,     w->first_row, w->count, w->next_step,
                   w->Y,          w->records,   w->traj,  w->traj_row,
                   w->traj_block, w->positions};
  for (size_t k = 0; k < sizeof owned / sizeof *owned; k++)
    free(owned[k]);
  memset(w, 0, sizeof *w);
}

/* Whether the state read equals the state written, bit for bit: next_step,
 * records, trajectories of every local block, and the particle states of
 * those in progress. */
static int state_equal(const run_shape *sh, const point_state *got,
                       const point_state *want) {
  size_t B = (size_t)want->n_blocks;
  int same =
      got->n_blocks == want->n_blocks &&
      !memcmp(got->next_step, want->next_step, B * sizeof(long)) &&
      !memcmp(got->records, want->records,
              (size_t)sh->n_out * B * want->record * sizeof(double)) &&
      !memcmp(got->positions, want->positions,
              (size_t)N_FRAMES * want->n_traj * want->d * sizeof(double));
  for (long ib = 0; same && ib < want->n_blocks; ib++) {
    long next = want->next_step[ib];
    if (next < 0 || next > STEPS) continue;
    size_t at = (size_t)want->first_row[ib] * want->width;
    same = got->Y &&
           !memcmp(got->Y + at, want->Y + at,
                   (size_t)want->count[ib] * want->width * sizeof(double));
  }
  return same;
}

/* A checkpoint under test: parameters for output.file = BASE/NAME/run.h5
 * (NAME "" for BASE itself), the run's shape, the states read back and
 * what checkpoint_read said. */
typedef struct {
  nrd_params p;
  run_shape sh;
  point_state ps[POINTS];
  char used[600], err[1024];
} fixture;

static void fixture_init(fixture *f, const char *base, const char *name) {
  char sub[512], file[600];
  snprintf(sub, sizeof sub, "%s%s%s", base, name[0] ? "/" : "", name);
  if (nrd_log_rank() == 0 && name[0] && mkdir(sub, 0755) != 0) perror(sub);
  MPI_Barrier(MPI_COMM_WORLD);
  snprintf(file, sizeof file, "%s/run.h5", sub);
  memset(f, 0, sizeof *f);
  params_init_defaults(&f->p);
  free(f->p.output.file);
  f->p.output.file = strdup(file);
  f->sh = shape(N_OUT);
}

static void fixture_free_states(fixture *f) {
  for (int i = 0; i < POINTS; i++)
    state_free(&f->ps[i]);
}

static void fixture_free(fixture *f) {
  fixture_free_states(f);
  params_free(&f->p);
}

/* Per test: a fixture in a directory of its own (t1, t2, ...: every rank
 * runs the tests in the same order), or in the directory given (write and
 * read modes). */
static int fixture_setup(void **state) {
  static int n_tests;
  char name[32] = "";
  if (!shared) snprintf(name, sizeof name, "t%d", ++n_tests);
  fixture *f = calloc(1, sizeof *f);
  fixture_init(f, shared ? shared : mpi_scratch, name);
  *state = f;
  return 0;
}

static int fixture_teardown(void **state) {
  fixture_free(*state);
  free(*state);
  return 0;
}

/* Checkpoint the state a run of `generation` has reached. */
static void fixture_write(fixture *f, int generation) {
  point_state ps[POINTS];
  for (int i = 0; i < POINTS; i++) {
    state_build(&f->sh, i, &ps[i]);
    state_fill(&f->sh, i, generation, &ps[i]);
  }
  checkpoint_write(&f->p, &f->sh, ps);
  for (int i = 0; i < POINTS; i++)
    state_free(&ps[i]);
}

/* Read into fresh states of shape sh: checkpoint_read's status; the path
 * used in f->used, the error in f->err. */
static int fixture_read(fixture *f, const run_shape *sh) {
  fixture_free_states(f);
  for (int i = 0; i < POINTS; i++)
    state_build(sh, i, &f->ps[i]);
  char *path = NULL;
  f->err[0] = 0;
  int rc = checkpoint_read(&f->p, sh, f->ps, &path, f->err, sizeof f->err);
  snprintf(f->used, sizeof f->used, "%s", path ? path : "");
  free(path);
  if (rc != NRD_OK && nrd_log_rank() == 0) fprintf(stderr, "%s\n", f->err);
  return rc;
}

/* Whether every point read is generation's state. */
static int fixture_holds(const fixture *f, int generation) {
  int same = 1;
  for (int i = 0; i < POINTS; i++) {
    point_state want;
    state_build(&f->sh, i, &want);
    state_fill(&f->sh, i, generation, &want);
    same &= state_equal(&f->sh, &f->ps[i], &want);
    state_free(&want);
  }
  return same;
}

/* Rank 0 flips the lowest bit of the stored record value of point i,
 * output o, block b, component k of generation (a unique 8-byte pattern in
 * the file); 1 on every rank if it was found. */
static int damage(const char *path, int generation, int i, long o, long b,
                  int k) {
  int rank, found = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) {
    FILE *f = fopen(path, "r+b");
    char *buf = NULL;
    long n = 0;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 &&
        (buf = malloc((size_t)n)) && fseek(f, 0, SEEK_SET) == 0 &&
        fread(buf, 1, (size_t)n, f) == (size_t)n) {
      double v = value(generation, 0, i, o * BLOCKS + b, k);
      for (long at = 0; at + 8 <= n && !found; at++)
        if (!memcmp(buf + at, &v, 8)) {
          unsigned char c = (unsigned char)buf[at] ^ 1u;
          found = fseek(f, at, SEEK_SET) == 0 && fputc(c, f) == c;
        }
    }
    free(buf);
    if (f && fclose(f) != 0) found = 0;
  }
  MPI_Bcast(&found, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return found;
}

static int ends_with(const char *s, const char *end) {
  size_t n = strlen(s), m = strlen(end);
  return n >= m && !strcmp(s + n - m, end);
}

/* ----------------------------------------------------------------- tests */

static void test_round_trip(void **state) {
  fixture *f = *state;
  fixture_write(f, 1);
  mpi_assert_all(fixture_read(f, &f->sh) == NRD_OK);
  mpi_assert_all(ends_with(f->used, "/run.h5.ckpt"));
  mpi_assert_all(fixture_holds(f, 1));
  /* a key that may change on restart may */
  f->p.checkpoint.interval = 123;
  mpi_assert_all(fixture_read(f, &f->sh) == NRD_OK && fixture_holds(f, 1));
}

static void test_damaged_byte_is_rejected(void **state) {
  fixture *f = *state;
  fixture_write(f, 1);
  fixture_write(f, 2); /* the first is now run.h5.ckpt.prev */
  char *ckpt = checkpoint_path(&f->p, 0), *prev = checkpoint_path(&f->p, 1);
  /* point 1, output 2, block 3 (done), its last component */
  mpi_assert_all(damage(ckpt, 2, 1, 2, 3, record_of(1) - 1));
  mpi_assert_all(fixture_read(f, &f->sh) == NRD_OK);
  mpi_assert_all(!strcmp(f->used, prev));
  mpi_assert_all(fixture_holds(f, 1));
  /* both damaged: no valid checkpoint, and nothing of them in the state */
  mpi_assert_all(damage(prev, 1, 0, 0, 0, 0));
  mpi_assert_all(fixture_read(f, &f->sh) == NRD_ERR_IO);
  mpi_assert_all(strstr(f->err, "no valid checkpoint") != NULL);
  mpi_assert_all(strstr(f->err, "grid point 1, block 3 does not match its "
                                "checksum") != NULL);
  mpi_assert_all(strstr(f->err, "grid point 0, block 0 does not match its "
                                "checksum") != NULL);
  int clean = 1;
  for (int i = 0; i < POINTS; i++)
    for (long ib = 0; ib < f->ps[i].n_blocks; ib++)
      clean &= f->ps[i].next_step[ib] == BLOCK_NOT_STARTED;
  mpi_assert_all(clean);
  free(ckpt);
  free(prev);
}

static void test_changed_key_is_named(void **state) {
  fixture *f = *state;
  fixture_write(f, 1);
  f->p.run.seed += 1;
  mpi_assert_all(fixture_read(f, &f->sh) == NRD_ERR_INPUT);
  mpi_assert_all(strstr(f->err, "key 'run.seed'") != NULL);
  mpi_assert_all(strstr(f->err, "may not change on restart") != NULL);
  /* the same parameters and another shape: not the user's, damage */
  f->p.run.seed -= 1;
  run_shape other = shape(N_OUT - 1);
  mpi_assert_all(fixture_read(f, &other) == NRD_ERR_IO);
  mpi_assert_all(strstr(f->err, "written for another run shape") != NULL);
}

/* write/read mode: across rank counts, in shared */
static void test_write_for_another_rank_count(void **state) {
  fixture *f = *state;
  fixture_write(f, 7);
  char *ckpt = checkpoint_path(&f->p, 0);
  mpi_assert_all(access(ckpt, F_OK) == 0);
  free(ckpt);
}

static void test_read_from_another_rank_count(void **state) {
  fixture *f = *state;
  mpi_assert_all(fixture_read(f, &f->sh) == NRD_OK);
  mpi_assert_all(ends_with(f->used, "/run.h5.ckpt"));
  mpi_assert_all(fixture_holds(f, 7));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_round_trip, fixture_setup,
                                      fixture_teardown),
      cmocka_unit_test_setup_teardown(test_damaged_byte_is_rejected,
                                      fixture_setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_changed_key_is_named, fixture_setup,
                                      fixture_teardown),
  };
  const struct CMUnitTest write[] = {cmocka_unit_test_setup_teardown(
      test_write_for_another_rank_count, fixture_setup, fixture_teardown)};
  const struct CMUnitTest read[] = {cmocka_unit_test_setup_teardown(
      test_read_from_another_rank_count, fixture_setup, fixture_teardown)};
  const char *mode = argc == 3 ? argv[1] : "";
  shared = argc == 3 ? argv[2] : NULL;
  mpi_test_begin(&argc, &argv);
  int failed;
  if (!strcmp(mode, "write"))
    failed = cmocka_run_group_tests_name("checkpoint_write", write, NULL, NULL);
  else if (!strcmp(mode, "read"))
    failed = cmocka_run_group_tests_name("checkpoint_read", read, NULL, NULL);
  else
    failed = cmocka_run_group_tests_name("mpi_checkpoint", tests,
                                         mpi_scratch_make, mpi_scratch_remove);
  return mpi_test_end(failed);
}
