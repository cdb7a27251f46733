#!/usr/bin/env python3
"""Generates src/builtin_schema.json, the structured-merge-diff schema of the
built-in kinds the fake serves, from the k8s-openapi sources in the cargo
registry.

k8s-openapi's DeepMerge impls carry the list/map merge strategies, but with the
strategic-merge-patch merge key where one exists, and they know nothing about
atomic structs, key defaults or which Go fields serialize as `{}` when empty.
Those come from the overlays below, transcribed from the SMD schema in
k8s.io/client-go/applyconfigurations/internal/internal.go.

Usage: tools/gen_schema.py ~/.cargo/registry/src/*/k8s-openapi-0.29.0/src/v1_35 > src/builtin_schema.json
"""
import json
import os
import re
import sys

ROOTS = [
    "io.k8s.api.core.v1.Namespace", "io.k8s.api.core.v1.ConfigMap", "io.k8s.api.core.v1.Secret",
    "io.k8s.api.core.v1.Service", "io.k8s.api.core.v1.ServiceAccount",
    "io.k8s.api.core.v1.PersistentVolumeClaim", "io.k8s.api.core.v1.Pod", "io.k8s.api.core.v1.Event",
    "io.k8s.api.apps.v1.Deployment", "io.k8s.api.apps.v1.StatefulSet", "io.k8s.api.apps.v1.DaemonSet",
    "io.k8s.api.apps.v1.ReplicaSet", "io.k8s.api.batch.v1.Job", "io.k8s.api.batch.v1.CronJob",
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler", "io.k8s.api.networking.v1.Ingress",
    "io.k8s.api.networking.v1.NetworkPolicy", "io.k8s.api.rbac.v1.Role", "io.k8s.api.rbac.v1.RoleBinding",
    "io.k8s.api.rbac.v1.ClusterRole", "io.k8s.api.rbac.v1.ClusterRoleBinding",
    "io.k8s.api.policy.v1.PodDisruptionBudget", "io.k8s.api.coordination.v1.Lease",
    "io.k8s.api.events.v1.Event", "io.k8s.api.authorization.v1.SubjectAccessReview",
    "io.k8s.api.authorization.v1.SelfSubjectAccessReview", "io.k8s.api.authentication.v1.TokenReview",
    "io.k8s.api.authentication.v1.SelfSubjectReview",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
    "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicy",
    "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicyBinding",
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
]

# `elementRelationship: atomic` on struct types.
ATOMIC_STRUCTS = {
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
    "io.k8s.api.core.v1.ConfigMapKeySelector", "io.k8s.api.core.v1.EndpointAddress",
    "io.k8s.api.core.v1.EndpointPort", "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.NodeSelector", "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.ObjectFieldSelector", "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.ResourceFieldSelector", "io.k8s.api.core.v1.ScopeSelector",
    "io.k8s.api.core.v1.SecretKeySelector", "io.k8s.api.core.v1.SecretReference",
    "io.k8s.api.core.v1.TopologySelectorTerm", "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.rbac.v1.RoleRef", "io.k8s.api.rbac.v1.Subject",
}

# SSA list-map keys where they differ from the strategic-merge-patch key.
SSA_KEYS = {
    ("io.k8s.api.core.v1.Container", "ports"): ["containerPort", "protocol"],
    ("io.k8s.api.core.v1.EphemeralContainer", "ports"): ["containerPort", "protocol"],
    ("io.k8s.api.core.v1.ServiceSpec", "ports"): ["port", "protocol"],
    ("io.k8s.api.core.v1.PodSpec", "topologySpreadConstraints"): ["topologyKey", "whenUnsatisfiable"],
}

# Lists that are atomic for SSA although k8s-openapi merges them by key.
ATOMIC_LISTS = {("io.k8s.api.apps.v1.StatefulSetSpec", "volumeClaimTemplates")}

# Key fields with a schema default other than the Go zero value.
KEY_DEFAULTS = {
    ("io.k8s.api.core.v1.ContainerPort", "protocol"): "TCP",
    ("io.k8s.api.core.v1.ServicePort", "protocol"): "TCP",
}

