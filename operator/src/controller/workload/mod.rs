//! The MultiCloudWorkload reconciler, in four phases, one file each:
//!
//! 1. [`observe`]: pools, what each member shows of the workload, demand, memory;
//! 2. [`crate::decide::decide`]: the pure decision (off the async executor's threads);
//! 3. [`act`]: apply and delete owned Deployments in the members, concurrently;
//! 4. [`report`]: status, Events, metrics, the stored memory.
//!
//! [`cleanup`] runs instead when the workload is being deleted.
//!
//! It is level-triggered: every reconcile (on a change of the workload or of a CloudPool,
//! when a member Deployment of it progresses ([`super::progress`]), and every
//! `sync_period`) recomputes the plan from what it reads, so a member Deployment deleted by
//! hand is put back at once, and one edited by hand on the next sync.

pub mod act;
pub mod cleanup;
pub mod observe;
pub mod report;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tracing::{debug, info, warn};

use super::desired::Owner;
use super::event_queue::EventQueue;
use super::metrics::Metrics;
use super::progress::WorkloadKey;
use super::registry::MemberRegistry;
use crate::api::cloud_pool::CloudPool;
use crate::api::conditions;
use crate::api::workload::{MultiCloudWorkload, MultiCloudWorkloadStatus};
use crate::decide::{self, EventReason, Member, MemberAction, Memory, Notice, Settings};

/// The finalizer that removes a workload's Deployments from every member before it goes.
pub const FINALIZER: &str = "skyfleet.io/cleanup";

/// The key of the demand history in the ConfigMap older versions kept it in.
pub const HISTORY_KEY: &str = "history";
/// The key of the decision memory (stabiliser, failover memory, pools in use) beside it.
pub const MEMORY_KEY: &str = "memory";

/// How long one decision (forecast and solve) may take before it is reported and left.
pub const DECIDE_DEADLINE: Duration = Duration::from_secs(10);

/// The name of the ConfigMap older versions kept a workload's demand history in (read once,
/// to migrate it into its `WorkloadHistory`).
pub fn history_configmap(workload: &str) -> String {
    format!("{workload}-skyfleet-history")
}

/// Shared state of the MultiCloudWorkload controller.
pub struct WorkloadContext {
    /// Member clients.
    pub registry: MemberRegistry,
    /// Publishes Events about workloads, in the background.
    pub events: EventQueue,
    /// Every workload is reconciled at least this often.
    pub sync_period: Duration,
    /// How long a pool that is not Ready keeps its replicas before they are planned elsewhere.
    pub failover_grace: Duration,
    /// Step of the demand history.
    pub history_step: Duration,
    /// Steps between two writes of the history alone (see
    /// [`crate::decide::demand::PERSIST_EVERY_STEPS`]).
    pub history_persist_steps: i64,
    /// How long one call to a member may take.
    pub member_timeout: Duration,
    /// Exported metrics.
    pub metrics: Arc<Metrics>,
    /// Which workloads this instance reconciles, and how many at once.
    pub scope: Scope,
    /// This installation's id, on every member object it owns.
    pub installation: String,
    /// Whether this instance may still write to members (its leader lease is its own).
    pub fence: Arc<super::fence::Fence>,
    /// The ExternalDNS property that carries a pool's weight, where its CloudPool names none.
    pub dns_weight_property: String,
    memory: Arc<Mutex<HashMap<String, Memory>>>,
    /// Workloads whose decision is running (at most one each).
    deciding: Arc<Mutex<std::collections::HashSet<String>>>,
    /// Decisions computed at the same time: one per core. A reconcile mostly waits on API
    /// servers, so many run at once ([`Scope::concurrency`]); a decision is CPU alone, and
    /// more of them at once than cores only stretches each one's wall time (towards
    /// [`DECIDE_DEADLINE`]) and adds their working memory together.
    decide_slots: Arc<tokio::sync::Semaphore>,
    /// Per workload and pool: the fingerprint of the Deployment last applied and the
    /// generation the member gave it. While both hold, nobody changed it and applying again
    /// would only cost the member's API server a write. Services and copies of dependencies
    /// have slots of their own (`service@cluster`, `ConfigMap/name@cluster`), the latter with
    /// the time of the apply in place of a generation.
    applied: Mutex<HashMap<String, AppliedPerPool>>,
    /// Every CloudPool, from a reflector: a reconcile lists none.
    pools: Store<CloudPool>,
    /// The workloads' Namespaces with their labels, from a reflector: a reconcile reads none.
    namespaces: Store<Namespace>,
    /// Per workload: what a check of a member for someone else's Deployment under the
    /// workload's name found, and when (see [`WorkloadContext::known_conflict`]).
    conflicts: Mutex<HashMap<String, NameChecks>>,
}

