/* Grid point physics built from parameters (see model.h). */
#include "core/model.h"
#include "core/integrate.h"
#include "util/error.h"
#include "core/linalg.h"
#include "core/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* integrator.scheme's values are the integrator's schemes */
_Static_assert(SCHEME_EULER == (int)STEP_EULER &&
                   SCHEME_EXPONENTIAL == (int)STEP_EXPONENTIAL &&
                   SCHEME_ODE_HEUN == (int)STEP_ODE_HEUN,
               "enum nrd_scheme and enum step_scheme differ");
_Static_assert(SPACING_UNIFORM == (int)TIME_UNIFORM &&
                   SPACING_LOG == (int)TIME_LOG,
               "enum nrd_spacing and enum time_spacing differ");

/* The message of a failure in err, and the failure started with it. */
#define FAIL_WITH(status, err, errlen, ...)                                  \
  (snprintf(err, errlen, __VA_ARGS__), NRD_FAIL(status, "%s", err))

/* A matrix from a file, through the caller's reader (the model reads no
 * file itself: io/matrix_file.h). */
static int read_file_matrix(model_matrix_reader read, const char *file,
                            const char *dataset, int d, double *M,
                            const char *key, char *err, size_t errlen) {
  if (!read)
    return FAIL_WITH(NRD_ERR_INPUT, err, errlen,
                     "%s: no reader for matrix files", key);
  NRD_CHECK(read(file, dataset, d, M, key, err, errlen));
  return NRD_OK;
}

static int build_u(const nrd_params *p, int d, model_matrix_reader read,
                   double *U, char *err, size_t errlen) {
  switch (p->forward.u) {
  case U_ISOTROPIC:
    ou_u_isotropic(d, p->forward.u_scale, U);
    return NRD_OK;
  case U_DIAGONAL:
    if (p->forward.u_diagonal.n != d)
      return FAIL_WITH(NRD_ERR_INPUT, err, errlen,
                       "forward.u_diagonal has %d entries, need %d",
                       p->forward.u_diagonal.n, d);
    ou_u_diagonal(d, p->forward.u_diagonal.v, U);
    return NRD_OK;
  case U_GEOMETRIC:
    ou_u_geometric(d, p->forward.u_min, p->forward.u_max, U);
    return NRD_OK;
  case U_FILE:
    NRD_CHECK(read_file_matrix(read, p->forward.u_file, p->forward.u_dataset,
                               d, U, "forward.u_file", err, errlen));
    return NRD_OK;
  }
  return NRD_FAIL(NRD_ERR_INPUT, "forward.u: no such kind (%d)", p->forward.u);
}

static int build_q(const nrd_params *p, int d, const double *U, uint32_t seed,
                   model_matrix_reader read, double *Q, char *err,
                   size_t errlen) {
  switch (p->forward.q) {
  case Q_NONE:
    memset(Q, 0, (size_t)d * d * sizeof *Q);
    return NRD_OK;
  case Q_RANDOM:
    if (d < 2) {
      memset(Q, 0, (size_t)d * d * sizeof *Q);
      return NRD_OK;
    }
    NRD_CHECK(ou_q_random(d, seed, Q));
    return NRD_OK;
  case Q_OPTIMAL:
    if (d < 2) {
      memset(Q, 0, (size_t)d * d * sizeof *Q);
      return NRD_OK;
    }
    NRD_CHECK(ou_q_optimal(d, U, NULL, Q));
    return NRD_OK;
  case Q_FILE:
    NRD_CHECK(read_file_matrix(read, p->forward.q_file, p->forward.q_dataset,
                               d, Q, "forward.q_file", err, errlen));
    return NRD_OK;
  }
  return NRD_FAIL(NRD_ERR_INPUT, "forward.q: no such kind (%d)", p->forward.q);
}

/* Unit class direction: (1,..,1)/sqrt(d), a random unit vector, or the
 * eigenvector of U with the smallest / largest eigenvalue (slowest / fastest
 * relaxing direction of the reversible process). */
