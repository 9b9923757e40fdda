use super::*;

fn classes(document: &str) -> Vec<(Option<&'static str>, String)> {
    highlight(document)
        .into_iter()
        .map(|piece| (piece.class, piece.text))
        .collect()
}

#[test]
fn tags_attributes_values_named_values_and_expressions_are_classed() {
    let pieces = classes(r#"<set-header name="x">{{key}} @(1 + 2)</set-header>"#);
    let expected: Vec<(Option<&str>, &str)> = vec![
        (Some("punct"), "<"),
        (Some("tag"), "set-header"),
        (None, " "),
        (Some("attr"), "name"),
        (Some("punct"), "="),
        (Some("value"), "\"x\""),
        (Some("punct"), ">"),
        (Some("named"), "{{key}}"),
        (None, " "),
        (Some("expr"), "@(1 + 2)"),
        (Some("punct"), "</"),
        (Some("tag"), "set-header"),
        (Some("punct"), ">"),
    ];
    let expected: Vec<(Option<&str>, String)> = expected
        .into_iter()
        .map(|(class, text)| (class, text.to_owned()))
        .collect();
    assert_eq!(pieces, expected);
}

#[test]
fn an_expression_holding_the_attribute_s_quote_stays_one_expression() {
    let document =
        r#"<set-variable name="v" value="@(context.Request.Headers.GetValueOrDefault("x",""))" />"#;
    let pieces = classes(document);
    assert!(
        pieces.contains(&(
            Some("expr"),
            r#"@(context.Request.Headers.GetValueOrDefault("x",""))"#.to_owned()
        )),
        "{pieces:?}"
    );
    assert_eq!(pieces.last(), Some(&(Some("punct"), "/>".to_owned())));
}

#[test]
fn any_text_is_split_into_pieces_that_join_back_to_it() {
    let cases = [
        "",
        "plain",
        "<",
        "<a",
        "<a b",
        "<a b=",
        "<a b=\"",
        "<a b=\"@(",
        "@{ return \"}\"; }",
        "@(unclosed",
        "{{unclosed",
        "<!-- unclosed",
        "<!-- c --><x/>",
        "é<ü a=\"ö\">ß@(\"€\")</ü>",
        "<a b='@(x)'>\u{1F600}</a>",
        "a < b && c > d",
        "<policies>\n  <inbound>\n    <base />\n  </inbound>\n</policies>",
    ];
    for case in cases {
        let joined: String = highlight(case).into_iter().map(|p| p.text).collect();
        assert_eq!(joined, case, "{case:?}");
    }
}

#[test]
fn a_huge_document_is_shown_plain() {
    let document = "<a>".repeat(MAX_HIGHLIGHTED_BYTES);
    let pieces = highlight(&document);
    assert_eq!(pieces.len(), 1);
    assert_eq!(pieces[0].class, None);
}
