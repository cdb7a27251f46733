//! Validating admission policies (`admissionregistration.k8s.io/v1`, GA since 1.30), as
//! kube-apiserver's `ValidatingAdmissionPolicy` plugin runs them on a create or update of a
//! main resource: every binding whose policy exists and whose rules match the request has its
//! policy's match conditions, variables and validations evaluated in CEL, with `object`,
//! `oldObject`, `request`, `namespaceObject`, `variables` and the `authorizer` library; a
//! validation that is false refuses the request (`Deny`) or warns (`Warn`) with the message
//! kube-apiserver writes (`dispatcher.go`). The authorizer asks the same RBAC that guards
//! requests.
//!
//! Not served: `paramKind`/`paramRef` (a binding to a policy with params is skipped, as a real
//! server skips one whose params are missing only under `failurePolicy: Ignore`), subresource
//! and DELETE rules, `auditAnnotations`, `authorizer.requestResource`, and type checking (an
//! expression that does not compile fails at request time under the failure policy, not when the
//! policy is written).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cel::extractors::This;
use serde_json::{Value, json};

use super::auth::{Attributes, User};
use super::{Cluster, meta_str};
use crate::error::ApiError;
use crate::resources::Resource;
use crate::selector::LabelSelector;

const GROUP: &str = "admissionregistration.k8s.io";

/// What an `authorizer` check names: the attributes of a SubjectAccessReview.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct Check {
    path: String,
    group: String,
    resource: String,
    subresource: String,
    namespace: String,
    name: String,
    verb: String,
}

/// The authorizer's answers known so far, and the checks an evaluation asked that had none:
/// the evaluation is run again once they are answered (the CEL functions are pure, the RBAC
/// they ask is the cluster's).
#[derive(Default)]
struct Answers {
    known: HashMap<Check, Result<(), String>>,
    asked: Vec<Check>,
}

/// `authorizer`, a path or resource check being built (`authorizer.group(…).resource(…)`),
/// and a decision (`.check(verb)`), as CEL values.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Authz {
    Builder(Check),
    Decision { allowed: bool, reason: String },
}

impl cel::objects::Opaque for Authz {
    fn runtime_type_name(&self) -> &str {
        match self {
            Authz::Builder(_) => "kubernetes.authorization.ResourceCheck",
            Authz::Decision { .. } => "kubernetes.authorization.Decision",
        }
    }
}

fn authz(value: &cel::Value) -> Result<Authz, cel::ExecutionError> {
    match value {
        cel::Value::Opaque(opaque) => opaque
            .downcast_ref::<Authz>()
            .cloned()
            .ok_or_else(|| cel::ExecutionError::function_error("authorizer", "not an authorizer value")),
        _ => Err(cel::ExecutionError::function_error("authorizer", "not an authorizer value")),
    }
}

/// Sets a field of a check being built (`.group(…)`).
type Setter = fn(&mut Check, String);
/// Reads a decision (`.allowed()`) from whether it allows, and its reason.
type Reader = fn(bool, String) -> cel::Value;

fn builder(value: &cel::Value, set: impl FnOnce(&mut Check)) -> cel::ResolveResult {
    match authz(value)? {
        Authz::Builder(mut check) => {
            set(&mut check);
            Ok(cel::Value::Opaque(Arc::new(Authz::Builder(check))))
        }
        Authz::Decision { .. } => Err(cel::ExecutionError::function_error("authorizer", "a decision is not a check")),
    }
}

