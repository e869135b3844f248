/* Counter-based normals and uniforms: Random123 Philox4x32-10 followed by
 * Box-Muller.
 *
 * One Philox call, key = {seed, purpose}, counter = {j, step, stream_lo,
 * stream_hi} (rng.h), gives four 32-bit words w0..w3.  They become two 53-bit
 * uniforms u1 = U(w0, w1), u2 = U(w2, w3), returned by rng_uniforms as draws
 * 2j and 2j+1, and for rng_normals the pair
 *
 *   z_2j = sqrt(-2 ln u1) cos(2 pi u2),   z_2j+1 = sqrt(-2 ln u1) sin(2 pi u2).
 *
 * Draw k therefore depends only on (seed, purpose, stream, step, k), and a
 * shorter request is a prefix of a longer one.  The 32-bit j allows 2^33
 * draws per (stream, step).
 *
 * Speed: the work is done in chunks of pairs, one pass per stage (Philox,
 * uniforms, ln/sqrt, sincos) over local arrays, so that GCC vectorises every
 * stage at -O2.  libm's log/sin/cos are not vectorised without -ffast-math,
 * so ln and sincos are evaluated here with the fdlibm minimax polynomials
 * (< 1 ulp on the reduced ranges), branch-free, with + - * / sqrt and bit
 * operations only.  Being correctly rounded IEEE operations, these give the
 * same bits on every x86-64 machine and vector width, provided the compiler
 * does not contract a*b+c into FMA: GCC does not in ISO C mode (-std=c17,
 * as configured), but would with -std=gnu17. */
#include "core/rng.h"
#include "util/simd.h"

#include <math.h>
#include <string.h>

#include <Random123/philox.h>
#if defined(__SSE2__) && !defined(__NO_MATH_ERRNO__)
#include <emmintrin.h>
#endif

enum { CHUNK = 64, TAIL = 8 };

/* One build runs everywhere, yet uses the wide vectors of the machine it runs
 * on: GCC compiles the hot functions for AVX-512, AVX2 and baseline x86-64
 * and picks one at load time (ifunc).  The clones give identical bits (see
 * above). */
/* NRD_CLONES: nrdiff/simd.h */

/* The four output words of Philox4x32-10 for the CHUNK counters
 * {j0 + i, step, lo, hi}, stored word-major (w[word][i]). */
static inline void philox_chunk(int m, uint32_t seed, uint32_t purpose,
                                uint32_t j0, uint32_t step, uint32_t lo,
                                uint32_t hi, uint32_t w[4][CHUNK]) {
  philox4x32_key_t key = {{seed, purpose}};
  for (int i = 0; i < m; i++) {
    philox4x32_ctr_t ctr = {{j0 + (uint32_t)i, step, lo, hi}};
    philox4x32_ctr_t r = philox4x32_R(10, ctr, key);
    w[0][i] = r.v[0];
    w[1][i] = r.v[1];
    w[2][i] = r.v[2];
    w[3][i] = r.v[3];
  }
}

static inline uint64_t bits_of(double x) {
  uint64_t b;
  memcpy(&b, &x, sizeof b);
  return b;
}

static inline double double_of(uint64_t b) {
  double x;
  memcpy(&x, &b, sizeof x);
  return x;
}

/* 53-bit uniform k 2^-53 from the high 27 + 26 bits of (a, b).  k = 0 is
 * replaced by 2^-54 (the midpoint of its cell) so that u lies in (0, 1) and
 * ln u is finite.  Branch-free, and the int32 casts are exact, so that the
 * loop vectorises. */
static inline void uniforms_chunk(int m, const uint32_t *a, const uint32_t *b,
                                  double *u) {
  for (int i = 0; i < m; i++) {
    uint32_t hi = a[i] >> 5, lo = b[i] >> 6;
    double k = (double)(int32_t)hi * 67108864.0 + (double)(int32_t)lo;
    double zero = (double)(int32_t)((hi | lo) == 0);
    u[i] = k * 0x1p-53 + zero * 0x1p-54;
  }
}

