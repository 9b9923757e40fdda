use gatehouse_model::{Api, Operation, SubscriptionKeyParameterNames};
use http::Method;

use crate::pipeline::SubscriptionFacts;
use crate::test_util::{
    ErrorCase, check_errors, compile_xml_with, facts, failed, header, in_section, request,
};
use crate::{CompileContext, Counters, ErrorKind, Flow, NamedValues, Pipeline};

fn api() -> Api {
    Api {
        id: "orders".to_owned(),
        display_name: Some("Orders API".to_owned()),
        path: "orders".to_owned(),
        hostnames: Vec::new(),
        protocols: Vec::new(),
        service_url: None,
        backend_id: None,
        subscription_required: true,
        subscription_key_parameter_names: SubscriptionKeyParameterNames::default(),
        policy: None,
        operations: Vec::new(),
    }
}

fn operation(id: &str) -> Operation {
    Operation {
        id: id.to_owned(),
        display_name: Some(format!("{id} op")),
        method: "GET".to_owned(),
        url_template: "/".to_owned(),
        policy: None,
        responses: Vec::new(),
    }
}

fn compile(body: &str, operation_id: &str) -> Pipeline {
    let named = NamedValues::new();
    let api = api();
    let operation = operation(operation_id);
    let cx = CompileContext::new(&named)
        .with_api(&api)
        .with_operation(&operation);
    compile_xml_with(&in_section("inbound", body), &cx).unwrap()
}

fn call(pipeline: &Pipeline, counters: &Counters, subscription: Option<&str>) -> Flow {
    let mut facts = facts(500);
    facts.subscription = subscription.map(|id| SubscriptionFacts {
        id,
        key: "key",
        product_id: None,
        product_name: None,
        name: "subscription",
    });
    let mut state = request(Method::GET, "/", "", &[]);
    pipeline.inbound(&facts, counters, &mut state)
}

#[test]
fn limits_per_subscription() {
    let pipeline = compile(r#"<rate-limit calls="2" renewal-period="60"/>"#, "list");
    let counters = Counters::new();
    for _ in 0..5 {
        assert_eq!(
            call(&pipeline, &counters, None),
            Flow::Continue,
            "no subscription, no limit"
        );
    }
    assert_eq!(call(&pipeline, &counters, Some("s1")), Flow::Continue);
    assert_eq!(call(&pipeline, &counters, Some("s1")), Flow::Continue);
    assert_eq!(call(&pipeline, &counters, Some("s2")), Flow::Continue);
    let failure = failed(call(&pipeline, &counters, Some("s1")));
    assert_eq!(failure.error.source, "rate-limit");
    assert_eq!(failure.response.status, http::StatusCode::TOO_MANY_REQUESTS);
    assert!(header(&failure.response.headers, "retry-after").is_some());
}

#[test]
fn nested_api_and_operation_limits_apply_to_their_target() {
    let body = r#"<rate-limit calls="10" renewal-period="60" remaining-calls-header-name="x-remaining">
        <api name="Orders API" calls="3" renewal-period="60">
            <operation id="create" calls="1" renewal-period="60"/>
        </api>
        <api id="other" calls="1" renewal-period="60"/>
    </rate-limit>"#;
    let counters = Counters::new();
    let create = compile(body, "create");
    let list = compile(body, "list");
    let mut state = request(Method::GET, "/", "", &[]);
    let mut with_subscription = facts(500);
    with_subscription.subscription = Some(SubscriptionFacts {
        id: "s1",
        key: "key",
        product_id: None,
        product_name: None,
        name: "subscription",
    });
    assert_eq!(
        create.inbound(&with_subscription, &counters, &mut state),
        Flow::Continue
    );
    assert_eq!(
        header(&state.response_headers, "x-remaining"),
        Some("0"),
        "the tightest limit"
    );
    assert!(
        matches!(call(&create, &counters, Some("s1")), Flow::Fail(_)),
        "operation limit"
    );
    assert_eq!(call(&list, &counters, Some("s1")), Flow::Continue);
    assert_eq!(call(&list, &counters, Some("s1")), Flow::Continue);
    assert!(
        matches!(call(&list, &counters, Some("s1")), Flow::Fail(_)),
        "API limit: 3 calls to the API"
    );
}

#[test]
fn rejects_bad_rate_limit() {
    check_errors(&[
        ErrorCase {
            name: "api without name",
            section: "inbound",
            body: r#"<rate-limit calls="1" renewal-period="1"><api calls="1" renewal-period="1"/></rate-limit>"#,
            at: "<api",
            kind: ErrorKind::Missing,
            message: "<api> needs a `name` or an `id`",
        },
        ErrorCase {
            name: "operation at the top",
            section: "inbound",
            body: r#"<rate-limit calls="1" renewal-period="1"><operation name="x" calls="1" renewal-period="1"/></rate-limit>"#,
            at: "<operation",
            kind: ErrorKind::Structure,
            message: "expected <api>",
        },
        ErrorCase {
            name: "nested missing calls",
            section: "inbound",
            body: r#"<rate-limit calls="1" renewal-period="1"><api name="a" renewal-period="1"/></rate-limit>"#,
            at: "<api",
            kind: ErrorKind::Missing,
            message: "<api>: missing required attribute `calls`",
        },
        ErrorCase {
            name: "nested bad period (even when not applicable)",
            section: "inbound",
            body: r#"<rate-limit calls="1" renewal-period="1"><api name="a" calls="1" renewal-period="900"/></rate-limit>"#,
            at: r#"renewal-period="900""#,
            kind: ErrorKind::InvalidValue,
            message: "from 1 to 300",
        },
        ErrorCase {
            name: "variable",
            section: "inbound",
            body: r#"<rate-limit calls="1" renewal-period="1" remaining-calls-variable-name="v"/>"#,
            at: "remaining-calls-variable-name",
            kind: ErrorKind::NotSupported,
            message: "policy variables",
        },
        ErrorCase {
            name: "nested unknown attribute",
            section: "inbound",
            body: r#"<rate-limit calls="1" renewal-period="1"><api name="a" calls="1" renewal-period="1" key="x"/></rate-limit>"#,
            at: "key=",
            kind: ErrorKind::UnknownAttribute,
            message: "<api>: unknown attribute `key`",
        },
    ]);
}
