//! The API users write: `CloudPool` and `MultiCloudWorkload` (group `skyfleet.io`, `v1alpha1`),
//! and the `WorkloadHistory` the operator keeps beside each workload.
//!
//! Validation lives in the schema (types, enums, required fields) and in CEL rules
//! (`x-kubernetes-validations`) so that the API server itself rejects bad objects with a
//! message a person understands; the operator only has to judge what it alone can see.

pub mod cloud_pool;
pub mod conditions;
pub mod duration;
pub mod history;
pub mod limits;
pub mod quantity;
pub mod workload;

pub use cloud_pool::{CloudPool, CloudPoolSpec, CloudPoolStatus};
pub use workload::{MultiCloudWorkload, MultiCloudWorkloadSpec, MultiCloudWorkloadStatus};

/// The API group of every skyfleet resource.
pub const GROUP: &str = "skyfleet.io";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;

/// Most labels a selector or template may carry; the API server needs a bound to cost CEL rules.
pub const MAX_LABELS: i64 = 64;
/// Most containers a template may have, for the same reason.
pub const MAX_CONTAINERS: i64 = 64;

/// The CRDs as the API server should get them.
///
/// Two adjustments to the derived schema of the embedded pod template:
/// - its field descriptions are dropped (about 0.5 MB, as controller-gen's `maxDescLen=0`
///   does): they break client-side `kubectl apply` (annotation limit 256 KiB) and say
///   nothing `kubectl explain pod` does not. Structure and validation stay.
/// - the maps and lists our CEL rules walk get bounds, without which the API server
///   estimates the rules' cost as unbounded and refuses the CRD.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut workload = MultiCloudWorkload::crd();
    for version in &mut workload.spec.versions {
        let Some(spec) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
            .and_then(|root| child(root, "spec"))
        else {
            continue;
        };
        if let Some(template) = child(spec, "template") {
            let keep = template.description.take();
            strip_descriptions(template);
            template.description = keep;
            if let Some(labels) = child(template, "metadata").and_then(|m| child(m, "labels")) {
                bound_label_map(labels);
            }
            if let Some(containers) = child(template, "spec").and_then(|s| child(s, "containers")) {
                containers.max_items = Some(MAX_CONTAINERS);
                if let Some(JSONSchemaPropsOrArray::Schema(item)) = containers.items.as_mut() {
                    for map in ["requests", "limits"] {
                        if let Some(m) = child(item, "resources").and_then(|r| child(r, map)) {
                            m.max_properties = Some(16);
                        }
                    }
                }
            }
        }
        if let Some(selector) = child(spec, "selector") {
            if let Some(labels) = child(selector, "matchLabels") {
                bound_label_map(labels);
            }
            bound_expressions(selector);
        }
    }
    let mut pool = CloudPool::crd();
    add_root_rules(&mut pool, limits::name_rules("CloudPool"));
    add_root_rules(&mut workload, limits::name_rules("MultiCloudWorkload"));
    vec![pool, workload, history::WorkloadHistory::crd()]
}

/// Rules on the whole object (its `metadata.name`), which the derive cannot place.
fn add_root_rules(crd: &mut CustomResourceDefinition, rules: Vec<serde_json::Value>) {
    for version in &mut crd.spec.versions {
        let Some(root) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        let list = root.x_kubernetes_validations.get_or_insert_with(Vec::new);
        for rule in &rules {
            if let Ok(r) = serde_json::from_value(rule.clone()) {
                list.push(r);
            }
        }
    }
}

fn child<'a>(schema: &'a mut JSONSchemaProps, name: &str) -> Option<&'a mut JSONSchemaProps> {
    schema.properties.as_mut().and_then(|p| p.get_mut(name))
}

/// Label maps: at most [`MAX_LABELS`] entries, values of at most 63 characters (as Kubernetes
/// itself allows).
fn bound_label_map(map: &mut JSONSchemaProps) {
    map.max_properties = Some(MAX_LABELS);
    if let Some(JSONSchemaPropsOrBool::Schema(value)) = map.additional_properties.as_mut() {
        value.max_length = Some(63);
    }
}

/// Selector expressions: at most [`MAX_LABELS`], each with at most [`MAX_LABELS`] values, so
/// the rules comparing selectors have a bounded cost.
fn bound_expressions(selector: &mut JSONSchemaProps) {
    if let Some(exprs) = child(selector, "matchExpressions") {
        exprs.max_items = Some(MAX_LABELS);
        if let Some(JSONSchemaPropsOrArray::Schema(item)) = exprs.items.as_mut()
            && let Some(values) = child(item, "values")
        {
            values.max_items = Some(MAX_LABELS);
        }
    }
}

fn strip_descriptions(schema: &mut JSONSchemaProps) {
    schema.description = None;
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        strip_descriptions(child);
    }
    if let Some(items) = schema.items.as_mut() {
        match items {
            JSONSchemaPropsOrArray::Schema(s) => strip_descriptions(s),
            JSONSchemaPropsOrArray::Schemas(v) => v.iter_mut().for_each(strip_descriptions),
        }
    }
    if let Some(JSONSchemaPropsOrBool::Schema(s)) = schema.additional_properties.as_mut() {
        strip_descriptions(s);
    }
    for list in [&mut schema.all_of, &mut schema.any_of, &mut schema.one_of]
        .into_iter()
        .flatten()
    {
        list.iter_mut().for_each(strip_descriptions);
    }
}
