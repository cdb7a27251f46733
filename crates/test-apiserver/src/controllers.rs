//! Infinitely fast stand-ins for the controllers a cluster runs: CRD
//! establishment, namespace bootstrap and termination, garbage collection and
//! (when auto-ready is on) workload status. They run synchronously after every
//! write, until nothing changes.
//!
//! Each pass looks only at what changed since the previous one (the store's
//! dirty keys, which include the dependents of removed objects), so a write
//! costs the same in a store of ten objects and of ten thousand. Every
//! controller is a function of the objects it is handed (a namespace of its
//! contents, GC of owner existence, workload status of the workload itself),
//! and doing nothing for an unchanged object is what a full pass would do.

use crate::cluster::Cluster;
use crate::store::{ObjKey, owner_uids};
use crate::util;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const CONTROLLER_MANAGER: &str = "kube-controller-manager";
const CRD_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";
const ROOT_CA: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBfakeweavertestapiservercertificate\n-----END CERTIFICATE-----\n";

fn deleting(o: &Value) -> bool {
    o["metadata"].get("deletionTimestamp").is_some()
}

fn has_finalizer(o: &Value, f: &str) -> bool {
    o["metadata"]["finalizers"].as_array().is_some_and(|l| l.contains(&json!(f)))
}

fn drop_finalizer(o: &mut Value, f: &str) {
    if let Some(l) = o["metadata"]["finalizers"].as_array_mut() {
        l.retain(|x| x != f);
        if l.is_empty()
            && let Some(m) = o["metadata"].as_object_mut()
        {
            m.remove("finalizers");
        }
    }
}

/// Conditions with the timestamps of unchanged ones kept (controllers only
/// bump lastTransitionTime when a condition changes).
fn conditions(old: &Value, new: Vec<Value>, time_fields: &[&str]) -> Value {
    let now = util::now();
    let out: Vec<Value> = new
        .into_iter()
        .map(|mut c| {
            let prev = old.as_array().into_iter().flatten().find(|p| {
                p["type"] == c["type"]
                    && p["status"] == c["status"]
                    && p["reason"] == c["reason"]
                    && p["message"] == c["message"]
            });
            for f in time_fields {
                c[*f] = prev.map_or_else(|| json!(now), |p| p[*f].clone());
            }
            c
        })
        .collect();
    Value::Array(out)
}

/// Status fields with Go's `omitempty` dropping zeros for the listed keys.
fn counts(pairs: &[(&str, i64, bool)]) -> serde_json::Map<String, Value> {
    pairs.iter().filter(|(_, v, always)| *always || *v != 0).map(|(k, v, _)| ((*k).to_string(), json!(v))).collect()
}

impl Cluster {
    pub(crate) fn reconcile(&mut self) {
        if self.reconciling {
            return;
        }
        self.reconciling = true;
        for _ in 0..50 {
            let pass = self.take_dirty();
            if pass.is_empty() {
                break;
            }
            self.crd_controller();
            self.namespace_controller(&pass);
            self.garbage_collector(&pass);
            if self.auto_ready {
                self.workload_status(&pass);
                self.disruption_budgets(&pass);
            }
        }
        self.reconciling = false;
    }

    /// What a controller looks at in this pass: the keys changed before the
    /// pass started and those earlier controllers of the pass changed.
    fn work(&self, pass: &BTreeSet<ObjKey>) -> BTreeSet<ObjKey> {
        pass.union(self.objects().dirty()).cloned().collect()
    }

