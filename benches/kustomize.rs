//! Weaver against `kubectl kustomize` on a corpus of kustomizations. Targets (the issues'
//! acceptance), on a 2-core machine, against `kubectl kustomize DIR` run once per directory:
//! weaver rendering every kustomization directory as a release, one process per environment, at
//! least 10× faster in total; and one weaver process per directory, as a pipeline that renders
//! each directory on its own runs it, at least 12× faster. weaver's peak RSS is reported.
//!
//! `WEAVER_BENCH_KUSTOMIZE_CORPUS=/tmp/kcorpus cargo bench --bench kustomize` builds every
//! directory holding a kustomization in each repository of a corpus that
//! `tools/kustomize_corpus.py build` made; without it, generated kustomizations (a base and an
//! overlay with a prefix, labels, a patch, a generator, images and a replacement, each).
//! kubectl is `$WEAVER_KUBECTL`, else `kubectl` on PATH; without one only weaver is timed.
//!
//! Only directories both build are compared: those kubectl refuses are dropped, then those
//! weaver refuses, each named. Each repository of the corpus is its own weaver repository (its
//! kustomizations name files across it). Directories that build the same object (a CRD, one
//! base built alone and through an overlay without a namespace) cannot share an environment:
//! the later one moves to the next, and weaver's time is the sum of one process per
//! environment.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const GENERATED: usize = 100;
const RUNS: usize = 5;
const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// One kustomization directory, release `rel-<id>` in namespace `ns-<id>`.
struct Directory {
    /// Relative to its repository.
    path: String,
    id: usize,
    kubectl: Duration,
    objects: usize,
    /// `weaver render` of this directory alone, one process as kubectl's.
    weaver_alone: Duration,
}

