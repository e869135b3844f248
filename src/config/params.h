/* Run parameters: a typed schema with defaults, ranges and documentation,
 * read from a YAML file with libyaml plus "-P section.key=value" overrides.
 *
 * Every key lives in exactly one schema entry (schema.c), which is the single
 * source of truth for parsing, validation, --print-params and the resolved
 * parameter dump written into outputs. */
#ifndef NRDIFF_PARAMS_H
#define NRDIFF_PARAMS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct { int n; double *v; } nrd_dlist;
typedef struct { int n; long *v; } nrd_ilist;
typedef struct { int n; char **v; } nrd_slist;

enum nrd_u_kind { U_ISOTROPIC, U_DIAGONAL, U_GEOMETRIC, U_FILE };
enum nrd_q_kind { Q_NONE, Q_RANDOM, Q_OPTIMAL, Q_FILE };
enum nrd_cov_kind { COV_ISOTROPIC, COV_STATIONARY };
enum nrd_direction { DIR_ONES, DIR_RANDOM, DIR_SLOWEST, DIR_FASTEST };
enum nrd_data_source { DATA_MIXTURE, DATA_FILE };
enum nrd_normalize { NORMALIZE_NONE, NORMALIZE_CENTER, NORMALIZE_STANDARDIZE };
enum nrd_spacing { SPACING_UNIFORM, SPACING_LOG };
enum nrd_scheme { SCHEME_EULER, SCHEME_EXPONENTIAL, SCHEME_ODE_HEUN };
enum nrd_start { START_STATIONARY, START_EXACT };
enum nrd_uturn_data { UTURN_MIXTURE, UTURN_TRAIN };
enum nrd_precision { PRECISION_FLOAT64, PRECISION_FLOAT32 };

/* Where a value came from (written into outputs for provenance). */
typedef enum { PSRC_DEFAULT = 0, PSRC_FILE, PSRC_OVERRIDE } nrd_param_source;

typedef struct nrd_params {
  struct {
    long seed;            /* [0, 2^32-1] Philox key */
    double max_wall_time; /* seconds, 0 = unlimited */
    long blas_threads;    /* OpenBLAS threads per rank */
    int precision;        /* enum nrd_precision: the empirical score's GEMMs */
  } run;
  struct {
    nrd_ilist dimension;  /* d >= 1 */
    nrd_dlist separation; /* |mu|^2 / d >= 0 */
    nrd_dlist strength;   /* g */
    nrd_ilist n_train;    /* 0 = exact mixture score */
  } grid;
  struct {
    int u;                /* enum nrd_u_kind */
    double u_scale;
    nrd_dlist u_diagonal;
    double u_min, u_max;
    char *u_file, *u_dataset;
    int q;                /* enum nrd_q_kind */
    char *q_file, *q_dataset;
  } forward;
  struct {
    long classes;
    int covariance;       /* enum nrd_cov_kind */
    double sigma;
    int direction;        /* enum nrd_direction */
    int source;           /* enum nrd_data_source */
    char *file, *dataset, *labels;
    nrd_ilist class_subset;
    int normalize;        /* enum nrd_normalize */
  } data;
  struct {
    long particles;
    long block_size;
  } ensemble;
  struct {
    double T;             /* reverse process starts at forward time T */
    double t_min;         /* and stops at forward time t_min */
    long steps;
    int spacing;          /* enum nrd_spacing */
  } time;
  struct {
    int scheme;           /* enum nrd_scheme */
    int start;            /* enum nrd_start */
  } integrator;
  struct {
    nrd_slist protocol;
    nrd_dlist branch_times;
    nrd_dlist uturn_times;    /* T_u of the U-turn protocol */
    int uturn_data;           /* enum nrd_uturn_data */
    nrd_dlist reference_times; /* s of C(s, t), forward protocol */
  } experiment;
  struct {
    char *file;
    int overwrite;        /* 0 = false, 1 = true */
    long every;
    long trajectories;
    long trajectory_every;
  } output;
  struct {
    long every;           /* steps between checkpoints, 0 = not by steps */
    double interval;      /* seconds between checkpoints, 0 = not by time */
    char *stop_file;      /* appears -> checkpoint and stop */
  } checkpoint;

  /* Provenance: the parameter file (or NULL) and, per schema entry, where its
   * value came from; indexed like the schema (params_schema_size()). */
  char *source_file;
  nrd_param_source *sources;
  /* Per schema entry: line of its value in source_file (1-based), or 0. */
  int *source_lines;
} nrd_params;

