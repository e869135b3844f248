#!/usr/bin/env bash
# The HDF5 output: documented layout (doc/file-format.md) checked with h5py,
# byte-identical science at 1, 2 and 3 ranks, --grid-index, and nothing lost
# (an existing output is neither overwritten nor touched; no .tmp is left;
# one run at a time per output.file; a full disk is exit 1 with the system's
# reason, older files intact and no partial file left).
set -u
. "$(dirname "$0")/testlib.sh"
need_h5py

# A sweep over every axis, mixture and empirical scores, non-reversible,
# anisotropic U; blocks of 100, the last one short.
params=(-P grid.dimension=[2,3] -P grid.strength=[0,1.5] -P grid.n_train=[0,20]
        -P grid.separation=[6] -P forward.u=geometric -P forward.q=random
        -P data.covariance=stationary -P ensemble.particles=550
        -P ensemble.block_size=100 -P time.T=5 -P time.steps=200
        -P output.every=20 -P output.trajectories=5 -P output.trajectory_every=25
        -P output.file=out.h5 -P output.overwrite=false)
for np in 1 2 3; do
  mkdir "$work/n$np"
  if (cd "$work/n$np" && "$mpirun" $np "$nrdiff" "${params[@]}" \
        "$top_src/input/default.yml" >out 2>err) && [ -f "$work/n$np/out.h5" ]; then
    ok "sweep on $np rank(s)"
  else
    cat "$work/n$np/err"; ko "sweep on $np rank(s)"
  fi
  digest[$np]=$("${reader[@]}" digest "$work/n$np/out.h5" 2>&1)
done
[ -n "${digest[1]}" ] && [ "${digest[1]}" = "${digest[2]}" ] \
  && [ "${digest[1]}" = "${digest[3]}" ] \
  && ok "science digest identical at 1, 2, 3 ranks (all but /code, wall_seconds)" \
  || { printf '%s\n' "${digest[@]}"; ko "science digests differ"; }

"${reader[@]}" check-layout "$work/n1/out.h5" >"$work/layout" 2>&1 \
  && ok "layout of doc/file-format.md" || { cat "$work/layout"; ko "layout"; }
"${reader[@]}" summary "$work/n2/out.h5" >"$work/summary" 2>&1 \
  && grep -q "critical time" "$work/summary" && ok "summary reads the file" \
  || { cat "$work/summary"; ko "summary"; }
n=$(/usr/bin/python3 -c "import h5py; print(len(h5py.File('$work/n1/out.h5')['points']))")
[ "$n" = 8 ] && ok "8 grid points in the file" || ko "grid points in the file: $n"

# An existing output is refused (exit 2), left byte-identical, no .tmp left.
before=$(sha256sum <"$work/n1/out.h5")
(cd "$work/n1" && "$nrdiff" "${params[@]}" "$top_src/input/default.yml" >out2 2>err2)
rc=$?
after=$(sha256sum <"$work/n1/out.h5")
[ $rc -eq 2 ] && grep -q "does not overwrite" "$work/n1/err2" && [ "$before" = "$after" ] \
  && [ ! -e "$work/n1/out.h5.tmp" ] \
  && ok "existing output: exit 2, untouched, no .tmp" \
  || { cat "$work/n1/err2"; ko "existing output (exit $rc)"; }
(cd "$work/n1" && "$nrdiff" --dry-run "${params[@]}" "$top_src/input/default.yml" >/dev/null 2>&1)
[ $? -eq 2 ] && ok "dry run also refuses an existing output" || ko "dry run and existing output"
(cd "$work/n1" && "$nrdiff" "${params[@]}" -P output.overwrite=true \
   "$top_src/input/default.yml" >/dev/null 2>&1) \
  && [ "$("${reader[@]}" digest "$work/n1/out.h5" --group points)" = \
       "$("${reader[@]}" digest "$work/n2/out.h5" --group points)" ] \
  && ok "output.overwrite: true replaces it with the same science" \
  || ko "output.overwrite"

# A stale .tmp (an interrupted run) is not silently clobbered either.
mkdir "$work/stale" && echo partial >"$work/stale/out.h5.tmp"
(cd "$work/stale" && "$nrdiff" "${params[@]}" "$top_src/input/default.yml" >/dev/null 2>err)
[ $? -eq 2 ] && [ "$(cat "$work/stale/out.h5.tmp")" = partial ] && [ ! -e "$work/stale/out.h5" ] \
  && ok "stale out.h5.tmp: exit 2, kept" || ko "stale .tmp"

# --grid-index: one point, the same science as in the full run.
mkdir "$work/one"
(cd "$work/one" && "$mpirun" 2 "$nrdiff" --grid-index 5 "${params[@]}" \
   "$top_src/input/default.yml" >out 2>err)
g_one=$("${reader[@]}" digest "$work/one/out.h5" --group points/0005 2>&1)
g_full=$("${reader[@]}" digest "$work/n1/out.h5" --group points/0005 2>&1)
n=$(/usr/bin/python3 -c "import h5py; print(list(h5py.File('$work/one/out.h5')['points']))" 2>&1)
[ "$n" = "['0005']" ] && [ "$g_one" = "$g_full" ] \
  && ok "--grid-index 5: only points/0005, identical to the full run's" \
  || { echo "$n"; cat "$work/one/err"; ko "--grid-index"; }
