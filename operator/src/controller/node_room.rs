//! The room a pool's nodes have, from a member's watches of Nodes and Pods: what each node
//! has free (allocatable minus what the pods bound to it request), and where each workload's
//! pods are bound or stuck. The decision reads it as [`NodeRoom`] and plans no more replicas
//! in a pool than its nodes can run.
//!
//! Pods are kept reduced: their node, phase, `PodScheduled` condition, summed requests and,
//! for skyfleet's own, the labels that say whose they are. Succeeded and Failed pods are not
//! watched at all (they hold no room).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

use super::labels;
use super::pool::node_in_pool;
use crate::api::cloud_pool::CloudPoolSpec;
use crate::api::quantity;
use crate::decide::room::{Free, NodeRoom};

/// The field selector of the Pod watch: pods that hold room.
pub const LIVE_PODS: &str = "status.phase!=Succeeded,status.phase!=Failed";

/// The labels kept on skyfleet's pods.
const KEPT_LABELS: [&str; 4] = [
    labels::MANAGED_BY,
    labels::POOL,
    labels::WORKLOAD_NAME,
    labels::WORKLOAD_NAMESPACE,
];

/// The parts of a Pod that room is counted from. The watch deserializes only these (a full
/// `Pod` is several kilobytes in memory even once reduced: its structs hold every field of
/// the API), and [`reduce_pod`] then folds the containers into the effective requests.
#[derive(Clone, Debug, Deserialize, kube::Resource)]
#[resource(inherit = Pod)]
pub struct RoomPod {
    pub metadata: ObjectMeta,
    #[serde(default)]
    spec: Option<RoomPodSpec>,
    #[serde(default)]
    status: Option<RoomPodStatus>,
    /// Set by [`reduce_pod`]: CPU cores and memory bytes the scheduler reserves for it.
    #[serde(skip)]
    requests: (f64, f64),
    /// Set by [`reduce_pod`]: the scheduler found no node for it.
    #[serde(skip)]
    unschedulable: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoomPodSpec {
    node_name: Option<String>,
    #[serde(default)]
    containers: Option<Vec<RoomContainer>>,
    #[serde(default)]
    init_containers: Option<Vec<RoomContainer>>,
    #[serde(default)]
    overhead: Option<BTreeMap<String, Quantity>>,
}

/// A container, as far as its requests (the pod watch's and the Deployment watch's).
#[derive(Clone, Debug, Default, Deserialize)]
pub(super) struct RoomContainer {
    #[serde(default)]
    resources: Option<RoomResources>,
}

impl RoomContainer {
    /// CPU cores and memory bytes it requests.
    pub(super) fn requests(&self) -> (f64, f64) {
        let r = self.resources.as_ref().and_then(|r| r.requests.as_ref());
        let get = |k: &str| {
            r.and_then(|r| r.get(k))
                .and_then(|q| quantity::to_f64(q).ok())
                .unwrap_or(0.0)
        };
        (get("cpu"), get("memory"))
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
struct RoomResources {
    #[serde(default)]
    requests: Option<BTreeMap<String, Quantity>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct RoomPodStatus {
    phase: Option<String>,
    #[serde(default)]
    conditions: Option<Vec<RoomCondition>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct RoomCondition {
    #[serde(rename = "type")]
    type_: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    reason: Option<String>,
}

impl RoomPod {
    /// The node the pod is bound to.
    fn node(&self) -> Option<&str> {
        self.spec.as_ref().and_then(|s| s.node_name.as_deref())
    }

    fn phase(&self) -> Option<&str> {
        self.status.as_ref().and_then(|s| s.phase.as_deref())
    }
}

/// What of a pod the store keeps: its node and phase, whether it is unschedulable, its
/// effective requests (the larger of the containers' sum and the biggest init container,
/// plus the pod overhead, as the scheduler counts), and skyfleet's labels when it is
/// skyfleet's.
pub fn reduce_pod(pod: &mut RoomPod) {
    let meta = &mut pod.metadata;
    meta.managed_fields = None;
    meta.annotations = None;
    meta.owner_references = None;
    meta.finalizers = None;
    let ours = meta
        .labels
        .as_ref()
        .is_some_and(|l| l.get(labels::MANAGED_BY).map(String::as_str) == Some(labels::MANAGER));
    meta.labels = if ours {
        meta.labels.take().map(|mut l| {
            l.retain(|k, _| KEPT_LABELS.contains(&k.as_str()));
            l
        })
    } else {
        None
    };
    pod.requests = pod.spec.as_ref().map_or((0.0, 0.0), effective_requests);
    pod.spec = pod.spec.take().map(|s| RoomPodSpec {
        node_name: s.node_name,
        ..RoomPodSpec::default()
    });
    pod.unschedulable = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        });
    pod.status = pod.status.take().map(|s| RoomPodStatus {
        phase: s.phase,
        conditions: None,
    });
}

/// CPU cores and memory bytes the scheduler reserves for a pod.
fn effective_requests(spec: &RoomPodSpec) -> (f64, f64) {
    let (mut cpu, mut memory) = spec
        .containers
        .iter()
        .flatten()
        .map(RoomContainer::requests)
        .fold((0.0, 0.0), |(a, b), (c, m)| (a + c, b + m));
    for init in spec.init_containers.iter().flatten() {
        let (c, m) = init.requests();
        cpu = f64::max(cpu, c);
        memory = f64::max(memory, m);
    }
    let overhead = |k: &str| {
        spec.overhead
            .as_ref()
            .and_then(|o| o.get(k))
            .and_then(|q| quantity::to_f64(q).ok())
            .unwrap_or(0.0)
    };
    (cpu + overhead("cpu"), memory + overhead("memory"))
}

/// Where one workload's pods are in one pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placed {
    /// Bound to a node.
    pub scheduled: u32,
    /// Found no node (`PodScheduled=False`, `Unschedulable`).
    pub unschedulable: u32,
}

/// What the pods of a member use: per node, and per skyfleet workload and pool.
#[derive(Debug, Default)]
pub struct Usage {
    /// Pods, CPU cores and memory bytes requested on each node.
    by_node: HashMap<String, (u32, f64, f64)>,
    /// skyfleet's pods, keyed by (workload namespace, workload name, pool).
    by_workload: HashMap<(String, String, String), Placed>,
}

impl Usage {
    /// Tallies `pods` (reduced by [`reduce_pod`]).
    pub fn of(pods: &[Arc<RoomPod>]) -> Self {
        let mut usage = Self::default();
        for pod in pods {
            if matches!(pod.phase(), Some("Succeeded" | "Failed")) {
                continue;
            }
            let node = pod.node();
            if let Some(node) = node {
                let (cpu, memory) = pod.requests;
                let slot = usage.by_node.entry(node.to_string()).or_default();
                slot.0 += 1;
                slot.1 += cpu;
                slot.2 += memory;
            }
            let Some(l) = pod.metadata.labels.as_ref() else {
                continue;
            };
            if l.get(labels::MANAGED_BY).map(String::as_str) != Some(labels::MANAGER) {
                continue;
            }
            let (Some(ns), Some(name), Some(pool)) = (
                l.get(labels::WORKLOAD_NAMESPACE),
                l.get(labels::WORKLOAD_NAME),
                l.get(labels::POOL),
            ) else {
                continue;
            };
            let placed = usage
                .by_workload
                .entry((ns.clone(), name.clone(), pool.clone()))
                .or_default();
            if node.is_some() {
                placed.scheduled += 1;
            } else if pod.unschedulable {
                placed.unschedulable += 1;
            }
        }
        usage
    }

