//! Checks that need the whole document: unique ids, references, URLs and templates.
//! Policy documents are checked by the `gatehouse-policy` compiler, not here.

use std::collections::HashSet;

use crate::{Api, Configuration, SubscriptionScope, ValidationErrors, pem};

impl Configuration {
    /// Checks the document for consistency and returns every problem found.
    ///
    /// # Errors
    ///
    /// Every problem found, each naming where it is.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();

        let mut names = HashSet::new();
        for value in &self.named_values {
            let path = format!("namedValues[{}]", value.name);
            check_id(&mut errors, &path, "name", &value.name);
            if !names.insert(value.name.to_ascii_lowercase()) {
                errors.push(&path, "duplicate named value (names are case-insensitive)");
            }
        }

        let mut fragment_ids = HashSet::new();
        for fragment in &self.fragments {
            let path = format!("fragments[{}]", fragment.id);
            check_id(&mut errors, &path, "id", &fragment.id);
            if !fragment_ids.insert(fragment.id.as_str()) {
                errors.push(&path, "duplicate fragment id");
            }
            if fragment.value.trim().is_empty() {
                errors.push(
                    format!("{path}.value"),
                    "a fragment needs its `<fragment>...</fragment>` document",
                );
            }
        }

        let mut backend_ids = HashSet::new();
        for backend in &self.backends {
            let path = format!("backends[{}]", backend.id);
            check_id(&mut errors, &path, "id", &backend.id);
            if !backend_ids.insert(backend.id.as_str()) {
                errors.push(&path, "duplicate backend id");
            }
            check_backend_url(&mut errors, &format!("{path}.url"), &backend.url);
        }

        let mut api_ids = HashSet::new();
        let mut api_routes = HashSet::new();
        for api in &self.apis {
            let path = format!("apis[{}]", api.id);
            check_id(&mut errors, &path, "id", &api.id);
            if !api_ids.insert(api.id.as_str()) {
                errors.push(&path, "duplicate API id");
            }
            validate_api(&mut errors, &path, api, &backend_ids);
            let mut hosts: Vec<&str> = api.hostnames.iter().map(String::as_str).collect();
            if hosts.is_empty() {
                hosts.push("*");
            }
            for host in hosts {
                let key = (
                    host.to_ascii_lowercase(),
                    api.path.trim_matches('/').to_owned(),
                );
                if !api_routes.insert(key) {
                    errors.push(
                        format!("{path}.path"),
                        format!(
                            "another API already serves path `/{}` on host `{host}`; give each API its own path or hostname",
                            api.path.trim_matches('/')
                        ),
                    );
                }
            }
        }

        let mut product_ids = HashSet::new();
        for product in &self.products {
            let path = format!("products[{}]", product.id);
            check_id(&mut errors, &path, "id", &product.id);
            if !product_ids.insert(product.id.as_str()) {
                errors.push(&path, "duplicate product id");
            }
            for api in &product.apis {
                if !api_ids.contains(api.as_str()) {
                    errors.push(
                        format!("{path}.apis"),
                        format!("unknown API `{api}`; it must be listed under `apis`"),
                    );
                }
            }
        }

        let mut subscription_ids = HashSet::new();
        let mut keys = HashSet::new();
        for subscription in &self.subscriptions {
            let path = format!("subscriptions[{}]", subscription.id);
            check_id(&mut errors, &path, "id", &subscription.id);
            if !subscription_ids.insert(subscription.id.as_str()) {
                errors.push(&path, "duplicate subscription id");
            }
            match &subscription.scope {
                SubscriptionScope::Product(id) if !product_ids.contains(id.as_str()) => {
                    errors.push(format!("{path}.scope"), format!("unknown product `{id}`"));
                }
                SubscriptionScope::Api(id) if !api_ids.contains(id.as_str()) => {
                    errors.push(format!("{path}.scope"), format!("unknown API `{id}`"));
                }
                _ => {}
            }
            for (field, key) in [
                ("primaryKey", Some(&subscription.primary_key)),
                ("secondaryKey", subscription.secondary_key.as_ref()),
            ] {
                let Some(key) = key else { continue };
                if key.len() < 8 || key.len() > 256 {
                    errors.push(
                        format!("{path}.{field}"),
                        "a key must be 8 to 256 characters long",
                    );
                } else if !keys.insert(key.as_str()) {
                    // Keys identify the subscription; a shared key would make the caller
                    // ambiguous. The message does not echo the key.
                    errors.push(
                        format!("{path}.{field}"),
                        "this key is already used by another subscription or key slot",
                    );
                }
            }
        }

        let mut certificate_ids = HashSet::new();
        let mut certificates_with_key = HashSet::new();
        for certificate in &self.certificates {
            let path = format!("certificates[{}]", certificate.id);
            check_id(&mut errors, &path, "id", &certificate.id);
            if !certificate_ids.insert(certificate.id.as_str()) {
                errors.push(&path, "duplicate certificate id");
            }
            if let Err(message) = pem::check_certificate_chain(&certificate.certificate_pem) {
                errors.push(format!("{path}.certificatePem"), message);
            }
            if let Some(key) = &certificate.private_key_pem {
                certificates_with_key.insert(certificate.id.as_str());
                if let Err(message) = pem::check_private_key(key) {
                    errors.push(format!("{path}.privateKeyPem"), message);
                }
            }
        }

