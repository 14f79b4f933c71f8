//! `skyfleet simulate`: a recorded demand trace replayed through the operator's own
//! [`decide`](crate::decide::decide), beside baselines, on the same pools, prices and
//! failures. The modelled world (pods that serve only after the startup delay, pools that
//! fail and return) is shown to `decide` as the operator's observe phase shows it the real
//! one; failover, the grace and make-before-break are `decide`'s, not the simulator's. Pure:
//! the caller reads files and prints.
//!
//! - [`trace`]: demand scaled from a trace, and the oracle's look-ahead.
//! - [`failure`]: `--fail POOL@OFFSET+DURATION` (or `Spot@...`: every Spot pool).
//! - [`fleet`]: replicas per pool with their ready time; moves between pools.
//! - [`strategy`]: the strategies, the even split and the HPA-like rule.
//! - [`report`]: what is measured, and the table.
//! - [`output`]: `--out`: the steps as CSV and an SVG plot (the only part that writes files).

pub mod failure;
pub mod fleet;
pub mod output;
pub mod report;
pub mod strategy;
pub mod trace;

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::cloud_pool::{CapacityType, CloudPoolStatus};
use crate::api::conditions;
use crate::api::duration;
use crate::api::workload::{MultiCloudWorkloadSpec, MultiCloudWorkloadStatus};
use crate::decide::demand::DemandTracker;
use crate::decide::reason::pool as pool_reason;
use crate::decide::{
    self, Measured, Member, MemberAction, MemberDeployment, Memory, ObservedPool, Settings, World,
};
use crate::placement::input::problem;
use crate::placement::sizing::{ReplicaShape, required_replicas};
use crate::placement::{PlanInputError, PoolInput, plan_workload};

pub use failure::Failure;
use fleet::Fleet;
pub use report::{Report, Step, Summary};
pub use strategy::Strategy;
use strategy::{Reactive, even_split};

/// The HPA's sync period: the reactive baseline decides this often (or every step if the
/// step is longer).
pub const HPA_PERIOD_SECS: u64 = 15;

/// Everything one replay needs.
#[derive(Debug, Clone)]
pub struct Scenario<'a> {
    /// The workload as its manifest says.
    pub workload: &'a MultiCloudWorkloadSpec,
    /// Every CloudPool, available and empty; failures are applied per step.
    pub pools: &'a [PoolInput],
    /// Demand in cores, one value per step.
    pub demand: &'a [f64],
    /// Time between two demand values.
    pub step: Duration,
    /// Time from a replica's creation until it serves (replicas of the first step serve at
    /// once: the run starts with the service up).
    pub startup: Duration,
    /// Pools lost for a while.
    pub failures: &'a [Failure],
    /// How long a pool is down before its replicas are planned elsewhere.
    pub failover_grace: Duration,
}

/// Why a replay could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimulateError {
    #[error(transparent)]
    Input(#[from] PlanInputError),
    #[error("scaling.scaleDownStabilization: {0}")]
    Stabilization(duration::DurationError),
    #[error("--fail names pool {0:?}, which is not among the CloudPools")]
    UnknownPool(String),
    #[error("the trace has no demand values")]
    Empty,
    #[error(
        "--fail Spot@... takes down every Spot pool, but no CloudPool has pricing.capacityType: Spot"
    )]
    NoSpotPool,
}

/// Whether the pool's capacity is Spot (lost in a `--fail Spot@...` reclaim).
fn is_spot(p: &PoolInput) -> bool {
    p.spec.pricing.capacity_type == CapacityType::Spot
}

/// Replays the scenario under every strategy.
pub fn run(s: &Scenario) -> Result<Report, SimulateError> {
    if s.demand.is_empty() {
        return Err(SimulateError::Empty);
    }
    if let Some(f) = s
        .failures
        .iter()
        .filter_map(Failure::pool)
        .find(|f| !s.pools.iter().any(|p| p.name == *f))
    {
        return Err(SimulateError::UnknownPool(f.to_string()));
    }
    if s.failures.iter().any(|f| f.pool().is_none()) && !s.pools.iter().any(is_spot) {
        return Err(SimulateError::NoSpotPool);
    }
    let mut report = Report {
        pools: s.pools.iter().map(|p| p.name.clone()).collect(),
        ..Report::default()
    };
    for strategy in Strategy::ALL {
        let (summary, steps) = replay_steps(s, strategy)?;
        report.strategies.insert(strategy.name(), summary);
        report.steps.insert(strategy.name(), steps);
    }
    Ok(report)
}

