//! `fromToml`'s reading, as helm's BurntSushi/toml v1.4 reads: its lexer (a state machine, the
//! same states in the same order) and its parser, so that a malformed text gets the error helm
//! prints, word for word, with the line BurntSushi counts (`line 0` for an end of input on the
//! first line, the key it was reading) and what it accepts, it accepts alike (`a.b = 1` then
//! `a = 2` is no error there, and `a` stays the table).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

use gotemplate::{Map, Value};

/// BurntSushi's `eof` rune.
const EOF: char = '\0';

/// A decoded value as the parser keeps it: Go's `map[string]any` and `[]map[string]any` are
/// references, which later lines add to.
#[derive(Clone)]
enum Any {
    Scalar(Value),
    Array(Vec<Any>),
    Table(Table),
    Tables(Rc<RefCell<Vec<Table>>>),
}

type Table = Rc<RefCell<BTreeMap<String, Any>>>;

fn table() -> Table {
    Rc::new(RefCell::new(BTreeMap::new()))
}

/// The map `toml.Unmarshal` into `map[string]interface{}` gives, or its error's text
/// (`toml: line 3 (last key "a"): …`).
pub fn decode(text: &str) -> Result<Value, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // A NUL among the first bytes: probably UTF-16.
    if text.as_bytes().iter().take(6).any(|b| *b == 0) {
        let message = "files cannot contain NULL bytes; probably using UTF-16; TOML files must be UTF-8";
        return Err(ParseError { line: 1, last_key: String::new(), message: message.into() }.to_string());
    }
    let mut parser = Parser {
        items: Lexer::run(text).into_iter(),
        context: Vec::new(),
        current_key: String::new(),
        pos_line: 0,
        types: HashMap::new(),
        mapping: table(),
        implicits: HashSet::new(),
    };
    parser.parse().map_err(|e| e.to_string())?;
    Ok(value(&Any::Table(parser.mapping)))
}

fn value(any: &Any) -> Value {
    match any {
        Any::Scalar(value) => value.clone(),
        Any::Array(items) => Value::from(items.iter().map(value).collect::<Vec<_>>()),
        Any::Table(table) => map(table),
        Any::Tables(tables) => Value::from(tables.borrow().iter().map(map).collect::<Vec<_>>()),
    }
}

fn map(table: &Table) -> Value {
    let out = Map::new();
    for (key, item) in table.borrow().iter() {
        out.insert(key.clone(), value(item));
    }
    Value::Map(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemType {
    Error,
    Eof,
    Text,
    String,
    StringEsc,
    RawString,
    MultilineString,
    RawMultilineString,
    Bool,
    Integer,
    Float,
    Datetime,
    Array,
    ArrayEnd,
    TableStart,
    TableEnd,
    ArrayTableStart,
    ArrayTableEnd,
    KeyStart,
    KeyEnd,
    CommentStart,
    InlineTableStart,
    InlineTableEnd,
}

#[derive(Debug, Clone)]
struct Item {
    typ: ItemType,
    /// The text, or an error's message.
    val: String,
    line: i64,
}

/// A state of the lexer: what it does with the next runes, and the state after.
#[derive(Clone, Copy)]
struct St(fn(&mut Lexer) -> Option<St>);

struct Lexer<'a> {
    input: &'a str,
    start: usize,
    pos: usize,
    line: i64,
    items: Vec<Item>,
    esc: bool,
    prev_widths: [usize; 4],
    nprev: usize,
    at_eof: bool,
    stack: Vec<St>,
}

impl<'a> Lexer<'a> {
    /// Every item up to the end of input or the first error: BurntSushi's parser reads them one
    /// by one and stops at the first error, where its lexer stops too.
    fn run(input: &'a str) -> Vec<Item> {
        let mut lx = Lexer {
            input,
            start: 0,
            pos: 0,
            line: 1,
            items: Vec::new(),
            esc: false,
            prev_widths: [0; 4],
            nprev: 0,
            at_eof: false,
            stack: Vec::new(),
        };
        let mut state = Some(St(lex_top));
        while let Some(St(f)) = state {
            if lx.items.last().is_some_and(|i| matches!(i.typ, ItemType::Error | ItemType::Eof)) {
                break;
            }
            state = f(&mut lx);
        }
        lx.items
    }

    fn push(&mut self, state: fn(&mut Lexer) -> Option<St>) {
        self.stack.push(St(state));
    }

    fn pop(&mut self) -> Option<St> {
        match self.stack.pop() {
            Some(state) => Some(state),
            None => self.errorf("BUG in lexer: no states to pop".into()),
        }
    }

    fn current(&self) -> &'a str {
        &self.input[self.start.min(self.pos)..self.pos]
    }

    fn emit(&mut self, typ: ItemType) {
        let val = self.current().to_string();
        self.items.push(Item { typ, val, line: self.line });
        self.start = self.pos;
    }

    fn emit_trim(&mut self, typ: ItemType) {
        let val = self.current().trim().to_string();
        self.items.push(Item { typ, val, line: self.line });
        self.start = self.pos;
    }

    fn next(&mut self) -> char {
        if self.at_eof || self.pos >= self.input.len() {
            self.at_eof = true;
            return EOF;
        }
        let bytes = self.input.as_bytes();
        if bytes[self.pos] == b'\n' {
            self.line += 1;
        }
        self.prev_widths = [self.prev_widths[0], self.prev_widths[0], self.prev_widths[1], self.prev_widths[2]];
        if self.nprev < 4 {
            self.nprev += 1;
        }
        let r = self.input[self.pos..].chars().next().unwrap_or(EOF);
        let bare_cr = r == '\r' && bytes.get(self.pos + 1) != Some(&b'\n');
        if is_control(r) || bare_cr {
            self.error_at_line(format!("TOML files cannot contain control characters: '0x{:02x}'", r as u32));
            return char::REPLACEMENT_CHARACTER;
        }
        self.prev_widths[0] = r.len_utf8();
        self.pos += r.len_utf8();
        r
    }

    fn ignore(&mut self) {
        self.start = self.pos;
    }

    fn backup(&mut self) {
        if self.at_eof {
            self.at_eof = false;
            return;
        }
        if self.nprev < 1 {
            return;
        }
        let w = self.prev_widths[0];
        self.prev_widths = [self.prev_widths[1], self.prev_widths[2], self.prev_widths[3], 0];
        self.nprev -= 1;
        self.pos -= w;
        if self.input.as_bytes().get(self.pos) == Some(&b'\n') {
            self.line -= 1;
        }
    }

    fn accept(&mut self, valid: char) -> bool {
        if self.next() == valid {
            return true;
        }
        self.backup();
        false
    }

    fn peek(&mut self) -> char {
        let r = self.next();
        self.backup();
        r
    }

    fn skip(&mut self, pred: fn(char) -> bool) {
        loop {
            let r = self.next();
            if pred(r) {
                continue;
            }
            self.backup();
            self.ignore();
            return;
        }
    }

    /// An error at the current line.
    fn error_at_line(&mut self, message: String) {
        self.items.push(Item { typ: ItemType::Error, val: message, line: self.line });
    }

    /// `error` and `errorf`: at the end of input, on the line before (BurntSushi's, so that
    /// an unexpected end does not show on a new blank line).
    fn errorf(&mut self, message: String) -> Option<St> {
        match self.at_eof {
            true => self.error_prev_line(message),
            false => {
                self.error_at_line(message);
                None
            }
        }
    }

    fn error_prev_line(&mut self, message: String) -> Option<St> {
        self.items.push(Item { typ: ItemType::Error, val: message, line: self.line - 1 });
        None
    }
}

