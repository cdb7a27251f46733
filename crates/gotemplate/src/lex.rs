//! The lexer, a port of Go 1.23's text/template/parse/lex.go. It produces the whole token list up
//! front (Go's lexer is pulled one item at a time; the items are the same).

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ItemType {
    Error,
    Bool,
    Char,
    CharConstant,
    Complex,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    String,
    Text,
    Variable,
    // Keywords come after this marker, as in Go (item.String() relies on the order).
    Keyword,
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

/// An item's text is borrowed from the input, so that the parser copies items as it reads each
/// more than once; an error item's text is empty, and its message is [`Lexed::error`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Item<'a> {
    pub typ: ItemType,
    pub pos: usize,
    pub val: &'a str,
    pub line: usize,
}

/// The items of a text, ending with an EOF or an error item, and the error's message.
pub(crate) struct Lexed<'a> {
    pub items: Vec<Item<'a>>,
    pub error: String,
}

impl std::fmt::Display for Item<'_> {
    /// Go's item.String(), used in "unexpected X in Y" messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.typ {
            ItemType::Eof => f.write_str("EOF"),
            t if t > ItemType::Keyword => write!(f, "<{}>", self.val),
            _ => {
                if self.val.chars().count() > 10 {
                    // %.10q: the first ten characters, quoted, then "...".
                    let head: String = self.val.chars().take(10).collect();
                    write!(f, "{}...", crate::strconv::quote(&head, false))
                } else {
                    f.write_str(&crate::strconv::quote(self.val, false))
                }
            }
        }
    }
}

fn keyword(word: &str) -> Option<ItemType> {
    Some(match word {
        "." => ItemType::Dot,
        "block" => ItemType::Block,
        "break" => ItemType::Break,
        "continue" => ItemType::Continue,
        "define" => ItemType::Define,
        "else" => ItemType::Else,
        "end" => ItemType::End,
        "if" => ItemType::If,
        "range" => ItemType::Range,
        "nil" => ItemType::Nil,
        "template" => ItemType::Template,
        "with" => ItemType::With,
        _ => return None,
    })
}

/// Where `needle` (a delimiter: two bytes) first occurs in `text`: memchr's search, where `str::find`
/// set up a substring searcher for every stretch of text between two actions.
fn find(text: &str, needle: &str) -> Option<usize> {
    memchr::memmem::find(text.as_bytes(), needle.as_bytes())
}

/// Where the next action starts: one searcher for every text, where `find` builds one a call.
fn find_left_delim(text: &str) -> Option<usize> {
    static LEFT: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(LEFT_DELIM));
    LEFT.find(text.as_bytes())
}

const LEFT_DELIM: &str = "{{";
const RIGHT_DELIM: &str = "}}";
const LEFT_COMMENT: &str = "/*";
const RIGHT_COMMENT: &str = "*/";
const SPACE_CHARS: &[char] = &[' ', '\t', '\r', '\n'];
const TRIM_MARKER_LEN: usize = 2;

/// Whether `break` and `continue` are keywords (they are not when functions have those names).
#[derive(Clone, Copy)]
pub(crate) struct LexOptions {
    pub break_ok: bool,
    pub continue_ok: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Text,
    LeftDelim,
    Comment,
    RightDelim,
    InsideAction,
    Space,
    Quote,
    RawQuote,
    Variable,
    Field,
    Char,
    Number,
    Identifier,
    Done,
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    at_eof: bool,
    paren_depth: usize,
    line: usize,
    start_line: usize,
    options: LexOptions,
    items: Vec<Item<'a>>,
    error: String,
}

