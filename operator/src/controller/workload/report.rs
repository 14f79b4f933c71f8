//! Report: say what was decided and what happened. The status (only when it changed), the
//! decision's Events plus those for members that refused, the workload's metrics, and the
//! workload's memory stored beside its history.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use tracing::debug;

use super::act::Outcome;
use super::{WorkloadContext, WorkloadError};
use crate::api::conditions;
use crate::api::history::{WorkloadHistory, WorkloadHistorySpec};
use crate::api::workload::{MultiCloudWorkload, MultiCloudWorkloadStatus};
use crate::controller::labels;
use crate::controller::metrics::WorkloadReport;
use crate::decide::{ConditionReason, EventReason, Memory, Notice, Telemetry, status};

/// The name under which a refusal that is no pool's (the DNSEndpoint) is listed among the
/// failures.
pub const NOT_A_POOL: &str = "";

/// Folds what the members answered into the decision's status: a pool whose apply failed
/// shows what it ran, not what was meant, and the failure is a condition. A refusal that
/// `previous` already said keeps its transition time (the decision built its status as if
/// nothing failed, so the condition would otherwise look new at every sync, and the status
/// be rewritten at every sync).
pub fn with_outcomes(
    mut status: MultiCloudWorkloadStatus,
    previous: &MultiCloudWorkloadStatus,
    failures: &[(String, u32, String)],
    generation: Option<i64>,
    now: jiff::Timestamp,
) -> MultiCloudWorkloadStatus {
    if failures.is_empty() {
        return status;
    }
    for (pool, ran, _) in failures {
        if let Some(row) = status.pools.iter_mut().find(|r| &r.name == pool) {
            let per_replica = if row.replicas > 0 {
                row.cost_per_hour / f64::from(row.replicas)
            } else {
                0.0
            };
            row.replicas = i32::try_from(*ran).unwrap_or(i32::MAX);
            row.cost_per_hour = status::round(per_replica * f64::from(*ran), 6);
        }
    }
    status.desired_replicas = status.pools.iter().map(|r| r.replicas).sum();
    status.cost_per_hour = status::round(status.pools.iter().map(|r| r.cost_per_hour).sum(), 6);
    let message: Vec<String> = failures
        .iter()
        .map(|(pool, _, why)| {
            if pool == NOT_A_POOL {
                why.clone()
            } else {
                format!("pool {pool}: {why}")
            }
        })
        .collect();
    conditions::set(
        &mut status.conditions,
        conditions::DEGRADED,
        true,
        ConditionReason::MemberRefused.as_str(),
        message.join("; "),
        generation,
        now,
    );
    let degraded = |s: &MultiCloudWorkloadStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == conditions::DEGRADED && c.status == "True")
            .map(|c| c.last_transition_time.clone())
    };
    if let Some(since) = degraded(previous)
        && let Some(c) = status
            .conditions
            .iter_mut()
            .find(|c| c.type_ == conditions::DEGRADED)
    {
        c.last_transition_time = since;
    }
    status
}

/// The failures among `outcomes`: pool, replicas it runs, why.
pub fn failures(
    pools: &[String],
    running: &[u32],
    outcomes: &[Outcome],
) -> Vec<(String, u32, String)> {
    pools
        .iter()
        .zip(running)
        .zip(outcomes)
        .filter_map(|((p, &n), o)| match o {
            Outcome::Failed(why) => Some((p.clone(), n, why.clone())),
            Outcome::Done => None,
        })
        .collect()
}

