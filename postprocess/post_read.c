/* nrdiff-post's reading layer: every dataset and attribute
 * post-processing uses is read here and validated before use
 * (doc/file-format.md): its type, rank and shape (the shape against the
 * data it labels or indexes), a size the file can hold, its values (no
 * infinity anywhere; NaN only where the format allows it; counts > 0,
 * times >= 0 and time axes strictly decreasing).  Absent is not an error
 * (NULL / 1: what needs it is skipped and the notes say so); anything else
 * wrong is recorded by refuse() and the file is refused. */
#include "config.h"

#include "post.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

post_input post_in = {.path = ""};

void *file_calloc(size_t n, size_t size) {
  assert(post_in.reading); /* elsewhere: NRD_XCALLOC */
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p && size && n > SIZE_MAX / size)
    refuse(-1, NULL, "out of memory (%zu x %zu bytes)", n, size);
  else if (!p)
    refuse(-1, NULL, "out of memory (%zu bytes)", n * size);
  return p;
}

/* Record the file's first problem: OBJECT is loc's path, then name. */
void refuse(hid_t loc, const char *name, const char *fmt, ...) {
  if (post_in.error[0]) return; /* later problems may follow from the first */
  char obj[512] = "";
  if (loc >= 0 && H5Iget_name(loc, obj, sizeof obj) < 0) obj[0] = 0;
  if (loc < 0)
    snprintf(obj, sizeof obj, "%s", post_in.object[0] ? post_in.object : "/");
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
  snprintf(post_in.error, sizeof post_in.error, "%s: %s: %s", post_in.path,
           obj[0] ? obj : "/", what);
}

/* A shape "[2, 3]" (want: ANY = any length, shown as *). */
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

/* An HDF5 type class in words, for messages. */
const char *class_text(H5T_class_t c) {
  return c == H5T_INTEGER    ? "integer"
         : c == H5T_FLOAT    ? "floating-point"
         : c == H5T_STRING   ? "string"
         : c == H5T_COMPOUND ? "compound"
         : c == H5T_ENUM     ? "enum"
         : c == H5T_ARRAY    ? "array"
         : c == H5T_VLEN     ? "variable-length"
                             : "non-numeric";
}

/* What path (relative to loc) is: 1 the object wanted (H5O_TYPE_GROUP or
 * H5O_TYPE_DATASET), 0 absent, -1 something else (recorded): every
 * component but the last a group, no external link (it would read another
 * file; nrdiff writes none), no dangling soft link. */
