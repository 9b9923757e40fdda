#!/usr/bin/env bash
# Instructions per request of the gateway under valgrind's callgrind: a repeatable
# number for tuning (wall-clock benchmarks on a shared VM vary by ±15%). See
# bench/README.md.
#
# A backend (nginx serving 1 KiB on loopback) and Gatehouse with one worker, access log
# off. For each scenario, Gatehouse runs under callgrind twice: once serving nothing
# (start-up and shutdown), once serving REQUESTS keep-alive GETs from one client
# connection; the difference divided by REQUESTS is printed.
#
#   plain  HTTP/1.1 to the HTTP listener
#   https  HTTP/1.1 over TLS 1.3 (ECDSA P-256, AES-256-GCM) to the HTTPS listener
#   policies  plain with six policies (set-header, set-query-parameter, rate-limit-by-key)
#   expressions  bench/gatehouse/policy-heavy.yaml: ten policies using policy expressions
#
# Settings (environment): REQUESTS=2000  SCENARIOS="plain https"
#   GATEHOUSE_BIN=target/release/gatehouse  NGINX=nginx  PYTHON=python3  KEEP_TMP=
set -euo pipefail

REQUESTS="${REQUESTS:-2000}"
SCENARIOS="${SCENARIOS:-plain https}"
GATEHOUSE_BIN="${GATEHOUSE_BIN:-target/release/gatehouse}"
NGINX="${NGINX:-nginx}"
PYTHON="${PYTHON:-python3}"
HERE="$(cd "$(dirname "$0")" && pwd)"

die() { echo "[callgrind] error: $*" >&2; exit 1; }
log() { echo "[callgrind] $*" >&2; }

for tool in valgrind callgrind_annotate openssl "$NGINX" "$PYTHON"; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -x "$GATEHOUSE_BIN" ]] || die "$GATEHOUSE_BIN not found: cargo build --release -p gatehouse"
GATEHOUSE_BIN="$(cd "$(dirname "$GATEHOUSE_BIN")" && pwd)/$(basename "$GATEHOUSE_BIN")"

TMP="$(mktemp -d /tmp/gatehouse-callgrind.XXXXXX)"
# nginx's worker runs as an unprivileged user when started as root: let it read.
chmod 755 "$TMP"
cleanup() {
  if [[ -f "$TMP/backend.pid" ]]; then
    kill "$(cat "$TMP/backend.pid")" 2>/dev/null || true
  fi
  if [[ -n "${KEEP_TMP:-}" ]]; then
    log "kept $TMP"
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT

# --- backend -------------------------------------------------------------------------
port=$($PYTHON -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$TMP/www" "$TMP/tmp"
head -c 1024 /dev/urandom >"$TMP/www/1k.bin"
sed -e "s|@DIR@|$TMP|g" -e "s|@PORT@|$port|g" "$HERE/nginx/backend.conf" >"$TMP/backend.conf"
"$NGINX" -c "$TMP/backend.conf" -p "$TMP" &
for _ in $(seq 1 50); do [[ -s "$TMP/backend.pid" ]] && break; sleep 0.1; done
[[ -s "$TMP/backend.pid" ]] || die "backend nginx did not start"

# --- configurations ------------------------------------------------------------------
sed -e "s|@BACKEND_PORT@|$port|g" -e "s|@KEY@|unused|g" "$HERE/gatehouse/plain.yaml" >"$TMP/plain.yaml"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -subj "/CN=bench.local" \
  -addext "subjectAltName=DNS:bench.local" 2>/dev/null
{
  cat "$TMP/plain.yaml"
  echo "certificates:"
  echo "  - id: bench"
  echo "    certificatePem: |"
  sed 's/^/      /' "$TMP/cert.pem"
  echo "    privateKeyPem: |"
  sed 's/^/      /' "$TMP/key.pem"
  echo "hostnames:"
  echo "  - hostname: bench.local"
  echo "    certificateId: bench"
  echo "    defaultSslBinding: true"
} >"$TMP/https.yaml"

# "policies": the plain API with six policies that need no expression (the policy
# pipeline's own cost per step).
{
  cat "$TMP/plain.yaml"
  cat <<'YAML'
    policy: |
      <policies>
        <inbound>
          <set-header name="X-Bench" exists-action="override"><value>1</value></set-header>
          <set-header name="X-Drop" exists-action="delete" />
          <set-query-parameter name="v" exists-action="override"><value>2</value></set-query-parameter>
          <rate-limit-by-key calls="16000000" renewal-period="60" counter-key="@(context.Request.IpAddress)" />
        </inbound>
        <outbound>
          <set-header name="X-Served-By" exists-action="override"><value>gatehouse</value></set-header>
          <set-header name="Server" exists-action="delete" />
        </outbound>
      </policies>
YAML
} >"$TMP/policies.yaml"

sed -e "s|@BACKEND_PORT@|$port|g" "$HERE/gatehouse/policy-heavy.yaml" >"$TMP/expressions.yaml"

# measure SCENARIO N: total instructions of a run serving N requests.
measure() {
  local scenario="$1" n="$2" config addresses="$TMP/addresses.json" pid listener
  config="$TMP/plain.yaml"; listener=http
  if [[ "$scenario" == https ]]; then config="$TMP/https.yaml"; listener=https; fi
  if [[ "$scenario" == policies ]]; then config="$TMP/policies.yaml"; fi
  if [[ "$scenario" == expressions ]]; then config="$TMP/expressions.yaml"; fi
  rm -f "$addresses" "$TMP"/callgrind.out.*
  valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.out.%p" \
    "$GATEHOUSE_BIN" gateway --config "$config" --listen 127.0.0.1:0 \
    --https-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --workers 1 \
    --access-log=false --bound-addresses-file "$addresses" >"$TMP/gatehouse.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do [[ -s "$addresses" ]] && break; sleep 0.1; done
  [[ -s "$addresses" ]] || { cat "$TMP/gatehouse.log" >&2; die "gatehouse did not start"; }
  local addr
  addr=$($PYTHON -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$addresses" "$listener")
  $PYTHON - "$listener" "$addr" "$n" <<'PY' || die "$scenario: requests failed"
import http.client, ssl, sys
scheme, addr, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
host, port = addr.rsplit(":", 1)
if scheme == "https":
    conn = http.client.HTTPSConnection(host, int(port), context=ssl._create_unverified_context())
else:
    conn = http.client.HTTPConnection(host, int(port))
for _ in range(n):
    conn.request("GET", "/bench/1k")
    response = conn.getresponse()
    body = response.read()
    if response.status != 200 or len(body) != 1024:
        sys.exit(f"unexpected answer: {response.status}, {len(body)} bytes")
PY
  kill -TERM "$pid"
  wait "$pid" || true
  callgrind_annotate "$TMP"/callgrind.out.* 2>/dev/null |
    awk '/PROGRAM TOTALS/ && !done { gsub(",", "", $1); print $1; done = 1 }'
}

printf '%-8s %12s\n' scenario "instr/req"
for scenario in $SCENARIOS; do
  log "$scenario: start-up only"
  base=$(measure "$scenario" 0) || die "$scenario: start-up run failed"
  log "$scenario: $REQUESTS requests"
  total=$(measure "$scenario" "$REQUESTS") || die "$scenario: measured run failed"
  printf '%-8s %12d\n' "$scenario" $(((total - base) / REQUESTS))
done
