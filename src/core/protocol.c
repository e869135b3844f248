/* Measurement protocols: the layout of their state and sums, and their
 * stepping beside the main ensemble, block by block (see protocol.h). */
#include "core/protocol.h"
#include "util/error.h"
#include "core/linalg.h"
#include "core/rng.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Index k in [lo, hi] of the grid time t[k] nearest to s (t decreasing). */
static long nearest_step(const double *t, long lo, long hi, double s) {
  long best = lo;
  for (long k = lo; k <= hi; k++)
    if (fabs(t[k] - s) < fabs(t[best] - s)) best = k;
  return best;
}

/* A distinct random stream per particle and set: particle ids stay below
 * 2^40. */
static uint64_t stream_of(long pid, int set) {
  return (uint64_t)pid + ((uint64_t)set << 40);
}

int proto_layout_init(proto_layout *X, const nrd_params *p,
                      const grid_point *g, int K, const double *t,
                      long steps) {
  memset(X, 0, sizeof *X);
  int d = (int)g->dimension;
  X->d = d;
  X->K = K;
  X->steps = steps;
  X->n_train = g->n_train;
  X->speciation = params_has_protocol(p, "speciation");
  X->collapse = params_has_protocol(p, "collapse") && g->n_train > 0;
  X->uturn = params_has_protocol(p, "uturn");
  X->forward = params_has_protocol(p, "forward");
  const nrd_dlist *bt = &p->experiment.branch_times;
  if (X->speciation || X->collapse) X->n_branch = bt->n;
  if (X->uturn) X->n_uturn = p->experiment.uturn_times.n;
  X->uturn_train = p->experiment.uturn_data == UTURN_TRAIN;
  const nrd_dlist *rt = &p->experiment.reference_times;
  if (X->forward) X->n_ref = rt->n > 0 ? rt->n : 1;
  int nb = X->n_branch, nu = X->n_uturn, nr = X->n_ref;
  X->branch_step = calloc((size_t)nb + 1, sizeof *X->branch_step);
  X->branch_time = calloc((size_t)nb + 1, sizeof *X->branch_time);
  X->uturn_step = calloc((size_t)nu + 1, sizeof *X->uturn_step);
  X->uturn_time = calloc((size_t)nu + 1, sizeof *X->uturn_time);
  X->ref_step = calloc((size_t)nr + 1, sizeof *X->ref_step);
  X->ref_time = calloc((size_t)nr + 1, sizeof *X->ref_time);
  if (!X->branch_step || !X->branch_time || !X->uturn_step ||
      !X->uturn_time || !X->ref_step || !X->ref_time) {
    proto_layout_free(X);
    return NRD_FAIL(NRD_ERR_NOMEM, "the protocols' time lists");
  }
  long last = steps > 0 ? steps - 1 : 0; /* a clone needs a step to run */
  for (int b = 0; b < nb; b++) {
    X->branch_step[b] = nearest_step(t, 0, last, bt->v[b]);
    X->branch_time[b] = t[X->branch_step[b]];
  }
  for (int u = 0; u < nu; u++) {
    X->uturn_step[u] = nearest_step(t, 0, last, p->experiment.uturn_times.v[u]);
    X->uturn_time[u] = t[X->uturn_step[u]];
  }
  for (int r = 0; r < nr; r++) {
    double s = rt->n > 0 ? rt->v[r] : p->time.t_min;
    X->ref_step[r] = nearest_step(t, 0, steps, s);
    X->ref_time[r] = t[X->ref_step[r]];
  }
  X->off_clone = d;
  X->off_uturn = X->off_clone + nb * d;
  X->off_fwd = X->off_uturn + nu * d;
  X->off_ref = X->off_fwd + (X->forward ? 2 * d : 0);
  X->off_freeze = X->off_ref + 2 * nr * d;
  X->width = X->off_freeze + (X->collapse ? 2 : 0);
  X->uturn_stride = 3 + 4 * K;
  X->f_count = 0;
  X->f_class = 1;
  X->f_nearest = X->f_class + (X->speciation ? nb : 0);
  X->f_freeze = X->f_nearest + (X->collapse ? nb : 0);
  X->f_uturn = X->f_freeze + (X->collapse ? 2 : 0);
  X->final_width = X->f_uturn + nu * X->uturn_stride;
  return NRD_OK;
}

