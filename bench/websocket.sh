#!/usr/bin/env bash
# WebSocket side by side: echo round trips through Gatehouse (a WebSocket API, ws://
# backend) vs through nginx (proxy_pass with Upgrade/Connection passed on), to the same
# echo backend, loaded by the same client. Prints echoes/s, messages/s, latency and each
# proxy's CPU time per relayed message, and their ratios. See bench/README.md.
#
# Backend and client are crates/cli/examples/websocket-bench.rs (tokio-tungstenite, one
# thread each): the client keeps CONNECTIONS WebSockets open and on each sends a SIZE-byte
# binary message and waits for its echo, again and again. An echo is two messages
# through the proxy (one each way).
#
# Layout as in proxy.sh: the proxy under test alone on PROXY_CPU (default 0); backend
# and client on LOAD_CPU (default 1). Everything on loopback, in a temp dir removed on
# exit (KEEP_TMP=1 keeps it). The summary is also saved under bench/results/.
#
# Settings (environment):
#   DURATION=10  WARMUP=2  CONNECTIONS=32  SIZE=128   load (seconds; message bytes)
#   BASELINE=1                                        also load the backend directly
#   PROXY_CPU=0  LOAD_CPU=1                           core pinning
#   GATEHOUSE_BIN=target/release/gatehouse  NGINX=nginx
#   BENCH_BIN=target/release/examples/websocket-bench
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly BENCH="$ROOT/bench"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
SIZE="${SIZE:-128}"
BASELINE="${BASELINE:-1}"
PROXY_CPU="${PROXY_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
GATEHOUSE_BIN="${GATEHOUSE_BIN:-$ROOT/target/release/gatehouse}"
BENCH_BIN="${BENCH_BIN:-$ROOT/target/release/examples/websocket-bench}"
NGINX="${NGINX:-nginx}"
KEEP_TMP="${KEEP_TMP:-0}"

log() { printf '[websocket-bench] %s\n' "$*" >&2; }
die() {
  printf '[websocket-bench] error: %s\n' "$*" >&2
  exit 1
}

PIDS=()
TMP=""
trap cleanup_simple EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# client URL CONNECTIONS SECONDS: one client run; prints its result line.
client() {
  taskset -c "$LOAD_CPU" "$BENCH_BIN" client "$1" "$2" "$3" "$SIZE"
}

# field NAME LINE: the value after NAME in a client result line.
field() { awk -v name="$1" '{ for (i = 1; i < NF; i++) if ($i == name) print $(i + 1) }' <<<"$2"; }

# check URL NAME: one connection for a second must echo, without errors.
check() {
  local line
  line=$(client "$1" 1 1) || die "$2: the client failed"
  [[ "$(field errors "$line")" == 0 && "$(field echoes "$line")" -gt 0 ]] ||
    die "$2: no clean echo through $1: $line"
}

