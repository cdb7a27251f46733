use serde_json::{Value, json};

use super::*;
use crate::configmap_sync::ConfigMapSync;
use crate::environment_sync::EnvironmentSync;
use kube::CustomResourceExt;

/// An EnvironmentSync at `v1beta1` with every field of its schema set (checked by
/// `the_fixtures_set_every_field_of_the_schema`), as the controller writes its status.
fn environment_sync() -> Value {
    let condition = json!({"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
        "message": "applied", "observedGeneration": 3, "lastTransitionTime": "2026-11-28T10:00:00Z"});
    json!({
        "apiVersion": "weaver.example.com/v1beta1",
        "kind": "EnvironmentSync",
        "metadata": {"name": "apps", "namespace": "team-a", "labels": {"team": "a"},
            "annotations": {"weaver.example.com/approved-by": "alice"}},
        "spec": {
            "source": {"url": "https://git.example/apps.git", "ref": {"branch": "main", "tag": "v1", "semver": "~1", "commit": "0123456789abcdef0123456789abcdef01234567"},
                "secretRef": {"name": "git"}, "caSecretRef": {"name": "ca"}, "path": "clusters/prod",
                "verify": {"mode": "all", "secretRef": {"name": "signers"}},
                "oci": {"url": "oci://registry.example/apps", "tag": "main", "digest": format!("sha256:{}", "0".repeat(64)), "insecure": true,
                    "semver": ">=1 <2", "verify": {"provider": "cosign", "secretRef": {"name": "cosign-keys"}}}},
            "environments": ["prod-*"],
            "environmentSelector": "tier=prod",
            "interval": "5m", "retryInterval": "1m", "timeout": "10m",
            "suspend": true, "prune": false, "wait": true, "correctDrift": true,
            "serviceAccountName": "deployer",
            "decryption": {"secretRef": {"name": "age"}},
            "dependsOn": [{"name": "infra", "namespace": "platform"}],
            "approval": "Manual",
            "approvedPlan": "sha256:abc",
            "kubeConfig": {"secretRef": {"name": "remote"}},
            "promotion": {"interval": "10m", "push": {"branch": "weaver/promote"}, "author": {"name": "Bot", "email": "bot@example.com"},
                "signingKey": {"secretRef": {"name": "bot-key"}}},
            "imageUpdates": {"interval": "5m", "push": {"branch": "weaver/images"}, "author": {"name": "Bot", "email": "bot@example.com"},
                "signingKey": {"secretRef": {"name": "bot-key"}}, "pullSecrets": [{"name": "registry"}]},
            "windows": [{"kind": "deny", "schedule": "0 22 * * *", "duration": "8h", "timeZone": "Europe/Berlin"}],
            "webhook": {"secretRef": {"name": "hook"}},
            "chartCredentials": [{"url": "oci://registry.example/charts", "secretRef": {"name": "charts"}}],
            "previews": {"branches": "preview/*", "environment": "dev", "namespace": "shop-{name}", "max": 3, "expireAfter": "72h",
                "url": "https://{name}.preview.example.org",
                "pullRequests": {"labels": ["preview"]}, "decryption": "Branches",
                "forge": {"provider": "GitHub", "url": "https://api.github.com", "repository": "shop/web", "secretRef": {"name": "forge"}}}
        },
        "status": {
            "observedGeneration": 3,
            "conditions": [condition],
            "lastAttemptedRevision": "0123456789abcdef0123456789abcdef01234567",
            "lastAppliedRevision": "0123456789abcdef0123456789abcdef01234567",
            "lastAppliedGeneration": 3,
            "lastHandledReconcileAt": "2026-11-28T10:00:00Z",
            "pendingPlan": {"digest": "sha256:def", "revision": "0123456789ab",
                "releases": [{"environment": "prod", "release": "web", "create": 1, "update": 2, "delete": 3}]},
            "held": {"reason": "no allow window is open", "until": "2026-11-28T22:00:00Z"},
            "drift": {"drifted": 2, "missing": 1, "summary": "2 drifted, 1 missing"},
            "environments": [
                {"name": "prod", "revision": "0123456789ab", "result": "Applied", "message": "ok",
                 "created": 1, "configured": 2, "unchanged": 3, "pruned": 4, "failed": 5, "drifted": 6, "missing": 7},
                {"name": "prod-eu", "result": "AwaitingApproval", "created": 0, "configured": 0, "unchanged": 0, "pruned": 0, "failed": 0}
            ],
            "environmentsReady": "1/2",
            "history": [{"revision": "0123456789ab", "time": "2026-11-28T10:00:00Z", "result": "ReconciliationSucceeded",
                "message": "applied", "durationSeconds": 1.5,
                "approval": {"digest": "sha256:abc", "approvedBy": "alice", "approvedAt": "2026-11-28T09:00:00Z"},
                "signedBy": "cosign-keys/release.pub (ECDSA P-256 key SHA256:q0zS)"}],
            "artifact": {"tag": "1.2.0", "digest": format!("sha256:{}", "0".repeat(64)),
                "signedBy": "cosign-keys/release.pub (ECDSA P-256 key SHA256:q0zS)"},
            "promotion": {"lastAttemptTime": "2026-11-28T10:00:00Z", "revision": "0123456789ab", "branch": "main",
                "lastPushedCommit": "fedcba", "lastPushTime": "2026-11-28T10:01:00Z",
                "targets": [{"environment": "prod", "from": "staging", "passed": false,
                    "gates": [{"gate": "check", "passed": false, "expression": "true", "evidence": ["no"]}],
                    "changes": ["web values image.tag: \"1.0.0\" -> 1.1.0"]}]},
            "imageUpdates": {"lastAttemptTime": "2026-11-28T10:00:00Z", "revision": "0123456789ab", "branch": "main",
                "lastPushedCommit": "fedcba", "lastPushTime": "2026-11-28T10:01:00Z",
                "images": [
                    {"environment": "dev", "image": "registry.example/web", "newest": "1.5.0@sha256:00ff",
                        "signedBy": "keys/cosign.pub (ECDSA P-256 key SHA256:q0zS)",
                        "passedOver": "1 not signed (no cosign signature, sha256-DIGEST.sig) (1.6.0)",
                        "heldBack": "the pin 1.7.0 ranks above 1.5.0"},
                    {"environment": "dev", "image": "registry.example/api"}
                ],
                "changes": [
                    {"environment": "dev", "release": "web", "image": "web", "from": "1.4.2@sha256:00aa", "to": "1.5.0@sha256:00ff"},
                    {"environment": "dev", "release": "api", "image": "api", "to": "2.0.0"}
                ],
                "requests": 4},
            "previews": [{"name": "a", "branch": "preview/a", "commit": "0123456789abcdef0123456789abcdef01234567",
                "namespace": "shop-a", "environment": "dev--a", "state": "Waiting", "url": "https://a.preview.example.org",
                "lastAppliedCommit": "0123456789abcdef0123456789abcdef01234567",
                "message": "over spec.previews.max"},
                {"name": "pr-7", "branch": "feature/a", "pullRequest": 7, "commit": "0123456789abcdef0123456789abcdef01234567",
                "namespace": "shop-pr-7", "state": "Ready", "commitStatus": "success"}]
        }
    })
}

