#!/usr/bin/env bash
# Start a single-node Slurm cluster for the tests (Debian 12, Slurm 22.05, run as root, no systemd).
#
# Installs slurmctld, slurmd, slurmdbd, MariaDB and munge (apt, without Recommends), writes
# /etc/slurm/{slurm,gres,slurmdbd}.conf and starts the daemons; each writes a PID file that
# tests/slurm/stop-cluster.sh uses. Accounting (slurmdbd) is on, so `sacct` has Slurm's records
# that tests/test_slurm.py checks (partition, GPU requests, states, job steps). MinJobAge=600
KillWait=10
# keeps finished jobs in squeue, which the profile uses for job states.
#
# Safe to run again: daemons that are already up are kept (restarted only if the config changed)
# and a node left DRAIN/DOWN by an earlier run is resumed.
#
# No network in jobs, as on many clusters: slurmd, and so every job, runs in the network
# namespace $NETNS, joined to this host's slurmctld only by a veth pair (host $CTL_ADDR, node
# $NODE_ADDR). A server on this host's loopback (the tests' stand-in for a publisher) is out of
# the jobs' reach; the submit host (this one) reaches it. KillWait=10: a job past its time limit
# gets SIGTERM, then SIGKILL 10 s later.
#
# The node "localhost" is declared bigger than this machine (SlurmdParameters=config_overrides):
# NODE_CPUS CPUs, NODE_MEM_MB of memory and GPU_COUNT fake GPUs of type GPU_TYPE, so that the
# real requests of profiles/slurm (e.g. 16 GB for prepare_dataset) schedule on a small CI machine.
# Nothing enforces these limits here (task/none, no cgroups). A fake GPU is a character device
# /run/fake-gpu/nvidiaN (like /dev/null; Slurm needs a File= per GPU and then sets
# CUDA_VISIBLE_DEVICES). Partitions: "main" (default) and "gpu";
# /etc/slurm/snakemake-partitions.yaml describes them for the plugin's partition auto-selection
# (GPU jobs -> gpu, the rest -> main; used by tests/slurm/profile).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
GPU_TYPE=${GPU_TYPE:-h100}
GPU_COUNT=${GPU_COUNT:-4}
NODE_CPUS=${NODE_CPUS:-16}
NODE_MEM_MB=${NODE_MEM_MB:-65536}
CLUSTER=biv
NETNS=biv-jobs
CTL_ADDR=10.203.18.1
NODE_ADDR=10.203.18.2
ETC=/etc/slurm
LOG=/var/log/slurm

[ "$(id -u)" = 0 ] || { echo "start-cluster.sh: must run as root" >&2; exit 1; }

# running, alive
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

# wait_for SECONDS CMD...: poll CMD every 0.5 s
wait_for() {
  local n=$(( $1 * 2 )); shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "start-cluster.sh: timed out waiting for: $*" >&2
  return 1
}

# 1. packages (skip apt when everything is there already)
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
   || ! command -v slurmdbd >/dev/null || ! command -v sinfo >/dev/null \
   || ! command -v munged >/dev/null || ! command -v mariadbd >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurmdbd slurm-client munge mariadb-server >/dev/null
fi

# 2. the jobs' network: a namespace whose only link is a veth pair to this host
if ! ip netns list | grep -qw "$NETNS"; then
  ip netns add "$NETNS"
fi
if ! ip link show biv-ctl >/dev/null 2>&1; then
  ip link add biv-ctl type veth peer name biv-node
  ip link set biv-node netns "$NETNS"
  ip addr add "$CTL_ADDR/30" dev biv-ctl
  ip -n "$NETNS" addr add "$NODE_ADDR/30" dev biv-node
fi
ip link set biv-ctl up
ip -n "$NETNS" link set biv-node up
ip -n "$NETNS" link set lo up

# 3. munge (the Debian postinst created /etc/munge/munge.key)
mkdir -p /run/munge "$LOG" /var/spool/slurmctld /var/spool/slurmd /run/fake-gpu
chown munge:munge /run/munge
if ! alive /run/munge/munged.pid munged; then
  rm -f /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged --force
fi
wait_for 10 sh -c 'munge -n | unmunge'

# 4. config
FILES=()
for i in $(seq 0 $(( GPU_COUNT - 1 ))); do
  # a character device (the same as /dev/null): slurmd wants one per GPU
  dev=/run/fake-gpu/nvidia$i
  [ -c "$dev" ] || { rm -f "$dev"; mknod -m 666 "$dev" c 1 3; }
  FILES+=("$dev")
