//! `weaver import flux`: a small Flux repository (two clusters bootstrapped by `flux
//! bootstrap`, Kustomizations with dependsOn, targetNamespace, patches, postBuild variables,
//! a HelmRelease of a chart of the repository with valuesFrom and a post-renderer) converted,
//! the result loaded and rendered, and what is listed as not converted.

use crate::common;

use std::path::Path;

use common::Repo;
use serde_json::{Value, json};

const SYNC: &str = r#"apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m
  url: ssh://git@example.com/fleet
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 10m
  path: ./clusters/CLUSTER
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"#;

/// The Flux repository: clusters `prod` (infra and apps) and `dev` (infra only).
fn write_flux(repo: &Repo) {
    for cluster in ["prod", "dev"] {
        repo.write(&format!("clusters/{cluster}/flux-system/gotk-sync.yaml"), &SYNC.replace("CLUSTER", cluster))
            .write(
                &format!("clusters/{cluster}/flux-system/gotk-components.yaml"),
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n",
            )
            .write(
                &format!("clusters/{cluster}/flux-system/kustomization.yaml"),
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- gotk-components.yaml\n- gotk-sync.yaml\n",
            )
            .write(
                &format!("clusters/{cluster}/infra.yaml"),
                "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: infra\n  namespace: flux-system\n\
                 spec:\n  interval: 1h\n  path: ./infra\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n",
            );
    }
    repo.write(
        "clusters/prod/apps.yaml",
        r#"apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 1h
  dependsOn:
    - name: infra
  path: ./apps/prod
  prune: true
  targetNamespace: shop
  sourceRef:
    kind: GitRepository
    name: flux-system
  healthChecks:
    - kind: Deployment
      name: web
      namespace: shop
  patches:
    - patch: |
        - op: add
          path: /metadata/annotations
          value: {team: shop}
      target:
        kind: Deployment
  postBuild:
    substitute:
      replicas: "3"
    substituteFrom:
      - kind: ConfigMap
        name: cluster-vars
      - kind: Secret
        name: cluster-secrets
      - kind: Secret
        name: absent
        optional: true
"#,
    )
    .write(
        "clusters/prod/vars.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cluster-vars\n  namespace: flux-system\ndata:\n  domain: prod.example.com\n",
    )
    .write(
        "clusters/prod/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cluster-secrets\n  namespace: flux-system\ndata:\n  token: dG9rLTQy\n",
    )
    .write(
        "infra/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- release.yaml\n- values.yaml\n",
    )
    .write(
        "infra/release.yaml",
        r#"apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: app
  namespace: infra
spec:
  interval: 1h
  chart:
    spec:
      chart: ./charts/app
      sourceRef:
        kind: GitRepository
        name: flux-system
        namespace: flux-system
  install:
    remediation:
      retries: 3
  valuesFrom:
    - kind: ConfigMap
      name: app-values
    - kind: ConfigMap
      name: app-values
      valuesKey: tag
      targetPath: image.tag
  values:
    replicas: 2
  postRenderers:
    - kustomize:
        patches:
          - target:
              kind: Deployment
            patch: |
              apiVersion: apps/v1
              kind: Deployment
              metadata:
                name: any
                labels:
                  patched: "yes"
"#,
    )
    .write(
        "infra/values.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-values\n  namespace: infra\ndata:\n  values.yaml: |\n    replicas: 1\n    image:\n      repository: example/app\n  tag: \"1.2\"\n",
    )
    .write(
        "apps/prod/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- web.yaml\n- alert.yaml\n",
    )
    .write(
        "apps/prod/web.yaml",
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: elsewhere
spec:
  replicas: ${replicas}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: example/web:1.0
          env:
            - {name: HOST, value: "web.${domain}"}
            - {name: MODE, value: "${mode:=fast}"}
            - {name: TOKEN, value: "${token}"}
"#,
    )
    .write(
        "apps/prod/alert.yaml",
        "apiVersion: notification.toolkit.fluxcd.io/v1beta3\nkind: Alert\nmetadata:\n  name: slack\nspec:\n  providerRef:\n    name: slack\n",
    )
    .write("charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n")
    .write("charts/app/values.yaml", "replicas: 1\nimage:\n  repository: nginx\n  tag: latest\n")
    .write(
        "charts/app/templates/deployment.yaml",
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
        - name: app
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
"#,
    );
}

/// The objects of a render, by `kind/namespace/name`.
fn objects(text: &str) -> Vec<(String, Value)> {
    weaver_yaml::documents(Path::new("render"), text)
        .unwrap()
        .into_iter()
        .filter(|o| !o.is_null())
        .map(|o| {
            let key = format!(
                "{}/{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap()
            );
            (key, o)
        })
        .collect()
}

#[test]
fn a_flux_repository_becomes_an_environment_per_cluster_listing_what_is_left_out() {
    let repo = Repo::empty();
    write_flux(&repo);
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 2, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout,
        "wrote environments/dev.yaml\nwrote flux-import/dev/infra/kustomization.yaml\nwrote environments/prod.yaml\n\
         wrote flux-import/prod/flux-system/kustomization.yaml\n\
         wrote flux-import/prod/apps/kustomization.yaml\nwrote flux-import/prod/infra/kustomization.yaml\n\
         wrote weaver-import.lock\n"
    );
    let prod = std::fs::read_to_string(repo.path().join("environments/prod.yaml")).unwrap();
    assert_eq!(
        prod,
        r#"# Imported from the Flux cluster clusters/prod by `weaver import flux`.
releases:
- name: flux-system
  kustomize: flux-import/prod/flux-system
  loadRestrictions: none
- name: apps
  namespace: shop
  kustomize: flux-import/prod/apps
  substitute:
    replicas: '3'
  substituteFrom:
  - clusters/prod/vars.yaml
  - clusters/prod/secret.yaml
  needs:
  - infra
  - app
- name: infra
  kustomize: flux-import/prod/infra
- name: app
  chart: app
  namespace: infra
  values:
    replicas: 2
    image:
      repository: example/app
      tag: '1.2'
  patches:
  - target:
      kind: Deployment
    patch:
      metadata:
        labels:
          patched: 'yes'
"#
    );
    let expected = [
        "clusters/dev/flux-system/gotk-components.yaml:1: Flux's own controllers and CRDs: not converted",
        "clusters/prod/apps.yaml:16: Kustomization flux-system/apps: healthChecks: `weaver apply --wait` waits",
        "clusters/prod/flux-system/gotk-components.yaml:1: Flux's own controllers and CRDs: not converted",
        "apps/prod/alert.yaml:1: Alert shop/slack: weaver has no controller to notify from",
        "infra/release.yaml:15: HelmRelease infra/app: install (remediation): not supported",
    ];
    let listed = common::not_converted(&run.stderr);
    for want in expected {
        assert!(
            listed.iter().any(|l| l.starts_with(&format!("not converted: {want}"))),
            "no line `{want}` in\n{}",
            run.stderr
        );
    }
    assert!(run.stderr.lines().last().unwrap().starts_with("5 things were not converted"), "{}", run.stderr);

    // What was written loads, and renders what Flux would apply.
    let envs = repo.weaver(&["envs"]);
    assert!(envs.success().lines().any(|l| l.starts_with("prod ") && l.contains(" apps ")), "{}", envs.stdout);
    let render = repo.weaver(&["render", "--env", "prod", "-r", "apps", "-r", "flux-system", "--show-secrets"]);
    let rendered = objects(render.success());
    let keys: Vec<&str> = rendered.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["ConfigMap/flux-system/cluster-vars", "Secret/flux-system/cluster-secrets", "Deployment/shop/web"],
        "{}",
        render.stdout
    );
    let web = &rendered[2].1;
    assert_eq!(web["spec"]["replicas"], json!(3));
    assert_eq!(web["metadata"]["annotations"], json!({"team": "shop"}));
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([
            {"name": "HOST", "value": "web.prod.example.com"},
            {"name": "MODE", "value": "fast"},
            {"name": "TOKEN", "value": "tok-42"}
        ])
    );
    let chart = repo.weaver(&["render", "--env", "prod", "-r", "app"]);
    let app = &objects(chart.success())[0].1;
    assert_eq!(app["metadata"]["labels"]["patched"], json!("yes"), "{}", chart.stdout);
    assert_eq!(app["spec"]["replicas"], json!(2));
    assert_eq!(app["spec"]["template"]["spec"]["containers"][0]["image"], json!("example/app:1.2"));
    // dev has infra only: its ConfigMap and the chart, needing nothing.
    let dev = repo.weaver(&["envs", "--env", "dev"]);
    let releases: Vec<&str> = dev.success().lines().skip(1).map(|l| l.split_whitespace().nth(2).unwrap()).collect();
    assert_eq!(releases, ["infra", "app"], "{}", dev.stdout);
    assert!(dev.stdout.lines().skip(1).all(|l| l.ends_with(" -")), "{}", dev.stdout);
}

#[test]
fn the_imported_kustomizations_build_as_kubectl_kustomize_builds_them() {
    let Ok((kubectl, _)) = common::tools::kubectl_kustomize_v5() else {
        common::interop_available("kubectl kustomize v5", false);
        return;
    };
    let repo = Repo::empty();
    write_flux(&repo);
    repo.weaver(&["import", "flux"]);
    // The wrapper of `apps`: Flux's patch and targetNamespace, the Alert dropped; weaver then
    // substitutes, which kubectl does not, so compare the objects' identities and patches.
    let built = weaver_test_support::kubectl::command(kubectl)
        .args(["kustomize", "flux-import/prod/apps"])
        .current_dir(repo.path())
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let kubectl_objects = objects(&String::from_utf8(built.stdout).unwrap());
    let render = repo.weaver(&["render", "--env", "prod", "-r", "apps"]);
    let weaver_objects = objects(render.success());
    let identities = |objects: &[(String, Value)]| objects.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(identities(&weaver_objects), identities(&kubectl_objects));
    assert_eq!(weaver_objects[0].1["metadata"]["annotations"], kubectl_objects[0].1["metadata"]["annotations"]);
}

