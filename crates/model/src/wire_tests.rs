use super::*;

#[test]
fn every_kind_round_trips_through_its_spelling() {
    for kind in Kind::ALL {
        assert_eq!(kind.as_str().parse::<Kind>(), Ok(kind), "{kind}");
        assert_eq!(kind.to_string(), kind.as_str());
    }
}

#[test]
fn kind_spellings_match_serde() {
    for kind in Kind::ALL {
        let json = serde_json::to_value(kind).unwrap();
        assert_eq!(json, serde_json::json!(kind.as_str()), "{kind}");
        let back: Kind = serde_json::from_value(json).unwrap();
        assert_eq!(back, kind);
    }
}

#[test]
fn unknown_or_miscased_kinds_are_rejected_with_the_list_of_kinds() {
    for bad in ["", "apis", "API", "named_value", "namedValue", " api"] {
        let err = bad.parse::<Kind>().unwrap_err();
        assert_eq!(err.0, bad);
        assert!(err.to_string().contains("named-value"), "{bad}: {err}");
    }
}

#[test]
fn ops_round_trip_and_reject_others() {
    for op in [Op::Upsert, Op::Delete] {
        assert_eq!(op.as_str().parse::<Op>(), Ok(op));
        assert_eq!(
            serde_json::to_value(op).unwrap(),
            serde_json::json!(op.as_str())
        );
    }
    assert_eq!("put".parse::<Op>(), Err(UnknownOp("put".to_owned())));
}

#[test]
fn the_change_stream_and_heartbeat_have_one_spelling() {
    let changes = Changes {
        revision: 7,
        resync: false,
        changes: vec![Change {
            revision: 7,
            kind: Kind::NamedValue,
            id: "n".to_owned(),
            op: Op::Delete,
            entity: None,
        }],
    };
    let json = serde_json::to_value(&changes).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"revision": 7, "resync": false, "changes": [
            {"revision": 7, "kind": "named-value", "id": "n", "op": "delete"}
        ]})
    );
    assert_eq!(serde_json::from_value::<Changes>(json).unwrap(), changes);
    // An unknown kind or op is refused, not skipped.
    let unknown = serde_json::json!({"revision": 1, "changes": [
        {"revision": 1, "kind": "widget", "id": "w", "op": "upsert"}
    ]});
    assert!(serde_json::from_value::<Changes>(unknown).is_err());

    let heartbeat: Heartbeat = serde_json::from_value(serde_json::json!({
        "instanceId": "i", "heartbeatIntervalSeconds": 5
    }))
    .unwrap();
    assert_eq!(heartbeat.heartbeat_interval_seconds, Some(5));
    assert!(
        serde_json::from_value::<Heartbeat>(serde_json::json!({"instanceId": "i", "x": 1}))
            .is_err()
    );
}
