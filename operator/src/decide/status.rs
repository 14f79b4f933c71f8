//! The workload's status for a decision: one row per pool, the sums, and the conditions with
//! their reasons. Pure, so every case is unit-tested.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::conditions;
use crate::api::workload::{
    DemandStatus, MultiCloudWorkloadStatus, PoolPlacementStatus, TrafficStatus,
};
use crate::forecast::ModelKind;

use super::reason::ConditionReason as R;

/// Why the workload is in the state it is in.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The spec cannot be planned at all (a bad request quantity or pool selector).
    InvalidSpec(String),
    /// No pool may take replicas.
    NoEligiblePools(String),
    /// A plan that meets every constraint.
    Placed {
        /// The plan's replicas survive losing `tolerate` domains.
        redundant: bool,
    },
    /// The constraints cannot all hold; applied only where it does not reduce what runs.
    Infeasible(String),
    /// What the template references cannot be copied to the members: nothing is changed.
    MissingDependency(String),
}

/// One pool's row in status.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The CloudPool.
    pub name: String,
    /// Replicas meant to run there.
    pub replicas: u32,
    /// Replicas Ready there.
    pub ready: u32,
    /// Price of one replica there, per hour.
    pub cost_per_replica: f64,
}

/// Everything the status is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Why.
    pub verdict: Verdict,
    /// One row per pool.
    pub rows: Vec<Row>,
    /// Pools lost past the failover grace that ran replicas.
    pub lost: Vec<String>,
    /// Demand as seen.
    pub demand: DemandStatus,
    /// The plan's sentence.
    pub explanation: String,
    /// Ready replicas that survive losing the configured domains (and, under a spot budget,
    /// a spot reclaim), against R.
    pub surviving_ready: (u32, u32),
    /// Whether the workload has a spot budget: a reclaim of every Spot pool is one of the
    /// configured losses, and the conditions say so.
    pub spot_budget: bool,
    /// Replicas kept beyond the plan until replacements are Ready.
    pub held: u32,
    /// Members where skyfleet cannot act: a foreign object holds its name.
    pub conflicts: Vec<String>,
    /// Members that refused an apply or cannot create the pods, with their reason.
    pub refused: Vec<String>,
    /// Pools whose nodes have no room for replicas placed there.
    pub no_room: Vec<String>,
    /// Pools the workload selects whose `allowedNamespaces` does not admit its namespace.
    pub not_allowed: Vec<String>,
    /// Why the stored history was refused when this process read it.
    pub history_refused: Option<String>,
    /// The split of traffic to publish.
    pub traffic: Option<TrafficStatus>,
}

