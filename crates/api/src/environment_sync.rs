//! `weaver.example.com/v1beta1` EnvironmentSync, the storage version: the API types, with the
//! schema validation a real API server enforces. The book's GitOps guide gives the schema with
//! examples; `crate::v1alpha1` the older version served beside it and the conversion between them.

/// The kstatus conditions of `status.conditions`, as Kubernetes types them.
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::{self, typed_reasons};
use crate::open_enum::open_enum;

/// A DNS-1123 label (namespace and ServiceAccount names).
const DNS_LABEL: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// A DNS-1123 subdomain (Secret and EnvironmentSync names).
const DNS_SUBDOMAIN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A duration as Go and Flux write them: `30s`, `5m`, `1h30m`.
const DURATION: &str = "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$";

/// Asks for a reconcile now, whatever the interval: set it to any new value (a time, by
/// convention), as Flux's `reconcile.fluxcd.io/requestedAt`.
pub const RECONCILE_REQUESTED_AT: &str = "weaver.example.com/reconcile-requested-at";

/// Who approved the plan `spec.approvedPlan` names: set in the same write, to the writer's user
/// name (the chart's admission policy refuses any other), or by the controller's UI to its
/// signed-in user.
pub const APPROVED_BY: &str = "weaver.example.com/approved-by";

/// Asks for the deletion of a preview (`spec.previews`): `<this prefix><preview name>` set to
/// the commit the preview is at (`weaver previews delete`). The controller prunes it and keeps
/// it `Deleted` while its branch stays at that commit; a push makes it again. One annotation per
/// preview, so that two deletions asked at once never overwrite each other.
pub const PREVIEW_DELETE_PREFIX: &str = "preview-delete.weaver.example.com/";

/// The EnvironmentSync CRD's name.
pub const CRD_NAME: &str = "environmentsyncs.weaver.example.com";

/// A commit id as messages and `kubectl get` show it.
pub fn short(commit: &str) -> &str {
    // A status anyone may write could hold any text: never cut inside a character.
    commit.get(..12).unwrap_or(commit)
}

