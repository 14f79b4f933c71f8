//! The pure parts of the MultiCloudWorkload reconciler: whether a pool counts as available
//! (failover grace), what to do in each member once a plan is made, and the status that
//! results. No I/O, so every rule is unit-tested.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::cloud_pool::CloudPoolStatus;
use crate::api::conditions;
use crate::api::workload::{DemandStatus, MultiCloudWorkloadStatus, PoolPlacementStatus};

/// The `Ready` reason the CloudPool controller writes when a member does not answer.
pub const UNREACHABLE: &str = "Unreachable";

/// Why a pool that the CloudPool controller has not looked at yet is not planned on.
pub const NOT_PROBED: &str = "not probed yet";

/// How long a new workload waits for the first probe of a just-created pool before it is
/// placed without it.
pub const FIRST_PROBE_WAIT: Duration = Duration::from_secs(30);

/// Whether a workload that runs nothing yet should wait before its first placement: a pool
/// it selects was created `age` ago and has not been probed (`ineligible` is why the
/// placement may not use it). Placing at once would put everything in the pools that
/// happened to be probed first and move it again seconds later; waiting is bounded by
/// [`FIRST_PROBE_WAIT`], so a pool the controller never reaches cannot hold it forever.
pub fn wait_for_first_probe(ineligible: Option<&str>, age: Duration, runs_nothing: bool) -> bool {
    runs_nothing && ineligible == Some(NOT_PROBED) && age < FIRST_PROBE_WAIT
}

/// Whether a pool may be planned on, as the workload controller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    /// Planned on: Ready, or unreachable for less than the failover grace.
    pub available: bool,
    /// Why not, when not (for the plan's explanation).
    pub reason: Option<String>,
    /// Whether the member is worth contacting now: false while the probe says it does not
    /// answer, so a reconcile never waits on a dead API server.
    pub contact: bool,
    /// When the failover grace of an unreachable pool runs out, so the workload is looked at
    /// again right then instead of at its next periodic sync.
    pub grace_left: Option<Duration>,
}

/// The pool's availability from its `Ready` condition at `now`.
///
/// A pool that was probed successfully once and then stops answering (`Unreachable`) stays
/// available for `grace`, so a blip does not move replicas; past the grace it is lost and
/// its replicas are planned elsewhere. Any other not-Ready reason (drained, no matching
/// nodes, a bad kubeconfig) is not a blip and makes the pool unavailable at once.
pub fn availability(
    status: Option<&CloudPoolStatus>,
    grace: Duration,
    now: jiff::Timestamp,
) -> Availability {
    let ready = status.and_then(|s| s.conditions.iter().find(|c| c.type_ == conditions::READY));
    let Some(ready) = ready else {
        return Availability {
            available: false,
            reason: Some(NOT_PROBED.to_string()),
            contact: false,
            grace_left: None,
        };
    };
    if ready.status == "True" {
        return Availability {
            available: true,
            reason: None,
            contact: true,
            grace_left: None,
        };
    }
    let for_secs = now
        .duration_since(ready.last_transition_time.0)
        .as_secs()
        .max(0);
    let was_seen = status.is_some_and(|s| s.last_probe_time.is_some());
    let unreachable = ready.reason == UNREACHABLE;
    let within_grace = unreachable && was_seen && (for_secs as u64) < grace.as_secs();
    Availability {
        available: within_grace,
        reason: (!within_grace).then(|| {
            format!(
                "not Ready for {for_secs}s: {}: {}",
                ready.reason, ready.message
            )
        }),
        contact: !unreachable,
        grace_left: within_grace
            .then(|| grace.saturating_sub(Duration::from_secs(for_secs as u64))),
    }
}

/// What to do with the workload's Deployment in one pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberAction {
    /// Server-side apply the Deployment with this many replicas.
    Apply(u32),
    /// Delete the Deployment: the pool may no longer take replicas and answers.
    Delete,
    /// Touch nothing.
    Leave,
}

/// One pool as the apply step sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolState {
    /// The CloudPool.
    pub name: String,
    /// The plan may put replicas here.
    pub eligible: bool,
    /// The member answered this reconcile (its Deployment was read).
    pub reachable: bool,
    /// The workload's Deployment exists there.
    pub has_deployment: bool,
    /// Its `spec.replicas` (or the last known count when unreachable).
    pub current: u32,
    /// What the plan puts here.
    pub planned: u32,
}

