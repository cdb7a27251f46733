//! `weaver init`: a new repository that renders right away with the age key it wrote (0600,
//! outside the repository, never printed), its secrets decrypting into the rendered Secret;
//! never a file replaced, and every refusal made before anything is written.

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::Run;

/// A user's machine: a home of its own and a directory to make repositories in.
struct Machine {
    home: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Machine {
    fn new() -> Machine {
        Machine { home: tempfile::tempdir().unwrap(), work: tempfile::tempdir().unwrap() }
    }

    fn config(&self) -> PathBuf {
        self.home.path().join(".config")
    }

    /// sops's key file, where a first key goes.
    fn sops_keys(&self) -> PathBuf {
        self.config().join("sops/age/keys.txt")
    }

    fn repo(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// weaver with this machine's home, in `repo` (`--repo`), with `extra` variables.
    fn weaver_with(&self, repo: &Path, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let home = self.home.path().to_str().unwrap();
        let config = self.config();
        let mut envs = vec![("HOME", home), ("XDG_CONFIG_HOME", config.to_str().unwrap())];
        envs.extend_from_slice(extra);
        common::weaver_in(repo, args, &envs)
    }

    fn weaver(&self, repo: &Path, args: &[&str]) -> Run {
        self.weaver_with(repo, args, &[])
    }

    /// `weaver init DIR ARGS…`.
    fn init(&self, dir: &Path, args: &[&str]) -> Run {
        let mut all = vec!["init", dir.to_str().unwrap()];
        all.extend_from_slice(args);
        self.weaver(self.work.path(), &all)
    }
}

/// Every file below `dir` with its bytes (an absent `dir` is empty).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&at) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.insert(path.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// The secret key line of an age key file.
fn secret_key(key_file: &Path) -> String {
    let text = std::fs::read_to_string(key_file).unwrap();
    text.lines()
        .find(|line| line.starts_with(weaver_secrets::SECRET_KEY_PREFIX))
        .expect("a secret key line")
        .to_string()
}

/// The `age:` recipients of the repository's `.sops.yaml`.
fn sops_recipients(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join(".sops.yaml")).unwrap();
    let rules: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    rules["creation_rules"][0]["age"].as_str().expect("a rule with age recipients").to_string()
}

/// The password the environment's secrets file holds, decrypted by `weaver secrets decrypt`.
fn password(machine: &Machine, dir: &Path, extra: &[(&str, &str)]) -> String {
    let file = dir.join("secrets/dev.yaml");
    let decrypted = machine.weaver_with(dir, &["secrets", "decrypt", file.to_str().unwrap()], extra);
    let plain: serde_json::Value = serde_saphyr::from_str(decrypted.success()).unwrap();
    plain["app"]["password"].as_str().expect("app.password").to_string()
}

const SKELETON: [&str; 10] = [
    ".sops.yaml",
    "weaver.yaml",
    "environments/base.yaml",
    "environments/dev.yaml",
    "charts/app/chart.yaml",
    "charts/app/values.yaml",
    "charts/app/templates/configmap.yaml",
    "charts/app/templates/secret.yaml",
    ".github/workflows/weaver.yml",
    "secrets/dev.yaml",
];

#[test]
fn a_new_repository_renders_with_the_key_init_wrote_outside_it() {
    let machine = Machine::new();
    let dir = machine.repo("team-deploy");
    let run = machine.init(&dir, &[]);
    let stdout = run.success();
    for file in SKELETON {
        assert!(stdout.contains(&format!("wrote {file}\n")), "{file} not listed:\n{stdout}");
        assert!(dir.join(file).is_file(), "{file} not written");
    }

    // The key: sops's key file (there was none), 0600 from its creation, outside the repository.
    let key_file = machine.sops_keys();
    let mode = std::fs::metadata(&key_file).expect("the key file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", key_file.display());
    assert!(!key_file.starts_with(&dir));
    let key = secret_key(&key_file);
    assert!(snapshot(&dir).values().all(|bytes| !String::from_utf8_lossy(bytes).contains(&key)));
    // Its recipient is .sops.yaml's, and the secrets file is encrypted to it.
    let recipient = sops_recipients(&dir);
    assert!(
        run.stderr.contains(&format!("its public key {recipient} is the recipient in .sops.yaml")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&key_file.display().to_string()), "{}", run.stderr);
    let encrypted = std::fs::read_to_string(dir.join("secrets/dev.yaml")).unwrap();
    assert!(encrypted.contains(&format!("recipient: {recipient}")), "{encrypted}");

    // Rendered with no flag: the chart's ConfigMap with the environment's values, and the
    // Secret with the value init encrypted, which init itself never printed (nor the key).
    let rendered = machine.weaver(&dir, &["render", "--env", "dev"]);
    let objects = rendered.success();
    assert!(objects.contains("kind: ConfigMap\nmetadata:\n  name: app\n  namespace: dev\n"), "{objects}");
    assert!(objects.contains("GREETING: hello from dev"), "{objects}");
    let password = password(&machine, &dir, &[]);
    assert_eq!(password.len(), 24, "a generated password");
    assert!(!objects.contains(&password), "render redacts it unless asked:\n{objects}");
    let shown = machine.weaver(&dir, &["render", "--env", "dev", "--show-secrets"]);
    assert!(shown.success().contains(&format!("PASSWORD: {password}")), "{}", shown.stdout);
    for output in [&run.stdout, &run.stderr] {
        assert!(!output.contains(&password), "init printed the password:\n{output}");
        assert!(!output.contains(&key), "init printed the key:\n{output}");
    }

    // `weaver secrets encrypt` encrypts a new file to .sops.yaml's recipient, which the key opens.
    let extra = dir.join("secrets/extra.yaml");
    std::fs::write(&extra, "token: abc123XYZ789\n").unwrap();
    machine.weaver(&dir, &["secrets", "encrypt", extra.to_str().unwrap()]).success();
    assert!(std::fs::read_to_string(&extra).unwrap().contains(&format!("recipient: {recipient}")));
    let decrypted = machine.weaver(&dir, &["secrets", "decrypt", extra.to_str().unwrap()]);
    assert_eq!(decrypted.success(), "token: abc123XYZ789\n");
}

#[test]
fn json_output_says_what_was_written_and_where_the_key_is() {
    let machine = Machine::new();
    let dir = machine.repo("r");
    let run = machine.init(&dir, &["-o", "json"]);
    let document: serde_json::Value = serde_json::from_str(run.success()).unwrap();
    let key_file = machine.sops_keys();
    let expected = serde_json::json!({
        "schemaVersion": 1,
        "repository": dir,
        "environment": "dev",
        "namespace": "dev",
        "written": SKELETON,
        "recipients": [sops_recipients(&dir)],
        "keyFile": {"path": key_file, "foundByDefault": true},
        "heldKeys": [],
    });
    assert_eq!(document, expected);
    assert!(!run.stdout.contains(&secret_key(&key_file)));

    let other = machine.repo("other");
    let recipient = sops_recipients(&dir);
    let run = machine.init(&other, &["--no-key", "--recipient", &recipient, "-o", "json"]);
    let document: serde_json::Value = serde_json::from_str(run.success()).unwrap();
    assert_eq!(document["keyFile"], serde_json::Value::Null, "{document:#}");
    assert_eq!(document["recipients"], serde_json::json!([recipient]));
}

#[test]
fn the_new_repository_applies_to_a_cluster() {
    let cluster = common::cluster::TestCluster::start();
    // The first environment's namespace, the test's own, which the first apply makes: the
    // lock's Lease is there too.
    let env = "staging";
    let namespace = format!("{}-init", cluster.prefix);
    let namespace_object =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
    cluster.delete_later(&namespace_object);
    let machine = Machine::new();
    let dir = machine.repo("r");
    machine.init(&dir, &["--env", env, "--namespace", &namespace]).success();

    let kubeconfig = cluster.kubeconfig().to_str().unwrap();
    let applied = machine.weaver(&dir, &["--kubeconfig", kubeconfig, "apply", "--env", env]);
    let stderr = applied.stderr.clone();
    let stdout = applied.success();
    assert!(format!("{stdout}{stderr}").contains(&format!("created v1 Namespace {namespace}")), "{stdout}{stderr}");
    let lease = serde_json::json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": format!("weaver-lock-{env}"), "namespace": namespace}});
    assert!(cluster.get(&lease).is_some(), "no Lease in the environment's namespace");
    let ns = namespace.as_str();
    assert!(stdout.contains(&format!("created v1 ConfigMap {ns}/app (release app)")), "{stdout}{stderr}");
    assert!(stdout.contains(&format!("created v1 Secret {ns}/app (release app)")), "{stdout}{stderr}");
    let config_map = cluster
        .get(
            &serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": ns}}),
        )
        .expect("the ConfigMap");
    assert_eq!(config_map["data"]["GREETING"], format!("hello from {env}"));
    let secret = cluster
        .get(&serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app", "namespace": ns}}))
        .expect("the Secret");
    let sent = secret["data"]["PASSWORD"].as_str().expect("PASSWORD");
    let file = dir.join("secrets/staging.yaml");
    let decrypted = machine.weaver(&dir, &["secrets", "decrypt", file.to_str().unwrap()]);
    let plain: serde_json::Value = serde_saphyr::from_str(decrypted.success()).unwrap();
    use base64::Engine;
    let password = plain["app"]["password"].as_str().unwrap();
    assert_eq!(sent, base64::engine::general_purpose::STANDARD.encode(password));
    assert!(!stdout.contains(password) && !stderr.contains(password), "{stdout}{stderr}");
    let drift = machine.weaver(&dir, &["--kubeconfig", kubeconfig, "drift", "--env", "staging"]);
    assert!(drift.success().contains("0 drifted, 0 missing, 2 in sync"), "{}{}", drift.stdout, drift.stderr);
}

#[test]
fn the_ci_workflow_parses_and_gives_the_plan_the_key_only_after_review() {
    let machine = Machine::new();
    let dir = machine.repo("r");
    machine.init(&dir, &[]).success();
    let commands = crate::examples::check_ci_file(&dir.join(".github/workflows/weaver.yml"));
    let has = |parts: &[&str]| commands.iter().any(|c| parts.iter().all(|p| c.contains(p)));
    assert!(has(&["diff", "--rev HEAD", "-o markdown"]), "{commands:#?}");
    assert!(has(&["apply", "--rev HEAD", "--wait"]), "{commands:#?}");

    // The age key reaches the plan of a pull request's templates only through an environment,
    // whose reviewers release it; no job gets it from the workflow's own variables.
    let path = dir.join(".github/workflows/weaver.yml");
    let workflow: serde_json::Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(workflow["env"].get("SOPS_AGE_KEY").is_none(), "{workflow:#}");
    assert_eq!(workflow["jobs"]["plan"]["environment"], "pull-requests", "{workflow:#}");
}

#[test]
fn a_second_init_refuses_naming_every_file_and_changes_nothing() {
    let machine = Machine::new();
    let dir = machine.repo("r");
    machine.init(&dir, &["--key-file", machine.home.path().join("first.txt").to_str().unwrap()]).success();
    let (repo_before, home_before) = (snapshot(&dir), snapshot(machine.home.path()));

    let again = machine.init(&dir, &[]);
    let stderr = again.failure();
    assert!(stderr.starts_with("error: .sops.yaml: already exists (and weaver.yaml, "), "{stderr}");
    for file in SKELETON {
        assert!(stderr.contains(file), "{file} not named:\n{stderr}");
    }
    assert!(stderr.contains("help: weaver init never replaces a file"), "{stderr}");
    assert_eq!(snapshot(&dir), repo_before, "the repository changed");
    assert_eq!(snapshot(machine.home.path()), home_before, "a key was written");
}

#[test]
fn one_existing_file_stops_the_whole_init() {
    let machine = Machine::new();
    let dir = machine.repo("r");
    std::fs::create_dir_all(dir.join("environments")).unwrap();
    std::fs::write(dir.join("environments/dev.yaml"), "namespace: mine\n").unwrap();
    std::fs::write(dir.join("README.md"), "ours\n").unwrap();

    let stderr = machine.init(&dir, &[]).failure().to_string();
    assert!(stderr.starts_with("error: environments/dev.yaml: already exists\n"), "{stderr}");
    let left: Vec<PathBuf> = snapshot(&dir).into_keys().collect();
    assert_eq!(left, [PathBuf::from("README.md"), PathBuf::from("environments/dev.yaml")]);
    assert_eq!(std::fs::read_to_string(dir.join("environments/dev.yaml")).unwrap(), "namespace: mine\n");
    assert!(snapshot(machine.home.path()).is_empty(), "a key was written");
}

#[test]
fn what_stands_in_the_way_stops_the_init_before_the_key_is_written() {
    let machine = Machine::new();
    // A file where a directory of the skeleton goes.
    let dir = machine.repo("r");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("charts"), "not a directory\n").unwrap();
    let stderr = machine.init(&dir, &[]).failure().to_string();
    assert!(stderr.starts_with("error: charts: already exists\n"), "{stderr}");
    // A file where the repository goes.
    let file = machine.repo("file");
    std::fs::write(&file, "not a directory\n").unwrap();
    let stderr = machine.init(&file, &[]).failure().to_string();
    assert!(stderr.contains(&format!("{}: cannot create directory", file.display())), "{stderr}");

    assert_eq!(snapshot(&dir).into_keys().collect::<Vec<_>>(), [PathBuf::from("charts")]);
    assert!(snapshot(machine.home.path()).is_empty(), "a key was written");
}

#[test]
fn a_key_file_inside_the_repository_or_already_there_is_refused() {
    let machine = Machine::new();
    let dir = machine.repo("r");
    let inside = dir.join("keys/age.txt");
    let stderr = machine.init(&dir, &["--key-file", inside.to_str().unwrap()]).failure().to_string();
    assert!(stderr.contains(&format!("--key-file {}: inside the repository", inside.display())), "{stderr}");
    assert!(!dir.exists(), "something was written");

    // Through a link to the repository, too.
    std::fs::create_dir_all(&dir).unwrap();
    let link = machine.work.path().join("link");
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    let through = link.join("age.txt");
    let stderr = machine.init(&dir, &["--key-file", through.to_str().unwrap()]).failure().to_string();
    assert!(stderr.contains("inside the repository"), "{stderr}");

    let existing = machine.home.path().join("mine.txt");
    std::fs::write(&existing, "# a key of the user's\n").unwrap();
    let stderr = machine.init(&dir, &["--key-file", existing.to_str().unwrap()]).failure().to_string();
    assert!(stderr.contains("already exists, and weaver init never replaces a key file"), "{stderr}");
    assert!(stderr.contains("--no-key --recipient"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "# a key of the user's\n");
    assert!(snapshot(&dir).is_empty(), "something was written");
}

/// Runs the `next: …` line init printed, as a user pastes it (variables first), with only
/// this machine's home: whatever it needs to find the key, it says.
fn run_next_step(machine: &Machine, init: &Run, extra: &[(&str, &str)]) -> Run {
    let line = init.stderr.lines().find_map(|l| l.strip_prefix("next: ")).expect("a next step");
    let mut words = line.split(' ');
    let mut variables: Vec<(&str, &str)> = extra.to_vec();
    for word in words.by_ref() {
        match word.split_once('=') {
            Some(variable) => variables.push(variable),
            None => {
                assert_eq!(word, "weaver", "{line}");
                break;
            }
        }
    }
    assert_eq!(words.next(), Some("--repo"), "{line}");
    let repo = PathBuf::from(words.next().expect("the repository"));
    let args: Vec<&str> = words.collect();
    machine.weaver_with(&repo, &args, &variables)
}

#[test]
fn with_a_sops_key_file_holding_no_key_the_new_key_goes_beside_it() {
    let machine = Machine::new();
    let keys = machine.sops_keys();
    std::fs::create_dir_all(keys.parent().unwrap()).unwrap();
    std::fs::write(&keys, "# the user's keys\n").unwrap();
    let dir = machine.repo("shop");

    let run = machine.init(&dir, &[]);
    run.success();
    assert_eq!(std::fs::read_to_string(&keys).unwrap(), "# the user's keys\n", "the user's key file changed");
    let key_file = machine.config().join("weaver/age/shop.txt");
    let mode = std::fs::metadata(&key_file).expect("the key beside sops's").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let next =
        format!("next: WEAVER_AGE_KEY_FILE={} weaver --repo {} render --env dev", key_file.display(), dir.display());
    assert!(run.stderr.lines().any(|l| l == next), "{}", run.stderr);
    // The next step as printed renders; without the variable it could not decrypt.
    assert!(run_next_step(&machine, &run, &[]).success().contains("kind: Secret"));
    machine.weaver(&dir, &["render", "--env", "dev"]).failure();

    // Another repository of that name would take the same file: refused, not replaced.
    let key_before = std::fs::read(&key_file).unwrap();
    let namesake = machine.repo("elsewhere/shop");
    let stderr = machine.init(&namesake, &[]).failure().to_string();
    let expected = format!("the default key file {}: already exists", key_file.display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains("give another --key-file"), "{stderr}");
    assert_eq!(std::fs::read(&key_file).unwrap(), key_before);
    assert!(!namesake.exists(), "something was written");
}

/// An age key made for the test, never committed: its file's text and its public key.
fn new_key() -> (String, String) {
    use secrecy::ExposeSecret;
    let identity = age::x25519::Identity::generate();
    let text = format!("# created by the test\n{}\n", identity.to_string().expose_secret());
    (text, identity.to_public().to_string())
}

/// A machine that already holds an age key where sops finds it (its key file, or
/// SOPS_AGE_KEY_FILE, or SOPS_AGE_KEY): init encrypts to it and writes no key, says so, and
/// the next step it prints renders the secrets with that key alone.
#[test]
fn a_key_the_machine_already_holds_is_the_recipient_and_no_key_is_written() {
    let (text, recipient) = new_key();
    let (other_text, other_recipient) = new_key();
    let machine = Machine::new();
    let keys = machine.sops_keys();
    std::fs::create_dir_all(keys.parent().unwrap()).unwrap();
    std::fs::write(&keys, &text).unwrap();
    let home_before = snapshot(machine.home.path());

    let dir = machine.repo("held");
    let run = machine.init(&dir, &[]);
    run.success();
    assert_eq!(snapshot(machine.home.path()), home_before, "a key was written");
    assert_eq!(sops_recipients(&dir), recipient);
    assert!(
        run.stderr.contains(&format!(
            "no key written: secrets encrypted to the age key you hold, found where weaver and sops look: {recipient} (from {})",
            keys.display()
        )),
        "{}",
        run.stderr
    );
    let rendered = run_next_step(&machine, &run, &[]);
    assert!(rendered.success().contains("kind: Secret"), "{}", rendered.stdout);
    let shown = machine.weaver(&dir, &["render", "--env", "dev", "--show-secrets"]);
    assert!(shown.success().contains(&format!("PASSWORD: {}", password(&machine, &dir, &[]))));
    let secret_line = text.lines().nth(1).unwrap();
    for output in [&run.stdout, &run.stderr, &rendered.stdout, &rendered.stderr] {
        assert!(!output.contains(secret_line), "the key was printed:\n{output}");
    }

    // SOPS_AGE_KEY_FILE beside the key file: both keys, either decrypts, and -o json says where
    // each was found.
    let other_file = machine.home.path().join("other.txt");
    std::fs::write(&other_file, &other_text).unwrap();
    let variable = [("SOPS_AGE_KEY_FILE", other_file.to_str().unwrap())];
    let dir = machine.repo("two");
    let mut args = vec!["init", dir.to_str().unwrap(), "-o", "json"];
    args.push("--env");
    args.push("qa");
    let run = machine.weaver_with(machine.work.path(), &args, &variable);
    let document: serde_json::Value = serde_json::from_str(run.success()).unwrap();
    assert_eq!(document["keyFile"], serde_json::Value::Null);
    assert_eq!(
        document["heldKeys"],
        serde_json::json!([
            {"recipient": other_recipient, "source": format!("SOPS_AGE_KEY_FILE={}", other_file.display())},
            {"recipient": recipient, "source": keys.display().to_string()},
        ])
    );
    assert_eq!(sops_recipients(&dir), format!("{other_recipient},{recipient}"));
    std::fs::remove_file(&keys).unwrap();
    machine.weaver_with(&dir, &["render", "--env", "qa"], &variable).success();

    // SOPS_AGE_KEY alone, with no key file: that key, and nothing written in the home.
    let home_before = snapshot(machine.home.path());
    let secret_key = other_text.lines().nth(1).unwrap();
    let variable = [("SOPS_AGE_KEY", secret_key)];
    let dir = machine.repo("variable");
    let run = machine.weaver_with(machine.work.path(), &["init", dir.to_str().unwrap()], &variable);
    run.success();
    assert!(run.stderr.contains(&format!("{other_recipient} (from SOPS_AGE_KEY)")), "{}", run.stderr);
    assert!(!run.stderr.contains(secret_key), "{}", run.stderr);
    assert_eq!(snapshot(machine.home.path()), home_before, "a key was written");
    assert!(run_next_step(&machine, &run, &variable).success().contains("kind: Secret"));

    // A key variable naming a file that is not there: refused, nothing written.
    let absent = machine.home.path().join("absent.txt");
    let dir = machine.repo("absent");
    let variable = [("SOPS_AGE_KEY_FILE", absent.to_str().unwrap())];
    let run = machine.weaver_with(machine.work.path(), &["init", dir.to_str().unwrap()], &variable);
    let stderr = run.failure();
    assert!(
        stderr.contains(&format!("SOPS_AGE_KEY_FILE={}: cannot read the identity file", absent.display())),
        "{stderr}"
    );
    assert!(stderr.contains("give --key-file PATH for a new key"), "{stderr}");
    assert!(!dir.exists(), "something was written");
}

/// `--env` and `--namespace` name what would collide on a shared cluster: the environment's
/// namespace and its lock's, both the one given; the secrets file's comment names no file.
#[test]
fn the_environment_s_namespace_and_lock_are_the_ones_given() {
    let machine = Machine::new();
    let dir = machine.repo("r");
    let run = machine.init(&dir, &["--env", "qa", "-n", "team-a-qa"]);
    assert!(run.success().contains("wrote environments/qa.yaml\n"), "{}", run.stdout);
    let env: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("environments/qa.yaml")).unwrap()).unwrap();
    assert_eq!(env["namespace"], "team-a-qa");
    assert_eq!(env["cluster"], serde_json::json!({"lockNamespace": "team-a-qa"}));
    let rendered = machine.weaver(&dir, &["render", "--env", "qa"]);
    assert!(rendered.success().contains("  namespace: team-a-qa\n"), "{}", rendered.stdout);
    let file = dir.join("secrets/qa.yaml");
    let decrypted = machine.weaver(&dir, &["secrets", "decrypt", file.to_str().unwrap()]);
    assert!(
        decrypted.success().starts_with("# Secrets of the environment that lists this file"),
        "{}",
        decrypted.stdout
    );
    let comments: Vec<&str> = decrypted.stdout.lines().filter(|l| l.trim_start().starts_with('#')).collect();
    assert!(comments.iter().all(|l| !l.contains("secrets/") && !l.contains("qa")), "{comments:?}");

