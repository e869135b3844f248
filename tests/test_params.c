/* Parameters (params.c): defaults, the --print-params round trip, files with
 * lists, every kind of error with its exact FILE:LINE:COL, overrides,
 * suggestions for misspelt names, provenance, the resolved dump (doubles and
 * strings read back bit for bit) and pack/unpack. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, strdup */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/error.h"
#include "config/params.h"

/* ------------------------------------------------------------ fixtures */

/* Files live in one mkdtemp directory, removed after the tests. */
static char dir[64];
enum { MAX_FILES = 64 };
static char *files[MAX_FILES];
static int n_files;

static const char *write_file(const char *name, const char *text) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int known = 0;
  for (int k = 0; k < n_files; k++)
    known |= strcmp(files[k], path) == 0;
  if (!known) {
    assert_true(n_files < MAX_FILES);
    files[n_files++] = strdup(path);
  }
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  for (int k = 0; k < n_files; k++)
    if (strcmp(files[k], path) == 0) return files[k];
  return NULL;
}

static int count_entries(const char *path) {
  DIR *d = opendir(path);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));)
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  if (d) closedir(d);
  return n;
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/nrdiff-test-params-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  for (int k = 0; k < n_files; k++) {
    unlink(files[k]);
    free(files[k]);
  }
  n_files = 0;
  return rmdir(dir);
}

static int entry(const char *name) {
  int i = params_schema_find(name);
  assert_true(i >= 0);
  return i;
}

/* Load text as a file; expect success. */
static void load_text(nrd_params *p, const char *text, int n_over,
                      char *const *over) {
  const char *path = write_file("good.yml", text);
  char err[1024] = "";
  int rc = params_load(p, path, n_over, over, err, sizeof err);
  if (rc != NRD_OK) fail_msg("unexpected error: %s", err);
}

/* Load text as a file; expect NRD_ERR_INPUT and exactly the message
 * "<path>:<where_and_what>" (e.g. "4:18: key 'grid.dimension': ..."). */
static void expect_file_error(const char *text, const char *where_and_what) {
  const char *path = write_file("bad.yml", text);
  nrd_params p;
  assert_int_equal(params_init_defaults(&p), NRD_OK);
  char err[1024] = "", want[1200];
  assert_int_equal(params_load(&p, path, 0, NULL, err, sizeof err),
                   NRD_ERR_INPUT);
  snprintf(want, sizeof want, "%s:%s", path, where_and_what);
  assert_string_equal(err, want);
  params_free(&p);
}

/* Overrides only; expect NRD_ERR_INPUT and exactly this message. */
static void expect_override_error(int n, char *const *over,
                                  const char *message) {
  nrd_params p;
  assert_int_equal(params_init_defaults(&p), NRD_OK);
  char err[1024] = "";
  assert_int_equal(params_load(&p, NULL, n, over, err, sizeof err),
                   NRD_ERR_INPUT);
  assert_string_equal(err, message);
  params_free(&p);
}

static void assert_same_values(const nrd_params *a, const nrd_params *b) {
  for (int i = 0; i < params_schema_size(); i++)
    if (!params_value_equal(a, b, i))
      fail_msg("values of %s differ", params_schema_name(i));
}

static void assert_same_provenance(const nrd_params *a, const nrd_params *b) {
  for (int i = 0; i < params_schema_size(); i++) {
    assert_int_equal(a->sources[i], b->sources[i]);
    assert_int_equal(a->source_lines[i], b->source_lines[i]);
  }
  if (!a->source_file || !b->source_file)
    assert_true(a->source_file == b->source_file);
  else
    assert_string_equal(a->source_file, b->source_file);
}

/* --------------------------------------------------------------- schema */

static void test_defaults(void **state) {
  (void)state;
  nrd_params p;
  assert_int_equal(params_init_defaults(&p), NRD_OK);
  assert_int_equal(p.run.seed, 12345);
  assert_true(p.run.max_wall_time == 0);
  assert_int_equal(p.run.blas_threads, 1);
  assert_int_equal(p.grid.dimension.n, 1);
  assert_int_equal(p.grid.dimension.v[0], 16);
  assert_true(p.grid.separation.n == 1 && p.grid.separation.v[0] == 1.0);
  assert_true(p.grid.strength.n == 1 && p.grid.strength.v[0] == 0.0);
  assert_true(p.grid.n_train.n == 1 && p.grid.n_train.v[0] == 0);
  assert_int_equal(p.forward.u, U_ISOTROPIC);
  assert_true(p.forward.u_scale == 1.0);
  assert_int_equal(p.forward.u_diagonal.n, 0);
  assert_true(p.forward.u_min == 1.0 && p.forward.u_max == 4.0);
  assert_string_equal(p.forward.u_file, "");
  assert_string_equal(p.forward.u_dataset, "U");
  assert_int_equal(p.forward.q, Q_NONE);
  assert_string_equal(p.forward.q_file, "");
  assert_string_equal(p.forward.q_dataset, "Q");
  assert_int_equal(p.data.classes, 2);
  assert_int_equal(p.data.covariance, COV_ISOTROPIC);
  assert_true(p.data.sigma == 1.0);
  assert_int_equal(p.data.direction, DIR_ONES);
  assert_int_equal(p.ensemble.particles, 1024);
  assert_int_equal(p.ensemble.block_size, 256);
  assert_true(p.time.T == 10.0 && p.time.t_min == 0.0);
  assert_int_equal(p.time.steps, 1000);
  assert_int_equal(p.time.spacing, SPACING_UNIFORM);
  assert_int_equal(p.integrator.scheme, SCHEME_EULER);
  assert_int_equal(p.integrator.start, START_STATIONARY);
  assert_int_equal(p.experiment.protocol.n, 1);
  assert_string_equal(p.experiment.protocol.v[0], "generate");
  assert_int_equal(p.experiment.branch_times.n, 0);
  assert_string_equal(p.output.file, "nrdiff.h5");
  assert_int_equal(p.output.every, 10);
  assert_int_equal(p.output.trajectories, 16);
  assert_int_equal(p.output.trajectory_every, 10);
  assert_null(p.source_file);
  for (int i = 0; i < params_schema_size(); i++) {
    assert_int_equal(p.sources[i], PSRC_DEFAULT);
    assert_int_equal(p.source_lines[i], 0);
  }
  params_free(&p);
  params_free(&p); /* freeing twice is harmless */

  /* Loading with no file and no overrides gives the same. */
  nrd_params a, b;
  params_init_defaults(&a);
  params_init_defaults(&b);
  char err[256];
  assert_int_equal(params_load(&a, NULL, 0, NULL, err, sizeof err), NRD_OK);
  assert_same_values(&a, &b);
  assert_same_provenance(&a, &b);
  params_free(&a);
  params_free(&b);
}

/* params_value_yaml: each value as the YAML text --print-params writes,
 * which parses back to the same value. */
static void test_value_yaml(void **state) {
  (void)state;
  nrd_params p;
  params_init_defaults(&p);
  char err[256];
  char *ov[] = {"grid.strength=[0, 0.5]", "output.file=out.h5",
                "output.overwrite=true"};
  assert_int_equal(params_load(&p, NULL, 3, ov, err, sizeof err), NRD_OK);
  char *v = params_value_yaml(&p, entry("grid.strength"));
  assert_string_equal(v, "[0.0, 0.5]");
  free(v);
  v = params_value_yaml(&p, entry("output.file"));
  assert_string_equal(v, "\"out.h5\"");
  free(v);
  v = params_value_yaml(&p, entry("output.overwrite"));
  assert_string_equal(v, "true");
  free(v);
  assert_int_equal(p.output.overwrite, 1);
  assert_null(params_value_yaml(&p, -1));
  params_free(&p);
}

static void test_schema_accessors(void **state) {
  (void)state;
  assert_int_equal(params_schema_size(), 49);
  const char *restartable[] = {"run.max_wall_time",   "run.blas_threads",
                               "output.overwrite",    "checkpoint.every",
                               "checkpoint.interval", "checkpoint.stop_file"};
  enum { N_RESTARTABLE = sizeof restartable / sizeof *restartable };
  int n_restartable = 0;
  for (int i = 0; i < params_schema_size(); i++) {
    const char *name = params_schema_name(i);
    assert_non_null(strchr(name, '.'));
    assert_int_equal(params_schema_find(name), i);
    n_restartable += params_schema_restartable(i);
  }
  assert_int_equal(n_restartable, N_RESTARTABLE);
  for (int k = 0; k < N_RESTARTABLE; k++)
    assert_true(params_schema_restartable(entry(restartable[k])));
  assert_false(params_schema_restartable(entry("grid.dimension")));
  assert_null(params_schema_name(-1));
  assert_null(params_schema_name(params_schema_size()));
  assert_false(params_schema_restartable(params_schema_size()));
  assert_int_equal(params_schema_find("grid"), -1);
  assert_int_equal(params_schema_find("grid.dimensions"), -1);
  assert_int_equal(params_schema_find(NULL), -1);
}

