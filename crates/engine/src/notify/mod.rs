//! Notifications: what an environment's webhooks (`notifications:`, see
//! `weaver_project::notifications`) are told of an apply or of drift, in weaver's JSON document
//! (`payload.rs`, schema in docs/src/reference/json-output.md) or Slack's incoming-webhook
//! format, and sending it: a POST retried with backoff (`weaver_net::retry`) until the
//! notification's `timeout`. Sending never fails the run: it ends in a [`Delivery`] for the
//! caller to report. The URL holds a credential: no message here ever quotes it, nor any
//! error of the HTTP client (which may).

mod payload;
mod slack;

use std::time::{Duration, Instant};

use ureq::http::StatusCode;

pub use payload::Message;
use weaver_core::error::Location;
use weaver_net::retry::RetryPolicy;
use weaver_project::notifications::{EventKind, Kind, Notification};

/// How one notification went.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The notification's name, and where it is written.
    pub name: String,
    pub at: Location,
    pub event: EventKind,
    pub result: Result<Sent, Failure>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub attempts: u32,
}

/// Why a notification was not delivered: never the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: String,
    /// Requests sent (0 when none could be: no URL).
    pub attempts: u32,
}

impl Failure {
    /// Nothing was sent, for `reason`.
    pub fn unsent(reason: String) -> Failure {
        Failure { reason, attempts: 0 }
    }
}

/// What went wrong with one request, and whether another may go better.
struct Attempt {
    reason: String,
    retry: bool,
    /// What the server asked to wait (`Retry-After`, in seconds), if anything.
    asked: Duration,
}

/// Sends `message` to `url` as `notification` formats it, retrying what may pass (a refused or
/// dropped connection, a timeout of one request, 408, 429 and 5xx answers) with backoff until
/// the notification's `timeout` has passed since the first request. Blocking.
pub fn send(notification: &Notification, url: &str, message: &Message) -> Delivery {
    let deliver = |result| Delivery {
        name: notification.name.clone(),
        at: notification.at.clone(),
        event: message.event,
        result,
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return deliver(Err(Failure::unsent(format!(
            "the URL in {} is not an http:// or https:// URL",
            notification.url.describe()
        ))));
    }
    let body = match notification.kind {
        Kind::Json => message.json(&notification.name),
        Kind::Slack => slack::body(message),
    };
    deliver(post(url, &body, notification.timeout))
}

/// Backoff between attempts: 500 ms doubling to 5 s, for the notification's timeout.
fn policy(timeout: Duration) -> RetryPolicy {
    RetryPolicy { budget: timeout, base: Duration::from_millis(500), cap: Duration::from_secs(5) }
}

fn post(url: &str, body: &[u8], timeout: Duration) -> Result<Sent, Failure> {
    let policy = policy(timeout);
    let started = Instant::now();
    let deadline = started + policy.budget;
    // A webhook answers where it is asked: a redirect is an answer to report, not to follow
    // (a POST followed would become a GET, and carry the body nowhere).
    let agent = weaver_net::http::agent(None, timeout, 0);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let result = agent
            .post(url)
            .header("Content-Type", "application/json")
            .header("User-Agent", concat!("weaver/", env!("CARGO_PKG_VERSION")))
            .config()
            .timeout_global(Some(remaining))
            .build()
            .send(body);
        let failed = match result {
            Ok(response) if response.status().is_success() => return Ok(Sent { attempts }),
            Ok(response) => answered(response.status(), response.headers()),
            Err(err) => not_answered(&err),
        };
        let now = Instant::now();
        let gave_up = |why: &str| Failure {
            reason: format!("{} ({} attempt(s) in {:.1?}{why})", failed.reason, attempts, now - started),
            attempts,
        };
        if !failed.retry {
            return Err(gave_up(""));
        }
        // No attempt at the deadline: one that cannot last is not worth sending.
        let wait = policy.delay(attempts, failed.asked);
        if now + wait >= deadline {
            let timeout = weaver_project::humanize(timeout);
            return Err(gave_up(&format!("; no time left for another within the timeout of {timeout}")));
        }
        std::thread::sleep(wait);
    }
}

