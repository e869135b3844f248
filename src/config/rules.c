/* The rules that tie keys together (forward.u: diagonal needs one
 * u_diagonal entry per dimension, t_min < T, speciation needs branch times
 * inside (t_min, T], ...), checked once every value is known.  The key set
 * last is blamed, at the place where it was set. */
#include "config/params_impl.h"
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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
    cfg_override_where(where, sizeof where, o->override);
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
  cfg_vreport(c->err, c->errlen, where[0] ? where : NULL, key, fmt, ap);
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
    cfg_shortest_double(lo, p->forward.u_min);
    cfg_shortest_double(hi, p->forward.u_max);
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
  cfg_shortest_double(t_min, p->time.t_min);
  cfg_shortest_double(T, p->time.T);
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

/* Keys of the other data source that hold another value than their
 * default (the resolved parameters of a run list every key: being set is
 * not the question, having an effect is): the first one, or NULL. */
static const char *changed_key(const nrd_params *p, const char *const *keys,
                               size_t n) {
  nrd_params def;
  memset(&def, 0, sizeof def);
  if (params_init_defaults(&def) != NRD_OK) return NULL;
  const char *hit = NULL;
  for (size_t k = 0; k < n && !hit; k++)
    if (!params_value_equal(p, &def, index_of(keys[k]))) hit = keys[k];
  params_free(&def);
  return hit;
}

/* data.source: file: the points, their classes and the training sets are
 * the file's; the keys of the mixture would be silently unused, and the
 * other way round. */
static int check_data_file(const combination_ctx *c) {
  const nrd_params *p = c->p;
  static const char *const mixture_keys[] = {"data.classes", "data.covariance",
                                             "data.sigma", "data.direction",
                                             "grid.separation"};
  static const char *const file_keys[] = {"data.file", "data.dataset",
                                          "data.labels", "data.class_subset",
                                          "data.normalize"};
  if (p->data.source != DATA_FILE) {
    const char *fk = changed_key(p, file_keys, 5);
    if (fk)
      return blame(c, fk,
                   "has no effect with data.source: mixture (set "
                   "data.source: file to read the data from a file)");
    return NRD_OK;
  }
  if (!p->data.file[0])
    return blame(c, "data.source",
                 "'file' needs data.file, the HDF5 file holding the points");
  const char *mk = changed_key(p, mixture_keys, 5);
  if (mk)
    return blame(c, mk,
                 "has no effect with data.source: file (the data, their "
                 "classes and their geometry are the file's)");
  if (p->data.class_subset.n > 0 && !p->data.labels[0])
    return blame(c, "data.class_subset",
                 "needs labels: data.labels is \"\" (unlabelled data)");
  const nrd_ilist *cs = &p->data.class_subset;
  for (int i = 0; i < cs->n; i++)
    for (int j = 0; j < i; j++)
      if (cs->v[i] == cs->v[j])
        return blame(c, "data.class_subset",
                     "label %ld appears twice (elements %d and %d)", cs->v[i],
                     j + 1, i + 1);
  const nrd_ilist *nt = &p->grid.n_train;
  for (int k = 0; k < nt->n; k++)
    if (nt->v[k] <= 0 && p->sources[index_of("grid.n_train")] == PSRC_DEFAULT)
      return blame(c, "data.source",
                   "'file' needs every grid.n_train > 0, the training points "
                   "taken from the file (element %d is %ld)",
                   k + 1, nt->v[k]);
    else if (nt->v[k] <= 0)
      return blame(c, "grid.n_train",
                   "element %d must be > 0 with data.source: file (the "
                   "training points are the file's; there is no exact "
                   "score of file data) (got %ld)",
                   k + 1, nt->v[k]);
  if (p->integrator.start == START_EXACT)
    return blame(c, "integrator.start",
                 "'exact' is not available with data.source: file (the "
                 "exact marginal at time.T of file data is not sampled); "
                 "use stationary");
  if (params_has_protocol(p, "uturn") &&
      p->experiment.uturn_data != UTURN_TRAIN)
    return blame(c, "experiment.uturn_data",
                 "must be 'train' with data.source: file (U-turns start "
                 "from the file's training points)");
  if (params_has_protocol(p, "forward"))
    return blame(c, "experiment.protocol",
                 "'forward' is not available with data.source: file (its "
                 "paths start from mixture samples)");
  return NRD_OK;
}

static int check_data(const combination_ctx *c) {
  const nrd_params *p = c->p;
  int rc = check_data_file(c);
  if (rc != NRD_OK) return rc;
  int dir = p->data.direction;
  if ((dir == DIR_SLOWEST || dir == DIR_FASTEST) && p->data.classes != 2) {
    const char *word = cfg_schema[index_of("data.direction")].choices[dir];
    if (set_later(c, "data.classes", "data.direction"))
      return blame(c, "data.classes",
                   "must be 2 with data.direction: %s (got %ld)", word,
                   p->data.classes);
    return blame(c, "data.direction", "'%s' needs data.classes = 2 (got %ld)",
                 word, p->data.classes);
  }
  return NRD_OK;
}

/* Every element of times (the list of key) in (time.t_min, time.T]. */
static int check_inside_run(const combination_ctx *c, const char *key,
                            const nrd_dlist *times) {
  for (int k = 0; k < times->n; k++) {
    double x = times->v[k];
    if (x > c->p->time.t_min && x <= c->p->time.T) continue;
    char xs[32];
    cfg_shortest_double(xs, x);
    return blame(c, key, "element %d must be in (time.t_min, time.T] (got %s)",
                 k + 1, xs);
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
      cfg_shortest_double(bs, b);
      cfg_shortest_double(ls, b <= p->time.t_min ? p->time.t_min : p->time.T);
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
    int rc = check_inside_run(c, "experiment.branch_times", bt);
    if (rc != NRD_OK) return rc;
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
    int rc = check_inside_run(c, "experiment.uturn_times", ut);
    if (rc != NRD_OK) return rc;
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
    cfg_shortest_double(ss, s);
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

int cfg_check_combinations(const combination_ctx *c) {
  int rc = check_forward(c);
  if (rc == NRD_OK) rc = check_time(c);
  if (rc == NRD_OK) rc = check_data(c);
  if (rc == NRD_OK) rc = check_experiment(c);
  return rc;
}
