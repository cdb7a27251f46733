//! Per-kind REST strategies (`pkg/registry/<group>/<kind>/strategy.go`): what the server
//! sets or keeps on create and update (uid, generation, status, Service IPs and node ports,
//! Job selectors, finalizers).

use super::{Cluster, meta_mut};
use crate::resources::{Generation, Resource};
use crate::util;
use serde_json::{Map, Value, json};

impl Cluster {
    /// What each kind's REST strategy does on create/update (`live` at the request's version).
    pub(super) fn strategy(&mut self, res: &Resource, live: Option<&Value>, obj: &mut Value, now: &str) {
        // The request's version: storage converts it to the storage version (`store_with_managed`).
        obj["apiVersion"] = json!(res.api_version());
        obj["kind"] = json!(res.kind);
        let meta = meta_mut(obj);
        meta.remove("selfLink");
        match live {
            Some(live) => {
                for f in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                    "resourceVersion",
                ] {
                    match live["metadata"].get(f) {
                        Some(v) => {
                            meta.insert(f.into(), v.clone());
                        }
                        None => {
                            meta.remove(f);
                        }
                    }
                }
                if res.status_subresource {
                    match live.get("status") {
                        Some(s) => obj["status"] = s.clone(),
                        None => {
                            if let Some(m) = obj.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                }
                let changed = match res.generation {
                    Generation::None => false,
                    Generation::Spec => live["spec"] != obj["spec"],
                    Generation::SpecOrAnnotations => {
                        live["spec"] != obj["spec"] || live["metadata"]["annotations"] != obj["metadata"]["annotations"]
                    }
                    Generation::AllButMetadata => {
                        let strip = |v: &Value| {
                            let mut v = v.clone();
                            if let Some(m) = v.as_object_mut() {
                                m.remove("metadata");
                                if res.status_subresource {
                                    m.remove("status");
                                }
                            }
                            v
                        };
                        strip(live) != strip(obj)
                    }
                };
                if res.generation != Generation::None {
                    let g = live["metadata"]["generation"].as_i64().unwrap_or(1) + i64::from(changed);
                    meta_mut(obj).insert("generation".into(), json!(g));
                }
                if res.is("", "Namespace") {
                    obj["spec"] = live["spec"].clone();
                }
                // A CRD whose storage version changes stores its objects at the new one from
                // now on: it joins status.storedVersions (the CRD strategy's PrepareForUpdate),
                // which only a write to the status narrows again.
                if res.is("apiextensions.k8s.io", "CustomResourceDefinition") {
                    let storage = crate::resources::storage_version(obj).cloned();
                    if let (Some(storage), Some(stored)) = (storage, obj["status"]["storedVersions"].as_array_mut())
                        && !stored.is_empty()
                        && !stored.contains(&storage)
                    {
                        stored.push(storage);
                    }
                }
                if res.is("", "Service") {
                    self.service_carry_over(live, obj);
                }
            }
            None => {
                meta.insert("uid".into(), json!(util::uid()));
                meta.insert("creationTimestamp".into(), json!(now));
                meta.remove("deletionTimestamp");
                meta.remove("deletionGracePeriodSeconds");
                meta.remove("resourceVersion");
                if res.generation != Generation::None {
                    meta.insert("generation".into(), json!(1));
                } else {
                    meta.remove("generation");
                }
                if res.status_subresource {
                    match initial_status(res, obj) {
                        Value::Null => {
                            if let Some(m) = obj.as_object_mut() {
                                m.remove("status");
                            }
                        }
                        s => obj["status"] = s,
                    }
                }
                if res.is("", "Namespace") {
                    let finalizers = obj["spec"]["finalizers"].as_array().cloned().unwrap_or_default();
                    if !finalizers.contains(&json!("kubernetes")) {
                        let mut f = finalizers;
                        f.push(json!("kubernetes"));
                        obj["spec"]["finalizers"] = Value::Array(f);
                    }
                }
                if res.is("", "Service") {
                    self.service_allocate(obj);
                }
                if res.is("batch", "Job") {
                    job_selector(obj);
                }
                if res.is("apiextensions.k8s.io", "CustomResourceDefinition") {
                    let f = meta_mut(obj).entry("finalizers").or_insert(json!([]));
                    if let Some(list) = f.as_array_mut()
                        && !list.contains(&json!("customresourcecleanup.apiextensions.k8s.io"))
                    {
                        list.push(json!("customresourcecleanup.apiextensions.k8s.io"));
                    }
                }
            }
        }
    }

    fn service_allocate(&mut self, obj: &mut Value) {
        let spec = &mut obj["spec"];
        let ty = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
        if ty == "ExternalName" {
            return;
        }
        if spec["clusterIP"].as_str().unwrap_or_default().is_empty() {
            self.next_ip += 1;
            let ip = format!("10.96.{}.{}", self.next_ip / 256, self.next_ip % 256);
            spec["clusterIP"] = json!(ip);
        }
        if spec.get("clusterIPs").is_none() {
            spec["clusterIPs"] = json!([spec["clusterIP"].clone()]);
        }
        if spec.get("ipFamilies").is_none() {
            spec["ipFamilies"] = json!(["IPv4"]);
        }
        if spec.get("ipFamilyPolicy").is_none() {
            spec["ipFamilyPolicy"] = json!("SingleStack");
        }
        if (ty == "NodePort" || ty == "LoadBalancer")
            && let Some(ports) = spec["ports"].as_array_mut()
        {
            for p in ports.iter_mut().filter(|p| p.get("nodePort").is_none()) {
                self.next_node_port += 1;
                p["nodePort"] = json!(self.next_node_port);
            }
        }
    }

    /// `patchAllocatedValues`: allocated IPs and node ports survive updates that omit them.
    fn service_carry_over(&mut self, live: &Value, obj: &mut Value) {
        let old = &live["spec"];
        let spec = &mut obj["spec"];
        if spec["type"] != "ExternalName" {
            for f in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                if spec.get(f).is_none()
                    && let Some(v) = old.get(f)
                {
                    spec[f] = v.clone();
                }
            }
        }
        if let (Some(ports), Some(old_ports)) = (spec["ports"].as_array_mut(), old["ports"].as_array()) {
            for p in ports.iter_mut().filter(|p| p.get("nodePort").is_none()) {
                if let Some(np) = old_ports.iter().find(|o| o["port"] == p["port"]).and_then(|o| o.get("nodePort")) {
                    p["nodePort"] = np.clone();
                }
            }
        }
        self.service_allocate(obj);
    }
}

