//! [`SharedServers`]: the budget of requests in flight the environments of a fleet share per
//! server, so that 20 environments in one cluster do not send 20 times one apply's requests,
//! and one client per context there, so that they reuse each other's connections, which live
//! on the process's one runtime (`weaver_net::runtime`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tower::limit::GlobalConcurrencyLimitLayer;

use super::Discovered;
use super::on_runtime::OnRuntime;

/// What the clusters of one run that reach the same API server (the same server URL, whatever
/// the context or user) share: `in_flight` requests at once between them, discovery, read
/// once, and a client (with its pool of connections) per context. Clones share it all.
#[derive(Clone)]
pub struct SharedServers {
    in_flight: usize,
    servers: Arc<Mutex<HashMap<String, Arc<Server>>>>,
    /// Each server's discovery, read once: by the run's clones, not by [`SharedServers::again`]'s.
    discovered: Arc<Mutex<HashMap<String, Discovery>>>,
    /// Where the shared clients' connections live (see [`OnRuntime`]): the process's runtime
    /// (`weaver_net::runtime`), which outlives any one environment of a fleet and its future.
    io: tokio::runtime::Handle,
    /// Where LISTs of weaver's objects are answered from watches, when they are (see
    /// [`SharedServers::watching`]).
    live: Option<super::LiveCache>,
}

/// A server's discovery, read by the first to ask.
pub(super) type Discovery = Arc<tokio::sync::OnceCell<Arc<Discovered>>>;

/// One server's share.
pub(super) struct Server {
    pub in_flight: GlobalConcurrencyLimitLayer,
    /// By context and request timeout (all a run's settings that shape a client): environments
    /// that connect alike send their requests over the same connections, where each client
    /// would open (and the server accept, with a TLS handshake each) connections of its own.
    clients: Mutex<HashMap<(String, Duration), kube::Client>>,
    /// The clients watches run over, by context.
    watch_clients: Mutex<HashMap<String, kube::Client>>,
    io: tokio::runtime::Handle,
}

impl Server {
    /// The client of `context` with `timeout`: the first to ask builds it from `config`, within
    /// this server's budget of requests in flight, its connections on the shared runtime.
    pub fn client(&self, context: &str, timeout: Duration, config: kube::Config) -> Result<kube::Client, kube::Error> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let key = (context.to_string(), timeout);
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        // kube's client starts a task in front of the service, which must outlive this caller's
        // runtime as the connections do.
        let _on_shared = self.io.enter();
        let client = kube::client::ClientBuilder::try_from(config)?
            .with_layer(&self.in_flight)
            .with_layer(&OnRuntime { runtime: self.io.clone() })
            .build();
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// The client of `context` that watches run over: its connections on the shared runtime,
    /// as [`Server::client`]'s, but outside the budget of requests in flight (a watch would hold
    /// its share for as long as it runs) and reading as long as a watch may idle.
    pub fn watch_client(&self, context: &str, config: kube::Config) -> Result<kube::Client, kube::Error> {
        let mut clients = self.watch_clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(context) {
            return Ok(client.clone());
        }
        let _on_shared = self.io.enter();
        let client = kube::client::ClientBuilder::try_from(super::live::for_watching(config))?
            .with_layer(&OnRuntime { runtime: self.io.clone() })
            .build();
        clients.insert(context.to_string(), client.clone());
        Ok(client)
    }
}

impl SharedServers {
    /// Each server takes `in_flight` requests at once (at least 1) from all the clusters.
    ///
    /// # Errors
    /// The threads that drive the shared connections cannot be started (the system refuses
    /// threads).
    pub fn new(in_flight: usize) -> weaver_core::error::Result<SharedServers> {
        let io = weaver_net::runtime::runtime()
            .map_err(|err| {
                weaver_core::error::Error::new(format!("cannot start the threads of the cluster connections: {err}"))
            })?
            .handle()
            .clone();
        Ok(SharedServers {
            in_flight: in_flight.max(1),
            servers: Arc::default(),
            discovered: Arc::default(),
            io,
            live: None,
        })
    }

    /// These servers, with LISTs answered from watches (see `live`; any LIST, from a watch of
    /// weaver's objects or of the LIST's own selector), started by the first such LIST and kept
    /// while read, on this share's runtime: for a reader that reads the same objects again and
    /// again (`weaver ui`'s page views), each as the context it connects as.
    pub fn watching(self) -> SharedServers {
        let live = super::LiveCache::running_on(Some(self.io.clone()), super::live::Scope::All);
        SharedServers { live: Some(live), ..self }
    }

    /// The watches LISTs are answered from, if any.
    pub(super) fn live(&self) -> Option<&super::LiveCache> {
        self.live.as_ref()
    }

    /// What another run shares with this one: the requests in flight, the clients and their
    /// connections (no TLS handshake again), not discovery, which it reads again (`weaver ui`'s
    /// page views: each sees the kinds the cluster serves when it is read).
    pub fn again(&self) -> SharedServers {
        SharedServers { discovered: Arc::default(), ..self.clone() }
    }

    /// The discovery of the server at `url`, for this run.
    pub(super) fn discovery(&self, url: &str) -> Discovery {
        let mut discovered = self.discovered.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(discovered.entry(url.to_string()).or_default())
    }

    pub(super) fn server(&self, url: &str) -> Arc<Server> {
        let mut servers = self.servers.lock().unwrap_or_else(|e| e.into_inner());
        let server = servers.entry(url.to_string()).or_insert_with(|| {
            Arc::new(Server {
                in_flight: GlobalConcurrencyLimitLayer::new(self.in_flight),
                clients: Mutex::default(),
                watch_clients: Mutex::default(),
                io: self.io.clone(),
            })
        });
        Arc::clone(server)
    }
}

impl std::fmt::Debug for SharedServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let servers = self.servers.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("SharedServers")
            .field("in_flight", &self.in_flight)
            .field("servers", &servers.keys().collect::<Vec<_>>())
            .finish()
    }
}
