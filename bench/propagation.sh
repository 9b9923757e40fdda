#!/usr/bin/env bash
# Configuration propagation and scale benchmark for control-plane mode. See
# bench/README.md.
#
# Part 1, propagation under load: a control plane (`gatehouse control`, SQLite in a temp
# dir), a backend (nginx serving 1 KiB), and a gateway in control-plane mode serving API
# `prop`, whose outbound `set-header` policy sets `X-Version`. While wrk loads
# `GET /prop/x` all the time, CHANGES successive management-API changes are made, in
# turn: set `X-Version` to a new value (PUT /apis/prop), add an API (PUT /apis/extra-N,
# then PUT /gateways/edge listing it: the change that makes it served), remove it again
# (PUT /gateways/edge without it, then DELETE /apis/extra-N). For each, the time from
# the management API's 200 to the first gateway response showing it (the new header;
# 200 from the added API; 404 from the removed one) is measured by bench/propagation.py
# polling the gateway on a keep-alive connection. Prints p50/p99/max and wrk's failed
# requests (non-2xx and socket errors) over the whole run.
#
# Part 2, APIS APIs: a second control plane holds APIS APIs (one operation each), all
# assigned to gateway `bulk`. Prints the size of the gateway's snapshot, the time from
# process start to /readyz 200 and the RSS of a gateway loading it from the control
# plane, then, with the control plane stopped, of a gateway loading it from its backup.
#
# Everything is on loopback; data, configs, logs and raw output go to a temp dir removed
# on exit (KEEP_TMP=1 keeps it). The summary is also saved under bench/results/.
#
# Settings (environment):
#   CHANGES=200                    management-API changes in part 1 (0 skips part 1)
#   APIS=10000                     APIs in part 2 (0 skips part 2)
#   BULK_LOAD=db                   how part 2's APIs get in: `db` writes them into the
#                                  stopped control plane's SQLite database (seconds),
#                                  then assigns them through the management API, which
#                                  validates them all; `api` runs `gatehouse apply` (one
#                                  PUT per API; slow with thousands, see README)
#   LOAD_CONNECTIONS=4 LOAD_THREADS=1 LOAD_DELAY_MS=1
#                                  wrk's background load; each connection waits
#                                  LOAD_DELAY_MS between requests (0: as fast as it can)
#   CHANGE_TIMEOUT=10              seconds to wait for one change to show
#   WORKERS=                       gateway --workers (default: the gateway's, one per core)
#   GATEHOUSE_BIN=target/release/gatehouse  NGINX=nginx  PYTHON=python3
#   STARTUP_TIMEOUT=30             seconds to wait for a process to listen / be ready
#   APPLY_TIMEOUT=3600             seconds allowed for `gatehouse apply` (BULK_LOAD=api)
#   STOP_TIMEOUT=10                seconds a process gets to exit on SIGTERM before SIGKILL
#   KEEP_TMP=0                     1 keeps the temp dir
set -euo pipefail
export LC_ALL=C # $EPOCHREALTIME and awk with a '.' decimal separator

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly BENCH="$ROOT/bench"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
readonly HELPER="$BENCH/propagation.py"

CHANGES="${CHANGES:-200}"
APIS="${APIS:-10000}"
BULK_LOAD="${BULK_LOAD:-db}"
LOAD_CONNECTIONS="${LOAD_CONNECTIONS:-4}"
LOAD_THREADS="${LOAD_THREADS:-1}"
LOAD_DELAY_MS="${LOAD_DELAY_MS:-1}"
CHANGE_TIMEOUT="${CHANGE_TIMEOUT:-10}"
WORKERS="${WORKERS:-}"
GATEHOUSE_BIN="${GATEHOUSE_BIN:-$ROOT/target/release/gatehouse}"
NGINX="${NGINX:-nginx}"
PYTHON="${PYTHON:-python3}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-30}"
APPLY_TIMEOUT="${APPLY_TIMEOUT:-3600}"
STOP_TIMEOUT="${STOP_TIMEOUT:-10}"
KEEP_TMP="${KEEP_TMP:-0}"

# Targets (issue 5, item 8).
readonly TARGET_P99_MS=100
readonly TARGET_LOAD_MS=1000
readonly TARGET_RSS_BYTES=100000000 # 100 MB

