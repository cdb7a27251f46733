//! Execution, a port of Go 1.23's text/template/exec.go and the builtins of funcs.go.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use crate::ast::{Arg, Branch, Command, Node, Pipe, TemplateCall, Tree};
use crate::error::{Error, FuncError, Location};
use crate::funcs::{Builtin, Function, Type};
use crate::set::{MissingKey, Templates};
use crate::value::Value;
use crate::{gofmt, strconv};

/// Go's limit on nested `{{template}}` calls (exec.go's maxExecDepth).
const MAX_EXEC_DEPTH: usize = 100_000;

/// Executions nested this many levels deeper continue on a fresh thread with its own stack, so
/// recursion as deep as Go allows does not overflow the caller's.
const LEVELS_PER_STACK: usize = 48;
const STACK_SIZE: usize = 32 << 20;

/// Steps (nodes walked, pipelines evaluated, range iterations) between two calls of
/// [`Limits::stop`]: often enough to stop within milliseconds, rarely enough to cost nothing.
const STEPS_PER_CHECK: usize = 1024;

/// Bounds on one execution and on the executions its functions start (`include`, `tpl`): a
/// template from a repository that is not trusted (a tenant's) must neither run nor grow without
/// end in a process that renders others' too. None by default.
#[derive(Clone, Copy, Default)]
pub struct Limits<'a> {
    /// Asked at the start of each execution and every few steps; `Some(why)` stops the execution
    /// with an error saying why (a deadline passed, the process is stopping).
    pub stop: Option<&'a (dyn Fn() -> Option<String> + Sync)>,
    /// The most bytes of one execution's output, and of any one string a pipeline makes (a
    /// string doubled in a loop is stopped before it is printed).
    pub max_bytes: Option<usize>,
}

/// Templates visible to an execution: the set's, and those a running `tpl` parsed on top of them.
pub(crate) struct Layer<'a> {
    pub trees: &'a HashMap<Arc<str>, Arc<Tree>>,
    pub parent: Option<&'a Layer<'a>>,
}

impl<'a> Layer<'a> {
    pub fn lookup(&self, name: &str) -> Option<&'a Arc<Tree>> {
        match self.trees.get(name) {
            Some(tree) => Some(tree),
            None => self.parent?.lookup(name),
        }
    }
}

/// A value as Go's reflection sees it during execution: `boxed` values are held in an `interface{}`
/// (map entries, list elements), which changes some error messages and makes a nil entry a "nil
/// pointer" rather than a missing value.
#[derive(Clone, Debug)]
struct Data {
    value: Value,
    boxed: bool,
}

impl Data {
    fn of(value: Value) -> Data {
        Data { value, boxed: false }
    }

    fn boxed(value: Value) -> Data {
        Data { value, boxed: true }
    }

    fn is_nil_interface(&self) -> bool {
        self.boxed && self.value.is_nil()
    }

    /// Go's `reflect.Type.String()` of the value as held.
    fn type_name(&self) -> &str {
        if self.boxed { "interface {}" } else { self.value.type_name() }
    }
}

enum Stop {
    Break,
    Continue,
    Error(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Error(e)
    }
}

/// The node being executed, for error locations and contexts (Go's `state.node`).
#[derive(Clone, Copy)]
enum At<'a> {
    Start,
    Node(&'a Node),
    Pipe(&'a Pipe),
    Command(&'a Command),
    Arg(&'a Arg),
}

impl At<'_> {
    fn pos_and_text(&self) -> Option<(usize, String)> {
        Some(match self {
            At::Start => return None,
            At::Node(node) => {
                let pos = match node {
                    Node::Text(_) => 0,
                    Node::Action(a) => a.pos,
                    Node::If(b) | Node::Range(b) | Node::With(b) => b.pos,
                    Node::Template(t) => t.pos,
                    Node::Break(pos) | Node::Continue(pos) => *pos,
                };
                (pos, node.to_string())
            }
            At::Pipe(pipe) => (pipe.pos, pipe.to_string()),
            At::Command(cmd) => (cmd.pos, cmd.to_string()),
            At::Arg(arg) => (arg.pos(), arg.to_string()),
        })
    }
}

enum Callee {
    Builtin(Builtin),
    Function(Function),
}

/// What a template function gets besides its arguments: the templates of the running execution.
pub struct Ctx<'a> {
    set: &'a Templates,
    layer: &'a Layer<'a>,
    nesting: usize,
    state: &'a mut (dyn Any + Send),
    limits: Limits<'a>,
}

impl Ctx<'_> {
    /// Executes the named template with `data` as dot and returns its output, as Go's
    /// `ExecuteTemplate` does (helm's `include`). The template sees `define`s made by a running `tpl`.
    pub fn execute_template(&mut self, name: &str, data: Value) -> Result<String, Error> {
        let tree = self.layer.lookup(name).ok_or_else(|| Error::no_template(name, self.set.name()))?;
        let mut out = String::new();
        run(self.set, self.layer, tree, data, &mut out, self.nesting + 1, &mut *self.state, self.limits)?;
        Ok(out)
    }

    /// Parses `text` as the template `name`, on top of the running execution's templates (its
    /// `define`s visible to templates it runs, and gone afterwards), and executes it with `data`
    /// (helm's `tpl`, which names it after its root template).
    pub fn execute_text(&mut self, name: &str, text: &str, data: Value) -> Result<String, Error> {
        let trees = self.set.parse_trees(name, text)?;
        let mut local: HashMap<Arc<str>, Arc<Tree>> = HashMap::with_capacity(trees.len());
        for tree in trees {
            // The text's own body always replaces `name`; a `define` left empty does not hide one
            // already visible (Go's associate rule).
            let keep_existing = &*tree.name != name
                && tree.is_empty()
                && self.layer.lookup(&tree.name).is_some_and(|old| !old.is_empty());
            if !keep_existing {
                local.insert(tree.name.clone(), Arc::new(tree));
            }
        }
        let layer = Layer { trees: &local, parent: Some(self.layer) };
        let tree = layer.lookup(name).ok_or_else(|| Error::no_template(name, self.set.name()))?;
        let mut out = String::new();
        run(self.set, &layer, tree, data, &mut out, self.nesting + 1, &mut *self.state, self.limits)?;
        Ok(out)
    }

    /// The state passed to [`Templates::execute_with_state`], if it is a `T`.
    pub fn state<T: Any>(&mut self) -> Option<&mut T> {
        self.state.downcast_mut::<T>()
    }

    /// Whether a template of that name is visible.
    pub fn has_template(&self, name: &str) -> bool {
        self.layer.lookup(name).is_some()
    }
}

