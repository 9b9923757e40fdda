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
# and times `gatehouse validate -f` (the gateway's own reader and compiler, every
# pipeline compiled) on each, RUNS times, printing the best run of each and the ratio
# expressions / literals. Single-threaded; pin it with taskset for steadier numbers.
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

best() {
  local file="$1" best="" start end elapsed
  for _ in $(seq "$RUNS"); do
    start=$(date +%s%N)
    "$GATEHOUSE_BIN" validate -f "$file" >/dev/null
    end=$(date +%s%N)
    elapsed=$(( (end - start) / 1000000 ))
    if [[ -z "$best" || "$elapsed" -lt "$best" ]]; then best="$elapsed"; fi
  done
  echo "$best"
}

echo "[load] $APIS APIs, best of $RUNS runs of gatehouse validate -f" >&2
none=$(best "$work/none.yaml")
literals=$(best "$work/literals.yaml")
expressions=$(best "$work/expressions.yaml")
unique=$(best "$work/unique.yaml")
printf '%-12s %8s ms\n' none "$none" literals "$literals" expressions "$expressions" unique "$unique"
"$PYTHON" -c "
import sys
l, e, u = (int(v) for v in sys.argv[1:])
print(f'expressions/literals {e / l:.2f} ({(e - l) / l * 100:+.0f}%)')
print(f'unique/literals      {u / l:.2f} ({(u - l) / l * 100:+.0f}%)')" "$literals" "$expressions" "$unique"