#[test]
fn existing_files_are_never_replaced_without_force_and_a_full_conversion_exits_0() {
    let repo = Repo::empty();
    repo.write(
        "clusters/dev/app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: dev\ndata:\n  a: b\n",
    )
    .write(
        "clusters/dev/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- app.yaml\n",
    );
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "wrote environments/dev.yaml\nwrote weaver-import.lock\n");
    let again = repo.weaver(&["import", "flux"]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("environments/dev.yaml: already exists"), "{}", again.stderr);
    let forced = repo.weaver(&["import", "flux", "--force"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    let render = repo.weaver(&["render", "--env", "dev"]);
    assert_eq!(objects(render.success())[0].0, "ConfigMap/dev/settings");
}

/// A manifest the Flux tree applies, kept where weaver writes the cluster's environment (a
/// cluster's kustomization listing `../../environments/dev.yaml`), is never replaced, --force
/// or not: weaver import did not write it (weaver-import.lock). No byte of any file changes.
#[test]
fn force_never_replaces_a_manifest_the_flux_tree_applies() {
    let repo = Repo::empty();
    repo.write(
        "environments/dev.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: dev\ndata:\n  a: b\n",
    )
    .write(
        "clusters/dev/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../environments/dev.yaml\n",
    );
    let before = common::fs::digests(repo.path());
    for args in [&["import", "flux"][..], &["import", "flux", "--force"][..]] {
        let run = repo.weaver(args);
        assert!(run.failure().starts_with("error: environments/dev.yaml: already exists"), "{}", run.stderr);
        assert_eq!(common::fs::digests(repo.path()), before, "{args:?}");
    }
    let forced = repo.weaver(&["import", "flux", "--force"]);
    assert!(forced.stderr.contains("not written by `weaver import`"), "{}", forced.stderr);
}

#[test]
fn variables_nothing_sets_are_empty_as_flux_substitutes_them_unless_a_source_was_not_read() {
    let repo = Repo::empty();
    let ks = |name: &str, from: &str| {
        format!(
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: {name}\n  namespace: flux-system\n\
             spec:\n  path: ./app\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n  postBuild:\n    \
             substitute:\n      a: x\n    substituteFrom: {from}\n"
        )
    };
    repo.write("clusters/dev/app.yaml", &ks("app", "[]"))
        .write("clusters/prod/app.yaml", &ks("app", "[{kind: Secret, name: in-the-cluster}]"))
        .write(
            "app/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- cm.yaml\n",
        )
        .write("app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  v: \"${a}-${b}\"\n");
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let dev = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
    assert!(dev.contains("  substitute:\n    a: x\n    b: ''\n"), "{dev}");
    let render = repo.weaver(&["render", "--env", "dev"]);
    assert_eq!(objects(render.success())[0].1["data"]["v"], json!("x-"));
    // In prod `b` may be the Secret's: the release waits, installed: false, for it.
    let prod = std::fs::read_to_string(repo.path().join("environments/prod.yaml")).unwrap();
    assert!(prod.contains("  installed: false\n") && !prod.contains("b: ''"), "{prod}");
    assert!(
        run.stderr
            .contains("clusters/prod/app.yaml:11: Kustomization flux-system/app: postBuild variables b: set by no"),
        "{}",
        run.stderr
    );
    assert_eq!(repo.weaver(&["render", "--env", "prod"]).success(), "");
}

#[test]
fn without_a_bootstrap_children_come_through_their_parents_patches() {
    let repo = Repo::empty();
    let ks = |name: &str, path: &str, rest: &str| {
        format!(
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: {name}\n  namespace: flux-system\n\
             spec:\n  path: {path}\n{rest}"
        )
    };
    // `home` is the GitRepository flux-operator makes for this repository: not in it.
    let parent_rest = "  sourceRef:\n    kind: GitRepository\n    name: home\n  patches:\n    - patch: |-\n        \
                       apiVersion: kustomize.toolkit.fluxcd.io/v1\n        kind: Kustomization\n        metadata:\n          \
                       name: _\n        spec:\n          targetNamespace: team\n          sourceRef:\n            \
                       kind: GitRepository\n            name: home\n      target:\n        kind: Kustomization\n";
    repo.write("flux/cluster/ks.yaml", &ks("apps", "./apps", parent_rest))
        .write("apps/web/ks.yaml", &ks("web", "./apps/web/app", ""))
        .write(
            "apps/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- web/ks.yaml\n",
        )
        .write(
            "apps/web/app/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- cm.yaml\n",
        )
        .write("apps/web/app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  a: b\n");
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let env = std::fs::read_to_string(repo.path().join("environments/default.yaml")).unwrap();
    assert!(env.contains("- name: web\n  namespace: team\n  kustomize: apps/web/app\n"), "{env}");
    let render = repo.weaver(&["render", "--env", "default"]);
    assert_eq!(objects(render.success())[0].0, "ConfigMap/team/web");
}

/// A Flux Kustomization named `app` in `clusters/dev`, building `./app`, with `postBuild`.
fn app_kustomization(post_build: &str) -> String {
    format!(
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: app\n  namespace: flux-system\n\
         spec:\n  path: ./app\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n{post_build}"
    )
}

#[test]
fn what_flux_builds_and_kustomize_would_refuse_is_built_and_what_cannot_be_read_is_listed() {
    let repo = Repo::empty();
    let post_build =
        "  postBuild:\n    substituteFrom:\n    - {kind: ConfigMap, name: plain}\n    - {kind: ConfigMap, name: enc}\n";
    repo.write("clusters/dev/app.yaml", &app_kustomization(post_build))
        // One file, so that neither ConfigMap can be named as a file of its own.
        .write(
            "clusters/dev/vars.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain, namespace: flux-system}\ndata: {a: one}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {name: enc, namespace: flux-system}\n\
             data: {b: 'ENC[AES256_GCM,data:c2VjcmV0,iv:x,tag:y,type:str]'}\nsops: {version: 3.9.0, age: []}\n",
        )
        // A resource outside the kustomization's directory: Flux builds with LoadRestrictionsNone.
        .write(
            "app/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../shared/cm.yaml\n",
        )
        .write("shared/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  v: \"${a}-${b}\"\n")
        // A directory Flux generates a kustomization for, with a file that does not parse.
        .write("clusters/dev/broken/bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n");
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let dev = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
    assert!(dev.contains("  kustomize: app\n  loadRestrictions: none\n"), "{dev}");
    // The encrypted ConfigMap's `ENC[…]` is never a variable: it is listed, and the release
    // waits for its variable.
    let written = walk(repo.path());
    assert!(written.iter().all(|(_, text)| !text.contains("ENC[") || text.contains("sops:")), "{written:?}");
    assert!(
        run.stderr.contains("clusters/dev/app.yaml:14: Kustomization flux-system/app: substituteFrom ConfigMap enc: "),
        "{}",
        run.stderr
    );
    assert!(dev.contains("  installed: false\n"), "{dev}");
    assert!(run.stderr.contains("clusters/dev/broken/bad.yaml:3: the file: not read: "), "{}", run.stderr);

    // Installed, it renders what kubectl kustomize builds with LoadRestrictionsNone.
    repo.write("environments/dev.yaml", &dev.replace("  installed: false\n", "  substitute: {b: two}\n"));
    let render = repo.weaver(&["render", "--env", "dev", "-r", "app"]);
    assert_eq!(objects(render.success())[0].1["data"]["v"], json!("one-two"));
}

#[test]
fn a_plain_secret_s_variables_are_redacted_as_decrypted_ones_are() {
    let repo = Repo::empty();
    repo.write(
        "clusters/dev/app.yaml",
        &app_kustomization("  postBuild:\n    substituteFrom:\n    - {kind: Secret, name: creds}\n"),
    )
    .write(
        "clusters/dev/creds.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: flux-system}\n\
             stringData: {password: plain-hunter2}\n",
    )
    .write(
        "app/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- cm.yaml\n",
    )
    .write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  url: \"db://app:${password}@db\"\n",
    );
    let run = repo.weaver(&["import", "flux"]);
    assert!(run.code == 0 || run.code == 2, "{}", run.stderr);
    let dev = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
    assert!(dev.contains("  substituteFrom:\n  - clusters/dev/creds.yaml\n"), "{dev}");
    let render = repo.weaver(&["render", "--env", "dev", "-r", "app", "-vv"]);
    let out = render.success();
    assert!(out.contains("url: db://app:") && !out.contains("plain-hunter2"), "{out}");
    assert!(!render.stderr.contains("plain-hunter2"), "{}", render.stderr);
}

/// Every file under `dir` but `.git`'s, with its text.
fn walk(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            out.push((path.display().to_string(), text));
        }
    }
    out
}

#[test]
fn a_helm_release_s_chart_outside_charts_is_named_by_its_path() {
    let repo = Repo::empty();
    repo.write(
        "clusters/dev/web.yaml",
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  \
         chart:\n    spec:\n      chart: ./deploy/web\n      sourceRef:\n        kind: GitRepository\n        \
         name: flux-system\n        namespace: flux-system\n  values:\n    greeting: hello\n",
    )
    .write("deploy/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n")
    .write(
        "deploy/web/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  greeting: {{ .Values.greeting }}\n",
    );
    let dev = imported_dev(&repo);
    assert!(dev.contains("- name: web\n  chart: ./deploy/web\n  namespace: shop\n"), "{dev}");
    let render = repo.weaver(&["render", "--env", "dev", "-r", "web"]);
    assert_eq!(objects(render.success())[0].1["data"]["greeting"], json!("hello"));
}