fn main() {
    let generated = tempfile::tempdir().unwrap();
    let corpus = match std::env::var_os("WEAVER_BENCH_KUSTOMIZE_CORPUS") {
        Some(dir) => {
            println!("corpus: {} (WEAVER_BENCH_KUSTOMIZE_CORPUS)", dir.to_string_lossy());
            PathBuf::from(dir)
        }
        None => {
            generate(&generated.path().join("generated"), GENERATED);
            println!(
                "corpus: {GENERATED} generated base-and-overlay pairs: WEAVER_BENCH_KUSTOMIZE_CORPUS is not set; \
                 point it at a corpus of real kustomizations from tools/kustomize_corpus.py build"
            );
            generated.path().to_path_buf()
        }
    };
    let kubectl = match find_kubectl() {
        Ok(kubectl) => Some(kubectl),
        Err(why) => {
            println!("kubectl: {why}; timing weaver only");
            None
        }
    };
    let mut repos: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap_or_else(|e| panic!("{}: {e}", corpus.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    repos.sort();

    let (mut weaver_total, mut kubectl_total, mut peak_rss) = (Duration::ZERO, Duration::ZERO, 0u64);
    let mut weaver_alone_total = Duration::ZERO;
    let (mut compared, mut weaver_objects, mut kubectl_objects, mut environments) = (0, 0, 0, 0);
    for source in &repos {
        let repo = tempfile::tempdir().unwrap();
        support::fs::copy_dir(source, repo.path());
        let name = source.file_name().unwrap().to_string_lossy().into_owned();
        let mut dirs: Vec<Directory> = kustomizations(repo.path())
            .into_iter()
            .enumerate()
            .map(|(id, path)| Directory { path, id, kubectl: Duration::ZERO, objects: 0, weaver_alone: Duration::ZERO })
            .collect();
        if let Some(kubectl) = &kubectl {
            // A first pass drops what kubectl refuses and warms the page cache; the second is timed.
            dirs.retain(|dir| kustomize(kubectl, repo.path(), dir).output.status.success());
            for dir in &mut dirs {
                let run = kustomize(kubectl, repo.path(), dir);
                assert!(run.output.status.success(), "kubectl kustomize {} failed on the second pass", dir.path);
                dir.kubectl = run.wall;
                dir.objects = support::objects(&run.output.stdout);
            }
        }
        std::fs::create_dir_all(repo.path().join("environments")).unwrap();
        let repo_arg = repo.path().to_str().unwrap();
        let render =
            |env: &str| support::run(Command::new(support::WEAVER).args(support::reference_render_args(repo_arg, env)));
        dirs.retain_mut(|dir| {
            write_env(repo.path(), "alone", std::slice::from_ref(dir));
            let run = render("alone");
            dir.weaver_alone = run.wall;
            if !run.output.status.success() {
                let stderr = String::from_utf8_lossy(&run.output.stderr);
                let first = stderr.lines().find(|line| !line.trim().is_empty()).unwrap_or_default();
                println!("weaver refuses {name}:{} (dropped): {first}", dir.path);
            }
            run.output.status.success()
        });
        if dirs.is_empty() {
            continue;
        }
        compared += dirs.len();
        kubectl_total += dirs.iter().map(|dir| dir.kubectl).sum::<Duration>();
        weaver_alone_total += dirs.iter().map(|dir| dir.weaver_alone).sum::<Duration>();
        kubectl_objects += dirs.iter().map(|dir| dir.objects).sum::<usize>();
        let groups = support::split_until_rendered(
            dirs,
            |dir| dir.id,
            |env, group| write_env(repo.path(), env, group),
            render,
            |_, _| {},
        );
        environments += groups.len();
        for group in 0..groups.len() {
            let timed = support::time_weaver(&support::reference_render_args(repo_arg, &format!("all-{group}")), RUNS);
            weaver_total += timed.median();
            peak_rss = peak_rss.max(timed.peak_rss);
            weaver_objects += support::objects(&timed.stdout);
        }
    }
    println!(
        "weaver render, one process per environment ({environments} environments over {} repositories) for all \
         {compared} directories both build: {} (sum of medians of {RUNS} runs), {:.1} ms per directory, peak RSS \
         {:.1} MB, {weaver_objects} objects",
        repos.len(),
        support::ms(weaver_total),
        weaver_total.as_secs_f64() * 1000.0 / compared.max(1) as f64,
        peak_rss as f64 / 1e6
    );
    if kubectl.is_some() && compared > 0 {
        println!(
            "kubectl kustomize, one process per directory (warm page cache): {}, {:.1} ms per directory, {kubectl_objects} objects",
            support::ms(kubectl_total),
            kubectl_total.as_secs_f64() * 1000.0 / compared as f64
        );
        println!("kubectl/weaver: {:.1}× (target ≥ 10×)", kubectl_total.as_secs_f64() / weaver_total.as_secs_f64());
        println!(
            "one process per directory, as kubectl runs: weaver {} ({:.1} ms per directory), kubectl/weaver {:.1}× (target ≥ 12×)",
            support::ms(weaver_alone_total),
            weaver_alone_total.as_secs_f64() * 1000.0 / compared as f64,
            kubectl_total.as_secs_f64() / weaver_alone_total.as_secs_f64().max(f64::EPSILON)
        );
    }
}

/// Every directory under `repo` holding a kustomization, relative to it, sorted.
fn kustomizations(repo: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![repo.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.map(Result::unwrap) {
            let path = entry.path();
            let skipped = matches!(entry.file_name().to_str(), Some(".git" | "node_modules" | "vendor"));
            if entry.file_type().unwrap().is_dir() && !skipped {
                stack.push(path);
            }
        }
        if KUSTOMIZATION_FILES.iter().any(|file| dir.join(file).is_file()) && dir != repo {
            found.push(dir.strip_prefix(repo).unwrap().to_string_lossy().into_owned());
        }
    }
    found.sort();
    found
}

fn kustomize(kubectl: &Path, repo: &Path, dir: &Directory) -> support::Run {
    support::run(Command::new(kubectl).arg("kustomize").arg(repo.join(&dir.path)))
}

/// kubectl with kustomize v5 (tests/common/tools.rs), named with that version.
fn find_kubectl() -> Result<PathBuf, String> {
    let (kubectl, version) = support::tools::kubectl_kustomize_v5()?;
    println!("kubectl: {} (kustomize {version})", kubectl.display());
    Ok(kubectl)
}

/// environments/<env>.yaml with one release per directory.
fn write_env(repo: &Path, env: &str, dirs: &[Directory]) {
    let mut text = String::from("releases:\n");
    for dir in dirs {
        text.push_str(&format!(
            "  - name: rel-{}\n    kustomize: {}\n    namespace: ns-{}\n",
            dir.id,
            serde_json::to_string(&dir.path).unwrap(),
            dir.id
        ));
    }
    std::fs::write(repo.join(format!("environments/{env}.yaml")), text).unwrap();
}

/// `count` pairs of a base (Deployment, Service, ConfigMap) and an overlay (namespace, prefix,
/// labels, a strategic merge patch, a ConfigMap generator, an image and a replacement).
fn generate(repo: &Path, count: usize) {
    let write = |path: &str, text: &str| {
        let path = repo.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    for i in 0..count {
        write(
            &format!("app-{i}/base/kustomization.yaml"),
            "resources:\n  - deployment.yaml\n  - service.yaml\n  - config.yaml\n",
        );
        write(
            &format!("app-{i}/base/deployment.yaml"),
            &format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: app-{i}}}\n  template:\n    metadata:\n      labels: {{app: app-{i}}}\n    spec:\n      containers:\n        - name: app\n          image: nginx:1.25\n          envFrom:\n            - configMapRef: {{name: config-{i}}}\n"
            ),
        );
        write(
            &format!("app-{i}/base/service.yaml"),
            &format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: app-{i}\nspec:\n  selector: {{app: app-{i}}}\n  ports:\n    - port: 80\n"
            ),
        );
        write(
            &format!("app-{i}/base/config.yaml"),
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{i}\ndata:\n  replicas: \"3\"\n"),
        );
        write(
            &format!("app-{i}/overlay/kustomization.yaml"),
            &format!(
                "resources: [../base]\nnamespace: overlay-{i}\nnamePrefix: prod-\nlabels:\n  - pairs: {{env: prod}}\n    includeSelectors: true\n\
                 patches:\n  - path: patch.yaml\nconfigMapGenerator:\n  - name: settings\n    literals: [mode=prod, index={i}]\n\
                 images:\n  - name: nginx\n    newTag: \"1.27\"\nreplacements:\n  - source: {{kind: ConfigMap, name: config-{i}, fieldPath: data.replicas}}\n    targets:\n      - select: {{kind: Deployment}}\n        fieldPaths: [spec.replicas]\n"
            ),
        );
        write(
            &format!("app-{i}/overlay/patch.yaml"),
            &format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          resources: {{limits: {{memory: 128Mi}}}}\n"
            ),
        );
    }
}
