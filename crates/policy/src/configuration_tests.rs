use gatehouse_model::Configuration;

use super::*;

const CONFIG: &str = r#"
policy: |
  <policies><inbound><set-header name="x-global" exists-action="override"><value>1</value></set-header></inbound></policies>
apis:
  - id: a
    path: a
    serviceUrl: http://127.0.0.1:1
    operations:
      - { id: one, method: GET, urlTemplate: /one }
      - { id: two, method: GET, urlTemplate: /two }
  - id: b
    path: b
    serviceUrl: http://127.0.0.1:1
    operations:
      - { id: only, method: GET, urlTemplate: /only }
products:
  - id: with-policy
    apis: [a]
    policy: |
      <policies><inbound><base /><rate-limit calls="5" renewal-period="10" /></inbound></policies>
  - id: without-policy
    apis: [a, b]
"#;

#[test]
fn one_pipeline_per_operation_and_product_with_a_policy_plus_one_per_api() {
    let config = Configuration::load("gw.yaml", CONFIG).unwrap();
    let mut keys = Vec::new();
    compile_configuration(&config, "gw.yaml", |key, _| keys.push(key)).unwrap();
    let key = |api, operation, product| PipelineKey {
        api,
        operation,
        product,
    };
    assert_eq!(
        keys,
        [
            key(0, None, None),
            key(0, Some(0), None),
            key(0, Some(0), Some(0)),
            key(0, Some(1), None),
            key(0, Some(1), Some(0)),
            key(1, None, None),
            key(1, Some(0), None),
        ]
    );
}

#[test]
fn errors_name_the_document_place_line_and_column() {
    let text = CONFIG.replace(r#"calls="5" "#, "");
    let config = Configuration::load("gw.yaml", &text).unwrap();
    let error = compile_configuration(&config, "gw.yaml", |_, _| {}).unwrap_err();
    let shown = error.to_string();
    assert!(
        shown.starts_with("gw.yaml: products[with-policy].policy:1:"),
        "{shown}"
    );
    assert!(shown.contains("calls"), "{shown}");
}

#[test]
fn policies_see_the_configured_certificates() {
    let mut config = Configuration::load("gw.yaml", CONFIG).unwrap();
    config.policy = Some(
        r#"<policies><inbound><validate-client-certificate validate-revocation="false"><identities><identity issuer-certificate-id="partner-ca"/></identities></validate-client-certificate></inbound></policies>"#
            .to_owned(),
    );
    let error = compile_configuration(&config, "gw.yaml", |_, _| {}).unwrap_err();
    assert!(
        error
            .message
            .contains("no certificate has `clientCa: true`"),
        "{error}"
    );
    config.certificates.push(gatehouse_model::Certificate {
        id: "partner-ca".to_owned(),
        certificate_pem: crate::test_util::certificate_pem(b"partner CA"),
        private_key_pem: None,
        client_ca: true,
    });
    let mut compiled = 0;
    compile_configuration(&config, "gw.yaml", |_, _| compiled += 1).unwrap();
    assert_eq!(compiled, 7);
}

#[test]
fn a_bad_global_policy_is_refused_even_without_apis() {
    // Before, nothing compiled it until the first API arrived, which it then blocked.
    let config = gatehouse_model::Configuration {
        policy: Some("<policies><outbound><forward-request /></outbound></policies>".to_owned()),
        ..gatehouse_model::Configuration::default()
    };
    let error = compile_configuration(&config, "gateway.yaml", |_, _| {}).unwrap_err();
    assert_eq!(error.kind, crate::ErrorKind::WrongSection, "{error}");
    assert_eq!(check_configuration(&config, "gateway.yaml").len(), 1);
}

#[test]
fn check_configuration_reports_every_problem_once() {
    let config = gatehouse_model::Configuration::from_yaml(
        "gateway.yaml",
        "policy: <policies><inbound><rate-limit calls=\"5\" /></inbound></policies>\napis:\n  - id: a\n    path: a\n    serviceUrl: http://127.0.0.1:9\n    policy: <policies><inbound><base /><frobnicate /></inbound></policies>\n    operations:\n      - {id: x, method: GET, urlTemplate: /x}\n      - {id: y, method: GET, urlTemplate: /y}\n",
    )
    .unwrap();
    let problems = check_configuration(&config, "gateway.yaml");
    let kinds: Vec<crate::ErrorKind> = problems.iter().map(|p| p.kind).collect();
    // The global policy's missing attribute once, and the API's unknown element once
    // (not once per pipeline that merges them).
    assert_eq!(
        kinds,
        [crate::ErrorKind::Missing, crate::ErrorKind::UnknownElement],
        "{problems:?}"
    );
}
