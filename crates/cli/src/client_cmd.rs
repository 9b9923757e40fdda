//! The command-line client of the management API: `apply`, `get`, `delete`, and the
//! gateway verbs (`token`, `status`). Errors from the server are shown as the server
//! said them.

// A command-line client's output is its job: stdout is where results go.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};

/// `println!` for the client verbs, returning the write error (`?`) instead of
/// panicking: `gatehouse get apis | head -1` closes stdout early, and the verb must end
/// quietly, as Unix tools do (`main` treats a broken pipe as success).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}
use gatehouse_model::Configuration;
use serde_json::{Value, json};

/// Where the control plane is and how to authenticate. Each setting comes from its flag,
/// else its environment variable, else the context file, else the default.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServerArgs {
    /// Management API URL [default: http://127.0.0.1:8090].
    #[arg(long, global = true, env = "GATEHOUSE_SERVER")]
    server: Option<String>,

    /// Admin token (default: read from the token file).
    #[arg(long, global = true, env = "GATEHOUSE_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// File holding the admin token [default: ./.gatehouse/admin-token].
    #[arg(long, global = true, env = "GATEHOUSE_TOKEN_FILE")]
    token_file: Option<PathBuf>,

    /// Context file (YAML: `server`, `token` or `tokenFile`, and `caFile`) [default:
    /// ~/.config/gatehouse/context.yaml, when it exists].
    #[arg(long, global = true, env = "GATEHOUSE_CONTEXT")]
    context: Option<PathBuf>,

    /// CA bundle (PEM) that signs the control plane's certificate, for an `https://`
    /// server with a private CA (default: the system's CA certificates).
    #[arg(long, global = true, env = "GATEHOUSE_CA_FILE", value_name = "FILE")]
    ca_file: Option<PathBuf>,
}

/// What a context file may hold.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Context {
    server: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    /// Relative paths are relative to the working directory, as `tokenFile`.
    ca_file: Option<PathBuf>,
}

const DEFAULT_SERVER: &str = "http://127.0.0.1:8090";
const DEFAULT_TOKEN_FILE: &str = "./.gatehouse/admin-token";

impl ServerArgs {
    /// The context file named, or the default one if it exists.
    fn context(&self) -> anyhow::Result<Context> {
        let (path, named) = match &self.context {
            Some(path) => (path.clone(), true),
            None => match std::env::var_os("HOME") {
                Some(home) => (
                    PathBuf::from(home).join(".config/gatehouse/context.yaml"),
                    false,
                ),
                None => return Ok(Context::default()),
            },
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_yaml_ng::from_str(&text)
                .with_context(|| format!("invalid context file {}", path.display())),
            Err(error) if !named && error.kind() == std::io::ErrorKind::NotFound => {
                Ok(Context::default())
            }
            Err(error) => {
                Err(error).with_context(|| format!("cannot read context file {}", path.display()))
            }
        }
    }
}

/// One path segment of a management API URL: every byte but A-Z a-z 0-9 `-` `_` `~`
/// percent-encoded, `.` too, so a name like `../named-values/x` stays one segment and
/// cannot climb out of its collection.
fn segment(name: &str) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    // URLs read `%2E%2E` as `..` (WHATWG URL), so these cannot be sent as names at all.
    if name.is_empty() || name.bytes().all(|b| b == b'.') {
        anyhow::bail!(
            "`{name}` is not a valid name: names are letters, digits, `-`, `_` and `.`, and not only dots"
        );
    }
    let mut encoded = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    Ok(encoded)
}

/// Output format of `get`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Output {
    /// YAML, as in the configuration file.
    Yaml,
    /// JSON, as the API returns it.
    Json,
}

