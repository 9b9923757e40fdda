//! Gateway tokens: how a gateway proves to the control plane's Configuration API v2
//! which gateway it is, in Azure API Management's format, so a token works the same way
//! in both.
//!
//! # Format
//!
//! ```text
//! GatewayKey <gatewayId>&<expiry>&<signature>
//! ```
//!
//! - `gatewayId`: the gateway's id (letters, digits, `-`, `_`, `.`; never `&`);
//! - `expiry`: when the token stops being valid, UTC, as `yyyyMMddHHmm` (minute
//!   precision: a requested expiry is rounded down to the minute);
//! - `signature`: standard base64, with padding, of
//!   `HMAC-SHA512(key, "<gatewayId>\n<expiry>")`, where `key` is the gateway's primary or
//!   secondary key string taken as UTF-8 bytes and `<expiry>` is the same 12 digits.
//!
//! The whole value, `GatewayKey ` included, is what goes into the `Authorization` header
//! and into APIM's `config.service.auth` setting. A token is valid until its expiry, at
//! most [`MAX_TOKEN_LIFETIME_SECONDS`] after it was made, and only while the key that
//! signed it is unchanged: regenerating a key invalidates every token signed with it.
//!
//! # Time
//!
//! Nothing here reads a clock: callers pass `now` as seconds since the Unix epoch (UTC,
//! leap seconds ignored, as everywhere). Calendar conversion is
//! [`days_from_civil`]/[`civil_from_days`] (proleptic Gregorian), over the years 1970 to
//! 9999 that `yyyyMMddHHmm` can carry.
//!
//! # Example
//!
//! ```
//! use gatehouse_model::token::GatewayToken;
//!
//! let now = 1_767_322_800; // 2026-01-02T03:00Z
//! let token = GatewayToken::sign("gw1", b"primary-key", now + 3600).unwrap();
//! let header = token.to_header_value(); // "GatewayKey gw1&202601020400&…"
//! let parsed = GatewayToken::parse(&header).unwrap();
//! assert_eq!(parsed.gateway_id(), "gw1");
//! parsed.verify(b"primary-key", now).unwrap();
//! ```

use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use sha2::Sha512;
use subtle::ConstantTimeEq as _;

/// The authorization scheme of a gateway token.
pub const SCHEME: &str = "GatewayKey";

/// The longest a token may be valid: 30 days, as in APIM.
pub const MAX_TOKEN_LIFETIME_SECONDS: i64 = 30 * 24 * 60 * 60;

/// Clock difference tolerated between the machine that made a token and the one that
/// checks it, when [`GatewayToken::verify`] enforces [`MAX_TOKEN_LIFETIME_SECONDS`].
pub const CLOCK_SKEW_SECONDS: i64 = 5 * 60;

/// The earliest expiry a token can carry: 1970-01-01T00:00Z.
pub const MIN_EXPIRY_UNIX: i64 = 0;

/// The latest expiry a token can carry: 9999-12-31T23:59Z (four-digit years).
pub const MAX_EXPIRY_UNIX: i64 = 253_402_300_740;

/// Length in bytes of an HMAC-SHA512 signature.
const SIGNATURE_LEN: usize = 64;

/// Where to point a user whose token is refused.
const HOW_TO_RENEW: &str = "generate a new one with `gatehouse gateway token";

/// A gateway token: gateway id, expiry and signature.
///
/// Made by [`GatewayToken::sign`] or [`GatewayToken::parse`], so its parts are always
/// well-formed: the id is a valid gateway id, the expiry a whole minute between
/// [`MIN_EXPIRY_UNIX`] and [`MAX_EXPIRY_UNIX`], and the signature canonical base64 of 64
/// bytes. Whether the signature is right is [`GatewayToken::verify`]'s job.
///
/// The token is a credential: its [`Display`](fmt::Display) form (the header value) lets
/// whoever holds it read the gateway's configuration, secrets included. `Debug` leaves
/// the signature out.
#[derive(Clone, PartialEq, Eq)]
pub struct GatewayToken {
    gateway_id: String,
    expiry_unix: i64,
    signature: String,
}

