//! `configMapGenerator` and `secretGenerator` with `generatorOptions`: kustomize's generators.
//! Data comes from `literals` (`key=value`, one pair of surrounding quotes removed), `files`
//! (`[key=]path`, the key defaulting to the file's name) and `envs` (`KEY=value` lines, `#`
//! comments); `behavior` `create` (the default) adds an object, `merge` and `replace` change
//! the one of that name a base made. At the end of the top build, a generated object's name
//! gets kustomize's content hash (unless `disableNameSuffixHash`), and references follow.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};

use super::super::kustomization::{GeneratorArgs, GeneratorOptions, Kustomization, Located};
use super::super::{Origin, Resource, Target};
use weaver_core::error::Result;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behavior {
    Create,
    Merge,
    Replace,
}

pub(crate) fn run(target: &Target, k: &Kustomization, resources: &mut Vec<Resource>) -> Result<()> {
    let global = k.generator_options.clone().unwrap_or_default();
    for (field, kind, list) in [
        ("configMapGenerator", "ConfigMap", &k.config_map_generator),
        ("secretGenerator", "Secret", &k.secret_generator),
    ] {
        for (index, args) in list.iter().flatten().enumerate() {
            let generated = generate(target, field, kind, args, &global, index + 1)?;
            add(target, field, &args.referenced, generated, resources)?;
        }
    }
    Ok(())
}

/// The builtin generators a kustomization's `generators` entries configure (kustomize's
/// ConfigMapGenerator and SecretGenerator plugins), after its own generators, as kustomize runs
/// them: each generates as the field's entry would, without the kustomization's
/// `generatorOptions`; `build` gives the objects of a kustomization an entry names.
/// With `origin` (where the kustomization is, from the release's, when `buildMetadata` asks for
/// origins), each generated object is given the file that configured it.
pub(crate) fn run_configured(
    target: &Target,
    k: &Kustomization,
    resources: &mut Vec<Resource>,
    origin: Option<&Path>,
    build: &mut dyn FnMut(&Located) -> Result<Option<Vec<Value>>>,
) -> Result<()> {
    // Positions after the fields' generators, which tell generated objects apart.
    let mut document = k.config_map_generator.iter().chain(&k.secret_generator).flatten().count();
    for entry in super::transformers::inline_first(&k.generators) {
        let at = &entry.referenced;
        let (path, documents) = super::transformers::documents(target, entry, "generators", build)?;
        for config in documents {
            let configured_in = origin.map(|origin| Origin::configured_in(origin, &config, &entry.value, &target.file));
            let config: PluginConfig = serde_json::from_value(config.clone()).map_err(|_| {
                // serde_json's message quotes the value it refused, a SecretGenerator's literal
                // among them: the same error, of the configuration without its values.
                let e = serde_json::from_value::<PluginConfig>(without_values(&config)).err();
                let e = e.map(|e| format!(": {e}")).unwrap_or_default();
                target.error(at, format!("`generators`: {}: not a generator configuration{e}", path.display()))
            })?;
            let kind = match (config.api_version.as_str(), config.kind.as_str()) {
                ("builtin" | "", "ConfigMapGenerator") => "ConfigMap",
                ("builtin" | "", "SecretGenerator") => "Secret",
                ("builtin" | "", other) => {
                    return Err(target.error(
                        at,
                        format!("`generators`: `{other}` is not a builtin generator weaver runs (ConfigMapGenerator, SecretGenerator)"),
                    )
                    .with_help("list Helm charts under `helmCharts`"));
                }
                (api_version, other) => {
                    return Err(target.error(
                        at,
                        format!("`generators`: `{api_version}` `{other}` is a plugin: weaver runs kustomize's builtin generators only"),
                    ));
                }
            };
            // The configuration object's own name, which an origin names.
            let name = config.metadata.name.clone().unwrap_or_default();
            let namespace = config.metadata.namespace.clone().unwrap_or_default();
            let (api_version, plugin_kind) = (config.api_version.clone(), config.kind.clone());
            let mut args = config.args;
            // kustomize's plugin takes its metadata's name and namespace where its arguments give none.
            if args.name.as_deref().is_none_or(str::is_empty) {
                args.name = config.metadata.name;
            }
            if args.namespace.as_deref().is_none_or(str::is_empty) {
                args.namespace = config.metadata.namespace;
            }
            document += 1;
            let args = super::transformers::spanned(args, at);
            let (mut generated, behavior) =
                generate(target, "generators", kind, &args, &GeneratorOptions::default(), document)?;
            if let Some(configured_in) = &configured_in {
                let (api_version, kind) = (&api_version, &plugin_kind);
                Origin::Configured { configured_in, api_version, kind, name: &name, namespace: &namespace }
                    .mark(&mut generated.object);
            }
            add(target, "generators", at, (generated, behavior), resources)?;
        }
    }
    Ok(())
}

