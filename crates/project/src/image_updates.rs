//! `imageUpdates:` of an environment file: the image repositories whose new tags the
//! environment takes (`weaver images check`, `weaver images update`), which releases'
//! containers of each get the tag, and the policy that picks it. The chosen tag is written as
//! `tag@digest` to the environment's promotions file (`crate::promotion`), as a promotion's image
//! pins are: what the first environment runs, and the next ones are promoted, is immutable.
//!
//! Policies, as Flux's ImagePolicy has them (`filterTags` first, then one ordering):
//! `semver: <range>` (Masterminds constraints, as chart versions; pre-releases only with
//! `prereleases: true`), `numerical: asc|desc` and `alphabetical: asc|desc` (the last tag in
//! that order wins: `asc` takes the highest), `newestBuild: true` (the image config's
//! `created` time), `digest: <tag>` (one mutable tag, followed by its digest).

use std::cmp::Ordering;
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::source::inside_repository;
use weaver_core::error::{Error, Location, Result};

/// `imageUpdates:` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ImageUpdateFile {
    image: Spanned<String>,
    releases: Spanned<Vec<String>>,
    policy: Spanned<PolicyFile>,
    filter_tags: Option<Spanned<FilterFile>>,
    platform: Option<Spanned<String>>,
    plain_http: Option<bool>,
    verify: Option<Spanned<VerifyFile>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct VerifyFile {
    public_key_ref: Spanned<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PolicyFile {
    semver: Option<String>,
    prereleases: Option<bool>,
    numerical: Option<String>,
    alphabetical: Option<String>,
    newest_build: Option<bool>,
    digest: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterFile {
    pattern: String,
    extract: Option<String>,
}

/// One subscription, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageUpdate {
    /// The image repository as containers name it (`registry.example/shop/web`, `nginx`).
    pub image: String,
    /// The releases whose containers of `image` get the chosen tag.
    pub releases: Vec<String>,
    pub policy: Policy,
    pub filter: Option<TagFilter>,
    /// `os/architecture[/variant]`: the image of a multi-arch index whose config is read
    /// (`newestBuild`); the pin is the index's digest, whatever the platform.
    pub platform: String,
    /// The registry is served over plain HTTP (a registry on loopback).
    pub plain_http: bool,
    /// `verify.publicKeyRef`: only tags whose digest a key of this file (cosign's PEM public
    /// keys, by path from the repository's root) signed are taken; where it is written.
    pub verify: Option<(String, Location)>,
    pub at: Location,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// The highest version in the range; pre-releases whose release is in it with `prereleases`.
    Semver {
        range: String,
        prereleases: bool,
    },
    /// The last tag by the number `filterTags` extracts (or the tag), `Ascending` taking the highest.
    Numerical(Order),
    Alphabetical(Order),
    /// The tag whose image config was created last.
    NewestBuild,
    /// This one tag, by its digest.
    Digest(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

/// `filterTags`: the tags considered, and what of each is ordered (`extract`, `$name` or
/// `${name}` of the pattern's groups; the whole tag without it).
#[derive(Debug, Clone)]
pub struct TagFilter {
    pub pattern: regex::Regex,
    pub extract: Option<String>,
}

impl PartialEq for TagFilter {
    fn eq(&self, other: &Self) -> bool {
        self.pattern.as_str() == other.pattern.as_str() && self.extract == other.extract
    }
}

impl Policy {
    /// As `-o json` and messages name it: `semver >=1.4.0 <2`, `newestBuild`, `digest latest`.
    pub fn describe(&self) -> String {
        let order = |o: &Order| if *o == Order::Ascending { "asc" } else { "desc" };
        match self {
            Policy::Semver { range, prereleases: false } => format!("semver {range}"),
            Policy::Semver { range, prereleases: true } => format!("semver {range} (pre-releases too)"),
            Policy::Numerical(o) => format!("numerical {}", order(o)),
            Policy::Alphabetical(o) => format!("alphabetical {}", order(o)),
            Policy::NewestBuild => "newestBuild".to_string(),
            Policy::Digest(tag) => format!("digest of {tag}"),
        }
    }
}

impl ImageUpdate {
    pub(crate) fn parse(file: &Path, spanned: Spanned<ImageUpdateFile>) -> Result<ImageUpdate> {
        let at = location(file, &spanned.referenced);
        let fields = spanned.value;
        let image = fields.image.value.trim().to_string();
        if image.is_empty()
            || image.contains(['@', ' '])
            || image.rsplit('/').next().is_some_and(|last| last.contains(':'))
        {
            return Err(Error::at(
                location(file, &fields.image.referenced),
                format!("`image: {}` is not an image repository", fields.image.value),
            )
            .with_help("name the repository without a tag or digest: image: registry.example/shop/web"));
        }
        if fields.releases.value.is_empty() {
            return Err(Error::at(
                location(file, &fields.releases.referenced),
                "`releases` is empty: say whose containers of the image get the new tag",
            ));
        }
        let policy_at = location(file, &fields.policy.referenced);
        let policy = policy(&policy_at, fields.policy.value)?;
        let filter = match fields.filter_tags {
            None => None,
            Some(spanned) => {
                let filter_at = location(file, &spanned.referenced);
                let pattern = regex::Regex::new(&spanned.value.pattern).map_err(|e| {
                    Error::at(filter_at.clone(), format!("`filterTags.pattern` is not a regular expression: {e}"))
                })?;
                if let Some(extract) = &spanned.value.extract {
                    let named: Vec<&str> = pattern.capture_names().flatten().collect();
                    for group in referenced_groups(extract) {
                        let known = group.parse::<usize>().is_ok_and(|n| n < pattern.captures_len())
                            || named.contains(&group.as_str());
                        if !known {
                            return Err(Error::at(
                                filter_at,
                                format!("`filterTags.extract` names group `{group}`, which the pattern lacks"),
                            )
                            .with_help(
                                "name a group of the pattern: pattern: '^main-(?P<ts>[0-9]+)', extract: '$ts'",
                            ));
                        }
                    }
                }
                Some(TagFilter { pattern, extract: spanned.value.extract })
            }
        };
        if matches!(policy, Policy::Digest(_)) && filter.is_some() {
            return Err(Error::at(policy_at, "a `digest` policy follows one tag: `filterTags` has nothing to filter"));
        }
        let platform = match fields.platform {
            None => "linux/amd64".to_string(),
            Some(spanned) => {
                let parts: Vec<&str> = spanned.value.split('/').collect();
                if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
                    return Err(Error::at(
                        location(file, &spanned.referenced),
                        format!("`platform: {}` is not `os/architecture[/variant]`", spanned.value),
                    )
                    .with_help("as docker names them: linux/amd64, linux/arm64/v8"));
                }
                spanned.value
            }
        };
        let verify = match fields.verify {
            None => None,
            Some(spanned) => {
                let key = spanned.value.public_key_ref;
                let key_at = location(file, &key.referenced);
                let Some(path) = inside_repository(&key.value) else {
                    return Err(Error::at(
                        key_at,
                        format!("`verify.publicKeyRef: {}` is not a path inside the repository", key.value),
                    )
                    .with_help("name cosign's public key by its path from the repository's root: publicKeyRef: keys/cosign.pub"));
                };
                Some((path, key_at))
            }
        };
        Ok(ImageUpdate {
            image,
            releases: fields.releases.value,
            policy,
            filter,
            platform,
            plain_http: fields.plain_http.unwrap_or(false),
            verify,
            at,
        })
    }

    /// The tag the policy takes of `tags` (newest first by its ordering), with why each other
    /// was not taken. `created` gives a tag's image creation time, asked only by `newestBuild`
    /// and only of the tags the filter lets through. `accept` is asked of the allowed tags,
    /// newest first, until one passes (None) or says why not (its reason): the signature check
    /// of `verify`; the tags after the one taken are older.
    pub fn choose(
        &self,
        tags: &[String],
        created: &mut dyn FnMut(&str) -> Result<Option<jiff::Timestamp>>,
        accept: &mut dyn FnMut(&str) -> Result<Option<&'static str>>,
    ) -> Result<Choice> {
        let mut choice = Choice::default();
        if let Policy::Digest(tag) = &self.policy {
            match tags.iter().any(|t| t == tag) {
                true => match accept(tag)? {
                    None => choice.tag = Some(tag.clone()),
                    Some(reason) => choice.pass_over(reason, tag),
                },
                false => choice.skip("the followed tag is not in the repository", tag),
            }
            choice.considered = tags.len();
            return Ok(choice);
        }
        // Each allowed tag with what it is ordered by.
        let mut allowed: Vec<(Key, &str)> = Vec::new();
        for tag in tags {
            choice.considered += 1;
            match self.key(tag, created)? {
                Ok(key) => allowed.push((key, tag)),
                Err(reason) => choice.skip(reason, tag),
            }
        }
        // Newest first; of equals, the first listed (a stable sort).
        allowed.sort_by(|(a, _), (b, _)| b.cmp(a));
        for (_, tag) in allowed {
            match accept(tag)? {
                None => {
                    choice.tag = Some(tag.to_string());
                    break;
                }
                Some(reason) => choice.pass_over(reason, tag),
            }
        }
        let not_taken = |list: &[Skipped]| list.iter().map(|s| s.count).sum::<usize>();
        choice.older = choice.considered
            - not_taken(&choice.skipped)
            - not_taken(&choice.passed_over)
            - usize::from(choice.tag.is_some());
        Ok(choice)
    }
}

impl ImageUpdate {
    /// What `tag` is ordered by under the policy, or why the policy does not allow it.
    fn key(
        &self,
        tag: &str,
        created: &mut dyn FnMut(&str) -> Result<Option<jiff::Timestamp>>,
    ) -> Result<std::result::Result<Key, &'static str>> {
        if weaver_verify::cosign::is_cosign_tag(tag) {
            return Ok(Err("cosign's signature, attestation or SBOM of an image (sha256-DIGEST.sig, .att, .sbom)"));
        }
        let ordered = match &self.filter {
            None => tag.to_string(),
            Some(filter) => match filter.pattern.captures(tag) {
                None => return Ok(Err("not matched by filterTags")),
                Some(captures) => match &filter.extract {
                    None => tag.to_string(),
                    Some(template) => {
                        let mut extracted = String::new();
                        captures.expand(template, &mut extracted);
                        extracted
                    }
                },
            },
        };
        Ok(Ok(match &self.policy {
            Policy::Semver { range, prereleases } => {
                let Ok(version) = weaver_semver::Version::parse(&ordered) else {
                    return Ok(Err("not a semantic version"));
                };
                let pre = !version.prerelease().is_empty();
                if pre && !prereleases {
                    return Ok(Err("a pre-release (prereleases: true takes them)"));
                }
                // A pre-release is judged by its release: 1.5.0-rc.1 is in `>=1.4 <2`.
                let judged = match pre {
                    true => weaver_semver::Version::parse(&format!(
                        "{}.{}.{}",
                        version.major(),
                        version.minor(),
                        version.patch()
                    ))
                    .map_err(Error::new)?,
                    false => version.clone(),
                };
                if !weaver_semver::satisfies(range, &judged).map_err(Error::new)? {
                    return Ok(Err("outside the range"));
                }
                Key::Version(version)
            }
            Policy::Numerical(order) => match ordered.parse::<f64>() {
                Ok(number) if number.is_finite() => Key::Number(*order, number),
                _ => return Ok(Err("not a number")),
            },
            Policy::Alphabetical(order) => Key::Text(*order, ordered),
            Policy::NewestBuild => match created(tag)? {
                Some(at) => Key::Time(at),
                None => return Ok(Err("no creation time in its image config")),
            },
            // One tag is followed: no tag is newer than another.
            Policy::Digest(_) => Key::Text(Order::Ascending, String::new()),
        }))
    }

    /// Whether the policy ranks `tag` above `other`: both allowed, `tag` newer. A tag the
    /// policy does not allow ranks above none.
    pub fn ranks_above(
        &self,
        tag: &str,
        other: &str,
        created: &mut dyn FnMut(&str) -> Result<Option<jiff::Timestamp>>,
    ) -> Result<bool> {
        Ok(match (self.key(tag, created)?, self.key(other, created)?) {
            (Ok(key), Ok(other)) => key.cmp(&other) == Ordering::Greater,
            _ => false,
        })
    }
}

/// What a policy took of a repository's tags, and why it took no other.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Choice {
    pub tag: Option<String>,
    pub considered: usize,
    /// Allowed, but not the newest by the policy's ordering.
    pub older: usize,
    /// Not allowed: each reason with how many tags and the first few of them.
    pub skipped: Vec<Skipped>,
    /// Allowed and newer than the tag taken, but refused by `accept` (a signature): each reason
    /// with how many tags and the first few of them.
    pub passed_over: Vec<Skipped>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub reason: &'static str,
    pub count: usize,
    pub examples: Vec<String>,
}

