/* Writing a checkpoint (layout: checkpoint.c): every rank writes its own
 * blocks collectively into FILE.tmp, rank 0 makes it durable and renames
 * FILE to FILE.prev and FILE.tmp to FILE. */
#define _POSIX_C_SOURCE 200809L
#include "run/checkpoint.h"
#include "run/checkpoint_format.h"
#include "io/h5check.h"
#include "io/h5util.h"
#include "io/output_target.h"
#include "util/log.h"
#include "util/version.h"

#include <cblas.h>
#include <errno.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define H5 NRD_H5_CHECK

/* Every point's block checksums on rank 0 (each block is non-zero on exactly
 * one rank, so the sum is exact). */
static uint64_t **gather_checksums(const run_shape *sh, point_state *ps) {
  uint64_t **all = NRD_XCALLOC((size_t)sh->n_points, sizeof *all);
  for (int i = 0; i < sh->n_points; i++) {
    if (!sh->selected[i]) continue;
    all[i] = NRD_XCALLOC((size_t)sh->n_blocks, sizeof **all);
    for (long ib = 0; ib < ps[i].n_blocks; ib++)
      all[i][ps[i].blocks[ib]] = ckpt_block_checksum(sh, &ps[i], ib);
    void *send = h5u_root() ? MPI_IN_PLACE : (void *)all[i];
    NRD_MPI_CHECK(MPI_Reduce(send, all[i], (int)sh->n_blocks, MPI_UINT64_T,
                             MPI_SUM, 0, MPI_COMM_WORLD));
  }
  return all;
}

static void free_checksums(const run_shape *sh, uint64_t **all) {
  for (int i = 0; i < sh->n_points; i++)
    free(all[i]);
  free(all);
}

/* Local row lists of a point: started blocks, in-progress blocks (with
 * their particle rows) and the sampled trajectories of started blocks.
 * The three index lists share one allocation (ids), and the three data
 * parts another (data). */
typedef struct {
  long n_started, n_rows, n_traj;
  long *started, *rows, *traj, *ids;
  double *records, *positions, *trajectories, *data;
} local_rows;

static void local_rows_build(const run_shape *sh, const point_state *s,
                             local_rows *r) {
  memset(r, 0, sizeof *r);
  size_t B = (size_t)(s->n_blocks ? s->n_blocks : 1);
  size_t rows = (size_t)(s->n_rows ? s->n_rows : 1);
  size_t traj = (size_t)(s->n_traj ? s->n_traj : 1);
  size_t n_records = (size_t)sh->n_out * B * s->record;
  size_t n_positions = rows * s->width;
  size_t n_trajectories = (size_t)sh->n_frames * traj * s->d;
  r->ids = NRD_XCALLOC(B + rows + traj, sizeof *r->ids);
  r->started = r->ids;
  r->rows = r->started + B;
  r->traj = r->rows + rows;
  r->data =
      NRD_XCALLOC(n_records + n_positions + n_trajectories, sizeof *r->data);
  r->records = r->data;
  r->positions = r->records + n_records;
  r->trajectories = r->positions + n_positions;
  for (long ib = 0; ib < s->n_blocks; ib++) {
    if (s->next_step[ib] == BLOCK_NOT_STARTED) continue;
    long k = r->n_started++;
    r->started[k] = s->blocks[ib];
    for (long o = 0; o < sh->n_out; o++)
      memcpy(r->records + ((size_t)o * s->n_blocks + k) * s->record,
             s->records + ((size_t)o * s->n_blocks + ib) * s->record,
             (size_t)s->record * sizeof(double));
    if (ckpt_in_progress(sh, s->next_step[ib])) {
      long first = s->blocks[ib] * sh->block_size;
      for (long i = 0; i < s->count[ib]; i++) {
        r->rows[r->n_rows] = first + i;
        memcpy(r->positions + (size_t)r->n_rows * s->width,
               s->Y + (size_t)(s->first_row[ib] + i) * s->width,
               (size_t)s->width * sizeof(double));
        r->n_rows++;
      }
    }
  }
  /* records were packed with stride n_blocks; repack to n_started */
  for (long o = 0; o < sh->n_out; o++)
    memmove(r->records + (size_t)o * r->n_started * s->record,
            r->records + (size_t)o * s->n_blocks * s->record,
            (size_t)r->n_started * s->record * sizeof(double));
  /* sampled trajectories of started blocks: global index for the file,
   * local j for the copy */
  for (long j = 0; j < s->n_traj; j++) {
    if (s->next_step[s->traj_block[j]] == BLOCK_NOT_STARTED) continue;
    for (long f = 0; f < sh->n_frames; f++)
      memcpy(r->trajectories + ((size_t)f * s->n_traj + r->n_traj) * s->d,
             s->positions + ((size_t)f * s->n_traj + j) * s->d,
             (size_t)s->d * sizeof(double));
    r->traj[r->n_traj++] = s->traj[j];
  }
  /* repack the frames from stride n_traj to the n_traj written */
  for (long f = 0; f < sh->n_frames; f++)
    memmove(r->trajectories + (size_t)f * r->n_traj * s->d,
            r->trajectories + (size_t)f * s->n_traj * s->d,
            (size_t)r->n_traj * s->d * sizeof(double));
}