log() { printf '[propagation] %s\n' "$*" >&2; }
die() {
  printf '[propagation] error: %s\n' "$*" >&2
  exit 1
}

# --- processes and cleanup ---------------------------------------------------------

PIDS=()
TMP=""

# On exit: SIGTERM to everything still running, up to STOP_TIMEOUT s for all of them
# together, then SIGKILL.
cleanup() {
  local pid i alive
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    alive=0
    for pid in "${PIDS[@]}"; do
      [[ "$(state_of "$pid")" =~ ^(Z|X|)$ ]] || alive=1
    done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do
    disown "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
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

# stop_pid PID: SIGTERM, up to STOP_TIMEOUT s to exit, then SIGKILL; always reaps. Sets
# STOPPED to how it ended. (Not to be run in a subshell: only this shell can reap it.)
STOPPED=""
stop_pid() {
  local pid="$1" i start
  start=$EPOCHREALTIME
  if ! kill -TERM "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || true
    STOPPED="had already exited"
    return 0
  fi
  for ((i = 0; i < STOP_TIMEOUT * 100; i++)); do
    # A child that exited stays a zombie until reaped, and kill -0 still finds it.
    [[ "$(state_of "$pid")" =~ ^(Z|X|)$ ]] && break
    sleep 0.01
  done
  if [[ "$(state_of "$pid")" =~ ^(Z|X|)$ ]]; then
    wait "$pid" 2>/dev/null || true
    STOPPED="exited in $(ms_since "$start") ms"
  else
    # Disowned, bash reaps it without printing a "Killed" job report.
    disown "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 500; i++)); do
      [[ -e "/proc/$pid" ]] || break
      sleep 0.01
    done
    STOPPED="did not exit within ${STOP_TIMEOUT}s of SIGTERM: killed"
  fi
}

# state_of PID: the process state letter (R, S, Z, ...), empty when gone.
state_of() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1; }


# stop PID NAME: stop a process, and note how it ended.
stop() {
  stop_pid "$1"
  forget_pid "$1"
  NOTES+=("$2: SIGTERM -> $STOPPED")
  log "$2 stopped: $STOPPED"
}


# --- helpers -----------------------------------------------------------------------




rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# ms_since START: milliseconds since START (an $EPOCHREALTIME value).
ms_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }

# json_field KEY FILE: the string value of "KEY" in a small JSON file.
json_field() { sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p" "$2" | head -1; }

# wait_file FILE PID NAME LOG: until FILE is non-empty, bounded; dies if PID exits.
wait_file() {
  local file="$1" pid="$2" name="$3" logfile="$4" i
  for ((i = 0; i < STARTUP_TIMEOUT * 20; i++)); do
    [[ -s "$file" ]] && return 0
    [[ "$(state_of "$pid")" =~ ^(Z|X|)$ ]] && {
      tail -20 "$logfile" >&2 || true
      die "$name exited during startup (log above)"
    }
    sleep 0.05
  done
  tail -20 "$logfile" >&2 || true
  die "$name did not write $file within ${STARTUP_TIMEOUT}s"
}

# fetch URL [-H HEADER]: one GET; prints "STATUS BYTES" ("000 0" if it failed).
fetch() {
  local url="$1" got
  shift
  got=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code} %{size_download}' "$@" "$url" 2>/dev/null) || true
  echo "${got:-000 0}"
}


# mgmt METHOD PATH BODY EXPECTED: a management-API call on $CP_URL (the admin token is
# passed in a header file, so it is not on a command line). BODY is JSON or @FILE.
# Prints the response body; MGMT_MS is how long the call took.
MGMT_MS=0
mgmt() {
  local method="$1" path="$2" body="$3" expected="$4" out="$TMP/mgmt-response" got
  local args=(-sS --max-time 120 -o "$out" -w '%{http_code} %{time_total}' -X "$method"
    -H "@$TMP/admin-header" -H 'Content-Type: application/json')
  if [[ -n "$body" ]]; then args+=(--data-binary "$body"); fi
  got=$(curl "${args[@]}" "$CP_URL$path" 2>"$TMP/mgmt-error") || got="000 0"
  MGMT_MS=$(awk -v t="${got#* }" 'BEGIN { printf "%.0f", t * 1000 }')
  [[ "${got%% *}" == "$expected" ]] ||
    die "$method $path: expected $expected, got ${got%% *}: $(head -c 500 "$out" 2>/dev/null) $(cat "$TMP/mgmt-error")"
  cat "$out"
}

