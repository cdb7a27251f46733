//! Who a request comes from and what it may do, as kube-apiserver decides it:
//! bearer tokens (the static users and the tokens TokenRequest issues), the
//! request attributes `RequestInfoFactory` resolves, and the RBAC authorizer
//! (bindings, rule matching, the escalation check on RBAC writes).

use super::{ApiRequest, Cluster, ForbidRule};
use crate::error::{ApiError, GroupResource};
use crate::store::ObjKey;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

const RBAC: &str = "rbac.authorization.k8s.io";

/// The audience tokens are issued for unless the request names others: a
/// kubeadm or kind cluster's `--api-audiences`.
pub const AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// An authenticated (or anonymous) identity.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    pub fn new(name: &str, groups: &[&str]) -> User {
        User { name: name.into(), groups: groups.iter().map(|g| g.to_string()).collect() }
    }

    pub fn anonymous() -> User {
        User::new("system:anonymous", &["system:unauthenticated"])
    }

    /// The ServiceAccount user a token authenticates as.
    pub fn service_account(namespace: &str, name: &str) -> User {
        User {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }

    /// `system:masters` passes every authorization check (kube-apiserver's
    /// privileged-group authorizer), the escalation check included.
    fn is_admin(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }
}

/// A token issued by TokenRequest, bound to its ServiceAccount's uid.
pub struct IssuedToken {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub expires: jiff::Timestamp,
    pub audiences: Vec<String>,
    /// The token's `jti`, which a TokenReview reports as its credential id.
    pub id: String,
}

/// 32 bytes from the OS's random source, URL-safe base64: unguessable.
pub fn random_token() -> String {
    use base64::Engine;
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom for a token");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What a request asks to do, as `RequestInfoFactory.NewRequestInfo` resolves
/// it from the path, method and query alone (before routing, so a refused
/// request gets 403 even for a resource that does not exist).
#[derive(Debug, PartialEq)]
pub struct Attributes {
    pub verb: String,
    pub resource_request: bool,
    pub path: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
}

impl Attributes {
    pub fn of(req: &ApiRequest) -> Attributes {
        let parts: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        let method_verb = match req.method.as_str() {
            "POST" => "create",
            "GET" | "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "",
        };
        let mut a = Attributes {
            verb: req.method.to_lowercase(),
            resource_request: false,
            path: req.path.clone(),
            group: String::new(),
            resource: String::new(),
            subresource: String::new(),
            namespace: String::new(),
            name: String::new(),
        };
        // `/api/<v>/<resource>…` and `/apis/<g>/<v>/<resource>…`; anything shorter is discovery.
        let rest = match parts.as_slice() {
            ["api", _, rest @ ..] if !rest.is_empty() => rest,
            ["apis", g, _, rest @ ..] if !rest.is_empty() => {
                a.group = g.to_string();
                rest
            }
            _ => return a,
        };
        a.resource_request = true;
        a.verb = method_verb.into();
        let mut rest = rest;
        if rest.len() >= 2 && rest[0] == "namespaces" {
            // `namespaces/<ns>` is itself the namespace (and so is its `status`/`finalize`).
            a.namespace = rest[1].into();
            if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
                rest = &rest[2..];
            }
        }
        a.resource = rest[0].into();
        a.name = rest.get(1).map(|s| s.to_string()).unwrap_or_default();
        a.subresource = rest.get(2).map(|s| s.to_string()).unwrap_or_default();
        let watch = matches!(req.param("watch"), Some("true" | "1"));
        match a.verb.as_str() {
            "get" if a.name.is_empty() => a.verb = if watch { "watch" } else { "list" }.into(),
            "get" if watch => a.verb = "watch".into(),
            "delete" if a.name.is_empty() => a.verb = "deletecollection".into(),
            _ => {}
        }
        // A list or watch of one object by `metadata.name` is authorized for that name.
        if a.name.is_empty()
            && matches!(a.verb.as_str(), "list" | "watch")
            && let Some(name) = exact_name(req.param("fieldSelector").unwrap_or_default())
        {
            a.name = name;
        }
        a
    }

    /// `resource` or `resource/subresource`.
    fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }

    /// The 403 kube-apiserver answers (`responsewriters.Forbidden`), with the
    /// authorizer's reason appended when it has one.
    fn forbidden(&self, user: &User, reason: &str) -> ApiError {
        let why = if !self.resource_request {
            format!("User {:?} cannot {} path {:?}", user.name, self.verb, self.path)
        } else if self.namespace.is_empty() {
            format!(
                "User {:?} cannot {} resource {:?} in API group {:?} at the cluster scope",
                user.name,
                self.verb,
                self.combined_resource(),
                self.group
            )
        } else {
            format!(
                "User {:?} cannot {} resource {:?} in API group {:?} in the namespace {:?}",
                user.name,
                self.verb,
                self.combined_resource(),
                self.group,
                self.namespace
            )
        };
        let why = if reason.is_empty() { why } else { format!("{why}: {reason}") };
        let gr = GroupResource { group: self.group.clone(), resource: self.resource.clone() };
        ApiError::forbidden(&gr, &self.name, &why)
    }
}

