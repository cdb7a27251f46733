//! Secrets end to end: decryption in rendering, redaction on every output path, the
//! `weaver secrets` commands (edit on every exit path), tampering, and age CLI interop.

use crate::common;
use common::{Repo, Run, interop_available, project_root};

use std::path::{Path, PathBuf};

/// The plaintext values of the demo's secrets/dev.yaml: none may ever leak.
const DEV_SECRETS: [&str; 4] = [
    "postgres://shop:dev-db-Vq7x2@db.shop-dev.svc:5432/shop",
    "dev-api-key-4f1c9a7e",
    "dev-session-Pz81kQ",
    "dev-redis-Jm3s9",
];

#[track_caller]
fn assert_no_leak(run: &Run, context: &str) {
    for secret in DEV_SECRETS {
        assert!(!run.stdout.contains(secret), "{context}: stdout leaked {secret:?}:\n{}", run.stdout);
        assert!(!run.stderr.contains(secret), "{context}: stderr leaked {secret:?}:\n{}", run.stderr);
    }
}

fn fixture(name: &str) -> PathBuf {
    project_root().join("tests/fixtures").join(name)
}

/// The `# public key:` line of an age identity file.
fn public_key(identity: &Path) -> String {
    std::fs::read_to_string(identity)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(str::to_string))
        .unwrap_or_else(|| panic!("{} has no public key line", identity.display()))
}

#[test]
fn dev_secrets_render_redacted_by_default_and_real_with_show_secrets() {
    let repo = Repo::demo();
    let run = repo.weaver(&["render", "--env", "dev", "-v"]);
    assert!(run.success().contains("kind: Secret"));
    assert!(run.stdout.contains("API_KEY: <redacted:"), "{}", run.stdout);
    assert_no_leak(&run, "render");
    let shown = repo.weaver(&["render", "--env", "dev", "--show-secrets"]);
    assert!(shown.success().contains(&format!("API_KEY: {}", DEV_SECRETS[1])));
}

#[test]
fn prod_without_its_key_fails_naming_file_and_recipient() {
    let repo = Repo::demo();
    let run = repo.weaver(&["render", "--env", "prod"]);
    let stderr = run.failure();
    let recipient = std::fs::read_to_string(repo.path().join("secrets/.sops.yaml"))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("age: "))
        .next_back()
        .unwrap()
        .to_string();
    assert!(
        stderr.starts_with(&format!("error: secrets/prod.yaml: no age identity available to decrypt it; it is encrypted to {recipient}; tried: nothing found (--identity not given, WEAVER_AGE_KEY_FILE unset, SOPS_AGE_KEY_FILE unset, SOPS_AGE_KEY unset, no identityFile in the environment, ")),
        "{stderr}"
    );
    assert!(stderr.contains("help: give weaver the age key with --identity FILE"), "{stderr}");
}

#[test]
fn prod_with_a_wrong_key_lists_the_public_keys_tried() {
    let repo = Repo::demo();
    let dev_key = repo.path().join("secrets/dev.agekey");
    let run = repo.weaver(&["render", "--env", "prod", "--identity", dev_key.to_str().unwrap()]);
    let stderr = run.failure();
    let dev_public = public_key(&dev_key);
    assert!(stderr.contains("secrets/prod.yaml: none of the available age identities can decrypt it"), "{stderr}");
    assert!(stderr.contains(&format!("{dev_public} (from --identity")), "{stderr}");
    assert!(!stderr.contains("AGE-SECRET-KEY"), "{stderr}");
}

