//! The CRDs reject bad objects with a message a person understands, and accept the examples.
//!
//! CEL rules are evaluated locally with kube's CEL engine against the very schema that
//! `skyfleet crd` prints; the end-to-end suite repeats a selection against a real API server.

use std::path::PathBuf;

use kube::core::cel::{Validator, compile_schema};
use serde_json::{Value, json};
use skyfleet::api::{CloudPool, MultiCloudWorkload};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn schema_of(kind: &str) -> Value {
    let crd = skyfleet::api::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .expect("a CRD of that kind");
    let schema = crd.spec.versions[0]
        .schema
        .clone()
        .and_then(|s| s.open_api_v3_schema);
    serde_json::to_value(schema.expect("an openAPIV3Schema")).expect("schema as JSON")
}

fn examples(kind: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for file in ["cloudpools.yaml", "workloads.yaml"] {
        let text =
            std::fs::read_to_string(repo().join("crds/examples").join(file)).expect("example file");
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("examples are YAML");
        out.extend(docs.into_iter().filter(|d| d["kind"] == kind));
    }
    out
}

fn first_example(kind: &str) -> Value {
    examples(kind)
        .into_iter()
        .next()
        .expect("an example of that kind")
}

/// Validates `obj` as the API server's CEL rules would; returns the messages of all failures.
fn messages(kind: &str, obj: &Value) -> Vec<String> {
    match Validator::new().validate(&schema_of(kind), obj, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.iter().map(|e| e.message.clone()).collect(),
    }
}

/// Asserts that the example of `kind`, changed by `edit`, is rejected with `expected`.
fn rejects(kind: &str, edit: impl FnOnce(&mut Value), expected: &str) {
    let mut obj = first_example(kind);
    edit(&mut obj);
    let got = messages(kind, &obj);
    assert!(
        got.iter().any(|m| m == expected),
        "expected {expected:?} for {kind}, got {got:?}\nobject: {obj:#}"
    );
}

#[test]
fn every_cel_rule_compiles() {
    for kind in ["CloudPool", "MultiCloudWorkload"] {
        let compiled = compile_schema(&schema_of(kind));
        let errors: Vec<String> = compiled
            .compilation_errors()
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{kind}: {errors:?}");
    }
}

#[test]
fn the_examples_are_valid_and_deserialize() {
    let pools = examples("CloudPool");
    let workloads = examples("MultiCloudWorkload");
    assert_eq!(pools.len(), 4, "four example pools");
    assert_eq!(workloads.len(), 2, "two example workloads");
    let providers: std::collections::BTreeSet<String> = pools
        .iter()
        .map(|p| p["spec"]["provider"].to_string())
        .collect();
    assert_eq!(providers.len(), 3, "three providers");
    assert!(
        pools
            .iter()
            .any(|p| p["spec"]["pricing"]["capacityType"] == "Spot"),
        "one spot pool"
    );
    for p in &pools {
        assert_eq!(messages("CloudPool", p), Vec::<String>::new(), "{p:#}");
        serde_json::from_value::<CloudPool>(p.clone()).expect("pool deserializes");
    }
    for w in &workloads {
        assert_eq!(
            messages("MultiCloudWorkload", w),
            Vec::<String>::new(),
            "{w:#}"
        );
        let typed: MultiCloudWorkload =
            serde_json::from_value(w.clone()).expect("workload deserializes");
        assert!(typed.spec.replicas.min <= typed.spec.replicas.max);
    }
}

#[test]
fn defaults_are_filled_in() {
    let mut w = first_example("MultiCloudWorkload");
    w["spec"].as_object_mut().unwrap().remove("scaling");
    w["spec"].as_object_mut().unwrap().remove("placement");
    let typed: MultiCloudWorkload = serde_json::from_value(w).unwrap();
    assert_eq!(typed.spec.scaling.target_cpu_utilization_percentage, 70);
    assert_eq!(typed.spec.scaling.forecast.horizon, "30m");
    assert_eq!(typed.spec.scaling.forecast.season, "24h");
    assert_eq!(typed.spec.scaling.forecast.history, "7d");
    assert_eq!(typed.spec.scaling.forecast.quantile, 0.95);
    assert_eq!(typed.spec.scaling.scale_down_stabilization, "5m");
    assert_eq!(typed.spec.placement.redundancy.tolerate, 1);
    assert_eq!(
        typed.spec.placement.redundancy.domain,
        skyfleet::api::workload::FailureDomain::Provider
    );
    let mut p = first_example("CloudPool");
    p["spec"]["kubeconfigSecretRef"]
        .as_object_mut()
        .unwrap()
        .remove("key");
    let typed: CloudPool = serde_json::from_value(p).unwrap();
    assert_eq!(typed.spec.kubeconfig_secret_ref.unwrap().key, "kubeconfig");
    assert_eq!(
        typed.spec.pricing.capacity_type,
        skyfleet::api::cloud_pool::CapacityType::OnDemand
    );
    assert_eq!(typed.spec.pricing.replica_per_hour, 0.0);
}

