/* HDF5 output (see h5out.h and doc/file-format.md).
 *
 * Who writes what: values that every rank holds identically (parameters,
 * provenance, step/time axes) and rank 0's reductions are written by rank 0
 * with the others selecting nothing; per-block sums and sampled
 * trajectories are written by the ranks that computed them, each selecting
 * its own rows.  Transfers are collective; attributes are metadata, so
 * every rank passes the same value (rank 0's, broadcast where it differs). */
#define _GNU_SOURCE /* open_memstream, gethostname, gmtime_r */
#include "config.h"

#include "io/h5out.h"
#include "core/analysis.h"
#include "io/h5check.h"
#include "io/h5util.h"
#include "io/output_target.h"
#include "util/log.h"
#include "util/version.h"

#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define H5 NRD_H5_CHECK

/* --------------------------------------------------------------- open */

static void write_code(hid_t file, const char *command_line) {
  hid_t g = h5u_group(file, "code");
  char host[256] = "unknown", date[64] = "";
  h5u_attr_string(g, "package_version", version_nrdiff());
  version_field f[VERSION_FIELDS];
  version_fields(f);
  for (int i = 0; i < VERSION_FIELDS; i++)
    h5u_attr_string(g, f[i].key, f[i].value);
  if (h5u_root()) {
    gethostname(host, sizeof host - 1);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
  }
  char *s = h5u_bcast_string(command_line);
  h5u_attr_string(g, "command_line", s);
  free(s);
  s = h5u_bcast_string(host);
  h5u_attr_string(g, "hostname", s);
  free(s);
  s = h5u_bcast_string(date);
  h5u_attr_string(g, "date_utc", s);
  free(s);
  h5u_attr_long(g, "mpi_size", nrd_log_size());
  /* the batch job, if any (rank 0's environment; "" outside Slurm) */
  static const char *const slurm[] = {"SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID",
                                      "SLURM_ARRAY_TASK_ID",
                                      "SLURM_JOB_NODELIST",
                                      "SLURM_RESTART_COUNT"};
  static const char *const names[] = {"slurm_job_id", "slurm_array_job_id",
                                      "slurm_array_task_id",
                                      "slurm_job_nodelist",
                                      "slurm_restart_count"};
  for (int i = 0; i < 5; i++) {
    const char *v = getenv(slurm[i]);
    s = h5u_bcast_string(v ? v : "");
    h5u_attr_string(g, names[i], s);
    free(s);
  }
  H5(H5Gclose(g));
}

static void write_parameters(h5out *h, const nrd_params *p) {
  hid_t g = h5u_group(h->file, "parameters");
  h5u_attr_string(g, "parameter_file", p->source_file ? p->source_file : "");
  int n = params_schema_size();
  char **key, **val, **src = NRD_XCALLOC((size_t)n, sizeof *src);
  h5u_param_text(p, &key, &val);
  static const char *const names[] = {"default", "file", "override"};
  for (int i = 0; i < n; i++)
    src[i] = (char *)names[p->sources ? p->sources[i] : PSRC_DEFAULT];
  h5u_dataset_strings(h->dxpl, g, "key", (size_t)n, key, 0);
  h5u_dataset_strings(h->dxpl, g, "value", (size_t)n, val, 0);
  h5u_dataset_strings(h->dxpl, g, "source", (size_t)n, src, 0);
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  if (!mem) NRD_ABORT(NRD_EXIT_RUNTIME, "out of memory");
  params_write_resolved(p, mem);
  fclose(mem);
  h5u_dataset_strings(h->dxpl, g, "resolved", 1, &text, 1);
  free(text);
  h5u_param_text_free(key, val);
  free(src);
  H5(H5Gclose(g));
}

static void write_grid(h5out *h, const run_plan *plan) {
  hid_t g = h5u_group(h->file, "grid");
  long P = plan->n_points;
  long *li = NRD_XCALLOC((size_t)P, sizeof *li);
  double *dv = NRD_XCALLOC((size_t)P, sizeof *dv);
  for (long i = 0; i < P; i++)
    li[i] = plan->points[i].dimension;
  h5u_dataset_1d(h->dxpl, g, "dimension", 1, P, li);
  for (long i = 0; i < P; i++)
    dv[i] = plan->points[i].separation;
  h5u_dataset_1d(h->dxpl, g, "separation", 0, P, dv);
  for (long i = 0; i < P; i++)
    dv[i] = plan->points[i].strength;
  h5u_dataset_1d(h->dxpl, g, "strength", 0, P, dv);
  for (long i = 0; i < P; i++)
    li[i] = plan->points[i].n_train;
  h5u_dataset_1d(h->dxpl, g, "n_train", 1, P, li);
  free(li);
  free(dv);
  H5(H5Gclose(g));
}

