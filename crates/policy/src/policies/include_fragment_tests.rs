use gatehouse_model::Configuration;
use http::Method;

use crate::test_util::{facts, header, request};
use crate::{Counters, ErrorKind, Flow, Pipeline, PolicyError, check_configuration, compile_configuration};

/// The pipeline of the only operation of `yaml`'s only API.
fn pipeline(yaml: &str) -> Result<Pipeline, PolicyError> {
    let config = Configuration::from_yaml("gateway.yaml", yaml).unwrap();
    let mut found = None;
    compile_configuration(&config, "gateway.yaml", |key, pipeline| {
        if key.operation.is_some() && key.product.is_none() {
            found = Some(pipeline);
        }
    })?;
    Ok(found.unwrap())
}

const FRAGMENTS: &str = r#"fragments:
  - id: tag
    description: tags the request
    value: |
      <fragment>
        <set-variable name="tagged" value="@(context.Request.Method)" />
        <set-header name="X-Tag" exists-action="override"><value>@((string)context.Variables["tagged"])</value></set-header>
      </fragment>
  - id: outer
    value: <fragment><include-fragment fragment-id="tag" /><set-header name="X-Outer" exists-action="override"><value>1</value></set-header></fragment>
"#;

fn api(policy: &str) -> String {
    format!(
        "{FRAGMENTS}apis:\n  - id: a\n    path: a\n    serviceUrl: http://127.0.0.1:9\n    policy: '{policy}'\n    operations:\n      - {{id: get, method: GET, urlTemplate: /}}\n"
    )
}

#[test]
fn an_included_fragment_runs_where_it_is_and_fragments_nest() {
    let pipeline = pipeline(&api(
        r#"<policies><inbound><include-fragment fragment-id="outer" /></inbound></policies>"#,
    ))
    .unwrap();
    let mut state = request(Method::GET, "/", "", &[]);
    assert_eq!(pipeline.inbound(&facts(1), &Counters::new(), &mut state), Flow::Continue);
    assert_eq!(header(&state.headers, "x-tag"), Some("GET"));
    assert_eq!(header(&state.headers, "x-outer"), Some("1"));
}

#[test]
fn a_fragments_policies_are_checked_for_the_section_they_are_included_in() {
    let yaml = "fragments:\n  - id: limits\n    value: <fragment><rate-limit calls=\"5\" renewal-period=\"60\" /></fragment>\napis:\n  - id: x\n    path: x\n    serviceUrl: http://127.0.0.1:9\n    policy: <policies><inbound><include-fragment fragment-id=\"limits\" /></inbound><outbound><include-fragment fragment-id=\"limits\" /></outbound></policies>\n    operations:\n      - {id: get, method: GET, urlTemplate: /}\n";
    let config = Configuration::from_yaml("gateway.yaml", yaml).unwrap();
    let problems = check_configuration(&config, "gateway.yaml");
    assert_eq!(problems.len(), 1, "fine in inbound, not in outbound: {problems:?}");
    let problem = &problems[0];
    assert_eq!(problem.kind, ErrorKind::WrongSection);
    assert!(problem.to_string().contains("fragments[limits]"), "{problem}");
}

#[test]
fn unknown_fragments_cycles_and_bad_fragments_are_refused() {
    let error = pipeline(&api(
        r#"<policies><inbound><include-fragment fragment-id="nope" /></inbound></policies>"#,
    ))
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::UnknownFragment);
    assert!(error.message.contains("defined: tag, outer"), "{error}");

    let cycle = "fragments:\n  - id: a\n    value: <fragment><include-fragment fragment-id=\"b\" /></fragment>\n  - id: b\n    value: <fragment><include-fragment fragment-id=\"a\" /></fragment>\napis:\n  - id: x\n    path: x\n    serviceUrl: http://127.0.0.1:9\n    policy: <policies><inbound><include-fragment fragment-id=\"a\" /></inbound></policies>\n    operations:\n      - {id: get, method: GET, urlTemplate: /}\n";
    let error = pipeline(cycle).unwrap_err();
    assert!(error.message.contains("cycle"), "{error}");

    let not_a_fragment = "fragments:\n  - id: p\n    value: <policies />\n";
    let config = Configuration::from_yaml("gateway.yaml", not_a_fragment).unwrap();
    let problems = check_configuration(&config, "gateway.yaml");
    assert!(problems[0].message.contains("root must be <fragment>"), "{problems:?}");
}
