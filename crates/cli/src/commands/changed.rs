//! `weaver changed`: the environments and releases a change affects (of all environments, or
//! of those `--env` and `--env-selector` select), for pipelines. The JSON output is a
//! documented, stable interface (docs/src/reference/json-output.md): fields may be added, never renamed or removed.

use std::process::ExitCode;

use super::Ui;
use crate::cli::{ChangedArgs, GlobalArgs, ListFormat};
use weaver_core::error::Result;
use weaver_engine::action::compare;
use weaver_engine::action::fleet::select_environments;
use weaver_engine::report::json::{ChangedReport, to_text};

pub fn run(global: &GlobalArgs, ui: &Ui, args: &ChangedArgs) -> Result<ExitCode> {
    let comparison = compare(&global.repo, (&args.base, "--base"), args.head.as_deref().map(|rev| (rev, "--head")))?;
    let mut changes = comparison.change_set()?;
    let selection = super::environment_selection(&args.environments);
    if !selection.is_empty() {
        // Selected as the head (or the working tree) defines them.
        let selected = select_environments(&global.repo, args.head.as_deref(), &selection)?;
        changes.releases.retain(|r| selected.iter().any(|e| e.name == r.environment));
    }
    let output = match args.output {
        ListFormat::Json => to_text(&ChangedReport::new(&comparison, &changes)),
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
                text.push_str(&format!("environments: {}\n\n", changes.environments().join(", ")));
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
