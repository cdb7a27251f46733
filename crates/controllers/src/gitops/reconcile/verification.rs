//! `spec.source.verify`: who signed the fetched commit (with `mode: all`, each commit since the
//! last applied one too), checked against the trust list of a Secret before anything reads the
//! commit, by the action the CLI's `--verify-commits` runs; and the key the controller signs its
//! own pushes with.

use std::sync::Arc;

use kube::ResourceExt;

use super::credentials::{fetch_reason, secret, with_secret};
use crate::gitops::api::{EnvironmentSync, Reason, VerifyMode};
use weaver_engine::action::verify::Named;
use weaver_source::{FetchRequest, Fetched, GitCache};
use weaver_verify::cosign::CosignKeys;
use weaver_verify::{Keyring, SigningKey, TrustList};

/// The trust list of `spec.source.verify`: the Secret's `allowed_signers` (SSH keys) and its
/// values named `*.asc` or `*.gpg` (OpenPGP keys, armored or binary). Any other key is refused,
/// so that naming another Secret (the source's credentials, whose `known_hosts` reads as signers)
/// is an error, not a trust list; a value that cannot be read is named by its key and line,
/// never quoted, since a Secret named by mistake may hold credentials.
pub(crate) async fn trust_list(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<TrustList, (Reason, String)> {
    let field = "spec.source.verify.secretRef";
    let secret = secret(client, namespace, name, field).await?;
    let invalid = |message: String| (Reason::SecretInvalid, format!("Secret {namespace}/{name} ({field}) {message}"));
    let mut trust = TrustList::default();
    for (key, value) in secret.data.iter().flatten() {
        let list = if key == "allowed_signers" {
            let text = std::str::from_utf8(&value.0).map_err(|_| invalid(format!("key `{key}` is not text")))?;
            TrustList::parse(text).map_err(|e| {
                invalid(format!(
                    "key `{key}`, line {}, cannot be read: expected `PRINCIPALS [OPTIONS] KEYTYPE BASE64-KEY`, as git's \
                     gpg.ssh.allowedSignersFile",
                    e.line
                ))
            })?
        } else if key.ends_with(".asc") || key.ends_with(".gpg") {
            let keyring = Keyring::from_bytes(&value.0).map_err(|_| {
                invalid(format!(
                    "key `{key}` cannot be read: expected OpenPGP public keys (`gpg --export`, armored or not)"
                ))
            })?;
            TrustList::of_keyring(keyring)
        } else {
            return Err(invalid(format!(
                "has key `{key}`, which is no trust list: expected `allowed_signers` (SSH keys) and keys named `*.asc` \
                 or `*.gpg` (OpenPGP public keys)"
            )));
        };
        trust = trust.with(list);
    }
    if trust.is_empty() {
        return Err(invalid("holds no key, so no commit can pass: list each signer's public key".into()));
    }
    Ok(trust)
}

/// The cosign public keys of `spec.source.oci.verify`: every value of the Secret named `*.pub`
/// (others are not read, as Flux's OCIRepository reads its Secret), each key named in messages
/// and the status as `<secret>/<key>`. A value that cannot be read is named by its key and
/// line, never quoted.
pub(crate) async fn cosign_keys(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<CosignKeys, (Reason, String)> {
    let field = "spec.source.oci.verify.secretRef";
    let secret = secret(client, namespace, name, field).await?;
    let invalid = |message: String| (Reason::SecretInvalid, format!("Secret {namespace}/{name} ({field}) {message}"));
    let mut keys = CosignKeys::default();
    for (key, value) in secret.data.iter().flatten().filter(|(key, _)| key.ends_with(".pub")) {
        let text = std::str::from_utf8(&value.0).map_err(|_| invalid(format!("key `{key}` is not text")))?;
        let parsed = CosignKeys::parse(&format!("{name}/{key}"), text)
            .map_err(|e| invalid(format!("key `{key}`, line {}, cannot be read: {}", e.line, e.message)))?;
        keys = keys.with(parsed);
    }
    if keys.is_empty() {
        return Err(invalid(
            "holds no cosign public key, so no artifact can pass: give each signer's `cosign.pub` under a key named \
             `*.pub`"
                .into(),
        ));
    }
    Ok(keys)
}

/// Checks the fetched commit, and with `mode: all` every commit since `sync`'s last applied one
/// (none applied yet: the fetched commit alone; their history fetched first, for the mirror has
/// the fetched commit alone), against `trust`, on the blocking pool. Ok says who signed the
/// fetched commit; the error names the commit refused, why, and the trust list.
pub(crate) async fn check(
    sync: &EnvironmentSync,
    (mode, name): &(VerifyMode, String),
    trust: TrustList,
    (cache, fetched, request): (Arc<GitCache>, &Fetched, FetchRequest),
) -> Result<String, (Reason, String)> {
    let namespace = sync.namespace().unwrap_or_default();
    let since = match mode {
        VerifyMode::Head => None,
        VerifyMode::All => sync.status.as_ref().and_then(|s| s.last_applied_revision.clone()),
    };
    let since = since.filter(|since| *since != fetched.commit);
    // As the fetch names it (`branch main`): the commit is read by its id.
    let named = request.reference.to_string();
    let fetched = fetched.clone();
    if since.is_some() {
        let deepening = fetched.clone();
        match tokio::task::spawn_blocking(move || cache.deepen(&deepening, &request)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err((fetch_reason(err.failure), with_secret(&err, sync, &namespace))),
            Err(join) => return Err((Reason::GitFetchFailed, format!("the fetch of the history stopped: {join}"))),
        }
    }
    let checked = tokio::task::spawn_blocking(move || {
        let commit = Named { spec: &fetched.commit, what: "spec.source.ref", shown: Some(&named) };
        weaver_engine::action::verify::signed(&fetched.repository, commit, since.as_deref(), &trust)
    })
    .await;
    let list = format!("the trust list is Secret {namespace}/{name} (spec.source.verify.secretRef)");
    match checked {
        Ok(Ok(verified)) => Ok(format!("signed by {}", verified.signer)),
        Ok(Err(err)) => Err((Reason::VerificationFailed, format!("{err}; {list}: nothing of it is applied"))),
        Err(join) => Err((Reason::VerificationFailed, format!("the verification stopped: {join}"))),
    }
}

/// The key a push signs with: `signingKey` of its Secret `name`.
pub(crate) async fn signing_key(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    field: &str,
) -> Result<Arc<SigningKey>, (Reason, String)> {
    let secret = secret(client, namespace, name, field).await?;
    let invalid = |message: String| (Reason::SecretInvalid, format!("Secret {namespace}/{name} ({field}) {message}"));
    let text = super::credentials::value(&secret, "signingKey").ok_or_else(|| invalid("has no `signingKey`".into()))?;
    SigningKey::parse(&text).map(Arc::new).map_err(|why| invalid(format!("`signingKey`: {why}")))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use k8s_openapi::api::core::v1::Secret;
    use serde_json::json;
    use weaver_test_support::signing::{self, signing_with_ssh};

    use crate::gitops::api::{EnvironmentSync, Reason};
    use crate::gitops::testing::{AUTHOR, Fixture, NAMESPACE, condition, promoting};

    /// The fixture, with keys `alice` (trusted by Secret `signers`) and `mallory` (not), made
    /// by ssh-keygen in `keys`; None, said, without ssh-keygen (or git's http-backend).
    async fn signers(keys: &Path) -> Option<Fixture> {
        if !weaver_test_support::skip::interop_or_skip(signing::missing(&["git", "ssh-keygen"]).as_deref()) {
            return None;
        }
        let fixture = Fixture::start().await?;
        let (_, alice) = signing::ssh_key(keys, "alice", &["-t", "ed25519"]);
        signing::ssh_key(keys, "mallory", &["-t", "ed25519"]);
        let list = format!("alice@example.com {alice}\n");
        secret(&fixture, "signers", "allowed_signers", &list).await;
        Some(fixture)
    }

    async fn secret(fixture: &Fixture, name: &str, key: &str, text: &str) {
        let secret = json!({"metadata": {"name": name, "namespace": NAMESPACE}, "stringData": {key: text}});
        fixture.create::<Secret>(secret).await;
    }

    /// Commits the working tree with git itself, signed with the SSH key file `key` (None:
    /// unsigned); the commit's id.
    fn commit(fixture: &Fixture, message: &str, key: Option<&Path>) -> String {
        let config: Vec<String> = key.map(|key| signing_with_ssh(key).to_vec()).unwrap_or_default();
        let config: Vec<&str> = config.iter().map(String::as_str).collect();
        commit_with(fixture, message, &[], &config, key.is_some())
    }

    /// [`commit`] by git given `envs` and the `-c` pairs `config`, signed or not.
    fn commit_with(fixture: &Fixture, message: &str, envs: &[(&str, &Path)], config: &[&str], signed: bool) -> String {
        let dir = fixture.source.dir();
        signing::git(&dir, &[], &[], &["add", "-A"]);
        let sign = if signed { "-S" } else { "--no-gpg-sign" };
        signing::git(&dir, envs, config, &["commit", "-q", sign, "-m", message]);
        signing::git(&dir, &[], &[], &["rev-parse", "HEAD"]).trim().to_string()
    }

    /// The EnvironmentSync `shop` of the source's main, verified by Secret `signers`, reconciled:
    /// its commit is applied.
    async fn verified_shop(fixture: &Fixture) {
        let source = json!({"url": fixture.source.url(), "ref": {"branch": "main"},
            "verify": {"secretRef": {"name": "signers"}}});
        fixture.create_sync("shop", json!({ "source": source })).await;
        let sync = fixture.reconcile("shop").await;
        assert_eq!(ready(&sync).1, Reason::ReconciliationSucceeded.as_str(), "{:?}", ready(&sync));
    }

    async fn greeting(fixture: &Fixture) -> Option<String> {
        let config_map = fixture.config_map(NAMESPACE, "app").await?;
        config_map.data.and_then(|data| data.get("greeting").cloned())
    }

    fn ready(sync: &EnvironmentSync) -> (String, String, String) {
        condition(sync, "Ready").expect("a Ready condition")
    }

    fn revisions(sync: &EnvironmentSync) -> (Option<String>, Option<String>) {
        let status = sync.status.clone().unwrap_or_default();
        (status.last_applied_revision, status.last_attempted_revision)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn only_a_commit_a_trusted_key_signed_is_applied_and_a_refused_one_is_named_with_why() {
        let keys = tempfile::tempdir().unwrap();
        let Some(fixture) = signers(keys.path()).await else { return };
        let (alice, mallory) = (keys.path().join("alice"), keys.path().join("mallory"));
        let first = commit(&fixture, "first", Some(&alice));
        verified_shop(&fixture).await;
        assert_eq!(greeting(&fixture).await.as_deref(), Some("hello"));

        let fingerprint = signing::ssh_fingerprint(&keys.path().join("mallory.pub"));
        for (greeting_then, key, why) in [
            ("unsigned", None, "it is not signed".to_string()),
            (
                "mallory",
                Some(mallory.as_path()),
                format!("it is signed by ED25519 {fingerprint}, a key the trust list does not hold"),
            ),
        ] {
            fixture.source.write("charts/app/values.yaml", &format!("greeting: {greeting_then}\n"));
            let refused = commit(&fixture, greeting_then, key);
            fixture.request_reconcile("shop").await;
            let sync = fixture.reconcile("shop").await;
            let (status, reason, message) = ready(&sync);
            assert_eq!((status.as_str(), reason.as_str()), ("False", "VerificationFailed"), "{message}");
            let named = format!("commit {} (branch main) is refused: {why}", &refused[..8]);
            assert!(message.contains(&named), "{message}");
            assert!(
                message.contains("the trust list is Secret app/signers (spec.source.verify.secretRef)"),
                "{message}"
            );
            assert_eq!(greeting(&fixture).await.as_deref(), Some("hello"), "nothing of {greeting_then} is applied");
            assert_eq!(revisions(&sync), (Some(first.clone()), Some(refused.clone())));
        }

        // Signed again by alice: applied, over the refused commits below it (mode head).
        fixture.source.write("charts/app/values.yaml", "greeting: signed\n");
        let signed = commit(&fixture, "signed", Some(&alice));
        fixture.request_reconcile("shop").await;
        let sync = fixture.reconcile("shop").await;
        assert_eq!(ready(&sync).1, Reason::ReconciliationSucceeded.as_str(), "{:?}", ready(&sync));
        assert_eq!(greeting(&fixture).await.as_deref(), Some("signed"));
        assert_eq!(revisions(&sync).0, Some(signed));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn each_openpgp_signature_gnupg_refuses_is_refused_as_git_verify_commit_refuses_it() {
        if !weaver_test_support::skip::interop_or_skip(signing::missing(&["git", "gpg"]).as_deref()) {
            return;
        }
        let Some(fixture) = Fixture::start().await else { return };
        let gpg = signing::Gpg::new();
        let alice = gpg.rsa_key("Alice <alice@example.com>");
        let old = gpg.key_made_at("Old <old@example.com>", "20200101T000000");
        let primary = gpg.key("Primary <primary@example.com>");
        let with_subkey = gpg.key("Sub <sub@example.com>");
        let subkey = gpg.add_subkey(&with_subkey, "rsa2048", "sign");
        // Commits with git, signed by `key` with gpg given `options` first; the commit's id.
        let commit = |message: &str, key: &str, options: &[&str]| {
            let [format, sign_as] = signing::signing_with_openpgp(key);
            commit_with(&fixture, message, &gpg.env(), &[&format, &sign_as, &gpg.program_with(options)], true)
        };
        let first = commit("first", &alice, &[]);

        // Each a commit on a branch of its name off main, signed as GnuPG 2.2 refuses it: what
        // git verify-commit says, and why the controller refuses it.
        let by_alice = format!("OpenPGP {alice} (Alice <alice@example.com>)");
        let by_subkey = format!("{subkey}!");
        let cases: [(&str, &str, &[&str], &str, String); 5] = [
            (
                "md5",
                &alice,
                &["--digest-algo", "MD5"],
                "signatures using the MD5 algorithm are rejected",
                format!("its signature by {by_alice} is made with the digest MD5, which GnuPG refuses"),
            ),
            // A signature of 2020-01-02 made to last a day, by a key of 2020-01-01 that lasts;
            // gpg's clock frozen (`!`): under load its faked clock ticks on before it signs.
            (
                "expired",
                &old,
                &["--faked-system-time", "20200102T000000!", "--default-sig-expire", "1d"],
                "Expired signature",
                format!("its signature by OpenPGP {old} (Old <old@example.com>) expired at 2020-01-03T00:00:00Z"),
            ),
            // Dated before its key was made: gpg signs it only when told to ignore that.
            (
                "before",
                &alice,
                &["--faked-system-time", "20200101T000000!", "--ignore-time-conflict"],
                "Time conflict",
                format!("its signature by {by_alice} is dated 2020-01-01T00:00:00Z, before that key was made at"),
            ),
            // These two keys' usage is changed below, after they sign.
            (
                "by-primary",
                &primary,
                &[],
                "Wrong key usage",
                format!(
                    "it is signed by OpenPGP {primary} (Primary <primary@example.com>), whose key flags do not allow \
                     signing"
                ),
            ),
            (
                "by-subkey",
                &by_subkey,
                &[],
                "Wrong key usage",
                format!(
                    "it is signed by subkey {subkey} of OpenPGP {with_subkey} (Sub <sub@example.com>), whose key \
                     flags do not allow signing"
                ),
            ),
        ];
        let dir = fixture.source.dir();
        let refused: Vec<String> = cases
            .iter()
            .map(|(branch, key, options, ..)| {
                signing::git(&dir, &[], &[], &["checkout", "-q", "-b", branch, "main"]);
                fixture.source.write("charts/app/values.yaml", &format!("greeting: {branch}\n"));
                commit(branch, key, options)
            })
            .collect();
        signing::git(&dir, &[], &[], &["checkout", "-q", "main"]);
        // The primary key to certify alone; the signing subkey to encrypt alone.
        gpg.change_usage(&primary, 0, &["S"]);
        gpg.change_usage(&with_subkey, 1, &["S", "E"]);
        let keys: String = [&alice, &old, &primary, &with_subkey].iter().map(|key| gpg.export(key)).collect();
        secret(&fixture, "signers", "signers.asc", &keys).await;
        verified_shop(&fixture).await;

        for ((branch, _, _, gnupg_says, why), refused) in cases.iter().zip(refused) {
            let said = gpg.verify_commit(&dir, &refused).expect_err(branch);
            assert!(said.contains(gnupg_says), "{branch}: GnuPG refuses it for another reason: {said}");
            fixture.patch_sync("shop", json!({"spec": {"source": {"ref": {"branch": branch}}}})).await;
            let sync = fixture.reconcile("shop").await;
            let (status, reason, message) = ready(&sync);
            assert_eq!((status.as_str(), reason.as_str()), ("False", "VerificationFailed"), "{branch}: {message}");
            let named = format!("commit {} (branch {branch}) is refused: {why}", &refused[..8]);
            assert!(message.contains(&named), "{branch}: {message}");
            assert_eq!(greeting(&fixture).await.as_deref(), Some("hello"), "nothing of {branch} is applied");
            assert_eq!(revisions(&sync), (Some(first.clone()), Some(refused)));
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn mode_all_refuses_an_unsigned_commit_a_signed_merge_carries_in_and_mode_head_does_not_look() {
        let keys = tempfile::tempdir().unwrap();
        let Some(fixture) = signers(keys.path()).await else { return };
        let alice = keys.path().join("alice");
        let first = commit(&fixture, "first", Some(&alice));
        let verify = |mode: &str| {
            json!({"source": {"url": fixture.source.url(), "ref": {"branch": "main"},
            "verify": {"mode": mode, "secretRef": {"name": "signers"}}}})
        };
        fixture.create_sync("shop", verify("all")).await;
        assert_eq!(revisions(&fixture.reconcile("shop").await).0, Some(first.clone()));

        // An unsigned commit on a side branch, merged into main by a signed merge.
        let dir = fixture.source.dir();
        signing::git(&dir, &[], &[], &["checkout", "-q", "-b", "side"]);
        fixture.source.write("charts/app/values.yaml", "greeting: smuggled\n");
        let unsigned = commit(&fixture, "unsigned", None);
        signing::git(&dir, &[], &[], &["checkout", "-q", "main"]);
        let config = signing_with_ssh(&alice);
        let config: Vec<&str> = config.iter().map(String::as_str).collect();
        signing::git(&dir, &[], &config, &["merge", "-q", "--no-ff", "-S", "-m", "merge side", "side"]);
        let merge = signing::git(&dir, &[], &[], &["rev-parse", "HEAD"]).trim().to_string();

        fixture.request_reconcile("shop").await;
        let sync = fixture.reconcile("shop").await;
        let (status, reason, message) = ready(&sync);
        assert_eq!((status.as_str(), reason.as_str()), ("False", "VerificationFailed"), "{message}");
        let named =
            format!("commit {} (in {}..{}) is refused: it is not signed", &unsigned[..8], &first[..8], &merge[..8]);
        assert!(message.contains(&named), "{message}");
        assert_eq!(greeting(&fixture).await.as_deref(), Some("hello"));
        assert_eq!(revisions(&sync), (Some(first), Some(merge.clone())));

        // `head` checks the merge alone, which alice signed.
        fixture.patch_sync("shop", json!({"spec": verify("head")})).await;
        let sync = fixture.reconcile("shop").await;
        assert_eq!(ready(&sync).1, Reason::ReconciliationSucceeded.as_str(), "{:?}", ready(&sync));
        assert_eq!((greeting(&fixture).await.as_deref(), revisions(&sync).0), (Some("smuggled"), Some(merge)));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_trust_list_that_is_missing_or_unreadable_is_named_and_nothing_is_applied() {
        let keys = tempfile::tempdir().unwrap();
        let Some(fixture) = signers(keys.path()).await else { return };
        commit(&fixture, "first", Some(&keys.path().join("alice")));
        secret(&fixture, "garbled", "allowed_signers", "alice@example.com ssh-ed25519 not-base64\n").await;
        secret(&fixture, "empty", "allowed_signers", "# nobody yet\n").await;
        // The source's credentials named by mistake: its known_hosts would read as signers.
        secret(
            &fixture,
            "credentials",
            "known_hosts",
            "git.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG7KjrFuurq0d46uzQHULpb7JDaRsUhxUzbr5AP+Ng/Y\n",
        )
        .await;
        let with = |name: &str| {
            json!({"source": {"url": fixture.source.url(), "ref": {"branch": "main"},
            "verify": {"secretRef": {"name": name}}}})
        };
        fixture.create_sync("shop", with("absent")).await;
        for (name, reason, part) in [
            ("absent", "SecretNotFound", "Secret app/absent (spec.source.verify.secretRef) does not exist"),
            (
                "garbled",
                "SecretInvalid",
                "Secret app/garbled (spec.source.verify.secretRef) key `allowed_signers`, line 1, cannot be read",
            ),
            (
                "credentials",
                "SecretInvalid",
                "Secret app/credentials (spec.source.verify.secretRef) has key `known_hosts`, which is no trust list",
            ),
            ("empty", "SecretInvalid", "Secret app/empty (spec.source.verify.secretRef) holds no key"),
        ] {
            fixture.patch_sync("shop", json!({"spec": with(name)})).await;
            let sync = fixture.reconcile("shop").await;
            let (status, got, message) = ready(&sync);
            assert_eq!((status.as_str(), got.as_str()), ("False", reason), "{message}");
            assert!(message.contains(part), "{message}");
            assert!(!message.contains("not-base64"), "a value is quoted: {message}");
            assert_eq!(greeting(&fixture).await, None, "nothing applied");
        }
    }

    /// `spec.source.oci.verify`'s Secret is read before the registry is asked: missing, without
    /// a `*.pub` key, or with a value that is no cosign public key, it is named (the key and
    /// line), never quoted, and nothing is pulled or applied.
    #[tokio::test(flavor = "multi_thread")]
    async fn cosign_keys_that_are_missing_or_unreadable_are_named_before_the_registry_is_asked() {
        let Some(fixture) = Fixture::start().await else { return };
        secret(&fixture, "unnamed", "cosign.key", "not a public key\n").await;
        let private = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIPrivateKeyBytes\n-----END EC PRIVATE KEY-----\n";
        secret(&fixture, "private", "release.pub", private).await;
        // No registry listens there: a pull would fail with ArtifactPullFailed.
        let with = |name: &str| {
            json!({"source": {"oci": {"url": "oci://127.0.0.1:9/shop/deploy", "tag": "main", "insecure": true,
                                      "verify": {"provider": "cosign", "secretRef": {"name": name}}}}})
        };
        fixture.create_sync("shop", with("absent")).await;
        let field = "spec.source.oci.verify.secretRef";
        for (name, reason, part) in [
            ("absent", "SecretNotFound", format!("Secret app/absent ({field}) does not exist")),
            ("unnamed", "SecretInvalid", format!("Secret app/unnamed ({field}) holds no cosign public key")),
            (
                "private",
                "SecretInvalid",
                format!(
                    "Secret app/private ({field}) key `release.pub`, line 1, cannot be read: this is a private key"
                ),
            ),
        ] {
            fixture.patch_sync("shop", json!({"spec": with(name)})).await;
            let sync = fixture.reconcile("shop").await;
            let (status, got, message) = ready(&sync);
            assert_eq!((status.as_str(), got.as_str()), ("False", reason), "{message}");
            assert!(message.contains(&part), "{message}");
            assert!(!message.contains("PrivateKeyBytes"), "a value is quoted: {message}");
            assert_eq!(greeting(&fixture).await, None, "nothing applied");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_promotion_is_signed_with_its_key_so_that_git_and_the_next_verification_accept_it() {
        let keys = tempfile::tempdir().unwrap();
        let Some(fixture) = signers(keys.path()).await else { return };
        let (bot_key, bot) = signing::ssh_key(keys.path(), "bot", &["-t", "ed25519"]);
        let alice = keys.path().join("alice");
        // The trust list holds alice and the bot; the bot's private key is its own Secret's.
        let alice_line = std::fs::read_to_string(keys.path().join("alice.pub")).unwrap();
        let list = format!("alice@example.com {alice_line}bot@weaver.invalid {bot}\n");
        secret(&fixture, "signers-and-bot", "allowed_signers", &list).await;
        let private = std::fs::read_to_string(&bot_key).unwrap();
        secret(&fixture, "bot-key", "signingKey", &private).await;
        fixture.namespace("staging").await;
        promoting(&fixture, "1ms");
        let first = commit(&fixture, "staging and dev", Some(&alice));
        fixture.create_sync("staging", json!({"environments": ["staging"]})).await;
        fixture.reconcile("staging").await;
        let author = json!({"name": AUTHOR.0, "email": AUTHOR.1});
        let source = json!({"url": fixture.source.url(), "ref": {"branch": "main"},
            "verify": {"secretRef": {"name": "signers-and-bot"}}});
        let promotion = json!({"interval": "1ms", "author": author, "signingKey": {"secretRef": {"name": "bot-key"}}});
        fixture.create_sync("shop", json!({"source": source, "promotion": promotion})).await;

        let promoted = fixture.reconcile("shop").await;
        assert_eq!(revisions(&promoted).0, Some(first.clone()), "{:?}", ready(&promoted));
        let (status, reason, message) = condition(&promoted, "Promoted").expect("a Promoted condition");
        assert_eq!((status.as_str(), reason.as_str()), ("True", "Promoted"), "{message}");
        let pushed = fixture.source.branch("main").expect("main");
        assert_ne!(pushed, first);

        // git itself accepts the bot's signature, against the same list.
        let allowed = keys.path().join("allowed_signers");
        std::fs::write(&allowed, &list).unwrap();
        let allowed_signers = format!("gpg.ssh.allowedSignersFile={}", allowed.display());
        let dir = fixture.source.dir();
        let shown = signing::git(&dir, &[], &[&allowed_signers], &["log", "-1", "--format=%G? %GS %GK", &pushed]);
        let fingerprint = signing::ssh_fingerprint(&keys.path().join("bot.pub"));
        assert_eq!(shown.trim(), format!("G bot@weaver.invalid {fingerprint}"));

        // And so does the next reconcile, which applies the promoted pins.
        fixture.request_reconcile("shop").await;
        let applied = fixture.reconcile("shop").await;
        assert_eq!(revisions(&applied).0, Some(pushed), "{:?}", ready(&applied));
        assert_eq!(greeting(&fixture).await.as_deref(), Some("v2"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_signing_key_secret_that_cannot_sign_stops_the_push_by_name_and_never_quotes_it() {
        let keys = tempfile::tempdir().unwrap();
        let Some(fixture) = signers(keys.path()).await else { return };
        let alice = keys.path().join("alice");
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "a passphrase", "-f"])
            .arg(keys.path().join("locked"))
            .output()
            .expect("ssh-keygen");
        assert!(out.status.success());
        let locked = std::fs::read_to_string(keys.path().join("locked")).unwrap();
        secret(&fixture, "locked-key", "signingKey", &locked).await;
        fixture.namespace("staging").await;
        promoting(&fixture, "1ms");
        commit(&fixture, "staging and dev", Some(&alice));
        fixture.create_sync("staging", json!({"environments": ["staging"]})).await;
        fixture.reconcile("staging").await;
        let author = json!({"name": AUTHOR.0, "email": AUTHOR.1});
        let source = json!({"url": fixture.source.url(), "ref": {"branch": "main"},
            "verify": {"secretRef": {"name": "signers"}}});
        for (secret_name, reason, part) in [
            (
                "none-such",
                "SecretNotFound",
                "Secret app/none-such (spec.promotion.signingKey.secretRef) does not exist",
            ),
            (
                "locked-key",
                "SecretInvalid",
                "Secret app/locked-key (spec.promotion.signingKey.secretRef) `signingKey`: the OpenSSH private key is protected by a passphrase",
            ),
        ] {
            let promotion =
                json!({"interval": "1ms", "author": author, "signingKey": {"secretRef": {"name": secret_name}}});
            let name = format!("shop-{secret_name}");
            fixture.create_sync(&name, json!({"source": source, "promotion": promotion})).await;
            let sync = fixture.reconcile(&name).await;
            let (status, got, message) = condition(&sync, "Promoted").expect("a Promoted condition");
            assert_eq!((status.as_str(), got.as_str()), ("False", reason), "{message}");
            assert!(message.contains(part), "{message}");
            let secret_lines = locked.lines().filter(|line| !line.starts_with("-----"));
            for line in secret_lines {
                assert!(!message.contains(line), "{message}");
            }
        }
    }
}