/* r <- sqrt(r).  GCC never vectorises an errno-setting sqrt (the default
 * without -fno-math-errno), which made it a sixth of the cost of a normal;
 * the SSE2 instruction (baseline x86-64) then does it two at a time. */
static inline void sqrt_chunk(int m, double *r) {
#if defined(__SSE2__) && !defined(__NO_MATH_ERRNO__)
  int i = 0;
  for (; i + 2 <= m; i += 2)
    _mm_storeu_pd(r + i, _mm_sqrt_pd(_mm_loadu_pd(r + i)));
  if (i < m) r[i] = sqrt(r[i]);
#else
  for (int i = 0; i < m; i++)
    r[i] = sqrt(r[i]);
#endif
}

/* r = sqrt(-2 ln u) for u in (0, 1), ln after fdlibm/musl's log.c: the
 * integer add folds u into 2^e (1 + f) with 1 + f in [sqrt(2)/2, sqrt(2))
 * without a branch; ln(1 + f) = 2 atanh(s), s = f/(2 + f), is evaluated as
 * f - (f^2/2 - s (f^2/2 + R(s^2))) with the minimax R (error < 1 ulp). */
static inline void radius_chunk(int m, const double *u, double *r) {
  const double ln2_hi = 6.93147180369123816490e-01,
               ln2_lo = 1.90821492927058770002e-10,
               Lg1 = 6.666666666666735130e-01, Lg2 = 3.999999999940941908e-01,
               Lg3 = 2.857142874366239149e-01, Lg4 = 2.222219843214978396e-01,
               Lg5 = 1.818357216161805012e-01, Lg6 = 1.531383769920937332e-01,
               Lg7 = 1.479819860511658591e-01;
  for (int i = 0; i < m; i++) {
    uint64_t bits = bits_of(u[i]) + ((uint64_t)(0x3ff00000 - 0x3fe6a09e) << 32);
    double mant = double_of((bits & 0x000fffffffffffffULL) +
                            ((uint64_t)0x3fe6a09e << 32));
    /* Exponent as a double without an int64 -> double conversion (which
     * SSE2/AVX2 lack): the bit pattern of 2^52 + e. */
    double e =
        double_of((bits >> 52) | 0x4330000000000000ULL) - (0x1p52 + 1023.0);
    double f = mant - 1.0, s = f / (2.0 + f), z = s * s, w = z * z;
    double t1 = w * (Lg2 + w * (Lg4 + w * Lg6));
    double t2 = z * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7)));
    double R = t2 + t1, hfsq = 0.5 * f * f;
    double lnu = e * ln2_hi - ((hfsq - (s * (hfsq + R) + e * ln2_lo)) - f);
    r[i] = -2.0 * lnu;
  }
  sqrt_chunk(m, r);
}

/* (cos, sin)(2 pi u) for u in (0, 1).  q = round(4u), read from the bits of
 * 4u + 2^52, and y = u - q/4 are exact (u is a multiple of 2^-54), so the
 * reduction adds no error; fdlibm's kernels act on x = 2 pi y, |x| <= pi/4,
 * and the quadrant q swaps and negates (by bit masks: no branch). */
static inline void sincos_chunk(int m, const double *u, double *c, double *s) {
  const double S1 = -1.66666666666666324348e-01,
               S2 = 8.33333333332248946124e-03,
               S3 = -1.98412698298579493134e-04,
               S4 = 2.75573137070700676789e-06,
               S5 = -2.50507602534068634195e-08,
               S6 = 1.58969099521155010221e-10, C1 = 4.16666666666666019037e-02,
               C2 = -1.38888888888741095749e-03,
               C3 = 2.48015872894767294178e-05,
               C4 = -2.75573143513906633035e-07,
               C5 = 2.08757232129817482790e-09,
               C6 = -1.13596475577881948265e-11;
  for (int i = 0; i < m; i++) {
    double t = 4.0 * u[i] + 0x1p52;
    uint64_t q = bits_of(t);
    double x = 6.28318530717958647692 * (u[i] - 0.25 * (t - 0x1p52));
    double z = x * x, v = z * x;
    double sn =
        x + v * (S1 + z * (S2 + z * (S3 + z * (S4 + z * (S5 + z * S6)))));
    double cr = z * (C1 + z * (C2 + z * (C3 + z * (C4 + z * (C5 + z * C6)))));
    double cs = 1.0 - (0.5 * z - z * cr);
    /* Quadrant q mod 4 -> (cos, sin) = (cs, sn), (-sn, cs), (-cs, -sn),
     * (sn, -cs). */
    uint64_t odd = 0 - (q & 1), bs = bits_of(sn), bc = bits_of(cs);
    uint64_t cc = (bc & ~odd) | (bs & odd), ss = (bs & ~odd) | (bc & odd);
    c[i] = double_of(cc ^ (((q + 1) & 2) << 62));
    s[i] = double_of(ss ^ ((q & 2) << 62));
  }
}

