/* nrdiff-post: the serial post-processing stage (doc/post-processing.md).
 *
 * Reads nrdiff run files and turns them into critical times with errors,
 * curves with theory beside them, a summary table (stdout, CSV, HDF5) and,
 * with --plot, figures (postprocess/nrdiff_plots.py).  Per grid point:
 *   t_S   where phi crosses F(1) = 0.7752 (the project's definition,
 *         physics.md 4.2): the headline from the clone-free estimator
 *         (speciation_phi, every output time), t_S_clone from cloning
 *         (the branch times only);
 *   t_C   where Y2 (the headline) and phi_C (cloning, t_C_clone) cross 1/2,
 *         the nearest-point freezing time, and the zero of the excess
 *         entropy f^e;
 *   curves: phi, phi_C, Y2, f^e/alpha, C_UT, the trajectory
 *         autocorrelation (FFTW) and the forward correlations.
 * Crossings use monotone interpolation and jackknife errors over particle
 * blocks (analysis.h), the functions the run's report uses on the same
 * block sums: the headline equals the run's critical_time_measured.  Theory comes from the same library as the run,
 * rebuilt from the parameters stored in the file.  A missing dataset or a
 * curve that never reaches its level is reported, never made up. */
#define _POSIX_C_SOURCE 200809L /* mkstemp, fdopen */
#include "config.h"

#include "core/analysis.h"
#include "util/error.h"
#include "core/grid.h"
#include "core/linalg.h"
#include "core/model.h"
#include "io/matrix_file.h"
#include "config/params.h"
#include "core/theory.h"
#include "util/version.h"

#include <errno.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef NRD_PKGDATADIR
#define NRD_PKGDATADIR "."
#endif
#ifndef NRD_SRCDIR
#define NRD_SRCDIR "."
#endif

static int quiet = 0;

static void warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "nrdiff-post: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

/* The first problem found in the run file being read, "FILE: OBJECT: what
 * is wrong" ("" = none).  Every dataset and attribute is validated before
 * use (reading layer below); a file with a problem is refused whole
 * (process_one: its rows are dropped, exit status 2), the other files are
 * processed as usual. */
static char file_error[1536];
static int in_file = 0;        /* a run file is being read */
static char cur_object[512];   /* its object being read (for out of memory) */

static void bad(hid_t loc, const char *name, const char *fmt, ...);

/* Zeroed memory.  Out of memory while a run file is read is that file's
 * error: NULL, recorded (the file is refused, the others processed);
 * while the results are written, they cannot be: exit status 1. */
static void *xmalloc(size_t n) {
  void *p = calloc(n ? n : 1, 1);
  if (!p && in_file) {
    bad(-1, NULL, "out of memory (%zu bytes)", n);
  } else if (!p) {
    warn("out of memory (%zu bytes)", n);
    exit(1);
  }
  return p;
}

/* ------------------------------------------------------------- results */

/* One row of the summary: a grid point of a run file.  NaN = not
 * available or not reached (the notes say which). */
typedef struct {
  char file[512];
  int index;
  long dimension, n_train;
  double separation, strength;
  /* headlines: t_S from the clone-free phi, t_C from Y2 */
  double tS, tS_err, tS_theory, tS_clone, tS_clone_err, tS_matrix;
  double tC, tC_err, tC_theory, tC_clone, tC_clone_err;
  double t_freeze, t_freeze_err, t_freeze_spread, tC_fe, tC_fe_err, alpha;
  int free_S, free_C;     /* the clone-free curve (phi, Y2) is in the file */
  int cloned_S, cloned_C; /* the cloning protocol ran (speciation, collapse) */
  char notes[512];
} row;

typedef struct {
  int index;
  const char *curve;
  double t, value, err, theory;
  const char *file; /* the run file (a row's file field) */
  int file_index;   /* its position on the command line */
} curve_point;

typedef struct {
  long n, cap;
  curve_point *v;
} curve_list;

static const char *current_file = ""; /* the file being read */
static int current_file_index = 0;

static void curve_add(curve_list *c, int index, const char *name, double t,
                      double value, double err, double theory) {
  if (c->n == c->cap) { /* out of memory: the point is dropped, recorded */
    long cap = c->cap ? 2 * c->cap : 1024;
    curve_point *v = realloc(c->v, (size_t)cap * sizeof *v);
    if (!v) {
      bad(-1, NULL, "out of memory (%ld curve points)", cap);
      return;
    }
    c->v = v, c->cap = cap;
  }
  c->v[c->n++] = (curve_point){index, name, t, value, err, theory, current_file,
                                current_file_index};
}

static void note(row *r, const char *fmt, ...) {
  size_t n = strlen(r->notes);
  if (n + 3 >= sizeof r->notes) return;
  if (n) strcat(r->notes, "; ");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->notes + strlen(r->notes), sizeof r->notes - strlen(r->notes),
            fmt, ap);
  va_end(ap);
}

/* ------------------------------------------------------------ reading */

/* The reading layer: every dataset and attribute post-processing uses is
 * read here and validated before use (doc/file-format.md): its type, rank
 * and shape (the shape against the data it labels or indexes), a size the
 * file can hold, its values (no infinity anywhere; NaN only where the
 * format allows it; counts > 0, times >= 0 and time axes strictly
 * decreasing).  Absent is not an error (NULL / 1: what needs it is skipped
 * and the notes say so); anything else wrong is recorded by bad() and the
 * file is refused. */

static hsize_t file_bytes;            /* size of the file being read */
static long point_blocks;             /* the point's n_blocks (0: unknown) */
static long point_block_size;         /* its block_size (0: unknown) */

/* Record the file's first problem: OBJECT is loc's path, then name. */
static void bad(hid_t loc, const char *name, const char *fmt, ...) {
  if (file_error[0]) return; /* later problems may follow from the first */
  char obj[512] = "";
  if (loc >= 0 && H5Iget_name(loc, obj, sizeof obj) < 0) obj[0] = 0;
  if (loc < 0) snprintf(obj, sizeof obj, "%s", cur_object[0] ? cur_object : "/");
  if (name && name[0]) {
    size_t n = strlen(obj);
    snprintf(obj + n, sizeof obj - n, "%s%s", n && obj[n - 1] == '/' ? "" : "/",
             name);
  }
  char what[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  snprintf(file_error, sizeof file_error, "%s: %s: %s", current_file,
           obj[0] ? obj : "/", what);
}

/* A shape "[2, 3]" (want: ANY = any length, shown as *). */
#define ANY (-1L)
#define SHAPE(a, b, c) ((const long[3]){(a), (b), (c)})
static const char *shape_text(char *buf, size_t len, int rank,
                              const hsize_t *dims, const long *want) {
  size_t n = (size_t)snprintf(buf, len, "[");
  for (int k = 0; k < rank && n < len; k++) {
    const char *sep = k ? ", " : "";
    if (dims)
      n += (size_t)snprintf(buf + n, len - n, "%s%llu", sep,
                            (unsigned long long)dims[k]);
    else if (want[k] == ANY)
      n += (size_t)snprintf(buf + n, len - n, "%s*", sep);
    else
      n += (size_t)snprintf(buf + n, len - n, "%s%ld", sep, want[k]);
  }
  if (n < len) snprintf(buf + n, len - n, "]");
  return buf;
}

static const char *class_text(H5T_class_t c) {
  switch (c) {
  case H5T_INTEGER: return "integer";
  case H5T_FLOAT: return "floating-point";
  case H5T_STRING: return "string";
  case H5T_COMPOUND: return "compound";
  case H5T_ENUM: return "enum";
  case H5T_ARRAY: return "array";
  case H5T_VLEN: return "variable-length";
  default: return "non-numeric";
  }
}

/* What path (relative to loc) is: 1 the object wanted (H5O_TYPE_GROUP or
 * H5O_TYPE_DATASET), 0 absent, -1 something else (recorded): every
 * component but the last a group, no external link (it would read another
 * file; nrdiff writes none), no dangling soft link. */
static int object_kind(hid_t loc, const char *path, H5O_type_t want) {
  char buf[512];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
    bad(loc, NULL, "object name too long");
    return -1;
  }
  for (char *end = buf;; end++) {
    if (*end != '/' && *end) continue;
    char c = *end;
    *end = 0;
    int last = c == 0;
    htri_t e = H5Lexists(loc, buf, H5P_DEFAULT);
    if (e < 0) {
      bad(loc, buf, "cannot be looked up (damaged file?)");
      return -1;
    }
    if (e == 0) return 0;
    H5L_info_t li;
    if (H5Lget_info(loc, buf, &li, H5P_DEFAULT) < 0) {
      bad(loc, buf, "cannot be looked up (damaged file?)");
      return -1;
    }
    if (li.type != H5L_TYPE_HARD && li.type != H5L_TYPE_SOFT) {
      bad(loc, buf, "an external link (to another file): nrdiff writes none");
      return -1;
    }
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t oi;
    herr_t rc = H5Oget_info_by_name3(loc, buf, &oi, H5O_INFO_BASIC, H5P_DEFAULT);
#else
    H5O_info_t oi;
    herr_t rc = H5Oget_info_by_name2(loc, buf, &oi, H5O_INFO_BASIC, H5P_DEFAULT);
#endif
    if (rc < 0) {
      bad(loc, buf, "%s", li.type == H5L_TYPE_SOFT
                              ? "a soft link to nothing"
                              : "cannot be opened (damaged file?)");
      return -1;
    }
    H5O_type_t need = last ? want : H5O_TYPE_GROUP;
    if (oi.type != need) {
      bad(loc, buf, "%s, expected a %s",
          oi.type == H5O_TYPE_GROUP     ? "a group"
          : oi.type == H5O_TYPE_DATASET ? "a dataset"
                                        : "a named datatype",
          need == H5O_TYPE_GROUP ? "group" : "dataset");
      return -1;
    }
    if (last) return 1;
    *end = c;
  }
}

