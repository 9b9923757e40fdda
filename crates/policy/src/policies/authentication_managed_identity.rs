//! `authentication-managed-identity`: gets an access token for a resource and sends it
//! to the backend as `Authorization: Bearer …` (inbound).
//!
//! ```xml
//! <authentication-managed-identity resource="api://orders-backend" />
//! <authentication-managed-identity resource="https://vault.azure.net"
//!     output-token-variable-name="vault-token" ignore-error="false" />
//! ```
//!
//! Azure managed identities do not exist outside Azure: Gatehouse maps the policy to
//! an OAuth2 client-credentials token source configured per gateway
//! (`--identity-token-url`, `--identity-client-id`, `--identity-client-secret-file`).
//! The token is requested with `scope=<resource>/.default` (as Microsoft Entra ID's v2
//! endpoint wants it; a resource ending in `/.default` is sent as it is) and cached
//! until shortly before it expires. `resource` may be a policy expression. With
//! `output-token-variable-name` the token goes into that variable instead of the
//! header. A token that cannot be had fails the request (source
//! `authentication-managed-identity`, reason `TokenAcquisitionFailure`, 500) unless
//! `ignore-error="true"`. `client-id` (a user-assigned identity) is refused: the
//! gateway has one identity.

use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::{HeaderValue, StatusCode};

use crate::document::ElementReader;
use crate::error::{ErrorKind, PolicyError};
use crate::expression::TextValue;
use crate::reader::RawValue;
use crate::registry::StepFuture;
use crate::registry::prelude::*;

/// Parsed `<authentication-managed-identity>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    resource: RawValue,
    output_token_variable_name: Option<RawValue>,
    ignore_error: Option<RawValue>,
}

/// Compiled `<authentication-managed-identity>`.
#[derive(Debug)]
pub(crate) struct AuthenticationManagedIdentity {
    resource: TextValue,
    variable: Option<Arc<str>>,
    ignore_error: bool,
}

impl PolicyDefinition for AuthenticationManagedIdentity {
    const NAME: &'static str = "authentication-managed-identity";
    const SECTIONS: &'static [SectionKind] = &[Inbound];
    const MAPPED: Option<&'static str> = Some(
        "Azure managed identities are not available: Gatehouse gets the token with OAuth2 client credentials from the gateway's identity (--identity-token-url, --identity-client-id, --identity-client-secret-file)",
    );
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        reader.no_children()?;
        reader.no_text()?;
        if let Some(client_id) = reader.optional("client-id") {
            return Err(reader.site.err(
                client_id.position,
                ErrorKind::NotSupported,
                "`client-id` (a user-assigned identity) is not supported: a Gatehouse gateway has one identity; remove it",
            ));
        }
        Ok(Config {
            resource: reader.required("resource")?,
            output_token_variable_name: reader.optional("output-token-variable-name"),
            ignore_error: reader.optional("ignore-error"),
        })
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        let (resource, ignore_error) = config.compile_parts(cx.site, cx.context)?;
        let variable = match &config.output_token_variable_name {
            Some(raw) => {
                let name = cx.context.literal(cx.site, raw)?;
                let name = name.text.trim();
                if name.is_empty() {
                    return Err(cx.site.invalid(
                        raw.position,
                        "`output-token-variable-name` must not be empty",
                    ));
                }
                Some(Arc::from(name))
            }
            None => None,
        };
        Ok(Self {
            resource,
            variable,
            ignore_error,
        })
    }
}

impl Config {
    /// `output-token-variable-name`, if given.
    pub(crate) fn output_token_variable_name(&self) -> Option<&RawValue> {
        self.output_token_variable_name.as_ref()
    }

    /// The compiled `resource` and `ignore-error` (for the policy inside `send-request`).
    pub(crate) fn compile_parts(
        &self,
        site: crate::error::Site<'_>,
        cx: &crate::context::CompileContext<'_>,
    ) -> Result<(TextValue, bool), PolicyError> {
        let resource = cx.text_value(site, &self.resource)?;
        if let TextValue::Fixed(text) = &resource
            && text.text.trim().is_empty()
        {
            return Err(site.invalid(self.resource.position, "`resource` must not be empty"));
        }
        let ignore_error = cx.boolean_or(site, self.ignore_error.as_ref(), "ignore-error", false)?;
        Ok((resource, ignore_error))
    }
}

impl Step for AuthenticationManagedIdentity {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        meta.cannot_wait(run.section(), "TokenAcquisitionFailure")
    }

    fn is_async(&self) -> bool {
        true
    }

    fn apply_async<'s>(
        &'s self,
        meta: &'s StepMeta,
        run: &'s mut Run<'_, '_, '_>,
    ) -> StepFuture<'s> {
        Box::pin(async move {
            let section = run.section();
            let resource = match self.resource.render(&run.host()) {
                Ok(text) => text.trim().to_owned(),
                Err(failure) => return failure.into_flow(meta, section),
            };
            let token = match run.exec.facts.services {
                Some(services) => services.token(&resource).await,
                None => Err(crate::CallError::Unavailable),
            };
            let fail = |why: String| {
                meta.fail(
                    section,
                    "TokenAcquisitionFailure",
                    why,
                    PolicyResponse::json_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal server error",
                    ),
                )
            };
            match token {
                Ok(token) => match &self.variable {
                    Some(variable) => {
                        run.request
                            .variables
                            .set(variable, gatehouse_expr::Value::String(token));
                        Flow::Continue
                    }
                    None => match HeaderValue::from_str(&format!("Bearer {token}")) {
                        Ok(mut value) => {
                            value.set_sensitive(true);
                            run.request.headers.insert(AUTHORIZATION, value);
                            Flow::Continue
                        }
                        Err(_) => fail(
                            "the token endpoint gave a token that is not a header value".to_owned(),
                        ),
                    },
                },
                Err(_) if self.ignore_error => Flow::Continue,
                Err(error) => fail(format!(
                    "no access token for the resource could be had: {error}"
                )),
            }
        })
    }
}

#[cfg(test)]
#[path = "authentication_managed_identity_tests.rs"]
mod tests;
