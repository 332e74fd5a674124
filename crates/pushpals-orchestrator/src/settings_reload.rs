//! Taking changed settings while serving: models, agents, delivery, the
//! forge, network, retention and scan settings apply to what starts next;
//! what the running server was built from (the sandbox, limits, TLS, the
//! listener's bounds, notifications, telemetry, the store) keeps its value
//! until a restart, and the reload says which of those changed.

use crate::orchestrator::Orchestrator;
use crate::settings::Settings;
use pushpals_core::payload::SettingsReloaded;
use pushpals_core::{Actor, NewEvent};
use serde::Serialize;

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reload {
    /// Sections whose new values are in force.
    pub applied: Vec<&'static str>,
    /// Sections that changed but need a restart of `pushpals serve`.
    pub restart_needed: Vec<&'static str>,
}

/// The sections, how to compare them, and whether a reload can apply them.
fn sections(settings: &Settings) -> Vec<(&'static str, String, bool)> {
    let shown = |value: &dyn std::fmt::Debug| format!("{value:?}");
    vec![
        ("models", shown(&settings.models), true),
        ("agent", shown(&settings.agent), true),
        ("agents", shown(&settings.agents), true),
        ("git", shown(&settings.git), true),
        ("network", shown(&settings.network), true),
        ("delivery", shown(&settings.delivery), true),
        ("forge", shown(&settings.forge), true),
        ("repos", shown(&settings.repos), true),
        ("retention", shown(&settings.retention), true),
        ("scan", shown(&settings.scan), true),
        ("max_parallel", shown(&settings.max_parallel), false),
        ("durability", shown(&settings.durability), false),
        ("limits", shown(&settings.limits), false),
        ("sandbox", shown(&settings.sandbox), false),
        ("notify", shown(&settings.notify), false),
        ("tls", shown(&settings.tls), false),
        ("acme", shown(&settings.acme), false),
        ("server", shown(&settings.server), false),
        ("telemetry", shown(&settings.telemetry), false),
        ("store", shown(&settings.store), false),
    ]
}

impl Orchestrator {
    /// Takes `next` (already checked): the sections a reload can apply are
    /// in force at once for what starts next; the others keep their
    /// running value and are named as needing a restart. The reload is in
    /// the audit log.
    pub async fn reload_settings(&self, next: Settings, actor: Actor) -> Reload {
        let current = self.settings();
        let mut reload = Reload {
            applied: Vec::new(),
            restart_needed: Vec::new(),
        };
        for ((name, before, live), (_, after, _)) in
            sections(&current).into_iter().zip(sections(&next))
        {
            if before != after {
                if live {
                    reload.applied.push(name);
                } else {
                    reload.restart_needed.push(name);
                }
            }
        }
        let merged = Settings {
            max_parallel: current.max_parallel,
            durability: current.durability,
            limits: current.limits.clone(),
            sandbox: current.sandbox.clone(),
            notify: current.notify.clone(),
            tls: current.tls.clone(),
            acme: current.acme.clone(),
            server: current.server.clone(),
            telemetry: current.telemetry.clone(),
            store: current.store.clone(),
            ..next
        };
        self.settings.replace(merged);
        let recorded = SettingsReloaded {
            applied: reload.applied.iter().map(|s| (*s).to_owned()).collect(),
            restart_needed: reload
                .restart_needed
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        };
        let written = self
            .store
            .write(move |tx| tx.append(NewEvent::typed(None, actor, &recorded)?))
            .await;
        if let Err(error) = written {
            tracing::warn!(%error, "cannot record the settings reload");
        }
        reload
    }
}
