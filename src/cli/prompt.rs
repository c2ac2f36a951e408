//! Questions on the terminal, as `createsuperuser` and `changepassword` ask them.
//!
//! - `input(prompt)` is Python's `input()`: the prompt on stdout, one line from stdin, the newline
//!   removed, nothing else (no stripping).
//! - `getpass(prompt)` is `getpass.getpass()`: the prompt on the controlling terminal and the
//!   answer read from it without echo (rpassword); without a controlling terminal, Python's
//!   `fallback_getpass` (a warning, then an echoed line from stdin).
//! - Ctrl-C at any prompt is `KeyboardInterrupt`: the command prints "Operation cancelled." and
//!   exits 1. End of input (Ctrl-D) is treated the same way (Django would crash on `EOFError`).
//!
//! Ctrl-C needs care: rpassword reads the hidden password in raw mode and *raises* SIGINT when it
//! sees the Ctrl-C byte, before restoring the terminal. With the default disposition the process
//! would die with echo off. [`Terminal::new`] therefore installs a SIGINT handler (tokio's) for
//! the life of the command, so rpassword returns, restores the terminal, and we cancel cleanly.

use std::io::{BufRead, Write};
use std::task::{Context, Poll, Waker};

use tokio::signal::unix::{Signal, SignalKind, signal};

use super::CommandError;

/// Where a command's questions are answered: the terminal, or a script in tests.
pub(crate) trait Prompter {
    /// Python's `input(prompt)`.
    async fn input(&mut self, prompt: &str) -> Result<String, CommandError>;
    /// `getpass.getpass(prompt)`.
    async fn getpass(&mut self, prompt: &str) -> Result<String, CommandError>;
    /// Whether Ctrl-C was pressed while no prompt was waiting (e.g. while hashing), so the
    /// command can still cancel before it writes anything.
    fn interrupted(&mut self) -> bool;
}

/// The process's terminal. Create it inside the tokio runtime, before the first prompt.
pub(crate) struct Terminal {
    sigint: Signal,
}

impl Terminal {
    pub(crate) fn new() -> Result<Terminal, CommandError> {
        let sigint = signal(SignalKind::interrupt())
            .map_err(|e| CommandError::new(format!("cannot handle Ctrl-C: {e}")))?;
        Ok(Terminal { sigint })
    }

    /// Reads one line from stdin on a thread of its own while watching for Ctrl-C: a read
    /// blocked in the kernel is not interrupted by a handled signal, so the wait has to race.
    async fn read_stdin_line(&mut self) -> Result<String, CommandError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let result = std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map(|n| (n, line));
            let _ = tx.send(result);
        });
        tokio::select! {
            // Left behind, the reader thread ends with the process.
            _ = self.sigint.recv() => Err(CommandError::Cancelled { at_line_start: false }),
            read = rx => match read {
                Ok(Ok((0, _))) => Err(CommandError::Cancelled { at_line_start: false }),
                Ok(Ok((_, line))) => Ok(strip_newline(line)),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                    Err(CommandError::new("the input is not valid UTF-8"))
                }
                Ok(Err(e)) => Err(CommandError::new(format!("cannot read the input: {e}"))),
                Err(_) => Err(CommandError::new("cannot read the input")),
            },
        }
    }
}

impl Prompter for Terminal {
    async fn input(&mut self, prompt: &str) -> Result<String, CommandError> {
        let mut stdout = std::io::stdout();
        let _ = stdout.write_all(prompt.as_bytes());
        let _ = stdout.flush();
        self.read_stdin_line().await
    }

