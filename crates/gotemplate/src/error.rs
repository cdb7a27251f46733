//! Errors, printed exactly as Go prints them, and kept structured so callers can show them without the
//! data values some of Go's messages embed.

use std::fmt;
use std::ops::Range;

/// How deep printing and conversion follow nested lists and maps. Go has no limit (a map containing
/// itself overflows its stack); this one turns that into an error or a marker instead of a crash.
/// Here, with the error a walk past it gives ([`FuncError::too_deep`]), below the values.
pub const MAX_NESTING: usize = 1000;

/// What failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The template text is malformed: `template: NAME:LINE: MESSAGE`.
    Parse,
    /// Execution failed: `template: NAME:LINE:COL: executing "TEMPLATE" at <ACTION>: MESSAGE`.
    Exec,
    /// `execute` was asked for a template the set does not have.
    NoTemplate,
}

/// A parse or execution error.
#[derive(Clone, Debug)]
pub struct Error(Box<Inner>);

#[derive(Clone, Debug)]
struct Inner {
    kind: ErrorKind,
    /// The template being executed, or being parsed.
    template: String,
    /// Where: the top-level template the node was parsed in, its line, and (execution only) column.
    location: Option<Location>,
    /// The action being executed, as Go prints it between `<` and `>`.
    context: Option<String>,
    message: Message,
    /// Made by [`crate::Limits::max_bytes`]: what it names grew past the bound.
    too_large: bool,
}

/// A position in a template's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The name the text was parsed under (a file), which for a `define` differs from the template's name.
    pub parse_name: String,
    pub line: usize,
    /// 0-based byte column, as Go reports it; parse errors have none.
    pub column: Option<usize>,
}

/// A message, the part of it that prints data from the template's values, and the error it wraps.
#[derive(Clone, Debug, Default)]
struct Message {
    text: String,
    data: Option<Range<usize>>,
    source: Option<Error>,
}

impl Message {
    fn write(&self, f: &mut fmt::Formatter<'_>, redact: bool) -> fmt::Result {
        match (&self.data, redact) {
            (Some(span), true)
                if span.start <= span.end
                    && self.text.is_char_boundary(span.start)
                    && self.text.is_char_boundary(span.end) =>
            {
                let (before, rest) = self.text.split_at(span.start);
                write!(f, "{before}[redacted]{}", &rest[span.end - span.start..])?;
            }
            _ => f.write_str(&self.text)?,
        }
        match &self.source {
            Some(source) => source.write(f, redact),
            None => Ok(()),
        }
    }
}

/// An error returned by a template function: Go prints it as `error calling NAME: MESSAGE`.
#[derive(Clone, Debug)]
pub struct FuncError(Message);

impl FuncError {
    pub fn new(message: impl Into<String>) -> FuncError {
        FuncError(Message { text: message.into(), ..Message::default() })
    }

    /// A message that shows a data value; `data` is the value's byte range in `message`, replaced by
    /// `[redacted]` in [`Error::redacted`].
    pub fn with_data(message: impl Into<String>, data: Range<usize>) -> FuncError {
        FuncError(Message { text: message.into(), data: Some(data), source: None })
    }

    /// A function's walk of a value (a copy, comparison or encoding) stopped at
    /// [`MAX_NESTING`] levels, where Go would go on.
    pub fn too_deep() -> FuncError {
        FuncError::new(format!("value nested deeper than {MAX_NESTING} levels"))
    }

    /// `prefix` followed by a template error, as a function that executes templates (helm's `include`,
    /// `tpl`) reports one.
    pub fn wrap(prefix: impl Into<String>, source: Error) -> FuncError {
        FuncError(Message { text: prefix.into(), data: None, source: Some(source) })
    }
}

impl From<Error> for FuncError {
    fn from(error: Error) -> FuncError {
        FuncError::wrap("", error)
    }
}

impl fmt::Display for FuncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write(f, false)
    }
}

impl std::error::Error for FuncError {}

impl Error {
    pub(crate) fn parse(parse_name: &str, line: usize, message: String) -> Error {
        Error(Box::new(Inner {
            kind: ErrorKind::Parse,
            template: parse_name.to_string(),
            location: Some(Location { parse_name: parse_name.to_string(), line, column: None }),
            context: None,
            message: Message { text: message, ..Message::default() },
            too_large: false,
        }))
    }

