#!/usr/bin/env bash
# gRPC side by side: unary calls through Gatehouse vs through nginx's grpc_pass, to the
# same backend (the tests' tonic server, built as an example), loaded by h2load over
# h2c with the same settings. Prints calls/s, latency and each proxy's CPU time per
# call, and their ratios. See bench/README.md.
#
# Layout as in proxy.sh: the proxy under test alone on PROXY_CPU (default 0); backend
# and client on LOAD_CPU (default 1). Everything on loopback, in a temp dir removed on
# exit (KEEP_TMP=1 keeps it).
#
# Settings (environment):
#   DURATION=10  WARMUP=2  CONNECTIONS=32  STREAMS=1   h2load load (seconds; streams per connection)
#   PROXY_CPU=0  LOAD_CPU=1                            core pinning
#   GATEHOUSE_BIN=target/release/gatehouse  NGINX=nginx
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly BENCH="$ROOT/bench"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
STREAMS="${STREAMS:-1}"
PROXY_CPU="${PROXY_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
GATEHOUSE_BIN="${GATEHOUSE_BIN:-$ROOT/target/release/gatehouse}"
NGINX="${NGINX:-nginx}"
KEEP_TMP="${KEEP_TMP:-0}"
readonly METHOD="/test.Echo/Unary"

log() { printf '[grpc-bench] %s\n' "$*" >&2; }
die() {
  printf '[grpc-bench] error: %s\n' "$*" >&2
  exit 1
}

PIDS=()
TMP=""
trap cleanup_simple EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# call_ok URL: one unary call with curl; dies unless the answer is grpc-status 0.
call_ok() {
  local headers
  headers=$(curl -sS --http2-prior-knowledge -H 'content-type: application/grpc' \
    -H 'te: trailers' --data-binary "@$TMP/request.bin" -o "$TMP/answer.bin" -D - "$1$METHOD") ||
    die "curl to $1 failed"
  grep -qi '^grpc-status: *0' <<<"$headers" || die "no grpc-status 0 from $1: $headers"
  cmp -s "$TMP/request.bin" "$TMP/answer.bin" || die "the answer from $1 is not the echo"
}

# load NAME URL PID...: warm up, then measure; sets CALLS (per second), MEAN_US, FAILED
# and CPU_US (the PIDs' CPU time per call).
CALLS=0 MEAN_US=0 FAILED=0 CPU_US=0
load() {
  local name="$1" url="$2$METHOD" out="$TMP/$1.txt"
  shift 2
  local args=(-c "$CONNECTIONS" -m "$STREAMS" -t 1 -d "$TMP/request.bin"
    -H 'content-type: application/grpc' -H 'te: trailers')
  run taskset -c "$LOAD_CPU" h2load "${args[@]}" -D "$WARMUP" "$url" >/dev/null
  local before after completed
  before=$(cpu_ticks "$@")
  run taskset -c "$LOAD_CPU" h2load "${args[@]}" -D "$DURATION" "$url" >"$out"
  after=$(cpu_ticks "$@")
  CALLS=$(awk '/^finished in/ { gsub(/,/, ""); printf "%.0f", $4 }' "$out")
  completed=$(awk '/^requests:/ { print $8 }' "$out")
  FAILED=$(awk '/^requests:/ { print $10 + $12 + $14 }' "$out")
  MEAN_US=$(awk '/^time for request:/ {
    v = $6; m = (v ~ /us$/) ? 1 : (v ~ /ms$/) ? 1000 : 1000000; printf "%.0f", (v + 0) * m }' "$out")
  CPU_US=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="${completed:-0}" \
    'BEGIN { printf "%.1f", (n > 0 ? t * 1000000 / hz / n : 0) }')
  [[ -n "$CALLS" ]] || { cat "$out" >&2; die "could not parse h2load output for $name"; }
}

