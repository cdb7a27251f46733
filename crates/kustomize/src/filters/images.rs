//! `images`: kustomize's image tag transformer. Every `image` of a `containers` or
//! `initContainers` list anywhere in an object (CRDs aside) whose name matches is given the new
//! name, tag or digest, as kustomize's `LegacyFilter` and `image.Split` do it; then, as
//! kustomize does, once more at the built-in field specifications (so a `tagSuffix` is added
//! twice to the containers of pod templates, as `kubectl kustomize` adds it).

use serde_json::Value;

use super::super::Resource;
use super::super::kustomization::{FieldSpec, Image};
use super::TransformerConfig;

pub fn apply(image: &Image, config: &TransformerConfig, resources: &mut [Resource]) {
    // kustomize builds this pattern from the name unescaped; a name that is no pattern matches nothing.
    let Ok(pattern) =
        regex::Regex::new(&format!("^{}(:[a-zA-Z0-9_.{{}}-]*)?(@sha256:[a-zA-Z0-9_.{{}}-]*)?$", image.name))
    else {
        return;
    };
    for resource in resources.iter_mut().filter(|r| r.kind() != "CustomResourceDefinition") {
        walk(&mut resource.object, &mut |value| {
            if pattern.is_match(value) {
                *value = updated(value, image);
            }
        });
        let selected: Vec<FieldSpec> = config
            .images
            .iter()
            .filter(|s| s.selects(resource))
            .map(|s| FieldSpec { create: false, ..s.clone() })
            .collect();
        for spec in &selected {
            let _ = super::visit(&mut resource.object, spec, &|| Value::Null, &mut |field| {
                if let Value::String(value) = field
                    && pattern.is_match(value)
                {
                    *value = updated(value, image);
                }
                Ok(())
            });
        }
    }
}

/// Sets the tag of every container image of `repository` in `object` (what `weaver promote`
/// pinned): `tag` is `1.4.2`, `1.4.2@sha256:…` or `@sha256:…`.
pub fn set_tag(object: &mut Value, repository: &str, tag: &str) {
    let image = match tag.strip_prefix('@') {
        Some(digest) => format!("{repository}@{digest}"),
        None => format!("{repository}:{tag}"),
    };
    walk(object, &mut |value| {
        if split(value).0 == repository {
            *value = image.clone();
        }
    });
}

/// The tags of the container images of `repository` in `object`, as [`set_tag`] takes them
/// (`1.4.2`, `1.4.2@sha256:…`, `@sha256:…`; empty for an image without either).
pub fn tags_of(object: &Value, repository: &str) -> Vec<String> {
    let mut tags = Vec::new();
    walk(&mut object.clone(), &mut |value| {
        let (name, tag, digest) = split(value);
        if name == repository {
            tags.push(match digest.is_empty() {
                true => tag,
                false => format!("{tag}@{digest}"),
            });
        }
    });
    tags
}

/// Calls `update` on the `image` of every element of every `containers`/`initContainers` list.
fn walk(node: &mut Value, update: &mut dyn FnMut(&mut String)) {
    match node {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                walk(value, update);
                if key == "containers" || key == "initContainers" {
                    for container in value.as_array_mut().into_iter().flatten() {
                        if let Some(Value::String(image)) = container.get_mut("image") {
                            update(image);
                        }
                    }
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| walk(item, update)),
        _ => {}
    }
}

fn updated(value: &str, image: &Image) -> String {
    let (name, tag, digest) = split(value);
    let name = if image.new_name.is_empty() { name } else { image.new_name.clone() };
    let (tag, digest) = match (image.new_tag.as_str(), image.digest.as_str()) {
        ("", "") if !image.tag_suffix.is_empty() => (format!("{tag}{}", image.tag_suffix), String::new()),
        ("", "") => (tag, digest),
        (new_tag, "") => (new_tag.to_string(), String::new()),
        ("", new_digest) => (String::new(), new_digest.to_string()),
        (new_tag, new_digest) => (new_tag.to_string(), new_digest.to_string()),
    };
    let mut out = name;
    if !tag.is_empty() {
        out = format!("{out}:{tag}");
    }
    if !digest.is_empty() {
        out = format!("{out}@{digest}");
    }
    out
}

/// kustomize's `image.Split`: name, tag and digest; a `:` before the first `/` is a registry's port.
fn split(image: &str) -> (String, String, String) {
    let start = image.find('/').filter(|&i| i > 0).unwrap_or(0);
    let search = &image[start..];
    let (at, colon) = (search.find('@').map(|i| i + start), search.find(':').map(|i| i + start));
    match (colon, at) {
        (None, None) => (image.to_string(), String::new(), String::new()),
        (Some(c), Some(d)) if c < d => {
            (image[..c].to_string(), image[c + 1..d].to_string(), image[d + 1..].to_string())
        }
        (_, Some(d)) => (image[..d].to_string(), String::new(), image[d + 1..].to_string()),
        (Some(c), None) => (image[..c].to_string(), image[c + 1..].to_string(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_split_as_kustomize_splits_them() {
        let s = |i: &str| split(i);
        assert_eq!(s("nginx"), ("nginx".into(), "".into(), "".into()));
        assert_eq!(s("nginx:1.2"), ("nginx".into(), "1.2".into(), "".into()));
        assert_eq!(s("localhost:5000/nginx:1.2"), ("localhost:5000/nginx".into(), "1.2".into(), "".into()));
        assert_eq!(s("nginx@sha256:ab"), ("nginx".into(), "".into(), "sha256:ab".into()));
        assert_eq!(s("nginx:1@sha256:ab"), ("nginx".into(), "1".into(), "sha256:ab".into()));
    }

    #[test]
    fn pinned_tags_are_read_and_set_by_repository() {
        let mut pod = serde_json::json!({"spec": {
            "initContainers": [{"image": "localhost:5000/web@sha256:ab"}],
            "containers": [{"image": "localhost:5000/web:1.0"}, {"image": "localhost:5000/webhook:1.0"}],
        }});
        let mut tags = tags_of(&pod, "localhost:5000/web");
        tags.sort();
        assert_eq!(tags, ["1.0", "@sha256:ab"]);
        set_tag(&mut pod, "localhost:5000/web", "2.0@sha256:cd");
        assert_eq!(tags_of(&pod, "localhost:5000/web"), ["2.0@sha256:cd", "2.0@sha256:cd"]);
        assert_eq!(tags_of(&pod, "localhost:5000/webhook"), ["1.0"], "another repository is left alone");
        set_tag(&mut pod, "localhost:5000/web", "@sha256:ef");
        assert_eq!(pod["spec"]["containers"][0]["image"], "localhost:5000/web@sha256:ef");
    }
}