fn skip_to(lx: &mut Lexer, next: fn(&mut Lexer) -> Option<St>) -> Option<St> {
    lx.ignore();
    Some(St(next))
}

/// Go's `%q` of a rune.
fn q(r: char) -> String {
    gotemplate::strconv::quote_rune(r, false)
}

/// Go's `%q` of a string.
fn qs(s: &str) -> String {
    gotemplate::strconv::quote(s, false)
}

fn rune_or_eof(r: char) -> String {
    match r {
        EOF => "end of file".into(),
        r => format!("'{r}'"),
    }
}

fn lex_top(lx: &mut Lexer) -> Option<St> {
    let r = lx.next();
    if is_whitespace(r) || is_nl(r) {
        return skip_to(lx, lex_top);
    }
    match r {
        '#' => {
            lx.push(lex_top);
            return Some(St(lex_comment_start));
        }
        '[' => return Some(St(lex_table_start)),
        EOF => {
            if lx.pos > lx.start {
                return lx.errorf("unexpected EOF".into());
            }
            lx.emit(ItemType::Eof);
            return None;
        }
        _ => {}
    }
    lx.backup();
    lx.push(lex_top_end);
    Some(St(lex_key_start))
}

fn lex_top_end(lx: &mut Lexer) -> Option<St> {
    let r = lx.next();
    match r {
        '#' => {
            lx.push(lex_top);
            Some(St(lex_comment_start))
        }
        r if is_whitespace(r) => Some(St(lex_top_end)),
        r if is_nl(r) => {
            lx.ignore();
            Some(St(lex_top))
        }
        EOF => {
            lx.emit(ItemType::Eof);
            None
        }
        r => lx.errorf(format!(
            "expected a top-level item to end with a newline, comment, or EOF, but got {} instead",
            q(r)
        )),
    }
}

fn lex_table_start(lx: &mut Lexer) -> Option<St> {
    if lx.peek() == '[' {
        lx.next();
        lx.emit(ItemType::ArrayTableStart);
        lx.push(lex_array_table_end);
    } else {
        lx.emit(ItemType::TableStart);
        lx.push(lex_table_end);
    }
    Some(St(lex_table_name_start))
}

fn lex_table_end(lx: &mut Lexer) -> Option<St> {
    lx.emit(ItemType::TableEnd);
    Some(St(lex_top_end))
}

fn lex_array_table_end(lx: &mut Lexer) -> Option<St> {
    let r = lx.next();
    if r != ']' {
        return lx.errorf(format!("expected end of table array name delimiter ']', but got {} instead", q(r)));
    }
    lx.emit(ItemType::ArrayTableEnd);
    Some(St(lex_top_end))
}

fn lex_table_name_start(lx: &mut Lexer) -> Option<St> {
    lx.skip(is_whitespace);
    match lx.peek() {
        ']' | EOF => lx.errorf("unexpected end of table name (table names cannot be empty)".into()),
        '.' => lx.errorf("unexpected table separator (table names cannot be empty)".into()),
        '"' | '\'' => {
            lx.ignore();
            lx.push(lex_table_name_end);
            Some(St(lex_quoted_name))
        }
        _ => {
            lx.push(lex_table_name_end);
            Some(St(lex_bare_name))
        }
    }
}

fn lex_table_name_end(lx: &mut Lexer) -> Option<St> {
    lx.skip(is_whitespace);
    match lx.next() {
        r if is_whitespace(r) => Some(St(lex_table_name_end)),
        '.' => {
            lx.ignore();
            Some(St(lex_table_name_start))
        }
        ']' => lx.pop(),
        r => lx.errorf(format!("expected '.' or ']' to end table name, but got {} instead", q(r))),
    }
}

fn lex_bare_name(lx: &mut Lexer) -> Option<St> {
    let r = lx.next();
    if is_bare_key_char(r) {
        return Some(St(lex_bare_name));
    }
    lx.backup();
    lx.emit(ItemType::Text);
    lx.pop()
}

fn lex_quoted_name(lx: &mut Lexer) -> Option<St> {
    match lx.next() {
        r if is_whitespace(r) => skip_to(lx, lex_value),
        '"' => {
            lx.ignore();
            Some(St(lex_string))
        }
        '\'' => {
            lx.ignore();
            Some(St(lex_raw_string))
        }
        EOF => lx.errorf("unexpected EOF; expected value".into()),
        r => lx.errorf(format!("expected value but found {} instead", q(r))),
    }
}

fn lex_key_start(lx: &mut Lexer) -> Option<St> {
    lx.skip(is_whitespace);
    match lx.peek() {
        '=' | EOF => lx.errorf("unexpected '=': key name appears blank".into()),
        '.' => lx.errorf("unexpected '.': keys cannot start with a '.'".into()),
        r => {
            if r == '"' || r == '\'' {
                lx.ignore();
            }
            lx.emit(ItemType::KeyStart);
            Some(St(lex_key_name_start))
        }
    }
}

fn lex_key_name_start(lx: &mut Lexer) -> Option<St> {
    lx.skip(is_whitespace);
    match lx.peek() {
        '=' | EOF => lx.errorf("unexpected '='".into()),
        '.' => lx.errorf("unexpected '.'".into()),
        '"' | '\'' => {
            lx.ignore();
            lx.push(lex_key_end);
            Some(St(lex_quoted_name))
        }
        _ => {
            lx.push(lex_key_end);
            Some(St(lex_bare_name))
        }
    }
}

fn lex_key_end(lx: &mut Lexer) -> Option<St> {
    lx.skip(is_whitespace);
    match lx.next() {
        r if is_whitespace(r) => skip_to(lx, lex_key_end),
        EOF => lx.errorf("unexpected EOF; expected key separator '='".into()),
        '.' => {
            lx.ignore();
            Some(St(lex_key_name_start))
        }
        '=' => {
            lx.emit(ItemType::KeyEnd);
            skip_to(lx, lex_value)
        }
        r => lx.errorf(format!("expected '.' or '=', but got {} instead", q(r))),
    }
}

