#!/usr/bin/env bash
# Checkpoint/restart (doc/restart.md): "run to the end" and "stop anywhere,
# restart (on any rank count), run to the end" give byte-identical science,
# for every trigger (periodic, run.max_wall_time, stop file, SIGTERM,
# SIGUSR1, kill -9 at seeded random moments); damaged checkpoints are
# rejected in favour of the previous one; nothing is overwritten.
set -u
. "$(dirname "$0")/testlib.sh"
need_h5py

# Four grid points (mixture and empirical score), 15 blocks, trajectories,
# about a second of work on 2 ranks.
params=(-P grid.dimension=[3] -P grid.strength=[0,1.5] -P grid.n_train=[0,20]
        -P forward.u=geometric -P forward.q=random -P data.covariance=stationary
        -P grid.separation=[8] -P ensemble.particles=1500 -P ensemble.block_size=100
        -P time.T=4 -P time.steps=1200 -P output.every=10 -P output.trajectories=6
        -P output.trajectory_every=7 -P output.file=out.h5 -P output.overwrite=false
        -P checkpoint.interval=0 -P checkpoint.stop_file=STOP)
input="$top_src/input/default.yml"
science() { "${reader[@]}" digest "$1" --group points 2>&1; }

mkdir "$work/ref"
(cd "$work/ref" && "$mpirun" 1 "$nrdiff" "${params[@]}" "$input" >out 2>err) \
  && ok "reference run" || { cat "$work/ref/err"; ko "reference run"; }
ref=$(science "$work/ref/out.h5")

# Run in $1 until complete: the first attempt with "$2" extra arguments, then
# --restart on the rank counts cycling through 3 2 1; at most 40 attempts.
# Prints the number of stops.
run_until_done() {
  local dir=$1 first=$2 stops=0 np rc extra=()
  [ -n "$first" ] && read -r -a extra <<<"$first"
  for attempt in $(seq 0 39); do
    np=$((3 - attempt % 3))
    if [ $attempt -eq 0 ]; then
      (cd "$dir" && "$mpirun" 2 "$nrdiff" "${params[@]}" "${extra[@]}" "$input" \
         >"out$attempt" 2>"err$attempt")
    else
      (cd "$dir" && "$mpirun" $np "$nrdiff" --restart "${params[@]}" "${extra[@]}" \
         "$input" >"out$attempt" 2>"err$attempt")
    fi
    rc=$?
    [ $rc -eq 0 ] && { echo $stops; return 0; }
    [ $rc -eq 3 ] || { cat "$dir/err$attempt" >&2; echo "exit $rc"; return 1; }
    stops=$((stops + 1))
  done
  echo "never finished"; return 1
}

# Periodic checkpoints do not change the science, and a completed run
# leaves OUTPUT.done and no checkpoints.
mkdir "$work/periodic"
(cd "$work/periodic" && "$mpirun" 2 "$nrdiff" "${params[@]}" -P checkpoint.every=37 \
   "$input" >out 2>err)
[ $? -eq 0 ] && [ "$(science "$work/periodic/out.h5")" = "$ref" ] \
  && grep -q "checkpoint written" "$work/periodic/out" \
  && [ -f "$work/periodic/out.h5.done" ] && [ ! -e "$work/periodic/out.h5.ckpt" ] \
  && ok "periodic checkpoints: same science, .done written, checkpoints removed" \
  || { cat "$work/periodic/err"; ko "periodic checkpoints"; }

# run.max_wall_time (a fifth of the reference's wall time): stop, restart
# on 3, 2, 1 ranks ... until done.
wall=$(/usr/bin/python3 -c "import h5py; print(round(h5py.File('$work/ref/out.h5')['code'].attrs['wall_seconds'] / 5, 3))")
mkdir "$work/wall"
n=$(run_until_done "$work/wall" "-P run.max_wall_time=$wall")
[ $? -eq 0 ] && [ "$n" -ge 1 ] && [ "$(science "$work/wall/out.h5")" = "$ref" ] \
  && ok "max_wall_time: $n stop(s), restarts on 3/2/1 ranks, identical science" \
  || ko "max_wall_time restarts ($n)"