/// Per-strategy state carried from step to step.
enum State {
    Skyfleet {
        memory: Option<Box<Memory>>,
        previous: Box<MultiCloudWorkloadStatus>,
        deployed: Vec<bool>,
    },
    StaticPeak(Vec<u32>),
    Reactive(Reactive),
    Oracle {
        ahead: usize,
    },
}

/// Replays the scenario under one strategy.
pub fn replay(s: &Scenario, strategy: Strategy) -> Result<Summary, SimulateError> {
    Ok(replay_steps(s, strategy)?.0)
}

/// Replays the scenario under one strategy, keeping every step as well as the totals.
pub fn replay_steps(
    s: &Scenario,
    strategy: Strategy,
) -> Result<(Summary, Vec<Step>), SimulateError> {
    let w = s.workload;
    let shape = ReplicaShape::of(&w.template)?;
    let base = problem(w, s.pools, 0.0)?;
    let costs: Vec<f64> = base.pools.iter().map(|p| p.cost_per_replica).collect();
    let eligible: Vec<bool> = base.pools.iter().map(|p| p.eligible).collect();
    let step_s = s.step.as_secs().max(1);
    let grace = s.failover_grace.as_secs();
    let startup = match strategy {
        Strategy::Oracle => 0,
        _ => s.startup.as_secs(),
    };
    let peak = s.demand.iter().copied().fold(0.0, f64::max);
    let mut state = match strategy {
        Strategy::Skyfleet => {
            duration::parse(&w.scaling.scale_down_stabilization)
                .map_err(SimulateError::Stabilization)?;
            State::Skyfleet {
                memory: Some(Box::new(Memory::new(DemandTracker::new(
                    &w.scaling.forecast,
                    s.step,
                )))),
                previous: Box::default(),
                deployed: vec![false; s.pools.len()],
            }
        }
        Strategy::StaticPeak => {
            let total = plan_workload(w, s.pools, peak)?.total_replicas;
            State::StaticPeak(even_split(total, &eligible))
        }
        Strategy::Reactive => State::Reactive(Reactive::new(
            f64::from(w.scaling.target_cpu_utilization_percentage.clamp(1, 100)) / 100.0,
            u32::try_from(w.replicas.min).unwrap_or(0),
            u32::try_from(w.replicas.max).unwrap_or(0),
        )),
        Strategy::Oracle => State::Oracle {
            ahead: s.startup.as_secs().div_ceil(step_s) as usize,
        },
    };
    // The reactive baseline decides every HPA period; with longer steps, every step.
    let reactive_every = HPA_PERIOD_SECS.div_ceil(step_s).max(1) as usize;
    let mut fleet = Fleet::new(s.pools.len());
    let mut targets = vec![0u32; s.pools.len()];
    let mut meter = report::Meter::default();
    let mut steps = Vec::with_capacity(s.demand.len());
    for (i, &demand) in s.demand.iter().enumerate() {
        let t = i as u64 * step_s;
        let down: Vec<Option<u64>> = s
            .pools
            .iter()
            .map(|p| failure::down_for(s.failures, &p.name, is_spot(p), t))
            .collect();
        for (p, d) in down.iter().enumerate() {
            if d.is_some() {
                fleet.lose(p);
            }
        }
        let failed_over: Vec<bool> = down.iter().map(|d| d.is_some_and(|d| d >= grace)).collect();
        let inputs: Vec<PoolInput> = s
            .pools
            .iter()
            .zip(&failed_over)
            .zip(&targets)
            .map(|((p, &lost), &current)| PoolInput {
                available: p.available && !lost,
                unavailable_reason: lost
                    .then(|| "lost past the failover grace (--fail)".to_string())
                    .or_else(|| p.unavailable_reason.clone()),
                current,
                ..p.clone()
            })
            .collect();
        let mut sized_for = None;
        let next = match &mut state {
            State::Skyfleet {
                memory,
                previous,
                deployed,
            } => {
                let world = observed_world(s, &fleet, &targets, deployed, &down, t, demand);
                let workload = decide::Workload {
                    spec: w,
                    generation: Some(1),
                    previous,
                };
                let settings = Settings {
                    failover_grace: s.failover_grace,
                    sync_period: s.step,
                };
                let Some(m) = memory.take() else {
                    return Err(SimulateError::Empty);
                };
                let d = decide::decide(&workload, &world, *m, &settings, sim_time(t));
                if d.plan.is_none() {
                    // The spec cannot be planned: the same error `plan` gives.
                    problem(w, s.pools, 0.0)?;
                }
                sized_for = Some(d.demand_cores);
                let next = d
                    .actions
                    .iter()
                    .zip(&targets)
                    .zip(deployed.iter_mut())
                    .map(|((a, &cur), dep)| match *a {
                        MemberAction::Apply(n) => {
                            *dep = true;
                            n
                        }
                        MemberAction::Delete => {
                            *dep = false;
                            0
                        }
                        MemberAction::Leave => cur,
                    })
                    .collect();
                **previous = d.status;
                *memory = Some(Box::new(d.memory));
                next
            }
            State::StaticPeak(fixed) => {
                sized_for = Some(peak);
                fixed.clone()
            }
            State::Reactive(hpa) => {
                if i % reactive_every == 0 {
                    let current: u32 = targets.iter().sum();
                    let ready: u32 = (0..s.pools.len()).map(|p| fleet.ready(p, t)).sum();
                    let desired = hpa.desired(t, current, ready, shape.cpu, demand);
                    let usable: Vec<bool> = eligible
                        .iter()
                        .zip(&inputs)
                        .map(|(&e, p)| e && p.available)
                        .collect();
                    even_split(desired, &usable)
                } else {
                    targets.clone()
                }
            }
            State::Oracle { ahead } => {
                let cores = trace::max_ahead(s.demand, i, *ahead);
                sized_for = Some(cores);
                plan_replicas(w, &inputs, cores)?
            }
        };
        let moves = fleet::moves(&targets, &next);
        targets = next;
        let mut per_pool = Vec::with_capacity(targets.len());
        let mut cost_per_hour = 0.0;
        for (p, (&target, d)) in targets.iter().zip(&down).enumerate() {
            if d.is_none() {
                // The run starts with the service already up at the first decision.
                fleet.set(p, target, t, if i == 0 { 0 } else { startup });
            }
            let n = fleet.total(p);
            per_pool.push(n);
            cost_per_hour += f64::from(n) * costs[p];
        }
        let ready = ready_within(&fleet, s.pools.len(), shape.cpu, t, step_s);
        let replicas = per_pool.iter().sum();
        let unmet = meter.step(step_s, replicas, cost_per_hour, &ready, demand, moves);
        steps.push(Step {
            offset: t,
            demand,
            sized_for,
            ready,
            replicas: per_pool,
            desired: targets.clone(),
            cost_per_hour,
            unmet,
            moves,
        });
    }
    Ok((meter.summary(), steps))
}