fn lex_value(lx: &mut Lexer) -> Option<St> {
    let r = lx.next();
    if is_whitespace(r) {
        return skip_to(lx, lex_value);
    }
    if r.is_ascii_digit() {
        lx.backup();
        return Some(St(lex_number_or_date_start));
    }
    match r {
        '[' => {
            lx.ignore();
            lx.emit(ItemType::Array);
            return Some(St(lex_array_value));
        }
        '{' => {
            lx.ignore();
            lx.emit(ItemType::InlineTableStart);
            return Some(St(lex_inline_table_value));
        }
        '"' => {
            if lx.accept('"') {
                if lx.accept('"') {
                    lx.ignore();
                    return Some(St(lex_multiline_string));
                }
                lx.backup();
            }
            lx.ignore();
            return Some(St(lex_string));
        }
        '\'' => {
            if lx.accept('\'') {
                if lx.accept('\'') {
                    lx.ignore();
                    return Some(St(lex_multiline_raw_string));
                }
                lx.backup();
            }
            lx.ignore();
            return Some(St(lex_raw_string));
        }
        '.' => return lx.errorf("floats must start with a digit, not '.'".into()),
        'i' | 'n' if (lx.accept('n') && lx.accept('f')) || (lx.accept('a') && lx.accept('n')) => {
            lx.emit(ItemType::Float);
            return lx.pop();
        }
        '-' | '+' => return Some(St(lex_decimal_number_start)),
        _ => {}
    }
    if r.is_alphabetic() {
        lx.backup();
        return Some(St(lex_bool));
    }
    if r == EOF {
        return lx.errorf("unexpected EOF; expected value".into());
    }
    lx.errorf(format!("expected value but found {} instead", q(r)))
}

fn lex_array_value(lx: &mut Lexer) -> Option<St> {
    let r = lx.next();
    match r {
        r if is_whitespace(r) || is_nl(r) => return skip_to(lx, lex_array_value),
        '#' => {
            lx.push(lex_array_value);
            return Some(St(lex_comment_start));
        }
        ',' => return lx.errorf("unexpected comma".into()),
        ']' => return Some(St(lex_array_end)),
        _ => {}
    }
    lx.backup();
    lx.push(lex_array_value_end);
    Some(St(lex_value))
}

fn lex_array_value_end(lx: &mut Lexer) -> Option<St> {
    match lx.next() {
        r if is_whitespace(r) || is_nl(r) => skip_to(lx, lex_array_value_end),
        '#' => {
            lx.push(lex_array_value_end);
            Some(St(lex_comment_start))
        }
        ',' => {
            lx.ignore();
            Some(St(lex_array_value))
        }
        ']' => Some(St(lex_array_end)),
        r => lx.errorf(format!("expected a comma (',') or array terminator (']'), but got {}", rune_or_eof(r))),
    }
}

fn lex_array_end(lx: &mut Lexer) -> Option<St> {
    lx.ignore();
    lx.emit(ItemType::ArrayEnd);
    lx.pop()
}

const INLINE_TABLE_NL: &str = "newlines not allowed within inline tables";

fn lex_inline_table_value(lx: &mut Lexer) -> Option<St> {
    let r = lx.next();
    match r {
        r if is_whitespace(r) => return skip_to(lx, lex_inline_table_value),
        r if is_nl(r) => return lx.error_prev_line(INLINE_TABLE_NL.into()),
        '#' => {
            lx.push(lex_inline_table_value);
            return Some(St(lex_comment_start));
        }
        ',' => return lx.errorf("unexpected comma".into()),
        '}' => return Some(St(lex_inline_table_end)),
        _ => {}
    }
    lx.backup();
    lx.push(lex_inline_table_value_end);
    Some(St(lex_key_start))
}

fn lex_inline_table_value_end(lx: &mut Lexer) -> Option<St> {
    match lx.next() {
        r if is_whitespace(r) => skip_to(lx, lex_inline_table_value_end),
        r if is_nl(r) => lx.error_prev_line(INLINE_TABLE_NL.into()),
        '#' => {
            lx.push(lex_inline_table_value_end);
            Some(St(lex_comment_start))
        }
        ',' => {
            lx.ignore();
            lx.skip(is_whitespace);
            if lx.peek() == '}' {
                return lx.errorf("trailing comma not allowed in inline tables".into());
            }
            Some(St(lex_inline_table_value))
        }
        '}' => Some(St(lex_inline_table_end)),
        r => lx
            .errorf(format!("expected a comma or an inline table terminator '}}', but got {} instead", rune_or_eof(r))),
    }
}

fn lex_inline_table_end(lx: &mut Lexer) -> Option<St> {
    lx.ignore();
    lx.emit(ItemType::InlineTableEnd);
    lx.pop()
}

const STRING_NL: &str = "strings cannot contain newlines";

fn lex_string(lx: &mut Lexer) -> Option<St> {
    match lx.next() {
        EOF => lx.errorf("unexpected EOF; expected '\"'".into()),
        r if is_nl(r) => lx.error_prev_line(STRING_NL.into()),
        '\\' => {
            lx.push(lex_string);
            Some(St(lex_string_escape))
        }
        '"' => {
            lx.backup();
            if lx.esc {
                lx.esc = false;
                lx.emit(ItemType::StringEsc);
            } else {
                lx.emit(ItemType::String);
            }
            lx.next();
            lx.ignore();
            lx.pop()
        }
        _ => Some(St(lex_string)),
    }
}

fn lex_multiline_string(lx: &mut Lexer) -> Option<St> {
    match lx.next() {
        EOF => lx.errorf("unexpected EOF; expected '\"\"\"'".into()),
        '\\' => Some(St(lex_multiline_string_escape)),
        '"' => {
            // Five quotes, not escaped, and a sixth: too many.
            let too_many = |current: &str| current.ends_with("\"\"\"\"\"") && !current.ends_with("\\\"\"\"\"\"");
            let message = "unexpected '\"\"\"\"\"\"'";
            multiline_quote(lx, '"', (ItemType::MultilineString, too_many, message), lex_multiline_string)
        }
        _ => Some(St(lex_multiline_string)),
    }
}

fn lex_raw_string(lx: &mut Lexer) -> Option<St> {
    match lx.next() {
        EOF => lx.errorf("unexpected EOF; expected \"'\"".into()),
        r if is_nl(r) => lx.error_prev_line(STRING_NL.into()),
        '\'' => {
            lx.backup();
            lx.emit(ItemType::RawString);
            lx.next();
            lx.ignore();
            lx.pop()
        }
        _ => Some(St(lex_raw_string)),
    }
}