void proto_layout_free(proto_layout *X) {
  free(X->branch_step);
  free(X->branch_time);
  free(X->uturn_step);
  free(X->uturn_time);
  free(X->ref_step);
  free(X->ref_time);
  memset(X, 0, sizeof *X);
}

void proto_layout_observables(const proto_layout *X, obs_layout *L) {
  if (X->collapse) obs_layout_add(L, OBS_LOG_PE, 1);
  if (X->forward) {
    obs_layout_add(L, OBS_FWD_DATA_NORM2, 1);
    obs_layout_add(L, OBS_FWD_DATA_CORR, 2 * X->n_ref);
    obs_layout_add(L, OBS_FWD_STAT_NORM2, 1);
    obs_layout_add(L, OBS_FWD_STAT_CORR, 2 * X->n_ref);
  }
  if (X->speciation || X->collapse || X->uturn || X->forward)
    obs_layout_add(L, OBS_FINAL, X->final_width);
}

/* ------------------------------------------------------------ running */

static void *zalloc(size_t n, size_t size, int *ok) {
  void *q = calloc(n ? n : 1, size);
  if (!q) *ok = 0;
  return q;
}

/* Speciation classes are the labels of the nearest training points
 * (classify). */
static int nearest_labels(const proto_layout *X, const model *m) {
  return X->n_train > 0 && m->train_label != NULL;
}

