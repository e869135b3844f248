/* The theory of every selected grid point (runctx.h), built before any
 * simulation so that a bad input fails first: the models are built on the
 * ranks the points are dealt to, and every rank receives every point's
 * theory for the reports and the output. */
#include "core/linalg.h"
#include "core/theory.h"
#include "io/matrix_file.h"
#include "run/runctx.h"
#include "util/error.h"
#include "util/log.h"

#include <cblas.h>
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

/* The step the physics checks judge: the nominal one of a uniform grid
 * (what point_steps steps with), the first and longest of a log grid. */
static double largest_step(const run_ctx *c) {
  const nrd_params *p = c->p;
  long n = c->plan->steps;
  if (p->time.spacing == SPACING_UNIFORM)
    return (p->time.T - p->time.t_min) / (double)(n > 0 ? n : 1);
  return n > 0 ? c->t[0] - c->t[1] : 0;
}

/* t_S of the model's data: kappa_t = 1 for two symmetric classes, the
 * matrix criterion (doc/theory.md (5.8)) for classes of a common
 * covariance; else it stays NaN. */
static void speciation_theory(const model *m, double *tS) {
  const mixture *mx = &m->mix;
  if (mx->symmetric2)
    theory_tS_kappa(&m->op, mx->means, mx->cov, tS);
  else if (mx->cov_shared)
    theory_tS_matrix(&m->op, mx->K, mx->weights, mx->means, mx->cov, tS);
}

/* The theory of one point from its model (on the rank it is dealt to).
 * What has no closed form here stays NaN; a failure is the run's (out of
 * memory), with nrd_error_trace(). */
