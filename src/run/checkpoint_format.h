/* Private to the checkpoint files (checkpoint.c has the layout): the
 * constants and checksums the writer (checkpoint_write.c), rank 0's serial
 * verification (checkpoint_verify.c) and the collective reading
 * (checkpoint_read.c) must agree on. */
#ifndef NRDIFF_CHECKPOINT_FORMAT_H
#define NRDIFF_CHECKPOINT_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "config/params.h"
#include "run/runstate.h"

#define CKPT_SIGNATURE "nrdiff-checkpoint"
/* 2: the file checksum covers the parameters and attributes; selected */
enum { CKPT_SCHEMA_VERSION = 2 };

/* FNV-1a over n bytes, continuing from h (CKPT_FNV_SEED to start). */
#define CKPT_FNV_SEED 1469598103934665603ULL
static inline uint64_t ckpt_fnv(uint64_t h, const void *data, size_t n) {
  const unsigned char *b = data;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 1099511628211ULL;
  return h;
}

/* A block with next_step `next` is in progress: its particles' states are
 * stored. */
static inline int ckpt_in_progress(const run_shape *sh, long next) {
  return next >= 0 && next <= sh->steps;
}

/* The checksum of local block ib of s: its next_step, then (once started)
 * its record rows, its particles' states (in progress) and its sampled
 * trajectories. */
uint64_t ckpt_block_checksum(const run_shape *sh, const point_state *s,
                             long ib);

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
  /* data.source: file: the digest of the data the run used (attribute
   * data_digest, checksummed when present); 0: none (a mixture run) */
  uint64_t data_digest;
} ckpt_meta;

uint64_t ckpt_meta_checksum(const ckpt_meta *m);

/* A file's verdict: valid, damaged (the reason in `why`: another file may
 * do), or written with other parameters (the user's: `err` names the key). */
typedef enum { READ_OK, READ_DAMAGED, READ_MISMATCH } read_status;

/* Rank 0, serially (sec2 driver, no MPI-IO): is `path` a valid checkpoint
 * of this run (its shape and the states ps of rank 0, tmap the global block
 * of every sampled trajectory per point)?  Every byte the ranks will read
 * is checked against its checksum.  On READ_OK, sums[i] (selected points)
 * hold the verified block checksums; *seen is the file's stat. */
read_status ckpt_verify(const nrd_params *p, const run_shape *sh,
                        const point_state *ps, const long *tmap,
                        const char *path, uint64_t **sums, struct stat *seen,
                        char *why, size_t whylen, char *err, size_t errlen);

#endif