/// How many tags each skip reason names.
const EXAMPLES: usize = 3;

impl Choice {
    fn skip(&mut self, reason: &'static str, tag: &str) {
        count(&mut self.skipped, reason, tag);
    }

    fn pass_over(&mut self, reason: &'static str, tag: &str) {
        count(&mut self.passed_over, reason, tag);
    }
}

/// Counts `tag` under `reason` in `list`, keeping the first few tags of each.
fn count(list: &mut Vec<Skipped>, reason: &'static str, tag: &str) {
    let entry = match list.iter_mut().position(|s| s.reason == reason) {
        Some(at) => &mut list[at],
        None => {
            list.push(Skipped { reason, count: 0, examples: Vec::new() });
            list.last_mut().expect("just pushed")
        }
    };
    entry.count += 1;
    if entry.examples.len() < EXAMPLES {
        entry.examples.push(tag.to_string());
    }
}

/// What a candidate is ordered by; greater is newer.
enum Key {
    Version(weaver_semver::Version),
    Number(Order, f64),
    Text(Order, String),
    Time(jiff::Timestamp),
}

impl Key {
    fn cmp(&self, other: &Key) -> Ordering {
        let directed = |order: &Order, ordering: Ordering| match order {
            Order::Ascending => ordering,
            Order::Descending => ordering.reverse(),
        };
        match (self, other) {
            (Key::Version(a), Key::Version(b)) => a.compare(b),
            (Key::Number(o, a), Key::Number(_, b)) => directed(o, a.total_cmp(b)),
            (Key::Text(o, a), Key::Text(_, b)) => directed(o, a.cmp(b)),
            (Key::Time(a), Key::Time(b)) => a.cmp(b),
            _ => Ordering::Equal,
        }
    }
}

