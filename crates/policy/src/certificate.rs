//! The TLS client certificate a request came with (APIM's `context.Request.Certificate`),
//! and the name and number handling `validate-client-certificate` needs to compare it
//! with what a policy lists.
//!
//! The gateway fills a [`ClientCertificate`] once per connection, after the TLS
//! handshake, and hands it to every request on that connection through
//! [`crate::RequestFacts::client_certificate`]. This crate never parses X.509: it only
//! computes the thumbprints of the configuration's `Certificate` entities (SHA-1 of the
//! DER of their first PEM block) at compile time.

use std::time::Duration;

use base64::Engine as _;
use sha1::{Digest as _, Sha1};

/// The client certificate of the TLS connection a request came on (`context.Request.Certificate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The subject's distinguished name in RFC 4514 form, most specific attribute
    /// first: `CN=client.example.com, O=Contoso` (APIM's `Subject` and
    /// `SubjectName.Name`).
    pub subject: String,
    /// The issuer's distinguished name, in the same form (APIM's `Issuer`).
    pub issuer: String,
    /// The subject's common name (`CN`), if it has one.
    pub common_name: Option<String>,
    /// SHA-1 of the certificate's DER encoding, as uppercase hexadecimal without
    /// separators (APIM's `Thumbprint`); [`ClientCertificate::thumbprint_of`] computes it.
    pub thumbprint: String,
    /// The serial number as uppercase hexadecimal (APIM's `SerialNumber`).
    pub serial_number: String,
    /// Start of the validity period (`notBefore`), as a [`Duration`] since the Unix
    /// epoch.
    pub not_before: Duration,
    /// End of the validity period (`notAfter`), as a [`Duration`] since the Unix epoch.
    pub not_after: Duration,
    /// The `dNSName` entries of the subjectAltName extension, as written in the
    /// certificate.
    pub dns_names: Vec<String>,
    /// Thumbprint (same form as `thumbprint`) of the certificate that issued this one,
    /// when the gateway knows it: the configured client CA that verified the chain at
    /// the handshake, or else the next certificate the client sent. `None` otherwise.
    pub issuer_thumbprint: Option<String>,
    /// Whether the chain was verified at the handshake against the configuration's
    /// client CA certificates (`Certificate` entities with `clientCa: true`).
    pub trusted: bool,
}

impl ClientCertificate {
    /// The thumbprint of a certificate, given its DER encoding: SHA-1, uppercase
    /// hexadecimal, no separators (`5E7FC1A1F7AD302EDFBFB0B87C5AF2A299B72858`), the form
    /// APIM shows and policies compare against.
    pub fn thumbprint_of(der: &[u8]) -> String {
        hex::encode_upper(Sha1::digest(der))
    }
}

/// The thumbprint of the first `CERTIFICATE` block of a PEM text; `None` when there is
/// no such block or its body is not base64.
pub(crate) fn pem_thumbprint(pem: &str) -> Option<String> {
    let mut lines = pem.lines().map(str::trim);
    lines.find(|line| *line == "-----BEGIN CERTIFICATE-----")?;
    let mut body = String::new();
    for line in lines {
        if line == "-----END CERTIFICATE-----" {
            let der = base64::engine::general_purpose::STANDARD
                .decode(body.as_bytes())
                .ok()?;
            return (!der.is_empty()).then(|| ClientCertificate::thumbprint_of(&der));
        }
        body.push_str(line);
    }
    None
}

/// A thumbprint as written in a policy, normalised to the form of
/// [`ClientCertificate::thumbprint`]: whitespace, `:` and the invisible left-to-right
/// mark that Windows' certificate dialog copies along are dropped, letters
/// upper-cased. `None` unless 40 hexadecimal digits remain.
pub(crate) fn normalize_thumbprint(text: &str) -> Option<String> {
    let digits = hex_digits(text)?;
    (digits.len() == 40).then_some(digits)
}