/// A decision's hold on one of the decide slots ([`WorkloadContext`]'s `decide_slots`),
/// given back when the decision ends or is abandoned at its deadline, whichever is first. A
/// decision that overruns goes on computing (its memory is kept for the next one) without
/// holding back every other workload's: however slow one tenant's decisions are, they
/// delay the others by at most the deadline each.
#[derive(Clone)]
struct DecideSlot(Arc<Mutex<Option<tokio::sync::OwnedSemaphorePermit>>>);

impl DecideSlot {
    /// Waits for a free slot.
    async fn take(slots: &Arc<tokio::sync::Semaphore>) -> Result<Self, WorkloadError> {
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| WorkloadError::Decide(e.to_string()))?;
        Ok(Self(Arc::new(Mutex::new(Some(permit)))))
    }

    /// Gives the slot back; later calls do nothing.
    fn release(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// Per member and name: whether someone else's Deployment holds it (why, if so), and when
/// that was found.
type NameChecks = HashMap<String, (Option<String>, Instant)>;

/// How long a found conflict (someone else's Deployment under skyfleet's name) is taken as
/// still there before the member is asked again. A free name is remembered until the
/// workload goes: the act phase checks again before it creates anything.
pub const CONFLICT_RECHECK: Duration = Duration::from_secs(60);

/// Per pool: the fingerprint of what was applied and the generation the member gave it.
type AppliedPerPool = HashMap<String, (u64, i64)>;

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
    /// Writes the history alone at most once per `interval` (in whole history steps, at
    /// least one): what a crash loses, against the etcd write rate.
    pub fn with_history_persistence(mut self, interval: Duration) -> Self {
        let step = self.history_step.as_secs().max(1);
        self.history_persist_steps = i64::try_from(interval.as_secs() / step)
            .unwrap_or(i64::MAX)
            .max(1);
        self
    }

    /// A context with nothing remembered yet.
    pub fn new(
        registry: MemberRegistry,
        events: EventQueue,
        sync_period: Duration,
        failover_grace: Duration,
        history_step: Duration,
        member_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            registry,
            events,
            sync_period,
            failover_grace,
            history_step,
            history_persist_steps: crate::decide::demand::PERSIST_EVERY_STEPS,
            member_timeout,
            metrics,
            scope: Scope::default(),
            installation: String::new(),
            fence: super::fence::Fence::open(),
            dns_weight_property: crate::controller::dns_endpoint::DEFAULT_WEIGHT_PROPERTY
                .to_string(),
            memory: Arc::default(),
            deciding: Arc::default(),
            decide_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            )),
            applied: Mutex::new(HashMap::new()),
            // Until `with_pools` gives the reflector's store, no pool is ever listed.
            pools: kube::runtime::reflector::store().0,
            // Likewise until `with_namespaces`: no namespace's labels are known.
            namespaces: kube::runtime::reflector::store().0,
            conflicts: Mutex::default(),
        }
    }

    /// Every CloudPool, once the reflector has listed them.
    async fn pools(&self) -> Result<Vec<Arc<CloudPool>>, WorkloadError> {
        tokio::time::timeout(self.member_timeout, self.pools.wait_until_ready())
            .await
            .map_err(|_| WorkloadError::PoolsNotListed)?
            .map_err(|_| WorkloadError::PoolsNotListed)?;
        Ok(self.pools.state())
    }

    /// What a name check found for `workload` under `key`, while it still holds: a conflict
    /// for [`CONFLICT_RECHECK`], a free name until the workload goes.
    fn known_conflict(&self, workload: &str, key: &str) -> Option<Option<String>> {
        let conflicts = self.conflicts.lock().unwrap_or_else(|e| e.into_inner());
        let (answer, at) = conflicts.get(workload)?.get(key)?;
        (answer.is_none() || at.elapsed() < CONFLICT_RECHECK).then(|| answer.clone())
    }

    /// Remembers what a name check found.
    fn remember_conflict(&self, workload: &str, key: String, answer: Option<String>) {
        let mut conflicts = self.conflicts.lock().unwrap_or_else(|e| e.into_inner());
        conflicts
            .entry(workload.to_string())
            .or_default()
            .insert(key, (answer, Instant::now()));
    }

    /// The same context reading CloudPools from `pools` (a reflector's store).
    pub fn with_pools(mut self, pools: Store<CloudPool>) -> Self {
        self.pools = pools;
        self
    }

    /// The same context reading Namespaces' labels from `namespaces` (a reflector's store).
    pub fn with_namespaces(mut self, namespaces: Store<Namespace>) -> Self {
        self.namespaces = namespaces;
        self
    }

    /// The labels of `namespace`, once the reflector has listed the Namespaces and seen it.
    async fn namespace_labels(
        &self,
        namespace: &str,
    ) -> Result<BTreeMap<String, String>, WorkloadError> {
        tokio::time::timeout(self.member_timeout, self.namespaces.wait_until_ready())
            .await
            .map_err(|_| WorkloadError::NamespacesNotListed)?
            .map_err(|_| WorkloadError::NamespacesNotListed)?;
        let ns = self
            .namespaces
            .get(&ObjectRef::new(namespace))
            .ok_or_else(|| WorkloadError::NamespaceNotSeen(namespace.to_string()))?;
        Ok(ns.metadata.labels.clone().unwrap_or_default())
    }

    /// The same context limited to `scope`.
    pub fn with_scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// The same context owning member objects as `installation`.
    pub fn with_installation(mut self, installation: String) -> Self {
        self.installation = installation;
        self
    }

    /// The same context writing to members only while `fence` allows.
    pub fn with_fence(mut self, fence: Arc<super::fence::Fence>) -> Self {
        self.fence = fence;
        self
    }

    /// The same context naming `property` as the DNS weight's where a pool names none.
    pub fn with_dns_weight_property(mut self, property: String) -> Self {
        self.dns_weight_property = property;
        self
    }

    /// Whether a workload's decision is still running (one that overran its deadline).
    fn is_deciding(&self, key: &str) -> bool {
        self.deciding
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }

    /// Marks a workload's decision as running; false when one already is.
    fn start_deciding(&self, key: &str) -> bool {
        self.deciding
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string())
    }

    /// Gives up waiting for a workload's running decision: true when it is still running
    /// (it then keeps its memory for the next one), false when it has just finished and its
    /// result is there to be used.
    fn abandon(&self, key: &str, abandoned: &AtomicBool) -> bool {
        let running = self.deciding.lock().unwrap_or_else(|e| e.into_inner());
        let still = running.contains(key);
        if still {
            abandoned.store(true, Ordering::Release);
        }
        still
    }

    /// Takes a workload's memory out (the controller reconciles one workload at a time).
    fn take_memory(&self, key: &str) -> Option<Memory> {
        self.memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key)
    }

    fn put_memory(&self, key: String, memory: Memory) {
        self.memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, memory);
    }

    fn applied(&self, key: &str, pool: &str) -> Option<(u64, i64)> {
        let applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
        applied.get(key).and_then(|m| m.get(pool)).copied()
    }

    fn remember_applied(&self, key: &str, pool: &str, what: (u64, i64)) {
        let mut applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
        applied
            .entry(key.to_string())
            .or_default()
            .insert(pool.to_string(), what);
    }

    fn forget_applied_slot(&self, key: &str, slot: &str) {
        let mut applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slots) = applied.get_mut(key) {
            slots.remove(slot);
        }
    }

    fn forget_applied(&self, key: &str) {
        let mut applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
        applied.remove(key);
        let mut conflicts = self.conflicts.lock().unwrap_or_else(|e| e.into_inner());
        conflicts.remove(key);
    }
}

