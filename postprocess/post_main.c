/* nrdiff-post: the command line, the loop over the run files and the exit
 * status (the stage as a whole: postprocess/post.h). */
#define _POSIX_C_SOURCE 200809L /* stat, access, fork, ssize_t */
#include "config.h"

#include "post.h"

#include "util/version.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void post_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "nrdiff-post: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
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
      o.quiet = 1;
    } else if (!strcmp(a, "--plot")) {
      want_plot = 1;
    } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc) {
      prefix = argv[++i];
    } else if ((!strcmp(a, "--acf-from") || !strcmp(a, "--fe-level")) &&
               i + 1 < argc) {
      char *end;
      double v = strtod(argv[++i], &end);
      if (*end || end == argv[i] || !isfinite(v)) {
        post_warn("%s: not a number: '%s'", a, argv[i]);
        return 2;
      }
      *(a[2] == 'a' ? &o.acf_from : &o.fe_level) = v;
    } else if (a[0] == '-' && a[1]) {
      post_warn("unknown option '%s' (or missing value)", a);
      usage(stderr);
      return 2;
    } else {
      files[n_files++] = argv[i];
    }
  }
  if (n_files == 0) {
    post_warn("no run file given");
    usage(stderr);
    return 2;
  }
  char stem[1024];
  if (strlen(prefix ? prefix : files[0]) >= sizeof stem) {
    post_warn("%s: too long for an output prefix", prefix ? prefix : files[0]);
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
    if (process_one(files[i], i, &o, &rows, &cv) != 0) bad = 1;
  }
  if (rows.n == 0) { /* every file refused: nothing written */
    post_warn("no grid point to post-process");
    free(rows.v), free(cv.v);
    return 2;
  }
  if (!o.quiet) print_table(&rows);
  int rc = write_csv(stem, &rows, &cv) || write_h5(stem, &rows, &cv);
  rc = publish_outputs(stem, !rc) != 0;
  if (!rc && !o.quiet)
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
