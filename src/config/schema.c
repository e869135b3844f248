/* The parameter schema: one table entry per key, with its type, default,
 * bounds, choices and documentation, and what walks the table without
 * reading or writing YAML: the schema queries of params.h, field access,
 * freeing and comparing values.  Adding a key: an entry here (and the
 * member in nrd_params, and N_PARAMS in params_impl.h). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "config/params_impl.h"

#include <stdlib.h>
#include <string.h>

/* run.seed reaches 2^32 - 1 and ensemble.particles 10^12. */
_Static_assert(sizeof(long) >= 8, "nrdiff needs a 64-bit long (LP64)");

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
static const char *const source_choices[] = {"mixture", "file", NULL};
static const char *const normalize_choices[] = {"none", "center", "standardize",
                                                NULL};
static const char *const spacing_choices[] = {"uniform", "log", NULL};
static const char *const scheme_choices[] = {"euler", "exponential", "ode_heun",
                                             NULL};
static const char *const start_choices[] = {"stationary", "exact", NULL};
static const char *const precision_choices[] = {"float64", "float32", NULL};
static const char *const overwrite_choices[] = {"false", "true", NULL};
static const char *const uturn_data_choices[] = {"mixture", "train", NULL};
static const char *const protocol_choices[] = {
    "generate", "speciation", "collapse", "uturn", "forward", NULL};

const param_spec cfg_schema[] = {
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
     .doc = "within-class covariance: isotropic (data.sigma^2 I), or the "
            "stationary covariance U^-1 of the forward process (then "
            "data.sigma is not used)",
     FIELD(data.covariance)},
    {.name = "data.sigma",
     .type = TYPE_DOUBLE,
     .default_yaml = "1.0",
     AT_LEAST(0),
     .doc = "within-class standard deviation of isotropic classes "
            "(data.covariance: isotropic)",
     FIELD(data.sigma)},
    {.name = "data.direction",
     .type = TYPE_ENUM,
     .default_yaml = "ones",
     .choices = direction_choices,
     .doc = "direction of the class means: (1, ..., 1), random, or the "
            "slowest / fastest eigenvector of U (these two need "
            "data.classes = 2)",
     FIELD(data.direction)},
    {.name = "data.source",
     .type = TYPE_ENUM,
     .default_yaml = "mixture",
     .choices = source_choices,
     .doc = "where the data come from: the Gaussian mixture of the data.* "
            "keys above, or the points of data.file (then every "
            "grid.n_train > 0 and the classes are the file's labels)",
     FIELD(data.source)},
    {.name = "data.file",
     .type = TYPE_STRING,
     .default_yaml = "\"\"",
     .doc = "HDF5 data file (doc/data-files.md: an n x d dataset of uint8, "
            "float32 or float64 points, optional integer labels), for "
            "data.source: file; never modified",
     FIELD(data.file)},
    {.name = "data.dataset",
     .type = TYPE_STRING,
     .default_yaml = "\"data\"",
     .min_length = 1,
     .doc = "name of the n x d dataset of points inside data.file",
     FIELD(data.dataset)},
    {.name = "data.labels",
     .type = TYPE_STRING,
     .default_yaml = "\"labels\"",
     .doc = "name of the dataset of n integer labels inside data.file; \"\" "
            "for unlabelled data (one class: no speciation observables)",
     FIELD(data.labels)},
    {.name = "data.class_subset",
     .type = TYPE_INT_LIST,
     .default_yaml = "[]",
     AT_LEAST(-2147483648.0),
     AT_MOST(2147483647.0),
     .doc = "labels of the classes to keep, in the order that numbers them "
            "0, 1, ... (empty: every label, in increasing order)",
     FIELD(data.class_subset)},
    {.name = "data.normalize",
     .type = TYPE_ENUM,
     .default_yaml = "standardize",
     .choices = normalize_choices,
     .doc = "map of the file's points (uint8 pixels first to [-1, 1] by "
            "x/127.5 - 1): none, center (minus the mean point), or "
            "standardize (centred, then scaled so that the mean variance "
            "per coordinate is 1); computed on the kept classes",
     FIELD(data.normalize)},

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
_Static_assert(sizeof cfg_schema / sizeof cfg_schema[0] == N_PARAMS,
               "N_PARAMS (params_impl.h) must count the entries of cfg_schema");

int params_schema_size(void) {
  return N_PARAMS;
}

const char *params_schema_name(int i) {
  return i >= 0 && i < N_PARAMS ? cfg_schema[i].name : NULL;
}

int params_schema_restartable(int i) {
  return i >= 0 && i < N_PARAMS && cfg_schema[i].restartable;
}

int params_schema_find(const char *name) {
  for (int i = 0; name && i < N_PARAMS; i++)
    if (strcmp(cfg_schema[i].name, name) == 0) return i;
  return -1;
}

int cfg_count_choices(const char *const *choices) {
  int n = 0;
  while (choices && choices[n])
    n++;
  return n;
}

int cfg_find_choice(const char *const *choices, const char *word) {
  for (int i = 0; choices && choices[i]; i++)
    if (strcmp(choices[i], word) == 0) return i;
  return -1;
}

/* Section of a dotted name: its length before the dot. */
size_t cfg_section_length(const char *name) {
  const char *dot = strchr(name, '.');
  return dot ? (size_t)(dot - name) : strlen(name);
}

const char *cfg_key_part(const char *name) {
  const char *dot = strchr(name, '.');
  return dot ? dot + 1 : name;
}

bool cfg_is_section(const char *section) {
  size_t n = strlen(section);
  for (int i = 0; i < N_PARAMS; i++)
    if (cfg_section_length(cfg_schema[i].name) == n &&
        strncmp(cfg_schema[i].name, section, n) == 0)
      return true;
  return false;
}

void cfg_free_value(nrd_params *p, const param_spec *s) {
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
    cfg_free_value(p, &cfg_schema[i]);
  free(p->source_file);
  free(p->sources);
  free(p->source_lines);
  memset(p, 0, sizeof *p);
}

int params_value_equal(const nrd_params *a, const nrd_params *b, int i) {
  if (i < 0 || i >= N_PARAMS) return 0;
  const param_spec *s = &cfg_schema[i];
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
