//! What every handler can reach.

use crate::metrics::Metrics;
use crate::routes::pairing::PairingLimiter;
use crate::webpush::Vapid;
use pushpals_orchestrator::Orchestrator;
use pushpals_store::Store;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The server's shared state.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The orchestrator, for everything that acts.
    pub orchestrator: Arc<Orchestrator>,
    /// Set to true when the server shuts down, to end event streams.
    pub closing: Arc<watch::Sender<bool>>,
    /// The rate limit of pairing-code redemptions.
    pub pairing: Arc<Mutex<PairingLimiter>>,
    /// The server's Web Push identity, when push is set up.
    pub vapid: Option<Arc<Vapid>>,
    /// Plain HTTP on an address other machines can reach (shown as a
    /// warning by the companion).
    pub insecure_http: bool,
    /// What `/metrics` exports.
    pub metrics: Arc<Metrics>,
    /// How long an event stream waits for a client that stopped reading
    /// before it drops the stream (the client resumes with
    /// `Last-Event-ID`).
    pub sse_patience: std::time::Duration,
    /// Event-stream frames shared by every subscriber.
    pub frames: Arc<crate::sse_frames::Frames>,
    /// The `config.toml` the server was started from, for reloads.
    pub config_file: Option<std::path::PathBuf>,
}

impl AppState {
    /// State around an orchestrator.
    pub fn new(orchestrator: Arc<Orchestrator>) -> Self {
        let (closing, _) = watch::channel(false);
        Self {
            orchestrator,
            closing: Arc::new(closing),
            pairing: Arc::new(Mutex::new(PairingLimiter::default())),
            vapid: None,
            insecure_http: false,
            metrics: Arc::new(Metrics::new()),
            sse_patience: std::time::Duration::from_secs(30),
            frames: Arc::default(),
            config_file: None,
        }
    }

    /// The same state, sending Web Push with `vapid`.
    pub fn with_push(mut self, vapid: Vapid) -> Self {
        self.vapid = Some(Arc::new(vapid));
        self
    }

    /// The store, for reads.
    pub fn store(&self) -> &Store {
        self.orchestrator.store()
    }
}
