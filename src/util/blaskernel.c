/* OpenBLAS kernel choice (see blaskernel.h). */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include "util/blaskernel.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h> /* strcasecmp */
#include <unistd.h>

static char reason[320] = "";
static char error[320] = "";

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

/* Remove --blas-kernel X / --blas-kernel=X from argv; its value or NULL. */
static const char *take_option(int *argc, char **argv) {
  for (int i = 1; i < *argc; i++) {
    if (strcmp(argv[i], "--") == 0) break;
    const char *v = NULL;
    int n = 0;
    if (strcmp(argv[i], "--blas-kernel") == 0 && i + 1 < *argc)
      v = argv[i + 1], n = 2;
    else if (strncmp(argv[i], "--blas-kernel=", 14) == 0)
      v = argv[i] + 14, n = 1;
    if (!v) continue;
    for (int j = i; j + n <= *argc; j++)
      argv[j] = argv[j + n];
    *argc -= n;
    return v;
  }
  return NULL;
}

/* Second pass, after re-executing with OPENBLAS_CORETYPE set (or unset):
 * report, and refuse a name this OpenBLAS does not have (it then silently
 * runs kernels of its own choice). */
static void after_reexec(const char *core) {
  const char *why = getenv("NRDIFF_BLAS_REEXEC");
  const char *target = getenv("NRDIFF_BLAS_TARGET");
  if (target && *target && strcasecmp(target, core) != 0)
    snprintf(error, sizeof error,
             "%s: this OpenBLAS has no '%s' kernels (it would run %s); give "
             "auto, default or a core name of OpenBLAS such as Haswell or "
             "SkylakeX",
             why, target, core);
  snprintf(reason, sizeof reason, "%s (%s)", core, why);
  unsetenv("NRDIFF_BLAS_REEXEC");
  unsetenv("NRDIFF_BLAS_TARGET");
}

/* Re-execute this program with the environment changed: OpenBLAS reads
 * OPENBLAS_CORETYPE only when it loads.  Returns only if exec failed. */
static void reexec(char **argv) {
  execv("/proc/self/exe", argv);
  unsetenv("NRDIFF_BLAS_REEXEC");
  unsetenv("NRDIFF_BLAS_TARGET");
  unsetenv("NRDIFF_BLAS_WHO");
}

void blas_kernel_select(int *argc, char **argv) {
  const char *core = openblas_get_corename();
  const char *option = take_option(argc, argv);
  if (getenv("NRDIFF_BLAS_REEXEC")) {
    after_reexec(core);
    return;
  }
  /* who decides: --blas-kernel > NRDIFF_BLAS_KERNEL > OPENBLAS_CORETYPE >
   * auto (NRDIFF_BLAS_WHO: the decider, carried over a re-execution) */
  const char *env = getenv("NRDIFF_BLAS_KERNEL");
  const char *preset = getenv("OPENBLAS_CORETYPE");
  const char *carried = getenv("NRDIFF_BLAS_WHO");
  char who[96];
  const char *want = "auto";
  if (option) {
    want = option;
    snprintf(who, sizeof who, "--blas-kernel%s%.60s", *option ? " " : "",
             option);
  } else if (env && *env) {
    want = env;
    if (carried)
      snprintf(who, sizeof who, "%.90s", carried);
    else
      snprintf(who, sizeof who, "NRDIFF_BLAS_KERNEL=%.60s", env);
  } else if (preset && *preset) {
    if (strcasecmp(preset, core) == 0)
      snprintf(reason, sizeof reason,
               "%s (OPENBLAS_CORETYPE=%.60s in the environment)", core, preset);
    else
      snprintf(reason, sizeof reason,
               "%s (OPENBLAS_CORETYPE=%.60s in the environment names no "
               "kernel of this OpenBLAS, which chose %s)",
               core, preset, core);
    return;
  } else {
    snprintf(who, sizeof who, "auto");
  }
  unsetenv("NRDIFF_BLAS_WHO");
  if (!*want) {
    snprintf(error, sizeof error,
             "%s: needs a kernel name (auto, default, or an OpenBLAS core "
             "such as Haswell or SkylakeX)",
             who);
    snprintf(reason, sizeof reason, "%s (OpenBLAS's own choice)", core);
    return;
  }
  int automatic = strcasecmp(want, "auto") == 0;
  int own = strcasecmp(want, "default") == 0;
  if ((automatic || own) && preset && *preset) {
    /* asked to choose over a preset: load OpenBLAS without it first */
    unsetenv("OPENBLAS_CORETYPE");
    setenv("NRDIFF_BLAS_KERNEL", want, 1);
    setenv("NRDIFF_BLAS_WHO", who, 1);
    reexec(argv);
    snprintf(reason, sizeof reason, "%s (%s; could not drop "
             "OPENBLAS_CORETYPE=%.40s)", core, who, preset);
    return;
  }
  const char *target = NULL; /* NULL: keep what is loaded */
  char why[200];
  if (own) {
    snprintf(why, sizeof why, "%s: OpenBLAS's own choice", who);
  } else if (automatic) {
    if (cpu_has_avx512() && pre_avx512(core)) {
      target = "SkylakeX";
      snprintf(why, sizeof why, "%s: AVX-512 CPU, OpenBLAS detected %.40s",
               who, core);
    } else {
      snprintf(why, sizeof why, "%s: OpenBLAS's own choice", who);
    }
  } else {
    snprintf(why, sizeof why, "%s", who);
    if (strcasecmp(want, core) != 0) target = want;
  }
  if (!target) {
    snprintf(reason, sizeof reason, "%s (%s)", core, why);
    return;
  }
  setenv("OPENBLAS_CORETYPE", target, 1);
  setenv("NRDIFF_BLAS_REEXEC", why, 1);
  setenv("NRDIFF_BLAS_TARGET", target, 1);
  reexec(argv);
  snprintf(reason, sizeof reason, "%s (%s; could not switch to %s)", core, why,
           target);
}

const char *blas_kernel_reason(void) {
  return reason[0] ? reason : openblas_get_corename();
}

const char *blas_kernel_error(void) {
  return error[0] ? error : NULL;
}