/// Lexes `input` into items ending with an EOF or an error item.
pub(crate) fn lex(input: &str, options: LexOptions) -> Lexed<'_> {
    let mut l = Lexer {
        input,
        pos: 0,
        start: 0,
        at_eof: false,
        paren_depth: 0,
        line: 1,
        start_line: 1,
        options,
        // About one item to every eight bytes of a chart's templates: few regrowths of the list.
        items: Vec::with_capacity(input.len() / 8 + 4),
        error: String::new(),
    };
    let mut state = State::Text;
    while state != State::Done {
        state = match state {
            State::Text => l.lex_text(),
            State::LeftDelim => l.lex_left_delim(),
            State::Comment => l.lex_comment(),
            State::RightDelim => l.lex_right_delim(),
            State::InsideAction => l.lex_inside_action(),
            State::Space => l.lex_space(),
            State::Quote => l.lex_quote(),
            State::RawQuote => l.lex_raw_quote(),
            State::Variable => l.lex_variable(),
            State::Field => l.lex_field_or_variable(ItemType::Field),
            State::Char => l.lex_char(),
            State::Number => l.lex_number(),
            State::Identifier => l.lex_identifier(),
            State::Done => State::Done,
        };
    }
    Lexed { items: l.items, error: l.error }
}

fn is_space(c: Option<char>) -> bool {
    matches!(c, Some(' ' | '\t' | '\r' | '\n'))
}

fn is_alphanumeric(c: Option<char>) -> bool {
    matches!(c, Some(c) if c == '_' || c.is_alphabetic() || is_unicode_digit(c))
}

// Go's unicode.IsDigit is category Nd; Rust's is_numeric also takes Nl and No.
fn is_unicode_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric() && c.to_digit(10).is_none() && !is_letter_number(c))
}

fn is_letter_number(c: char) -> bool {
    // Nl and No ranges most likely to appear: roman numerals, superscripts, fractions, circled digits.
    matches!(c as u32, 0xB2 | 0xB3 | 0xB9 | 0xBC..=0xBE | 0x2070..=0x2079 | 0x2080..=0x2089 | 0x2150..=0x2189 | 0x2460..=0x24FF | 0x2776..=0x2793 | 0x3007 | 0x3021..=0x3029)
}

/// Whether `s` starts with a two-byte delimiter: compared as two bytes, where `starts_with` called
/// `memcmp` at every item of every action.
fn starts_with_delim(s: &str, delim: &str) -> bool {
    matches!((s.as_bytes(), delim.as_bytes()), ([a, b, ..], [x, y]) if a == x && b == y)
}

fn has_left_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(Some(char::from(b[1])))
}

fn has_right_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space(Some(char::from(b[0]))) && b[1] == b'-'
}

impl<'a> Lexer<'a> {
    fn next(&mut self) -> Option<char> {
        // Templates are mostly ASCII: a byte is a char, without decoding.
        if let Some(&b) = self.input.as_bytes().get(self.pos)
            && b.is_ascii()
        {
            self.pos += 1;
            if b == b'\n' {
                self.line += 1;
            }
            return Some(char::from(b));
        }
        let Some(c) = self.input[self.pos..].chars().next() else {
            self.at_eof = true;
            return None;
        };
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn peek(&mut self) -> Option<char> {
        let c = self.next();
        self.backup();
        c
    }

    fn backup(&mut self) {
        if self.at_eof || self.pos == 0 {
            return;
        }
        if self.input.as_bytes()[self.pos - 1].is_ascii() {
            self.pos -= 1;
            if self.input.as_bytes()[self.pos] == b'\n' {
                self.line -= 1;
            }
        } else if let Some(c) = self.input[..self.pos].chars().next_back() {
            self.pos -= c.len_utf8();
            if c == '\n' {
                self.line -= 1;
            }
        }
    }

    fn this_item(&mut self, typ: ItemType) -> Item<'a> {
        let item = Item { typ, pos: self.start, val: &self.input[self.start..self.pos], line: self.start_line };
        self.start = self.pos;
        self.start_line = self.line;
        item
    }

    fn emit(&mut self, typ: ItemType) -> State {
        let item = self.this_item(typ);
        self.items.push(item);
        State::InsideAction
    }

