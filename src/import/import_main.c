/* nrdiff-import: a user's data set (IDX files as MNIST's, or NumPy .npy;
 * gzipped or not) to nrdiff's data file (layout: data_write.h,
 * doc/data-files.md).  Here: the command line, the checks that make a
 * data array and a labels array out of what the readers return, and the
 * exit status (0 written, 2 usage or bad input, 1 an I/O failure). */
#define _XOPEN_SOURCE 700 /* lstat */
#include "config.h"

#include "import/data_write.h"
#include "import/source.h"

#include "util/cli.h"
#include "util/version.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { OPT_OUTPUT = 1, OPT_LIMIT };

static const nrd_cli_option cli_options[] = {
    {"output", 'o', "FILE",
     "write FILE (default: in the current directory, the base\n"
     "name of DATA_FILE less .gz, then less .npy, .idx or\n"
     "-idxN-TYPE, plus .h5)",
     OPT_OUTPUT},
    {"limit", 0, "N", "import only the first N points (and labels)", OPT_LIMIT},
    NRD_CLI_LAST_OPTIONS("the version")};

static void usage(FILE *f) {
  fputs("usage: nrdiff-import [options] DATA_FILE [LABELS_FILE]\n"
        "Writes DATA_FILE's points (and LABELS_FILE's labels) as an nrdiff "
        "data file.\nFormats, found from the content, gzipped or not: IDX "
        "(MNIST) and NumPy .npy.\n",
        f);
  nrd_cli_print_help(f, cli_options);
  fputs("An existing output file is never replaced.\nExit status: 0 written;"
        " 2 bad usage, a bad input file or an existing output;\n1 cannot "
        "read or write (disk full, ...).\n",
        f);
}

static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("nrdiff-import: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return IMP_BAD;
}

static int ends_with(const char *s, size_t n, const char *end) {
  size_t k = strlen(end);
  return n >= k && !memcmp(s + n - k, end, k);
}

/* The default output name: DATA_FILE's base name without .gz, then
 * without .npy, .idx or a -idxN-TYPE / .idxN-TYPE ending (MNIST's
 * "train-images-idx3-ubyte"), and with .h5. */
static void default_output(const char *path, char *buf, size_t len) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  size_t n = strlen(base);
  if (ends_with(base, n, ".gz")) n -= 3;
  if (ends_with(base, n, ".npy") || ends_with(base, n, ".idx")) {
    n -= 4;
  } else {
    for (size_t i = n; i-- > 0;) { /* the last [-.]idxN-word */
      if ((base[i] != '-' && base[i] != '.') || n - i < 6 ||
          memcmp(base + i + 1, "idx", 3) || base[i + 4] < '0' ||
          base[i + 4] > '9' || base[i + 5] != '-' ||
          memchr(base + i + 6, '.', n - i - 6))
        continue;
      n = i;
      break;
    }
  }
  if (n == 0)
    snprintf(buf, len, "data.h5");
  else
    snprintf(buf, len, "%.*s.h5", (int)n, base);
}

/* The points: one per row (at least 2 dims), an element type the layout
 * has, and integers float64 holds exactly. */
static int check_data(const char *path, const imp_array *a) {
  if (a->ndim == 0)
    return imp_error(path, IMP_BAD,
                     "a single number: needs one point per row (n x d)");
  if (a->ndim == 1)
    return imp_error(path, IMP_BAD,
                     "1-D data (%llu values): needs one point per row (n x "
                     "d, or n x h x w for images); labels are the second file",
                     (unsigned long long)a->file_rows);
  if (data_out_type(a->kind) == OUT_NONE)
    return imp_error(path, IMP_BAD,
                     "element type %s (%s) is not supported for data: "
                     "float64 cannot hold every one exactly; save int64 or "
                     "float64",
                     a->dtype, imp_kind_name(a->kind));
  if (a->kind.size == 8 && a->kind.cls != IMP_FLOAT) {
    const int64_t big = (int64_t)1 << 53; /* float64's exact integers */
    uint64_t n = a->nbytes / 8, d = imp_row_size(a);
    for (uint64_t i = 0; i < n; i++) {
      int64_t v = imp_int_at(a, i);
      if (v > big || v < -big)
        return imp_error(path, IMP_BAD,
                         "value %lld (point %llu, element %llu) is beyond "
                         "2^53: float64 cannot hold it exactly",
                         (long long)v, (unsigned long long)(i / d),
                         (unsigned long long)(i % d));
    }
  }
  return IMP_OK;
}

