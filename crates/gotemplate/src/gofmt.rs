//! Go's fmt package (`Sprint`, `Sprintln`, `Sprintf`) for the values templates handle, ported from
//! Go 1.23's fmt/print.go and fmt/format.go: verbs, flags, width, precision, argument indexes and the
//! `%!verb(type=value)` error forms.

use std::fmt::Write;

use crate::strconv::{can_backquote, format_float, is_print, quote, quote_rune};
use crate::value::{MAX_NESTING, Value};

/// `fmt.Sprint`: operands formatted with `%v`, a space between two operands when neither is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut p = Printer::default();
    let mut prev_string = false;
    for (i, arg) in args.iter().enumerate() {
        let is_string = is_string_kind(arg);
        if i > 0 && !is_string && !prev_string {
            p.buf.push(' ');
        }
        p.print_arg(arg, 'v');
        prev_string = is_string;
    }
    p.buf
}

/// `fmt.Sprintln`: operands formatted with `%v`, always separated by spaces, with a final newline.
pub fn sprintln(args: &[Value]) -> String {
    let mut p = Printer::default();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            p.buf.push(' ');
        }
        p.print_arg(arg, 'v');
    }
    p.buf.push('\n');
    p.buf
}

/// `fmt.Sprintf`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut p = Printer::default();
    p.do_printf(format, args);
    p.buf
}

fn is_string_kind(value: &Value) -> bool {
    match value {
        Value::String(_) => true,
        Value::Object(o) => matches!(o.underlying(), Some(Value::String(_))),
        _ => false,
    }
}

#[derive(Default, Clone, Copy)]
struct Flags {
    wid: Option<usize>,
    prec: Option<usize>,
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
}

#[derive(Default)]
struct Printer {
    buf: String,
    f: Flags,
}

const LDIGITS: &[u8; 17] = b"0123456789abcdefx";
const UDIGITS: &[u8; 17] = b"0123456789ABCDEFX";

// fmt refuses widths and precisions above this, to bound allocations.
fn too_large(n: usize) -> bool {
    n > 1_000_000
}

fn parse_num(s: &[u8], start: usize, end: usize) -> (Option<usize>, usize) {
    if start >= end {
        return (None, end);
    }
    let mut num = 0usize;
    let mut isnum = false;
    let mut i = start;
    while i < end && s[i].is_ascii_digit() {
        if too_large(num) {
            return (None, end);
        }
        num = num * 10 + usize::from(s[i] - b'0');
        isnum = true;
        i += 1;
    }
    (isnum.then_some(num), i)
}

