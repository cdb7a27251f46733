//! `weaver drift` against a cluster: the in-process fake, or a real cluster with
//! WEAVER_TEST_KUBECONFIG. The cluster is set up the way `weaver apply` leaves it: the rendered
//! objects server-side applied by field manager `weaver`, and a release record (status
//! deployed) per release.

use crate::common;

use common::cluster::TestCluster;
use common::{Repo, Run};
use serde_json::{Value, json};
use weaver_plan::release::record::{Record, Status, to_secrets};

/// The demo's dev environment, deployed into a namespace of the test cluster.
struct Deployed {
    cluster: TestCluster,
    repo: Repo,
    ns: String,
    /// The rendered objects, secret values included, as applied.
    objects: Vec<Value>,
}

fn release_of(object: &Value) -> &str {
    object.pointer("/metadata/labels/weaver.example.com~1release").and_then(Value::as_str).unwrap_or_default()
}

impl Deployed {
    /// Renders dev, applies it as `weaver` and records revision 1 of each release as deployed.
    fn new() -> Deployed {
        let deployed = Deployed::unrecorded();
        for release in ["redis", "web"] {
            deployed.record(release, 1, Status::Deployed, deployed.manifests(release));
        }
        deployed
    }

    /// Applied, but without release records.
    fn unrecorded() -> Deployed {
        Deployed::unrecorded_after(|_| {})
    }

    /// Applied after `edit` changed the demo repository, but without release records.
    fn unrecorded_after(edit: impl FnOnce(&Repo)) -> Deployed {
        let cluster = TestCluster::start();
        let ns = cluster.namespace("shop");
        let repo = Repo::demo_without_operator();
        let dev = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
        repo.write("environments/dev.yaml", &dev.replace("namespace: shop-dev", &format!("namespace: {ns}")));
        edit(&repo);
        let out = repo.weaver(&["render", "--env", "dev", "--show-secrets"]);
        let objects = weaver_yaml::documents(std::path::Path::new("render"), out.success()).unwrap();
        cluster.apply(&objects, "weaver");
        Deployed { cluster, repo, ns, objects }
    }

    fn manifests(&self, release: &str) -> Vec<Value> {
        self.objects.iter().filter(|o| release_of(o) == release).cloned().collect()
    }

    /// Writes a release record as `weaver apply` does.
    fn record(&self, release: &str, revision: u32, status: Status, manifests: Vec<Value>) {
        let record = Record {
            revision,
            status,
            time: format!("2026-11-21T10:0{revision}:00Z"),
            commit: Some("3a5a33c661fbb5892d455fb48f5cc86af5f919ea".into()),
            dirty: Some(false),
            ..Record::deployed(release, "dev", manifests)
        };
        self.cluster.apply(&to_secrets(&record, &self.ns).unwrap(), "weaver");
    }

    fn object(&self, kind: &str, name: &str) -> Value {
        self.objects.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == name).unwrap().clone()
    }

    fn weaver(&self, args: &[&str]) -> Run {
        self.repo.weaver_on(&self.cluster, args)
    }

    /// `weaver drift --env dev ARGS` in text, JSON, JUnit and HTML; asserts they agree with each
    /// other and with `code`, and returns them.
    fn drift(&self, args: &[&str], code: i32) -> Outputs {
        let run = |format: &str| {
            let mut all = vec!["drift", "--env", "dev", "-o", format];
            all.extend_from_slice(args);
            let run = self.weaver(&all);
            assert_eq!(run.code, code, "drift -o {format}: stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
            run
        };
        let (text, json, junit, html) = (run("text"), run("json"), run("junit"), run("html"));
        let parsed: Value = serde_json::from_str(&json.stdout).expect("drift -o json prints JSON");
        let xml = parse_xml(&junit.stdout);
        python_parses_xml(&junit.stdout);
        assert_eq!(
            json_facts(&parsed),
            junit_facts(&xml),
            "JSON and JUnit disagree:\n{}\n{}",
            json.stdout,
            junit.stdout
        );
        assert_eq!(changed(json_facts(&parsed)), text_facts(&text.stdout), "JSON and text disagree:\n{}", text.stdout);
        assert_eq!(parsed["drifted"], json!(code == 2));
        for (id, field) in [("count-drifted", "drifted"), ("count-missing", "missing"), ("count-in-sync", "inSync")] {
            let count = common::browser::text_of(&html.stdout, id);
            assert_eq!(
                count,
                parsed["summary"][field].to_string(),
                "HTML and JSON disagree on {field}:\n{}",
                html.stdout
            );
        }
        Outputs { text: text.stdout, stderr: text.stderr, json: parsed, junit: junit.stdout, xml, html: html.stdout }
    }
}

struct Outputs {
    text: String,
    stderr: String,
    json: Value,
    junit: String,
    xml: Element,
    html: String,
}

/// What a report says, comparable across formats: (release, object, state, drifted paths).
type Facts = Vec<(String, String, String, Vec<String>)>;

