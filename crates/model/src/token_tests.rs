use base64::Engine as _;
use hmac::Mac as _;

use super::*;

/// 2026-01-02T03:04:00Z, computed independently with Python's `datetime`.
const T_2026_01_02_0304: i64 = 1_767_323_040;

/// Expected signatures, computed independently of this crate with
/// `python3 -c 'import hmac,hashlib,base64; print(base64.b64encode(hmac.new(KEY, MSG, hashlib.sha512).digest()).decode())'`.
const SIG_KEY_GW1_202601020304: &str =
    "Z1DS2sH8MGYL5Q1DGhv0GFCC7ftdIOa4lPN3kOG3qvfiKwzaP69ad/fIjqEGfRD31jBlMP3Hj1n1/lrBs+OPQQ==";
const SIG_SECONDARY_GW1_202601020304: &str =
    "PK8qAU2DrHS5uU9tScq3X7pzqVdBLvvXxX71Xw2lIZc/JRCK/FPp/YutWoUNuHPiqUozj+ELs2PQjPU++MhLHg==";

fn token(expiry: i64) -> GatewayToken {
    GatewayToken::sign("gw1", b"KEY", expiry).unwrap()
}

#[test]
fn signature_matches_an_independent_hmac_sha512_byte_for_byte() {
    // HMAC-SHA512(b"KEY", b"gw1\n202601020304"), base64 with padding.
    let token = GatewayToken::sign("gw1", b"KEY", T_2026_01_02_0304).unwrap();
    assert_eq!(token.signature(), SIG_KEY_GW1_202601020304);
    assert_eq!(
        token.to_header_value(),
        format!("GatewayKey gw1&202601020304&{SIG_KEY_GW1_202601020304}")
    );
    assert_eq!(token.to_string(), token.to_header_value());

    // A realistic id and key: `eu-west.gw_1`, 2099-12-31T23:59Z.
    let token =
        GatewayToken::sign("eu-west.gw_1", b"primary-7f3a9c2e41b8d605", 4_102_444_740).unwrap();
    assert_eq!(
        token.to_header_value(),
        "GatewayKey eu-west.gw_1&209912312359&pvXNlCeRjmY4IM2XuGx9dr5i6ks5DeIjSmms/EunQiZnwXfWRr3NYQf2D6uSYlu3GMXN7giO/A4MhJ84aOXIOA=="
    );
}

#[test]
fn expiry_is_rounded_down_to_the_minute() {
    for offset in [0, 1, 30, 59] {
        let token = token(T_2026_01_02_0304 + offset);
        assert_eq!(token.expiry_unix(), T_2026_01_02_0304, "+{offset}s");
        assert_eq!(token.expiry_text(), "202601020304");
        assert_eq!(token.signature(), SIG_KEY_GW1_202601020304);
    }
    assert_eq!(token(T_2026_01_02_0304 + 60).expiry_text(), "202601020305");
}

#[test]
fn tokens_round_trip_through_text() {
    let original = token(T_2026_01_02_0304);
    let header = original.to_header_value();
    let without_scheme = header.strip_prefix("GatewayKey ").unwrap().to_owned();
    for text in [
        header.clone(),
        without_scheme.clone(),
        format!("{header}\n"),
        format!("  {header} \r\n"),
        format!("{without_scheme}\n"),
        format!("gatewaykey {without_scheme}"),
        format!("GATEWAYKEY   {without_scheme}"),
    ] {
        let parsed = GatewayToken::parse(&text).unwrap();
        assert_eq!(parsed, original, "{text:?}");
        assert_eq!(parsed.to_header_value(), header);
        parsed.verify(b"KEY", T_2026_01_02_0304 - 60).unwrap();
    }
    assert_eq!(header.parse::<GatewayToken>().unwrap(), original);
}

