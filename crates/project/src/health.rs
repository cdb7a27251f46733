//! `healthChecks:` rules of an environment: when an object of a kind is healthy, progressing or
//! failed, as CEL expressions over the object, like Flux's `healthCheckExprs`. This module reads
//! them, compiles every expression when the environment loads (so a bad one is an error naming
//! its file and line before anything touches a cluster) and evaluates them; what the verdicts
//! mean for a wait or `weaver status` is `weaver_cluster::ready`'s.
//!
//! An expression sees the object's top-level fields as variables (`metadata`, `spec`,
//! `status`…), as Flux's do, and must give a bool. CEL is compiled and run by the `cel` crate,
//! with its standard library, the strings and lists extensions and optional field access
//! (`status.?conditions.orValue([])`).

use std::fmt;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

use super::ignore::{check, kind_problem, location};
use weaver_core::error::{Error, Location, Result};
use weaver_core::health::{HealthRule, Verdict};
use weaver_core::manifest::{api_group, is_dns1123_label};

/// A rule as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheckFile {
    api_version: Spanned<String>,
    kind: Spanned<String>,
    current: Spanned<String>,
    in_progress: Option<Spanned<String>>,
    failed: Option<Spanned<String>>,
}

/// The health rule of one kind, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// The API group of `apiVersion` (empty for the core group): any version of the kind matches.
    pub group: String,
    pub kind: String,
    /// True when the object is healthy.
    pub current: Expression,
    /// True while it is progressing; evaluated first.
    pub in_progress: Option<Expression>,
    /// True when it failed; evaluated after `in_progress`, before `current`.
    pub failed: Option<Expression>,
    /// Where the rule is written.
    pub at: Location,
}

/// A CEL expression and its compiled program.
#[derive(Clone)]
pub struct Expression {
    /// `current`, `inProgress` or `failed`.
    pub field: &'static str,
    pub text: String,
    pub at: Location,
    program: Arc<cel::Program>,
}

/// Expressions are the same when they are written the same, wherever.
impl PartialEq for Expression {
    fn eq(&self, other: &Self) -> bool {
        self.field == other.field && self.text == other.text
    }
}

impl fmt::Debug for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {:?} ({})", self.field, self.text, self.at)
    }
}

/// The standard library, the strings and lists extensions (Flux enables cel-go's strings,
/// sets and encoders), and optional values. Built once: every expression compiles and runs in it.
static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| {
    let mut env = cel::Env::stdlib();
    env.add_extension(cel::extensions::strings).expect("the strings extension declares new functions");
    env.add_extension(cel::extensions::lists).expect("the lists extension declares new functions");
    Arc::new(env)
});

impl HealthCheck {
    pub fn parse(file: &Path, spanned: Spanned<HealthCheckFile>) -> Result<HealthCheck> {
        let at = location(file, &spanned.referenced);
        let rule = spanned.value;
        let api_version = check(file, rule.api_version, api_version_problem)?;
        let kind = check(file, rule.kind, kind_problem)?;
        let compile =
            |field, text: Option<Spanned<String>>| text.map(|t| Expression::compile(file, field, t)).transpose();
        Ok(HealthCheck {
            group: api_group(&api_version).to_string(),
            kind,
            current: Expression::compile(file, "current", rule.current)?,
            in_progress: compile("inProgress", rule.in_progress)?,
            failed: compile("failed", rule.failed)?,
            at,
        })
    }

    /// The rule without where it is written, to compare definitions.
    pub(super) fn unlocated(&self) -> HealthCheck {
        HealthCheck { at: Location::file(""), ..self.clone() }
    }
}

impl HealthRule for HealthCheck {
    /// Whether the rule is for objects of `api_version` and `kind`.
    fn selects(&self, api_version: &str, kind: &str) -> bool {
        self.kind == kind && self.group == api_group(api_version)
    }

    /// The rule's verdict on `object` (as the server returned it): `inProgress`, then `failed`,
    /// then `current`, the first true one decides, as in Flux (RFC 0009).
    fn evaluate(&self, object: &Value) -> Verdict {
        // The object's fields are converted once for the rule's expressions.
        let context = match context_of(object.as_object().into_iter().flatten()) {
            Ok(context) => context,
            Err(why) => return Verdict::Error(why),
        };
        let ordered = [
            (self.in_progress.as_ref(), Verdict::InProgress),
            (self.failed.as_ref(), Verdict::Failed),
            (Some(&self.current), Verdict::Current),
        ];
        for (expression, verdict) in ordered {
            let Some(expression) = expression else { continue };
            match expression.evaluate(&context) {
                Ok(true) => return verdict,
                Ok(false) => {}
                Err(why) => return Verdict::Error(why),
            }
        }
        Verdict::NoneTrue
    }