/// The status for `summary`, keeping condition transition times of `previous` and its
/// `lastDecisionTime` (the caller stamps a new one only when something else changed).
pub fn build(
    previous: &MultiCloudWorkloadStatus,
    generation: Option<i64>,
    summary: &Summary,
    now: jiff::Timestamp,
) -> MultiCloudWorkloadStatus {
    let mut status = MultiCloudWorkloadStatus {
        observed_generation: generation,
        conditions: previous.conditions.clone(),
        last_decision_time: previous.last_decision_time.clone(),
        ..Default::default()
    };
    let mut rows: Vec<PoolPlacementStatus> = summary
        .rows
        .iter()
        .filter(|r| r.replicas > 0 || r.ready > 0)
        .map(|r| PoolPlacementStatus {
            name: r.name.clone(),
            replicas: i32::try_from(r.replicas).unwrap_or(i32::MAX),
            ready_replicas: i32::try_from(r.ready).unwrap_or(i32::MAX),
            cost_per_hour: round(f64::from(r.replicas) * r.cost_per_replica, 6),
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    status.desired_replicas = rows.iter().map(|r| r.replicas).sum();
    status.ready_replicas = rows.iter().map(|r| r.ready_replicas).sum();
    status.pools_in_use = rows.iter().filter(|r| r.replicas > 0).count() as i32;
    status.cost_per_hour = round(rows.iter().map(|r| r.cost_per_hour).sum(), 6);
    status.pools = rows;
    status.demand = Some(summary.demand.clone());
    status.message = Some(summary.explanation.clone()).filter(|m| !m.is_empty());
    status.traffic = summary.traffic.clone();

    let all_ready = status.ready_replicas >= status.desired_replicas && summary.held == 0;
    let mut progress = format!(
        "{} of {} replicas ready",
        status.ready_replicas, status.desired_replicas
    );
    if summary.held > 0 {
        progress.push_str(&format!(
            "; {} kept until their replacements are Ready",
            summary.held
        ));
    }
    let c = &mut status.conditions;
    let set = |c: &mut Vec<_>, kind: &str, ok: bool, reason: R, message: &str| {
        conditions::set(c, kind, ok, reason.as_str(), message, generation, now);
    };
    let (survive, required) = summary.surviving_ready;
    let losses = if summary.spot_budget {
        "the configured failure domains, or every Spot pool at once,"
    } else {
        "the configured failure domains"
    };
    let blocked: Vec<String> = summary
        .conflicts
        .iter()
        .chain(&summary.refused)
        .chain(&summary.no_room)
        .cloned()
        .collect();
    match &summary.history_refused {
        Some(why) => set(c, conditions::HISTORY_VALID, false, R::HistoryInvalid, why),
        None if c.iter().any(|x| x.type_ == conditions::HISTORY_VALID) => set(
            c,
            conditions::HISTORY_VALID,
            true,
            R::HistoryAccepted,
            "the stored history was read back intact",
        ),
        None => {}
    }
    match &summary.verdict {
        Verdict::InvalidSpec(why) | Verdict::NoEligiblePools(why) => {
            let reason = if matches!(summary.verdict, Verdict::InvalidSpec(_)) {
                R::InvalidSpec
            } else {
                R::NoEligiblePools
            };
            set(c, conditions::READY, false, reason, why);
            set(c, conditions::REDUNDANCY_SATISFIED, false, reason, why);
            set(c, conditions::DEGRADED, true, reason, why);
        }
        Verdict::Placed { redundant } => {
            let (reason, message) = if all_ready {
                (R::Placed, format!("{progress}; {}", summary.explanation))
            } else if summary.held > 0 {
                (R::WaitingForReplacements, progress.clone())
            } else {
                (R::Progressing, progress.clone())
            };
            set(c, conditions::READY, all_ready, reason, &message);
            if *redundant && survive >= required {
                set(
                    c,
                    conditions::REDUNDANCY_SATISFIED,
                    true,
                    R::Redundant,
                    &format!("losing {losses} leaves {survive} Ready replicas, {required} needed"),
                );
            } else {
                let why = if *redundant {
                    format!(
                        "the plan survives the configured losses once its replicas are Ready; now losing them would leave {survive} Ready replicas, {required} needed"
                    )
                } else {
                    format!("losing {losses} would leave fewer replicas than demand needs")
                };
                set(
                    c,
                    conditions::REDUNDANCY_SATISFIED,
                    false,
                    R::InsufficientRedundancy,
                    &why,
                );
            }
            if !summary.conflicts.is_empty() {
                set(
                    c,
                    conditions::DEGRADED,
                    true,
                    R::Conflict,
                    &summary.conflicts.join("; "),
                );
            } else if !summary.refused.is_empty() {
                set(
                    c,
                    conditions::DEGRADED,
                    true,
                    R::MemberRefused,
                    &summary.refused.join("; "),
                );
            } else if !summary.no_room.is_empty() {
                set(
                    c,
                    conditions::DEGRADED,
                    true,
                    R::NoRoom,
                    &summary.no_room.join("; "),
                );
            } else if !summary.not_allowed.is_empty() {
                set(
                    c,
                    conditions::DEGRADED,
                    true,
                    R::NamespaceNotAllowed,
                    &summary.not_allowed.join("; "),
                );
            } else if summary.lost.is_empty() {
                set(c, conditions::DEGRADED, false, R::AsPlanned, "");
            } else {
                let lost = format!(
                    "pools lost past the failover grace: {}; their replicas are planned elsewhere",
                    summary.lost.join(", ")
                );
                set(c, conditions::DEGRADED, true, R::PoolLost, &lost);
            }
        }
        Verdict::MissingDependency(why) => {
            let ready_reason = if all_ready { R::Placed } else { R::Progressing };
            set(c, conditions::READY, all_ready, ready_reason, &progress);
            set(c, conditions::DEGRADED, true, R::MissingDependency, why);
        }
        Verdict::Infeasible(why) => {
            let ready_reason = if all_ready { R::Placed } else { R::Progressing };
            set(c, conditions::READY, all_ready, ready_reason, &progress);
            set(
                c,
                conditions::REDUNDANCY_SATISFIED,
                false,
                R::Infeasible,
                why,
            );
            let message = if blocked.is_empty() {
                why.clone()
            } else {
                format!("{why}; {}", blocked.join("; "))
            };
            set(c, conditions::DEGRADED, true, R::Infeasible, &message);
        }
    }
    status
}

/// How often demand figures that moved only a little are refreshed in status. The live
/// figures are exported as metrics; rewriting status for each history step would cost a
/// write per workload per minute and wake every watcher of the workload.
pub const DEMAND_REFRESH: Duration = Duration::from_secs(900);
/// A count (of history samples) that moved by this share is worth writing at the next sync.
const SAMPLES_SIGNIFICANT: f64 = 0.10;

/// What one replica carries at the target, and the fewest replicas the spec allows: a demand
/// figure is news when the replica count it implies, never below that floor, changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplicaSize {
    pub cores: f64,
    pub min: u32,
}

/// Whether `next` says something about demand that a reader of status should see soon:
/// another model, a burst, a different startup or lead time, a demand figure that now implies
/// a different number of replicas (at `size`, and at least its `min`: demand wandering
/// between 0 and a few millicores under a floor of two replicas changes nothing; with no
/// replica size known, a move of 10 %), or a history 10 % longer or shorter (one cut short is
/// news). Figures that wander within one replica's worth change no plan and wait.
fn demand_moved(
    previous: Option<&DemandStatus>,
    next: Option<&DemandStatus>,
    size: Option<ReplicaSize>,
) -> bool {
    let (a, b) = match (previous, next) {
        (Some(a), Some(b)) => (a, b),
        (None, None) => return false,
        _ => return true,
    };
    let moved = |x: f64, y: f64| match size.filter(|s| s.cores > 0.0) {
        Some(s) => {
            let replicas = |v: f64| (v / s.cores).ceil().max(f64::from(s.min));
            replicas(x) != replicas(y)
        }
        None => {
            let d = (x - y).abs();
            d >= 0.001 && d >= 0.10 * x.abs().max(y.abs())
        }
    };
    let moved_opt = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => moved(x, y),
        (None, None) => false,
        _ => true,
    };
    let (sa, sb) = (f64::from(a.history_samples), f64::from(b.history_samples));
    // Between two forecasting models whose recent errors are close the choice can change
    // at every sample; which one forecasts is news only when forecasting starts or stops.
    let reactive = ModelKind::Reactive.name();
    (a.model != b.model && (a.model == reactive || b.model == reactive))
        || a.burst != b.burst
        || a.startup_seconds != b.startup_seconds
        || a.lead_seconds != b.lead_seconds
        || (sa - sb).abs() >= SAMPLES_SIGNIFICANT * sa.max(sb)
        || moved(a.current_cores, b.current_cores)
        || moved(a.forecast_peak_cores, b.forecast_peak_cores)
        || moved_opt(a.floor_cores, b.floor_cores)
        || moved_opt(a.lead_peak_cores, b.lead_peak_cores)
}

