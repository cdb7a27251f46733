//! `replicas`: kustomize's replica count transformer. The objects named (by any name they have
//! had) of the kinds the built-in specifications list get `spec.replicas`; naming none is an
//! error, as in kustomize.

use serde_json::Value;

use super::super::Resource;
use super::super::kustomization::Replica;
use super::TransformerConfig;

pub fn apply(replica: &Replica, config: &TransformerConfig, resources: &mut [Resource]) -> Result<(), String> {
    let mut found = false;
    for spec in &config.replicas {
        for resource in resources.iter_mut().filter(|r| r.any_name_is(&replica.name) && spec.selects(r)) {
            found = true;
            let count = Value::from(replica.count);
            super::visit(&mut resource.object, spec, &|| count.clone(), &mut |field| {
                *field = count.clone();
                Ok(())
            })?;
        }
    }
    if found {
        Ok(())
    } else {
        let kinds: Vec<&str> = config.replicas.iter().map(|s| s.kind.as_str()).collect();
        Err(format!("`replicas`: no {} named `{}`", kinds.join(", "), replica.name))
    }
}
