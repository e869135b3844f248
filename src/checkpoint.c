/* Checkpoints (see checkpoint.h and doc/restart.md).
 *
 * Layout of FILE (HDF5, written collectively):
 *   /            attrs signature, schema_version, nrdiff_version, n_points,
 *                n_blocks, particles, steps, n_out, n_frames, n_traj,
 *                checksum (FNV-1a over every point's block_checksum)
 *   /parameters  key, value (YAML text): what the run was started with
 *   /points/IIII next_step[B], block_checksum[B];
 *                records[n_out][B][record] once a block has started;
 *                trajectories[n_frames][n_traj][d] likewise;
 *                positions[particles][state_width] while a block is in
 *                progress (the main position, then the protocols' state:
 *                protocol.h).
 * Every block's checksum covers its next_step, record rows, positions (if in
 * progress) and sampled trajectories, so each rank verifies the blocks it
 * reads, whatever the rank count that wrote them. */
#define _POSIX_C_SOURCE 200809L /* fsync, fileno */
#include "config.h"

#include "nrdiff/checkpoint.h"
#include "nrdiff/error.h"
#include "nrdiff/h5check.h"
#include "nrdiff/h5util.h"
#include "nrdiff/log.h"
#include "nrdiff/version.h"

#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define H5 NRD_H5_CHECK

static const char SIGNATURE[] = "nrdiff-checkpoint";
enum { SCHEMA_VERSION = 1 };

char *checkpoint_path(const nrd_params *p, int prev) {
  size_t n = strlen(p->output.file) + 16;
  char *s = malloc(n);
  if (!s) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  snprintf(s, n, "%s.ckpt%s", p->output.file, prev ? ".prev" : "");
  return s;
}

/* ------------------------------------------------------------ checksum */

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
  const unsigned char *b = data;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 1099511628211ULL;
  return h;
}

static const uint64_t FNV_SEED = 1469598103934665603ULL;

static int in_progress(const run_shape *sh, long next) {
  return next >= 0 && next <= sh->steps;
}

static uint64_t block_checksum(const run_shape *sh, const point_state *s,
                               long ib) {
  uint64_t h = fnv(FNV_SEED, &s->next_step[ib], sizeof(long));
  if (s->next_step[ib] == BLOCK_NOT_STARTED) return h;
  for (long o = 0; o < sh->n_out; o++)
    h = fnv(h, s->records + ((size_t)o * s->n_blocks + ib) * s->record,
            (size_t)s->record * sizeof(double));
  if (in_progress(sh, s->next_step[ib]))
    h = fnv(h, s->Y + (size_t)s->first_row[ib] * s->width,
            (size_t)s->count[ib] * s->width * sizeof(double));
  for (long j = 0; j < s->n_traj; j++)
    if (s->traj_block[j] == ib)
      for (long f = 0; f < sh->n_frames; f++)
        h = fnv(h, s->positions + ((size_t)f * s->n_traj + j) * s->d,
                (size_t)s->d * sizeof(double));
  return h;
}

/* Rank 0: the file's checksum over all block checksums (arrays of B per
 * selected point, in point order). */
static uint64_t file_checksum(const run_shape *sh, uint64_t *const *all) {
  uint64_t h = FNV_SEED;
  for (int i = 0; i < sh->n_points; i++)
    if (sh->selected[i])
      h = fnv(h, all[i], (size_t)sh->n_blocks * sizeof(uint64_t));
  return h;
}

/* Every point's block checksums on rank 0 (each block is non-zero on exactly
 * one rank, so the sum is exact). */
static uint64_t **gather_checksums(const run_shape *sh, point_state *ps) {
  uint64_t **all = calloc((size_t)sh->n_points, sizeof *all);
  if (!all) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  for (int i = 0; i < sh->n_points; i++) {
    if (!sh->selected[i]) continue;
    all[i] = calloc((size_t)sh->n_blocks, sizeof **all);
    if (!all[i]) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
    for (long ib = 0; ib < ps[i].n_blocks; ib++)
      all[i][ps[i].blocks[ib]] = block_checksum(sh, &ps[i], ib);
    void *send = h5u_root() ? MPI_IN_PLACE : (void *)all[i];
    NRD_MPI_CHECK(MPI_Reduce(send, all[i], (int)sh->n_blocks,
                             MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD));
  }
  return all;
}

