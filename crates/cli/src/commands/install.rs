//! `weaver install` and `weaver uninstall`: the chart built into the binary, applied (or
//! removed) as release `weaver` with weaver's own apply; the output is `weaver apply`'s.

use std::process::ExitCode;

use super::progress::{ApplyProgress, finish};
use super::{Ui, block_on, connect_options, write_stdout};
use crate::cli::{InstallArgs, UninstallArgs};
use weaver_core::error::Result;
use weaver_engine::action::Context;
use weaver_engine::action::install::{InstallOptions, install as install_chart, render_install, uninstall as remove};
use weaver_render::overrides::OverrideFlags;

pub fn install(ui: &Ui, args: &InstallArgs) -> Result<ExitCode> {
    let options = InstallOptions {
        namespace: args.namespace.clone(),
        overrides: super::override_flags(&args.target.overrides),
        connect: connect_options(&args.target.cluster),
        settings: weaver_engine::action::apply::Settings {
            wait: args.readiness.wait,
            timeout: args.readiness.timeout,
            force_conflicts: args.readiness.force_conflicts,
            ..super::default_apply_settings()
        },
    };
    if args.dry_run {
        let desired = render_install(&options, Context::new(&ui.redactor, &|p| ui.progress(p)))?;
        let mut out = String::new();
        for manifest in desired.rendered.releases.iter().flat_map(|r| &r.manifests) {
            out.push_str("---\n");
            weaver_yaml::write_yaml(&mut out, &manifest.object);
        }
        write_stdout(out.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let progress = ApplyProgress::new(ui, &options.settings, args.output);
    let applied = block_on(install_chart(
        &options,
        Context::new(&ui.redactor, &|p| progress.on(p)).interruptible(&progress.interrupted),
    ))?;
    finish(ui, applied, args.output)
}

pub fn uninstall(ui: &Ui, args: &UninstallArgs) -> Result<ExitCode> {
    let options = InstallOptions {
        namespace: args.namespace.clone(),
        overrides: OverrideFlags::default(),
        connect: connect_options(&args.cluster),
        settings: weaver_engine::action::apply::Settings { timeout: args.timeout, ..super::default_apply_settings() },
    };
    let progress = ApplyProgress::new(ui, &options.settings, args.output);
    let uninstalled = block_on(remove(
        &options,
        args.crds,
        Context::new(&ui.redactor, &|p| progress.on(p)).interruptible(&progress.interrupted),
    ))?;
    for (crd, count) in &uninstalled.kept {
        let resources = match count {
            1 => "1 custom resource of it remains".to_string(),
            n => format!("{n} custom resources of it remain"),
        };
        ui.status(&format!("kept customresourcedefinition {crd}: {resources} (uninstall --crds deletes them)"));
    }
    for secret in &uninstalled.kept_secrets {
        ui.status(&format!(
            "kept Secret {secret}: the repository's credentials weaver bootstrap wrote, which weaver bootstrap --recover reads (delete it when done: kubectl delete secret -n {})",
            secret.split('/').next().unwrap_or_default()
        ));
    }
    finish(ui, uninstalled.applied, args.output)
}
