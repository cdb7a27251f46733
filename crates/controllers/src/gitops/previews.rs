//! Preview environments (`spec.previews`), decided from the spec, the remote's branches (or the
//! forge's pull requests) and the time alone: which get a preview, under which name, namespace
//! and environment name, with or without the sync's identities, which wait over the maximum,
//! which were asked to be deleted, and their URLs. No request is made here;
//! `reconcile::previews` carries out.

use std::collections::BTreeMap;
use std::time::Duration;

use globset::{GlobBuilder, GlobMatcher};
use k8s_openapi::api::networking::v1::Ingress;
use sha2::{Digest, Sha256};

use super::api::{Forge, PREVIEW_DELETE_PREFIX, PreviewDecryption, Previews as PreviewsSpec};

/// At most this many previews without `spec.previews.max`.
pub const DEFAULT_MAX: usize = 10;
/// A preview's name is cut to this many characters before its suffix.
const NAME_MAX: usize = 40;
/// What stands for the preview's name in `spec.previews.namespace`.
const NAME_PLACEHOLDER: &str = "{name}";
/// Between the base environment's name and the preview's, in the preview's environment name:
/// a preview's records, labels and lock are its own, never its base environment's.
const ENVIRONMENT_SEPARATOR: &str = "--";
/// The longest label value, which the environment name is written as.
const LABEL_VALUE_MAX: usize = 63;
/// Before a pull request's number in its preview's name: `pr-7`.
const PULL_REQUEST_PREFIX: &str = "pr-";

/// `spec.previews`, checked, with its defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Which branches (of pull requests: head branches) get a preview; all, when absent.
    branches: Option<GlobMatcher>,
    /// The labels a pull request carries to get a preview (`pullRequests`), in place of branches.
    pub labels: Option<Vec<String>>,
    /// `spec.previews.forge`, its repository and URL checked.
    pub forge: Option<Forge>,
    pub decryption: PreviewDecryption,
    /// What every matching branch's name starts with: cut off to make the preview's name.
    prefix: String,
    /// The base environment.
    pub environment: String,
    /// The namespace pattern, `{name}` in it.
    namespace: String,
    /// The URL pattern, `{name}` in it.
    url: Option<String>,
    pub max: usize,
    pub expire_after: Option<Duration>,
}

impl PartialEq for Settings {
    fn eq(&self, other: &Settings) -> bool {
        let key = |s: &Settings| {
            let requests = (s.labels.clone(), s.forge.clone(), s.decryption);
            (s.environment.clone(), s.namespace.clone(), s.url.clone(), s.max, s.expire_after, requests)
        };
        let glob = |s: &Settings| s.branches.as_ref().map(|b| b.glob().clone());
        glob(self) == glob(other) && key(self) == key(other)
    }
}

/// `spec.previews` checked, in the EnvironmentSync's namespace `namespace`: what is wrong with it
/// as a message naming the field.
pub fn settings(spec: &PreviewsSpec, namespace: &str) -> Result<Settings, String> {
    let labels = spec.pull_requests.as_ref().map(|requests| requests.labels.clone());
    match (&spec.branches, &labels, &spec.forge) {
        (None, None, _) => {
            return Err("spec.previews needs `branches` (a glob over the repository's branches) or \
                        `pullRequests` (the labels of the forge's pull requests that get a preview)"
                .into());
        }
        (_, Some(_), None) => {
            return Err("spec.previews.pullRequests needs spec.previews.forge: the forge whose pull requests are \
                        listed, and a token for its API"
                .into());
        }
        _ => {}
    }
    if let Some(forge) = &spec.forge {
        crate::gitops::forge::check(forge)?;
    }
    let pattern = spec.branches.as_deref().unwrap_or_default();
    let branches = match &spec.branches {
        Some(glob) => Some(
            GlobBuilder::new(glob)
                .literal_separator(true)
                .build()
                .map_err(|err| format!("spec.previews.branches `{glob}` is not a glob: {}", err.kind()))?
                .compile_matcher(),
        ),
        None => None,
    };
    let prefix: String = pattern.chars().take_while(|c| !matches!(c, '*' | '?' | '[' | '{' | '\\')).collect();
    let namespace = match &spec.namespace {
        Some(pattern) => named_pattern("namespace", pattern, "shop-")?,
        None => format!("{namespace}-{NAME_PLACEHOLDER}"),
    };
    let url = match &spec.url {
        Some(pattern) if !pattern.starts_with("https://") && !pattern.starts_with("http://") => {
            return Err(format!("spec.previews.url `{pattern}` is no http:// or https:// URL"));
        }
        Some(pattern) if pattern.contains(|c: char| c.is_whitespace() || c.is_control() || "\"<>".contains(c)) => {
            return Err(format!("spec.previews.url `{pattern}` has a space, a quote or an angle bracket: write a URL"));
        }
        Some(pattern) => Some(named_pattern("url", pattern, "https://")?),
        None => None,
    };
    let expire_after = match &spec.expire_after {
        Some(text) => Some(
            // Days are its scale, as a soak time's (`72h`), within the same bound.
            weaver_project::parse_duration_up_to(text, weaver_project::MAX_SOAK_TIME)
                .map_err(|why| format!("spec.previews.expireAfter: {why}"))?,
        ),
        None => None,
    };
    let max = spec.max.map_or(DEFAULT_MAX, |max| max as usize);
    Ok(Settings {
        branches,
        labels,
        forge: spec.forge.clone(),
        decryption: spec.decryption.unwrap_or_default(),
        prefix,
        environment: spec.environment.clone(),
        namespace,
        url,
        max,
        expire_after,
    })
}

