use std::net::{IpAddr, Ipv6Addr};

use http::{HeaderMap, Method, StatusCode};

use crate::test_util::{compile_xml, compile_xml_with, facts, failed, header, request};
use crate::{
    CompileContext, Counters, ErrorKind, Flow, NamedValues, PolicyErrorInfo, RequestFacts,
    ResponseState, SubscriptionFacts,
};

/// Runs inbound with `X-Out` set from `expression`, and gives its value.
fn inbound_value(expression: &str, facts: &RequestFacts<'_>, headers: &[(&str, &str)]) -> String {
    let xml = format!(
        r#"<policies><inbound><set-header name="X-Out" exists-action="override"><value>{expression}</value></set-header></inbound></policies>"#
    );
    let pipeline = compile_xml(&xml).unwrap_or_else(|error| panic!("{expression}: {error}"));
    let mut state = request(Method::POST, "/orders/42", "a=1&b=x%20y", &[]);
    for (name, value) in headers {
        state.headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    let flow = pipeline.inbound(facts, &Counters::new(), &mut state);
    assert_eq!(flow, Flow::Continue, "{expression}");
    header(&state.headers, "x-out")
        .unwrap_or_else(|| panic!("{expression}: no header"))
        .to_owned()
}

#[test]
fn the_request_context_members() {
    let params = [("id", "42")];
    let subscription = SubscriptionFacts {
        id: "sub-1",
        key: "key-1",
        product_id: None,
        product_name: None,
        name: "subscription",
    };
    let facts = RequestFacts {
        client_ip: IpAddr::V6(Ipv4MappedLoopback::ADDRESS),
        subscription: Some(subscription),
        route_params: &params,
        ..facts(1)
    };
    let headers = [("x-tenant", "contoso"), ("x-multi", "1"), ("x-multi", "2")];
    let cases = [
        ("@(context.Request.Method)", "POST"),
        ("@(context.Request.Url.Path)", "/orders/42"),
        ("@(context.Request.Url.QueryString)", "?a=1&b=x%20y"),
        (
            r#"@(context.Request.Url.Query.GetValueOrDefault("b", ""))"#,
            "x y",
        ),
        (r#"@(context.Request.Url.Query["a"][0])"#, "1"),
        (r#"@(context.Request.Url.Query.ContainsKey("zz"))"#, "False"),
        (
            r#"@(context.Request.Headers.GetValueOrDefault("X-Tenant", "none"))"#,
            "contoso",
        ),
        (
            r#"@(context.Request.Headers.GetValueOrDefault("X-Missing", "none"))"#,
            "none",
        ),
        (
            r#"@(context.Request.Headers.GetValueOrDefault("X-Multi"))"#,
            "1,2",
        ),
        (r#"@(context.Request.Headers["X-Multi"].Length)"#, "2"),
        (
            r#"@(context.Request.Headers.ContainsKey("x-tenant"))"#,
            "True",
        ),
        ("@(context.Request.IpAddress)", "127.0.0.1"),
        (r#"@(context.Request.MatchedParameters["id"])"#, "42"),
        (
            r#"@(context.Request.MatchedParameters.GetValueOrDefault("nope", "-"))"#,
            "-",
        ),
        ("@(context.Subscription.Id)", "sub-1"),
        ("@(context.Response == null)", "True"),
        ("@(context.LastError == null)", "True"),
        ("@(context.Request is IRequest)", "True"),
        ("@(context.Variables.Count)", "0"),
        (
            r#"@{ var t = context.Request.Headers.GetValueOrDefault("X-Tenant", ""); return $"{t.ToUpper()}-{t.Length}"; }"#,
            "CONTOSO-7",
        ),
    ];
    for (expression, expected) in cases {
        assert_eq!(
            inbound_value(expression, &facts, &headers),
            expected,
            "{expression}"
        );
    }
}

/// `::ffff:127.0.0.1`.
struct Ipv4MappedLoopback;

impl Ipv4MappedLoopback {
    const ADDRESS: Ipv6Addr = Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x7f00, 1);
}

#[test]
fn without_a_subscription_it_is_null_and_dereferencing_it_fails() {
    assert_eq!(
        inbound_value(
            "@(context.Subscription?.Id ?? \"anonymous\")",
            &facts(1),
            &[]
        ),
        "anonymous"
    );
    let pipeline = compile_xml(
        r#"<policies><inbound><set-header name="X" exists-action="override"><value>@(context.Subscription.Id)</value></set-header></inbound></policies>"#,
    )
    .unwrap();
    let mut state = request(Method::GET, "/", "", &[]);
    let failure = failed(pipeline.inbound(&facts(1), &Counters::new(), &mut state));
    assert_eq!(failure.error.reason, "ExpressionValueEvaluationFailure");
    assert_eq!(failure.response.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        failure.error.message.contains("test:1:"),
        "{}",
        failure.error.message
    );
}

#[test]
fn context_members_gatehouse_lacks_are_refused_at_load_and_typos_are_invalid() {
    for (value, kind, message) in [
        (
            "@(context.Deployment.ServiceName)",
            ErrorKind::NotSupported,
            "`context.Deployment.ServiceName` is not available in Gatehouse yet",
        ),
        (
            "@(context.Request?.Certificate)",
            ErrorKind::NotSupported,
            "`context.Request.Certificate` is not available",
        ),
        (
            "@($\"{context.Subscription.PrimaryKey}\")",
            ErrorKind::NotSupported,
            "`context.Subscription.PrimaryKey`",
        ),
        (
            "@(context.Requets.Method)",
            ErrorKind::InvalidValue,
            "`context` has no member `Requets`; it has: Request,",
        ),
    ] {
        let xml = format!(
            r#"<policies><inbound><set-variable name="a" value="{value}" /></inbound></policies>"#
        );
        let error = compile_xml(&xml).unwrap_err();
        assert_eq!(error.kind, kind, "{value}: {error}");
        assert!(error.message.contains(message), "{value}: {error}");
    }
    // A string that only mentions the context is not code.
    compile_xml(r#"<policies><inbound><set-variable name="a" value="@("context.Deployment")" /></inbound></policies>"#).unwrap();
}

#[test]
fn members_reached_through_a_local_fail_at_request_time_never_silently() {
    let pipeline = compile_xml(
        r#"<policies><inbound><set-variable name="a" value="@{ var request = context.Request; return request.Certificate; }" /></inbound></policies>"#,
    )
    .unwrap();
    let mut state = request(Method::GET, "/", "", &[]);
    let failure = failed(pipeline.inbound(&facts(1), &Counters::new(), &mut state));
    assert_eq!(failure.error.reason, "ExpressionValueEvaluationFailure");
    assert!(
        failure.error.message.contains("Certificate"),
        "{}",
        failure.error.message
    );
}

#[test]
fn outbound_reads_the_response_and_on_error_reads_last_error() {
    let pipeline = compile_xml(
        r#"<policies><outbound><set-header name="X-Status" exists-action="override"><value>@($"{context.Response.StatusCode} {context.Response.StatusReason} {context.Response.Headers.GetValueOrDefault("Server","")}")</value></set-header></outbound><on-error><set-header name="X-Error" exists-action="override"><value>@($"{context.LastError.Source}/{context.LastError.Reason}/{context.LastError.Section}/{context.LastError.PolicyId}: {context.LastError.Message}")</value></set-header></on-error></policies>"#,
    )
    .unwrap();
    let counters = Counters::new();
    let mut state = request(Method::GET, "/", "", &[]);
    let mut headers = HeaderMap::new();
    headers.insert("server", http::HeaderValue::from_static("backend"));
    let mut response = ResponseState::new(StatusCode::NOT_FOUND, headers);
    assert_eq!(
        pipeline.outbound(&facts(1), &counters, &mut state, &mut response),
        Flow::Continue
    );
    assert_eq!(
        header(&response.headers, "x-status"),
        Some("404 Not Found backend")
    );

    let error = PolicyErrorInfo {
        source: "rate-limit",
        reason: "RateLimitExceeded",
        message: "Rate limit is exceeded".into(),
        section: Some(crate::SectionKind::Inbound),
        policy_id: Some("limit-1".into()),
        scope: None,
        path: None,
    };
    let mut response = ResponseState::new(StatusCode::TOO_MANY_REQUESTS, HeaderMap::new());
    assert_eq!(
        pipeline.on_error(&facts(1), &counters, &mut state, &error, &mut response),
        Flow::Continue
    );
    assert_eq!(
        header(&response.headers, "x-error"),
        Some("rate-limit/RateLimitExceeded/inbound/limit-1: Rate limit is exceeded")
    );
}

#[test]
fn named_values_are_substituted_into_expressions_and_secrets_stay_out_of_errors() {
    let mut named = NamedValues::new();
    named.insert("tier", "gold", false);
    named.insert("token", "s3cr3t-value", true);
    let cx = CompileContext::new(&named);
    let pipeline = compile_xml_with(
        r#"<policies><inbound><set-header name="X" exists-action="override"><value>@("{{tier}}".ToUpper())</value></set-header></inbound></policies>"#,
        &cx,
    )
    .unwrap();
    let mut state = request(Method::GET, "/", "", &[]);
    assert_eq!(
        pipeline.inbound(&facts(1), &Counters::new(), &mut state),
        Flow::Continue
    );
    assert_eq!(header(&state.headers, "x"), Some("GOLD"));

    // A secret in an expression that does not compile: the error does not show it.
    let error = compile_xml_with(
        r#"<policies><inbound><set-header name="X" exists-action="override"><value>@("{{token}}" +)</value></set-header></inbound></policies>"#,
        &cx,
    )
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidValue);
    assert!(!error.to_string().contains("s3cr3t"), "{error}");
    // ... nor one that fails per request; the header value is marked sensitive.
    let pipeline = compile_xml_with(
        r#"<policies><inbound><set-header name="X" exists-action="override"><value>@("{{token}}")</value></set-header><set-variable name="n" value="@(int.Parse("{{token}}"))" /></inbound></policies>"#,
        &cx,
    )
    .unwrap();
    let mut state = request(Method::GET, "/", "", &[]);
    let failure = failed(pipeline.inbound(&facts(1), &Counters::new(), &mut state));
    assert!(
        !failure.error.message.contains("s3cr3t"),
        "{}",
        failure.error.message
    );
    assert!(state.headers.get("x").unwrap().is_sensitive());
    assert!(!format!("{pipeline:?} {state:?}").contains("s3cr3t"));
}

#[test]
fn a_runaway_expression_is_stopped_by_its_step_budget() {
    let pipeline = compile_xml(
        r#"<policies><inbound><set-variable name="n" value="@{ var total = 0; foreach (var a in new [] {1,2,3,4,5,6,7,8,9,10}) { foreach (var b in new [] {1,2,3,4,5,6,7,8,9,10}) { foreach (var c in new [] {1,2,3,4,5,6,7,8,9,10}) { foreach (var d in new [] {1,2,3,4,5,6,7,8,9,10}) { total += 1; } } } } return total; }" /></inbound></policies>"#,
    )
    .unwrap();
    let mut state = request(Method::GET, "/", "", &[]);
    let failure = failed(pipeline.inbound(&facts(1), &Counters::new(), &mut state));
    assert_eq!(failure.error.reason, "ExpressionValueEvaluationFailure");
}

#[test]
fn a_value_that_is_not_a_header_value_fails_the_request() {
    let pipeline = compile_xml(
        r#"<policies><inbound><set-header name="X" exists-action="override"><value>@("a\r\nInjected: 1")</value></set-header></inbound></policies>"#,
    )
    .unwrap();
    let mut state = request(Method::GET, "/", "", &[]);
    let failure = failed(pipeline.inbound(&facts(1), &Counters::new(), &mut state));
    assert_eq!(failure.error.reason, "ExpressionValueEvaluationFailure");
    assert!(state.headers.get("injected").is_none());
}

#[test]
fn the_api_operation_product_and_urls() {
    use gatehouse_model::{Api, Operation, SubscriptionKeyParameterNames};
    let api = Api {
        id: "orders".to_owned(),
        display_name: Some("Orders API".to_owned()),
        path: "shop/orders".to_owned(),
        hostnames: Vec::new(),
        protocols: Vec::new(),
        service_url: Some("https://backend.internal:8443/v2".to_owned()),
        backend_id: None,
        subscription_required: true,
        subscription_key_parameter_names: SubscriptionKeyParameterNames::default(),
        policy: None,
        operations: Vec::new(),
    };
    let operation = Operation {
        id: "get-order".to_owned(),
        display_name: None,
        method: "GET".to_owned(),
        url_template: "/orders/{id}".to_owned(),
        policy: None,
        responses: Vec::new(),
    };
    let named = NamedValues::new();
    let cx = CompileContext::new(&named)
        .with_api(&api)
        .with_operation(&operation);
    let subscription = SubscriptionFacts {
        id: "sub-1",
        key: "key-1",
        product_id: Some("gold"),
        product_name: Some("Gold tier"),
        name: "Contoso's app",
    };
    let facts = RequestFacts {
        subscription: Some(subscription),
        original_url: crate::OriginalUrl {
            scheme: "https",
            host: "api.example.com:8443",
            path: "/shop/orders/42",
            query: "a=1&subscription-key=k",
        },
        request_id: Some("0f8fad5b-d9cb-469f-a165-70867728950e"),
        ..facts(1)
    };
    let cases = [
        ("@(context.Api.Id)", "orders"),
        ("@(context.Api.Name)", "Orders API"),
        ("@(context.Api.Path)", "shop/orders"),
        ("@(context.Api.Version ?? \"none\")", "none"),
        ("@(context.Api.ServiceUrl.Host)", "backend.internal"),
        ("@(context.Api.ServiceUrl.Port)", "8443"),
        (
            "@(context.Api.ServiceUrl.ToString())",
            "https://backend.internal:8443/v2",
        ),
        ("@(context.Operation.Id)", "get-order"),
        ("@(context.Operation.Name)", "get-order"),
        ("@(context.Operation.Method)", "GET"),
        ("@(context.Operation.UrlTemplate)", "/orders/{id}"),
        (
            "@(context.Product.Id + \"/\" + context.Product.Name)",
            "gold/Gold tier",
        ),
        ("@(context.Subscription.Name)", "Contoso's app"),
        (
            "@(context.Deployment.GatewayId + \"/\" + context.Deployment.Region)",
            "gw-1/eu-west",
        ),
        (
            "@(context.Deployment.Gateway.Id + \"/\" + context.Deployment.Gateway.IsManaged)",
            "gw-1/False",
        ),
        ("@(context.User == null)", "True"),
        (
            "@(context.RequestId)",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
        ),
        ("@(context.Request.OriginalUrl.Scheme)", "https"),
        ("@(context.Request.OriginalUrl.Host)", "api.example.com"),
        ("@(context.Request.OriginalUrl.Port)", "8443"),
        ("@(context.Request.OriginalUrl.Path)", "/shop/orders/42"),
        (
            r#"@(context.Request.OriginalUrl.Query.GetValueOrDefault("a", ""))"#,
            "1",
        ),
        (
            "@(context.Request.OriginalUrl.ToString())",
            "https://api.example.com:8443/shop/orders/42?a=1&subscription-key=k",
        ),
        ("@(context.Request.Url.Host)", "backend.internal"),
        ("@(context.Request.Url.Scheme)", "https"),
        (
            "@(context.Request.Url.ToString())",
            "https://backend.internal:8443/v2/orders/42?a=1&b=x%20y",
        ),
    ];
    for (expression, expected) in cases {
        let xml = format!(
            r#"<policies><inbound><set-header name="X-Out" exists-action="override"><value>{expression}</value></set-header></inbound></policies>"#
        );
        let pipeline =
            compile_xml_with(&xml, &cx).unwrap_or_else(|error| panic!("{expression}: {error}"));
        let mut state = request(Method::POST, "/orders/42", "a=1&b=x%20y", &[]);
        let flow = pipeline.inbound(&facts, &Counters::new(), &mut state);
        assert_eq!(flow, Flow::Continue, "{expression}");
        assert_eq!(
            header(&state.headers, "x-out"),
            Some(expected),
            "{expression}"
        );
    }
    // The request id is made only for pipelines that read it.
    let reads = |expression: &str| {
        let xml = format!(
            r#"<policies><inbound><set-variable name="v" value="{expression}" /></inbound></policies>"#
        );
        compile_xml_with(&xml, &cx)
            .unwrap()
            .context_reads()
            .request_id
    };
    assert!(reads("@(context.RequestId)"));
    assert!(reads("@($\"id {context.RequestId}\")"));
    assert!(!reads("@(context.Api.Id)"));
    // Without one (the rest of the context: no API, no product), members are null.
    let bare = compile_xml(
        r#"<policies><inbound><set-header name="X-Out" exists-action="override"><value>@((context.Api == null) + "," + (context.Product == null) + "," + (context.Request.Url.Host == null))</value></set-header></inbound></policies>"#,
    )
    .unwrap();
    let mut state = request(Method::GET, "/", "", &[]);
    assert_eq!(
        bare.inbound(&crate::test_util::facts(1), &Counters::new(), &mut state),
        Flow::Continue
    );
    assert_eq!(header(&state.headers, "x-out"), Some("True,True,True"));
}

#[test]
fn dates_come_from_the_gateways_clock_and_the_requests_time() {
    let services = crate::test_util::FakeServices::answering(200, "{}");
    let facts = RequestFacts {
        // 2023-11-14T22:13:20Z
        now: std::time::Duration::from_secs(1_700_000_000),
        services: Some(&services),
        ..facts(1)
    };
    for (expression, expected) in [
        (
            "@(context.Timestamp.ToString(\"o\"))",
            "2023-11-14T22:13:20.0000000Z",
        ),
        ("@(DateTime.UtcNow.ToString(\"s\"))", "2024-01-02T03:04:05"),
        ("@(context.Elapsed.TotalMilliseconds)", "1500"),
        ("@((DateTime.UtcNow - context.Timestamp).Days)", "48"),
        ("@(DateTimeOffset.UtcNow.ToUnixTimeSeconds())", "1704164645"),
        (
            "@(Guid.NewGuid().ToString())",
            "11111111-1111-4111-9111-111111111111",
        ),
    ] {
        assert_eq!(
            inbound_value(expression, &facts, &[]),
            expected,
            "{expression}"
        );
    }
    // Without the gateway's services (a check, a test), `UtcNow` is the request's time
    // and a GUID cannot be made.
    assert_eq!(
        inbound_value(
            "@(DateTime.UtcNow.Year)",
            &crate::test_util::facts(1_700_000_000),
            &[]
        ),
        "2023"
    );
}

#[test]
fn form_bodies_read_as_their_fields() {
    let pipeline = compile_xml(
        r#"<policies><inbound><set-header name="X-Code" exists-action="override"><value>@((string)context.Request.Body.AsFormUrlEncodedContent(true)["code"][0])</value></set-header><set-header name="X-Scopes" exists-action="override"><value>@(((JArray)context.Request.Body.AsFormUrlEncodedContent(true)["scope"]).Count.ToString())</value></set-header><set-header name="X-Has-State" exists-action="override"><value>@(context.Request.Body.AsFormUrlEncodedContent(true).ContainsKey("state").ToString())</value></set-header></inbound></policies>"#,
    )
    .unwrap();
    assert!(
        pipeline.context_reads().request_body,
        "the body is read whole"
    );
    let mut state = request(Method::POST, "/", "", &[]);
    state.body = Some(crate::BufferedBody::new(bytes::Bytes::from_static(
        b"code=a%20b&scope=read&scope=write",
    )));
    assert_eq!(
        pipeline.inbound(&facts(1), &Counters::new(), &mut state),
        Flow::Continue
    );
    assert_eq!(
        crate::test_util::header(&state.headers, "x-code"),
        Some("a b")
    );
    assert_eq!(
        crate::test_util::header(&state.headers, "x-scopes"),
        Some("2")
    );
    assert_eq!(
        crate::test_util::header(&state.headers, "x-has-state"),
        Some("False")
    );
}

#[test]
fn client_addresses_read_as_dotnet_writes_them() {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let text = |ip: IpAddr| match super::ip_text(ip) {
        gatehouse_expr::Value::String(text) => text.to_string(),
        other => panic!("{other:?}"),
    };
    for octets in [
        [0, 0, 0, 0],
        [9, 10, 99, 100],
        [127, 0, 0, 1],
        [255, 255, 255, 255],
    ] {
        let ip = Ipv4Addr::from(octets);
        assert_eq!(text(IpAddr::V4(ip)), ip.to_string());
    }
    assert_eq!(text(IpAddr::V6(Ipv6Addr::LOCALHOST)), "::1");
}