int proto_run_init(proto_run *R, const proto_layout *X, const model *m,
                   const score_model *s, const double *t, long bs) {
  memset(R, 0, sizeof *R);
  R->lay = X;
  R->m = m;
  R->bs = bs;
  int d = X->d, K = X->K, ok = 1, rc = NRD_OK;
  size_t dd = (size_t)d * d, bd = (size_t)bs * d;
  R->Eu = zalloc((size_t)X->n_uturn * dd, sizeof(double), &ok);
  R->Lu = zalloc((size_t)X->n_uturn * dd, sizeof(double), &ok);
  R->E0 = zalloc(dd, sizeof(double), &ok);
  R->Ls = zalloc(dd, sizeof(double), &ok);
  R->Ef = zalloc(dd, sizeof(double), &ok);
  R->Lf = zalloc(dd, sizeof(double), &ok);
  R->X = zalloc(bd, sizeof(double), &ok);
  R->S = zalloc(bd, sizeof(double), &ok);
  R->Xi = zalloc(bd, sizeof(double), &ok);
  R->tmp = zalloc(bd, sizeof(double), &ok);
  R->X0 = zalloc(bd, sizeof(double), &ok);
  R->logp = zalloc((size_t)bs, sizeof(double), &ok);
  R->resp = zalloc((size_t)bs * K, sizeof(double), &ok);
  R->dots = zalloc(X->collapse || nearest_labels(X, m) ? (size_t)bs * 1024 : 1,
                   sizeof(double), &ok);
  R->a2 = zalloc((size_t)(X->n_train > 0 ? X->n_train : 1), sizeof(double),
                 &ok);
  R->cls_main = zalloc((size_t)bs, sizeof(int), &ok);
  R->near_main = zalloc((size_t)bs, sizeof(int), &ok);
  R->near_now = zalloc((size_t)bs, sizeof(int), &ok);
  R->labels = zalloc((size_t)bs, sizeof(int), &ok);
  if (!ok)
    return NRD_FAIL(NRD_ERR_NOMEM, "protocol work for blocks of %ld, d = %d",
                    bs, d);
  R->hf = -1;
  for (int u = 0; rc == NRD_OK && u < X->n_uturn; u++) {
    NRD_TRY(rc, ou_propagator(&m->op, X->uturn_time[u], R->Eu + u * dd));
    NRD_TRY(rc, ou_noise_cov(&m->op, X->uturn_time[u], R->tmp));
    NRD_TRY(rc, la_cholesky(d, R->tmp, R->Lu + u * dd));
  }
  double t_min = t[X->steps];
  if (rc == NRD_OK && X->forward) {
    NRD_TRY(rc, la_cholesky(d, m->op.S, R->Ls));
    NRD_TRY(rc, ou_propagator(&m->op, t_min, R->E0));
    if (rc == NRD_OK && t_min > 0) {
      R->L0 = zalloc(dd, sizeof(double), &ok);
      if (!ok) rc = NRD_FAIL(NRD_ERR_NOMEM, "chol Delta_{t_min}, d = %d", d);
      NRD_TRY(rc, ou_noise_cov(&m->op, t_min, R->tmp));
      NRD_TRY(rc, la_cholesky(d, R->tmp, R->L0));
    }
  }
  for (long mu = 0; mu < X->n_train; mu++)
    R->a2[mu] = cblas_ddot(d, m->train + mu * d, 1, m->train + mu * d, 1);
  /* the classifier: the exact class posterior at t_min (sign(mu.C^-1 x)
   * for two symmetric classes); where it is singular (point masses at
   * t = 0) the nearest class mean */
  if (rc == NRD_OK && (X->speciation || X->uturn) && !nearest_labels(X, m) &&
      score_mixture_init(&R->cls, &m->mix) == NRD_OK) {
    R->cls_ok = 1;
    double *E = zalloc(dd, sizeof(double), &ok), *D = zalloc(dd, sizeof(double), &ok);
    if (!ok || ou_propagator(&m->op, t_min, E) != NRD_OK ||
        ou_noise_cov(&m->op, t_min, D) != NRD_OK ||
        score_mixture_set_time(&R->cls, E, D) != NRD_OK) {
      score_mixture_free(&R->cls);
      R->cls_ok = 0;
      nrd_error_reset(); /* handled: the nearest class mean */
    }
    free(E);
    free(D);
  }
  size_t w1 = score_model_work_size(s, (int)bs);
  size_t w2 = R->cls_ok ? score_mixture_work_size(&R->cls, (int)bs) : 0;
  R->work = zalloc(w1 > w2 ? w1 : w2, sizeof(double), &ok);
  if (!ok)
    rc = NRD_FAIL(NRD_ERR_NOMEM, "protocol work for blocks of %ld, d = %d",
                  bs, d);
  return rc;
}

void proto_run_free(proto_run *R) {
  if (R->cls_ok) score_mixture_free(&R->cls);
  free(R->Eu);
  free(R->Lu);
  free(R->E0);
  free(R->L0);
  free(R->Ls);
  free(R->Ef);
  free(R->Lf);
  free(R->X);
  free(R->S);
  free(R->Xi);
  free(R->tmp);
  free(R->X0);
  free(R->logp);
  free(R->resp);
  free(R->work);
  free(R->dots);
  free(R->a2);
  free(R->cls_main);
  free(R->near_main);
  free(R->near_now);
  free(R->labels);
  memset(R, 0, sizeof *R);
}

/* Copy the d doubles at offset `off` of each state row to/from X (n x d). */
static void gather(int width, int d, long n, const double *state, int off,
                   double *X) {
  for (long i = 0; i < n; i++)
    memcpy(X + i * d, state + i * width + off, (size_t)d * sizeof *X);
}

static void scatter(int width, int d, long n, const double *X, double *state,
                    int off) {
  for (long i = 0; i < n; i++)
    memcpy(state + i * width + off, X + i * d, (size_t)d * sizeof *X);
}

/* Nearest training point of each row: argmax_mu w_mu from the empirical
 * score where it is defined (Mahalanobis in Delta_t), else Euclidean (the
 * t -> 0 limit, Delta_t ~ 2t I). */
