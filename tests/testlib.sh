# Shared preamble of the script tests (sourced, not run): where things are,
# ok/ko counters, a scratch directory removed on exit, and the summary line
# that quickstart.sh counts.
#   here      tests/ directory        top_src, top_build   source, build trees
#   nrdiff    the program             mpirun               tests/mpirun.sh
#   reader    postprocess/nrdiff_read.py under /usr/bin/python3
#   work      scratch directory (removed on exit)
#   tiny      tests/tiny.yml: a small, fast, valid parameter file
here=$(cd "$(dirname "$0")" && pwd)
. "$here/hermetic-env.sh"
top_src=${TOP_SRCDIR:-$(cd "$here/.." && pwd)}
top_build=${TOP_BUILDDIR:-$top_src}
nrdiff=${NRDIFF:-$top_build/src/nrdiff}
mpirun="$here/mpirun.sh"
tiny="$here/tiny.yml"
reader=(/usr/bin/python3 "$top_src/postprocess/nrdiff_read.py")
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
ko() { fail=$((fail + 1)); echo "FAIL - $1"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Skip (automake's 77) when Debian's Python cannot read HDF5.
need_h5py() {
  /usr/bin/python3 -c "import h5py" 2>/dev/null && return 0
  echo "SKIP: /usr/bin/python3 cannot import h5py (Debian package python3-h5py)"
  exit 77
}

# The summary line, and the exit status.
finish() {
  echo "checks: $pass passed, $fail failed"
  [ $fail -eq 0 ]
}