/* Fill with defaults (always succeeds unless out of memory).  p is
 * overwritten, not freed.  params_free leaves p zeroed, so freeing twice, or
 * freeing a zeroed struct, is harmless. */
int params_init_defaults(nrd_params *p);
void params_free(nrd_params *p);

/* Load a YAML file (path may be NULL: defaults only) and then apply
 * overrides "section.key=value" (the value is parsed as YAML, so lists are
 * "[1, 2]").  Validates types, ranges and combinations.  On failure returns
 * NRD_ERR_INPUT and writes one message into err, of the form
 *   FILE:LINE:COL: key 'grid.dimension': <what is wrong>
 * or, for overrides, "-P grid.dimension=...: <what is wrong>".
 * Loading always starts from the defaults (p's previous values are not a
 * base).  p must be initialised (params_init_defaults, a previous load or
 * unpack, or zeroed); it is replaced on success and left unchanged on
 * failure (NRD_ERR_NOMEM if out of memory).  Nothing is printed and no file
 * is created. */
int params_load(nrd_params *p, const char *path, int n_overrides,
                char *const *overrides, char *err, size_t errlen);

/* As params_load with no overrides, but the YAML is the len bytes at text
 * (e.g. a run's /parameters/resolved), and name stands for the file in
 * every message ("run.h5:/parameters/resolved:12:3: key ...") and in
 * p->source_file.  text need not end with a NUL; a NUL inside the len
 * bytes is refused like any control character.  Reads no file. */
int params_load_text(nrd_params *p, const char *name, const char *text,
                     size_t len, char *err, size_t errlen);

/* Whether experiment.protocol lists `word` ("speciation", ...). */
int params_has_protocol(const nrd_params *p, const char *word);

/* A complete, valid parameter file with every key at its default and a
 * comment per key (meaning, unit, allowed range). */
void params_print_defaults(FILE *out);
/* The resolved parameters as YAML, each value annotated with its source. */
void params_write_resolved(const nrd_params *p, FILE *out);

/* Serialise for MPI broadcast (rank 0 parses, everyone unpacks).  The
 * format is portable text (doubles in hex, so exact); *buf is malloc'd.
 * unpack replaces an initialised p on success (NRD_ERR_INPUT if buf is not
 * a pack of this schema), leaving it unchanged on failure. */
int params_pack(const nrd_params *p, char **buf, size_t *len);
int params_unpack(nrd_params *p, const char *buf, size_t len);

/* The value of entry i as YAML text ("[2, 4]", "0.5", "\"out.h5\""),
 * malloc'd (NULL if out of memory or i is out of range). */
char *params_value_yaml(const nrd_params *p, int i);

/* Number of schema entries and the dotted name of entry i (for tools). */
int params_schema_size(void);
const char *params_schema_name(int i);
/* Whether a key may change on restart (used by checkpointing). */
int params_schema_restartable(int i);
/* Index of a dotted key name ("time.T") in the schema, or -1. */
int params_schema_find(const char *name);
/* Whether entry i holds the same value in a and b (doubles compared bit for
 * bit, lists element by element); e.g. to refuse a restart that changes a
 * key that is not restartable. */
int params_value_equal(const nrd_params *a, const nrd_params *b, int i);

#endif
