/* HDF5 output (see h5out.h and doc/file-format.md).
 *
 * Who writes what: values that every rank holds identically (parameters,
 * provenance, step/time axes) and rank 0's reductions are written by rank 0
 * with the others selecting nothing; per-block sums and sampled
 * trajectories are written by the ranks that computed them, each selecting
 * its own rows.  Transfers are collective; attributes are metadata, so
 * every rank passes the same value (rank 0's, broadcast where it differs). */
#define _POSIX_C_SOURCE 200809L /* open_memstream, gethostname, gmtime_r */
#include "config.h"

#include "nrdiff/h5out.h"
#include "nrdiff/error.h"
#include "nrdiff/h5check.h"
#include "nrdiff/log.h"
#include "nrdiff/version.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define H5 NRD_H5_CHECK

/* ------------------------------------------------------------- target */

int h5out_check_target(const nrd_params *p, char *err, size_t errlen) {
  char msg[1200] = "";
  if (nrd_log_rank() == 0 && !p->output.overwrite) {
    size_t n = strlen(p->output.file) + 5;
    char *tmp = malloc(n);
    if (tmp) snprintf(tmp, n, "%s.tmp", p->output.file);
    if (access(p->output.file, F_OK) == 0)
      snprintf(msg, sizeof msg,
               "key 'output.file': '%s' exists; nrdiff does not overwrite "
               "results (choose another output.file, or set "
               "output.overwrite: true)",
               p->output.file);
    else if (tmp && access(tmp, F_OK) == 0)
      snprintf(msg, sizeof msg,
               "key 'output.file': '%s' exists: another run may be writing "
               "it, or one was interrupted (remove it, or set "
               "output.overwrite: true)",
               tmp);
    free(tmp);
  }
  NRD_MPI_CHECK(MPI_Bcast(msg, sizeof msg, MPI_CHAR, 0, MPI_COMM_WORLD));
  if (!msg[0]) return NRD_OK;
  snprintf(err, errlen, "%s", msg);
  return NRD_ERR_INPUT;
}

/* ------------------------------------------------------------- helpers */

static int is_root(void) {
  return nrd_log_rank() == 0;
}

static void attr_string(hid_t obj, const char *name, const char *value) {
  hid_t t = H5(H5Tcopy(H5T_C_S1));
  H5(H5Tset_size(t, H5T_VARIABLE));
  H5(H5Tset_cset(t, H5T_CSET_UTF8));
  hid_t sp = H5(H5Screate(H5S_SCALAR));
  hid_t a = H5(H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT));
  const char *v = value ? value : "";
  H5(H5Awrite(a, t, &v));
  H5(H5Aclose(a));
  H5(H5Sclose(sp));
  H5(H5Tclose(t));
}

static void attr_numbers(hid_t obj, const char *name, hid_t type, int n,
                         const void *v) {
  hsize_t dim = (hsize_t)n;
  hid_t sp = H5(n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL));
  hid_t a = H5(H5Acreate2(obj, name, type == H5T_NATIVE_LONG ? H5T_STD_I64LE
                                     : type == H5T_NATIVE_INT ? H5T_STD_I32LE
                                                              : H5T_IEEE_F64LE,
                          sp, H5P_DEFAULT, H5P_DEFAULT));
  H5(H5Awrite(a, type, v));
  H5(H5Aclose(a));
  H5(H5Sclose(sp));
}

static void attr_long(hid_t obj, const char *name, long v) {
  attr_numbers(obj, name, H5T_NATIVE_LONG, 1, &v);
}

static void attr_double(hid_t obj, const char *name, double v) {
  attr_numbers(obj, name, H5T_NATIVE_DOUBLE, 1, &v);
}