# The stop file: stops at the first step, exit 3, checkpoint, no output.
mkdir "$work/stopfile" && touch "$work/stopfile/STOP"
(cd "$work/stopfile" && "$mpirun" 2 "$nrdiff" "${params[@]}" "$input" >out 2>err)
rc=$?
rm -f "$work/stopfile/STOP"
[ $rc -eq 3 ] && [ -f "$work/stopfile/out.h5.ckpt" ] && [ ! -e "$work/stopfile/out.h5" ] \
  && grep -q "stop file" "$work/stopfile/out" \
  && ok "stop file: exit 3, checkpoint, no output" || ko "stop file (exit $rc)"
(cd "$work/stopfile" && "$mpirun" 3 "$nrdiff" --restart "${params[@]}" "$input" >out2 2>err2)
[ $? -eq 0 ] && [ "$(science "$work/stopfile/out.h5")" = "$ref" ] \
  && ok "stop file: restart on 3 ranks, identical science" \
  || { cat "$work/stopfile/err2"; ko "stop file restart"; }

# Signals at seeded random moments: SIGTERM to the ranks (as srun or
# scancel deliver it), SIGUSR1 to mpirun (which forwards it; Slurm's
# --signal=B:USR1@T), then a restart to the end.  ($pid is mpiexec: the
# wrapper execs it.)
RANDOM=20261122
for sig in TERM USR1; do
  d="$work/sig$sig"; mkdir "$d"
  (cd "$d" && exec "$mpirun" 2 "$nrdiff" "${params[@]}" "$input" >out0 2>err0) &
  pid=$!
  sleep "0.$((2 + RANDOM % 4))"
  if [ $sig = TERM ]; then pkill -TERM -P $pid; else kill -USR1 $pid; fi
  wait $pid; rc=$?
  if [ $rc -eq 3 ] || [ $rc -eq 0 ]; then
    (cd "$d" && "$mpirun" 1 "$nrdiff" --restart "${params[@]}" "$input" >out1 2>err1)
    [ -f "$d/out.h5" ] && [ "$(science "$d/out.h5")" = "$ref" ] \
      && ok "SIG$sig (first run exit $rc), restart on 1 rank: identical science" \
      || { cat "$d/err1"; ko "SIG$sig restart"; }
  else
    cat "$d/err0"; ko "SIG$sig: first run exit $rc"
  fi
done

# kill -9 of the whole job at 10 seeded random moments, checkpoints every
# 25 steps; then restart (or start again if no checkpoint was written yet).
# A killed run never leaves a partial OUTPUT under its final name.  "The
# whole job" is its session (setsid): Open MPI gives every rank a process
# group of its own, and ranks that outlived mpiexec went on writing
# checkpoints for up to a second, while the restart was reading them.
RANDOM=42
good=0
for trial in $(seq 1 10); do
  d="$work/kill$trial"; mkdir "$d"
  (cd "$d" && exec setsid "$mpirun" 2 "$nrdiff" "${params[@]}" -P checkpoint.every=25 \
     "$input" >out0 2>err0) &
  pid=$!
  sleep "0.$((RANDOM % 9 + 1))"
  sid=$(ps -o sid= -p $pid 2>/dev/null | tr -d ' ')
  [ "$sid" = "$pid" ] || sid=""   # only a session of the job's own
  [ -n "$sid" ] && pkill -9 -s "$sid" 2>/dev/null
  wait $pid 2>/dev/null
  for _ in $(seq 50); do
    [ -n "$sid" ] && pgrep -s "$sid" >/dev/null || break
    sleep 0.1
  done
  partial_ok=1
  if [ -e "$d/out.h5" ]; then
    "${reader[@]}" check-layout "$d/out.h5" >/dev/null 2>&1 || partial_ok=0
  fi
  if [ -f "$d/out.h5.done" ]; then
    :
  elif [ -e "$d/out.h5.ckpt" ] || [ -e "$d/out.h5.ckpt.prev" ]; then
    (cd "$d" && "$mpirun" 2 "$nrdiff" --restart "${params[@]}" "$input" >out1 2>err1)
  else
    (cd "$d" && "$mpirun" 2 "$nrdiff" --overwrite "${params[@]}" "$input" >out1 2>err1)
  fi
  if [ $partial_ok -eq 1 ] && [ "$(science "$d/out.h5")" = "$ref" ]; then
    good=$((good + 1))
  else
    echo "       trial $trial:"; ls "$d"; cat "$d/err1" 2>/dev/null
  fi
  rm -rf "$d"
