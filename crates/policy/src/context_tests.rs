use super::*;
use crate::test_util::{compile_xml_with, in_section, run_inbound};
use crate::{Counters, ErrorKind, Flow};

fn named() -> NamedValues {
    let mut named = NamedValues::new();
    named.insert("Backend-Key", "k-123", false);
    named.insert("token", "s3cr3t-value", true);
    named.insert("markup", "a<b&c \"q\"", false);
    named.insert("expr", "@(DateTime.Now)", false);
    named.insert("bad-code", "zq9 not valid!", true);
    named
}

#[test]
fn substitutes_named_values_case_insensitively_after_xml_parsing() {
    let named = named();
    let cx = CompileContext::new(&named);
    let xml = in_section(
        "inbound",
        r#"<set-header name="x-key"><value>{{backend-key}}/{{ MARKUP }}</value></set-header>"#,
    );
    let pipeline = compile_xml_with(&xml, &cx).unwrap();
    let (flow, state) = run_inbound(&pipeline, &Counters::new(), &[]);
    assert_eq!(flow, Flow::Continue);
    assert_eq!(state.headers["x-key"], "k-123/a<b&c \"q\"");
}

#[test]
fn leaves_braces_that_are_not_references() {
    let named = named();
    let cx = CompileContext::new(&named);
    let resolved = cx
        .substitute(
            Site::new("t", "x"),
            r#"{"a":{{"b":1}}} {{ not a name }}"#,
            Position::new(1, 1),
        )
        .unwrap();
    assert_eq!(resolved.text, r#"{"a":{{"b":1}}} {{ not a name }}"#);
    assert!(!resolved.secret);
}

#[test]
fn unknown_named_value_is_an_error_naming_it() {
    let named = named();
    let cx = CompileContext::new(&named);
    let xml = in_section(
        "inbound",
        r#"<set-header name="x"><value>{{missing-one}}</value></set-header>"#,
    );
    let error = compile_xml_with(&xml, &cx).unwrap_err();
    assert_eq!(error.kind, ErrorKind::UnknownNamedValue);
    assert!(error.message.contains("`{{missing-one}}`"), "{error}");
    assert_eq!((error.line(), error.column()), (1, 48));
}

#[test]
fn named_value_holding_an_expression_is_not_supported() {
    let named = named();
    let cx = CompileContext::new(&named);
    let xml = in_section(
        "inbound",
        r#"<set-header name="x"><value>{{expr}}</value></set-header>"#,
    );
    let error = compile_xml_with(&xml, &cx).unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotSupported);
    assert!(
        error
            .message
            .contains("named value `expr` holds a policy expression"),
        "{error}"
    );
}

// Security: secret named values must never reach error messages or Debug output.
#[test]
fn secret_values_never_appear_in_errors_or_debug() {
    let named = named();
    let cx = CompileContext::new(&named);
    for body in [
        r#"<set-status code="{{bad-code}}" reason="x"/>"#,
        r#"<set-method>{{bad-code}}</set-method>"#,
        r#"<set-backend-service base-url="{{bad-code}}"/>"#,
        r#"<rate-limit-by-key calls="{{bad-code}}" renewal-period="1" counter-key="k"/>"#,
        r#"<check-header name="{{bad-code}} x" failed-check-httpcode="401" failed-check-error-message="m" ignore-case="true"/>"#,
    ] {
        let section = if body.starts_with("<set-status") {
            "outbound"
        } else {
            "inbound"
        };
        let error = compile_xml_with(&in_section(section, body), &cx).unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("zq9"), "{body}: {shown}");
        assert!(shown.contains("secret named value"), "{body}: {shown}");
    }

    let xml = in_section(
        "inbound",
        r#"<set-header name="authorization"><value>Bearer {{token}}</value></set-header>"#,
    );
    let pipeline = compile_xml_with(&xml, &cx).unwrap();
    assert!(!format!("{pipeline:?}").contains("s3cr3t"));
    let (_, state) = run_inbound(&pipeline, &Counters::new(), &[]);
    assert_eq!(state.headers["authorization"], "Bearer s3cr3t-value");
    assert!(state.headers["authorization"].is_sensitive());
    assert!(!format!("{state:?}").contains("s3cr3t"));
    assert!(!format!("{:?}", state.headers).contains("s3cr3t"));

    let debug = format!("{named:?}");
    assert!(
        !debug.contains("s3cr3t") && debug.contains("<secret>") && debug.contains("k-123"),
        "{debug}"
    );
}

#[test]
fn named_values_build_from_model_entities() {
    let values = [
        gatehouse_model::NamedValue {
            name: "A".to_owned(),
            value: "1".to_owned(),
            secret: false,
        },
        gatehouse_model::NamedValue {
            name: "b".to_owned(),
            value: "2".to_owned(),
            secret: true,
        },
    ];
    let named: NamedValues = values.iter().collect();
    assert_eq!(named.len(), 2);
    assert!(!named.is_empty());
    assert_eq!(named.get("a").map(|entry| entry.value.as_str()), Some("1"));
    assert!(named.get("B").is_some_and(|entry| entry.secret));
}

#[test]
fn numbers_and_booleans_are_checked() {
    let named = NamedValues::new();
    let cx = CompileContext::new(&named);
    let site = Site::new("t", "x");
    let raw = |text: &str| RawValue {
        text: RawText::Literal(text.to_owned()),
        position: Position::new(1, 1),
    };
    assert_eq!(cx.number::<u32>(site, &raw(" 7 "), "n", 1..=9), Ok(7));
    assert!(
        cx.number::<u32>(site, &raw("10"), "n", 1..=9)
            .unwrap_err()
            .message
            .contains("from 1 to 9")
    );
    assert!(
        cx.number::<u32>(site, &raw("x"), "n", 1..=9)
            .unwrap_err()
            .message
            .contains("whole number")
    );
    assert!(cx.number::<u32>(site, &raw("-1"), "n", 1..=9).is_err());
    assert_eq!(cx.boolean(site, &raw("TRUE"), "b"), Ok(true));
    assert_eq!(cx.boolean(site, &raw("False"), "b"), Ok(false));
    assert!(
        cx.boolean(site, &raw("yes"), "b")
            .unwrap_err()
            .message
            .contains("`true` or `false`")
    );
}