#[test]
fn identity_order_flag_then_environment_variables_then_identity_file() {
    let repo = Repo::demo();
    let (dev, test) = (repo.path().join("secrets/dev.agekey"), fixture("prod-test.agekey"));
    let (dev_public, test_public) = (public_key(&dev), public_key(&test));
    // prod's real key is neither: the error lists what was tried, in lookup order.
    let tried = |flag: &Path, var: &str, file: &Path| {
        let run = repo.weaver_env(
            &["render", "--env", "prod", "--identity", flag.to_str().unwrap()],
            &[(var, file.to_str().unwrap())],
        );
        run.failure().to_string()
    };
    let order = |text: &str, first: &str, second: &str| {
        let (a, b) = (text.find(first).expect(first), text.find(second).expect(second));
        assert!(a < b, "{first} should be tried before {second}:\n{text}");
    };
    let out = tried(&test, "SOPS_AGE_KEY_FILE", &dev);
    order(&out, &format!("{test_public} (from --identity"), &format!("{dev_public} (from SOPS_AGE_KEY_FILE="));
    let out = tried(&dev, "WEAVER_AGE_KEY_FILE", &test);
    order(&out, &format!("{dev_public} (from --identity"), &format!("{test_public} (from WEAVER_AGE_KEY_FILE="));
    // A wrong key found first does not stop the environment's identityFile from decrypting.
    repo.weaver_env(&["render", "--env", "dev"], &[("SOPS_AGE_KEY_FILE", test.to_str().unwrap())]).success();
    // A missing file named by a variable is an error, not silently skipped.
    let run = repo.weaver_env(&["render", "--env", "dev"], &[("WEAVER_AGE_KEY_FILE", "/nonexistent/key.txt")]);
    assert!(run.failure().contains("/nonexistent/key.txt"), "{}", run.stderr);
    // SOPS_AGE_KEY holds the key text itself.
    let key_text = std::fs::read_to_string(&test).unwrap();
    repo.write("secrets/prod.yaml", &std::fs::read_to_string(fixture("prod-secrets.yaml")).unwrap());
    repo.weaver_env(&["render", "--env", "prod"], &[("SOPS_AGE_KEY", key_text.as_str())]).success();
}

/// A template error, a schema error and a YAML error, each while secrets are in context: no
/// output may contain a secret value, even where the template put one into the message.
#[test]
fn errors_with_secrets_in_context_never_print_them() {
    let template_errors = [
        "a: {{ secrets.web.apiKey + 1 }}\n",
        "a: {{ secrets.web.apiKey.nope }}\n",
        "a: {{ fail('bad key ' ~ secrets.web.apiKey) }}\n",
        "a: {{ secrets.redis.password | required('x') | int + secrets.nope }}\n",
        "a: {{ secrets.web.databaseUrl | b64decode }}\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: [{{ secrets.web.apiKey }}\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  k: {{ secrets.web.sessionSecret }}\n  k: {{ secrets.redis.password }}\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ secrets.web.apiKey }}\n---\n{{ secrets.redis.password }}\n",
    ];
    for template in template_errors {
        let repo = Repo::demo();
        repo.write("charts/web-app/templates/leak.yaml", template);
        let run = repo.weaver(&["render", "--env", "dev", "-v"]);
        assert_eq!(run.code, 1, "{template:?} should fail:\n{}", run.stderr);
        // It must fail on this template, not earlier for some other reason.
        assert!(run.stderr.contains("charts/web-app/templates/leak.yaml"), "{template:?}: {}", run.stderr);
        assert_no_leak(&run, template);
    }
    // Schema error while secrets are loaded.
    let repo = Repo::demo();
    repo.write("environments/values/web-dev.yaml", "port: lots\n");
    let run = repo.weaver(&["render", "--env", "dev", "-v"]);
    assert!(run.failure().contains("values.schema.json"));
    assert_no_leak(&run, "schema error");
}

#[test]
fn a_secret_copied_outside_a_secret_object_is_redacted_too() {
    let repo = Repo::demo();
    repo.write(
        "charts/web-app/templates/leak.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: copied\ndata:\n  url: {{ secrets.web.databaseUrl | quote }}\n  b64: {{ secrets.web.apiKey | b64encode }}\n",
    );
    let run = repo.weaver(&["render", "--env", "dev"]);
    assert!(run.success().contains("url: <redacted:"), "{}", run.stdout);
    assert_no_leak(&run, "copied secret");
}

