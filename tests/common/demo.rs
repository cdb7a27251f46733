//! The demo repository with its dev environment pointed at a namespace of the test cluster.

use serde_json::Value;

use super::cluster::TestCluster;
use super::{Repo, Run};

/// The age recipient of the demo's key (`secrets/dev.agekey`): what encrypts to it, the demo
/// decrypts with no set-up.
pub const DEMO_RECIPIENT: &str = "age1x3tz69kdh3y6tlqccymajnzrxfqnz352azev25z805fqv55qdu7sxhepq0";

/// The demo repository, deployed (or not yet) into a namespace of the test cluster.
pub struct Demo {
    pub cluster: TestCluster,
    pub repo: Repo,
    pub ns: String,
    /// Held while it lives: weaver's CRDs, shared with the other demos on a real cluster.
    _crds: Option<super::cluster::WeaverCrds>,
}

impl Demo {
    pub fn new() -> Demo {
        let cluster = TestCluster::start();
        let ns = cluster.namespace("shop");
        Demo::with_releases(cluster, ns, false)
    }

    /// The demo pointed at a namespace that does not exist yet (deleted with the test).
    pub fn with_new_namespace() -> Demo {
        let cluster = TestCluster::start();
        let ns = format!("{}-shop", cluster.prefix);
        cluster.delete_later(&serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
        Demo::with_releases(cluster, ns, false)
    }

    /// The whole demo, the operator and its two tenants included, in namespaces of this test
    /// (`<prefix>-shop`, `<prefix>-weaver-system`, the ConfigMapSync's targets
    /// `<prefix>-shop-reports` and `<prefix>-shop-jobs`, and staging's `<prefix>-staging`, which
    /// the EnvironmentSync applies), all deleted with the test; staging locks where dev does.
    /// The ConfigMapSync and the EnvironmentSync carry the label `weaver-test=<prefix>`, so an
    /// operator of this test can watch only them. The CRDs are shared by every test on a real
    /// cluster and stay.
    pub fn with_operator() -> Demo {
        Demo::with_operator_on(TestCluster::start())
    }

    /// [`Demo::with_operator`] on `cluster` (the e2e suite's).
    pub fn with_operator_on(cluster: TestCluster) -> Demo {
        let ns = format!("{}-shop", cluster.prefix);
        let operator_ns = format!("{}-weaver-system", cluster.prefix);
        let staging_ns = format!("{}-staging", cluster.prefix);
        for name in [&ns, &operator_ns, &format!("{ns}-reports"), &format!("{ns}-jobs"), &staging_ns] {
            cluster.delete_later(
                &serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
            );
        }
        for role in [format!("{operator_ns}-weaver"), format!("{ns}-staging-sync")] {
            for kind in ["ClusterRole", "ClusterRoleBinding"] {
                cluster.delete_later(&serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
                    "metadata": {"name": role}}));
            }
        }
        let approvals = format!("{operator_ns}-weaver-approvals");
        for kind in ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"] {
            cluster.delete_later(&serde_json::json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
                "metadata": {"name": approvals}}));
        }
        let demo = Demo::with_releases(cluster, ns.clone(), true);
        demo.edit("environments/dev.yaml", "namespace: weaver-system", &format!("namespace: {operator_ns}"));
        // The approvals policy holds the demo's namespace, as it holds shop-dev.
        demo.edit(
            "environments/dev.yaml",
            "kubernetes.io/metadata.name: shop-dev",
            &format!("kubernetes.io/metadata.name: {ns}"),
        );
        let lock_namespace = demo.lock_namespace();
        demo.edit(
            "environments/staging.yaml",
            "namespace: shop-staging",
            &format!("namespace: {staging_ns}\ncluster:\n  lockNamespace: {lock_namespace}"),
        );
        demo.edit(
            "charts/environment-sync/values.yaml",
            "namespace: shop-staging",
            &format!("namespace: {staging_ns}"),
        );
        demo.edit(
            "charts/environment-sync/values.yaml",
            "lockNamespace: kube-system",
            &format!("lockNamespace: {lock_namespace}"),
        );
        let prefix = demo.cluster.prefix.clone();
        for template in
            ["settings-sync/templates/configmapsync.yaml", "environment-sync/templates/environmentsync.yaml"]
        {
            demo.edit(
                &format!("charts/{template}"),
                "metadata:\n",
                &format!("metadata:\n  labels:\n    weaver-test: {prefix}\n"),
            );
        }
        demo
    }

    /// `operator: false` leaves out the operator's and its tenant's releases
    /// ([`Repo::demo_without_operator`]).
    fn with_releases(cluster: TestCluster, ns: String, operator: bool) -> Demo {
        let repo = if operator { Repo::demo() } else { Repo::demo_without_operator() };
        let dev = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
        // Each test locks in a namespace of its own, so tests running at once never wait on
        // each other's applies.
        let lock_namespace = cluster.namespace("lock");
        let dev = dev
            .replace("namespace: shop-dev", &format!("namespace: {ns}\ncluster:\n  lockNamespace: {lock_namespace}"));
        repo.write("environments/dev.yaml", &dev);
        let crds = operator.then(|| cluster.weaver_crds_shared());
        Demo { cluster, repo, ns, _crds: crds }
    }

    /// The namespace of the dev environment's lock (its Lease), which each test has its own of.
    pub fn lock_namespace(&self) -> String {
        let dev = std::fs::read_to_string(self.repo.path().join("environments/dev.yaml")).unwrap();
        dev.lines().find_map(|l| l.trim().strip_prefix("lockNamespace: ")).unwrap().to_string()
    }

    /// Holds the dev environment's lock as another apply would, renewed just now; returns its
    /// Lease, which deleting lets go of.
    pub fn hold_lock(&self) -> Value {
        let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        let lease = serde_json::json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "weaver-lock-dev", "namespace": self.lock_namespace()},
            "spec": {"holderIdentity": "another apply (pid 1)", "acquireTime": now, "renewTime": now,
                "leaseDurationSeconds": 300, "leaseTransitions": 0}});
        self.cluster.apply(std::slice::from_ref(&lease), "another-apply");
        lease
    }

    pub fn edit(&self, path: &str, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.repo.path().join(path)).unwrap();
        assert!(text.contains(from), "{path} has no {from:?}");
        self.repo.write(path, &text.replacen(from, to, 1));
    }

    pub fn append(&self, path: &str, text: &str) {
        let old = std::fs::read_to_string(self.repo.path().join(path)).unwrap_or_default();
        self.repo.write(path, &format!("{old}{text}"));
    }

    /// Gives the chart's web container an `env` of `names`, in that order (each value is the
    /// lowercase name), replacing any set before.
    pub fn set_web_env(&self, names: &[&str]) {
        let path = "charts/web-app/templates/deployment.yaml";
        let text = std::fs::read_to_string(self.repo.path().join(path)).unwrap();
        let env_from = text.find("          envFrom:\n").expect("the web container has envFrom");
        let start = text.find("          env:\n").unwrap_or(env_from);
        let items: String = names
            .iter()
            .map(|n| format!("            - name: {n}\n              value: \"{}\"\n", n.to_lowercase()))
            .collect();
        self.repo.write(path, &format!("{}          env:\n{items}{}", &text[..start], &text[env_from..]));
    }

    /// The `env` names of the live web container, in order.
    pub fn live_web_env(&self) -> Vec<String> {
        let web = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": self.ns}});
        let live = self.cluster.get(&web).expect("web is live");
        let env = live["spec"]["template"]["spec"]["containers"][0]["env"].as_array().cloned().unwrap_or_default();
        env.iter().map(|e| e["name"].as_str().unwrap().to_string()).collect()
    }

    pub fn weaver(&self, args: &[&str]) -> Run {
        self.weaver_env(args, &[])
    }

    /// [`Demo::weaver`] with environment variables set.
    pub fn weaver_env(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        let kubeconfig = self.cluster.kubeconfig().to_str().unwrap().to_string();
        let mut all = vec!["--kubeconfig", &kubeconfig];
        all.extend_from_slice(args);
        self.repo.weaver_env(&all, envs)
    }

    /// The rendered objects with real secret values, as an apply would send them.
    pub fn rendered(&self) -> Vec<Value> {
        let out = self.repo.weaver(&["render", "--env", "dev", "--show-secrets"]);
        weaver_yaml::documents(std::path::Path::new("render"), out.success()).unwrap()
    }

    /// Applies the rendered objects as weaver would (field manager `weaver`).
    pub fn apply_rendered(&self) {
        self.cluster.apply(&self.rendered(), "weaver");
    }
}
