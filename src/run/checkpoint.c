/* Checkpoints (see checkpoint.h and doc/restart.md).
 *
 * Layout of FILE (HDF5, written collectively), schema version 2:
 *   /            attrs signature, schema_version, nrdiff_version,
 *                blas_kernels, shape (n_points, n_blocks, block_size,
 *                particles, steps, n_out, n_frames, n_traj),
 *                selected[n_points] (the points this invocation runs:
 *                --grid-index), checksum
 *   /parameters  key, value (YAML text): what the run was started with
 *   /points/IIII attrs record, dimension, state_width;
 *                next_step[1][B], block_checksum[1][B];
 *                records[n_out][B][record] once a block has started;
 *                trajectories[n_frames][n_traj][d] likewise;
 *                positions[1][particles][state_width] while a block is in
 *                progress (the main position, then the protocols' state:
 *                protocol.h).
 * Checksums (FNV-1a) form a tree: every block's checksum covers its
 * next_step, record rows, positions (if in progress) and sampled
 * trajectories; the file's checksum covers every other value read back
 * (the root attributes, every parameter's key and value, every point's
 * attributes) and every block checksum.  So a flipped byte anywhere in what
 * is read back is damage, never a "changed parameter".
 *
 * Reading (try_read) is in two passes, so that the ranks never disagree in
 * the middle of a collective HDF5 call (a damaged file can make one rank's
 * H5Dread fail or block while another's succeeds):
 *   1. rank 0 alone opens FILE with the serial sec2 driver and checks it
 *      completely: file type and size, superblock end-of-file address,
 *      signature, schema version, every attribute and dataset it needs (type
 *      and shape), the file checksum; then the parameters (a difference is
 *      the user's: exit 2 naming the key) and the run shape (a difference
 *      with identical parameters is damage); then every byte of every block
 *      against its checksum.  The verdict and its reason go to every rank.
 *   2. only a file that passed is opened collectively; each rank reads its
 *      own blocks and checks them against the block checksums rank 0
 *      verified, and the ranks agree on the result. */
#define _POSIX_C_SOURCE 200809L /* fsync, fileno */
#include "config.h"

#include "run/checkpoint.h"
#include "util/error.h"
#include "io/h5check.h"
#include "io/h5util.h"
#include "util/log.h"
#include "util/version.h"

#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define H5 NRD_H5_CHECK

static const char SIGNATURE[] = "nrdiff-checkpoint";
/* 2: the file checksum covers the parameters and attributes; selected */
enum { SCHEMA_VERSION = 2 };

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

static uint64_t fnv_long(uint64_t h, long v) {
  return fnv(h, &v, sizeof v);
}

/* A string as its length, then its bytes. */
static uint64_t fnv_string(uint64_t h, const char *s) {
  size_t n = s ? strlen(s) : 0;
  h = fnv_long(h, (long)n);
  return fnv(h, s ? s : "", n);
}

/* Everything a checkpoint holds besides the blocks' data (which the block
 * checksums cover): the values the file checksum is computed over, as the
 * writer has them and as the reader reads them back. */
typedef struct {
  const char *signature, *nrdiff_version, *blas_kernels;
  long schema_version;
  long shape[8]; /* n_points, n_blocks, block_size, particles, steps, n_out,
                    n_frames, n_traj */
  const int *selected; /* shape[0] */
  long n_params;
  char *const *key, *const *value; /* n_params each */
  const long (*attrs)[3]; /* per point: record, dimension, state_width */
  uint64_t *const *sums;  /* per selected point: shape[1] block sums */
} ckpt_meta;

static uint64_t meta_checksum(const ckpt_meta *m) {
  uint64_t h = fnv_string(FNV_SEED, m->signature);
  h = fnv_long(h, m->schema_version);
  h = fnv_string(h, m->nrdiff_version);
  h = fnv_string(h, m->blas_kernels);
  for (int k = 0; k < 8; k++)
    h = fnv_long(h, m->shape[k]);
  h = fnv_long(h, m->n_params);
  for (long k = 0; k < m->n_params; k++) {
    h = fnv_string(h, m->key[k]);
    h = fnv_string(h, m->value[k]);
  }
  for (long i = 0; i < m->shape[0]; i++) {
    h = fnv_long(h, m->selected[i] != 0);
    if (!m->selected[i]) continue;
    h = fnv_long(h, i);
    for (int k = 0; k < 3; k++)
      h = fnv_long(h, m->attrs[i][k]);
    h = fnv(h, m->sums[i], (size_t)m->shape[1] * sizeof(uint64_t));
  }
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
  int np = params_schema_size();
  char **key = calloc((size_t)np, sizeof *key);
  char **val = calloc((size_t)np, sizeof *val);
  long(*attrs)[3] = calloc((size_t)P, sizeof *attrs);
  if (!key || !val || !attrs) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  for (int i = 0; i < np; i++) {
    key[i] = (char *)params_schema_name(i);
    if (!(val[i] = params_value_yaml(p, i)))
      NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  }
  for (int i = 0; i < P; i++) {
    attrs[i][0] = ps[i].record;
    attrs[i][1] = ps[i].d;
    attrs[i][2] = ps[i].width;
  }
  ckpt_meta meta = {.signature = SIGNATURE,
                    .nrdiff_version = version_nrdiff(),
                    .blas_kernels = openblas_get_corename(),
                    .schema_version = SCHEMA_VERSION,
                    .shape = {sh->n_points, sh->n_blocks, sh->block_size,
                              sh->particles, sh->steps, sh->n_out, sh->n_frames,
                              sh->n_traj},
                    .selected = sh->selected,
                    .n_params = np,
                    .key = key,
                    .value = val,
                    .attrs = (const long(*)[3])attrs,
                    .sums = sums};
  unsigned long long total = h5u_root() ? meta_checksum(&meta) : 0;
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
  /* the 1.8 formats checksum the superblock and object headers, so HDF5
   * itself rejects most damaged metadata instead of following it */
  H5(H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V110));
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

  h5u_attr_fixed_string(file, "signature", meta.signature);
  h5u_attr_long(file, "schema_version", meta.schema_version);
  h5u_attr_fixed_string(file, "nrdiff_version", meta.nrdiff_version);
  /* kernels differ in the last digits: a restart should use the same */
  h5u_attr_fixed_string(file, "blas_kernels", meta.blas_kernels);
  h5u_attr_numbers(file, "shape", H5T_NATIVE_LONG, 8, meta.shape);
  h5u_attr_numbers(file, "selected", H5T_NATIVE_INT, P, sh->selected);
  h5u_attr_numbers(file, "checksum", H5T_NATIVE_ULLONG, 1, &total);

  hid_t g = h5u_group(file, "parameters");
  h5u_dataset_strings(dxpl, g, "key", (size_t)np, key, 0);
  h5u_dataset_strings(dxpl, g, "value", (size_t)np, val, 0);
  for (int i = 0; i < np; i++)
    free(val[i]);
  free(key);
  free(val);
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

