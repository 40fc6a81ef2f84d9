# shellcheck shell=bash
# Helpers shared by start-cluster.sh and stop-cluster.sh (sourced, not run).

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