/* A group: its id, or -1 when absent (no error) or not a group (error
 * recorded; tell them apart by file_error). */
static hid_t open_group(hid_t loc, const char *path) {
  if (object_kind(loc, path, H5O_TYPE_GROUP) <= 0) return -1;
  hid_t g = H5Gopen2(loc, path, H5P_DEFAULT);
  if (g < 0) bad(loc, path, "cannot be opened (damaged file?)");
  return g;
}

/* What the values of a dataset may be, beyond finite. */
enum {
  V_NAN = 1,      /* NaN: a value undefined (doc/file-format.md) */
  V_NONNEG = 2,   /* >= 0 */
  V_POSITIVE = 4, /* > 0 */
  V_FALLING = 8,  /* strictly decreasing (rank 1: a time axis) */
  V_NONEMPTY = 16 /* no axis of length 0 */
};
#define V_TIMES (V_NONNEG)                        /* times in any order */
#define V_TIME_AXIS (V_NONNEG | V_FALLING | V_NONEMPTY) /* output times */

/* A floating-point dataset of exactly `rank` axes (1 .. 3) whose axis k
 * has length want[k] (ANY: any), with the values `flags` allow (infinity
 * never).  Returns its values as doubles, dims the shape (missing trailing
 * axes 1), or NULL: absent (no error), or wrong (error recorded). */
static double *read_dataset(hid_t loc, const char *path, int rank,
                            const long want[3], int flags, hsize_t dims[3]) {
  dims[0] = dims[1] = dims[2] = 1;
  if (object_kind(loc, path, H5O_TYPE_DATASET) <= 0) return NULL;
  hid_t d = H5Dopen2(loc, path, H5P_DEFAULT);
  if (d < 0) {
    bad(loc, path, "cannot be opened (damaged file?)");
    return NULL;
  }
  hid_t s = H5Dget_space(d), t = H5Dget_type(d), pl = H5Dget_create_plist(d);
  double *v = NULL;
  hsize_t dd[3] = {1, 1, 1};
  char got[96], exp[96];
  H5S_class_t sc = s >= 0 ? H5Sget_simple_extent_type(s) : H5S_NO_CLASS;
  int r = sc == H5S_SIMPLE ? H5Sget_simple_extent_ndims(s) : 0;
  H5T_class_t tc = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
  H5D_layout_t layout = pl >= 0 ? H5Pget_layout(pl) : H5D_LAYOUT_ERROR;
  if (s < 0 || t < 0 || pl < 0 || sc == H5S_NO_CLASS) {
    bad(loc, path, "cannot be read (damaged file?)");
    goto done;
  }
  if (sc != H5S_SIMPLE || r != rank) {
    bad(loc, path, "%s, expected %d ax%s %s",
        sc == H5S_NULL     ? "no data (a null dataspace)"
        : sc == H5S_SCALAR ? "a scalar"
                           : (snprintf(got, sizeof got, "%d ax%s", r, r == 1 ? "is" : "es"), got),
        rank, rank == 1 ? "is" : "es", shape_text(exp, sizeof exp, rank, NULL, want));
    goto done;
  }
  H5Sget_simple_extent_dims(s, dd, NULL);
  for (int k = 0; k < rank; k++)
    if ((want && want[k] != ANY && dd[k] != (hsize_t)want[k]) ||
        ((flags & V_NONEMPTY) && dd[k] == 0)) {
      bad(loc, path, "shape %s, expected %s%s",
          shape_text(got, sizeof got, rank, dd, NULL),
          shape_text(exp, sizeof exp, rank, NULL, want ? want : SHAPE(ANY, ANY, ANY)),
          (flags & V_NONEMPTY) && dd[k] == 0 ? " and not empty" : "");
      goto done;
    }
  if (tc != H5T_FLOAT) {
    bad(loc, path, "%s data, expected floating point", class_text(tc));
    goto done;
  }
  if (layout != H5D_COMPACT && layout != H5D_CONTIGUOUS &&
      layout != H5D_CHUNKED) {
    bad(loc, path, "a virtual or unknown storage layout: nrdiff writes none");
    goto done;
  }
  if (H5Pget_external_count(pl) != 0) {
    bad(loc, path, "stored in an external raw file: nrdiff writes none");
    goto done;
  }
  /* the number of values, overflow-checked, and a size the file can hold
   * (compressed: deflate's 1032:1 at most) */
  size_t n = 1, tsize = H5Tget_size(t);
  int filters = H5Pget_nfilters(pl);
  for (int k = 0; k < rank; k++) {
    if (dd[k] && n > SIZE_MAX / sizeof(double) / dd[k]) {
      bad(loc, path, "shape %s: more values than can be addressed",
          shape_text(got, sizeof got, rank, dd, NULL));
      goto done;
    }
    n *= (size_t)dd[k];
  }
  double limit = (double)file_bytes * (filters > 0 ? 1032.0 : 1.0);
  if ((double)n * (double)tsize > limit) {
    bad(loc, path, "shape %s: %.4g bytes, more than the file (%llu bytes) "
                   "can hold",
        shape_text(got, sizeof got, rank, dd, NULL), (double)n * (double)tsize,
        (unsigned long long)file_bytes);
    goto done;
  }
  v = calloc(n ? n : 1, sizeof *v);
  if (!v) {
    bad(loc, path, "out of memory for %zu values", n);
    goto done;
  }
  if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
    bad(loc, path, "cannot be read (damaged file?)");
    free(v);
    v = NULL;
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    double x = v[i];
    const char *wrong = isinf(x)                                 ? "infinite"
                        : isnan(x) && !(flags & V_NAN)           ? "NaN"
                        : (flags & V_NONNEG) && x < 0            ? "negative"
                        : (flags & V_POSITIVE) && x <= 0         ? "not > 0"
                        : (flags & V_FALLING) && i && !(x < v[i - 1])
                            ? "not below the value before it (a time axis "
                              "falls strictly)"
                            : NULL;
    if (!wrong) continue;
    hsize_t at[3] = {i, 0, 0};
    if (rank == 2) at[0] = i / dd[1], at[1] = i % dd[1];
    if (rank == 3)
      at[0] = i / (dd[1] * dd[2]), at[1] = i / dd[2] % dd[1], at[2] = i % dd[2];
    bad(loc, path, "value %g at %s: %s", x,
        shape_text(got, sizeof got, rank, at, NULL), wrong);
    free(v);
    v = NULL;
    goto done;
  }
  memcpy(dims, dd, sizeof dd);
done:
  if (pl >= 0) H5Pclose(pl);
  if (t >= 0) H5Tclose(t);
  if (s >= 0) H5Sclose(s);
  H5Dclose(d);
  return v;
}

/* An attribute of one value, read as `type` (H5T_NATIVE_LONG or
 * H5T_NATIVE_DOUBLE, of the same class in the file) into v: 0; 1 absent (v
 * unchanged); -1 wrong (an array, another type class, unreadable, an
 * infinity: error recorded). */
static int read_attr(hid_t obj, const char *name, hid_t type, void *v) {
  htri_t e = H5Aexists(obj, name);
  if (e == 0) return 1;
  if (e < 0) {
    bad(obj, NULL, "attribute %s cannot be looked up (damaged file?)", name);
    return -1;
  }
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t s = a >= 0 ? H5Aget_space(a) : -1, t = a >= 0 ? H5Aget_type(a) : -1;
  H5T_class_t want = H5Tget_class(type), got = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
  hssize_t np = s >= 0 && H5Sget_simple_extent_type(s) != H5S_NULL
                    ? H5Sget_simple_extent_npoints(s)
                    : 0;
  union {
    long l;
    double d;
  } x;
  int rc = -1;
  if (a < 0 || s < 0 || t < 0)
    bad(obj, NULL, "attribute %s cannot be read (damaged file?)", name);
  else if (np != 1)
    bad(obj, NULL, "attribute %s holds %lld values, expected one", name,
        (long long)np);
  else if (got != want)
    bad(obj, NULL, "attribute %s is %s, expected %s", name, class_text(got),
        want == H5T_INTEGER ? "an integer" : "a floating-point number");
  else if (H5Tget_size(type) != sizeof x.l || H5Aread(a, type, &x) < 0)
    bad(obj, NULL, "attribute %s cannot be read (damaged file?)", name);
  else if (want == H5T_FLOAT && isinf(x.d))
    bad(obj, NULL, "attribute %s is infinite", name);
  else
    rc = 0;
  if (rc == 0) memcpy(v, &x, sizeof x.l);
  if (t >= 0) H5Tclose(t);
  if (s >= 0) H5Sclose(s);
  if (a >= 0) H5Aclose(a);
  return rc;
}