/* The labels: one integer per point of the data file, as int32. */
static int make_labels(const char *path, const imp_array *l,
                       const char *data_path, const imp_array *a,
                       int32_t **out) {
  char shape[128];
  imp_shape_text(l, 0, shape, sizeof shape);
  if (l->ndim != 1)
    return imp_error(path, IMP_BAD,
                     "labels must be 1-D, one per point; this is %s%s",
                     l->ndim ? shape : "a single number",
                     l->ndim ? " (the data is the first file)" : "");
  if (l->kind.cls == IMP_FLOAT)
    return imp_error(path, IMP_BAD, "labels must be integers; these are %s",
                     imp_kind_name(l->kind));
  if (l->file_rows != a->file_rows)
    return imp_error(path, IMP_BAD, "%llu labels for the %llu points of %s",
                     (unsigned long long)l->file_rows,
                     (unsigned long long)a->file_rows, data_path);
  uint64_t n = l->dims[0];
  int32_t *v = malloc(n * sizeof *v);
  if (!v) return imp_error(path, IMP_IO, "out of memory");
  for (uint64_t i = 0; i < n; i++) {
    int64_t x = imp_int_at(l, i);
    if (x < INT32_MIN || x > INT32_MAX) {
      free(v);
      return imp_error(path, IMP_BAD,
                       "label %lld (point %llu) is not an "
                       "int32",
                       (long long)x, (unsigned long long)i);
    }
    v[i] = (int32_t)x;
  }
  *out = v;
  return IMP_OK;
}

static int cmp_int32(const void *x, const void *y) {
  int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
  return (a > b) - (a < b);
}

/* ", labels MIN..MAX (K classes)" */
static void labels_text(const int32_t *v, uint64_t n, char *buf, size_t len) {
  int32_t *s = malloc(n * sizeof *s);
  if (!s) {
    snprintf(buf, len, ", %llu labels", (unsigned long long)n);
    return;
  }
  memcpy(s, v, n * sizeof *s);
  qsort(s, n, sizeof *s, cmp_int32);
  uint64_t k = 1;
  for (uint64_t i = 1; i < n; i++)
    k += s[i] != s[i - 1];
  snprintf(buf, len, ", labels %ld..%ld (%llu classes)", (long)s[0],
           (long)s[n - 1], (unsigned long long)k);
  free(s);
}

int main(int argc, char **argv) {
  const char *out = NULL;
  uint64_t limit = 0;
  nrd_cli cli;
  nrd_cli_begin(&cli, cli_options, argc, argv);
  for (int id; (id = nrd_cli_next(&cli)) != NRD_CLI_END;) {
    long v;
    switch (id) {
    case NRD_CLI_ERROR:
      return usage_error("%s", cli.error);
    case NRD_CLI_HELP:
      usage(stdout);
      return 0;
    case NRD_CLI_VERSION:
      printf("nrdiff-import %s (%s)\n", version_nrdiff(), version_git());
      return 0;
    case OPT_OUTPUT:
      out = cli.value;
      break;
    case OPT_LIMIT:
      if (nrd_cli_long(cli.value, &v) != 0 || v < 1)
        return usage_error("--limit needs a number of points >= 1, got '%s'",
                           cli.value);
      limit = (uint64_t)v;
      break;
    }
  }
  int n_files = argc - cli.first_operand;
  if (n_files == 0) return usage_error("no data file given (see --help)");
  if (n_files > 2)
    return usage_error("%d files given: DATA_FILE and at most LABELS_FILE "
                       "(see --help)",
                       n_files);
  const char *data_path = argv[cli.first_operand];
  const char *labels_path = n_files == 2 ? argv[cli.first_operand + 1] : NULL;
  char name[4096];
  if (!out) {
    default_output(data_path, name, sizeof name);
    out = name;
  }
  if (!*out) return usage_error("--output: an empty file name");
  struct stat st;
  if (lstat(out, &st) == 0) /* before reading: data_write checks again */
    return imp_error(out, IMP_BAD,
                     "exists; remove it or choose another --output");

  imp_array a, l = {0};
  int32_t *labels = NULL;
  int rc = imp_read_file(data_path, limit, &a);
  if (rc) return rc;
  rc = check_data(data_path, &a);
  if (!rc && labels_path) {
    rc = imp_read_file(labels_path, limit, &l);
    if (!rc) rc = make_labels(labels_path, &l, data_path, &a, &labels);
    imp_array_free(&l);
  }
  char creator[256];
  snprintf(creator, sizeof creator, "nrdiff-import %s (%s)", version_nrdiff(),
           version_git());
  data_file f = {out, &a, data_path, labels, labels_path, creator};
  if (!rc) rc = data_write(&f);
  if (!rc) {
    char shape[128] = "", lab[128] = ", no labels", of[64] = "";
    out_type t = data_out_type(a.kind);
    if (a.ndim > 2) {
      imp_shape_text(&a, 1, shape, sizeof shape);
      strcat(shape, ", ");
    }
    if (a.dims[0] < a.file_rows)
      snprintf(of, sizeof of, "the first %llu of ",
               (unsigned long long)a.dims[0]);
    if (labels) labels_text(labels, a.dims[0], lab, sizeof lab);
    printf("nrdiff-import: wrote %s: %s%llu points of dimension %llu (%s%s%s"
           "%s)%s\n",
           out, of, (unsigned long long)a.file_rows,
           (unsigned long long)imp_row_size(&a), shape, data_out_name(t),
           t == OUT_F64 && a.kind.cls != IMP_FLOAT ? " from " : "",
           t == OUT_F64 && a.kind.cls != IMP_FLOAT ? imp_kind_name(a.kind) : "",
           lab);
  }
  free(labels);
  imp_array_free(&a);
  return rc;
}
