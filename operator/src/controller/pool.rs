//! The CloudPool reconciler: probe the member cluster, and say in status whether the pool can
//! take replicas, what its nodes offer and what skyfleet already uses there.
//!
//! Probing is periodic (every `probe_period`), so a member that stops answering is reported
//! `Ready=False` within one period plus the probe timeout.
//!
//! A CloudPool carries the finalizer [`FINALIZER`]. Deleting it (or renaming it: a delete and
//! a create) makes it `Ready=False` with reason `Deleting`; the workloads move their replicas
//! out make-before-break, and the finalizer clears once none of this installation's
//! Deployments are left in the pool, or once its member has not answered for longer than the
//! failover grace (there is nothing left to protect then, and nothing skyfleet could remove).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Secret, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use tracing::{debug, info, warn};

use super::event_queue::EventQueue;
use super::labels;
use super::metrics::PoolInfoLabels;
use super::registry::{MemberError, MemberRegistry};
use crate::api::cloud_pool::{
    CapacityType, CloudPool, CloudPoolSpec, CloudPoolStatus, ResourceAmounts,
};
use crate::api::conditions;
use crate::api::quantity;
use crate::decide::reason::pool as reason;

/// What a successful probe found.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReport {
    /// The member API server's version.
    pub version: String,
    /// CPU cores the pool's nodes offer.
    pub allocatable_cpu: f64,
    /// Memory bytes the pool's nodes offer.
    pub allocatable_memory: f64,
    /// CPU cores skyfleet Deployments request in the pool.
    pub used_cpu: f64,
    /// Memory bytes skyfleet Deployments request in the pool.
    pub used_memory: f64,
    /// Replicas skyfleet placed in the pool.
    pub placed_replicas: i32,
    /// Nodes that belong to the pool.
    pub nodes: usize,
    /// This installation's Deployments in the pool (those a deletion waits for).
    pub owned: usize,
}

/// The finalizer that keeps a deleted CloudPool until its replicas have moved out.
pub const FINALIZER: &str = "skyfleet.io/drain";

/// Why an Event about a pool was published.
pub mod event_reason {
    /// The pool became Ready.
    pub const READY: &str = "PoolReady";
    /// The pool stopped being Ready.
    pub const NOT_READY: &str = "PoolNotReady";
    /// A deleted pool waits for its replicas to move out.
    pub const DELETE_WAITING: &str = "DeleteWaiting";
    /// A deleted pool's member could not be reached: whatever skyfleet ran there is left.
    pub const ORPHANED: &str = "Orphaned";
}

/// How often an unchanged status is rewritten just to refresh `lastProbeTime`; rewriting it
/// on every probe would wake every watcher of CloudPools every few seconds.
pub const PROBE_TIME_REFRESH: Duration = Duration::from_secs(60);

/// The status a probe outcome leads to. Pure, so every case is unit-tested.
pub fn pool_status(
    spec: &CloudPoolSpec,
    generation: Option<i64>,
    deleting: bool,
    probe: &Result<ProbeReport, MemberError>,
    previous: &CloudPoolStatus,
    now: jiff::Timestamp,
) -> CloudPoolStatus {
    let mut status = previous.clone();
    status.observed_generation = generation;
    match probe {
        Ok(report) => {
            let (ready, reason, message) = if deleting {
                (
                    false,
                    reason::DELETING,
                    format!(
                        "the CloudPool is being deleted: {} skyfleet Deployments are left here; \
                         each goes once its replacements elsewhere are Ready",
                        report.owned
                    ),
                )
            } else if spec.unschedulable {
                (
                    false,
                    reason::DRAINED,
                    "spec.unschedulable is true: nothing new is placed here".to_string(),
                )
            } else if report.nodes == 0 {
                (
                    false,
                    reason::NO_MATCHING_NODES,
                    "no schedulable node matches the pool's nodeSelector and tolerations"
                        .to_string(),
                )
            } else {
                (
                    true,
                    reason::PROBED,
                    format!(
                        "{} nodes answer; Kubernetes {}",
                        report.nodes, report.version
                    ),
                )
            };
            conditions::set(
                &mut status.conditions,
                conditions::READY,
                ready,
                reason,
                message,
                generation,
                now,
            );
            status.kubernetes_version = Some(report.version.clone());
            status.allocatable = Some(amounts(report.allocatable_cpu, report.allocatable_memory));
            status.used = Some(amounts(report.used_cpu, report.used_memory));
            status.placed_replicas = report.placed_replicas;
            let stale = previous
                .last_probe_time
                .as_ref()
                .is_none_or(|t| now.duration_since(t.0).unsigned_abs() >= PROBE_TIME_REFRESH);
            if stale || status_changed(previous, &status) {
                status.last_probe_time = Some(Time(now));
            }
        }
        Err(e) => {
            conditions::set(
                &mut status.conditions,
                conditions::READY,
                false,
                e.reason(),
                e.to_string(),
                generation,
                now,
            );
        }
    }
    status
}