/// The name a field selector requires exactly (`metadata.name=x` or `==x`).
fn exact_name(selector: &str) -> Option<String> {
    selector.split(',').find_map(|term| {
        let (field, value) = term.split_once("==").or_else(|| term.split_once('='))?;
        (field.trim() == "metadata.name" && !value.starts_with('=')).then(|| value.trim().to_string())
    })
}

/// One RBAC `PolicyRule`.
#[derive(Clone, Debug, Default, PartialEq)]
struct Rule {
    verbs: Vec<String>,
    api_groups: Vec<String>,
    resources: Vec<String>,
    resource_names: Vec<String>,
    non_resource_urls: Vec<String>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect()).unwrap_or_default()
}

impl Rule {
    fn parse(v: &Value) -> Rule {
        Rule {
            verbs: strings(&v["verbs"]),
            api_groups: strings(&v["apiGroups"]),
            resources: strings(&v["resources"]),
            resource_names: strings(&v["resourceNames"]),
            non_resource_urls: strings(&v["nonResourceURLs"]),
        }
    }

    fn of_role(role: &Value) -> Vec<Rule> {
        role["rules"].as_array().map(|r| r.iter().map(Rule::parse).collect()).unwrap_or_default()
    }

    fn non_resource(urls: &[&str]) -> Rule {
        Rule {
            verbs: vec!["get".into()],
            non_resource_urls: urls.iter().map(|u| u.to_string()).collect(),
            ..Rule::default()
        }
    }

    /// `rbac.RuleAllows`.
    fn allows(&self, a: &Attributes) -> bool {
        let verb = self.verbs.iter().any(|v| v == "*" || *v == a.verb);
        if !a.resource_request {
            return verb
                && self.non_resource_urls.iter().any(|u| {
                    u == "*" || *u == a.path || u.strip_suffix('*').is_some_and(|prefix| a.path.starts_with(prefix))
                });
        }
        let combined = a.combined_resource();
        verb && self.api_groups.iter().any(|g| g == "*" || *g == a.group)
            && self.resources.iter().any(|r| {
                r == "*"
                    || *r == combined
                    || (!a.subresource.is_empty() && r.strip_prefix("*/") == Some(a.subresource.as_str()))
            })
            && (self.resource_names.is_empty() || self.resource_names.contains(&a.name))
    }

    /// The rule as `PolicyRule.CompactString` prints it in escalation errors
    /// (Go's `%q` of a string slice: `["a" "b"]`).
    fn compact(&self) -> String {
        let mut fields = Vec::new();
        for (name, v) in [
            ("APIGroups", &self.api_groups),
            ("Resources", &self.resources),
            ("NonResourceURLs", &self.non_resource_urls),
            ("ResourceNames", &self.resource_names),
            ("Verbs", &self.verbs),
        ] {
            if !v.is_empty() {
                let quoted: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
                fields.push(format!("{name}:[{}]", quoted.join(" ")));
            }
        }
        format!("{{{}}}", fields.join(", "))
    }

    /// The rule broken into rules of one group, resource, verb and name (or
    /// URL and verb), in `BreakdownRule`'s order.
    fn breakdown(&self) -> Vec<Rule> {
        let one = |v: &String| vec![v.clone()];
        let mut out = Vec::new();
        for group in &self.api_groups {
            for resource in &self.resources {
                for verb in &self.verbs {
                    let simple =
                        Rule { verbs: one(verb), api_groups: one(group), resources: one(resource), ..Rule::default() };
                    if self.resource_names.is_empty() {
                        out.push(simple);
                    } else {
                        out.extend(
                            self.resource_names.iter().map(|n| Rule { resource_names: one(n), ..simple.clone() }),
                        );
                    }
                }
            }
        }
        for url in &self.non_resource_urls {
            out.extend(self.verbs.iter().map(|v| Rule {
                verbs: one(v),
                non_resource_urls: one(url),
                ..Rule::default()
            }));
        }
        out
    }