/* The global block of every sampled trajectory, per point (n_points x
 * n_traj, -1 for points not run): each rank knows those of its own blocks.
 * Collective. */
static long *trajectory_blocks(const run_shape *sh, const point_state *ps) {
  size_t n = (size_t)sh->n_points * (size_t)sh->n_traj;
  long *map = malloc((n ? n : 1) * sizeof *map);
  if (!map) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  for (size_t k = 0; k < n; k++)
    map[k] = -1;
  for (int i = 0; i < sh->n_points; i++)
    if (sh->selected[i])
      for (long j = 0; j < ps[i].n_traj; j++)
        map[(size_t)i * sh->n_traj + ps[i].traj[j]] =
            ps[i].blocks[ps[i].traj_block[j]];
  if (n)
    NRD_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, map, (int)n, MPI_LONG, MPI_MAX,
                                MPI_COMM_WORLD));
  return map;
}

/* ----- rank 0's serial check: helpers that fail (return -1) quietly on
 * anything unexpected, never abort */

/* A numeric attribute of n elements (a scalar if n == 1) whose type is of
 * class cls and `size` bytes, read as mem. */
static int attr_numbers(hid_t obj, const char *name, H5T_class_t cls,
                        size_t size, hid_t mem, long n, void *out) {
  if (H5Aexists(obj, name) <= 0) return -1;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return -1;
  hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
  int ok = t >= 0 && sp >= 0 && H5Tget_class(t) == cls &&
           H5Tget_size(t) == size && H5Sget_simple_extent_npoints(sp) == n &&
           H5Sget_simple_extent_ndims(sp) <= 1 && H5Aread(a, mem, out) >= 0;
  if (sp >= 0) H5Sclose(sp);
  if (t >= 0) H5Tclose(t);
  H5Aclose(a);
  return ok ? 0 : -1;
}

/* The bytes after a fixed-length string's end are zero (the writer's
 * padding): anything else is damage too. */
static int padding_is_zero(const char *s, size_t len, size_t w) {
  for (size_t k = len; k < w; k++)
    if (s[k]) return 0;
  return 1;
}

/* A scalar fixed-length string attribute (malloc'd copy), or NULL.
 * Variable-length ones (schema 1) are not read: their bytes live in the
 * global heap, and HDF5 follows a damaged reference there into a crash. */
static char *attr_string(hid_t obj, const char *name) {
  if (H5Aexists(obj, name) <= 0) return NULL;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return NULL;
  hid_t t = H5Aget_type(a), sp = H5Aget_space(a), mem = -1;
  size_t w = t >= 0 ? H5Tget_size(t) : 0;
  char *v = NULL;
  if (t >= 0 && sp >= 0 && H5Tget_class(t) == H5T_STRING &&
      H5Tis_variable_str(t) == 0 && w > 0 && w < 65536 &&
      H5Sget_simple_extent_type(sp) == H5S_SCALAR &&
      (v = calloc(w + 1, 1)) != NULL) {
    mem = H5Tcopy(t); /* the bytes as stored, padding included */
    if (mem < 0 || H5Aread(a, mem, v) < 0 ||
        !padding_is_zero(v, strnlen(v, w), w)) {
      free(v);
      v = NULL;
    }
  }
  if (mem >= 0) H5Tclose(mem);
  if (sp >= 0) H5Sclose(sp);
  if (t >= 0) H5Tclose(t);
  H5Aclose(a);
  return v;
}

/* Open dataset `name` if its type is of class cls, `size` bytes (and, for
 * integers, the signedness sign) and its dims are exactly dims[0..rank). */