fn status_changed(a: &CloudPoolStatus, b: &CloudPoolStatus) -> bool {
    let strip = |s: &CloudPoolStatus| CloudPoolStatus {
        last_probe_time: None,
        ..s.clone()
    };
    strip(a) != strip(b)
}

fn amounts(cpu: f64, memory: f64) -> ResourceAmounts {
    ResourceAmounts {
        cpu: Quantity(quantity::format_cores(cpu)),
        memory: Quantity(quantity::format_bytes(memory)),
    }
}

/// Whether the pool's pods may land on `node`: labels match the nodeSelector, the node is
/// schedulable, and every NoSchedule/NoExecute taint is tolerated.
pub fn node_in_pool(spec: &CloudPoolSpec, node: &Node) -> bool {
    let labels = node.metadata.labels.as_ref();
    let selected = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
    let schedulable = !node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    let taints_ok = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .all(|t| tolerations.iter().any(|tol| tolerates(tol, t)));
    selected && schedulable && taints_ok
}

/// Kubernetes' toleration matching rule.
pub fn tolerates(tol: &Toleration, taint: &Taint) -> bool {
    let effect_ok = tol
        .effect
        .as_deref()
        .is_none_or(|e| e.is_empty() || e == taint.effect);
    let exists = tol.operator.as_deref() == Some("Exists");
    let key_ok = match tol.key.as_deref() {
        None | Some("") => exists,
        Some(k) => k == taint.key,
    };
    let value_ok =
        exists || tol.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("");
    effect_ok && key_ok && value_ok
}

/// Shared state of the CloudPool controller.
pub struct PoolContext {
    /// Member clients.
    pub registry: MemberRegistry,
    /// Publishes Events about pools.
    pub events: EventQueue,
    /// How often each pool is probed.
    pub probe_period: Duration,
    /// How long one probe may take.
    pub probe_timeout: Duration,
    /// Exported metrics.
    pub metrics: Arc<super::metrics::Metrics>,
    /// This installation's id: a deleted pool waits only for Deployments carrying it.
    pub installation: String,
    /// How long a deleted pool's member may not answer before the pool goes without it.
    pub failover_grace: Duration,
}

/// Errors that make the controller retry; member problems are status, not errors.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("writing CloudPool status: {0}")]
    Status(#[source] kube::Error),
    #[error("the deleted CloudPool waits for its replicas to move out: {0}")]
    DrainPending(String),
    #[error(transparent)]
    Finalizer(Box<finalizer::Error<PoolError>>),
}

/// How long a probe waits for a member's first list of Nodes and Deployments (paginated, so
/// a member with thousands of Nodes can take a while) once its API server has answered.
pub const FIRST_LIST_LIMIT: Duration = Duration::from_secs(60);

