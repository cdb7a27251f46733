//! `-l` selection of releases by their `labels`, with kubectl's label selector syntax:
//! `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists), `!k` (absent);
//! comma-separated requirements must all hold. kube-core's `Selector` builds selectors but
//! does not parse them, hence this small parser.

use std::collections::{BTreeMap, BTreeSet};

use weaver_core::error::{Error, Result};
use weaver_kube_schema::apimachinery;

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    Absent(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

/// What every selector error says is expected.
const EXPECTED: &str = "expected comma-separated requirements: key=value, key==value, key!=value, \
     key in (a,b), key notin (a,b), key or !key; a key is a label name (at most 63 letters, digits, \
     '-', '_' or '.', starting and ending with a letter or digit) with an optional DNS prefix \
     (example.com/tier), a value a label name too";

impl Selector {
    /// Parses every `-l` flag; all must hold. An empty flag selects everything, as in kubectl.
    pub fn parse_all<S: AsRef<str>>(flags: &[S]) -> Result<Selector> {
        Selector::parse_flag(flags, "-l/--selector")
    }

    /// [`Selector::parse_all`] of the values of `flag`, which its errors name.
    pub fn parse_flag<S: AsRef<str>>(flags: &[S], flag: &str) -> Result<Selector> {
        let mut requirements = Vec::new();
        for text in flags.iter().map(AsRef::as_ref).filter(|f| !f.trim().is_empty()) {
            let parsed: std::result::Result<Vec<Requirement>, String> =
                split_requirements(text).and_then(|parts| parts.into_iter().map(parse_requirement).collect());
            requirements.extend(parsed.map_err(|reason| {
                Error::new(format!("invalid label selector `{text}` ({flag}): {reason}")).with_help(EXPECTED)
            })?);
        }
        Ok(Selector { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, set) => labels.get(k).is_some_and(|v| set.contains(v)),
            Requirement::NotIn(k, set) => labels.get(k).is_none_or(|v| !set.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::Absent(k) => !labels.contains_key(k),
        })
    }
}

/// Splits at the commas outside parentheses: `tier in (a,b),team=x` is two requirements.
fn split_requirements(text: &str) -> std::result::Result<Vec<&str>, String> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' if depth > 0 => return Err("nested `(`".to_string()),
            '(' => depth = 1,
            ')' if depth == 0 => return Err("`)` without `(`".to_string()),
            ')' => depth = 0,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth > 0 {
        return Err("`(` is not closed with `)`".to_string());
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn parse_requirement(part: &str) -> std::result::Result<Requirement, String> {
    let part = part.trim();
    if part.is_empty() {
        return Err("an empty requirement (two commas, or a comma at an end)".to_string());
    }
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::Absent(checked_key(key.trim())?));
    }
    // A key never holds `=` or `!`, so the first one starts the operator.
    if let Some(at) = part.find(['=', '!']) {
        let (key, rest) = (part[..at].trim(), &part[at..]);
        let (operator, value) = if let Some(v) = rest.strip_prefix("!=") {
            ("!=", v)
        } else if let Some(v) = rest.strip_prefix("==") {
            ("==", v)
        } else if let Some(v) = rest.strip_prefix('=') {
            ("=", v)
        } else {
            return Err(format!("`{part}`: `!` must start the requirement (!key) or be part of `!=`"));
        };
        if key.is_empty() {
            return Err(format!("`{part}` has no key before `{operator}`"));
        }
        let (key, value) = (checked_key(key)?, value.trim());
        if value.is_empty() {
            return Err(format!(
                "`{part}` has no value after `{operator}` (for releases without the label, use !{key})"
            ));
        }
        let value = checked_value(value)?;
        return Ok(if operator == "!=" { Requirement::NotEquals(key, value) } else { Requirement::Equals(key, value) });
    }
    if let Some(open) = part.find('(') {
        let head = part[..open].trim_end();
        let (key, operator) = match head.rsplit_once(char::is_whitespace) {
            Some((key, op @ ("in" | "notin"))) => (key.trim(), op),
            _ => return Err(format!("`{part}`: expected `in` or `notin` before `(`")),
        };
        let Some(inner) = part[open + 1..].strip_suffix(')') else {
            return Err(format!("`{part}`: nothing may follow the closing `)`"));
        };
        let key = checked_key(key)?;
        let values = inner
            .split(',')
            .map(|v| match v.trim() {
                "" => Err(format!("`{part}`: the set of values after `{operator}` has an empty entry or is empty")),
                v => checked_value(v),
            })
            .collect::<std::result::Result<BTreeSet<_>, _>>()?;
        return Ok(if operator == "in" { Requirement::In(key, values) } else { Requirement::NotIn(key, values) });
    }
    if let Some(operator) = part.split_whitespace().nth(1).filter(|w| matches!(*w, "in" | "notin")) {
        return Err(format!(
            "`{part}`: expected a set of values in parentheses after `{operator}`, like tier {operator} (a,b)"
        ));
    }
    Ok(Requirement::Exists(checked_key(part)?))
}