#[test]
fn a_token_verifies_until_its_expiry_and_not_after() {
    let token = token(T_2026_01_02_0304);
    token.verify(b"KEY", T_2026_01_02_0304 - 1).unwrap();
    for now in [
        T_2026_01_02_0304,
        T_2026_01_02_0304 + 1,
        T_2026_01_02_0304 + 86_400,
    ] {
        let err = token.verify(b"KEY", now).unwrap_err();
        assert_eq!(
            err,
            TokenError::Expired {
                gateway_id: "gw1".to_owned(),
                expired_at: T_2026_01_02_0304
            }
        );
        let message = err.to_string();
        assert!(
            message.contains("expired at 2026-01-02T03:04Z"),
            "{message}"
        );
        assert!(
            message.contains("`gatehouse gateway token gw1`"),
            "{message}"
        );
    }
}

#[test]
fn a_wrong_key_or_a_regenerated_key_is_refused() {
    let token = token(T_2026_01_02_0304);
    let now = T_2026_01_02_0304 - 3600;
    for key in [&b"KEX"[..], b"key", b"KEY ", b"KEYKEY", b""] {
        let err = token.verify(key, now).unwrap_err();
        assert_eq!(
            err,
            TokenError::BadSignature {
                gateway_id: "gw1".to_owned()
            },
            "{key:?}"
        );
        assert!(err.to_string().contains("regenerated"), "{err}");
    }
}

#[test]
fn an_empty_key_neither_signs_nor_verifies() {
    // Security: anyone can compute an HMAC under the empty key.
    assert_eq!(
        GatewayToken::sign("gw1", b"", T_2026_01_02_0304),
        Err(TokenError::EmptyKey)
    );
    let forged = GatewayToken::parse(&format!(
        "GatewayKey gw1&202601020304&{}",
        base64::engine::general_purpose::STANDARD.encode(
            Hmac::<Sha512>::new_from_slice(b"")
                .unwrap()
                .chain_update(b"gw1\n202601020304")
                .finalize()
                .into_bytes()
        )
    ))
    .unwrap();
    assert!(matches!(
        forged.verify(b"", T_2026_01_02_0304 - 60),
        Err(TokenError::BadSignature { .. })
    ));
}

#[test]
fn tampering_with_any_part_breaks_the_signature() {
    let now = T_2026_01_02_0304 - 3600;
    let header = token(T_2026_01_02_0304).to_header_value();
    let mut flipped_first = SIG_KEY_GW1_202601020304.to_owned();
    flipped_first.replace_range(0..1, "A");
    for tampered in [
        // Another gateway's id with this gateway's signature.
        header.replace("gw1&", "gw2&"),
        // A later expiry.
        header.replace("&202601020304&", "&202601020305&"),
        header.replace("&202601020304&", "&202701020304&"),
        // A changed signature.
        header.replace(SIG_KEY_GW1_202601020304, &flipped_first),
        header.replace(SIG_KEY_GW1_202601020304, SIG_SECONDARY_GW1_202601020304),
    ] {
        let parsed = GatewayToken::parse(&tampered).unwrap();
        assert!(
            matches!(
                parsed.verify(b"KEY", now),
                Err(TokenError::BadSignature { .. })
            ),
            "{tampered}"
        );
    }
}

#[test]
fn signature_comparison_rejects_a_difference_in_any_byte() {
    // Security: the comparison goes through `subtle::ConstantTimeEq`, so the time it takes
    // does not depend on how many leading bytes of a forged signature are right (which
    // would let an attacker guess a signature byte by byte from response times). Timing
    // cannot be measured reliably in a unit test; this checks the property that goes
    // with it: every byte counts, the first and the last alike, and a signature of the
    // right length but wrong content, or a prefix of the right one, never passes.
    let now = T_2026_01_02_0304 - 60;
    let right = base64::engine::general_purpose::STANDARD
        .decode(SIG_KEY_GW1_202601020304)
        .unwrap();
    for index in [0, 1, 31, 62, 63] {
        let mut wrong = right.clone();
        wrong[index] ^= 0x01;
        let text = format!(
            "GatewayKey gw1&202601020304&{}",
            base64::engine::general_purpose::STANDARD.encode(&wrong)
        );
        let token = GatewayToken::parse(&text).unwrap();
        assert!(
            matches!(
                token.verify(b"KEY", now),
                Err(TokenError::BadSignature { .. })
            ),
            "byte {index}"
        );
    }
    let prefix = base64::engine::general_purpose::STANDARD.encode(&right[..48]);
    assert!(matches!(
        GatewayToken::parse(&format!("gw1&202601020304&{prefix}")),
        Err(TokenError::Malformed {
            part: TokenPart::Signature,
            ..
        })
    ));
}

