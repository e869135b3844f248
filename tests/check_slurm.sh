#!/usr/bin/env bash
# The job scripts in jobs/ on a real Slurm (tests/slurm-local.sh starts one
# on localhost from Debian's packages and stops it at the end, also on
# failure): a sweep as a job array with the post-processing job depending on
# it; a restart chain whose segments hit their time limit mid-run, ending
# with output identical to an uninterrupted run; a chain that fails without
# a checkpoint stops loudly.  Skips (exit 77) when not root or when Slurm
# or munge are not installed (./quickstart.sh check installs them).
set -u
. "$(dirname "$0")/testlib.sh"
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: the local Slurm test runs its daemons as root"; exit 77
fi
for c in slurmctld slurmd sbatch munged; do
  command -v $c >/dev/null || {
    echo "SKIP: $c not installed (Debian: slurmctld slurmd slurm-client munge)"; exit 77; }
done
need_h5py

cleanup() { "$here/slurm-local.sh" down "$work/slurm" >/dev/null 2>&1; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 1' INT TERM

SLURM_CONF=$("$here/slurm-local.sh" up "$work/slurm") \
  || { ko "local Slurm did not start"; finish; exit 1; }
export SLURM_CONF
ok "local Slurm up ($SLURM_CONF)"
# What the batch jobs inherit (sbatch exports the environment): the program,
# and Open MPI's permission to run as root on more ranks than cores.
export NRDIFF="$nrdiff" OPENBLAS_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
jobs_dir="$top_src/jobs"
input="$top_src/input/default.yml"

# Wait until job $1 (and, for an array, all its tasks) has ended; prints the
# final states.  Gives up after $2 seconds.
wait_job() {
  local t=0 states
  while [ $t -lt "$2" ]; do
    states=$(scontrol show job -o "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | sort -u)
    if [ -n "$states" ] && ! echo "$states" | grep -q -E 'PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUED'; then
      echo $states; return 0
    fi
    sleep 1; t=$((t + 1))
  done
  echo "timeout: $states"; return 1
}

# ---------------------------------------------------------------- sweep
# Two grid points as an array throttled to one task at a time, and the
# post-processing job after it.
sweep=(-P grid.strength=[0,1.5] -P ensemble.particles=2000 -P ensemble.block_size=500
       -P time.steps=400 -P output.every=20 -P output.overwrite=false)
mkdir "$work/sweep"
out=$(cd "$work/sweep" && "$jobs_dir/nrdiff-sweep.sh" -t 1 "$input" "$work/sweep/run" "${sweep[@]}" 2>&1)
array=$(echo "$out" | sed -n 's/.*array job \([0-9]*\),.*/\1/p')
post=$(echo "$out" | sed -n 's/.*post-processing job \([0-9]*\).*/\1/p')
if [ -n "$array" ] && [ -n "$post" ]; then
  ok "sweep submitted: array $array, post $post"
  st_array=$(wait_job "$array" 180); st_post=$(wait_job "$post" 60)
  [ "$st_array" = "JobState=COMPLETED" ] && [ "$st_post" = "JobState=COMPLETED" ] \
    && ok "array tasks and post-processing completed" \
    || { ko "sweep states: array $st_array, post $st_post"; cat "$work"/sweep/*.out; }
  # the direct, unsplit run of the same sweep as reference
  (cd "$work/sweep" && "$here/mpirun.sh" 2 "$nrdiff" "${sweep[@]}" -P output.file=all.h5 \
     "$input" >/dev/null 2>&1)
  good=0
  for i in 0 1; do
    f="$work/sweep/run_$i.h5"
    [ -f "$f" ] && [ "$("${reader[@]}" digest "$f" --group points/000$i)" = \
                      "$("${reader[@]}" digest "$work/sweep/all.h5" --group points/000$i)" ] \
      && [ "$(/usr/bin/python3 -c "import h5py; print(h5py.File('$f')['code'].attrs['slurm_array_task_id'])")" = $i ] \
      && good=$((good + 1))
  done
  [ $good -eq 2 ] && ok "task I wrote grid point I, identical to the unsplit run, task id in /code" \
    || ko "array outputs ($good of 2 right)"
  [ "$(grep -c 'critical time: measured' "$work/sweep/run_summary.txt" 2>/dev/null)" = 2 ] \
    && ok "post-processing summarised both outputs after the array" \
    || ko "post-processing summary"
  [ "$(wc -l <"$work/sweep/run.summary.csv" 2>/dev/null)" = 3 ] \
    && ok "nrdiff-post wrote one summary row per grid point" \
    || ko "nrdiff-post summary of the sweep"
else
  echo "$out"; ko "sweep submission"
fi

# ----------------------------------------------------------- single run
# jobs/nrdiff-run.sbatch: a run that completes in one job; submitted again
# it finds the run complete and refuses (exit 2) rather than redo it.
mkdir "$work/single"
one=$(cd "$work/single" && sbatch --parsable "$jobs_dir/nrdiff-run.sbatch" "$input" \
        "${sweep[@]}" -P output.file=single.h5 2>&1)
st=$(wait_job "$one" 120)
[ "$st" = "JobState=COMPLETED" ] && [ -f "$work/single/single.h5.done" ] \
  && [ "$(/usr/bin/python3 -c "import h5py; print(h5py.File('$work/single/single.h5')['code'].attrs['slurm_job_id'])")" = "$one" ] \
  && ok "nrdiff-run.sbatch: complete, job id $one in /code" \
  || { cat "$work/single"/*.out; ko "single run ($st)"; }
before=$(sha256sum <"$work/single/single.h5" 2>/dev/null)
again=$(cd "$work/single" && sbatch --parsable "$jobs_dir/nrdiff-run.sbatch" "$input" \
          "${sweep[@]}" -P output.file=single.h5 2>&1)
st=$(wait_job "$again" 60)
[ "$st" = "JobState=FAILED" ] && grep -q "does not overwrite" "$work/single/nrdiff-$again.out" \
  && [ "$(sha256sum <"$work/single/single.h5")" = "$before" ] \
  && ok "resubmitting a complete run: refused, output untouched" \
  || { cat "$work/single/nrdiff-$again.out"; ko "resubmitted complete run ($st)"; }

# ---------------------------------------------------------------- chain
# A run of 60-90 s on 2 quiet cores (longer while other tests share them),
# in segments with a 1-minute limit and USR1 45 s before it: Slurm (which
# checks limits about every 30 s) signals each segment 15-45 s in, so the
# run cannot finish in one segment; up to 12 segments are allowed for a
# busy machine.
long=(-P grid.strength=[0,0.75,2] -P ensemble.particles=40000 -P ensemble.block_size=1000
      -P time.steps=10000 -P output.every=50 -P output.file=chain.h5 -P output.overwrite=false
      -P checkpoint.interval=0 -P "experiment.protocol=[generate]")
mkdir "$work/chain"
(cd "$work/chain" && SBATCH_OPTIONS="--time=1 --signal=B:USR1@45" \
   "$jobs_dir/nrdiff-chain.sh" -m 12 "$input" "${long[@]}" >submit.out 2>&1)
first=$(sed -n 's/.*submitted as job \([0-9]*\).*/\1/p' "$work/chain/submit.out")
if [ -n "$first" ]; then
  ok "chain submitted (job $first)"
  t=0
  while [ ! -e "$work/chain/chain.h5.done" ] && [ ! -e "$work/chain/chain.h5.chain-failed" ] \
        && [ $t -lt 900 ]; do sleep 2; t=$((t + 2)); done
  segments=$(ls "$work/chain"/nrdiff-chain-*.out 2>/dev/null | wc -l)
  if [ -e "$work/chain/chain.h5.done" ] && [ "$segments" -ge 2 ]; then
    ok "chain complete after $segments segments (time limits hit mid-run)"
  else
    ko "chain: done=$([ -e "$work/chain/chain.h5.done" ] && echo yes || echo no), $segments segment(s)"
    cat "$work/chain"/*.out
  fi
  grep -h "USR1" "$work/chain"/nrdiff-chain-*.out | head -1 | grep -q USR1 \
    && ok "a segment received USR1 from Slurm and checkpointed" || ko "no USR1 seen"
  mkdir "$work/ref"
  (cd "$work/ref" && "$here/mpirun.sh" 2 "$nrdiff" "${long[@]}" "$input" >/dev/null 2>&1)
  [ "$("${reader[@]}" digest "$work/chain/chain.h5" --group points)" = \
    "$("${reader[@]}" digest "$work/ref/chain.h5" --group points)" ] \
    && ok "chained output identical to an uninterrupted run" \
    || ko "chained output differs from the uninterrupted run"
else
  cat "$work/chain/submit.out"; ko "chain submission"
fi

# A chain whose segment fails without a checkpoint (U from a missing file)
# stops loudly: OUTPUT.chain-failed, and no further segment.
mkdir "$work/bad"
(cd "$work/bad" && SBATCH_OPTIONS="--time=1" "$jobs_dir/nrdiff-chain.sh" "$input" \
   -P forward.u=file -P forward.u_file=missing.h5 -P output.file=bad.h5 >submit.out 2>&1)
bad=$(sed -n 's/.*submitted as job \([0-9]*\).*/\1/p' "$work/bad/submit.out")
[ -n "$bad" ] && wait_job "$bad" 60 >/dev/null
sleep 2
[ -n "$bad" ] && grep -q "left no checkpoint" "$work/bad/bad.h5.chain-failed" 2>/dev/null \
  && [ "$(ls "$work/bad"/nrdiff-chain-*.out | wc -l)" -eq 1 ] \
  && [ -z "$(squeue -h 2>/dev/null)" ] \
  && ok "failing segment without checkpoint: chain stopped, reason in bad.h5.chain-failed" \
  || { cat "$work/bad"/*.out; ko "failing chain"; }

finish
