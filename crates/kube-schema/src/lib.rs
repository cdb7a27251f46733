//! Kubernetes objects checked against their schema as the API server checks them, offline.
//!
//! - **Built-in kinds** against the schemas of k8s-openapi's `latest` feature (Kubernetes
//!   1.37), generated from its types' `JsonSchema` impls into `builtins.json` (`tools/kube-builtins`
//!   lists the types; their fields come from k8s-openapi, which generates them from
//!   Kubernetes' own OpenAPI document).
//! - **Custom resources** against a CRD version's `openAPIV3Schema`, with the Kubernetes
//!   extensions (`x-kubernetes-preserve-unknown-fields`, `-int-or-string`, `-embedded-resource`).
//!
//! A small structural walker rather than a JSON Schema engine: the API server's rules are not
//! JSON Schema's (which objects keep undeclared fields differs between built-in kinds and CRDs,
//! nulls are dropped, embedded resources get ObjectMeta, quantities have their own grammar),
//! and its messages name paths as the server does. What it checks: unknown fields (as
//! `fieldValidation=Strict`), types (a float with an integral value is an integer, as the
//! server decodes it), required fields (a CRD's defaulted ones are filled in first), `enum`,
//! the formats the server decodes (`int32`, `byte`, `date-time`), int-or-string and
//! quantities; and the part of the built-in kinds' Go validation every object meets
//! (`apimachinery`): names by kind, label and annotation keys and values, selectors' and
//! node selectors' labels, and the fields whose values come from a fixed set. Left to the
//! server: CEL rules, `pattern`, bounds, `oneOf`/`anyOf`, and the rest of the Go validation
//! (selectors matching labels, cross-field rules).
//!
//! weaver validates rendered objects with it; its fake API server (`crates/test-apiserver`)
//! refuses what it finds, so the two cannot disagree, and a real server is the judge of both.

pub mod apimachinery;
mod schema;
mod walk;

pub use schema::{Builtins, Id, Schemas};
pub use walk::Issue;

use serde_json::Value;

/// Checks `object` against schema `id` of `schemas`: a built-in kind's (`builtins`' own), or
/// (`custom`) a custom resource's, whose apiVersion, kind and metadata are the API server's
/// whatever the CRD declares (ObjectMeta's schema comes from `builtins`). `echo`: whether
/// messages may quote values (never a Secret's).
pub fn check(builtins: &Builtins, schemas: &Schemas, id: Id, object: &Value, custom: bool, echo: bool) -> Vec<Issue> {
    let mut walker = walk::Walker { builtins, echo, issues: Vec::new() };
    walker.object(schemas, id, object, custom);
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    // A custom resource's name is a DNS subdomain, whatever its kind is called.
    let kind = if custom { "" } else { object["kind"].as_str().unwrap_or_default() };
    walker.name(if custom { "" } else { group }, kind, object);
    walker.issues
}

