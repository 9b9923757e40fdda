//! The Ingress source: watches Ingresses, Services and Secrets (one namespace, or all)
//! with kube-rs, and after every change offers the [`translate`]d configuration to the
//! gateway's [`ConfigSink`]. Changes that arrive together are applied once (after
//! [`SETTLE`]). What [`translate`] left out is logged, once per change of the problem
//! list.
//!
//! The kube-rs watcher lists, then watches from the list's resourceVersion; when the API
//! server answers `410 Gone` (the version is too old) it lists again, and reconnects
//! with backoff after any error, so the source outlives API server restarts. Until the
//! first full list of all three kinds, nothing is offered: a gateway never serves a
//! half-read cluster.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use gatehouse_gateway::ConfigSink;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client, Resource as _};
use tokio_util::sync::CancellationToken;

use crate::translate::{IngressProblem, translate};

/// How long a burst of changes may go on before the result is applied.
pub const SETTLE: Duration = Duration::from_millis(100);

/// What the Ingress source watches.
#[derive(Debug, Clone, Default)]
pub struct IngressSettings {
    /// The namespace to read (`k8s.ingress.namespace`); `None`: every namespace.
    pub namespace: Option<String>,
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// Watches until `shutdown`, offering each new translation to `sink`.
pub async fn run(
    client: Client,
    settings: IngressSettings,
    sink: ConfigSink,
    shutdown: CancellationToken,
) {
    let namespace = settings.namespace.as_deref();
    let recorder = Recorder::new(client.clone(), reporter());
    let config = watcher::Config::default();
    let (ingresses, ingress_writer) = reflector::store::<Ingress>();
    let (services, service_writer) = reflector::store::<Service>();
    let (secrets, secret_writer) = reflector::store::<Secret>();
    let ingress_events = reflector::reflector(
        ingress_writer,
        watcher(api::<Ingress>(&client, namespace), config.clone()),
    )
    .default_backoff()
    .map(|event| event.map(drop));
    let service_events = reflector::reflector(
        service_writer,
        watcher(api::<Service>(&client, namespace), config.clone()),
    )
    .default_backoff()
    .map(|event| event.map(drop));
    let secret_events = reflector::reflector(
        secret_writer,
        watcher(api::<Secret>(&client, namespace), config),
    )
    .default_backoff()
    .map(|event| event.map(drop));
    let mut events = futures_util::stream::select_all([
        ingress_events.boxed(),
        service_events.boxed(),
        secret_events.boxed(),
    ]);
    tracing::info!(
        namespace = namespace.unwrap_or("(all namespaces)"),
        "watching Kubernetes Ingresses (classes azure-api-management/gateway and gatehouse)"
    );

    // Nothing is offered before each store has had its first full list.
    let ready = async {
        let _ = tokio::join!(
            ingresses.wait_until_ready(),
            services.wait_until_ready(),
            secrets.wait_until_ready()
        );
    };
    let mut ready = std::pin::pin!(ready);
    let mut synced = false;
    let mut dirty = false;
    let mut last_problems: Vec<IngressProblem> = Vec::new();
    loop {
        let settle = tokio::time::sleep(SETTLE);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = &mut ready, if !synced => {
                synced = true;
                dirty = true;
            }
            event = events.next() => match event {
                Some(Ok(())) => dirty = true,
                Some(Err(error)) => {
                    tracing::warn!(%error, "Kubernetes watch failed; retrying with backoff");
                }
                None => return,
            },
            () = settle, if synced && dirty => {
                dirty = false;
                let new_problems =
                    apply(&sink, &ingresses, &services, &secrets, &mut last_problems).await;
                if !new_problems.is_empty() {
                    // Off the watch loop: a slow or refusing API server delays nothing.
                    tokio::spawn(record_events(recorder.clone(), ingresses.clone(), new_problems));
                }
            }
        }
    }
}

/// The objects a store holds, owned.
fn owned<K: Clone>(items: Vec<Arc<K>>) -> Vec<K> {
    items.into_iter().map(Arc::unwrap_or_clone).collect()
}

/// Who writes the Events: `gatehouse`, this pod (`POD_NAME`, as the chart sets it, or
/// `HOSTNAME`, which Kubernetes sets to the pod's name).
fn reporter() -> Reporter {
    let instance = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok();
    Reporter {
        controller: "gatehouse".to_owned(),
        instance,
    }
}

/// Writes a `Warning` Event on each Ingress with a new problem (`kubectl describe
/// ingress` shows it). A failure (no RBAC for events, the API server away) is logged,
/// never retried in a loop: the log line said it already.
async fn record_events(
    recorder: Recorder,
    ingresses: Store<Ingress>,
    problems: Vec<IngressProblem>,
) {
    for problem in problems {
        let key =
            reflector::ObjectRef::new(&problem.ingress.name).within(&problem.ingress.namespace);
        let Some(ingress) = ingresses.get(&key) else {
            continue; // deleted meanwhile
        };
        let event = Event {
            type_: EventType::Warning,
            reason: "PartlyNotServed".to_owned(),
            note: Some(truncate(&problem.message, 1024)),
            action: "Translate".to_owned(),
            secondary: None,
        };
        if let Err(error) = recorder.publish(&event, &ingress.object_ref(&())).await {
            tracing::warn!(ingress = %problem.ingress, %error, "cannot write a Kubernetes Event (does the gateway's Role allow creating events?)");
        }
    }
}

/// At most `max` bytes of `text`, cut on a character boundary (an Event's note is
/// limited to 1 KiB).
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Translates what the stores hold and offers it to the gateway; returns the problems
/// that are new since the last translation.
async fn apply(
    sink: &ConfigSink,
    ingresses: &Store<Ingress>,
    services: &Store<Service>,
    secrets: &Store<Secret>,
    last_problems: &mut Vec<IngressProblem>,
) -> Vec<IngressProblem> {
    let translation = translate(
        &owned(ingresses.state()),
        &owned(services.state()),
        &owned(secrets.state()),
    );
    let mut new_problems = Vec::new();
    if translation.problems != *last_problems {
        for problem in &translation.problems {
            tracing::warn!(ingress = %problem.ingress, problem = %problem.message, "part of an Ingress is not served");
        }
        new_problems = translation
            .problems
            .iter()
            .filter(|problem| !last_problems.contains(problem))
            .cloned()
            .collect();
        last_problems.clone_from(&translation.problems);
    }
    let routes = translation.configuration.apis.len();
    match sink
        .offer(
            translation.configuration,
            "kubernetes ingress".to_owned(),
            None,
        )
        .await
    {
        Ok(revision) => tracing::info!(
            ingresses = translation.ingresses.len(),
            routes,
            revision,
            "Ingress configuration applied"
        ),
        Err(error) => {
            tracing::error!(%error, "the configuration from the Ingresses cannot be served; still serving the previous one");
        }
    }
    new_problems
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
