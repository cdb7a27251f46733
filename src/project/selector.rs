//! `-l key=value` selection of releases by their `labels`, with kubectl's selector syntax for
//! equality: `k=v`, `k==v`, `k!=v`, `k` (exists), `!k` (absent), comma-separated = AND.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Parses every `-l` flag; all must hold.
    pub fn parse_all<S: AsRef<str>>(flags: &[S]) -> Result<Selector> {
        let mut requirements = Vec::new();
        for flag in flags {
            for part in flag.as_ref().split(',').map(str::trim).filter(|p| !p.is_empty()) {
                requirements.push(parse_requirement(part)?);
            }
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
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::Absent(k) => !labels.contains_key(k),
        })
    }
}

fn parse_requirement(part: &str) -> Result<Requirement> {
    let bad = || {
        Error::new(format!("invalid label selector `{part}` in -l/--selector"))
            .with_help("use key=value, key!=value, key or !key, separated by commas")
    };
    let valid_key = |k: &str| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    let valid_value = |v: &str| v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    let requirement = if let Some((k, v)) = part.split_once("!=") {
        Requirement::NotEquals(k.trim().into(), v.trim().into())
    } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        Requirement::Equals(k.trim().into(), v.trim().into())
    } else if let Some(k) = part.strip_prefix('!') {
        Requirement::Absent(k.trim().into())
    } else {
        Requirement::Exists(part.into())
    };
    let (Requirement::Equals(k, v) | Requirement::NotEquals(k, v)) = &requirement else {
        let (Requirement::Exists(k) | Requirement::Absent(k)) = &requirement else { unreachable!() };
        return if valid_key(k) { Ok(requirement) } else { Err(bad()) };
    };
    if valid_key(k) && valid_value(v) { Ok(requirement) } else { Err(bad()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn equality_inequality_and_existence() {
        let l = labels(&[("tier", "frontend"), ("team", "a")]);
        assert!(Selector::parse_all(&["tier=frontend"]).unwrap().matches(&l));
        assert!(Selector::parse_all(&["tier==frontend,team=a"]).unwrap().matches(&l));
        assert!(!Selector::parse_all(&["tier=frontend", "team=b"]).unwrap().matches(&l));
        assert!(Selector::parse_all(&["tier!=backend"]).unwrap().matches(&l));
        assert!(Selector::parse_all(&["team"]).unwrap().matches(&l));
        assert!(!Selector::parse_all(&["!team"]).unwrap().matches(&l));
        assert!(Selector::parse_all(&["!owner"]).unwrap().matches(&l));
    }

    #[test]
    fn rejects_malformed() {
        let err = Selector::parse_all(&["tier=front end"]).unwrap_err();
        assert_eq!(err.message, "invalid label selector `tier=front end` in -l/--selector");
        assert!(Selector::parse_all(&["=x"]).is_err());
    }
}
