use super::*;

const EXAMPLE: &str = r#"
namedValues:
  - name: greeting
    value: hello
  - name: token
    value: s3cr3t
    secret: true
backends:
  - id: users
    url: http://127.0.0.1:9000/api
    connectTimeout: 2s
apis:
  - id: users
    path: users
    backendId: users
    operations:
      - id: get-user
        method: GET
        urlTemplate: /users/{id}
products:
  - id: starter
    apis: [users]
subscriptions:
  - id: alice
    scope: /products/starter
    primaryKey: primary-key-0001
    secondaryKey: secondary-key-0001
"#;

#[test]
fn example_document_parses_and_validates() {
    let config = Configuration::load("example.yaml", EXAMPLE).unwrap();
    assert_eq!(config.apis[0].operations[0].url_template, "/users/{id}");
    assert_eq!(
        config.backends[0].connect_timeout,
        std::time::Duration::from_secs(2)
    );
    assert_eq!(
        config.subscriptions[0].scope,
        SubscriptionScope::Product("starter".to_owned())
    );
    assert!(
        config.apis[0].subscription_required,
        "APIM's default is true"
    );
    assert_eq!(
        config.apis[0].subscription_key_parameter_names.header,
        "Ocp-Apim-Subscription-Key"
    );
}

#[test]
fn unknown_field_is_rejected_with_line_and_column() {
    let err = Configuration::from_yaml("gw.yaml", "apis:\n  - id: a\n    pathh: x\n").unwrap_err();
    let ConfigError::Yaml {
        origin,
        line,
        column,
        message,
    } = &err
    else {
        panic!("expected a YAML error, got {err:?}");
    };
    assert_eq!(origin, "gw.yaml");
    assert_eq!(*line, Some(3));
    assert!(column.is_some());
    assert!(message.contains("pathh"), "{message}");
    assert!(err.to_string().starts_with("gw.yaml:3:"), "{err}");
}

#[test]
fn dangling_references_and_duplicates_are_all_reported() {
    let text = r"
apis:
  - id: a
    path: x
    backendId: nope
  - id: a
    path: x
products:
  - id: p
    apis: [missing]
subscriptions:
  - id: s
    scope: /products/other
    primaryKey: short
";
    let err = Configuration::load("gw.yaml", text).unwrap_err();
    let ConfigError::Invalid { errors, .. } = err else {
        panic!("expected validation errors")
    };
    let paths: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
    assert!(paths.contains(&"apis[a].backendId"), "{paths:?}");
    assert!(paths.contains(&"apis[a]"), "duplicate id: {paths:?}");
    assert!(
        paths.contains(&"apis[a].path"),
        "duplicate route: {paths:?}"
    );
    assert!(paths.contains(&"products[p].apis"), "{paths:?}");
    assert!(paths.contains(&"subscriptions[s].scope"), "{paths:?}");
    assert!(paths.contains(&"subscriptions[s].primaryKey"), "{paths:?}");
}

#[test]
fn subscription_scopes_round_trip_in_apim_notation() {
    for (text, scope) in [
        ("/apis", SubscriptionScope::AllApis),
        ("/apis/", SubscriptionScope::AllApis),
        ("/apis/echo", SubscriptionScope::Api("echo".to_owned())),
        (
            "/products/gold",
            SubscriptionScope::Product("gold".to_owned()),
        ),
    ] {
        assert_eq!(
            SubscriptionScope::parse(text).as_ref(),
            Ok(&scope),
            "{text}"
        );
    }
    for bad in ["apis", "/users/x", "/products/", "/apis/a/b", ""] {
        assert!(
            SubscriptionScope::parse(bad).is_err(),
            "{bad} should be rejected"
        );
    }
}

#[test]
fn secret_named_values_do_not_leak_through_debug() {
    // Security: secrets must never reach logs through `{:?}`.
    let value = NamedValue {
        name: "k".into(),
        value: "hunter2".into(),
        secret: true,
    };
    assert!(!format!("{value:?}").contains("hunter2"));
}

#[test]
fn a_partial_document_laid_over_a_whole_one_replaces_by_id_and_keeps_the_rest() {
    let mut under = Configuration::from_yaml(
        "server",
        "policy: <policies/>\napis:\n  - id: a\n    path: a\n    serviceUrl: http://127.0.0.1:9\n  - id: b\n    path: b\n    serviceUrl: http://127.0.0.1:9\ngateways:\n  - id: edge\n    apis: [a]\n",
    )
    .unwrap();
    let top = Configuration::from_yaml(
        "file",
        "apis:\n  - id: b\n    path: bee\n    serviceUrl: http://127.0.0.1:9\n  - id: c\n    path: c\n    serviceUrl: http://127.0.0.1:9\ngateways:\n  - id: edge\n    apis: [a, b, c]\n",
    )
    .unwrap();
    under.overlay(top);
    let apis: Vec<(&str, &str)> = under
        .apis
        .iter()
        .map(|a| (a.id.as_str(), a.path.as_str()))
        .collect();
    assert_eq!(
        apis,
        [("a", "a"), ("b", "bee"), ("c", "c")],
        "replaced in place, added at the end"
    );
    assert_eq!(under.gateways[0].apis, ["a", "b", "c"]);
    assert_eq!(under.policy.as_deref(), Some("<policies/>"), "kept");
    under.validate().unwrap();
}
