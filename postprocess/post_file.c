/* nrdiff-post: one run file.  Identified (an nrdiff output, not a
 * checkpoint), its parameters loaded through the run's own schema and plan,
 * every grid point checked against them, its block sums read and measured
 * (post_measure.c); a file with any problem is refused whole, its rows and
 * curves dropped, and the other files are processed as usual. */
#define _POSIX_C_SOURCE 200809L /* stat, access */
#include "config.h"

#include "post.h"

#include "config/params.h"
#include "core/grid.h"
#include "io/matrix_file.h"
#include "util/error.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* /parameters/resolved, before load_parameters reads it whole into a
 * buffer of its type's size: one fixed-length string (0), or absent (1:
 * load_parameters says so), or anything else (-1, recorded). */
static int check_resolved(hid_t file) {
  const char *path = "parameters/resolved";
  int k = object_kind(file, path, H5O_TYPE_DATASET);
  if (k <= 0) return k < 0 ? -1 : 1;
  hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
  hid_t s = d >= 0 ? H5Dget_space(d) : -1, t = d >= 0 ? H5Dget_type(d) : -1;
  hid_t pl = d >= 0 ? H5Dget_create_plist(d) : -1;
  int rc = -1;
  if (s < 0 || t < 0 || pl < 0)
    refuse(file, path, "cannot be read (damaged file?)");
  else if (H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) != 0)
    refuse(file, path, "%s%s data, expected one fixed-length string",
           H5Tget_class(t) == H5T_STRING ? "variable-length " : "",
           class_text(H5Tget_class(t)));
  else if (H5Sget_simple_extent_type(s) == H5S_NULL ||
           H5Sget_simple_extent_npoints(s) != 1)
    refuse(file, path, "%lld strings, expected one",
           H5Sget_simple_extent_type(s) == H5S_NULL
               ? 0LL
               : (long long)H5Sget_simple_extent_npoints(s));
  else if ((double)H5Tget_size(t) >
           (double)post_in.bytes * (H5Pget_nfilters(pl) > 0 ? 1032.0 : 1.0))
    refuse(file, path, "a string of %zu bytes, more than the file can hold",
           H5Tget_size(t));
  else if (H5Pget_external_count(pl) != 0 ||
           (H5Pget_layout(pl) != H5D_COMPACT &&
            H5Pget_layout(pl) != H5D_CONTIGUOUS &&
            H5Pget_layout(pl) != H5D_CHUNKED))
    refuse(file, path, "stored outside the file: nrdiff stores it inside");
  else
    rc = 0;
  if (pl >= 0) H5Pclose(pl);
  if (t >= 0) H5Tclose(t);
  if (s >= 0) H5Sclose(s);
  if (d >= 0)
    H5Dclose(d);
  else
    refuse(file, path, "cannot be opened (damaged file?)");
  return rc;
}

/* The point's number of blocks as a wanted length (ANY: unknown). */
#define BLOCKS (post_in.point_blocks > 0 ? post_in.point_blocks : ANY)

/* Particle counts per block, [n_out][n_blocks] (not empty): whole numbers
 * > 0, at most the point's block_size. */
double *read_counts(hid_t loc, const char *path, hsize_t dims[3]) {
  double *v = read_dataset(loc, path, 2, SHAPE(ANY, BLOCKS, ANY),
                           V_POSITIVE | V_NONEMPTY, dims);
  for (size_t i = 0; v && i < (size_t)(dims[0] * dims[1]); i++)
    if (v[i] != floor(v[i]) || (post_in.point_block_size > 0 &&
                                v[i] > (double)post_in.point_block_size)) {
      refuse(loc, path, "value %g at [%llu, %llu]: %s", v[i],
             (unsigned long long)(i / dims[1]),
             (unsigned long long)(i % dims[1]),
             v[i] != floor(v[i]) ? "a count, not a whole number"
                                 : "a count above the point's block_size");
      free(v);
      v = NULL;
    }
  return v;
}

/* /points/<IIII>/final (group g): block_sum [1][n_blocks][F] and the
 * attributes that lay out its columns, off[] = f_count, f_class,
 * f_nearest, f_freeze, n_branch, f_uturn, each checked against the
 * columns it indexes for the protocols present (speciation: n_branch
 * columns at f_class, collapse: n_branch at f_nearest and 2 at f_freeze),
 * and the values there: counts whole numbers > 0 (at most block_size),
 * clone pairs between 0 and the count, freezing-time sums >= 0.  NULL if
 * absent (no error) or wrong (recorded). */