main() {
  local tool
  for tool in "$NGINX" h2load taskset curl awk; do
    command -v "$tool" >/dev/null || die "$tool is required (apt-get install nginx-light nghttp2-client util-linux curl)"
  done
  [[ -x "$GATEHOUSE_BIN" ]] || (cd "$ROOT" && cargo build --release -p gatehouse)
  (cd "$ROOT" && cargo build --release --quiet -p gatehouse-test-support --example grpc-backend)
  local backend_bin="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/grpc-backend"

  TMP=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-grpc-bench.XXXXXX")
  chmod 755 "$TMP"
  mkdir -p "$TMP/tmp"
  # One gRPC message: uncompressed, 5 bytes ("hello").
  printf '\x00\x00\x00\x00\x05hello' >"$TMP/request.bin"

  # Backend: its stdin is a FIFO held open by the script, so it lives as long as we do.
  mkfifo "$TMP/backend.in"
  taskset -c "$LOAD_CPU" "$backend_bin" <"$TMP/backend.in" >"$TMP/backend.url" 2>"$TMP/backend.log" &
  PIDS+=($!)
  exec 3>"$TMP/backend.in"
  local i backend=""
  for ((i = 0; i < 100; i++)); do
    backend=$(head -1 "$TMP/backend.url" 2>/dev/null || true)
    [[ -n "$backend" ]] && break
    sleep 0.1
  done
  [[ -n "$backend" ]] || die "the gRPC backend did not start"
  local backend_port="${backend##*:}"
  call_ok "$backend"
  log "backend $backend"

  # Gatehouse.
  cat >"$TMP/gatehouse.yaml" <<YAML
apis:
  - id: echo
    path: test.Echo
    serviceUrl: $backend/test.Echo
    subscriptionRequired: false
    operations:
      - id: any
        method: "*"
        urlTemplate: /*
YAML
  start_gatehouse_worker "$TMP/gatehouse.yaml"
  local gatehouse_pid=$GATEHOUSE_PID http=$GATEHOUSE_HTTP
  call_ok "http://$http"
  load gatehouse "http://$http" "$gatehouse_pid"
  local gh_calls=$CALLS gh_mean=$MEAN_US gh_failed=$FAILED gh_cpu=$CPU_US
  kill -TERM "$gatehouse_pid"
  wait "$gatehouse_pid" 2>/dev/null || true

  # nginx.
  local port
  port=$(free_port)
  render "$BENCH/nginx/grpc-proxy.conf" "$TMP/grpc-proxy.conf" DIR="$TMP" PORT="$port" \
    BACKEND_PORT="$backend_port"
  taskset -c "$PROXY_CPU" "$NGINX" -p "$TMP" -c "$TMP/grpc-proxy.conf" \
    -e "$TMP/grpc-proxy-error.log" 2>"$TMP/grpc-proxy.stderr" &
  local nginx_pid=$!
  PIDS+=("$nginx_pid")
  wait_open "$port" "$nginx_pid" nginx "$TMP/grpc-proxy-error.log"
  call_ok "http://127.0.0.1:$port"
  # shellcheck disable=SC2046 # pids are plain numbers
  load nginx "http://127.0.0.1:$port" "$nginx_pid" $(cat "/proc/$nginx_pid/task/$nginx_pid/children")
  local ng_calls=$CALLS ng_mean=$MEAN_US ng_failed=$FAILED ng_cpu=$CPU_US

  printf '\n%-10s %10s %10s %8s %12s\n' proxy calls/s mean_us failed cpu_us/call
  printf '%-10s %10s %10s %8s %12s\n' gatehouse "$gh_calls" "$gh_mean" "$gh_failed" "$gh_cpu"
  printf '%-10s %10s %10s %8s %12s\n' nginx "$ng_calls" "$ng_mean" "$ng_failed" "$ng_cpu"
  awk -v gc="$gh_calls" -v nc="$ng_calls" -v gu="$gh_cpu" -v nu="$ng_cpu" 'BEGIN {
    printf "\ngrpc unary: gatehouse/nginx calls/s %.2f   CPU efficiency (nginx cpu/call / gatehouse cpu/call) %.2f\n", (nc > 0 ? gc / nc : 0), (gu > 0 ? nu / gu : 0) }'
  printf 'h2load -c %s -m %s, %ss after %ss warm-up; proxy on CPU %s, backend and client on CPU %s\n' \
    "$CONNECTIONS" "$STREAMS" "$DURATION" "$WARMUP" "$PROXY_CPU" "$LOAD_CPU"
}

main "$@"