/// Whether writing `next` is worth it: something other than `lastDecisionTime` and the
/// demand figures changed; or demand moved enough ([`demand_moved`], at replica `size`) and `min_interval` has passed since the last write; or anything
/// in the demand figures changed (backtest errors, the model choice's sentence) and
/// [`DEMAND_REFRESH`] has passed.
pub fn worth_writing(
    previous: &MultiCloudWorkloadStatus,
    next: &MultiCloudWorkloadStatus,
    size: Option<ReplicaSize>,
    min_interval: Duration,
    now: jiff::Timestamp,
) -> bool {
    let strip = |s: &MultiCloudWorkloadStatus, demand: bool| MultiCloudWorkloadStatus {
        last_decision_time: None,
        // Written on its own, under another field manager.
        memory: String::new(),
        demand: if demand { s.demand.clone() } else { None },
        ..s.clone()
    };
    if strip(previous, false) != strip(next, false) {
        return true;
    }
    if strip(previous, true) == strip(next, true) {
        return false;
    }
    let wait = if demand_moved(previous.demand.as_ref(), next.demand.as_ref(), size) {
        min_interval
    } else {
        DEMAND_REFRESH.max(min_interval)
    };
    previous
        .last_decision_time
        .as_ref()
        .is_none_or(|Time(t)| now.duration_since(*t).unsigned_abs() >= wait)
}

