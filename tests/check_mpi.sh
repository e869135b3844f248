#!/usr/bin/env bash
# MPI tests at 1, 2 and 3 ranks: the CMocka MPI programs, and the rank-count
# invariance of a small run (its observables checksum must not change).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_src=${TOP_SRCDIR:-$(cd "$here/.." && pwd)}
top_build=${TOP_BUILDDIR:-$top_src}
nrdiff=${NRDIFF:-$top_build/src/nrdiff}
mpirun="$here/mpirun.sh"
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
ko() { fail=$((fail + 1)); echo "FAIL - $1"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for np in 1 2 3; do
  for prog in test_mpi_params; do
    if "$mpirun" $np "$top_build/tests/$prog" >"$work/out" 2>&1; then
      ok "$prog on $np rank(s)"
    else
      sed 's/^/       /' "$work/out"; ko "$prog on $np rank(s)"
    fi
    grep -E '^\[  (PASSED|FAILED)  \]' "$work/out" | head -2
  done
done

# Rank-count invariance of the science: same checksums at 1, 2, 3 ranks.
# Four grid points, 7 blocks of 5 particles (the last one short), both the
# exact mixture score and the empirical score.
params=(-P grid.dimension=[3] -P grid.strength=[0,1.5] -P grid.n_train=[0,20]
        -P forward.u=geometric -P forward.q=random -P data.covariance=stationary
        -P data.direction=slowest -P grid.separation=[8] -P ensemble.particles=33
        -P ensemble.block_size=5 -P time.T=4 -P time.steps=120 -P output.every=10)
ref=""
for np in 1 2 3; do
  (cd "$work" && "$mpirun" $np "$nrdiff" "${params[@]}" "$top_src/input/default.yml" \
    >"run$np.out" 2>"run$np.err")
  rc=$?
  sums=$(grep "observables checksum" "$work/run$np.out")
  if [ $rc -ne 0 ] || [ -z "$sums" ]; then
    cat "$work/run$np.err"; ko "small run on $np rank(s)"; continue
  fi
  ok "small run on $np rank(s)"
  if [ -z "$ref" ]; then ref=$sums
  elif [ "$sums" = "$ref" ]; then ok "checksums at $np ranks equal those at 1 rank"
  else echo "$sums"; echo "$ref"; ko "checksums at $np ranks differ from 1 rank"; fi
done

echo "checks: $pass passed, $fail failed"
[ $fail -eq 0 ]
