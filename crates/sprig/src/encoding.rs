//! Encodings, JSON, paths and URLs: sprig's b64/b32 functions with Go's decoders and their error
//! texts, sprig's JSON functions (helm overrides toJson and fromJson), path and path/filepath (Unix),
//! and urlParse/urlJoin on a port of net/url.

use base64::Engine as _;
use gotemplate::{FuncError, Function, Map, Numbers, Templates, Type, Value};

use crate::go;
use crate::json::Style;
use crate::{bytes_arg, str_arg};

pub(crate) fn register(t: &mut Templates) {
    let s1 = |f: fn(&str) -> String| Function::new(&[Type::String], move |_, a| Ok(Value::from(f(str_arg(a, 0)))));
    t.add_function(
        "b64enc",
        Function::new(&[Type::String], |_, a| {
            Ok(Value::from(base64::engine::general_purpose::STANDARD.encode(bytes_arg(a, 0))))
        }),
    );
    t.add_function("b64dec", s1(|s| decoded(base64_decode(s), "base64")));
    t.add_function("b32enc", s1(base32_encode));
    t.add_function("b32dec", s1(|s| decoded(base32_decode(s), "base32")));

    for name in ["base", "osBase"] {
        t.add_function(name, s1(base));
    }
    for name in ["dir", "osDir"] {
        t.add_function(name, s1(dir));
    }
    for name in ["clean", "osClean"] {
        t.add_function(name, s1(clean));
    }
    for name in ["ext", "osExt"] {
        t.add_function(name, s1(|p| ext(p).to_string()));
    }
    for name in ["isAbs", "osIsAbs"] {
        t.add_function(name, Function::new(&[Type::String], |_, a| Ok(Value::Bool(str_arg(a, 0).starts_with('/')))));
    }

    t.add_function(
        "toPrettyJson",
        Function::new(&[Type::Any], |_, a| {
            let text = crate::json::lenient(&a[0])?.and_then(|json| crate::json::marshal(&json, Style::Pretty));
            Ok(Value::from(text.unwrap_or_default()))
        }),
    );
    t.add_function(
        "mustToPrettyJson",
        Function::new(&[Type::Any], |_, a| Ok(Value::from(to_json(&a[0], Style::Pretty)?))),
    );
    t.add_function("mustToJson", Function::new(&[Type::Any], |_, a| Ok(Value::from(to_json(&a[0], Style::Compact)?))));
    // toRawJson panics on errors, which text/template reports as mustToRawJson would.
    for name in ["toRawJson", "mustToRawJson"] {
        t.add_function(name, Function::new(&[Type::Any], |_, a| Ok(Value::from(to_json(&a[0], Style::Raw)?))));
    }
    t.add_function("mustFromJson", Function::new(&[Type::String], |_, a| from_json(str_arg(a, 0))));

    t.add_function("urlParse", Function::new(&[Type::String], |_, a| url_parse(str_arg(a, 0))));
    t.add_function("urlJoin", Function::new(&[Type::Map], |_, a| url_join(&a[0])));
    // helm renders with DNS lookups disabled unless --enable-dns: getHostByName returns "".
    t.add_function("getHostByName", Function::new(&[Type::String], |_, _| Ok(Value::from(""))));
}

/// sprig returns a decoder's error text in place of the decoded string.
fn decoded(result: Result<Vec<u8>, usize>, name: &str) -> String {
    match result {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(at) => format!("illegal {name} data at input byte {at}"),
    }
}