#[test]
fn a_kustomization_keeping_a_variable_its_parent_would_substitute_is_not_installed() {
    let repo = Repo::empty();
    let ks = |name: &str, path: &str, post_build: &str| {
        format!(
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: {name}\n  namespace: flux-system\n\
             spec:\n  path: {path}\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n  postBuild:\n{post_build}"
        )
    };
    let kustomization = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n";
    // The parent's variables come from a Secret of the cluster, which the import cannot read.
    repo.write(
        "clusters/dev/apps.yaml",
        &ks("apps", "./apps", "    substituteFrom:\n    - {kind: Secret, name: cluster-secrets}\n"),
    )
    .write("apps/kustomization.yaml", &format!("{kustomization}- web.yaml\n"))
    .write("apps/web.yaml", &ks("web", "./web", "    substitute:\n      HOST: \"${CLUSTER}.example.com\"\n"))
    .write("web/kustomization.yaml", &format!("{kustomization}- cm.yaml\n"))
    .write("web/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  host: ${HOST}\n");
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "apps/web.yaml:13: Kustomization flux-system/web: variable CLUSTER: Flux substitutes it from Secret \
             flux-system/cluster-secrets"
        ),
        "{}",
        run.stderr
    );
    let dev = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
    let web = dev.split("- name: ").find(|r| r.starts_with("web\n")).unwrap_or_default();
    assert!(web.contains("  installed: false\n"), "{dev}");
    assert_eq!(repo.weaver(&["render", "--env", "dev", "-r", "web"]).success(), "");
}

/// A chart `web` in charts/ whose ConfigMap shows the values it was given, and a default that
/// only a `null` deletes.
fn write_web_chart(repo: &Repo) {
    repo.write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n")
        .write("charts/web/values.yaml", "global:\n  imageRegistry: docker.io\n")
        .write(
            "charts/web/templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  \
             values: {{ omit .Values \"global\" | toJson | quote }}\n  \
             registry: {{ .Values.global.imageRegistry | default \"none\" | quote }}\n",
        );
}

/// A HelmRelease of the chart `web` in namespace shop, named `name`, with the rest of its spec.
fn web_release(name: &str, rest: &str) -> String {
    format!(
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: {name}\n  namespace: shop\nspec:\n  \
         chart:\n    spec:\n      chart: ./charts/web\n      sourceRef:\n        kind: GitRepository\n        \
         name: flux-system\n        namespace: flux-system\n{rest}"
    )
}

/// `weaver import flux` of `repo`, converting everything (exit 0): the `dev` environment it wrote.
fn imported_dev(repo: &Repo) -> String {
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap()
}

/// The release `name`'s part of an environment file.
fn release_text<'a>(env: &'a str, name: &str) -> &'a str {
    env.split("- name: ").find(|r| r.starts_with(&format!("{name}\n"))).unwrap_or_default()
}

#[test]
fn an_explicit_null_in_helm_release_values_is_kept_and_deletes_the_chart_default() {
    let repo = Repo::empty();
    write_web_chart(&repo);
    repo.write(
        "clusters/dev/web.yaml",
        &web_release(
            "web",
            "  valuesFrom:\n  - {kind: ConfigMap, name: web-values}\n  values:\n    global:\n      imageRegistry: null\n",
        ),
    )
    .write(
        "clusters/dev/values.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-values, namespace: shop}\n\
         data:\n  values.yaml: |\n    a: 1\n    b: null\n",
    );
    let dev = imported_dev(&repo);
    assert!(
        release_text(&dev, "web")
            .contains("  values:\n    a: 1\n    b: null\n    global:\n      imageRegistry: null\n"),
        "{dev}"
    );
    let render = repo.weaver(&["render", "--env", "dev", "-r", "web"]);
    let web = &objects(render.success())[0].1;
    assert_eq!(web["data"]["registry"], json!("none"), "{}", render.stdout);
    // As `helm template` gives it: a null the chart has no default for stays.
    assert_eq!(web["data"]["values"], json!("{\"a\":1,\"b\":null}"), "{}", render.stdout);
}

#[test]
fn values_from_config_maps_are_read_substituted_as_kustomize_controller_applies_them() {
    let repo = Repo::empty();
    write_web_chart(&repo);
    repo.write(
        "clusters/dev/app.yaml",
        &app_kustomization("  postBuild:\n    substitute:\n      DOMAIN: example.com\n      TEAM: shop\n"),
    )
    .write(
        "app/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- web.yaml\n- values.yaml\n",
    )
    .write(
        "app/web.yaml",
        &web_release("web", "  valuesFrom:\n  - {kind: ConfigMap, name: web-values}\n  values:\n    inline: ${TEAM}\n"),
    )
    // `{team: ${TEAM}}` is YAML only once substituted: `{` in a flow mapping.
    .write(
        "app/values.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-values, namespace: shop}\n\
         data:\n  values.yaml: |\n    host: web.${DOMAIN}\n    literal: $${KEEP}\n    labels: {team: ${TEAM}}\n",
    );
    let dev = imported_dev(&repo);
    assert!(
        release_text(&dev, "web").contains(
            "  values:\n    host: web.example.com\n    literal: ${KEEP}\n    labels:\n      team: shop\n    inline: shop\n"
        ),
        "{dev}"
    );
    let render = repo.weaver(&["render", "--env", "dev", "-r", "web"]);
    let values: Value =
        serde_json::from_str(objects(render.success())[0].1["data"]["values"].as_str().unwrap()).unwrap();
    assert_eq!(
        values,
        json!({"host": "web.example.com", "literal": "${KEEP}", "labels": {"team": "shop"}, "inline": "shop"})
    );
}

#[test]
fn variables_are_substituted_one_by_one_and_those_of_an_unread_secret_listed_naming_it() {
    let repo = Repo::empty();
    write_web_chart(&repo);
    repo.write(
        "clusters/dev/app.yaml",
        &app_kustomization(
            "  postBuild:\n    substitute:\n      APP: web\n    substituteFrom:\n    - {kind: Secret, name: cluster-secrets}\n",
        ),
    )
    .write(
        "app/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- web.yaml\n- values.yaml\n",
    )
    .write(
        "app/web.yaml",
        &web_release(
            "${APP}",
            "  valuesFrom:\n  - {kind: ConfigMap, name: \"${APP}-values\"}\n  values:\n    \
             host: ${APP}.example.com\n    password: ${DB_PASSWORD}\n",
        ),
    )
    .write(
        "app/values.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \"${APP}-values\", namespace: shop}\n\
         data:\n  values.yaml: |\n    token: ${API_TOKEN}\n",
    );
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(!run.stderr.contains("variable APP") && !run.stderr.contains("`APP`"), "{}", run.stderr);
    assert!(!run.stderr.contains("substituted by no Kustomization"), "{}", run.stderr);
    for want in [
        "not converted: app/web.yaml:18: HelmRelease shop/web: variable DB_PASSWORD: Flux substitutes it from Secret \
         flux-system/cluster-secrets (its Kustomization's substituteFrom), which the import does not read",
        "not converted: app/web.yaml:14: HelmRelease shop/web: valuesFrom ConfigMap web-values: ConfigMap \
         shop/web-values (app/values.yaml): its variables `API_TOKEN` are Secret flux-system/cluster-secrets's",
    ] {
        assert!(run.stderr.lines().any(|l| l.starts_with(want)), "no `{want}` in\n{}", run.stderr);
    }
    let dev = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
    assert!(
        release_text(&dev, "web").contains(
            "  values:\n    token: ${API_TOKEN}\n    host: web.example.com\n    password: ${DB_PASSWORD}\n  installed: false\n"
        ),
        "{dev}"
    );
}

#[test]
fn sops_secrets_of_a_kustomization_s_components_are_left_out_and_listed_as_those_of_its_path() {
    let repo = Repo::empty();
    repo.write("clusters/dev/app.yaml", &app_kustomization("  components:\n  - ../components/creds\n"))
        .write(
            "app/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- cm.yaml\n",
        )
        .write("app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: b\n")
        .write(
            "components/creds/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n- creds.sops.yaml\n",
        )
        .write(
            "components/creds/creds.sops.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n  namespace: shop\n\
             stringData:\n  password: ENC[AES256_GCM,data:c2VjcmV0,iv:x,tag:y,type:str]\n\
             sops:\n  version: 3.9.0\n  age: []\n",
        );
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "not converted: components/creds/creds.sops.yaml:8: Secret shop/creds (SOPS-encrypted): not converted"
        ),
        "{}",
        run.stderr
    );
    let render = repo.weaver(&["render", "--env", "dev", "-r", "app"]);
    let keys: Vec<String> = objects(render.success()).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["ConfigMap/default/c"], "{}", render.stdout);
}

#[test]
fn the_kustomization_flux_generates_is_written_under_flux_import_never_into_the_flux_tree() {
    let repo = Repo::empty();
    // Two clusters apply one directory without a kustomization file.
    for cluster in ["dev", "prod"] {
        repo.write(&format!("clusters/{cluster}/app.yaml"), &app_kustomization(""));
    }
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: shop\ndata:\n  a: b\n",
    );
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "wrote environments/dev.yaml\nwrote flux-import/dev/app/kustomization.yaml\n\
         wrote environments/prod.yaml\nwrote flux-import/prod/app/kustomization.yaml\nwrote weaver-import.lock\n"
    );
    // The Flux directories are as they were: Flux still generates their kustomization.
    for dir in ["app", "clusters/dev", "clusters/prod"] {
        assert!(!repo.path().join(dir).join("kustomization.yaml").exists(), "{dir}");
    }
    let dev = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
    assert!(dev.contains("- name: app\n  kustomize: flux-import/dev/app\n  loadRestrictions: none\n"), "{dev}");
    let render = repo.weaver(&["render", "--env", "dev", "-r", "app"]);
    let keys: Vec<String> = objects(render.success()).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["ConfigMap/shop/c"], "{}", render.stdout);
}