# Non-pointer Go struct fields (`default: {}`): they serialize as `{}` when empty.
ZERO_OBJECTS = {
    "io.k8s.api.apps.v1.DeploymentSpec": ["strategy", "template"],
    "io.k8s.api.apps.v1.DaemonSetSpec": ["template", "updateStrategy"],
    "io.k8s.api.apps.v1.ReplicaSetSpec": ["template"],
    "io.k8s.api.apps.v1.StatefulSetSpec": ["template", "updateStrategy"],
    "io.k8s.api.core.v1.PodTemplateSpec": ["metadata", "spec"],
    "io.k8s.api.core.v1.Container": ["resources"],
    "io.k8s.api.core.v1.EphemeralContainer": ["resources"],
    "io.k8s.api.batch.v1.JobSpec": ["template"],
    "io.k8s.api.batch.v1.JobTemplateSpec": ["metadata", "spec"],
    "io.k8s.api.batch.v1.CronJobSpec": ["jobTemplate"],
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec": ["scaleTargetRef"],
    "io.k8s.api.autoscaling.v2.ContainerResourceMetricSource": ["target"],
    "io.k8s.api.autoscaling.v2.ExternalMetricSource": ["metric", "target"],
    "io.k8s.api.autoscaling.v2.ObjectMetricSource": ["describedObject", "metric", "target"],
    "io.k8s.api.autoscaling.v2.PodsMetricSource": ["metric", "target"],
    "io.k8s.api.autoscaling.v2.ResourceMetricSource": ["target"],
    "io.k8s.api.autoscaling.v2.ContainerResourceMetricStatus": ["current"],
    "io.k8s.api.autoscaling.v2.ExternalMetricStatus": ["current", "metric"],
    "io.k8s.api.autoscaling.v2.ObjectMetricStatus": ["current", "describedObject", "metric"],
    "io.k8s.api.autoscaling.v2.PodsMetricStatus": ["current", "metric"],
    "io.k8s.api.autoscaling.v2.ResourceMetricStatus": ["current"],
    "io.k8s.api.core.v1.PersistentVolumeClaimSpec": ["resources"],
    "io.k8s.api.core.v1.PersistentVolumeClaimTemplate": ["metadata", "spec"],
    "io.k8s.api.core.v1.WeightedPodAffinityTerm": ["podAffinityTerm"],
    "io.k8s.api.core.v1.PreferredSchedulingTerm": ["preference"],
    "io.k8s.api.networking.v1.NetworkPolicySpec": ["podSelector"],
    "io.k8s.api.networking.v1.HTTPIngressPath": ["backend"],
    "io.k8s.api.networking.v1.IngressServiceBackend": ["port"],
    "io.k8s.api.networking.v1.IngressStatus": ["loadBalancer"],
    "io.k8s.api.core.v1.ServiceStatus": ["loadBalancer"],
    "io.k8s.api.core.v1.ContainerStatus": ["lastState", "state"],
    "io.k8s.api.core.v1.Event": ["involvedObject", "source"],
    "io.k8s.api.rbac.v1.RoleBinding": ["roleRef"],
    "io.k8s.api.rbac.v1.ClusterRoleBinding": ["roleRef"],
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec": ["names"],
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus": ["acceptedNames"],
}
# Top-level metadata/spec/status are non-pointer structs in every served kind.
TOP_LEVEL_ZERO = ["metadata", "spec", "status"]

# Non-omitempty Go slices: present as null in a zero-valued object.
ZERO_NULLS = {"io.k8s.api.core.v1.PodSpec": ["containers"]}

SCALARS = {
    "String": "string", "std::string::String": "string", "i32": "number", "i64": "number", "f64": "number", "bool": "boolean",
    "crate::ByteString": "string",
    "crate::apimachinery::pkg::api::resource::Quantity": "quantity",
    "crate::apimachinery::pkg::apis::meta::v1::Time": "untyped",
    "crate::apimachinery::pkg::apis::meta::v1::MicroTime": "untyped",
    "crate::apimachinery::pkg::util::intstr::IntOrString": "untyped",
    "crate::serde_json::Value": "atomic",
    "crate::apimachinery::pkg::runtime::RawExtension": "deduced",
    "crate::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceSubresourceStatus": "deduced",
    "crate::apimachinery::pkg::apis::meta::v1::FieldsV1": "deduced",
    "crate::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSON": "atomic",
    "crate::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray": "atomic",
    "crate::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrBool": "atomic",
    "crate::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrStringArray": "atomic",
}


def index(src):
    """rust path -> (definition name, file text)"""
    out = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            text = open(os.path.join(dirpath, f)).read()
            m = re.match(r"// Generated from definition (\S+)", text)
            s = re.search(r"^pub struct (\w+) \{", text, re.M)
            if not m or not s:
                continue
            rel = os.path.relpath(dirpath, src).replace(os.sep, "::")
            out["crate::%s::%s" % (rel, s.group(1))] = (m.group(1), text)
    return out


