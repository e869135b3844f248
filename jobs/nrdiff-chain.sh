#!/bin/bash
# A restart chain: run nrdiff in segments of one Slurm job each until the
# run is complete, each segment continuing from the previous checkpoint.
#
#   jobs/nrdiff-chain.sh [-m MAX_SEGMENTS] run.yml [nrdiff options]
#
# Submits the first segment (jobs/nrdiff-segment.sbatch); every segment that
# stops with a checkpoint (exit 3: its time limit came) submits the next one
# with --dependency=afterany on itself.  The chain ends when OUTPUT.done
# appears.  It stops, loudly, when a segment fails without leaving a valid
# checkpoint, or after MAX_SEGMENTS (default 20): then OUTPUT.chain-failed
# says why.  sbatch options (time, tasks, partition, account) go into the
# environment variable SBATCH_OPTIONS or into the #SBATCH lines.
set -eu
max=20
if [ "${1:-}" = -m ]; then max=$2; shift 2; fi
params=${1:?usage: nrdiff-chain.sh [-m MAX_SEGMENTS] PARAMS.yml [nrdiff options]}
here=$(cd "$(dirname "$0")" && pwd)
export NRDIFF_CHAIN_SCRIPT="$here/nrdiff-segment.sbatch"
export NRDIFF_CHAIN_MAX=$max NRDIFF_CHAIN_SEGMENT=1
# shellcheck disable=SC2086
job=$(sbatch --parsable ${SBATCH_OPTIONS:-} "$NRDIFF_CHAIN_SCRIPT" "$@")
echo "nrdiff-chain: segment 1 submitted as job $job"