#[test]
fn clusters_are_found_without_bootstrap_files_or_a_root_clusters_directory_and_said() {
    let config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: shop\ndata:\n  a: b\n";
    // Flux installed by a Helm chart: the clusters are under kubernetes/clusters.
    let repo = Repo::empty();
    repo.write(
        "kubernetes/clusters/main/app.yaml",
        &weaver_test_support::flux::kustomization("app", "./kubernetes/app"),
    )
    .write("kubernetes/app/cm.yaml", config_map);
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("wrote environments/main.yaml\n"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("cluster kubernetes/clusters/main → environments/main.yaml: a directory of kubernetes/clusters"),
        "{}",
        run.stderr
    );

    // flux-operator's flux-instance chart, its sync path in the HelmRelease's values.
    let repo = Repo::empty();
    repo.write(
        "infra/flux/instance.yaml",
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: flux-instance\n  namespace: flux-system\n\
         spec:\n  chartRef: {kind: OCIRepository, name: flux-instance}\n  values:\n    instance:\n      sync:\n        \
         kind: GitRepository\n        url: https://example.com/fleet.git\n        path: deploy/eu\n",
    )
    .write("deploy/eu/app.yaml", &weaver_test_support::flux::kustomization("app", "./apps"))
    .write("apps/cm.yaml", config_map);
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "cluster deploy/eu → environments/eu.yaml: a flux-instance HelmRelease's instance.sync.path (infra/flux/instance.yaml)"
        ),
        "{}",
        run.stderr
    );
    let eu = std::fs::read_to_string(repo.path().join("environments/eu.yaml")).unwrap();
    assert!(eu.contains("- name: app\n"), "{eu}");

    // A Kustomization whose path holds flux-system/ (bootstrap files elsewhere or gone).
    let repo = Repo::empty();
    repo.write("fleet/root.yaml", &weaver_test_support::flux::kustomization("cluster", "./fleet/one"))
        .write("fleet/one/flux-system/README.md", "installed by the platform team\n")
        .write("fleet/one/app.yaml", &weaver_test_support::flux::kustomization("app", "./apps"))
        .write("apps/cm.yaml", config_map);
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("cluster fleet/one → environments/one.yaml: the path of Kustomization cluster (fleet/root.yaml)"),
        "{}",
        run.stderr
    );

    // --clusters names one cluster's directory; the whole repository otherwise, where a
    // line never names an empty file.
    let repo = Repo::empty();
    repo.write("ops/prod/app.yaml", &weaver_test_support::flux::kustomization("app", "./apps"))
        .write("apps/cm.yaml", config_map)
        .write(
            "kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- missing.yaml\n",
        );
    let run = repo.weaver(&["import", "flux", "--clusters", "ops/prod"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("cluster ops/prod → environments/prod.yaml: given (--clusters)"), "{}", run.stderr);
    let whole = repo.weaver(&["import", "flux", "--force"]);
    assert!(whole.stderr.contains("cluster . → environments/default.yaml: no bootstrap"), "{}", whole.stderr);
    let listed = common::not_converted(&whole.stderr);
    assert!(!listed.is_empty(), "{}", whole.stderr);
    assert!(listed.iter().all(|l| !l.starts_with("not converted: :") && !l.contains("(path )")), "{}", whole.stderr);
    let missing = repo.weaver(&["import", "flux", "--clusters", "nowhere"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("--clusters nowhere: not a directory of the Flux repository"),
        "{}",
        missing.stderr
    );
}

#[test]
fn a_remote_resource_is_listed_and_the_rest_of_its_kustomization_converted() {
    let repo = Repo::empty();
    write_web_chart(&repo);
    repo.write("clusters/dev/app.yaml", &app_kustomization(""))
        .write(
            "app/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n\
             - https://example.com/releases/components.yaml\n- web.yaml\n- cm.yaml\n",
        )
        .write("app/web.yaml", &web_release("web", "  values:\n    a: 1\n"))
        .write(
            "app/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: shop\ndata:\n  a: b\n",
        );
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let listed = common::not_converted(&run.stderr);
    assert_eq!(listed.len(), 1, "{}", run.stderr);
    assert!(
        listed[0].starts_with(
            "not converted: app/kustomization.yaml:4: remote resource https://example.com/releases/components.yaml: \
             not converted: weaver builds only kustomizations of its repository"
        ),
        "{}",
        run.stderr
    );
    let dev = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
    assert!(dev.contains("- name: app\n  kustomize: flux-import/dev/app\n  loadRestrictions: none\n"), "{dev}");
    assert!(dev.contains("- name: web\n  chart: web\n"), "{dev}");
    let render = repo.weaver(&["render", "--env", "dev"]);
    let keys: Vec<String> = objects(render.success()).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["ConfigMap/shop/c", "ConfigMap/shop/web"], "{}", render.stdout);
}

/// helm-controller reads a `valuesFrom` ConfigMap's values as helm reads a values file (YAML
/// 1.1: `0777` is 511, `yes` is true), and a HelmRelease's inline values reach it through the
/// API server, which reads `0777` as 511 too: the environment holds what renders the same.
#[test]
fn yaml_1_1_octals_and_booleans_in_values_are_read_as_helm_controller_reads_them() {
    let repo = Repo::empty();
    write_flux(&repo);
    repo.write(
        "infra/values.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-values\n  namespace: infra\ndata:\n  values.yaml: |\n    \
         replicas: 1\n    volume: {defaultMode: 0777, readOnly: yes, octal: 0o17, sized: 1_000, quoted: '0777'}\n  \
         tag: \"1.2\"\n",
    );
    let release = std::fs::read_to_string(repo.path().join("infra/release.yaml")).unwrap();
    repo.write("infra/release.yaml", &release.replace("    replicas: 2\n", "    replicas: 2\n    umask: 0022\n"));
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 2, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let prod = std::fs::read_to_string(repo.path().join("environments/prod.yaml")).unwrap();
    assert!(
        prod.contains(
            "  values:\n    replicas: 2\n    volume:\n      defaultMode: 511\n      readOnly: true\n      octal: 15\n      \
             sized: 1000\n      quoted: '0777'\n    image:\n      tag: '1.2'\n    umask: 18\n"
        ),
        "{prod}"
    );
}

/// Imports the Flux Kustomization `app` of `./app/prod`, whose tree is `files`, where each line
/// holding `https://` is a remote entry: each is listed once at its line (`listed`, exactly),
/// every HelmRelease of the rest is converted (`helm_releases`: the start of each release), the
/// environment renders, and the release of the other objects renders what `kubectl kustomize`
/// builds of the tree without the remote lines, but for the Flux objects.
fn remote_entries_are_left_out(files: &[(&str, &str)], listed: &[&str], helm_releases: &[&str]) {
    let repo = Repo::empty();
    write_web_chart(&repo);
    repo.write("clusters/dev/app.yaml", &weaver_test_support::flux::kustomization("app", "./app/prod"));
    for (path, text) in files {
        repo.write(path, text);
    }
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let lines = common::not_converted(&run.stderr);
    assert_eq!(lines.len(), listed.len(), "{}", run.stderr);
    for (line, want) in lines.iter().zip(listed) {
        assert!(line.starts_with(&format!("not converted: {want}: not converted: weaver builds only")), "{line}");
        assert!(line.ends_with("vendor the file into the repository and list it in place of the URL"), "{line}");
    }
    // The Flux tree is as it was: the copies without the remote entries are the import's.
    for (path, text) in files {
        assert_eq!(std::fs::read_to_string(repo.path().join(path)).unwrap(), *text, "{path}");
    }
    let dev = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
    assert!(dev.contains("- name: app\n  kustomize: flux-import/dev/app\n  loadRestrictions: none\n"), "{dev}");
    for release in helm_releases {
        assert!(dev.contains(release), "no `{release}` in\n{dev}");
    }
    repo.weaver(&["render", "--env", "dev"]).success();

    let Ok((kubectl, _)) = common::tools::kubectl_kustomize_v5() else {
        common::interop_available("kubectl kustomize v5", false);
        return;
    };
    let stripped = Repo::empty();
    for (path, text) in files {
        let local: Vec<&str> = text.lines().filter(|l| !l.contains("https://")).collect();
        stripped.write(path, &format!("{}\n", local.join("\n")));
    }
    let built = weaver_test_support::kubectl::command(kubectl)
        .args(["kustomize", "app/prod"])
        .current_dir(stripped.path())
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let mut expected: Vec<(String, Value)> = objects(&String::from_utf8(built.stdout).unwrap());
    expected.retain(|(key, _)| !key.starts_with("HelmRelease/"));
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    let render = repo.weaver(&["render", "--env", "dev", "-r", "app"]);
    let mut rendered = objects(render.success());
    for (_, object) in &mut rendered {
        let meta = object["metadata"].as_object_mut().unwrap();
        let labels = meta["labels"].as_object_mut().unwrap();
        for label in ["app.kubernetes.io/managed-by", "weaver.example.com/release", "weaver.example.com/environment"] {
            labels.remove(label);
        }
        if labels.is_empty() {
            meta.remove("labels");
        }
    }
    rendered.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!expected.is_empty());
    assert_eq!(rendered, expected, "{}", render.stdout);
}

const CONFIG_MAP_C: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: b\n";

