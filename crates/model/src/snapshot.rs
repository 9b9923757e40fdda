//! What one gateway serves ([`Configuration::for_gateway`]) and the [`Snapshot`] the
//! Configuration API v2 hands it: that configuration, the revision it was taken at, and a
//! checksum.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::{Configuration, Gateway, Product, SubscriptionScope};

/// The configuration one gateway serves, as of one revision of the control plane, as
/// `GET /v2/gateways/{id}/snapshot` returns it and as the gateway backs it up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Snapshot {
    /// The control plane's global revision this snapshot was taken at; the gateway asks
    /// for the changes after it.
    pub revision: u64,
    /// The gateway this snapshot is for.
    pub gateway_id: String,
    /// What the gateway serves (see [`Configuration::for_gateway`]).
    pub configuration: Configuration,
    /// Lowercase hex SHA-256 of every other field: the revision and the gateway id (each
    /// followed by a newline), then the configuration's canonical JSON (see
    /// [`Configuration::checksum`]). A snapshot whose revision was altered fails it as
    /// one whose configuration was.
    pub checksum: String,
}

/// Why a [`Snapshot`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The checksum does not match the configuration: the snapshot was altered or cut
    /// short in transit or on disk.
    #[error(
        "snapshot of gateway `{gateway_id}` at revision {revision} is corrupt: its checksum is {expected} but its content hashes to {actual}; discard it and fetch a new snapshot"
    )]
    ChecksumMismatch {
        /// The gateway the snapshot claims to be for.
        gateway_id: String,
        /// The revision the snapshot claims.
        revision: u64,
        /// The checksum the snapshot carries.
        expected: String,
        /// The checksum of the configuration it carries.
        actual: String,
    },
}

impl Snapshot {
    /// Makes a snapshot, computing its checksum.
    #[must_use]
    pub fn new(revision: u64, gateway_id: impl Into<String>, configuration: Configuration) -> Self {
        let gateway_id = gateway_id.into();
        let checksum = content_checksum(revision, &gateway_id, &configuration);
        Self {
            revision,
            gateway_id,
            configuration,
            checksum,
        }
    }

    /// Recomputes the checksum and compares it with the one carried (case-insensitively).
    ///
    /// # Errors
    ///
    /// [`SnapshotError::ChecksumMismatch`] when they differ.
    pub fn verify(&self) -> Result<(), SnapshotError> {
        let actual = content_checksum(self.revision, &self.gateway_id, &self.configuration);
        if actual.eq_ignore_ascii_case(&self.checksum) {
            Ok(())
        } else {
            Err(SnapshotError::ChecksumMismatch {
                gateway_id: self.gateway_id.clone(),
                revision: self.revision,
                expected: self.checksum.clone(),
                actual,
            })
        }
    }
}

/// [`Snapshot::checksum`] of these fields.
fn content_checksum(revision: u64, gateway_id: &str, configuration: &Configuration) -> String {
    use std::io::Write as _;
    let mut hasher = HashWriter(Sha256::new());
    // Neither can fail: the writer never errors, and see `Configuration::checksum`.
    let header = write!(hasher, "{revision}\n{gateway_id}\n");
    let written = serde_json::to_writer(&mut hasher, configuration);
    debug_assert!(
        header.is_ok() && written.is_ok(),
        "snapshot JSON: {written:?}"
    );
    hex::encode(hasher.0.finalize())
}

impl Configuration {
    /// Lowercase hex SHA-256 of this configuration's canonical JSON.
    ///
    /// The canonical JSON is `serde_json::to_vec(self)`: compact, fields in declaration
    /// order (fixed by the structs, not by the input), lists in their stored order, empty
    /// optional lists and absent options left out. So the same configuration always
    /// hashes the same, whatever document it was read from; a reordered list is a
    /// different configuration.
    ///
    /// To keep checksums stable across Gatehouse versions, a field added to an entity
    /// must be left out of the JSON when it has its default value
    /// (`skip_serializing_if`), as every optional list here is.
    #[must_use]
    pub fn checksum(&self) -> String {
        let mut hasher = HashWriter(Sha256::new());
        let written = serde_json::to_writer(&mut hasher, self);
        // Serialising cannot fail: every map key is a string, every custom serializer
        // (durations, subscription scopes) is infallible, and the writer never errors.
        debug_assert!(written.is_ok(), "configuration JSON: {written:?}");
        hex::encode(hasher.0.finalize())
    }

    /// What `gateway` serves, exactly as its snapshot holds it:
    ///
    /// - the APIs assigned to it (in this configuration's order; an assigned id with no
    ///   API is ignored);
    /// - the products containing at least one of those APIs, their `apis` narrowed to
    ///   them;
    /// - the subscriptions scoped to one of those products, to one of those APIs, or to
    ///   all APIs (`/apis`);
    /// - every named value, backend, certificate and hostname, and the global policy;
    /// - in `gateways`, the gateway itself, its `apis` narrowed to those served, once each (its id
    ///   and `location` are what policies read as `context.Deployment`); no other
    ///   gateway.
    ///
    /// Pure: `self` is not changed, and the result of a valid configuration is valid.
    #[must_use]
    pub fn for_gateway(&self, gateway: &Gateway) -> Self {
        let assigned: HashSet<&str> = gateway.apis.iter().map(String::as_str).collect();
        let apis: Vec<_> = self
            .apis
            .iter()
            .filter(|api| assigned.contains(api.id.as_str()))
            .cloned()
            .collect();
        let served: HashSet<&str> = apis.iter().map(|api| api.id.as_str()).collect();
        let products: Vec<Product> = self
            .products
            .iter()
            .filter(|product| product.apis.iter().any(|id| served.contains(id.as_str())))
            .map(|product| Product {
                apis: product
                    .apis
                    .iter()
                    .filter(|id| served.contains(id.as_str()))
                    .cloned()
                    .collect(),
                ..product.clone()
            })
            .collect();
        let product_ids: HashSet<&str> = products.iter().map(|p| p.id.as_str()).collect();
        let subscriptions = self
            .subscriptions
            .iter()
            .filter(|subscription| match &subscription.scope {
                SubscriptionScope::Product(id) => product_ids.contains(id.as_str()),
                SubscriptionScope::Api(id) => served.contains(id.as_str()),
                SubscriptionScope::AllApis => true,
            })
            .cloned()
            .collect();
        let mut listed = HashSet::new();
        let itself = Gateway {
            apis: gateway
                .apis
                .iter()
                .filter(|id| served.contains(id.as_str()) && listed.insert(id.as_str()))
                .cloned()
                .collect(),
            ..gateway.clone()
        };
        Self {
            policy: self.policy.clone(),
            named_values: self.named_values.clone(),
            fragments: self.fragments.clone(),
            backends: self.backends.clone(),
            apis,
            products,
            subscriptions,
            certificates: self.certificates.clone(),
            hostnames: self.hostnames.clone(),
            gateways: vec![itself],
        }
    }
}

/// Feeds serialised JSON straight into the hash, without an intermediate buffer.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