/// A serial number, normalised for comparison: like a thumbprint, and without leading
/// zeros (DER adds a `00` byte before a serial whose first bit is set; some tools show
/// it, some do not). `None` unless at least one hexadecimal digit remains.
pub(crate) fn normalize_serial(text: &str) -> Option<String> {
    let digits = hex_digits(text)?;
    let significant = digits.trim_start_matches('0');
    Some(if significant.is_empty() {
        "0".to_owned()
    } else {
        significant.to_owned()
    })
}

/// Upper-case hexadecimal digits of `text` without separators; `None` if empty or if
/// anything else is in it.
fn hex_digits(text: &str) -> Option<String> {
    let mut digits = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            ':' | '\u{200E}' | '\u{200F}' => {}
            space if space.is_whitespace() => {}
            digit if digit.is_ascii_hexdigit() => digits.push(digit.to_ascii_uppercase()),
            _ => return None,
        }
    }
    (!digits.is_empty()).then_some(digits)
}

/// A name value (a `CN`, an attribute of a distinguished name) as compared: case
/// ignored, runs of whitespace collapsed to one space, ends trimmed (X.520's
/// `caseIgnoreMatch`, roughly).
pub(crate) fn normalize_name(value: &str) -> String {
    value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// A distinguished name, kept as its attributes (type and value) normalised and sorted,
/// so two names are equal when they have the same attributes in any order.
///
/// Order is ignored because the same name is written both ways: .NET and RFC 4514 put
/// the most specific attribute first (`CN=…, O=…, C=US`), APIM's own documentation and
/// many tools the other way round. Types are matched case-insensitively with their
/// usual aliases (`S` = `ST`, `EMAIL` = `E`, `OID.2.5.4.3` = `CN`); values as
/// [`normalize_name`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DistinguishedName(Vec<(String, String)>);

impl DistinguishedName {
    /// Reads `CN=client, O="Contoso, Inc.", C=US`: attributes separated by `,` (or `;`,
    /// or `+` inside a multi-valued RDN); values plain with RFC 4514 escapes (`\,`,
    /// `\2C`) or in double quotes (`""` or `\"` for a quote inside).
    ///
    /// # Errors
    ///
    /// What is wrong, for an error message.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut attributes = Vec::new();
        let mut rest = text.trim_start();
        if rest.is_empty() {
            return Err("it is empty".to_owned());
        }
        loop {
            let Some(equals) = rest.find('=') else {
                return Err(format!("`{}` has no `=`", rest.trim()));
            };
            let kind = attribute_type(rest[..equals].trim())?;
            let (value, after) = attribute_value(&rest[equals + 1..])?;
            attributes.push((kind, normalize_name(&value)));
            let Some(separator) = after.chars().next() else {
                break;
            };
            rest = after[separator.len_utf8()..].trim_start();
            if rest.is_empty() {
                return Err(format!("nothing follows the last `{separator}`"));
            }
        }
        attributes.sort_unstable();
        Ok(Self(attributes))
    }
}

/// Normalises an attribute type: upper case, `OID.` dropped, aliases and the usual
/// OIDs mapped to their short names.
fn attribute_type(text: &str) -> Result<String, String> {
    if text.is_empty()
        || !text
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || matches!(character, '.' | '-'))
    {
        return Err(format!("`{text}` is not an attribute type such as CN or O"));
    }
    let upper = text.to_ascii_uppercase();
    let upper = upper.strip_prefix("OID.").unwrap_or(&upper);
    let short = match upper {
        "2.5.4.3" | "COMMONNAME" => "CN",
        "2.5.4.4" | "SURNAME" => "SN",
        "2.5.4.5" | "SERIAL" | "DEVICESERIALNUMBER" => "SERIALNUMBER",
        "2.5.4.6" | "COUNTRYNAME" => "C",
        "2.5.4.7" | "LOCALITYNAME" => "L",
        "2.5.4.8" | "S" | "STATEORPROVINCENAME" => "ST",
        "2.5.4.9" | "STREETADDRESS" => "STREET",
        "2.5.4.10" | "ORGANIZATIONNAME" => "O",
        "2.5.4.11" | "ORGANIZATIONALUNITNAME" => "OU",
        "2.5.4.12" | "TITLE" => "T",
        "2.5.4.42" | "GN" | "GIVENNAME" => "G",
        "0.9.2342.19200300.100.1.1" | "USERID" => "UID",
        "0.9.2342.19200300.100.1.25" | "DOMAINCOMPONENT" => "DC",
        "1.2.840.113549.1.9.1" | "EMAIL" | "EMAILADDRESS" => "E",
        other => other,
    };
    Ok(short.to_owned())
}