/* The choices are written in the order of the C enums of params.h. */
static void test_enum_order_matches_header(void **state) {
  (void)state;
  struct {
    char *override;
    size_t offset;
    int value;
  } cases[] = {
      {"forward.u=geometric", offsetof(nrd_params, forward.u), U_GEOMETRIC},
      {"forward.q=optimal", offsetof(nrd_params, forward.q), Q_OPTIMAL},
      {"forward.q=random", offsetof(nrd_params, forward.q), Q_RANDOM},
      {"data.covariance=stationary", offsetof(nrd_params, data.covariance),
       COV_STATIONARY},
      {"data.direction=random", offsetof(nrd_params, data.direction),
       DIR_RANDOM},
      {"data.direction=fastest", offsetof(nrd_params, data.direction),
       DIR_FASTEST},
      {"integrator.scheme=exponential", offsetof(nrd_params, integrator.scheme),
       SCHEME_EXPONENTIAL},
      {"integrator.scheme=ode_heun", offsetof(nrd_params, integrator.scheme),
       SCHEME_ODE_HEUN},
      {"integrator.start=exact", offsetof(nrd_params, integrator.start),
       START_EXACT},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    nrd_params p;
    params_init_defaults(&p);
    char err[512];
    assert_int_equal(
        params_load(&p, NULL, 1, &cases[k].override, err, sizeof err), NRD_OK);
    assert_int_equal(*(int *)((char *)&p + cases[k].offset), cases[k].value);
    params_free(&p);
  }
  nrd_params p;
  params_init_defaults(&p);
  char *over[] = {"forward.u=file",        "forward.u_file=u.h5",
                  "forward.q=file",        "forward.q_file=q.h5",
                  "time.spacing=log",      "time.t_min=0.1",
                  "data.direction=slowest"};
  char err[512];
  assert_int_equal(params_load(&p, NULL, 7, over, err, sizeof err), NRD_OK);
  assert_int_equal(p.forward.u, U_FILE);
  assert_int_equal(p.forward.q, Q_FILE);
  assert_int_equal(p.time.spacing, SPACING_LOG);
  assert_int_equal(p.data.direction, DIR_SLOWEST);
  params_free(&p);
}

/* --------------------------------------------------- print / round trips */

/* The resolved dump of p, or --print-params for NULL, as a string. */
static char *print_to_string(const nrd_params *p) {
  FILE *f = tmpfile();
  assert_non_null(f);
  if (p)
    params_write_resolved(p, f);
  else
    params_print_defaults(f);
  long len = ftell(f);
  assert_true(len > 0);
  char *text = malloc((size_t)len + 1);
  assert_non_null(text);
  rewind(f);
  assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
  text[len] = '\0';
  fclose(f);
  return text;
}

static void test_print_defaults_round_trip(void **state) {
  (void)state;
  char *text = print_to_string(NULL);
  /* every key with a comment above, no line wider than 79 columns */
  for (int i = 0; i < params_schema_size(); i++) {
    const char *name = params_schema_name(i), *key = strchr(name, '.') + 1;
    char line[128];
    snprintf(line, sizeof line, "\n  %s: ", key);
    const char *at = strstr(text, line);
    if (!at) fail_msg("%s missing from --print-params", name);
    const char *above = at - 1;
    while (above > text && *above != '\n')
      above--;
    assert_true(strncmp(above, "\n  # ", 5) == 0);
  }
  for (const char *line = text; *line;) {
    const char *end = strchr(line, '\n');
    assert_non_null(end);
    assert_true(end - line <= 79);
    line = end + 1;
  }
  assert_non_null(strstr(text, "  dimension: [16]\n"));
  assert_non_null(strstr(text, "  file: \"nrdiff.h5\"\n"));
  assert_non_null(strstr(text, "(one of euler, exponential, ode_heun)"));

  nrd_params loaded, defaults;
  params_init_defaults(&loaded);
  params_init_defaults(&defaults);
  load_text(&loaded, text, 0, NULL);
  assert_same_values(&loaded, &defaults);
  for (int i = 0; i < params_schema_size(); i++)
    assert_int_equal(loaded.sources[i], PSRC_FILE);
  params_free(&loaded);
  params_free(&defaults);
  free(text);
}

static const char *good_file =
    "# a realistic file: block and flow lists, comments, quoting\n"
    "run:\n"
    "  seed: 4294967295   # largest allowed\n"
    "  max_wall_time: 3600\n"
    "grid:\n"
    "  dimension:\n"
    "    - 2\n"
    "    - 64\n"
    "  separation: [0.5, 1, 2e1]\n"
    "  strength: [-1e6, 0, 0.75]\n"
    "  n_train: [10, 100]\n"
    "forward:\n"
    "  u: geometric\n"
    "  u_min: 0.5\n"
    "  u_max: 0.5\n"
    "  q: 'random'\n"
    "  u_dataset: \"/group/U \\u00e9\"\n"
    "data:\n"
    "  classes: 2\n"
    "  direction: fastest\n"
    "  sigma: 0\n"
    "time:\n"
    "  T: 8\n"
    "  t_min: 1e-3\n"
    "  spacing: log\n"
    "experiment:\n"
    "  protocol: [speciation, collapse, uturn]\n"
    "  branch_times: [0.5, 7.999]\n"
    "  uturn_times: [0.25, 8]\n"
    "output:\n"
    "  file: out/run 1.h5\n";

static void test_good_file_with_lists(void **state) {
  (void)state;
  nrd_params p;
  params_init_defaults(&p);
  load_text(&p, good_file, 0, NULL);
  assert_int_equal(p.run.seed, 4294967295L);
  assert_true(p.run.max_wall_time == 3600);
  assert_int_equal(p.grid.dimension.n, 2);
  assert_int_equal(p.grid.dimension.v[0], 2);
  assert_int_equal(p.grid.dimension.v[1], 64);
  assert_int_equal(p.grid.separation.n, 3);
  assert_true(p.grid.separation.v[0] == 0.5 && p.grid.separation.v[2] == 20);
  assert_true(p.grid.strength.v[0] == -1e6 && p.grid.strength.v[2] == 0.75);
  assert_true(p.grid.n_train.n == 2 && p.grid.n_train.v[1] == 100);
  assert_int_equal(p.forward.u, U_GEOMETRIC);
  assert_true(p.forward.u_min == 0.5 && p.forward.u_max == 0.5);
  assert_int_equal(p.forward.q, Q_RANDOM);
  assert_string_equal(p.forward.u_dataset, "/group/U \xc3\xa9");
  assert_int_equal(p.data.direction, DIR_FASTEST);
  assert_true(p.data.sigma == 0);
  assert_true(p.time.T == 8 && p.time.t_min == 1e-3);
  assert_int_equal(p.time.spacing, SPACING_LOG);
  assert_int_equal(p.experiment.protocol.n, 3);
  assert_string_equal(p.experiment.protocol.v[1], "collapse");
  assert_true(p.experiment.branch_times.v[1] == 7.999);
  assert_true(p.experiment.uturn_times.n == 2 &&
              p.experiment.uturn_times.v[1] == 8);
  assert_int_equal(p.experiment.uturn_data, UTURN_MIXTURE);
  assert_int_equal(p.experiment.reference_times.n, 0);
  assert_string_equal(p.output.file, "out/run 1.h5");
  params_free(&p);
}

static void test_sources_recorded(void **state) {
  (void)state;
  nrd_params p;
  params_init_defaults(&p);
  char *over[] = {"time.steps=50", "grid.strength=[0, 0.5]"};
  load_text(&p, good_file, 2, over);
  assert_non_null(p.source_file);
  assert_non_null(strstr(p.source_file, "good.yml"));
  assert_int_equal(p.sources[entry("run.seed")], PSRC_FILE);
  assert_int_equal(p.source_lines[entry("run.seed")], 3);
  assert_int_equal(p.source_lines[entry("grid.dimension")], 7);
  assert_int_equal(p.source_lines[entry("output.file")], 31);
  assert_int_equal(p.sources[entry("time.steps")], PSRC_OVERRIDE);
  assert_int_equal(p.source_lines[entry("time.steps")], 0);
  /* an override replaces a value from the file */
  assert_int_equal(p.sources[entry("grid.strength")], PSRC_OVERRIDE);
  assert_true(p.grid.strength.n == 2 && p.grid.strength.v[1] == 0.5);
  assert_int_equal(p.sources[entry("ensemble.particles")], PSRC_DEFAULT);
  assert_int_equal(p.source_lines[entry("ensemble.particles")], 0);
  params_free(&p);
}

/* A file that holds no parameters is refused: running every default
 * unasked would hide a wrong, truncated or not yet written file. */