void h5out_open(h5out *h, const nrd_params *p, const run_plan *plan,
                const char *command_line) {
  nrd_h5_quiet();
  h->path = output_companion(p->output.file, "");
  h->tmp_path = output_companion(p->output.file, ".tmp");
  hid_t fapl = H5(H5Pcreate(H5P_FILE_ACCESS));
  H5(H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL));
  /* the file's own format, not the library's newest: readable by any
   * HDF5 >= 1.8 and h5py */
  h->file = h5u_create_file(h->tmp_path, fapl, "the output file", "");
  H5(H5Pclose(fapl));
  h->dxpl = H5(H5Pcreate(H5P_DATASET_XFER));
  H5(H5Pset_dxpl_mpio(h->dxpl, H5FD_MPIO_COLLECTIVE));

  h5u_attr_string(h->file, "file_format", "nrdiff-output");
  h5u_attr_long(h->file, "file_format_version", 1);
  hid_t g = h5u_group(h->file, "h5md");
  long version[2] = {1, 1};
  h5u_attr_numbers(g, "version", H5T_NATIVE_LONG, 2, version);
  hid_t a = h5u_group(g, "author");
  const char *user = getenv("USER");
  char *u = h5u_bcast_string(user ? user : "unknown");
  h5u_attr_string(a, "name", u);
  free(u);
  H5(H5Gclose(a));
  hid_t c = h5u_group(g, "creator");
  h5u_attr_string(c, "name", "nrdiff");
  h5u_attr_string(c, "version", version_nrdiff());
  H5(H5Gclose(c));
  H5(H5Gclose(g));
  write_code(h->file, command_line);
  write_parameters(h, p);
  write_grid(h, plan);
  /* what the physics checks said of the parameters (diagnose.h), kept with
   * the results they qualify */
  hid_t pg = H5(H5Gopen2(h->file, "parameters", H5P_DEFAULT));
  h5u_attr_string(pg, "warnings", plan->warnings ? plan->warnings : "");
  H5(H5Gclose(pg));
  hid_t pts = h5u_group(h->file, "points");
  H5(H5Gclose(pts));
}

/* --------------------------------------------------------------- points */

/* dims (n_out, n_blocks[, m]); each rank writes the rows of its blocks. */
static void write_block_sums(h5out *h, hid_t parent, const h5out_point *pt,
                             int o) {
  const obs_layout *L = pt->layout;
  int m = L->width[o];
  hsize_t dims[3] = {(hsize_t)pt->n_out, (hsize_t)pt->n_blocks, (hsize_t)m};
  long nlb = pt->n_local_blocks;
  double *buf = NRD_XCALLOC((size_t)pt->n_out * nlb * m, sizeof *buf);
  for (long i = 0; i < pt->n_out; i++)
    for (long b = 0; b < nlb; b++)
      memcpy(buf + ((size_t)i * nlb + b) * m,
             pt->local_records + ((size_t)i * nlb + b) * L->record +
                 L->offset[o],
             (size_t)m * sizeof *buf);
  h5u_write_rows(h->dxpl, parent, "block_sum", H5T_NATIVE_DOUBLE,
                 m > 1 ? 3 : 2, dims, nlb, pt->local_blocks, buf);
  free(buf);
}

/* The error dataset's description. */
static const char *const ERROR_DESCRIPTION =
    "jackknife error of value over the particle blocks: value_b from the block "
    "sums without block b, error = sqrt((B-1)/B sum_b (value_b - mean_b "
    "value_b)^2) (an_jackknife); NaN where value is NaN or with one block";

