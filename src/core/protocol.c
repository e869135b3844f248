/* Measurement protocols (see protocol.h). */
#include "core/protocol.h"
#include "core/analysis.h"
#include "util/error.h"
#include "core/linalg.h"
#include "core/rng.h"
#include "core/theory.h"

#include <cblas.h>
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LN_2PI 1.83787706640934548356 /* ln(2 pi) */

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
    return NRD_ERR_NOMEM;
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
  R->dots = zalloc(X->collapse ? (size_t)bs * 1024 : 1, sizeof(double), &ok);
  R->a2 = zalloc((size_t)(X->n_train > 0 ? X->n_train : 1), sizeof(double),
                 &ok);
  R->cls_main = zalloc((size_t)bs, sizeof(int), &ok);
  R->near_main = zalloc((size_t)bs, sizeof(int), &ok);
  R->near_now = zalloc((size_t)bs, sizeof(int), &ok);
  R->labels = zalloc((size_t)bs, sizeof(int), &ok);
  if (!ok) return NRD_ERR_NOMEM;
  R->hf = -1;
  for (int u = 0; rc == NRD_OK && u < X->n_uturn; u++) {
    rc = ou_propagator(&m->op, X->uturn_time[u], R->Eu + u * dd);
    if (rc == NRD_OK) rc = ou_noise_cov(&m->op, X->uturn_time[u], R->tmp);
    if (rc == NRD_OK) rc = la_cholesky(d, R->tmp, R->Lu + u * dd);
  }
  double t_min = t[X->steps];
  if (rc == NRD_OK && X->forward) {
    rc = la_cholesky(d, m->op.S, R->Ls);
    if (rc == NRD_OK) rc = ou_propagator(&m->op, t_min, R->E0);
    if (rc == NRD_OK && t_min > 0) {
      R->L0 = zalloc(dd, sizeof(double), &ok);
      rc = ok ? ou_noise_cov(&m->op, t_min, R->tmp) : NRD_ERR_NOMEM;
      if (rc == NRD_OK) rc = la_cholesky(d, R->tmp, R->L0);
    }
  }
  for (long mu = 0; mu < X->n_train; mu++)
    R->a2[mu] = cblas_ddot(d, m->train + mu * d, 1, m->train + mu * d, 1);
  /* the classifier: the exact class posterior at t_min (sign(mu.C^-1 x)
   * for two symmetric classes); where it is singular (point masses at
   * t = 0) the nearest class mean */
  if (rc == NRD_OK && (X->speciation || X->uturn) &&
      score_mixture_init(&R->cls, &m->mix) == NRD_OK) {
    R->cls_ok = 1;
    double *E = zalloc(dd, sizeof(double), &ok), *D = zalloc(dd, sizeof(double), &ok);
    if (!ok || ou_propagator(&m->op, t_min, E) != NRD_OK ||
        ou_noise_cov(&m->op, t_min, D) != NRD_OK ||
        score_mixture_set_time(&R->cls, E, D) != NRD_OK) {
      score_mixture_free(&R->cls);
      R->cls_ok = 0;
    }
    free(E);
    free(D);
  }
  size_t w1 = score_model_work_size(s, (int)bs);
  size_t w2 = R->cls_ok ? score_mixture_work_size(&R->cls, (int)bs) : 0;
  R->work = zalloc(w1 > w2 ? w1 : w2, sizeof(double), &ok);
  if (!ok) rc = NRD_ERR_NOMEM;
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

/* Class of each row: argmax of the posterior at t_min, or the nearest
 * class mean. */