static hid_t group(hid_t parent, const char *name) {
  return H5(H5Gcreate2(parent, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
}

/* Create a dataset of `rank` dims; rank 0 writes all of `data` (the others'
 * `data` is ignored). */
static void dataset_root(h5out *h, hid_t parent, const char *name,
                         hid_t file_type, hid_t mem_type, int rank,
                         const hsize_t *dims, const void *data) {
  hid_t fs = H5(H5Screate_simple(rank, dims, NULL));
  hid_t ds = H5(H5Dcreate2(parent, name, file_type, fs, H5P_DEFAULT,
                           H5P_DEFAULT, H5P_DEFAULT));
  hid_t ms = H5(H5Scopy(fs));
  static const char dummy[16];
  if (!is_root()) {
    H5(H5Sselect_none(fs));
    H5(H5Sselect_none(ms));
    data = dummy;
  }
  H5(H5Dwrite(ds, mem_type, ms, fs, h->dxpl, data));
  H5(H5Sclose(ms));
  H5(H5Sclose(fs));
  H5(H5Dclose(ds));
}

static void dataset_1d(h5out *h, hid_t parent, const char *name, int is_long,
                       long n, const void *data) {
  hsize_t dim = (hsize_t)n;
  dataset_root(h, parent, name, is_long ? H5T_STD_I64LE : H5T_IEEE_F64LE,
               is_long ? H5T_NATIVE_LONG : H5T_NATIVE_DOUBLE, 1, &dim, data);
}

/* Fixed-length strings: parallel HDF5 cannot write variable-length data. */
static void dataset_strings(h5out *h, hid_t parent, const char *name, size_t n,
                            char *const *v, int scalar) {
  size_t width = 1;
  for (size_t i = 0; i < n; i++)
    if (strlen(v[i]) + 1 > width) width = strlen(v[i]) + 1;
  char *buf = calloc(n ? n : 1, width);
  if (!buf) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  for (size_t i = 0; i < n; i++)
    memcpy(buf + (size_t)i * width, v[i], strlen(v[i]));
  hid_t t = H5(H5Tcopy(H5T_C_S1));
  H5(H5Tset_size(t, width));
  H5(H5Tset_strpad(t, H5T_STR_NULLTERM));
  H5(H5Tset_cset(t, H5T_CSET_UTF8));
  hsize_t dim = (hsize_t)n;
  if (scalar) {
    hid_t fs = H5(H5Screate(H5S_SCALAR));
    hid_t ds = H5(H5Dcreate2(parent, name, t, fs, H5P_DEFAULT, H5P_DEFAULT,
                             H5P_DEFAULT));
    hid_t ms = H5(H5Scopy(fs));
    if (!is_root()) {
      H5(H5Sselect_none(fs));
      H5(H5Sselect_none(ms));
    }
    H5(H5Dwrite(ds, t, ms, fs, h->dxpl, buf));
    H5(H5Sclose(ms));
    H5(H5Sclose(fs));
    H5(H5Dclose(ds));
  } else {
    dataset_root(h, parent, name, t, t, 1, &dim, buf);
  }
  H5(H5Tclose(t));
  free(buf);
}

/* Rank 0's string, on every rank (malloc'd). */
static char *bcast_string(const char *s) {
  int n = is_root() ? (int)strlen(s) + 1 : 0;
  NRD_MPI_CHECK(MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD));
  char *out = malloc((size_t)n);
  if (!out) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  if (is_root()) memcpy(out, s, (size_t)n);
  NRD_MPI_CHECK(MPI_Bcast(out, n, MPI_CHAR, 0, MPI_COMM_WORLD));
  return out;
}

/* --------------------------------------------------------------- open */

static void write_code(hid_t file, const char *command_line) {
  hid_t g = group(file, "code");
  char host[256] = "unknown", date[64] = "";
  attr_string(g, "package_version", version_nrdiff());
  version_field f[VERSION_FIELDS];
  version_fields(f);
  for (int i = 0; i < VERSION_FIELDS; i++)
    attr_string(g, f[i].key, f[i].value);
  if (is_root()) {
    gethostname(host, sizeof host - 1);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
  }
  char *s = bcast_string(command_line);
  attr_string(g, "command_line", s);
  free(s);
  s = bcast_string(host);
  attr_string(g, "hostname", s);
  free(s);
  s = bcast_string(date);
  attr_string(g, "date_utc", s);
  free(s);
  attr_long(g, "mpi_size", nrd_log_size());
  H5(H5Gclose(g));
}

static void write_parameters(h5out *h, const nrd_params *p) {
  hid_t g = group(h->file, "parameters");
  attr_string(g, "parameter_file", p->source_file ? p->source_file : "");
  int n = params_schema_size();
  char **key = calloc((size_t)n, sizeof *key);
  char **val = calloc((size_t)n, sizeof *val);
  char **src = calloc((size_t)n, sizeof *src);
  if (!key || !val || !src) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  static const char *const names[] = {"default", "file", "override"};
  for (int i = 0; i < n; i++) {
    key[i] = (char *)params_schema_name(i);
    val[i] = params_value_yaml(p, i);
    src[i] = (char *)names[p->sources ? p->sources[i] : PSRC_DEFAULT];
    if (!val[i]) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  }
  dataset_strings(h, g, "key", (size_t)n, key, 0);
  dataset_strings(h, g, "value", (size_t)n, val, 0);
  dataset_strings(h, g, "source", (size_t)n, src, 0);
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  if (!mem) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  params_write_resolved(p, mem);
  fclose(mem);
  dataset_strings(h, g, "resolved", 1, &text, 1);
  free(text);
  for (int i = 0; i < n; i++)
    free(val[i]);
  free(key);
  free(val);
  free(src);
  H5(H5Gclose(g));
}

static void write_grid(h5out *h, const run_plan *plan) {
  hid_t g = group(h->file, "grid");
  long P = plan->n_points;
  long *li = malloc((size_t)P * sizeof *li);
  double *dv = malloc((size_t)P * sizeof *dv);
  if (!li || !dv) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  for (long i = 0; i < P; i++)
    li[i] = plan->points[i].dimension;
  dataset_1d(h, g, "dimension", 1, P, li);
  for (long i = 0; i < P; i++)
    dv[i] = plan->points[i].separation;
  dataset_1d(h, g, "separation", 0, P, dv);
  for (long i = 0; i < P; i++)
    dv[i] = plan->points[i].strength;
  dataset_1d(h, g, "strength", 0, P, dv);
  for (long i = 0; i < P; i++)
    li[i] = plan->points[i].n_train;
  dataset_1d(h, g, "n_train", 1, P, li);
  free(li);
  free(dv);
  H5(H5Gclose(g));
}

void h5out_open(h5out *h, const nrd_params *p, const run_plan *plan,
                const char *command_line) {
  nrd_h5_quiet();
  size_t n = strlen(p->output.file) + 5;
  h->path = strdup(p->output.file);
  h->tmp_path = malloc(n);
  if (!h->path || !h->tmp_path) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  snprintf(h->tmp_path, n, "%s.tmp", p->output.file);
  hid_t fapl = H5(H5Pcreate(H5P_FILE_ACCESS));
  H5(H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL));
  /* the file's own format, not the library's newest: readable by any
   * HDF5 >= 1.8 and h5py */
  h->file = H5Fcreate(h->tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  if (h->file < 0) {
    char msg[512];
    nrd_h5_last_error(msg, sizeof msg);
    nrd_fatal(NRD_EXIT_RUNTIME, "cannot create the output file '%s': %s",
              h->tmp_path, msg);
  }
  H5(H5Pclose(fapl));
  h->dxpl = H5(H5Pcreate(H5P_DATASET_XFER));
  H5(H5Pset_dxpl_mpio(h->dxpl, H5FD_MPIO_COLLECTIVE));

  attr_string(h->file, "file_format", "nrdiff-output");
  attr_long(h->file, "file_format_version", 1);
  hid_t g = group(h->file, "h5md");
  int version[2] = {1, 1};
  attr_numbers(g, "version", H5T_NATIVE_INT, 2, version);
  hid_t a = group(g, "author");
  const char *user = getenv("USER");
  char *u = bcast_string(user ? user : "unknown");
  attr_string(a, "name", u);
  free(u);
  H5(H5Gclose(a));
  hid_t c = group(g, "creator");
  attr_string(c, "name", "nrdiff");
  attr_string(c, "version", version_nrdiff());
  H5(H5Gclose(c));
  H5(H5Gclose(g));
  write_code(h->file, command_line);
  write_parameters(h, p);
  write_grid(h, plan);
  hid_t pts = group(h->file, "points");
  H5(H5Gclose(pts));
}

/* --------------------------------------------------------------- points */

/* dims (n_out, n_blocks[, m]); each rank writes the rows of its blocks. */
static void write_block_sums(h5out *h, hid_t parent, const h5out_point *pt,
                             int o) {
  const obs_layout *L = pt->layout;
  int m = L->width[o], rank = m > 1 ? 3 : 2;
  hsize_t dims[3] = {(hsize_t)pt->n_out, (hsize_t)pt->n_blocks, (hsize_t)m};
  hid_t fs = H5(H5Screate_simple(rank, dims, NULL));
  hid_t ds = H5(H5Dcreate2(parent, "block_sum", H5T_IEEE_F64LE, fs,
                           H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  long nlb = pt->n_local_blocks;
  size_t n = (size_t)pt->n_out * nlb * m;
  double *buf = malloc((n ? n : 1) * sizeof *buf);
  if (!buf) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  for (long i = 0; i < pt->n_out; i++)
    for (long b = 0; b < nlb; b++)
      memcpy(buf + ((size_t)i * nlb + b) * m,
             pt->local_records + ((size_t)i * nlb + b) * L->record +
                 L->offset[o],
             (size_t)m * sizeof *buf);
  H5(H5Sselect_none(fs));
  for (long b = 0; b < nlb; b++) {
    hsize_t start[3] = {0, (hsize_t)pt->local_blocks[b], 0};
    hsize_t count[3] = {(hsize_t)pt->n_out, 1, (hsize_t)m};
    H5(H5Sselect_hyperslab(fs, H5S_SELECT_OR, start, NULL, count, NULL));
  }
  hsize_t mdim = (hsize_t)(n ? n : 1);
  hid_t ms = H5(H5Screate_simple(1, &mdim, NULL));
  if (!n) H5(H5Sselect_none(ms));
  H5(H5Dwrite(ds, H5T_NATIVE_DOUBLE, ms, fs, h->dxpl, buf));
  H5(H5Sclose(ms));
  H5(H5Sclose(fs));
  H5(H5Dclose(ds));
  free(buf);
}

static void write_observable(h5out *h, hid_t obs, const h5out_point *pt,
                             int o) {
  const obs_layout *L = pt->layout;
  const obs_info *info = obs_describe(o);
  int m = L->width[o];
  hid_t g = group(obs, info->name);
  attr_string(g, "description", info->description);
  attr_string(g, "unit", info->unit);
  dataset_1d(h, g, "step", 1, pt->n_out, pt->out_step);
  dataset_1d(h, g, "time", 0, pt->n_out, pt->out_time);
  /* value = block sums' total / particle count, at every output time */
  double *v = NULL;
  if (is_root()) {
    v = malloc((size_t)pt->n_out * m * sizeof *v);
    if (!v) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
    for (long i = 0; i < pt->n_out; i++) {
      const double *t = pt->total + (size_t)i * L->record;
      double count = t[L->offset[OBS_COUNT]];
      for (int j = 0; j < m; j++)
        v[(size_t)i * m + j] =
            o == OBS_COUNT ? count : t[L->offset[o] + j] / count;
    }
  }
  hsize_t dims[2] = {(hsize_t)pt->n_out, (hsize_t)m};
  dataset_root(h, g, "value", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, m > 1 ? 2 : 1,
               dims, v);
  free(v);
  write_block_sums(h, g, pt, o);
  H5(H5Gclose(g));
}

static void write_trajectories(h5out *h, hid_t parent, const h5out_point *pt) {
  hid_t parts = group(parent, "particles");
  hid_t tr = group(parts, "trajectory");
  dataset_1d(h, tr, "id", 1, pt->n_traj, pt->traj_ids);
  hid_t pos = group(tr, "position");
  dataset_1d(h, pos, "step", 1, pt->n_frames, pt->frame_step);
  dataset_1d(h, pos, "time", 0, pt->n_frames, pt->frame_time);
  long d = pt->dimension, nl = pt->n_local_traj;
  hsize_t dims[3] = {(hsize_t)pt->n_frames, (hsize_t)pt->n_traj, (hsize_t)d};
  hid_t fs = H5(H5Screate_simple(3, dims, NULL));
  hid_t ds = H5(H5Dcreate2(pos, "value", H5T_IEEE_F64LE, fs, H5P_DEFAULT,
                           H5P_DEFAULT, H5P_DEFAULT));
  H5(H5Sselect_none(fs));
  for (long j = 0; j < nl; j++) {
    hsize_t start[3] = {0, (hsize_t)pt->local_traj[j], 0};
    hsize_t count[3] = {(hsize_t)pt->n_frames, 1, (hsize_t)d};
    H5(H5Sselect_hyperslab(fs, H5S_SELECT_OR, start, NULL, count, NULL));
  }
  size_t n = (size_t)pt->n_frames * nl * d;
  hsize_t mdim = (hsize_t)(n ? n : 1);
  hid_t ms = H5(H5Screate_simple(1, &mdim, NULL));
  static const double dummy[1];
  if (!n) H5(H5Sselect_none(ms));
  H5(H5Dwrite(ds, H5T_NATIVE_DOUBLE, ms, fs, h->dxpl,
              n ? pt->local_positions : dummy));
  H5(H5Sclose(ms));
  H5(H5Sclose(fs));
  H5(H5Dclose(ds));
  H5(H5Gclose(pos));
  H5(H5Gclose(tr));
  H5(H5Gclose(parts));
}

void h5out_write_point(h5out *h, const nrd_params *p, const h5out_point *pt) {
  (void)p;
  char name[64];
  snprintf(name, sizeof name, "points/%04d", pt->index);
  hid_t g = group(h->file, name);
  /* rank 0's report values, identical on every rank for the attributes */
  double v[5] = {pt->critical_theory, pt->critical_measured,
                 pt->critical_error, pt->relaxation_rate,
                 pt->entropy_production};
  NRD_MPI_CHECK(MPI_Bcast(v, 5, MPI_DOUBLE, 0, MPI_COMM_WORLD));
  attr_long(g, "index", pt->index);
  attr_long(g, "dimension", pt->dimension);
  attr_double(g, "separation", pt->separation);
  attr_double(g, "strength", pt->strength);
  attr_long(g, "n_train", pt->n_train);
  attr_long(g, "particles", p->ensemble.particles);
  attr_long(g, "block_size", p->ensemble.block_size);
  attr_long(g, "n_blocks", pt->n_blocks);
  attr_long(g, "classes", pt->classes);
  attr_double(g, "relaxation_rate", v[3]);
  attr_double(g, "entropy_production", v[4]);
  attr_string(g, "critical_time_kind", pt->critical_kind);
  attr_double(g, "critical_time_theory", v[0]);
  attr_double(g, "critical_time_measured", v[1]);
  attr_double(g, "critical_time_error", v[2]);
  hid_t obs = group(g, "observables");
  for (int o = 0; o < OBS_N; o++)
    if (pt->layout->width[o] > 0) write_observable(h, obs, pt, o);
  H5(H5Gclose(obs));
  write_trajectories(h, g, pt);
  H5(H5Gclose(g));
}

void h5out_abandon(h5out *h) {
  H5Pclose(h->dxpl);
  H5Fclose(h->file);
  NRD_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  if (is_root()) unlink(h->tmp_path);
  free(h->path);
  free(h->tmp_path);
}

void h5out_close(h5out *h, double wall_seconds) {
  NRD_MPI_CHECK(
      MPI_Bcast(&wall_seconds, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD));
  hid_t g = H5(H5Gopen2(h->file, "code", H5P_DEFAULT));
  attr_double(g, "wall_seconds", wall_seconds);
  H5(H5Gclose(g));
  H5(H5Pclose(h->dxpl));
  H5(H5Fclose(h->file));
  int rc = 0;
  if (is_root()) rc = rename(h->tmp_path, h->path);
  NRD_MPI_CHECK(MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD));
  if (rc != 0)
    nrd_fatal(NRD_EXIT_RUNTIME, "cannot rename '%s' to '%s'", h->tmp_path,
              h->path);
  free(h->path);
  free(h->tmp_path);
}
