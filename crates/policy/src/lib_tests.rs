//! Whole-crate tests: a realistic document end to end, and "never panics" on mangled
//! input.

use std::time::Duration;

use gatehouse_model::Backend;
use http::{Method, StatusCode};

use super::*;
use crate::test_util::{facts, header, request};

const GLOBAL: &str = r#"<!-- Global policy, as APIM writes it by default. -->
<policies>
    <inbound>
        <cors allow-credentials="true">
            <allowed-origins><origin>https://portal.example.com</origin></allowed-origins>
            <allowed-methods preflight-result-max-age="600"><method>*</method></allowed-methods>
            <allowed-headers><header>*</header></allowed-headers>
        </cors>
    </inbound>
    <backend>
        <forward-request />
    </backend>
    <outbound />
    <on-error>
        <set-header name="x-error-source" exists-action="override"><value>gatehouse</value></set-header>
    </on-error>
</policies>"#;

const API: &str = r#"<policies>
    <inbound>
        <base />
        <rate-limit-by-key calls="2" renewal-period="60"
            counter-key="@(context.Request.Headers.GetValueOrDefault("X-Client-Id",""))"
            remaining-calls-header-name="x-ratelimit-remaining" />
        <set-backend-service backend-id="orders" />
        <set-header name="x-api-key" exists-action="override">
            <value>{{orders-key}}</value>
        </set-header>
    </inbound>
    <backend>
        <limit-concurrency key="orders" max-count="10">
            <base />
        </limit-concurrency>
    </backend>
    <outbound>
        <base />
        <set-header name="x-powered-by" exists-action="delete" />
    </outbound>
</policies>"#;

#[test]
fn a_realistic_document_runs_end_to_end() {
    // `<base/>` inside limit-concurrency is not allowed: fix the document the way a
    // user would, after reading the error.
    let error = parse("apis[orders].policy", API).unwrap_err();
    assert_eq!(
        error.to_string(),
        "apis[orders].policy:14:13: <base>: <base/> is only allowed directly inside <inbound>, <backend>, <outbound> or <on-error>"
    );
    let api_xml = API.replace(
        "<limit-concurrency key=\"orders\" max-count=\"10\">\n            <base />\n        </limit-concurrency>",
        "<limit-concurrency key=\"orders\" max-count=\"10\"><forward-request timeout=\"30\"/></limit-concurrency>",
    );
    let global = parse("gateway.yaml: policy", GLOBAL).unwrap();
    let api = parse("apis[orders].policy", &api_xml).unwrap();

    let mut named = NamedValues::new();
    named.insert("Orders-Key", "k-secret", true);
    let backends = [Backend {
        id: "orders".to_owned(),
        url: "http://orders.internal/api".to_owned(),
        connect_timeout: Duration::from_secs(5),
        response_timeout: Duration::from_secs(300),
        tls: gatehouse_model::BackendTls::default(),
    }];
    let cx = CompileContext::new(&named).with_backends(&backends);
    let pipeline = compile(&[&global, &api], &cx).unwrap();
    let counters = Counters::new();

    // A preflight is answered by the global cors policy alone.
    let mut preflight = request(
        Method::OPTIONS,
        "/orders",
        "",
        &[
            ("origin", "https://portal.example.com"),
            ("access-control-request-method", "DELETE"),
        ],
    );
    let Flow::Respond(response) = pipeline.inbound(&facts(0), &counters, &mut preflight) else {
        panic!("preflight not answered");
    };
    assert_eq!(
        header(&response.headers, "access-control-allow-methods"),
        Some("DELETE")
    );
    assert_eq!(
        header(&response.headers, "access-control-max-age"),
        Some("600")
    );

    // A real request passes inbound and backend.
    let headers = [
        ("origin", "https://portal.example.com"),
        ("x-client-id", "c1"),
    ];
    let mut state = request(Method::GET, "/orders", "page=2", &headers);
    assert_eq!(
        pipeline.inbound(&facts(0), &counters, &mut state),
        Flow::Continue
    );
    assert_eq!(
        pipeline.backend(&facts(0), &counters, &mut state),
        Flow::Continue
    );
    assert_eq!(
        state.backend.as_ref().unwrap().url.as_str(),
        "http://orders.internal/api"
    );
    assert_eq!(state.headers["x-api-key"], "k-secret");
    assert_eq!(state.forward.timeout, Some(Duration::from_secs(30)));
    assert_eq!(state.held.len(), 1);
    let mut response = ResponseState::new(
        StatusCode::OK,
        crate::test_util::header_map(&[("x-powered-by", "x")]),
    );
    assert_eq!(
        pipeline.outbound(&facts(0), &counters, &mut state, &mut response),
        Flow::Continue
    );
    assert!(!response.headers.contains_key("x-powered-by"));
    assert_eq!(
        header(&response.headers, "x-ratelimit-remaining"),
        Some("1")
    );
    assert_eq!(
        header(&response.headers, "access-control-allow-origin"),
        Some("https://portal.example.com")
    );
    drop(state);

    // The third call of the client is refused, and on-error still runs.
    let mut second = request(Method::GET, "/orders", "", &headers);
    assert_eq!(
        pipeline.inbound(&facts(1), &counters, &mut second),
        Flow::Continue
    );
    let mut third = request(Method::GET, "/orders", "", &headers);
    let Flow::Fail(failure) = pipeline.inbound(&facts(2), &counters, &mut third) else {
        panic!("not limited");
    };
    let mut error_response =
        ResponseState::new(failure.response.status, failure.response.headers.clone());
    assert_eq!(
        pipeline.on_error(
            &facts(2),
            &counters,
            &mut third,
            &failure.error,
            &mut error_response
        ),
        Flow::Continue
    );
    assert_eq!(error_response.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        header(&error_response.headers, "x-error-source"),
        Some("gatehouse")
    );
    assert_eq!(
        header(&error_response.headers, "access-control-allow-origin"),
        Some("https://portal.example.com")
    );
}