/// encoding/base64's StdEncoding.DecodeString: newlines are skipped, padding is required, and an
/// error names the offending input byte.
pub(crate) fn base64_decode(s: &str) -> Result<Vec<u8>, usize> {
    let src = s.as_bytes();
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let is_newline = |c: u8| c == b'\n' || c == b'\r';
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    let mut si = 0;
    while si < src.len() {
        let mut buf = [0u32; 4];
        let mut len = 4;
        let mut trailing = None;
        let mut j = 0;
        while j < 4 {
            if si == src.len() {
                if j == 0 {
                    return Ok(out);
                }
                return Err(si - j);
            }
            let c = src[si];
            si += 1;
            if let Some(v) = value(c) {
                buf[j] = v;
                j += 1;
                continue;
            }
            if is_newline(c) {
                continue;
            }
            if c != b'=' {
                return Err(si - 1);
            }
            match j {
                0 | 1 => return Err(si - 1),
                2 => {
                    while si < src.len() && is_newline(src[si]) {
                        si += 1;
                    }
                    if si == src.len() {
                        return Err(src.len());
                    }
                    if src[si] != b'=' {
                        return Err(si - 1);
                    }
                    si += 1;
                }
                _ => {}
            }
            while si < src.len() && is_newline(src[si]) {
                si += 1;
            }
            if si < src.len() {
                trailing = Some(si);
            }
            len = j;
            break;
        }
        let v = buf[0] << 18 | buf[1] << 12 | buf[2] << 6 | buf[3];
        let bytes = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        out.extend_from_slice(&bytes[..len - 1]);
        if let Some(at) = trailing {
            return Err(at);
        }
        if len < 4 {
            return Ok(out);
        }
    }
    Ok(out)
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn base32_encode(s: &str) -> String {
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(5) {
        let mut block = [0u8; 5];
        block[..chunk.len()].copy_from_slice(chunk);
        let bits = block.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b));
        let symbols = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < symbols {
                out.push(char::from(BASE32[(bits >> (35 - 5 * i) & 31) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// encoding/base32's StdEncoding.DecodeString (newlines removed first).
fn base32_decode(s: &str) -> Result<Vec<u8>, usize> {
    let src: Vec<u8> = s.bytes().filter(|c| *c != b'\n' && *c != b'\r').collect();
    let olen = src.len();
    let mut rest = &src[..];
    let mut out = Vec::new();
    let mut end = false;
    while !rest.is_empty() && !end {
        let mut buf = [0u8; 8];
        let mut len = 8;
        let mut j = 0;
        while j < 8 {
            let Some((&c, tail)) = rest.split_first() else {
                return Err(olen - rest.len() - j);
            };
            rest = tail;
            if c == b'=' && j >= 2 && rest.len() < 8 {
                if rest.len() + j < 7 {
                    return Err(olen);
                }
                for k in 0..7 - j {
                    if rest.len() > k && rest[k] != b'=' {
                        return Err(olen - rest.len() + k - 1);
                    }
                }
                len = j;
                end = true;
                if matches!(len, 1 | 3 | 6) {
                    return Err(olen - rest.len() - 1);
                }
                break;
            }
            buf[j] = match BASE32.iter().position(|b| *b == c) {
                Some(v) => v as u8,
                None => return Err(olen - rest.len() - 1),
            };
            j += 1;
        }
        let bits = buf.iter().fold(0u64, |acc, b| acc << 5 | u64::from(*b));
        let bytes = bits.to_be_bytes();
        let produced = match len {
            8 => 5,
            7 => 4,
            5 => 3,
            4 => 2,
            2 => 1,
            _ => 0,
        };
        out.extend_from_slice(&bytes[3..3 + produced]);
    }
    Ok(out)
}

/// path.Clean: the shortest equivalent path, lexically.
fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// path.Base: the last element, trailing slashes removed.
fn base(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_string();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// path.Dir: everything but the last element, cleaned.
fn dir(path: &str) -> String {
    let cut = path.rfind('/').map_or(0, |i| i + 1);
    clean(&path[..cut])
}

/// path.Ext: the suffix from the last dot in the last element.
fn ext(path: &str) -> &str {
    for (i, c) in path.char_indices().rev() {
        match c {
            '/' => return "",
            '.' => return &path[i..],
            _ => {}
        }
    }
    ""
}

/// encoding/json's output for the value, with Go's errors for NaN and infinities.
fn to_json(value: &Value, style: Style) -> Result<String, FuncError> {
    let unsupported = || match non_finite(value, 0) {
        Some(f) => FuncError::new(format!("json: unsupported value: {}", go::sprint(&Value::Float(f)))),
        None => FuncError::new("json: unsupported value"),
    };
    let json = crate::json::lenient(value)?.ok_or_else(unsupported)?;
    crate::json::marshal(&json, style).ok_or_else(unsupported)
}

/// The first NaN or infinity in encoding order (map keys sorted), which Go refuses to encode.
fn non_finite(value: &Value, depth: usize) -> Option<f64> {
    if depth > gotemplate::MAX_NESTING {
        return None;
    }
    match value {
        Value::Float(f) if !f.is_finite() => Some(*f),
        Value::List(items) => items.iter().find_map(|v| non_finite(v, depth + 1)),
        Value::Map(map) => map.entries().iter().find_map(|(_, v)| non_finite(v, depth + 1)),
        Value::Object(o) => o.underlying().and_then(|u| non_finite(&u, depth + 1)),
        _ => None,
    }
}

/// json.Unmarshal into interface{}: numbers are float64.
fn from_json(text: &str) -> Result<Value, FuncError> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(json) => Ok(Value::from_json(&json, Numbers::Float64)),
        Err(e) if e.is_eof() => Err(FuncError::new("unexpected end of JSON input")),
        Err(e) => Err(FuncError::new(format!("invalid JSON: {e}"))),
    }
}

/// A URL as net/url's URL struct holds it.
#[derive(Default)]
struct Url {
    scheme: String,
    opaque: String,
    /// Username and optional password, unescaped.
    user: Option<(String, Option<String>)>,
    host: String,
    path: String,
    raw_query: String,
    force_query: bool,
    fragment: String,
    omit_host: bool,
}

/// What percent-encoding protects, as net/url's encoding modes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    UserPassword,
    Fragment,
}

fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if mode == Mode::Host {
        return !matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
                | b'-'
                | b'.'
                | b'_'
                | b'~'
        );
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
            Mode::Path => c == b'?',
            Mode::UserPassword => matches!(c, b'@' | b'/' | b'?' | b':'),
            Mode::Fragment => false,
            Mode::Host => true,
        },
        b'!' | b'(' | b')' | b'*' if mode == Mode::Fragment => false,
        _ => true,
    }
}