#[test]
fn a_remote_resource_among_namespace_and_patches_is_left_out_and_the_rest_converted() {
    let kustomization = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: shop\n\
                         resources:\n- web.yaml\n- https://example.com/releases/operator.yaml\n- api.yaml\n- cm.yaml\n\
                         patches:\n- path: patch.yaml\n- target: {kind: HelmRelease, name: api}\n  patch: |\n    \
                         - op: add\n      path: /spec/values/tier\n      value: backend\n";
    remote_entries_are_left_out(
        &[
            ("app/prod/kustomization.yaml", kustomization),
            ("app/prod/web.yaml", &web_release("web", "  values:\n    a: 1\n")),
            ("app/prod/api.yaml", &web_release("api", "  values:\n    a: 2\n")),
            ("app/prod/cm.yaml", CONFIG_MAP_C),
            (
                "app/prod/patch.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  patched: \"yes\"\n",
            ),
        ],
        &["app/prod/kustomization.yaml:6: remote resource https://example.com/releases/operator.yaml"],
        &[
            "- name: web\n  chart: web\n  namespace: shop\n  values:\n    a: 1\n",
            "- name: api\n  chart: web\n  namespace: shop\n  values:\n    a: 2\n    tier: backend\n",
        ],
    );
}

#[test]
fn a_remote_resource_of_a_base_s_base_is_left_out_and_the_rest_converted() {
    remote_entries_are_left_out(
        &[
            (
                "app/prod/kustomization.yaml",
                "resources:\n- ../base\n- cm.yaml\nnamespace: shop\ncommonLabels:\n  env: prod\n",
            ),
            ("app/prod/cm.yaml", CONFIG_MAP_C),
            ("app/base/kustomization.yaml", "resources:\n- ../common\n- web.yaml\nnamePrefix: base-\n"),
            ("app/base/web.yaml", &web_release("web", "")),
            (
                "app/common/kustomization.yaml",
                "resources:\n  - \"https://example.com/base/crds.yaml\" # upstream\n  - settings.yaml\n\
                 configMapGenerator:\n  - name: generated\n    literals: [tier=common]\n",
            ),
            (
                "app/common/settings.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  level: \"1\"\n",
            ),
        ],
        &["app/common/kustomization.yaml:2: remote resource https://example.com/base/crds.yaml"],
        &["- name: base-web\n  chart: web\n  namespace: shop\n"],
    );
}

#[test]
fn a_remote_entry_of_a_component_is_left_out_and_the_rest_converted() {
    remote_entries_are_left_out(
        &[
            (
                "app/prod/kustomization.yaml",
                "namespace: shop\nresources:\n- cm.yaml\n- web.yaml\ncomponents:\n- ../components/monitoring\n\
                 - https://github.com/example/fleet//components/tracing?ref=v1\n",
            ),
            ("app/prod/cm.yaml", CONFIG_MAP_C),
            ("app/prod/web.yaml", &web_release("web", "")),
            (
                "app/components/monitoring/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n\
                 - https://example.com/monitoring/rules.yaml\n- api.yaml\npatches:\n\
                 - patch: '{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"c\"}, \"data\": {\"monitored\": \"yes\"}}'\n",
            ),
            ("app/components/monitoring/api.yaml", &web_release("api", "")),
        ],
        &[
            "app/components/monitoring/kustomization.yaml:4: remote resource https://example.com/monitoring/rules.yaml",
            "app/prod/kustomization.yaml:7: remote component https://github.com/example/fleet//components/tracing?ref=v1",
        ],
        &["- name: web\n  chart: web\n  namespace: shop\n", "- name: api\n  chart: web\n  namespace: shop\n"],
    );
}

#[test]
fn a_chart_version_keeping_an_unread_variable_is_written_loadable_and_not_installed() {
    let repo = Repo::empty();
    repo.write(
        "clusters/dev/app.yaml",
        &app_kustomization(
            "  postBuild:\n    substitute:\n      APP: web\n    substituteFrom:\n    - {kind: Secret, name: web-secret}\n",
        ),
    )
    .write(
        "app/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- oci.yaml\n- web.yaml\n- cm.yaml\n",
    )
    // Flux takes TEMPLATE_TAG from the Secret when it has it, else `5.0.1`.
    .write(
        "app/oci.yaml",
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata:\n  name: ${APP}\n  namespace: shop\n\
         spec:\n  ref:\n    tag: ${TEMPLATE_TAG:=5.0.1}\n  url: oci://ghcr.io/example/web\n",
    )
    .write(
        "app/web.yaml",
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: ${APP}\n  namespace: shop\n\
         spec:\n  chartRef:\n    kind: OCIRepository\n    name: ${APP}\n",
    )
    .write("app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: shop\ndata:\n  a: b\n");
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let want = "not converted: app/oci.yaml:8: HelmRelease shop/web: chart version ${TEMPLATE_TAG:=5.0.1}:";
    assert!(run.stderr.lines().any(|l| l.starts_with(want)), "no `{want}` in\n{}", run.stderr);
    let dev = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
    let web = release_text(&dev, "web");
    assert!(web.contains("  version: '5.0.1'\n") && web.contains("  installed: false\n"), "{dev}");
    // The environment loads: its other release renders.
    let render = repo.weaver(&["render", "--env", "dev", "-r", "app"]);
    assert_eq!(objects(render.success())[0].0, "ConfigMap/shop/c");
}

#[test]
fn a_strategic_merge_patch_clears_empty_values_of_a_helm_release_and_keeps_spelled_out_nulls() {
    let repo = Repo::empty();
    write_web_chart(&repo);
    repo.write(
        "clusters/dev/app.yaml",
        &app_kustomization(
            "  patches:\n  - patch: |\n      apiVersion: helm.toolkit.fluxcd.io/v2\n      kind: HelmRelease\n      \
             metadata:\n        name: web\n      spec:\n        values:\n          replicas: 2\n    \
             target:\n      kind: HelmRelease\n",
        ),
    )
    .write(
        "app/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- web.yaml\n",
    )
    // kustomize's strategic merge drops `annotations:` (empty) and keeps `keep: null`, as
    // `kubectl kustomize` of this build prints.
    .write(
        "app/web.yaml",
        &web_release("web", "  values:\n    pod:\n      annotations:\n      labels: {a: b}\n    keep: null\n"),
    );
    let dev = imported_dev(&repo);
    assert!(
        release_text(&dev, "web")
            .contains("  values:\n    pod:\n      labels:\n        a: b\n    keep: null\n    replicas: 2\n"),
        "{dev}"
    );
}

#[test]
fn patches_a_parent_gives_its_children_clear_empty_values_of_their_helm_releases() {
    let repo = Repo::empty();
    write_web_chart(&repo);
    // The parent `apps` gives every Kustomization a patch of its HelmReleases (the shape of
    // `cluster-apps` in many home-ops repositories).
    repo.write(
        "clusters/dev/apps.yaml",
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\n  namespace: flux-system\n\
         spec:\n  path: ./apps\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n  patches:\n  - patch: |-\n      \
         apiVersion: kustomize.toolkit.fluxcd.io/v1\n      kind: Kustomization\n      metadata:\n        name: _\n      spec:\n        \
         patches:\n        - patch: |-\n            apiVersion: helm.toolkit.fluxcd.io/v2\n            kind: HelmRelease\n            \
         metadata:\n              name: _\n            spec:\n              values:\n                replicas: 2\n          \
         target:\n            kind: HelmRelease\n    target:\n      kind: Kustomization\n",
    )
    .write("apps/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- app.yaml\n")
    .write("apps/app.yaml", &app_kustomization(""))
    .write("app/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- web.yaml\n")
    .write("app/web.yaml", &web_release("web", "  values:\n    pod:\n      annotations:\n      labels: {a: b}\n    keep: null\n"));
    let dev = imported_dev(&repo);
    assert!(
        release_text(&dev, "web")
            .contains("  values:\n    pod:\n      labels:\n        a: b\n    keep: null\n    replicas: 2\n"),
        "{dev}"
    );
}

#[test]
fn a_git_repository_with_the_url_the_cluster_syncs_from_is_taken_as_this_repository_and_said() {
    let repo = Repo::empty();
    // flux-operator syncs the cluster from this repository; the cluster's root Kustomization
    // builds from a GitRepository of its own naming the same repository (ssh and https forms).
    repo.write(
        "kubernetes/flux/instance.yaml",
        "apiVersion: fluxcd.controlplane.io/v1\nkind: FluxInstance\nmetadata:\n  name: flux\n  namespace: flux-system\n\
         spec:\n  sync:\n    kind: GitRepository\n    url: ssh://git@github.com/example/home-ops.git\n    path: kubernetes/cluster\n",
    )
    .write(
        "kubernetes/cluster/apps.yaml",
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: home\n  namespace: flux-system\n\
         spec:\n  url: https://github.com/example/home-ops\n  ref:\n    branch: main\n---\n\
         apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: app\n  namespace: flux-system\n\
         spec:\n  path: ./kubernetes/app\n  sourceRef:\n    kind: GitRepository\n    name: home\n",
    )
    .write("kubernetes/app/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- cm.yaml\n")
    .write("kubernetes/app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: shop\ndata:\n  a: b\n");
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "GitRepository flux-system/home (https://github.com/example/home-ops, kubernetes/cluster/apps.yaml) taken as \
             this repository"
        ),
        "{}",
        run.stderr
    );
    let env = walk(&repo.path().join("environments"));
    assert_eq!(env.len(), 1, "{env:?}");
    let name = Path::new(&env[0].0).file_stem().unwrap().to_string_lossy().into_owned();
    let render = repo.weaver(&["render", "--env", &name, "-r", "app"]);
    assert_eq!(objects(render.success())[0].0, "ConfigMap/shop/c");
}

