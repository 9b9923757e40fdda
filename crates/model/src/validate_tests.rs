use crate::{ConfigError, Configuration};

use super::check_hostname;

/// PEM of the right shape; the bodies are base64 of sentences, not real DER.
const CERT: &str = "-----BEGIN CERTIFICATE-----\nZ2F0ZWhvdXNlIHRlc3QgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
const KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nZ2F0ZWhvdXNlIHRlc3Qga2V5\n-----END PRIVATE KEY-----\n";

fn document(extra: &str) -> String {
    format!(
        r"
apis:
  - id: users
    path: users
    serviceUrl: http://127.0.0.1:9000
  - id: orders
    path: orders
    serviceUrl: http://127.0.0.1:9001
{extra}"
    )
}

fn error_paths(extra: &str) -> Vec<(String, String)> {
    match Configuration::load("gw.yaml", &document(extra)) {
        Ok(_) => Vec::new(),
        Err(ConfigError::Invalid { errors, .. }) => errors
            .0
            .into_iter()
            .map(|error| (error.path, error.message))
            .collect(),
        Err(other) => panic!("expected validation errors, got {other}"),
    }
}

fn indent(text: &str, spaces: usize) -> String {
    let pad = " ".repeat(spaces);
    text.lines().map(|line| format!("{pad}{line}\n")).collect()
}

#[test]
fn gateways_certificates_and_hostnames_parse_and_validate() {
    let extra = format!(
        r"certificates:
  - id: api-cert
    certificatePem: |
{}    privateKeyPem: |
{}  - id: ca
    certificatePem: |
{}hostnames:
  - hostname: api.example.com
    certificateId: api-cert
    negotiateClientCertificate: true
  - hostname: '*.internal.example.com'
gateways:
  - id: eu-west
    displayName: EU West
    location: Amsterdam
    description: the EU cluster
    apis: [users, orders]
  - id: edge
",
        indent(CERT, 6),
        indent(KEY, 6),
        indent(CERT, 6)
    );
    let config = Configuration::load("gw.yaml", &document(&extra)).unwrap();
    assert_eq!(config.certificates.len(), 2);
    assert_eq!(config.certificates[0].private_key_pem.as_deref(), Some(KEY));
    assert_eq!(config.certificates[1].private_key_pem, None);
    assert!(config.hostnames[0].negotiate_client_certificate);
    assert!(
        !config.hostnames[1].negotiate_client_certificate,
        "off by default"
    );
    assert_eq!(config.gateways[0].apis, ["users", "orders"]);
    assert_eq!(config.gateways[0].location.as_deref(), Some("Amsterdam"));
    assert!(config.gateways[1].apis.is_empty());

    // Empty lists are left out of the JSON, so older documents keep their checksums.
    let json = serde_json::to_string(&Configuration::default()).unwrap();
    assert_eq!(json, "{}");
}

#[test]
fn unknown_fields_are_rejected_on_the_new_entities() {
    for extra in [
        "gateways:\n  - id: g\n    api: [users]\n",
        "hostnames:\n  - hostname: a.example.com\n    certificate: c\n",
        "certificates:\n  - id: c\n    certificatePem: x\n    password: y\n",
    ] {
        assert!(
            matches!(
                Configuration::from_yaml("gw.yaml", &document(extra)),
                Err(ConfigError::Yaml { .. })
            ),
            "{extra}"
        );
    }
}