/// `spec.previews.<field>`'s `pattern`, which must say where the preview's name goes: else every
/// preview would share one. `example` begins the example the message gives.
fn named_pattern(field: &str, pattern: &str, example: &str) -> Result<String, String> {
    match pattern.contains(NAME_PLACEHOLDER) {
        true => Ok(pattern.to_string()),
        false => Err(format!(
            "spec.previews.{field} `{pattern}` has no `{NAME_PLACEHOLDER}`: every preview would share one {field}; \
             write where the preview's name goes, such as `{example}{NAME_PLACEHOLDER}`"
        )),
    }
}

/// A branch of the remote: its name (without `refs/heads/`), head commit and the commit's time;
/// or a pull request's head: its branch, the request's number, and whether it is a fork's.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    pub name: String,
    pub commit: String,
    pub time: jiff::Timestamp,
    pub pull_request: Option<u64>,
    /// A pull request whose head is in another repository than the sync's.
    pub fork: bool,
}

/// What a preview is made for: a branch, or a pull request (whose head branch two requests,
/// from two forks' `main`, may share). The previews made before are found by it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Branch(String),
    PullRequest(u64),
}

impl Source {
    pub fn of(branch: &str, pull_request: Option<u64>) -> Source {
        match pull_request {
            Some(number) => Source::PullRequest(number),
            None => Source::Branch(branch.to_string()),
        }
    }
}

/// A preview to have: its name, branch, namespace and environment name; `waiting` when over the
/// maximum, with the message the status gives.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    pub name: String,
    pub branch: String,
    pub pull_request: Option<u64>,
    pub commit: String,
    pub namespace: String,
    /// The environment name it is applied under: `<base>--<name>`.
    pub environment: String,
    /// Its namespace's label [`owner_label`]: only a namespace carrying it is the preview's.
    pub label: String,
    /// `spec.previews.url` with its name; None: the first Ingress it applied says it.
    pub url: Option<String>,
    pub waiting: Option<String>,
    /// Its deletion was asked for at its branch's commit: it is pruned, and counts for no
    /// place under the maximum.
    pub deleted: bool,
    /// Whether it is given the sync's decryption identities (`spec.previews.decryption`).
    pub decrypts: bool,
}