static hid_t dataset_checked(hid_t g, const char *name, H5T_class_t cls,
                             size_t size, H5T_sign_t sign, int rank,
                             const hsize_t *dims) {
  if (H5Lexists(g, name, H5P_DEFAULT) <= 0) return -1;
  hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
  if (ds < 0) return -1;
  hid_t t = H5Dget_type(ds), sp = H5Dget_space(ds);
  hsize_t have[8];
  int ok = t >= 0 && sp >= 0 && H5Tget_class(t) == cls &&
           H5Tget_size(t) == size &&
           (cls != H5T_INTEGER || H5Tget_sign(t) == sign) &&
           H5Sget_simple_extent_ndims(sp) == rank &&
           H5Sget_simple_extent_dims(sp, have, NULL) == rank;
  for (int k = 0; ok && k < rank; k++)
    ok = have[k] == dims[k];
  if (sp >= 0) H5Sclose(sp);
  if (t >= 0) H5Tclose(t);
  if (!ok) {
    H5Dclose(ds);
    return -1;
  }
  return ds;
}

/* Read the box start[] + count[] of a dataset (serial). */
static int read_box(hid_t ds, hid_t mem, int rank, const hsize_t *start,
                    const hsize_t *count, void *buf) {
  hid_t fs = H5Dget_space(ds);
  if (fs < 0) return -1;
  hsize_t n = 1;
  for (int k = 0; k < rank; k++)
    n *= count[k];
  hid_t ms = H5Screate_simple(1, &n, NULL);
  herr_t rc = -1;
  if (ms >= 0 &&
      H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0)
    rc = H5Dread(ds, mem, ms, fs, H5P_DEFAULT, buf);
  if (ms >= 0) H5Sclose(ms);
  H5Sclose(fs);
  return rc >= 0 ? 0 : -1;
}

/* A 1-d dataset of n fixed-length strings: n malloc'd NUL-terminated
 * copies (*out), or -1.  At most `limit` bytes. */
static int dataset_strings(hid_t g, const char *name, long n, size_t limit,
                           char ***out) {
  *out = NULL;
  if (H5Lexists(g, name, H5P_DEFAULT) <= 0) return -1;
  hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
  if (ds < 0) return -1;
  hid_t t = H5Dget_type(ds), sp = H5Dget_space(ds), mem = -1;
  hsize_t have = 0;
  size_t w = t >= 0 ? H5Tget_size(t) : 0;
  int ok = t >= 0 && sp >= 0 && H5Tget_class(t) == H5T_STRING &&
           H5Tis_variable_str(t) == 0 && w > 0 &&
           H5Sget_simple_extent_ndims(sp) == 1 &&
           H5Sget_simple_extent_dims(sp, &have, NULL) == 1 &&
           have == (hsize_t)n && n > 0 && w <= limit / (size_t)n;
  char *buf = ok ? calloc((size_t)n, w) : NULL;
  char **v = ok ? calloc((size_t)n, sizeof *v) : NULL;
  if (ok && (!buf || !v)) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  if (ok) {
    /* the file's own type: the bytes as stored, padding included */
    mem = H5Tcopy(t);
    ok = mem >= 0 && H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
  }
  for (long k = 0; ok && k < n; k++) {
    const char *s = buf + (size_t)k * w;
    size_t len = strnlen(s, w);
    ok = padding_is_zero(s, len, w);
    if (!(v[k] = malloc(len + 1))) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
    memcpy(v[k], s, len);
    v[k][len] = 0;
  }
  if (!ok && v) {
    for (long k = 0; k < n; k++)
      free(v[k]);
    free(v);
    v = NULL;
  }
  free(buf);
  if (mem >= 0) H5Tclose(mem);
  if (sp >= 0) H5Sclose(sp);
  if (t >= 0) H5Tclose(t);
  H5Dclose(ds);
  *out = v;
  return ok ? 0 : -1;
}

/* Non-restartable parameters must be what the checkpoint was written with
 * (key, value: the checkpoint's n, verified). */
static read_status compare_parameters(const nrd_params *p, long n,
                                      char *const *key, char *const *value,
                                      char *err, size_t errlen) {
  int np = params_schema_size();
  read_status st = READ_OK;
  for (int i = 0; i < np && st == READ_OK; i++) {
    if (params_schema_restartable(i)) continue;
    const char *name = params_schema_name(i);
    const char *old = NULL;
    for (long j = 0; j < n && !old; j++)
      if (strcmp(key[j], name) == 0) old = value[j];
    char *now = params_value_yaml(p, i);
    if (!now) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
    if (!old)
      snprintf(err, errlen,
               "key '%s' (%s now) is not in the checkpoint, which another "
               "nrdiff version wrote; it may not change on restart",
               name, now);
    else if (strcmp(old, now) != 0)
      snprintf(err, errlen,
               "key '%s' is %s now but was %s when the checkpoint was "
               "written; it may not change on restart (only keys marked "
               "'may change on restart' in --print-params may)",
               name, now, old);
    if (!old || strcmp(old, now) != 0) st = READ_MISMATCH;
    free(now);
  }
  return st;
}

/* The points a selection runs, as text ("all 4", or "2"). */
static void describe_selection(const int *sel, long n, char *buf, size_t len) {
  long k = 0, last = -1;
  for (long i = 0; i < n; i++)
    if (sel[i]) k++, last = i;
  if (k == n)
    snprintf(buf, len, "all %ld grid points", n);
  else if (k == 1)
    snprintf(buf, len, "grid point %ld only (--grid-index %ld)", last, last);
  else
    snprintf(buf, len, "%ld of %ld grid points", k, n);
}

