#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::parser::{parse_block, parse_expression};

fn expr_err(source: &str) -> (u32, u32, String) {
    let e = check_expression(&parse_expression(source).unwrap()).unwrap_err();
    (e.line, e.column, e.message)
}

fn block_err(source: &str) -> (u32, u32, String) {
    let e = check_block(&parse_block(source).unwrap()).unwrap_err();
    (e.line, e.column, e.message)
}

#[test]
fn system_is_not_available() {
    assert_eq!(
        expr_err(r#"System.IO.File.ReadAllText("/etc/passwd")"#),
        (
            1,
            1,
            "`System` is not available in policy expressions".to_owned()
        )
    );
    assert_eq!(
        expr_err("1 + \n   Environment.GetEnvironmentVariable(\"X\")"),
        (
            2,
            4,
            "`Environment` is not available in policy expressions".to_owned()
        )
    );
    assert_eq!(
        expr_err("Exec(\"rm\")"),
        (
            1,
            1,
            "`Exec` is not available in policy expressions".to_owned()
        )
    );
    assert_eq!(
        expr_err("new WebClient()"),
        (
            1,
            1,
            "`new WebClient` is not available in policy expressions".to_owned()
        )
    );
}

#[test]
fn allowed_names() {
    for source in [
        "context.Request.Method",
        "string.IsNullOrEmpty(context.Request.Method)",
        "int.Parse(\"1\") + Math.Max(1, 2)",
        "new [] { 1 }.Where(x => x > 0)",
        "new JObject()",
        "$\"{context.Request.Method}\"",
        "DateTime.UtcNow",
        "DateTime.UtcNow.AddMinutes(5).ToString(\"o\")",
        "DateTimeOffset.UtcNow.ToUnixTimeSeconds()",
        "TimeSpan.FromSeconds(30) + TimeSpan.Zero",
        "Guid.NewGuid().ToString()",
        "new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc)",
        "(DateTime)context.Variables[\"at\"]",
    ] {
        check_expression(&parse_expression(source).unwrap()).unwrap();
    }
    check_block(
        &parse_block("var x = 1; foreach (var y in new [] { 1 }) { x = x + y; } return x;")
            .unwrap(),
    )
    .unwrap();
}

#[test]
fn undeclared_and_out_of_scope_names() {
    assert_eq!(
        expr_err("x + 1"),
        (
            1,
            1,
            "`x` is not available in policy expressions".to_owned()
        )
    );
    // a lambda parameter is not visible outside the lambda
    assert_eq!(
        expr_err("new [] { 1 }.Where(x => x > 0).Count() + x").2,
        "`x` is not available in policy expressions"
    );
    // a variable declared in an inner block is not visible after it
    assert_eq!(
        block_err("if (true) { var y = 1; } return y;"),
        (
            1,
            33,
            "`y` is not available in policy expressions".to_owned()
        )
    );
    assert_eq!(
        block_err("var x = 1; var x = 2; return x;").2,
        "`x` is already declared"
    );
    assert_eq!(
        block_err("y = 2; return 1;").2,
        "`y` is not a declared variable (declare it with `var`)"
    );
}

#[test]
fn assignment_to_context_is_rejected() {
    assert_eq!(
        block_err("context.Variables[\"x\"] = 1; return 1;"),
        (
            1,
            1,
            "cannot assign to `context`: the context is read-only in policy expressions".to_owned()
        )
    );
    assert_eq!(
        block_err("var a = 1;\ncontext = null; return a;"),
        (
            2,
            1,
            "cannot assign to `context`: the context is read-only in policy expressions".to_owned()
        )
    );
    assert_eq!(
        block_err("var a = \"x\"; a.Length = 2; return a;").2,
        "only local variables can be assigned"
    );
    assert_eq!(
        block_err("var o = new JObject(); o?[\"a\"] = 1; return o;").2,
        "only local variables can be assigned"
    );
    assert!(
        block_err("undeclared[\"a\"] = 1; return 1;")
            .2
            .contains("only local variables can be assigned")
    );
}

#[test]
fn a_block_must_return_a_value() {
    let message = "a multi-statement expression must return a value on every path (add a `return`)";
    assert_eq!(block_err("var x = 1;\nx = 2;"), (2, 1, message.to_owned()));
    assert_eq!(block_err("if (true) { return 1; }").2, message);
    assert_eq!(block_err("").2, message);
    check_block(&parse_block("if (true) { return 1; } else { return 2; }").unwrap()).unwrap();
}

#[test]
fn date_and_time_members_that_gatehouse_lacks_are_refused_at_load() {
    assert_eq!(
        expr_err("DateTime.Foo"),
        (
            1,
            1,
            "`DateTime.Foo` is not available in policy expressions".to_owned()
        )
    );
    assert_eq!(
        expr_err("1 + TimeSpan.Bar"),
        (
            1,
            5,
            "`TimeSpan.Bar` is not available in policy expressions".to_owned()
        )
    );
    assert_eq!(
        expr_err("TimeSpan.Bar(1)").2,
        "`TimeSpan.Bar` is not available in policy expressions"
    );
    assert_eq!(
        expr_err("DateTime.ParseExact(\"1\", \"y\", null)").2,
        "`DateTime.ParseExact` is not available in policy expressions"
    );
    assert_eq!(
        expr_err("Guid.TryParseExact(\"x\")").2,
        "`Guid.TryParseExact` is not available in policy expressions"
    );
    assert_eq!(
        expr_err("Regex.Escape(\"a\")").2,
        "`Regex.Escape` is not available in policy expressions"
    );
    assert_eq!(
        expr_err("StringBuilder.Append(\"a\")").2,
        "`StringBuilder` is not available in policy expressions"
    );
    assert_eq!(
        expr_err("new Guid()").2,
        "`new Guid` is not available in policy expressions"
    );
}

#[test]
fn new_built_ins_are_allowed() {
    for source in [
        "Convert.ToBase64String(Encoding.UTF8.GetBytes(\"a\"))",
        "System.Text.Encoding.ASCII.GetString(Convert.FromBase64String(\"YQ==\"))",
        "WebUtility.UrlEncode(\"a b\") + Uri.EscapeDataString(\"c\")",
        "new Uri(\"http://a/\").Host",
        "Regex.IsMatch(\"a\", \"a\", RegexOptions.IgnoreCase | RegexOptions.Multiline)",
        "new Regex(\"a\").Match(\"a\").Groups[0].Value",
        "new HMACSHA256(Encoding.UTF8.GetBytes(\"k\")).ComputeHash(Encoding.UTF8.GetBytes(\"m\"))",
        "SHA256.Create().ComputeHash(Encoding.UTF8.GetBytes(\"m\"))",
        "\"x\".AsJwt()?.Subject",
        "\"x\".TryParseBasic(out var c) ? c.UserId : null",
        "int.TryParse(\"1\", out var n) ? n : 0",
        "JsonConvert.SerializeObject(new JObject(), Formatting.Indented)",
        "new [] { 2, 1 }.OrderBy(x => x).Sum()",
    ] {
        check_expression(&parse_expression(source).unwrap()).unwrap();
    }
    check_block(
        &parse_block(
            "using (var h = SHA1.Create()) { if (\"x\".TryParseJwt(out var t)) { return t.Id; } } return null;",
        )
        .unwrap(),
    )
    .unwrap();
}

#[test]
fn new_built_ins_refuse_what_is_not_implemented_at_load() {
    assert_eq!(
        expr_err("1 +\n  Regex.IsMatch(\"a\", \"(?<=a)b\")"),
        (
            2,
            22,
            "invalid regular expression `(?<=a)b`: look-around, including look-ahead and look-behind, is not supported".to_owned()
        )
    );
    assert_eq!(block_err("var r = new Regex(\"[a\");\nreturn r;").0, 1);
    assert_eq!(
        expr_err("new HMACMD5(null)").2,
        "`new HMACMD5` is not available in policy expressions"
    );
    assert_eq!(
        expr_err("Encoding.UTF7").2,
        "`Encoding.UTF7` is not available in policy expressions"
    );
    assert_eq!(
        expr_err("RegexOptions.ECMAScript").2,
        "`RegexOptions.ECMAScript` is not available in policy expressions"
    );
    assert_eq!(
        expr_err("context.Foo(out var y)"),
        (
            1,
            1,
            "`Foo` does not take `out` arguments in policy expressions".to_owned()
        )
    );
    assert_eq!(
        expr_err("\"x\".TryParseJwt()").2,
        "`TryParseJwt` needs its `out` argument (`out var name`)"
    );
    assert_eq!(
        block_err("var n = 1; int.TryParse(\"1\", out var n); return n;").2,
        "`n` is already declared"
    );
    // a computed pattern, or computed options, are left to request time
    check_expression(&parse_expression("Regex.IsMatch(\"a\", \"(\" + \"\")").unwrap()).unwrap();
    check_expression(
        &parse_expression("Regex.IsMatch(\"a\", \"a\", context.Variables[\"o\"])").unwrap(),
    )
    .unwrap();
}
