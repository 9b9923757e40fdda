#!/usr/bin/env bash
# Side-by-side benchmark: Gatehouse vs nginx as a reverse proxy in front of the same
# backend, loaded by the same client with the same settings; in the `https` scenarios
# both also terminate TLS with the same certificate. See bench/README.md.
#
# Layout: the proxy under test runs alone on PROXY_CPU (default 0); the backend (nginx
# serving 1 KiB) and the load client share LOAD_CPU (default 1). Everything is on
# loopback; configs, logs and raw client output go to a temp dir removed on exit
# (KEEP_TMP=1 keeps it). The summary is also saved under bench/results/.
#
# Settings (environment):
#   DURATION=10s  CONNECTIONS=32  THREADS=1  WARMUP=2s   load per run (wrk syntax)
#   SCENARIOS="plain keyed logged https https-new"          which scenarios, in order
#                      (also policy-heavy: Gatehouse with ten policies using policy
#                      expressions, bench/gatehouse/policy-heavy.yaml, against nginx's
#                      plain proxy; compare its cpu us/req with plain's)
#   HTTPS_NEW_DURATION=5s                                   measured load of https-new
#   CLIENT=wrk                                              wrk, or oha if installed
#   BASELINE=1                                              also load the backend directly
#   PROXY_CPU=0  LOAD_CPU=1                                 core pinning
#   GATEHOUSE_BIN=target/release/gatehouse  NGINX=nginx     binaries
#   STARTUP_TIMEOUT=30                                      seconds to wait for a listener
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly BENCH="$ROOT/bench"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"
WARMUP="${WARMUP:-2s}"
SCENARIOS="${SCENARIOS:-plain keyed logged https https-new}"
HTTPS_NEW_DURATION="${HTTPS_NEW_DURATION:-5s}"
CLIENT="${CLIENT:-wrk}"
BASELINE="${BASELINE:-1}"
PROXY_CPU="${PROXY_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
GATEHOUSE_BIN="${GATEHOUSE_BIN:-$ROOT/target/release/gatehouse}"
NGINX="${NGINX:-nginx}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-30}"
KEEP_TMP="${KEEP_TMP:-0}"

readonly KEY="bench-key-0123456789abcdef"
readonly KEY_HEADER="Ocp-Apim-Subscription-Key"
readonly REQUEST_PATH="/bench/1k"

log() { printf '[bench] %s\n' "$*" >&2; }
die() {
  printf '[bench] error: %s\n' "$*" >&2
  exit 1
}

# --- processes and cleanup ---------------------------------------------------------

PIDS=()
TMP=""

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    stop_pid "$pid"
  done
  if [[ -n "$TMP" && -d "$TMP" ]]; then
    if [[ "$KEEP_TMP" == 1 ]]; then
      log "kept $TMP"
    else
      rm -rf "$TMP"
    fi
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# stop_pid PID: SIGTERM, up to 5 s to exit, then SIGKILL; always reaps.
stop_pid() {
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}


stop() {
  stop_pid "$1"
  forget_pid "$1"
}


# --- helpers -----------------------------------------------------------------------



# wait_port PORT PID NAME LOG: until PORT accepts connections, bounded.
wait_port() {
  local port="$1" pid="$2" name="$3" logfile="$4" i
  for ((i = 0; i < STARTUP_TIMEOUT * 10; i++)); do
    port_open "$port" && return 0
    kill -0 "$pid" 2>/dev/null || {
      cat "$logfile" >&2 || true
      die "$name exited before listening on $port"
    }
    sleep 0.1
  done
  cat "$logfile" >&2 || true
  die "$name did not listen on $port within ${STARTUP_TIMEOUT}s"
}


rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# child_pids PID: direct children (nginx workers of a master).
child_pids() { cat "/proc/$1/task/$1/children" 2>/dev/null || true; }


# to_us VALUE: a wrk duration (250.00us, 1.20ms, 2.00s) in microseconds.
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1000; else if (v ~ /m$/) m = 60000000;
    else if (v ~ /s$/) m = 1000000; else m = 1
    printf "%.0f", n * m
  }'
}

