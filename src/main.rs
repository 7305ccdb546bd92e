use std::process::ExitCode;

use clap::Parser;
use lever::config::process::{DEFAULT_LOG_FILTER, LogFormat};

fn main() -> ExitCode {
    let cli = lever::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.settings.log_filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.settings.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    lever::cli::run(cli)
}
