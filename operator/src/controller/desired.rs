//! The Deployment skyfleet wants in one pool's member cluster, its name, and whether a
//! Deployment found in a member is skyfleet's to touch. Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
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

/// Who owns a member object: the workload (namespace, name, UID) and the installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The workload's namespace.
    pub namespace: String,
    /// The workload's name.
    pub name: String,
    /// The workload's UID.
    pub uid: String,
    /// The installation's id.
    pub installation: String,
}

impl Owner {
    /// The owner of `workload`'s member objects under `installation`.
    pub fn of(workload: &MultiCloudWorkload, installation: &str) -> Self {
        Self {
            namespace: workload.namespace().unwrap_or_default(),
            name: workload.name_any(),
            uid: workload.uid().unwrap_or_default(),
            installation: installation.to_string(),
        }
    }

    /// The label selector of everything that names this workload in a member (its pods and
    /// Deployments, including those made before UIDs were labelled).
    pub fn selector(&self) -> String {
        format!(
            "{}={},{}={},{}={}",
            labels::MANAGED_BY,
            labels::MANAGER,
            labels::WORKLOAD_NAME,
            self.name,
            labels::WORKLOAD_NAMESPACE,
            self.namespace
        )
    }

    /// Whether `d` is this owner's to change or delete: it carries skyfleet's labels for this
    /// workload, and its UID and installation labels match (a Deployment made before those
    /// labels existed must also carry the owner annotation; it is adopted by the next apply).
    pub fn owns(&self, d: &Deployment) -> bool {
        self.owns_meta(&d.metadata)
    }

    /// [`owns`](Self::owns) for any member object's metadata.
    pub fn owns_meta(&self, m: &ObjectMeta) -> bool {
        let empty = BTreeMap::new();
        let l = m.labels.as_ref().unwrap_or(&empty);
        let is = |k: &str, v: &str| l.get(k).map(String::as_str) == Some(v);
        if !(is(labels::MANAGED_BY, labels::MANAGER)
            && is(labels::WORKLOAD_NAME, &self.name)
            && is(labels::WORKLOAD_NAMESPACE, &self.namespace))
        {
            return false;
        }
        match (l.get(labels::WORKLOAD_UID), l.get(labels::INSTALLATION)) {
            (Some(uid), Some(inst)) => uid == &self.uid && inst == &self.installation,
            (None, None) => {
                m.annotations
                    .as_ref()
                    .and_then(|a| a.get(labels::OWNER))
                    .map(String::as_str)
                    == Some(&format!("{}/{}", self.namespace, self.name))
            }
            _ => false,
        }
    }
}

/// The name of a new Deployment for a workload in a pool. Pools may share a cluster and
/// namespace (an on-demand and a spot pool), so the pool is part of the name; a hash of
/// both names keeps `web` + `aws-prod` apart from `web-aws` + `prod`. At most 63
/// characters, so the name also fits where a label value or a hostname is needed.
pub fn deployment_name(workload: &str, pool: &str) -> String {
    let hash = fnv1a(format!("{workload}\0{pool}").as_bytes());
    let suffix = format!("{:08x}", hash as u32);
    let stem: String = format!("{workload}-{pool}").chars().take(63 - 9).collect();
    let stem = stem.trim_end_matches(['-', '.']);
    format!("{stem}-{suffix}")
}

/// FNV-1a, 64 bits: a stable hash (std's hasher may change between Rust releases, and the
/// name must not).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
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

/// Labels that tie a member pod to its workload and pool (the same as skyfleet has always
/// set, so a pod template never changes on upgrade).
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