    pub(crate) fn exec(
        template: &str,
        location: Option<Location>,
        context: Option<String>,
        text: String,
        data: Option<Range<usize>>,
    ) -> Error {
        Error(Box::new(Inner {
            kind: ErrorKind::Exec,
            template: template.to_string(),
            location,
            context,
            message: Message { text, data, source: None },
            too_large: false,
        }))
    }

    /// An execution error wrapping a function's error: `error calling NAME: ...`.
    pub(crate) fn exec_call(
        template: &str,
        location: Option<Location>,
        context: Option<String>,
        name: &str,
        err: FuncError,
    ) -> Error {
        let FuncError(inner) = err;
        let prefix = format!("error calling {name}: ");
        let shift = prefix.len();
        let message = Message {
            text: format!("{prefix}{}", inner.text),
            data: inner.data.map(|r| r.start + shift..r.end + shift),
            source: inner.source,
        };
        let template = template.to_string();
        Error(Box::new(Inner { kind: ErrorKind::Exec, template, location, context, message, too_large: false }))
    }

    pub(crate) fn no_template(name: &str, set_name: &str) -> Error {
        Error(Box::new(Inner {
            kind: ErrorKind::NoTemplate,
            template: name.to_string(),
            location: None,
            context: None,
            message: Message {
                text: format!(
                    "template: no template {} associated with template {}",
                    crate::strconv::quote(name, false),
                    crate::strconv::quote(set_name, false)
                ),
                ..Message::default()
            },
            too_large: false,
        }))
    }

    /// This error, made by the byte bound.
    pub(crate) fn of_too_large(mut self) -> Error {
        self.0.too_large = true;
        self
    }

    /// Whether the byte bound made this error, or one it wraps (inside `include`, `tpl`):
    /// told by kind, not by its text.
    pub fn is_too_large(&self) -> bool {
        self.0.too_large || self.source_error().is_some_and(Error::is_too_large)
    }

    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The template that was executing (or being parsed).
    pub fn template(&self) -> &str {
        &self.0.template
    }

    pub fn location(&self) -> Option<&Location> {
        self.0.location.as_ref()
    }

    /// The action that failed, as Go shows it (`.Values.foo.bar`, `include "x" .`).
    pub fn context(&self) -> Option<&str> {
        self.0.context.as_deref()
    }

    /// The message after Go's location prefix (for a wrapped error, including its whole text).
    pub fn message(&self) -> String {
        self.message_text(false)
    }

    /// [`Error::message`] with every data value that Go's messages embed replaced by `[redacted]`.
    pub fn redacted_message(&self) -> String {
        self.message_text(true)
    }

    fn message_text(&self, redact: bool) -> String {
        struct M<'a>(&'a Message, bool);
        impl fmt::Display for M<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.write(f, self.1)
            }
        }
        M(&self.0.message, redact).to_string()
    }

    /// The error wrapped by this one (a template error inside `include`), if any.
    pub fn source_error(&self) -> Option<&Error> {
        self.0.message.source.as_ref()
    }

    /// Go's text with every data value that Go's messages embed replaced by `[redacted]`.
    pub fn redacted(&self) -> String {
        struct R<'a>(&'a Error);
        impl fmt::Display for R<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.write(f, true)
            }
        }
        R(self).to_string()
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, redact: bool) -> fmt::Result {
        let inner = &self.0;
        match (inner.kind, &inner.location) {
            (ErrorKind::NoTemplate, _) => {}
            (ErrorKind::Parse, Some(loc)) => write!(f, "template: {}:{}: ", loc.parse_name, loc.line)?,
            (_, Some(loc)) => {
                write!(f, "template: {}:{}:{}: executing ", loc.parse_name, loc.line, loc.column.unwrap_or(0))?;
                write!(
                    f,
                    "{} at <{}>: ",
                    crate::strconv::quote(&inner.template, false),
                    inner.context.as_deref().unwrap_or("")
                )?;
            }
            (_, None) => write!(f, "template: {}: ", inner.template)?,
        }
        inner.message.write(f, redact)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, false)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.message.source.as_ref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}
