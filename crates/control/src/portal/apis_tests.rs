use super::*;

#[test]
fn the_place_of_a_policy_error_is_read_from_its_message() {
    type Case = (&'static str, &'static str, Option<(u32, u32)>);
    let cases: [Case; 4] = [
        (
            "origin and place",
            "invalid API `hello`: apis[hello].policy:3:17: unknown policy `set-hedaer`",
            Some((3, 17)),
        ),
        ("no place", "API `hello` does not exist", None),
        ("a colon without digits", "a: b: c", None),
        ("a line without a column", "policy:12: oops", None),
    ];
    for (name, message, expected) in cases {
        assert_eq!(line_and_column(message), expected, "{name}");
    }
}

#[test]
fn a_problem_quotes_the_line_it_is_on() {
    let document = "<policies>\n  <inbound>\n    <set-hedaer />\n";
    let problem = Problem::new("policy:3:5: unknown".to_owned(), document);
    assert_eq!(problem.line, Some(3));
    assert_eq!(problem.column, Some(5));
    assert_eq!(problem.excerpt.as_deref(), Some("    <set-hedaer />"));
}

#[test]
fn an_empty_document_removes_the_policy_of_an_operation() {
    let target = Target {
        product: None,
        api: Some("hello".to_owned()),
        operation: Some("greet".to_owned()),
    };
    let body = serde_json::json!({"operations": [{"id": "greet", "policy": "<policies/>"}]});
    let set = target.with_document(body, "<policies></policies>").unwrap();
    assert_eq!(target.document(&set).unwrap(), "<policies></policies>");
    let removed = target.with_document(set, "  ").unwrap();
    assert_eq!(removed["operations"][0].get("policy"), None);
}