impl Settings {
    /// The branches of `names` (the remote's, without `refs/heads/`; the pull requests' head
    /// branches) that get a preview.
    pub fn matching<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        names.into_iter().filter(|name| self.branches.as_ref().is_none_or(|glob| glob.is_match(name))).collect()
    }

    /// Whether a preview of `branch` is given the sync's decryption identities.
    pub fn decrypts(&self, branch: &Branch) -> bool {
        match self.decryption {
            PreviewDecryption::None => false,
            PreviewDecryption::Branches => !branch.fork,
            PreviewDecryption::All => true,
        }
    }

    /// The previews of `branches` (those [`Settings::matching`] chose) at `now`: a branch whose
    /// last commit is older than `expireAfter` has none; one whose deletion `deletions` asks for
    /// at its branch's commit ([`deletions`]) is `deleted`; over `max`, the branches with the
    /// newest commits wait, except those in `made` (the previews applied before: their source to
    /// their name), which keep their place so that a push never takes a running preview away, and
    /// their name while no other branch takes it (a branch whose name another's once forced to
    /// carry a hash keeps it when that one goes, rather than be pruned and made again). Sorted by
    /// name. `sync` is the EnvironmentSync's (namespace, name).
    pub fn previews(
        &self,
        branches: &[Branch],
        (made, deletions): (&BTreeMap<Source, String>, &BTreeMap<String, String>),
        now: jiff::Timestamp,
        sync: (&str, &str),
    ) -> Vec<Preview> {
        let live: Vec<&Branch> = branches.iter().filter(|branch| !self.expired(branch, now)).collect();
        let mut names =
            preview_names(&self.prefix, live.iter().filter(|b| b.pull_request.is_none()).map(|b| b.name.as_str()));
        let taken: BTreeMap<String, usize> = names.values().fold(BTreeMap::new(), |mut taken, name| {
            *taken.entry(name.clone()).or_default() += 1;
            taken
        });
        for (branch, name) in names.iter_mut() {
            let source = Source::Branch(branch.to_string());
            let Some(before) = made.get(&source).filter(|before| *before != name) else { continue };
            let others_before = made.iter().any(|(other, same)| *other != source && same == before);
            if !taken.contains_key(before) && !others_before {
                *name = before.clone();
            }
        }
        let mut previews: Vec<(Preview, bool, jiff::Timestamp)> = live
            .iter()
            .map(|branch| {
                let name = match branch.pull_request {
                    Some(number) => format!("{PULL_REQUEST_PREFIX}{number}"),
                    None => names[branch.name.as_str()].clone(),
                };
                let preview = Preview {
                    namespace: self.namespace.replace(NAME_PLACEHOLDER, &name),
                    environment: self.environment_of(&name),
                    label: owner_label(sync.0, sync.1, &name),
                    url: self.url.as_ref().map(|pattern| pattern.replace(NAME_PLACEHOLDER, &name)),
                    branch: branch.name.clone(),
                    pull_request: branch.pull_request,
                    commit: branch.commit.clone(),
                    waiting: None,
                    deleted: deletions.get(&name) == Some(&branch.commit),
                    decrypts: self.decrypts(branch),
                    name,
                };
                let kept = made.get(&Source::of(&preview.branch, preview.pull_request)) == Some(&preview.name);
                (preview, kept, branch.time)
            })
            .collect();
        // Made ones first, then the oldest commits; of equal times, by name.
        previews.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)).then_with(|| a.0.name.cmp(&b.0.name)));
        let total = previews.iter().filter(|(preview, _, _)| !preview.deleted).count();
        for (preview, _, _) in previews.iter_mut().filter(|(preview, _, _)| !preview.deleted).skip(self.max) {
            preview.waiting = Some(format!(
                "waiting: {total} branches match spec.previews.branches and spec.previews.max is {}; the branches \
                 with the newest commits wait until a preview is pruned",
                self.max
            ));
        }
        let mut previews: Vec<Preview> = previews.into_iter().map(|(preview, _, _)| preview).collect();
        previews.sort_by(|a, b| a.name.cmp(&b.name));
        previews
    }

    /// The environment name preview `name` is applied under: `<base>--<name>`, which records,
    /// labels and the lock carry.
    pub fn environment_of(&self, name: &str) -> String {
        format!("{}{ENVIRONMENT_SEPARATOR}{name}", self.environment)
    }

    fn expired(&self, branch: &Branch, now: jiff::Timestamp) -> bool {
        let Some(after) = self.expire_after else { return false };
        let after = jiff::SignedDuration::try_from(after).unwrap_or(jiff::SignedDuration::MAX);
        now.duration_since(branch.time) > after
    }
}

/// The deletions `annotations` (the EnvironmentSync's) ask for: each preview's name, and the
/// commit it is to stay deleted at.
pub fn deletions(annotations: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let asked = annotations.iter().filter_map(|(key, commit)| Some((key.strip_prefix(PREVIEW_DELETE_PREFIX)?, commit)));
    asked.map(|(name, commit)| (name.to_string(), commit.clone())).collect()
}

/// The URL of `ingress`: its first rule's host and path, `https://` when a `tls` entry lists
/// the host; None without a host (an Ingress of the default backend alone).
pub fn ingress_url(ingress: &Ingress) -> Option<String> {
    let spec = ingress.spec.as_ref()?;
    let rule = spec
        .rules
        .iter()
        .flatten()
        .find(|rule| rule.host.as_deref().is_some_and(|h| !h.is_empty() && !h.starts_with('*')))?;
    let host = rule.host.as_deref()?;
    let tls = spec.tls.iter().flatten().any(|tls| tls.hosts.iter().flatten().any(|h| h == host));
    let path = rule.http.as_ref().and_then(|http| http.paths.first()).and_then(|p| p.path.as_deref());
    let path = path.filter(|p| p.starts_with('/')).unwrap_or("/");
    Some(format!("{}://{host}{path}", if tls { "https" } else { "http" }))
}

