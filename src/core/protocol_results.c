/* Measurement protocols: the derived results of a grid point, built from
 * descriptor tables (see protocol.h).
 *
 * Each protocol has one static table of its datasets, in the order the
 * output file lists them: group (the protocol), name, description, shape
 * (rows x columns, each a named extent) and how the values are computed: a
 * copy of a vector (a layout time list, the output times, a theory
 * curve), a jackknife over blocks of a statistic of each element's block
 * sums (its error in the dataset that follows), a total over blocks, or the
 * freezing-time summary.  proto_results_build adds every dataset of the
 * active protocols in table order, then fills them on the rank that has the
 * sums. */
#include "core/protocol.h"
#include "core/analysis.h"
#include "util/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The extent of a dataset's rows or columns. */
typedef enum {
  NO_COLUMNS, /* as the columns: a 1-D dataset */
  ONE,
  THREE,
  BRANCHES,   /* branch times t_b */
  UTURNS,     /* noising times T_u */
  REFERENCES, /* reference times s */
  OUTPUTS,    /* output times */
  CLASSES,    /* mixture components */
  N_EXTENTS
} extent;

/* Vectors that datasets copy. */
typedef enum {
  BRANCH_TIMES,
  UTURN_TIMES,
  REFERENCE_TIMES,
  OUTPUT_TIMES,
  THEORY_ALPHA,
  THEORY_PHI,
  THEORY_CUT_GAUSS,
  THEORY_CUT_GM2,
  THEORY_CORR_DATA,
  THEORY_CORR_STAT,
  N_VECTORS
} vector_id;

/* What one build reads. */
typedef struct {
  const proto_layout *X;
  const proto_theory *th; /* NULL: the theory datasets stay NaN */
  const obs_layout *L;
  long B;
  const double *blocks; /* n_out x B x record, or NULL (no data here) */
  const double *final;  /* the last output time's records: the final sums */
  int count;            /* the particle count's column in the final sums */
  long extent[N_EXTENTS];
  const double *vector[N_VECTORS]; /* NULL: absent (no theory) */
} build;

/* --------------------------------------------- block sums, statistics */

/* The block sums that element (i, j) of a dataset is computed from: nv
 * columns of one output time's records. */
typedef struct {
  const double *rec;
  int nv, col[3];
} element_sums;

typedef element_sums (*sums_rule)(const build *c, long i, long j);

static const double *records_at(const build *c, long o) {
  return c->blocks + (size_t)o * c->B * c->L->record;
}

static int final_col(const build *c, int f) {
  return c->L->offset[OBS_FINAL] + f;
}

/* clone pairs of t_b that end in the same class, and the count */
static element_sums same_class(const build *c, long s, long j) {
  (void)j;
  return (element_sums){
      c->final, 2, {final_col(c, c->X->f_class + (int)s), c->count}};
}

/* clone pairs of t_b whose end points have the same nearest training point */
static element_sums same_nearest(const build *c, long s, long j) {
  (void)j;
  return (element_sums){
      c->final, 2, {final_col(c, c->X->f_nearest + (int)s), c->count}};
}

/* sum of ln p^e_t and the count at output time i */
static element_sums log_pe(const build *c, long i, long j) {
  (void)j;
  return (element_sums){
      records_at(c, i), 2, {c->L->offset[OBS_LOG_PE], c->L->offset[OBS_COUNT]}};
}

/* The sums of T_u start at uturn_col: sum x.y/|x|^2, sum x.y, sum |x|^2,
 * then per class k: count, the same three. */
static int uturn_col(const build *c, long u) {
  return final_col(c, c->X->f_uturn + (int)u * c->X->uturn_stride);
}

static element_sums uturn_overlap(const build *c, long u, long j) {
  (void)j;
  return (element_sums){c->final, 2, {uturn_col(c, u), c->count}};
}

static element_sums uturn_ratio(const build *c, long u, long j) {
  (void)j;
  int base = uturn_col(c, u);
  return (element_sums){c->final, 2, {base + 1, base + 2}};
}