        for backend in &self.backends {
            let path = format!("backends[{}].tls", backend.id);
            for id in &backend.tls.ca_certificate_ids {
                if !certificate_ids.contains(id.as_str()) {
                    errors.push(
                        format!("{path}.caCertificateIds"),
                        format!(
                            "unknown certificate `{id}`; it must be listed under `certificates`"
                        ),
                    );
                }
            }
            match &backend.tls.client_certificate_id {
                Some(id) if !certificate_ids.contains(id.as_str()) => errors.push(
                    format!("{path}.clientCertificateId"),
                    format!("unknown certificate `{id}`; it must be listed under `certificates`"),
                ),
                Some(id) if !certificates_with_key.contains(id.as_str()) => errors.push(
                    format!("{path}.clientCertificateId"),
                    format!(
                        "certificate `{id}` has no `privateKeyPem`; a client certificate needs its private key"
                    ),
                ),
                _ => {}
            }
            if let Some(name) = &backend.tls.server_name
                && let Err(message) = check_server_name(name)
            {
                errors.push(format!("{path}.serverName"), message);
            }
            let tls_url = backend.url.starts_with("https://") || backend.url.starts_with("wss://");
            if !tls_url && !backend.tls.is_default() {
                errors.push(
                    &path,
                    "TLS settings on a backend whose URL is not `https://` or `wss://`; use an `https://` URL or remove `tls`",
                );
            }
        }

        let mut default_bindings = Vec::new();
        let mut hostnames = HashSet::new();
        for hostname in &self.hostnames {
            if hostname.default_ssl_binding {
                default_bindings.push(hostname.hostname.as_str());
            }
            let path = format!("hostnames[{}]", hostname.hostname);
            if let Err(message) = check_hostname(&hostname.hostname) {
                errors.push(format!("{path}.hostname"), message);
            }
            if !hostnames.insert(hostname.hostname.to_ascii_lowercase()) {
                errors.push(
                    &path,
                    "duplicate hostname (host names are case-insensitive)",
                );
            }
            match &hostname.certificate_id {
                Some(id) if !certificate_ids.contains(id.as_str()) => errors.push(
                    format!("{path}.certificateId"),
                    format!("unknown certificate `{id}`; it must be listed under `certificates`"),
                ),
                Some(id) if !certificates_with_key.contains(id.as_str()) => errors.push(
                    format!("{path}.certificateId"),
                    format!(
                        "certificate `{id}` has no `privateKeyPem`; a hostname needs the private key to serve TLS"
                    ),
                ),
                _ => {}
            }
        }

        if default_bindings.len() > 1 {
            errors.push(
                "hostnames",
                format!(
                    "{} hostnames have `defaultSslBinding: true` ({}); at most one may",
                    default_bindings.len(),
                    default_bindings.join(", ")
                ),
            );
        }

        let mut gateway_ids = HashSet::new();
        for gateway in &self.gateways {
            let path = format!("gateways[{}]", gateway.id);
            check_gateway_id(&mut errors, &path, &gateway.id);
            if !gateway_ids.insert(gateway.id.as_str()) {
                errors.push(&path, "duplicate gateway id");
            }
            let mut assigned = HashSet::new();
            for api in &gateway.apis {
                if !api_ids.contains(api.as_str()) {
                    errors.push(
                        format!("{path}.apis"),
                        format!("unknown API `{api}`; it must be listed under `apis`"),
                    );
                } else if !assigned.insert(api.as_str()) {
                    errors.push(
                        format!("{path}.apis"),
                        format!("API `{api}` is listed twice"),
                    );
                }
            }
        }

        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Checks a TLS host name: a DNS name (`api.example.com`), or a wildcard covering one
/// label (`*.example.com`). No port, scheme, path, IP literal or trailing dot.
///
/// # Errors
///
/// What is wrong, naming the accepted forms.
pub(crate) fn check_hostname(hostname: &str) -> Result<(), String> {
    let expected = "expected a DNS name such as `api.example.com` or `*.example.com`";
    let name = hostname.strip_prefix("*.").unwrap_or(hostname);
    if name.is_empty() || hostname.len() > 253 {
        return Err(format!(
            "invalid hostname `{hostname}`: 1 to 253 characters, {expected}"
        ));
    }
    for label in name.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Err(format!(
                "invalid hostname `{hostname}`: label `{label}` must be 1 to 63 letters, digits or inner `-` (use the punycode `xn--` form for international names); {expected}"
            ));
        }
    }
    if hostname.starts_with("*.") && !name.contains('.') {
        return Err(format!(
            "invalid hostname `{hostname}`: a wildcard needs at least two labels after `*.`, as in `*.example.com`"
        ));
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "invalid hostname `{hostname}`: IP addresses are not host names; {expected}"
        ));
    }
    Ok(())
}

