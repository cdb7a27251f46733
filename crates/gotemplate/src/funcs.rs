//! Template functions: the signature Go's reflection would give them, and their implementation.

use std::fmt;
use std::sync::Arc;

use crate::error::FuncError;
use crate::exec::Ctx;
use crate::value::Value;

/// A parameter type. Arguments are checked against it exactly as Go checks them against a Go function's
/// parameter types, with Go's messages ("wrong type for value; expected int; got float64").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// `interface{}`: anything, `nil` included.
    Any,
    Bool,
    /// `int`: only an `int` value, or an integer literal.
    Int,
    /// `int64`: only an `int64` value, or an integer literal.
    Int64,
    /// `float64`: only a `float64` value, or a number literal.
    Float64,
    String,
    /// `[]interface{}` (or `nil`).
    List,
    /// `map[string]interface{}` (or `nil`).
    Map,
}

impl Type {
    /// Go's spelling of the type, as error messages print it.
    pub fn go_name(self) -> &'static str {
        match self {
            Type::Any => "interface {}",
            Type::Bool => "bool",
            Type::Int => "int",
            Type::Int64 => "int64",
            Type::Float64 => "float64",
            Type::String => "string",
            Type::List => "[]interface {}",
            Type::Map => "map[string]interface {}",
        }
    }

    /// Whether a value of this dynamic type can be passed as this parameter type.
    pub(crate) fn accepts(self, value: &Value) -> bool {
        if let (Type::String, Value::Object(object)) = (self, value) {
            return object.go_string().is_some();
        }
        matches!(
            (self, value),
            (Type::Any, _)
                | (Type::Bool, Value::Bool(_))
                | (Type::Int, Value::Int(_))
                | (Type::Int64, Value::Int64(_))
                | (Type::Float64, Value::Float(_))
                | (Type::String, Value::String(_))
                | (Type::List, Value::List(_))
                | (Type::Map, Value::Map(_))
        )
    }
}

type Implementation = dyn Fn(&mut Ctx<'_>, &[Value]) -> Result<Value, FuncError> + Send + Sync;

/// A function templates can call: `Fn(ctx, args) -> Result<Value, FuncError>` with a Go signature.
///
/// The [`Ctx`] lets a function execute named templates (helm's `include`), parse and execute template
/// text at run time (`tpl`), and reach per-execution state (`include`'s recursion counts).
#[derive(Clone)]
pub struct Function {
    params: Arc<[Type]>,
    variadic: Option<Type>,
    implementation: Arc<Implementation>,
}

impl Function {
    /// A function taking exactly `params`.
    pub fn new(
        params: &[Type],
        implementation: impl Fn(&mut Ctx<'_>, &[Value]) -> Result<Value, FuncError> + Send + Sync + 'static,
    ) -> Function {
        Function { params: params.into(), variadic: None, implementation: Arc::new(implementation) }
    }

    /// A function taking `params` then any number of `rest` (Go's `...T`).
    pub fn variadic(
        params: &[Type],
        rest: Type,
        implementation: impl Fn(&mut Ctx<'_>, &[Value]) -> Result<Value, FuncError> + Send + Sync + 'static,
    ) -> Function {
        Function { params: params.into(), variadic: Some(rest), implementation: Arc::new(implementation) }
    }

    pub fn params(&self) -> &[Type] {
        &self.params
    }

    pub fn variadic_type(&self) -> Option<Type> {
        self.variadic
    }

    pub(crate) fn call(&self, ctx: &mut Ctx<'_>, args: &[Value]) -> Result<Value, FuncError> {
        (self.implementation)(ctx, args)
    }
}

impl fmt::Debug for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Function").field("params", &self.params).field("variadic", &self.variadic).finish()
    }
}

/// The functions Go's text/template defines itself. Those needing the executor's view of values
/// (short-circuit `and`/`or`, nil-ness for `len` and `index`) are implemented there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Builtin {
    And,
    Or,
    Not,
    Len,
    Index,
    Slice,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Print,
    Printf,
    Println,
    Html,
    Js,
    UrlQuery,
    Call,
}

impl Builtin {
    pub(crate) fn lookup(name: &str) -> Option<Builtin> {
        Some(match name {
            "and" => Builtin::And,
            "or" => Builtin::Or,
            "not" => Builtin::Not,
            "len" => Builtin::Len,
            "index" => Builtin::Index,
            "slice" => Builtin::Slice,
            "eq" => Builtin::Eq,
            "ne" => Builtin::Ne,
            "lt" => Builtin::Lt,
            "le" => Builtin::Le,
            "gt" => Builtin::Gt,
            "ge" => Builtin::Ge,
            "print" => Builtin::Print,
            "printf" => Builtin::Printf,
            "println" => Builtin::Println,
            "html" => Builtin::Html,
            "js" => Builtin::Js,
            "urlquery" => Builtin::UrlQuery,
            "call" => Builtin::Call,
            _ => return None,
        })
    }

    /// Go's parameter list (reflect.Value parameters act as `interface{}`).
    pub(crate) fn signature(self) -> (&'static [Type], Option<Type>) {
        const ONE: &[Type] = &[Type::Any];
        const TWO: &[Type] = &[Type::Any, Type::Any];
        match self {
            Builtin::And | Builtin::Or | Builtin::Index | Builtin::Slice | Builtin::Eq | Builtin::Call => {
                (ONE, Some(Type::Any))
            }
            Builtin::Not | Builtin::Len => (ONE, None),
            Builtin::Ne | Builtin::Lt | Builtin::Le | Builtin::Gt | Builtin::Ge => (TWO, None),
            Builtin::Print | Builtin::Println | Builtin::Html | Builtin::Js | Builtin::UrlQuery => {
                (&[], Some(Type::Any))
            }
            Builtin::Printf => (&[Type::String], Some(Type::Any)),
        }
    }
}