/// Which part of a token is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPart {
    /// The whole value: empty, wrong scheme, or not three `&`-separated parts.
    Structure,
    /// The gateway id.
    GatewayId,
    /// The expiry.
    Expiry,
    /// The signature.
    Signature,
}

impl fmt::Display for TokenPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Structure => "token",
            Self::GatewayId => "gateway id",
            Self::Expiry => "expiry",
            Self::Signature => "signature",
        })
    }
}

/// Why a token could not be made, read or accepted. No message quotes a signature or a
/// key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The text is not a gateway token.
    #[error(
        "the gateway token is malformed ({part}: {reason}); expected `GatewayKey <gatewayId>&<yyyyMMddHHmm>&<signature>`: copy the whole value printed by `gatehouse gateway token <gateway>`"
    )]
    Malformed {
        /// The part at fault.
        part: TokenPart,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The token's expiry has passed.
    #[error(
        "the token of gateway `{gateway_id}` expired at {}; {HOW_TO_RENEW} {gateway_id}` and update the gateway's `config.service.auth`",
        format_utc_minute(*expired_at)
    )]
    Expired {
        /// The gateway the token is for.
        gateway_id: String,
        /// When it expired (seconds since the Unix epoch).
        expired_at: i64,
    },
    /// The signature does not match the key(s) it was checked against.
    #[error(
        "the token's signature does not match the keys of gateway `{gateway_id}`: it was signed with a key that has since been regenerated, or for another control plane, or it was altered; {HOW_TO_RENEW} {gateway_id}`"
    )]
    BadSignature {
        /// The gateway the token claims to be for.
        gateway_id: String,
    },
    /// The requested expiry is further away than [`MAX_TOKEN_LIFETIME_SECONDS`] allows
    /// (or, checking a token, further than a token could have been made for).
    #[error(
        "the expiry {} is more than 30 days away; choose one no later than {}",
        format_utc_minute(*expiry),
        format_utc_minute(*latest)
    )]
    ExpiryTooFar {
        /// The expiry asked for (seconds since the Unix epoch).
        expiry: i64,
        /// The latest acceptable expiry (seconds since the Unix epoch).
        latest: i64,
    },
    /// The requested expiry is not in the future.
    #[error(
        "the expiry {} is not in the future (now is {}); choose a later one, up to 30 days away",
        format_utc_minute(*expiry),
        format_utc_minute(*now)
    )]
    ExpiryInPast {
        /// The expiry asked for, rounded down to the minute (seconds since the Unix epoch).
        expiry: i64,
        /// The time it was checked at (seconds since the Unix epoch).
        now: i64,
    },
    /// The expiry cannot be written as `yyyyMMddHHmm`.
    #[error(
        "the expiry {expiry} (seconds since 1970) is outside 1970-01-01T00:00Z..9999-12-31T23:59Z"
    )]
    ExpiryOutOfRange {
        /// The expiry asked for (seconds since the Unix epoch).
        expiry: i64,
    },
    /// The gateway id cannot be put in a token.
    #[error(
        "`{gateway_id}` is not a valid gateway id: it must be 1 to 256 letters, digits, `-`, `_` or `.`"
    )]
    InvalidGatewayId {
        /// The id given.
        gateway_id: String,
    },
    /// The signing key is empty: anyone could compute such a signature.
    #[error(
        "the gateway key is empty; regenerate the gateway's keys (`POST /gateways/<id>/regenerate-key`)"
    )]
    EmptyKey,
}