/// Applies environments of a git repository to the cluster, and keeps them applied.
// Each `printcolumn(...)` repeats `type_ = "string"`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "weaver.example.com",
    version = "v1beta1",
    kind = "EnvironmentSync",
    plural = "environmentsyncs",
    namespaced,
    shortname = "esync",
    // Never pruned by weaver (as Helm never deletes a chart's CRDs): a chart that drops it, or
    // `weaver uninstall`, would otherwise delete every resource of it with it.
    annotation("weaver.example.com/prune", "disabled"),
    status = "EnvironmentSyncStatus",
    doc = "Applies environments of a git repository with weaver's pipeline, as a ServiceAccount, and keeps them applied",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Revision", type_ = "string", json_path = ".status.lastAppliedRevision"),
    printcolumn(name = "Envs", type_ = "string", json_path = ".status.environmentsReady"),
    printcolumn(name = "Drift", type_ = "string", json_path = ".status.drift.summary"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentSyncSpec {
    /// Where the weaver repository comes from: a git repository and a revision of it (`url`,
    /// `ref`), or an OCI artifact `weaver push artifact` made (`oci`).
    pub source: Source,
    /// Environments to apply, by name or glob (`prod-*`); abstract environments never.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 253)))]
    pub environments: Vec<String>,
    /// Environments whose `labels` match this selector (the CLI's `--env-selector` syntax).
    /// With `environments` too, both must hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_selector: Option<String>,
    /// How often the source is fetched and the environments reconciled (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION))]
    pub interval: Option<String>,
    /// How soon a failed reconcile is tried again (default: `interval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION))]
    pub retry_interval: Option<String>,
    /// Bounds each environment's apply, its waiting included, and each fetch of the source
    /// (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION))]
    pub timeout: Option<String>,
    /// Nothing is fetched or applied while true; the status keeps what it said.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
    /// Delete what an environment's releases no longer render (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<bool>,
    /// Wait for what was applied to be ready before the reconcile counts as done.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wait: bool,
    /// Put back objects changed in the cluster on each interval (the CLI's `drift --correct`
    /// rules, ignore rules followed). False: drift is reported in the status, not corrected.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub correct_drift: bool,
    /// The ServiceAccount, in this namespace, every read and write of the apply is made as.
    /// Without one, the controller's `--default-service-account`; with neither, refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DNS_LABEL), length(min = 1, max = 63))]
    pub service_account_name: Option<String>,
    /// Where the age identities that decrypt the environments' secrets are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decryption: Option<Decryption>,
    /// EnvironmentSyncs that must be Ready first (at the same revision when they share the source).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<DependencyRef>,
    /// `Manual`: the plan is computed and summarised in the status, and applied only once
    /// `approvedPlan` equals its digest. `Automatic` (the default) applies at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// The digest of the pending plan approved for applying (`weaver sync approve`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_plan: Option<String>,
    /// Apply to another cluster, from a kubeconfig in a Secret of this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_config: Option<KubeConfigRef>,
    /// Auto-promotion: on its interval, the selected environments that have a `promotion:`
    /// take their source's pins as `weaver promote` takes them (the same gates), committed as
    /// `author` and pushed with `source.secretRef`'s credentials (the book's promotion guide).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<Pushing>,
    /// Image updates: on its interval, the selected environments that have `imageUpdates:`
    /// take the newest tags their policies allow, as `weaver images update` writes them, committed
    /// as `author` and pushed with `source.secretRef`'s credentials (the book's promotion guide,
    /// Image updates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_updates: Option<AutoImageUpdates>,
    /// When applies and approvals may happen, as Argo CD's sync windows: an active `deny`
    /// window holds them back (it wins over `allow`), and with `allow` windows given, so does
    /// the absence of an active one. A plan is still computed and shown while held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Window>,
    /// Let a git host ask for a reconcile at once: a push to `POST /hook/<namespace>/<name>`
    /// on the controller's `--webhook-addr`, signed with the Secret's token (the book's GitOps
    /// webhooks guide). Without it, that path answers 404.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
    /// Credentials for the remote charts' repositories and registries, as the CLI's
    /// credentials file gives them: a chart's repository URL takes the first entry whose `url`
    /// is a prefix of it, and an `oci://` registry that none names, the login of a docker config
    /// Secret listed without `url` (as Pods' imagePullSecrets). Read as the EnvironmentSync's
    /// account; sent only to the repository's own origin. Without them, charts are pulled
    /// anonymously.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chart_credentials: Vec<ChartCredentials>,
    /// Preview environments: one per branch of `spec.source`'s git repository whose name
    /// matches `branches` (or per open pull request of `forge` carrying `pullRequests.labels`),
    /// each the base `environment` rendered at the branch's head into a namespace of its own,
    /// updated on each push and pruned, namespace and all, when the branch (the request) goes
    /// (the book's previews guide). Git sources only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previews: Option<Previews>,
}

/// `spec.previews`: which branches (or pull requests) get a preview, of which environment,
/// where, how many, for how long, with which identities, and where their commit statuses go.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Previews {
    /// A glob over branch names (`preview/*`); a preview's name is the branch's name after the
    /// glob's fixed prefix. Required without `pullRequests`; with it, the glob the requests'
    /// head branches must match (any, when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub branches: Option<String>,
    /// The previews are the open pull requests (merge requests) of `forge` carrying every one
    /// of these labels, in place of the branches; preview `pr-<number>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_requests: Option<PullRequests>,
    /// The forge of the repository (GitHub, GitLab, Gitea): where `pullRequests` are listed,
    /// and where each preview's commit status is posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forge: Option<Forge>,
    /// Which previews are given `spec.decryption`'s identities: `None` (the default), `Branches`
    /// (the repository's own branches and pull requests from them) or `All` (forks' too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decryption: Option<PreviewDecryption>,
    /// The environment of the repository each preview renders, in the preview's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub environment: String,
    /// The preview's namespace, `{name}` standing for the preview's name (default
    /// `<this namespace>-{name}`); created by the controller as the account, and deleted with
    /// the preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
    /// At most this many previews (default 10); over it, the branches with the newest commits
    /// wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub max: Option<u32>,
    /// A preview whose branch's last commit is older than this is pruned (and none is made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION))]
    pub expire_after: Option<String>,
    /// The preview's URL in its status, `{name}` standing for the preview's name
    /// (`https://{name}.preview.example.org`); without it, the URL is that of the first
    /// Ingress the preview applied, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048), regex(pattern = "^https?://"))]
    pub url: Option<String>,
}

/// `spec.previews.pullRequests`: which open pull requests get a preview.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PullRequests {
    /// A request gets a preview when it carries every one of these labels.
    #[schemars(length(min = 1))]
    pub labels: Vec<String>,
}

/// `spec.previews.forge`: the repository's forge, its API and a token for it.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Forge {
    pub provider: ForgeProvider,
    /// The API's base URL: default `https://api.github.com` (GitHub) and
    /// `https://gitlab.com/api/v4` (GitLab); required for Gitea (`https://gitea.example.org/api/v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^https?://[^/?#]+"))]
    pub url: Option<String>,
    /// The repository on the forge: `owner/name` (GitLab: the project's path, `group/sub/name`).
    #[schemars(length(min = 3, max = 255), regex(pattern = "^[^/]+(/[^/]+)+$"))]
    pub repository: String,
    /// A Secret of this namespace with the forge's token under `token`.
    pub secret_ref: LocalObjectReference,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ForgeProvider {
    GitHub,
    GitLab,
    Gitea,
}

/// Which previews are given the EnvironmentSync's decryption identities.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum PreviewDecryption {
    /// None: a branch is anyone's who may push one.
    #[default]
    None,
    /// The repository's own branches, and pull requests whose head is one of them.
    Branches,
    /// Every preview, pull requests from forks too.
    All,
}

/// A Secret of credentials for the chart repositories and registries whose URL begins with `url`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChartCredentials {
    /// A prefix of the repositories' URLs, at a `/` (`https://charts.example.com`,
    /// `oci://registry.example.com/team`). Absent only for a docker config Secret, whose
    /// `auths` then name the registries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^(https?|oci)://[^/?#]+"))]
    pub url: Option<String>,
    /// A Secret of this namespace with `username` and `password`, or `bearerToken`, or
    /// `.dockerconfigjson` (`kubectl create secret docker-registry`); and optionally `ca.crt`
    /// (the repository's CA, PEM) and `tls.crt` with `tls.key` (a client certificate).
    pub secret_ref: LocalObjectReference,
}

