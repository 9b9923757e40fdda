//! The configuration file source (`gatehouse gateway --config FILE`): reads the file,
//! parses it on the compiling thread and offers it to the gateway's [`ConfigSink`];
//! reloads it when it changes and on SIGHUP.

use std::path::{Path, PathBuf};

use gatehouse_gateway::{ConfigSink, LoadError};
use gatehouse_model::Configuration;
use tokio_util::sync::CancellationToken;

/// Loads `path` and, if it is valid, serves it. Returns the revision served.
///
/// # Errors
///
/// Any [`LoadError`]; the configuration being served is then unchanged.
pub(crate) async fn load(sink: &ConfigSink, path: &Path) -> Result<u64, LoadError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
    let origin = path.display().to_string();
    // Parsed (and validated) on the compiling thread: a large file takes a while.
    sink.offer_with(origin, None, move |origin| {
        let config = Configuration::load(origin, &text)?;
        refuse_gateways(origin, &config)?;
        Ok(config)
    })
    .await
}

/// A file-configured gateway serves every API of its file: a `gateways:` section (which
/// assigns APIs to gateways of a control plane) would be ignored, so it is refused.
fn refuse_gateways(origin: &str, config: &Configuration) -> Result<(), LoadError> {
    if config.gateways.is_empty() {
        return Ok(());
    }
    let mut errors = gatehouse_model::ValidationErrors::default();
    errors.0.push(gatehouse_model::ValidationError {
        path: "gateways".to_owned(),
        message: "assigns APIs to the gateways of a control plane (`gatehouse apply`); a gateway run with --config serves every API of its file: remove the section".to_owned(),
    });
    Err(LoadError::Config(gatehouse_model::ConfigError::Invalid {
        origin: origin.to_owned(),
        errors,
    }))
}

/// Reloads `path` and logs the outcome; the configuration served is only replaced on
/// success.
pub(crate) async fn reload_and_log(sink: &ConfigSink, path: &Path, trigger: &'static str) {
    if let Err(error) = load(sink, path).await {
        tracing::error!(path = %path.display(), trigger, error = %error, "configuration rejected; still serving the previous one");
    }
}

/// Watches `path` and reloads it when it changes, until `shutdown` is cancelled.
///
/// The parent directory is watched rather than the file, so atomic replacements
/// (rename over the file, Kubernetes ConfigMap symlink swaps) are seen too.
///
/// # Errors
///
/// If the watcher cannot be created.
pub(crate) fn watch(
    sink: ConfigSink,
    path: PathBuf,
    shutdown: CancellationToken,
) -> notify::Result<tokio::task::JoinHandle<()>> {
    let watched = path.clone();
    gatehouse_watch::watch_files(&[&watched], shutdown, move || {
        let sink = sink.clone();
        let path = path.clone();
        async move { reload_and_log(&sink, &path, "file-change").await }
    })
}
