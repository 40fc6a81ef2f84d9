#!/usr/bin/env bash
# Stop the test cluster of start-cluster.sh: cancel leftover jobs by id, then stop each daemon
# through its PID file (never by process name), and remove the jobs' network namespace. Safe to
# run when nothing is running.
set -uo pipefail

# running, alive
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1

if alive /run/slurmctld.pid slurmctld; then
  jobs=$(squeue -h -o %A 2>/dev/null | tr '\n' ' ')
  if [ -n "${jobs// }" ]; then
    # shellcheck disable=SC2086
    scancel $jobs 2>/dev/null || true
    for _ in $(seq 40); do
      [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break
      sleep 0.5
    done
  fi
fi

for entry in slurmd:/run/slurmd.pid slurmctld:/run/slurmctld.pid slurmdbd:/run/slurmdbd.pid \
             mariadbd:/run/mysqld/mysqld.pid munged:/run/munge/munged.pid; do
  name=${entry%%:*}
  file=${entry#*:}
  if alive "$file" "$name"; then
    pid=$(cat "$file")
    kill "$pid"
    for _ in $(seq 40); do running "$pid" || break; sleep 0.25; done
    if running "$pid"; then
      echo "stop-cluster.sh: $name ($pid) ignored SIGTERM; sending SIGKILL" >&2
      kill -9 "$pid" 2>/dev/null || true
    fi
    echo "stopped $name ($pid)"
  fi
  rm -f "$file"
done
# the jobs' network namespace and its veth pair (start-cluster.sh)
ip link del biv-ctl 2>/dev/null || true
ip netns del biv-jobs 2>/dev/null || true
