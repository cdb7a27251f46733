//! Semantic versions as helm reads them: a port of Masterminds/semver v3.3.0, its lenient
//! version grammar ("v1.2" is 1.2.0), its constraint syntax (`=`, `!=`, `>`, `<`, `>=`, `<=`, `~`,
//! `^`, wildcards, hyphen ranges, `,`/space for and, `||` for or) and its prerelease rules (a
//! prerelease version only satisfies constraints that themselves carry a prerelease, as in
//! ">=1.21-0"). Used by sprig's `semver` and `semverCompare`, helm's `kubeVersion` and chart
//! version ranges, image update policies and git tag ranges; it depends on `regex` alone.

use std::cmp::Ordering;
use std::sync::LazyLock;

use regex::Regex;

const CONSTRAINT_VERSION: &str = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
/// Masterminds' operators, in its pattern's order (which decides among them as a regex does).
const OPERATORS: [&str; 12] = ["=", "", "!=", ">", "<", ">=", "=>", "<=", "=<", "~", "~>", "^"];

struct Grammar {
    constraint: Regex,
    range: Regex,
    find: Regex,
    valid: Regex,
}

static GRAMMAR: LazyLock<Option<Grammar>> = LazyLock::new(|| {
    let cv = CONSTRAINT_VERSION;
    let ops: Vec<String> = OPERATORS.iter().map(|op| regex::escape(op)).collect();
    let ops = ops.join("|");
    // Go's `\s` is ASCII, as the classes here are: without Unicode's classes the patterns
    // compile in a fraction of the time (every chart that reads a version compiles them).
    let ascii = |pattern: String| regex::RegexBuilder::new(&pattern).unicode(false).build().ok();
    Some(Grammar {
        constraint: ascii(format!(r"^\s*({ops})\s*({cv})\s*$"))?,
        range: ascii(format!(r"\s*({cv})\s+-\s+({cv})\s*"))?,
        find: ascii(format!(r"({ops})\s*({cv})"))?,
        valid: ascii(format!(r"^(\s*({ops})\s*({cv})\s*)((?:\s+|,\s*)({ops})\s*({cv})\s*)*$"))?,
    })
});

fn grammar() -> Result<&'static Grammar, String> {
    GRAMMAR.as_ref().ok_or_else(|| "semver: grammar failed to compile".to_string())
}

/// A `*semver.Version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
    metadata: String,
    original: String,
}

