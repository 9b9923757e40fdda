use serde_json::json;

use super::*;

#[test]
fn put_fills_the_id_and_rejects_a_different_one() {
    let body = prepare_put(Kind::Api, "echo", json!({"path": "echo"}), None).unwrap();
    assert_eq!(body["id"], "echo");
    let error = prepare_put(Kind::Api, "echo", json!({"id": "other"}), None).unwrap_err();
    assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
    let body = prepare_put(Kind::NamedValue, "token", json!({"value": "x"}), None).unwrap();
    assert_eq!(body["name"], "token", "named values are identified by name");
}

#[test]
fn new_subscriptions_get_fresh_keys_and_updates_keep_them() {
    let created = prepare_put(Kind::Subscription, "s", json!({"scope": "/apis"}), None).unwrap();
    let primary = created["primaryKey"].as_str().unwrap().to_owned();
    assert!(primary.len() >= 32);
    assert_ne!(created["primaryKey"], created["secondaryKey"]);
    let updated = prepare_put(
        Kind::Subscription,
        "s",
        json!({"scope": "/apis", "state": "suspended"}),
        Some(&created),
    )
    .unwrap();
    assert_eq!(
        updated["primaryKey"],
        primary.as_str(),
        "omitted write-only fields are kept"
    );
}

#[test]
fn write_only_fields_are_never_shown() {
    // Security: keys, secret values and private keys never leave through the API.
    let subscription =
        json!({"id": "s", "scope": "/apis", "primaryKey": "k1", "secondaryKey": "k2"});
    let shown = redact(Kind::Subscription, &subscription);
    assert!(shown.get("primaryKey").is_none() && shown.get("secondaryKey").is_none());
    let secret = json!({"name": "n", "value": "hunter2", "secret": true});
    assert!(redact(Kind::NamedValue, &secret).get("value").is_none());
    let plain = json!({"name": "n", "value": "visible"});
    assert_eq!(redact(Kind::NamedValue, &plain)["value"], "visible");
    let certificate = json!({"id": "c", "certificatePem": "...", "privateKeyPem": "KEY"});
    assert!(
        redact(Kind::Certificate, &certificate)
            .get("privateKeyPem")
            .is_none()
    );
}

#[test]
fn stored_documents_become_a_configuration_and_back() {
    let stored = vec![
        Stored {
            kind: Kind::Api,
            id: "a".into(),
            body: json!({"id": "a", "path": "a", "operations": []}),
            revision: 1,
        },
        Stored {
            kind: Kind::Policy,
            id: GLOBAL_POLICY_ID.into(),
            body: json!({"value": "<policies/>"}),
            revision: 2,
        },
    ];
    let config = configuration(&stored).unwrap();
    assert_eq!(config.apis[0].id, "a");
    assert_eq!(config.policy.as_deref(), Some("<policies/>"));
    assert_eq!(
        find(&config, Kind::Policy, GLOBAL_POLICY_ID).unwrap()["value"],
        "<policies/>"
    );
    assert!(find(&config, Kind::Api, "missing").is_none());
}

#[test]
fn a_secret_named_value_becomes_plain_only_with_its_value_given_again() {
    // Security: `secret: false` must not reveal the stored secret.
    let stored = json!({"name": "n", "value": "hunter2", "secret": true});
    let error = prepare_put(
        Kind::NamedValue,
        "n",
        json!({"secret": false}),
        Some(&stored),
    )
    .unwrap_err();
    assert!(error.to_string().contains("give `value` again"), "{error}");
    let omitted = prepare_put(Kind::NamedValue, "n", json!({}), Some(&stored)).unwrap_err();
    assert!(omitted.to_string().contains("secret"), "{omitted}");

    let plain = prepare_put(
        Kind::NamedValue,
        "n",
        json!({"secret": false, "value": "public"}),
        Some(&stored),
    )
    .unwrap();
    assert_eq!(plain["value"], "public");
    // Staying secret keeps the value; a plain value made secret keeps it too.
    let kept = prepare_put(
        Kind::NamedValue,
        "n",
        json!({"secret": true}),
        Some(&stored),
    )
    .unwrap();
    assert_eq!(kept["value"], "hunter2");
    let was_plain = json!({"name": "n", "value": "visible"});
    let made_secret = prepare_put(
        Kind::NamedValue,
        "n",
        json!({"secret": true}),
        Some(&was_plain),
    )
    .unwrap();
    assert_eq!(made_secret["value"], "visible");
}
