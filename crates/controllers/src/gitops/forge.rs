//! The forge of `spec.previews.forge`: its open pull requests (GitLab's merge requests) carrying
//! labels, and the commit statuses posted on the previews' commits. One client shape for the
//! three APIs, as their documentation gives them:
//!
//! - GitHub (REST v3): `GET /repos/{owner}/{name}/pulls?state=open&per_page=100`, pages by the
//!   `Link` header's `rel="next"`; no label filter there, so labels are matched here; a fork's
//!   request has a `head.repo` other than `base.repo` (or none, its fork deleted). `POST
//!   /repos/{owner}/{name}/statuses/{sha}` with JSON `{state, description, context}` (state
//!   `pending|success|failure|error`; GitHub refuses a description over 140 characters).
//!   `Authorization: Bearer <token>`.
//! - GitLab (v4): `GET /projects/{url-encoded path}/merge_requests?state=opened&labels=a,b&per_page=100`
//!   (every label must match), pages by `x-next-page` (empty on the last) or `Link`; a fork's
//!   request has `source_project_id` other than `target_project_id`. `POST
//!   /projects/{path}/statuses/{sha}` with `{state, name, description}` (state
//!   `pending|running|success|failed|canceled`). `PRIVATE-TOKEN: <token>`.
//! - Gitea (v1, its swagger): `GET /repos/{owner}/{name}/pulls?state=open&limit=50`, pages by
//!   `Link`; its `labels` filter takes label ids, so labels are matched here. `POST
//!   /repos/{owner}/{name}/statuses/{sha}` with `{state, context, description}` (state
//!   `pending|success|error|failure|warning`). `Authorization: token <token>`.
//!
//! The API's base URL (`url`) holds each path above (`https://gitea.example.org/api/v1`). The
//! token is sent as that header only, to the base URL's origin only (a next page elsewhere is
//! refused, no redirect is followed), and no message here quotes it. Blocking.

use std::time::{Duration, Instant};

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use ureq::http::HeaderMap;
use weaver_secrets::Redactor;

use super::api::{Forge, ForgeProvider};

pub const GITHUB_API: &str = "https://api.github.com";
pub const GITLAB_API: &str = "https://gitlab.com/api/v4";
/// The longest description posted: GitHub's limit (it refuses longer), the others given the same.
pub const DESCRIPTION_MAX: usize = 140;
/// At most this many pages of pull requests are read (10,000 requests at GitHub's page size).
const MAX_PAGES: usize = 100;
/// How long one request to the forge may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The most bytes of one page of pull requests read (a hundred requests are far less).
const PAGE_MAX_BYTES: u64 = 8 << 20;
/// The most of an error answer's `message` quoted.
const MESSAGE_MAX: usize = 200;

/// What is wrong with `forge`, naming its field: Gitea has no default URL; GitHub's and Gitea's
/// repositories are `owner/name`.
pub fn check(forge: &Forge) -> Result<(), String> {
    if forge.provider == ForgeProvider::Gitea && forge.url.is_none() {
        return Err("spec.previews.forge.url is required for Gitea: its API's base URL, such as \
                    `https://gitea.example.org/api/v1`"
            .into());
    }
    if let Some(url) = &forge.url {
        check_url(url)?;
    }
    let parts = forge.repository.split('/').count();
    if forge.repository.split('/').any(str::is_empty) {
        return Err(format!("spec.previews.forge.repository `{}` has an empty part", forge.repository));
    }
    if forge.provider != ForgeProvider::GitLab && parts != 2 {
        return Err(format!(
            "spec.previews.forge.repository `{}` is not `owner/name`, as {:?} names repositories",
            forge.repository, forge.provider
        ));
    }
    Ok(())
}