static int theory_for_point(const run_ctx *c, const model *m,
                            point_theory *th) {
  const mixture *mx = &m->mix;
  th->empirical = m->n_train > 0;
  th->symmetric2 = mx->symmetric2;
  th->K = mx->K;
  th->score = !th->empirical                 ? OBS_MIXTURE
              : m->train_label && mx->K >= 2 ? OBS_EMPIRICAL_CLASSES
                                             : OBS_EMPIRICAL;
  /* the class means, for the observables' class directions on every rank */
  th->means = NRD_XCALLOC((size_t)mx->K * m->d, sizeof *th->means);
  memcpy(th->means, mx->means, (size_t)mx->K * m->d * sizeof *th->means);
  th->rate = NAN;
  ou_relaxation_rate(&m->op, &th->rate);
  th->entropy = ou_entropy_production(&m->op);
  if (diagnose_operator(&m->op, c->p->integrator.scheme, largest_step(c),
                        c->plan->steps, &th->check) != NRD_OK)
    memset(&th->check, 0, sizeof th->check); /* not checked */
  /* kappa_t = 1 for two symmetric classes, the matrix criterion
   * (doc/theory.md (5.8)) otherwise; for the empirical score the REM collapse
   * time with the finite-d mixture correction, alpha = ln n / d (an
   * n, d -> infinity result: a reference, not a prediction, at small d) */
  double tc = NAN;
  th->speciation = th->speciation_cov = NAN;
  if (th->score == OBS_EMPIRICAL_CLASSES) {
    speciation_theory(m, &th->speciation);
    double *S0 = NRD_XCALLOC((size_t)m->d * m->d, sizeof *S0);
    mixture_covariance(mx, S0);
    theory_tS_covariance(&m->op, S0, &th->speciation_cov);
    free(S0);
  }
  if (th->empirical) {
    double alpha = log((double)m->n_train) / m->d;
    if (alpha > 0) {
      if (mx->symmetric2)
        theory_tC_rem_gm2(&m->op, mx->means, mx->cov, alpha, &tc);
      else
        theory_tC_rem(&m->op, mx->cov, alpha, &tc);
    }
  } else {
    speciation_theory(m, &tc);
  }
  th->critical = tc;
  nrd_error_reset(); /* what has no value above is NaN, not a failure */
  NRD_CHECK(proto_theory_build(&th->proto, &c->proto[m->point.index], m,
                               c->n_out, c->out_time));
  th->phi_theory = NRD_XCALLOC((size_t)c->n_out, sizeof *th->phi_theory);
  th->norm2_theory = NRD_XCALLOC((size_t)c->n_out, sizeof *th->norm2_theory);
  int d = m->d;
  size_t dd = (size_t)d * d;
  double *S0 = NRD_XCALLOC(dd, sizeof *S0), *St = NRD_XCALLOC(dd, sizeof *St);
  double *W = NRD_XCALLOC(dd, sizeof *W), *D = NRD_XCALLOC(dd, sizeof *D);
  mixture_covariance(mx, S0);
  double mean2 = 0; /* |E x_0|^2, carried by e^{-At} */
  double *mean = NRD_XCALLOC((size_t)d, sizeof *mean);
  for (int k = 0; k < mx->K; k++)
    for (int j = 0; j < d; j++)
      mean[j] += mx->weights[k] * mx->means[(size_t)k * d + j];
  double *E = NRD_XCALLOC(dd, sizeof *E),
         *Em = NRD_XCALLOC((size_t)d, sizeof *Em);
  double *M2 = NULL, *EM2 = NULL; /* second moment of the training set */
  if (th->empirical) {
    M2 = NRD_XCALLOC(dd, sizeof *M2);
    EM2 = NRD_XCALLOC(dd, sizeof *EM2);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, (int)m->n_train,
                1.0 / (double)m->n_train, m->train, d, m->train, d, 0.0, M2, d);
  }
  /* e^{-At} and Delta_t once per output time (d^3 each for a dense
   * operator), for E|x_t|^2 and kappa_t alike */
  for (long i = 0; i < c->n_out; i++) {
    double t = c->out_time[i];
    th->norm2_theory[i] = th->phi_theory[i] = NAN;
    if (ou_moments(&m->op, t, E, D) != NRD_OK) continue;
    double tr = 0;
    mean2 = 0;
    if (th->empirical) {
      /* p^e_t = mean over mu of N(e^{-At} a_mu, Delta_t): tr Delta_t plus
       * the mean of |e^{-At} a_mu|^2 = tr(E M2 E^T), M2 = mean a a^T */
      memcpy(St, D, dd * sizeof *St);
      la_matmul(d, E, M2, EM2);
      for (size_t k = 0; k < dd; k++)
        mean2 += EM2[k] * E[k];
    } else {
      ou_marginal_from(d, E, D, S0, St, W);
      la_matvec(d, E, mean, Em);
      for (int j = 0; j < d; j++)
        mean2 += Em[j] * Em[j];
    }
    for (int j = 0; j < d; j++)
      tr += St[(size_t)j * d + j];
    th->norm2_theory[i] = tr + mean2;
    double kap = NAN;
    if (!th->empirical && mx->symmetric2 &&
        theory_kappa_from(&m->op, E, D, mx->means, mx->cov, &kap) == NRD_OK)
      th->phi_theory[i] = theory_F(kap);
  }
  free(S0);
  free(St);
  free(W);
  free(D);
  free(mean);
  free(E);
  free(Em);
  free(M2);
  free(EM2);
  nrd_error_reset(); /* the times without moments are NaN */
  return NRD_OK;
}

/* The arrays of a point's theory (where each pointer is kept, and its
 * length), for sending it whole; the lengths follow from the layout, known
 * on every rank. */
enum { THEORY_ARRAYS = 9 };
static void theory_arrays(point_theory *th, const proto_layout *X, long n_out,
                          double ***slot, long *len) {
  proto_theory *pt = &th->proto;
  long nr = (long)X->n_ref * n_out;
  double **s[THEORY_ARRAYS] = {
      &th->phi_theory, &th->norm2_theory, &pt->phi,
      &pt->cut_gauss,  &pt->cut_gm2,      &pt->corr_data,
      &pt->corr_stat,  &pt->fe_offset,    &th->means};
  long l[THEORY_ARRAYS] = {n_out,      n_out,      X->n_branch,
                           X->n_uturn, X->n_uturn, nr,
                           nr,         n_out,      (long)X->K * X->d};
  memcpy(slot, s, sizeof s);
  memcpy(len, l, sizeof l);
}

/* Every selected point's model and theory, the points dealt round-robin
 * to the ranks (the theory at every output time is d^3 work per time and
 * was a serial share of runs on rank 0), then broadcast by their owners so
 * that every rank holds all of it.  A bad input (say, a U file of the wrong
 * shape) is a collective usage error, reported for the first bad point,
 * before any simulation or output. */
