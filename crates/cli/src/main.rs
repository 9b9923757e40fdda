//! The `gatehouse` binary: one executable for the gateway, and (in later releases) the
//! control plane and its command-line client.

mod check_cmd;
mod client_cmd;
mod control_cmd;
mod dev_cmd;
mod file_source;
mod gateway_cmd;
mod logging;

use clap::{Parser, Subcommand};

/// mimalloc: measured with `valgrind --tool=callgrind` on `bench/` traffic, it cuts the
/// instructions per proxied request against glibc's allocator (see bench/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Gatehouse: an open API gateway with its own control plane.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about, long_about = None)]
struct Cli {
    /// Diagnostic log format on stderr.
    #[arg(long, global = true, env = "GATEHOUSE_LOG_FORMAT", value_enum, default_value_t = logging::LogFormat::Json)]
    log_format: logging::LogFormat,

    #[command(flatten)]
    server: client_cmd::ServerArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Try Gatehouse: a control plane and a gateway in one process, with a sample API.
    Dev(dev_cmd::DevArgs),
    /// Run a gateway (data plane), or manage one on the control plane.
    #[command(args_conflicts_with_subcommands = true)]
    Gateway {
        /// Gateway management verbs; without one, runs a gateway.
        #[command(subcommand)]
        verb: Option<GatewayVerb>,
        #[command(flatten)]
        run: Box<gateway_cmd::GatewayArgs>,
    },
    /// Run the control plane: management API and Configuration API v2.
    Control(control_cmd::ControlArgs),
    /// Check APIM policy documents offline, as the gateway and the control plane would
    /// read them (exit 0: all accepted, 1: one rejected, 2: usage error).
    Policy {
        #[command(subcommand)]
        verb: PolicyVerb,
    },
    /// Check a configuration file offline: entities, references, every policy and the
    /// routes, as a gateway would load it (exit 0: accepted, 1: rejected, 2: usage error).
    Validate {
        /// The configuration file (the format of `gatehouse gateway --config` and
        /// `gatehouse apply`).
        #[arg(short = 'f', long = "file")]
        file: std::path::PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: check_cmd::Format,
        /// Also print to stderr how long each step took: parsing the YAML, the checks
        /// (entities and every policy, each problem reported) and the gateway's own
        /// compile (what a gateway does at start after parsing).
        #[arg(long)]
        timings: bool,
    },
    /// Make the control plane hold what a configuration file says (idempotent).
    Apply {
        /// The configuration file (same format as `gatehouse gateway --config`).
        #[arg(short = 'f', long = "file")]
        file: std::path::PathBuf,
    },
    /// Show entities.
    Get {
        /// What to show.
        kind: client_cmd::KindArg,
        /// One entity; all when omitted.
        name: Option<String>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = client_cmd::Output::Yaml)]
        output: client_cmd::Output,
    },
    /// Delete an entity.
    Delete {
        /// Its kind.
        kind: client_cmd::KindArg,
        /// Its id (any value for `policy`).
        name: String,
    },
}

/// `gatehouse gateway <verb>`.
#[derive(Debug, Subcommand)]
enum GatewayVerb {
    /// Generate a gateway token (`GatewayKey …`) for `config.service.auth`.
    Token {
        /// The gateway.
        name: String,
        /// How long the token is valid (at most 30 days).
        #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
        expiry: std::time::Duration,
        /// Which gateway key signs it.
        #[arg(long, value_enum, default_value_t = client_cmd::KeyArg::Primary)]
        key: client_cmd::KeyArg,
    },
    /// Print the Kubernetes manifest for a gateway, with the `kubectl` command that
    /// creates its token Secret (a new token, valid `--expiry-days`).
    DeploymentYaml {
        /// The gateway.
        name: String,
        /// Token lifetime in days (at most 30).
        #[arg(long, default_value_t = 30)]
        expiry_days: u32,
    },
    /// Show the connected instances of a gateway.
    Status {
        /// The gateway.
        name: String,
        /// Output format: the API's answer (RFC 3339 times) instead of a table for
        /// people.
        #[arg(short = 'o', long, value_enum)]
        output: Option<client_cmd::Output>,
    },
}

