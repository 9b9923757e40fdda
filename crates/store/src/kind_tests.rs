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
