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
 * Files: this one the path, the checksums and the removal;
 * checkpoint_write.c the writing, checkpoint_verify.c rank 0's serial
 * check of a file, checkpoint_read.c the collective reading (and the choice
 * between FILE and FILE.prev); checkpoint_format.h what they share.
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
#include "run/checkpoint.h"
#include "run/checkpoint_format.h"
#include "io/h5util.h"
#include "io/output_target.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *checkpoint_path(const nrd_params *p, int prev) {
  return output_companion(p->output.file, prev ? ".ckpt.prev" : ".ckpt");
}

/* ------------------------------------------------------------ checksum */

uint64_t ckpt_block_checksum(const run_shape *sh, const point_state *s,
                             long ib) {
  uint64_t h = ckpt_fnv(CKPT_FNV_SEED, &s->next_step[ib], sizeof(long));
  if (s->next_step[ib] == BLOCK_NOT_STARTED) return h;
  for (long o = 0; o < sh->n_out; o++)
    h = ckpt_fnv(h, s->records + ((size_t)o * s->n_blocks + ib) * s->record,
                 (size_t)s->record * sizeof(double));
  if (ckpt_in_progress(sh, s->next_step[ib]))
    h = ckpt_fnv(h, s->Y + (size_t)s->first_row[ib] * s->width,
                 (size_t)s->count[ib] * s->width * sizeof(double));
  for (long j = 0; j < s->n_traj; j++)
    if (s->traj_block[j] == ib)
      for (long f = 0; f < sh->n_frames; f++)
        h = ckpt_fnv(h, s->positions + ((size_t)f * s->n_traj + j) * s->d,
                     (size_t)s->d * sizeof(double));
  return h;
}

static uint64_t fnv_long(uint64_t h, long v) {
  return ckpt_fnv(h, &v, sizeof v);
}

/* A string as its length, then its bytes. */
static uint64_t fnv_string(uint64_t h, const char *s) {
  size_t n = s ? strlen(s) : 0;
  h = fnv_long(h, (long)n);
  return ckpt_fnv(h, s ? s : "", n);
}

uint64_t ckpt_meta_checksum(const ckpt_meta *m) {
  uint64_t h = fnv_string(CKPT_FNV_SEED, m->signature);
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
    h = ckpt_fnv(h, m->sums[i], (size_t)m->shape[1] * sizeof(uint64_t));
  }
  if (m->data_digest) h = ckpt_fnv(h, &m->data_digest, sizeof m->data_digest);
  return h;
}

void checkpoint_remove(const nrd_params *p) {
  if (!h5u_root()) return;
  for (int prev = 0; prev < 2; prev++) {
    char *path = checkpoint_path(p, prev);
    unlink(path);
    free(path);
  }
}
