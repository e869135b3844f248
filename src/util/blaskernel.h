/* Choice of OpenBLAS's compute kernels for the CPU we run on.
 *
 * Debian's OpenBLAS 0.3.21 predates some AVX-512 CPUs (AMD Zen 4/5) and
 * falls back to its AVX2 (Haswell) kernels there; its SkylakeX kernels run
 * dgemm 1.6-1.8x faster on them (doc/performance.md).  OpenBLAS reads
 * OPENBLAS_CORETYPE only when the library loads, so the choice is made by
 * re-executing the program with the variable set, before MPI_Init.
 *
 * Who decides, first that applies: --blas-kernel, NRDIFF_BLAS_KERNEL,
 * OPENBLAS_CORETYPE (the user's own), auto.  Values: auto, default
 * (OpenBLAS's own detection) or an OpenBLAS core name such as SkylakeX or
 * Haswell; auto picks SkylakeX when the CPU has AVX-512 (F, DQ, BW, VL) and
 * OpenBLAS chose an older kernel.  A name this OpenBLAS does not have is an
 * error (blas_kernel_error), not a silent fallback.  Different kernels agree
 * to ~10 digits, not bit for bit: restarts of a run should use the same
 * kernel (the checkpoint records it). */
#ifndef NRDIFF_BLASKERNEL_H
#define NRDIFF_BLASKERNEL_H

/* Call first in main, before MPI_Init and any BLAS call: may re-execute
 * the program (it returns only when no re-execution is needed or it
 * failed).  Removes a --blas-kernel option from argv (updating *argc). */
void blas_kernel_select(int *argc, char **argv);

/* What was chosen and which setting decided, for --version and the
 * output's provenance: e.g. "SkylakeX (auto: AVX-512 CPU, OpenBLAS detected
 * Haswell)", "Haswell (--blas-kernel Haswell)". */
const char *blas_kernel_reason(void);

/* NULL, or why the kernel asked for cannot be had (an unknown name, an
 * empty value): a usage error, reported once MPI is up. */
const char *blas_kernel_error(void);

#endif
