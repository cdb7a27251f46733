//! What a tenant's ServiceAccount may see, asked of the API server with SubjectAccessReviews and
//! remembered, so that a reconcile reads targets from the operator's cache and still reports
//! only what the account could have read itself.
//!
//! An answer is kept for [`ANSWER_AGE`] or until any RBAC object changes
//! ([`Access::forget_all`], from the controller's RBAC watch), whichever comes first: a grant or
//! a revocation is seen at once, and authorizers other than RBAC (webhooks) within that age. The API server's authorizer learns of an RBAC change
//! from its own watch, which may lag the operator's: answers given just after a change are kept
//! only briefly ([`SETTLING`]), and a ConfigMapSync not in sync asks again on its next retry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::api::{Api, PostParams};

/// How long an answer not followed by an RBAC change is kept.
const ANSWER_AGE: std::time::Duration = std::time::Duration::from_secs(480);

/// How long after an RBAC change answers may still describe the old rules.
const SETTLING: std::time::Duration = std::time::Duration::from_secs(5);

/// A ServiceAccount as the API server authenticates it: its user name and groups.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Account {
    pub namespace: String,
    pub name: String,
}

impl Account {
    pub fn user(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }

    fn groups(&self) -> Vec<String> {
        vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{}", self.namespace),
            "system:authenticated".into(),
        ]
    }
}

/// The answer to "may the account `get` this ConfigMap?".
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Allowed,
    /// Denied, with the message the API server would have answered the account's own request.
    Denied(String),
}

/// (account, namespace, verb, ConfigMap name or "" for every name)
type Question = (Account, String, &'static str, String);

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
    answers: Mutex<HashMap<Question, Answer>>,
    /// Bumped by every RBAC change: older answers no longer count.
    epoch: AtomicU64,
    /// When RBAC last changed.
    changed: Mutex<tokio::time::Instant>,
}

impl Access {
    pub fn new(client: kube::Client) -> Self {
        Access {
            client,
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

    /// Whether `account` may `verb` the ConfigMap `name` in `namespace`. RBAC can grant one name
    /// or all of them: the question for every name is asked first, so one answer serves every
    /// ConfigMap of a namespace, and the named question only when that one is denied.
    pub async fn may(
        &self,
        account: &Account,
        namespace: &str,
        verb: &'static str,
        name: &str,
    ) -> Result<Verdict, kube::Error> {
        if self.allowed(account, namespace, verb, "").await? || self.allowed(account, namespace, verb, name).await? {
            return Ok(Verdict::Allowed);
        }
        // kube-apiserver's own wording for the request the account would have made.
        Ok(Verdict::Denied(format!(
            "configmaps {name:?} is forbidden: User {:?} cannot {verb} resource \"configmaps\" in API group \"\" in the namespace {namespace:?}",
            account.user()
        )))
    }

    async fn allowed(
        &self,
        account: &Account,
        namespace: &str,
        verb: &'static str,
        name: &str,
    ) -> Result<bool, kube::Error> {
        let question: Question = (account.clone(), namespace.to_string(), verb, name.to_string());
        let epoch = self.epoch.load(Ordering::SeqCst);
        if let Some(answer) = self.answers.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&question)
            && answer.epoch == epoch
            && tokio::time::Instant::now() < answer.until
        {
            return Ok(answer.allowed);
        }
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(account.user()),
                groups: Some(account.groups()),
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(namespace.to_string()),
                    verb: Some(verb.to_string()),
                    group: Some(String::new()),
                    resource: Some("configmaps".into()),
                    name: (!name.is_empty()).then(|| name.to_string()),
                    ..ResourceAttributes::default()
                }),
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
            let until = if asked.duration_since(changed) < SETTLING { asked + SETTLING } else { asked + ANSWER_AGE };
            self.answers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(question, Answer { allowed, until, epoch });
        }
        Ok(allowed)
    }
}