# --- servers -----------------------------------------------------------------------

BACKEND_URL=""

start_backend() {
  local port
  port=$(free_port)
  render "$BENCH/nginx/backend.conf" "$TMP/backend.conf" DIR="$TMP" PORT="$port"
  "$NGINX" -p "$TMP" -c "$TMP/backend.conf" -e "$TMP/backend-error.log" 2>>"$TMP/backend-stderr.log" &
  PIDS+=($!)
  local i
  for ((i = 0; i < STARTUP_TIMEOUT * 10; i++)); do
    port_open "$port" && break
    sleep 0.1
  done
  BACKEND_URL="http://127.0.0.1:$port"
  expect "backend GET /x" "$(fetch "$BACKEND_URL/x")" "200 1024"
}

CP_PID="" CP_URL=""

# start_control NAME DATA_DIR: a control plane on a loopback port 0.
start_control() {
  local name="$1" dir="$2" addresses="$TMP/$1-addresses.json"
  rm -f "$addresses"
  "$GATEHOUSE_BIN" control --listen 127.0.0.1:0 --data-dir "$dir" \
    --bound-addresses-file "$addresses" >>"$TMP/$name.log" 2>&1 &
  CP_PID=$!
  PIDS+=("$CP_PID")
  wait_file "$addresses" "$CP_PID" "control plane $name" "$TMP/$name.log"
  CP_URL="http://$(json_field http "$addresses")"
  [[ "$CP_URL" != "http://" ]] || die "no address in $addresses"
  wait_file "$dir/admin-token" "$CP_PID" "control plane $name" "$TMP/$name.log"
  printf 'Authorization: Bearer %s\n' "$(cat "$dir/admin-token")" >"$TMP/admin-header"
  chmod 600 "$TMP/admin-header"
  expect "control plane $name /readyz" "$(fetch "$CP_URL/readyz")" "200 *"
}

# gateway_token ID FILE: a token for gateway ID (valid 20 days) into FILE.
gateway_token() {
  local expiry
  expiry=$(date -u -d '+20 days' +%Y-%m-%dT%H:%M:%SZ)
  mgmt POST "/gateways/$1/generate-token" "{\"keyType\":\"primary\",\"expiry\":\"$expiry\"}" 200 |
    sed -n 's/.*"value" *: *"\([^"]*\)".*/\1/p' >"$2"
  chmod 600 "$2"
  grep -q '^GatewayKey ' "$2" || die "no token in the generate-token answer"
}

GW_PID="" GW_URL="" GW_ADMIN="" READY_MS=0

