//! `weaver previews list | delete`: the preview environments of EnvironmentSyncs
//! (`spec.previews`), as their status says them, and a deletion asked of the controller (which
//! prunes the preview; this only writes the request). A table, or a report (`-o json|yaml`, schema
//! in docs/src/reference/json-output.md). Exit 0, 1 on error.

use std::io::IsTerminal;
use std::process::ExitCode;

use super::sync::truncate;
use super::{Ui, block_on, connect_options, table, write_stdout};
use crate::cli::{PreviewsCommand, SyncFormat};
use weaver_api::environment_sync::{PreviewStatus, short};
use weaver_core::error::Result;
use weaver_engine::action::sync::{self, DeletePreviewOptions, GetOptions, PreviewDeletion, Target};
use weaver_engine::report::json::{PreviewsReport, to_text};

pub fn run(ui: &Ui, command: &PreviewsCommand) -> Result<ExitCode> {
    let on = |p: weaver_engine::action::Progress<'_>| ui.progress(p);
    match command {
        PreviewsCommand::List(args) => {
            let options = GetOptions {
                target: Target { connect: connect_options(&args.cluster), namespace: args.namespace.namespace.clone() },
                all_namespaces: args.all_namespaces,
                selector: None,
                name: args.sync.clone(),
            };
            let listing = block_on(sync::get(&options, &on))?;
            let report = PreviewsReport::new(listing.namespace.as_deref(), &listing.syncs);
            let text = match args.output {
                SyncFormat::Json => to_text(&report),
                SyncFormat::Yaml => {
                    weaver_yaml::to_yaml_string(&serde_json::to_value(&report).expect("reports serialize"))
                }
                SyncFormat::Text if report.previews.is_empty() => {
                    ui.status(&match (&args.sync, &listing.namespace) {
                        (Some(sync), Some(ns)) => format!("EnvironmentSync {ns}/{sync} has no preview"),
                        (None, Some(ns)) => format!("no preview in the EnvironmentSyncs of namespace {ns}"),
                        (_, None) => "no preview in any namespace's EnvironmentSyncs".to_string(),
                    });
                    String::new()
                }
                SyncFormat::Text => {
                    let rows = report.previews.iter().map(|entry| {
                        let sync = match listing.namespace {
                            Some(_) => entry.sync.to_string(),
                            None => format!("{}/{}", entry.sync_namespace, entry.sync),
                        };
                        (Some(sync), entry.preview)
                    });
                    previews_table(ui, rows)
                }
            };
            write_stdout(text.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        PreviewsCommand::Delete(args) => {
            let options = DeletePreviewOptions {
                target: Target { connect: connect_options(&args.cluster), namespace: args.namespace.namespace.clone() },
                sync: args.sync.clone(),
                name: args.name.clone(),
                wait: args.wait.then_some(args.timeout),
            };
            let text = match block_on(sync::delete_preview(&options, &on))? {
                PreviewDeletion::AlreadyDeleted { preview } => format!(
                    "preview {} was already deleted at {}: a push to its branch {} makes it again\n",
                    preview.name,
                    short(&preview.commit),
                    preview.branch
                ),
                PreviewDeletion::Asked { sync, preview } => {
                    let (ns, name) =
                        (sync.metadata.namespace.unwrap_or_default(), sync.metadata.name.unwrap_or_default());
                    format!(
                        "asked for the deletion of preview {} (at {}) of EnvironmentSync {ns}/{name}; `weaver previews \
                         list --sync {name} -n {ns}` shows it Deleted once the controller has pruned it\n",
                        preview.name,
                        short(&preview.commit)
                    )
                }
                PreviewDeletion::Deleted { sync, preview } => {
                    let (ns, name) =
                        (sync.metadata.namespace.unwrap_or_default(), sync.metadata.name.unwrap_or_default());
                    match preview {
                        Some(preview) => format!(
                            "preview {} of EnvironmentSync {ns}/{name} deleted (its objects and namespace {}); it stays \
                             deleted until a push to its branch {}\n",
                            preview.name, preview.namespace, preview.branch
                        ),
                        None => format!(
                            "preview {} of EnvironmentSync {ns}/{name} is gone: its branch went meanwhile\n",
                            args.name
                        ),
                    }
                }
            };
            write_stdout(text.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The previews as a table, one row each: with a SYNC column when `rows` name their
/// EnvironmentSync (`weaver previews list`), without in `weaver sync get NAME`.
pub(super) fn previews_table<'a>(
    ui: &Ui,
    rows: impl IntoIterator<Item = (Option<String>, &'a PreviewStatus)>,
) -> String {
    let tty = std::io::stdout().is_terminal();
    let header = ["NAME", "BRANCH", "COMMIT", "STATE", "NAMESPACE", "URL", "MESSAGE"].map(String::from);
    let mut table_rows: Vec<Vec<String>> = Vec::new();
    let mut with_sync = false;
    for (sync, p) in rows {
        let mut row = vec![
            p.name.clone(),
            p.branch.clone(),
            short(&p.commit).to_string(),
            p.state.to_string(),
            p.namespace.clone(),
            p.url.clone().unwrap_or_else(|| "-".into()),
            p.message.as_deref().map_or_else(|| "-".to_string(), |m| truncate(m, tty)),
        ];
        if let Some(sync) = sync {
            with_sync = true;
            row.insert(0, sync);
        }
        table_rows.push(row);
    }
    let mut header = header.to_vec();
    if with_sync {
        header.insert(0, "SYNC".into());
    }
    table_rows.insert(0, header);
    table(ui, &table_rows)
}
