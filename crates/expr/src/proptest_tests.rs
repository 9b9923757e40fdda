//! Property tests: no input makes the lexer, parser, checker or evaluator panic or run
//! past its budget, whatever the text (`cargo test -p gatehouse-expr proptest`; more
//! cases with `PROPTEST_CASES=100000`).

use proptest::prelude::*;

use crate::test_host::MapHost;
use crate::{Expression, ExpressionKind, Value};

/// Pieces of the language, so random sequences reach deep into the parser rather than
/// stopping at the first character.
const VOCABULARY: &[&str] = &[
    "context",
    ".",
    "?.",
    "Request",
    "Headers",
    "Variables",
    "Url",
    "Path",
    "Method",
    "GetValueOrDefault",
    "ContainsKey",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ";",
    "\"x\"",
    "\"\"",
    "@\"v\"",
    "$\"a{",
    "}b\"",
    "'c'",
    "1",
    "2L",
    "1.5",
    "2m",
    "true",
    "null",
    "+",
    "-",
    "*",
    "/",
    "%",
    "!",
    "==",
    "!=",
    "<",
    ">=",
    "&&",
    "||",
    "??",
    "?",
    ":",
    "=>",
    "=",
    "+=",
    "is",
    "as",
    "var",
    "a",
    "b",
    "return",
    "if",
    "else",
    "foreach",
    "in",
    "new",
    "JObject",
    "JArray",
    "string",
    "int",
    "Parse",
    "Split",
    "Where",
    "Select",
    "Any",
    "ToString",
    "ToUpper",
    "Length",
    "Math",
    "Max",
    "<string>",
    "(int)",
    "x => x",
    "DateTime",
    "DateTimeOffset",
    "TimeSpan",
    "Guid",
    "UtcNow",
    "MaxValue",
    "AddDays",
    "AddMonths",
    "FromSeconds",
    "TotalSeconds",
    "NewGuid",
    "DayOfWeek",
    "\"o\"",
    "\"yyyy-MM-dd'T'HH:mm:ss.FFFK\"",
    "\"2024-01-02T03:04:05Z\"",
    "\"1.02:03:04\"",
    "1e300",
    "(DateTime)",
    "Encoding",
    "UTF8",
    "ASCII",
    "GetBytes",
    "GetString",
    "Convert",
    "ToBase64String",
    "FromBase64String",
    "BitConverter",
    "System.Text.Encoding",
    "WebUtility",
    "UrlEncode",
    "HtmlDecode",
    "Uri",
    "new Uri",
    "Host",
    "Segments",
    "EscapeDataString",
    "\"https://a.b/c?d#e\"",
    "\"aGk=\"",
    "|",
    "out",
    "Regex",
    "IsMatch",
    "Match",
    "Matches",
    "Groups",
    "Replace",
    "Split",
    "Success",
    "RegexOptions.IgnoreCase",
    "RegexOptions.Multiline",
    "new Regex",
    "\"(a)|(?<n>b)\"",
    "\"$1${n}$$\"",
    "m => m.Value",
    "SHA256",
    "MD5",
    "Create",
    "ComputeHash",
    "HashData",
    "new HMACSHA256",
    "using",
    "AsJwt",
    "AsBasic",
    "TryParseJwt",
    "(out var j)",
    "out int",
    "Claims",
    "Subject",
    "OrderBy",
    "OrderByDescending",
    "Sum",
    "Distinct",
    "Skip",
    "Last",
    "Formatting.None",
    "JsonConvert",
    "DeserializeObject",
];

fn token_soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(VOCABULARY), 0..48)
        .prop_map(|tokens| tokens.join(" "))
}

/// Compiles `source` both ways and evaluates what compiles: nothing may panic.
fn exercise(source: &str) {
    for kind in [ExpressionKind::Single, ExpressionKind::Block] {
        if let Ok(expression) = Expression::compile(source, kind) {
            let _ = expression.evaluate(&MapHost::sample());
        }
    }
}

