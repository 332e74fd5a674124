//! Which payload type each event kind has: one exhaustive match, so a new
//! kind does not build until it has its type.

use super::*;
use crate::event::EventKind;

/// The name of `kind`'s payload type.
pub fn payload_type(kind: EventKind) -> &'static str {
    match kind {
        EventKind::ServerStarted => name::<ServerStarted>(kind),
        EventKind::TaskCreated => name::<TaskCreated>(kind),
        EventKind::StateChanged => name::<StateChanged>(kind),
        EventKind::BaseFetched => name::<BaseFetched>(kind),
        EventKind::BaseFetchFailed => name::<BaseFetchFailed>(kind),
        EventKind::WorktreeCreated => name::<WorktreeCreated>(kind),
        EventKind::WorktreeRemoved => name::<WorktreeRemoved>(kind),
        EventKind::CommandStarted => name::<CommandStarted>(kind),
        EventKind::Output => name::<OutputWritten>(kind),
        EventKind::CommandFinished => name::<CommandFinished>(kind),
        EventKind::CheckResult => name::<CheckResult>(kind),
        EventKind::Diff => name::<DiffRecorded>(kind),
        EventKind::ApprovalRequested => name::<ApprovalRequested>(kind),
        EventKind::ApprovalDecided => name::<ApprovalDecided>(kind),
        EventKind::Commit => name::<Commit>(kind),
        EventKind::Push => name::<Pushed>(kind),
        EventKind::GrantChanged => name::<GrantChanged>(kind),
        EventKind::PrOpened => name::<PrOpened>(kind),
        EventKind::Merged => name::<MergeDone>(kind),
        EventKind::PushBlocked => name::<PushBlocked>(kind),
        EventKind::PolicyDecision => name::<PolicyDecision>(kind),
        EventKind::PolicyUpdated => name::<PolicyUpdated>(kind),
        EventKind::NetworkAllowed => name::<NetworkAllowed>(kind),
        EventKind::NetworkRefused => name::<NetworkRefused>(kind),
        EventKind::SecretsFound => name::<SecretsFound>(kind),
        EventKind::SecretOverride => name::<SecretOverride>(kind),
        EventKind::ModelCall => name::<ModelCall>(kind),
        EventKind::ToolCall => name::<ToolCalled>(kind),
        EventKind::Message => name::<MessageSent>(kind),
        EventKind::ContextSummarised => name::<ContextSummarised>(kind),
        EventKind::AgentFinished => name::<AgentFinished>(kind),
        EventKind::AgentStarted => name::<AgentStarted>(kind),
        EventKind::AgentStep => name::<AgentStep>(kind),
        EventKind::PlanCreated => name::<PlanCreated>(kind),
        EventKind::Chat => name::<ChatExchanged>(kind),
        EventKind::PairingCreated => name::<PairingCreated>(kind),
        EventKind::DevicePaired => name::<DevicePaired>(kind),
        EventKind::TokenRevoked => name::<TokenRevoked>(kind),
        EventKind::Gc => name::<Collected>(kind),
        EventKind::ScanFinished => name::<ScanFinished>(kind),
        EventKind::FindingDismissed => name::<FindingDismissed>(kind),
        EventKind::ProposalCreated => name::<ProposalCreated>(kind),
        EventKind::PushSubscribed => name::<PushSubscribed>(kind),
        EventKind::PushUnsubscribed => name::<PushUnsubscribed>(kind),
        EventKind::SettingsReloaded => name::<SettingsReloaded>(kind),
        EventKind::CacheBuilt => name::<CacheBuilt>(kind),
        EventKind::CacheUsed => name::<CacheUsed>(kind),
        EventKind::ArtifactPublished => name::<ArtifactPublished>(kind),
        EventKind::ArtifactRefused => name::<ArtifactRefused>(kind),
        EventKind::RepoAdded => name::<RepoAdded>(kind),
        EventKind::RepoRemoved => name::<RepoRemoved>(kind),
        EventKind::WorkerAdded => name::<WorkerAdded>(kind),
        EventKind::WorkerEnrolled => name::<WorkerEnrolled>(kind),
        EventKind::WorkerRevoked => name::<WorkerRevoked>(kind),
        EventKind::TaskPlaced => name::<TaskPlaced>(kind),
        EventKind::WorkerLost => name::<WorkerLost>(kind),
        EventKind::Error => name::<Failure>(kind),
    }
}

/// `T`'s name, when `T` is the payload type of `kind`.
fn name<T: EventPayload>(kind: EventKind) -> &'static str {
    debug_assert!(T::KIND == kind, "{kind:?} is mapped to another kind's type");
    std::any::type_name::<T>()
        .rsplit("::")
        .next()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind, in the order `EventKind` declares them.
    const ALL: [EventKind; 57] = [
        EventKind::ServerStarted,
        EventKind::TaskCreated,
        EventKind::StateChanged,
        EventKind::BaseFetched,
        EventKind::BaseFetchFailed,
        EventKind::WorktreeCreated,
        EventKind::WorktreeRemoved,
        EventKind::CommandStarted,
        EventKind::Output,
        EventKind::CommandFinished,
        EventKind::CheckResult,
        EventKind::Diff,
        EventKind::ApprovalRequested,
        EventKind::ApprovalDecided,
        EventKind::Commit,
        EventKind::Push,
        EventKind::GrantChanged,
        EventKind::PrOpened,
        EventKind::Merged,
        EventKind::PushBlocked,
        EventKind::PolicyDecision,
        EventKind::PolicyUpdated,
        EventKind::NetworkAllowed,
        EventKind::NetworkRefused,
        EventKind::SecretsFound,
        EventKind::SecretOverride,
        EventKind::ModelCall,
        EventKind::ToolCall,
        EventKind::Message,
        EventKind::ContextSummarised,
        EventKind::AgentFinished,
        EventKind::AgentStarted,
        EventKind::AgentStep,
        EventKind::PlanCreated,
        EventKind::Chat,
        EventKind::PairingCreated,
        EventKind::DevicePaired,
        EventKind::TokenRevoked,
        EventKind::Gc,
        EventKind::ScanFinished,
        EventKind::FindingDismissed,
        EventKind::ProposalCreated,
        EventKind::PushSubscribed,
        EventKind::PushUnsubscribed,
        EventKind::SettingsReloaded,
        EventKind::CacheBuilt,
        EventKind::CacheUsed,
        EventKind::ArtifactPublished,
        EventKind::ArtifactRefused,
        EventKind::RepoAdded,
        EventKind::RepoRemoved,
        EventKind::WorkerAdded,
        EventKind::WorkerEnrolled,
        EventKind::WorkerRevoked,
        EventKind::TaskPlaced,
        EventKind::WorkerLost,
        EventKind::Error,
    ];

    #[test]
    fn every_kind_has_its_own_payload_type() {
        let mut names = std::collections::HashSet::new();
        for kind in ALL {
            // `name` checks that the type is this kind's.
            assert!(names.insert(payload_type(kind)), "{kind:?} shares a type");
        }
        assert_eq!(payload_type(EventKind::Push), "Pushed");
    }
}
