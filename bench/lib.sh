# shellcheck shell=bash
# Shell helpers shared by bench/proxy.sh and bench/propagation.sh (sourced). They use
# the caller's `die` and its `PIDS` array (processes to stop on exit).

# forget_pid PID: drop a stopped process from the cleanup list.
forget_pid() {
  local pid="$1" kept=() p
  for p in "${PIDS[@]}"; do
    [[ "$p" == "$pid" ]] || kept+=("$p")
  done
  PIDS=("${kept[@]}")
}

# run COMMAND...: run in the background and wait for it. Bash runs traps only between
# commands, but `wait` is interrupted by signals: Ctrl-C or SIGTERM stop the bench at
# once, and cleanup kills COMMAND too.
run() {
  local pid rc=0
  "$@" &
  pid=$!
  PIDS+=("$pid")
  wait "$pid" || rc=$?
  forget_pid "$pid"
  return "$rc"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: a loopback port nothing listens on (checked, then used shortly after).
free_port() {
  local port i
  for ((i = 0; i < 100; i++)); do
    port=$((20000 + RANDOM % 40000))
    if ! port_open "$port"; then
      echo "$port"
      return
    fi
  done
  die "no free port found"
}

# render TEMPLATE OUT NAME=VALUE...: copy TEMPLATE replacing each @NAME@ with VALUE.
render() {
  local template="$1" out="$2" pair expr=()
  shift 2
  for pair in "$@"; do
    expr+=(-e "s|@${pair%%=*}@|${pair#*=}|g")
  done
  sed "${expr[@]}" "$template" >"$out"
  if grep -q '@[A-Z_]*@' "$out"; then
    die "unreplaced placeholder in $out: $(grep -o '@[A-Z_]*@' "$out" | head -1)"
  fi
}

# expect WHAT GOT EXPECTED: die unless GOT matches the pattern EXPECTED.
expect() {
  # shellcheck disable=SC2053 # EXPECTED is a glob pattern on purpose.
  [[ "$2" == $3 ]] || die "$1: expected '$3', got '$2'"
}

# cleanup_simple: the EXIT trap of grpc.sh and websocket.sh: stop every process in
# PIDS (SIGTERM, then reap), then remove TMP unless KEEP_TMP=1.
cleanup_simple() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n "${TMP:-}" && -d "$TMP" && "${KEEP_TMP:-0}" != 1 ]]; then rm -rf "$TMP"; fi
}

# wait_open PORT PID NAME LOG: until PORT accepts connections (30 s at most); dies with
# LOG when PID exits first.
wait_open() {
  local i
  for ((i = 0; i < 300; i++)); do
    port_open "$1" && return 0
    kill -0 "$2" 2>/dev/null || { cat "$4" >&2 || true; die "$3 exited before listening"; }
    sleep 0.1
  done
  die "$3 did not listen on $1"
}

# cpu_ticks PID...: user + system CPU time of the processes, in clock ticks (fields 14
# and 15 of /proc/PID/stat, counted from the closing parenthesis of the command name).
cpu_ticks() {
  local pid total=0 ticks
  for pid in "$@"; do
    ticks=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }')
    total=$((total + ${ticks:-0}))
  done
  echo "$total"
}
# shellcheck disable=SC2034 # used by the scripts that source this file
CLK_TCK=$(getconf CLK_TCK)

# start_gatehouse_worker CONFIG: `gatehouse gateway` with one worker, no access log, on
# PROXY_CPU, every listener on a free loopback port; logs in $TMP. Sets GATEHOUSE_PID
# and GATEHOUSE_HTTP (host:port of the HTTP listener) once it has bound (30 s at most).
start_gatehouse_worker() {
  local i http=""
  # shellcheck disable=SC2153 # GATEHOUSE_BIN and PROXY_CPU are the caller's settings
  taskset -c "$PROXY_CPU" "$GATEHOUSE_BIN" gateway --config "$1" \
    --listen 127.0.0.1:0 --https-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
    --bound-addresses-file "$TMP/addresses.json" --workers 1 --access-log=false \
    >"$TMP/gatehouse.out" 2>"$TMP/gatehouse.log" &
  GATEHOUSE_PID=$!
  PIDS+=("$GATEHOUSE_PID")
  for ((i = 0; i < 300; i++)); do
    http=$(sed -n 's/.*"http" *: *"\([^"]*\)".*/\1/p' "$TMP/addresses.json" 2>/dev/null || true)
    [[ -n "$http" ]] && break
    kill -0 "$GATEHOUSE_PID" 2>/dev/null || { cat "$TMP/gatehouse.log" >&2; die "gatehouse exited"; }
    sleep 0.1
  done
  [[ -n "$http" ]] || die "gatehouse did not start"
  # shellcheck disable=SC2034 # read by the scripts that source this file
  GATEHOUSE_HTTP=$http
}
