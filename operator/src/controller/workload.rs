//! The MultiCloudWorkload reconciler: gather what runs in every pool, measure demand, ask
//! the placement for a plan, apply it to the member clusters, and say in status, Events and
//! metrics what was decided and why.
//!
//! It is level-triggered: every reconcile (on a change of the workload or of any CloudPool,
//! and every `sync_period`) recomputes the plan from what it reads, so a member Deployment
//! edited or deleted by hand is put back on the next sync. Owner references cannot cross
//! clusters, so member Deployments are found by their labels and removed by a finalizer.
//!
//! The rules (availability, what to do per member, status) are pure and live in
//! [`super::decide`]; demand history and forecasting in [`crate::decide::demand`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::Selector;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use tracing::{debug, info, warn};

use super::admin::{Metrics, WorkloadLabels};
use super::decide::{self, Availability, Decision, MemberAction, PoolState, Row, Verdict};
use crate::decide::demand::{DemandTracker, Stabilizer};
use super::registry::MemberRegistry;
use super::{desired, labels, metrics_api, pool};
use crate::api::cloud_pool::CloudPool;
use crate::api::conditions;
use crate::api::quantity;
use crate::api::workload::{MultiCloudWorkload, MultiCloudWorkloadStatus};
use crate::placement::{self, PoolInput};

/// The finalizer that removes a workload's Deployments from every member before it goes.
pub const FINALIZER: &str = "skyfleet.io/cleanup";

/// What the reconciler remembers of one workload between reconciles.
#[derive(Debug)]
struct Memory {
    demand: DemandTracker,
    /// Replicas last seen in each pool's Deployment while the member answered.
    seen: BTreeMap<String, u32>,
    /// Pools lost past the failover grace at the last reconcile.
    lost: BTreeSet<String>,
    /// Recent demand estimates, for scale-down stabilisation.
    stabilizer: Stabilizer,
    /// Per pool: the fingerprint of the Deployment last applied and the generation the
    /// member gave it. While both still hold, nobody changed it and applying again would
    /// only cost the member's API server a write.
    applied: BTreeMap<String, (u64, i64)>,
}

/// Shared state of the MultiCloudWorkload controller.
pub struct WorkloadContext {
    /// Member clients.
    pub registry: MemberRegistry,
    /// Publishes Events about workloads.
    pub recorder: Recorder,
    /// Every workload is reconciled at least this often.
    pub sync_period: Duration,
    /// How long an unreachable pool keeps its replicas before they are planned elsewhere.
    pub failover_grace: Duration,
    /// Step of the demand history.
    pub history_step: Duration,
    /// How long one call to a member may take.
    pub member_timeout: Duration,
    /// Exported metrics.
    pub metrics: Arc<Metrics>,
    /// Which workloads this instance reconciles, and how many at once.
    pub scope: Scope,
    memory: Mutex<HashMap<String, Memory>>,
}

/// Which MultiCloudWorkloads an operator instance reconciles, and how many at once: one
/// namespace lets a team run its own operator; a concurrency bound keeps a burst of
/// workloads from opening hundreds of member calls together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Only workloads in this namespace; all namespaces when None.
    pub namespace: Option<String>,
    /// Most workloads reconciled at once; 0 means no bound.
    pub concurrency: u16,
}