/// Secrets that text matching alone would miss: one with a quote (YAML writes `'` as `''`) and
/// one shorter than the text redactor's minimum.
#[test]
fn quoted_and_short_secrets_are_redacted_in_render_output() {
    let repo = Repo::demo();
    repo.write("secrets/extra.yaml", "quoted: it's-a-secret\nshort: q7z\nport: 6390\n");
    let dev_public = public_key(&repo.path().join("secrets/dev.agekey"));
    let file = repo.path().join("secrets/extra.yaml");
    repo.weaver(&["secrets", "encrypt", "--age", &dev_public, file.to_str().unwrap()]).success();
    repo.write(
        "environments/dev.yaml",
        "extends: base\nnamespace: shop-dev\nsecrets: [secrets/dev.yaml, secrets/extra.yaml]\nidentityFile: secrets/dev.agekey\n",
    )
    .write(
        "charts/web-app/templates/leak.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: copied\ndata:\n  a: {{ secrets.quoted | quote }}\n  b: {{ secrets.short }}\n  c: {{ secrets | toyaml | tojson }}\n  d: 'x {{ secrets.short }} y'\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: copied\nspec:\n  ports:\n    - port: {{ secrets.port }}\n",
    );
    let run = repo.weaver(&["render", "--env", "dev", "-r", "web"]);
    let out = run.success();
    for leaked in ["it's-a-secret", "it''s-a-secret", "q7z", "6390"] {
        assert!(!out.contains(leaked), "render output leaked {leaked:?}:\n{out}");
    }
    // Equal values show the same marker.
    let marker = |line: &str| regex::Regex::new(line).unwrap().captures(out).map(|c| c[1].to_string());
    assert!(marker(r"\n  a: (<redacted:[0-9a-f]{8}>)\n").is_some(), "{out}");
    let short = marker(r"\n  b: (<redacted:[0-9a-f]{8}>)\n");
    assert!(short.is_some() && short == marker(r"\n  d: x (<redacted:[0-9a-f]{8}>) y\n"), "{out}");
    assert!(marker(r"port: (<redacted:[0-9a-f]{8}>)\n").is_some(), "{out}");
    assert_no_leak(&run, "quoted and short secrets");
    let shown = repo.weaver(&["render", "--env", "dev", "-r", "web", "--show-secrets"]);
    assert!(shown.success().contains("b: q7z"));
}

fn secrets_file(repo: &Repo, name: &str) -> String {
    repo.path().join("secrets").join(name).to_str().unwrap().to_string()
}

#[test]
fn encrypt_decrypt_rotate_and_updatekeys_through_the_cli() {
    let repo = Repo::demo();
    let plain = "# a comment\nname: team\nport: 8080\nenabled: true\nratio: 0.5\nlist:\n  - one\n  - two\nnested:\n  key: ünïcødé\n  multi: |\n    line one\n    line two\n";
    repo.write("secrets/dev.yaml", plain);
    let file = secrets_file(&repo, "dev.yaml");
    let run = repo.weaver(&["secrets", "encrypt", &file]);
    run.success();
    // Each writing command says what it did, without -v.
    assert!(run.stderr.starts_with(&format!("{file}: encrypted to age1")), "{}", run.stderr);
    let encrypted = std::fs::read_to_string(&file).unwrap();
    assert!(!encrypted.contains("team") && !encrypted.contains("line one") && encrypted.contains("sops:"));
    // Decrypts with the environment's identityFile, found from the file's path.
    let decrypted = repo.weaver(&["secrets", "decrypt", &file]).success().to_string();
    let as_json = |text: &str| serde_saphyr::from_str::<serde_json::Value>(text).unwrap();
    assert_eq!(as_json(&decrypted), as_json(plain));
    assert!(decrypted.contains("# a comment"));

    let run = repo.weaver(&["secrets", "rotate", &file]);
    run.success();
    assert!(run.stderr.starts_with(&format!("{file}: new data key, encrypted to age1")), "{}", run.stderr);
    let rotated = std::fs::read_to_string(&file).unwrap();
    let (before, after) = (ciphertexts(&encrypted), ciphertexts(&rotated));
    assert_eq!(before.len(), after.len());
    assert!(before.iter().zip(&after).all(|(a, b)| a != b), "rotate must re-encrypt every value");
    let data_key = |text: &str| text.split("-----BEGIN AGE ENCRYPTED FILE-----").nth(1).unwrap().to_string();
    assert_ne!(data_key(&rotated), data_key(&encrypted), "rotate must wrap a new data key");
    assert_eq!(as_json(repo.weaver(&["secrets", "decrypt", &file]).success()), as_json(plain));

    let extra_public = public_key(&fixture("prod-test.agekey"));
    let dev_public = public_key(&repo.path().join("secrets/dev.agekey"));
    let run = repo.weaver(&["secrets", "updatekeys", &file, "--age", &format!("{dev_public},{extra_public}")]);
    assert!(run.success().is_empty());
    assert!(run.stderr.contains(&format!("added {extra_public}")), "{}", run.stderr);
    assert_eq!(
        ciphertexts(&std::fs::read_to_string(&file).unwrap()),
        ciphertexts(&rotated),
        "updatekeys keeps the values"
    );
    // The added recipient can now decrypt.
    let run = repo.weaver(&["secrets", "decrypt", &file, "--identity", fixture("prod-test.agekey").to_str().unwrap()]);
    assert_eq!(as_json(run.success()), as_json(plain));
    // Applying the rules again removes it.
    let run = repo.weaver(&["secrets", "updatekeys", &file]);
    assert!(run.stderr.contains(&format!("removed {extra_public}")), "{}", run.stderr);
}