#[test]
fn a_component_s_patch_of_a_helm_release_s_values_is_converted_as_flux_builds_it() {
    let repo = Repo::empty();
    write_web_chart(&repo);
    repo.write("clusters/dev/app.yaml", &app_kustomization("  components:\n  - ../components/annotated\n"))
        .write(
            "app/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- web.yaml\n",
        )
        .write("app/web.yaml", &web_release("web", "  values:\n    replicas: 2\n"))
        .write(
            "components/annotated/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n- target:\n    kind: HelmRelease\n  \
             patch: |\n    - op: add\n      path: /spec/values/podAnnotations\n      value: {backup: daily}\n",
        );
    let dev = imported_dev(&repo);
    assert!(
        release_text(&dev, "web").contains("  values:\n    replicas: 2\n    podAnnotations:\n      backup: daily\n"),
        "{dev}"
    );
}

#[test]
fn a_flux_instance_s_sync_path_in_a_generated_values_from_config_map_finds_the_cluster() {
    let config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: shop\ndata:\n  a: b\n";
    let repo = Repo::empty();
    repo.write(
        "infra/flux/helmrelease.yaml",
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: flux-instance\n  namespace: flux-system\n\
         spec:\n  chartRef: {kind: OCIRepository, name: flux-instance}\n  valuesFrom:\n  - kind: ConfigMap\n    \
         name: flux-instance-values\n  values:\n    instance:\n      sync:\n        ref: refs/heads/main\n",
    )
    .write(
        "infra/flux/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- helmrelease.yaml\n\
         configMapGenerator:\n- name: flux-instance-values\n  files:\n  - values.yaml=./helm-values.yaml\n  \
         options:\n    disableNameSuffixHash: true\n",
    )
    .write(
        "infra/flux/helm-values.yaml",
        "instance:\n  sync:\n    kind: GitRepository\n    url: https://example.com/fleet.git\n    path: deploy/eu\n",
    )
    // A Kustomization of another path, which is not the cluster's root.
    .write("deploy/eu/apps.yaml", &weaver_test_support::flux::kustomization("apps", "./apps"))
    .write("deploy/eu/infra.yaml", &weaver_test_support::flux::kustomization("infra", "./infra/flux"))
    .write("apps/cm.yaml", config_map);
    let run = repo.weaver(&["import", "flux"]);
    assert!(
        run.stderr.contains(
            "cluster deploy/eu → environments/eu.yaml: a flux-instance HelmRelease's instance.sync.path \
             (in its valuesFrom ConfigMap) (infra/flux/helmrelease.yaml)"
        ),
        "{}",
        run.stderr
    );
    let eu = std::fs::read_to_string(repo.path().join("environments/eu.yaml")).unwrap();
    assert!(eu.contains("- name: apps\n"), "{eu}");

    // A FluxInstance written as it is wins over the chart's values (a repository moving to the
    // chart may hold a HelmRelease no Kustomization applies yet).
    repo.write(
        "infra/instance.yaml",
        "apiVersion: fluxcd.controlplane.io/v1\nkind: FluxInstance\nmetadata:\n  name: flux\n  namespace: flux-system\n\
         spec:\n  sync:\n    kind: GitRepository\n    url: https://example.com/fleet.git\n    path: deploy/us\n",
    )
    .write("deploy/us/apps.yaml", &weaver_test_support::flux::kustomization("apps", "./apps"));
    let run = repo.weaver(&["import", "flux", "--force"]);
    let clusters: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("cluster ")).collect();
    assert_eq!(
        clusters,
        ["cluster deploy/us → environments/us.yaml: a FluxInstance's spec.sync.path (infra/instance.yaml)"],
        "{}",
        run.stderr
    );
}

#[test]
fn a_component_s_oci_repository_patched_in_every_namespace_serves_each_namespace_s_chart_refs() {
    let repo = Repo::empty();
    // The shape of Diaoul/home-ops: `apps` has patches (for its child Kustomizations) and builds
    // namespace kustomizations that each add one component holding the OCIRepository
    // `app-template`, one file built once per namespace; each namespace's HelmRelease names it.
    repo.write(
        "clusters/dev/apps.yaml",
        &format!(
            "{}  patches:\n  - patch: |-\n      apiVersion: kustomize.toolkit.fluxcd.io/v1\n      kind: Kustomization\n      \
             metadata:\n        name: _\n        labels:\n          patched: 'yes'\n    target:\n      kind: Kustomization\n",
            weaver_test_support::flux::kustomization("apps", "./apps")
        ),
    )
    .write(
        "components/common/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n- oci.yaml\n",
    )
    .write(
        "components/common/oci.yaml",
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata:\n  name: app-template\nspec:\n  \
         ref:\n    tag: 4.2.0\n  url: oci://ghcr.io/example/app-template\n",
    );
    // team pins its own tag: each HelmRelease takes its namespace's OCIRepository.
    let team_tag = "patches:\n- target:\n    kind: OCIRepository\n  patch: |\n    - op: replace\n      path: /spec/ref/tag\n      \
                    value: 4.3.0\n";
    for (namespace, app, patches) in [("shop", "web", ""), ("team", "api", team_tag)] {
        repo.write(
            &format!("apps/{namespace}/kustomization.yaml"),
            &format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: {namespace}\n\
                 components:\n- ../../components/common\nresources:\n- {app}/ks.yaml\n{patches}"
            ),
        )
        .write(
            &format!("apps/{namespace}/{app}/ks.yaml"),
            &format!(
                "{}  targetNamespace: {namespace}\n",
                weaver_test_support::flux::kustomization(app, &format!("./apps/{namespace}/{app}/app"))
            ),
        )
        .write(
            &format!("apps/{namespace}/{app}/app/kustomization.yaml"),
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- helmrelease.yaml\n",
        )
        .write(
            &format!("apps/{namespace}/{app}/app/helmrelease.yaml"),
            &format!(
                "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: {app}\nspec:\n  \
                 chartRef:\n    kind: OCIRepository\n    name: app-template\n"
            ),
        );
    }
    let run = repo.weaver(&["import", "flux"]);
    assert!(!run.stderr.contains("not an OCIRepository"), "{}", run.stderr);
    let dev = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
    for (namespace, app, version) in [("shop", "web", "4.2.0"), ("team", "api", "4.3.0")] {
        assert_eq!(
            release_text(&dev, app),
            format!(
                "{app}\n  chart: oci://ghcr.io/example/app-template\n  version: '{version}'\n  namespace: {namespace}\n"
            ),
            "{dev}"
        );
    }
}

/// A child Kustomization's `substitute` value keeping a variable of its parent's that the import
/// cannot read (`HOST: web.${DOMAIN}`, DOMAIN a Secret's of the cluster) is not known either:
/// the HelmRelease using `${HOST}` is written `installed: false` and listed with where HOST
/// comes from, never installed with `web.${DOMAIN}` in its values.
#[test]
fn a_variable_keeping_a_variable_of_an_unread_secret_leaves_its_helm_release_not_installed() {
    let repo = Repo::empty();
    write_web_chart(&repo);
    let post_build = |post: &str| format!("  postBuild:\n{post}");
    repo.write(
        "clusters/dev/apps.yaml",
        &(weaver_test_support::flux::kustomization("apps", "./apps")
            + &post_build("    substituteFrom:\n    - {kind: Secret, name: cluster-secrets}\n")),
    )
    .write(
        "apps/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- web.yaml\n",
    )
    .write(
        "apps/web.yaml",
        &(weaver_test_support::flux::kustomization("web", "./web")
            + &post_build("    substitute:\n      HOST: web.${DOMAIN}\n")),
    )
    .write(
        "web/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- web.yaml\n",
    )
    .write("web/web.yaml", &web_release("web", "  values:\n    host: ${HOST}\n"));
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "not converted: web/web.yaml:15: HelmRelease shop/web: variable HOST: its Kustomization's \
             postBuild.substitute gives it as `web.${DOMAIN}`: its `${DOMAIN}` is kept, as Flux substitutes it from \
             Secret flux-system/cluster-secrets (its Kustomization's substituteFrom), which the import does not read: \
             kept as `${HOST}` and the release written `installed: false`"
        ),
        "{}",
        run.stderr
    );
    let dev = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
    assert!(release_text(&dev, "web").contains("  installed: false\n"), "{dev}");
    assert_eq!(repo.weaver(&["render", "--env", "dev", "-r", "web"]).success(), "");
}

/// A `valuesFrom` file whose last block scalar ends the file without a line break (a
/// configMapGenerator's `files:`) reaches the chart as Flux passes it: without one.
#[test]
fn a_values_from_block_scalar_ending_its_file_gains_no_line_break() {
    let repo = Repo::empty();
    write_web_chart(&repo);
    repo.write(
        "clusters/dev/web.yaml",
        &web_release("web", "  valuesFrom:\n  - {kind: ConfigMap, name: web-values}\n"),
    )
    .write(
        "clusters/dev/kustomization.yaml",
        "resources: [web.yaml]\nconfigMapGenerator:\n- {name: web-values, namespace: shop, files: [values.yaml]}\n\
             generatorOptions: {disableNameSuffixHash: true}\n",
    )
    .write("clusters/dev/values.yaml", "config: |\n  line1\n  line2");
    let dev = imported_dev(&repo);
    assert!(release_text(&dev, "web").contains("  values:\n    config: |-\n      line1\n      line2\n"), "{dev}");
    let render = repo.weaver(&["render", "--env", "dev", "-r", "web"]);
    let web = &objects(render.success())[0].1;
    assert_eq!(web["data"]["values"], json!("{\"config\":\"line1\\nline2\"}"), "{}", render.stdout);
}