/// Reads one value up to the next unescaped, unquoted separator; returns the value and
/// the text from the separator on (empty at the end).
fn attribute_value(text: &str) -> Result<(String, &str), String> {
    let text = text.trim_start();
    let mut bytes = Vec::new();
    let mut chars = text.char_indices().peekable();
    if text.starts_with('"') {
        chars.next();
        loop {
            match chars.next() {
                None => return Err("a quoted value is never closed".to_owned()),
                Some((_, '"')) if chars.peek().is_some_and(|(_, next)| *next == '"') => {
                    chars.next();
                    bytes.push(b'"');
                }
                Some((_, '"')) => break,
                Some((_, '\\')) => escape(&mut chars, &mut bytes)?,
                Some((_, other)) => push_char(&mut bytes, other),
            }
        }
        while chars.peek().is_some_and(|(_, next)| next.is_whitespace()) {
            chars.next();
        }
        let end = match chars.next() {
            None => text.len(),
            Some((index, ',' | ';' | '+')) => index,
            Some((_, other)) => {
                return Err(format!("`{other}` after a quoted value; expected `,`"));
            }
        };
        let value = String::from_utf8(bytes).map_err(|_| "an escape is not UTF-8".to_owned())?;
        return Ok((value, &text[end..]));
    }
    // Unquoted: trailing unescaped spaces are not part of the value.
    let mut significant = 0;
    let mut end = text.len();
    while let Some((index, character)) = chars.next() {
        match character {
            ',' | ';' | '+' => {
                end = index;
                break;
            }
            '\\' => {
                escape(&mut chars, &mut bytes)?;
                significant = bytes.len();
            }
            '"' => return Err("a `\"` inside a value must be escaped as `\\\"`".to_owned()),
            other => {
                push_char(&mut bytes, other);
                if !other.is_whitespace() {
                    significant = bytes.len();
                }
            }
        }
    }
    bytes.truncate(significant);
    let value = String::from_utf8(bytes).map_err(|_| "an escape is not UTF-8".to_owned())?;
    Ok((value, &text[end..]))
}

/// After a `\`: a special character stands for itself, two hex digits for a byte.
fn escape(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    bytes: &mut Vec<u8>,
) -> Result<(), String> {
    let Some((_, first)) = chars.next() else {
        return Err("a value ends with a lone `\\`".to_owned());
    };
    if let Some(high) = first.to_digit(16) {
        let Some(low) = chars.peek().and_then(|(_, next)| next.to_digit(16)) else {
            return Err(format!(
                "`\\{first}` is not an escape; write `\\\\` for a backslash or two hex digits"
            ));
        };
        chars.next();
        // Both digits are below 16, so the byte fits.
        bytes.push(u8::try_from(high * 16 + low).unwrap_or_default());
    } else {
        push_char(bytes, first);
    }
    Ok(())
}

fn push_char(bytes: &mut Vec<u8>, character: char) {
    let mut buffer = [0; 4];
    bytes.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
}

#[cfg(test)]
#[path = "certificate_tests.rs"]
mod tests;
