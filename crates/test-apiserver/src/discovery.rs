//! Discovery documents: legacy (`/api`, `/apis`, `/apis/<g>/<v>`) and
//! aggregated (`apidiscovery.k8s.io/v2`, chosen through the Accept header
//! exactly like kube-apiserver does, with plain JSON as the fallback).

use crate::resources::Resource;
use serde_json::{Value, json};

/// The aggregated discovery version the Accept header asks for first, if any.
pub fn aggregated_version(accept: Option<&str>) -> Option<&'static str> {
    for part in accept?.split(',') {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        if params.first() != Some(&"application/json") {
            continue;
        }
        if params.len() == 1 {
            return None;
        }
        let has = |p: &str| params.contains(&p);
        if has("g=apidiscovery.k8s.io") && has("as=APIGroupDiscoveryList") {
            if has("v=v2") {
                return Some("v2");
            }
            if has("v=v2beta1") {
                return Some("v2beta1");
            }
        }
    }
    None
}

pub fn aggregated_content_type(version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

/// Groups in the order a real server lists them (core first, then by name),
/// each with versions newest first.
fn groups(resources: &[&Resource]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for r in resources.iter().filter(|r| !r.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, vs)) => {
                if !vs.contains(&r.version) {
                    vs.push(r.version.clone());
                }
            }
            None => out.push((r.group.clone(), vec![r.version.clone()])),
        }
    }
    for (_, vs) in &mut out {
        vs.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
    }
    out
}

/// Kubernetes version ordering: GA > beta > alpha, higher numbers first.
fn version_priority(v: &str) -> (u8, u32, u32) {
    let rest = v.trim_start_matches('v');
    let major: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let tail = &rest[major.len()..];
    let major = major.parse().unwrap_or(0);
    if tail.is_empty() {
        (3, major, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, major, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, major, n.parse().unwrap_or(0))
    } else {
        (0, major, 0)
    }
}

pub fn api_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]})
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> =
        versions.iter().map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v})).collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs[0]})
}

pub fn api_group_list(resources: &[&Resource]) -> Value {
    let gs: Vec<Value> = groups(resources).iter().map(|(g, vs)| group_json(g, vs)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs})
}

pub fn api_group(resources: &[&Resource], group: &str) -> Option<Value> {
    let (g, vs) = groups(resources).into_iter().find(|(g, _)| g == group)?;
    let mut v = group_json(&g, &vs);
    v["kind"] = json!("APIGroup");
    v["apiVersion"] = json!("v1");
    Some(v)
}