/// The ready capacity of the step from `t`: what is ready at `t`, then more at each ready
/// time of a starting cohort within the step. A replica serves from the end of its startup,
/// as a Pod does once Ready, not from the next step: with 5-minute steps and a 3-minute
/// startup, counting it from the next step would charge every rise two minutes it does not
/// cost.
fn ready_within(fleet: &Fleet, pools: usize, cpu: f64, t: u64, step_s: u64) -> Vec<report::Ready> {
    let capacity_at =
        |at: u64| f64::from((0..pools).map(|p| fleet.ready(p, at)).sum::<u32>()) * cpu;
    let mut ready = Vec::with_capacity(2);
    let mut at = Some(t);
    while let Some(from) = at {
        ready.push(report::Ready {
            from: from - t,
            capacity: capacity_at(from),
        });
        at = fleet.next_ready(from, t + step_s);
    }
    ready
}

/// The simulation's clock: offsets from a fixed start, so a replay is reproducible.
fn sim_time(offset: u64) -> jiff::Timestamp {
    let start = jiff::Timestamp::from_second(1_767_225_600).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    start
        .checked_add(jiff::SignedDuration::from_secs(
            i64::try_from(offset).unwrap_or(i64::MAX),
        ))
        .unwrap_or(start)
}

/// The modelled world at offset `t` as the operator's observe phase would show it: a pool
/// that is down is `Ready=False` (`Unreachable`) since its failure began and its member is
/// unknown; every other member shows the Deployment with the replicas that serve by now.
fn observed_world(
    s: &Scenario,
    fleet: &Fleet,
    targets: &[u32],
    deployed: &[bool],
    down: &[Option<u64>],
    t: u64,
    demand: f64,
) -> World {
    let pools = s
        .pools
        .iter()
        .enumerate()
        .map(|(p, pool)| {
            let (ready, reason, since) = match down[p] {
                Some(d) => (false, pool_reason::UNREACHABLE, t.saturating_sub(d)),
                None if !pool.available => (false, "Unavailable", 0),
                None => (true, pool_reason::PROBED, 0),
            };
            let status = CloudPoolStatus {
                conditions: vec![Condition {
                    type_: conditions::READY.to_string(),
                    status: if ready { "True" } else { "False" }.to_string(),
                    reason: reason.to_string(),
                    message: pool
                        .unavailable_reason
                        .clone()
                        .unwrap_or_else(|| "modelled".to_string()),
                    observed_generation: None,
                    last_transition_time: Time(sim_time(since)),
                }],
                last_probe_time: Some(Time(sim_time(0))),
                ..Default::default()
            };
            let member = if down[p].is_some() {
                Member::Unknown
            } else if deployed[p] || targets[p] > 0 {
                Member::Seen(Some(MemberDeployment {
                    replicas: targets[p],
                    ready: fleet.ready(p, t),
                    failure: None,
                }))
            } else {
                Member::Seen(None)
            };
            ObservedPool {
                name: pool.name.clone(),
                labels: pool.labels.clone(),
                spec: pool.spec.clone(),
                status: Some(status),
                used_by_others: pool.used_by_others,
                age: Duration::from_secs(3600),
                deleting: false,
                member,
                room: None,
                ingress: None,
            }
        })
        .collect();
    World {
        pools,
        measured: Measured {
            cores: Some(demand),
            partial: false,
        },
        namespace_labels: None,
        missing_dependencies: Vec::new(),
    }
}