impl GatewayToken {
    /// Signs a token for `gateway_id` with `key` (the gateway's primary or secondary key
    /// as UTF-8 bytes), valid until `expiry_unix` rounded down to the minute.
    ///
    /// This does not check the lifetime; call [`validate_expiry`] first with the current
    /// time to keep to [`MAX_TOKEN_LIFETIME_SECONDS`].
    ///
    /// # Errors
    ///
    /// [`TokenError::InvalidGatewayId`], [`TokenError::EmptyKey`] or
    /// [`TokenError::ExpiryOutOfRange`].
    pub fn sign(gateway_id: &str, key: &[u8], expiry_unix: i64) -> Result<Self, TokenError> {
        if !is_valid_gateway_id(gateway_id) {
            return Err(TokenError::InvalidGatewayId {
                gateway_id: gateway_id.to_owned(),
            });
        }
        if !(MIN_EXPIRY_UNIX..MAX_EXPIRY_UNIX + 60).contains(&expiry_unix) {
            return Err(TokenError::ExpiryOutOfRange {
                expiry: expiry_unix,
            });
        }
        let expiry_unix = expiry_unix - expiry_unix.rem_euclid(60);
        let mac = mac(key, gateway_id, &format_expiry(expiry_unix)).ok_or(TokenError::EmptyKey)?;
        Ok(Self {
            gateway_id: gateway_id.to_owned(),
            expiry_unix,
            signature: base64::engine::general_purpose::STANDARD.encode(mac),
        })
    }