# json_number KEY FILE: the first number after "KEY": in FILE (oha's JSON report;
# latencies are in seconds). "p99" does not match "p99.9".
json_number() { grep -o "\"$1\": *[0-9.eE+-]*" "$2" | head -1 | sed 's/.*: *//'; }

# --- load --------------------------------------------------------------------------

# Results of the last `load` call.
RPS=0 P50=0 P99=0 BAD=0 CPU_US=0
# Processes whose CPU time `load` measures (the proxy under test); CPU_US is their CPU
# time per request in microseconds. It stays comparable when the client or backend,
# not the proxy, is the bottleneck (as on 2 cores).
CPU_PIDS=()

# load NAME URL [HEADER] [DURATION]: warm up, then measure for DURATION (default
# $DURATION); sets RPS, P50, P99 (us), BAD (non-2xx responses plus socket errors). Raw
# output in $TMP/NAME.txt.
load() {
  local name="$1" url="$2" header="${3:-}" duration="${4:-$DURATION}" out="$TMP/$1.txt"
  local args=()
  case "$CLIENT" in
    wrk)
      args=(-t"$THREADS" -c"$CONNECTIONS" --latency)
      if [[ -n "$header" ]]; then args+=(-H "$header"); fi
      run taskset -c "$LOAD_CPU" wrk "${args[@]}" -d"$WARMUP" "$url" >/dev/null
      local cpu_before cpu_after requests
      cpu_before=$(cpu_ticks "${CPU_PIDS[@]}")
      run taskset -c "$LOAD_CPU" wrk "${args[@]}" -d"$duration" "$url" >"$out"
      cpu_after=$(cpu_ticks "${CPU_PIDS[@]}")
      requests=$(awk '/ requests in / { print $1 }' "$out")
      CPU_US=$(awk -v t=$((cpu_after - cpu_before)) -v hz="$CLK_TCK" -v n="${requests:-0}" \
        'BEGIN { printf "%.1f", (n > 0 ? t * 1000000 / hz / n : 0) }')
      RPS=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
      P50=$(to_us "$(awk '$1 == "50%" { print $2 }' "$out")")
      P99=$(to_us "$(awk '$1 == "99%" { print $2 }' "$out")")
      BAD=$(awk '
        /Non-2xx or 3xx responses:/ { bad += $NF }
        /Socket errors:/ { gsub(/,/, ""); bad += $4 + $6 + $8 + $10 }
        END { print bad + 0 }' "$out")
      ;;
    oha)
      args=(-c "$CONNECTIONS" --no-tui "$OHA_JSON_FLAG")
      if [[ -n "$header" ]]; then args+=(-H "$header"); fi
      # oha verifies certificates by default; wrk never does.
      if [[ "$url" == https:* ]]; then args+=(--insecure); fi
      run taskset -c "$LOAD_CPU" oha "${args[@]}" -z "$WARMUP" "$url" >/dev/null
      run taskset -c "$LOAD_CPU" oha "${args[@]}" -z "$duration" "$url" >"$out"
      RPS=$(awk -v v="$(json_number requestsPerSec "$out")" 'BEGIN { printf "%.0f", v }')
      P50=$(awk -v v="$(json_number p50 "$out")" 'BEGIN { printf "%.0f", v * 1000000 }')
      P99=$(awk -v v="$(json_number p99 "$out")" 'BEGIN { printf "%.0f", v * 1000000 }')
      local rate
      rate=$(json_number successRate "$out")
      BAD=$(awk -v r="${rate:-0}" 'BEGIN { print (r < 1) ? 1 : 0 }')
      ;;
  esac
  [[ -n "$RPS" && -n "$P50" && -n "$P99" ]] || {
    cat "$out" >&2
    die "could not parse $CLIENT output for $name"
  }
}

