//! Observe: everything one decision needs, gathered without changing anything. The
//! CloudPools, what each pool's member shows of the workload (its Deployment, found by
//! skyfleet's ownership labels and UID, never by name alone), the demand measured from
//! metrics-server, and the workload's memory.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Api, ResourceExt};
use tracing::{debug, info, warn};

use super::{HISTORY_KEY, MEMORY_KEY, WorkloadContext, WorkloadError, history_configmap, member};
use crate::api::cloud_pool::CloudPool;
use crate::api::history::WorkloadHistory;
use crate::api::quantity;
use crate::api::workload::MultiCloudWorkload;
use crate::controller::dependencies::{self, Resolved};
use crate::controller::desired::{self, Owner};
use crate::controller::member_cache::MemberCluster;
use crate::controller::registry::sanitize;
use crate::controller::watched_deployment::WatchedDeployment;
use crate::decide::demand::DemandTracker;
use crate::decide::{self, Measured, Member, MemberDeployment, Memory, ObservedPool, World};

/// What the act phase needs about one pool beyond what the decision saw.
pub struct Handle {
    /// The CloudPool.
    pub pool: Arc<CloudPool>,
    /// The member's client, when it answered.
    pub client: Option<kube::Client>,
    /// The name of the workload's Deployment there: the one found, or a new one.
    pub name: String,
    /// The Deployment found there (skyfleet's, for this workload).
    pub existing: Option<Arc<WatchedDeployment>>,
    /// The member cluster ([`cluster_key`]): pools that share one share its Service.
    pub cluster: String,
    /// The workload's Service in that cluster, as the member's watch shows it.
    pub service: ServiceSeen,
}

/// What a member's Service watch shows of the workload's Service.
#[derive(Debug, Clone, Default)]
pub enum ServiceSeen {
    /// Not looked at, or the watch has not listed yet: nothing is done about it.
    #[default]
    Unknown,
    /// No Service of skyfleet's holds the name (one of someone else's may; checked before
    /// one is created).
    Absent,
    /// This workload's Service.
    Mine(Arc<Service>),
    /// A Service labelled as skyfleet's but of another workload or installation.
    Foreign,
}

/// The world as observed, and the handles to act on it.
pub struct Observed {
    /// For the decision.
    pub world: World,
    /// One per pool, in the world's order.
    pub handles: Vec<Handle>,
}

/// Which member cluster a pool is in: pools with the same kubeconfig Secret share one.
pub fn cluster_key(pool: &CloudPool) -> String {
    match &pool.spec.kubeconfig_secret_ref {
        Some(r) => format!("secret:{}/{}/{}", r.namespace, r.name, r.key),
        None => MANAGEMENT.to_string(),
    }
}

/// The first address a LoadBalancer Service was given: its hostname, else its IP.
fn load_balancer_address(svc: &Service) -> Option<String> {
    let ingress = svc
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?;
    ingress
        .iter()
        .find_map(|i| i.hostname.clone().or_else(|| i.ip.clone()))
        .filter(|a| !a.is_empty())
}

/// The cluster key of pools without a kubeconfig: the management cluster itself.
pub const MANAGEMENT: &str = "management";

/// How long one tally of a member's pods serves the workloads deciding after it: long
/// enough that a burst of reconciles shares it, short enough that a replica made Pending by
/// another tenant's pod is seen at the next decision.
const USAGE_FRESH: Duration = Duration::from_secs(1);

/// One member cluster as a reconcile sees it: its watched view, or why it has none.
type ClusterView = Result<Arc<MemberCluster>, String>;