/// Runs the date and time parsers and formatters on `text` (read from a variable, so that
/// any text gets there unescaped): nothing may panic.
fn exercise_dates(text: &str) {
    let mut host = MapHost::sample();
    host.variables.insert("s".to_owned(), Value::from(text));
    for source in [
        "DateTime.UtcNow.ToString((string)context.Variables[\"s\"])",
        "DateTime.MaxValue.ToString((string)context.Variables[\"s\"])",
        "DateTime.MinValue.ToString((string)context.Variables[\"s\"])",
        "TimeSpan.MinValue.ToString((string)context.Variables[\"s\"])",
        "TimeSpan.FromSeconds(-1.5).ToString((string)context.Variables[\"s\"])",
        "DateTime.Parse((string)context.Variables[\"s\"])",
        "TimeSpan.Parse((string)context.Variables[\"s\"])",
        "Guid.Parse((string)context.Variables[\"s\"])",
        "string.Format(\"{0:\" + (string)context.Variables[\"s\"] + \"}\", DateTime.UtcNow)",
    ] {
        if let Ok(expression) = Expression::compile(source, ExpressionKind::Single) {
            let _ = expression.evaluate(&host);
        }
    }
}

/// What [`exercise_text`] runs, on the text in the variable `s`.
const TEXT_SOURCES: &[&str] = &[
    "Convert.FromBase64String((string)context.Variables[\"s\"]).Length",
    "Encoding.UTF8.GetString(Encoding.Unicode.GetBytes((string)context.Variables[\"s\"]))",
    "Encoding.Unicode.GetString(Encoding.UTF8.GetBytes((string)context.Variables[\"s\"]))",
    "WebUtility.UrlDecode((string)context.Variables[\"s\"])",
    "WebUtility.HtmlDecode((string)context.Variables[\"s\"])",
    "WebUtility.HtmlEncode((string)context.Variables[\"s\"])",
    "Uri.UnescapeDataString((string)context.Variables[\"s\"])",
    "new Uri((string)context.Variables[\"s\"]).PathAndQuery",
    "new Uri(\"http://a/\" + (string)context.Variables[\"s\"]).Segments",
    // one pattern compiled, used every way
    "{ var r = new Regex((string)context.Variables[\"s\"]); return r.IsMatch(\"a1-b2\") + \"\" + r.Matches(\"a1-b2é\").Count + r.Split(\"a1-b2é\").Length + r.Match(\"a1-b2é\").Groups[1].Index + r.Replace(\"a1-b2é\", \"$1$$\"); }",
    "Regex.Replace(\"a1-b2é\", @\"(?<x>\\d)|(-)\", (string)context.Variables[\"s\"])",
    "Regex.Unescape((string)context.Variables[\"s\"])",
    "new HMACSHA1(Encoding.UTF8.GetBytes((string)context.Variables[\"s\"])).ComputeHash(Encoding.UTF8.GetBytes((string)context.Variables[\"s\"]))",
    "MD5.Create().ComputeHash(Encoding.UTF8.GetBytes((string)context.Variables[\"s\"]))",
    "((string)context.Variables[\"s\"]).AsJwt()?.Claims.GetValueOrDefault(\"a\", \"\")",
    "((string)context.Variables[\"s\"]).AsBasic()?.Password",
    "(\"e30.\" + (string)context.Variables[\"s\"] + \".\").AsJwt()?.ExpirationTime",
    "(\"Basic \" + (string)context.Variables[\"s\"]).AsBasic()?.UserId",
    "int.TryParse((string)context.Variables[\"s\"], out var n) ? n : -1",
];

/// Runs the text decoders and encoders (Base64, `Encoding`, `WebUtility`, `Uri`), regular
/// expressions, hashes, tokens and `TryParse` on `text`, as [`exercise_dates`] does. The
/// expressions are compiled once: only the text changes.
fn exercise_text(text: &str) {
    static EXPRESSIONS: std::sync::OnceLock<Vec<Expression>> = std::sync::OnceLock::new();
    let expressions = EXPRESSIONS.get_or_init(|| {
        TEXT_SOURCES
            .iter()
            .map(|source| {
                let kind = if source.starts_with('{') {
                    ExpressionKind::Block
                } else {
                    ExpressionKind::Single
                };
                Expression::compile(source, kind).unwrap_or_else(|e| panic!("{source}: {e}"))
            })
            .collect()
    });
    let mut host = MapHost::sample();
    host.variables.insert("s".to_owned(), Value::from(text));
    for expression in expressions {
        let _ = expression.evaluate(&host);
    }
}

