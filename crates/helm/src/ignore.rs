//! `.helmignore`: helm's rules (pkg/ignore), which are not gitignore's: no `**`, a pattern
//! without `/` matches a path's last element, and negation works as helm implements it.

/// One rule of a `.helmignore`.
#[derive(Debug, Clone)]
struct Rule {
    pattern: Glob,
    negate: bool,
    must_dir: bool,
    kind: Anchor,
}

#[derive(Debug, Clone, Copy)]
enum Anchor {
    /// Matches the whole path (a pattern with a `/`).
    Path,
    /// Matches the last element of the path.
    Base,
}

#[derive(Debug, Clone, Default)]
pub struct Rules(Vec<Rule>);

impl Rules {
    /// Parses `.helmignore`, then adds helm's default rule (`templates/.?*`). An error names the
    /// line.
    pub fn parse(text: &str) -> Result<Rules, String> {
        let mut rules = Rules::default();
        for (index, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
            rules.add(line).map_err(|e| format!("line {}: {e}", index + 1))?;
        }
        rules.add_defaults();
        Ok(rules)
    }

    pub fn defaults() -> Rules {
        let mut rules = Rules::default();
        rules.add_defaults();
        rules
    }

    fn add_defaults(&mut self) {
        self.add("templates/.?*").expect("the default rule is valid");
    }

    fn add(&mut self, line: &str) -> Result<(), String> {
        let mut rule = line.trim();
        if rule.is_empty() || rule.starts_with('#') {
            return Ok(());
        }
        if rule.contains("**") {
            return Err("double-star (**) syntax is not supported".into());
        }
        if go_match(rule, "abc").is_err() {
            return Err(format!("syntax error in pattern `{rule}`"));
        }
        let negate = rule.starts_with('!');
        if negate {
            rule = &rule[1..];
        }
        let must_dir = rule.ends_with('/');
        let rule = rule.strip_suffix('/').unwrap_or(rule);
        let (pattern, kind) = match rule.strip_prefix('/') {
            Some(anchored) => (anchored, Anchor::Path),
            None if rule.contains('/') => (rule, Anchor::Path),
            None => (rule, Anchor::Base),
        };
        self.0.push(Rule { pattern: Glob::new(pattern), negate, must_dir, kind });
        Ok(())
    }

    /// Whether `path` (relative to the chart, `/`-separated) is ignored.
    pub fn ignores(&self, path: &str, is_dir: bool) -> bool {
        if path.is_empty() || path == "." || path == "./" {
            return false;
        }
        let base = path.rsplit_once('/').map_or(path, |(_, base)| base);
        for rule in &self.0 {
            let name = match rule.kind {
                Anchor::Path => path,
                Anchor::Base => base,
            };
            let matched = rule.pattern.matches(name);
            if rule.negate {
                if (rule.must_dir && !is_dir) || !matched {
                    return true;
                }
                continue;
            }
            if rule.must_dir && !is_dir {
                continue;
            }
            if matched {
                return true;
            }
        }
        false
    }

    /// Whether a file is ignored, itself or through one of its directories (helm skips an
    /// ignored directory whole).
    pub fn ignores_file(&self, path: &str) -> bool {
        let mut end = 0;
        while let Some(offset) = path[end..].find('/') {
            end += offset;
            if self.ignores(&path[..end], true) {
                return true;
            }
            end += 1;
        }
        self.ignores(path, false)
    }
}

/// A rule's pattern, ready to match: every file of a chart meets every rule, and most rules are
/// a name or `*.ext`, which need no glob matching.
#[derive(Debug, Clone)]
enum Glob {
    Literal(String),
    /// `*` and then a literal: a name of one element that ends with it.
    AnySuffix(String),
    /// Any other pattern, and the literal it starts with.
    Pattern {
        prefix: String,
        chars: Vec<char>,
    },
}

impl Glob {
    fn new(pattern: &str) -> Glob {
        let meta = |c: char| matches!(c, '*' | '?' | '[' | '\\');
        match pattern.find(meta) {
            None => Glob::Literal(pattern.to_string()),
            Some(0) if pattern.starts_with('*') && !pattern[1..].contains(meta) => {
                Glob::AnySuffix(pattern[1..].to_string())
            }
            Some(at) => Glob::Pattern { prefix: pattern[..at].to_string(), chars: pattern.chars().collect() },
        }
    }

    /// As [`go_match`], a malformed pattern matching nothing.
    fn matches(&self, name: &str) -> bool {
        match self {
            Glob::Literal(literal) => name == literal,
            Glob::AnySuffix(suffix) => {
                name.ends_with(suffix.as_str()) && !name[..name.len() - suffix.len()].contains('/')
            }
            Glob::Pattern { prefix, chars } => {
                name.starts_with(prefix.as_str())
                    && match_from(chars, &name.chars().collect::<Vec<_>>()).unwrap_or(false)
            }
        }
    }
}