    fn at(&self) -> &Location {
        &self.at
    }
}

impl Expression {
    pub(super) fn compile(file: &Path, field: &'static str, spanned: Spanned<String>) -> Result<Expression> {
        let at = location(file, &spanned.referenced);
        let text = spanned.value;
        match ENV.compile(&text) {
            Ok(program) => Ok(Expression { field, text, at, program: Arc::new(program) }),
            Err(errors) => {
                let problems: Vec<String> = errors.errors.iter().map(|e| describe_parse_error(&text, e)).collect();
                Err(Error::at(at, format!("the CEL expression `{field}` does not compile: {}", problems.join("; ")))
                    .with_help(CEL_HELP))
            }
        }
    }

    /// Whether the expression is true with these variables, or why it could not say.
    pub fn evaluate_with<'v>(
        &self,
        variables: impl IntoIterator<Item = (&'v String, &'v Value)>,
    ) -> std::result::Result<bool, String> {
        self.evaluate(&context_of(variables)?)
    }

    /// Whether the expression is true of the object whose fields `context` holds, or why it
    /// could not say.
    fn evaluate(&self, context: &cel::Context) -> std::result::Result<bool, String> {
        match self.program.execute(context) {
            Ok(cel::Value::Bool(result)) => Ok(result),
            Ok(other) => Err(format!("{} gave a {}, not a bool", self.describe(), other.type_of())),
            Err(err) => {
                let why = without_values(&err, &self.text, &self.program);
                Err(format!("{} could not be evaluated: {why}", self.describe()))
            }
        }
    }

    /// `the CEL expression `current` (environments/dev.yaml:12:14)`
    fn describe(&self) -> String {
        format!("the CEL expression `{}` ({})", self.field, self.at)
    }
}

/// A context of weaver's CEL environment holding `variables`.
fn context_of<'v>(
    variables: impl IntoIterator<Item = (&'v String, &'v Value)>,
) -> std::result::Result<cel::Context<'static, 'static>, String> {
    let mut context = cel::Context::with_env(ENV.clone());
    for (name, value) in variables {
        match cel::to_value(value) {
            Ok(value) => context.add_variable_from_value(name.as_str(), value),
            Err(err) => return Err(format!("`{name}` is not a CEL value: {err}")),
        }
    }
    Ok(context)
}

/// What went wrong, without the object's values the error may quote (a Secret's data, which no
/// redactor knows here): names of fields and types are shown, values never. `text` is the
/// expression: a missing key written in it is shown, one read from the object
/// (`labels[data.token]`) is not.
fn without_values(err: &cel::ExecutionError, text: &str, program: &cel::Program) -> String {
    use cel::ExecutionError as E;
    match err {
        // The `cel` crate finds an unknown function only when a call reaches it, and names it
        // as it names a missing variable.
        E::UndeclaredReference(name) if calls_unknown(program, name) => {
            format!("`{name}` is not a function of weaver's CEL ({FUNCTIONS})")
        }
        // The object's top-level fields are the variables: one it lacks is undeclared.
        E::UndeclaredReference(name) if !name.contains('.') => format!("the object has no `{name}`"),
        E::NoSuchKey(key) if !written(text, key) => {
            "No such key (its name is a value of the object, not shown: it may be secret)".to_string()
        }
        E::UndeclaredReference(_)
        | E::NoSuchKey(_)
        | E::NoSuchOverload(_)
        | E::UnexpectedType { .. }
        | E::InvalidArgumentCount { .. }
        | E::MissingArgumentOrTarget => err.to_string(),
        E::FunctionError { function, .. } => {
            format!("the function `{function}` failed (its message is not shown: it may quote a value)")
        }
        _ => "an operation failed on a value of the object (values are not shown: they may be secret)".to_string(),
    }
}

/// Whether `name`, undeclared, is a function the program calls rather than a variable it reads.
fn calls_unknown(program: &cel::Program, name: &str) -> bool {
    let references = program.references();
    references.has_function(name) && !references.has_variable(name)
}