/// The ciphertexts of a SOPS file's values (not comments, not the MAC, which changes on every
/// write).
fn ciphertexts(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("mac:"))
        .filter_map(|l| l.split_once("ENC[").map(|(_, rest)| rest.to_string()))
        .filter(|l| !l.contains("type:comment"))
        .collect()
}

fn editor_script(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("editor.sh");
    std::fs::write(&path, format!("#!/bin/sh\necho \"$1\" > {}/plaintext-path\n{body}\n", dir.display())).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

/// Where the editor saw the plaintext; asserts it was private while open and is gone now.
fn recorded_plaintext(dir: &Path) -> PathBuf {
    let path = PathBuf::from(std::fs::read_to_string(dir.join("plaintext-path")).unwrap().trim());
    assert!(!path.exists(), "plaintext {} was left behind", path.display());
    assert!(!path.parent().unwrap().exists(), "private directory {} was left behind", path.parent().unwrap().display());
    path
}

#[test]
fn edit_reencrypts_keeping_unchanged_ciphertext_and_removes_the_plaintext() {
    let repo = Repo::demo();
    let scratch = tempfile::tempdir().unwrap();
    let editor = editor_script(
        scratch.path(),
        &format!(
            "stat -c %a \"$1\" > {dir}/mode; stat -c %a \"$(dirname \"$1\")\" > {dir}/dirmode\nsed -i 's/dev-api-key-4f1c9a7e/dev-api-key-rotated-1/' \"$1\"",
            dir = scratch.path().display()
        ),
    );
    let file = secrets_file(&repo, "dev.yaml");
    let before = std::fs::read_to_string(&file).unwrap();
    let run = repo.weaver_env(&["secrets", "edit", &file], &[("EDITOR", editor.to_str().unwrap())]);
    run.success();
    assert!(run.stderr.contains(": re-encrypted; unchanged values kept their ciphertext"), "{}", run.stderr);
    recorded_plaintext(scratch.path());
    assert_eq!(std::fs::read_to_string(scratch.path().join("mode")).unwrap().trim(), "600");
    assert_eq!(std::fs::read_to_string(scratch.path().join("dirmode")).unwrap().trim(), "700");
    let after = std::fs::read_to_string(&file).unwrap();
    let (old, new) = (ciphertexts(&before), ciphertexts(&after));
    let changed: Vec<_> = old.iter().zip(&new).filter(|(a, b)| a != b).collect();
    // Only the apiKey value changes; every other value keeps its ciphertext.
    assert_eq!(changed.len(), 1, "{changed:#?}");
    assert_eq!(old.len(), new.len());
    let decrypted = repo.weaver(&["secrets", "decrypt", &file]).success().to_string();
    assert!(decrypted.contains("apiKey: dev-api-key-rotated-1"));
}

#[test]
fn edit_cleans_up_after_editor_failure_invalid_text_and_termination() {
    let repo = Repo::demo();
    let file = secrets_file(&repo, "dev.yaml");
    let original = std::fs::read_to_string(&file).unwrap();

    let scratch = tempfile::tempdir().unwrap();
    let failing = editor_script(scratch.path(), "exit 3");
    let run = repo.weaver_env(&["secrets", "edit", &file], &[("EDITOR", failing.to_str().unwrap())]);
    assert!(run.failure().contains("exited with exit status: 3"), "{}", run.stderr);
    recorded_plaintext(scratch.path());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), original);

    let scratch = tempfile::tempdir().unwrap();
    let breaking = editor_script(scratch.path(), "printf 'web: [unclosed\\n' > \"$1\"");
    let run = repo.weaver_env(&["secrets", "edit", &file], &[("EDITOR", breaking.to_str().unwrap())]);
    assert!(run.failure().contains("the file was left unchanged and the edit discarded"), "{}", run.stderr);
    recorded_plaintext(scratch.path());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), original);
    assert_no_leak(&run, "invalid edit");

    // SIGTERM to weaver while the editor runs: the editor is stopped and the plaintext removed.
    let scratch = tempfile::tempdir().unwrap();
    let slow = editor_script(scratch.path(), &format!("touch {}/started; exec sleep 30", scratch.path().display()));
    let child = std::process::Command::new(common::WEAVER)
        .args(["--repo", repo.path().to_str().unwrap(), "secrets", "edit", &file])
        .env("EDITOR", &slow)
        .env("HOME", repo.path().join(".no-home"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = scratch.path().join("started");
    for _ in 0..200 {
        if started.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(started.exists(), "the editor never started");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("received signal 15"));
    recorded_plaintext(scratch.path());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), original);
}

