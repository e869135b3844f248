/* Run parameters (see params.h).
 *
 * The schema table is the single source of truth: YAML parsing, type and
 * range checks, --print-params, the resolved dump and the MPI pack format all
 * walk it.  YAML is read with libyaml's document API.  This module reads the
 * parameter file and nothing else: it never prints (except into the FILE it
 * is handed), never exits and never creates a file; errors come back as one
 * message in the caller's buffer.
 *
 * Numbers are parsed and printed with strtod/snprintf, so the program must
 * run in the "C" locale (it never calls setlocale). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup */
#endif
#include "config/params.h"
#include "util/error.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

/* run.seed reaches 2^32 - 1 and ensemble.particles 10^12. */
_Static_assert(sizeof(long) >= 8, "nrdiff needs a 64-bit long (LP64)");

/* ------------------------------------------------------------------ schema */

typedef enum {
  TYPE_INT,
  TYPE_DOUBLE,
  TYPE_STRING,
  TYPE_ENUM,
  TYPE_INT_LIST,
  TYPE_DOUBLE_LIST,
  TYPE_STRING_LIST,
} value_type;

typedef struct {
  const char *name; /* "section.key": the public name */
  value_type type;
  const char *default_yaml;   /* default value written as YAML */
  bool has_min, has_max;      /* bounds of a number, or of each list element */
  bool min_exclusive;         /* "> min" rather than ">= min" */
  double min, max;            /* exact for every integer bound used here */
  int min_length;             /* lists: elements; strings: characters */
  const char *const *choices; /* enum / list words, NULL-terminated, in the
                                 order of the matching C enum */
  bool distinct;              /* list elements may not repeat */
  const char *unit;           /* NULL when dimensionless */
  const char *doc;            /* what the value means, one sentence */
  bool restartable;           /* may change when a run is restarted */
  size_t offset;              /* of the value inside nrd_params */
} param_spec;

#define FIELD(member) .offset = offsetof(nrd_params, member)
#define AT_LEAST(x) .has_min = true, .min = (x)
#define ABOVE(x) .has_min = true, .min_exclusive = true, .min = (x)
#define AT_MOST(x) .has_max = true, .max = (x)

static const char *const u_choices[] = {"isotropic", "diagonal", "geometric",
                                        "file", NULL};
static const char *const q_choices[] = {"none", "random", "optimal", "file",
                                        NULL};
static const char *const covariance_choices[] = {"isotropic", "stationary",
                                                 NULL};
static const char *const direction_choices[] = {"ones", "random", "slowest",
                                                "fastest", NULL};
static const char *const spacing_choices[] = {"uniform", "log", NULL};
static const char *const scheme_choices[] = {"euler", "exponential", "ode_heun",
                                             NULL};
static const char *const start_choices[] = {"stationary", "exact", NULL};
static const char *const precision_choices[] = {"float64", "float32", NULL};
static const char *const overwrite_choices[] = {"false", "true", NULL};
static const char *const uturn_data_choices[] = {"mixture", "train", NULL};
static const char *const protocol_choices[] = {
    "generate", "speciation", "collapse", "uturn", "forward", NULL};

static const param_spec schema[] = {
    {.name = "run.seed",
     .type = TYPE_INT,
     .default_yaml = "12345",
     AT_LEAST(0),
     AT_MOST(4294967295.0),
     .doc = "master key of the Philox random streams; results do not depend "
            "on the number of ranks",
     FIELD(run.seed)},
    {.name = "run.max_wall_time",
     .type = TYPE_DOUBLE,
     .default_yaml = "0.0",
     AT_LEAST(0),
     .unit = "s",
     .doc = "wall-clock budget after which the run stops cleanly; 0 = "
            "unlimited",
     .restartable = true,
     FIELD(run.max_wall_time)},
    {.name = "run.blas_threads",
     .type = TYPE_INT,
     .default_yaml = "1",
     AT_LEAST(1),
     AT_MOST(256),
     .doc = "OpenBLAS threads per MPI rank",
     .restartable = true,
     FIELD(run.blas_threads)},
    {.name = "run.precision",
     .type = TYPE_ENUM,
     .default_yaml = "float64",
     .choices = precision_choices,
     .doc = "precision of the empirical score's two large products (logits "
            "and weighted means; n_train > 0): float32 runs them in SGEMM, "
            "about twice as fast, everything else stays float64",
     FIELD(run.precision)},

    {.name = "grid.dimension",
     .type = TYPE_INT_LIST,
     .default_yaml = "[16]",
     AT_LEAST(1),
     AT_MOST(1048576),
     .min_length = 1,
     .doc = "dimensions d of the data space; the run covers every "
            "combination of the grid lists",
     FIELD(grid.dimension)},
    {.name = "grid.separation",
     .type = TYPE_DOUBLE_LIST,
     .default_yaml = "[1.0]",
     AT_LEAST(0),
     .min_length = 1,
     .doc = "class separation |mu|^2/d (1 = Biroli's means m = (1, ..., 1))",
     FIELD(grid.separation)},
    {.name = "grid.strength",
     .type = TYPE_DOUBLE_LIST,
     .default_yaml = "[0.0]",
     AT_LEAST(-1e6),
     AT_MOST(1e6),
     .min_length = 1,
     .doc = "strength g of the non-reversible perturbation, A = (I + gQ)U "
            "(0 = reversible)",
     FIELD(grid.strength)},
    {.name = "grid.n_train",
     .type = TYPE_INT_LIST,
     .default_yaml = "[0]",
     AT_LEAST(0),
     AT_MOST(100000000),
     .min_length = 1,
     .doc = "training points of the empirical score; 0 = exact mixture score",
     FIELD(grid.n_train)},

    {.name = "forward.u",
     .type = TYPE_ENUM,
     .default_yaml = "isotropic",
     .choices = u_choices,
     .doc = "symmetric matrix U of the drift A = (I + gQ)U: u_scale * I, "
            "diag(u_diagonal), eigenvalues spaced geometrically from u_min to "
            "u_max, or read from u_file",
     FIELD(forward.u)},
    {.name = "forward.u_scale",
     .type = TYPE_DOUBLE,
     .default_yaml = "1.0",
     ABOVE(0),
     .doc = "U = u_scale * I when forward.u is isotropic",
     FIELD(forward.u_scale)},
    {.name = "forward.u_diagonal",
     .type = TYPE_DOUBLE_LIST,
     .default_yaml = "[]",
     ABOVE(0),
     .doc = "diagonal of U when forward.u is diagonal, one entry per "
            "dimension",
     FIELD(forward.u_diagonal)},
    {.name = "forward.u_min",
     .type = TYPE_DOUBLE,
     .default_yaml = "1.0",
     ABOVE(0),
     .doc = "smallest eigenvalue of U when forward.u is geometric",
     FIELD(forward.u_min)},
    {.name = "forward.u_max",
     .type = TYPE_DOUBLE,
     .default_yaml = "4.0",
     ABOVE(0),
     .doc = "largest eigenvalue of U when forward.u is geometric; must be >= "
            "forward.u_min",
     FIELD(forward.u_max)},
    {.name = "forward.u_file",
     .type = TYPE_STRING,
     .default_yaml = "\"\"",
     .doc = "HDF5 file holding the d x d matrix U when forward.u is file",
     FIELD(forward.u_file)},
    {.name = "forward.u_dataset",
     .type = TYPE_STRING,
     .default_yaml = "\"U\"",
     .min_length = 1,
     .doc = "name of the dataset holding U inside forward.u_file",
     FIELD(forward.u_dataset)},
    {.name = "forward.q",
     .type = TYPE_ENUM,
     .default_yaml = "none",
     .choices = q_choices,
     .doc = "antisymmetric matrix Q of A = (I + gQ)U: none (reversible), "
            "random, optimal for U, or read from q_file",
     FIELD(forward.q)},
    {.name = "forward.q_file",
     .type = TYPE_STRING,
     .default_yaml = "\"\"",
     .doc = "HDF5 file holding the d x d matrix Q when forward.q is file",
     FIELD(forward.q_file)},
    {.name = "forward.q_dataset",
     .type = TYPE_STRING,
     .default_yaml = "\"Q\"",
     .min_length = 1,
     .doc = "name of the dataset holding Q inside forward.q_file",
     FIELD(forward.q_dataset)},

    {.name = "data.classes",
     .type = TYPE_INT,
     .default_yaml = "2",
     AT_LEAST(2),
     AT_MOST(1024),
     .doc = "number of equally weighted Gaussian classes",
     FIELD(data.classes)},
    {.name = "data.covariance",
     .type = TYPE_ENUM,
     .default_yaml = "isotropic",
     .choices = covariance_choices,
     .doc = "within-class covariance: isotropic, or proportional to the "
            "stationary covariance U^-1 of the forward process",
     FIELD(data.covariance)},
    {.name = "data.sigma",
     .type = TYPE_DOUBLE,
     .default_yaml = "1.0",
     AT_LEAST(0),
     .doc = "within-class standard deviation",
     FIELD(data.sigma)},
    {.name = "data.direction",
     .type = TYPE_ENUM,
     .default_yaml = "ones",
     .choices = direction_choices,
     .doc = "direction of the class means: (1, ..., 1), random, or the "
            "slowest / fastest eigenvector of U (these two need "
            "data.classes = 2)",
     FIELD(data.direction)},

    {.name = "ensemble.particles",
     .type = TYPE_INT,
     .default_yaml = "1024",
     AT_LEAST(1),
     AT_MOST(1e12),
     .doc = "particles (independent trajectories) per grid point",
     FIELD(ensemble.particles)},
    {.name = "ensemble.block_size",
     .type = TYPE_INT,
     .default_yaml = "256",
     AT_LEAST(1),
     AT_MOST(1e7),
     .doc = "particles per block; blocks are the unit of work and of "
            "reduction, fixed whatever the number of ranks",
     FIELD(ensemble.block_size)},

    {.name = "time.T",
     .type = TYPE_DOUBLE,
     .default_yaml = "10.0",
     ABOVE(0),
     .doc = "forward time at which the reverse process starts",
     FIELD(time.T)},
    {.name = "time.t_min",
     .type = TYPE_DOUBLE,
     .default_yaml = "0.0",
     AT_LEAST(0),
     .doc = "forward time at which the reverse process stops; must be < "
            "time.T",
     FIELD(time.t_min)},
    {.name = "time.steps",
     .type = TYPE_INT,
     .default_yaml = "1000",
     AT_LEAST(1),
     AT_MOST(1e9),
     .doc = "integration steps from time.T down to time.t_min",
     FIELD(time.steps)},
    {.name = "time.spacing",
     .type = TYPE_ENUM,
     .default_yaml = "uniform",
     .choices = spacing_choices,
     .doc = "spacing of the time steps; log needs time.t_min > 0",
     FIELD(time.spacing)},

    {.name = "integrator.scheme",
     .type = TYPE_ENUM,
     .default_yaml = "euler",
     .choices = scheme_choices,
     .doc = "reverse-time integrator: Euler-Maruyama or exponential "
            "integrator for the reverse SDE, or Heun for the probability-flow "
            "ODE",
     FIELD(integrator.scheme)},
    {.name = "integrator.start",
     .type = TYPE_ENUM,
     .default_yaml = "stationary",
     .choices = start_choices,
     .doc = "initial law of the reverse process: the stationary law, or the "
            "exact marginal at time.T",
     FIELD(integrator.start)},

    {.name = "experiment.protocol",
     .type = TYPE_STRING_LIST,
     .default_yaml = "[generate]",
     .choices = protocol_choices,
     .min_length = 1,
     .distinct = true,
     .doc = "measurements to make (doc/user-guide.md): generate (reverse "
            "process, time-resolved statistics), speciation (cloning at "
            "experiment.branch_times), collapse (needs grid.n_train > 0), "
            "uturn (at experiment.uturn_times), forward (noising paths, "
            "two-time correlations); speciation, collapse and uturn need a "
            "stochastic integrator.scheme",
     FIELD(experiment.protocol)},
    {.name = "experiment.branch_times",
     .type = TYPE_DOUBLE_LIST,
     .default_yaml = "[]",
     AT_LEAST(0),
     .doc = "forward times at which trajectories are cloned (speciation, "
            "collapse), each in (time.t_min, time.T]; snapped to the nearest "
            "step of the time grid (at most the last but one)",
     FIELD(experiment.branch_times)},
    {.name = "experiment.uturn_times",
     .type = TYPE_DOUBLE_LIST,
     .default_yaml = "[]",
     AT_LEAST(0),
     .doc = "noising times T_u of the U-turn protocol, each in "
            "(time.t_min, time.T]; snapped to the nearest step of the time "
            "grid",
     FIELD(experiment.uturn_times)},
    {.name = "experiment.uturn_data",
     .type = TYPE_ENUM,
     .default_yaml = "mixture",
     .choices = uturn_data_choices,
     .doc = "starting points x_0 of the U-turns: fresh samples of the data "
            "mixture, or the training points (needs grid.n_train > 0)",
     FIELD(experiment.uturn_data)},
    {.name = "experiment.reference_times",
     .type = TYPE_DOUBLE_LIST,
     .default_yaml = "[]",
     AT_LEAST(0),
     .doc = "earlier times s of the two-time correlations C(s, t) of the "
            "forward protocol, each in [time.t_min, time.T); empty = "
            "[time.t_min]",
     FIELD(experiment.reference_times)},

    {.name = "output.file",
     .type = TYPE_STRING,
     .default_yaml = "\"nrdiff.h5\"",
     .min_length = 1,
     .doc = "HDF5 output file; written as FILE.tmp and renamed when complete",
     FIELD(output.file)},
    {.name = "output.overwrite",
     .type = TYPE_ENUM,
     .default_yaml = "false",
     .choices = overwrite_choices,
     .doc = "whether an existing output.file may be replaced",
     .restartable = true,
     FIELD(output.overwrite)},
    {.name = "output.every",
     .type = TYPE_INT,
     .default_yaml = "10",
     AT_LEAST(1),
     .unit = "steps",
     .doc = "interval between written time slices of the statistics",
     FIELD(output.every)},
    {.name = "output.trajectories",
     .type = TYPE_INT,
     .default_yaml = "16",
     AT_LEAST(0),
     .doc = "number of sampled trajectories written to the output",
     FIELD(output.trajectories)},
    {.name = "output.trajectory_every",
     .type = TYPE_INT,
     .default_yaml = "10",
     AT_LEAST(1),
     .unit = "steps",
     .doc = "interval between written points of the sampled trajectories",
     FIELD(output.trajectory_every)},

    {.name = "checkpoint.every",
     .type = TYPE_INT,
     .default_yaml = "0",
     AT_LEAST(0),
     .unit = "steps",
     .doc = "write a checkpoint every this many steps; 0 = not by steps",
     .restartable = true,
     FIELD(checkpoint.every)},
    {.name = "checkpoint.interval",
     .type = TYPE_DOUBLE,
     .default_yaml = "1800.0",
     AT_LEAST(0),
     .unit = "s",
     .doc = "write a checkpoint when this much wall time has passed since the "
            "last one; 0 = not by time",
     .restartable = true,
     FIELD(checkpoint.interval)},
    {.name = "checkpoint.stop_file",
     .type = TYPE_STRING,
     .default_yaml = "\"nrdiff.stop\"",
     .min_length = 1,
     .doc = "when this file appears, the run writes a checkpoint and stops",
     .restartable = true,
     FIELD(checkpoint.stop_file)},
};

