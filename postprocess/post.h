/* nrdiff-post: the serial post-processing stage (doc/post-processing.md).
 *
 * Reads nrdiff run files and turns them into critical times with errors,
 * curves with theory beside them, a summary table (stdout, CSV, HDF5) and,
 * with --plot, figures (postprocess/nrdiff_plots.py).  Per grid point:
 *   t_S   where phi crosses F(1) = 0.7752 (the project's definition,
 *         doc/theory.md (5.5)): the headline from the clone-free estimator
 *         (speciation_phi, every output time), t_S_clone from cloning
 *         (the branch times only);
 *   t_C   where Y2 (the headline) and phi_C (cloning, t_C_clone) cross 1/2,
 *         the nearest-point freezing time, and the zero of the excess
 *         entropy f^e;
 *   curves: phi, phi_C, Y2, f^e/alpha, C_UT, the trajectory
 *         autocorrelation (FFTW) and the forward correlations.
 * Crossings use monotone interpolation and jackknife errors over particle
 * blocks (analysis.h), the functions the run's report uses on the same
 * block sums: the headline equals the run's critical_time_measured.
 * Theory comes from the same library as the run, rebuilt from the
 * parameters stored in the file.  A missing dataset or a curve that never
 * reaches its level is reported, never made up.
 *
 * This header is nrdiff-post's own, shared by its files:
 *   post_main.c     options, the loop over the run files, exit status
 *   post_read.c     the validating reading layer: datasets, attributes,
 *                   shapes, values; a file's first problem
 *   post_file.c     one run file: identification, parameters, grid points
 *                   and their block sums, refused whole or used
 *   post_measure.c  the measurements of a grid point and their theory
 *   post_output.c   the table, CSV, summary.h5, publishing, figures */
#ifndef NRDIFF_POST_H
#define NRDIFF_POST_H

#include <hdf5.h>
#include <stdio.h>

#include "core/model.h"

/* ------------------------------------------------------------- results */

/* One row of the summary: a grid point of a run file.  NaN = not
 * available or not reached (the notes say which). */
typedef struct {
  char file[512];
  int index;
  long dimension, n_train;
  double separation, strength;
  /* headlines: t_S from the clone-free phi, t_C from Y2 */
  double tS, tS_err, tS_theory, tS_clone, tS_clone_err, tS_matrix;
  double tC, tC_err, tC_theory, tC_clone, tC_clone_err;
  double t_freeze, t_freeze_err, t_freeze_spread, tC_fe, tC_fe_err, alpha;
  int free_S, free_C;     /* the clone-free curve (phi, Y2) is in the file */
  int cloned_S, cloned_C; /* the cloning protocol ran (speciation, collapse) */
  char notes[512];
} row;

typedef struct {
  long n, cap;
  row *v;
} row_list;

typedef struct {
  int index;
  const char *curve;
  double t, value, err, theory;
  const char *file; /* the run file (a row's file field) */
  int file_index;   /* its position on the command line */
} curve_point;

typedef struct {
  long n, cap;
  curve_point *v;
} curve_list;

/* What the command line asks of the measurements. */
typedef struct {
  double acf_from; /* frames at t >= this enter the autocorrelation */
  double fe_level; /* f^e / alpha level taken as its zero */
  int quiet;       /* no table, fewer warnings */
} options;

/* A grid point's model, rebuilt from the run's parameters (ok), for its
 * theory. */
typedef struct {
  int ok;
  model m;
} point_model;

/* "nrdiff-post: " and the message, on stderr. */
void post_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------- reading (post_read.c) */

/* The run file being read.  Every dataset and attribute is validated
 * before use; its first problem, "FILE: OBJECT: what is wrong", is
 * recorded in error ("" = none) and the file is refused whole
 * (process_one: its rows are dropped, exit status 2), the other files are
 * processed as usual. */
typedef struct {
  const char *path;                    /* "" before the first */
  int index;                           /* its position on the command line */
  int reading;                         /* a run file is being read */
  hsize_t bytes;                       /* its size */
  long point_blocks, point_block_size; /* the grid point's (0: unknown) */
  char object[512]; /* its object being read (for out of memory) */
  char error[1536];
} post_input;
extern post_input post_in;

/* Record the file's first problem: OBJECT is loc's path, then name (loc
 * -1: the object being read). */