/// `spec.previews.forge.url`, which the token is sent to: https (http only to this machine, as
/// tests serve it), no credentials in it, no query or fragment (the API's paths are added to it).
/// A URL with credentials is not quoted.
fn check_url(url: &str) -> Result<(), String> {
    let field = "spec.previews.forge.url";
    let uri: ureq::http::Uri = url.parse().map_err(|_| format!("{field} is not a URL: give the API's base URL"))?;
    if uri.authority().is_some_and(|authority| authority.as_str().contains('@')) {
        return Err(format!("{field} has credentials in it: give the token in spec.previews.forge.secretRef"));
    }
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if loopback => {}
        _ => return Err(format!("{field} `{url}` is no https:// URL: the token would be sent in the clear")),
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(format!("{field} `{url}` has a query or a fragment: give the API's base URL alone"));
    }
    Ok(())
}

/// An open pull request: its number (GitLab's `iid`), head branch and commit, whether its head
/// is in a fork, and its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct PullRequest {
    pub number: u64,
    pub branch: String,
    pub sha: String,
    pub fork: bool,
    pub labels: Vec<String>,
}

/// A commit status weaver posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitState {
    Pending,
    Success,
    Failure,
}

impl CommitState {
    /// As the status records it (`PreviewStatus.commitStatus`): GitHub's words.
    pub fn as_str(self) -> &'static str {
        match self {
            CommitState::Pending => "pending",
            CommitState::Success => "success",
            CommitState::Failure => "failure",
        }
    }

    /// The word `provider`'s API takes: GitLab says `failed`.
    fn word(self, provider: ForgeProvider) -> &'static str {
        match (self, provider) {
            (CommitState::Failure, ForgeProvider::GitLab) => "failed",
            (state, _) => state.as_str(),
        }
    }
}

/// A client of one repository's forge, with its token.
pub struct Client {
    provider: ForgeProvider,
    /// The API's base URL, without a trailing `/`.
    api: String,
    repository: String,
    token: SecretString,
    /// Where the token was read (`Secret ns/name (spec.previews.forge.secretRef)`), which a
    /// refusal of it names.
    token_from: String,
    /// The reconcile's: an error answer quoting the token, in any form it knows, is redacted
    /// before it is cut short.
    redactor: Redactor,
    agent: ureq::Agent,
}

impl Client {
    /// The token is registered with `redactor`.
    pub fn new(forge: &Forge, (token, token_from): (SecretString, String), redactor: Redactor) -> Client {
        redactor.register(token.expose_secret());
        let api = match (&forge.url, forge.provider) {
            (Some(url), _) => url.trim_end_matches('/').to_string(),
            (None, ForgeProvider::GitLab) => GITLAB_API.to_string(),
            (None, _) => GITHUB_API.to_string(),
        };
        Client {
            provider: forge.provider,
            api,
            repository: forge.repository.clone(),
            token,
            token_from,
            redactor,
            agent: weaver_net::http::agent(None, TIMEOUT, 0),
        }
    }

    /// The ref the forge keeps request `number`'s head at, in the base repository.
    pub fn head_ref(&self, number: u64) -> String {
        match self.provider {
            ForgeProvider::GitLab => format!("refs/merge-requests/{number}/head"),
            _ => format!("refs/pull/{number}/head"),
        }
    }

    /// The open pull requests carrying every one of `labels`, every page read by `deadline`.
    pub fn open_requests(&self, labels: &[String], deadline: Instant) -> Result<Vec<PullRequest>, String> {
        let mut url = self.first_page(labels);
        let mut found = Vec::new();
        for _ in 0..MAX_PAGES {
            let mut response = self.send("GET", &url, None, deadline)?;
            let body = response
                .body_mut()
                .with_config()
                .limit(PAGE_MAX_BYTES)
                .read_to_vec()
                .map_err(|e| format!("reading the answer of GET {url}: {e}"))?;
            let page = parse_requests(self.provider, &body).map_err(|e| format!("the answer of GET {url}: {e}"))?;
            found.extend(page.into_iter().filter(|request| labels.iter().all(|l| request.labels.contains(l))));
            match next_page(response.headers(), &url) {
                Some(next) if next.starts_with(&format!("{}/", self.api)) => url = next,
                Some(next) => {
                    return Err(format!(
                        "GET {url} gave a next page outside the API's URL {} ({next}): not followed, with the token",
                        self.api
                    ));
                }
                None => return Ok(found),
            }
        }
        Err(format!("the forge lists more than {MAX_PAGES} pages of open pull requests: give fewer labels' requests"))
    }