enum { N_PARAMS = (int)(sizeof schema / sizeof schema[0]) };

int params_schema_size(void) {
  return N_PARAMS;
}

const char *params_schema_name(int i) {
  return i >= 0 && i < N_PARAMS ? schema[i].name : NULL;
}

int params_schema_restartable(int i) {
  return i >= 0 && i < N_PARAMS && schema[i].restartable;
}

int params_schema_find(const char *name) {
  for (int i = 0; name && i < N_PARAMS; i++)
    if (strcmp(schema[i].name, name) == 0) return i;
  return -1;
}

/* Typed views of entry s inside p. */
static void *field_of(const nrd_params *p, const param_spec *s) {
  return (char *)p + s->offset;
}
#define LONG_AT(p, s) ((long *)field_of(p, s))
#define DOUBLE_AT(p, s) ((double *)field_of(p, s))
#define INT_AT(p, s) ((int *)field_of(p, s))
#define STRING_AT(p, s) ((char **)field_of(p, s))
#define ILIST_AT(p, s) ((nrd_ilist *)field_of(p, s))
#define DLIST_AT(p, s) ((nrd_dlist *)field_of(p, s))
#define SLIST_AT(p, s) ((nrd_slist *)field_of(p, s))

static int count_choices(const char *const *choices) {
  int n = 0;
  while (choices && choices[n])
    n++;
  return n;
}

static int find_choice(const char *const *choices, const char *word) {
  for (int i = 0; choices && choices[i]; i++)
    if (strcmp(choices[i], word) == 0) return i;
  return -1;
}

/* Section of a dotted name: its length before the dot. */
static size_t section_length(const char *name) {
  const char *dot = strchr(name, '.');
  return dot ? (size_t)(dot - name) : strlen(name);
}

static const char *key_part(const char *name) {
  const char *dot = strchr(name, '.');
  return dot ? dot + 1 : name;
}

static bool is_section(const char *section) {
  size_t n = strlen(section);
  for (int i = 0; i < N_PARAMS; i++)
    if (section_length(schema[i].name) == n &&
        strncmp(schema[i].name, section, n) == 0)
      return true;
  return false;
}

/* --------------------------------------------------------- value storage */

static void free_value(nrd_params *p, const param_spec *s) {
  switch (s->type) {
  case TYPE_STRING:
    free(*STRING_AT(p, s));
    *STRING_AT(p, s) = NULL;
    break;
  case TYPE_INT_LIST:
    free(ILIST_AT(p, s)->v);
    *ILIST_AT(p, s) = (nrd_ilist){0, NULL};
    break;
  case TYPE_DOUBLE_LIST:
    free(DLIST_AT(p, s)->v);
    *DLIST_AT(p, s) = (nrd_dlist){0, NULL};
    break;
  case TYPE_STRING_LIST: {
    nrd_slist *l = SLIST_AT(p, s);
    for (int k = 0; k < l->n; k++)
      free(l->v[k]);
    free(l->v);
    *l = (nrd_slist){0, NULL};
    break;
  }
  default:
    break;
  }
}

void params_free(nrd_params *p) {
  if (!p) return;
  for (int i = 0; i < N_PARAMS; i++)
    free_value(p, &schema[i]);
  free(p->source_file);
  free(p->sources);
  free(p->source_lines);
  memset(p, 0, sizeof *p);
}

int params_value_equal(const nrd_params *a, const nrd_params *b, int i) {
  if (i < 0 || i >= N_PARAMS) return 0;
  const param_spec *s = &schema[i];
  switch (s->type) {
  case TYPE_INT:
    return *LONG_AT(a, s) == *LONG_AT(b, s);
  case TYPE_DOUBLE:
    return memcmp(DOUBLE_AT(a, s), DOUBLE_AT(b, s), sizeof(double)) == 0;
  case TYPE_ENUM:
    return *INT_AT(a, s) == *INT_AT(b, s);
  case TYPE_STRING: {
    const char *x = *STRING_AT(a, s), *y = *STRING_AT(b, s);
    return (!x && !y) || (x && y && strcmp(x, y) == 0);
  }
  case TYPE_INT_LIST: {
    const nrd_ilist *x = ILIST_AT(a, s), *y = ILIST_AT(b, s);
    return x->n == y->n &&
           (x->n == 0 || memcmp(x->v, y->v, (size_t)x->n * sizeof *x->v) == 0);
  }
  case TYPE_DOUBLE_LIST: {
    const nrd_dlist *x = DLIST_AT(a, s), *y = DLIST_AT(b, s);
    return x->n == y->n &&
           (x->n == 0 || memcmp(x->v, y->v, (size_t)x->n * sizeof *x->v) == 0);
  }
  case TYPE_STRING_LIST: {
    const nrd_slist *x = SLIST_AT(a, s), *y = SLIST_AT(b, s);
    if (x->n != y->n) return 0;
    for (int k = 0; k < x->n; k++)
      if (strcmp(x->v[k], y->v[k]) != 0) return 0;
    return 1;
  }
  }
  return 0;
}

/* ------------------------------------------------------- number printing */

/* Shortest text that reads back as exactly x: integers in full ("1000000",
 * not "1e+06"), anything else with the fewest digits (at most 17). */
static const char *shortest_double(char buf[32], double x) {
  if (x == floor(x) && fabs(x) < 1e15) {
    snprintf(buf, 32, "%.0f", x);
    if (x == 0 && signbit(x)) snprintf(buf, 32, "-0");
    return buf;
  }
  for (int digits = 1; digits <= 17; digits++) {
    snprintf(buf, 32, "%.*g", digits, x);
    if (strtod(buf, NULL) == x) break;
  }
  return buf;
}

/* As shortest_double, but always reads as a floating-point number in YAML
 * ("1.0", not "1"), so a printed file shows which keys take decimals. */
static const char *yaml_double(char buf[32], double x) {
  shortest_double(buf, x);
  if (!strpbrk(buf, ".eEni")) strcat(buf, ".0");
  return buf;
}

/* ------------------------------------------------------------ suggestions */

/* Optimal-string-alignment distance: Levenshtein plus adjacent swaps, so
 * "gird" is one edit from "grid". */
static int edit_distance(const char *a, const char *b) {
  enum { MAXLEN = 63 };
  size_t n = strlen(a), m = strlen(b);
  if (n > MAXLEN || m > MAXLEN) return 1000;
  int d[MAXLEN + 1][MAXLEN + 1];
  for (size_t i = 0; i <= n; i++)
    d[i][0] = (int)i;
  for (size_t j = 0; j <= m; j++)
    d[0][j] = (int)j;
  for (size_t i = 1; i <= n; i++)
    for (size_t j = 1; j <= m; j++) {
      int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  return d[n][m];
}

/* Suggest only close names: a wild guess is worse than the list. */
static int suggestion_limit(const char *word) {
  int n = (int)strlen(word) / 3;
  return n < 2 ? 2 : n;
}

/* The schema entry closest to "section.key" (either part may be wrong), or
 * -1 if nothing is close.  A right key in the wrong section counts as one
 * edit, so "grid.particles" finds "ensemble.particles". */
static int nearest_key(const char *section, const char *key) {
  char dotted[160];
  snprintf(dotted, sizeof dotted, "%s.%s", section, key);
  int best = -1, best_distance = 1 << 30;
  for (int i = 0; i < N_PARAMS; i++) {
    const char *name = schema[i].name;
    bool same_section = section_length(name) == strlen(section) &&
                        strncmp(name, section, strlen(section)) == 0;
    int d = edit_distance(dotted, name);
    int d_key = edit_distance(key, key_part(name)) + (same_section ? 0 : 1);
    if (d_key < d) d = d_key;
    if (d < best_distance) best = i, best_distance = d;
  }
  return best_distance <= suggestion_limit(key) ? best : -1;
}

/* Append "a, b, c" (the keys of one section, or all sections) to out. */
static void list_section_keys(const char *section, char *out, size_t outlen) {
  size_t n = strlen(section), used = strlen(out);
  const char *sep = "";
  for (int i = 0; i < N_PARAMS && used < outlen; i++) {
    const char *name = schema[i].name;
    if (section_length(name) != n || strncmp(name, section, n) != 0) continue;
    snprintf(out + used, outlen - used, "%s%s", sep, key_part(name));
    used = strlen(out);
    sep = ", ";
  }
}

static void list_sections(char *out, size_t outlen) {
  size_t used = strlen(out);
  for (int i = 0; i < N_PARAMS && used < outlen; i++) {
    if (i > 0 &&
        section_length(schema[i].name) == section_length(schema[i - 1].name) &&
        strncmp(schema[i].name, schema[i - 1].name,
                section_length(schema[i].name)) == 0)
      continue;
    snprintf(out + used, outlen - used, "%s%.*s", i ? ", " : "",
             (int)section_length(schema[i].name), schema[i].name);
    used = strlen(out);
  }
}

static void describe_unknown_key(const char *section, const char *key,
                                 char *out, size_t outlen) {
  int near = nearest_key(section, key);
  if (*section)
    snprintf(out, outlen, "unknown key '%s.%s'; ", section, key);
  else
    snprintf(out, outlen, "unknown key '%s'; ", key);
  size_t used = strlen(out);
  if (near >= 0) {
    snprintf(out + used, outlen - used, "did you mean '%s'?",
             schema[near].name);
  } else if (is_section(section)) {
    snprintf(out + used, outlen - used, "the keys of '%s' are ", section);
    list_section_keys(section, out, outlen);
  } else {
    snprintf(out + used, outlen - used,
             "keys are SECTION.KEY, the sections being ");
    list_sections(out, outlen);
  }
}

static void describe_unknown_section(const char *section, char *out,
                                     size_t outlen) {
  snprintf(out, outlen, "unknown section '%s'; ", section);
  size_t used = strlen(out);
  /* A key written at the top level, outside its section? */
  for (int i = 0; i < N_PARAMS; i++)
    if (strcmp(key_part(schema[i].name), section) == 0) {
      snprintf(out + used, outlen - used,
               "did you mean '%s'? (keys go inside their section: '%.*s:' "
               "then an indented '%s: ...')",
               schema[i].name, (int)section_length(schema[i].name),
               schema[i].name, section);
      return;
    }
  int best = -1, best_distance = 1 << 30;
  for (int i = 0; i < N_PARAMS; i++) {
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)section_length(schema[i].name),
             schema[i].name);
    int d = edit_distance(section, name);
    if (d < best_distance) best = i, best_distance = d;
  }
  if (best_distance <= suggestion_limit(section))
    snprintf(out + used, outlen - used, "did you mean '%.*s'?",
             (int)section_length(schema[best].name), schema[best].name);
  else {
    snprintf(out + used, outlen - used, "the sections are ");
    list_sections(out, outlen);
  }
}