static int classify(proto_run *R, long n, const double *X, int *cls) {
  const mixture *mx = &R->m->mix;
  int d = R->lay->d, K = mx->K;
  if (R->cls_ok) {
    int rc = score_mixture_eval(&R->cls, (int)n, X, R->S, R->resp, NULL,
                                R->work);
    if (rc != NRD_OK) return rc;
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

/* Nearest training point of each row: argmax_mu w_mu from the empirical
 * score where it is defined (Mahalanobis in Delta_t), else Euclidean (the
 * t -> 0 limit, Delta_t ~ 2t I). */
static int nearest_point(proto_run *R, score_model *cur, int score_ok, long n,
                         const double *X, int *near) {
  int d = R->lay->d;
  long ntr = R->lay->n_train;
  if (score_ok)
    return score_model_eval(cur, (int)n, X, R->S, NULL, NULL, NULL, near,
                            R->work);
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
  return mixture_sample(&m->mix, m->seed, RNG_PURPOSE_DATA, (uint64_t)pid, 1,
                        x0, label);
}

/* Reverse-SDE step of the set at `off` of the block's state rows. */
static int reverse_set(proto_run *R, score_model *cur, const step_ops *ops,
                       const proto_block *b, int off, uint32_t purpose,
                       int set) {
  const proto_layout *X = R->lay;
  int d = X->d;
  long n = b->count;
  gather(X->width, d, n, b->state, off, R->X);
  int rc = score_model_eval(cur, (int)n, R->X, R->S, NULL, NULL, NULL, NULL,
                            R->work);
  if (rc != NRD_OK) return rc;
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
      rc = reverse_set(R, cur, ops, b, off, RNG_PURPOSE_CLONE, 1 + s);
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
        rc = data_point(R, X->uturn_train, b->first + i, R->X0 + i * d,
                        &R->labels[i]);
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
      rc = reverse_set(R, cur, ops, b, off, RNG_PURPOSE_UTURN, 1 + u);
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
      rc = data_point(R, 0, b->first + i, R->X0 + i * d, &R->labels[i]);
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
    rc = ou_propagator(&m->op, h, R->Ef);
    if (rc == NRD_OK) rc = ou_noise_cov(&m->op, h, R->tmp);
    if (rc == NRD_OK) rc = la_cholesky(d, R->tmp, R->Lf);
    if (rc != NRD_OK) return rc;
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
    rc = nearest_point(R, cur, 0, n, b->main, R->near_now);
    near = R->near_now;
  }
  if (rc != NRD_OK) return rc;
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
  rc = score_model_eval(cur, (int)n, R->X, R->S, NULL, R->logp, NULL, NULL,
                        R->work);
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
  if (X->speciation && X->n_branch > 0) rc = classify(R, n, b->main, R->cls_main);
  const int *near_main = b->main_nearest; /* evaluated with the score */
  if (rc == NRD_OK && X->collapse && X->n_branch > 0 && !near_main) {
    rc = nearest_point(R, cur, 0, n, b->main, R->near_main);
    near_main = R->near_main;
  }
  for (int s = 0; rc == NRD_OK && s < X->n_branch; s++) {
    gather(W, d, n, b->state, X->off_clone + s * d, R->X);
    if (X->speciation) {
      rc = classify(R, n, R->X, R->labels);
      for (long i = 0; rc == NRD_OK && i < n; i++)
        f[X->f_class + s] += R->labels[i] == R->cls_main[i];
    }
    if (rc == NRD_OK && X->collapse) {
      rc = nearest_point(R, cur, b->score_ok, n, R->X, R->near_now);
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
      rc = data_point(R, X->uturn_train, b->first + i, R->X0, &label);
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
  if (X->collapse && b->rec_out) rc = collapse_observe(R, cur, L, t, b);
  if (rc == NRD_OK && X->forward) rc = forward_step(R, L, t, b);
  if (rc == NRD_OK && b->k == X->steps && b->rec_final)
    rc = finish(R, cur, b);
  if (rc == NRD_OK && b->k < X->steps) rc = clones_step(R, cur, ops, b);
  if (rc == NRD_OK && b->k < X->steps) rc = uturns_step(R, cur, ops, b);
  return rc;
}

/* ------------------------------------------------------------- theory */

static double *nan_array(long n, int *ok) {
  double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
  if (!v) {
    *ok = 0;
    return NULL;
  }
  for (long i = 0; i < n; i++)
    v[i] = NAN;
  return v;
}

/* A = I exactly (U = I, g = 0). */
static int drift_is_identity(const ou_op *op) {
  for (int i = 0; i < op->d; i++)
    for (int j = 0; j < op->d; j++)
      if (op->A[(size_t)i * op->d + j] != (i == j)) return 0;
  return 1;
}

int proto_theory_build(proto_theory *th, const proto_layout *X,
                       const model *m, long n_out, const double *out_time) {
  memset(th, 0, sizeof *th);
  int ok = 1, d = X->d;
  const mixture *mx = &m->mix;
  th->alpha = X->n_train > 0 ? log((double)X->n_train) / d : NAN;
  th->phi = nan_array(X->n_branch, &ok);
  th->cut_gauss = nan_array(X->n_uturn, &ok);
  th->cut_gm2 = nan_array(X->n_uturn, &ok);
  th->corr_data = nan_array((long)X->n_ref * n_out, &ok);
  th->corr_stat = nan_array((long)X->n_ref * n_out, &ok);
  th->fe_offset = nan_array(n_out, &ok);
  double *S0 = calloc((size_t)d * d, sizeof *S0);
  double *D = calloc((size_t)d * d, sizeof *D);
  double *Lc = calloc((size_t)d * d, sizeof *Lc);
  if (!ok || !S0 || !D || !Lc) {
    free(S0), free(D), free(Lc);
    proto_theory_free(th);
    return NRD_ERR_NOMEM;
  }
  mixture_covariance(mx, S0);
  if (mx->symmetric2 && m->n_train == 0)
    for (int b = 0; b < X->n_branch; b++) {
      double kap;
      if (theory_kappa(&m->op, mx->means, mx->cov, X->branch_time[b], &kap) ==
          NRD_OK)
        th->phi[b] = theory_F(kap);
    }
  int gm2 = mx->symmetric2 && mx->cov_kind == MIX_COV_ISOTROPIC &&
            m->n_train == 0 && !X->uturn_train && drift_is_identity(&m->op);
  double mu_norm = 0;
  for (int j = 0; j < d; j++)
    mu_norm += mx->means[j] * mx->means[j];
  mu_norm = sqrt(mu_norm);
  for (int u = 0; u < X->n_uturn; u++) {
    theory_cuturn_gaussian(&m->op, S0, X->uturn_time[u], &th->cut_gauss[u]);
    if (gm2)
      th->cut_gm2[u] = theory_cuturn_gm2_isotropic(d, mu_norm, sqrt(mx->sigma2),
                                                   X->uturn_time[u]);
  }
  for (int r = 0; r < X->n_ref; r++)
    for (long i = 0; i < n_out; i++) {
      double s = X->ref_time[r], tt = out_time[i];
      if (tt < s) continue;
      theory_two_time_corr(&m->op, S0, s, tt, &th->corr_data[r * n_out + i]);
      theory_two_time_corr(&m->op, m->op.S, s, tt,
                           &th->corr_stat[r * n_out + i]);
    }
  if (X->collapse)
    for (long i = 0; i < n_out; i++) {
      if (!(out_time[i] > 0) || ou_noise_cov(&m->op, out_time[i], D) != NRD_OK ||
          la_cholesky(d, D, Lc) != NRD_OK)
        continue;
      th->fe_offset[i] = th->alpha + 0.5 * (LN_2PI + 1) +
                         la_chol_logdet(d, Lc) / (2.0 * d);
    }
  free(S0);
  free(D);
  free(Lc);
  return NRD_OK;
}

void proto_theory_free(proto_theory *th) {
  free(th->phi);
  free(th->cut_gauss);
  free(th->cut_gm2);
  free(th->corr_data);
  free(th->corr_stat);
  free(th->fe_offset);
  memset(th, 0, sizeof *th);
}

/* ------------------------------------------------------------ results */

/* Statistics of block-summed totals for an_jackknife (analysis.h), beside
 * its an_ratio. */

/* <a> / sqrt(<b> <c>) */
static double normalised(const double *s, const void *ctx) {
  (void)ctx;
  return s[0] / sqrt(s[1] * s[2]);
}

/* sqrt(<t^2> - <t>^2) from sums of t, t^2 and the count */
static double spread(const double *s, const void *ctx) {
  (void)ctx;
  double m = s[0] / s[2];
  return sqrt(fmax(s[1] / s[2] - m * m, 0));
}

/* offset + <ln p> / d */
typedef struct {
  double offset;
  int d;
} fe_ctx;

static double excess(const double *s, const void *ctx) {
  const fe_ctx *c = ctx;
  return c->offset + s[0] / s[1] / c->d;
}

static proto_dataset *add(proto_results *r, const char *group,
                          const char *name, long n0, long n1,
                          const char *description, int root) {
  /* room for every dataset the code below adds (a programming bound) */
  assert(r->n < (int)(sizeof r->v / sizeof r->v[0]));
  proto_dataset *ds = &r->v[r->n++];
  ds->group = group;
  ds->name = name;
  ds->description = description;
  ds->rank = n1 > 0 ? 2 : 1;
  ds->dims[0] = n0;
  ds->dims[1] = n1 > 0 ? n1 : 1;
  ds->data = NULL;
  if (root) {
    long n = n0 * ds->dims[1];
    ds->data = malloc((size_t)(n > 0 ? n : 1) * sizeof *ds->data);
    if (!ds->data) return NULL;
    for (long i = 0; i < n; i++)
      ds->data[i] = NAN;
  }
  return ds;
}

static void copy_into(proto_dataset *ds, const double *v) {
  if (ds->data && v)
    memcpy(ds->data, v, (size_t)(ds->dims[0] * ds->dims[1]) * sizeof *v);
}

/* Block sums of columns cols[0..nv) of one output time's records. */
static void block_columns(long B, long R, const double *rec, int nv,
                          const int *cols, double *out) {
  for (long b = 0; b < B; b++)
    for (int v = 0; v < nv; v++)
      out[b * nv + v] = rec[b * R + cols[v]];
}

/* A dataset of r, or out of memory (proto_results_build's exit). */
#define ADD(ds, ...)                                                         \
  proto_dataset *ds = add(r, __VA_ARGS__);                                   \
  if (!ds) goto nomem

int proto_results_build(proto_results *r, const proto_layout *X,
                        const proto_theory *th, const obs_layout *L,
                        long n_out, const double *out_time, long B,
                        const double *blocks) {
  memset(r, 0, sizeof *r);
  int root = blocks != NULL, K = X->K, nb = X->n_branch, nu = X->n_uturn;
  long R = L->record;
  double *sums = malloc((size_t)(B > 0 ? B : 1) * 8 * sizeof *sums);
  if (!sums) return NRD_ERR_NOMEM;
  /* the final sums are in the record of the last output time */
  const double *fin = root ? blocks + (size_t)(n_out - 1) * B * R : NULL;
  int fo = L->offset[OBS_FINAL], cnt = fo + X->f_count;
  if (X->speciation && nb > 0) {
    ADD(t, "speciation", "branch_time", nb, 0,
                           "branch times t_b (snapped to the time grid)", root);
    ADD(v, "speciation", "phi_clone", nb, 0,
                           "fraction of clone pairs branched at t_b that end "
                           "in the same class",
                           root);
    ADD(e, "speciation", "phi_clone_err", nb, 0,
                           "jackknife error of phi_clone over blocks", root);
    ADD(f, "speciation", "phi_theory", nb, 0,
                           "F(kappa_{t_b}) (physics.md 4.2; NaN unless two "
                           "symmetric classes and the exact score)",
                           root);
    copy_into(t, X->branch_time);
    copy_into(f, th ? th->phi : NULL);
    for (int s = 0; root && s < nb; s++) {
      int cols[2] = {fo + X->f_class + s, cnt};
      block_columns(B, R, fin, 2, cols, sums);
      an_jackknife(B, 2, sums, an_ratio, NULL, &v->data[s], &e->data[s]);
    }
  }
  if (X->collapse) {
    if (nb > 0) {
      ADD(t, "collapse", "branch_time", nb, 0,
                             "branch times t_b (snapped to the time grid)",
                             root);
      ADD(v, "collapse", "phiC_clone", nb, 0,
                             "fraction of clone pairs branched at t_b whose "
                             "end points have the same nearest training point",
                             root);
      ADD(e, "collapse", "phiC_clone_err", nb, 0,
                             "jackknife error of phiC_clone over blocks", root);
      copy_into(t, X->branch_time);
      for (int s = 0; root && s < nb; s++) {
        int cols[2] = {fo + X->f_nearest + s, cnt};
        block_columns(B, R, fin, 2, cols, sums);
        an_jackknife(B, 2, sums, an_ratio, NULL, &v->data[s], &e->data[s]);
      }
    }
    ADD(fz, "collapse", "freezing_time", 3, 0,
                            "nearest-training-point freezing time of the "
                            "trajectories: mean, jackknife error of the mean, "
                            "standard deviation over trajectories",
                            root);
    if (root) {
      int cols[3] = {fo + X->f_freeze, fo + X->f_freeze + 1, cnt};
      block_columns(B, R, fin, 3, cols, sums);
      int c2[2] = {fo + X->f_freeze, cnt};
      double dummy;
      an_jackknife(B, 3, sums, spread, NULL, &fz->data[2], &dummy);
      block_columns(B, R, fin, 2, c2, sums);
      an_jackknife(B, 2, sums, an_ratio, NULL, &fz->data[0], &fz->data[1]);
    }
    ADD(a, "collapse", "alpha", 1, 0, "alpha = ln(n) / d",
                           root);
    if (root) a->data[0] = th ? th->alpha : NAN;
    ADD(tm, "collapse", "time", n_out, 0,
                            "output times", root);
    ADD(fe, "collapse", "excess_entropy", n_out, 0,
                            "f^e(t) = alpha + (1/2d) ln det(2 pi e Delta_t) + "
                            "E[ln p^e_t]/d (physics.md 5.1)",
                            root);
    ADD(fee, "collapse", "excess_entropy_err", n_out, 0,
                             "jackknife error of excess_entropy", root);
    copy_into(tm, out_time);
    for (long i = 0; root && i < n_out; i++) {
      int cols[2] = {L->offset[OBS_LOG_PE], L->offset[OBS_COUNT]};
      block_columns(B, R, blocks + (size_t)i * B * R, 2, cols, sums);
      fe_ctx c = {th ? th->fe_offset[i] : NAN, X->d};
      an_jackknife(B, 2, sums, excess, &c, &fe->data[i], &fee->data[i]);
    }
  }
  if (nu > 0) {
    ADD(t, "uturn", "T_u", nu, 0,
                           "noising times T_u (snapped to the time grid)", root);
    ADD(c, "uturn", "c_uturn", nu, 0,
                           "C_UT = mean of x_0.y_0/|x_0|^2 (per-sample "
                           "normalisation, physics.md 6.1)",
                           root);
    ADD(ce, "uturn", "c_uturn_err", nu, 0,
                            "jackknife error of c_uturn", root);
    ADD(q, "uturn", "c_uturn_ratio", nu, 0,
                           "E[x_0.y_0] / E|x_0|^2 (ratio of expectations, "
                           "the normalisation of the closed forms)",
                           root);
    ADD(qe, "uturn", "c_uturn_ratio_err", nu, 0,
                            "jackknife error of c_uturn_ratio", root);
    ADD(g, "uturn", "theory_gaussian", nu, 0,
                           "closed form for Gaussian data with the data "
                           "covariance Sigma_0 (ratio normalisation)",
                           root);
    ADD(m, "uturn", "theory_gm2", nu, 0,
                           "exact two-class mixture closed form (A = I, "
                           "isotropic classes, exact score; NaN otherwise)",
                           root);
    ADD(kc, "uturn", "class_c_uturn", nu, K,
                            "c_uturn restricted to data points of class k",
                            root);
    ADD(ke, "uturn", "class_c_uturn_err", nu, K,
                            "jackknife error of class_c_uturn", root);
    ADD(kn, "uturn", "class_count", nu, K,
                            "number of data points of class k", root);
    copy_into(t, X->uturn_time);
    copy_into(g, th ? th->cut_gauss : NULL);
    copy_into(m, th ? th->cut_gm2 : NULL);
    for (int u = 0; root && u < nu; u++) {
      int base = fo + X->f_uturn + u * X->uturn_stride;
      int c1[2] = {base, cnt}, c2[2] = {base + 1, base + 2};
      block_columns(B, R, fin, 2, c1, sums);
      an_jackknife(B, 2, sums, an_ratio, NULL, &c->data[u], &ce->data[u]);
      block_columns(B, R, fin, 2, c2, sums);
      an_jackknife(B, 2, sums, an_ratio, NULL, &q->data[u], &qe->data[u]);
      for (int k = 0; k < K; k++) {
        int ck[2] = {base + 3 + 4 * k + 1, base + 3 + 4 * k};
        block_columns(B, R, fin, 2, ck, sums);
        an_jackknife(B, 2, sums, an_ratio, NULL, &kc->data[u * K + k],
                  &ke->data[u * K + k]);
        double n = 0;
        for (long b = 0; b < B; b++)
          n += sums[b * 2 + 1];
        kn->data[u * K + k] = n;
      }
    }
  }
  if (X->forward) {
    int nr = X->n_ref;
    ADD(s, "forward", "reference_time", nr, 0,
                           "reference times s (snapped to the time grid)",
                           root);
    ADD(tm, "forward", "time", n_out, 0,
                            "times t of the correlations", root);
    copy_into(s, X->ref_time);
    copy_into(tm, out_time);
    static const char *const names[2][3] = {
        {"corr_data", "corr_data_err", "corr_data_theory"},
        {"corr_stationary", "corr_stationary_err", "corr_stationary_theory"}};
    static const char *const what[2] = {
        "C(s, t) = E[x_s.x_t] / sqrt(E|x_s|^2 E|x_t|^2) along forward paths "
        "from data (row: s, column: t; NaN for t < s)",
        "the same from the stationary law: C(t - s), e^{-tau} cos(q tau) for "
        "U = I, d = 2 (physics.md 6.2)"};
    int on[2] = {L->offset[OBS_FWD_DATA_NORM2], L->offset[OBS_FWD_STAT_NORM2]};
    int oc[2] = {L->offset[OBS_FWD_DATA_CORR], L->offset[OBS_FWD_STAT_CORR]};
    for (int e = 0; e < 2; e++) {
      ADD(v, "forward", names[e][0], nr, n_out, what[e],
                             root);
      ADD(ve, "forward", names[e][1], nr, n_out,
                              "jackknife error", root);
      ADD(vt, "forward", names[e][2], nr, n_out,
                              "exact value, tr(e^{-A(t-s)} Sigma_s) / "
                              "sqrt(tr Sigma_s tr Sigma_t)",
                              root);
      copy_into(vt, th ? (e ? th->corr_stat : th->corr_data) : NULL);
      for (int q = 0; root && q < nr; q++)
        for (long i = 0; i < n_out; i++) {
          int cols[3] = {oc[e] + 2 * q, oc[e] + 2 * q + 1, on[e]};
          block_columns(B, R, blocks + (size_t)i * B * R, 3, cols, sums);
          an_jackknife(B, 3, sums, normalised, NULL, &v->data[q * n_out + i],
                    &ve->data[q * n_out + i]);
        }
    }
  }
  free(sums);
  return NRD_OK;
nomem:
  free(sums);
  proto_results_free(r);
  return NRD_ERR_NOMEM;
}
#undef ADD

void proto_results_free(proto_results *r) {
  for (int i = 0; i < r->n; i++)
    free(r->v[i].data);
  memset(r, 0, sizeof *r);
}

static const proto_dataset *find(const proto_results *r, const char *group,
                                 const char *name) {
  for (int i = 0; i < r->n; i++)
    if (!strcmp(r->v[i].group, group) && !strcmp(r->v[i].name, name))
      return &r->v[i];
  return NULL;
}

#define DATA(g, n) (find(r, g, n)->data)

void proto_results_print(const proto_results *r, const proto_layout *X,
                         FILE *out) {
  if (X->speciation && X->n_branch > 0) {
    const double *t = DATA("speciation", "branch_time"),
                 *v = DATA("speciation", "phi_clone"),
                 *e = DATA("speciation", "phi_clone_err"),
                 *f = DATA("speciation", "phi_theory");
    fprintf(out, "  speciation by cloning:\n  %10s %12s %10s %12s\n", "t_b",
            "phi_clone", "+-", "F(kappa_t)");
    for (int s = 0; s < X->n_branch; s++)
      fprintf(out, "  %10.4f %12.5f %10.5f %12.5f\n", t[s], v[s], e[s], f[s]);
  }
  if (X->collapse) {
    if (X->n_branch > 0) {
      const double *t = DATA("collapse", "branch_time"),
                   *v = DATA("collapse", "phiC_clone"),
                   *e = DATA("collapse", "phiC_clone_err");
      fprintf(out, "  collapse by cloning:\n  %10s %12s %10s\n", "t_b",
              "phiC_clone", "+-");
      for (int s = 0; s < X->n_branch; s++)
        fprintf(out, "  %10.4f %12.5f %10.5f\n", t[s], v[s], e[s]);
    }
    const double *fz = DATA("collapse", "freezing_time");
    fprintf(out,
            "  nearest-point freezing time: mean %.4f +- %.4f, spread %.4f\n",
            fz[0], fz[1], fz[2]);
    const proto_dataset *tm = find(r, "collapse", "time");
    const double *fe = DATA("collapse", "excess_entropy"),
                 *fee = DATA("collapse", "excess_entropy_err"),
                 *a = DATA("collapse", "alpha");
    long n = tm->dims[0], stride = n > 12 ? (n + 11) / 12 : 1;
    fprintf(out, "  excess entropy (alpha = %.4f):\n  %10s %12s %10s\n", a[0],
            "t", "f^e/alpha", "+-");
    for (long i = 0; i < n; i++)
      if (i % stride == 0 || i == n - 1)
        fprintf(out, "  %10.4f %12.5f %10.5f\n", tm->data[i], fe[i] / a[0],
                fee[i] / a[0]);
  }
  if (X->n_uturn > 0) {
    const double *t = DATA("uturn", "T_u"), *c = DATA("uturn", "c_uturn"),
                 *ce = DATA("uturn", "c_uturn_err"),
                 *q = DATA("uturn", "c_uturn_ratio"),
                 *qe = DATA("uturn", "c_uturn_ratio_err"),
                 *g = DATA("uturn", "theory_gaussian"),
                 *m = DATA("uturn", "theory_gm2");
    fprintf(out, "  U-turn:\n  %8s %10s %9s %10s %9s %10s %10s\n", "T_u",
            "C_UT", "+-", "ratio", "+-", "Gaussian", "mixture");
    for (int u = 0; u < X->n_uturn; u++)
      fprintf(out, "  %8.4f %10.5f %9.5f %10.5f %9.5f %10.5f %10.5f\n", t[u],
              c[u], ce[u], q[u], qe[u], g[u], m[u]);
  }
  if (X->forward) {
    const proto_dataset *tm = find(r, "forward", "time");
    const double *s = DATA("forward", "reference_time");
    long n = tm->dims[0], stride = n > 10 ? (n + 9) / 10 : 1;
    for (int q = 0; q < X->n_ref; q++) {
      const double *cd = DATA("forward", "corr_data") + q * n,
                   *cde = DATA("forward", "corr_data_err") + q * n,
                   *cdt = DATA("forward", "corr_data_theory") + q * n,
                   *cs = DATA("forward", "corr_stationary") + q * n,
                   *cse = DATA("forward", "corr_stationary_err") + q * n,
                   *cst = DATA("forward", "corr_stationary_theory") + q * n;
      fprintf(out,
              "  forward two-time correlation C(s = %.4f, t):\n  %8s %10s "
              "%9s %10s %12s %9s %10s\n",
              s[q], "t", "data", "+-", "theory", "stationary", "+-", "theory");
      for (long i = 0; i < n; i++)
        if ((i % stride == 0 || i == n - 1) && !isnan(cdt[i]))
          fprintf(out, "  %8.4f %10.5f %9.5f %10.5f %12.5f %9.5f %10.5f\n",
                  tm->data[i], cd[i], cde[i], cdt[i], cs[i], cse[i], cst[i]);
    }
  }
}