double *read_final(hid_t g, int spec, int coll, long off[6], hsize_t df[3]) {
  double *fin = read_dataset(
      g, "block_sum", 3,
      SHAPE(1, post_in.point_blocks > 0 ? post_in.point_blocks : ANY, ANY),
      V_NONEMPTY, df);
  if (!fin) return NULL;
  static const char *const names[6] = {"f_count",  "f_class",  "f_nearest",
                                       "f_freeze", "n_branch", "f_uturn"};
  long B = (long)df[1], F = (long)df[2];
  for (int i = 0; i < 6; i++) {
    int rc = attr_long(g, names[i], 0, F, &off[i]);
    if (rc == 1)
      refuse(g, NULL, "attribute %s missing (it lays out block_sum)", names[i]);
    if (rc != 0) {
      free(fin);
      return NULL;
    }
  }
  long nb = off[4];
  const char *over = off[0] >= F               ? "f_count"
                     : spec && off[1] + nb > F ? "f_class + n_branch"
                     : coll && off[2] + nb > F ? "f_nearest + n_branch"
                     : coll && off[3] + 2 > F  ? "f_freeze + 2"
                                               : NULL;
  if (over) {
    refuse(g, "block_sum",
           "attributes %s (f_count %ld, f_class %ld, f_nearest "
           "%ld, f_freeze %ld, n_branch %ld) beyond its %ld "
           "columns",
           over, off[0], off[1], off[2], off[3], nb, F);
    free(fin);
    return NULL;
  }
  for (long b = 0; b < B; b++) {
    const double *x = fin + b * F;
    double n = x[off[0]];
    const char *wrong =
        !(n > 0) || n != floor(n) ? "a count, not a whole number > 0"
        : post_in.point_block_size > 0 && n > (double)post_in.point_block_size
            ? "a count above the point's block_size"
            : NULL;
    long col = off[0];
    for (long s = 0; !wrong && s < nb; s++) {
      if (spec && !(x[off[1] + s] >= 0 && x[off[1] + s] <= n))
        wrong = "clone pairs (f_class) outside 0 .. the count",
        col = off[1] + s;
      else if (coll && !(x[off[2] + s] >= 0 && x[off[2] + s] <= n))
        wrong = "clone pairs (f_nearest) outside 0 .. the count",
        col = off[2] + s;
    }
    for (int k = 0; !wrong && coll && k < 2; k++)
      if (x[off[3] + k] < 0)
        wrong = "a negative freezing-time sum (f_freeze)", col = off[3] + k;
    if (wrong) {
      refuse(g, "block_sum", "value %g at [0, %ld, %ld]: %s", x[col], b, col,
             wrong);
      free(fin);
      return NULL;
    }
  }
  return fin;
}

/* Grid point k of /points: its group (name its name, "IIII", digits), or
 * -1 (recorded: another name, not a group, an external link).  Its block
 * layout attributes (particles, block_size, n_blocks: consistent) become
 * post_in.point_blocks, post_in.point_block_size for the readers of block sums.
 */
static hid_t open_point(hid_t pts, hsize_t k, char *name, size_t len) {
  post_in.point_blocks = post_in.point_block_size = 0;
  ssize_t n = H5Lget_name_by_idx(pts, ".", H5_INDEX_NAME, H5_ITER_INC, k, NULL,
                                 0, H5P_DEFAULT);
  if (n < 0 || (size_t)n >= len ||
      H5Lget_name_by_idx(pts, ".", H5_INDEX_NAME, H5_ITER_INC, k, name, len,
                         H5P_DEFAULT) < 0) {
    refuse(pts, NULL, "member %llu: %s", (unsigned long long)k,
           n < 0 ? "cannot be read (damaged file?)"
                 : "name too long for a grid point");
    return -1;
  }
  if (!name[0] || strspn(name, "0123456789") != strlen(name)) {
    refuse(pts, name,
           "not a grid point (the members of /points are named by "
           "their index, IIII)");
    return -1;
  }
  snprintf(post_in.object, sizeof post_in.object, "/points/%s", name);
  hid_t pg = open_group(pts, name);
  if (pg < 0) {
    if (!post_in.error[0])
      refuse(pts, name, "cannot be opened (damaged file?)");
    return -1;
  }
  long np = 0, bs = 0, nb = 0;
  if (attr_long(pg, "particles", 1, LONG_MAX, &np) < 0 ||
      attr_long(pg, "block_size", 1, LONG_MAX, &bs) < 0 ||
      attr_long(pg, "n_blocks", 1, LONG_MAX, &nb) < 0) {
    H5Gclose(pg);
    return -1;
  }
  if (np && bs && nb && nb != (np + bs - 1) / bs) {
    refuse(pg, NULL,
           "attribute n_blocks = %ld, but particles = %ld in blocks of "
           "block_size = %ld make %ld",
           nb, np, bs, (np + bs - 1) / bs);
    H5Gclose(pg);
    return -1;
  }
  post_in.point_blocks = nb, post_in.point_block_size = bs;
  return pg;
}