/// `value` with a placeholder of its type in place of each string and number, so that an error
/// about it names what was found, never the value (a SecretGenerator's literal).
fn without_values(value: &Value) -> Value {
    match value {
        Value::String(_) => Value::String("…".to_string()),
        Value::Number(number) if number.is_f64() => json!(0.5),
        Value::Number(_) => json!(0),
        Value::Array(items) => Value::Array(items.iter().map(without_values).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(key, v)| (key.clone(), without_values(v))).collect()),
        other => other.clone(),
    }
}

/// A builtin generator's configuration, read as kustomize reads a plugin's: keys it does not
/// know are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PluginConfig {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: PluginMetadata,
    /// Flattened, a struct takes only the keys it knows.
    #[serde(flatten)]
    args: GeneratorArgs,
}

#[derive(Default, Deserialize)]
struct PluginMetadata {
    name: Option<String>,
    namespace: Option<String>,
}

fn generate(
    target: &Target,
    field: &str,
    kind: &str,
    spanned: &Spanned<GeneratorArgs>,
    global: &GeneratorOptions,
    document: usize,
) -> Result<(Resource, Behavior)> {
    let (args, at) = (&spanned.value, &spanned.referenced);
    let Some(name) = args.name.as_deref().filter(|n| !n.is_empty()) else {
        return Err(target.error(at, format!("`{field}`: an entry needs a `name`")));
    };
    // kustomize reads any other value (`add`, `Merge`) as create, without a word.
    let behavior = match args.behavior.as_deref() {
        Some("merge") => Behavior::Merge,
        Some("replace") => Behavior::Replace,
        _ => Behavior::Create,
    };
    let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
    for env in args.envs.iter().chain(&args.env) {
        let (path, text) = target.read_file(env, at, field)?;
        pairs.extend(env_pairs(&path, &text).map_err(|e| target.error(at, format!("`{field}`: {e}")))?);
    }
    for (index, literal) in args.literals.iter().enumerate() {
        match literal.split_once('=') {
            Some((key, value)) if !key.is_empty() => pairs.push((key.to_string(), unquoted(value).as_bytes().to_vec())),
            // By its place, never its text: a Secret's literal is its value.
            _ => {
                let why = format!(
                    "`{field}`: literal {} of `literals` is not key=value (it has no `=` after a key)",
                    index + 1
                );
                return Err(target.error(at, why));
            }
        }
    }
    for file in &args.files {
        let (key, path) = match file.split_once('=') {
            Some((key, path)) if !key.is_empty() && !path.is_empty() => (key.to_string(), path),
            Some(_) => return Err(target.error(at, format!("`{field}`: file source `{file}` is not [key=]path"))),
            None => (
                Path::new(file).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                file.as_str(),
            ),
        };
        let full = target.file_path(path, at, field)?;
        let Some(bytes) = target.source.read_named(&full, &super::super::location(&target.file, at), field)? else {
            return Err(target.error(at, format!("`{field}`: {} does not exist", full.display())));
        };
        pairs.push((key, bytes));
    }
    let mut data = Map::new();
    let mut binary = Map::new();
    for (key, value) in pairs {
        if data.contains_key(&key) || binary.contains_key(&key) {
            return Err(target.error(at, format!("`{field}` `{name}`: key `{key}` is given twice")));
        }
        let b64 = || Value::String(encode_base64(&value));
        match (kind, String::from_utf8(value.clone())) {
            ("Secret", _) => {
                data.insert(key, b64());
            }
            (_, Ok(text)) => {
                data.insert(key, Value::String(text));
            }
            (_, Err(_)) => {
                binary.insert(key, b64());
            }
        }
    }
    let local = args.options.clone().unwrap_or_default();
    let merged = |l: &Option<BTreeMap<String, String>>, g: &Option<BTreeMap<String, String>>| {
        let mut out = g.clone().unwrap_or_default();
        out.extend(l.clone().unwrap_or_default());
        out
    };
    let labels = merged(&local.labels, &global.labels);
    let annotations = merged(&local.annotations, &global.annotations);
    let no_hash = global.disable_name_suffix_hash == Some(true) || local.disable_name_suffix_hash == Some(true);
    let immutable = global.immutable == Some(true) || local.immutable == Some(true);

    let mut metadata = Map::new();
    metadata.insert("name".into(), name.into());
    if let Some(namespace) = args.namespace.as_deref().filter(|ns| !ns.is_empty()) {
        metadata.insert("namespace".into(), namespace.into());
    }
    if !labels.is_empty() {
        metadata.insert("labels".into(), json!(labels));
    }
    if !annotations.is_empty() {
        metadata.insert("annotations".into(), json!(annotations));
    }
    let mut object = json!({"apiVersion": "v1", "kind": kind, "metadata": metadata});
    if kind == "Secret" {
        object["type"] = args.secret_type.clone().filter(|t| !t.is_empty()).unwrap_or_else(|| "Opaque".into()).into();
    }
    // kustomize writes a Secret's `data` even when empty, a ConfigMap's only when not.
    if !data.is_empty() || kind == "Secret" {
        object["data"] = Value::Object(data);
    }
    if !binary.is_empty() {
        object["binaryData"] = Value::Object(binary);
    }
    if immutable {
        object["immutable"] = true.into();
    }
    let mut resource = Resource::new(object, target.file.clone(), document);
    resource.needs_hash = !no_hash;
    Ok((resource, behavior))
}

