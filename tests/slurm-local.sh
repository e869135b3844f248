#!/usr/bin/env bash
# A real, single-node Slurm on localhost for tests, from Debian's packages
# (slurmctld, slurmd, slurm-client, munge).  Everything lives in DIR: a
# munge key and socket of its own, a generated slurm.conf, spool, state and
# logs; the daemons run as plain processes under setsid and are stopped by
# the PIDs recorded in DIR.
#
#   tests/slurm-local.sh up DIR     start; prints the SLURM_CONF to export
#   tests/slurm-local.sh down DIR   stop (safe to call twice, or after a
#                                   failed start)
set -u
cmd=${1:?up|down} dir=${2:?directory}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

down() {
  for f in slurmd slurmctld munged; do
    [ -f "$dir/$f.pid" ] && kill "$(cat "$dir/$f.pid")" 2>/dev/null
  done
  for i in $(seq 50); do
    alive=0
    for f in slurmd slurmctld munged; do
      [ -f "$dir/$f.pid" ] && kill -0 "$(cat "$dir/$f.pid")" 2>/dev/null && alive=1
    done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for f in slurmd slurmctld munged; do
    [ -f "$dir/$f.pid" ] && kill -9 "$(cat "$dir/$f.pid")" 2>/dev/null
    rm -f "$dir/$f.pid"
  done
  return 0
}

if [ "$cmd" = down ]; then down; exit 0; fi
[ "$cmd" = up ] || { echo "usage: $0 up|down DIR" >&2; exit 2; }

mkdir -p "$dir/munge" "$dir/spool" "$dir/state"
chmod 700 "$dir/munge"
dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$dir/munge/munge.key"
setsid munged -f --socket="$dir/munge/munge.socket" \
  --key-file="$dir/munge/munge.key" --pid-file="$dir/munged.pid" \
  --log-file="$dir/munged.log" --seed-file="$dir/munge/seed" \
  </dev/null >/dev/null 2>&1
for i in $(seq 50); do [ -S "$dir/munge/munge.socket" ] && break; sleep 0.1; done
[ -S "$dir/munge/munge.socket" ] || { echo "munged did not start" >&2; down; exit 1; }

# Ports away from the defaults, so a site Slurm is not disturbed.
cat >"$dir/slurm.conf" <<CONF
ClusterName=nrdifftest
SlurmctldHost=localhost
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=10
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmdSpoolDir=$dir/spool
StateSaveLocation=$dir/state
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=3600
KillWait=5
NodeName=localhost CPUs=8 State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"
setsid slurmctld -D -i -f "$SLURM_CONF" </dev/null >"$dir/slurmctld.out" 2>&1 &
echo $! >"$dir/slurmctld.pid"
setsid slurmd -D -N localhost -f "$SLURM_CONF" </dev/null >"$dir/slurmd.out" 2>&1 &
echo $! >"$dir/slurmd.pid"
for i in $(seq 150); do
  state=$(sinfo -h -N -o %t 2>/dev/null | head -1)
  [ "$state" = idle ] && { echo "$SLURM_CONF"; exit 0; }
  sleep 0.2
done
echo "Slurm did not become idle (state: '${state:-none}'); logs in $dir" >&2
tail -5 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 2>/dev/null
down
exit 1