fn config_map_sync() -> Value {
    json!({
        "apiVersion": "weaver.example.com/v1beta1",
        "kind": "ConfigMapSync",
        "metadata": {"name": "settings", "namespace": "team-a"},
        "spec": {"source": {"name": "settings"}, "targetNamespaces": ["a", "b"],
            "namespaceSelector": {"matchLabels": {"team": "a"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]},
            "serviceAccountName": "copier"},
        "status": {"observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Synced", "message": "2/2 targets in sync",
                "observedGeneration": 1, "lastTransitionTime": "2026-11-28T10:00:00Z"}],
            "targets": [{"namespace": "a", "synced": true, "reason": "Synced"},
                {"namespace": "b", "synced": false, "reason": "Forbidden", "message": "denied"}],
            "targetsInSync": "1/2"}
    })
}

fn at(mut object: Value, version: &str) -> Value {
    object["apiVersion"] = json!(format!("{GROUP}/{version}"));
    object
}

/// The dotted paths of every property a schema declares (`[]` for a list's items).
fn property_paths(schema: &Value, prefix: &str, out: &mut Vec<String>) {
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            let path = format!("{prefix}.{name}");
            out.push(path.clone());
            property_paths(property, &path, out);
        }
    }
    if schema["items"].is_object() {
        property_paths(&schema["items"], &format!("{prefix}[]"), out);
    }
}

/// The dotted paths an object sets, as [`property_paths`] writes them.
fn set_paths(value: &Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            let path = format!("{prefix}.{k}");
            out.push(path.clone());
            set_paths(v, &path, out);
        }),
        Value::Array(items) => items.iter().for_each(|v| set_paths(v, &format!("{prefix}[]"), out)),
        _ => {}
    }
}

