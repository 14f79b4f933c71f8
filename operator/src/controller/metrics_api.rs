//! metrics.k8s.io, which k8s-openapi has no types for. metrics-server serves get and list
//! only (no watch), and keeps no history: the operator polls and keeps its own.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ListParams;
use kube::{Api, Resource};
use serde::{Deserialize, Serialize};

use crate::api::quantity;

/// Usage of one pod, as metrics-server reports it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
pub struct PodMetrics {
    /// The pod's metadata (name, namespace, labels).
    pub metadata: ObjectMeta,
    /// When the sample was taken.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// The window the sample averages over.
    #[serde(default)]
    pub window: Option<String>,
    /// Per-container usage.
    #[serde(default)]
    pub containers: Vec<ContainerMetrics>,
}

/// Usage of one container.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
pub struct ContainerMetrics {
    /// Container name.
    pub name: String,
    /// Usage by resource name (`cpu`, `memory`).
    #[serde(default)]
    pub usage: BTreeMap<String, Quantity>,
}

impl Resource for PodMetrics {
    type DynamicType = ();
    type Scope = kube::core::NamespaceResourceScope;
    fn kind(_: &()) -> Cow<'_, str> {
        "PodMetrics".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "metrics.k8s.io".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1beta1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "pods".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// CPU cores used by all containers of all given pods; unparsable quantities count as 0.
pub fn total_cpu(pods: &[PodMetrics]) -> f64 {
    pods.iter()
        .flat_map(|p| &p.containers)
        .filter_map(|c| c.usage.get("cpu"))
        .filter_map(|q| quantity::to_f64(q).ok())
        .sum()
}

/// CPU cores used by the pods in `namespace` matching `label_selector` in one member.
pub async fn pod_cpu(
    client: kube::Client,
    namespace: &str,
    label_selector: &str,
) -> Result<f64, kube::Error> {
    let api: Api<PodMetrics> = Api::namespaced(client, namespace);
    let list = api
        .list(&ListParams::default().labels(label_selector))
        .await?;
    Ok(total_cpu(&list.items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_cpu_over_pods_and_containers() {
        let pods: Vec<PodMetrics> = serde_json::from_value(serde_json::json!([
            {"metadata": {"name": "a"}, "containers": [
                {"name": "app", "usage": {"cpu": "150002156n", "memory": "64Mi"}},
                {"name": "sidecar", "usage": {"cpu": "50m", "memory": "16Mi"}}
            ]},
            {"metadata": {"name": "b"}, "containers": [{"name": "app", "usage": {"cpu": "1", "memory": "64Mi"}}]},
            {"metadata": {"name": "c"}, "containers": [{"name": "app", "usage": {"cpu": "garbage"}}]}
        ]))
        .unwrap();
        let total = total_cpu(&pods);
        assert!((total - 1.200002156).abs() < 1e-9, "{total}");
    }

    #[test]
    fn the_url_is_metrics_servers() {
        assert_eq!(
            PodMetrics::url_path(&(), Some("shop")),
            "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods"
        );
    }
}