/* ---------------------------------------------------------------- errors */

/* Decode one UTF-8 sequence; returns its length (0 if invalid). */
static int utf8_decode(const unsigned char *s, unsigned long *cp) {
  if (s[0] < 0x80) return *cp = s[0], 1;
  int n = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
  if (n == 0 || s[0] > 0xF4) return 0;
  unsigned long v = s[0] & (0x3F >> (n - 1));
  for (int k = 1; k < n; k++) {
    if ((s[k] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (s[k] & 0x3F);
  }
  static const unsigned long smallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < smallest[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return n;
}

/* Where values come from while they are being read: a file (marks are
 * positions in it), an override (marks are meaningless to the user: quote
 * the override instead), or a built-in default. */
typedef struct {
  const char *path;
  const char *override;
  char *err;
  size_t errlen;
  /* The first node with a YAML tag in the text (find_first_tag), refused
   * when it is read, with the key it belongs to. */
  bool tagged;
  yaml_node_type_t tag_node;
  yaml_mark_t tag_mark;
  char tag[80];
} source_ctx;

/* Copy text into out (always terminated, cut at a whole character) so that
 * a message is one line of valid UTF-8 whatever the input held: line breaks,
 * tabs and other control characters become \n, \t, \xNN (bytes that are
 * not UTF-8 too), line separators and the invisible BOM \uNNNN. */
static void copy_printable(char *out, size_t outlen, const char *text) {
  size_t used = 0;
  const unsigned char *s = (const unsigned char *)text;
  while (*s) {
    unsigned long cp = 0;
    int n = utf8_decode(s, &cp);
    char esc[8];
    const char *piece = (const char *)s;
    size_t len = (size_t)n;
    if (n == 0) {
      snprintf(esc, sizeof esc, "\\x%02X", (unsigned)*s);
      n = 1;
    } else if (cp == '\n' || cp == '\r' || cp == '\t') {
      char letter = cp == '\n' ? 'n' : cp == '\r' ? 'r' : 't';
      snprintf(esc, sizeof esc, "\\%c", letter);
    } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) {
      snprintf(esc, sizeof esc, "\\x%02lX", cp);
    } else if (cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF) {
      snprintf(esc, sizeof esc, "\\u%04lX", cp);
    } else {
      esc[0] = '\0';
    }
    if (esc[0]) {
      piece = esc;
      len = strlen(esc);
    }
    if (used + len + 1 > outlen) break;
    memcpy(out + used, piece, len);
    used += len;
    s += n;
  }
  out[used] = '\0';
}

static void vreport(char *err, size_t errlen, const char *where,
                    const char *key, const char *fmt, va_list ap) {
  if (!err || errlen == 0) return;
  char head[1600] = "";
  if (where && key)
    snprintf(head, sizeof head, "%s: key '%s': ", where, key);
  else if (where)
    snprintf(head, sizeof head, "%s: ", where);
  else if (key)
    snprintf(head, sizeof head, "key '%s': ", key);
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  size_t body_len = n > 0 ? (size_t)n : 0, head_len = strlen(head);
  char *whole = malloc(head_len + body_len + 1);
  if (!whole) {
    snprintf(err, errlen, "out of memory for the parameters");
    return;
  }
  memcpy(whole, head, head_len + 1);
  vsnprintf(whole + head_len, body_len + 1, fmt, ap);
  copy_printable(err, errlen, whole);
  free(whole);
}

/* "-P KEY=VALUE" for messages; a very long override is cut after its first
 * 200 bytes, so that what is wrong with it still fits in the message. */
static void override_where(char *where, size_t n, const char *override) {
  enum { SHOWN = 200 };
  size_t len = strlen(override);
  if (len <= SHOWN + 40) {
    snprintf(where, n, "-P %s", override);
    return;
  }
  size_t cut = SHOWN;
  while (cut > 0 && ((unsigned char)override[cut] & 0xC0) == 0x80)
    cut--;
  snprintf(where, n, "-P %.*s... (%zu bytes in all)", (int)cut, override, len);
}

/* One error about the value at mark (NULL: no position) of key s (NULL: not
 * about a key).  Always returns NRD_ERR_INPUT. */
static int fail(const source_ctx *c, const yaml_mark_t *mark,
                const param_spec *s, const char *fmt, ...) {
  char where[1200];
  if (c->override)
    override_where(where, sizeof where, c->override);
  else if (mark)
    snprintf(where, sizeof where, "%s:%zu:%zu", c->path, mark->line + 1,
             mark->column + 1);
  else
    snprintf(where, sizeof where, "%s", c->path);
  va_list ap;
  va_start(ap, fmt);
  vreport(c->err, c->errlen, where, s ? s->name : NULL, fmt, ap);
  va_end(ap);
  return NRD_ERR_INPUT;
}

static int out_of_memory(char *err, size_t errlen) {
  if (err && errlen) snprintf(err, errlen, "out of memory for the parameters");
  return NRD_ERR_NOMEM;
}

/* YAML tags ("!!str 50", "!!binary ...", "!x", "!<...>") would make a
 * value mean something else than it reads, or be silently ignored, so none
 * is accepted.  libyaml's documents do not say whether a tag was written
 * (an untagged scalar gets !!str too), its events do: one pass over the
 * events of the first document finds the first tag.  A syntax error ends
 * the pass quietly; loading the document then reports it. */
static void find_first_tag(source_ctx *c, const char *text, size_t len) {
  c->tagged = false;
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) return;
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  for (bool done = false; !done;) {
    yaml_event_t e;
    if (!yaml_parser_parse(&parser, &e)) break;
    const char *tag = NULL;
    yaml_node_type_t type = YAML_NO_NODE;
    if (e.type == YAML_SCALAR_EVENT) {
      tag = (const char *)e.data.scalar.tag;
      type = YAML_SCALAR_NODE;
    } else if (e.type == YAML_SEQUENCE_START_EVENT) {
      tag = (const char *)e.data.sequence_start.tag;
      type = YAML_SEQUENCE_NODE;
    } else if (e.type == YAML_MAPPING_START_EVENT) {
      tag = (const char *)e.data.mapping_start.tag;
      type = YAML_MAPPING_NODE;
    }
    done = e.type == YAML_DOCUMENT_END_EVENT || e.type == YAML_STREAM_END_EVENT;
    if (tag) {
      /* shown as written with libyaml's standard handles */
      static const char std[] = "tag:yaml.org,2002:";
      if (strncmp(tag, std, sizeof std - 1) == 0)
        snprintf(c->tag, sizeof c->tag, "!!%.60s", tag + sizeof std - 1);
      else if (tag[0] == '!')
        snprintf(c->tag, sizeof c->tag, "%.60s", tag);
      else
        snprintf(c->tag, sizeof c->tag, "!<%.60s>", tag);
      c->tagged = done = true;
      c->tag_node = type;
      c->tag_mark = e.start_mark;
    }
    yaml_event_delete(&e);
  }
  yaml_parser_delete(&parser);
}

/* Refuse node if it is the tagged one; what names it ("element 2 ", "the
 * section name 'run' "). */
static int refuse_tag(const source_ctx *c, const yaml_node_t *node,
                      const param_spec *s, const char *what) {
  if (!c->tagged || node->type != c->tag_node ||
      node->start_mark.line != c->tag_mark.line ||
      node->start_mark.column != c->tag_mark.column)
    return NRD_OK;
  return fail(c, &node->start_mark, s,
              "%shas a YAML tag ('%s'); tags are not accepted: remove it", what,
              c->tag);
}

/* After reading: a tag on a node that was not read is refused all the same
 * (a safety net; every node that is read is checked where it is read). */
static int refuse_any_tag(const source_ctx *c) {
  if (!c->tagged) return NRD_OK;
  return fail(c, &c->tag_mark, NULL,
              "a YAML tag ('%s'); tags are not accepted: remove it", c->tag);
}

/* Report a libyaml failure.  Reader errors (bad encoding) carry a byte
 * offset rather than a mark, so the position is recounted from the text. */
static int syntax_error(const source_ctx *c, const yaml_parser_t *parser,
                        const char *text, size_t len) {
  if (parser->error == YAML_MEMORY_ERROR)
    return out_of_memory(c->err, c->errlen);
  yaml_mark_t mark = parser->problem_mark;
  if (parser->error == YAML_READER_ERROR) {
    mark.line = mark.column = 0;
    for (size_t k = 0; k < parser->problem_offset && k < len; k++) {
      if (text[k] == '\n') {
        mark.line++;
        mark.column = 0;
      } else if (((unsigned char)text[k] & 0xC0) != 0x80) {
        mark.column++;
      }
    }
  }
  const char *problem = parser->problem ? parser->problem : "unknown problem";
  if (parser->context && !c->override)
    return fail(c, &mark, NULL,
                "YAML syntax error: %s (%s at line %zu, column %zu)", problem,
                parser->context, parser->context_mark.line + 1,
                parser->context_mark.column + 1);
  if (parser->context)
    return fail(c, &mark, NULL, "YAML syntax error: %s (%s)", problem,
                parser->context);
  return fail(c, &mark, NULL, "YAML syntax error: %s", problem);
}

/* -------------------------------------------------------- reading values */

static const char *scalar_text(const yaml_node_t *node) {
  return (const char *)node->data.scalar.value;
}

/* "key:" with nothing after it, or an explicit YAML null. */
static bool is_null(const yaml_node_t *node) {
  if (node->type != YAML_SCALAR_NODE ||
      node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return false;
  const char *t = scalar_text(node);
  return !*t || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") ||
         !strcmp(t, "NULL");
}

static const char *node_kind(const yaml_node_t *node) {
  switch (node->type) {
  case YAML_SEQUENCE_NODE:
    return "a list";
  case YAML_MAPPING_NODE:
    return "a mapping";
  default:
    return "a single value";
  }
}

static bool is_quoted(const yaml_node_t *node) {
  return node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
}

static bool is_integer_literal(const char *t) {
  if (*t == '+' || *t == '-') t++;
  if (!*t) return false;
  for (; *t; t++)
    if (*t < '0' || *t > '9') return false;
  return true;
}

/* NaN and infinity in any spelling strtod or YAML knows ("nan", ".inf",
 * "-Infinity", ...), so they get their own message. */
static bool names_non_finite(const char *t) {
  if (*t == '+' || *t == '-') t++;
  if (*t == '.') t++;
  char word[16];
  size_t n = 0;
  for (; t[n] && n + 1 < sizeof word; n++)
    word[n] = (char)tolower((unsigned char)t[n]);
  if (t[n]) return false;
  word[n] = '\0';
  return !strcmp(word, "nan") || !strcmp(word, "inf") ||
         !strcmp(word, "infinity");
}

static bool is_decimal_number(const char *t, double *x) {
  bool digit = false;
  for (const char *c = t; *c; c++) {
    if (*c >= '0' && *c <= '9')
      digit = true;
    else if (!strchr("+-.eE", *c))
      return false;
  }
  char *end;
  errno = 0;
  *x = strtod(t, &end);
  return digit && end != t && *end == '\0';
}

/* "010", "-007", "01.5": YAML 1.1 reads a leading zero as octal (010 is 8),
 * YAML 1.2 does not (10), other tools differ again, so such a number is
 * refused with the spelling to use.  "0", "0.5", "-0.25", "1e05" are fine. */
static int refuse_leading_zero(const source_ctx *c, const yaml_mark_t *mark,
                               const param_spec *s, const char *what,
                               const char *t) {
  const char *digits = t + (*t == '+' || *t == '-');
  if (!(digits[0] == '0' && digits[1] >= '0' && digits[1] <= '9'))
    return NRD_OK;
  while (digits[0] == '0' && digits[1] >= '0' && digits[1] <= '9')
    digits++;
  return fail(c, mark, s,
              "%smust not have leading zeros, which YAML readers disagree on "
              "(got %s; write %s%s)",
              what, t, *t == '-' ? "-" : "", digits);
}

/* "%s" of a bound: integers without a decimal point. */
static const char *bound_text(char buf[32], double x) {
  return shortest_double(buf, x);
}

/* Check x (text as written) against the bounds of s; what is "" or
 * "element 3 " so the message reads "key 'k': element 3 must be ...". */
static int check_bounds(const source_ctx *c, const yaml_mark_t *mark,
                        const param_spec *s, const char *what, double x,
                        const char *text) {
  char b[32];
  if (s->has_min && (s->min_exclusive ? !(x > s->min) : !(x >= s->min)))
    return fail(c, mark, s, "%smust be %s %s (got %s)", what,
                s->min_exclusive ? ">" : ">=", bound_text(b, s->min), text);
  if (s->has_max && !(x <= s->max))
    return fail(c, mark, s, "%smust be <= %s (got %s)", what,
                bound_text(b, s->max), text);
  return NRD_OK;
}

static int read_long(const source_ctx *c, const param_spec *s,
                     const yaml_node_t *node, const char *what, long *out) {
  const char *t = scalar_text(node);
  const yaml_mark_t *mark = &node->start_mark;
  if (is_quoted(node))
    return fail(c, mark, s,
                "%smust be an integer, not the quoted text '%s' (remove the "
                "quotes)",
                what, t);
  if (!is_integer_literal(t)) {
    double x;
    if (is_decimal_number(t, &x) && isfinite(x) && x == floor(x) &&
        fabs(x) < 1e18)
      return fail(c, mark, s,
                  "%smust be an integer literal (got %s; write %.0f)", what, t,
                  x);
    return fail(c, mark, s, "%smust be an integer (got '%s')", what, t);
  }
  int rc = refuse_leading_zero(c, mark, s, what, t);
  if (rc != NRD_OK) return rc;
  errno = 0;
  long long v = strtoll(t, NULL, 10);
  if (errno == ERANGE) {
    char b[32];
    if (*t == '-' && s->has_min)
      return fail(c, mark, s, "%smust be >= %s (got %s)", what,
                  bound_text(b, s->min), t);
    if (s->has_max)
      return fail(c, mark, s, "%smust be <= %s (got %s)", what,
                  bound_text(b, s->max), t);
    return fail(c, mark, s, "%sis too large for an integer (got %s)", what, t);
  }
  rc = check_bounds(c, mark, s, what, (double)v, t);
  if (rc == NRD_OK) *out = (long)v;
  return rc;
}

static int read_double(const source_ctx *c, const param_spec *s,
                       const yaml_node_t *node, const char *what, double *out) {
  const char *t = scalar_text(node);
  const yaml_mark_t *mark = &node->start_mark;
  if (is_quoted(node))
    return fail(c, mark, s,
                "%smust be a number, not the quoted text '%s' (remove the "
                "quotes)",
                what, t);
  if (names_non_finite(t))
    return fail(c, mark, s, "%smust be a finite number (got '%s')", what, t);
  double x;
  if (!is_decimal_number(t, &x))
    return fail(c, mark, s, "%smust be a number (got '%s')", what, t);
  int range = errno == ERANGE; /* strtod's, before anything else sets it */
  int rc = refuse_leading_zero(c, mark, s, what, t);
  if (rc != NRD_OK) return rc;
  if (!isfinite(x))
    return fail(c, mark, s, "%smust be a finite number (got %s)", what, t);
  /* a non-zero number below the doubles' range would be read as 0
   * (strtod: ERANGE; subnormals such as 5e-324 are kept) */
  if (range && x == 0)
    return fail(c, mark, s,
                "%sis too small for a double (got %s, which would be read "
                "as 0; the smallest is 4.9e-324)",
                what, t);
  /* -0.0 (or -0, -0e5) is stored as 0, so that nothing downstream prints
   * or records "-0" */
  if (x == 0) x = 0.0;
  rc = check_bounds(c, mark, s, what, x, t);
  if (rc == NRD_OK) *out = x;
  return rc;
}

static int read_choice(const source_ctx *c, const param_spec *s,
                       const yaml_node_t *node, const char *what, int *out) {
  const char *t = scalar_text(node);
  int k = find_choice(s->choices, t);
  if (k >= 0) {
    *out = k;
    return NRD_OK;
  }
  char list[256] = "";
  int best = 0, best_distance = 1 << 30;
  for (int i = 0; s->choices[i]; i++) {
    size_t used = strlen(list);
    snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
             s->choices[i]);
    int d = edit_distance(t, s->choices[i]);
    if (*t && strncmp(s->choices[i], t, strlen(t)) == 0) d = 1; /* "diag" */
    if (d < best_distance) best = i, best_distance = d;
  }
  if (best_distance <= suggestion_limit(t))
    return fail(c, &node->start_mark, s,
                "%smust be one of %s (got '%s'; did you mean '%s'?)", what,
                list, t, s->choices[best]);
  return fail(c, &node->start_mark, s, "%smust be one of %s (got '%s')", what,
              list, t);
}

/* A copy of the text of a string value; YAML escapes can put a NUL inside,
 * which a C string cannot hold. */
static int read_string(const source_ctx *c, const param_spec *s,
                       const yaml_node_t *node, const char *what, char **out) {
  const char *t = scalar_text(node);
  if (strlen(t) != node->data.scalar.length)
    return fail(c, &node->start_mark, s, "%smust not contain a NUL character",
                what);
  if (s->type == TYPE_STRING && (int)strlen(t) < s->min_length)
    return fail(c, &node->start_mark, s, "%smust not be empty", what);
  *out = strdup(t);
  return *out ? NRD_OK : out_of_memory(c->err, c->errlen);
}

static int no_value(const source_ctx *c, const yaml_mark_t *mark,
                    const param_spec *s) {
  return fail(c, mark, s,
              "has no value (give one, or remove the key to use the default "
              "%s)",
              s->default_yaml);
}

static int read_scalar_value(const source_ctx *c, const param_spec *s,
                             const yaml_node_t *node, nrd_params *dst) {
  if (node->type != YAML_SCALAR_NODE)
    return fail(c, &node->start_mark, s, "must be a single value, not %s",
                node_kind(node));
  if (is_null(node)) return no_value(c, &node->start_mark, s);
  switch (s->type) {
  case TYPE_INT:
    return read_long(c, s, node, "", LONG_AT(dst, s));
  case TYPE_DOUBLE:
    return read_double(c, s, node, "", DOUBLE_AT(dst, s));
  case TYPE_ENUM:
    return read_choice(c, s, node, "", INT_AT(dst, s));
  default: {
    char *text = NULL;
    int rc = read_string(c, s, node, "", &text);
    if (rc != NRD_OK) return rc;
    free_value(dst, s);
    *STRING_AT(dst, s) = text;
    return NRD_OK;
  }
  }
}

/* Whether a lone scalar would be a valid element, to decide whether
 * "write [x]" is good advice. */
static bool element_is_valid(const param_spec *s, const yaml_node_t *node) {
  char scratch[256];
  source_ctx quiet = {.path = "", .err = scratch, .errlen = sizeof scratch};
  long l;
  double x;
  int k;
  switch (s->type) {
  case TYPE_INT_LIST:
    return read_long(&quiet, s, node, "", &l) == NRD_OK;
  case TYPE_DOUBLE_LIST:
    return read_double(&quiet, s, node, "", &x) == NRD_OK;
  default:
    return !s->choices || read_choice(&quiet, s, node, "", &k) == NRD_OK;
  }
}

static int read_list_value(const source_ctx *c, const param_spec *s,
                           yaml_document_t *doc, const yaml_node_t *node,
                           nrd_params *dst) {
  const yaml_mark_t *mark = &node->start_mark;
  if (node->type == YAML_SCALAR_NODE) {
    if (is_null(node)) return no_value(c, mark, s);
    if (element_is_valid(s, node))
      return fail(c, mark, s, "must be a list (write [%s])", scalar_text(node));
    return fail(c, mark, s, "must be a list like %s (got '%s')",
                s->min_length ? s->default_yaml : "[1, 2]", scalar_text(node));
  }
  if (node->type != YAML_SEQUENCE_NODE)
    return fail(c, mark, s, "must be a list like [1, 2], not %s",
                node_kind(node));
  yaml_node_item_t *items = node->data.sequence.items.start;
  int n = (int)(node->data.sequence.items.top - items);
  if (n < s->min_length)
    return fail(c, mark, s, "must have at least %d element%s (got %d)",
                s->min_length, s->min_length == 1 ? "" : "s", n);
  size_t elem = s->type == TYPE_INT_LIST      ? sizeof(long)
                : s->type == TYPE_DOUBLE_LIST ? sizeof(double)
                                              : sizeof(char *);
  void *v = n ? calloc((size_t)n, elem) : NULL;
  if (n && !v) return out_of_memory(c->err, c->errlen);
  int rc = NRD_OK, filled = 0;
  for (int k = 0; k < n && rc == NRD_OK; k++) {
    yaml_node_t *item = yaml_document_get_node(doc, items[k]);
    char what[32];
    snprintf(what, sizeof what, "element %d ", k + 1);
    rc = refuse_tag(c, item, s, what);
    if (rc != NRD_OK) break;
    if (item->type != YAML_SCALAR_NODE) {
      rc = fail(c, &item->start_mark, s, "%smust be a single value, not %s",
                what, node_kind(item));
    } else if (is_null(item)) {
      rc = fail(c, &item->start_mark, s, "%shas no value", what);
    } else if (s->type == TYPE_INT_LIST) {
      rc = read_long(c, s, item, what, (long *)v + k);
    } else if (s->type == TYPE_DOUBLE_LIST) {
      rc = read_double(c, s, item, what, (double *)v + k);
    } else {
      char **words = v;
      int choice;
      if (s->choices) rc = read_choice(c, s, item, what, &choice);
      if (rc == NRD_OK) rc = read_string(c, s, item, what, &words[k]);
      if (rc == NRD_OK) filled = k + 1;
      for (int j = 0; rc == NRD_OK && s->distinct && j < k; j++)
        if (strcmp(words[j], words[k]) == 0)
          rc = fail(c, &item->start_mark, s,
                    "%s'%s' repeats element %d (each may appear once)", what,
                    words[k], j + 1);
    }
  }
  if (rc != NRD_OK) {
    if (s->type == TYPE_STRING_LIST)
      for (int k = 0; k < filled; k++)
        free(((char **)v)[k]);
    free(v);
    return rc;
  }
  free_value(dst, s);
  if (s->type == TYPE_INT_LIST)
    *ILIST_AT(dst, s) = (nrd_ilist){n, v};
  else if (s->type == TYPE_DOUBLE_LIST)
    *DLIST_AT(dst, s) = (nrd_dlist){n, v};
  else
    *SLIST_AT(dst, s) = (nrd_slist){n, v};
  return NRD_OK;
}

/* Store the YAML node as the value of s in dst (dst keeps its old value on
 * failure). */
static int read_value(const source_ctx *c, const param_spec *s,
                      yaml_document_t *doc, const yaml_node_t *node,
                      nrd_params *dst) {
  int rc = refuse_tag(c, node, s, "");
  if (rc != NRD_OK) return rc;
  switch (s->type) {
  case TYPE_INT_LIST:
  case TYPE_DOUBLE_LIST:
  case TYPE_STRING_LIST:
    return read_list_value(c, s, doc, node, dst);
  default:
    return read_scalar_value(c, s, node, dst);
  }
}

/* Byte offset in text (one line, possibly followed by blank lines) of a
 * mark, which counts characters; len when the mark is past the text. */
static size_t offset_of_mark(const char *text, size_t len,
                             const yaml_mark_t *mark) {
  size_t k = len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
  for (size_t column = 0; k < len && mark->line == 0; column++) {
    if (column == mark->column) return k;
    if (text[k] == '\n' || text[k] == '\r') break;
    k++;
    while (k < len && ((unsigned char)text[k] & 0xC0) == 0x80)
      k++;
  }
  return len;
}

static bool is_blank(const char *t) {
  return t[strspn(t, " \t\r\n")] == '\0';
}

/* The first line break of t (any that YAML knows: LF, CR, NEL, LS, PS)
 * and its length in bytes, or NULL. */
static const char *line_break(const char *t, size_t *n) {
  for (; *t; t++) {
    if (*t == '\n' || *t == '\r') return *n = 1, t;
    if (strncmp(t, "\xC2\x85", 2) == 0) return *n = 2, t;
    if (strncmp(t, "\xE2\x80\xA8", 3) == 0 ||
        strncmp(t, "\xE2\x80\xA9", 3) == 0)
      return *n = 3, t;
  }
  return NULL;
}

/* The start of t, for quoting in a message: at most 40 bytes (whole
 * characters) of its first line, "..." when cut. */
static const char *excerpt(char buf[64], const char *t) {
  size_t n = strcspn(t, "\r\n");
  while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
    n--;
  bool cut = n > 40;
  if (cut) {
    n = 40;
    while (n > 0 && ((unsigned char)t[n] & 0xC0) == 0x80)
      n--;
  }
  snprintf(buf, 64, "%.*s%s", (int)n, t, cut ? "..." : "");
  return buf;
}

/* An override value is one YAML value on one line: a line break, or text
 * after the value (a second value, a stray bracket, a comment), would be
 * silently dropped by a YAML reader, so it is refused. */
static int check_one_line(const source_ctx *c, const param_spec *s,
                          const char *text) {
  size_t n;
  const char *brk = line_break(text, &n);
  if (!brk) return NRD_OK;
  const char *rest = brk + n;
  rest += strspn(rest, " \t\r\n");
  if (!*rest) return NRD_OK; /* blank lines at the end */
  char b[64];
  return fail(c, NULL, s,
              "a line break in the value, then '%s' (a -P value is one YAML "
              "value on one line; give each key its own -P)",
              excerpt(b, rest));
}

static int check_nothing_after(const source_ctx *c, const param_spec *s,
                               const char *text, size_t len,
                               const yaml_node_t *root) {
  const char *rest = text + offset_of_mark(text, len, &root->end_mark);
  if (is_blank(rest)) return NRD_OK;
  rest += strspn(rest, " \t");
  char b[64];
  if (*rest == '#')
    return fail(c, NULL, s,
                "a comment after the value: '%s' (quote the value if '#' is "
                "part of it)",
                excerpt(b, rest));
  return fail(c, NULL, s,
              "text after the value: '%s' (a -P value is exactly one YAML "
              "value: a number, a word, \"quoted text\" or a list [a, b])",
              excerpt(b, rest));
}

/* Parse text as one YAML document holding the value of s (overrides and
 * built-in defaults).  An override must be exactly that value: nothing
 * after it, all on one line. */
static int read_value_text(const source_ctx *ctx, const param_spec *s,
                           const char *text, nrd_params *dst) {
  int rc = ctx->override ? check_one_line(ctx, s, text) : NRD_OK;
  if (rc != NRD_OK) return rc;
  size_t len = strlen(text);
  source_ctx tagged = *ctx, *c = &tagged;
  find_first_tag(c, text, len);
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) return out_of_memory(c->err, c->errlen);
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  yaml_document_t doc;
  if (!yaml_parser_load(&parser, &doc)) {
    rc = syntax_error(c, &parser, text, len);
  } else {
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root)
      rc = no_value(c, NULL, s);
    else if (c->override)
      rc = check_nothing_after(c, s, text, len, root);
    if (root && rc == NRD_OK) rc = read_value(c, s, &doc, root, dst);
    if (rc == NRD_OK) rc = refuse_any_tag(c);
    yaml_document_delete(&doc);
  }
  yaml_parser_delete(&parser);
  return rc;
}

