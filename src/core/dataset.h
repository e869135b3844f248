/* A data set from a file (data.source: file; doc/data-files.md): its points
 * as read, and the same prepared for a run: the kept classes, normalised,
 * in a fixed seeded order whose first n points are the training set of
 * grid.n_train = n (so that training sets over n nest), with the Gaussian
 * description of its classes that the theory uses (doc/theory.md section
 * 10).  Numerics only: the I/O layer reads the file (io/data_file.h). */
#ifndef NRDIFF_DATASET_H
#define NRDIFF_DATASET_H

#include <stdint.h>
#include <stddef.h>

/* The points of a data file as stored, converted to double. */
typedef struct {
  long n;      /* points */
  int d;       /* coordinates per point */
  double *x;   /* n x d, row-major */
  long *label; /* n labels, or NULL (unlabelled) */
  int pixels;  /* stored as uint8 */
  int shape_rank;
  long shape[4]; /* the points' own shape (an image's rows, columns), or 0 */
} data_raw;

void data_raw_free(data_raw *r);

typedef struct {
  long n_file;       /* points in the file */
  long n;            /* points of the kept classes */
  int d, K;          /* K = 1 for unlabelled data */
  double *x;         /* n x d normalised, in the seeded order */
  int *label;        /* n classes in [0, K), or NULL (unlabelled) */
  long *row;         /* n: each point's row in the file */
  long *class_label; /* K: the file's label of class k (0 if unlabelled) */
  long *class_count; /* K: points of class k */
  int pixels;        /* the file's points were uint8 pixels */
  double scale;      /* the factor applied after centring (1 if not) */
  double mean_norm;  /* |mean point| removed by centring (0 if not) */
  /* The classes as Gaussians: the fractions, means (K x d) and the pooled
   * within-class covariance (d x d) of all n kept points. */
  double *weights, *means, *within;
  uint64_t digest; /* FNV-1a of x and label: the data a run used */
  int shape_rank;
  long shape[4];
} data_set;

/* Prepare raw (whose arrays it takes over and frees: raw is left empty)
 * for a run: keep the classes of `subset` (n_subset labels in the order
 * that numbers them; 0: every label, increasing), normalise (enum
 * nrd_normalize of config/params.h), and order by seed.  NRD_ERR_INPUT
 * with a message in err (a label of the subset absent, a non-finite
 * value, no point left); NRD_ERR_NOMEM. */
int dataset_prepare(data_set *D, data_raw *raw, const long *subset,
                    int n_subset, int normalize, uint32_t seed, char *err,
                    size_t errlen);
void dataset_free(data_set *D);

#endif