#[test]
fn tampered_files_fail_with_distinct_clear_errors() {
    let repo = Repo::demo();
    let file = secrets_file(&repo, "dev.yaml");
    let original = std::fs::read_to_string(&file).unwrap();
    let flip = |needle: &str| {
        // Change one base64 character inside the first match of `needle`'s line.
        let line = original.lines().find(|l| l.contains(needle)).unwrap();
        let at = line.find("data:").map(|i| i + 8).unwrap_or_else(|| line.find(needle).unwrap() + needle.len() + 3);
        let mut bytes = line.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        original.replacen(line, std::str::from_utf8(&bytes).unwrap(), 1)
    };
    let cases = [
        (flip("apiKey:"), "the encrypted value at `web.apiKey` failed its integrity check"),
        (flip("mac:"), "sops.mac cannot be decrypted"),
        (flip("YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0"), "sops.age[0].enc (for age1"),
        (original.replacen("tag:", "tag:!!", 1), "is malformed"),
        ("plain: yaml\n".to_string(), "is not a SOPS file"),
    ];
    for (text, expected) in cases {
        repo.write("secrets/dev.yaml", &text);
        let run = repo.weaver(&["render", "--env", "dev"]);
        let stderr = run.failure();
        assert!(stderr.starts_with("error: secrets/dev.yaml: "), "{stderr}");
        assert!(stderr.contains(expected), "expected {expected:?} in:\n{stderr}");
        assert_no_leak(&run, expected);
    }
}

#[test]
fn a_secrets_file_that_is_not_yaml_names_line_and_column() {
    let repo = Repo::demo();
    repo.write("secrets/dev.yaml", "web:\n  key: [unclosed\n");
    assert_eq!(
        repo.weaver(&["render", "--env", "dev"]).failure(),
        "error: secrets/dev.yaml:2:8: unclosed bracket '['\n"
    );
}

#[test]
fn whole_file_age_made_by_the_age_cli_renders() {
    let has_age = std::process::Command::new("age").arg("--version").output().is_ok_and(|o| o.status.success());
    if !interop_available("the age CLI", has_age) {
        return;
    }
    let repo = Repo::demo();
    let key = fixture("prod-test.agekey");
    let public = public_key(&key);
    let plain = repo.path().join("extra.yaml");
    std::fs::write(&plain, "web:\n  apiKey: from-an-age-file-1234\n").unwrap();
    for armor in [false, true] {
        let target = repo.path().join("secrets/extra.age");
        let mut cmd = std::process::Command::new("age");
        cmd.args(["-r", &public, "-o", target.to_str().unwrap()]);
        if armor {
            cmd.arg("-a");
        }
        assert!(cmd.arg(&plain).status().unwrap().success());
        repo.write(
            "environments/dev.yaml",
            "extends: base\nnamespace: shop-dev\nsecrets: [secrets/dev.yaml, secrets/extra.age]\nidentityFile: secrets/dev.agekey\n",
        );
        let run = repo
            .weaver_env(&["render", "--env", "dev", "--show-secrets"], &[("SOPS_AGE_KEY_FILE", key.to_str().unwrap())]);
        // Later files override earlier ones key by key.
        assert!(run.success().contains("API_KEY: from-an-age-file-1234"), "armor={armor}: {}", run.stdout);
        assert!(run.stdout.contains(&format!("SESSION_SECRET: {}", DEV_SECRETS[2])));
    }
}

