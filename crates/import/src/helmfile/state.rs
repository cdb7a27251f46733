//! A state's own fields: repositories, environments, `helmDefaults`, the template arguments
//! (kube and API versions) and common labels.

use serde_json::{Map, Value};
use serde_saphyr::Spanned;
use weaver_core::error::Result;
use weaver_project::values::merge_overrides;

use super::super::node::{Node, line};
use super::{Convert, Missing, Offline, Shared, flag_reason, is_default};

impl Convert<'_> {
    /// A repository as weaver writes it; `Err` with its name when it is of a kind weaver cannot
    /// load (its releases are left out then), `Err(None)` when it is not one at all.
    pub(super) fn repository(&mut self, item: &Spanned<Node>) -> std::result::Result<(String, Value), Option<String>> {
        let mut name = None;
        let mut url = None;
        let mut oci = false;
        let mut plain_http = false;
        let at = line(item);
        let mut credentials = Vec::new();
        for (key, value) in self.entries(item, "repository") {
            match key.value.0.as_str() {
                "name" => name = self.text(value, "repository name"),
                "url" => url = Some(value),
                "oci" => oci = self.bool(value, "repository oci").unwrap_or(false),
                "plainHttp" => plain_http = self.bool(value, "repository plainHttp").unwrap_or(false),
                _ if is_default(&value.value) => {}
                other => credentials.push((line(key), other.to_string())),
            }
        }
        let Some(name) = name else {
            self.leave(at, "repository", "has no `name`");
            return Err(None);
        };
        for (at, key) in credentials {
            let upper: String =
                name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
            let why = match key.as_str() {
                "username" | "password" => format!(
                    "credentials come from the machine, never the repository: WEAVER_REPOSITORY_{upper}_USERNAME \
                     and _PASSWORD, the credentials file, or helm's and docker's registry logins"
                ),
                "caFile" => format!("give the CA on the machine: WEAVER_REPOSITORY_{upper}_CA_FILE"),
                "certFile" | "keyFile" => "not supported: weaver has no client certificates for repositories".into(),
                "passCredentials" => "not supported: credentials are sent only to the repository's host".into(),
                "skipTLSVerify" => "not supported: give the repository's CA instead".into(),
                _ => "not a repository key weaver knows: not converted".into(),
            };
            self.leave(at, format!("repository `{name}`: {key}"), why);
        }
        let Some(url) = url.and_then(|url| self.text(url, &format!("repository `{name}` url"))) else {
            self.leave(at, format!("repository `{name}`"), "has no `url`: its releases are left out");
            return Err(Some(name));
        };
        let url = if oci && !url.starts_with("oci://") {
            format!("oci://{}", url.split_once("://").map_or(url.as_str(), |(_, rest)| rest))
        } else {
            url.trim_end_matches('/').to_string()
        };
        // What weaver loads (`weaver_project::environment`): anything else would make every
        // command refuse the environment. The URL is not repeated: it may hold credentials.
        let scheme = ["https://", "http://", "oci://"].into_iter().find(|s| url.starts_with(s));
        if scheme.is_none_or(|s| url.len() == s.len()) || url.contains(['?', '#', '@']) {
            self.leave(
                at,
                format!("repository `{name}`"),
                "not a chart repository weaver can load (an https:// repository with an index.yaml or an oci:// \
                 registry, without credentials or a query in its URL; helm plugins' `git+https://`, `s3://`… are \
                 not): it and its releases are left out",
            );
            return Err(Some(name));
        }
        let mut repository = Map::new();
        repository.insert("name".into(), Value::String(name.clone()));
        repository.insert("url".into(), Value::String(url.clone()));
        if plain_http {
            if url.starts_with("oci://") {
                repository.insert("plainHttp".into(), Value::Bool(true));
            } else {
                self.leave(at, format!("repository `{name}`: plainHttp"), "weaver takes it for oci:// registries only");
            }
        }
        Ok((name, Value::Object(repository)))
    }

    /// The spec of the environment being loaded, `env`, applied to it: its values merged over
    /// the ones it has, its `kubeContext`.
    pub(super) fn environment(&mut self, spec: &Spanned<Node>, env: &mut super::load::EnvState) -> Result<()> {
        let what = format!("environment `{}`", env.name);
        let (mut values, mut written, mut files) = (Map::new(), Map::new(), Vec::new());
        let entries = self.entries(spec, &what);
        // helmfile's default for an environment's values files is `Error`.
        let missing = match entries.iter().find(|(key, _)| key.value.0 == "missingFileHandler") {
            Some((_, handler))
                if self.text(handler, &format!("{what} missingFileHandler")).is_some_and(|h| h != "Error") =>
            {
                Missing::Optional
            }
            _ => Missing::Refused,
        };
        for (key, value) in entries {
            match key.value.0.as_str() {
                "values" => self.environment_values(
                    value,
                    &format!("{what} values"),
                    (&mut values, &mut written),
                    Some(&mut files),
                    env,
                    missing,
                )?,
                "kubeContext" => {
                    if let Some(context) = self.text(value, &format!("{what} kubeContext")) {
                        env.context = Some(context);
                    }
                }
                "secrets" => {
                    for item in self.list(value, "secrets") {
                        if let Some(path) = self.text(item, &format!("{what} secrets file")) {
                            self.leave(
                                line(item),
                                format!("{what} secrets file `{path}`"),
                                "helmfile merges it into the environment's values; weaver's environment `secrets:` \
                                 reach templates as `secrets` and Helm charts under the release's name: list it in \
                                 the `valuesFiles` of the releases that use it (weaver decrypts SOPS files there)",
                            );
                        }
                    }
                }
                "mergeStrategy" if matches!(&value.value, Node::Scalar(Value::String(s)) if s == "override") => {}
                "missingFileHandler" | "missingFileHandlerConfig" => {}
                other if is_default(&value.value) => {
                    let _ = other;
                }
                other => self.leave(
                    line(key),
                    format!("{what}: {other}"),
                    if other == "mergeStrategy" {
                        "not supported: later values override earlier ones".to_string()
                    } else {
                        "not an environment key weaver knows: not converted".to_string()
                    },
                ),
            }
        }
        merge_overrides(&mut env.values, values);
        env.written.add(files, written);
        Ok(())
    }

    pub(super) fn helm_defaults(&mut self, node: &Spanned<Node>, shared: &mut Shared) {
        for (key, value) in self.entries(node, "helmDefaults") {
            match key.value.0.as_str() {
                "kubeContext" => shared.context = self.text(value, "helmDefaults kubeContext"),
                "createNamespace" => shared.create_namespace = self.bool(value, "helmDefaults createNamespace"),
                "templateArgs" => shared.template_args = self.template_args(value),
                _ if is_default(&value.value) => {}
                other => {
                    let why = flag_reason(other).unwrap_or("not a helmDefaults key weaver knows: not converted");
                    self.leave(line(key), format!("helmDefaults {other}"), why);
                }
            }
        }
    }

    /// `helmDefaults.templateArgs`: the flags helmfile adds to `helm template` (and to
    /// helm-diff's render), split into flags as helmfile splits them. `--api-versions` (`-a`)
    /// and `--kube-version` are what weaver's offline renders see; every other flag is listed,
    /// one line each.
    pub(super) fn template_args(&mut self, node: &Spanned<Node>) -> Offline {
        const WHAT: &str = "helmDefaults templateArgs";
        let mut words: Vec<(String, u64)> = Vec::new();
        for item in self.list(node, WHAT) {
            if let Some(text) = self.text(item, WHAT) {
                words.extend(text.split(' ').filter(|w| !w.is_empty()).map(|w| (w.to_string(), line(item))));
            }
        }
        let mut found = Offline::default();
        let mut words = words.into_iter().peekable();
        while let Some((word, at)) = words.next() {
            let (flag, attached) = match word.split_once('=') {
                Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
                // pflag's shorthand with its value attached: `-agateway.networking.k8s.io/v1`.
                None if word.len() > 2 && word.starts_with("-a") && !word.starts_with("--") => {
                    ("-a".to_string(), Some(word[2..].to_string()))
                }
                None => (word.clone(), None),
            };
            // helmfile takes the next word for a flag's value unless it is a flag itself.
            let next = match attached {
                Some(_) => None,
                None => words.next_if(|(next, _)| !next.starts_with('-')).map(|(next, _)| next),
            };
            let shown = next.as_ref().map_or_else(|| word.clone(), |next| format!("{word} {next}"));
            let value = attached.or(next);
            match (flag.as_str(), value) {
                ("--api-versions" | "-a", Some(value)) => {
                    let what = format!("{WHAT}: {flag}");
                    for entry in value.split(',') {
                        self.api_version(at, &what, entry, &mut found.api_versions);
                    }
                }
                ("--kube-version", Some(value)) if weaver_core::manifest::is_kube_version(&value) => {
                    found.kube_version = Some(value)
                }
                ("--kube-version", Some(_)) => self.leave(
                    at,
                    format!("{WHAT}: {shown}"),
                    "not a Kubernetes version (such as v1.32.0): not converted",
                ),
                (_, _) => {
                    let why = match flag.as_str() {
                        "--api-versions" | "-a" | "--kube-version" => "has no value: not converted",
                        _ => "not supported: weaver runs no helm binary",
                    };
                    self.leave(at, format!("{WHAT}: {shown}"), why);
                }
            }
        }
        found
    }

    /// A `kubeVersion` (the state's or a release's), when it is a Kubernetes version.
    pub(super) fn kube_version(&mut self, node: &Spanned<Node>, what: &str) -> Option<String> {
        let version = self.text(node, what)?;
        if weaver_core::manifest::is_kube_version(&version) {
            return Some(version);
        }
        self.leave(
            line(node),
            format!("{what}: `{version}`"),
            "not a Kubernetes version (such as v1.32.0): not converted",
        );
        None
    }

    /// An `apiVersions` list (the state's or a release's): its API versions, each that is not one
    /// listed.
    pub(super) fn api_versions(&mut self, node: &Spanned<Node>, what: &str) -> Vec<String> {
        let mut found = Vec::new();
        for item in self.list(node, what) {
            if let Some(entry) = self.text(item, what) {
                // helm's `--api-versions` splits its value at commas, as helmfile passes it.
                for entry in entry.split(',') {
                    self.api_version(line(item), what, entry, &mut found);
                }
            }
        }
        found
    }

    /// One API version of helm's `--api-versions`, into `found` unless it is not one (listed) or
    /// already there.
    pub(super) fn api_version(&mut self, at: u64, what: &str, entry: &str, found: &mut Vec<String>) {
        if !weaver_core::manifest::is_api_version(entry) {
            self.leave(
                at,
                format!("{what}: `{entry}`"),
                "not an API version (group/version or group/version/Kind, such as gateway.networking.k8s.io/v1): \
                 not converted",
            );
        } else if !found.iter().any(|v| v == entry) {
            found.push(entry.to_string());
        }
    }

    pub(super) fn labels(&mut self, node: &Spanned<Node>, what: &str) -> Option<Map<String, Value>> {
        let mut labels = Map::new();
        for (key, value) in self.entries(node, what) {
            if let Some(text) = self.text(value, &format!("{what} `{}`", key.value.0)) {
                labels.insert(key.value.0.clone(), Value::String(text));
            }
        }
        Some(labels)
    }
}
