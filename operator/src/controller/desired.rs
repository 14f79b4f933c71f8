//! The Deployment skyfleet wants in one pool's member cluster. Pure: the same inputs always
//! give the same object, so applying it twice changes nothing.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::ResourceExt;

use super::labels;
use crate::api::{CloudPool, MultiCloudWorkload};

/// Why a member Deployment could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DesiredError {
    #[error("the MultiCloudWorkload has no namespace")]
    NoNamespace,
    #[error("the template's labels are empty and no selector is given")]
    NoSelector,
}

/// The name of a workload's Deployment in a pool: pools may share a cluster and namespace
/// (an on-demand and a spot pool), so the pool is part of the name.
pub fn deployment_name(workload: &str, pool: &str) -> String {
    let name = format!("{workload}-{pool}");
    if name.len() <= 253 {
        name
    } else {
        name[..253].trim_end_matches('-').to_string()
    }
}

/// The workload's pod selector across all pools: `spec.selector`, or the template's labels
/// when it is absent (as the CRD documents).
pub fn workload_selector(workload: &MultiCloudWorkload) -> LabelSelector {
    workload
        .spec
        .selector
        .clone()
        .unwrap_or_else(|| LabelSelector {
            match_labels: workload
                .spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone()),
            match_expressions: None,
        })
}

/// The selector of the member Deployment: the workload's selector plus the pool label, so
/// Deployments of two pools in one namespace never adopt each other's pods.
pub fn selector(workload: &MultiCloudWorkload, pool: &str) -> Result<LabelSelector, DesiredError> {
    let mut sel = workload_selector(workload);
    let mut labels = sel.match_labels.take().unwrap_or_default();
    if labels.is_empty() && sel.match_expressions.as_ref().is_none_or(Vec::is_empty) {
        return Err(DesiredError::NoSelector);
    }
    labels.insert(labels::POOL.to_string(), pool.to_string());
    sel.match_labels = Some(labels);
    Ok(sel)
}

/// Labels that tie a member object to its workload and pool.
pub fn ownership_labels(workload: &MultiCloudWorkload, pool: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
        (labels::POOL.to_string(), pool.to_string()),
        (labels::WORKLOAD_NAME.to_string(), workload.name_any()),
        (
            labels::WORKLOAD_NAMESPACE.to_string(),
            workload.namespace().unwrap_or_default(),
        ),
    ])
}