/// The pairs of an env file.
fn env_pairs(path: &Path, text: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = if index == 0 { line.trim_start_matches('\u{feff}') } else { line };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        let valid = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            return Err(format!("{}:{}: `{key}` is not an environment variable name", path.display(), index + 1));
        }
        out.push((key.to_string(), value.as_bytes().to_vec()));
    }
    Ok(out)
}

/// kustomize's `removeQuotes`: one pair of matching surrounding quotes.
fn unquoted(value: &str) -> &str {
    let bytes = value.as_bytes();
    if bytes.len() >= 2 && bytes[0] == bytes[bytes.len() - 1] && matches!(bytes[0], b'"' | b'\'') {
        &value[1..value.len() - 1]
    } else {
        value
    }
}

/// Adds a generated object, or merges it into / replaces the one a base made.
fn add(
    target: &Target,
    field: &str,
    at: &serde_saphyr::Location,
    (mut new, behavior): (Resource, Behavior),
    resources: &mut Vec<Resource>,
) -> Result<()> {
    let same =
        |r: &Resource| r.api_version() == new.api_version() && r.any_id_is(new.kind(), new.name(), new.namespace());
    let matches: Vec<usize> = resources.iter().enumerate().filter(|(_, r)| same(r)).map(|(i, _)| i).collect();
    match (matches.as_slice(), behavior) {
        ([], Behavior::Create) => {
            resources.push(new);
            Ok(())
        }
        ([], _) => Err(target
            .error(
                at,
                format!(
                    "`{field}`: {} does not exist in the resources, so it cannot be merged or replaced",
                    new.describe()
                ),
            )
            .with_help(
                "`behavior: merge` and `replace` change an object a base generates; use `create` for a new one",
            )),
        ([_], Behavior::Create) => Err(target
            .error(at, format!("`{field}`: {} already exists (generated or listed twice)", new.describe()))
            .with_help(
                "give the generator another name, or `behavior: merge` or `replace` to change the existing one",
            )),
        ([index], behavior) => {
            let old = &resources[*index];
            for field in ["labels", "annotations"] {
                let mut merged = old
                    .object
                    .pointer(&format!("/metadata/{field}"))
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                if let Some(own) = new.object.pointer(&format!("/metadata/{field}")).and_then(Value::as_object) {
                    merged.extend(own.clone());
                }
                if !merged.is_empty() {
                    new.object["metadata"][field] = Value::Object(merged);
                }
            }
            new.object["metadata"]["name"] = old.name().into();
            if old.namespace().is_empty() {
                if let Some(meta) = new.object["metadata"].as_object_mut() {
                    meta.remove("namespace");
                }
            } else {
                new.object["metadata"]["namespace"] = old.namespace().into();
            }
            if behavior == Behavior::Merge {
                for field in ["data", "binaryData"] {
                    let mut merged = old.object.get(field).and_then(Value::as_object).cloned().unwrap_or_default();
                    if let Some(own) = new.object.get(field).and_then(Value::as_object) {
                        merged.extend(own.clone());
                    }
                    if !merged.is_empty() {
                        new.object[field] = Value::Object(merged);
                    }
                }
            }
            new.prev = old.prev.clone();
            // kustomize's `CopyMergeMetaDataFieldsFrom`: the hash is kept only when both the
            // existing object (a plain resource never has one) and the generator ask for it.
            new.needs_hash = new.needs_hash && old.needs_hash;
            resources[*index] = new;
            Ok(())
        }
        (_, _) => Err(target.error(at, format!("`{field}`: {} matches several objects", new.describe()))),
    }
}