fn is_numeric(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn is_allowed(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The major, minor and patch digits (empty when absent), prerelease and metadata of a version
/// the grammar of [`Version::parse`] accepts.
fn version_parts(v: &str) -> Option<[&str; 5]> {
    let rest = v.strip_prefix('v').unwrap_or(v);
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let n = digits(rest);
    if n == 0 {
        return None;
    }
    let (major, mut rest) = rest.split_at(n);
    let mut segments = ["", ""];
    for segment in &mut segments {
        let Some(after) = rest.strip_prefix('.') else { break };
        let n = digits(after);
        if n == 0 {
            return None;
        }
        (*segment, rest) = after.split_at(n);
    }
    // Identifiers are never empty, and `+` ends the prerelease.
    let identifiers = |s: &str| !s.is_empty() && s.split('.').all(|id| !id.is_empty() && is_allowed(id));
    let (rest, metadata) = match rest.split_once('+') {
        Some((rest, metadata)) if identifiers(metadata) => (rest, metadata),
        Some(_) => return None,
        None => (rest, ""),
    };
    let pre = match rest.strip_prefix('-') {
        Some(pre) if identifiers(pre) => pre,
        None if rest.is_empty() => "",
        _ => return None,
    };
    Some([major, segments[0], segments[1], pre, metadata])
}

impl Version {
    pub fn major(&self) -> u64 {
        self.major
    }

    pub fn minor(&self) -> u64 {
        self.minor
    }

    pub fn patch(&self) -> u64 {
        self.patch
    }

    /// The pre-release (`rc.1` of `1.5.0-rc.1`); empty for a release.
    pub fn prerelease(&self) -> &str {
        &self.pre
    }

    /// The build metadata (`b.2` of `1.5.0+b.2`); empty when none.
    pub fn metadata(&self) -> &str {
        &self.metadata
    }

    /// The text the version was read from.
    pub fn original(&self) -> &str {
        &self.original
    }

    /// semver.NewVersion: `^v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?(-(IDS))?(\+(IDS))?$`, IDS being
    /// dot-separated runs of `[0-9A-Za-z-]`. Read by hand: every chart parses the cluster's
    /// version, and compiling the pattern cost more than the rest of a small chart's render.
    pub fn parse(v: &str) -> Result<Version, String> {
        let [major, minor, patch, pre, metadata] = version_parts(v).ok_or("Invalid Semantic Version")?;
        let segment = |s: &str| -> Result<u64, String> {
            if s.is_empty() {
                return Ok(0);
            }
            s.parse::<u64>().map_err(|_| {
                // `s` is digits alone: Go's %q of it is Rust's {:?}.
                format!("Error parsing version segment: strconv.ParseUint: parsing {s:?}: value out of range")
            })
        };
        let version = Version {
            major: segment(major)?,
            minor: segment(minor)?,
            patch: segment(patch)?,
            pre: pre.to_string(),
            metadata: metadata.to_string(),
            original: v.to_string(),
        };
        for part in version.pre.split('.').filter(|_| !version.pre.is_empty()) {
            if is_numeric(part) {
                if part.len() > 1 && part.starts_with('0') {
                    return Err("Version segment starts with 0".to_string());
                }
            } else if !is_allowed(part) {
                return Err("Invalid Prerelease string".to_string());
            }
        }
        if !version.metadata.is_empty() && !version.metadata.split('.').all(is_allowed) {
            return Err("Invalid Metadata string".to_string());
        }
        Ok(version)
    }

    /// semver's `Compare`: precedence, metadata ignored (helm picks the newest chart version with it).
    pub fn compare(&self, other: &Version) -> Ordering {
        (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch)).then_with(|| {
            match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_prerelease(&self.pre, &other.pre),
            }
        })
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        if !self.metadata.is_empty() {
            write!(f, "+{}", self.metadata)?;
        }
        Ok(())
    }
}

fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    for i in 0..a.len().max(b.len()) {
        let ordering = compare_pre_part(a.get(i).copied().unwrap_or(""), b.get(i).copied().unwrap_or(""));
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

fn compare_pre_part(s: &str, o: &str) -> Ordering {
    if s == o {
        return Ordering::Equal;
    }
    if s.is_empty() {
        return Ordering::Less;
    }
    if o.is_empty() {
        return Ordering::Greater;
    }
    match (s.parse::<u64>(), o.parse::<u64>()) {
        (Err(_), Err(_)) => s.cmp(o),
        (_, Err(_)) => Ordering::Less,
        (Err(_), _) => Ordering::Greater,
        (Ok(si), Ok(oi)) => {
            if si > oi {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
    }
}

/// One comparison of a constraint: the operator, the version with wildcards zeroed, and which
/// parts were wildcards ("dirty").
#[derive(Debug, PartialEq)]
struct Constraint {
    op: String,
    version: Version,
    minor_dirty: bool,
    patch_dirty: bool,
    dirty: bool,
}

fn is_x(s: &str) -> bool {
    matches!(s, "x" | "X" | "*")
}

/// The parts of one comparison as the constraint pattern captures them: the operator, the
/// version as written, its major, its minor and patch each with their dot, and its prerelease
/// with its dash (each empty when absent).
struct Parts<'a> {
    op: &'a str,
    written: &'a str,
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    pre: &'a str,
}

/// The parts of a constraint of one comparison, read by hand: spaces, an operator, spaces, a
/// version whose parts are digits or one wildcard each, spaces (`>=1.21-0`, `>= 1.19.0-0`, `~1.2`,
/// `1.x`). `None` for anything else (lists, `||`, hyphen ranges, other whitespace, `1x`), which
/// the grammar's patterns read: compiling them cost a chart calling `semverCompare` 0.6 ms, more
/// than the rest of a small chart's render. On what it accepts it reads what the patterns read:
/// no character of an operator can start a version, and each part ends where the next begins.
fn single(text: &str) -> Option<Parts<'_>> {
    let is_operator = |b: u8| matches!(b, b'=' | b'!' | b'<' | b'>' | b'~' | b'^');
    let text = text.trim_matches(' ');
    let op_len = text.bytes().take_while(|&b| is_operator(b)).count();
    let (op, written) = text.split_at(op_len);
    let written = written.trim_start_matches(' ');
    if !OPERATORS.contains(&op) || written.contains(' ') {
        return None;
    }
    let bytes = written.as_bytes();
    let mut at = usize::from(bytes.first() == Some(&b'v'));
    let major_at = at;
    // A part: digits, or one wildcard; a character the pattern's class `[0-9|x|X|\*]` would add
    // to it is left to the pattern.
    let part = |at: usize| -> Option<usize> {
        let in_class = |i: usize| bytes.get(i).is_some_and(|b| b.is_ascii_digit() || b"|xX*".contains(b));
        let end = match bytes.get(at)? {
            b'0'..=b'9' => at + bytes[at..].iter().take_while(|b| b.is_ascii_digit()).count(),
            b'x' | b'X' | b'*' => at + 1,
            _ => return None,
        };
        (!in_class(end)).then_some(end)
    };
    at = part(at)?;
    let major_end = at;
    let mut dotted = [(at, at); 2];
    for segment in &mut dotted {
        if bytes.get(at) != Some(&b'.') {
            break;
        }
        let end = part(at + 1)?;
        *segment = (at, end);
        at = end;
    }
    // Identifiers after `-` (the prerelease) and `+` (metadata): dot-separated, never empty.
    let identifiers = |at: usize| -> Option<usize> {
        let mut end = at;
        loop {
            let run = bytes[end..].iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'-').count();
            if run == 0 {
                return None;
            }
            end += run;
            if bytes.get(end) != Some(&b'.') {
                return Some(end);
            }
            end += 1;
        }
    };
    let pre_at = at;
    if bytes.get(at) == Some(&b'-') {
        at = identifiers(at + 1)?;
    }
    let pre_end = at;
    if bytes.get(at) == Some(&b'+') {
        at = identifiers(at + 1)?;
    }
    (at == bytes.len()).then(|| Parts {
        op,
        written,
        major: &written[major_at..major_end],
        minor: &written[dotted[0].0..dotted[0].1],
        patch: &written[dotted[1].0..dotted[1].1],
        pre: &written[pre_at..pre_end],
    })
}

impl Constraint {
    fn parse(c: &str) -> Result<Constraint, String> {
        let caps = grammar()?.constraint.captures(c).ok_or_else(|| format!("improper constraint: {c}"))?;
        let group = |i: usize| caps.get(i).map_or("", |m| m.as_str());
        Constraint::of(Parts {
            op: group(1),
            written: group(2),
            major: group(3),
            minor: group(4),
            patch: group(5),
            pre: group(6),
        })
    }

    fn of(parts: Parts<'_>) -> Result<Constraint, String> {
        let Parts { op, written, major, minor, patch, pre } = parts;
        let (mut minor_dirty, mut patch_dirty, mut dirty) = (false, false, false);
        let version = if is_x(major) || major.is_empty() {
            dirty = true;
            format!("0.0.0{pre}")
        } else if is_x(minor.trim_start_matches('.')) || minor.is_empty() {
            minor_dirty = true;
            dirty = true;
            format!("{major}.0.0{pre}")
        } else if is_x(patch.trim_start_matches('.')) || patch.is_empty() {
            dirty = true;
            patch_dirty = true;
            format!("{major}{minor}.0{pre}")
        } else {
            written.to_string()
        };
        let version = Version::parse(&version).map_err(|_| "constraint Parser Error".to_string())?;
        Ok(Constraint { op: op.to_string(), version, minor_dirty, patch_dirty, dirty })
    }