/// A window of time in which applies and approvals are allowed or denied.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    pub kind: WindowKind,
    /// When the window opens: a cron schedule of 5 fields (minute hour day-of-month month
    /// day-of-week), read in `timeZone`.
    #[schemars(length(min = 1))]
    pub schedule: String,
    /// How long it stays open: `30m`, `8h`, `1h30m`.
    #[schemars(regex(pattern = DURATION))]
    pub duration: String,
    /// A zone of the tz database (`Europe/Berlin`); UTC by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WindowKind {
    Allow,
    Deny,
}

/// What holds an EnvironmentSync's apply back, as its last reconcile found.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowHold {
    /// `deny window "0 22 * * *" (Europe/Berlin, 8h)`, or `no allow window is open`.
    pub reason: String,
    /// When the windows next let it through, RFC 3339, UTC; absent when no opening was found
    /// ahead (within a year, over at most 20,000 windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// A git repository and a revision of it (`url` and `ref`), or an OCI artifact (`oci`):
/// exactly one of `url` and `oci`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("oneOf" = [{"required": ["url", "ref"]}, {"required": ["oci"]}]))]
pub struct Source {
    /// The git repository: `https://host/path` or `ssh://user@host/path` (`user@host:path` too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1), regex(pattern = "^(https://|http://|ssh://|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:)"))]
    pub url: Option<String>,
    /// With `url`, which revision: exactly one of `branch`, `tag`, `semver`, `commit`.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<GitReference>,
    /// An OCI artifact of the weaver repository, as `weaver push artifact` pushes it, in place
    /// of `url`: pulled with `spec.chartCredentials` (or anonymously), its files applied as a
    /// checkout of the commit it was packed from would be. `secretRef`, `caSecretRef` and
    /// `verify` are for git only (an artifact's signature is checked by `oci.verify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci: Option<OciSource>,
    /// A Secret of this namespace with `username` and `password`, or `bearerToken`, or (ssh)
    /// `identity` and `known_hosts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// A Secret of this namespace whose `ca.crt` is the certificate authority of an https server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<LocalObjectReference>,
    /// The weaver repository's directory in the git repository (`clusters/prod`, as `weaver
    /// bootstrap --path` writes): its `environments/` and `charts/` are read there, and nothing
    /// outside it. The top of the repository when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*$"))]
    pub path: Option<String>,
    /// Apply only commits that a trusted key signed (git's `gpgsig`, SSH or OpenPGP): one that is
    /// not is never applied, and `Ready` says `VerificationFailed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<SourceVerify>,
}

/// An OCI artifact: its repository, and a tag, a semver range of tags or a digest of it.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("oneOf" = [{"required": ["tag"]}, {"required": ["semver"]}, {"required": ["digest"]}]))]
pub struct OciSource {
    /// `oci://REGISTRY/REPOSITORY`.
    #[schemars(regex(pattern = "^oci://[^/?#@]+/[a-z0-9]"))]
    pub url: String,
    /// The tag, resolved to its digest at each reconcile (a push to it is applied at the next).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$"))]
    pub tag: Option<String>,
    /// The highest of the repository's tags in this range (`>=1.2.0 <2`, `~1.4`, helm's range
    /// syntax), chosen at each reconcile, as Flux's `ref.semver`: tags that are no version
    /// (`latest`, cosign's `sha256-….sig`) are left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub semver: Option<String>,
    /// A manifest digest, `sha256:` and 64 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^sha256:[0-9a-f]{64}$"))]
    pub digest: Option<String>,
    /// Plain http, not https (a registry on a private network), as Flux's `insecure`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// Apply only a manifest a trusted key signed, as Flux's OCIRepository `verify`: one that
    /// is not is never read, and `Ready` says `VerificationFailed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<OciVerify>,
}

/// How an OCI artifact's signature is checked.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OciVerify {
    /// Who made the signature: `cosign` (a key pair's, `cosign sign --key`), the only one.
    #[serde(default)]
    #[schemars(extend("default" = "cosign"))]
    pub provider: VerifyProvider,
    /// A Secret of this namespace whose every value named `*.pub` is a cosign public key (PEM,
    /// as `cosign generate-key-pair` writes `cosign.pub`): the manifest's digest must carry a
    /// signature (the tag `sha256-HEX.sig`) one of them holds for.
    pub secret_ref: LocalObjectReference,
}

open_enum!(
    /// The signatures `spec.source.oci.verify` checks.
    #[derive(Default)]
    pub VerifyProvider {
        #[default]
        Cosign => "cosign",
    }
);

