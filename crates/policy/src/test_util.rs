//! Helpers shared by the unit tests.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::{
    CompileContext, Counters, ErrorKind, Flow, NamedValues, Pipeline, PolicyError, PolicyResponse,
    RequestFacts, RequestState, ResponseState, compile, parse,
};

/// `<policies><{section}>{body}</{section}></policies>` on one line.
pub(crate) fn in_section(section: &str, body: &str) -> String {
    format!("<policies><{section}>{body}</{section}></policies>")
}

/// Parses and compiles a document with an empty context.
pub(crate) fn compile_xml(xml: &str) -> Result<Pipeline, PolicyError> {
    let named = NamedValues::new();
    compile_xml_with(xml, &CompileContext::new(&named))
}

/// Parses and compiles a document with `cx`.
pub(crate) fn compile_xml_with(
    xml: &str,
    cx: &CompileContext<'_>,
) -> Result<Pipeline, PolicyError> {
    let document = parse("test", xml)?;
    compile(&[&document], cx)
}

/// Compiles `body` placed in `section`.
pub(crate) fn compile_in(section: &str, body: &str) -> Result<Pipeline, PolicyError> {
    compile_xml(&in_section(section, body))
}

/// One expected error for [`check_errors`].
pub(crate) struct ErrorCase {
    pub(crate) name: &'static str,
    pub(crate) section: &'static str,
    pub(crate) body: &'static str,
    /// Text in `body` where the error must point (its first occurrence).
    pub(crate) at: &'static str,
    pub(crate) kind: ErrorKind,
    /// Text the message must contain.
    pub(crate) message: &'static str,
}

/// Asserts each case fails with the right kind, position and message.
pub(crate) fn check_errors(cases: &[ErrorCase]) {
    for case in cases {
        let Err(error) = compile_in(case.section, case.body) else {
            panic!("{}: expected an error", case.name)
        };
        assert_eq!(error.kind, case.kind, "{}: {error}", case.name);
        assert!(
            error.message.contains(case.message),
            "{}: {error}",
            case.name
        );
        let offset = case
            .body
            .find(case.at)
            .unwrap_or_else(|| panic!("{}: `{}` not in body", case.name, case.at));
        let prefix = "<policies><>".len() + case.section.len();
        let column = u32::try_from(prefix + case.body[..offset].chars().count() + 1).unwrap();
        assert_eq!(
            (error.line(), error.column()),
            (1, column),
            "{}: wrong position in {error}",
            case.name
        );
        assert!(
            error.to_string().starts_with("test:1:"),
            "{}: {error}",
            case.name
        );
    }
}

/// Facts for a client at 192.0.2.1 without subscription or client certificate, at
/// `now` seconds.
pub(crate) fn facts(now_secs: u64) -> RequestFacts<'static> {
    RequestFacts {
        client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        subscription: None,
        route_params: &[],
        now: Duration::from_secs(now_secs),
        client_certificate: None,
        original_url: crate::OriginalUrl::default(),
        request_id: None,
        services: None,
        deployment: crate::DeploymentFacts {
            gateway_id: "gw-1",
            region: "eu-west",
        },
    }
}

/// A request with the given headers.
pub(crate) fn request(
    method: Method,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
) -> RequestState {
    RequestState::new(method, path, query, header_map(headers))
}

/// A header map from pairs.
pub(crate) fn header_map(headers: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// Runs inbound on a GET `/` request with `headers`.
pub(crate) fn run_inbound(
    pipeline: &Pipeline,
    counters: &Counters,
    headers: &[(&str, &str)],
) -> (Flow, RequestState) {
    let mut state = request(Method::GET, "/", "", headers);
    let flow = pipeline.inbound(&facts(1_000), counters, &mut state);
    (flow, state)
}

/// The response of a `Respond` flow; panics otherwise.
pub(crate) fn responded(flow: Flow) -> PolicyResponse {
    match flow {
        Flow::Respond(response) => *response,
        other => panic!("expected Respond, got {other:?}"),
    }
}

/// The failure of a `Fail` flow; panics otherwise.
pub(crate) fn failed(flow: Flow) -> crate::PolicyFailure {
    match flow {
        Flow::Fail(failure) => *failure,
        other => panic!("expected Fail, got {other:?}"),
    }
}

/// Runs outbound on a 200 response.
pub(crate) fn run_outbound(pipeline: &Pipeline, headers: &[(&str, &str)]) -> (Flow, ResponseState) {
    let counters = Counters::new();
    let mut state = request(Method::GET, "/", "", &[]);
    let mut response = ResponseState::new(http::StatusCode::OK, header_map(headers));
    let flow = pipeline.outbound(&facts(1_000), &counters, &mut state, &mut response);
    (flow, response)
}

/// A header as a string.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|value| value.to_str().unwrap())
}

/// All values of a header.
pub(crate) fn headers_all(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect()
}

