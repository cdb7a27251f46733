//! `weaver tenant add`: the flags, the action, and what to tell the team.

use std::process::ExitCode;

use super::bootstrap::{given_access, read};
use super::{Ui, block_on, connect_options};
use crate::cli::{ListFormat, TenantAddArgs};
use weaver_core::error::Result;
use weaver_engine::action::Context;
use weaver_engine::action::tenant::{TenantOptions, add as add_tenant};

pub fn add(ui: &Ui, args: &TenantAddArgs) -> Result<ExitCode> {
    let given = given_access(&args.access)?;
    let age_key = match &args.age_key_file {
        Some(file) => Some((file.clone(), String::from_utf8_lossy(&read("--age-key-file", file)?).into_owned())),
        None => None,
    };
    let namespace = args.namespace.clone().unwrap_or_else(|| args.name.clone());
    let options = TenantOptions {
        name: args.name.clone(),
        namespace: namespace.clone(),
        controller_namespace: args.controller_namespace.clone(),
        source_url: args.source_url.clone(),
        source_branch: args.source_branch.clone(),
        source_path: args.source_path.clone(),
        environments: args.environment.clone(),
        access: given.access,
        known_hosts: given.known_hosts,
        ca_file: given.ca_file,
        age_key,
        connect: connect_options(&args.cluster),
        timeout: args.timeout,
        author: (args.author_name.clone(), args.author_email.clone()),
    };
    let added = block_on(add_tenant(&options, Context::new(&ui.redactor, &|p| ui.progress(p))))?;
    let (name, short) = (&args.name, &added.commit[..12]);
    ui.status(&match (added.pushed, added.secrets_written.is_empty()) {
        (false, true) => format!("tenant {name} is in {short} of branch {}: nothing to write", added.branch),
        (false, false) => format!("tenant {name} is in {short} of branch {}: its Secrets written again", added.branch),
        (true, _) => format!(
            "tenant {name} pushed in {short} to branch {}: the controller applies it at its next reconcile (`weaver sync get -n {namespace} {name}` shows it)",
            added.branch
        ),
    });
    // The token stays in the Secret: this says where to read it, never shows it.
    ui.status(&format!(
        "webhook: have the tenant's git host POST its pushes to the controller's receiver at /hook/{namespace}/{name}, with the token `kubectl -n {namespace} get secret {} -o jsonpath='{{.data.token}}' | base64 -d` prints (docs: guides/gitops-webhooks.md)",
        added.webhook_secret
    ));
    if args.output == ListFormat::Json {
        let report = serde_json::json!({
            "schemaVersion": 1,
            "tenant": name,
            "namespace": namespace,
            "branch": added.branch,
            "commit": added.commit,
            "pushed": added.pushed,
            "written": added.written,
            "secretsWritten": added.secrets_written,
            "webhook": {"path": format!("/hook/{namespace}/{name}"), "secretName": added.webhook_secret},
        });
        super::write_stdout(format!("{report}\n").as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}