static element_sums class_overlap(const build *c, long u, long k) {
  int base = uturn_col(c, u) + 3 + 4 * (int)k;
  return (element_sums){c->final, 2, {base + 1, base}};
}

static element_sums class_points(const build *c, long u, long k) {
  return (element_sums){c->final, 1, {uturn_col(c, u) + 3 + 4 * (int)k}};
}

/* x_t.x_s, |x_s|^2 (reference time q) and |x_t|^2 at output time i, along
 * the forward paths from data or from the stationary law */
static element_sums forward_corr(const build *c, long q, long i, int corr,
                                 int norm2) {
  return (element_sums){records_at(c, i),
                        3,
                        {c->L->offset[corr] + 2 * (int)q,
                         c->L->offset[corr] + 2 * (int)q + 1,
                         c->L->offset[norm2]}};
}

static element_sums data_corr(const build *c, long q, long i) {
  return forward_corr(c, q, i, OBS_FWD_DATA_CORR, OBS_FWD_DATA_NORM2);
}

static element_sums stationary_corr(const build *c, long q, long i) {
  return forward_corr(c, q, i, OBS_FWD_STAT_CORR, OBS_FWD_STAT_NORM2);
}

/* Statistics of block-summed totals for an_jackknife (analysis.h), beside
 * its an_ratio; ctx is the element's. */
typedef struct {
  const build *c;
  long i;
} element_ctx;

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

/* f^e = offset_t + <ln p> / d at output time i */
static double excess(const double *s, const void *ctx) {
  const element_ctx *e = ctx;
  const build *c = e->c;
  double offset = c->th ? c->th->fe_offset[e->i] : NAN;
  return offset + s[0] / s[1] / c->X->d;
}

/* ------------------------------------------------------------- tables */

typedef enum {
  COPY,        /* a copy of `vector` (NaN where it is absent) */
  JACKKNIFE,   /* `stat` of each element's `sums`, and its jackknife error */
  BLOCK_TOTAL, /* the total over blocks of each element's one column */
  FREEZING,    /* freezing time: mean, its error, spread over trajectories */
} value_rule;

typedef struct {
  const char *name, *description;
  extent rows, cols;
  value_rule how;
  vector_id vector; /* COPY */
  sums_rule sums;   /* JACKKNIFE, BLOCK_TOTAL */
  an_stat stat;     /* JACKKNIFE */
  /* JACKKNIFE: the error's dataset, of the same shape, right after */
  const char *error_name, *error_description;
} result_info;

#define TIMES_SNAPPED(what) what " (snapped to the time grid)"

static const result_info SPECIATION[] = {
    {"branch_time", TIMES_SNAPPED("branch times t_b"), BRANCHES, NO_COLUMNS,
     COPY, .vector = BRANCH_TIMES},
    {"phi_clone",
     "fraction of clone pairs branched at t_b that end in the same class",
     BRANCHES, NO_COLUMNS, JACKKNIFE, .sums = same_class, .stat = an_ratio,
     .error_name = "phi_clone_err",
     .error_description = "jackknife error of phi_clone over blocks"},
    {"phi_theory",
     "F(kappa_{t_b}) (doc/theory.md (5.3); NaN unless two symmetric classes and "
     "the exact score)",
     BRANCHES, NO_COLUMNS, COPY, .vector = THEORY_PHI},
};

