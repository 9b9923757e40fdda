use std::time::Duration;

use gatehouse_model::Certificate;
use http::{Method, StatusCode};

use crate::test_util::{
    ErrorCase, certificate_pem, check_errors, compile_xml_with, facts, failed, in_section, request,
};
use crate::{
    ClientCertificate, CompileContext, Counters, ErrorKind, Flow, NamedValues, Pipeline,
    PolicyError,
};

const CA_DER: &[u8] = b"contoso issuing CA";
const CLIENT_DER: &[u8] = b"client.example.com";

fn certificates() -> Vec<Certificate> {
    let entity = |id: &str, pem: String, client_ca: bool| Certificate {
        id: id.to_owned(),
        certificate_pem: pem,
        private_key_pem: None,
        client_ca,
    };
    vec![
        entity("contoso-ca", certificate_pem(CA_DER), true),
        entity("client-01", certificate_pem(CLIENT_DER), false),
        entity(
            "other",
            format!("{}{}", certificate_pem(b"other"), certificate_pem(CA_DER)),
            false,
        ),
        entity(
            "broken",
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".to_owned(),
            false,
        ),
    ]
}

/// Valid from 1,000 s to 2,000 s, trusted, issued by `contoso-ca`.
fn client() -> ClientCertificate {
    ClientCertificate {
        subject: "CN=client.example.com, O=Contoso, C=US".to_owned(),
        issuer: "CN=Contoso CA, O=Contoso".to_owned(),
        common_name: Some("client.example.com".to_owned()),
        thumbprint: ClientCertificate::thumbprint_of(CLIENT_DER),
        serial_number: "00A1B2C3".to_owned(),
        not_before: Duration::from_secs(1_000),
        not_after: Duration::from_secs(2_000),
        dns_names: vec![
            "client.example.com".to_owned(),
            "API.example.com".to_owned(),
        ],
        issuer_thumbprint: Some(ClientCertificate::thumbprint_of(CA_DER)),
        trusted: true,
    }
}

/// Compiles `body` in inbound with the certificates above.
fn compile(body: &str) -> Result<Pipeline, PolicyError> {
    let named = NamedValues::new();
    let certificates = certificates();
    let cx = CompileContext::new(&named).with_certificates(&certificates);
    compile_xml_with(&in_section("inbound", body), &cx)
}

fn run(pipeline: &Pipeline, certificate: Option<&ClientCertificate>, now: u64) -> Flow {
    let mut facts = facts(now);
    facts.client_certificate = certificate;
    let mut state = request(Method::GET, "/", "", &[]);
    pipeline.inbound(&facts, &Counters::new(), &mut state)
}

