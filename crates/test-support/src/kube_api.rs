//! A fake Kubernetes API server: real HTTP with list and watch as the API server does
//! them (resourceVersion, watch streams of JSON lines, bookmarks, `410 Gone` when the
//! version asked for is too old), for the collections the Ingress source reads:
//! Ingresses (`networking.k8s.io/v1`), Services and Secrets (`v1`), namespaced or
//! across namespaces. No real API server can be installed here, so the real kube-rs
//! client is pointed at this.
//!
//! ```ignore
//! let api = FakeKubeApi::start();
//! api.apply("ingresses", ingress_json);        // ADDED, or MODIFIED when it exists
//! api.delete("services", "shop", "users");     // DELETED
//! api.expire_history();                        // the next watch from an old version: 410
//! ```

// A test fake, touched by sync test code and by its server's runtime, never on a hot
// path: a std mutex is the simple, right tool here.
#![allow(clippy::disallowed_types)]

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::server_thread::{ServerThread, accept_each};

/// The collections served, with their list kind and API group path.
const COLLECTIONS: [(&str, &str, &str); 3] = [
    ("ingresses", "IngressList", "/apis/networking.k8s.io/v1"),
    ("services", "ServiceList", "/api/v1"),
    ("secrets", "SecretList", "/api/v1"),
];

/// One change, as a watch sends it.
#[derive(Debug, Clone)]
struct Event {
    resource_version: u64,
    collection: &'static str,
    namespace: String,
    kind: &'static str,
    object: Value,
}

#[derive(Debug, Default)]
struct State {
    /// The latest resourceVersion given out.
    version: u64,
    /// Objects by collection, then (namespace, name).
    objects: HashMap<&'static str, BTreeMap<(String, String), Value>>,
    /// Every change still kept; a watch from before the oldest gets 410.
    history: Vec<Event>,
    /// Changes older than this are forgotten.
    oldest: u64,
    /// Watch requests served, by collection.
    watches: HashMap<&'static str, u64>,
    /// List requests served, by collection.
    lists: HashMap<&'static str, u64>,
    /// Events written (`events.k8s.io/v1`), as last created or patched.
    events: Vec<Value>,
}

/// The fake API server; stops when dropped.
#[derive(Debug)]
pub struct FakeKubeApi {
    state: Arc<Mutex<State>>,
    changes: broadcast::Sender<Event>,
    /// Bumped to end every open watch stream (as an API server restart or a load
    /// balancer's idle timeout does).
    hangups: tokio::sync::watch::Sender<u64>,
    server: ServerThread,
}

