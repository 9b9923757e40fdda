use serde_json::json;

use super::*;

fn vault() -> Vault {
    Vault::from_base64(&base64::engine::general_purpose::STANDARD.encode([7u8; 32])).unwrap()
}

fn stored(id: &str, body: Value) -> Stored {
    Stored {
        kind: Kind::Certificate,
        id: id.to_owned(),
        body,
        revision: 1,
    }
}

#[test]
fn private_keys_are_stored_sealed_and_read_back_plain() {
    // Security: the database never holds a private key in clear.
    let vault = vault();
    let body = json!({"id": "c", "certificatePem": "CERT", "privateKeyPem": "-----BEGIN PRIVATE KEY-----"});
    let sealed = vault.seal(Kind::Certificate, "c", body.clone());
    let text = sealed["privateKeyPem"].as_str().unwrap();
    assert!(text.starts_with(SEALED_PREFIX), "{text}");
    assert!(!text.contains("BEGIN"), "{text}");
    assert_eq!(
        sealed["certificatePem"], "CERT",
        "only the private key is sealed"
    );
    let opened = vault.open(stored("c", sealed)).unwrap();
    assert_eq!(opened.body, body);
}

#[test]
fn a_sealed_key_does_not_open_under_another_id_or_key() {
    let vault = vault();
    let sealed = vault.seal(Kind::Certificate, "c", json!({"privateKeyPem": "secret"}));
    assert!(
        vault.open(stored("other", sealed.clone())).is_err(),
        "bound to its certificate"
    );
    let other =
        Vault::from_base64(&base64::engine::general_purpose::STANDARD.encode([8u8; 32])).unwrap();
    let error = other.open(stored("c", sealed)).unwrap_err();
    assert!(
        error.to_string().contains("wrong encryption key"),
        "{error}"
    );
}

#[test]
fn other_kinds_and_plain_values_pass_through() {
    let vault = vault();
    let api = json!({"id": "a", "privateKeyPem": "not a certificate"});
    assert_eq!(vault.seal(Kind::Api, "a", api.clone()), api);
    assert!(Vault::needs_sealing(
        Kind::Certificate,
        &json!({"privateKeyPem": "legacy plain"})
    ));
    let plain = stored("c", json!({"privateKeyPem": "legacy plain"}));
    assert_eq!(
        vault.open(plain).unwrap().body["privateKeyPem"],
        "legacy plain"
    );
}

#[test]
fn keys_must_be_32_bytes_of_base64() {
    assert!(matches!(
        Vault::from_base64("short"),
        Err(VaultError::BadKey)
    ));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(ENCRYPTION_KEY_FILE);
    let (first, created) = Vault::load_or_create(&file).unwrap();
    assert!(created);
    let (second, created) = Vault::load_or_create(&file).unwrap();
    assert!(!created);
    let sealed = first.seal(Kind::Certificate, "c", json!({"privateKeyPem": "k"}));
    assert_eq!(
        second.open(stored("c", sealed)).unwrap().body["privateKeyPem"],
        "k"
    );
}

#[test]
fn every_secret_is_sealed_and_opens_back() {
    let vault = vault();
    let cases = [
        (
            Kind::Subscription,
            json!({"id": "s", "primaryKey": "pk", "secondaryKey": "sk", "scope": "/apis/a"}),
            &["primaryKey", "secondaryKey"][..],
        ),
        (
            Kind::NamedValue,
            json!({"name": "s", "value": "hunter2", "secret": true}),
            &["value"][..],
        ),
    ];
    for (kind, body, fields) in cases {
        assert!(Vault::needs_sealing(kind, &body));
        let sealed = vault.seal(kind, "s", body.clone());
        assert!(!Vault::needs_sealing(kind, &sealed));
        for field in fields {
            let text = sealed[*field].as_str().unwrap();
            assert!(text.starts_with(SEALED_PREFIX), "{kind:?}.{field}: {text}");
        }
        let opened = vault
            .open(Stored {
                kind,
                id: "s".to_owned(),
                body: sealed,
                revision: 1,
            })
            .unwrap();
        assert_eq!(opened.body, body);
    }
    // A plain named value is not a secret.
    let plain = json!({"name": "p", "value": "visible"});
    assert_eq!(vault.seal(Kind::NamedValue, "p", plain.clone()), plain);
    assert!(!Vault::needs_sealing(Kind::NamedValue, &plain));
}

#[test]
fn a_value_that_looks_sealed_is_sealed_again() {
    // A user's secret that happens to start with the prefix must not be stored in
    // clear (nor wedge every later read).
    let vault = vault();
    let body = json!({"name": "n", "secret": true, "value": "gatehouse:v1:AAAA"});
    let sealed = vault.seal(Kind::NamedValue, "n", body.clone());
    assert_ne!(sealed["value"], body["value"]);
    let opened = vault
        .open(Stored {
            kind: Kind::NamedValue,
            id: "n".to_owned(),
            body: sealed,
            revision: 1,
        })
        .unwrap();
    assert_eq!(opened.body, body);
}

#[test]
fn texts_and_the_key_check_open_only_with_the_same_key_and_purpose() {
    let vault = vault();
    let sealed = vault.seal_text("gateway-key\nedge", "k1");
    assert_eq!(
        vault.open_text("gateway-key\nedge", &sealed).as_deref(),
        Some("k1")
    );
    assert_eq!(vault.open_text("gateway-key\nother", &sealed), None);
    assert_eq!(
        vault.open_text("x", "legacy plain").as_deref(),
        Some("legacy plain")
    );
    let other =
        Vault::from_base64(&base64::engine::general_purpose::STANDARD.encode([8u8; 32])).unwrap();
    let check = vault.key_check();
    assert!(vault.opens_key_check(&check));
    assert!(!other.opens_key_check(&check));
    assert!(!vault.opens_key_check("plain text"));
}
