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
    let namespace = &options.namespace;
    let exit = finish(ui, uninstalled.applied, args.output)?;
    for (crd, count) in &uninstalled.kept {
        let resources = match count {
            1 => "1 custom resource of it remains".to_string(),
            n => format!("{n} custom resources of it remain"),
        };
        let conversion = match uninstalled.conversion_reset.contains(crd) {
            true => {
                "; its conversion set to None (the removed controller's webhook converted it), so every version is still served"
            }
            false => "",
        };
        ui.status(&format!(
            "kept customresourcedefinition {crd}: {resources}{conversion} (uninstall --crds deletes them)"
        ));
    }
    for secret in &uninstalled.kept_secrets {
        ui.status(&format!(
            "kept Secret {secret}: the repository's credentials weaver bootstrap wrote, which weaver bootstrap --recover reads"
        ));
    }
    let left = &uninstalled.left;
    if let Some(secret) = &left.conversion_secret {
        ui.status(&format!(
            "kept Secret {namespace}/{secret}: the conversion webhook's certificates, which a next install serves again"
        ));
    }
    if left.records > 0 {
        ui.status(&format!(
            "kept {} record(s) of release weaver (Secrets labelled weaver.example.com/release=weaver): its history, which a next install continues",
            left.records
        ));
    }
    if !left.leases.is_empty() {
        ui.status(&format!(
            "kept Lease(s) {}: the controller's leader election and weaver's apply lock",
            left.leases.join(", ")
        ));
    }
    ui.status(&format!(
        "kept namespace {namespace}: `kubectl delete namespace {namespace}` deletes it and all of the above but the CRDs, once nothing else of yours is in it"
    ));
    let crds = match (uninstalled.deleted_crds.len(), uninstalled.kept.len()) {
        (0, 0) => String::new(),
        (0, kept) => format!("; its {kept} CRDs and their custom resources kept"),
        (deleted, _) => {
            format!("; its {deleted} CRDs deleted, with {} custom resource(s)", uninstalled.deleted_resources)
        }
    };
    ui.status(&format!("weaver uninstalled from namespace {namespace}: its controller removed{crds}"));
    Ok(exit)
}
