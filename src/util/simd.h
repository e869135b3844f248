/* Portable vector helpers of the hot loops (rng.c, score_*.c, integrate.c).
 *
 * NRD_CLONES: GCC compiles a function for AVX-512, AVX2 and baseline
 * x86-64 and picks one at load time (ifunc); the loops use the same IEEE
 * operations in every clone, so the bits do not depend on the CPU.
 * NRD_VEC, v8d, ld8, st8: GCC's generic vectors of 8 doubles (one AVX-512,
 * two AVX2 or four SSE2 registers, per clone). */
#ifndef NRDIFF_SIMD_H
#define NRDIFF_SIMD_H

#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) &&         \
    defined(__linux__)
#define NRD_CLONES                                                             \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NRD_CLONES
#endif

#if defined(__GNUC__)
#define NRD_VEC 1
/* The helpers are static and inlined: no ABI crosses a call, so GCC's note
 * that passing 64-byte vectors changes with AVX-512 is moot. */
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef double v8d __attribute__((vector_size(64)));
/* Always inlined, at every optimisation level: a vector-valued helper
 * compiled once for the baseline target and called from an AVX-512 or AVX2
 * clone would be called with another ABI. */
#define NRD_INLINE __attribute__((always_inline))
static inline NRD_INLINE v8d ld8(const double *p) {
  v8d v;
  memcpy(&v, p, sizeof v);
  return v;
}
/* a macro, not a function: GCC notes an ABI change for 64-byte vector
 * parameters even of static functions */
#define st8(p, v)                                                              \
  do {                                                                         \
    const v8d st8_v_ = (v);                                                    \
    memcpy((p), &st8_v_, sizeof st8_v_);                                       \
  } while (0)
#endif

#endif
