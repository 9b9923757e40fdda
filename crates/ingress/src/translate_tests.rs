#![allow(clippy::needless_pass_by_value)] // test fixtures built from json! values
use k8s_openapi::ByteString;
use serde_json::{Value, json};

use super::*;

fn ingress(namespace: &str, name: &str, class: Option<&str>, spec: Value) -> Ingress {
    let mut spec = spec;
    if let Some(class) = class {
        spec["ingressClassName"] = json!(class);
    }
    serde_json::from_value(json!({
        "metadata": {"namespace": namespace, "name": name},
        "spec": spec,
    }))
    .unwrap()
}

fn service(namespace: &str, name: &str, ports: Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"ports": ports},
    }))
    .unwrap()
}

fn tls_secret(namespace: &str, name: &str, cert: &str, key: &str) -> Secret {
    let mut secret: Secret = serde_json::from_value(json!({
        "metadata": {"namespace": namespace, "name": name},
        "type": "kubernetes.io/tls",
    }))
    .unwrap();
    secret.data = Some(
        [
            ("tls.crt".to_owned(), ByteString(cert.as_bytes().to_vec())),
            ("tls.key".to_owned(), ByteString(key.as_bytes().to_vec())),
        ]
        .into(),
    );
    secret
}

fn path(path: &str, path_type: &str, service: &str, port: Value) -> Value {
    json!({
        "path": path,
        "pathType": path_type,
        "backend": {"service": {"name": service, "port": port}},
    })
}

fn users_service() -> Service {
    service(
        "shop",
        "users",
        json!([{"name": "http", "port": 8080}, {"name": "admin", "port": 9090}]),
    )
}