static int nearest_point(proto_run *R, score_model *cur, int score_ok, long n,
                         const double *X, int *near) {
  int d = R->lay->d;
  long ntr = R->lay->n_train;
  if (score_ok) {
    NRD_CHECK(score_model_eval(cur, (int)n, X, R->S, NULL, NULL, NULL, near,
                               R->work));
    return NRD_OK;
  }
  double *best = R->logp;
  for (long i = 0; i < n; i++)
    best[i] = INFINITY, near[i] = 0;
  for (long mu0 = 0; mu0 < ntr; mu0 += 1024) {
    int nb = (int)(ntr - mu0 < 1024 ? ntr - mu0 : 1024);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, nb, d, 1.0, X,
                d, R->m->train + mu0 * d, d, 0.0, R->dots, nb);
    for (long i = 0; i < n; i++)
      for (int j = 0; j < nb; j++) {
        double s = R->a2[mu0 + j] - 2 * R->dots[i * nb + j];
        if (s < best[i]) best[i] = s, near[i] = (int)(mu0 + j);
      }
  }
  return NRD_OK;
}

/* Class of each row: for an empirical score of labelled training points
 * the label of the nearest one (the point the sample memorised, as the
 * clone-free phi counts it); else the argmax of the mixture posterior at
 * t_min, or where that is singular the nearest class mean. */
static int classify(proto_run *R, long n, const double *X, int *cls) {
  const mixture *mx = &R->m->mix;
  int d = R->lay->d, K = mx->K;
  if (nearest_labels(R->lay, R->m)) {
    NRD_CHECK(nearest_point(R, NULL, 0, n, X, cls));
    for (long i = 0; i < n; i++)
      cls[i] = R->m->train_label[cls[i]];
    return NRD_OK;
  }
  if (R->cls_ok) {
    NRD_CHECK(score_mixture_eval(&R->cls, (int)n, X, R->S, R->resp, NULL,
                                 R->work));
    for (long i = 0; i < n; i++) {
      int best = 0;
      for (int k = 1; k < K; k++)
        if (R->resp[i * K + k] > R->resp[i * K + best]) best = k;
      cls[i] = best;
    }
    return NRD_OK;
  }
  for (long i = 0; i < n; i++) {
    double bestd = INFINITY;
    for (int k = 0; k < K; k++) {
      double s = 0;
      for (int j = 0; j < d; j++) {
        double e = X[i * d + j] - mx->means[(size_t)k * d + j];
        s += e * e;
      }
      if (s < bestd) bestd = s, cls[i] = k;
    }
  }
  return NRD_OK;
}

/* Data point x_0 of particle pid (and its class): a training point or a
 * fresh mixture sample, the same for every protocol set. */
static int data_point(proto_run *R, int train, long pid, double *x0,
                      int *label) {
  const model *m = R->m;
  int d = R->lay->d;
  if (train) {
    long mu = pid % m->n_train;
    memcpy(x0, m->train + mu * d, (size_t)d * sizeof *x0);
    *label = m->train_label[mu];
    return NRD_OK;
  }
  NRD_CHECK(mixture_sample(&m->mix, m->seed, RNG_PURPOSE_DATA, (uint64_t)pid,
                           1, x0, label));
  return NRD_OK;
}

/* Reverse-SDE step of the set at `off` of the block's state rows. */
static int reverse_set(proto_run *R, score_model *cur, const step_ops *ops,
                       const proto_block *b, int off, uint32_t purpose,
                       int set) {
  const proto_layout *X = R->lay;
  int d = X->d;
  long n = b->count;
  gather(X->width, d, n, b->state, off, R->X);
  NRD_CHECK(score_model_eval(cur, (int)n, R->X, R->S, NULL, NULL, NULL, NULL,
                             R->work));
  for (long i = 0; i < n; i++)
    rng_normals(R->m->seed, purpose, stream_of(b->first + i, set),
                (uint32_t)b->k, (size_t)d, R->Xi + i * d);
  reverse_sde_step(ops, (int)n, R->X, R->S, R->Xi, R->tmp);
  scatter(X->width, d, n, R->X, b->state, off);
  return NRD_OK;
}

