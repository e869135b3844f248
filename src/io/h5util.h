/* Helpers for collective parallel-HDF5 I/O over MPI_COMM_WORLD.  Every
 * function is collective and every rank passes the same arguments, except
 * where "local" is said; failures abort via NRD_H5_CHECK (h5u_read_rows
 * returns -1 instead, for files that may be damaged). */
#ifndef NRDIFF_H5UTIL_H
#define NRDIFF_H5UTIL_H

#include <stddef.h>

#include <hdf5.h>

#include "config/params.h"

int h5u_root(void); /* this rank is rank 0 */
hid_t h5u_group(hid_t parent, const char *name);
/* Attributes (metadata: every rank passes the same value). */
void h5u_attr_string(hid_t obj, const char *name, const char *value);
/* The same as a fixed-length string (NUL-padded to its length). */
void h5u_attr_fixed_string(hid_t obj, const char *name, const char *value);
void h5u_attr_numbers(hid_t obj, const char *name, hid_t type, int n,
                      const void *v);
void h5u_attr_long(hid_t obj, const char *name, long v);
void h5u_attr_double(hid_t obj, const char *name, double v);
/* Create `path` (truncating it) with fapl, an MPI-IO file access list;
 * from here on a fatal error on this rank removes it (nrd_h5_writing).
 * The ranks agree on the outcome: if every rank fails, a collective error
 * "cannot create WHAT 'PATH': REASON (HDF5: ...)NOTE"; if some do, each of
 * them ends alone with that message without NOTE while the others wait. */
hid_t h5u_create_file(const char *path, hid_t fapl, const char *what,
                      const char *note);
/* Local: every schema entry's name and value as YAML text
 * (params_value_yaml), params_schema_size() of each, as the output and the
 * checkpoints store them in /parameters; freed by h5u_param_text_free. */
void h5u_param_text(const nrd_params *p, char ***key, char ***value);
void h5u_param_text_free(char **key, char **value);
/* Rank 0's string on every rank (malloc'd). */
char *h5u_bcast_string(const char *s);
/* A dataset written by rank 0 alone (the others' data is ignored). */
void h5u_dataset_root(hid_t dxpl, hid_t parent, const char *name,
                      hid_t file_type, hid_t mem_type, int rank,
                      const hsize_t *dims, const void *data);
void h5u_dataset_1d(hid_t dxpl, hid_t parent, const char *name, int is_long,
                    long n, const void *data);
/* Fixed-length strings (parallel HDF5 cannot write variable-length data);
 * scalar: one string as a scalar dataset. */
void h5u_dataset_strings(hid_t dxpl, hid_t parent, const char *name, size_t n,
                         char *const *v, int scalar);
/* A dataset of dims (n0, n1) or (n0, n1, n2) (rank 2 or 3; rank 1 is
 * treated as (1, n1)) in which each rank writes the rows idx[0..n) of axis
 * 1 (local; ascending), from buf laid out as (n0, n, n2).  type is a native
 * type (LONG, ULLONG or DOUBLE). */
void h5u_write_rows(hid_t dxpl, hid_t parent, const char *name, hid_t type,
                    int rank, const hsize_t *dims, long n, const long *idx,
                    const void *buf);
/* The inverse: read those rows; -1 if the dataset is missing, has other
 * dims, or cannot be read. */
int h5u_read_rows(hid_t dxpl, hid_t parent, const char *name, hid_t type,
                  int rank, const hsize_t *dims, long n, const long *idx,
                  void *buf);

#endif