/// Kinds on the command line (singular or plural, as kubectl users type them).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum KindArg {
    /// APIs.
    #[value(alias = "apis")]
    Api,
    /// Products.
    #[value(alias = "products")]
    Product,
    /// Subscriptions.
    #[value(alias = "subscriptions")]
    Subscription,
    /// Named values.
    #[value(alias = "named-values")]
    NamedValue,
    /// Backends.
    #[value(alias = "backends")]
    Backend,
    /// Certificates.
    #[value(alias = "certificates")]
    Certificate,
    /// Hostnames.
    #[value(alias = "hostnames")]
    Hostname,
    /// Gateways.
    #[value(alias = "gateways")]
    Gateway,
    /// The global policy.
    Policy,
}

impl KindArg {
    const fn collection(self) -> &'static str {
        match self {
            Self::Api => "apis",
            Self::Product => "products",
            Self::Subscription => "subscriptions",
            Self::NamedValue => "named-values",
            Self::Backend => "backends",
            Self::Certificate => "certificates",
            Self::Hostname => "hostnames",
            Self::Gateway => "gateways",
            Self::Policy => "policy",
        }
    }
}

/// A management API client.
struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    fn new(args: &ServerArgs) -> anyhow::Result<Self> {
        let context = args.context()?;
        let server = args
            .server
            .clone()
            .or(context.server)
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        let token = match args.token.clone().or(context.token) {
            Some(token) => token,
            None => {
                let file = args
                    .token_file
                    .clone()
                    .or(context.token_file)
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_TOKEN_FILE));
                std::fs::read_to_string(&file)
                    .with_context(|| {
                        format!(
                            "no token given and cannot read {} (use --token, GATEHOUSE_TOKEN, --token-file or a context file)",
                            file.display()
                        )
                    })?
                    .trim()
                    .to_owned()
            }
        };
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(60));
        let ca_file = args.ca_file.clone().or(context.ca_file);
        if server
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("https://")
        {
            builder = builder.use_preconfigured_tls(tls_config(ca_file.as_deref())?);
        }
        let http = builder.build().context("cannot build the HTTP client")?;
        Ok(Self {
            base: server.trim_end_matches('/').to_owned(),
            token,
            http,
        })
    }

    /// Sends a request; returns the status and the JSON body (`Null` when empty).
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|error| {
            let chain = error_chain(&error);
            let hint = if chain.contains("UnknownIssuer") {
                " (its certificate is not signed by a CA this client trusts: give the CA bundle with --ca-file, GATEHOUSE_CA_FILE or `caFile` in the context file)"
            } else {
                ""
            };
            anyhow::anyhow!("cannot reach the control plane at {}: {chain}{hint}", self.base)
        })?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.context("cannot read the response")?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok((status, value))
    }

    /// Like [`Client::send`], but a non-2xx answer is an error carrying the server's
    /// message.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let (status, value) = self.send(method.clone(), path, body).await?;
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            bail!("{method} {path}: {status}: {}", server_message(&value))
        }
    }
}

/// An error and its causes, `: `-separated.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// TLS to an `https://` control plane: the CA bundle's certificates, else the system's.
/// Blocking reads, before the runtime starts.
fn tls_config(
    ca_file: Option<&std::path::Path>,
) -> anyhow::Result<gatehouse_tls::rustls::ClientConfig> {
    use gatehouse_tls::client::ClientTls;
    let roots = match ca_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the CA file {}", path.display()))?;
            let store = gatehouse_tls::certificate::root_store([text.as_str()])
                .with_context(|| format!("the CA file {} cannot be used", path.display()))?;
            Some(std::sync::Arc::new(store))
        }
        None => None,
    };
    let config = ClientTls {
        roots,
        alpn: vec![
            gatehouse_tls::ALPN_H2.to_vec(),
            gatehouse_tls::ALPN_HTTP11.to_vec(),
        ],
        ..ClientTls::default()
    }
    .build()
    .context("cannot set up TLS to the control plane (use --ca-file for a private CA)")?;
    Ok(gatehouse_tls::rustls::ClientConfig::clone(&config))
}