fn policy(at: &Location, file: PolicyFile) -> Result<Policy> {
    let order = |text: &str, name: &str| match text {
        "asc" => Ok(Order::Ascending),
        "desc" => Ok(Order::Descending),
        other => Err(Error::at(at.clone(), format!("`{name}: {other}`: expected `asc` or `desc`"))
            .with_help("asc takes the highest (last in ascending order), desc the lowest")),
    };
    let given = [
        file.semver.is_some(),
        file.numerical.is_some(),
        file.alphabetical.is_some(),
        file.newest_build.is_some(),
        file.digest.is_some(),
    ];
    let one_of = || {
        Error::at(
            at.clone(),
            "`policy` needs exactly one of `semver`, `numerical`, `alphabetical`, `newestBuild` or `digest`",
        )
        .with_help("policy: { semver: '>=1.4.0 <2' }, { numerical: asc }, { newestBuild: true } or { digest: latest }")
    };
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(one_of());
    }
    if file.prereleases.is_some() && file.semver.is_none() {
        return Err(Error::at(at.clone(), "`prereleases` is for a `semver` policy"));
    }
    if let Some(range) = file.semver {
        // A range that does not parse is refused here, not at the first check.
        let probe = weaver_semver::Version::parse("0.0.0").map_err(Error::new)?;
        weaver_semver::satisfies(&range, &probe).map_err(|why| {
            Error::at(at.clone(), format!("`semver: {range}` is not a version range: {why}"))
                .with_help("Masterminds ranges, as chart versions: '>=1.4.0 <2', '~1.4', '^2'")
        })?;
        return Ok(Policy::Semver { range, prereleases: file.prereleases.unwrap_or(false) });
    }
    if let Some(text) = file.numerical {
        return Ok(Policy::Numerical(order(&text, "numerical")?));
    }
    if let Some(text) = file.alphabetical {
        return Ok(Policy::Alphabetical(order(&text, "alphabetical")?));
    }
    match (file.newest_build, file.digest) {
        (Some(true), None) => Ok(Policy::NewestBuild),
        (None, Some(tag)) if is_tag(&tag) => Ok(Policy::Digest(tag)),
        (None, Some(tag)) => Err(Error::at(at.clone(), format!("`digest: {tag}` is not a tag"))
            .with_help("name the mutable tag to follow by digest: digest: latest")),
        _ => Err(one_of()),
    }
}