/// Asserts APIM's refusal: 401, source, reason and body.
fn assert_refused(flow: Flow, reason: &str, body_message: &str, case: &str) {
    let failure = failed(flow);
    assert_eq!(
        failure.error.source, "validate-client-certificate",
        "{case}"
    );
    assert_eq!(failure.error.reason, reason, "{case}");
    assert_eq!(failure.response.status, StatusCode::UNAUTHORIZED, "{case}");
    assert_eq!(
        failure.response.body,
        format!(r#"{{"statusCode":401,"message":"{body_message}"}}"#),
        "{case}"
    );
    assert_eq!(
        failure.response.headers["content-type"], "application/json",
        "{case}"
    );
}

const INVALID: &str = "Invalid client certificate";

#[test]
fn defaults_check_presence_validity_and_trust() {
    let pipeline =
        compile(r#"<validate-client-certificate validate-revocation="false"/>"#).unwrap();
    let untrusted = ClientCertificate {
        trusted: false,
        ..client()
    };
    /// Name, certificate, time, and the refusal's reason and body message.
    type Case<'a> = (
        &'a str,
        Option<&'a ClientCertificate>,
        u64,
        Option<(&'a str, &'a str)>,
    );
    let cases: &[Case<'_>] = &[
        ("valid", Some(&client()), 1_500, None),
        ("first valid second", Some(&client()), 1_000, None),
        ("last valid second", Some(&client()), 2_000, None),
        (
            "no certificate",
            None,
            1_500,
            Some(("ClientCertificateNotFound", "Client certificate missing")),
        ),
        (
            "not yet valid",
            Some(&client()),
            999,
            Some(("ClientCertificateNotYetValid", INVALID)),
        ),
        (
            "expired",
            Some(&client()),
            2_001,
            Some(("ClientCertificateExpired", INVALID)),
        ),
        (
            "untrusted",
            Some(&untrusted),
            1_500,
            Some(("ClientCertificateNotTrusted", INVALID)),
        ),
        (
            "expired and untrusted: validity is checked first",
            Some(&untrusted),
            2_001,
            Some(("ClientCertificateExpired", INVALID)),
        ),
    ];
    for (name, certificate, now, refusal) in cases {
        let flow = run(&pipeline, *certificate, *now);
        match refusal {
            None => assert_eq!(flow, Flow::Continue, "{name}"),
            Some((reason, body)) => assert_refused(flow, reason, body, name),
        }
    }
}

#[test]
fn error_messages_are_apims() {
    let pipeline = compile(
        r#"<validate-client-certificate id="mtls" validate-revocation="false"><identities><identity common-name="nobody"/></identities></validate-client-certificate>"#,
    )
    .unwrap();
    let untrusted = ClientCertificate {
        trusted: false,
        ..client()
    };
    for (certificate, now, message) in [
        (None, 1_500, "Client certificate missing."),
        (Some(&client()), 999, "Certificate is not yet valid."),
        (Some(&client()), 2_001, "Certificate has expired."),
        (
            Some(&untrusted),
            1_500,
            "A certificate chain could not be built to a trusted root authority.",
        ),
        (
            Some(&client()),
            1_500,
            "Certificate does not match any of allowed identities.",
        ),
    ] {
        let failure = failed(run(&pipeline, certificate, now));
        assert_eq!(failure.error.message, message);
        assert_eq!(failure.error.policy_id.as_deref(), Some("mtls"));
    }
}

#[test]
fn each_check_can_be_turned_off() {
    let untrusted = ClientCertificate {
        trusted: false,
        ..client()
    };
    let cases: &[(&str, &ClientCertificate, u64, &str)] = &[
        (
            "validate-not-before",
            &client(),
            999,
            "ClientCertificateNotYetValid",
        ),
        (
            "validate-not-after",
            &client(),
            2_001,
            "ClientCertificateExpired",
        ),
        (
            "validate-trust",
            &untrusted,
            1_500,
            "ClientCertificateNotTrusted",
        ),
    ];
    for (attribute, certificate, now, reason) in cases {
        for (value, refused) in [("true", true), ("false", false), ("False", false)] {
            let pipeline = compile(&format!(
                r#"<validate-client-certificate validate-revocation="false" {attribute}="{value}"/>"#
            ))
            .unwrap();
            let flow = run(&pipeline, Some(certificate), *now);
            if refused {
                assert_refused(flow, reason, INVALID, attribute);
            } else {
                assert_eq!(flow, Flow::Continue, "{attribute}={value}");
            }
        }
    }
    // Nothing turns off the presence check.
    let lenient = compile(
        r#"<validate-client-certificate validate-revocation="false" validate-trust="false" validate-not-before="false" validate-not-after="false"/>"#,
    )
    .unwrap();
    assert_refused(
        run(&lenient, None, 1_500),
        "ClientCertificateNotFound",
        "Client certificate missing",
        "lenient",
    );
}

#[test]
fn ignore_error_lets_every_refused_request_through() {
    let untrusted = ClientCertificate {
        trusted: false,
        ..client()
    };
    for (value, ignored) in [("true", true), ("false", false)] {
        let pipeline = compile(&format!(
            r#"<validate-client-certificate validate-revocation="false" ignore-error="{value}"><identities><identity thumbprint="{}"/></identities></validate-client-certificate>"#,
            ClientCertificate::thumbprint_of(CLIENT_DER)
        ))
        .unwrap();
        let other = ClientCertificate {
            thumbprint: ClientCertificate::thumbprint_of(b"someone else"),
            ..client()
        };
        for (certificate, now) in [
            (None, 1_500),
            (Some(&client()), 999),
            (Some(&client()), 2_001),
            (Some(&untrusted), 1_500),
            (Some(&other), 1_500),
        ] {
            let flow = run(&pipeline, certificate, now);
            assert_eq!(
                flow == Flow::Continue,
                ignored,
                "ignore-error={value}: {flow:?}"
            );
        }
        assert_eq!(run(&pipeline, Some(&client()), 1_500), Flow::Continue);
    }
}

/// `<identities>` with one `<identity {attributes}/>`, checks other than identity off.
fn identity_policy(attributes: &str) -> Pipeline {
    compile(&format!(
        r#"<validate-client-certificate validate-revocation="false" validate-trust="false"><identities><identity {attributes}/></identities></validate-client-certificate>"#
    ))
    .unwrap()
}

#[test]
fn identity_attributes_match_the_certificate() {
    let client_thumbprint = ClientCertificate::thumbprint_of(CLIENT_DER);
    let ca_thumbprint = ClientCertificate::thumbprint_of(CA_DER);
    let spaced = client_thumbprint
        .as_bytes()
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).unwrap().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    let cases: Vec<(String, bool)> = vec![
        (format!(r#"thumbprint="{client_thumbprint}""#), true),
        (format!(r#"thumbprint="{spaced}""#), true),
        (format!(r#"thumbprint="{ca_thumbprint}""#), false),
        (r#"certificate-id="client-01""#.to_owned(), true),
        (r#"certificate-id="contoso-ca""#.to_owned(), false),
        (r#"serial-number="A1B2C3""#.to_owned(), true),
        (r#"serial-number="00:a1:b2:c3""#.to_owned(), true),
        (r#"serial-number="A1B2C4""#.to_owned(), false),
        (r#"common-name="Client.Example.com""#.to_owned(), true),
        (r#"common-name="client""#.to_owned(), false),
        (
            r#"subject="CN=client.example.com, O=Contoso, C=US""#.to_owned(),
            true,
        ),
        (
            r#"subject="C=US, O=Contoso, CN=client.example.com""#.to_owned(),
            true,
        ),
        (
            r#"subject="CN=client.example.com, O=Contoso""#.to_owned(),
            false,
        ),
        (r#"dns-name="api.example.com""#.to_owned(), true),
        (r#"dns-name="client.example.com""#.to_owned(), true),
        (r#"dns-name="*.example.com""#.to_owned(), false),
        (
            r#"issuer-subject="O=Contoso, CN=Contoso CA""#.to_owned(),
            true,
        ),
        (r#"issuer-subject="CN=Fabrikam CA""#.to_owned(), false),
        (format!(r#"issuer-thumbprint="{ca_thumbprint}""#), true),
        (format!(r#"issuer-thumbprint="{client_thumbprint}""#), false),
        (r#"issuer-certificate-id="contoso-ca""#.to_owned(), true),
        (r#"issuer-certificate-id="client-01""#.to_owned(), false),
        // Only the first block of a chain counts.
        (r#"issuer-certificate-id="other""#.to_owned(), false),
        // Every attribute of the identity must match.
        (
            format!(
                r#"common-name="client.example.com" issuer-thumbprint="{ca_thumbprint}" dns-name="api.example.com""#
            ),
            true,
        ),
        (
            r#"common-name="client.example.com" issuer-certificate-id="client-01""#.to_owned(),
            false,
        ),
    ];
    for (attributes, matches) in &cases {
        let flow = run(&identity_policy(attributes), Some(&client()), 1_500);
        if *matches {
            assert_eq!(flow, Flow::Continue, "{attributes}");
        } else {
            assert_refused(
                flow,
                "ClientCertificateIdentityNotMatched",
                INVALID,
                attributes,
            );
        }
    }
}

#[test]
fn absent_certificate_fields_never_match() {
    let bare = ClientCertificate {
        common_name: None,
        dns_names: Vec::new(),
        issuer_thumbprint: None,
        subject: "not a distinguished name".to_owned(),
        ..client()
    };
    for attributes in [
        r#"common-name="client.example.com""#,
        r#"dns-name="client.example.com""#,
        r#"issuer-certificate-id="contoso-ca""#,
        r#"subject="CN=client.example.com, O=Contoso, C=US""#,
    ] {
        assert_refused(
            run(&identity_policy(attributes), Some(&bare), 1_500),
            "ClientCertificateIdentityNotMatched",
            INVALID,
            attributes,
        );
    }
}

#[test]
fn any_identity_is_enough_and_none_means_no_identity_check() {
    let pipeline = compile(
        r#"<validate-client-certificate validate-revocation="false">
            <identities>
                <identity common-name="someone else"/>
                <identity dns-name="api.example.com" issuer-certificate-id="contoso-ca"/>
            </identities>
        </validate-client-certificate>"#,
    )
    .unwrap();
    assert_eq!(run(&pipeline, Some(&client()), 1_500), Flow::Continue);
    let stranger = ClientCertificate {
        dns_names: vec!["stranger.example.com".to_owned()],
        ..client()
    };
    assert_refused(
        run(&pipeline, Some(&stranger), 1_500),
        "ClientCertificateIdentityNotMatched",
        INVALID,
        "stranger",
    );

    for body in [
        r#"<validate-client-certificate validate-revocation="false"/>"#,
        r#"<validate-client-certificate validate-revocation="false"><identities/></validate-client-certificate>"#,
    ] {
        let pipeline = compile(body).unwrap();
        assert_eq!(
            run(&pipeline, Some(&stranger), 1_500),
            Flow::Continue,
            "{body}"
        );
    }
}

#[test]
fn named_values_are_substituted_in_identities() {
    let mut named = NamedValues::new();
    named.insert(
        "partner-thumbprint",
        ClientCertificate::thumbprint_of(CLIENT_DER),
        false,
    );
    let cx = CompileContext::new(&named);
    let pipeline = compile_xml_with(
        &in_section(
            "inbound",
            r#"<validate-client-certificate validate-revocation="false" validate-trust="false"><identities><identity thumbprint="{{partner-thumbprint}}"/></identities></validate-client-certificate>"#,
        ),
        &cx,
    )
    .unwrap();
    assert_eq!(run(&pipeline, Some(&client()), 1_500), Flow::Continue);
}

#[test]
fn rejects_revocation_checks_and_bad_values() {
    check_errors(&[
        ErrorCase {
            name: "revocation by default",
            section: "inbound",
            body: r#"<validate-client-certificate validate-trust="false"/>"#,
            at: "<validate-client-certificate",
            kind: ErrorKind::NotSupported,
            message: "`validate-revocation` is absent, and APIM's default is true, but Gatehouse does not check certificate revocation (CRL or OCSP); set validate-revocation=\"false\"",
        },
        ErrorCase {
            name: "revocation asked for",
            section: "inbound",
            body: r#"<validate-client-certificate validate-trust="false" validate-revocation="TRUE"/>"#,
            at: "validate-revocation",
            kind: ErrorKind::NotSupported,
            message: "set validate-revocation=\"false\"",
        },
        ErrorCase {
            name: "bad boolean",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="false" validate-trust="false" validate-not-after="yes"/>"#,
            at: "validate-not-after",
            kind: ErrorKind::InvalidValue,
            message: "`validate-not-after` must be `true` or `false`, found `yes`",
        },
        ErrorCase {
            name: "bad revocation boolean",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="no"/>"#,
            at: "validate-revocation",
            kind: ErrorKind::InvalidValue,
            message: "`validate-revocation` must be `true` or `false`",
        },
        ErrorCase {
            name: "bad ignore-error",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="false" validate-trust="false" ignore-error="1"/>"#,
            at: "ignore-error",
            kind: ErrorKind::InvalidValue,
            message: "`ignore-error` must be `true` or `false`",
        },
        ErrorCase {
            name: "expression",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="false" validate-trust="@(true)"/>"#,
            at: "@(true)",
            kind: ErrorKind::NotSupported,
            message: "does not evaluate policy expressions in this value yet",
        },
        ErrorCase {
            name: "trust without any client CA, by default",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="false"/>"#,
            at: "<validate-client-certificate",
            kind: ErrorKind::InvalidValue,
            message: "no certificate has `clientCa: true`",
        },
        ErrorCase {
            name: "trust without any client CA",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="false" validate-trust="true"/>"#,
            at: "validate-trust=",
            kind: ErrorKind::InvalidValue,
            message: "`validate-trust` is true, but no certificate has `clientCa: true`",
        },
        ErrorCase {
            name: "unknown certificate id, none configured",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="false" validate-trust="false"><identities><identity issuer-certificate-id="ca"/></identities></validate-client-certificate>"#,
            at: "issuer-certificate-id",
            kind: ErrorKind::InvalidValue,
            message: "`issuer-certificate-id`: unknown certificate `ca`; add it under `certificates` (no certificates are configured)",
        },
        ErrorCase {
            name: "bad thumbprint",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="false" validate-trust="false"><identities><identity thumbprint="5E7FC1"/></identities></validate-client-certificate>"#,
            at: "thumbprint",
            kind: ErrorKind::InvalidValue,
            message: "`thumbprint` must be a SHA-1 thumbprint: 40 hexadecimal digits",
        },
        ErrorCase {
            name: "bad issuer thumbprint",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="false" validate-trust="false"><identities><identity issuer-thumbprint="zz"/></identities></validate-client-certificate>"#,
            at: "issuer-thumbprint",
            kind: ErrorKind::InvalidValue,
            message: "`issuer-thumbprint` must be a SHA-1 thumbprint",
        },
        ErrorCase {
            name: "bad serial number",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="false" validate-trust="false"><identities><identity serial-number="12-34"/></identities></validate-client-certificate>"#,
            at: "serial-number",
            kind: ErrorKind::InvalidValue,
            message: "`serial-number` must be hexadecimal digits",
        },
        ErrorCase {
            name: "bad subject",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="false" validate-trust="false"><identities><identity subject="client.example.com"/></identities></validate-client-certificate>"#,
            at: "subject",
            kind: ErrorKind::InvalidValue,
            message: "`subject` must be a distinguished name such as `CN=client.example.com, O=\"Contoso, Inc.\"`, found `client.example.com`: `client.example.com` has no `=`",
        },
        ErrorCase {
            name: "bad issuer subject",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="false" validate-trust="false"><identities><identity issuer-subject="CN=a,"/></identities></validate-client-certificate>"#,
            at: "issuer-subject",
            kind: ErrorKind::InvalidValue,
            message: "`issuer-subject` must be a distinguished name",
        },
        ErrorCase {
            name: "empty common name",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="false" validate-trust="false"><identities><identity common-name=" "/></identities></validate-client-certificate>"#,
            at: "common-name",
            kind: ErrorKind::InvalidValue,
            message: "`common-name` must not be empty",
        },
        ErrorCase {
            name: "empty dns name",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="false" validate-trust="false"><identities><identity dns-name=""/></identities></validate-client-certificate>"#,
            at: "dns-name",
            kind: ErrorKind::InvalidValue,
            message: "`dns-name` must not be empty",
        },
    ]);
}

#[test]
fn rejects_bad_structure() {
    check_errors(&[
        ErrorCase {
            name: "identity without attributes",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="false" validate-trust="false"><identities><identity/></identities></validate-client-certificate>"#,
            at: "<identity/>",
            kind: ErrorKind::Missing,
            message: "an <identity> without attributes would match any certificate",
        },
        ErrorCase {
            name: "issuer named twice",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="false" validate-trust="false"><identities><identity issuer-subject="CN=a" issuer-certificate-id="ca"/></identities></validate-client-certificate>"#,
            at: "issuer-certificate-id",
            kind: ErrorKind::InvalidValue,
            message: "`issuer-certificate-id` cannot be combined with `issuer-subject` or `issuer-thumbprint`",
        },
        ErrorCase {
            name: "unknown identity attribute",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="false" validate-trust="false"><identities><identity issuer="CN=a"/></identities></validate-client-certificate>"#,
            at: "issuer=",
            kind: ErrorKind::UnknownAttribute,
            message: "<identity>: unknown attribute `issuer`; supported: certificate-id, common-name, dns-name, issuer-certificate-id, issuer-subject, issuer-thumbprint, serial-number, subject, thumbprint",
        },
        ErrorCase {
            name: "unknown policy attribute",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="false" validate-chain="false"/>"#,
            at: "validate-chain",
            kind: ErrorKind::UnknownAttribute,
            message: "unknown attribute `validate-chain`",
        },
        ErrorCase {
            name: "identity outside identities",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="false"><identity thumbprint="a"/></validate-client-certificate>"#,
            at: "<identity ",
            kind: ErrorKind::Structure,
            message: "expected <identities>",
        },
        ErrorCase {
            name: "other child of identities",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="false"><identities><claim/></identities></validate-client-certificate>"#,
            at: "<claim/>",
            kind: ErrorKind::Structure,
            message: "expected <identity>",
        },
        ErrorCase {
            name: "identities twice",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="false"><identities/><identities/></validate-client-certificate>"#,
            at: "<identities/></validate",
            kind: ErrorKind::Structure,
            message: "<identities> may appear only once",
        },
        ErrorCase {
            name: "text",
            section: "inbound",
            body: r#"<validate-client-certificate validate-revocation="false">x</validate-client-certificate>"#,
            at: "x</",
            kind: ErrorKind::Structure,
            message: "unexpected text",
        },
        ErrorCase {
            name: "outbound",
            section: "outbound",
            body: r#"<validate-client-certificate validate-revocation="false"/>"#,
            at: "<validate-client-certificate",
            kind: ErrorKind::WrongSection,
            message: "allowed in: inbound",
        },
        ErrorCase {
            name: "backend",
            section: "backend",
            body: r#"<validate-client-certificate validate-revocation="false"/>"#,
            at: "<validate-client-certificate",
            kind: ErrorKind::WrongSection,
            message: "allowed in: inbound",
        },
    ]);
}

#[test]
fn certificate_ids_are_checked_against_the_configuration() {
    let body = r#"<validate-client-certificate validate-revocation="false"><identities><identity certificate-id="client-02"/></identities></validate-client-certificate>"#;
    let error = compile(body).unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidValue);
    assert_eq!(
        error.message,
        "`certificate-id`: unknown certificate `client-02`; add it under `certificates` (configured certificates: contoso-ca, client-01, other, broken)"
    );
    let column = "<policies><inbound>".len() + body.find("certificate-id").unwrap() + 1;
    assert_eq!((error.line(), error.column() as usize), (1, column));

    let error = compile(
        r#"<validate-client-certificate validate-revocation="false"><identities><identity issuer-certificate-id="broken"/></identities></validate-client-certificate>"#,
    )
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidValue);
    assert!(
        error
            .message
            .contains("certificate `broken` has no readable"),
        "{error}"
    );
}