impl Printer {
    fn do_printf(&mut self, format: &str, args: &[Value]) {
        let s = format.as_bytes();
        let end = s.len();
        let mut arg_num = 0usize;
        let mut after_index;
        let mut reordered = false;
        let mut i = 0;
        'format: while i < end {
            let mut good_arg_num = true;
            let lasti = i;
            while i < end && s[i] != b'%' {
                i += 1;
            }
            if i > lasti {
                self.buf.push_str(&format[lasti..i]);
            }
            if i >= end {
                break;
            }
            i += 1; // the '%'
            self.f = Flags::default();
            while i < end {
                match s[i] {
                    b'#' => self.f.sharp = true,
                    b'0' => self.f.zero = true,
                    b'+' => self.f.plus = true,
                    b'-' => self.f.minus = true,
                    b' ' => self.f.space = true,
                    c => {
                        // Fast path for the common case of an ASCII lower-case verb without width etc.
                        if c.is_ascii_lowercase() && arg_num < args.len() {
                            if c == b'v' || c == b'w' {
                                self.set_v_flags();
                            }
                            self.print_arg(&args[arg_num], char::from(c));
                            arg_num += 1;
                            i += 1;
                            continue 'format;
                        }
                        break;
                    }
                }
                i += 1;
            }

            (arg_num, i, after_index) =
                self.arg_number(arg_num, format, i, args.len(), &mut reordered, &mut good_arg_num);
            if i < end && s[i] == b'*' {
                i += 1;
                match int_from_arg(args, &mut arg_num) {
                    Some(n) if n < 0 => {
                        self.f.wid = Some(n.unsigned_abs() as usize);
                        self.f.minus = true;
                        self.f.zero = false;
                    }
                    Some(n) => self.f.wid = Some(n as usize),
                    None => {
                        self.f.wid = None;
                        self.buf.push_str("%!(BADWIDTH)");
                    }
                }
                after_index = false;
            } else {
                let (wid, next) = parse_num(s, i, end);
                self.f.wid = wid;
                i = next;
                if after_index && wid.is_some() {
                    good_arg_num = false;
                }
            }

            if i + 1 < end && s[i] == b'.' {
                i += 1;
                if after_index {
                    good_arg_num = false;
                }
                (arg_num, i, after_index) =
                    self.arg_number(arg_num, format, i, args.len(), &mut reordered, &mut good_arg_num);
                if i < end && s[i] == b'*' {
                    i += 1;
                    let num = int_from_arg(args, &mut arg_num);
                    self.f.prec = match num {
                        Some(n) if n >= 0 => Some(n as usize),
                        _ => None,
                    };
                    // A negative precision is treated as absent, without complaint; a non-int is bad.
                    if num.is_none() {
                        self.buf.push_str("%!(BADPREC)");
                    }
                    after_index = false;
                } else {
                    let (prec, next) = parse_num(s, i, end);
                    i = next;
                    self.f.prec = Some(prec.unwrap_or(0));
                }
            }

            if !after_index {
                (arg_num, i, _) = self.arg_number(arg_num, format, i, args.len(), &mut reordered, &mut good_arg_num);
            }

            if i >= end {
                self.buf.push_str("%!(NOVERB)");
                break;
            }
            let Some(verb) = format[i..].chars().next() else { break };
            i += verb.len_utf8();
            match verb {
                '%' => self.buf.push('%'),
                _ if !good_arg_num => {
                    let _ = write!(self.buf, "%!{verb}(BADINDEX)");
                }
                _ if arg_num >= args.len() => {
                    let _ = write!(self.buf, "%!{verb}(MISSING)");
                }
                _ => {
                    if verb == 'v' || verb == 'w' {
                        self.set_v_flags();
                    }
                    self.print_arg(&args[arg_num], verb);
                    arg_num += 1;
                }
            }
        }

