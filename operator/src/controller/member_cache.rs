//! Watch-backed views of one member cluster, kept by kube-runtime reflectors: skyfleet's own
//! Deployments there (selected by its `managed-by` label, every namespace) and the Nodes. A
//! workload reconcile and a pool probe read these instead of listing the member each time,
//! so in steady state they cost the member's API server no reads at all, and a member with
//! thousands of Nodes is never listed inside a probe's timeout.
//!
//! One [`MemberCluster`] exists per kubeconfig (pools sharing a cluster share it); its watch
//! tasks stop when it is dropped (the kubeconfig changed, or the operator stops).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, NodeSpec, NodeStatus, Service};
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::task::AbortHandle;
use tracing::debug;

use super::labels;
use super::metrics_api::PodMetrics;
use super::node_room::{self, Usage};
use super::progress::{ProgressWatch, Wakes};
use super::registry::sanitize;
use super::watched_deployment::{self, WatchedDeployment};

/// How a watch is doing: whether its first list has completed, and what it last saw.
#[derive(Debug, Default)]
pub struct WatchHealth {
    state: Mutex<HealthState>,
    changed: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct HealthState {
    synced: bool,
    last_ok: Option<Instant>,
    error: Option<String>,
}

impl WatchHealth {
    fn ok(&self, synced: bool) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.synced |= synced;
        s.last_ok = Some(Instant::now());
        s.error = None;
        drop(s);
        self.changed.notify_waiters();
    }

    fn failed(&self, error: String) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.error = Some(error);
        drop(s);
        self.changed.notify_waiters();
    }

    /// Waits until the first list has completed (Ok) or the watch fails (its error), for at
    /// most `limit` (an error saying so).
    pub async fn listed(&self, limit: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            // Registered before the state is read, so a change in between is not missed.
            let changed = self.changed.notified();
            if self.synced() {
                return Ok(());
            }
            if let Some(e) = self.error() {
                return Err(e);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(format!("not listed within {limit:?}"));
            }
        }
    }

    /// Whether the watch has listed everything once, its last word was not an error, and it
    /// heard from the member within `within`.
    pub fn healthy(&self, within: Duration) -> bool {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.synced && s.error.is_none() && s.last_ok.is_some_and(|t| t.elapsed() <= within)
    }

    /// Whether the first list has completed (the store then holds a whole picture).
    pub fn synced(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).synced
    }

    /// The watch's last error, while it has not recovered from it.
    pub fn error(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .error
            .clone()
    }
}

/// A reflector's store and the health of the watch that fills it.
#[derive(Clone)]
pub struct Watched<K: kube::Resource + 'static>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    /// What the watch has seen.
    pub store: Store<K>,
    /// How the watch is doing.
    pub health: Arc<WatchHealth>,
}

/// One member cluster: its client, and the watches that mirror what skyfleet reads there.
pub struct MemberCluster {
    /// The member's client.
    pub client: kube::Client,
    /// skyfleet's Deployments in the member, in every namespace.
    pub deployments: Watched<WatchedDeployment>,
    /// skyfleet's Services in the member, in every namespace.
    pub services: Watched<Service>,
    /// The member's Nodes, reduced to what placement reads (labels, taints, schedulability,
    /// allocatable resources).
    pub nodes: Watched<Node>,
    /// The member's pods that hold room (not Succeeded or Failed), reduced to their node,
    /// requests, scheduling state and, for skyfleet's, whose they are.
    pub pods: Watched<node_room::RoomPod>,
    usage: Mutex<Option<(Instant, Arc<Usage>)>>,
    metrics: tokio::sync::Mutex<Option<MetricsSample>>,
    tasks: Vec<AbortHandle>,
}

/// The CPU of skyfleet's pods in every namespace of a member, keyed by the workload's
/// namespace and name.
type CpuByWorkload = HashMap<(String, String), f64>;

/// One PodMetrics list of the member: when it was read, and each skyfleet pod's CPU by the
/// workload it belongs to.
#[derive(Clone)]
struct MetricsSample {
    at: Instant,
    result: Result<Arc<CpuByWorkload>, String>,
}

impl Drop for MemberCluster {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl MemberCluster {
    /// Starts the watches of a member (on the current tokio runtime).
    /// A change of a Deployment's progress (replicas Ready, refused, or it went) is sent to
    /// `wakes`.
    pub fn start(client: kube::Client, wakes: Wakes) -> Self {
        let mut tasks = Vec::new();
        let selector = format!("{}={}", labels::MANAGED_BY, labels::MANAGER);
        let mut progress = ProgressWatch::new(wakes);
        let deployments = watch(
            Api::<WatchedDeployment>::all(client.clone()),
            watcher::Config::default().labels(&selector),
            watched_deployment::reduce,
            move |event| progress.on_event(event),
            &mut tasks,
        );
        let services = watch(
            Api::<Service>::all(client.clone()),
            watcher::Config::default().labels(&selector),
            |s: &mut Service| {
                s.metadata.managed_fields = None;
            },
            |_| {},
            &mut tasks,
        );
        let nodes = watch(
            Api::<Node>::all(client.clone()),
            watcher::Config::default(),
            reduce_node,
            |_| {},
            &mut tasks,
        );
        let pods = watch(
            Api::<node_room::RoomPod>::all(client.clone()),
            watcher::Config::default().fields(node_room::LIVE_PODS),
            node_room::reduce_pod,
            |_| {},
            &mut tasks,
        );
        Self {
            client,
            deployments,
            services,
            nodes,
            pods,
            usage: Mutex::default(),
            metrics: tokio::sync::Mutex::default(),
            tasks,
        }
    }