fn versions(crd: &Value) -> Vec<(String, Value)> {
    crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap().to_string(), v["schema"]["openAPIV3Schema"].clone()))
        .collect()
}

fn crd_of(kind: &str) -> Value {
    let (crd, old) = match kind {
        "EnvironmentSync" => (serde_json::to_value(EnvironmentSync::crd()).unwrap(), environment_sync_version()),
        _ => (serde_json::to_value(ConfigMapSync::crd()).unwrap(), config_map_sync_version()),
    };
    let mut crd = crd;
    crd["spec"]["versions"].as_array_mut().unwrap().push(old);
    crd
}

#[test]
fn the_fixtures_set_every_field_of_the_schema() {
    // metadata is the API server's; a condition's fields are Kubernetes' own.
    for fixture in [environment_sync(), config_map_sync()] {
        let crd = crd_of(fixture["kind"].as_str().unwrap());
        for (version, schema) in versions(&crd) {
            let mut declared = Vec::new();
            property_paths(&schema, "", &mut declared);
            let mut set = Vec::new();
            set_paths(&convert(fixture.clone(), &format!("{GROUP}/{version}")).unwrap(), "", &mut set);
            let missing: Vec<&String> = declared
                .iter()
                .filter(|p| !p.starts_with(".metadata") && !p.contains(".conditions[]."))
                .filter(|p| !set.contains(p))
                .collect();
            assert!(missing.is_empty(), "{} {version}: the fixture leaves out {missing:?}", fixture["kind"]);
        }
    }
}

#[test]
fn every_field_survives_a_round_trip_both_ways() {
    for fixture in [environment_sync(), config_map_sync()] {
        let down = convert(fixture.clone(), &format!("{GROUP}/{VERSION}")).unwrap();
        assert_eq!(down["apiVersion"], "weaver.example.com/v1alpha1");
        let mut restored = down.clone();
        if fixture["kind"] == "EnvironmentSync" {
            // What v1alpha1 cannot say is kept in an annotation; nothing else differs.
            let annotations = restored["metadata"]["annotations"].as_object_mut().unwrap();
            let kept = annotations.remove(V1BETA1_FIELDS).expect("kept");
            let kept: Value = serde_json::from_str(kept.as_str().unwrap()).unwrap();
            for (pointer, value) in kept.as_object().unwrap() {
                let (parent, field) = pointer.rsplit_once('/').unwrap();
                restored.pointer_mut(parent).unwrap()[field] = value.clone();
            }
        }
        assert_eq!(restored["metadata"], fixture["metadata"], "metadata does not change otherwise");
        assert_eq!(restored["spec"], fixture["spec"], "the spec is the same in both versions");
        let up = convert(down.clone(), &format!("{GROUP}/{STORAGE_VERSION}")).unwrap();
        assert_eq!(up, fixture, "v1beta1 -> v1alpha1 -> v1beta1");
        let down_again = convert(up, &format!("{GROUP}/{VERSION}")).unwrap();
        assert_eq!(down_again, down, "v1alpha1 -> v1beta1 -> v1alpha1");
    }
}

#[test]
fn v1alpha1_says_image_updates_in_the_sentences_the_0_1_controller_wrote() {
    let down = convert(environment_sync(), &format!("{GROUP}/{VERSION}")).unwrap();
    assert_eq!(
        down["status"]["imageUpdates"]["images"],
        json!([
            "dev registry.example/web 1.5.0@sha256:00ff — signed by keys/cosign.pub (ECDSA P-256 key SHA256:q0zS) — passed over: 1 not signed (no cosign signature, sha256-DIGEST.sig) (1.6.0) — held back: the pin 1.7.0 ranks above 1.5.0",
            "dev registry.example/api none allowed"
        ])
    );
    assert_eq!(
        down["status"]["imageUpdates"]["changes"],
        json!(["dev: web web 1.4.2@sha256:00aa -> 1.5.0@sha256:00ff", "dev: api api unset -> 2.0.0"])
    );
}