/// Observes every pool for `workload`, from the member watches: in steady state this reads
/// nothing from any API server.
pub async fn world(
    ctx: &WorkloadContext,
    owner: &Owner,
    pools: Vec<Arc<CloudPool>>,
    memory: &Memory,
    now: jiff::Timestamp,
) -> Observed {
    let namespace = owner.namespace.as_str();
    let mut clusters: BTreeMap<String, ClusterView> = BTreeMap::new();
    let mut world = World::default();
    let mut handles = Vec::with_capacity(pools.len());
    for pool in pools {
        let name = pool.name_any();
        let availability = decide::availability(pool.status.as_ref(), ctx.failover_grace, now);
        let new_name = desired::deployment_name(&owner.name, &name);
        let mut handle = Handle {
            pool: pool.clone(),
            client: None,
            name: new_name.clone(),
            existing: None,
            cluster: cluster_key(&pool),
            service: ServiceSeen::Unknown,
        };
        let mut observed = Member::Unknown;
        let mut room = None;
        let mut ingress = None;
        if availability.contact {
            let key = cluster_key(&pool);
            if !clusters.contains_key(&key) {
                let view = watched(ctx, &pool).await;
                clusters.insert(key.clone(), view);
            }
            match clusters.get(&key) {
                Some(Ok(cluster)) => {
                    let mine = cluster.deployments_in(namespace).into_iter().find(|d| {
                        d.labels().get(crate::controller::labels::POOL) == Some(&name)
                            && owner.owns_meta(&d.metadata)
                    });
                    observed = match mine {
                        Some(d) => {
                            handle.name = d.name_any();
                            let observed = Member::Seen(Some(seen(&d)));
                            handle.existing = Some(d);
                            observed
                        }
                        None => {
                            match conflict(ctx, &key, &cluster.client, &new_name, owner).await {
                                Ok(None) => Member::Seen(None),
                                Ok(Some(why)) => Member::Conflict(why),
                                Err(e) => {
                                    debug!(pool = %name, error = %e, "member did not answer");
                                    Member::Unknown
                                }
                            }
                        }
                    };
                    if !matches!(observed, Member::Unknown) {
                        handle.service = match cluster.service(namespace, &owner.name) {
                            None => ServiceSeen::Unknown,
                            Some(None) => ServiceSeen::Absent,
                            Some(Some(svc)) if owner.owns_meta(&svc.metadata) => {
                                ingress = load_balancer_address(&svc);
                                ServiceSeen::Mine(svc)
                            }
                            Some(Some(_)) => ServiceSeen::Foreign,
                        };
                        handle.client = Some(cluster.client.clone());
                        room = cluster.usage(USAGE_FRESH).map(|usage| {
                            let nodes = cluster.nodes.store.state();
                            usage.room(&pool.spec, &name, &nodes, namespace, &owner.name)
                        });
                    }
                }
                Some(Err(e)) => debug!(pool = %name, error = %e, "member not observed"),
                None => {}
            }
        }
        world.pools.push(ObservedPool {
            name: name.clone(),
            labels: pool.labels().clone(),
            spec: pool.spec.clone(),
            status: pool.status.clone(),
            used_by_others: used_by_others(&pool, handle.existing.as_deref()),
            age: pool.creation_timestamp().map_or(Duration::ZERO, |Time(t)| {
                now.duration_since(t).unsigned_abs()
            }),
            deleting: pool.metadata.deletion_timestamp.is_some(),
            member: observed,
            room,
            ingress,
        });
        handles.push(handle);
    }
    world.measured = measure(ctx, owner, &world, &handles, &clusters, memory).await;
    Observed { world, handles }
}

/// The labels of the workload's namespace, when some pool admits only some namespaces, from
/// the Namespace watch. Not listed yet, or not seen yet, fails the reconcile (retried): an
/// unknown namespace is never taken as refused, which would move replicas out.
pub async fn namespace_labels(
    ctx: &WorkloadContext,
    namespace: &str,
    pools: &[Arc<CloudPool>],
) -> Result<Option<BTreeMap<String, String>>, WorkloadError> {
    if pools.iter().all(|p| p.spec.allowed_namespaces.is_none()) {
        return Ok(None);
    }
    ctx.namespace_labels(namespace).await.map(Some)
}

/// The ConfigMaps and Secrets the workload's template references, read by name from its
/// namespace on the management cluster (skyfleet may `get` them there, never list them). A
/// required one that is missing or cannot be read is named in `missing`; too many references
/// are refused whole, before any is read.
pub async fn dependencies(
    ctx: &WorkloadContext,
    workload: &MultiCloudWorkload,
    namespace: &str,
) -> Resolved {
    use dependencies::{Kind, MAX_DEPENDENCIES, Source};
    let wanted = dependencies::references(workload.spec.template.spec.as_ref());
    let mut resolved = Resolved::default();
    if wanted.len() > MAX_DEPENDENCIES {
        resolved.missing.push(format!(
            "the template references {} ConfigMaps and Secrets; at most {MAX_DEPENDENCIES} are copied to the members",
            wanted.len()
        ));
        return resolved;
    }
    let client = ctx.registry.management();
    for (reference, optional) in wanted {
        let read = match reference.kind {
            Kind::ConfigMap => {
                let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
                member(ctx.member_timeout, api.get_opt(&reference.name))
                    .await
                    .map(|o| o.map(Source::ConfigMap))
            }
            Kind::Secret => {
                let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
                member(ctx.member_timeout, api.get_opt(&reference.name))
                    .await
                    .map(|o| o.map(Source::Secret))
            }
        };
        match read {
            Ok(Some(source)) => resolved.sources.push(source),
            Ok(None) if optional => {}
            Ok(None) => resolved.missing.push(format!(
                "{} {namespace}/{} is referenced by the pod template and does not exist",
                reference.kind.as_str(),
                reference.name
            )),
            Err(e) => resolved.missing.push(format!(
                "{} {namespace}/{} is referenced by the pod template and cannot be read: {e}",
                reference.kind.as_str(),
                reference.name
            )),
        }
    }
    resolved
}