const MANY: &str = r#"<policies><inbound>
    <ip-filter action="allow"><address>10.0.0.1</address><address-range from="10.0.0.5" to="10.0.0.9"/></ip-filter>
    <check-header name="x-k" failed-check-httpcode="401" failed-check-error-message="no" ignore-case="true"><value>a</value></check-header>
    <quota-by-key calls="5" bandwidth="10" renewal-period="300" counter-key="@(context.Subscription?.Id)"/>
    <set-query-parameter name="q" exists-action="append"><value>1</value></set-query-parameter>
    <rewrite-uri template="/v2" copy-unmatched-params="false"/>
    <set-method>POST</set-method>
    <mock-response status-code="200" content-type="application/json"/>
    <return-response><set-status code="200" reason="OK"/><set-body>@{ return "x"; }</set-body></return-response>
</inbound><outbound><set-status code="201" reason="Created"/></outbound></policies>"#;

/// A tiny deterministic generator (xorshift64*), so the test needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % bound.max(1) as u64).unwrap()
    }
}

const FRAGMENTS: &[&str] = &[
    "<",
    ">",
    "/>",
    "\"",
    "'",
    "&",
    "&amp;",
    "&#x41;",
    "@(",
    "@{",
    ")",
    "}",
    "{{",
    "}}",
    "$\"",
    "@\"",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    "<base/>",
    "\u{E000}",
    "é",
    "\n",
    "=",
    "<set-header name=\"a\">",
    "</set-header>",
    "<value>",
    "</value>",
    "<rate-limit-by-key calls=\"1\" renewal-period=\"1\" counter-key=\"k\"/>",
];

#[test]
fn never_panics_on_mangled_input() {
    let seeds = [GLOBAL, API, MANY];
    let named = NamedValues::new();
    let cx = CompileContext::new(&named);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..3_000 {
        let seed = seeds[round % seeds.len()];
        let mut text: Vec<char> = seed.chars().collect();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(text.len() + 1);
            match rng.below(4) {
                0 => {
                    let end = (at + rng.below(20)).min(text.len());
                    text.drain(at..end);
                }
                1 => {
                    let fragment = FRAGMENTS[rng.below(FRAGMENTS.len())];
                    text.splice(at..at, fragment.chars());
                }
                2 => text.truncate(at),
                _ => {
                    let end = (at + rng.below(40)).min(text.len());
                    let copy: Vec<char> = text[at..end].to_vec();
                    let to = rng.below(text.len() + 1);
                    text.splice(to..to, copy);
                }
            }
        }
        let text: String = text.into_iter().collect();
        if let Ok(document) = parse("fuzz", &text) {
            let _ = compile(&[&document], &cx);
        }
    }
}

#[test]
fn shared_types_are_send_sync_and_flow_stays_small() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Pipeline>();
    send_sync::<Counters>();
    send_sync::<PolicyDocument>();
    send_sync::<RequestState>();
    // Every phase returns a Flow; keep the common `Continue` cheap to move.
    assert!(
        std::mem::size_of::<Flow>() <= 16,
        "{}",
        std::mem::size_of::<Flow>()
    );
}