fn validate_api(errors: &mut ValidationErrors, path: &str, api: &Api, backend_ids: &HashSet<&str>) {
    if api
        .path
        .split('/')
        .any(|s| s.contains(['{', '}', '*', '?', '#']))
    {
        errors.push(
            format!("{path}.path"),
            "an API path is a fixed prefix: no `{}`, `*`, `?` or `#`; put parameters in operation URL templates",
        );
    }
    for host in &api.hostnames {
        if host.is_empty() || host.contains(['/', ' ', ':']) {
            errors.push(
                format!("{path}.hostnames"),
                format!("invalid hostname `{host}`: expected `example.com` or `*.example.com`"),
            );
        }
    }
    if api.protocols.is_empty() {
        errors.push(
            format!("{path}.protocols"),
            "at least one protocol is needed",
        );
    }
    match (&api.service_url, &api.backend_id) {
        (Some(_), Some(_)) => errors.push(path, "set either `serviceUrl` or `backendId`, not both"),
        (Some(url), None) => check_backend_url(errors, &format!("{path}.serviceUrl"), url),
        (None, Some(id)) if !backend_ids.contains(id.as_str()) => errors.push(
            format!("{path}.backendId"),
            format!("unknown backend `{id}`; it must be listed under `backends`"),
        ),
        _ => {}
    }
    for name in [
        &api.subscription_key_parameter_names.header,
        &api.subscription_key_parameter_names.query,
    ] {
        if name.is_empty() {
            errors.push(
                format!("{path}.subscriptionKeyParameterNames"),
                "parameter names must not be empty",
            );
        }
    }
    if http::HeaderName::from_bytes(api.subscription_key_parameter_names.header.as_bytes()).is_err()
    {
        errors.push(
            format!("{path}.subscriptionKeyParameterNames.header"),
            "not a valid HTTP header name",
        );
    }
    let mut operation_ids = HashSet::new();
    for operation in &api.operations {
        let op_path = format!("{path}.operations[{}]", operation.id);
        check_id(errors, &op_path, "id", &operation.id);
        if !operation_ids.insert(operation.id.as_str()) {
            errors.push(&op_path, "duplicate operation id within this API");
        }
        if operation.method != "*" && http::Method::from_bytes(operation.method.as_bytes()).is_err()
        {
            errors.push(
                format!("{op_path}.method"),
                format!("invalid HTTP method `{}`", operation.method),
            );
        }
        if !operation.url_template.starts_with('/') {
            errors.push(
                format!("{op_path}.urlTemplate"),
                format!(
                    "a URL template starts with `/` (got `{}`)",
                    operation.url_template
                ),
            );
        }
    }
}

/// An id is one URL path segment of the management API: letters, digits, `-`, `_`,
/// `.`, and not `.` or `..` (or any run of dots), which URLs read as relative paths.
fn check_id(errors: &mut ValidationErrors, path: &str, field: &str, id: &str) {
    let valid = !id.is_empty()
        && id.len() <= 256
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !id.bytes().all(|b| b == b'.');
    if !valid {
        errors.push(
            format!("{path}.{field}"),
            format!("`{id}` must be 1 to 256 letters, digits, `-`, `_` or `.`, and not only dots"),
        );
    }
}

/// A gateway id also names its Kubernetes objects (Deployment, Service, the
/// `<id>-token` Secret): an RFC 1035 label, as Kubernetes requires of Service names.
fn check_gateway_id(errors: &mut ValidationErrors, path: &str, id: &str) {
    let bytes = id.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= MAX_GATEWAY_ID
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1] != b'-'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if !valid {
        errors.push(
            format!("{path}.id"),
            format!(
                "`{id}` must be 1 to {MAX_GATEWAY_ID} lowercase letters, digits and `-`, starting with a letter and not ending with `-`: it names the gateway's Kubernetes objects"
            ),
        );
    }
}

/// The longest gateway id: a Kubernetes Service name (RFC 1035 label).
const MAX_GATEWAY_ID: usize = 63;

/// Checks a backend's SNI name: a DNS name (no wildcard) or an IP address.
fn check_server_name(name: &str) -> Result<(), String> {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if name.starts_with("*.") {
        return Err(format!(
            "`{name}` is a wildcard; the server name is the one name the backend's certificate must match"
        ));
    }
    check_hostname(name)
}

fn check_backend_url(errors: &mut ValidationErrors, path: &str, text: &str) {
    match url::Url::parse(text) {
        // `ws://` and `wss://`: a WebSocket API's backend (APIM's "WebSocket URL"),
        // reached over HTTP/1.1 like `http://` and `https://`.
        Ok(url)
            if matches!(url.scheme(), "http" | "https" | "ws" | "wss") && url.host().is_some() =>
        {
            if url.query().is_some() || url.fragment().is_some() {
                errors.push(path, "a backend URL has no query or fragment");
            }
        }
        Ok(_) => errors.push(
            path,
            format!(
                "`{text}` must be an absolute http://, https://, ws:// or wss:// URL with a host"
            ),
        ),
        Err(e) => errors.push(path, format!("`{text}` is not a valid URL: {e}")),
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