fn lex_multiline_raw_string(lx: &mut Lexer) -> Option<St> {
    match lx.next() {
        EOF => lx.errorf("unexpected EOF; expected \"'''\"".into()),
        '\'' => {
            let too_many = |current: &str| current.ends_with("'''''");
            let message = "unexpected \"''''''\"";
            multiline_quote(lx, '\'', (ItemType::RawMultilineString, too_many, message), lex_multiline_raw_string)
        }
        _ => Some(St(lex_multiline_raw_string)),
    }
}

/// A quote in a multiline string: with two more after it and no sixth, the string's end (its
/// item emitted without them); a sixth after five is `too_many`'s error; else the string goes on.
fn multiline_quote(
    lx: &mut Lexer,
    quote: char,
    (typ, too_many, message): (ItemType, fn(&str) -> bool, &str),
    again: fn(&mut Lexer) -> Option<St>,
) -> Option<St> {
    if lx.accept(quote) {
        if lx.accept(quote) {
            if lx.peek() == quote {
                if too_many(lx.current()) {
                    return lx.errorf(message.into());
                }
                lx.backup();
                lx.backup();
                return Some(St(again));
            }
            lx.backup();
            lx.backup();
            lx.backup();
            lx.esc = false;
            lx.emit(typ);
            lx.next();
            lx.next();
            lx.next();
            lx.ignore();
            return lx.pop();
        }
        lx.backup();
    }
    Some(St(again))
}

fn lex_multiline_string_escape(lx: &mut Lexer) -> Option<St> {
    if is_nl(lx.next()) {
        return Some(St(lex_multiline_string));
    }
    lx.backup();
    lx.push(lex_multiline_string);
    lex_string_escape(lx)
}

fn lex_string_escape(lx: &mut Lexer) -> Option<St> {
    lx.esc = true;
    let r = lx.next();
    match r {
        'b' | 't' | 'n' | 'f' | 'r' | '"' | ' ' | '\t' | '\\' => lx.pop(),
        'u' => Some(St(lex_short_unicode_escape)),
        'U' => Some(St(lex_long_unicode_escape)),
        r => lx.errorf(format!("invalid escape in string '\\{r}'")),
    }
}

fn lex_unicode_escape(lx: &mut Lexer, digits: usize, what: &str, escape: char) -> Option<St> {
    for _ in 0..digits {
        if !is_hex(lx.next()) {
            let current = qs(lx.current());
            return lx
                .errorf(format!("expected {what} hexadecimal digits after '\\{escape}', but got {current} instead"));
        }
    }
    lx.pop()
}

fn lex_short_unicode_escape(lx: &mut Lexer) -> Option<St> {
    lex_unicode_escape(lx, 4, "four", 'u')
}

fn lex_long_unicode_escape(lx: &mut Lexer) -> Option<St> {
    lex_unicode_escape(lx, 8, "eight", 'U')
}

fn lex_number_or_date_start(lx: &mut Lexer) -> Option<St> {
    let r = lx.next();
    if r == '0' {
        return Some(St(lex_base_number_or_date));
    }
    if !r.is_ascii_digit() {
        return lx.errorf(format!("expected a digit but got {}", q(r)));
    }
    Some(St(lex_number_or_date))
}

fn lex_number_or_date(lx: &mut Lexer) -> Option<St> {
    let r = lx.next();
    if r.is_ascii_digit() {
        return Some(St(lex_number_or_date));
    }
    match r {
        '-' | ':' => return Some(St(lex_datetime)),
        '_' => return Some(St(lex_decimal_number)),
        '.' | 'e' | 'E' => return Some(St(lex_float)),
        _ => {}
    }
    lx.backup();
    lx.emit(ItemType::Integer);
    lx.pop()
}

fn lex_datetime(lx: &mut Lexer) -> Option<St> {
    let r = lx.next();
    if r.is_ascii_digit() || matches!(r, '-' | ':' | 'T' | 't' | ' ' | '.' | 'Z' | 'z' | '+') {
        return Some(St(lex_datetime));
    }
    lx.backup();
    lx.emit_trim(ItemType::Datetime);
    lx.pop()
}

/// The digits of an integer after its base's prefix (`0x`, `0o`, `0b`), and `_`.
fn lex_based_integer(lx: &mut Lexer, digit: fn(char) -> bool, again: fn(&mut Lexer) -> Option<St>) -> Option<St> {
    let r = lx.next();
    if digit(r) || r == '_' {
        return Some(St(again));
    }
    lx.backup();
    lx.emit(ItemType::Integer);
    lx.pop()
}

fn lex_hex_integer(lx: &mut Lexer) -> Option<St> {
    lex_based_integer(lx, is_hex, lex_hex_integer)
}

fn lex_octal_integer(lx: &mut Lexer) -> Option<St> {
    lex_based_integer(lx, |r| ('0'..='7').contains(&r), lex_octal_integer)
}

fn lex_binary_integer(lx: &mut Lexer) -> Option<St> {
    lex_based_integer(lx, |r| r == '0' || r == '1', lex_binary_integer)
}

fn lex_decimal_number(lx: &mut Lexer) -> Option<St> {
    let r = lx.next();
    if r.is_ascii_digit() {
        return Some(St(lex_decimal_number));
    }
    match r {
        '.' | 'e' | 'E' => return Some(St(lex_float)),
        '_' => return Some(St(lex_decimal_number)),
        _ => {}
    }
    lx.backup();
    lx.emit(ItemType::Integer);
    lx.pop()
}

fn lex_decimal_number_start(lx: &mut Lexer) -> Option<St> {
    let r = lx.next();
    match r {
        'i' => {
            if !lx.accept('n') || !lx.accept('f') {
                return lx.errorf(format!("invalid float: '{}'", lx.current()));
            }
            lx.emit(ItemType::Float);
            return lx.pop();
        }
        'n' => {
            if !lx.accept('a') || !lx.accept('n') {
                return lx.errorf(format!("invalid float: '{}'", lx.current()));
            }
            lx.emit(ItemType::Float);
            return lx.pop();
        }
        '0' => {
            let p = lx.peek();
            if matches!(p, 'b' | 'o' | 'x') {
                return lx.errorf(format!("cannot use sign with non-decimal numbers: '{}{p}'", lx.current()));
            }
        }
        '.' => return lx.errorf("floats must start with a digit, not '.'".into()),
        _ => {}
    }
    if r.is_ascii_digit() {
        return Some(St(lex_decimal_number));
    }
    lx.errorf(format!("expected a digit but got {}", q(r)))
}