    /// skyfleet's Deployments in `namespace`.
    pub fn deployments_in(&self, namespace: &str) -> Vec<Arc<WatchedDeployment>> {
        self.deployments
            .store
            .state_filter(|d| d.metadata.namespace.as_deref() == Some(namespace))
    }

    /// skyfleet's Service `name` in `namespace`, once the watch has listed them (None
    /// before: not known).
    pub fn service(&self, namespace: &str, name: &str) -> Option<Option<Arc<Service>>> {
        let h = &self.services.health;
        if !h.synced() || h.error().is_some() {
            return None;
        }
        Some(
            self.services
                .store
                .get(&kube::runtime::reflector::ObjectRef::new(name).within(namespace)),
        )
    }

    /// What the member's pods use, per node and per skyfleet workload: tallied from the Pod
    /// watch at most once per `fresh`, so many workloads deciding at once share one pass.
    /// None while the Node or Pod watch has not listed or has failed (room unknown is not
    /// room gone).
    pub fn usage(&self, fresh: Duration) -> Option<Arc<Usage>> {
        let healthy = |h: &WatchHealth| h.synced() && h.error().is_none();
        if !healthy(&self.nodes.health) || !healthy(&self.pods.health) {
            return None;
        }
        let mut memo = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, usage)) = memo.as_ref()
            && at.elapsed() < fresh
        {
            return Some(usage.clone());
        }
        let usage = Arc::new(Usage::of(&self.pods.store.state()));
        *memo = Some((Instant::now(), usage.clone()));
        Some(usage)
    }

    /// CPU cores used by the pods of the workload `namespace/name`, from one PodMetrics
    /// list of the member, selected by skyfleet's labels and shared by every workload there:
    /// a list is reused for `fresh` (metrics-server itself refreshes no more often), so N
    /// workloads in any number of namespaces cost one read per member instead of N. Pods are
    /// attributed by skyfleet's labels, so two workloads with overlapping template labels
    /// never count each other's.
    pub async fn pod_cpu(
        &self,
        namespace: &str,
        name: &str,
        fresh: Duration,
        timeout: Duration,
    ) -> Result<f64, String> {
        // Workloads wait for the one read in flight instead of each making their own.
        let mut slot = self.metrics.lock().await;
        let sample = match slot.as_ref() {
            Some(s) if s.at.elapsed() < fresh => s.clone(),
            _ => {
                let result = read_pod_cpu(&self.client, timeout).await;
                let sample = MetricsSample {
                    at: Instant::now(),
                    result: result.map(Arc::new),
                };
                *slot = Some(sample.clone());
                sample
            }
        };
        drop(slot);
        sample.result.map(|by_workload| {
            by_workload
                .get(&(namespace.to_string(), name.to_string()))
                .copied()
                .unwrap_or(0.0)
        })
    }
}

/// Lists the PodMetrics of skyfleet's pods in every namespace and sums CPU per workload.
async fn read_pod_cpu(client: &kube::Client, timeout: Duration) -> Result<CpuByWorkload, String> {
    let api: Api<PodMetrics> = Api::all(client.clone());
    let selector = format!("{}={}", labels::MANAGED_BY, labels::MANAGER);
    let params = kube::api::ListParams::default().labels(&selector);
    let list = super::workload::member(timeout, api.list(&params)).await?;
    Ok(cpu_by_workload(&list.items))
}

/// CPU per workload (its namespace and name) of the pods that carry skyfleet's labels.
pub fn cpu_by_workload(pods: &[PodMetrics]) -> CpuByWorkload {
    let mut out = HashMap::new();
    for pod in pods {
        let l = pod.metadata.labels.as_ref();
        let get = |k: &str| l.and_then(|l| l.get(k)).map(String::as_str);
        let (Some(namespace), Some(name)) =
            (get(labels::WORKLOAD_NAMESPACE), get(labels::WORKLOAD_NAME))
        else {
            continue;
        };
        let cores = super::metrics_api::total_cpu(std::slice::from_ref(pod));
        *out.entry((namespace.to_string(), name.to_string()))
            .or_insert(0.0) += cores;
    }
    out
}

/// What of a Node the store keeps: its name and labels, taints and schedulability, and
/// allocatable resources. The rest (images, conditions, addresses) is most of a Node's
/// size and nothing skyfleet reads.
fn reduce_node(node: &mut Node) {
    node.metadata.managed_fields = None;
    node.metadata.annotations = None;
    let spec = node.spec.take().unwrap_or_default();
    node.spec = Some(NodeSpec {
        taints: spec.taints,
        unschedulable: spec.unschedulable,
        ..NodeSpec::default()
    });
    let allocatable = node.status.take().and_then(|s| s.allocatable);
    node.status = Some(NodeStatus {
        allocatable,
        ..NodeStatus::default()
    });
}

