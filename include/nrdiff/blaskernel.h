/* Choice of OpenBLAS's compute kernels for the CPU we run on.
 *
 * Debian's OpenBLAS 0.3.21 predates some AVX-512 CPUs (AMD Zen 4/5) and
 * falls back to its AVX2 (Haswell) kernels there; its SkylakeX kernels run
 * dgemm 1.6-1.8x faster on them (doc/performance.md).  OpenBLAS reads
 * OPENBLAS_CORETYPE only when the library loads, so the choice is made by
 * re-executing the program with the variable set, before MPI_Init.
 *
 * The choice: NRDIFF_BLAS_KERNEL or --blas-kernel (auto, default or an
 * OpenBLAS core name such as SkylakeX or Haswell); auto, the default, picks
 * SkylakeX when the CPU has AVX-512 (F, DQ, BW, VL) and OpenBLAS chose an
 * older kernel.  An OPENBLAS_CORETYPE already in the environment is left
 * alone.  Different kernels agree to ~10 digits, not bit for bit: restarts
 * of a run should use the same kernel (the checkpoint records it). */
#ifndef NRDIFF_BLASKERNEL_H
#define NRDIFF_BLASKERNEL_H

/* Call first in main, before MPI_Init and any BLAS call: may re-execute
 * the program (it returns only when no re-execution is needed or it
 * failed).  Removes a --blas-kernel option from argv (updating *argc). */
void blas_kernel_select(int *argc, char **argv);

/* What was chosen and why, for --version and the output's provenance:
 * e.g. "SkylakeX (auto: AVX-512 CPU, OpenBLAS detected Haswell)". */
const char *blas_kernel_reason(void);

#endif