fn server_message(value: &Value) -> String {
    value["error"]["message"]
        .as_str()
        .map_or_else(|| value.to_string(), ToOwned::to_owned)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

/// `gatehouse apply -f FILE`: makes the control plane hold what the file says,
/// entity by entity, dependencies first; prints what changed. Idempotent.
pub(crate) fn apply(server: &ServerArgs, file: &PathBuf) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let origin = file.display().to_string();
    let config = Configuration::from_yaml(&origin, &text)?;
    let client = Client::new(server)?;
    runtime()?.block_on(async {
        // Checked as it will stand: what the server holds with the file laid over it,
        // so a file may refer to what is already there (a `gateways:` section alone).
        let mut merged = server_configuration(&client).await?;
        merged.overlay(config.clone());
        merged
            .validate()
            .map_err(|errors| gatehouse_model::ConfigError::Invalid {
                origin: origin.clone(),
                errors,
            })?;
        let mut plan: Vec<(&'static str, String, Value)> = Vec::new();
        let mut push = |collection: &'static str,
                        id: &str,
                        body: anyhow::Result<Value>|
         -> anyhow::Result<()> {
            plan.push((collection, id.to_owned(), body?));
            Ok(())
        };
        for v in &config.named_values {
            push("named-values", &v.name, to_json(v))?;
        }
        for b in &config.backends {
            push("backends", &b.id, to_json(b))?;
        }
        for c in &config.certificates {
            push("certificates", &c.id, to_json(c))?;
        }
        if let Some(policy) = &config.policy {
            push("policy", "", Ok(json!({ "value": policy })))?;
        }
        for a in &config.apis {
            push("apis", &a.id, to_json(a))?;
        }
        for p in &config.products {
            push("products", &p.id, to_json(p))?;
        }
        for s in &config.subscriptions {
            push("subscriptions", &s.id, to_json(s))?;
        }
        for h in &config.hostnames {
            push("hostnames", &h.hostname, to_json(h))?;
        }
        for g in &config.gateways {
            push("gateways", &g.id, to_json(g))?;
        }
        let (mut created, mut updated, mut unchanged) = (0, 0, 0);
        for (collection, id, body) in plan {
            let path = if id.is_empty() {
                format!("/{collection}")
            } else {
                format!("/{collection}/{}", segment(&id)?)
            };
            let label = if id.is_empty() {
                collection.to_owned()
            } else {
                format!("{collection}/{id}")
            };
            let (status, current) = client.send(reqwest::Method::GET, &path, None).await?;
            if status == 200 && same(&client, collection, &path, &current, &body).await? {
                out!("{label} unchanged");
                unchanged += 1;
                continue;
            }
            if status != 200 && status != 404 {
                bail!("GET {path}: {status}: {}", server_message(&current));
            }
            client
                .call(reqwest::Method::PUT, &path, Some(&body))
                .await?;
            if status == 404 {
                out!("{label} created");
                created += 1;
            } else {
                out!("{label} updated");
                updated += 1;
            }
        }
        out!("{created} created, {updated} updated, {unchanged} unchanged");
        let applied: Vec<&str> = config.apis.iter().map(|api| api.id.as_str()).collect();
        note_unassigned(&client, &applied).await
    })
}

/// What the control plane holds, as one configuration (write-only fields, which it
/// never shows, filled with stand-ins: enough to check references).
async fn server_configuration(client: &Client) -> anyhow::Result<Configuration> {
    let mut document = serde_json::Map::new();
    for (collection, field) in [
        ("named-values", "namedValues"),
        ("backends", "backends"),
        ("apis", "apis"),
        ("products", "products"),
        ("subscriptions", "subscriptions"),
        ("certificates", "certificates"),
        ("hostnames", "hostnames"),
        ("gateways", "gateways"),
    ] {
        let mut items = all_items(client, collection).await?;
        for item in &mut items {
            if let Value::Object(object) = item {
                match collection {
                    "subscriptions" => {
                        object
                            .entry("primaryKey")
                            .or_insert_with(|| json!("kept-by-the-server"));
                    }
                    "named-values" => {
                        object.entry("value").or_insert_with(|| json!(""));
                    }
                    _ => {}
                }
            }
        }
        document.insert(field.to_owned(), Value::Array(items));
    }
    let (status, policy) = client.send(reqwest::Method::GET, "/policy", None).await?;
    if status == 200
        && let Some(value) = policy["value"].as_str()
    {
        document.insert("policy".to_owned(), json!(value));
    }
    serde_json::from_value(Value::Object(document))
        .context("the control plane's entities do not form a configuration this CLI reads (is it another version?)")
}

/// Every item of a collection, following the pages.
async fn all_items(client: &Client, collection: &str) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    loop {
        let page = client
            .call(
                reqwest::Method::GET,
                &format!("/{collection}?skip={}&top=1000", items.len()),
                None,
            )
            .await?;
        let values = page["value"].as_array().cloned().unwrap_or_default();
        let done = values.is_empty() || page.get("nextLink").is_none();
        items.extend(values);
        if done {
            return Ok(items);
        }
    }
}

