//! The ConfigMaps and Secrets a workload's pod template references, and the copies of them
//! skyfleet keeps in every member that runs the workload: without them its pods cannot start
//! there.
//!
//! A copy is shared by the workloads of one namespace that reference the same object (they
//! hold the same data). It is skyfleet's by its labels (manager, installation, namespace),
//! and it is kept alive by an owner reference to each Deployment there that uses it, so the
//! member's garbage collector removes it with the last of them: when a pool is left, when
//! the workload is deleted, and in a member that was down then, once it is back. Each
//! workload applies its copies with a field manager of its own, so one workload dropping a
//! reference releases only its own owner references.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::desired::{Owner, fnv1a};
use super::labels;

/// At most this many ConfigMaps and Secrets are copied for one workload: what a tenant's
/// template makes skyfleet read and write stays bounded.
pub const MAX_DEPENDENCIES: usize = 32;

/// On a member Deployment: the copies it was applied with (`ConfigMap/a,Secret/b`), so a
/// reference the template drops is found and released.
pub const LISTED: &str = "skyfleet.io/dependencies";

/// On the pod template, with `spec.dependencies.rollOnChange`: a checksum of the copies'
/// contents, so a change rolls the pods.
pub const CHECKSUM: &str = "skyfleet.io/dependencies-checksum";

/// On a copy: the object on the management cluster it was copied from (`namespace/name`).
pub const COPY_OF: &str = "skyfleet.io/copy-of";

/// Which kind of object is referenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A ConfigMap.
    ConfigMap,
    /// A Secret.
    Secret,
}

impl Kind {
    /// The Kubernetes kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConfigMap => "ConfigMap",
            Self::Secret => "Secret",
        }
    }
}

/// One object the template references by name in its own namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    /// ConfigMap or Secret.
    pub kind: Kind,
    /// Its name.
    pub name: String,
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.as_str(), self.name)
    }
}

impl Reference {
    /// Reads `ConfigMap/a` or `Secret/b` back.
    fn parse(text: &str) -> Option<Self> {
        let (kind, name) = text.split_once('/')?;
        let kind = match kind {
            "ConfigMap" => Kind::ConfigMap,
            "Secret" => Kind::Secret,
            _ => return None,
        };
        (!name.is_empty()).then(|| Self {
            kind,
            name: name.to_string(),
        })
    }
}

/// Every ConfigMap and Secret `pod` references (volumes, projected volumes, `envFrom`,
/// `env.valueFrom` of every container, `imagePullSecrets`), each with whether every reference
/// to it is `optional` (then its absence stops nothing, as in Kubernetes).
pub fn references(pod: Option<&PodSpec>) -> BTreeMap<Reference, bool> {
    let mut out = BTreeMap::new();
    let Some(pod) = pod else {
        return out;
    };
    let mut add = |kind: Kind, name: &str, optional: Option<bool>| {
        if name.is_empty() {
            return;
        }
        let optional = optional.unwrap_or(false);
        out.entry(Reference {
            kind,
            name: name.to_string(),
        })
        .and_modify(|all_optional: &mut bool| *all_optional &= optional)
        .or_insert(optional);
    };
    for v in pod.volumes.iter().flatten() {
        if let Some(c) = &v.config_map {
            add(Kind::ConfigMap, &c.name, c.optional);
        }
        if let Some(s) = &v.secret {
            add(
                Kind::Secret,
                s.secret_name.as_deref().unwrap_or_default(),
                s.optional,
            );
        }
        for source in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(c) = &source.config_map {
                add(Kind::ConfigMap, &c.name, c.optional);
            }
            if let Some(s) = &source.secret {
                add(Kind::Secret, &s.name, s.optional);
            }
        }
    }
    let ephemeral = pod
        .ephemeral_containers
        .iter()
        .flatten()
        .map(|e| Container {
            env: e.env.clone(),
            env_from: e.env_from.clone(),
            ..Default::default()
        });
    let containers: Vec<Container> = pod
        .containers
        .iter()
        .chain(pod.init_containers.iter().flatten())
        .cloned()
        .chain(ephemeral)
        .collect();
    for c in &containers {
        for from in c.env_from.iter().flatten() {
            if let Some(r) = &from.config_map_ref {
                add(Kind::ConfigMap, &r.name, r.optional);
            }
            if let Some(r) = &from.secret_ref {
                add(Kind::Secret, &r.name, r.optional);
            }
        }
        for value in c.env.iter().flatten().filter_map(|e| e.value_from.as_ref()) {
            if let Some(r) = &value.config_map_key_ref {
                add(Kind::ConfigMap, &r.name, r.optional);
            }
            if let Some(r) = &value.secret_key_ref {
                add(Kind::Secret, &r.name, r.optional);
            }
        }
    }
    for s in pod.image_pull_secrets.iter().flatten() {
        add(Kind::Secret, &s.name, None);
    }
    out
}