/// A tag as the distribution spec allows it: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn is_tag(text: &str) -> bool {
    let mut bytes = text.bytes();
    text.len() <= 128
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The groups `$name`, `${name}`, `$1` of an `extract` template.
fn referenced_groups(template: &str) -> Vec<String> {
    let mut groups = Vec::new();
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            rest = after;
            continue;
        }
        let (name, after) = match rest.strip_prefix('{') {
            Some(inner) => match inner.split_once('}') {
                Some((name, after)) => (name, after),
                None => break,
            },
            None => {
                let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
                rest.split_at(end)
            }
        };
        if !name.is_empty() {
            groups.push(name.to_string());
        }
        rest = after;
    }
    groups
}

fn location(path: &Path, span: &serde_saphyr::Location) -> Location {
    Location::at(path, span.line(), span.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(yaml: &str) -> Result<ImageUpdate> {
        let path = Path::new("environments/dev.yaml");
        let file: Spanned<ImageUpdateFile> = weaver_yaml::from_str(path, yaml)?;
        ImageUpdate::parse(path, file)
    }

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| t.to_string()).collect()
    }

    fn no_times(_: &str) -> Result<Option<jiff::Timestamp>> {
        panic!("only newestBuild asks for creation times")
    }

    fn any(_: &str) -> Result<Option<&'static str>> {
        Ok(None)
    }

    #[test]
    fn with_verify_the_newest_tag_that_passes_is_taken_and_the_newer_ones_say_why_not() {
        let all = tags(&["1.4.0", "1.5.0", "1.6.0", "1.7.0", &format!("sha256-{}.sig", "a".repeat(64))]);
        let signed = update("{image: reg/web, releases: [web], policy: {semver: '>=1'}, verify: {publicKeyRef: ./keys/../keys/cosign.pub}}").unwrap();
        assert_eq!(signed.verify.as_ref().map(|(path, _)| path.as_str()), Some("keys/cosign.pub"));
        let mut asked = Vec::new();
        let choice = signed
            .choose(&all, &mut no_times, &mut |tag| {
                asked.push(tag.to_string());
                Ok(match tag {
                    "1.7.0" => Some("not signed"),
                    "1.6.0" => Some("signed by another key"),
                    _ => None,
                })
            })
            .unwrap();
        assert_eq!(choice.tag.as_deref(), Some("1.5.0"));
        assert_eq!(asked, ["1.7.0", "1.6.0", "1.5.0"], "newest first, up to the one taken");
        let reasons: Vec<(&str, usize)> = choice.skipped.iter().map(|s| (s.reason, s.count)).collect();
        assert_eq!(
            reasons,
            [("cosign's signature, attestation or SBOM of an image (sha256-DIGEST.sig, .att, .sbom)", 1)]
        );
        let passed: Vec<(&str, usize)> = choice.passed_over.iter().map(|s| (s.reason, s.count)).collect();
        assert_eq!(passed, [("not signed", 1), ("signed by another key", 1)]);
        assert_eq!((choice.considered, choice.older), (5, 1));
        // None passes: nothing is taken, every allowed tag says why.
        let none = signed.choose(&all, &mut no_times, &mut |_| Ok(Some("not signed"))).unwrap();
        assert_eq!((none.tag, none.older, none.passed_over[0].count), (None, 0, 4));
        // A followed tag is checked too.
        let followed =
            update("{image: reg/web, releases: [web], policy: {digest: latest}, verify: {publicKeyRef: k.pub}}")
                .unwrap();
        let refused = followed.choose(&tags(&["latest"]), &mut no_times, &mut |_| Ok(Some("not signed"))).unwrap();
        assert_eq!((refused.tag, refused.passed_over[0].reason), (None, "not signed"));
    }

    #[test]
    fn semver_takes_the_highest_release_in_range_and_pre_releases_only_when_asked() {
        let all = tags(&["1.4.2", "1.5.0", "1.6.0-rc.1", "2.0.0", "latest", "v1.5.1"]);
        let plain = update("{image: reg/web, releases: [web], policy: {semver: '>=1.4.0 <2'}}").unwrap();
        let choice = plain.choose(&all, &mut no_times, &mut any).unwrap();
        assert_eq!(choice.tag.as_deref(), Some("v1.5.1"));
        assert_eq!((choice.considered, choice.older), (6, 2));
        let reasons: Vec<(&str, usize)> = choice.skipped.iter().map(|s| (s.reason, s.count)).collect();
        assert_eq!(
            reasons,
            [
                ("a pre-release (prereleases: true takes them)", 1),
                ("outside the range", 1),
                ("not a semantic version", 1)
            ]
        );
        let pre =
            update("{image: reg/web, releases: [web], policy: {semver: '>=1.4.0 <2', prereleases: true}}").unwrap();
        assert_eq!(pre.choose(&all, &mut no_times, &mut any).unwrap().tag.as_deref(), Some("1.6.0-rc.1"));
    }

    #[test]
    fn filter_extracts_what_numerical_and_alphabetical_order() {
        let all = tags(&["main-100-abc", "main-99-def", "main-1000-aaa", "pr-5000-x"]);
        let numerical = update(
            r"{image: reg/web, releases: [web], filterTags: {pattern: '^main-(?P<ts>[0-9]+)-', extract: '$ts'}, policy: {numerical: asc}}",
        )
        .unwrap();
        let choice = numerical.choose(&all, &mut no_times, &mut any).unwrap();
        assert_eq!(choice.tag.as_deref(), Some("main-1000-aaa"));
        assert_eq!(choice.skipped[0].examples, ["pr-5000-x"]);
        let lowest = update(
            r"{image: reg/web, releases: [web], filterTags: {pattern: '^main-(?P<ts>[0-9]+)-', extract: '${ts}'}, policy: {numerical: desc}}",
        )
        .unwrap();
        assert_eq!(lowest.choose(&all, &mut no_times, &mut any).unwrap().tag.as_deref(), Some("main-99-def"));
        // Alphabetically, 99 comes after 1000.
        let text =
            update(r"{image: reg/web, releases: [web], filterTags: {pattern: '^main-'}, policy: {alphabetical: asc}}")
                .unwrap();
        assert_eq!(text.choose(&all, &mut no_times, &mut any).unwrap().tag.as_deref(), Some("main-99-def"));
    }

    #[test]
    fn newest_build_asks_creation_times_of_filtered_tags_only() {
        let all = tags(&["a", "b", "c", "skip"]);
        let policy =
            update("{image: reg/web, releases: [web], filterTags: {pattern: '^[a-c]$'}, policy: {newestBuild: true}}")
                .unwrap();
        let mut asked = Vec::new();
        let choice = policy
            .choose(
                &all,
                &mut |tag| {
                    asked.push(tag.to_string());
                    Ok(match tag {
                        "a" => Some("2026-11-01T00:00:00Z".parse().unwrap()),
                        "b" => Some("2026-11-20T00:00:00Z".parse().unwrap()),
                        _ => None,
                    })
                },
                &mut any,
            )
            .unwrap();
        assert_eq!(choice.tag.as_deref(), Some("b"));
        assert_eq!(asked, ["a", "b", "c"]);
        assert_eq!(choice.skipped[0].reason, "no creation time in its image config");
    }

    #[test]
    fn digest_follows_one_tag() {
        let policy = update("{image: reg/web, releases: [web], policy: {digest: latest}}").unwrap();
        assert_eq!(
            policy.choose(&tags(&["1.0", "latest"]), &mut no_times, &mut any).unwrap().tag.as_deref(),
            Some("latest")
        );
        let gone = policy.choose(&tags(&["1.0"]), &mut no_times, &mut any).unwrap();
        assert_eq!((gone.tag, gone.skipped[0].reason), (None, "the followed tag is not in the repository"));
    }

    #[test]
    fn what_cannot_be_used_is_named_with_its_place() {
        let message = |yaml: &str| update(yaml).unwrap_err().to_string();
        let text = message("{image: reg/web:1.0, releases: [web], policy: {semver: '1'}}");
        assert!(text.contains("environments/dev.yaml:1:") && text.contains("not an image repository"), "{text}");
        let text = message("{image: reg/web, releases: [web], policy: {semver: '>=1', numerical: asc}}");
        assert!(text.contains("exactly one of"), "{text}");
        let text = message("{image: reg/web, releases: [web], policy: {semver: 'not a range'}}");
        assert!(text.contains("is not a version range"), "{text}");
        let text = message("{image: reg/web, releases: [web], policy: {numerical: up}}");
        assert!(text.contains("expected `asc` or `desc`"), "{text}");
        let text = message("{image: reg/web, releases: [], policy: {newestBuild: true}}");
        assert!(text.contains("`releases` is empty"), "{text}");
        let text = message("{image: reg/web, releases: [web], filterTags: {pattern: '('}, policy: {numerical: asc}}");
        assert!(text.contains("not a regular expression"), "{text}");
        let text = message(
            "{image: reg/web, releases: [web], filterTags: {pattern: '^(?P<ts>[0-9]+)', extract: '$build'}, policy: {numerical: asc}}",
        );
        assert!(text.contains("names group `build`"), "{text}");
        let text = message("{image: reg/web, releases: [web], platform: linux, policy: {newestBuild: true}}");
        assert!(text.contains("not `os/architecture[/variant]`"), "{text}");
        for outside in ["/etc/cosign.pub", "../cosign.pub", "."] {
            let text = message(&format!(
                "{{image: reg/web, releases: [web], policy: {{digest: x}}, verify: {{publicKeyRef: '{outside}'}}}}"
            ));
            assert!(
                text.contains("environments/dev.yaml:1:") && text.contains("is not a path inside the repository"),
                "{text}"
            );
        }
        let text = message("{image: reg/web, releases: [web], policy: {digest: x}, verify: {key: k.pub}}");
        assert!(text.contains("unknown field `key`"), "{text}");
        let text = message("{image: reg/web, releases: [web], policy: {digest: 'a b'}}");
        assert!(text.contains("is not a tag"), "{text}");
    }
}