impl Source {
    /// Where the source is, as the status and `sync get` show it: the git URL, or the
    /// artifact's `oci://` URL.
    pub fn location(&self) -> &str {
        match (&self.oci, &self.url) {
            (Some(oci), _) => &oci.url,
            (None, url) => url.as_deref().unwrap_or_default(),
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceVerify {
    /// `head` (the default): the fetched commit. `all`: every commit since the last applied
    /// one too (the first reconcile checks the fetched commit alone), so that a signed merge
    /// cannot carry an unsigned commit in.
    #[serde(default)]
    pub mode: VerifyMode,
    /// A Secret of this namespace whose every value is a trust list: an `allowed_signers` file
    /// (git's `gpg.ssh.allowedSignersFile`) or armored OpenPGP public keys (`gpg --armor
    /// --export`).
    pub secret_ref: LocalObjectReference,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VerifyMode {
    #[default]
    Head,
    All,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SigningKeyRef {
    /// A Secret of this namespace whose `signingKey` is an OpenSSH private key (git's
    /// `gpg.format=ssh`) or an armored OpenPGP secret key, without a passphrase.
    pub secret_ref: LocalObjectReference,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("oneOf" = [
    {"required": ["branch"]}, {"required": ["tag"]}, {"required": ["semver"]}, {"required": ["commit"]}
]))]
pub struct GitReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub tag: Option<String>,
    /// The highest tag in this range (`>=1.2.0 <2`, `~1.4`), helm's range syntax.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub semver: Option<String>,
    /// A full commit id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[0-9a-f]{40}$"))]
    pub commit: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct LocalObjectReference {
    #[schemars(regex(pattern = DNS_SUBDOMAIN), length(min = 1, max = 253))]
    pub name: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decryption {
    /// A Secret of this namespace whose every value holds age identities, one a line, as an age
    /// identity file does (the output of `age-keygen`).
    pub secret_ref: LocalObjectReference,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct DependencyRef {
    #[schemars(regex(pattern = DNS_SUBDOMAIN), length(min = 1, max = 253))]
    pub name: String,
    /// Another namespace's, where the controller allows it (`--allow-cross-namespace-refs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DNS_LABEL), length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum Approval {
    #[default]
    Automatic,
    Manual,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeConfigRef {
    /// A Secret of this namespace holding a kubeconfig under `value` (or `value.yaml`), as
    /// Flux's `kubeConfig.secretRef`.
    pub secret_ref: LocalObjectReference,
}

/// A run that writes pins and pushes them, on its interval: `spec.promotion`, and
/// `spec.imageUpdates` beside its pull secrets.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pushing {
    /// How often it runs (default 10m for a promotion, which judges the gates, and 5m for image
    /// updates, which ask the registries); a reconcile that is due runs it after its apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION))]
    pub interval: Option<String>,
    /// Where the commit goes; without it, to the branch `source.ref.branch` tracks, which
    /// the next reconcile applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PromotionPush>,
    /// Who the commits are by (author and committer).
    pub author: GitAuthor,
    /// The key its commits are signed with; required when `spec.source.verify` is set, so that
    /// what the controller pushes passes the verification of whoever reads it next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<SigningKeyRef>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoImageUpdates {
    #[serde(flatten)]
    pub pushing: Pushing,
    /// Secrets of this namespace (`kubernetes.io/dockerconfigjson`, as Pods' imagePullSecrets)
    /// holding the registries' credentials, read as the EnvironmentSync's account; without
    /// them, registries are asked anonymously.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pull_secrets: Vec<LocalObjectReference>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromotionPush {
    /// A branch of its own (`weaver/promote-prod`), to open a pull request from: each
    /// promotion replaces what it holds (a force push). The tracked branch itself is only
    /// fast-forwarded.
    #[schemars(length(min = 1, max = 255))]
    pub branch: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct GitAuthor {
    #[schemars(length(min = 1))]
    pub name: String,
    #[schemars(length(min = 3), regex(pattern = "^[^<>\\s]+@[^<>\\s]+$"))]
    pub email: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// A Secret of this namespace whose `token` is the webhook's secret: the key of GitHub's
    /// `X-Hub-Signature-256`, or GitLab's `X-Gitlab-Token` itself.
    pub secret_ref: LocalObjectReference,
}

/// What the controller last observed and did, following kstatus: conditions `Ready`,
/// `Reconciling`, `Stalled`, and `observedGeneration`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentSyncStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        schema_with = "crate::conditions::condition_list_schema",
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"])
    )]
    pub conditions: Vec<Condition>,
    /// The commit the last reconcile fetched and tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<String>,
    /// The commit every selected environment was last applied at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,
    /// The `metadata.generation` of the spec it was applied with: a spec changed since (an
    /// account, a kubeConfig, prune) is applied again, whatever the outcome of the reconciles
    /// in between.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_generation: Option<i64>,
    /// The last `weaver.example.com/reconcile-requested-at` annotation value handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// The plan waiting for approval (`approval: Manual`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_plan: Option<PendingPlan>,
    /// The window that held the last reconcile's apply back (`spec.windows`), and until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<WindowHold>,
    /// What drifted in the cluster at the last reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftSummary>,
    /// One entry per selected environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub environments: Vec<EnvironmentStatus>,
    /// `ready/selected`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environments_ready: Option<String>,
    /// The last 5 reconciles that fetched a revision, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// The last auto-promotion (`spec.promotion`): its gates, what it pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<PromotionStatus>,
    /// The last image update (`spec.imageUpdates`): what the registries held, what it pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_updates: Option<ImageUpdatesStatus>,
    /// The OCI artifact (`spec.source.oci`) the last reconcile that got past its pull took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<ArtifactStatus>,
    /// One entry per preview (`spec.previews`), sorted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub previews: Vec<PreviewStatus>,
}

/// A preview (`spec.previews`) as the last reconcile left it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewStatus {
    pub name: String,
    /// The branch; of a pull request, its head branch (in a fork's repository, for a fork).
    pub branch: String,
    /// The pull request's number (`spec.previews.pullRequests`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<u64>,
    /// The branch's head commit: the one applied when Ready.
    pub commit: String,
    pub namespace: String,
    /// The environment name it is applied under (`<spec.previews.environment>--<name>`), which
    /// its release records, labels and `weaver history --env` carry; what prunes it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub environment: String,
    pub state: PreviewState,
    /// The last commit applied (Ready at it); absent until the first apply succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_commit: Option<String>,
    /// Where the preview is reached: `spec.previews.url` with its name, else the first Ingress
    /// it applied (`https://` when its host is in the Ingress's `tls`); absent when neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The commit status last posted on `commit` (`spec.previews.forge`): `pending`, `success`
    /// or `failure`; one is posted only when this, or the commit, changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_status: Option<String>,
}

open_enum!(
    /// What became of a preview at the last reconcile.
    #[derive(Default)]
    pub PreviewState {
        /// Applied at its commit.
        Ready => "Ready",
        /// Its namespace, render or apply failed: the message says why.
        Failed => "Failed",
        /// Not made: over `spec.previews.max`.
        #[default]
        Waiting => "Waiting",
        /// Pruned at its commit on request (`weaver previews delete`): made again when its branch
        /// moves, dropped when its branch goes.
        Deleted => "Deleted",
    }
);

/// An OCI artifact pulled: the tag it was found at, its digest, and who signed it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactStatus {
    /// The tag given, or the one `semver` chose; absent for a digest given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The manifest's digest, `sha256:…`: the revision applied.
    pub digest: String,
    /// With `verify`: the key that signed it (`keys/cosign.pub (ECDSA P-256 key SHA256:…)`,
    /// the Secret and its key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageUpdatesStatus {
    /// When the registries were last asked, at which commit, and what was pushed.
    #[serde(flatten)]
    pub push: PushStatus,
    /// Per environment and image, the newest tag its policy allows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<NewestImage>,
    /// The pins the last push changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ImagePinChange>,
    /// Requests sent to registries by the last update.
    #[serde(default)]
    pub requests: u64,
}

/// An image of an environment and the newest tag its policy allows.
// Read from `v1alpha1`'s sentence too: until a controller has set the CRD's conversion webhook,
// the API server serves an object stored at `v1alpha1` with its apiVersion changed alone.
#[derive(Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewestImage {
    pub environment: String,
    /// `registry.example/web`.
    pub image: String,
    /// `1.5.0@sha256:…`; absent when the policy allows none of the registry's tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<String>,
    /// With the subscription's `verify`: who signed `newest` (`keys/cosign.pub (ECDSA P-256 key
    /// SHA256:…)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    /// With `verify`: the newer tags whose signatures did not pass, and why
    /// (`1 not signed (no cosign signature, sha256-DIGEST.sig) (1.6.0)`; reasons joined by `; `).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed_over: Option<String>,
    /// With `verify`: why `newest`, ranking below a pin, was not pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_back: Option<String>,
}

/// A pin an image update changed.
// Read from `v1alpha1`'s sentence too, as `NewestImage`.
#[derive(Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImagePinChange {
    pub environment: String,
    pub release: String,
    /// The subscription's name: the image as the environment's `imageUpdates:` names it.
    pub image: String,
    /// The pin before; absent when it was unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub to: String,
}

