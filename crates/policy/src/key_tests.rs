use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::HeaderName;

use super::*;
use crate::ErrorKind;
use crate::pipeline::SubscriptionFacts;
use crate::test_util::{ErrorCase, check_errors, facts, header_map};

#[test]
fn recognises_the_supported_idioms() {
    let header = |name: &str| {
        Some(CounterKey::Header(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
        ))
    };
    let cases: &[(&str, Option<CounterKey>)] = &[
        ("context.Request.IpAddress", Some(CounterKey::ClientIp)),
        (
            " context . Request . IpAddress ",
            Some(CounterKey::ClientIp),
        ),
        (
            "context.Subscription.Id",
            Some(CounterKey::SubscriptionId { null_safe: false }),
        ),
        (
            "context.Subscription?.Id",
            Some(CounterKey::SubscriptionId { null_safe: true }),
        ),
        (
            "context.Subscription.Key",
            Some(CounterKey::SubscriptionKey { null_safe: false }),
        ),
        (
            "context.Subscription?.Key",
            Some(CounterKey::SubscriptionKey { null_safe: true }),
        ),
        (
            r#"context.Request.Headers.GetValueOrDefault("X-Client")"#,
            header("x-client"),
        ),
        (
            r#"context.Request.Headers.GetValueOrDefault( "X-Client" , "" )"#,
            header("x-client"),
        ),
        (
            r#"context.Request.Headers.GetValueOrDefault("X Client")"#,
            None,
        ),
        (
            r#"context.Request.Headers.GetValueOrDefault("a","b")"#,
            None,
        ),
        (r#"context.Request.Headers.GetValueOrDefault(name)"#, None),
        ("context.Request.IpAddress.ToString()", None),
        ("context.User.Id", None),
        ("", None),
    ];
    for (code, expected) in cases {
        assert_eq!(&CounterKey::recognise(code), expected, "{code}");
    }
}

#[test]
fn other_expressions_are_not_supported() {
    check_errors(&[
        ErrorCase {
            name: "unknown idiom",
            section: "inbound",
            body: r#"<rate-limit-by-key calls="1" renewal-period="1" counter-key="@(context.User.Id)"/>"#,
            at: "@(context",
            kind: ErrorKind::NotSupported,
            message: "it recognises only",
        },
        ErrorCase {
            name: "block",
            section: "inbound",
            body: r#"<rate-limit-by-key calls="1" renewal-period="1" counter-key="@{ return "a"; }"/>"#,
            at: "@{",
            kind: ErrorKind::NotSupported,
            message: "it recognises only",
        },
        ErrorCase {
            name: "empty literal",
            section: "inbound",
            body: r#"<rate-limit-by-key calls="1" renewal-period="1" counter-key=""/>"#,
            at: "counter-key",
            kind: ErrorKind::InvalidValue,
            message: "must not be empty",
        },
    ]);
}

#[test]
fn hashes_distinguish_key_values() {
    let counters = Counters::new();
    let headers = header_map(&[("x-client", "a"), ("x-client", "b")]);
    let mut first = facts(0);
    let mut second = facts(0);
    second.client_ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    let ip = CounterKey::ClientIp;
    assert_eq!(
        ip.hash(&first, &headers, &counters),
        ip.hash(&first, &headers, &counters)
    );
    assert_ne!(
        ip.hash(&first, &headers, &counters),
        ip.hash(&second, &headers, &counters)
    );
    // An IPv4-mapped IPv6 address is the same client as its IPv4 form.
    second.client_ip = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
    assert_eq!(
        ip.hash(&first, &headers, &counters),
        ip.hash(&second, &headers, &counters)
    );
    second.client_ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert_ne!(
        ip.hash(&first, &headers, &counters),
        ip.hash(&second, &headers, &counters)
    );

    let header = CounterKey::Header(HeaderName::from_static("x-client"));
    let joined = header.hash(&first, &headers, &counters).unwrap();
    let single = header
        .hash(&first, &header_map(&[("x-client", "a,b")]), &counters)
        .unwrap();
    assert_eq!(joined, single);
    let missing = header.hash(&first, &HeaderMap::new(), &counters).unwrap();
    assert_ne!(missing, joined);

    let literal = CounterKey::Literal("a,b".into());
    assert_ne!(
        literal.hash(&first, &headers, &counters).unwrap(),
        joined,
        "kinds are kept apart"
    );

    let subscription = SubscriptionFacts {
        id: "sub-1",
        key: "key-1",
        product_id: None,
    };
    assert_eq!(
        CounterKey::SubscriptionId { null_safe: false }.hash(&first, &headers, &counters),
        Err(NoSubscription)
    );
    assert!(
        CounterKey::SubscriptionKey { null_safe: true }
            .hash(&first, &headers, &counters)
            .is_ok()
    );
    first.subscription = Some(subscription);
    let by_id = CounterKey::SubscriptionId { null_safe: false }
        .hash(&first, &headers, &counters)
        .unwrap();
    let by_key = CounterKey::SubscriptionKey { null_safe: false }
        .hash(&first, &headers, &counters)
        .unwrap();
    assert_ne!(by_id, by_key);
}