/// A PEM `CERTIFICATE` block around `der`, wrapped at 64 characters as tools write it.
pub(crate) fn certificate_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// Runs a future that completes without waking (the test services answer at once).
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

/// [`crate::PolicyServices`] for tests: answers each call at once with `answer`, and
/// keeps the calls.
#[derive(Debug)]
#[allow(
    clippy::disallowed_types,
    reason = "a test double that records calls; never on a request path"
)]
pub(crate) struct FakeServices {
    pub(crate) calls: std::sync::Mutex<Vec<crate::OutgoingCall>>,
    pub(crate) answer: Result<crate::CallResponse, crate::CallError>,
    /// What `sleep` was asked to wait (it returns at once).
    pub(crate) slept: std::sync::Mutex<Vec<Duration>>,
}

#[allow(
    clippy::disallowed_types,
    reason = "a test double that records calls; never on a request path"
)]
impl FakeServices {
    /// Answers every call with `status` and `body` (JSON).
    pub(crate) fn answering(status: u16, body: &str) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        Self {
            calls: std::sync::Mutex::new(Vec::new()),
            slept: std::sync::Mutex::new(Vec::new()),
            answer: Ok(crate::CallResponse {
                status: http::StatusCode::from_u16(status).unwrap(),
                headers,
                body: bytes::Bytes::from(body.to_owned()),
            }),
        }
    }

    /// Fails every call with `error`.
    pub(crate) fn failing(error: crate::CallError) -> Self {
        Self {
            calls: std::sync::Mutex::new(Vec::new()),
            slept: std::sync::Mutex::new(Vec::new()),
            answer: Err(error),
        }
    }
}

impl crate::PolicyServices for FakeServices {
    fn call(&self, call: crate::OutgoingCall) -> crate::CallFuture<'_> {
        self.calls.lock().unwrap().push(call);
        Box::pin(std::future::ready(self.answer.clone()))
    }

    /// Records the call; a failing double refuses to start it with its error.
    fn send_one_way(&self, call: crate::OutgoingCall) -> Result<(), crate::CallError> {
        self.answer.as_ref().map(|_| ()).map_err(Clone::clone)?;
        self.calls.lock().unwrap().push(call);
        Ok(())
    }

    fn now(&self) -> Duration {
        // 2024-01-02T03:04:05Z
        Duration::from_secs(1_704_164_645)
    }

    fn elapsed(&self) -> Duration {
        Duration::from_millis(1500)
    }

    fn random_bytes(&self) -> [u8; 16] {
        [0x11; 16]
    }

    fn sleep(&self, duration: Duration) -> crate::SleepFuture {
        self.slept.lock().unwrap().push(duration);
        Box::pin(std::future::ready(()))
    }

    fn token(&self, resource: &str) -> crate::TokenFuture<'_> {
        let answer = match &self.answer {
            Ok(_) => Ok(std::sync::Arc::from(format!("token-for-{resource}"))),
            Err(error) => Err(error.clone()),
        };
        Box::pin(std::future::ready(answer))
    }
}

/// The inbound `body` compiled for operation `operation_id` ("`{id}` op") of API
/// `orders` ("Orders API"): what nested `<api>`/`<operation>` limits match against.
pub(crate) fn compile_for_operation(body: &str, operation_id: &str) -> Pipeline {
    let named = crate::NamedValues::new();
    let api = gatehouse_model::Api {
        id: "orders".to_owned(),
        display_name: Some("Orders API".to_owned()),
        path: "orders".to_owned(),
        hostnames: Vec::new(),
        protocols: Vec::new(),
        service_url: None,
        backend_id: None,
        subscription_required: true,
        subscription_key_parameter_names: gatehouse_model::SubscriptionKeyParameterNames::default(),
        policy: None,
        operations: Vec::new(),
    };
    let operation = gatehouse_model::Operation {
        id: operation_id.to_owned(),
        display_name: Some(format!("{operation_id} op")),
        method: "GET".to_owned(),
        url_template: "/".to_owned(),
        policy: None,
        responses: Vec::new(),
    };
    let cx = crate::CompileContext::new(&named)
        .with_api(&api)
        .with_operation(&operation);
    compile_xml_with(&in_section("inbound", body), &cx).unwrap()
}

/// Runs inbound for a GET by `subscription` (none: a request without one).
pub(crate) fn call_as(
    pipeline: &Pipeline,
    counters: &crate::Counters,
    subscription: Option<&str>,
) -> crate::Flow {
    let mut facts = facts(500);
    facts.subscription = subscription.map(|id| crate::pipeline::SubscriptionFacts {
        id,
        key: "key",
        product_id: None,
        product_name: None,
        name: "subscription",
    });
    let mut state = request(Method::GET, "/", "", &[]);
    pipeline.inbound(&facts, counters, &mut state)
}
