/* Data sets from files, prepared for a run (see dataset.h). */
#include "core/dataset.h"
#include "core/rng.h"
#include "config/params.h"
#include "util/error.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void data_raw_free(data_raw *r) {
  free(r->x);
  free(r->label);
  memset(r, 0, sizeof *r);
}

void dataset_free(data_set *D) {
  free(D->x);
  free(D->label);
  free(D->row);
  free(D->class_label);
  free(D->class_count);
  free(D->weights);
  free(D->means);
  free(D->within);
  memset(D, 0, sizeof *D);
}

static int cmp_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return (x > y) - (x < y);
}

/* The classes: the subset's labels in its order, or every distinct label in
 * increasing order (one class 0 for unlabelled data). */
static int find_classes(data_set *D, const data_raw *raw, const long *subset,
                        int n_subset, char *err, size_t errlen) {
  if (!raw->label) {
    D->K = 1;
    D->class_label = calloc(1, sizeof *D->class_label);
    return D->class_label ? NRD_OK : NRD_FAIL(NRD_ERR_NOMEM, "one class");
  }
  long *all = malloc((size_t)raw->n * sizeof *all);
  if (!all) return NRD_FAIL(NRD_ERR_NOMEM, "labels of %ld points", raw->n);
  memcpy(all, raw->label, (size_t)raw->n * sizeof *all);
  qsort(all, (size_t)raw->n, sizeof *all, cmp_long);
  long distinct = 0;
  for (long i = 0; i < raw->n; i++)
    if (i == 0 || all[i] != all[i - 1]) all[distinct++] = all[i];
  int rc = NRD_OK;
  if (n_subset > 0) {
    for (int k = 0; k < n_subset && rc == NRD_OK; k++)
      if (!bsearch(&subset[k], all, (size_t)distinct, sizeof *all, cmp_long)) {
        snprintf(err, errlen,
                 "data.class_subset: label %ld is not among the file's "
                 "labels (%ld to %ld, %ld distinct)",
                 subset[k], all[0], all[distinct - 1], distinct);
        rc = NRD_FAIL(NRD_ERR_INPUT, "label %ld absent", subset[k]);
      }
    D->K = n_subset;
  } else {
    D->K = (int)distinct;
  }
  D->class_label = malloc((size_t)D->K * sizeof *D->class_label);
  if (rc == NRD_OK && !D->class_label)
    rc = NRD_FAIL(NRD_ERR_NOMEM, "%d classes", D->K);
  if (rc == NRD_OK)
    memcpy(D->class_label, n_subset > 0 ? subset : all,
           (size_t)D->K * sizeof *D->class_label);
  free(all);
  return rc;
}

/* Class of file label v, or -1 if its class is not kept. */
static int class_of(const data_set *D, long v) {
  for (int k = 0; k < D->K; k++)
    if (D->class_label[k] == v) return k;
  return -1;
}

typedef struct {
  double key;
  long row;
} order_key;

static int cmp_key(const void *a, const void *b) {
  const order_key *x = a, *y = b;
  if (x->key != y->key) return x->key < y->key ? -1 : 1;
  return (x->row > y->row) - (x->row < y->row);
}

/* The kept rows in the seeded order: by a uniform key drawn per file row,
 * so that the order of the kept points does not depend on what else is
 * kept. */
static int kept_order(data_set *D, const data_raw *raw, uint32_t seed,
                      char *err, size_t errlen) {
  order_key *k = malloc((size_t)raw->n * sizeof *k);
  if (!k) return NRD_FAIL(NRD_ERR_NOMEM, "order of %ld points", raw->n);
  long n = 0;
  for (long i = 0; i < raw->n; i++) {
    if (raw->label && class_of(D, raw->label[i]) < 0) continue;
    rng_uniforms(seed, RNG_PURPOSE_SUBSAMPLE, (uint64_t)i, 0, 1, &k[n].key);
    k[n++].row = i;
  }
  if (n == 0) {
    free(k);
    snprintf(err, errlen, "data.class_subset keeps no point of the file");
    return NRD_FAIL(NRD_ERR_INPUT, "no point kept");
  }
  qsort(k, (size_t)n, sizeof *k, cmp_key);
  D->n = n;
  D->row = malloc((size_t)n * sizeof *D->row);
  if (!D->row) {
    free(k);
    return NRD_FAIL(NRD_ERR_NOMEM, "rows of %ld points", n);
  }
  for (long i = 0; i < n; i++)
    D->row[i] = k[i].row;
  free(k);
  return NRD_OK;
}

