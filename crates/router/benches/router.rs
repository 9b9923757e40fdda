//! Lookup cost against the number of APIs, next to the obvious naive design (scan every
//! API for the best host and prefix, then try its operations in order), so the win
//! stays visible.
//!
//! Run with `cargo bench -p gatehouse-router` (add `-- --router-only` to skip the
//! baseline). No bench framework: each measurement routes a fixed rotation of 1,024
//! requests for a fixed wall-clock budget in seven samples and reports the best
//! sample's mean time per lookup, parameter allocation included. The naive baseline
//! does *less* work per operation than the router (first match, no specificity), so its
//! numbers flatter it.

#![allow(clippy::print_stdout)] // A bench reports on stdout.

use std::error::Error;
use std::hint::black_box;
use std::time::{Duration, Instant};

use gatehouse_router::{ApiSpec, PathCase, RouteMatch, Router, Template};
use http::Method;

const SIZES: [usize; 3] = [10, 1_000, 10_000];
const REQUESTS: usize = 1_024;
const BUDGET: Duration = Duration::from_millis(350);
const SAMPLES: u32 = 7;

/// The operations every API has.
const OPERATIONS: [(&str, &str, &str); 7] = [
    ("root", "GET", "/"),
    ("list", "GET", "/users"),
    ("get", "GET", "/users/{id}"),
    ("create", "POST", "/users"),
    ("orders", "GET", "/users/{id}/orders/{orderId}"),
    ("files", "*", "/files/{*path}"),
    ("report", "GET", "/reports/{name}.json"),
];

/// One API's configuration, owned, so `ApiSpec`s can borrow from it.
struct ApiConfig {
    id: String,
    path: String,
    hostnames: Vec<String>,
}

fn configs(count: usize) -> Vec<ApiConfig> {
    (0..count)
        .map(|i| ApiConfig {
            id: format!("api-{i}"),
            path: match i % 3 {
                0 => format!("svc{i}"),
                1 => format!("v1/svc{i}"),
                _ => format!("v2/team{}/svc{i}", i % 50),
            },
            hostnames: match i % 4 {
                0 => vec![format!("h{}.example.com", i % 20)],
                1 => vec![format!("*.w{}.example.com", i % 10)],
                _ => Vec::new(),
            },
        })
        .collect()
}

fn specs(configs: &[ApiConfig]) -> impl Iterator<Item = ApiSpec<'_>> {
    configs.iter().enumerate().map(|(index, config)| {
        let api = ApiSpec {
            hostnames: config.hostnames.iter().map(String::as_str).collect(),
            ..ApiSpec::new(index, &config.id, &config.path)
        };
        OPERATIONS.iter().fold(api, |api, (id, method, template)| {
            api.operation(id, method, template)
        })
    })
}

/// A request: host, method, path and query.
struct Request {
    host: Option<String>,
    method: Method,
    target: String,
}

/// xorshift64*, so every run routes the same requests.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

fn host_for(config: &ApiConfig, i: usize) -> Option<String> {
    config
        .hostnames
        .first()
        .map(|host| match host.strip_prefix("*.") {
            Some(suffix) => format!("tenant{}.{suffix}:443", i % 7),
            None => format!("{host}:8080"),
        })
}

fn hits(configs: &[ApiConfig], rng: &mut Rng) -> Vec<Request> {
    (0..REQUESTS)
        .map(|i| {
            let config = &configs[rng.below(configs.len())];
            let (method, rest) = match i % 6 {
                0 => (Method::GET, "/users".to_owned()),
                1 => (Method::GET, format!("/users/{i}")),
                2 => (Method::POST, "/users".to_owned()),
                3 => (Method::GET, format!("/users/{i}/orders/o-{i}?expand=all")),
                4 => (Method::PUT, format!("/files/a/b/c{i}.txt")),
                _ => (Method::GET, format!("/reports/r{i}.json")),
            };
            Request {
                host: host_for(config, i),
                method,
                target: format!("/{}{rest}", config.path),
            }
        })
        .collect()
}

fn api_misses(rng: &mut Rng) -> Vec<Request> {
    (0..REQUESTS)
        .map(|i| Request {
            host: (i % 2 == 0).then(|| format!("h{}.example.com", rng.below(20))),
            method: Method::GET,
            target: format!("/missing{i}/users/{i}"),
        })
        .collect()
}

fn operation_misses(configs: &[ApiConfig], rng: &mut Rng) -> Vec<Request> {
    (0..REQUESTS)
        .map(|i| {
            let config = &configs[rng.below(configs.len())];
            Request {
                host: host_for(config, i),
                method: Method::GET,
                target: format!("/{}/unknown/{i}", config.path),
            }
        })
        .collect()
}

/// The obvious design: every lookup scans every API.
struct Naive {
    apis: Vec<NaiveApi>,
}

struct NaiveApi {
    index: usize,
    /// `/svc1`, or empty for the root.
    prefix: String,
    exact: Vec<String>,
    /// `.example.com` for `*.example.com`.
    wildcard: Vec<String>,
    operations: Vec<(Option<Method>, Template)>,
}

