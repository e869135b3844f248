/* Build and library version strings (see version.h). */
#include "config.h"
#include "nrdiff/version.h"

#include <cblas.h>
#include <fftw3.h>
#include <hdf5.h>
#include <mpi.h>
#include <string.h>
#include <yaml.h>

const char *version_nrdiff(void) {
  return PACKAGE_VERSION;
}
const char *version_git(void) {
  return NRD_GIT_DESCRIBE;
}
const char *version_configure_args(void) {
  return NRD_CONFIGURE_ARGS;
}
const char *version_compiler(void) {
  return NRD_CC_VERSION;
}

void version_mpi(char *buf, size_t len) {
  char lib[MPI_MAX_LIBRARY_VERSION_STRING];
  int n = 0, major = 0, minor = 0;
  MPI_Get_library_version(lib, &n);
  MPI_Get_version(&major, &minor);
  /* Open MPI's string is long; its first line names the implementation. */
  char *nl = strchr(lib, ',');
  if (nl) *nl = '\0';
  snprintf(buf, len, "%s (MPI standard %d.%d)", lib, major, minor);
}

void version_hdf5(char *buf, size_t len) {
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  snprintf(buf, len, "HDF5 %u.%u.%u (parallel)", maj, min, rel);
}

void version_fftw(char *buf, size_t len) {
  snprintf(buf, len, "%s", fftw_version);
}

void version_blas(char *buf, size_t len) {
  snprintf(buf, len, "OpenBLAS (%s), kernels: %s", openblas_get_config(),
           openblas_get_corename());
}

void version_yaml(char *buf, size_t len) {
  snprintf(buf, len, "libyaml %s", yaml_get_version_string());
}

void version_print(FILE *out) {
  char buf[512];
  fprintf(out, "nrdiff %s\n", version_nrdiff());
  fprintf(out, "  git describe : %s\n", version_git());
  fprintf(out, "  configure    : %s\n", version_configure_args());
  fprintf(out, "  compiler     : %s\n", version_compiler());
  version_mpi(buf, sizeof buf);
  fprintf(out, "  MPI          : %s\n", buf);
  version_hdf5(buf, sizeof buf);
  fprintf(out, "  HDF5         : %s\n", buf);
  version_fftw(buf, sizeof buf);
  fprintf(out, "  FFTW         : %s\n", buf);
  version_blas(buf, sizeof buf);
  fprintf(out, "  BLAS         : %s\n", buf);
  version_yaml(buf, sizeof buf);
  fprintf(out, "  YAML         : %s\n", buf);
}