fn escape(s: &str, mode: Mode) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if should_escape(b, mode) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// net/url's unescape for paths, fragments and user info; errors are Go's EscapeError text.
fn unescape(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            match hex
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .filter(|_| hex.is_some_and(|h| h.bytes().all(|c| c.is_ascii_hexdigit())))
            {
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    let end = (i + 3).min(bytes.len());
                    return Err(format!(
                        "invalid URL escape {}",
                        gotemplate::strconv::quote(&String::from_utf8_lossy(&bytes[i..end]), false)
                    ));
                }
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// url.Parse, for the URLs charts hold (schemes, user info, hosts with ports, paths, queries, fragments).
fn parse_url(raw: &str) -> Result<Url, String> {
    let (rest, fragment) = match raw.split_once('#') {
        Some((u, f)) => (u, Some(f)),
        None => (raw, None),
    };
    let wrap = |s: &str, e: String| format!("parse {}: {e}", gotemplate::strconv::quote(s, false));
    let mut url = parse_without_fragment(rest).map_err(|e| wrap(rest, e))?;
    if let Some(fragment) = fragment {
        url.fragment = unescape(fragment).map_err(|e| wrap(raw, e))?;
    }
    Ok(url)
}

fn parse_without_fragment(raw: &str) -> Result<Url, String> {
    if raw.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err("net/url: invalid control character in URL".to_string());
    }
    let mut url = Url::default();
    if raw == "*" {
        url.path = "*".to_string();
        return Ok(url);
    }
    let mut rest = raw;
    for (i, c) in raw.bytes().enumerate() {
        if c.is_ascii_alphabetic() {
            continue;
        }
        if c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.') {
            if i == 0 {
                break;
            }
            continue;
        }
        if c == b':' {
            if i == 0 {
                return Err("missing protocol scheme".to_string());
            }
            url.scheme = raw[..i].to_ascii_lowercase();
            rest = &raw[i + 1..];
        }
        break;
    }
    if rest.ends_with('?') && rest.matches('?').count() == 1 {
        url.force_query = true;
        rest = &rest[..rest.len() - 1];
    } else if let Some((before, query)) = rest.split_once('?') {
        url.raw_query = query.to_string();
        rest = before;
    }
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            url.opaque = rest.to_string();
            return Ok(url);
        }
        if rest.split('/').next().is_some_and(|segment| segment.contains(':')) {
            return Err("first path segment in URL cannot contain colon".to_string());
        }
    }
    if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let authority = &rest[2..];
        let (authority, path) = match authority.find('/') {
            Some(i) => (&authority[..i], &authority[i..]),
            None => (authority, ""),
        };
        let (user, host) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        url.host = parse_host(host)?;
        if let Some(user) = user {
            let valid = user.bytes().all(|c| {
                c.is_ascii_alphanumeric()
                    || matches!(c, b'-' | b'.' | b'_' | b':' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')')
                    || matches!(c, b'*' | b'+' | b',' | b';' | b'=' | b'%' | b'@')
            });
            if !valid {
                return Err("net/url: invalid userinfo".to_string());
            }
            url.user = Some(match user.split_once(':') {
                Some((name, password)) => (unescape(name)?, Some(unescape(password)?)),
                None => (unescape(user)?, None),
            });
        }
        rest = path;
    } else if !url.scheme.is_empty() && rest.starts_with('/') {
        url.omit_host = true;
    }
    url.path = unescape(rest)?;
    Ok(url)
}

