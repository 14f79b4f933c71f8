//! Sizing and placement: how many replicas a workload needs, and the cheapest split of them
//! over pools that still survives losing any `tolerate` pools, regions or providers (and,
//! when asked, every Spot pool at once).
//!
//! Pure functions over plain data: the operator, `skyfleet plan` and `skyfleet simulate` all
//! call [`plan_workload`] (or [`solve`] on an already built [`Problem`]), so what the
//! simulator reports is what the operator would do.
//!
//! - [`sizing`]: required replicas from demand, and the price of one replica in a pool.
//! - [`input`]: turns CloudPool and MultiCloudWorkload specs into a [`Problem`].
//! - [`solver`]: the exact optimum of the integer program (see its doc comment for the idea).
//! - [`flow`]: the min-cost circulation the solver uses when a spot budget binds.
//! - [`stability`]: the churn budget and the "saving must outweigh disruption" rule.
//! - [`explain`]: the sentence written to status, Events and `skyfleet plan`.

pub mod explain;
pub mod flow;
pub mod input;
pub mod sizing;
pub mod solver;
pub mod stability;

use serde::Serialize;

pub use crate::api::workload::{FailureDomain, SpotLoss};
pub use input::{PlanInputError, PoolInput, plan_workload};

/// One pool as the solver sees it: where it is, what a replica costs, how many it may take.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolOption {
    /// The CloudPool's name.
    pub name: String,
    /// Provider: pools of one provider form one `Provider` failure domain.
    pub provider: String,
    /// Region: pools with the same provider and region form one `Region` failure domain.
    pub region: String,
    /// Price of one replica for one hour here.
    pub cost_per_replica: f64,
    /// Fewest replicas here (from `placement.pools[].minReplicas`); ignored when ineligible.
    pub min: u32,
    /// Most replicas here: per-pool maximum and capacity left, whichever is smaller.
    pub max: u32,
    /// Whether the pool may take replicas at all (selected, schedulable, Ready).
    pub eligible: bool,
    /// Why it may not, when it may not (for the explanation).
    pub ineligible_reason: Option<String>,
    /// Replicas running here now (0 when nothing runs yet).
    pub current: u32,
    /// Whether the capacity is Spot (`pricing.capacityType`), lost in a spot reclaim.
    pub spot: bool,
}

/// Least spread of replicas, counted over pools with at least one replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpreadRule {
    /// Pools with replicas.
    pub min_pools: u32,
    /// Providers with replicas.
    pub min_providers: u32,
    /// Regions (provider + region) with replicas.
    pub min_regions: u32,
}

/// A placement problem: the integer program every caller solves.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// The pools, eligible or not.
    pub pools: Vec<PoolOption>,
    /// R: replicas that must survive the loss of any `tolerate` domains.
    pub required: u32,
    /// Most replicas in total (`replicas.max`): redundancy spare included.
    pub max_total: u32,
    /// K: how many failure domains may be lost.
    pub tolerate: u32,
    /// What one failure takes down.
    pub domain: FailureDomain,
    /// Least spread.
    pub spread: SpreadRule,
    /// Most replicas moved between pools in one decision; `None` means no limit.
    pub max_moves: Option<u32>,
    /// Whether losing every Spot pool at once must also leave R (`redundancy.spot`).
    pub spot: SpotLoss,
}

impl Problem {
    /// Replicas that must run on on-demand pools: R under a spot budget, else none.
    pub fn on_demand_required(&self) -> u32 {
        match self.spot {
            SpotLoss::Ignore => 0,
            SpotLoss::Tolerate => self.required,
        }
    }
}

/// One pool's share of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolPlan {
    /// The CloudPool.
    pub name: String,
    /// Replicas planned here.
    pub replicas: u32,
    /// Cost per hour of those replicas.
    pub cost_per_hour: f64,
}

/// The answer: always a plan, with whether it meets every constraint and why not.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Whether every constraint holds. When not, `pools` is the best partial plan: as many
    /// replicas as fit, redundancy as close as possible.
    pub feasible: bool,
    /// Why the constraints cannot all hold, in words a person understands.
    pub reason: Option<String>,
    /// R, the replicas the demand needs.
    pub required_replicas: u32,
    /// Every pool of the problem, in the problem's order (0 replicas where none go).
    pub pools: Vec<PoolPlan>,
    /// Replicas planned in total (R plus the redundancy spare).
    pub total_replicas: u32,
    /// Cost per hour of the whole plan.
    pub total_cost_per_hour: f64,
    /// Replicas left after losing the worst `tolerate` domains.
    pub surviving_replicas: u32,
    /// Replicas left after a spot reclaim (those on on-demand pools), when the workload asks
    /// to survive one (`placement.redundancy.spot: Tolerate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub surviving_spot_reclaim: Option<u32>,
    /// Whether `surviving_replicas` ≥ R, and `surviving_spot_reclaim` ≥ R when asked.
    pub redundancy_satisfied: bool,
    /// Replicas moved between pools compared with the current placement.
    pub moves: u32,
    /// Cost per hour of spreading the same total evenly over the eligible pools, for the
    /// saving in the explanation.
    pub even_split_cost_per_hour: Option<f64>,
    /// Constraints that bind the plan (for `skyfleet plan` and status).
    pub tight: Vec<String>,
    /// One sentence saying why, for status, Events and `skyfleet plan`.
    pub explanation: String,
}

impl Plan {
    /// Replicas planned for `pool` (0 when the pool is not in the plan).
    pub fn replicas_for(&self, pool: &str) -> u32 {
        self.pools
            .iter()
            .find(|p| p.name == pool)
            .map_or(0, |p| p.replicas)
    }
}

pub use stability::solve;