/* ------------------------------------------------------------- defaults */

int params_init_defaults(nrd_params *p) {
  memset(p, 0, sizeof *p);
  p->sources = calloc(N_PARAMS, sizeof *p->sources);
  p->source_lines = calloc(N_PARAMS, sizeof *p->source_lines);
  if (!p->sources || !p->source_lines) {
    params_free(p);
    return NRD_ERR_NOMEM;
  }
  /* Defaults go through the same reader as the file, so the table's text is
   * exactly what --print-params shows and what a file would give.  Only a
   * broken table (caught by the unit tests) or memory can make this fail. */
  char err[256];
  for (int i = 0; i < N_PARAMS; i++) {
    source_ctx c = {
        .path = "built-in default", .err = err, .errlen = sizeof err};
    int rc = read_value_text(&c, &schema[i], schema[i].default_yaml, p);
    if (rc != NRD_OK) {
      params_free(p);
      return rc;
    }
  }
  return NRD_OK;
}

/* ---------------------------------------------------------------- loading */

/* Where each value was set while loading, for errors found only once all
 * values are known (combinations). */
typedef struct {
  size_t line, column;  /* 1-based, values from the file */
  const char *override; /* the override text, values from -P */
} value_origin;

typedef struct {
  const char *path;
  const nrd_params *p;
  const value_origin *origin;
  char *err;
  size_t errlen;
} combination_ctx;

