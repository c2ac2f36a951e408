//! How a management command fails, printed the way `manage.py` prints it.
//!
//! Mirrors `django/core/management/base.py BaseCommand.run_from_argv`: a `CommandError` is written
//! to stderr as `"CommandError: <message>"` (a `SystemCheckError` formats itself) and the process
//! exits with the error's `returncode`, 1.

use crate::config::ConfigError;

/// A failed command. `Display` is the message alone; [`CommandError::report`] is what goes to
/// stderr.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Django's `CommandError(message)`: printed as `CommandError: <message>`.
    #[error("{0}")]
    Command(String),
    /// A failure Django reports as `Error: <message>` before exiting 1 (runserver's
    /// `inner_run`, for example a port already in use).
    #[error("{0}")]
    Error(String),
    /// `SystemCheckError`: the message is the complete, already formatted report.
    #[error("{0}")]
    SystemCheck(String),
    /// Ctrl-C (or end of input) at a prompt: `createsuperuser` prints `"\nOperation cancelled."`
    /// and exits 1. `at_line_start` is true when the terminal already moved to a new line (the
    /// hidden password prompt echoes one itself), so the leading newline is not doubled.
    #[error("Operation cancelled.")]
    Cancelled { at_line_start: bool },
    /// A bad environment value: one line naming the variable. Django raises
    /// `ImproperlyConfigured` for settings it cannot use; we print it under that name.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl CommandError {
    /// A Django `CommandError` with this message.
    pub fn new(message: impl Into<String>) -> CommandError {
        CommandError::Command(message.into())
    }

    /// The text written to stderr (without the final newline).
    pub fn report(&self) -> String {
        match self {
            CommandError::Command(message) => format!("CommandError: {message}"),
            CommandError::Error(message) => format!("Error: {message}"),
            CommandError::SystemCheck(report) => report.clone(),
            CommandError::Cancelled {
                at_line_start: true,
            } => "Operation cancelled.".to_owned(),
            CommandError::Cancelled {
                at_line_start: false,
            } => "\nOperation cancelled.".to_owned(),
            CommandError::Config(e) => format!("ImproperlyConfigured: {e}"),
        }
    }

    /// Whether [`CommandError::report`] already carries its own colours (a system-check report
    /// styles each line; everything else is styled as a whole, like Django's stderr).
    pub fn is_preformatted(&self) -> bool {
        matches!(self, CommandError::SystemCheck(_))
    }

    /// The process exit code: `CommandError.returncode` is 1, and so is every other failure.
    pub fn exit_code(&self) -> u8 {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_as_manage_py_does() {
        assert_eq!(
            CommandError::new("You must use --username with --noinput.").report(),
            "CommandError: You must use --username with --noinput."
        );
        assert_eq!(
            CommandError::Cancelled {
                at_line_start: false
            }
            .report(),
            "\nOperation cancelled."
        );
        assert_eq!(
            CommandError::Cancelled {
                at_line_start: true
            }
            .report(),
            "Operation cancelled."
        );
        assert_eq!(
            CommandError::Error("That port is already in use.".into()).report(),
            "Error: That port is already in use."
        );
        assert_eq!(CommandError::new("x").exit_code(), 1);
    }
}