static void write_observable(h5out *h, hid_t obs, const h5out_point *pt,
                             int o) {
  const obs_layout *L = pt->layout;
  const obs_info *info = obs_describe(o);
  int m = L->width[o];
  hid_t g = h5u_group(obs, info->name);
  h5u_attr_string(g, "description", info->description);
  h5u_attr_string(g, "unit", info->unit);
  h5u_dataset_1d(h->dxpl, g, "step", 1, pt->n_out, pt->out_step);
  h5u_dataset_1d(h->dxpl, g, "time", 0, pt->n_out, pt->out_time);
  /* value = block sums' total / particle count at every output time, and
   * its jackknife error (analysis.h, as nrdiff-post and the report); the
   * count itself is a total (no error) */
  double *v = NULL, *e = NULL;
  long n = pt->n_out, B = pt->n_blocks, R = L->record;
  if (h5u_root()) {
    v = NRD_XCALLOC((size_t)(n * m + 1), sizeof *v);
    e = NRD_XCALLOC((size_t)(n * m + 1), sizeof *e);
    double *num = NRD_XCALLOC((size_t)(n * B + 1), sizeof *num);
    double *cnt = NRD_XCALLOC((size_t)(n * B + 1), sizeof *cnt);
    double *cv = NRD_XCALLOC((size_t)(n + 1), sizeof *cv);
    double *ce = NRD_XCALLOC((size_t)(n + 1), sizeof *ce);
    for (long i = 0; i < n; i++)
      for (long b = 0; b < B; b++)
        cnt[b * n + i] = pt->blocks[((size_t)i * B + b) * R +
                                    L->offset[OBS_COUNT]];
    for (int j = 0; j < m; j++) {
      if (o == OBS_COUNT) {
        for (long i = 0; i < n; i++) {
          double total = 0;
          for (long b = 0; b < B; b++) /* block order */
            total += cnt[b * n + i];
          v[i * m + j] = total;
        }
        continue;
      }
      for (long i = 0; i < n; i++)
        for (long b = 0; b < B; b++)
          num[b * n + i] = pt->blocks[((size_t)i * B + b) * R +
                                      L->offset[o] + j];
      an_ratio_curve(n, B, num, cnt, cv, ce);
      for (long i = 0; i < n; i++)
        v[i * m + j] = cv[i], e[i * m + j] = ce[i];
    }
    free(num);
    free(cnt);
    free(cv);
    free(ce);
  }
  hsize_t dims[2] = {(hsize_t)pt->n_out, (hsize_t)m};
  h5u_dataset_root(h->dxpl, g, "value", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, m > 1 ? 2 : 1,
               dims, v);
  if (o != OBS_COUNT) {
    h5u_dataset_root(h->dxpl, g, "error", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                     m > 1 ? 2 : 1, dims, e);
    hid_t d = H5(H5Dopen2(g, "error", H5P_DEFAULT));
    h5u_attr_string(d, "description", ERROR_DESCRIPTION);
    H5(H5Dclose(d));
  }
  free(v);
  free(e);
  write_block_sums(h, g, pt, o);
  H5(H5Gclose(g));
}

static void write_trajectories(h5out *h, hid_t parent, const h5out_point *pt) {
  if (pt->n_traj == 0) return; /* output.trajectories = 0: no /particles */
  hid_t parts = h5u_group(parent, "particles");
  hid_t tr = h5u_group(parts, "trajectory");
  h5u_dataset_1d(h->dxpl, tr, "id", 1, pt->n_traj, pt->traj_ids);
  hid_t pos = h5u_group(tr, "position");
  h5u_dataset_1d(h->dxpl, pos, "step", 1, pt->n_frames, pt->frame_step);
  h5u_dataset_1d(h->dxpl, pos, "time", 0, pt->n_frames, pt->frame_time);
  hsize_t dims[3] = {(hsize_t)pt->n_frames, (hsize_t)pt->n_traj,
                     (hsize_t)pt->dimension};
  h5u_write_rows(h->dxpl, pos, "value", H5T_NATIVE_DOUBLE, 3, dims,
                 pt->n_local_traj, pt->local_traj, pt->local_positions);
  H5(H5Gclose(pos));
  H5(H5Gclose(tr));
  H5(H5Gclose(parts));
}

/* The protocols' end-of-run block sums (the OBS_FINAL slice of the last
 * output time), for errors of any function of them offline. */
static void write_final_sums(h5out *h, hid_t point, const h5out_point *pt) {
  const obs_layout *L = pt->layout;
  const proto_layout *X = pt->protocols;
  int m = L->width[OBS_FINAL];
  if (m == 0 || !X) return;
  hid_t g = h5u_group(point, "final");
  h5u_attr_string(g, "description",
                  "per-block end-of-run sums of the protocols: count, clone "
                  "pairs in the same class [n_branch], clone pairs at the "
                  "same nearest training point [n_branch], freezing time sum "
                  "and square sum [2], U-turn sums [n_uturn][uturn_stride]; "
                  "absent parts have zero width (offsets in the attributes)");
  long attrs[8] = {X->f_count,      X->f_class, X->f_nearest, X->f_freeze,
                   X->f_uturn,      X->uturn_stride, X->n_branch,
                   X->n_uturn};
  static const char *const names[8] = {"f_count",  "f_class",       "f_nearest",
                                       "f_freeze", "f_uturn",       "uturn_stride",
                                       "n_branch", "n_uturn"};
  for (int i = 0; i < 8; i++)
    h5u_attr_long(g, names[i], attrs[i]);
  hsize_t dims[3] = {1, (hsize_t)pt->n_blocks, (hsize_t)m};
  long nlb = pt->n_local_blocks;
  double *buf = NRD_XCALLOC((size_t)nlb * m, sizeof *buf);
  for (long b = 0; b < nlb; b++)
    memcpy(buf + (size_t)b * m,
           pt->local_records + ((size_t)(pt->n_out - 1) * nlb + b) * L->record +
               L->offset[OBS_FINAL],
           (size_t)m * sizeof *buf);
  h5u_write_rows(h->dxpl, g, "block_sum", H5T_NATIVE_DOUBLE, 3, dims, nlb,
                 pt->local_blocks, buf);
  free(buf);
  H5(H5Gclose(g));
}