    async fn getpass(&mut self, prompt: &str) -> Result<String, CommandError> {
        // getpass.unix_getpass: use the controlling terminal when there is one.
        let has_tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .is_ok();
        if !has_tty {
            // getpass.fallback_getpass.
            let mut stderr = std::io::stderr();
            let _ = write!(stderr, "Warning: Password input may be echoed.\n{prompt}");
            let _ = stderr.flush();
            return self.read_stdin_line().await;
        }
        let prompt = prompt.to_owned();
        // Not raced with SIGINT: the terminal is in raw mode until rpassword returns, and
        // rpassword itself turns a typed Ctrl-C into `Interrupted`.
        let read = tokio::task::spawn_blocking(move || rpassword::prompt_password(prompt))
            .await
            .map_err(|e| CommandError::new(format!("cannot read the password: {e}")))?;
        match read {
            Ok(password) => Ok(password),
            // rpassword already echoed the newline.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Err(CommandError::Cancelled {
                at_line_start: true,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(CommandError::Cancelled {
                    at_line_start: false,
                })
            }
            Err(e) => Err(CommandError::new(format!("cannot read the password: {e}"))),
        }
    }

    fn interrupted(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        matches!(self.sigint.poll_recv(&mut cx), Poll::Ready(Some(())))
    }
}

/// For commands that must not ask anything (`--noinput`, no terminal).
pub(crate) struct NoPrompts;

impl Prompter for NoPrompts {
    async fn input(&mut self, prompt: &str) -> Result<String, CommandError> {
        Err(CommandError::new(format!(
            "cannot ask {prompt:?} without a terminal"
        )))
    }

    async fn getpass(&mut self, prompt: &str) -> Result<String, CommandError> {
        Err(CommandError::new(format!(
            "cannot ask {prompt:?} without a terminal"
        )))
    }

    fn interrupted(&mut self) -> bool {
        false
    }
}

/// `input()` drops the line terminator only (`"\n"`, or `"\r\n"` read through universal
/// newlines).
fn strip_newline(mut line: String) -> String {
    if line.ends_with('\n') {
        line.pop();
        if line.ends_with('\r') {
            line.pop();
        }
    }
    line
}

/// Answers given in order, for tests of the command flows.
#[cfg(test)]
pub(crate) mod scripted {
    use std::collections::VecDeque;

    use super::{CommandError, Prompter};

    #[derive(Debug, Clone)]
    pub(crate) enum Answer {
        Line(String),
        Interrupt,
    }

    /// Replays answers and records every prompt asked.
    #[derive(Default)]
    pub(crate) struct Scripted {
        answers: VecDeque<(bool, Answer)>,
        pub(crate) prompts: Vec<String>,
    }

    impl Scripted {
        /// An `input()` answer.
        pub(crate) fn input(mut self, line: &str) -> Scripted {
            self.answers
                .push_back((false, Answer::Line(line.to_owned())));
            self
        }

        /// A `getpass()` answer.
        pub(crate) fn getpass(mut self, line: &str) -> Scripted {
            self.answers
                .push_back((true, Answer::Line(line.to_owned())));
            self
        }

        /// Ctrl-C at the next prompt of that kind.
        pub(crate) fn interrupt(mut self, hidden: bool) -> Scripted {
            self.answers.push_back((hidden, Answer::Interrupt));
            self
        }

        fn next(&mut self, hidden: bool, prompt: &str) -> Result<String, CommandError> {
            self.prompts.push(prompt.to_owned());
            match self.answers.pop_front() {
                Some((h, Answer::Line(line))) if h == hidden => Ok(line),
                Some((h, Answer::Interrupt)) if h == hidden => Err(CommandError::Cancelled {
                    at_line_start: hidden,
                }),
                other => panic!(
                    "prompt {prompt:?} (hidden: {hidden}) got {other:?}; prompts so far: {:?}",
                    self.prompts
                ),
            }
        }

        pub(crate) fn assert_done(&self) {
            assert!(self.answers.is_empty(), "answers left: {:?}", self.answers);
        }
    }

    impl Prompter for Scripted {
        async fn input(&mut self, prompt: &str) -> Result<String, CommandError> {
            self.next(false, prompt)
        }

        async fn getpass(&mut self, prompt: &str) -> Result<String, CommandError> {
            self.next(true, prompt)
        }

        fn interrupted(&mut self) -> bool {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_line_terminator_is_removed() {
        assert_eq!(strip_newline(" admin \n".into()), " admin ");
        assert_eq!(strip_newline("x\r\n".into()), "x");
        assert_eq!(strip_newline("x".into()), "x");
        assert_eq!(strip_newline("\n".into()), "");
    }
}
