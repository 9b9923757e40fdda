//! [`translate`]: Ingresses, Services and Secrets → configuration entities.
//!
//! # Mapping
//!
//! - Only Ingresses of class `azure-api-management/gateway` or `gatehouse` are read:
//!   `spec.ingressClassName`, else the `kubernetes.io/ingress.class` annotation.
//! - Each rule path becomes one API (id `k8s.<namespace>.<name>.<n>`) on the rule's
//!   host (any host without one), whose path is the Ingress path without its slashes
//!   and whose backend is the Service's cluster address with the path: the backend
//!   receives the request path unchanged, as behind any Ingress controller. The API
//!   needs no subscription key. `Prefix` (and `ImplementationSpecific`, read as
//!   `Prefix`) gives the operation `* /*` (the path and everything under it, on
//!   segment boundaries, as Kubernetes defines `Prefix`); `Exact` gives `* /` (the path
//!   itself; a trailing `/` is ignored, which Kubernetes would not).
//! - The Service is looked up in the Ingress's namespace; a port given by name is
//!   resolved through it. The address is `http://<service>.<namespace>.svc:<port>`.
//! - `spec.defaultBackend` becomes an API at the root path on any host, which every
//!   more specific route beats.
//! - `spec.tls`: the Secret (type `kubernetes.io/tls`, `tls.crt` and `tls.key`) becomes a
//!   certificate (id `k8s.<namespace>.<secret>`) and each listed host a TLS host name
//!   presenting it.
//! - Objects are read in (namespace, name) order; when two claim the same host and path
//!   (or two the default backend), the first keeps it.
//!
//! Anything that cannot be used (a missing Service or port, a bad Secret, a conflict, a
//! path the router refuses) is left out and reported as an [`IngressProblem`] naming the
//! Ingress, for a Kubernetes Event and a log line; the rest is translated as usual.

use std::collections::{BTreeMap, HashSet};

use gatehouse_model::{Api, Certificate, Configuration, Hostname};
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use serde_json::json;

/// APIM's Ingress class: an APIM user's Ingress manifests work unchanged.
pub const APIM_CLASS: &str = "azure-api-management/gateway";
/// Gatehouse's own Ingress class.
pub const GATEHOUSE_CLASS: &str = "gatehouse";
/// The classes whose Ingresses Gatehouse serves.
pub const INGRESS_CLASSES: [&str; 2] = [APIM_CLASS, GATEHOUSE_CLASS];

/// The annotation older manifests (and APIM's samples) name the class with.
const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// A Kubernetes object, by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// Its namespace (`default` when the object has none).
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Something of an Ingress that was left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressProblem {
    /// The Ingress.
    pub ingress: ObjectRef,
    /// What was left out and why, for an Event and a log line.
    pub message: String,
}

/// What [`translate`] made of a cluster's Ingresses.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Translation {
    /// The APIs, certificates and host names, ready for the gateway.
    pub configuration: Configuration,
    /// What was left out.
    pub problems: Vec<IngressProblem>,
    /// The Ingresses of a served class that were read (for status and Events).
    pub ingresses: Vec<ObjectRef>,
}

