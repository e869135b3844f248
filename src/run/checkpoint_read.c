/* Reading a checkpoint (layout: checkpoint.c): rank 0 verifies the file
 * alone (checkpoint_verify.c), then every rank reads its own blocks of a
 * verified file collectively; FILE first, then FILE.prev. */
#define _POSIX_C_SOURCE 200809L
#include "run/checkpoint.h"
#include "run/checkpoint_format.h"
#include "io/h5check.h"
#include "io/h5util.h"
#include "util/error.h"
#include "util/log.h"

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define H5 NRD_H5_CHECK

/* The global block of every sampled trajectory, per point (n_points x
 * n_traj, -1 for points not run): each rank knows those of its own blocks.
 * Collective. */
static long *trajectory_blocks(const run_shape *sh, const point_state *ps) {
  size_t n = (size_t)sh->n_points * (size_t)sh->n_traj;
  long *map = NRD_XCALLOC(n, sizeof *map);
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
    long *started = NRD_XCALLOC((size_t)s->n_blocks, sizeof *started);
    long *rows = NRD_XCALLOC((size_t)s->n_rows, sizeof *rows);
    long *traj = NRD_XCALLOC((size_t)s->n_traj, sizeof *traj);
    long ns = 0, nr = 0, nt = 0;
    for (long ib = 0; ok && ib < s->n_blocks; ib++) {
      if (s->next_step[ib] == BLOCK_NOT_STARTED) continue;
      started[ns++] = s->blocks[ib];
      if (ckpt_in_progress(sh, s->next_step[ib])) /* their particle ids */
        for (long k = 0; k < s->count[ib]; k++)
          rows[nr++] = s->blocks[ib] * sh->block_size + k;
    }
    for (long j = 0; ok && j < s->n_traj; j++)
      if (s->next_step[s->traj_block[j]] != BLOCK_NOT_STARTED)
        traj[nt++] = s->traj[j];
    double *rec = NRD_XCALLOC((size_t)sh->n_out * ns * s->record, sizeof *rec);
    double *pos = NRD_XCALLOC((size_t)nr * s->width, sizeof *pos);
    double *tr = NRD_XCALLOC((size_t)sh->n_frames * nt * s->d, sizeof *tr);
    hsize_t dr[3] = {(hsize_t)sh->n_out, (hsize_t)sh->n_blocks,
                     (hsize_t)s->record};
    hsize_t dt[3] = {(hsize_t)sh->n_frames, (hsize_t)sh->n_traj, (hsize_t)s->d};
    hsize_t dp[3] = {1, (hsize_t)sh->particles, (hsize_t)s->width};
    /* every rank makes every collective read, whatever failed before */
    int rr = h5u_read_rows(dxpl, pg, "records", H5T_NATIVE_DOUBLE, 3, dr, ns,
                           started, rec);
    int rt = h5u_read_rows(dxpl, pg, "trajectories", H5T_NATIVE_DOUBLE, 3, dt,
                           nt, traj, tr);
    if (rr || rt) ok = 0;
    if (has_positions && h5u_read_rows(dxpl, pg, "positions", H5T_NATIVE_DOUBLE,
                                       3, dp, nr, rows, pos) != 0)
      ok = 0;
    if (nr > 0 && !has_positions) ok = 0;
    /* unpack into the state */
    if (ok && nr > 0 && !s->Y) {
      s->Y = NRD_XCALLOC((size_t)s->n_rows * s->width, sizeof *s->Y);
    }
    long k = 0, row = 0;
    for (long ib = 0; ok && ib < s->n_blocks; ib++) {
      if (s->next_step[ib] == BLOCK_NOT_STARTED) continue;
      for (long o = 0; o < sh->n_out; o++)
        memcpy(s->records + ((size_t)o * s->n_blocks + ib) * s->record,
               rec + ((size_t)o * ns + k) * s->record,
               (size_t)s->record * sizeof(double));
      k++;
      if (ckpt_in_progress(sh, s->next_step[ib])) {
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
    ok = ckpt_block_checksum(sh, s, ib) == sums[s->blocks[ib]];
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
  uint64_t **sums = NRD_XCALLOC((size_t)sh->n_points, sizeof *sums);
  for (int i = 0; i < sh->n_points; i++)
    if (sh->selected[i])
      sums[i] = NRD_XCALLOC((size_t)sh->n_blocks, sizeof **sums);
  int code = READ_OK;
  struct stat seen;
  memset(&seen, 0, sizeof seen);
  if (h5u_root()) {
    double t0 = nrd_log_elapsed();
    code = (int)ckpt_verify(p, sh, ps, tmap, path, sums, &seen, why, whylen,
                            err, errlen);
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
    NRD_MPI_CHECK(
        MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
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
