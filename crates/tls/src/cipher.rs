//! Cipher suite names: IANA (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`), OpenSSL
//! (`ECDHE-RSA-AES128-GCM-SHA256`) and rustls (`TLS13_AES_128_GCM_SHA256`) spellings of
//! the suites Gatehouse implements, and the suites it knows of but does not implement, so
//! a setting naming one fails with the reason rather than "unknown".
//!
//! APIM's self-hosted gateway v2.1.1 takes the lists in the settings
//! `net.server.tls.ciphers.allowed-suites` (clients → gateway) and
//! `net.client.tls.ciphers.allowed-suites` (gateway → backends), comma-separated IANA
//! names; Gatehouse reads the same settings (docs/tls.md has the mapping).

use rustls::SupportedCipherSuite;
use rustls::crypto::ring::cipher_suite as suites;

use crate::TlsError;

/// One implemented suite under its names.
struct Known {
    iana: &'static str,
    openssl: &'static str,
    suite: SupportedCipherSuite,
}

/// Implemented suites, strongest first within each TLS version (the default order).
const IMPLEMENTED: [Known; 9] = [
    Known {
        iana: "TLS_AES_256_GCM_SHA384",
        openssl: "TLS_AES_256_GCM_SHA384",
        suite: suites::TLS13_AES_256_GCM_SHA384,
    },
    Known {
        iana: "TLS_AES_128_GCM_SHA256",
        openssl: "TLS_AES_128_GCM_SHA256",
        suite: suites::TLS13_AES_128_GCM_SHA256,
    },
    Known {
        iana: "TLS_CHACHA20_POLY1305_SHA256",
        openssl: "TLS_CHACHA20_POLY1305_SHA256",
        suite: suites::TLS13_CHACHA20_POLY1305_SHA256,
    },
    Known {
        iana: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        openssl: "ECDHE-ECDSA-AES256-GCM-SHA384",
        suite: suites::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    },
    Known {
        iana: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        openssl: "ECDHE-ECDSA-AES128-GCM-SHA256",
        suite: suites::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    },
    Known {
        iana: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        openssl: "ECDHE-ECDSA-CHACHA20-POLY1305",
        suite: suites::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    },
    Known {
        iana: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        openssl: "ECDHE-RSA-AES256-GCM-SHA384",
        suite: suites::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    },
    Known {
        iana: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        openssl: "ECDHE-RSA-AES128-GCM-SHA256",
        suite: suites::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    },
    Known {
        iana: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        openssl: "ECDHE-RSA-CHACHA20-POLY1305",
        suite: suites::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    },
];

const CBC: &str = "CBC-mode suites are not implemented by rustls (padding-oracle history; use the GCM or CHACHA20 variant)";
const STATIC_RSA: &str = "static-RSA key exchange has no forward secrecy and is not implemented by rustls (use a TLS_ECDHE_RSA_* suite)";
const DHE: &str =
    "finite-field DHE key exchange is not implemented by rustls (use a TLS_ECDHE_* suite)";
const CCM: &str = "AES-CCM suites are not implemented by rustls";
const LEGACY: &str = "3DES and RC4 are broken and not implemented by rustls";