static int clones_step(proto_run *R, score_model *cur, const step_ops *ops,
                       const proto_block *b) {
  const proto_layout *X = R->lay;
  int d = X->d, rc = NRD_OK;
  for (int s = 0; rc == NRD_OK && s < X->n_branch; s++) {
    int off = X->off_clone + s * d;
    if (b->k == X->branch_step[s]) /* branch: the clone starts at x_{t_b} */
      scatter(X->width, d, b->count, b->main, b->state, off);
    if (b->k >= X->branch_step[s] && b->k < X->steps)
      NRD_TRY(rc, reverse_set(R, cur, ops, b, off, RNG_PURPOSE_CLONE, 1 + s));
  }
  return rc;
}

static int uturns_step(proto_run *R, score_model *cur, const step_ops *ops,
                       const proto_block *b) {
  const proto_layout *X = R->lay;
  int d = X->d, rc = NRD_OK;
  size_t dd = (size_t)d * d;
  for (int u = 0; rc == NRD_OK && u < X->n_uturn; u++) {
    int off = X->off_uturn + u * d;
    if (b->k == X->uturn_step[u]) { /* x_{T_u} drawn exactly from x_0 */
      for (long i = 0; rc == NRD_OK && i < b->count; i++) {
        NRD_TRY(rc, data_point(R, X->uturn_train, b->first + i,
                               R->X0 + i * d, &R->labels[i]));
        rng_normals(R->m->seed, RNG_PURPOSE_UTURN,
                    stream_of(b->first + i, 1 + u), 0xffffffffu, (size_t)d,
                    R->Xi + i * d);
      }
      if (rc != NRD_OK) return rc;
      forward_sample(d, (int)b->count, R->Eu + u * dd, R->Lu + u * dd, R->X0,
                     R->Xi, R->X);
      scatter(X->width, d, b->count, R->X, b->state, off);
    }
    if (b->k >= X->uturn_step[u] && b->k < X->steps)
      NRD_TRY(rc, reverse_set(R, cur, ops, b, off, RNG_PURPOSE_UTURN, 1 + u));
  }
  return rc;
}

/* Forward paths: at loop step k they are at grid index j = steps - k,
 * forward time t[j], and move to t[j - 1]. */
