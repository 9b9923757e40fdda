use std::time::Duration;

use http::Method;

use crate::test_util::{ErrorCase, check_errors, compile_in, facts, request};
use crate::{Counters, ErrorKind, ForwardSettings, HttpVersion};

fn settings(body: &str) -> ForwardSettings {
    let pipeline = compile_in("backend", body).unwrap();
    let mut state = request(Method::GET, "/", "", &[]);
    pipeline.backend(&facts(0), &Counters::new(), &mut state);
    state.forward
}

#[test]
fn records_forward_settings() {
    assert_eq!(settings("<forward-request/>"), ForwardSettings::default());
    let all = settings(
        r#"<forward-request timeout="60" http-version="1" follow-redirects="false"
            buffer-request-body="false" buffer-response="false" fail-on-error-status-code="FALSE"/>"#,
    );
    assert_eq!(
        all,
        ForwardSettings {
            timeout: Some(Duration::from_secs(60)),
            buffer_response: false,
            ..ForwardSettings::default()
        }
    );
    assert!(
        settings(r#"<forward-request fail-on-error-status-code="true"/>"#)
            .fail_on_error_status_code
    );
    assert!(settings(r#"<forward-request follow-redirects="true"/>"#).follow_redirects);
    assert!(settings(r#"<forward-request buffer-request-body="true"/>"#).buffer_request_body);
    for (value, version) in [
        ("1", HttpVersion::Http1),
        ("2", HttpVersion::Http2),
        ("2or1", HttpVersion::Http2OrHttp1),
    ] {
        let body = format!(r#"<forward-request http-version="{value}"/>"#);
        assert_eq!(settings(&body).http_version, version, "{value}");
    }
    assert_eq!(
        settings(r#"<forward-request timeout-ms="1500"/>"#).timeout,
        Some(Duration::from_millis(1500))
    );
    assert_eq!(
        settings(r#"<forward-request http-version="1"/>"#).http_version,
        HttpVersion::Http1
    );
}

#[test]
fn rejects_bad_forward_request() {
    check_errors(&[
        ErrorCase {
            name: "both timeouts",
            section: "backend",
            body: r#"<forward-request timeout="1" timeout-ms="1000"/>"#,
            at: "timeout-ms",
            kind: ErrorKind::InvalidValue,
            message: "not both",
        },
        ErrorCase {
            name: "negative timeout",
            section: "backend",
            body: r#"<forward-request timeout="-1"/>"#,
            at: "timeout",
            kind: ErrorKind::InvalidValue,
            message: "whole number",
        },
        ErrorCase {
            name: "bad version",
            section: "backend",
            body: r#"<forward-request http-version="3"/>"#,
            at: "http-version",
            kind: ErrorKind::InvalidValue,
            message: "`1`, `2` or `2or1`",
        },
        ErrorCase {
            name: "bad boolean",
            section: "backend",
            body: r#"<forward-request buffer-response="maybe"/>"#,
            at: "buffer-response",
            kind: ErrorKind::InvalidValue,
            message: "`buffer-response` must be `true` or `false`",
        },
        ErrorCase {
            name: "expression",
            section: "backend",
            body: r#"<forward-request timeout="@(60)"/>"#,
            at: "@(60)",
            kind: ErrorKind::NotSupported,
            message: "policy expressions",
        },
        ErrorCase {
            name: "continue timeout over HTTP/2",
            section: "backend",
            body: r#"<forward-request http-version="2or1" continue-timeout="5"/>"#,
            at: "continue-timeout",
            kind: ErrorKind::NotSupported,
            message: "HTTP/1.1 backends only",
        },
        ErrorCase {
            name: "unknown attribute",
            section: "backend",
            body: r#"<forward-request retries="3"/>"#,
            at: "retries",
            kind: ErrorKind::UnknownAttribute,
            message: "buffer-request-body",
        },
    ]);
}

#[test]
fn buffer_response_is_off_unless_asked() {
    let on = compile_in("backend", r#"<forward-request buffer-response="true"/>"#).unwrap();
    let mut state = crate::test_util::request(http::Method::GET, "/", "", &[]);
    assert_eq!(
        on.backend(&crate::test_util::facts(1), &crate::Counters::new(), &mut state),
        crate::Flow::Continue
    );
    assert!(state.forward.buffer_response);
}

#[test]
fn continue_timeout_is_recorded_and_zero_does_not_wait() {
    let timeout_of = |body: &str| {
        let pipeline = compile_in("backend", body).unwrap();
        let mut state = crate::test_util::request(http::Method::POST, "/", "", &[]);
        pipeline.backend(&crate::test_util::facts(1), &crate::Counters::new(), &mut state);
        state.forward.continue_timeout
    };
    assert_eq!(
        timeout_of(r#"<forward-request continue-timeout="5"/>"#),
        Some(std::time::Duration::from_secs(5))
    );
    assert_eq!(timeout_of(r#"<forward-request continue-timeout="0"/>"#), None);
    assert_eq!(timeout_of("<forward-request/>"), None);
}
