/* Rank 0's serial verification of a checkpoint (checkpoint_format.h:
 * ckpt_verify): with the sec2 driver, no MPI-IO, every attribute, dataset
 * and byte the ranks will read back is checked against the checksums before
 * any collective read (checkpoint.c: the layout and why). */
#define _POSIX_C_SOURCE 200809L
#include "run/checkpoint_format.h"
#include "io/h5check.h"
#include "util/log.h"

#include <cblas.h>
#include <errno.h>
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
      H5Sget_simple_extent_type(sp) == H5S_SCALAR) {
    v = NRD_XCALLOC(w + 1, 1);
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
  char *buf = ok ? NRD_XCALLOC((size_t)n, w) : NULL;
  char **v = ok ? NRD_XCALLOC((size_t)n, sizeof *v) : NULL;
  if (ok) {
    /* the file's own type: the bytes as stored, padding included */
    mem = H5Tcopy(t);
    ok = mem >= 0 && H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
  }
  for (long k = 0; ok && k < n; k++) {
    const char *s = buf + (size_t)k * w;
    size_t len = strnlen(s, w);
    ok = padding_is_zero(s, len, w);
    v[k] = NRD_XCALLOC(len + 1, 1);
    memcpy(v[k], s, len);
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
  if ((!r->signature || strcmp(r->signature, CKPT_SIGNATURE) != 0) &&
      (!has_version || version == CKPT_SCHEMA_VERSION))
    REJECT("%s: not an nrdiff checkpoint (signature)", path);
  if (!has_version) REJECT("%s: unreadable schema version (damaged)", path);
  if (version != CKPT_SCHEMA_VERSION)
    REJECT("%s: checkpoint schema version %ld, this nrdiff reads version %d "
           "only (written by another nrdiff version: finish that run with "
           "the nrdiff that started it)",
           path, version, CKPT_SCHEMA_VERSION);
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
  r->selected = NRD_XCALLOC((size_t)P, sizeof *r->selected);
  r->attrs = NRD_XCALLOC((size_t)P, sizeof *r->attrs);
  r->sums = NRD_XCALLOC((size_t)P, sizeof *r->sums);
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
    r->sums[i] = NRD_XCALLOC((size_t)B, sizeof **r->sums);
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
  unsigned long long digest = 0;
  if (H5Aexists(file, "data_digest") > 0 &&
      attr_numbers(file, "data_digest", H5T_INTEGER, 8, H5T_NATIVE_ULLONG, 1,
                   &digest))
    REJECT("%s: unreadable attribute 'data_digest' (damaged)", path);
  ckpt_meta m = {.signature = r->signature,
                 .nrdiff_version = r->nrdiff_version,
                 .blas_kernels = r->blas_kernels,
                 .schema_version = version,
                 .attrs = (const long(*)[3])r->attrs,
                 .selected = r->selected,
                 .n_params = r->n_params,
                 .key = r->key,
                 .value = r->value,
                 .sums = r->sums,
                 .data_digest = digest};
  memcpy(m.shape, shape, sizeof shape);
  if (ckpt_meta_checksum(&m) != total)
    REJECT("%s: the checksum over its parameters, attributes and block "
           "checksums does not match (damaged)",
           path);

  /* verified: now what differs from this run is the user's doing */
  read_status st =
      compare_parameters(p, r->n_params, r->key, r->value, err, errlen);
  if (st != READ_OK) return st;
  if (digest != sh->data_digest) {
    snprintf(err, errlen,
             "data.file '%s' holds other data than when the checkpoint was "
             "written (digest %016llx then, %016llx now): a restart must use "
             "the same data; restore the file or start a new run",
             p->data.file, digest, (unsigned long long)sh->data_digest);
    return READ_MISMATCH;
  }
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
  long *next = NRD_XCALLOC((size_t)B, sizeof *next);
  hid_t dn = dataset_checked(pg, "next_step", H5T_INTEGER, 8, H5T_SGN_2, 2, d1);
  int ok = dn >= 0 && read_box(dn, H5T_NATIVE_LONG, 2, z2, d1, next) == 0;
  if (dn >= 0) H5Dclose(dn);
  int started = 0, running = 0;
  for (long b = 0; ok && b < B; b++) {
    ok = next[b] >= BLOCK_NOT_STARTED && next[b] <= sh->steps + 1;
    started |= next[b] != BLOCK_NOT_STARTED;
    running |= ckpt_in_progress(sh, next[b]);
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
  double *buf = NRD_XCALLOC(nbuf, sizeof *buf);
  long bad_block = -1;
  for (long b = 0; b < B && bad_block < 0; b++) {
    uint64_t h = ckpt_fnv(CKPT_FNV_SEED, &next[b], sizeof(long));
    int rc = 0;
    if (next[b] != BLOCK_NOT_STARTED) {
      hsize_t st[3] = {0, (hsize_t)b, 0}, ct[3] = {dr[0], 1, dr[2]};
      if (nrec) rc |= read_box(drec, H5T_NATIVE_DOUBLE, 3, st, ct, buf);
      h = ckpt_fnv(h, buf, nrec * sizeof(double));
      if (ckpt_in_progress(sh, next[b])) {
        long first = b * sh->block_size, left = sh->particles - first;
        long count = left < sh->block_size ? left : sh->block_size;
        hsize_t sp[3] = {0, (hsize_t)first, 0},
                cp[3] = {1, (hsize_t)count, dp[2]};
        size_t m = (size_t)count * s->width;
        if (m) rc |= read_box(dpos, H5T_NATIVE_DOUBLE, 3, sp, cp, buf);
        h = ckpt_fnv(h, buf, m * sizeof(double));
      }
      for (long j = 0; j < sh->n_traj; j++) {
        if (tmap[j] != b) continue;
        hsize_t sj[3] = {0, (hsize_t)j, 0}, cj[3] = {dt[0], 1, dt[2]};
        if (ntr) rc |= read_box(dtr, H5T_NATIVE_DOUBLE, 3, sj, cj, buf);
        h = ckpt_fnv(h, buf, ntr * sizeof(double));
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

read_status ckpt_verify(const nrd_params *p, const run_shape *sh,
                        const point_state *ps, const long *tmap,
                        const char *path, uint64_t **sums, struct stat *seen,
                        char *why, size_t whylen, char *err, size_t errlen) {
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