/// Translates the Ingresses of a served class (see the module docs) into configuration.
/// Pure: `services` and `secrets` are what the watcher saw.
#[must_use]
pub fn translate(ingresses: &[Ingress], services: &[Service], secrets: &[Secret]) -> Translation {
    let mut ingresses: Vec<(ObjectRef, &Ingress)> = ingresses
        .iter()
        .filter(|ingress| is_served(ingress))
        .map(|ingress| (object_ref(&ingress.metadata), ingress))
        .collect();
    ingresses.sort_by(|a, b| a.0.cmp(&b.0));
    let services: BTreeMap<ObjectRef, &Service> = services
        .iter()
        .map(|service| (object_ref(&service.metadata), service))
        .collect();
    let secrets: BTreeMap<ObjectRef, &Secret> = secrets
        .iter()
        .map(|secret| (object_ref(&secret.metadata), secret))
        .collect();

    let mut out = Translation::default();
    let mut routes: HashSet<(String, String)> = HashSet::new();
    let mut default_taken: Option<ObjectRef> = None;
    let mut tls_hosts: BTreeMap<String, (String, ObjectRef)> = BTreeMap::new();
    for (at, ingress) in &ingresses {
        out.ingresses.push(at.clone());
        let mut problem = |message: String| {
            out.problems.push(IngressProblem {
                ingress: at.clone(),
                message,
            });
        };
        let Some(spec) = &ingress.spec else {
            problem("it has no spec".to_owned());
            continue;
        };
        let mut count = 0usize;
        let mut next_id = || {
            count += 1;
            format!("k8s.{}.{}.{count}", at.namespace, at.name)
        };
        for rule in spec.rules.iter().flatten() {
            let host = rule
                .host
                .as_deref()
                .map(str::to_ascii_lowercase)
                .filter(|h| !h.is_empty());
            for path in rule.http.iter().flat_map(|http| &http.paths) {
                let written = path.path.as_deref().unwrap_or("/");
                let exact = match path.path_type.as_str() {
                    "Exact" => true,
                    "Prefix" | "ImplementationSpecific" => false,
                    other => {
                        problem(format!(
                            "path `{written}`: unknown pathType `{other}` (Exact, Prefix or ImplementationSpecific)"
                        ));
                        continue;
                    }
                };
                if !written.starts_with('/') {
                    problem(format!("path `{written}` does not start with `/`"));
                    continue;
                }
                let api_path = written.trim_matches('/').to_owned();
                let key = (
                    host.clone().unwrap_or_default(),
                    format!("{}{api_path}", if exact { "=" } else { "^" }),
                );
                if !routes.insert(key) {
                    problem(format!(
                        "path `{written}` ({}) on {} is already routed by an earlier Ingress; left out",
                        path.path_type,
                        host.as_deref().unwrap_or("every host")
                    ));
                    continue;
                }
                let url = match backend_url(&path.backend, &at.namespace, &services) {
                    Ok(url) => url,
                    Err(message) => {
                        problem(format!("path `{written}`: {message}"));
                        continue;
                    }
                };
                let service_url = if api_path.is_empty() {
                    url
                } else {
                    format!("{url}/{api_path}")
                };
                match api(&next_id(), &api_path, host.as_deref(), &service_url, exact) {
                    Ok(api) => out.configuration.apis.push(api),
                    Err(message) => problem(format!("path `{written}`: {message}")),
                }
            }
        }
        if let Some(backend) = &spec.default_backend {
            match (
                &default_taken,
                backend_url(backend, &at.namespace, &services),
            ) {
                (Some(first), _) => problem(format!(
                    "the default backend is already set by Ingress {first}; left out"
                )),
                (None, Err(message)) => problem(format!("default backend: {message}")),
                (None, Ok(url)) => match api(&next_id(), "", None, &url, false) {
                    Ok(api) => {
                        out.configuration.apis.push(api);
                        default_taken = Some(at.clone());
                    }
                    Err(message) => problem(format!("default backend: {message}")),
                },
            }
        }
        for tls in spec.tls.iter().flatten() {
            let Some(secret_name) = tls.secret_name.as_deref().filter(|s| !s.is_empty()) else {
                problem("a `tls` entry names no secretName; left out".to_owned());
                continue;
            };
            let secret_at = ObjectRef {
                namespace: at.namespace.clone(),
                name: secret_name.to_owned(),
            };
            let certificate = match certificate(&secret_at, secrets.get(&secret_at).copied()) {
                Ok(certificate) => certificate,
                Err(message) => {
                    problem(format!("TLS Secret {secret_at}: {message}"));
                    continue;
                }
            };
            for host in tls.hosts.iter().flatten() {
                let host = host.to_ascii_lowercase();
                if let Some((_, first)) = tls_hosts.get(&host) {
                    problem(format!(
                        "TLS for `{host}` is already given by Ingress {first}; left out"
                    ));
                    continue;
                }
                tls_hosts.insert(host, (certificate.id.clone(), at.clone()));
            }
            if !out
                .configuration
                .certificates
                .iter()
                .any(|c| c.id == certificate.id)
            {
                out.configuration.certificates.push(certificate);
            }
        }
    }
    for (host, (certificate_id, _)) in tls_hosts {
        out.configuration.hostnames.push(Hostname {
            hostname: host,
            certificate_id: Some(certificate_id),
            negotiate_client_certificate: false,
            require_client_certificate: false,
            default_ssl_binding: false,
        });
    }
    // Certificates no host name uses are left out.
    let used: HashSet<String> = out
        .configuration
        .hostnames
        .iter()
        .filter_map(|h| h.certificate_id.clone())
        .collect();
    out.configuration
        .certificates
        .retain(|certificate| used.contains(&certificate.id));
    out
}

