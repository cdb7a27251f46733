//! The API the helm layer builds on: objects with fields and methods, functions calling back into the
//! set, state per execution, errors' structure and redaction, threads, and deep recursion.

use crate::common;

use std::sync::Arc;

use gotemplate::{Error, ErrorKind, Function, Map, MissingKey, Object, Templates, Type, Value};

fn data(values: serde_json::Value) -> Value {
    Value::from_json(&serde_json::json!({ "Values": values }), gotemplate::Numbers::Float64)
}

#[test]
fn templates_values_and_errors_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Templates>();
    send_sync::<Value>();
    send_sync::<Error>();
}

/// A `VersionSet`-like object: a named `[]string` with a `Has` method.
#[derive(Debug)]
struct Versions(Vec<&'static str>);

impl Object for Versions {
    fn type_name(&self) -> &str {
        "chartutil.VersionSet"
    }
    fn method(&self, name: &str) -> Option<Function> {
        let versions: Vec<String> = self.0.iter().map(|s| s.to_string()).collect();
        (name == "Has").then(|| {
            Function::new(&[Type::String], move |_, args| {
                Ok(Value::Bool(versions.iter().any(|v| Some(v.as_str()) == args[0].as_str())))
            })
        })
    }
    fn underlying(&self) -> Option<Value> {
        Some(Value::from(self.0.iter().map(|s| Value::from(*s)).collect::<Vec<_>>()))
    }
}

/// A struct with a `String()` method, like `*chartutil.KubeVersion`.
#[derive(Debug)]
struct KubeVersion;

impl Object for KubeVersion {
    fn type_name(&self) -> &str {
        "*chartutil.KubeVersion"
    }
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Major" => Some(Value::from("1")),
            "Version" => Some(Value::from("v1.32.0")),
            _ => None,
        }
    }
    fn display(&self) -> String {
        "v1.32.0".into()
    }
}

#[test]
fn objects_have_fields_methods_and_underlying_values() {
    let caps = Map::new();
    caps.insert("APIVersions", Value::Object(Arc::new(Versions(vec!["v1", "apps/v1"]))));
    caps.insert("KubeVersion", Value::Object(Arc::new(KubeVersion)));
    let root = Map::new();
    root.insert("Capabilities", Value::Map(caps));
    let mut set = Templates::new("gotpl");
    set.parse(
        "t",
        r#"{{ .Capabilities.APIVersions.Has "apps/v1" }} {{ .Capabilities.APIVersions.Has "x/v1" }} {{ .Capabilities.KubeVersion }} {{ .Capabilities.KubeVersion.Major }} {{ range .Capabilities.APIVersions }}[{{ . }}]{{ end }} {{ len .Capabilities.APIVersions }} {{ printf "%T" .Capabilities.APIVersions }}"#,
    )
    .unwrap();
    assert_eq!(
        set.execute("t", &Value::Map(root.clone())).unwrap(),
        "true false v1.32.0 1 [v1][apps/v1] 2 chartutil.VersionSet"
    );

    set.parse("bad", "{{ .Capabilities.KubeVersion.Minor }}").unwrap();
    let err = set.execute("bad", &Value::Map(root.clone())).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"template: bad:1:16: executing "bad" at <.Capabilities.KubeVersion.Minor>: can't evaluate field Minor in type interface {}"#
    );
    set.parse("args", r#"{{ .Capabilities.APIVersions.Has 1 }}"#).unwrap();
    let err = set.execute("args", &Value::Map(root)).unwrap_err();
    assert!(err.to_string().ends_with("at <1>: expected string; found 1"), "{err}");
}

#[test]
fn include_recursion_stops_at_helms_limit_without_overflowing_the_stack() {
    let mut set = common::templates(common::Mode::Helm);
    set.parse("t", r#"{{ define "loop" }}{{ include "loop" . }}{{ end }}{{ include "loop" . }}"#).unwrap();
    // Run on a small stack, as a rayon worker would.
    let result = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || set.execute_with_state("t", &Value::Nil, &mut common::IncludeDepth::default()))
        .unwrap()
        .join()
        .unwrap();
    let message = result.unwrap_err().to_string();
    let head = r#"template: t:1:53: executing "t" at <include "loop" .>: error calling include: template: t:1:22: executing "loop" at <include "loop" .>: error calling include: "#;
    assert!(message.starts_with(head), "{}", &message[..head.len().min(message.len())]);
    // helm's guard trips on the 1002nd nested include of the name.
    assert_eq!(message.matches("error calling include").count(), 1002);
    assert!(
        message.ends_with("rendering template has a nested reference name: loop: unable to execute template"),
        "{}",
        &message[message.len() - 200..]
    );
}

