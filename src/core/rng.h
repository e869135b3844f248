/* Counter-based random numbers (Random123 Philox4x32-10).
 *
 * Every draw is a pure function of (seed, purpose, stream, step, index):
 * key = {seed, purpose}, counter = {index/2, step, stream_lo, stream_hi}.
 * stream is normally the global particle id.  Nothing about the generator is
 * ever stored, so results do not depend on rank count or on restarts. */
#ifndef NRDIFF_RNG_H
#define NRDIFF_RNG_H

#include <stddef.h>
#include <stdint.h>

/* Distinct purposes give independent streams for the same particle/step. */
enum nrd_rng_purpose {
  RNG_PURPOSE_QHAT = 1,  /* random antisymmetric perturbation */
  RNG_PURPOSE_MEANS,     /* random class directions */
  RNG_PURPOSE_TRAIN,     /* training-set samples */
  RNG_PURPOSE_INIT,      /* initial condition of trajectories */
  RNG_PURPOSE_STEP,      /* integrator noise */
  RNG_PURPOSE_CLONE,     /* noise of the second clone after branching */
  RNG_PURPOSE_FORWARD,   /* forward noising of data */
  RNG_PURPOSE_LABEL,     /* class labels / uniform choices */
  RNG_PURPOSE_DATA,      /* data points x_0 of U-turns and forward paths */
  RNG_PURPOSE_UTURN,     /* noising to T_u and reverse noise of U-turns */
  RNG_PURPOSE_EXCESS,    /* samples of p^e_t for the excess entropy */
  RNG_PURPOSE_FORWARD_PATH, /* noise of forward (noising) paths */
  RNG_PURPOSE_SUBSAMPLE, /* the order of a data file's points */
};

/* n standard normal variates (Box-Muller on 53-bit uniforms), the k-th
 * of which depends only on (seed, purpose, stream, step, k). */
void rng_normals(uint32_t seed, uint32_t purpose, uint64_t stream,
                 uint32_t step, size_t n, double *out);
/* n uniforms in (0, 1), same addressing. */
void rng_uniforms(uint32_t seed, uint32_t purpose, uint64_t stream,
                  uint32_t step, size_t n, double *out);

#endif