        if !reordered && arg_num < args.len() {
            self.f = Flags::default();
            self.buf.push_str("%!(EXTRA ");
            for (i, arg) in args[arg_num..].iter().enumerate() {
                if i > 0 {
                    self.buf.push_str(", ");
                }
                self.typed_value(arg);
            }
            self.buf.push(')');
        }
    }

    fn set_v_flags(&mut self) {
        self.f.sharp_v = self.f.sharp;
        self.f.sharp = false;
        self.f.plus_v = self.f.plus;
        self.f.plus = false;
    }

    /// Parses an `[n]` argument index at `i`; returns the argument number, the new position and
    /// whether an index was found.
    fn arg_number(
        &mut self,
        arg_num: usize,
        format: &str,
        i: usize,
        num_args: usize,
        reordered: &mut bool,
        good_arg_num: &mut bool,
    ) -> (usize, usize, bool) {
        let s = format.as_bytes();
        if s.len() <= i || s[i] != b'[' {
            return (arg_num, i, false);
        }
        *reordered = true;
        let rest = &s[i..];
        // parseArgNumber
        let (index, wid, ok) = 'parse: {
            if rest.len() < 3 {
                break 'parse (0, 1, false);
            }
            for j in 1..rest.len() {
                if rest[j] == b']' {
                    let (num, newi) = parse_num(rest, 1, j);
                    match num {
                        Some(n) if newi == j => break 'parse (n as isize - 1, j + 1, true),
                        _ => break 'parse (0, j + 1, false),
                    }
                }
            }
            (0, 1, false)
        };
        if ok && index >= 0 && (index as usize) < num_args {
            return (index as usize, i + wid, true);
        }
        *good_arg_num = false;
        (arg_num, i + wid, ok)
    }

    /// printArg: formats one operand at the top level.
    fn print_arg(&mut self, arg: &Value, verb: char) {
        if arg.is_nil() {
            match verb {
                'T' | 'v' => self.pad_str("<nil>"),
                _ => self.bad_verb(verb, arg),
            }
            return;
        }
        if verb == 'T' {
            let name = arg.type_name().to_string();
            self.fmt_s(&name);
            return;
        }
        self.print_value(arg, verb, 0);
    }

    fn print_value(&mut self, value: &Value, verb: char, depth: usize) {
        match value {
            Value::Nil => {
                // A nil element of a list or map (an interface holding nil).
                if self.f.sharp_v {
                    self.buf.push_str("interface {}(nil)");
                } else {
                    self.buf.push_str("<nil>");
                }
            }
            Value::Bool(b) => match verb {
                't' | 'v' => self.pad_str(if *b { "true" } else { "false" }),
                _ => self.bad_verb(verb, value),
            },
            Value::Int(i) | Value::Int64(i) => self.fmt_integer_verb(*i, value, verb),
            Value::Float(v) => self.fmt_float_verb(*v, value, verb),
            Value::String(s) => self.fmt_string_verb(s, value, verb),
            Value::List(items) => {
                if depth > MAX_NESTING {
                    self.buf.push_str("[...]");
                    return;
                }
                // Go's `%#v` writes the type and braces, `%v` brackets, as for maps below.
                let (open, separator, close) =
                    if self.f.sharp_v { ("[]interface {}{", ", ", '}') } else { ("[", " ", ']') };
                self.buf.push_str(open);
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.buf.push_str(separator);
                    }
                    self.print_value(item, verb, depth + 1);
                }
                self.buf.push(close);
            }
            Value::Map(map) => {
                if depth > MAX_NESTING {
                    self.buf.push_str("map[...]");
                    return;
                }
                if self.f.sharp_v {
                    self.buf.push_str("map[string]interface {}{");
                } else {
                    self.buf.push_str("map[");
                }
                for (i, (k, v)) in map.entries().iter().enumerate() {
                    if i > 0 {
                        self.buf.push_str(if self.f.sharp_v { ", " } else { " " });
                    }
                    self.fmt_string_verb(k, &Value::String(k.as_str().into()), verb);
                    self.buf.push(':');
                    self.print_value(v, verb, depth + 1);
                }
                self.buf.push(if self.f.sharp_v { '}' } else { ']' });
            }
            Value::Object(object) => match verb {
                'v' | 's' | 'q' | 'x' | 'X' => {
                    let shown = object.display();
                    self.fmt_string_verb(&shown, value, verb);
                }
                _ => match object.underlying() {
                    Some(underlying) if depth <= MAX_NESTING => self.print_value(&underlying, verb, depth + 1),
                    _ => self.bad_verb(verb, value),
                },
            },
        }
    }

    fn bad_verb(&mut self, verb: char, value: &Value) {
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push('(');
        self.typed_value(value);
        self.buf.push(')');
    }

    /// `<nil>`, or `TYPE=VALUE`: how fmt names an argument it could not use.
    fn typed_value(&mut self, value: &Value) {
        if value.is_nil() {
            self.buf.push_str("<nil>");
        } else {
            self.buf.push_str(value.type_name());
            self.buf.push('=');
            self.print_arg(value, 'v');
        }
    }

    fn fmt_integer_verb(&mut self, v: i64, value: &Value, verb: char) {
        let u = v as u64;
        match verb {
            'v' | 'd' => self.fmt_integer(u, 10, true, verb, LDIGITS),
            'b' => self.fmt_integer(u, 2, true, verb, LDIGITS),
            'o' | 'O' => self.fmt_integer(u, 8, true, verb, LDIGITS),
            'x' => self.fmt_integer(u, 16, true, verb, LDIGITS),
            'X' => self.fmt_integer(u, 16, true, verb, UDIGITS),
            'c' => {
                let c = rune_or_replacement(u);
                let mut tmp = [0u8; 4];
                let s = c.encode_utf8(&mut tmp).to_string();
                self.pad_str(&s);
            }
            'q' => {
                let c = rune_or_replacement(u);
                let s = quote_rune(c, self.f.plus);
                self.pad_str(&s);
            }
            'U' => self.fmt_unicode(u),
            _ => self.bad_verb(verb, value),
        }
    }

    fn fmt_float_verb(&mut self, v: f64, value: &Value, verb: char) {
        match verb {
            'v' => self.fmt_float(v, 'g', None),
            'b' | 'g' | 'G' | 'x' | 'X' => self.fmt_float(v, verb, None),
            'f' | 'e' | 'E' => self.fmt_float(v, verb, Some(6)),
            'F' => self.fmt_float(v, 'f', Some(6)),
            _ => self.bad_verb(verb, value),
        }
    }

    fn fmt_string_verb(&mut self, s: &str, value: &Value, verb: char) {
        match verb {
            'v' => {
                if self.f.sharp_v {
                    self.fmt_q(s);
                } else {
                    self.fmt_s(s);
                }
            }
            's' => self.fmt_s(s),
            'x' => self.fmt_sx(s, LDIGITS),
            'X' => self.fmt_sx(s, UDIGITS),
            'q' => self.fmt_q(s),
            _ => self.bad_verb(verb, value),
        }
    }

    fn write_padding(&mut self, n: usize) {
        let pad = if self.f.zero && !self.f.minus { '0' } else { ' ' };
        self.buf.extend(std::iter::repeat_n(pad, n));
    }

    fn pad_str(&mut self, s: &str) {
        let Some(wid) = self.f.wid.filter(|w| *w > 0) else {
            self.buf.push_str(s);
            return;
        };
        let width = wid.saturating_sub(s.chars().count());
        if self.f.minus {
            self.buf.push_str(s);
            self.write_padding(width);
        } else {
            self.write_padding(width);
            self.buf.push_str(s);
        }
    }

    /// Pads `s` without zero padding (zeros are only for numbers' own digits).
    fn pad_no_zero(&mut self, s: &str) {
        let zero = self.f.zero;
        self.f.zero = false;
        self.pad_str(s);
        self.f.zero = zero;
    }

    fn fmt_integer(&mut self, mut u: u64, base: u64, signed: bool, verb: char, digits: &[u8; 17]) {
        let negative = signed && (u as i64) < 0;
        if negative {
            u = u.wrapping_neg();
        }
        let mut prec = 0usize;
        if let Some(p) = self.f.prec {
            prec = p;
            if p == 0 && u == 0 {
                let zero = self.f.zero;
                self.f.zero = false;
                self.write_padding(self.f.wid.unwrap_or(0));
                self.f.zero = zero;
                return;
            }
        } else if self.f.zero
            && !self.f.minus
            && let Some(wid) = self.f.wid
        {
            prec = wid;
            if negative || self.f.plus || self.f.space {
                prec = prec.saturating_sub(1); // leave room for the sign
            }
        }
        // Digits are produced backwards.
        let mut out: Vec<u8> = Vec::with_capacity(24 + prec);
        loop {
            out.push(digits[(u % base) as usize]);
            u /= base;
            if u == 0 {
                break;
            }
        }
        while out.len() < prec {
            out.push(b'0');
        }
        if self.f.sharp {
            match base {
                2 => out.extend_from_slice(b"b0"),
                8 if out.last() != Some(&b'0') => out.push(b'0'),
                16 => {
                    out.push(digits[16]);
                    out.push(b'0');
                }
                _ => {}
            }
        }
        if verb == 'O' {
            out.extend_from_slice(b"o0");
        }
        if negative {
            out.push(b'-');
        } else if self.f.plus {
            out.push(b'+');
        } else if self.f.space {
            out.push(b' ');
        }
        out.reverse();
        let s = String::from_utf8_lossy(&out).into_owned();
        self.pad_no_zero(&s);
    }

    fn fmt_unicode(&mut self, u: u64) {
        let mut prec = 4;
        if let Some(p) = self.f.prec.filter(|p| *p > 4) {
            prec = p;
        }
        let mut s = format!("U+{u:0prec$X}");
        if self.f.sharp
            && let Some(c) = u32::try_from(u).ok().and_then(char::from_u32)
            && is_print(c)
        {
            s.push_str(" '");
            s.push(c);
            s.push('\'');
        }
        self.pad_no_zero(&s);
    }

    fn truncate<'s>(&self, s: &'s str) -> &'s str {
        match self.f.prec {
            Some(n) => match s.char_indices().nth(n) {
                Some((i, _)) => &s[..i],
                None => s,
            },
            None => s,
        }
    }

    fn fmt_s(&mut self, s: &str) {
        let s = self.truncate(s);
        self.pad_str(s);
    }

    fn fmt_sx(&mut self, s: &str, digits: &[u8; 17]) {
        let bytes = s.as_bytes();
        let mut length = bytes.len();
        if let Some(p) = self.f.prec {
            length = length.min(p);
        }
        let mut width = 2 * length;
        if width > 0 {
            if self.f.space {
                if self.f.sharp {
                    width *= 2;
                }
                width += length - 1;
            } else if self.f.sharp {
                width += 2;
            }
        } else {
            if let Some(wid) = self.f.wid {
                self.write_padding(wid);
            }
            return;
        }
        let wid = self.f.wid.unwrap_or(0);
        if wid > width && !self.f.minus {
            self.write_padding(wid - width);
        }
        if self.f.sharp {
            self.buf.push('0');
            self.buf.push(char::from(digits[16]));
        }
        for (i, c) in bytes[..length].iter().enumerate() {
            if self.f.space && i > 0 {
                self.buf.push(' ');
                if self.f.sharp {
                    self.buf.push('0');
                    self.buf.push(char::from(digits[16]));
                }
            }
            self.buf.push(char::from(digits[usize::from(c >> 4)]));
            self.buf.push(char::from(digits[usize::from(c & 0xF)]));
        }
        if wid > width && self.f.minus {
            self.write_padding(wid - width);
        }
    }

    fn fmt_q(&mut self, s: &str) {
        let s = self.truncate(s);
        if self.f.sharp && can_backquote(s) {
            let quoted = format!("`{s}`");
            self.pad_str(&quoted);
            return;
        }
        let quoted = quote(s, self.f.plus);
        self.pad_str(&quoted);
    }

    fn fmt_float(&mut self, v: f64, verb: char, default_prec: Option<usize>) {
        let prec = self.f.prec.or(default_prec);
        let mut num = format_float(v, verb, prec);
        // num always starts with a sign from here on.
        if !num.starts_with('-') && !num.starts_with('+') {
            num.insert(0, '+');
        }
        if self.f.space && num.starts_with('+') && !self.f.plus {
            num.replace_range(0..1, " ");
        }
        let second = num.as_bytes().get(1).copied();
        if second == Some(b'I') || second == Some(b'N') {
            if second == Some(b'N') && !self.f.space && !self.f.plus {
                num.remove(0);
            }
            self.pad_no_zero(&num);
            return;
        }
        if self.f.sharp && verb != 'b' {
            let mut digits: isize = match verb {
                'v' | 'g' | 'G' | 'x' => prec.map_or(6, |p| p as isize),
                _ => 0,
            };
            let mut tail = String::new();
            let mut has_decimal_point = false;
            let mut saw_nonzero_digit = false;
            let bytes: Vec<u8> = num.bytes().collect();
            let mut cut = bytes.len();
            for (i, &c) in bytes.iter().enumerate().skip(1) {
                match c {
                    b'.' => has_decimal_point = true,
                    b'p' | b'P' => {
                        cut = i;
                        break;
                    }
                    b'e' | b'E' if verb != 'x' && verb != 'X' => {
                        cut = i;
                        break;
                    }
                    _ => {
                        if c != b'0' {
                            saw_nonzero_digit = true;
                        }
                        if saw_nonzero_digit {
                            digits -= 1;
                        }
                    }
                }
            }
            tail.push_str(&num[cut..]);
            num.truncate(cut);
            if !has_decimal_point {
                if num.len() == 2 && num.as_bytes()[1] == b'0' {
                    digits -= 1;
                }
                num.push('.');
            }
            while digits > 0 {
                num.push('0');
                digits -= 1;
            }
            num.push_str(&tail);
        }
        if self.f.plus || !num.starts_with('+') {
            let wid = self.f.wid.unwrap_or(0);
            if self.f.zero && !self.f.minus && wid > num.len() {
                let (sign, rest) = num.split_at(1);
                self.buf.push_str(sign);
                self.write_padding(wid - num.len());
                self.buf.push_str(rest);
                return;
            }
            self.pad_str(&num);
            return;
        }
        self.pad_str(&num[1..]);
    }
}

