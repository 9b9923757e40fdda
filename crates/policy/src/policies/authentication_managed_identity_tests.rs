use http::Method;

use crate::test_util::{
    ErrorCase, FakeServices, block_on, check_errors, compile_in, facts, failed, header, request,
};
use crate::{CallError, Counters, ErrorKind, Flow, RequestFacts, Value};

fn with(services: &FakeServices) -> RequestFacts<'_> {
    RequestFacts {
        services: Some(services),
        ..facts(1)
    }
}

#[test]
fn the_token_goes_to_the_authorization_header_or_a_variable() {
    let services = FakeServices::answering(200, "");
    let pipeline = compile_in(
        "inbound",
        r#"<authentication-managed-identity resource="api://orders" />"#,
    )
    .unwrap();
    assert!(pipeline.is_async());
    let mut state = request(Method::GET, "/", "", &[("authorization", "Basic client")]);
    let flow = block_on(pipeline.inbound_async(&with(&services), &Counters::new(), &mut state));
    assert_eq!(flow, Flow::Continue);
    assert_eq!(
        header(&state.headers, "authorization"),
        Some("Bearer token-for-api://orders")
    );
    assert!(state.headers["authorization"].is_sensitive());

    let to_variable = compile_in(
        "inbound",
        r#"<authentication-managed-identity resource="@("api://" + context.Request.Headers.GetValueOrDefault("X-Target", "none"))" output-token-variable-name="token" />"#,
    )
    .unwrap();
    let mut state = request(Method::GET, "/", "", &[("x-target", "vault")]);
    let flow = block_on(to_variable.inbound_async(&with(&services), &Counters::new(), &mut state));
    assert_eq!(flow, Flow::Continue);
    assert_eq!(
        state.variables.get("token"),
        Some(&Value::string("token-for-api://vault"))
    );
    assert_eq!(header(&state.headers, "authorization"), None);
}

#[test]
fn without_a_token_the_request_fails_unless_errors_are_ignored() {
    let refusing = FakeServices::failing(CallError::Refused("invalid_client".to_owned()));
    let strict = compile_in(
        "inbound",
        r#"<authentication-managed-identity resource="api://orders" />"#,
    )
    .unwrap();
    let mut state = request(Method::GET, "/", "", &[]);
    let failure = failed(block_on(strict.inbound_async(
        &with(&refusing),
        &Counters::new(),
        &mut state,
    )));
    assert_eq!(failure.error.source, "authentication-managed-identity");
    assert_eq!(failure.error.reason, "TokenAcquisitionFailure");
    assert!(failure.error.message.contains("invalid_client"), "{}", failure.error.message);

    let lenient = compile_in(
        "inbound",
        r#"<authentication-managed-identity resource="api://orders" ignore-error="true" />"#,
    )
    .unwrap();
    let mut state = request(Method::GET, "/", "", &[]);
    let flow = block_on(lenient.inbound_async(&with(&refusing), &Counters::new(), &mut state));
    assert_eq!(flow, Flow::Continue);
    assert_eq!(header(&state.headers, "authorization"), None);
}

#[test]
fn bad_managed_identity_policies_are_refused_at_load() {
    check_errors(&[
        ErrorCase {
            name: "user-assigned identity",
            section: "inbound",
            body: r#"<authentication-managed-identity resource="api://a" client-id="1234" />"#,
            at: "client-id",
            kind: ErrorKind::NotSupported,
            message: "one identity",
        },
        ErrorCase {
            name: "no resource",
            section: "inbound",
            body: r#"<authentication-managed-identity />"#,
            at: "<authentication-managed-identity",
            kind: ErrorKind::Missing,
            message: "resource",
        },
        ErrorCase {
            name: "outbound",
            section: "outbound",
            body: r#"<authentication-managed-identity resource="api://a" />"#,
            at: "<authentication-managed-identity",
            kind: ErrorKind::WrongSection,
            message: "allowed in: inbound",
        },
    ]);
}

#[test]
fn policy_check_warns_that_it_is_mapped() {
    let named = crate::NamedValues::new();
    let report = crate::check(
        "backend-auth.xml",
        r#"<policies><inbound><authentication-managed-identity resource="api://orders" /></inbound></policies>"#,
        &crate::CompileContext::new(&named),
    );
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].kind, ErrorKind::Mapped);
    assert!(
        report.problems[0].message.contains("OAuth2 client credentials"),
        "{}",
        report.problems[0].message
    );
}
