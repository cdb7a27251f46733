//! The controllers' Events as kubectl reads them: core/v1 Events with `firstTimestamp`,
//! `lastTimestamp` and `count`, which `kubectl get events --sort-by=.lastTimestamp` orders; the
//! same Events served at events.k8s.io/v1 with those fields under their `deprecated…` names.
//! Against the fake API server or, unchanged, the cluster of `WEAVER_TEST_KUBECONFIG`.

use crate::common;

use std::time::Duration;

use common::cluster::TestCluster;
use common::skip::interop_or_skip;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{EventType, Reporter};
use serde_json::{Value, json};
use weaver_api::environment_sync::Reason;
use weaver_controllers::events::Recorder;

#[test]
fn events_carry_their_last_time_and_count_and_kubectl_sorts_them_by_it() {
    let kubectl = match common::tools::kubectl_kustomize_v5() {
        Ok((kubectl, _)) => kubectl,
        Err(why) => {
            interop_or_skip(Some(&why));
            return;
        }
    };
    let cluster = TestCluster::start();
    let namespace = cluster.namespace("events");
    let subject =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "subject", "namespace": namespace}});
    cluster.create(&subject);
    let uid = cluster.get(&subject).unwrap()["metadata"]["uid"].as_str().unwrap().to_string();
    let regarding = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        namespace: Some(namespace.clone()),
        name: Some("subject".into()),
        uid: Some(uid),
        ..ObjectReference::default()
    };
    let reporter = Reporter { controller: "weaver-events-test".into(), instance: None };
    let recorder = Recorder::new(cluster.client(), reporter);
    let publish = |type_, reason: &Reason, note: &str| {
        cluster.block_on(recorder.publish(type_, reason, "Reconcile", note, &regarding)).expect("the Event published");
        // lastTimestamp counts whole seconds.
        std::thread::sleep(Duration::from_millis(1100));
    };
    publish(EventType::Normal, &Reason::ReconciliationSucceeded, "the first");
    publish(EventType::Warning, &Reason::ApplyFailed, "the second");
    // The first again: its series, seen last.
    publish(EventType::Normal, &Reason::ReconciliationSucceeded, "the first");

    let core = cluster.list("v1", "Event", "events", &namespace);
    let text = |event: &Value, key: &str| event[key].as_str().unwrap_or_default().to_string();
    let first = core.iter().find(|e| e["message"] == "the first").unwrap_or_else(|| panic!("{core:#?}"));
    let second = core.iter().find(|e| e["message"] == "the second").unwrap_or_else(|| panic!("{core:#?}"));
    assert_eq!((first["count"].as_i64(), second["count"].as_i64()), (Some(2), Some(1)), "{core:#?}");
    assert!(text(first, "firstTimestamp") < text(first, "lastTimestamp"), "{first:#}");
    assert_eq!(text(second, "firstTimestamp"), text(second, "lastTimestamp"), "{second:#}");
    assert!(text(second, "lastTimestamp") < text(first, "lastTimestamp"), "{core:#?}");
    assert_eq!(first["involvedObject"]["name"], "subject");

    // kubectl orders them by when each was last seen.
    let sorted = weaver_test_support::kubectl::command(&kubectl)
        .arg("--kubeconfig")
        .arg(cluster.client_go_kubeconfig())
        .args(["get", "events", "-n", &namespace, "--sort-by=.lastTimestamp"])
        .args(["-o", "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}"])
        .output()
        .unwrap();
    assert!(sorted.status.success(), "{}", String::from_utf8_lossy(&sorted.stderr));
    assert_eq!(String::from_utf8_lossy(&sorted.stdout), "the second\nthe first\n");

    // The same Events at events.k8s.io/v1, as events.k8s.io clients (and weaver's tests) read them.
    let events = cluster.list("events.k8s.io/v1", "Event", "events", &namespace);
    let first = events.iter().find(|e| e["note"] == "the first").unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(first["regarding"]["name"], "subject");
    assert_eq!(first["reportingController"], "weaver-events-test");
    assert_eq!((first["deprecatedCount"].as_i64(), first["series"]["count"].as_i64()), (Some(2), Some(2)));
    assert!(first["deprecatedLastTimestamp"].is_string(), "{first:#}");

    // Why they are written at core/v1: events.k8s.io/v1 refuses a last time set by its writer.
    let at_events_v1 = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "subject.last", "namespace": namespace},
        "eventTime": "2026-11-29T10:00:00.000000Z", "reportingController": "weaver-events-test",
        "reportingInstance": "weaver-events-test", "action": "Reconcile", "reason": "ReconciliationSucceeded",
        "type": "Normal", "note": "with a last time", "regarding": {"kind": "ConfigMap", "namespace": namespace,
        "name": "subject"}, "deprecatedLastTimestamp": "2026-11-29T10:00:00Z"
    });
    let event: k8s_openapi::api::events::v1::Event = serde_json::from_value(at_events_v1).unwrap();
    let events_v1 = kube::Api::namespaced(cluster.client(), &namespace);
    match cluster.block_on(events_v1.create(&kube::api::PostParams::default(), &event)) {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(
                status.message.contains("lastTimestamp") && status.message.contains("needs to be unset"),
                "{status:?}"
            );
        }
        other => panic!("an Event with deprecatedLastTimestamp was taken at events.k8s.io/v1: {other:?}"),
    }
}