/// Go's `path/filepath.Match`: `*` (not across `/`), `?`, `[...]` classes (`^` negates), `\`
/// escapes. Errors on a malformed pattern, as Go does.
pub(crate) fn go_match(pattern: &str, name: &str) -> Result<bool, ()> {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    match_from(&pattern, &name)
}

fn match_from(pattern: &[char], name: &[char]) -> Result<bool, ()> {
    let (mut p, mut n) = (0, 0);
    // Backtracking point for the last `*`: (pattern index after it, name index).
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p < pattern.len() {
            match pattern[p] {
                '*' => {
                    star = Some((p + 1, n));
                    p += 1;
                    continue;
                }
                '?' if n < name.len() && name[n] != '/' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                '[' if n < name.len() => {
                    let (matched, next) = class(pattern, p, name[n])?;
                    if matched && name[n] != '/' {
                        p = next;
                        n += 1;
                        continue;
                    }
                }
                '\\' => {
                    let escaped = *pattern.get(p + 1).ok_or(())?;
                    if n < name.len() && name[n] == escaped {
                        p += 2;
                        n += 1;
                        continue;
                    }
                }
                c if c != '?' && c != '[' && n < name.len() && name[n] == c => {
                    p += 1;
                    n += 1;
                    continue;
                }
                '[' => {
                    class(pattern, p, '\0')?;
                }
                _ => {}
            }
        } else if n == name.len() {
            return Ok(true);
        }
        // Mismatch: let the last `*` take one more character, unless that is a `/`.
        match star {
            Some((after, taken)) if taken < name.len() && name[taken] != '/' => {
                star = Some((after, taken + 1));
                p = after;
                n = taken + 1;
            }
            _ => {
                // Go still reports a malformed remainder of the pattern.
                check_rest(&pattern[p.min(pattern.len())..])?;
                return Ok(false);
            }
        }
    }
}

fn check_rest(pattern: &[char]) -> Result<(), ()> {
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            '[' => i = class(pattern, i, '\0')?.1,
            '\\' => i += if i + 1 < pattern.len() { 2 } else { return Err(()) },
            _ => i += 1,
        }
    }
    Ok(())
}

/// Matches `c` against the class starting at `pattern[start] == '['`; returns whether it
/// matched and the index after the class.
fn class(pattern: &[char], start: usize, c: char) -> Result<(bool, usize), ()> {
    let mut i = start + 1;
    let negated = pattern.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &ch = pattern.get(i).ok_or(())?;
        if ch == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let lo = read_char(pattern, &mut i)?;
        let hi = if pattern.get(i) == Some(&'-') && pattern.get(i + 1) != Some(&']') {
            i += 1;
            read_char(pattern, &mut i)?
        } else {
            lo
        };
        if lo <= c && c <= hi {
            matched = true;
        }
    }
    Ok((matched != negated, i))
}

fn read_char(pattern: &[char], i: &mut usize) -> Result<char, ()> {
    let c = *pattern.get(*i).ok_or(())?;
    if c == '-' || c == ']' {
        return Err(());
    }
    if c == '\\' {
        let escaped = *pattern.get(*i + 1).ok_or(())?;
        *i += 2;
        return Ok(escaped);
    }
    *i += 1;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_match_semantics() {
        assert_eq!(go_match("*.txt", "a.txt"), Ok(true));
        assert_eq!(go_match("*.txt", "d/a.txt"), Ok(false));
        assert_eq!(go_match("templates/.?*", "templates/.hidden"), Ok(true));
        assert_eq!(go_match("[a-c]x", "bx"), Ok(true));
        assert_eq!(go_match("[^a-c]x", "bx"), Ok(false));
        assert!(go_match("[", "a").is_err());
    }

    /// A prepared pattern matches what Go's `filepath.Match` does.
    #[test]
    fn prepared_patterns_match_as_go_does() {
        let patterns = ["a", "*.txt", "*", "a*", "*a*", "templates/.?*", "[a-c]*", "x\\*", "*/b", "a/*", "*[", "?"];
        let names = [
            "",
            "a",
            "a.txt",
            "d/a.txt",
            ".txt",
            "ab",
            "ba",
            "templates/.h",
            "templates/.",
            "b",
            "x*",
            "xy",
            "a/b",
            "c/b",
            "a/b/c",
        ];
        for pattern in patterns {
            for name in names {
                assert_eq!(
                    Glob::new(pattern).matches(name),
                    go_match(pattern, name).unwrap_or(false),
                    "{pattern} {name}"
                );
            }
        }
    }

    #[test]
    fn helmignore_rules() {
        let rules = Rules::parse("# c\n*.bak\nsecret/\n/top.txt\n").unwrap();
        assert!(rules.ignores_file("x/y.bak"));
        assert!(rules.ignores_file("secret/a"));
        assert!(rules.ignores_file("top.txt"));
        assert!(!rules.ignores_file("x/top.txt"));
        assert!(rules.ignores_file("templates/.swp"));
        assert!(!rules.ignores_file("templates/a.yaml"));
        assert!(Rules::parse("a/**/b").is_err());
    }
}
