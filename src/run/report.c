/* What rank 0 prints (runctx.h): the progress of its own work, each grid
 * point's curves and critical times (measured from the block sums with
 * analysis.h, as nrdiff-post does), why a point failed, and the summary. */
#include "core/analysis.h"
#include "core/theory.h"
#include "run/checkpoint.h"
#include "run/runctx.h"
#include "util/error.h"
#include "util/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The level phi = F(1) at which the project defines t_S (doc/theory.md (5.5)). */
static double phi_level(void) {
  return theory_F(1.0);
}
void progress_report(progress *pr, const run_ctx *c, int point, long k,
                     double key, const char *key_name) {
  double now = nrd_log_elapsed();
  if (now - pr->last < 5.0 || pr->done <= 0 || pr->steps_done <= 0) return;
  pr->last = now;
  double f = pr->done / pr->total, spent = now - pr->start;
  nrd_info("point %d (%d/%d done here) step %ld/%ld t = %.4f %s = %.4f | "
           "%.3f ms/step, %.0f%% of this rank's work, ETA %.0f s",
           point, pr->points_done, pr->points_total, k, c->plan->steps, c->t[k],
           key_name, key, 1e3 * spent / (double)pr->steps_done, 100 * f,
           spent * (1 - f) / f);
}

static int kind_cloned(const point_report *r) {
  return r->empirical ? r->cloned_C : r->cloned_S;
}
estimate point_report_cloning(const point_report *r) {
  return r->empirical ? r->clone_C : r->clone_S;
}

/* "1.8221 +- 0.0034", "not reached", or the value without an error. */
static const char *estimate_text(char *buf, size_t len, estimate e) {
  if (isnan(e.value))
    snprintf(buf, len, "not reached");
  else if (isnan(e.error))
    snprintf(buf, len,
             "%.4f (no error: a leave-one-block-out curve does not "
             "reach the level, or one block)",
             e.value);
  else
    snprintf(buf, len, "%.4f +- %.4f", e.value, e.error);
  return buf;
}

/* A theory value, or "not available" (no closed form here). */
static const char *theory_text(char *buf, size_t len, double v) {
  if (isnan(v))
    snprintf(buf, len, "not available");
  else
    snprintf(buf, len, "%.4f", v);
  return buf;
}

/* Observable column q of every (output time, block) record as B x n
 * block-major (the layout of an_ratio_curve). */
static void block_column(long n, long B, long R, const double *blocks, int q,
                         double *out) {
  for (long i = 0; i < n; i++)
    for (long b = 0; b < B; b++)
      out[b * n + i] = blocks[((size_t)i * B + b) * R + q];
}

/* The crossing of a cloning curve: pairs that agree (columns `agree` ..
 * of the end-of-run sums) over the pairs (the count), at the branch times. */
static estimate clone_crossing(const proto_layout *X, const obs_layout *L,
                               long n_out, long B, const double *blocks,
                               int agree, double level) {
  long nb = X->n_branch, R = L->record;
  const double *fin =
      blocks + (size_t)(n_out - 1) * B * R + L->offset[OBS_FINAL];
  double *num = NRD_XCALLOC((size_t)(B * nb), sizeof *num);
  double *den = NRD_XCALLOC((size_t)(B * nb), sizeof *den);
  for (long b = 0; b < B; b++)
    for (long s = 0; s < nb; s++) {
      num[b * nb + s] = fin[b * R + agree + s];
      den[b * nb + s] = fin[b * R + X->f_count];
    }
  estimate e;
  an_jackknife_crossing(nb, X->branch_time, B, num, den, level, -1, &e.value,
                        &e.error);
  free(num);
  free(den);
  return e;
}

/* Why a grid point failed, for the report and its status attribute. */
void failure_text(const run_ctx *c, const point_theory *th, const grid_point *g,
                  long at, char *buf, size_t len) {
  char check[1024] = "";
  diagnose_point_text(&th->check, c->p, g, check, sizeof check);
  /* the most telling warning: instability, else bias, else the first */
  char *line = strstr(check, "unstable");
  if (!line) line = strstr(check, "biased");
  while (line && line > check && line[-1] != '\n')
    line--;
  if (!line) line = check;
  char *nl = strchr(line, '\n');
  if (nl) *nl = 0;
  const char *why = strstr(line, ": "); /* after "grid point I" */
  why = why ? why + 2 : line;
  snprintf(buf, len,
           "failed: the state of its particles is not finite by t = %.6g; "
           "no result is computed from it (%s)",
           c->out_time[at],
           why[0] ? why
                  : "no step-size warning: an overflow or a numerical "
                    "failure; try a smaller time step");
}

/* Rank 0: print one grid point and measure its critical times from the
 * block sums (n_out x n_blocks x record).  Curves, their pointwise errors
 * and the crossings come from analysis.h, as in nrdiff-post. */