done
GPU_FILES=$(IFS=,; echo "${FILES[*]}")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cat > "$TMP/slurm.conf" <<CONF
ClusterName=$CLUSTER
SlurmctldHost=localhost($CTL_ADDR)
AuthType=auth/munge
SlurmUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
JobCompType=jobcomp/none
ReturnToService=2
MailProg=/bin/true
MinJobAge=600
KillWait=10
GresTypes=gpu
NodeName=localhost NodeAddr=$NODE_ADDR CPUs=$NODE_CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$NODE_CPUS ThreadsPerCore=1 RealMemory=$NODE_MEM_MB Gres=gpu:$GPU_TYPE:$GPU_COUNT State=UNKNOWN
PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=localhost MaxTime=INFINITE State=UP
CONF
cat > "$TMP/gres.conf" <<CONF
AutoDetect=off
NodeName=localhost Name=gpu Type=$GPU_TYPE File=$GPU_FILES
CONF
cat > "$TMP/snakemake-partitions.yaml" <<CONF
# For snakemake-executor-plugin-slurm (slurm-partition-config): GPU jobs go to "gpu".
partitions:
  main:
    max_gpu: 0
  gpu:
    max_gpu: $GPU_COUNT
    available_gpu_models: [$GPU_TYPE]
CONF
cat > "$TMP/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=/run/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm-ci
StorageLoc=slurm_acct_db
CONF
mkdir -p "$ETC"
changed=0
for f in slurm.conf gres.conf slurmdbd.conf snakemake-partitions.yaml; do
  if ! cmp -s "$TMP/$f" "$ETC/$f"; then
    install -m 644 "$TMP/$f" "$ETC/$f"
    changed=1
  fi
done
chmod 600 "$ETC/slurmdbd.conf"
if [ "$changed" = 1 ]; then   # restart daemons that run with an older config
  for d in slurmd slurmctld slurmdbd; do
    if alive "/run/$d.pid" "$d"; then
      pid=$(cat "/run/$d.pid")
      kill "$pid"
      wait_for 20 sh -c "! [ -r /proc/$pid/stat ] || grep -q ') Z ' /proc/$pid/stat"
    fi
  done
fi

# 5. accounting: MariaDB (no systemd: started directly) + slurmdbd
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
if ! alive /run/mysqld/mysqld.pid mariadbd; then
  rm -f /run/mysqld/mysqld.pid
  setsid /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 \
    --pid-file=/run/mysqld/mysqld.pid >>"$LOG/mariadb.log" 2>&1 </dev/null &
fi
wait_for 60 mariadb -e 'select 1'
mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
  CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm-ci';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
if ! alive /run/slurmdbd.pid slurmdbd; then
  rm -f /run/slurmdbd.pid
  /usr/sbin/slurmdbd
fi
wait_for 30 sacctmgr -n list cluster
if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
  sacctmgr -i add cluster "$CLUSTER" >/dev/null
fi

# 6. controller and node daemon (they daemonize and write their PID files)
if ! alive /run/slurmctld.pid slurmctld; then
  rm -f /run/slurmctld.pid
  /usr/sbin/slurmctld
fi
wait_for 30 scontrol ping
if ! alive /run/slurmd.pid slurmd; then
  rm -f /run/slurmd.pid
  # node name "localhost" whatever the hostname; in the jobs' namespace
  # (nsenter, not `ip netns exec`, which mounts a sysfs of its own without cgroups)
  nsenter --net="/run/netns/$NETNS" /usr/sbin/slurmd -N localhost
fi

# 7. the node must be usable: clear a DRAIN/DOWN state kept from an earlier run
node_state() { sinfo -h -N -n localhost -o %T 2>/dev/null | head -1; }
node_ready() { case "$(node_state)" in idle|mixed|allocated|completing) return 0;; esac; return 1; }
for _ in $(seq 60); do
  node_ready && break
  case "$(node_state)" in
    *drain*|down*|inval*|fail*)
      scontrol update nodename=localhost state=resume 2>/dev/null || true ;;
  esac
  sleep 0.5
done
if ! node_ready; then
  echo "start-cluster.sh: node not usable (state: $(node_state)); see $LOG/" >&2
  scontrol show node localhost >&2 || true
  exit 1
fi
sinfo -o '%P %a %D %T %N %G'
