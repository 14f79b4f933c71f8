//! Every reason skyfleet writes into a workload's conditions and Events, in one place, so
//! nothing is a string literal scattered through the code or read back from status by
//! spelling (linkerd keeps its reasons the same way).

use std::fmt;

/// Why a workload's condition has the status it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionReason {
    /// Every planned replica is Ready.
    Placed,
    /// Replicas are still starting or being moved.
    Progressing,
    /// The spec cannot be planned at all.
    InvalidSpec,
    /// No pool may take replicas.
    NoEligiblePools,
    /// The constraints cannot all hold.
    Infeasible,
    /// The Ready replicas survive the configured losses.
    Redundant,
    /// Losing the configured domains would leave too few Ready replicas.
    InsufficientRedundancy,
    /// Nothing runs below what was asked.
    AsPlanned,
    /// A pool with replicas was lost past the failover grace.
    PoolLost,
    /// A member holds an object with the name skyfleet needs, owned by someone else.
    Conflict,
    /// A member refused what skyfleet applied, or cannot create the pods.
    MemberRefused,
    /// Replicas planned to go are kept until replacements are Ready elsewhere.
    WaitingForReplacements,
    /// A selected pool does not admit the workload's namespace (`allowedNamespaces`).
    NamespaceNotAllowed,
    /// Replicas are Pending because no node of their pool has room for them.
    NoRoom,
    /// The stored history was refused when read; the workload started afresh.
    HistoryInvalid,
    /// The history in use was stored by this version and read back intact.
    HistoryAccepted,
    /// A ConfigMap or Secret the template references cannot be copied to the members.
    MissingDependency,
}

impl ConditionReason {
    /// The CamelCase word Kubernetes shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Placed => "Placed",
            Self::Progressing => "Progressing",
            Self::InvalidSpec => "InvalidSpec",
            Self::NoEligiblePools => "NoEligiblePools",
            Self::Infeasible => "Infeasible",
            Self::Redundant => "Redundant",
            Self::InsufficientRedundancy => "InsufficientRedundancy",
            Self::AsPlanned => "AsPlanned",
            Self::PoolLost => "PoolLost",
            Self::Conflict => "Conflict",
            Self::MemberRefused => "MemberRefused",
            Self::WaitingForReplacements => "WaitingForReplacements",
            Self::NamespaceNotAllowed => "NamespaceNotAllowed",
            Self::NoRoom => "NoRoom",
            Self::HistoryInvalid => "HistoryInvalid",
            Self::HistoryAccepted => "HistoryAccepted",
            Self::MissingDependency => "MissingDependency",
        }
    }
}

impl fmt::Display for ConditionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why skyfleet published an Event about a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventReason {
    /// The first replicas were placed.
    Placed,
    /// Replicas changed in some pools.
    Scaled,
    /// A pool was lost past the failover grace; its replicas are planned elsewhere.
    Failover,
    /// The spec cannot be planned.
    InvalidSpec,
    /// The constraints cannot all hold.
    PlacementInfeasible,
    /// No pool may take replicas.
    NoEligiblePools,
    /// A foreign object holds the name skyfleet needs in a member.
    Conflict,
    /// A member refused an apply or cannot create the pods.
    MemberRefused,
    /// Member Deployments were deleted with the workload.
    Deleted,
    /// Deleting the workload waits for members.
    CleanupPending,
    /// The stored history or memory was refused as implausible; the workload started afresh.
    HistoryInvalid,
    /// A decision overran its deadline; nothing was changed.
    DecisionTimedOut,
    /// A selected pool does not admit the workload's namespace.
    NamespaceNotAllowed,
    /// Measured demand exceeded what the Ready replicas carry: scaled up at once.
    BurstScaleUp,
    /// Replicas are Pending because no node of their pool has room for them.
    NoRoom,
    /// The split of traffic across pools changed.
    TrafficShifted,
    /// A ConfigMap or Secret the template references cannot be copied to the members.
    MissingDependency,
}

impl EventReason {
    /// The CamelCase word Kubernetes shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Placed => "Placed",
            Self::Scaled => "Scaled",
            Self::Failover => "Failover",
            Self::InvalidSpec => "InvalidSpec",
            Self::PlacementInfeasible => "PlacementInfeasible",
            Self::NoEligiblePools => "NoEligiblePools",
            Self::Conflict => "Conflict",
            Self::MemberRefused => "MemberRefused",
            Self::Deleted => "Deleted",
            Self::CleanupPending => "CleanupPending",
            Self::HistoryInvalid => "HistoryInvalid",
            Self::DecisionTimedOut => "DecisionTimedOut",
            Self::NamespaceNotAllowed => "NamespaceNotAllowed",
            Self::BurstScaleUp => "BurstScaleUp",
            Self::NoRoom => "NoRoom",
            Self::TrafficShifted => "TrafficShifted",
            Self::MissingDependency => "MissingDependency",
        }
    }
}

impl fmt::Display for EventReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `Ready` reasons the CloudPool controller writes, as the workload decision reads them.
pub mod pool {
    /// The member answered and the pool's nodes can take replicas.
    pub const PROBED: &str = "Probed";
    /// `spec.unschedulable: true`: an explicit drain, the one not-Ready reason without a
    /// failover grace.
    pub const DRAINED: &str = "Drained";
    /// The member does not answer.
    pub const UNREACHABLE: &str = "Unreachable";
    /// No node matches the pool's selector and tolerations (e.g. a reclaimed spot group).
    pub const NO_MATCHING_NODES: &str = "NoMatchingNodes";
    /// The CloudPool is being deleted (or renamed: deleted and created anew): like a drain,
    /// its replicas move at once, make-before-break, and its finalizer clears when skyfleet
    /// runs nothing there any more.
    pub const DELETING: &str = "Deleting";
}
