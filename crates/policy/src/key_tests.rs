use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use http::{HeaderMap, HeaderName, Method, StatusCode};

use super::*;
use crate::ErrorKind;
use crate::pipeline::SubscriptionFacts;
use crate::test_util::{ErrorCase, check_errors, compile_in, facts, failed, header_map, request};
use crate::{ClientCertificate, Counters, Flow, RequestFacts};

impl CounterKey {
    /// [`CounterKey::hash`] of a request with these headers; idioms only.
    fn hash_headers(
        &self,
        facts: &RequestFacts<'_>,
        headers: &HeaderMap,
        counters: &Counters,
    ) -> Result<u64, NullReference> {
        let request = RequestState::new(Method::GET, "/", "", headers.clone());
        let scope = crate::pipeline::ScopeFacts::default();
        let exec = crate::pipeline::Exec {
            facts,
            scope: &scope,
            counters,
            section: crate::SectionKind::Inbound,
            last_error: None,
        };
        self.hash(&exec, &request).map_err(|failure| match failure {
            KeyFailure::Null(missing) => missing,
            KeyFailure::Expression(failure) => panic!("{failure:?}"),
        })
    }
}

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
        (
            "context.Request.Certificate.Thumbprint",
            Some(CounterKey::CertificateThumbprint { null_safe: false }),
        ),
        (
            "context.Request.Certificate?.Thumbprint",
            Some(CounterKey::CertificateThumbprint { null_safe: true }),
        ),
        (
            " context . Request . Certificate ?. Thumbprint ",
            Some(CounterKey::CertificateThumbprint { null_safe: true }),
        ),
        (
            "context.Request.Certificate.SubjectName.Name",
            Some(CounterKey::CertificateSubject { null_safe: false }),
        ),
        (
            "context.Request.Certificate.SubjectName?.Name",
            Some(CounterKey::CertificateSubject { null_safe: false }),
        ),
        (
            "context.Request.Certificate?.SubjectName.Name",
            Some(CounterKey::CertificateSubject { null_safe: true }),
        ),
        (
            "context.Request.Certificate?.SubjectName?.Name",
            Some(CounterKey::CertificateSubject { null_safe: true }),
        ),
        (
            "context.Request.Certificate.Subject",
            Some(CounterKey::CertificateSubject { null_safe: false }),
        ),
        (
            "context.Request.Certificate?.Subject",
            Some(CounterKey::CertificateSubject { null_safe: true }),
        ),
        ("context.Request.Certificate", None),
        ("context.Request.Certificate.", None),
        ("context.Request.Certificate?.", None),
        ("context.Request.Certificate.SerialNumber", None),
        ("context.Request.Certificate.SubjectName", None),
        ("context.Request.Certificate.Thumbprint.ToLower()", None),
        ("context.Request.CertificateThumbprint", None),
        ("context.Request.IpAddress.ToString()", None),
        ("context.User.Id", None),
        ("", None),
    ];
    for (code, expected) in cases {
        assert_eq!(&CounterKey::recognise(code), expected, "{code}");
    }
}

#[test]
fn any_other_expression_is_a_computed_key() {
    let pipeline = compile_in(
        "inbound",
        r#"<rate-limit-by-key calls="1" renewal-period="60" counter-key="@(context.Request.Headers.GetValueOrDefault("X-Tenant", "anonymous").ToLower())"/>"#,
    )
    .unwrap();
    let counters = Counters::new();
    let call = |tenant: &str| {
        let mut state = request(Method::GET, "/", "", &[("x-tenant", tenant)]);
        pipeline.inbound(&facts(1_000), &counters, &mut state)
    };
    assert_eq!(call("Contoso"), Flow::Continue);
    assert_eq!(
        call("Fabrikam"),
        Flow::Continue,
        "another tenant, another counter"
    );
    let failure = failed(call("CONTOSO"));
    assert_eq!(
        failure.error.reason, "RateLimitExceeded",
        "the same key after ToLower"
    );
}

