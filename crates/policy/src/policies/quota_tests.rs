use gatehouse_model::{Api, Operation, SubscriptionKeyParameterNames};
use http::Method;

use crate::pipeline::SubscriptionFacts;
use crate::test_util::{
    ErrorCase, check_errors, compile_xml_with, facts, failed, header, in_section, request,
};
use crate::{CompileContext, Counters, ErrorKind, Flow, NamedValues, Pipeline};

/// The pipeline of API `orders` ("Orders API"), operation `operation_id`.
fn compile(body: &str, operation_id: &str) -> Pipeline {
    let named = NamedValues::new();
    let api = Api {
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
    };
    let operation = Operation {
        id: operation_id.to_owned(),
        display_name: None,
        method: "GET".to_owned(),
        url_template: "/".to_owned(),
        policy: None,
        responses: Vec::new(),
    };
    let cx = CompileContext::new(&named)
        .with_api(&api)
        .with_operation(&operation);
    compile_xml_with(&in_section("inbound", body), &cx).unwrap()
}

fn call(pipeline: &Pipeline, counters: &Counters, subscription: Option<&str>) -> Flow {
    let mut facts = facts(1_000);
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
fn calls_are_counted_per_subscription_in_fixed_windows() {
    let pipeline = compile(r#"<quota calls="2" renewal-period="3600" />"#, "list");
    let counters = Counters::new();
    for _ in 0..4 {
        assert_eq!(
            call(&pipeline, &counters, None),
            Flow::Continue,
            "without a subscription, nothing is counted"
        );
    }
    assert_eq!(call(&pipeline, &counters, Some("s1")), Flow::Continue);
    assert_eq!(call(&pipeline, &counters, Some("s1")), Flow::Continue);
    assert_eq!(call(&pipeline, &counters, Some("s2")), Flow::Continue);
    let failure = failed(call(&pipeline, &counters, Some("s1")));
    assert_eq!(failure.error.source, "quota");
    assert_eq!(failure.error.reason, "QuotaExceeded");
    assert_eq!(failure.response.status, http::StatusCode::FORBIDDEN);
    assert!(failure.error.message.starts_with("Out of call volume quota."));
    assert!(header(&failure.response.headers, "retry-after").is_some());
}

#[test]
fn nested_api_and_operation_quotas_apply_to_their_target_and_a_refusal_uses_none_up() {
    let body = r#"<quota calls="3" renewal-period="3600">
        <api name="Orders API" calls="100" renewal-period="3600">
            <operation id="create" calls="1" renewal-period="3600" />
        </api>
        <api id="other" calls="1" renewal-period="3600" />
    </quota>"#;
    let counters = Counters::new();
    let create = compile(body, "create");
    let list = compile(body, "list");
    assert_eq!(call(&create, &counters, Some("s")), Flow::Continue);
    // The operation's quota is used up: refused, and the policy's own is not charged.
    assert_eq!(
        failed(call(&create, &counters, Some("s"))).error.reason,
        "QuotaExceeded"
    );
    // Another operation of the API still has the policy's remaining 2 calls.
    assert_eq!(call(&list, &counters, Some("s")), Flow::Continue);
    assert_eq!(call(&list, &counters, Some("s")), Flow::Continue);
    assert_eq!(
        failed(call(&list, &counters, Some("s"))).error.reason,
        "QuotaExceeded"
    );
}

#[test]
fn a_lifetime_bandwidth_quota_is_accepted_and_counts_no_calls() {
    let pipeline = compile(r#"<quota bandwidth="10" renewal-period="0" />"#, "list");
    let counters = Counters::new();
    for _ in 0..20 {
        assert_eq!(call(&pipeline, &counters, Some("s")), Flow::Continue);
    }
}

#[test]
fn bad_quotas_are_refused_at_load() {
    check_errors(&[
        ErrorCase {
            name: "neither calls nor bandwidth",
            section: "inbound",
            body: r#"<quota renewal-period="3600" />"#,
            at: "<quota",
            kind: ErrorKind::Missing,
            message: "at least one of `calls` and `bandwidth`",
        },
        ErrorCase {
            name: "short window",
            section: "inbound",
            body: r#"<quota calls="5" renewal-period="60" />"#,
            at: "renewal-period",
            kind: ErrorKind::InvalidValue,
            message: "at least 300 seconds",
        },
        ErrorCase {
            name: "nested without a name",
            section: "inbound",
            body: r#"<quota calls="5" renewal-period="3600"><api calls="1" renewal-period="3600" /></quota>"#,
            at: "<api",
            kind: ErrorKind::Missing,
            message: "needs a `name` or an `id`",
        },
        ErrorCase {
            name: "nested without an amount",
            section: "inbound",
            body: r#"<quota calls="5" renewal-period="3600"><api id="a" renewal-period="3600" /></quota>"#,
            at: "<api",
            kind: ErrorKind::Missing,
            message: "<api>: at least one of",
        },
        ErrorCase {
            name: "outbound",
            section: "outbound",
            body: r#"<quota calls="5" renewal-period="3600" />"#,
            at: "<quota",
            kind: ErrorKind::WrongSection,
            message: "inbound",
        },
        ErrorCase {
            name: "unknown child",
            section: "inbound",
            body: r#"<quota calls="5" renewal-period="3600"><product id="p" /></quota>"#,
            at: "<product",
            kind: ErrorKind::Structure,
            message: "<api>",
        },
    ]);
}