fn routes(translation: &Translation) -> Vec<(String, Vec<String>, String, String, String)> {
    translation
        .configuration
        .apis
        .iter()
        .map(|api| {
            (
                api.id.clone(),
                api.hostnames.clone(),
                api.path.clone(),
                api.operations[0].url_template.clone(),
                api.service_url.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn messages(translation: &Translation) -> Vec<String> {
    translation
        .problems
        .iter()
        .map(|p| format!("{}: {}", p.ingress, p.message))
        .collect()
}

#[test]
fn rules_become_open_apis_that_forward_the_path_unchanged() {
    let ingresses = [ingress(
        "shop",
        "users",
        Some(APIM_CLASS),
        json!({"rules": [{
            "host": "API.example.com",
            "http": {"paths": [
                path("/users", "Prefix", "users", json!({"number": 8080})),
                path("/users/me", "Exact", "users", json!({"name": "admin"})),
                path("/", "ImplementationSpecific", "users", json!({"name": "http"})),
            ]},
        }]}),
    )];
    let translation = translate(&ingresses, &[users_service()], &[]);
    assert_eq!(translation.problems, []);
    assert_eq!(
        routes(&translation),
        [
            (
                "k8s.shop.users.1".to_owned(),
                vec!["api.example.com".to_owned()],
                "users".to_owned(),
                "/*".to_owned(),
                "http://users.shop.svc:8080/users".to_owned()
            ),
            (
                "k8s.shop.users.2".to_owned(),
                vec!["api.example.com".to_owned()],
                "users/me".to_owned(),
                "/".to_owned(),
                "http://users.shop.svc:9090/users/me".to_owned()
            ),
            (
                "k8s.shop.users.3".to_owned(),
                vec!["api.example.com".to_owned()],
                String::new(),
                "/*".to_owned(),
                "http://users.shop.svc:8080".to_owned()
            ),
        ]
    );
    for api in &translation.configuration.apis {
        assert!(!api.subscription_required, "Ingress routes need no key");
        assert_eq!(api.operations[0].method, "*");
    }
    translation.configuration.validate().unwrap();
    assert_eq!(translation.ingresses.len(), 1);
}

#[test]
fn only_the_served_classes_are_read_by_name_or_annotation() {
    let spec = json!({"rules": [{"http": {"paths": [path("/a", "Prefix", "users", json!({"number": 8080}))]}}]});
    let mut annotated = ingress("shop", "annotated", None, spec.clone());
    annotated.metadata.annotations = Some(
        [(
            "kubernetes.io/ingress.class".to_owned(),
            APIM_CLASS.to_owned(),
        )]
        .into(),
    );
    let ingresses = [
        ingress("shop", "apim", Some(APIM_CLASS), spec.clone()),
        ingress("shop", "ours", Some(GATEHOUSE_CLASS), spec.clone()),
        ingress("shop", "nginx", Some("nginx"), spec.clone()),
        ingress("shop", "unclassed", None, spec),
        annotated,
    ];
    let translation = translate(&ingresses, &[users_service()], &[]);
    let read: Vec<String> = translation
        .ingresses
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(read, ["shop/annotated", "shop/apim", "shop/ours"]);
    // All three claim `/a` on every host: the first in (namespace, name) order keeps it.
    assert_eq!(translation.configuration.apis.len(), 1);
    assert_eq!(translation.configuration.apis[0].id, "k8s.shop.annotated.1");
    assert_eq!(
        messages(&translation),
        [
            "shop/apim: path `/a` (Prefix) on every host is already routed by an earlier Ingress; left out",
            "shop/ours: path `/a` (Prefix) on every host is already routed by an earlier Ingress; left out",
        ]
    );
}

#[test]
fn a_broken_route_is_left_out_with_its_reason_and_the_rest_served() {
    let ingresses = [ingress(
        "shop",
        "mixed",
        Some(GATEHOUSE_CLASS),
        json!({"rules": [{"http": {"paths": [
            path("/ok", "Prefix", "users", json!({"number": 8080})),
            path("/missing", "Prefix", "nowhere", json!({"number": 80})),
            path("/badport", "Prefix", "users", json!({"name": "grpc"})),
            path("/noport", "Prefix", "users", Value::Null),
            path("/range", "Prefix", "users", json!({"number": 70000})),
            path("/odd", "Regex", "users", json!({"number": 8080})),
            path("relative", "Prefix", "users", json!({"number": 8080})),
            path("/a//b", "Prefix", "users", json!({"number": 8080})),
        ]}}]}),
    )];
    let translation = translate(&ingresses, &[users_service()], &[]);
    assert_eq!(translation.configuration.apis.len(), 1);
    assert_eq!(translation.configuration.apis[0].path, "ok");
    let messages = messages(&translation);
    let expected = [
        "shop/mixed: path `/missing`: Service shop/nowhere does not exist",
        "shop/mixed: path `/badport`: Service shop/users has no port named `grpc`",
        "shop/mixed: path `/noport`: the backend names no port of Service shop/users",
        "shop/mixed: path `/range`: port 70000 of Service shop/users is out of range",
        "shop/mixed: path `/odd`: unknown pathType `Regex` (Exact, Prefix or ImplementationSpecific)",
        "shop/mixed: path `relative` does not start with `/`",
    ];
    for (got, want) in messages.iter().zip(expected) {
        assert_eq!(got, want);
    }
    assert_eq!(messages.len(), 7, "{messages:#?}");
    assert!(
        messages[6].starts_with("shop/mixed: path `/a//b`:"),
        "{}",
        messages[6]
    );
    translation.configuration.validate().unwrap();
}

#[test]
fn services_are_looked_up_in_the_ingress_namespace() {
    let ingresses = [ingress(
        "other",
        "cross",
        Some(GATEHOUSE_CLASS),
        json!({"rules": [{"http": {"paths": [path("/x", "Prefix", "users", json!({"number": 8080}))]}}]}),
    )];
    let translation = translate(&ingresses, &[users_service()], &[]);
    assert!(translation.configuration.apis.is_empty());
    assert_eq!(
        messages(&translation),
        ["other/cross: path `/x`: Service other/users does not exist"]
    );
}

#[test]
fn exact_and_prefix_on_one_path_are_two_routes_and_hosts_keep_them_apart() {
    let ingresses = [
        ingress(
            "shop",
            "a",
            Some(GATEHOUSE_CLASS),
            json!({"rules": [
                {"host": "a.example.com", "http": {"paths": [
                    path("/users", "Exact", "users", json!({"number": 8080})),
                    path("/users", "Prefix", "users", json!({"number": 8080})),
                ]}},
                {"host": "b.example.com", "http": {"paths": [
                    path("/users", "Prefix", "users", json!({"number": 8080})),
                ]}},
            ]}),
        ),
        ingress(
            "shop",
            "b",
            Some(GATEHOUSE_CLASS),
            json!({"rules": [{"host": "a.example.com", "http": {"paths": [
                path("/users/", "Prefix", "users", json!({"number": 8080})),
            ]}}]}),
        ),
    ];
    let translation = translate(&ingresses, &[users_service()], &[]);
    assert_eq!(translation.configuration.apis.len(), 3);
    assert_eq!(
        messages(&translation),
        [
            "shop/b: path `/users/` (Prefix) on a.example.com is already routed by an earlier Ingress; left out"
        ]
    );
}

#[test]
fn the_default_backend_serves_what_no_rule_does_and_only_one_ingress_sets_it() {
    let spec = json!({"defaultBackend": {"service": {"name": "users", "port": {"number": 8080}}}});
    let ingresses = [
        ingress("shop", "first", Some(GATEHOUSE_CLASS), spec.clone()),
        ingress("shop", "second", Some(GATEHOUSE_CLASS), spec),
    ];
    let translation = translate(&ingresses, &[users_service()], &[]);
    assert_eq!(
        routes(&translation),
        [(
            "k8s.shop.first.1".to_owned(),
            Vec::<String>::new(),
            String::new(),
            "/*".to_owned(),
            "http://users.shop.svc:8080".to_owned()
        )]
    );
    assert_eq!(
        messages(&translation),
        ["shop/second: the default backend is already set by Ingress shop/first; left out"]
    );
}

#[test]
fn tls_secrets_become_certificates_presented_for_their_hosts() {
    let ca = gatehouse_test_support::pki::TestCa::new("Ingress CA");
    let site = ca.server(&["api.example.com", "www.example.com"]);
    let other = ca.server(&["api.example.com"]);
    let spec = |secret: &str, hosts: Value| {
        json!({
            "tls": [{"hosts": hosts, "secretName": secret}],
            "rules": [{"host": "api.example.com", "http": {"paths": [path("/", "Prefix", "users", json!({"number": 8080}))]}}],
        })
    };
    let ingresses = [
        ingress(
            "shop",
            "site",
            Some(GATEHOUSE_CLASS),
            spec("site-tls", json!(["API.example.com", "www.example.com"])),
        ),
        ingress(
            "shop",
            "zz-late",
            Some(GATEHOUSE_CLASS),
            spec("other-tls", json!(["api.example.com"])),
        ),
    ];
    let secrets = [
        tls_secret("shop", "site-tls", &site.cert_pem, &site.key_pem),
        tls_secret("shop", "other-tls", &other.cert_pem, &other.key_pem),
    ];
    let translation = translate(&ingresses, &[users_service()], &secrets);
    let config = &translation.configuration;
    assert_eq!(config.certificates.len(), 1, "the unused one is left out");
    assert_eq!(config.certificates[0].id, "k8s.shop.site-tls");
    assert_eq!(
        config.certificates[0].private_key_pem.as_deref(),
        Some(site.key_pem.as_str())
    );
    let hosts: Vec<(&str, Option<&str>)> = config
        .hostnames
        .iter()
        .map(|h| (h.hostname.as_str(), h.certificate_id.as_deref()))
        .collect();
    assert_eq!(
        hosts,
        [
            ("api.example.com", Some("k8s.shop.site-tls")),
            ("www.example.com", Some("k8s.shop.site-tls")),
        ]
    );
    let messages = messages(&translation);
    assert!(
        messages.contains(&"shop/zz-late: TLS for `api.example.com` is already given by Ingress shop/site; left out".to_owned()),
        "{messages:#?}"
    );
    config.validate().unwrap();
}

#[test]
fn a_bad_tls_secret_is_left_out_without_its_key_in_the_message() {
    let ca = gatehouse_test_support::pki::TestCa::new("Ingress CA");
    let site = ca.server(&["api.example.com"]);
    let wrong_key = ca.server(&["api.example.com"]).key_pem;
    let spec =
        |secret: &str| json!({"tls": [{"hosts": ["api.example.com"], "secretName": secret}]});
    let mut no_key: Secret = tls_secret("shop", "no-key", &site.cert_pem, "");
    if let Some(data) = no_key.data.as_mut() {
        data.remove("tls.key");
    }
    let ingresses = [
        ingress("shop", "a", Some(GATEHOUSE_CLASS), spec("missing")),
        ingress("shop", "b", Some(GATEHOUSE_CLASS), spec("no-key")),
        ingress("shop", "c", Some(GATEHOUSE_CLASS), spec("mismatch")),
        ingress(
            "shop",
            "d",
            Some(GATEHOUSE_CLASS),
            json!({"tls": [{"hosts": ["x.example.com"]}]}),
        ),
    ];
    let secrets = [
        no_key,
        tls_secret("shop", "mismatch", &site.cert_pem, &wrong_key),
    ];
    let translation = translate(&ingresses, &[], &secrets);
    assert!(translation.configuration.certificates.is_empty());
    assert!(translation.configuration.hostnames.is_empty());
    let messages = messages(&translation);
    assert_eq!(
        messages[0],
        "shop/a: TLS Secret shop/missing: does not exist"
    );
    assert_eq!(
        messages[1],
        "shop/b: TLS Secret shop/no-key: has no `tls.key`"
    );
    assert!(
        messages[2].starts_with("shop/c: TLS Secret shop/mismatch: cannot be used:"),
        "{}",
        messages[2]
    );
    assert!(!messages[2].contains("PRIVATE KEY"), "{}", messages[2]);
    assert_eq!(
        messages[3],
        "shop/d: a `tls` entry names no secretName; left out"
    );
}
