use bytes::Bytes;
use http::{Method, StatusCode};

use crate::test_util::{
    ErrorCase, check_errors, compile_in, compile_xml, facts, failed, header, request,
};
use crate::{ContextReads, BufferedBody, Counters, ErrorKind, Flow, RequestState, ResponseState};

/// A POST with `body` read whole, as the gateway hands it over when the pipeline reads
/// the request body.
fn post(body: &str) -> RequestState {
    let mut state = request(Method::POST, "/", "", &[("content-type", "application/json")]);
    state.body = Some(BufferedBody::new(Bytes::from(body.to_owned())));
    state
}

fn sent(body: Option<&BufferedBody>) -> Bytes {
    body.map(BufferedBody::to_send).unwrap_or_default()
}

#[test]
fn a_fixed_body_replaces_the_request_body_and_reads_nothing() {
    let pipeline = compile_in("inbound", r#"<set-body><![CDATA[{"fixed":true}]]></set-body>"#).unwrap();
    assert_eq!(pipeline.context_reads(), ContextReads::default(), "nothing to buffer");
    let mut state = request(Method::POST, "/", "", &[]);
    assert_eq!(pipeline.inbound(&facts(1), &Counters::new(), &mut state), Flow::Continue);
    assert_eq!(sent(state.body.as_ref()), r#"{"fixed":true}"#);
}

#[test]
fn an_expression_edits_the_json_request_body() {
    let pipeline = compile_in(
        "inbound",
        r#"<set-body>@{
            var body = context.Request.Body.As<JObject>(preserveContent: true);
            body["source"] = "gateway";
            body["count"] = (int)body["count"] + 1;
            return body.ToString();
        }</set-body>"#,
    )
    .unwrap();
    assert_eq!(
        pipeline.context_reads(),
        ContextReads {
            request_body: true,
            ..ContextReads::default()
        }
    );
    let mut state = post(r#"{"count":1}"#);
    assert_eq!(pipeline.inbound(&facts(1), &Counters::new(), &mut state), Flow::Continue);
    let json: serde_json::Value = serde_json::from_slice(&sent(state.body.as_ref())).unwrap();
    assert_eq!(json, serde_json::json!({"count": 2, "source": "gateway"}));
}

#[test]
fn reading_without_preserve_content_loses_the_original_body_as_in_apim() {
    let pipeline = compile_in(
        "inbound",
        r#"<set-variable name="raw" value="@(context.Request.Body.As<string>())" /><set-header name="X-Again" exists-action="override"><value>@(context.Request.Body == null ? "gone" : "there")</value></set-header>"#,
    )
    .unwrap();
    let mut state = post("hello");
    assert_eq!(pipeline.inbound(&facts(1), &Counters::new(), &mut state), Flow::Continue);
    assert_eq!(
        state.variables.get("raw"),
        Some(&crate::Value::string("hello"))
    );
    assert_eq!(header(&state.headers, "x-again"), Some("gone"));
    assert_eq!(sent(state.body.as_ref()), "", "the backend gets no body");

    let preserving = compile_in(
        "inbound",
        r#"<set-variable name="raw" value="@(context.Request.Body.As<string>(true))" />"#,
    )
    .unwrap();
    let mut state = post("hello");
    assert_eq!(preserving.inbound(&facts(1), &Counters::new(), &mut state), Flow::Continue);
    assert_eq!(sent(state.body.as_ref()), "hello");
}

#[test]
fn an_empty_body_is_null_and_bad_json_fails_into_on_error() {
    let pipeline = compile_in(
        "inbound",
        r#"<set-header name="X-Has" exists-action="override"><value>@(context.Request.Body != null)</value></set-header>"#,
    )
    .unwrap();
    let mut state = post("");
    assert_eq!(pipeline.inbound(&facts(1), &Counters::new(), &mut state), Flow::Continue);
    assert_eq!(header(&state.headers, "x-has"), Some("False"));

    let parsing = compile_in(
        "inbound",
        r#"<set-variable name="j" value="@(context.Request.Body.As<JObject>(preserveContent: true))" />"#,
    )
    .unwrap();
    for (body, message) in [("not json", "not JSON"), ("[1]", "not a JObject")] {
        let mut state = post(body);
        let failure = failed(parsing.inbound(&facts(1), &Counters::new(), &mut state));
        assert_eq!(failure.error.reason, "ExpressionValueEvaluationFailure");
        assert!(failure.error.message.contains(message), "{}", failure.error.message);
    }
}

#[test]
fn a_body_the_gateway_did_not_read_is_a_clear_error() {
    // Through a local variable, the read is not seen at load: nothing was buffered.
    let pipeline = compile_in(
        "inbound",
        r#"<set-variable name="x" value="@{ var request = context.Request; return request.Body.As<string>(); }" />"#,
    )
    .unwrap();
    assert_eq!(pipeline.context_reads(), ContextReads::default());
    let mut state = request(Method::POST, "/", "", &[]);
    let failure = failed(pipeline.inbound(&facts(1), &Counters::new(), &mut state));
    assert!(
        failure.error.message.contains("names `context.Request.Body` directly"),
        "{}",
        failure.error.message
    );
}

#[test]
fn outbound_reads_and_replaces_the_response_body() {
    let pipeline = compile_xml(
        r#"<policies><inbound /><outbound><set-body>@{
            var body = context.Response.Body.As<JArray>();
            var wrapped = new JObject();
            wrapped["items"] = body;
            wrapped["status"] = context.Response.StatusCode;
            return wrapped.ToString();
        }</set-body></outbound></policies>"#,
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
    let mut response = ResponseState::new(StatusCode::OK, http::HeaderMap::new());
    response.body = Some(BufferedBody::new(Bytes::from_static(b"[1,2]")));
    assert_eq!(
        pipeline.outbound(&facts(1), &counters, &mut state, &mut response),
        Flow::Continue
    );
    let json: serde_json::Value = serde_json::from_slice(&sent(response.body.as_ref())).unwrap();
    assert_eq!(json, serde_json::json!({"items": [1, 2], "status": 200}));
}

#[test]
fn on_error_replaces_the_error_body() {
    let pipeline = compile_xml(
        r#"<policies><inbound /><on-error><set-body>@($"{{\"error\":\"{context.LastError.Reason}\"}}")</set-body></on-error></policies>"#,
    )
    .unwrap();
    let counters = Counters::new();
    let mut state = request(Method::GET, "/", "", &[]);
    let error = crate::PolicyErrorInfo {
        source: "rate-limit",
        reason: "RateLimitExceeded",
        message: "x".into(),
        section: None,
        policy_id: None,
        scope: None,
        path: None,
    };
    let mut response = ResponseState::new(StatusCode::TOO_MANY_REQUESTS, http::HeaderMap::new());
    response.body = Some(BufferedBody::new(Bytes::from_static(b"original")));
    assert_eq!(
        pipeline.on_error(&facts(1), &counters, &mut state, &error, &mut response),
        Flow::Continue
    );
    assert_eq!(
        sent(response.body.as_ref()),
        r#"{"error":"RateLimitExceeded"}"#
    );
}

#[test]
fn bad_set_bodies_are_refused_at_load() {
    check_errors(&[
        ErrorCase {
            name: "unknown template",
            section: "outbound",
            body: r#"<set-body template="mustache">x</set-body>"#,
            at: "template",
            kind: ErrorKind::InvalidValue,
            message: "`liquid` or `none`",
        },
        ErrorCase {
            name: "XDocument",
            section: "inbound",
            body: r#"<set-body>@(context.Request.Body.As<XDocument>().ToString())</set-body>"#,
            at: "XDocument",
            kind: ErrorKind::NotSupported,
            message: "found `XDocument`",
        },
        ErrorCase {
            name: "not a body type",
            section: "inbound",
            body: r#"<set-body>@(context.Request.Body.As<int>())</set-body>"#,
            at: "int",
            kind: ErrorKind::InvalidValue,
            message: "a body cannot be read as `int`",
        },
        ErrorCase {
            name: "an XML body",
            section: "inbound",
            body: r#"<set-body>@(context.Request.Body.As<XDocument>())</set-body>"#,
            at: "XDocument",
            kind: ErrorKind::NotSupported,
            message: "XDocument",
        },
        ErrorCase {
            name: "markup",
            section: "inbound",
            body: r#"<set-body><a/></set-body>"#,
            at: "<a/>",
            kind: ErrorKind::NotSupported,
            message: "CDATA",
        },
    ]);
}

// === Liquid templates ===

/// Renders `template` inbound over a JSON request body, with `headers` and the query.
fn liquid_inbound(template: &str, body: &str, query: &str) -> (Flow, RequestState) {
    let pipeline = compile_in(
        "inbound",
        &format!(r#"<set-body template="liquid">{template}</set-body>"#),
    )
    .unwrap();
    let mut state = request(
        Method::POST,
        "/orders/42",
        query,
        &[
            ("content-type", "application/json; charset=utf-8"),
            ("X-Trace", "abc"),
        ],
    );
    state.body = Some(BufferedBody::new(Bytes::from(body.to_owned())));
    let flow = pipeline.inbound(&facts(1), &Counters::new(), &mut state);
    (flow, state)
}

fn rendered(template: &str, body: &str) -> String {
    let (flow, state) = liquid_inbound(template, body, "");
    assert_eq!(flow, Flow::Continue, "{template}");
    String::from_utf8(sent(state.body.as_ref()).to_vec()).unwrap()
}

#[test]
fn a_liquid_template_reshapes_a_json_request_body() {
    let template = r#"{"order":{"id":"{{body.customer.purchase.identifier}}","items":[{% for item in body.items %}"{{ item.name | Upcase }}"{% unless forloop.last %},{% endunless %}{% endfor %}],"count":{{ body.items | Size }}}}"#;
    let out = rendered(
        template,
        r#"{"customer":{"purchase":{"identifier":"P-1"}},"items":[{"name":"a"},{"name":"b"}]}"#,
    );
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"order": {"id": "P-1", "items": ["A", "B"], "count": 2}})
    );
}