#[test]
fn a_key_expression_that_fails_fails_the_request() {
    let pipeline = compile_in(
        "inbound",
        r#"<rate-limit-by-key calls="5" renewal-period="60" counter-key="@(context.Variables["missing"])"/>"#,
    )
    .unwrap();
    let mut state = request(Method::GET, "/", "", &[]);
    let failure = failed(pipeline.inbound(&facts(1_000), &Counters::new(), &mut state));
    assert_eq!(failure.error.reason, "ExpressionValueEvaluationFailure");
}

#[test]
fn bad_keys_are_refused_at_load() {
    check_errors(&[
        ErrorCase {
            name: "a member Gatehouse lacks",
            section: "inbound",
            body: r#"<rate-limit-by-key calls="1" renewal-period="1" counter-key="@(context.Deployment.ServiceName)"/>"#,
            at: "ServiceName",
            kind: ErrorKind::NotSupported,
            message: "`context.Deployment.ServiceName` is not available in Gatehouse yet",
        },
        ErrorCase {
            name: "a syntax error",
            section: "inbound",
            body: r#"<rate-limit-by-key calls="1" renewal-period="1" counter-key="@{ return "a" }"/>"#,
            at: "}\"",
            kind: ErrorKind::InvalidValue,
            message: "policy expression:",
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
        ip.hash_headers(&first, &headers, &counters),
        ip.hash_headers(&first, &headers, &counters)
    );
    assert_ne!(
        ip.hash_headers(&first, &headers, &counters),
        ip.hash_headers(&second, &headers, &counters)
    );
    // An IPv4-mapped IPv6 address is the same client as its IPv4 form.
    second.client_ip = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
    assert_eq!(
        ip.hash_headers(&first, &headers, &counters),
        ip.hash_headers(&second, &headers, &counters)
    );
    second.client_ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert_ne!(
        ip.hash_headers(&first, &headers, &counters),
        ip.hash_headers(&second, &headers, &counters)
    );

    let header = CounterKey::Header(HeaderName::from_static("x-client"));
    let joined = header.hash_headers(&first, &headers, &counters).unwrap();
    let single = header
        .hash_headers(&first, &header_map(&[("x-client", "a,b")]), &counters)
        .unwrap();
    assert_eq!(joined, single);
    let missing = header
        .hash_headers(&first, &HeaderMap::new(), &counters)
        .unwrap();
    assert_ne!(missing, joined);

    let literal = CounterKey::Literal("a,b".into());
    assert_ne!(
        literal.hash_headers(&first, &headers, &counters).unwrap(),
        joined,
        "kinds are kept apart"
    );

    let subscription = SubscriptionFacts {
        id: "sub-1",
        key: "key-1",
        product_id: None,
        product_name: None,
        name: "subscription",
    };
    assert_eq!(
        CounterKey::SubscriptionId { null_safe: false }.hash_headers(&first, &headers, &counters),
        Err(NullReference::Subscription)
    );
    assert!(
        CounterKey::SubscriptionKey { null_safe: true }
            .hash_headers(&first, &headers, &counters)
            .is_ok()
    );
    first.subscription = Some(subscription);
    let by_id = CounterKey::SubscriptionId { null_safe: false }
        .hash_headers(&first, &headers, &counters)
        .unwrap();
    let by_key = CounterKey::SubscriptionKey { null_safe: false }
        .hash_headers(&first, &headers, &counters)
        .unwrap();
    assert_ne!(by_id, by_key);
}

fn certificate(thumbprint: &str, subject: &str) -> ClientCertificate {
    ClientCertificate {
        subject: subject.to_owned(),
        issuer: "CN=Contoso CA".to_owned(),
        common_name: None,
        thumbprint: thumbprint.to_owned(),
        serial_number: "01".to_owned(),
        not_before: Duration::ZERO,
        not_after: Duration::MAX,
        dns_names: Vec::new(),
        issuer_thumbprint: None,
        trusted: true,
    }
}

#[test]
fn certificate_keys_hash_the_thumbprint_or_subject() {
    let counters = Counters::new();
    let headers = HeaderMap::new();
    let alice = &certificate("AAAA", "CN=alice");
    let alice_again = &certificate("AAAA", "CN=alice");
    let bob = &certificate("BBBB", "CN=bob");
    // Same subject, another certificate (a renewal, say).
    let alice_renewed = &certificate("CCCC", "CN=alice");
    fn with(certificate: &ClientCertificate) -> RequestFacts<'_> {
        RequestFacts {
            client_certificate: Some(certificate),
            original_url: crate::OriginalUrl::default(),
            request_id: None,
            services: None,
            ..facts(0)
        }
    }
    for null_safe in [false, true] {
        let thumbprint = CounterKey::CertificateThumbprint { null_safe };
        let subject = CounterKey::CertificateSubject { null_safe };
        let hash = |key: &CounterKey, certificate| {
            key.hash_headers(&with(certificate), &headers, &counters)
                .unwrap()
        };
        assert_eq!(hash(&thumbprint, alice), hash(&thumbprint, alice_again));
        assert_ne!(hash(&thumbprint, alice), hash(&thumbprint, bob));
        assert_ne!(hash(&thumbprint, alice), hash(&thumbprint, alice_renewed));
        assert_eq!(hash(&subject, alice), hash(&subject, alice_renewed));
        assert_ne!(hash(&subject, alice), hash(&subject, bob));
    }

    // Without a certificate: a null reference, unless written with `?.`; then one
    // shared key, distinct from every certificate's.
    let none = facts(0);
    for key in [
        CounterKey::CertificateThumbprint { null_safe: false },
        CounterKey::CertificateSubject { null_safe: false },
    ] {
        assert_eq!(
            key.hash_headers(&none, &headers, &counters),
            Err(NullReference::Certificate)
        );
    }
    let safe = CounterKey::CertificateThumbprint { null_safe: true };
    let anonymous = safe.hash_headers(&none, &headers, &counters).unwrap();
    assert_eq!(
        safe.hash_headers(&facts(5), &headers, &counters).unwrap(),
        anonymous
    );
    assert_ne!(
        safe.hash_headers(&with(alice), &headers, &counters)
            .unwrap(),
        anonymous
    );
    assert_ne!(
        CounterKey::CertificateSubject { null_safe: true }
            .hash_headers(&none, &headers, &counters)
            .unwrap(),
        anonymous,
        "kinds are kept apart"
    );
}

#[test]
fn certificate_keys_limit_per_client_certificate() {
    let counters = Counters::new();
    let pipeline = compile_in(
        "inbound",
        r#"<rate-limit-by-key calls="1" renewal-period="60" counter-key="@(context.Request.Certificate.Thumbprint)"/>"#,
    )
    .unwrap();
    let alice = certificate("AAAA", "CN=alice");
    let bob = certificate("BBBB", "CN=bob");
    let call = |certificate: Option<&ClientCertificate>| {
        let mut facts = facts(10);
        facts.client_certificate = certificate;
        let mut state = request(Method::GET, "/", "", &[]);
        pipeline.inbound(&facts, &counters, &mut state)
    };
    assert_eq!(call(Some(&alice)), Flow::Continue);
    assert_eq!(call(Some(&bob)), Flow::Continue);
    assert_eq!(failed(call(Some(&alice))).error.reason, "RateLimitExceeded");

    // No certificate: APIM's null reference, a 500.
    let failure = failed(call(None));
    assert_eq!(failure.error.reason, "ExpressionValueEvaluationFailure");
    assert_eq!(
        failure.error.message,
        "Expression evaluation failed. Object reference not set to an instance of an object (no client certificate)."
    );
    assert_eq!(failure.response.status, StatusCode::INTERNAL_SERVER_ERROR);

    // With `?.`: requests without a certificate share one counter.
    let pipeline = compile_in(
        "inbound",
        r#"<quota-by-key calls="1" renewal-period="300" counter-key="@(context.Request.Certificate?.SubjectName.Name)"/>"#,
    )
    .unwrap();
    let mut state = request(Method::GET, "/", "", &[]);
    assert_eq!(
        pipeline.inbound(&facts(10), &counters, &mut state),
        Flow::Continue
    );
    let mut state = request(Method::GET, "/", "", &[]);
    assert_eq!(
        failed(pipeline.inbound(&facts(10), &counters, &mut state))
            .error
            .reason,
        "QuotaExceeded"
    );
}
