//! Property tests: no input makes the lexer, parser, checker or evaluator panic or run
//! past its budget, whatever the text (`cargo test -p gatehouse-expr proptest`; more
//! cases with `PROPTEST_CASES=100000`).

use proptest::prelude::*;

use crate::test_host::MapHost;
use crate::{Expression, ExpressionKind};

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
    fn blocks_of_the_languages_tokens_never_panic(body in token_soup()) {
        exercise(&format!("{{ {body} }}"));
        exercise(&format!("{{ var a = {body}; return a; }}"));
    }
}