/// One field of every item of a collection.
async fn field_of_all(
    client: &Client,
    collection: &str,
    field: &str,
) -> anyhow::Result<Vec<Value>> {
    Ok(all_items(client, collection)
        .await?
        .into_iter()
        .map(|item| item[field].clone())
        .collect())
}

/// Says on stderr which of `apis` no gateway serves: without it, a new API answers 404
/// everywhere and nothing says why.
async fn note_unassigned(client: &Client, apis: &[&str]) -> anyhow::Result<()> {
    if apis.is_empty() {
        return Ok(());
    }
    let served: Vec<Value> = field_of_all(client, "gateways", "apis").await?;
    let served: std::collections::HashSet<&str> = served
        .iter()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let unassigned: Vec<&str> = apis
        .iter()
        .copied()
        .filter(|api| !served.contains(api))
        .collect();
    if !unassigned.is_empty() {
        eprintln!(
            "note: no gateway serves API {}: list {} under a gateway's `apis` (`gateways:` in the file), or every request to {} answers 404",
            unassigned
                .iter()
                .map(|api| format!("`{api}`"))
                .collect::<Vec<_>>()
                .join(", "),
            if unassigned.len() == 1 { "it" } else { "them" },
            if unassigned.len() == 1 { "it" } else { "them" },
        );
    }
    Ok(())
}

fn to_json<T: serde::Serialize>(value: &T) -> anyhow::Result<Value> {
    serde_json::to_value(value).context("cannot encode an entity")
}

/// Whether the stored entity equals the desired one, write-only fields included.
async fn same(
    client: &Client,
    collection: &str,
    path: &str,
    current: &Value,
    desired: &Value,
) -> anyhow::Result<bool> {
    let mut shown = desired.clone();
    let mut secrets = Value::Null;
    if let Value::Object(object) = &mut shown {
        match collection {
            "subscriptions" => {
                secrets = json!({
                    "primaryKey": object.remove("primaryKey"),
                    "secondaryKey": object.remove("secondaryKey"),
                });
            }
            "named-values" if object.get("secret").and_then(Value::as_bool) == Some(true) => {
                // A secret value cannot be read back to compare: always re-apply it.
                return Ok(false);
            }
            "certificates" if object.contains_key("privateKeyPem") => return Ok(false),
            _ => {}
        }
    }
    if strip_defaults(current) != strip_defaults(&shown) {
        return Ok(false);
    }
    if collection == "subscriptions" {
        let stored = client
            .call(
                reqwest::Method::POST,
                &format!("{path}/list-secrets"),
                Some(&json!({})),
            )
            .await?;
        let wanted_secondary = secrets["secondaryKey"].clone();
        return Ok(stored["primaryKey"] == secrets["primaryKey"]
            && (wanted_secondary.is_null() || stored["secondaryKey"] == wanted_secondary));
    }
    Ok(true)
}