#[test]
fn decrypt_finds_the_environment_s_identity_from_any_directory_and_says_which() {
    let repo = Repo::demo();
    let file = repo.path().join("secrets/dev.yaml");
    // --repo names the secrets directory (as running from it would): the repository is found above the file.
    let run =
        common::weaver_in(&repo.path().join("secrets"), &["secrets", "decrypt", file.to_str().unwrap(), "-v"], &[]);
    assert!(run.success().contains("databaseUrl"), "{}", run.stdout);
    assert!(
        run.stderr.contains("environment `dev` lists it; its identityFile secrets/dev.agekey is tried"),
        "{}",
        run.stderr
    );
    // Outside any repository there is no environment to take a key from.
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("dev.yaml");
    std::fs::copy(&file, &copy).unwrap();
    let error = common::weaver_in(elsewhere.path(), &["secrets", "decrypt", copy.to_str().unwrap()], &[]);
    assert!(error.failure().contains("no identityFile in the environment"), "{}", error.stderr);
}

/// The `<redacted:…>` marker on the line of `key` in a render.
fn marker_of(render: &str, key: &str) -> String {
    let pattern = regex::Regex::new(&format!(r"\n\s*{key}: (<redacted:[0-9a-f]{{8}}>)\n")).unwrap();
    pattern.captures(render).unwrap_or_else(|| panic!("no marker for {key} in:\n{render}"))[1].to_string()
}

/// Issue 68.16: render's markers are keyed by the environment's age identity, not per run: two
/// renders in separate processes print the same output, and a changed secret changes its
/// marker and no other.
#[test]
fn render_markers_are_stable_across_runs_and_change_with_their_value() {
    let repo = Repo::demo();
    let render = || repo.weaver(&["render", "--env", "dev"]).success().to_string();
    let first = render();
    assert_eq!(render(), first, "two renders of one commit");
    let file = secrets_file(&repo, "dev.yaml");
    let plain = repo.weaver(&["secrets", "decrypt", &file]).success().replace(DEV_SECRETS[1], "dev-api-key-changed");
    std::fs::write(&file, plain).unwrap();
    repo.weaver(&["secrets", "encrypt", &file]).success();
    let changed = render();
    assert_ne!(marker_of(&changed, "API_KEY"), marker_of(&first, "API_KEY"));
    for key in ["DATABASE_URL", "SESSION_SECRET"] {
        assert_eq!(marker_of(&changed, key), marker_of(&first, key), "{key}");
    }
}

/// Issue 68.16: with no secrets file to choose among them, every identity held keys the
/// markers: the same one gives the same markers, another one others, and none (nothing can have
/// been decrypted) a key drawn for the run.
#[test]
fn render_markers_depend_on_the_identity_held() {
    let repo = Repo::minimal();
    repo.write(
        "charts/app/templates/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\nstringData:\n  password: pA55-w0rd.0001-Zq8xLm\n",
    );
    let render = |identity: Option<&Path>| {
        let mut args = vec!["render", "--env", "dev"];
        let identity = identity.map(|path| path.to_str().unwrap().to_string());
        if let Some(path) = &identity {
            args.extend(["--identity", path]);
        }
        marker_of(repo.weaver(&args).success(), "password")
    };
    let (dev, prod) = (project_root().join("secrets/dev.agekey"), fixture("prod-test.agekey"));
    assert_eq!(render(Some(&dev)), render(Some(&dev)));
    assert_ne!(render(Some(&dev)), render(Some(&prod)));
    assert_ne!(render(None), render(None));
}