/// A number as the API server stores it: Go's JSON encoding writes a float64 with no fraction
/// as an integer, so `0.0` is read back as `0`, in built-in fields (a CRD's `minimum`) and custom
/// resources alike. Both weaver's comparison with live objects and its fake API server use it.
pub fn integral_floats(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15) {
                *value = Value::from(f as i64);
            }
        }
        Value::Object(map) => map.values_mut().for_each(integral_floats),
        Value::Array(items) => items.iter_mut().for_each(integral_floats),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(issues: Vec<Issue>) -> Vec<String> {
        issues.into_iter().map(|issue| issue.message).collect()
    }

    #[test]
    fn the_table_has_the_common_kinds() {
        let all = Builtins::get();
        for kind in
            [("apps/v1", "Deployment"), ("v1", "Service"), ("apiextensions.k8s.io/v1", "CustomResourceDefinition")]
        {
            assert!(all.kinds.contains_key(&kind), "{kind:?}");
        }
    }

    /// A definition is compiled once a process, when an object first reaches it, and shared.
    #[test]
    fn definitions_are_compiled_once_and_shared() {
        const SPEC: &str = "io.k8s.api.core.v1.ConfigMapVolumeSource";
        let first = schema::Builtins::deferred(SPEC).compiled();
        assert!(std::ptr::eq(first, schema::Builtins::deferred(SPEC).compiled()));
        assert!(first.schemas.node(first.root).properties.contains_key("defaultMode"), "its own schema");
    }

    #[test]
    fn free_form_objects_differ_between_built_in_kinds_and_crds() {
        // A built-in `type: object` without properties (RawExtension, FieldsV1) keeps anything.
        let builtins = Builtins::get();
        let revision = builtins.kinds[&("apps/v1", "ControllerRevision")];
        let object = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"},
                            "revision": 1, "data": {"spec": {"anything": true}}});
        assert_eq!(messages(check(builtins, &builtins.schemas, revision, &object, false, true)), Vec::<String>::new());
        // In a CRD's schema, the API server prunes every field of one.
        let mut crds = Schemas::default();
        let root = crds.compile_crd(&json!({"type": "object", "properties": {"spec": {"type": "object"}}}));
        let object = json!({"apiVersion": "x.test/v1", "kind": "X", "metadata": {"name": "x"}, "spec": {"a": 1}});
        assert_eq!(messages(check(builtins, &crds, root, &object, true, true)), ["unknown field \"spec.a\""]);
    }

    #[test]
    fn values_are_hidden_unless_echo() {
        let mut crds = Schemas::default();
        let root = crds.compile_crd(&json!({"type": "object", "properties": {"p": {"type": "string", "enum": ["a"]}}}));
        let object = json!({"apiVersion": "x.test/v1", "kind": "X", "metadata": {"name": "x"}, "p": "hunter2"});
        let hidden = messages(check(Builtins::get(), &crds, root, &object, true, false));
        assert_eq!(hidden, ["p: Unsupported value: \"[redacted]\": supported values: \"a\""]);
        let shown = messages(check(Builtins::get(), &crds, root, &object, true, true));
        assert_eq!(shown, ["p: Unsupported value: \"hunter2\": supported values: \"a\""]);
    }

    /// A CRD schema's `$ref` checks nothing; a `$ref` that is no string leaves the schema's
    /// other keywords to check, as the API server does.
    #[test]
    fn a_crd_schemas_ref_checks_nothing_unless_it_is_no_string() {
        let object =
            json!({"apiVersion": "x.test/v1", "kind": "X", "metadata": {"name": "x"}, "spec": {"size": "big"}});
        for (reference, problems) in [(json!("#/definitions/Spec"), 0), (Value::Null, 1)] {
            let mut crds = Schemas::default();
            let root = crds.compile_crd(&json!({"type": "object", "properties": {"spec": {
                "$ref": reference, "type": "object", "properties": {"size": {"type": "integer"}}}}}));
            let issues = check(Builtins::get(), &crds, root, &object, true, true);
            assert_eq!(issues.len(), problems, "{reference}: {issues:?}");
        }
    }

    #[test]
    fn go_validation_reaches_the_definitions_it_names() {
        let builtins = Builtins::get();
        let service = builtins.kinds[&("v1", "Service")];
        let object = json!({"apiVersion": "v1", "kind": "Service",
                            "metadata": {"name": "9web", "labels": {"bad key!": "x"}},
                            "spec": {"type": "ClusterIp", "selector": {"app": "-x"},
                                     "ports": [{"port": 80, "protocol": "TPC"}, {"port": 81, "protocol": ""}]}});
        let paths: Vec<String> =
            check(builtins, &builtins.schemas, service, &object, false, true).into_iter().map(|i| i.path).collect();
        assert_eq!(
            paths,
            ["metadata.labels", "spec.type", "spec.selector", "spec.ports[0].protocol", "metadata.name"],
            "every property of the table's definitions that a Service has"
        );
        // Each (definition, property) of the tables names one the schemas have.
        let deployment = builtins.kinds[&("apps/v1", "Deployment")];
        let object = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                            "spec": {"replicas": 2.0, "strategy": {"type": "Rolling"},
                                     "selector": {"matchLabels": {"a b": "x"}},
                                     "template": {"metadata": {"annotations": {"/x": ""}},
                                                  "spec": {"containers": [{"name": "c", "imagePullPolicy": "always"}],
                                                           "nodeSelector": {"k": "-"}}}}});
        let paths: Vec<String> =
            check(builtins, &builtins.schemas, deployment, &object, false, true).into_iter().map(|i| i.path).collect();
        assert_eq!(
            paths,
            [
                "spec.strategy.type",
                "spec.selector.matchLabels",
                "spec.template.metadata.annotations",
                "spec.template.spec.containers[0].imagePullPolicy",
                "spec.template.spec.nodeSelector"
            ]
        );
    }

    #[test]
    fn a_crd_default_fills_a_required_field_and_integral_floats_are_integers() {
        let mut crds = Schemas::default();
        let root = crds.compile_crd(&json!({"type": "object", "properties": {"spec": {"type": "object",
            "required": ["mode", "size"],
            "properties": {"mode": {"type": "string", "default": "fast"}, "size": {"type": "integer", "format": "int32"}}}}}));
        let object =
            |spec: Value| json!({"apiVersion": "x.test/v1", "kind": "X", "metadata": {"name": "x"}, "spec": spec});
        let builtins = Builtins::get();
        assert_eq!(
            messages(check(builtins, &crds, root, &object(json!({"size": 1e6})), true, true)),
            Vec::<String>::new()
        );
        assert_eq!(
            messages(check(builtins, &crds, root, &object(json!({"size": 1.5})), true, true)),
            ["spec.size: Invalid value: \"number\": spec.size in body must be of type integer: \"number\""]
        );
        assert_eq!(
            messages(check(builtins, &crds, root, &object(json!({"size": 3e9})), true, true)),
            ["spec.size: Invalid value: 3000000000.0: spec.size in body must be of type int32: 3000000000.0"]
        );
        assert_eq!(
            messages(check(builtins, &crds, root, &object(json!({"mode": "x"})), true, true)),
            ["spec.size: Required value"]
        );
    }
}
