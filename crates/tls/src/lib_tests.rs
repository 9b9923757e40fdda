use super::*;

/// An error whose source is `inner`, like hyper-util's client error.
#[derive(Debug)]
struct Outer(std::io::Error);

impl std::fmt::Display for Outer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("client error (Connect)")
    }
}

impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn wrapped_twice() -> std::io::Error {
    let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
    let once = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
    std::io::Error::other(once)
}

#[test]
fn a_rustls_error_is_found_inside_nested_io_errors() {
    let error = wrapped_twice();
    assert!(matches!(
        as_rustls_error(&error),
        Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
        ))
    ));
    let plain = std::io::Error::other("connection refused");
    assert!(as_rustls_error(&plain).is_none());
}

#[test]
fn the_source_chain_is_walked_too() {
    let outer = Outer(wrapped_twice());
    // The outer error is not TLS's itself; its source is.
    assert!(as_rustls_error(&outer).is_none());
    assert!(rustls_cause(&outer).is_some());
    assert!(rustls_cause(&Outer(std::io::Error::other("reset"))).is_none());
}