    /// Posts `state` on commit `sha`, under `context`, its description cut to [`DESCRIPTION_MAX`],
    /// by `deadline`.
    pub fn post_status(
        &self,
        sha: &str,
        state: CommitState,
        (description, context): (&str, &str),
        deadline: Instant,
    ) -> Result<(), String> {
        let url = format!("{}/{}/statuses/{sha}", self.api, self.repository_path());
        let body = status_body(self.provider, state, description, context);
        self.send("POST", &url, Some(&body), deadline).map(|_| ())
    }

    fn repository_path(&self) -> String {
        match self.provider {
            ForgeProvider::GitLab => format!("projects/{}", utf8_percent_encode(&self.repository, NON_ALPHANUMERIC)),
            _ => format!("repos/{}", self.repository),
        }
    }

    fn first_page(&self, labels: &[String]) -> String {
        let path = self.repository_path();
        match self.provider {
            ForgeProvider::GitHub => format!("{}/{path}/pulls?state=open&per_page=100", self.api),
            ForgeProvider::GitLab => {
                let joined = labels.join(",");
                let labels = utf8_percent_encode(&joined, NON_ALPHANUMERIC);
                format!("{}/{path}/merge_requests?state=opened&labels={labels}&per_page=100", self.api)
            }
            ForgeProvider::Gitea => format!("{}/{path}/pulls?state=open&limit=50", self.api),
        }
    }

    /// The token's header, as `provider` takes it.
    fn authorization(&self) -> (&'static str, String) {
        let token = self.token.expose_secret();
        match self.provider {
            ForgeProvider::GitHub => ("Authorization", format!("Bearer {token}")),
            ForgeProvider::GitLab => ("PRIVATE-TOKEN", token.to_string()),
            ForgeProvider::Gitea => ("Authorization", format!("token {token}")),
        }
    }

    /// A GET of `url`, or a POST of `body` as JSON, with the token's header, ended by `deadline`
    /// (and [`TIMEOUT`]); a status outside 2xx is an error saying what the forge answered, never
    /// quoting the token.
    fn send(
        &self,
        method: &str,
        url: &str,
        body: Option<&serde_json::Value>,
        deadline: Instant,
    ) -> Result<ureq::http::Response<ureq::Body>, String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "{method} {url}: not sent, the previews' time (spec.timeout) ran out: at a later reconcile"
            ));
        }
        let timeout = Some(left.min(TIMEOUT));
        let (name, value) = self.authorization();
        let agent = concat!("weaver/", env!("CARGO_PKG_VERSION"));
        let sent = match body {
            Some(body) => self
                .agent
                .post(url)
                .config()
                .timeout_global(timeout)
                .build()
                .header(name, value)
                .header("User-Agent", agent)
                .header("Accept", "application/json")
                .header("Content-Type", "application/json")
                .send(body.to_string().as_bytes()),
            None => self
                .agent
                .get(url)
                .config()
                .timeout_global(timeout)
                .build()
                .header(name, value)
                .header("User-Agent", agent)
                .header("Accept", "application/json")
                .call(),
        };
        // ureq's messages name the URL and the failure, never a request's headers.
        let mut response = sent.map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        if let Some(wait) = rate_limited(status.as_u16(), response.headers(), jiff::Timestamp::now()) {
            let reset = match wait {
                Some(wait) => format!("it resets in {}s", wait.as_secs()),
                None => "it says no reset time".into(),
            };
            return Err(format!(
                "{method} {url}: the forge's rate limit is reached ({reset}): tried again at a later reconcile"
            ));
        }
        let text = response.body_mut().with_config().limit(64 << 10).read_to_vec().unwrap_or_default();
        let said = said(&text, &self.redactor);
        match status.as_u16() {
            401 | 403 => Err(format!(
                "{method} {url} was answered {status}{said}: the token of {} is refused, or lacks the rights the \
                 previews guide lists",
                self.token_from
            )),
            _ => Err(format!("{method} {url} was answered {status}{said}")),
        }
    }
}

