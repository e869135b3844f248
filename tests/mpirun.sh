#!/bin/sh
# Run an MPI program on N ranks the way the test suite needs it, whoever runs
# it: as root (Open MPI refuses unless told) and with more ranks than cores.
# Usage: tests/mpirun.sh N PROGRAM [ARGS...]
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
# Shared memory only: tests never leave this machine.
export OMPI_MCA_btl=self,vader
# One BLAS thread per rank keeps oversubscribed runs fast.
export OPENBLAS_NUM_THREADS=1
n=$1
shift
exec "${MPIEXEC:-mpiexec}" --oversubscribe -n "$n" "$@"