/// Executes `tree` with `data` into `out`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    set: &Templates,
    layer: &Layer<'_>,
    tree: &Tree,
    data: Value,
    out: &mut String,
    nesting: usize,
    state: &mut (dyn Any + Send),
    limits: Limits<'_>,
) -> Result<(), Error> {
    // Here too, not only every few steps: a recursion of `include`s takes few steps in each.
    if let Some(why) = limits.stop.and_then(|stop| stop()) {
        return Err(Error::exec(&tree.name, None, None, format!("execution stopped: {why}"), None));
    }
    if nesting >= MAX_EXEC_DEPTH {
        return Err(Error::exec(
            &tree.name,
            None,
            None,
            format!("exceeded maximum template depth ({MAX_EXEC_DEPTH})"),
            None,
        ));
    }
    let mut exec = Exec {
        set,
        layer,
        tree,
        vars: vec![("$", Data::of(data.clone()))],
        frame: 0,
        node: At::Start,
        depth: 0,
        nesting,
        out,
        state,
        limits,
        steps: 0,
    };
    let result = on_big_enough_stack(nesting, || exec.walk_list(&Data::of(data), &tree.root));
    match result {
        Ok(()) => Ok(()),
        Err(Stop::Error(e)) => Err(e),
        // The parser rejects break and continue outside range.
        Err(Stop::Break | Stop::Continue) => Ok(()),
    }
}

fn on_big_enough_stack<T: Send>(nesting: usize, f: impl FnOnce() -> Result<T, Stop> + Send) -> Result<T, Stop> {
    if nesting == 0 || !nesting.is_multiple_of(LEVELS_PER_STACK) {
        return f();
    }
    std::thread::scope(|scope| {
        let spawned =
            std::thread::Builder::new().name("gotemplate-deep".into()).stack_size(STACK_SIZE).spawn_scoped(scope, f);
        match spawned {
            Ok(handle) => handle.join().unwrap_or_else(|_| {
                Err(Stop::Error(Error::exec("", None, None, "template execution thread panicked".into(), None)))
            }),
            Err(e) => Err(Stop::Error(Error::exec("", None, None, format!("cannot nest templates deeper: {e}"), None))),
        }
    })
}

struct Exec<'a, 'o> {
    set: &'a Templates,
    layer: &'a Layer<'a>,
    tree: &'a Tree,
    /// Variables of all active template calls; those of the current call start at `frame`.
    vars: Vec<(&'a str, Data)>,
    frame: usize,
    node: At<'a>,
    /// Go's depth of `{{template}}` calls.
    depth: usize,
    /// Depth of nested executions of any kind, for stack growth.
    nesting: usize,
    out: &'o mut String,
    state: &'o mut (dyn Any + Send),
    limits: Limits<'o>,
    /// Steps since the execution began, for [`Limits::stop`].
    steps: usize,
}

type Res<T> = Result<T, Error>;

impl<'a> Exec<'a, '_> {
    fn at(&mut self, at: At<'a>) {
        self.node = at;
    }

    fn error(&self, message: String) -> Error {
        self.error_with_data(message, None)
    }

    /// An error whose message shows data from `data_start` on (Go prints the value), for redaction.
    fn error_with_data(&self, message: String, data: Option<std::ops::Range<usize>>) -> Error {
        match self.node.pos_and_text() {
            None => Error::exec(&self.tree.name, None, None, message, data),
            Some((pos, text)) => {
                let (line, col) = self.tree.location(pos);
                let location = Location { parse_name: self.tree.parse_name.to_string(), line, column: Some(col) };
                Error::exec(&self.tree.name, Some(location), Some(text), message, data)
            }
        }
    }

    fn call_error(&self, name: &str, err: FuncError) -> Error {
        let (location, context) = match self.node.pos_and_text() {
            None => (None, None),
            Some((pos, text)) => {
                let (line, col) = self.tree.location(pos);
                (Some(Location { parse_name: self.tree.parse_name.to_string(), line, column: Some(col) }), Some(text))
            }
        };
        Error::exec_call(&self.tree.name, location, context, name, err)
    }