/// The pool's member cluster with a current view of skyfleet's Deployments there: none
/// while its watch has not listed them yet or has lost the member (what it holds could be
/// stale, and a stale view must not read as "nothing runs there").
async fn watched(ctx: &WorkloadContext, pool: &CloudPool) -> ClusterView {
    let cluster = ctx
        .registry
        .cluster(pool.spec.kubeconfig_secret_ref.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    let health = &cluster.deployments.health;
    health
        .listed(ctx.member_timeout)
        .await
        .map_err(|e| format!("skyfleet's Deployments there were not listed: {e}"))?;
    if let Some(e) = health.error() {
        return Err(format!("the watch of skyfleet's Deployments failed: {e}"));
    }
    Ok(cluster)
}

/// Whether a Deployment that is not this workload's holds `name` in the member. The watch
/// sees only skyfleet's Deployments, so this is a read; its answer is remembered (see
/// [`WorkloadContext::conflict`]) so a steady workload does not ask again on every sync.
async fn conflict(
    ctx: &WorkloadContext,
    cluster: &str,
    client: &kube::Client,
    name: &str,
    owner: &Owner,
) -> Result<Option<String>, String> {
    let workload = super::memory_key(&owner.namespace, &owner.name);
    let key = conflict_key(cluster, name);
    if let Some(known) = ctx.known_conflict(&workload, &key) {
        return Ok(known);
    }
    let answer = foreign(ctx, client, &owner.namespace, name, owner).await?;
    ctx.remember_conflict(&workload, key, answer.clone());
    Ok(answer)
}

/// The key under which a name check in one member is remembered.
pub fn conflict_key(cluster: &str, name: &str) -> String {
    format!("{cluster}\0{name}")
}

/// Whether a Deployment that is not this workload's holds `name` in the member.
pub async fn foreign(
    ctx: &WorkloadContext,
    client: &kube::Client,
    namespace: &str,
    name: &str,
    owner: &Owner,
) -> Result<Option<String>, String> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let found = member(ctx.member_timeout, api.get_opt(name)).await?;
    Ok(found.filter(|d| !owner.owns(d)).map(|_| {
        format!(
            "Deployment {namespace}/{name} exists there and is not skyfleet's for this workload; it is left untouched"
        )
    }))
}

/// A Deployment as the decision sees it.
fn seen(d: &WatchedDeployment) -> MemberDeployment {
    let failure = d.replica_failure().map(|c| {
        let reason = c.reason.as_deref().unwrap_or("ReplicaFailure");
        let message = c.message.as_deref().unwrap_or_default();
        sanitize(&format!("{reason}: {message}"))
    });
    MemberDeployment {
        replicas: u32::try_from(d.replicas()).unwrap_or(0),
        ready: u32::try_from(d.ready()).unwrap_or(0),
        failure,
    }
}

/// CPU cores and memory bytes other workloads request in the pool: the pool's `used` minus
/// this workload's own Deployment there.
fn used_by_others(pool: &CloudPool, own: Option<&WatchedDeployment>) -> (f64, f64) {
    let used = pool.status.as_ref().and_then(|s| s.used.as_ref());
    let (cpu, mem) = used.map_or((0.0, 0.0), |u| {
        (
            quantity::to_f64(&u.cpu).unwrap_or(0.0),
            quantity::to_f64(&u.memory).unwrap_or(0.0),
        )
    });
    let (own_cpu, own_mem) = own.map_or((0.0, 0.0), |d| {
        let (c, m) = d.requests_per_replica();
        let n = f64::from(d.replicas());
        (c * n, m * n)
    });
    ((cpu - own_cpu).max(0.0), (mem - own_mem).max(0.0))
}