/* An integer attribute in [lo, hi] (0; 1 absent; -1 wrong, recorded). */
static int attr_long(hid_t obj, const char *name, long lo, long hi, long *v) {
  long x = 0;
  int rc = read_attr(obj, name, H5T_NATIVE_LONG, &x);
  if (rc == 0 && (x < lo || x > hi)) {
    if (lo == hi)
      bad(obj, NULL, "attribute %s = %ld, expected %ld", name, x, lo);
    else
      bad(obj, NULL, "attribute %s = %ld, expected %ld .. %ld", name, x, lo, hi);
    rc = -1;
  }
  if (rc == 0) *v = x;
  return rc;
}

/* A floating-point attribute, finite or as flags (V_NAN, V_NONNEG) allow. */
static int attr_double(hid_t obj, const char *name, int flags, double *v) {
  double x = 0;
  int rc = read_attr(obj, name, H5T_NATIVE_DOUBLE, &x);
  if (rc == 0 && ((isnan(x) && !(flags & V_NAN)) ||
                  ((flags & V_NONNEG) && x < 0))) {
    bad(obj, NULL, "attribute %s = %g, expected a %snumber%s", name, x,
        flags & V_NONNEG ? "non-negative " : "finite ",
        flags & V_NAN ? " or NaN" : "");
    rc = -1;
  }
  if (rc == 0) *v = x;
  return rc;
}

/* A variable-length string attribute of one value into buf ("" if absent
 * or anything else: the identification attributes, checked by value). */
static void read_attr_string(hid_t obj, const char *name, char *buf,
                             size_t len) {
  buf[0] = 0;
  if (H5Aexists(obj, name) <= 0) return;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return;
  hid_t t = H5Aget_type(a), s = H5Aget_space(a);
  int one = t >= 0 && s >= 0 && H5Sget_simple_extent_type(s) != H5S_NULL &&
            H5Sget_simple_extent_npoints(s) == 1;
  if (one && H5Tis_variable_str(t) > 0) {
    char *str = NULL;
    if (H5Aread(a, t, &str) >= 0 && str) {
      snprintf(buf, len, "%s", str);
      H5free_memory(str);
    }
  } else if (one && H5Tget_class(t) == H5T_STRING) { /* fixed length */
    size_t n = H5Tget_size(t);
    char *str = n > 0 && n < (1u << 20) ? calloc(n + 1, 1) : NULL;
    if (str && H5Aread(a, t, str) >= 0) snprintf(buf, len, "%s", str);
    free(str);
  }
  if (s >= 0) H5Sclose(s);
  if (t >= 0) H5Tclose(t);
  H5Aclose(a);
}

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
    bad(file, path, "cannot be read (damaged file?)");
  else if (H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) != 0)
    bad(file, path, "%s%s data, expected one fixed-length string",
        H5Tget_class(t) == H5T_STRING ? "variable-length " : "",
        class_text(H5Tget_class(t)));
  else if (H5Sget_simple_extent_type(s) == H5S_NULL ||
           H5Sget_simple_extent_npoints(s) != 1)
    bad(file, path, "%lld strings, expected one",
        H5Sget_simple_extent_type(s) == H5S_NULL
            ? 0LL
            : (long long)H5Sget_simple_extent_npoints(s));
  else if ((double)H5Tget_size(t) >
           (double)file_bytes * (H5Pget_nfilters(pl) > 0 ? 1032.0 : 1.0))
    bad(file, path, "a string of %zu bytes, more than the file can hold",
        H5Tget_size(t));
  else if (H5Pget_external_count(pl) != 0 ||
           (H5Pget_layout(pl) != H5D_COMPACT &&
            H5Pget_layout(pl) != H5D_CONTIGUOUS &&
            H5Pget_layout(pl) != H5D_CHUNKED))
    bad(file, path, "stored outside the file: nrdiff stores it inside");
  else
    rc = 0;
  if (pl >= 0) H5Pclose(pl);
  if (t >= 0) H5Tclose(t);
  if (s >= 0) H5Sclose(s);
  if (d >= 0) H5Dclose(d);
  else bad(file, path, "cannot be opened (damaged file?)");
  return rc;
}

/* The point's number of blocks as a wanted length (ANY: unknown). */
#define BLOCKS (point_blocks > 0 ? point_blocks : ANY)

/* Particle counts per block, [n_out][n_blocks] (not empty): whole numbers
 * > 0, at most the point's block_size. */
