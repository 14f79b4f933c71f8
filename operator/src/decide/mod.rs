//! The pure decision: what the operator, `skyfleet plan` and `skyfleet simulate` all call to
//! turn a workload's spec, the observed world and the workload's memory into what to do.
//! No I/O, no locks, no clock of its own (`now` is an argument).
//!
//! ```text
//! decide(&Workload, &World, Memory, &Settings, now) -> Decision
//! ```
//!
//! - [`world`]: what the shell observed (pools, what each member shows, demand).
//! - [`memory`]: what decisions remember, and the part that is stored.
//! - [`availability`]: pool health and the failover grace.
//! - [`history`], [`demand`]: the demand history, forecaster and scale-down stabilisation.
//! - [`burst`]: the floor of current demand × headroom, and scaling up at once on a burst.
//! - [`startup`]: how long new replicas take to be Ready, and the lead time sized for.
//! - [`safety`]: make-before-break, the churn budget, infeasible plans.
//! - [`status`]: the status rows and conditions.
//! - [`reason`]: every condition and event reason.

pub mod availability;
pub mod burst;
pub mod demand;
pub mod history;
pub mod memory;
pub mod reason;
pub mod refusal;
pub mod room;
pub mod safety;
pub mod startup;
pub mod status;
pub mod traffic;
pub mod world;

use std::time::Duration;

use crate::api::duration;
use crate::api::workload::{MultiCloudWorkloadSpec, MultiCloudWorkloadStatus};
use crate::placement::{self, Plan, PoolInput, Problem};

pub use availability::{Availability, Health, availability};
pub use memory::Memory;
pub use reason::{ConditionReason, EventReason};
pub use safety::MemberAction;
pub use status::{Row, Summary, Verdict};
pub use world::{Measured, Member, MemberDeployment, ObservedPool, World};

use crate::api::conditions;

/// The workload being decided for.
#[derive(Debug, Clone, Copy)]
pub struct Workload<'a> {
    /// Its spec.
    pub spec: &'a MultiCloudWorkloadSpec,
    /// `metadata.generation`, for `observedGeneration`.
    pub generation: Option<i64>,
    /// The status it has now (condition transition times, events said once).
    pub previous: &'a MultiCloudWorkloadStatus,
}

/// The operator's settings that shape a decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// How long a pool that is not Ready keeps its replicas before they are planned elsewhere.
    pub failover_grace: Duration,
    /// Every workload is decided at least this often.
    pub sync_period: Duration,
}

/// How soon to look again while a new workload waits for the first probe of a new pool.
pub const FIRST_PROBE_RECHECK: Duration = Duration::from_secs(1);

/// An Event to publish about the workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Warning rather than Normal.
    pub warning: bool,
    /// Why.
    pub reason: EventReason,
    /// What skyfleet was doing: `Plan` or `Apply`.
    pub action: &'static str,
    /// The sentence.
    pub note: String,
}

/// Everything the shell must do after one decision.
#[derive(Debug)]
pub struct Decision {
    /// One action per pool of the world, in its order.
    pub actions: Vec<MemberAction>,
    /// The status to write (when [`status::worth_writing`] says so).
    pub status: MultiCloudWorkloadStatus,
    /// Events to publish.
    pub events: Vec<Notice>,
    /// The memory to keep for the next decision.
    pub memory: Memory,
    /// Whether the stored part of the memory (or the history) changed enough to be written.
    pub persist: bool,
    /// When to decide again at the latest.
    pub requeue: Duration,
    /// Demand planned for, in cores (after forecast and stabilisation).
    pub demand_cores: f64,
    /// The plan, when one was made.
    pub plan: Option<Plan>,
    /// Why nothing was decided yet (a new pool's first probe is awaited).
    pub waiting: Option<String>,
    /// What the metrics export beyond the status.
    pub telemetry: Telemetry,
}

/// What a decision exports as metrics beyond its status: the unrounded forecast with every
/// candidate's backtest error, and how many pools are failed over.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Telemetry {
    /// The forecast, while there is one.
    pub forecast: Option<demand::ForecastSummary>,
    /// Pools lost past the failover grace whose replicas are planned elsewhere.
    pub failed_over_pools: usize,
}

