use super::*;

/// A real self-signed certificate (`openssl req -x509 -newkey ec …`, CN api.example.com).
const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBiTCCAS+gAwIBAgIUKqodSCFcyUsIXFOslezUUAMSAREwCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPYXBpLmV4YW1wbGUuY29tMB4XDTI2MTEyMzE2NDQ1MVoXDTM2
MTEyMDE2NDQ1MVowGjEYMBYGA1UEAwwPYXBpLmV4YW1wbGUuY29tMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEjqZD3fdEoTCTIqwHH102jz7CYpBw9NF2gnQ5ob4F
+yqBp3Culxw3wSe/SNZGsL+cWHiK3WUybPMVK5KD6Un1xKNTMFEwHQYDVR0OBBYE
FNN+Lz/BefUh28tPziQd3f062tuEMB8GA1UdIwQYMBaAFNN+Lz/BefUh28tPziQd
3f062tuEMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIhAMQOYCxh
VrSZsNNrbIaR1UsHrLi1ktxBcCZZkwOufY7xAiAFwhPA4UwOuF7mAN2ABSVfEbVv
6y0G76FbtfIuD069hw==
-----END CERTIFICATE-----
";

/// The shape of a private key, with a body that is not one (base64 of a sentence).
const KEY_BODY: &str =
    "Z2F0ZWhvdXNlIHRlc3QgZml4dHVyZTogbm90IGEgcmVhbCBwcml2YXRlIGtleSwgc2hhcGUgb25seQ==";

fn key(label: &str) -> String {
    format!("-----BEGIN {label}-----\n{KEY_BODY}\n-----END {label}-----\n")
}

#[test]
fn certificate_chains_are_accepted() {
    check_certificate_chain(CERT).unwrap();
    // A chain, with CRLF line ends, OpenSSL's bag attributes and no final newline.
    let chain = format!(
        "Bag Attributes\r\n    friendlyName: leaf\r\n{}\r\n{}",
        CERT.replace('\n', "\r\n"),
        CERT.trim_end()
    );
    check_certificate_chain(&chain).unwrap();
    assert_eq!(labels(&chain).unwrap(), ["CERTIFICATE", "CERTIFICATE"]);
    // Indented (as in a YAML block scalar that kept its indentation).
    let indented: String = CERT.lines().map(|line| format!("  {line}\n")).collect();
    check_certificate_chain(&indented).unwrap();
}

#[test]
fn private_keys_of_the_usual_kinds_are_accepted() {
    for label in ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"] {
        check_private_key(&key(label)).unwrap();
    }
}

#[test]
fn bad_pem_is_refused_with_a_reason() {
    let body_line = CERT.lines().nth(1).unwrap();
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "no `-----BEGIN CERTIFICATE-----` block"),
        (
            "MIIBiTCCAS+gAwIBAgIU".to_owned(),
            "no `-----BEGIN CERTIFICATE-----` block",
        ),
        (
            CERT.replace("-----END CERTIFICATE-----\n", ""),
            "is never closed",
        ),
        (
            CERT.replace("END CERTIFICATE", "END PRIVATE KEY"),
            "the labels must match",
        ),
        (
            CERT.replace("-----BEGIN CERTIFICATE-----\n", ""),
            "without a matching BEGIN",
        ),
        (
            CERT.replace(body_line, "not base64 at all!"),
            "not valid base64",
        ),
        (
            CERT.replace('=', ""), // padding removed
            "not valid base64",
        ),
        (
            "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".to_owned(),
            "is empty",
        ),
        (
            format!("{CERT}-----BEGIN CERTIFICATE-----\n{body_line}\n{CERT}"),
            "a new BEGIN line",
        ),
        (
            format!("{CERT}{}", key("PRIVATE KEY")),
            "put a private key under `privateKeyPem`",
        ),
        (
            "-----BEGIN -----\nAAAA\n-----END -----\n".to_owned(),
            "no `-----BEGIN CERTIFICATE-----` block",
        ),
    ];
    for (text, expected) in cases {
        let message = check_certificate_chain(&text).unwrap_err();
        assert!(message.contains(expected), "{text:?}: {message}");
    }
}

#[test]
fn bad_private_keys_are_refused_with_a_reason() {
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "no `-----BEGIN PRIVATE KEY-----` block"),
        (CERT.to_owned(), "a `CERTIFICATE` block found"),
        (key("ENCRYPTED PRIVATE KEY"), "decrypt it first"),
        (
            format!(
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n{KEY_BODY}\n-----END RSA PRIVATE KEY-----\n"
            ),
            "decrypt it first",
        ),
        (
            format!("{}{}", key("PRIVATE KEY"), key("PRIVATE KEY")),
            "2 blocks found",
        ),
    ];
    for (text, expected) in cases {
        let message = check_private_key(&text).unwrap_err();
        assert!(message.contains(expected), "{text:?}: {message}");
    }
}

#[test]
fn messages_never_quote_a_key_body() {
    // Security: a private key must not leak through a validation message.
    let broken = key("PRIVATE KEY").replace("==", "=");
    let message = check_private_key(&broken).unwrap_err();
    assert!(!message.contains(&KEY_BODY[..20]), "{message}");
}
