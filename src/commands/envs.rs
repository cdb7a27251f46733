//! `weaver envs`: environments, their releases, charts and namespaces.

use std::process::ExitCode;

use super::Ui;
use crate::action::open_project;
use crate::cli::{EnvsArgs, GlobalArgs, ListFormat};
use crate::error::Result;
use crate::report::json::{EnvsReport, to_text};

pub fn run(global: &GlobalArgs, ui: &Ui, args: &EnvsArgs) -> Result<ExitCode> {
    let project = open_project(&global.repo, args.source.rev.as_deref())?;
    let mut environments = Vec::new();
    for name in project.environment_names()? {
        environments.push(project.environment(&name)?);
    }
    let output = match args.output {
        ListFormat::Json => to_text(&EnvsReport::new(&environments)),
        ListFormat::Text => {
            let mut rows = vec![["ENVIRONMENT", "RELEASE", "CHART", "NAMESPACE", "NEEDS"].map(String::from).to_vec()];
            for env in &environments {
                let env_label = if env.is_abstract { format!("{} (abstract)", env.name) } else { env.name.clone() };
                if env.releases.is_empty() {
                    rows.push(vec![env_label.clone(), "-".into(), "-".into(), env.namespace.clone(), "-".into()]);
                }
                for r in &env.releases {
                    let name = if r.installed { r.name.clone() } else { format!("{} (not installed)", r.name) };
                    let needs = if r.needs.is_empty() { "-".to_string() } else { r.needs.join(",") };
                    rows.push(vec![env_label.clone(), name, r.chart.clone(), r.namespace.clone(), needs]);
                }
            }
            super::table(ui, &rows)
        }
    };
    super::write_stdout(output.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
