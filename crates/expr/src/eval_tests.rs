#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::test_host::MapHost;

enum Want {
    V(Value),
    E(&'static str),
}
use Want::{E, V};

fn s(x: &str) -> Want {
    V(Value::from(x))
}
fn i(x: i64) -> Want {
    V(Value::Int(x))
}
fn d(x: f64) -> Want {
    V(Value::Double(x))
}
fn b(x: bool) -> Want {
    V(Value::Bool(x))
}
const N: Want = V(Value::Null);

/// A source starting with `{` is a block (`@{ ... }`), anything else a single expression.
fn run(source: &str) -> Result<Value, String> {
    let kind = if source.trim_start().starts_with('{') {
        ExpressionKind::Block
    } else {
        ExpressionKind::Single
    };
    let expr = Expression::compile(source, kind).map_err(|e| format!("load: {e}"))?;
    expr.evaluate(&MapHost::sample()).map_err(|e| e.to_string())
}

fn cases() -> Vec<(&'static str, Want)> {
    vec![
        // literals
        ("123", i(123)),
        ("123L", i(123)),
        ("1.5", d(1.5)),
        ("1.5d", d(1.5)),
        ("2m", d(2.0)),
        ("1e3", d(1000.0)),
        ("true", b(true)),
        ("false", b(false)),
        ("null", N),
        (r#""a\"b\\c""#, s("a\"b\\c")),
        (r#""x\ny\tz\r""#, s("x\ny\tz\r")),
        (r#""\u0041\0""#, s("A\0")),
        (r#"@"C:\path\""quoted""""#, s("C:\\path\\\"quoted\"")),
        ("'a'", s("a")),
        (r"'\n'", s("\n")),
        // arithmetic and precedence
        ("1 + 2 * 3", i(7)),
        ("(1 + 2) * 3", i(9)),
        ("10 - 4 - 3", i(3)),
        ("7 / 2", i(3)),
        ("-7 / 2", i(-3)),
        ("7 % 3", i(1)),
        ("-7 % 3", i(-1)),
        ("7.0 / 2", d(3.5)),
        ("7 / 2.0", d(3.5)),
        ("1.5 * 2", d(3.0)),
        ("2 * -3", i(-6)),
        ("-(2 + 3)", i(-5)),
        ("+5", i(5)),
        ("1 / 0", E("division by zero")),
        ("1 % 0", E("division by zero")),
        ("1.0 / 0", d(f64::INFINITY)),
        ("1 + 2 == 3", b(true)),
        ("1 + 2 * 3 - 4 / 2", i(5)),
        ("9223372036854775807 + 1", i(i64::MIN)),
        // comparisons and logic
        ("1 < 2", b(true)),
        ("2 <= 2", b(true)),
        ("3 > 4", b(false)),
        ("3 >= 4", b(false)),
        ("1 == 1.0", b(true)),
        ("1 != 2", b(true)),
        (r#""a" == "a""#, b(true)),
        (r#""a" != "A""#, b(true)),
        ("null == null", b(true)),
        (r#"null == "x""#, b(false)),
        (
            r#""a" < "b""#,
            E("operator `<` cannot be applied to string and string"),
        ),
        ("true && false", b(false)),
        ("true || false", b(true)),
        ("!true", b(false)),
        ("!(1 > 2)", b(true)),
        ("false && 1 / 0 == 1", b(false)),
        ("true || 1 / 0 == 1", b(true)),
        ("true || false && false", b(true)),
        ("1 < 2 == true", b(true)),
        ("1 && true", E("expected a bool condition, got int")),
        ("!1", E("operator `!` cannot be applied to int")),
        ("-\"x\"", E("operator `-` cannot be applied to string")),
        (
            "true + 1",
            E("operator `+` cannot be applied to bool and int"),
        ),
        // strings and concatenation
        (r#""a" + "b""#, s("ab")),
        (r#""n=" + 1"#, s("n=1")),
        (r#"1 + 2 + "x""#, s("3x")),
        (r#""x" + 1 + 2"#, s("x12")),
        (r#""v:" + null"#, s("v:")),
        (r#""b:" + true"#, s("b:True")),
        (r#""d:" + 1.5"#, s("d:1.5")),
        (r#""hello".Length"#, i(5)),
        (r#""hello".Contains("ell")"#, b(true)),
        (r#""hello".Contains("xyz")"#, b(false)),
        (r#""hello".StartsWith("he")"#, b(true)),
        (r#""hello".EndsWith("lo")"#, b(true)),
        (r#""hello".IndexOf("l")"#, i(2)),
        (r#""hello".IndexOf("l", 3)"#, i(3)),
        (r#""hello".IndexOf("z")"#, i(-1)),
        (r#""hello".Substring(1)"#, s("ello")),
        (r#""hello".Substring(1, 3)"#, s("ell")),
        (r#""hello".Substring(4, 3)"#, E("out of range")),
        (r#""a,b,c".Split(',').Length"#, i(3)),
        (r#""a,b,c".Split(',')[1]"#, s("b")),
        (r#""a, b;c".Split(new [] { ", ", ";" })[2]"#, s("c")),
        (r#""a b".Split()[1]"#, s("b")),
        (r#""/orders/42".Split('/')[0]"#, s("")),
        (r#""hello".Replace("l", "L")"#, s("heLLo")),
        (r#""hello".Replace("", "L")"#, E("must not be empty")),
        (r#""Hello".ToLower()"#, s("hello")),
        (r#""Hello".ToUpper()"#, s("HELLO")),
        (r#""Hello".ToLowerInvariant()"#, s("hello")),
        (r#""Hello".ToUpperInvariant()"#, s("HELLO")),
        (r#""  hi  ".Trim()"#, s("hi")),
        (r#""  hi  ".TrimStart()"#, s("hi  ")),
        (r#""  hi  ".TrimEnd()"#, s("  hi")),
        (r#""/a/".Trim('/')"#, s("a")),
        (r#""/a/".TrimStart('/')"#, s("a/")),
        (r#""/a/".TrimEnd('/')"#, s("/a")),
        (r#""7".PadLeft(3, '0')"#, s("007")),
        (r#""7".PadLeft(3)"#, s("  7")),
        (r#""7".PadRight(2, '.')"#, s("7.")),
        (r#""abc".Equals("abc")"#, b(true)),
        (r#""abc".Equals("ABC")"#, b(false)),
        (r#""abc"[1]"#, s("b")),
        (r#""abc"[5]"#, E("index 5 is out of range")),
        (
            r#""abc".Frobnicate()"#,
            E("`Frobnicate` is not a member of string"),
        ),
        (r#""abc".Nope"#, E("`Nope` is not a member of string")),
        ("42.ToString()", s("42")),
        ("true.ToString()", s("True")),
        (
            r#""x".Contains(null)"#,
            E("argument 1 of `Contains` is null"),
        ),
        // static string helpers
        ("string.IsNullOrEmpty(null)", b(true)),
        (r#"string.IsNullOrEmpty("")"#, b(true)),
        (r#"string.IsNullOrEmpty("a")"#, b(false)),
        (r#"string.IsNullOrWhiteSpace("  ")"#, b(true)),
        (r#"String.IsNullOrWhiteSpace(" a ")"#, b(false)),
        (r#"string.Join(",", "a", "b", "c")"#, s("a,b,c")),
        (r#"string.Join("-", "a/b".Split('/'))"#, s("a-b")),
        (r#"string.Concat("a", 1, true)"#, s("a1True")),
        (r#"string.Format("{0}-{1}-{0}", "a", 2)"#, s("a-2-a")),
        (r#"string.Format("{{{0}}}", 1)"#, s("{1}")),
        (
            r#"string.Format("{1}", "a")"#,
            E("format item {1} has no argument"),
        ),
        ("string.Empty", s("")),
        // parsing and conversion
        (r#"int.Parse("42")"#, i(42)),
        (r#"int.Parse(" -7 ")"#, i(-7)),
        (r#"int.Parse("abc")"#, E("`abc` is not a valid int")),
        (r#"int.Parse("99999999999")"#, E("is not a valid int")),
        (r#"long.Parse("99999999999")"#, i(99_999_999_999)),
        (r#"double.Parse("2.5")"#, d(2.5)),
        (r#"bool.Parse("True")"#, b(true)),
        (r#"bool.Parse("yes")"#, E("`yes` is not a valid bool")),
        (r#"Convert.ToInt32("12")"#, i(12)),
        ("Convert.ToString(12)", s("12")),
        ("int.MaxValue", i(2_147_483_647)),
        ("Math.Max(3, 7)", i(7)),
        ("Math.Min(3, 7)", i(3)),
        ("Math.Max(3, 7.5)", d(7.5)),
        ("Math.Abs(-4)", i(4)),
        ("Math.Abs(-4.5)", d(4.5)),
        ("Math.Floor(2.7)", d(2.0)),
        // A static member Gatehouse does not implement is refused at load.
        (
            "Math.Sqrt(4)",
            E("load: 1:1: `Math.Sqrt` is not available in policy expressions"),
        ),
        ("string.Copy(\"a\")", E("`string.Copy` is not available")),
        ("int.Epsilon", E("`int.Epsilon` is not available")),
        // Not available yet: refused at load, naming it.
        (
            "Guid.NewGuid()",
            E("`Guid` is not available in policy expressions"),
        ),
        (
            "DateTime.UtcNow",
            E("`DateTime` is not available in policy expressions"),
        ),
        // casts, is, as
        ("(int)2.9", i(2)),
        ("(long)-2.9", i(-2)),
        ("(double)3", d(3.0)),
        (r#"(string)"x""#, s("x")),
        ("(string)null", N),
        ("(string)5", E("cannot cast int to string")),
        (r#"(int)"5""#, E("cannot cast string to int")),
        ("(object)5", i(5)),
        (r#""x" is string"#, b(true)),
        ("5 is string", b(false)),
        ("5 is int", b(true)),
        ("null is string", b(false)),
        ("1.5 is double", b(true)),
        (r#""x" as string"#, s("x")),
        ("5 as string", N),
        ("(5 as string) ?? \"none\"", s("none")),
        ("context.Request is IRequest", b(true)),
        ("(IRequest)context.Request is IRequest", b(true)),
        // ?? ?: ?.
        (r#"null ?? "d""#, s("d")),
        (r#""a" ?? "d""#, s("a")),
        ("null ?? null ?? 3", i(3)),
        ("true ? 1 : 2", i(1)),
        ("false ? 1 : 2", i(2)),
        ("1 > 2 ? \"a\" : 2 > 1 ? \"b\" : \"c\"", s("b")),
        (r#"1 ? "a" : "b""#, E("expected a bool condition, got int")),
        ("context.Response?.StatusCode", N),
        ("context.Response?.Headers.Count", N),
        (
            r#"context.Response?.Body.As<string>() ?? "none""#,
            s("none"),
        ),
        (
            "context.Response.StatusCode",
            E("`context.Response` is null"),
        ),
        ("context.Request?.Method", s("GET")),
        (r#"((string)null)?.Length"#, N),
        (r#"((string)null)?[0]"#, N),
        (r#"((string)null).Length"#, E("`((string)null)` is null")),
        // interpolation
        (r#"$"n={1 + 2}""#, s("n=3")),
        (r#"$"{{x}} {"in"}""#, s("{x} in")),
        (
            r#"$"{context.Request.Method} {context.Request.Url.Path}""#,
            s("GET /orders/42"),
        ),
        (r#"$"a{(true ? "b" : "c")}d""#, s("abd")),
        (r#"$@"C:\{1}""#, s("C:\\1")),
        // context through the host
        ("context.Request.Method", s("GET")),
        ("context.Request.Url.Path", s("/orders/42")),
        (
            r#"context.Request.Headers.GetValueOrDefault("Accept", "")"#,
            s("application/json"),
        ),
        (
            r#"context.Request.Headers.GetValueOrDefault("x-tenant", "")"#,
            s("contoso"),
        ),
        (
            r#"context.Request.Headers.GetValueOrDefault("Missing", "dflt")"#,
            s("dflt"),
        ),
        (
            r#"context.Request.Headers["Accept"]"#,
            s("application/json"),
        ),
        (
            r#"context.Request.Headers["Nope"]"#,
            E("the header `Nope` is not present"),
        ),
        (r#"context.Request.Headers.ContainsKey("Accept")"#, b(true)),
        (r#"context.Variables["user"]"#, s("alice")),
        (r#"context.Variables["count"] + 1"#, i(4)),
        (
            r#"context.Variables.GetValueOrDefault<string>("user", "d")"#,
            s("alice"),
        ),
        (
            r#"context.Variables.GetValueOrDefault<string>("nobody", "d")"#,
            s("d"),
        ),
        (
            r#"context.Variables.GetValueOrDefault<string>("count", "d")"#,
            E("the variable is a int, not a string"),
        ),
        (r#"context.Variables.ContainsKey("user")"#, b(true)),
        (r#"context.Variables.ContainsKey("x")"#, b(false)),
        (
            "context.Request.Unknown",
            E("`Unknown` is not a member of `context.Request`"),
        ),
        ("context.Request.Method.ToLower()", s("get")),
        ("context.Request.Url.Path.Split('/')[2]", s("42")),
        (
            r#"context.Request.Headers.GetValueOrDefault("Accept", "").Contains("json") ? "j" : "x""#,
            s("j"),
        ),
        // JSON
        (r#"JObject.Parse("{\"a\":1,\"b\":\"x\"}")["a"]"#, i(1)),
        (r#"JObject.Parse("{\"a\":1,\"b\":\"x\"}")["b"]"#, s("x")),
        (r#"JObject.Parse("{\"a\":1}")["z"]"#, N),
        (
            r#"JObject.Parse("{\"a\":{\"b\":[1,2]}}")["a"]["b"][1]"#,
            i(2),
        ),
        (r#"JObject.Parse("{\"a\":1}").ContainsKey("a")"#, b(true)),
        (
            r#"JObject.Parse("{\"a\":\"5\"}").Value<string>("a")"#,
            s("5"),
        ),
        (r#"JObject.Parse("[1]")"#, E("is not a valid JObject")),
        (r#"JObject.Parse("{")"#, E("not valid JSON")),
        (r#"JObject.Parse("{}") is JObject"#, b(true)),
        (r#"JArray.Parse("[1,2,3]").Count"#, i(3)),
        ("new JObject().Count", i(0)),
        ("new JArray(1, \"a\").Count", i(2)),
        (r#"new JObject().ToString()"#, s("{}")),
        // assignment into a local JObject / JArray
        (
            r#"{ var o = JObject.Parse("{\"a\":{\"b\":1}}"); o["a"]["b"] = 2; o["c"] = "x"; return o.ToString(); }"#,
            s("{\n  \"a\": {\n    \"b\": 2\n  },\n  \"c\": \"x\"\n}"),
        ),
        (
            r#"{ var a = JArray.Parse("[1,2]"); a[1] = new JObject(); return a.ToString(); }"#,
            s("[\n  1,\n  {}\n]"),
        ),
        (
            r#"{ var a = JArray.Parse("[1]"); a[3] = 1; return a; }"#,
            E("index 3 is outside the JArray (length 1)"),
        ),
        (
            r#"{ var o = new JObject(); o["a"]["b"] = 1; return o; }"#,
            E("the JObject has no property `a`"),
        ),
        (
            r#"{ var t = "text"; t["a"] = 1; return t; }"#,
            E("`t` is a string: only a JObject or JArray can be assigned into"),
        ),
        (
            r#"{ var o = new JObject(); var big = "".PadLeft(1000000, 'x'); foreach (var i in new [] {1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18}) { o["k"] = big; } return o; }"#,
            E("assignments into JSON wrote more than the limit"),
        ),
        // arrays and LINQ
        ("new [] { 1, 2, 3 }.Length", i(3)),
        ("new int[] { 1, 2, 3 }[2]", i(3)),
        ("new [] { 1, 2, 3 }.Where(x => x > 1).Count()", i(2)),
        ("new [] { 1, 2, 3 }.Select(x => x * 10)[2]", i(30)),
        ("new [] { 1, 2, 3 }.Any(x => x == 2)", b(true)),
        ("new [] { 1, 2, 3 }.All(x => x > 1)", b(false)),
        ("new [] { 1, 2, 3 }.First(x => x > 1)", i(2)),
        ("new [] { 1, 2, 3 }.FirstOrDefault(x => x > 5)", N),
        (
            "new [] { 1, 2, 3 }.First(x => x > 5)",
            E("no matching element"),
        ),
        ("new [] { 1, 2, 3 }.Contains(2)", b(true)),
        (
            "new [] { 1, 2, 3 }.Any(x => x)",
            E("the lambda must return a bool"),
        ),
        ("new [] { 1, 2, 3 }[3]", E("index 3 is out of range")),
        (
            r#""a,b".Split(',').Select(p => p.ToUpper()).FirstOrDefault()"#,
            s("A"),
        ),
        (
            "context.Variables[\"items\"].Where(x => x % 2 == 1).Count()",
            i(2),
        ),
        // blocks
        ("{ return 1; }", i(1)),
        ("{ var x = 2; var y = x * 3; return x + y; }", i(8)),
        ("{ string s = \"a\"; s = s + \"b\"; return s; }", s("ab")),
        ("{ var n = 1; n += 4; n -= 2; return n; }", i(3)),
        (
            "{ if (1 > 2) { return \"a\"; } else { return \"b\"; } }",
            s("b"),
        ),
        ("{ if (true) return 1; return 2; }", i(1)),
        (
            "{ var x = 0; if (false) x = 1; else if (true) x = 2; return x; }",
            i(2),
        ),
        (
            "{ var sum = 0; foreach (var p in new [] { 1, 2, 3 }) { sum += p; } return sum; }",
            i(6),
        ),
        (
            "{ var out = \"\"; foreach (var c in \"abc\") out = c + out; return out; }",
            s("cba"),
        ),
        (
            "{ foreach (var x in new [] { 1, 2, 3 }) { if (x == 2) return x * 100; } return 0; }",
            i(200),
        ),
        (
            "{ var n = \"\"; foreach (var h in context.Request.Headers) n += h + \";\"; return n; }",
            s("Accept;X-Tenant;"),
        ),
        ("{ var x = 1; { var y = 2; x = x + y; } return x; }", i(3)),
        (
            r#"{ var tenant = context.Request.Headers.GetValueOrDefault("X-Tenant", ""); if (string.IsNullOrEmpty(tenant)) { return "anonymous"; } return tenant.ToUpper(); }"#,
            s("CONTOSO"),
        ),
        (
            "{ var s = \"x\"; foreach (var a in new [] {1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21}) { s = s + s; } return s.Length; }",
            E("string of"),
        ),
        (
            "{ var s = \"\"; var big = \"a\".PadLeft(100000); foreach (var a in new [] {1,2,3,4,5,6,7,8,9,10,11}) { s = s + big; } return s.Length; }",
            E("longer than the limit"),
        ),
        (
            "{ foreach (var x in null) { } return 1; }",
            E("`null` is null"),
        ),
        (
            "{ foreach (var x in 5) { } return 1; }",
            E("a int cannot be enumerated"),
        ),
        (
            "{ foreach (var x in context.Variables) { } return 1; }",
            E("`context.Variables` cannot be enumerated"),
        ),
        // load-time rejections surface through compile
        (
            "System.IO.File.ReadAllText(\"/etc/passwd\")",
            E("load: 1:1: `System` is not available in policy expressions"),
        ),
        ("{ var x = 1; }", E("load:")),
    ]
}

#[test]
fn table() {
    let cases = cases();
    assert!(cases.len() >= 150, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (source, want) in &cases {
        let got = run(source);
        let ok = match (want, &got) {
            (V(Value::Double(w)), Ok(Value::Double(g))) => w == g || (w - g).abs() < 1e-9,
            (V(w), Ok(g)) => w == g,
            (E(needle), Err(message)) => message.contains(needle),
            _ => false,
        };
        if !ok {
            let want = match want {
                V(v) => format!("{v:?}"),
                E(e) => format!("error containing {e:?}"),
            };
            failures.push(format!("{source}\n    want {want}\n    got  {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn budget_exhaustion_stops_a_long_loop() {
    let source = "{ var n = 0; foreach (var a in new [] {1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20}) { foreach (var b in new [] {1,2,3,4,5,6,7,8,9,10}) { foreach (var c in new [] {1,2,3,4,5,6,7,8,9,10}) { n += 1; } } } return n; }";
    let expr = Expression::compile(source, ExpressionKind::Block).unwrap();
    let err = expr.evaluate(&MapHost::sample()).unwrap_err();
    assert!(
        matches!(err, EvalError::BudgetExceeded { limit: 10_000, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("exceeded its budget of 10000 steps")
    );
    // with a larger budget, the same expression completes
    let limits = Limits {
        max_steps: 1_000_000,
        ..Limits::default()
    };
    assert_eq!(
        expr.evaluate_with_limits(&MapHost::sample(), &limits)
            .unwrap(),
        Value::Int(2000)
    );
}

#[test]
fn errors_carry_the_span_of_the_failing_node() {
    let expr =
        Expression::compile("1 +\n  context.Response.StatusCode", ExpressionKind::Single).unwrap();
    let err = expr.evaluate(&MapHost::sample()).unwrap_err();
    assert_eq!(err.to_string(), "2:3: `context.Response` is null");
    assert_eq!((err.span().line, err.span().column), (2, 3));

    let expr = Expression::compile(
        "{\n  var x = 0;\n  return 10 / x;\n}",
        ExpressionKind::Block,
    )
    .unwrap();
    let err = expr.evaluate(&MapHost::sample()).unwrap_err();
    assert_eq!(err, EvalError::DivisionByZero { span: err.span() });
    assert_eq!((err.span().line, err.span().column), (3, 10));
}

#[test]
fn a_compiled_expression_is_reused_across_hosts() {
    let expr = Expression::compile(
        "context.Request.Method + \" \" + context.Request.Url.Path",
        ExpressionKind::Single,
    )
    .unwrap();
    let mut host = MapHost::sample();
    assert_eq!(expr.evaluate(&host).unwrap(), Value::from("GET /orders/42"));
    host.method = "POST".to_owned();
    host.path = "/x".to_owned();
    assert_eq!(expr.evaluate(&host).unwrap(), Value::from("POST /x"));
    assert_eq!(
        expr.source(),
        "context.Request.Method + \" \" + context.Request.Url.Path"
    );
}

#[test]
fn string_length_is_capped() {
    let limits = Limits {
        max_string_len: 8,
        ..Limits::default()
    };
    let expr = Expression::compile("\"abcd\" + \"efghi\"", ExpressionKind::Single).unwrap();
    let err = expr
        .evaluate_with_limits(&MapHost::sample(), &limits)
        .unwrap_err();
    assert!(matches!(err, EvalError::TooLarge { .. }), "{err}");
}