/// Removes nulls and empty lists, which the file and the API may or may not spell out.
fn strip_defaults(value: &Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .filter(|(_, v)| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
                .map(|(k, v)| (k.clone(), strip_defaults(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_defaults).collect()),
        other => other.clone(),
    }
}

/// `gatehouse get KIND [NAME]`.
pub(crate) fn get(
    server: &ServerArgs,
    kind: KindArg,
    name: Option<&str>,
    output: Output,
) -> anyhow::Result<()> {
    let client = Client::new(server)?;
    let path = match (kind, name) {
        (KindArg::Policy, _) => "/policy".to_owned(),
        (_, Some(name)) => format!("/{}/{}", kind.collection(), segment(name)?),
        (_, None) => format!("/{}", kind.collection()),
    };
    runtime()?.block_on(async {
        let value = client.call(reqwest::Method::GET, &path, None).await?;
        print_value(&value, output)?;
        if matches!(kind, KindArg::Api) {
            let shown: Vec<&str> = match name {
                Some(_) => value["id"].as_str().into_iter().collect(),
                None => value["value"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|api| api["id"].as_str())
                    .collect(),
            };
            note_unassigned(&client, &shown).await?;
        }
        Ok(())
    })
}

/// `gatehouse delete KIND NAME`.
pub(crate) fn delete(server: &ServerArgs, kind: KindArg, name: &str) -> anyhow::Result<()> {
    let client = Client::new(server)?;
    let path = match kind {
        KindArg::Policy => "/policy".to_owned(),
        _ => format!("/{}/{}", kind.collection(), segment(name)?),
    };
    runtime()?.block_on(client.call(reqwest::Method::DELETE, &path, None))?;
    out!("{}/{name} deleted", kind.collection());
    Ok(())
}

/// Which gateway key signs a token.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum KeyArg {
    /// The primary key.
    Primary,
    /// The secondary key.
    Secondary,
}

/// `gatehouse gateway token NAME --expiry 30d --key primary`: prints the token.
pub(crate) fn gateway_token(
    server: &ServerArgs,
    name: &str,
    expiry: Duration,
    key: KeyArg,
) -> anyhow::Result<()> {
    let client = Client::new(server)?;
    let at = std::time::SystemTime::now() + expiry;
    let body = json!({
        "keyType": match key { KeyArg::Primary => "primary", KeyArg::Secondary => "secondary" },
        "expiry": humantime::format_rfc3339_seconds(at).to_string(),
    });
    let value = runtime()?.block_on(client.call(
        reqwest::Method::POST,
        &format!("/gateways/{}/generate-token", segment(name)?),
        Some(&body),
    ))?;
    let token = value["value"]
        .as_str()
        .context("the server answered without a token")?;
    out!("{token}");
    Ok(())
}

/// `gatehouse gateway deployment-yaml NAME`: the manifest on stdout (so `> gw.yaml`
/// keeps a file with no credential in it), and the command creating the token Secret on
/// stderr.
pub(crate) fn gateway_deployment_yaml(
    server: &ServerArgs,
    name: &str,
    expiry_days: u32,
) -> anyhow::Result<()> {
    let client = Client::new(server)?;
    let path = format!(
        "/gateways/{}/deployment?format=kubernetes&expiryDays={expiry_days}",
        segment(name)?
    );
    let value = runtime()?.block_on(client.call(reqwest::Method::GET, &path, None))?;
    let command = value["secretCommand"]
        .as_str()
        .context("the server answered without a command")?;
    let manifest = value["manifest"]
        .as_str()
        .context("the server answered without a manifest")?;
    eprintln!(
        "# 1. Create the token Secret (the token is valid until {} UTC):\n{command}\n# 2. Apply the manifest printed on stdout.",
        value["tokenExpiry"].as_str().unwrap_or("?")
    );
    out!("{}", manifest.trim_end());
    Ok(())
}