# start_gateway NAME TOKEN_FILE BACKUP_DIR: a gateway in control-plane mode on $CP_URL;
# READY_MS is the time from just before the process is started to /readyz 200. The
# poller (propagation.py wait-ready) is running before the gateway starts.
start_gateway() {
  local name="$1" token="$2" backup="$3" addresses="$TMP/$1-addresses.json"
  local started="$TMP/$1-poller-started" ready="$TMP/$1-ready" poller t0 i
  rm -f "$addresses" "$started" "$ready"
  "$PYTHON" "$HELPER" wait-ready --addresses-file "$addresses" --timeout "$STARTUP_TIMEOUT" \
    --started-file "$started" >"$ready" 2>>"$TMP/$name.log" &
  poller=$!
  PIDS+=("$poller")
  for ((i = 0; i < 100; i++)); do
    [[ -s "$started" ]] && break
    sleep 0.05
  done
  [[ -s "$started" ]] || die "readiness poller did not start"
  local args=(gateway --config-service-endpoint "$CP_URL" --config-service-auth "$token"
    --config-backup-dir "$backup" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0
    --bound-addresses-file "$addresses" --access-log=false)
  if [[ -n "$WORKERS" ]]; then args+=(--workers "$WORKERS"); fi
  t0=$EPOCHREALTIME
  "$GATEHOUSE_BIN" "${args[@]}" >/dev/null 2>>"$TMP/$name.log" &
  GW_PID=$!
  PIDS+=("$GW_PID")
  if ! wait "$poller"; then
    forget_pid "$poller"
    tail -20 "$TMP/$name.log" >&2
    die "gateway $name did not become ready within ${STARTUP_TIMEOUT}s (log above)"
  fi
  forget_pid "$poller"
  READY_MS=$(awk -v a="$t0" -v b="$(cat "$ready")" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
  GW_URL="http://$(json_field http "$addresses")"
  GW_ADMIN="http://$(json_field admin "$addresses")"
}

# log_problems [LOG]: warning and error lines of a JSON log (default: stdin).
log_problems() { grep -E '"level" *: *"(WARN|ERROR)"' "$@" || true; }

# --- part 1: propagation under load ---------------------------------------------------

PROPAGATION=()

part_propagation() {
  local dir="$TMP/cp1" backup="$TMP/backup1" wrk_pid wrk_out="$TMP/wrk.txt" i
  mkdir -p "$backup"
  log "part 1: $CHANGES changes under load"
  start_control cp1 "$dir"
  mgmt PUT /apis/prop "$("$PYTHON" "$HELPER" api-body --id prop --backend "$BACKEND_URL" --version 0)" 201 >/dev/null
  mgmt PUT /gateways/edge '{"id":"edge","apis":["prop"]}' 201 >/dev/null
  gateway_token edge "$TMP/edge-token"
  start_gateway edge "$TMP/edge-token" "$backup"
  log "gateway edge ready in ${READY_MS} ms"
  local version
  version=$(curl -sS --max-time 10 -o /dev/null -D - "$GW_URL/prop/x" | tr -d '\r' |
    awk -F': ' 'tolower($1) == "x-version" { print $2 }')
  expect "gateway GET /prop/x X-Version" "$version" "0"

  local wrk_args=(-t"$LOAD_THREADS" -c"$LOAD_CONNECTIONS" --latency)
  # Long enough for every change to time out; stopped with SIGINT (wrk then reports).
  wrk_args+=(-d"$((CHANGES * (CHANGE_TIMEOUT + 1) + 120))s")
  if ((LOAD_DELAY_MS > 0)); then
    printf 'function delay()\n  return %d\nend\n' "$LOAD_DELAY_MS" >"$TMP/delay.lua"
    wrk_args+=(-s "$TMP/delay.lua")
  fi
  wrk "${wrk_args[@]}" "$GW_URL/prop/x" >"$wrk_out" 2>&1 &
  wrk_pid=$!
  PIDS+=("$wrk_pid")
  sleep 2 # load before the first change
  [[ "$(state_of "$wrk_pid")" =~ ^(Z|X|)$ ]] && {
    cat "$wrk_out" >&2
    die "wrk exited early"
  }
  local log_lines_before
  log_lines_before=$(wc -l <"$TMP/edge.log")

  local started=$EPOCHREALTIME
  run "$PYTHON" "$HELPER" changes --control "$CP_URL" --token-file "$dir/admin-token" \
    --gateway "$GW_URL" --gateway-id edge --backend "$BACKEND_URL" --count "$CHANGES" \
    --timeout "$CHANGE_TIMEOUT" --out "$TMP/changes.tsv" >"$TMP/changes.out" ||
    die "the change loop failed (see above)"
  local changes_ms
  changes_ms=$(ms_since "$started")
  sleep 1 # load after the last change

  kill -INT "$wrk_pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    [[ "$(state_of "$wrk_pid")" =~ ^(Z|X|)$ ]] && break
    sleep 0.1
  done
  stop_pid "$wrk_pid"
  forget_pid "$wrk_pid"
  grep -q ' requests in ' "$wrk_out" || {
    cat "$wrk_out" >&2
    die "no wrk summary in $wrk_out"
  }

  local requests non2xx socket bad rps rss problems
  requests=$(awk '/ requests in / { print $1 }' "$wrk_out")
  rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$wrk_out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ { n += $NF } END { print n + 0 }' "$wrk_out")
  socket=$(awk '/Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' "$wrk_out")
  bad=$((non2xx + socket))
  rss=$(rss_kib "$GW_PID")
  problems=$(tail -n +"$((log_lines_before + 1))" "$TMP/edge.log" | log_problems)

  field() { sed -n "s/^$1=//p" "$TMP/changes.out" | head -1; }
  local p50 p99 max timeouts poll_errors
  p50=$(field p50_ms) p99=$(field p99_ms) max=$(field max_ms)
  timeouts=$(field timeouts) poll_errors=$(field poll_errors)
  local p99_ok="NOT MET" failed_ok="NOT MET"
  if [[ "$timeouts" == 0 ]] && awk -v v="$p99" -v t="$TARGET_P99_MS" 'BEGIN { exit !(v < t) }'; then
    p99_ok="met"
  fi
  [[ "$bad" == 0 ]] && failed_ok="met"

  PROPAGATION+=(
    "Propagation: $CHANGES management-API changes in ${changes_ms} ms, gateway under constant load"
    "  (wrk -t$LOAD_THREADS -c$LOAD_CONNECTIONS$( ((LOAD_DELAY_MS > 0)) && echo ", ${LOAD_DELAY_MS} ms between requests per connection"): $requests requests, $rps req/s)"
    ""
    "time from the management API's 200 to the first gateway response showing the change:"
    "  p50 ${p50} ms   p99 ${p99} ms   max ${max} ms      target p99 < ${TARGET_P99_MS} ms: $p99_ok"
    "  set-header: $(field kind_set_header)"
    "  add API:    $(field kind_add_api)"
    "  remove API: $(field kind_remove_api)"
    "  changes not seen within ${CHANGE_TIMEOUT}s: $timeouts"
    "failed requests during the run: $bad of $requests (non-2xx $non2xx, socket errors $socket)      target 0: $failed_ok"
    "poller: $(field poll_requests) requests, $poll_errors unexpected answers or errors"
    "gateway RSS after the run: ${rss} KiB"
    "gateway log during the changes: $(printf '%s' "$problems" | grep -c . || true) warning/error lines"
  )
  if [[ "$poll_errors" != 0 ]]; then
    while IFS= read -r line; do PROPAGATION+=("  $line"); done < <(sed -n 's/^poll_error=/  poll error: /p' "$TMP/changes.out")
  fi
  if [[ -n "$problems" ]]; then
    while IFS= read -r line; do PROPAGATION+=("  $line"); done < <(printf '%s\n' "$problems" | head -10)
  fi
  cp "$TMP/changes.tsv" "$RESULTS_PREFIX-changes.tsv"

  stop "$GW_PID" "part 1 gateway (control plane up)"
  stop "$CP_PID" "part 1 control plane"
}

# --- part 2: many APIs ---------------------------------------------------------------

SCALE=()

part_scale() {
  local dir="$TMP/cp2" backup="$TMP/backup2"
  mkdir -p "$backup"
  log "part 2: $APIS APIs ($BULK_LOAD)"
  start_control cp2 "$dir"
  local load_line started
  case "$BULK_LOAD" in
    db)
      stop "$CP_PID" "part 2 control plane (before seeding)"
      started=$EPOCHREALTIME
      run "$PYTHON" "$HELPER" seed --db "$dir/gatehouse.db" --apis "$APIS" --backend "$BACKEND_URL" >/dev/null
      local seed_ms
      seed_ms=$(ms_since "$started")
      start_control cp2 "$dir"
      "$PYTHON" "$HELPER" gateway-body --apis "$APIS" --gateway-id bulk >"$TMP/bulk-gateway.json"
      mgmt PUT /gateways/bulk "@$TMP/bulk-gateway.json" 201 >/dev/null
      load_line="$APIS APIs written into SQLite in ${seed_ms} ms; PUT /gateways/bulk assigning all $APIS (validates and compiles every API): ${MGMT_MS} ms"
      ;;
    api)
      "$PYTHON" "$HELPER" yaml --apis "$APIS" --backend "$BACKEND_URL" --gateway-id bulk >"$TMP/bulk.yaml"
      started=$EPOCHREALTIME
      run timeout "$APPLY_TIMEOUT" "$GATEHOUSE_BIN" --server "$CP_URL" --token-file "$dir/admin-token" \
        apply -f "$TMP/bulk.yaml" >"$TMP/apply.out" 2>>"$TMP/apply.log" ||
        die "gatehouse apply failed or took over ${APPLY_TIMEOUT}s: $(tail -3 "$TMP/apply.log") (last applied: $(tail -1 "$TMP/apply.out"))"
      load_line="gatehouse apply of $APIS APIs and the gateway: $(ms_since "$started") ms"
      ;;
    *) die "BULK_LOAD must be db or api, not $BULK_LOAD" ;;
  esac
  log "$load_line"

  # The cost of one more write once the control plane holds them all.
  mgmt PUT /apis/one-more "$("$PYTHON" "$HELPER" api-body --id one-more --backend "$BACKEND_URL")" 201 >/dev/null
  local write_ms=$MGMT_MS
  mgmt DELETE /apis/one-more "" 204 >/dev/null
  local delete_ms=$MGMT_MS

  gateway_token bulk "$TMP/bulk-token"
  local got status snapshot_bytes snapshot_ms
  got=$(curl -sS --max-time 60 -o "$TMP/snapshot.json" -w '%{http_code} %{size_download} %{time_total}' \
    -H "Authorization: $(cat "$TMP/bulk-token")" "$CP_URL/v2/gateways/bulk/snapshot") || got="000 0 0"
  read -r status snapshot_bytes snapshot_ms <<<"$got"
  [[ "$status" == 200 ]] || die "GET /v2/gateways/bulk/snapshot: $status $(head -c 300 "$TMP/snapshot.json")"
  snapshot_ms=$(awk -v t="$snapshot_ms" 'BEGIN { printf "%.0f", t * 1000 }')
  local served
  served=$(grep -o '"id":"bulk-[0-9]*"' "$TMP/snapshot.json" | wc -l)
  [[ "$served" == "$APIS" ]] || die "the snapshot holds $served APIs, not $APIS"

  # From the control plane.
  measure_bulk_gateway bulk-cp "gateway loading from the control plane" "$backup"
  local backup_file="$backup/gatehouse-bulk.snapshot.json" i
  for ((i = 0; i < STARTUP_TIMEOUT * 10; i++)); do
    [[ -s "$backup_file" ]] && break
    sleep 0.1
  done
  [[ -s "$backup_file" ]] || die "no backup at $backup_file within ${STARTUP_TIMEOUT}s"
  sleep 1 # the backup is written by a background task: let it finish
  local backup_bytes
  backup_bytes=$(stat -c %s "$backup_file")
  stop "$GW_PID" "part 2 gateway from the control plane (control plane up)"
  stop "$CP_PID" "part 2 control plane"
  local from_cp=("${MEASURED[@]}")

  # From the backup, the control plane stopped.
  measure_bulk_gateway bulk-backup "gateway loading from its backup, control plane stopped" "$backup"
  stop "$GW_PID" "part 2 gateway from the backup (control plane stopped)"

  SCALE+=(
    "Scale: $APIS APIs, one operation each, all on gateway bulk"
    "  $load_line"
    "  one more API at $APIS APIs: PUT ${write_ms} ms, DELETE ${delete_ms} ms"
    "snapshot: $snapshot_bytes bytes ($(awk -v b="$snapshot_bytes" 'BEGIN { printf "%.1f", b / 1048576 }') MiB), served in ${snapshot_ms} ms; backup file $backup_bytes bytes"
    "${from_cp[@]}"
    "${MEASURED[@]}"
  )
}