static const result_info COLLAPSE[] = {
    {"branch_time", TIMES_SNAPPED("branch times t_b"), BRANCHES, NO_COLUMNS,
     COPY, .vector = BRANCH_TIMES},
    {"phiC_clone",
     "fraction of clone pairs branched at t_b whose end points have the same "
     "nearest training point",
     BRANCHES, NO_COLUMNS, JACKKNIFE, .sums = same_nearest, .stat = an_ratio,
     .error_name = "phiC_clone_err",
     .error_description = "jackknife error of phiC_clone over blocks"},
    {"freezing_time",
     "nearest-training-point freezing time of the trajectories: mean, "
     "jackknife error of the mean, standard deviation over trajectories",
     THREE, NO_COLUMNS, .how = FREEZING},
    {"alpha", "alpha = ln(n) / d", ONE, NO_COLUMNS, COPY,
     .vector = THEORY_ALPHA},
    {"time", "output times", OUTPUTS, NO_COLUMNS, COPY, .vector = OUTPUT_TIMES},
    {"excess_entropy",
     "f^e(t) = alpha + (1/2d) ln det(2 pi e Delta_t) + E[ln p^e_t]/d "
     "(doc/theory.md (6.9))",
     OUTPUTS, NO_COLUMNS, JACKKNIFE, .sums = log_pe, .stat = excess,
     .error_name = "excess_entropy_err",
     .error_description = "jackknife error of excess_entropy"},
};

static const result_info UTURN[] = {
    {"T_u", TIMES_SNAPPED("noising times T_u"), UTURNS, NO_COLUMNS, COPY,
     .vector = UTURN_TIMES},
    {"c_uturn",
     "C_UT = mean of x_0.y_0/|x_0|^2 (per-sample normalisation, "
     "doc/theory.md (7.1))",
     UTURNS, NO_COLUMNS, JACKKNIFE, .sums = uturn_overlap, .stat = an_ratio,
     .error_name = "c_uturn_err",
     .error_description = "jackknife error of c_uturn"},
    {"c_uturn_ratio",
     "E[x_0.y_0] / E|x_0|^2 (ratio of expectations, the normalisation of "
     "the closed forms)",
     UTURNS, NO_COLUMNS, JACKKNIFE, .sums = uturn_ratio, .stat = an_ratio,
     .error_name = "c_uturn_ratio_err",
     .error_description = "jackknife error of c_uturn_ratio"},
    {"theory_gaussian",
     "closed form for Gaussian data with the data covariance Sigma_0 (ratio "
     "normalisation)",
     UTURNS, NO_COLUMNS, COPY, .vector = THEORY_CUT_GAUSS},
    {"theory_gm2",
     "exact two-class mixture closed form (A = I, isotropic classes, exact "
     "score; NaN otherwise)",
     UTURNS, NO_COLUMNS, COPY, .vector = THEORY_CUT_GM2},
    {"class_c_uturn", "c_uturn restricted to data points of class k", UTURNS,
     CLASSES, JACKKNIFE, .sums = class_overlap, .stat = an_ratio,
     .error_name = "class_c_uturn_err",
     .error_description = "jackknife error of class_c_uturn"},
    {"class_count", "number of data points of class k", UTURNS, CLASSES,
     BLOCK_TOTAL, .sums = class_points},
};

#define CORR_THEORY                                                            \
  "exact value, tr(e^{-A(t-s)} Sigma_s) / sqrt(tr Sigma_s tr Sigma_t)"

static const result_info FORWARD[] = {
    {"reference_time", TIMES_SNAPPED("reference times s"), REFERENCES,
     NO_COLUMNS, COPY, .vector = REFERENCE_TIMES},
    {"time", "times t of the correlations", OUTPUTS, NO_COLUMNS, COPY,
     .vector = OUTPUT_TIMES},
    {"corr_data",
     "C(s, t) = E[x_s.x_t] / sqrt(E|x_s|^2 E|x_t|^2) along forward paths "
     "from data (row: s, column: t; NaN for t < s)",
     REFERENCES, OUTPUTS, JACKKNIFE, .sums = data_corr, .stat = normalised,
     .error_name = "corr_data_err", .error_description = "jackknife error"},
    {"corr_data_theory", CORR_THEORY, REFERENCES, OUTPUTS, COPY,
     .vector = THEORY_CORR_DATA},
    {"corr_stationary",
     "the same from the stationary law: C(t - s), e^{-tau} cos(q tau) for "
     "U = I, d = 2 (doc/theory.md (7.9))",
     REFERENCES, OUTPUTS, JACKKNIFE, .sums = stationary_corr,
     .stat = normalised, .error_name = "corr_stationary_err",
     .error_description = "jackknife error"},
    {"corr_stationary_theory", CORR_THEORY, REFERENCES, OUTPUTS, COPY,
     .vector = THEORY_CORR_STAT},
};