/// An object read from the workload's namespace on the management cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A ConfigMap.
    ConfigMap(ConfigMap),
    /// A Secret.
    Secret(Secret),
}

impl Source {
    /// What it is.
    pub fn reference(&self) -> Reference {
        let (kind, meta) = match self {
            Self::ConfigMap(c) => (Kind::ConfigMap, &c.metadata),
            Self::Secret(s) => (Kind::Secret, &s.metadata),
        };
        Reference {
            kind,
            name: meta.name.clone().unwrap_or_default(),
        }
    }
}

/// What the template references, as read for one reconcile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    /// The objects to copy, in reference order.
    pub sources: Vec<Source>,
    /// Why some required reference cannot be copied (missing, unreadable, too many): while
    /// any, nothing new is applied and nothing running is changed.
    pub missing: Vec<String>,
}

impl Resolved {
    /// `ConfigMap/a,Secret/b`: what a Deployment applied now depends on.
    pub fn listed(&self) -> String {
        let names: Vec<String> = self
            .sources
            .iter()
            .map(|s| s.reference().to_string())
            .collect();
        names.join(",")
    }

    /// A checksum of every copied key and value: it changes when any copy would.
    pub fn checksum(&self) -> String {
        let mut text = String::new();
        for s in &self.sources {
            text.push_str(&s.reference().to_string());
            text.push('\0');
            let content = match s {
                Source::ConfigMap(c) => serde_json::json!([c.data, c.binary_data]),
                Source::Secret(s) => serde_json::json!([s.type_, s.data]),
            };
            text.push_str(&content.to_string());
            text.push('\0');
        }
        format!("{:016x}", fnv1a(text.as_bytes()))
    }
}

/// Records on `deployment` which copies it runs with and, when `roll` is asked for, their
/// checksum in its pod template.
pub fn annotate(deployment: &mut Deployment, resolved: &Resolved, roll: bool) {
    let listed = resolved.listed();
    if !listed.is_empty() {
        deployment
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(LISTED.to_string(), listed);
    }
    if roll
        && !resolved.sources.is_empty()
        && let Some(spec) = deployment.spec.as_mut()
    {
        spec.template
            .metadata
            .get_or_insert_with(Default::default)
            .annotations
            .get_or_insert_with(Default::default)
            .insert(CHECKSUM.to_string(), resolved.checksum());
    }
}

/// What a live Deployment says it was applied with.
pub fn listed_on(deployment: &ObjectMeta) -> BTreeSet<Reference> {
    deployment
        .annotations
        .as_ref()
        .and_then(|a| a.get(LISTED))
        .map(|text| text.split(',').filter_map(Reference::parse).collect())
        .unwrap_or_default()
}

/// The labels of a copy: skyfleet's, its installation's and the namespace's it was copied
/// from. No workload's: workloads of one namespace share a copy.
fn copy_labels(owner: &Owner) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
        (
            labels::WORKLOAD_NAMESPACE.to_string(),
            owner.namespace.clone(),
        ),
        (labels::INSTALLATION.to_string(), owner.installation.clone()),
        (labels::COPY.to_string(), "true".to_string()),
    ])
}