def json_names(text):
    """rust field name -> json field name, from the Deserialize impl"""
    return dict((r, j) for j, r in re.findall(r'"([^"]+)" => Field::Key_(\w+),', text))


def split_generic(s):
    depth, parts, cur = 0, [], ""
    for ch in s:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return parts


def merge_strategies(text):
    """rust field name -> strategy from the DeepMerge impl"""
    body = re.search(r"impl crate::DeepMerge for \w+ \{\n    fn merge_from\(&mut self, other: Self\) \{\n(.*?)\n    \}\n\}", text, re.S)
    out = {}
    if not body:
        return out
    for m in re.finditer(r"crate::merge_strategies::(list|map)::(\w+)\(\s*&mut self\.(\w+),(.*?)\);\n(?=        crate|$)", body.group(1) + "\n", re.S):
        kind, strat, field, rest = m.groups()
        keys = re.findall(r"lhs\.(\w+) == rhs\.\w+", rest)
        inner = re.search(r"current_item, other_item\| \{\s*crate::merge_strategies::(list|map)::(\w+)", rest)
        out[field] = (kind, strat, keys, inner.groups() if inner else None)
    return out


def main():
    idx = index(sys.argv[1])
    by_def = {d: (path, text) for path, (d, text) in idx.items()}
    types = {}
    todo = list(ROOTS)

    def conv_type(rust, strat, owner, json_name):
        if rust.startswith("Option<"):
            return conv_type(rust[7:-1], strat, owner, json_name)
        if rust.startswith("std::boxed::Box<"):
            return conv_type(rust[len("std::boxed::Box<"):-1], strat, owner, json_name)
        if rust in SCALARS:
            return SCALARS[rust]
        if rust.startswith("std::vec::Vec<"):
            elem_rust = rust[len("std::vec::Vec<"):-1]
            elem = conv_type(elem_rust, None, owner, json_name)
            kind = strat[1] if strat and (owner, json_name) not in ATOMIC_LISTS else "atomic"
            out = {"list": elem, "type": {"atomic": "atomic", "set": "set", "map": "map"}[kind]}
            if kind == "map":
                elem_names = json_names(idx[elem_rust][1])
                smp = [elem_names[k] for k in strat[2]]
                out["smp_key"] = smp[0]
                out["keys"] = SSA_KEYS.get((owner, json_name), smp)
            return out
        if rust.startswith("std::collections::BTreeMap<"):
            _, elem_rust = split_generic(rust[len("std::collections::BTreeMap<"):-1])
            inner = strat[3] if strat else None
            elem = conv_type(elem_rust, (None, inner[1], [], None) if inner else None, owner, json_name)
            return {"map": elem, "atomic": bool(strat and strat[1] == "atomic")}
        if rust in idx:
            d = idx[rust][0]
            if d not in types and d not in todo:
                todo.append(d)
            return {"ref": d}
        raise SystemExit("unknown rust type %s in %s" % (rust, owner))

    while todo:
        d = todo.pop()
        if d in types:
            continue
        path, text = by_def[d]
        struct = re.search(r"^pub struct \w+ \{\n(.*?)^\}", text, re.S | re.M).group(1)
        rust_fields = re.findall(r"^    pub (\w+): (.+),$", struct, re.M)
        names = json_names(text)
        strategies = merge_strategies(text)
        fields = {}
        for rust_name, rust_ty in rust_fields:
            json_name = names[rust_name]
            f = {"t": conv_type(rust_ty, strategies.get(rust_name), d, json_name)}
            if not rust_ty.startswith("Option<") and f["t"] in ("string", "number", "boolean"):
                f["d"] = {"string": "", "number": 0, "boolean": False}[f["t"]]
            if (d, json_name) in KEY_DEFAULTS:
                f["d"] = KEY_DEFAULTS[(d, json_name)]
            if json_name in ZERO_OBJECTS.get(d, []) or (d in ROOTS and json_name in TOP_LEVEL_ZERO and "ref" in f["t"]):
                f["z"] = "{}"
            if json_name in ZERO_NULLS.get(d, []):
                f["z"] = "null"
            fields[json_name] = f
        if d in ROOTS and "metadata" in fields and d != "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta":
            fields = {"apiVersion": {"t": "string"}, "kind": {"t": "string"}, **fields}
        types[d] = {"fields": fields, "atomic": d in ATOMIC_STRUCTS}
    for d, over in ZERO_OBJECTS.items():
        if d in types:
            for name in over:
                assert name in types[d]["fields"], (d, name)
    json.dump({"types": dict(sorted(types.items()))}, sys.stdout, indent=None, separators=(",", ":"), sort_keys=False)


main()