/// The one decision for `workload` in `world`, with `memory`, at `now`.
pub fn decide(
    workload: &Workload,
    world: &World,
    mut memory: Memory,
    settings: &Settings,
    now: jiff::Timestamp,
) -> Decision {
    let spec = workload.spec;
    let at = now.as_second();

    // Demand: a partial sample is a lower bound for now, never recorded as a dip.
    let measured = world.measured;
    if let (Some(cores), false) = (measured.cores, measured.partial) {
        memory.demand.record(at, cores);
    }
    let startup = startup::startup(&spec.scaling, &memory.startup);
    let mut estimate = memory.demand.estimate(
        &spec.scaling.forecast,
        measured.cores,
        startup,
        settings.sync_period,
    );
    // As the hold paths below say it; set again once this decision has timed the startup.
    estimate.status.startup_seconds = memory.startup.measured_seconds();
    let ready: u32 = world
        .pools
        .iter()
        .filter_map(|p| match &p.member {
            Member::Seen(Some(d)) => Some(d.ready),
            _ => None,
        })
        .sum();
    let cpu = placement::sizing::ReplicaShape::of(&spec.template)
        .ok()
        .map(|s| s.cpu);
    let burst = burst::assess(
        &spec.scaling,
        estimate.current,
        measured.cores.is_some(),
        ready,
        cpu,
    );
    memory.replica_cores = cpu.map(|c| {
        c * f64::from(spec.scaling.target_cpu_utilization_percentage.clamp(1, 100)) / 100.0
    });
    estimate.status.floor_cores = Some(status::round(burst.floor, 3));
    estimate.status.burst = burst.active;
    let window =
        duration::parse(&spec.scaling.scale_down_stabilization).unwrap_or(Duration::from_secs(300));
    // Replicas are added for the lead time's peak, and kept while the horizon's peak still
    // needs them: what was planned stays, up to the horizon peak.
    let kept = memory
        .stabilizer
        .planned()
        .map_or(0.0, |planned| planned.min(estimate.horizon_peak));
    let demand = memory
        .stabilizer
        .apply(at, estimate.cores.max(burst.floor).max(kept), window);

    // The pools as the plan sees them; room on their nodes in what the scheduler reserves
    // for a pod (init containers and overhead included).
    let shape = placement::sizing::ReplicaShape::scheduled(&spec.template).ok();
    let health: Vec<Availability> = world
        .pools
        .iter()
        .map(|p| availability::of_pool(p, settings.failover_grace, now))
        .collect();
    // Refusals: a pool that refused the pods is held at what it has Ready for a while.
    for p in &world.pools {
        if let Member::Seen(d) = &p.member {
            memory.refusals.observe(&p.name, d.as_ref(), at);
        }
    }
    memory
        .refusals
        .retain(world.pools.iter().map(|p| p.name.as_str()));
    let inputs: Vec<PoolInput> = world
        .pools
        .iter()
        .zip(&health)
        .map(|(p, a)| {
            let current = current_replicas(p, &memory);
            let refused = memory.refusals.held(&p.name, at).is_some();
            let cap = match (&a.health, &p.member) {
                // Within the grace: keep what runs, never grow.
                (Health::InGrace { .. }, _) => Some(current),
                // Pods the member cannot create are missing: plan no more than are Ready.
                (_, Member::Seen(d)) if refused => Some(d.as_ref().map_or(0, |d| d.ready)),
                // No more than its nodes have room for: the rest would stay Pending.
                _ => p.room.as_ref().zip(shape.as_ref()).map(|(r, s)| r.holds(s)),
            };
            let refused_namespace = world.namespace_refused(p);
            PoolInput {
                name: p.name.clone(),
                labels: p.labels.clone(),
                spec: p.spec.clone(),
                available: a.available() && refused_namespace.is_none(),
                unavailable_reason: refused_namespace.or_else(|| a.reason()),
                used_by_others: p.used_by_others,
                current,
                cap,
            }
        })
        .collect();

    let problem = placement::input::problem(spec, &inputs, demand);
    let plan = problem
        .as_ref()
        .ok()
        .map(|p| (p.clone(), placement::solve(p)));
    let (problem, plan) = match plan {
        Some(pp) => pp,
        None => {
            let why = problem.err().map(|e| e.to_string()).unwrap_or_default();
            return hold(
                workload,
                world,
                memory,
                estimate.status,
                estimate.forecast,
                Held::InvalidSpec(why),
                settings,
                now,
            );
        }
    };
    if !world.missing_dependencies.is_empty() {
        let why = format!(
            "{}; nothing new is applied and nothing running is changed until it can be copied to the members",
            world.missing_dependencies.join("; ")
        );
        return hold(
            workload,
            world,
            memory,
            estimate.status,
            estimate.forecast,
            Held::MissingDependency(why),
            settings,
            now,
        );
    }

    // A new workload waits briefly for the first probe of a pool created just now.
    let runs_nothing = world
        .pools
        .iter()
        .all(|p| current_replicas(p, &memory) == 0 && !matches!(p.member, Member::Seen(Some(_))));
    let waiting: Vec<&str> = world
        .pools
        .iter()
        .zip(&problem.pools)
        .filter(|(p, o)| {
            availability::wait_for_first_probe(o.ineligible_reason.as_deref(), p.age, runs_nothing)
        })
        .map(|(p, _)| p.name.as_str())
        .collect();
    if !waiting.is_empty() {
        let persist = memory.needs_persist();
        let telemetry = Telemetry {
            forecast: estimate.forecast,
            failed_over_pools: memory.lost.len(),
        };
        return Decision {
            actions: vec![MemberAction::Leave; world.pools.len()],
            status: workload.previous.clone(),
            events: Vec::new(),
            memory,
            persist,
            requeue: FIRST_PROBE_RECHECK,
            demand_cores: demand,
            plan: Some(plan),
            waiting: Some(format!(
                "waiting for the first probe of new pools: {}",
                waiting.join(", ")
            )),
            telemetry,
        };
    }

    let no_eligible = problem.pools.iter().all(|p| !p.eligible);
    let slots = slots(world, &problem, &plan, &memory);
    let gated = safety::gate(
        &slots,
        &safety::Rules {
            feasible: plan.feasible && !no_eligible,
            max_total: problem.max_total,
            required: plan.required_replicas,
            tolerate: problem.tolerate,
            on_demand_required: problem.on_demand_required(),
            max_removals: problem.max_moves,
        },
    );

    // Rows: what each pool is meant to run after the actions, and what is Ready there.
    let rows: Vec<Row> = world
        .pools
        .iter()
        .zip(&slots)
        .zip(&gated.after)
        .zip(&health)
        .zip(&problem.pools)
        .map(|((((p, s), &after), a), o)| Row {
            name: p.name.clone(),
            replicas: match p.member {
                Member::Seen(_) => after,
                // Not contacted: what it ran, while it still counts; nothing once lost.
                _ if a.available() => s.current,
                _ => 0,
            },
            ready: s.ready,
            cost_per_replica: o.cost_per_replica,
        })
        .collect();

    // Failover memory: one event per loss, across restarts.
    let lost: Vec<String> = world
        .pools
        .iter()
        .zip(&health)
        .zip(&slots)
        .filter(|((_, a), s)| matches!(a.health, Health::Lost { .. }) && s.current > 0)
        .map(|((p, _), _)| p.name.clone())
        .collect();
    let newly_lost: Vec<String> = lost
        .iter()
        .filter(|p| !memory.lost.contains_key(*p))
        .cloned()
        .collect();
    memory.lost.retain(|p, _| lost.contains(p));
    for p in &newly_lost {
        memory.lost.insert(p.clone(), at);
    }
    let telemetry = Telemetry {
        forecast: estimate.forecast.clone(),
        failed_over_pools: memory.lost.len(),
    };
    // Where the workload runs, or may run, for the next decisions and the finalizer.
    for ((p, s), (&after, action)) in world
        .pools
        .iter()
        .zip(&slots)
        .zip(gated.after.iter().zip(&gated.actions))
    {
        if let Member::Seen(_) = p.member {
            if *action == MemberAction::Delete || (!s.has_deployment && after == 0) {
                memory.known.remove(&p.name);
            } else {
                memory.known.insert(p.name.clone(), after);
            }
        }
    }

    // Startup: timed over the members that answered (where `ready` was counted), from a
    // plan above what is Ready.
    let planned_seen = world
        .pools
        .iter()
        .zip(&gated.after)
        .filter(|(p, _)| matches!(p.member, Member::Seen(_)))
        .fold(0u32, |n, (_, &after)| n.saturating_add(after));
    memory.startup.observe(at, planned_seen, ready);
    // A startup timed by this decision is said by it, not by the next one (a status write of
    // its own).
    estimate.status.startup_seconds = memory.startup.measured_seconds();

    // A CloudPool that no longer exists cannot hold anything of the workload's any more.
    memory
        .known
        .retain(|name, _| world.pools.iter().any(|p| &p.name == name));

    let explanation = if plan.explanation.is_empty() {
        fallback_explanation(&plan, demand, &estimate.status.model)
    } else {
        plan.explanation.clone()
    };
    let verdict = if no_eligible {
        let reasons: Vec<String> = problem
            .pools
            .iter()
            .map(|p| {
                format!(
                    "{}: {}",
                    p.name,
                    p.ineligible_reason.as_deref().unwrap_or("ineligible")
                )
            })
            .collect();
        Verdict::NoEligiblePools(if reasons.is_empty() {
            "there are no CloudPools".to_string()
        } else {
            format!("no pool may take replicas ({})", reasons.join("; "))
        })
    } else if plan.feasible {
        Verdict::Placed {
            redundant: plan.redundancy_satisfied,
        }
    } else {
        Verdict::Infeasible(
            plan.reason
                .clone()
                .unwrap_or_else(|| "the constraints cannot all hold".to_string()),
        )
    };

    let conflicts: Vec<String> = world
        .pools
        .iter()
        .filter_map(|p| match &p.member {
            Member::Conflict(why) => Some(format!("pool {}: {why}", p.name)),
            _ => None,
        })
        .collect();
    let refused: Vec<String> = world
        .pools
        .iter()
        .filter_map(|p| {
            let failure = match &p.member {
                Member::Seen(Some(MemberDeployment {
                    failure: Some(why), ..
                })) => Some(why.as_str()),
                _ => None,
            };
            let hold = memory.refusals.held(&p.name, at);
            let why = failure.or(hold.and_then(|h| h.why.as_deref()));
            let held = hold.map(|h| {
                let until = jiff::Timestamp::from_second(h.until)
                    .map_or_else(|_| h.until.to_string(), |t| t.to_string());
                format!("; planned at no more than it has Ready until {until}, then tried again")
            });
            match (why, held) {
                (None, None) => None,
                (why, held) => Some(format!(
                    "pool {}: {}{}",
                    p.name,
                    why.unwrap_or("refused this workload's pods"),
                    held.unwrap_or_default()
                )),
            }
        })
        .collect();
    // Pools whose nodes have no room for replicas placed there.
    let no_room: Vec<String> = world
        .pools
        .iter()
        .filter_map(|p| {
            let room = p.room.as_ref().filter(|r| r.unschedulable > 0)?;
            let holds = shape.as_ref().map_or(room.scheduled, |s| room.holds(s));
            Some(format!(
                "pool {}: {} replicas Pending, no node there has room for them (its nodes hold {holds} of this workload's replicas); the plan puts no more there than that",
                p.name, room.unschedulable
            ))
        })
        .collect();
    // Pools the workload selects that do not admit its namespace.
    let not_allowed: Vec<String> = world
        .pools
        .iter()
        .zip(&problem.pools)
        .filter_map(|(p, o)| {
            let why = world.namespace_refused(p)?;
            (o.ineligible_reason.as_deref() == Some(why.as_str())).then_some(why)
        })
        .collect();
    let traffic = split_traffic(workload, world, settings, now);
    let ready_after = safety::ready_after(&slots, &gated.after);
    let mut surviving = safety::surviving(&slots, &ready_after, problem.tolerate);
    let spot_budget = problem.on_demand_required() > 0;
    if spot_budget {
        // A spot reclaim is one more configured loss: it leaves the on-demand Ready ones.
        surviving = surviving.min(safety::on_demand(&slots, &ready_after));
    }
    let summary = Summary {
        verdict: verdict.clone(),
        rows,
        lost: lost.clone(),
        demand: estimate.status.clone(),
        explanation: explanation.clone(),
        surviving_ready: (surviving, plan.required_replicas),
        spot_budget,
        held: gated.held,
        conflicts: conflicts.clone(),
        refused: refused.clone(),
        no_room: no_room.clone(),
        not_allowed: not_allowed.clone(),
        history_refused: memory.refused.clone(),
        traffic: Some(traffic.clone()),
    };
    let status = status::build(workload.previous, workload.generation, &summary, now);

    // Events. A decision that fails over says its moves in the Failover event rather than in
    // a Scaled event beside it: one Event explains it (a failover of many workloads is
    // thousands of Events fewer for the management API server).
    let mut events = Vec::new();
    let changes: Vec<String> = world
        .pools
        .iter()
        .zip(&slots)
        .zip(&gated.after)
        .filter(|((p, s), after)| matches!(p.member, Member::Seen(_)) && **after != s.current)
        .map(|((p, s), after)| format!("{} {}→{}", p.name, s.current, after))
        .collect();
    let moves = (!changes.is_empty()).then(|| {
        let held = if gated.held > 0 {
            format!(" ({} kept until their replacements are Ready)", gated.held)
        } else {
            String::new()
        };
        format!("{}{held}", changes.join(", "))
    });
    for p in &newly_lost {
        let why = world
            .pools
            .iter()
            .zip(&health)
            .find(|(w, _)| &w.name == p)
            .and_then(|(_, a)| a.reason())
            .unwrap_or_default();
        let moved = moves
            .as_deref()
            .map_or_else(String::new, |m| format!(" ({m})"));
        events.push(Notice {
            warning: true,
            reason: EventReason::Failover,
            action: "Plan",
            note: format!(
                "pool {p} lost ({why}); its replicas are planned elsewhere{moved}: {explanation}"
            ),
        });
    }
    if let Some(moves) = moves
        && newly_lost.is_empty()
    {
        let reason = if workload.previous.pools.is_empty() {
            EventReason::Placed
        } else {
            EventReason::Scaled
        };
        events.push(Notice {
            warning: false,
            reason,
            action: "Apply",
            note: format!("{moves}: {explanation}"),
        });
    }
    if let Some(was) = workload.previous.traffic.as_ref()
        && was.last_update_time != traffic.last_update_time
        && was.split != traffic.split
    {
        let shown = |s: &str| {
            if s.is_empty() {
                "no pool".to_string()
            } else {
                s.to_string()
            }
        };
        events.push(Notice {
            warning: false,
            reason: EventReason::TrafficShifted,
            action: "Plan",
            note: format!(
                "traffic {} → {} (by Ready replicas; a pool that is not Ready or has none Ready gets none)",
                shown(&was.split),
                shown(&traffic.split)
            ),
        });
    }
    let total_before: u32 = slots.iter().map(|s| s.current).sum();
    if burst.active && plan.total_replicas > total_before {
        events.push(Notice {
            warning: false,
            reason: EventReason::BurstScaleUp,
            action: "Plan",
            note: format!(
                "measured demand {:.3} cores exceeds the {:.3} cores {ready} Ready replicas carry at {}% of their request: planning {} replicas for {:.3} cores now, whatever the forecast says",
                estimate.current,
                burst.ready_cores,
                spec.scaling.target_cpu_utilization_percentage,
                plan.total_replicas,
                demand,
            ),
        });
    }
    let degraded = |r: ConditionReason| status::was(workload.previous, conditions::DEGRADED, r);
    match &verdict {
        Verdict::Infeasible(why) if !degraded(ConditionReason::Infeasible) => {
            events.push(warning(EventReason::PlacementInfeasible, why.clone()));
        }
        Verdict::NoEligiblePools(why) if !degraded(ConditionReason::NoEligiblePools) => {
            events.push(warning(EventReason::NoEligiblePools, why.clone()));
        }
        _ => {}
    }
    if !conflicts.is_empty() && !degraded(ConditionReason::Conflict) {
        events.push(warning(EventReason::Conflict, conflicts.join("; ")));
    }
    if !refused.is_empty() && !degraded(ConditionReason::MemberRefused) {
        events.push(warning(EventReason::MemberRefused, refused.join("; ")));
    }
    if !no_room.is_empty() && !degraded(ConditionReason::NoRoom) {
        events.push(warning(EventReason::NoRoom, no_room.join("; ")));
    }
    if !not_allowed.is_empty() && !degraded(ConditionReason::NamespaceNotAllowed) {
        events.push(warning(
            EventReason::NamespaceNotAllowed,
            not_allowed.join("; "),
        ));
    }

    // When to look again: when a grace runs out, else at the sync. Replicas that start, or
    // that wait for their replacements to be Ready, are not polled: their member's
    // Deployment watch wakes the workload as each one gets Ready
    // ([`crate::controller::progress`]); with a thousand workloads, a poll every 2 s filled
    // the queue and delayed the failovers behind it.
    let requeue = health
        .iter()
        .filter_map(Availability::grace_left)
        .map(|left| left + Duration::from_secs(1))
        .fold(settings.sync_period, Duration::min);
    let persist = memory.needs_persist();
    Decision {
        actions: gated.actions,
        status,
        events,
        memory,
        persist,
        requeue,
        demand_cores: demand,
        plan: Some(plan),
        waiting: None,
        telemetry,
    }
}