MEASURED=()

# measure_bulk_gateway NAME TITLE BACKUP_DIR: start a gateway for `bulk` (the control
# plane at $CP_URL, up or not); MEASURED: time to ready, RSS when ready and after
# a short load, peak RSS, and what it logged. Leaves it running ($GW_PID).
measure_bulk_gateway() {
  local name="$1" title="$2" backup="$3" last=$((APIS - 1)) j
  start_gateway "$name" "$TMP/bulk-token" "$backup"
  local ready_ms=$READY_MS ready_rss loaded_rss peak_rss
  ready_rss=$(rss_kib "$GW_PID")
  expect "$name /readyz" "$(fetch "$GW_ADMIN/readyz")" "200 *"
  for j in 0 $((APIS / 3)) $((APIS / 2)) $last; do
    expect "$name GET /bulk/$j/x" "$(fetch "$GW_URL/bulk/$j/x")" "200 1024"
  done
  run wrk -t1 -c4 -d2s "$GW_URL/bulk/$last/x" >"$TMP/$name-wrk.txt" 2>&1 || true
  loaded_rss=$(rss_kib "$GW_PID")
  peak_rss=$(awk '/^VmHWM:/ { print $2 }' "/proc/$GW_PID/status" 2>/dev/null || echo 0)
  local load_ok="NOT MET" rss_ok="NOT MET"
  ((ready_ms < TARGET_LOAD_MS)) && load_ok="met"
  ((ready_rss * 1024 < TARGET_RSS_BYTES && loaded_rss * 1024 < TARGET_RSS_BYTES)) && rss_ok="met"
  mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k * 1024 / 1000000 }'; }
  MEASURED=(
    "$title:"
    "  process start to /readyz 200: ${ready_ms} ms      target < ${TARGET_LOAD_MS} ms: $load_ok"
    "  RSS when ready $(mb "$ready_rss"), after 2 s of wrk $(mb "$loaded_rss") (peak $(mb "$peak_rss"))      target < 100 MB: $rss_ok"
    "  wrk 2 s on /bulk/$last/x: $(awk '/^Requests\/sec:/ { printf "%.0f req/s", $2 }' "$TMP/$name-wrk.txt"), $(awk '/Non-2xx or 3xx responses:/ { n += $NF } /Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' "$TMP/$name-wrk.txt") failed"
    "  log: $(grep -m1 '"configuration loaded"' "$TMP/$name.log" | sed 's/^ *//')"
  )
  local problems line
  problems=$(log_problems "$TMP/$name.log" | grep -v 'cannot reach the control plane' | grep -v 'heartbeat failed' || true)
  if [[ -n "$problems" ]]; then
    MEASURED+=("  other warnings/errors in its log (control-plane connection errors left out):")
    while IFS= read -r line; do MEASURED+=("    $line"); done < <(printf '%s\n' "$problems" | head -10)
  fi
}