void report_point(const run_ctx *c, const grid_point *g, const point_theory *th,
                  const obs_layout *L, const proto_layout *X,
                  const double *blocks, point_report *rep) {
  long B = c->plan->n_blocks, n = c->n_out, R = L->record;
  const double *tt = c->out_time;
  int key = th->empirical ? OBS_PARTICIPATION_Y2 : OBS_SPECIATION_PHI;
  double *phi = NRD_XCALLOC((size_t)n, sizeof *phi);
  double *err = NRD_XCALLOC((size_t)n, sizeof *err);
  double *y2 = NRD_XCALLOC((size_t)n, sizeof *y2);
  double *num = NRD_XCALLOC((size_t)(n * B), sizeof *num);
  double *cnt = NRD_XCALLOC((size_t)(n * B), sizeof *cnt);
  double *nrm = NRD_XCALLOC((size_t)(n * B), sizeof *nrm);
  block_column(n, B, R, blocks, L->offset[key], num);
  block_column(n, B, R, blocks, L->offset[OBS_COUNT], cnt);
  block_column(n, B, R, blocks, L->offset[OBS_NORM2], nrm);
  an_ratio_curve(n, B, num, cnt, phi, err);
  an_ratio_curve(n, B, nrm, cnt, y2, NULL);
  double level = th->empirical ? 0.5 : phi_level();
  memset(rep, 0, sizeof *rep);
  rep->ran = 1;
  rep->empirical = th->empirical;
  rep->theory = th->critical;
  an_jackknife_crossing(n, tt, B, num, cnt, level, -1, &rep->headline.value,
                        &rep->headline.error);
  rep->clone_S = rep->clone_C = (estimate){NAN, NAN};
  rep->cloned_S = X->speciation && X->n_branch > 0;
  rep->cloned_C = X->collapse && X->n_branch > 0;
  if (rep->cloned_S)
    rep->clone_S = clone_crossing(X, L, n, B, blocks, X->f_class, phi_level());
  if (rep->cloned_C)
    rep->clone_C = clone_crossing(X, L, n, B, blocks, X->f_nearest, 0.5);
  rep->speciation = (estimate){NAN, NAN};
  rep->speciation_theory = th->speciation;
  rep->labelled = th->empirical && L->classes;
  if (rep->labelled) {
    block_column(n, B, R, blocks, L->offset[OBS_SPECIATION_PHI], num);
    an_jackknife_crossing(n, tt, B, num, cnt, phi_level(), -1,
                          &rep->speciation.value, &rep->speciation.error);
  }

  printf("\nGrid point %d: d = %ld, separation = %g, strength g = %g, "
         "n_train = %ld\n",
         g->index, g->dimension, g->separation, g->strength, g->n_train);
  printf("  relaxation rate min Re sigma(A) = %.4f, entropy production = "
         "%.4g\n",
         th->rate, th->entropy);
  if (th->empirical)
    printf("  %10s %12s %10s %12s %12s\n", "t", "Y2", "+-", "E|y|^2",
           "E|x_t|^2");
  else
    printf("  %10s %12s %10s %12s %12s %12s\n", "t", "phi(t)", "+-",
           "F(kappa_t)", "E|y|^2", "E|x_t|^2");
  long stride = n > 24 ? (n + 23) / 24 : 1;
  for (long i = 0; i < n; i++) {
    if (i % stride && i != n - 1) continue;
    if (th->empirical)
      printf("  %10.4f %12.5f %10.5f %12.5g %12.5g\n", tt[i], phi[i], err[i],
             y2[i], th->norm2_theory[i]);
    else
      printf("  %10.4f %12.5f %10.5f %12.5f %12.5g %12.5g\n", tt[i], phi[i],
             err[i], th->phi_theory[i], y2[i], th->norm2_theory[i]);
  }
  char v[160], w[64];
  if (th->empirical)
    printf("  measured t_C (Y2 crosses 1/2) = %s; REM collapse time t_C "
           "(d -> infinity, alpha = ln n / d) = %s\n",
           estimate_text(v, sizeof v, rep->headline),
           theory_text(w, sizeof w, th->critical));
  else
    printf("  measured t_S (phi crosses F(1) = %.4f) = %s; theory (%s) = %s\n",
           level, estimate_text(v, sizeof v, rep->headline),
           th->symmetric2 ? "kappa_t = 1" : "matrix criterion",
           theory_text(w, sizeof w, th->critical));
  if (rep->labelled) {
    char u[64];
    printf("  measured t_S (clone-free phi of the training labels crosses "
           "F(1)) = %s; theory (%s of the data's classes) = %s, class-free "
           "(covariance) = %s\n",
           estimate_text(v, sizeof v, rep->speciation),
           th->symmetric2 ? "kappa_t = 1" : "matrix criterion",
           theory_text(w, sizeof w, th->speciation),
           theory_text(u, sizeof u, th->speciation_cov));
  }
  if (rep->cloned_S)
    printf("  t_S by cloning (branch times only) = %s\n",
           estimate_text(v, sizeof v, rep->clone_S));
  if (rep->cloned_C)
    printf("  t_C by cloning (phi_C crosses 1/2, branch times only) = %s\n",
           estimate_text(v, sizeof v, rep->clone_C));
  fflush(stdout);
  free(phi);
  free(err);
  free(y2);
  free(num);
  free(cnt);
  free(nrm);
}