/// The argument a `*` width or precision takes, moving `arg_num` past it when there is one.
fn int_from_arg(args: &[Value], arg_num: &mut usize) -> Option<i64> {
    let arg = args.get(*arg_num)?;
    *arg_num += 1;
    arg.as_int().filter(|n| n.unsigned_abs() <= 1_000_000)
}

fn rune_or_replacement(u: u64) -> char {
    u32::try_from(u).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(format: &str, args: &[Value]) -> String {
        sprintf(format, args)
    }

    #[test]
    fn floats_print_as_go_does() {
        let cases = [
            (1e6, "1e+06"),
            (100000.0, "100000"),
            (3.5, "3.5"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (123456789.0, "1.23456789e+08"),
            (-0.0, "-0"),
            (1e21, "1e+21"),
            (f64::INFINITY, "+Inf"),
            (f64::NAN, "NaN"),
        ];
        for (v, want) in cases {
            assert_eq!(sprint(&[Value::Float(v)]), want, "{v}");
        }
        assert_eq!(
            f("%f|%.2f|%e|%g|%.3g|%8.3f|%-8.2f|%08.3f", &vec![Value::Float(1.23456); 8]),
            "1.234560|1.23|1.234560e+00|1.23456|1.23|   1.235|1.23    |0001.235"
        );
        assert_eq!(
            f("%x|%X|%b", &[Value::Float(3.0), Value::Float(1.0), Value::Float(1.0)]),
            "0x1.8p+01|0X1P+00|4503599627370496p-52"
        );
        assert_eq!(f("%#g|%#.3x", &[Value::Float(1.0), Value::Float(1.0)]), "1.00000|0x1.000p+00");
        assert_eq!(f("%+.1e|% f", &[Value::Float(12345.0), Value::Float(1.0)]), "+1.2e+04| 1.000000");
    }

    #[test]
    fn hex_floats_round_like_strconv() {
        let args = [Value::Float(1.0 / 3.0), Value::Float(1.5), Value::Float(0.1), Value::Float(1e-320)];
        assert_eq!(f("%.3x|%.0x|%x|%x", &args), "0x1.555p-02|0x1p+01|0x1.999999999999ap-04|0x1.fap-1064");
    }

    #[test]
    fn integers_strings_and_errors() {
        let i = Value::Int(255);
        assert_eq!(
            f(
                "%d|%5d|%-5d|%05d|%x|%X|%#x|%o|%#o|%O|%b|%c|%q|%U|%#U",
                &[
                    i.clone(),
                    i.clone(),
                    i.clone(),
                    i.clone(),
                    i.clone(),
                    i.clone(),
                    i.clone(),
                    i.clone(),
                    i.clone(),
                    i.clone(),
                    i.clone(),
                    Value::Int(65),
                    Value::Int(65),
                    Value::Int(65),
                    Value::Int(65)
                ]
            ),
            "255|  255|255  |00255|ff|FF|0xff|377|0377|0o377|11111111|A|'A'|U+0041|U+0041 'A'"
        );
        assert_eq!(
            f(
                "%s|%q|%x|% x|%10s|%-4s|%.2s|%#q",
                &[
                    Value::from("hi"),
                    Value::from("a\"b\n"),
                    Value::from("hi"),
                    Value::from("hi"),
                    Value::from("hi"),
                    Value::from("hi"),
                    Value::from("hello"),
                    Value::from("x")
                ]
            ),
            "hi|\"a\\\"b\\n\"|6869|68 69|        hi|hi  |he|`x`"
        );
        assert_eq!(f("%d %s", &[Value::from("x"), Value::Int(1)]), "%!d(string=x) %!s(int=1)");
        assert_eq!(f("%d", &[]), "%!d(MISSING)");
        assert_eq!(f("x", &[Value::Int(1), Value::from("a")]), "x%!(EXTRA int=1, string=a)");
        assert_eq!(f("%", &[]), "%!(NOVERB)");
        assert_eq!(f("%z", &[Value::Int(1)]), "%!z(int=1)");
        assert_eq!(f("%[2]d %[1]d", &[Value::Int(1), Value::Int(2)]), "2 1");
        assert_eq!(f("%[3]d", &[Value::Int(1)]), "%!d(BADINDEX)");
        assert_eq!(
            f(
                "%*d|%-*d|%.*f",
                &[Value::Int(4), Value::Int(7), Value::Int(3), Value::Int(7), Value::Int(1), Value::Float(2.25)]
            ),
            "   7|7  |2.2"
        );
        assert_eq!(
            f(
                "%T %T %T %T %T",
                &[Value::Int(1), Value::Float(1.0), Value::Nil, Value::list(vec![]), Value::Map(crate::Map::new())]
            ),
            "int float64 <nil> []interface {} map[string]interface {}"
        );
        assert_eq!(f("%s %d %v", &[Value::Nil, Value::Nil, Value::Nil]), "%!s(<nil>) %!d(<nil>) <nil>");
        assert_eq!(f("%t %v", &[Value::Bool(true), Value::Bool(false)]), "true false");
    }

    #[test]
    fn composites() {
        let m = crate::Map::new();
        m.insert("b", Value::Float(2.0));
        m.insert("a", Value::list(vec![Value::Int(1), Value::Nil, Value::from("x")]));
        let m = Value::Map(m);
        assert_eq!(sprint(std::slice::from_ref(&m)), "map[a:[1 <nil> x] b:2]");
        assert_eq!(
            f("%d", std::slice::from_ref(&m)),
            "map[%!d(string=a):[1 <nil> %!d(string=x)] %!d(string=b):%!d(float64=2)]"
        );
        assert_eq!(
            f("%#v", &[m]),
            "map[string]interface {}{\"a\":[]interface {}{1, interface {}(nil), \"x\"}, \"b\":2}"
        );
        assert_eq!(
            sprint(&[Value::from("a"), Value::Int(1), Value::Int(2), Value::from("b"), Value::from("c")]),
            "a1 2bc"
        );
        assert_eq!(sprintln(&[Value::from("a"), Value::Int(1)]), "a 1\n");
    }
}
