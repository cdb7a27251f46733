//! The Go values behind helm's built-in objects that are not plain maps: `.Files`,
//! `.Capabilities` (with `KubeVersion`, `APIVersions.Has`, `HelmVersion`), `.Chart`, and the
//! `chartutil.Values` maps (`.`, `.Values`, `.Template`).

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use gotemplate::{Function, Map, Object, Type, Value};

use super::chart::{File, Metadata};

/// What `helm version` reports for helm v3.17.1, which `.Capabilities.HelmVersion` shows.
pub const HELM_VERSION: &str = "v3.17.1";
const HELM_GIT_COMMIT: &str = "980d8ac1939e39138101364400756af2bdee1da5";
const HELM_GO_VERSION: &str = "go1.23.5";

/// Kubernetes' version when the environment sets none (helm 3.17's client libraries').
pub const DEFAULT_KUBE_VERSION: &str = "v1.32.0";

/// chartutil.DefaultVersionSet in helm 3.17.1: the group versions of client-go's scheme, in its
/// order. It does not depend on the Kubernetes version.
const DEFAULT_API_VERSIONS: &[&str] = &[
    "v1",
    "admissionregistration.k8s.io/v1",
    "admissionregistration.k8s.io/v1alpha1",
    "admissionregistration.k8s.io/v1beta1",
    "internal.apiserver.k8s.io/v1alpha1",
    "apps/v1",
    "apps/v1beta1",
    "apps/v1beta2",
    "authentication.k8s.io/v1",
    "authentication.k8s.io/v1alpha1",
    "authentication.k8s.io/v1beta1",
    "authorization.k8s.io/v1",
    "authorization.k8s.io/v1beta1",
    "autoscaling/v1",
    "autoscaling/v2",
    "autoscaling/v2beta1",
    "autoscaling/v2beta2",
    "batch/v1",
    "batch/v1beta1",
    "certificates.k8s.io/v1",
    "certificates.k8s.io/v1beta1",
    "certificates.k8s.io/v1alpha1",
    "coordination.k8s.io/v1alpha2",
    "coordination.k8s.io/v1beta1",
    "coordination.k8s.io/v1",
    "discovery.k8s.io/v1",
    "discovery.k8s.io/v1beta1",
    "events.k8s.io/v1",
    "events.k8s.io/v1beta1",
    "extensions/v1beta1",
    "flowcontrol.apiserver.k8s.io/v1",
    "flowcontrol.apiserver.k8s.io/v1beta1",
    "flowcontrol.apiserver.k8s.io/v1beta2",
    "flowcontrol.apiserver.k8s.io/v1beta3",
    "networking.k8s.io/v1",
    "networking.k8s.io/v1alpha1",
    "networking.k8s.io/v1beta1",
    "node.k8s.io/v1",
    "node.k8s.io/v1alpha1",
    "node.k8s.io/v1beta1",
    "policy/v1",
    "policy/v1beta1",
    "rbac.authorization.k8s.io/v1",
    "rbac.authorization.k8s.io/v1beta1",
    "rbac.authorization.k8s.io/v1alpha1",
    "resource.k8s.io/v1beta1",
    "resource.k8s.io/v1alpha3",
    "scheduling.k8s.io/v1alpha1",
    "scheduling.k8s.io/v1beta1",
    "scheduling.k8s.io/v1",
    "storage.k8s.io/v1beta1",
    "storage.k8s.io/v1",
    "storage.k8s.io/v1alpha1",
    "storagemigration.k8s.io/v1alpha1",
    "apiextensions.k8s.io/v1beta1",
    "apiextensions.k8s.io/v1",
];