    fn keys_of(&self, group: &str, resource: &str) -> Vec<(ObjKey, Value)> {
        self.objects().of_resource(group, resource, None).map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    fn delete_background(&mut self, key: &ObjKey) {
        let Some(live) = self.objects().get(key).cloned() else {
            return;
        };
        if deleting(&live) {
            return;
        }
        if let Some(res) = self.resource_for(key) {
            self.delete_object(key, &res, live, "Background", false);
        }
    }

    fn crd_controller(&mut self) {
        for (key, crd) in self.keys_of("apiextensions.k8s.io", "customresourcedefinitions") {
            let group = crd["spec"]["group"].as_str().unwrap_or_default().to_string();
            let plural = crd["spec"]["names"]["plural"].as_str().unwrap_or_default().to_string();
            if deleting(&crd) {
                let crs: Vec<ObjKey> = self.keys_of(&group, &plural).into_iter().map(|(k, _)| k).collect();
                for k in &crs {
                    self.delete_background(k);
                }
                if self.keys_of(&group, &plural).is_empty() && has_finalizer(&crd, CRD_FINALIZER) {
                    self.system_update(&key, "kube-apiserver", "", |o| drop_finalizer(o, CRD_FINALIZER));
                }
                continue;
            }
            let established =
                crd["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Established");
            if established {
                continue;
            }
            let names = crd["spec"]["names"].clone();
            let storage: Vec<Value> = crate::resources::storage_version(&crd).into_iter().cloned().collect();
            let now = util::now();
            self.system_update(&key, "kube-apiserver", "status", |o| {
                o["status"] = json!({
                    "acceptedNames": names,
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts", "message": "no conflicts found"},
                        {"type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
                    ],
                    "storedVersions": storage,
                });
            });
            self.refresh_crds();
        }
    }

    /// Namespaces whose object or contents changed.
    fn namespace_controller(&mut self, pass: &BTreeSet<ObjKey>) {
        let names: BTreeSet<String> = self
            .work(pass)
            .into_iter()
            .map(|k| if k.group.is_empty() && k.resource == "namespaces" { k.name } else { k.namespace })
            .filter(|n| !n.is_empty())
            .collect();
        for name in names {
            let key = ObjKey {
                group: String::new(),
                resource: "namespaces".into(),
                namespace: String::new(),
                name: name.clone(),
            };
            let Some(ns) = self.objects().get(&key).cloned() else {
                continue;
            };
            if deleting(&ns) {
                let contents: Vec<ObjKey> = self.objects().in_namespace(&name).cloned().collect();
                for k in &contents {
                    self.delete_background(k);
                }
                let left = self.objects().in_namespace(&name).next().is_some();
                if !left && ns["metadata"]["finalizers"].as_array().is_none_or(Vec::is_empty) {
                    self.remove(&key);
                }
                continue;
            }
            let cm = ObjKey {
                group: String::new(),
                resource: "configmaps".into(),
                namespace: name.clone(),
                name: "kube-root-ca.crt".into(),
            };
            if !self.objects().contains_key(&cm) {
                let res = self.builtin("", "configmaps");
                let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "kube-root-ca.crt", "namespace": name, "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                    "data": {"ca.crt": ROOT_CA}});
                let _ = self.system_create(&res, obj, CONTROLLER_MANAGER);
            }
            let sa = ObjKey {
                group: String::new(),
                resource: "serviceaccounts".into(),
                namespace: name.clone(),
                name: "default".into(),
            };
            if !self.objects().contains_key(&sa) {
                let res = self.builtin("", "serviceaccounts");
                let obj = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": name}});
                let _ = self.system_create(&res, obj, CONTROLLER_MANAGER);
            }
        }
    }

    /// Changed objects (and dependents of removed ones) whose owners are all
    /// gone are deleted; objects pending deletion with the `foregroundDeletion`
    /// or `orphan` finalizer wait for or release their dependents.
    fn garbage_collector(&mut self, pass: &BTreeSet<ObjKey>) {
        let orphans: Vec<ObjKey> = self
            .work(pass)
            .into_iter()
            .filter(|k| {
                self.objects().get(k).is_some_and(|o| {
                    let owners: Vec<&str> = owner_uids(o).collect();
                    !owners.is_empty() && owners.iter().all(|u| !self.objects().has_uid(u))
                })
            })
            .collect();
        for key in &orphans {
            self.delete_background(key);
        }
        let pending: Vec<(ObjKey, Value)> = self
            .objects()
            .deleting()
            .filter_map(|k| self.objects().get(k).map(|o| (k.clone(), o.clone())))
            .filter(|(_, o)| has_finalizer(o, "foregroundDeletion") || has_finalizer(o, "orphan"))
            .collect();
        for (key, obj) in &pending {
            let uid = obj["metadata"]["uid"].as_str().unwrap_or_default().to_string();
            let dependents: Vec<ObjKey> = self.objects().dependents_of(&uid).cloned().collect();
            if has_finalizer(obj, "foregroundDeletion") {
                for d in &dependents {
                    self.delete_background(d);
                }
                if dependents.iter().all(|d| !self.objects().contains_key(d)) {
                    self.system_update(key, CONTROLLER_MANAGER, "", |o| drop_finalizer(o, "foregroundDeletion"));
                }
            }
            if has_finalizer(obj, "orphan") {
                for d in &dependents {
                    self.system_update(d, CONTROLLER_MANAGER, "", |o| {
                        if let Some(refs) = o["metadata"]["ownerReferences"].as_array_mut() {
                            refs.retain(|r| r["uid"] != uid.as_str());
                            if refs.is_empty()
                                && let Some(m) = o["metadata"].as_object_mut()
                            {
                                m.remove("ownerReferences");
                            }
                        }
                    });
                }
                self.system_update(key, CONTROLLER_MANAGER, "", |o| drop_finalizer(o, "orphan"));
            }
        }
    }

    /// Changed workloads report their status.
    fn workload_status(&mut self, pass: &BTreeSet<ObjKey>) {
        let work = self.work(pass);
        for (group, resource) in [
            ("apps", "deployments"),
            ("apps", "statefulsets"),
            ("apps", "daemonsets"),
            ("apps", "replicasets"),
            ("batch", "jobs"),
        ] {
            let keys: Vec<&ObjKey> = work.iter().filter(|k| k.group == group && k.resource == resource).collect();
            for key in keys {
                let Some(obj) = self.objects().get(key).cloned() else {
                    continue;
                };
                if deleting(&obj) {
                    continue;
                }
                match resource {
                    "deployments" => self.deployment_status(key, &obj),
                    "statefulsets" => self.statefulset_status(key, &obj),
                    "daemonsets" => self.daemonset_status(key, &obj),
                    "replicasets" => self.replicaset_status(key, &obj),
                    _ => self.job_status(key, &obj),
                }
            }
        }
    }

    /// The disruption controller: each budget in a namespace where a budget or a workload
    /// changed counts the Pods it selects. There are no Pods: the replicas of the Deployments
    /// and StatefulSets whose Pod template it selects stand for them, all healthy (as their
    /// status says). A budget selecting none expects no Pod, as on a real cluster.
    fn disruption_budgets(&mut self, pass: &BTreeSet<ObjKey>) {
        let namespaces: BTreeSet<String> = self
            .work(pass)
            .into_iter()
            .filter(|k| {
                (k.group == "policy" && k.resource == "poddisruptionbudgets")
                    || (k.group == "apps" && (k.resource == "deployments" || k.resource == "statefulsets"))
            })
            .map(|k| k.namespace)
            .collect();
        for ns in namespaces {
            let budgets: Vec<(ObjKey, Value)> = self
                .objects()
                .of_resource("policy", "poddisruptionbudgets", Some(ns.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (key, budget) in budgets {
                if deleting(&budget) {
                    continue;
                }
                let selector = &budget["spec"]["selector"]["matchLabels"];
                let selects = |template_labels: &Value| {
                    selector.as_object().is_some_and(|wanted| {
                        !wanted.is_empty() && wanted.iter().all(|(k, v)| template_labels.get(k) == Some(v))
                    })
                };
                let expected: i64 = ["deployments", "statefulsets"]
                    .into_iter()
                    .flat_map(|resource| self.objects().of_resource("apps", resource, Some(ns.as_str())))
                    .filter(|(_, w)| !deleting(w) && selects(&w["spec"]["template"]["metadata"]["labels"]))
                    .map(|(_, w)| w["spec"]["replicas"].as_i64().unwrap_or(1))
                    .sum();
                // An int or a percentage of the expected Pods (rounded up), as the controller does.
                let of_expected = |value: &Value| match value.as_str().and_then(|p| p.strip_suffix('%')) {
                    Some(percent) => (percent.parse::<i64>().unwrap_or(0) * expected + 99) / 100,
                    None => value.as_i64().unwrap_or(0),
                };
                let desired = match (&budget["spec"]["minAvailable"], &budget["spec"]["maxUnavailable"]) {
                    (min, _) if !min.is_null() => of_expected(min),
                    (_, max) if !max.is_null() => (expected - of_expected(max)).max(0),
                    _ => expected,
                };
                let allowed = (expected - desired).max(0);
                let (state, reason) =
                    if allowed > 0 { ("True", "SufficientPods") } else { ("False", "InsufficientPods") };
                let condition = json!({"type": "DisruptionAllowed", "status": state, "reason": reason, "message": "",
                    "observedGeneration": budget["metadata"]["generation"].clone()});
                let status = json!({
                    "conditions": conditions(&budget["status"]["conditions"], vec![condition], &["lastTransitionTime"]),
                    "currentHealthy": expected,
                    "desiredHealthy": desired,
                    "disruptionsAllowed": allowed,
                    "expectedPods": expected,
                    "observedGeneration": budget["metadata"]["generation"].as_i64().unwrap_or(1),
                });
                self.system_update(&key, CONTROLLER_MANAGER, "status", |o| o["status"] = status);
            }
        }
    }

    fn deployment_status(&mut self, key: &ObjKey, obj: &Value) {
        let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
        let uid = obj["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        let revision = self.revision(&uid, &obj["spec"]["template"]);
        let hash = util::template_hash(&obj["spec"]["template"].to_string());
        self.deployment_replica_sets(key, obj, &hash, revision, replicas);
        let mut status = counts(&[
            ("availableReplicas", replicas, false),
            ("observedGeneration", obj["metadata"]["generation"].as_i64().unwrap_or(1), true),
            ("readyReplicas", replicas, false),
            ("replicas", replicas, false),
            ("updatedReplicas", replicas, false),
        ]);
        status.insert(
            "conditions".into(),
            conditions(
                &obj["status"]["conditions"],
                vec![
                    json!({"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."}),
                    json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                        "message": format!("ReplicaSet \"{}-{hash}\" has successfully progressed.", key.name)}),
                ],
                &["lastTransitionTime", "lastUpdateTime"],
            ),
        );
        self.system_update(key, CONTROLLER_MANAGER, "status", |o| {
            o["status"] = Value::Object(status);
            o["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!(revision.to_string());
        });
    }

    /// The deployment controller's ReplicaSets, rolled out at once: the one of the current
    /// template (`<name>-<hash>`, made or reused) has the Deployment's replicas and its revision,
    /// the Deployment's other ReplicaSets none. A reused one keeps its earlier revisions in
    /// `revision-history`, as on a rollback.
    fn deployment_replica_sets(&mut self, key: &ObjKey, deployment: &Value, hash: &str, revision: u64, replicas: i64) {
        let name = format!("{}-{hash}", key.name);
        let uid = deployment["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        let owned: Vec<ObjKey> = self
            .objects()
            .dependents_of(&uid)
            .filter(|k| k.group == "apps" && k.resource == "replicasets" && k.name != name)
            .cloned()
            .collect();
        for old in owned {
            self.system_update(&old, CONTROLLER_MANAGER, "", |o| o["spec"]["replicas"] = json!(0));
        }
        let new_key = ObjKey { name: name.clone(), resource: "replicasets".into(), ..key.clone() };
        let annotations = |revision: u64| {
            json!({"deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                "deployment.kubernetes.io/max-replicas": replicas.to_string(),
                "deployment.kubernetes.io/revision": revision.to_string()})
        };
        if self.objects().contains_key(&new_key) {
            self.system_update(&new_key, CONTROLLER_MANAGER, "", |o| {
                let earlier = o["metadata"]["annotations"]["deployment.kubernetes.io/revision"].clone();
                if let Some(earlier) = earlier.as_str().filter(|earlier| *earlier != revision.to_string()) {
                    let history =
                        match o["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"].as_str() {
                            Some(history) => format!("{history},{earlier}"),
                            None => earlier.to_string(),
                        };
                    o["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] = json!(history);
                }
                for (annotation, value) in annotations(revision).as_object().into_iter().flatten() {
                    o["metadata"]["annotations"][annotation] = value.clone();
                }
                o["spec"]["replicas"] = json!(replicas);
            });
            return;
        }
        let mut template = deployment["spec"]["template"].clone();
        template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
        let mut selector = deployment["spec"]["selector"].clone();
        selector["matchLabels"]["pod-template-hash"] = json!(hash);
        let replica_set = json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": key.namespace, "labels": template["metadata"]["labels"].clone(),
                "annotations": annotations(revision),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": key.name, "uid": uid,
                    "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"replicas": replicas, "minReadySeconds": deployment["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
                "selector": selector, "template": template},
        });
        let res = self.builtin("apps", "replicasets");
        let _ = self.system_create(&res, replica_set, CONTROLLER_MANAGER);
    }

    fn statefulset_status(&mut self, key: &ObjKey, obj: &Value) {
        let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
        let revision = format!("{}-{}", key.name, util::template_hash(&obj["spec"]["template"].to_string()));
        let mut status = counts(&[
            ("availableReplicas", replicas, true),
            ("collisionCount", 0, true),
            ("currentReplicas", replicas, false),
            ("observedGeneration", obj["metadata"]["generation"].as_i64().unwrap_or(1), true),
            ("readyReplicas", replicas, false),
            ("replicas", replicas, true),
            ("updatedReplicas", replicas, false),
        ]);
        status.insert("currentRevision".into(), json!(revision));
        status.insert("updateRevision".into(), json!(revision));
        self.system_update(key, CONTROLLER_MANAGER, "status", |o| o["status"] = Value::Object(status));
    }

    /// No nodes: a DaemonSet is trivially rolled out with nothing scheduled.
    fn daemonset_status(&mut self, key: &ObjKey, obj: &Value) {
        let status = counts(&[
            ("currentNumberScheduled", 0, true),
            ("desiredNumberScheduled", 0, true),
            ("numberMisscheduled", 0, true),
            ("numberReady", 0, true),
            ("observedGeneration", obj["metadata"]["generation"].as_i64().unwrap_or(1), true),
        ]);
        self.system_update(key, CONTROLLER_MANAGER, "status", |o| o["status"] = Value::Object(status));
    }

    fn replicaset_status(&mut self, key: &ObjKey, obj: &Value) {
        let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
        let status = counts(&[
            ("availableReplicas", replicas, false),
            ("fullyLabeledReplicas", replicas, false),
            ("observedGeneration", obj["metadata"]["generation"].as_i64().unwrap_or(1), true),
            ("readyReplicas", replicas, false),
            ("replicas", replicas, true),
        ]);
        self.system_update(key, CONTROLLER_MANAGER, "status", |o| o["status"] = Value::Object(status));
    }

    /// Jobs succeed at once unless suspended, or managed by another controller than the
    /// built-in one (`spec.managedBy`, which kube-controller-manager 1.32 leaves alone).
    fn job_status(&mut self, key: &ObjKey, obj: &Value) {
        let done = obj["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Complete");
        let managed_elsewhere =
            obj["spec"]["managedBy"].as_str().is_some_and(|manager| manager != "kubernetes.io/job-controller");
        if done || managed_elsewhere || obj["spec"]["suspend"] == json!(true) {
            return;
        }
        let now = util::now();
        let succeeded = obj["spec"]["completions"].as_i64().unwrap_or(1);
        let condition = |t: &str| {
            json!({"type": t, "status": "True", "lastProbeTime": now, "lastTransitionTime": now,
                "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"})
        };
        let status = json!({
            "completionTime": now,
            "conditions": [condition("SuccessCriteriaMet"), condition("Complete")],
            "ready": 0,
            "startTime": now,
            "succeeded": succeeded,
            "terminating": 0,
            "uncountedTerminatedPods": {},
        });
        self.system_update(key, CONTROLLER_MANAGER, "status", |o| o["status"] = status);
    }
}
