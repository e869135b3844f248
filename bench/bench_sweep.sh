#!/usr/bin/env bash
# Whole-run benchmarks (make bench; doc/performance.md): a small sweep at 1
# and 2 ranks (speed-up), the cost of the output and of checkpoints at the
# default cadence, and the checkpoint's HDF5 write bandwidth against a plain
# write (dd) of the same number of bytes.  Every figure is the median of
# REPEAT runs (default 3) measured in this run.  Prints the lines and writes
# them to bench/sweep.csv (metric,value).
#   bench/bench_sweep.sh [BUILD_DIR]
set -u
build=${1:-.}
nrdiff=$(cd "$build" && pwd)/src/nrdiff
csv=$(cd "$build" && pwd)/bench/sweep.csv
src=$(cd "$(dirname "$0")/.." && pwd)
repeat=${REPEAT:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
echo "metric,value" >"$csv"
record() { echo "$1,$2" >>"$csv"; }

# 8 grid points of d = 64 (two dimensions' worth of strengths), 8000
# particles, 400 steps, mixture score: a sweep a user would run.
sweep=(-P grid.dimension=[64] -P grid.strength=[0,0.25,0.5,0.75,1,1.5,2,3]
       -P forward.u=geometric -P ensemble.particles=8000 -P ensemble.block_size=500
       -P time.steps=400 -P "experiment.protocol=[generate]"
       -P output.overwrite=true -P output.file=b.h5)

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
wall() { # ranks, extra args: the run's own wall time (/code@wall_seconds)
  local np=$1; shift
  mpiexec -n "$np" "$nrdiff" "${sweep[@]}" "$@" "$src/input/default.yml" >out 2>err || {
    tail -3 err >&2; echo nan; return; }
  /usr/bin/python3 -c "import h5py; print(h5py.File('b.h5')['code'].attrs['wall_seconds'])"
}
measure() { for _ in $(seq "$repeat"); do wall "$@"; done | median; }

t1=$(measure 1)
t2=$(measure 2)
speedup=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.2f", a / b }')
echo "sweep,ranks=1,seconds=$t1"
echo "sweep,ranks=2,seconds=$t2,speedup=$speedup (goal >= 1.8)"
record sweep_seconds_1_rank "$t1"; record sweep_seconds_2_ranks "$t2"
record speedup_2_ranks "$speedup"

# Output: the default cadence (every 10 steps, 16 trajectories) against a
# minimal one (the last step only, no trajectories).
tmin=$(measure 2 -P output.every=400 -P output.trajectories=0)
out_share=$(awk -v a="$t2" -v b="$tmin" 'BEGIN { printf "%.1f", 100 * (a - b) / a }')
echo "output,default_cadence_seconds=$t2,minimal_seconds=$tmin,overhead_percent=$out_share"
record output_overhead_percent "$out_share"

# Checkpoints: 10 forced ones give the cost of one; at the default cadence
# (checkpoint.interval = 1800 s) a run pays one per 1800 s.
tck=$(measure 2 -P checkpoint.every=40 -P checkpoint.interval=0)
per=$(awk -v a="$tck" -v b="$t2" 'BEGIN { printf "%.4f", (a - b) / 10 }')
share=$(awk -v p="$per" 'BEGIN { printf "%.4f", 100 * p / 1800 }')
echo "checkpoint,seconds_each=$per,overhead_percent_at_default_interval=$share"
record checkpoint_seconds_each "$per"; record checkpoint_overhead_percent "$share"

# Bandwidth: one checkpoint of the run in progress, against dd (with fsync,
# as the checkpoint does) of the same size.
mpiexec -n 2 "$nrdiff" "${sweep[@]}" -P checkpoint.every=200 -P checkpoint.interval=0 \
  -P run.max_wall_time=0.001 "$src/input/default.yml" >ck.out 2>&1
bytes=$(stat -c %s b.h5.ckpt 2>/dev/null || echo 0)
secs=$(grep -o 'checkpoint written: [^(]*(\([0-9.]*\) s)' ck.out | tail -1 | sed 's/.*(\([0-9.]*\) s)/\1/')
start=$(date +%s.%N)
dd if=/dev/zero of=plain bs=1M count=$(( (bytes + 1048575) / 1048576 )) conv=fsync status=none
end=$(date +%s.%N)
h=$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.0f", b / s / 1e6 }')
p=$(awk -v b="$bytes" -v t0="$start" -v t1="$end" 'BEGIN { printf "%.0f", b / (t1 - t0) / 1e6 }')
echo "hdf5_checkpoint,bytes=$bytes,MB_per_s=$h,plain_dd_MB_per_s=$p"
record checkpoint_bytes "$bytes"; record checkpoint_MB_per_s "$h"
record plain_write_MB_per_s "$p"