static int speciation_on(const proto_layout *X) {
  return X->speciation;
}
static int collapse_on(const proto_layout *X) {
  return X->collapse;
}
static int uturn_on(const proto_layout *X) {
  return X->uturn;
}
static int forward_on(const proto_layout *X) {
  return X->forward;
}

#define ROWS(table) table, sizeof table / sizeof table[0]

static const struct {
  const char *group;
  int (*on)(const proto_layout *X);
  const result_info *rows;
  size_t n;
} PROTOCOLS[] = {
    {"speciation", speciation_on, ROWS(SPECIATION)},
    {"collapse", collapse_on, ROWS(COLLAPSE)},
    {"uturn", uturn_on, ROWS(UTURN)},
    {"forward", forward_on, ROWS(FORWARD)},
};

/* a row adds at most two datasets (a value and its error) */
_Static_assert(2 * (sizeof SPECIATION / sizeof SPECIATION[0] +
                    sizeof COLLAPSE / sizeof COLLAPSE[0] +
                    sizeof UTURN / sizeof UTURN[0] +
                    sizeof FORWARD / sizeof FORWARD[0]) <=
                   sizeof((proto_results *)0)->v /
                       sizeof((proto_results *)0)->v[0],
               "proto_results has room for every dataset of the tables");

/* -------------------------------------------------------------- build */

/* A dataset over the branch or U-turn times exists only if there are
 * some; the others always do. */
static int present(const build *c, const result_info *row) {
  return c->extent[row->rows] > 0 ||
         (row->rows != BRANCHES && row->rows != UTURNS);
}

/* Append a dataset of row's shape to r, its data NaN on the rank that has
 * the sums (NULL if out of memory). */
static proto_dataset *add(proto_results *r, const char *group, const char *name,
                          const char *description, const result_info *row,
                          const build *c) {
  proto_dataset *ds = &r->v[r->n++];
  long n0 = c->extent[row->rows], n1 = c->extent[row->cols];
  ds->group = group;
  ds->name = name;
  ds->description = description;
  ds->rank = n1 > 0 ? 2 : 1;
  ds->dims[0] = n0;
  ds->dims[1] = n1 > 0 ? n1 : 1;
  ds->data = NULL;
  if (c->blocks) {
    long n = n0 * ds->dims[1];
    ds->data = malloc((size_t)(n > 0 ? n : 1) * sizeof *ds->data);
    if (!ds->data) return NULL;
    for (long i = 0; i < n; i++)
      ds->data[i] = NAN;
  }
  return ds;
}

/* Block sums of columns cols[0..nv) of one output time's records. */
static void block_columns(long B, long R, const element_sums *e, double *out) {
  for (long b = 0; b < B; b++)
    for (int v = 0; v < e->nv; v++)
      out[b * e->nv + v] = e->rec[b * R + e->col[v]];
}