    /// Counts a step, and every [`STEPS_PER_CHECK`] asks whether to stop.
    fn step(&mut self) -> Res<()> {
        self.steps += 1;
        if self.steps.is_multiple_of(STEPS_PER_CHECK)
            && let Some(why) = self.limits.stop.and_then(|stop| stop())
        {
            return Err(self.error(format!("execution stopped: {why}")));
        }
        Ok(())
    }

    /// An error when `len` bytes (of output, or of a string) exceed [`Limits::max_bytes`].
    fn check_size(&self, len: usize, what: &str) -> Res<()> {
        match self.limits.max_bytes {
            Some(max) if len > max => {
                Err(self.error(format!("{what} exceeds the limit of {max} bytes")).of_too_large())
            }
            _ => Ok(()),
        }
    }

    fn walk_list(&mut self, dot: &Data, list: &'a [Node]) -> Result<(), Stop> {
        for node in list {
            self.walk(dot, node)?;
        }
        Ok(())
    }

    fn walk(&mut self, dot: &Data, node: &'a Node) -> Result<(), Stop> {
        self.at(At::Node(node));
        self.step()?;
        match node {
            Node::Text(text) => self.out.push_str(text),
            Node::Action(action) => {
                // Variables declared by an action persist until the enclosing {{end}}.
                let value = self.eval_pipeline(dot, &action.pipe)?;
                if action.pipe.decl.is_empty() {
                    self.at(At::Node(node));
                    self.print_value(&value);
                }
            }
            Node::If(branch) => self.walk_if_or_with(dot, branch, false)?,
            Node::With(branch) => self.walk_if_or_with(dot, branch, true)?,
            Node::Range(branch) => self.walk_range(dot, node, branch)?,
            Node::Template(call) => self.walk_template(dot, node, call)?,
            Node::Break(_) => return Err(Stop::Break),
            Node::Continue(_) => return Err(Stop::Continue),
        }
        self.check_size(self.out.len(), "the output")?;
        Ok(())
    }

    fn print_value(&mut self, value: &Value) {
        match value {
            Value::Nil => self.out.push_str("<no value>"),
            Value::String(s) => self.out.push_str(s),
            Value::Object(object) if let Some(printed) = object.printed() => self.out.push_str(&printed),
            other => self.out.push_str(&gofmt::sprint(std::slice::from_ref(other))),
        }
    }

    fn walk_if_or_with(&mut self, dot: &Data, branch: &'a Branch, is_with: bool) -> Result<(), Stop> {
        let mark = self.vars.len();
        let result = (|| {
            let value = self.eval_pipeline(dot, &branch.pipe)?;
            if value.is_true() {
                if is_with { self.walk_list(&Data::of(value), &branch.list) } else { self.walk_list(dot, &branch.list) }
            } else if let Some(else_list) = &branch.else_list {
                self.walk_list(dot, else_list)
            } else {
                Ok(())
            }
        })();
        self.vars.truncate(mark);
        result
    }

    fn walk_range(&mut self, dot: &Data, node: &'a Node, branch: &'a Branch) -> Result<(), Stop> {
        self.at(At::Node(node));
        let outer = self.vars.len();
        let result = self.range_items(dot, branch);
        self.vars.truncate(outer);
        match result {
            Ok(true) => Ok(()),
            Ok(false) => match &branch.else_list {
                Some(else_list) => self.walk_list(dot, else_list),
                None => Ok(()),
            },
            Err(e) => Err(e),
        }
    }