static int same_value(double a, double b) {
  return a == b || fabs(a - b) <= 1e-12 * fmax(fabs(a), fabs(b));
}

/* A grid point's attributes against its group name and the run's plan
 * (rebuilt from /parameters/resolved; NULL: unreadable), before its theory
 * is built from the plan: 0 or -1 (recorded). */
static int check_point(hid_t pg, const char *name, long idx, const row *r,
                       const run_plan *plan) {
  if (idx >= 0 && (strlen(name) > 18 || idx != atol(name))) {
    refuse(pg, NULL, "attribute index = %ld, but the group is named %s", idx,
           name);
    return -1;
  }
  if (!plan || idx < 0) return 0;
  if (idx >= plan->n_points) {
    refuse(pg, NULL,
           "attribute index = %ld, but /parameters/resolved plans %d "
           "grid point%s",
           idx, plan->n_points, plan->n_points == 1 ? "" : "s");
    return -1;
  }
  const grid_point *g = &plan->points[idx];
#define HAS(a) (H5Aexists(pg, a) > 0)
  const char *what =
      HAS("dimension") && r->dimension != g->dimension ? "dimension"
      : HAS("n_train") && r->n_train != g->n_train     ? "n_train"
      : HAS("separation") && !same_value(r->separation, g->separation)
          ? "separation"
      : HAS("strength") && !same_value(r->strength, g->strength) ? "strength"
      : post_in.point_block_size && post_in.point_block_size != plan->block_size
          ? "block_size"
      : post_in.point_blocks && post_in.point_blocks != plan->n_blocks
          ? "n_blocks"
          : NULL;
#undef HAS
  if (what) {
    refuse(pg, NULL,
           "attribute %s differs from grid point %ld of "
           "/parameters/resolved (dimension %ld, separation %g, "
           "strength %g, n_train %ld, block_size %ld, n_blocks %ld)",
           what, idx, g->dimension, g->separation, g->strength, g->n_train,
           plan->block_size, plan->n_blocks);
    return -1;
  }
  return 0;
}

/* The resolved parameter file stored in the run (a fixed-length string
 * scalar), loaded through the same schema as the run; 0 on success.
 * Messages name it "PATH:/parameters/resolved:LINE:COLUMN". */
static int load_parameters(hid_t file, const char *path, nrd_params *p,
                           char *err, size_t len) {
  hid_t d = H5Lexists(file, "parameters/resolved", H5P_DEFAULT) > 0
                ? H5Dopen2(file, "parameters/resolved", H5P_DEFAULT)
                : -1;
  if (d < 0) {
    snprintf(err, len, "no /parameters/resolved");
    return -1;
  }
  hid_t t = H5Dget_type(d);
  size_t n =
      t >= 0 && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) == 0
          ? H5Tget_size(t)
          : 0;
  char *text = n ? file_calloc(n + 1, 1) : NULL;
  int rc =
      text && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, text) >= 0 ? 0 : -1;
  if (t >= 0) H5Tclose(t);
  H5Dclose(d);
  if (rc != 0) {
    snprintf(err, len, "cannot read /parameters/resolved");
    free(text);
    return -1;
  }
  text[n] = '\0'; /* a fixed-length string: NUL-padded, or full */
  size_t name_len = strlen(path) + sizeof ":/parameters/resolved";
  char *name = file_calloc(name_len, 1);
  snprintf(name, name_len, "%s:/parameters/resolved", path);
  params_init_defaults(p);
  rc = params_load_text(p, name, text, strlen(text), err, len) == NRD_OK ? 0
                                                                         : -1;
  free(name);
  free(text);
  return rc;
}

