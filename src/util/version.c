/* Build and library version strings (see version.h). */
#include "config.h"
#include "util/version.h"
#include "git-describe.h"

#include "util/blaskernel.h"

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
#ifdef NRD_GIT_DESCRIBE_BUILD
  return NRD_GIT_DESCRIBE_BUILD;
#else
  return NRD_GIT_DESCRIBE;
#endif
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
           blas_kernel_reason());
}

void version_yaml(char *buf, size_t len) {
  snprintf(buf, len, "libyaml %s", yaml_get_version_string());
}

void version_fields(version_field f[VERSION_FIELDS]) {
  static const struct {
    const char *key, *label;
  } names[VERSION_FIELDS] = {
      {"git_describe", "git describe"}, {"configure_args", "configure"},
      {"compiler", "compiler"},         {"mpi_library", "MPI"},
      {"hdf5_version", "HDF5"},         {"fftw_version", "FFTW"},
      {"blas", "BLAS"},                 {"libyaml_version", "YAML"}};
  for (int i = 0; i < VERSION_FIELDS; i++) {
    f[i].key = names[i].key;
    f[i].label = names[i].label;
  }
  snprintf(f[0].value, sizeof f[0].value, "%s", version_git());
  snprintf(f[1].value, sizeof f[1].value, "%s", version_configure_args());
  snprintf(f[2].value, sizeof f[2].value, "%s", version_compiler());
  version_mpi(f[3].value, sizeof f[3].value);
  version_hdf5(f[4].value, sizeof f[4].value);
  version_fftw(f[5].value, sizeof f[5].value);
  version_blas(f[6].value, sizeof f[6].value);
  version_yaml(f[7].value, sizeof f[7].value);
}

void version_print(FILE *out) {
  version_field f[VERSION_FIELDS];
  version_fields(f);
  fprintf(out, "nrdiff %s\n", version_nrdiff());
  for (int i = 0; i < VERSION_FIELDS; i++)
    fprintf(out, "  %-12s : %s\n", f[i].label, f[i].value);
}