/// Writes `status` when it changed, with `memory` (in its stored form) in it: a decision
/// whose memory changed too costs one request, not two. Returns the status now in effect,
/// and whether it was written (and the memory with it).
///
/// Every write of this field manager carries the memory, so a later one never drops it;
/// [`persist_memory`], under its own manager, writes the memory alone.
pub async fn status(
    ctx: &WorkloadContext,
    workload: &MultiCloudWorkload,
    previous: &MultiCloudWorkloadStatus,
    mut next: MultiCloudWorkloadStatus,
    memory: &Memory,
    now: jiff::Timestamp,
) -> Result<(MultiCloudWorkloadStatus, bool), WorkloadError> {
    // What one replica carries at the target: demand figures matter when they cross it.
    let size = crate::placement::sizing::ReplicaShape::of(&workload.spec.template)
        .ok()
        .map(|s| status::ReplicaSize {
            cores: s.cpu * f64::from(workload.spec.scaling.target_cpu_utilization_percentage)
                / 100.0,
            min: u32::try_from(workload.spec.replicas.min).unwrap_or(0),
        });
    if !status::worth_writing(previous, &next, size, ctx.sync_period, now) {
        return Ok((next, false));
    }
    next.last_decision_time = Some(Time(now));
    next.memory = memory.encode();
    let namespace = workload.namespace().unwrap_or_default();
    let api: Api<MultiCloudWorkload> = Api::namespaced(ctx.registry.management(), &namespace);
    let patch = serde_json::json!({
        "apiVersion": "skyfleet.io/v1alpha1",
        "kind": "MultiCloudWorkload",
        "status": next,
    });
    api.patch_status(
        &workload.name_any(),
        &PatchParams::apply(labels::FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(WorkloadError::Status)?;
    debug!(workload = %workload.name_any(), %namespace, desired = next.desired_replicas, ready = next.ready_replicas, "status written");
    Ok((next, true))
}

/// Queues one Event about the workload; it is sent in the background (see
/// [`crate::controller::event_queue`]).
pub fn publish(ctx: &WorkloadContext, workload: &MultiCloudWorkload, notice: &Notice) {
    let event = Event {
        type_: if notice.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: notice.reason.as_str().to_string(),
        note: Some(event_note(&notice.note)),
        action: notice.action.to_string(),
        secondary: None,
    };
    ctx.events.send(event, workload.object_ref(&()));
}

/// The most bytes the API server takes in an Event's note.
pub const EVENT_NOTE_LIMIT: usize = 1024;

/// `note` cut to what an Event may carry (a longer one is refused, and the Event lost: with
/// many pools, "no pool may take replicas (...)" is easily longer), at a character boundary.
pub fn event_note(note: &str) -> String {
    const MARK: &str = " … (cut; the full text is in status)";
    if note.len() <= EVENT_NOTE_LIMIT {
        return note.to_string();
    }
    let mut end = EVENT_NOTE_LIMIT - MARK.len();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &note[..end])
}

/// A Warning Event for members that refused this decision's applies.
pub fn refused(failures: &[(String, u32, String)]) -> Option<Notice> {
    (!failures.is_empty()).then(|| Notice {
        warning: true,
        reason: EventReason::MemberRefused,
        action: "Apply",
        note: failures
            .iter()
            .map(|(pool, _, why)| {
                if pool == NOT_A_POOL {
                    why.clone()
                } else {
                    format!("pool {pool}: {why}")
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// Publishes the workload's metrics from the status in effect and the decision's numbers.
pub fn metrics(
    ctx: &WorkloadContext,
    workload: &MultiCloudWorkload,
    status: &MultiCloudWorkloadStatus,
    telemetry: &Telemetry,
    planned_cores: f64,
) {
    ctx.metrics.publish_workload(
        &workload.namespace().unwrap_or_default(),
        &workload.name_any(),
        &WorkloadReport {
            status,
            telemetry,
            planned_cores,
            budget_per_hour: workload.spec.budget.as_ref().map(|b| b.cost_per_hour),
        },
    );
}

/// The field manager of `status.memory` written alone.
pub const MEMORY_FIELD_MANAGER: &str = "skyfleet-memory";

/// Stores the decision memory in the workload's `status.memory`, alone: a write of a few
/// hundred bytes under its own field manager, before a decision that must not be forgotten
/// is acted on, or when no status write carried it.
pub async fn persist_memory(
    ctx: &WorkloadContext,
    workload: &MultiCloudWorkload,
    memory: &Memory,
) -> Result<(), kube::Error> {
    let namespace = workload.namespace().unwrap_or_default();
    let api: Api<MultiCloudWorkload> = Api::namespaced(ctx.registry.management(), &namespace);
    let patch = serde_json::json!({
        "apiVersion": "skyfleet.io/v1alpha1",
        "kind": "MultiCloudWorkload",
        "status": {"memory": memory.encode()},
    });
    api.patch_status(
        &workload.name_any(),
        &PatchParams::apply(MEMORY_FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
}

/// Stores the demand history in the workload's `WorkloadHistory` (its `memory`, where an
/// older version kept the decision memory, is left empty: that lives in status now).
pub async fn persist_history(
    ctx: &WorkloadContext,
    workload: &MultiCloudWorkload,
    memory: &Memory,
) -> Result<(), kube::Error> {
    let namespace = workload.namespace().unwrap_or_default();
    let name = workload.name_any();
    let mut history = WorkloadHistory::new(
        &name,
        WorkloadHistorySpec {
            history: memory.demand.encode(),
            memory: String::new(),
        },
    );
    history.metadata = ObjectMeta {
        name: Some(name.clone()),
        namespace: Some(namespace.clone()),
        labels: Some(BTreeMap::from([
            (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
            (labels::WORKLOAD_NAME.to_string(), name.clone()),
        ])),
        owner_references: workload.controller_owner_ref(&()).map(|o| vec![o]),
        ..Default::default()
    };
    let api: Api<WorkloadHistory> = Api::namespaced(ctx.registry.management(), &namespace);
    api.patch(
        &name,
        &PatchParams::apply(labels::FIELD_MANAGER).force(),
        &Patch::Apply(&history),
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::workload::PoolPlacementStatus;

    #[test]
    fn event_notes_fit_what_the_api_server_takes() {
        assert_eq!(event_note("short"), "short");
        let long = "pool é: not selected by placement.poolSelector; ".repeat(100);
        let cut = event_note(&long);
        assert!(cut.len() <= EVENT_NOTE_LIMIT, "{}", cut.len());
        assert!(cut.starts_with("pool é: not selected") && cut.ends_with("in status)"));
    }

    #[test]
    fn a_refused_apply_shows_what_runs_and_says_why() {
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let status = MultiCloudWorkloadStatus {
            desired_replicas: 5,
            pools: vec![
                PoolPlacementStatus {
                    name: "aws".into(),
                    replicas: 3,
                    ready_replicas: 1,
                    cost_per_hour: 0.3,
                },
                PoolPlacementStatus {
                    name: "gcp".into(),
                    replicas: 2,
                    ready_replicas: 2,
                    cost_per_hour: 0.2,
                },
            ],
            ..Default::default()
        };
        let failures = vec![("aws".to_string(), 1, "admission webhook denied".to_string())];
        let s = with_outcomes(status.clone(), &Default::default(), &failures, Some(1), now);
        assert_eq!(s.desired_replicas, 3, "1 that runs in aws, not the 3 meant");
        assert!((s.cost_per_hour - 0.3).abs() < 1e-9);
        let c = s
            .conditions
            .iter()
            .find(|c| c.type_ == conditions::DEGRADED)
            .unwrap();
        assert_eq!(c.reason, "MemberRefused");
        assert!(c.message.contains("pool aws: admission webhook denied"));
        // The same refusal at the next sync is not news: same condition, no write.
        let later: jiff::Timestamp = "2026-01-01T00:00:15Z".parse().unwrap();
        let mut written = s.clone();
        written.last_decision_time = Some(Time(now));
        let again = with_outcomes(status, &written, &failures, Some(1), later);
        assert_eq!(again.conditions, s.conditions, "the refusal keeps its time");
        assert!(!status::worth_writing(
            &written,
            &again,
            None,
            std::time::Duration::from_secs(15),
            later
        ));
    }
}