/* What rank 0's check read: freed by check_free. */
typedef struct {
  char *signature, *nrdiff_version, *blas_kernels;
  long n_params;
  char **key, **value;
  int *selected;
  long (*attrs)[3];
  uint64_t **sums; /* per point of the file's selection */
  long n_points;
} ckpt_read;

static void check_free(ckpt_read *r) {
  free(r->signature);
  free(r->nrdiff_version);
  free(r->blas_kernels);
  for (long k = 0; k < r->n_params; k++) {
    if (r->key) free(r->key[k]);
    if (r->value) free(r->value[k]);
  }
  free(r->key);
  free(r->value);
  for (long i = 0; r->sums && i < r->n_points; i++)
    free(r->sums[i]);
  free(r->sums);
  free(r->selected);
  free(r->attrs);
  memset(r, 0, sizeof *r);
}

#define REJECT(...)                                                            \
  do {                                                                         \
    snprintf(why, whylen, __VA_ARGS__);                                        \
    return READ_DAMAGED;                                                       \
  } while (0)

/* Rank 0: the metadata of an open FILE (size bytes), checked against the
 * file checksum; then the parameters, selection and shape against this
 * run's. */
static read_status check_meta(const nrd_params *p, const run_shape *sh,
                              const point_state *ps, hid_t file, off_t size,
                              const char *path, ckpt_read *r, char *why,
                              size_t whylen, char *err, size_t errlen) {
  /* the version first: schema 1 wrote the signature as a variable-length
   * string, which attr_string does not read */
  long version = 0;
  int has_version = attr_numbers(file, "schema_version", H5T_INTEGER, 8,
                                 H5T_NATIVE_LONG, 1, &version) == 0;
  r->signature = attr_string(file, "signature");
  if ((!r->signature || strcmp(r->signature, SIGNATURE) != 0) &&
      (!has_version || version == SCHEMA_VERSION))
    REJECT("%s: not an nrdiff checkpoint (signature)", path);
  if (!has_version) REJECT("%s: unreadable schema version (damaged)", path);
  if (version != SCHEMA_VERSION)
    REJECT("%s: checkpoint schema version %ld, this nrdiff reads version %d "
           "only (written by another nrdiff version: finish that run with "
           "the nrdiff that started it)",
           path, version, SCHEMA_VERSION);
  long shape[8];
  unsigned long long total = 0;
  r->nrdiff_version = attr_string(file, "nrdiff_version");
  r->blas_kernels = attr_string(file, "blas_kernels");
  if (!r->nrdiff_version || !r->blas_kernels ||
      attr_numbers(file, "shape", H5T_INTEGER, 8, H5T_NATIVE_LONG, 8, shape) ||
      attr_numbers(file, "checksum", H5T_INTEGER, 8, H5T_NATIVE_ULLONG, 1,
                   &total))
    REJECT("%s: missing or unreadable attributes (damaged)", path);
  /* nothing is allocated by an unverified size beyond the file's size
   * (the selection and the block checksums are stored in it) */
  for (int k = 0; k < 8; k++)
    if (shape[k] < 0) shape[0] = -1;
  if (shape[0] < 1 || shape[1] < 1 || shape[0] > (long)size / 4 ||
      shape[1] > (long)size / 8)
    REJECT("%s: impossible shape attribute (damaged)", path);
  long P = r->n_points = shape[0], B = shape[1];
  r->selected = calloc((size_t)P, sizeof *r->selected);
  r->attrs = calloc((size_t)P, sizeof *r->attrs);
  r->sums = calloc((size_t)P, sizeof *r->sums);
  if (!r->selected || !r->attrs || !r->sums)
    NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  if (attr_numbers(file, "selected", H5T_INTEGER, 4, H5T_NATIVE_INT, P,
                   r->selected))
    REJECT("%s: missing or unreadable attribute 'selected' (damaged)", path);
  hid_t g = H5Lexists(file, "parameters", H5P_DEFAULT) > 0
                ? H5Gopen2(file, "parameters", H5P_DEFAULT)
                : -1;
  hid_t dk = g >= 0 ? H5Dopen2(g, "key", H5P_DEFAULT) : -1;
  hid_t sk = dk >= 0 ? H5Dget_space(dk) : -1;
  hssize_t n = sk >= 0 ? H5Sget_simple_extent_npoints(sk) : -1;
  if (sk >= 0) H5Sclose(sk);
  if (dk >= 0) H5Dclose(dk);
  int bad = n <= 0 || n > (hssize_t)size;
  if (!bad) {
    r->n_params = (long)n;
    bad = dataset_strings(g, "key", r->n_params, (size_t)size, &r->key) ||
          dataset_strings(g, "value", r->n_params, (size_t)size, &r->value);
  }
  if (g >= 0) H5Gclose(g);
  if (bad) REJECT("%s: missing or unreadable parameters (damaged)", path);
  hid_t points = H5Lexists(file, "points", H5P_DEFAULT) > 0
                     ? H5Gopen2(file, "points", H5P_DEFAULT)
                     : -1;
  if (points < 0) REJECT("%s: no points group (damaged)", path);
  for (long i = 0; i < P && !bad; i++) {
    if (!r->selected[i]) continue;
    char name[32];
    snprintf(name, sizeof name, "%04ld", i);
    hid_t pg = H5Lexists(points, name, H5P_DEFAULT) > 0
                   ? H5Gopen2(points, name, H5P_DEFAULT)
                   : -1;
    r->sums[i] = calloc((size_t)B, sizeof **r->sums);
    if (!r->sums[i]) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
    hsize_t d1[2] = {1, (hsize_t)B}, start[2] = {0, 0};
    hid_t ds = pg >= 0 ? dataset_checked(pg, "block_checksum", H5T_INTEGER, 8,
                                         H5T_SGN_NONE, 2, d1)
                       : -1;
    bad = pg < 0 || ds < 0 ||
          attr_numbers(pg, "record", H5T_INTEGER, 8, H5T_NATIVE_LONG, 1,
                       &r->attrs[i][0]) ||
          attr_numbers(pg, "dimension", H5T_INTEGER, 8, H5T_NATIVE_LONG, 1,
                       &r->attrs[i][1]) ||
          attr_numbers(pg, "state_width", H5T_INTEGER, 8, H5T_NATIVE_LONG, 1,
                       &r->attrs[i][2]) ||
          read_box(ds, H5T_NATIVE_UINT64, 2, start, d1, r->sums[i]);
    if (ds >= 0) H5Dclose(ds);
    if (pg >= 0) H5Gclose(pg);
    if (bad)
      snprintf(why, whylen,
               "%s: grid point %ld: missing or unreadable attributes or block "
               "checksums (damaged)",
               path, i);
  }
  H5Gclose(points);
  if (bad) return READ_DAMAGED;
  ckpt_meta m = {.signature = r->signature,
                 .nrdiff_version = r->nrdiff_version,
                 .blas_kernels = r->blas_kernels,
                 .schema_version = version,
                 .selected = r->selected,
                 .n_params = r->n_params,
                 .key = r->key,
                 .value = r->value,
                 .attrs = (const long(*)[3])r->attrs,
                 .sums = r->sums};
  memcpy(m.shape, shape, sizeof shape);
  if (meta_checksum(&m) != total)
    REJECT("%s: the checksum over its parameters, attributes and block "
           "checksums does not match (damaged)",
           path);

  /* verified: now what differs from this run is the user's doing */
  read_status st =
      compare_parameters(p, r->n_params, r->key, r->value, err, errlen);
  if (st != READ_OK) return st;
  long want[8] = {sh->n_points, sh->n_blocks, sh->block_size, sh->particles,
                  sh->steps,    sh->n_out,    sh->n_frames,   sh->n_traj};
  if (memcmp(shape, want, sizeof want) != 0)
    REJECT("%s: written for another run shape (points, blocks, block size, "
           "particles, steps, outputs, frames, trajectories = %ld %ld %ld "
           "%ld %ld %ld %ld %ld, this run %ld %ld %ld %ld %ld %ld %ld %ld) "
           "with the same parameters (damaged, or another nrdiff version)",
           path, shape[0], shape[1], shape[2], shape[3], shape[4], shape[5],
           shape[6], shape[7], want[0], want[1], want[2], want[3], want[4],
           want[5], want[6], want[7]);
  int same = 1;
  for (long i = 0; same && i < P; i++)
    same = !r->selected[i] == !sh->selected[i];
  if (!same) {
    char was[96], now[96];
    describe_selection(r->selected, P, was, sizeof was);
    describe_selection(sh->selected, sh->n_points, now, sizeof now);
    snprintf(err, errlen,
             "the checkpoint was written by a run of %s, this run would run "
             "%s: restart with the same --grid-index",
             was, now);
    return READ_MISMATCH;
  }
  for (long i = 0; i < P; i++)
    if (sh->selected[i] &&
        (r->attrs[i][0] != ps[i].record || r->attrs[i][1] != ps[i].d ||
         r->attrs[i][2] != ps[i].width))
      REJECT("%s: grid point %ld: record, dimension or state width (%ld %ld "
             "%ld) are not this run's (%d %d %d) with the same parameters "
             "(damaged, or another nrdiff version)",
             path, i, r->attrs[i][0], r->attrs[i][1], r->attrs[i][2],
             ps[i].record, ps[i].d, ps[i].width);
  return READ_OK;
}

