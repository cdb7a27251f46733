//! The parser, a port of Go 1.23's text/template/parse/parse.go with its error messages.

use std::sync::Arc;

use crate::ast::{Action, Arg, Branch, Command, Node, Number, Pipe, TemplateCall, Tree};
use crate::error::Error;
use crate::lex::{Item, ItemType, LexOptions, lex};

/// How deeply actions and parentheses may nest. Go has no limit (its stacks grow); a limit keeps a
/// hostile template from overflowing this thread's stack.
pub(crate) const MAX_NESTING: usize = 200;

/// Parses `text` as the template `name`. Returns the trees it defines, the top-level one first, then
/// each `define` and `block` in order.
pub(crate) fn parse(name: &str, text: &str, has_function: &dyn Fn(&str) -> bool) -> Result<Vec<Tree>, Error> {
    let options = LexOptions { break_ok: !has_function("break"), continue_ok: !has_function("continue") };
    let lexed = lex(text, options);
    let mut p = Parser {
        items: lexed.items,
        lex_error: lexed.error,
        next: 0,
        furthest: 0,
        parse_name: Arc::from(name),
        text: Arc::from(text),
        has_function,
        vars: vec!["$".into()],
        range_depth: 0,
        action_line: 0,
        depth: 0,
        trees: Vec::new(),
    };
    let root = p.parse_top()?;
    let top = Tree { name: Arc::from(name), parse_name: p.parse_name.clone(), text: p.text.clone(), root };
    let mut trees = vec![];
    // Go adds definitions to the tree set as it meets them and the top-level tree last; a name defined
    // twice in one text is an error unless one of the two is empty.
    for tree in std::mem::take(&mut p.trees).into_iter().chain(std::iter::once(top)) {
        add_tree(&mut trees, tree, &p)?;
    }
    // Top-level tree first for callers' convenience.
    if let Some(i) = trees.iter().position(|t: &Tree| &*t.name == name) {
        let top = trees.remove(i);
        trees.insert(0, top);
    }
    Ok(trees)
}

fn add_tree(trees: &mut Vec<Tree>, tree: Tree, p: &Parser<'_>) -> Result<(), Error> {
    match trees.iter().position(|t| t.name == tree.name) {
        None => trees.push(tree),
        Some(i) if trees[i].is_empty() => trees[i] = tree,
        Some(_) if tree.is_empty() => {}
        Some(_) => {
            return Err(p.error(format!(
                "template: multiple definition of template {}",
                crate::strconv::quote(&tree.name, false)
            )));
        }
    }
    Ok(())
}

struct Parser<'f> {
    items: Vec<Item<'f>>,
    /// The message of the error item that ends `items`, if one does.
    lex_error: String,
    /// Index of the next item to return.
    next: usize,
    /// Index of the furthest item read: Go's `token[0]`, whose line parse errors report.
    furthest: usize,
    parse_name: Arc<str>,
    text: Arc<str>,
    has_function: &'f dyn Fn(&str) -> bool,
    /// Variables defined at this point of the tree being parsed.
    vars: Vec<Box<str>>,
    range_depth: usize,
    /// Line of the action being parsed, for "in action started at" in lexer errors.
    action_line: usize,
    depth: usize,
    /// Trees of `define` and `block` found so far.
    trees: Vec<Tree>,
}

type Result<T, E = Error> = std::result::Result<T, E>;