done
[ $good -eq 10 ] && ok "kill -9 at 10 random moments: every continuation identical" \
  || ko "kill -9: $good of 10 identical"

# Set the superblock's end-of-file address of HDF5 file $1 to the middle of
# its largest dataset's data ($2 = "data"), or overwrite bytes 40-47 with
# garbage ($2 = "garbage"; in a version 0 superblock they are the
# end-of-file address, in a version 2 one part of the root group's address
# and the superblock checksum).  "data" makes the superblock's checksum
# match again, so that HDF5 opens the file and only the reads beyond the
# address fail, those of the ranks whose rows lie there: that once left one
# rank in a collective H5Dread while the others had moved on (a hang).
damage_eof() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import struct, sys, h5py
path, how = sys.argv[1], sys.argv[2]
def lookup3(data):  # HDF5's metadata checksum (H5_checksum_lookup3)
    M = 0xffffffff
    rot = lambda x, k: ((x << k) | (x >> (32 - k))) & M
    n = len(data); a = b = c = (0xdeadbeef + n) & M; i = 0
    w = lambda j: struct.unpack_from("<I", data, j)[0]
    while n > 12:
        a = (a + w(i)) & M; b = (b + w(i + 4)) & M; c = (c + w(i + 8)) & M
        for x, y, z, r in ((0, 2, 1, 4), (1, 0, 2, 6), (2, 1, 0, 8),
                           (0, 2, 1, 16), (1, 0, 2, 19), (2, 1, 0, 4)):
            v = [a, b, c]
            v[x] = (v[x] - v[y]) & M; v[x] ^= rot(v[y], r); v[y] = (v[y] + v[z]) & M
            a, b, c = v
        i += 12; n -= 12
    t = bytes(data[i:i + n]) + bytes(12 - n)
    a = (a + struct.unpack_from("<I", t, 0)[0]) & M
    b = (b + struct.unpack_from("<I", t, 4)[0]) & M
    c = (c + struct.unpack_from("<I", t, 8)[0]) & M
    for x, y, r in ((2, 1, 14), (0, 2, 11), (1, 0, 25), (2, 1, 16),
                    (0, 2, 4), (1, 0, 14), (2, 1, 24)):
        v = [a, b, c]; v[x] ^= v[y]; v[x] = (v[x] - rot(v[y], r)) & M; a, b, c = v
    return c
sets = []
with h5py.File(path, "r") as f:
    f.visititems(lambda n, o: sets.append((o.id.get_storage_size(), o.id.get_offset()))
                 if isinstance(o, h5py.Dataset) and o.id.get_offset() else None)
size, offset = max(sets)
eof = offset + size // 2
b = bytearray(open(path, "rb").read())
if how == "garbage":
    b[40:48] = bytes.fromhex("5be1c0ffee0d15ea")
elif b[8] in (0, 1):                      # superblock version 0/1
    b[40:48] = struct.pack("<Q", eof)
else:                                     # version 2/3, then its checksum
    b[28:36] = struct.pack("<Q", eof)
    b[44:48] = struct.pack("<I", lookup3(bytes(b[:44])))
open(path, "wb").write(bytes(b))
PY
}

# Damaged checkpoints: with .ckpt and .ckpt.prev present, a truncated,
# re-signed or bit-flipped .ckpt, one with a flipped byte in its stored
# parameters (damage, not a changed key) or a damaged end-of-file address
# (on 1, 2 and 3 ranks, under a time limit: never a hang) is rejected with a
# message and .ckpt.prev used; when both are bad the restart fails (exit 1)
# and touches nothing.
mkdir "$work/dmg"
(cd "$work/dmg" && "$mpirun" 2 "$nrdiff" "${params[@]}" -P checkpoint.every=100 \
   -P run.max_wall_time=$wall "$input" >out 2>err)
