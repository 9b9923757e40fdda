//! Diagnostic logging setup: JSON lines (default) or human-readable text on stderr,
//! filtered by `RUST_LOG` (default `info`). Access logs go to stdout separately.

use tracing_subscriber::EnvFilter;

/// Diagnostic log format.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// One JSON object per line (for log collectors).
    Json,
    /// Human-readable lines.
    Text,
}

pub(crate) fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Ignore "already set": only tests could call this twice.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.with_ansi(colour_stderr()).try_init(),
    };
}

/// Colours only for a person at a terminal: never into a file or a pipe, and never
/// when `NO_COLOR` is set (to anything but an empty string, <https://no-color.org>).
fn colour_stderr() -> bool {
    use std::io::IsTerminal as _;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
}