/* The values of ds (and of err, its error, for a jackknife). */
static void fill(const build *c, const result_info *row, proto_dataset *ds,
                 proto_dataset *err, double *sums) {
  long B = c->B, R = c->L->record, n1 = ds->dims[1];
  switch (row->how) {
  case COPY: {
    const double *v = c->vector[row->vector];
    if (v) memcpy(ds->data, v, (size_t)(ds->dims[0] * n1) * sizeof *v);
    return;
  }
  case JACKKNIFE:
    for (long i = 0; i < ds->dims[0]; i++)
      for (long j = 0; j < n1; j++) {
        element_sums e = row->sums(c, i, j);
        element_ctx ctx = {c, i};
        block_columns(B, R, &e, sums);
        an_jackknife(B, e.nv, sums, row->stat, &ctx, &ds->data[i * n1 + j],
                     &err->data[i * n1 + j]);
      }
    return;
  case BLOCK_TOTAL:
    for (long i = 0; i < ds->dims[0]; i++)
      for (long j = 0; j < n1; j++) {
        element_sums e = row->sums(c, i, j);
        double n = 0;
        for (long b = 0; b < B; b++)
          n += e.rec[b * R + e.col[0]];
        ds->data[i * n1 + j] = n;
      }
    return;
  case FREEZING: {
    int f = final_col(c, c->X->f_freeze);
    element_sums moments = {c->final, 3, {f, f + 1, c->count}};
    element_sums mean = {c->final, 2, {f, c->count}};
    double unused;
    block_columns(B, R, &moments, sums);
    an_jackknife(B, 3, sums, spread, NULL, &ds->data[2], &unused);
    block_columns(B, R, &mean, sums);
    an_jackknife(B, 2, sums, an_ratio, NULL, &ds->data[0], &ds->data[1]);
    return;
  }
  }
}

int proto_results_build(proto_results *r, const proto_layout *X,
                        const proto_theory *th, const obs_layout *L, long n_out,
                        const double *out_time, long B, const double *blocks) {
  memset(r, 0, sizeof *r);
  /* the row of each dataset, NULL for a jackknife's error */
  const result_info *row_of[sizeof r->v / sizeof r->v[0]];
  /* the final sums are in the record of the last output time */
  build c = {.X = X,
             .th = th,
             .L = L,
             .B = B,
             .blocks = blocks,
             .count = L->offset[OBS_FINAL] + X->f_count,
             .extent = {[ONE] = 1,
                        [THREE] = 3,
                        [BRANCHES] = X->n_branch,
                        [UTURNS] = X->n_uturn,
                        [REFERENCES] = X->n_ref,
                        [OUTPUTS] = n_out,
                        [CLASSES] = X->K},
             .vector = {[BRANCH_TIMES] = X->branch_time,
                        [UTURN_TIMES] = X->uturn_time,
                        [REFERENCE_TIMES] = X->ref_time,
                        [OUTPUT_TIMES] = out_time}};
  if (th) {
    c.vector[THEORY_ALPHA] = &th->alpha;
    c.vector[THEORY_PHI] = th->phi;
    c.vector[THEORY_CUT_GAUSS] = th->cut_gauss;
    c.vector[THEORY_CUT_GM2] = th->cut_gm2;
    c.vector[THEORY_CORR_DATA] = th->corr_data;
    c.vector[THEORY_CORR_STAT] = th->corr_stat;
  }
  if (blocks) c.final = records_at(&c, n_out - 1);
  for (size_t p = 0; p < sizeof PROTOCOLS / sizeof PROTOCOLS[0]; p++) {
    if (!PROTOCOLS[p].on(X)) continue;
    for (size_t k = 0; k < PROTOCOLS[p].n; k++) {
      const result_info *row = &PROTOCOLS[p].rows[k];
      const char *group = PROTOCOLS[p].group;
      if (!present(&c, row)) continue;
      row_of[r->n] = row;
      if (!add(r, group, row->name, row->description, row, &c)) goto nomem;
      if (row->how != JACKKNIFE) continue;
      row_of[r->n] = NULL;
      if (!add(r, group, row->error_name, row->error_description, row, &c))
        goto nomem;
    }
  }
  if (!blocks) return NRD_OK;
  double *sums = malloc((size_t)(B > 0 ? B : 1) * 8 * sizeof *sums);
  if (!sums) goto nomem;
  for (int i = 0; i < r->n; i++)
    if (row_of[i])
      fill(&c, row_of[i], &r->v[i],
           row_of[i]->how == JACKKNIFE ? &r->v[i + 1] : NULL, sums);
  free(sums);
  return NRD_OK;
nomem:
  proto_results_free(r);
  return NRD_FAIL(NRD_ERR_NOMEM,
                  "protocol results: %ld output times, %ld "
                  "blocks",
                  n_out, B);
}

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
