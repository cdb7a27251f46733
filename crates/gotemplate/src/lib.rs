//! Go's `text/template`, as Go 1.23 implements it (the Go that builds helm 3.17), for rendering Helm
//! charts natively. Output and error messages match Go's byte for byte where this crate supports the
//! feature; helm's functions and sprig are built on top of it by registering [`Function`]s.
//!
//! ```
//! use gotemplate::{MissingKey, Templates, Value, Numbers};
//!
//! let mut set = Templates::new("gotpl");
//! set.set_missing_key(MissingKey::Zero); // as helm does
//! set.parse("chart/templates/cm.yaml", "replicas: {{ .Values.replicas }}").unwrap();
//! let values = serde_json::json!({"Values": {"replicas": 3}});
//! let data = Value::from_json(&values, Numbers::Float64);
//! assert_eq!(set.execute("chart/templates/cm.yaml", &data).unwrap(), "replicas: 3");
//! ```
//!
//! # Supported
//! - The whole template language: text and actions, trim markers `{{- -}}`, comments, pipelines,
//!   variables (`:=`, `=`, `$`), fields and chains (`.a.b`, `$x.a`, `(pipe).a`), all literals except
//!   complex numbers, `if`/`else if`, `range` (lists, maps in key order, `$i, $v :=`, `else`, `break`,
//!   `continue`), `with`/`else with`, `define`, `template`, `block`.
//! - Go's builtins: `and`, `or` (short-circuit, returning the deciding operand), `not`, `len`, `index`,
//!   `slice`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `print`, `printf`, `println`, `html`, `js`,
//!   `urlquery`, `call` (which always fails: values here are never Go functions).
//! - fmt's verbs, flags, width, precision and argument indexes for the values below ([`gofmt`]).
//! - The `missingkey` option ([`MissingKey`]); helm uses `Zero` and removes `<no value>` from output
//!   itself (`strings.ReplaceAll(out, "<no value>", "")`), which is the caller's job here too.
//! - Parse and execution errors with Go's text (`template: NAME:LINE:COL: executing "NAME" at <ACTION>:
//!   ...`), structured in [`Error`], with [`Error::redacted`] for messages that embed data.
//! - Functions that execute templates (`include`) or parse text at run time (`tpl`) through [`Ctx`].
//!
//! # Not supported (differences from Go)
//! - Complex numbers; custom delimiters; `ParseComments` mode.
//! - Go types beyond [`Value`]'s: lists are `[]interface{}`, maps `map[string]interface{}`; `uint`
//!   types, `[]byte` and channels do not exist; structs and methods come through [`Object`].
//! - Range over integers and functions (Go 1.24; helm 3.17's Go 1.23 rejects them, and so does this).
//! - `unicode.IsPrint` is approximated (unassigned code points count as printable) for `%q` and `js`.
//! - Nesting limits replace Go's growable stacks: actions and parentheses nest at most 200 deep in one
//!   template; template calls nest up to Go's 100000, continuing on fresh threads as they go deeper.
//! - Values may nest without limit (a template's loop can build a dict 200,000 levels deep, as in Go),
//!   and dropping one never recurses; but walks of a value follow at most [`MAX_NESTING`] (1000)
//!   levels: [`Value::to_json`] and the functions that copy, compare, merge or encode values
//!   ([`FuncError::too_deep`]) fail past it, where Go would go on, and printing (`{{ . }}`,
//!   `printf`) writes `[...]` or `map[...]` for what lies deeper. A map containing itself stops
//!   there too (Go's stack overflows).
//!
//! # Threads
//! [`Templates`] is `Send + Sync`: parse once, execute concurrently. [`Value`] is `Send + Sync`;
//! a [`Map`] is shared and mutable in place (Go's map semantics, for sprig's `set`/`unset`/`merge`),
//! so two executions given the same map see each other's changes, as in Go.

mod ast;
mod error;
mod exec;
mod funcs;
pub mod gofmt;
mod lex;
mod parse;
mod set;
pub mod strconv;
mod value;

pub use error::{Error, ErrorKind, FuncError, Location};
pub use exec::{Ctx, Limits};
pub use funcs::{Function, Type};
pub use set::{MissingKey, Templates};
pub use value::{MAX_NESTING, Map, Numbers, Object, ToJsonError, Value};
