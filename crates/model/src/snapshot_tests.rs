use sha2::{Digest as _, Sha256};

use super::*;
use crate::Gateway;

/// Three APIs, products over them (one empty), subscriptions of every scope kind, and
/// one of every entity a gateway gets whole.
const SOURCE: &str = r"
policy: <policies><inbound><base/></inbound></policies>
namedValues:
  - name: greeting
    value: hello
  - name: token
    value: s3cr3t
    secret: true
backends:
  - id: be
    url: http://127.0.0.1:9000
    connectTimeout: 1500ms
certificates:
  - id: cert
    certificatePem: |
      -----BEGIN CERTIFICATE-----
      Z2F0ZWhvdXNlIHRlc3QgY2VydGlmaWNhdGU=
      -----END CERTIFICATE-----
    privateKeyPem: |
      -----BEGIN PRIVATE KEY-----
      Z2F0ZWhvdXNlIHRlc3Qga2V5
      -----END PRIVATE KEY-----
hostnames:
  - hostname: api.example.com
    certificateId: cert
apis:
  - id: a
    path: a
    backendId: be
  - id: b
    path: b
    backendId: be
  - id: c
    path: c
    serviceUrl: http://127.0.0.1:9001
products:
  - id: p-ab
    apis: [a, b]
    subscriptionRequired: false
    policy: <policies/>
  - id: p-c
    apis: [c]
  - id: p-empty
    apis: []
  - id: p-bc
    apis: [b, c]
subscriptions:
  - id: s-pab
    scope: /products/p-ab
    primaryKey: key-s-pab-0001
  - id: s-pc
    scope: /products/p-c
    primaryKey: key-s-pc-00001
  - id: s-pempty
    scope: /products/p-empty
    primaryKey: key-s-pempty-1
  - id: s-a
    scope: /apis/a
    primaryKey: key-s-a-000001
  - id: s-c
    scope: /apis/c
    primaryKey: key-s-c-000001
  - id: s-all
    scope: /apis
    primaryKey: key-s-all-0001
gateways:
  - id: g-a
    apis: [a]
";

fn source() -> Configuration {
    Configuration::load("source.yaml", SOURCE).unwrap()
}

fn gateway(apis: &[&str]) -> Gateway {
    Gateway {
        id: "g".to_owned(),
        display_name: None,
        location: None,
        apis: apis.iter().map(|&id| id.to_owned()).collect(),
        description: None,
    }
}

struct Case {
    name: &'static str,
    assigned: &'static [&'static str],
    apis: &'static [&'static str],
    products: &'static [(&'static str, &'static [&'static str])],
    subscriptions: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "one API: products containing it, narrowed",
        assigned: &["a"],
        apis: &["a"],
        products: &[("p-ab", &["a"])],
        subscriptions: &["s-pab", "s-a", "s-all"],
    },
    Case {
        name: "two APIs",
        assigned: &["b", "c"],
        apis: &["b", "c"],
        products: &[("p-ab", &["b"]), ("p-c", &["c"]), ("p-bc", &["b", "c"])],
        subscriptions: &["s-pab", "s-pc", "s-c", "s-all"],
    },
    Case {
        name: "every API, assigned out of order: the configuration's order is kept",
        assigned: &["c", "a", "b"],
        apis: &["a", "b", "c"],
        products: &[
            ("p-ab", &["a", "b"]),
            ("p-c", &["c"]),
            ("p-bc", &["b", "c"]),
        ],
        subscriptions: &["s-pab", "s-pc", "s-a", "s-c", "s-all"],
    },
    Case {
        name: "no API: only all-API subscriptions",
        assigned: &[],
        apis: &[],
        products: &[],
        subscriptions: &["s-all"],
    },
    Case {
        name: "an assigned id with no API is ignored",
        assigned: &["gone", "a", "a"],
        apis: &["a"],
        products: &[("p-ab", &["a"])],
        subscriptions: &["s-pab", "s-a", "s-all"],
    },
];

#[test]
fn for_gateway_keeps_exactly_what_the_gateway_serves() {
    let source = source();
    let before = source.clone();
    for case in CASES {
        let served = source.for_gateway(&gateway(case.assigned));
        let name = case.name;

        let apis: Vec<&str> = served.apis.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(apis, case.apis, "{name}: apis");
        let products: Vec<(&str, Vec<&str>)> = served
            .products
            .iter()
            .map(|p| (p.id.as_str(), p.apis.iter().map(String::as_str).collect()))
            .collect();
        let expected: Vec<(&str, Vec<&str>)> = case
            .products
            .iter()
            .map(|(id, apis)| (*id, apis.to_vec()))
            .collect();
        assert_eq!(products, expected, "{name}: products");
        let subscriptions: Vec<&str> = served.subscriptions.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(subscriptions, case.subscriptions, "{name}: subscriptions");

        // Whole: every named value, backend, certificate, hostname, the global policy.
        assert_eq!(served.policy, source.policy, "{name}");
        assert_eq!(served.named_values, source.named_values, "{name}");
        assert_eq!(served.backends, source.backends, "{name}");
        assert_eq!(served.certificates, source.certificates, "{name}");
        assert_eq!(served.hostnames, source.hostnames, "{name}");
        // The gateway itself, its `apis` narrowed to those served; no other.
        let itself = gateway(case.assigned);
        let listed: Vec<(&str, Vec<&str>)> = served
            .gateways
            .iter()
            .map(|g| (g.id.as_str(), g.apis.iter().map(String::as_str).collect()))
            .collect();
        let mut narrowed: Vec<&str> = Vec::new();
        for id in case.assigned {
            if case.apis.contains(id) && !narrowed.contains(id) {
                narrowed.push(id);
            }
        }
        assert_eq!(listed, [(itself.id.as_str(), narrowed)], "{name}: gateways");
        assert_eq!(served.gateways[0].location, itself.location, "{name}");

        // Kept entities are unchanged, but for a product's `apis`.
        for api in &served.apis {
            assert!(source.apis.contains(api), "{name}: {}", api.id);
        }
        for product in &served.products {
            let original = source.products.iter().find(|p| p.id == product.id).unwrap();
            assert_eq!(
                Product {
                    apis: original.apis.clone(),
                    ..product.clone()
                },
                *original,
                "{name}"
            );
        }

        // What a valid configuration gives a gateway is valid on its own.
        served.validate().unwrap();
    }
    assert_eq!(source, before, "for_gateway is pure");
}