    /// Runs the range body per element; false when there were none (the else branch runs).
    fn range_items(&mut self, dot: &Data, branch: &'a Branch) -> Result<bool, Stop> {
        let mut value = self.eval_pipeline(dot, &branch.pipe)?;
        if let Value::Object(object) = &value
            && let Some(underlying) = object.underlying()
        {
            value = underlying;
        }
        let mark = self.vars.len();
        match &value {
            Value::List(items) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    if self.range_iteration(branch, mark, Data::of(Value::Int(i as i64)), Data::boxed(item.clone()))? {
                        break;
                    }
                }
                Ok(true)
            }
            Value::Map(map) if !map.is_empty() => {
                for (key, item) in map.entries() {
                    if self.range_iteration(branch, mark, Data::of(Value::from(key)), Data::boxed(item))? {
                        break;
                    }
                }
                Ok(true)
            }
            Value::List(_) | Value::Map(_) | Value::Nil => Ok(false),
            other => {
                let shown = gofmt::sprint(std::slice::from_ref(other));
                let prefix = "range can't iterate over ";
                let end = prefix.len() + shown.len();
                Err(self.error_with_data(format!("{prefix}{shown}"), Some(prefix.len()..end)).into())
            }
        }
    }

    /// One iteration; true when the body executed {{break}}.
    fn range_iteration(&mut self, branch: &'a Branch, mark: usize, index: Data, elem: Data) -> Result<bool, Stop> {
        self.step()?;
        let decl = &branch.pipe.decl;
        if branch.pipe.is_assign {
            // With two variables the index comes first; with one it gets the element.
            match decl.len() {
                1 => self.set_var(&decl[0], elem.clone())?,
                2 => {
                    self.set_var(&decl[0], index)?;
                    self.set_var(&decl[1], elem.clone())?;
                }
                _ => {}
            }
        } else {
            // The declarations were pushed by the pipeline: the last is the element, one before it the index.
            let len = self.vars.len();
            if !decl.is_empty() {
                self.vars[len - 1].1 = elem.clone();
            }
            if decl.len() > 1 {
                self.vars[len - 2].1 = index;
            }
        }
        let result = self.walk_list(&elem, &branch.list);
        self.vars.truncate(mark);
        match result {
            Ok(()) | Err(Stop::Continue) => Ok(false),
            Err(Stop::Break) => Ok(true),
            Err(e) => Err(e),
        }
    }

    fn walk_template(&mut self, dot: &Data, node: &'a Node, call: &'a TemplateCall) -> Result<(), Stop> {
        self.at(At::Node(node));
        let Some(tree) = self.layer.lookup(&call.name) else {
            return Err(self.error(format!("template {} not defined", strconv::quote(&call.name, false))).into());
        };
        if self.depth + 1 >= MAX_EXEC_DEPTH {
            return Err(self.error(format!("exceeded maximum template depth ({MAX_EXEC_DEPTH})")).into());
        }
        // Variables declared by the pipeline persist in the caller.
        let new_dot = match &call.pipe {
            Some(pipe) => self.eval_pipeline(dot, pipe)?,
            None => Value::Nil,
        };
        let tree: &'a Tree = tree;
        let saved_tree = std::mem::replace(&mut self.tree, tree);
        let saved_frame = self.frame;
        let saved_node = self.node;
        let mark = self.vars.len();
        // No dynamic scoping: the called template sees only its own $.
        self.vars.push(("$", Data::of(new_dot.clone())));
        self.frame = mark;
        self.depth += 1;
        self.nesting += 1;
        let nesting = self.nesting;
        let result = on_big_enough_stack(nesting, || self.walk_list(&Data::of(new_dot), &tree.root));
        self.nesting -= 1;
        self.depth -= 1;
        self.vars.truncate(mark);
        self.frame = saved_frame;
        self.tree = saved_tree;
        self.node = saved_node;
        result
    }

    fn set_var(&mut self, name: &str, value: Data) -> Res<()> {
        for (var, slot) in self.vars[self.frame..].iter_mut().rev() {
            if *var == name {
                *slot = value;
                return Ok(());
            }
        }
        Err(self.error(format!("undefined variable: {name}")))
    }

    fn var_value(&self, name: &str) -> Res<Data> {
        for (var, value) in self.vars[self.frame..].iter().rev() {
            if *var == name {
                return Ok(value.clone());
            }
        }
        Err(self.error(format!("undefined variable: {name}")))
    }

    /// A pipeline's value; declared variables are pushed, assigned ones set.
    fn eval_pipeline(&mut self, dot: &Data, pipe: &'a Pipe) -> Res<Value> {
        self.at(At::Pipe(pipe));
        self.step()?;
        let mut value: Option<Data> = None;
        for cmd in &pipe.cmds {
            let result = self.eval_command(dot, cmd, value.take())?;
            if let Value::String(made) = &result.value {
                self.check_size(made.len(), "a string")?;
            }
            // An interface{} result is replaced by the value inside it.
            value = Some(Data::of(result.value));
        }
        let value = value.map(|d| d.value).unwrap_or_default();
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, Data::of(value.clone()))?;
            } else {
                self.vars.push((name, Data::of(value.clone())));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &[Arg], fin: &Option<Data>) -> Res<()> {
        if args.len() > 1 || fin.is_some() {
            return Err(self.error(format!("can't give argument to non-function {}", args[0])));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Data, cmd: &'a Command, fin: Option<Data>) -> Res<Data> {
        let first = &cmd.args[0];
        match first {
            Arg::Field { idents, .. } => {
                self.at(At::Arg(first));
                return self.eval_field_chain(dot, dot.clone(), first, idents, &cmd.args, fin);
            }
            Arg::Chain { node, fields, .. } => {
                self.at(At::Arg(first));
                let receiver = self.eval_chain_receiver(dot, first, node)?;
                return self.eval_field_chain(dot, receiver, first, fields, &cmd.args, fin);
            }
            Arg::Identifier { name, .. } => {
                self.at(At::Arg(first));
                return self.eval_function(dot, name, At::Command(cmd), &cmd.args[1..], fin);
            }
            Arg::Pipe(pipe) => {
                self.not_a_function(&cmd.args, &fin)?;
                return self.eval_pipeline(dot, pipe).map(Data::of);
            }
            Arg::Variable { idents, .. } => return self.eval_variable(dot, first, idents, &cmd.args, fin),
            _ => {}
        }
        self.at(At::Arg(first));
        self.not_a_function(&cmd.args, &fin)?;
        Ok(match first {
            Arg::Bool(_, b) => Data::of(Value::Bool(*b)),
            Arg::Dot(_) => dot.clone(),
            Arg::Nil(_) => return Err(self.error("nil is not a command".into())),
            Arg::Number(_, number) => Data::of(self.ideal_constant(number)?),
            Arg::String { text, .. } => Data::of(Value::String(text.clone())),
            _ => {
                return Err(self.error(format!("can't evaluate command {}", strconv::quote(&first.to_string(), false))));
            }
        })
    }

    /// A number literal where no type is expected: the syntax decides between int and float64.
    fn ideal_constant(&self, number: &crate::ast::Number) -> Res<Value> {
        if number.complex {
            return Err(self.error(format!("complex constant {} is not supported", number.text)));
        }
        let text = &number.text;
        let is_hex_int = {
            let t = text.trim_start_matches(['+', '-']);
            t.len() > 2 && (t.starts_with("0x") || t.starts_with("0X")) && !t.contains(['p', 'P'])
        };
        let is_rune = text.starts_with('\'');
        if let Some(f) = number.float
            && !is_hex_int
            && !is_rune
            && text.contains(['.', 'e', 'E', 'p', 'P'])
        {
            return Ok(Value::Float(f));
        }
        match number.int {
            Some(i) => Ok(Value::Int(i)),
            None => Err(self.error(format!("{text} overflows int"))),
        }
    }

    fn eval_chain_receiver(&mut self, dot: &Data, chain: &'a Arg, node: &'a Arg) -> Res<Data> {
        if let Arg::Nil(_) = node {
            return Err(self.error(format!("indirection through explicit nil in {chain}")));
        }
        // (pipe).Field1.Field2: evaluate the pipeline, then the fields.
        self.eval_arg(dot, Type::Any, node)
    }

    fn eval_variable(
        &mut self,
        dot: &Data,
        node: &'a Arg,
        idents: &'a [Box<str>],
        args: &'a [Arg],
        fin: Option<Data>,
    ) -> Res<Data> {
        self.at(At::Arg(node));
        let value = self.var_value(&idents[0])?;
        if idents.len() == 1 {
            self.not_a_function(args, &fin)?;
            return Ok(value);
        }
        self.eval_field_chain(dot, value, node, &idents[1..], args, fin)
    }

    /// `.X.Y.Z` on `receiver`, the last possibly a method taking `args` (args[0] is the chain itself).
    fn eval_field_chain(
        &mut self,
        dot: &Data,
        mut receiver: Data,
        node: &'a Arg,
        idents: &'a [Box<str>],
        args: &'a [Arg],
        fin: Option<Data>,
    ) -> Res<Data> {
        let n = idents.len();
        for ident in &idents[..n - 1] {
            receiver = self.eval_field(dot, ident, node, &[], None, receiver)?;
        }
        self.eval_field(dot, &idents[n - 1], node, args, fin, receiver)
    }

    fn eval_field(
        &mut self,
        dot: &Data,
        field: &str,
        node: &'a Arg,
        args: &'a [Arg],
        fin: Option<Data>,
        receiver: Data,
    ) -> Res<Data> {
        if receiver.value.is_nil() && !receiver.boxed {
            if self.set.missing_key() == MissingKey::Error {
                return Err(self.error(format!("nil data; no entry for key {}", strconv::quote(field, false))));
            }
            return Ok(Data::of(Value::Nil));
        }
        if receiver.is_nil_interface() {
            return Err(self.error(format!("nil pointer evaluating interface {{}}.{field}")));
        }
        let has_args = args.len() > 1 || fin.is_some();
        let cannot = |exec: &Self| exec.error(format!("can't evaluate field {field} in type {}", receiver.type_name()));
        let map = match &receiver.value {
            Value::Object(object) => {
                if let Some(method) = object.method(field) {
                    let args = if args.is_empty() { args } else { &args[1..] };
                    return self.eval_call(dot, Callee::Function(method), field, At::Arg(node), args, fin);
                }
                if let Some(value) = object.field(field) {
                    if has_args {
                        return Err(self.error(format!("{field} has arguments but cannot be invoked as function")));
                    }
                    return Ok(Data::boxed(value));
                }
                match object.underlying() {
                    Some(Value::Map(ref map)) => map.clone(),
                    _ => return Err(cannot(self)),
                }
            }
            Value::Map(map) => map.clone(),
            _ => return Err(cannot(self)),
        };
        if has_args {
            return Err(self.error(format!("{field} is not a method but has arguments")));
        }
        match map.get(field) {
            Some(value) => Ok(Data::boxed(value)),
            None => match self.set.missing_key() {
                MissingKey::Default => Ok(Data::of(Value::Nil)),
                MissingKey::Zero => Ok(Data::boxed(Value::Nil)),
                MissingKey::Error => {
                    Err(self.error(format!("map has no entry for key {}", strconv::quote(field, false))))
                }
            },
        }
    }

    fn eval_function(&mut self, dot: &Data, name: &str, node: At<'a>, args: &'a [Arg], fin: Option<Data>) -> Res<Data> {
        let callee = match self.set.function(name) {
            Some(function) => Callee::Function(function.clone()),
            None => match Builtin::lookup(name) {
                Some(builtin) => Callee::Builtin(builtin),
                None => return Err(self.error(format!("{} is not a defined function", strconv::quote(name, false)))),
            },
        };
        self.eval_call(dot, callee, name, node, args, fin)
    }

    /// Calls a function or method; `args` are the argument nodes, `fin` the value piped in.
    fn eval_call(
        &mut self,
        dot: &Data,
        callee: Callee,
        name: &str,
        node: At<'a>,
        args: &'a [Arg],
        fin: Option<Data>,
    ) -> Res<Data> {
        let (params, variadic): (&[Type], Option<Type>) = match &callee {
            Callee::Builtin(b) => b.signature(),
            Callee::Function(f) => (f.params(), f.variadic_type()),
        };
        let num_in = args.len() + usize::from(fin.is_some());
        let mut num_fixed = args.len();
        if variadic.is_some() {
            num_fixed = params.len();
            if num_in < num_fixed {
                return Err(self.error(format!(
                    "wrong number of args for {name}: want at least {} got {}",
                    params.len(),
                    args.len()
                )));
            }
        } else if num_in != params.len() {
            return Err(self.error(format!("wrong number of args for {name}: want {} got {num_in}", params.len())));
        }

        // and/or evaluate their arguments only until the result is decided.
        if let Callee::Builtin(b @ (Builtin::And | Builtin::Or)) = callee {
            let want = b == Builtin::Or;
            let mut value = Data::of(Value::Nil);
            for arg in args {
                value = self.eval_arg(dot, Type::Any, arg)?;
                if value.value.is_true() == want {
                    return Ok(value);
                }
            }
            if let Some(fin) = fin {
                value = fin;
            }
            return Ok(value);
        }

        let mut argv: Vec<Data> = Vec::with_capacity(num_in);
        let mut i = 0;
        while i < num_fixed && i < args.len() {
            argv.push(self.eval_arg(dot, params[i], &args[i])?);
            i += 1;
        }
        if let Some(rest) = variadic {
            while i < args.len() {
                argv.push(self.eval_arg(dot, rest, &args[i])?);
                i += 1;
            }
        }
        if let Some(fin) = fin {
            let typ = match variadic {
                Some(rest) if num_in > num_fixed => rest,
                Some(_) => params[num_in - 1],
                None => params[params.len() - 1],
            };
            argv.push(self.validate_type(fin, typ)?);
        }

        let result = match callee {
            Callee::Builtin(b) => self.call_builtin(b, args, argv),
            Callee::Function(f) => {
                let values: Vec<Value> = argv.into_iter().map(|d| d.value).collect();
                let mut ctx = Ctx {
                    set: self.set,
                    layer: self.layer,
                    nesting: self.nesting,
                    state: &mut *self.state,
                    limits: self.limits,
                };
                f.call(&mut ctx, &values).map(Data::of)
            }
        };
        result.map_err(|err| {
            self.at(node);
            self.call_error(name, err)
        })
    }

    /// Go's validateType: can this value be passed as `typ`?
    fn validate_type(&self, value: Data, typ: Type) -> Res<Data> {
        if value.value.is_nil() && !value.boxed {
            return match typ {
                Type::Any | Type::List | Type::Map => Ok(value),
                _ => Err(self.error(format!("invalid value; expected {}", typ.go_name()))),
            };
        }
        if typ == Type::Any || (!value.is_nil_interface() && typ.accepts(&value.value)) {
            return Ok(value);
        }
        if typ == Type::Map
            && let Value::Object(object) = &value.value
            && let Some(map) = object.as_map()
        {
            return Ok(Data::of(Value::Map(map)));
        }
        let got = if value.is_nil_interface() { "interface {}" } else { value.value.type_name() };
        Err(self.error(format!("wrong type for value; expected {}; got {got}", typ.go_name())))
    }

    fn eval_arg(&mut self, dot: &Data, typ: Type, arg: &'a Arg) -> Res<Data> {
        self.at(At::Arg(arg));
        match arg {
            Arg::Dot(_) => return self.validate_type(dot.clone(), typ),
            Arg::Nil(_) => {
                return match typ {
                    Type::Any | Type::List | Type::Map => Ok(Data::of(Value::Nil)),
                    _ => Err(self.error(format!("cannot assign nil to {}", typ.go_name()))),
                };
            }
            Arg::Field { idents, .. } => {
                let value = self.eval_field_chain(dot, dot.clone(), arg, idents, std::slice::from_ref(arg), None)?;
                return self.validate_type(value, typ);
            }
            Arg::Variable { idents, .. } => {
                let value = self.eval_variable(dot, arg, idents, &[], None)?;
                return self.validate_type(value, typ);
            }
            Arg::Pipe(pipe) => {
                let value = self.eval_pipeline(dot, pipe)?;
                return self.validate_type(Data::of(value), typ);
            }
            Arg::Identifier { name, .. } => {
                let value = self.eval_function(dot, name, At::Arg(arg), &[], None)?;
                return self.validate_type(value, typ);
            }
            Arg::Chain { node, fields, .. } => {
                self.at(At::Arg(arg));
                let receiver = self.eval_chain_receiver(dot, arg, node)?;
                let value = self.eval_field_chain(dot, receiver, arg, fields, &[], None)?;
                return self.validate_type(value, typ);
            }
            Arg::Bool(..) | Arg::Number(..) | Arg::String { .. } => {}
        }
        let found = || format!("{arg}");
        match (typ, arg) {
            (Type::Any, Arg::Bool(_, b)) => Ok(Data::of(Value::Bool(*b))),
            (Type::Any, Arg::Number(_, n)) => Ok(Data::of(self.ideal_constant(n)?)),
            (Type::Any, Arg::String { text, .. }) => Ok(Data::of(Value::String(text.clone()))),
            (Type::Bool, Arg::Bool(_, b)) => Ok(Data::of(Value::Bool(*b))),
            (Type::Bool, _) => Err(self.error(format!("expected bool; found {}", found()))),
            (Type::String, Arg::String { text, .. }) => Ok(Data::of(Value::String(text.clone()))),
            (Type::String, _) => Err(self.error(format!("expected string; found {}", found()))),
            (Type::Int | Type::Int64, Arg::Number(_, n)) if n.int.is_some() => {
                let i = n.int.unwrap_or_default();
                Ok(Data::of(if typ == Type::Int { Value::Int(i) } else { Value::Int64(i) }))
            }
            (Type::Int | Type::Int64, _) => Err(self.error(format!("expected integer; found {}", found()))),
            (Type::Float64, Arg::Number(_, n)) if n.float.is_some() => {
                Ok(Data::of(Value::Float(n.float.unwrap_or_default())))
            }
            (Type::Float64, _) => Err(self.error(format!("expected float; found {}", found()))),
            _ => Err(self.error(format!("can't handle {} for arg of type {}", found(), typ.go_name()))),
        }
    }

    fn call_builtin(&mut self, builtin: Builtin, arg_nodes: &'a [Arg], args: Vec<Data>) -> Result<Data, FuncError> {
        let values = || args.iter().map(|d| d.value.clone()).collect::<Vec<_>>();
        Ok(match builtin {
            // Handled in eval_call.
            Builtin::And | Builtin::Or => Data::of(Value::Nil),
            Builtin::Not => Data::of(Value::Bool(!args[0].value.is_true())),
            Builtin::Len => Data::of(Value::Int(length(&args[0])?)),
            Builtin::Index => index(&args[0], &args[1..])?,
            Builtin::Slice => Data::of(slice(&args[0], &args[1..])?),
            Builtin::Eq => Data::of(Value::Bool(eq(&args[0].value, &args[1..])?)),
            Builtin::Ne => Data::of(Value::Bool(!eq(&args[0].value, &args[1..])?)),
            Builtin::Lt => Data::of(Value::Bool(lt(&args[0].value, &args[1].value)?)),
            Builtin::Le => Data::of(Value::Bool(le(&args[0].value, &args[1].value)?)),
            Builtin::Gt => Data::of(Value::Bool(!le(&args[0].value, &args[1].value)?)),
            Builtin::Ge => Data::of(Value::Bool(!lt(&args[0].value, &args[1].value)?)),
            Builtin::Print => Data::of(Value::from(gofmt::sprint(&values()))),
            Builtin::Println => Data::of(Value::from(gofmt::sprintln(&values()))),
            Builtin::Printf => {
                let format = args[0].value.as_str().unwrap_or_default().to_string();
                Data::of(Value::from(gofmt::sprintf(&format, &values()[1..])))
            }
            Builtin::Html => Data::of(Value::from(html_escape(&eval_args(&values())))),
            Builtin::Js => Data::of(Value::from(js_escape(&eval_args(&values())))),
            Builtin::UrlQuery => Data::of(Value::from(query_escape(&eval_args(&values())))),
            Builtin::Call => {
                // Values here are never functions: Go would call a func-typed value.
                return Err(match &args[0].value {
                    Value::Nil => FuncError::new("call of nil"),
                    // Go names the callee by its argument node; a piped-in callee has none (Go panics).
                    other => {
                        let callee = arg_nodes.first().map(ToString::to_string).unwrap_or_default();
                        FuncError::new(format!("non-function {callee} of type {}", other.type_name()))
                    }
                });
            }
        })
    }
}