#[test]
fn converted_objects_are_valid_at_their_version_and_read_as_the_types() {
    let builtins = weaver_kube_schema::Builtins::get();
    for fixture in [environment_sync(), config_map_sync()] {
        let crd = crd_of(fixture["kind"].as_str().unwrap());
        for (version, schema) in versions(&crd) {
            let mut schemas = weaver_kube_schema::Schemas::default();
            let id = schemas.compile_crd(&schema);
            let object = convert(fixture.clone(), &format!("{GROUP}/{version}")).unwrap();
            let issues = weaver_kube_schema::check(builtins, &schemas, id, &object, true, true);
            assert!(issues.is_empty(), "{} {version}: {issues:?}", fixture["kind"]);
        }
    }
    let typed: EnvironmentSync = serde_json::from_value(environment_sync()).unwrap();
    assert_eq!(serde_json::to_value(&typed).unwrap(), environment_sync(), "the types keep every field");
    let typed: ConfigMapSync = serde_json::from_value(config_map_sync()).unwrap();
    assert_eq!(serde_json::to_value(&typed).unwrap(), config_map_sync(), "the types keep every field");
}

#[test]
fn a_value_a_newer_controller_writes_is_kept_as_written() {
    let mut newer = environment_sync();
    newer["status"]["environments"][0]["result"] = json!("RolledBack");
    newer["status"]["history"][0]["result"] = json!("VerificationFailed");
    let typed: EnvironmentSync = serde_json::from_value(newer.clone()).unwrap();
    let status = typed.status.as_ref().unwrap();
    assert_eq!(status.environments[0].result, crate::environment_sync::EnvironmentResult::Other("RolledBack".into()));
    assert!(!status.environments[0].result.is_applied());
    assert_eq!(serde_json::to_value(&typed).unwrap(), newer);
    let down = convert(newer.clone(), &format!("{GROUP}/{VERSION}")).unwrap();
    assert_eq!(down["status"]["environments"][0]["result"], "RolledBack");
    assert_eq!(convert(down, &format!("{GROUP}/{STORAGE_VERSION}")).unwrap(), newer);
}

#[test]
fn the_v1beta1_schema_enumerates_what_v1alpha1_left_open() {
    let crd = crd_of("EnvironmentSync");
    let beta = &versions(&crd)[0].1;
    let env = &beta["properties"]["status"]["properties"]["environments"]["items"]["properties"]["result"];
    assert_eq!(env["enum"], json!(["Applied", "Unchanged", "Failed", "AwaitingApproval", "Pending", "Skipped"]));
    let alpha = &versions(&crd)[1].1;
    let env = &alpha["properties"]["status"]["properties"]["environments"]["items"]["properties"]["result"];
    assert!(env.get("enum").is_none(), "v1alpha1 is frozen as 0.1.0 served it");
}

#[test]
fn sentences_another_writer_put_in_v1alpha1_are_read_as_far_as_they_go() {
    let mut odd = at(environment_sync(), VERSION);
    odd = convert(odd, &format!("{GROUP}/{VERSION}")).unwrap();
    odd["status"]["imageUpdates"]["images"] = json!(["lonely", 7]);
    odd["status"]["imageUpdates"]["changes"] = json!(["no colon here"]);
    let up = convert(odd, &format!("{GROUP}/{STORAGE_VERSION}")).unwrap();
    assert_eq!(up["status"]["imageUpdates"]["images"], json!([{"environment": "lonely", "image": ""}]));
    assert_eq!(
        up["status"]["imageUpdates"]["changes"],
        json!([{"environment": "no colon here", "release": "", "image": "", "to": ""}])
    );
    let _: EnvironmentSync = serde_json::from_value(up).expect("still readable by the controller");
}

#[test]
fn other_kinds_and_versions_are_refused_by_name() {
    let err = convert(
        json!({"apiVersion": "weaver.example.com/v2", "kind": "EnvironmentSync"}),
        "weaver.example.com/v1beta1",
    )
    .unwrap_err();
    assert!(err.contains("\"weaver.example.com/v2\" is not a version weaver serves"), "{err}");
    let err =
        convert(json!({"apiVersion": "weaver.example.com/v1beta1", "kind": "Pod"}), "weaver.example.com/v1alpha1")
            .unwrap_err();
    assert!(err.contains("kind \"Pod\""), "{err}");
}

#[test]
fn an_object_served_before_the_webhook_is_set_reads_as_the_types() {
    // Strategy None: the v1alpha1 object with its apiVersion changed alone.
    let mut served = convert(environment_sync(), &format!("{GROUP}/{VERSION}")).unwrap();
    served["apiVersion"] = json!(format!("{GROUP}/{STORAGE_VERSION}"));
    let typed: EnvironmentSync = serde_json::from_value(served).expect("readable");
    let mut expected: EnvironmentSync = serde_json::from_value(environment_sync()).unwrap();
    // Kept in the annotation, which only the webhook puts back.
    let status = expected.status.as_mut().unwrap();
    status.artifact = None;
    status.previews.clear();
    status.history[0].signed_by = None;
    assert_eq!(typed.status, expected.status, "the sentences read as the objects the webhook would give");
    // Written back so, it is in v1beta1's form, and down again in v1alpha1's.
    let again = convert(serde_json::to_value(&typed).unwrap(), &format!("{GROUP}/{VERSION}")).unwrap();
    assert_eq!(again, convert(environment_sync(), &format!("{GROUP}/{VERSION}")).unwrap());
}