/// The `message` (GitLab: or `error`) of an error answer, as `: <message>`, redacted before it
/// is cut short (a cut through a secret would leave a part no redactor knows).
fn said(body: &[u8], redactor: &Redactor) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else { return String::new() };
    let message = value.get("message").or_else(|| value.get("error")).map(|m| match m.as_str() {
        Some(text) => text.to_string(),
        None => m.to_string(),
    });
    match message {
        Some(text) => format!(": {}", redactor.redact(&text).chars().take(MESSAGE_MAX).collect::<String>()),
        None => String::new(),
    }
}

/// How long a refusal for a rate limit asks to wait (`Some(None)` when it says nothing): a 429,
/// or a 403 with `x-ratelimit-remaining: 0` or a `Retry-After` (GitHub's secondary limits).
/// The wait is `Retry-After`, else until `x-ratelimit-reset` (GitLab: `ratelimit-reset`), epoch
/// seconds.
pub fn rate_limited(status: u16, headers: &HeaderMap, now: jiff::Timestamp) -> Option<Option<Duration>> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let limited = status == 429
        || (status == 403 && (header("x-ratelimit-remaining") == Some("0") || header("retry-after").is_some()));
    if !limited {
        return None;
    }
    if let Some(wait) = header("retry-after").and_then(|v| weaver_net::retry::retry_after(v, now)) {
        return Some(Some(wait));
    }
    let reset = header("x-ratelimit-reset").or_else(|| header("ratelimit-reset")).and_then(|v| v.trim().parse().ok());
    Some(
        reset
            .and_then(|at: i64| jiff::Timestamp::from_second(at).ok())
            .map(|at| now.duration_until(at).try_into().unwrap_or(Duration::ZERO)),
    )
}

/// The next page's URL: the `Link` header's `rel="next"`, else GitLab's `x-next-page` (a page
/// number, empty on the last) put in `current`'s `page`; None on the last page.
pub fn next_page(headers: &HeaderMap, current: &str) -> Option<String> {
    let linked = headers.get_all("link").iter().filter_map(|v| v.to_str().ok()).find_map(weaver_net::http::next_link);
    if linked.is_some() {
        return linked;
    }
    let page = headers.get("x-next-page")?.to_str().ok()?.trim();
    if page.is_empty() || !page.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (path, query) = current.split_once('?').unwrap_or((current, ""));
    let mut pairs: Vec<String> =
        query.split('&').filter(|p| !p.is_empty() && !p.starts_with("page=")).map(str::to_string).collect();
    pairs.push(format!("page={page}"));
    Some(format!("{path}?{}", pairs.join("&")))
}

/// The JSON body of a commit status for `provider`.
pub fn status_body(provider: ForgeProvider, state: CommitState, description: &str, context: &str) -> serde_json::Value {
    let description: String = description.chars().take(DESCRIPTION_MAX).collect();
    let state = state.word(provider);
    match provider {
        ForgeProvider::GitLab => serde_json::json!({"state": state, "name": context, "description": description}),
        _ => serde_json::json!({"state": state, "context": context, "description": description}),
    }
}

#[derive(Deserialize)]
struct Label {
    name: String,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "ref")]
    branch: String,
    sha: String,
    repo: Option<Repository>,
}

#[derive(Deserialize)]
struct Base {
    repo: Option<Repository>,
}

/// A pull request as GitHub and Gitea list it.
#[derive(Deserialize)]
struct Pull {
    number: u64,
    #[serde(default)]
    labels: Vec<Label>,
    head: Head,
    base: Base,
}

/// A merge request as GitLab lists it.
#[derive(Deserialize)]
struct MergeRequest {
    iid: u64,
    #[serde(default)]
    labels: Vec<String>,
    source_branch: String,
    sha: String,
    source_project_id: u64,
    target_project_id: u64,
}

