#!/usr/bin/env bash
# nrdiff quick start on Debian (bookworm):
#   ./quickstart.sh         install what is missing, build, run the default job
#   ./quickstart.sh check   install what is missing, build, run the test suite
#                           (normal build, then the unit tests again under
#                           AddressSanitizer + UndefinedBehaviorSanitizer)
set -euo pipefail
cd "$(dirname "$0")"
mode=${1:-run}
case "$mode" in run|check) ;; *) echo "usage: $0 [check]" >&2; exit 2;; esac

# Debian packages the build, the tests and the post-processing need
# (python3-torch: the PyTorch peer of `make bench`, bench/peers.py;
# dataset-fashion-mnist: the real data of `make validate` and
# input/fashion-mnist.yml).
packages=(autoconf automake pkg-config make gcc git
  libopenmpi-dev openmpi-bin libhdf5-openmpi-dev hdf5-tools
  libfftw3-dev libopenblas-dev liblapacke-dev libcmocka-dev
  librandom123-dev libyaml-dev python3-h5py python3-numpy python3-matplotlib
  zlib1g-dev dataset-fashion-mnist
  python3-torch procps)

# The test suite also starts a real single-node Slurm (tests/check_slurm.sh);
# without these packages that one test is skipped, so failing to install
# them is not fatal.
slurm_packages=(slurmctld slurmd slurm-client munge)

# Print the packages of "$@" that are not installed.
missing_of() {
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
      || echo "$p"
  done
}

# Install the missing packages of "$@" (apt-get update once per run).
updated=0
install_missing() {
  local missing
  mapfile -t missing < <(missing_of "$@")
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "quickstart: installing ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "quickstart: need root (or sudo) to install: ${missing[*]}" >&2; return 1; }
    sudo=sudo
  fi
  if [ $updated -eq 0 ]; then $sudo apt-get update -qq || return 1; updated=1; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() {
  if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
    autoreconf -fi
  fi
  if [ ! -f Makefile ] || [ configure -nt config.status ]; then
    ./configure --enable-werror
  fi
  make -j"$(nproc)"
}

# Open MPI refuses to run as root unless told; beyond the core count it
# needs oversubscription.  Set here so nobody has to set it by hand.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
# One BLAS thread per rank: MPI ranks already use the cores.
export OPENBLAS_NUM_THREADS=1

install_missing "${packages[@]}" || exit 1
if [ "$mode" = check ]; then
  install_missing "${slurm_packages[@]}" \
    || echo "quickstart: could not install ${slurm_packages[*]}: the Slurm test will be skipped"
fi
build

if [ "$mode" = run ]; then
  echo "quickstart: running the default job (input/default.yml) on 2 ranks"
  mpiexec -n 2 src/nrdiff input/default.yml
  echo "quickstart: post-processing default.h5 (nrdiff-post --plot)"
  src/nrdiff-post --plot default.h5
  exit $?
fi

status=0
make -j"$(nproc)" check || status=$?
# The science inputs, reduced, against theory (doc/validation.md).
make validate 2>&1 | tee tests/validate.log
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

# The unit tests and nrdiff-post's hostile files (tests/hostile/post.cases)
# once more in a sanitizer build of the distributed sources (which also
# proves the tarball is complete): an invalid read fails the case.
san=_build-sanitizers
rm -rf "$san" && mkdir -p "$san"
make distdir distdir="$san/src" >/dev/null
( cd "$san/src" && ./configure --enable-sanitizers --enable-werror >/dev/null \
  && make -j"$(nproc)" >/dev/null \
  && HOSTILE_FILES=post.cases make -j"$(nproc)" check \
       TESTS='$(UNIT_TESTS) tests/check_hostile.sh' ) || status=1

# Totals over every test case: CMocka's "[  PASSED  ] N test(s)" and
# "[  FAILED  ] N test(s)" lines and the scripts' "checks: N passed, M failed".
count_tests() {
  local logs
  logs=$(ls tests/*.log "$san"/src/tests/*.log 2>/dev/null | grep -v test-suite.log || true)
  [ -n "$logs" ] || { echo "0 passed, 0 failed"; return; }
  # shellcheck disable=SC2086
  cat $logs | awk '
    /^\[  PASSED  \] [0-9]+ test/ { p += $4 }
    /^\[  FAILED  \] [0-9]+ test/ { f += $4 }
    /^checks: [0-9]+ passed, [0-9]+ failed/ { p += $2; f += $4 }
    END { printf "%d passed, %d failed\n", p, f }'
}
echo
echo "quickstart: test cases over both builds (normal + sanitizers):"
count_tests
if [ $status -eq 0 ]; then
  echo "quickstart: all tests passed"
else
  echo "quickstart: TESTS FAILED (see tests/*.log and $san/src/tests/*.log)"
fi
exit $status
