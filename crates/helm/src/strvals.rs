//! helm's `--set` syntax (helm's `pkg/strvals`): `name=value,a.b=c,list[0]=x,tags={a,b}`, with
//! `\` escaping the next character (`a\.b=1` sets the key `a.b`). A line is parsed into an
//! existing map, as helm parses `--set` into the values `-f` files gave, so `list[1]=x` changes
//! one item of a list a file set. Ported from helm 3.17 rather than approximated: its corner cases
//! (`a=` is an empty string, `{}` a list of one empty string, `0` an integer but `010` a string)
//! are what users' pipelines rely on. No crate implements it.

use serde_json::{Map, Value};

/// How the value after `=` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--set`: `true`, `false`, `null` and integers are typed, anything else is a string.
    Typed,
    /// `--set-string`: always a string.
    String,
    /// `--set-json`: a JSON value (empty is null).
    Json,
    /// `--set-file`: the value names a file, whose text is the value.
    File,
}

impl Kind {
    /// The flag of helm's that gives a value of this kind.
    pub fn flag(self) -> &'static str {
        match self {
            Kind::Typed => "--set",
            Kind::String => "--set-string",
            Kind::Json => "--set-json",
            Kind::File => "--set-file",
        }
    }
}

/// The deepest `a.b.c` path helm accepts.
const MAX_NESTING: usize = 30;
/// The largest list index helm accepts.
const MAX_INDEX: usize = 65536;
/// What a name without a value usually is.
const COMMA: &str = "a `,` in a value is written `\\,`";

/// Parses `line` into `dest`. `read_file` gives a `--set-file` path's text. Errors are helm's
/// (what the line lacks, where a list or map was expected), without the line itself: the caller
/// names the flag.
pub fn parse_into(
    line: &str,
    dest: &mut Map<String, Value>,
    kind: Kind,
    read_file: &dyn Fn(&str) -> Result<String, String>,
) -> Result<(), String> {
    let mut parser = Parser { text: line.chars().collect(), at: 0, kind, read_file };
    loop {
        match parser.key(dest, 0) {
            Ok(()) => {}
            Err(Stop::End) => return Ok(()),
            Err(Stop::Error(message)) => return Err(message),
        }
    }
}

/// Why parsing stopped: the end of the line (which ends it well), or an error.
enum Stop {
    End,
    Error(String),
}

impl From<String> for Stop {
    fn from(message: String) -> Stop {
        Stop::Error(message)
    }
}

struct Parser<'a> {
    text: Vec<char>,
    at: usize,
    kind: Kind,
    read_file: &'a dyn Fn(&str) -> Result<String, String>,
}

/// What [`Parser::until`] read: the text (escapes resolved) and the stop character, or `None`
/// at the end of the line.
type Run = (String, Option<char>);

