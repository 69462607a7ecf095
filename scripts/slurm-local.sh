#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the sweep tests and for trying
# `nasp-tui sweep --launcher slurm` without a cluster. Run as root; no systemd needed.
#
#   scripts/slurm-local.sh start    # install slurm-wlm and munge (apt-get) when missing, then
#                                   # start munged, slurmctld and slurmd; idempotent
#   scripts/slurm-local.sh stop     # stop the three daemons this script started
#   scripts/slurm-local.sh status   # exit 0 when the controller answers and the node is up
#
# The node is this machine (`hostname`) with CPUs=2; accounting is off (so `sacct` fails and
# nasp-tui reads job states from `squeue`). State, spool, logs and pid files live in
# $NASP_TUI_SLURM_DIR (default /var/tmp/nasp-tui-slurm). /etc/slurm/slurm.conf is written only
# when there is none, or when it is one this script wrote (it never replaces a real cluster's).
set -euo pipefail

DIR=${NASP_TUI_SLURM_DIR:-/var/tmp/nasp-tui-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by nasp-tui scripts/slurm-local.sh"
NODE=$(hostname)

say() { echo "slurm-local: $*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    say "run as root (it installs packages and starts daemons)"
    exit 2
  fi
}

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
     && command -v sbatch >/dev/null && command -v munged >/dev/null; then
    return
  fi
  say "installing slurm-wlm and munge (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq slurm-wlm munge >/dev/null
}

write_conf() {
  if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    say "$CONF exists and was not written by this script: using it as it is"
    return
  fi
  mkdir -p /etc/slurm "$DIR/ctld" "$DIR/d"
  cat >"$CONF.tmp" <<EOF
$MARK
ClusterName=nasptui
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/d
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=3600
KillWait=30
SchedulerParameters=sched_interval=2
NodeName=$NODE CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$CONF.tmp" "$CONF"
}

# Whether the process a pid file names runs (an exited one that nobody reaped does not count).
pid_up() {
  local p state
  p=$(cat "$1" 2>/dev/null) || return 1
  state=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}
munge_up() { pid_up /run/munge/munged.pid; }

start_munge() {
  munge_up && return
  mkdir -p /run/munge /var/lib/munge /var/log/munge /etc/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  fi
  chown munge:munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
  chmod 400 /etc/munge/munge.key
  chmod 755 /run/munge
  su -s /bin/sh munge -c /usr/sbin/munged
  for _ in $(seq 50); do munge_up && return; sleep 0.1; done
  say "munged did not start (see /var/log/munge/munged.log)"
  exit 1
}

up() {
  scontrol ping 2>/dev/null | grep -q "is UP" \
    && sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated|completing)'
}

start() {
  need_root
  install
  write_conf
  if up; then
    say "already up (node $NODE)"
    return
  fi
  start_munge
  pid_up "$DIR/slurmctld.pid" || slurmctld
  for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q "is UP" && break; sleep 0.1; done
  pid_up "$DIR/slurmd.pid" || slurmd
  for _ in $(seq 150); do
    if up; then
      say "up: controller and node $NODE (CPUs=2); stop with $0 stop"
      return
    fi
    # A node that was down when the controller last saw it comes back once asked.
    scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
    sleep 0.2
  done
  say "the node did not come up: see $DIR/slurmctld.log and $DIR/slurmd.log"
  exit 1
}

stop() {
  need_root
  for f in "$DIR/slurmd.pid" "$DIR/slurmctld.pid" /run/munge/munged.pid; do
    if pid_up "$f"; then
      kill "$(cat "$f" 2>/dev/null)" 2>/dev/null || true
      for _ in $(seq 100); do pid_up "$f" || break; sleep 0.1; done
    fi
  done
  say "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) up ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