#[test]
fn either_key_of_the_pair_verifies() {
    let now = T_2026_01_02_0304 - 60;
    let primary = token(T_2026_01_02_0304);
    let secondary = GatewayToken::sign("gw1", b"secondary-key", T_2026_01_02_0304).unwrap();
    assert_eq!(secondary.signature(), SIG_SECONDARY_GW1_202601020304);
    let keys: [&[u8]; 2] = [b"KEY", b"secondary-key"];
    primary.verify_any(&keys, now).unwrap();
    secondary.verify_any(&keys, now).unwrap();
    // After the primary key is regenerated, tokens signed with it stop working.
    let rotated: [&[u8]; 2] = [b"new-primary", b"secondary-key"];
    assert!(matches!(
        primary.verify_any(&rotated, now),
        Err(TokenError::BadSignature { .. })
    ));
    secondary.verify_any(&rotated, now).unwrap();
    assert!(matches!(
        primary.verify_any(&[], now),
        Err(TokenError::BadSignature { .. })
    ));
    // The signature is checked before the expiry: an expired real token says so.
    assert!(matches!(
        secondary.verify_any(&keys, T_2026_01_02_0304),
        Err(TokenError::Expired { .. })
    ));
}

#[test]
fn verify_refuses_a_token_valid_for_longer_than_a_token_can_be() {
    let now = T_2026_01_02_0304;
    let at_limit = token(now + MAX_TOKEN_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS);
    at_limit.verify(b"KEY", now).unwrap();
    let too_far = token(now + MAX_TOKEN_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS + 60);
    assert!(matches!(
        too_far.verify(b"KEY", now),
        Err(TokenError::ExpiryTooFar { .. })
    ));
    // The same token is fine a day later.
    too_far.verify(b"KEY", now + 86_400).unwrap();
}

#[test]
fn validate_expiry_keeps_to_thirty_days_in_the_future() {
    let now = T_2026_01_02_0304;
    assert_eq!(MAX_TOKEN_LIFETIME_SECONDS, 2_592_000);
    validate_expiry(now, now + 60).unwrap();
    validate_expiry(now, now + MAX_TOKEN_LIFETIME_SECONDS).unwrap();
    validate_expiry(now, now + MAX_TOKEN_LIFETIME_SECONDS + 59).unwrap(); // rounds down
    let err = validate_expiry(now, now + MAX_TOKEN_LIFETIME_SECONDS + 60).unwrap_err();
    assert_eq!(
        err,
        TokenError::ExpiryTooFar {
            expiry: now + MAX_TOKEN_LIFETIME_SECONDS + 60,
            latest: now + MAX_TOKEN_LIFETIME_SECONDS,
        }
    );
    assert!(err.to_string().contains("2026-02-01T03:04Z"), "{err}");
    for expiry in [now, now + 59, now - 1, 0] {
        assert!(
            matches!(
                validate_expiry(now, expiry),
                Err(TokenError::ExpiryInPast { .. })
            ),
            "{expiry}"
        );
    }
    let err = validate_expiry(now, now - 3600).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the expiry 2026-01-02T02:04Z is not in the future (now is 2026-01-02T03:04Z); choose a later one, up to 30 days away"
    );
}

#[test]
fn sign_rejects_ids_and_expiries_a_token_cannot_carry() {
    for id in [
        "",
        "gw&1",
        "gw 1",
        "gw\n1",
        "gw/1",
        "gw:1",
        "gwé",
        &"g".repeat(257),
    ] {
        assert!(
            matches!(
                GatewayToken::sign(id, b"KEY", T_2026_01_02_0304),
                Err(TokenError::InvalidGatewayId { .. })
            ),
            "{id:?}"
        );
    }
    GatewayToken::sign(&"g".repeat(256), b"KEY", T_2026_01_02_0304).unwrap();
    for expiry in [-1, MAX_EXPIRY_UNIX + 60, i64::MIN, i64::MAX] {
        assert_eq!(
            GatewayToken::sign("gw1", b"KEY", expiry),
            Err(TokenError::ExpiryOutOfRange { expiry }),
        );
    }
    assert_eq!(
        token(MIN_EXPIRY_UNIX).to_header_value().split('&').nth(1),
        Some("197001010000")
    );
    assert_eq!(
        token(MAX_EXPIRY_UNIX + 59)
            .to_header_value()
            .split('&')
            .nth(1),
        Some("999912312359")
    );
}

