//! Writing as helm writes: go-yaml v2's emitter (`toYaml`), go-yaml v3's (`toYamlPretty`),
//! and the natural order of keys.

use crate::resolve::{Dialect, writes_plain};
use serde_json::Value as Json;

/// A value as go-yaml v2 sees it after sigs.k8s.io/yaml's JSON round trip.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in go-yaml's key order.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The node JSON data becomes: objects' keys sorted as go-yaml sorts them.
    pub fn from_json(json: &Json) -> Node {
        match json {
            Json::Null => Node::Null,
            Json::Bool(b) => Node::Bool(*b),
            Json::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Node::Int(i),
                (None, Some(u)) => Node::Uint(u),
                _ => Node::from_float(n.as_f64().unwrap_or(0.0)),
            },
            Json::String(s) => Node::Str(s.clone()),
            Json::Array(items) => Node::Seq(items.iter().map(Node::from_json).collect()),
            Json::Object(map) => {
                let mut entries: Vec<(String, Node)> =
                    map.iter().map(|(k, v)| (k.clone(), Node::from_json(v))).collect();
                entries.sort_by(|a, b| natural_order(&a.0, &b.0, Flavor::V2));
                Node::Map(entries)
            }
        }
    }

    /// A float64 after encoding/json wrote it and go-yaml read it back: integral values that
    /// JSON writes without an exponent come back as integers.
    pub fn from_float(f: f64) -> Node {
        if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e21 {
            if f >= i64::MIN as f64 && f < i64::MAX as f64 {
                return Node::Int(f as i64);
            }
            if f >= 0.0 && f < u64::MAX as f64 {
                return Node::Uint(f as u64);
            }
        }
        Node::Float(f)
    }
}

/// go-yaml's key order (`keyList.Less`): runs of digits compare as numbers, and a letter
/// sorts after anything that is not one (in v3, before it when the common prefix ends in a digit).
pub fn natural_order(a: &str, b: &str, flavor: Flavor) -> std::cmp::Ordering {
    // Keys are ASCII almost always: their bytes are their characters, with no list of them made
    // for each comparison (which was most of the time `toYaml` took to sort a large map).
    if a.is_ascii() && b.is_ascii() {
        natural_order_of(a.as_bytes(), b.as_bytes(), flavor)
    } else {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        natural_order_of(&a, &b, flavor)
    }
}

/// [`natural_order`] of two keys' characters.
fn natural_order_of<C: Copy + Into<char>>(a: &[C], b: &[C], flavor: Flavor) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let less = |ar: &[C], br: &[C]| -> bool {
        let (char_a, char_b) = (|i: usize| -> char { ar[i].into() }, |i: usize| -> char { br[i].into() });
        let digit = |c: char| c.is_ascii_digit();
        let mut digits = false;
        for i in 0..ar.len().min(br.len()) {
            let (a, b) = (char_a(i), char_b(i));
            if a == b {
                digits = a.is_numeric();
                continue;
            }
            let (al, bl) = (a.is_alphabetic(), b.is_alphabetic());
            if al && bl {
                return a < b;
            }
            if al || bl {
                return if digits && flavor == Flavor::V3 { al } else { bl };
            }
            let (mut an, mut bn) = (0i64, 0i64);
            if a == '0' || b == '0' {
                let mut j = i;
                while j > 0 && digit(char_a(j - 1)) {
                    j -= 1;
                    if char_a(j) != '0' {
                        an = 1;
                        bn = 1;
                        break;
                    }
                }
            }
            let mut ai = i;
            while ai < ar.len() && digit(char_a(ai)) {
                an = an.wrapping_mul(10).wrapping_add(char_a(ai) as i64 - '0' as i64);
                ai += 1;
            }
            let mut bi = i;
            while bi < br.len() && digit(char_b(bi)) {
                bn = bn.wrapping_mul(10).wrapping_add(char_b(bi) as i64 - '0' as i64);
                bi += 1;
            }
            if an != bn {
                return an < bn;
            }
            if ai != bi {
                return ai < bi;
            }
            return a < b;
        }
        ar.len() < br.len()
    };
    if less(a, b) {
        Ordering::Less
    } else if less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

/// Which go-yaml writes: v2 (`Marshal`, under sigs.k8s.io/yaml) or v3 (an `Encoder` with
/// `SetIndent(2)`). v3 indents lists under keys, never folds long lines, orders keys slightly
/// differently, and lets tabs into literal blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    V2,
    V3,
}