/// A label key: an optional DNS subdomain prefix and `/`, then a label name.
fn checked_key(key: &str) -> std::result::Result<String, String> {
    if key.is_empty() {
        Err("a requirement has no key".to_string())
    } else if apimachinery::qualified_name_errors(key).is_empty() {
        Ok(key.to_string())
    } else {
        Err(format!("`{key}` is not a valid label key"))
    }
}

/// A label value; an empty one is not written in a selector.
fn checked_value(value: &str) -> std::result::Result<String, String> {
    if !value.is_empty() && apimachinery::label_value_errors(value).is_empty() {
        Ok(value.to_string())
    } else {
        Err(format!("`{value}` is not a valid label value"))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn sel(text: &str) -> Selector {
        Selector::parse_all(&[text]).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn reason(text: &str) -> String {
        Selector::parse_all(&[text]).unwrap_err().message
    }

    #[test]
    fn equality_inequality_and_existence() {
        let l = labels(&[("tier", "frontend"), ("team", "a")]);
        assert!(sel("tier=frontend").matches(&l));
        assert!(sel("tier==frontend,team=a").matches(&l));
        assert!(sel(" tier = frontend , team == a ").matches(&l));
        assert!(!Selector::parse_all(&["tier=frontend", "team=b"]).unwrap().matches(&l));
        assert!(sel("tier!=backend").matches(&l));
        assert!(sel("owner!=x").matches(&l));
        assert!(!sel("tier!=frontend").matches(&l));
        assert!(sel("team").matches(&l));
        assert!(!sel("!team").matches(&l));
        assert!(sel("!owner").matches(&l));
        assert!(sel("").is_empty());
    }

    #[test]
    fn set_based_requirements() {
        let l = labels(&[("tier", "frontend"), ("team", "a")]);
        assert!(sel("tier in (frontend,backend)").matches(&l));
        assert!(sel("tier in ( backend , frontend ),team=a").matches(&l));
        assert!(!sel("tier in (backend)").matches(&l));
        assert!(!sel("tier notin (frontend,backend)").matches(&l));
        assert!(sel("tier notin (backend),team").matches(&l));
        // As in kubectl, notin holds for a release without the label.
        assert!(sel("owner notin (x)").matches(&l));
        assert!(!sel("owner in (x)").matches(&l));
    }

    #[test]
    fn keys_may_have_a_dns_prefix() {
        let l = labels(&[("example.com/tier", "web")]);
        assert!(sel("example.com/tier=web").matches(&l));
        assert!(reason("Example.com/tier=web").contains("`Example.com/tier` is not a valid label key"));
        assert!(reason("/tier").contains("not a valid label key"));
    }

    #[test]
    fn rejects_malformed() {
        let cases = [
            ("tier==", "`tier==` has no value after `==`"),
            ("tier=", "has no value after `=`"),
            ("=x", "`=x` has no key before `=`"),
            ("tier in (a", "`(` is not closed with `)`"),
            ("tier in (a,b", "`(` is not closed"),
            ("tier notin ()", "has an empty entry or is empty"),
            ("tier in (a,)", "has an empty entry or is empty"),
            ("tier in a", "expected a set of values in parentheses after `in`"),
            ("tier (a)", "expected `in` or `notin` before `(`"),
            ("tier in (a) b", "nothing may follow"),
            ("tier in (a))", "`)` without `(`"),
            ("ti$r=x", "`ti$r` is not a valid label key"),
            ("tier=front end", "`front end` is not a valid label value"),
            ("tier=-x", "`-x` is not a valid label value"),
            ("a,,b", "an empty requirement"),
            ("a,", "an empty requirement"),
            ("tier!x", "`!` must start the requirement"),
            ("!", "a requirement has no key"),
        ];
        for (text, expected) in cases {
            let message = reason(text);
            assert!(message.starts_with(&format!("invalid label selector `{text}` (-l/--selector): ")), "{message}");
            assert!(message.contains(expected), "{text}: {message}");
        }
        assert!(reason(&format!("tier={}", "a".repeat(64))).contains("not a valid label value"));
        assert!(Selector::parse_all(&[format!("tier={}", "a".repeat(63))]).is_ok());
    }

    proptest! {
        #[test]
        fn any_text_parses_or_is_an_error(text in any::<String>()) {
            let _ = Selector::parse_all(&[text]);
        }

        #[test]
        fn any_selector_like_text_parses_or_is_an_error(text in "[a-z!=(), /.-]{0,30}") {
            let _ = Selector::parse_all(&[text]);
        }
    }
}
