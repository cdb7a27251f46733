//! `weaver ui`: the fleet's pages (`weaver_ui`) served on loopback, as the kubeconfig's identity,
//! until Ctrl-C. Says where it serves, and each action taken, on stderr.

use std::process::ExitCode;
use std::sync::Arc;

use super::{Ui, block_on, connect_options};
use crate::cli::{GlobalArgs, UiArgs};
use weaver_core::error::{Error, Result};

pub fn run(global: &GlobalArgs, ui: &Ui, args: &UiArgs) -> Result<ExitCode> {
    let address = weaver_ui::loopback(args.address)?;
    let told = ui.clone();
    let options = weaver_ui::Options {
        repo: global.repo.clone(),
        connect: connect_options(&args.cluster),
        namespace: args.namespace.clone(),
        keys: weaver_engine::action::Keys::Search(args.identity.identity.clone()),
        concurrency: args.concurrency,
        rollback: super::default_apply_settings(),
        redactor: ui.redactor.clone(),
        on: Arc::new(move |p| told.progress(p)),
        sign_in: None,
        // On loopback: the defaults the controller's UI has.
        http_limits: weaver_controllers::http::Limits::default(),
    };
    block_on(async {
        let listener = tokio::net::TcpListener::bind(address).await.map_err(|err| {
            Error::new(format!("cannot listen on --address {address}: {err}"))
                .with_help("give another port, or 0 for any free one")
        })?;
        let url = format!("http://{}/", listener.local_addr().unwrap_or(address));
        ui.status(&format!("weaver ui: serving {url} (Ctrl-C stops)"));
        weaver_ui::serve(options, listener, async {
            // Without a signal handler Ctrl-C ends the process anyway.
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })?;
    Ok(ExitCode::SUCCESS)
}