    fn ignore(&mut self) {
        self.line += self.input[self.start..self.pos].bytes().filter(|&b| b == b'\n').count();
        self.start = self.pos;
        self.start_line = self.line;
    }

    /// Past the letters, digits and underscores from here, and the first char that is not one
    /// (`None` at the end of the input, which is then reached as by [`Lexer::next`]).
    fn skip_alphanumeric(&mut self) -> Option<char> {
        let bytes = self.input.as_bytes();
        loop {
            match bytes.get(self.pos) {
                Some(&b) if b.is_ascii_alphanumeric() || b == b'_' => self.pos += 1,
                Some(&b) if b.is_ascii() => return Some(char::from(b)),
                Some(_) => {
                    let c = self.next();
                    if !is_alphanumeric(c) {
                        self.backup();
                        return c;
                    }
                }
                None => {
                    self.at_eof = true;
                    return None;
                }
            }
        }
    }

    fn accept(&mut self, valid: &str) -> bool {
        if self.next().is_some_and(|c| valid.contains(c)) {
            return true;
        }
        self.backup();
        false
    }

    fn accept_run(&mut self, valid: &str) {
        while self.next().is_some_and(|c| valid.contains(c)) {}
        self.backup();
    }

    fn errorf(&mut self, message: String) -> State {
        self.items.push(Item { typ: ItemType::Error, pos: self.start, val: "", line: self.start_line });
        self.error = message;
        State::Done
    }

    fn lex_text(&mut self) -> State {
        if let Some(x) = find_left_delim(&self.input[self.pos..]) {
            if x > 0 {
                self.pos += x;
                let mut trim_length = 0;
                let delim_end = self.pos + LEFT_DELIM.len();
                if has_left_trim_marker(&self.input[delim_end..]) {
                    let text = &self.input[self.start..self.pos];
                    trim_length = text.len() - text.trim_end_matches(SPACE_CHARS).len();
                }
                self.pos -= trim_length;
                self.line += self.input[self.start..self.pos].bytes().filter(|&b| b == b'\n').count();
                let item = self.this_item(ItemType::Text);
                self.pos += trim_length;
                self.ignore();
                if !item.val.is_empty() {
                    self.items.push(item);
                }
            }
            return State::LeftDelim;
        }
        self.pos = self.input.len();
        if self.pos > self.start {
            self.line += self.input[self.start..self.pos].bytes().filter(|&b| b == b'\n').count();
            let item = self.this_item(ItemType::Text);
            self.items.push(item);
        }
        let item = self.this_item(ItemType::Eof);
        self.items.push(item);
        State::Done
    }

    fn at_right_delim(&self) -> (bool, bool) {
        let rest = &self.input[self.pos..];
        if has_right_trim_marker(rest) && starts_with_delim(&rest[TRIM_MARKER_LEN..], RIGHT_DELIM) {
            return (true, true);
        }
        (starts_with_delim(rest, RIGHT_DELIM), false)
    }

    fn lex_left_delim(&mut self) -> State {
        self.pos += LEFT_DELIM.len();
        let trim_space = has_left_trim_marker(&self.input[self.pos..]);
        let after_marker = if trim_space { TRIM_MARKER_LEN } else { 0 };
        if starts_with_delim(&self.input[self.pos + after_marker..], LEFT_COMMENT) {
            self.pos += after_marker;
            self.ignore();
            return State::Comment;
        }
        let item = self.this_item(ItemType::LeftDelim);
        self.pos += after_marker;
        self.ignore();
        self.paren_depth = 0;
        self.items.push(item);
        State::InsideAction
    }