fn lex_base_number_or_date(lx: &mut Lexer) -> Option<St> {
    let r = lx.next();
    if r.is_ascii_digit() {
        return Some(St(lex_number_or_date));
    }
    // BurntSushi reports a prefix without a digit after it and lexes on: its parser stops at
    // that error first.
    let based = |lx: &mut Lexer, digit: fn(char) -> bool, what: &str, next: fn(&mut Lexer) -> Option<St>| {
        let p = lx.peek();
        if !digit(p) {
            let message = format!("not a{what} number: '{}{p}'", lx.current());
            lx.errorf(message);
        }
        Some(St(next))
    };
    match r {
        '_' => Some(St(lex_decimal_number)),
        '.' | 'e' | 'E' => Some(St(lex_float)),
        'b' => based(lx, |r| r == '0' || r == '1', " binary", lex_binary_integer),
        'o' => based(lx, |r| ('0'..='7').contains(&r), "n octal", lex_octal_integer),
        'x' => based(lx, is_hex, " hexidecimal", lex_hex_integer),
        _ => {
            lx.backup();
            lx.emit(ItemType::Integer);
            lx.pop()
        }
    }
}

fn lex_float(lx: &mut Lexer) -> Option<St> {
    let r = lx.next();
    if r.is_ascii_digit() || matches!(r, '_' | '.' | '-' | '+' | 'e' | 'E') {
        return Some(St(lex_float));
    }
    lx.backup();
    lx.emit(ItemType::Float);
    lx.pop()
}

fn lex_bool(lx: &mut Lexer) -> Option<St> {
    let mut word = String::new();
    loop {
        let r = lx.next();
        if !r.is_alphabetic() {
            lx.backup();
            break;
        }
        word.push(r);
    }
    match word.as_str() {
        "true" | "false" => {
            lx.emit(ItemType::Bool);
            lx.pop()
        }
        _ => lx.errorf(format!("expected value but found {} instead", qs(&word))),
    }
}

fn lex_comment_start(lx: &mut Lexer) -> Option<St> {
    lx.ignore();
    lx.emit(ItemType::CommentStart);
    Some(St(lex_comment))
}

fn lex_comment(lx: &mut Lexer) -> Option<St> {
    let r = lx.next();
    if is_nl(r) || r == EOF {
        lx.backup();
        lx.emit(ItemType::Text);
        return lx.pop();
    }
    Some(St(lex_comment))
}

fn is_whitespace(r: char) -> bool {
    r == '\t' || r == ' '
}

fn is_nl(r: char) -> bool {
    r == '\n' || r == '\r'
}

fn is_control(r: char) -> bool {
    match r {
        '\t' | '\r' | '\n' => false,
        r => (r as u32) <= 0x1f || r == '\u{7f}',
    }
}

fn is_hex(r: char) -> bool {
    r.is_ascii_hexdigit()
}

fn is_bare_key_char(r: char) -> bool {
    r.is_ascii_alphanumeric() || r == '_' || r == '-'
}

/// BurntSushi's `ParseError`, as its `Error()` prints it.
struct ParseError {
    line: i64,
    last_key: String,
    message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.last_key.as_str() {
            "" => write!(f, "toml: line {}: {}", self.line, self.message),
            key => write!(f, "toml: line {} (last key {}): {}", self.line, qs(key), self.message),
        }
    }
}

type Parsed<T> = Result<T, ParseError>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum TomlType {
    Array,
    Hash,
    ArrayHash,
    Primitive,
}