fn length(item: &Data) -> Result<i64, FuncError> {
    if item.is_nil_interface() {
        return Err(FuncError::new("len of nil pointer"));
    }
    let value = match &item.value {
        Value::Object(o) => o.underlying().unwrap_or(Value::Object(o.clone())),
        other => other.clone(),
    };
    Ok(match &value {
        Value::String(s) => s.len() as i64,
        Value::List(l) => l.len() as i64,
        Value::Map(m) => m.len() as i64,
        Value::Nil => return Err(FuncError::new("reflect: call of reflect.Value.Type on zero Value")),
        other => return Err(FuncError::new(format!("len of type {}", other.type_name()))),
    })
}

fn underlying(value: &Value) -> Value {
    match value {
        Value::Object(o) => o.underlying().unwrap_or_else(|| value.clone()),
        other => other.clone(),
    }
}

/// An index into a list or string: Go's indexArg.
fn index_arg(index: &Value, cap: usize) -> Result<usize, FuncError> {
    let x = match index {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Nil => return Err(FuncError::new("cannot index slice/array with nil")),
        other => return Err(FuncError::new(format!("cannot index slice/array with type {}", other.type_name()))),
    };
    if x < 0 || x as u64 > cap as u64 {
        return Err(FuncError::new(format!("index out of range: {x}")));
    }
    Ok(x as usize)
}

