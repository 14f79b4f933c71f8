//! skyfleet's member Deployments as the member watches keep them: only what a decision, a
//! pool probe and the progress wakes read. A full `Deployment` holds every field of the API
//! inline (its pod template alone is kilobytes even when empty), and the watches keep one
//! per workload per member: at 1 000 workloads over three members that was about 25 MB of
//! the operator's memory (heaptrack, at rest). The watch deserializes only these fields,
//! and [`reduce`] then folds the containers into the requests of one replica.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

use super::node_room::RoomContainer;
use super::{dependencies, labels};

/// The annotations kept: whose a Deployment is (from before ownership labels) and which
/// copies it runs with.
const KEPT_ANNOTATIONS: [&str; 2] = [labels::OWNER, dependencies::LISTED];

/// The condition a member sets while it refuses a Deployment's pods.
const REPLICA_FAILURE: &str = "ReplicaFailure";

/// A skyfleet Deployment in a member, reduced (see the module's doc).
#[derive(Clone, Debug, Default, Deserialize, kube::Resource)]
#[resource(inherit = Deployment)]
pub struct WatchedDeployment {
    /// Its metadata, without managed fields and with only skyfleet's annotations.
    pub metadata: ObjectMeta,
    #[serde(default)]
    spec: Option<Spec>,
    #[serde(default)]
    status: Option<Status>,
    /// Set by [`reduce`]: CPU cores and memory bytes one replica requests.
    #[serde(skip)]
    requests: (f64, f64),
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Spec {
    replicas: Option<i32>,
    #[serde(default)]
    template: Option<Template>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Template {
    #[serde(default)]
    spec: Option<PodSpec>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct PodSpec {
    #[serde(default)]
    containers: Vec<RoomContainer>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    ready_replicas: Option<i32>,
    #[serde(default)]
    conditions: Vec<Condition>,
}

/// A Deployment condition, as kept: only `ReplicaFailure` while it holds.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Condition {
    #[serde(rename = "type")]
    type_: String,
    #[serde(default)]
    status: String,
    /// Why the member refuses the pods (`FailedCreate`, …).
    #[serde(default)]
    pub reason: Option<String>,
    /// What the member said.
    #[serde(default)]
    pub message: Option<String>,
}

impl Condition {
    /// Whether it is `ReplicaFailure=True`: the member refuses the pods.
    fn refuses(&self) -> bool {
        self.type_ == REPLICA_FAILURE && self.status == "True"
    }
}

impl WatchedDeployment {
    /// The replicas it asks for.
    pub fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
    }

    /// Its Ready replicas.
    pub fn ready(&self) -> i32 {
        self.status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0)
    }

    /// The `ReplicaFailure` condition while it holds: the member refuses its pods (a quota,
    /// an admission policy).
    pub fn replica_failure(&self) -> Option<&Condition> {
        self.status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.refuses())
    }

    /// CPU cores and memory bytes one replica requests (its containers' requests summed).
    pub fn requests_per_replica(&self) -> (f64, f64) {
        self.requests
    }
}

/// What of a Deployment the store keeps: its metadata without managed fields or others'
/// annotations, its replicas, its Ready replicas, a `ReplicaFailure` while it holds, and the
/// requests of one replica.
pub fn reduce(d: &mut WatchedDeployment) {
    let meta = &mut d.metadata;
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.retain(|k, _| KEPT_ANNOTATIONS.contains(&k.as_str()));
    }
    let containers = d
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .map_or(&[][..], |p| &p.containers[..]);
    d.requests = containers
        .iter()
        .map(RoomContainer::requests)
        .fold((0.0, 0.0), |(a, b), (c, m)| (a + c, b + m));
    if let Some(s) = d.spec.as_mut() {
        s.template = None;
    }
    if let Some(s) = d.status.as_mut() {
        s.conditions.retain(Condition::refuses);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Deployment as a member serves it, with what skyfleet does not read.
    fn served() -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web-aws", "namespace": "shop", "uid": "u1", "generation": 3,
                "labels": {(labels::MANAGED_BY): labels::MANAGER},
                "annotations": {
                    (labels::OWNER): "shop/web",
                    (dependencies::LISTED): "ConfigMap/cfg",
                    "deployment.kubernetes.io/revision": "2"
                },
                "managedFields": [{"manager": "skyfleet", "operation": "Apply"}]
            },
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [
                        {"name": "app", "image": "web:1",
                         "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}}},
                        {"name": "sidecar", "image": "proxy:1",
                         "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}
                    ]}
                }
            },
            "status": {
                "replicas": 3, "readyReplicas": 2,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                     "message": "exceeded quota"}
                ]
            }
        })
    }

    #[test]
    fn a_reduced_deployment_keeps_what_decisions_read() -> Result<(), serde_json::Error> {
        let full: Deployment = serde_json::from_value(served())?;
        let mut d: WatchedDeployment = serde_json::from_value(served())?;
        reduce(&mut d);

        assert_eq!(d.replicas(), 3);
        assert_eq!(d.ready(), 2);
        let failure = d.replica_failure().map(|c| c.message.as_deref());
        assert_eq!(failure, Some(Some("exceeded quota")));
        let (cpu, memory) = d.requests_per_replica();
        assert!((cpu - 0.6).abs() < 1e-9, "{cpu}");
        assert!((memory - 576.0 * 1024.0 * 1024.0).abs() < 1.0, "{memory}");
        assert_eq!(d.metadata.uid, full.metadata.uid);
        assert_eq!(d.metadata.labels, full.metadata.labels);
        assert_eq!(d.metadata.generation, Some(3));
        let kept: Vec<&String> = d
            .metadata
            .annotations
            .iter()
            .flatten()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(kept, [dependencies::LISTED, labels::OWNER]);
        assert_eq!(d.metadata.managed_fields, None);
        assert!(d.spec.as_ref().is_some_and(|s| s.template.is_none()));
        Ok(())
    }

    #[test]
    fn a_deployment_without_spec_or_status_reads_as_nothing_asked_and_nothing_ready()
    -> Result<(), serde_json::Error> {
        let mut d: WatchedDeployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "bare", "namespace": "shop"}
        }))?;
        reduce(&mut d);
        assert_eq!((d.replicas(), d.ready()), (0, 0));
        assert_eq!(d.requests_per_replica(), (0.0, 0.0));
        assert!(d.replica_failure().is_none());
        Ok(())
    }
}
