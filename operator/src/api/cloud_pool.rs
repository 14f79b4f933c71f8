//! `CloudPool`: one place replicas can run — a member cluster, or one node group in it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Toleration;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A place replicas can run: where it is, how to reach it, what it costs, and how much it may take.
// clippy reads the repeated `type_ = ...` inside separate printcolumn(...) entries as
// duplicated attributes; they are not.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "skyfleet.io",
    version = "v1alpha1",
    kind = "CloudPool",
    shortname = "cpool",
    category = "skyfleet",
    status = "CloudPoolStatus",
    derive = "PartialEq",
    doc = "A place skyfleet may run replicas: a member cluster, or one node group in it, with its location, prices and capacity.",
    printcolumn(name = "Provider", type_ = "string", json_path = ".spec.provider"),
    printcolumn(name = "Region", type_ = "string", json_path = ".spec.region"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "vCPU/h",
        type_ = "number",
        json_path = ".spec.pricing.cpuPerHour"
    ),
    printcolumn(
        name = "Capacity-Type",
        type_ = "string",
        json_path = ".spec.pricing.capacityType"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".status.placedReplicas",
        priority = 1
    ),
    printcolumn(
        name = "Version",
        type_ = "string",
        json_path = ".status.kubernetesVersion",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct CloudPoolSpec {
    /// Cloud provider: aws, azure, gcp, onprem or any lowercase name. Redundancy by
    /// provider counts pools with the same provider as one failure domain.
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.matches('^[a-z][a-z0-9-]{0,62}$')",
        "message": "provider must be a lowercase name such as aws, azure, gcp or onprem (letters, digits and '-', starting with a letter)"
    }]))]
    pub provider: String,
    /// Region within the provider, e.g. us-east-1. Pools with the same provider and region
    /// form one region failure domain.
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "size(self) > 0 && size(self) <= 63",
        "message": "region must be between 1 and 63 characters, e.g. us-east-1"
    }]))]
    pub region: String,
    /// Zone within the region, if the pool is pinned to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The Secret holding a kubeconfig for the member cluster. Absent means the management
    /// cluster itself. The kubeconfig must be self-contained: no exec plugins, auth
    /// providers or file paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig_secret_ref: Option<KubeconfigSecretRef>,
    /// Node labels that pin replicas to this pool's node group; injected into the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Tolerations injected into the pods so they can land on this pool's (tainted) nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// What a replica costs here per hour.
    pub pricing: Pricing,
    /// The most that skyfleet workloads together may request in this pool. Absent means no
    /// limit beyond what the nodes offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<PoolCapacity>,
    /// Drain the pool on purpose: nothing new is placed here and its replicas move elsewhere.
    #[serde(default)]
    pub unschedulable: bool,
    /// The Pod Security Admission level of the namespaces skyfleet creates in the member
    /// (`baseline` when absent). A namespace that already exists keeps its own labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security: Option<PodSecurity>,
    /// Which management-cluster namespaces may place workloads here, by their labels. Absent
    /// means every namespace; a workload in a namespace it does not select is not placed
    /// here, and says so in a condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_namespaces: Option<NamespaceSelector>,
    /// How users reach the workloads of this pool, for the traffic split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<PoolTraffic>,
}

/// Where users reach a pool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolTraffic {
    /// The pool's ingress address: a DNS name or an IP address, shown beside the pool's
    /// weight in `status.traffic` and the target of its DNS record. Absent: the address the
    /// workload's LoadBalancer Service got in the member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.matches('^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$')",
        "message": "traffic.endpoint must be a DNS name or an IP address"
    }]))]
    pub endpoint: Option<String>,
    /// The ExternalDNS provider-specific property that carries this pool's weight in its
    /// DNS record, e.g. `aws/weight`. Absent: the operator's `--dns-weight-property`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.matches('^[A-Za-z0-9]([A-Za-z0-9./_-]*[A-Za-z0-9])?$')",
        "message": "traffic.weightProperty must be a provider-specific property name such as aws/weight"
    }]))]
    pub weight_property: Option<String>,
}

/// Pod Security Admission for the namespaces skyfleet creates in a member.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSecurity {
    /// The level enforced, warned about and audited: `baseline` or `restricted`.
    /// (`privileged` is not offered: skyfleet never opens a member wider than baseline.)
    #[serde(default)]
    pub enforce: PodSecurityLevel,
}