#[test]
fn new_entities_report_every_problem_with_its_path() {
    let cases: [(&str, &str, &str); 16] = [
        (
            "gateways:\n  - id: g\n    apis: [users, missing]\n",
            "gateways[g].apis",
            "unknown API `missing`",
        ),
        (
            "gateways:\n  - id: g\n    apis: [users, users]\n",
            "gateways[g].apis",
            "listed twice",
        ),
        (
            "gateways:\n  - id: g\n  - id: g\n",
            "gateways[g]",
            "duplicate gateway id",
        ),
        (
            "gateways:\n  - id: 'g&1'\n",
            "gateways[g&1].id",
            "lowercase letters, digits",
        ),
        // Gateway ids name Kubernetes objects.
        (
            "gateways:\n  - id: Edge\n",
            "gateways[Edge].id",
            "Kubernetes objects",
        ),
        (
            "gateways:\n  - id: 1st\n",
            "gateways[1st].id",
            "starting with a letter",
        ),
        (
            "gateways:\n  - id: edge_west\n",
            "gateways[edge_west].id",
            "lowercase letters, digits and `-`",
        ),
        // Ids are one URL path segment.
        (
            "products:\n  - id: '..'\n",
            "products[..].id",
            "not only dots",
        ),
        (
            "hostnames:\n  - hostname: a.example.com\n    certificateId: nope\n",
            "hostnames[a.example.com].certificateId",
            "unknown certificate `nope`",
        ),
        (
            "hostnames:\n  - hostname: a.example.com\n  - hostname: A.Example.COM\n",
            "hostnames[A.Example.COM]",
            "duplicate hostname",
        ),
        (
            "hostnames:\n  - hostname: 'https://a.example.com'\n",
            "hostnames[https://a.example.com].hostname",
            "invalid hostname",
        ),
        (
            "certificates:\n  - id: c\n    certificatePem: not a pem\n",
            "certificates[c].certificatePem",
            "no `-----BEGIN CERTIFICATE-----` block",
        ),
        (
            "certificates:\n  - id: c\n    certificatePem: not a pem\n  - id: c\n    certificatePem: not a pem\n",
            "certificates[c]",
            "duplicate certificate id",
        ),
        (
            "certificates:\n  - id: 'c c'\n    certificatePem: x\n",
            "certificates[c c].id",
            "letters, digits",
        ),
        (
            "certificates:\n  - id: c\n    certificatePem: x\n    privateKeyPem: secret-ish\n",
            "certificates[c].privateKeyPem",
            "no `-----BEGIN PRIVATE KEY-----` block",
        ),
        (
            "certificates:\n  - id: c\n    certificatePem: x\n    privateKeyPem: |\n      -----BEGIN PRIVATE KEY-----\n      !!!!\n      -----END PRIVATE KEY-----\n",
            "certificates[c].privateKeyPem",
            "not valid base64",
        ),
    ];
    for (extra, path, message) in cases {
        let errors = error_paths(extra);
        assert!(
            errors.iter().any(|(p, m)| p == path && m.contains(message)),
            "{extra}\nexpected {path}: {message}\ngot {errors:#?}"
        );
    }
}

#[test]
fn a_hostname_needs_a_certificate_with_a_private_key() {
    let extra = format!(
        "certificates:\n  - id: ca\n    certificatePem: |\n{}hostnames:\n  - hostname: a.example.com\n    certificateId: ca\n",
        indent(CERT, 6)
    );
    let errors = error_paths(&extra);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].0, "hostnames[a.example.com].certificateId");
    assert!(
        errors[0].1.contains("has no `privateKeyPem`"),
        "{errors:#?}"
    );
}

#[test]
fn private_keys_never_appear_in_messages_or_debug() {
    // Security: a key must not reach logs through a validation error or `{:?}`.
    let extra = "certificates:\n  - id: c\n    certificatePem: x\n    privateKeyPem: |\n      -----BEGIN PRIVATE KEY-----\n      TOP-SECRET-KEY-MATERIAL\n      -----END PRIVATE KEY-----\n";
    let errors = error_paths(extra);
    assert!(!errors.is_empty());
    for (_, message) in &errors {
        assert!(!message.contains("TOP-SECRET"), "{message}");
    }
    let config = Configuration::from_yaml("gw.yaml", &document(extra)).unwrap();
    let debug = format!("{:?}", config.certificates[0]);
    assert!(!debug.contains("TOP-SECRET"), "{debug}");
    assert!(debug.contains("<secret>"), "{debug}");
    let debug = format!("{config:?}");
    assert!(!debug.contains("TOP-SECRET"), "{debug}");
}