    fn check(&self, v: &Version) -> bool {
        let c = &self.version;
        if !v.pre.is_empty() && c.pre.is_empty() {
            return false;
        }
        match self.op.as_str() {
            "" | "=" => {
                if self.dirty {
                    self.tilde(v)
                } else {
                    v.compare(c).is_eq()
                }
            }
            "!=" => self.not_equal(v),
            ">" => {
                if !self.dirty {
                    return v.compare(c).is_gt();
                }
                if v.major != c.major {
                    return v.major > c.major;
                }
                if self.minor_dirty {
                    return false;
                }
                if self.patch_dirty {
                    return v.minor > c.minor;
                }
                v.compare(c).is_gt()
            }
            "<" => v.compare(c).is_lt(),
            ">=" | "=>" => v.compare(c).is_ge(),
            "<=" | "=<" => {
                if !self.dirty {
                    return v.compare(c).is_le();
                }
                !(v.major > c.major || v.major == c.major && v.minor > c.minor && !self.minor_dirty)
            }
            "~" | "~>" => self.tilde(v),
            _ => self.caret(v),
        }
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.version;
        if v.compare(c).is_lt() {
            return false;
        }
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        v.major == c.major && (v.minor == c.minor || self.minor_dirty)
    }

    fn caret(&self, v: &Version) -> bool {
        let c = &self.version;
        if v.compare(c).is_lt() {
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
        if v.minor > 0 {
            return false;
        }
        c.patch == v.patch
    }

    fn not_equal(&self, v: &Version) -> bool {
        let c = &self.version;
        if self.dirty {
            if c.major != v.major {
                return true;
            }
            if c.minor != v.minor && !self.minor_dirty {
                return true;
            } else if self.minor_dirty {
                return false;
            } else if c.patch != v.patch && !self.patch_dirty {
                return true;
            } else if self.patch_dirty {
                if !v.pre.is_empty() || !c.pre.is_empty() {
                    return compare_prerelease(&v.pre, &c.pre) != Ordering::Equal;
                }
                return false;
            }
        }
        !v.compare(c).is_eq()
    }
}

/// Whether `version` meets `constraint` (`semver.NewConstraint(c).Check(v)`), as helm checks a
/// chart's `kubeVersion` and its dependencies' versions; `Err` when the constraint does not parse.
pub fn satisfies(constraint: &str, version: &Version) -> Result<bool, String> {
    Ok(Constraints::parse(constraint)?.check(version))
}

/// semver.Constraints: alternatives (`||`) of conjunctions.
#[derive(Debug, PartialEq)]
pub struct Constraints(Vec<Vec<Constraint>>);

impl Constraints {
    pub fn parse(text: &str) -> Result<Constraints, String> {
        match single(text) {
            Some(parts) => Ok(Constraints(vec![vec![Constraint::of(parts)?]])),
            None => Constraints::parse_with_grammar(text),
        }
    }

    /// semver.NewConstraint, with Masterminds' patterns.
    fn parse_with_grammar(text: &str) -> Result<Constraints, String> {
        let g = grammar()?;
        let mut rewritten = text.to_string();
        for caps in g.range.captures_iter(text) {
            let (whole, from, to) = (&caps[0], &caps[1], &caps[11]);
            rewritten = rewritten.replacen(whole, &format!(">= {from}, <= {to} "), 1);
        }
        let mut alternatives = Vec::new();
        for alternative in rewritten.split("||") {
            if !g.valid.is_match(alternative) {
                return Err(format!("improper constraint: {alternative}"));
            }
            let mut parts: Vec<&str> = g.find.find_iter(alternative).map(|m| m.as_str()).collect();
            if parts.is_empty() {
                parts.push(alternative);
            }
            alternatives.push(parts.into_iter().map(Constraint::parse).collect::<Result<Vec<_>, _>>()?);
        }
        Ok(Constraints(alternatives))
    }