    fn lex_comment(&mut self) -> State {
        self.pos += LEFT_COMMENT.len();
        let Some(x) = find(&self.input[self.pos..], RIGHT_COMMENT) else {
            return self.errorf("unclosed comment".into());
        };
        self.pos += x + RIGHT_COMMENT.len();
        let (delim, trim_space) = self.at_right_delim();
        if !delim {
            return self.errorf("comment ends before closing delimiter".into());
        }
        // Comments are not emitted (Go only emits them in ParseComments mode).
        self.this_item(ItemType::Text);
        if trim_space {
            self.pos += TRIM_MARKER_LEN;
        }
        self.pos += RIGHT_DELIM.len();
        if trim_space {
            let rest = &self.input[self.pos..];
            self.pos += rest.len() - rest.trim_start_matches(SPACE_CHARS).len();
        }
        self.ignore();
        State::Text
    }

    fn lex_right_delim(&mut self) -> State {
        let (_, trim_space) = self.at_right_delim();
        if trim_space {
            self.pos += TRIM_MARKER_LEN;
            self.ignore();
        }
        self.pos += RIGHT_DELIM.len();
        let item = self.this_item(ItemType::RightDelim);
        if trim_space {
            let rest = &self.input[self.pos..];
            self.pos += rest.len() - rest.trim_start_matches(SPACE_CHARS).len();
            self.ignore();
        }
        self.items.push(item);
        State::Text
    }

    fn lex_inside_action(&mut self) -> State {
        let (delim, _) = self.at_right_delim();
        if delim {
            if self.paren_depth == 0 {
                return State::RightDelim;
            }
            return self.errorf("unclosed left paren".into());
        }
        let c = self.next();
        match c {
            None => self.errorf("unclosed action".into()),
            Some(c) if is_space(Some(c)) => {
                self.backup(); // put the space back in case we have " -}}"
                State::Space
            }
            Some('=') => self.emit(ItemType::Assign),
            Some(':') => {
                if self.next() != Some('=') {
                    return self.errorf("expected :=".into());
                }
                self.emit(ItemType::Declare)
            }
            Some('|') => self.emit(ItemType::Pipe),
            Some('"') => State::Quote,
            Some('`') => State::RawQuote,
            Some('$') => State::Variable,
            Some('\'') => State::Char,
            Some('.') => {
                // ".field", unless a digit follows and it starts a number.
                match self.input.as_bytes().get(self.pos) {
                    Some(b) if b.is_ascii_digit() => {
                        self.backup();
                        State::Number
                    }
                    Some(_) => State::Field,
                    None => {
                        self.backup();
                        State::Number
                    }
                }
            }
            Some(c) if c == '+' || c == '-' || c.is_ascii_digit() => {
                self.backup();
                State::Number
            }
            Some(c) if is_alphanumeric(Some(c)) => {
                self.backup();
                State::Identifier
            }
            Some('(') => {
                self.paren_depth += 1;
                self.emit(ItemType::LeftParen)
            }
            Some(')') => {
                if self.paren_depth == 0 {
                    return self.errorf("unexpected right paren".into());
                }
                self.paren_depth -= 1;
                self.emit(ItemType::RightParen)
            }
            Some(c) if c.is_ascii() && !c.is_ascii_control() => self.emit(ItemType::Char),
            Some(c) => self.errorf(format!("unrecognized character in action: {}", unicode_plus(c))),
        }
    }

    fn lex_space(&mut self) -> State {
        let rest = &self.input.as_bytes()[self.pos..];
        let num_spaces = rest.iter().take_while(|&&b| is_space(Some(char::from(b)))).count();
        self.line += rest[..num_spaces].iter().filter(|&&b| b == b'\n').count();
        self.pos += num_spaces;
        if self.pos == self.input.len() {
            // Where peeking past the last space would have left the lexer.
            self.at_eof = true;
        }
        // Be careful about a trim-marked closing delimiter, which starts with a space.
        if has_right_trim_marker(&self.input[self.pos - 1..])
            && starts_with_delim(&self.input[self.pos - 1 + TRIM_MARKER_LEN..], RIGHT_DELIM)
        {
            self.backup(); // before the space
            if num_spaces == 1 {
                return State::RightDelim;
            }
        }
        self.emit(ItemType::Space)
    }