/* pixels to [-1, 1], then centring and scaling (data.normalize). */
static int normalise(data_set *D, int normalize) {
  long n = D->n;
  int d = D->d;
  size_t nd = (size_t)n * d;
  if (D->pixels)
    for (size_t i = 0; i < nd; i++)
      D->x[i] = D->x[i] / 127.5 - 1.0;
  D->scale = 1.0;
  D->mean_norm = 0.0;
  if (normalize == NORMALIZE_NONE) return NRD_OK;
  double *mean = calloc((size_t)d, sizeof *mean);
  if (!mean) return NRD_FAIL(NRD_ERR_NOMEM, "mean point, d = %d", d);
  for (long i = 0; i < n; i++)
    for (int j = 0; j < d; j++)
      mean[j] += D->x[(size_t)i * d + j];
  double m2 = 0, var = 0;
  for (int j = 0; j < d; j++) {
    mean[j] /= (double)n;
    m2 += mean[j] * mean[j];
  }
  D->mean_norm = sqrt(m2);
  for (long i = 0; i < n; i++)
    for (int j = 0; j < d; j++) {
      double *v = &D->x[(size_t)i * d + j];
      *v -= mean[j];
      var += *v * *v;
    }
  free(mean);
  var /= (double)n * d; /* mean variance per coordinate */
  if (normalize == NORMALIZE_STANDARDIZE && var > 0) {
    D->scale = 1.0 / sqrt(var);
    for (size_t i = 0; i < nd; i++)
      D->x[i] *= D->scale;
  }
  return NRD_OK;
}

/* Class fractions, means and the pooled within-class covariance
 * (1/n) X^T X - sum_k pi_k mu_k mu_k^T. */
static int gaussian_classes(data_set *D) {
  long n = D->n;
  int d = D->d, K = D->K;
  D->class_count = calloc((size_t)K, sizeof *D->class_count);
  D->weights = calloc((size_t)K, sizeof *D->weights);
  D->means = calloc((size_t)K * d, sizeof *D->means);
  D->within = calloc((size_t)d * d, sizeof *D->within);
  if (!D->class_count || !D->weights || !D->means || !D->within)
    return NRD_FAIL(NRD_ERR_NOMEM, "the classes' Gaussians, K = %d, d = %d", K,
                    d);
  for (long i = 0; i < n; i++) {
    int k = D->label ? D->label[i] : 0;
    D->class_count[k]++;
    for (int j = 0; j < d; j++)
      D->means[(size_t)k * d + j] += D->x[(size_t)i * d + j];
  }
  for (int k = 0; k < K; k++) {
    D->weights[k] = (double)D->class_count[k] / (double)n;
    for (int j = 0; D->class_count[k] > 0 && j < d; j++)
      D->means[(size_t)k * d + j] /= (double)D->class_count[k];
  }
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, (int)n, 1.0 / (double)n,
              D->x, d, 0.0, D->within, d);
  for (int k = 0; k < K; k++)
    cblas_dsyr(CblasRowMajor, CblasUpper, d, -D->weights[k],
               D->means + (size_t)k * d, 1, D->within, d);
  for (int i = 0; i < d; i++)
    for (int j = 0; j < i; j++)
      D->within[(size_t)i * d + j] = D->within[(size_t)j * d + i];
  return NRD_OK;
}

/* FNV-1a over the 64-bit words of x and the labels. */
static uint64_t digest(const data_set *D) {
  uint64_t h = 14695981039346656037ULL;
  size_t nd = (size_t)D->n * D->d;
  for (size_t i = 0; i < nd; i++) {
    uint64_t w;
    memcpy(&w, &D->x[i], sizeof w);
    h = (h ^ w) * 1099511628211ULL;
  }
  for (long i = 0; D->label && i < D->n; i++)
    h = (h ^ (uint64_t)D->label[i]) * 1099511628211ULL;
  return h;
}

int dataset_prepare(data_set *D, data_raw *raw, const long *subset,
                    int n_subset, int normalize, uint32_t seed, char *err,
                    size_t errlen) {
  memset(D, 0, sizeof *D);
  D->n_file = raw->n;
  D->d = raw->d;
  D->pixels = raw->pixels;
  D->shape_rank = raw->shape_rank;
  memcpy(D->shape, raw->shape, sizeof D->shape);
  err[0] = '\0';
  int rc = NRD_OK;
  for (size_t i = 0; i < (size_t)raw->n * raw->d && rc == NRD_OK; i++)
    if (!isfinite(raw->x[i])) {
      snprintf(err, errlen,
               "row %zu, coordinate %zu is %g (rows and "
               "coordinates from 0)",
               i / raw->d, i % raw->d, raw->x[i]);
      rc = NRD_FAIL(NRD_ERR_INPUT, "a non-finite value");
    }
  NRD_TRY(rc, find_classes(D, raw, subset, n_subset, err, errlen));
  NRD_TRY(rc, kept_order(D, raw, seed, err, errlen));
  if (rc == NRD_OK) {
    size_t d = (size_t)D->d;
    D->x = malloc((size_t)D->n * d * sizeof *D->x);
    D->label = raw->label ? malloc((size_t)D->n * sizeof *D->label) : NULL;
    if (!D->x || (raw->label && !D->label))
      rc = NRD_FAIL(NRD_ERR_NOMEM, "the data: n = %ld, d = %d", D->n, D->d);
    for (long i = 0; rc == NRD_OK && i < D->n; i++) {
      memcpy(D->x + i * d, raw->x + D->row[i] * d, d * sizeof *D->x);
      if (D->label) D->label[i] = class_of(D, raw->label[D->row[i]]);
    }
  }
  data_raw_free(raw);
  NRD_TRY(rc, normalise(D, normalize));
  NRD_TRY(rc, gaussian_classes(D));
  if (rc == NRD_OK) D->digest = digest(D);
  if (rc != NRD_OK) dataset_free(D);
  return rc;
}
