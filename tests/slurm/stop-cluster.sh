#!/usr/bin/env bash
# Stop the test cluster of start-cluster.sh: cancel leftover jobs by id, then stop each daemon
# through its PID file (never by process name). Safe to run when nothing is running.
set -uo pipefail

# running PID: the process exists and is not a zombie (PID 1 here may reap late)
running() {
  [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1)" != Z ]
}

# alive PIDFILE NAME: the PID file names a running process whose command is NAME
alive() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  running "$pid" && [ "$(cat "/proc/$pid/comm")" = "$2" ]
}

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