# fetch URL [HEADER] [CURL_OPTION...]: one GET; prints "STATUS BYTES" ("000 0" if it
# failed).
fetch() {
  local url="$1" header="${2:-}" args=(-sS -o /dev/null -w '%{http_code} %{size_download}')
  if [[ -n "$header" ]]; then args+=(-H "$header"); fi
  if (($# > 2)); then args+=("${@:3}"); fi
  local got
  got=$(curl "${args[@]}" "$url" 2>/dev/null) || true
  echo "${got:-000 0}"
}


# --- TLS ---------------------------------------------------------------------------

readonly TLS_HOST="bench.local"
TLS_DIR=""

# make_certificates: a throwaway CA, and a certificate it signs for bench.local and
# 127.0.0.1 (ECDSA P-256, PKCS #8 key), in $TMP/tls. Both proxies present this one.
make_certificates() {
  TLS_DIR="$TMP/tls"
  mkdir -p "$TLS_DIR"
  local log="$TLS_DIR/openssl.log"
  (
    cd "$TLS_DIR"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
    openssl req -x509 -new -key ca.key -subj "/CN=Gatehouse bench CA" -days 7 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key
    openssl req -new -key server.key -subj "/CN=$TLS_HOST" -out server.csr
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=serverAuth" "subjectAltName=DNS:$TLS_HOST,IP:127.0.0.1" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -days 7 -sha256 \
      -set_serial "0x$(openssl rand -hex 8)" -extfile server.ext -out server.pem
    openssl verify -CAfile ca.pem server.pem
    # nginx's master reads them as this user; the files are throwaway.
    chmod 644 ca.pem server.pem server.key
  ) >"$log" 2>&1 || {
    cat "$log" >&2
    die "could not make the bench certificates with openssl (log above)"
  }
}

# gatehouse_https_config IN OUT: IN (a rendered configuration) plus the certificate and
# a hostname bench.local presenting it, also to clients with no or another SNI.
gatehouse_https_config() {
  {
    cat "$1"
    printf '\ncertificates:\n  - id: bench\n    certificatePem: |\n'
    sed 's/^/      /' "$TLS_DIR/server.pem"
    printf '    privateKeyPem: |\n'
    sed 's/^/      /' "$TLS_DIR/server.key"
    printf 'hostnames:\n  - hostname: %s\n    certificateId: bench\n    defaultSslBinding: true\n' \
      "$TLS_HOST"
  } >"$2"
}

# check_https NAME PORT: die unless PORT serves the 1 KiB body over TLS with the bench
# certificate, verified against the bench CA, both with SNI bench.local and as wrk
# connects (to 127.0.0.1, where the certificate's IP SAN matches).
check_https() {
  local name="$1" port="$2" tls=(--cacert "$TLS_DIR/ca.pem" --http1.1)
  expect "$name GET https://$TLS_HOST:$port$REQUEST_PATH" \
    "$(fetch "https://$TLS_HOST:$port$REQUEST_PATH" "" "${tls[@]}" \
      --resolve "$TLS_HOST:$port:127.0.0.1")" "200 1024"
  expect "$name GET https://127.0.0.1:$port$REQUEST_PATH" \
    "$(fetch "https://127.0.0.1:$port$REQUEST_PATH" "" "${tls[@]}")" "200 1024"
}

# tls_probe PORT: what a client with wrk's TLS library (openssl s_client, default
# settings) negotiates, and whether a second connection resumes the first one's session
# (wrk keeps each connection's session when it reconnects, so this is what `https-new`
# measures). The first client waits a moment so that TLS 1.3 tickets arrive.
tls_probe() {
  local port="$1" session="$TLS_DIR/session-$1.pem" first second resumed=no
  local args=(-connect "127.0.0.1:$port" -servername "$TLS_HOST" -CAfile "$TLS_DIR/ca.pem"
    -verify_hostname "$TLS_HOST")
  rm -f "$session"
  first=$( (sleep 0.5) | timeout 20 openssl s_client "${args[@]}" -sess_out "$session" 2>&1) || true
  if [[ -s "$session" ]]; then
    second=$(timeout 20 openssl s_client "${args[@]}" -sess_in "$session" </dev/null 2>&1) || true
    if grep -q '^Reused, ' <<<"$second"; then resumed=yes; fi
  fi
  awk -v resumed="$resumed" '
    /^(New|Reused), / && proto == "" { proto = $2; sub(/,$/, "", proto); cipher = $NF }
    /^Server Temp Key:/ && kx == "" { kx = $4; sub(/,$/, "", kx) }
    /Verify return code:/ && verify == "" { verify = ($4 == 0) ? "verified" : "NOT verified (" $0 ")" }
    END {
      if (proto == "") { print "handshake failed (openssl s_client)"; exit }
      printf "%s %s %s, certificate %s against the bench CA, session resumed on reconnect: %s", proto, cipher, kx, verify, resumed
    }' <<<"$first"
}

# --- servers -----------------------------------------------------------------------

BACKEND_PORT=""

start_backend() {
  BACKEND_PORT=$(free_port)
  render "$BENCH/nginx/backend.conf" "$TMP/backend.conf" DIR="$TMP" PORT="$BACKEND_PORT"
  taskset -c "$LOAD_CPU" "$NGINX" -p "$TMP" -c "$TMP/backend.conf" -e "$TMP/backend-error.log" \
    2>>"$TMP/backend-error.log" &
  PIDS+=($!)
  wait_port "$BACKEND_PORT" "$!" "backend nginx" "$TMP/backend-error.log"
  expect "backend GET $REQUEST_PATH" "$(fetch "http://127.0.0.1:$BACKEND_PORT$REQUEST_PATH")" "200 1024"
}

NGINX_PID="" NGINX_URL="" NGINX_PORT=""

# start_nginx_proxy on|off (access log) [https]
start_nginx_proxy() {
  local port access_log="access_log off;"
  port=$(free_port)
  if [[ "$1" == on ]]; then
    access_log="access_log $TMP/nginx-access.log combined buffer=64k flush=1s;"
  fi
  if [[ "${2:-}" == https ]]; then
    render "$BENCH/nginx/proxy-https.conf" "$TMP/proxy.conf" DIR="$TMP" PORT="$port" \
      BACKEND_PORT="$BACKEND_PORT" ACCESS_LOG="$access_log" CERT="$TLS_DIR/server.pem" \
      CERT_KEY="$TLS_DIR/server.key"
  else
    render "$BENCH/nginx/proxy.conf" "$TMP/proxy.conf" DIR="$TMP" PORT="$port" \
      BACKEND_PORT="$BACKEND_PORT" ACCESS_LOG="$access_log"
  fi
  taskset -c "$PROXY_CPU" "$NGINX" -p "$TMP" -c "$TMP/proxy.conf" -e "$TMP/proxy-error.log" \
    2>>"$TMP/proxy-error.log" &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  wait_port "$port" "$NGINX_PID" "nginx proxy" "$TMP/proxy-error.log"
  NGINX_PORT="$port"
  NGINX_URL="${2:-http}://127.0.0.1:$port$REQUEST_PATH"
}

GATEHOUSE_PID="" GATEHOUSE_URL="" GATEHOUSE_HTTPS_PORT=""

# start_gatehouse CONFIG on|off (access log) [tls]: with `tls`, GATEHOUSE_URL is the
# HTTPS listener's (its port, picked by the kernel, in GATEHOUSE_HTTPS_PORT).
start_gatehouse() {
  local config="$1" addresses="$TMP/gatehouse-addresses.json" http="" https="" i
  local over_tls="${3:-}"
  local args=(gateway --config "$config" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0
    --https-listen 127.0.0.1:0 --bound-addresses-file "$addresses" --workers 1)
  [[ "$2" == on ]] || args+=(--access-log=false)
  rm -f "$addresses"
  # taskset execs the binary, so $! is Gatehouse itself (for /proc/PID/status).
  taskset -c "$PROXY_CPU" "$GATEHOUSE_BIN" "${args[@]}" \
    >"$TMP/gatehouse-access.log" 2>"$TMP/gatehouse.log" &
  GATEHOUSE_PID=$!
  PIDS+=("$GATEHOUSE_PID")
  for ((i = 0; i < STARTUP_TIMEOUT * 10; i++)); do
    if [[ -s "$addresses" ]]; then
      http=$(sed -n 's/.*"http" *: *"\([^"]*\)".*/\1/p' "$addresses")
      [[ -n "$http" ]] && break
    fi
    kill -0 "$GATEHOUSE_PID" 2>/dev/null || {
      cat "$TMP/gatehouse.log" >&2
      die "gatehouse exited during startup (log above)"
    }
    sleep 0.1
  done
  [[ -n "$http" ]] || {
    cat "$TMP/gatehouse.log" >&2
    die "gatehouse did not write $addresses within ${STARTUP_TIMEOUT}s"
  }
  expect "gatehouse health probe" "$(fetch "http://$http/status-0123456789abcdef")" "200 *"
  GATEHOUSE_URL="http://$http$REQUEST_PATH"
  if [[ -n "$over_tls" ]]; then
    https=$(sed -n 's/.*"https" *: *"\([^"]*\)".*/\1/p' "$addresses")
    [[ -n "$https" ]] || die "gatehouse reported no HTTPS address in $addresses"
    GATEHOUSE_HTTPS_PORT="${https##*:}"
    GATEHOUSE_URL="https://127.0.0.1:$GATEHOUSE_HTTPS_PORT$REQUEST_PATH"
  fi
}

# --- report ------------------------------------------------------------------------

ROWS=()
COMPARISONS=()
NOTES=()

# row SCENARIO PROXY: append the last load's numbers to the table.
row() {
  ROWS+=("$(printf '%-9s %-10s %10s %9s %9s %7s %12s' "$1" "$2" "$RPS" "$P50" "$P99" "$BAD" "$CPU_US")")
  if [[ "$BAD" != 0 ]]; then
    NOTES+=("WARNING: $1/$2 had $BAD failed requests or errors: see raw output ($TMP/$1-$2.txt with KEEP_TMP=1)")
  fi
}

# compare SCENARIO GH_RPS GH_P50 GH_P99 GH_CPU NG_RPS NG_P50 NG_P99 NG_CPU
compare() {
  COMPARISONS+=("$(awk -v s="$1" -v gr="$2" -v g5="$3" -v g9="$4" -v gc="$5" -v nr="$6" -v n5="$7" -v n9="$8" -v nc="$9" 'BEGIN {
    printf "%-9s gatehouse/nginx req/s %.2f   CPU efficiency (nginx cpu/req / gatehouse cpu/req) %.2f   latency difference p50 %+d us, p99 %+d us", s, (nr > 0 ? gr / nr : 0), (gc > 0 ? nc / gc : 0), g5 - n5, g9 - n9
  }')")
}

# --- main --------------------------------------------------------------------------

main() {
  local tool
  for tool in "$NGINX" taskset curl awk sed; do
    command -v "$tool" >/dev/null || die "$tool is required (apt-get install nginx-light util-linux curl)"
  done
  case "$CLIENT" in
    wrk) command -v wrk >/dev/null || die "wrk is required (apt-get install wrk), or CLIENT=oha" ;;
    oha)
      command -v oha >/dev/null || die "CLIENT=oha but oha is not installed"
      if oha --help 2>&1 | grep -q -- '--output-format'; then
        OHA_JSON_FLAG="--output-format=json"
      else
        OHA_JSON_FLAG="--json"
      fi
      ;;
    *) die "CLIENT must be wrk or oha, not $CLIENT" ;;
  esac
  local cpus
  cpus=$(nproc)
  if ((cpus < 2)); then
    log "only $cpus CPU: proxy and load share it; numbers are not comparable with 2+ cores"
    PROXY_CPU=0 LOAD_CPU=0
  fi
  if [[ ! -x "$GATEHOUSE_BIN" ]]; then
    log "building $GATEHOUSE_BIN (cargo build --release -p gatehouse)"
    (cd "$ROOT" && cargo build --release -p gatehouse)
    [[ -x "$GATEHOUSE_BIN" ]] || die "no binary at $GATEHOUSE_BIN after the build"
  fi
  local scenario https_wanted=0 gatehouse_https=0
  for scenario in $SCENARIOS; do
    case "$scenario" in
      plain | keyed | logged | policy-heavy) ;;
      https | https-new) https_wanted=1 ;;
      *) die "unknown scenario $scenario (plain, keyed, logged, policy-heavy, https, https-new)" ;;
    esac
  done
  if ((https_wanted)); then
    command -v openssl >/dev/null || die "openssl is required for the https scenarios (apt-get install openssl)"
    if [[ "$CLIENT" == wrk ]] && ! ldd "$(command -v wrk)" 2>/dev/null | grep -q 'libssl'; then
      # Debian's wrk links OpenSSL dynamically; a static build may not show here.
      log "warning: cannot tell whether wrk was built with OpenSSL (no libssl in ldd)"
    fi
    if "$GATEHOUSE_BIN" gateway --help 2>/dev/null | grep -q -- '--https-listen'; then
      gatehouse_https=1
    else
      log "https: $GATEHOUSE_BIN has no --https-listen (HTTPS listener not built in yet):"
      log "https: Gatehouse's half of the https scenarios is skipped; nginx's still runs"
    fi
  fi

  TMP=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")
  # nginx workers drop root privileges and must still read the config and the file.
  chmod 755 "$TMP"
  mkdir -p "$TMP/www" "$TMP/tmp"
  head -c 1024 /dev/zero | tr '\0' 'x' >"$TMP/www/1k.bin"
  chmod 644 "$TMP/www/1k.bin"

  log "client=$CLIENT threads=$THREADS connections=$CONNECTIONS duration=$DURATION warmup=$WARMUP"
  log "proxy on CPU $PROXY_CPU; backend and client on CPU $LOAD_CPU"
  start_backend

  if [[ "$BASELINE" == 1 ]]; then
    log "baseline: client -> backend directly"
    CPU_PIDS=()
    load "direct-backend" "http://127.0.0.1:$BACKEND_PORT$REQUEST_PATH"
    row direct backend
  fi

  if ((https_wanted)); then
    make_certificates
    log "https: throwaway CA and ECDSA P-256 certificate for $TLS_HOST and 127.0.0.1 in $TLS_DIR"
  fi

  local config access header tls duration
  local gh_rps gh_p50 gh_p99 gh_cpu idle_rss loaded_rss nginx_rss pid
  for scenario in $SCENARIOS; do
    header=""
    access=off
    tls=""
    duration="$DURATION"
    case "$scenario" in
      plain) config="$BENCH/gatehouse/plain.yaml" ;;
      policy-heavy) config="$BENCH/gatehouse/policy-heavy.yaml" ;;
      logged)
        config="$BENCH/gatehouse/plain.yaml"
        access=on
        ;;
      keyed)
        config="$BENCH/gatehouse/keyed.yaml"
        header="$KEY_HEADER: $KEY"
        ;;
      https)
        config="$BENCH/gatehouse/plain.yaml"
        tls=https
        ;;
      https-new)
        # Both proxies close the connection after each response, so wrk opens a new
        # one (TCP and TLS handshake) for every request.
        config="$BENCH/gatehouse/plain.yaml"
        tls=https
        header="Connection: close"
        duration="$HTTPS_NEW_DURATION"
        ;;
    esac

    if [[ -n "$tls" && "$gatehouse_https" == 0 ]]; then
      log "$scenario: gatehouse skipped (no --https-listen in $GATEHOUSE_BIN)"
      ROWS+=("$(printf '%-9s %-10s %10s' "$scenario" gatehouse skipped)")
      NOTES+=("$scenario: gatehouse skipped: $GATEHOUSE_BIN has no --https-listen")
    else
      render "$config" "$TMP/gatehouse-$scenario.yaml" BACKEND_PORT="$BACKEND_PORT" KEY="$KEY"
      if [[ -n "$tls" ]]; then
        mv "$TMP/gatehouse-$scenario.yaml" "$TMP/gatehouse-$scenario.plain.yaml"
        gatehouse_https_config "$TMP/gatehouse-$scenario.plain.yaml" "$TMP/gatehouse-$scenario.yaml"
      fi

      log "$scenario: gatehouse"
      start_gatehouse "$TMP/gatehouse-$scenario.yaml" "$access" "$tls"
      if [[ -n "$tls" ]]; then
        check_https gatehouse "$GATEHOUSE_HTTPS_PORT"
        NOTES+=("$scenario: gatehouse TLS: $(tls_probe "$GATEHOUSE_HTTPS_PORT")")
      fi
      expect "gatehouse GET $REQUEST_PATH" "$(fetch "$GATEHOUSE_URL" "$header" --insecure)" "200 1024"
      if [[ "$scenario" == keyed ]]; then
        # The bench is only meaningful if the key is really checked.
        expect "gatehouse GET without a key" "$(fetch "$GATEHOUSE_URL")" "401 *"
      fi
      idle_rss=$(rss_kib "$GATEHOUSE_PID")
      CPU_PIDS=("$GATEHOUSE_PID")
      load "$scenario-gatehouse" "$GATEHOUSE_URL" "$header" "$duration"
      loaded_rss=$(rss_kib "$GATEHOUSE_PID")
      row "$scenario" gatehouse
      gh_rps=$RPS gh_p50=$P50 gh_p99=$P99 gh_cpu=$CPU_US
      NOTES+=("$scenario: gatehouse RSS idle ${idle_rss} KiB, after load ${loaded_rss} KiB")
      stop "$GATEHOUSE_PID"
      if [[ "$access" == on ]]; then
        NOTES+=("$scenario: gatehouse wrote $(wc -l <"$TMP/gatehouse-access.log") stdout lines, $(wc -l <"$TMP/gatehouse.log") stderr lines")
      fi
    fi

    log "$scenario: nginx"
    start_nginx_proxy "$access" "${tls:-http}"
    if [[ -n "$tls" ]]; then
      check_https nginx "$NGINX_PORT"
      NOTES+=("$scenario: nginx TLS: $(tls_probe "$NGINX_PORT")")
    fi
    expect "nginx GET $REQUEST_PATH" "$(fetch "$NGINX_URL" "$header" --insecure)" "200 1024"
    # shellcheck disable=SC2207 # pids are plain numbers
    CPU_PIDS=("$NGINX_PID" $(child_pids "$NGINX_PID"))
    load "$scenario-nginx" "$NGINX_URL" "$header" "$duration"
    nginx_rss=0
    for pid in $NGINX_PID $(child_pids "$NGINX_PID"); do
      nginx_rss=$((nginx_rss + $(rss_kib "$pid")))
    done
    row "$scenario" nginx
    NOTES+=("$scenario: nginx RSS after load ${nginx_rss} KiB (master + worker)")
    if [[ -n "$tls" && "$gatehouse_https" == 0 ]]; then
      COMPARISONS+=("$(printf '%-9s gatehouse skipped: no comparison' "$scenario")")
    else
      compare "$scenario" "$gh_rps" "$gh_p50" "$gh_p99" "$gh_cpu" "$RPS" "$P50" "$P99" "$CPU_US"
    fi
    stop "$NGINX_PID"
    if [[ "$access" == on ]]; then
      NOTES+=("$scenario: nginx wrote $(wc -l <"$TMP/nginx-access.log") access log lines")
    fi
  done

  local report
  report=$(
    printf '\nGatehouse vs nginx, %s: %s threads, %s connections, %s (after %s warm-up), proxy on CPU %s\n' \
      "$CLIENT" "$THREADS" "$CONNECTIONS" "$DURATION" "$WARMUP" "$PROXY_CPU"
    if [[ " $SCENARIOS " == *" https-new "* ]]; then
      printf 'https-new: %s measured, a new TCP and TLS connection per request\n' "$HTTPS_NEW_DURATION"
    fi
    printf '\n'
    printf '%-9s %-10s %10s %9s %9s %7s %12s\n' scenario proxy "req/s" "p50 us" "p99 us" errors "cpu us/req"
    printf '%s\n' "${ROWS[@]}"
    printf '\n'
    printf '%s\n' "${COMPARISONS[@]}"
    printf '\n'
    printf '%s\n' "${NOTES[@]}"
  )
  printf '%s\n' "$report"
  mkdir -p "$BENCH/results"
  local saved
  saved="$BENCH/results/proxy-$(date +%Y%m%d-%H%M%S).txt"
  printf '%s\n' "$report" >"$saved"
  log "saved to $saved"
}

main "$@"