/* Rank 0: every block of point i against its (verified) checksum, reading
 * every byte the ranks will read back. */
static read_status check_point_data(const run_shape *sh, const point_state *s,
                                    const long *tmap, hid_t points, long i,
                                    const uint64_t *sums, const char *path,
                                    char *why, size_t whylen) {
  long B = sh->n_blocks;
  char name[32];
  snprintf(name, sizeof name, "%04ld", i);
  hid_t pg = H5Gopen2(points, name, H5P_DEFAULT);
  if (pg < 0) REJECT("%s: grid point %ld: unreadable group (damaged)", path, i);
  hsize_t d1[2] = {1, (hsize_t)B}, z2[2] = {0, 0};
  long *next = calloc((size_t)B, sizeof *next);
  if (!next) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  hid_t dn = dataset_checked(pg, "next_step", H5T_INTEGER, 8, H5T_SGN_2, 2, d1);
  int ok = dn >= 0 && read_box(dn, H5T_NATIVE_LONG, 2, z2, d1, next) == 0;
  if (dn >= 0) H5Dclose(dn);
  int started = 0, running = 0;
  for (long b = 0; ok && b < B; b++) {
    ok = next[b] >= BLOCK_NOT_STARTED && next[b] <= sh->steps + 1;
    started |= next[b] != BLOCK_NOT_STARTED;
    running |= in_progress(sh, next[b]);
  }
  hsize_t dr[3] = {(hsize_t)sh->n_out, (hsize_t)B, (hsize_t)s->record};
  hsize_t dt[3] = {(hsize_t)sh->n_frames, (hsize_t)sh->n_traj, (hsize_t)s->d};
  hsize_t dp[3] = {1, (hsize_t)sh->particles, (hsize_t)s->width};
  hid_t drec = -1, dtr = -1, dpos = -1;
  /* the writer's rule: records and trajectories once a block has started,
   * positions while one is in progress */
  if (ok)
    ok = (H5Lexists(pg, "records", H5P_DEFAULT) > 0) == started &&
         (H5Lexists(pg, "trajectories", H5P_DEFAULT) > 0) == started &&
         (H5Lexists(pg, "positions", H5P_DEFAULT) > 0) == running;
  if (ok && started) {
    drec = dataset_checked(pg, "records", H5T_FLOAT, 8, H5T_SGN_ERROR, 3, dr);
    dtr =
        dataset_checked(pg, "trajectories", H5T_FLOAT, 8, H5T_SGN_ERROR, 3, dt);
    ok = drec >= 0 && dtr >= 0;
  }
  if (ok && running) {
    dpos = dataset_checked(pg, "positions", H5T_FLOAT, 8, H5T_SGN_ERROR, 3, dp);
    ok = dpos >= 0;
  }
  if (!ok) {
    if (drec >= 0) H5Dclose(drec);
    if (dtr >= 0) H5Dclose(dtr);
    if (dpos >= 0) H5Dclose(dpos);
    H5Gclose(pg);
    free(next);
    REJECT("%s: grid point %ld: block states or datasets (type, shape) are "
           "not what its blocks need (damaged)",
           path, i);
  }
  size_t nrec = (size_t)sh->n_out * s->record;
  size_t npos = (size_t)sh->block_size * s->width;
  size_t ntr = (size_t)sh->n_frames * s->d;
  size_t nbuf = nrec > npos ? nrec : npos;
  if (ntr > nbuf) nbuf = ntr;
  double *buf = malloc((nbuf ? nbuf : 1) * sizeof *buf);
  if (!buf) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  long bad_block = -1;
  for (long b = 0; b < B && bad_block < 0; b++) {
    uint64_t h = fnv(FNV_SEED, &next[b], sizeof(long));
    int rc = 0;
    if (next[b] != BLOCK_NOT_STARTED) {
      hsize_t st[3] = {0, (hsize_t)b, 0}, ct[3] = {dr[0], 1, dr[2]};
      if (nrec) rc |= read_box(drec, H5T_NATIVE_DOUBLE, 3, st, ct, buf);
      h = fnv(h, buf, nrec * sizeof(double));
      if (in_progress(sh, next[b])) {
        long first = b * sh->block_size, left = sh->particles - first;
        long count = left < sh->block_size ? left : sh->block_size;
        hsize_t sp[3] = {0, (hsize_t)first, 0},
                cp[3] = {1, (hsize_t)count, dp[2]};
        size_t m = (size_t)count * s->width;
        if (m) rc |= read_box(dpos, H5T_NATIVE_DOUBLE, 3, sp, cp, buf);
        h = fnv(h, buf, m * sizeof(double));
      }
      for (long j = 0; j < sh->n_traj; j++) {
        if (tmap[j] != b) continue;
        hsize_t sj[3] = {0, (hsize_t)j, 0}, cj[3] = {dt[0], 1, dt[2]};
        if (ntr) rc |= read_box(dtr, H5T_NATIVE_DOUBLE, 3, sj, cj, buf);
        h = fnv(h, buf, ntr * sizeof(double));
      }
    }
    if (rc || h != sums[b]) bad_block = b;
  }
  free(buf);
  free(next);
  if (drec >= 0) H5Dclose(drec);
  if (dtr >= 0) H5Dclose(dtr);
  if (dpos >= 0) H5Dclose(dpos);
  H5Gclose(pg);
  if (bad_block >= 0)
    REJECT("%s: grid point %ld, block %ld does not match its checksum "
           "(damaged)",
           path, i, bad_block);
  return READ_OK;
}