/// Whether the gateway serves this Ingress's class.
fn is_served(ingress: &Ingress) -> bool {
    let class = ingress
        .spec
        .as_ref()
        .and_then(|spec| spec.ingress_class_name.as_deref())
        .or_else(|| {
            ingress
                .metadata
                .annotations
                .as_ref()
                .and_then(|annotations| annotations.get(CLASS_ANNOTATION))
                .map(String::as_str)
        });
    class.is_some_and(|class| INGRESS_CLASSES.contains(&class))
}

fn object_ref(metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> ObjectRef {
    ObjectRef {
        namespace: metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned()),
        name: metadata.name.clone().unwrap_or_default(),
    }
}

/// `http://<service>.<namespace>.svc:<port>` of a backend, the port resolved through the
/// Service when it is given by name.
fn backend_url(
    backend: &IngressBackend,
    namespace: &str,
    services: &BTreeMap<ObjectRef, &Service>,
) -> Result<String, String> {
    let Some(service) = &backend.service else {
        return Err(
            "its backend is a resource, not a Service; only Service backends are supported"
                .to_owned(),
        );
    };
    let at = ObjectRef {
        namespace: namespace.to_owned(),
        name: service.name.clone(),
    };
    let Some(found) = services.get(&at) else {
        return Err(format!("Service {at} does not exist"));
    };
    let ports = found
        .spec
        .as_ref()
        .and_then(|spec| spec.ports.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let port = match service.port.as_ref().map(|p| (p.number, p.name.as_deref())) {
        Some((Some(number), _)) if (1..=65_535).contains(&number) => number,
        Some((Some(number), _)) => {
            return Err(format!("port {number} of Service {at} is out of range"));
        }
        Some((None, Some(name))) => ports
            .iter()
            .find(|port| port.name.as_deref() == Some(name))
            .map(|port| port.port)
            .ok_or_else(|| format!("Service {at} has no port named `{name}`"))?,
        _ => return Err(format!("the backend names no port of Service {at}")),
    };
    Ok(format!("http://{}.{}.svc:{port}", at.name, at.namespace))
}

/// One route as an API.
fn api(
    id: &str,
    path: &str,
    host: Option<&str>,
    service_url: &str,
    exact: bool,
) -> Result<Api, String> {
    let value = json!({
        "id": id,
        "displayName": format!("Ingress route {id}"),
        "path": path,
        "hostnames": host.into_iter().collect::<Vec<_>>(),
        "serviceUrl": service_url,
        "subscriptionRequired": false,
        "operations": [{
            "id": if exact { "exact" } else { "prefix" },
            "method": "*",
            "urlTemplate": if exact { "/" } else { "/*" },
        }],
    });
    let api: Api = serde_json::from_value(value).map_err(|e| e.to_string())?;
    // Checked alone, so a path or host the gateway would refuse leaves out this route
    // only.
    let alone = Configuration {
        apis: vec![api.clone()],
        ..Configuration::default()
    };
    alone.validate().map_err(|errors| {
        errors
            .0
            .iter()
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    // And by the router, as the gateway's load does.
    let mut spec = gatehouse_router::ApiSpec::new(0, &api.id, &api.path);
    for hostname in &api.hostnames {
        spec = spec.hostname(hostname);
    }
    for operation in &api.operations {
        spec = spec.operation(&operation.id, &operation.method, &operation.url_template);
    }
    gatehouse_router::Router::build([spec]).map_err(|errors| {
        errors
            .errors()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    Ok(api)
}

/// The certificate of a `kubernetes.io/tls` Secret, checked as the gateway loads it.
fn certificate(at: &ObjectRef, secret: Option<&Secret>) -> Result<Certificate, String> {
    let Some(secret) = secret else {
        return Err("does not exist".to_owned());
    };
    let field = |name: &str| -> Result<String, String> {
        let bytes = secret
            .data
            .as_ref()
            .and_then(|data| data.get(name))
            .ok_or_else(|| format!("has no `{name}`"))?;
        String::from_utf8(bytes.0.clone()).map_err(|_| format!("`{name}` is not PEM text"))
    };
    let certificate_pem = field("tls.crt")?;
    let private_key_pem = field("tls.key")?;
    // Never the key itself in a message.
    gatehouse_tls::certificate::certified_key_at_any_time(&certificate_pem, &private_key_pem)
        .map_err(|error| format!("cannot be used: {error}"))?;
    Ok(Certificate {
        id: format!("k8s.{}.{}", at.namespace, at.name),
        certificate_pem,
        private_key_pem: Some(private_key_pem),
        client_ca: false,
    })
}

#[cfg(test)]
#[path = "translate_tests.rs"]
mod tests;