fn warning(reason: EventReason, note: String) -> Notice {
    Notice {
        warning: true,
        reason,
        action: "Plan",
        note,
    }
}

/// The split of traffic for what the members show now: each pool's Ready replicas while
/// its CloudPool is Ready and its member answers, damped as the spec asks.
fn split_traffic(
    workload: &Workload,
    world: &World,
    settings: &Settings,
    now: jiff::Timestamp,
) -> crate::api::workload::TrafficStatus {
    let offers: Vec<traffic::Offer> = world
        .pools
        .iter()
        .map(|p| {
            let serving = matches!(
                availability::of_pool(p, settings.failover_grace, now).health,
                Health::Ready
            );
            let ready = match (&p.member, serving) {
                (Member::Seen(Some(d)), true) => d.ready,
                _ => 0,
            };
            traffic::Offer {
                pool: p.name.clone(),
                ready,
                endpoint: p
                    .spec
                    .traffic
                    .as_ref()
                    .and_then(|t| t.endpoint.clone())
                    .or_else(|| p.ingress.clone()),
            }
        })
        .collect();
    traffic::next(
        workload.previous.traffic.as_ref(),
        &offers,
        traffic::Damping::of(workload.spec.traffic.as_ref()),
        now,
    )
}

/// Replicas the pool runs: what its member shows, or what was last seen there.
fn current_replicas(pool: &ObservedPool, memory: &Memory) -> u32 {
    match &pool.member {
        Member::Seen(d) => d.as_ref().map_or(0, |d| d.replicas),
        Member::Conflict(_) | Member::Unknown => memory.known.get(&pool.name).copied().unwrap_or(0),
    }
}