/// Replicas per pool that the operator's decision plans for `cores` of demand.
fn plan_replicas(
    w: &MultiCloudWorkloadSpec,
    inputs: &[PoolInput],
    cores: f64,
) -> Result<Vec<u32>, SimulateError> {
    let plan = plan_workload(w, inputs, cores)?;
    Ok(inputs.iter().map(|p| plan.replicas_for(&p.name)).collect())
}

/// R for the trace's peak: the replicas static provisioning needs before redundancy.
pub fn peak_replicas(w: &MultiCloudWorkloadSpec, peak: f64) -> Result<u32, SimulateError> {
    let shape = ReplicaShape::of(&w.template)?;
    Ok(required_replicas(
        peak,
        shape.cpu,
        w.scaling.target_cpu_utilization_percentage,
        w.replicas.min,
        w.replicas.max,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example CloudPools and the `checkout` workload.
    fn examples() -> (Vec<PoolInput>, MultiCloudWorkloadSpec) {
        let docs = |text: &str| -> Vec<serde_json::Value> {
            serde_saphyr::from_multiple(text).expect("example YAML")
        };
        let pools = docs(include_str!("../../../crds/examples/cloudpools.yaml"))
            .into_iter()
            .map(|d| {
                let mut p = PoolInput::new(
                    d["metadata"]["name"].as_str().unwrap(),
                    serde_json::from_value(d["spec"].clone()).unwrap(),
                );
                p.labels = serde_json::from_value(d["metadata"]["labels"].clone()).unwrap();
                p
            })
            .collect();
        let workload = docs(include_str!("../../../crds/examples/workloads.yaml"))
            .into_iter()
            .find(|d| d["metadata"]["name"] == "checkout")
            .map(|d| serde_json::from_value(d["spec"].clone()).unwrap())
            .unwrap();
        (pools, workload)
    }

    /// Ten steps at 1 core, then 5 cores.
    const RISE: [f64; 30] = {
        let mut d = [5.0; 30];
        let mut i = 0;
        while i < 10 {
            d[i] = 1.0;
            i += 1;
        }
        d
    };

    /// [`RISE`] with `step`-second steps and a 3-minute startup, on the example pools.
    fn rise<'a>(
        pools: &'a [PoolInput],
        workload: &'a MultiCloudWorkloadSpec,
        step: u64,
    ) -> Scenario<'a> {
        Scenario {
            workload,
            pools,
            demand: &RISE,
            step: Duration::from_secs(step),
            startup: Duration::from_secs(180),
            failures: &[],
            failover_grace: Duration::from_secs(30),
        }
    }

    #[test]
    fn a_rise_is_short_until_new_replicas_start_and_the_oracle_never_is() {
        let (pools, workload) = examples();
        // One-minute steps: the 3-minute startup leaves a gap.
        let s = rise(&pools, &workload, 60);
        let sky = replay(&s, Strategy::Skyfleet).unwrap();
        let oracle = replay(&s, Strategy::Oracle).unwrap();
        let peak = replay(&s, Strategy::StaticPeak).unwrap();
        assert!(sky.unmet_core_hours > 0.0, "{sky:?}");
        assert!(sky.availability < 1.0);
        assert_eq!(oracle.unmet_core_hours, 0.0, "{oracle:?}");
        assert_eq!(peak.availability, 1.0, "{peak:?}");
        // (The oracle provisions for the rise a startup ahead, so on a single step it may
        // cost more than skyfleet; on real traces it is the lower bound, see simulate_cli.)
        assert!(sky.cost < peak.cost, "{sky:?} {peak:?}");
    }

    #[test]
    fn a_replica_serves_from_the_end_of_its_startup_not_from_the_next_step() {
        let (pools, workload) = examples();
        // Five-minute steps, as the traces have: replicas asked for at the rise serve its
        // last two minutes.
        let s = rise(&pools, &workload, 300);
        for strategy in [Strategy::Skyfleet, Strategy::Reactive] {
            let (summary, steps) = replay_steps(&s, strategy).unwrap();
            let rise = &steps[10];
            let short = rise.demand - rise.capacity();
            assert!(
                short > 0.0,
                "{strategy:?}: the rise is short at first: {rise:?}"
            );
            assert!(
                steps[11..].iter().all(|st| st.unmet == 0.0),
                "{strategy:?}: served from the next step on: {steps:?}"
            );
            // Three of the step's five minutes short, at 5 minutes = 1/12 h a step.
            let expected = short * 0.6 / 12.0;
            assert!(
                (summary.unmet_core_hours - expected).abs() < 1e-9,
                "{strategy:?}: unmet {} core-hours, the startup's share of the step is {expected}",
                summary.unmet_core_hours
            );
        }
    }

    #[test]
    fn a_pool_lost_past_the_grace_is_replaced_elsewhere() {
        let (pools, workload) = examples();
        let demand = vec![4.0; 40];
        let failures = [Failure::parse("aws-us-east-1@5m+20m").unwrap()];
        let s = Scenario {
            workload: &workload,
            pools: &pools,
            demand: &demand,
            step: Duration::from_secs(60),
            startup: Duration::from_secs(180),
            failures: &failures,
            failover_grace: Duration::from_secs(60),
        };
        let calm = Scenario {
            failures: &[],
            ..s.clone()
        };
        let (sky, steps) = replay_steps(&s, Strategy::Skyfleet).unwrap();
        let aws = pools
            .iter()
            .position(|p| p.name == "aws-us-east-1")
            .unwrap();
        let elsewhere = |st: &Step| -> u32 {
            st.replicas
                .iter()
                .enumerate()
                .filter(|&(p, _)| p != aws)
                .map(|(_, &n)| n)
                .sum()
        };
        let before = elsewhere(&steps[4]);
        assert!(
            steps[4].replicas[aws] > 0,
            "aws runs replicas before it fails"
        );
        assert_eq!(
            elsewhere(&steps[5]),
            before,
            "nothing moves within the grace"
        );
        assert!(
            steps[7..25].iter().all(|st| elsewhere(st) > before),
            "past the grace the others take over: {:?}",
            steps.iter().map(|st| &st.replicas).collect::<Vec<_>>()
        );
        assert_eq!(
            sky.unmet_core_hours, 0.0,
            "redundancy carried the loss: {sky:?}"
        );
        assert_eq!(replay(&calm, Strategy::Skyfleet).unwrap().moves, 0);
        let peak = replay(&s, Strategy::StaticPeak).unwrap();
        assert_eq!(peak.moves, 0, "static placement never moves");
        assert!(peak.cost < replay(&calm, Strategy::StaticPeak).unwrap().cost);
        let unknown = [Failure::parse("nowhere@1m+1m").unwrap()];
        assert_eq!(
            run(&Scenario {
                failures: &unknown,
                ..s.clone()
            })
            .unwrap_err(),
            SimulateError::UnknownPool("nowhere".into())
        );
    }
}
