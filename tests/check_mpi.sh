#!/usr/bin/env bash
# MPI tests at 1, 2 and 3 ranks: the CMocka MPI programs (and a checkpoint
# written at 3 ranks read at 1 and 2), and the rank-count invariance of a
# small run's output file and printed results (1 to 4 ranks).
set -u
. "$(dirname "$0")/testlib.sh"

# prog [ARGS] on np ranks, its CMocka summary shown
mpi_test() {
  local np=$1 prog=$2
  shift 2
  if "$mpirun" $np "$top_build/tests/$prog" "$@" >"$work/out" 2>&1; then
    ok "$prog${*:+ $*} on $np rank(s)"
  else
    sed 's/^/       /' "$work/out"; ko "$prog${*:+ $*} on $np rank(s)"
  fi
  grep -E '^\[  (PASSED|FAILED)  \]' "$work/out" | head -2
}
for np in 1 2 3; do
  for prog in test_mpi_params test_mpi_checkpoint test_mpi_h5out \
    test_mpi_output_target test_mpi_point; do
    mpi_test $np $prog
  done
done
# a checkpoint written at 3 ranks, read back bit for bit at 1 and 2
mkdir "$work/ckpt"
mpi_test 3 test_mpi_checkpoint write "$work/ckpt"
mpi_test 1 test_mpi_checkpoint read "$work/ckpt"
mpi_test 2 test_mpi_checkpoint read "$work/ckpt"

# Rank-count invariance of the science: the output files written at 1, 2, 3
# and 4 ranks hold the same values everywhere except /code (provenance:
# rank count, command line, date, wall time), and the printed reports are
# the same.  Four grid points, 7 blocks of 5 particles (the last one short),
# both the exact mixture score and the empirical score, trajectories sampled
# across blocks.
params=(-P grid.dimension=[3] -P grid.strength=[0,1.5] -P grid.n_train=[0,20]
        -P forward.u=geometric -P forward.q=random -P data.covariance=stationary
        -P data.direction=slowest -P grid.separation=[8] -P ensemble.particles=33
        -P ensemble.block_size=5 -P time.T=4 -P time.steps=120 -P output.every=10
        -P output.trajectories=6 -P output.trajectory_every=7 -P output.file=out.h5)
# the reports from the first grid point on: not the plan, whose cost estimate
# depends on the rank count, nor log and timing lines
report() { sed -n '/^Grid point/,$p' "$1" | grep -v -E '^\[nrdiff|^Done:'; }
for np in 1 2 3 4; do
  mkdir "$work/run$np"
  (cd "$work/run$np" && "$mpirun" $np "$nrdiff" "${params[@]}" \
    "$top_src/input/default.yml" >out 2>err)
  rc=$?
  if [ $rc -ne 0 ] || [ ! -f "$work/run$np/out.h5" ]; then
    cat "$work/run$np/err"; ko "small run on $np rank(s)"; continue
  fi
  ok "small run on $np rank(s)"
  [ $np -eq 1 ] && continue
  if h5diff --exclude-path /code "$work/run1/out.h5" "$work/run$np/out.h5" \
    >"$work/diff" 2>&1; then
    ok "output at $np ranks equals output at 1 rank (all but /code)"
  else
    head -20 "$work/diff"; ko "output at $np ranks differs from 1 rank"
  fi
  report "$work/run1/out" >"$work/report1"
  report "$work/run$np/out" >"$work/report$np"
  if [ -s "$work/report1" ] && cmp -s "$work/report1" "$work/report$np"; then
    ok "printed results at $np ranks equal those at 1 rank"
  else
    diff "$work/report1" "$work/report$np" | head -10
    ko "printed results differ at $np ranks"
  fi
done

# A bad input at a grid point whose theory another rank builds (the points
# are dealt round-robin, prepare_theory): with d = 4 and 8 and three
# strengths, point 3 is the first d = 8 point, rank 1's on 2 ranks.  The run
# stops before any output with status 2 and names the point.
if /usr/bin/python3 -c "import h5py" 2>/dev/null; then
  mkdir "$work/bad"
  /usr/bin/python3 -c "import h5py, numpy; h5py.File('$work/bad/u4.h5', 'w')['U'] = 2 * numpy.eye(4)"
  (cd "$work/bad" && "$mpirun" 2 "$nrdiff" -P grid.dimension=[4,8] \
    -P grid.strength=[0,0.75,2] -P forward.u=file -P forward.u_file=u4.h5 \
    -P ensemble.particles=10 -P time.steps=5 -P output.file=bad.h5 \
    "$top_src/input/default.yml" >out 2>err)
  rc=$?
  if [ $rc -eq 2 ] && grep -q "grid point 3: forward.u_file" "$work/bad/err" &&
    [ ! -e "$work/bad/bad.h5" ] && [ ! -e "$work/bad/bad.h5.tmp" ]; then
    ok "bad input at another rank's grid point: status 2, the point named, no output"
  else
    cat "$work/bad/err"; ko "bad input at another rank's grid point (status $rc)"
  fi
fi

finish