    /// Reads a token: `GatewayKey <gatewayId>&<yyyyMMddHHmm>&<signature>`, or the same
    /// without the scheme. Surrounding whitespace (a trailing newline from a file) is
    /// ignored; the scheme is matched case-insensitively, as HTTP does.
    ///
    /// # Errors
    ///
    /// [`TokenError::Malformed`] naming the part at fault.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let malformed = |part, reason| TokenError::Malformed { part, reason };
        let text = text.trim();
        let value = match text.split_once(char::is_whitespace) {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case(SCHEME) => rest.trim_start(),
            Some(_) => {
                return Err(malformed(
                    TokenPart::Structure,
                    "it must start with `GatewayKey ` and contain no other spaces",
                ));
            }
            None => text,
        };
        if value.is_empty() {
            return Err(malformed(TokenPart::Structure, "it is empty"));
        }
        if value.contains(char::is_whitespace) {
            return Err(malformed(
                TokenPart::Structure,
                "it contains whitespace after `GatewayKey `",
            ));
        }
        let mut parts = value.split('&');
        let (Some(gateway_id), Some(expiry), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed(
                TokenPart::Structure,
                "it must have exactly three parts separated by `&`",
            ));
        };
        if !is_valid_gateway_id(gateway_id) {
            return Err(malformed(
                TokenPart::GatewayId,
                "it must be 1 to 256 letters, digits, `-`, `_` or `.`",
            ));
        }
        let expiry_unix = parse_expiry(expiry).ok_or_else(|| {
            malformed(
                TokenPart::Expiry,
                "it must be a valid UTC date and time written as 12 digits, yyyyMMddHHmm",
            )
        })?;
        match base64::engine::general_purpose::STANDARD.decode(signature) {
            Ok(bytes) if bytes.len() == SIGNATURE_LEN => {}
            Ok(_) => {
                return Err(malformed(
                    TokenPart::Signature,
                    "it must be the base64 of a 64-byte HMAC-SHA512",
                ));
            }
            Err(_) => {
                return Err(malformed(
                    TokenPart::Signature,
                    "it is not standard base64 with padding",
                ));
            }
        }
        Ok(Self {
            gateway_id: gateway_id.to_owned(),
            expiry_unix,
            signature: signature.to_owned(),
        })
    }

    /// The gateway this token is for. The caller checks that it is the gateway being
    /// asked about (a token for gateway A gets 403 on gateway B).
    #[must_use]
    pub fn gateway_id(&self) -> &str {
        &self.gateway_id
    }

    /// When the token stops being valid, in seconds since the Unix epoch (a whole
    /// minute).
    #[must_use]
    pub const fn expiry_unix(&self) -> i64 {
        self.expiry_unix
    }

    /// The expiry as the token writes it: UTC `yyyyMMddHHmm`.
    #[must_use]
    pub fn expiry_text(&self) -> String {
        format_expiry(self.expiry_unix)
    }

    /// The signature, standard base64. A credential: do not log it.
    #[must_use]
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// The `Authorization` header value: `GatewayKey <gatewayId>&<expiry>&<signature>`.
    /// The same as [`Display`](fmt::Display).
    #[must_use]
    pub fn to_header_value(&self) -> String {
        self.to_string()
    }

    /// Checks the token against one key at time `now_unix`: the signature first, then
    /// the expiry (valid while `now_unix` is before it), then that the expiry is no
    /// further away than a token could have been made for
    /// ([`MAX_TOKEN_LIFETIME_SECONDS`] plus [`CLOCK_SKEW_SECONDS`]).
    ///
    /// The signature is compared in constant time. An empty key matches nothing.
    ///
    /// # Errors
    ///
    /// [`TokenError::BadSignature`], [`TokenError::Expired`] or
    /// [`TokenError::ExpiryTooFar`].
    pub fn verify(&self, key: &[u8], now_unix: i64) -> Result<(), TokenError> {
        self.verify_any(&[key], now_unix)
    }

    /// As [`GatewayToken::verify`], accepting a signature by any of `keys` (the
    /// gateway's primary and secondary keys). Every key is tried, so the time taken does
    /// not tell which one matched.
    ///
    /// # Errors
    ///
    /// As [`GatewayToken::verify`]; [`TokenError::BadSignature`] when `keys` is empty.
    pub fn verify_any(&self, keys: &[&[u8]], now_unix: i64) -> Result<(), TokenError> {
        let bad_signature = || TokenError::BadSignature {
            gateway_id: self.gateway_id.clone(),
        };
        // `parse` and `sign` guarantee canonical base64 of 64 bytes.
        let provided = base64::engine::general_purpose::STANDARD
            .decode(&self.signature)
            .map_err(|_| bad_signature())?;
        let expiry = self.expiry_text();
        let mut matched = subtle::Choice::from(0);
        for key in keys {
            if let Some(expected) = mac(key, &self.gateway_id, &expiry) {
                // Constant time: how long this takes must not reveal how many leading
                // bytes of a forged signature are right.
                matched |= expected.as_slice().ct_eq(&provided);
            }
        }
        if !bool::from(matched) {
            return Err(bad_signature());
        }
        if now_unix >= self.expiry_unix {
            return Err(TokenError::Expired {
                gateway_id: self.gateway_id.clone(),
                expired_at: self.expiry_unix,
            });
        }
        let latest = now_unix.saturating_add(MAX_TOKEN_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS);
        if self.expiry_unix > latest {
            return Err(TokenError::ExpiryTooFar {
                expiry: self.expiry_unix,
                latest,
            });
        }
        Ok(())
    }
}

impl fmt::Display for GatewayToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME} {}&{}&{}",
            self.gateway_id,
            format_expiry(self.expiry_unix),
            self.signature
        )
    }
}

impl fmt::Debug for GatewayToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The signature is the secret part: keep it out of logs and panic messages.
        f.debug_struct("GatewayToken")
            .field("gateway_id", &self.gateway_id)
            .field("expiry", &format_utc_minute(self.expiry_unix))
            .field("signature", &"<secret>")
            .finish()
    }
}