impl Parser<'_> {
    fn next(&mut self) -> Option<char> {
        let c = self.text.get(self.at).copied();
        self.at += c.is_some() as usize;
        c
    }

    /// Reads up to one of `stops` (consumed), resolving `\` escapes.
    fn until(&mut self, stops: &[char]) -> Run {
        let mut run = String::new();
        while let Some(c) = self.next() {
            if stops.contains(&c) {
                return (run, Some(c));
            }
            if c == '\\' {
                match self.next() {
                    Some(escaped) => run.push(escaped),
                    None => return (run, None),
                }
            } else {
                run.push(c);
            }
        }
        (run, None)
    }

    fn key(&mut self, data: &mut Map<String, Value>, nesting: usize) -> Result<(), Stop> {
        // Errors say where a name starts, never what it says: after a `,` left unescaped in a
        // value, the "name" is the rest of that value.
        let column = self.at + 1;
        let (key, stop) = self.until(&['=', '[', ',', '.']);
        match stop {
            None if key.is_empty() => Err(Stop::End),
            None => Err(format!("the name at column {column} has no value ({COMMA})").into()),
            Some('[') => {
                let index = self.index(column)?;
                let list = match data.remove(&key) {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(list)) => list,
                    Some(other) => {
                        let kind = kind_of(&other);
                        data.insert(key.clone(), other);
                        return Err(format!("the name at column {column} is {kind} in the values, not a list").into());
                    }
                };
                let (list, result) = self.list_item(list, index, nesting + 1, column);
                set(data, key, Value::Array(list));
                result
            }
            Some('=') if self.kind == Kind::Json => {
                let value = self.json_value()?;
                set(data, key, value);
                Ok(())
            }
            Some('=') => match self.value_list()? {
                Some(list) => {
                    set(data, key, Value::Array(list));
                    Ok(())
                }
                None if self.at == self.text.len() => {
                    set(data, key, Value::String(String::new()));
                    Err(Stop::End)
                }
                None => {
                    let (text, _) = self.until(&[',']);
                    let value = self.read(text)?;
                    set(data, key, value);
                    Ok(())
                }
            },
            Some(',') => {
                set(data, key.clone(), Value::String(String::new()));
                Err(format!("the name at column {column} has no value ({COMMA})").into())
            }
            Some(_) => {
                let nesting = nesting + 1;
                if nesting > MAX_NESTING {
                    return Err(format!("a name nests deeper than {MAX_NESTING} levels").into());
                }
                let mut inner = match data.remove(&key) {
                    None | Some(Value::Null) => Map::new(),
                    Some(Value::Object(map)) => map,
                    Some(other) => {
                        let kind = kind_of(&other);
                        data.insert(key.clone(), other);
                        return Err(format!("the name at column {column} is {kind} in the values, not a map").into());
                    }
                };
                let result = self.key(&mut inner, nesting);
                let empty = inner.is_empty();
                if !empty {
                    set(data, key.clone(), Value::Object(inner));
                }
                match result {
                    Ok(()) if empty => Err(format!("the name at column {column} has no value after its `.`").into()),
                    other => other,
                }
            }
        }
    }

    /// The index of `[N]`, after its `[`, in the name at `column`.
    fn index(&mut self, column: usize) -> Result<usize, Stop> {
        let (text, stop) = self.until(&[']']);
        if stop.is_none() {
            return Err(format!("a list index in the name at column {column} has no `]`").into());
        }
        match text.parse::<i64>() {
            Ok(index) if index < 0 => Err(format!("negative list index {index}").into()),
            Ok(index) if index as u64 > MAX_INDEX as u64 => {
                Err(format!("list index {index} is greater than the largest, {MAX_INDEX}").into())
            }
            Ok(index) => Ok(index as usize),
            Err(_) => Err(format!("a list index in the name at column {column} is not a number").into()),
        }
    }

    /// Sets item `index` of `list` to what follows `]`; returns the list whatever happens, as
    /// helm keeps what was set before an error.
    /// `nesting` counts list indexes too (helm counts only `.`): `a[0][0]…` must not recurse
    /// without bound.
    fn list_item(
        &mut self,
        mut list: Vec<Value>,
        index: usize,
        nesting: usize,
        column: usize,
    ) -> (Vec<Value>, Result<(), Stop>) {
        if nesting > MAX_NESTING {
            return (list, Err(format!("a name nests deeper than {MAX_NESTING} levels").into()));
        }
        let (text, stop) = self.until(&['[', '.', '=']);
        if !text.is_empty() {
            return (list, Err(format!("unexpected text after a list index in the name at column {column}").into()));
        }
        let value = match stop {
            // `a[0]` and nothing after: helm sets nothing and ends there.
            None => return (list, Err(Stop::End)),
            Some('=') if self.kind == Kind::Json => self.json_value(),
            Some('=') => match self.value_list() {
                Ok(Some(items)) => Ok(Value::Array(items)),
                Ok(None) if self.at == self.text.len() => Ok(Value::String(String::new())),
                Ok(None) => {
                    let (text, _) = self.until(&[',']);
                    self.read(text)
                }
                Err(e) => Err(e),
            },
            Some('[') => match self.index(column) {
                Ok(inner_index) => {
                    let inner = match list.get_mut(index).map(std::mem::take) {
                        None | Some(Value::Null) => Vec::new(),
                        Some(Value::Array(inner)) => inner,
                        Some(other) => {
                            let kind = kind_of(&other);
                            list[index] = other;
                            return (list, Err(format!("item {index} is {kind}, not a list").into()));
                        }
                    };
                    let (inner, result) = self.list_item(inner, inner_index, nesting + 1, column);
                    set_index(&mut list, index, Value::Array(inner));
                    return (list, result);
                }
                Err(e) => Err(e),
            },
            Some(_) => {
                let mut inner = match list.get_mut(index).map(std::mem::take) {
                    Some(Value::Object(map)) => map,
                    // helm starts a map over any other item here.
                    _ => Map::new(),
                };
                let result = self.key(&mut inner, nesting);
                set_index(&mut list, index, Value::Object(inner));
                return (list, result);
            }
        };
        match value {
            Ok(value) => {
                set_index(&mut list, index, value);
                (list, Ok(()))
            }
            Err(e) => (list, Err(e)),
        }
    }

    /// `{a,b,c}` after `=`: None when the value is not a list (nothing consumed).
    fn value_list(&mut self) -> Result<Option<Vec<Value>>, Stop> {
        if self.text.get(self.at) != Some(&'{') {
            return Ok(None);
        }
        self.at += 1;
        let mut items = Vec::new();
        loop {
            match self.until(&[',', '}']) {
                (_, None) => return Err("a list must end with `}`".to_string().into()),
                (text, Some('}')) => {
                    if self.text.get(self.at) == Some(&',') {
                        self.at += 1;
                    }
                    items.push(self.read(text)?);
                    return Ok(Some(items));
                }
                (text, _) => items.push(self.read(text)?),
            }
        }
    }

    /// A JSON value after `=`, and the blanks and `,` after it; blank is null.
    fn json_value(&mut self) -> Result<Value, Stop> {
        if self.blank_to_comma() {
            return Ok(Value::Null);
        }
        let rest: String = self.text[self.at..].iter().collect();
        let mut values = serde_json::Deserializer::from_str(&rest).into_iter::<Value>();
        let value = match values.next() {
            Some(Ok(value)) => value,
            Some(Err(e)) => return Err(format!("invalid JSON: {}", json_problem(&e)).into()),
            None => Value::Null,
        };
        self.at += rest[..values.byte_offset()].chars().count();
        self.blank_to_comma();
        Ok(value)
    }

    /// Skips blanks; whether the value is empty (a `,`, consumed, or the end follows).
    fn blank_to_comma(&mut self) -> bool {
        while let Some(&c) = self.text.get(self.at) {
            self.at += 1;
            if c == ',' {
                return true;
            }
            if !c.is_whitespace() {
                self.at -= 1;
                return false;
            }
        }
        true
    }

    fn read(&self, text: String) -> Result<Value, Stop> {
        Ok(match self.kind {
            Kind::String => Value::String(text),
            Kind::File => Value::String((self.read_file)(&text)?),
            Kind::Typed | Kind::Json => typed(text),
        })
    }
}