static void free_checksums(const run_shape *sh, uint64_t **all) {
  for (int i = 0; i < sh->n_points; i++)
    free(all[i]);
  free(all);
}

/* --------------------------------------------------------------- write */

/* Local row lists of a point: started blocks, in-progress blocks (with
 * their particle rows) and the sampled trajectories of started blocks. */
typedef struct {
  long n_started, n_running, n_rows, n_traj;
  long *started, *rows, *traj;
  double *records, *positions, *trajectories;
} local_rows;

static void local_rows_build(const run_shape *sh, const point_state *s,
                             local_rows *r) {
  memset(r, 0, sizeof *r);
  size_t B = (size_t)(s->n_blocks ? s->n_blocks : 1);
  r->started = calloc(B, sizeof *r->started);
  r->rows = calloc((size_t)(s->n_rows ? s->n_rows : 1), sizeof *r->rows);
  r->traj = calloc((size_t)(s->n_traj ? s->n_traj : 1), sizeof *r->traj);
  r->records = calloc((size_t)sh->n_out * B * s->record, sizeof *r->records);
  r->positions = calloc((size_t)(s->n_rows ? s->n_rows : 1) * s->width,
                        sizeof *r->positions);
  r->trajectories = calloc(
      (size_t)sh->n_frames * (s->n_traj ? s->n_traj : 1) * s->d, sizeof(double));
  if (!r->started || !r->rows || !r->traj || !r->records || !r->positions ||
      !r->trajectories)
    NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  for (long ib = 0; ib < s->n_blocks; ib++) {
    if (s->next_step[ib] == BLOCK_NOT_STARTED) continue;
    long k = r->n_started++;
    r->started[k] = s->blocks[ib];
    for (long o = 0; o < sh->n_out; o++)
      memcpy(r->records + ((size_t)o * s->n_blocks + k) * s->record,
             s->records + ((size_t)o * s->n_blocks + ib) * s->record,
             (size_t)s->record * sizeof(double));
    if (in_progress(sh, s->next_step[ib])) {
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
      memcpy(r->trajectories +
                 ((size_t)f * s->n_traj + r->n_traj) * s->d,
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
  free(r->started);
  free(r->rows);
  free(r->traj);
  free(r->records);
  free(r->positions);
  free(r->trajectories);
}

/* Make `path` durable: its data and the directory entry.  0 or the errno
 * (a delayed write error, such as a full disk, shows here). */
static int sync_file(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return errno;
  int e = fsync(fd) == 0 ? 0 : errno;
  close(fd);
  return e;
}

void checkpoint_write(const nrd_params *p, const run_shape *sh,
                      point_state *ps) {
  double t0 = nrd_log_elapsed();
  int P = sh->n_points;
  /* per point: 1 = some block started, 2 = some block in progress */
  int *flags = calloc((size_t)P, sizeof *flags);
  if (!flags) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  for (int i = 0; i < P; i++)
    for (long ib = 0; ib < ps[i].n_blocks; ib++) {
      if (ps[i].next_step[ib] != BLOCK_NOT_STARTED) flags[i] |= 1;
      if (in_progress(sh, ps[i].next_step[ib])) flags[i] |= 2;
    }
  NRD_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, flags, P, MPI_INT, MPI_BOR,
                              MPI_COMM_WORLD));
  uint64_t **sums = gather_checksums(sh, ps);
  unsigned long long total = h5u_root() ? file_checksum(sh, sums) : 0;
  NRD_MPI_CHECK(MPI_Bcast(&total, 1, MPI_UNSIGNED_LONG_LONG, 0,
                          MPI_COMM_WORLD));

  char *path = checkpoint_path(p, 0), *prev = checkpoint_path(p, 1);
  size_t n = strlen(path) + 5;
  char *tmp = malloc(n);
  if (!tmp) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  snprintf(tmp, n, "%s.tmp", path);
  nrd_h5_quiet();
  hid_t fapl = H5(H5Pcreate(H5P_FILE_ACCESS));
  H5(H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL));
  /* from here on a fatal error on this rank removes FILE.tmp (and says
   * why writing it failed); FILE and FILE.prev stay as they are */
  nrd_h5_writing(tmp);
  hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  int bad[2] = {file < 0, file >= 0}; /* any rank failed, any succeeded */
  NRD_MPI_CHECK(
      MPI_Allreduce(MPI_IN_PLACE, bad, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  if (bad[0]) {
    char msg[512] = "";
    int e = 0;
    if (file < 0) {
      nrd_h5_last_error(msg, sizeof msg);
      int fd = open(tmp, O_WRONLY | O_CREAT, 0644);
      e = fd < 0 ? errno : (close(fd), nrd_h5_write_error(tmp));
    }
    if (!bad[1])
      nrd_fatal(NRD_EXIT_RUNTIME,
                "cannot create the checkpoint '%s': %s (HDF5: %s); the "
                "previous checkpoints are untouched",
                tmp, e ? strerror(e) : "reason unknown", msg);
    if (file < 0)
      NRD_ABORT(NRD_EXIT_RUNTIME,
                "cannot create the checkpoint '%s': %s (HDF5: %s)", tmp,
                e ? strerror(e) : "reason unknown", msg);
    NRD_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD)); /* until that rank aborts */
  }
  H5(H5Pclose(fapl));
  hid_t dxpl = H5(H5Pcreate(H5P_DATASET_XFER));
  H5(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE));

  h5u_attr_string(file, "signature", SIGNATURE);
  h5u_attr_long(file, "schema_version", SCHEMA_VERSION);
  h5u_attr_string(file, "nrdiff_version", version_nrdiff());
  /* kernels differ in the last digits: a restart should use the same */
  h5u_attr_string(file, "blas_kernels", openblas_get_corename());
  long shape[7] = {sh->n_points, sh->n_blocks, sh->particles, sh->steps,
                   sh->n_out,    sh->n_frames, sh->n_traj};
  h5u_attr_numbers(file, "shape", H5T_NATIVE_LONG, 7, shape);
  h5u_attr_numbers(file, "checksum", H5T_NATIVE_ULLONG, 1, &total);

  hid_t g = h5u_group(file, "parameters");
  int np = params_schema_size();
  char **key = calloc((size_t)np, sizeof *key);
  char **val = calloc((size_t)np, sizeof *val);
  if (!key || !val) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  for (int i = 0; i < np; i++) {
    key[i] = (char *)params_schema_name(i);
    if (!(val[i] = params_value_yaml(p, i)))
      NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  }
  h5u_dataset_strings(dxpl, g, "key", (size_t)np, key, 0);
  h5u_dataset_strings(dxpl, g, "value", (size_t)np, val, 0);
  for (int i = 0; i < np; i++)
    free(val[i]);
  free(key);
  free(val);
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
    uint64_t *mine = calloc((size_t)(s->n_blocks ? s->n_blocks : 1),
                            sizeof *mine);
    if (!mine) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
    for (long ib = 0; ib < s->n_blocks; ib++)
      mine[ib] = block_checksum(sh, s, ib);
    h5u_write_rows(dxpl, pg, "block_checksum", H5T_NATIVE_ULLONG, 2, d1,
                   s->n_blocks, s->blocks, mine);
    free(mine);
    if (flags[i] & 1) {
      local_rows r;
      local_rows_build(sh, s, &r);
      hsize_t dr[3] = {(hsize_t)sh->n_out, (hsize_t)sh->n_blocks,
                       (hsize_t)s->record};
      h5u_write_rows(dxpl, pg, "records", H5T_NATIVE_DOUBLE, 3, dr,
                     r.n_started, r.started, r.records);
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
  int rc[2] = {0, 0}; /* step that failed (1 fsync, 2 and 3 the renames), errno */
  if (h5u_root()) {
    if ((rc[1] = sync_file(tmp)) != 0) rc[0] = 1;
    if (!rc[0] && access(path, F_OK) == 0 && rename(path, prev) != 0)
      rc[0] = 2, rc[1] = errno;
    if (!rc[0] && rename(tmp, path) != 0) rc[0] = 3, rc[1] = errno;
    char *dir = strdup(path);
    if (dir) {
      char *slash = strrchr(dir, '/');
      if (slash) *slash = 0;
      sync_file(slash ? (slash == dir ? "/" : dir) : ".");
      free(dir);
    }
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

/* ---------------------------------------------------------------- read */

typedef enum { READ_OK, READ_DAMAGED, READ_MISMATCH } read_status;

/* Non-restartable parameters must be what the checkpoint was written with. */
static read_status check_parameters(const nrd_params *p, hid_t file,
                                    hid_t dxpl, char *err, size_t errlen) {
  int np = params_schema_size();
  hid_t g = H5Gopen2(file, "parameters", H5P_DEFAULT);
  if (g < 0) return READ_DAMAGED;
  read_status st = READ_OK;
  hid_t dk = H5Dopen2(g, "key", H5P_DEFAULT), dv = H5Dopen2(g, "value", H5P_DEFAULT);
  hid_t tk = dk >= 0 ? H5Dget_type(dk) : -1, tv = dv >= 0 ? H5Dget_type(dv) : -1;
  hid_t sk = dk >= 0 ? H5Dget_space(dk) : -1;
  hssize_t n = sk >= 0 ? H5Sget_simple_extent_npoints(sk) : -1;
  size_t wk = tk >= 0 ? H5Tget_size(tk) : 0, wv = tv >= 0 ? H5Tget_size(tv) : 0;
  char *keys = n > 0 ? calloc((size_t)n, wk + 1) : NULL;
  char *vals = n > 0 ? calloc((size_t)n, wv + 1) : NULL;
  if (!keys || !vals || H5Dread(dk, tk, H5S_ALL, H5S_ALL, dxpl, keys) < 0 ||
      H5Dread(dv, tv, H5S_ALL, H5S_ALL, dxpl, vals) < 0) {
    st = READ_DAMAGED;
  } else {
    for (int i = 0; i < np && st == READ_OK; i++) {
      if (params_schema_restartable(i)) continue;
      const char *name = params_schema_name(i);
      const char *old = NULL;
      for (hssize_t j = 0; j < n; j++)
        if (strncmp(keys + j * wk, name, wk) == 0 &&
            strlen(name) == strnlen(keys + j * wk, wk))
          old = vals + j * wv;
      char *now = params_value_yaml(p, i);
      if (!old || !now || strncmp(old, now, wv) != 0 ||
          strlen(now) != strnlen(old, wv)) {
        snprintf(err, errlen,
                 "key '%s' is %s now but was %.*s when the checkpoint was "
                 "written; it may not change on restart (only keys marked "
                 "'may change on restart' in --print-params may)",
                 name, now ? now : "?", (int)(old ? strnlen(old, wv) : 1),
                 old ? old : "?");
        st = READ_MISMATCH;
      }
      free(now);
    }
  }
  free(keys);
  free(vals);
  if (tk >= 0) H5Tclose(tk);
  if (tv >= 0) H5Tclose(tv);
  if (sk >= 0) H5Sclose(sk);
  if (dk >= 0) H5Dclose(dk);
  if (dv >= 0) H5Dclose(dv);
  H5Gclose(g);
  return st;
}

static read_status read_point(const run_shape *sh, hid_t points, hid_t dxpl,
                              int i, point_state *s, uint64_t *stored) {
  char name[32];
  snprintf(name, sizeof name, "%04d", i);
  hid_t pg = H5Gopen2(points, name, H5P_DEFAULT);
  if (pg < 0) return READ_DAMAGED;
  hsize_t d1[2] = {1, (hsize_t)sh->n_blocks};
  long all_idx_n = sh->n_blocks;
  long *all_idx = malloc((size_t)all_idx_n * sizeof *all_idx);
  for (long b = 0; all_idx && b < all_idx_n; b++)
    all_idx[b] = b;
  if (!all_idx) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  int r1 = h5u_read_rows(dxpl, pg, "block_checksum", H5T_NATIVE_ULLONG, 2, d1,
                         all_idx_n, all_idx, stored);
  int r2 = h5u_read_rows(dxpl, pg, "next_step", H5T_NATIVE_LONG, 2, d1,
                         s->n_blocks, s->blocks, s->next_step);
  free(all_idx);
  int ok = r1 == 0 && r2 == 0;
  for (long ib = 0; ok && ib < s->n_blocks; ib++)
    ok = s->next_step[ib] >= BLOCK_NOT_STARTED &&
         s->next_step[ib] <= sh->steps + 1;
  /* which datasets exist is the same on every rank */
  int has_records = H5Lexists(pg, "records", H5P_DEFAULT) > 0;
  int has_positions = H5Lexists(pg, "positions", H5P_DEFAULT) > 0;
  if (has_records) {
    /* read the rows of every local block that has started */
    long *started = calloc((size_t)(s->n_blocks ? s->n_blocks : 1),
                           sizeof *started);
    long *rows = calloc((size_t)(s->n_rows ? s->n_rows : 1), sizeof *rows);
    long *traj = calloc((size_t)(s->n_traj ? s->n_traj : 1), sizeof *traj);
    long ns = 0, nr = 0, nt = 0;
    for (long ib = 0; ib < s->n_blocks; ib++) {
      if (s->next_step[ib] == BLOCK_NOT_STARTED) continue;
      started[ns++] = s->blocks[ib];
      if (in_progress(sh, s->next_step[ib])) /* their particle ids */
        for (long k = 0; k < s->count[ib]; k++)
          rows[nr++] = s->blocks[ib] * sh->block_size + k;
    }
    for (long j = 0; j < s->n_traj; j++)
      if (s->next_step[s->traj_block[j]] != BLOCK_NOT_STARTED)
        traj[nt++] = s->traj[j];
    double *rec = calloc((size_t)sh->n_out * (ns ? ns : 1) * s->record,
                         sizeof *rec);
    double *pos = calloc((size_t)(nr ? nr : 1) * s->width, sizeof *pos);
    double *tr = calloc((size_t)sh->n_frames * (nt ? nt : 1) * s->d,
                        sizeof *tr);
    if (!started || !rows || !traj || !rec || !pos || !tr)
      NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
    hsize_t dr[3] = {(hsize_t)sh->n_out, (hsize_t)sh->n_blocks,
                     (hsize_t)s->record};
    hsize_t dt[3] = {(hsize_t)sh->n_frames, (hsize_t)sh->n_traj,
                     (hsize_t)s->d};
    hsize_t dp[3] = {1, (hsize_t)sh->particles, (hsize_t)s->width};
    /* every rank makes every collective read, whatever failed before */
    int rr = h5u_read_rows(dxpl, pg, "records", H5T_NATIVE_DOUBLE, 3, dr, ns,
                           started, rec);
    int rt = h5u_read_rows(dxpl, pg, "trajectories", H5T_NATIVE_DOUBLE, 3, dt,
                           nt, traj, tr);
    if (rr || rt) ok = 0;
    if (has_positions &&
        h5u_read_rows(dxpl, pg, "positions", H5T_NATIVE_DOUBLE, 3, dp, nr,
                      rows, pos) != 0)
      ok = 0;
    if (nr > 0 && !has_positions) ok = 0;
    /* unpack into the state */
    if (nr > 0 && !s->Y) {
      s->Y = calloc((size_t)s->n_rows * s->width, sizeof *s->Y);
      if (!s->Y) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
    }
    long k = 0, row = 0;
    for (long ib = 0; ib < s->n_blocks; ib++) {
      if (s->next_step[ib] == BLOCK_NOT_STARTED) continue;
      for (long o = 0; o < sh->n_out; o++)
        memcpy(s->records + ((size_t)o * s->n_blocks + ib) * s->record,
               rec + ((size_t)o * ns + k) * s->record,
               (size_t)s->record * sizeof(double));
      k++;
      if (in_progress(sh, s->next_step[ib])) {
        memcpy(s->Y + (size_t)s->first_row[ib] * s->width,
               pos + (size_t)row * s->width,
               (size_t)s->count[ib] * s->width * sizeof(double));
        row += s->count[ib];
      }
    }
    long t = 0;
    for (long j = 0; j < s->n_traj; j++) {
      if (s->next_step[s->traj_block[j]] == BLOCK_NOT_STARTED) continue;
      for (long f = 0; f < sh->n_frames; f++)
        memcpy(s->positions + ((size_t)f * s->n_traj + j) * s->d,
               tr + ((size_t)f * nt + t) * s->d, (size_t)s->d * sizeof(double));
      t++;
    }
    free(started);
    free(rows);
    free(traj);
    free(rec);
    free(pos);
    free(tr);
  } else {
    for (long ib = 0; ok && ib < s->n_blocks; ib++)
      ok = s->next_step[ib] == BLOCK_NOT_STARTED;
  }
  for (long ib = 0; ok && ib < s->n_blocks; ib++)
    ok = block_checksum(sh, s, ib) == stored[s->blocks[ib]];
  H5Gclose(pg);
  return ok ? READ_OK : READ_DAMAGED;
}

static read_status try_read(const nrd_params *p, const run_shape *sh,
                            point_state *ps, const char *path, char *why,
                            size_t whylen, char *err, size_t errlen) {
  int exists = h5u_root() ? access(path, F_OK) == 0 : 0;
  NRD_MPI_CHECK(MPI_Bcast(&exists, 1, MPI_INT, 0, MPI_COMM_WORLD));
  if (!exists) {
    snprintf(why, whylen, "%s: no such file", path);
    return READ_DAMAGED;
  }
  nrd_h5_quiet();
  hid_t fapl = H5(H5Pcreate(H5P_FILE_ACCESS));
  H5(H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL));
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  H5(H5Pclose(fapl));
  if (file < 0) {
    snprintf(why, whylen, "%s: not a readable HDF5 file (truncated?)", path);
    return READ_DAMAGED;
  }
  hid_t dxpl = H5(H5Pcreate(H5P_DATASET_XFER));
  H5(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE));
  read_status st = READ_OK;
  /* signature, schema version, shape */
  char sig[64] = "";
  long version = 0, shape[7] = {0};
  unsigned long long total = 0;
  hid_t a = H5Aopen(file, "signature", H5P_DEFAULT);
  if (a >= 0) {
    hid_t t = H5Aget_type(a);
    char *v = NULL;
    if (H5Tis_variable_str(t) > 0 && H5Aread(a, t, &v) >= 0 && v) {
      snprintf(sig, sizeof sig, "%s", v);
      H5free_memory(v);
    }
    H5Tclose(t);
    H5Aclose(a);
  }
  if (strcmp(sig, SIGNATURE) != 0) {
    snprintf(why, whylen, "%s: not an nrdiff checkpoint (signature)", path);
    st = READ_DAMAGED;
  }
  if (st == READ_OK && H5Aexists(file, "blas_kernels") > 0 &&
      (a = H5Aopen(file, "blas_kernels", H5P_DEFAULT)) >= 0) {
    hid_t t = H5Aget_type(a);
    char *v = NULL;
    if (H5Tis_variable_str(t) > 0 && H5Aread(a, t, &v) >= 0 && v) {
      if (h5u_root() && strcmp(v, openblas_get_corename()) != 0)
        nrd_warn("%s was written with OpenBLAS's %s kernels, this run uses "
                 "%s: the continuation may differ from an uninterrupted run "
                 "in the last digits (choose with --blas-kernel)",
                 path, v, openblas_get_corename());
      H5free_memory(v);
    }
    H5Tclose(t);
    H5Aclose(a);
  }
  if (st == READ_OK &&
      ((a = H5Aopen(file, "schema_version", H5P_DEFAULT)) < 0 ||
       H5Aread(a, H5T_NATIVE_LONG, &version) < 0 || H5Aclose(a) < 0 ||
       version != SCHEMA_VERSION)) {
    snprintf(why, whylen, "%s: checkpoint schema version %ld, expected %d",
             path, version, SCHEMA_VERSION);
    st = READ_DAMAGED;
  }
  long want[7] = {sh->n_points, sh->n_blocks, sh->particles, sh->steps,
                  sh->n_out,    sh->n_frames, sh->n_traj};
  if (st == READ_OK &&
      ((a = H5Aopen(file, "shape", H5P_DEFAULT)) < 0 ||
       H5Aread(a, H5T_NATIVE_LONG, shape) < 0 || H5Aclose(a) < 0 ||
       memcmp(shape, want, sizeof want) != 0)) {
    snprintf(why, whylen, "%s: written for another run plan", path);
    st = READ_DAMAGED;
  }
  if (st == READ_OK &&
      ((a = H5Aopen(file, "checksum", H5P_DEFAULT)) < 0 ||
       H5Aread(a, H5T_NATIVE_ULLONG, &total) < 0 || H5Aclose(a) < 0)) {
    snprintf(why, whylen, "%s: no checksum", path);
    st = READ_DAMAGED;
  }
  if (st == READ_OK) {
    st = check_parameters(p, file, dxpl, err, errlen);
    if (st == READ_DAMAGED)
      snprintf(why, whylen, "%s: unreadable parameters", path);
  }
  uint64_t **stored = calloc((size_t)sh->n_points, sizeof *stored);
  hid_t points = st == READ_OK ? H5Gopen2(file, "points", H5P_DEFAULT) : -1;
  if (st == READ_OK && points < 0) st = READ_DAMAGED;
  for (int i = 0; st == READ_OK && i < sh->n_points; i++) {
    if (!sh->selected[i]) continue;
    stored[i] = calloc((size_t)sh->n_blocks, sizeof **stored);
    if (!stored[i]) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
    read_status r = read_point(sh, points, dxpl, i, &ps[i], stored[i]);
    /* agree on damage before the next collective read */
    int bad = r != READ_OK, any = 0;
    NRD_MPI_CHECK(MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX,
                                MPI_COMM_WORLD));
    if (any) {
      snprintf(why, whylen,
               "%s: grid point %d does not match its checksums (damaged)",
               path, i);
      st = READ_DAMAGED;
    }
  }
  if (st == READ_OK && h5u_root() && file_checksum(sh, stored) != total) {
    snprintf(why, whylen, "%s: file checksum mismatch (damaged)", path);
    st = READ_DAMAGED;
  }
  int code = (int)st;
  NRD_MPI_CHECK(MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD));
  NRD_MPI_CHECK(MPI_Bcast(why, (int)whylen, MPI_CHAR, 0, MPI_COMM_WORLD));
  st = (read_status)code;
  for (int i = 0; i < sh->n_points; i++)
    free(stored[i]);
  free(stored);
  if (points >= 0) H5Gclose(points);
  H5Pclose(dxpl);
  H5Fclose(file);
  return st;
}

int checkpoint_read(const nrd_params *p, const run_shape *sh, point_state *ps,
                    char **used, char *err, size_t errlen) {
  char reasons[2][600] = {"", ""};
  for (int prev = 0; prev < 2; prev++) {
    char *path = checkpoint_path(p, prev);
    read_status st = try_read(p, sh, ps, path, reasons[prev],
                              sizeof reasons[prev], err, errlen);
    if (st == READ_OK) {
      *used = path;
      return NRD_OK;
    }
    free(path);
    if (st == READ_MISMATCH) return NRD_ERR_INPUT;
    if (h5u_root()) nrd_warn("checkpoint rejected: %s", reasons[prev]);
  }
  snprintf(err, errlen, "no valid checkpoint to restart from (%s; %s)",
           reasons[0], reasons[1]);
  return NRD_ERR_IO;
}

void checkpoint_remove(const nrd_params *p) {
  if (!h5u_root()) return;
  for (int prev = 0; prev < 2; prev++) {
    char *path = checkpoint_path(p, prev);
    unlink(path);
    free(path);
  }
}