/// A key's parts as BurntSushi prints them: bare, or double-quoted with its escapes.
fn key_string(key: &[String]) -> String {
    let part = |part: &String| {
        if part.is_empty() {
            return "\"\"".to_string();
        }
        if part.chars().all(is_bare_key_char) {
            return part.clone();
        }
        let mut out = String::from("\"");
        for c in part.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{8}' => out.push_str("\\b"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\u{c}' => out.push_str("\\f"),
                '\r' => out.push_str("\\r"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    };
    key.iter().map(part).collect::<Vec<_>>().join(".")
}

struct Parser {
    items: std::vec::IntoIter<Item>,
    /// The full key of the table in scope.
    context: Vec<String>,
    current_key: String,
    /// The line of the item read last with `next_pos`, for errors of keys.
    pos_line: i64,
    types: HashMap<String, TomlType>,
    mapping: Table,
    implicits: HashSet<String>,
}

impl Parser {
    fn parse(&mut self) -> Parsed<()> {
        loop {
            let item = self.next()?;
            if item.typ == ItemType::Eof {
                return Ok(());
            }
            self.top_level(item)?;
        }
    }

    fn error(&self, line: i64, message: String) -> ParseError {
        ParseError { line, last_key: self.current(), message }
    }

    /// BurntSushi's `panicf`: at the item `next_pos` read last.
    fn errorf(&self, message: String) -> ParseError {
        self.error(self.pos_line, message)
    }

    fn bug(&self, what: &str) -> ParseError {
        self.errorf(format!("BUG: {what}"))
    }

    fn next(&mut self) -> Parsed<Item> {
        let item = self.items.next().unwrap_or(Item { typ: ItemType::Eof, val: String::new(), line: 0 });
        match item.typ {
            ItemType::Error => Err(self.error(item.line, item.val)),
            _ => Ok(item),
        }
    }

    fn next_pos(&mut self) -> Parsed<Item> {
        let item = self.next()?;
        self.pos_line = item.line;
        Ok(item)
    }

    fn expect(&mut self, typ: ItemType) -> Parsed<Item> {
        let item = self.next()?;
        self.assert_equal(typ, item.typ)?;
        Ok(item)
    }

    fn assert_equal(&self, expected: ItemType, got: ItemType) -> Parsed<()> {
        match expected == got {
            true => Ok(()),
            false => Err(self.bug(&format!("Expected '{expected:?}' but got '{got:?}'."))),
        }
    }

    /// A key's parts, from the item after its start up to `end`.
    fn key_parts(&mut self, mut name: Item, end: ItemType) -> Parsed<Vec<String>> {
        let mut key = Vec::new();
        while name.typ != end && name.typ != ItemType::Eof {
            key.push(self.key_string(&name)?);
            name = self.next()?;
        }
        self.assert_equal(end, name.typ)?;
        Ok(key)
    }

    fn top_level(&mut self, item: Item) -> Parsed<()> {
        match item.typ {
            ItemType::CommentStart => {
                self.expect(ItemType::Text)?;
            }
            ItemType::TableStart | ItemType::ArrayTableStart => {
                let array = item.typ == ItemType::ArrayTableStart;
                let name = self.next_pos()?;
                let end = if array { ItemType::ArrayTableEnd } else { ItemType::TableEnd };
                let key = self.key_parts(name, end)?;
                self.add_context(&key, array)?;
                self.set_type("", if array { TomlType::ArrayHash } else { TomlType::Hash });
            }
            ItemType::KeyStart => {
                let outer = self.context.clone();
                let first = self.next_pos()?;
                let key = self.key_parts(first, ItemType::KeyEnd)?;
                self.assign(&key)?;
                let value_item = self.next()?;
                let (value, typ) = self.value(&value_item, false)?;
                self.set_value(&self.current_key.clone(), value)?;
                self.set_type(&self.current_key.clone(), typ);
                self.context = outer;
                self.current_key = String::new();
            }
            other => return Err(self.bug(&format!("Unexpected type at top level: {other:?}"))),
        }
        Ok(())
    }

    /// The current key is `key`'s last part; each other part is an implicit table in context.
    fn assign(&mut self, key: &[String]) -> Parsed<Vec<String>> {
        let Some((last, parents)) = key.split_last() else { return Err(self.bug("empty key")) };
        self.current_key = last.clone();
        for part in parents {
            let mut implicit = self.context.clone();
            implicit.push(part.clone());
            self.add_implicit(&implicit);
            self.add_context(&implicit, false)?;
        }
        Ok(parents.to_vec())
    }

    fn key_string(&mut self, item: &Item) -> Parsed<String> {
        match item.typ {
            ItemType::Text => Ok(item.val.clone()),
            ItemType::String
            | ItemType::StringEsc
            | ItemType::MultilineString
            | ItemType::RawString
            | ItemType::RawMultilineString => match self.value(item, false)?.0 {
                Any::Scalar(Value::String(ref s)) => Ok(s.to_string()),
                _ => Err(self.bug("a string key")),
            },
            other => Err(self.bug(&format!("Unexpected key type: {other:?}"))),
        }
    }

    fn value(&mut self, item: &Item, parent_is_array: bool) -> Parsed<(Any, TomlType)> {
        let text = |s: String| Ok((Any::Scalar(Value::from(s)), TomlType::Primitive));
        match item.typ {
            ItemType::String | ItemType::RawString => text(item.val.clone()),
            ItemType::StringEsc => text(self.replace_escapes(item, &item.val)?),
            ItemType::MultilineString => {
                let stripped = strip_escaped_newlines(strip_first_newline(&item.val));
                text(self.replace_escapes(item, &stripped)?)
            }
            ItemType::RawMultilineString => text(strip_first_newline(&item.val).to_string()),
            ItemType::Integer => self.value_integer(item),
            ItemType::Float => self.value_float(item),
            ItemType::Bool => Ok((Any::Scalar(Value::Bool(item.val == "true")), TomlType::Primitive)),
            ItemType::Datetime => self.value_datetime(item),
            ItemType::Array => self.value_array(),
            ItemType::InlineTableStart => self.value_inline_table(parent_is_array),
            other => Err(self.bug(&format!("Unexpected value type: {other:?}"))),
        }
    }

    fn value_integer(&self, item: &Item) -> Parsed<(Any, TomlType)> {
        let val = &item.val;
        if !num_underscores_ok(val) {
            let message = format!("Invalid integer {}: underscores must be surrounded by digits", qs(val));
            return Err(self.error(item.line, message));
        }
        if num_has_leading_zero(val) {
            return Err(self.error(item.line, format!("Invalid integer {}: cannot have leading zeroes", qs(val))));
        }
        // strconv.ParseInt(val, 0, 64).
        let (negative, unsigned) = match val.as_bytes().first() {
            Some(b'-') => (true, &val[1..]),
            Some(b'+') => (false, &val[1..]),
            _ => (false, val.as_str()),
        };
        let lower = unsigned.to_ascii_lowercase();
        let (radix, digits) = match lower.get(..2) {
            Some("0x") => (16, &unsigned[2..]),
            Some("0o") => (8, &unsigned[2..]),
            Some("0b") => (2, &unsigned[2..]),
            _ if unsigned.len() > 1 && unsigned.starts_with('0') => (8, &unsigned[1..]),
            _ => (10, unsigned),
        };
        let digits: String = digits.chars().filter(|c| *c != '_').collect();
        let Ok(magnitude) = u128::from_str_radix(&digits, radix) else {
            let overflow = !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix));
            return Err(match overflow {
                true => self.error(item.line, format!("{val} is out of range for int64")),
                false => self.bug(&format!("Expected integer value, but got '{val}'.")),
            });
        };
        let limit = if negative { 1u128 << 63 } else { (1u128 << 63) - 1 };
        if magnitude > limit {
            return Err(self.error(item.line, format!("{val} is out of range for int64")));
        }
        let number = if negative { (magnitude as i128).wrapping_neg() as i64 } else { magnitude as i64 };
        Ok((Any::Scalar(Value::Int64(number)), TomlType::Primitive))
    }

    fn value_float(&self, item: &Item) -> Parsed<(Any, TomlType)> {
        let val = &item.val;
        let parts: Vec<&str> = val.split(['.', 'e', 'E']).filter(|p| !p.is_empty()).collect();
        if parts.iter().any(|part| !num_underscores_ok(part)) {
            let message = format!("Invalid float {}: underscores must be surrounded by digits", qs(val));
            return Err(self.error(item.line, message));
        }
        if parts.first().is_some_and(|first| num_has_leading_zero(first)) {
            return Err(self.error(item.line, format!("Invalid float {}: cannot have leading zeroes", qs(val))));
        }
        if !num_periods_ok(val) {
            let message = format!("Invalid float {}: '.' must be followed by one or more digits", qs(val));
            return Err(self.error(item.line, message));
        }
        let mut text = val.replace('_', "");
        let mut negative_nan = false;
        if text == "+nan" || text == "-nan" {
            negative_nan = text == "-nan";
            text = "nan".into();
        }
        let Ok(mut number) = text.parse::<f64>() else {
            return Err(self.error(item.line, format!("Invalid float value: {}", qs(val))));
        };
        if number.is_infinite() && !text.trim_start_matches(['+', '-']).starts_with("inf") {
            return Err(self.error(item.line, format!("{val} is out of range for float64")));
        }
        if negative_nan {
            number = -number.abs();
        }
        Ok((Any::Scalar(Value::Float(number)), TomlType::Primitive))
    }

    fn value_datetime(&self, item: &Item) -> Parsed<(Any, TomlType)> {
        let val = item.val.replace('z', "Z").replace(['t', ' '], "T");
        const TYPES: [(&str, Option<&str>); 4] = [
            ("2006-01-02T15:04:05.999999999Z07:00", None),
            ("2006-01-02T15:04:05.999999999", Some("datetime-local")),
            ("2006-01-02", Some("date-local")),
            ("15:04:05.999999999", Some("time-local")),
        ];
        let invalid = || self.error(item.line, format!("invalid datetime: {}", qs(&val)));
        for (layout, zone) in TYPES {
            if let Some(time) = sprig::parse_time(layout, &val, zone) {
                if missing_leading_zero(&val, layout) {
                    return Err(invalid());
                }
                return Ok((Any::Scalar(time), TomlType::Primitive));
            }
        }
        Err(invalid())
    }

    fn value_array(&mut self) -> Parsed<(Any, TomlType)> {
        self.set_type(&self.current_key.clone(), TomlType::Array);
        let mut array = Vec::new();
        loop {
            let item = self.next()?;
            match item.typ {
                ItemType::ArrayEnd => break,
                ItemType::CommentStart => {
                    self.expect(ItemType::Text)?;
                }
                _ => array.push(self.value(&item, true)?.0),
            }
        }
        Ok((Any::Array(array), TomlType::Array))
    }

    fn value_inline_table(&mut self, parent_is_array: bool) -> Parsed<(Any, TomlType)> {
        let top = table();
        let outer_context = self.context.clone();
        let outer_key = self.current_key.clone();
        self.context.push(self.current_key.clone());
        let previous = self.context.clone();
        self.current_key = String::new();
        self.add_implicit(&self.context.clone());
        self.add_context(&self.context.clone(), parent_is_array)?;
        loop {
            let item = self.next()?;
            match item.typ {
                ItemType::InlineTableEnd => break,
                ItemType::CommentStart => {
                    self.expect(ItemType::Text)?;
                    continue;
                }
                _ => {}
            }
            let first = self.next_pos()?;
            let key = self.key_parts(first, ItemType::KeyEnd)?;
            let parents = self.assign(&key)?;
            let value_item = self.next()?;
            let (value, typ) = self.value(&value_item, false)?;
            self.set_value(&self.current_key.clone(), value.clone())?;
            self.set_type(&self.current_key.clone(), typ);
            let mut hash = Rc::clone(&top);
            for part in &parents {
                let found = hash.borrow().get(part).cloned();
                let next = match found {
                    Some(Any::Table(inner)) => inner,
                    Some(_) => {
                        let context: Vec<String> = self.context.iter().map(|p| qs(p)).collect();
                        return Err(self.errorf(format!("[{}] is not a table", context.join(" "))));
                    }
                    None => {
                        let inner = table();
                        hash.borrow_mut().insert(part.clone(), Any::Table(Rc::clone(&inner)));
                        inner
                    }
                };
                hash = next;
            }
            hash.borrow_mut().insert(self.current_key.clone(), value);
            self.context = previous.clone();
        }
        self.context = outer_context;
        self.current_key = outer_key;
        Ok((Any::Table(top), TomlType::Hash))
    }

    /// Makes `key` the context: a table (or a new table of an array of tables), its parents
    /// made implicit tables where they are not there yet.
    fn add_context(&mut self, key: &[String], array: bool) -> Parsed<()> {
        let Some((last, parents)) = key.split_last() else { return Err(self.bug("empty key")) };
        let mut hash = Rc::clone(&self.mapping);
        let mut key_context = Vec::new();
        for part in parents {
            key_context.push(part.clone());
            let found = hash.borrow().get(part).cloned();
            let found = match found {
                Some(found) => found,
                None => {
                    self.add_implicit(&key_context);
                    let inner = Any::Table(table());
                    hash.borrow_mut().insert(part.clone(), inner.clone());
                    inner
                }
            };
            hash = match found {
                Any::Tables(tables) => match tables.borrow().last() {
                    Some(last) => Rc::clone(last),
                    None => return Err(self.bug("an empty array of tables")),
                },
                Any::Table(inner) => inner,
                _ => {
                    return Err(
                        self.errorf(format!("Key '{}' was already created as a hash.", key_string(&key_context)))
                    );
                }
            };
        }
        self.context = key_context;
        if array {
            let found = hash.borrow().get(last).cloned();
            let tables = match found {
                None => {
                    let tables = Rc::new(RefCell::new(Vec::new()));
                    hash.borrow_mut().insert(last.clone(), Any::Tables(Rc::clone(&tables)));
                    tables
                }
                Some(Any::Tables(tables)) => tables,
                Some(_) => {
                    let message =
                        format!("Key '{}' was already created and cannot be used as an array.", key_string(key));
                    return Err(self.errorf(message));
                }
            };
            tables.borrow_mut().push(table());
        } else {
            self.set_value(last, Any::Table(table()))?;
        }
        self.context.push(last.clone());
        Ok(())
    }

    /// Sets `key` in the context to `value`, unless it is there (an implicit table may be
    /// defined once; an array replaced).
    fn set_value(&mut self, key: &str, value: Any) -> Parsed<()> {
        let mut hash = Rc::clone(&self.mapping);
        let mut key_context = Vec::new();
        for part in &self.context {
            key_context.push(part.clone());
            let found = hash.borrow().get(part).cloned();
            hash = match found {
                None => {
                    return Err(
                        self.bug(&format!("Context for key '{}' has not been established.", key_string(&key_context)))
                    );
                }
                Some(Any::Tables(tables)) => match tables.borrow().last() {
                    Some(last) => Rc::clone(last),
                    None => return Err(self.bug("an empty array of tables")),
                },
                Some(Any::Table(inner)) => inner,
                Some(_) => {
                    return Err(self.errorf(format!("Key '{}' has already been defined.", key_string(&key_context))));
                }
            };
        }
        key_context.push(key.to_string());
        if hash.borrow().contains_key(key) {
            let name = key_string(&key_context);
            if self.types.get(&name) == Some(&TomlType::Array) {
                self.implicits.remove(&name);
                hash.borrow_mut().insert(key.to_string(), value);
                return Ok(());
            }
            if self.implicits.remove(&name) {
                return Ok(());
            }
            return Err(self.errorf(format!("Key '{name}' has already been defined.")));
        }
        hash.borrow_mut().insert(key.to_string(), value);
        Ok(())
    }

    fn set_type(&mut self, key: &str, typ: TomlType) {
        let mut key_context = self.context.clone();
        if !key.is_empty() {
            key_context.push(key.to_string());
        }
        if key_context.is_empty() {
            key_context.push(String::new());
        }
        self.types.insert(key_string(&key_context), typ);
    }

    fn add_implicit(&mut self, key: &[String]) {
        self.implicits.insert(key_string(key));
    }

    /// The full name of the key being read (BurntSushi's "last key").
    fn current(&self) -> String {
        match (self.current_key.is_empty(), self.context.is_empty()) {
            (true, _) => key_string(&self.context),
            (false, true) => self.current_key.clone(),
            (false, false) => format!("{}.{}", key_string(&self.context), self.current_key),
        }
    }

    fn replace_escapes(&self, item: &Item, text: &str) -> Parsed<String> {
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut skip = 0;
        for (i, c) in text.char_indices() {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some(&code) = bytes.get(i + 1) else { return Err(self.bug("Escape sequence at end of string.")) };
            let escaped = |digits: usize| -> Parsed<char> {
                let hex = text.get(i + 2..i + 2 + digits).unwrap_or_default();
                let code = u32::from_str_radix(hex, 16).map_err(|_| self.bug("a hexadecimal escape"))?;
                char::from_u32(code)
                    .ok_or_else(|| self.error(item.line, format!("Escaped character '\\u{hex}' is not valid UTF-8.")))
            };
            match code {
                b' ' | b'\t' => {
                    return Err(self.error(item.line, format!("invalid escape: '\\{}'", code as char)));
                }
                b'b' => out.push('\u{8}'),
                b't' => out.push('\t'),
                b'n' => out.push('\n'),
                b'f' => out.push('\u{c}'),
                b'r' => out.push('\r'),
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'u' => {
                    out.push(escaped(4)?);
                    skip = 5;
                    continue;
                }
                b'U' => {
                    out.push(escaped(8)?);
                    skip = 9;
                    continue;
                }
                _ => {
                    return Err(self.bug(&format!("Expected valid escape code after \\, but got {}.", q(code as char))));
                }
            }
            skip = 1;
        }
        Ok(out)
    }
}

