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