impl std::str::FromStr for GatewayToken {
    type Err = TokenError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// Checks an expiry asked for at time `now_unix`, before signing a token: once rounded
/// down to the minute (as [`GatewayToken::sign`] does) it must be after `now_unix` and
/// at most [`MAX_TOKEN_LIFETIME_SECONDS`] after it.
///
/// # Errors
///
/// [`TokenError::ExpiryInPast`] or [`TokenError::ExpiryTooFar`].
pub fn validate_expiry(now_unix: i64, expiry_unix: i64) -> Result<(), TokenError> {
    let expiry = expiry_unix - expiry_unix.rem_euclid(60);
    if expiry <= now_unix {
        return Err(TokenError::ExpiryInPast {
            expiry,
            now: now_unix,
        });
    }
    let latest = now_unix.saturating_add(MAX_TOKEN_LIFETIME_SECONDS);
    if expiry > latest {
        return Err(TokenError::ExpiryTooFar { expiry, latest });
    }
    Ok(())
}

/// Formats seconds since the Unix epoch as `yyyy-MM-ddTHH:mmZ` (UTC, seconds dropped),
/// for messages and status pages.
#[must_use]
pub fn format_utc_minute(unix: i64) -> String {
    let (year, month, day, hour, minute) = civil_minute(unix);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}Z")
}

/// The HMAC-SHA512 of `"<gateway_id>\n<expiry>"` under `key`; `None` for an empty key.
fn mac(key: &[u8], gateway_id: &str, expiry: &str) -> Option<[u8; SIGNATURE_LEN]> {
    if key.is_empty() {
        return None;
    }
    // HMAC takes keys of any length, so this never fails.
    let mut mac = Hmac::<Sha512>::new_from_slice(key).ok()?;
    mac.update(gateway_id.as_bytes());
    mac.update(b"\n");
    mac.update(expiry.as_bytes());
    let mut out = [0; SIGNATURE_LEN];
    out.copy_from_slice(&mac.finalize().into_bytes());
    Some(out)
}

/// Same rule as the configuration's ids, which guarantees no `&` or whitespace.
fn is_valid_gateway_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 256
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `yyyyMMddHHmm` of seconds since the Unix epoch (UTC, seconds dropped).
fn format_expiry(unix: i64) -> String {
    let (year, month, day, hour, minute) = civil_minute(unix);
    format!("{year:04}{month:02}{day:02}{hour:02}{minute:02}")
}

/// Reads `yyyyMMddHHmm` (UTC) into seconds since the Unix epoch; `None` unless it is 12
/// digits naming a real minute from 1970 on.
fn parse_expiry(text: &str) -> Option<i64> {
    if text.len() != 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |range: std::ops::Range<usize>| text.get(range)?.parse::<u32>().ok();
    let year = i64::from(field(0..4)?);
    let month = field(4..6)?;
    let day = field(6..8)?;
    let hour = field(8..10)?;
    let minute = field(10..12)?;
    if year < 1970
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + i64::from(hour * 3600 + minute * 60))
}

/// Year, month, day, hour and minute (UTC) of seconds since the Unix epoch.
fn civil_minute(unix: i64) -> (i64, u32, u32, i64, i64) {
    let days = unix.div_euclid(86_400);
    let seconds = unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    (year, month, day, seconds / 3600, seconds % 3600 / 60)
}

/// Whether `year` is a leap year in the proleptic Gregorian calendar.
#[must_use]
pub const fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// The number of days in `month` (1 to 12) of `year`; 0 for a month out of range.
#[must_use]
pub const fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a date in the proleptic Gregorian calendar (negative
/// before). `month` is 1 to 12, `day` 1 to 31; out-of-range values give meaningless
/// results, not a panic.
///
/// Howard Hinnant's `days_from_civil`: years counted from March, so the leap day is the
/// last day of the year, in 400-year eras of 146 097 days.
#[must_use]
pub const fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (month, day) = (month as i64, day as i64);
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400); // 0..=399
    let month_from_march = (month + 9) % 12; // March = 0 … February = 11
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1; // 0..=365
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date (year, month 1 to 12, day 1 to 31) of a number of days since 1970-01-01, in
/// the proleptic Gregorian calendar. The inverse of [`days_from_civil`].
#[must_use]
pub const fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468; // days since 0000-03-01
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097); // 0..=146_096
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153; // 0..=11
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1; // 1..=31
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + if month <= 2 { 1 } else { 0 };
    // Lossless: month is 1..=12 and day 1..=31 by construction.
    (year, month as u32, day as u32)
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