static int forward_step(proto_run *R, const obs_layout *L, const double *t,
                        const proto_block *b) {
  const proto_layout *X = R->lay;
  const model *m = R->m;
  int d = X->d, W = X->width, rc = NRD_OK;
  long n = b->count, j = X->steps - b->k;
  if (b->k == 0) { /* start at t_min: data noised exactly, or N(0, S) */
    for (long i = 0; rc == NRD_OK && i < n; i++) {
      NRD_TRY(rc,
              data_point(R, 0, b->first + i, R->X0 + i * d, &R->labels[i]));
      rng_normals(m->seed, RNG_PURPOSE_FORWARD_PATH, stream_of(b->first + i, 1),
                  0xffffffffu, (size_t)d, R->Xi + i * d);
    }
    if (rc != NRD_OK) return rc;
    if (R->L0)
      forward_sample(d, (int)n, R->E0, R->L0, R->X0, R->Xi, R->X);
    else
      memcpy(R->X, R->X0, (size_t)n * d * sizeof *R->X);
    scatter(W, d, n, R->X, b->state, X->off_fwd);
    for (long i = 0; i < n; i++)
      rng_normals(m->seed, RNG_PURPOSE_FORWARD_PATH, stream_of(b->first + i, 2),
                  0xffffffffu, (size_t)d, R->Xi + i * d);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, d, d, 1.0,
                R->Xi, d, R->Ls, d, 0.0, R->X, d);
    scatter(W, d, n, R->X, b->state, X->off_fwd + d);
  }
  for (int r = 0; r < X->n_ref; r++)
    if (X->ref_step[r] == j)
      for (long i = 0; i < n; i++)
        memcpy(b->state + i * W + X->off_ref + 2 * r * d,
               b->state + i * W + X->off_fwd, 2 * (size_t)d * sizeof(double));
  if (b->rec_fwd) {
    int on[2] = {L->offset[OBS_FWD_DATA_NORM2], L->offset[OBS_FWD_STAT_NORM2]};
    int oc[2] = {L->offset[OBS_FWD_DATA_CORR], L->offset[OBS_FWD_STAT_CORR]};
    for (int e = 0; e < 2; e++) {
      double *rec = b->rec_fwd;
      for (long i = 0; i < n; i++) {
        const double *x = b->state + i * W + X->off_fwd + e * d;
        rec[on[e]] += cblas_ddot(d, x, 1, x, 1);
        for (int r = 0; r < X->n_ref; r++) {
          double *c = rec + oc[e] + 2 * r;
          if (j > X->ref_step[r]) { /* t < s: not defined */
            c[0] = c[1] = NAN;
            continue;
          }
          const double *xs = b->state + i * W + X->off_ref + (2 * r + e) * d;
          c[0] += cblas_ddot(d, x, 1, xs, 1);
          c[1] += cblas_ddot(d, xs, 1, xs, 1);
        }
      }
    }
  }
  if (j == 0) return NRD_OK;
  double h = t[j - 1] - t[j];
  if (h != R->hf) { /* exact transition over h (uniform grids: once) */
    NRD_CHECK(ou_propagator(&m->op, h, R->Ef));
    NRD_CHECK(ou_noise_cov(&m->op, h, R->tmp));
    NRD_CHECK(la_cholesky(d, R->tmp, R->Lf));
    R->hf = h;
  }
  for (int e = 0; e < 2; e++) {
    gather(W, d, n, b->state, X->off_fwd + e * d, R->X0);
    for (long i = 0; i < n; i++)
      rng_normals(m->seed, RNG_PURPOSE_FORWARD_PATH,
                  stream_of(b->first + i, 1 + e), (uint32_t)b->k, (size_t)d,
                  R->Xi + i * d);
    forward_sample(d, (int)n, R->Ef, R->Lf, R->X0, R->Xi, R->X);
    scatter(W, d, n, R->X, b->state, X->off_fwd + e * d);
  }
  return NRD_OK;
}

/* Collapse at an output time: freezing state of the main trajectories and
 * ln p^e_t on direct samples x = e^{-At} a_mu + L_t xi, mu uniform. */
static int collapse_observe(proto_run *R, score_model *cur, const obs_layout *L,
                            const double *t, const proto_block *b) {
  const proto_layout *X = R->lay;
  int d = X->d, W = X->width, rc = NRD_OK;
  long n = b->count;
  const int *near = b->main_nearest;
  if (!b->score_ok || !near) {
    NRD_CHECK(nearest_point(R, cur, 0, n, b->main, R->near_now));
    near = R->near_now;
  }
  for (long i = 0; i < n; i++) {
    double *f = b->state + i * W + X->off_freeze;
    if (b->k == 0 || f[0] != (double)near[i]) f[0] = near[i], f[1] = t[b->k];
  }
  double *lp = b->rec_out + L->offset[OBS_LOG_PE];
  if (!b->score_ok) {
    *lp = NAN;
    return NRD_OK;
  }
  const score_empirical *e = &cur->empirical;
  for (long i = 0; i < n; i++) {
    double u;
    rng_uniforms(R->m->seed, RNG_PURPOSE_EXCESS, stream_of(b->first + i, 1),
                 (uint32_t)b->k, 1, &u);
    long mu = (long)(u * (double)X->n_train);
    mu = mu < X->n_train ? mu : X->n_train - 1;
    rng_normals(R->m->seed, RNG_PURPOSE_EXCESS, stream_of(b->first + i, 2),
                (uint32_t)b->k, (size_t)d, R->Xi + i * d);
    memcpy(R->X + i * d, e->b + mu * d, (size_t)d * sizeof *R->X);
  }
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, d, d, 1.0,
              R->Xi, d, e->L, d, 1.0, R->X, d);
  NRD_TRY(rc, score_model_eval(cur, (int)n, R->X, R->S, NULL, R->logp, NULL,
                               NULL, R->work));
  for (long i = 0; rc == NRD_OK && i < n; i++)
    *lp += R->logp[i];
  return rc;
}

