//! `labels`, `commonLabels` and `commonAnnotations`: kustomize's label and annotation
//! transformers, which add entries to the maps the field specifications name. `commonLabels`
//! and `labels` with `includeSelectors` reach selectors and templates; `includeTemplates`
//! reaches templates only; plain `labels` reach `metadata.labels` (and any `fields` given).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::super::Resource;
use super::super::kustomization::{FieldSpec, Kustomization};
use super::{TransformerConfig, merge_specs};

pub fn apply(k: &Kustomization, config: &TransformerConfig, resources: &mut [Resource]) -> Result<(), String> {
    for label in k.labels.iter().flatten() {
        // kustomize's order: the label's own fields, the configuration's `labels`, then
        // selectors and templates, or templates, or just `metadata.labels`.
        let mut specs: Vec<FieldSpec> = Vec::new();
        let merge = |specs: &mut Vec<FieldSpec>, from: &[FieldSpec]| {
            merge_specs(specs, from).map_err(|e| format!("`labels`: {e}"))
        };
        merge(&mut specs, &label.fields)?;
        merge(&mut specs, &config.labels)?;
        if label.include_selectors {
            merge(&mut specs, &config.common_labels)?;
        } else {
            if label.include_templates {
                merge(&mut specs, &config.template_labels)?;
            }
            merge(&mut specs, &[FieldSpec { path: "metadata/labels".into(), create: true, ..FieldSpec::default() }])?;
        }
        add_entries(&label.pairs, &specs, resources);
    }
    if let Some(labels) = &k.common_labels {
        add_entries(labels, &config.common_labels, resources);
    }
    if let Some(annotations) = &k.common_annotations {
        add_entries(annotations, &config.common_annotations, resources);
    }
    Ok(())
}

pub(crate) fn add_entries(entries: &BTreeMap<String, String>, specs: &[FieldSpec], resources: &mut [Resource]) {
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
