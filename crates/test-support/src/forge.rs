//! A forge's API on loopback, as GitHub, GitLab or Gitea documents it, for the previews' tests:
//! the open pull requests a test sets (listed a page of [`PAGE`] at a time, whatever the client
//! asks, so that paging is always exercised), the commit statuses posted to it, and every
//! request recorded (method, path and query, headers, body) by the [`TestServer`] it runs on.
//! A request without the token, as the provider takes it, is answered 401.
//!
//! - GitHub: `GET /repos/{o}/{r}/pulls?state=open` (pages by `Link: <…>; rel="next"`), `POST
//!   /repos/{o}/{r}/statuses/{sha}`; `Authorization: Bearer <token>`.
//! - GitLab, under `/api/v4`: `GET /projects/{url-encoded path}/merge_requests?state=opened&labels=a,b`
//!   (every label matched here, as GitLab does; pages by `x-next-page`), `POST
//!   /projects/{path}/statuses/{sha}`; `PRIVATE-TOKEN: <token>`.
//! - Gitea, under `/api/v1`: `GET /repos/{o}/{r}/pulls?state=open` (pages by `Link`), `POST
//!   /repos/{o}/{r}/statuses/{sha}`; `Authorization: token <token>`.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::http_server::{Answer, Received, TestServer};

/// How many pull requests a page holds.
pub const PAGE: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    GitHub,
    GitLab,
    Gitea,
}

impl Provider {
    /// As `spec.previews.forge.provider` names it.
    pub fn name(self) -> &'static str {
        match self {
            Provider::GitHub => "GitHub",
            Provider::GitLab => "GitLab",
            Provider::Gitea => "Gitea",
        }
    }

    /// The ref the forge keeps request `number`'s head at.
    pub fn head_ref(self, number: u64) -> String {
        match self {
            Provider::GitLab => format!("refs/merge-requests/{number}/head"),
            _ => format!("refs/pull/{number}/head"),
        }
    }

    /// The path under the origin the API is served at.
    fn base(self) -> &'static str {
        match self {
            Provider::GitHub => "",
            Provider::GitLab => "/api/v4",
            Provider::Gitea => "/api/v1",
        }
    }
}

/// A pull request the forge holds.
#[derive(Debug, Clone)]
pub struct PullRequest {
    pub number: u64,
    /// Its head branch.
    pub branch: String,
    /// Its head commit.
    pub sha: String,
    pub labels: Vec<String>,
    /// Its head is in another repository (`someone/fork`).
    pub fork: bool,
    pub open: bool,
}

/// A commit status posted: the commit, and the JSON body as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub sha: String,
    pub body: Value,
}

#[derive(Default)]
struct State {
    requests: Vec<PullRequest>,
    statuses: Vec<Status>,
}

pub struct FakeForge {
    pub provider: Provider,
    pub repository: String,
    server: TestServer,
    state: Arc<Mutex<State>>,
}

impl FakeForge {
    /// The forge of `repository` (`owner/name`), which takes `token`.
    pub fn start(provider: Provider, repository: &str, token: &str) -> FakeForge {
        let state = Arc::new(Mutex::new(State::default()));
        let (held, repository_held, token) = (state.clone(), repository.to_string(), token.to_string());
        let server = TestServer::start(move |port, received| {
            let origin = format!("http://127.0.0.1:{port}");
            answer(provider, &repository_held, &token, &origin, &held, received)
        });
        FakeForge { provider, repository: repository.to_string(), server, state }
    }

    /// The API's base URL, as `spec.previews.forge.url` gives it.
    pub fn api(&self) -> String {
        format!("{}{}", self.server.origin(), self.provider.base())
    }

    /// Adds `request`, or replaces the one of its number.
    pub fn set(&self, request: PullRequest) {
        let mut state = self.state.lock().unwrap();
        state.requests.retain(|r| r.number != request.number);
        state.requests.push(request);
        state.requests.sort_by_key(|r| r.number);
    }

    /// The statuses posted so far, in order.
    pub fn statuses(&self) -> Vec<Status> {
        self.state.lock().unwrap().statuses.clone()
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.server.received()
    }
}

fn json_answer(status: &'static str, headers: String, body: &Value) -> Answer {
    (status, format!("Content-Type: application/json\r\n{headers}"), body.to_string().into_bytes())
}