/// Text made of the characters that date and time formats and parsers, the text
/// decoders and regular expressions give meaning to.
fn date_soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        proptest::sample::select(
            &[
                "y", "M", "d", "h", "H", "m", "s", "f", "F", "t", "z", "K", "g", "%", "\\", "'",
                "\"", ":", "/", "-", "+", ".", ",", " ", "T", "Z", "GMT", "0", "1", "2", "9", "12",
                "2024", "9999", "0001", "Tue", "Jan", "c", "G", "o", "r", "{", "}", "é", "&#",
                "&#x", ";", "&amp;", "=", "%C3", "%A9", "/", "?", "#", "http://", "$", "${", "(",
                ")", "[", "]", "*", "\\d", "\\x", "\\u", "?<n>", "|", "$_",
            ][..],
        ),
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

/// JSON-like text made of a token's claims and values, out-of-range numbers included.
fn claims_soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        proptest::sample::select(
            &[
                "{",
                "}",
                "[",
                "]",
                ":",
                ",",
                "\"exp\"",
                "\"nbf\"",
                "\"iat\"",
                "\"aud\"",
                "\"sub\"",
                "\"jti\"",
                "\"alg\"",
                "\"typ\"",
                "\"x\"",
                "null",
                "true",
                "1.5",
                "-1",
                "1e400",
                "-1e300",
                "253402300800",
                "-62135596801",
                "9223372036854775807",
                "{\"a\":[1,{}]}",
            ][..],
        ),
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

/// Reads every member of the token whose header and payload are `header` and `payload`.
fn exercise_token(header: &str, payload: &str) {
    use base64::Engine as _;
    let encode = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
    let mut host = MapHost::sample();
    host.variables.insert(
        "t".to_owned(),
        Value::from(format!("{}.{}.", encode(header), encode(payload)).as_str()),
    );
    for member in [
        "Id",
        "Algorithm",
        "Type",
        "Issuer",
        "Subject",
        "Audiences",
        "ExpirationTime",
        "NotBefore",
        "IssuedAt",
        "Claims.Count",
        "Claims.Keys",
        "Claims.GetValueOrDefault(\"x\", \"\")",
        "Claims.GetValueOrDefault(\"aud\", \"\")",
    ] {
        let source = format!("((string)context.Variables[\"t\"]).AsJwt()?.{member}");
        if let Ok(expression) = Expression::compile(&source, ExpressionKind::Single) {
            let _ = expression.evaluate(&host);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_text_is_refused_or_evaluated_never_a_panic(source in any::<String>()) {
        exercise(&source);
    }

    #[test]
    fn sequences_of_the_languages_tokens_never_panic(source in token_soup()) {
        exercise(&source);
    }

    #[test]
    fn date_formats_and_parsers_never_panic(text in date_soup()) {
        exercise_dates(&text);
    }

    #[test]
    fn any_text_as_a_date_format_never_panics(text in any::<String>()) {
        exercise_dates(&text);
    }

    #[test]
    fn text_decoders_patterns_and_tokens_never_panic(text in date_soup()) {
        exercise_text(&text);
    }

    #[test]
    fn any_text_for_the_text_decoders_patterns_and_tokens_never_panics(text in any::<String>()) {
        exercise_text(&text);
    }

    #[test]
    fn any_token_claims_never_panic(header in claims_soup(), payload in claims_soup()) {
        exercise_token(&header, &payload);
    }

    #[test]
    fn blocks_of_the_languages_tokens_never_panic(body in token_soup()) {
        exercise(&format!("{{ {body} }}"));
        exercise(&format!("{{ var a = {body}; return a; }}"));
    }
}