/// One page of `provider`'s list of pull requests.
pub fn parse_requests(provider: ForgeProvider, body: &[u8]) -> Result<Vec<PullRequest>, String> {
    let shown = |e: serde_json::Error| format!("not a list of pull requests as {provider:?} writes them: {e}");
    match provider {
        ForgeProvider::GitLab => {
            let requests: Vec<MergeRequest> = serde_json::from_slice(body).map_err(shown)?;
            Ok(requests
                .into_iter()
                .map(|r| PullRequest {
                    number: r.iid,
                    branch: r.source_branch,
                    sha: r.sha,
                    fork: r.source_project_id != r.target_project_id,
                    labels: r.labels,
                })
                .collect())
        }
        _ => {
            let pulls: Vec<Pull> = serde_json::from_slice(body).map_err(shown)?;
            Ok(pulls
                .into_iter()
                .map(|p| {
                    // A deleted fork leaves no head repository: a fork's all the same. Names are
                    // case-insensitive on both forges.
                    let fork = match (&p.head.repo, &p.base.repo) {
                        (Some(head), Some(base)) => !head.full_name.eq_ignore_ascii_case(&base.full_name),
                        _ => true,
                    };
                    PullRequest {
                        number: p.number,
                        branch: p.head.branch,
                        sha: p.head.sha,
                        fork,
                        labels: p.labels.into_iter().map(|l| l.name).collect(),
                    }
                })
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_next_page_is_the_links_next_else_gitlabs_next_page_number() {
        let github = headers(&[(
            "link",
            "<https://api.github.com/repositories/1/pulls?state=open&page=3>; rel=\"next\", \
             <https://api.github.com/repositories/1/pulls?state=open&page=5>; rel=\"last\"",
        )]);
        let current = "https://api.github.com/repos/o/r/pulls?state=open&per_page=100";
        assert_eq!(
            next_page(&github, current).as_deref(),
            Some("https://api.github.com/repositories/1/pulls?state=open&page=3")
        );
        let last = headers(&[(
            "link",
            "<https://api.github.com/x?page=1>; rel=\"prev\", <https://api.github.com/x?page=1>; rel=\"first\"",
        )]);
        assert_eq!(next_page(&last, current), None, "no rel=next: the last page");
        let gitlab = headers(&[("x-next-page", "2"), ("x-page", "1")]);
        let first = "https://gitlab.com/api/v4/projects/g%2Fr/merge_requests?state=opened&per_page=100&page=1";
        assert_eq!(
            next_page(&gitlab, first).as_deref(),
            Some("https://gitlab.com/api/v4/projects/g%2Fr/merge_requests?state=opened&per_page=100&page=2")
        );
        assert_eq!(next_page(&headers(&[("x-next-page", "")]), first), None, "GitLab's last page");
        assert_eq!(next_page(&HeaderMap::new(), first), None);
    }

    #[test]
    fn each_forge_gets_its_status_body_its_words_and_a_description_within_the_limit() {
        let long = "x".repeat(300);
        let github = status_body(ForgeProvider::GitHub, CommitState::Failure, &long, "weaver/shop/web");
        assert_eq!(
            github,
            serde_json::json!({"state": "failure", "context": "weaver/shop/web", "description": "x".repeat(140)})
        );
        let gitlab = status_body(ForgeProvider::GitLab, CommitState::Failure, "it failed", "weaver/shop/web");
        assert_eq!(
            gitlab,
            serde_json::json!({"state": "failed", "name": "weaver/shop/web", "description": "it failed"})
        );
        let gitea = status_body(ForgeProvider::Gitea, CommitState::Pending, "applying", "weaver/shop/web");
        assert_eq!(
            gitea,
            serde_json::json!({"state": "pending", "context": "weaver/shop/web", "description": "applying"})
        );
        // Cut by characters, never inside one.
        let wide = status_body(ForgeProvider::GitHub, CommitState::Success, &"é".repeat(200), "c");
        assert_eq!(wide["description"].as_str().unwrap().chars().count(), 140);
    }

    #[test]
    fn pull_requests_are_read_with_their_labels_and_forks_told_apart() {
        let github = br#"[
          {"number": 7, "labels": [{"name": "preview"}, {"name": "x"}],
           "head": {"ref": "feature/a", "sha": "aaa", "repo": {"full_name": "Shop/Web"}},
           "base": {"ref": "main", "sha": "bbb", "repo": {"full_name": "shop/web"}}},
          {"number": 8, "labels": [],
           "head": {"ref": "main", "sha": "ccc", "repo": {"full_name": "someone/web"}},
           "base": {"ref": "main", "sha": "bbb", "repo": {"full_name": "shop/web"}}},
          {"number": 9, "labels": [], "head": {"ref": "gone", "sha": "ddd", "repo": null},
           "base": {"ref": "main", "sha": "bbb", "repo": {"full_name": "shop/web"}}}]"#;
        let read = parse_requests(ForgeProvider::GitHub, github).unwrap();
        assert_eq!(
            read[0],
            PullRequest {
                number: 7,
                branch: "feature/a".into(),
                sha: "aaa".into(),
                fork: false,
                labels: vec!["preview".into(), "x".into()]
            }
        );
        assert_eq!(read.iter().map(|r| r.fork).collect::<Vec<_>>(), [false, true, true]);
        let gitlab = br#"[{"iid": 3, "labels": ["preview"], "source_branch": "feature/b", "sha": "eee",
                           "source_project_id": 10, "target_project_id": 10},
                          {"iid": 4, "labels": [], "source_branch": "main", "sha": "fff",
                           "source_project_id": 11, "target_project_id": 10}]"#;
        let read = parse_requests(ForgeProvider::GitLab, gitlab).unwrap();
        assert_eq!((read[0].number, read[0].branch.as_str(), read[0].fork), (3, "feature/b", false));
        assert!(read[1].fork);
        let refused = parse_requests(ForgeProvider::Gitea, br#"{"message": "not found"}"#).unwrap_err();
        assert!(refused.starts_with("not a list of pull requests as Gitea writes them"), "{refused}");
    }

    #[test]
    fn a_rate_limit_is_told_from_a_refusal_with_the_wait_it_asks() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let retry = headers(&[("retry-after", "60")]);
        assert_eq!(rate_limited(429, &retry, now), Some(Some(Duration::from_secs(60))));
        let reset = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1800000120")]);
        assert_eq!(rate_limited(403, &reset, now), Some(Some(Duration::from_secs(120))));
        assert_eq!(rate_limited(429, &HeaderMap::new(), now), Some(None));
        let forbidden = headers(&[("x-ratelimit-remaining", "4999")]);
        assert_eq!(rate_limited(403, &forbidden, now), None, "a token without the right scope");
        assert_eq!(rate_limited(404, &retry, now), None);
    }

    #[test]
    fn a_forge_slower_than_the_deadline_is_left_by_it_and_nothing_is_sent_after() {
        // Each page after four seconds.
        let server = weaver_test_support::http_server::TestServer::start(|_, _| {
            std::thread::sleep(Duration::from_secs(4));
            ("200 OK", "Content-Type: application/json\r\n".to_string(), b"[]".to_vec())
        });
        let forge = Forge {
            provider: ForgeProvider::Gitea,
            url: Some(format!("{}/api/v1", server.origin())),
            repository: "o/r".into(),
            secret_ref: crate::gitops::api::LocalObjectReference { name: "forge".into() },
        };
        let client = Client::new(&forge, (SecretString::from("t0ken"), "Secret app/forge".into()), Redactor::new());
        let started = Instant::now();
        let listed = client.open_requests(&["preview".into()], started + Duration::from_secs(1));
        assert!(started.elapsed() < Duration::from_secs(3), "ended after {:?}: {listed:?}", started.elapsed());
        assert!(listed.is_err(), "{listed:?}");
        let asked = server.received().len();
        let late = client.post_status("0".repeat(40).as_str(), CommitState::Success, ("d", "c"), Instant::now());
        assert!(late.unwrap_err().contains("not sent, the previews' time (spec.timeout) ran out"));
        assert_eq!(server.received().len(), asked, "nothing sent past the deadline");
    }

    #[test]
    fn a_refused_token_is_named_by_its_secret_never_quoted() {
        let server = weaver_test_support::http_server::TestServer::start(|_, _| {
            let body = br#"{"message": "Bad credentials: wr0ng-t0ken"}"#.to_vec();
            ("401 Unauthorized", "Content-Type: application/json\r\n".to_string(), body)
        });
        let forge = Forge {
            provider: ForgeProvider::Gitea,
            url: Some(format!("{}/api/v1", server.origin())),
            repository: "o/r".into(),
            secret_ref: crate::gitops::api::LocalObjectReference { name: "forge".into() },
        };
        let from = "Secret app/forge (spec.previews.forge.secretRef)".to_string();
        let client = Client::new(&forge, (SecretString::from("wr0ng-t0ken"), from), Redactor::new());
        let refused = client.open_requests(&[], Instant::now() + Duration::from_secs(10)).unwrap_err();
        assert!(refused.contains("401") && refused.contains("the token of Secret app/forge"), "{refused}");
        assert!(!refused.contains("wr0ng-t0ken"), "{refused}");
    }

    #[test]
    fn a_token_an_error_answer_quotes_is_taken_out_before_the_message_is_cut() {
        let token = "ghp_0123456789abcdefghijklmnopqrstuvwxyzABCD";
        // The token straddles the cut: a part of it would be left that no redactor knows.
        let message = format!("{} {token} is not valid", "x".repeat(MESSAGE_MAX - 10));
        let redactor = Redactor::new();
        redactor.register(token);
        let said = said(serde_json::json!({"message": message}).to_string().as_bytes(), &redactor);
        assert!(said.contains(" <redact") && !said.contains("ghp_"), "{said}");
        assert_eq!(said.chars().count(), 2 + MESSAGE_MAX);
    }

    #[test]
    fn a_forge_without_its_url_or_with_a_repository_of_another_shape_is_refused() {
        let forge = |provider, url: Option<&str>, repository: &str| Forge {
            provider,
            url: url.map(str::to_string),
            repository: repository.into(),
            secret_ref: crate::gitops::api::LocalObjectReference { name: "forge".into() },
        };
        assert!(check(&forge(ForgeProvider::Gitea, None, "o/r")).unwrap_err().contains("url is required for Gitea"));
        assert!(check(&forge(ForgeProvider::GitHub, None, "o/r/x")).unwrap_err().contains("is not `owner/name`"));
        assert_eq!(check(&forge(ForgeProvider::GitLab, None, "group/sub/r")), Ok(()));
        assert!(check(&forge(ForgeProvider::GitLab, None, "group//r")).unwrap_err().contains("has an empty part"));
        // Where the token goes: https, or http to this machine; nothing else in the URL.
        let at = |url: &str| check(&forge(ForgeProvider::Gitea, Some(url), "o/r"));
        assert_eq!(at("https://gitea.example.org/api/v1"), Ok(()));
        assert_eq!(at("http://127.0.0.1:3000/api/v1"), Ok(()));
        assert!(at("http://gitea.example.org/api/v1").unwrap_err().contains("is no https:// URL"));
        let userinfo = at("https://bot:s3cret@gitea.example.org/api/v1").unwrap_err();
        assert!(userinfo.contains("has credentials in it") && !userinfo.contains("s3cret"), "{userinfo}");
        assert!(at("https://gitea.example.org/api/v1?x=1").unwrap_err().contains("has a query or a fragment"));
        assert!(at("https://gitea.example.org/api/v1#x").unwrap_err().contains("has a query or a fragment"));
        let client = Client::new(
            &forge(ForgeProvider::GitLab, None, "group/sub/r"),
            (SecretString::from("t"), String::new()),
            Redactor::new(),
        );
        assert_eq!(
            client.first_page(&["needs review".into(), "preview".into()]),
            "https://gitlab.com/api/v4/projects/group%2Fsub%2Fr/merge_requests?state=opened&labels=needs%20review%2Cpreview&per_page=100"
        );
        assert_eq!(client.head_ref(4), "refs/merge-requests/4/head");
    }
}
