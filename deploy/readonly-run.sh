#!/usr/bin/env bash
# What the container image relies on (issue 14): the gateway runs as uid 1001 with
# nothing writable but its configuration backup directory and /tmp, and starts and
# serves. Every file it can see is root's and read-only to it; afterwards, nothing may
# belong to uid 1001 outside those two places. Needs root (to become uid 1001).
#
#   bash deploy/readonly-run.sh [path/to/gatehouse]
set -euo pipefail

BIN="${1:-target/debug/gatehouse}"
[[ $(id -u) == 0 ]] || { echo "readonly-run: needs root, to run the gateway as uid 1001" >&2; exit 1; }
[[ -x "$BIN" ]] || { echo "readonly-run: $BIN not found (cargo build -p gatehouse)" >&2; exit 1; }

dir=$(mktemp -d /tmp/gatehouse-readonly.XXXXXX)
pid=""
cleanup() {
  if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
chmod 755 "$dir"
install -m 755 "$BIN" "$dir/gatehouse"
mkdir -m 700 "$dir/backup" "$dir/run"
chown 1001:1001 "$dir/backup" "$dir/run"
cat >"$dir/gateway.yaml" <<'YAML'
apis:
  - id: hello
    path: hello
    serviceUrl: http://127.0.0.1:9
    subscriptionRequired: false
    policy: |
      <policies><inbound><return-response><set-status code="200" /><set-body>read-only root works</set-body></return-response></inbound></policies>
    operations:
      - {id: any, method: GET, urlTemplate: /*}
YAML
chmod 644 "$dir/gateway.yaml"

# `run/` stands for the orchestrator's own writable mount (bound addresses for this
# script); the gateway gets the backup directory and /tmp, nothing else.
(cd "$dir" && setpriv --reuid 1001 --regid 1001 --clear-groups -- \
  env -i PATH=/usr/bin:/bin HOME=/nonexistent TMPDIR=/tmp \
  "$dir/gatehouse" --log-format text gateway --config "$dir/gateway.yaml" \
  --listen 127.0.0.1:0 --https-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --config-backup-dir "$dir/backup" --bound-addresses-file "$dir/run/bound.json" \
  >"$dir/stdout.log" 2>"$dir/stderr.log") &
pid=$!
for _ in $(seq 100); do
  [[ -s "$dir/run/bound.json" ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/stderr.log" >&2; echo "readonly-run: the gateway exited" >&2; exit 1; }
  sleep 0.1
done
[[ -s "$dir/run/bound.json" ]] || { cat "$dir/stderr.log" >&2; echo "readonly-run: the gateway did not start" >&2; exit 1; }
http=$(sed -n 's/.*"http":"\([^"]*\)".*/\1/p' "$dir/run/bound.json")
body=$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "http://$http/hello/x")
[[ "$body" == "read-only root works" ]] || { echo "readonly-run: unexpected answer: $body" >&2; exit 1; }
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=""
written=$(find "$dir" -uid 1001 -not -path "$dir/backup*" -not -path "$dir/run*")
[[ -z "$written" ]] || { echo "readonly-run: the gateway wrote outside its backup directory: $written" >&2; exit 1; }
echo "readonly-run: served as uid 1001 with only $dir/backup and /tmp writable; nothing written elsewhere"

# The control plane, as deploy/helm/gatehouse-control runs it: PostgreSQL, the admin
# token and the sealing key from the environment, only its data directory and /tmp
# writable. Needs the PostgreSQL server of the tests (GATEHOUSE_TEST_DATABASE_URL, which
# .ci/run starts); skipped without one, except under CI.
if [[ -z "${GATEHOUSE_TEST_DATABASE_URL:-}" ]]; then
  [[ "${CI:-}" != true ]] || { echo "readonly-run: CI=true needs GATEHOUSE_TEST_DATABASE_URL" >&2; exit 1; }
  echo "readonly-run: no GATEHOUSE_TEST_DATABASE_URL; the control plane run is skipped"
  exit 0
fi
database="readonly_run_$$"
psql -q "$GATEHOUSE_TEST_DATABASE_URL" -c "CREATE DATABASE $database" >/dev/null
drop_database() {
  psql -q "$GATEHOUSE_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
}
trap 'cleanup; drop_database' EXIT
mkdir -m 700 "$dir/data"
chown 1001:1001 "$dir/data"
rm -f "$dir/run/bound.json"
token=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
key=$(python3 -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())')
(cd "$dir" && setpriv --reuid 1001 --regid 1001 --clear-groups -- \
  env -i PATH=/usr/bin:/bin HOME=/nonexistent TMPDIR=/tmp \
  GATEHOUSE_DATABASE_URL="${GATEHOUSE_TEST_DATABASE_URL%/*}/$database" \
  GATEHOUSE_ADMIN_TOKEN="$token" GATEHOUSE_ENCRYPTION_KEY="$key" \
  GATEHOUSE_DATA_DIR="$dir/data" GATEHOUSE_PUBLIC_URL=http://control.example.com \
  "$dir/gatehouse" --log-format text control --listen 127.0.0.1:0 \
  --bound-addresses-file "$dir/run/bound.json" \
  >"$dir/control-stdout.log" 2>"$dir/control-stderr.log") &
pid=$!
for _ in $(seq 100); do
  [[ -s "$dir/run/bound.json" ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/control-stderr.log" >&2; echo "readonly-run: the control plane exited" >&2; exit 1; }
  sleep 0.1
done
[[ -s "$dir/run/bound.json" ]] || { cat "$dir/control-stderr.log" >&2; echo "readonly-run: the control plane did not start" >&2; exit 1; }
api=$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d.get("http") or d.get("listen") or d.get("addr"))' "$dir/run/bound.json")
python3 - "$api" "$token" <<'PY' || { cat "$dir/control-stderr.log" >&2; echo "readonly-run: the control plane did not serve" >&2; exit 1; }
import json, sys, urllib.request
api, token = sys.argv[1], sys.argv[2]
def call(method, path, body=None):
    request = urllib.request.Request(f"http://{api}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    return urllib.request.urlopen(request, timeout=5)
assert call("GET", "/readyz").status == 200
call("PUT", "/named-values/secret", {"value": "s3cr3t", "secret": True})
call("PUT", "/apis/hello", {"path": "hello", "serviceUrl": "http://127.0.0.1:9"})
assert call("GET", "/apis/hello").status == 200
PY
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=""
written=$(find "$dir" -uid 1001 -not -path "$dir/backup*" -not -path "$dir/run*" -not -path "$dir/data*")
[[ -z "$written" ]] || { echo "readonly-run: the control plane wrote outside its data directory: $written" >&2; exit 1; }
echo "readonly-run: the control plane served as uid 1001 on PostgreSQL with only $dir/data and /tmp writable; nothing written elsewhere"