fn string_map(entries: &[(&str, Value)]) -> Value {
    Value::Map(entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
}

/// `chartutil.Values`, helm's `map[string]interface{}` type of `.`, `.Values` and `.Template`:
/// the map itself (shared, so `set .Values` changes it) with the methods `AsMap` and `YAML`.
#[derive(Debug)]
pub struct Values(pub Map);

impl Values {
    pub fn value(map: Map) -> Value {
        Value::Object(Arc::new(Values(map)))
    }
}

impl Object for Values {
    fn type_name(&self) -> &str {
        "chartutil.Values"
    }
    fn method(&self, name: &str) -> Option<Function> {
        let map = self.0.clone();
        match name {
            "AsMap" => Some(Function::new(&[], move |_, _| Ok(Value::Map(map.clone())))),
            // sigs.k8s.io/yaml's Marshal: toYaml's text with its newline.
            "YAML" => Some(Function::new(&[], move |_, _| {
                let text = super::funcs::to_yaml(&Value::Map(map.clone()))?;
                Ok(Value::from(if text.is_empty() { text } else { format!("{text}\n") }))
            })),
            _ => None,
        }
    }
    fn underlying(&self) -> Option<Value> {
        Some(Value::Map(self.0.clone()))
    }
    fn as_map(&self) -> Option<Map> {
        Some(self.0.clone())
    }
}

/// `.Files`: helm's `engine.files`, a `map[string][]byte` with methods.
#[derive(Debug, Clone)]
pub struct Files(pub Arc<BTreeMap<String, Arc<[u8]>>>);

impl Files {
    pub fn new(files: &[File]) -> Files {
        Files(Arc::new(files.iter().map(|f| (f.name.clone(), f.data.clone())).collect()))
    }

    /// A file's content as a Go string: its bytes, even when they are not UTF-8 (a binary file
    /// that the template base64-encodes).
    fn get(&self, name: &str) -> Value {
        self.0.get(name).map_or_else(|| Value::from(""), |d| Value::string_from_bytes(d))
    }

    /// `AsConfig`/`AsSecrets`: base names to contents, as toYaml writes a map of strings.
    fn as_yaml(&self, encode: impl Fn(&[u8]) -> String) -> String {
        let entries: serde_json::Map<String, serde_json::Value> = self
            .0
            .iter()
            .map(|(name, data)| (name.rsplit('/').next().unwrap_or(name).to_string(), encode(data).into()))
            .collect();
        let yaml =
            weaver_yaml::helm::to_string(&weaver_yaml::helm::Node::from_json(&serde_json::Value::Object(entries)));
        yaml.strip_suffix('\n').unwrap_or(&yaml).to_string()
    }
}

impl Object for Files {
    fn type_name(&self) -> &str {
        "engine.files"
    }

    fn method(&self, name: &str) -> Option<Function> {
        let files = self.clone();
        let string_arg = |args: &[Value]| args[0].as_str().unwrap_or_default().to_string();
        Some(match name {
            "Get" | "GetBytes" => Function::new(&[Type::String], move |_, args| Ok(files.get(&string_arg(args)))),
            "Glob" => Function::new(&[Type::String], move |_, args| {
                let pattern = string_arg(args);
                let matcher = globset::GlobBuilder::new(&pattern)
                    .literal_separator(true)
                    .build()
                    .or_else(|_| globset::Glob::new("**"))
                    .map(|g| g.compile_matcher())
                    .map_err(|e| gotemplate::FuncError::new(e.to_string()))?;
                let matched = files.0.iter().filter(|(n, _)| matcher.is_match(n)).map(|(n, d)| (n.clone(), d.clone()));
                Ok(Value::Object(Arc::new(Files(Arc::new(matched.collect())))))
            }),
            "Lines" => Function::new(&[Type::String], move |_, args| {
                let Some(data) = files.0.get(&string_arg(args)) else { return Ok(Value::from(Vec::new())) };
                let text = String::from_utf8_lossy(data);
                let text = text.strip_suffix('\n').unwrap_or(&text);
                Ok(Value::Object(Arc::new(Strings(text.split('\n').map(str::to_string).collect()))))
            }),
            "AsConfig" => Function::new(&[], move |_, _| {
                Ok(Value::from(files.as_yaml(|d| String::from_utf8_lossy(d).into_owned())))
            }),
            "AsSecrets" => Function::new(&[], move |_, _| {
                Ok(Value::from(files.as_yaml(|d| base64::engine::general_purpose::STANDARD.encode(d))))
            }),
            _ => return None,
        })
    }

    fn underlying(&self) -> Option<Value> {
        Some(Value::Map(
            self.0.iter().map(|(k, v)| (k.clone(), Value::from(String::from_utf8_lossy(v).into_owned()))).collect(),
        ))
    }
}

/// A Go `[]string` (what `.Files.Lines` returns).
#[derive(Debug)]
struct Strings(Vec<String>);

impl Object for Strings {
    fn type_name(&self) -> &str {
        "[]string"
    }
    fn underlying(&self) -> Option<Value> {
        Some(Value::from(self.0.iter().map(|s| Value::from(s.as_str())).collect::<Vec<_>>()))
    }
}

/// `.Capabilities.APIVersions`: chartutil.VersionSet.
#[derive(Debug)]
struct VersionSet(Vec<String>);

impl Object for VersionSet {
    fn type_name(&self) -> &str {
        "chartutil.VersionSet"
    }
    fn method(&self, name: &str) -> Option<Function> {
        let versions = self.0.clone();
        (name == "Has").then(|| {
            Function::new(&[Type::String], move |_, args| {
                Ok(Value::Bool(versions.iter().any(|v| Some(v.as_str()) == args[0].as_str())))
            })
        })
    }
    fn underlying(&self) -> Option<Value> {
        Some(Value::from(self.0.iter().map(|s| Value::from(s.as_str())).collect::<Vec<_>>()))
    }
}

/// `.Capabilities.KubeVersion`: chartutil.KubeVersion. `{{ .Capabilities.KubeVersion }}` prints
/// its version (its `String` method has a pointer receiver); passed to a function (`quote`,
/// `printf`), it is a copy, which Go formats as a struct: `{v1.32.0 1 32}`.
#[derive(Debug)]
struct KubeVersion {
    version: String,
    major: String,
    minor: String,
}

impl Object for KubeVersion {
    fn kind(&self) -> Option<&'static str> {
        Some("struct")
    }
    fn type_name(&self) -> &str {
        "chartutil.KubeVersion"
    }
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Version" => Some(Value::from(self.version.as_str())),
            "Major" => Some(Value::from(self.major.as_str())),
            "Minor" => Some(Value::from(self.minor.as_str())),
            _ => None,
        }
    }
    fn method(&self, name: &str) -> Option<Function> {
        let version = self.version.clone();
        matches!(name, "String" | "GitVersion")
            .then(|| Function::new(&[], move |_, _| Ok(Value::from(version.as_str()))))
    }
    fn printed(&self) -> Option<String> {
        Some(self.version.clone())
    }
    fn display(&self) -> String {
        format!("{{{} {} {}}}", self.version, self.major, self.minor)
    }
    fn underlying(&self) -> Option<Value> {
        Some(string_map(&[
            ("Version", Value::from(self.version.as_str())),
            ("Major", Value::from(self.major.as_str())),
            ("Minor", Value::from(self.minor.as_str())),
        ]))
    }
}

