//! Parse trees, as Go's text/template/parse/node.go has them. `Display` prints a node the way Go's
//! `Node.String()` does: that text is the `<...>` context of execution errors.

use std::fmt;
use std::sync::Arc;

/// One parsed template: a file's body or a `define`/`block`.
#[derive(Debug)]
pub(crate) struct Tree {
    /// The template's name (`define "name"`, or the name it was parsed under).
    pub name: Arc<str>,
    /// The name of the top-level template being parsed when this one was found, for locations.
    pub parse_name: Arc<str>,
    /// The whole text that was parsed, for turning byte positions into line:column.
    pub text: Arc<str>,
    pub root: Vec<Node>,
}

impl Tree {
    /// Go's `parse.IsEmptyTree`: only whitespace text (and comments). An empty tree does not replace a
    /// template of the same name.
    pub fn is_empty(&self) -> bool {
        self.root.iter().all(|node| matches!(node, Node::Text(text) if text.trim_ascii().is_empty()))
    }

    /// Go's `ErrorContext`: `parse_name:line:col` with a 0-based byte column.
    pub fn location(&self, pos: usize) -> (usize, usize) {
        let before = self.text.get(..pos).unwrap_or(&self.text);
        let line = 1 + before.matches('\n').count();
        let col = match before.rfind('\n') {
            Some(nl) => pos - (nl + 1),
            None => pos,
        };
        (line, col)
    }
}

#[derive(Debug)]
pub(crate) enum Node {
    Text(Box<str>),
    Action(Action),
    If(Branch),
    Range(Branch),
    With(Branch),
    Template(TemplateCall),
    Break(usize),
    Continue(usize),
}

#[derive(Debug)]
pub(crate) struct Action {
    pub pos: usize,
    pub pipe: Pipe,
}

#[derive(Debug)]
pub(crate) struct Branch {
    pub pos: usize,
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Debug)]
pub(crate) struct TemplateCall {
    pub pos: usize,
    pub name: Arc<str>,
    pub pipe: Option<Pipe>,
}

#[derive(Debug)]
pub(crate) struct Pipe {
    pub pos: usize,
    /// `=` rather than `:=`.
    pub is_assign: bool,
    /// Declared or assigned variables, `$x` included.
    pub decl: Vec<Box<str>>,
    pub cmds: Vec<Command>,
}

#[derive(Debug)]
pub(crate) struct Command {
    pub pos: usize,
    pub args: Vec<Arg>,
}

#[derive(Debug)]
pub(crate) struct Number {
    pub text: Box<str>,
    pub int: Option<i64>,
    /// Go's NumberNode.IsUint with a value above i64::MAX: an int literal that overflows `int`.
    pub uint_only: bool,
    pub float: Option<f64>,
    pub complex: bool,
}

/// An operand: Go's Field, Chain, Identifier, Variable, Dot, Nil, Bool, Number, String and Pipe nodes.
#[derive(Debug)]
pub(crate) enum Arg {
    Field {
        pos: usize,
        idents: Vec<Box<str>>,
    },
    Chain {
        pos: usize,
        node: Box<Arg>,
        fields: Vec<Box<str>>,
    },
    Identifier {
        pos: usize,
        name: Box<str>,
    },
    /// `$x.a.b`: `idents[0]` is the variable.
    Variable {
        pos: usize,
        idents: Vec<Box<str>>,
    },
    Dot(usize),
    Nil(usize),
    Bool(usize, bool),
    Number(usize, Box<Number>),
    String {
        pos: usize,
        quoted: Box<str>,
        text: Arc<str>,
    },
    Pipe(Box<Pipe>),
}

impl Arg {
    pub fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Identifier { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::String { pos, .. }
            | Arg::Dot(pos)
            | Arg::Nil(pos)
            | Arg::Bool(pos, _)
            | Arg::Number(pos, _) => *pos,
            Arg::Pipe(pipe) => pipe.pos,
        }
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field { idents, .. } => {
                for id in idents {
                    write!(f, ".{id}")?;
                }
                Ok(())
            }
            Arg::Chain { node, fields, .. } => {
                if let Arg::Pipe(pipe) = node.as_ref() {
                    write!(f, "({pipe})")?;
                } else {
                    write!(f, "{node}")?;
                }
                for field in fields {
                    write!(f, ".{field}")?;
                }
                Ok(())
            }
            Arg::Identifier { name, .. } => f.write_str(name),
            Arg::Variable { idents, .. } => f.write_str(&idents.join(".")),
            Arg::Dot(_) => f.write_str("."),
            Arg::Nil(_) => f.write_str("nil"),
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Number(_, n) => f.write_str(&n.text),
            Arg::String { quoted, .. } => f.write_str(quoted),
            Arg::Pipe(pipe) => write!(f, "{pipe}"),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if let Arg::Pipe(pipe) = arg {
                write!(f, "({pipe})")?;
            } else {
                write!(f, "{arg}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, cmd) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{cmd}")?;
        }
        Ok(())
    }
}

pub(crate) struct ListDisplay<'a>(pub &'a [Node]);

impl fmt::Display for ListDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for node in self.0 {
            write!(f, "{node}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let branch = |f: &mut fmt::Formatter<'_>, name: &str, b: &Branch| {
            write!(f, "{{{{{name} {}}}}}{}", b.pipe, ListDisplay(&b.list))?;
            if let Some(else_list) = &b.else_list {
                write!(f, "{{{{else}}}}{}", ListDisplay(else_list))?;
            }
            f.write_str("{{end}}")
        };
        match self {
            Node::Text(text) => f.write_str(text),
            Node::Action(action) => write!(f, "{{{{{}}}}}", action.pipe),
            Node::If(b) => branch(f, "if", b),
            Node::Range(b) => branch(f, "range", b),
            Node::With(b) => branch(f, "with", b),
            Node::Template(t) => {
                write!(f, "{{{{template {}", crate::strconv::quote(&t.name, false))?;
                if let Some(pipe) = &t.pipe {
                    write!(f, " {pipe}")?;
                }
                f.write_str("}}")
            }
            Node::Break(_) => f.write_str("{{break}}"),
            Node::Continue(_) => f.write_str("{{continue}}"),
        }
    }
}
