//! Who someone is and what they may do, asked of the API server: TokenReview ("whose token is
//! this?") and SubjectAccessReviews ("may this user do this?"), the answers remembered, so that
//! the operator reads from its caches and still shows or does only what the subject could
//! have read or done itself. The ConfigMapSync controller asks for its tenants'
//! ServiceAccounts, the UI for the users signed in to it.
//!
//! An answer is kept for the age given to [`Access::new`] or until any RBAC object changes
//! ([`Access::forget_all`], from an RBAC watch where one runs), whichever comes first. The API
//! server's authorizer learns of an RBAC change from its own watch, which may lag ours: answers
//! given just after a change are kept only briefly ([`SETTLING`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::api::{Api, PostParams};

/// How long after an RBAC change answers may still describe the old rules.
const SETTLING: Duration = Duration::from_secs(5);

/// How many answers are kept before those past their age are dropped.
const KEPT_BEFORE_PRUNING: usize = 4096;

/// A user as the API server authenticated them: what a SubjectAccessReview asks about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    pub user: String,
    pub uid: Option<String>,
    pub groups: Vec<String>,
    /// Extra attributes the authenticator gave (a ServiceAccount token's credential id):
    /// authorizers other than RBAC (webhooks) may decide by them.
    pub extra: BTreeMap<String, Vec<String>>,
}

impl Subject {
    /// A ServiceAccount, as the API server authenticates its tokens.
    pub fn service_account(namespace: &str, name: &str) -> Subject {
        Subject {
            user: format!("system:serviceaccount:{namespace}:{name}"),
            uid: None,
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
            extra: BTreeMap::new(),
        }
    }
}

/// What is asked: may the subject `verb` the `resource` (of API `group`) named `name` ("" for
/// every name) in `namespace` ("" for the cluster scope)?
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    pub verb: &'static str,
    pub group: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

impl Question {
    /// As an access review asks it.
    pub(crate) fn attributes(&self) -> ResourceAttributes {
        ResourceAttributes {
            namespace: (!self.namespace.is_empty()).then(|| self.namespace.clone()),
            verb: Some(self.verb.to_string()),
            group: Some(self.group.clone()),
            resource: Some(self.resource.clone()),
            name: (!self.name.is_empty()).then(|| self.name.clone()),
            ..ResourceAttributes::default()
        }
    }
}

struct Answer {
    allowed: bool,
    /// Until when the answer holds.
    until: tokio::time::Instant,
    /// The RBAC generation it was asked in.
    epoch: u64,
}

/// Remembered SubjectAccessReviews, asked with the operator's own identity.
pub struct Access {
    client: kube::Client,
    /// How long an answer not followed by an RBAC change is kept.
    age: Duration,
    answers: Mutex<HashMap<(Subject, Question), Answer>>,
    /// Bumped by every RBAC change: older answers no longer count.
    epoch: AtomicU64,
    /// When RBAC last changed.
    changed: Mutex<tokio::time::Instant>,
}

impl Access {
    pub fn new(client: kube::Client, age: Duration) -> Self {
        Access {
            client,
            age,
            answers: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            changed: Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Forgets every answer: a Role, ClusterRole or binding changed.
    pub fn forget_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        *self.changed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = tokio::time::Instant::now();
        self.answers.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    }

    /// Whether `subject` may do what `question` asks. RBAC can grant one name or all of them:
    /// the question for every name is asked first, so one answer serves every object of a
    /// namespace, and the named question only when that one is denied.
    pub async fn may(&self, subject: &Subject, question: &Question) -> Result<bool, kube::Error> {
        let every = Question { name: String::new(), ..question.clone() };
        Ok(self.allowed(subject, &every).await?
            || (!question.name.is_empty() && self.allowed(subject, question).await?))
    }

    async fn allowed(&self, subject: &Subject, question: &Question) -> Result<bool, kube::Error> {
        let key = (subject.clone(), question.clone());
        let epoch = self.epoch.load(Ordering::SeqCst);
        if let Some(answer) = self.answers.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&key)
            && answer.epoch == epoch
            && tokio::time::Instant::now() < answer.until
        {
            return Ok(answer.allowed);
        }
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(subject.user.clone()),
                uid: subject.uid.clone(),
                groups: Some(subject.groups.clone()),
                extra: (!subject.extra.is_empty()).then(|| subject.extra.clone()),
                resource_attributes: Some(question.attributes()),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let asked = tokio::time::Instant::now();
        let answer =
            Api::<SubjectAccessReview>::all(self.client.clone()).create(&PostParams::default(), &review).await?;
        let allowed = answer.status.is_some_and(|status| status.allowed);
        // An answer asked before an RBAC change is not kept: it may describe the old rules.
        if self.epoch.load(Ordering::SeqCst) == epoch {
            let changed = *self.changed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let age = if asked.duration_since(changed) < SETTLING { SETTLING.min(self.age) } else { self.age };
            let mut answers = self.answers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            // Each signed-in token is a subject of its own: answers past their age go, or the
            // map would grow with every sign-in for the life of the process.
            if answers.len() >= KEPT_BEFORE_PRUNING {
                let now = tokio::time::Instant::now();
                answers.retain(|_, answer| answer.until > now);
            }
            answers.insert(key, Answer { allowed, until: asked + age, epoch });
        }
        Ok(allowed)
    }
}

/// Who the API server says `token` belongs to (a ServiceAccount's token, an OIDC ID token of
/// an issuer it trusts), or None when it authenticates no one. The token goes in the review's
/// body only: the API server's answer and kube's errors never quote it.
pub async fn review_token(client: &kube::Client, token: &str) -> Result<Option<Subject>, kube::Error> {
    let review =
        TokenReview { spec: TokenReviewSpec { token: token.to_string(), audiences: None }, ..TokenReview::default() };
    let answer = Api::<TokenReview>::all(client.clone()).create(&PostParams::default(), &review).await?;
    let Some(status) = answer.status.filter(|status| status.authenticated == Some(true)) else {
        return Ok(None);
    };
    let user = status.user.unwrap_or_default();
    Ok(user.username.filter(|name| !name.is_empty()).map(|name| Subject {
        user: name,
        uid: user.uid,
        groups: user.groups.unwrap_or_default(),
        extra: user.extra.unwrap_or_default(),
    }))
}