/// Errors that make the controller retry; member problems are status, not errors.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("the MultiCloudWorkload has no namespace")]
    NoNamespace,
    #[error("the CloudPools have not been listed yet")]
    PoolsNotListed,
    #[error("reading the demand history (retried; never taken as no history): {0}")]
    ReadHistory(#[source] kube::Error),
    #[error(
        "the Namespaces, whose labels a CloudPool's allowedNamespaces selects on, have not been listed yet"
    )]
    NamespacesNotListed,
    #[error("the watch of Namespaces has not seen namespace {0} yet")]
    NamespaceNotSeen(String),
    #[error("writing MultiCloudWorkload status: {0}")]
    Status(#[source] kube::Error),
    #[error("the decision did not finish: {0}")]
    Decide(String),
    #[error("deleting member Deployments is not finished: {0}")]
    CleanupPending(String),
    #[error(transparent)]
    Finalizer(Box<finalizer::Error<WorkloadError>>),
}

fn memory_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// Runs a member call with the member timeout; an error is text for logs and status.
pub(crate) async fn member<T>(
    timeout: Duration,
    work: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r.map_err(|e| super::registry::sanitize(&e.to_string())),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// Observe, decide, act, report, for one workload; returns when to look again.
async fn apply(
    workload: Arc<MultiCloudWorkload>,
    ctx: &WorkloadContext,
) -> Result<Action, WorkloadError> {
    let name = workload.name_any();
    let namespace = workload.namespace().ok_or(WorkloadError::NoNamespace)?;
    let now = jiff::Timestamp::now();
    let owner = Owner::of(&workload, &ctx.installation);
    let key = memory_key(&namespace, &name);
    if ctx.is_deciding(&key) {
        debug!(workload = %name, %namespace, "the previous decision is still running");
        return Ok(Action::requeue(DECIDE_DEADLINE));
    }

    // Observe.
    let pools = ctx.pools().await?;
    let (memory, history_problem) = observe::memory(ctx, &workload, &namespace, now).await?;
    let namespace_labels = observe::namespace_labels(ctx, &namespace, &pools).await?;
    let mut observed = observe::world(ctx, &owner, pools, &memory, now).await;
    observed.world.namespace_labels = namespace_labels;
    let resolved = observe::dependencies(ctx, &workload, &namespace).await;
    observed.world.missing_dependencies = resolved.missing.clone();

    // Decide, off the executor's threads: a forecast or a solve never stalls other work.
    let settings = Settings {
        failover_grace: ctx.failover_grace,
        sync_period: ctx.sync_period,
    };
    let world = observed.world.clone();
    let spec = workload.spec.clone();
    let generation = workload.metadata.generation;
    let mut previous = workload.status.clone().unwrap_or_default();
    let prev = previous.clone();
    // A core for it first: the deadline below counts the decision, not the wait for one.
    let slot = DecideSlot::take(&ctx.decide_slots).await?;
    // One decision per workload at a time: one that overran its deadline keeps its thread
    // until it finishes, and no second one is started beside it.
    if !ctx.start_deciding(&key) {
        debug!(workload = %name, %namespace, "the previous decision is still running");
        return Ok(Action::requeue(DECIDE_DEADLINE));
    }
    let deciding = ctx.deciding.clone();
    let memories = ctx.memory.clone();
    let abandoned = Arc::new(AtomicBool::new(false));
    let late = abandoned.clone();
    let done_key = key.clone();
    let held = slot.clone();
    let mut task = tokio::task::spawn_blocking(move || {
        let w = decide::Workload {
            spec: &spec,
            generation,
            previous: &prev,
        };
        let decision = decide::decide(&w, &world, memory, &settings, now);
        held.release();
        let mut running = deciding.lock().unwrap_or_else(|e| e.into_inner());
        running.remove(&done_key);
        if late.load(Ordering::Acquire) {
            // Nobody waits for this decision any more, and nothing of it is acted on; but its
            // memory holds the history fitted so far (a long window's cold fit is the slow
            // part), so the next decision starts from it instead of fitting all over again.
            memories
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(done_key, decision.memory);
            return None;
        }
        Some(decision)
    });
    let decided = match tokio::time::timeout(DECIDE_DEADLINE, &mut task).await {
        Ok(joined) => joined.map_err(|e| WorkloadError::Decide(e.to_string()))?,
        // Finished just as the deadline passed: it is not late.
        Err(_) if !ctx.abandon(&key, &abandoned) => task
            .await
            .map_err(|e| WorkloadError::Decide(e.to_string()))?,
        Err(_) => {
            slot.release();
            // Reported, not hung on: nothing is changed, and the memory is read again from
            // what is stored once the late decision has finished.
            let note = format!(
                "the decision took longer than {DECIDE_DEADLINE:?} (forecast and solve); nothing was changed, it is tried again"
            );
            warn!(workload = %name, %namespace, %note, "decision deadline");
            let notice = Notice {
                warning: true,
                reason: EventReason::DecisionTimedOut,
                action: "Decide",
                note: note.clone(),
            };
            report::publish(ctx, &workload, &notice);
            return Err(WorkloadError::Decide(note));
        }
    };
    let Some(decided) = decided else {
        return Err(WorkloadError::Decide(
            "the decision was abandoned at its deadline".into(),
        ));
    };
    let decide::Decision {
        actions,
        status: next,
        mut events,
        mut memory,
        persist,
        requeue,
        demand_cores,
        waiting,
        telemetry,
        ..
    } = decided;
    if let Some(why) = history_problem {
        events.push(Notice {
            warning: true,
            reason: EventReason::HistoryInvalid,
            action: "Observe",
            note: why,
        });
    }
    debug!(workload = %name, %namespace, measured = ?observed.world.measured, demand = demand_cores, "decided");

    // Report the memory first where a restart must not miss what is about to be done (a
    // Deployment created, a loss acted on); the rest of it rides in the status write.
    // When the decision will act, that first write is the decision's status with the memory
    // in it: one write where a failover or a first placement made two. What acting then
    // adds (a member's refusal) is a second write after it. Not when the workload already
    // says a member refused: the status before acting would drop that condition for a
    // moment, and its transition time with it.
    let refused_before = decide::status::was(
        &previous,
        conditions::DEGRADED,
        decide::ConditionReason::MemberRefused,
    );
    if persist && memory.memory_due_before_acting() {
        if waiting.is_none() && !refused_before {
            let written = write_status(
                ctx,
                &workload,
                &previous,
                next.clone(),
                &mut memory,
                persist,
                now,
            );
            match written.await {
                Ok((written, true)) => previous = written,
                Ok(_) => {}
                Err(e) => {
                    warn!(workload = %name, %namespace, error = %e, "could not write status before acting")
                }
            }
        } else {
            persist_memory(ctx, &workload, &mut memory).await;
        }
    }
    if persist && memory.demand.persist_due() {
        match report::persist_history(ctx, &workload, &memory).await {
            Ok(()) => memory.demand.persisted(),
            Err(e) => {
                warn!(workload = %name, %namespace, error = %e, "could not persist demand history")
            }
        }
    }
    if let Some(why) = waiting {
        if persist && memory.memory_due() {
            persist_memory(ctx, &workload, &mut memory).await;
        }
        ctx.put_memory(key, memory);
        debug!(workload = %name, %namespace, %why, "not placing yet");
        // What was observed is still said (a refused history is read only once).
        for notice in &events {
            report::publish(ctx, &workload, notice);
        }
        return Ok(Action::requeue(requeue));
    }

    // Act.
    let (outcomes, uids): (Vec<_>, Vec<_>) = act::members(
        ctx,
        &workload,
        &owner,
        &observed.handles,
        &actions,
        &resolved,
    )
    .await
    .into_iter()
    .unzip();
    let names: Vec<String> = observed
        .world
        .pools
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let running: Vec<u32> = observed
        .world
        .pools
        .iter()
        .map(|p| match &p.member {
            Member::Seen(d) => d.as_ref().map_or(0, |d| d.replicas),
            _ => 0,
        })
        .collect();
    let mut failures = report::failures(&names, &running, &outcomes);
    // The traffic split as weighted DNS, when asked for; a refusal is said like a member's.
    if let Err(why) = act::dns_endpoint(
        ctx,
        &workload,
        &owner,
        &observed.handles,
        next.traffic.as_ref(),
    )
    .await
    {
        failures.push((report::NOT_A_POOL.to_string(), 0, why));
    }
    // A Service the member refused leaves the pool's replicas as planned; it is said.
    // So do copies of the template's ConfigMaps and Secrets.
    let services = act::services(ctx, &workload, &owner, &observed.handles, &actions).await;
    let copies =
        act::dependencies(ctx, &owner, &observed.handles, &actions, &uids, &resolved).await;
    let refused = services
        .into_iter()
        .map(|(i, why)| (i, format!("Service: {why}")))
        .chain(
            copies
                .into_iter()
                .map(|(i, why)| (i, format!("copies of ConfigMaps and Secrets: {why}"))),
        );
    for (i, why) in refused {
        let pool = names.get(i).cloned().unwrap_or_default();
        let planned = next
            .pools
            .iter()
            .find(|r| r.name == pool)
            .map_or(0, |r| u32::try_from(r.replicas).unwrap_or(0));
        failures.push((pool, planned, why));
    }
    for (pool, _, why) in &failures {
        warn!(workload = %name, %namespace, %pool, error = %why, "member refused");
    }
    let changed = actions
        .iter()
        .zip(&outcomes)
        .any(|(a, o)| *a != MemberAction::Leave && *o == act::Outcome::Done);

    // Report.
    let next = report::with_outcomes(next, &previous, &failures, generation, now);
    if !failures.is_empty()
        && !refused_before
        && let Some(n) = report::refused(&failures)
    {
        events.push(n);
    }
    for notice in &events {
        if notice.warning {
            warn!(workload = %name, %namespace, reason = %notice.reason, note = %notice.note, "event");
        } else {
            info!(workload = %name, %namespace, reason = %notice.reason, note = %notice.note, "event");
        }
        report::publish(ctx, &workload, notice);
    }
    let written = write_status(ctx, &workload, &previous, next, &mut memory, persist, now).await;
    ctx.put_memory(key, memory);
    let (status, _) = written?;
    report::metrics(ctx, &workload, &status, &telemetry, demand_cores);
    debug!(workload = %name, %namespace, changed, "reconciled");
    Ok(Action::requeue(requeue))
}

/// Writes the status, which carries the memory; where it was not written (unchanged, or
/// failed) and the memory is due, stores the memory alone, if the decision may (`persist`).
async fn write_status(
    ctx: &WorkloadContext,
    workload: &MultiCloudWorkload,
    previous: &MultiCloudWorkloadStatus,
    next: MultiCloudWorkloadStatus,
    memory: &mut Memory,
    persist: bool,
    now: jiff::Timestamp,
) -> Result<(MultiCloudWorkloadStatus, bool), WorkloadError> {
    let written = report::status(ctx, workload, previous, next, memory, now).await;
    match &written {
        Ok((_, true)) => memory.memory_persisted(),
        _ if persist && memory.memory_due() => persist_memory(ctx, workload, memory).await,
        _ => {}
    }
    written
}

/// Stores the decision memory alone; a failure is logged, and the write tried again at the
/// next decision (the memory stays due).
async fn persist_memory(ctx: &WorkloadContext, workload: &MultiCloudWorkload, memory: &mut Memory) {
    match report::persist_memory(ctx, workload, memory).await {
        Ok(()) => memory.memory_persisted(),
        Err(e) => warn!(
            workload = %workload.name_any(),
            namespace = %workload.namespace().unwrap_or_default(),
            error = %e,
            "could not persist decision memory"
        ),
    }
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
            finalizer::Event::Cleanup(w) => cleanup::run(w, &ctx).await,
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
    Action::requeue(ctx.sync_period.min(Duration::from_secs(5)))
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

/// Whether a change of `pool` can change `workload`'s plan at once: its
/// `placement.poolSelector` selects the pool (or it has none), or it runs there (the pool
/// may have just stopped being selected). An unreadable selector wakes it too: the
/// reconcile is what reports it.
fn wakes(workload: &MultiCloudWorkload, pool: &CloudPool) -> bool {
    use kube::core::{Selector, SelectorExt};
    let name = pool.name_any();
    let runs_there = workload
        .status
        .as_ref()
        .is_some_and(|s| s.pools.iter().any(|p| p.name == name));
    let selected = match &workload.spec.placement.pool_selector {
        None => true,
        Some(s) => Selector::try_from(s.clone()).map_or(true, |s| s.matches(pool.labels())),
    };
    runs_there || selected
}

/// What of a workload, when it changes, wakes its reconcile: the spec (its generation), the
/// finalizers (the finalizer helper adds one and waits for the change) and the deletion
/// mark. Status, written by skyfleet itself after every decision that changes it, is left
/// out: the decision it describes has been made, and the next comes with the sync period.
fn plan_inputs(w: &MultiCloudWorkload) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let meta = &w.metadata;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut h);
    meta.finalizers.hash(&mut h);
    meta.deletion_timestamp.as_ref().map(|t| t.0).hash(&mut h);
    Some(h.finish())
}

