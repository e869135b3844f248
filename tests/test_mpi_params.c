/* MPI test (run at 1, 2 and 3 ranks by tests/check_mpi.sh): rank 0 parses,
 * every rank must end up with identical parameters, or with the same error.
 * Assertions are reduced over ranks (mpi_assert.h). */
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
#include <unistd.h>

#include "mpi_assert.h"
#include "util/error.h"
#include "run/params_mpi.h"

static char dir[256];

/* Rank 0 writes a parameter file in a fresh temporary directory. */
static void write_file(const char *name, const char *text, char *path) {
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  snprintf(path, 512, "%s/%s", dir, name);
  if (rank == 0) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

static void test_every_rank_gets_the_same_parameters(void **state) {
  (void)state;
  char path[512];
  write_file("good.yml",
             "grid:\n  dimension: [4, 8]\n  strength: [0, 0.25, 1e-3]\n"
             "ensemble:\n  particles: 333\nrun:\n  seed: 77\n",
             path);
  nrd_params p;
  params_init_defaults(&p);
  char err[1024] = "";
  char *over[] = {"time.steps=17"};
  int rc = params_load_collective(&p, path, 1, over, MPI_COMM_WORLD, err,
                                  sizeof err);
  mpi_assert_all(rc == NRD_OK);
  mpi_assert_all(p.grid.dimension.n == 2 && p.grid.dimension.v[1] == 8);
  mpi_assert_all(p.grid.strength.n == 3 && p.grid.strength.v[2] == 1e-3);
  mpi_assert_all(p.ensemble.particles == 333 && p.run.seed == 77);
  mpi_assert_all(p.time.steps == 17);
  /* byte-for-byte: everyone's packed form equals rank 0's */
  char *buf;
  size_t len;
  params_pack(&p, &buf, &len);
  unsigned long long n0 = len;
  MPI_Bcast(&n0, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
  char *ref = malloc(n0);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) memcpy(ref, buf, n0);
  MPI_Bcast(ref, (int)n0, MPI_CHAR, 0, MPI_COMM_WORLD);
  mpi_assert_all(n0 == len && memcmp(ref, buf, len) == 0);
  mpi_assert_all(p.sources != NULL);
  free(ref);
  free(buf);
  params_free(&p);
}

static void test_every_rank_gets_the_same_error(void **state) {
  (void)state;
  char path[512];
  write_file("bad.yml", "grid:\n  dimension: [4, -8]\n", path);
  nrd_params p;
  params_init_defaults(&p);
  char err[1024] = "";
  int rc = params_load_collective(&p, path, 0, NULL, MPI_COMM_WORLD, err,
                                  sizeof err);
  mpi_assert_all(rc == NRD_ERR_INPUT);
  mpi_assert_all(strstr(err, "bad.yml:2:") != NULL);
  mpi_assert_all(strstr(err, "grid.dimension") != NULL);
  params_free(&p);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) {
    snprintf(dir, sizeof dir, "/tmp/nrdiff-mpi-params-XXXXXX");
    if (!mkdtemp(dir)) dir[0] = '\0';
  }
  MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
  /* only rank 0 reports, the others' CMocka output is redundant */
  if (rank != 0) cmocka_set_message_output(CM_OUTPUT_SUBUNIT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_rank_gets_the_same_parameters),
      cmocka_unit_test(test_every_rank_gets_the_same_error),
  };
  int failed = cmocka_run_group_tests_name("mpi_params", tests, NULL, NULL);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  }
  MPI_Finalize();
  return failed ? 1 : 0;
}