    /// Whether holding `self` covers the simple rule `r` (`validation.ruleCovers`):
    /// wildcards in `r` are only covered by wildcards.
    fn covers(&self, r: &Rule) -> bool {
        let has = |list: &[String], v: &String| list.iter().any(|x| x == "*" || x == v);
        let verb = r.verbs.iter().all(|v| has(&self.verbs, v));
        if !r.non_resource_urls.is_empty() {
            return verb
                && r.non_resource_urls.iter().all(|url| {
                    self.non_resource_urls.iter().any(|u| {
                        u == "*" || u == url || u.strip_suffix('*').is_some_and(|prefix| url.starts_with(prefix))
                    })
                });
        }
        let resource = r.resources.iter().all(|res| {
            has(&self.resources, res)
                || res.split_once('/').is_some_and(|(_, sub)| self.resources.iter().any(|x| *x == format!("*/{sub}")))
        });
        let names = self.resource_names.is_empty()
            || (!r.resource_names.is_empty() && r.resource_names.iter().all(|n| self.resource_names.contains(n)));
        verb && r.api_groups.iter().all(|g| has(&self.api_groups, g)) && resource && names
    }
}

/// `system:public-info-viewer` and `system:discovery`: the bootstrap policy
/// every real cluster has, granting health, version and discovery.
fn bootstrap_rules(user: &User) -> Vec<Rule> {
    let in_group = |g: &str| user.groups.iter().any(|x| x == g);
    let mut rules = Vec::new();
    if in_group("system:authenticated") || in_group("system:unauthenticated") {
        rules.push(Rule::non_resource(&["/healthz", "/livez", "/readyz", "/version", "/version/"]));
    }
    if in_group("system:authenticated") {
        // `system:basic-user`: anyone signed in may ask what they themselves may do.
        rules.push(Rule {
            verbs: vec!["create".into()],
            api_groups: vec!["authentication.k8s.io".into(), "authorization.k8s.io".into()],
            resources: vec![
                "selfsubjectaccessreviews".into(),
                "selfsubjectrulesreviews".into(),
                "selfsubjectreviews".into(),
            ],
            ..Rule::default()
        });
        rules.push(Rule::non_resource(&[
            "/api",
            "/api/*",
            "/apis",
            "/apis/*",
            "/healthz",
            "/livez",
            "/openapi",
            "/openapi/*",
            "/readyz",
            "/version",
            "/version/",
        ]));
    }
    rules
}

/// `appliesToUser`: a ServiceAccount subject without a namespace means the binding's.
fn applies_to(user: &User, subjects: &Value, binding_namespace: &str) -> bool {
    subjects.as_array().into_iter().flatten().any(|s| {
        let name = s["name"].as_str().unwrap_or_default();
        match s["kind"].as_str().unwrap_or_default() {
            "User" => user.name == name,
            "Group" => user.groups.iter().any(|g| g == name),
            "ServiceAccount" => {
                let ns = s["namespace"].as_str().filter(|n| !n.is_empty()).unwrap_or(binding_namespace);
                !ns.is_empty() && user.name == format!("system:serviceaccount:{ns}:{name}")
            }
            _ => false,
        }
    })
}

fn rbac_key(resource: &str, namespace: &str, name: &str) -> ObjKey {
    ObjKey { group: RBAC.into(), resource: resource.into(), namespace: namespace.into(), name: name.into() }
}

impl Cluster {
    /// The user a TokenRequest token stands for, while it has not expired, its
    /// ServiceAccount still exists with the same uid, and it is meant for this server.
    pub fn authenticate(&self, token: &str) -> Option<User> {
        let t = self.tokens.get(token)?;
        let sa = self.objects().get(&ObjKey {
            group: String::new(),
            resource: "serviceaccounts".into(),
            namespace: t.namespace.clone(),
            name: t.name.clone(),
        })?;
        let valid = jiff::Timestamp::now() < t.expires
            && sa["metadata"]["uid"].as_str() == Some(t.uid.as_str())
            && sa["metadata"].get("deletionTimestamp").is_none()
            && t.audiences.iter().any(|a| a == AUDIENCE);
        valid.then(|| User::service_account(&t.namespace, &t.name))
    }