impl WorkloadContext {
    /// A context with nothing remembered yet.
    pub fn new(
        registry: MemberRegistry,
        recorder: Recorder,
        sync_period: Duration,
        failover_grace: Duration,
        history_step: Duration,
        member_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            registry,
            recorder,
            sync_period,
            failover_grace,
            history_step,
            member_timeout,
            metrics,
            scope: Scope::default(),
            memory: Mutex::new(HashMap::new()),
        }
    }

    /// The same context limited to `scope`.
    pub fn with_scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<String, Memory>> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Errors that make the controller retry; member problems are status, not errors.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("the MultiCloudWorkload has no namespace")]
    NoNamespace,
    #[error("listing CloudPools: {0}")]
    ListPools(#[source] kube::Error),
    #[error("writing MultiCloudWorkload status: {0}")]
    Status(#[source] kube::Error),
    #[error("deleting member Deployments is not finished: {0}")]
    CleanupPending(String),
    #[error(transparent)]
    Finalizer(Box<finalizer::Error<WorkloadError>>),
}

/// The name of the ConfigMap holding a workload's demand history.
pub fn history_configmap(workload: &str) -> String {
    format!("{workload}-skyfleet-history")
}

/// The key of the history in that ConfigMap.
pub const HISTORY_KEY: &str = "history";

fn memory_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// Which member cluster a pool is in: pools with the same kubeconfig Secret share one.
fn cluster_key(pool: &CloudPool) -> String {
    match &pool.spec.kubeconfig_secret_ref {
        Some(r) => format!("secret:{}/{}/{}", r.namespace, r.name, r.key),
        None => "management".to_string(),
    }
}

/// The label selector of all of a workload's member Deployments, in every pool.
fn owned_selector(namespace: &str, name: &str) -> String {
    format!(
        "{}={},{}={},{}={}",
        labels::MANAGED_BY,
        labels::MANAGER,
        labels::WORKLOAD_NAME,
        name,
        labels::WORKLOAD_NAMESPACE,
        namespace
    )
}

/// The selector of the workload's pods across pools, for metrics.
fn pod_selector(workload: &MultiCloudWorkload) -> Option<String> {
    let s = Selector::try_from(desired::workload_selector(workload)).ok()?;
    (!s.selects_all()).then(|| s.to_string())
}

/// Runs a member call with the member timeout; an error is text for logs and status.
async fn member<T>(
    timeout: Duration,
    work: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// One pool as gathered for a decision.
struct Gathered {
    pool: Arc<CloudPool>,
    name: String,
    availability: Availability,
    client: Option<kube::Client>,
    deployment: Option<Deployment>,
    reachable: bool,
    current: u32,
    ready: i32,
}

async fn gather(
    ctx: &WorkloadContext,
    workload: &MultiCloudWorkload,
    namespace: &str,
    pools: &[Arc<CloudPool>],
    seen: &BTreeMap<String, u32>,
    previous: &MultiCloudWorkloadStatus,
    now: jiff::Timestamp,
) -> Vec<Gathered> {
    let mut out = Vec::with_capacity(pools.len());
    for pool in pools {
        let name = pool.name_any();
        let availability = decide::availability(pool.status.as_ref(), ctx.failover_grace, now);
        let mut client = None;
        let mut deployment = None;
        let mut reachable = false;
        if availability.contact {
            match ctx
                .registry
                .client(pool.spec.kubeconfig_secret_ref.as_ref())
                .await
            {
                Ok(c) => {
                    let api: Api<Deployment> = Api::namespaced(c.clone(), namespace);
                    let dname = desired::deployment_name(&workload.name_any(), &name);
                    match member(ctx.member_timeout, api.get_opt(&dname)).await {
                        Ok(d) => {
                            deployment = d;
                            reachable = true;
                            client = Some(c);
                        }
                        Err(e) => debug!(pool = %name, error = %e, "member did not answer"),
                    }
                }
                Err(e) => debug!(pool = %name, error = %e, "no client for member"),
            }
        }
        let previous_row = previous.pools.iter().find(|p| p.name == name);
        let (current, ready) = if reachable {
            let spec_replicas = deployment
                .as_ref()
                .and_then(|d| d.spec.as_ref())
                .and_then(|s| s.replicas)
                .unwrap_or(0);
            let ready = deployment
                .as_ref()
                .and_then(|d| d.status.as_ref())
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            (u32::try_from(spec_replicas).unwrap_or(0), ready)
        } else {
            let known = seen.get(&name).copied().unwrap_or_else(|| {
                previous_row.map_or(0, |r| u32::try_from(r.replicas).unwrap_or(0))
            });
            let ready = if availability.available {
                previous_row.map_or(0, |r| r.ready_replicas)
            } else {
                0
            };
            (known, ready)
        };
        out.push(Gathered {
            pool: pool.clone(),
            name,
            availability,
            client,
            deployment,
            reachable,
            current,
            ready,
        });
    }
    out
}

/// CPU cores and memory bytes other workloads request in the pool: the pool's `used` minus
/// this workload's own Deployment there.
fn used_by_others(g: &Gathered) -> (f64, f64) {
    let used = g.pool.status.as_ref().and_then(|s| s.used.as_ref());
    let (cpu, mem) = used.map_or((0.0, 0.0), |u| {
        (
            quantity::to_f64(&u.cpu).unwrap_or(0.0),
            quantity::to_f64(&u.memory).unwrap_or(0.0),
        )
    });
    let (own_cpu, own_mem) = g.deployment.as_ref().map_or((0.0, 0.0), |d| {
        let (c, m) = pool::requests_per_replica(d);
        let n = f64::from(d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0));
        (c * n, m * n)
    });
    ((cpu - own_cpu).max(0.0), (mem - own_mem).max(0.0))
}

/// Demand now: the workload's pods' CPU summed over the member clusters that answer (a
/// cluster holding several pools counted once). `None` when no member gave metrics.
async fn measure(
    ctx: &WorkloadContext,
    workload: &MultiCloudWorkload,
    namespace: &str,
    gathered: &[Gathered],
) -> Option<f64> {
    let selector = pod_selector(workload)?;
    let mut clusters = BTreeSet::new();
    let mut total = None;
    for g in gathered.iter().filter(|g| g.reachable) {
        let Some(client) = &g.client else { continue };
        if !clusters.insert(cluster_key(&g.pool)) {
            continue;
        }
        match member(
            ctx.member_timeout,
            metrics_api::pod_cpu(client.clone(), namespace, &selector),
        )
        .await
        {
            Ok(cores) => *total.get_or_insert(0.0) += cores,
            Err(e) => debug!(pool = %g.name, error = %e, "no pod metrics"),
        }
    }
    total
}

/// Loads the workload's history from its ConfigMap into memory, once per process.
async fn load_memory(ctx: &WorkloadContext, workload: &MultiCloudWorkload, namespace: &str) {
    let key = memory_key(namespace, &workload.name_any());
    if ctx.memory().contains_key(&key) {
        return;
    }
    let spec = &workload.spec.scaling.forecast;
    let api: Api<ConfigMap> = Api::namespaced(ctx.registry.management(), namespace);
    let stored = api
        .get_opt(&history_configmap(&workload.name_any()))
        .await
        .map_err(|e| warn!(workload = %workload.name_any(), %namespace, error = %e, "could not read demand history"))
        .ok()
        .flatten()
        .and_then(|cm| cm.data.and_then(|d| d.get(HISTORY_KEY).cloned()));
    let demand = match stored {
        Some(text) => match DemandTracker::decode(&text, spec, ctx.history_step) {
            Ok(t) => {
                info!(workload = %workload.name_any(), %namespace, "resumed demand history");
                t
            }
            Err(e) => {
                warn!(workload = %workload.name_any(), %namespace, error = %e, "stored demand history refused; starting afresh");
                DemandTracker::new(spec, ctx.history_step)
            }
        },
        None => DemandTracker::new(spec, ctx.history_step),
    };
    ctx.memory().entry(key).or_insert(Memory {
        demand,
        seen: BTreeMap::new(),
        lost: BTreeSet::new(),
        applied: BTreeMap::new(),
        stabilizer: Stabilizer::default(),
    });
}

async fn persist_history(
    ctx: &WorkloadContext,
    workload: &MultiCloudWorkload,
    namespace: &str,
    text: String,
) -> Result<(), kube::Error> {
    let name = history_configmap(&workload.name_any());
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([
                (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
                (labels::WORKLOAD_NAME.to_string(), workload.name_any()),
            ])),
            owner_references: workload.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(HISTORY_KEY.to_string(), text)])),
        ..Default::default()
    };
    let api: Api<ConfigMap> = Api::namespaced(ctx.registry.management(), namespace);
    api.patch(
        &name,
        &PatchParams::apply(labels::FIELD_MANAGER).force(),
        &Patch::Apply(&cm),
    )
    .await
    .map(|_| ())
}