static void test_empty_and_comment_only_files(void **state) {
  (void)state;
  const char *texts[] = {"",
                         "\n\n",
                         "# nothing but a comment\n\n",
                         "---\n",
                         "---\n...\n",
                         "# a comment\n---\n# another\n",
                         "~\n",
                         "{}\n",
                         "\xEF\xBB\xBF# a byte order mark, then a comment\n"};
  for (size_t k = 0; k < sizeof texts / sizeof *texts; k++)
    expect_file_error(texts[k],
                      "1:1: the file holds no parameters; 'nrdiff "
                      "--print-params > run.yml' writes a complete file "
                      "(every key at its default) to edit");
  /* an empty section, even written {} */
  expect_file_error("run:\n  seed: 1\ngrid: {}\n",
                    "3:7: section 'grid' has no keys (add indented 'key: "
                    "value' lines or remove it)");
  /* an empty document before a second one: the second is what is wrong */
  expect_file_error("---\n---\nrun:\n  seed: 1\n",
                    "2:1: a second YAML document; a parameter file holds "
                    "exactly one");
  /* one key is enough */
  nrd_params p;
  params_init_defaults(&p);
  load_text(&p, "# a comment\nrun:\n  seed: 1\n", 0, NULL);
  assert_int_equal(p.run.seed, 1);
  params_free(&p);
}

/* ------------------------------------------------------------- errors */

static void test_yaml_syntax_errors(void **state) {
  (void)state;
  expect_file_error("run:\n  seed: 1\ngrid:\n\tdimension: [4]\n",
                    "4:1: YAML syntax error: found character that cannot "
                    "start any token (while scanning for the next token at "
                    "line 4, column 1)");
  expect_file_error("grid:\n  dimension: [4, 8\ntime:\n  T: 3\n",
                    "3:5: YAML syntax error: did not find expected ',' or "
                    "']' (while parsing a flow sequence at line 2, column "
                    "14)");
  expect_file_error("run:\n  seed: \"7\n",
                    "3:1: YAML syntax error: found unexpected end of stream "
                    "(while scanning a quoted scalar at line 2, column 9)");
  /* bad encoding: libyaml gives a byte offset, we give line:column */
  expect_file_error("run:\n  seed: \xff\n",
                    "2:9: YAML syntax error: invalid leading UTF-8 octet");
  expect_file_error("run:\n  seed: 1\n---\nrun:\n  seed: 2\n",
                    "3:1: a second YAML document; a parameter file holds "
                    "exactly one");
}

static void test_structure_errors(void **state) {
  (void)state;
  expect_file_error("- run\n- grid\n",
                    "1:1: the top level must be a mapping of sections "
                    "('grid:' then indented 'dimension: [16]' lines), not a "
                    "list");
  expect_file_error("run:\n  seed: 1\ngrid: 5\n",
                    "3:7: section 'grid' must be a mapping of indented 'key: "
                    "value' lines, not a single value");
  expect_file_error("run:\n  seed: 1\ngrid:\ntime:\n  T: 1\n",
                    "3:6: section 'grid' has no keys (add indented 'key: "
                    "value' lines or remove it)");
  expect_file_error("run:\n  seed: 1\ntime:\n  T: 1\nrun:\n  seed: 2\n",
                    "5:1: section 'run' appears twice (first at line 1); "
                    "merge them");
  expect_file_error("time:\n  T: 1\n  steps: 5\n  T: 2\n",
                    "4:3: key 'time.T': set twice (first at line 2); keep "
                    "one");
  expect_file_error("time:\n  T: 1\n  steps:\n",
                    "3:9: key 'time.steps': has no value (give one, or "
                    "remove the key to use the default 1000)");
  expect_file_error("time:\n  T: ~\n",
                    "2:6: key 'time.T': has no value (give one, or remove "
                    "the key to use the default 10.0)");
  expect_file_error("run:\n  ? [a]\n  : 1\n",
                    "2:5: in section 'run': keys must be plain names, not a "
                    "list");
}

static void test_type_errors(void **state) {
  (void)state;
  expect_file_error("run:\n  seed: 1\ntime:\n  steps: 3.5\n",
                    "4:10: key 'time.steps': must be an integer (got '3.5')");
  expect_file_error("run:\n  seed: abc\n",
                    "2:9: key 'run.seed': must be an integer (got 'abc')");
  expect_file_error("run:\n  seed: true\n",
                    "2:9: key 'run.seed': must be an integer (got 'true')");
  expect_file_error("run:\n  seed: 0x10\n",
                    "2:9: key 'run.seed': must be an integer (got '0x10')");
  expect_file_error("ensemble:\n  particles: 1e6\n",
                    "2:14: key 'ensemble.particles': must be an integer "
                    "literal (got 1e6; write 1000000)");
  expect_file_error("ensemble:\n  particles: \"1000\"\n",
                    "2:14: key 'ensemble.particles': must be an integer, not "
                    "the quoted text '1000' (remove the quotes)");
  expect_file_error("time:\n  T: ten\n",
                    "2:6: key 'time.T': must be a number (got 'ten')");
  expect_file_error("time:\n  T: '5'\n",
                    "2:6: key 'time.T': must be a number, not the quoted "
                    "text '5' (remove the quotes)");
  expect_file_error("time:\n  T: nan\n",
                    "2:6: key 'time.T': must be a finite number (got 'nan')");
  expect_file_error("time:\n  T: -.Inf\n",
                    "2:6: key 'time.T': must be a finite number (got "
                    "'-.Inf')");
  expect_file_error("time:\n  T: 1e999\n",
                    "2:6: key 'time.T': must be a finite number (got "
                    "1e999)");
  expect_file_error("grid:\n  dimension: 16\n",
                    "2:14: key 'grid.dimension': must be a list (write "
                    "[16])");
  expect_file_error("grid:\n  dimension: many\n",
                    "2:14: key 'grid.dimension': must be a list like [16] "
                    "(got 'many')");
  expect_file_error("grid:\n  dimension: {d: 4}\n",
                    "2:14: key 'grid.dimension': must be a list like [1, 2], "
                    "not a mapping");
  expect_file_error("grid:\n  dimension: [4, [8]]\n",
                    "2:18: key 'grid.dimension': element 2 must be a single "
                    "value, not a list");
  expect_file_error("grid:\n  dimension:\n    - 4\n    -\n",
                    "4:6: key 'grid.dimension': element 2 has no value");
  expect_file_error("grid:\n  separation: [1, 2, x]\n",
                    "2:22: key 'grid.separation': element 3 must be a number "
                    "(got 'x')");
  expect_file_error("data:\n  classes: [2]\n",
                    "2:12: key 'data.classes': must be a single value, not a "
                    "list");
  expect_file_error("integrator:\n  scheme: rk4\n",
                    "2:11: key 'integrator.scheme': must be one of euler, "
                    "exponential, ode_heun (got 'rk4')");
  expect_file_error("forward:\n  u: diag\n",
                    "2:6: key 'forward.u': must be one of isotropic, "
                    "diagonal, geometric, file (got 'diag'; did you mean "
                    "'diagonal'?)");
  expect_file_error("output:\n  file: \"a\\0b\"\n",
                    "2:9: key 'output.file': must not contain a NUL "
                    "character");
}

/* A negative zero read for a double key, alone or in a list, is stored as
 * +0: "t_min: -0.0" must not make the run say "down to t = -0". */
static void test_negative_zero_stored_as_zero(void **state) {
  (void)state;
  nrd_params p;
  params_init_defaults(&p);
  char *over[] = {"data.sigma=-0", "checkpoint.interval=-0e5"};
  load_text(&p,
            "time:\n  t_min: -0.0\ngrid:\n  strength: [-0.0, 1, -0.000]\n"
            "experiment:\n  reference_times: [-0.0]\nrun:\n"
            "  max_wall_time: -0.0\n",
            2, over);
  const double *zeros[] = {
      &p.time.t_min,         &p.grid.strength.v[0],
      &p.grid.strength.v[2], &p.experiment.reference_times.v[0],
      &p.run.max_wall_time,  &p.data.sigma,
      &p.checkpoint.interval};
  for (size_t k = 0; k < sizeof zeros / sizeof *zeros; k++) {
    assert_true(*zeros[k] == 0);
    assert_false(signbit(*zeros[k]));
  }
  char *text = print_to_string(&p);
  assert_non_null(strstr(text, "  t_min: 0.0  # file "));
  assert_non_null(strstr(text, "  strength: [0.0, 1.0, 0.0]  # file "));
  assert_non_null(strstr(text, "  sigma: 0.0  # override\n"));
  assert_null(strstr(text, "-0"));
  free(text);
  params_free(&p);
  /* a key that must be > 0 still refuses it, quoting what was written */
  expect_file_error("time:\n  T: -0.0\n",
                    "2:6: key 'time.T': must be > 0 (got -0.0)");
}

/* Leading zeros are refused with the spelling to use: YAML 1.1 reads 010
 * as 8, YAML 1.2 as 10.  The other YAML 1.1 integer forms were refused
 * already. */
