/* nrdiff-post's outputs: the table on stdout, PREFIX.summary.csv,
 * PREFIX.curves.csv and PREFIX.summary.h5 (written as NAME.tmp, published
 * together), the figures, and the check that no output overwrites an
 * input. */
#define _POSIX_C_SOURCE 200809L /* stat, access, fork */
#include "config.h"

#include "post.h"

#include "util/log.h"

#include <errno.h>
#include <math.h>
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

static void csv_number(FILE *f, double v) {
  if (!isnan(v)) fprintf(f, "%.10g", v);
}

static const char *const COLUMNS =
    "grid_index,dimension,separation,strength,n_train,t_S,t_S_err,t_S_theory,"
    "t_C,t_C_err,t_C_theory,t_S_clone,t_S_clone_err,t_S_matrix,t_C_clone,"
    "t_C_clone_err,t_freeze,t_freeze_err,t_freeze_spread,t_C_fe,t_C_fe_err,"
    "alpha,"
    "file,notes";

static double *row_values(const row *r, double v[19]) {
  double w[19] = {r->tS,
                  r->tS_err,
                  r->tS_theory,
                  r->tC,
                  r->tC_err,
                  r->tC_theory,
                  r->tS_clone,
                  r->tS_clone_err,
                  r->tS_matrix,
                  r->tC_clone,
                  r->tC_clone_err,
                  r->t_freeze,
                  r->t_freeze_err,
                  r->t_freeze_spread,
                  r->tC_fe,
                  r->tC_fe_err,
                  r->alpha,
                  0,
                  0};
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

/* The outputs being written, removed by a fatal error (out of memory:
 * NRD_XCALLOC ends the process) as publish_outputs removes them. */
static char partial_stem[1100];
static void remove_partial_outputs(void) {
  publish_outputs(partial_stem, 0);
}

static int close_checked(FILE *f, const char *name) {
  int bad = ferror(f);
  if (fclose(f) != 0) bad = 1;
  if (bad)
    post_warn("cannot write %s: %s", name, strerror(errno ? errno : EIO));
  return bad ? -1 : 0;
}

int write_csv(const char *path, const row_list *rows, const curve_list *cv) {
  char name[1100];
  snprintf(partial_stem, sizeof partial_stem, "%s", path);
  nrd_at_fatal(remove_partial_outputs);
  snprintf(name, sizeof name, "%s.summary.csv.tmp", path);
  errno = 0;
  FILE *f = fopen(name, "w");
  if (!f) {
    post_warn("cannot write %s: %s", name, strerror(errno));
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
    post_warn("cannot write %s: %s", name, strerror(errno));
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
int publish_outputs(const char *stem, int ok) {
  int rc = ok ? 0 : -1;
  for (int k = 0; k < 3; k++) {
    char tmp[1120], name[1100];
    snprintf(name, sizeof name, "%s%s", stem, OUTPUTS[k]);
    snprintf(tmp, sizeof tmp, "%.1100s.tmp", name);
    if (rc == 0 && rename(tmp, name) != 0) {
      post_warn("cannot write %s: %s", name, strerror(errno));
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
  if (d < 0 ||
      H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
    h5_failures++;
  hid_t ts = H5Screate(H5S_SCALAR), tt = H5Tcopy(H5T_C_S1);
  H5Tset_size(tt, H5T_VARIABLE);
  H5Tset_cset(tt, H5T_CSET_UTF8);
  hid_t a = H5Acreate2(d, "description", tt, ts, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0 || H5Awrite(a, tt, &description) < 0) h5_failures++;
  H5Aclose(a), H5Tclose(tt), H5Sclose(ts), H5Sclose(s), H5Dclose(d);
}

int write_h5(const char *path, const row_list *rows, const curve_list *cv) {
  char name[1100];
  snprintf(name, sizeof name, "%s.summary.h5.tmp", path);
  h5_failures = 0;
  hid_t f = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) {
    post_warn("cannot write %s", name);
    return -1;
  }
  static const char *const cols[17] = {
      "t_S",          "t_S_err",         "t_S_theory",    "t_C",
      "t_C_err",      "t_C_theory",      "t_S_clone",     "t_S_clone_err",
      "t_S_matrix",   "t_C_clone",       "t_C_clone_err", "t_freeze",
      "t_freeze_err", "t_freeze_spread", "t_C_fe",        "t_C_fe_err",
      "alpha"};
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
      "matrix criterion lambda_max = 1 (doc/theory.md (5.8)) [I]",
      "collapse time by cloning: phi_C crosses 1/2 between branch times",
      "its jackknife error",
      "mean nearest-training-point freezing time",
      "its jackknife error",
      "spread of the freezing times over trajectories",
      "zero of the excess entropy: f^e/alpha falls to --fe-level (0.02) [I]",
      "its jackknife error",
      "ln n / d"};
  hsize_t n = (hsize_t)rows->n;
  double *col = NRD_XCALLOC((size_t)n, sizeof *col);
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
  char *names = NRD_XCALLOC((size_t)n, w);
  for (hsize_t i = 0; i < n; i++)
    memcpy(names + i * w, rows->v[i].file, strlen(rows->v[i].file));
  hid_t st = H5Tcopy(H5T_C_S1);
  H5Tset_size(st, w);
  hid_t ss = H5Screate_simple(1, &n, NULL);
  hid_t fd =
      H5Dcreate2(g, "file", st, ss, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
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
      double *buf = NRD_XCALLOC((size_t)(j - i), sizeof *buf);
      const char *fields[4] = {"t", "value", "err", "theory"};
      for (int k = 0; k < 4; k++) {
        for (long q = i; q < j; q++) {
          const curve_point *p = &cv->v[q];
          buf[q - i] = k == 0   ? p->t
                       : k == 1 ? p->value
                       : k == 2 ? p->err
                                : p->theory;
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
    post_warn("cannot write %s (HDF5 failed to write it: disk full?)", name);
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

void print_table(const row_list *rows) {
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
  printf(
      "t_S: the clone-free phi crosses F(1) = 0.7752 (monotone interpolation, "
      "jackknife error over blocks;\n     = the run's "
      "critical_time_measured); t_S_clone: phi by cloning, between branch "
      "times only;\n     theory kappa_t = 1 / matrix criterion.\n"
      "t_C: mean Y2 crosses 1/2 [I]; t_C_clone: phi_C by cloning; theory: "
      "the REM collapse time (n, d -> infinity).\n"
      "-: not measured; not reached: the curve never reaches its level in "
      "the measured times.\n");
}

/* The figures: postprocess/nrdiff_plots.py under Debian's python3. */
int plot(const char *prefix) {
  const char *env = getenv("NRDIFF_PLOTS");
  char script[1200];
  const char *cands[3] = {env, NRD_PKGDATADIR "/nrdiff_plots.py",
                          NRD_SRCDIR "/postprocess/nrdiff_plots.py"};
  script[0] = 0;
  for (int k = 0; k < 3 && !script[0]; k++)
    if (cands[k] && access(cands[k], R_OK) == 0)
      snprintf(script, sizeof script, "%s", cands[k]);
  if (!script[0]) {
    post_warn("--plot: nrdiff_plots.py not found (set NRDIFF_PLOTS)");
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
  int rc = pid < 0             ? -1
           : WIFEXITED(status) ? WEXITSTATUS(status)
                               : 128 + WTERMSIG(status);
  if (rc != 0) post_warn("--plot: the figure script failed (exit %d)", rc);
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
int outputs_clobber_inputs(const char *stem, int with_plot, char **files,
                           int n_files) {
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
        post_warn("%s would overwrite the input %s%s: choose another -o PREFIX",
                  out[k], files[i],
                  strcmp(out[k], files[i]) ? " (the same file)" : "");
        return -1;
      }
    struct stat di;
    size_t ni;
    if (with_plot && have_dir && split_path(files[i], &di, &in_base) == 0 &&
        di.st_dev == sd.st_dev && di.st_ino == sd.st_ino &&
        (ni = strlen(in_base)) > nb + 5 && !strncmp(in_base, stem_base, nb) &&
        in_base[nb] == '.' && !strcmp(in_base + ni - 4, ".png")) {
      post_warn(
          "the input %s is named like a figure of --plot (%s.*.png): choose "
          "another -o PREFIX",
          files[i], stem);
      return -1;
    }
  }
  return 0;
}
