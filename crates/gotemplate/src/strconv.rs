//! Go's strconv for what templates print: `FormatFloat` (shortest and fixed forms, 32- and 64-bit),
//! `Quote` and `QuoteToASCII`, and `unicode.IsPrint` as they use it. Below `fmt` (`gofmt`) and the
//! parser's messages, which quote names as Go does.

use std::fmt::Write;

/// Go's `strconv.FormatFloat(v, verb, prec, 64)`; `None` precision is the shortest exact form.
pub fn format_float(v: f64, verb: char, prec: Option<usize>) -> String {
    format_float_bits(v, verb, prec, 64)
}

/// Go's `strconv.FormatFloat(v, verb, prec, bits)` for `bits` 32 or 64: at 32 bits the shortest
/// form is the shortest that reads back as the same float32 (go-yaml writes float keys so, and
/// sigs.k8s.io/yaml a float read into a string field).
pub fn format_float_bits(v: f64, verb: char, prec: Option<usize>, bits: u32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let neg = v.is_sign_negative();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let a = v.abs();
    match verb {
        'b' => {
            let bits = a.to_bits();
            let mut exp = ((bits >> 52) & 0x7FF) as i64;
            let mut mant = bits & ((1u64 << 52) - 1);
            if exp == 0 {
                exp += 1;
            } else {
                mant |= 1u64 << 52;
            }
            exp -= 1023 + 52;
            let _ = write!(out, "{mant}p{}{exp}", if exp >= 0 { "+" } else { "" });
            out
        }
        'x' | 'X' => {
            out.push_str(&format_hex_float(a, prec, verb == 'X'));
            out
        }
        _ => {
            let upper = verb.is_ascii_uppercase();
            let lower = verb.to_ascii_lowercase();
            let digs = match (lower, prec) {
                (_, None) if bits == 32 => Decimal::from_exp_form(&format!("{:e}", a as f32)),
                (_, None) => Decimal::shortest(a),
                ('e', Some(p)) => Decimal::rounded(a, p + 1),
                ('g', Some(p)) => Decimal::rounded(a, p.max(1)),
                (_, Some(p)) => Decimal::fixed(a, p),
            };
            match lower {
                'e' => {
                    let p = prec.unwrap_or(digs.digits.len().saturating_sub(1));
                    fmt_e(&mut out, &digs, p, upper);
                }
                'f' => {
                    let p = prec.unwrap_or_else(|| (digs.digits.len() as isize - digs.dp).max(0) as usize);
                    fmt_f(&mut out, &digs, p);
                }
                _ => {
                    let nd = digs.digits.len() as isize;
                    let mut p = match prec {
                        None => nd,
                        Some(p) => p.max(1) as isize,
                    };
                    let mut eprec = p;
                    if eprec > nd && nd >= digs.dp {
                        eprec = nd;
                    }
                    if prec.is_none() {
                        eprec = 6;
                    }
                    let exp = digs.dp - 1;
                    if exp < -4 || exp >= eprec {
                        if p > nd {
                            p = nd;
                        }
                        fmt_e(&mut out, &digs, (p - 1).max(0) as usize, upper);
                    } else {
                        if p > digs.dp {
                            p = nd;
                        }
                        fmt_f(&mut out, &digs, (p - digs.dp).max(0) as usize);
                    }
                }
            }
            out
        }
    }
}

/// A non-negative decimal: `0.d1d2d3… × 10^dp`, with no trailing zeros in `digits` (empty for zero).
struct Decimal {
    digits: Vec<u8>,
    dp: isize,
}

impl Decimal {
    fn from_exp_form(s: &str) -> Decimal {
        // Rust's `{:e}` form: "d.ddde[-]x" or "de[-]x".
        let (mantissa, exp) = s.split_once('e').unwrap_or((s, "0"));
        let exp: isize = exp.parse().unwrap_or(0);
        let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            return Decimal { digits, dp: 0 };
        }
        Decimal { digits, dp: exp + 1 }
    }

    /// The shortest digits that read back as `a` (Rust and Go both produce these).
    fn shortest(a: f64) -> Decimal {
        Decimal::from_exp_form(&format!("{a:e}"))
    }

    /// `a` correctly rounded to `n` significant digits.
    fn rounded(a: f64, n: usize) -> Decimal {
        Decimal::from_exp_form(&format!("{a:.prec$e}", prec = n.saturating_sub(1)))
    }

    /// `a` correctly rounded to `n` digits after the decimal point.
    fn fixed(a: f64, n: usize) -> Decimal {
        let s = format!("{a:.n$}");
        let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
        let mut digits: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
        let mut dp = int.len() as isize;
        while digits.first() == Some(&0) {
            digits.remove(0);
            dp -= 1;
        }
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            dp = 0;
        }
        Decimal { digits, dp }
    }

    fn digit(&self, i: isize) -> char {
        if i >= 0 && (i as usize) < self.digits.len() { char::from(b'0' + self.digits[i as usize]) } else { '0' }
    }
}