/// `.Capabilities`: the Kubernetes version (`v1.32.0` form, validated by the caller) and API
/// versions templates may test for.
#[derive(Debug)]
pub struct Capabilities {
    /// What they are made of: how a render worker is sent them.
    made_of: CapabilitiesOf,
    kube: Value,
    api_versions: Value,
    helm: Value,
}

impl Capabilities {
    /// Offline, as `helm template --kube-version K --api-versions A…`: helm's default
    /// group/versions, then `extra`. `None` when `kube_version` is not a version helm would
    /// accept.
    pub fn offline(kube_version: &str, extra: &[String]) -> Option<Capabilities> {
        let v = weaver_semver::Version::parse(kube_version).ok()?;
        let kube = KubeVersion { version: format!("v{v}"), major: v.major().to_string(), minor: v.minor().to_string() };
        let api_versions = DEFAULT_API_VERSIONS.iter().map(|v| v.to_string()).chain(extra.iter().cloned()).collect();
        Some(Capabilities::of(kube, api_versions))
    }

    /// A connected server's (helm install): its `gitVersion`, `major` and `minor` as it reports
    /// them, and the API versions discovery found.
    pub fn from_server(git_version: &str, major: &str, minor: &str, api_versions: Vec<String>) -> Capabilities {
        let kube = KubeVersion { version: git_version.to_string(), major: major.to_string(), minor: minor.to_string() };
        Capabilities::of(kube, api_versions)
    }