fn slots(world: &World, problem: &Problem, plan: &Plan, memory: &Memory) -> Vec<safety::Slot> {
    world
        .pools
        .iter()
        .zip(&problem.pools)
        .map(|(p, o)| {
            let (actionable, has_deployment, ready) = match &p.member {
                Member::Seen(d) => (true, d.is_some(), d.as_ref().map_or(0, |d| d.ready)),
                Member::Conflict(_) | Member::Unknown => (false, false, 0),
            };
            safety::Slot {
                name: p.name.clone(),
                domain: safety::domain_key(problem.domain, &o.name, &o.provider, &o.region),
                eligible: o.eligible,
                actionable,
                has_deployment,
                current: current_replicas(p, memory),
                ready,
                planned: plan.replicas_for(&p.name),
                cost: o.cost_per_replica,
                spot: o.spot,
            }
        })
        .collect()
}

/// Why a decision changes nothing in the members.
enum Held {
    /// The spec cannot be planned.
    InvalidSpec(String),
    /// What the template references cannot be copied to the members.
    MissingDependency(String),
}

/// The decision that changes nothing in the members (a spec that cannot be planned, a
/// dependency that cannot be copied): the condition says why, once as an Event.
#[allow(clippy::too_many_arguments)]
fn hold(
    workload: &Workload,
    world: &World,
    memory: Memory,
    demand: crate::api::workload::DemandStatus,
    forecast: Option<demand::ForecastSummary>,
    held: Held,
    settings: &Settings,
    now: jiff::Timestamp,
) -> Decision {
    let rows = world
        .pools
        .iter()
        .map(|p| {
            let ready = match &p.member {
                Member::Seen(Some(d)) => d.ready,
                _ => 0,
            };
            Row {
                name: p.name.clone(),
                replicas: current_replicas(p, &memory),
                ready,
                cost_per_replica: 0.0,
            }
        })
        .collect();
    let (verdict, condition, reason, event, why) = match held {
        Held::InvalidSpec(why) => (
            Verdict::InvalidSpec(why.clone()),
            conditions::READY,
            ConditionReason::InvalidSpec,
            EventReason::InvalidSpec,
            why,
        ),
        Held::MissingDependency(why) => (
            Verdict::MissingDependency(why.clone()),
            conditions::DEGRADED,
            ConditionReason::MissingDependency,
            EventReason::MissingDependency,
            why,
        ),
    };
    let summary = Summary {
        verdict,
        rows,
        lost: Vec::new(),
        demand,
        explanation: format!("nothing changed: {why}"),
        surviving_ready: (0, 0),
        spot_budget: false,
        held: 0,
        conflicts: Vec::new(),
        refused: Vec::new(),
        no_room: Vec::new(),
        not_allowed: Vec::new(),
        history_refused: memory.refused.clone(),
        traffic: Some(split_traffic(workload, world, settings, now)),
    };
    let said = workload
        .previous
        .conditions
        .iter()
        .any(|c| c.type_ == condition && c.reason == reason.as_str() && c.message == why);
    let events = if said {
        Vec::new()
    } else {
        vec![warning(event, why.clone())]
    };
    let telemetry = Telemetry {
        forecast,
        failed_over_pools: memory.lost.len(),
    };
    Decision {
        actions: vec![MemberAction::Leave; world.pools.len()],
        status: status::build(workload.previous, workload.generation, &summary, now),
        events,
        memory,
        persist: false,
        requeue: settings.sync_period,
        demand_cores: 0.0,
        plan: None,
        waiting: None,
        telemetry,
    }
}