fn json_facts(report: &Value) -> Facts {
    let mut facts = Vec::new();
    for release in report["releases"].as_array().unwrap() {
        let name = release["release"].as_str().unwrap().to_string();
        if release["state"] == "no-record" {
            assert_eq!(release["revision"], Value::Null);
            facts.push((name.clone(), String::new(), "no-record".into(), Vec::new()));
        }
        for object in release["objects"].as_array().unwrap() {
            let id = format!(
                "{} {} {}/{}",
                object["apiVersion"].as_str().unwrap(),
                object["kind"].as_str().unwrap(),
                object["namespace"].as_str().unwrap(),
                object["name"].as_str().unwrap()
            );
            let paths =
                object["changes"].as_array().unwrap().iter().map(|c| c["path"].as_str().unwrap().into()).collect();
            facts.push((name.clone(), id, object["state"].as_str().unwrap().into(), paths));
        }
    }
    facts.sort();
    facts
}

fn junit_facts(xml: &Element) -> Facts {
    assert_eq!(xml.name, "testsuites");
    let mut facts = Vec::new();
    for suite in &xml.children {
        assert_eq!(suite.name, "testsuite");
        let release = suite.attr("name").split_once('/').unwrap().1.to_string();
        for case in suite.children.iter().filter(|c| c.name == "testcase") {
            let (state, paths) = match case.children.first() {
                None => ("in-sync", Vec::new()),
                Some(skipped) if skipped.name == "skipped" => {
                    facts.push((release.clone(), String::new(), "no-record".into(), Vec::new()));
                    continue;
                }
                Some(failure) if failure.attr("type") == "missing" => ("missing", Vec::new()),
                Some(failure) => {
                    assert_eq!(failure.attr("type"), "drift");
                    // `path: recorded → live`; paths never contain ": ".
                    ("drifted", failure.text.lines().map(|l| l.split_once(": ").unwrap().0.to_string()).collect())
                }
            };
            facts.push((release.clone(), case.attr("name").to_string(), state.into(), paths));
        }
    }
    facts.sort();
    facts
}

/// The text report lists drifted and missing objects only; objects in sync come from the
/// summary line, which is checked separately.
fn text_facts(text: &str) -> Facts {
    let mut facts = Vec::new();
    let mut current: Option<(String, String, String, Vec<String>)> = None;
    for line in text.lines() {
        if let Some(path) = line.strip_prefix("    ") {
            let entry = current.as_mut().expect("a detail line follows a header");
            if entry.2 == "drifted" {
                entry.3.push(path.split_once(": ").unwrap().0.to_string());
            }
            continue;
        }
        facts.extend(current.take());
        if let Some((sign, rest)) = line.split_once(' ').filter(|(s, _)| *s == "~" || *s == "-") {
            let (id, release) = rest.split_once(" (release ").unwrap();
            let release = release.split([',', ')']).next().unwrap().to_string();
            let state = if sign == "~" { "drifted" } else { "missing" };
            current = Some((release, id.to_string(), state.to_string(), Vec::new()));
        }
    }
    facts.extend(current);
    facts.sort();
    facts
}

/// Drops objects in sync and releases without a record from facts (the text lists neither).
fn changed(facts: Facts) -> Facts {
    facts.into_iter().filter(|f| f.2 == "drifted" || f.2 == "missing").collect()
}

/// (kind, name, state, [(path, op)]) of an object.
type Entry = (String, String, String, Vec<(String, String)>);

