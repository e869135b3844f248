#!/usr/bin/env bash
# Stops and completion (doc/restart.md): SIGINT is a stop request like
# SIGTERM (checkpoint, exit 3); a stop signal at any moment after start-up
# never kills a rank; every rank reports the same stop reason; an honoured
# stop file is removed; OUTPUT.done is written before the checkpoints go,
# and a restart of a complete output without its marker writes the marker.
set -u
. "$(dirname "$0")/testlib.sh"
need_h5py

# Two grid points, 8 blocks, about two seconds of work on 2 ranks.
params=(-P grid.dimension=[3] -P grid.strength=[0,1.5] -P forward.u=geometric
        -P forward.q=random -P data.covariance=stationary -P grid.separation=[8]
        -P ensemble.particles=800 -P ensemble.block_size=100 -P time.T=4
        -P time.steps=3000 -P output.every=10 -P output.trajectories=4
        -P output.file=out.h5 -P output.overwrite=false -P checkpoint.interval=0
        -P checkpoint.stop_file=STOP)
input="$top_src/input/default.yml"
science() { "${reader[@]}" digest "$1" --group points 2>&1; }
# Restart the run stopped in $1 on 2 ranks: it must end like the reference.
restart_identical() {
  (cd "$1" && "$mpirun" 2 "$nrdiff" --restart "${params[@]}" "$input" >out2 2>err2) \
    && [ "$(science "$1/out.h5")" = "$ref" ] \
    && ok "after $2: the restart on 2 ranks runs to the end, identical science" \
    || { tail -3 "$1/err2"; ko "restart after $2"; }
}

mkdir "$work/ref"
(cd "$work/ref" && "$mpirun" 2 "$nrdiff" "${params[@]}" "$input" >out 2>err) \
  && ok "reference run" || { tail -3 "$work/ref/err"; ko "reference run"; }
ref=$(science "$work/ref/out.h5")

# Ctrl-C of a serial run: SIGINT to the process.
d="$work/sigint"; mkdir "$d"
(cd "$d" && exec "$nrdiff" "${params[@]}" "$input" >out 2>err) &
pid=$!
sleep 1
kill -INT $pid
wait $pid; rc=$?
[ $rc -eq 3 ] && [ -f "$d/out.h5.ckpt" ] && grep -q "Stopped on request (SIGINT)" "$d/out" \
  && ok "SIGINT: checkpoint, exit 3, reason SIGINT" \
  || { tail -3 "$d/err"; ko "SIGINT (exit $rc)"; }
restart_identical "$d" "SIGINT"

# SIGTERM to rank 1 only: both ranks stop and agree on the reason.
d="$work/rank1"; mkdir "$d"
(cd "$d" && exec "$mpirun" 2 "$nrdiff" "${params[@]}" "$input" >out 2>err) &
pid=$!
sleep 1.2
r1=$(pgrep -P "$pid" -f "src/nrdiff" | sort -n | tail -1)
[ -n "$r1" ] && kill -TERM "$r1"
wait $pid; rc=$?
[ $rc -eq 3 ] && grep -q "Stopped on request (SIGTERM)" "$d/out" \
  && ! grep -q "max_wall_time" "$d/out" \
  && ok "SIGTERM to one rank: exit 3, the reason reported is SIGTERM" \
  || { tail -3 "$d/err"; ko "SIGTERM to one rank (exit $rc)"; }

# Stop signals at seeded random moments from 0.02 s on (during start-up,
# MPI_Init, the theory, the steps): exit 3 or 0, never killed by the signal.
RANDOM=20261202
killed=0
for trial in 1 2 3 4 5 6; do
  d="$work/early$trial"; mkdir "$d"
  (cd "$d" && exec "$nrdiff" "${params[@]}" "$input" >out 2>err) &
  pid=$!
  sleep "0.$(printf '%02d' $((2 + RANDOM % 40)))"
  kill -TERM $pid 2>/dev/null
  wait $pid; rc=$?
  [ $rc -eq 3 ] || [ $rc -eq 0 ] || { killed=$((killed + 1)); echo "       trial $trial: exit $rc"; }
done
[ $killed -eq 0 ] && ok "SIGTERM at 6 random early moments: every run stopped cleanly" \
  || ko "early SIGTERM: $killed of 6 runs killed"

# An honoured stop file is removed: the restart then runs to the end.
d="$work/stopfile"; mkdir "$d"; touch "$d/STOP"
(cd "$d" && "$mpirun" 2 "$nrdiff" "${params[@]}" "$input" >out 2>err); rc=$?
[ $rc -eq 3 ] && [ ! -e "$d/STOP" ] && grep -q "Stopped on request (stop file STOP)" "$d/out" \
  && ok "stop file: exit 3, the honoured stop file removed" \
  || { tail -3 "$d/err"; ko "stop file (exit $rc)"; }
restart_identical "$d" "the stop file"

# The documented job loop ends well when a kill fell between the output and
# its marker: OUTPUT complete, no OUTPUT.done, checkpoints still there.
d="$work/unmarked"; mkdir "$d"
cp "$work/ref/out.h5" "$d/"
(cd "$d" && touch STOP && "$mpirun" 2 "$nrdiff" "${params[@]}" -P output.file=other.h5 \
   "$input" >/dev/null 2>&1; mv other.h5.ckpt out.h5.ckpt)
before=$(sha256sum <"$d/out.h5")
(cd "$d" && n=0 && until [ -e out.h5.done ] || [ $n -ge 3 ]; do
   n=$((n + 1)); "$mpirun" 2 "$nrdiff" --restart "${params[@]}" "$input" >loop.out 2>loop.err \
     || [ $? -eq 3 ] || exit 1; done) ; rc=$?
[ $rc -eq 0 ] && [ -f "$d/out.h5.done" ] && [ ! -e "$d/out.h5.ckpt" ] \
  && [ "$(sha256sum <"$d/out.h5")" = "$before" ] \
  && ok "complete output without its marker: the job loop's restart marks it, exit 0, output untouched" \
  || { cat "$d/loop.err"; ko "unmarked complete output (exit $rc)"; }

# The order at the end of a run: the marker exists before the checkpoints
# are removed (strace shows unlink after the marker's fsync).
if command -v strace >/dev/null; then
  d="$work/order"; mkdir "$d"
  (cd "$d" && strace -f -e trace=openat,unlink,unlinkat,rename -o trace "$nrdiff" \
     "${params[@]}" -P time.steps=200 -P checkpoint.every=50 "$input" >out 2>err)
  m=$(grep -n 'out.h5.done' "$d/trace" | head -1 | cut -d: -f1)
  u=$(grep -n 'unlink.*out.h5.ckpt"' "$d/trace" | tail -1 | cut -d: -f1)
  [ -n "$m" ] && [ -n "$u" ] && [ "$m" -lt "$u" ] \
    && ok "OUTPUT.done is written before the checkpoints are removed" \
    || { echo "       marker at line ${m:-?}, unlink at ${u:-?}"; ko "marker order"; }
fi

finish