/// `dev registry.example/web 1.5.0@sha256:…`, or `… none allowed`, then with `verify` each of
/// ` — signed by …`, ` — passed over: …`, ` — held back: …` it has: how `weaver sync get` and
/// the UI say it, and what `v1alpha1` stores.
impl std::fmt::Display for NewestImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let newest = self.newest.as_deref().unwrap_or(NONE_ALLOWED);
        write!(f, "{} {} {newest}", self.environment, self.image)?;
        for (label, value) in self.verification() {
            if let Some(value) = value {
                write!(f, "{EXTRA}{label}{value}")?;
            }
        }
        Ok(())
    }
}

/// What parts a [`NewestImage`]'s sentence after its newest tag.
const EXTRA: &str = " — ";

/// `dev: web registry.example/web 1.4.2@… -> 1.5.0@…` (`unset` for no pin before).
impl std::fmt::Display for ImagePinChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let from = self.from.as_deref().unwrap_or(UNSET);
        write!(f, "{}: {} {} {from} -> {}", self.environment, self.release, self.image, self.to)
    }
}

impl NewestImage {
    /// The verification's parts, each with how its sentence labels it ([`NewestImage::from_sentence`]
    /// reads the same labels).
    fn verification(&self) -> [(&'static str, &Option<String>); 3] {
        [("signed by ", &self.signed_by), ("passed over: ", &self.passed_over), ("held back: ", &self.held_back)]
    }

    /// Read from its sentence ([`Display`](std::fmt::Display)), as far as it follows that form.
    pub fn from_sentence(text: &str) -> NewestImage {
        let mut parts = text.split(EXTRA);
        let head = parts.next().unwrap_or_default();
        let (environment, rest) = head.split_once(' ').unwrap_or((head, ""));
        let (image, newest) = rest.split_once(' ').unwrap_or((rest, NONE_ALLOWED));
        let mut image = NewestImage {
            environment: environment.to_string(),
            image: image.to_string(),
            newest: (newest != NONE_ALLOWED).then(|| newest.to_string()),
            ..NewestImage::default()
        };
        for part in parts {
            let fields = [
                ("signed by ", &mut image.signed_by),
                ("passed over: ", &mut image.passed_over),
                ("held back: ", &mut image.held_back),
            ];
            for (label, field) in fields {
                if let Some(value) = part.strip_prefix(label) {
                    *field = Some(value.to_string());
                }
            }
        }
        image
    }
}

impl ImagePinChange {
    /// Read from its sentence ([`Display`](std::fmt::Display)), as far as it follows that form.
    pub fn from_sentence(text: &str) -> ImagePinChange {
        let (environment, rest) = text.split_once(": ").unwrap_or((text, ""));
        let (release, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let (image, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let (from, to) = rest.split_once(" -> ").unwrap_or((UNSET, rest));
        ImagePinChange {
            environment: environment.to_string(),
            release: release.to_string(),
            image: image.to_string(),
            from: (from != UNSET).then(|| from.to_string()),
            to: to.to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for NewestImage {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<NewestImage, D::Error> {
        Ok(match SentenceOr::deserialize(deserializer)? {
            SentenceOr::Sentence(text) => NewestImage::from_sentence(&text),
            SentenceOr::Object(o) => NewestImage {
                environment: o.text("environment"),
                image: o.text("image"),
                newest: o.get("newest"),
                signed_by: o.get("signedBy"),
                passed_over: o.get("passedOver"),
                held_back: o.get("heldBack"),
            },
        })
    }
}

impl<'de> Deserialize<'de> for ImagePinChange {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<ImagePinChange, D::Error> {
        Ok(match SentenceOr::deserialize(deserializer)? {
            SentenceOr::Sentence(text) => ImagePinChange::from_sentence(&text),
            SentenceOr::Object(o) => ImagePinChange {
                environment: o.text("environment"),
                release: o.text("release"),
                image: o.text("image"),
                from: o.get("from"),
                to: o.text("to"),
            },
        })
    }
}

/// A status item as `v1alpha1` stored it (a sentence) or as `v1beta1` does (an object).
#[derive(Deserialize)]
#[serde(untagged)]
enum SentenceOr {
    Sentence(String),
    Object(Fields),
}

#[derive(Deserialize)]
struct Fields(std::collections::BTreeMap<String, Option<String>>);

impl Fields {
    fn get(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned().flatten()
    }

    fn text(&self, key: &str) -> String {
        self.get(key).unwrap_or_default()
    }
}

/// What a sentence says of an image whose policy allows none of its tags.
pub(crate) const NONE_ALLOWED: &str = "none allowed";
/// What a sentence says of a pin that was not set.
pub(crate) const UNSET: &str = "unset";

/// What the two runs that write pins on a branch (the auto-promotion, the image update) keep of
/// their last attempt and push: the same fields, flattened into each one's status.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushStatus {
    /// When the run last ran (the gates judged, the registries asked), RFC 3339, UTC.
    pub last_attempt_time: String,
    /// The commit it ran at: the parent of what it pushes.
    pub revision: String,
    /// The branch pushed to.
    pub branch: String,
    /// The last commit pushed, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pushed_commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_push_time: Option<String>,
}

impl AsMut<PushStatus> for PromotionStatus {
    fn as_mut(&mut self) -> &mut PushStatus {
        &mut self.push
    }
}

impl AsMut<PushStatus> for ImageUpdatesStatus {
    fn as_mut(&mut self) -> &mut PushStatus {
        &mut self.push
    }
}

impl PushStatus {
    /// `commit` pushed now, at the run's attempt time.
    pub fn record(&mut self, commit: &str) {
        self.last_pushed_commit = Some(commit.to_string());
        self.last_push_time = Some(self.last_attempt_time.clone());
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromotionStatus {
    /// When the gates were last judged, at which commit, and what was pushed.
    #[serde(flatten)]
    pub push: PushStatus,
    /// One entry per target environment; empty when none was judged (an error). Always
    /// written: the status is a merge patch, which would keep the last run's otherwise.
    #[serde(default)]
    pub targets: Vec<PromotionTarget>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromotionTarget {
    pub environment: String,
    pub from: String,
    /// Every gate passed.
    pub passed: bool,
    pub gates: Vec<PromotionGate>,
    /// The pins that change (`web values image.tag: 1.0.0 -> 1.1.0`); none when the target
    /// has what its source applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
}

impl PromotionStatus {
    /// Each target's pin changes, prefixed with the target (`prod: web values image.tag: …`):
    /// the `Promoted` condition's message and the UI say them so.
    pub fn changes(&self) -> Vec<String> {
        self.targets.iter().flat_map(|t| t.changes.iter().map(move |c| format!("{}: {c}", t.environment))).collect()
    }
}

impl PromotionTarget {
    /// `gates passed`, or `failed: soak, signed`: what `weaver sync get` and the UI say of it.
    pub fn verdict(&self) -> String {
        if self.passed {
            return "gates passed".to_string();
        }
        let failed: Vec<&str> = self.gates.iter().filter(|g| !g.passed).map(|g| g.gate.as_str()).collect();
        match failed.is_empty() {
            true => "failed".to_string(),
            false => format!("failed: {}", failed.join(", ")),
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromotionGate {
    pub gate: Gate,
    pub passed: bool,
    /// A check's CEL expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    pub evidence: Vec<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingPlan {
    /// `sha256:…` of the revision and every change of the plan: what `approvedPlan` must equal.
    pub digest: String,
    pub revision: String,
    /// Changes per release; releases without changes are left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub releases: Vec<ReleaseChanges>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseChanges {
    pub environment: String,
    pub release: String,
    pub create: u32,
    pub update: u32,
    pub delete: u32,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftSummary {
    pub drifted: u32,
    pub missing: u32,
    /// `none`, or `2 drifted, 1 missing`, for `kubectl get`.
    pub summary: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentStatus {
    pub name: String,
    /// The commit this environment was last applied at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    pub result: EnvironmentResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default)]
    pub created: u32,
    #[serde(default)]
    pub configured: u32,
    #[serde(default)]
    pub unchanged: u32,
    #[serde(default)]
    pub pruned: u32,
    #[serde(default)]
    pub failed: u32,
    /// Objects that drifted from, and are missing of, the last applied revision, at the last
    /// look.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub drifted: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub missing: u32,
}

open_enum!(
    /// An environment's outcome at the last reconcile.
    #[derive(Default)]
    pub EnvironmentResult {
        /// Applied at the revision; something changed.
        Applied => "Applied",
        /// Applied at the revision; nothing needed a write.
        Unchanged => "Unchanged",
        Failed => "Failed",
        /// Its plan waits for approval (`approval: Manual`).
        AwaitingApproval => "AwaitingApproval",
        /// Not applied yet: another environment's plan failed.
        #[default]
        Pending => "Pending",
        /// Not applied: an environment it comes after failed.
        Skipped => "Skipped",
    }
);

impl EnvironmentResult {
    /// It leaves the environment applied at its revision.
    pub fn is_applied(&self) -> bool {
        matches!(self, EnvironmentResult::Applied | EnvironmentResult::Unchanged)
    }
}

open_enum!(
    /// A promotion gate (the book's promotion guide).
    #[derive(Default)]
    pub Gate {
        Healthy => "healthy",
        Soak => "soak",
        NoDrift => "no-drift",
        Signed => "signed",
        #[default]
        Check => "check",
    }
);

open_enum!(
    /// The Ready condition's reasons, as a reconcile's history records them.
    pub Reason {
        ReconciliationSucceeded => "ReconciliationSucceeded",
        AwaitingApproval => "AwaitingApproval",
        ApplyFailed => "ApplyFailed",
        RenderFailed => "RenderFailed",
        DriftDetected => "DriftDetected",
        DriftCorrected => "DriftCorrected",
        GitFetchFailed => "GitFetchFailed",
        GitUnreachable => "GitUnreachable",
        GitAuthenticationFailed => "GitAuthenticationFailed",
        GitHostKeyMismatch => "GitHostKeyMismatch",
        GitRefNotFound => "GitRefNotFound",
        GitFetchTooLarge => "GitFetchTooLarge",
        GitFetchTimedOut => "GitFetchTimedOut",
        GitPushRejected => "GitPushRejected",
        /// `spec.source.oci`: the registry could not be reached, refused the credentials, or
        /// answered an error, or the pull took longer than `spec.timeout`.
        ArtifactPullFailed => "ArtifactPullFailed",
        /// `spec.source.oci`: the registry has no such tag or digest.
        ArtifactNotFound => "ArtifactNotFound",
        /// `spec.source.oci`: the artifact is over the bound on bytes or files.
        ArtifactTooLarge => "ArtifactTooLarge",
        /// `spec.source.oci`: not a weaver repository's artifact, or its tar has an entry that
        /// is not a plain file or directory inside it.
        ArtifactInvalid => "ArtifactInvalid",
        /// The fetched commit (or, with `spec.source.verify.mode: all`, one since the last
        /// applied) is not signed by a key of the trust list; or the OCI artifact's manifest
        /// carries no cosign signature of a key of `spec.source.oci.verify`.
        VerificationFailed => "VerificationFailed",
        InvalidSpec => "InvalidSpec",
        InvalidReference => "InvalidReference",
        InvalidSourceUrl => "InvalidSourceUrl",
        InvalidWindows => "InvalidWindows",
        WindowClosed => "WindowClosed",
        ServiceAccountRequired => "ServiceAccountRequired",
        ServiceAccountNotFound => "ServiceAccountNotFound",
        TokenRequestFailed => "TokenRequestFailed",
        SecretNotFound => "SecretNotFound",
        SecretUnreadable => "SecretUnreadable",
        SecretInvalid => "SecretInvalid",
        KubeConfigInvalid => "KubeConfigInvalid",
        Forbidden => "Forbidden",
        DependencyNotReady => "DependencyNotReady",
        DependencyCycle => "DependencyCycle",
        CrossNamespaceReference => "CrossNamespaceReference",
        EnvironmentSelectionFailed => "EnvironmentSelectionFailed",
        EnvironmentOrderInvalid => "EnvironmentOrderInvalid",
        NoEnvironments => "NoEnvironments",
        Suspended => "Suspended",
        Progressing => "Progressing",
        ProgressingWithRetry => "ProgressingWithRetry",
    }
);

impl Default for Reason {
    fn default() -> Reason {
        Reason::Other(String::new())
    }
}

open_enum!(
    /// What an auto-promotion or an image update came to, as the reason of its condition
    /// (`Promoted`, `ImagesUpdated`) says it, when it is not a failure the Ready condition
    /// names too ([`PushReason::Failed`]).
    pub PushOutcome {
        /// The promotion's commit was pushed.
        Promoted => "Promoted",
        /// The image update's commit was pushed.
        ImagesUpdated => "ImagesUpdated",
        /// Nothing new to push.
        UpToDate => "UpToDate",
        /// A promotion gate failed: nothing was pushed.
        GatesFailed => "GatesFailed",
        PromotionFailed => "PromotionFailed",
        NoPromotionTargets => "NoPromotionTargets",
        ImageUpdateFailed => "ImageUpdateFailed",
        NoImageUpdates => "NoImageUpdates",
        /// The push stopped before it could say how it went.
        GitPushFailed => "GitPushFailed",
    }
);

/// The reason of the `Promoted` and `ImagesUpdated` conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushReason {
    /// The run's own.
    Outcome(PushOutcome),
    /// A push's or a pull Secret's failure, named as the Ready condition names it.
    Failed(Reason),
}

impl PushReason {
    /// As the condition's reason is written.
    pub fn as_str(&self) -> &str {
        match self {
            PushReason::Outcome(outcome) => outcome.as_str(),
            PushReason::Failed(reason) => reason.as_str(),
        }
    }
}

impl From<PushOutcome> for PushReason {
    fn from(outcome: PushOutcome) -> PushReason {
        PushReason::Outcome(outcome)
    }
}

impl From<Reason> for PushReason {
    fn from(reason: Reason) -> PushReason {
        PushReason::Failed(reason)
    }
}

/// The reasons of an EnvironmentSync's Events that tell of no condition (the others give the
/// reason of the condition they tell of: [`Reason`], [`PushReason`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventReason {
    /// The approved plan (`approval: Manual`) was applied.
    Approved,
    /// A preview (`spec.previews`) was applied for the first time.
    PreviewCreated,
    /// A preview's branch went or expired: its objects, records and namespace were deleted.
    PreviewPruned,
}

impl EventReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            EventReason::Approved => "Approved",
            EventReason::PreviewCreated => "PreviewCreated",
            EventReason::PreviewPruned => "PreviewPruned",
        }
    }
}

typed_reasons!(Reason, PushOutcome, PushReason, EventReason);

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub revision: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// The Ready condition's reason after it.
    pub result: Reason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub duration_seconds: f64,
    /// The approved plan this reconcile applied (`approval: Manual`), who approved it (the
    /// `weaver.example.com/approved-by` annotation) and when (the API server's time of the
    /// write that set `spec.approvedPlan`, from its managed fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRecord>,
    /// With `spec.source.oci.verify`: who signed the revision, as `status.artifact.signedBy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRecord {
    pub digest: String,
    /// Empty when the write named no approver (no admission policy asked for one).
    pub approved_by: String,
    /// RFC 3339, UTC; absent when the server recorded no time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
}

/// Which kind of revision a [`GitReference`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Branch,
    Tag,
    Semver,
    Commit,
}

impl GitReference {
    /// The one revision named, or what is wrong with the choice.
    pub fn one(&self) -> Result<(RefKind, &str), String> {
        let given: Vec<(RefKind, &str)> = [
            (RefKind::Branch, &self.branch),
            (RefKind::Tag, &self.tag),
            (RefKind::Semver, &self.semver),
            (RefKind::Commit, &self.commit),
        ]
        .into_iter()
        .filter_map(|(kind, value)| Some((kind, value.as_deref()?)))
        .collect();
        match given.as_slice() {
            [one] => Ok(*one),
            [] => Err("spec.source.ref names no revision: give one of branch, tag, semver, commit".into()),
            _ => Err("spec.source.ref names several revisions: give only one of branch, tag, semver, commit".into()),
        }
    }
}

/// The state `sync get` shows of an EnvironmentSync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The Ready condition's status: `True`, `False` or `Unknown` (also without one).
    pub ready: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub reconciling: bool,
    pub stalled: bool,
    /// The controller has seen the object's generation.
    pub observed: bool,
    /// Ready is True, at the object's generation: what exit code 0 means.
    pub up_to_date: bool,
}

/// Its kstatus state, read from its conditions and generations.
pub fn state(sync: &EnvironmentSync) -> State {
    let status = sync.status.as_ref();
    let condition = |type_: &str| status.and_then(|s| s.conditions.iter().find(|c| c.type_ == type_));
    let ready = condition(conditions::READY);
    let is_true = |type_: &str| condition(type_).is_some_and(|c| c.status == "True");
    let observed = status.and_then(|s| s.observed_generation).is_some()
        && status.and_then(|s| s.observed_generation) == sync.metadata.generation;
    let ready_status = ready.map_or_else(|| "Unknown".to_string(), |c| c.status.clone());
    State {
        up_to_date: observed && ready_status == "True",
        ready: ready_status,
        reason: ready.map(|c| c.reason.clone()).filter(|r| !r.is_empty()),
        message: ready.map(|c| c.message.clone()).filter(|m| !m.is_empty()),
        reconciling: is_true(conditions::RECONCILING),
        stalled: is_true(conditions::STALLED),
        observed,
    }
}