/// Probes a pool: the member's API server answers `/version`, and its Nodes and skyfleet's
/// Deployments come from the member's watches, so a large member is never listed inside
/// the probe's timeout. A `/version` that times out while both watches are healthy (they
/// heard from the member within three probe periods) is not taken as `Unreachable`: the
/// member is busy, not gone.
async fn probe(ctx: &PoolContext, pool: &CloudPool) -> Result<ProbeReport, MemberError> {
    let cluster = ctx
        .registry
        .cluster(pool.spec.kubeconfig_secret_ref.as_ref())
        .await?;
    let version = match tokio::time::timeout(ctx.probe_timeout, cluster.client.apiserver_version())
        .await
    {
        Ok(Ok(v)) => v.git_version,
        Ok(Err(e)) => return Err(MemberError::unreachable(&e)),
        Err(_) => {
            let recent = ctx.probe_period * 3;
            let known = pool
                .status
                .as_ref()
                .and_then(|s| s.kubernetes_version.clone());
            match known {
                Some(v)
                    if cluster.nodes.health.healthy(recent)
                        && cluster.deployments.health.healthy(recent) =>
                {
                    debug!(pool = %pool.name_any(), "/version timed out; the member's watches are healthy");
                    v
                }
                _ => {
                    return Err(MemberError::Unreachable(format!(
                        "no answer within {:?}",
                        ctx.probe_timeout
                    )));
                }
            }
        }
    };
    for watched in [&cluster.nodes.health, &cluster.deployments.health] {
        watched
            .listed(FIRST_LIST_LIMIT)
            .await
            .map_err(MemberError::Unreachable)?;
    }
    if let Some(e) = cluster
        .nodes
        .health
        .error()
        .or_else(|| cluster.deployments.health.error())
    {
        return Err(MemberError::Unreachable(e));
    }
    let mut report = ProbeReport {
        version,
        allocatable_cpu: 0.0,
        allocatable_memory: 0.0,
        used_cpu: 0.0,
        used_memory: 0.0,
        placed_replicas: 0,
        nodes: 0,
        owned: 0,
    };
    let nodes = cluster
        .nodes
        .store
        .state_filter(|n| node_in_pool(&pool.spec, n));
    for node in &nodes {
        let alloc = node
            .status
            .as_ref()
            .and_then(|s| s.allocatable.clone())
            .unwrap_or_default();
        report.allocatable_cpu += alloc
            .get("cpu")
            .and_then(|q| quantity::to_f64(q).ok())
            .unwrap_or(0.0);
        report.allocatable_memory += alloc
            .get("memory")
            .and_then(|q| quantity::to_f64(q).ok())
            .unwrap_or(0.0);
        report.nodes += 1;
    }
    let name = pool.name_any();
    let deployments = cluster
        .deployments
        .store
        .state_filter(|d| d.labels().get(labels::POOL) == Some(&name));
    for d in &deployments {
        let replicas = d.replicas();
        let (cpu, memory) = d.requests_per_replica();
        report.used_cpu += cpu * f64::from(replicas);
        report.used_memory += memory * f64::from(replicas);
        report.placed_replicas += replicas;
        // Ours, or left by a version before installation ids (adopted by its workload).
        let installation = d.labels().get(labels::INSTALLATION);
        if installation.is_none_or(|i| *i == ctx.installation) {
            report.owned += 1;
        }
    }
    Ok(report)
}

/// Probes one pool and writes its status; when it is being deleted, lets it go once its
/// replicas have moved out.
pub async fn reconcile(pool: Arc<CloudPool>, ctx: Arc<PoolContext>) -> Result<Action, PoolError> {
    let started = std::time::Instant::now();
    let api: Api<CloudPool> = Api::all(ctx.registry.management());
    let result = finalizer(&api, FINALIZER, pool, |event| async {
        match event {
            finalizer::Event::Apply(p) => probe_and_report(&p, &ctx, false)
                .await
                .map(|_| Action::requeue(ctx.probe_period)),
            finalizer::Event::Cleanup(p) => release(&p, &ctx).await,
        }
    })
    .await
    .map_err(|e| PoolError::Finalizer(Box::new(e)));
    ctx.metrics
        .observe_reconcile("cloudpool", started.elapsed(), result.is_err());
    result
}