/* Rank 0, serially (sec2 driver, no MPI-IO): is FILE a valid checkpoint of
 * this run?  On READ_OK, sums[i] (selected points) hold the verified block
 * checksums; *seen is the file's stat. */
static read_status check_file(const nrd_params *p, const run_shape *sh,
                              const point_state *ps, const long *tmap,
                              const char *path, uint64_t **sums,
                              struct stat *seen, char *why, size_t whylen,
                              char *err, size_t errlen) {
  struct stat stt;
  memset(seen, 0, sizeof *seen);
  if (stat(path, &stt) != 0) {
    if (errno == ENOENT) REJECT("%s: no such file", path);
    REJECT("%s: %s", path, strerror(errno));
  }
  if (!S_ISREG(stt.st_mode)) REJECT("%s: not a regular file", path);
  if (stt.st_size == 0) REJECT("%s: empty file", path);
  *seen = stt;
  nrd_h5_quiet();
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0 || H5Pset_fapl_sec2(fapl) < 0 ||
      H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0)
    NRD_ABORT(NRD_EXIT_RUNTIME, "cannot set up a serial HDF5 file access");
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  char msg[512] = "";
  if (file < 0) nrd_h5_last_error(msg, sizeof msg); /* before the next call */
  H5Pclose(fapl);
  if (file < 0) {
    REJECT("%s: not a readable HDF5 file (truncated or damaged: %s)", path,
           msg);
  }
  /* our files end where their superblock says: a smaller end-of-file
   * address hides data from HDF5 (and made collective reads hang) */
  haddr_t eoa = 0;
  if (H5Fget_eoa(file, &eoa) < 0 || eoa != (haddr_t)stt.st_size) {
    H5Fclose(file);
    REJECT("%s: the end-of-file address in its superblock (%llu) is not its "
           "size (%lld bytes) (damaged)",
           path, (unsigned long long)eoa, (long long)stt.st_size);
  }
  ckpt_read r = {0};
  read_status st = check_meta(p, sh, ps, file, stt.st_size, path, &r, why,
                              whylen, err, errlen);
  hid_t points = st == READ_OK ? H5Gopen2(file, "points", H5P_DEFAULT) : -1;
  if (st == READ_OK && points < 0) {
    snprintf(why, whylen, "%s: no points group (damaged)", path);
    st = READ_DAMAGED;
  }
  for (int i = 0; st == READ_OK && i < sh->n_points; i++) {
    if (!sh->selected[i]) continue;
    st = check_point_data(sh, &ps[i], tmap + (size_t)i * sh->n_traj, points, i,
                          r.sums[i], path, why, whylen);
    if (st == READ_OK)
      memcpy(sums[i], r.sums[i], (size_t)sh->n_blocks * sizeof **sums);
  }
  if (points >= 0) H5Gclose(points);
  if (st == READ_OK && strcmp(r.blas_kernels, openblas_get_corename()) != 0)
    nrd_warn("%s was written with OpenBLAS's %s kernels, this run uses "
             "%s: the continuation may differ from an uninterrupted run "
             "in the last digits (choose with --blas-kernel)",
             path, r.blas_kernels, openblas_get_corename());
  check_free(&r);
  H5Fclose(file);
  H5Eclear2(H5E_DEFAULT);
  return st;
}