    let bad = machine.repo("bad");
    let stderr = machine.init(&bad, &["-n", "Team_A"]).failure().to_string();
    assert!(stderr.starts_with("error: --namespace `Team_A`: not a valid namespace name"), "{stderr}");
    assert!(!bad.exists(), "something was written");
}

#[test]
fn no_key_encrypts_to_the_recipients_given() {
    // A key the user already has: the first repository's.
    let machine = Machine::new();
    let first = machine.repo("first");
    machine.init(&first, &[]).success();
    let recipient = sops_recipients(&first);
    let key_file = machine.sops_keys();
    let keys_before = std::fs::read(&key_file).unwrap();

    let dir = machine.repo("second");
    let run = machine.init(&dir, &["--env", "staging", "--no-key", "--recipient", &recipient]);
    assert!(run.success().contains("wrote secrets/staging.yaml\n"), "{}", run.stdout);
    assert!(run.stderr.contains(&format!("no key written: secrets encrypted to {recipient}")), "{}", run.stderr);
    assert_eq!(std::fs::read(&key_file).unwrap(), keys_before);
    assert_eq!(snapshot(machine.home.path()).len(), 1, "another key was written");
    assert_eq!(sops_recipients(&dir), recipient);
    let rendered = machine.weaver(&dir, &["render", "--env", "staging"]);
    assert!(rendered.success().contains("  namespace: staging\n"), "{}", rendered.stdout);
}

#[test]
fn bad_flags_are_refused_before_anything_is_written() {
    let machine = Machine::new();
    let dir = machine.repo("r");
    let cases: [(&[&str], &str); 7] = [
        (&["--env", "base"], "--env `base`: weaver init writes the abstract environment `base`"),
        (&["--env", "Dev_1"], "--env `Dev_1`: not a valid environment name"),
        (&["--no-key"], "--recipient"),
        (&["--recipient", "age1xyz"], "--no-key"),
        (&["--no-key", "--recipient", "age1xyz"], "invalid age recipient `age1xyz` (from --recipient)"),
        (&["--no-key", "--recipient", "age1xyz", "--key-file", "/tmp/k"], "--key-file"),
        (&["--colour"], "--colour"),
    ];
    for (args, expected) in cases {
        let run = machine.init(&dir, args);
        let stderr = run.failure();
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!dir.exists(), "{args:?} wrote something");
    }
    assert!(snapshot(machine.home.path()).is_empty(), "a key was written");
}
