//! `weaver init [DIR]`: a new repository's skeleton. Prints the files written on stdout (or, with
//! `-o json`, what was written and where the key is; schema in docs/src/reference/json-output.md),
//! and on stderr where the age key is (never the key itself) and what to do next.

use std::path::Path;
use std::process::ExitCode;

use super::Ui;
use crate::cli::{GlobalArgs, InitArgs, ListFormat};
use weaver_core::error::Result;
use weaver_engine::action::init::{InitOptions, Initialized, KeyChoice, init};

/// `-o json`'s document.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    schema_version: u32,
    /// The directory written, as given.
    repository: &'a Path,
    environment: &'a str,
    namespace: &'a str,
    #[serde(flatten)]
    initialized: &'a Initialized,
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &InitArgs) -> Result<ExitCode> {
    let dir = args.dir.clone().unwrap_or_else(|| global.repo.clone());
    let key = match (args.no_key, &args.key_file) {
        (true, _) => KeyChoice::Existing(args.recipient.clone()),
        (false, Some(path)) => KeyChoice::New(path.clone()),
        (false, None) => KeyChoice::Held,
    };
    let options = InitOptions {
        dir,
        env: args.env.clone(),
        namespace: args.namespace.clone().unwrap_or_else(|| args.env.clone()),
        key,
        weaver_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let done = init(&options)?;
    let out = match args.output {
        ListFormat::Text => done.written.iter().map(|file| format!("wrote {}\n", file.display())).collect(),
        ListFormat::Json => {
            let document = Document {
                schema_version: 1,
                repository: &options.dir,
                environment: &options.env,
                namespace: &options.namespace,
                initialized: &done,
            };
            format!("{}\n", serde_json::to_string_pretty(&document).unwrap_or_default())
        }
    };
    super::write_stdout(out.as_bytes())?;

    let recipients = done.recipients.join(", ");
    ui.status(&format!("a new weaver repository in {}", options.dir.display()));
    // What the next command needs to find the key, when it does not find it by itself.
    let mut key_setting = String::new();
    match &done.key_file {
        Some(key) => {
            ui.status(&format!(
                "new age key written to {} (mode 0600; back it up, never commit it); its public key {recipients} is the recipient in .sops.yaml",
                key.path.display()
            ));
            if !key.found_by_default {
                key_setting = format!("WEAVER_AGE_KEY_FILE={} ", key.path.display());
                ui.status(&format!(
                    "weaver finds it with {key_setting}(or --identity), sops with SOPS_AGE_KEY_FILE; your key file at sops's default place was left as it was"
                ));
            }
        }
        None if !done.held_keys.is_empty() => {
            let held: Vec<String> =
                done.held_keys.iter().map(|key| format!("{} (from {})", key.recipient, key.source)).collect();
            ui.status(&format!(
                "no key written: secrets encrypted to the age key{} you hold, found where weaver and sops look: {}; .sops.yaml names {}",
                if held.len() == 1 { "" } else { "s" },
                held.join(", "),
                if held.len() == 1 { "it" } else { "them" },
            ));
        }
        None => ui.status(&format!("no key written: secrets encrypted to {recipients} (--recipient)")),
    }
    let repo = match options.dir.as_path() == Path::new(".") {
        true => String::new(),
        false => format!("--repo {} ", options.dir.display()),
    };
    ui.status(&format!("next: {key_setting}weaver {repo}render --env {}", options.env));
    ui.status(
        "CI: .github/workflows/weaver.yml plans pull requests and applies main; its first lines say which secrets \
         to give it, and where",
    );
    Ok(ExitCode::SUCCESS)
}