    fn of(kube: KubeVersion, api_versions: Vec<String>) -> Capabilities {
        let made_of = CapabilitiesOf {
            version: kube.version.clone(),
            major: kube.major.clone(),
            minor: kube.minor.clone(),
            api_versions: api_versions.clone(),
        };
        let helm = string_map(&[
            ("version", Value::from(HELM_VERSION)),
            ("git_commit", Value::from(HELM_GIT_COMMIT)),
            ("git_tree_state", Value::from("clean")),
            ("go_version", Value::from(HELM_GO_VERSION)),
        ]);
        Capabilities {
            made_of,
            kube: Value::Object(Arc::new(kube)),
            api_versions: Value::Object(Arc::new(VersionSet(api_versions))),
            helm: Value::Object(Arc::new(HelmVersion(helm))),
        }
    }

    pub fn kube_version(&self) -> &str {
        &self.made_of.version
    }

    pub fn made_of(&self) -> &CapabilitiesOf {
        &self.made_of
    }
}

/// What [`Capabilities`] are made of: the Kubernetes version's parts and the API versions.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CapabilitiesOf {
    pub version: String,
    pub major: String,
    pub minor: String,
    pub api_versions: Vec<String>,
}

impl From<CapabilitiesOf> for Capabilities {
    fn from(of: CapabilitiesOf) -> Capabilities {
        Capabilities::of(KubeVersion { version: of.version, major: of.major, minor: of.minor }, of.api_versions)
    }
}

impl Object for Capabilities {
    fn type_name(&self) -> &str {
        "*chartutil.Capabilities"
    }
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "KubeVersion" => Some(self.kube.clone()),
            "APIVersions" => Some(self.api_versions.clone()),
            "HelmVersion" => Some(self.helm.clone()),
            _ => None,
        }
    }
    fn underlying(&self) -> Option<Value> {
        Some(string_map(&[
            ("KubeVersion", self.kube.clone()),
            ("APIVersions", self.api_versions.clone()),
            ("HelmVersion", self.helm.clone()),
        ]))
    }
}

/// `.Capabilities.HelmVersion`: version.BuildInfo, fields by their Go names.
#[derive(Debug)]
struct HelmVersion(Value);

impl Object for HelmVersion {
    fn kind(&self) -> Option<&'static str> {
        Some("struct")
    }
    fn type_name(&self) -> &str {
        "version.BuildInfo"
    }
    fn field(&self, name: &str) -> Option<Value> {
        let Value::Map(map) = &self.0 else { return None };
        let key = match name {
            "Version" => "version",
            "GitCommit" => "git_commit",
            "GitTreeState" => "git_tree_state",
            "GoVersion" => "go_version",
            _ => return None,
        };
        map.get(key)
    }
    fn display(&self) -> String {
        let field = |n: &str| self.field(n).map(|v| v.to_go_string()).unwrap_or_default();
        format!("{{{} {} {} {}}}", field("Version"), field("GitCommit"), field("GitTreeState"), field("GoVersion"))
    }
    fn underlying(&self) -> Option<Value> {
        Some(self.0.clone())
    }
}

