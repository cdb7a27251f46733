//! Flux's post-build variable substitution (kustomize-controller's `postBuild.substitute` and
//! `substituteFrom`) for the objects of a kustomization release once it is built.
//!
//! Flux runs drone/envsubst (its fork in fluxcd/pkg) over each object's YAML text and parses the
//! result again. weaver substitutes in each string of the object (keys included) with the same
//! rules, and reads a string that was written as a plain scalar again as YAML (as sigs.k8s.io/yaml
//! reads Flux's text, so `replicas: ${replicas}` becomes a number), while a quoted or block
//! scalar stays a string, as kyaml keeps the style it was written in. How a scalar was written
//! is read from the object's file ([`Styles`]); a value that is not found there (generated,
//! patched in) counts as plain unless it spans lines: kyaml writes such a string as a block
//! (or quoted) scalar, never plain, so it stays a string (a generated dashboard's JSON).
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

use granit_parser::ScalarStyle;
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
/// stricter name: see `crate::project::environment::is_variable_name`).
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

/// How the scalars holding a `$` were written in one file: plain or not (quoted, block).
#[derive(Debug, Default)]
pub struct Styles {
    /// By document (those that are not null, in order), the pointer of each such scalar, its
    /// text and whether it was plain.
    documents: Vec<HashMap<String, (String, bool)>>,
    /// By text, whether it was written plain somewhere, and quoted somewhere.
    texts: HashMap<String, (bool, bool)>,
}

impl Styles {
    /// The styles of `text`; none (everything counts as plain) when it does not read.
    pub fn of(text: &str) -> Styles {
        let mut styles = Styles::default();
        if !text.contains('$') {
            return styles;
        }
        let documents = crate::yaml::scalars::walk(
            text,
            |value, _, _| value.contains('$'),
            |scalar| {
                let plain = scalar.style == ScalarStyle::Plain;
                if styles.documents.len() <= scalar.document {
                    styles.documents.resize_with(scalar.document + 1, HashMap::new);
                }
                styles.documents[scalar.document].insert(scalar.pointer, (scalar.value.to_string(), plain));
                let seen = styles.texts.entry(scalar.value.to_string()).or_default();
                if plain { seen.0 = true } else { seen.1 = true }
            },
        );
        if documents.is_none() {
            return Styles::default();
        }
        styles
    }

    /// Whether the string `text` at `pointer` of `document` (1-based) was written plain: as it
    /// was there, else as that text was written anywhere in the file when that was always quoted,
    /// else as kyaml writes it (a string of several lines is never plain).
    fn is_plain(&self, document: usize, pointer: &str, text: &str) -> bool {
        let here = document.checked_sub(1).and_then(|d| self.documents.get(d)).and_then(|d| d.get(pointer));
        match here {
            Some((written, plain)) if written == text => *plain,
            _ => !text.contains('\n') && !matches!(self.texts.get(text), Some((false, true))),
        }
    }
}

/// Substitutes `vars` in `object` (document `document` of a file written as `styles` says),
/// unless it is disabled. Says whether anything changed.
pub fn substitute(
    object: &mut Value,
    document: usize,
    styles: &Styles,
    vars: &HashMap<String, String>,
) -> Result<bool, Problem> {
    substitute_known(object, document, styles, &|name| vars.get(name).map_or(Lookup::Unset, |v| Lookup::Set(v)))
}

/// [`substitute`], with each variable looked up by `vars`: the references to an unknown one
/// stay as written.
pub fn substitute_known<'v>(
    object: &mut Value,
    document: usize,
    styles: &Styles,
    vars: &dyn Fn(&str) -> Lookup<'v>,
) -> Result<bool, Problem> {
    if is_disabled(object) {
        return Ok(false);
    }
    let mut walk = Walk { document, styles, vars, pointer: String::new(), changed: false };
    walk.value(object)?;
    Ok(walk.changed)
}

struct Walk<'a, 'v> {
    document: usize,
    styles: &'a Styles,
    vars: &'a dyn Fn(&str) -> Lookup<'v>,
    /// The JSON pointer of the value being walked.
    pointer: String,
    changed: bool,
}