fn strip_first_newline(s: &str) -> &str {
    s.strip_prefix('\n').or_else(|| s.strip_prefix("\r\n")).unwrap_or(s)
}

/// A line-ending backslash and the whitespace after it removed, as BurntSushi removes them.
fn strip_escaped_newlines(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut s = s;
    let mut i = 0;
    loop {
        let Some(found) = s[i..].find('\\') else {
            out.push_str(s);
            return out;
        };
        i += found;
        let bytes = s.as_bytes();
        if bytes.get(i + 1) == Some(&b'\\') {
            i += 2;
            continue;
        }
        let mut j = i + 1;
        while j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'\r' | b'\n') {
            j += 1;
        }
        if j == i + 1 || !s[i..j].contains('\n') {
            i += 1;
            continue;
        }
        out.push_str(&s[..i]);
        s = &s[j..];
        i = 0;
    }
}

fn num_has_leading_zero(s: &str) -> bool {
    let b = s.as_bytes();
    (b.len() > 1 && b[0] == b'0' && !matches!(b[1], b'b' | b'o' | b'x'))
        || (b.len() > 2 && (b[0] == b'-' || b[0] == b'+') && b[1] == b'0')
}

fn num_underscores_ok(s: &str) -> bool {
    if matches!(s, "nan" | "+nan" | "-nan" | "inf" | "-inf" | "+inf") {
        return true;
    }
    let mut accept = false;
    for r in s.chars() {
        if r == '_' && !accept {
            return false;
        }
        accept = is_hex(r);
    }
    accept
}

