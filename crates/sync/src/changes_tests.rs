use serde_json::json;

use super::*;

fn change(revision: u64, kind: &str, id: &str, entity: Option<Value>) -> Change {
    Change {
        revision,
        kind: kind.parse().unwrap(),
        id: id.to_owned(),
        op: if entity.is_some() {
            Op::Upsert
        } else {
            Op::Delete
        },
        entity,
    }
}

fn api(id: &str, path: &str) -> Value {
    json!({ "id": id, "path": path, "serviceUrl": "http://127.0.0.1:9", "operations": [] })
}

fn response(revision: u64, changes: Vec<Change>) -> Changes {
    Changes {
        revision,
        resync: false,
        changes,
    }
}

fn base() -> Configuration {
    let mut config = Configuration::default();
    for (id, path) in [("a", "a"), ("b", "b"), ("c", "c")] {
        apply_change(&mut config, &change(1, "api", id, Some(api(id, path)))).unwrap();
    }
    config
}

fn api_ids(config: &Configuration) -> Vec<&str> {
    config.apis.iter().map(|a| a.id.as_str()).collect()
}

#[test]
fn an_upsert_replaces_in_place_and_a_new_entity_is_appended() {
    let config = base();
    let next = apply_changes(
        &config,
        1,
        &response(
            3,
            vec![
                change(2, "api", "b", Some(api("b", "bee"))),
                change(3, "api", "d", Some(api("d", "d"))),
            ],
        ),
    )
    .unwrap();
    assert_eq!(api_ids(&next), ["a", "b", "c", "d"]);
    assert_eq!(next.apis[1].path, "bee");
    assert_eq!(api_ids(&config), ["a", "b", "c"], "the input is untouched");
}

#[test]
fn a_delete_removes_and_deleting_what_is_absent_is_fine() {
    let next = apply_changes(
        &base(),
        1,
        &response(
            3,
            vec![
                change(2, "api", "a", None),
                change(3, "api", "never-had-it", None),
            ],
        ),
    )
    .unwrap();
    assert_eq!(api_ids(&next), ["b", "c"]);
}

#[test]
fn every_kind_is_applied_by_its_id_field() {
    let changes = vec![
        change(
            2,
            "named-value",
            "greeting",
            Some(json!({ "name": "greeting", "value": "hi" })),
        ),
        change(
            3,
            "backend",
            "be",
            Some(json!({ "id": "be", "url": "http://127.0.0.1:9" })),
        ),
        change(4, "product", "p", Some(json!({ "id": "p", "apis": ["a"] }))),
        change(
            5,
            "subscription",
            "s",
            Some(json!({ "id": "s", "scope": "/products/p", "primaryKey": "k1" })),
        ),
        change(
            6,
            "policy",
            "global",
            Some(json!({ "value": "<policies><inbound /></policies>" })),
        ),
        change(
            7,
            "hostname",
            "api.example.com",
            Some(json!({ "hostname": "api.example.com" })),
        ),
        change(8, "gateway", "other", Some(json!({ "id": "other" }))),
    ];
    let next = apply_changes(&base(), 1, &response(8, changes)).unwrap();
    assert_eq!(next.named_values[0].value, "hi");
    assert_eq!(next.backends[0].id, "be");
    assert_eq!(next.products[0].apis, ["a"]);
    assert_eq!(next.subscriptions[0].primary_key, "k1");
    assert_eq!(
        next.policy.as_deref(),
        Some("<policies><inbound /></policies>")
    );
    assert_eq!(next.hostnames[0].hostname, "api.example.com");
    assert!(next.gateways.is_empty(), "gateway changes are not served");

    let cleared = apply_changes(
        &next,
        8,
        &response(
            10,
            vec![
                change(9, "policy", "global", None),
                change(10, "named-value", "greeting", None),
            ],
        ),
    )
    .unwrap();
    assert_eq!(cleared.policy, None);
    assert!(cleared.named_values.is_empty());
}

#[test]
fn the_last_of_several_changes_to_one_entity_wins() {
    let changes: Vec<Change> = (2..=201)
        .map(|revision| {
            change(
                revision,
                "api",
                "a",
                Some(api("a", &format!("v{revision}"))),
            )
        })
        .collect();
    let next = apply_changes(&base(), 1, &response(201, changes)).unwrap();
    assert_eq!(next.apis[0].path, "v201");
    assert_eq!(next.apis.len(), 3);
}

#[test]
fn changes_that_cannot_be_understood_are_refused_whole() {
    let cases: Vec<(&str, Changes)> = vec![
        (
            "upsert without entity",
            response(
                2,
                vec![Change {
                    op: Op::Upsert,
                    ..change(2, "api", "a", None)
                }],
            ),
        ),
        (
            "entity of the wrong shape",
            response(
                2,
                vec![change(
                    2,
                    "api",
                    "a",
                    Some(json!({ "id": "a", "pathh": 1 })),
                )],
            ),
        ),
        (
            "entity with another id",
            response(2, vec![change(2, "api", "a", Some(api("z", "z")))]),
        ),
        (
            "policy without value",
            response(
                2,
                vec![change(2, "policy", "global", Some(json!({ "xml": "" })))],
            ),
        ),
        (
            "revision not after since",
            response(2, vec![change(1, "api", "a", None)]),
        ),
        (
            "revisions going backwards",
            response(
                3,
                vec![change(3, "api", "a", None), change(2, "api", "b", None)],
            ),
        ),
        (
            "answer revision before its changes",
            response(2, vec![change(3, "api", "a", None)]),
        ),
        (
            "good change then a bad one",
            response(
                3,
                vec![
                    change(2, "api", "a", None),
                    change(3, "api", "w", Some(json!({ "id": "w", "pathh": 1 }))),
                ],
            ),
        ),
    ];
    let config = base();
    for (name, answer) in cases {
        let result = apply_changes(&config, 1, &answer);
        assert!(result.is_err(), "{name}: accepted {result:?}");
    }
    assert_eq!(api_ids(&config), ["a", "b", "c"]);
}

#[test]
fn the_wire_format_of_the_control_plane_parses() {
    let text = r#"{"revision":7,"resync":false,"changes":[{"revision":7,"kind":"api","id":"a","op":"delete"}]}"#;
    let parsed: Changes = serde_json::from_str(text).unwrap();
    assert_eq!(parsed.revision, 7);
    assert_eq!(parsed.changes[0].op, Op::Delete);
    // An unknown kind or op does not parse: the answer is refused whole.
    for bad in [
        r#"{"revision":2,"changes":[{"revision":2,"kind":"widget","id":"w","op":"upsert"}]}"#,
        r#"{"revision":2,"changes":[{"revision":2,"kind":"api","id":"a","op":"patch"}]}"#,
    ] {
        assert!(serde_json::from_str::<Changes>(bad).is_err(), "{bad}");
    }
    assert_eq!(parsed.changes[0].entity, None);
    let empty: Changes =
        serde_json::from_str(r#"{"revision":3,"resync":true,"changes":[]}"#).unwrap();
    assert!(empty.resync);
}
