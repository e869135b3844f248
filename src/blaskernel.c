/* OpenBLAS kernel choice (see blaskernel.h). */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include "nrdiff/blaskernel.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h> /* strcasecmp */
#include <unistd.h>

static char reason[256] = "";

/* OpenBLAS cores without AVX-512 kernels that an AVX-512 CPU may be given. */
static int pre_avx512(const char *core) {
  static const char *const older[] = {"Haswell", "Zen", "SandyBridge",
                                      "Nehalem", "Prescott", "Core2",
                                      "Barcelona", "Bulldozer", "Piledriver",
                                      "Steamroller", "Excavator", NULL};
  for (int i = 0; older[i]; i++)
    if (strcasecmp(core, older[i]) == 0) return 1;
  return 0;
}

static int cpu_has_avx512(void) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
  return 0;
#endif
}

void blas_kernel_select(int *argc, char **argv) {
  const char *want = getenv("NRDIFF_BLAS_KERNEL");
  for (int i = 1; i < *argc; i++) { /* --blas-kernel X or --blas-kernel=X */
    const char *v = NULL;
    int n = 0;
    if (strcmp(argv[i], "--blas-kernel") == 0 && i + 1 < *argc)
      v = argv[i + 1], n = 2;
    else if (strncmp(argv[i], "--blas-kernel=", 14) == 0)
      v = argv[i] + 14, n = 1;
    if (!v) continue;
    want = v;
    for (int j = i; j + n <= *argc; j++)
      argv[j] = argv[j + n];
    *argc -= n;
    break;
  }
  if (!want || !*want) want = "auto";
  const char *detected = openblas_get_corename();
  const char *set = getenv("OPENBLAS_CORETYPE");
  if (getenv("NRDIFF_BLAS_REEXEC")) { /* second pass: report only */
    snprintf(reason, sizeof reason, "%s (%s)", detected,
             getenv("NRDIFF_BLAS_REEXEC"));
    return;
  }
  if (set && *set) {
    snprintf(reason, sizeof reason, "%s (OPENBLAS_CORETYPE=%s set by the user)",
             detected, set);
    return;
  }
  const char *target = NULL;
  char why[160];
  if (strcmp(want, "default") == 0) {
    snprintf(reason, sizeof reason, "%s (OpenBLAS's own choice, as asked)",
             detected);
    return;
  } else if (strcmp(want, "auto") == 0) {
    if (!cpu_has_avx512() || !pre_avx512(detected)) {
      snprintf(reason, sizeof reason, "%s (auto: OpenBLAS's own choice)",
               detected);
      return;
    }
    target = "SkylakeX";
    snprintf(why, sizeof why, "auto: AVX-512 CPU, OpenBLAS detected %.40s",
             detected);
  } else {
    target = want;
    snprintf(why, sizeof why, "asked for %.60s", want);
  }
  if (strcasecmp(target, detected) == 0) {
    snprintf(reason, sizeof reason, "%s (%s)", detected, why);
    return;
  }
  setenv("OPENBLAS_CORETYPE", target, 1);
  setenv("NRDIFF_BLAS_REEXEC", why, 1);
  execv("/proc/self/exe", argv);
  /* exec failed: run on with the detected kernels */
  unsetenv("OPENBLAS_CORETYPE");
  unsetenv("NRDIFF_BLAS_REEXEC");
  snprintf(reason, sizeof reason, "%s (could not switch to %s)", detected,
           target);
}

const char *blas_kernel_reason(void) {
  return reason[0] ? reason : openblas_get_corename();
}
