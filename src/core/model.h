/* One grid point's physics, built from the parameters: the forward operator
 * A = (I + g Qhat) U, the data mixture, the training set (if any) and the
 * time-dependent score model (exact mixture or exact empirical score). */
#ifndef NRDIFF_MODEL_H
#define NRDIFF_MODEL_H

#include <stddef.h>

#include "core/dataset.h"
#include "core/grid.h"
#include "core/mixture.h"
#include "core/ou.h"
#include "config/params.h"
#include "core/score.h"

typedef struct {
  grid_point point;
  int d;
  uint32_t seed;
  ou_op op;
  mixture mix;
  double *direction; /* unit class direction of the two-class mixture */
  long n_train;      /* 0: exact mixture score */
  double *train;     /* n_train x d training points */
  int *train_label;  /* their mixture components or classes, or NULL */
  const data_set *data; /* data.source: file: the data (not owned), whose
                          first n_train points are the training set and
                          whose classes' Gaussians are mix */
  int single;        /* run.precision float32: SGEMM in the empirical score */
} model;

/* Reads the d x d matrix `dataset` of `file` into M for parameter `key`
 * (forward.u_file, forward.q_file), with a message naming them on failure.
 * The I/O layer has one (io/matrix_file.h): the model reads no file. */
typedef int (*model_matrix_reader)(const char *file, const char *dataset,
                                   int d, double *M, const char *key,
                                   char *err, size_t errlen);

/* Build the model of grid point g; read (may be NULL when no parameter
 * names a file) reads the matrices of forward.u = file and forward.q =
 * file.  On failure returns a status and a message naming the parameter or
 * file. */
int model_build(model *m, const nrd_params *p, const grid_point *g,
                model_matrix_reader read, char *err, size_t errlen);
/* The same with the data of data.source: file (data may be NULL for
 * data.source: mixture; it must outlive the model). */
int model_build_data(model *m, const nrd_params *p, const grid_point *g,
                     model_matrix_reader read, const data_set *data, char *err,
                     size_t errlen);
void model_free(model *m);
/* Only the forward operator of grid point g (what --dry-run checks). */
int model_build_operator(ou_op *op, const nrd_params *p, const grid_point *g,
                         model_matrix_reader read, char *err, size_t errlen);

/* The score of p_t at one time t. */
typedef struct {
  const model *m;
  double t;
  double *E;     /* e^{-At} */
  double *Delta; /* Delta_t */
  score_mixture mixture;
  score_empirical empirical;
} score_model;

int score_model_init(score_model *s, const model *m);
void score_model_free(score_model *s);
/* Returns NRD_ERR_NUMERIC if the score is singular at t (e.g. the empirical
 * score at t = 0). */
int score_model_set_time(score_model *s, double t);
size_t score_model_work_size(const score_model *s, int P);
/* Score S (P x d) at X; optional (NULL): resp (P x K) class responsibilities
 * (exact mixture; for the empirical score the class weights of labelled
 * training points when K >= 2, else untouched), logp (P), y2 (P) and
 * nearest (P) (empirical only). */
int score_model_eval(const score_model *s, int P, const double *X, double *S,
                     double *resp, double *logp, double *y2, int *nearest,
                     double *work);
/* The empirical score's split s = r - Delta_t^{-1} x (score.h): *split = 1
 * and Delta_t^{-1} (or NULL and *inv = 1/delta) for the empirical score,
 * *split = 0 for the exact mixture, which has no such split. */
const double *score_model_dinv(const score_model *s, int *split, double *inv);
/* r = s + Delta_t^{-1} x (empirical score only), with resp (as above), y2
 * and nearest. */
int score_model_eval_nonlinear(const score_model *s, int P, const double *X,
                               double *R, double *resp, double *y2,
                               int *nearest, double *work);

#endif