/// The objects of `report` that are not in sync.
fn not_in_sync(report: &Value) -> Vec<Entry> {
    report["releases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["objects"].as_array().unwrap())
        .filter(|o| o["state"] != "in-sync")
        .map(|o| {
            let changes = o["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c["path"].as_str().unwrap().into(), c["op"].as_str().unwrap().into()))
                .collect();
            (
                o["kind"].as_str().unwrap().into(),
                o["name"].as_str().unwrap().into(),
                o["state"].as_str().unwrap().into(),
                changes,
            )
        })
        .collect()
}

#[test]
fn right_after_an_apply_nothing_has_drifted() {
    let deployed = Deployed::new();
    let out = deployed.drift(&[], 0);
    assert_eq!(out.text, "0 drifted, 0 missing, 7 in sync\n");
    assert_eq!(out.json["summary"], json!({"drifted": 0, "missing": 0, "inSync": 7, "releasesWithoutRecord": 0}));
    assert_eq!(out.json["schemaVersion"], 1);
    assert_eq!(out.json["environment"], "dev");
    let web = out.json["releases"].as_array().unwrap().iter().find(|r| r["release"] == "web").unwrap();
    assert_eq!(web["state"], "in-sync");
    assert_eq!(web["namespace"], deployed.ns.as_str());
    assert_eq!(
        web["revision"],
        json!({"number": 1, "time": "2026-11-21T10:01:00Z", "commit": "3a5a33c661fbb5892d455fb48f5cc86af5f919ea", "dirty": false})
    );
    assert_eq!(out.xml.attr("tests"), "7");
    assert_eq!(out.xml.attr("failures"), "0");
    assert!(out.stderr.is_empty(), "{}", out.stderr);
}

#[test]
fn a_recorded_field_changed_out_of_band_is_drift_and_nothing_else_is() {
    let deployed = Deployed::new();
    let web = deployed.object("Deployment", "web");
    deployed.cluster.merge_patch(&web, &json!({"spec": {"replicas": 3}}), "kubectl-scale");
    let config = deployed.object("ConfigMap", "web-config");
    deployed.cluster.merge_patch(&config, &json!({"data": {"LOG_LEVEL": "info"}}), "kubectl-edit");
    let out = deployed.drift(&[], 2);
    assert_eq!(
        not_in_sync(&out.json),
        vec![
            (
                "ConfigMap".into(),
                "web-config".into(),
                "drifted".into(),
                vec![("data.LOG_LEVEL".into(), "replace".into())]
            ),
            ("Deployment".into(), "web".into(), "drifted".into(), vec![("spec.replicas".into(), "replace".into())]),
        ]
    );
    let ns = &deployed.ns;
    assert_eq!(
        out.text,
        format!(
            "~ v1 ConfigMap {ns}/web-config (release web, revision 1)\n    data.LOG_LEVEL: \"debug\" → \"info\"\n\
             ~ apps/v1 Deployment {ns}/web (release web, revision 1)\n    spec.replicas: 1 → 3\n\
             2 drifted, 0 missing, 5 in sync\n"
        )
    );
    let deployment = out.json["releases"][1]["objects"].as_array().unwrap().iter().find(|o| o["kind"] == "Deployment");
    assert_eq!(
        deployment.unwrap()["changes"],
        json!([{"path": "spec.replicas", "op": "replace", "recorded": 1, "live": 3, "redacted": false}])
    );
    assert!(out.junit.contains("spec.replicas: 1 → 3</failure>"), "{}", out.junit);
    assert!(out.junit.contains("message=\"1 field drifted since revision 1\""), "{}", out.junit);
    html_renders_in_a_browser(&out.html, ns);
}

/// The drift page as headless Chromium parses it: the counts, a block per drifted object with
/// its recorded and live values; a screenshot under target/report-screenshots/.
fn html_renders_in_a_browser(html: &str, ns: &str) {
    use common::browser::{chromium, dom, shared_screenshot, text_of};
    let browser = chromium();
    if !common::interop_available("chromium (apt-get install chromium)", browser.is_some()) {
        return;
    }
    let browser = browser.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let page = scratch.path().join("drift.html");
    std::fs::write(&page, html).unwrap();
    let dom = dom(&browser, &format!("file://{}", page.display()));
    assert_eq!(
        [text_of(&dom, "count-drifted"), text_of(&dom, "count-missing"), text_of(&dom, "count-in-sync")],
        ["2", "0", "5"]
    );
    assert_eq!(dom.matches("<details class=\"object\" data-state=\"drifted\">").count(), 2, "{dom}");
    assert!(dom.contains(&format!("apps/v1 Deployment {ns}/web</summary>")), "{dom}");
    assert!(dom.contains("<span class=\"del\">- 1</span><span class=\"add\">+ 3</span>"), "{dom}");
    let shot = common::project_root().join("target/report-screenshots/drift-dev.png");
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    shared_screenshot(&browser, &format!("file://{}", page.display()), (1280, 1200), &shot);
    assert!(std::fs::read(&shot).expect("chromium wrote the screenshot").starts_with(b"\x89PNG"));
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "screenshot of the HTML drift report: {}", shot.display());
}

#[test]
fn what_other_managers_add_is_not_drift() {
    let deployed = Deployed::new();
    let web = deployed.object("Deployment", "web");
    deployed.cluster.merge_patch(
        &web,
        &json!({"metadata": {"labels": {"team": "shop"}, "annotations": {"owner": "someone"}}}),
        "kubectl-label",
    );
    // A mutating webhook or another controller: an env var in weaver's container, a sidecar.
    let addition = json!({"apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": deployed.ns},
    "spec": {"template": {"spec": {"containers": [
        {"name": "web", "env": [{"name": "INJECTED", "value": "1"}]},
        {"name": "proxy", "image": "envoyproxy/envoy:v1.28.0"}
    ]}}}});
    deployed.cluster.apply(&[addition], "injector");
    let config = deployed.object("ConfigMap", "web-config");
    deployed.cluster.merge_patch(&config, &json!({"data": {"EXTRA": "yes"}}), "kubectl-edit");
    let live = deployed.cluster.list("apps/v1", "Deployment", "deployments", &deployed.ns);
    let containers =
        &live.iter().find(|d| d["metadata"]["name"] == "web").unwrap()["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().unwrap().len(), 2, "the sidecar is there: {containers:#}");
    assert!(containers.to_string().contains("INJECTED"), "{containers:#}");
    let out = deployed.drift(&[], 0);
    assert_eq!(out.text, "0 drifted, 0 missing, 7 in sync\n");
}

/// Values the API server stores differently from how they were applied: zero values of
/// `omitempty` fields dropped, quantities canonicalized (a resource list's rounded up to a milli).
/// Not drift; but a `false` someone removed is.
#[test]
fn how_the_server_stores_applied_values_is_not_drift_but_removing_them_is() {
    let deployed = Deployed::unrecorded_after(|repo| {
        let edit = |path: &str, from: &str, to: &str| {
            let text = std::fs::read_to_string(repo.path().join(path)).unwrap();
            assert!(text.contains(from), "{path} has no {from:?}");
            repo.write(path, &text.replacen(from, to, 1));
        };
        let deployment = "charts/web-app/templates/deployment.yaml";
        edit(
            deployment,
            "    spec:\n      securityContext:\n",
            "    spec:\n      automountServiceAccountToken: false\n      hostNetwork: false\n      securityContext:\n",
        );
        edit(deployment, "          ports:\n", "          stdin: false\n          ports:\n");
        edit("charts/web-app/values.yaml", "cpu: 100m", "cpu: \"0.1000000001\"");
        edit("charts/web-app/values.yaml", "memory: 256Mi", "memory: 0.25Gi");
    });
    for release in ["redis", "web"] {
        deployed.record(release, 1, Status::Deployed, deployed.manifests(release));
    }
    let live = deployed.cluster.list("apps/v1", "Deployment", "deployments", &deployed.ns);
    let pod = &live.iter().find(|d| d["metadata"]["name"] == "web").unwrap()["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["resources"]["limits"]["memory"], "256Mi", "{pod:#}");
    assert_eq!(pod["containers"][0]["resources"]["requests"]["cpu"], "101m", "{pod:#}");
    if deployed.cluster.is_fake() {
        // The fake keeps them (a real kube-apiserver is right; drift handles both).
        eprintln!("note: the fake stores hostNetwork/stdin: false, which a real API server drops (omitempty)");
    } else {
        assert_eq!(pod.get("hostNetwork"), None, "a real server drops a false hostNetwork: {pod:#}");
        assert_eq!(pod["containers"][0].get("stdin"), None, "and a false stdin: {pod:#}");
    }
    deployed.drift(&[], 0);

    let web = deployed.object("Deployment", "web");
    let patch = json!({"spec": {"template": {"spec": {"automountServiceAccountToken": null}}}});
    deployed.cluster.merge_patch(&web, &patch, "kubectl-edit");
    let out = deployed.drift(&[], 2);
    assert!(
        out.text.contains("    spec.template.spec.automountServiceAccountToken: false → (removed)\n"),
        "{}",
        out.text
    );
    assert_eq!(
        not_in_sync(&out.json),
        vec![(
            "Deployment".into(),
            "web".into(),
            "drifted".into(),
            vec![("spec.template.spec.automountServiceAccountToken".into(), "remove".into())]
        )]
    );
}

#[test]
fn a_deleted_object_is_missing() {
    let deployed = Deployed::new();
    deployed.cluster.delete(&deployed.object("ConfigMap", "web-config"));
    let out = deployed.drift(&[], 2);
    assert_eq!(not_in_sync(&out.json), vec![("ConfigMap".into(), "web-config".into(), "missing".into(), Vec::new())]);
    assert_eq!(
        out.text,
        format!(
            "- v1 ConfigMap {}/web-config (release web, revision 1)\n    missing from the cluster\n0 drifted, 1 missing, 6 in sync\n",
            deployed.ns
        )
    );
    assert!(out.junit.contains("<failure type=\"missing\" message=\"missing from the cluster\"/>"), "{}", out.junit);

    // A recorded object whose kind the cluster no longer serves (its CRD was deleted).
    let group = format!("{}.example.com", deployed.cluster.prefix);
    let mut manifests = deployed.manifests("web");
    manifests.push(json!({"apiVersion": format!("{group}/v1"), "kind": "Widget",
        "metadata": {"name": "gear", "namespace": deployed.ns}, "spec": {"teeth": 12}}));
    deployed.record("web", 2, Status::Deployed, manifests);
    let out = deployed.drift(&[], 2);
    let reason = format!("missing from the cluster: the cluster does not serve {group}/v1 Widget");
    assert!(
        out.text
            .contains(&format!("- {group}/v1 Widget {}/gear (release web, revision 2)\n    {reason}\n", deployed.ns)),
        "{}",
        out.text
    );
    assert!(out.junit.contains(&format!("<failure type=\"missing\" message=\"{reason}\"/>")), "{}", out.junit);
    let widget = out.json["releases"][1]["objects"].as_array().unwrap().iter().find(|o| o["kind"] == "Widget").unwrap();
    assert_eq!(widget["reason"], format!("the cluster does not serve {group}/v1 Widget"));
}

#[test]
fn secret_values_never_appear_in_any_format() {
    let deployed = Deployed::new();
    let secret = deployed.object("Secret", "web-secrets");
    let b64 = |text: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(text)
    };
    let mut values: Vec<String> = Vec::new();
    for value in secret["stringData"].as_object().unwrap().values() {
        let plain = value.as_str().unwrap();
        values.extend([plain.to_string(), b64(plain)]);
    }
    assert_eq!(values.len(), 6);
    let new_value = "brand-new-api-key-value";
    values.extend([new_value.to_string(), b64(new_value)]);
    deployed.cluster.merge_patch(
        &secret,
        &json!({"data": {"API_KEY": b64(new_value), "SESSION_SECRET": null}}),
        "kubectl-edit",
    );
    let out = deployed.drift(&[], 2);
    assert_eq!(
        not_in_sync(&out.json),
        vec![(
            "Secret".into(),
            "web-secrets".into(),
            "drifted".into(),
            vec![("data.API_KEY".into(), "replace".into()), ("data.SESSION_SECRET".into(), "remove".into())]
        )]
    );
    let verbose = deployed.weaver(&["drift", "--env", "dev", "-v"]);
    for (what, output) in [
        ("text", out.text.as_str()),
        ("stderr", out.stderr.as_str()),
        ("json", &out.json.to_string()),
        ("junit", out.junit.as_str()),
        ("html", out.html.as_str()),
        ("-v", &format!("{}{}", verbose.stdout, verbose.stderr)),
    ] {
        for value in &values {
            assert!(!output.contains(value.as_str()), "a secret value leaked into the {what} output:\n{output}");
        }
    }
    assert!(out.text.contains("    data.API_KEY: <redacted> → <redacted, changed>\n"), "{}", out.text);
    assert!(out.text.contains("    data.SESSION_SECRET: <redacted> → (removed)\n"), "{}", out.text);
    let changes = &out.json["releases"][1]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Secret")
        .unwrap()["changes"];
    assert_eq!(
        changes[0],
        json!({"path": "data.API_KEY", "op": "replace", "recorded": null, "live": null, "redacted": true})
    );
}

#[test]
fn json_and_junit_carry_the_same_facts_and_a_release_without_record_is_said() {
    // redis has no record; web's newest deployed revision is 2 (a later failed revision 3, and
    // a revision of another environment, do not count).
    let deployed = Deployed::unrecorded();
    let mut old = deployed.manifests("web");
    old.iter_mut().find(|o| o["kind"] == "Deployment").unwrap()["spec"]["replicas"] = json!(7);
    deployed.record("web", 1, Status::Superseded, old.clone());
    deployed.record("web", 2, Status::Deployed, deployed.manifests("web"));
    deployed.record("web", 3, Status::Failed, old);
    deployed.cluster.delete(&deployed.object("Service", "web"));
    let config = deployed.object("ConfigMap", "web-config");
    deployed.cluster.merge_patch(
        &config,
        &json!({"data": {"FEATURE_FLAGS": "off", "LOG_LEVEL": null}}),
        "kubectl-edit",
    );

    let out = deployed.drift(&[], 2);
    let facts = json_facts(&out.json);
    let ns = &deployed.ns;
    let states: Vec<(&str, &str, &str)> = facts.iter().map(|f| (f.0.as_str(), f.1.as_str(), f.2.as_str())).collect();
    let expected_web = [
        format!("apps/v1 Deployment {ns}/web"),
        format!("v1 ConfigMap {ns}/web-config"),
        format!("v1 Secret {ns}/web-secrets"),
        format!("v1 Service {ns}/web"),
    ];
    assert_eq!(
        states,
        vec![
            ("redis", "", "no-record"),
            ("web", expected_web[0].as_str(), "in-sync"),
            ("web", expected_web[1].as_str(), "drifted"),
            ("web", expected_web[2].as_str(), "in-sync"),
            ("web", expected_web[3].as_str(), "missing"),
        ]
    );
    assert_eq!(facts[2].3, vec!["data.FEATURE_FLAGS".to_string(), "data.LOG_LEVEL".to_string()]);
    assert_eq!(changed(facts), text_facts(&out.text));
    assert_eq!(out.json["releases"][1]["revision"]["number"], 2);
    assert_eq!(out.json["releases"][0]["state"], "no-record");
    assert_eq!(out.json["summary"], json!({"drifted": 1, "missing": 1, "inSync": 2, "releasesWithoutRecord": 1}));
    assert!(
        out.text.ends_with("1 drifted, 1 missing, 2 in sync; 1 release without a deployed revision\n"),
        "{}",
        out.text
    );
    assert!(
        out.stderr.contains(&format!(
            "warning: release `redis` has no deployed revision of environment `dev` in namespace {ns}: nothing to compare"
        )),
        "{}",
        out.stderr
    );
    let redis = out.xml.children.iter().find(|s| s.attr("name") == "dev/redis").unwrap();
    assert_eq!((redis.attr("tests"), redis.attr("skipped")), ("1", "1"));
    let web = out.xml.children.iter().find(|s| s.attr("name") == "dev/web").unwrap();
    assert_eq!((web.attr("tests"), web.attr("failures"), web.attr("skipped")), ("4", "2", "0"));
    let revision = web.children[0].children.iter().find(|p| p.attr("name") == "revision").unwrap();
    assert_eq!(revision.attr("value"), "2");
    assert_eq!((out.xml.attr("tests"), out.xml.attr("failures"), out.xml.attr("skipped")), ("5", "2", "1"));

    // No record and nothing drifted is not a failure: a scheduled job stays green.
    let only_redis = deployed.drift(&["-r", "redis"], 0);
    assert_eq!(only_redis.text, "0 drifted, 0 missing, 0 in sync; 1 release without a deployed revision\n");
}

#[test]
fn release_selection_checks_only_the_selected_releases() {
    let deployed = Deployed::new();
    deployed.cluster.delete(&deployed.object("ConfigMap", "redis-config"));
    let web = deployed.drift(&["-r", "web"], 0);
    assert_eq!(web.text, "0 drifted, 0 missing, 4 in sync\n");
    let releases: Vec<&Value> = web.json["releases"].as_array().unwrap().iter().map(|r| &r["release"]).collect();
    assert_eq!(releases, vec!["web"]);
    let data = deployed.drift(&["-l", "tier=data"], 2);
    assert_eq!(
        not_in_sync(&data.json),
        vec![("ConfigMap".into(), "redis-config".into(), "missing".into(), Vec::new())]
    );
    let none = deployed.drift(&["-l", "tier=nothing"], 0);
    assert_eq!(none.text, "0 drifted, 0 missing, 0 in sync\n");
    assert!(none.stderr.contains("warning: no release of environment `dev` matches the selection"), "{}", none.stderr);
}

#[test]
fn drift_renders_nothing_so_needs_no_charts_and_no_age_key() {
    let deployed = Deployed::new();
    deployed.cluster.merge_patch(&deployed.object("Deployment", "web"), &json!({"spec": {"replicas": 2}}), "hpa");
    std::fs::remove_dir_all(deployed.repo.path().join("charts")).unwrap();
    deployed.repo.remove("secrets/dev.agekey");
    deployed.repo.write("secrets/dev.yaml", "not: [a sops file\n");
    let out = deployed.drift(&[], 2);
    assert_eq!(not_in_sync(&out.json).len(), 1);
    assert!(out.text.contains("    spec.replicas: 1 → 2\n"), "{}", out.text);
}

#[test]
fn colour_follows_the_terminal_and_color_always() {
    let deployed = Deployed::new();
    deployed.cluster.merge_patch(&deployed.object("Deployment", "web"), &json!({"spec": {"replicas": 2}}), "hpa");
    let plain = deployed.weaver(&["drift", "--env", "dev"]);
    assert!(!plain.stdout.contains('\x1b'), "not a terminal: no colour");
    let coloured = deployed.weaver(&["--color", "always", "drift", "--env", "dev"]);
    assert_eq!(coloured.code, 2);
    assert!(coloured.stdout.contains("\x1b[33m\x1b[1m~ apps/v1 Deployment"), "{:?}", coloured.stdout);
}

#[test]
fn bad_input_exits_1_with_a_clear_message() {
    let deployed = Deployed::new();
    let err = deployed.weaver(&["drift", "--env", "nope"]).failure().to_string();
    assert!(err.contains("error: unknown environment `nope`: environments/nope.yaml does not exist"), "{err}");
    assert!(err.contains("help: known environments: base, dev, prod, staging"), "{err}");
    let err = deployed.weaver(&["drift", "--env", "dev", "-r", "nope"]).failure().to_string();
    assert!(err.contains("error: environment `dev` has no release `nope` (-r/--release)"), "{err}");
    assert!(err.contains("help: its releases: redis, web"), "{err}");
    let err = deployed.weaver(&["drift", "--env", "base"]).failure().to_string();
    assert!(err.contains("environment `base` is abstract"), "{err}");
    let err = deployed.weaver(&["drift", "--env", "dev", "-l", "tier=a b"]).failure().to_string();
    assert!(err.contains("invalid label selector `tier=a b`"), "{err}");
    let err = deployed.weaver(&["drift", "--env", "dev", "-o", "yaml"]).failure().to_string();
    assert!(err.contains("invalid value 'yaml' for '--output <OUTPUT>'"), "{err}");
    let err = deployed.weaver(&["drift", "--env", "dev", "--context", "nope"]).failure().to_string();
    assert!(err.contains("context `nope` (from --context) is not in kubeconfig"), "{err}");
    // An unreachable cluster is named.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    deployed.repo.write(
        "kubeconfig",
        &format!("apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"http://127.0.0.1:{port}\"}}}}]\nusers: [{{name: u, user: {{token: t}}}}]\ncontexts: [{{name: gone, context: {{cluster: c, user: u}}}}]\ncurrent-context: gone\n"),
    );
    let kubeconfig = deployed.repo.path().join("kubeconfig");
    let err = deployed
        .repo
        .weaver(&["--kubeconfig", kubeconfig.to_str().unwrap(), "drift", "--env", "dev"])
        .failure()
        .to_string();
    assert!(err.contains(&format!("cannot reach the cluster (context `gone`, http://127.0.0.1:{port})")), "{err}");
    // A damaged record is an error naming it, not "no drift".
    let mut broken = to_secrets(
        &Record { revision: 2, time: "2026-11-21T11:00:00Z".into(), ..Record::deployed("web", "dev", Vec::new()) },
        &deployed.ns,
    )
    .unwrap();
    broken[0]["data"]["record"] = json!("bm90IGd6aXA=");
    deployed.cluster.apply(&broken, "weaver");
    let err = deployed.weaver(&["drift", "--env", "dev"]).failure().to_string();
    assert!(err.contains(&format!("release record {}/weaver.web.v2 cannot be read", deployed.ns)), "{err}");
}

#[test]
fn without_permission_to_list_the_records_the_error_names_the_namespace() {
    let deployed = Deployed::new();
    // A ServiceAccount that may read the released kinds, but not list the records (Secrets).
    let reader = deployed.cluster.service_account(&deployed.ns, "reader");
    deployed.cluster.apply(
        &[
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "no-records", "namespace": deployed.ns},
                "rules": [{"apiGroups": ["", "apps"], "resources": ["configmaps", "services", "deployments", "statefulsets"], "verbs": ["get", "list"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "no-records", "namespace": deployed.ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "no-records"},
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": deployed.ns}]}),
        ],
        "test",
    );
    deployed.repo.write("reader-kubeconfig", &reader.kubeconfig);
    let kubeconfig = deployed.repo.path().join("reader-kubeconfig");
    let args = ["--kubeconfig", kubeconfig.to_str().unwrap(), "drift", "--env", "dev"];
    let expected = format!("error: listing secrets in namespace {}: forbidden (context `reader`, ", deployed.ns);
    // A real server's authorizer learns of the new binding within moments: until then another
    // LIST may be the one refused.
    let mut err = deployed.repo.weaver(&args).failure().to_string();
    for _ in 0..20 {
        if err.contains(&expected) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
        err = deployed.repo.weaver(&args).failure().to_string();
    }
    assert!(err.contains(&expected), "{err}");
    // The server's own words, naming the ServiceAccount.
    let refused =
        format!("User \"{}\" cannot list resource \"secrets\" in API group \"\" in the namespace", reader.user);
    assert!(err.contains(&refused), "{err}");
    assert!(err.contains("help: weaver's user needs this permission"), "{err}");
}

#[test]
fn drift_only_reads() {
    let deployed = Deployed::new();
    let Some(fake) = deployed.cluster.fake("the request log") else { return };
    fake.clear_requests();
    deployed.drift(&[], 0);
    let requests = fake.requests();
    assert!(requests.iter().all(|r| r.method == "GET"), "drift only reads: {requests:#?}");
    let ns = &deployed.ns;
    let mut lists: Vec<&str> =
        requests.iter().map(|r| r.path.as_str()).filter(|p| p.contains("/namespaces/")).collect();
    lists.sort();
    lists.dedup();
    assert_eq!(
        lists,
        vec![
            format!("/api/v1/namespaces/{ns}/configmaps"),
            format!("/api/v1/namespaces/{ns}/secrets"),
            format!("/api/v1/namespaces/{ns}/services"),
            format!("/apis/apps/v1/namespaces/{ns}/deployments"),
            format!("/apis/apps/v1/namespaces/{ns}/statefulsets"),
        ]
    );
}

/// The book's CronJob example (docs/src/concepts/drift.md): its ServiceAccount, Role and RoleBinding are enough for
/// `weaver drift`, and its kubeconfig (a token file) and command line work. The example's objects
/// are applied into the test namespace, and the token file holds a TokenRequest token of the
/// example's ServiceAccount.
#[test]
fn the_documented_read_only_example_works() {
    let deployed = Deployed::new();
    let page = std::fs::read_to_string(common::project_root().join("docs/src/concepts/drift.md")).unwrap();
    let example = page
        .split("```yaml\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap())
        .find(|block| block.contains("kind: CronJob") && block.contains("drift, --env"))
        .expect("docs/src/concepts/drift.md has the drift CronJob example");
    let mut documents = weaver_yaml::documents(std::path::Path::new("docs/src/concepts/drift.md"), example).unwrap();
    for document in &mut documents {
        assert_eq!(document["metadata"]["namespace"], "shop");
        document["metadata"]["namespace"] = json!(deployed.ns);
        if document["kind"] == "RoleBinding" {
            document["subjects"][0]["namespace"] = json!(deployed.ns);
        }
    }
    let kinds: Vec<&str> = documents.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ServiceAccount", "Role", "RoleBinding", "ConfigMap", "CronJob"]);
    let find = |kind: &str| documents.iter().find(|d| d["kind"] == kind).unwrap().clone();
    if deployed.cluster.is_fake() {
        deployed.cluster.apply(&documents, "test");
    } else {
        // Kubernetes 1.20 serves CronJob as batch/v1beta1 only; the rest applies as written.
        eprintln!("the CronJob (batch/v1) is applied on the fake only");
        deployed.cluster.apply(&documents[..4], "test");
    }
    // The example's kubeconfig, pointed at the test cluster, with a token of the example's
    // ServiceAccount in a file.
    let service_account = find("ServiceAccount")["metadata"]["name"].as_str().unwrap().to_string();
    let kubeconfig = find("ConfigMap")["data"]["kubeconfig"].as_str().unwrap().to_string();
    let mut kubeconfig = weaver_yaml::documents(std::path::Path::new("kubeconfig"), &kubeconfig).unwrap().remove(0);
    kubeconfig["clusters"][0]["cluster"] = deployed.cluster.cluster_entry();
    // Like a ServiceAccount token file: no trailing newline (kube sends the file as it is).
    deployed.repo.write("token", &deployed.cluster.token(&deployed.ns, &service_account));
    kubeconfig["users"][0]["user"]["tokenFile"] = json!(deployed.repo.path().join("token"));
    deployed.repo.write("kubeconfig", &serde_json::to_string(&kubeconfig).unwrap());

    // The CronJob's command line, with this repository, kubeconfig and environments.
    let container = &find("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> =
        container["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    let at = args.iter().position(|a| a == "--repo").unwrap();
    let mut args: Vec<String> = [&args[..at], &args[at + 2..]].concat();
    for arg in &mut args {
        match arg.as_str() {
            "/etc/weaver/kubeconfig" => *arg = deployed.repo.path().join("kubeconfig").to_str().unwrap().into(),
            // The fleet of the environments labelled tier=dev: dev.
            "tier=prod" => *arg = "tier=dev".into(),
            _ => {}
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    deployed.cluster.merge_patch(&deployed.object("Deployment", "web"), &json!({"spec": {"replicas": 2}}), "hpa");
    // A real server's authorizer learns of the new binding within moments.
    let mut run = deployed.repo.weaver(&args);
    for _ in 0..20 {
        if run.code != 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
        run = deployed.repo.weaver(&args);
    }
    assert_eq!(run.code, 2, "{args:?}\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(run.stdout.starts_with("1 environments: 1 drifted, 0 failed\n"), "one fleet report: {}", run.stdout);
    assert!(run.stdout.contains("    spec.replicas: 1 → 2\n"), "{}", run.stdout);
    // The Role reads and nothing more: a server-side dry run (a PATCH) is refused.
    let mut diff = args.clone();
    let at = diff.iter().position(|a| *a == "drift").unwrap();
    diff.splice(at.., ["diff", "--env", "dev", "--server-side"]);
    let err = deployed.repo.weaver(&diff).failure().to_string();
    assert!(err.contains("cannot patch resource"), "{err}");
}

/// A parsed XML element (enough of XML for the JUnit report: elements, attributes, text).
#[derive(Debug)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Element>,
    text: String,
}

impl Element {
    #[track_caller]
    fn attr(&self, name: &str) -> &str {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("<{}> has no {name}", self.name))
    }
}

/// A strict parser for the subset of XML the report uses: it rejects a raw `<` or `&` in text or
/// attributes, unknown entities, characters XML forbids and mismatched tags.
fn parse_xml(text: &str) -> Element {
    let rest = text.strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n").expect("an XML declaration");
    let chars: Vec<char> = rest.chars().collect();
    let mut at = 0;
    let root = element(&chars, &mut at);
    assert!(chars[at..].iter().all(|c| c.is_whitespace()), "content after the root element");
    root
}

fn element(chars: &[char], at: &mut usize) -> Element {
    let skip_space = |at: &mut usize| {
        while chars[*at].is_whitespace() {
            *at += 1;
        }
    };
    let name = |at: &mut usize| {
        let start = *at;
        while chars[*at].is_alphanumeric() || chars[*at] == '_' || chars[*at] == '-' {
            *at += 1;
        }
        assert!(*at > start, "a name expected at {}", chars[start..].iter().take(20).collect::<String>());
        chars[start..*at].iter().collect::<String>()
    };
    skip_space(at);
    assert_eq!(chars[*at], '<');
    *at += 1;
    let mut element = Element { name: name(at), attrs: Vec::new(), children: Vec::new(), text: String::new() };
    loop {
        skip_space(at);
        match chars[*at] {
            '/' => {
                assert_eq!(chars[*at + 1], '>');
                *at += 2;
                return element;
            }
            '>' => {
                *at += 1;
                break;
            }
            _ => {
                let key = name(at);
                assert_eq!(chars[*at], '=');
                let quote = chars[*at + 1];
                assert_eq!(quote, '"');
                *at += 2;
                let value = content(chars, at, quote);
                *at += 1;
                assert!(!element.attrs.iter().any(|(k, _)| *k == key), "duplicate attribute {key}");
                element.attrs.push((key, value));
            }
        }
    }
    loop {
        let text = content(chars, at, '<');
        element.text.push_str(&text);
        if chars[*at + 1] == '/' {
            *at += 2;
            assert_eq!(name(at), element.name, "mismatched end tag");
            assert_eq!(chars[*at], '>');
            *at += 1;
            if !element.children.is_empty() {
                assert!(element.text.trim().is_empty(), "mixed content in <{}>", element.name);
            }
            return element;
        }
        element.children.push(self::element(chars, at));
    }
}

/// Text up to `end`, entities resolved.
fn content(chars: &[char], at: &mut usize, end: char) -> String {
    let mut out = String::new();
    while chars[*at] != end {
        let c = chars[*at];
        assert!(c != '<', "a raw < in text or an attribute");
        assert!(
            (c >= ' ' || matches!(c, '\t' | '\n' | '\r')) && c != '\u{FFFE}' && c != '\u{FFFF}',
            "a character XML forbids: {c:?}"
        );
        if c == '&' {
            let semi = chars[*at..].iter().position(|&c| c == ';').expect("an entity ends with ;");
            let entity: String = chars[*at + 1..*at + semi].iter().collect();
            out.push(match entity.as_str() {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                e if e.starts_with("#x") => char::from_u32(u32::from_str_radix(&e[2..], 16).unwrap()).unwrap(),
                e if e.starts_with('#') => char::from_u32(e[1..].parse().unwrap()).unwrap(),
                e => panic!("unknown entity &{e};"),
            });
            *at += semi + 1;
        } else {
            out.push(c);
            *at += 1;
        }
    }
    out
}

/// A second, independent parser where python3 is available: ElementTree rejects malformed XML.
fn python_parses_xml(xml: &str) {
    use std::io::Write;
    let available =
        std::process::Command::new(common::tools::python3()).arg("-c").arg("import xml.etree.ElementTree").output();
    if !common::interop_available("python3", available.is_ok_and(|o| o.status.success())) {
        return;
    }
    let mut child = std::process::Command::new(common::tools::python3())
        .args(["-c", "import sys, xml.etree.ElementTree as E; E.fromstring(sys.stdin.buffer.read())"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(xml.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python3 cannot parse the JUnit XML: {}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}
