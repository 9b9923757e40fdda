//! Gatehouse's TLS building blocks, on rustls with one crypto provider (`ring`) for the
//! whole workspace.
//!
//! Pure construction, no sockets: this crate turns PEM text and settings into rustls
//! configurations, and the crates that own listeners and clients (`gatehouse-gateway`,
//! `gatehouse-control`, `gatehouse-sync`) use them.
//!
//! - [`ProtocolSettings`]: TLS versions and cipher suites, parsed from IANA or OpenSSL
//!   names ([`cipher`]), checked against what rustls can do.
//! - [`certificate`]: PEM parsing, key/certificate matching, validity, and the details
//!   of a certificate (subject, thumbprint, …) for policies and logs.
//! - [`ServerTls`]: a listener's TLS for one configuration: certificates chosen by SNI
//!   (exact names, then one-label wildcards, then the default), client certificates
//!   asked for or required per host name.
//! - [`client::client_config`]: TLS to backends and to the control plane: system roots
//!   or a CA bundle, an optional client certificate, explicit opt-outs of verification.

pub mod certificate;
pub mod cipher;
pub mod client;
mod error;
mod protocol;
pub mod server;
mod verify;

use std::sync::Arc;

pub use error::TlsError;
pub use protocol::{ProtocolSettings, TlsVersion};
pub use rustls;
pub use server::{ClientAuth, HostCertificate, ServerTls};

/// ALPN protocol id of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN protocol id of HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The crypto provider every TLS configuration of the workspace is built with: rustls's
/// `ring` provider, all its cipher suites and key exchange groups.
#[must_use]
pub fn default_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Installs [`default_provider`] as the process-wide default, for libraries that build
/// their own rustls configurations (`reqwest`, `quinn`). Idempotent; call it once at
/// start.
pub fn install_default_provider() {
    // Err means a provider is installed already: ours, by an earlier call.
    let _ = default_provider().install_default();
}

/// `error` as a rustls error, looking through the `io::Error`s that TLS streams
/// (tokio-rustls, hyper-rustls) wrap it in: an `io::Error` does not list the error it
/// wraps as its `source()`, so a walk of the source chain alone misses it.
#[must_use]
pub fn as_rustls_error<'e>(
    mut error: &'e (dyn std::error::Error + 'static),
) -> Option<&'e rustls::Error> {
    loop {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        error = error.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}

/// The rustls error anywhere in `error`'s source chain ([`as_rustls_error`] on each
/// link), if the failure was TLS's.
#[must_use]
pub fn rustls_cause<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e rustls::Error> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(tls) = as_rustls_error(error) {
            return Some(tls);
        }
        current = error.source();
    }
    None
}

/// A provider narrowed to the cipher suites of `settings`.
pub(crate) fn provider_for(settings: &ProtocolSettings) -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = default_provider();
    if let Some(suites) = &settings.cipher_suites {
        provider.cipher_suites = suites.clone();
    }
    Arc::new(provider)
}

#[cfg(test)]
#[path = "lib_tests.rs"]
mod tests;