/// A sentence for status when the plan has none.
fn fallback_explanation(plan: &Plan, demand: f64, model: &str) -> String {
    let split: Vec<String> = plan
        .pools
        .iter()
        .filter(|p| p.replicas > 0)
        .map(|p| format!("{} {}", p.name, p.replicas))
        .collect();
    format!(
        "{} replicas for {demand:.2} cores ({model}){}{}",
        plan.total_replicas,
        if split.is_empty() {
            String::new()
        } else {
            format!(": {}", split.join(", "))
        },
        plan.reason
            .as_ref()
            .map(|r| format!("; {r}"))
            .unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::cloud_pool::CloudPoolStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn t(offset: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + offset).unwrap()
    }

    fn spec() -> MultiCloudWorkloadSpec {
        serde_json::from_value(serde_json::json!({
            "replicas": {"min": 2, "max": 10},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "app:1",
                    "resources": {"requests": {"cpu": "500m", "memory": "64Mi"}}}]}},
            "scaling": {"targetCPUUtilizationPercentage": 50, "forecast": {"model": "None"}},
            "placement": {"redundancy": {"tolerate": 0}}
        }))
        .unwrap()
    }

    fn pool(
        name: &str,
        price: f64,
        ready: bool,
        reason: &str,
        since: i64,
        member: Member,
    ) -> ObservedPool {
        ObservedPool {
            name: name.into(),
            labels: Default::default(),
            spec: serde_json::from_value(serde_json::json!({
                "provider": name, "region": "r",
                "pricing": {"cpuPerHour": price, "memoryGiBPerHour": 0.001}
            }))
            .unwrap(),
            status: Some(CloudPoolStatus {
                conditions: vec![Condition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    reason: reason.into(),
                    message: "m".into(),
                    observed_generation: None,
                    last_transition_time: Time(t(since)),
                }],
                last_probe_time: Some(Time(t(0))),
                ..Default::default()
            }),
            used_by_others: (0.0, 0.0),
            age: Duration::from_secs(3600),
            deleting: false,
            member,
            room: None,
            ingress: None,
        }
    }

    fn running(n: u32) -> Member {
        Member::Seen(Some(MemberDeployment {
            replicas: n,
            ready: n,
            failure: None,
        }))
    }

    fn memory() -> Memory {
        Memory::new(demand::DemandTracker::new(
            &Default::default(),
            Duration::from_secs(60),
        ))
    }

    const SETTINGS: Settings = Settings {
        failover_grace: Duration::from_secs(30),
        sync_period: Duration::from_secs(15),
    };

    fn run(world: &World, memory: Memory, at: i64) -> Decision {
        let spec = spec();
        let previous = MultiCloudWorkloadStatus::default();
        let w = Workload {
            spec: &spec,
            generation: Some(1),
            previous: &previous,
        };
        decide(&w, world, memory, &SETTINGS, t(at))
    }

    #[test]
    fn a_pool_that_refused_the_pods_is_held_at_its_ready_ones_after_its_condition_clears() {
        // The cheap pool refuses (a quota): one of its two is Ready.
        let world = |cheap: MemberDeployment| World {
            pools: vec![
                pool("cheap", 0.01, true, "Probed", 0, Member::Seen(Some(cheap))),
                pool("dear", 0.09, true, "Probed", 0, running(0)),
            ],
            measured: Measured {
                cores: None,
                partial: false,
            },
            namespace_labels: None,
            missing_dependencies: Vec::new(),
        };
        let refused = MemberDeployment {
            replicas: 2,
            ready: 1,
            failure: Some("FailedCreate: exceeded quota".into()),
        };
        let placed = |d: &Decision| -> Vec<u32> {
            d.plan
                .as_ref()
                .map(|p| p.pools.iter().map(|r| r.replicas).collect())
                .unwrap_or_default()
        };
        let d = run(&world(refused), memory(), 0);
        assert_eq!(
            placed(&d),
            [1, 1],
            "the refused replica goes to the dear pool"
        );
        assert!(d.persist, "the hold is stored at once");
        let degraded = d
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == "Degraded")
            .expect("Degraded");
        assert!(
            degraded.message.contains("exceeded quota") && degraded.message.contains("until"),
            "{}",
            degraded.message
        );
        // Scaled to its Ready one, the member's condition clears; the pool stays held.
        let cleared = MemberDeployment {
            replicas: 1,
            ready: 1,
            failure: None,
        };
        let d = run(&world(cleared.clone()), d.memory, 30);
        assert_eq!(placed(&d), [1, 1], "no move back while held");
        // After the hold it is tried again.
        let d = run(&world(cleared), d.memory, refusal::FIRST_HOLD_SECS + 1);
        assert_eq!(placed(&d), [2, 0], "tried again once the hold ends");
    }

    #[test]
    fn the_decision_that_sees_the_replicas_ready_says_how_long_they_took() {
        let world = |d: MemberDeployment| World {
            pools: vec![pool("only", 0.01, true, "Probed", 0, Member::Seen(Some(d)))],
            measured: Measured {
                cores: None,
                partial: false,
            },
            namespace_labels: None,
            missing_dependencies: Vec::new(),
        };
        let starting = MemberDeployment {
            replicas: 0,
            ready: 0,
            failure: None,
        };
        let d = run(&world(starting), memory(), 0);
        assert_eq!(
            d.status.demand.as_ref().and_then(|s| s.startup_seconds),
            None
        );
        let placed = d.status.desired_replicas;
        assert!(placed > 0, "{placed} replicas placed");
        let ready = MemberDeployment {
            replicas: u32::try_from(placed).unwrap_or(0),
            ready: u32::try_from(placed).unwrap_or(0),
            failure: None,
        };
        let d = run(&world(ready.clone()), d.memory, 40);
        assert_eq!(
            d.status.demand.as_ref().and_then(|s| s.startup_seconds),
            Some(40),
            "said when timed"
        );
        let d = run(&world(ready), d.memory, 55);
        assert_eq!(
            d.status.demand.as_ref().and_then(|s| s.startup_seconds),
            Some(40)
        );
    }

    #[test]
    fn a_steady_workload_with_a_week_of_history_rarely_rewrites_its_status() {
        // A daily cycle of 10-100 millicores, measured every minute for a week, then decided
        // every 15 s for an hour as the operator would, with what it last wrote as previous.
        let mut spec = spec();
        spec.scaling.forecast = serde_json::from_value(serde_json::json!({
            "model": "Auto", "horizon": "30m", "season": "24h", "history": "7d", "quantile": 0.95
        }))
        .unwrap();
        let cores = |minute: i64| {
            let phase = (minute.rem_euclid(1440) as f64) / 1440.0 * std::f64::consts::TAU;
            0.055 - 0.045 * phase.cos()
        };
        let mut memory = Memory::new(demand::DemandTracker::new(
            &spec.scaling.forecast,
            Duration::from_secs(60),
        ));
        let week = 7 * 1440;
        for minute in 0..week {
            memory
                .demand
                .record(1_800_000_000 + minute * 60, cores(minute));
        }
        let mut previous = MultiCloudWorkloadStatus::default();
        let mut writes = Vec::new();
        let start = week * 60;
        for tick in 0..(60 * 4) {
            let at = start + tick * 15;
            let world = World {
                pools: vec![pool("a", 0.01, true, "Probed", 0, running(2))],
                measured: Measured {
                    cores: Some(cores(at / 60)),
                    partial: false,
                },
                namespace_labels: None,
                missing_dependencies: Vec::new(),
            };
            let w = Workload {
                spec: &spec,
                generation: Some(1),
                previous: &previous,
            };
            let d = decide(&w, &world, memory, &SETTINGS, t(at));
            memory = d.memory;
            if status::worth_writing(
                &previous,
                &d.status,
                Some(status::ReplicaSize {
                    cores: 0.25,
                    min: 1,
                }),
                SETTINGS.sync_period,
                t(at),
            ) {
                writes.push((tick, previous.demand.clone(), d.status.demand.clone()));
                previous = d.status;
                previous.last_decision_time = Some(Time(t(at)));
            }
        }
        // The first write, then at most one per DEMAND_REFRESH (15 minutes).
        assert!(
            writes.len() <= 5,
            "{} writes in an hour: {writes:#?}",
            writes.len()
        );
    }

    #[test]
    fn a_pool_is_reached_at_its_declared_endpoint_else_at_its_load_balancer_address() {
        let mut declared = pool("a", 0.01, true, "Probed", 0, running(2));
        declared.spec.traffic =
            serde_json::from_value(serde_json::json!({"endpoint": "a.example.net"})).unwrap();
        declared.ingress = Some("lb-a.example.net".into());
        let mut balanced = pool("b", 0.01, true, "Probed", 0, running(2));
        balanced.ingress = Some("203.0.113.7".into());
        let world = World {
            pools: vec![
                declared,
                balanced,
                pool("c", 0.01, true, "Probed", 0, running(2)),
            ],
            measured: Measured {
                cores: None,
                partial: false,
            },
            namespace_labels: None,
            missing_dependencies: Vec::new(),
        };
        let d = run(&world, memory(), 0);
        let traffic = d.status.traffic.expect("a split");
        let endpoints: Vec<(&str, Option<&str>)> = traffic
            .pools
            .iter()
            .map(|r| (r.name.as_str(), r.endpoint.as_deref()))
            .collect();
        assert_eq!(
            endpoints,
            [
                ("a", Some("a.example.net")),
                ("b", Some("203.0.113.7")),
                ("c", None)
            ]
        );
    }

    #[test]
    fn a_missing_dependency_changes_nothing_that_runs_and_is_said_once() {
        // Demand that would add replicas (a burst) and a pool that would be scaled: neither
        // happens while a referenced Secret is missing.
        let world = World {
            pools: vec![
                pool("a", 0.01, true, "Probed", 0, running(4)),
                pool("b", 0.09, true, "Probed", 0, running(2)),
            ],
            measured: Measured {
                cores: Some(2.0),
                partial: false,
            },
            namespace_labels: None,
            missing_dependencies: vec!["Secret/db-password: not found".into()],
        };
        let d = run(&world, memory(), 0);
        assert!(
            d.actions.iter().all(|a| *a == MemberAction::Leave),
            "{:?}",
            d.actions
        );
        assert!(d.plan.is_none());
        let degraded = d
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == "Degraded")
            .expect("Degraded");
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", "MissingDependency")
        );
        assert!(
            degraded.message.contains("Secret/db-password"),
            "{}",
            degraded.message
        );
        let replicas: Vec<i32> = d.status.pools.iter().map(|p| p.replicas).collect();
        assert_eq!(replicas, [4, 2], "status keeps what runs");
        assert_eq!(
            d.events
                .iter()
                .filter(|e| e.reason == EventReason::MissingDependency)
                .count(),
            1
        );
        // Said once: the next decision, with that status as previous, raises no new Event.
        let spec = spec();
        let w = Workload {
            spec: &spec,
            generation: Some(1),
            previous: &d.status,
        };
        let again = decide(&w, &world, d.memory, &SETTINGS, t(15));
        assert!(again.events.is_empty(), "{:?}", again.events);
        // Once it exists, the plan goes on.
        let found = World {
            missing_dependencies: Vec::new(),
            ..world
        };
        let d = run(&found, again.memory, 30);
        assert!(d.plan.is_some());
        assert!(d.actions.iter().any(|a| *a != MemberAction::Leave));
    }

    #[test]
    fn a_burst_is_met_at_once_with_headroom_and_said_so() {
        let world = |cores: f64| World {
            pools: vec![pool("a", 0.01, true, "Probed", 0, running(4))],
            measured: Measured {
                cores: Some(cores),
                partial: false,
            },
            namespace_labels: None,
            missing_dependencies: Vec::new(),
        };
        // Four Ready replicas of 500m at 50% carry 1 core; 2 are used. The floor is
        // 2 × 1.1 = 2.2 cores: nine replicas, in this decision.
        let d = run(&world(2.0), memory(), 0);
        assert_eq!(d.plan.as_ref().map(|p| p.total_replicas), Some(9));
        assert!((d.demand_cores - 2.2).abs() < 1e-9, "{}", d.demand_cores);
        let demand = d.status.demand.as_ref().unwrap();
        assert!(demand.burst, "{demand:?}");
        assert_eq!(demand.floor_cores, Some(2.2));
        let e = d
            .events
            .iter()
            .find(|e| e.reason == EventReason::BurstScaleUp)
            .expect("a BurstScaleUp event");
        assert!(
            e.note
                .contains("2.000 cores exceeds the 1.000 cores 4 Ready"),
            "{}",
            e.note
        );
        // Within what the Ready replicas carry: the floor still holds, no burst is named.
        let calm = run(&world(0.8), memory(), 0);
        assert_eq!(calm.plan.as_ref().map(|p| p.total_replicas), Some(4));
        assert!(!calm.status.demand.as_ref().unwrap().burst);
        assert!(
            calm.events
                .iter()
                .all(|e| e.reason != EventReason::BurstScaleUp)
        );
    }

    #[test]
    fn replicas_rise_one_lead_ahead_of_a_forecast_peak_and_stay_while_the_horizon_needs_them() {
        // A 10-minute season: 0.5 cores for 7 minutes, 2.5 cores for 3. One replica carries
        // 250m. Seasonal-naive forecasts the cycle exactly; the horizon is 5 minutes.
        let mut spec = spec();
        spec.replicas.max = 20;
        spec.scaling.scale_down_stabilization = "0s".into();
        spec.scaling.forecast = serde_json::from_value(serde_json::json!({
            "model": "SeasonalNaive", "horizon": "5m", "season": "10m", "history": "1d",
            "quantile": 0.9
        }))
        .unwrap();
        let demand_at = |minute: i64| if minute.rem_euclid(10) >= 7 { 2.5 } else { 0.5 };
        let seeded = || {
            let mut m = Memory::new(demand::DemandTracker::new(
                &spec.scaling.forecast,
                Duration::from_secs(60),
            ));
            for minute in 0..63 {
                m.demand.record(minute * 60, demand_at(minute));
            }
            m
        };
        let world = |cores: f64| World {
            pools: vec![pool("a", 0.01, true, "Probed", 0, running(3))],
            measured: Measured {
                cores: Some(cores),
                partial: false,
            },
            namespace_labels: None,
            missing_dependencies: Vec::new(),
        };
        let previous = MultiCloudWorkloadStatus::default();
        let decide_at = |spec: &MultiCloudWorkloadSpec, memory: Memory, minute: i64| {
            let w = Workload {
                spec,
                generation: Some(1),
                previous: &previous,
            };
            decide(
                &w,
                &world(demand_at(minute)),
                memory,
                &SETTINGS,
                t(minute * 60 - 1_800_000_000),
            )
        };
        let replicas = |d: &Decision| d.plan.as_ref().map_or(0, |p| p.total_replicas);
        // With a 1-minute startup the lead is 2 steps (60 s + the 15 s period): four minutes
        // before the peak (minute 63 of the cycle that peaks at 67) the trough is planned for;
        // one minute before, the peak.
        let mut quick = spec.clone();
        quick.scaling.startup = Some("1m".into());
        let early = decide_at(&quick, seeded(), 60 + 3);
        assert_eq!(replicas(&early), 3, "{:?}", early.status.demand);
        let status = early.status.demand.clone().unwrap_or_default();
        assert_eq!(status.lead_seconds, Some(120));
        assert!(
            status.forecast_peak_cores >= 2.5,
            "the horizon sees the peak: {status:?}"
        );
        assert!(status.lead_peak_cores.unwrap_or(9.0) < 1.0, "{status:?}");
        let mut m = early.memory;
        for minute in 60 + 4..60 + 6 {
            m.demand.record(minute * 60, demand_at(minute));
        }
        let ahead = decide_at(&quick, m, 60 + 6);
        assert_eq!(
            replicas(&ahead),
            10,
            "risen one lead ahead: {:?}",
            ahead.status.demand
        );
        // After the peak, replicas stay while the horizon still sees a peak, then go.
        let mut m = ahead.memory;
        for minute in 60 + 7..70 + 2 {
            m.demand.record(minute * 60, demand_at(minute));
        }
        let after = decide_at(&quick, m, 70 + 2);
        assert_eq!(
            replicas(&after),
            3,
            "the next peak is beyond the horizon: {:?}",
            after.status.demand
        );
        // An unknown startup sizes for the whole horizon: the trough plans for the peak.
        let unknown = decide_at(&spec, seeded(), 60 + 3);
        assert_eq!(replicas(&unknown), 10, "{:?}", unknown.status.demand);
        // Replicas planned already are kept while the horizon's peak needs them, even when
        // the lead's peak alone would not add them.
        let mut m = unknown.memory;
        m.demand.record(64 * 60, demand_at(64));
        let held = decide_at(&quick, m, 60 + 4);
        assert_eq!(replicas(&held), 10, "{:?}", held.status.demand);
    }

    #[test]
    fn under_a_spot_budget_replicas_on_spot_pools_do_not_count_as_redundant() {
        // Four Ready replicas on a Spot pool carry 0.99 cores (0.9 × 1.1 burst headroom).
        let world = World {
            pools: vec![
                pool("od", 0.02, true, "Probed", 0, Member::Seen(None)),
                ObservedPool {
                    spec: serde_json::from_value(serde_json::json!({
                        "provider": "sp", "region": "r",
                        "pricing": {"cpuPerHour": 0.01, "memoryGiBPerHour": 0.001,
                            "capacityType": "Spot"}
                    }))
                    .unwrap(),
                    ..pool("sp", 0.01, true, "Probed", 0, running(4))
                },
            ],
            measured: Measured {
                cores: Some(0.9),
                partial: false,
            },
            namespace_labels: None,
            missing_dependencies: Vec::new(),
        };
        let redundant = |world: &World, spot: &str| {
            let mut spec = spec();
            spec.placement.redundancy.spot =
                serde_json::from_value(serde_json::json!(spot)).unwrap();
            let previous = MultiCloudWorkloadStatus::default();
            let w = Workload {
                spec: &spec,
                generation: Some(1),
                previous: &previous,
            };
            let d = decide(&w, world, memory(), &SETTINGS, t(0));
            let c = d
                .status
                .conditions
                .iter()
                .find(|c| c.type_ == "RedundancySatisfied")
                .cloned()
                .expect("a RedundancySatisfied condition");
            (
                d.plan.map(|p| (p.replicas_for("od"), p.replicas_for("sp"))),
                c,
            )
        };
        let (plan, c) = redundant(&world, "Ignore");
        assert_eq!(plan, Some((0, 4)));
        assert_eq!(c.status, "True", "{c:?}");
        // With the budget the plan moves them to the on-demand pool; until those are Ready
        // a spot reclaim would leave nothing, and the condition says so.
        let (plan, c) = redundant(&world, "Tolerate");
        assert_eq!(plan, Some((4, 0)));
        assert_eq!(c.status, "False", "{c:?}");
        assert!(
            c.message.contains("would leave 0 Ready replicas, 4 needed"),
            "{c:?}"
        );
        // Once they are Ready, the condition names the spot reclaim among the losses.
        let ready_world = World {
            pools: vec![
                pool("od", 0.02, true, "Probed", 0, running(4)),
                world.pools[1].clone(),
            ],
            ..world.clone()
        };
        let (_, c) = redundant(&ready_world, "Tolerate");
        assert_eq!(c.status, "True", "{c:?}");
        assert!(c.message.contains("or every Spot pool at once"), "{c:?}");
    }

    #[test]
    fn room_is_counted_in_what_the_scheduler_reserves_init_containers_included() {
        use room::{Free, NodeRoom};
        // The app asks 500m, its init container 2 cores: a node with 1.5 cores free takes
        // none (the scheduler reserves 2 cores until the init container is done).
        let mut spec = spec();
        let template = spec.template.spec.as_mut().expect("a pod spec");
        template.init_containers = Some(vec![
            serde_json::from_value(serde_json::json!({"name": "warm", "image": "warm:1",
                "resources": {"requests": {"cpu": "2", "memory": "64Mi"}}}))
            .expect("an init container"),
        ]);
        let small = NodeRoom {
            free: vec![
                Free {
                    pods: 10,
                    cpu: 1.5,
                    memory: 1e10,
                };
                3
            ],
            scheduled: 0,
            unschedulable: 0,
        };
        let world = World {
            pools: vec![
                ObservedPool {
                    room: Some(small),
                    ..pool("cheap", 0.01, true, "Probed", 0, Member::Seen(None))
                },
                pool("dear", 0.02, true, "Probed", 0, Member::Seen(None)),
            ],
            measured: Measured {
                cores: None,
                partial: false,
            },
            namespace_labels: None,
            missing_dependencies: Vec::new(),
        };
        let previous = MultiCloudWorkloadStatus::default();
        let w = Workload {
            spec: &spec,
            generation: Some(1),
            previous: &previous,
        };
        let d = decide(&w, &world, memory(), &SETTINGS, t(0));
        let plan = d.plan.as_ref().expect("a plan");
        assert_eq!(
            (plan.replicas_for("cheap"), plan.replicas_for("dear")),
            (0, 2),
            "no replica where its init container does not fit"
        );
    }

    #[test]
    fn replicas_are_planned_only_where_nodes_have_room_and_pending_ones_move() {
        use room::{Free, NodeRoom};
        // Demand 1.5 cores at 50% of 500m, over the two Ready ones' 0.5: a burst, seven
        // replicas (1.5 × 1.1 headroom). The cheap pool runs four, two of them Pending
        // because its one node is full; the dear one has room.
        let full = NodeRoom {
            free: vec![],
            scheduled: 2,
            unschedulable: 2,
        };
        let roomy = NodeRoom {
            free: vec![Free {
                pods: 100,
                cpu: 30.0,
                memory: 1e11,
            }],
            scheduled: 0,
            unschedulable: 0,
        };
        let cheap = Member::Seen(Some(MemberDeployment {
            replicas: 4,
            ready: 2,
            failure: None,
        }));
        let world = World {
            pools: vec![
                ObservedPool {
                    room: Some(full),
                    ingress: None,
                    ..pool("cheap", 0.01, true, "Probed", 0, cheap)
                },
                ObservedPool {
                    room: Some(roomy),
                    ingress: None,
                    ..pool("dear", 0.02, true, "Probed", 0, Member::Seen(None))
                },
            ],
            measured: Measured {
                cores: Some(1.5),
                partial: false,
            },
            namespace_labels: None,
            missing_dependencies: Vec::new(),
        };
        let d = run(&world, memory(), 0);
        let plan = d.plan.as_ref().expect("a plan");
        assert_eq!(
            (plan.replicas_for("cheap"), plan.replicas_for("dear")),
            (2, 5)
        );
        // The two Pending ones go at once (not Ready: nothing is lost); the dear pool grows.
        assert_eq!(
            d.actions,
            vec![MemberAction::Apply(2), MemberAction::Apply(5)]
        );
        let degraded = d
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == "Degraded")
            .expect("a Degraded condition");
        assert_eq!(degraded.reason, "NoRoom", "{degraded:?}");
        assert!(
            degraded.message.contains("pool cheap: 2 replicas Pending"),
            "{degraded:?}"
        );
        assert!(d.events.iter().any(|e| e.reason == EventReason::NoRoom));
        // Without what the nodes show, only spec.capacity bounds the cheap pool.
        let mut blind = world.clone();
        for p in &mut blind.pools {
            p.room = None;
        }
        let d = run(&blind, memory(), 0);
        assert_eq!(d.plan.as_ref().map(|p| p.replicas_for("cheap")), Some(7));
    }

    #[test]
    fn a_partial_sample_is_not_recorded_as_a_dip() {
        let world = |cores: f64, partial: bool| World {
            pools: vec![pool("a", 0.01, true, "Probed", 0, running(4))],
            measured: Measured {
                cores: Some(cores),
                partial,
            },
            namespace_labels: None,
            missing_dependencies: Vec::new(),
        };
        let d = run(&world(2.0, false), memory(), 0);
        let full = d.memory.demand.encode();
        let d = run(&world(0.1, true), d.memory, 30);
        assert_eq!(
            d.memory.demand.encode(),
            full,
            "nothing recorded from a partial sample"
        );
        let d = run(&world(0.1, false), d.memory, 60);
        assert_ne!(d.memory.demand.encode(), full, "a full sample is recorded");
    }

    /// At 100 s, the cheap pool (3 replicas) has not answered since 90 s (a 30 s grace);
    /// `dear` is what the dear pool's member shows. Demand (1.8 cores, 1.98 with the
    /// default 10% headroom) needs 8 replicas.
    fn cheap_pool_in_its_grace(dear: Member) -> (World, Memory) {
        let world = World {
            pools: vec![
                pool("cheap", 0.01, false, "Unreachable", 90, Member::Unknown),
                pool("dear", 0.09, true, "Probed", 0, dear),
            ],
            measured: Measured {
                cores: Some(1.8),
                partial: false,
            },
            namespace_labels: None,
            missing_dependencies: Vec::new(),
        };
        let mut m = memory();
        m.known.insert("cheap".into(), 3);
        (world, m)
    }

    #[test]
    fn a_pool_in_its_grace_keeps_what_it_runs_but_does_not_grow() {
        let (world, m) = cheap_pool_in_its_grace(running(0));
        let d = run(&world, m, 100);
        assert_eq!(
            d.actions[0],
            MemberAction::Leave,
            "an unreachable member is not touched"
        );
        let plan = d.plan.expect("a plan");
        assert_eq!(plan.replicas_for("cheap"), 3, "capped at what it runs");
        assert_eq!(
            d.actions[1],
            MemberAction::Apply(5),
            "the growth goes elsewhere"
        );
        assert!(
            d.requeue <= Duration::from_secs(21),
            "looked at again when the grace ends"
        );
        assert!(d.events.iter().all(|e| e.reason != EventReason::Failover));

        // Past the grace: lost, one Failover event that names the moves (no Scaled event
        // beside it), remembered.
        let d = run(&world, d.memory, 125);
        let failovers: Vec<_> = d
            .events
            .iter()
            .filter(|e| e.reason == EventReason::Failover)
            .collect();
        assert_eq!(failovers.len(), 1, "{:?}", d.events);
        assert!(
            failovers[0].note.contains("(dear 0→8)"),
            "{:?}",
            failovers[0]
        );
        assert!(
            d.events.iter().all(|e| e.reason != EventReason::Scaled),
            "{:?}",
            d.events
        );
        assert!(d.memory.lost.contains_key("cheap"));
        // The next decision (or one after a restart with the stored memory) says it no more.
        let stored = d.memory.encode();
        let (restored, error) = Memory::restore(d.memory.demand, &stored, t(130).as_second());
        assert_eq!(error, None, "{stored}");
        assert!(restored.lost.contains_key("cheap"), "{stored}");
        let d = run(&world, restored, 130);
        assert!(
            d.events.iter().all(|e| e.reason != EventReason::Failover),
            "{:?}",
            d.events
        );
    }

    #[test]
    fn a_workload_is_decided_again_when_a_grace_ends_or_at_the_sync_never_polled() {
        // The dear pool runs its share, all Ready. The member that shows no Ready replicas
        // is one nobody can reach, and its return is a pool change that wakes the workload.
        // So the recheck waits for the sync or the grace's end, not a 2 s poll (with a
        // thousand workloads, that poll crowded the queue the failovers wait in).
        let (world, m) = cheap_pool_in_its_grace(running(5));
        let d = run(&world, m, 100);
        assert_eq!(
            d.actions,
            vec![MemberAction::Leave, MemberAction::Apply(5)],
            "what runs is kept"
        );
        assert_eq!(d.requeue, SETTINGS.sync_period.min(Duration::from_secs(21)));

        // Nor while the dear pool has a replica starting: its member's watch says when it
        // is Ready (controller::progress).
        let mut world = world;
        world.pools[1].member = Member::Seen(Some(MemberDeployment {
            replicas: 5,
            ready: 4,
            failure: None,
        }));
        let d = run(&world, d.memory, 101);
        assert_eq!(d.requeue, SETTINGS.sync_period);
    }

    #[test]
    fn a_conflict_is_reported_and_nothing_is_done_there() {
        let world = World {
            pools: vec![
                pool(
                    "a",
                    0.01,
                    true,
                    "Probed",
                    0,
                    Member::Conflict("Deployment shop/x is not skyfleet's".into()),
                ),
                pool("b", 0.05, true, "Probed", 0, running(0)),
            ],
            measured: Measured {
                cores: Some(0.5),
                partial: false,
            },
            namespace_labels: None,
            missing_dependencies: Vec::new(),
        };
        let d = run(&world, memory(), 0);
        assert_eq!(d.actions[0], MemberAction::Leave);
        assert!(
            d.events
                .iter()
                .any(|e| e.reason == EventReason::Conflict && e.note.contains("shop/x"))
        );
        let degraded = d
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == conditions::DEGRADED)
            .unwrap();
        assert_eq!(degraded.reason, "Conflict");
    }

    #[test]
    fn a_pool_that_does_not_admit_the_namespace_is_not_placed_on_and_says_why() {
        let mut cheap = pool("cheap", 0.01, true, "Probed", 0, Member::Seen(None));
        cheap.spec.allowed_namespaces = Some(crate::api::cloud_pool::NamespaceSelector {
            match_labels: [("team".to_string(), "payments".to_string())].into(),
        });
        let world = |team: &str| World {
            pools: vec![
                cheap.clone(),
                pool("dear", 0.05, true, "Probed", 0, running(0)),
            ],
            measured: Measured {
                cores: Some(0.5),
                partial: false,
            },
            namespace_labels: Some([("team".to_string(), team.to_string())].into()),
            missing_dependencies: Vec::new(),
        };
        let d = run(&world("web"), memory(), 0);
        assert_eq!(
            d.actions[0],
            MemberAction::Leave,
            "nothing in the cheap pool"
        );
        assert!(
            matches!(d.actions[1], MemberAction::Apply(n) if n >= 2),
            "{:?}",
            d.actions
        );
        let degraded = d
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == conditions::DEGRADED)
            .unwrap();
        assert_eq!(degraded.reason, "NamespaceNotAllowed");
        assert!(
            degraded.message.contains("cheap") && degraded.message.contains("team=payments"),
            "{}",
            degraded.message
        );
        assert!(
            d.events
                .iter()
                .any(|e| e.reason == EventReason::NamespaceNotAllowed)
        );

        let d = run(&world("payments"), memory(), 0);
        assert!(
            matches!(d.actions[0], MemberAction::Apply(n) if n >= 2),
            "{:?}",
            d.actions
        );
    }

    #[test]
    fn a_refused_history_is_a_condition_while_this_process_runs() {
        let world = World {
            pools: vec![pool("a", 0.01, true, "Probed", 0, running(2))],
            measured: Measured {
                cores: Some(0.5),
                partial: false,
            },
            namespace_labels: None,
            missing_dependencies: Vec::new(),
        };
        let mut m = memory();
        m.refused = Some("stored demand history refused: start in the future".into());
        let d = run(&world, m, 0);
        let valid = d
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == conditions::HISTORY_VALID)
            .expect("HistoryValid");
        assert_eq!(
            (valid.status.as_str(), valid.reason.as_str()),
            ("False", "HistoryInvalid")
        );
        assert!(valid.message.contains("in the future"), "{}", valid.message);
        let d = run(&world, memory(), 0);
        assert!(
            d.status
                .conditions
                .iter()
                .all(|c| c.type_ != conditions::HISTORY_VALID),
            "no condition where nothing was refused"
        );
    }
}