"$nrdiff" --grid-index 8 --dry-run "${params[@]}" "$top_src/input/default.yml" >/dev/null 2>"$work/gi.err"
[ $? -eq 2 ] && grep -q "grid points 0 .. 7" "$work/gi.err" \
  && ok "--grid-index beyond the plan: exit 2" || ko "--grid-index range"

# output.trajectories = 0: a complete file without /particles.
mkdir "$work/notraj"
(cd "$work/notraj" && "$mpirun" 2 "$nrdiff" "${params[@]}" -P output.trajectories=0 \
   "$top_src/input/default.yml" >out 2>err)
rc=$?
n=$(/usr/bin/python3 -c "import h5py; f = h5py.File('$work/notraj/out.h5'); print(sum('particles' in f['points'][g] for g in f['points']), len(f['points']))" 2>&1)
[ $rc -eq 0 ] && [ "$n" = "0 8" ] && [ ! -e "$work/notraj/out.h5.tmp" ] \
  && ok "output.trajectories = 0: complete output without /particles" \
  || { echo "       exit $rc: $n"; tail -3 "$work/notraj/err"; ko "output.trajectories = 0"; }

# --dry-run writes nothing.
mkdir "$work/dry"
(cd "$work/dry" && "$nrdiff" --dry-run "${params[@]}" "$top_src/input/default.yml" >out 2>err)
[ $? -eq 0 ] && [ "$(ls "$work/dry")" = "$(printf 'err\nout')" ] \
  && ok "--dry-run writes no file" || { ls "$work/dry"; ko "--dry-run writes no file"; }

# A directory that does not exist: refused before anything is done (exit 2,
# naming output.file and the directory; tests/hostile/outputs.cases has more).
(cd "$work" && "$nrdiff" "${params[@]}" -P output.file=no/such/dir/x.h5 \
   "$top_src/input/default.yml" >/dev/null 2>"$work/nodir.err")
[ $? -eq 2 ] && grep -q "key 'output.file': directory 'no/such/dir' does not exist" "$work/nodir.err" \
  && ok "output in a missing directory: exit 2, key and directory named" \
  || { cat "$work/nodir.err"; ko "output in a missing directory"; }


# ------------------------------------------- one run at a time per output
# Run A holds out.h5.lock; while it runs (its rank 0 stopped with SIGSTOP,
# so that it cannot end meanwhile), a second run on the same output.file,
# fresh, --restart, --overwrite or --dry-run, at 2 and 1 ranks, is refused
# (exit 2) naming output.file and A's pid and host.  A then completes,
# alone, and leaves no lock file.
host=$(hostname)
for np in 1 2; do
  d="$work/lock$np"; mkdir "$d"
  (cd "$d" && "$mpirun" $np "$nrdiff" -P time.steps=30000 -P output.every=10000 \
     -P output.trajectory_every=10000 "$tiny" >a.out 2>a.err; echo $? >a.rc) &
  for i in $(seq 300); do grep -q pid "$d/out.h5.lock" 2>/dev/null && break; sleep 0.1; done
  pid=$(sed -n 's/^nrdiff pid \([0-9]*\) .*/\1/p' "$d/out.h5.lock" 2>/dev/null)
  [ -n "$pid" ] && kill -STOP "$pid"
  refused=0 tried=0
  for opt in "" --restart --overwrite --dry-run; do
    for nb in $((3 - np)); do # A on 1 rank, B on 2, and the other way round
      tried=$((tried + 1))
      (cd "$d" && "$mpirun" $nb "$nrdiff" $opt "$tiny" >b.out 2>b.err)
      rc=$?
      if [ $rc -eq 2 ] && [ -n "$pid" ] && grep -qF "key 'output.file': 'out.h5' is being written by another nrdiff run (pid $pid on host $host" "$d/b.err"; then
        refused=$((refused + 1))
      else
        echo "       second run '$opt' on $nb rank(s): exit $rc"; grep error "$d/b.err" | head -2
      fi
    done
  done
  alive=$([ -e "$d/a.rc" ] && echo no || echo yes)
  [ -n "$pid" ] && kill -CONT "$pid"
  wait
  [ $refused = $tried ] && [ $alive = yes ] \
    && ok "run A on $np rank(s) holds the lock: $tried second runs refused (exit 2, holder named)" \
    || ko "lock on $np rank(s): $refused of $tried second runs refused, A still running: $alive"
  [ "$(cat "$d/a.rc")" = 0 ] && [ -f "$d/out.h5" ] && [ -f "$d/out.h5.done" ] \
    && [ ! -e "$d/out.h5.lock" ] && [ ! -e "$d/out.h5.tmp" ] \
    && ok "run A on $np rank(s) completes alone, no lock file left" \
    || { tail -3 "$d/a.err"; ls "$d"; ko "run A on $np rank(s)"; }
done