static void record_origin(nrd_params *q, value_origin *origin, int i,
                          nrd_param_source source, const yaml_mark_t *mark,
                          const char *override) {
  q->sources[i] = source;
  q->source_lines[i] = mark ? (int)mark->line + 1 : 0;
  origin[i] = (value_origin){mark ? mark->line + 1 : 0,
                             mark ? mark->column + 1 : 0, override};
}

/* Reject a second YAML document: it would be silently ignored otherwise. */
static int expect_end_of_stream(const source_ctx *c, yaml_parser_t *parser,
                                const char *text, size_t len) {
  yaml_document_t doc;
  if (!yaml_parser_load(parser, &doc))
    return syntax_error(c, parser, text, len);
  int rc = NRD_OK;
  if (yaml_document_get_root_node(&doc))
    rc = fail(c, &doc.start_mark, NULL,
              "a second YAML document; a parameter file holds exactly one");
  yaml_document_delete(&doc);
  return rc;
}

/* Index of an earlier pair of the mapping with the same scalar key, or -1. */
static const yaml_node_pair_t *earlier_pair(yaml_document_t *doc,
                                            const yaml_node_t *map,
                                            const yaml_node_pair_t *pair) {
  const char *name = scalar_text(yaml_document_get_node(doc, pair->key));
  for (const yaml_node_pair_t *e = map->data.mapping.pairs.start; e < pair;
       e++) {
    yaml_node_t *k = yaml_document_get_node(doc, e->key);
    if (k->type == YAML_SCALAR_NODE && strcmp(scalar_text(k), name) == 0)
      return e;
  }
  return NULL;
}

static int read_section(const source_ctx *c, yaml_document_t *doc,
                        const char *section, const yaml_node_t *map,
                        nrd_params *q, value_origin *origin) {
  for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
       pair < map->data.mapping.pairs.top; pair++) {
    yaml_node_t *key = yaml_document_get_node(doc, pair->key);
    yaml_node_t *value = yaml_document_get_node(doc, pair->value);
    if (key->type != YAML_SCALAR_NODE)
      return fail(c, &key->start_mark, NULL,
                  "in section '%s': keys must be plain names, not %s", section,
                  node_kind(key));
    char what[300];
    snprintf(what, sizeof what, "the key name '%s.%s' ", section,
             scalar_text(key));
    int rc = refuse_tag(c, key, NULL, what);
    if (rc != NRD_OK) return rc;
    char name[256];
    snprintf(name, sizeof name, "%s.%s", section, scalar_text(key));
    int i = params_schema_find(name);
    if (i < 0) {
      char msg[1024];
      describe_unknown_key(section, scalar_text(key), msg, sizeof msg);
      return fail(c, &key->start_mark, NULL, "%s", msg);
    }
    const yaml_node_pair_t *first = earlier_pair(doc, map, pair);
    if (first)
      return fail(c, &key->start_mark, &schema[i],
                  "set twice (first at line %zu); keep one",
                  yaml_document_get_node(doc, first->key)->start_mark.line + 1);
    rc = read_value(c, &schema[i], doc, value, q);
    if (rc != NRD_OK) return rc;
    record_origin(q, origin, i, PSRC_FILE, &value->start_mark, NULL);
  }
  return NRD_OK;
}

static bool is_empty_mapping(const yaml_node_t *node) {
  return node->type == YAML_MAPPING_NODE &&
         node->data.mapping.pairs.top == node->data.mapping.pairs.start;
}

static int read_document(const source_ctx *c, yaml_document_t *doc,
                         nrd_params *q, value_origin *origin) {
  yaml_node_t *root = yaml_document_get_root_node(doc);
  int rc = root ? refuse_tag(c, root, NULL, "the top level ") : NRD_OK;
  if (rc != NRD_OK) return rc;
  /* Nothing, only comments, "---", "~" or "{}": running every default
   * unasked would hide a wrong or truncated file. */
  if (!root || is_null(root) || is_empty_mapping(root)) {
    yaml_mark_t start = {.line = 0, .column = 0};
    return fail(c, &start, NULL,
                "the file holds no parameters; 'nrdiff --print-params > "
                "run.yml' writes a complete file (every key at its default) "
                "to edit");
  }
  if (root->type != YAML_MAPPING_NODE)
    return fail(c, &root->start_mark, NULL,
                "the top level must be a mapping of sections ('grid:' then "
                "indented 'dimension: [16]' lines), not %s",
                node_kind(root));
  for (yaml_node_pair_t *pair = root->data.mapping.pairs.start;
       pair < root->data.mapping.pairs.top; pair++) {
    yaml_node_t *key = yaml_document_get_node(doc, pair->key);
    yaml_node_t *value = yaml_document_get_node(doc, pair->value);
    if (key->type != YAML_SCALAR_NODE)
      return fail(c, &key->start_mark, NULL,
                  "section names must be plain words, not %s", node_kind(key));
    const char *section = scalar_text(key);
    char what[300];
    snprintf(what, sizeof what, "the section name '%s' ", section);
    rc = refuse_tag(c, key, NULL, what);
    if (rc != NRD_OK) return rc;
    if (!is_section(section)) {
      char msg[1024];
      describe_unknown_section(section, msg, sizeof msg);
      return fail(c, &key->start_mark, NULL, "%s", msg);
    }
    const yaml_node_pair_t *first = earlier_pair(doc, root, pair);
    if (first)
      return fail(c, &key->start_mark, NULL,
                  "section '%s' appears twice (first at line %zu); merge them",
                  section,
                  yaml_document_get_node(doc, first->key)->start_mark.line + 1);
    snprintf(what, sizeof what, "section '%s' ", section);
    rc = refuse_tag(c, value, NULL, what);
    if (rc != NRD_OK) return rc;
    if (is_null(value) || is_empty_mapping(value))
      return fail(c, &value->start_mark, NULL,
                  "section '%s' has no keys (add indented 'key: value' lines "
                  "or remove it)",
                  section);
    if (value->type != YAML_MAPPING_NODE)
      return fail(c, &value->start_mark, NULL,
                  "section '%s' must be a mapping of indented 'key: value' "
                  "lines, not %s",
                  section, node_kind(value));
    rc = read_section(c, doc, section, value, q, origin);
    if (rc != NRD_OK) return rc;
  }
  return NRD_OK;
}

