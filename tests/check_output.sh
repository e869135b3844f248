#!/usr/bin/env bash
# The HDF5 output: documented layout (doc/file-format.md) checked with h5py,
# byte-identical science at 1, 2 and 3 ranks, --grid-index, and nothing lost
# (an existing output is neither overwritten nor touched; no .tmp is left).
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

finish