/// What to do in each of `pools` (same order). A feasible plan is applied as it is. An
/// infeasible one never takes capacity away: every pool keeps what runs, and the plan's
/// growth is added only while the total stays within `max_replicas` (or within what already
/// runs, when that is more), so an impossible constraint neither shrinks the workload nor
/// pushes it past the ceiling its owner set. An unreachable member is never touched, and a
/// Deployment is deleted only when its pool is ineligible, answers, and the plan is
/// feasible (so the replicas have somewhere else to go).
pub fn member_actions(pools: &[PoolState], feasible: bool, max_replicas: u32) -> Vec<MemberAction> {
    let running: u32 = pools
        .iter()
        .filter(|p| p.reachable)
        .map(|p| p.current)
        .sum();
    let mut room = max_replicas.saturating_sub(running);
    pools
        .iter()
        .map(|pool| {
            if !pool.reachable {
                return MemberAction::Leave;
            }
            if !pool.eligible {
                return if feasible && pool.has_deployment {
                    MemberAction::Delete
                } else {
                    MemberAction::Leave
                };
            }
            let target = if feasible {
                pool.planned
            } else {
                let growth = pool.planned.saturating_sub(pool.current).min(room);
                room -= growth;
                pool.current + growth
            };
            if target > 0 || pool.has_deployment {
                MemberAction::Apply(target)
            } else {
                MemberAction::Leave
            }
        })
        .collect()
}

/// Replicas a pool is meant to run after `action`: what is applied, 0 after a delete, and
/// what runs now when the member is left alone.
pub fn intended(pool: &PoolState, action: MemberAction) -> u32 {
    match action {
        MemberAction::Apply(n) => n,
        MemberAction::Delete => 0,
        MemberAction::Leave if pool.reachable => pool.current,
        // Unreachable: what the plan wants there (0 for a lost pool, kept within the grace).
        MemberAction::Leave => pool.planned,
    }
}

/// Why the workload is in the state it is in.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The spec cannot be planned at all (a bad request quantity or pool selector).
    InvalidSpec(String),
    /// No pool may take replicas.
    NoEligiblePools(String),
    /// A plan that meets every constraint.
    Placed {
        /// Losing `tolerate` domains still leaves enough replicas.
        redundant: bool,
    },
    /// The constraints cannot all hold; applied only where it does not reduce what runs.
    Infeasible(String),
}

/// One pool's row in status.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The CloudPool.
    pub name: String,
    /// Replicas meant to run there.
    pub replicas: u32,
    /// Replicas ready there.
    pub ready: i32,
    /// Price of one replica there, per hour.
    pub cost_per_replica: f64,
}

/// Everything the status is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Why.
    pub verdict: Verdict,
    /// One row per pool that runs, or is meant to run, replicas.
    pub rows: Vec<Row>,
    /// Pools that ran replicas and are lost (past the failover grace).
    pub lost: Vec<String>,
    /// Demand as seen.
    pub demand: DemandStatus,
    /// The plan's sentence.
    pub explanation: String,
}