// ---- CloudPool: bad objects ----

const POOL: &str = "CloudPool";
const MCW: &str = "MultiCloudWorkload";

#[test]
fn pool_provider_must_be_lowercase() {
    let msg = "provider must be a lowercase name such as aws, azure, gcp or onprem (letters, digits and '-', starting with a letter)";
    rejects(POOL, |o| o["spec"]["provider"] = json!("AWS"), msg);
    rejects(POOL, |o| o["spec"]["provider"] = json!(""), msg);
    rejects(POOL, |o| o["spec"]["provider"] = json!("9cloud"), msg);
}

#[test]
fn pool_region_must_not_be_empty() {
    rejects(
        POOL,
        |o| o["spec"]["region"] = json!(""),
        "region must be between 1 and 63 characters, e.g. us-east-1",
    );
}

#[test]
fn pool_prices_must_not_be_negative() {
    rejects(
        POOL,
        |o| o["spec"]["pricing"]["cpuPerHour"] = json!(-0.01),
        "pricing.cpuPerHour must not be negative",
    );
    rejects(
        POOL,
        |o| o["spec"]["pricing"]["memoryGiBPerHour"] = json!(-1),
        "pricing.memoryGiBPerHour must not be negative",
    );
    rejects(
        POOL,
        |o| o["spec"]["pricing"]["replicaPerHour"] = json!(-0.5),
        "pricing.replicaPerHour must not be negative",
    );
}

#[test]
fn pool_capacity_must_be_quantities() {
    rejects(
        POOL,
        |o| o["spec"]["capacity"]["cpu"] = json!("lots"),
        "capacity.cpu must be a non-negative quantity such as 64 or 500m",
    );
    rejects(
        POOL,
        |o| o["spec"]["capacity"]["memory"] = json!("-1Gi"),
        "capacity.memory must be a non-negative quantity such as 256Gi",
    );
}

#[test]
fn pool_secret_ref_must_name_a_secret() {
    rejects(
        POOL,
        |o| o["spec"]["kubeconfigSecretRef"]["name"] = json!("Member_AWS"),
        "kubeconfigSecretRef.name must be a valid Secret name (lowercase letters, digits, '-' and '.')",
    );
    rejects(
        POOL,
        |o| o["spec"]["kubeconfigSecretRef"]["namespace"] = json!(""),
        "kubeconfigSecretRef.namespace must be a valid namespace name",
    );
}

// ---- MultiCloudWorkload: bad objects ----

#[test]
fn workload_replica_bounds() {
    rejects(
        MCW,
        |o| o["spec"]["replicas"] = json!({"min": 5, "max": 3}),
        "replicas.min must not exceed replicas.max",
    );
    rejects(
        MCW,
        |o| o["spec"]["replicas"]["min"] = json!(-1),
        "replicas.min must not be negative",
    );
    rejects(
        MCW,
        |o| o["spec"]["replicas"] = json!({"min": 0, "max": 0}),
        "replicas.max must be at least 1",
    );
}

#[test]
fn workload_target_utilisation_is_a_percentage() {
    let msg = "scaling.targetCPUUtilizationPercentage must be between 1 and 100";
    rejects(
        MCW,
        |o| o["spec"]["scaling"]["targetCPUUtilizationPercentage"] = json!(0),
        msg,
    );
    rejects(
        MCW,
        |o| o["spec"]["scaling"]["targetCPUUtilizationPercentage"] = json!(150),
        msg,
    );
}

#[test]
fn workload_quantile_is_strictly_between_zero_and_one() {
    let msg = "scaling.forecast.quantile must be strictly between 0 and 1, e.g. 0.95";
    rejects(
        MCW,
        |o| o["spec"]["scaling"]["forecast"]["quantile"] = json!(1.0),
        msg,
    );
    rejects(
        MCW,
        |o| o["spec"]["scaling"]["forecast"]["quantile"] = json!(0),
        msg,
    );
}