# A run killed with SIGKILL leaves its lock file, unlocked: the next run
# takes it over (it is not an existing output) and removes it at its end.
for np in 1 2; do
  d="$work/killed$np"; mkdir "$d"
  (cd "$d" && "$mpirun" $np "$nrdiff" -P time.steps=1000000 "$tiny" >a.out 2>&1) &
  for i in $(seq 300); do grep -q pid "$d/out.h5.lock" 2>/dev/null && break; sleep 0.1; done
  pid=$(sed -n 's/^nrdiff pid \([0-9]*\) .*/\1/p' "$d/out.h5.lock" 2>/dev/null)
  [ -n "$pid" ] && kill -9 "$pid"
  wait
  left=$(ls "$d" | tr '\n' ' ')
  (cd "$d" && "$mpirun" $np "$nrdiff" "$tiny" >b.out 2>b.err)
  rc=$?
  [ -n "$pid" ] && [ "$left" = "a.out out.h5.lock " ] && [ $rc -eq 0 ] && [ -f "$d/out.h5.done" ] \
    && [ ! -e "$d/out.h5.lock" ] \
    && ok "after kill -9 of a run on $np rank(s) (left: $left) the next run completes" \
    || { cat "$d/b.err"; ko "after kill -9 on $np rank(s): left '$left', next run exit $rc"; }
done

# ----------------------------------------------------------- full disk
# A small file system (tmpfs, as root) fills up while writing the output or
# a checkpoint, at 1 and 2 ranks: exit 1 (no crash) with the system's
# reason, the older files (an old OUTPUT, the checkpoints) byte-identical,
# no OUTPUT.tmp or OUTPUT.ckpt.tmp left, and the run can go on once there
# is room.  (At 2 ranks the rank that fails may not be rank 0, which holds
# the lock: MPI_Abort stops it before it can remove OUTPUT.lock, which stays
# behind, unlocked.)
full="$work/full"; mkdir "$full"
if mount -t tmpfs -o size=1m tmpfs "$full" 2>/dev/null; then
  umount "$full"
  trap 'umount "$full" 2>/dev/null; rm -rf "$work"' EXIT
  big=(-P ensemble.particles=20000 -P output.every=1 -P output.trajectories=200
       -P output.trajectory_every=1)
  mkdir "$work/seed"
  # an old output, and a checkpoint after one step (the stop file is there)
  (cd "$work/seed" && "$nrdiff" "$tiny" >/dev/null 2>&1 && touch stop \
     && "$nrdiff" "${big[@]}" -P output.file=ck.h5 -P checkpoint.stop_file=stop \
          "$tiny" >/dev/null 2>&1; rm -f stop)
  old=$(stat -c %s "$work/seed/out.h5" 2>/dev/null || echo 0)
  ck=$(stat -c %s "$work/seed/ck.h5.ckpt" 2>/dev/null || echo 0)
  # per scenario: the mount's size, the file kept, the run's options
  scenario() {
    case $1 in
      output) echo "$((old + 2000000)) out.h5 --overwrite" ;;
      checkpoint) echo "$((ck + ck / 2)) ck.h5.ckpt --restart -P output.file=ck.h5 -P checkpoint.every=1" ;;
      restart) echo "$((ck + 2000000)) ck.h5.ckpt --restart -P output.file=ck.h5" ;;
    esac
  }
  for np in 1 2; do
    for what in output checkpoint restart; do
      set -- $(scenario $what)
      size=$1 keep=$2
      shift 2
      mount -t tmpfs -o size=$size tmpfs "$full"
      cp "$work/seed/$keep" "$full/"
      before=$(sha256sum <"$full/$keep")
      (cd "$full" && "$mpirun" $np "$nrdiff" "${big[@]}" "$@" "$tiny" \
         >"$work/full.out" 2>"$work/full.err")
      rc=$?
      after=$(sha256sum <"$full/$keep")
      stray=$(cd "$full" && ls | grep -v "^$keep\$" | grep -v '\.lock$' | tr '\n' ' ')
      lock=$([ -e "$full/${keep%%.h5*}.h5.lock" ] && echo yes || echo no)
      # room again: the same command goes on (a restart from the checkpoint)
      mount -o remount,size=64m "$full"
      again=$(cd "$full" && "$mpirun" $np "$nrdiff" "${big[@]}" "$@" "$tiny" >/dev/null 2>&1; echo $?)
      umount "$full"
      if [ $ck -gt 0 ] && [ $rc -eq 1 ] && grep -q "No space left on device" "$work/full.err" \
         && ! grep -q "Segmentation\|signal" "$work/full.err" \
         && [ "$before" = "$after" ] && [ -z "$stray" ] \
         && { [ $np = 2 ] || [ $lock = no ]; } && [ "$again" = 0 ]; then
        ok "full disk writing the $what on $np rank(s): exit 1, 'No space left on device', $keep intact, nothing stray; goes on with room"
      else
        grep -v '^\[nrdiff' "$work/full.err" | head -4
        ko "full disk writing the $what on $np rank(s): exit $rc, stray '$stray', lock left: $lock, again: exit $again"
      fi
    done
  done
else
  echo "skip - full disk: cannot mount a tmpfs here (needs root)"
fi

finish