#[test]
fn malformed_tokens_name_the_part_at_fault() {
    let sig = SIG_KEY_GW1_202601020304;
    let cases: Vec<(String, TokenPart)> = vec![
        (String::new(), TokenPart::Structure),
        ("   \n".to_owned(), TokenPart::Structure),
        ("GatewayKey".to_owned(), TokenPart::Structure),
        ("GatewayKey ".to_owned(), TokenPart::Structure),
        (
            format!("Bearer gw1&202601020304&{sig}"),
            TokenPart::Structure,
        ),
        (
            format!("SharedAccessSignature gw1&202601020304&{sig}"),
            TokenPart::Structure,
        ),
        (
            format!("GatewayKey gw1&202601020304 &{sig}"),
            TokenPart::Structure,
        ),
        (
            "GatewayKey gw1&202601020304".to_owned(),
            TokenPart::Structure,
        ),
        (
            format!("GatewayKey gw1&202601020304&{sig}&x"),
            TokenPart::Structure,
        ),
        (
            format!("GatewayKey &202601020304&{sig}"),
            TokenPart::GatewayId,
        ),
        (
            format!("GatewayKey g/w&202601020304&{sig}"),
            TokenPart::GatewayId,
        ),
        (
            format!("GatewayKey gw1&2026010203&{sig}"),
            TokenPart::Expiry,
        ),
        (
            format!("GatewayKey gw1&20260102030400&{sig}"),
            TokenPart::Expiry,
        ),
        (
            format!("GatewayKey gw1&2026-01-0203&{sig}"),
            TokenPart::Expiry,
        ),
        (
            format!("GatewayKey gw1&+20601020304&{sig}"),
            TokenPart::Expiry,
        ),
        (
            format!("GatewayKey gw1&202613020304&{sig}"),
            TokenPart::Expiry,
        ), // month 13
        (
            format!("GatewayKey gw1&202600020304&{sig}"),
            TokenPart::Expiry,
        ), // month 0
        (
            format!("GatewayKey gw1&202601000304&{sig}"),
            TokenPart::Expiry,
        ), // day 0
        (
            format!("GatewayKey gw1&202602290304&{sig}"),
            TokenPart::Expiry,
        ), // not a leap year
        (
            format!("GatewayKey gw1&202604310304&{sig}"),
            TokenPart::Expiry,
        ), // April 31
        (
            format!("GatewayKey gw1&202601022400&{sig}"),
            TokenPart::Expiry,
        ), // hour 24
        (
            format!("GatewayKey gw1&202601020360&{sig}"),
            TokenPart::Expiry,
        ), // minute 60
        (
            format!("GatewayKey gw1&196912312359&{sig}"),
            TokenPart::Expiry,
        ), // before 1970
        (
            "GatewayKey gw1&202601020304&".to_owned(),
            TokenPart::Signature,
        ),
        (
            "GatewayKey gw1&202601020304&not-base64!".to_owned(),
            TokenPart::Signature,
        ),
        (
            format!("GatewayKey gw1&202601020304&{}", sig.trim_end_matches('=')),
            TokenPart::Signature,
        ),
        (
            format!("GatewayKey gw1&202601020304&{}", sig.replace('/', "_")),
            TokenPart::Signature,
        ),
        (
            "GatewayKey gw1&202601020304&c2hvcnQ=".to_owned(),
            TokenPart::Signature,
        ),
    ];
    for (text, part) in cases {
        let err = GatewayToken::parse(&text).unwrap_err();
        let TokenError::Malformed { part: actual, .. } = &err else {
            panic!("{text:?}: expected Malformed, got {err:?}");
        };
        assert_eq!(*actual, part, "{text:?}");
        let message = err.to_string();
        assert!(message.contains("gatehouse gateway token"), "{message}");
        assert!(!message.contains(sig), "the signature must not be echoed");
    }
}