/// A deleted pool: Ok (the finalizer goes) once none of this installation's Deployments are
/// left there, or once the member has not answered for longer than the failover grace.
async fn release(pool: &CloudPool, ctx: &PoolContext) -> Result<Action, PoolError> {
    let name = pool.name_any();
    let (outcome, status) = probe_and_report(pool, ctx, true).await?;
    let waiting = match &outcome {
        Ok(report) if report.owned == 0 => None,
        Ok(report) => Some(format!(
            "{} skyfleet Deployments are left in the member; each goes once its replacements elsewhere are Ready",
            report.owned
        )),
        Err(e) => {
            let silent_for = status
                .conditions
                .iter()
                .find(|c| c.type_ == conditions::READY && c.status != "True")
                .map_or(Duration::ZERO, |c| {
                    jiff::Timestamp::now()
                        .duration_since(c.last_transition_time.0)
                        .unsigned_abs()
                });
            if silent_for < ctx.failover_grace {
                Some(format!(
                    "the member does not answer ({}); waiting up to the failover grace ({:?}) for it",
                    e.reason(),
                    ctx.failover_grace
                ))
            } else {
                let note = format!(
                    "the member has not answered for {}s ({e}): whatever skyfleet ran there is left",
                    silent_for.as_secs()
                );
                warn!(pool = %name, %note, "deleted pool released without its member");
                publish(ctx, pool, EventType::Warning, event_reason::ORPHANED, note);
                None
            }
        }
    };
    match waiting {
        None => {
            info!(pool = %name, "deleted pool released; finalizer removed");
            ctx.metrics.forget_pool(&name);
            Ok(Action::await_change())
        }
        Some(why) => {
            let previous = pool.status.as_ref().and_then(|s| {
                s.conditions
                    .iter()
                    .find(|c| c.type_ == conditions::READY)
                    .map(|c| c.reason.clone())
            });
            if previous.as_deref() != Some(reason::DELETING) {
                publish(
                    ctx,
                    pool,
                    EventType::Normal,
                    event_reason::DELETE_WAITING,
                    why.clone(),
                );
            }
            Err(PoolError::DrainPending(why))
        }
    }
}

/// Queues one Event about the pool.
fn publish(ctx: &PoolContext, pool: &CloudPool, type_: EventType, reason: &str, note: String) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(super::workload::report::event_note(&note)),
        action: "Probe".into(),
        secondary: None,
    };
    ctx.events.send(event, pool.object_ref(&()));
}

