use std::net::IpAddr;

use http::{Method, StatusCode};

use crate::test_util::{ErrorCase, check_errors, compile_in, facts, failed, request};
use crate::{Counters, ErrorKind, Flow};

const ENTRIES: &str = r#"<address>10.0.0.1</address><address-range from="192.168.1.10" to="192.168.1.20"/><address>2001:db8::/32</address>"#;

fn check(action: &str, client: &str) -> Flow {
    let pipeline = compile_in(
        "inbound",
        &format!(r#"<ip-filter action="{action}">{ENTRIES}</ip-filter>"#),
    )
    .unwrap();
    let mut facts = facts(0);
    facts.client_ip = client.parse::<IpAddr>().unwrap();
    let mut state = request(Method::GET, "/", "", &[]);
    pipeline.inbound(&facts, &Counters::new(), &mut state)
}

#[test]
fn filters_callers() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("allow", "10.0.0.1", None),
        ("allow", "::ffff:10.0.0.1", None),
        ("allow", "192.168.1.10", None),
        ("allow", "192.168.1.20", None),
        ("allow", "2001:db8::1", None),
        ("allow", "192.168.1.21", Some("CallerIpNotAllowed")),
        ("allow", "10.0.0.2", Some("CallerIpNotAllowed")),
        ("allow", "2001:db9::1", Some("CallerIpNotAllowed")),
        ("forbid", "10.0.0.1", Some("CallerIpBlocked")),
        ("forbid", "192.168.1.15", Some("CallerIpBlocked")),
        ("forbid", "10.0.0.2", None),
    ];
    for (action, client, reason) in cases {
        let flow = check(action, client);
        match reason {
            None => assert_eq!(flow, Flow::Continue, "{action} {client}"),
            Some(reason) => {
                let failure = failed(flow);
                assert_eq!(failure.error.reason, *reason, "{action} {client}");
                assert_eq!(failure.response.status, StatusCode::FORBIDDEN);
                assert_eq!(
                    failure.response.body,
                    r#"{"statusCode":403,"message":"Forbidden"}"#
                );
            }
        }
    }
}

#[test]
fn rejects_bad_ip_filter() {
    check_errors(&[
        ErrorCase {
            name: "bad action",
            section: "inbound",
            body: r#"<ip-filter action="deny"><address>1.2.3.4</address></ip-filter>"#,
            at: "action",
            kind: ErrorKind::InvalidValue,
            message: "`allow` or `forbid`, found `deny`",
        },
        ErrorCase {
            name: "no entries",
            section: "inbound",
            body: r#"<ip-filter action="allow"/>"#,
            at: "<ip-filter",
            kind: ErrorKind::Missing,
            message: "at least one <address>",
        },
        ErrorCase {
            name: "bad address",
            section: "inbound",
            body: r#"<ip-filter action="allow"><address>1.2.3</address></ip-filter>"#,
            at: "1.2.3<",
            kind: ErrorKind::InvalidValue,
            message: "`1.2.3` is not an IP address or CIDR network",
        },
        ErrorCase {
            name: "empty address",
            section: "inbound",
            body: r#"<ip-filter action="allow"><address/></ip-filter>"#,
            at: "<address/>",
            kind: ErrorKind::Missing,
            message: "needs an IP address",
        },
        ErrorCase {
            name: "mixed families",
            section: "inbound",
            body: r#"<ip-filter action="allow"><address-range from="1.2.3.4" to="::1"/></ip-filter>"#,
            at: "<address-range",
            kind: ErrorKind::InvalidValue,
            message: "same IP family",
        },
        ErrorCase {
            name: "reversed range",
            section: "inbound",
            body: r#"<ip-filter action="allow"><address-range from="1.2.3.5" to="1.2.3.4"/></ip-filter>"#,
            at: "<address-range",
            kind: ErrorKind::InvalidValue,
            message: "not after",
        },
        ErrorCase {
            name: "range missing to",
            section: "inbound",
            body: r#"<ip-filter action="allow"><address-range from="1.2.3.5"/></ip-filter>"#,
            at: "<address-range",
            kind: ErrorKind::Missing,
            message: "<address-range>: missing required attribute `to`",
        },
        ErrorCase {
            name: "bad range address",
            section: "inbound",
            body: r#"<ip-filter action="allow"><address-range from="x" to="1.2.3.4"/></ip-filter>"#,
            at: "from",
            kind: ErrorKind::InvalidValue,
            message: "`x` is not an IP address",
        },
        ErrorCase {
            name: "unknown child",
            section: "inbound",
            body: r#"<ip-filter action="allow"><network>1.2.3.4</network></ip-filter>"#,
            at: "<network>",
            kind: ErrorKind::Structure,
            message: "expected <address> or <address-range>",
        },
    ]);
}
