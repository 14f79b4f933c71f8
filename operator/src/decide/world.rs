//! The world as the shell observed it for one decision: each pool with what its member
//! showed of the workload, and the demand measured. Plain data, built by the operator from
//! its caches, by `skyfleet simulate` from its modelled world, and by `skyfleet plan` from
//! manifests.

use std::collections::BTreeMap;
use std::time::Duration;

use super::room::NodeRoom;
use crate::api::cloud_pool::{CloudPoolSpec, CloudPoolStatus};

/// The workload's Deployment in one pool, as the member showed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberDeployment {
    /// `spec.replicas`.
    pub replicas: u32,
    /// `status.readyReplicas`.
    pub ready: u32,
    /// Why the member cannot create the pods (`ReplicaFailure`, e.g. a ResourceQuota), or
    /// refused skyfleet's last apply.
    pub failure: Option<String>,
}

/// What the shell could see of the workload in one pool's member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    /// The member answered; the workload's Deployment there, if any.
    Seen(Option<MemberDeployment>),
    /// A Deployment of another owner holds the name skyfleet would use: nothing is done there.
    Conflict(String),
    /// Not contacted, or no answer: nothing is known and nothing is done there.
    Unknown,
}

/// One pool as observed.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedPool {
    /// The CloudPool's name.
    pub name: String,
    /// Its labels, matched by `placement.poolSelector`.
    pub labels: BTreeMap<String, String>,
    /// Its spec.
    pub spec: CloudPoolSpec,
    /// Its status (the `Ready` condition the probes write), from which the decision reads
    /// its health and the failover grace.
    pub status: Option<CloudPoolStatus>,
    /// CPU cores and memory bytes other workloads request there.
    pub used_by_others: (f64, f64),
    /// How long ago the CloudPool was created (for the first-probe wait).
    pub age: Duration,
    /// The CloudPool is being deleted: planned on no more, its replicas moved at once
    /// (make-before-break), whatever its last probe said.
    pub deleting: bool,
    /// What its member showed.
    pub member: Member,
    /// What its nodes hold of the workload and have free, from the member's watches; None
    /// when not known (not observed, or `skyfleet plan` and `simulate`, which model no
    /// nodes): then only `spec.capacity` bounds it.
    pub room: Option<NodeRoom>,
    /// The address the workload's LoadBalancer Service got in the pool's member cluster
    /// (`status.loadBalancer.ingress`), where users reach it unless the CloudPool declares
    /// `traffic.endpoint`.
    pub ingress: Option<String>,
}

/// Demand as measured for this decision.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Measured {
    /// CPU cores summed over the members that gave metrics; `None` when none did.
    pub cores: Option<f64>,
    /// Some member with replicas gave no metrics: the sum is a lower bound, not a sample.
    pub partial: bool,
}

/// Everything observed for one decision.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct World {
    /// Every CloudPool.
    pub pools: Vec<ObservedPool>,
    /// Demand now.
    pub measured: Measured,
    /// The labels of the workload's namespace on the management cluster, read when some
    /// CloudPool restricts `allowedNamespaces`; None when not read (every pool admits it).
    pub namespace_labels: Option<BTreeMap<String, String>>,
    /// Why some ConfigMap or Secret the template references cannot be copied to the
    /// members: while any, nothing new is applied and nothing running is changed.
    pub missing_dependencies: Vec<String>,
}

impl World {
    /// Why `pool` does not admit the workload's namespace, if it does not.
    pub fn namespace_refused(&self, pool: &ObservedPool) -> Option<String> {
        let rule = pool.spec.allowed_namespaces.as_ref()?;
        let labels = self.namespace_labels.as_ref()?;
        (!rule.selects(labels)).then(|| {
            format!(
                "CloudPool {} admits workloads only from namespaces labelled {} (spec.allowedNamespaces), and this workload's namespace is not",
                pool.name,
                rule.describe()
            )
        })
    }
}
