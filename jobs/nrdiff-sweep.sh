#!/bin/bash
# Submit a whole sweep: a job array with one task per grid point, and a
# post-processing job that starts when every task has succeeded.
#
#   jobs/nrdiff-sweep.sh [-t MAX_RUNNING] run.yml OUTPUT_BASE [nrdiff options]
#
# The number of grid points is read from the plan (nrdiff --dry-run).
# sbatch options go into SBATCH_OPTIONS (e.g. "--time=04:00:00 -p long").
set -eu
throttle=8
if [ "${1:-}" = -t ]; then throttle=$2; shift 2; fi
params=${1:?usage: nrdiff-sweep.sh [-t MAX_RUNNING] PARAMS.yml OUTPUT_BASE [options]}
base=${2:?output base missing}
shift 2
NRDIFF=${NRDIFF:-nrdiff}
here=$(cd "$(dirname "$0")" && pwd)
n=$("$NRDIFF" --dry-run "$@" "$params" | awk '/grid points +:/ { print $4; exit }')
[ -n "$n" ] || { echo "nrdiff-sweep: could not read the plan of $params" >&2; exit 2; }
export NRDIFF_JOBS_DIR="$here"
# shellcheck disable=SC2086
array=$(sbatch --parsable ${SBATCH_OPTIONS:-} --array=0-$((n - 1))%"$throttle" \
  "$here/nrdiff-array.sbatch" "$params" "$base" "$@")
post=$(sbatch --parsable --dependency=afterok:"$array" "$here/nrdiff-post.sbatch" "$base")
echo "nrdiff-sweep: $n grid point(s): array job $array, post-processing job $post"
