use super::*;

#[test]
fn problem_lines_have_the_form_editors_annotate() {
    let problem = Problem {
        place: None,
        line: Some(3),
        column: Some(9),
        severity: Severity::Error,
        category: Category::Invalid,
        kind: "missing",
        policy: Some("rate-limit".to_owned()),
        message: "missing required attribute `renewal-period`".to_owned(),
    };
    assert_eq!(
        line("policies/echo.xml", &problem),
        "policies/echo.xml:3:9: error: missing required attribute `renewal-period` [rate-limit]"
    );
    let unsupported = Problem {
        category: Category::Unsupported,
        place: Some("apis[echo].policy".to_owned()),
        ..problem
    };
    assert_eq!(
        line("gateway.yaml", &unsupported),
        "gateway.yaml: apis[echo].policy:3:9: error (unsupported): missing required attribute `renewal-period` [rate-limit]"
    );
}
