use std::collections::HashMap;

use super::*;

#[test]
fn normalization_decodes_escapes_folds_and_keeps_invalid_escapes() {
    let cases: &[(&str, &[u8], Norm, &[u8])] = &[
        ("plain", b"abc", Norm::path(false), b"abc"),
        ("escape", b"a%20b", Norm::path(false), b"a b"),
        (
            "lowercase hex",
            b"%c3%a9",
            Norm::path(false),
            "é".as_bytes(),
        ),
        ("folded after decoding", b"%41B", Norm::path(true), b"ab"),
        ("truncated escape", b"a%2", Norm::path(false), b"a%2"),
        ("non-hex escape", b"%zz", Norm::path(false), b"%zz"),
        ("lone percent at end", b"%", Norm::path(false), b"%"),
        ("plus kept in paths", b"a+b", Norm::path(false), b"a+b"),
        (
            "plus is space in forms",
            b"a+b%2B",
            Norm::form(false),
            b"a b+",
        ),
        ("hosts are not decoded", b"A%41", Norm::HOST, b"a%41"),
        (
            "invalid utf-8 survives",
            b"%FF%FE",
            Norm::path(false),
            &[0xff, 0xfe],
        ),
    ];
    for (name, raw, norm, expected) in cases {
        assert_eq!(&normalize(raw, *norm), expected, "{name}");
    }
}

#[test]
fn equal_normalizations_compare_equal_and_hash_equal() {
    let cases: &[(&[u8], &[u8], Norm)] = &[
        (b"Users", b"users", Norm::path(true)),
        (b"%55sers", b"users", Norm::path(true)),
        (b"caf%C3%A9", "café".as_bytes(), Norm::path(false)),
        (b"caf%c3%a9", "café".as_bytes(), Norm::path(false)),
        (b"API.Example.COM", b"api.example.com", Norm::HOST),
        (b"a+b", b"a b", Norm::form(false)),
    ];
    for (raw, key, norm) in cases {
        assert!(eq_normalized(raw, key, *norm), "{raw:?} vs {key:?}");
        let stored = if norm.fold {
            key.to_ascii_lowercase()
        } else {
            key.to_vec()
        };
        assert_eq!(
            Probe::new(raw, *norm).hash(),
            hash_key(&stored),
            "{raw:?} vs {key:?}"
        );
    }
}

#[test]
fn case_sensitive_comparison_tells_case_apart() {
    assert!(!eq_normalized(b"Users", b"users", Norm::path(false)));
    assert!(!eq_normalized(b"%55sers", b"users", Norm::path(false)));
}

#[test]
fn decoding_into_a_string_replaces_invalid_utf8_instead_of_failing() {
    let cases = [
        ("a%20b", Norm::path(false), "a b"),
        ("%FFx", Norm::path(false), "\u{fffd}x"),
        ("a+b", Norm::form(false), "a b"),
        ("plain", Norm::path(false), "plain"),
    ];
    for (raw, norm, expected) in cases {
        let mut out = String::from(">");
        decode_into(&mut out, raw, norm);
        assert_eq!(out, format!(">{expected}"), "{raw}");
    }
}

#[test]
fn word_at_a_time_hashing_equals_byte_at_a_time_hashing_with_and_without_folding() {
    // Every length up to three words, bytes across the whole range, so the SWAR
    // lowercasing is checked against `to_ascii_lowercase` on every byte value.
    let bytes: Vec<u8> = (0..=255_u8).cycle().step_by(7).take(2048).collect();
    for len in 0..=24 {
        for window in bytes.chunks(len.max(1)).take(120) {
            let window = &window[..len.min(window.len())];
            for fold in [false, true] {
                let mut hasher = ByteHasher::default();
                for &byte in window {
                    hasher.write(if fold {
                        byte.to_ascii_lowercase()
                    } else {
                        byte
                    });
                }
                assert_eq!(
                    hash_words(window, fold),
                    hasher.finish(),
                    "{window:?} fold {fold}"
                );
            }
        }
    }
    for byte in 0..=255_u8 {
        let word = u64::from_le_bytes([byte; 8]);
        let expected = u64::from_le_bytes([byte.to_ascii_lowercase(); 8]);
        assert_eq!(lowercase_word(word), expected, "{byte:#x}");
    }
}

#[test]
fn word_at_a_time_search_and_comparison_agree_with_the_byte_loops() {
    let text = "aB/?:%.-Zz09é/?x".repeat(3);
    for start in 0..text.len() {
        for end in start..=text.len() {
            // Slices that would split `é` are skipped.
            let Some(slice) = text.get(start..end) else {
                continue;
            };
            for needle in [b'/', b'?', b':', b'x', 0xc3, b'#'] {
                let expected = slice.bytes().position(|b| b == needle);
                assert_eq!(find_byte(slice, needle), expected, "{slice:?} {needle}");
            }
            let upper = slice.to_ascii_uppercase();
            assert!(
                eq_ignore_case(slice.as_bytes(), upper.as_bytes()),
                "{slice:?}"
            );
            let mut changed = upper.clone().into_bytes();
            if let Some(last) = changed.last_mut() {
                *last ^= 0x01;
                assert_eq!(
                    eq_ignore_case(slice.as_bytes(), &changed),
                    slice.as_bytes().eq_ignore_ascii_case(&changed),
                    "{slice:?}"
                );
            }
        }
    }
}

#[test]
fn byte_splitting_finds_the_first_occurrence() {
    assert_eq!(split_at_byte("a/b/c", b'/'), Some(("a", "b/c")));
    assert_eq!(split_at_byte("/", b'/'), Some(("", "")));
    assert_eq!(split_at_byte("abc", b'/'), None);
    assert_eq!(split_at_byte("é/x", b'/'), Some(("é", "x")));
}

fn map_of(keys: &[&str]) -> LiteralMap<usize> {
    LiteralMap::from_map(
        keys.iter()
            .enumerate()
            .map(|(value, key)| (Box::<[u8]>::from(key.as_bytes()), value))
            .collect::<HashMap<_, _>>(),
    )
}

#[test]
fn small_and_large_literal_maps_find_every_key_and_nothing_else() {
    for size in [0, 1, LINEAR_MAX, LINEAR_MAX + 1, 1000] {
        // Some keys are longer than an entry holds inline.
        let keys: Vec<String> = (0..size)
            .map(|i| format!("key-{i}{}", "-long".repeat(i % 7)))
            .collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let map = map_of(&refs);
        assert_eq!(map.len(), size);
        for (value, key) in refs.iter().enumerate() {
            assert_eq!(
                map.get(key.as_bytes(), Norm::path(false)),
                Some(&value),
                "{key}"
            );
            let upper = key.to_ascii_uppercase();
            assert_eq!(
                map.get(upper.as_bytes(), Norm::path(true)),
                Some(&value),
                "{upper}"
            );
            assert_eq!(
                map.get(upper.as_bytes(), Norm::path(false)),
                None,
                "{upper}"
            );
        }
        for miss in ["", "key-", "key-1000000", "KEY-x", "%"] {
            assert_eq!(
                map.get(miss.as_bytes(), Norm::path(true)),
                None,
                "size {size}, {miss}"
            );
        }
    }
}

#[test]
fn literal_map_lookups_decode_the_probe() {
    let map = map_of(&["a b", "café", "x", "y", "z", "1", "2", "3", "4", "5"]);
    assert_eq!(map.get(b"a%20b", Norm::path(false)), Some(&0));
    assert_eq!(map.get(b"caf%C3%A9", Norm::path(false)), Some(&1));
}
