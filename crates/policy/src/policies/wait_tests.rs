use http::Method;

use crate::test_util::{
    ErrorCase, FakeServices, block_on, check_errors, compile_in, facts, header, request,
};
use crate::{Counters, ErrorKind, Flow, RequestFacts};

fn with(services: &FakeServices) -> RequestFacts<'_> {
    RequestFacts {
        services: Some(services),
        ..facts(1)
    }
}

const TWO_CALLS: &str = r#"<send-request response-variable-name="a"><set-url>http://127.0.0.1:9/a</set-url></send-request><send-request response-variable-name="b"><set-url>http://127.0.0.1:9/b</set-url></send-request>"#;

#[test]
fn wait_for_all_starts_every_call_and_keeps_every_answer() {
    let pipeline = compile_in(
        "inbound",
        &format!(
            r#"<wait for="all">{TWO_CALLS}</wait><set-header name="X-Both" exists-action="override"><value>@(((IResponse)context.Variables["a"]).StatusCode + "," + ((IResponse)context.Variables["b"]).StatusCode)</value></set-header>"#
        ),
    )
    .unwrap();
    assert!(pipeline.is_async());
    let services = FakeServices::answering(200, "{}");
    let mut state = request(Method::GET, "/", "", &[]);
    let flow = block_on(pipeline.inbound_async(&with(&services), &Counters::new(), &mut state));
    assert_eq!(flow, Flow::Continue);
    assert_eq!(header(&state.headers, "x-both"), Some("200,200"));
    let calls = services.calls.lock().unwrap();
    let urls: Vec<&str> = calls.iter().map(|call| call.url.as_str()).collect();
    assert_eq!(urls, ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"]);
}

#[test]
fn wait_for_any_keeps_the_first_answer_only() {
    let pipeline = compile_in("inbound", &format!(r#"<wait for="any">{TWO_CALLS}</wait>"#)).unwrap();
    let services = FakeServices::answering(200, "{}");
    let mut state = request(Method::GET, "/", "", &[]);
    let flow = block_on(pipeline.inbound_async(&with(&services), &Counters::new(), &mut state));
    assert_eq!(flow, Flow::Continue);
    assert!(state.variables.get("a").is_some());
    assert!(state.variables.get("b").is_none(), "the other call was abandoned");
}

#[test]
fn a_failed_call_in_wait_fails_the_request_after_all_answered() {
    let pipeline = compile_in("inbound", &format!(r#"<wait>{TWO_CALLS}</wait>"#)).unwrap();
    let services = FakeServices::failing(crate::CallError::Timeout(std::time::Duration::from_secs(1)));
    let mut state = request(Method::GET, "/", "", &[]);
    let failure = crate::test_util::failed(block_on(pipeline.inbound_async(
        &with(&services),
        &Counters::new(),
        &mut state,
    )));
    assert_eq!(failure.error.source, "send-request");
    assert_eq!(services.calls.lock().unwrap().len(), 2, "both calls were made");
}

#[test]
fn a_choose_in_wait_adds_the_calls_of_its_branch() {
    let pipeline = compile_in(
        "inbound",
        r#"<wait for="all">
             <choose>
               <when condition="@(context.Request.Headers.ContainsKey("X-Stock"))">
                 <send-request response-variable-name="stock"><set-url>http://127.0.0.1:9/stock</set-url></send-request>
               </when>
               <otherwise>
                 <send-request response-variable-name="guess"><set-url>http://127.0.0.1:9/guess</set-url></send-request>
               </otherwise>
             </choose>
             <send-request response-variable-name="price"><set-url>http://127.0.0.1:9/price</set-url></send-request>
           </wait>"#,
    )
    .unwrap();
    for (headers, expected) in [
        (&[("X-Stock", "1")][..], ["http://127.0.0.1:9/stock", "http://127.0.0.1:9/price"]),
        (&[][..], ["http://127.0.0.1:9/guess", "http://127.0.0.1:9/price"]),
    ] {
        let services = FakeServices::answering(200, "{}");
        let mut state = request(Method::GET, "/", "", headers);
        let flow = block_on(pipeline.inbound_async(&with(&services), &Counters::new(), &mut state));
        assert_eq!(flow, Flow::Continue);
        let calls = services.calls.lock().unwrap();
        let urls: Vec<&str> = calls.iter().map(|call| call.url.as_str()).collect();
        assert_eq!(urls, expected);
        assert!(state.variables.get("price").is_some());
    }
}

#[test]
fn a_cache_lookup_in_wait_answers_with_the_calls() {
    let pipeline = compile_in(
        "inbound",
        r#"<cache-store-value key="k" value="cached" duration="60" />
           <wait for="all">
             <cache-lookup-value key="k" variable-name="fromCache" />
             <send-request response-variable-name="price"><set-url>http://127.0.0.1:9/price</set-url></send-request>
           </wait>
           <set-header name="X-From-Cache" exists-action="override"><value>@((string)context.Variables["fromCache"])</value></set-header>"#,
    )
    .unwrap();
    let services = FakeServices::answering(200, "{}");
    let mut state = request(Method::GET, "/", "", &[]);
    let flow = block_on(pipeline.inbound_async(&with(&services), &Counters::new(), &mut state));
    assert_eq!(flow, Flow::Continue);
    assert_eq!(header(&state.headers, "x-from-cache"), Some("cached"));
    assert!(state.variables.get("price").is_some());
}

#[test]
fn bad_waits_are_refused_at_load() {
    check_errors(&[
        ErrorCase {
            name: "empty",
            section: "inbound",
            body: r#"<wait for="all" />"#,
            at: "<wait",
            kind: ErrorKind::Structure,
            message: "at least one <send-request>",
        },
        ErrorCase {
            name: "bad for",
            section: "inbound",
            body: r#"<wait for="some"><send-request response-variable-name="a"><set-url>http://127.0.0.1:9/</set-url></send-request></wait>"#,
            at: "for=",
            kind: ErrorKind::InvalidValue,
            message: "`all` or `any`",
        },
        ErrorCase {
            name: "a choose holding more than calls",
            section: "inbound",
            body: r#"<wait><choose><when condition="@(true)"><set-variable name="x" value="1" /></when></choose></wait>"#,
            at: "<set-variable",
            kind: ErrorKind::NotSupported,
            message: "<set-variable> inside <wait> is not supported yet",
        },
        ErrorCase {
            name: "on-error",
            section: "on-error",
            body: r#"<wait><send-request response-variable-name="a"><set-url>http://127.0.0.1:9/</set-url></send-request></wait>"#,
            at: "<wait",
            kind: ErrorKind::WrongSection,
            message: "allowed in: inbound, backend, outbound",
        },
    ]);
}