#[test]
fn workload_durations_must_parse() {
    rejects(
        MCW,
        |o| o["spec"]["scaling"]["forecast"]["horizon"] = json!("soon"),
        "scaling.forecast.horizon must be a duration such as 30m, 1h or 1d",
    );
    rejects(
        MCW,
        |o| o["spec"]["scaling"]["forecast"]["season"] = json!("1.5h"),
        "scaling.forecast.season must be a duration such as 24h or 7d",
    );
    rejects(
        MCW,
        |o| o["spec"]["scaling"]["forecast"]["history"] = json!("7days"),
        "scaling.forecast.history must be a duration such as 7d",
    );
    rejects(
        MCW,
        |o| o["spec"]["scaling"]["scaleDownStabilization"] = json!("5 minutes"),
        "scaling.scaleDownStabilization must be a duration such as 30s, 5m or 1h",
    );
}

#[test]
fn workload_redundancy_is_bounded() {
    rejects(
        MCW,
        |o| o["spec"]["placement"]["redundancy"]["tolerate"] = json!(4),
        "placement.redundancy.tolerate must be between 0 and 3",
    );
    rejects(
        MCW,
        |o| o["spec"]["placement"]["redundancy"]["tolerate"] = json!(-1),
        "placement.redundancy.tolerate must be between 0 and 3",
    );
}

#[test]
fn workload_per_pool_bounds() {
    rejects(
        MCW,
        |o| {
            o["spec"]["placement"]["pools"] =
                json!([{"name": "aws-us-east-1", "minReplicas": 5, "maxReplicas": 2}])
        },
        "placement.pools[].minReplicas must not exceed maxReplicas",
    );
    rejects(
        MCW,
        |o| o["spec"]["placement"]["pools"] = json!([{"name": "aws-us-east-1", "minReplicas": 40}]),
        "placement.pools[].minReplicas must not exceed replicas.max",
    );
    rejects(
        MCW,
        |o| o["spec"]["placement"]["pools"] = json!([{"name": "aws-us-east-1", "maxReplicas": -2}]),
        "placement.pools[].maxReplicas must not be negative",
    );
}

#[test]
fn workload_churn_and_spread_are_not_negative() {
    rejects(
        MCW,
        |o| o["spec"]["placement"]["maxMovesPerDecision"] = json!(-1),
        "placement.maxMovesPerDecision must not be negative",
    );
    rejects(
        MCW,
        |o| o["spec"]["placement"]["spread"] = json!({"minPools": -1}),
        "placement.spread minimums must not be negative",
    );
}

#[test]
fn workload_containers_must_request_cpu_and_memory() {
    let msg = "every container in template.spec.containers must set resources.requests.cpu and resources.requests.memory: skyfleet sizes and prices replicas from them";
    rejects(
        MCW,
        |o| {
            o["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] =
                json!({"memory": "512Mi"})
        },
        msg,
    );
    rejects(
        MCW,
        |o| {
            o["spec"]["template"]["spec"]["containers"][0]
                .as_object_mut()
                .unwrap()
                .remove("resources")
                .map(drop)
                .unwrap_or(())
        },
        msg,
    );
    rejects(
        MCW,
        |o| {
            let second = json!({"name": "sidecar", "image": "envoy:1", "resources": {"requests": {"cpu": "100m"}}});
            o["spec"]["template"]["spec"]["containers"]
                .as_array_mut()
                .unwrap()
                .push(second);
        },
        msg,
    );
}

#[test]
fn workload_selector_must_match_the_template() {
    rejects(
        MCW,
        |o| o["spec"]["selector"] = json!({"matchLabels": {"app": "other"}}),
        "selector.matchLabels must match template.metadata.labels, or the Deployments would not own their pods",
    );
    rejects(
        MCW,
        |o| o["spec"]["template"]["metadata"] = json!({}),
        "template.metadata.labels must not be empty: the selector defaults to them",
    );
}

#[test]
fn a_valid_edit_is_accepted() {
    // The rules must not reject what users legitimately write.
    let mut w = first_example(MCW);
    w["spec"]["replicas"] = json!({"min": 0, "max": 1});
    w["spec"]["scaling"]["forecast"]["horizon"] = json!("1h30m");
    w["spec"]["placement"]["redundancy"]["tolerate"] = json!(0);
    w["spec"]["selector"] = json!({"matchLabels": {"app": "checkout"}});
    assert_eq!(messages(MCW, &w), Vec::<String>::new());
    let mut p = first_example(POOL);
    p["spec"]["capacity"] = json!({"cpu": "500m", "memory": 1073741824});
    p["spec"]["provider"] = json!("onprem");
    assert_eq!(messages(POOL, &p), Vec::<String>::new());
}