#[test]
fn sentences_served_at_v1beta1_are_told_from_its_objects() {
    let served = |images: Value, changes: Value| {
        json!({"apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync",
            "status": {"imageUpdates": {"images": images, "changes": changes}}})
    };
    assert!(holds_older_fields(&served(json!(["dev registry.example/web 1.5.0@sha256:00"]), json!([]))));
    assert!(holds_older_fields(&served(json!([]), json!(["dev: web web 1.4.2 -> 1.5.0"]))));
    let objects = served(json!([{"environment": "dev", "image": "web"}]), json!([]));
    assert!(!holds_older_fields(&objects));
    assert!(!holds_older_fields(&json!({"apiVersion": "weaver.example.com/v1beta1", "kind": "ConfigMapSync"})));
}

#[test]
fn an_update_through_v1alpha1_keeps_the_verification_it_cannot_say() {
    let mut fixture = environment_sync();
    fixture["metadata"].as_object_mut().unwrap().remove("annotations");
    fixture["spec"]["promotion"].as_object_mut().unwrap().remove("signingKey");
    let mut down = convert(fixture.clone(), &format!("{GROUP}/{VERSION}")).unwrap();
    assert!(down.pointer("/spec/source/verify").is_none() && down.pointer("/spec/imageUpdates/signingKey").is_none());
    let kept: Value = serde_json::from_str(down["metadata"]["annotations"][V1BETA1_FIELDS].as_str().unwrap()).unwrap();
    assert_eq!(
        kept.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "/spec/source/verify",
            "/spec/imageUpdates/signingKey",
            "/spec/chartCredentials",
            "/spec/source/oci",
            "/status/artifact",
            "/spec/previews",
            "/status/previews",
            "/status/history/0/signedBy"
        ]
    );
    // A v1alpha1 client changes what it can say, and drops spec.imageUpdates altogether.
    down["spec"]["interval"] = json!("1m");
    down["spec"].as_object_mut().unwrap().remove("imageUpdates");
    let up = convert(down, &format!("{GROUP}/{STORAGE_VERSION}")).unwrap();
    assert_eq!(up["spec"]["source"]["verify"], fixture["spec"]["source"]["verify"], "the verification is kept");
    assert_eq!(up["spec"]["chartCredentials"], fixture["spec"]["chartCredentials"], "so are the credentials");
    assert_eq!(up["spec"]["interval"], "1m");
    assert!(up["spec"].get("imageUpdates").is_none(), "no field comes back without its parent");
    assert!(up["metadata"].get("annotations").is_none(), "the annotation is gone, and the map it was put in");
    // A v1alpha1 object of a client that set a field of its own keeps its value, and one that
    // names a field not kept so is not written.
    let mut odd = convert(fixture.clone(), &format!("{GROUP}/{VERSION}")).unwrap();
    odd["metadata"]["annotations"][V1BETA1_FIELDS] =
        json!(r#"{"/spec/suspend": false, "/spec/source/verify": {"secretRef": {"name": "x"}}}"#);
    let up = convert(odd, &format!("{GROUP}/{STORAGE_VERSION}")).unwrap();
    assert_eq!(up["spec"]["suspend"], true);
    assert_eq!(up["spec"]["source"]["verify"], json!({"secretRef": {"name": "x"}}));
}

#[test]
fn an_oci_source_is_kept_through_v1alpha1() {
    let mut fixture = environment_sync();
    fixture["metadata"].as_object_mut().unwrap().remove("annotations");
    fixture["spec"]["source"] = json!({"oci": {"url": "oci://registry.example/shop/deploy", "tag": "main"}});
    let down = convert(fixture.clone(), &format!("{GROUP}/{VERSION}")).unwrap();
    assert!(down.pointer("/spec/source/oci").is_none(), "{down}");
    let up = convert(down, &format!("{GROUP}/{STORAGE_VERSION}")).unwrap();
    assert_eq!(up["spec"]["source"], fixture["spec"]["source"]);
}