/// What weaver's CEL environment ([`ENV`]) offers.
const FUNCTIONS: &str = "the standard library, the strings and lists extensions and optional values";

/// Whether `key` is in the expression as a field (`.key`) or a string (`'key'`, `"key"`).
fn written(text: &str, key: &str) -> bool {
    let field = format!(".{key}");
    let as_field = text
        .match_indices(&field)
        .any(|(at, _)| !text[at + field.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_'));
    as_field || text.contains(&format!("'{key}'")) || text.contains(&format!("\"{key}\""))
}

const CEL_HELP: &str = "write a CEL expression over the object's fields that gives a bool, e.g. status.conditions.exists(c, c.type == 'Ready' && c.status == 'True'); quote it in YAML when it holds `: ` or starts with a special character";

/// `column 12: Syntax error: mismatched input…`, with the column of the expression itself.
fn describe_parse_error(text: &str, error: &cel::ParseError) -> String {
    let (line, column) = error.pos;
    let place =
        if text.lines().count() > 1 { format!("line {line}, column {column}") } else { format!("column {column}") };
    format!("{place}: {}", error.msg)
}

fn api_version_problem(api_version: &str) -> Option<(String, &'static str)> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let valid = is_dns1123_label(version) && (group.is_empty() || group.split('.').all(is_dns1123_label));
    (!valid).then(|| {
        (
            format!("`apiVersion: {api_version}` is not an API version"),
            "write the API version as objects do: example.com/v1, apps/v1, v1 (any version of the group matches, as in Flux)",
        )
    })
}

/// A rule as `environments/dev.yaml` would hold it, `yaml` being its fields.
#[cfg(test)]
fn parse_for_tests(yaml: &str) -> Result<HealthCheck> {
    let spanned: Spanned<HealthCheckFile> = serde_saphyr::from_str(yaml).expect("a rule's fields");
    HealthCheck::parse(Path::new("environments/dev.yaml"), spanned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(current: &str, in_progress: Option<&str>, failed: Option<&str>) -> Result<HealthCheck> {
        let mut yaml = format!("apiVersion: example.com/v1\nkind: Database\ncurrent: {current:?}\n");
        if let Some(text) = in_progress {
            yaml.push_str(&format!("inProgress: {text:?}\n"));
        }
        if let Some(text) = failed {
            yaml.push_str(&format!("failed: {text:?}\n"));
        }
        parse_for_tests(&yaml)
    }

    const READY: &str = "status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')";
    const FAILED: &str =
        "status.conditions.exists(c, c.type == 'Ready' && c.status == 'False' && c.reason == 'Failed')";

    fn database(conditions: Value) -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Database", "metadata": {"name": "db", "generation": 1},
            "spec": {"size": 1}, "status": {"observedGeneration": 1, "conditions": conditions}})
    }

    #[test]
    fn expressions_decide_in_flux_s_order() {
        let check = rule(READY, Some("status.?phase.orValue('') == 'Provisioning'"), Some(FAILED)).unwrap();
        assert!(check.selects("example.com/v1", "Database") && check.selects("example.com/v2", "Database"));
        assert!(!check.selects("other.com/v1", "Database") && !check.selects("example.com/v1", "Table"));
        let ready = database(json!([{"type": "Ready", "status": "True"}]));
        assert_eq!(check.evaluate(&ready), Verdict::Current);
        let failed = database(json!([{"type": "Ready", "status": "False", "reason": "Failed"}]));
        assert_eq!(check.evaluate(&failed), Verdict::Failed);
        let waiting = database(json!([{"type": "Ready", "status": "False", "reason": "Waiting"}]));
        assert_eq!(check.evaluate(&waiting), Verdict::NoneTrue);
        // inProgress is asked first: a failure reported while provisioning is not final.
        let mut provisioning = failed.clone();
        provisioning["status"]["phase"] = json!("Provisioning");
        assert_eq!(check.evaluate(&provisioning), Verdict::InProgress);
    }

    #[test]
    fn an_expression_that_cannot_be_evaluated_gives_an_error() {
        let check = rule(READY, None, None).unwrap();
        let no_status = json!({"apiVersion": "example.com/v1", "kind": "Database", "metadata": {"name": "db"}});
        let Verdict::Error(why) = check.evaluate(&no_status) else { panic!("expected an error") };
        assert_eq!(
            why,
            "the CEL expression `current` (environments/dev.yaml:3:10) could not be evaluated: the object has no `status`"
        );
        let not_bool = rule("metadata.name", None, None).unwrap();
        let Verdict::Error(why) = not_bool.evaluate(&no_status) else { panic!("expected an error") };
        assert!(why.ends_with("gave a string, not a bool"), "{why}");
        let no_key = rule("metadata.labels.tier == 'web'", None, None).unwrap();
        let Verdict::Error(why) = no_key.evaluate(&no_status) else { panic!("expected an error") };
        assert!(why.ends_with("could not be evaluated: No such key: labels"), "{why}");
        // An error that would quote a value (a Secret's data) does not.
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": {"tier": "web"}},
            "data": {"token": "c2VjcmV0"}});
        for expression in [
            "data.token",
            "data.token > 1",
            "data.token / 2",
            "int(data.token) == 1",
            "metadata.labels[data.token] == 'a'",
        ] {
            let check = rule(expression, None, None).unwrap();
            let Verdict::Error(why) = check.evaluate(&secret) else { panic!("expected an error: {expression}") };
            assert!(!why.contains("c2VjcmV0"), "{expression}: {why}");
        }
        // A missing key the expression names is shown, one it read from the object is not.
        let check = rule("metadata.labels[data.token] == 'a'", None, None).unwrap();
        let Verdict::Error(why) = check.evaluate(&secret) else { panic!("expected an error") };
        assert!(why.ends_with("No such key (its name is a value of the object, not shown: it may be secret)"), "{why}");
        let check = rule("metadata.labels['team'] == 'a'", None, None).unwrap();
        let Verdict::Error(why) = check.evaluate(&secret) else { panic!("expected an error") };
        assert!(why.ends_with("No such key: team"), "{why}");
        // A value that happens to be part of the expression's text is not written in it.
        let short = json!({"metadata": {"name": "s", "labels": {}}, "data": {"token": "me"}});
        let check = rule("metadata.labels[data.token] == 'name'", None, None).unwrap();
        let Verdict::Error(why) = check.evaluate(&short) else { panic!("expected an error") };
        assert!(why.ends_with("not shown: it may be secret)"), "{why}");
    }

    #[test]
    fn an_unknown_function_is_named_where_it_is_called() {
        let object = database(json!([{"type": "Ready", "status": "True"}]));
        let check = rule("status.conditions.exists(c, isReady(c))", None, None).unwrap();
        let Verdict::Error(why) = check.evaluate(&object) else { panic!("expected an error") };
        assert_eq!(
            why,
            "the CEL expression `current` (environments/dev.yaml:3:10) could not be evaluated: `isReady` is not a \
             function of weaver's CEL (the standard library, the strings and lists extensions and optional values)"
        );
        let check = rule(READY, Some("status.conditions[0].type.startWith('Re')"), None).unwrap();
        let Verdict::Error(why) = check.evaluate(&object) else { panic!("expected an error") };
        assert!(why.starts_with("the CEL expression `inProgress` (environments/dev.yaml:4:13)"), "{why}");
        assert!(why.contains(": `startWith` is not a function of weaver's CEL"), "{why}");
        // A missing field is still a missing field.
        let check = rule("size(spec) > 0 && size(labels) > 0", None, None).unwrap();
        let Verdict::Error(why) = check.evaluate(&object) else { panic!("expected an error") };
        assert!(why.ends_with("could not be evaluated: the object has no `labels`"), "{why}");
    }

    #[test]
    fn a_bad_expression_is_an_error_where_it_is_written() {
        let err = rule("status.conditions.exists(c, c.type == )", None, None).unwrap_err();
        assert_eq!(err.location.unwrap().to_string(), "environments/dev.yaml:3:10");
        assert!(err.message.starts_with("the CEL expression `current` does not compile: column "), "{}", err.message);
        let err = rule(READY, None, Some("status.phase ==== 'Failed'")).unwrap_err();
        assert_eq!(err.location.unwrap().to_string(), "environments/dev.yaml:4:9");
        assert!(err.message.starts_with("the CEL expression `failed` does not compile"), "{}", err.message);
    }

    #[test]
    fn api_versions_are_checked() {
        assert!(api_version_problem("example.com/v1").is_none() && api_version_problem("v1").is_none());
        assert!(api_version_problem("example.com/").is_some() && api_version_problem("Example/v1").is_some());
    }
}
