//! `weaver push artifact`: the repository at a commit, pushed as an OCI artifact.

use std::process::ExitCode;

use super::Ui;
use crate::cli::{GlobalArgs, ListFormat, PushCommand};
use weaver_core::error::Result;
use weaver_engine::action::push::{PushArtifactOptions, push_artifact};
use weaver_source::charts::oci::Artifact;

pub fn run(global: &GlobalArgs, ui: &Ui, command: &PushCommand) -> Result<ExitCode> {
    let PushCommand::Artifact(args) = command;
    let artifact = Artifact::parse(&args.reference, args.plain_http, "REF")?;
    let options = PushArtifactOptions { repo: global.repo.clone(), rev: args.source.rev.clone(), artifact };
    let pushed = push_artifact(&options)?;
    let text = match args.output {
        ListFormat::Json => weaver_engine::report::json::to_text(&pushed),
        ListFormat::Text => format!(
            "pushed {} files of commit {} to {}\n{}\n",
            pushed.files,
            &pushed.commit[..12],
            pushed.artifact,
            pushed.digest
        ),
    };
    super::write_stdout(ui.redactor.redact(&text).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