/* Parameter files are a few kilobytes; the cap stops "nrdiff /dev/zero". */
enum { MAX_FILE_BYTES = 16 << 20 };

static int read_whole_file(const char *path, char **text, size_t *len,
                           char *err, size_t errlen) {
  source_ctx c = {.path = path, .err = err, .errlen = errlen};
  FILE *f = fopen(path, "rb");
  if (!f)
    return fail(&c, NULL, NULL, "cannot open parameter file: %s",
                strerror(errno));
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  int rc = buf ? NRD_OK : out_of_memory(err, errlen);
  while (rc == NRD_OK) {
    if (n + 1 >= cap) {
      char *bigger = cap >= MAX_FILE_BYTES ? NULL : realloc(buf, cap * 2);
      if (!bigger) {
        rc = cap >= MAX_FILE_BYTES
                 ? fail(&c, NULL, NULL,
                        "parameter file is larger than %d MiB; is it the "
                        "right file?",
                        MAX_FILE_BYTES >> 20)
                 : out_of_memory(err, errlen);
        break;
      }
      buf = bigger;
      cap *= 2;
    }
    size_t got = fread(buf + n, 1, cap - 1 - n, f);
    n += got;
    if (got == 0) {
      if (ferror(f))
        rc = fail(&c, NULL, NULL, "cannot read parameter file: %s",
                  strerror(errno));
      break;
    }
  }
  fclose(f);
  if (rc != NRD_OK) {
    free(buf);
    return rc;
  }
  buf[n] = '\0';
  *text = buf;
  *len = n;
  return NRD_OK;
}

/* Read the parameters in text (len bytes), named name in messages. */
static int apply_text(nrd_params *q, const char *name, const char *text,
                      size_t len, value_origin *origin, char *err,
                      size_t errlen) {
  source_ctx c = {.path = name, .err = err, .errlen = errlen};
  find_first_tag(&c, text, len);
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) return out_of_memory(err, errlen);
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  yaml_document_t doc;
  int rc;
  if (!yaml_parser_load(&parser, &doc)) {
    rc = syntax_error(&c, &parser, text, len);
  } else {
    /* an empty first document before a second: report the second */
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    bool empty = !root || is_null(root) || is_empty_mapping(root);
    rc = empty ? expect_end_of_stream(&c, &parser, text, len) : NRD_OK;
    if (rc == NRD_OK) rc = read_document(&c, &doc, q, origin);
    if (rc == NRD_OK) rc = refuse_any_tag(&c);
    yaml_document_delete(&doc);
    if (rc == NRD_OK) rc = expect_end_of_stream(&c, &parser, text, len);
  }
  yaml_parser_delete(&parser);
  return rc;
}

static int apply_file(nrd_params *q, const char *path, value_origin *origin,
                      char *err, size_t errlen) {
  char *text = NULL;
  size_t len = 0;
  int rc = read_whole_file(path, &text, &len, err, errlen);
  if (rc != NRD_OK) return rc;
  rc = apply_text(q, path, text, len, origin, err, errlen);
  free(text);
  return rc;
}

static int apply_override(nrd_params *q, const char *text, value_origin *origin,
                          char *err, size_t errlen) {
  source_ctx c = {.override = text, .err = err, .errlen = errlen};
  const char *eq = strchr(text, '=');
  if (!eq)
    return fail(&c, NULL, NULL,
                "expected SECTION.KEY=VALUE (e.g. -P grid.dimension=[8,16])");
  char name[256];
  snprintf(name, sizeof name, "%.*s", (int)(eq - text), text);
  int i = params_schema_find(name);
  if (i < 0) {
    char section[256], msg[1024];
    const char *dot = strchr(name, '.');
    snprintf(section, sizeof section, "%.*s", dot ? (int)(dot - name) : 0,
             name);
    describe_unknown_key(section, dot ? dot + 1 : name, msg, sizeof msg);
    return fail(&c, NULL, NULL, "%s", msg);
  }
  int rc = read_value_text(&c, &schema[i], eq + 1, q);
  if (rc == NRD_OK) record_origin(q, origin, i, PSRC_OVERRIDE, NULL, text);
  return rc;
}

/* --------------------------------------------------------- combinations */

static int index_of(const char *name) {
  int i = params_schema_find(name);
  return i >= 0 ? i : 0; /* names below are all in the table (tested) */
}

/* When two keys disagree, the one set most recently (override, then file,
 * then default) is blamed: it is the likelier mistake, and its location the
 * more useful one.  Whether b was set later than a: */
static bool set_later(const combination_ctx *c, const char *b, const char *a) {
  static const int rank[] = {
      [PSRC_DEFAULT] = 0, [PSRC_FILE] = 1, [PSRC_OVERRIDE] = 2};
  return rank[c->p->sources[index_of(b)]] > rank[c->p->sources[index_of(a)]];
}

static int blame(const combination_ctx *c, const char *key, const char *fmt,
                 ...) {
  int i = index_of(key);
  char where[1200];
  const value_origin *o = &c->origin[i];
  switch (c->p->sources[i]) {
  case PSRC_OVERRIDE:
    override_where(where, sizeof where, o->override);
    break;
  case PSRC_FILE:
    snprintf(where, sizeof where, "%s:%zu:%zu", c->path, o->line, o->column);
    break;
  default:
    if (c->path)
      snprintf(where, sizeof where, "%s", c->path);
    else
      where[0] = '\0';
  }
  va_list ap;
  va_start(ap, fmt);
  vreport(c->err, c->errlen, where[0] ? where : NULL, key, fmt, ap);
  va_end(ap);
  return NRD_ERR_INPUT;
}

int params_has_protocol(const nrd_params *p, const char *word) {
  for (int k = 0; k < p->experiment.protocol.n; k++)
    if (strcmp(p->experiment.protocol.v[k], word) == 0) return 1;
  return 0;
}

static int check_forward(const combination_ctx *c) {
  const nrd_params *p = c->p;
  if (p->forward.u == U_DIAGONAL) {
    const nrd_dlist *diag = &p->forward.u_diagonal;
    if (diag->n == 0)
      return blame(c, "forward.u",
                   "'diagonal' needs forward.u_diagonal, one positive number "
                   "per dimension (e.g. [1, 4])");
    for (int k = 0; k < p->grid.dimension.n; k++) {
      long d = p->grid.dimension.v[k];
      if (d == diag->n) continue;
      if (set_later(c, "grid.dimension", "forward.u_diagonal"))
        return blame(c, "grid.dimension",
                     "element %d is %ld but forward.u_diagonal has %d "
                     "elements (forward.u: diagonal needs one per dimension)",
                     k + 1, d, diag->n);
      return blame(c, "forward.u_diagonal",
                   "has %d element%s but grid.dimension element %d is %ld "
                   "(forward.u: diagonal needs one per dimension)",
                   diag->n, diag->n == 1 ? "" : "s", k + 1, d);
    }
  }
  if (p->forward.u == U_FILE && !p->forward.u_file[0])
    return blame(c, "forward.u",
                 "'file' needs forward.u_file, the HDF5 file holding U");
  if (p->forward.q == Q_FILE && !p->forward.q_file[0])
    return blame(c, "forward.q",
                 "'file' needs forward.q_file, the HDF5 file holding Q");
  if (p->forward.u_max < p->forward.u_min) {
    char lo[32], hi[32];
    shortest_double(lo, p->forward.u_min);
    shortest_double(hi, p->forward.u_max);
    if (set_later(c, "forward.u_min", "forward.u_max"))
      return blame(c, "forward.u_min", "must be <= forward.u_max (%s) (got %s)",
                   hi, lo);
    return blame(c, "forward.u_max", "must be >= forward.u_min (%s) (got %s)",
                 lo, hi);
  }
  return NRD_OK;
}

static int check_time(const combination_ctx *c) {
  const nrd_params *p = c->p;
  char t_min[32], T[32];
  shortest_double(t_min, p->time.t_min);
  shortest_double(T, p->time.T);
  if (!(p->time.t_min < p->time.T)) {
    if (set_later(c, "time.T", "time.t_min"))
      return blame(c, "time.T", "must be > time.t_min (%s) (got %s)", t_min, T);
    return blame(c, "time.t_min", "must be < time.T (%s) (got %s)", T, t_min);
  }
  if (p->time.spacing == SPACING_LOG && !(p->time.t_min > 0)) {
    if (set_later(c, "time.spacing", "time.t_min"))
      return blame(c, "time.spacing",
                   "'log' needs time.t_min > 0 (time.t_min is %s)", t_min);
    return blame(c, "time.t_min", "must be > 0 with time.spacing: log (got %s)",
                 t_min);
  }
  return NRD_OK;
}

static int check_data(const combination_ctx *c) {
  const nrd_params *p = c->p;
  int dir = p->data.direction;
  if ((dir == DIR_SLOWEST || dir == DIR_FASTEST) && p->data.classes != 2) {
    if (set_later(c, "data.classes", "data.direction"))
      return blame(c, "data.classes",
                   "must be 2 with data.direction: %s (got %ld)",
                   direction_choices[dir], p->data.classes);
    return blame(c, "data.direction", "'%s' needs data.classes = 2 (got %ld)",
                 direction_choices[dir], p->data.classes);
  }
  return NRD_OK;
}

