//! From the API users write to a [`Problem`]: which pools are eligible, what a replica costs
//! in each, and how many each may take. Shared by the operator, `skyfleet plan` and
//! `skyfleet simulate`, so the three read manifests the same way.

use std::collections::BTreeMap;

use kube::core::{Selector, SelectorExt};

use super::sizing::{self, ReplicaShape};
use super::{Plan, PoolOption, Problem, SpreadRule};
use crate::api::cloud_pool::{CapacityType, CloudPoolSpec};
use crate::api::quantity;
use crate::api::workload::MultiCloudWorkloadSpec;

/// Why a workload cannot be planned at all: something only the operator can tell, shown as a
/// condition and an Event.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanInputError {
    #[error("the pod template requests no CPU: every container must request cpu")]
    NoCpuRequest,
    #[error("container {container:?} requests {resource} {value:?}, which is not a quantity")]
    BadRequest {
        container: String,
        resource: &'static str,
        value: String,
    },
    #[error("placement.poolSelector is not a valid label selector: {0}")]
    BadPoolSelector(String),
    #[error("CloudPool {pool:?} has capacity.{resource} {value:?}, which is not a quantity")]
    BadCapacity {
        pool: String,
        resource: &'static str,
        value: String,
    },
}

/// One CloudPool as a decision sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolInput {
    /// The CloudPool's name.
    pub name: String,
    /// The CloudPool's labels, matched by `placement.poolSelector`.
    pub labels: BTreeMap<String, String>,
    /// The CloudPool's spec.
    pub spec: CloudPoolSpec,
    /// Whether the pool answers and may take replicas (Ready, or assumed in `skyfleet plan`).
    /// A pool lost past the failover grace is unavailable.
    pub available: bool,
    /// Why not, when it is not (e.g. "not Ready for 45s: Unreachable").
    pub unavailable_reason: Option<String>,
    /// CPU cores and memory bytes that *other* workloads already request here; subtracted
    /// from `spec.capacity`.
    pub used_by_others: (f64, f64),
    /// Replicas of this workload running here now.
    pub current: u32,
    /// Most replicas the pool may hold in this decision, whatever its capacity says: a pool
    /// inside its failover grace keeps what it runs but does not grow.
    pub cap: Option<u32>,
}

impl PoolInput {
    /// A pool assumed available, with nothing used and nothing running (for `plan` and tests).
    pub fn new(name: impl Into<String>, spec: CloudPoolSpec) -> Self {
        Self {
            name: name.into(),
            labels: BTreeMap::new(),
            spec,
            available: true,
            unavailable_reason: None,
            used_by_others: (0.0, 0.0),
            current: 0,
            cap: None,
        }
    }
}

/// The problem for `workload` over `pools` when demand is `demand_cores` CPU cores.
pub fn problem(
    workload: &MultiCloudWorkloadSpec,
    pools: &[PoolInput],
    demand_cores: f64,
) -> Result<Problem, PlanInputError> {
    let shape = ReplicaShape::of(&workload.template)?;
    let selector = match &workload.placement.pool_selector {
        Some(s) => Some(
            Selector::try_from(s.clone())
                .map_err(|e| PlanInputError::BadPoolSelector(e.to_string()))?,
        ),
        None => None,
    };
    let required = sizing::required_replicas(
        demand_cores,
        shape.cpu,
        workload.scaling.target_cpu_utilization_percentage,
        workload.replicas.min,
        workload.replicas.max,
    );
    let max_total = u32::try_from(workload.replicas.max).unwrap_or(0);
    let mut options = Vec::with_capacity(pools.len());
    for pool in pools {
        let bounds = workload
            .placement
            .pools
            .iter()
            .find(|b| b.name == pool.name);
        let ineligible_reason = if selector.as_ref().is_some_and(|s| !s.matches(&pool.labels)) {
            Some("not selected by placement.poolSelector".to_string())
        } else if pool.spec.unschedulable {
            Some("drained (spec.unschedulable)".to_string())
        } else if !pool.available {
            Some(
                pool.unavailable_reason
                    .clone()
                    .unwrap_or_else(|| "not Ready".to_string()),
            )
        } else {
            None
        };
        let mut max = bounds
            .and_then(|b| b.max_replicas)
            .map_or(max_total, |m| u32::try_from(m).unwrap_or(0));
        if let Some(fit) = capacity_fit(&pool.name, &pool.spec, pool.used_by_others, &shape)? {
            max = max.min(fit);
        }
        if let Some(cap) = pool.cap {
            max = max.min(cap);
        }
        let min = bounds
            .and_then(|b| b.min_replicas)
            .map_or(0, |m| u32::try_from(m).unwrap_or(0));
        options.push(PoolOption {
            name: pool.name.clone(),
            provider: pool.spec.provider.clone(),
            region: pool.spec.region.clone(),
            cost_per_replica: sizing::replica_cost(&pool.spec.pricing, &shape),
            min,
            max,
            eligible: ineligible_reason.is_none(),
            ineligible_reason,
            current: pool.current,
            spot: pool.spec.pricing.capacity_type == CapacityType::Spot,
        });
    }
    let nonneg = |v: i32| u32::try_from(v).unwrap_or(0);
    Ok(Problem {
        pools: options,
        required,
        max_total,
        tolerate: nonneg(workload.placement.redundancy.tolerate),
        domain: workload.placement.redundancy.domain,
        spread: SpreadRule {
            min_pools: nonneg(workload.placement.spread.min_pools),
            min_providers: nonneg(workload.placement.spread.min_providers),
            min_regions: nonneg(workload.placement.spread.min_regions),
        },
        max_moves: workload.placement.max_moves_per_decision.map(nonneg),
        spot: workload.placement.redundancy.spot,
    })
}

/// How many replicas of `shape` still fit under the pool's capacity limit, if it has one.
fn capacity_fit(
    pool: &str,
    spec: &CloudPoolSpec,
    used_by_others: (f64, f64),
    shape: &ReplicaShape,
) -> Result<Option<u32>, PlanInputError> {
    let Some(capacity) = &spec.capacity else {
        return Ok(None);
    };
    let mut fit: Option<u32> = None;
    for (resource, limit, used, per_replica) in [
        ("cpu", &capacity.cpu, used_by_others.0, shape.cpu),
        ("memory", &capacity.memory, used_by_others.1, shape.memory),
    ] {
        let Some(limit) = limit else { continue };
        let limit = quantity::to_f64(limit).map_err(|_| PlanInputError::BadCapacity {
            pool: pool.to_string(),
            resource,
            value: limit.0.clone(),
        })?;
        if per_replica <= 0.0 {
            continue;
        }
        // A small tolerance so that 64 cores fit 128 replicas of 500m despite rounding.
        let n = ((limit - used).max(0.0) / per_replica + 1e-9).floor();
        let n = if n >= f64::from(u32::MAX) {
            u32::MAX
        } else {
            n as u32
        };
        fit = Some(fit.map_or(n, |f| f.min(n)));
    }
    Ok(fit)
}

/// The decision for `workload` over `pools` at `demand_cores`: sizing, then the cheapest
/// placement that meets redundancy, spread, bounds and the churn budget.
pub fn plan_workload(
    workload: &MultiCloudWorkloadSpec,
    pools: &[PoolInput],
    demand_cores: f64,
) -> Result<Plan, PlanInputError> {
    Ok(super::solve(&problem(workload, pools, demand_cores)?))
}