/// Whether a member object is a copy this installation made from `owner`'s namespace.
pub fn is_copy(owner: &Owner, meta: &ObjectMeta) -> bool {
    let Some(l) = meta.labels.as_ref() else {
        return false;
    };
    copy_labels(owner)
        .iter()
        .all(|(k, v)| l.get(k).is_some_and(|x| x == v))
}

/// The field manager `owner`'s copies are applied with: its own, so that releasing its owner
/// references never takes another workload's.
pub fn field_manager(owner: &Owner) -> String {
    format!("{}-copy-{}", labels::FIELD_MANAGER, owner.uid)
}

/// An owner reference to a member Deployment of the workload.
pub fn owned_by(name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".to_string(),
        kind: "Deployment".to_string(),
        name: name.to_string(),
        uid: uid.to_string(),
        ..Default::default()
    }
}

fn copy_meta(name: &str, owner: &Owner, deployments: &[OwnerReference]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(owner.namespace.clone()),
        labels: Some(copy_labels(owner)),
        annotations: Some(BTreeMap::from([(
            COPY_OF.to_string(),
            format!("{}/{name}", owner.namespace),
        )])),
        owner_references: Some(deployments.to_vec()).filter(|d| !d.is_empty()),
        ..Default::default()
    }
}

/// The copy of `source` in a member, owned by `deployments` there: its data and type, with
/// none of the original's metadata but its name.
pub fn copy(source: &Source, owner: &Owner, deployments: &[OwnerReference]) -> serde_json::Value {
    let reference = source.reference();
    let metadata = copy_meta(&reference.name, owner, deployments);
    let object = match source {
        Source::ConfigMap(c) => serde_json::to_value(ConfigMap {
            metadata,
            data: c.data.clone(),
            binary_data: c.binary_data.clone(),
            immutable: None,
        }),
        Source::Secret(s) => serde_json::to_value(Secret {
            metadata,
            data: s.data.clone(),
            type_: s.type_.clone(),
            immutable: None,
            string_data: None,
        }),
    };
    with_kind(object.unwrap_or_default(), reference.kind)
}

/// Labels only: applied by `owner`'s field manager, it gives up that workload's owner
/// references and data of the copy named by `reference`.
pub fn release(reference: &Reference, owner: &Owner) -> serde_json::Value {
    let metadata = copy_meta(&reference.name, owner, &[]);
    let object = serde_json::json!({ "metadata": metadata });
    with_kind(object, reference.kind)
}