impl<'f> Parser<'f> {
    fn item(&self, i: usize) -> &Item<'f> {
        // The lexer always ends the list with an EOF or error item, which the parser never reads past.
        &self.items[i.min(self.items.len() - 1)]
    }

    fn next_item(&mut self) -> Item<'f> {
        let i = self.next.min(self.items.len() - 1);
        self.next = i + 1;
        self.furthest = self.furthest.max(i);
        self.items[i]
    }

    fn backup(&mut self) {
        self.next -= 1;
    }

    fn peek(&mut self) -> Item<'f> {
        let item = self.next_item();
        self.backup();
        item
    }

    fn next_non_space(&mut self) -> Item<'f> {
        loop {
            let item = self.next_item();
            if item.typ != ItemType::Space {
                return item;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item<'f> {
        let item = self.next_non_space();
        self.backup();
        item
    }

    fn error(&self, message: String) -> Error {
        Error::parse(&self.parse_name, self.item(self.furthest).line, message)
    }

    fn unexpected(&self, token: &Item, context: &str) -> Error {
        if token.typ == ItemType::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != token.line {
                extra = format!(" in action started at {}:{}", self.parse_name, self.action_line);
                if self.lex_error.ends_with(" action") {
                    extra = extra[" in action".len()..].to_string();
                }
            }
            return self.error(format!("{}{extra}", self.lex_error));
        }
        self.error(format!("unexpected {token} in {context}"))
    }

    fn expect(&mut self, expected: ItemType, context: &str) -> Result<Item<'f>> {
        let token = self.next_non_space();
        if token.typ != expected {
            return Err(self.unexpected(&token, context));
        }
        Ok(token)
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.error(format!("actions and parentheses nested deeper than {MAX_NESTING} levels")));
        }
        Ok(())
    }

    fn parse_top(&mut self) -> Result<Vec<Node>> {
        let mut root = Vec::new();
        while self.peek().typ != ItemType::Eof {
            if self.peek().typ == ItemType::LeftDelim {
                let delim_at = self.next;
                self.next_item();
                if self.next_non_space().typ == ItemType::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.next = delim_at;
            }
            match self.text_or_action()? {
                Parsed::Node(node) => root.push(node),
                Parsed::End => return Err(self.error("unexpected {{end}}".into())),
                Parsed::Else => return Err(self.error("unexpected {{else}}".into())),
            }
        }
        Ok(root)
    }

    /// A `{{define "name"}} ... {{end}}`, parsed as a tree of its own; the keyword is past.
    fn parse_definition(&mut self) -> Result<()> {
        const CONTEXT: &str = "define clause";
        let token = self.next_non_space();
        if token.typ != ItemType::String && token.typ != ItemType::RawString {
            return Err(self.unexpected(&token, CONTEXT));
        }
        let name = unquote(token.val).map_err(|e| self.error(e))?;
        self.expect(ItemType::RightDelim, CONTEXT)?;
        // A definition has its own variables and loop depth.
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        let (root, end) = self.item_list()?;
        self.vars = saved_vars;
        self.range_depth = saved_range;
        if let Some(end) = end {
            return Err(self.error(format!("unexpected {end} in {CONTEXT}")));
        }
        self.add_definition(Tree {
            name: name.into(),
            parse_name: self.parse_name.clone(),
            text: self.text.clone(),
            root,
        })
    }

    fn add_definition(&mut self, tree: Tree) -> Result<()> {
        let mut trees = std::mem::take(&mut self.trees);
        let result = add_tree(&mut trees, tree, self);
        self.trees = trees;
        result
    }

    /// Nodes up to an `{{end}}` (returns None) or `{{else}}` (returns its text for messages).
    fn item_list(&mut self) -> Result<(Vec<Node>, Option<&'static str>)> {
        let mut list = Vec::new();
        while self.peek_non_space().typ != ItemType::Eof {
            match self.text_or_action()? {
                Parsed::Node(node) => list.push(node),
                Parsed::End => return Ok((list, None)),
                Parsed::Else => return Ok((list, Some("{{else}}"))),
            }
        }
        Err(self.error("unexpected EOF".into()))
    }

    fn text_or_action(&mut self) -> Result<Parsed> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Text => Ok(Parsed::Node(Node::Text(token.val.into()))),
            ItemType::LeftDelim => {
                self.action_line = token.line;
                let result = self.action();
                self.action_line = 0;
                result
            }
            _ => Err(self.unexpected(&token, "input")),
        }
    }

    fn action(&mut self) -> Result<Parsed> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Block => return self.block_control().map(Parsed::Node),
            ItemType::Break => return self.break_or_continue(token.pos, true).map(Parsed::Node),
            ItemType::Continue => return self.break_or_continue(token.pos, false).map(Parsed::Node),
            ItemType::Else => return self.else_control(),
            ItemType::End => {
                self.expect(ItemType::RightDelim, "end")?;
                return Ok(Parsed::End);
            }
            ItemType::If => return self.branch("if").map(Parsed::Node),
            ItemType::Range => return self.branch("range").map(Parsed::Node),
            ItemType::Template => return self.template_control().map(Parsed::Node),
            ItemType::With => return self.branch("with").map(Parsed::Node),
            _ => {}
        }
        self.backup();
        let pos = self.peek().pos;
        // Variables declared here persist until the enclosing control's end.
        let pipe = self.pipeline("command", ItemType::RightDelim)?;
        Ok(Parsed::Node(Node::Action(Action { pos, pipe })))
    }

    fn break_or_continue(&mut self, pos: usize, is_break: bool) -> Result<Node> {
        let keyword = if is_break { "{{break}}" } else { "{{continue}}" };
        let token = self.next_non_space();
        if token.typ != ItemType::RightDelim {
            return Err(self.unexpected(&token, keyword));
        }
        if self.range_depth == 0 {
            return Err(self.error(format!("{keyword} outside {{{{range}}}}")));
        }
        Ok(if is_break { Node::Break(pos) } else { Node::Continue(pos) })
    }

    fn else_control(&mut self) -> Result<Parsed> {
        let peek = self.peek_non_space();
        // "{{else if ..." and "{{else with ..." leave the keyword for the branch to see.
        if peek.typ == ItemType::If || peek.typ == ItemType::With {
            return Ok(Parsed::Else);
        }
        self.expect(ItemType::RightDelim, "else")?;
        Ok(Parsed::Else)
    }

    /// `if`, `range` and `with`, their keyword past.
    fn branch(&mut self, context: &'static str) -> Result<Node> {
        self.enter()?;
        let vars = self.vars.len();
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let list = self.item_list();
        if context == "range" {
            self.range_depth -= 1;
        }
        let (list, next) = list?;
        let mut else_list = None;
        if next.is_some() {
            let peek = self.peek();
            if context == "if" && peek.typ == ItemType::If {
                // {{if a}}_{{else if b}}_{{end}} is {{if a}}_{{else}}{{if b}}_{{end}}{{end}}: one {{end}}.
                self.next_item();
                else_list = Some(vec![self.branch("if")?]);
            } else if context == "with" && peek.typ == ItemType::With {
                self.next_item();
                else_list = Some(vec![self.branch("with")?]);
            } else {
                let (list, next) = self.item_list()?;
                if let Some(next) = next {
                    return Err(self.error(format!("expected end; found {next}")));
                }
                else_list = Some(list);
            }
        }
        self.vars.truncate(vars);
        self.depth -= 1;
        let pos = pipe.pos;
        let branch = Branch { pos, pipe, list, else_list };
        Ok(match context {
            "if" => Node::If(branch),
            "range" => Node::Range(branch),
            _ => Node::With(branch),
        })
    }

    fn block_control(&mut self) -> Result<Node> {
        const CONTEXT: &str = "block clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, ItemType::RightDelim)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        self.enter()?;
        let (root, end) = self.item_list()?;
        self.depth -= 1;
        self.vars = saved_vars;
        self.range_depth = saved_range;
        if let Some(end) = end {
            return Err(self.error(format!("unexpected {end} in {CONTEXT}")));
        }
        let name: Arc<str> = name.into();
        self.add_definition(Tree {
            name: name.clone(),
            parse_name: self.parse_name.clone(),
            text: self.text.clone(),
            root,
        })?;
        Ok(Node::Template(TemplateCall { pos: token.pos, name, pipe: Some(pipe) }))
    }

    fn template_control(&mut self) -> Result<Node> {
        const CONTEXT: &str = "template clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let mut pipe = None;
        if self.next_non_space().typ != ItemType::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(CONTEXT, ItemType::RightDelim)?);
        }
        Ok(Node::Template(TemplateCall { pos: token.pos, name: name.into(), pipe }))
    }

    fn template_name(&self, token: &Item, context: &str) -> Result<String> {
        match token.typ {
            ItemType::String | ItemType::RawString => unquote(token.val).map_err(|e| self.error(e)),
            _ => Err(self.unexpected(token, context)),
        }
    }

    /// declarations? command ('|' command)*
    fn pipeline(&mut self, context: &str, end: ItemType) -> Result<Pipe> {
        let token = self.peek_non_space();
        let mut pipe = Pipe { pos: token.pos, is_assign: false, decl: Vec::new(), cmds: Vec::new() };
        'decls: loop {
            let v = self.peek_non_space();
            if v.typ != ItemType::Variable {
                break;
            }
            let at_variable = self.next;
            self.next_item();
            let next = self.peek_non_space();
            match next.typ {
                ItemType::Assign | ItemType::Declare => {
                    pipe.is_assign = next.typ == ItemType::Assign;
                    self.next_non_space();
                    pipe.decl.push(v.val.into());
                    self.vars.push(v.val.into());
                }
                ItemType::Char if next.val == "," => {
                    self.next_non_space();
                    pipe.decl.push(v.val.into());
                    self.vars.push(v.val.into());
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().typ {
                            ItemType::Variable | ItemType::RightDelim | ItemType::RightParen => continue 'decls,
                            _ => return Err(self.error("range can only initialize variables".into())),
                        }
                    }
                    return Err(self.error(format!("too many declarations in {context}")));
                }
                // "$x foo": $x is an operand, not a declaration.
                _ => self.next = at_variable,
            }
            break;
        }
        loop {
            let token = self.next_non_space();
            match token.typ {
                t if t == end => {
                    self.check_pipeline(&pipe, context)?;
                    return Ok(pipe);
                }
                ItemType::Bool
                | ItemType::CharConstant
                | ItemType::Complex
                | ItemType::Dot
                | ItemType::Field
                | ItemType::Identifier
                | ItemType::Number
                | ItemType::Nil
                | ItemType::RawString
                | ItemType::String
                | ItemType::Variable
                | ItemType::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return Err(self.unexpected(&token, context)),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> Result<()> {
        if pipe.cmds.is_empty() {
            return Err(self.error(format!("missing value for {context}")));
        }
        // Only the first command of a pipeline can start with a non-executable operand.
        for (i, cmd) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(cmd.args[0], Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number(..) | Arg::String { .. }) {
                return Err(self.error(format!("non executable command in pipeline stage {}", i + 1)));
            }
        }
        Ok(())
    }

    /// operand (space operand)*, up to a pipe character or the closing delimiter or parenthesis.
    fn command(&mut self) -> Result<Command> {
        let pos = self.peek_non_space().pos;
        let mut args = Vec::new();
        loop {
            self.peek_non_space(); // skip leading spaces
            if let Some(operand) = self.operand()? {
                args.push(operand);
            }
            let token = self.next_item();
            match token.typ {
                ItemType::Space => continue,
                ItemType::RightDelim | ItemType::RightParen => self.backup(),
                ItemType::Pipe => {}
                _ => return Err(self.unexpected(&token, "operand")),
            }
            break;
        }
        if args.is_empty() {
            return Err(self.error("empty command".into()));
        }
        Ok(Command { pos, args })
    }

    /// term .Field*
    fn operand(&mut self) -> Result<Option<Arg>> {
        let Some(node) = self.term()? else { return Ok(None) };
        if self.peek().typ != ItemType::Field {
            return Ok(Some(node));
        }
        let pos = self.peek().pos;
        let mut fields: Vec<Box<str>> = Vec::new();
        while self.peek().typ == ItemType::Field {
            let field = self.next_item();
            fields.push(field.val[1..].into());
        }
        // Fields after a field or variable extend it; after a literal they are an error.
        Ok(Some(match node {
            Arg::Field { mut idents, .. } => {
                idents.extend(fields);
                Arg::Field { pos, idents }
            }
            Arg::Variable { mut idents, .. } => {
                idents.extend(fields);
                Arg::Variable { pos, idents }
            }
            Arg::Bool(..) | Arg::String { .. } | Arg::Number(..) | Arg::Nil(_) | Arg::Dot(_) => {
                return Err(
                    self.error(format!("unexpected . after term {}", crate::strconv::quote(&node.to_string(), false)))
                );
            }
            node => Arg::Chain { pos, node: Box::new(node), fields },
        }))
    }

    fn term(&mut self) -> Result<Option<Arg>> {
        let token = self.next_non_space();
        Ok(Some(match token.typ {
            ItemType::Identifier => {
                if !(self.has_function)(token.val) {
                    return Err(self.error(format!("function {} not defined", crate::strconv::quote(token.val, false))));
                }
                Arg::Identifier { pos: token.pos, name: token.val.into() }
            }
            ItemType::Dot => Arg::Dot(token.pos),
            ItemType::Nil => Arg::Nil(token.pos),
            ItemType::Variable => {
                if !self.vars.iter().any(|v| **v == *token.val) {
                    return Err(self.error(format!("undefined variable {}", crate::strconv::quote(token.val, false))));
                }
                Arg::Variable { pos: token.pos, idents: vec![token.val.into()] }
            }
            ItemType::Field => Arg::Field { pos: token.pos, idents: vec![token.val[1..].into()] },
            ItemType::Bool => Arg::Bool(token.pos, token.val == "true"),
            ItemType::CharConstant | ItemType::Complex | ItemType::Number => {
                let number = parse_number(token.val, token.typ).map_err(|e| self.error(e))?;
                Arg::Number(token.pos, Box::new(number))
            }
            ItemType::LeftParen => {
                self.enter()?;
                let pipe = self.pipeline("parenthesized pipeline", ItemType::RightParen)?;
                self.depth -= 1;
                Arg::Pipe(Box::new(pipe))
            }
            ItemType::String | ItemType::RawString => {
                let text = unquote(token.val).map_err(|e| self.error(e))?;
                Arg::String { pos: token.pos, quoted: token.val.into(), text: text.into() }
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

enum Parsed {
    Node(Node),
    End,
    /// `{{else}}`, possibly followed by an `if` or `with` the branch parser consumes.
    Else,
}

/// Go's `strconv.Unquote` for "..." and `...` literals.
pub(crate) fn unquote(quoted: &str) -> std::result::Result<String, String> {
    const SYNTAX: &str = "invalid syntax";
    if let Some(raw) = quoted.strip_prefix('`') {
        let raw = raw.strip_suffix('`').ok_or(SYNTAX)?;
        if raw.contains('`') {
            return Err(SYNTAX.into());
        }
        // Carriage returns are discarded from raw strings.
        return Ok(raw.replace('\r', ""));
    }
    let body = quoted.strip_prefix('"').and_then(|s| s.strip_suffix('"')).ok_or(SYNTAX)?;
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while !rest.is_empty() {
        let (c, tail) = unquote_char(rest, '"').map_err(|_| SYNTAX.to_string())?;
        match c {
            Unquoted::Char(c) => out.push(c),
            Unquoted::Byte(b) => out.push(char::from(b)),
        }
        rest = tail;
    }
    Ok(out)
}

enum Unquoted {
    Char(char),
    /// A `\x` or octal escape above 0x7F: a raw byte in Go; kept as the Latin-1 character here.
    Byte(u8),
}

/// Go's `strconv.UnquoteChar`.
fn unquote_char(s: &str, quote: char) -> std::result::Result<(Unquoted, &str), ()> {
    let mut chars = s.chars();
    let c = chars.next().ok_or(())?;
    if c == quote && (quote == '\'' || quote == '"') {
        return Err(());
    }
    if c != '\\' {
        if c == '\n' {
            return Err(());
        }
        return Ok((Unquoted::Char(c), chars.as_str()));
    }
    let e = chars.next().ok_or(())?;
    let rest = chars.as_str();
    let simple = match e {
        'a' => Some('\x07'),
        'b' => Some('\x08'),
        'f' => Some('\x0C'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\x0B'),
        '\\' => Some('\\'),
        '\'' | '"' if e == quote => Some(e),
        _ => None,
    };
    if let Some(c) = simple {
        return Ok((Unquoted::Char(c), rest));
    }
    let hex = |n: usize| -> std::result::Result<(u32, &str), ()> {
        let digits = rest.get(..n).ok_or(())?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(());
        }
        Ok((u32::from_str_radix(digits, 16).map_err(|_| ())?, &rest[n..]))
    };
    match e {
        'x' => {
            let (v, tail) = hex(2)?;
            let b = u8::try_from(v).map_err(|_| ())?;
            Ok((if b < 0x80 { Unquoted::Char(char::from(b)) } else { Unquoted::Byte(b) }, tail))
        }
        'u' | 'U' => {
            let (v, tail) = hex(if e == 'u' { 4 } else { 8 })?;
            Ok((Unquoted::Char(char::from_u32(v).ok_or(())?), tail))
        }
        '0'..='7' => {
            let digits = s.get(1..4).ok_or(())?;
            if !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return Err(());
            }
            let v = u32::from_str_radix(digits, 8).map_err(|_| ())?;
            let b = u8::try_from(v).map_err(|_| ())?;
            Ok((if b < 0x80 { Unquoted::Char(char::from(b)) } else { Unquoted::Byte(b) }, &s[4..]))
        }
        _ => Err(()),
    }
}

/// Go's `newNumber`: what the literal can be (int, float), or Go's error.
fn parse_number(text: &str, typ: ItemType) -> std::result::Result<Number, String> {
    let mut n = Number { text: text.into(), int: None, uint_only: false, float: None, complex: false };
    if typ == ItemType::CharConstant {
        let inner = &text[1..];
        let (c, tail) = unquote_char(inner, '\'').map_err(|_| "invalid syntax".to_string())?;
        if tail != "'" {
            return Err(format!("malformed character constant: {text}"));
        }
        let code = match c {
            Unquoted::Char(c) => i64::from(u32::from(c)),
            Unquoted::Byte(b) => i64::from(b),
        };
        n.int = Some(code);
        n.float = Some(code as f64);
        return Ok(n);
    }
    if typ == ItemType::Complex || text.ends_with('i') {
        // Complex literals parse, but templates here cannot compute with them.
        n.complex = true;
        return Ok(n);
    }
    let as_uint = parse_go_uint(text);
    let as_int = parse_go_int(text);
    if let Some(i) = as_int {
        n.int = Some(i);
        n.float = Some(i as f64);
    } else if let Some(u) = as_uint {
        n.uint_only = true;
        n.float = Some(u as f64);
    } else if let Some(f) = parse_go_float(text) {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {}", crate::strconv::quote(text, false)));
        }
        n.float = Some(f);
        if f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
            n.int = Some(f as i64);
        }
    }
    if n.int.is_none() && n.float.is_none() && !n.uint_only {
        return Err(format!("illegal number syntax: {}", crate::strconv::quote(text, false)));
    }
    Ok(n)
}

/// Digits of a Go integer literal with base prefix, underscores checked as `strconv` (base 0) does.
fn split_int_literal(text: &str) -> Option<(bool, u32, String)> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    let (base, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower, false)
    };
    if digits.contains('_') && !underscores_ok(if prefixed { &body[..body.len() - digits.len()] } else { "" }, &digits)
    {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() {
        return None;
    }
    Some((neg, base, clean))
}

// Underscores only between digits, or between the base prefix and a digit.
fn underscores_ok(prefix: &str, digits: &str) -> bool {
    let mut prev_digit = !prefix.is_empty() && prefix != "0";
    let mut prev_underscore = false;
    for c in digits.chars() {
        if c == '_' {
            if !prev_digit {
                return false;
            }
            prev_underscore = true;
            prev_digit = false;
        } else {
            prev_digit = true;
            prev_underscore = false;
        }
    }
    !prev_underscore
}

fn parse_go_uint(text: &str) -> Option<u64> {
    let (neg, base, digits) = split_int_literal(text)?;
    if neg || text.starts_with('+') {
        return None;
    }
    u64::from_str_radix(&digits, base).ok()
}

fn parse_go_int(text: &str) -> Option<i64> {
    let (neg, base, digits) = split_int_literal(text)?;
    let magnitude = u64::from_str_radix(&digits, base).ok()?;
    if neg {
        if magnitude <= 1 << 63 { Some((magnitude as i64).wrapping_neg()) } else { None }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Go's `strconv.ParseFloat(text, 64)` for decimal syntax; out-of-range values are errors, as there.
fn parse_go_float(text: &str) -> Option<f64> {
    parse_decimal_float(text).filter(|f| f.is_finite())
}

fn parse_decimal_float(text: &str) -> Option<f64> {
    let body = text.trim_start_matches(['+', '-']);
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        return parse_hex_float(hex).map(|f| if text.starts_with('-') { -f } else { f });
    }
    if text.contains('_') {
        let digits_only = text.replace('_', "");
        // Underscores must sit between digits.
        let b = text.as_bytes();
        for (i, c) in b.iter().enumerate() {
            if *c == b'_' && !(i > 0 && b[i - 1].is_ascii_digit() && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
                return None;
            }
        }
        return digits_only.parse().ok();
    }
    // Rust accepts "inf"/"nan", which Go's lexer never produces as numbers.
    if body.starts_with(|c: char| c.is_ascii_digit() || c == '.') { text.parse().ok() } else { None }
}

/// A hexadecimal float's digits after `0x`: a mantissa (with an optional point) and a
/// mandatory binary exponent, `1.8p+01`; underscores may separate digits, as in Go.
fn parse_hex_float(hex: &str) -> Option<f64> {
    let (mantissa, exp) = hex.split_once(['p', 'P'])?;
    let exp: i32 = exp.parse().ok().filter(|_| !exp.contains('_'))?;
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let (int, frac) = (int.replace('_', ""), frac.replace('_', ""));
    if int.is_empty() && frac.is_empty() || !underscores_ok("0x", mantissa.trim_start_matches('.')) {
        return None;
    }
    // Accumulate up to 60 significant bits exactly; later digits only scale (Go rounds them in;
    // templates never write hex floats that long).
    let mut value: u64 = 0;
    let mut scale = exp;
    for (i, c) in int.chars().chain(frac.chars()).enumerate() {
        let digit = u64::from(c.to_digit(16)?);
        if value >> 56 == 0 {
            value = value << 4 | digit;
            if i >= int.len() {
                scale -= 4;
            }
        } else if i < int.len() {
            scale += 4;
        }
    }
    Some(value as f64 * 2f64.powi(scale)).filter(|f| f.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match parse("t", text, &|name| name == "f") {
            Ok(_) => "ok".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn numbers() {
        let n = |s: &str| parse_number(s, ItemType::Number).map(|n| (n.int, n.float));
        assert_eq!(n("0x1F"), Ok((Some(31), Some(31.0))));
        assert_eq!(n("0o17"), Ok((Some(15), Some(15.0))));
        assert_eq!(n("017"), Ok((Some(15), Some(15.0))));
        assert_eq!(n("0b101"), Ok((Some(5), Some(5.0))));
        assert_eq!(n("1_000"), Ok((Some(1000), Some(1000.0))));
        assert_eq!(n("1e3"), Ok((Some(1000), Some(1000.0))));
        assert_eq!(n("1.5"), Ok((None, Some(1.5))));
        assert_eq!(n("0x1p60"), Ok((Some(1 << 60), Some(1_152_921_504_606_846_976.0))));
        assert_eq!(n("0X1.8P+01"), Ok((Some(3), Some(3.0))));
        assert_eq!(n("0x.8p-1"), Ok((None, Some(0.25))));
        assert_eq!(n("0x1_0p0"), Ok((Some(16), Some(16.0))));
        assert_eq!(n("08"), Err("integer overflow: \"08\"".into()));
        assert_eq!(n("99999999999999999999"), Err("integer overflow: \"99999999999999999999\"".into()));
        assert_eq!(parse_number("'a'", ItemType::CharConstant).map(|n| n.int), Ok(Some(97)));
        assert_eq!(parse_number("'\\n'", ItemType::CharConstant).map(|n| n.int), Ok(Some(10)));
    }

    #[test]
    fn errors() {
        assert_eq!(err("{{ .a "), "template: t:1: unclosed action");
        assert_eq!(err("{{ g }}"), "template: t:1: function \"g\" not defined");
        assert_eq!(err("{{ f }}"), "ok");
        assert_eq!(err("{{ $x }}"), "template: t:1: undefined variable \"$x\"");
        assert_eq!(err("{{ if . }}\n"), "template: t:2: unexpected EOF");
        assert_eq!(err("{{ end }}"), "template: t:1: unexpected {{end}}");
        assert_eq!(err("{{ break }}"), "template: t:1: {{break}} outside {{range}}");
        assert_eq!(err("{{ . | 1 }}"), "template: t:1: non executable command in pipeline stage 2");
        assert_eq!(
            err("{{define \"a\"}}x{{end}}{{define \"a\"}}y{{end}}"),
            "template: t:1: template: multiple definition of template \"a\""
        );
        assert_eq!(err("{{ \"a\".b }}"), "template: t:1: unexpected . after term \"\\\"a\\\"\"");
        let deep = format!("{}{}", "{{ if . }}".repeat(MAX_NESTING + 1), "{{ end }}".repeat(MAX_NESTING + 1));
        assert!(err(&deep).contains("nested deeper"));
    }
}