fn fmt_e(out: &mut String, d: &Decimal, prec: usize, upper: bool) {
    out.push(if d.digits.is_empty() { '0' } else { d.digit(0) });
    if prec > 0 {
        out.push('.');
        for i in 1..=prec as isize {
            out.push(d.digit(i));
        }
    }
    out.push(if upper { 'E' } else { 'e' });
    let exp = if d.digits.is_empty() { 0 } else { d.dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    let exp = exp.unsigned_abs();
    if exp < 10 {
        out.push('0');
    }
    let _ = write!(out, "{exp}");
}

fn fmt_f(out: &mut String, d: &Decimal, prec: usize) {
    if d.dp > 0 {
        for i in 0..d.dp {
            out.push(d.digit(i));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 0..prec as isize {
            out.push(d.digit(d.dp + i));
        }
    }
}

/// `%x` of a float: `0x1.8p+01`, as strconv's 'x' format (mantissa normalised to 1.xxx).
fn format_hex_float(a: f64, prec: Option<usize>, upper: bool) -> String {
    let bits = a.to_bits();
    let mut exp = ((bits >> 52) & 0x7FF) as i64;
    let mut mant = bits & ((1u64 << 52) - 1);
    if a == 0.0 {
        exp = 0;
        mant = 0;
    } else if exp == 0 {
        // Subnormal: normalise.
        exp = -1022;
        while mant & (1u64 << 52) == 0 {
            mant <<= 1;
            exp -= 1;
        }
        mant &= (1u64 << 52) - 1;
    } else {
        exp -= 1023;
    }
    // 52 fraction bits = 13 hex digits.
    let mut lead = if a == 0.0 { 0u64 } else { 1u64 };
    let mut frac = mant;
    let mut ndigits = 13usize;
    if let Some(p) = prec
        && p < 13
    {
        let shift = (13 - p) * 4;
        let full = (lead << 52) | frac;
        let half = 1u64 << (shift - 1);
        let rem = full & ((1u64 << shift) - 1);
        let mut kept = full >> shift;
        if rem > half || (rem == half && kept & 1 == 1) {
            kept += 1;
        }
        let total_bits = 52 - shift;
        if kept >> (total_bits + 1) != 0 || (kept >> total_bits) > 1 {
            kept >>= 1;
            exp += 1;
        }
        lead = kept >> total_bits;
        frac = kept & ((1u64 << total_bits) - 1);
        ndigits = p;
    }
    let mut hex = if ndigits > 0 { format!("{frac:0ndigits$x}") } else { String::new() };
    if prec.is_none() {
        while hex.ends_with('0') {
            hex.pop();
        }
    } else if let Some(p) = prec {
        while hex.len() < p {
            hex.push('0');
        }
    }
    let mut s = format!("0x{lead}");
    if !hex.is_empty() {
        s.push('.');
        s.push_str(&hex);
    }
    let _ = write!(s, "p{}{:02}", if exp >= 0 { '+' } else { '-' }, exp.unsigned_abs());
    if upper { s.to_uppercase() } else { s }
}

/// Go's `unicode.IsPrint`, approximated without Unicode tables: unassigned code points count as
/// printable.
pub(crate) fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    let format_chars = matches!(
        u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E
            | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0xE0001 | 0xE0020..=0xE007F
    );
    let private_or_nonchar =
        matches!(u, 0xE000..=0xF8FF | 0xF0000..=0x10FFFF) || (u & 0xFFFE) == 0xFFFE || (0xFDD0..=0xFDEF).contains(&u);
    !format_chars && !private_or_nonchar
}

fn push_escaped(out: &mut String, c: char, quote_char: char, ascii_only: bool) {
    if c == quote_char || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if ascii_only {
        if c.is_ascii() && is_print(c) {
            out.push(c);
            return;
        }
    } else if is_print(c) {
        out.push(c);
        return;
    }
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0C' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0B' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c == '\x7F' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

/// `s` double-quoted into `out`: the escapes JSON, YAML and TOML (and Go) all write alike
/// here, and each other character as `other` writes it (itself, or its language's escape).
pub fn write_quoted(out: &mut String, s: &str, mut other: impl FnMut(&mut String, char)) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => other(out, c),
        }
    }
    out.push('"');
}

/// Go's `strconv.Quote` (`QuoteToASCII` when `ascii_only`).
pub fn quote(s: &str, ascii_only: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c, '"', ascii_only);
    }
    out.push('"');
    out
}

/// Go's `strconv.QuoteRune` (`QuoteRuneToASCII` when `ascii_only`): what `%q` prints of a rune.
pub fn quote_rune(c: char, ascii_only: bool) -> String {
    let mut out = String::from("'");
    push_escaped(&mut out, c, '\'', ascii_only);
    out.push('\'');
    out
}

/// Go's `strconv.CanBackquote`: whether `s` can be written as a raw string. Go refuses a
/// backquote, the BOM and one-byte control characters but tab; every other multibyte rune,
/// U+0080 to U+009F included, it takes as printable.
pub fn can_backquote(s: &str) -> bool {
    s.chars().all(|c| c == '\t' || !(c < ' ' || c == '`' || c == '\u{7f}' || c == '\u{feff}'))
}

#[cfg(test)]
mod tests {
    use super::can_backquote;

    #[test]
    fn can_backquote_is_gos() {
        // Go's own cases (strconv/quote_test.go), and the C1 controls, which are multibyte.
        for (s, want) in [
            ("`", false),
            ("\u{0}", false),
            ("\u{1f}", false),
            ("\u{7f}", false),
            ("\t", true),
            ("' !\"#$%&'()*+,-./:;<=>?@[\\]^_{|}~", true),
            ("0123456789 abcXYZ", true),
            ("☺", true),
            ("\u{feff}abc", false),
            ("a\u{feff}z", false),
            ("\u{80}", true),
            ("\u{85}", true),
            ("\u{9f}", true),
        ] {
            assert_eq!(can_backquote(s), want, "{s:?}");
        }
    }
}