/// The Deployment for `replicas` replicas of `workload` in `pool`, with the pool's node
/// selector and tolerations injected into the pod template.
pub fn deployment(
    workload: &MultiCloudWorkload,
    pool: &CloudPool,
    replicas: i32,
) -> Result<Deployment, DesiredError> {
    let namespace = workload.namespace().ok_or(DesiredError::NoNamespace)?;
    let pool_name = pool.name_any();
    let selector = selector(workload, &pool_name)?;
    let owners = ownership_labels(workload, &pool_name);

    let mut template = workload.spec.template.clone();
    let meta = template.metadata.get_or_insert_with(Default::default);
    let pod_labels = meta.labels.get_or_insert_with(Default::default);
    pod_labels.extend(selector.match_labels.clone().unwrap_or_default());
    pod_labels.extend(owners.clone());
    let pod = template.spec.get_or_insert_with(Default::default);
    if let Some(pool_selector) = &pool.spec.node_selector {
        pod.node_selector
            .get_or_insert_with(Default::default)
            .extend(pool_selector.clone());
    }
    if let Some(tolerations) = &pool.spec.tolerations {
        let existing = pod.tolerations.get_or_insert_with(Vec::new);
        for t in tolerations {
            if !existing.contains(t) {
                existing.push(t.clone());
            }
        }
    }
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "skyfleet.io/owner".to_string(),
        format!("{namespace}/{}", workload.name_any()),
    );
    Ok(Deployment {
        metadata: ObjectMeta {
            name: Some(deployment_name(&workload.name_any(), &pool_name)),
            namespace: Some(namespace),
            labels: Some(owners),
            annotations: Some(annotations),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector,
            template,
            ..Default::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload() -> MultiCloudWorkload {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {
                "replicas": {"min": 1, "max": 10},
                "template": {
                    "metadata": {"labels": {"app": "checkout"}},
                    "spec": {
                        "containers": [{"name": "app", "image": "app:1", "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}}}],
                        "tolerations": [{"key": "dedicated", "operator": "Exists"}]
                    }
                }
            }
        }))
        .unwrap()
    }

    fn pool(name: &str, spot: bool) -> CloudPool {
        let mut spec = serde_json::json!({
            "provider": "aws", "region": "us-east-1", "pricing": {"cpuPerHour": 0.04, "memoryGiBPerHour": 0.004}
        });
        if spot {
            spec["nodeSelector"] = serde_json::json!({"eks.amazonaws.com/capacityType": "SPOT"});
            spec["tolerations"] = serde_json::json!([{"key": "spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]);
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "skyfleet.io/v1alpha1", "kind": "CloudPool", "metadata": {"name": name}, "spec": spec
        }))
        .unwrap()
    }

    #[test]
    fn two_pools_in_one_cluster_get_disjoint_deployments() {
        let w = workload();
        let od = deployment(&w, &pool("aws-od", false), 3).unwrap();
        let spot = deployment(&w, &pool("aws-spot", true), 2).unwrap();
        assert_ne!(od.metadata.name, spot.metadata.name);
        let sel = |d: &Deployment| {
            d.spec
                .as_ref()
                .unwrap()
                .selector
                .match_labels
                .clone()
                .unwrap()
        };
        assert_eq!(
            sel(&od).get(labels::POOL).map(String::as_str),
            Some("aws-od")
        );
        assert_ne!(sel(&od), sel(&spot), "selectors must not overlap");
        // Every selector label is on the pods, or the Deployment is invalid.
        for d in [&od, &spot] {
            let pod_labels = d
                .spec
                .as_ref()
                .unwrap()
                .template
                .metadata
                .as_ref()
                .unwrap()
                .labels
                .clone()
                .unwrap();
            for (k, v) in sel(d) {
                assert_eq!(pod_labels.get(&k), Some(&v));
            }
        }
        assert_eq!(od.spec.as_ref().unwrap().replicas, Some(3));
    }

    #[test]
    fn the_pool_pins_pods_to_its_node_group() {
        let d = deployment(&workload(), &pool("aws-spot", true), 2).unwrap();
        let pod = d.spec.unwrap().template.spec.unwrap();
        assert_eq!(
            pod.node_selector
                .unwrap()
                .get("eks.amazonaws.com/capacityType")
                .map(String::as_str),
            Some("SPOT")
        );
        let tolerations = pod.tolerations.unwrap();
        assert_eq!(
            tolerations.len(),
            2,
            "the workload's own toleration is kept: {tolerations:?}"
        );
        assert!(tolerations.iter().any(|t| t.key.as_deref() == Some("spot")));
    }

    #[test]
    fn building_twice_gives_the_same_object() {
        let (w, p) = (workload(), pool("gcp", false));
        assert_eq!(
            deployment(&w, &p, 4).unwrap(),
            deployment(&w, &p, 4).unwrap()
        );
    }

    #[test]
    fn ownership_is_in_labels() {
        let d = deployment(&workload(), &pool("gcp", false), 1).unwrap();
        let l = d.metadata.labels.unwrap();
        assert_eq!(
            l.get(labels::MANAGED_BY).map(String::as_str),
            Some("skyfleet")
        );
        assert_eq!(
            l.get(labels::WORKLOAD_NAME).map(String::as_str),
            Some("checkout")
        );
        assert_eq!(
            l.get(labels::WORKLOAD_NAMESPACE).map(String::as_str),
            Some("shop")
        );
        assert_eq!(d.metadata.namespace.as_deref(), Some("shop"));
    }
}