/// The status for `decision`, keeping condition transition times of `previous` and its
/// `lastDecisionTime` (the caller stamps a new one only when something else changed).
pub fn build_status(
    previous: &MultiCloudWorkloadStatus,
    generation: Option<i64>,
    decision: &Decision,
    now: jiff::Timestamp,
) -> MultiCloudWorkloadStatus {
    let mut status = MultiCloudWorkloadStatus {
        observed_generation: generation,
        conditions: previous.conditions.clone(),
        last_decision_time: previous.last_decision_time.clone(),
        ..Default::default()
    };
    let mut rows: Vec<PoolPlacementStatus> = decision
        .rows
        .iter()
        .filter(|r| r.replicas > 0 || r.ready > 0)
        .map(|r| PoolPlacementStatus {
            name: r.name.clone(),
            replicas: i32::try_from(r.replicas).unwrap_or(i32::MAX),
            ready_replicas: r.ready,
            cost_per_hour: round(f64::from(r.replicas) * r.cost_per_replica, 6),
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    status.desired_replicas = rows.iter().map(|r| r.replicas).sum();
    status.ready_replicas = rows.iter().map(|r| r.ready_replicas).sum();
    status.pools_in_use = rows.iter().filter(|r| r.replicas > 0).count() as i32;
    status.cost_per_hour = round(rows.iter().map(|r| r.cost_per_hour).sum(), 6);
    status.pools = rows;
    status.demand = Some(decision.demand.clone());
    status.message = Some(decision.explanation.clone()).filter(|m| !m.is_empty());

    let all_ready = status.ready_replicas >= status.desired_replicas;
    let progress = format!(
        "{} of {} replicas ready",
        status.ready_replicas, status.desired_replicas
    );
    let c = &mut status.conditions;
    let set = |c: &mut Vec<_>, kind: &str, ok: bool, reason: &str, message: &str| {
        conditions::set(c, kind, ok, reason, message, generation, now);
    };
    match &decision.verdict {
        Verdict::InvalidSpec(why) => {
            set(c, conditions::READY, false, "InvalidSpec", why);
            set(
                c,
                conditions::REDUNDANCY_SATISFIED,
                false,
                "InvalidSpec",
                why,
            );
            set(c, conditions::DEGRADED, true, "InvalidSpec", why);
        }
        Verdict::NoEligiblePools(why) => {
            set(c, conditions::READY, false, "NoEligiblePools", why);
            set(
                c,
                conditions::REDUNDANCY_SATISFIED,
                false,
                "NoEligiblePools",
                why,
            );
            set(c, conditions::DEGRADED, true, "NoEligiblePools", why);
        }
        Verdict::Placed { redundant } => {
            let (reason, message) = if all_ready {
                ("Placed", format!("{progress}; {}", decision.explanation))
            } else {
                ("Progressing", progress.clone())
            };
            set(c, conditions::READY, all_ready, reason, &message);
            if *redundant {
                set(
                    c,
                    conditions::REDUNDANCY_SATISFIED,
                    true,
                    "Redundant",
                    "the planned replicas survive the configured losses",
                );
            } else {
                set(
                    c,
                    conditions::REDUNDANCY_SATISFIED,
                    false,
                    "InsufficientRedundancy",
                    "losing the configured failure domains would leave fewer replicas than demand needs",
                );
            }
            if decision.lost.is_empty() {
                set(c, conditions::DEGRADED, false, "AsPlanned", "");
            } else {
                let lost = format!(
                    "pools lost past the failover grace: {}; their replicas are planned elsewhere",
                    decision.lost.join(", ")
                );
                set(c, conditions::DEGRADED, true, "PoolLost", &lost);
            }
        }
        Verdict::Infeasible(why) => {
            let ready_reason = if all_ready { "Placed" } else { "Progressing" };
            set(c, conditions::READY, all_ready, ready_reason, &progress);
            set(
                c,
                conditions::REDUNDANCY_SATISFIED,
                false,
                "Infeasible",
                why,
            );
            set(c, conditions::DEGRADED, true, "Infeasible", why);
        }
    }
    status
}

/// Whether writing `next` is worth it: something other than `lastDecisionTime` changed,
/// and a change in the demand figures alone is written at most once per `min_interval`
/// (metrics move a little on every read; rewriting status for that would wake every
/// watcher of the workload on each sync).
pub fn worth_writing(
    previous: &MultiCloudWorkloadStatus,
    next: &MultiCloudWorkloadStatus,
    min_interval: Duration,
    now: jiff::Timestamp,
) -> bool {
    let strip = |s: &MultiCloudWorkloadStatus, demand: bool| MultiCloudWorkloadStatus {
        last_decision_time: None,
        demand: if demand { s.demand.clone() } else { None },
        ..s.clone()
    };
    if strip(previous, false) != strip(next, false) {
        return true;
    }
    if strip(previous, true) == strip(next, true) {
        return false;
    }
    previous
        .last_decision_time
        .as_ref()
        .is_none_or(|Time(t)| now.duration_since(*t).unsigned_abs() >= min_interval)
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

    fn pool_status(ready: &str, reason: &str, since: &str, probed: bool) -> CloudPoolStatus {
        CloudPoolStatus {
            conditions: vec![Condition {
                type_: conditions::READY.into(),
                status: ready.into(),
                reason: reason.into(),
                message: "connection refused".into(),
                observed_generation: None,
                last_transition_time: Time(t(since)),
            }],
            last_probe_time: probed.then(|| Time(t("2026-01-01T00:00:00Z"))),
            ..Default::default()
        }
    }

    #[test]
    fn a_pool_is_available_while_ready_and_within_the_grace_only_when_unreachable() {
        let grace = Duration::from_secs(30);
        let now = t("2026-01-01T00:01:00Z");
        let ready = pool_status("True", "Probed", "2026-01-01T00:00:00Z", true);
        assert!(availability(Some(&ready), grace, now).available);

        let blip = pool_status("False", UNREACHABLE, "2026-01-01T00:00:40Z", true);
        let a = availability(Some(&blip), grace, now);
        assert!(a.available, "20s into a 30s grace: {a:?}");
        assert_eq!(
            a.grace_left,
            Some(Duration::from_secs(10)),
            "looked at again when the grace runs out"
        );
        assert!(
            !a.contact,
            "a member the probe cannot reach is not contacted"
        );

        let lost = pool_status("False", UNREACHABLE, "2026-01-01T00:00:15Z", true);
        let a = availability(Some(&lost), grace, now);
        assert!(!a.available);
        assert_eq!(a.grace_left, None);
        assert_eq!(
            a.reason.as_deref(),
            Some("not Ready for 45s: Unreachable: connection refused")
        );

        let never_seen = pool_status("False", UNREACHABLE, "2026-01-01T00:00:50Z", false);
        assert!(
            !availability(Some(&never_seen), grace, now).available,
            "a pool that never answered has nothing to protect"
        );

        let drained = pool_status("False", "Drained", "2026-01-01T00:00:59Z", true);
        let a = availability(Some(&drained), grace, now);
        assert!(!a.available, "drained is no blip");
        assert!(a.contact, "a drained member answers and can be cleaned up");

        let none = availability(None, grace, now);
        assert!(!none.available && !none.contact);
        assert_eq!(none.reason.as_deref(), Some("not probed yet"));
    }

    #[test]
    fn a_new_workload_waits_briefly_for_the_first_probe_of_a_new_pool() {
        let young = Duration::from_secs(3);
        assert!(wait_for_first_probe(Some(NOT_PROBED), young, true));
        assert!(
            !wait_for_first_probe(Some(NOT_PROBED), young, false),
            "a workload that runs is never held"
        );
        assert!(
            !wait_for_first_probe(Some(NOT_PROBED), FIRST_PROBE_WAIT, true),
            "bounded"
        );
        assert!(
            !wait_for_first_probe(Some("drained (spec.unschedulable)"), young, true),
            "only for a pool not probed yet"
        );
        assert!(!wait_for_first_probe(None, young, true));
    }

    fn state(eligible: bool, reachable: bool, has: bool, current: u32, planned: u32) -> PoolState {
        PoolState {
            name: "p".into(),
            eligible,
            reachable,
            has_deployment: has,
            current,
            planned,
        }
    }

    /// The action for one pool alone, with room for anything it plans.
    fn member_action(pool: &PoolState, feasible: bool) -> MemberAction {
        member_actions(std::slice::from_ref(pool), feasible, u32::MAX)[0]
    }

    #[test]
    fn feasible_plans_are_applied_as_planned() {
        assert_eq!(
            member_action(&state(true, true, false, 0, 2), true),
            MemberAction::Apply(2)
        );
        assert_eq!(
            member_action(&state(true, true, true, 3, 0), true),
            MemberAction::Apply(0),
            "scaled to zero, not deleted"
        );
        assert_eq!(
            member_action(&state(true, true, false, 0, 0), true),
            MemberAction::Leave,
            "nothing created for nothing"
        );
        assert_eq!(
            member_action(&state(false, true, true, 2, 0), true),
            MemberAction::Delete,
            "an ineligible pool that answers is cleaned up"
        );
    }

    #[test]
    fn unreachable_members_are_never_touched() {
        for feasible in [true, false] {
            for eligible in [true, false] {
                assert_eq!(
                    member_action(&state(eligible, false, true, 3, 0), feasible),
                    MemberAction::Leave
                );
            }
        }
        let lost = state(false, false, true, 3, 0);
        assert_eq!(intended(&lost, MemberAction::Leave), 0);
        let blip = state(true, false, true, 3, 3);
        assert_eq!(intended(&blip, MemberAction::Leave), 3);
    }

    #[test]
    fn infeasible_plans_never_reduce_what_runs() {
        assert_eq!(
            member_action(&state(true, true, true, 4, 1), false),
            MemberAction::Apply(4)
        );
        assert_eq!(
            member_action(&state(true, true, true, 1, 3), false),
            MemberAction::Apply(3),
            "but may add"
        );
        assert_eq!(
            member_action(&state(false, true, true, 2, 0), false),
            MemberAction::Leave,
            "nothing is deleted on an infeasible plan"
        );
    }

    #[test]
    fn infeasible_plans_grow_only_up_to_replicas_max() {
        // 4 + 2 run; the partial plan moves towards a different split of 6. Keeping what runs
        // and adding all the plan's growth would give 4 + 2 + 3 = 9 > 6.
        let pools = [
            state(true, true, true, 4, 1),
            state(true, true, true, 2, 2),
            state(true, true, false, 0, 3),
        ];
        let actions = member_actions(&pools, false, 6);
        assert_eq!(
            actions,
            vec![
                MemberAction::Apply(4),
                MemberAction::Apply(2),
                MemberAction::Leave
            ]
        );
        // With room for two more, two of the planned three are added.
        let actions = member_actions(&pools, false, 8);
        assert_eq!(actions[2], MemberAction::Apply(2));
        // An unreachable member's replicas do not use room: they may be lost.
        let pools = [
            state(true, false, true, 5, 0),
            state(true, true, true, 1, 4),
        ];
        assert_eq!(
            member_actions(&pools, false, 6),
            vec![MemberAction::Leave, MemberAction::Apply(4)]
        );
        // A workload already above its ceiling (replicas.max lowered) is not reduced either.
        let pools = [
            state(true, true, true, 9, 2),
            state(true, true, false, 0, 4),
        ];
        assert_eq!(
            member_actions(&pools, false, 6),
            vec![MemberAction::Apply(9), MemberAction::Leave]
        );
    }

    fn decision(verdict: Verdict, ready: [i32; 2]) -> Decision {
        Decision {
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
            },
            explanation: "3 replicas: aws 2, gcp 1".into(),
        }
    }

    fn cond<'a>(s: &'a MultiCloudWorkloadStatus, kind: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == kind).unwrap()
    }

    #[test]
    fn status_sums_rows_and_says_why() {
        let now = t("2026-01-01T00:00:00Z");
        let s = build_status(
            &Default::default(),
            Some(4),
            &decision(Verdict::Placed { redundant: true }, [2, 1]),
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
        assert_eq!(cond(&s, conditions::READY).status, "True");
        assert_eq!(cond(&s, conditions::READY).reason, "Placed");
        assert_eq!(cond(&s, conditions::REDUNDANCY_SATISFIED).status, "True");
        assert_eq!(cond(&s, conditions::DEGRADED).status, "False");
        assert_eq!(s.message.as_deref(), Some("3 replicas: aws 2, gcp 1"));

        let starting = build_status(
            &Default::default(),
            Some(4),
            &decision(Verdict::Placed { redundant: true }, [0, 1]),
            now,
        );
        assert_eq!(cond(&starting, conditions::READY).reason, "Progressing");
        assert_eq!(
            cond(&starting, conditions::READY).message,
            "1 of 3 replicas ready"
        );
    }

    #[test]
    fn lost_pools_infeasible_plans_and_bad_specs_are_reported() {
        let now = t("2026-01-01T00:00:00Z");
        let mut d = decision(Verdict::Placed { redundant: false }, [2, 1]);
        d.lost = vec!["azure".into()];
        let s = build_status(&Default::default(), None, &d, now);
        assert_eq!(cond(&s, conditions::DEGRADED).reason, "PoolLost");
        assert!(cond(&s, conditions::DEGRADED).message.contains("azure"));
        assert_eq!(cond(&s, conditions::REDUNDANCY_SATISFIED).status, "False");

        let s = build_status(
            &Default::default(),
            None,
            &decision(Verdict::Infeasible("only 1 provider".into()), [2, 1]),
            now,
        );
        assert_eq!(cond(&s, conditions::DEGRADED).status, "True");
        assert_eq!(
            cond(&s, conditions::REDUNDANCY_SATISFIED).message,
            "only 1 provider"
        );

        let s = build_status(
            &Default::default(),
            None,
            &decision(Verdict::InvalidSpec("no cpu".into()), [0, 0]),
            now,
        );
        assert_eq!(cond(&s, conditions::READY).reason, "InvalidSpec");
        assert_eq!(cond(&s, conditions::READY).status, "False");
    }

    #[test]
    fn status_is_rewritten_only_when_it_changed() {
        let t0 = t("2026-01-01T00:00:00Z");
        let d = decision(Verdict::Placed { redundant: true }, [2, 1]);
        let mut first = build_status(&Default::default(), Some(1), &d, t0);
        first.last_decision_time = Some(Time(t0));
        let t1 = t("2026-01-01T00:00:05Z");
        let again = build_status(&first, Some(1), &d, t1);
        let period = Duration::from_secs(15);
        assert!(!worth_writing(&first, &again, period, t1));
        assert_eq!(
            cond(&again, conditions::READY).last_transition_time.0,
            t0,
            "transition times kept"
        );

        let mut jitter = d.clone();
        jitter.demand.current_cores = 0.51;
        let jittered = build_status(&first, Some(1), &jitter, t1);
        assert!(
            !worth_writing(&first, &jittered, period, t1),
            "demand alone waits"
        );
        assert!(worth_writing(
            &first,
            &jittered,
            period,
            t("2026-01-01T00:00:20Z")
        ));

        let scaled = build_status(
            &first,
            Some(1),
            &decision(Verdict::Placed { redundant: true }, [2, 0]),
            t1,
        );
        assert!(worth_writing(&first, &scaled, period, t1));
    }
}