static void test_leading_zeros_refused(void **state) {
  (void)state;
  const char *why = "must not have leading zeros, which YAML readers "
                    "disagree on";
  struct {
    const char *text, *where, *what;
  } cases[] = {
      {"time:\n  steps: 010\n", "2:10: key 'time.steps': ", "010; write 10"},
      {"time:\n  steps: 007\n", "2:10: key 'time.steps': ", "007; write 7"},
      {"run:\n  seed: 000\n", "2:9: key 'run.seed': ", "000; write 0"},
      {"run:\n  seed: -012\n", "2:9: key 'run.seed': ", "-012; write -12"},
      {"run:\n  seed: +010\n", "2:9: key 'run.seed': ", "+010; write 10"},
      {"grid:\n  dimension: [4, 08]\n",
       "2:18: key 'grid.dimension': element 2 ", "08; write 8"},
      {"time:\n  T: 010\n", "2:6: key 'time.T': ", "010; write 10"},
      {"time:\n  T: 01.5\n", "2:6: key 'time.T': ", "01.5; write 1.5"},
      {"time:\n  t_min: 00.5\n", "2:10: key 'time.t_min': ", "00.5; write 0.5"},
      {"grid:\n  strength: [-00.25, 1]\n",
       "2:14: key 'grid.strength': element 1 ", "-00.25; write -0.25"},
      {"time:\n  T: 007e1\n", "2:6: key 'time.T': ", "007e1; write 7e1"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    char want[512];
    snprintf(want, sizeof want, "%s%s (got %s)", cases[k].where, why,
             cases[k].what);
    expect_file_error(cases[k].text, want);
  }
  char *a[] = {"time.steps=010"};
  expect_override_error(1, a,
                        "-P time.steps=010: key 'time.steps': must not have "
                        "leading zeros, which YAML readers disagree on (got "
                        "010; write 10)");
  /* YAML 1.1's other integer spellings: refused as before */
  expect_file_error("time:\n  steps: 0o17\n",
                    "2:10: key 'time.steps': must be an integer (got '0o17')");
  expect_file_error("time:\n  steps: 0x1F\n",
                    "2:10: key 'time.steps': must be an integer (got '0x1F')");
  expect_file_error("time:\n  steps: 1_000\n",
                    "2:10: key 'time.steps': must be an integer (got "
                    "'1_000')");
  expect_file_error("time:\n  steps: 1:30\n",
                    "2:10: key 'time.steps': must be an integer (got '1:30')");
  expect_file_error("time:\n  T: 1:30\n",
                    "2:6: key 'time.T': must be a number (got '1:30')");
  expect_file_error("time:\n  T: 1_0.5\n",
                    "2:6: key 'time.T': must be a number (got '1_0.5')");
  /* zero itself, and zeros after the first digit or in the exponent */
  nrd_params p;
  params_init_defaults(&p);
  load_text(&p,
            "run:\n  seed: 0\ngrid:\n  strength: [0, 0.5, -0.25, 0e0, "
            "-0]\n  n_train: [0, 100]\ntime:\n  T: 1e01\n  t_min: 1e-3\n",
            0, NULL);
  assert_int_equal(p.run.seed, 0);
  assert_true(p.grid.strength.v[1] == 0.5 && p.grid.strength.v[2] == -0.25);
  assert_int_equal(p.grid.n_train.v[1], 100);
  assert_true(p.time.T == 10 && p.time.t_min == 1e-3);
  params_free(&p);
}

/* YAML tags are refused wherever they are, with the key they belong to:
 * "!!str 50" would be the integer 50 and "!!binary aGVsbG8=" a file name. */
static void test_tags_refused(void **state) {
  (void)state;
  expect_file_error("output:\n  file: !!binary aGVsbG8=\n",
                    "2:9: key 'output.file': has a YAML tag ('!!binary'); "
                    "tags are not accepted: remove it");
  expect_file_error("time:\n  steps: !!str 50\n",
                    "2:10: key 'time.steps': has a YAML tag ('!!str'); tags "
                    "are not accepted: remove it");
  expect_file_error("time:\n  T: &t !!float 5\n",
                    "2:6: key 'time.T': has a YAML tag ('!!float'); tags are "
                    "not accepted: remove it");
  expect_file_error("time:\n  T: !local 5\n",
                    "2:6: key 'time.T': has a YAML tag ('!local'); tags are "
                    "not accepted: remove it");
  expect_file_error("time:\n  T: !<tag:example.com,2024:x> 5\n",
                    "2:6: key 'time.T': has a YAML tag "
                    "('!<tag:example.com,2024:x>'); tags are not accepted: "
                    "remove it");
  expect_file_error("time:\n  T: ! 5\n",
                    "2:6: key 'time.T': has a YAML tag ('!'); tags are not "
                    "accepted: remove it");
  expect_file_error("time:\n  steps: !!null\n",
                    "2:10: key 'time.steps': has a YAML tag ('!!null'); tags "
                    "are not accepted: remove it");
  expect_file_error("grid:\n  dimension: [4, !!int 8]\n",
                    "2:18: key 'grid.dimension': element 2 has a YAML tag "
                    "('!!int'); tags are not accepted: remove it");
  expect_file_error("grid:\n  dimension:\n    - 4\n    - !x 8\n",
                    "4:7: key 'grid.dimension': element 2 has a YAML tag "
                    "('!x'); tags are not accepted: remove it");
  expect_file_error("grid:\n  dimension: !!seq [4]\n",
                    "2:14: key 'grid.dimension': has a YAML tag ('!!seq'); "
                    "tags are not accepted: remove it");
  expect_file_error("time: !!map\n  steps: 5\n",
                    "1:7: section 'time' has a YAML tag ('!!map'); tags are "
                    "not accepted: remove it");
  expect_file_error("time:\n  !!str steps: 5\n",
                    "2:3: the key name 'time.steps' has a YAML tag ('!!str'); "
                    "tags are not accepted: remove it");
  expect_file_error("!!str time:\n  steps: 5\n",
                    "1:1: the section name 'time' has a YAML tag ('!!str'); "
                    "tags are not accepted: remove it");
  expect_file_error("--- !!map\ntime:\n  steps: 5\n",
                    "1:5: the top level has a YAML tag ('!!map'); tags are "
                    "not accepted: remove it");
  expect_file_error("%TAG !e! tag:example.com,2024:\n---\ntime:\n  T: !e!x 5\n",
                    "4:6: key 'time.T': has a YAML tag "
                    "('!<tag:example.com,2024:x>'); tags are not accepted: "
                    "remove it");
  /* the first tag is the one reported */
  expect_file_error("time:\n  T: 5\n  steps: !!int 3\n  t_min: !!float 1\n",
                    "3:10: key 'time.steps': has a YAML tag ('!!int'); tags "
                    "are not accepted: remove it");
  char *a[] = {"output.file=!!binary aGVsbG8="};
  expect_override_error(1, a,
                        "-P output.file=!!binary aGVsbG8=: key 'output.file': "
                        "has a YAML tag ('!!binary'); tags are not accepted: "
                        "remove it");
  char *b[] = {"time.steps=!!str 50"};
  expect_override_error(1, b,
                        "-P time.steps=!!str 50: key 'time.steps': has a YAML "
                        "tag ('!!str'); tags are not accepted: remove it");
  char *c[] = {"grid.dimension=[8, !!int 16]"};
  expect_override_error(1, c,
                        "-P grid.dimension=[8, !!int 16]: key "
                        "'grid.dimension': element 2 has a YAML tag ('!!int'); "
                        "tags are not accepted: remove it");
  char *d[] = {"time.T=!<x> 5"};
  expect_override_error(
      1, d,
      "-P time.T=!<x> 5: key 'time.T': has a YAML tag ('!<x>'); "
      "tags are not accepted: remove it");
  /* '!' inside a value or quotes is no tag */
  nrd_params p;
  params_init_defaults(&p);
  load_text(&p, "output:\n  file: \"!!binary x\"\nforward:\n  u_dataset: a!b\n",
            0, NULL);
  assert_string_equal(p.output.file, "!!binary x");
  assert_string_equal(p.forward.u_dataset, "a!b");
  params_free(&p);
}

static void test_range_errors(void **state) {
  (void)state;
  expect_file_error("run:\n  seed: 1\ngrid:\n  dimension: [8, -4]\n",
                    "4:18: key 'grid.dimension': element 2 must be >= 1 (got "
                    "-4)");
  expect_file_error("grid:\n  dimension: [1048577]\n",
                    "2:15: key 'grid.dimension': element 1 must be <= "
                    "1048576 (got 1048577)");
  expect_file_error("grid:\n  dimension: []\n",
                    "2:14: key 'grid.dimension': must have at least 1 "
                    "element (got 0)");
  expect_file_error("grid:\n  strength: [1000000.5]\n",
                    "2:14: key 'grid.strength': element 1 must be <= "
                    "1000000 (got 1000000.5)");
  expect_file_error("grid:\n  strength: [-2e6]\n",
                    "2:14: key 'grid.strength': element 1 must be >= "
                    "-1000000 (got -2e6)");
  expect_file_error("grid:\n  n_train: [100000001]\n",
                    "2:13: key 'grid.n_train': element 1 must be <= "
                    "100000000 (got 100000001)");
  expect_file_error("run:\n  seed: 4294967296\n",
                    "2:9: key 'run.seed': must be <= 4294967295 (got "
                    "4294967296)");
  expect_file_error("run:\n  seed: -1\n",
                    "2:9: key 'run.seed': must be >= 0 (got -1)");
  expect_file_error("run:\n  seed: 99999999999999999999\n",
                    "2:9: key 'run.seed': must be <= 4294967295 (got "
                    "99999999999999999999)");
  expect_file_error("run:\n  max_wall_time: -1\n",
                    "2:18: key 'run.max_wall_time': must be >= 0 (got -1)");
  expect_file_error("run:\n  blas_threads: 257\n",
                    "2:17: key 'run.blas_threads': must be <= 256 (got 257)");
  expect_file_error("ensemble:\n  particles: 0\n",
                    "2:14: key 'ensemble.particles': must be >= 1 (got 0)");
  expect_file_error("ensemble:\n  particles: 1000000000001\n",
                    "2:14: key 'ensemble.particles': must be <= "
                    "1000000000000 (got 1000000000001)");
  expect_file_error("forward:\n  u_scale: 0\n",
                    "2:12: key 'forward.u_scale': must be > 0 (got 0)");
  expect_file_error("forward:\n  u_diagonal: [1, 0.0]\n",
                    "2:19: key 'forward.u_diagonal': element 2 must be > 0 "
                    "(got 0.0)");
  expect_file_error("data:\n  classes: 1\n",
                    "2:12: key 'data.classes': must be >= 2 (got 1)");
  expect_file_error("time:\n  steps: 1000000001\n",
                    "2:10: key 'time.steps': must be <= 1000000000 (got "
                    "1000000001)");
  expect_file_error("output:\n  every: 0\n",
                    "2:10: key 'output.every': must be >= 1 (got 0)");
  expect_file_error("output:\n  file: ''\n",
                    "2:9: key 'output.file': must not be empty");
  expect_file_error("experiment:\n  protocol: []\n",
                    "2:13: key 'experiment.protocol': must have at least 1 "
                    "element (got 0)");
  expect_file_error("experiment:\n  protocol: [uturn, forward, uturn]\n",
                    "2:30: key 'experiment.protocol': element 3 'uturn' "
                    "repeats element 1 (each may appear once)");
  expect_file_error("experiment:\n  protocol: [generate, speciaton]\n",
                    "2:24: key 'experiment.protocol': element 2 must be one "
                    "of generate, speciation, collapse, uturn, forward (got "
                    "'speciaton'; did you mean 'speciation'?)");
}

/* data.source: file and its keys: each source refuses the other's keys
 * when they would change nothing, and a run's resolved parameters (every
 * key listed) load again. */
static void test_data_source_rules(void **state) {
  (void)state;
  const char *file = "grid:\n  n_train: [100]\ndata:\n  source: file\n"
                     "  file: d.h5\n";
  expect_file_error("data:\n  source: file\n",
                    "2:11: key 'data.source': 'file' needs data.file, the "
                    "HDF5 file holding the points");
  expect_file_error("data:\n  file: d.h5\n",
                    "2:9: key 'data.file': has no effect with data.source: "
                    "mixture (set data.source: file to read the data from a "
                    "file)");
  expect_file_error("data:\n  normalize: center\n",
                    "2:14: key 'data.normalize': has no effect with "
                    "data.source: mixture (set data.source: file to read the "
                    "data from a file)");
  char text[512];
  snprintf(text, sizeof text, "%s  classes: 3\n", file);
  expect_file_error(text, "6:12: key 'data.classes': has no effect with "
                          "data.source: file (the data, their classes and "
                          "their geometry are the file's)");
  expect_file_error("data:\n  source: file\n  file: d.h5\n",
                    "2:11: key 'data.source': 'file' needs every "
                    "grid.n_train > 0, the training points taken from the "
                    "file (element 1 is 0)");
  expect_file_error("grid:\n  n_train: [0]\ndata:\n  source: file\n  file: "
                    "d.h5\n",
                    "2:12: key 'grid.n_train': element 1 must be > 0 with "
                    "data.source: file (the training points are the file's; "
                    "there is no exact score of file data) (got 0)");
  snprintf(text, sizeof text, "%s  class_subset: [3, 3]\n", file);
  expect_file_error(text, "6:17: key 'data.class_subset': label 3 appears "
                          "twice (elements 1 and 2)");
  snprintf(text, sizeof text, "%s  labels: \"\"\n  class_subset: [3]\n", file);
  expect_file_error(text, "7:17: key 'data.class_subset': needs labels: "
                          "data.labels is \"\" (unlabelled data)");
  snprintf(text, sizeof text, "%sintegrator:\n  start: exact\n", file);
  expect_file_error(text, "7:10: key 'integrator.start': 'exact' is not "
                          "available with data.source: file (the exact "
                          "marginal at time.T of file data is not sampled); "
                          "use stationary");
  /* a valid file run, written out whole and read back */
  nrd_params p, q;
  params_init_defaults(&p);
  params_init_defaults(&q);
  char err[512],
      *over[] = {"data.source=file", "data.file=d.h5", "grid.n_train=[100]",
                 "data.normalize=center", "data.class_subset=[7, 2]"};
  assert_int_equal(params_load(&p, NULL, 5, over, err, sizeof err), NRD_OK);
  assert_int_equal(p.data.source, DATA_FILE);
  assert_int_equal(p.data.normalize, NORMALIZE_CENTER);
  assert_int_equal(p.data.class_subset.n, 2);
  assert_int_equal(p.data.class_subset.v[0], 7);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  params_write_resolved(&p, f);
  fclose(f);
  assert_int_equal(params_load_text(&q, "resolved", buf, len, err, sizeof err),
                   NRD_OK);
  for (int i = 0; i < params_schema_size(); i++)
    assert_true(params_value_equal(&p, &q, i));
  free(buf);
  params_free(&p);
  params_free(&q);
}

static void test_combination_errors(void **state) {
  (void)state;
  expect_file_error("time:\n  T: 5\n  t_min: 5\n",
                    "3:10: key 'time.t_min': must be < time.T (5) (got 5)");
  expect_file_error("time:\n  t_min: 20\n",
                    "2:10: key 'time.t_min': must be < time.T (10) (got 20)");
  expect_file_error("time:\n  t_min: 0\n  spacing: log\n",
                    "2:10: key 'time.t_min': must be > 0 with time.spacing: "
                    "log (got 0)");
  /* t_min left at its default: the key that was set is blamed */
  expect_file_error("run:\n  seed: 1\ntime:\n  spacing: log\n",
                    "4:12: key 'time.spacing': 'log' needs time.t_min > 0 "
                    "(time.t_min is 0)");
  expect_file_error("grid:\n  dimension: [2, 3]\nforward:\n  u: diagonal\n"
                    "  u_diagonal: [1, 4]\n",
                    "5:15: key 'forward.u_diagonal': has 2 elements but "
                    "grid.dimension element 2 is 3 (forward.u: diagonal "
                    "needs one per dimension)");
  expect_file_error("grid:\n  dimension: [2]\nforward:\n  u: diagonal\n",
                    "4:6: key 'forward.u': 'diagonal' needs "
                    "forward.u_diagonal, one positive number per dimension "
                    "(e.g. [1, 4])");
  expect_file_error("forward:\n  u: file\n",
                    "2:6: key 'forward.u': 'file' needs forward.u_file, the "
                    "HDF5 file holding U");
  expect_file_error("forward:\n  q: file\n  q_file: \"\"\n",
                    "2:6: key 'forward.q': 'file' needs forward.q_file, the "
                    "HDF5 file holding Q");
  expect_file_error("forward:\n  u_min: 2\n  u_max: 1.5\n",
                    "3:10: key 'forward.u_max': must be >= forward.u_min (2) "
                    "(got 1.5)");
  expect_file_error("forward:\n  u_min: 5\n",
                    "2:10: key 'forward.u_min': must be <= forward.u_max (4) "
                    "(got 5)");
  expect_file_error("data:\n  classes: 3\n  direction: slowest\n",
                    "3:14: key 'data.direction': 'slowest' needs "
                    "data.classes = 2 (got 3)");
  expect_file_error("experiment:\n  protocol: [speciation]\n",
                    "2:13: key 'experiment.protocol': 'speciation' needs "
                    "experiment.branch_times, the forward times in "
                    "(time.t_min, time.T] at which to clone");
  expect_file_error("experiment:\n  protocol: [speciation]\n"
                    "  branch_times: [1, 12]\n",
                    "3:17: key 'experiment.branch_times': element 2 must be "
                    "<= time.T (10) (got 12)");
  expect_file_error("time:\n  t_min: 1\nexperiment:\n  protocol: "
                    "[speciation]\n  branch_times: [1]\n",
                    "5:17: key 'experiment.branch_times': element 1 must be "
                    "> time.t_min (1) (got 1)");
  expect_file_error("experiment:\n  protocol: [uturn]\n  uturn_times: [0]\n",
                    "3:16: key 'experiment.uturn_times': element 1 must be in "
                    "(time.t_min, time.T] (got 0)");
  expect_file_error("integrator:\n  scheme: ode_heun\nexperiment:\n"
                    "  protocol: [uturn]\n  uturn_times: [1]\n",
                    "4:13: key 'experiment.protocol': 'uturn' needs the "
                    "reverse SDE (integrator.scheme euler or exponential), "
                    "not the deterministic ode_heun");
  expect_file_error("experiment:\n  protocol: [forward]\n"
                    "  reference_times: [10]\n",
                    "3:20: key 'experiment.reference_times': element 1 must "
                    "be in [time.t_min, time.T) (got 10)");
  expect_file_error("experiment:\n  protocol: [generate, collapse]\n",
                    "2:13: key 'experiment.protocol': 'collapse' needs every "
                    "grid.n_train > 0 (element 1 is 0)");
  expect_file_error("grid:\n  n_train: [5, 0]\nexperiment:\n  protocol: "
                    "[collapse]\n",
                    "2:12: key 'grid.n_train': element 2 must be > 0 when "
                    "experiment.protocol contains collapse (got 0)");
  /* without speciation the branch times are not checked */
  nrd_params p;
  params_init_defaults(&p);
  load_text(&p, "experiment:\n  branch_times: [100]\n", 0, NULL);
  params_free(&p);
}

static void test_unknown_names_suggest_the_nearest(void **state) {
  (void)state;
  expect_file_error("run:\n  seed: 1\ngrid:\n  dimesion: [4]\n",
                    "4:3: unknown key 'grid.dimesion'; did you mean "
                    "'grid.dimension'?");
  expect_file_error("grid:\n  particles: 5\n",
                    "2:3: unknown key 'grid.particles'; did you mean "
                    "'ensemble.particles'?");
  expect_file_error("time:\n  tmin: 1\n",
                    "2:3: unknown key 'time.tmin'; did you mean "
                    "'time.t_min'?");
  expect_file_error("grid:\n  frobnicate: 1\n",
                    "2:3: unknown key 'grid.frobnicate'; the keys of 'grid' "
                    "are dimension, separation, strength, n_train");
  expect_file_error("gird:\n  dimension: [4]\n",
                    "1:1: unknown section 'gird'; did you mean 'grid'?");
  expect_file_error("run:\n  seed: 1\nparticles: 5\n",
                    "3:1: unknown section 'particles'; did you mean "
                    "'ensemble.particles'? (keys go inside their section: "
                    "'ensemble:' then an indented 'particles: ...')");
  expect_file_error("mesh:\n  x: 1\n",
                    "1:1: unknown section 'mesh'; the sections are run, grid, "
                    "forward, data, ensemble, time, integrator, experiment, "
                    "output, checkpoint");
  char *a[] = {"grid.dimesion=[4]"};
  expect_override_error(1, a,
                        "-P grid.dimesion=[4]: unknown key 'grid.dimesion'; "
                        "did you mean 'grid.dimension'?");
  char *b[] = {"seed=1"};
  expect_override_error(1, b,
                        "-P seed=1: unknown key 'seed'; did you mean "
                        "'run.seed'?");
  char *c[] = {"output.fiel=x.h5"};
  expect_override_error(1, c,
                        "-P output.fiel=x.h5: unknown key 'output.fiel'; did "
                        "you mean 'output.file'?");
}

static void test_missing_or_unreadable_file(void **state) {
  (void)state;
  char path[256], err[512], want[600];
  snprintf(path, sizeof path, "%s/does-not-exist.yml", dir);
  nrd_params p;
  params_init_defaults(&p);
  assert_int_equal(params_load(&p, path, 0, NULL, err, sizeof err),
                   NRD_ERR_INPUT);
  snprintf(want, sizeof want, "%s: cannot open parameter file: %s", path,
           strerror(ENOENT));
  assert_string_equal(err, want);
  assert_int_equal(params_load(&p, dir, 0, NULL, err, sizeof err),
                   NRD_ERR_INPUT);
  snprintf(want, sizeof want, "%s: cannot read parameter file: %s", dir,
           strerror(EISDIR));
  assert_string_equal(err, want);
  params_free(&p);
}

/* ------------------------------------------------------------ overrides */

static void test_overrides(void **state) {
  (void)state;
  nrd_params p;
  params_init_defaults(&p);
  char *over[] = {"grid.dimension=[8,16]",
                  "grid.strength=[0, -0.5, 1e-3]",
                  "time.T=2.5",
                  "run.seed=0",
                  "output.file=run 7.h5",
                  "output.every=3",
                  "output.every=4", /* the last one wins */
                  "experiment.protocol=[forward]",
                  "forward.u_dataset=\"a=b # c\""};
  char err[512];
  assert_int_equal(params_load(&p, NULL, 9, over, err, sizeof err), NRD_OK);
  assert_int_equal(p.grid.dimension.n, 2);
  assert_int_equal(p.grid.dimension.v[1], 16);
  assert_int_equal(p.grid.strength.n, 3);
  assert_true(p.grid.strength.v[1] == -0.5 && p.grid.strength.v[2] == 1e-3);
  assert_true(p.time.T == 2.5);
  assert_int_equal(p.run.seed, 0);
  assert_string_equal(p.output.file, "run 7.h5");
  assert_int_equal(p.output.every, 4);
  assert_string_equal(p.experiment.protocol.v[0], "forward");
  assert_string_equal(p.forward.u_dataset, "a=b # c");
  assert_null(p.source_file);
  assert_int_equal(p.sources[entry("time.T")], PSRC_OVERRIDE);
  assert_int_equal(p.sources[entry("time.steps")], PSRC_DEFAULT);
  params_free(&p);
}

static void test_bad_overrides(void **state) {
  (void)state;
  char *a[] = {"grid.dimension=abc"};
  expect_override_error(1, a,
                        "-P grid.dimension=abc: key 'grid.dimension': must "
                        "be a list like [16] (got 'abc')");
  char *b[] = {"grid.dimension=[8, abc]"};
  expect_override_error(1, b,
                        "-P grid.dimension=[8, abc]: key 'grid.dimension': "
                        "element 2 must be an integer (got 'abc')");
  char *c[] = {"grid.dimension"};
  expect_override_error(1, c,
                        "-P grid.dimension: expected SECTION.KEY=VALUE (e.g. "
                        "-P grid.dimension=[8,16])");
  char *d[] = {"time.T="};
  expect_override_error(1, d,
                        "-P time.T=: key 'time.T': has no value (give one, or "
                        "remove the key to use the default 10.0)");
  char *e[] = {"grid.dimension=[8,"};
  expect_override_error(1, e,
                        "-P grid.dimension=[8,: YAML syntax error: did not "
                        "find expected node content (while parsing a flow "
                        "node)");
  char *f[] = {"time.steps=0"};
  expect_override_error(1, f,
                        "-P time.steps=0: key 'time.steps': must be >= 1 (got "
                        "0)");
  char *g[] = {"forward.u=diagonal"};
  expect_override_error(1, g,
                        "-P forward.u=diagonal: key 'forward.u': 'diagonal' "
                        "needs forward.u_diagonal, one positive number per "
                        "dimension (e.g. [1, 4])");
  char *h[] = {"run.seed={a: 1}"};
  expect_override_error(1, h,
                        "-P run.seed={a: 1}: key 'run.seed': must be a single "
                        "value, not a mapping");
  /* a good override after a bad one is never reached; a bad one after good
   * ones is still reported */
  char *k[] = {"time.T=5", "time.t_min=6"};
  expect_override_error(2, k,
                        "-P time.t_min=6: key 'time.t_min': must be < time.T "
                        "(5) (got 6)");
}

/* A -P value is exactly one YAML value on one line: what a YAML reader would
 * drop after it (a second value, a stray bracket, a comment, a second
 * document or mapping on a new line) is refused, not ignored. */
static void test_override_is_one_whole_value(void **state) {
  (void)state;
  const char *after = " (a -P value is exactly one YAML value: a number, a "
                      "word, \"quoted text\" or a list [a, b])";
  const char *lines = " (a -P value is one YAML value on one line; give each "
                      "key its own -P)";
  struct {
    char *override;
    const char *message, *advice;
  } cases[] = {
      {"grid.strength=[0] [0.75, 2]",
       "key 'grid.strength': text after the value: '[0.75, 2]'", after},
      {"output.file=\"a.h5\" junk",
       "key 'output.file': text after the value: 'junk'", after},
      {"output.file='a.h5'x", "key 'output.file': text after the value: 'x'",
       after},
      {"grid.strength=[2]]", "key 'grid.strength': text after the value: ']'",
       after},
      {"grid.dimension={a: 1} {b: 2}",
       "key 'grid.dimension': text after the value: '{b: 2}'", after},
      {"grid.strength=[1] 0123456789012345678901234567890123456789xyz  ",
       "key 'grid.strength': text after the value: "
       "'0123456789012345678901234567890123456789...'",
       after},
      {"time.T=5 # five",
       "key 'time.T': a comment after the value: '# five' (quote the value if "
       "'#' is part of it)",
       ""},
      {"output.file=run #1.h5",
       "key 'output.file': a comment after the value: '#1.h5' (quote the "
       "value if '#' is part of it)",
       ""},
      {"time.T=5\nsteps: 3",
       "key 'time.T': a line break in the value, then 'steps: 3'", lines},
      {"grid.dimension=[5]\nsteps: 3",
       "key 'grid.dimension': a line break in the value, then 'steps: 3'",
       lines},
      {"time.T=5\n---\n6",
       "key 'time.T': a line break in the value, then '---'", lines},
      {"time.T=5\r\n...", "key 'time.T': a line break in the value, then '...'",
       lines},
      {"grid.dimension=[4,\n8]",
       "key 'grid.dimension': a line break in the value, then '8]'", lines},
      {"output.file=a\xe2\x80\xa8"
       "b",
       "key 'output.file': a line break in the value, then 'b'", lines},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    char want[1024], shown[256];
    /* the override as the message shows it: line breaks escaped */
    size_t n = 0;
    for (const char *t = cases[k].override; *t && n + 8 < sizeof shown; t++) {
      if (*t == '\n' || *t == '\r') {
        shown[n++] = '\\';
        shown[n++] = *t == '\n' ? 'n' : 'r';
      } else if (strncmp(t, "\xe2\x80\xa8", 3) == 0) {
        memcpy(shown + n, "\\u2028", 6);
        n += 6;
        t += 2;
      } else {
        shown[n++] = *t;
      }
    }
    shown[n] = '\0';
    snprintf(want, sizeof want, "-P %s: %s%s", shown, cases[k].message,
             cases[k].advice);
    expect_override_error(1, &cases[k].override, want);
  }
  /* what stays valid: blanks around the value, a blank line at the end, an
   * explicit document start, block lists, '#' inside a word or quotes */
  nrd_params p;
  params_init_defaults(&p);
  char *good[] = {"grid.dimension= [4] ",    "time.T=5\n",
                  "time.steps=--- 20",       "grid.separation=- 0.5",
                  "output.file=run#1.h5",    "forward.u_dataset=\"a # b\"",
                  "checkpoint.stop_file=é ü"};
  char err[512];
  assert_int_equal(params_load(&p, NULL, 7, good, err, sizeof err), NRD_OK);
  assert_true(p.grid.dimension.n == 1 && p.grid.dimension.v[0] == 4);
  assert_true(p.time.T == 5);
  assert_int_equal(p.time.steps, 20);
  assert_true(p.grid.separation.n == 1 && p.grid.separation.v[0] == 0.5);
  assert_string_equal(p.output.file, "run#1.h5");
  assert_string_equal(p.forward.u_dataset, "a # b");
  assert_string_equal(p.checkpoint.stop_file, "é ü");
  params_free(&p);
}

/* A message is one line of printable UTF-8 whatever the input held, and a
 * very long override is cut so that what is wrong with it still shows. */
static void test_messages_are_one_line(void **state) {
  (void)state;
  char *a[] = {"time.T\n=5"};
  expect_override_error(1, a,
                        "-P time.T\\n=5: unknown key 'time.T\\n'; did you "
                        "mean 'time.T'?");
  char *b[] = {"output.fil\x01\xff=x"};
  expect_override_error(1, b,
                        "-P output.fil\\x01\\xFF=x: unknown key "
                        "'output.fil\\x01\\xFF'; did you mean "
                        "'output.file'?");
  expect_file_error("time:\n  T: \"a\\tb\\u2028c\\x7f\\ufeff\"\n",
                    "2:6: key 'time.T': must be a number, not the quoted "
                    "text 'a\\tb\\u2028c\\x7F\\uFEFF' (remove the quotes)");
  char long_value[400], want[400];
  snprintf(long_value, sizeof long_value, "time.steps=[");
  while (strlen(long_value) < 300)
    strcat(long_value, "1, ");
  strcat(long_value, "1]");
  char *c[] = {long_value};
  snprintf(want, sizeof want,
           "-P %.200s... (%zu bytes in all): key 'time.steps': must be a "
           "single value, not a list",
           long_value, strlen(long_value));
  expect_override_error(1, c, want);
}

/* params_load_text: YAML in memory, named in every message and in
 * source_file as the caller says (nrdiff-post: the run file's dataset). */
static void test_load_text(void **state) {
  (void)state;
  const char *name = "runs/a.h5:/parameters/resolved";
  nrd_params p;
  params_init_defaults(&p);
  char err[512];
  /* len bytes, no terminating NUL needed: the "9" after them is not read */
  const char *text = "time:\n  steps: 77\n  T: 9";
  assert_int_equal(
      params_load_text(&p, name, text, strlen(text) - 6, err, sizeof err),
      NRD_OK);
  assert_int_equal(p.time.steps, 77);
  assert_true(p.time.T == 10);
  assert_string_equal(p.source_file, name);
  assert_int_equal(p.sources[entry("time.steps")], PSRC_FILE);
  assert_int_equal(p.source_lines[entry("time.steps")], 2);
  /* the same text as a file gives the same values */
  nrd_params f;
  params_init_defaults(&f);
  load_text(&f, "time:\n  steps: 77\n", 0, NULL);
  assert_same_values(&p, &f);
  params_free(&f);

  struct {
    const char *text;
    size_t len;
    const char *message;
  } bad[] = {
      {"time:\n  steps: 0\n", 0,
       "2:10: key 'time.steps': must be >= 1 (got 0)"},
      {"time:\n  t_min: 20\n", 0,
       "2:10: key 'time.t_min': must be < time.T (10) (got 20)"},
      {"time:\n  T: [1\n", 0,
       "3:1: YAML syntax error: did not find expected ',' or ']' (while "
       "parsing a flow sequence at line 2, column 6)"},
      {"run:\n  seed: !!str 5\n", 0,
       "2:9: key 'run.seed': has a YAML tag ('!!str'); tags are not accepted: "
       "remove it"},
      {"run:\n  seed: 1\0\n", 15,
       "2:10: YAML syntax error: control characters are not allowed"},
      {"# nothing\n", 0,
       "1:1: the file holds no parameters; 'nrdiff --print-params > run.yml' "
       "writes a complete file (every key at its default) to edit"},
      {"", 0,
       "1:1: the file holds no parameters; 'nrdiff --print-params > run.yml' "
       "writes a complete file (every key at its default) to edit"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
    char want[600];
    snprintf(want, sizeof want, "%s:%s", name, bad[k].message);
    size_t len = bad[k].len ? bad[k].len : strlen(bad[k].text);
    assert_int_equal(
        params_load_text(&p, name, bad[k].text, len, err, sizeof err),
        NRD_ERR_INPUT);
    assert_string_equal(err, want);
    assert_int_equal(p.time.steps, 77); /* unchanged on failure */
  }
  /* no text at all is an empty file */
  assert_int_equal(params_load_text(&p, name, NULL, 0, err, sizeof err),
                   NRD_ERR_INPUT);
  assert_non_null(strstr(err, "holds no parameters"));
  params_free(&p);
}

/* A conflict is blamed on the key set last: here the override, not the
 * file line it contradicts. */
static void test_conflicts_blame_the_override(void **state) {
  (void)state;
  const char *path =
      write_file("diag.yml", "grid:\n  dimension: [2]\nforward:\n  u: "
                             "diagonal\n  u_diagonal: [1, 4]\n");
  nrd_params p;
  params_init_defaults(&p);
  char *over[] = {"grid.dimension=[3]"};
  char err[512], want[800];
  assert_int_equal(params_load(&p, path, 1, over, err, sizeof err),
                   NRD_ERR_INPUT);
  assert_string_equal(err, "-P grid.dimension=[3]: key 'grid.dimension': "
                           "element 1 is 3 but forward.u_diagonal has 2 "
                           "elements (forward.u: diagonal needs one per "
                           "dimension)");
  const char *tpath = write_file("time.yml", "time:\n  t_min: 4\n");
  char *T[] = {"time.T=3"};
  assert_int_equal(params_load(&p, tpath, 1, T, err, sizeof err),
                   NRD_ERR_INPUT);
  assert_string_equal(err,
                      "-P time.T=3: key 'time.T': must be > time.t_min (4) "
                      "(got 3)");
  const char *dpath = write_file("dir.yml", "data:\n  direction: slowest\n");
  char *classes[] = {"data.classes=4"};
  assert_int_equal(params_load(&p, dpath, 1, classes, err, sizeof err),
                   NRD_ERR_INPUT);
  assert_string_equal(err, "-P data.classes=4: key 'data.classes': must be 2 "
                           "with data.direction: slowest (got 4)");
  /* the file's own lines when nothing was overridden */
  assert_int_equal(params_load(&p, dpath, 0, NULL, err, sizeof err), NRD_OK);
  snprintf(want, sizeof want, "%s", dpath);
  assert_string_equal(p.source_file, want);
  params_free(&p);
}

/* A failed load leaves p as it was; nothing is created on disk. */
static void test_failure_leaves_params_and_disk_unchanged(void **state) {
  (void)state;
  nrd_params p;
  params_init_defaults(&p);
  char *over[] = {"time.steps=77"};
  char err[512];
  assert_int_equal(params_load(&p, NULL, 1, over, err, sizeof err), NRD_OK);
  const char *bad = write_file("bad.yml", "time:\n  steps: 0\n");
  int entries = count_entries(dir);
  assert_int_equal(params_load(&p, bad, 0, NULL, err, sizeof err),
                   NRD_ERR_INPUT);
  assert_int_equal(p.time.steps, 77);
  assert_int_equal(p.sources[entry("time.steps")], PSRC_OVERRIDE);
  assert_int_equal(count_entries(dir), entries);
  /* a tiny or missing message buffer is fine */
  char tiny[8];
  assert_int_equal(params_load(&p, bad, 0, NULL, tiny, sizeof tiny),
                   NRD_ERR_INPUT);
  assert_int_equal(strlen(tiny), 7);
  assert_int_equal(params_load(&p, bad, 0, NULL, NULL, 0), NRD_ERR_INPUT);
  params_free(&p);
}

/* ------------------------------------------- resolved dump, pack/unpack */

/* Values chosen to break naive printing: shortest round trip digits,
 * subnormals, negative zero (read as 0), YAML-special strings. */
static void load_awkward(nrd_params *p) {
  char *over[] = {
      "grid.separation=[0.1, 0.3333333333333333, 1e-300, 5e-324, "
      "1.7976931348623157e308]",
      "grid.strength=[-0.0, 1e6, -999999.99999999988]",
      "time.T=0.30000000000000004",
      "time.t_min=2.2250738585072014e-308",
      "data.sigma=123456789012345678",
      "output.file=\"quote\\\" back\\\\slash\\nnew\\tline \\x01 "
      "\\u2028 \\u00e9 \\U0001F600 # not a comment: [x]\"",
      "forward.u_file=\"null\"",
      "forward.q_dataset=\"- dash\"",
      "experiment.branch_times=[]",
      "run.seed=4294967295",
      "ensemble.particles=1000000000000",
  };
  char err[512];
  int rc =
      params_load(p, NULL, sizeof over / sizeof *over, over, err, sizeof err);
  if (rc != NRD_OK) fail_msg("%s", err);
}

static void test_resolved_dump_round_trips(void **state) {
  (void)state;
  nrd_params p, back;
  params_init_defaults(&p);
  params_init_defaults(&back);
  load_awkward(&p);
  assert_false(signbit(p.grid.strength.v[0])); /* -0.0 was read as 0 */
  assert_true(p.grid.separation.v[3] > 0);     /* the subnormal survived */
  assert_string_equal(p.forward.u_file, "null");
  char *text = print_to_string(&p);
  assert_non_null(strstr(text, "  T: 0.30000000000000004  # override\n"));
  assert_non_null(strstr(text, "  steps: 1000  # default\n"));
  assert_non_null(strstr(text, "# parameter file: (none)\n"));
  assert_non_null(strstr(text, "  strength: [0.0, 1000000.0, "));
  load_text(&back, text, 0, NULL);
  assert_same_values(&p, &back);

  /* from a file: the comment names the file and line */
  nrd_params q;
  params_init_defaults(&q);
  char *over[] = {"time.steps=5"};
  load_text(&q, good_file, 1, over);
  char *qtext = print_to_string(&q);
  char want[512];
  snprintf(want, sizeof want, "  seed: 4294967295  # file %s:3\n",
           q.source_file);
  assert_non_null(strstr(qtext, want));
  assert_non_null(strstr(qtext, "  steps: 5  # override\n"));
  params_free(&q);
  free(qtext);
  params_free(&p);
  params_free(&back);
  free(text);
}

static void test_pack_unpack(void **state) {
  (void)state;
  nrd_params p, q;
  params_init_defaults(&p);
  char *over[] = {"time.steps=5", "grid.strength=[-0.0, 0.1]",
                  "output.file=\"a\\nb \\x01 \\u00e9\""};
  load_text(&p, good_file, 3, over);
  assert_false(signbit(p.grid.strength.v[0])); /* -0.0 was read as 0 */
  /* the pack is exact, even for a negative zero no file can give */
  p.grid.strength.v[0] = -0.0;
  char *buf;
  size_t len;
  assert_int_equal(params_pack(&p, &buf, &len), NRD_OK);
  params_init_defaults(&q);
  assert_int_equal(params_unpack(&q, buf, len), NRD_OK);
  assert_same_values(&p, &q);
  assert_same_provenance(&p, &q);
  assert_true(signbit(q.grid.strength.v[0]));
  /* packing the copy gives the same bytes */
  char *buf2;
  size_t len2;
  assert_int_equal(params_pack(&q, &buf2, &len2), NRD_OK);
  assert_int_equal(len, len2);
  assert_memory_equal(buf, buf2, len);
  free(buf2);

  /* every truncation, and damaged bytes, are refused without touching q */
  for (size_t n = 0; n < len; n++)
    assert_int_equal(params_unpack(&q, buf, n), NRD_ERR_INPUT);
  char *damaged = malloc(len);
  for (size_t at = 0; at < len; at += 7) {
    memcpy(damaged, buf, len);
    damaged[at] = damaged[at] == '\n' ? 'x' : '\n';
    int rc = params_unpack(&q, damaged, len);
    assert_true(rc == NRD_OK || rc == NRD_ERR_INPUT);
  }
  free(damaged);
  assert_int_equal(params_unpack(&q, buf, len), NRD_OK);
  assert_same_values(&p, &q);
  assert_int_equal(params_unpack(&q, "nonsense", 8), NRD_ERR_INPUT);
  assert_int_equal(params_unpack(&q, NULL, 0), NRD_ERR_INPUT);
  assert_same_values(&p, &q);
  free(buf);

  /* defaults only: no source file, all sources default */
  nrd_params d, e;
  params_init_defaults(&d);
  params_init_defaults(&e);
  load_awkward(&d);
  assert_int_equal(params_pack(&d, &buf, &len), NRD_OK);
  assert_int_equal(params_unpack(&e, buf, len), NRD_OK);
  assert_same_values(&d, &e);
  assert_same_provenance(&d, &e);
  free(buf);
  params_free(&d);
  params_free(&e);
  params_free(&p);
  params_free(&q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_schema_accessors),
      cmocka_unit_test(test_value_yaml),
      cmocka_unit_test(test_enum_order_matches_header),
      cmocka_unit_test(test_print_defaults_round_trip),
      cmocka_unit_test(test_good_file_with_lists),
      cmocka_unit_test(test_sources_recorded),
      cmocka_unit_test(test_empty_and_comment_only_files),
      cmocka_unit_test(test_yaml_syntax_errors),
      cmocka_unit_test(test_structure_errors),
      cmocka_unit_test(test_type_errors),
      cmocka_unit_test(test_negative_zero_stored_as_zero),
      cmocka_unit_test(test_leading_zeros_refused),
      cmocka_unit_test(test_tags_refused),
      cmocka_unit_test(test_range_errors),
      cmocka_unit_test(test_combination_errors),
      cmocka_unit_test(test_data_source_rules),
      cmocka_unit_test(test_unknown_names_suggest_the_nearest),
      cmocka_unit_test(test_missing_or_unreadable_file),
      cmocka_unit_test(test_overrides),
      cmocka_unit_test(test_bad_overrides),
      cmocka_unit_test(test_override_is_one_whole_value),
      cmocka_unit_test(test_messages_are_one_line),
      cmocka_unit_test(test_load_text),
      cmocka_unit_test(test_conflicts_blame_the_override),
      cmocka_unit_test(test_failure_leaves_params_and_disk_unchanged),
      cmocka_unit_test(test_resolved_dump_round_trips),
      cmocka_unit_test(test_pack_unpack),
  };
  return cmocka_run_group_tests_name("params", tests, setup, teardown);
}