/// Suites in APIM's and OpenSSL's lists that rustls does not implement, and why.
const UNAVAILABLE: &[(&str, &str, &str)] = &[
    ("TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_SHA256", CCM),
    ("TLS_AES_128_CCM_8_SHA256", "TLS_AES_128_CCM_8_SHA256", CCM),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        "ECDHE-ECDSA-AES256-SHA384",
        CBC,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        "ECDHE-ECDSA-AES128-SHA256",
        CBC,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        "ECDHE-RSA-AES256-SHA384",
        CBC,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        "ECDHE-RSA-AES128-SHA256",
        CBC,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        "ECDHE-ECDSA-AES256-SHA",
        CBC,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        "ECDHE-ECDSA-AES128-SHA",
        CBC,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        "ECDHE-RSA-AES256-SHA",
        CBC,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        "ECDHE-RSA-AES128-SHA",
        CBC,
    ),
    (
        "TLS_RSA_WITH_AES_256_GCM_SHA384",
        "AES256-GCM-SHA384",
        STATIC_RSA,
    ),
    (
        "TLS_RSA_WITH_AES_128_GCM_SHA256",
        "AES128-GCM-SHA256",
        STATIC_RSA,
    ),
    (
        "TLS_RSA_WITH_AES_256_CBC_SHA256",
        "AES256-SHA256",
        STATIC_RSA,
    ),
    (
        "TLS_RSA_WITH_AES_128_CBC_SHA256",
        "AES128-SHA256",
        STATIC_RSA,
    ),
    ("TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA", STATIC_RSA),
    ("TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA", STATIC_RSA),
    (
        "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        "DHE-RSA-AES256-GCM-SHA384",
        DHE,
    ),
    (
        "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        "DHE-RSA-AES128-GCM-SHA256",
        DHE,
    ),
    (
        "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
        "DHE-RSA-AES256-SHA",
        DHE,
    ),
    (
        "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
        "DHE-RSA-AES128-SHA",
        DHE,
    ),
    ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA", LEGACY),
    ("TLS_RSA_WITH_RC4_128_SHA", "RC4-SHA", LEGACY),
];

/// The IANA names of the implemented suites, comma-separated (for messages and docs).
#[must_use]
pub fn supported_names() -> String {
    IMPLEMENTED
        .iter()
        .map(|known| known.iana)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The IANA name of a suite (`TLS_AES_128_GCM_SHA256`, not rustls's `TLS13_…`).
#[must_use]
pub fn iana_name(suite: SupportedCipherSuite) -> &'static str {
    IMPLEMENTED
        .iter()
        .find(|known| known.suite.suite() == suite.suite())
        .map_or("unknown", |known| known.iana)
}

/// One suite by any of its names (case-insensitive; rustls's `TLS13_` prefix accepted).
///
/// # Errors
///
/// [`TlsError::UnavailableCipherSuite`] for a suite rustls does not implement, with the
/// reason; [`TlsError::UnknownCipherSuite`] for anything else.
pub fn parse_one(name: &str) -> Result<SupportedCipherSuite, TlsError> {
    let wanted = name.trim();
    let normalized = wanted.to_ascii_uppercase().replacen("TLS13_", "TLS_", 1);
    if let Some(known) = IMPLEMENTED
        .iter()
        .find(|known| known.iana == normalized || known.openssl.eq_ignore_ascii_case(wanted))
    {
        return Ok(known.suite);
    }
    if let Some((_, _, reason)) = UNAVAILABLE
        .iter()
        .find(|(iana, openssl, _)| *iana == normalized || openssl.eq_ignore_ascii_case(wanted))
    {
        return Err(TlsError::UnavailableCipherSuite {
            name: wanted.to_owned(),
            reason,
            supported: supported_names(),
        });
    }
    Err(TlsError::UnknownCipherSuite {
        name: wanted.to_owned(),
        supported: supported_names(),
    })
}

/// A list of suites, comma- or colon-separated (APIM's and OpenSSL's separators), in the
/// order given; duplicates dropped.
///
/// # Errors
///
/// The first name [`parse_one`] refuses, or [`TlsError::NoCipherSuites`] for an empty
/// list.
pub fn parse_list(list: &str) -> Result<Vec<SupportedCipherSuite>, TlsError> {
    let mut parsed: Vec<SupportedCipherSuite> = Vec::new();
    for name in list
        .split([',', ':'])
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let suite = parse_one(name)?;
        if !parsed.iter().any(|s| s.suite() == suite.suite()) {
            parsed.push(suite);
        }
    }
    if parsed.is_empty() {
        return Err(TlsError::NoCipherSuites);
    }
    Ok(parsed)
}

#[cfg(test)]
#[path = "cipher_tests.rs"]
mod tests;