/// The Deployment named `name` for `replicas` replicas of `workload` in `pool`, owned by
/// `owner`, with the pool's node selector and tolerations injected into the pod template.
pub fn deployment(
    workload: &MultiCloudWorkload,
    owner: &Owner,
    pool: &CloudPool,
    name: &str,
    replicas: i32,
) -> Result<Deployment, DesiredError> {
    let namespace = workload.namespace().ok_or(DesiredError::NoNamespace)?;
    let pool_name = pool.name_any();
    let selector = selector(workload, &pool_name)?;
    let owners = ownership_labels(workload, &pool_name);
    let mut deployment_labels = owners.clone();
    deployment_labels.insert(labels::WORKLOAD_UID.to_string(), owner.uid.clone());
    deployment_labels.insert(labels::INSTALLATION.to_string(), owner.installation.clone());

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
        labels::OWNER.to_string(),
        format!("{namespace}/{}", workload.name_any()),
    );
    Ok(Deployment {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace),
            labels: Some(deployment_labels),
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

/// The Service of `workload` in one member cluster, per `spec.service`: named as the
/// workload, so clients there reach it at `<name>.<namespace>.svc`, and selecting its pods in
/// every pool of that cluster by skyfleet's labels (never by the template's, which another
/// workload may share). None when the spec asks for no Service.
pub fn service(workload: &MultiCloudWorkload, owner: &Owner) -> Option<Service> {
    let spec = workload.spec.service.as_ref()?;
    let mut object_labels = BTreeMap::from([
        (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
        (labels::WORKLOAD_NAME.to_string(), owner.name.clone()),
        (
            labels::WORKLOAD_NAMESPACE.to_string(),
            owner.namespace.clone(),
        ),
    ]);
    let selector = object_labels.clone();
    object_labels.insert(labels::WORKLOAD_UID.to_string(), owner.uid.clone());
    object_labels.insert(labels::INSTALLATION.to_string(), owner.installation.clone());
    let mut annotations = spec.annotations.clone();
    annotations.insert(
        labels::OWNER.to_string(),
        format!("{}/{}", owner.namespace, owner.name),
    );
    let ports = spec
        .ports
        .iter()
        .map(|p| ServicePort {
            name: p.name.clone(),
            port: p.port,
            target_port: Some(IntOrString::Int(p.target_port.unwrap_or(p.port))),
            protocol: Some(p.protocol.clone()),
            ..Default::default()
        })
        .collect();
    Some(Service {
        metadata: ObjectMeta {
            name: Some(owner.name.clone()),
            namespace: Some(owner.namespace.clone()),
            labels: Some(object_labels),
            annotations: Some(annotations),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some(spec.type_.as_str().to_string()),
            selector: Some(selector),
            ports: Some(ports),
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
            "metadata": {"name": "checkout", "namespace": "shop", "uid": "u-1"},
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

    fn owner() -> Owner {
        Owner::of(&workload(), "inst-a")
    }

    fn build(p: &CloudPool, replicas: i32) -> Deployment {
        let name = deployment_name("checkout", &p.name_any());
        deployment(&workload(), &owner(), p, &name, replicas).unwrap()
    }

    #[test]
    fn the_service_selects_the_workloads_pods_by_skyfleets_labels_and_is_owned() {
        let mut w = workload();
        assert!(
            service(&w, &owner()).is_none(),
            "no spec.service, no Service"
        );
        w.spec.service = Some(
            serde_json::from_value(serde_json::json!({
                "ports": [{"port": 80, "targetPort": 8080}], "annotations": {"a": "b"}
            }))
            .unwrap(),
        );
        let svc = service(&w, &owner()).unwrap();
        assert_eq!(svc.metadata.name.as_deref(), Some("checkout"));
        let sel = svc.spec.as_ref().unwrap().selector.clone().unwrap();
        let pod = build(&pool("aws-od", false), 1)
            .spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .labels
            .unwrap();
        assert!(
            sel.iter().all(|(k, v)| pod.get(k) == Some(v)),
            "every pod of the workload matches: {sel:?} in {pod:?}"
        );
        assert!(
            !sel.contains_key("app"),
            "not the template's labels: {sel:?}"
        );
        assert!(!sel.contains_key(labels::POOL), "every pool of the cluster");
        assert!(owner().owns_meta(&svc.metadata));
        assert!(!Owner::of(&workload(), "inst-b").owns_meta(&svc.metadata));
        let port = &svc.spec.unwrap().ports.unwrap()[0];
        assert_eq!(port.target_port, Some(IntOrString::Int(8080)));
        assert_eq!(port.protocol.as_deref(), Some("TCP"));
    }

    #[test]
    fn two_pools_in_one_cluster_get_disjoint_deployments() {
        let od = build(&pool("aws-od", false), 3);
        let spot = build(&pool("aws-spot", true), 2);
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
        let d = build(&pool("aws-spot", true), 2);
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
    fn names_never_collide_and_fit_a_label_value() {
        assert_ne!(
            deployment_name("web", "aws-prod"),
            deployment_name("web-aws", "prod")
        );
        assert!(deployment_name("web", "aws-prod").starts_with("web-aws-prod-"));
        let long = deployment_name(&"w".repeat(200), &"p".repeat(200));
        assert_eq!(long.len(), 63);
        assert_ne!(long, deployment_name(&"w".repeat(200), &"p".repeat(199)));
        // Stable across releases: a name once given must be found again.
        assert_eq!(deployment_name("web", "aws"), "web-aws-088eaf50");
    }

    #[test]
    fn only_this_workloads_deployments_of_this_installation_are_owned() {
        let mine = build(&pool("gcp", false), 1);
        let o = owner();
        assert!(o.owns(&mine));
        let other_uid = Owner {
            uid: "u-2".into(),
            ..o.clone()
        };
        assert!(
            !other_uid.owns(&mine),
            "a workload of the same name recreated"
        );
        let other_install = Owner {
            installation: "inst-b".into(),
            ..o.clone()
        };
        assert!(!other_install.owns(&mine), "another management cluster");
        let mut foreign = mine.clone();
        foreign.metadata.labels = Some(BTreeMap::from([(
            "app".to_string(),
            "checkout".to_string(),
        )]));
        assert!(!o.owns(&foreign), "a Deployment someone else made");
        // Made by an older skyfleet: no UID or installation label, the owner annotation.
        let mut legacy = mine.clone();
        let l = legacy.metadata.labels.as_mut().unwrap();
        l.remove(labels::WORKLOAD_UID);
        l.remove(labels::INSTALLATION);
        assert!(o.owns(&legacy));
        legacy.metadata.annotations = None;
        assert!(!o.owns(&legacy));
    }

    #[test]
    fn ownership_is_in_labels() {
        let d = build(&pool("gcp", false), 1);
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
        assert_eq!(l.get(labels::WORKLOAD_UID).map(String::as_str), Some("u-1"));
        assert_eq!(
            l.get(labels::INSTALLATION).map(String::as_str),
            Some("inst-a")
        );
        assert_eq!(d.metadata.namespace.as_deref(), Some("shop"));
        let pod_labels = d.spec.unwrap().template.metadata.unwrap().labels.unwrap();
        assert!(
            !pod_labels.contains_key(labels::WORKLOAD_UID),
            "pods keep the labels they always had: an upgrade rolls nothing"
        );
    }
}
