#!/usr/bin/env bash
# Stands in for `gatehouse gateway` in the GatewayProcess tests: follows the same CLI
# contract (writes --bound-addresses-file atomically, reloads on HUP, exits on TERM)
# and logs what it does so the tests can check the captured output.
#
# FAKE_HTTP / FAKE_ADMIN: the addresses it reports; FAKE_NO_ADDRESSES=1: never reports.
set -u
if [ "${1:-}" != gateway ]; then
  echo "expected subcommand gateway, got ${1:-nothing}" >&2
  exit 2
fi
shift
config='' addresses=''
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config=$2; shift 2 ;;
    --bound-addresses-file) addresses=$2; shift 2 ;;
    --listen | --admin-listen) echo "$1 $2" >&2; shift 2 ;;
    --fail) echo "fatal: $2" >&2; exit 3 ;;
    *) echo "extra arg: $1" >&2; shift ;;
  esac
done
echo "config: $(cat "$config")" >&2
echo "env: NO_COLOR=${NO_COLOR:-} FAKE_MARK=${FAKE_MARK:-}" >&2
trap 'echo "reloaded: $(cat "$config")" >&2' HUP
trap 'echo "draining" >&2; exit 0' TERM
if [ "${FAKE_NO_ADDRESSES:-}" != 1 ]; then
  printf '{"http":"%s","admin":"%s","extra":1}' \
    "${FAKE_HTTP:-127.0.0.1:1111}" "${FAKE_ADMIN:-127.0.0.1:2222}" >"$addresses.tmp"
  mv "$addresses.tmp" "$addresses"
fi
echo "access log line"
# Short sleeps: bash runs trap handlers only between commands.
while true; do sleep 0.05; done