impl FakeKubeApi {
    /// Starts it on `127.0.0.1:0`.
    ///
    /// # Panics
    ///
    /// When it cannot bind.
    #[must_use]
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let (changes, _) = broadcast::channel(1024);
        let hangups = tokio::sync::watch::Sender::new(0);
        let served = (state.clone(), changes.clone(), hangups.clone());
        let server = ServerThread::spawn("fake-kube-api", move |listener, shutdown| async move {
            accept_each(listener, shutdown, move |stream| {
                let (state, changes, hangups) = served.clone();
                async move {
                    let service = service_fn(move |request| {
                        let state = state.clone();
                        let changes = changes.clone();
                        let hangup = hangups.subscribe();
                        async move {
                            if request.method() == hyper::Method::GET {
                                Ok::<_, Infallible>(handle(&state, &changes, hangup, &request))
                            } else {
                                Ok(write_event(&state, request).await)
                            }
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
            })
            .await;
        });
        Self {
            state,
            changes,
            hangups,
            server,
        }
    }

    /// `http://127.0.0.1:<port>`: the cluster URL for a kube client.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Creates or replaces an object of `collection` (`ingresses`, `services`,
    /// `secrets`); it gets the next resourceVersion.
    ///
    /// # Panics
    ///
    /// On an unknown collection or an object without a name.
    pub fn apply(&self, collection: &str, mut object: Value) {
        let collection = known(collection);
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_owned();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_else(|| panic!("fake-kube-api: an object needs metadata.name"))
            .to_owned();
        let mut state = lock(&self.state);
        state.version += 1;
        let version = state.version;
        object["metadata"]["namespace"] = json!(namespace);
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        let existed = state
            .objects
            .entry(collection)
            .or_default()
            .insert((namespace.clone(), name), object.clone())
            .is_some();
        let event = Event {
            resource_version: version,
            collection,
            namespace,
            kind: if existed { "MODIFIED" } else { "ADDED" },
            object,
        };
        state.history.push(event.clone());
        drop(state);
        let _ = self.changes.send(event);
    }

    /// Deletes an object; nothing happens when it does not exist.
    pub fn delete(&self, collection: &str, namespace: &str, name: &str) {
        let collection = known(collection);
        let mut state = lock(&self.state);
        let Some(mut object) = state
            .objects
            .entry(collection)
            .or_default()
            .remove(&(namespace.to_owned(), name.to_owned()))
        else {
            return;
        };
        state.version += 1;
        let version = state.version;
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        let event = Event {
            resource_version: version,
            collection,
            namespace: namespace.to_owned(),
            kind: "DELETED",
            object,
        };
        state.history.push(event.clone());
        drop(state);
        let _ = self.changes.send(event);
    }

    /// Forgets every change so far: a watch resuming from an earlier version now gets
    /// `410 Gone` (an `ERROR` event), and its client must list again.
    pub fn expire_history(&self) {
        let mut state = lock(&self.state);
        // A new version no watch can have reached: lists answer it, watches from
        // anything older get 410.
        state.version += 1;
        state.oldest = state.version;
        state.history.clear();
    }

    /// Ends every open watch stream: clients watch again from the version they reached
    /// (and, after [`FakeKubeApi::expire_history`], get `410 Gone` and list again).
    pub fn hang_up_watches(&self) {
        self.hangups.send_modify(|generation| *generation += 1);
    }

    /// How many list requests `collection` has had (a relist after 410 shows as one
    /// more).
    #[must_use]
    pub fn list_requests(&self, collection: &str) -> u64 {
        let collection = known(collection);
        lock(&self.state)
            .lists
            .get(collection)
            .copied()
            .unwrap_or(0)
    }

    /// The Events written so far (`events.k8s.io/v1`, as created, with later patches
    /// merged in).
    #[must_use]
    pub fn events(&self) -> Vec<Value> {
        lock(&self.state).events.clone()
    }

    /// How many watch requests `collection` has had (relists show as more).
    #[must_use]
    pub fn watch_requests(&self, collection: &str) -> u64 {
        let collection = known(collection);
        lock(&self.state)
            .watches
            .get(collection)
            .copied()
            .unwrap_or(0)
    }
}

fn known(collection: &str) -> &'static str {
    COLLECTIONS
        .iter()
        .map(|(name, ..)| *name)
        .find(|name| *name == collection)
        .unwrap_or_else(|| panic!("fake-kube-api: unknown collection `{collection}`"))
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// `POST /apis/events.k8s.io/v1/namespaces/<ns>/events` (create) and `PATCH …/events/<name>`
/// (a merge patch, as kube-rs's event recorder sends for a repeated Event); anything
/// else that is not a GET is refused.
async fn write_event(
    state: &Arc<Mutex<State>>,
    request: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let not_found = || {
        json_response(
            StatusCode::NOT_FOUND,
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "reason": "NotFound"}),
        )
    };
    let path = request.uri().path().to_owned();
    let Some(rest) = path.strip_prefix("/apis/events.k8s.io/v1/namespaces/") else {
        return not_found();
    };
    let Some((namespace, tail)) = rest.split_once('/') else {
        return not_found();
    };
    let namespace = namespace.to_owned();
    let method = request.method().clone();
    let body = match http_body_util::Limited::new(request.into_body(), 1 << 20)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"kind": "Status", "code": 400}),
            );
        }
    };
    let Ok(mut object) = serde_json::from_slice::<Value>(&body) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"kind": "Status", "code": 400}),
        );
    };
    let mut state = lock(state);
    state.version += 1;
    let version = state.version.to_string();
    match (method, tail) {
        (hyper::Method::POST, "events") => {
            object["metadata"]["namespace"] = json!(namespace);
            object["metadata"]["resourceVersion"] = json!(version);
            state.events.push(object.clone());
            json_response(StatusCode::CREATED, &object)
        }
        (hyper::Method::PATCH, tail) => {
            let Some(name) = tail.strip_prefix("events/") else {
                return not_found();
            };
            let Some(stored) = state.events.iter_mut().find(|event| {
                event["metadata"]["name"] == name
                    && event["metadata"]["namespace"] == namespace.as_str()
            }) else {
                return not_found();
            };
            if let (Some(stored), Some(patch)) = (stored.as_object_mut(), object.as_object()) {
                for (key, value) in patch {
                    if key != "metadata" {
                        stored.insert(key.clone(), value.clone());
                    }
                }
            }
            stored["metadata"]["resourceVersion"] = json!(version);
            json_response(StatusCode::OK, stored)
        }
        _ => not_found(),
    }
}

