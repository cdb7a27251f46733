//! The one error type that domain modules return. It carries *where* (file and line, or the
//! object) and *how to fix it*; `weaver_cli::commands::report_error` is the one place that prints it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A position in a file of the repository, shown as `path:line:column`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: Option<u64>,
    pub column: Option<u64>,
}

impl Location {
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Location { path: path.into(), line: None, column: None }
    }

    pub fn at(path: impl Into<PathBuf>, line: u64, column: u64) -> Self {
        let known = |n: u64| (n > 0).then_some(n);
        Location { path: path.into(), line: known(line), column: known(column) }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        Ok(())
    }
}

/// What went wrong, where, and (optionally) how to fix it.
#[derive(Debug, Clone)]
pub struct Error {
    pub location: Option<Location>,
    pub message: String,
    pub help: Option<String>,
    /// The cluster refused the request as forbidden (403): the user's rights, not the input,
    /// are at fault (the web UI answers 403 for it).
    pub forbidden: bool,
    /// What was asked for does not exist: an environment, a release, an object (the web UI
    /// answers 404 for it).
    pub not_found: bool,
    /// A render stopped at one of its bounds (its time, memory, bytes, steps), named by its
    /// setting: the controller holds back the tenant whose renders keep stopping so. (Behind a
    /// thin pointer: an error is returned everywhere, and kept under clippy's large-error size.)
    pub bound: Option<std::sync::Arc<String>>,
}

impl Error {
    pub fn new(message: impl Into<String>) -> Self {
        Error { location: None, message: message.into(), help: None, forbidden: false, not_found: false, bound: None }
    }

    /// The same error, said to be a render's stop at the bound `setting` gives (see
    /// [`Error::bound`]).
    pub fn at_bound(mut self, setting: impl Into<String>) -> Self {
        self.bound = Some(std::sync::Arc::new(setting.into()));
        self
    }

    /// The same error, said to be a refusal of the user's rights (see [`Error::forbidden`]).
    pub fn as_forbidden(mut self) -> Self {
        self.forbidden = true;
        self
    }

    /// The same error, said to be about something that does not exist (see [`Error::not_found`]).
    pub fn as_not_found(mut self) -> Self {
        self.not_found = true;
        self
    }

    pub fn at(location: Location, message: impl Into<String>) -> Self {
        Error::new(message).with_location(location)
    }

    pub fn with_location(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The same error, said to have happened in `context` (such as the commit a file was read
    /// from), which is shown before the location.
    pub fn context(self, context: impl fmt::Display) -> Self {
        let message = format!("{context}: {self}");
        Error { location: None, message, help: self.help, ..self }
    }

    /// Wraps an I/O error on `path` with a message that says what was being done.
    pub fn io(action: &str, path: &Path, err: io::Error) -> Self {
        match Escape::of(&err) {
            Some(escape) => Error::escape(Location::file(path), escape),
            None => Error::at(Location::file(path), format!("cannot {action}: {}", io_reason(&err))),
        }
    }

    /// Wraps an I/O error on `path`, which the repository names at `at`.
    pub fn io_at(at: Location, action: &str, path: &Path, err: io::Error) -> Self {
        match Escape::of(&err) {
            Some(escape) => Error::escape(at, escape),
            None => Error::at(at, format!("cannot {action} {}: {}", path.display(), io_reason(&err))),
        }
    }

    /// A path the repository names at `at` leads outside where it may read.
    pub fn escape(at: Location, escape: &Escape) -> Self {
        Error::at(at, escape.to_string())
            .with_help("weaver reads only files inside the repository (a chart's files only inside the chart): use a relative path without `..` leaving it, and no symbolic link pointing out")
    }
}

/// A path that leads outside the directory it must stay in: the repository, or for a chart's
/// files, the chart. Carried inside the `io::Error` that `Source` methods return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escape {
    /// The path as the repository names it.
    pub path: PathBuf,
    /// Where it leads: a path on disk, or in the commit's tree.
    pub resolved: PathBuf,
    /// What it had to stay in (`the repository /src/deploy`, `chart `web` (charts/web)`).
    pub within: String,
}

impl Escape {
    pub fn into_io(self) -> io::Error {
        io::Error::other(self)
    }

    /// The escape an error from a `Source` reports, if that is what it is.
    pub fn of(err: &io::Error) -> Option<&Escape> {
        err.get_ref()?.downcast_ref()
    }
}

impl fmt::Display for Escape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} resolves to {}, outside {}", self.path.display(), self.resolved.display(), self.within)
    }
}

impl std::error::Error for Escape {}

/// The part of an I/O error worth showing, without Rust's "(os error 2)" suffix.
pub fn io_reason(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => "no such file or directory".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            let text = err.to_string();
            let text = text.find(" (os error").map_or(text.as_str(), |i| &text[..i]);
            // Lower case like every other reason ("No space left on device" reads as a sentence).
            let mut chars = text.chars();
            chars.next().map_or_else(String::new, |first| first.to_lowercase().chain(chars).collect())
        }
    }
}

/// serde_json's message without its " at line L column C" suffix, for messages that put the
/// location in front. (serde_json's syntax messages name the problem, never the input text.)
pub fn json_reason(err: &serde_json::Error) -> String {
    let text = err.to_string();
    text.rsplit_once(" at line ").map_or(text.as_str(), |(reason, _)| reason).to_owned()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(location) => write!(f, "{location}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}