/// A context holding the authorizer library, answering from `answers`.
fn context(answers: &Arc<Mutex<Answers>>) -> cel::Context<'static, 'static> {
    let mut context = cel::Context::default();
    let setters: [(&str, Setter); 6] = [
        ("path", |c, v| c.path = v),
        ("group", |c, v| c.group = v),
        ("resource", |c, v| c.resource = v),
        ("subresource", |c, v| c.subresource = v),
        ("namespace", |c, v| c.namespace = v),
        ("name", |c, v| c.name = v),
    ];
    for (name, set) in setters {
        let function =
            move |This(this): This<cel::Value>, value: Arc<String>| builder(&this, |c| set(c, value.to_string()));
        context.add_function(name, function).expect("the authorizer's functions are not CEL's own");
    }
    let answers = answers.clone();
    let check = move |This(this): This<cel::Value>, verb: Arc<String>| -> cel::ResolveResult {
        let Authz::Builder(mut check) = authz(&this)? else {
            return Err(cel::ExecutionError::function_error("check", "a decision is not a check"));
        };
        check.verb = verb.to_string();
        let mut answers = answers.lock().unwrap_or_else(|e| e.into_inner());
        match answers.known.get(&check).cloned() {
            Some(answer) => Ok(cel::Value::Opaque(Arc::new(Authz::Decision {
                allowed: answer.is_ok(),
                reason: answer.err().unwrap_or_default(),
            }))),
            None => {
                answers.asked.push(check);
                Err(cel::ExecutionError::function_error("check", "asked"))
            }
        }
    };
    context.add_function("check", check).expect("the authorizer's functions are not CEL's own");
    let decision = |this: &cel::Value, read: Reader| -> cel::ResolveResult {
        match authz(this)? {
            Authz::Decision { allowed, reason } => Ok(read(allowed, reason)),
            Authz::Builder(_) => Err(cel::ExecutionError::function_error("allowed", "a check, not yet a decision")),
        }
    };
    let readers: [(&str, Reader); 3] = [
        ("allowed", |allowed, _| cel::Value::Bool(allowed)),
        ("reason", |_, reason| cel::Value::String(Arc::new(reason))),
        ("errored", |_, _| cel::Value::Bool(false)),
    ];
    for (name, read) in readers {
        let function = move |This(this): This<cel::Value>| decision(&this, read);
        context.add_function(name, function).expect("the authorizer's functions are not CEL's own");
    }
    context.add_variable_from_value("authorizer", cel::Value::Opaque(Arc::new(Authz::Builder(Check::default()))));
    context
}

/// A request as the policies see it.
pub(super) struct Admitted<'a> {
    pub res: &'a Resource,
    pub obj: &'a Value,
    pub old: Option<&'a Value>,
    pub user: &'a User,
    pub dry_run: bool,
}

/// Why a policy's evaluation stopped.
enum Failure {
    /// An expression failed to compile or evaluate (`failurePolicy` decides).
    Error(String),
    /// The authorizer was asked checks it has no answer for yet.
    Asked,
}