fn answer(
    provider: Provider,
    repository: &str,
    token: &str,
    origin: &str,
    state: &Mutex<State>,
    received: &Received,
) -> Answer {
    let authorized = match provider {
        Provider::GitHub => received.header("authorization") == Some(&format!("Bearer {token}")),
        Provider::GitLab => received.header("private-token") == Some(token),
        Provider::Gitea => received.header("authorization") == Some(&format!("token {token}")),
    };
    if !authorized {
        return json_answer("401 Unauthorized", String::new(), &json!({"message": "Bad credentials"}));
    }
    let (path, query) = received.path.split_once('?').unwrap_or((&received.path, ""));
    let param = |name: &str| query.split('&').find_map(|p| p.strip_prefix(&format!("{name}="))).map(str::to_string);
    let repository_path = match provider {
        Provider::GitLab => format!("{}/projects/{}", provider.base(), repository.replace('/', "%2F")),
        _ => format!("{}/repos/{repository}", provider.base()),
    };
    let Some(rest) = path.strip_prefix(&repository_path) else {
        return json_answer("404 Not Found", String::new(), &json!({"message": "Not Found"}));
    };
    let mut state = state.lock().unwrap();
    match (received.method.as_str(), rest) {
        ("POST", rest) if rest.starts_with("/statuses/") => {
            let sha = rest.trim_start_matches("/statuses/").to_string();
            let body: Value = serde_json::from_slice(&received.body).unwrap_or(Value::Null);
            state.statuses.push(Status { sha, body: body.clone() });
            json_answer("201 Created", String::new(), &body)
        }
        ("GET", "/pulls" | "/merge_requests") => {
            let wanted_state = if provider == Provider::GitLab { "opened" } else { "open" };
            if param("state").as_deref() != Some(wanted_state) {
                return json_answer("400 Bad Request", String::new(), &json!({"message": "state"}));
            }
            // GitLab filters by label names; GitHub's pulls and Gitea (by id) are not asked to.
            let labels: Vec<String> = match provider {
                Provider::GitLab => param("labels")
                    .map(|l| l.replace("%2C", ",").replace("%20", " "))
                    .map(|l| l.split(',').filter(|l| !l.is_empty()).map(str::to_string).collect())
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            let open: Vec<&PullRequest> =
                state.requests.iter().filter(|r| r.open && labels.iter().all(|l| r.labels.contains(l))).collect();
            let page: usize = param("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
            let listed: Vec<Value> =
                open.iter().skip((page - 1) * PAGE).take(PAGE).map(|r| listed(provider, repository, r)).collect();
            let more = open.len() > page * PAGE;
            let headers = match (provider, more) {
                (Provider::GitLab, true) => format!("x-page: {page}\r\nx-next-page: {}\r\n", page + 1),
                (Provider::GitLab, false) => format!("x-page: {page}\r\nx-next-page: \r\n"),
                (_, true) => {
                    let kept: Vec<&str> = query.split('&').filter(|p| !p.starts_with("page=")).collect();
                    let next = format!("{origin}{path}?{}&page={}", kept.join("&"), page + 1);
                    format!("Link: <{next}>; rel=\"next\", <{origin}{path}?page=1>; rel=\"first\"\r\n")
                }
                (_, false) => String::new(),
            };
            json_answer("200 OK", headers, &Value::Array(listed))
        }
        _ => json_answer("404 Not Found", String::new(), &json!({"message": "Not Found"})),
    }
}

/// `request` as `provider` lists it.
fn listed(provider: Provider, repository: &str, request: &PullRequest) -> Value {
    let head_repository = if request.fork {
        format!("someone/{}", repository.rsplit('/').next().unwrap())
    } else {
        repository.to_string()
    };
    match provider {
        Provider::GitLab => json!({
            "iid": request.number, "id": 1000 + request.number, "state": "opened", "labels": request.labels,
            "source_branch": request.branch, "target_branch": "main", "sha": request.sha,
            "source_project_id": if request.fork { 2 } else { 1 }, "target_project_id": 1
        }),
        _ => json!({
            "number": request.number, "state": "open",
            "labels": request.labels.iter().map(|name| json!({"name": name})).collect::<Vec<_>>(),
            "head": {"ref": request.branch, "sha": request.sha, "repo": {"full_name": head_repository}},
            "base": {"ref": "main", "repo": {"full_name": repository}}
        }),
    }
}