/// A Pod Security Standard level.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PodSecurityLevel {
    /// Prevents known privilege escalations; runs most workloads unchanged.
    #[default]
    Baseline,
    /// Current pod-hardening best practice: non-root, no capabilities, a seccomp profile.
    Restricted,
}

impl PodSecurityLevel {
    /// The value of the `pod-security.kubernetes.io/*` labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Restricted => "restricted",
        }
    }
}

/// Management-cluster namespaces, selected by their labels (`matchLabels` all hold).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    /// Labels the namespace must carry, e.g. `{team: payments}`; `kubernetes.io/metadata.name`
    /// selects namespaces by name.
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.size() > 0 && self.size() <= 16",
        "message": "allowedNamespaces.matchLabels needs between 1 and 16 labels"
    }]))]
    pub match_labels: BTreeMap<String, String>,
}

impl NamespaceSelector {
    /// Whether a namespace with `labels` is selected.
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    }

    /// The rule, as a person reads it: `team=payments,tier=prod`.
    pub fn describe(&self) -> String {
        self.match_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Where a member cluster's kubeconfig is kept.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeconfigSecretRef {
    /// Name of the Secret.
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$') && size(self) <= 253",
        "message": "kubeconfigSecretRef.name must be a valid Secret name (lowercase letters, digits, '-' and '.')"
    }]))]
    pub name: String,
    /// Namespace of the Secret; the operator reads Secrets only in the namespace it is given.
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(self) <= 63",
        "message": "kubeconfigSecretRef.namespace must be a valid namespace name"
    }]))]
    pub namespace: String,
    /// Key in the Secret's data that holds the kubeconfig.
    #[serde(default = "default_kubeconfig_key")]
    pub key: String,
}

fn default_kubeconfig_key() -> String {
    "kubeconfig".to_string()
}

/// Prices, in any one currency used consistently across pools.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pricing {
    /// Price of one vCPU for one hour.
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self >= 0.0", "message": "pricing.cpuPerHour must not be negative"
    }]))]
    pub cpu_per_hour: f64,
    /// Price of one GiB of memory for one hour.
    #[serde(rename = "memoryGiBPerHour")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self >= 0.0", "message": "pricing.memoryGiBPerHour must not be negative"
    }]))]
    pub memory_gib_per_hour: f64,
    /// A flat price per replica per hour (licences, per-pod fees), on top of CPU and memory.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self >= 0.0", "message": "pricing.replicaPerHour must not be negative"
    }]))]
    pub replica_per_hour: f64,
    /// Whether capacity can be taken back by the provider (Spot) or not (OnDemand).
    #[serde(default)]
    pub capacity_type: CapacityType,
}

/// How firmly the provider holds the capacity.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum CapacityType {
    /// Held until released.
    #[default]
    OnDemand,
    /// Cheaper, but may be reclaimed by the provider at short notice.
    Spot,
}

/// A limit on what skyfleet workloads may request in a pool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolCapacity {
    /// CPU, e.g. "64" or "500m".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "isQuantity(string(self)) && !string(self).startsWith('-')",
        "message": "capacity.cpu must be a non-negative quantity such as 64 or 500m"
    }]))]
    pub cpu: Option<Quantity>,
    /// Memory, e.g. "256Gi".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "isQuantity(string(self)) && !string(self).startsWith('-')",
        "message": "capacity.memory must be a non-negative quantity such as 256Gi"
    }]))]
    pub memory: Option<Quantity>,
}

/// What the operator last saw of the pool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudPoolStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, with the reason when the pool is not (unreachable, bad kubeconfig, drained).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Kubernetes version the member's API server reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// What the pool's matching nodes offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocatable: Option<ResourceAmounts>,
    /// What skyfleet workloads request in the pool now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<ResourceAmounts>,
    /// Replicas skyfleet has placed here, over all workloads.
    #[serde(default)]
    pub placed_replicas: i32,
    /// When the member last answered a probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<Time>,
}

/// CPU and memory as quantities.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ResourceAmounts {
    /// CPU.
    pub cpu: Quantity,
    /// Memory.
    pub memory: Quantity,
}