/// The label value a preview's namespace carries: `<sync namespace>.<sync name>.<preview name>`.
pub fn owner_label(namespace: &str, sync: &str, name: &str) -> String {
    format!("{namespace}.{sync}.{name}")
}

/// What makes `preview` impossible to apply, its names coming from its branch and the spec: a
/// namespace that is no DNS label, an environment name longer than a label value (as
/// `weaver.example.com/environment` carries it).
pub fn problem(preview: &Preview) -> Option<String> {
    if preview.namespace.len() > 63 || !weaver_core::manifest::is_dns1123_label(&preview.namespace) {
        return Some(format!(
            "its namespace `{}` (spec.previews.namespace) is not a namespace name: {}",
            preview.namespace,
            weaver_core::manifest::DNS1123_LABEL
        ));
    }
    if preview.label.len() > LABEL_VALUE_MAX {
        return Some(format!(
            "its namespace's label `{}` (the EnvironmentSync's namespace and name, and the preview's) is longer than \
             a label value ({LABEL_VALUE_MAX} characters): use shorter branch names",
            preview.label
        ));
    }
    (preview.environment.len() > LABEL_VALUE_MAX).then(|| {
        format!(
            "its environment name `{}` is longer than a label value ({LABEL_VALUE_MAX} characters): use a base \
             environment with a shorter name, or shorter branch names",
            preview.environment
        )
    })
}