int object_kind(hid_t loc, const char *path, H5O_type_t want) {
  char buf[512];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
    refuse(loc, NULL, "object name too long");
    return -1;
  }
  for (char *end = buf;; end++) {
    if (*end != '/' && *end) continue;
    char c = *end;
    *end = 0;
    int last = c == 0;
    htri_t e = H5Lexists(loc, buf, H5P_DEFAULT);
    if (e < 0) {
      refuse(loc, buf, "cannot be looked up (damaged file?)");
      return -1;
    }
    if (e == 0) return 0;
    H5L_info_t li;
    if (H5Lget_info(loc, buf, &li, H5P_DEFAULT) < 0) {
      refuse(loc, buf, "cannot be looked up (damaged file?)");
      return -1;
    }
    if (li.type != H5L_TYPE_HARD && li.type != H5L_TYPE_SOFT) {
      refuse(loc, buf,
             "an external link (to another file): nrdiff writes none");
      return -1;
    }
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t oi;
    herr_t rc =
        H5Oget_info_by_name3(loc, buf, &oi, H5O_INFO_BASIC, H5P_DEFAULT);
#else
    H5O_info_t oi;
    herr_t rc =
        H5Oget_info_by_name2(loc, buf, &oi, H5O_INFO_BASIC, H5P_DEFAULT);
#endif
    if (rc < 0) {
      refuse(loc, buf, "%s",
             li.type == H5L_TYPE_SOFT ? "a soft link to nothing"
                                      : "cannot be opened (damaged file?)");
      return -1;
    }
    H5O_type_t need = last ? want : H5O_TYPE_GROUP;
    if (oi.type != need) {
      refuse(loc, buf, "%s, expected a %s",
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
 * recorded; tell them apart by post_in.error). */
hid_t open_group(hid_t loc, const char *path) {
  if (object_kind(loc, path, H5O_TYPE_GROUP) <= 0) return -1;
  hid_t g = H5Gopen2(loc, path, H5P_DEFAULT);
  if (g < 0) refuse(loc, path, "cannot be opened (damaged file?)");
  return g;
}

/* A floating-point dataset of exactly `rank` axes (1 .. 3) whose axis k
 * has length want[k] (ANY: any), with the values `flags` allow (infinity
 * never).  Returns its values as doubles, dims the shape (missing trailing
 * axes 1), or NULL: absent (no error), or wrong (error recorded). */
double *read_dataset(hid_t loc, const char *path, int rank, const long want[3],
                     int flags, hsize_t dims[3]) {
  dims[0] = dims[1] = dims[2] = 1;
  if (object_kind(loc, path, H5O_TYPE_DATASET) <= 0) return NULL;
  hid_t d = H5Dopen2(loc, path, H5P_DEFAULT);
  if (d < 0) {
    refuse(loc, path, "cannot be opened (damaged file?)");
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
    refuse(loc, path, "cannot be read (damaged file?)");
    goto done;
  }
  if (sc != H5S_SIMPLE || r != rank) {
    refuse(loc, path, "%s, expected %d ax%s %s",
           sc == H5S_NULL ? "no data (a null dataspace)"
           : sc == H5S_SCALAR
               ? "a scalar"
               : (snprintf(got, sizeof got, "%d ax%s", r, r == 1 ? "is" : "es"),
                  got),
           rank, rank == 1 ? "is" : "es",
           shape_text(exp, sizeof exp, rank, NULL, want));
    goto done;
  }
  H5Sget_simple_extent_dims(s, dd, NULL);
  for (int k = 0; k < rank; k++)
    if ((want && want[k] != ANY && dd[k] != (hsize_t)want[k]) ||
        ((flags & V_NONEMPTY) && dd[k] == 0)) {
      refuse(loc, path, "shape %s, expected %s%s",
             shape_text(got, sizeof got, rank, dd, NULL),
             shape_text(exp, sizeof exp, rank, NULL,
                        want ? want : SHAPE(ANY, ANY, ANY)),
             (flags & V_NONEMPTY) && dd[k] == 0 ? " and not empty" : "");
      goto done;
    }
  if (tc != H5T_FLOAT) {
    refuse(loc, path, "%s data, expected floating point", class_text(tc));
    goto done;
  }
  if (layout != H5D_COMPACT && layout != H5D_CONTIGUOUS &&
      layout != H5D_CHUNKED) {
    refuse(loc, path,
           "a virtual or unknown storage layout: nrdiff writes none");
    goto done;
  }
  if (H5Pget_external_count(pl) != 0) {
    refuse(loc, path, "stored in an external raw file: nrdiff writes none");
    goto done;
  }
  /* the number of values, overflow-checked, and a size the file can hold
   * (compressed: deflate's 1032:1 at most) */
  size_t n = 1, tsize = H5Tget_size(t);
  int filters = H5Pget_nfilters(pl);
  for (int k = 0; k < rank; k++) {
    if (dd[k] && n > SIZE_MAX / sizeof(double) / dd[k]) {
      refuse(loc, path, "shape %s: more values than can be addressed",
             shape_text(got, sizeof got, rank, dd, NULL));
      goto done;
    }
    n *= (size_t)dd[k];
  }
  double limit = (double)post_in.bytes * (filters > 0 ? 1032.0 : 1.0);
  if ((double)n * (double)tsize > limit) {
    refuse(loc, path,
           "shape %s: %.4g bytes, more than the file (%llu bytes) "
           "can hold",
           shape_text(got, sizeof got, rank, dd, NULL),
           (double)n * (double)tsize, (unsigned long long)post_in.bytes);
    goto done;
  }
  v = calloc(n ? n : 1, sizeof *v);
  if (!v) {
    refuse(loc, path, "out of memory for %zu values", n);
    goto done;
  }
  if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
    refuse(loc, path, "cannot be read (damaged file?)");
    free(v);
    v = NULL;
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    double x = v[i];
    const char *wrong = isinf(x)                         ? "infinite"
                        : isnan(x) && !(flags & V_NAN)   ? "NaN"
                        : (flags & V_NONNEG) && x < 0    ? "negative"
                        : (flags & V_POSITIVE) && x <= 0 ? "not > 0"
                        : (flags & V_FALLING) && i && !(x < v[i - 1])
                            ? "not below the value before it (a time axis "
                              "falls strictly)"
                            : NULL;
    if (!wrong) continue;
    hsize_t at[3] = {i, 0, 0};
    if (rank == 2) at[0] = i / dd[1], at[1] = i % dd[1];
    if (rank == 3)
      at[0] = i / (dd[1] * dd[2]), at[1] = i / dd[2] % dd[1], at[2] = i % dd[2];
    refuse(loc, path, "value %g at %s: %s", x,
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
    refuse(obj, NULL, "attribute %s cannot be looked up (damaged file?)", name);
    return -1;
  }
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t s = a >= 0 ? H5Aget_space(a) : -1, t = a >= 0 ? H5Aget_type(a) : -1;
  H5T_class_t want = H5Tget_class(type),
              got = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
  hssize_t np = s >= 0 && H5Sget_simple_extent_type(s) != H5S_NULL
                    ? H5Sget_simple_extent_npoints(s)
                    : 0;
  union {
    long l;
    double d;
  } x;
  int rc = -1;
  if (a < 0 || s < 0 || t < 0)
    refuse(obj, NULL, "attribute %s cannot be read (damaged file?)", name);
  else if (np != 1)
    refuse(obj, NULL, "attribute %s holds %lld values, expected one", name,
           (long long)np);
  else if (got != want)
    refuse(obj, NULL, "attribute %s is %s, expected %s", name, class_text(got),
           want == H5T_INTEGER ? "an integer" : "a floating-point number");
  else if (H5Tget_size(type) != sizeof x.l || H5Aread(a, type, &x) < 0)
    refuse(obj, NULL, "attribute %s cannot be read (damaged file?)", name);
  else if (want == H5T_FLOAT && isinf(x.d))
    refuse(obj, NULL, "attribute %s is infinite", name);
  else
    rc = 0;
  if (rc == 0) memcpy(v, &x, sizeof x.l);
  if (t >= 0) H5Tclose(t);
  if (s >= 0) H5Sclose(s);
  if (a >= 0) H5Aclose(a);
  return rc;
}

/* An integer attribute in [lo, hi] (0; 1 absent; -1 wrong, recorded). */
int attr_long(hid_t obj, const char *name, long lo, long hi, long *v) {
  long x = 0;
  int rc = read_attr(obj, name, H5T_NATIVE_LONG, &x);
  if (rc == 0 && (x < lo || x > hi)) {
    if (lo == hi)
      refuse(obj, NULL, "attribute %s = %ld, expected %ld", name, x, lo);
    else
      refuse(obj, NULL, "attribute %s = %ld, expected %ld .. %ld", name, x, lo,
             hi);
    rc = -1;
  }
  if (rc == 0) *v = x;
  return rc;
}

/* A floating-point attribute, finite or as flags (V_NAN, V_NONNEG) allow. */
int attr_double(hid_t obj, const char *name, int flags, double *v) {
  double x = 0;
  int rc = read_attr(obj, name, H5T_NATIVE_DOUBLE, &x);
  if (rc == 0 &&
      ((isnan(x) && !(flags & V_NAN)) || ((flags & V_NONNEG) && x < 0))) {
    refuse(obj, NULL, "attribute %s = %g, expected a %snumber%s", name, x,
           flags & V_NONNEG ? "non-negative " : "finite ",
           flags & V_NAN ? " or NaN" : "");
    rc = -1;
  }
  if (rc == 0) *v = x;
  return rc;
}

/* A variable-length string attribute of one value into buf ("" if absent
 * or anything else: the identification attributes, checked by value). */
void read_attr_string(hid_t obj, const char *name, char *buf, size_t len) {
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