/// Demand now: the workload's pods' CPU (selected by skyfleet's ownership labels, so two
/// workloads with overlapping template labels never count each other's) summed over the
/// member clusters that answer, each cluster once. The read is one PodMetrics list per
/// member shared by every workload there ([`MemberCluster::pod_cpu`]). A
/// member that runs replicas but gave no metrics makes the sample partial: a lower bound,
/// not a dip.
async fn measure(
    ctx: &WorkloadContext,
    owner: &Owner,
    world: &World,
    handles: &[Handle],
    clusters: &BTreeMap<String, ClusterView>,
    memory: &Memory,
) -> Measured {
    let mut asked = BTreeSet::new();
    let mut failed = BTreeSet::new();
    let mut total = None;
    // The list is shared for the shorter of a sync and a history step: metrics-server
    // refreshes no more often than that, and burst protection needs no fresher figure.
    let fresh = ctx.sync_period.min(ctx.history_step);
    for (p, h) in world.pools.iter().zip(handles) {
        let key = cluster_key(&h.pool);
        if h.client.is_none() || !asked.insert(key.clone()) {
            continue;
        }
        let Some(Ok(cluster)) = clusters.get(&key) else {
            continue;
        };
        match cluster
            .pod_cpu(&owner.namespace, &owner.name, fresh, ctx.member_timeout)
            .await
        {
            Ok(cores) => *total.get_or_insert(0.0) += cores,
            Err(e) => {
                debug!(pool = %p.name, error = %e, "no pod metrics");
                failed.insert(key);
            }
        }
    }
    // A pool with replicas that gave no metrics: its member failed, or was not contacted.
    let partial = world.pools.iter().zip(handles).any(|(p, h)| {
        let runs = match &p.member {
            Member::Seen(d) => d.as_ref().is_some_and(|d| d.replicas > 0),
            _ => memory.known.get(&p.name).is_some_and(|&n| n > 0),
        };
        runs && (h.client.is_none() || failed.contains(&cluster_key(&h.pool)))
    });
    Measured {
        cores: total,
        partial,
    }
}

/// The workload's memory: from this process, or once per process from its `WorkloadHistory`
/// (the demand history) and its `status.memory` (the decision memory; an older skyfleet kept
/// it in the `WorkloadHistory`, which is read where status has none); where there is no
/// `WorkloadHistory` yet, from the ConfigMap an older skyfleet kept it in (read once,
/// migrated by the next write, and left as it is: it goes with the workload). A failed
/// read is an error (the reconcile is retried), never "no history": what is stored is never
/// overwritten by a fresh start.
pub async fn memory(
    ctx: &WorkloadContext,
    workload: &MultiCloudWorkload,
    namespace: &str,
    now: jiff::Timestamp,
) -> Result<(Memory, Option<String>), WorkloadError> {
    let key = super::memory_key(namespace, &workload.name_any());
    if let Some(m) = ctx.take_memory(&key) {
        return Ok((m, None));
    }
    let spec = &workload.spec.scaling.forecast;
    let name = workload.name_any();
    let histories: Api<WorkloadHistory> = Api::namespaced(ctx.registry.management(), namespace);
    let stored = match histories
        .get_opt(&name)
        .await
        .map_err(WorkloadError::ReadHistory)?
    {
        Some(h) => Some((h.spec.history, h.spec.memory)),
        None => {
            let legacy: Api<ConfigMap> = Api::namespaced(ctx.registry.management(), namespace);
            let data = legacy
                .get_opt(&history_configmap(&name))
                .await
                .map_err(WorkloadError::ReadHistory)?
                .and_then(|cm| cm.data);
            data.map(|d| {
                info!(workload = %name, %namespace, "migrating the demand history from its ConfigMap");
                (
                    d.get(HISTORY_KEY).cloned().unwrap_or_default(),
                    d.get(MEMORY_KEY).cloned().unwrap_or_default(),
                )
            })
        }
    };
    let fresh =
        || DemandTracker::new(spec, ctx.history_step).with_persist_every(ctx.history_persist_steps);
    // The decision memory lives in status; an older version kept it beside the history.
    let in_status = workload
        .status
        .as_ref()
        .map(|s| s.memory.clone())
        .filter(|m| !m.is_empty());
    let (history, memory_text) = match (stored, in_status) {
        (Some((history, beside)), in_status) => (history, in_status.unwrap_or(beside)),
        (None, Some(memory)) => (String::new(), memory),
        (None, None) => return Ok((Memory::new(fresh()), None)),
    };
    let mut problem = None;
    let demand = match Some(history.as_str()).filter(|t| !t.is_empty()) {
        Some(text) => match DemandTracker::decode_at(text, spec, ctx.history_step, now.as_second())
        {
            Ok(t) => {
                info!(workload = %workload.name_any(), %namespace, "resumed demand history");
                t.with_persist_every(ctx.history_persist_steps)
            }
            Err(e) => {
                warn!(workload = %workload.name_any(), %namespace, error = %e, "stored demand history refused; starting afresh");
                problem = Some(format!("stored demand history refused: {e}"));
                fresh()
            }
        },
        None => fresh(),
    };
    let memory = match Some(memory_text.as_str()).filter(|t| !t.is_empty()) {
        Some(text) => {
            let (m, error) = Memory::restore(demand, text, now.as_second());
            if let Some(e) = error {
                warn!(workload = %workload.name_any(), %namespace, error = %e, "stored decision memory refused");
                problem = Some(e.to_string());
            }
            m
        }
        None => Memory::new(demand),
    };
    let mut memory = memory;
    memory.refused = problem.as_ref().map(|why| {
        format!("{why} (read at {now}); the workload started afresh and runs reactively until it has history")
    });
    Ok((memory, problem))
}