# load NAME URL PID...: warm up, then measure; sets ECHOES (per second), P50, P99, ERRORS
# and CPU_US (the PIDs' CPU time per relayed message; 0 without PIDs).
ECHOES=0 P50=0 P99=0 ERRORS=0 CPU_US=0
load() {
  local name="$1" url="$2" line before after echoes
  shift 2
  client "$url" "$CONNECTIONS" "$WARMUP" >/dev/null
  before=$(cpu_ticks "$@")
  line=$(client "$url" "$CONNECTIONS" "$DURATION")
  after=$(cpu_ticks "$@")
  printf '%s\n' "$line" >"$TMP/$name.txt"
  echoes=$(field echoes "$line")
  [[ -n "$echoes" ]] || die "could not parse the client's output for $name: $line"
  ECHOES=$(awk -v n="$echoes" -v s="$DURATION" 'BEGIN { printf "%.0f", n / s }')
  P50=$(field p50_us "$line") P99=$(field p99_us "$line") ERRORS=$(field errors "$line")
  CPU_US=0
  if (($# > 0)); then
    CPU_US=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$echoes" \
      'BEGIN { printf "%.2f", (n > 0 ? t * 1000000 / hz / (2 * n) : 0) }')
  fi
}

ROWS=()
row() {
  ROWS+=("$(printf '%-10s %10s %12s %8s %8s %7s %12s' "$1" "$ECHOES" "$((ECHOES * 2))" "$P50" "$P99" "$ERRORS" "$CPU_US")")
}

main() {
  local tool
  for tool in "$NGINX" taskset awk sed; do
    command -v "$tool" >/dev/null || die "$tool is required (apt-get install nginx-light util-linux)"
  done
  if [[ ! -x "$GATEHOUSE_BIN" || ! -x "$BENCH_BIN" ]]; then
    log "building (cargo build --release -p gatehouse --bin gatehouse --example websocket-bench)"
    (cd "$ROOT" && cargo build --release -p gatehouse --bin gatehouse --example websocket-bench)
  fi
  local cpus
  cpus=$(nproc)
  if ((cpus < 2)); then
    log "only $cpus CPU: proxy and load share it; numbers are not comparable with 2+ cores"
    PROXY_CPU=0 LOAD_CPU=0
  fi

  TMP=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-websocket-bench.XXXXXX")
  chmod 755 "$TMP"
  mkdir -p "$TMP/tmp"

  # Backend: its stdin is a FIFO held open by the script, so it lives as long as we do.
  mkfifo "$TMP/backend.in"
  taskset -c "$LOAD_CPU" "$BENCH_BIN" backend <"$TMP/backend.in" >"$TMP/backend.url" 2>"$TMP/backend.log" &
  PIDS+=($!)
  exec 3>"$TMP/backend.in"
  local i backend=""
  for ((i = 0; i < 100; i++)); do
    backend=$(head -1 "$TMP/backend.url" 2>/dev/null || true)
    [[ -n "$backend" ]] && break
    sleep 0.1
  done
  [[ -n "$backend" ]] || die "the WebSocket backend did not start"
  local backend_port="${backend##*:}"
  check "$backend/" backend
  log "backend $backend; client: $CONNECTIONS connections, $SIZE-byte binary messages, ${DURATION}s after ${WARMUP}s warm-up"

  if [[ "$BASELINE" == 1 ]]; then
    load direct "$backend/"
    row direct
  fi

  # Gatehouse: a WebSocket API, open, no policy, access log off.
  cat >"$TMP/gatehouse.yaml" <<YAML
apis:
  - id: echo
    path: ""
    serviceUrl: $backend
    subscriptionRequired: false
    operations:
      - id: onHandshake
        method: GET
        urlTemplate: /*
YAML
  start_gatehouse_worker "$TMP/gatehouse.yaml"
  local gatehouse_pid=$GATEHOUSE_PID http=$GATEHOUSE_HTTP
  check "ws://$http/" gatehouse
  load gatehouse "ws://$http/" "$gatehouse_pid"
  row gatehouse
  local gh_echoes=$ECHOES gh_p50=$P50 gh_p99=$P99 gh_cpu=$CPU_US
  local gh_rss
  gh_rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$gatehouse_pid/status" 2>/dev/null || echo 0)
  kill -TERM "$gatehouse_pid"
  wait "$gatehouse_pid" 2>/dev/null || true

  # nginx.
  local port
  port=$(free_port)
  render "$BENCH/nginx/websocket-proxy.conf" "$TMP/websocket-proxy.conf" DIR="$TMP" PORT="$port" \
    BACKEND_PORT="$backend_port"
  taskset -c "$PROXY_CPU" "$NGINX" -p "$TMP" -c "$TMP/websocket-proxy.conf" \
    -e "$TMP/websocket-proxy-error.log" 2>>"$TMP/websocket-proxy-stderr.log" &
  local nginx_pid=$!
  PIDS+=("$nginx_pid")
  wait_open "$port" "$nginx_pid" nginx "$TMP/websocket-proxy-error.log"
  check "ws://127.0.0.1:$port/" nginx
  # shellcheck disable=SC2046 # pids are plain numbers
  load nginx "ws://127.0.0.1:$port/" "$nginx_pid" $(cat "/proc/$nginx_pid/task/$nginx_pid/children")
  row nginx

  local report
  report=$(
    printf '\nWebSocket echo, %s connections, %s-byte binary messages, %ss after %ss warm-up; proxy on CPU %s, backend and client on CPU %s\n\n' \
      "$CONNECTIONS" "$SIZE" "$DURATION" "$WARMUP" "$PROXY_CPU" "$LOAD_CPU"
    printf '%-10s %10s %12s %8s %8s %7s %12s\n' proxy echoes/s messages/s p50_us p99_us errors "cpu us/msg"
    printf '%s\n' "${ROWS[@]}"
    awk -v ge="$gh_echoes" -v ne="$ECHOES" -v gc="$gh_cpu" -v nc="$CPU_US" -v g5="$gh_p50" -v n5="$P50" -v g9="$gh_p99" -v n9="$P99" 'BEGIN {
      printf "\nwebsocket: gatehouse/nginx echoes/s %.2f   CPU efficiency (nginx cpu/msg / gatehouse cpu/msg) %.2f   latency difference p50 %+d us, p99 %+d us\n", (ne > 0 ? ge / ne : 0), (gc > 0 ? nc / gc : 0), g5 - n5, g9 - n9 }'
    printf 'gatehouse RSS after load %s KiB\n' "$gh_rss"
  )
  printf '%s\n' "$report"
  mkdir -p "$BENCH/results"
  local saved
  saved="$BENCH/results/websocket-$(date +%Y%m%d-%H%M%S).txt"
  printf '%s\n' "$report" >"$saved"
  log "saved to $saved"
}

main "$@"
