//! What a tenant's ServiceAccount may see, asked with `cluster::Access`'s remembered
//! SubjectAccessReviews, so that a reconcile reads targets from the operator's cache and still
//! reports only what the account could have read itself.
//!
//! An answer is kept for [`ANSWER_AGE`] or until any RBAC object changes (the controller's
//! RBAC watch calls `Access::forget_all`), whichever comes first: a grant or a revocation is
//! seen at once, and authorizers other than RBAC (webhooks) within that age. A ConfigMapSync
//! not in sync asks again on its next retry.

use weaver_cluster::{Access, Question, Subject};

/// How long an answer not followed by an RBAC change is kept.
pub const ANSWER_AGE: std::time::Duration = std::time::Duration::from_secs(480);

/// A ServiceAccount as the API server authenticates it: its user name and groups.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Account {
    pub namespace: String,
    pub name: String,
}

/// The answer to "may the account `get` this ConfigMap?".
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Allowed,
    /// Denied, with the message the API server would have answered the account's own request.
    Denied(String),
}

/// Whether `account` may `verb` the ConfigMap `name` in `namespace`.
pub async fn may(
    access: &Access,
    account: &Account,
    namespace: &str,
    verb: &'static str,
    name: &str,
) -> Result<Verdict, kube::Error> {
    let subject = Subject::service_account(&account.namespace, &account.name);
    let question = Question {
        verb,
        group: String::new(),
        resource: "configmaps".into(),
        namespace: namespace.to_string(),
        name: name.to_string(),
    };
    if access.may(&subject, &question).await? {
        return Ok(Verdict::Allowed);
    }
    // kube-apiserver's own wording for the request the account would have made.
    Ok(Verdict::Denied(format!(
        "configmaps {name:?} is forbidden: User {:?} cannot {verb} resource \"configmaps\" in API group \"\" in the namespace {namespace:?}",
        subject.user
    )))
}
