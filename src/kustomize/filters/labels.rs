//! `labels`, `commonLabels` and `commonAnnotations`: kustomize's label and annotation
//! transformers, which add entries to the maps the field specifications name. `commonLabels`
//! and `labels` with `includeSelectors` reach selectors and templates; `includeTemplates`
//! reaches templates only; plain `labels` reach `metadata.labels` (and any `fields` given).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::super::Resource;
use super::super::kustomization::{FieldSpec, Kustomization};
use super::builtin;

pub fn apply(k: &Kustomization, resources: &mut [Resource]) {
    let config = builtin();
    for label in k.labels.iter().flatten() {
        let mut specs: Vec<FieldSpec> = label.fields.clone();
        if label.include_selectors {
            specs.extend(config.common_labels.iter().cloned());
        } else {
            if label.include_templates {
                specs.extend(config.template_labels.iter().cloned());
            }
            specs.push(FieldSpec { path: "metadata/labels".into(), create: true, ..FieldSpec::default() });
        }
        add_entries(&label.pairs, &dedup(specs), resources);
    }
    if let Some(labels) = &k.common_labels {
        add_entries(labels, &config.common_labels, resources);
    }
    if let Some(annotations) = &k.common_annotations {
        add_entries(annotations, &config.common_annotations, resources);
    }
}

/// kustomize merges field specifications: one path for one group, version and kind once.
fn dedup(specs: Vec<FieldSpec>) -> Vec<FieldSpec> {
    let mut out: Vec<FieldSpec> = Vec::new();
    for spec in specs {
        let same = |o: &FieldSpec| {
            o.path == spec.path && o.group == spec.group && o.version == spec.version && o.kind == spec.kind
        };
        if !out.iter().any(same) {
            out.push(spec);
        }
    }
    out
}

fn add_entries(entries: &BTreeMap<String, String>, specs: &[FieldSpec], resources: &mut [Resource]) {
    if entries.is_empty() {
        return;
    }
    for resource in resources.iter_mut() {
        let selected: Vec<&FieldSpec> = specs.iter().filter(|s| s.selects(resource)).collect();
        for spec in selected {
            let _ = super::visit(&mut resource.object, spec, &|| Value::Object(Map::new()), &mut |field| {
                if let Value::Object(map) = field {
                    for (key, value) in entries {
                        map.insert(key.clone(), Value::String(value.clone()));
                    }
                }
                Ok(())
            });
        }
    }
}
