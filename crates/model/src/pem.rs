//! PEM shape checks (RFC 7468) for [`crate::Certificate`]: `-----BEGIN <label>-----` and
//! `-----END <label>-----` markers with matching labels, and a standard base64 body.
//! Nothing is decoded beyond base64: no ASN.1, no crypto. The gateway's TLS stack checks
//! the contents when it loads them.
//!
//! Messages never quote the body of a block, so a private key cannot leak through an
//! error.

use base64::Engine as _;

/// Labels accepted for a private key: PKCS #8, PKCS #1 (RSA) and SEC1 (EC), unencrypted.
const PRIVATE_KEY_LABELS: [&str; 3] = ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"];

/// Splits `text` into PEM blocks, checks each one's markers and base64 body, and returns
/// their labels (`CERTIFICATE`, `PRIVATE KEY`, …) in order.
///
/// Text outside blocks (OpenSSL's `Bag Attributes`, comments) is ignored, as RFC 7468
/// allows. Lines may end in `\n` or `\r\n`.
pub(crate) fn labels(text: &str) -> Result<Vec<&str>, String> {
    let mut blocks = Vec::new();
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()));
    while let Some((line_no, line)) = lines.next() {
        if let Some(label) = marker(line, "END") {
            return Err(format!(
                "line {line_no}: `-----END {label}-----` without a matching BEGIN line"
            ));
        }
        let Some(label) = marker(line, "BEGIN") else {
            continue;
        };
        let mut body = String::new();
        let mut ended = false;
        for (end_no, line) in lines.by_ref() {
            if let Some(end_label) = marker(line, "END") {
                if end_label != label {
                    return Err(format!(
                        "line {end_no}: `-----END {end_label}-----` closes `-----BEGIN {label}-----` (line {line_no}); the labels must match"
                    ));
                }
                ended = true;
                break;
            }
            if marker(line, "BEGIN").is_some() {
                return Err(format!(
                    "line {end_no}: a new BEGIN line before `-----END {label}-----` (block opened on line {line_no})"
                ));
            }
            if line.contains(':') {
                // RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`) mark a legacy encrypted key.
                return Err(format!(
                    "line {end_no}: a header line inside the `{label}` block; encrypted PEM is not supported, decrypt it first (`openssl pkey -in key.pem -out plain.pem`)"
                ));
            }
            body.push_str(line);
        }
        if !ended {
            return Err(format!(
                "line {line_no}: `-----BEGIN {label}-----` is never closed by `-----END {label}-----`"
            ));
        }
        match base64::engine::general_purpose::STANDARD.decode(body.as_bytes()) {
            Ok(bytes) if bytes.is_empty() => {
                return Err(format!("line {line_no}: the `{label}` block is empty"));
            }
            Ok(_) => {}
            Err(_) => {
                return Err(format!(
                    "line {line_no}: the body of the `{label}` block is not valid base64"
                ));
            }
        }
        blocks.push(label);
    }
    Ok(blocks)
}

/// The label of a `-----BEGIN <label>-----` (or END) line, if `line` is one.
fn marker<'a>(line: &'a str, kind: &str) -> Option<&'a str> {
    let label = line
        .strip_prefix("-----")?
        .strip_prefix(kind)?
        .strip_prefix(' ')?
        .strip_suffix("-----")?;
    (!label.is_empty()).then_some(label)
}

/// Checks a certificate chain: one or more `CERTIFICATE` blocks and nothing else.
pub(crate) fn check_certificate_chain(text: &str) -> Result<(), String> {
    let blocks = labels(text)?;
    if blocks.is_empty() {
        return Err(
            "no `-----BEGIN CERTIFICATE-----` block found; paste the PEM file, markers included"
                .to_owned(),
        );
    }
    for label in blocks {
        if label != "CERTIFICATE" {
            return Err(format!(
                "a `{label}` block found where only `CERTIFICATE` blocks belong; put a private key under `privateKeyPem`"
            ));
        }
    }
    Ok(())
}

/// Checks a private key: exactly one unencrypted private key block.
pub(crate) fn check_private_key(text: &str) -> Result<(), String> {
    let blocks = labels(text)?;
    match blocks.as_slice() {
        [] => Err(
            "no `-----BEGIN PRIVATE KEY-----` block found; paste the PEM file, markers included"
                .to_owned(),
        ),
        [label] if PRIVATE_KEY_LABELS.contains(label) => Ok(()),
        ["ENCRYPTED PRIVATE KEY"] => Err(
            "the private key is encrypted; decrypt it first (`openssl pkey -in key.pem -out plain.pem`)"
                .to_owned(),
        ),
        [label] => Err(format!(
            "a `{label}` block found; expected `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`"
        )),
        _ => Err(format!(
            "{} blocks found; `privateKeyPem` holds exactly one private key",
            blocks.len()
        )),
    }
}

#[cfg(test)]
#[path = "pem_tests.rs"]
mod tests;