static row *row_new(row_list *rl) {
  if (rl->n == rl->cap) { /* out of memory: NULL, recorded */
    long cap = rl->cap ? 2 * rl->cap : 16;
    row *v = realloc(rl->v, (size_t)cap * sizeof *v);
    if (!v) {
      refuse(-1, NULL, "out of memory (%ld rows)", cap);
      return NULL;
    }
    rl->v = v, rl->cap = cap;
  }
  row *r = &rl->v[rl->n++];
  memset(r, 0, sizeof *r);
  double *nanfields[] = {
      &r->separation,   &r->strength,  &r->tS,           &r->tS_err,
      &r->tS_theory,    &r->tS_clone,  &r->tS_clone_err, &r->tS_matrix,
      &r->tC,           &r->tC_err,    &r->tC_theory,    &r->tC_clone,
      &r->tC_clone_err, &r->t_freeze,  &r->t_freeze_err, &r->t_freeze_spread,
      &r->tC_fe,        &r->tC_fe_err, &r->alpha};
  for (size_t i = 0; i < sizeof nanfields / sizeof *nanfields; i++)
    *nanfields[i] = NAN;
  return r;
}

/* 0: processed (possibly partly); -1: not a usable nrdiff output. */
static int process_file(const char *path, const options *o, row_list *rows,
                        curve_list *cv) {
  if (access(path, R_OK) != 0) {
    post_warn("%s: %s", path, strerror(errno));
    return -1;
  }
  if (H5Fis_hdf5(path) <= 0) {
    post_warn("%s: not an HDF5 file", path);
    return -1;
  }
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS); /* closing f closes everything */
  H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  H5Pclose(fapl);
  if (f < 0 || H5Fget_filesize(f, &post_in.bytes) < 0) {
    post_warn("%s: cannot open (damaged?)", path);
    if (f >= 0) H5Fclose(f);
    return -1;
  }
  char format[64], sig[64];
  read_attr_string(f, "file_format", format, sizeof format);
  read_attr_string(f, "signature", sig, sizeof sig);
  if (strcmp(format, "nrdiff-output") != 0) {
    if (strcmp(sig, "nrdiff-checkpoint") == 0)
      post_warn(
          "%s: a checkpoint of an unfinished run, not an output; continue "
          "the run with 'nrdiff --restart' and post-process its output",
          path);
    else
      post_warn("%s: not an nrdiff output file (no file_format = "
                "\"nrdiff-output\" attribute)",
                path);
    H5Fclose(f);
    return -1;
  }
  long version = 1;
  double wall;
  hid_t code = open_group(f, "code");
  int finished =
      code >= 0 && attr_double(code, "wall_seconds", V_NONNEG, &wall) == 0;
  if (code >= 0) H5Gclose(code);
  if (attr_long(f, "file_format_version", 1, 1, &version) < 0 ||
      check_resolved(f) < 0 || post_in.error[0]) {
    H5Fclose(f);
    return -1;
  }
  nrd_params p;
  memset(&p, 0, sizeof p);
  char err[1024] = "";
  int have_params = load_parameters(f, path, &p, err, sizeof err) == 0;
  if (!have_params)
    post_warn(
        "%s: parameters unreadable (%s): no theory beside the measurements",
        path, err);
  run_plan plan;
  memset(&plan, 0, sizeof plan);
  if (have_params && plan_build(&p, &plan) != NRD_OK) have_params = 0;
  hid_t pts = open_group(f, "points");
  hsize_t n_groups = 0;
  if (pts >= 0) H5Gget_num_objs(pts, &n_groups);
  hsize_t dg[3];
  double *gd = read_dataset(f, "grid/strength", 1,
                            SHAPE(have_params ? plan.n_points : ANY, ANY, ANY),
                            V_NONEMPTY, dg);
  long planned = gd ? (long)dg[0] : -1;
  free(gd);
  if (!finished || pts < 0)
    post_warn("%s: unfinished run (no wall time recorded): using the %llu grid "
              "point(s) present%s",
              path, (unsigned long long)n_groups,
              planned >= 0 ? "" : " (no /grid)");
  else if (planned > (long)n_groups && !o->quiet)
    post_warn("%s: %llu of %ld grid points present (a --grid-index run?)", path,
              (unsigned long long)n_groups, planned);
  /* a problem in the file stops it (process_one drops its rows) */
  for (hsize_t k = 0; pts >= 0 && k < n_groups && !post_in.error[0]; k++) {
    char name[64];
    hid_t pg = open_point(pts, k, name, sizeof name);
    if (pg < 0) continue;
    row *r = row_new(rows);
    if (!r) {
      H5Gclose(pg);
      continue;
    }
    snprintf(r->file, sizeof r->file, "%s", path);
    long idx = -1;
    attr_long(pg, "index", 0, INT_MAX, &idx);
    r->index = (int)idx;
    attr_long(pg, "dimension", 1, INT_MAX, &r->dimension);
    attr_long(pg, "n_train", 0, LONG_MAX, &r->n_train);
    attr_double(pg, "separation", V_NONNEG, &r->separation);
    attr_double(pg, "strength", 0, &r->strength);
    point_model pm = {0};
    if (check_point(pg, name, idx, r, have_params ? &plan : NULL) < 0 ||
        post_in.error[0]) {
      H5Gclose(pg);
      continue;
    }
    /* the theory from the parameters; for data from a file (which may be
     * gone) the run's own values */
    int from_file = have_params && p.data.source == DATA_FILE;
    if (have_params && !from_file && idx >= 0 && idx < plan.n_points) {
      pm.ok = model_build(&pm.m, &p, &plan.points[idx], matrix_file_read, err,
                          sizeof err) == NRD_OK;
      if (!pm.ok) note(r, "no theory: %s", err);
    }
    if (pm.ok) {
      theory_times(r, &pm);
    } else { /* the run's own theory value */
      double th = NAN;
      attr_double(pg, "critical_time_theory", V_NAN | V_NONNEG, &th);
      if (r->n_train > 0)
        r->tC_theory = th;
      else
        r->tS_theory = th;
      th = NAN; /* an empirical score of labelled points: the data's t_S */
      if (H5Aexists(pg, "speciation_time_theory") > 0)
        attr_double(pg, "speciation_time_theory", V_NAN | V_NONNEG, &th);
      if (!isnan(th)) r->tS_theory = r->tS_matrix = th;
    }
    /* a point that failed in the run holds no results (its state stopped
     * being finite): say so, measure nothing */
    char status[1400];
    read_attr_string(pg, "status", status, sizeof status);
    if (!strncmp(status, "failed", 6)) {
      const char *why = strstr(status, ": ");
      note(r, "FAILED in the run: %s", why ? why + 2 : "no reason recorded");
      if (pm.ok) model_free(&pm.m);
      H5Gclose(pg);
      continue;
    }
    measure_observables(pg, &pm, o, r, cv);
    measure_final(pg, r, cv);
    measure_uturn(pg, r, cv);
    measure_forward(pg, r, cv);
    measure_acf(pg, &pm, o, have_params ? p.time.T : NAN, r, cv);
    if (pm.ok) model_free(&pm.m);
    H5Gclose(pg);
  }
  if (pts >= 0) H5Gclose(pts);
  if (have_params) plan_free(&plan);
  params_free(&p);
  H5Fclose(f);
  return 0;
}