/* Rank 0: a failed grid point, with why. */
void report_failed_point(const grid_point *g, point_report *rep,
                         const char *status) {
  memset(rep, 0, sizeof *rep);
  rep->ran = rep->failed = 1;
  rep->empirical = g->n_train > 0;
  rep->headline = rep->clone_S = rep->clone_C = (estimate){NAN, NAN};
  rep->theory = NAN;
  printf("\nGrid point %d: d = %ld, separation = %g, strength g = %g, "
         "n_train = %ld\n  FAILED: %s\n",
         g->index, g->dimension, g->separation, g->strength, g->n_train,
         status + strlen("failed: "));
  fflush(stdout);
}

/* The reversible point (strength 0) with the same other coordinates as
 * point i, or -1. */
static int reversible_partner(const run_plan *plan, int i) {
  const grid_point *g = &plan->points[i];
  for (int j = 0; j < plan->n_points; j++) {
    const grid_point *h = &plan->points[j];
    if (h->strength == 0 && h->dimension == g->dimension &&
        h->separation == g->separation && h->n_train == g->n_train)
      return j;
  }
  return -1;
}

/* A number in a column of `width`, "not reached" (NaN measurement) or "-"
 * (nothing to show). */
static void column(int width, double v, const char *if_nan) {
  if (isnan(v))
    printf(" %*s", width, if_nan);
  else
    printf(" %*.4f", width, v);
}

/* Findings: per grid point the measured critical time (the headline, as
 * reported above), its theory, the deviation in units of the error, the
 * shift relative to the reversible process (g = 0) at the same d,
 * separation and n, and the cloning estimate where it ran. */
static void print_summary(const run_plan *plan, const point_report *rep) {
  printf("\nSummary: critical time per grid point (n_train = 0: speciation "
         "t_S, phi crossing F(1) vs kappa_t = 1;\n         n_train > 0: Y2 "
         "crossing 1/2 vs the REM collapse time; cloning: phi_clone or phi_C "
         "at the branch times)\n");
  printf("  %5s %9s %10s %8s %7s %11s %8s %9s %7s %11s %11s %8s\n", "index",
         "dimension", "separation", "strength", "n_train", "measured", "+-",
         "theory", "z", "t/t(g=0)", "cloning", "+-");
  for (int i = 0; i < plan->n_points; i++) {
    const grid_point *g = &plan->points[i];
    const point_report *x = &rep[i];
    if (!x->ran) continue;
    int r = reversible_partner(plan, i);
    double ratio = r >= 0 && rep[r].ran && !rep[r].failed
                       ? x->headline.value / rep[r].headline.value
                       : NAN;
    printf("  %5d %9ld %10g %8g %7ld", g->index, g->dimension, g->separation,
           g->strength, g->n_train);
    if (x->failed) {
      printf(" %11s  (the grid point failed: see above)\n", "FAILED");
      continue;
    }
    column(11, x->headline.value, "not reached");
    column(8, x->headline.error, "-");
    column(9, x->theory, "-");
    double z = (x->headline.value - x->theory) / x->headline.error;
    if (isnan(z))
      printf(" %7s", "-");
    else
      printf(" %7.2f", z);
    column(11, ratio, "-");
    estimate cl = point_report_cloning(x);
    if (kind_cloned(x)) {
      column(11, cl.value, "not reached");
      column(8, cl.error, "-");
    } else {
      printf(" %11s %8s", "-", "-");
    }
    printf("\n");
  }
  printf("  z = (measured - theory) / error; |z| > 3 at n_train = 0 means "
         "disagreement beyond the statistics.\n");
  fflush(stdout);
}

void report_done(const run_ctx *c, const point_report *rep, int n_failed,
                 double wall) {
  const run_plan *plan = c->plan;
  print_summary(plan, rep);
  long n_run = c->n_selected;
  double psteps = (double)n_run * plan->particles * plan->steps;
  printf("\nDone: %ld grid point(s), %.3g particle-steps in %.1f s on %d "
         "rank(s): %.3g particle-steps/s.  Output: %s\n",
         n_run, psteps, wall, nrd_log_size(), psteps / wall, c->p->output.file);
  fflush(stdout);
  if (n_failed > 0)
    fprintf(stderr,
            "nrdiff: error: %d grid point(s) failed (their state stopped "
            "being finite; see 'FAILED' above and /points/IIII@status); the "
            "other points' results are in %s\n",
            n_failed, c->p->output.file);
}

int report_stop(const run_ctx *c) {
  char *ck = checkpoint_path(c->p, 0);
  if (nrd_log_rank() == 0)
    printf("\nStopped on request (%s) after %.1f s; checkpoint: %s.\n"
           "Continue with: nrdiff --restart <same parameters>\n",
           c->stop_reason, nrd_log_elapsed() - c->t_start, ck);
  free(ck);
  return NRD_EXIT_STOPPED;
}
