#!/bin/sh
# Start an app under cluster2 in a CI job, wait until it serves, and fail the job
# loudly when the port is already taken (cluster2 exits 69 before forking anything)
# or the app crashes at start (exit 70). Stop it at the end of the job with
#   npx cluster2 shutdown --pids "$PIDS"
#
#   examples/ci-start.sh server.js            # PORT=3000 by default
#   PORT=8080 examples/ci-start.sh server.js
#
# Environment: PORT, PIDS (./pids), LOG (./cluster2.log: the lifecycle log lines),
# START_TIMEOUT (seconds, 60), CLUSTER2 (the command: npx --no-install cluster2).
set -u

APP=${1:?usage: ci-start.sh APP [cluster2 start flags...]}
shift
PORT=${PORT:-3000}
PIDS=${PIDS:-./pids}
LOG=${LOG:-./cluster2.log}
START_TIMEOUT=${START_TIMEOUT:-60}
CLUSTER2=${CLUSTER2:-npx --no-install cluster2}

# shellcheck disable=SC2086 # CLUSTER2 is a command line
# stdout too, so that no CI runner waits on a pipe the server keeps open.
$CLUSTER2 start "$APP" --port "$PORT" --pids "$PIDS" --no-mon-port --log-format json "$@" </dev/null >"$LOG" 2>&1 &
# The command's pid: npx's (or npm's) when CLUSTER2 goes through npx, not the master's.
pid=$!

# The master's pid, from its lifecycle log lines (each carries it; the app's own JSON lines, which
# may carry a worker's pid, have no "event" after it); empty until it wrote one.
master_pid() {
  sed -n 's/^{"time":"[^"]*","level":"[a-z]*","pid":\([0-9][0-9]*\),"event":.*/\1/p' "$LOG" 2>/dev/null | head -n 1
}

deadline=$(( $(date +%s) + START_TIMEOUT ))
while ! grep -q '"event":"ready"' "$LOG" 2>/dev/null; do
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid"
    code=$?
    case $code in
      69) echo "ci-start: port $PORT is busy, not starting:" >&2 ;;
      70) echo "ci-start: the workers keep dying before they listen:" >&2 ;;
      64) echo "ci-start: cluster2 usage error:" >&2 ;;
      *) echo "ci-start: cluster2 exited with code $code:" >&2 ;;
    esac
    cat "$LOG" >&2
    exit "$code"
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "ci-start: not ready within ${START_TIMEOUT}s; stopping it" >&2
    master=$(master_pid)
    # The master itself: a SIGTERM to npx would not reach it.
    kill "${master:-$pid}" 2>/dev/null
    cat "$LOG" >&2
    exit 1
  fi
  sleep 0.2
done

echo "ci-start: $APP serves on port $PORT (master $(master_pid), log $LOG)"
