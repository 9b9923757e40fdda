#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn kinds(source: &str) -> Vec<TokenKind> {
    tokenize(source)
        .unwrap()
        .into_iter()
        .map(|t| t.kind)
        .collect()
}

#[test]
fn tokens_carry_offsets_lines_and_columns() {
    let tokens = tokenize("a +\n  12L").unwrap();
    let spans: Vec<_> = tokens
        .iter()
        .map(|t| (t.span.start, t.span.end, t.span.line, t.span.column))
        .collect();
    assert_eq!(
        spans,
        vec![(0, 1, 1, 1), (2, 3, 1, 3), (6, 9, 2, 3), (9, 9, 2, 6)]
    );
    assert_eq!(
        tokens[2].kind,
        TokenKind::Int {
            value: 12,
            long: true
        }
    );
}

#[test]
fn keywords_numbers_and_operators() {
    assert_eq!(
        kinds("var x => a?.b ?? c != d"),
        vec![
            TokenKind::Keyword(Keyword::Var),
            TokenKind::Ident("x".to_owned()),
            TokenKind::Punct(Punct::Arrow),
            TokenKind::Ident("a".to_owned()),
            TokenKind::Punct(Punct::QuestionDot),
            TokenKind::Ident("b".to_owned()),
            TokenKind::Punct(Punct::QuestionQuestion),
            TokenKind::Ident("c".to_owned()),
            TokenKind::Punct(Punct::NotEq),
            TokenKind::Ident("d".to_owned()),
            TokenKind::Eof,
        ]
    );
    assert_eq!(
        kinds("1.5d 2m 3")[..3],
        [
            TokenKind::Float(1.5),
            TokenKind::Float(2.0),
            TokenKind::Int {
                value: 3,
                long: false
            }
        ]
    );
    // `1.ToString()` is an integer then a member access
    assert_eq!(
        kinds("1.ToString")[..2],
        [
            TokenKind::Int {
                value: 1,
                long: false
            },
            TokenKind::Punct(Punct::Dot)
        ]
    );
    // `a ?.5 : b` is a ternary with a number, not `?.`
    assert_eq!(kinds("a ?.5 : b")[1], TokenKind::Punct(Punct::Question));
    assert_eq!(
        kinds("// comment\n/* block */ x"),
        vec![TokenKind::Ident("x".to_owned()), TokenKind::Eof]
    );
}

#[test]
fn strings_chars_and_escapes() {
    assert_eq!(
        kinds(r#""a\"\\\n\t\r\0\u00e9""#)[0],
        TokenKind::Str("a\"\\\n\t\r\0\u{e9}".to_owned())
    );
    assert_eq!(
        kinds(r#"@"c:\x""y""#)[0],
        TokenKind::Str("c:\\x\"y".to_owned())
    );
    assert_eq!(kinds(r"'\''")[0], TokenKind::Char('\''));
    assert_eq!(
        tokenize("'ab'").unwrap_err().message,
        "expected `'` to close the character literal"
    );
    assert_eq!(
        tokenize(r#""\u12""#).unwrap_err().message,
        "expected four hex digits after `\\u`"
    );
}

#[test]
fn interpolated_strings_keep_their_holes_as_tokens() {
    let tokens = tokenize(r#"$"{{a}} {x.y} and {f("}")}!""#).unwrap();
    let TokenKind::Interpolated(parts) = &tokens[0].kind else {
        panic!("{tokens:?}")
    };
    assert_eq!(parts.len(), 5);
    assert_eq!(parts[0], InterpolationPart::Text("{a} ".to_owned()));
    let InterpolationPart::Hole(hole) = &parts[1] else {
        panic!()
    };
    assert_eq!(hole.len(), 4); // x . y Eof
    assert_eq!((hole[0].span.line, hole[0].span.column), (1, 10));
    let InterpolationPart::Hole(hole) = &parts[3] else {
        panic!()
    };
    assert_eq!(hole[2].kind, TokenKind::Str("}".to_owned()));
    assert_eq!(parts[4], InterpolationPart::Text("!".to_owned()));
    assert_eq!(
        tokenize("$\"{x\"").unwrap_err().message,
        "unterminated string"
    );
    assert_eq!(
        tokenize("$\"{x").unwrap_err().message,
        "expected `}` to close the interpolation hole"
    );
}
