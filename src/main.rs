//! The `ferrochat` binary: logging, the command line, and the exit code.

use std::process::ExitCode;

use clap::Parser;
use ferrochat::ops::logging::{self, LogFormat};

fn main() -> ExitCode {
    // Logs go to stderr so command output on stdout stays exactly Django's.
    match LogFormat::from_env() {
        Ok(format) => logging::init(format),
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::FAILURE;
        }
    }

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
