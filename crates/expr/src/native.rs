//! [`Native`]: the objects of the .NET types that are neither scalars, JSON nor the
//! host's context model (`Encoding.UTF8`, a `Uri`, a regular expression `Match`, a hash
//! algorithm, a `Jwt`, ...). They are opaque outside this crate: the evaluator alone
//! reads their members.

use std::fmt;
use std::sync::Arc;

/// An object of one of the built-in .NET types that the evaluator implements itself
/// (`Encoding.UTF8`, `new Uri(...)`, `Regex.Match(...)`, `SHA256.Create()`, `AsJwt()`,
/// ...). A host only passes it along (for example in a variable).
#[derive(Clone, PartialEq)]
pub struct Native(pub(crate) Arc<NativeKind>);

impl Native {
    pub(crate) fn new(kind: NativeKind) -> Self {
        Self(Arc::new(kind))
    }

    pub(crate) fn kind(&self) -> &NativeKind {
        &self.0
    }

    /// The .NET name of its type (`Uri`, `Match`, `Jwt`, ...), for messages.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self.kind() {
            NativeKind::Encoding(_) => "Encoding",
            NativeKind::Uri(_) => "Uri",
            NativeKind::Regex(_) => "Regex",
            NativeKind::Match(_) => "Match",
            NativeKind::Groups(_) => "GroupCollection",
            NativeKind::Group(_) => "Group",
            NativeKind::Hash(_) => "HashAlgorithm",
            NativeKind::Hmac(..) => "HMAC",
            NativeKind::Jwt(_) => "Jwt",
            NativeKind::Claims(_) => "IReadOnlyDictionary<string, string[]>",
            NativeKind::Basic { .. } => "BasicAuthCredentials",
            NativeKind::StringComparison { .. } => "StringComparison",
            NativeKind::Random(_) => "Random",
            NativeKind::JProperty(..) => "JProperty",
        }
    }
}

/// Secrets (an HMAC key, a password) never reach a `Debug` line.
impl fmt::Debug for Native {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind() {
            NativeKind::Encoding(e) => write!(f, "Encoding({e:?})"),
            NativeKind::Uri(u) => write!(f, "Uri({})", u.as_str()),
            NativeKind::Regex(r) => write!(f, "Regex({:?})", r.source),
            NativeKind::Match(groups) | NativeKind::Groups(groups) => {
                write!(f, "{}({:?})", self.type_name(), groups)
            }
            NativeKind::Group(g) => write!(f, "Group({g:?})"),
            NativeKind::Hash(h) => write!(f, "Hash({h:?})"),
            NativeKind::Hmac(h, _) => write!(f, "Hmac({h:?}, <key>)"),
            NativeKind::Jwt(_) => f.write_str("Jwt(<token>)"),
            NativeKind::Claims(_) => f.write_str("Claims(<claims>)"),
            NativeKind::Basic { .. } => f.write_str("BasicAuthCredentials(<credentials>)"),
            NativeKind::StringComparison { name, .. } => write!(f, "StringComparison.{name}"),
            NativeKind::Random(_) => f.write_str("Random"),
            NativeKind::JProperty(name, value) => write!(f, "JProperty({name:?}: {value})"),
        }
    }
}

/// What `ToString()` gives: .NET's type name, or the text for a `Uri` and a match.
impl fmt::Display for Native {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind() {
            NativeKind::Encoding(TextEncoding::Utf8) => f.write_str("System.Text.UTF8Encoding"),
            NativeKind::Encoding(TextEncoding::Ascii) => f.write_str("System.Text.ASCIIEncoding"),
            NativeKind::Encoding(TextEncoding::Unicode) => {
                f.write_str("System.Text.UnicodeEncoding")
            }
            NativeKind::Uri(u) => f.write_str(u.as_str()),
            NativeKind::Regex(r) => f.write_str(&r.source),
            NativeKind::Match(groups) => {
                f.write_str(groups.first().map_or("", |g| g.value.as_str()))
            }
            NativeKind::Group(g) => f.write_str(&g.value),
            NativeKind::Groups(_) => f.write_str("System.Text.RegularExpressions.GroupCollection"),
            NativeKind::Hash(h) => f.write_str(h.type_name()),
            NativeKind::StringComparison { name, .. } => f.write_str(name),
            NativeKind::Random(_) => f.write_str("System.Random"),
            NativeKind::JProperty(name, value) => write!(f, "\"{name}\": {value}"),
            NativeKind::Hmac(h, _) => write!(f, "System.Security.Cryptography.HMAC{}", h.name()),
            NativeKind::Jwt(_) => f.write_str("Jwt"),
            NativeKind::Claims(_) => f.write_str(
                "System.Collections.Generic.Dictionary`2[System.String,System.String[]]",
            ),
            NativeKind::Basic { .. } => f.write_str("BasicAuthCredentials"),
        }
    }
}