#[test]
fn gateway_snapshot_of_the_declared_gateway() {
    let source = source();
    let declared = &source.gateways[0];
    let snapshot = Snapshot::new(7, &declared.id, source.for_gateway(declared));
    assert_eq!(snapshot.gateway_id, "g-a");
    assert_eq!(snapshot.revision, 7);
    snapshot.verify().unwrap();
}

#[test]
fn checksum_is_the_sha256_of_the_compact_json() {
    // Independent values: Python's hashlib.sha256 of the literal JSON.
    assert_eq!(
        Configuration::default().checksum(),
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    let config = Configuration::load(
        "c.yaml",
        "apis:\n  - id: a\n    path: a\n    serviceUrl: http://x\n",
    )
    .unwrap();
    assert_eq!(
        serde_json::to_string(&config).unwrap(),
        r#"{"apis":[{"id":"a","path":"a","protocols":["http","https"],"serviceUrl":"http://x","subscriptionRequired":true,"subscriptionKeyParameterNames":{"header":"Ocp-Apim-Subscription-Key","query":"subscription-key"},"operations":[]}]}"#
    );
    assert_eq!(
        config.checksum(),
        "c1bed4a5621d2dd6a73771e86534252a9ee44dac4eb31f6738f0ee66dce7a972"
    );
    let source = source();
    assert_eq!(
        source.checksum(),
        hex::encode(Sha256::digest(serde_json::to_vec(&source).unwrap()))
    );
}

#[test]
fn checksum_ignores_how_the_document_was_written() {
    let a = Configuration::from_yaml(
        "a.yaml",
        "apis:\n  - id: a\n    path: a\n    serviceUrl: http://x\nnamedValues:\n  - {name: n, value: v}\n",
    )
    .unwrap();
    let b = Configuration::from_yaml(
        "b.yaml",
        "namedValues: [{value: v, name: n, secret: false}]\napis:\n  - serviceUrl: http://x\n    path: a\n    id: a\n    protocols: [http, https]\n",
    )
    .unwrap();
    assert_eq!(a.checksum(), b.checksum());
    // A list in another order is another configuration.
    let mut reordered = source();
    reordered.apis.reverse();
    assert_ne!(reordered.checksum(), source().checksum());
}

#[test]
fn snapshots_survive_a_json_round_trip_and_verify() {
    let snapshot = Snapshot::new(42, "g-a", source().for_gateway(&gateway(&["a", "b"])));
    let json = serde_json::to_string(&snapshot).unwrap();
    assert!(
        json.starts_with(r#"{"revision":42,"gatewayId":"g-a","configuration":{"#),
        "{json}"
    );
    assert!(
        json.ends_with(&format!(r#","checksum":"{}"}}"#, snapshot.checksum)),
        "{json}"
    );
    let back: Snapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snapshot);
    back.verify().unwrap();

    let mut upper = snapshot;
    upper.checksum = upper.checksum.to_ascii_uppercase();
    upper.verify().unwrap();
}

#[test]
fn a_changed_snapshot_fails_verification() {
    let snapshot = Snapshot::new(3, "g", source().for_gateway(&gateway(&["a"])));
    let mut tampered = snapshot.clone();
    tampered.configuration.subscriptions[0].primary_key = "stolen-key-0001".to_owned();
    let err = tampered.verify().unwrap_err();
    let SnapshotError::ChecksumMismatch {
        expected, actual, ..
    } = &err;
    assert_eq!(*expected, snapshot.checksum);
    assert_ne!(actual, expected);
    assert!(err.to_string().contains("fetch a new snapshot"), "{err}");

    // The checksum covers every field: the revision and the gateway id too.
    let mut older = snapshot.clone();
    older.revision = 2;
    assert!(older.verify().is_err(), "a replayed revision is caught");
    let mut other = snapshot.clone();
    other.gateway_id = "h".to_owned();
    assert!(other.verify().is_err());

    let mut truncated = snapshot.clone();
    truncated.checksum.pop();
    assert!(truncated.verify().is_err());

    let json = serde_json::to_string(&snapshot)
        .unwrap()
        .replace("key-s-all-0001", "key-s-all-0002");
    let back: Snapshot = serde_json::from_str(&json).unwrap();
    assert!(back.verify().is_err());
}

#[test]
fn snapshot_rejects_unknown_fields() {
    let json = r#"{"revision":1,"gatewayId":"g","configuration":{},"checksum":"x","extra":1}"#;
    assert!(serde_json::from_str::<Snapshot>(json).is_err());
}