/// net/url's parseHost for names and IPv6 literals, checking the port.
fn parse_host(host: &str) -> Result<String, String> {
    let port_error = |port: &str| format!("invalid port {} after host", gotemplate::strconv::quote(port, false));
    if let Some(inner) = host.strip_prefix('[') {
        let Some(close) = inner.find(']') else { return Err("missing ']' in host".to_string()) };
        let after = &inner[close + 1..];
        if !(after.is_empty() || after.starts_with(':') && after[1..].bytes().all(|b| b.is_ascii_digit())) {
            return Err(port_error(after));
        }
        return Ok(host.to_string());
    }
    if let Some(i) = host.rfind(':') {
        let port = &host[i..];
        if !port[1..].bytes().all(|b| b.is_ascii_digit()) {
            return Err(port_error(port));
        }
    }
    unescape(host)
}

impl Url {
    /// url.URL.Hostname: the host without port or IPv6 brackets.
    fn hostname(&self) -> String {
        let host = &self.host;
        if let Some(inner) = host.strip_prefix('[') {
            return inner.split(']').next().unwrap_or_default().to_string();
        }
        match host.rfind(':') {
            Some(i) if host[i + 1..].bytes().all(|b| b.is_ascii_digit()) => host[..i].to_string(),
            _ => host.clone(),
        }
    }

    /// url.Userinfo.String.
    fn user_string(&self) -> Option<String> {
        let (name, password) = self.user.as_ref()?;
        let mut out = escape(name, Mode::UserPassword);
        if let Some(password) = password {
            out.push(':');
            out.push_str(&escape(password, Mode::UserPassword));
        }
        Some(out)
    }