/// Probes the pool, writes its status when it changed and publishes an Event when its
/// readiness changed; returns the probe's outcome and the status written.
async fn probe_and_report(
    pool: &CloudPool,
    ctx: &PoolContext,
    deleting: bool,
) -> Result<(Result<ProbeReport, MemberError>, CloudPoolStatus), PoolError> {
    let name = pool.name_any();
    let previous = pool.status.clone().unwrap_or_default();
    let probe_started = std::time::Instant::now();
    let outcome = probe(ctx, pool).await;
    let took = probe_started.elapsed();
    debug!(pool = %name, ?outcome, "probed");
    let status = pool_status(
        &pool.spec,
        pool.metadata.generation,
        deleting,
        &outcome,
        &previous,
        jiff::Timestamp::now(),
    );
    let was_ready = conditions::is_true(&previous.conditions, conditions::READY);
    let is_ready = conditions::is_true(&status.conditions, conditions::READY);
    let info = PoolInfoLabels {
        pool: name.clone(),
        provider: pool.spec.provider.clone(),
        region: pool.spec.region.clone(),
        capacity_type: match pool.spec.pricing.capacity_type {
            CapacityType::OnDemand => "OnDemand",
            CapacityType::Spot => "Spot",
        }
        .to_string(),
    };
    ctx.metrics.observe_probe(info, is_ready, took);
    let had_ready = previous
        .conditions
        .iter()
        .any(|c| c.type_ == conditions::READY);
    if status != previous {
        let api: Api<CloudPool> = Api::all(ctx.registry.management());
        let patch = serde_json::json!({"apiVersion": "skyfleet.io/v1alpha1", "kind": "CloudPool", "status": status});
        api.patch_status(
            &name,
            &PatchParams::apply(labels::FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(PoolError::Status)?;
    }
    if !had_ready || was_ready != is_ready {
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == conditions::READY);
        let (reason, note) = ready
            .map(|c| (c.reason.clone(), c.message.clone()))
            .unwrap_or_default();
        if is_ready {
            info!(pool = %name, %note, "pool ready");
        } else {
            warn!(pool = %name, %reason, %note, "pool not ready");
        }
        let (type_, why) = if is_ready {
            (EventType::Normal, event_reason::READY)
        } else {
            (EventType::Warning, event_reason::NOT_READY)
        };
        publish(ctx, pool, type_, why, format!("{reason}: {note}"));
    }
    Ok((outcome, status))
}

fn error_policy(pool: Arc<CloudPool>, error: &PoolError, ctx: Arc<PoolContext>) -> Action {
    warn!(pool = %pool.name_any(), %error, "reconcile failed");
    Action::requeue(ctx.probe_period)
}

/// Runs the CloudPool controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<PoolContext>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.registry.management();
    let pools: Api<CloudPool> = Api::all(client.clone());
    let secrets: Api<Secret> = Api::namespaced(client, ctx.registry.secret_namespace());
    let controller = Controller::new(pools, watcher::Config::default());
    let store = controller.store();
    controller
        .watches(
            secrets,
            watcher::Config::default(),
            move |secret: Secret| {
                // A changed kubeconfig Secret re-probes the pools that use it.
                let name = secret.name_any();
                let namespace = secret.namespace().unwrap_or_default();
                store
                    .state()
                    .into_iter()
                    .filter(move |p| {
                        p.spec
                            .kubeconfig_secret_ref
                            .as_ref()
                            .is_some_and(|r| r.name == name && r.namespace == namespace)
                    })
                    .map(|p| ObjectRef::from_obj(&*p))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            if let Err(e) = result {
                warn!(error = %e, "CloudPool controller");
            }
            futures::future::ready(())
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CloudPoolSpec {
        serde_json::from_value(serde_json::json!({
            "provider": "aws", "region": "us-east-1",
            "pricing": {"cpuPerHour": 0.04, "memoryGiBPerHour": 0.004},
            "nodeSelector": {"pool": "spot"},
            "tolerations": [{"key": "spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]
        }))
        .unwrap()
    }

    fn report() -> ProbeReport {
        ProbeReport {
            version: "v1.34.10".into(),
            allocatable_cpu: 64.0,
            allocatable_memory: 256.0 * quantity::GIB,
            used_cpu: 1.5,
            used_memory: 3.0 * quantity::GIB,
            placed_replicas: 3,
            nodes: 2,
            owned: 1,
        }
    }

    fn t(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_good_probe_makes_the_pool_ready_with_capacity() {
        let s = pool_status(
            &spec(),
            Some(2),
            false,
            &Ok(report()),
            &CloudPoolStatus::default(),
            t("2026-01-01T00:00:00Z"),
        );
        assert!(conditions::is_true(&s.conditions, conditions::READY));
        assert_eq!(s.kubernetes_version.as_deref(), Some("v1.34.10"));
        assert_eq!(
            s.allocatable,
            Some(ResourceAmounts {
                cpu: Quantity("64".into()),
                memory: Quantity("256Gi".into())
            })
        );
        assert_eq!(
            s.used,
            Some(ResourceAmounts {
                cpu: Quantity("1500m".into()),
                memory: Quantity("3Gi".into())
            })
        );
        assert_eq!(s.placed_replicas, 3);
        assert_eq!(s.observed_generation, Some(2));
    }

    #[test]
    fn unreachable_keeps_what_was_known_and_says_why() {
        let ok = pool_status(
            &spec(),
            Some(1),
            false,
            &Ok(report()),
            &CloudPoolStatus::default(),
            t("2026-01-01T00:00:00Z"),
        );
        let down = pool_status(
            &spec(),
            Some(1),
            false,
            &Err(MemberError::Unreachable("connection refused".into())),
            &ok,
            t("2026-01-01T00:00:05Z"),
        );
        let ready = down
            .conditions
            .iter()
            .find(|c| c.type_ == conditions::READY)
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "Unreachable")
        );
        assert!(ready.message.contains("connection refused"));
        assert_eq!(
            down.allocatable, ok.allocatable,
            "last known capacity is kept"
        );
        assert_eq!(
            down.last_probe_time, ok.last_probe_time,
            "the last successful probe time stays"
        );
    }

    #[test]
    fn drained_and_empty_pools_are_not_ready() {
        let mut drained = spec();
        drained.unschedulable = true;
        let s = pool_status(
            &drained,
            None,
            false,
            &Ok(report()),
            &CloudPoolStatus::default(),
            t("2026-01-01T00:00:00Z"),
        );
        assert_eq!(s.conditions[0].reason, "Drained");
        let empty = ProbeReport {
            nodes: 0,
            ..report()
        };
        let s = pool_status(
            &spec(),
            None,
            false,
            &Ok(empty),
            &CloudPoolStatus::default(),
            t("2026-01-01T00:00:00Z"),
        );
        assert_eq!(s.conditions[0].reason, "NoMatchingNodes");
    }

    #[test]
    fn a_pool_being_deleted_says_so_while_its_member_answers() {
        let now = t("2026-01-01T00:00:00Z");
        let s = pool_status(
            &spec(),
            None,
            true,
            &Ok(report()),
            &CloudPoolStatus::default(),
            now,
        );
        let ready = &s.conditions[0];
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "Deleting")
        );
        assert!(
            ready.message.contains("1 skyfleet Deployments are left"),
            "{}",
            ready.message
        );
        let down = pool_status(
            &spec(),
            None,
            true,
            &Err(MemberError::Unreachable("connection refused".into())),
            &s,
            now,
        );
        assert_eq!(
            down.conditions[0].reason, "Unreachable",
            "a dead member is not contacted, deleted or not"
        );
    }

    #[test]
    fn an_unchanged_probe_does_not_rewrite_status_until_the_refresh_interval() {
        let t0 = t("2026-01-01T00:00:00Z");
        let first = pool_status(
            &spec(),
            Some(1),
            false,
            &Ok(report()),
            &CloudPoolStatus::default(),
            t0,
        );
        let again = pool_status(
            &spec(),
            Some(1),
            false,
            &Ok(report()),
            &first,
            t("2026-01-01T00:00:05Z"),
        );
        assert_eq!(again, first, "no write five seconds later");
        let later = pool_status(
            &spec(),
            Some(1),
            false,
            &Ok(report()),
            &first,
            t("2026-01-01T00:01:00Z"),
        );
        assert_ne!(
            later.last_probe_time, first.last_probe_time,
            "refreshed after a minute"
        );
    }

    fn node(labels: &[(&str, &str)], taint: Option<(&str, &str)>) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n", "labels": labels.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()},
            "spec": {"taints": taint.map(|(k, v)| vec![serde_json::json!({"key": k, "value": v, "effect": "NoSchedule"})]).unwrap_or_default()}
        }))
        .unwrap()
    }

    #[test]
    fn nodes_belong_to_a_pool_by_selector_and_tolerations() {
        let s = spec();
        assert!(node_in_pool(
            &s,
            &node(&[("pool", "spot")], Some(("spot", "true")))
        ));
        assert!(
            !node_in_pool(&s, &node(&[("pool", "od")], None)),
            "selector must match"
        );
        assert!(
            !node_in_pool(&s, &node(&[("pool", "spot")], Some(("gpu", "true")))),
            "untolerated taint"
        );
        let mut plain = spec();
        plain.node_selector = None;
        plain.tolerations = None;
        assert!(node_in_pool(&plain, &node(&[], None)));
        assert!(
            !node_in_pool(&plain, &node(&[], Some(("spot", "true")))),
            "a plain pool avoids tainted nodes"
        );
    }
}
