//! `weaver changed`: the releases a change affects, for pipelines. The JSON output is a
//! documented, stable interface (README, "Git"): fields may be added, never renamed or removed.

use std::process::ExitCode;

use serde_json::json;

use super::Ui;
use crate::action::compare;
use crate::cli::{ChangedArgs, GlobalArgs, ListFormat};
use crate::error::Result;
use crate::git::Revision;

pub fn run(global: &GlobalArgs, ui: &Ui, args: &ChangedArgs) -> Result<ExitCode> {
    let comparison = compare(&global.repo, (&args.base, "--base"), args.head.as_deref().map(|rev| (rev, "--head")))?;
    let changes = comparison.change_set()?;
    let output = match args.output {
        ListFormat::Json => {
            let revision = |r: Option<&Revision>| json!(r.map(|r| r.commit.to_string()));
            let head = match &comparison.head {
                Some(head) => json!({ "rev": head.spec, "commit": revision(Some(head)), "workingTree": false }),
                None => {
                    json!({ "rev": null, "commit": revision(comparison.working_tree_commit.as_ref()), "workingTree": true })
                }
            };
            let releases: Vec<_> = changes
                .releases
                .iter()
                .map(|r| {
                    json!({ "environment": r.environment, "release": r.release, "status": r.status.as_str(), "paths": r.paths })
                })
                .collect();
            let value = json!({
                "base": { "rev": comparison.base.spec, "commit": revision(Some(&comparison.base)) },
                "head": head,
                "releases": releases,
                "unattributed": changes.unattributed,
            });
            serde_json::to_string_pretty(&value).expect("JSON values serialize") + "\n"
        }
        ListFormat::Text => {
            let head = match (&comparison.head, &comparison.working_tree_commit) {
                (Some(head), _) => head.to_string(),
                (None, Some(commit)) => format!("the working tree (on commit {})", commit.short()),
                (None, None) => "the working tree".to_string(),
            };
            let mut text = format!("base: {}\nhead: {head}\n\n", comparison.base);
            if changes.releases.is_empty() {
                text.push_str("no release is affected\n");
            } else {
                let mut rows = vec![["ENVIRONMENT", "RELEASE", "STATUS", "BECAUSE OF"].map(String::from).to_vec()];
                for r in &changes.releases {
                    let paths: Vec<String> = r.paths.iter().map(|p| p.display().to_string()).collect();
                    rows.push(vec![
                        r.environment.clone(),
                        r.release.clone(),
                        r.status.as_str().into(),
                        paths.join(", "),
                    ]);
                }
                text.push_str(&super::table(ui, &rows));
            }
            if !changes.unattributed.is_empty() {
                text.push_str("\nunattributed (weaver cannot tell which releases these affect):\n");
                for path in &changes.unattributed {
                    text.push_str(&format!("  {}\n", path.display()));
                }
            }
            text
        }
    };
    super::write_stdout(output.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