/// The workloads whose member Deployments progressed (replicas got Ready, were refused, or
/// a Deployment went; see [`super::progress`]), among those this controller reconciles.
/// They are woken at once instead of being polled while replicas start.
fn progressed(
    wakes: tokio::sync::broadcast::Receiver<WorkloadKey>,
    workloads: Store<MultiCloudWorkload>,
) -> impl futures::Stream<Item = ObjectRef<MultiCloudWorkload>> + Send + 'static {
    use tokio::sync::broadcast::error::RecvError;
    futures::stream::unfold(wakes, |mut wakes| async move {
        loop {
            match wakes.recv().await {
                Ok(key) => return Some((key, wakes)),
                // Wakes dropped while the queue was full: the sync period sees to those.
                Err(RecvError::Lagged(n)) => debug!(dropped = n, "progress wakes dropped"),
                Err(RecvError::Closed) => return None,
            }
        }
    })
    .filter_map(move |key| {
        let r = ObjectRef::new(&key.name).within(&key.namespace);
        futures::future::ready(workloads.get(&r).is_some().then_some(r))
    })
}

/// Runs the MultiCloudWorkload controller until `shutdown` resolves. A change of a CloudPool
/// (readiness, prices, drain, labels) reconciles the workloads it concerns ([`wakes`]).
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
    let (reader, writer) = reflector::store();
    let triggers = watcher(workloads, watcher::Config::default())
        .default_backoff()
        // Nothing reads who wrote which field, and with a status, its memory and the
        // tenant's spec written by three managers it is most of a cached workload.
        .modify(|w| w.metadata.managed_fields = None)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(plan_inputs, PredicateConfig::default());
    let controller = Controller::for_stream(triggers, reader).with_config(
        kube::runtime::controller::Config::default().concurrency(ctx.scope.concurrency),
    );
    let store = controller.store();
    let progressed = progressed(ctx.registry.progress(), controller.store());
    controller
        .reconcile_on(progressed)
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
                .filter(|w| wakes(w, &pool))
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

    #[tokio::test]
    async fn a_decide_slot_is_given_back_once_by_whichever_lets_go_first()
    -> Result<(), WorkloadError> {
        let slots = Arc::new(tokio::sync::Semaphore::new(1));
        let waiting = DecideSlot::take(&slots).await?;
        let computing = waiting.clone();
        assert_eq!(slots.available_permits(), 0);
        // The reconcile gives up at the deadline: the next decision may start.
        waiting.release();
        assert_eq!(slots.available_permits(), 1);
        let next = DecideSlot::take(&slots).await?;
        // The late decision then ends: it gives back nothing it no longer holds.
        computing.release();
        assert_eq!(
            slots.available_permits(),
            0,
            "the next decision's slot stays taken"
        );
        next.release();
        assert_eq!(slots.available_permits(), 1);
        Ok(())
    }

    #[test]
    fn only_the_spec_finalizers_and_deletion_wake_a_workload_not_its_status() {
        let base: MultiCloudWorkload = serde_json::from_value(serde_json::json!({
            "apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
            "metadata": {"name": "web", "namespace": "shop", "generation": 3,
                         "resourceVersion": "100", "finalizers": ["skyfleet.io/cleanup"]},
            "spec": {"replicas": {"min": 1, "max": 3},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "a", "image": "a"}]}}},
            "status": {"desiredReplicas": 2}
        }))
        .unwrap();
        let mut status_written = base.clone();
        status_written.metadata.resource_version = Some("101".into());
        status_written.status = Some(Default::default());
        assert_eq!(plan_inputs(&base), plan_inputs(&status_written));
        let mut edited = base.clone();
        edited.metadata.generation = Some(4);
        assert_ne!(plan_inputs(&base), plan_inputs(&edited));
        let mut unfinalized = base.clone();
        unfinalized.metadata.finalizers = None;
        assert_ne!(plan_inputs(&base), plan_inputs(&unfinalized));
        let mut deleting = base.clone();
        deleting.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        assert_ne!(plan_inputs(&base), plan_inputs(&deleting));
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
        use observe::cluster_key;
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
        assert_eq!(base, pool_fingerprint(&pool("True", "Probed", "7", "a")));
        assert_ne!(
            base,
            pool_fingerprint(&pool("False", "Unreachable", "1", "a"))
        );
        assert_ne!(base, pool_fingerprint(&pool("True", "Probed", "1", "b")));
        let mut newer = pool("True", "Probed", "1", "a");
        newer.metadata.generation = Some(2);
        assert_ne!(base, pool_fingerprint(&newer), "a spec change");
    }

    #[test]
    fn a_pool_change_wakes_only_the_workloads_it_concerns() {
        let pool: CloudPool = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "aws", "labels": {"tier": "cheap"}},
            "spec": {"provider": "aws", "region": "r", "pricing": {"cpuPerHour": 0.1, "memoryGiBPerHour": 0.01}}
        }))
        .unwrap();
        let workload = |selector: serde_json::Value, runs_in: &[&str]| -> MultiCloudWorkload {
            let mut placement = serde_json::json!({});
            if !selector.is_null() {
                placement["poolSelector"] = selector;
            }
            serde_json::from_value(serde_json::json!({
                "apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
                "metadata": {"name": "web", "namespace": "shop"},
                "spec": {
                    "replicas": {"min": 1, "max": 4},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "c", "image": "i"}]}},
                    "placement": placement
                },
                "status": {"pools": runs_in.iter().map(|p| serde_json::json!({"name": p, "replicas": 1})).collect::<Vec<_>>()}
            }))
            .unwrap()
        };
        assert!(wakes(&workload(serde_json::Value::Null, &[]), &pool));
        let cheap = serde_json::json!({"matchLabels": {"tier": "cheap"}});
        let dear = serde_json::json!({"matchLabels": {"tier": "dear"}});
        assert!(wakes(&workload(cheap, &[]), &pool));
        assert!(!wakes(&workload(dear.clone(), &["gcp"]), &pool));
        assert!(
            wakes(&workload(dear, &["aws"]), &pool),
            "it runs there: the pool may have just left its selector"
        );
    }

    #[test]
    fn the_history_configmap_is_named_after_the_workload() {
        assert_eq!(history_configmap("web"), "web-skyfleet-history");
    }
}