rc=$?
if [ $rc -eq 3 ] && [ -f "$work/dmg/out.h5.ckpt" ] && [ -f "$work/dmg/out.h5.ckpt.prev" ]; then
  cp "$work/dmg/out.h5.ckpt" "$work/good.ckpt"
  cp "$work/dmg/out.h5.ckpt.prev" "$work/good.prev"
  for variant in truncate signature flip parameter eof:1 eof:2 eof:3 garbage:2; do
    damage=${variant%:*} np=2 expect="checkpoint rejected"
    case $variant in *:*) np=${variant#*:} ;; esac
    case $damage in
      parameter) expect="parameters, attributes and block checksums does not match (damaged)" ;;
      eof) expect="end-of-file address" ;;
    esac
    cp "$work/good.ckpt" "$work/dmg/out.h5.ckpt"
    cp "$work/good.prev" "$work/dmg/out.h5.ckpt.prev"
    case $damage in
      truncate) truncate -s $(($(stat -c %s "$work/good.ckpt") / 2)) "$work/dmg/out.h5.ckpt" ;;
      signature) /usr/bin/python3 -c "import h5py; h5py.File('$work/dmg/out.h5.ckpt','r+').attrs['signature']='not-nrdiff'" ;;
      flip) /usr/bin/python3 - "$work/dmg/out.h5.ckpt" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    ds = next(f["points"][g]["records"] for g in sorted(f["points"]) if "records" in f["points"][g])
    off = ds.id.get_offset()
data = bytearray(open(sys.argv[1], "rb").read())
data[off + 8 * 5 + 3] ^= 0x10          # one bit of one stored double
open(sys.argv[1], "wb").write(bytes(data))
PY
      ;;
      parameter) /usr/bin/python3 - "$work/dmg/out.h5.ckpt" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    keys = [k.decode() for k in f["parameters/key"][:]]
    ds = f["parameters/value"]
    off, width = ds.id.get_offset(), ds.dtype.itemsize
data = bytearray(open(sys.argv[1], "rb").read())
data[off + width * keys.index("ensemble.particles")] ^= 0x02   # "1500" -> "3500"
open(sys.argv[1], "wb").write(bytes(data))
PY
      ;;
      eof) damage_eof "$work/dmg/out.h5.ckpt" data ;;
      garbage) damage_eof "$work/dmg/out.h5.ckpt" garbage ;;
    esac
    rm -f "$work/dmg/out.h5" "$work/dmg/out.h5.done"
    (cd "$work/dmg" && timeout -k 10 60 "$mpirun" $np "$nrdiff" --restart "${params[@]}" \
       "$input" >out2 2>err2)
    rc=$?
    if [ $rc -eq 0 ] && grep -q "checkpoint rejected" "$work/dmg/err2" \
       && grep -qF "$expect" "$work/dmg/err2" \
       && grep -q "restarting from out.h5.ckpt.prev" "$work/dmg/out2" \
       && [ "$(science "$work/dmg/out.h5")" = "$ref" ]; then
      ok "$damage .ckpt, $np rank(s): rejected, .ckpt.prev used, identical science"
    else
      [ $rc -eq 124 ] && echo "       (no answer within 60 s: a hang)"
      cat "$work/dmg/err2"; ko "$damage .ckpt, $np rank(s) (exit $rc)"
    fi
  done
  # both damaged: exit 1, clear message, files untouched
  cp "$work/good.ckpt" "$work/dmg/out.h5.ckpt"
  truncate -s 1000 "$work/dmg/out.h5.ckpt"
  cp "$work/dmg/out.h5.ckpt" "$work/dmg/out.h5.ckpt.prev"
  rm -f "$work/dmg/out.h5" "$work/dmg/out.h5.done"
  before=$(sha256sum "$work/dmg/out.h5.ckpt" "$work/dmg/out.h5.ckpt.prev")
  (cd "$work/dmg" && "$mpirun" 2 "$nrdiff" --restart "${params[@]}" "$input" >out3 2>err3)
  rc=$?
  after=$(sha256sum "$work/dmg/out.h5.ckpt" "$work/dmg/out.h5.ckpt.prev")
  [ $rc -eq 1 ] && grep -q "no valid checkpoint" "$work/dmg/err3" && [ "$before" = "$after" ] \
    && [ ! -e "$work/dmg/out.h5" ] \
    && ok "both checkpoints damaged: exit 1, message, files untouched" \
    || { cat "$work/dmg/err3"; ko "both damaged (exit $rc)"; }
