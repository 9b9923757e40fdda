//! TLS protocol settings of a listener or a client: versions, cipher suites, HTTP/2.

use std::fmt;
use std::str::FromStr;

use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

use crate::{TlsError, cipher};

/// A TLS version Gatehouse speaks. TLS 1.0 and 1.1 are not implemented (rustls never
/// had them; RFC 8996 deprecates them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    V1_2,
    /// TLS 1.3.
    V1_3,
}

impl TlsVersion {
    const fn rustls(self) -> &'static SupportedProtocolVersion {
        match self {
            Self::V1_2 => &rustls::version::TLS12,
            Self::V1_3 => &rustls::version::TLS13,
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V1_2 => "1.2",
            Self::V1_3 => "1.3",
        })
    }
}

impl FromStr for TlsVersion {
    type Err = TlsError;

    /// `1.2`, `TLSv1.2`, `tls1.2`, `TLS12`, and the same for 1.3.
    fn from_str(text: &str) -> Result<Self, TlsError> {
        let lower = text.trim().to_ascii_lowercase();
        let digits = lower
            .trim_start_matches("tlsv")
            .trim_start_matches("tls")
            .trim_start_matches(['v', '_', ' ']);
        match digits {
            "1.2" | "12" | "1_2" => Ok(Self::V1_2),
            "1.3" | "13" | "1_3" => Ok(Self::V1_3),
            _ => Err(TlsError::UnsupportedVersion(text.trim().to_owned())),
        }
    }
}

/// What a TLS endpoint negotiates.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtocolSettings {
    /// Lowest version accepted (default 1.2).
    pub min_version: TlsVersion,
    /// Highest version offered (default 1.3).
    pub max_version: TlsVersion,
    /// Allowed cipher suites in preference order; `None`: every implemented suite.
    pub cipher_suites: Option<Vec<SupportedCipherSuite>>,
    /// Whether HTTP/2 is offered by ALPN (default on).
    pub http2: bool,
}

impl Default for ProtocolSettings {
    fn default() -> Self {
        Self {
            min_version: TlsVersion::V1_2,
            max_version: TlsVersion::V1_3,
            cipher_suites: None,
            http2: true,
        }
    }
}

impl ProtocolSettings {
    /// Checks the settings can make a working TLS endpoint: min ≤ max, and at least
    /// one allowed suite for an allowed version.
    ///
    /// # Errors
    ///
    /// [`TlsError::VersionRange`] or [`TlsError::NoSuiteForVersions`].
    pub fn validate(&self) -> Result<(), TlsError> {
        if self.min_version > self.max_version {
            return Err(TlsError::VersionRange {
                min: self.min_version,
                max: self.max_version,
            });
        }
        let versions = self.versions();
        let usable = self.cipher_suites.as_ref().is_none_or(|suites| {
            suites
                .iter()
                .any(|suite| versions.iter().any(|v| suite.version() == *v))
        });
        if usable {
            Ok(())
        } else {
            Err(TlsError::NoSuiteForVersions {
                versions: if self.min_version == self.max_version {
                    self.min_version.to_string()
                } else {
                    format!("{}–{}", self.min_version, self.max_version)
                },
            })
        }
    }

    /// The rustls versions from `min_version` to `max_version`.
    #[must_use]
    pub fn versions(&self) -> Vec<&'static SupportedProtocolVersion> {
        [TlsVersion::V1_3, TlsVersion::V1_2]
            .into_iter()
            .filter(|v| (self.min_version..=self.max_version).contains(v))
            .map(TlsVersion::rustls)
            .collect()
    }

    /// Sets the allowed suites from a comma-separated list of names (see [`cipher`]).
    ///
    /// # Errors
    ///
    /// What [`cipher::parse_list`] refuses.
    pub fn set_cipher_suites(&mut self, list: &str) -> Result<(), TlsError> {
        self.cipher_suites = Some(cipher::parse_list(list)?);
        Ok(())
    }

    /// ALPN ids offered by a listener with these settings, most preferred first.
    #[must_use]
    pub fn alpn(&self) -> Vec<Vec<u8>> {
        if self.http2 {
            vec![crate::ALPN_H2.to_vec(), crate::ALPN_HTTP11.to_vec()]
        } else {
            vec![crate::ALPN_HTTP11.to_vec()]
        }
    }

    /// The allowed suites' IANA names, for logs.
    #[must_use]
    pub fn cipher_suite_names(&self) -> Vec<&'static str> {
        match &self.cipher_suites {
            Some(suites) => suites.iter().map(|s| cipher::iana_name(*s)).collect(),
            None => crate::default_provider()
                .cipher_suites
                .iter()
                .map(|s| cipher::iana_name(*s))
                .collect(),
        }
    }
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
