//! Gatehouse's configuration entities, as a user writes them and as the control plane
//! stores them: APIs and their operations, backends, products, subscriptions, named values,
//! policy documents (kept here as XML text; the `gatehouse-policy` crate compiles them),
//! certificates, hostnames and gateways.
//!
//! Also what the Configuration API v2 exchanges: the [`Snapshot`] of what one gateway
//! serves ([`Configuration::for_gateway`]) with its checksum, and gateway tokens
//! ([`token`]).
//!
//! This crate is pure data: serde types, parsing of the declarative YAML document, and
//! [`Configuration::validate`], which checks everything that can be checked without
//! compiling policies (unique ids, references, URLs, templates). It does no I/O; callers
//! read files and hand the text in, so errors name the origin they were given.
//!
//! Field names follow APIM where APIM has one (`serviceUrl`, `subscriptionRequired`,
//! `subscriptionKeyParameterNames`, `urlTemplate`), so a migrating user recognises them.

mod entities;
mod error;
mod pem;
mod snapshot;
pub mod token;
mod validate;
pub mod wire;

pub use entities::*;
pub use error::{ConfigError, ValidationError, ValidationErrors};
pub use snapshot::{Snapshot, SnapshotError};

#[cfg(test)]
#[path = "lib_tests.rs"]
mod tests;

impl Configuration {
    /// Parses a declarative YAML document.
    ///
    /// `origin` names where the text came from (a file path, usually) and is carried in
    /// every error. Unknown fields are rejected, with line and column, so a typo never
    /// silently drops a setting.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Yaml`] when the text is not valid YAML or does not match the format.
    pub fn from_yaml(origin: &str, text: &str) -> Result<Self, ConfigError> {
        serde_yaml_ng::from_str(text).map_err(|source| {
            let location = source.location();
            ConfigError::Yaml {
                origin: origin.to_owned(),
                line: location.as_ref().map(serde_yaml_ng::Location::line),
                column: location.as_ref().map(serde_yaml_ng::Location::column),
                message: source.to_string(),
            }
        })
    }

    /// Lays `top` over this configuration: each entity of `top` replaces the one with
    /// the same id (a named value's name, a hostname's host name) where it stands, or is
    /// added; `top`'s global policy, when it has one, replaces this one. What `top`
    /// does not name is kept. `gatehouse apply` checks a partial file this way, against
    /// what the control plane already holds, as `kubectl apply` does.
    pub fn overlay(&mut self, top: Self) {
        fn lay<T>(under: &mut Vec<T>, top: Vec<T>, key: impl Fn(&T) -> &str) {
            for item in top {
                match under
                    .iter()
                    .position(|existing| key(existing) == key(&item))
                {
                    Some(index) => under[index] = item,
                    None => under.push(item),
                }
            }
        }
        if top.policy.is_some() {
            self.policy = top.policy;
        }
        lay(&mut self.named_values, top.named_values, |v| &v.name);
        lay(&mut self.fragments, top.fragments, |f| &f.id);
        lay(&mut self.backends, top.backends, |b| &b.id);
        lay(&mut self.apis, top.apis, |a| &a.id);
        lay(&mut self.products, top.products, |p| &p.id);
        lay(&mut self.subscriptions, top.subscriptions, |s| &s.id);
        lay(&mut self.certificates, top.certificates, |c| &c.id);
        lay(&mut self.hostnames, top.hostnames, |h| &h.hostname);
        lay(&mut self.gateways, top.gateways, |g| &g.id);
    }

    /// Parses and validates a declarative YAML document in one step.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Yaml`] for syntax or format errors, [`ConfigError::Invalid`] with
    /// every validation problem found (not just the first).
    pub fn load(origin: &str, text: &str) -> Result<Self, ConfigError> {
        let config = Self::from_yaml(origin, text)?;
        config.validate().map_err(|errors| ConfigError::Invalid {
            origin: origin.to_owned(),
            errors,
        })?;
        Ok(config)
    }
}