static int check_experiment(const combination_ctx *c) {
  const nrd_params *p = c->p;
  const nrd_dlist *bt = &p->experiment.branch_times;
  if (params_has_protocol(p, "speciation")) {
    if (bt->n == 0) {
      if (set_later(c, "experiment.branch_times", "experiment.protocol"))
        return blame(c, "experiment.branch_times",
                     "must not be empty when experiment.protocol contains "
                     "speciation");
      return blame(c, "experiment.protocol",
                   "'speciation' needs experiment.branch_times, the forward "
                   "times in (time.t_min, time.T] at which to clone");
    }
    for (int k = 0; k < bt->n; k++) {
      double b = bt->v[k];
      if (b > p->time.t_min && b <= p->time.T) continue;
      const char *limit_key = b <= p->time.t_min ? "time.t_min" : "time.T";
      char bs[32], ls[32];
      shortest_double(bs, b);
      shortest_double(ls, b <= p->time.t_min ? p->time.t_min : p->time.T);
      if (set_later(c, limit_key, "experiment.branch_times"))
        return blame(c, limit_key,
                     "must be %s experiment.branch_times element %d (%s) "
                     "(got %s)",
                     b <= p->time.t_min ? "<" : ">=", k + 1, bs, ls);
      return blame(c, "experiment.branch_times",
                   "element %d must be %s %s (%s) (got %s)", k + 1,
                   b <= p->time.t_min ? ">" : "<=", limit_key, ls, bs);
    }
  }
  if (params_has_protocol(p, "collapse") && bt->n > 0 &&
      !params_has_protocol(p, "speciation")) {
    for (int k = 0; k < bt->n; k++) {
      double b = bt->v[k];
      if (b > p->time.t_min && b <= p->time.T) continue;
      char bs[32];
      shortest_double(bs, b);
      return blame(c, "experiment.branch_times",
                   "element %d must be in (time.t_min, time.T] (got %s)",
                   k + 1, bs);
    }
  }
  static const char *const stochastic[] = {"speciation", "collapse", "uturn"};
  for (int k = 0; k < 3; k++) {
    if (!params_has_protocol(p, stochastic[k]) ||
        p->integrator.scheme != SCHEME_ODE_HEUN)
      continue;
    if (set_later(c, "integrator.scheme", "experiment.protocol"))
      return blame(c, "integrator.scheme",
                   "'ode_heun' is deterministic: clones and U-turns need the "
                   "reverse SDE (euler or exponential) with "
                   "experiment.protocol '%s'",
                   stochastic[k]);
    return blame(c, "experiment.protocol",
                 "'%s' needs the reverse SDE (integrator.scheme euler or "
                 "exponential), not the deterministic ode_heun",
                 stochastic[k]);
  }
  const nrd_dlist *ut = &p->experiment.uturn_times;
  if (params_has_protocol(p, "uturn")) {
    if (ut->n == 0)
      return blame(c, "experiment.protocol",
                   "'uturn' needs experiment.uturn_times, the noising times "
                   "T_u in (time.t_min, time.T]");
    for (int k = 0; k < ut->n; k++) {
      double u = ut->v[k];
      if (u > p->time.t_min && u <= p->time.T) continue;
      char us[32];
      shortest_double(us, u);
      return blame(c, "experiment.uturn_times",
                   "element %d must be in (time.t_min, time.T] (got %s)",
                   k + 1, us);
    }
    const nrd_ilist *nt = &p->grid.n_train;
    for (int k = 0; p->experiment.uturn_data == UTURN_TRAIN && k < nt->n; k++)
      if (nt->v[k] <= 0)
        return blame(c, "experiment.uturn_data",
                     "'train' needs every grid.n_train > 0 (element %d is "
                     "%ld)",
                     k + 1, nt->v[k]);
  }
  const nrd_dlist *rt = &p->experiment.reference_times;
  for (int k = 0; params_has_protocol(p, "forward") && k < rt->n; k++) {
    double s = rt->v[k];
    if (s >= p->time.t_min && s < p->time.T) continue;
    char ss[32];
    shortest_double(ss, s);
    return blame(c, "experiment.reference_times",
                 "element %d must be in [time.t_min, time.T) (got %s)", k + 1,
                 ss);
  }
  if (params_has_protocol(p, "collapse")) {
    const nrd_ilist *nt = &p->grid.n_train;
    for (int k = 0; k < nt->n; k++) {
      if (nt->v[k] > 0) continue;
      if (set_later(c, "experiment.protocol", "grid.n_train"))
        return blame(c, "experiment.protocol",
                     "'collapse' needs every grid.n_train > 0 (element %d is "
                     "%ld)",
                     k + 1, nt->v[k]);
      return blame(c, "grid.n_train",
                   "element %d must be > 0 when experiment.protocol contains "
                   "collapse (got %ld)",
                   k + 1, nt->v[k]);
    }
  }
  return NRD_OK;
}

static int check_combinations(const combination_ctx *c) {
  int rc = check_forward(c);
  if (rc == NRD_OK) rc = check_time(c);
  if (rc == NRD_OK) rc = check_data(c);
  if (rc == NRD_OK) rc = check_experiment(c);
  return rc;
}

/* params_load and params_load_text: the parameters of name (a file read
 * from disk, or text when text is not NULL; none if name is NULL), then the
 * overrides. */
static int load(nrd_params *p, const char *name, const char *text, size_t len,
                int n_overrides, char *const *overrides, char *err,
                size_t errlen) {
  char unused[1];
  if (!err || errlen == 0) err = unused, errlen = sizeof unused;
  err[0] = '\0';
  nrd_params q;
  int rc = params_init_defaults(&q);
  if (rc != NRD_OK) return out_of_memory(err, errlen);
  value_origin origin[N_PARAMS];
  memset(origin, 0, sizeof origin);
  if (text)
    rc = apply_text(&q, name, text, len, origin, err, errlen);
  else if (name)
    rc = apply_file(&q, name, origin, err, errlen);
  for (int k = 0; rc == NRD_OK && k < n_overrides; k++)
    rc = apply_override(&q, overrides[k], origin, err, errlen);
  if (rc == NRD_OK) {
    combination_ctx c = {name, &q, origin, err, errlen};
    rc = check_combinations(&c);
  }
  if (rc == NRD_OK && name) {
    q.source_file = strdup(name);
    if (!q.source_file) rc = out_of_memory(err, errlen);
  }
  if (rc != NRD_OK) {
    params_free(&q);
    return rc;
  }
  params_free(p);
  *p = q;
  return NRD_OK;
}

int params_load(nrd_params *p, const char *path, int n_overrides,
                char *const *overrides, char *err, size_t errlen) {
  return load(p, path, NULL, 0, n_overrides, overrides, err, errlen);
}

int params_load_text(nrd_params *p, const char *name, const char *text,
                     size_t len, char *err, size_t errlen) {
  return load(p, name ? name : "(parameters)", text ? text : "", text ? len : 0,
              0, NULL, err, errlen);
}

/* --------------------------------------------------------- text buffers */

typedef struct {
  char *data;
  size_t len, cap;
  bool failed; /* out of memory: every later append is dropped */
} strbuf;

