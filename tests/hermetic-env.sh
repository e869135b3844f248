# Sourced by every test (Makefile.am's AM_TESTS_ENVIRONMENT and testlib.sh):
# the tests run in an environment of their own, whatever the machine or the
# user set.  BLAS kernel choice, thread counts and MPI
# settings change speed and the last digits of results, and the CLI tests
# assert which of them decided, so none of the caller's may leak in.
# Tests that check the precedence of these variables set them explicitly.
unset NRDIFF_BLAS_KERNEL NRDIFF_BLAS_REEXEC NRDIFF_PLOTS
for v in $(env | sed -n 's/^\(OPENBLAS_[A-Z0-9_]*\)=.*/\1/p;
    s/^\(GOTO_[A-Z0-9_]*\)=.*/\1/p; s/^\(OMP_[A-Z0-9_]*\)=.*/\1/p;
    s/^\(OMPI_[A-Z0-9_]*\)=.*/\1/p; s/^\(PMIX_[A-Z0-9_]*\)=.*/\1/p;
    s/^\(SLURM_[A-Z0-9_]*\)=.*/\1/p'); do
  unset "$v"
done
unset v
# One thread per process: the ranks (and make -j) already use the cores.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
# Open MPI as root and beyond the core count; shared memory only.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl=self,vader
export LC_ALL=C