    /// url.URL.String.
    fn to_go_string(&self) -> String {
        let mut out = String::new();
        if !self.scheme.is_empty() {
            out.push_str(&self.scheme);
            out.push(':');
        }
        if !self.opaque.is_empty() {
            out.push_str(&self.opaque);
        } else {
            let no_authority = self.host.is_empty() && self.user.is_none();
            // The authority is written when there is one, or after a scheme unless the host was omitted.
            if !no_authority || !self.scheme.is_empty() && !self.omit_host {
                if !self.host.is_empty() || !self.path.is_empty() || self.user.is_some() {
                    out.push_str("//");
                }
                if let Some(user) = self.user_string() {
                    out.push_str(&user);
                    out.push('@');
                }
                out.push_str(&escape(&self.host, Mode::Host));
            }
            let path = escape(&self.path, Mode::Path);
            if !path.is_empty() && !path.starts_with('/') && !self.host.is_empty() {
                out.push('/');
            }
            if out.is_empty() && path.split('/').next().is_some_and(|segment| segment.contains(':')) {
                out.push_str("./");
            }
            out.push_str(&path);
        }
        if self.force_query || !self.raw_query.is_empty() {
            out.push('?');
            out.push_str(&self.raw_query);
        }
        if !self.fragment.is_empty() {
            out.push('#');
            out.push_str(&escape(&self.fragment, Mode::Fragment));
        }
        out
    }
}

fn url_parse(raw: &str) -> Result<Value, FuncError> {
    let url = parse_url(raw).map_err(|e| FuncError::new(format!("unable to parse url: {e}")))?;
    let map = Map::new();
    map.insert("scheme", Value::from(url.scheme.as_str()));
    map.insert("host", Value::from(url.host.as_str()));
    map.insert("hostname", Value::from(url.hostname()));
    map.insert("path", Value::from(url.path.as_str()));
    map.insert("query", Value::from(url.raw_query.as_str()));
    map.insert("opaque", Value::from(url.opaque.as_str()));
    map.insert("fragment", Value::from(url.fragment.as_str()));
    map.insert("userinfo", Value::from(url.user_string().unwrap_or_default()));
    Ok(Value::Map(map))
}

fn url_join(dict: &Value) -> Result<Value, FuncError> {
    let map = match dict {
        Value::Map(map) => map.clone(),
        _ => Map::new(),
    };
    let field = |key: &str| -> Result<String, FuncError> {
        match map.get(key) {
            None => Ok(String::new()),
            Some(Value::String(ref s)) => Ok(s.to_string()),
            Some(Value::Nil) => Err(go::nil_kind_error()),
            Some(other) => Err(FuncError::new(format!(
                "unable to parse {key} key, must be of type string, but {} found",
                go::kind(&other)
            ))),
        }
    };
    let mut url = Url {
        scheme: field("scheme")?,
        host: field("host")?,
        path: field("path")?,
        raw_query: field("query")?,
        opaque: field("opaque")?,
        fragment: field("fragment")?,
        ..Url::default()
    };
    let userinfo = field("userinfo")?;
    if !userinfo.is_empty() {
        let parsed = parse_url(&format!("proto://{userinfo}@host"))
            .map_err(|e| FuncError::new(format!("unable to parse userinfo in dict: {e}")))?;
        url.user = parsed.user;
    }
    Ok(Value::from(url.to_go_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_errors_name_go_offsets() {
        assert_eq!(base64_decode("aGVsbG8="), Ok(b"hello".to_vec()));
        assert_eq!(base64_decode("aGVs\nbG8="), Ok(b"hello".to_vec()));
        assert_eq!(base64_decode("aGVsbG8"), Err(4));
        assert_eq!(base64_decode("a!"), Err(1));
        assert_eq!(base64_decode("aGVsbG8=x"), Err(8));
        assert_eq!(base32_decode("NBSWY3DP"), Ok(b"hello".to_vec()));
        assert_eq!(base32_encode("hello!"), "NBSWY3DPEE======");
        assert_eq!(base32_decode("NBSWY3DPEE======"), Ok(b"hello!".to_vec()));
    }

    #[test]
    fn paths_as_go() {
        assert_eq!(clean("a//b/../c/."), "a/c");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean("../../a"), "../../a");
        assert_eq!(dir("/a/b/c"), "/a/b");
        assert_eq!(dir("abc"), ".");
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(ext("a/b.tar.gz"), ".gz");
    }
}