static int build_direction(const nrd_params *p, int d, const double *U,
                           uint32_t seed, double *v) {
  if (p->data.direction == DIR_ONES) {
    for (int i = 0; i < d; i++)
      v[i] = 1.0 / sqrt((double)d);
    return NRD_OK;
  }
  if (p->data.direction == DIR_RANDOM) {
    rng_normals(seed, RNG_PURPOSE_MEANS, 0, 0, (size_t)d, v);
  } else {
    double *w = malloc((size_t)d * sizeof *w);
    double *V = malloc((size_t)d * d * sizeof *V);
    int rc = w && V ? NRD_OK
                    : NRD_FAIL(NRD_ERR_NOMEM, "eigenvectors of U, d = %d", d);
    NRD_TRY(rc, la_sym_eig(d, U, w, V));
    int col = p->data.direction == DIR_SLOWEST ? 0 : d - 1;
    if (rc == NRD_OK)
      for (int i = 0; i < d; i++)
        v[i] = V[(size_t)i * d + col];
    free(w);
    free(V);
    if (rc != NRD_OK) return rc;
  }
  double n2 = 0;
  for (int i = 0; i < d; i++)
    n2 += v[i] * v[i];
  for (int i = 0; i < d; i++)
    v[i] /= sqrt(n2);
  return NRD_OK;
}

static int build_mixture(const nrd_params *p, model *m) {
  int d = m->d, K = (int)p->data.classes;
  int kind = p->data.covariance == COV_STATIONARY ? MIX_COV_STATIONARY
                                                  : MIX_COV_ISOTROPIC;
  double s2 = p->data.sigma * p->data.sigma;
  if (K == 2) {
    NRD_CHECK(mixture_two_class(&m->mix, d, m->point.separation, m->direction,
                                kind, s2, m->op.S, NULL));
    return NRD_OK;
  }
  /* K > 2: equal weights, means along independent random directions, each
   * with |mu_k|^2 = separation * d. */
  double *w = malloc((size_t)K * sizeof *w);
  double *mu = malloc((size_t)K * d * sizeof *mu);
  if (!w || !mu) {
    free(w);
    free(mu);
    return NRD_FAIL(NRD_ERR_NOMEM, "K = %d class means, d = %d", K, d);
  }
  double r = sqrt(m->point.separation * d);
  for (int k = 0; k < K; k++) {
    w[k] = 1.0 / K;
    double *v = mu + (size_t)k * d, n2 = 0;
    rng_normals(m->seed, RNG_PURPOSE_MEANS, (uint64_t)k + 1, 0, (size_t)d, v);
    for (int i = 0; i < d; i++)
      n2 += v[i] * v[i];
    for (int i = 0; i < d; i++)
      v[i] *= r / sqrt(n2);
  }
  int rc = NRD_OK;
  NRD_TRY(rc, mixture_general(&m->mix, d, K, w, mu, kind, s2, m->op.S, NULL));
  free(w);
  free(mu);
  return rc;
}

/* U and Qhat of grid point g, and the operator built from them; err holds
 * the message after the "grid point I: " prefix written at err - off. */
static int build_operator(const nrd_params *p, const grid_point *g,
                          model_matrix_reader read, ou_op *op, double *U,
                          double *Q, char *err, size_t errlen) {
  int d = (int)g->dimension;
  NRD_CHECK(build_u(p, d, read, U, err, errlen));
  NRD_CHECK(build_q(p, d, U, (uint32_t)p->run.seed, read, Q, err, errlen));
  int rc = NRD_OK;
  NRD_TRY(rc, ou_init(op, d, U, Q, g->strength));
  if (rc != NRD_OK) /* nrd_error_trace() says which and where */
    snprintf(err, errlen,
             "the forward operator is invalid (U must be SPD and Q "
             "antisymmetric): %s",
             nrd_strerror(rc));
  return rc;
}

int model_build_operator(ou_op *op, const nrd_params *p, const grid_point *g,
                         model_matrix_reader read, char *err, size_t errlen) {
  memset(op, 0, sizeof *op);
  size_t dd = (size_t)g->dimension * g->dimension;
  double *U = malloc(dd * sizeof *U), *Q = malloc(dd * sizeof *Q);
  snprintf(err, errlen, "grid point %d: ", g->index);
  size_t off = strlen(err);
  int rc = U && Q ? NRD_OK
                  : NRD_FAIL(NRD_ERR_NOMEM, "U and Q, d = %ld", g->dimension);
  NRD_TRY(rc, build_operator(p, g, read, op, U, Q, err + off, errlen - off));
  if (rc == NRD_ERR_NOMEM && strlen(err) == off)
    snprintf(err + off, errlen - off, "%s", nrd_strerror(rc));
  free(U);
  free(Q);
  return rc;
}