/* The protocols' results: /points/IIII/<protocol>/<name>, rank 0's data. */
static void write_results(h5out *h, hid_t point, const proto_results *r) {
  for (int i = 0; r && i < r->n; i++) {
    const proto_dataset *ds = &r->v[i];
    hid_t g = H5Lexists(point, ds->group, H5P_DEFAULT) > 0
                  ? H5(H5Gopen2(point, ds->group, H5P_DEFAULT))
                  : h5u_group(point, ds->group);
    hsize_t dims[2] = {(hsize_t)ds->dims[0], (hsize_t)ds->dims[1]};
    h5u_dataset_root(h->dxpl, g, ds->name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                     ds->rank, dims, ds->data);
    hid_t d = H5(H5Dopen2(g, ds->name, H5P_DEFAULT));
    h5u_attr_string(d, "description", ds->description);
    H5(H5Dclose(d));
    H5(H5Gclose(g));
  }
}

void h5out_write_point(h5out *h, const nrd_params *p, const h5out_point *pt) {
  (void)p;
  char name[64];
  snprintf(name, sizeof name, "points/%04d", pt->index);
  hid_t g = h5u_group(h->file, name);
  /* rank 0's report values, identical on every rank for the attributes */
  double v[13] = {pt->critical_theory,     pt->critical_measured,
                  pt->critical_error,      pt->relaxation_rate,
                  pt->entropy_production,  pt->critical_cloning,
                  pt->critical_cloning_error, pt->speciation_measured,
                  pt->speciation_error,    pt->speciation_theory,
                  pt->speciation_covariance, pt->speciation_cloning,
                  pt->speciation_cloning_error};
  NRD_MPI_CHECK(MPI_Bcast(v, 13, MPI_DOUBLE, 0, MPI_COMM_WORLD));
  h5u_attr_long(g, "index", pt->index);
  h5u_attr_long(g, "dimension", pt->dimension);
  h5u_attr_double(g, "separation", pt->separation);
  h5u_attr_double(g, "strength", pt->strength);
  h5u_attr_long(g, "n_train", pt->n_train);
  h5u_attr_long(g, "particles", p->ensemble.particles);
  h5u_attr_long(g, "block_size", p->ensemble.block_size);
  h5u_attr_long(g, "n_blocks", pt->n_blocks);
  h5u_attr_long(g, "classes", pt->classes);
  h5u_attr_double(g, "relaxation_rate", v[3]);
  h5u_attr_double(g, "entropy_production", v[4]);
  h5u_attr_string(g, "critical_time_kind", pt->critical_kind);
  h5u_attr_double(g, "critical_time_theory", v[0]);
  h5u_attr_double(g, "critical_time_measured", v[1]);
  h5u_attr_double(g, "critical_time_error", v[2]);
  if (pt->has_cloning) { /* the same on every rank (the layout) */
    h5u_attr_double(g, "critical_time_cloning", v[5]);
    h5u_attr_double(g, "critical_time_cloning_error", v[6]);
  }
  if (pt->labelled) {
    h5u_attr_double(g, "speciation_time_measured", v[7]);
    h5u_attr_double(g, "speciation_time_error", v[8]);
    h5u_attr_double(g, "speciation_time_theory", v[9]);
    h5u_attr_double(g, "speciation_time_covariance", v[10]);
    if (pt->has_speciation_cloning) {
      h5u_attr_double(g, "speciation_time_cloning", v[11]);
      h5u_attr_double(g, "speciation_time_cloning_error", v[12]);
    }
  }
  h5u_attr_string(g, "status", pt->status ? pt->status : "ok");
  h5u_attr_string(g, "warnings", pt->warnings ? pt->warnings : "");
  if (pt->failed) {
    H5(H5Gclose(g));
    return;
  }
  hid_t obs = h5u_group(g, "observables");
  for (int o = 0; o < OBS_N; o++)
    if (pt->layout->width[o] > 0 && o != OBS_FINAL)
      write_observable(h, obs, pt, o);
  H5(H5Gclose(obs));
  write_trajectories(h, g, pt);
  write_results(h, g, pt->results);
  write_final_sums(h, g, pt);
  H5(H5Gclose(g));
}