    pub fn check(&self, v: &Version) -> bool {
        self.0.iter().any(|all| all.iter().all(|c| c.check(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn satisfies(constraint: &str, version: &str) -> bool {
        let c = Constraints::parse(constraint).expect(constraint);
        c.check(&Version::parse(version).expect(version))
    }

    /// The hand-written reader accepts exactly what Masterminds' pattern matches, with the same parts.
    #[test]
    fn versions_are_read_as_the_pattern_reads_them() {
        const VERSION: &str = r"v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
        let pattern = regex::Regex::new(&format!("^{VERSION}$")).unwrap();
        let alphabet = ["1", "0", "12", "v", ".", "-", "+", "a", "x-y", ".0", "-rc.1", "+b.2", "..", "-.", "V", " "];
        let mut cases = vec![String::new()];
        for _ in 0..4 {
            cases = cases.iter().flat_map(|c| alphabet.iter().map(move |a| format!("{c}{a}"))).collect();
            for case in &cases {
                let expected = pattern.captures(case).map(|c| {
                    let group = |i: usize| c.get(i).map_or("", |m| m.as_str());
                    [group(1), group(2).trim_start_matches('.'), group(3).trim_start_matches('.'), group(5), group(8)]
                });
                assert_eq!(version_parts(case), expected, "{case:?}");
            }
        }
    }

    /// A constraint of one comparison read by hand is read as Masterminds' patterns read it, and
    /// fails as they fail; over every string of up to four pieces.
    #[test]
    fn single_comparisons_are_read_as_the_patterns_read_them() {
        let alphabet = [
            " ", ">", "=", "<", "!", "~", "^", "1", "0", "21", "x", "*", "v", ".", "-", "+", "rc", ",", "|", "\t", "1x",
        ];
        let mut cases = vec![String::new()];
        let mut read_by_hand = 0;
        for _ in 0..4 {
            cases = cases.iter().flat_map(|c| alphabet.iter().map(move |a| format!("{c}{a}"))).collect();
            for case in &cases {
                let Some(parts) = single(case) else { continue };
                read_by_hand += 1;
                let by_hand = Constraint::of(parts).map(|c| Constraints(vec![vec![c]]));
                assert_eq!(by_hand, Constraints::parse_with_grammar(case), "{case:?}");
            }
        }
        // Longer versions, after every operator and spacing.
        let versions = [
            "1.21.0",
            "v1.21.3-gke.100",
            "1.19-0",
            "1.2.3-rc.1+b.2",
            "x.1",
            "1.x.x",
            "1.2.*",
            "01.2",
            "1.2.3-01",
            "1.2.3-a..b",
            "1.2.3+",
            "1.2.3-",
            "18446744073709551616",
            "1.2.3 1.2",
            "1.2,3",
            "1.2.x-0",
            "V1",
            "v",
        ];
        let operators = OPERATORS.iter().chain(&["==", "=!", "><", "~~"]);
        for (op, version) in operators.flat_map(|op| versions.iter().map(move |v| (op, v))) {
            for case in [format!("{op}{version}"), format!(" {op} {version}  "), format!("{op}  {version}")] {
                let Some(parts) = single(&case) else { continue };
                read_by_hand += 1;
                let by_hand = Constraint::of(parts).map(|c| Constraints(vec![vec![c]]));
                assert_eq!(by_hand, Constraints::parse_with_grammar(&case), "{case:?}");
            }
        }
        // Operators, spaces, wildcards, prereleases and metadata were among them.
        for case in [">=21-0", "~ 1.x", "^v1.0.21", "!=1.0+rc", " <= 21.* ", "=>0"] {
            assert!(single(case).is_some(), "{case:?}");
        }
        assert!(read_by_hand > 3_000, "{read_by_hand}");
        for case in ["1.2 - 1.4", ">=1, <2", "<1 || >2", "1x", "1.2.3.4", "1.", ">= =1", "\t1"] {
            assert!(single(case).is_none(), "{case:?}");
        }
    }

    #[test]
    fn masterminds_rules() {
        assert!(satisfies(">=1.21-0", "v1.32.0"));
        assert!(satisfies(">=1.21-0", "1.21.3-gke.100"));
        assert!(!satisfies(">=1.21", "1.21.3-gke.100"));
        assert!(satisfies("^1.2.3", "1.9.0"));
        assert!(!satisfies("^1.2.3", "2.0.0"));
        assert!(satisfies("~1.2.3", "1.2.9"));
        assert!(!satisfies("~1.2.3", "1.3.0"));
        assert!(satisfies("1.2 - 1.4", "1.3.5"));
        assert!(satisfies("<1.0 || >=2.0", "2.1.0"));
        assert!(satisfies("1.2.x", "1.2.7"));
        assert!(satisfies("!=1.2.3", "1.2.4"));
        assert!(satisfies(">1.2", "1.3.0"));
        assert!(!satisfies(">1.2", "1.2.9"));
        assert!(Constraints::parse("abc").is_err());
        assert_eq!(Version::parse("v1.2").map(|v| v.to_string()), Ok("1.2.0".to_string()));
    }
}