impl Walk<'_, '_> {
    fn value(&mut self, value: &mut Value) -> Result<(), Problem> {
        match value {
            Value::String(text) if text.contains('$') => {
                let expanded = expand_known(text, self.vars)?;
                if expanded != *text {
                    self.changed = true;
                    *value = match self.styles.is_plain(self.document, &self.pointer, text) {
                        // Read as sigs.k8s.io/yaml reads Flux's substituted text; text that does
                        // not read as YAML stays the string it is.
                        true => match crate::helm::yaml::from_str(&expanded) {
                            Ok(Some(parsed)) => parsed,
                            Ok(None) => Value::Null,
                            Err(_) => Value::String(expanded),
                        },
                        false => Value::String(expanded),
                    };
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter_mut().enumerate() {
                    self.child(&index.to_string(), item)?;
                }
            }
            Value::Object(map) if map.keys().any(|key| key.contains('$')) => {
                *map = self.keys(std::mem::take(map))?;
            }
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    self.child(key, item)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn child(&mut self, token: &str, value: &mut Value) -> Result<(), Problem> {
        let len = self.pointer.len();
        self.pointer.push('/');
        self.pointer.push_str(&token.replace('~', "~0").replace('/', "~1"));
        let result = self.value(value);
        self.pointer.truncate(len);
        result
    }

    /// The mapping with its keys and values substituted, in its order. The pointers of its
    /// values, which say how they were written, are those of the keys as written.
    fn keys(&mut self, map: Map<String, Value>) -> Result<Map<String, Value>, Problem> {
        let mut out = Map::with_capacity(map.len());
        let mut written: HashMap<String, String> = HashMap::new();
        for (key, mut value) in map {
            self.child(&key, &mut value)?;
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
        crate::yaml::from_str(std::path::Path::new("x.yaml"), yaml).unwrap()
    }

    #[test]
    fn plain_scalars_are_read_again_and_quoted_ones_stay_strings() {
        let text = "kind: Deployment\nmetadata:\n  name: web-${cluster}\n  labels:\n    ${key}: \"${n}\"\nspec:\n  replicas: ${n}\n  paused: ${flag}\n  note: '${n}'\n  script: |\n    echo ${n}\n  list:\n  - ${n}\n  - \"${n}\"\n";
        let mut value = object(text);
        let styles = Styles::of(text);
        let set = vars(&[("cluster", "eu"), ("n", "3"), ("flag", "yes"), ("key", "tier")]);
        assert!(substitute(&mut value, 1, &styles, &set).unwrap());
        let expected = object(
            "kind: Deployment\nmetadata:\n  name: web-eu\n  labels:\n    tier: \"3\"\nspec:\n  replicas: 3\n  paused: true\n  note: '3'\n  script: |\n    echo 3\n  list:\n  - 3\n  - \"3\"\n",
        );
        assert_eq!(value, expected);
    }

    #[test]
    fn a_quoted_value_is_found_by_its_text_when_its_place_changed() {
        let text = "a: \"${n}\"\n";
        let mut value = serde_json::json!({"moved": {"a": "${n}"}, "other": "${m}"});
        let set = vars(&[("n", "1"), ("m", "2")]);
        substitute(&mut value, 1, &Styles::of(text), &set).unwrap();
        assert_eq!(value, serde_json::json!({"moved": {"a": "1"}, "other": 2}));
    }

    #[test]
    fn a_string_of_several_lines_found_nowhere_in_the_file_stays_a_string() {
        // A generated ConfigMap's JSON file: kyaml writes it as a block scalar, which Flux's
        // substituted text keeps a string.
        let mut value = serde_json::json!({"data": {"dashboard.json": "{\n  \"ds\": \"${DS}\"\n}\n", "one": "${n}"}});
        substitute(&mut value, 1, &Styles::default(), &vars(&[("DS", ""), ("n", "1")])).unwrap();
        assert_eq!(value, serde_json::json!({"data": {"dashboard.json": "{\n  \"ds\": \"\"\n}\n", "one": 1}}));
    }

    #[test]
    fn disabled_objects_and_objects_without_references_are_untouched() {
        let set = vars(&[("n", "1")]);
        for meta in ["labels", "annotations"] {
            let mut value =
                serde_json::json!({"metadata": {meta: {DISABLE_KEY: "disabled"}}, "a": "${n}", "b": "${missing}"});
            let before = value.clone();
            assert!(!substitute(&mut value, 1, &Styles::default(), &set).unwrap());
            assert_eq!(value, before);
        }
        let mut value = serde_json::json!({"metadata": {"name": "x"}, "a": "$HOME", "n": 1});
        assert!(!substitute(&mut value, 1, &Styles::default(), &set).unwrap());
    }

    #[test]
    fn keys_that_substitution_makes_equal_are_an_error() {
        let mut value = serde_json::json!({"${a}": 1, "${b}": 2});
        let set = vars(&[("a", "x"), ("b", "x")]);
        assert_eq!(
            substitute(&mut value, 1, &Styles::default(), &set),
            Err(Problem::SameKey("${a}".into(), "${b}".into()))
        );
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
        assert!(substitute_known(&mut value, 1, &Styles::default(), &lookup).unwrap());
        assert_eq!(
            value,
            serde_json::json!({
                "metadata": {"name": "web"},
                "spec": {"a": "${TOKEN}", "b": "x-${TOKEN:=none}-web", "c": "${APP}", "d": "d"},
            })
        );
        let mut unset = serde_json::json!({"a": "${TOKEN}-${gone}"});
        assert_eq!(substitute_known(&mut unset, 1, &Styles::default(), &lookup), Err(Problem::Unset("gone".into())));
    }
}