fn index(item: &Data, indexes: &[Data]) -> Result<Data, FuncError> {
    if item.value.is_nil() {
        return Err(FuncError::new("index of untyped nil"));
    }
    let mut item = Data::of(item.value.clone());
    for index in indexes {
        if item.is_nil_interface() {
            return Err(FuncError::new("index of nil pointer"));
        }
        let index = &index.value;
        item = match &underlying(&item.value) {
            Value::List(list) => {
                let x = index_arg(index, list.len())?;
                let element = list.get(x).ok_or_else(|| FuncError::new("reflect: slice index out of range"))?;
                Data::boxed(element.clone())
            }
            Value::String(s) => {
                let x = index_arg(index, s.len())?;
                let byte = s.as_bytes().get(x).ok_or_else(|| FuncError::new("reflect: string index out of range"))?;
                Data::of(Value::Int(i64::from(*byte)))
            }
            Value::Map(map) => {
                let key = match index {
                    Value::String(key) => key,
                    Value::Nil => return Err(FuncError::new("value is nil; should be of type string")),
                    other => {
                        return Err(FuncError::new(format!("value has type {}; should be string", other.type_name())));
                    }
                };
                Data::boxed(map.get(key).unwrap_or(Value::Nil))
            }
            other => return Err(FuncError::new(format!("can't index item of type {}", other.type_name()))),
        };
    }
    Ok(item)
}

