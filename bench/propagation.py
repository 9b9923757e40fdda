#!/usr/bin/env python3
"""Helper for bench/propagation.sh (python3 standard library only).

Subcommands:
  changes     make successive management-API changes and time each until a gateway
              response shows it (keep-alive polling with http.client)
  seed        write N APIs straight into a stopped control plane's SQLite database
  yaml        print a configuration file with N APIs and a gateway serving them all
  gateway-body  print the management-API body of a gateway serving those N APIs
  api-body    print the management-API body of one API (with the X-Version policy)
  wait-ready  wait for a gateway's bound-addresses file, then for its /readyz to be 200;
              print the Unix time (seconds, float) it became ready

Everything talks to 127.0.0.1 only. Exit status 0 on success, 1 on failure (with a
message on stderr), 2 on bad usage.
"""

import argparse
import http.client
import json
import math
import os
import sqlite3
import sys
import time
import urllib.parse

API_ID = "prop"
EXTRA_PREFIX = "extra-"


def fail(message):
    print(f"[propagation.py] error: {message}", file=sys.stderr)
    sys.exit(1)


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list (p in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


class Client:
    """One keep-alive HTTP/1.1 connection, reopened after an error."""

    def __init__(self, base_url, timeout):
        url = urllib.parse.urlsplit(base_url)
        if url.scheme != "http":
            fail(f"only http:// URLs, got {base_url}")
        self.host = url.hostname
        self.port = url.port or 80
        self.timeout = timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        """Returns (status, headers, body bytes, time the response head arrived)."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            response = self.conn.getresponse()
            arrived = time.perf_counter()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if response.will_close:
            self.close()
        return response.status, response.headers, data, arrived

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def api_body(api_id, path, backend, version=None):
    body = {
        "id": api_id,
        "path": path,
        "serviceUrl": backend,
        "subscriptionRequired": False,
        "operations": [{"id": "get", "method": "GET", "urlTemplate": "/*"}],
    }
    if version is not None:
        body["policy"] = (
            "<policies><inbound><base /></inbound><backend><base /></backend>"
            "<outbound><base />"
            '<set-header name="X-Version" exists-action="override">'
            f"<value>{version}</value></set-header>"
            "</outbound><on-error><base /></on-error></policies>"
        )
    return body


# --- changes ------------------------------------------------------------------------


def cmd_changes(args):
    with open(args.token_file, encoding="utf-8") as f:
        admin = f.read().strip()
    mgmt = Client(args.control, timeout=30)
    gateway = Client(args.gateway, timeout=5)
    auth = {"Authorization": f"Bearer {admin}", "Content-Type": "application/json"}

    def manage(method, path, body, expected):
        data = None if body is None else json.dumps(body).encode()
        try:
            status, _, reply, _ = mgmt.request(method, path, data, auth)
        except (OSError, http.client.HTTPException):
            # Once more on a new connection (an idle keep-alive one may have been
            # closed); PUT and DELETE are idempotent.
            try:
                status, _, reply, _ = mgmt.request(method, path, data, auth)
            except (OSError, http.client.HTTPException) as e:
                fail(f"{method} {path}: {e}")
        done = time.perf_counter()
        if status not in expected:
            fail(f"{method} {path}: {status} {reply[:500].decode(errors='replace')}")
        return done

    poll_requests = 0
    poll_errors = []  # unexpected statuses or connection errors while polling

    def poll_until(path, check, start):
        """Polls the gateway until check(status, headers) holds; returns seconds since
        start, or None after args.timeout."""
        nonlocal poll_requests
        deadline = start + args.timeout
        while True:
            try:
                status, headers, _, arrived = gateway.request("GET", path)
                poll_requests += 1
            except (OSError, http.client.HTTPException) as e:
                poll_requests += 1
                poll_errors.append(f"GET {path}: {type(e).__name__}: {e}")
                status, headers, arrived = None, None, time.perf_counter()
            if status is not None:
                verdict = check(status, headers)
                if verdict is True:
                    return arrived - start
                if verdict is not None:  # an unexpected answer
                    poll_errors.append(f"GET {path}: {verdict}")
            if arrived > deadline:
                return None
            if status is None:
                time.sleep(0.001)

    def shows_version(expected):
        def check(status, headers):
            if status != 200:
                return f"status {status}"
            return headers.get("X-Version") == expected or None

        return check

    def shows_status(expected):
        def check(status, _headers):
            if status == expected:
                return True
            return None if status in (200, 404) else f"status {status}"

        return check

    rows = []  # (index, kind, put ms, propagation ms or None)
    extra = None
    for i in range(1, args.count + 1):
        if i % 2 == 1:
            kind = "set-header"
            value = str(i)
            done = manage("PUT", f"/apis/{API_ID}", api_body(API_ID, API_ID, args.backend, value), (200,))
            started = done
            seconds = poll_until(f"/{API_ID}/x", shows_version(value), done)
        elif extra is None:
            kind = "add-api"
            extra = f"{EXTRA_PREFIX}{i}"
            manage("PUT", f"/apis/{extra}", api_body(extra, extra, args.backend), (200, 201))
            # The API is served once the gateway lists it: that write is the change.
            done = manage("PUT", f"/gateways/{args.gateway_id}", {"id": args.gateway_id, "apis": [API_ID, extra]}, (200,))
            seconds = poll_until(f"/{extra}/x", shows_status(200), done)
        else:
            kind = "remove-api"
            done = manage("PUT", f"/gateways/{args.gateway_id}", {"id": args.gateway_id, "apis": [API_ID]}, (200,))
            seconds = poll_until(f"/{extra}/x", shows_status(404), done)
            manage("DELETE", f"/apis/{extra}", None, (204,))
            extra = None
        rows.append((i, kind, seconds))
        if args.progress and i % args.progress == 0:
            print(f"[propagation.py] {i}/{args.count} changes", file=sys.stderr)

    with open(args.out, "w", encoding="utf-8") as f:
        f.write("change\tkind\tpropagation_ms\n")
        for i, kind, seconds in rows:
            f.write(f"{i}\t{kind}\t{'timeout' if seconds is None else f'{seconds * 1000:.3f}'}\n")

    seen = sorted(s * 1000 for _, _, s in rows if s is not None)
    timeouts = sum(1 for _, _, s in rows if s is None)
    by_kind = {}
    for _, kind, s in rows:
        if s is not None:
            by_kind.setdefault(kind, []).append(s * 1000)
    print(f"changes={len(rows)}")
    print(f"timeouts={timeouts}")
    print(f"p50_ms={percentile(seen, 50):.1f}")
    print(f"p99_ms={percentile(seen, 99):.1f}")
    print(f"max_ms={(seen[-1] if seen else float('nan')):.1f}")
    for kind in ("set-header", "add-api", "remove-api"):
        values = sorted(by_kind.get(kind, []))
        print(
            f"kind_{kind.replace('-', '_')}=n {len(values)}, p50 {percentile(values, 50):.1f} ms, "
            f"p99 {percentile(values, 99):.1f} ms, max {(values[-1] if values else float('nan')):.1f} ms"
        )
    print(f"poll_requests={poll_requests}")
    print(f"poll_errors={len(poll_errors)}")
    for line in poll_errors[:10]:
        print(f"poll_error={line}")


# --- bulk APIs ----------------------------------------------------------------------


def bulk_id(i):
    return f"bulk-{i}"


def cmd_seed(args):
    """Inserts APIs as the control plane stores them (docs/control-plane.md, Storage):
    one `entities` row and one `changes` row each, and `state.revision` moved on. The
    control plane must be stopped. Whatever is seeded is validated afterwards by the
    management API when the gateway assignment naming every API is written."""
    if not os.path.exists(args.db):
        fail(f"no database at {args.db}")
    db = sqlite3.connect(args.db, timeout=10)
    try:
        with db:
            (revision,) = db.execute("SELECT value FROM state WHERE name = 'revision'").fetchone()
            entities = []
            changes = []
            for i in range(args.apis):
                revision += 1
                api_id = bulk_id(i)
                body = api_body(api_id, f"bulk/{i}", args.backend)
                text = json.dumps(body, sort_keys=True, separators=(",", ":"))
                entities.append(("api", api_id, text, revision))
                changes.append((revision, "api", api_id, "upsert"))
            db.executemany("INSERT INTO entities (kind, id, body, revision) VALUES (?, ?, ?, ?)", entities)
            db.executemany("INSERT INTO changes (revision, kind, id, op) VALUES (?, ?, ?, ?)", changes)
            db.execute("UPDATE state SET value = ? WHERE name = 'revision'", (revision,))
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    print(revision)


def cmd_yaml(args):
    out = sys.stdout
    out.write("apis:\n")
    for i in range(args.apis):
        out.write(
            f"  - id: {bulk_id(i)}\n    path: bulk/{i}\n    serviceUrl: {args.backend}\n"
            "    subscriptionRequired: false\n    operations:\n"
            "      - id: get\n        method: GET\n        urlTemplate: /*\n"
        )
    out.write(f"gateways:\n  - id: {args.gateway_id}\n    apis:\n")
    for i in range(args.apis):
        out.write(f"      - {bulk_id(i)}\n")


def cmd_api_body(args):
    json.dump(api_body(args.id, args.id, args.backend, args.version), sys.stdout)


def cmd_gateway_body(args):
    json.dump({"id": args.gateway_id, "apis": [bulk_id(i) for i in range(args.apis)]}, sys.stdout)


# --- readiness ----------------------------------------------------------------------


def cmd_wait_ready(args):
    if args.started_file:
        with open(args.started_file, "w", encoding="utf-8") as f:
            f.write("started\n")
    deadline = time.monotonic() + args.timeout
    admin = None
    while admin is None:
        try:
            with open(args.addresses_file, encoding="utf-8") as f:
                admin = json.load(f).get("admin")
        except (OSError, ValueError):
            pass
        if admin is None:
            if time.monotonic() > deadline:
                fail(f"{args.addresses_file} not written within {args.timeout}s")
            time.sleep(0.0005)
    host, _, port = admin.rpartition(":")
    while True:
        conn = http.client.HTTPConnection(host, int(port), timeout=2)
        try:
            conn.request("GET", "/readyz")
            status = conn.getresponse().status
            ready_at = time.time()
        except (OSError, http.client.HTTPException):
            status = None
        finally:
            conn.close()
        if status == 200:
            print(f"{ready_at:.6f}")
            return
        if time.monotonic() > deadline:
            fail(f"/readyz on {admin} not 200 within {args.timeout}s (last: {status})")
        time.sleep(0.001)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("changes")
    p.add_argument("--control", required=True, help="management API URL")
    p.add_argument("--token-file", required=True, help="admin token file")
    p.add_argument("--gateway", required=True, help="gateway data-plane URL")
    p.add_argument("--gateway-id", required=True)
    p.add_argument("--backend", required=True, help="serviceUrl of the APIs")
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--timeout", type=float, default=10, help="seconds to wait for each change")
    p.add_argument("--progress", type=int, default=50, help="log every N changes (0: never)")
    p.add_argument("--out", required=True, help="per-change TSV")
    p.set_defaults(func=cmd_changes)

    p = sub.add_parser("seed")
    p.add_argument("--db", required=True)
    p.add_argument("--apis", type=int, required=True)
    p.add_argument("--backend", required=True)
    p.set_defaults(func=cmd_seed)

    p = sub.add_parser("yaml")
    p.add_argument("--apis", type=int, required=True)
    p.add_argument("--backend", required=True)
    p.add_argument("--gateway-id", required=True)
    p.set_defaults(func=cmd_yaml)

    p = sub.add_parser("gateway-body")
    p.add_argument("--apis", type=int, required=True)
    p.add_argument("--gateway-id", required=True)
    p.set_defaults(func=cmd_gateway_body)

    p = sub.add_parser("api-body")
    p.add_argument("--id", required=True, help="API id, also its path")
    p.add_argument("--backend", required=True)
    p.add_argument("--version", help="X-Version set by its outbound policy (none: no policy)")
    p.set_defaults(func=cmd_api_body)

    p = sub.add_parser("wait-ready")
    p.add_argument("--addresses-file", required=True)
    p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--started-file", help="written once polling starts")
    p.set_defaults(func=cmd_wait_ready)

    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
