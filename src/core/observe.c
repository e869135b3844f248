/* Observables as per-block sums (see observe.h). */
#include "core/observe.h"
#include "util/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const obs_info INFO[OBS_N] = {
    [OBS_COUNT] = {"count", "number of particles", "1"},
    [OBS_POSITION] = {"position", "particle position y", "1"},
    [OBS_NORM2] = {"norm2", "|y|^2", "1"},
    [OBS_PROJECTION] = {"projection",
                        "u_k . y, u_k the unit direction of class mean k",
                        "1"},
    [OBS_PROJECTION2] = {"projection2", "(u_k . y)^2", "1"},
    [OBS_SCORE_NORM2] = {"score_norm2",
                         "|s(y)|^2, s the score used by the integrator", "1"},
    [OBS_SPECIATION_PHI] = {"speciation_phi",
                            "sum_k r_k(y)^2: clone-free speciation estimator",
                            "1"},
    [OBS_COMMITMENT_HIST] = {"commitment_histogram",
                             "indicator of commitment c = (K max_k r_k - 1)/"
                             "(K - 1) in bin j = floor(20 c) of [0, 1]",
                             "1"},
    [OBS_PARTICIPATION_Y2] = {"participation_y2",
                              "sum_mu w_mu(y)^2: REM participation of "
                              "training points",
                              "1"},
    [OBS_LOG_PE] = {"log_pe",
                    "ln p^e_t(x) for x drawn from p^e_t itself (not the "
                    "trajectories): the excess-entropy estimator's samples",
                    "1"},
    [OBS_FWD_DATA_NORM2] = {"forward_data_norm2",
                            "|x_t|^2 along forward paths started from data",
                            "1"},
    [OBS_FWD_DATA_CORR] = {"forward_data_corr",
                           "per reference time s two columns, x_t . x_s and "
                           "|x_s|^2, along forward paths from data (NaN "
                           "where t < s)",
                           "1"},
    [OBS_FWD_STAT_NORM2] = {"forward_stationary_norm2",
                            "|x_t|^2 along forward paths started from the "
                            "stationary law",
                            "1"},
    [OBS_FWD_STAT_CORR] = {"forward_stationary_corr",
                           "per reference time s two columns, x_t . x_s and "
                           "|x_s|^2, along forward paths from the stationary "
                           "law (NaN where t < s)",
                           "1"},
    [OBS_FINAL] = {"final", "end-of-run sums of the protocols", "1"},
};

const obs_info *obs_describe(int o) {
  return o >= 0 && o < OBS_N ? &INFO[o] : NULL;
}

int obs_layout_init(obs_layout *L, int d, int K, const double *means,
                    int score) {
  memset(L, 0, sizeof *L);
  L->d = d;
  L->K = K;
  L->empirical = score != OBS_MIXTURE;
  L->classes = score != OBS_EMPIRICAL && K >= 2;
  L->dirs = malloc((size_t)K * d * sizeof *L->dirs);
  if (!L->dirs)
    return NRD_FAIL(NRD_ERR_NOMEM, "the class directions, K = %d, d = %d", K,
                    d);
  for (int k = 0; k < K; k++) {
    const double *m = means + (size_t)k * d;
    double n2 = 0;
    for (int j = 0; j < d; j++)
      n2 += m[j] * m[j];
    double inv = n2 > 0 ? 1 / sqrt(n2) : 0;
    for (int j = 0; j < d; j++)
      L->dirs[(size_t)k * d + j] = m[j] * inv;
  }
  int w[OBS_N] = {[OBS_COUNT] = 1,       [OBS_POSITION] = d,
                  [OBS_NORM2] = 1,       [OBS_PROJECTION] = K,
                  [OBS_PROJECTION2] = K, [OBS_SCORE_NORM2] = 1};
  if (L->empirical) w[OBS_PARTICIPATION_Y2] = 1;
  if (L->classes) {
    w[OBS_SPECIATION_PHI] = 1;
    w[OBS_COMMITMENT_HIST] = OBS_HIST_BINS;
  }
  for (int o = 0; o < OBS_N; o++) {
    L->width[o] = w[o];
    L->offset[o] = L->record;
    L->record += w[o];
  }
  return NRD_OK;
}

void obs_layout_add(obs_layout *L, int o, int width) {
  if (o < 0 || o >= OBS_N || L->width[o] > 0 || width <= 0) return;
  L->width[o] = width;
  L->offset[o] = L->record;
  L->record += width;
}

void obs_layout_free(obs_layout *L) {
  free(L->dirs);
  L->dirs = NULL;
}

void obs_accumulate(const obs_layout *L, long count, const double *Y,
                    const double *S, const double *resp, const double *y2,
                    int score_ok, double *rec) {
  int d = L->d, K = L->K;
  double *pos = rec + L->offset[OBS_POSITION];
  double *proj = rec + L->offset[OBS_PROJECTION];
  double *proj2 = rec + L->offset[OBS_PROJECTION2];
  for (long i = 0; i < count; i++) {
    const double *y = Y + i * d, *s = S + i * d;
    double n2 = 0, s2 = 0;
    for (int j = 0; j < d; j++) {
      pos[j] += y[j];
      n2 += y[j] * y[j];
      s2 += s[j] * s[j];
    }
    for (int k = 0; k < K; k++) {
      const double *u = L->dirs + (size_t)k * d;
      double pr = 0;
      for (int j = 0; j < d; j++)
        pr += u[j] * y[j];
      proj[k] += pr;
      proj2[k] += pr * pr;
    }
    rec[L->offset[OBS_COUNT]] += 1;
    rec[L->offset[OBS_NORM2]] += n2;
    rec[L->offset[OBS_SCORE_NORM2]] += score_ok ? s2 : NAN;
    if (L->empirical)
      rec[L->offset[OBS_PARTICIPATION_Y2]] += score_ok ? y2[i] : NAN;
    if (!L->classes) continue;
    double phi = 0, rmax = 0;
    for (int k = 0; k < K; k++) {
      double r = resp[i * K + k];
      phi += r * r;
      rmax = fmax(rmax, r);
    }
    rec[L->offset[OBS_SPECIATION_PHI]] += score_ok ? phi : NAN;
    double *hist = rec + L->offset[OBS_COMMITMENT_HIST];
    if (!score_ok) {
      for (int j = 0; j < OBS_HIST_BINS; j++)
        hist[j] = NAN;
      continue;
    }
    double c = (K * rmax - 1) / (K - 1);
    int bin = (int)floor(c * OBS_HIST_BINS);
    bin = bin < 0 ? 0 : bin >= OBS_HIST_BINS ? OBS_HIST_BINS - 1 : bin;
    hist[bin] += 1;
  }
}
