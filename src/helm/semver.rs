//! Version constraints as helm checks them (Masterminds/semver v3): `^1.2`, `~1.2.3`, `>=1, <2`,
//! `1.x`, `1.2 - 1.4`, `||`. The `semver` crate's requirement syntax differs (Cargo's), so its
//! `Version` does the ordering and this file the constraint language.

use ::semver::Version;

/// Masterminds' lenient version syntax: an optional `v`, one to three numbers, then a
/// pre-release and build metadata.
pub fn parse_version(text: &str) -> Option<Version> {
    let text = text.trim();
    let text = text.strip_prefix('v').unwrap_or(text);
    let (core, rest) = match text.find(['-', '+']) {
        Some(i) => (&text[..i], &text[i..]),
        None => (text, ""),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let number = |i: usize| parts.get(i).map_or(Some(0), |p| p.parse::<u64>().ok());
    Version::parse(&format!("{}.{}.{}{rest}", number(0)?, number(1)?, number(2)?)).ok()
}

/// Whether `version` satisfies `constraint`; `Err` when the constraint does not parse.
pub fn matches(constraint: &str, version: &Version) -> Result<bool, String> {
    let groups = parse(constraint)?;
    Ok(groups.iter().any(|group| group.iter().all(|c| c.check(version))))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    TildeOrEqual,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    Tilde,
    Caret,
}

#[derive(Debug)]
struct Constraint {
    op: Op,
    version: Version,
    minor_dirty: bool,
    patch_dirty: bool,
    dirty: bool,
}

fn parse(text: &str) -> Result<Vec<Vec<Constraint>>, String> {
    let invalid = || format!("improper constraint: {text}");
    let mut groups = Vec::new();
    for group in text.split("||") {
        // A hyphen range `a - b` is `>= a, <= b`.
        let mut expanded = String::new();
        let tokens: Vec<&str> = group.split([',', ' ']).filter(|t| !t.is_empty()).collect();
        let mut i = 0;
        while i < tokens.len() {
            if tokens.get(i + 1) == Some(&"-") && i + 2 < tokens.len() {
                expanded.push_str(&format!(">={} <={} ", tokens[i], tokens[i + 2]));
                i += 3;
            } else {
                // An operator written apart from its version (`>= 1.2`) joins it.
                if matches!(tokens[i], "=" | "!=" | ">" | "<" | ">=" | "=>" | "<=" | "=<" | "~" | "~>" | "^")
                    && i + 1 < tokens.len()
                {
                    expanded.push_str(tokens[i]);
                    i += 1;
                }
                expanded.push_str(tokens[i]);
                expanded.push(' ');
                i += 1;
            }
        }
        let constraints =
            expanded.split_whitespace().map(|c| one(c).ok_or_else(invalid)).collect::<Result<Vec<_>, _>>()?;
        if constraints.is_empty() {
            return Err(invalid());
        }
        groups.push(constraints);
    }
    Ok(groups)
}

fn one(text: &str) -> Option<Constraint> {
    let ops: [(&str, Op); 11] = [
        (">=", Op::GreaterEqual),
        ("=>", Op::GreaterEqual),
        ("<=", Op::LessEqual),
        ("=<", Op::LessEqual),
        ("!=", Op::NotEqual),
        ("~>", Op::Tilde),
        (">", Op::Greater),
        ("<", Op::Less),
        ("=", Op::TildeOrEqual),
        ("~", Op::Tilde),
        ("^", Op::Caret),
    ];
    let (op, rest) =
        ops.iter().find_map(|(p, op)| text.strip_prefix(p).map(|r| (*op, r))).unwrap_or((Op::TildeOrEqual, text));
    let rest = rest.trim().strip_prefix('v').unwrap_or(rest.trim());
    let (core, suffix) = match rest.find(['-', '+']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let wildcard = |p: Option<&&str>| p.is_none_or(|p| matches!(*p, "x" | "X" | "*"));
    let (major_dirty, minor_dirty, patch_dirty) =
        (wildcard(parts.first()), wildcard(parts.get(1)), wildcard(parts.get(2)));
    let number = |p: Option<&&str>| -> Option<u64> {
        match p {
            Some(p) if !matches!(*p, "x" | "X" | "*") => p.parse().ok(),
            _ => Some(0),
        }
    };
    let version = Version::parse(&format!(
        "{}.{}.{}{suffix}",
        number(parts.first())?,
        number(parts.get(1))?,
        number(parts.get(2))?
    ))
    .ok()?;
    Some(Constraint {
        op,
        version,
        minor_dirty: major_dirty || minor_dirty,
        patch_dirty: major_dirty || minor_dirty || patch_dirty,
        dirty: major_dirty || minor_dirty || patch_dirty,
    })
}

impl Constraint {
    fn check(&self, v: &Version) -> bool {
        let c = &self.version;
        // A pre-release matches only a constraint that names one.
        if !v.pre.is_empty() && c.pre.is_empty() {
            return false;
        }
        match self.op {
            Op::TildeOrEqual if self.dirty => self.tilde(v),
            Op::TildeOrEqual => v.cmp_precedence(c).is_eq(),
            Op::NotEqual if self.dirty => !self.tilde(v),
            Op::NotEqual => !v.cmp_precedence(c).is_eq(),
            Op::Greater if !self.dirty => v.cmp_precedence(c).is_gt(),
            Op::Greater => {
                if v.major != c.major {
                    v.major > c.major
                } else if self.minor_dirty {
                    false
                } else {
                    v.minor > c.minor
                }
            }
            Op::Less => v.cmp_precedence(c).is_lt(),
            Op::GreaterEqual => v.cmp_precedence(c).is_ge(),
            Op::LessEqual if !self.dirty => v.cmp_precedence(c).is_le(),
            Op::LessEqual => {
                if v.major != c.major {
                    v.major < c.major
                } else if self.minor_dirty {
                    true
                } else {
                    v.minor <= c.minor
                }
            }
            Op::Tilde => self.tilde(v),
            Op::Caret => {
                if v.cmp_precedence(c).is_lt() {
                    return false;
                }
                if c.major > 0 || self.minor_dirty {
                    return v.major == c.major;
                }
                if v.major > 0 {
                    return false;
                }
                if c.minor > 0 || self.patch_dirty {
                    return v.minor == c.minor;
                }
                v.minor == 0 && v.patch == c.patch
            }
        }
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.version;
        if v.cmp_precedence(c).is_lt() {
            return false;
        }
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        if self.minor_dirty && self.dirty && c.major == 0 && c.minor == 0 {
            // `*`, `x`: any release.
            return true;
        }
        v.major == c.major && (self.minor_dirty || v.minor == c.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(constraint: &str, version: &str) -> bool {
        matches(constraint, &parse_version(version).unwrap()).unwrap()
    }

    #[test]
    fn masterminds_constraints() {
        assert!(ok("^1.2.0", "1.9.0"));
        assert!(!ok("^1.2.0", "2.0.0"));
        assert!(ok("~1.2.3", "1.2.9"));
        assert!(!ok("~1.2.3", "1.3.0"));
        assert!(ok(">=1.0.0, <2.0.0", "1.5.0"));
        assert!(ok("1.2.x", "1.2.7"));
        assert!(ok("1.2", "1.2.7"));
        assert!(!ok("1.2", "1.3.0"));
        assert!(ok("*", "3.1.4"));
        assert!(!ok("*", "3.1.4-beta.1"));
        assert!(ok("1.0.0 - 1.4.0", "1.3.0"));
        assert!(ok("<1.0 || >=2.0", "2.1.0"));
        assert!(ok("^0.2.3", "0.2.9"));
        assert!(!ok("^0.2.3", "0.3.0"));
        assert!(ok(">= 1.2", "1.2.0"));
        assert!(ok("1.2.3", "v1.2.3"));
        assert!(matches("bogus!", &parse_version("1.0.0").unwrap()).is_err());
    }
}