async fn ensure_namespace(client: kube::Client, namespace: &str) -> Result<(), kube::Error> {
    let api: Api<Namespace> = Api::all(client);
    if api.get_opt(namespace).await?.is_some() {
        return Ok(());
    }
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                labels::MANAGED_BY.to_string(),
                labels::MANAGER.to_string(),
            )])),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

async fn publish(ctx: &WorkloadContext, workload: &MultiCloudWorkload, event: Event) {
    if let Err(e) = ctx
        .recorder
        .publish(&event, &workload.object_ref(&()))
        .await
    {
        warn!(workload = %workload.name_any(), error = %e, "could not publish event");
    }
}

fn event(type_: EventType, reason: &str, action: &str, note: String) -> Event {
    Event {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: action.to_string(),
        secondary: None,
    }
}

/// A sentence for status when the plan has none.
fn fallback_explanation(plan: &placement::Plan, demand: f64, model: &str) -> String {
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

/// Decides and applies for one workload; returns when to look again.
async fn apply(
    workload: Arc<MultiCloudWorkload>,
    ctx: &WorkloadContext,
) -> Result<Action, WorkloadError> {
    let name = workload.name_any();
    let namespace = workload.namespace().ok_or(WorkloadError::NoNamespace)?;
    let now = jiff::Timestamp::now();
    let previous = workload.status.clone().unwrap_or_default();
    let key = memory_key(&namespace, &name);

    let pools: Vec<Arc<CloudPool>> = Api::<CloudPool>::all(ctx.registry.management())
        .list(&ListParams::default())
        .await
        .map_err(WorkloadError::ListPools)?
        .items
        .into_iter()
        .map(Arc::new)
        .collect();
    load_memory(ctx, &workload, &namespace).await;
    let seen = ctx
        .memory()
        .get(&key)
        .map(|m| m.seen.clone())
        .unwrap_or_default();
    let gathered = gather(ctx, &workload, &namespace, &pools, &seen, &previous, now).await;

    // Demand: measure, record, forecast.
    let measured = measure(ctx, &workload, &namespace, &gathered).await;
    let stabilization =
        crate::api::duration::parse(&workload.spec.scaling.scale_down_stabilization)
            .unwrap_or(Duration::from_secs(300));
    let (estimate, demand, to_persist) = {
        let mut memory = ctx.memory();
        match memory.get_mut(&key) {
            Some(m) => {
                if let Some(cores) = measured {
                    m.demand.record(now.as_second(), cores);
                }
                for g in gathered.iter().filter(|g| g.reachable) {
                    m.seen.insert(g.name.clone(), g.current);
                }
                let e = m.demand.estimate(&workload.spec.scaling.forecast, measured);
                let demand = m.stabilizer.apply(now.as_second(), e.cores, stabilization);
                (e, demand, m.demand.to_persist())
            }
            None => {
                let e = DemandTracker::new(&workload.spec.scaling.forecast, ctx.history_step)
                    .estimate(&workload.spec.scaling.forecast, measured);
                let demand = e.cores;
                (e, demand, None)
            }
        }
    };
    if let Some(text) = to_persist {
        match persist_history(ctx, &workload, &namespace, text).await {
            Ok(()) => {
                if let Some(m) = ctx.memory().get_mut(&key) {
                    m.demand.persisted();
                }
            }
            Err(e) => {
                warn!(workload = %name, %namespace, error = %e, "could not persist demand history")
            }
        }
    }
    debug!(workload = %name, %namespace, measured = ?measured, estimate = estimate.cores, demand, model = %estimate.status.model, note = ?estimate.note, "demand");

    // Decide.
    let inputs: Vec<PoolInput> = gathered
        .iter()
        .map(|g| PoolInput {
            name: g.name.clone(),
            labels: g.pool.labels().clone(),
            spec: g.pool.spec.clone(),
            available: g.availability.available,
            unavailable_reason: g.availability.reason.clone(),
            used_by_others: used_by_others(g),
            current: g.current,
        })
        .collect();
    let decided = placement::input::problem(&workload.spec, &inputs, demand).and_then(|problem| {
        placement::plan_workload(&workload.spec, &inputs, demand).map(|plan| (problem, plan))
    });
    let (problem, plan) = match decided {
        Ok(pp) => pp,
        Err(e) => {
            let why = e.to_string();
            warn!(workload = %name, %namespace, error = %why, "invalid spec: nothing changed in the members");
            let rows = gathered
                .iter()
                .map(|g| Row {
                    name: g.name.clone(),
                    replicas: g.current,
                    ready: g.ready,
                    cost_per_replica: 0.0,
                })
                .collect();
            let decision = Decision {
                verdict: Verdict::InvalidSpec(why.clone()),
                rows,
                lost: Vec::new(),
                demand: estimate.status.clone(),
                explanation: format!("nothing changed: {why}"),
            };
            let was_invalid = previous.conditions.iter().any(|c| {
                c.type_ == conditions::READY && c.reason == "InvalidSpec" && c.message == why
            });
            if !was_invalid {
                publish(
                    ctx,
                    &workload,
                    event(EventType::Warning, "InvalidSpec", "Plan", why),
                )
                .await;
            }
            write_status(ctx, &workload, &namespace, &previous, &decision, now).await?;
            return Ok(Action::requeue(ctx.sync_period));
        }
    };
    let runs_nothing = gathered
        .iter()
        .all(|g| g.current == 0 && g.deployment.is_none());
    let waiting: Vec<&str> = gathered
        .iter()
        .zip(&problem.pools)
        .filter(|(g, option)| {
            let age = g
                .pool
                .creation_timestamp()
                .map_or(Duration::ZERO, |Time(t)| {
                    now.duration_since(t).unsigned_abs()
                });
            decide::wait_for_first_probe(option.ineligible_reason.as_deref(), age, runs_nothing)
        })
        .map(|(g, _)| g.name.as_str())
        .collect();
    if !waiting.is_empty() {
        debug!(workload = %name, %namespace, pools = %waiting.join(", "), "waiting for the first probe of new pools before the first placement");
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let no_eligible = problem.pools.iter().all(|p| !p.eligible);
    let feasible = plan.feasible && !no_eligible;

    // Apply.
    let mut rows = Vec::with_capacity(gathered.len());
    let mut changes = Vec::new();
    let mut failures = Vec::new();
    let states: Vec<PoolState> = gathered
        .iter()
        .zip(&problem.pools)
        .map(|(g, option)| PoolState {
            name: g.name.clone(),
            eligible: option.eligible,
            reachable: g.reachable,
            has_deployment: g.deployment.is_some(),
            current: g.current,
            planned: plan.replicas_for(&g.name),
        })
        .collect();
    let actions = decide::member_actions(&states, feasible, problem.max_total);
    for (((g, option), state), &action) in gathered
        .iter()
        .zip(&problem.pools)
        .zip(&states)
        .zip(&actions)
    {
        let done = match (action, &g.client) {
            (MemberAction::Apply(n), Some(client)) => {
                apply_member(ctx, &workload, &namespace, g, client.clone(), n).await
            }
            (MemberAction::Delete, Some(client)) => {
                let api: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
                let dname = desired::deployment_name(&name, &g.name);
                member(
                    ctx.member_timeout,
                    api.delete(&dname, &DeleteParams::background()),
                )
                .await
                .map(|_| ())
            }
            _ => Ok(()),
        };
        let intended = decide::intended(state, action);
        match done {
            Ok(()) => {
                if g.reachable && intended != g.current {
                    changes.push(format!("{} {}→{}", g.name, g.current, intended));
                }
                if g.reachable
                    && let Some(m) = ctx.memory().get_mut(&key)
                {
                    m.seen.insert(g.name.clone(), intended);
                }
            }
            Err(e) => {
                warn!(workload = %name, %namespace, pool = %g.name, error = %e, "could not apply to member");
                failures.push(format!("{}: {e}", g.name));
            }
        }
        rows.push(Row {
            name: g.name.clone(),
            replicas: intended,
            ready: g.ready,
            cost_per_replica: option.cost_per_replica,
        });
    }

    // Pools lost past the grace that this workload had replicas in.
    let lost: Vec<String> = gathered
        .iter()
        .filter(|g| !g.availability.available && !g.availability.contact && g.current > 0)
        .map(|g| g.name.clone())
        .collect();
    let newly_lost: Vec<String> = {
        let mut memory = ctx.memory();
        match memory.get_mut(&key) {
            Some(m) => {
                let fresh = lost
                    .iter()
                    .filter(|p| !m.lost.contains(*p))
                    .cloned()
                    .collect();
                m.lost = lost.iter().cloned().collect();
                fresh
            }
            None => Vec::new(),
        }
    };

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
    let decision = Decision {
        verdict: verdict.clone(),
        rows,
        lost: lost.clone(),
        demand: estimate.status.clone(),
        explanation: explanation.clone(),
    };

    // Events.
    for p in &newly_lost {
        let reason = gathered
            .iter()
            .find(|g| &g.name == p)
            .and_then(|g| g.availability.reason.clone())
            .unwrap_or_default();
        warn!(workload = %name, %namespace, pool = %p, %reason, "failover");
        publish(
            ctx,
            &workload,
            event(
                EventType::Warning,
                "Failover",
                "Plan",
                format!(
                    "pool {p} lost ({reason}); its replicas are planned elsewhere: {explanation}"
                ),
            ),
        )
        .await;
    }
    if !changes.is_empty() {
        let first = previous.pools.is_empty();
        let reason = if first { "Placed" } else { "Scaled" };
        info!(workload = %name, %namespace, changes = %changes.join(", "), %explanation, "{reason}");
        publish(
            ctx,
            &workload,
            event(
                EventType::Normal,
                reason,
                "Apply",
                format!("{}: {explanation}", changes.join(", ")),
            ),
        )
        .await;
    }
    let previous_degraded = |reason: &str| {
        previous
            .conditions
            .iter()
            .any(|c| c.type_ == conditions::DEGRADED && c.reason == reason && c.status == "True")
    };
    match &verdict {
        Verdict::Infeasible(why) if !previous_degraded("Infeasible") => {
            publish(
                ctx,
                &workload,
                event(
                    EventType::Warning,
                    "PlacementInfeasible",
                    "Plan",
                    why.clone(),
                ),
            )
            .await;
        }
        Verdict::NoEligiblePools(why) if !previous_degraded("NoEligiblePools") => {
            publish(
                ctx,
                &workload,
                event(EventType::Warning, "NoEligiblePools", "Plan", why.clone()),
            )
            .await;
        }
        _ => {}
    }

    let status = write_status(ctx, &workload, &namespace, &previous, &decision, now).await?;
    let labels = WorkloadLabels {
        namespace: namespace.clone(),
        workload: name.clone(),
    };
    ctx.metrics
        .workload_desired_replicas
        .get_or_create(&labels)
        .set(i64::from(status.desired_replicas));
    ctx.metrics
        .workload_ready_replicas
        .get_or_create(&labels)
        .set(i64::from(status.ready_replicas));
    ctx.metrics
        .workload_cost_per_hour
        .get_or_create(&labels)
        .set(status.cost_per_hour);
    if !failures.is_empty() {
        debug!(workload = %name, %namespace, failures = %failures.join("; "), "some members were not updated");
    }
    // A pool within its failover grace is re-planned the moment the grace runs out.
    let next = gathered
        .iter()
        .filter_map(|g| g.availability.grace_left)
        .map(|left| left + Duration::from_secs(1))
        .fold(ctx.sync_period, Duration::min);
    Ok(Action::requeue(next))
}

/// Server-side applies the workload's Deployment with `replicas` in one member.
async fn apply_member(
    ctx: &WorkloadContext,
    workload: &MultiCloudWorkload,
    namespace: &str,
    g: &Gathered,
    client: kube::Client,
    replicas: u32,
) -> Result<(), String> {
    let replicas = i32::try_from(replicas).map_err(|e| e.to_string())?;
    let desired = desired::deployment(workload, &g.pool, replicas).map_err(|e| e.to_string())?;
    if g.deployment.is_none() {
        member(
            ctx.member_timeout,
            ensure_namespace(client.clone(), namespace),
        )
        .await?;
    }
    let key = memory_key(namespace, &workload.name_any());
    let fingerprint = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        serde_json::to_string(&desired)
            .map_err(|e| e.to_string())?
            .hash(&mut h);
        h.finish()
    };
    let live_generation = g.deployment.as_ref().and_then(|d| d.metadata.generation);
    let unchanged = live_generation.is_some_and(|generation| {
        ctx.memory()
            .get(&key)
            .and_then(|m| m.applied.get(&g.name))
            .is_some_and(|&last| last == (fingerprint, generation))
    });
    if unchanged {
        return Ok(());
    }
    let api: Api<Deployment> = Api::namespaced(client, namespace);
    let dname = desired::deployment_name(&workload.name_any(), &g.name);
    let applied = member(
        ctx.member_timeout,
        api.patch(
            &dname,
            &PatchParams::apply(labels::FIELD_MANAGER).force(),
            &Patch::Apply(&desired),
        ),
    )
    .await?;
    if let (Some(generation), Some(m)) = (applied.metadata.generation, ctx.memory().get_mut(&key)) {
        m.applied.insert(g.name.clone(), (fingerprint, generation));
    }
    Ok(())
}

/// Writes the status for `decision` when it changed; returns the status now in effect.
async fn write_status(
    ctx: &WorkloadContext,
    workload: &MultiCloudWorkload,
    namespace: &str,
    previous: &MultiCloudWorkloadStatus,
    decision: &Decision,
    now: jiff::Timestamp,
) -> Result<MultiCloudWorkloadStatus, WorkloadError> {
    let mut status = decide::build_status(previous, workload.metadata.generation, decision, now);
    if !decide::worth_writing(previous, &status, ctx.sync_period, now) {
        return Ok(status);
    }
    status.last_decision_time = Some(Time(now));
    let api: Api<MultiCloudWorkload> = Api::namespaced(ctx.registry.management(), namespace);
    let patch = serde_json::json!({
        "apiVersion": "skyfleet.io/v1alpha1",
        "kind": "MultiCloudWorkload",
        "status": status,
    });
    api.patch_status(
        &workload.name_any(),
        &PatchParams::apply(labels::FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(WorkloadError::Status)?;
    debug!(workload = %workload.name_any(), %namespace, desired = status.desired_replicas, ready = status.ready_replicas, "status written");
    Ok(status)
}

/// Removes the workload's Deployments from every member cluster a CloudPool still points
/// at. A member that does not answer keeps the finalizer (the error requeues); a cluster no
/// CloudPool references any more is not waited for.
async fn cleanup(
    workload: Arc<MultiCloudWorkload>,
    ctx: &WorkloadContext,
) -> Result<Action, WorkloadError> {
    let name = workload.name_any();
    let namespace = workload.namespace().ok_or(WorkloadError::NoNamespace)?;
    let pools = Api::<CloudPool>::all(ctx.registry.management())
        .list(&ListParams::default())
        .await
        .map_err(WorkloadError::ListPools)?;
    let mut clusters: BTreeMap<String, CloudPool> = BTreeMap::new();
    for p in pools.items {
        clusters.entry(cluster_key(&p)).or_insert(p);
    }
    let selector = owned_selector(&namespace, &name);
    let mut pending = Vec::new();
    let mut deleted = Vec::new();
    for pool in clusters.values() {
        let pool_name = pool.name_any();
        let client = match ctx
            .registry
            .client(pool.spec.kubeconfig_secret_ref.as_ref())
            .await
        {
            Ok(c) => c,
            Err(e) => {
                pending.push(format!("pool {pool_name}: {e}"));
                continue;
            }
        };
        let api: Api<Deployment> = Api::namespaced(client, &namespace);
        let list = match member(
            ctx.member_timeout,
            api.list(&ListParams::default().labels(&selector)),
        )
        .await
        {
            Ok(l) => l,
            Err(e) => {
                pending.push(format!("pool {pool_name}: {e}"));
                continue;
            }
        };
        for d in list.items {
            let dname = d.name_any();
            match member(
                ctx.member_timeout,
                api.delete(&dname, &DeleteParams::background()),
            )
            .await
            {
                Ok(_) => deleted.push(format!("{pool_name}: {dname}")),
                Err(e) if e.contains("NotFound") || e.contains("404") => {}
                Err(e) => pending.push(format!("pool {pool_name}: deleting {dname}: {e}")),
            }
        }
    }
    if !deleted.is_empty() {
        info!(workload = %name, %namespace, deleted = %deleted.join(", "), "member Deployments deleted");
        publish(
            ctx,
            &workload,
            event(
                EventType::Normal,
                "Deleted",
                "Cleanup",
                format!("deleted member Deployments: {}", deleted.join(", ")),
            ),
        )
        .await;
    }
    if !pending.is_empty() {
        let why = pending.join("; ");
        warn!(workload = %name, %namespace, pending = %why, "cleanup waits for members");
        publish(
            ctx,
            &workload,
            event(EventType::Warning, "CleanupPending", "Cleanup", why.clone()),
        )
        .await;
        return Err(WorkloadError::CleanupPending(why));
    }
    ctx.memory().remove(&memory_key(&namespace, &name));
    let labels = WorkloadLabels {
        namespace: namespace.clone(),
        workload: name.clone(),
    };
    ctx.metrics.workload_desired_replicas.remove(&labels);
    ctx.metrics.workload_ready_replicas.remove(&labels);
    ctx.metrics.workload_cost_per_hour.remove(&labels);
    info!(workload = %name, %namespace, "cleaned up; finalizer removed");
    Ok(Action::await_change())
}

/// Reconciles one workload: apply, or clean up when it is being deleted.
pub async fn reconcile(
    workload: Arc<MultiCloudWorkload>,
    ctx: Arc<WorkloadContext>,
) -> Result<Action, WorkloadError> {
    let started = std::time::Instant::now();
    let namespace = workload.namespace().ok_or(WorkloadError::NoNamespace)?;
    let api: Api<MultiCloudWorkload> = Api::namespaced(ctx.registry.management(), &namespace);
    let result = finalizer(&api, FINALIZER, workload, |event| async {
        match event {
            finalizer::Event::Apply(w) => apply(w, &ctx).await,
            finalizer::Event::Cleanup(w) => cleanup(w, &ctx).await,
        }
    })
    .await
    .map_err(|e| WorkloadError::Finalizer(Box::new(e)));
    ctx.metrics
        .observe_reconcile("multicloudworkload", started.elapsed(), result.is_err());
    result
}

fn error_policy(
    workload: Arc<MultiCloudWorkload>,
    error: &WorkloadError,
    ctx: Arc<WorkloadContext>,
) -> Action {
    warn!(workload = %workload.name_any(), namespace = %workload.namespace().unwrap_or_default(), %error, "reconcile failed");
    Action::requeue(ctx.sync_period)
}

/// What of a CloudPool a plan reacts to at once: its spec (prices, capacity, drain), its
/// labels (pool selectors) and its `Ready` status and reason (failover, failback).
fn pool_fingerprint(pool: &CloudPool) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    pool.metadata.generation.hash(&mut h);
    pool.metadata.deletion_timestamp.is_some().hash(&mut h);
    pool.labels().hash(&mut h);
    if let Some(ready) = pool
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == conditions::READY))
    {
        (&ready.status, &ready.reason).hash(&mut h);
    }
    h.finish()
}

