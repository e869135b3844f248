/* MPI test of the output target (io/output_target.h; tests/check_mpi.sh
 * runs it at 1, 2 and 3 ranks): output.file names that cannot work, inputs
 * that would be outputs, what a fresh run and a restart may find, the
 * leftovers removed, and the lock: held from h5out_prepare_target, a second
 * prepare of the same output refused with the holder named (a dry run
 * too), given back by h5out_release_target.  Every rank must get the same
 * verdict; a refusal changes no file.  Assertions are reduced over ranks. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mpi_assert.h"
#include "mpi_main.h"
#include "io/output_target.h"
#include "util/error.h"
#include "util/log.h"

static int rank;

/* Parameters for output.file = DIR/name (name as given if it starts with
 * '/'). */
static void params_for(nrd_params *p, const char *name) {
  char file[1024];
  if (name[0] == '/')
    snprintf(file, sizeof file, "%s", name);
  else
    snprintf(file, sizeof file, "%s/%s", mpi_scratch, name);
  params_init_defaults(p);
  free(p->output.file);
  p->output.file = strdup(file);
}

/* Rank 0 makes DIR/name: a file with text, or a directory (text NULL). */
static void make(const char *name, const char *text) {
  if (rank == 0) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", mpi_scratch, name);
    if (!text) {
      mkdir(path, 0755);
    } else {
      FILE *f = fopen(path, "w");
      fputs(text, f);
      fclose(f);
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

static int there(const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", mpi_scratch, name);
  return access(path, F_OK) == 0;
}

/* prepare_target's status; err and unmarked as every rank got them (rank
 * 0's, checked equal on every rank). */
static int prepare(const nrd_params *p, int restart, int dry_run, char *err,
                   size_t len, int *unmarked) {
  err[0] = 0;
  int rc = h5out_prepare_target(p, restart, dry_run, unmarked, err, len);
  char ref[1400];
  snprintf(ref, sizeof ref, "%s", err);
  MPI_Bcast(ref, sizeof ref, MPI_CHAR, 0, MPI_COMM_WORLD);
  mpi_assert_all(strcmp(ref, err) == 0);
  return rc;
}

/* output.file `name` is refused with a message holding `what`. */
static void refused(const char *name, const char *what) {
  nrd_params p;
  params_for(&p, name);
  char err[1400];
  int unmarked = -1;
  int rc = prepare(&p, 0, 0, err, sizeof err, &unmarked);
  if (rank == 0 && (rc != NRD_ERR_INPUT || !strstr(err, what)))
    fprintf(stderr, "%s: status %d, '%s'\n", name, rc, err);
  mpi_assert_all(rc == NRD_ERR_INPUT);
  mpi_assert_all(strncmp(err, "key 'output.file': ", 19) == 0);
  mpi_assert_all(strstr(err, what) != NULL);
  mpi_assert_all(unmarked == 0);
  params_free(&p);
}

static void test_names_that_cannot_work(void **state) {
  (void)state;
  make("sub", NULL);
  refused("sub/", "ends with '/': it names a directory");
  refused("sub/.", "names a directory");
  refused("sub", "is an existing directory");
  refused("out.h5.tmp", "ends in '.tmp'");
  refused("out.h5.ckpt.prev", "ends in '.ckpt.prev'");
  refused("missing/out.h5", "does not exist (create it first)");
  make("plain", "a file, not a directory\n");
  refused("plain/out.h5", "is not a directory, so");
  char name[300];
  memset(name, 'n', sizeof name - 1);
  name[sizeof name - 1] = 0;
  refused(name, "is too long: at most 228 characters");
  make("taken.h5.ckpt", NULL);
  refused("taken.h5", "(its checkpoint) is a directory");
  /* nothing was made by any refusal */
  mpi_assert_all(!there("sub/.lock") && !there("out.h5.lock") &&
                 !there("taken.h5.lock"));
}

static void test_inputs_are_not_outputs(void **state) {
  (void)state;
  make("in.yml", "run:\n  seed: 1\n");
  nrd_params p;
  params_for(&p, "in.yml");
  char path[512];
  snprintf(path, sizeof path, "%s/in.yml", mpi_scratch);
  free(p.source_file);
  p.source_file = strdup(path);
  char err[1400];
  int unmarked;
  int rc = prepare(&p, 0, 0, err, sizeof err, &unmarked);
  mpi_assert_all(rc == NRD_ERR_INPUT);
  mpi_assert_all(strstr(err, "(the output) is the parameter file") != NULL);
  params_free(&p);
  /* a companion: the checkpoint of x.h5 is forward.u_file */
  make("x.h5.ckpt", "matrix\n");
  params_for(&p, "x.h5");
  snprintf(path, sizeof path, "%s/x.h5.ckpt", mpi_scratch);
  free(p.forward.u_file);
  p.forward.u_file = strdup(path);
  rc = prepare(&p, 1, 0, err, sizeof err, &unmarked);
  mpi_assert_all(rc == NRD_ERR_INPUT);
  mpi_assert_all(strstr(err, "(its checkpoint) is forward.u_file") != NULL);
  params_free(&p);
  mpi_assert_all(there("x.h5.ckpt") && !there("x.h5.lock"));
}

static void test_lock_is_held_until_released(void **state) {
  (void)state;
  nrd_params p;
  params_for(&p, "locked.h5");
  char err[1400], who[64];
  int unmarked;
  mpi_assert_all(prepare(&p, 0, 0, err, sizeof err, &unmarked) == NRD_OK);
  mpi_assert_all(there("locked.h5.lock"));
  /* the lock file names this process (rank 0's) */
  long pid = (long)getpid();
  MPI_Bcast(&pid, 1, MPI_LONG, 0, MPI_COMM_WORLD);
  snprintf(who, sizeof who, "pid %ld on host ", pid);
  for (int dry = 0; dry < 2; dry++) {
    int rc = prepare(&p, 0, dry, err, sizeof err, &unmarked);
    mpi_assert_all(rc == NRD_ERR_INPUT);
    mpi_assert_all(strstr(err, "is being written by another nrdiff run") !=
                   NULL);
    mpi_assert_all(strstr(err, who) != NULL);
  }
  /* refusals left the lock as it was: still held */
  mpi_assert_all(there("locked.h5.lock"));
  mpi_assert_all(prepare(&p, 1, 1, err, sizeof err, &unmarked) ==
                 NRD_ERR_INPUT);
  h5out_release_target();
  MPI_Barrier(MPI_COMM_WORLD);
  mpi_assert_all(!there("locked.h5.lock"));
  mpi_assert_all(prepare(&p, 0, 0, err, sizeof err, &unmarked) == NRD_OK);
  h5out_release_target();
  MPI_Barrier(MPI_COMM_WORLD);
  mpi_assert_all(!there("locked.h5.lock"));
  params_free(&p);
}

/* Rank 0 writes a complete nrdiff output (what the restart looks for). */
static void make_complete_output(const char *name) {
  if (rank == 0) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", mpi_scratch, name);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "file_format", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    const char *v = "nrdiff-output";
    H5Awrite(a, t, &v);
    H5Aclose(a);
    hid_t g = H5Gcreate2(f, "code", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    a = H5Acreate2(g, "wall_seconds", H5T_IEEE_F64LE, sp, H5P_DEFAULT,
                   H5P_DEFAULT);
    double w = 1;
    H5Awrite(a, H5T_NATIVE_DOUBLE, &w);
    H5Aclose(a);
    H5Gclose(g);
    H5Sclose(sp);
    H5Tclose(t);
    H5Fclose(f);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

static void test_what_a_run_may_find(void **state) {
  (void)state;
  nrd_params p;
  char err[1400];
  int unmarked;
  /* a fresh run: an existing output is not overwritten ... */
  make("done.h5", "results\n");
  params_for(&p, "done.h5");
  mpi_assert_all(prepare(&p, 0, 0, err, sizeof err, &unmarked) ==
                 NRD_ERR_INPUT);
  mpi_assert_all(strstr(err, "nrdiff does not overwrite") != NULL);
  /* ... unless told: then the old companions go */
  make("done.h5.ckpt", "old\n");
  make("done.h5.tmp", "partial\n");
  make("done.h5.done", "");
  p.output.overwrite = 1;
  mpi_assert_all(prepare(&p, 0, 0, err, sizeof err, &unmarked) == NRD_OK);
  mpi_assert_all(there("done.h5") && !there("done.h5.ckpt") &&
                 !there("done.h5.tmp") && !there("done.h5.done"));
  h5out_release_target();
  params_free(&p);
  /* a restart of a complete run: nothing to do */
  make("done.h5.done", "");
  params_for(&p, "done.h5");
  mpi_assert_all(prepare(&p, 1, 0, err, sizeof err, &unmarked) ==
                 NRD_ERR_INPUT);
  mpi_assert_all(strstr(err, "this run is already complete") != NULL);
  params_free(&p);
  /* a restart finds an output without its marker: complete, or not */
  params_for(&p, "foreign.h5");
  make("foreign.h5", "not an nrdiff output\n");
  mpi_assert_all(prepare(&p, 1, 0, err, sizeof err, &unmarked) ==
                 NRD_ERR_INPUT);
  mpi_assert_all(strstr(err, "is not a complete nrdiff output") != NULL);
  params_free(&p);
  make_complete_output("unmarked.h5");
  make("unmarked.h5.ckpt", "kept\n");
  params_for(&p, "unmarked.h5");
  mpi_assert_all(prepare(&p, 1, 0, err, sizeof err, &unmarked) == NRD_OK);
  mpi_assert_all(unmarked == 1 && there("unmarked.h5.ckpt"));
  h5out_release_target();
  params_free(&p);
  /* a restart keeps its checkpoints and drops a partial output */
  make("resumed.h5.ckpt", "state\n");
  make("resumed.h5.tmp", "partial\n");
  params_for(&p, "resumed.h5");
  mpi_assert_all(prepare(&p, 1, 0, err, sizeof err, &unmarked) == NRD_OK);
  mpi_assert_all(unmarked == 0 && there("resumed.h5.ckpt") &&
                 !there("resumed.h5.tmp"));
  h5out_release_target();
  params_free(&p);
}

static void test_companion_names(void **state) {
  (void)state;
  char *c = output_companion("a/b.h5", ".ckpt.prev");
  char *d1 = output_dir_of("a/b/c.h5"), *d2 = output_dir_of("c.h5"),
       *d3 = output_dir_of("/c.h5");
  mpi_assert_all(!strcmp(c, "a/b.h5.ckpt.prev"));
  mpi_assert_all(!strcmp(d1, "a/b") && !strcmp(d2, ".") && !strcmp(d3, "/"));
  free(c);
  free(d1);
  free(d2);
  free(d3);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names_that_cannot_work),
      cmocka_unit_test(test_inputs_are_not_outputs),
      cmocka_unit_test(test_lock_is_held_until_released),
      cmocka_unit_test(test_what_a_run_may_find),
      cmocka_unit_test(test_companion_names),
  };
  mpi_test_begin(&argc, &argv);
  rank = nrd_log_rank();
  return mpi_test_end(cmocka_run_group_tests_name(
      "mpi_output_target", tests, mpi_scratch_make, mpi_scratch_remove));
}
