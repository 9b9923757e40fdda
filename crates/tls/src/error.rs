//! Errors of this crate: each names what was being loaded and what is wrong with it.

/// Why a certificate, key or TLS setting cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// PEM text holds no usable block of the expected kind, or a block does not decode.
    #[error("{what}: {reason}")]
    Pem {
        /// What was being read (`certificate`, `private key`, `CA bundle`).
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A certificate's DER does not parse as X.509.
    #[error("the certificate does not parse as X.509: {0}")]
    X509(String),
    /// The private key is of a kind the crypto provider cannot sign with.
    #[error("the private key cannot be used: {0}")]
    UnsupportedKey(String),
    /// The private key does not belong to the leaf certificate.
    #[error(
        "the private key does not match the certificate (subject `{subject}`); the key must be the one the certificate was issued for"
    )]
    KeyMismatch {
        /// The leaf's subject.
        subject: String,
    },
    /// The leaf certificate's validity ended.
    #[error("the certificate (subject `{subject}`) expired on {not_after}")]
    Expired {
        /// The leaf's subject.
        subject: String,
        /// When it stopped being valid (RFC 3339).
        not_after: String,
    },
    /// The leaf certificate's validity has not begun.
    #[error("the certificate (subject `{subject}`) is not valid before {not_before}")]
    NotYetValid {
        /// The leaf's subject.
        subject: String,
        /// When it starts being valid (RFC 3339).
        not_before: String,
    },
    /// A cipher suite name nobody knows.
    #[error("unknown TLS cipher suite `{name}`; supported: {supported}")]
    UnknownCipherSuite {
        /// The name as given.
        name: String,
        /// The supported IANA names, comma-separated.
        supported: String,
    },
    /// A cipher suite that exists but that Gatehouse's TLS stack does not implement.
    #[error("TLS cipher suite `{name}` is not available: {reason}; supported: {supported}")]
    UnavailableCipherSuite {
        /// The name as given.
        name: String,
        /// Why rustls does not implement it.
        reason: &'static str,
        /// The supported IANA names, comma-separated.
        supported: String,
    },
    /// An empty list of cipher suites.
    #[error("the list of TLS cipher suites is empty; leave the setting out for the defaults")]
    NoCipherSuites,
    /// A TLS version that is unknown or not implemented.
    #[error("TLS version `{0}` is not supported; use 1.2 or 1.3")]
    UnsupportedVersion(String),
    /// Minimum above maximum.
    #[error("the minimum TLS version ({min}) is above the maximum ({max})")]
    VersionRange {
        /// The minimum.
        min: crate::TlsVersion,
        /// The maximum.
        max: crate::TlsVersion,
    },
    /// The allowed suites include none usable with the allowed versions.
    #[error(
        "none of the allowed cipher suites works with TLS {versions}; TLS 1.3 needs one of TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256 and TLS 1.2 one of the TLS_ECDHE_* suites"
    )]
    NoSuiteForVersions {
        /// The allowed versions, e.g. `1.2–1.3`.
        versions: String,
    },
    /// HTTP/3 asked for while TLS 1.3 is not allowed.
    #[error("HTTP/3 runs on QUIC, which needs TLS 1.3; the maximum TLS version is 1.2")]
    Http3NeedsTls13,
    /// The system's trusted CA certificates could not be loaded.
    #[error("cannot load the system's trusted CA certificates: {0}")]
    SystemRoots(String),
    /// rustls refused a configuration.
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
    /// rustls refused a certificate verifier configuration.
    #[error("TLS certificate verification cannot be set up: {0}")]
    Verifier(String),
}
