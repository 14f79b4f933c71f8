//! The CRDs reject bad objects with a message a person understands, and accept the examples.
//!
//! CEL rules are evaluated locally with kube's CEL engine against the very schema that
//! `skyfleet crd` prints; the end-to-end suite repeats a selection against a real API server.

use std::path::PathBuf;

use kube::core::cel::{Validator, compile_schema};
use serde_json::{Value, json};
use skyfleet::api::{CloudPool, MultiCloudWorkload, limits};

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

/// What the operator's own checks (which must not trust the API server) say of `obj`.
fn rust_messages(kind: &str, obj: &Value) -> Vec<String> {
    let name = obj["metadata"]["name"].as_str();
    match kind {
        "MultiCloudWorkload" => {
            let typed: MultiCloudWorkload =
                serde_json::from_value(obj.clone()).expect("the edited workload deserializes");
            limits::check_workload(name, &typed.spec)
        }
        _ => name.and_then(limits::check_pool_name).into_iter().collect(),
    }
}

/// Messages of rules only the API server checks (the operator judges these itself, with its
/// own errors, when it sizes replicas).
const ONLY_CEL: &[&str] = &[
    "every container in template.spec.containers must set resources.requests.cpu and resources.requests.memory: skyfleet sizes and prices replicas from them",
    // An unknown value does not deserialize, so the operator never sees one.
    "placement.redundancy.spot must be Ignore (the default) or Tolerate",
];

/// Whether the operator's Rust checks mirror the rule that gives `message`.
fn mirrored(kind: &str, message: &str) -> bool {
    (kind == "MultiCloudWorkload" && !ONLY_CEL.contains(&message))
        || message.starts_with("metadata.name")
}

/// Asserts that the example of `kind`, changed by `edit`, is rejected with `expected`, by the
/// CRD's CEL rules and (where the operator mirrors the rule) by the operator's own checks.
fn rejects(kind: &str, edit: impl FnOnce(&mut Value), expected: &str) {
    let mut obj = first_example(kind);
    edit(&mut obj);
    let got = messages(kind, &obj);
    assert!(
        got.iter().any(|m| m == expected),
        "expected {expected:?} for {kind}, got {got:?}\nobject: {obj:#}"
    );
    if mirrored(kind, expected) {
        let rust = rust_messages(kind, &obj);
        assert!(
            rust.iter().any(|m| m == expected),
            "the operator's checks must refuse what the CRD refuses: expected {expected:?}, got {rust:?}\nobject: {obj:#}"
        );
    }
}