#undef REJECT

/* ----- the collective pass, for a file rank 0 has verified */

/* Forget what a rejected file may have put into the state. */
static void state_reset(const run_shape *sh, point_state *s) {
  for (long ib = 0; ib < s->n_blocks; ib++)
    s->next_step[ib] = BLOCK_NOT_STARTED;
  memset(s->records, 0,
         (size_t)sh->n_out * s->n_blocks * s->record * sizeof *s->records);
  memset(s->positions, 0,
         (size_t)sh->n_frames * s->n_traj * s->d * sizeof *s->positions);
  if (s->Y) memset(s->Y, 0, (size_t)s->n_rows * s->width * sizeof *s->Y);
}

/* Collective: this rank's blocks of point i, checked against the verified
 * checksums `sums` (every rank makes every collective read). */
static read_status read_point(const run_shape *sh, hid_t points, hid_t dxpl,
                              int i, point_state *s, const uint64_t *sums) {
  char name[32];
  snprintf(name, sizeof name, "%04d", i);
  /* rank 0 has opened this group: it exists on every rank */
  hid_t pg = H5Gopen2(points, name, H5P_DEFAULT);
  if (pg < 0)
    NRD_ABORT(NRD_EXIT_RUNTIME,
              "checkpoint: cannot open group %s "
              "that was just verified",
              name);
  hsize_t d1[2] = {1, (hsize_t)sh->n_blocks};
  int ok = h5u_read_rows(dxpl, pg, "next_step", H5T_NATIVE_LONG, 2, d1,
                         s->n_blocks, s->blocks, s->next_step) == 0;
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
    for (long ib = 0; ok && ib < s->n_blocks; ib++) {
      if (s->next_step[ib] == BLOCK_NOT_STARTED) continue;
      started[ns++] = s->blocks[ib];
      if (in_progress(sh, s->next_step[ib])) /* their particle ids */
        for (long k = 0; k < s->count[ib]; k++)
          rows[nr++] = s->blocks[ib] * sh->block_size + k;
    }
    for (long j = 0; ok && j < s->n_traj; j++)
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
    if (ok && nr > 0 && !s->Y) {
      s->Y = calloc((size_t)s->n_rows * s->width, sizeof *s->Y);
      if (!s->Y) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
    }
    long k = 0, row = 0;
    for (long ib = 0; ok && ib < s->n_blocks; ib++) {
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
    for (long j = 0; ok && j < s->n_traj; j++) {
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
    ok = block_checksum(sh, s, ib) == sums[s->blocks[ib]];
  H5Gclose(pg);
  return ok ? READ_OK : READ_DAMAGED;
}

/* stat *s is of the file id = (device, inode, size, mtime s, ns). */
static int same_file(const struct stat *s, const long long *id) {
  return (long long)s->st_dev == id[0] && (long long)s->st_ino == id[1] &&
         (long long)s->st_size == id[2] &&
         (long long)s->st_mtim.tv_sec == id[3] &&
         (long long)s->st_mtim.tv_nsec == id[4];
}

static read_status try_read(const nrd_params *p, const run_shape *sh,
                            point_state *ps, const long *tmap, const char *path,
                            char *why, size_t whylen, char *err,
                            size_t errlen) {
  /* 1. rank 0 checks the whole file alone; everyone learns the verdict */
  uint64_t **sums = calloc((size_t)sh->n_points, sizeof *sums);
  if (!sums) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  for (int i = 0; i < sh->n_points; i++)
    if (sh->selected[i] &&
        !(sums[i] = calloc((size_t)sh->n_blocks, sizeof **sums)))
      NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  int code = READ_OK;
  struct stat seen;
  memset(&seen, 0, sizeof seen);
  if (h5u_root()) {
    double t0 = nrd_log_elapsed();
    code = (int)check_file(p, sh, ps, tmap, path, sums, &seen, why, whylen, err,
                           errlen);
    if (code == READ_OK)
      nrd_info("checkpoint %s verified (%.2f s)", path, nrd_log_elapsed() - t0);
  }
  NRD_MPI_CHECK(MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD));
  NRD_MPI_CHECK(MPI_Bcast(why, (int)whylen, MPI_CHAR, 0, MPI_COMM_WORLD));
  NRD_MPI_CHECK(MPI_Bcast(err, (int)errlen, MPI_CHAR, 0, MPI_COMM_WORLD));
  read_status st = (read_status)code;
  for (int i = 0; st == READ_OK && i < sh->n_points; i++)
    if (sh->selected[i])
      NRD_MPI_CHECK(MPI_Bcast(sums[i], (int)sh->n_blocks, MPI_UINT64_T, 0,
                              MPI_COMM_WORLD));

  /* 2. a verified file: every rank reads its blocks collectively */
  hid_t file = -1, points = -1, dxpl = -1;
  long long id[5] = {(long long)seen.st_dev, (long long)seen.st_ino,
                     (long long)seen.st_size, (long long)seen.st_mtim.tv_sec,
                     (long long)seen.st_mtim.tv_nsec};
  if (st == READ_OK) {
    /* the file rank 0 verified, on every rank: not one that replaced it
     * since (another run writing checkpoints here), which could make the
     * ranks' collective reads differ */
    NRD_MPI_CHECK(MPI_Bcast(id, 5, MPI_LONG_LONG, 0, MPI_COMM_WORLD));
    struct stat before, after;
    int same = stat(path, &before) == 0 && same_file(&before, id);
    nrd_h5_quiet();
    hid_t fapl = H5(H5Pcreate(H5P_FILE_ACCESS));
    H5(H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL));
    H5(H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG));
    file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5(H5Pclose(fapl));
    same = same && stat(path, &after) == 0 && same_file(&after, id);
    points = file >= 0 ? H5Gopen2(file, "points", H5P_DEFAULT) : -1;
    int ok[2] = {points >= 0, same}, all[2] = {0, 0};
    NRD_MPI_CHECK(MPI_Allreduce(ok, all, 2, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    if (!all[1]) {
      snprintf(why, whylen,
               "%s: changed while it was being read (is another run "
               "writing checkpoints here?)",
               path);
      st = READ_DAMAGED;
    } else if (!all[0]) {
      snprintf(why, whylen, "%s: could not be opened on every rank", path);
      st = READ_DAMAGED;
    } else {
      dxpl = H5(H5Pcreate(H5P_DATASET_XFER));
      H5(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE));
    }
  }
  for (int i = 0; st == READ_OK && i < sh->n_points; i++) {
    if (!sh->selected[i]) continue;
    read_status r = read_point(sh, points, dxpl, i, &ps[i], sums[i]);
    /* agree on damage before the next collective read */
    int bad = r != READ_OK, any = 0;
    NRD_MPI_CHECK(MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX,
                                MPI_COMM_WORLD));
    if (any) {
      /* rank 0 has verified these bytes: was the file replaced since? */
      struct stat now;
      int changed =
          h5u_root() && (stat(path, &now) != 0 || !same_file(&now, id));
      NRD_MPI_CHECK(MPI_Bcast(&changed, 1, MPI_INT, 0, MPI_COMM_WORLD));
      if (changed)
        snprintf(why, whylen,
                 "%s: changed while it was being read (is another run "
                 "writing checkpoints here?)",
                 path);
      else
        snprintf(why, whylen,
                 "%s: grid point %d does not match its checksums when read "
                 "by every rank (damaged)",
                 path, i);
      st = READ_DAMAGED;
    }
  }
  if (st != READ_OK)
    for (int i = 0; i < sh->n_points; i++)
      if (sh->selected[i]) state_reset(sh, &ps[i]);
  for (int i = 0; i < sh->n_points; i++)
    free(sums[i]);
  free(sums);
  if (dxpl >= 0) H5Pclose(dxpl);
  if (points >= 0) H5Gclose(points);
  if (file >= 0) H5Fclose(file);
  return st;
}

int checkpoint_read(const nrd_params *p, const run_shape *sh, point_state *ps,
                    char **used, char *err, size_t errlen) {
  char reasons[2][600] = {"", ""};
  long *tmap = trajectory_blocks(sh, ps);
  for (int prev = 0; prev < 2; prev++) {
    char *path = checkpoint_path(p, prev);
    read_status st = try_read(p, sh, ps, tmap, path, reasons[prev],
                              sizeof reasons[prev], err, errlen);
    if (st == READ_OK) {
      free(tmap);
      *used = path;
      return NRD_OK;
    }
    free(path);
    if (st == READ_MISMATCH) {
      free(tmap);
      return NRD_ERR_INPUT;
    }
    if (h5u_root()) nrd_warn("checkpoint rejected: %s", reasons[prev]);
  }
  free(tmap);
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