static double *read_counts(hid_t loc, const char *path, hsize_t dims[3]) {
  double *v = read_dataset(loc, path, 2, SHAPE(ANY, BLOCKS, ANY),
                           V_POSITIVE | V_NONEMPTY, dims);
  for (size_t i = 0; v && i < (size_t)(dims[0] * dims[1]); i++)
    if (v[i] != floor(v[i]) ||
        (point_block_size > 0 && v[i] > (double)point_block_size)) {
      bad(loc, path, "value %g at [%llu, %llu]: %s", v[i],
          (unsigned long long)(i / dims[1]), (unsigned long long)(i % dims[1]),
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
static double *read_final(hid_t g, int spec, int coll, long off[6],
                          hsize_t df[3]) {
  double *fin = read_dataset(
      g, "block_sum", 3, SHAPE(1, point_blocks > 0 ? point_blocks : ANY, ANY),
      V_NONEMPTY, df);
  if (!fin) return NULL;
  static const char *const names[6] = {"f_count",  "f_class",  "f_nearest",
                                       "f_freeze", "n_branch", "f_uturn"};
  long B = (long)df[1], F = (long)df[2];
  for (int i = 0; i < 6; i++) {
    int rc = attr_long(g, names[i], 0, F, &off[i]);
    if (rc == 1)
      bad(g, NULL, "attribute %s missing (it lays out block_sum)", names[i]);
    if (rc != 0) {
      free(fin);
      return NULL;
    }
  }
  long nb = off[4];
  const char *over = off[0] >= F                ? "f_count"
                     : spec && off[1] + nb > F  ? "f_class + n_branch"
                     : coll && off[2] + nb > F  ? "f_nearest + n_branch"
                     : coll && off[3] + 2 > F   ? "f_freeze + 2"
                                                : NULL;
  if (over) {
    bad(g, "block_sum", "attributes %s (f_count %ld, f_class %ld, f_nearest "
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
        : point_block_size > 0 && n > (double)point_block_size
            ? "a count above the point's block_size"
            : NULL;
    long col = off[0];
    for (long s = 0; !wrong && s < nb; s++) {
      if (spec && !(x[off[1] + s] >= 0 && x[off[1] + s] <= n))
        wrong = "clone pairs (f_class) outside 0 .. the count", col = off[1] + s;
      else if (coll && !(x[off[2] + s] >= 0 && x[off[2] + s] <= n))
        wrong = "clone pairs (f_nearest) outside 0 .. the count",
        col = off[2] + s;
    }
    for (int k = 0; !wrong && coll && k < 2; k++)
      if (x[off[3] + k] < 0)
        wrong = "a negative freezing-time sum (f_freeze)", col = off[3] + k;
    if (wrong) {
      bad(g, "block_sum", "value %g at [0, %ld, %ld]: %s", x[col], b, col,
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
 * point_blocks, point_block_size for the readers of block sums. */
static hid_t open_point(hid_t pts, hsize_t k, char *name, size_t len) {
  point_blocks = point_block_size = 0;
  ssize_t n = H5Lget_name_by_idx(pts, ".", H5_INDEX_NAME, H5_ITER_INC, k,
                                 NULL, 0, H5P_DEFAULT);
  if (n < 0 || (size_t)n >= len ||
      H5Lget_name_by_idx(pts, ".", H5_INDEX_NAME, H5_ITER_INC, k, name, len,
                         H5P_DEFAULT) < 0) {
    bad(pts, NULL, "member %llu: %s", (unsigned long long)k,
        n < 0 ? "cannot be read (damaged file?)" : "name too long for a grid point");
    return -1;
  }
  if (!name[0] || strspn(name, "0123456789") != strlen(name)) {
    bad(pts, name, "not a grid point (the members of /points are named by "
                   "their index, IIII)");
    return -1;
  }
  snprintf(cur_object, sizeof cur_object, "/points/%s", name);
  hid_t pg = open_group(pts, name);
  if (pg < 0) {
    if (!file_error[0]) bad(pts, name, "cannot be opened (damaged file?)");
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
    bad(pg, NULL, "attribute n_blocks = %ld, but particles = %ld in blocks of "
                  "block_size = %ld make %ld",
        nb, np, bs, (np + bs - 1) / bs);
    H5Gclose(pg);
    return -1;
  }
  point_blocks = nb, point_block_size = bs;
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
    bad(pg, NULL, "attribute index = %ld, but the group is named %s", idx,
        name);
    return -1;
  }
  if (!plan || idx < 0) return 0;
  if (idx >= plan->n_points) {
    bad(pg, NULL, "attribute index = %ld, but /parameters/resolved plans %d "
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
      : point_block_size && point_block_size != plan->block_size ? "block_size"
      : point_blocks && point_blocks != plan->n_blocks           ? "n_blocks"
                                                                 : NULL;
#undef HAS
  if (what) {
    bad(pg, NULL, "attribute %s differs from grid point %ld of "
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
  char *text = n ? xmalloc(n + 1) : NULL;
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
  char *name = xmalloc(name_len);
  snprintf(name, name_len, "%s:/parameters/resolved", path);
  params_init_defaults(p);
  rc = params_load_text(p, name, text, strlen(text), err, len) == NRD_OK ? 0
                                                                         : -1;
  free(name);
  free(text);
  return rc;
}

/* Block sums of an observable as B x n (block-major), from its
 * [n_out][B] (or [n_out][B][m], column col) dataset. */
static double *block_major(const double *v, const hsize_t dims[3], int col) {
  long n = (long)dims[0], B = (long)dims[1], m = (long)dims[2];
  double *out = xmalloc((size_t)(n * B) * sizeof *out);
  for (long i = 0; out && i < n; i++)
    for (long b = 0; b < B; b++)
      out[b * n + i] = v[(i * B + b) * m + col];
  return out;
}

/* ------------------------------------------------------------- theory */

typedef struct {
  int ok;
  model m;
} point_model;

static double F1(void) {
  return theory_F(1.0);
}

/* tr(e^{-A tau} S) / tr S. */
static double stationary_corr(const model *m, double tau) {
  int d = m->d;
  double *E = xmalloc((size_t)d * d * sizeof *E), num = 0, den = 0;
  double c = NAN;
  if (E && ou_propagator(&m->op, tau, E) == NRD_OK) {
    for (int i = 0; i < d; i++)
      for (int k = 0; k < d; k++)
        num += E[(size_t)i * d + k] * m->op.S[(size_t)k * d + i];
    for (int i = 0; i < d; i++)
      den += m->op.S[(size_t)i * d + i];
    c = num / den;
  }
  free(E);
  return c;
}

static void theory_times(row *r, const point_model *pm) {
  if (!pm->ok) return;
  const model *m = &pm->m;
  const mixture *mx = &m->mix;
  double t = NAN;
  if (mx->symmetric2 && theory_tS_kappa(&m->op, mx->means, mx->cov, &t) == NRD_OK)
    r->tS_theory = t;
  if (mx->cov_shared &&
      theory_tS_matrix(&m->op, mx->K, mx->weights, mx->means, mx->cov, &t) ==
          NRD_OK) {
    r->tS_matrix = t;
    if (isnan(r->tS_theory)) r->tS_theory = t;
  }
  if (m->n_train > 0) {
    double alpha = log((double)m->n_train) / m->d;
    int rc = mx->symmetric2
                 ? theory_tC_rem_gm2(&m->op, mx->means, mx->cov, alpha, &t)
                 : theory_tC_rem(&m->op, mx->cov, alpha, &t);
    if (alpha > 0 && rc == NRD_OK) r->tC_theory = t;
  }
}

/* ---------------------------------------------------------- per point */

typedef struct {
  double acf_from; /* frames at t >= this enter the autocorrelation */
  double fe_level; /* f^e / alpha level taken as its zero */
} options;

/* Ratio curve of block sums (num/den, B x n) with pointwise errors, its
 * crossing of `level` with a jackknife error; adds the curve. */
static void measure_curve(curve_list *cv, int index, const char *name, long n,
                          const double *t, long B, const double *num,
                          const double *den, const double *theory,
                          double level, int dir, double scale, double *cross,
                          double *cross_err) {
  if (!num || !den) return; /* out of memory: recorded, the file refused */
  double *c = xmalloc((size_t)n * sizeof *c), *e = xmalloc((size_t)n * sizeof *e);
  if (!c || !e) {
    free(c), free(e);
    return;
  }
  an_ratio_curve(n, B, num, den, c, e);
  for (long i = 0; i < n; i++)
    curve_add(cv, index, name, t[i], c[i] / scale, e[i] / scale,
              theory ? theory[i] : NAN);
  if (cross) an_jackknife_crossing(n, t, B, num, den, level, dir, cross, cross_err);
  free(c);
  free(e);
}

static void say_crossing(row *r, const char *what, double v, double err) {
  if (isnan(v))
    note(r, "%s: not reached", what);
  else if (isnan(err))
    note(r, "%s: no error (a leave-one-block-out curve does not reach the "
            "level, or one block)",
         what);
}

/* The clone-free speciation estimator and Y2 (time-resolved). */
static void measure_observables(hid_t pg, const point_model *pm,
                                const options *o, row *r, curve_list *cv) {
  hsize_t dc[3], dv[3], dt[3];
  double *cnt = read_counts(pg, "observables/count/block_sum", dc);
  double *time = read_dataset(pg, "observables/count/time", 1,
                              SHAPE(cnt ? (long)dc[0] : ANY, ANY, ANY),
                              V_TIME_AXIS, dt);
  if (!cnt || !time) {
    note(r, "no observables/count: time-resolved estimators skipped");
    free(cnt), free(time);
    return;
  }
  long n = (long)dc[0], B = (long)dc[1];
  double *den = block_major(cnt, dc, 0);
  double *phi = read_dataset(pg, "observables/speciation_phi/block_sum", 2,
                             SHAPE(n, B, ANY), V_NAN | V_NONNEG, dv);
  if (phi && dv[0] == dc[0] && dv[1] == dc[1]) {
    double *num = block_major(phi, dv, 0);
    double *th = xmalloc((size_t)n * sizeof *th);
    for (long i = 0; th && i < n; i++) {
      double k;
      const mixture *mx = &pm->m.mix;
      th[i] = NAN;
      if (pm->ok && mx->symmetric2 &&
          theory_kappa(&pm->m.op, mx->means, mx->cov, time[i], &k) == NRD_OK)
        th[i] = theory_F(k);
    }
    measure_curve(cv, r->index, "phi_free", n, time, B, num, den, th, F1(), -1,
                  1, &r->tS, &r->tS_err);
    r->free_S = 1;
    say_crossing(r, "t_S (clone-free)", r->tS, r->tS_err);
    free(num), free(th);
  }
  free(phi);
  double *y2 = read_dataset(pg, "observables/participation_y2/block_sum", 2,
                            SHAPE(n, B, ANY), V_NAN | V_NONNEG, dv);
  if (y2 && dv[0] == dc[0] && dv[1] == dc[1]) {
    double *num = block_major(y2, dv, 0);
    measure_curve(cv, r->index, "Y2", n, time, B, num, den, NULL, 0.5, -1, 1,
                  &r->tC, &r->tC_err);
    r->free_C = 1;
    say_crossing(r, "t_C (Y2)", r->tC, r->tC_err);
    free(num);
  }
  free(y2);
  /* excess entropy: d f^e = d offset_t + ln p^e, so the ratio curve of
   * (sum ln p + d offset count) / count crosses 0 where f^e does */
  double *lp = read_dataset(pg, "observables/log_pe/block_sum", 2,
                            SHAPE(n, B, ANY), V_NAN, dv);
  hsize_t de[3], da[3];
  double *fe = read_dataset(pg, "collapse/excess_entropy", 1,
                            SHAPE(n, ANY, ANY), V_NAN, de);
  double *alpha = read_dataset(pg, "collapse/alpha", 1, SHAPE(1, ANY, ANY),
                               V_NONNEG, da);
  if (lp && fe && alpha && dv[0] == dc[0] && dv[1] == dc[1] &&
      (long)de[0] == n && r->dimension > 0 && alpha[0] > 0) {
    int d = (int)r->dimension;
    double *num = block_major(lp, dv, 0);
    for (long i = 0; num && den && i < n; i++) {
      double L = 0, N = 0;
      for (long b = 0; b < B; b++)
        L += num[b * n + i], N += den[b * n + i];
      double offset = fe[i] - L / N / d; /* alpha + ln det(2 pi e Delta)/2d */
      for (long b = 0; b < B; b++)
        num[b * n + i] += d * offset * den[b * n + i];
    }
    r->alpha = alpha[0];
    /* f^e reaches 0 only asymptotically at finite d: its "zero" is where
     * f^e / alpha falls to fe_level [I] */
    measure_curve(cv, r->index, "fe_over_alpha", n, time, B, num, den, NULL,
                  o->fe_level * d * alpha[0], +1, d * alpha[0], &r->tC_fe,
                  &r->tC_fe_err);
    say_crossing(r, "t_C_fe (zero of f^e)", r->tC_fe, r->tC_fe_err);
    free(num);
  } else if (lp || fe) {
    note(r, "excess entropy incomplete (log_pe, excess_entropy, alpha)");
  }
  free(lp), free(fe), free(alpha);
  free(cnt), free(time), free(den);
}

/* End-of-run sums: cloning (speciation, collapse) and freezing times. */
static void measure_final(hid_t pg, row *r, curve_list *cv) {
  hsize_t df[3], db[3];
  int has_spec = H5Lexists(pg, "speciation", H5P_DEFAULT) > 0;
  int has_coll = H5Lexists(pg, "collapse", H5P_DEFAULT) > 0;
  if (!has_spec && !has_coll) return;
  hid_t g = open_group(pg, "final");
  long off[6];
  double *fin = g >= 0 ? read_final(g, has_spec, has_coll, off, df) : NULL;
  int ok = fin != NULL;
  if (g >= 0) H5Gclose(g);
  if (!ok) {
    note(r, "no /final block sums: cloning and freezing times skipped");
    free(fin);
    return;
  }
  long B = (long)df[1], F = (long)df[2];
  double *den = NULL;
  for (int kind = 0; kind < 2; kind++) {
    const char *grp = kind ? "collapse" : "speciation";
    if (!(kind ? has_coll : has_spec)) continue;
    char path[64];
    snprintf(path, sizeof path, "%s/branch_time", grp);
    double *tb = read_dataset(pg, path, 1, SHAPE(off[4], ANY, ANY), V_TIMES, db);
    long nb = tb ? (long)db[0] : 0, col = kind ? off[2] : off[1];
    if (!tb || nb != off[4] || col + nb > F) {
      free(tb);
      continue;
    }
    double *num = xmalloc((size_t)(B * nb) * sizeof *num);
    den = xmalloc((size_t)(B * nb) * sizeof *den);
    for (long b = 0; num && den && b < B; b++)
      for (long s = 0; s < nb; s++) {
        num[b * nb + s] = fin[b * F + col + s];
        den[b * nb + s] = fin[b * F + off[0]];
      }
    double *th = NULL;
    if (!kind)
      th = read_dataset(pg, "speciation/phi_theory", 1, SHAPE(nb, ANY, ANY),
                        V_NAN | V_NONNEG, db);
    if (kind) r->cloned_C = 1;
    else r->cloned_S = 1;
    if (kind) {
      measure_curve(cv, r->index, "phiC_clone", nb, tb, B, num, den, NULL, 0.5,
                    -1, 1, &r->tC_clone, &r->tC_clone_err);
      say_crossing(r, "t_C_clone (phi_C, branch times only)", r->tC_clone,
                   r->tC_clone_err);
    } else {
      measure_curve(cv, r->index, "phi_clone", nb, tb, B, num, den, th, F1(),
                    -1, 1, &r->tS_clone, &r->tS_clone_err);
      say_crossing(r, "t_S_clone (cloning, branch times only)", r->tS_clone,
                   r->tS_clone_err);
    }
    free(th), free(num), free(den), free(tb);
    den = NULL;
  }
  if (has_coll && off[3] + 2 <= F) { /* freezing: mean and spread */
    double *sum = xmalloc((size_t)B * sizeof *sum), *cnt = xmalloc((size_t)B * sizeof *cnt);
    double sq = 0, n = 0;
    for (long b = 0; sum && cnt && b < B; b++) {
      sum[b] = fin[b * F + off[3]];
      cnt[b] = fin[b * F + off[0]];
      sq += fin[b * F + off[3] + 1];
      n += cnt[b];
    }
    if (sum && cnt) an_ratio_curve(1, B, sum, cnt, &r->t_freeze, &r->t_freeze_err);
    r->t_freeze_spread = sqrt(fmax(sq / n - r->t_freeze * r->t_freeze, 0));
    free(sum), free(cnt);
  }
  free(fin);
}

/* U-turn curves, straight from the run's results (already with errors). */
static void measure_uturn(hid_t pg, row *r, curve_list *cv) {
  if (H5Lexists(pg, "uturn", H5P_DEFAULT) <= 0) return;
  hsize_t d[3];
  const char *names[7] = {"uturn/T_u", "uturn/c_uturn", "uturn/c_uturn_err",
                          "uturn/c_uturn_ratio", "uturn/c_uturn_ratio_err",
                          "uturn/theory_gaussian", "uturn/theory_gm2"};
  double *v[7];
  int ok = 1;
  long n = -1;
  for (int k = 0; k < 7; k++) {
    v[k] = read_dataset(pg, names[k], 1, SHAPE(n >= 0 ? n : ANY, ANY, ANY),
                        k == 0 ? V_TIMES : k == 2 || k == 4 ? V_NAN | V_NONNEG : V_NAN,
                        d);
    if (!v[k]) ok = 0;
    if (v[k] && n < 0) n = (long)d[0];
    if (v[k] && (long)d[0] != n) ok = 0;
  }
  if (!ok) {
    note(r, "uturn group incomplete: U-turn curves skipped");
  } else {
    for (long i = 0; i < n; i++) {
      double th = !isnan(v[6][i]) ? v[6][i] : v[5][i];
      curve_add(cv, r->index, "c_uturn", v[0][i], v[1][i], v[2][i], NAN);
      curve_add(cv, r->index, "c_uturn_ratio", v[0][i], v[3][i], v[4][i], th);
      curve_add(cv, r->index, "c_uturn_gaussian", v[0][i], v[5][i], NAN, NAN);
    }
  }
  for (int k = 0; k < 7; k++)
    free(v[k]);
}

/* Forward-path correlations for the first reference time. */
static void measure_forward(hid_t pg, row *r, curve_list *cv) {
  if (H5Lexists(pg, "forward", H5P_DEFAULT) <= 0) return;
  hsize_t ds[3], dt[3], dv[3];
  double *s = read_dataset(pg, "forward/reference_time", 1,
                           SHAPE(ANY, ANY, ANY), V_TIMES | V_NONEMPTY, ds);
  double *t = read_dataset(pg, "forward/time", 1, SHAPE(ANY, ANY, ANY),
                           V_TIME_AXIS, dt);
  if (!s || !t) {
    note(r, "forward group incomplete: forward curves skipped");
    free(s), free(t);
    return;
  }
  long n = (long)dt[0];
  static const char *const kind[2] = {"corr_stationary", "corr_data"};
  for (int k = 0; k < 2; k++) {
    char p[3][64];
    snprintf(p[0], 64, "forward/%s", kind[k]);
    snprintf(p[1], 64, "forward/%s_err", kind[k]);
    snprintf(p[2], 64, "forward/%s_theory", kind[k]);
    const long *want = SHAPE((long)ds[0], n, ANY); /* [n_ref][n_out] */
    double *v = read_dataset(pg, p[0], 2, want, V_NAN, dv);
    double *e = read_dataset(pg, p[1], 2, want, V_NAN | V_NONNEG, dv);
    double *th = read_dataset(pg, p[2], 2, want, V_NAN, dv);
    if (v && e && th && (long)dv[1] == n)
      for (long i = 0; i < n; i++) /* row 0: the first reference time */
        if (t[i] >= s[0])
          curve_add(cv, r->index, kind[k], k ? t[i] : t[i] - s[0], v[i], e[i],
                    th[i]);
    free(v), free(e), free(th);
  }
  free(s), free(t);
}

/* Autocorrelation of the sampled trajectories over their uniformly spaced
 * frames at t >= acf_from (where the reverse process is stationary when
 * acf_from is well above t_S), every trajectory and coordinate one series. */
static void measure_acf(hid_t pg, const point_model *pm, const options *o,
                        double T, row *r, curve_list *cv) {
  hsize_t dv[3], dt[3];
  if (H5Lexists(pg, "particles", H5P_DEFAULT) <= 0) return;
  double *x = read_dataset(pg, "particles/trajectory/position/value", 3,
                           SHAPE(ANY, ANY, r->dimension > 0 ? r->dimension : ANY),
                           V_NONEMPTY, dv);
  double *t = read_dataset(pg, "particles/trajectory/position/time", 1,
                           SHAPE(x ? (long)dv[0] : ANY, ANY, ANY), V_TIME_AXIS,
                           dt); /* one time per frame */
  long nf = (long)dv[0], nt = (long)dv[1], d = (long)dv[2];
  double from = isnan(o->acf_from) ? T / 2 : o->acf_from;
  long N = 0;
  if (x && t && nf >= 2) {
    double h = t[0] - t[1];
    while (N < nf && t[N] >= from - 1e-12 &&
           (N == 0 || fabs((t[N - 1] - t[N]) - h) <= 1e-9 * fabs(h)))
      N++;
  }
  if (N < 8) {
    note(r, "acf: fewer than 8 uniform trajectory frames at t >= %g", from);
    free(x), free(t);
    return;
  }
  long m = nt * d;
  double *series = xmalloc((size_t)(m * N) * sizeof *series);
  double *acf = xmalloc((size_t)N * sizeof *acf);
  for (long j = 0; series && acf && j < nt; j++)
    for (long c = 0; c < d; c++)
      for (long f = 0; f < N; f++)
        series[(j * d + c) * N + f] = x[(f * nt + j) * d + c];
  if (series && acf && an_acf_fft(N, m, series, acf) == 0)
    for (long k = 0; k < N / 2; k++) { /* longer lags: too few pairs */
      double tau = t[0] - t[k];
      curve_add(cv, r->index, "acf", tau, acf[k], NAN,
                pm->ok ? stationary_corr(&pm->m, tau) : NAN);
    }
  free(series), free(acf), free(x), free(t);
}

/* ------------------------------------------------------------ one file */

typedef struct {
  long n, cap;
  row *v;
} row_list;

static row *row_new(row_list *rl) {
  if (rl->n == rl->cap) { /* out of memory: NULL, recorded */
    long cap = rl->cap ? 2 * rl->cap : 16;
    row *v = realloc(rl->v, (size_t)cap * sizeof *v);
    if (!v) {
      bad(-1, NULL, "out of memory (%ld rows)", cap);
      return NULL;
    }
    rl->v = v, rl->cap = cap;
  }
  row *r = &rl->v[rl->n++];
  memset(r, 0, sizeof *r);
  double *nanfields[] = {&r->separation, &r->strength, &r->tS, &r->tS_err,
                         &r->tS_theory, &r->tS_clone, &r->tS_clone_err,
                         &r->tS_matrix, &r->tC, &r->tC_err, &r->tC_theory,
                         &r->tC_clone, &r->tC_clone_err, &r->t_freeze,
                         &r->t_freeze_err, &r->t_freeze_spread, &r->tC_fe,
                         &r->tC_fe_err, &r->alpha};
  for (size_t i = 0; i < sizeof nanfields / sizeof *nanfields; i++)
    *nanfields[i] = NAN;
  return r;
}

/* 0: processed (possibly partly); -1: not a usable nrdiff output. */
static int process_file(const char *path, const options *o, row_list *rows,
                        curve_list *cv) {
  if (access(path, R_OK) != 0) {
    warn("%s: %s", path, strerror(errno));
    return -1;
  }
  if (H5Fis_hdf5(path) <= 0) {
    warn("%s: not an HDF5 file", path);
    return -1;
  }
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS); /* closing f closes everything */
  H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  H5Pclose(fapl);
  if (f < 0 || H5Fget_filesize(f, &file_bytes) < 0) {
    warn("%s: cannot open (damaged?)", path);
    if (f >= 0) H5Fclose(f);
    return -1;
  }
  char format[64], sig[64];
  read_attr_string(f, "file_format", format, sizeof format);
  read_attr_string(f, "signature", sig, sizeof sig);
  if (strcmp(format, "nrdiff-output") != 0) {
    if (strcmp(sig, "nrdiff-checkpoint") == 0)
      warn("%s: a checkpoint of an unfinished run, not an output; continue "
           "the run with 'nrdiff --restart' and post-process its output",
           path);
    else
      warn("%s: not an nrdiff output file (no file_format = "
           "\"nrdiff-output\" attribute)",
           path);
    H5Fclose(f);
    return -1;
  }
  long version = 1;
  double wall;
  hid_t code = open_group(f, "code");
  int finished = code >= 0 && attr_double(code, "wall_seconds", V_NONNEG,
                                          &wall) == 0;
  if (code >= 0) H5Gclose(code);
  if (attr_long(f, "file_format_version", 1, 1, &version) < 0 ||
      check_resolved(f) < 0 || file_error[0]) {
    H5Fclose(f);
    return -1;
  }
  nrd_params p;
  memset(&p, 0, sizeof p);
  char err[1024] = "";
  int have_params = load_parameters(f, path, &p, err, sizeof err) == 0;
  if (!have_params)
    warn("%s: parameters unreadable (%s): no theory beside the measurements",
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
    warn("%s: unfinished run (no wall time recorded): using the %llu grid "
         "point(s) present%s",
         path, (unsigned long long)n_groups,
         planned >= 0 ? "" : " (no /grid)");
  else if (planned > (long)n_groups && !quiet)
    warn("%s: %llu of %ld grid points present (a --grid-index run?)", path,
         (unsigned long long)n_groups, planned);
  /* a problem in the file stops it (process_one drops its rows) */
  for (hsize_t k = 0; pts >= 0 && k < n_groups && !file_error[0]; k++) {
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
        file_error[0]) {
      H5Gclose(pg);
      continue;
    }
    if (have_params && idx >= 0 && idx < plan.n_points) {
      pm.ok = model_build(&pm.m, &p, &plan.points[idx], matrix_file_read, err,
                             sizeof err) ==
              NRD_OK;
      if (!pm.ok) note(r, "no theory: %s", err);
    }
    if (pm.ok) {
      theory_times(r, &pm);
    } else { /* the run's own theory value */
      double th = NAN;
      attr_double(pg, "critical_time_theory", V_NAN | V_NONNEG, &th);
      if (r->n_train > 0) r->tC_theory = th;
      else r->tS_theory = th;
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
static int process_one(const char *path, const options *o, row_list *rows,
                       curve_list *cv) {
  long rows0 = rows->n, cv0 = cv->n;
  struct stat st;
  file_error[0] = cur_object[0] = 0;
  point_blocks = point_block_size = 0;
  file_bytes = 0;
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) { /* a FIFO would hang */
    warn("%s: %s, not a run file", path,
         S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
    return -1;
  }
  if (strlen(path) >= sizeof((row *)0)->file) {
    warn("%s: file name longer than %zu bytes", path,
         sizeof((row *)0)->file - 1);
    return -1;
  }
  in_file = 1;
  int rc = process_file(path, o, rows, cv);
  in_file = 0;
  if (rc == 0 && !file_error[0] && rows->n == rows0)
    snprintf(file_error, sizeof file_error,
             "%s: /points: no grid point to post-process", path);
  if (file_error[0]) {
    warn("%s", file_error);
    rc = -1;
  }
  if (rc != 0) rows->n = rows0, cv->n = cv0;
  return rc;
}

/* ------------------------------------------------------------ outputs */

static void csv_number(FILE *f, double v) {
  if (!isnan(v)) fprintf(f, "%.10g", v);
}

static const char *const COLUMNS =
    "grid_index,dimension,separation,strength,n_train,t_S,t_S_err,t_S_theory,"
    "t_C,t_C_err,t_C_theory,t_S_clone,t_S_clone_err,t_S_matrix,t_C_clone,"
    "t_C_clone_err,t_freeze,t_freeze_err,t_freeze_spread,t_C_fe,t_C_fe_err,alpha,"
    "file,notes";

static double *row_values(const row *r, double v[19]) {
  double w[19] = {r->tS,       r->tS_err,       r->tS_theory, r->tC,
                  r->tC_err,   r->tC_theory,    r->tS_clone,  r->tS_clone_err,
                  r->tS_matrix, r->tC_clone,    r->tC_clone_err, r->t_freeze,
                  r->t_freeze_err, r->t_freeze_spread, r->tC_fe,
                  r->tC_fe_err, r->alpha,       0,            0};
  memcpy(v, w, sizeof w);
  return v;
}

/* A CSV field: quoted when it holds a comma or a quote. */
static void csv_text(FILE *f, const char *s) {
  if (!strpbrk(s, ",\"\n")) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

/* The outputs are written as NAME.tmp and renamed into place once all
 * three are complete (publish_outputs): a failure, a full disk, leaves the
 * older outputs as they were and no partial file. */
static const char *const OUTPUTS[3] = {".summary.csv", ".curves.csv",
                                       ".summary.h5"};

static int close_checked(FILE *f, const char *name) {
  int bad = ferror(f);
  if (fclose(f) != 0) bad = 1;
  if (bad) warn("cannot write %s: %s", name, strerror(errno ? errno : EIO));
  return bad ? -1 : 0;
}

static int write_csv(const char *path, const row_list *rows,
                     const curve_list *cv) {
  char name[1100];
  snprintf(name, sizeof name, "%s.summary.csv.tmp", path);
  errno = 0;
  FILE *f = fopen(name, "w");
  if (!f) {
    warn("cannot write %s: %s", name, strerror(errno));
    return -1;
  }
  fprintf(f, "%s\n", COLUMNS);
  for (long i = 0; i < rows->n; i++) {
    const row *r = &rows->v[i];
    double v[19];
    row_values(r, v);
    fprintf(f, "%d,%ld,%.10g,%.10g,%ld", r->index, r->dimension, r->separation,
            r->strength, r->n_train);
    for (int k = 0; k < 17; k++) {
      fputc(',', f);
      csv_number(f, v[k]);
    }
    fputc(',', f);
    csv_text(f, r->file);
    fputc(',', f);
    csv_text(f, r->notes);
    fputc('\n', f);
  }
  if (close_checked(f, name) != 0) return -1;
  snprintf(name, sizeof name, "%s.curves.csv.tmp", path);
  errno = 0;
  f = fopen(name, "w");
  if (!f) {
    warn("cannot write %s: %s", name, strerror(errno));
    return -1;
  }
  fprintf(f, "grid_index,curve,t,value,err,theory,file\n");
  for (long i = 0; i < cv->n; i++) {
    const curve_point *c = &cv->v[i];
    fprintf(f, "%d,%s,", c->index, c->curve);
    csv_number(f, c->t);
    fputc(',', f);
    csv_number(f, c->value);
    fputc(',', f);
    csv_number(f, c->err);
    fputc(',', f);
    csv_number(f, c->theory);
    fputc(',', f);
    csv_text(f, c->file);
    fputc('\n', f);
  }
  return close_checked(f, name);
}

/* Rename the three NAME.tmp into place (ok), or remove them. */
static int publish_outputs(const char *stem, int ok) {
  int rc = ok ? 0 : -1;
  for (int k = 0; k < 3; k++) {
    char tmp[1120], name[1100];
    snprintf(name, sizeof name, "%s%s", stem, OUTPUTS[k]);
    snprintf(tmp, sizeof tmp, "%.1100s.tmp", name);
    if (rc == 0 && rename(tmp, name) != 0) {
      warn("cannot write %s: %s", name, strerror(errno));
      rc = -1;
    }
    if (rc != 0) unlink(tmp);
  }
  return rc;
}

/* Failures of the summary file's HDF5 calls, counted (write_h5 checks). */
static int h5_failures = 0;

static void h5_column(hid_t g, const char *name, hsize_t n, const double *v,
                      const char *description) {
  hid_t s = H5Screate_simple(1, &n, NULL);
  hid_t d = H5Dcreate2(g, name, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT,
                       H5P_DEFAULT);
  if (d < 0 || H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                        v) < 0)
    h5_failures++;
  hid_t ts = H5Screate(H5S_SCALAR), tt = H5Tcopy(H5T_C_S1);
  H5Tset_size(tt, H5T_VARIABLE);
  H5Tset_cset(tt, H5T_CSET_UTF8);
  hid_t a = H5Acreate2(d, "description", tt, ts, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0 || H5Awrite(a, tt, &description) < 0) h5_failures++;
  H5Aclose(a), H5Tclose(tt), H5Sclose(ts), H5Sclose(s), H5Dclose(d);
}

static int write_h5(const char *path, const row_list *rows,
                    const curve_list *cv) {
  char name[1100];
  snprintf(name, sizeof name, "%s.summary.h5.tmp", path);
  h5_failures = 0;
  hid_t f = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) {
    warn("cannot write %s", name);
    return -1;
  }
  static const char *const cols[17] = {
      "t_S",        "t_S_err",        "t_S_theory", "t_C",         "t_C_err",
      "t_C_theory", "t_S_clone",      "t_S_clone_err", "t_S_matrix", "t_C_clone",
      "t_C_clone_err", "t_freeze",    "t_freeze_err", "t_freeze_spread",
      "t_C_fe",     "t_C_fe_err",     "alpha"};
  static const char *const what[17] = {
      "speciation time (headline): the clone-free phi (speciation_phi) crosses "
      "F(1) = 0.7752 [the project's definition]; = the run's "
      "critical_time_measured",
      "jackknife error of t_S",
      "kappa_t = 1 (two symmetric classes), else the matrix criterion",
      "collapse time (headline): mean Y2 crosses 1/2 [I]; = the run's "
      "critical_time_measured",
      "jackknife error of t_C",
      "REM collapse time (alpha = ln n / d, finite-d mixture correction)",
      "speciation time by cloning: phi_clone crosses F(1) between branch "
      "times (the branch times only)",
      "its jackknife error",
      "matrix criterion lambda_max = 1 (physics.md 4.3)",
      "collapse time by cloning: phi_C crosses 1/2 between branch times",
      "its jackknife error",
      "mean nearest-training-point freezing time",
      "its jackknife error",
      "spread of the freezing times over trajectories",
      "zero of the excess entropy: f^e/alpha falls to --fe-level (0.02) [I]",
      "its jackknife error",
      "ln n / d"};
  hsize_t n = (hsize_t)rows->n;
  double *col = xmalloc((size_t)(n ? n : 1) * sizeof *col);
  hid_t g = H5Gcreate2(f, "summary", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  double v[19];
  const char *ids[5] = {"grid_index", "dimension", "separation", "strength",
                        "n_train"};
  for (int k = 0; k < 5; k++) {
    for (hsize_t i = 0; i < n; i++) {
      const row *r = &rows->v[i];
      double x[5] = {r->index, (double)r->dimension, r->separation, r->strength,
                     (double)r->n_train};
      col[i] = x[k];
    }
    h5_column(g, ids[k], n, col, "grid coordinate");
  }
  for (int k = 0; k < 17; k++) {
    for (hsize_t i = 0; i < n; i++)
      col[i] = row_values(&rows->v[i], v)[k];
    h5_column(g, cols[k], n, col, what[k]);
  }
  /* the run file of each row, fixed-length strings */
  size_t w = 1;
  for (hsize_t i = 0; i < n; i++)
    if (strlen(rows->v[i].file) + 1 > w) w = strlen(rows->v[i].file) + 1;
  char *names = xmalloc((size_t)(n ? n : 1) * w);
  for (hsize_t i = 0; i < n; i++)
    memcpy(names + i * w, rows->v[i].file, strlen(rows->v[i].file));
  hid_t st = H5Tcopy(H5T_C_S1);
  H5Tset_size(st, w);
  hid_t ss = H5Screate_simple(1, &n, NULL);
  hid_t fd = H5Dcreate2(g, "file", st, ss, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(fd, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, names);
  H5Dclose(fd), H5Sclose(ss), H5Tclose(st);
  free(names);
  H5Gclose(g);
  /* curves: /curves/<file number>/<IIII>/<curve>/{t, value, err, theory} */
  hid_t cg = H5Gcreate2(f, "curves", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  for (long i = 0; i < cv->n;) {
    const curve_point *c0 = &cv->v[i];
    long j = i;
    while (j < cv->n && cv->v[j].file_index == c0->file_index &&
           cv->v[j].index == c0->index && !strcmp(cv->v[j].curve, c0->curve))
      j++;
    char gname[96];
    snprintf(gname, sizeof gname, "%d/%04d/%s", c0->file_index, c0->index,
             c0->curve);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t c = H5Lexists(cg, gname, H5P_DEFAULT) > 0
                  ? -1
                  : H5Gcreate2(cg, gname, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lcpl);
    if (c >= 0) {
      double *buf = xmalloc((size_t)(j - i) * sizeof *buf);
      const char *fields[4] = {"t", "value", "err", "theory"};
      for (int k = 0; k < 4; k++) {
        for (long q = i; q < j; q++) {
          const curve_point *p = &cv->v[q];
          buf[q - i] = k == 0 ? p->t : k == 1 ? p->value : k == 2 ? p->err : p->theory;
        }
        h5_column(c, fields[k], (hsize_t)(j - i), buf, fields[k]);
      }
      free(buf);
      H5Gclose(c);
    }
    i = j;
  }
  H5Gclose(cg);
  free(col);
  if (H5Fclose(f) < 0 || h5_failures) {
    warn("cannot write %s (HDF5 failed to write it: disk full?)", name);
    return -1;
  }
  return 0;
}

/* An estimate in a 17-wide column: "-" where it was not measured (no data,
 * or the protocol did not run), "not reached" where its curve never reaches
 * the level, the value alone where it has no error. */
static void print_value(int measured, double v, double e) {
  if (!measured)
    printf(" %17s", "-");
  else if (isnan(v))
    printf(" %17s", "not reached");
  else if (isnan(e))
    printf(" %9.4f        ", v);
  else
    printf(" %9.4f+-%-6.4f", v, e);
}

static void print_theory(double v) {
  if (isnan(v))
    printf(" %9s", "-");
  else
    printf(" %9.4f", v);
}

static void print_table(const row_list *rows) {
  printf("%5s %6s %6s %6s %6s %17s %17s %9s %17s %17s %9s  %s\n", "index", "d",
         "sep", "g", "n", "t_S", "t_S_clone", "theory", "t_C", "t_C_clone",
         "theory", "notes");
  for (long i = 0; i < rows->n; i++) {
    const row *r = &rows->v[i];
    printf("%5d %6ld %6.3g %6.3g %6ld", r->index, r->dimension, r->separation,
           r->strength, r->n_train);
    print_value(r->free_S, r->tS, r->tS_err);
    print_value(r->cloned_S, r->tS_clone, r->tS_clone_err);
    print_theory(r->tS_theory);
    print_value(r->free_C, r->tC, r->tC_err);
    print_value(r->cloned_C, r->tC_clone, r->tC_clone_err);
    print_theory(r->tC_theory);
    printf("  %s\n", r->notes);
  }
  printf("t_S: the clone-free phi crosses F(1) = 0.7752 (monotone interpolation, "
         "jackknife error over blocks;\n     = the run's "
         "critical_time_measured); t_S_clone: phi by cloning, between branch "
         "times only;\n     theory kappa_t = 1 / matrix criterion.\n"
         "t_C: mean Y2 crosses 1/2 [I]; t_C_clone: phi_C by cloning; theory: "
         "the REM collapse time (n, d -> infinity).\n"
         "-: not measured; not reached: the curve never reaches its level in "
         "the measured times.\n");
}

/* The figures: postprocess/nrdiff_plots.py under Debian's python3. */
static int plot(const char *prefix) {
  const char *env = getenv("NRDIFF_PLOTS");
  char script[1200];
  const char *cands[3] = {env, NRD_PKGDATADIR "/nrdiff_plots.py",
                          NRD_SRCDIR "/postprocess/nrdiff_plots.py"};
  script[0] = 0;
  for (int k = 0; k < 3 && !script[0]; k++)
    if (cands[k] && access(cands[k], R_OK) == 0)
      snprintf(script, sizeof script, "%s", cands[k]);
  if (!script[0]) {
    warn("--plot: nrdiff_plots.py not found (set NRDIFF_PLOTS)");
    return -1;
  }
  /* run directly, not through a shell: any file name is only a name */
  char summary[1100], curves[1100];
  snprintf(summary, sizeof summary, "%s.summary.csv", prefix);
  snprintf(curves, sizeof curves, "%s.curves.csv", prefix);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    execl("/usr/bin/python3", "python3", script, summary, curves, "--out",
          prefix, (char *)NULL);
    fprintf(stderr, "nrdiff-post: --plot: /usr/bin/python3: %s\n",
            strerror(errno));
    _exit(127);
  }
  int status = 0;
  while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  int rc = pid < 0                ? -1
           : WIFEXITED(status)   ? WEXITSTATUS(status)
                                 : 128 + WTERMSIG(status);
  if (rc != 0) warn("--plot: the figure script failed (exit %d)", rc);
  return rc == 0 ? 0 : -1;
}

/* The figures postprocess/nrdiff_plots.py draws (its FIGURES). */
static const char *const FIGURE_NAMES[5] = {"phi", "fe", "phase", "uturn",
                                            "acf"};

/* Directory (stat) and base name of a path. */
static int split_path(const char *path, struct stat *dir, const char **base) {
  const char *slash = strrchr(path, '/');
  char d[1100];
  *base = slash ? slash + 1 : path;
  snprintf(d, sizeof d, "%.*s", slash ? (int)(slash - path) + 1 : 1,
           slash ? path : ".");
  return stat(d, dir);
}

/* 0, or -1 (with a message) when an output of prefix stem would overwrite
 * an input file: the same file (device and inode: the same path, hard or
 * symbolic links) as PREFIX.summary.csv, PREFIX.curves.csv,
 * PREFIX.summary.h5 or, with --plot, a figure; or, with --plot, an input
 * named like a figure, PREFIX.*.png, in the output directory. */
static int outputs_clobber_inputs(const char *stem, int with_plot,
                                  char **files, int n_files) {
  char out[8][1100];
  int n_out = 0;
  static const char *const data[3] = {"summary.csv", "curves.csv",
                                      "summary.h5"};
  for (int k = 0; k < 3; k++)
    snprintf(out[n_out++], sizeof out[0], "%s.%s", stem, data[k]);
  for (int k = 0; with_plot && k < 5; k++)
    snprintf(out[n_out++], sizeof out[0], "%s.%s.png", stem, FIGURE_NAMES[k]);
  struct stat sd, si, so;
  const char *stem_base, *in_base;
  int have_dir = split_path(stem, &sd, &stem_base) == 0;
  size_t nb = strlen(stem_base);
  for (int i = 0; i < n_files; i++) {
    if (stat(files[i], &si) != 0) continue; /* absent: nothing to lose */
    for (int k = 0; k < n_out; k++)
      if (stat(out[k], &so) == 0 && so.st_dev == si.st_dev &&
          so.st_ino == si.st_ino) {
        warn("%s would overwrite the input %s%s: choose another -o PREFIX",
             out[k], files[i], strcmp(out[k], files[i]) ? " (the same file)" : "");
        return -1;
      }
    struct stat di;
    size_t ni;
    if (with_plot && have_dir && split_path(files[i], &di, &in_base) == 0 &&
        di.st_dev == sd.st_dev && di.st_ino == sd.st_ino &&
        (ni = strlen(in_base)) > nb + 5 && !strncmp(in_base, stem_base, nb) &&
        in_base[nb] == '.' && !strcmp(in_base + ni - 4, ".png")) {
      warn("the input %s is named like a figure of --plot (%s.*.png): choose "
           "another -o PREFIX",
           files[i], stem);
      return -1;
    }
  }
  return 0;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: nrdiff-post [options] RUN.h5 [more run files]\n"
          "  -o, --output PREFIX  write PREFIX.summary.{h5,csv} and "
          "PREFIX.curves.csv\n"
          "                       (default: the first file without .h5)\n"
          "      --plot           also draw the figures (PREFIX.*.png; Debian "
          "python3-matplotlib)\n"
          "      --acf-from T     trajectory frames at t >= T enter the "
          "autocorrelation\n"
          "                       (default time.T / 2)\n"
          "      --fe-level X     the zero of f^e is where f^e/alpha falls to "
          "X (default 0.02)\n"
          "  -q, --quiet          no table on stdout\n"
          "  -V, --version        versions\n"
          "  -h, --help           this help\n"
          "Exit status: 0 done; 2 bad usage or an input file that is not a "
          "usable nrdiff\noutput (the others are still processed); 1 cannot "
          "write the results.\n");
}

/* main, with room for the file names (freed on every return). */
static int post_main(int argc, char **argv, char **files) {
  options o = {.acf_from = NAN, .fe_level = 0.02};
  const char *prefix = NULL;
  int want_plot = 0, n_files = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
      printf("nrdiff-post %s (%s)\n", version_nrdiff(), version_git());
      return 0;
    } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
      quiet = 1;
    } else if (!strcmp(a, "--plot")) {
      want_plot = 1;
    } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc) {
      prefix = argv[++i];
    } else if ((!strcmp(a, "--acf-from") || !strcmp(a, "--fe-level")) &&
               i + 1 < argc) {
      char *end;
      double v = strtod(argv[++i], &end);
      if (*end || end == argv[i] || !isfinite(v)) {
        warn("%s: not a number: '%s'", a, argv[i]);
        return 2;
      }
      *(a[2] == 'a' ? &o.acf_from : &o.fe_level) = v;
    } else if (a[0] == '-' && a[1]) {
      warn("unknown option '%s' (or missing value)", a);
      usage(stderr);
      return 2;
    } else {
      files[n_files++] = argv[i];
    }
  }
  if (n_files == 0) {
    warn("no run file given");
    usage(stderr);
    return 2;
  }
  char stem[1024];
  if (strlen(prefix ? prefix : files[0]) >= sizeof stem) {
    warn("%s: too long for an output prefix", prefix ? prefix : files[0]);
    return 2;
  }
  if (prefix) {
    snprintf(stem, sizeof stem, "%s", prefix);
  } else {
    snprintf(stem, sizeof stem, "%s", files[0]);
    size_t n = strlen(stem);
    if (n > 3 && !strcmp(stem + n - 3, ".h5")) stem[n - 3] = 0;
  }
  if (outputs_clobber_inputs(stem, want_plot, files, n_files) != 0) return 2;
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our messages, not HDF5's stack */
  row_list rows = {0};
  curve_list cv = {0};
  int bad = 0;
  for (int i = 0; i < n_files; i++) {
    current_file = files[i];
    current_file_index = i;
    if (process_one(files[i], &o, &rows, &cv) != 0) bad = 1;
  }
  if (rows.n == 0) { /* every file refused: nothing written */
    warn("no grid point to post-process");
    free(rows.v), free(cv.v);
    return 2;
  }
  if (!quiet) print_table(&rows);
  int rc = write_csv(stem, &rows, &cv) || write_h5(stem, &rows, &cv);
  rc = publish_outputs(stem, !rc) != 0;
  if (!rc && !quiet)
    printf("wrote %s.summary.csv, %s.curves.csv, %s.summary.h5\n", stem, stem,
           stem);
  if (!rc && want_plot && plot(stem) != 0) rc = 1;
  free(rows.v);
  free(cv.v);
  return rc ? 1 : bad ? 2 : 0;
}

int main(int argc, char **argv) {
  char **files = xmalloc((size_t)argc * sizeof *files);
  int rc = post_main(argc, argv, files);
  free(files);
  return rc;
}
