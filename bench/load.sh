#!/usr/bin/env bash
# How long loading (parsing and compiling every policy of) a large configuration takes,
# with and without policy expressions: issue 13 asks that compiling expressions add at
# most 20% to the load time of a 10,000-API configuration.
#
# Generates three configurations of APIS APIs, each API with one operation and an API
# policy of the same shape:
#   none         no policy
#   expressions  set-variable, choose, set-header x2, rate-limit-by-key, outbound
#                set-header: every value a policy expression
#   literals     the same document with each expression replaced by as many `x`
#                (literal text of the same length): the same bytes to read
#   unique       as expressions, but each API's differ (one string literal names the
#                API), so no API shares a compiled expression with another
# and times `gatehouse validate -f --timings` on each, RUNS times, printing the best run
# of each and the ratios to literals, twice: for the whole `validate` (which compiles
# every policy twice: once in the checks that report every problem, once in the
# gateway's own compile), and for a gateway's start-up work alone (parsing the YAML and
# the gateway's compile, from `--timings`). Single-threaded; pin it with taskset for
# steadier numbers.
#
# Settings (environment): APIS=10000  RUNS=3  GATEHOUSE_BIN=target/release/gatehouse
set -euo pipefail

APIS="${APIS:-10000}"
RUNS="${RUNS:-3}"
GATEHOUSE_BIN="${GATEHOUSE_BIN:-target/release/gatehouse}"
PYTHON="${PYTHON:-python3}"

[[ -x "$GATEHOUSE_BIN" ]] || { echo "[load] error: no $GATEHOUSE_BIN (cargo build --release -p gatehouse)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$PYTHON" - "$APIS" "$work" <<'PY'
import sys
apis, work = int(sys.argv[1]), sys.argv[2]
policies = {
    "none": None,
    "expressions": """<policies>
  <inbound>
    <base />
    <set-variable name="tier" value="@(context.Request.Headers.GetValueOrDefault(&quot;X-Tier&quot;, &quot;standard&quot;).ToLower())" />
    <choose>
      <when condition="@((string)context.Variables[&quot;tier&quot;] == &quot;gold&quot;)">
        <set-header name="X-Route" exists-action="override"><value>@(&quot;gold-&quot; + context.Request.Url.Path)</value></set-header>
      </when>
    </choose>
    <set-header name="X-Tier" exists-action="override"><value>@{ var t = (string)context.Variables[&quot;tier&quot;]; return t.ToUpper(); }</value></set-header>
    <rate-limit-by-key calls="1000" renewal-period="60" counter-key="@(context.Request.Headers.GetValueOrDefault(&quot;X-Client&quot;, &quot;anonymous&quot;))" />
  </inbound>
  <outbound>
    <base />
    <set-header name="X-Served" exists-action="override"><value>@(context.Response.StatusCode.ToString())</value></set-header>
  </outbound>
</policies>""",
}
# The same document with every expression turned into literal text of the same length
# (a `<when>` condition must be `true` or `false`): both variants read the same number
# of bytes, so the difference is the cost of compiling expressions.
expressions = policies["expressions"]
condition = expressions.index('condition="') + len('condition="')
end = expressions.index('"', condition)
literals = expressions[:condition] + "true" + expressions[end:]

def blank_expressions(text):
    """Each `@(...)` / `@{...}` becomes as many `x` (balanced brackets; the documents
    write quotes as `&quot;`, so no string holds a bracket)."""
    out, i = [], 0
    while i < len(text):
        if text.startswith(("@(", "@{"), i):
            opening = text[i + 1]
            closing = ")" if opening == "(" else "}"
            depth, j = 0, i + 1
            while True:
                if text[j] == opening:
                    depth += 1
                elif text[j] == closing:
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            out.append("x" * (j + 1 - i))
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)

policies["literals"] = blank_expressions(literals)
# Every API's expressions different (a string literal naming the API): no API shares a
# compiled expression with another.
policies["unique"] = expressions.replace("&quot;standard&quot;", "&quot;standard-{api}&quot;")
for name in ["none", "literals", "expressions", "unique"]:
    policy = policies[name]
    with open(f"{work}/{name}.yaml", "w") as out:
        out.write("apis:\n")
        for i in range(apis):
            out.write(f"  - id: api{i}\n    path: api{i}\n    serviceUrl: http://127.0.0.1:9\n")
            if policy:
                out.write("    policy: |\n")
                for line in policy.replace("{api}", str(i)).splitlines():
                    out.write(f"      {line}\n")
            out.write("    operations:\n      - id: get\n        method: GET\n        urlTemplate: /items/{id}\n")
PY

# One run: the whole `validate` (wall clock, ms) and, from its `--timings`, what a
# gateway does at start (parsing the YAML and its own compile of every pipeline; the
# offline checks that report every problem come on top in `validate` only).
run_once() {
  local file="$1" start end timings
  start=$(date +%s%N)
  timings=$("$GATEHOUSE_BIN" validate -f "$file" --timings 2>&1 >/dev/null | grep '^timings')
  end=$(date +%s%N)
  "$PYTHON" -c "
import sys
fields = sys.argv[2].split()
parse = float(fields[fields.index('parse') + 1])
compile_ = float(fields[fields.index('gateway-compile') + 1])
print(int(sys.argv[1]) // 1000000, round(parse + compile_))" "$((end - start))" "$timings"
}

# The best of RUNS runs: "validate-ms start-up-ms".
best() {
  local file="$1" best_validate="" best_start="" validate start
  for _ in $(seq "$RUNS"); do
    read -r validate start < <(run_once "$file")
    if [[ -z "$best_validate" || "$validate" -lt "$best_validate" ]]; then best_validate="$validate"; fi
    if [[ -z "$best_start" || "$start" -lt "$best_start" ]]; then best_start="$start"; fi
  done
  echo "$best_validate $best_start"
}

echo "[load] $APIS APIs, best of $RUNS runs of gatehouse validate -f --timings" >&2
read -r none none_start < <(best "$work/none.yaml")
read -r literals literals_start < <(best "$work/literals.yaml")
read -r expressions expressions_start < <(best "$work/expressions.yaml")
read -r unique unique_start < <(best "$work/unique.yaml")
printf '%-12s %8s %10s\n' "" "validate" "start-up"
for name in none literals expressions unique; do
  v="${name}"; s="${name}_start"
  printf '%-12s %5s ms %7s ms\n' "$name" "${!v}" "${!s}"
done
"$PYTHON" -c "
import sys
l, e, u, ls, es, us = (int(v) for v in sys.argv[1:])
for label, a, b in (('validate', l, (e, u)), ('start-up', ls, (es, us))):
    print(f'{label:9} expressions/literals {b[0] / a:.2f} ({(b[0] - a) / a * 100:+.0f}%)  unique/literals {b[1] / a:.2f} ({(b[1] - a) / a * 100:+.0f}%)')
" "$literals" "$expressions" "$unique" "$literals_start" "$expressions_start" "$unique_start"