/// Appends kustomize's content hash to the name of each generated object that needs one.
pub fn add_hashes(resources: &mut [Resource]) {
    for resource in resources.iter_mut().filter(|r| r.needs_hash) {
        let hash = content_hash(&resource.object);
        resource.store_previous_id();
        let name = format!("{}-{hash}", resource.name());
        resource.object["metadata"]["name"] = name.into();
    }
}

/// kustomize's `hasher.Hash` for ConfigMaps and Secrets: the first ten hex digits of the
/// SHA-256 of Go's JSON encoding of kind, type and data (keys sorted, `<`, `>` and `&`
/// escaped), with some digits replaced by letters so that it never reads as a number.
fn content_hash(object: &Value) -> String {
    let field = |name: &str| object.pointer(name).cloned().unwrap_or_else(|| Value::String(String::new()));
    let mut encoded: BTreeMap<&str, Value> = BTreeMap::new();
    encoded.insert("kind", field("/kind"));
    // kustomize looks the name up as one field called `metadata/name`, which no object has: the
    // name it hashes is always empty.
    encoded.insert("name", Value::String(String::new()));
    if object.get("kind").and_then(Value::as_str) == Some("Secret") {
        encoded.insert("data", sorted(field("/data")));
        encoded.insert("type", field("/type"));
        if let Some(string_data) = object.get("stringData").filter(|v| v.is_object()) {
            encoded.insert("stringData", sorted(string_data.clone()));
        }
    } else {
        encoded.insert("data", sorted(field("/data")));
        if let Some(binary) = object.get("binaryData").filter(|v| v.is_object()) {
            encoded.insert("binaryData", sorted(binary.clone()));
        }
    }
    let text = serde_json::to_string(&encoded).unwrap_or_default();
    let text = text.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026");
    let text = text.replace('\u{2028}', "\\u2028").replace('\u{2029}', "\\u2029");
    let hex = hex::encode(Sha256::digest(text.as_bytes()));
    hex[..10]
        .chars()
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            c => c,
        })
        .collect()
}

/// Base64 as kustomize's generators write it (kyaml's `encodeBase64`), which its hash covers:
/// an encoding of 70 characters or more in lines of 70, each ending with a line break. The API
/// server decodes it whole and returns it on one line (see `weaver_plan::diff::as_stored`).
fn encode_base64(bytes: &[u8]) -> String {
    const LINE: usize = 70;
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    if text.len() < LINE {
        return text;
    }
    let mut lines = String::with_capacity(text.len() + text.len() / LINE + 1);
    // Base64 is ASCII: a byte is a character.
    for line in text.as_bytes().chunks(LINE) {
        lines.extend(line.iter().map(|&b| char::from(b)));
        lines.push('\n');
    }
    lines
}

/// A map with its keys sorted, as Go's encoding/json writes maps.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<String, Value> = map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            serde_json::to_value(sorted).unwrap_or(Value::Null)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hashes_are_kustomizes() {
        // `kubectl kustomize` 1.32 names this ConfigMap `a-6gc9d749f7`.
        let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "y"}});
        assert_eq!(content_hash(&object), "6gc9d749f7");
    }

    /// As `kubectl kustomize` 1.32 writes a Secret generated from files of 51, 52 and 105 `x`s.
    #[test]
    fn base64_is_wrapped_as_kustomize_wraps_it() {
        let xs = |n: usize| "x".repeat(n).into_bytes();
        assert_eq!(encode_base64(&xs(51)), "eHh4".repeat(17));
        assert_eq!(encode_base64(&xs(52)), format!("{}eA\n==\n", "eHh4".repeat(17)));
        let line = "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH";
        let second = "h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4";
        assert_eq!(encode_base64(&xs(105)), format!("{line}\n{second}\n"));
    }

    #[test]
    fn quotes_are_removed_as_kustomize_removes_them() {
        assert_eq!(unquoted("\"a b\""), "a b");
        assert_eq!(unquoted("'x'"), "x");
        assert_eq!(unquoted("\"x'"), "\"x'");
        assert_eq!(unquoted("\""), "\"");
    }
}