    /// The rules `user` holds in `namespace` (cluster-wide ones only for ""),
    /// and the roles its bindings reference that do not exist (`role` or
    /// `clusterrole`, and the name).
    fn rules_for(&self, user: &User, namespace: &str) -> (Vec<Rule>, Vec<(&'static str, String)>) {
        let mut rules = bootstrap_rules(user);
        let mut missing = Vec::new();
        let mut role_rules = |kind: &str, role_ns: &str, name: &str| {
            let (resource, singular, ns) =
                if kind == "ClusterRole" { ("clusterroles", "clusterrole", "") } else { ("roles", "role", role_ns) };
            match self.objects().get(&rbac_key(resource, ns, name)) {
                Some(role) => rules.extend(Rule::of_role(role)),
                None => missing.push((singular, name.to_string())),
            }
        };
        for (_, b) in self.objects().of_resource(RBAC, "clusterrolebindings", None) {
            if applies_to(user, &b["subjects"], "") && b["roleRef"]["kind"] == "ClusterRole" {
                role_rules("ClusterRole", "", b["roleRef"]["name"].as_str().unwrap_or_default());
            }
        }
        if !namespace.is_empty() {
            for (_, b) in self.objects().of_resource(RBAC, "rolebindings", Some(namespace)) {
                if applies_to(user, &b["subjects"], namespace) {
                    let kind = b["roleRef"]["kind"].as_str().unwrap_or_default();
                    role_rules(kind, namespace, b["roleRef"]["name"].as_str().unwrap_or_default());
                }
            }
        }
        (rules, missing)
    }

    /// The user `user` acts as with `Impersonate-User: name` and `Impersonate-Group`s
    /// (kube-apiserver's impersonation filter): each needs the verb `impersonate` on `users`
    /// (a ServiceAccount's name: on that `serviceaccounts` object) and on `groups`; the
    /// impersonated user is `system:authenticated`, with a ServiceAccount's groups when none
    /// are given.
    pub fn impersonate(&self, user: &User, name: &str, groups: &[String]) -> Result<User, ApiError> {
        let ask = |resource: &str, namespace: &str, object: &str| Attributes {
            verb: "impersonate".into(),
            resource_request: true,
            path: String::new(),
            group: String::new(),
            resource: resource.into(),
            subresource: String::new(),
            namespace: namespace.into(),
            name: object.into(),
        };
        let service_account = name.strip_prefix("system:serviceaccount:").and_then(|rest| rest.split_once(':'));
        let mut asked = vec![match service_account {
            Some((namespace, account)) => ask("serviceaccounts", namespace, account),
            None => ask("users", "", name),
        }];
        asked.extend(groups.iter().map(|group| ask("groups", "", group)));
        for attributes in &asked {
            if let Err(reason) = self.decide(user, attributes) {
                return Err(attributes.forbidden(user, &reason));
            }
        }
        let mut impersonated = match service_account {
            Some((namespace, account)) if groups.is_empty() => User::service_account(namespace, account),
            _ => User { name: name.to_string(), groups: groups.to_vec() },
        };
        if !impersonated.groups.iter().any(|g| g == "system:authenticated") {
            impersonated.groups.push("system:authenticated".into());
        }
        Ok(impersonated)
    }

    /// Authorizes a request: `forbid` rules refuse anyone, `system:masters`
    /// may do anything else, everyone else gets what RBAC grants.
    pub fn authorize(&self, req: &ApiRequest) -> Result<(), ApiError> {
        let a = Attributes::of(req);
        match self.decide(&req.user, &a) {
            Ok(()) => Ok(()),
            Err(reason) => Err(a.forbidden(&req.user, &reason)),
        }
    }

    /// What the authorizer chain decides for `user` doing `a`: allowed, or denied with the
    /// authorizer's reason (empty when it has none). Requests and SubjectAccessReviews share it.
    pub fn decide(&self, user: &User, a: &Attributes) -> Result<(), String> {
        if self.forbidden.iter().any(|r| forbids(r, a)) {
            return Err(String::new());
        }
        if user.is_admin() {
            return Ok(());
        }
        let (rules, missing) = self.rules_for(user, &a.namespace);
        if rules.iter().any(|r| r.allows(a)) {
            return Ok(());
        }
        // The authorizer's role lister names a missing role `role.rbac…` (`clusterrole.rbac…`).
        let errors: Vec<String> =
            missing.iter().map(|(kind, name)| format!("{kind}.{RBAC} {name:?} not found")).collect();
        Err(match errors.as_slice() {
            [] => String::new(),
            [one] => format!("RBAC: {one}"),
            many => format!("RBAC: [{}]", many.join(", ")),
        })
    }

    /// The RBAC escalation check on writing a Role, ClusterRole or binding
    /// (`ConfirmNoEscalation`): a non-admin may only grant what it holds itself,
    /// unless it may `escalate` the role, or `bind` the role a binding references.
    pub fn confirm_no_escalation(&self, user: &User, group: &str, resource: &str, obj: &Value) -> Result<(), ApiError> {
        if group != RBAC || user.is_admin() {
            return Ok(());
        }
        let namespace = obj["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        let gr = GroupResource { group: RBAC.into(), resource: resource.into() };
        let may = |verb: &str, resource: &str, name: &str| {
            let a = Attributes {
                verb: verb.into(),
                resource_request: true,
                path: String::new(),
                group: RBAC.into(),
                resource: resource.into(),
                subresource: String::new(),
                namespace: namespace.into(),
                name: name.into(),
            };
            self.rules_for(user, namespace).0.iter().any(|r| r.allows(&a))
        };
        let granted = match resource {
            "roles" | "clusterroles" => {
                if may("escalate", resource, name) {
                    return Ok(());
                }
                Rule::of_role(obj)
            }
            "rolebindings" | "clusterrolebindings" => {
                let role_name = obj["roleRef"]["name"].as_str().unwrap_or_default();
                let (role_resource, role_ns) =
                    if obj["roleRef"]["kind"] == "ClusterRole" { ("clusterroles", "") } else { ("roles", namespace) };
                if may("bind", role_resource, role_name) {
                    return Ok(());
                }
                let role = self.objects().get(&rbac_key(role_resource, role_ns, role_name)).ok_or_else(|| {
                    ApiError::not_found(
                        &GroupResource { group: RBAC.into(), resource: role_resource.into() },
                        role_name,
                    )
                })?;
                Rule::of_role(role)
            }
            _ => return Ok(()),
        };
        let (held, missing_roles) = self.rules_for(user, namespace);
        let mut missing: Vec<Rule> = Vec::new();
        for r in granted.iter().flat_map(Rule::breakdown) {
            if held.iter().any(|h| h.covers(&r)) {
                continue;
            }
            // `CompactRules`: plain resource rules differing only by verb become one line.
            let plain = |m: &Rule| m.resource_names.is_empty() && m.non_resource_urls.is_empty();
            match missing
                .iter_mut()
                .find(|m| plain(m) && plain(&r) && (&m.api_groups, &m.resources) == (&r.api_groups, &r.resources))
            {
                Some(m) => m.verbs.extend(r.verbs),
                None => missing.push(r),
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let groups: Vec<String> = user.groups.iter().map(|g| format!("{g:?}")).collect();
        // A sorted set of lines, as `sets.String.List()` gives them.
        let lines: BTreeSet<String> = missing.iter().map(Rule::compact).collect();
        let lines: Vec<String> = lines.into_iter().collect();
        let mut why = format!(
            "user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
            user.name,
            groups.join(" "),
            lines.join("\n")
        );
        if !missing_roles.is_empty() {
            // Here a missing role is named after the resource being written, as a 1.32 server does.
            let errors: Vec<String> =
                missing_roles.iter().map(|(_, name)| format!("{gr} {name:?} not found")).collect();
            why.push_str(&format!("; resolution errors: [{}]", errors.join(" ")));
        }
        Err(ApiError::forbidden(&gr, name, &why))
    }
}

/// Whether a `forbid` rule refuses the request.
fn forbids(r: &ForbidRule, a: &Attributes) -> bool {
    a.resource_request
        && (r.verb == a.verb || r.verb == "*")
        && (r.resource == a.combined_resource() || r.resource == a.resource || r.resource == "*")
        && r.namespace.as_ref().is_none_or(|ns| *ns == a.namespace)
}

/// The static users of the kubeconfig: `fake-user` is the admin, as a real
/// cluster's admin is in `system:masters`; `other-user` is a plain user that
/// RBAC authorizes.
pub fn static_users() -> HashMap<String, User> {
    HashMap::from([
        (crate::TOKEN.to_string(), User::new("fake-user", &["system:masters", "system:authenticated"])),
        (crate::OTHER_TOKEN.to_string(), User::new("other-user", &["system:authenticated"])),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str, query: &[(&str, &str)]) -> ApiRequest {
        ApiRequest {
            method: method.into(),
            path: path.into(),
            query: query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            content_type: None,
            accept: None,
            user_agent: String::new(),
            user: User::anonymous(),
            body: Vec::new(),
        }
    }

    fn attrs(method: &str, path: &str, query: &[(&str, &str)]) -> (String, String, String, String, String, String) {
        let a = Attributes::of(&req(method, path, query));
        (a.verb, a.group, a.resource, a.subresource, a.namespace, a.name)
    }

    fn t(v: &str, g: &str, r: &str, s: &str, ns: &str, n: &str) -> (String, String, String, String, String, String) {
        (v.into(), g.into(), r.into(), s.into(), ns.into(), n.into())
    }

    #[test]
    fn request_attributes_are_resolved_like_request_info() {
        assert_eq!(attrs("GET", "/api/v1/namespaces/a/configmaps", &[]), t("list", "", "configmaps", "", "a", ""));
        assert_eq!(attrs("GET", "/api/v1/configmaps", &[("watch", "true")]), t("watch", "", "configmaps", "", "", ""));
        assert_eq!(
            attrs("GET", "/api/v1/namespaces/a/configmaps", &[("watch", "1"), ("fieldSelector", "metadata.name=x")]),
            t("watch", "", "configmaps", "", "a", "x")
        );
        assert_eq!(
            attrs("POST", "/api/v1/namespaces/a/serviceaccounts/sa/token", &[]),
            t("create", "", "serviceaccounts", "token", "a", "sa")
        );
        assert_eq!(
            attrs("PATCH", "/apis/apps/v1/namespaces/a/deployments/web/status", &[]),
            t("patch", "apps", "deployments", "status", "a", "web")
        );
        assert_eq!(attrs("GET", "/api/v1/namespaces/a", &[]), t("get", "", "namespaces", "", "a", "a"));
        assert_eq!(attrs("GET", "/api/v1/namespaces", &[]), t("list", "", "namespaces", "", "", ""));
        assert_eq!(
            attrs("PUT", "/api/v1/namespaces/a/finalize", &[]),
            t("update", "", "namespaces", "finalize", "a", "a")
        );
        assert_eq!(
            attrs("DELETE", "/apis/rbac.authorization.k8s.io/v1/clusterroles", &[]),
            t("deletecollection", "rbac.authorization.k8s.io", "clusterroles", "", "", "")
        );
        let discovery = Attributes::of(&req("GET", "/apis/apps/v1", &[]));
        assert!(!discovery.resource_request);
        assert_eq!((discovery.verb.as_str(), discovery.path.as_str()), ("get", "/apis/apps/v1"));
    }

    #[test]
    fn rules_match_as_rbac_does() {
        let rule = |v: Value| Rule::parse(&v);
        let a = |method: &str, path: &str| Attributes::of(&req(method, path, &[]));
        let status = rule(serde_json::json!({"apiGroups": ["apps"], "resources": ["*/status"], "verbs": ["get"]}));
        assert!(status.allows(&a("GET", "/apis/apps/v1/namespaces/x/deployments/web/status")));
        assert!(!status.allows(&a("GET", "/apis/apps/v1/namespaces/x/deployments/web")));
        let named = rule(
            serde_json::json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["*"]}),
        );
        assert!(named.allows(&a("GET", "/api/v1/namespaces/x/configmaps/a")));
        assert!(!named.allows(&a("GET", "/api/v1/namespaces/x/configmaps/b")));
        assert!(!named.allows(&a("GET", "/api/v1/namespaces/x/configmaps")));
        assert!(!named.allows(&a("POST", "/api/v1/namespaces/x/configmaps")));
        let urls = Rule::non_resource(&["/apis/*"]);
        assert!(urls.allows(&a("GET", "/apis/apps/v1")));
        assert!(!urls.allows(&a("GET", "/api")));
        assert_eq!(named.compact(), r#"{APIGroups:[""], Resources:["configmaps"], ResourceNames:["a"], Verbs:["*"]}"#);
    }
}