#[test]
fn template_recursion_stops_at_gos_depth_limit() {
    let mut set = Templates::new("gotpl");
    set.parse("t", r#"{{ define "loop" }}{{ template "loop" . }}{{ end }}{{ template "loop" . }}"#).unwrap();
    let err = set.execute("t", &Value::Nil).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"template: t:1:31: executing "loop" at <{{template "loop" .}}>: exceeded maximum template depth (100000)"#
    );
}

#[test]
fn tpl_definitions_stay_in_their_execution() {
    let mut set = common::templates(common::Mode::Helm);
    set.parse("t", r#"{{ tpl "{{ define \"x\" }}X{{ end }}{{ include \"x\" . }}" . }}"#).unwrap();
    assert_eq!(set.execute("t", &Value::Nil).unwrap(), "X");
    assert!(!set.has_template("x"));
    assert!(!set.has_template("gotpl"));
}

#[test]
fn later_definitions_win_unless_empty() {
    let mut set = Templates::new("gotpl");
    set.parse("a.tpl", r#"{{ define "d" }}first{{ end }}"#).unwrap();
    set.parse("b.tpl", r#"{{ define "d" }}second{{ end }}"#).unwrap();
    set.parse("c.tpl", r#"{{ define "d" }}  {{ end }}"#).unwrap();
    set.parse("t", r#"{{ template "d" }}"#).unwrap();
    assert_eq!(set.execute("t", &Value::Nil).unwrap(), "second");
    assert_eq!(set.template_names(), vec!["a.tpl", "b.tpl", "c.tpl", "d", "t"]);
    let err = set.execute("nope", &Value::Nil).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoTemplate);
    assert_eq!(err.to_string(), r#"template: no template "nope" associated with template "gotpl""#);
}

#[test]
fn errors_are_structured_and_redactable() {
    let mut set = Templates::new("gotpl");
    set.set_missing_key(MissingKey::Zero);
    set.parse("t", "line\n  {{ range .Values.secret }}{{ end }}").unwrap();
    let err = set.execute("t", &data(serde_json::json!({"secret": "hunter2"}))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Exec);
    assert_eq!(err.template(), "t");
    let location = err.location().unwrap();
    assert_eq!((location.parse_name.as_str(), location.line, location.column), ("t", 2, Some(18)));
    assert_eq!(err.context(), Some(".Values.secret"));
    assert_eq!(err.message(), "range can't iterate over hunter2");
    assert_eq!(
        err.redacted(),
        r#"template: t:2:18: executing "t" at <.Values.secret>: range can't iterate over [redacted]"#
    );

    let parse = Templates::new("gotpl").parse("p", "{{ if }}").unwrap_err();
    assert_eq!(parse.kind(), ErrorKind::Parse);
    assert_eq!(parse.location().map(|l| (l.line, l.column)), Some((1, None)));
}

#[test]
fn nested_function_errors_keep_their_source() {
    let mut set = common::templates(common::Mode::Helm);
    set.parse("t", r#"{{ define "in" }}{{ range .x }}{{ end }}{{ end }}{{ include "in" .Values }}"#).unwrap();
    let err = set
        .execute_with_state("t", &data(serde_json::json!({"x": 7})), &mut common::IncludeDepth::default())
        .unwrap_err();
    let inner = err.source_error().expect("include's error");
    assert_eq!(inner.template(), "in");
    assert!(err.redacted().ends_with("range can't iterate over [redacted]"), "{}", err.redacted());
    assert!(err.to_string().ends_with("range can't iterate over 7"));
}

#[test]
fn one_parse_many_concurrent_executions() {
    let mut set = common::templates(common::Mode::Helm);
    set.parse("t", r#"{{ range $i, $v := .Values.l }}{{ $i }}{{ $v | upper }}{{ end }}"#).unwrap();
    let set = &set;
    std::thread::scope(|scope| {
        for n in 0..4 {
            scope.spawn(move || {
                let items: Vec<String> = (0..50).map(|i| format!("x{n}{i}")).collect();
                let expected: String =
                    items.iter().enumerate().map(|(i, s)| format!("{i}{}", s.to_uppercase())).collect();
                let values = data(serde_json::json!({ "l": items }));
                for _ in 0..20 {
                    assert_eq!(set.execute("t", &values).unwrap(), expected);
                }
            });
        }
    });
}

#[test]
fn maps_changed_by_functions_are_changed_for_later_executions() {
    let mut set = common::templates(common::Mode::Helm);
    set.parse("t", r#"{{ $_ := set .Values "n" (add (index .Values "n") 1) }}{{ .Values.n }}"#).unwrap();
    let values = data(serde_json::json!({"n": 0}));
    assert_eq!(set.execute("t", &values).unwrap(), "1");
    assert_eq!(set.execute("t", &values).unwrap(), "2");
}

#[test]
fn inputs_go_crashes_on_are_errors_here() {
    let mut set = Templates::new("gotpl");
    set.parse("t", r#"{{ "x" | call }}"#).unwrap();
    assert_eq!(
        set.execute("t", &Value::Nil).unwrap_err().to_string(),
        r#"template: t:1:9: executing "t" at <call>: error calling call: non-function  of type string"#
    );
    // A function's redaction span that is not on character boundaries is ignored, not a panic.
    set.add_function("f", Function::new(&[], |_, _| Err(gotemplate::FuncError::with_data("é", 1..2))));
    set.parse("f", "{{ f }}").unwrap();
    assert!(set.execute("f", &Value::Nil).unwrap_err().redacted().ends_with("error calling f: é"));
}

/// Executions within [`gotemplate::Limits`]: a template of a repository that is not trusted.
mod limits {
    use std::time::{Duration, Instant};

    use gotemplate::{Limits, Templates, Value};

    fn items(n: usize) -> Value {
        super::data(serde_json::json!({ "l": vec![0; n] }))
    }

    #[test]
    fn an_endless_loop_is_stopped_when_the_caller_says() {
        let mut set = Templates::new("gotpl");
        // 10^10 iterations without output: hours, were it not stopped.
        set.parse("t", "{{ range .Values.l }}{{ range $.Values.l }}{{ end }}{{ end }}").unwrap();
        // Made before the clock starts: on a loaded machine, making it could take the 100 ms,
        // and the execution would stop before its first node, where no line is known.
        let values = items(100_000);
        let started = Instant::now();
        let deadline = started + Duration::from_millis(100);
        let stop = || (Instant::now() > deadline).then(|| "the deadline passed".to_string());
        let limits = Limits { stop: Some(&stop), max_bytes: None };
        let err = set.execute_within("t", &values, &mut (), limits).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "stopped soon after: {:?}", started.elapsed());
        assert_eq!(err.location().map(|at| at.line), Some(1), "{err}");
        assert!(err.to_string().ends_with("execution stopped: the deadline passed"), "{err}");
        assert!(!err.is_too_large());
    }

    #[test]
    fn a_string_doubled_in_a_loop_is_stopped_at_the_bound() {
        let mut set = Templates::new("gotpl");
        set.parse("t", r#"{{ $s := "ab" }}{{ range .Values.l }}{{ $s = print $s $s }}{{ end }}{{ len $s }}"#).unwrap();
        let limits = Limits { stop: None, max_bytes: Some(1 << 20) };
        assert_eq!(set.execute_within("t", &items(10), &mut (), limits).unwrap(), "2048", "under the bound");
        // 2^41 bytes unbounded.
        let err = set.execute_within("t", &items(40), &mut (), limits).unwrap_err();
        assert!(err.to_string().ends_with("a string exceeds the limit of 1048576 bytes"), "{err}");
        assert!(err.is_too_large(), "told by kind");
    }

    #[test]
    fn output_past_the_bound_is_an_error() {
        let mut set = Templates::new("gotpl");
        set.parse("t", "{{ range .Values.l }}0123456789{{ end }}").unwrap();
        let limits = Limits { stop: None, max_bytes: Some(5000) };
        assert_eq!(set.execute_within("t", &items(500), &mut (), limits).unwrap().len(), 5000);
        let err = set.execute_within("t", &items(501), &mut (), limits).unwrap_err();
        assert!(err.to_string().ends_with("the output exceeds the limit of 5000 bytes"), "{err}");
    }
}
