//! Flux's post-build variable substitution (kustomize-controller's `postBuild.substitute` and
//! `substituteFrom`) for the objects of a kustomization release once it is built.
//!
//! Flux writes each built object as YAML (kustomize's `Resource.AsYAML`: JSON, then
//! sigs.k8s.io/yaml's go-yaml v2 emitter), runs drone/envsubst (its fork in fluxcd/pkg) over that
//! text and reads the result again. How a scalar was written in the repository is lost on the
//! way: the emitter quotes a string only where YAML needs it, so `port: "${port}"` is written
//! `port: ${port}` and comes back the number 8080 (fluxcd/kustomize-controller#625; Flux's own
//! way to keep a string is a variable holding `"` around the reference). weaver substitutes in
//! each string of the object (keys included) with the same rules, and reads a string again as
//! YAML 1.1 exactly when go-yaml v2 would have written it plain ([`written_plain`]); a string
//! it writes quoted or as a block (several lines, a leading indicator, `: `) stays a string.
//!
//! The rules ([`expand`]):
//! - `${var}` is the variable's value; a variable that is not set is an error (Flux's strict
//!   mode);
//! - `${var:=default}`, `${var:-default}`, `${var=default}`: the default (which may hold
//!   `${other}`) when the variable is not set or empty, as fluxcd/pkg's envsubst has it;
//! - `$$` is a `$`, so `$${var}` is the text `${var}`; a `$` followed by anything else, `$var`
//!   included, is left as it is;
//! - every other operator of envsubst (`${#var}`, `${var^^}`, `${var/a/b}`, `${var:1:2}`, ...)
//!   is refused, naming it.
//!
//! An object labelled or annotated `kustomize.toolkit.fluxcd.io/substitute: disabled` is left
//! untouched, as Flux leaves it. Pure: the caller reads the files and says what failed where.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// The label or annotation that turns substitution off for one object, with the value `disabled`.
pub const DISABLE_KEY: &str = "kustomize.toolkit.fluxcd.io/substitute";

/// Why a string could not be expanded. Names variables and operators, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// `${name}` with no such variable and no default.
    Unset(String),
    /// An envsubst operator weaver does not run (`^^`, `/`, `#`, ...).
    Unsupported { variable: String, operator: String },
    /// `${` that does not make a reference.
    Syntax(String),
    /// Two keys of one mapping that substitution makes the same (both as written).
    SameKey(String, String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Unset(name) => write!(f, "variable `{name}` is not set"),
            Problem::Unsupported { variable, operator } => {
                write!(f, "`{operator}` in a reference to `{variable}` is an envsubst operator weaver does not support")
            }
            Problem::Syntax(message) => f.write_str(message),
            Problem::SameKey(a, b) => write!(f, "the keys `{a}` and `{b}` become one key"),
        }
    }
}

/// A variable, as the caller of a substitution knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'v> {
    Set(&'v str),
    /// Not set: its default, else [`Problem::Unset`].
    Unset,
    /// Set where the caller cannot read it (a Secret of the cluster): each reference to it,
    /// default and all, is left as written.
    Unknown,
}

/// `text` with its references expanded by the rules of the module documentation; `vars` gives
/// a variable's value, `None` when it is not set.
pub fn expand<'v>(text: &str, vars: &dyn Fn(&str) -> Option<&'v str>) -> Result<String, Problem> {
    expand_known(text, &|name| vars(name).map_or(Lookup::Unset, Lookup::Set))
}