/// `gatehouse gateway status NAME`: a table for people (ages, not timestamps), or the
/// API's answer with `-o yaml|json` (RFC 3339 times).
pub(crate) fn gateway_status(
    server: &ServerArgs,
    name: &str,
    output: Option<Output>,
) -> anyhow::Result<()> {
    let client = Client::new(server)?;
    let value = runtime()?.block_on(client.call(
        reqwest::Method::GET,
        &format!("/gateways/{}/status", segment(name)?),
        None,
    ))?;
    match output {
        Some(output) => print_value(&value, output),
        None => {
            let now = std::time::SystemTime::now();
            out!("{}", status_table(&value, now).trim_end());
            Ok(())
        }
    }
}

/// The human form of a gateway's status.
fn status_table(status: &Value, now: std::time::SystemTime) -> String {
    use std::fmt::Write as _;
    let text = |value: &Value| value.as_str().unwrap_or("-").to_owned();
    let instances = status["instances"].as_array().cloned().unwrap_or_default();
    let mut table = format!(
        "gateway `{}`: {} connected, control plane at revision {}\n",
        text(&status["gatewayId"]),
        match instances.len() {
            1 => "1 instance".to_owned(),
            n => format!("{n} instances"),
        },
        status["currentRevision"]
    );
    if !instances.is_empty() {
        let mut rows = vec![[
            "INSTANCE".to_owned(),
            "HOSTNAME".to_owned(),
            "VERSION".to_owned(),
            "REVISION".to_owned(),
            "LAST SEEN".to_owned(),
            "TOKEN EXPIRES".to_owned(),
            "LAST ERROR".to_owned(),
        ]];
        for instance in &instances {
            let lag = instance["revisionLag"].as_u64().unwrap_or(0);
            let revision = match lag {
                0 => instance["appliedRevision"].to_string(),
                lag => format!("{} ({lag} behind)", instance["appliedRevision"]),
            };
            let seen = instance["lastSeenSecondsAgo"]
                .as_i64()
                .map_or_else(|| "-".to_owned(), |s| format!("{} ago", age(s)));
            let expires = instance["tokenExpiry"]
                .as_str()
                .and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).ok())
                .map_or_else(|| "-".to_owned(), |at| relative(at, now));
            rows.push([
                text(&instance["instanceId"]),
                text(&instance["hostname"]),
                text(&instance["version"]),
                revision,
                seen,
                expires,
                text(&instance["lastError"]),
            ]);
        }
        let widths: Vec<usize> = (0..7)
            .map(|column| {
                rows.iter()
                    .map(|row| row[column].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &rows {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            let _ = writeln!(table, "{}", line.join("  ").trim_end());
        }
    }
    for warning in status["certificateWarnings"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            table,
            "certificate `{}` {} {}: replace it",
            text(&warning["certificateId"]),
            if warning["expired"] == true {
                "expired on"
            } else {
                "expires on"
            },
            text(&warning["notAfter"]),
        );
    }
    table
}

/// `12 s`, `3 min`, `5 h`, `2 d`.
fn age(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7_200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3_600),
        s => format!("{} d", s / 86_400),
    }
}

/// `in 29 d` or `3 h ago`.
fn relative(at: std::time::SystemTime, now: std::time::SystemTime) -> String {
    match at.duration_since(now) {
        Ok(ahead) => format!(
            "in {}",
            age(i64::try_from(ahead.as_secs()).unwrap_or(i64::MAX))
        ),
        Err(behind) => format!(
            "{} ago",
            age(i64::try_from(behind.duration().as_secs()).unwrap_or(i64::MAX))
        ),
    }
}

fn print_value(value: &Value, output: Output) -> anyhow::Result<()> {
    let text = match output {
        Output::Json => serde_json::to_string_pretty(value)?,
        Output::Yaml => serde_yaml_ng::to_string(value)?,
    };
    out!("{}", text.trim_end());
    Ok(())
}

#[cfg(test)]
#[path = "client_cmd_tests.rs"]
mod tests;