/// Starts a reflector of `api` whose objects pass through `reduce` before they are stored;
/// each event of the watch is then shown to `on_event`.
pub(super) fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
    reduce: impl FnMut(&mut K) + Send + 'static,
    mut on_event: impl FnMut(&watcher::Event<K>) + Send + 'static,
    tasks: &mut Vec<AbortHandle>,
) -> Watched<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let health = Arc::new(WatchHealth::default());
    let seen = health.clone();
    let kind = K::kind(&()).to_string();
    let stream = watcher(api, config)
        .backoff(RetryBackoff::default())
        .modify(reduce)
        .reflect(writer);
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut listed = false;
        while let Some(item) = stream.next().await {
            if let Ok(event) = &item {
                on_event(event);
            }
            match item {
                Ok(watcher::Event::InitDone) => {
                    listed = true;
                    seen.ok(true);
                }
                Ok(watcher::Event::Init) => {
                    listed = false;
                    seen.ok(false);
                }
                Ok(_) => seen.ok(listed),
                Err(e) => {
                    let why = sanitize(&super::registry::error_chain(&e));
                    debug!(%kind, error = %why, "member watch failed; it is retried");
                    seen.failed(why);
                }
            }
        }
    });
    tasks.push(task.abort_handle());
    Watched { store, health }
}

/// How a failed watch is retried: from 250 ms, doubling to at most [`RETRY_CAP`]. kube's
/// default backoff grows to 30 s, so a member back after an outage could wait that long to
/// be seen again, and its pool to be Ready; members are few, so retrying sooner costs little.
#[derive(Debug, Clone, Default)]
struct RetryBackoff {
    next: Option<Duration>,
}

/// The longest wait between two attempts to re-establish a member watch.
const RETRY_CAP: Duration = Duration::from_secs(5);

impl Iterator for RetryBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next.unwrap_or(Duration::from_millis(250));
        self.next = Some((delay * 2).min(RETRY_CAP));
        Some(delay)
    }
}

impl kube::runtime::utils::Backoff for RetryBackoff {
    fn reset(&mut self) {
        self.next = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::utils::Backoff;

    #[test]
    fn a_failed_watch_is_retried_within_seconds_and_from_the_start_after_success() {
        let mut b = RetryBackoff::default();
        let delays: Vec<Duration> = b.by_ref().take(8).collect();
        assert_eq!(delays[0], Duration::from_millis(250));
        assert!(delays.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*delays.last().unwrap(), RETRY_CAP);
        b.reset();
        assert_eq!(b.next(), Some(Duration::from_millis(250)));
    }

    #[test]
    fn pod_cpu_is_split_per_workload_by_skyfleets_labels() {
        let pod = |name: &str, ns: &str, cpu: &str| -> PodMetrics {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("{name}-x"), "labels": {
                    "app.kubernetes.io/managed-by": "skyfleet",
                    "skyfleet.io/workload": name,
                    "skyfleet.io/workload-namespace": ns,
                    "app": "same-for-all"
                }},
                "containers": [{"name": "app", "usage": {"cpu": cpu}}]
            }))
            .unwrap()
        };
        let pods = vec![
            pod("web", "shop", "250m"),
            pod("web", "shop", "500m"),
            pod("api", "shop", "1"),
            pod("web", "other", "7"),
        ];
        let by = cpu_by_workload(&pods);
        let of = |ns: &str, name: &str| by[&(ns.to_string(), name.to_string())];
        assert!((of("shop", "web") - 0.75).abs() < 1e-9, "{by:?}");
        assert!((of("shop", "api") - 1.0).abs() < 1e-9, "{by:?}");
        // A workload of another namespace with the same name is another workload.
        assert!((of("other", "web") - 7.0).abs() < 1e-9, "{by:?}");
        assert_eq!(by.len(), 3);
    }

    #[test]
    fn a_stored_node_keeps_only_what_placement_reads() {
        let mut node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1", "labels": {"zone": "a"}, "annotations": {"big": "x"}},
            "spec": {"podCIDR": "10.0.0.0/24", "unschedulable": true,
                     "taints": [{"key": "k", "effect": "NoSchedule"}]},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "capacity": {"cpu": "4"},
                       "images": [{"names": ["a"], "sizeBytes": 1}]}
        }))
        .unwrap();
        reduce_node(&mut node);
        let spec = node.spec.as_ref().unwrap();
        assert_eq!(spec.unschedulable, Some(true));
        assert_eq!(spec.taints.as_ref().unwrap()[0].key, "k");
        assert!(spec.pod_cidr.is_none());
        let status = node.status.as_ref().unwrap();
        assert_eq!(status.allocatable.as_ref().unwrap()["cpu"].0, "4");
        assert!(status.images.is_none() && status.capacity.is_none());
        assert!(node.metadata.annotations.is_none());
        assert_eq!(node.metadata.labels.as_ref().unwrap()["zone"], "a");
    }
}
