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