fn with_kind(mut object: serde_json::Value, kind: Kind) -> serde_json::Value {
    object["apiVersion"] = serde_json::json!("v1");
    object["kind"] = serde_json::json!(kind.as_str());
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: serde_json::Value) -> PodSpec {
        serde_json::from_value(spec).unwrap()
    }

    #[test]
    fn every_kind_of_reference_is_found_and_optional_only_when_every_use_is() {
        let spec = pod(serde_json::json!({
            "containers": [{
                "name": "app", "image": "i",
                "envFrom": [{"configMapRef": {"name": "env-cm"}}, {"secretRef": {"name": "env-s", "optional": true}}],
                "env": [
                    {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "key-cm", "key": "k"}}},
                    {"name": "B", "valueFrom": {"secretKeyRef": {"name": "key-s", "key": "k"}}},
                    {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                ]
            }],
            "initContainers": [{"name": "init", "image": "i", "envFrom": [{"secretRef": {"name": "env-s"}}]}],
            "volumes": [
                {"name": "a", "configMap": {"name": "vol-cm", "optional": true}},
                {"name": "b", "secret": {"secretName": "vol-s"}},
                {"name": "c", "projected": {"sources": [
                    {"configMap": {"name": "proj-cm"}}, {"secret": {"name": "proj-s"}},
                    {"serviceAccountToken": {"path": "t"}}
                ]}},
                {"name": "d", "emptyDir": {}}
            ],
            "imagePullSecrets": [{"name": "pull"}]
        }));
        let found: Vec<(String, bool)> = references(Some(&spec))
            .into_iter()
            .map(|(r, optional)| (r.to_string(), optional))
            .collect();
        let expected = [
            ("ConfigMap/env-cm", false),
            ("ConfigMap/key-cm", false),
            ("ConfigMap/proj-cm", false),
            ("ConfigMap/vol-cm", true),
            ("Secret/env-s", false),
            ("Secret/key-s", false),
            ("Secret/proj-s", false),
            ("Secret/pull", false),
            ("Secret/vol-s", false),
        ];
        let expected: Vec<(String, bool)> =
            expected.iter().map(|(r, o)| (r.to_string(), *o)).collect();
        assert_eq!(found, expected, "env-s is required by the init container");
        assert!(references(None).is_empty());
    }

    fn owner() -> Owner {
        Owner {
            namespace: "shop".into(),
            name: "web".into(),
            uid: "u-1".into(),
            installation: "i-1".into(),
        }
    }

    fn config(data: &str) -> Source {
        Source::ConfigMap(ConfigMap {
            metadata: ObjectMeta {
                name: Some("settings".into()),
                namespace: Some("shop".into()),
                uid: Some("mgmt-uid".into()),
                resource_version: Some("7".into()),
                labels: Some(BTreeMap::from([("team".into(), "a".into())])),
                ..Default::default()
            },
            data: Some(BTreeMap::from([("k".into(), data.into())])),
            ..Default::default()
        })
    }

    #[test]
    fn a_copy_holds_the_data_skyfleets_labels_and_its_deployments_not_the_sources_identity() {
        let o = owner();
        let copy = copy(&config("v1"), &o, &[owned_by("web-aws-1", "d-1")]);
        assert_eq!(copy["kind"], "ConfigMap");
        assert_eq!(copy["data"]["k"], "v1");
        assert_eq!(copy["metadata"]["ownerReferences"][0]["uid"], "d-1");
        assert!(copy["metadata"].get("uid").is_none());
        assert!(copy["metadata"].get("resourceVersion").is_none());
        let meta: ObjectMeta = serde_json::from_value(copy["metadata"].clone()).unwrap();
        assert!(is_copy(&o, &meta));
        let other_installation = Owner {
            installation: "i-2".into(),
            ..owner()
        };
        assert!(!is_copy(&other_installation, &meta));
        let other_namespace = Owner {
            namespace: "bank".into(),
            ..owner()
        };
        assert!(!is_copy(&other_namespace, &meta));
        assert!(!is_copy(&o, &ObjectMeta::default()), "someone else's");
        let release = release(&config("v1").reference(), &o);
        assert!(release.get("data").is_none());
        assert!(release["metadata"].get("ownerReferences").is_none());
    }

    #[test]
    fn the_checksum_follows_the_contents_and_the_listing_reads_back() {
        let a = Resolved {
            sources: vec![config("v1")],
            missing: Vec::new(),
        };
        let b = Resolved {
            sources: vec![config("v2")],
            missing: Vec::new(),
        };
        assert_ne!(a.checksum(), b.checksum());
        assert_eq!(a.checksum(), a.clone().checksum());
        let mut d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-aws-1"},
            "spec": {"selector": {}, "template": {"metadata": {}}}
        }))
        .unwrap();
        annotate(&mut d, &a, false);
        assert_eq!(
            listed_on(&d.metadata),
            BTreeSet::from([Reference {
                kind: Kind::ConfigMap,
                name: "settings".into()
            }])
        );
        let template = |d: &Deployment| {
            d.spec
                .as_ref()
                .and_then(|s| s.template.metadata.as_ref())
                .and_then(|m| m.annotations.clone())
                .unwrap_or_default()
        };
        assert!(!template(&d).contains_key(CHECKSUM), "no roll unless asked");
        annotate(&mut d, &a, true);
        assert_eq!(template(&d)[CHECKSUM], a.checksum());
    }
}