#[test]
fn a_template_that_names_body_makes_the_gateway_read_it_and_one_that_does_not_reads_nothing() {
    let reading = compile_in(
        "inbound",
        r#"<set-body template="liquid">{{ body.a }}</set-body>"#,
    )
    .unwrap();
    assert_eq!(
        reading.context_reads(),
        ContextReads {
            request_body: true,
            ..ContextReads::default()
        }
    );
    let outbound = compile_xml(
        r#"<policies><inbound /><outbound><set-body template="liquid">{% if body %}{{ body.a }}{% endif %}</set-body></outbound></policies>"#,
    )
    .unwrap();
    assert_eq!(
        outbound.context_reads(),
        ContextReads {
            response_body: true,
            ..ContextReads::default()
        }
    );
    let has_body = compile_xml(
        r#"<policies><inbound /><outbound><set-body template="liquid">{{ context.Request.HasBody }}</set-body></outbound></policies>"#,
    )
    .unwrap();
    assert_eq!(
        has_body.context_reads(),
        ContextReads {
            request_body: true,
            ..ContextReads::default()
        },
        "HasBody needs the request body read"
    );
    let not_reading = compile_in(
        "inbound",
        r#"<set-body template="liquid">{"path":"{{ context.Request.Url.Path }}","x":"{{ x.body }}"}</set-body>"#,
    )
    .unwrap();
    assert_eq!(not_reading.context_reads(), ContextReads::default());
    let mut state = request(Method::GET, "/p", "", &[]);
    assert_eq!(
        not_reading.inbound(&facts(1), &Counters::new(), &mut state),
        Flow::Continue
    );
    assert_eq!(sent(state.body.as_ref()), r#"{"path":"/p","x":""}"#);
}

#[test]
fn liquid_sees_headers_url_query_and_variables() {
    let pipeline = compile_in(
        "inbound",
        r#"<set-variable name="tenant" value="t-7" /><set-variable name="n" value="@(3)" /><set-body template="liquid">{{ context.Request.Method }} {{ context.Request.Url.Path }}?{{ context.Request.Url.Query.page }} {{ context.Request.Headers["X-Trace"] }}/{{ context.Request.Headers.x-trace }} {{ context.Variables["tenant"] }} {{ context.Variables.n | Plus: 1 }} [{{ context.Variables["unset"] }}] {{ context.Request.HasBody }}</set-body>"#,
    )
    .unwrap();
    let mut state = request(Method::PUT, "/orders", "page=2&x=1", &[("x-trace", "abc")]);
    assert_eq!(
        pipeline.inbound(&facts(1), &Counters::new(), &mut state),
        Flow::Continue
    );
    assert_eq!(
        sent(state.body.as_ref()),
        "PUT /orders?2 abc/abc t-7 4 [] false"
    );
}

#[test]
fn missing_values_render_empty_and_default_fills_them() {
    let out = rendered(
        r#"[{{ body.absent }}][{{ body.absent.deeper }}][{{ nothing }}][{{ body.absent | Default: "none" }}][{{ context.Subscription.Id }}][{{ context.Response.StatusCode }}]"#,
        r#"{"a":1}"#,
    );
    assert_eq!(out, "[][][][none][][]");
}

#[test]
fn apim_filters_have_pascal_case_names_and_dates_use_dotnet_formats() {
    let out = rendered(
        r#"{{ body.name | Downcase | Capitalize }}|{{ body.tags | Join: "," }}|{{ body.price | Times: 2 | Round: 1 }}|{{ body.when | Date: "yyyyMMddTHH:mm:ssZ" }}|{{ body.when }}|{{ body.text | Truncate: 5 }}|{{ "a b/é" | UrlEncode }}|{{ "a+b%2F" | UrlDecode }}|{{ "&lt;b&gt;" | H }}"#,
        r#"{"name":"ADA","tags":["x","y"],"price":1.25,"when":"2012-03-21T05:40:07Z","text":"hello world"}"#,
    );
    assert_eq!(
        out,
        "Ada|x,y|2.5|20120321T05:40:07Z|03/21/2012 05:40:07|he...|a+b%2F%C3%A9|a b/|&lt;b&gt;"
    );
}

#[test]
fn parse_date_false_keeps_date_strings_as_they_are() {
    let pipeline = compile_in(
        "inbound",
        r#"<set-body template="liquid" parse-date="false" xsi-nil="null">{{ body.when }}</set-body>"#,
    )
    .unwrap();
    let mut state = post(r#"{"when":"2012-03-21T05:40Z"}"#);
    assert_eq!(
        pipeline.inbound(&facts(1), &Counters::new(), &mut state),
        Flow::Continue
    );
    assert_eq!(sent(state.body.as_ref()), "2012-03-21T05:40Z");
}

#[test]
fn outbound_liquid_reads_the_response_body_and_status() {
    let pipeline = compile_xml(
        r#"<policies><inbound /><outbound><set-body template="liquid">{"status":{{ context.Response.StatusCode }},"first":{{ body[0] }},"type":"{{ context.Response.Headers["Content-Type"] }}"}</set-body></outbound></policies>"#,
    )
    .unwrap();
    let (flow, response) = {
        let counters = Counters::new();
        let mut state = request(Method::GET, "/", "", &[]);
        let mut response = ResponseState::new(
            StatusCode::CREATED,
            crate::test_util::header_map(&[("content-type", "application/json")]),
        );
        response.body = Some(BufferedBody::new(Bytes::from_static(b"[7,8]")));
        let flow = pipeline.outbound(&facts(1), &counters, &mut state, &mut response);
        (flow, response)
    };
    assert_eq!(flow, Flow::Continue);
    assert_eq!(
        sent(response.body.as_ref()),
        r#"{"status":201,"first":7,"type":"application/json"}"#
    );
}

#[test]
fn a_body_that_is_not_json_is_text_and_bad_json_or_xml_fails_into_on_error() {
    let pipeline = compile_in(
        "inbound",
        r#"<set-body template="liquid">[{{ body | Upcase }}]</set-body>"#,
    )
    .unwrap();
    let mut state = request(Method::POST, "/", "", &[("content-type", "text/plain")]);
    state.body = Some(BufferedBody::new(Bytes::from_static(b"hi")));
    assert_eq!(
        pipeline.inbound(&facts(1), &Counters::new(), &mut state),
        Flow::Continue
    );
    assert_eq!(sent(state.body.as_ref()), "[HI]");

    for (content_type, body, message) in [
        ("application/json", "{oops", "not JSON"),
        ("application/soap+xml", "<a/>", "XML bodies"),
    ] {
        let mut state = request(Method::POST, "/", "", &[("content-type", content_type)]);
        state.body = Some(BufferedBody::new(Bytes::from(body)));
        let failure = failed(pipeline.inbound(&facts(1), &Counters::new(), &mut state));
        assert_eq!(failure.error.reason, "ExpressionValueEvaluationFailure");
        assert_eq!(failure.error.source, "set-body");
        assert!(failure.error.message.contains(message), "{}", failure.error.message);
    }
}

#[test]
fn liquid_output_and_work_are_bounded() {
    // Output: a loop that writes more than the bound stops the request.
    let (flow, _) = liquid_inbound(
        r#"{% for i in (1..100000) %}{{ body.big }}{% endfor %}"#,
        &format!(r#"{{"big":"{}"}}"#, "x".repeat(1000)),
        "",
    );
    let failure = failed(flow);
    assert!(failure.error.message.contains("bytes"), "{}", failure.error.message);

    // Work: nested loops that write nothing still stop (ranges are never collected).
    let (flow, _) = liquid_inbound(
        r#"{% for i in (1..1000000000) %}{% for j in (1..1000000000) %}{% endfor %}{% endfor %}"#,
        "{}",
        "",
    );
    let failure = failed(flow);
    assert!(failure.error.message.contains("steps"), "{}", failure.error.message);

    // Copying a large body on each iteration is paid for by its size.
    let (flow, _) = liquid_inbound(
        r#"{% for i in (1..100000) %}{% assign copy = body %}{% endfor %}done"#,
        &format!(r#"{{"items":[{}]}}"#, vec!["\"0123456789\""; 10_000].join(",")),
        "",
    );
    let failure = failed(flow);
    assert!(failure.error.message.contains("steps"), "{}", failure.error.message);

    // A value that doubles is stopped by the filters' bound.
    let doubling = format!(
        "{{% assign s = body.big %}}{}{{{{ s | Size }}}}",
        "{% assign s = s | Append: s %}".repeat(30)
    );
    let (flow, _) = liquid_inbound(&doubling, &format!(r#"{{"big":"{}"}}"#, "y".repeat(64)), "");
    let failure = failed(flow);
    let message = &failure.error.message;
    assert!(message.contains("bytes") || message.contains("steps"), "{message}");
    assert!(message.len() < 1000, "values are cut short: {message}");

    // `Replace` that would multiply its input is refused before it runs.
    let (flow, _) = liquid_inbound(
        r#"{% capture big %}{% for i in (1..2000) %}aaaaaaaaaa{% endfor %}{% endcapture %}{{ big | Replace: "a", big }}"#,
        "{}",
        "",
    );
    let failure = failed(flow);
    assert!(failure.error.message.contains("Replace"), "{}", failure.error.message);

    // Loops with break, limit, offset and else work as in Liquid.
    assert_eq!(
        rendered(
            r#"{% for i in (1..10) offset:2 limit:5 %}{% if i == 6 %}{% break %}{% endif %}{{ i }}{{ forloop.index }}{% endfor %}|{% for x in body.none %}x{% else %}empty{% endfor %}|{% for n in body.n reversed %}{{ n }}{% endfor %}"#,
            r#"{"n":[1,2,3]}"#
        ),
        "314253|empty|321"
    );
}

#[test]
fn named_values_that_exist_are_substituted_and_other_braces_are_liquid() {
    let mut named = crate::NamedValues::new();
    named.insert("greeting", "hello", false);
    let pipeline = crate::test_util::compile_xml_with(
        r#"<policies><inbound><set-body template="liquid">{{greeting}} {{ body.name }}</set-body></inbound></policies>"#,
        &crate::CompileContext::new(&named),
    )
    .unwrap();
    let mut state = post(r#"{"name":"ada"}"#);
    assert_eq!(
        pipeline.inbound(&facts(1), &Counters::new(), &mut state),
        Flow::Continue
    );
    assert_eq!(sent(state.body.as_ref()), "hello ada");
}

#[test]
fn a_secret_named_value_in_a_template_stays_out_of_errors() {
    let mut named = crate::NamedValues::new();
    named.insert("token", "s3cret", true);
    let error = crate::test_util::compile_xml_with(
        r#"<policies><inbound><set-body template="liquid">{{token}} {{ body.a | Nope }}</set-body></inbound></policies>"#,
        &crate::CompileContext::new(&named),
    )
    .unwrap_err();
    assert!(!error.to_string().contains("s3cret"), "{error}");
    assert!(error.message.contains("secret named value"), "{error}");

    let pipeline = crate::test_util::compile_xml_with(
        r#"<policies><inbound><set-body template="liquid">{{token}}{{ body.a | DividedBy: 0 }}</set-body></inbound></policies>"#,
        &crate::CompileContext::new(&named),
    )
    .unwrap();
    let mut state = post(r#"{"a":1}"#);
    let failure = failed(pipeline.inbound(&facts(1), &Counters::new(), &mut state));
    assert!(!failure.error.message.contains("s3cret"), "{}", failure.error.message);
}

#[test]
fn bad_liquid_templates_are_refused_at_load() {
    check_errors(&[
        ErrorCase {
            name: "unknown filter",
            section: "inbound",
            body: r#"<set-body template="liquid">{{ body.x | upcase }}</set-body>"#,
            at: "upcase",
            kind: ErrorKind::InvalidValue,
            message: "unknown filter `upcase`; APIM's filters have PascalCase names: Abs, Append",
        },
        ErrorCase {
            name: "unclosed tag",
            section: "inbound",
            body: r#"<set-body template="liquid">{% if body.x %}x</set-body>"#,
            at: "</set-body>",
            kind: ErrorKind::InvalidValue,
            message: "Liquid template",
        },
        ErrorCase {
            name: "include",
            section: "outbound",
            body: r#"<set-body template="liquid">{% include "other" %}</set-body>"#,
            at: " \"other\"",
            kind: ErrorKind::NotSupported,
            message: "`{% include %}` is not supported",
        },
        ErrorCase {
            name: "tablerow",
            section: "inbound",
            body: r#"<set-body template="liquid">{% tablerow x in body %}{% endtablerow %}</set-body>"#,
            at: " x in",
            kind: ErrorKind::NotSupported,
            message: "`{% tablerow %}` is not supported",
        },
        ErrorCase {
            name: "currency",
            section: "inbound",
            body: r#"<set-body template="liquid">{{ body.x | Currency }}</set-body>"#,
            at: "Currency",
            kind: ErrorKind::NotSupported,
            message: "`Currency` filter is not supported",
        },
        ErrorCase {
            name: "expression in a template",
            section: "inbound",
            body: r#"<set-body template="liquid">@(context.Request.Method)</set-body>"#,
            at: "@(",
            kind: ErrorKind::InvalidValue,
            message: "cannot hold a policy expression",
        },
        ErrorCase {
            name: "liquid inside return-response",
            section: "inbound",
            body: r#"<return-response><set-body template="liquid">{{ body.x }}</set-body></return-response>"#,
            at: "template",
            kind: ErrorKind::NotSupported,
            message: "Liquid templates are supported in a <set-body> policy of its own",
        },
        ErrorCase {
            name: "bad xsi-nil",
            section: "inbound",
            body: r#"<set-body template="liquid" xsi-nil="empty">x</set-body>"#,
            at: "xsi-nil",
            kind: ErrorKind::InvalidValue,
            message: "`blank` or `null`",
        },
    ]);
}

#[test]
fn a_liquid_syntax_error_on_a_later_line_points_there() {
    let error = compile_xml(
        "<policies><inbound><set-body template=\"liquid\">{\n  \"a\": \"{{ body.a }}\",\n  \"b\": \"{{ body.b | Nope }}\"\n}</set-body></inbound></policies>",
    )
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidValue, "{error}");
    assert_eq!(error.line(), 3, "{error}");
    assert!(error.message.contains("Liquid template"), "{error}");
}

#[test]
fn liquid_tags_work_as_in_liquid() {
    assert_eq!(
        rendered(
            r#"{% for i in (1..5) %}{% if i == 2 %}{% continue %}{% endif %}{% cycle "a", "b" %}{{ i }}{% endfor %}|{% for pair in body.obj %}{{ pair[0] }}={{ pair[1] }};{% endfor %}|{% case body.kind %}{% when "x" %}ex{% when "y" %}why{% else %}other{% endcase %}|{% capture greeting %}hi {{ body.kind }}{% endcapture %}{{ greeting | Upcase }}|{% increment n %}{% increment n %}|{% raw %}{{ kept }}{% endraw %}|{% comment %}dropped{% endcomment %}{{ body.list | Sort | Join: "-" }}"#,
            r#"{"obj":{"a":1,"b":"two"},"kind":"y","list":[3,1,2]}"#
        ),
        "a1b3a4b5|a=1;b=two;|why|HI Y|01|{{ kept }}|1-2-3"
    );
    assert_eq!(
        rendered(
            r#"{% for a in (1..2) %}{% for b in body.two %}{{ forloop.parentloop.index }}{{ forloop.index }}{{ forloop.rindex }}{{ forloop.length }}{% if forloop.first %}F{% endif %}{% if forloop.last %}L{% endif %};{% endfor %}{% endfor %}"#,
            r#"{"two":["x","y"]}"#
        ),
        "1122F;1212L;2122F;2212L;"
    );
}

#[test]
fn liquid_sees_the_api_operation_subscription_and_urls() {
    let pipeline = compile_in(
        "inbound",
        r#"<set-body template="liquid">{{ context.Request.Url.ToString }} {{ context.Request.OriginalUrl.Host }} {{ context.Request.Headers["X-TRACE"] }} {{ context.Subscription.Name }} {{ context.Product.Id }} [{{ context.User }}] {{ context.Request.IpAddress }}</set-body>"#,
    )
    .unwrap();
    let mut state = request(Method::GET, "/a", "q=1", &[("x-trace", "t")]);
    let mut facts = facts(1);
    facts.subscription = Some(crate::SubscriptionFacts {
        id: "sub-1",
        key: "k",
        product_id: Some("gold"),
        product_name: None,
        name: "Ada's",
    });
    facts.original_url = crate::OriginalUrl {
        scheme: "https",
        host: "api.example.com",
        path: "/api/a",
        query: "q=1",
    };
    assert_eq!(
        pipeline.inbound(&facts, &Counters::new(), &mut state),
        Flow::Continue
    );
    assert_eq!(
        sent(state.body.as_ref()),
        "/a?q=1 api.example.com t Ada's gold [] 192.0.2.1"
    );
}

mod liquid_properties {
    use proptest::prelude::*;

    use super::*;

    const PARTS: &[&str] = &[
        "{{", "}}", "{%", "%}", " body", ".a", "[0]", "[\"k\"]", " | ", "Upcase", "Split: \",\"",
        "Join: \"-\"", "Size", "Date: \"yyyy\"", "Replace: \"a\", \"bb\"", "Default: 1", "Slice: 1, 2",
        "Times: 3", "DividedBy: 0", "Modulo: 0", "Truncate: -1", " if ", " for x in ", " endfor ",
        " endif ", " else ", " assign y = ", " capture c ", " endcapture ", "(1..3)", "(3..1)",
        " limit:2 ", " offset:-1 ", " reversed ", " break ", " continue ", " raw ", " endraw ",
        " case ", " when ", " endcase ", "context.Request.Headers[\"X\"]", "context.Variables.v",
        "forloop.index", "forloop.parentloop.last", " cycle \"a\", \"b\" ", " increment n ",
        "\"", "'", "==", "<", "and", "or", "contains", "nil", "empty", "é", "\n", "x",
    ];

    const BODIES: &[&str] = &[
        "",
        "{}",
        "[]",
        r#"{"a":[1,"2",null,{"k":true}],"k":"2012-03-21T05:40Z"}"#,
        r#"[{"a":1.5e300},-1,"/Date(0)/"]"#,
        "not json",
    ];

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 256,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn liquid_soup_is_refused_or_rendered_never_a_panic(
            parts in proptest::collection::vec(proptest::sample::select(PARTS), 0..40),
            body in proptest::sample::select(BODIES),
        ) {
            let template = parts.concat().replace('&', "&amp;").replace('<', "&lt;");
            let xml = format!(r#"<set-body template="liquid">{template}</set-body>"#);
            if let Ok(pipeline) = compile_in("inbound", &xml) {
                let mut state = post(body);
                let _ = pipeline.inbound(&facts(1), &Counters::new(), &mut state);
            }
        }
    }
}