/// Asserts that the example of `kind`, changed by `edit`, is accepted by CEL and by the
/// operator's checks.
fn accepts(kind: &str, edit: impl FnOnce(&mut Value)) {
    let mut obj = first_example(kind);
    edit(&mut obj);
    assert_eq!(messages(kind, &obj), Vec::<String>::new(), "{obj:#}");
    assert_eq!(rust_messages(kind, &obj), Vec::<String>::new(), "{obj:#}");
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
        assert_eq!(rust_messages(MCW, w), Vec::<String>::new(), "{w:#}");
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
    assert_eq!(
        typed.spec.placement.redundancy.spot,
        skyfleet::api::workload::SpotLoss::Ignore
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
fn workload_burst_headroom_is_a_bounded_percentage() {
    let msg = "scaling.burstHeadroomPercent must be between 0 and 400";
    for bad in [-1, 401] {
        rejects(
            MCW,
            |o| o["spec"]["scaling"]["burstHeadroomPercent"] = json!(bad),
            msg,
        );
    }
    accepts(MCW, |o| {
        o["spec"]["scaling"]["burstHeadroomPercent"] = json!(0)
    });
}

#[test]
fn workload_budget_is_a_price_per_hour_from_zero_to_a_billion() {
    let msg = "budget.costPerHour must be a price per hour between 0 and 1e9, in the currency of the CloudPools' pricing";
    for bad in [json!(-0.01), json!(2e9)] {
        rejects(
            MCW,
            |o| o["spec"]["budget"] = json!({"costPerHour": bad}),
            msg,
        );
    }
    accepts(MCW, |o| o["spec"]["budget"] = json!({"costPerHour": 0}));
    accepts(MCW, |o| o["spec"]["budget"] = json!({"costPerHour": 12.5}));
}

#[test]
fn workload_traffic_damping_is_bounded_and_pool_endpoint_is_a_host() {
    for bad in [-1, 101] {
        rejects(
            MCW,
            |o| o["spec"]["traffic"] = json!({"minWeightChange": bad}),
            "traffic.minWeightChange must be between 0 and 100 points",
        );
    }
    rejects(
        MCW,
        |o| o["spec"]["traffic"] = json!({"updatePeriod": "often"}),
        "traffic.updatePeriod must be a duration such as 30s, 1m or 5m",
    );
    rejects(
        MCW,
        |o| o["spec"]["traffic"] = json!({"updatePeriod": "2h"}),
        "traffic.updatePeriod must be at most 1h",
    );
    accepts(MCW, |o| {
        o["spec"]["traffic"] = json!({"minWeightChange": 0, "updatePeriod": "0s"})
    });
    for bad in [
        "http://ingress.example.com",
        "ingress.example.com/",
        "-x",
        "",
    ] {
        rejects(
            POOL,
            |o| o["spec"]["traffic"] = json!({"endpoint": bad}),
            "traffic.endpoint must be a DNS name or an IP address",
        );
    }
    for good in ["ingress.example.com", "203.0.113.7", "2001:db8::1"] {
        accepts(POOL, |o| o["spec"]["traffic"] = json!({"endpoint": good}));
    }
}

#[test]
fn workload_dns_is_a_name_ttl_and_record_type_and_pool_weight_property_a_name() {
    for bad in [
        "Shop.example.com",
        "shop",
        "shop..example.com",
        "-shop.example.com",
        "",
    ] {
        rejects(
            MCW,
            |o| o["spec"]["traffic"] = json!({"dns": {"hostname": bad}}),
            "traffic.dns.hostname must be a lower-case DNS name such as shop.example.com",
        );
    }
    for bad in [0, 86401] {
        rejects(
            MCW,
            |o| o["spec"]["traffic"] = json!({"dns": {"hostname": "shop.example.com", "ttl": bad}}),
            "traffic.dns.ttl must be between 1 and 86400 seconds",
        );
    }
    accepts(
        MCW,
        |o| {
            o["spec"]["traffic"] =
                json!({"dns": {"hostname": "shop.example.com", "ttl": 30, "recordType": "CNAME"}})
        },
    );
    rejects(
        POOL,
        |o| o["spec"]["traffic"] = json!({"weightProperty": "aws weight"}),
        "traffic.weightProperty must be a provider-specific property name such as aws/weight",
    );
    accepts(POOL, |o| {
        o["spec"]["traffic"] = json!({"weightProperty": "webhook/weight"})
    });
}

#[test]
fn workload_service_ports_are_named_unique_and_in_range() {
    let svc = |ports: Value| json!({"ports": ports});
    for (ports, msg) in [
        (
            json!([{"port": 80}, {"port": 81}]),
            "service.ports must each have a name when there is more than one",
        ),
        (
            json!([{"port": 0}]),
            "service.ports[].port must be between 1 and 65535",
        ),
        (
            json!([{"port": 80, "targetPort": 70000}]),
            "service.ports[].targetPort must be between 1 and 65535",
        ),
        (
            json!([{"port": 80, "protocol": "HTTP"}]),
            "service.ports[].protocol must be TCP, UDP or SCTP",
        ),
        (
            json!([{"name": "Web", "port": 80}]),
            "service.ports[].name must be a lowercase DNS label",
        ),
    ] {
        rejects(MCW, |o| o["spec"]["service"] = svc(ports), msg);
    }
    accepts(MCW, |o| {
        o["spec"]["service"] = json!({"type": "LoadBalancer", "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53}
        ]})
    });
}

#[test]
fn workload_startup_is_a_duration_of_at_most_an_hour() {
    rejects(
        MCW,
        |o| o["spec"]["scaling"]["startup"] = json!("soon"),
        "scaling.startup must be a duration such as 30s, 2m or 10m",
    );
    rejects(
        MCW,
        |o| o["spec"]["scaling"]["startup"] = json!("61m"),
        "scaling.startup must be at most 1h",
    );
    accepts(MCW, |o| o["spec"]["scaling"]["startup"] = json!("90s"));
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
fn workload_spot_budget_is_ignore_or_tolerate() {
    for bad in ["tolerate", "Yes", ""] {
        rejects(
            MCW,
            |o| o["spec"]["placement"]["redundancy"]["spot"] = json!(bad),
            "placement.redundancy.spot must be Ignore (the default) or Tolerate",
        );
    }
    for good in ["Ignore", "Tolerate"] {
        accepts(MCW, |o| {
            o["spec"]["placement"]["redundancy"]["spot"] = json!(good)
        });
    }
    let mut w = first_example(MCW);
    w["spec"]["placement"]["redundancy"]["spot"] = json!("Tolerate");
    let typed: MultiCloudWorkload = serde_json::from_value(w).unwrap();
    assert_eq!(
        typed.spec.placement.redundancy.spot,
        skyfleet::api::workload::SpotLoss::Tolerate
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
        "placement.maxMovesPerDecision must be between 0 and 10000",
    );
    rejects(
        MCW,
        |o| o["spec"]["placement"]["spread"] = json!({"minPools": -1}),
        "placement.spread minimums (minPools, minProviders, minRegions) must be between 0 and 64",
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

// ---- Limits: what a tenant may ask for is bounded (operator/src/api/limits.rs) ----

/// Sets a duration field of the example workload: `scaling.forecast.<field>`, or
/// `scaling.scaleDownStabilization`.
fn set_duration(o: &mut Value, field: &str, text: &str) {
    if field == "scaleDownStabilization" {
        o["spec"]["scaling"][field] = json!(text);
    } else {
        o["spec"]["scaling"]["forecast"][field] = json!(text);
    }
}

#[test]
fn replicas_max_is_bounded() {
    rejects(
        MCW,
        |o| o["spec"]["replicas"]["max"] = json!(10_001),
        "replicas.max must be at most 10000",
    );
    accepts(MCW, |o| o["spec"]["replicas"]["max"] = json!(10_000));
    rejects(
        MCW,
        |o| {
            o["spec"]["placement"]["pools"] =
                json!([{"name": "aws-us-east-1", "maxReplicas": 10_001}])
        },
        "placement.pools[].maxReplicas must be at most 10000",
    );
    accepts(MCW, |o| {
        o["spec"]["placement"]["pools"] = json!([{"name": "aws-us-east-1", "maxReplicas": 10_000}])
    });
}

#[test]
fn durations_are_bounded() {
    // (field, the longest allowed, just over it in another spelling, its message)
    let cases = [
        (
            "history",
            "90d",
            "2160h1s",
            "scaling.forecast.history must be at most 90d",
        ),
        (
            "season",
            "14d",
            "336h1s",
            "scaling.forecast.season must be at most 14d",
        ),
        (
            "horizon",
            "24h",
            "1d1s",
            "scaling.forecast.horizon must be at most 24h",
        ),
        (
            "scaleDownStabilization",
            "24h",
            "1441m",
            "scaling.scaleDownStabilization must be at most 24h",
        ),
    ];
    for (field, at_limit, over, message) in cases {
        rejects(
            MCW,
            |o| {
                set_duration(o, field, over);
                // Keep the cross-field rules out of the way.
                if field != "history" && field != "scaleDownStabilization" {
                    set_duration(o, "history", "90d");
                }
            },
            message,
        );
        accepts(MCW, |o| {
            set_duration(o, "history", "90d");
            set_duration(o, field, at_limit);
            if field == "history" {
                set_duration(o, "season", "14d");
            }
        });
    }
    // Numbers too long to be read safely are over the limit, not an overflow.
    rejects(
        MCW,
        |o| set_duration(o, "history", "99999999999999999999d"),
        "scaling.forecast.history must be at most 90d",
    );
    rejects(
        MCW,
        |o| set_duration(o, "horizon", "1000000000s"),
        "scaling.forecast.horizon must be at most 24h",
    );
}

#[test]
fn durations_must_not_be_zero() {
    for (field, message) in [
        ("history", "scaling.forecast.history must be longer than 0s"),
        ("season", "scaling.forecast.season must be longer than 0s"),
        ("horizon", "scaling.forecast.horizon must be longer than 0s"),
    ] {
        rejects(MCW, |o| set_duration(o, field, "0s"), message);
        rejects(MCW, |o| set_duration(o, field, "0h0m"), message);
    }
    accepts(MCW, |o| set_duration(o, "horizon", "1s"));
    // No stabilisation at all is a legitimate choice.
    accepts(MCW, |o| set_duration(o, "scaleDownStabilization", "0s"));
}

#[test]
fn season_and_horizon_fit_in_the_history() {
    rejects(
        MCW,
        |o| {
            set_duration(o, "history", "1d");
            set_duration(o, "season", "1d1s");
        },
        "scaling.forecast.season must not be longer than scaling.forecast.history",
    );
    accepts(MCW, |o| {
        set_duration(o, "history", "1d");
        set_duration(o, "season", "24h");
    });
    rejects(
        MCW,
        |o| {
            set_duration(o, "history", "2h");
            set_duration(o, "season", "1h");
            set_duration(o, "horizon", "120m");
        },
        "scaling.forecast.horizon must be shorter than scaling.forecast.history",
    );
    accepts(MCW, |o| {
        set_duration(o, "history", "2h");
        set_duration(o, "season", "1h");
        set_duration(o, "horizon", "119m59s");
    });
}

#[test]
fn placement_counts_are_bounded() {
    rejects(
        MCW,
        |o| o["spec"]["placement"]["maxMovesPerDecision"] = json!(10_001),
        "placement.maxMovesPerDecision must be between 0 and 10000",
    );
    accepts(MCW, |o| {
        o["spec"]["placement"]["maxMovesPerDecision"] = json!(10_000)
    });
    let spread =
        "placement.spread minimums (minPools, minProviders, minRegions) must be between 0 and 64";
    rejects(
        MCW,
        |o| o["spec"]["placement"]["spread"] = json!({"minRegions": 65}),
        spread,
    );
    rejects(
        MCW,
        |o| o["spec"]["placement"]["spread"] = json!({"minProviders": 65}),
        spread,
    );
    accepts(MCW, |o| {
        o["spec"]["replicas"]["max"] = json!(64);
        o["spec"]["placement"]["spread"] =
            json!({"minPools": 64, "minProviders": 64, "minRegions": 64});
    });
    rejects(
        MCW,
        |o| {
            o["spec"]["replicas"] = json!({"min": 1, "max": 3});
            o["spec"]["placement"]["spread"] = json!({"minPools": 4});
        },
        "placement.spread.minPools must not exceed replicas.max: every pool counted needs a replica",
    );
    accepts(MCW, |o| {
        o["spec"]["replicas"] = json!({"min": 1, "max": 3});
        o["spec"]["placement"]["spread"] = json!({"minPools": 3});
    });
    accepts(MCW, |o| {
        o["spec"]["placement"]["redundancy"]["tolerate"] = json!(3)
    });
}

#[test]
fn names_must_fit_in_a_label_value() {
    let long = "a".repeat(64);
    let at_limit = "a".repeat(63);
    rejects(
        MCW,
        |o| o["metadata"]["name"] = json!(long),
        "metadata.name of a MultiCloudWorkload must be at most 63 characters: skyfleet puts it in a label value on every member Deployment",
    );
    accepts(MCW, |o| o["metadata"]["name"] = json!(at_limit));
    rejects(
        POOL,
        |o| o["metadata"]["name"] = json!(format!("{}.{}", "b".repeat(40), "c".repeat(30))),
        "metadata.name of a CloudPool must be at most 63 characters: skyfleet puts it in a label value on every member Deployment",
    );
    accepts(POOL, |o| o["metadata"]["name"] = json!(at_limit));
}

#[test]
fn the_pool_label_is_reserved() {
    let msg = "selector and template.metadata.labels must not use the label skyfleet.io/pool: skyfleet sets it on every member Deployment";
    rejects(
        MCW,
        |o| o["spec"]["template"]["metadata"]["labels"]["skyfleet.io/pool"] = json!("aws"),
        msg,
    );
    rejects(
        MCW,
        |o| {
            o["spec"]["selector"] = json!({"matchExpressions": [
                {"key": "skyfleet.io/pool", "operator": "Exists"}
            ]})
        },
        msg,
    );
}

#[test]
fn selector_requirements_must_be_well_formed() {
    let msg = limits::SELECTOR_REQUIREMENT;
    for bad in [
        json!({"key": "tier", "operator": "Sometimes", "values": ["web"]}),
        json!({"key": "tier", "operator": "In"}),
        json!({"key": "tier", "operator": "NotIn", "values": []}),
        json!({"key": "tier", "operator": "Exists", "values": ["web"]}),
    ] {
        let b = bad.clone();
        rejects(
            MCW,
            |o| o["spec"]["placement"]["poolSelector"] = json!({"matchExpressions": [b]}),
            msg,
        );
        rejects(
            MCW,
            |o| {
                let labels = o["spec"]["template"]["metadata"]["labels"].clone();
                o["spec"]["selector"] = json!({"matchLabels": labels, "matchExpressions": [bad]})
            },
            msg,
        );
    }
    accepts(MCW, |o| {
        o["spec"]["placement"]["poolSelector"] = json!({"matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["web"]},
            {"key": "spot", "operator": "DoesNotExist"}
        ]})
    });
}

// ---- Transition rules: the member Deployments' selector is immutable ----

/// Messages of the CEL rules for an update from `old` to `new`.
fn update_messages(old: &Value, new: &Value) -> Vec<String> {
    match Validator::new().validate(&schema_of(MCW), new, Some(old)) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.iter().map(|e| e.message.clone()).collect(),
    }
}

fn rust_update_messages(old: &Value, new: &Value) -> Vec<String> {
    let old: MultiCloudWorkload = serde_json::from_value(old.clone()).unwrap();
    let new: MultiCloudWorkload = serde_json::from_value(new.clone()).unwrap();
    limits::check_workload_update(&old.spec, &new.spec)
}

/// The example workload with `selector` (or none), before and after `edit`.
fn update(selector: Option<Value>, edit: impl FnOnce(&mut Value)) -> (Value, Value) {
    let mut old = first_example(MCW);
    if let Some(s) = selector {
        old["spec"]["selector"] = s;
    }
    let mut new = old.clone();
    edit(&mut new);
    (old, new)
}

fn refuses_update(selector: Option<Value>, edit: impl FnOnce(&mut Value), expected: &str) {
    let (old, new) = update(selector, edit);
    let got = update_messages(&old, &new);
    assert!(
        got.iter().any(|m| m == expected),
        "expected {expected:?}, got {got:?}\nold: {old:#}\nnew: {new:#}"
    );
    assert_eq!(rust_update_messages(&old, &new), vec![expected.to_string()]);
}

fn allows_update(selector: Option<Value>, edit: impl FnOnce(&mut Value)) {
    let (old, new) = update(selector, edit);
    assert_eq!(update_messages(&old, &new), Vec::<String>::new(), "{new:#}");
    assert_eq!(rust_update_messages(&old, &new), Vec::<String>::new());
}

#[test]
fn the_selector_is_immutable() {
    let with = || Some(json!({"matchLabels": {"app": "checkout"}}));
    refuses_update(
        with(),
        |o| {
            o["spec"]["template"]["metadata"]["labels"]["tier"] = json!("web");
            o["spec"]["selector"] = json!({"matchLabels": {"app": "checkout", "tier": "web"}});
        },
        limits::SELECTOR_IMMUTABLE,
    );
    refuses_update(
        with(),
        |o| {
            o["spec"]["selector"] = json!({"matchLabels": {"app": "checkout"}, "matchExpressions": [
                {"key": "tier", "operator": "DoesNotExist"}
            ]})
        },
        limits::SELECTOR_IMMUTABLE,
    );
    // Removing a selector that differs from the template labels changes the selector.
    refuses_update(
        with(),
        |o| {
            o["spec"]["template"]["metadata"]["labels"]["tier"] = json!("web");
            o["spec"].as_object_mut().unwrap().remove("selector");
        },
        limits::SELECTOR_IMMUTABLE,
    );
    // Template labels beyond the selector may change; so may anything else.
    allows_update(with(), |o| {
        o["spec"]["template"]["metadata"]["labels"]["version"] = json!("2");
        o["spec"]["replicas"]["max"] = json!(40);
    });
    // Writing out the selector the template labels gave, or dropping it again, is no change.
    allows_update(None, |o| {
        o["spec"]["selector"] = json!({"matchLabels": {"app": "checkout"}})
    });
    allows_update(with(), |o| {
        o["spec"].as_object_mut().unwrap().remove("selector");
    });
}

#[test]
fn without_a_selector_the_template_labels_are_immutable() {
    refuses_update(
        None,
        |o| o["spec"]["template"]["metadata"]["labels"]["version"] = json!("2"),
        limits::TEMPLATE_LABELS_IMMUTABLE,
    );
    refuses_update(
        None,
        |o| o["spec"]["template"]["metadata"]["labels"] = json!({"app": "checkout-v2"}),
        limits::TEMPLATE_LABELS_IMMUTABLE,
    );
    allows_update(None, |o| {
        o["spec"]["template"]["spec"]["containers"][0]["image"] = json!("checkout:1.5.0")
    });
}