    fn lex_identifier(&mut self) -> State {
        let c = self.skip_alphanumeric();
        let word = &self.input[self.start..self.pos];
        if !self.at_terminator() {
            return self.errorf(format!("bad character {}", c.map_or("U+FFFFFFFF".into(), unicode_plus)));
        }
        match keyword(word) {
            Some(ItemType::Break) if !self.options.break_ok => self.emit(ItemType::Identifier),
            Some(ItemType::Continue) if !self.options.continue_ok => self.emit(ItemType::Identifier),
            Some(item) => self.emit(item),
            None if word.starts_with('.') => self.emit(ItemType::Field),
            None if word == "true" || word == "false" => self.emit(ItemType::Bool),
            None => self.emit(ItemType::Identifier),
        }
    }

    fn lex_variable(&mut self) -> State {
        if self.at_terminator() {
            return self.emit(ItemType::Variable);
        }
        self.lex_field_or_variable(ItemType::Variable)
    }

    fn lex_field_or_variable(&mut self, typ: ItemType) -> State {
        if self.at_terminator() {
            return self.emit(if typ == ItemType::Variable { ItemType::Variable } else { ItemType::Dot });
        }
        let c = self.skip_alphanumeric();
        if !self.at_terminator() {
            return self.errorf(format!("bad character {}", c.map_or("U+FFFFFFFF".into(), unicode_plus)));
        }
        self.emit(typ)
    }

    fn at_terminator(&mut self) -> bool {
        let c = self.peek();
        if is_space(c) {
            return true;
        }
        match c {
            None | Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            Some(_) => starts_with_delim(&self.input[self.pos..], RIGHT_DELIM),
        }
    }

    fn lex_char(&mut self) -> State {
        loop {
            match self.next() {
                Some('\\') => {
                    if !matches!(self.next(), None | Some('\n')) {
                        continue;
                    }
                    return self.errorf("unterminated character constant".into());
                }
                None | Some('\n') => return self.errorf("unterminated character constant".into()),
                Some('\'') => break,
                Some(_) => {}
            }
        }
        self.emit(ItemType::CharConstant)
    }

    fn lex_number(&mut self) -> State {
        if !self.scan_number() {
            let text = self.input[self.start..self.pos].to_string();
            return self.errorf(format!("bad number syntax: {}", crate::strconv::quote(&text, false)));
        }
        if let Some('+' | '-') = self.peek() {
            // Complex: 1+2i. No spaces, must end in 'i'.
            if !self.scan_number() || !self.input[..self.pos].ends_with('i') {
                let text = self.input[self.start..self.pos].to_string();
                return self.errorf(format!("bad number syntax: {}", crate::strconv::quote(&text, false)));
            }
            return self.emit(ItemType::Complex);
        }
        self.emit(ItemType::Number)
    }

    fn scan_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if is_alphanumeric(self.peek()) {
            self.next();
            return false;
        }
        true
    }

    fn lex_quote(&mut self) -> State {
        // Past the bytes no case below is about (a multi-byte char is only such bytes).
        let plain = |b: &u8| !matches!(b, b'\\' | b'\n' | b'"');
        loop {
            self.pos += self.input.as_bytes()[self.pos..].iter().take_while(|b| plain(b)).count();
            match self.next() {
                Some('\\') => {
                    if !matches!(self.next(), None | Some('\n')) {
                        continue;
                    }
                    return self.errorf("unterminated quoted string".into());
                }
                None | Some('\n') => return self.errorf("unterminated quoted string".into()),
                Some('"') => break,
                Some(_) => {}
            }
        }
        self.emit(ItemType::String)
    }

    fn lex_raw_quote(&mut self) -> State {
        let rest = &self.input.as_bytes()[self.pos..];
        let run = rest.iter().take_while(|&&b| b != b'`').count();
        self.line += rest[..run].iter().filter(|&&b| b == b'\n').count();
        self.pos += run;
        loop {
            match self.next() {
                None => return self.errorf("unterminated raw quoted string".into()),
                Some('`') => break,
                Some(_) => {}
            }
        }
        self.emit(ItemType::RawString)
    }
}