static void local_rows_free(local_rows *r) {
  free(r->ids);
  free(r->data);
}

void checkpoint_write(const nrd_params *p, const run_shape *sh,
                      point_state *ps) {
  double t0 = nrd_log_elapsed();
  int P = sh->n_points;
  /* per point: 1 = some block started, 2 = some block in progress */
  int *flags = NRD_XCALLOC((size_t)P, sizeof *flags);
  for (int i = 0; i < P; i++)
    for (long ib = 0; ib < ps[i].n_blocks; ib++) {
      if (ps[i].next_step[ib] != BLOCK_NOT_STARTED) flags[i] |= 1;
      if (ckpt_in_progress(sh, ps[i].next_step[ib])) flags[i] |= 2;
    }
  NRD_MPI_CHECK(
      MPI_Allreduce(MPI_IN_PLACE, flags, P, MPI_INT, MPI_BOR, MPI_COMM_WORLD));
  uint64_t **sums = gather_checksums(sh, ps);
  int np = params_schema_size();
  char **key, **val;
  h5u_param_text(p, &key, &val);
  long(*attrs)[3] = NRD_XCALLOC((size_t)P, sizeof *attrs);
  for (int i = 0; i < P; i++) {
    attrs[i][0] = ps[i].record;
    attrs[i][1] = ps[i].d;
    attrs[i][2] = ps[i].width;
  }
  ckpt_meta meta = {.signature = CKPT_SIGNATURE,
                    .nrdiff_version = version_nrdiff(),
                    .blas_kernels = openblas_get_corename(),
                    .schema_version = CKPT_SCHEMA_VERSION,
                    .shape = {sh->n_points, sh->n_blocks, sh->block_size,
                              sh->particles, sh->steps, sh->n_out, sh->n_frames,
                              sh->n_traj},
                    .selected = sh->selected,
                    .n_params = np,
                    .key = key,
                    .value = val,
                    .attrs = (const long(*)[3])attrs,
                    .sums = sums,
                    .data_digest = sh->data_digest};
  unsigned long long total = h5u_root() ? ckpt_meta_checksum(&meta) : 0;
  NRD_MPI_CHECK(
      MPI_Bcast(&total, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD));

  char *path = checkpoint_path(p, 0), *prev = checkpoint_path(p, 1);
  char *tmp = output_companion(path, ".tmp");
  nrd_h5_quiet();
  hid_t fapl = H5(H5Pcreate(H5P_FILE_ACCESS));
  H5(H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL));
  /* the 1.8 formats checksum the superblock and object headers, so HDF5
   * itself rejects most damaged metadata instead of following it */
  H5(H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V110));
  /* from here on a fatal error on this rank removes FILE.tmp (and says
   * why writing it failed); FILE and FILE.prev stay as they are */
  hid_t file = h5u_create_file(tmp, fapl, "the checkpoint",
                               "; the previous checkpoints are untouched");
  H5(H5Pclose(fapl));
  hid_t dxpl = H5(H5Pcreate(H5P_DATASET_XFER));
  H5(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE));

  h5u_attr_fixed_string(file, "signature", meta.signature);
  h5u_attr_long(file, "schema_version", meta.schema_version);
  h5u_attr_fixed_string(file, "nrdiff_version", meta.nrdiff_version);
  /* kernels differ in the last digits: a restart should use the same */
  h5u_attr_fixed_string(file, "blas_kernels", meta.blas_kernels);
  h5u_attr_numbers(file, "shape", H5T_NATIVE_LONG, 8, meta.shape);
  h5u_attr_numbers(file, "selected", H5T_NATIVE_INT, P, sh->selected);
  h5u_attr_numbers(file, "checksum", H5T_NATIVE_ULLONG, 1, &total);
  if (sh->data_digest) {
    unsigned long long dg = sh->data_digest;
    h5u_attr_numbers(file, "data_digest", H5T_NATIVE_ULLONG, 1, &dg);
  }

  hid_t g = h5u_group(file, "parameters");
  h5u_dataset_strings(dxpl, g, "key", (size_t)np, key, 0);
  h5u_dataset_strings(dxpl, g, "value", (size_t)np, val, 0);
  h5u_param_text_free(key, val);
  free(attrs);
  H5(H5Gclose(g));

  hid_t points = h5u_group(file, "points");
  for (int i = 0; i < P; i++) {
    if (!sh->selected[i]) continue;
    point_state *s = &ps[i];
    char name[32];
    snprintf(name, sizeof name, "%04d", i);
    hid_t pg = h5u_group(points, name);
    h5u_attr_long(pg, "record", s->record);
    h5u_attr_long(pg, "dimension", s->d);
    h5u_attr_long(pg, "state_width", s->width);
    hsize_t d1[2] = {1, (hsize_t)sh->n_blocks};
    h5u_write_rows(dxpl, pg, "next_step", H5T_NATIVE_LONG, 2, d1, s->n_blocks,
                   s->blocks, s->next_step);
    uint64_t *mine = NRD_XCALLOC((size_t)s->n_blocks, sizeof *mine);
    for (long ib = 0; ib < s->n_blocks; ib++)
      mine[ib] = ckpt_block_checksum(sh, s, ib);
    h5u_write_rows(dxpl, pg, "block_checksum", H5T_NATIVE_ULLONG, 2, d1,
                   s->n_blocks, s->blocks, mine);
    free(mine);
    if (flags[i] & 1) {
      local_rows r;
      local_rows_build(sh, s, &r);
      hsize_t dr[3] = {(hsize_t)sh->n_out, (hsize_t)sh->n_blocks,
                       (hsize_t)s->record};
      h5u_write_rows(dxpl, pg, "records", H5T_NATIVE_DOUBLE, 3, dr, r.n_started,
                     r.started, r.records);
      hsize_t dt[3] = {(hsize_t)sh->n_frames, (hsize_t)sh->n_traj,
                       (hsize_t)s->d};
      h5u_write_rows(dxpl, pg, "trajectories", H5T_NATIVE_DOUBLE, 3, dt,
                     r.n_traj, r.traj, r.trajectories);
      if (flags[i] & 2) {
        hsize_t dp[3] = {1, (hsize_t)sh->particles, (hsize_t)s->width};
        h5u_write_rows(dxpl, pg, "positions", H5T_NATIVE_DOUBLE, 3, dp,
                       r.n_rows, r.rows, r.positions);
      }
      local_rows_free(&r);
    }
    H5(H5Gclose(pg));
  }
  H5(H5Gclose(points));
  H5(H5Pclose(dxpl));
  H5(H5Fflush(file, H5F_SCOPE_GLOBAL));
  H5(H5Fclose(file));
  /* FILE.tmp is complete once every rank closed it without error (one that
   * failed has aborted: the others wait here until they are stopped, and
   * nothing is renamed) and it is on disk.  Then FILE -> FILE.prev,
   * FILE.tmp -> FILE: a crash in between leaves FILE.prev, which a restart
   * falls back to. */
  NRD_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  int rc[2] = {0,
               0}; /* step that failed (1 fsync, 2 and 3 the renames), errno */
  if (h5u_root()) {
    if ((rc[1] = output_sync(tmp)) != 0) rc[0] = 1;
    if (!rc[0] && access(path, F_OK) == 0 && rename(path, prev) != 0)
      rc[0] = 2, rc[1] = errno;
    if (!rc[0] && rename(tmp, path) != 0) rc[0] = 3, rc[1] = errno;
    output_sync_dir(path);
  }
  NRD_MPI_CHECK(MPI_Bcast(rc, 2, MPI_INT, 0, MPI_COMM_WORLD));
  /* on failure the cleanup removes FILE.tmp */
  if (rc[0] == 1)
    nrd_fatal(NRD_EXIT_RUNTIME,
              "writing the checkpoint '%s' failed: %s; it is removed, the "
              "previous checkpoints are untouched",
              tmp, strerror(rc[1]));
  if (rc[0])
    nrd_fatal(NRD_EXIT_RUNTIME,
              "cannot rename the new checkpoint into '%s': %s (renaming %s)",
              path, strerror(rc[1]),
              rc[0] == 2 ? "the previous one to .prev" : "it from .tmp");
  nrd_h5_written(tmp);
  nrd_info("checkpoint written: %s (%.2f s)", path, nrd_log_elapsed() - t0);
  free_checksums(sh, sums);
  free(flags);
  free(path);
  free(prev);
  free(tmp);
}