/// Which collection and namespace a path names: `<group>/namespaces/<ns>/<collection>`
/// or `<group>/<collection>`.
fn route(path: &str) -> Option<(&'static str, &'static str, Option<String>)> {
    for (collection, list_kind, prefix) in COLLECTIONS {
        let Some(rest) = path.strip_prefix(prefix) else {
            continue;
        };
        if rest == format!("/{collection}") {
            return Some((collection, list_kind, None));
        }
        if let Some(namespaced) = rest.strip_prefix("/namespaces/")
            && let Some((namespace, tail)) = namespaced.split_once('/')
            && tail == collection
        {
            return Some((collection, list_kind, Some(namespace.to_owned())));
        }
    }
    None
}

fn handle(
    state: &Arc<Mutex<State>>,
    changes: &broadcast::Sender<Event>,
    mut hangup: tokio::sync::watch::Receiver<u64>,
    request: &Request<hyper::body::Incoming>,
) -> Response<Body> {
    let Some((collection, list_kind, namespace)) = route(request.uri().path()) else {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "reason": "NotFound"}),
        );
    };
    let query: HashMap<String, String> = request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let in_scope = move |ns: &str| namespace.as_deref().is_none_or(|wanted| wanted == ns);
    if query.get("watch").map(String::as_str) != Some("true") {
        let mut state = lock(state);
        *state.lists.entry(collection).or_insert(0) += 1;
        let items: Vec<Value> = state
            .objects
            .get(collection)
            .into_iter()
            .flat_map(BTreeMap::iter)
            .filter(|((ns, _), _)| in_scope(ns))
            .map(|(_, object)| object.clone())
            .collect();
        return json_response(
            StatusCode::OK,
            &json!({
                "kind": list_kind,
                "apiVersion": if collection == "ingresses" { "networking.k8s.io/v1" } else { "v1" },
                "metadata": {"resourceVersion": state.version.to_string()},
                "items": items,
            }),
        );
    }
    let since: u64 = query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut state = lock(state);
    *state.watches.entry(collection).or_insert(0) += 1;
    let line = |value: Value| Ok::<_, Infallible>(Frame::data(Bytes::from(format!("{value}\n"))));
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(64);
    if since < state.oldest {
        let gone = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
            "status": "Failure", "code": 410, "reason": "Expired",
            "message": format!("too old resource version: {since} ({})", state.oldest)}});
        let _ = sender.try_send(line(gone));
        drop(sender);
    } else {
        let backlog: Vec<Event> = state
            .history
            .iter()
            .filter(|e| e.collection == collection && e.resource_version > since)
            .cloned()
            .collect();
        let version = state.version;
        let mut live = changes.subscribe();
        let bookmark_kind = if collection == "ingresses" {
            ("Ingress", "networking.k8s.io/v1")
        } else if collection == "services" {
            ("Service", "v1")
        } else {
            ("Secret", "v1")
        };
        tokio::spawn(async move {
            for event in backlog.into_iter().filter(|e| in_scope(&e.namespace)) {
                if sender
                    .send(line(json!({"type": event.kind, "object": event.object})))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            // A bookmark: the client learns the version it is at.
            let bookmark = json!({"type": "BOOKMARK", "object": {"kind": bookmark_kind.0,
                "apiVersion": bookmark_kind.1, "metadata": {"resourceVersion": version.to_string()}}});
            if sender.send(line(bookmark)).await.is_err() {
                return;
            }
            hangup.mark_unchanged();
            loop {
                let event = tokio::select! {
                    _ = hangup.changed() => return,
                    event = live.recv() => match event {
                        Ok(event) => event,
                        Err(_) => return,
                    },
                };
                if event.collection != collection
                    || event.resource_version <= version
                    || !in_scope(&event.namespace)
                {
                    continue;
                }
                if sender
                    .send(line(json!({"type": event.kind, "object": event.object})))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
    drop(state);
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|frame| (frame, receiver))
    });
    let mut response = Response::new(StreamBody::new(stream).boxed());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