/// Flux itself is not converted: the flux-operator and flux-instance charts' HelmReleases (by
/// chart name, or their OCIRepository's URL), a FluxInstance and gotk-components.yaml are each
/// listed, with why, and no release is made of them.
#[test]
fn flux_s_own_operator_instance_and_controllers_are_left_out_and_listed() {
    let repo = Repo::empty();
    repo.write(
        "clusters/dev/flux.yaml",
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: cp, namespace: flux-system}\n\
         spec: {type: oci, url: oci://ghcr.io/controlplaneio-fluxcd/charts}\n---\n\
         apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: flux-operator, namespace: flux-system}\n\
         spec:\n  chart:\n    spec:\n      chart: flux-operator\n      sourceRef: {kind: HelmRepository, name: cp}\n---\n\
         apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata: {name: instance, namespace: flux-system}\n\
         spec:\n  url: oci://ghcr.io/controlplaneio-fluxcd/charts/flux-instance\n  ref: {semver: '*'}\n---\n\
         apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: flux, namespace: flux-system}\n\
         spec:\n  chartRef: {kind: OCIRepository, name: instance}\n  values:\n    instance: {distribution: {version: 2.x}}\n---\n\
         apiVersion: fluxcd.controlplane.io/v1\nkind: FluxInstance\nmetadata: {name: flux, namespace: flux-system}\n\
         spec:\n  sync: {kind: GitRepository, url: 'https://example.com/fleet.git', path: clusters/dev}\n",
    )
    .write(
        "clusters/dev/flux-system/gotk-components.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n",
    );
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let listed = common::not_converted(&run.stderr);
    let itself = "not converted: weaver applies from your pipeline (or its operator, `weaver operator`), not through \
                  Flux's controllers";
    assert_eq!(
        listed,
        [
            format!(
                "not converted: clusters/dev/flux-system/gotk-components.yaml:1: Flux's own controllers and CRDs: {itself}"
            ),
            format!(
                "not converted: clusters/dev/flux.yaml:6: HelmRelease flux-system/flux-operator (chart flux-operator): \
                 Flux itself: {itself}; converted, it would install a second Flux syncing this repository"
            ),
            format!(
                "not converted: clusters/dev/flux.yaml:22: HelmRelease flux-system/flux (chart \
                 oci://ghcr.io/controlplaneio-fluxcd/charts/flux-instance): Flux itself: {itself}; converted, it would \
                 install a second Flux syncing this repository"
            ),
            format!("not converted: clusters/dev/flux.yaml:30: FluxInstance flux-system/flux (Flux itself): {itself}"),
        ],
        "{}",
        run.stderr
    );
    let dev = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
    assert!(!dev.contains("flux-operator") && !dev.contains("flux-instance"), "{dev}");
}

/// A HelmRelease whose chart directory does not exist, or that names no chart, is listed (exit
/// 2) saying so, and not converted.
#[test]
fn a_helm_release_of_a_missing_chart_directory_or_without_a_chart_is_listed() {
    let repo = Repo::empty();
    write_web_chart(&repo);
    let missing = web_release("gone", "").replace("./charts/web", "./charts/gone");
    let unnamed = web_release("unnamed", "").replace("      chart: ./charts/web\n", "");
    repo.write("clusters/dev/gone.yaml", &missing).write("clusters/dev/unnamed.yaml", &unnamed);
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "not converted: clusters/dev/gone.yaml:7: HelmRelease shop/gone: chart ./charts/gone: no such directory in \
             the repository: not converted\n"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "not converted: clusters/dev/unnamed.yaml:7: HelmRelease shop/unnamed: chart: names no chart (neither \
             `spec.chart.spec.chart` nor `spec.chartRef`): not converted\n"
        ),
        "{}",
        run.stderr
    );
    let dev = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
    assert!(!dev.contains("gone") && !dev.contains("unnamed"), "{dev}");
}

/// A repository laid out as many home clusters are (the cluster's Kustomization builds
/// `kubernetes/apps`, each app's `ks.yaml` names its directory by an absolute `spec.path`):
/// Flux resolves an absolute path inside the repository, and so does the import; the app's
/// HelmRelease and its OCIRepository chart are converted, nothing is said to leave the
/// repository.
#[test]
fn an_absolute_kustomization_path_starts_at_the_repository_root() {
    let repo = Repo::empty();
    repo.write("kubernetes/flux/cluster/ks.yaml", &weaver_test_support::flux::kustomization("cluster-apps", "./kubernetes/apps"))
        .write(
            "kubernetes/apps/default/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: default\nresources:\n- ./echo/ks.yaml\n",
        )
        .write(
            "kubernetes/apps/default/echo/ks.yaml",
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: &app echo\n  \
             namespace: &namespace default\nspec:\n  commonMetadata:\n    labels:\n      app.kubernetes.io/name: *app\n  \
             interval: 1h\n  path: /kubernetes/apps/default/echo/app\n  prune: true\n  sourceRef:\n    \
             kind: GitRepository\n    name: flux-system\n    namespace: flux-system\n  targetNamespace: *namespace\n",
        )
        .write(
            "kubernetes/apps/default/echo/app/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ./helmrelease.yaml\n",
        )
        .write(
            "kubernetes/apps/default/echo/app/helmrelease.yaml",
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata:\n  name: echo\nspec:\n  \
             ref:\n    tag: 4.0.1\n  url: oci://ghcr.io/bjw-s-labs/helm/app-template\n---\n\
             apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: echo\nspec:\n  \
             chartRef:\n    kind: OCIRepository\n    name: echo\n  values:\n    replicas: 2\n",
        );
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(!run.stderr.contains("leaves the repository"), "{}", run.stderr);
    let env = std::fs::read_to_string(repo.path().join("environments/default.yaml")).unwrap();
    assert!(
        env.contains(
            "- name: echo\n  chart: oci://ghcr.io/bjw-s-labs/helm/app-template\n  version: '4.0.1'\n  namespace: default\n  \
             values:\n    replicas: 2\n"
        ),
        "{env}"
    );
}

/// A `clusters/` whose first cluster was bootstrapped (`flux-system/` committed) and whose
/// second was not: the second is not taken, and a line says so and how to import it, which
/// imports it.
#[test]
fn a_cluster_directory_without_flux_system_is_said_not_imported() {
    let repo = Repo::empty();
    let config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: shop\ndata:\n  a: b\n";
    repo.write("clusters/prod/flux-system/gotk-sync.yaml", &SYNC.replace("CLUSTER", "prod"))
        .write("clusters/prod/apps.yaml", &weaver_test_support::flux::kustomization("apps", "./apps"))
        .write("clusters/staging/apps.yaml", &weaver_test_support::flux::kustomization("apps", "./apps"))
        .write("apps/cm.yaml", config_map);
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!repo.path().join("environments/staging.yaml").exists(), "{}", run.stdout);
    assert!(
        run.stderr.lines().any(|l| l
            == "not imported: clusters/staging holds Flux objects but no bootstrap (no flux-system/ Kustomization, \
                FluxInstance or Kustomization of its path was found): `weaver import flux --clusters clusters` imports \
                every directory of clusters as a cluster, this one included"),
        "{}",
        run.stderr
    );
    let every = repo.weaver(&["import", "flux", "--clusters", "clusters", "--force"]);
    assert_eq!(every.code, 0, "{}", every.stderr);
    let staging = std::fs::read_to_string(repo.path().join("environments/staging.yaml")).unwrap();
    assert!(staging.contains("- name: apps\n"), "{staging}");

    // The Flux repository in a directory of the weaver repository: the directory is named as a
    // path of the repository, `--clusters` from the Flux repository's root, as it takes it.
    let repo = Repo::empty();
    let sync = SYNC.replace("./clusters/CLUSTER", "./clusters/prod");
    repo.write("fleet/clusters/prod/flux-system/gotk-sync.yaml", &sync)
        .write("fleet/clusters/prod/apps.yaml", &weaver_test_support::flux::kustomization("apps", "./apps"))
        .write("fleet/clusters/staging/apps.yaml", &weaver_test_support::flux::kustomization("apps", "./apps"))
        .write("fleet/apps/cm.yaml", config_map);
    let fleet = repo.path().join("fleet").display().to_string();
    let run = repo.weaver(&["import", "flux", &fleet]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "not imported: fleet/clusters/staging holds Flux objects but no bootstrap (no flux-system/ Kustomization, \
             FluxInstance or Kustomization of its path was found): `weaver import flux --clusters clusters` imports \
             every directory of fleet/clusters as a cluster, this one included"
        ),
        "{}",
        run.stderr
    );
    let every = repo.weaver(&["import", "flux", &fleet, "--clusters", "clusters", "--force"]);
    assert_eq!(every.code, 0, "{}", every.stderr);
    assert!(repo.path().join("environments/staging.yaml").exists(), "{}", every.stdout);
}