# --- main --------------------------------------------------------------------------

NOTES=()
RESULTS_PREFIX=""

main() {
  local tool
  for tool in "$NGINX" wrk curl awk sed "$PYTHON"; do
    command -v "$tool" >/dev/null || die "$tool is required (apt-get install nginx-light wrk curl python3)"
  done
  [[ "$CHANGES" =~ ^[0-9]+$ && "$APIS" =~ ^[0-9]+$ ]] || die "CHANGES and APIS must be numbers"
  [[ "$BULK_LOAD" == db || "$BULK_LOAD" == api ]] || die "BULK_LOAD must be db or api, not $BULK_LOAD"
  if [[ ! -x "$GATEHOUSE_BIN" ]]; then
    log "building $GATEHOUSE_BIN (cargo build --release -p gatehouse)"
    (cd "$ROOT" && cargo build --release -p gatehouse)
    [[ -x "$GATEHOUSE_BIN" ]] || die "no binary at $GATEHOUSE_BIN after the build"
  fi

  TMP=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-propagation.XXXXXX")
  # nginx workers drop root privileges and must still read the config and the file.
  chmod 755 "$TMP"
  mkdir -p "$TMP/www" "$TMP/tmp" "$BENCH/results"
  head -c 1024 /dev/zero | tr '\0' 'x' >"$TMP/www/1k.bin"
  chmod 644 "$TMP/www/1k.bin"
  RESULTS_PREFIX="$BENCH/results/propagation-$(date +%Y%m%d-%H%M%S)"

  start_backend
  if ((CHANGES > 0)); then part_propagation; fi
  if ((APIS > 0)); then part_scale; fi

  local report
  report=$(
    printf '\nGatehouse control-plane propagation and scale (%s, %s CPUs)\n' "$("$GATEHOUSE_BIN" --version)" "$(nproc)"
    if ((CHANGES > 0)); then
      printf '\n'
      printf '%s\n' "${PROPAGATION[@]}"
    fi
    if ((APIS > 0)); then
      printf '\n'
      printf '%s\n' "${SCALE[@]}"
    fi
    printf '\nShutdowns:\n'
    printf '  %s\n' "${NOTES[@]}"
  )
  printf '%s\n' "$report"
  printf '%s\n' "$report" >"$RESULTS_PREFIX.txt"
  log "saved to $RESULTS_PREFIX.txt"
}

main "$@"