    /// The room of the pool `pool` (spec `spec`) for the workload `namespace/name`, over
    /// the member's `nodes`.
    pub fn room(
        &self,
        spec: &CloudPoolSpec,
        pool: &str,
        nodes: &[Arc<Node>],
        namespace: &str,
        name: &str,
    ) -> NodeRoom {
        let free = nodes
            .iter()
            .filter(|n| node_in_pool(spec, n))
            .filter_map(|n| {
                let alloc = n.status.as_ref().and_then(|s| s.allocatable.as_ref());
                let get = |k: &str| {
                    alloc
                        .and_then(|a| a.get(k))
                        .and_then(|q| quantity::to_f64(q).ok())
                        .unwrap_or(0.0)
                };
                let (pods, cpu, memory) = self
                    .by_node
                    .get(n.metadata.name.as_deref().unwrap_or_default())
                    .copied()
                    .unwrap_or_default();
                let slots =
                    (get("pods").max(0.0).min(f64::from(u32::MAX)) as u32).saturating_sub(pods);
                (slots > 0).then(|| Free {
                    pods: slots,
                    cpu: get("cpu") - cpu,
                    memory: get("memory") - memory,
                })
            })
            .collect();
        let placed = self
            .by_workload
            .get(&(namespace.to_string(), name.to_string(), pool.to_string()))
            .copied()
            .unwrap_or_default();
        NodeRoom {
            free,
            scheduled: placed.scheduled,
            unschedulable: placed.unschedulable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Arc<RoomPod> {
        let mut p: RoomPod = serde_json::from_value(v).unwrap();
        reduce_pod(&mut p);
        Arc::new(p)
    }

    fn ours(name: &str, pool: &str, node: Option<&str>, cpu: &str) -> Arc<RoomPod> {
        let mut v = json!({
            "metadata": {"name": format!("{name}-{}", node.unwrap_or("none")), "namespace": "shop",
                "labels": {"app.kubernetes.io/managed-by": "skyfleet", "skyfleet.io/pool": pool,
                    "skyfleet.io/workload": name, "skyfleet.io/workload-namespace": "shop",
                    "app": "x"}},
            "spec": {"containers": [{"name": "app", "image": "i",
                "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]},
            "status": {"phase": "Pending"}
        });
        match node {
            Some(n) => v["spec"]["nodeName"] = json!(n),
            None => {
                v["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "False",
                    "reason": "Unschedulable", "message": "0/3 nodes are available"}]);
            }
        }
        pod(v)
    }

    fn node(name: &str, pods: &str, cpu: &str) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {"pool": "a"}},
                "status": {"allocatable": {"pods": pods, "cpu": cpu, "memory": "64Gi"}}
            }))
            .unwrap(),
        )
    }

    fn spec() -> CloudPoolSpec {
        serde_json::from_value(json!({
            "provider": "aws", "region": "r", "nodeSelector": {"pool": "a"},
            "pricing": {"cpuPerHour": 0.1, "memoryGiBPerHour": 0.01}
        }))
        .unwrap()
    }

    #[test]
    fn a_reduced_pod_keeps_its_effective_requests_and_whose_it_is() {
        let p = pod(json!({
            "metadata": {"name": "p", "annotations": {"big": "x"},
                "labels": {"app.kubernetes.io/managed-by": "skyfleet", "skyfleet.io/pool": "a",
                    "app": "web"}},
            "spec": {"nodeName": "n1", "overhead": {"cpu": "100m"},
                "initContainers": [{"name": "init", "image": "i",
                    "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}],
                "containers": [
                    {"name": "a", "image": "i", "resources": {"requests": {"cpu": "500m", "memory": "3Gi"}}},
                    {"name": "b", "image": "i", "resources": {"requests": {"cpu": "500m"}}}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1",
                "conditions": [{"type": "Ready", "status": "True"},
                    {"type": "PodScheduled", "status": "True"}]}
        }));
        assert_eq!(p.node(), Some("n1"));
        assert_eq!(p.phase(), Some("Running"));
        let (cpu, memory) = p.requests;
        assert!((cpu - 2.1).abs() < 1e-9, "{cpu}");
        assert!((memory - 3.0 * quantity::GIB).abs() < 1.0, "{memory}");
        assert!(!p.unschedulable);
        let labels = p.metadata.labels.as_ref().unwrap();
        assert!(labels.contains_key(labels::POOL) && !labels.contains_key("app"));
        assert!(p.metadata.annotations.is_none());
        let spec = p.spec.as_ref().unwrap();
        assert!(spec.containers.is_none() && spec.init_containers.is_none());
    }

    #[test]
    fn another_tenants_pods_take_room_but_keep_no_labels() {
        let p = pod(json!({
            "metadata": {"name": "q", "labels": {"app": "db"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "a", "image": "i",
                "resources": {"requests": {"cpu": "3"}}}]}
        }));
        assert!(p.metadata.labels.is_none());
        let usage = Usage::of(&[p]);
        let room = usage.room(&spec(), "a", &[node("n1", "110", "4")], "shop", "web");
        assert_eq!(room.free.len(), 1);
        assert!((room.free[0].cpu - 1.0).abs() < 1e-9);
        assert_eq!(room.free[0].pods, 109);
    }

    #[test]
    fn a_pools_room_counts_the_workloads_pods_and_what_its_nodes_have_free() {
        let pods = vec![
            ours("web", "a", Some("n1"), "1"),
            ours("web", "a", Some("n1"), "1"),
            ours("web", "a", None, "1"),
            // Another workload, and the same one in another pool: not counted as this one's.
            ours("api", "a", Some("n2"), "1"),
            ours("web", "b", Some("n2"), "1"),
        ];
        let usage = Usage::of(&pods);
        let nodes = vec![
            node("n1", "3", "32"),
            node("n2", "110", "2"),
            // A full node is left out.
            node("n3", "0", "32"),
        ];
        let room = usage.room(&spec(), "a", &nodes, "shop", "web");
        assert_eq!((room.scheduled, room.unschedulable), (2, 1));
        assert_eq!(room.free.len(), 2);
        assert_eq!(room.free[0].pods, 1);
        assert!(room.free[1].cpu.abs() < 1e-9, "n2's two cores are taken");
        let shape = crate::placement::sizing::ReplicaShape {
            cpu: 1.0,
            memory: quantity::GIB,
        };
        // Two bound, one more on n1, none on n2.
        assert_eq!(room.holds(&shape), 3);
    }
}
