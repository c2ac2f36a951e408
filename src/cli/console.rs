//! stdout/stderr as a management command sees them: Django's `OutputWrapper` (a newline appended
//! unless the message ends with one) and its terminal colours.
//!
//! Colours follow `django/core/management/color.py`: `supports_color()` asks whether *stdout*
//! is a terminal, each wrapper only styles a stream that is itself a terminal, `DJANGO_COLORS=
//! nocolor` or `--no-color` turns styling off and `--force-color` on. Everything written to
//! stderr gets the ERROR style by default (`BaseCommand.__init__`: `stderr.style_func =
//! style.ERROR`). The palette is Django's default ("dark"); other `DJANGO_COLORS` palettes are
//! not read.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

/// A role from Django's palette (`django/utils/termcolors.py PALETTES["dark"]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Error,
    Success,
    Warning,
    Notice,
    MigrateHeading,
    MigrateLabel,
}

impl Role {
    /// `termcolors.colorize` codes: foreground colour, then `bold`.
    fn codes(self) -> &'static str {
        match self {
            Role::Error => "31;1",
            Role::Success => "32;1",
            Role::Warning => "33;1",
            Role::Notice => "31",
            Role::MigrateHeading => "36;1",
            Role::MigrateLabel => "1",
        }
    }
}

/// Whether a stream gets colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    pub enabled: bool,
}

impl Style {
    /// `style.ROLE(text)`: `ESC[<codes>m text ESC[0m` when enabled, the text otherwise.
    pub fn paint(self, role: Role, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{}m{text}\x1b[0m", role.codes())
        } else {
            text.to_owned()
        }
    }
}

/// The `--no-color` / `--force-color` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorChoice {
    #[default]
    Auto,
    Never,
    Always,
}

/// A writer tests can read back.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        match self.0.lock() {
            Ok(buf) => String::from_utf8_lossy(&buf).into_owned(),
            Err(poisoned) => String::from_utf8_lossy(&poisoned.into_inner()).into_owned(),
        }
    }
}

impl Write for Captured {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        match self.0.lock() {
            Ok(mut buf) => buf.extend_from_slice(data),
            Err(poisoned) => poisoned.into_inner().extend_from_slice(data),
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A command's stdout and stderr.
pub struct Console {
    out: Box<dyn Write>,
    err: Box<dyn Write>,
    /// Styles for text written to stdout.
    pub out_style: Style,
    /// Styles for text written to stderr.
    pub err_style: Style,
}

impl Console {
    /// The process's own streams, coloured as Django would colour them.
    pub fn terminal(color: ColorChoice) -> Console {
        let stdout_tty = std::io::stdout().is_terminal();
        let stderr_tty = std::io::stderr().is_terminal();
        let nocolor_env = std::env::var("DJANGO_COLORS")
            .map(|v| v.trim().eq_ignore_ascii_case("nocolor"))
            .unwrap_or(false);
        let (out, err) = match color {
            ColorChoice::Always => (true, true),
            ColorChoice::Never => (false, false),
            ColorChoice::Auto if nocolor_env => (false, false),
            ColorChoice::Auto => (stdout_tty, stdout_tty && stderr_tty),
        };
        Console {
            out: Box::new(std::io::stdout()),
            err: Box::new(std::io::stderr()),
            out_style: Style { enabled: out },
            err_style: Style { enabled: err },
        }
    }

    /// Uncoloured streams written into memory (tests).
    pub fn captured() -> (Console, Captured, Captured) {
        let out = Captured::default();
        let err = Captured::default();
        let console = Console {
            out: Box::new(out.clone()),
            err: Box::new(err.clone()),
            out_style: Style::default(),
            err_style: Style::default(),
        };
        (console, out, err)
    }

    /// `self.stdout.write(msg)`. Output errors (a closed pipe) are ignored: there is nobody
    /// left to tell.
    pub fn out(&mut self, msg: &str) {
        let _ = self.out.write_all(with_ending(msg).as_bytes());
        let _ = self.out.flush();
    }

    /// `self.stdout.write(msg, style_func)`: the whole line, ending included, in `role`.
    pub fn out_styled(&mut self, msg: &str, role: Role) {
        let text = self.out_style.paint(role, &with_ending(msg));
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }

    /// `self.stdout.write(msg, ending="")`.
    pub fn out_raw(&mut self, text: &str) {
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }

    /// `self.stderr.write(msg)`: red when stderr is a colour terminal.
    pub fn err(&mut self, msg: &str) {
        let text = self.err_style.paint(Role::Error, &with_ending(msg));
        let _ = self.err.write_all(text.as_bytes());
        let _ = self.err.flush();
    }

    /// `self.stderr.write(msg, lambda x: x)`: text that carries its own colours.
    pub fn err_plain(&mut self, msg: &str) {
        let _ = self.err.write_all(with_ending(msg).as_bytes());
        let _ = self.err.flush();
    }

    /// Writes a failed command's report as `run_from_argv` does.
    pub fn report(&mut self, error: &super::CommandError) {
        if error.is_preformatted() {
            self.err_plain(&error.report());
        } else {
            self.err(&error.report());
        }
    }
}

/// `OutputWrapper.write`: append `"\n"` unless the message already ends with it.
fn with_ending(msg: &str) -> String {
    if msg.ends_with('\n') {
        msg.to_owned()
    } else {
        format!("{msg}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newline_appended_once_and_styles_wrap_it() {
        let (mut console, out, err) = Console::captured();
        console.out("a");
        console.out("b\n");
        console.err_style = Style { enabled: true };
        console.err("Error: x");
        assert_eq!(out.text(), "a\nb\n");
        assert_eq!(err.text(), "\x1b[31;1mError: x\n\x1b[0m");
    }

    #[test]
    fn palette_matches_django() {
        let on = Style { enabled: true };
        assert_eq!(on.paint(Role::MigrateHeading, "H"), "\x1b[36;1mH\x1b[0m");
        assert_eq!(on.paint(Role::Success, " OK"), "\x1b[32;1m OK\x1b[0m");
        assert_eq!(on.paint(Role::MigrateLabel, "L"), "\x1b[1mL\x1b[0m");
        assert_eq!(on.paint(Role::Notice, "N"), "\x1b[31mN\x1b[0m");
        assert_eq!(Style::default().paint(Role::Error, "E"), "E");
    }
}