/// A webhook's answer that is not a success.
fn answered(status: StatusCode, headers: &ureq::http::HeaderMap) -> Attempt {
    let code = status.as_u16();
    let retry = matches!(code, 408 | 429) || status.is_server_error();
    let asked = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| weaver_net::retry::retry_after(v, jiff::Timestamp::now()))
        .unwrap_or(Duration::ZERO);
    let reason = match status.canonical_reason() {
        Some(text) => format!("the webhook answered {code} {text}"),
        None => format!("the webhook answered {code}"),
    };
    Attempt { reason, retry, asked }
}

/// A request that got no answer. Only the error's kind is told: ureq's messages may quote the
/// URL (`BadUri`, `RequireHttpsOnly`).
fn not_answered(err: &ureq::Error) -> Attempt {
    use std::io::ErrorKind;
    use ureq::Error;
    let (reason, retry) = match err {
        Error::Timeout(_) => ("the request timed out".to_string(), true),
        Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused => ("the connection was refused".to_string(), true),
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => {
                ("the connection was closed before an answer".to_string(), true)
            }
            ErrorKind::UnexpectedEof => ("the connection was closed before an answer".to_string(), true),
            ErrorKind::TimedOut | ErrorKind::WouldBlock => ("the request timed out".to_string(), true),
            kind => (format!("the request failed ({kind})"), true),
        },
        Error::HostNotFound => ("the webhook's host was not found".to_string(), true),
        Error::ConnectionFailed => ("the connection failed".to_string(), true),
        Error::BadUri(_) | Error::Http(_) => ("the URL is not a valid URL".to_string(), false),
        Error::Tls(_) | Error::Rustls(_) | Error::Pem(_) => {
            ("the TLS handshake failed (is the webhook's certificate one webpki's roots trust?)".to_string(), false)
        }
        Error::Protocol(_) => ("the webhook's answer was not HTTP".to_string(), false),
        Error::TooManyRedirects | Error::RedirectFailed => {
            ("the webhook answered with a redirect, which is not followed".to_string(), false)
        }
        _ => ("the request failed".to_string(), false),
    };
    Attempt { reason, retry, asked: Duration::ZERO }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ureq's own messages quote the URL for some errors; what weaver says never does.
    #[test]
    fn a_url_ureq_refuses_is_not_quoted() {
        let secret = "T0KEN-in-the-path";
        for url in [format!("http://[not-a-host/{secret}"), format!("http://exa mple.org/{secret}")] {
            let failure = post(&url, b"{}", Duration::from_secs(1)).unwrap_err();
            assert!(!failure.reason.contains(secret), "{}", failure.reason);
            assert_eq!(failure.attempts, 1, "not retried: {}", failure.reason);
        }
        // The URLs above get messages from ureq that happen not to quote them; these errors
        // do quote what they are given, and what weaver says of them still does not.
        let quoting = [
            ureq::Error::BadUri(format!("http://{secret} is missing host")),
            ureq::Error::RequireHttpsOnly(format!("http://example.org/{secret}")),
            ureq::Error::Io(std::io::Error::other(format!("cannot reach example.org/{secret}"))),
            ureq::Error::Io(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, secret)),
            ureq::Error::Other(format!("http://example.org/{secret}").into()),
        ];
        for err in quoting {
            assert!(err.to_string().contains(secret), "the case quotes the URL: {err}");
            let reason = not_answered(&err).reason;
            assert!(!reason.contains(secret), "{reason}");
        }
    }

    #[test]
    fn only_what_may_pass_is_retried() {
        let headers = ureq::http::HeaderMap::new();
        for (code, retry) in
            [(500, true), (503, true), (429, true), (408, true), (404, false), (403, false), (301, false)]
        {
            let attempt = answered(StatusCode::from_u16(code).unwrap(), &headers);
            assert_eq!(attempt.retry, retry, "{code}");
        }
        let mut asking = ureq::http::HeaderMap::new();
        asking.insert("retry-after", "3".parse().unwrap());
        let attempt = answered(StatusCode::TOO_MANY_REQUESTS, &asking);
        assert_eq!(
            (attempt.asked, attempt.reason.as_str()),
            (Duration::from_secs(3), "the webhook answered 429 Too Many Requests")
        );
    }
}