#[test]
fn hostname_syntax() {
    for good in [
        "api.example.com",
        "API.Example.com",
        "*.example.com",
        "localhost",
        "a-b.c0.example",
        "xn--bcher-kva.example",
        &format!("{}.example.com", "a".repeat(63)),
    ] {
        assert_eq!(check_hostname(good), Ok(()), "{good}");
    }
    for bad in [
        "",
        "*",
        "*.",
        "*.com",
        "a.*.example.com",
        "api.example.com.",
        ".example.com",
        "api..example.com",
        "-api.example.com",
        "api-.example.com",
        "api.example.com:443",
        "https://api.example.com",
        "api.example.com/path",
        "api example.com",
        "bücher.example",
        "10.0.0.1",
        "[::1]",
        &format!("{}.example.com", "a".repeat(64)),
        &format!("{}.com", "a.".repeat(126)),
    ] {
        assert!(check_hostname(bad).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn backend_tls_references_and_default_bindings_are_checked() {
    let yaml = r#"
backends:
  - id: plain
    url: http://plain.internal
    tls: { validateCertificateChain: false }
  - id: secure
    url: https://secure.internal
    tls:
      caCertificateIds: [missing-ca]
      clientCertificateId: ca-only
      serverName: "*.internal"
certificates:
  - id: ca-only
    certificatePem: |
      -----BEGIN CERTIFICATE-----
      AAAA
      -----END CERTIFICATE-----
hostnames:
  - hostname: a.example.com
    defaultSslBinding: true
  - hostname: b.example.com
    defaultSslBinding: true
"#;
    let errors = crate::Configuration::from_yaml("t.yaml", yaml)
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
    for expected in [
        "backends[plain].tls: TLS settings on a backend whose URL is not `https://`",
        "backends[secure].tls.caCertificateIds: unknown certificate `missing-ca`",
        "backends[secure].tls.clientCertificateId: certificate `ca-only` has no `privateKeyPem`",
        "backends[secure].tls.serverName: `*.internal` is a wildcard",
        "2 hostnames have `defaultSslBinding: true` (a.example.com, b.example.com); at most one may",
    ] {
        assert!(
            errors.contains(expected),
            "missing {expected:?} in:\n{errors}"
        );
    }
}

#[test]
fn websocket_backends_are_accepted_and_other_schemes_are_not() {
    let yaml = r"
backends:
  - id: secure-socket
    url: wss://socket.internal/feed
    tls: { validateCertificateChain: false }
apis:
  - id: plain
    path: plain
    protocols: [ws, wss]
    serviceUrl: ws://127.0.0.1:9000/socket
  - id: secure
    path: secure
    protocols: [wss]
    backendId: secure-socket
";
    let config = Configuration::load("gw.yaml", yaml).unwrap();
    // APIM lists a WebSocket API's protocols as `ws`/`wss`: the same listeners.
    assert_eq!(
        config.apis[0].protocols,
        [crate::Protocol::Http, crate::Protocol::Https]
    );
    assert_eq!(config.apis[1].protocols, [crate::Protocol::Https]);

    let errors = Configuration::load(
        "gw.yaml",
        "apis:\n  - id: a\n    path: a\n    serviceUrl: ftp://127.0.0.1/x\nbackends:\n  - id: b\n    url: ws://plain.internal\n    tls: { validateCertificateChain: false }\n",
    )
    .unwrap_err()
    .to_string();
    for expected in [
        "apis[a].serviceUrl: `ftp://127.0.0.1/x` must be an absolute http://, https://, ws:// or wss:// URL",
        "backends[b].tls: TLS settings on a backend whose URL is not `https://` or `wss://`",
    ] {
        assert!(
            errors.contains(expected),
            "missing {expected:?} in:\n{errors}"
        );
    }
}
