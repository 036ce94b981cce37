# Helpers for the peer start/stop scripts. Source, don't run.
# State, logs and pid files go under $CIAM_PEERS_RUN (default: target/peers in the repo).
PEERS_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$PEERS_HERE/../.." && pwd)"
PEERS_RUN="${CIAM_PEERS_RUN:-$REPO_ROOT/target/peers}"

# wait_for <seconds> <command...>: poll every 0.1 s until the command succeeds.
wait_for() {
  local limit="$1"; shift
  local deadline=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

# free_port: an unused TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# alive <pid>: true while the process runs (a zombie counts as gone).
alive() {
  local s
  s="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [ -n "$s" ] && [ "${s#Z}" = "$s" ]
}

# stop_pidfile <pidfile>: TERM, wait up to 5 s, then KILL.
stop_pidfile() {
  local pf="$1" pid i=0
  [ -f "$pf" ] || return 0
  pid="$(cat "$pf")"
  if [ -n "$pid" ] && alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    while alive "$pid" && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pf"
}