#[test]
fn debug_never_prints_the_signature() {
    // Security: the signature is the secret part of a token.
    let token = token(T_2026_01_02_0304);
    let debug = format!("{token:?}");
    assert!(!debug.contains(SIG_KEY_GW1_202601020304), "{debug}");
    assert!(
        debug.contains("gw1") && debug.contains("2026-01-02T03:04Z"),
        "{debug}"
    );
}

#[test]
fn leap_years_follow_the_gregorian_rules() {
    for (year, leap) in [
        (1970, false),
        (1972, true),
        (1900, false),
        (2000, true),
        (2024, true),
        (2026, false),
        (2100, false),
        (2400, true),
    ] {
        assert_eq!(is_leap_year(year), leap, "{year}");
        assert_eq!(days_in_month(year, 2), if leap { 29 } else { 28 }, "{year}");
    }
    let lengths: Vec<u32> = (1..=12).map(|month| days_in_month(2026, month)).collect();
    assert_eq!(lengths, [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]);
    assert_eq!(days_in_month(2026, 0), 0);
    assert_eq!(days_in_month(2026, 13), 0);
}

#[test]
fn civil_dates_match_independent_values() {
    // Day numbers computed with Python: (date(y, m, d) - date(1970, 1, 1)).days
    for (date, days) in [
        ((1970, 1, 1), 0),
        ((1969, 12, 31), -1),
        ((1972, 12, 31), 1095),
        ((2000, 2, 29), 11016),
        ((2000, 3, 1), 11017),
        ((2024, 2, 29), 19782),
        ((2026, 1, 31), 20484),
        ((2026, 2, 1), 20485),
        ((2100, 2, 28), 47540),
        ((2100, 3, 1), 47541),
        ((2400, 2, 29), 157_113),
        ((9999, 12, 31), 2_932_896),
        ((1, 1, 1), -719_162),
    ] {
        let (year, month, day) = date;
        assert_eq!(days_from_civil(year, month, day), days, "{date:?}");
        assert_eq!(civil_from_days(days), date, "{days}");
    }
}

#[test]
fn civil_conversion_round_trips_every_day_from_1970_to_9999() {
    let mut expected = (1970, 1, 1);
    for days in 0..=2_932_896 {
        assert_eq!(civil_from_days(days), expected, "{days}");
        assert_eq!(days_from_civil(expected.0, expected.1, expected.2), days);
        // Step the date by hand: the next day, the first of next month, or next year.
        let (year, month, day) = expected;
        expected = if day < days_in_month(year, month) {
            (year, month, day + 1)
        } else if month < 12 {
            (year, month + 1, 1)
        } else {
            (year + 1, 1, 1)
        };
    }
}

#[test]
fn expiry_text_round_trips_at_month_and_year_ends() {
    for (text, unix) in [
        ("197001010000", 0),
        ("202601020304", T_2026_01_02_0304),
        ("202402291200", 1_709_208_000),
        ("209912312359", 4_102_444_740),
        ("999912312359", MAX_EXPIRY_UNIX),
    ] {
        assert_eq!(parse_expiry(text), Some(unix), "{text}");
        assert_eq!(format_expiry(unix), text, "{unix}");
    }
    for (text, next) in [
        ("202601312359", "202602010000"),
        ("202402282359", "202402290000"),
        ("202402292359", "202403010000"),
        ("202302282359", "202303010000"),
        ("210002282359", "210003010000"),
        ("202512312359", "202601010000"),
    ] {
        let unix = parse_expiry(text).unwrap();
        assert_eq!(format_expiry(unix + 60), next, "{text} + 1 minute");
    }
    assert_eq!(
        format_utc_minute(T_2026_01_02_0304 + 59),
        "2026-01-02T03:04Z"
    );
    assert_eq!(format_utc_minute(-60), "1969-12-31T23:59Z");
}