/// `import flux` where no file holds a Flux object, nor does a cluster's directory apply
/// anything (the repository's root, or a directory of it): refused, naming the directory as
/// given, and nothing is written.
#[test]
fn a_directory_without_flux_objects_is_refused_and_nothing_written() {
    let repo = Repo::empty();
    repo.write("docs/README.md", "# notes\n")
        .write("values.yaml", "replicas: 2\n")
        .write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n");
    let before = common::fs::digests(repo.path());
    let (root, docs) = (repo.path().display().to_string(), repo.path().join("docs").display().to_string());
    for (args, named) in [(&["import", "flux"][..], &root), (&["import", "flux", &docs][..], &docs)] {
        let run = repo.weaver(args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.starts_with(&format!(
                "error: {named}: no Flux objects were found under this directory (no YAML file holds an object of a \
                 *.fluxcd.io API), nor anything a cluster's directory applies: nothing to import, nothing was written"
            )),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(run.stdout, "");
        assert_eq!(common::fs::digests(repo.path()), before, "{args:?}: nothing written");
    }
}

/// What many objects leave out for one reason (a setting of every HelmRelease) is said once,
/// above each place, after what is said of one object; every place is still listed, and the
/// last line counts both. `-o json` lists every place with its reason.
#[test]
fn what_is_left_out_for_one_reason_is_grouped_under_it_after_the_rest() {
    let repo = Repo::empty();
    write_web_chart(&repo);
    let release = |name: &str| web_release(name, "  install:\n    remediation:\n      retries: 3\n");
    repo.write("clusters/dev/apps.yaml", &weaver_test_support::flux::kustomization("apps", "./apps"))
        .write("apps/a.yaml", &release("a"))
        .write("apps/b.yaml", &release("b"))
        .write("apps/c.yaml", &release("c"))
        .write(
            "apps/alert.yaml",
            "apiVersion: notification.toolkit.fluxcd.io/v1beta3\nkind: Alert\nmetadata:\n  name: slack\n  namespace: shop\n",
        );
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let listed: Vec<&str> = run.stderr.lines().skip_while(|l| !l.starts_with("not converted")).collect();
    assert!(listed[0].starts_with("not converted: apps/alert.yaml:1: Alert shop/slack: "), "{}", run.stderr);
    assert!(listed[1].starts_with("not converted, 3 times: not supported: "), "{}", run.stderr);
    let places: Vec<&str> = listed[2..5].iter().map(|l| l.split(": ").next().unwrap()).collect();
    assert_eq!(places, ["  apps/a.yaml:14", "  apps/b.yaml:14", "  apps/c.yaml:14"], "{}", run.stderr);
    assert!(listed[2].ends_with(": HelmRelease shop/a: install (remediation)"), "{}", run.stderr);
    assert!(
        listed.last().unwrap().starts_with("4 things were not converted, for 2 reasons (listed above)"),
        "{}",
        run.stderr
    );
    let json = repo.weaver(&["import", "flux", "--force", "-o", "json"]);
    assert_eq!(json.code, 2, "{}", json.stderr);
    let document: Value = serde_json::from_str(&json.stdout).unwrap();
    let places: Vec<(&str, u64, &str)> = document["notConverted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["file"].as_str().unwrap(), l["line"].as_u64().unwrap(), l["what"].as_str().unwrap()))
        .collect();
    assert_eq!(
        places,
        [
            ("apps/a.yaml", 14, "HelmRelease shop/a: install (remediation)"),
            ("apps/alert.yaml", 1, "Alert shop/slack"),
            ("apps/b.yaml", 14, "HelmRelease shop/b: install (remediation)"),
            ("apps/c.yaml", 14, "HelmRelease shop/c: install (remediation)"),
        ]
    );
    assert!(document["notConverted"][0]["why"].as_str().unwrap().starts_with("not supported: "), "{}", json.stdout);
    assert_eq!(document["written"][0], "environments/dev.yaml", "{}", json.stdout);
}

/// Kustomizations whose dependsOn form a cycle give an environment whose `needs` do not load:
/// refused (exit 1) before anything is written, so the repository is left as it was: with no
/// environment yet, and with `--force` over one an earlier import wrote.
#[test]
fn an_environment_that_would_not_load_is_refused_before_anything_is_written() {
    let repo = Repo::empty();
    let config_map =
        |name: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: shop\n");
    let depends_on = |name: &str, on: &str| {
        let kustomization = weaver_test_support::flux::kustomization(name, &format!("./apps/{name}"));
        format!("{kustomization}  dependsOn:\n    - name: {on}\n")
    };
    repo.write("clusters/dev/a.yaml", &weaver_test_support::flux::kustomization("a", "./apps/a"))
        .write("clusters/dev/b.yaml", &weaver_test_support::flux::kustomization("b", "./apps/b"))
        .write("apps/a/cm.yaml", &config_map("a"))
        .write("apps/b/cm.yaml", &config_map("b"));
    // The same repository with a cycle, and without it, for an import to write first.
    let cyclic = |repo: &Repo| {
        repo.write("clusters/dev/a.yaml", &depends_on("a", "b")).write("clusters/dev/b.yaml", &depends_on("b", "a"));
    };
    let fresh = Repo::empty();
    for file in ["apps/a/cm.yaml", "apps/b/cm.yaml"] {
        fresh.write(file, &std::fs::read_to_string(repo.path().join(file)).unwrap());
    }
    cyclic(&fresh);
    let before = common::fs::digests(fresh.path());
    let run = fresh.weaver(&["import", "flux"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(
            "error: environments/dev.yaml: the environment weaver import would write does not load (cycle in `needs`"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("); nothing was written\n"), "{}", run.stderr);
    assert!(run.stderr.contains("its dependsOn in a cycle"), "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(common::fs::digests(fresh.path()), before, "a refused import wrote");

    // Over an import of the repository before the cycle, with --force: nothing replaced.
    let first = repo.weaver(&["import", "flux"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    cyclic(&repo);
    let before = common::fs::digests(repo.path());
    let run = repo.weaver(&["import", "flux", "--force"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("would write does not load (cycle in `needs`"), "{}", run.stderr);
    assert_eq!(common::fs::digests(repo.path()), before, "a refused import changed the repository");
}

/// Label values that are YAML strings looking like other types once unquoted (`"true"`,
/// `"1.0"`, `"08"`, `"null"`, `"yes"`, `"on"`, `"1e3"`, `"0x1F"`), in an object's labels, a
/// kustomization's `commonLabels` and `labels: - pairs:` and a Flux Kustomization's
/// `spec.commonMetadata.labels`, unquoted YAML 1.1 booleans (`yes`, `on`, `off`: strings to
/// kustomize's YAML 1.2 reader) and a `postBuild` variable (`"${APP}"`) in a label: the
/// Kustomization is converted, nothing listed, and its release renders every value as the same
/// string, as `kubectl kustomize` builds the import's kustomization (Flux then substitutes
/// `${APP}`; kubectl does not).
#[test]
fn string_label_values_that_look_like_other_types_are_imported_and_rendered_as_strings() {
    let repo = Repo::empty();
    let common_metadata = "  targetNamespace: shop\n  commonMetadata:\n    labels:\n      \
                           cm-bool: \"true\"\n      cm-float: \"1.0\"\n      cm-octal: \"08\"\n      cm-null: \"null\"\n      \
                           cm-yes: \"yes\"\n      cm-on: \"on\"\n      cm-exp: \"1e3\"\n      cm-hex: \"0x1F\"\n      \
                           app: \"x\"\n  postBuild:\n    substitute:\n      APP: \"x\"\n";
    repo.write(
        "clusters/dev/app.yaml",
        &format!("{}{common_metadata}", weaver_test_support::flux::kustomization("app", "./app")),
    )
    .write(
        "app/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [objects.yaml]\n\
         commonLabels:\n  c-bool: \"true\"\n  c-float: \"1.0\"\n  c-null: \"null\"\n  c-on: \"on\"\n\
         labels:\n- pairs:\n    p-bool: \"true\"\n    p-yes: \"yes\"\n    p-octal: \"010\"\n  includeSelectors: true\n",
    )
    .write(
        "app/objects.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels:\n    bool: \"true\"\n    \
         float: '1.0'\n    octal: \"08\"\n    \"null\": \"null\"\n    exp: \"1e3\"\n    hex: \"0x1F\"\n    \
         quoted-yes: \"yes\"\n    yes: yes\n    on: on\n    off: off\n    sub: \"${APP}\"\ndata:\n  a: b\n",
    );
    let run = repo.weaver(&["import", "flux"]);
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(common::not_converted(&run.stderr).is_empty(), "{}", run.stderr);
    let env = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
    assert!(env.contains("- name: app\n  namespace: shop\n  kustomize: flux-import/dev/app\n"), "{env}");

    let render = repo.weaver(&["render", "--env", "dev", "-r", "app"]);
    let rendered = objects(render.success());
    assert_eq!(rendered.len(), 1, "{}", render.stdout);
    let mut labels = rendered[0].1["metadata"]["labels"].as_object().unwrap().clone();
    for label in ["app.kubernetes.io/managed-by", "weaver.example.com/release", "weaver.example.com/environment"] {
        labels.remove(label);
    }
    let strings = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Vec<_>>();
    let expected: serde_json::Map<String, Value> = strings(&[
        ("bool", "true"),
        ("float", "1.0"),
        ("octal", "08"),
        ("null", "null"),
        ("exp", "1e3"),
        ("hex", "0x1F"),
        ("quoted-yes", "yes"),
        ("yes", "yes"),
        ("on", "on"),
        ("off", "off"),
        ("sub", "x"),
        ("c-bool", "true"),
        ("c-float", "1.0"),
        ("c-null", "null"),
        ("c-on", "on"),
        ("p-bool", "true"),
        ("p-yes", "yes"),
        ("p-octal", "010"),
        ("cm-bool", "true"),
        ("cm-float", "1.0"),
        ("cm-octal", "08"),
        ("cm-null", "null"),
        ("cm-yes", "yes"),
        ("cm-on", "on"),
        ("cm-exp", "1e3"),
        ("cm-hex", "0x1F"),
        ("app", "x"),
    ])
    .into_iter()
    .collect();
    assert_eq!(labels, expected, "{}", render.stdout);

    let Ok((kubectl, _)) = common::tools::kubectl_kustomize_v5() else {
        common::interop_available("kubectl kustomize v5", false);
        return;
    };
    let built = weaver_test_support::kubectl::command(kubectl)
        .args(["kustomize", "flux-import/dev/app"])
        .current_dir(repo.path())
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let kubectl_objects = objects(&String::from_utf8(built.stdout).unwrap());
    let mut kubectl_labels = kubectl_objects[0].1["metadata"]["labels"].as_object().unwrap().clone();
    assert_eq!(kubectl_labels.insert("sub".into(), json!("x")), Some(json!("${APP}")));
    assert_eq!(labels, kubectl_labels, "as kubectl kustomize builds it");
}