/// `.Chart`: chart.Metadata with `IsRoot`, fields by their Go names; its JSON form (toJson)
/// uses the YAML names, omitting empty ones.
#[derive(Debug)]
pub struct ChartMetadata {
    fields: BTreeMap<&'static str, Value>,
    json: Value,
}

impl ChartMetadata {
    pub fn new(md: &Metadata, name: &str, is_root: bool) -> ChartMetadata {
        let text = |s: &Option<String>| Value::from(s.clone().unwrap_or_default());
        let strings = |l: &[String]| Value::from(l.iter().map(|s| Value::from(s.as_str())).collect::<Vec<_>>());
        let maintainers = Value::from(
            md.maintainers
                .iter()
                .map(|m| {
                    string_map(&[
                        ("name", Value::from(m.name.as_str())),
                        ("email", text(&m.email)),
                        ("url", text(&m.url)),
                    ])
                })
                .collect::<Vec<_>>(),
        );
        let annotations =
            Value::Map(md.annotations.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect::<Map>());
        let dependencies = Value::from(
            md.dependencies
                .iter()
                .map(|d| {
                    string_map(&[
                        ("name", Value::from(d.name.as_str())),
                        ("version", Value::from(d.version.as_str())),
                        ("repository", Value::from(d.repository.as_str())),
                        ("condition", text(&d.condition)),
                        ("alias", text(&d.alias)),
                    ])
                })
                .collect::<Vec<_>>(),
        );
        let fields = BTreeMap::from([
            ("Name", Value::from(name)),
            ("Home", text(&md.home)),
            ("Sources", strings(&md.sources)),
            ("Version", Value::from(md.version.as_str())),
            ("Description", text(&md.description)),
            ("Keywords", strings(&md.keywords)),
            ("Maintainers", maintainers),
            ("Icon", text(&md.icon)),
            ("APIVersion", Value::from(md.api_version.as_str())),
            ("Condition", text(&md.condition)),
            ("Tags", text(&md.tags)),
            ("AppVersion", text(&md.app_version)),
            ("Deprecated", Value::Bool(md.deprecated)),
            ("Annotations", annotations),
            ("KubeVersion", text(&md.kube_version)),
            ("Dependencies", dependencies),
            ("Type", text(&md.chart_type)),
            ("IsRoot", Value::Bool(is_root)),
        ]);
        // encoding/json of the struct: `json:",omitempty"` names, in field order (sorted here).
        let json_names = [
            ("Name", "name"),
            ("Home", "home"),
            ("Sources", "sources"),
            ("Version", "version"),
            ("Description", "description"),
            ("Keywords", "keywords"),
            ("Maintainers", "maintainers"),
            ("Icon", "icon"),
            ("APIVersion", "apiVersion"),
            ("Condition", "condition"),
            ("Tags", "tags"),
            ("AppVersion", "appVersion"),
            ("Deprecated", "deprecated"),
            ("Annotations", "annotations"),
            ("KubeVersion", "kubeVersion"),
            ("Dependencies", "dependencies"),
            ("Type", "type"),
            ("IsRoot", "IsRoot"),
        ];
        let json: Map = json_names
            .iter()
            .filter(|(go, _)| *go == "IsRoot" || fields[go].is_true())
            .map(|(go, json)| (json.to_string(), fields[go].clone()))
            .collect();
        ChartMetadata { fields, json: Value::Map(json) }
    }
}

impl Object for ChartMetadata {
    fn kind(&self) -> Option<&'static str> {
        Some("struct")
    }
    fn type_name(&self) -> &str {
        "struct { chart.Metadata; IsRoot bool }"
    }
    fn field(&self, name: &str) -> Option<Value> {
        self.fields.get(name).cloned()
    }
    fn underlying(&self) -> Option<Value> {
        Some(self.json.clone())
    }
}