/* data.source: file: the training set is the first n_train points of the
 * prepared data, the mixture the Gaussians of its classes. */
static int build_from_data(model *m, const data_set *D, char *err,
                           size_t errlen) {
  int d = m->d, K = D->K;
  if (D->d != d) {
    snprintf(err, errlen,
             "grid.dimension is %d but the points of data.file have %d "
             "coordinates",
             d, D->d);
    return NRD_FAIL(NRD_ERR_INPUT, "dimension %d of data of dimension %d", d,
                    D->d);
  }
  if (m->n_train > D->n) {
    snprintf(err, errlen,
             "grid.n_train is %ld but data.file has %ld points%s", m->n_train,
             D->n, D->n < D->n_file ? " of the kept classes" : "");
    return NRD_FAIL(NRD_ERR_INPUT, "n_train = %ld of %ld points", m->n_train,
                    D->n);
  }
  m->data = D;
  m->train = D->x;
  if (D->label) {
    m->train_label = malloc((size_t)m->n_train * sizeof *m->train_label);
    if (!m->train_label)
      return NRD_FAIL(NRD_ERR_NOMEM, "labels of n = %ld points", m->n_train);
    memcpy(m->train_label, D->label, (size_t)m->n_train * sizeof *D->label);
  }
  size_t dd = (size_t)d * d;
  double *cov = malloc((size_t)K * dd * sizeof *cov);
  if (!cov)
    return NRD_FAIL(NRD_ERR_NOMEM, "K = %d covariances, d = %d", K, d);
  for (int k = 0; k < K; k++)
    memcpy(cov + k * dd, D->within, dd * sizeof *cov);
  int rc = NRD_OK;
  NRD_TRY(rc, mixture_general(&m->mix, d, K, D->weights, D->means,
                              MIX_COV_FULL, 0.0, NULL, cov));
  free(cov);
  return rc;
}

int model_build(model *m, const nrd_params *p, const grid_point *g,
                model_matrix_reader read, char *err, size_t errlen) {
  return model_build_data(m, p, g, read, NULL, err, errlen);
}

int model_build_data(model *m, const nrd_params *p, const grid_point *g,
                     model_matrix_reader read, const data_set *data, char *err,
                     size_t errlen) {
  memset(m, 0, sizeof *m);
  m->point = *g;
  m->d = (int)g->dimension;
  m->seed = (uint32_t)p->run.seed;
  m->single = p->run.precision == PRECISION_FLOAT32;
  m->n_train = g->n_train;
  int d = m->d;
  size_t dd = (size_t)d * d;
  double *U = malloc(dd * sizeof *U), *Q = malloc(dd * sizeof *Q);
  m->direction = malloc((size_t)d * sizeof *m->direction);
  int rc = U && Q && m->direction
               ? NRD_OK
               : NRD_FAIL(NRD_ERR_NOMEM, "U, Q and the class direction, d = %d",
                          d);
  snprintf(err, errlen, "grid point %d: ", g->index);
  size_t off = strlen(err);
  NRD_TRY(rc, build_operator(p, g, read, &m->op, U, Q, err + off,
                             errlen - off));
  if (p->data.source == DATA_FILE) {
    if (rc == NRD_OK && !data)
      rc = NRD_FAIL(NRD_ERR_INPUT, "data.source: file without its data");
    if (m->direction) memset(m->direction, 0, (size_t)d * sizeof *m->direction);
    NRD_TRY(rc, build_from_data(m, data, err + off, errlen - off));
  } else {
    NRD_TRY(rc, build_direction(p, d, U, m->seed, m->direction));
    NRD_TRY(rc, build_mixture(p, m));
  }
  if (rc == NRD_OK && m->n_train > 0 && !m->data) {
    m->train = malloc((size_t)m->n_train * d * sizeof *m->train);
    m->train_label = malloc((size_t)m->n_train * sizeof *m->train_label);
    if (!m->train || !m->train_label)
      rc = NRD_FAIL(NRD_ERR_NOMEM, "the training set: n = %ld, d = %d",
                    m->n_train, d);
    NRD_TRY(rc, mixture_sample(&m->mix, m->seed, RNG_PURPOSE_TRAIN, 0,
                               (int)m->n_train, m->train, m->train_label));
  }
  if (rc != NRD_OK && strlen(err) == off)
    snprintf(err + off, errlen - off, "%s", nrd_strerror(rc));
  free(U);
  free(Q);
  if (rc != NRD_OK) model_free(m);
  return rc;
}

