//! The `gatehouse` binary: one executable for the gateway, and (in later releases) the
//! control plane and its command-line client.

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

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a gateway (data plane).
    Gateway(Box<gateway_cmd::GatewayArgs>),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let result = match cli.command {
        Command::Gateway(args) => gateway_cmd::run(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "gatehouse stopped");
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