/// [`expand`], leaving the references to [`Lookup::Unknown`] variables as written.
fn expand_known<'v>(text: &str, vars: &dyn Fn(&str) -> Lookup<'v>) -> Result<String, Problem> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(after) = rest.strip_prefix("${") {
            let (value, after) = reference(after, vars)?;
            out.push_str(&value);
            rest = after;
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The reference whose `${` ends just before `text`: its value (or itself, as written, when its
/// variable is unknown), and the text after its `}`.
fn reference<'t, 'v>(text: &'t str, vars: &dyn Fn(&str) -> Lookup<'v>) -> Result<(String, &'t str), Problem> {
    let (value, after) = evaluate(text, vars)?;
    Ok((value.unwrap_or_else(|| format!("${{{}", &text[..text.len() - after.len()])), after))
}

/// The value of the reference whose `${` ends just before `text` (`None` when its variable is
/// unknown), and the text after its `}`.
fn evaluate<'t, 'v>(text: &'t str, vars: &dyn Fn(&str) -> Lookup<'v>) -> Result<(Option<String>, &'t str), Problem> {
    if let Some(after) = text.strip_prefix('#') {
        let variable: String = after.chars().take_while(|c| is_name_char(*c)).collect();
        return Err(Problem::Unsupported { variable, operator: "#".to_string() });
    }
    let name_end = text.find(|c: char| !is_name_char(c)).unwrap_or(text.len());
    let name = &text[..name_end];
    if name.is_empty() {
        return Err(Problem::Syntax(match text.chars().next() {
            None | Some('}') => "`${}` names no variable".to_string(),
            Some(c) => format!("`${{{c}` does not start a variable name"),
        }));
    }
    let rest = &text[name_end..];
    let unclosed = || Problem::Syntax(format!("`${{{name}` has no closing `}}`"));
    let value = vars(name);
    if let Some(after) = rest.strip_prefix('}') {
        return match value {
            Lookup::Set(v) => Ok((Some(v.to_string()), after)),
            Lookup::Unset => Err(Problem::Unset(name.to_string())),
            Lookup::Unknown => Ok((None, after)),
        };
    }
    let operator = [":=", ":-", "="].into_iter().find(|op| rest.starts_with(op));
    let Some(operator) = operator else {
        return Err(match UNSUPPORTED.into_iter().find(|op| rest.starts_with(op)) {
            Some(operator) => Problem::Unsupported { variable: name.to_string(), operator: operator.to_string() },
            None => unclosed(),
        });
    };
    // The default: text up to the closing brace, with references of its own, evaluated first
    // whether it is used or not (as envsubst evaluates it).
    let mut default = String::new();
    let mut rest = &rest[operator.len()..];
    loop {
        let stop = rest.find(['}', '$']).ok_or_else(unclosed)?;
        default.push_str(&rest[..stop]);
        rest = &rest[stop..];
        if let Some(after) = rest.strip_prefix('}') {
            rest = after;
            break;
        }
        if let Some(after) = rest.strip_prefix("${") {
            let (value, after) = reference(after, vars)?;
            default.push_str(&value);
            rest = after;
        } else {
            default.push('$');
            rest = &rest[1..];
        }
    }
    let value = match value {
        Lookup::Set(v) if !v.is_empty() => Some(v.to_string()),
        Lookup::Set(_) | Lookup::Unset => Some(default),
        Lookup::Unknown => None,
    };
    Ok((value, rest))
}

/// envsubst's other operators, longest first where one begins another.
const UNSUPPORTED: [&str; 18] =
    ["^^", "^", ",,", ",", "//", "/#", "/%", "/", "##", "#", "%%", "%", ":?", ":+", ":", "-", "+", "?"];

/// A character of a referenced name, as envsubst reads one (a variable defined in weaver has a
/// stricter name: see `weaver_project::is_variable_name`).
fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether the object asks to be left alone (`kustomize.toolkit.fluxcd.io/substitute:
/// disabled` as a label or an annotation).
pub fn is_disabled(object: &Value) -> bool {
    ["labels", "annotations"].iter().any(|field| object["metadata"][field][DISABLE_KEY].as_str() == Some("disabled"))
}

/// Whether the object's name or namespace holds a reference (`${var}`), to be substituted.
pub fn in_identity(object: &Value) -> bool {
    ["name", "namespace"].iter().any(|field| object["metadata"][field].as_str().is_some_and(|s| s.contains("${")))
}

/// Whether go-yaml v2 (sigs.k8s.io/yaml, which Flux's text comes from) writes the string `text`
/// as a plain scalar in block context, so that Flux reads its substituted text again as YAML.
/// Its emitter's analysis: a string of several lines is a literal block; a leading indicator
/// (`#,[]{}&*!|>'"%@` and the backquote; `-`, `?` or `:` before a blank), a `: ` or ` #` inside,
/// a `:` at the end, a leading or trailing space, a document marker (`---`, `...`) at the start
/// or a character it does not print (a tab, a control) make it quoted. (A string with a `$` never
/// reads as a number, boolean or null, the other reason it quotes one.)
pub fn written_plain(text: &str) -> bool {
    let blank = |c: Option<char>| matches!(c, None | Some(' ' | '\t' | '\n' | '\r'));
    if text.is_empty() || text.starts_with("---") || text.starts_with("...") {
        return false;
    }
    if text.starts_with(' ') || text.ends_with(' ') {
        return false;
    }
    let mut chars = text.chars().peekable();
    let mut previous: Option<char> = None;
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        let printable = matches!(c, ' '..='~' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
            && c != '\u{feff}';
        if c == '\n' || !printable {
            return false;
        }
        let indicator = match previous {
            None => {
                matches!(
                    c,
                    '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@' | '`'
                ) || (matches!(c, '-' | '?' | ':') && blank(next))
            }
            Some(before) => (c == ':' && blank(next)) || (c == '#' && blank(Some(before))),
        };
        if indicator {
            return false;
        }
        previous = Some(c);
    }
    true
}

/// Substitutes `vars` in `object`, unless it is disabled. Says whether anything changed.
pub fn substitute(object: &mut Value, vars: &HashMap<String, String>) -> Result<bool, Problem> {
    substitute_known(object, &|name| vars.get(name).map_or(Lookup::Unset, |v| Lookup::Set(v)))
}

/// [`substitute`], with each variable looked up by `vars`: the references to an unknown one
/// stay as written.
pub fn substitute_known<'v>(object: &mut Value, vars: &dyn Fn(&str) -> Lookup<'v>) -> Result<bool, Problem> {
    if is_disabled(object) {
        return Ok(false);
    }
    let mut walk = Walk { vars, changed: false };
    walk.value(object)?;
    Ok(walk.changed)
}

struct Walk<'a, 'v> {
    vars: &'a dyn Fn(&str) -> Lookup<'v>,
    changed: bool,
}

impl Walk<'_, '_> {
    fn value(&mut self, value: &mut Value) -> Result<(), Problem> {
        match value {
            Value::String(text) if text.contains('$') => {
                let expanded = expand_known(text, self.vars)?;
                if expanded != *text {
                    self.changed = true;
                    *value = match written_plain(text) {
                        // Read as sigs.k8s.io/yaml reads Flux's substituted text; text that does
                        // not read as YAML stays the string it is.
                        true => match weaver_yaml::helm::from_str(&expanded) {
                            Ok(Some(parsed)) => parsed,
                            Ok(None) => Value::Null,
                            Err(_) => Value::String(expanded),
                        },
                        false => Value::String(expanded),
                    };
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.value(item)?;
                }
            }
            Value::Object(map) if map.keys().any(|key| key.contains('$')) => {
                *map = self.keys(std::mem::take(map))?;
            }
            Value::Object(map) => {
                for item in map.values_mut() {
                    self.value(item)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The mapping with its keys and values substituted, in its order.
    fn keys(&mut self, map: Map<String, Value>) -> Result<Map<String, Value>, Problem> {
        let mut out = Map::with_capacity(map.len());
        let mut written: HashMap<String, String> = HashMap::new();
        for (key, mut value) in map {
            self.value(&mut value)?;
            let expanded = expand_known(&key, self.vars)?;
            if expanded != key {
                self.changed = true;
            }
            if let Some(first) = written.insert(expanded.clone(), key.clone()) {
                return Err(Problem::SameKey(first, key));
            }
            out.insert(expanded, value);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn run(text: &str, pairs: &[(&str, &str)]) -> Result<String, Problem> {
        let vars = vars(pairs);
        expand(text, &|name| vars.get(name).map(String::as_str))
    }

    #[test]
    fn references_are_replaced_and_plain_dollars_left_alone() {
        let set = [("cluster", "eu-1"), ("n", "3"), ("empty", "")];
        assert_eq!(run("${cluster}", &set).unwrap(), "eu-1");
        assert_eq!(run("web-${cluster}-${n}", &set).unwrap(), "web-eu-1-3");
        assert_eq!(run("${empty}", &set).unwrap(), "");
        // `$var` without braces, a lone `$` and `$(VAR)` (kustomize's vars, shell) stay.
        assert_eq!(run("echo $cluster $ $(HOME) 5$", &set).unwrap(), "echo $cluster $ $(HOME) 5$");
        assert_eq!(run("no dollars", &[]).unwrap(), "no dollars");
        // Unicode around references.
        assert_eq!(run("é${cluster}ü", &set).unwrap(), "éeu-1ü");
    }

    #[test]
    fn defaults_apply_when_the_variable_is_unset_or_empty() {
        let set = [("cluster", "eu-1"), ("empty", ""), ("other", "x")];
        assert_eq!(run("${missing:=blue}", &set).unwrap(), "blue");
        assert_eq!(run("${missing:-blue}", &set).unwrap(), "blue");
        assert_eq!(run("${missing=blue}", &set).unwrap(), "blue");
        assert_eq!(run("${empty:=blue}", &set).unwrap(), "blue");
        assert_eq!(run("${cluster:=blue}", &set).unwrap(), "eu-1");
        assert_eq!(run("${missing:=}", &set).unwrap(), "");
        assert_eq!(run("${missing:=a ${other} b}", &set).unwrap(), "a x b");
        assert_eq!(run("${missing:=$x}", &set).unwrap(), "$x");
        assert_eq!(run("${missing:=http://h:80/p}-${cluster}", &set).unwrap(), "http://h:80/p-eu-1");
        // A default's own references are evaluated, used or not, as envsubst does.
        assert_eq!(run("${cluster:=${nope}}", &set), Err(Problem::Unset("nope".into())));
    }

    #[test]
    fn a_double_dollar_is_an_escape() {
        let set = [("v", "abc")];
        assert_eq!(run("$${v}", &set).unwrap(), "${v}");
        assert_eq!(run("$${missing}", &[]).unwrap(), "${missing}");
        assert_eq!(run("pa$$word", &[]).unwrap(), "pa$word");
        assert_eq!(run("$$$", &[]).unwrap(), "$$");
        assert_eq!(run("$$${v}", &set).unwrap(), "$abc");
        // fluxcd/pkg envsubst's own case.
        assert_eq!(run("some text ${v}$${var$${v}$v${v}", &set).unwrap(), "some text abc${var${v}$vabc");
    }

    #[test]
    fn unset_variables_and_bad_references_are_errors_naming_no_value() {
        assert_eq!(run("a-${missing}", &[]), Err(Problem::Unset("missing".into())));
        assert_eq!(run("${v", &[("v", "secret")]), Err(Problem::Syntax("`${v` has no closing `}`".into())));
        assert_eq!(run("${v:=x", &[]), Err(Problem::Syntax("`${v` has no closing `}`".into())));
        assert_eq!(run("${}", &[]), Err(Problem::Syntax("`${}` names no variable".into())));
        assert_eq!(run("${ v}", &[]), Err(Problem::Syntax("`${ ` does not start a variable name".into())));
        for (text, operator) in [
            ("${v^^}", "^^"),
            ("${v,}", ","),
            ("${v/a/b}", "/"),
            ("${v//a/b}", "//"),
            ("${v%.*}", "%"),
            ("${v%%.*}", "%%"),
            ("${v/#a/b}", "/#"),
            ("${v#x}", "#"),
            ("${v:1:2}", ":"),
            ("${v:+x}", ":+"),
            ("${v:?x}", ":?"),
            ("${v-x}", "-"),
            ("${v+x}", "+"),
            ("${#v}", "#"),
        ] {
            match run(text, &[("v", "secret")]) {
                Err(Problem::Unsupported { variable, operator: found }) => {
                    assert_eq!((variable.as_str(), found.as_str()), ("v", operator), "{text}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        assert_eq!(
            run("${v^^}", &[]).unwrap_err().to_string(),
            "`^^` in a reference to `v` is an envsubst operator weaver does not support"
        );
        assert_eq!(run("${v.x}", &[]), Err(Problem::Syntax("`${v` has no closing `}`".into())));
        for problem in [run("${v^^}", &[("v", "secret")]).unwrap_err(), run("${v", &[("v", "secret")]).unwrap_err()] {
            assert!(!problem.to_string().contains("secret"), "{problem}");
        }
    }

    fn object(yaml: &str) -> Value {
        weaver_yaml::from_str(std::path::Path::new("x.yaml"), yaml).unwrap()
    }

    #[test]
    fn how_a_scalar_was_written_is_lost_as_flux_writes_the_object_again() {
        // Quoted or plain in the file, `${n}` is written plain by go-yaml v2 and read back a
        // number (fluxcd/kustomize-controller#625); `${flag}` with `yes` is a YAML 1.1 boolean;
        // a variable left empty gives null, as Flux reads `key: `.
        let text = "kind: Deployment\nmetadata:\n  name: web-${cluster}\n  labels:\n    ${key}: \"${n}\"\nspec:\n  replicas: ${n}\n  paused: ${flag}\n  note: '${n}'\n  tz: \"${empty}\"\n  list:\n  - ${n}\n  - \"${n}\"\n";
        let mut value = object(text);
        let set = vars(&[("cluster", "eu"), ("n", "3"), ("flag", "yes"), ("key", "tier"), ("empty", "")]);
        assert!(substitute(&mut value, &set).unwrap());
        let expected = object(
            "kind: Deployment\nmetadata:\n  name: web-eu\n  labels:\n    tier: 3\nspec:\n  replicas: 3\n  paused: true\n  note: 3\n  tz: null\n  list:\n  - 3\n  - 3\n",
        );
        assert_eq!(value, expected);
    }

    #[test]
    fn strings_go_yaml_writes_quoted_or_as_blocks_stay_strings() {
        // Flux's documented way to keep a number a string: a variable holding the quotes.
        let mut value = serde_json::json!({
            "quoted": "${q}${n}${q}",
            "script": "echo ${n}\n",
            "comment": "${n} # x",
            "indicator": "*${n}",
            "colon": "${n}: ${n}",
            "spaced": " ${n}",
            "tab": "${n}\tx",
            "flow": "[${n}]",
            "inside": "a,${n}",
            "dash": "-${n}",
        });
        substitute(&mut value, &vars(&[("q", "\""), ("n", "1")])).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "quoted": "1",
                "script": "echo 1\n",
                "comment": "1 # x",
                "indicator": "*1",
                "colon": "1: 1",
                "spaced": " 1",
                "tab": "1\tx",
                "flow": "[1]",
                "inside": "a,1",
                "dash": -1,
            })
        );
    }

    #[test]
    fn written_plain_follows_go_yaml_v2s_emitter() {
        for plain in
            ["${a}", "web-${a}", "http://h:${port}/x", "a#${b}", "${a}:${b}", "é${a}", "-${a}", "a, ${b}", "${a}?"]
        {
            assert!(written_plain(plain), "{plain}");
        }
        for quoted in [
            "",
            "#${a}",
            "&${a}",
            "'${a}'",
            "\"${a}\"",
            "%${a}",
            "@${a}",
            "`${a}`",
            "{${a}}",
            "[${a}]",
            "- ${a}",
            ": ${a}",
            "? ${a}",
            "${a}: b",
            "${a}:",
            "${a} #b",
            " ${a}",
            "${a} ",
            "---${a}",
            "...${a}",
            "${a}\tb",
            "${a}\nb",
            "${a}\u{feff}",
            "${a}\u{7}",
        ] {
            assert!(!written_plain(quoted), "{quoted:?}");
        }
    }

    #[test]
    fn disabled_objects_and_objects_without_references_are_untouched() {
        let set = vars(&[("n", "1")]);
        for meta in ["labels", "annotations"] {
            let mut value =
                serde_json::json!({"metadata": {meta: {DISABLE_KEY: "disabled"}}, "a": "${n}", "b": "${missing}"});
            let before = value.clone();
            assert!(!substitute(&mut value, &set).unwrap());
            assert_eq!(value, before);
        }
        let mut value = serde_json::json!({"metadata": {"name": "x"}, "a": "$HOME", "n": 1});
        assert!(!substitute(&mut value, &set).unwrap());
    }

    #[test]
    fn keys_that_substitution_makes_equal_are_an_error() {
        let mut value = serde_json::json!({"${a}": 1, "${b}": 2});
        let set = vars(&[("a", "x"), ("b", "x")]);
        assert_eq!(substitute(&mut value, &set), Err(Problem::SameKey("${a}".into(), "${b}".into())));
    }

    #[test]
    fn references_to_unknown_variables_stay_as_written_and_the_others_are_substituted() {
        let mut value = serde_json::json!({
            "metadata": {"name": "${APP}"},
            "spec": {"a": "${TOKEN}", "b": "x-${TOKEN:=none}-${APP}", "c": "$${APP}", "d": "${gone:=d}"},
        });
        let lookup = |name: &str| match name {
            "APP" => Lookup::Set("web"),
            "TOKEN" => Lookup::Unknown,
            _ => Lookup::Unset,
        };
        assert!(substitute_known(&mut value, &lookup).unwrap());
        assert_eq!(
            value,
            serde_json::json!({
                "metadata": {"name": "web"},
                "spec": {"a": "${TOKEN}", "b": "x-${TOKEN:=none}-web", "c": "${APP}", "d": "d"},
            })
        );
        let mut unset = serde_json::json!({"a": "${TOKEN}-${gone}"});
        assert_eq!(substitute_known(&mut unset, &lookup), Err(Problem::Unset("gone".into())));
    }
}