/// serde_json's message without the value it quotes (a `--set-json` value may be a secret).
fn json_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Eof => "it ends early",
        Category::Syntax => "a syntax error",
        Category::Data | Category::Io => "a value JSON cannot hold",
    };
    format!("{what} at column {}", e.column())
}

/// helm's `typedVal`: booleans and null in any case, `0`, and integers not starting with `0`.
fn typed(text: String) -> Value {
    if text.eq_ignore_ascii_case("true") {
        return Value::Bool(true);
    }
    if text.eq_ignore_ascii_case("false") {
        return Value::Bool(false);
    }
    if text.eq_ignore_ascii_case("null") {
        return Value::Null;
    }
    if text == "0" {
        return Value::from(0);
    }
    if !text.starts_with('0')
        && let Ok(number) = text.parse::<i64>()
    {
        return Value::from(number);
    }
    Value::String(text)
}

fn set(data: &mut Map<String, Value>, key: String, value: Value) {
    if !key.is_empty() {
        data.insert(key, value);
    }
}

fn set_index(list: &mut Vec<Value>, index: usize, value: Value) {
    if list.len() <= index {
        list.resize(index + 1, Value::Null);
    }
    list[index] = value;
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parsed(line: &str, kind: Kind) -> Result<Value, String> {
        let mut map = Map::new();
        let files = |path: &str| match path {
            "ca.pem" => Ok("-----BEGIN-----\n".to_string()),
            other => Err(format!("{other}: no such file")),
        };
        parse_into(line, &mut map, kind, &files).map(|()| Value::Object(map))
    }

    fn set(line: &str) -> Value {
        parsed(line, Kind::Typed).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn names_paths_and_types_as_helm_reads_them() {
        assert_eq!(set("name=value"), json!({"name": "value"}));
        assert_eq!(
            set("a.b.c=1,d=true,e=False,f=null"),
            json!({"a": {"b": {"c": 1}}, "d": true, "e": false, "f": null})
        );
        assert_eq!(
            set("zero=0,octal=010,neg=-5,float=1.5,big=99999999999999999999"),
            json!({"zero": 0, "octal": "010", "neg": -5, "float": "1.5", "big": "99999999999999999999"})
        );
        assert_eq!(set("a.b=1,a.c=2"), json!({"a": {"b": 1, "c": 2}}));
        assert_eq!(set("empty="), json!({"empty": ""}));
        assert_eq!(set("a=,b=1"), json!({"a": "", "b": 1}));
    }

    #[test]
    fn escapes_lists_and_indexes() {
        assert_eq!(
            set(r"nodeSelector.kubernetes\.io/os=linux"),
            json!({"nodeSelector": {"kubernetes.io/os": "linux"}})
        );
        assert_eq!(set(r"msg=a\,b"), json!({"msg": "a,b"}));
        assert_eq!(set("tags={a,b,3}"), json!({"tags": ["a", "b", 3]}));
        assert_eq!(set("tags={a,b},x=1"), json!({"tags": ["a", "b"], "x": 1}));
        assert_eq!(set("list[2]=c"), json!({"list": [null, null, "c"]}));
        assert_eq!(set("env[0].name=A,env[0].value=1"), json!({"env": [{"name": "A", "value": 1}]}));
        assert_eq!(set("m[0][1]=x"), json!({"m": [[null, "x"]]}));
    }

    #[test]
    fn a_line_sets_into_what_is_there() {
        let mut map =
            json!({"list": ["a", "b", "c"], "image": {"repository": "r", "tag": "1"}}).as_object().unwrap().clone();
        parse_into("list[1]=x,image.tag=2", &mut map, Kind::Typed, &|_| unreachable!()).unwrap();
        assert_eq!(Value::Object(map), json!({"list": ["a", "x", "c"], "image": {"repository": "r", "tag": 2}}));
    }

    #[test]
    fn strings_json_and_files() {
        assert_eq!(parsed("a=true,b=1", Kind::String).unwrap(), json!({"a": "true", "b": "1"}));
        assert_eq!(
            parsed(r#"a={"x":[1,2]} ,b="s",c=,d=[true]"#, Kind::Json).unwrap(),
            json!({"a": {"x": [1, 2]}, "b": "s", "c": null, "d": [true]})
        );
        assert_eq!(parsed("l[1]={\"k\":1}", Kind::Json).unwrap(), json!({"l": [null, {"k": 1}]}));
        assert_eq!(parsed("tls.ca=ca.pem", Kind::File).unwrap(), json!({"tls": {"ca": "-----BEGIN-----\n"}}));
        assert_eq!(parsed("tls.ca=missing.pem", Kind::File).unwrap_err(), "missing.pem: no such file");
    }

    #[test]
    fn what_helm_refuses() {
        let error = |line: &str| parsed(line, Kind::Typed).unwrap_err();
        let comma = "(a `,` in a value is written `\\,`)";
        assert_eq!(error("name"), format!("the name at column 1 has no value {comma}"));
        assert_eq!(error("a=1,b,"), format!("the name at column 5 has no value {comma}"));
        // An unescaped `,` in a value: the rest of the value is never quoted.
        let split = error("password=p4ss,w0rd");
        assert_eq!(split, format!("the name at column 15 has no value {comma}"));
        assert!(!error("password=x,ab[cd]=1").contains("cd"));
        assert_eq!(error("a.=1"), "the name at column 1 has no value after its `.`");
        assert_eq!(error("l[x]=1"), "a list index in the name at column 1 is not a number");
        assert_eq!(error("l[-1]=1"), "negative list index -1");
        assert_eq!(error("l[70000]=1"), "list index 70000 is greater than the largest, 65536");
        assert_eq!(error("l[0]x=1"), "unexpected text after a list index in the name at column 1");
        assert_eq!(error("tags={a,b"), "a list must end with `}`");
        assert!(error(&format!("{}=1", ["k"; 32].join("."))).contains("deeper than 30"));
        // List indexes count too: a long run of them is an error, not a stack overflow.
        assert!(error(&format!("a{}=1", "[0]".repeat(40_000))).contains("deeper than 30"));
        let mut map = json!({"a": "text"}).as_object().unwrap().clone();
        let e = parse_into("a.b=1", &mut map, Kind::Typed, &|_| unreachable!()).unwrap_err();
        assert_eq!(e, "the name at column 1 is a string in the values, not a map");
        assert_eq!(map["a"], "text");
        let secret = parsed(r#"p={"pw":"hunter2""#, Kind::Json).unwrap_err();
        assert!(secret.starts_with("invalid JSON") && !secret.contains("hunter2"), "{secret}");
    }
}