/// `weaver secrets set`: a value from stdin, one trailing newline removed (unless
/// --keep-newline), into the SOPS file as an edit writes it (every other value keeps its
/// ciphertext); rendered and decrypted back, and never printed, not even in an error.
#[test]
fn set_encrypts_one_value_from_stdin_without_printing_it() {
    let repo = Repo::demo();
    let file = secrets_file(&repo, "dev.yaml");
    let set = |key: &str, input: &[u8], extra: &[&str]| {
        let mut args = vec!["secrets", "set", &file, key];
        args.extend_from_slice(extra);
        common::weaver_input(repo.path(), &args, &[], input)
    };
    let value = "set-Api-Key-7Qx9w";
    let before = std::fs::read_to_string(&file).unwrap();
    // As `echo` gives it: the newline is not part of the value.
    let run = set("web.apiKey", format!("{value}\n").as_bytes(), &[]);
    assert!(run.success().is_empty(), "{}", run.stdout);
    assert_eq!(
        run.stderr,
        format!("{file}: key `web.apiKey`: set; re-encrypted, other values kept their ciphertext\n")
    );
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(!after.contains(value), "the value is in the file in clear");
    let (old, new) = (ciphertexts(&before), ciphertexts(&after));
    assert_eq!(old.len(), new.len());
    assert_eq!(old.iter().zip(&new).filter(|(a, b)| a != b).count(), 1, "only web.apiKey is encrypted again");
    let decrypted: serde_json::Value =
        serde_saphyr::from_str(repo.weaver(&["secrets", "decrypt", &file]).success()).unwrap();
    assert_eq!(decrypted["web"]["apiKey"], value);
    assert_eq!(decrypted["web"]["sessionSecret"], DEV_SECRETS[2], "another value changed");
    let shown = repo.weaver(&["render", "--env", "dev", "--show-secrets"]);
    assert!(shown.success().contains(&format!("API_KEY: {value}\n")), "{}", shown.stdout);
    let redacted = repo.weaver(&["render", "--env", "dev"]);
    assert!(!redacted.success().contains(value), "{}", redacted.stdout);

    // The same value again writes nothing.
    let run = set("web.apiKey", value.as_bytes(), &[]);
    run.success();
    assert!(run.stderr.contains("already holds that value; the file was left as it was"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), after);

    // --keep-newline keeps the bytes; sops's bracket path reaches a key with a dot, and the
    // mappings on its way are made.
    let pem = "-----BEGIN KEY-----\nc2V0LXBlbS12YWx1ZQ==\n-----END KEY-----\n";
    let run = set(r#"["tls"]["tls.key"]"#, pem.as_bytes(), &["--keep-newline"]);
    run.success();
    let decrypted: serde_json::Value =
        serde_saphyr::from_str(repo.weaver(&["secrets", "decrypt", &file]).success()).unwrap();
    assert_eq!(decrypted["tls"]["tls.key"], pem);
    for run in [&run, &shown] {
        assert!(!run.stderr.contains(value) && !run.stderr.contains("c2V0LXBlbS12YWx1ZQ"), "{}", run.stderr);
    }

    // Refusals name the file and the key, never the value, and leave the file as it was.
    let written = std::fs::read_to_string(&file).unwrap();
    let secret = b"never-Shown-5Kp2\n";
    for (key, input, expected) in [
        ("web.apiKey.inner", &secret[..], "key `web.apiKey.inner`: `web.apiKey` is a string, not a mapping"),
        ("web", &secret[..], "key `web`: it holds a mapping"),
        ("web..x", &secret[..], "key `web..x`: an empty key"),
        ("web.apiKey", &b"\xff\xfe"[..], "key `web.apiKey`: the value on stdin is not UTF-8 text"),
    ] {
        let run = set(key, input, &[]);
        let stderr = run.failure();
        assert!(stderr.starts_with(&format!("error: {file}: {expected}")), "{key}: {stderr}");
        assert!(!stderr.contains("never-Shown"), "{key}: {stderr}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), written);
    let missing = secrets_file(&repo, "absent.yaml");
    let run = common::weaver_input(repo.path(), &["secrets", "set", &missing, "a"], &[], secret);
    assert!(run.failure().contains(&missing), "{}", run.stderr);
    assert!(!repo.path().join("secrets/absent.yaml").exists());
}