/// Verbs of `gatehouse policy`.
#[derive(Debug, Subcommand)]
enum PolicyVerb {
    /// Read and compile policy documents (`.xml` files; directories are searched
    /// recursively) and report every problem: `path:line:column: error: message [policy]`.
    Check {
        /// Files or directories.
        #[arg(required = true)]
        paths: Vec<std::path::PathBuf>,
        /// A configuration file whose `namedValues`, `backends` and `certificates` the
        /// documents may refer to. Without it, an undefined `{{name}}` is a warning; with
        /// it, an error.
        #[arg(long, value_name = "FILE")]
        named_values: Option<std::path::PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: check_cmd::Format,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    // The offline checks set their own exit status (1: rejected, 2: usage).
    match &cli.command {
        Command::Policy {
            verb:
                PolicyVerb::Check {
                    paths,
                    named_values,
                    format,
                },
        } => return check_cmd::policy_check(paths, named_values.as_deref(), *format),
        Command::Validate {
            file,
            format,
            timings,
        } => return check_cmd::validate(file, *format, *timings),
        Command::Gateway { verb: None, run } if run.validate => {
            let Some(file) = run.config_file() else {
                eprintln!("error: --validate checks the file given with --config");
                return std::process::ExitCode::from(2);
            };
            return check_cmd::validate(file, check_cmd::Format::Text, false);
        }
        _ => {}
    }
    // Libraries that build rustls configurations themselves (reqwest, quinn) find the
    // same provider the rest of the process uses.
    gatehouse_tls::install_default_provider();
    // Servers log their end as a JSON line for log collectors; a client verb prints one
    // human line.
    let is_server = matches!(
        cli.command,
        Command::Gateway { verb: None, .. } | Command::Control(_) | Command::Dev(_)
    );
    let result = match cli.command {
        Command::Gateway { verb: None, run } => gateway_cmd::run(&run),
        Command::Gateway {
            verb: Some(GatewayVerb::Token { name, expiry, key }),
            ..
        } => client_cmd::gateway_token(&cli.server, &name, expiry, key),
        Command::Gateway {
            verb: Some(GatewayVerb::DeploymentYaml { name, expiry_days }),
            ..
        } => client_cmd::gateway_deployment_yaml(&cli.server, &name, expiry_days),
        Command::Gateway {
            verb: Some(GatewayVerb::Status { name, output }),
            ..
        } => client_cmd::gateway_status(&cli.server, &name, output),
        Command::Control(args) => control_cmd::run(&args),
        Command::Dev(args) => dev_cmd::run(&args),
        Command::Apply { file } => client_cmd::apply(&cli.server, &file),
        Command::Get { kind, name, output } => {
            client_cmd::get(&cli.server, kind, name.as_deref(), output)
        }
        Command::Delete { kind, name } => client_cmd::delete(&cli.server, kind, &name),
        // Handled above.
        Command::Policy { .. } | Command::Validate { .. } => Ok(()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The reader went away (`| head -1`): nothing more to say, as for any Unix tool.
        Err(error) if is_broken_pipe(&error) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            if is_server {
                tracing::error!(error = format!("{error:#}"), "gatehouse stopped");
            }
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Whether `error` is a write to a closed pipe (stdout read by `head`, say).
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Writes the bound addresses as JSON, atomically (write then rename), so a reader never
/// sees a half-written file.
async fn write_bound_addresses(
    path: &std::path::Path,
    addresses: &serde_json::Value,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let temp = path.with_extension("tmp");
    tokio::fs::write(&temp, addresses.to_string())
        .await
        .with_context(|| format!("cannot write {}", temp.display()))?;
    tokio::fs::rename(&temp, path)
        .await
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