/// Runs the MultiCloudWorkload controller until `shutdown` resolves. A change of any
/// CloudPool (readiness, capacity, prices) reconciles every workload.
pub async fn run(
    ctx: Arc<WorkloadContext>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.registry.management();
    let workloads: Api<MultiCloudWorkload> = match &ctx.scope.namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let pools: Api<CloudPool> = Api::all(client);
    let seen = Mutex::new(HashMap::<String, u64>::new());
    let controller = Controller::new(workloads, watcher::Config::default()).with_config(
        kube::runtime::controller::Config::default().concurrency(ctx.scope.concurrency),
    );
    let store = controller.store();
    controller
        .watches(pools, watcher::Config::default(), move |pool: CloudPool| {
            // Only a change that can change a plan at once wakes every workload; the
            // capacity figures a probe refreshes are picked up at the next sync (with
            // hundreds of workloads, waking them all on each probe swamps the queue).
            let key = pool.name_any();
            let fingerprint = pool_fingerprint(&pool);
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.insert(key, fingerprint) == Some(fingerprint) {
                return Vec::new();
            }
            store
                .state()
                .into_iter()
                .map(|w| ObjectRef::from_obj(&*w))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            if let Err(e) = result {
                warn!(error = %e, "MultiCloudWorkload controller");
            }
            futures::future::ready(())
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(selector: Option<serde_json::Value>) -> MultiCloudWorkload {
        let mut spec = serde_json::json!({
            "replicas": {"min": 1, "max": 10},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "front"}},
                "spec": {"containers": [{"name": "app", "image": "app:1"}]}
            }
        });
        if let Some(s) = selector {
            spec["selector"] = s;
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
            "metadata": {"name": "web", "namespace": "shop"}, "spec": spec
        }))
        .unwrap()
    }

    #[test]
    fn pods_are_selected_by_the_workload_selector_or_template_labels() {
        assert_eq!(
            pod_selector(&workload(None)).as_deref(),
            Some("app=web,tier=front")
        );
        assert_eq!(
            pod_selector(&workload(Some(
                serde_json::json!({"matchLabels": {"app": "web"}})
            )))
            .as_deref(),
            Some("app=web")
        );
    }

    #[test]
    fn member_deployments_are_found_by_ownership_labels() {
        let w = workload(None);
        let owned = desired::ownership_labels(&w, "aws");
        let selector = owned_selector("shop", "web");
        for term in selector.split(',') {
            let (k, v) = term.split_once('=').unwrap();
            assert_eq!(owned.get(k).map(String::as_str), Some(v), "{term}");
        }
        assert_eq!(history_configmap("web"), "web-skyfleet-history");
    }

    #[test]
    fn pools_sharing_a_kubeconfig_are_one_cluster() {
        let pool = |name: &str, secret: Option<&str>| -> CloudPool {
            let mut spec = serde_json::json!({"provider": "aws", "region": "r", "pricing": {"cpuPerHour": 0.1, "memoryGiBPerHour": 0.01}});
            if let Some(s) = secret {
                spec["kubeconfigSecretRef"] =
                    serde_json::json!({"namespace": "skyfleet-system", "name": s});
            }
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "spec": spec}))
                .unwrap()
        };
        assert_eq!(
            cluster_key(&pool("aws-od", Some("member-aws"))),
            cluster_key(&pool("aws-spot", Some("member-aws")))
        );
        assert_ne!(
            cluster_key(&pool("aws", Some("member-aws"))),
            cluster_key(&pool("gcp", Some("member-gcp")))
        );
        assert_eq!(cluster_key(&pool("local", None)), "management");
    }

    #[test]
    fn only_plan_relevant_pool_changes_wake_every_workload() {
        let pool = |ready: &str, reason: &str, used: &str, tier: &str| -> CloudPool {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "aws", "generation": 1, "labels": {"tier": tier}},
                "spec": {"provider": "aws", "region": "r", "pricing": {"cpuPerHour": 0.1, "memoryGiBPerHour": 0.01}},
                "status": {
                    "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": "m",
                                    "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                    "used": {"cpu": used, "memory": "1Gi"}
                }
            }))
            .unwrap()
        };
        let base = pool_fingerprint(&pool("True", "Probed", "1", "a"));
        assert_eq!(
            base,
            pool_fingerprint(&pool("True", "Probed", "7", "a")),
            "capacity used by a probe: next sync"
        );
        assert_ne!(
            base,
            pool_fingerprint(&pool("False", "Unreachable", "1", "a"))
        );
        assert_ne!(base, pool_fingerprint(&pool("True", "Probed", "1", "b")));
        let mut newer = pool("True", "Probed", "1", "a");
        newer.metadata.generation = Some(2);
        assert_ne!(base, pool_fingerprint(&newer), "a spec change");
    }
}