impl Naive {
    fn new(configs: &[ApiConfig]) -> Result<Self, Box<dyn Error>> {
        let mut apis = Vec::new();
        for (index, config) in configs.iter().enumerate() {
            let mut operations = Vec::new();
            for (_, method, template) in OPERATIONS {
                let method = match method {
                    "*" => None,
                    method => Some(Method::from_bytes(method.as_bytes())?),
                };
                operations.push((method, Template::parse(template)?));
            }
            let (wildcard, exact) = config
                .hostnames
                .iter()
                .partition::<Vec<_>, _>(|host| host.starts_with("*."));
            apis.push(NaiveApi {
                index,
                prefix: format!("/{}", config.path),
                exact: exact.into_iter().cloned().collect(),
                wildcard: wildcard.iter().map(|h| h[1..].to_owned()).collect(),
                operations,
            });
        }
        Ok(Self { apis })
    }

    fn route(&self, host: Option<&str>, method: &Method, target: &str) -> RouteMatch {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let host = host.map(|h| h.split(':').next().unwrap_or(h));
        let mut best: Option<(u8, usize, &NaiveApi)> = None;
        for api in &self.apis {
            let tier = match host {
                _ if api.exact.is_empty() && api.wildcard.is_empty() => 0,
                Some(h) if api.exact.iter().any(|e| e.eq_ignore_ascii_case(h)) => 2,
                Some(h)
                    if api.wildcard.iter().any(|w| {
                        h.len() > w.len()
                            && h[h.len() - w.len()..].eq_ignore_ascii_case(w)
                            && !h[..h.len() - w.len()].contains('.')
                    }) =>
                {
                    1
                }
                _ => continue,
            };
            let prefix = api.prefix.as_bytes();
            let matches = path.len() >= prefix.len()
                && path.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix)
                && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'));
            if matches && best.is_none_or(|(t, len, _)| (tier, prefix.len()) > (t, len)) {
                best = Some((tier, prefix.len(), api));
            }
        }
        let Some((_, len, api)) = best else {
            return RouteMatch::ApiNotFound;
        };
        let rest = format!("{}?{query}", &path[len..]);
        for (allowed, template) in &api.operations {
            if allowed.as_ref().is_none_or(|m| m == method)
                && let Some(params) = template.capture(&rest, PathCase::Insensitive)
            {
                return RouteMatch::Matched(gatehouse_router::Route {
                    api: api.index,
                    operation: 0,
                    params,
                    api_path_len: len,
                });
            }
        }
        RouteMatch::OperationNotFound { api: api.index }
    }
}

/// Nanoseconds per call of `route` over `requests`: the best of [`SAMPLES`] runs of
/// `BUDGET / SAMPLES` each, so that other work on the machine inflates it less.
fn measure(requests: &[Request], route: impl Fn(&Request) -> RouteMatch) -> f64 {
    for request in requests {
        black_box(route(black_box(request)));
    }
    let per_sample = BUDGET / SAMPLES;
    (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            let mut lookups = 0_u64;
            while start.elapsed() < per_sample {
                for request in requests {
                    black_box(route(black_box(request)));
                }
                lookups += requests.len() as u64;
            }
            start.elapsed().as_nanos() as f64 / lookups as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> Result<(), Box<dyn Error>> {
    // `cargo bench -p gatehouse-router -- --router-only` skips the slow naive baseline
    // (handy under a profiler).
    let router_only = std::env::args().any(|arg| arg == "--router-only");
    println!(
        "{:>7}  {:<18} {:>10} {:>10} {:>9}",
        "APIs", "requests", "router ns", "naive ns", "speed-up"
    );
    for size in SIZES {
        let configs = configs(size);
        let start = Instant::now();
        let router = Router::build(specs(&configs))?;
        let build = start.elapsed();
        let naive = Naive::new(&configs)?;
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ size as u64);
        let scenarios = [
            ("hit", hits(&configs, &mut rng)),
            // The same table, but requests for only ten of its APIs: what is left of
            // the difference to the first row is memory traffic, not lookup work.
            ("hit, 10 hot APIs", hits(&configs[..10], &mut rng)),
            ("API miss", api_misses(&mut rng)),
            ("operation miss", operation_misses(&configs, &mut rng)),
        ];
        for (name, requests) in &scenarios {
            let ours = measure(requests, |r| {
                router.route(r.host.as_deref(), &r.method, &r.target)
            });
            if router_only {
                println!("{size:>7}  {name:<18} {ours:>10.1}");
                continue;
            }
            // Both designs must agree on the API, or the comparison means nothing.
            for request in requests {
                let host = request.host.as_deref();
                let ours = router.route(host, &request.method, &request.target);
                let theirs = naive.route(host, &request.method, &request.target);
                if ours.api() != theirs.api() || ours.reason() != theirs.reason() {
                    return Err(format!(
                        "{name}: {host:?} {} {}: router {ours:?}, naive {theirs:?}",
                        request.method, request.target
                    )
                    .into());
                }
            }
            let theirs = measure(requests, |r| {
                naive.route(r.host.as_deref(), &r.method, &r.target)
            });
            println!(
                "{size:>7}  {name:<18} {ours:>10.1} {theirs:>10.1} {:>8.1}x",
                theirs / ours
            );
        }
        println!(
            "{size:>7}  build {:.1} ms ({} operations)",
            build.as_secs_f64() * 1e3,
            size * OPERATIONS.len()
        );
    }
    Ok(())
}
