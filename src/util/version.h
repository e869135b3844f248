/* Build and library versions, for --version and output provenance. */
#ifndef NRDIFF_VERSION_H
#define NRDIFF_VERSION_H

#include <stdio.h>

/* Multi-line "name: value" report: nrdiff version, git describe, configure
 * flags, compiler, and the MPI, HDF5, FFTW, BLAS and libyaml in use. */
void version_print(FILE *out);
/* Single values (static strings). */
const char *version_nrdiff(void);
const char *version_git(void);
const char *version_configure_args(void);
const char *version_compiler(void);
/* Runtime library versions written into buf. */
void version_mpi(char *buf, size_t len);
void version_hdf5(char *buf, size_t len);
void version_fftw(char *buf, size_t len);
void version_blas(char *buf, size_t len);
void version_yaml(char *buf, size_t len);

/* Every provenance item: a key (HDF5 attribute name), a label (--version)
 * and its value, in a fixed order. */
enum { VERSION_FIELDS = 8 };
typedef struct {
  const char *key, *label;
  char value[512];
} version_field;
void version_fields(version_field f[VERSION_FIELDS]);

#endif