fn resource_entries(r: &Resource) -> Vec<Value> {
    let mut main = json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        main["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        main["categories"] = json!(r.categories);
    }
    let mut out = vec![main];
    if r.status_subresource {
        out.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]}));
    }
    if r.has_scale() {
        out.push(json!({"name": format!("{}/scale", r.plural), "singularName": "", "namespaced": true, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
    }
    if r.is("", "ServiceAccount") {
        out.push(json!({"name": "serviceaccounts/token", "singularName": "", "namespaced": true, "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest", "verbs": ["create"]}));
    }
    out
}

pub fn api_resource_list(resources: &[&Resource], group: &str, version: &str) -> Option<Value> {
    let matching: Vec<&&Resource> = resources.iter().filter(|r| r.group == group && r.version == version).collect();
    if matching.is_empty() {
        return None;
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    let entries: Vec<Value> = matching.iter().flat_map(|r| resource_entries(r)).collect();
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": entries}))
}

/// `APIGroupDiscoveryList` for `/api` (core) or `/apis` (everything else).
pub fn aggregated(resources: &[&Resource], core: bool, api_version: &str) -> Value {
    let group_names: Vec<(String, Vec<String>)> =
        if core { vec![(String::new(), vec!["v1".to_string()])] } else { groups(resources) };
    let items: Vec<Value> = group_names
        .iter()
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| {
                    let rs: Vec<Value> = resources
                        .iter()
                        .filter(|r| r.group == *g && r.version == *v)
                        .map(|r| {
                            let mut e = json!({
                                "resource": r.plural,
                                "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                                "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": r.singular,
                                "verbs": r.verbs,
                            });
                            if !r.short_names.is_empty() {
                                e["shortNames"] = json!(r.short_names);
                            }
                            if !r.categories.is_empty() {
                                e["categories"] = json!(r.categories);
                            }
                            let mut subs = Vec::new();
                            if r.status_subresource {
                                subs.push(json!({"subresource": "status", "responseKind": {"group": r.group, "version": r.version, "kind": r.kind}, "verbs": ["get", "patch", "update"]}));
                            }
                            if r.has_scale() {
                                subs.push(json!({"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"}, "verbs": ["get", "patch", "update"]}));
                            }
                            if r.is("", "ServiceAccount") {
                                subs.push(json!({"subresource": "token", "responseKind": {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"}, "verbs": ["create"]}));
                            }
                            if !subs.is_empty() {
                                e["subresources"] = Value::Array(subs);
                            }
                            e
                        })
                        .collect();
                    json!({"version": v, "resources": rs, "freshness": "Current"})
                })
                .collect();
            let mut meta = json!({});
            if !g.is_empty() {
                meta["name"] = json!(g);
            }
            json!({"metadata": meta, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{api_version}"), "metadata": {}, "items": items})
}

/// `/openapi/v3`: where each group version's OpenAPI v3 document is, as client-go's
/// `openapi3.Root` reads it (kubectl's and helm's client-side validation).
pub fn openapi_v3_index(resources: &[&Resource]) -> Value {
    let mut paths = serde_json::Map::new();
    let mut add = |path: String| {
        let url = format!("/openapi/v3/{path}?hash=0");
        paths.insert(path, json!({"serverRelativeURL": url}));
    };
    add("api/v1".to_string());
    for (group, versions) in groups(resources) {
        for version in versions {
            add(format!("apis/{group}/{version}"));
        }
    }
    json!({"paths": paths})
}

/// `/openapi/v3/api/v1`, `/openapi/v3/apis/<g>/<v>`: each resource's object path with its PATCH
/// operation (tagged with `x-kubernetes-group-version-kind` and taking the `fieldValidation`
/// query parameter, which is how client-go finds that the server validates fields itself, so
/// kubectl and helm skip their client-side validation, as against a real server), and a
/// component schema per kind, found by its `x-kubernetes-group-version-kind`. Simplified: each
/// schema accepts any object (the server validates what it stores against the real schemas,
/// see `validate`), and only the PATCH operations are described.
pub fn openapi_v3_group_version(resources: &[&Resource], group: &str, version: &str) -> Option<Value> {
    let matching: Vec<&&Resource> = resources.iter().filter(|r| r.group == group && r.version == version).collect();
    if matching.is_empty() {
        return None;
    }
    let mut schemas = serde_json::Map::new();
    let mut paths = serde_json::Map::new();
    let prefix = if group.is_empty() { format!("/api/{version}") } else { format!("/apis/{group}/{version}") };
    for r in &matching {
        let path = match r.namespaced {
            true => format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural),
            false => format!("{prefix}/{}/{{name}}", r.plural),
        };
        let query =
            |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
        paths.insert(
            path,
            json!({"patch": {
                "operationId": format!("patch{}", r.kind),
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": r.kind},
                "parameters": [query("dryRun"), query("fieldManager"), query("fieldValidation"), query("force")],
                "responses": {"200": {"description": "OK"}},
            }}),
        );
    }
    for r in matching {
        let name = if group.is_empty() {
            format!("io.k8s.api.core.{version}.{}", r.kind)
        } else {
            format!("{group}.{version}.{}", r.kind)
        };
        schemas.insert(
            name,
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                "x-kubernetes-group-version-kind": [{"group": group, "version": version, "kind": r.kind}]}),
        );
    }
    Some(
        json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.13"}, "paths": paths, "components": {"schemas": schemas}}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        let kube = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(aggregated_version(Some(kube)), Some("v2"));
        assert_eq!(aggregated_version(Some("application/json")), None);
        assert_eq!(aggregated_version(None), None);
        assert!(version_priority("v2") > version_priority("v1"));
        assert!(version_priority("v1") > version_priority("v1beta1"));
    }
}