/// fmt's `%#U`: `U+0041 'A'`.
fn unicode_plus(c: char) -> String {
    let mut s = format!("U+{:04X}", c as u32);
    if crate::strconv::is_print(c) {
        s.push_str(&format!(" '{c}'"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of the last item: the error's message when lexing failed.
    fn last(input: &str) -> Option<String> {
        kinds(input).pop().map(|(_, v)| v)
    }

    fn kinds(input: &str) -> Vec<(ItemType, String)> {
        let lexed = lex(input, LexOptions { break_ok: true, continue_ok: true });
        let text = |i: &Item| if i.typ == ItemType::Error { lexed.error.clone() } else { i.val.to_string() };
        lexed.items.iter().map(|i| (i.typ, text(i))).collect()
    }

    #[test]
    fn trim_markers_and_comments() {
        use ItemType::*;
        assert_eq!(
            kinds("a  {{- .x -}}\n b{{/* c */}}"),
            vec![
                (Text, "a".into()),
                (LeftDelim, "{{".into()),
                (Field, ".x".into()),
                (RightDelim, "}}".into()),
                (Text, "b".into()),
                (Eof, "".into())
            ]
        );
        // "{{-3}}" is a number, not a trim marker.
        assert_eq!(kinds("{{-3}}")[1], (Number, "-3".into()));
    }

    /// The byte-wise runs (spaces, names, quoted strings) count lines and stop where Go's
    /// rune-by-rune lexer stops, also at multi-byte chars and at the end of the input.
    #[test]
    fn runs_keep_lines_and_stop_at_the_same_chars() {
        use ItemType::*;
        let lexed =
            lex("{{ `a\nb` }}\n{{ .x\n\n .ünï_1 \"é\\\"\" }}", LexOptions { break_ok: true, continue_ok: true });
        let seen: Vec<(ItemType, &str, usize)> = lexed.items.iter().map(|i| (i.typ, i.val, i.line)).collect();
        assert_eq!(
            seen,
            vec![
                (LeftDelim, "{{", 1),
                (Space, " ", 1),
                (RawString, "`a\nb`", 1),
                (Space, " ", 2),
                (RightDelim, "}}", 2),
                (Text, "\n", 2),
                (LeftDelim, "{{", 3),
                (Space, " ", 3),
                (Field, ".x", 3),
                (Space, "\n\n ", 3),
                (Field, ".ünï_1", 5),
                (Space, " ", 5),
                (String, "\"é\\\"\"", 5),
                (Space, " ", 5),
                (RightDelim, "}}", 5),
                (Eof, "", 5),
            ]
        );
        assert_eq!(last("{{ .abc").as_deref(), Some("unclosed action"));
        assert_eq!(last("{{ abc  ").as_deref(), Some("unclosed action"));
        assert_eq!(last("{{ .ab€ }}").as_deref(), Some("bad character U+20AC '€'"));
        assert_eq!(last("{{ `abc }}").as_deref(), Some("unterminated raw quoted string"));
        assert_eq!(last("{{ \"a\\").as_deref(), Some("unterminated quoted string"));
    }

    #[test]
    fn errors() {
        assert_eq!(last("{{ \"abc }}").as_deref(), Some("unterminated quoted string"));
        assert_eq!(last("{{ 3k }}").as_deref(), Some("bad number syntax: \"3k\""));
        assert_eq!(last("{{ .a§ }}").as_deref(), Some("bad character U+00A7 '§'"));
        assert_eq!(last("{{ ) }}").as_deref(), Some("unexpected right paren"));
        assert_eq!(last("{{ (1 }}").as_deref(), Some("unclosed left paren"));
        assert_eq!(last("{{/* x */ }}").as_deref(), Some("comment ends before closing delimiter"));
    }
}
