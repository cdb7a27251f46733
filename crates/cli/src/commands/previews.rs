//! `weaver previews list | delete`: the preview environments of EnvironmentSyncs
//! (`spec.previews`), as their status says them, and a deletion asked of the controller (which
//! prunes the preview; this only writes the request). A table, or a report (`-o json|yaml`, schema
//! in docs/src/reference/json-output.md). Exit 0, 1 on error.

use std::process::ExitCode;

use super::sync_tables::previews_table;
use super::{Ui, block_on, connect_options, write_stdout};
use crate::cli::{PreviewsCommand, SyncFormat};
use weaver_api::environment_sync::short;
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