impl Cluster {
    /// Runs the bound policies on the request: Ok with nothing to say, Ok with warnings, or
    /// the first denial.
    pub(super) fn admit_policies(&self, request: &Admitted, warnings: &mut Vec<String>) -> Result<(), ApiError> {
        // Writes of the policies and bindings themselves are never refused by one.
        if request.res.group == GROUP {
            return Ok(());
        }
        let bindings: Vec<Value> = self
            .objects()
            .of_resource(GROUP, "validatingadmissionpolicybindings", None)
            .map(|(_, b)| b.clone())
            .collect();
        for binding in bindings {
            let policy_name = binding["spec"]["policyName"].as_str().unwrap_or_default();
            let key = super::ObjKey {
                group: GROUP.into(),
                resource: "validatingadmissionpolicies".into(),
                namespace: String::new(),
                name: policy_name.into(),
            };
            let Some(policy) = self.objects().get(&key).cloned() else { continue };
            if !policy["spec"]["paramKind"].is_null() {
                continue;
            }
            if !self.matches(&policy["spec"]["matchConstraints"], request)
                || (!binding["spec"]["matchResources"].is_null()
                    && !self.matches(&binding["spec"]["matchResources"], request))
            {
                continue;
            }
            let names = (meta_str(&policy, "name"), meta_str(&binding, "name"));
            let actions: Vec<&str> = binding["spec"]["validationActions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let fail = policy["spec"]["failurePolicy"].as_str() != Some("Ignore");
            let answers = Arc::new(Mutex::new(Answers::default()));
            // Each round answers the checks the last one asked; an expression asks a bounded number.
            let outcome = loop {
                match self.evaluate(&policy, request, &answers) {
                    Err(Failure::Asked) => {
                        let mut known = answers.lock().unwrap_or_else(|e| e.into_inner());
                        let asked = std::mem::take(&mut known.asked);
                        for check in asked {
                            let decision = self.decide(request.user, &attributes(&check));
                            known.known.insert(check, decision);
                        }
                    }
                    Err(Failure::Error(message)) => break Err(message),
                    Ok(denial) => break Ok(denial),
                }
            };
            let denial = match outcome {
                Ok(None) => continue,
                Ok(Some(denial)) => denial,
                Err(_) if !fail => continue,
                Err(message) => Denial { message, reason: "Invalid".into() },
            };
            if actions.contains(&"Warn") {
                warnings.push(format!(
                    "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{}': {}",
                    names.0, names.1, denial.message
                ));
            }
            if actions.contains(&"Deny") {
                return Err(denied(request, names, denial));
            }
        }
        Ok(())
    }

    /// Whether the request is among what `rules` (a policy's `matchConstraints` or a binding's
    /// `matchResources`) selects.
    fn matches(&self, rules: &Value, request: &Admitted) -> bool {
        let operation = if request.old.is_some() { "UPDATE" } else { "CREATE" };
        let res = request.res;
        let name = meta_str(request.obj, "name");
        let rule_matches = |rule: &Value| {
            let has = |field: &str, value: &str| {
                rule[field].as_array().into_iter().flatten().filter_map(Value::as_str).any(|v| v == "*" || v == value)
            };
            let names: Vec<&str> =
                rule["resourceNames"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            has("apiGroups", &res.group)
                && has("apiVersions", &res.version)
                && has("resources", &res.plural)
                && has("operations", operation)
                && (names.is_empty() || names.contains(&name))
        };
        let rules_of = |field: &str| rules[field].as_array().cloned().unwrap_or_default();
        // No resource rules match every resource (`matching.Matches`): a binding's
        // `matchResources` may narrow by namespace alone. A policy must have some.
        let included = rules_of("resourceRules");
        if (!included.is_empty() && !included.iter().any(rule_matches))
            || rules_of("excludeResourceRules").iter().any(rule_matches)
        {
            return false;
        }
        let labels_match = |selector: &Value, labels: &Value| {
            selector.is_null() || LabelSelector::parse(&selector_text(selector)).is_ok_and(|s| s.matches(labels))
        };
        if !labels_match(&rules["objectSelector"], &request.obj["metadata"]["labels"]) {
            return false;
        }
        match self.namespace_object(request) {
            Some(namespace) => labels_match(&rules["namespaceSelector"], &namespace["metadata"]["labels"]),
            None => true,
        }
    }

    fn namespace_object(&self, request: &Admitted) -> Option<Value> {
        let namespace = meta_str(request.obj, "namespace");
        if !request.res.namespaced || namespace.is_empty() {
            return None;
        }
        let key = super::ObjKey {
            group: String::new(),
            resource: "namespaces".into(),
            namespace: String::new(),
            name: namespace.into(),
        };
        self.objects().get(&key).cloned()
    }

    /// The policy's first validation that fails, after its match conditions.
    fn evaluate(
        &self,
        policy: &Value,
        request: &Admitted,
        answers: &Arc<Mutex<Answers>>,
    ) -> Result<Option<Denial>, Failure> {
        let mut context = context(answers);
        let res = request.res;
        let operation = if request.old.is_some() { "UPDATE" } else { "CREATE" };
        let request_value = json!({
            "kind": {"group": res.group, "version": res.version, "kind": res.kind},
            "resource": {"group": res.group, "version": res.version, "resource": res.plural},
            "requestKind": {"group": res.group, "version": res.version, "kind": res.kind},
            "requestResource": {"group": res.group, "version": res.version, "resource": res.plural},
            "name": meta_str(request.obj, "name"),
            "namespace": meta_str(request.obj, "namespace"),
            "operation": operation,
            "userInfo": {"username": request.user.name, "groups": request.user.groups},
            "dryRun": request.dry_run,
        });
        let variables = [
            ("object", request.obj.clone()),
            ("oldObject", request.old.cloned().unwrap_or(Value::Null)),
            ("request", request_value),
            ("params", Value::Null),
            ("namespaceObject", self.namespace_object(request).unwrap_or(Value::Null)),
        ];
        for (name, value) in variables {
            let value = cel::to_value(value).map_err(|err| Failure::Error(format!("{name}: {err}")))?;
            context.add_variable_from_value(name, value);
        }
        let spec = &policy["spec"];
        let list = |field: &str| spec[field].as_array().cloned().unwrap_or_default();
        for condition in list("matchConditions") {
            match run(&context, condition["expression"].as_str().unwrap_or_default(), answers)? {
                cel::Value::Bool(true) => {}
                cel::Value::Bool(false) => return Ok(None),
                _ => return Err(Failure::Error("a match condition is not a bool".into())),
            }
        }
        // Variables in order, each seeing those before it; one that fails is absent, so only an
        // expression that reads it fails (kube-apiserver evaluates them lazily).
        let mut computed = HashMap::new();
        for variable in list("variables") {
            let name = variable["name"].as_str().unwrap_or_default().to_string();
            context.add_variable_from_value("variables", cel::Value::Map(computed.clone().into()));
            match run(&context, variable["expression"].as_str().unwrap_or_default(), answers) {
                Ok(value) => {
                    computed.insert(cel::objects::Key::String(Arc::new(name)), value);
                }
                Err(Failure::Asked) => return Err(Failure::Asked),
                Err(Failure::Error(_)) => {}
            }
        }
        context.add_variable_from_value("variables", cel::Value::Map(computed.into()));
        for validation in list("validations") {
            let expression = validation["expression"].as_str().unwrap_or_default();
            let value = run(&context, expression, answers).map_err(|failure| match failure {
                Failure::Error(err) => Failure::Error(format!("expression '{expression}' resulted in error: {err}")),
                asked => asked,
            })?;
            match value {
                cel::Value::Bool(true) => continue,
                cel::Value::Bool(false) => {}
                _ => return Err(Failure::Error(format!("expression '{expression}' did not evaluate to a bool"))),
            }
            let message = match validation["messageExpression"].as_str() {
                Some(text) => match run(&context, text, answers) {
                    Ok(cel::Value::String(message)) if !message.trim().is_empty() => Some(message.to_string()),
                    Err(Failure::Asked) => return Err(Failure::Asked),
                    _ => None,
                },
                None => None,
            };
            let message = message
                .or_else(|| validation["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| format!("failed expression: {expression}"));
            let reason = validation["reason"].as_str().unwrap_or("Invalid").to_string();
            return Ok(Some(Denial { message, reason }));
        }
        Ok(None)
    }
}

/// A validation that failed.
struct Denial {
    message: String,
    reason: String,
}

fn run(context: &cel::Context, expression: &str, answers: &Arc<Mutex<Answers>>) -> Result<cel::Value, Failure> {
    let program =
        cel::Program::compile(expression).map_err(|err| Failure::Error(format!("compilation failed: {err}")))?;
    match program.execute(context) {
        Ok(value) => Ok(value),
        Err(_) if !answers.lock().unwrap_or_else(|e| e.into_inner()).asked.is_empty() => Err(Failure::Asked),
        Err(err) => Err(Failure::Error(err.to_string())),
    }
}

/// The attributes of a SubjectAccessReview the check asks.
fn attributes(check: &Check) -> Attributes {
    Attributes {
        verb: check.verb.clone(),
        resource_request: check.path.is_empty(),
        path: check.path.clone(),
        group: check.group.clone(),
        resource: check.resource.clone(),
        subresource: check.subresource.clone(),
        namespace: check.namespace.clone(),
        name: check.name.clone(),
    }
}

/// A `metav1.LabelSelector` as the selector syntax `LabelSelector::parse` reads, its terms
/// sorted as `metav1.FormatLabelSelector` writes them (a Scale's `status.selector`).
pub(super) fn selector_text(selector: &Value) -> String {
    let mut terms = Vec::new();
    for (key, value) in selector["matchLabels"].as_object().into_iter().flatten() {
        terms.push(format!("{key}={}", value.as_str().unwrap_or_default()));
    }
    for expression in selector["matchExpressions"].as_array().into_iter().flatten() {
        let key = expression["key"].as_str().unwrap_or_default();
        let values: Vec<&str> =
            expression["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        terms.push(match expression["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            _ => format!("!{key}"),
        });
    }
    terms.sort();
    terms.join(",")
}

/// The refusal kube-apiserver answers (`admission.NewForbidden` with the validation's reason
/// and its code).
fn denied(request: &Admitted, (policy, binding): (&str, &str), denial: Denial) -> ApiError {
    let message =
        format!("ValidatingAdmissionPolicy '{policy}' with binding '{binding}' denied request: {}", denial.message);
    let gr = crate::error::GroupResource { group: request.res.group.clone(), resource: request.res.plural.clone() };
    let mut err = ApiError::forbidden(&gr, meta_str(request.obj, "name"), &message);
    let (code, reason) = match denial.reason.as_str() {
        "Forbidden" => (403, "Forbidden"),
        "Unauthorized" => (401, "Unauthorized"),
        "RequestEntityTooLarge" => (413, "RequestEntityTooLarge"),
        _ => (422, "Invalid"),
    };
    err.code = code;
    err.reason = reason;
    if let Some(details) = err.details.as_mut() {
        details.insert("causes".into(), json!([{"message": message}]));
    }
    err
}