/* One run file: 0 used; -1 refused, with a message naming the file (and
 * the dataset or attribute that is wrong: "FILE: OBJECT: what"), none of
 * its rows or curves kept: its numbers are right or not shown. */
int process_one(const char *path, int index, const options *o, row_list *rows,
                curve_list *cv) {
  long rows0 = rows->n, cv0 = cv->n;
  post_in.path = path;
  post_in.index = index;
  struct stat st;
  post_in.error[0] = post_in.object[0] = 0;
  post_in.point_blocks = post_in.point_block_size = 0;
  post_in.bytes = 0;
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) { /* a FIFO would hang */
    post_warn("%s: %s, not a run file", path,
              S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
    return -1;
  }
  if (strlen(path) >= sizeof((row *)0)->file) {
    post_warn("%s: file name longer than %zu bytes", path,
              sizeof((row *)0)->file - 1);
    return -1;
  }
  post_in.reading = 1;
  int rc = process_file(path, o, rows, cv);
  post_in.reading = 0;
  if (rc == 0 && !post_in.error[0] && rows->n == rows0)
    snprintf(post_in.error, sizeof post_in.error,
             "%s: /points: no grid point to post-process", path);
  if (post_in.error[0]) {
    post_warn("%s", post_in.error);
    rc = -1;
  }
  if (rc != 0) rows->n = rows0, cv->n = cv0;
  return rc;
}
