//! `authentication-basic`: sends the backend call with HTTP Basic credentials
//! (inbound).
//!
//! ```xml
//! <authentication-basic username="gateway" password="{{backend-password}}" />
//! ```
//!
//! Sets `Authorization: Basic base64(username:password)`, replacing the header the
//! client sent. Both attributes may be policy expressions (evaluated per request, null
//! is empty text) and usually come from named values; the header is marked sensitive
//! and never appears in a log line or error. A username holding `:` is refused (at load
//! when written, per request when computed): Basic credentials could not carry it.

use base64::Engine as _;
use http::header::{AUTHORIZATION, HeaderValue};
use http::StatusCode;

use crate::document::ElementReader;
use crate::error::PolicyError;
use crate::expression::TextValue;
use crate::reader::RawValue;
use crate::registry::prelude::*;

/// Parsed `<authentication-basic>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    username: RawValue,
    password: RawValue,
}

/// Compiled `<authentication-basic>`.
pub(crate) struct AuthenticationBasic {
    /// The header value when both parts are known at load.
    fixed: Option<HeaderValue>,
    username: TextValue,
    password: TextValue,
}

impl std::fmt::Debug for AuthenticationBasic {
    /// The username only: the password, literal or not, is a credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthenticationBasic")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// `Basic base64(username:password)`, marked sensitive; `None` when the username holds
/// a `:`.
fn credentials(username: &str, password: &str) -> Option<HeaderValue> {
    if username.contains(':') {
        return None;
    }
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    // Base64 is always a valid header value.
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

const COLON: &str = "`username` must not contain `:` (Basic credentials cannot carry it)";

impl PolicyDefinition for AuthenticationBasic {
    const NAME: &'static str = "authentication-basic";
    const SECTIONS: &'static [SectionKind] = &[Inbound];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        reader.no_text()?;
        reader.no_children()?;
        Ok(Config {
            username: reader.required("username")?,
            password: reader.required("password")?,
        })
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        let username = cx.context.text_value(cx.site, &config.username)?;
        let password = cx.context.text_value(cx.site, &config.password)?;
        let fixed = match (&username, &password) {
            (TextValue::Fixed(user), TextValue::Fixed(pass)) => Some(
                credentials(&user.text, &pass.text)
                    .ok_or_else(|| cx.site.invalid(config.username.position, COLON))?,
            ),
            (TextValue::Fixed(user), _) if user.text.contains(':') => {
                return Err(cx.site.invalid(config.username.position, COLON));
            }
            _ => None,
        };
        Ok(Self {
            fixed,
            username,
            password,
        })
    }
}

impl Step for AuthenticationBasic {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        let value = match &self.fixed {
            Some(value) => value.clone(),
            None => {
                let host = run.host();
                let username = match self.username.render(&host) {
                    Ok(text) => text,
                    Err(failure) => return failure.into_flow(meta, run.section()),
                };
                let password = match self.password.render(&host) {
                    Ok(text) => text,
                    Err(failure) => return failure.into_flow(meta, run.section()),
                };
                match credentials(&username, &password) {
                    Some(value) => value,
                    None => {
                        return meta.fail(
                            run.section(),
                            "ExpressionValueEvaluationFailure",
                            format!("authentication-basic: {COLON}"),
                            PolicyResponse::json_error(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                "Internal server error",
                            ),
                        );
                    }
                }
            }
        };
        run.request.headers.insert(AUTHORIZATION, value);
        Flow::Continue
    }
}

#[cfg(test)]
#[path = "authentication_basic_tests.rs"]
mod tests;