/// The status a newly created object starts with (strategies' PrepareForCreate).
fn initial_status(res: &Resource, obj: &Value) -> Value {
    match (res.group.as_str(), res.kind.as_str()) {
        ("", "Namespace") => json!({"phase": "Active"}),
        ("", "PersistentVolumeClaim") => json!({"phase": "Pending"}),
        ("", "Service") => json!({"loadBalancer": {}}),
        ("networking.k8s.io", "Ingress") => json!({"loadBalancer": {}}),
        ("", "Pod") => json!({"phase": "Pending", "qosClass": qos_class(&obj["spec"])}),
        ("policy", "PodDisruptionBudget") => {
            json!({"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0})
        }
        ("apiextensions.k8s.io", _) => {
            json!({"acceptedNames": {"kind": "", "plural": ""}, "storedVersions": []})
        }
        _ if res.is_crd() => Value::Null,
        _ => json!({}),
    }
}

fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = spec["containers"].as_array().into_iter().flatten().collect();
    let any = containers.iter().any(|c| c["resources"]["requests"].is_object() || c["resources"]["limits"].is_object());
    if !any {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        let l = &c["resources"]["limits"];
        ["cpu", "memory"]
            .iter()
            .all(|r| l.get(*r).is_some() && c["resources"]["requests"].get(*r).is_none_or(|q| Some(q) == l.get(*r)))
    });
    if guaranteed { "Guaranteed" } else { "Burstable" }
}

/// The Job strategy's generated selector and labels (unless `manualSelector`).
fn job_selector(obj: &mut Value) {
    if obj["spec"]["manualSelector"] == json!(true) {
        return;
    }
    let uid = obj["metadata"]["uid"].clone();
    let name = obj["metadata"]["name"].clone();
    obj["spec"]["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    let labels = &mut obj["spec"]["template"]["metadata"]["labels"];
    if !labels.is_object() {
        *labels = json!({});
    }
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &name),
        ("controller-uid", &uid),
        ("job-name", &name),
    ] {
        labels[k] = v.clone();
    }
    if obj["metadata"]["labels"].as_object().is_none_or(Map::is_empty) {
        obj["metadata"]["labels"] = obj["spec"]["template"]["metadata"]["labels"].clone();
    }
}