else
  cat "$work/dmg/err"; ko "could not make two checkpoints (exit $rc)"
fi

# Nothing lost: a fresh run refuses an existing checkpoint; a restart with a
# changed non-restartable key names it; a restartable key may change; a
# restart of a complete run is refused.
mkdir "$work/keep" && touch "$work/keep/STOP"
(cd "$work/keep" && "$mpirun" 2 "$nrdiff" "${params[@]}" "$input" >/dev/null 2>&1)
rm -f "$work/keep/STOP"
before=$(sha256sum <"$work/keep/out.h5.ckpt")
(cd "$work/keep" && "$nrdiff" "${params[@]}" "$input" >/dev/null 2>err)
[ $? -eq 2 ] && grep -q "out.h5.ckpt" "$work/keep/err" \
  && [ "$(sha256sum <"$work/keep/out.h5.ckpt")" = "$before" ] \
  && ok "fresh run with a checkpoint present: exit 2, checkpoint untouched" \
  || { cat "$work/keep/err"; ko "fresh run over a checkpoint"; }
(cd "$work/keep" && "$nrdiff" --restart "${params[@]}" -P grid.strength=[0,2] "$input" >/dev/null 2>err)
[ $? -eq 2 ] && grep -q "grid.strength" "$work/keep/err" \
  && ok "restart with a changed grid.strength: exit 2 naming the key" \
  || { cat "$work/keep/err"; ko "changed non-restartable key"; }
# Keys that change the run's shape (the particles, blocks, steps, output
# and trajectory cadences, the grid): the same, with the old and new value,
# on 1 and 2 ranks; the checkpoint untouched.
np=1
# key|old value|new value[|the new value as the message shows it]
for change in "ensemble.particles|1500|1600" "ensemble.block_size|100|50" \
              "time.steps|1200|1300" "output.every|10|20" \
              "output.trajectory_every|7|5" "output.trajectories|6|4" \
              "grid.n_train|[0, 20]|[0,20,40]|[0, 20, 40]" "grid.dimension|[3]|[4]"; do
  IFS='|' read -r key old new shown <<<"$change"
  shown=${shown:-$new}
  (cd "$work/keep" && "$mpirun" $np "$nrdiff" --restart "${params[@]}" -P "$key=$new" \
     "$input" >/dev/null 2>err)
  rc=$?
  if [ $rc -eq 2 ] && grep -qF "key '$key' is $shown now but was $old" "$work/keep/err" \
     && [ "$(sha256sum <"$work/keep/out.h5.ckpt")" = "$before" ] \
     && [ ! -e "$work/keep/out.h5.ckpt.prev" ] && [ ! -e "$work/keep/out.h5" ]; then
    ok "restart with a changed $key ($np rank(s)): exit 2 naming it, old and new value"
  else
    cat "$work/keep/err"; ko "changed shape key $key (exit $rc)"
  fi
  np=$((3 - np))
done
(cd "$work/keep" && "$mpirun" 2 "$nrdiff" --restart "${params[@]}" -P checkpoint.every=50 \
   -P run.blas_threads=1 "$input" >/dev/null 2>err) \
  && [ "$(science "$work/keep/out.h5")" = "$ref" ] \
  && ok "restart with changed restartable keys: identical science" \
  || { cat "$work/keep/err"; ko "changed restartable keys"; }
(cd "$work/keep" && "$nrdiff" --restart "${params[@]}" "$input" >/dev/null 2>err)
[ $? -eq 2 ] && grep -q "already complete" "$work/keep/err" \
  && ok "restart of a complete run: exit 2" || { cat "$work/keep/err"; ko "restart of a complete run"; }

finish
