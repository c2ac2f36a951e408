//! The `ferrochat` binary: logging, the command line, and the exit code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // Logs go to stderr so command output on stdout stays exactly Django's; colour only when
    // stderr is a terminal (a file, a pipe or journald gets plain text).
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let cli = ferrochat::cli::Cli::parse();
    let color = cli.color();
    match ferrochat::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            ferrochat::cli::print_error(&error, color);
            ExitCode::from(error.exit_code())
        }
    }
}