fn num_periods_ok(s: &str) -> bool {
    let mut period = false;
    for r in s.chars() {
        if period && !r.is_ascii_digit() {
            return false;
        }
        period = r == '.';
    }
    !period
}

/// Go's `time.Parse` takes `1` for `01`: a date-time must have the layout's separators where
/// the layout has them.
fn missing_leading_zero(d: &str, layout: &str) -> bool {
    for (i, c) in layout.bytes().enumerate() {
        if c == b'.' || c == b'Z' {
            return false;
        }
        if !c.is_ascii_digit() && d.as_bytes().get(i) != Some(&c) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        decode(text).err().unwrap_or_else(|| panic!("{text:?} decoded"))
    }

    /// What helm v3.17.1 (BurntSushi/toml v1.4.0) prints for each text's `fromToml` error.
    #[test]
    fn errors_are_helm_s_word_for_word() {
        let cases = [
            ("a = ", r#"toml: line 0 (last key "a"): unexpected EOF; expected value"#),
            ("a = 1\na = 2", r#"toml: line 2 (last key "a"): Key 'a' has already been defined."#),
            ("[table\nx=1", r"toml: line 2: expected '.' or ']' to end table name, but got '\n' instead"),
            ("a = \"unterminated", r#"toml: line 0 (last key "a"): unexpected EOF; expected '"'"#),
            (
                "a = 1 b = 2",
                "toml: line 1: expected a top-level item to end with a newline, comment, or EOF, but got 'b' instead",
            ),
            ("= 1", "toml: line 1: unexpected '=': key name appears blank"),
            (
                "a = [1, 2",
                r#"toml: line 0 (last key "a"): expected a comma (',') or array terminator (']'), but got end of file"#,
            ),
            ("a = 1.2.3", r#"toml: line 1 (last key "a"): Invalid float value: "1.2.3""#),
            ("a = tru", r#"toml: line 1 (last key "a"): expected value but found "tru" instead"#),
            ("x", "toml: line 0: unexpected EOF; expected key separator '='"),
            ("[a]\n[a]", "toml: line 2: Key 'a' has already been defined."),
            (
                "a = {b = 1",
                r#"toml: line 0 (last key "a.b"): expected a comma or an inline table terminator '}', but got end of file instead"#,
            ),
            ("a = 'x\ny'", r#"toml: line 1 (last key "a"): strings cannot contain newlines"#),
            (
                "a = 1979-05-27T07:32:00Zx",
                "toml: line 1: expected a top-level item to end with a newline, comment, or EOF, but got 'x' instead",
            ),
            ("a = 0x", "toml: line 1 (last key \"a\"): not a hexidecimal number: '0x\0'"),
            ("key = \"\\q\"", r#"toml: line 1 (last key "key"): invalid escape in string '\q'"#),
        ];
        for (text, expected) in cases {
            assert_eq!(error(text), expected, "{text:?}");
        }
    }

    #[test]
    fn what_burntsushi_accepts_it_decodes_alike() {
        // A key defined implicitly may be defined once concretely: the table stays.
        let v = decode("a.b = 1\na = 2\n").unwrap();
        assert_eq!(v.to_json().unwrap(), serde_json::json!({"a": {"b": 1}}));
        let v = decode(
            "a = 1\nb = 1.5\n[t]\nl = [1, 'x', {c = 2}]\n[[arr]]\nk = true\n[[arr]]\ns = \"\"\"\nx\\\n  y\"\"\"\n",
        )
        .unwrap();
        assert_eq!(
            v.to_json().unwrap(),
            serde_json::json!({"a": 1, "arr": [{"k": true}, {"s": "xy"}], "b": 1.5, "t": {"l": [1, "x", {"c": 2}]}})
        );
    }
}