point_theory *prepare_theory(const run_ctx *c) {
  char err[1024] = "";
  int rank = nrd_log_rank(), size = 1, P = c->plan->n_points;
  point_theory *th = NRD_XCALLOC((size_t)P, sizeof *th);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int *owner = NRD_XCALLOC((size_t)P, sizeof *owner), n_sel = 0, first_bad = P;
  for (int i = 0; i < P; i++)
    owner[i] = c->selected[i] ? n_sel++ % size : -1;
  int status = NRD_OK;
  for (int i = 0; i < P; i++) {
    if (owner[i] != rank) continue;
    model m;
    status = model_build_data(&m, c->p, &c->plan->points[i], matrix_file_read,
                              c->data, err, sizeof err);
    if (status != NRD_OK) {
      first_bad = i;
      break;
    }
    if (theory_for_point(c, &m, &th[i]) != NRD_OK)
      NRD_ABORT(NRD_EXIT_RUNTIME, "grid point %d: %s", i, nrd_error_trace());
    model_free(&m);
  }
  int bad = first_bad;
  NRD_MPI_CHECK(
      MPI_Allreduce(&first_bad, &bad, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  if (bad < P) {
    NRD_MPI_CHECK(MPI_Bcast(&status, 1, MPI_INT, owner[bad], MPI_COMM_WORLD));
    NRD_MPI_CHECK(
        MPI_Bcast(err, sizeof err, MPI_CHAR, owner[bad], MPI_COMM_WORLD));
    nrd_fatal(status == NRD_ERR_INPUT ? NRD_EXIT_USAGE : NRD_EXIT_RUNTIME, "%s",
              err[0] ? err : nrd_strerror(status));
  }
  for (int i = 0; i < P; i++) {
    if (owner[i] < 0) continue;
    point_theory *t = &th[i];
    double **slot[THEORY_ARRAYS];
    long len[THEORY_ARRAYS];
    theory_arrays(t, &c->proto[i], c->n_out, slot, len);
    for (int f = 0; owner[i] != rank && f < THEORY_ARRAYS; f++)
      *slot[f] = NRD_XCALLOC((size_t)len[f] + 1, sizeof(double)); /* room */
    int flags[4] = {t->empirical, t->symmetric2, t->K, t->score};
    double num[6] = {t->rate,        t->entropy,    t->critical,
                     t->proto.alpha, t->speciation, t->speciation_cov};
    NRD_MPI_CHECK(MPI_Bcast(flags, 4, MPI_INT, owner[i], MPI_COMM_WORLD));
    NRD_MPI_CHECK(MPI_Bcast(num, 6, MPI_DOUBLE, owner[i], MPI_COMM_WORLD));
    t->empirical = flags[0], t->symmetric2 = flags[1], t->K = flags[2];
    t->score = flags[3];
    t->rate = num[0], t->entropy = num[1], t->critical = num[2];
    t->proto.alpha = num[3], t->speciation = num[4];
    t->speciation_cov = num[5];
    for (int f = 0; f < THEORY_ARRAYS; f++)
      if (len[f] > 0)
        NRD_MPI_CHECK(MPI_Bcast(*slot[f], (int)len[f], MPI_DOUBLE, owner[i],
                                MPI_COMM_WORLD));
    NRD_MPI_CHECK(MPI_Bcast(&t->check, sizeof t->check, MPI_BYTE, owner[i],
                            MPI_COMM_WORLD));
  }
  free(owner);
  if (rank == 0) { /* the checks of every point, each kind said once */
    step_check *all = NRD_XCALLOC((size_t)P, sizeof *all);
    for (int i = 0; i < P; i++)
      all[i] = th[i].check;
    char *text = diagnose_summary_text(all, P, c->p);
    nrd_warn_lines(text);
    free(text);
    free(all);
  }
  return th;
}

void theory_free(point_theory *th, int n_points) {
  for (int i = 0; th && i < n_points; i++) {
    free(th[i].phi_theory);
    free(th[i].norm2_theory);
    free(th[i].means);
    proto_theory_free(&th[i].proto);
  }
  free(th);
}