impl Flavor {
    fn dialect(self) -> Dialect {
        match self {
            Flavor::V2 => Dialect::GoYamlV2,
            Flavor::V3 => Dialect::GoYamlV3,
        }
    }
}

/// go-yaml v2's `Marshal` of `node`, ending in a newline.
pub fn to_string(node: &Node) -> String {
    emit(node, Flavor::V2)
}

/// go-yaml v3's `Encoder.Encode` of `node` with indent 2, ending in a newline; `node`'s maps
/// must be in v3's key order ([`natural_order`] with [`Flavor::V3`]).
pub fn to_string_v3(node: &Node) -> String {
    emit(node, Flavor::V3)
}

pub(super) fn emit(node: &Node, flavor: Flavor) -> String {
    let mut emitter = Emitter { out: String::new(), column: 0, indent: -1, whitespace: true, indention: true, flavor };
    emitter.node(node, Context::Root);
    if !emitter.out.ends_with('\n') {
        emitter.out.push('\n');
    }
    emitter.out
}

pub(super) const BEST_INDENT: i64 = 2;
pub(super) const BEST_WIDTH: usize = 80;

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Context {
    Root,
    SequenceItem,
    MappingKey,
    MappingValue,
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// The state of libyaml's emitter that block-style output needs.
pub(super) struct Emitter {
    out: String,
    column: usize,
    indent: i64,
    whitespace: bool,
    indention: bool,
    flavor: Flavor,
}

impl Emitter {
    /// The column past which a space may become a line break: none in v3 (its width is -1).
    fn best_width(&self) -> usize {
        match self.flavor {
            Flavor::V2 => BEST_WIDTH,
            Flavor::V3 => usize::MAX,
        }
    }

    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(&mut self, indicator: &str, need_whitespace: bool, is_whitespace: bool, is_indention: bool) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        for c in indicator.chars() {
            self.put(c);
        }
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) -> i64 {
        let saved = self.indent;
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if !indentless {
            self.indent += BEST_INDENT;
        }
        saved
    }

    fn node(&mut self, node: &Node, context: Context) {
        match node {
            Node::Seq(items) if items.is_empty() => self.flow_empty("[]"),
            Node::Map(entries) if entries.is_empty() => self.flow_empty("{}"),
            Node::Seq(items) => {
                let indentless = self.flavor == Flavor::V2 && context == Context::MappingValue && !self.indention;
                let saved = self.increase_indent(false, indentless);
                for item in items {
                    self.write_indent();
                    self.write_indicator("-", true, false, true);
                    self.node(item, Context::SequenceItem);
                }
                self.indent = saved;
            }
            Node::Map(entries) => {
                let saved = self.increase_indent(false, false);
                for (key, value) in entries {
                    self.write_indent();
                    self.string(key, Context::MappingKey);
                    self.write_indicator(":", false, false, false);
                    self.node(value, Context::MappingValue);
                }
                self.indent = saved;
            }
            Node::Null => self.scalar("null", Style::Plain, context),
            Node::Bool(b) => self.scalar(if *b { "true" } else { "false" }, Style::Plain, context),
            Node::Int(i) => self.scalar(&i.to_string(), Style::Plain, context),
            Node::Uint(u) => self.scalar(&u.to_string(), Style::Plain, context),
            Node::Float(f) => {
                let text = match gotemplate::strconv::format_float(*f, 'g', None).as_str() {
                    "+Inf" => ".inf".to_string(),
                    "-Inf" => "-.inf".to_string(),
                    "NaN" => ".nan".to_string(),
                    other => other.to_string(),
                };
                self.scalar(&text, Style::Plain, context)
            }
            Node::Str(s) => self.string(s, context),
        }
    }

    fn flow_empty(&mut self, text: &str) {
        let saved = self.increase_indent(true, false);
        self.write_indicator(&text[..1], true, true, false);
        self.write_indicator(&text[1..], false, false, false);
        self.indent = saved;
    }

    /// go-yaml's `stringv`: plain unless the text would read back as something else, literal
    /// when it has a newline.
    fn string(&mut self, s: &str, context: Context) {
        let style = if s.contains('\n') {
            Style::Literal
        } else if writes_plain(s, self.flavor.dialect()) {
            Style::Plain
        } else {
            Style::Double
        };
        self.scalar(s, style, context)
    }

    fn scalar(&mut self, value: &str, requested: Style, context: Context) {
        let analysis = Analysis::of(value, self.flavor);
        let simple_key = context == Context::MappingKey;
        let mut style = requested;
        if simple_key && analysis.multiline {
            style = Style::Double;
        }
        if style == Style::Plain && (!analysis.block_plain_allowed || (value.is_empty() && simple_key)) {
            style = Style::Single;
        }
        if style == Style::Single && !analysis.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!analysis.block_allowed || simple_key) {
            style = Style::Double;
        }
        let saved = self.increase_indent(true, false);
        let allow_breaks = !simple_key;
        match style {
            Style::Plain => self.write_plain(value, allow_breaks),
            Style::Single => self.write_single(value, allow_breaks),
            Style::Double => self.write_double(value, allow_breaks),
            Style::Literal => self.write_literal(value),
        }
        self.indent = saved;
    }

    fn write_plain(&mut self, value: &str, allow_breaks: bool) {
        if !self.whitespace {
            self.put(' ');
        }
        self.write_folding(value, allow_breaks, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    fn write_single(&mut self, value: &str, allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        self.write_folding(value, allow_breaks, true);
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    /// The text of a plain or single-quoted scalar (libyaml's two loops, which differ only in
    /// these points): a space past the best width becomes a line break, line breaks are
    /// doubled; a quoted scalar never folds at its first or last character and doubles `'`.
    fn write_folding(&mut self, value: &str, allow_breaks: bool, single_quoted: bool) {
        let (mut spaces, mut breaks) = (false, false);
        let mut chars = value.chars().enumerate().peekable();
        while let Some((i, c)) = chars.next() {
            let next = chars.peek().map(|&(_, next)| next);
            if c == ' ' {
                let inside = !single_quoted || (i > 0 && next.is_some());
                if allow_breaks && !spaces && self.column > self.best_width() && inside && next != Some(' ') {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                breaks = self.write_text(c, breaks);
                if !breaks {
                    spaces = false;
                    if single_quoted && c == '\'' {
                        self.put('\'');
                    }
                }
            }
        }
    }

    /// One character of a scalar's text other than a folded space: a line break, after which
    /// the text is indented, or a character, indented first if it follows breaks (`breaks`).
    /// Returns whether it was a break.
    fn write_text(&mut self, c: char, breaks: bool) -> bool {
        if is_break(c) {
            self.write_break(c);
            self.indention = true;
            return true;
        }
        if breaks {
            self.write_indent();
        }
        self.put(c);
        self.indention = false;
        false
    }

    fn write_double(&mut self, value: &str, allow_breaks: bool) {
        self.write_indicator("\"", true, false, false);
        let chars: Vec<char> = value.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || c == '\u{FEFF}' || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match c {
                    '\0' => self.put('0'),
                    '\u{7}' => self.put('a'),
                    '\u{8}' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\u{b}' => self.put('v'),
                    '\u{c}' => self.put('f'),
                    '\r' => self.put('r'),
                    '\u{1b}' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{a0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    other => {
                        let v = other as u32;
                        let (letter, width) = if v <= 0xFF {
                            ('x', 2)
                        } else if v <= 0xFFFF {
                            ('u', 4)
                        } else {
                            ('U', 8)
                        };
                        self.put(letter);
                        for ch in format!("{v:0width$X}").chars() {
                            self.put(ch);
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks && !spaces && self.column > self.best_width() && i > 0 && i < chars.len() - 1 {
                    self.write_indent();
                    if chars.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_literal(&mut self, value: &str) {
        self.write_indicator("|", true, false, false);
        let chars: Vec<char> = value.chars().collect();
        if chars.first().is_some_and(|&c| c == ' ' || is_break(c)) {
            self.write_indicator(&BEST_INDENT.to_string(), false, false, false);
        }
        let chomp = match chars.len() {
            0 => Some("-"),
            n if !is_break(chars[n - 1]) => Some("-"),
            1 => Some("+"),
            n if is_break(chars[n - 2]) => Some("+"),
            _ => None,
        };
        if let Some(chomp) = chomp {
            self.write_indicator(chomp, false, false, false);
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for &c in &chars {
            breaks = self.write_text(c, breaks);
        }
    }
}

pub(super) fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// libyaml's `is_printable`: tab and carriage return are not, nor anything beyond the BMP.
pub(super) fn is_printable(c: char) -> bool {
    matches!(c as u32, 0x0A | 0x20..=0x7E | 0x85 | 0xA0..=0xD7FF | 0xE000..=0xFFFD) && c != '\u{FEFF}'
}

/// What libyaml's `yaml_emitter_analyze_scalar` decides about a scalar (block context).
pub(super) struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

impl Analysis {
    fn of(value: &str, flavor: Flavor) -> Analysis {
        if value.is_empty() {
            return Analysis {
                multiline: false,
                block_plain_allowed: true,
                single_quoted_allowed: true,
                block_allowed: false,
            };
        }
        let mut block_indicators = value.starts_with("---") || value.starts_with("...");
        let (mut line_breaks, mut special, mut tabs) = (false, false, false);
        let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
            (false, false, false, false);
        let (mut break_space, mut space_break) = (false, false);
        let (mut previous_space, mut previous_break) = (false, false);
        let mut preceded_by_whitespace = true;
        let mut chars = value.chars().enumerate().peekable();
        while let Some((i, c)) = chars.next() {
            let next = chars.peek().map(|&(_, next)| next);
            let is_last = next.is_none();
            let followed_by_whitespace = matches!(next, None | Some(' ' | '\t'));
            if i == 0 {
                match c {
                    '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@' | '`' => {
                        block_indicators = true
                    }
                    '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                    _ => {}
                }
            } else {
                match c {
                    ':' if followed_by_whitespace => block_indicators = true,
                    '#' if preceded_by_whitespace => block_indicators = true,
                    _ => {}
                }
            }
            // v3 tells tabs apart: they rule out plain and single-quoted styles, not literal blocks.
            if c == '\t' && flavor == Flavor::V3 {
                tabs = true;
            } else if !is_printable(c) {
                special = true;
            }
            if c == ' ' {
                leading_space |= i == 0;
                trailing_space |= is_last;
                break_space |= previous_break;
                previous_space = true;
                previous_break = false;
            } else if is_break(c) {
                line_breaks = true;
                leading_break |= i == 0;
                trailing_break |= is_last;
                space_break |= previous_space;
                previous_space = false;
                previous_break = true;
            } else {
                previous_space = false;
                previous_break = false;
            }
            preceded_by_whitespace = matches!(c, ' ' | '\t') || is_break(c);
        }
        let mut analysis = Analysis {
            multiline: line_breaks,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: true,
        };
        if leading_space || leading_break || trailing_space || trailing_break {
            analysis.block_plain_allowed = false;
        }
        if trailing_space {
            analysis.block_allowed = false;
        }
        if break_space {
            analysis.block_plain_allowed = false;
            analysis.single_quoted_allowed = false;
        }
        if space_break || tabs || special {
            analysis.block_plain_allowed = false;
            analysis.single_quoted_allowed = false;
        }
        if space_break || special {
            analysis.block_allowed = false;
        }
        if line_breaks || block_indicators {
            analysis.block_plain_allowed = false;
        }
        analysis
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ASCII keys take the bytes' path; it orders every pair as the characters' path does.
    #[test]
    fn ascii_keys_order_as_their_characters_do() {
        let keys = [
            "", "a", "b", "A", "a1", "a2", "a10", "a01", "a001", "a0", "1", "10", "9", "09", "_x", "x_", "-", "key",
            "key2", "key10", "k8s", "v1beta1", "v1", "v10", "z9z", "z10z", "0", "00", "a b", "a.b", "a-b",
        ];
        for flavor in [Flavor::V2, Flavor::V3] {
            for a in keys {
                for b in keys {
                    let chars = |s: &str| s.chars().collect::<Vec<char>>();
                    assert_eq!(
                        natural_order(a, b, flavor),
                        natural_order_of(&chars(a), &chars(b), flavor),
                        "{a:?} {b:?} {flavor:?}"
                    );
                }
            }
        }
        assert_eq!(natural_order("a2", "a10", Flavor::V2), std::cmp::Ordering::Less);
        assert_eq!(natural_order("1", "a", Flavor::V2), std::cmp::Ordering::Less);
        assert_eq!(natural_order("ä1", "ä10", Flavor::V2), std::cmp::Ordering::Less);
    }
}
