//! `weaver envs`: environments (all, or a selection), their labels, releases, charts and
//! namespaces.

use std::process::ExitCode;

use super::Ui;
use crate::cli::{EnvsArgs, GlobalArgs, ListFormat};
use weaver_core::error::Result;
use weaver_engine::action::fleet::select_environments;
use weaver_engine::action::open_project;
use weaver_engine::report::json::{EnvsReport, to_text};

pub fn run(global: &GlobalArgs, ui: &Ui, args: &EnvsArgs) -> Result<ExitCode> {
    let rev = args.source.rev.as_deref();
    let selection = super::environment_selection(&args.environments);
    // Without a selection, every environment, abstract ones too: what the repository defines.
    let environments = if selection.is_empty() {
        let project = open_project(&global.repo, rev)?;
        project.environment_names()?.iter().map(|name| project.environment(name)).collect::<Result<Vec<_>>>()?
    } else {
        select_environments(&global.repo, rev, &selection)?
    };
    let output = match args.output {
        ListFormat::Json => to_text(&EnvsReport::new(&environments)),
        ListFormat::Text => {
            let mut rows =
                vec![["ENVIRONMENT", "LABELS", "RELEASE", "CHART", "NAMESPACE", "NEEDS"].map(String::from).to_vec()];
            for env in &environments {
                let env_label = if env.is_abstract { format!("{} (abstract)", env.name) } else { env.name.clone() };
                let labels: Vec<String> = env.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let labels = if labels.is_empty() { "-".to_string() } else { labels.join(",") };
                let row = |cells: [String; 4]| [vec![env_label.clone(), labels.clone()], cells.to_vec()].concat();
                if env.releases.is_empty() {
                    rows.push(row(["-".into(), "-".into(), env.namespace.clone(), "-".into()]));
                }
                for r in &env.releases {
                    let name = if r.installed { r.name.clone() } else { format!("{} (not installed)", r.name) };
                    let needs = if r.needs.is_empty() { "-".to_string() } else { r.needs.join(",") };
                    rows.push(row([name, r.chart.clone(), r.namespace.clone(), needs]));
                }
            }
            super::table(ui, &rows)
        }
    };
    super::write_stdout(output.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
