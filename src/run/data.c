/* The data of data.source: file, read and prepared on every rank (the same
 * file, read-only, so every rank holds the same bits), with one collective
 * verdict: a bad file ends the run before any simulation or output, the
 * message naming the file and the dataset. */
#include "core/dataset.h"
#include "core/grid.h"
#include "io/data_file.h"
#include "run/runctx.h"
#include "util/error.h"
#include "util/log.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

data_set *run_data_load(const nrd_params *p) {
  if (p->data.source != DATA_FILE) return NULL;
  char err[1024] = "";
  data_set *D = NRD_XCALLOC(1, sizeof *D);
  data_raw raw;
  int rc = data_file_read(p->data.file, p->data.dataset, p->data.labels, &raw,
                          err, sizeof err);
  if (rc == NRD_OK) {
    char why[900] = "";
    NRD_TRY(rc, dataset_prepare(D, &raw, p->data.class_subset.v,
                                p->data.class_subset.n, p->data.normalize,
                                (uint32_t)p->run.seed, why, sizeof why));
    if (rc != NRD_OK)
      snprintf(err, sizeof err, "data.file '%s': %s", p->data.file,
               why[0] ? why : nrd_strerror(rc));
  }
  /* the grid against the data: every d the file's, every n_train at most
   * the kept points */
  for (int k = 0; rc == NRD_OK && k < p->grid.dimension.n; k++)
    if (p->grid.dimension.v[k] != D->d) {
      snprintf(err, sizeof err,
               "key 'grid.dimension': element %d is %ld but the points of "
               "data.file '%s' have %d coordinates",
               k + 1, p->grid.dimension.v[k], p->data.file, D->d);
      rc = NRD_ERR_INPUT;
    }
  for (int k = 0; rc == NRD_OK && k < p->grid.n_train.n; k++)
    if (p->grid.n_train.v[k] > D->n) {
      snprintf(err, sizeof err,
               "key 'grid.n_train': element %d is %ld but data.file '%s' has "
               "%ld points%s",
               k + 1, p->grid.n_train.v[k], p->data.file, D->n,
               D->n < D->n_file ? " of the kept classes (data.class_subset)"
                                : "");
      rc = NRD_ERR_INPUT;
    }
  /* the first failing rank's message (all read the same file: usually all) */
  int rank = nrd_log_rank(), first = rc != NRD_OK ? rank : 1 << 30, bad = 0;
  NRD_MPI_CHECK(
      MPI_Allreduce(&first, &bad, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  if (bad < 1 << 30) {
    int status = rc;
    NRD_MPI_CHECK(MPI_Bcast(err, sizeof err, MPI_CHAR, bad, MPI_COMM_WORLD));
    NRD_MPI_CHECK(MPI_Bcast(&status, 1, MPI_INT, bad, MPI_COMM_WORLD));
    nrd_fatal(status == NRD_ERR_NOMEM ? NRD_EXIT_RUNTIME : NRD_EXIT_USAGE, "%s",
              err);
  }
  return D;
}

void run_data_free(data_set *D) {
  if (!D) return;
  dataset_free(D);
  free(D);
}

void run_data_describe(const data_set *D, const nrd_params *p) {
  if (!D || nrd_log_rank() != 0) return;
  char mem[32];
  plan_human_bytes(8.0 * (double)D->n * D->d, mem, sizeof mem);
  printf("Data (data.source: file)\n"
         "  file               : %s, dataset '%s'%s%s%s\n"
         "  points             : %ld of %ld in the file, d = %d%s; %s per "
         "rank (float64)\n",
         p->data.file, p->data.dataset, p->data.labels[0] ? ", labels '" : "",
         p->data.labels, p->data.labels[0] ? "'" : " (unlabelled)", D->n,
         D->n_file, D->d, D->pixels ? " (uint8 pixels -> [-1, 1])" : "", mem);
  printf("  classes            : %d", D->K);
  for (int k = 0; D->label && k < D->K && k < 12; k++)
    printf("%s label %ld (%ld)", k ? "," : ":", D->class_label[k],
           D->class_count[k]);
  printf("%s\n", D->label && D->K > 12 ? ", ..." : "");
  static const char *const norm[] = {"none", "centred", "standardised"};
  printf("  normalisation      : %s", norm[p->data.normalize]);
  if (p->data.normalize != NORMALIZE_NONE)
    printf(" (a mean point of norm %.4g removed, then scaled by %.6g)",
           D->mean_norm, D->scale);
  printf("; digest %016llx\n", (unsigned long long)D->digest);
  fflush(stdout);
}