#[derive(PartialEq)]
#[allow(dead_code)] // filled in built-in by built-in
pub(crate) enum NativeKind {
    /// `Encoding.UTF8`, `Encoding.ASCII`, `Encoding.Unicode`.
    Encoding(TextEncoding),
    /// `new Uri(...)`: an absolute URI.
    Uri(url::Url),
    /// `new Regex(...)`.
    Regex(Pattern),
    /// A `Match`: its groups, group 0 (the whole match) first.
    Match(Arc<[GroupData]>),
    /// A match's `Groups`.
    Groups(Arc<[GroupData]>),
    /// One group of a match.
    Group(GroupData),
    /// `SHA256.Create()` and friends.
    Hash(HashKind),
    /// `new HMACSHA256(key)` and friends: the algorithm and the key.
    Hmac(HashKind, Vec<u8>),
    /// `AsJwt()`: the decoded header and payload (not validated).
    Jwt(Jwt),
    /// A `Jwt`'s `Claims`: each claim's values, in the token's order.
    Claims(Arc<[(String, Vec<String>)]>),
    /// `StringComparison.Ordinal`, `OrdinalIgnoreCase`, ...: its name, and whether it
    /// ignores case.
    StringComparison {
        name: &'static str,
        ignore_case: bool,
    },
    /// `new Random()` / `new Random(seed)`: its state.
    Random(Arc<crate::eval::RandomState>),
    /// `new JProperty(name, value)`.
    JProperty(String, serde_json::Value),
    /// `AsBasic()`.
    Basic {
        /// The user id (before the first `:`).
        user: String,
        /// The password (after it).
        password: String,
    },
}

/// The encodings of `Encoding.UTF8`, `ASCII` and `Unicode` (UTF-16 little endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextEncoding {
    Utf8,
    Ascii,
    Unicode,
}

/// A compiled regular expression with the .NET pattern and options it came from.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    /// The pattern as written.
    pub(crate) source: Arc<str>,
    /// The `RegexOptions` flags it was compiled with.
    pub(crate) options: i64,
    pub(crate) regex: regex::Regex,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.options == other.options
    }
}

/// One group of a regular expression match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupData {
    /// Its name (`"1"` for an unnamed group, as .NET names them).
    pub(crate) name: String,
    /// Whether it took part in the match.
    pub(crate) success: bool,
    /// Where it starts, in characters of the input (0 when it did not match).
    pub(crate) index: usize,
    /// Its length in characters.
    pub(crate) length: usize,
    /// The text it matched (empty when it did not match).
    pub(crate) value: String,
}

/// The hash algorithms of `SHA1`, `SHA256`, `SHA384`, `SHA512` and `MD5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashKind {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl HashKind {
    /// `SHA256` in `HMACSHA256` and `SHA256.Create()`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha384 => "SHA384",
            Self::Sha512 => "SHA512",
        }
    }

    fn type_name(self) -> &'static str {
        match self {
            Self::Md5 => "System.Security.Cryptography.MD5",
            Self::Sha1 => "System.Security.Cryptography.SHA1",
            Self::Sha256 => "System.Security.Cryptography.SHA256",
            Self::Sha384 => "System.Security.Cryptography.SHA384",
            Self::Sha512 => "System.Security.Cryptography.SHA512",
        }
    }

    /// The algorithm a type name denotes (`SHA256`, `SHA256Managed`, `HMACSHA256`'s
    /// `SHA256`).
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name.strip_suffix("Managed").unwrap_or(name) {
            "MD5" => Self::Md5,
            "SHA1" => Self::Sha1,
            "SHA256" => Self::Sha256,
            "SHA384" => Self::Sha384,
            "SHA512" => Self::Sha512,
            _ => return None,
        })
    }
}

/// A decoded JSON Web Token (not validated: that is `validate-jwt`'s job).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Jwt {
    pub(crate) header: serde_json::Map<String, serde_json::Value>,
    pub(crate) payload: serde_json::Map<String, serde_json::Value>,
}