void refuse(hid_t loc, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* nrdiff-post's out-of-memory policy: while a run file is read (and
 * measured), out of memory is that file's problem, like any other: the
 * allocation returns NULL, the file is refused (exit status 2) and the
 * others are processed (tests/hostile/post.cases).  file_calloc is that
 * allocation (zeroed), and read_dataset and the row and curve lists fail
 * the same way with their own messages.  Outside a file (the results
 * being written) memory is NRD_XCALLOC's (util/log.h): exit status 1, with
 * file and line, the partial outputs removed. */
void *file_calloc(size_t n, size_t size);

/* A wanted shape: ANY = any length (shown as *). */
#define ANY (-1L)
#define SHAPE(a, b, c) ((const long[3]){(a), (b), (c)})

/* What the values of a dataset may be, beyond finite. */
enum {
  V_NAN = 1,      /* NaN: a value undefined (doc/file-format.md) */
  V_NONNEG = 2,   /* >= 0 */
  V_POSITIVE = 4, /* > 0 */
  V_FALLING = 8,  /* strictly decreasing (rank 1: a time axis) */
  V_NONEMPTY = 16 /* no axis of length 0 */
};
#define V_TIMES (V_NONNEG)                              /* times, any order */
#define V_TIME_AXIS (V_NONNEG | V_FALLING | V_NONEMPTY) /* output times */

const char *class_text(H5T_class_t c);
/* What path (relative to loc) is: 1 the object wanted, 0 absent, -1
 * something else (recorded). */
int object_kind(hid_t loc, const char *path, H5O_type_t want);
/* A group: its id, or -1 when absent (no error) or not a group (error
 * recorded; tell them apart by post_in.error). */
hid_t open_group(hid_t loc, const char *path);
/* A floating-point dataset of exactly `rank` axes (1 .. 3) whose axis k
 * has length want[k] (ANY: any), with the values `flags` allow (infinity
 * never).  Returns its values as doubles, dims the shape (missing trailing
 * axes 1), or NULL: absent (no error), or wrong (error recorded). */
double *read_dataset(hid_t loc, const char *path, int rank, const long want[3],
                     int flags, hsize_t dims[3]);
/* An integer attribute in [lo, hi] (0; 1 absent; -1 wrong, recorded). */
int attr_long(hid_t obj, const char *name, long lo, long hi, long *v);
/* A floating-point attribute, finite or as flags (V_NAN, V_NONNEG) allow. */
int attr_double(hid_t obj, const char *name, int flags, double *v);
/* A string attribute of one value into buf ("" if absent or anything
 * else). */
void read_attr_string(hid_t obj, const char *name, char *buf, size_t len);

/* ------------------------------------------------ one file (post_file.c) */

/* Particle counts per block, [n_out][n_blocks]. */
double *read_counts(hid_t loc, const char *path, hsize_t dims[3]);
/* /points/<IIII>/final: block_sum [1][n_blocks][F] and its column layout
 * off[] = f_count, f_class, f_nearest, f_freeze, n_branch, f_uturn. */
double *read_final(hid_t g, int spec, int coll, long off[6], hsize_t df[3]);
/* One run file, the index-th on the command line: 0 used; -1 refused,
 * with a message, none of its rows or curves kept. */
int process_one(const char *path, int index, const options *o, row_list *rows,
                curve_list *cv);

/* ------------------------------------------ measuring (post_measure.c) */

/* A point of a curve (out of memory: dropped, recorded). */
void curve_add(curve_list *c, int index, const char *name, double t,
               double value, double err, double theory);
/* Add a note to a row ("; " between notes). */
void note(row *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The theory of a row's critical times. */
void theory_times(row *r, const point_model *pm);
void measure_observables(hid_t pg, const point_model *pm, const options *o,
                         row *r, curve_list *cv);
void measure_final(hid_t pg, row *r, curve_list *cv);
void measure_uturn(hid_t pg, row *r, curve_list *cv);
void measure_forward(hid_t pg, row *r, curve_list *cv);
void measure_acf(hid_t pg, const point_model *pm, const options *o, double T,
                 row *r, curve_list *cv);

/* ---------------------------------------------- outputs (post_output.c) */

void print_table(const row_list *rows);
int write_csv(const char *path, const row_list *rows, const curve_list *cv);
int write_h5(const char *path, const row_list *rows, const curve_list *cv);
/* Rename the three NAME.tmp into place (ok), or remove them. */
int publish_outputs(const char *stem, int ok);
/* The figures: postprocess/nrdiff_plots.py under Debian's python3. */
int plot(const char *prefix);
/* 0, or -1 (with a message) when an output of prefix stem would overwrite
 * an input file. */
int outputs_clobber_inputs(const char *stem, int with_plot, char **files,
                           int n_files);

#endif
