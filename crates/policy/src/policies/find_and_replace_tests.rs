use bytes::Bytes;
use http::{Method, StatusCode};

use super::replace_all;
use crate::test_util::{ErrorCase, check_errors, compile_in, compile_xml, facts, failed, request};
use crate::{BufferedBody, ContextReads, Counters, ErrorKind, Flow, ResponseState};

fn sent(body: Option<&BufferedBody>) -> Bytes {
    body.map(BufferedBody::to_send).unwrap_or_default()
}

#[test]
fn replaces_every_occurrence_left_to_right_without_rescanning() {
    let replaced = |text: &str, from: &str, to: &str| {
        replace_all(text.as_bytes(), from.as_bytes(), to.as_bytes(), 1 << 20)
            .unwrap()
            .map(|bytes| String::from_utf8(bytes.to_vec()).unwrap())
    };
    assert_eq!(replaced("a-b-c", "-", "+").as_deref(), Some("a+b+c"));
    assert_eq!(replaced("aaaa", "aa", "b").as_deref(), Some("bb"));
    assert_eq!(replaced("aaa", "aa", "b").as_deref(), Some("ba"));
    assert_eq!(replaced("ab", "b", "bb").as_deref(), Some("abb"));
    assert_eq!(replaced("Abc", "a", "x"), None, "ordinal: case matters");
    assert_eq!(replaced("héllo wörld", "ö", "o").as_deref(), Some("héllo world"));
    assert_eq!(replaced("x", "x", "").as_deref(), Some(""));
    // Bytes that are not UTF-8 are searched as they are.
    assert_eq!(
        replace_all(b"\xff\x00key\xfe", b"key", b"k", 100)
            .unwrap()
            .as_deref(),
        Some(&b"\xff\x00k\xfe"[..])
    );
    // The size is known before anything is copied: exactly at the limit is fine.
    assert_eq!(
        replace_all(b"aaaa", b"a", b"bb", 8).unwrap().as_deref(),
        Some(&b"bbbbbbbb"[..])
    );
    assert_eq!(replace_all(b"aaaa", b"a", b"bbb", 8), Err(super::TooLarge(12)));
}

#[test]
fn a_body_that_would_grow_past_the_limit_fails_the_request() {
    let pipeline = compile_in(
        "inbound",
        &format!(
            r#"<find-and-replace from="a" to="{}" />"#,
            "x".repeat(1000)
        ),
    )
    .unwrap();
    let mut state = request(Method::POST, "/", "", &[]);
    state.body = Some(BufferedBody::new(Bytes::from(vec![b'a'; 20_000])));
    let failure = failed(pipeline.inbound(&facts(1), &Counters::new(), &mut state));
    assert_eq!(failure.error.source, "find-and-replace");
    assert_eq!(failure.error.reason, "BodyTooLarge");
    assert!(failure.error.message.contains("20000000 bytes"), "{}", failure.error.message);
    assert_eq!(sent(state.body.as_ref()).len(), 20_000, "the body is left as it was");
}

#[test]
fn inbound_rewrites_the_request_body_and_reads_it_whole() {
    let pipeline = compile_in(
        "inbound",
        r#"<find-and-replace from="internal.example" to="api.example" />"#,
    )
    .unwrap();
    assert_eq!(
        pipeline.context_reads(),
        ContextReads {
            request_body: true,
            ..ContextReads::default()
        }
    );
    let mut state = request(Method::POST, "/", "", &[]);
    state.body = Some(BufferedBody::new(Bytes::from_static(
        b"{\"a\":\"https://internal.example/x\",\"b\":\"internal.example\"}",
    )));
    assert_eq!(
        pipeline.inbound(&facts(1), &Counters::new(), &mut state),
        Flow::Continue
    );
    assert_eq!(
        sent(state.body.as_ref()),
        "{\"a\":\"https://api.example/x\",\"b\":\"api.example\"}"
    );

    // No body: nothing to do.
    let mut empty = request(Method::GET, "/", "", &[]);
    assert_eq!(
        pipeline.inbound(&facts(1), &Counters::new(), &mut empty),
        Flow::Continue
    );
    assert!(empty.body.is_none());
}

#[test]
fn outbound_rewrites_the_response_body_with_expressions() {
    let pipeline = compile_xml(
        r#"<policies><inbound><set-variable name="old" value="backend" /></inbound><outbound><find-and-replace from="@((string)context.Variables["old"])" to="@(context.Request.Method.ToLower())" /></outbound></policies>"#,
    )
    .unwrap();
    assert_eq!(
        pipeline.context_reads(),
        ContextReads {
            response_body: true,
            ..ContextReads::default()
        }
    );
    let counters = Counters::new();
    let mut state = request(Method::GET, "/", "", &[]);
    assert_eq!(
        pipeline.inbound(&facts(1), &counters, &mut state),
        Flow::Continue
    );
    let mut response = ResponseState::new(StatusCode::OK, http::HeaderMap::new());
    response.body = Some(BufferedBody::new(Bytes::from_static(b"from backend to backend")));
    assert_eq!(
        pipeline.outbound(&facts(1), &counters, &mut state, &mut response),
        Flow::Continue
    );
    assert_eq!(sent(response.body.as_ref()), "from get to get");
    assert!(state.body.is_none(), "the request body is not touched");
}

#[test]
fn a_computed_empty_from_fails_the_request() {
    let pipeline = compile_in(
        "inbound",
        r#"<find-and-replace from="@(context.Request.Headers.GetValueOrDefault("X-Find", ""))" to="y" />"#,
    )
    .unwrap();
    let mut state = request(Method::POST, "/", "", &[]);
    state.body = Some(BufferedBody::new(Bytes::from_static(b"body")));
    let failure = failed(pipeline.inbound(&facts(1), &Counters::new(), &mut state));
    assert_eq!(failure.error.source, "find-and-replace");
    assert_eq!(failure.error.reason, "ExpressionValueEvaluationFailure");
    assert_eq!(failure.response.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(sent(state.body.as_ref()), "body", "the body is left as it was");
}

#[test]
fn refusals_at_load() {
    check_errors(&[
        ErrorCase {
            name: "empty from",
            section: "inbound",
            body: r#"<find-and-replace from="" to="x" />"#,
            at: "from",
            kind: ErrorKind::InvalidValue,
            message: "must not be empty",
        },
        ErrorCase {
            name: "missing to",
            section: "outbound",
            body: r#"<find-and-replace from="x" />"#,
            at: "<find-and-replace",
            kind: ErrorKind::Missing,
            message: "to",
        },
        ErrorCase {
            name: "unknown attribute",
            section: "outbound",
            body: r#"<find-and-replace from="x" to="y" ignore-case="true" />"#,
            at: "ignore-case",
            kind: ErrorKind::UnknownAttribute,
            message: "ignore-case",
        },
        ErrorCase {
            name: "child element",
            section: "outbound",
            body: r#"<find-and-replace from="x" to="y"><value>z</value></find-and-replace>"#,
            at: "<value>",
            kind: ErrorKind::Structure,
            message: "",
        },
    ]);
}