void model_free(model *m) {
  ou_free(&m->op);
  if (m->mix.means) mixture_free(&m->mix);
  free(m->direction);
  if (!m->data) free(m->train); /* else the data's */
  free(m->train_label);
  memset(m, 0, sizeof *m);
}

int score_model_init(score_model *s, const model *m) {
  memset(s, 0, sizeof *s);
  s->m = m;
  s->t = -1.0;
  size_t dd = (size_t)m->d * m->d;
  s->E = malloc(dd * sizeof *s->E);
  s->Delta = malloc(dd * sizeof *s->Delta);
  if (!s->E || !s->Delta)
    return NRD_FAIL(NRD_ERR_NOMEM, "e^{-At} and Delta_t, d = %d", m->d);
  if (m->n_train > 0) {
    int rc = NRD_OK;
    NRD_TRY(rc, score_empirical_init(&s->empirical, m->d, (int)m->n_train,
                                     m->train, NRD_SCORE_BLOCK));
    score_empirical_set_max_logits(&s->empirical, NRD_SCORE_MAX_LOGITS);
    NRD_TRY(rc, score_empirical_set_single(&s->empirical, m->single));
    /* class weights for the clone-free phi of labelled training points */
    if (m->mix.K >= 2)
      NRD_TRY(rc, score_empirical_set_labels(&s->empirical, m->mix.K,
                                             m->train_label));
    return rc;
  }
  NRD_CHECK(score_mixture_init(&s->mixture, &m->mix));
  return NRD_OK;
}

void score_model_free(score_model *s) {
  if (s->m && s->m->n_train > 0)
    score_empirical_free(&s->empirical);
  else if (s->m)
    score_mixture_free(&s->mixture);
  free(s->E);
  free(s->Delta);
  memset(s, 0, sizeof *s);
}

int score_model_set_time(score_model *s, double t) {
  if (t == s->t) return NRD_OK;
  /* E and Delta are overwritten below even if this call fails: forget the
   * old time so that setting it again recomputes everything. */
  s->t = -1.0;
  NRD_CHECK(ou_moments(&s->m->op, t, s->E, s->Delta));
  int rc = NRD_OK;
  if (s->m->n_train > 0) {
    if (!(t > 0))
      return NRD_FAIL(NRD_ERR_NUMERIC,
                      "the empirical score is singular at t = %g (Delta_t = 0)",
                      t);
    NRD_TRY(rc, score_empirical_set_time(&s->empirical, s->E, s->Delta));
  } else {
    NRD_TRY(rc, score_mixture_set_time(&s->mixture, s->E, s->Delta));
  }
  s->t = rc == NRD_OK ? t : -1.0;
  return rc;
}

size_t score_model_work_size(const score_model *s, int P) {
  if (s->m->n_train > 0) return score_empirical_work_size(&s->empirical, P);
  return score_mixture_work_size(&s->mixture, P);
}

int score_model_eval(const score_model *s, int P, const double *X, double *S,
                     double *resp, double *logp, double *y2, int *nearest,
                     double *work) {
  if (s->m->n_train > 0)
    NRD_CHECK(score_empirical_eval_classes(&s->empirical, P, X, S,
                                           s->empirical.label ? resp : NULL,
                                           logp, y2, nearest, work));
  else
    NRD_CHECK(score_mixture_eval(&s->mixture, P, X, S, resp, logp, work));
  return NRD_OK;
}

const double *score_model_dinv(const score_model *s, int *split, double *inv) {
  *split = s->m->n_train > 0;
  *inv = 0;
  return *split ? score_empirical_dinv(&s->empirical, inv) : NULL;
}

int score_model_eval_nonlinear(const score_model *s, int P, const double *X,
                               double *R, double *resp, double *y2,
                               int *nearest, double *work) {
  if (!(s->m->n_train > 0))
    return NRD_FAIL(NRD_ERR_INPUT, "the mixture score has no nonlinear part");
  NRD_CHECK(score_empirical_eval_nonlinear_classes(
      &s->empirical, P, X, R, s->empirical.label ? resp : NULL, y2, nearest,
      work));
  return NRD_OK;
}
