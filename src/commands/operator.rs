//! `weaver operator run` (the controller, logging through `tracing`) and `weaver operator crd`
//! (the CRD as YAML, the same bytes the chart ships in `charts/configmapsync-operator/crds/`).

use std::process::ExitCode;

use crate::cli::{GlobalArgs, LogFormat, OperatorCommand, OperatorRunArgs};

pub fn run(global: &GlobalArgs, command: &OperatorCommand) -> crate::Result<ExitCode> {
    match command {
        OperatorCommand::Crd => {
            super::write_stdout(crate::yaml::to_yaml_string(&crate::operator::crd()).as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        OperatorCommand::Run(args) => run_controller(global, args),
    }
}

fn run_controller(global: &GlobalArgs, args: &OperatorRunArgs) -> crate::Result<ExitCode> {
    // -v shows each reconcile; RUST_LOG, when set, says exactly what to log.
    let default_level = if global.verbose > 0 { "info,weaver=debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.with_ansi(super::Ui::new(global).color_stderr).init(),
    }
    let options = crate::cluster::ConnectOptions {
        kubeconfig: global.kubeconfig.clone(),
        context: global.context.clone().map(|c| (c, "--context".to_string())),
        request_timeout: global.request_timeout,
    };
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|err| crate::Error::new(format!("cannot start the operator's runtime: {err}")))?;
    runtime.block_on(async {
        let (config, info) = crate::cluster::kube_config(&options).await?;
        let client = kube::Client::try_from(config.clone()).map_err(|err| {
            crate::Error::new(format!("cannot set up a client for context `{}`: {err}", info.context))
        })?;
        tracing::info!(context = %info.context, server = %info.server, "starting the ConfigMapSync controller");
        let settings = crate::operator::controller::Settings { label_selector: args.selector.clone() };
        crate::operator::controller::run(client, config, settings, shutdown_signal()).await;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// SIGTERM (a pod being stopped) or Ctrl-C.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