/* End of the run: compare clones, sum freezing times and U-turn overlaps. */
static int finish(proto_run *R, score_model *cur, const proto_block *b) {
  const proto_layout *X = R->lay;
  int d = X->d, W = X->width, K = X->K, rc = NRD_OK;
  long n = b->count;
  double *f = b->rec_final;
  f[X->f_count] += (double)n;
  if (X->speciation && X->n_branch > 0)
    NRD_TRY(rc, classify(R, n, b->main, R->cls_main));
  const int *near_main = b->main_nearest; /* evaluated with the score */
  if (rc == NRD_OK && X->collapse && X->n_branch > 0 && !near_main) {
    NRD_TRY(rc, nearest_point(R, cur, 0, n, b->main, R->near_main));
    near_main = R->near_main;
  }
  for (int s = 0; rc == NRD_OK && s < X->n_branch; s++) {
    gather(W, d, n, b->state, X->off_clone + s * d, R->X);
    if (X->speciation) {
      NRD_TRY(rc, classify(R, n, R->X, R->labels));
      for (long i = 0; rc == NRD_OK && i < n; i++)
        f[X->f_class + s] += R->labels[i] == R->cls_main[i];
    }
    if (rc == NRD_OK && X->collapse) {
      NRD_TRY(rc, nearest_point(R, cur, b->score_ok, n, R->X, R->near_now));
      for (long i = 0; rc == NRD_OK && i < n; i++)
        f[X->f_nearest + s] += R->near_now[i] == near_main[i];
    }
  }
  if (X->collapse)
    for (long i = 0; i < n; i++) {
      double tf = b->state[i * W + X->off_freeze + 1];
      f[X->f_freeze] += tf;
      f[X->f_freeze + 1] += tf * tf;
    }
  for (int u = 0; rc == NRD_OK && u < X->n_uturn; u++) {
    double *g = f + X->f_uturn + u * X->uturn_stride;
    for (long i = 0; rc == NRD_OK && i < n; i++) {
      int label;
      NRD_TRY(rc, data_point(R, X->uturn_train, b->first + i, R->X0, &label));
      const double *y = b->state + i * W + X->off_uturn + u * d;
      double xy = cblas_ddot(d, R->X0, 1, y, 1);
      double xx = cblas_ddot(d, R->X0, 1, R->X0, 1);
      double r = xy / xx;
      g[0] += r, g[1] += xy, g[2] += xx;
      double *c = g + 3 + 4 * (label >= 0 && label < K ? label : 0);
      c[0] += 1, c[1] += r, c[2] += xy, c[3] += xx;
    }
  }
  return rc;
}

int proto_block_step(proto_run *R, score_model *cur, const step_ops *ops,
                     const obs_layout *L, const double *t,
                     const proto_block *b) {
  const proto_layout *X = R->lay;
  int rc = NRD_OK;
  if (X->collapse && b->rec_out)
    NRD_TRY(rc, collapse_observe(R, cur, L, t, b));
  if (X->forward) NRD_TRY(rc, forward_step(R, L, t, b));
  if (b->k == X->steps && b->rec_final) NRD_TRY(rc, finish(R, cur, b));
  if (b->k < X->steps) NRD_TRY(rc, clones_step(R, cur, ops, b));
  if (b->k < X->steps) NRD_TRY(rc, uturns_step(R, cur, ops, b));
  return rc;
}