void h5out_abandon(h5out *h) {
  H5Pclose(h->dxpl);
  H5Fclose(h->file);
  NRD_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  if (h5u_root()) unlink(h->tmp_path);
  nrd_h5_written(h->tmp_path);
  free(h->path);
  free(h->tmp_path);
}

void h5out_close(h5out *h, double wall_seconds) {
  NRD_MPI_CHECK(
      MPI_Bcast(&wall_seconds, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD));
  hid_t g = H5(H5Gopen2(h->file, "code", H5P_DEFAULT));
  h5u_attr_double(g, "wall_seconds", wall_seconds);
  H5(H5Gclose(g));
  H5(H5Pclose(h->dxpl));
  H5(H5Fclose(h->file));
  /* FILE.tmp is complete only once every rank has closed it without error
   * (a rank that failed aborts and never gets here; the others wait here
   * until they are stopped, so nothing incomplete is renamed) and it is on
   * disk (fsync: a delayed write error, such as a full disk, shows there) */
  NRD_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  int st[2] = {0, 0}; /* step that failed (1 fsync, 2 rename), errno */
  if (h5u_root()) {
    if ((st[1] = output_sync(h->tmp_path)) != 0)
      st[0] = 1;
    else if (rename(h->tmp_path, h->path) != 0)
      st[0] = 2, st[1] = errno;
    else
      output_sync_dir(h->path); /* the rename itself */
  }
  NRD_MPI_CHECK(MPI_Bcast(st, 2, MPI_INT, 0, MPI_COMM_WORLD));
  if (st[0] == 1) /* the cleanup removes FILE.tmp */
    nrd_fatal(NRD_EXIT_RUNTIME,
              "writing '%s' failed: %s; the partial file is removed, '%s' is "
              "untouched",
              h->tmp_path, strerror(st[1]), h->path);
  nrd_h5_written(h->tmp_path);
  if (st[0] == 2)
    nrd_fatal(NRD_EXIT_RUNTIME,
              "cannot rename '%s' to '%s': %s (the output is complete in '%s': "
              "rename it yourself)",
              h->tmp_path, h->path, strerror(st[1]), h->tmp_path);
  free(h->path);
  free(h->tmp_path);
}

void h5out_write_data(h5out *h, const nrd_params *p, const data_set *D) {
  if (!D) return;
  hid_t g = h5u_group(h->file, "data");
  h5u_attr_string(g, "description",
                  "the data of data.source: file as the run used them "
                  "(doc/data-files.md): the points of the kept classes, "
                  "normalised, in a seeded order whose first n_train are "
                  "the training set");
  h5u_attr_string(g, "file", p->data.file);
  h5u_attr_string(g, "dataset", p->data.dataset);
  h5u_attr_string(g, "labels", p->data.labels);
  h5u_attr_long(g, "points_in_file", D->n_file);
  h5u_attr_long(g, "points_kept", D->n);
  h5u_attr_long(g, "dimension", D->d);
  h5u_attr_long(g, "classes", D->K);
  h5u_attr_numbers(g, "class_labels", H5T_NATIVE_LONG, D->K, D->class_label);
  h5u_attr_numbers(g, "class_counts", H5T_NATIVE_LONG, D->K, D->class_count);
  h5u_attr_long(g, "pixels", D->pixels);
  h5u_attr_double(g, "mean_norm", D->mean_norm);
  h5u_attr_double(g, "scale", D->scale);
  if (D->shape_rank > 0)
    h5u_attr_numbers(g, "shape", H5T_NATIVE_LONG, D->shape_rank, D->shape);
  char digest[32];
  snprintf(digest, sizeof digest, "%016llx", (unsigned long long)D->digest);
  h5u_attr_string(g, "digest", digest);
  /* which file row each kept point is, in the run's order (the training
   * set of n_train = n is the first n) */
  hsize_t n = (hsize_t)D->n;
  h5u_dataset_root(h->dxpl, g, "row", H5T_STD_I64LE, H5T_NATIVE_LONG, 1, &n,
                   D->row);
  H5(H5Gclose(g));
}