static void sb_append(strbuf *b, const char *s, size_t n) {
  if (b->failed) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (b->len + n + 1 > cap)
      cap *= 2;
    char *bigger = realloc(b->data, cap);
    if (!bigger) {
      b->failed = true;
      return;
    }
    b->data = bigger;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void sb_puts(strbuf *b, const char *s) {
  sb_append(b, s, strlen(s));
}

static void sb_printf(strbuf *b, const char *fmt, ...) {
  char small[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    sb_append(b, small, (size_t)n);
    return;
  }
  char *big = malloc((size_t)n + 1);
  if (!big) {
    b->failed = true;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  sb_append(b, big, (size_t)n);
  free(big);
}

/* ------------------------------------------------------------ YAML output */

/* A YAML double-quoted scalar that libyaml reads back byte for byte: every
 * character libyaml would refuse or fold (controls, line separators, BOM) is
 * escaped.  Bytes that are not UTF-8 cannot come from a YAML file; they are
 * written as \xNN, which reads back as a different character. */
static void sb_yaml_string(strbuf *b, const char *text) {
  sb_puts(b, "\"");
  const unsigned char *s = (const unsigned char *)(text ? text : "");
  while (*s) {
    unsigned long cp;
    int n = utf8_decode(s, &cp);
    if (n == 0) {
      sb_printf(b, "\\x%02X", *s++);
      continue;
    }
    if (cp == '"' || cp == '\\')
      sb_printf(b, "\\%c", (char)cp);
    else if (cp == '\n')
      sb_puts(b, "\\n");
    else if (cp == '\t')
      sb_puts(b, "\\t");
    else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
      sb_printf(b, "\\x%02lX", cp);
    else if (cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF || cp == 0xFFFE ||
             cp == 0xFFFF)
      sb_printf(b, "\\u%04lX", cp);
    else
      sb_append(b, (const char *)s, (size_t)n);
    s += n;
  }
  sb_puts(b, "\"");
}

static void sb_yaml_value(strbuf *b, const nrd_params *p, const param_spec *s) {
  char num[32];
  switch (s->type) {
  case TYPE_INT:
    sb_printf(b, "%ld", *LONG_AT(p, s));
    break;
  case TYPE_DOUBLE:
    sb_puts(b, yaml_double(num, *DOUBLE_AT(p, s)));
    break;
  case TYPE_ENUM: {
    int k = *INT_AT(p, s);
    sb_puts(b, k >= 0 && k < count_choices(s->choices) ? s->choices[k] : "?");
    break;
  }
  case TYPE_STRING:
    sb_yaml_string(b, *STRING_AT(p, s));
    break;
  case TYPE_INT_LIST: {
    const nrd_ilist *l = ILIST_AT(p, s);
    sb_puts(b, "[");
    for (int k = 0; k < l->n; k++)
      sb_printf(b, "%s%ld", k ? ", " : "", l->v[k]);
    sb_puts(b, "]");
    break;
  }
  case TYPE_DOUBLE_LIST: {
    const nrd_dlist *l = DLIST_AT(p, s);
    sb_puts(b, "[");
    for (int k = 0; k < l->n; k++)
      sb_printf(b, "%s%s", k ? ", " : "", yaml_double(num, l->v[k]));
    sb_puts(b, "]");
    break;
  }
  case TYPE_STRING_LIST: {
    const nrd_slist *l = SLIST_AT(p, s);
    sb_puts(b, "[");
    for (int k = 0; k < l->n; k++) {
      sb_puts(b, k ? ", " : "");
      if (s->choices && find_choice(s->choices, l->v[k]) >= 0)
        sb_puts(b, l->v[k]);
      else
        sb_yaml_string(b, l->v[k]);
    }
    sb_puts(b, "]");
    break;
  }
  }
}

/* "(integer, 1 .. 256)", "(one of: a, b)", ... built from the schema so the
 * documentation cannot drift from the checks. */
static void sb_allowed(strbuf *b, const param_spec *s) {
  char lo[32], hi[32];
  bool list = s->type == TYPE_INT_LIST || s->type == TYPE_DOUBLE_LIST ||
              s->type == TYPE_STRING_LIST;
  bool integer = s->type == TYPE_INT || s->type == TYPE_INT_LIST;
  sb_puts(b, "(");
  if (list) sb_puts(b, "list; each ");
  if (s->choices) {
    sb_puts(b, "one of ");
    for (int k = 0; s->choices[k]; k++)
      sb_printf(b, "%s%s", k ? ", " : "", s->choices[k]);
  } else if (s->type == TYPE_STRING || s->type == TYPE_STRING_LIST) {
    sb_puts(b, s->min_length ? "non-empty text" : "text, may be empty");
  } else {
    sb_puts(b, integer ? "integer" : "number");
    bound_text(lo, s->min);
    bound_text(hi, s->max);
    if (s->has_min && s->has_max && !s->min_exclusive)
      sb_printf(b, ", %s .. %s", lo, hi);
    else if (s->has_min && s->has_max)
      sb_printf(b, ", > %s and <= %s", lo, hi);
    else if (s->has_min)
      sb_printf(b, ", %s %s", s->min_exclusive ? ">" : ">=", lo);
    else if (s->has_max)
      sb_printf(b, ", <= %s", hi);
  }
  if (list && s->min_length)
    sb_printf(b, "; at least %d element%s", s->min_length,
              s->min_length == 1 ? "" : "s");
  if (list && s->distinct) sb_puts(b, "; no repeats");
  if (s->restartable) sb_puts(b, "; may change on restart");
  sb_puts(b, ")");
}

/* Comment lines, wrapped at 79 columns. */
static void sb_comment(strbuf *b, const char *indent, const char *text) {
  enum { WIDTH = 79 };
  size_t prefix = strlen(indent) + 2;
  while (*text) {
    size_t room = WIDTH - prefix, n = strlen(text);
    if (n > room) {
      n = room;
      while (n > 0 && text[n] != ' ')
        n--;
      if (n == 0) /* one long word */
        for (n = room; text[n] && text[n] != ' '; n++)
          continue;
    }
    sb_printf(b, "%s# %.*s\n", indent, (int)n, text);
    text += n;
    while (*text == ' ')
      text++;
  }
}

/* Comments must stay on one line whatever the file name holds. */
static void sb_comment_safe(strbuf *b, const char *text) {
  for (const char *c = text; *c; c++)
    sb_append(b, (unsigned char)*c < 0x20 ? "?" : c, 1);
}

static void write_yaml(const nrd_params *p, FILE *out, bool resolved) {
  strbuf b = {0};
  if (resolved) {
    sb_puts(&b, "# nrdiff resolved parameters: every key with the value "
                "this run used.\n# parameter file: ");
    sb_comment_safe(&b, p->source_file ? p->source_file : "(none)");
    sb_puts(&b, "\n# After each value, where it came from: default, "
                "file FILE:LINE,\n# or override (-P on the command line).\n");
  } else {
    sb_puts(&b,
            "# nrdiff parameter file with every key at its default value,\n"
            "# written by 'nrdiff --print-params'.  Run it with 'nrdiff FILE'\n"
            "# (or check it with 'nrdiff --dry-run FILE').\n"
            "#\n"
            "# Values are YAML: lists are written [a, b], text \"quoted\".  "
            "A key left\n"
            "# out keeps its default; any key can also be set on the "
            "command line\n"
            "# with -P SECTION.KEY=VALUE.  Above each key: what it means, "
            "[unit]\n"
            "# and (allowed values).\n");
  }
  size_t section_len = 0;
  const char *section = NULL;
  for (int i = 0; i < N_PARAMS; i++) {
    const param_spec *s = &schema[i];
    size_t n = section_length(s->name);
    if (!section || n != section_len || strncmp(section, s->name, n) != 0) {
      section = s->name;
      section_len = n;
      sb_printf(&b, "\n%.*s:\n", (int)n, s->name);
    }
    /* meaning [unit] (allowed values): one line if it fits, else the
     * allowed values on a line of their own */
    strbuf doc = {0}, allowed = {0};
    sb_puts(&doc, s->doc);
    if (s->unit) sb_printf(&doc, " [%s]", s->unit);
    sb_allowed(&allowed, s);
    if (doc.failed || allowed.failed) {
      b.failed = true;
    } else if (strlen("  # ") + doc.len + 1 + allowed.len <= 79) {
      sb_printf(&b, "  # %s %s\n", doc.data, allowed.data);
    } else {
      sb_comment(&b, "  ", doc.data);
      sb_comment(&b, "  ", allowed.data);
    }
    free(doc.data);
    free(allowed.data);
    sb_printf(&b, "  %s: ", key_part(s->name));
    sb_yaml_value(&b, p, s);
    if (resolved) {
      nrd_param_source src = p->sources ? p->sources[i] : PSRC_DEFAULT;
      if (src == PSRC_FILE) {
        sb_puts(&b, "  # file ");
        sb_comment_safe(&b, p->source_file ? p->source_file : "?");
        sb_printf(&b, ":%d", p->source_lines ? p->source_lines[i] : 0);
      } else {
        sb_puts(&b, src == PSRC_OVERRIDE ? "  # override" : "  # default");
      }
    }
    sb_puts(&b, "\n");
  }
  if (!b.failed && b.data) fwrite(b.data, 1, b.len, out);
  free(b.data);
}

void params_print_defaults(FILE *out) {
  nrd_params p;
  if (params_init_defaults(&p) != NRD_OK) return;
  write_yaml(&p, out, false);
  params_free(&p);
}

void params_write_resolved(const nrd_params *p, FILE *out) {
  write_yaml(p, out, true);
}

char *params_value_yaml(const nrd_params *p, int i) {
  if (i < 0 || i >= N_PARAMS) return NULL;
  strbuf b = {0};
  sb_yaml_value(&b, p, &schema[i]);
  if (b.failed) {
    free(b.data);
    return NULL;
  }
  return b.data ? b.data : calloc(1, 1);
}

/* ----------------------------------------------------------- pack/unpack */

/* Text, one line per entry: "<name> <source> <line> <value>", doubles in C99
 * hex (exact), strings as "<length>:<bytes>" (any bytes).  Portable across
 * ranks of different endianness; a few kilobytes at most. */
static const char PACK_MAGIC[] = "nrdiff-params 1";

static void sb_blob(strbuf *b, const char *s) {
  if (!s) {
    sb_puts(b, "-");
    return;
  }
  sb_printf(b, "%zu:", strlen(s));
  sb_puts(b, s);
}

int params_pack(const nrd_params *p, char **buf, size_t *len) {
  strbuf b = {0};
  sb_printf(&b, "%s %d\n", PACK_MAGIC, N_PARAMS);
  sb_blob(&b, p->source_file);
  sb_puts(&b, "\n");
  for (int i = 0; i < N_PARAMS; i++) {
    const param_spec *s = &schema[i];
    sb_printf(&b, "%s %d %d", s->name, p->sources ? (int)p->sources[i] : 0,
              p->source_lines ? p->source_lines[i] : 0);
    switch (s->type) {
    case TYPE_INT:
      sb_printf(&b, " %ld", *LONG_AT(p, s));
      break;
    case TYPE_DOUBLE:
      sb_printf(&b, " %a", *DOUBLE_AT(p, s));
      break;
    case TYPE_ENUM:
      sb_printf(&b, " %d", *INT_AT(p, s));
      break;
    case TYPE_STRING:
      sb_puts(&b, " ");
      sb_blob(&b, *STRING_AT(p, s));
      break;
    case TYPE_INT_LIST: {
      const nrd_ilist *l = ILIST_AT(p, s);
      sb_printf(&b, " %d", l->n);
      for (int k = 0; k < l->n; k++)
        sb_printf(&b, " %ld", l->v[k]);
      break;
    }
    case TYPE_DOUBLE_LIST: {
      const nrd_dlist *l = DLIST_AT(p, s);
      sb_printf(&b, " %d", l->n);
      for (int k = 0; k < l->n; k++)
        sb_printf(&b, " %a", l->v[k]);
      break;
    }
    case TYPE_STRING_LIST: {
      const nrd_slist *l = SLIST_AT(p, s);
      sb_printf(&b, " %d", l->n);
      for (int k = 0; k < l->n; k++) {
        sb_puts(&b, " ");
        sb_blob(&b, l->v[k]);
      }
      break;
    }
    }
    sb_puts(&b, "\n");
  }
  if (b.failed) {
    free(b.data);
    return NRD_ERR_NOMEM;
  }
  *buf = b.data;
  *len = b.len;
  return NRD_OK;
}

typedef struct {
  const char *s;
  size_t len, pos;
  bool bad; /* malformed: every later read fails */
  bool nomem;
} pack_reader;

static bool rd_char(pack_reader *r, char c) {
  if (r->bad || r->pos >= r->len || r->s[r->pos] != c) return !(r->bad = true);
  r->pos++;
  return true;
}

/* The next space- or newline-terminated word, preceded by one space. */
static bool rd_word(pack_reader *r, char *word, size_t cap) {
  if (!rd_char(r, ' ')) return false;
  size_t n = 0;
  while (r->pos < r->len && r->s[r->pos] != ' ' && r->s[r->pos] != '\n') {
    if (n + 1 >= cap) return !(r->bad = true);
    word[n++] = r->s[r->pos++];
  }
  word[n] = '\0';
  if (n == 0) r->bad = true;
  return !r->bad;
}

static long long rd_integer(pack_reader *r) {
  char word[64], *end;
  if (!rd_word(r, word, sizeof word)) return 0;
  errno = 0;
  long long v = strtoll(word, &end, 10);
  if (*end || errno) r->bad = true;
  return v;
}

static double rd_double(pack_reader *r) {
  char word[64], *end;
  if (!rd_word(r, word, sizeof word)) return 0;
  double v = strtod(word, &end);
  if (*end) r->bad = true;
  return v;
}

/* "-" (NULL) or "<length>:<bytes>"; leading space already consumed. */
static char *rd_blob(pack_reader *r) {
  if (r->bad || r->pos >= r->len) return (r->bad = true), NULL;
  if (r->s[r->pos] == '-') {
    r->pos++;
    return NULL;
  }
  size_t n = 0;
  bool digits = false;
  while (r->pos < r->len && r->s[r->pos] >= '0' && r->s[r->pos] <= '9') {
    n = n * 10 + (size_t)(r->s[r->pos++] - '0');
    digits = true;
    if (n > r->len) return (r->bad = true), NULL;
  }
  if (!digits || !rd_char(r, ':') || n > r->len - r->pos)
    return (r->bad = true), NULL;
  char *s = malloc(n + 1);
  if (!s) return (r->nomem = r->bad = true), NULL;
  memcpy(s, r->s + r->pos, n);
  s[n] = '\0';
  r->pos += n;
  return s;
}

/* A list length that the rest of the buffer can actually hold. */
static int rd_count(pack_reader *r) {
  long long n = rd_integer(r);
  if (n < 0 || (size_t)n > r->len - r->pos) r->bad = true;
  return r->bad ? 0 : (int)n;
}

static void unpack_value(pack_reader *r, nrd_params *q, const param_spec *s) {
  switch (s->type) {
  case TYPE_INT:
    *LONG_AT(q, s) = (long)rd_integer(r);
    break;
  case TYPE_DOUBLE:
    *DOUBLE_AT(q, s) = rd_double(r);
    break;
  case TYPE_ENUM: {
    long long k = rd_integer(r);
    if (k < 0 || k >= count_choices(s->choices)) r->bad = true;
    *INT_AT(q, s) = (int)k;
    break;
  }
  case TYPE_STRING:
    if (rd_char(r, ' ')) *STRING_AT(q, s) = rd_blob(r);
    break;
  case TYPE_INT_LIST: {
    nrd_ilist *l = ILIST_AT(q, s);
    int n = rd_count(r);
    l->v = n ? calloc((size_t)n, sizeof *l->v) : NULL;
    if (n && !l->v) r->nomem = r->bad = true;
    for (; !r->bad && l->n < n; l->n++)
      l->v[l->n] = (long)rd_integer(r);
    break;
  }
  case TYPE_DOUBLE_LIST: {
    nrd_dlist *l = DLIST_AT(q, s);
    int n = rd_count(r);
    l->v = n ? calloc((size_t)n, sizeof *l->v) : NULL;
    if (n && !l->v) r->nomem = r->bad = true;
    for (; !r->bad && l->n < n; l->n++)
      l->v[l->n] = rd_double(r);
    break;
  }
  case TYPE_STRING_LIST: {
    nrd_slist *l = SLIST_AT(q, s);
    int n = rd_count(r);
    l->v = n ? calloc((size_t)n, sizeof *l->v) : NULL;
    if (n && !l->v) r->nomem = r->bad = true;
    while (!r->bad && l->n < n && rd_char(r, ' ')) {
      l->v[l->n] = rd_blob(r);
      if (l->v[l->n])
        l->n++;
      else
        r->bad = true;
    }
    break;
  }
  }
}

int params_unpack(nrd_params *p, const char *buf, size_t len) {
  nrd_params q;
  memset(&q, 0, sizeof q);
  q.sources = calloc(N_PARAMS, sizeof *q.sources);
  q.source_lines = calloc(N_PARAMS, sizeof *q.source_lines);
  pack_reader r = {.s = buf, .len = buf ? len : 0};
  if (!q.sources || !q.source_lines) r.nomem = r.bad = true;
  size_t magic = strlen(PACK_MAGIC);
  if (r.len < magic || memcmp(buf, PACK_MAGIC, magic) != 0) r.bad = true;
  r.pos = magic;
  if (rd_integer(&r) != N_PARAMS || !rd_char(&r, '\n')) r.bad = true;
  if (!r.bad) q.source_file = rd_blob(&r);
  rd_char(&r, '\n');
  for (int i = 0; i < N_PARAMS && !r.bad; i++) {
    const param_spec *s = &schema[i];
    size_t n = strlen(s->name);
    if (r.len - r.pos < n || memcmp(buf + r.pos, s->name, n) != 0) {
      r.bad = true;
      break;
    }
    r.pos += n;
    long long source = rd_integer(&r), line = rd_integer(&r);
    if (source < PSRC_DEFAULT || source > PSRC_OVERRIDE || line < 0 ||
        line > 1 << 30)
      r.bad = true;
    q.sources[i] = (nrd_param_source)source;
    q.source_lines[i] = (int)line;
    unpack_value(&r, &q, s);
    rd_char(&r, '\n');
  }
  if (r.pos != r.len) r.bad = true;
  if (r.bad) {
    params_free(&q);
    return r.nomem ? NRD_ERR_NOMEM : NRD_ERR_INPUT;
  }
  params_free(p);
  *p = q;
  return NRD_OK;
}