/* Normals 2 j0 .. 2 (j0 + m) - 1 into out (m <= CHUNK pairs; n_out <= 2m
 * of them are stored).  Inlined for m = CHUNK and m = TAIL, compile-time
 * trip counts that GCC vectorises at -O2, and for a short scalar rest. */
static inline __attribute__((always_inline)) void
normals_chunk(int m, uint32_t seed, uint32_t purpose, uint32_t j0,
              uint32_t step, uint32_t lo, uint32_t hi, size_t n_out,
              double *out) {
  uint32_t w[4][CHUNK];
  double u1[CHUNK], u2[CHUNK], r[CHUNK], c[CHUNK], s[CHUNK];
  philox_chunk(m, seed, purpose, j0, step, lo, hi, w);
  uniforms_chunk(m, w[0], w[1], u1);
  uniforms_chunk(m, w[2], w[3], u2);
  radius_chunk(m, u1, r);
  sincos_chunk(m, u2, c, s);
  if (n_out == 2 * (size_t)m) {
    for (int i = 0; i < m; i++) {
      out[2 * i] = r[i] * c[i];
      out[2 * i + 1] = r[i] * s[i];
    }
  } else {
    for (size_t i = 0; i < n_out; i++)
      out[i] = r[i / 2] * ((i & 1) ? s[i / 2] : c[i / 2]);
  }
}

NRD_CLONES void rng_normals(uint32_t seed, uint32_t purpose, uint64_t stream,
                            uint32_t step, size_t n, double *out) {
  uint32_t lo = (uint32_t)stream, hi = (uint32_t)(stream >> 32);
  size_t k0 = 0;
  for (; n - k0 >= 2 * CHUNK; k0 += 2 * CHUNK)
    normals_chunk(CHUNK, seed, purpose, (uint32_t)(k0 / 2), step, lo, hi,
                  2 * CHUNK, out + k0);
  /* The tail in vectorised pieces of TAIL pairs, then a short scalar rest
   * (particles of small d land there: one piece costs as much as ~4 scalar
   * pairs). */
  for (; n - k0 >= 2 * TAIL; k0 += 2 * TAIL)
    normals_chunk(TAIL, seed, purpose, (uint32_t)(k0 / 2), step, lo, hi,
                  2 * TAIL, out + k0);
  if (k0 < n)
    normals_chunk((int)(n - k0 + 1) / 2, seed, purpose, (uint32_t)(k0 / 2),
                  step, lo, hi, n - k0, out + k0);
}

NRD_CLONES void rng_uniforms(uint32_t seed, uint32_t purpose, uint64_t stream,
                             uint32_t step, size_t n, double *out) {
  uint32_t w[4][CHUNK];
  double u1[CHUNK], u2[CHUNK];
  uint32_t lo = (uint32_t)stream, hi = (uint32_t)(stream >> 32);
  for (size_t k0 = 0; k0 < n; k0 += 2 * CHUNK) {
    size_t nk = n - k0 < 2 * CHUNK ? n - k0 : 2 * CHUNK;
    int m = (int)((nk + 1) / 2);
    philox_chunk(m, seed, purpose, (uint32_t)(k0 / 2), step, lo, hi, w);
    uniforms_chunk(m, w[0], w[1], u1);
    uniforms_chunk(m, w[2], w[3], u2);
    for (size_t i = 0; i < nk; i++)
      out[k0 + i] = (i & 1) ? u2[i / 2] : u1[i / 2];
  }
}
