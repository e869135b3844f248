/* Measurement protocols: the exact values their measurements are compared
 * with (see protocol.h). */
#include "core/protocol.h"
#include "util/error.h"
#include "core/linalg.h"
#include "core/theory.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LN_2PI 1.83787706640934548356 /* ln(2 pi) */

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
    return NRD_FAIL(NRD_ERR_NOMEM, "the protocols' theory, d = %d", d);
  }
  /* the data's mean and second moment M0 = Sigma0 + mean mean^T: the
   * forward correlations and the Gaussian U-turn form are of raw, not
   * centred, moments (K > 2 random means have a mean) */
  mixture_covariance(mx, S0);
  double *mean = D, *M0 = Lc; /* scratch until the collapse part below */
  memset(mean, 0, (size_t)d * sizeof *mean);
  for (int k = 0; k < mx->K; k++)
    for (int j = 0; j < d; j++)
      mean[j] += mx->weights[k] * mx->means[(size_t)k * d + j];
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++)
      M0[(size_t)i * d + j] = S0[(size_t)i * d + j] + mean[i] * mean[j];
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
    theory_cuturn_gaussian(&m->op, S0, mean, X->uturn_time[u],
                           &th->cut_gauss[u]);
    if (gm2)
      th->cut_gm2[u] = theory_cuturn_gm2_isotropic(d, mu_norm, sqrt(mx->sigma2),
                                                   X->uturn_time[u]);
  }
  for (int r = 0; r < X->n_ref; r++)
    for (long i = 0; i < n_out; i++) {
      double s = X->ref_time[r], tt = out_time[i];
      if (tt < s) continue;
      theory_two_time_corr(&m->op, M0, s, tt, &th->corr_data[r * n_out + i]);
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
  nrd_error_reset(); /* a closed form that fails is NaN, not a failure */
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