fn slice(item: &Data, indexes: &[Data]) -> Result<Value, FuncError> {
    if item.value.is_nil() {
        return Err(FuncError::new("slice of untyped nil"));
    }
    if indexes.len() > 3 {
        return Err(FuncError::new(format!("too many slice indexes: {}", indexes.len())));
    }
    let value = underlying(&item.value);
    let len = match &value {
        Value::String(s) => {
            if indexes.len() == 3 {
                return Err(FuncError::new("cannot 3-index slice a string"));
            }
            s.len()
        }
        Value::List(l) => l.len(),
        other => return Err(FuncError::new(format!("can't slice item of type {}", other.type_name()))),
    };
    let mut idx = [0, len, 0];
    for (i, index) in indexes.iter().enumerate() {
        idx[i] = index_arg(&index.value, len)?;
    }
    if idx[0] > idx[1] {
        return Err(FuncError::new(format!("invalid slice index: {} > {}", idx[0], idx[1])));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(FuncError::new(format!("invalid slice index: {} > {}", idx[1], idx[2])));
    }
    Ok(match &value {
        // Go slices bytes; a cut through a UTF-8 sequence shows as U+FFFD here.
        Value::String(s) => Value::from(String::from_utf8_lossy(&s.as_bytes()[idx[0]..idx[1]]).into_owned()),
        Value::List(l) => Value::List(l[idx[0]..idx[1]].into()),
        _ => Value::Nil,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    String,
}

fn basic_kind(value: &Value) -> Kind {
    match underlying(value) {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::Int64(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::String(_) => Kind::String,
        _ => Kind::Invalid,
    }
}

/// reflect.Kind names for the non-basic values, for canCompare.
fn reflect_kind(value: &Value) -> &'static str {
    match value {
        Value::Nil => "invalid",
        Value::List(_) => "slice",
        Value::Map(_) => "map",
        Value::Object(o) if let Some(kind) = o.kind() => kind,
        Value::Object(o) => match o.underlying() {
            Some(Value::List(_)) => "slice",
            Some(Value::Map(_)) => "map",
            _ => "struct",
        },
        _ => "basic",
    }
}

fn same_basic(a: &Value, b: &Value) -> bool {
    match (&underlying(a), &underlying(b)) {
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        _ => false,
    }
}

fn eq(arg1: &Value, others: &[Data]) -> Result<bool, FuncError> {
    if others.is_empty() {
        return Err(FuncError::new("missing argument for comparison"));
    }
    let k1 = basic_kind(arg1);
    for other in others {
        let arg = &other.value;
        let k2 = basic_kind(arg);
        let truth = if k1 != k2 {
            if !arg1.is_nil() && !arg.is_nil() {
                return Err(FuncError::new("incompatible types for comparison"));
            }
            false
        } else if k1 != Kind::Invalid {
            same_basic(arg1, arg)
        } else {
            let (kind1, kind2) = (reflect_kind(arg1), reflect_kind(arg));
            if kind1 != kind2 && kind1 != "invalid" && kind2 != "invalid" {
                let shown1 = gofmt::sprintf("%s", std::slice::from_ref(arg1));
                let shown2 = gofmt::sprint(std::slice::from_ref(arg));
                let prefix = "non-comparable types ";
                let message = format!("{prefix}{shown1}: {}, {}: {shown2}", arg1.type_name(), arg.type_name());
                let end = message.len();
                return Err(FuncError::with_data(message, prefix.len()..end));
            }
            if arg1.is_nil() || arg.is_nil() {
                arg1.is_nil() == arg.is_nil()
            } else {
                match (arg1, arg) {
                    (Value::Object(a), Value::Object(b)) if reflect_kind(arg) == "struct" => Arc::ptr_eq(a, b),
                    _ => {
                        let shown = gofmt::sprintf("%s", std::slice::from_ref(arg));
                        let prefix = "non-comparable type ";
                        let message = format!("{prefix}{shown}: {}", arg.type_name());
                        return Err(FuncError::with_data(message, prefix.len()..prefix.len() + shown.len()));
                    }
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn lt(a: &Value, b: &Value) -> Result<bool, FuncError> {
    let (k1, k2) = (basic_kind(a), basic_kind(b));
    if k1 == Kind::Invalid || k2 == Kind::Invalid {
        return Err(FuncError::new("invalid type for comparison"));
    }
    if k1 != k2 {
        return Err(FuncError::new("incompatible types for comparison"));
    }
    Ok(match (&underlying(a), &underlying(b)) {
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::String(x), Value::String(y)) => x < y,
        _ => return Err(FuncError::new("invalid type for comparison")),
    })
}

fn le(a: &Value, b: &Value) -> Result<bool, FuncError> {
    Ok(lt(a, b)? || eq(a, &[Data::of(b.clone())])?)
}

/// The text of html/js/urlquery's arguments: fmt.Sprint, with a missing value as `<no value>`.
fn eval_args(args: &[Value]) -> String {
    if let [Value::String(s)] = args {
        return s.to_string();
    }
    let printable: Vec<Value> =
        args.iter().map(|v| if v.is_nil() { Value::from("<no value>") } else { v.clone() }).collect();
    gofmt::sprint(&printable)
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u00{:02X}", c as u32)),
            c if !c.is_ascii() && !strconv::is_print(c) => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Go's url.QueryEscape.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(char::from(b)),
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