/// Each branch's preview name: the branch's name after `prefix`, lowercased, every character
/// outside `[a-z0-9-]` made `-`, trimmed of `-`, at most 40 characters; when that changed
/// anything, or two branches would share a name, `-` and the first 6 hex digits of the SHA-256
/// of the branch's name follow (alone when nothing is left of the name). A hashed name another
/// branch's name gives as well (a branch named after it on purpose) gets more of its hash until
/// no two are alike: a branch never takes another's preview.
pub fn preview_names<'a>(prefix: &str, branches: impl IntoIterator<Item = &'a str>) -> BTreeMap<&'a str, String> {
    let plain: Vec<(&str, String, bool)> = branches
        .into_iter()
        .map(|branch| {
            let rest = branch.strip_prefix(prefix).unwrap_or(branch);
            let mapped: String = rest
                .chars()
                .map(|c| c.to_ascii_lowercase())
                .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' { c } else { '-' })
                .collect();
            let trimmed = mapped.trim_matches('-');
            let cut: String = trimmed.chars().take(NAME_MAX).collect();
            let cut = cut.trim_end_matches('-').to_string();
            let changed = cut != rest;
            (branch, cut, changed)
        })
        .collect();
    let mut uses: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, name, _) in &plain {
        *uses.entry(name.as_str()).or_default() += 1;
    }
    let named = |name: &str, branch: &str, digits: usize| {
        let digest = hex::encode(Sha256::digest(branch.as_bytes()));
        let digest = &digest[..digits.min(digest.len())];
        if name.is_empty() { digest.to_string() } else { format!("{name}-{digest}") }
    };
    // (branch, name without hash, hex digits of its hash: 0 for none)
    let mut names: Vec<(&str, &str, usize)> = plain
        .iter()
        .map(|(branch, name, changed)| {
            (*branch, name.as_str(), if *changed || uses[name.as_str()] > 1 { 6 } else { 0 })
        })
        .collect();
    loop {
        let full = |(branch, name, digits): &(&str, &str, usize)| match digits {
            0 => name.to_string(),
            _ => named(name, branch, *digits),
        };
        let mut taken: BTreeMap<String, usize> = BTreeMap::new();
        for entry in &names {
            *taken.entry(full(entry)).or_default() += 1;
        }
        let mut lengthened = false;
        for entry in &mut names {
            // A plain name is the branch's own: the hashed one sharing it gives way.
            if entry.2 > 0 && entry.2 < 64 && taken[&full(entry)] > 1 {
                entry.2 += 6;
                lengthened = true;
            }
        }
        if !lengthened {
            return names.iter().map(|entry| (entry.0, full(entry))).collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYNC: (&str, &str) = ("shop", "web");

    fn spec(value: serde_json::Value) -> PreviewsSpec {
        serde_json::from_value(value).unwrap()
    }

    fn checked(value: serde_json::Value) -> Settings {
        settings(&spec(value), "shop").unwrap()
    }

    fn branch(name: &str, hours_ago: i64, now: jiff::Timestamp) -> Branch {
        let time = now - jiff::SignedDuration::from_hours(hours_ago);
        Branch { name: name.into(), commit: format!("{:0>40}", hours_ago), time, pull_request: None, fork: false }
    }

    fn hash6(branch: &str) -> String {
        hex::encode(&Sha256::digest(branch.as_bytes())[..3])
    }

    #[test]
    fn a_preview_is_named_by_its_branch_after_the_globs_prefix_with_a_hash_when_that_changed_anything() {
        let long = format!("preview/{}", "b".repeat(50));
        let names = preview_names("preview/", ["preview/a", "preview/Fix_Login", "preview/x--", long.as_str()]);
        assert_eq!(names["preview/a"], "a");
        assert_eq!(names["preview/Fix_Login"], format!("fix-login-{}", hash6("preview/Fix_Login")));
        assert_eq!(names["preview/x--"], format!("x-{}", hash6("preview/x--")));
        assert_eq!(names[long.as_str()], format!("{}-{}", "b".repeat(40), hash6(&long)));
        // Nothing left of it: the hash alone, still a DNS label.
        assert_eq!(preview_names("preview/", ["preview/__"])["preview/__"], hash6("preview/__"));
    }

    #[test]
    fn a_branch_named_after_anothers_hashed_name_does_not_take_its_preview() {
        let hashed = format!("fix-login-{}", hash6("preview/Fix_Login"));
        let squatter = format!("preview/{hashed}");
        let names = preview_names("preview/", ["preview/Fix_Login", squatter.as_str()]);
        assert_eq!(names[squatter.as_str()], hashed, "a plain name is the branch's own");
        let full = hex::encode(Sha256::digest(b"preview/Fix_Login"));
        assert_eq!(names["preview/Fix_Login"], format!("fix-login-{}", &full[..12]), "more of its hash");
        assert_ne!(names["preview/Fix_Login"], names[squatter.as_str()]);
    }

    #[test]
    fn two_branches_that_would_share_a_name_each_get_their_hash() {
        // `a` alone is unchanged, but `A` lowercases to it: both are told apart by their hash.
        let names = preview_names("preview/", ["preview/a", "preview/A"]);
        assert_eq!(names["preview/a"], format!("a-{}", hash6("preview/a")));
        assert_eq!(names["preview/A"], format!("a-{}", hash6("preview/A")));
        assert_ne!(names["preview/a"], names["preview/A"]);
    }

    #[test]
    fn the_glob_chooses_branches_and_does_not_cross_a_slash() {
        let settings = checked(serde_json::json!({"branches": "preview/*", "environment": "dev"}));
        let remote = ["main", "preview/a", "feature/x", "preview/a/b", "preview-c"];
        assert_eq!(settings.matching(remote), ["preview/a"]);
        let deep = checked(serde_json::json!({"branches": "preview/**", "environment": "dev"}));
        assert_eq!(deep.matching(remote), ["preview/a", "preview/a/b"]);
    }

    #[test]
    fn each_preview_has_its_namespace_and_an_environment_name_of_its_own() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let defaulted = checked(serde_json::json!({"branches": "preview/*", "environment": "dev"}));
        let previews =
            defaulted.previews(&[branch("preview/a", 1, now)], (&BTreeMap::new(), &BTreeMap::new()), now, SYNC);
        assert_eq!(previews.len(), 1);
        assert_eq!((previews[0].namespace.as_str(), previews[0].environment.as_str()), ("shop-a", "dev--a"));
        assert_eq!((previews[0].label.as_str(), previews[0].waiting.as_ref()), ("shop.web.a", None));
        let patterned =
            checked(serde_json::json!({"branches": "preview/*", "environment": "dev", "namespace": "review-{name}"}));
        assert_eq!(
            patterned.previews(&[branch("preview/a", 1, now)], (&BTreeMap::new(), &BTreeMap::new()), now, SYNC)[0]
                .namespace,
            "review-a"
        );
        let long = Preview { environment: format!("{}--a", "e".repeat(61)), ..previews[0].clone() };
        assert!(problem(&long).unwrap().contains("longer than a label value"));
        assert_eq!(problem(&previews[0]), None);
        let shouting = Preview { namespace: "Shop_a".into(), ..previews[0].clone() };
        assert!(problem(&shouting).unwrap().starts_with("its namespace `Shop_a` (spec.previews.namespace) is not"));
        let labelled = Preview { label: format!("shop.{}.a", "w".repeat(60)), ..previews[0].clone() };
        assert!(problem(&labelled).unwrap().contains("namespace's label"));
    }

    #[test]
    fn a_preview_keeps_its_name_when_the_branch_that_forced_its_hash_goes() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let settings = checked(serde_json::json!({"branches": "preview/*", "environment": "dev"}));
        let both = [branch("preview/a", 2, now), branch("preview/A", 1, now)];
        let first = settings.previews(&both, (&BTreeMap::new(), &BTreeMap::new()), now, SYNC);
        let hashed = format!("a-{}", hash6("preview/a"));
        assert_eq!(first.iter().find(|p| p.branch == "preview/a").unwrap().name, hashed);
        let made: BTreeMap<Source, String> =
            first.iter().map(|p| (Source::Branch(p.branch.clone()), p.name.clone())).collect();
        // preview/A goes: preview/a keeps its name, namespace and environment.
        let alone = settings.previews(&both[..1], (&made, &BTreeMap::new()), now, SYNC);
        assert_eq!(
            (alone[0].name.as_str(), alone[0].namespace.as_str()),
            (hashed.as_str(), format!("shop-{hashed}").as_str())
        );
        // Never made before: the plain name.
        assert_eq!(settings.previews(&both[..1], (&BTreeMap::new(), &BTreeMap::new()), now, SYNC)[0].name, "a");
        // A kept name another branch now computes is given up: no two previews share one.
        let taken = BTreeMap::from([(Source::Branch("preview/b".to_string()), "a".to_string())]);
        let names: Vec<String> = settings
            .previews(
                &[branch("preview/a", 2, now), branch("preview/b", 1, now)],
                (&taken, &BTreeMap::new()),
                now,
                SYNC,
            )
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn over_the_maximum_the_newest_commits_wait_and_made_previews_keep_their_place() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let settings = checked(serde_json::json!({"branches": "preview/*", "environment": "dev", "max": 3}));
        let branches: Vec<Branch> =
            [("preview/a", 5), ("preview/b", 1), ("preview/c", 4), ("preview/d", 2), ("preview/e", 3)]
                .into_iter()
                .map(|(name, hours)| branch(name, hours, now))
                .collect();
        let waiting = |made: &[&str]| {
            let made = made.iter().map(|name| (Source::Branch(format!("preview/{name}")), name.to_string())).collect();
            let previews = settings.previews(&branches, (&made, &BTreeMap::new()), now, SYNC);
            assert_eq!(previews.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["a", "b", "c", "d", "e"]);
            previews.into_iter().filter(|p| p.waiting.is_some()).map(|p| p.name).collect::<Vec<_>>()
        };
        assert_eq!(waiting(&[]), ["b", "d"], "the two newest commits wait");
        assert_eq!(waiting(&["b", "d"]), ["c", "e"], "made ones stay, then the oldest");
        let message =
            settings.previews(&branches, (&BTreeMap::new(), &BTreeMap::new()), now, SYNC)[1].waiting.clone().unwrap();
        assert!(message.contains("5 branches match") && message.contains("max is 3"), "{message}");
    }

    #[test]
    fn a_branch_whose_last_commit_is_older_than_expire_after_has_no_preview() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let settings =
            checked(serde_json::json!({"branches": "preview/*", "environment": "dev", "expireAfter": "72h"}));
        let branches = [branch("preview/fresh", 71, now), branch("preview/old", 73, now)];
        let names: Vec<String> = settings
            .previews(&branches, (&BTreeMap::new(), &BTreeMap::new()), now, SYNC)
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["fresh"]);
    }

    #[test]
    fn a_deleted_preview_stays_deleted_at_its_commit_and_takes_no_place_under_the_maximum() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let settings = checked(serde_json::json!({"branches": "preview/*", "environment": "dev", "max": 1}));
        let branches = [branch("preview/a", 2, now), branch("preview/b", 1, now)];
        let annotations: BTreeMap<String, String> = [
            (format!("{PREVIEW_DELETE_PREFIX}a"), branches[0].commit.clone()),
            ("weaver.example.com/reconcile-requested-at".to_string(), "t1".to_string()),
        ]
        .into();
        let asked = deletions(&annotations);
        assert_eq!(asked, BTreeMap::from([("a".to_string(), branches[0].commit.clone())]));
        let previews = settings.previews(&branches, (&BTreeMap::new(), &asked), now, SYNC);
        let states: Vec<(&str, bool, bool)> =
            previews.iter().map(|p| (p.name.as_str(), p.deleted, p.waiting.is_some())).collect();
        assert_eq!(states, [("a", true, false), ("b", false, false)], "b takes the place a left");
        // Its branch moved: the request is for another commit, and a is made again (b, newer, waits).
        let moved = [branch("preview/a", 0, now), branches[1].clone()];
        let previews = settings.previews(&moved, (&BTreeMap::new(), &asked), now, SYNC);
        let states: Vec<(&str, bool, bool)> =
            previews.iter().map(|p| (p.name.as_str(), p.deleted, p.waiting.is_some())).collect();
        assert_eq!(states, [("a", false, true), ("b", false, false)], "the oldest commit first: b, then a waits");
    }

    #[test]
    fn a_preview_url_comes_from_the_pattern_or_from_its_ingress() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let patterned = checked(
            serde_json::json!({"branches": "preview/*", "environment": "dev", "url": "https://{name}.preview.example.org/"}),
        );
        let previews =
            patterned.previews(&[branch("preview/a", 1, now)], (&BTreeMap::new(), &BTreeMap::new()), now, SYNC);
        assert_eq!(previews[0].url.as_deref(), Some("https://a.preview.example.org/"));
        let plain = checked(serde_json::json!({"branches": "preview/*", "environment": "dev"}));
        let previews = plain.previews(&[branch("preview/a", 1, now)], (&BTreeMap::new(), &BTreeMap::new()), now, SYNC);
        assert_eq!(previews[0].url, None);

        let ingress = |spec: serde_json::Value| -> Ingress {
            serde_json::from_value(serde_json::json!({"metadata": {"name": "web"}, "spec": spec})).unwrap()
        };
        let rule = |host: &str, path: &str| {
            serde_json::json!({"host": host, "http": {"paths": [{"path": path, "pathType": "Prefix",
                "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}})
        };
        let tls = ingress(serde_json::json!({"rules": [rule("a.example.org", "/shop")],
                                             "tls": [{"hosts": ["a.example.org"], "secretName": "a-tls"}]}));
        assert_eq!(ingress_url(&tls).as_deref(), Some("https://a.example.org/shop"));
        let other_tls = ingress(serde_json::json!({"rules": [rule("a.example.org", "/")],
                                                   "tls": [{"hosts": ["b.example.org"]}]}));
        assert_eq!(ingress_url(&other_tls).as_deref(), Some("http://a.example.org/"));
        let wildcard_first =
            ingress(serde_json::json!({"rules": [rule("*.example.org", "/"), rule("c.example.org", "/")]}));
        assert_eq!(ingress_url(&wildcard_first).as_deref(), Some("http://c.example.org/"));
        assert_eq!(ingress_url(&ingress(serde_json::json!({"defaultBackend": {"service": {"name": "web"}}}))), None);
    }

    /// Two forks' requests from their own `main` share a head branch: each made preview keeps
    /// its place over `max`, found by its number, where a map by branch kept only one of them.
    #[test]
    fn made_pull_requests_of_one_head_branch_each_keep_their_place() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let forge = serde_json::json!({"provider": "GitHub", "repository": "shop/web", "secretRef": {"name": "gh"}});
        let settings = checked(serde_json::json!({"pullRequests": {"labels": ["preview"]}, "forge": forge,
                                                   "environment": "dev", "max": 2}));
        // pr-6's head is the oldest: without the others made, it would be kept before them.
        let request = |number, hours| Branch { pull_request: Some(number), fork: true, ..branch("main", hours, now) };
        let requests = [request(4, 1), request(5, 2), request(6, 9)];
        let made = BTreeMap::from([
            (Source::PullRequest(4), "pr-4".to_string()),
            (Source::PullRequest(5), "pr-5".to_string()),
        ]);
        let waiting = |made: &BTreeMap<Source, String>| -> Vec<String> {
            let previews = settings.previews(&requests, (made, &BTreeMap::new()), now, SYNC);
            previews.into_iter().filter(|p| p.waiting.is_some()).map(|p| p.name).collect()
        };
        assert_eq!(waiting(&BTreeMap::new()), ["pr-4"], "the newest waits");
        assert_eq!(waiting(&made), ["pr-6"], "both made ones stay");
    }

    #[test]
    fn a_pull_request_is_previewed_as_pr_its_number_and_forks_decrypt_only_under_all() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let forge = serde_json::json!({"provider": "GitHub", "repository": "shop/web", "secretRef": {"name": "gh"}});
        let of = |decryption: &str| {
            checked(serde_json::json!({"pullRequests": {"labels": ["preview"]}, "forge": forge,
                                       "environment": "dev", "decryption": decryption}))
        };
        let request = |number, fork| Branch { pull_request: Some(number), fork, ..branch("feature/Login", 1, now) };
        let requests = [request(7, false), request(8, true)];
        let decrypting = |settings: &Settings| -> Vec<(String, bool)> {
            let previews = settings.previews(&requests, (&BTreeMap::new(), &BTreeMap::new()), now, SYNC);
            previews.into_iter().map(|p| (p.name, p.decrypts)).collect()
        };
        // Two requests of one head branch (a fork's `feature/Login` too) are told apart by number.
        let named = |pairs: [(&str, bool); 2]| pairs.map(|(n, d)| (n.to_string(), d)).to_vec();
        assert_eq!(decrypting(&of("None")), named([("pr-7", false), ("pr-8", false)]));
        assert_eq!(decrypting(&of("Branches")), named([("pr-7", true), ("pr-8", false)]), "a fork's gets none");
        assert_eq!(decrypting(&of("All")), named([("pr-7", true), ("pr-8", true)]));
        let previews = of("None").previews(&requests, (&BTreeMap::new(), &BTreeMap::new()), now, SYNC);
        assert_eq!((previews[0].namespace.as_str(), previews[0].pull_request), ("shop-pr-7", Some(7)));
        // Without `branches`, any head branch; with it, only the matching ones.
        assert_eq!(of("None").matching(["feature/a", "main"]), ["feature/a", "main"]);
        let filtered = checked(serde_json::json!({"pullRequests": {"labels": ["preview"]}, "forge": forge,
                                                  "branches": "feature/*", "environment": "dev"}));
        assert_eq!(filtered.matching(["feature/a", "main"]), ["feature/a"]);
        // A branch's preview decrypts under Branches; the default gives none.
        let plain =
            checked(serde_json::json!({"branches": "preview/*", "environment": "dev", "decryption": "Branches"}));
        assert!(
            plain.previews(&[branch("preview/a", 1, now)], (&BTreeMap::new(), &BTreeMap::new()), now, SYNC)[0].decrypts
        );
        let default = checked(serde_json::json!({"branches": "preview/*", "environment": "dev"}));
        assert!(
            !default.previews(&[branch("preview/a", 1, now)], (&BTreeMap::new(), &BTreeMap::new()), now, SYNC)[0]
                .decrypts
        );
    }

    #[test]
    fn pull_requests_without_a_forge_or_previews_of_nothing_are_refused() {
        let refused = |value: serde_json::Value| settings(&spec(value), "shop").unwrap_err();
        assert!(
            refused(serde_json::json!({"pullRequests": {"labels": ["p"]}, "environment": "dev"}))
                .starts_with("spec.previews.pullRequests needs spec.previews.forge")
        );
        assert!(refused(serde_json::json!({"environment": "dev"})).starts_with("spec.previews needs `branches`"));
        let gitea = serde_json::json!({"provider": "Gitea", "repository": "o/r", "secretRef": {"name": "t"}});
        assert!(
            refused(serde_json::json!({"pullRequests": {"labels": ["p"]}, "forge": gitea, "environment": "dev"}))
                .contains("url is required for Gitea")
        );
    }

    #[test]
    fn a_bad_glob_duration_or_namespace_pattern_is_refused_naming_the_field() {
        let refused = |value: serde_json::Value| settings(&spec(value), "shop").unwrap_err();
        assert!(
            refused(serde_json::json!({"branches": "preview/[", "environment": "dev"}))
                .starts_with("spec.previews.branches `preview/[` is not a glob")
        );
        assert!(
            refused(serde_json::json!({"branches": "p/*", "environment": "dev", "expireAfter": "3 days"}))
                .starts_with("spec.previews.expireAfter:")
        );
        assert!(
            refused(serde_json::json!({"branches": "p/*", "environment": "dev", "namespace": "shop"}))
                .contains("has no `{name}`")
        );
        let url = |url: &str| refused(serde_json::json!({"branches": "p/*", "environment": "dev", "url": url}));
        assert!(
            url("https://shop.example.org").starts_with("spec.previews.url `https://shop.example.org` has no `{name}`")
        );
        assert!(url("ftp://{name}.example.org").contains("is no http:// or https:// URL"));
        assert!(url("https://{name}.example.org/\"><script>").contains("has a space, a quote or an angle bracket"));
    }
}
