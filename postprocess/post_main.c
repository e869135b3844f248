/* nrdiff-post: the command line, the loop over the run files and the exit
 * status (the stage as a whole: postprocess/post.h). */
#include "config.h"

#include "post.h"

#include "util/cli.h"
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

enum { OPT_OUTPUT = 1, OPT_PLOT, OPT_ACF_FROM, OPT_FE_LEVEL, OPT_QUIET };

/* nrdiff-post's options, in the order of --help. */
static const nrd_cli_option cli_options[] = {
    {"output", 'o', "PREFIX",
     "write PREFIX.summary.{h5,csv} and PREFIX.curves.csv\n"
     "(default: the first file without .h5)",
     OPT_OUTPUT},
    {"plot", 0, NULL,
     "also draw the figures (PREFIX.*.png; Debian python3-matplotlib)",
     OPT_PLOT},
    {"acf-from", 0, "T",
     "trajectory frames at t >= T enter the autocorrelation\n"
     "(default time.T / 2)",
     OPT_ACF_FROM},
    {"fe-level", 0, "X",
     "the zero of f^e is where f^e/alpha falls to X (default 0.02)",
     OPT_FE_LEVEL},
    {"quiet", 'q', NULL, "no table on stdout", OPT_QUIET},
    NRD_CLI_LAST_OPTIONS("versions")};

/* The help: a synopsis, the table's options, the exit statuses. */
static void usage(FILE *f) {
  fputs("usage: nrdiff-post [options] RUN.h5 [more run files]\n", f);
  nrd_cli_print_help(f, cli_options);
  fputs("Exit status: 0 done; 2 bad usage or an input file that is not a "
        "usable nrdiff\noutput (the others are still processed); 1 cannot "
        "write the results.\n",
        f);
}

int main(int argc, char **argv) {
  options o = {.acf_from = NAN, .fe_level = 0.02};
  const char *prefix = NULL;
  int want_plot = 0;
  nrd_cli cli;
  nrd_cli_begin(&cli, cli_options, argc, argv);
  /* in order: --help and --version answer at once, a bad value stops */
  for (int id; (id = nrd_cli_next(&cli)) != NRD_CLI_END;) {
    switch (id) {
    case NRD_CLI_ERROR:
      post_warn("%s", cli.error);
      return 2;
    case NRD_CLI_HELP:
      usage(stdout);
      return 0;
    case NRD_CLI_VERSION:
      printf("nrdiff-post %s (%s)\n", version_nrdiff(), version_git());
      return 0;
    case OPT_QUIET:
      o.quiet = 1;
      break;
    case OPT_PLOT:
      want_plot = 1;
      break;
    case OPT_OUTPUT:
      prefix = cli.value;
      break;
    case OPT_ACF_FROM:
    case OPT_FE_LEVEL:
      if (nrd_cli_number(cli.value,
                         id == OPT_ACF_FROM ? &o.acf_from : &o.fe_level) != 0) {
        post_warn("--%s: not a number: '%s'",
                  id == OPT_ACF_FROM ? "acf-from" : "fe-level", cli.value);
        return 2;
      }
      break;
    }
  }
  char **files = argv + cli.first_operand;
  int n_files = argc - cli.first_operand;
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
  int refused = 0; /* a file was refused: exit status 2 */
  for (int i = 0; i < n_files; i++)
    if (process_one(files[i], i, &o, &rows, &cv) != 0) refused = 1;
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
  return rc ? 1 : refused ? 2 : 0;
}