/// Whether `previous` already says `reason` on `kind` with status True.
pub fn was(previous: &MultiCloudWorkloadStatus, kind: &str, reason: R) -> bool {
    previous
        .conditions
        .iter()
        .any(|c| c.type_ == kind && c.reason == reason.as_str() && c.status == "True")
}

/// `x` rounded to `digits` decimals, so status does not churn on float noise.
pub fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    fn t(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn size(cores: f64, min: u32) -> ReplicaSize {
        ReplicaSize { cores, min }
    }

    fn summary(verdict: Verdict, ready: [u32; 2]) -> Summary {
        Summary {
            verdict,
            rows: vec![
                Row {
                    name: "gcp".into(),
                    replicas: 1,
                    ready: ready[1],
                    cost_per_replica: 0.03,
                },
                Row {
                    name: "aws".into(),
                    replicas: 2,
                    ready: ready[0],
                    cost_per_replica: 0.02,
                },
                Row {
                    name: "azure".into(),
                    replicas: 0,
                    ready: 0,
                    cost_per_replica: 0.01,
                },
            ],
            lost: vec![],
            demand: DemandStatus {
                current_cores: 0.5,
                forecast_peak_cores: 0.5,
                model: "Reactive".into(),
                backtest_error: None,
                history_samples: 3,
                selection: None,
                floor_cores: None,
                burst: false,
                lead_peak_cores: None,
                lead_seconds: None,
                startup_seconds: None,
            },
            explanation: "3 replicas: aws 2, gcp 1".into(),
            surviving_ready: (1, 1),
            spot_budget: false,
            held: 0,
            conflicts: vec![],
            refused: vec![],
            no_room: vec![],
            not_allowed: vec![],
            history_refused: None,
            traffic: None,
        }
    }

    fn cond<'a>(s: &'a MultiCloudWorkloadStatus, kind: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == kind).unwrap()
    }

    #[test]
    fn status_sums_rows_and_says_why() {
        let now = t("2026-01-01T00:00:00Z");
        let s = build(
            &Default::default(),
            Some(4),
            &summary(Verdict::Placed { redundant: true }, [2, 1]),
            now,
        );
        assert_eq!(s.observed_generation, Some(4));
        assert_eq!(
            (s.desired_replicas, s.ready_replicas, s.pools_in_use),
            (3, 3, 2)
        );
        assert_eq!(s.cost_per_hour, 0.07);
        assert_eq!(
            s.pools.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["aws", "gcp"],
            "sorted, empty pools left out"
        );
        assert_eq!(cond(&s, conditions::READY).reason, "Placed");
        assert_eq!(cond(&s, conditions::REDUNDANCY_SATISFIED).status, "True");
        assert_eq!(cond(&s, conditions::DEGRADED).status, "False");

        let starting = build(
            &Default::default(),
            Some(4),
            &summary(Verdict::Placed { redundant: true }, [0, 1]),
            now,
        );
        assert_eq!(cond(&starting, conditions::READY).reason, "Progressing");
        assert_eq!(
            cond(&starting, conditions::READY).message,
            "1 of 3 replicas ready"
        );
    }

    #[test]
    fn redundancy_counts_ready_replicas_not_planned_ones() {
        let now = t("2026-01-01T00:00:00Z");
        let mut s = summary(Verdict::Placed { redundant: true }, [2, 0]);
        s.surviving_ready = (0, 1);
        let st = build(&Default::default(), None, &s, now);
        let c = cond(&st, conditions::REDUNDANCY_SATISFIED);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "InsufficientRedundancy")
        );
        assert!(
            c.message.contains("leave 0 Ready replicas, 1 needed"),
            "{}",
            c.message
        );
    }

    #[test]
    fn held_replicas_conflicts_and_refusals_are_reported() {
        let now = t("2026-01-01T00:00:00Z");
        let mut s = summary(Verdict::Placed { redundant: true }, [2, 1]);
        s.held = 2;
        let st = build(&Default::default(), None, &s, now);
        let ready = cond(&st, conditions::READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "WaitingForReplacements")
        );
        assert!(
            ready
                .message
                .contains("2 kept until their replacements are Ready")
        );

        s.held = 0;
        s.conflicts = vec!["pool aws: Deployment shop/web-aws is not skyfleet's".into()];
        let st = build(&Default::default(), None, &s, now);
        assert_eq!(cond(&st, conditions::DEGRADED).reason, "Conflict");
        s.conflicts.clear();
        s.refused = vec!["pool aws: exceeded quota: q".into()];
        let st = build(&Default::default(), None, &s, now);
        assert_eq!(cond(&st, conditions::DEGRADED).reason, "MemberRefused");
        assert!(cond(&st, conditions::DEGRADED).message.contains("quota"));
    }

    #[test]
    fn lost_pools_infeasible_plans_and_bad_specs_are_reported() {
        let now = t("2026-01-01T00:00:00Z");
        let mut d = summary(Verdict::Placed { redundant: false }, [2, 1]);
        d.lost = vec!["azure".into()];
        let s = build(&Default::default(), None, &d, now);
        assert_eq!(cond(&s, conditions::DEGRADED).reason, "PoolLost");
        assert!(cond(&s, conditions::DEGRADED).message.contains("azure"));
        assert_eq!(cond(&s, conditions::REDUNDANCY_SATISFIED).status, "False");

        let s = build(
            &Default::default(),
            None,
            &summary(Verdict::Infeasible("only 1 provider".into()), [2, 1]),
            now,
        );
        assert_eq!(cond(&s, conditions::DEGRADED).status, "True");
        assert_eq!(
            cond(&s, conditions::REDUNDANCY_SATISFIED).message,
            "only 1 provider"
        );

        let s = build(
            &Default::default(),
            None,
            &summary(Verdict::InvalidSpec("no cpu".into()), [0, 0]),
            now,
        );
        assert_eq!(cond(&s, conditions::READY).reason, "InvalidSpec");
        assert_eq!(cond(&s, conditions::READY).status, "False");
    }

    #[test]
    fn status_is_rewritten_only_when_it_changed() {
        let t0 = t("2026-01-01T00:00:00Z");
        let mut d = summary(Verdict::Placed { redundant: true }, [2, 1]);
        d.demand.history_samples = 1000;
        let mut first = build(&Default::default(), Some(1), &d, t0);
        first.last_decision_time = Some(Time(t0));
        let t1 = t("2026-01-01T00:00:05Z");
        let again = build(&first, Some(1), &d, t1);
        let period = Duration::from_secs(15);
        assert!(!worth_writing(&first, &again, None, period, t1));
        assert_eq!(
            cond(&again, conditions::READY).last_transition_time.0,
            t0,
            "transition times kept"
        );

        // 0.5 to 0.51 cores and one more sample: refreshed only after DEMAND_REFRESH.
        let mut jitter = d.clone();
        jitter.demand.current_cores = 0.51;
        jitter.demand.history_samples += 1;
        let jittered = build(&first, Some(1), &jitter, t1);
        assert!(
            !worth_writing(&first, &jittered, None, period, t1),
            "demand alone waits"
        );
        let t20 = t("2026-01-01T00:00:20Z");
        assert!(
            !worth_writing(&first, &jittered, None, period, t20),
            "a small move waits longer than a sync"
        );
        let later = t0 + jiff::SignedDuration::try_from(DEMAND_REFRESH).unwrap();
        assert!(worth_writing(&first, &jittered, None, period, later));
        // 0.5 to 0.6 cores: written at the next sync after the interval.
        let mut jump = d.clone();
        jump.demand.current_cores = 0.6;
        let jumped = build(&first, Some(1), &jump, t1);
        assert!(!worth_writing(&first, &jumped, None, period, t1));
        assert!(worth_writing(&first, &jumped, None, period, t20));
        // A history cut short: likewise.
        let mut cut = d.clone();
        cut.demand.history_samples = 10;
        assert!(worth_writing(
            &first,
            &build(&first, Some(1), &cut, t1),
            None,
            period,
            t20
        ));
        // With a replica size: a move within one replica's worth waits, one across it does not.
        let mut near = d.clone();
        near.demand.forecast_peak_cores = 0.58;
        let nudged = build(&first, Some(1), &near, t1);
        assert!(
            !worth_writing(&first, &nudged, Some(size(0.35, 1)), period, t20),
            "0.5 and 0.58 are both 2 replicas of 0.35"
        );
        assert!(
            worth_writing(&first, &nudged, Some(size(0.25, 1)), period, t20),
            "0.5 is 2 replicas of 0.25, 0.58 is 3"
        );
        assert!(
            !worth_writing(&first, &nudged, Some(size(0.25, 3)), period, t20),
            "2 and 3 replicas of 0.25 are both the floor of 3"
        );
        // Demand wandering between nothing and a few millicores under a floor of 2.
        let mut idle = d.clone();
        idle.demand.forecast_peak_cores = 0.0;
        let mut idle = build(&first, Some(1), &idle, t1);
        idle.last_decision_time = Some(Time(t0));
        let mut stirred = idle.clone();
        if let Some(d) = stirred.demand.as_mut() {
            d.forecast_peak_cores = 0.003;
        }
        assert!(
            !worth_writing(&idle, &stirred, Some(size(0.07, 2)), period, t20),
            "0 and 3 millicores are both the floor of 2 replicas"
        );
        assert!(
            worth_writing(&idle, &stirred, Some(size(0.07, 0)), period, t20),
            "with no floor, 0 and 1 replica differ"
        );
        // Forecasting starts: likewise.
        let mut model = d.clone();
        model.demand.model = "HoltWinters".into();
        let remodelled = build(&first, Some(1), &model, t1);
        assert!(worth_writing(&first, &remodelled, None, period, t20));
        // One forecasting model for another: with the demand refresh.
        let mut other = model.clone();
        other.demand.model = "DampedTrend".into();
        let mut forecasting = remodelled.clone();
        forecasting.last_decision_time = Some(Time(t0));
        let switched = build(&forecasting, Some(1), &other, t1);
        assert!(!worth_writing(&forecasting, &switched, None, period, t20));
        assert!(worth_writing(&forecasting, &switched, None, period, later));

        let scaled = build(
            &first,
            Some(1),
            &summary(Verdict::Placed { redundant: true }, [2, 0]),
            t1,
        );
        assert!(worth_writing(&first, &scaled, None, period, t1));
    }
}
