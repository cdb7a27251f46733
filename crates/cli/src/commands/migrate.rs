//! `weaver migrate`: weaver's custom resources moved to `v1beta1`, in the cluster or, with `-f`,
//! in manifests (`weaver_engine::action::migrate`). Exit 2 when something moved (or, with
//! `--dry-run`, would), 0 when everything was at `v1beta1` already.

use std::process::ExitCode;

use super::{block_on, connect_options, write_stdout};
use crate::cli::MigrateArgs;
use weaver_core::error::Result;
use weaver_engine::action::migrate;

pub fn run(args: &MigrateArgs) -> Result<ExitCode> {
    let (would, did) = if args.dry_run { ("would rewrite", "would store") } else { ("rewrote", "stored") };
    let mut text = String::new();
    let moved = match &args.filename {
        Some(dir) => {
            let files = migrate::files(dir, args.dry_run)?;
            for file in &files {
                let whole = match file.rewritten_whole {
                    0 => String::new(),
                    n => format!(
                        " ({n} written anew: their status differs between the versions, their comments are gone)"
                    ),
                };
                text.push_str(&format!(
                    "{would} {}: {} document(s) to v1beta1{whole}\n",
                    file.path.display(),
                    file.documents
                ));
            }
            if files.is_empty() {
                text.push_str(&format!("no v1alpha1 EnvironmentSync or ConfigMapSync under {}\n", dir.display()));
            }
            !files.is_empty()
        }
        None => {
            let migrated = block_on(migrate::cluster_stored_versions(&connect_options(&args.cluster), args.dry_run))?;
            for crd in &migrated {
                match crd.changed() {
                    true => text.push_str(&format!(
                        "{did} {} object(s) of {} at {} (storedVersions were {})\n",
                        crd.rewritten,
                        crd.crd,
                        crd.storage,
                        crd.before.join(", ")
                    )),
                    false => text.push_str(&format!("{}: every object is stored at {}\n", crd.crd, crd.storage)),
                }
            }
            if migrated.is_empty() {
                text.push_str("weaver's CRDs are not installed: nothing to migrate\n");
            }
            migrated.iter().any(|crd| crd.changed())
        }
    };
    write_stdout(text.as_bytes())?;
    Ok(if moved { ExitCode::from(2) } else { ExitCode::SUCCESS })
}
