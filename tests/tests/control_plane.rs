//! The local control planes are real Kubernetes: the CRDs install and validate there, pods run
//! on kwok nodes, metrics.k8s.io reports their CPU and follows changes, and the versions are
//! the ones `hack/` pins.

use std::time::Duration;

use serde_json::Value;
use skyfleet_e2e::{Env, eventually};

#[test]
fn crds_install_and_read_like_kubectl_resources() {
    let env = Env::get();
    let _g = env.shared();
    env.install_crds();
    let ns = env.namespace("e2e-crd", &["mgmt"]);
    env.kubectl_ok("mgmt", &["apply", "-f", "crds/examples/cloudpools.yaml"]);
    env.kubectl_ok(
        "mgmt",
        &["apply", "-n", &ns, "-f", "crds/examples/workloads.yaml"],
    );

    let pools = env.kubectl_ok("mgmt", &["get", "cpool"]);
    let header = pools.lines().next().unwrap_or_default();
    for col in [
        "NAME",
        "PROVIDER",
        "REGION",
        "READY",
        "VCPU/H",
        "CAPACITY-TYPE",
        "AGE",
    ] {
        assert!(
            header.contains(col),
            "cpool column {col} missing in:\n{pools}"
        );
    }
    let spot = pools
        .lines()
        .find(|l| l.starts_with("aws-us-east-1-spot"))
        .expect("the spot pool is listed");
    assert!(
        spot.contains("Spot") && spot.contains("0.01334058"),
        "spot row: {spot}"
    );

    let workloads = env.kubectl_ok("mgmt", &["get", "mcw", "-n", &ns]);
    let header = workloads.lines().next().unwrap_or_default();
    for col in [
        "NAME",
        "MIN",
        "MAX",
        "DESIRED",
        "READY",
        "POOLS",
        "COST/H",
        "REDUNDANT",
        "AGE",
    ] {
        assert!(
            header.contains(col),
            "mcw column {col} missing in:\n{workloads}"
        );
    }
    let checkout = workloads
        .lines()
        .find(|l| l.starts_with("checkout"))
        .expect("checkout is listed");
    let cells: Vec<&str> = checkout.split_whitespace().collect();
    assert_eq!(
        &cells[1..3],
        &["3", "30"],
        "min and max of checkout: {checkout}"
    );

    // The category lists both kinds, and explain reads the field docs.
    let all = env.kubectl_ok("mgmt", &["get", "skyfleet", "-A"]);
    assert!(
        all.contains("cloudpool.skyfleet.io/gcp-us-central1")
            && all.contains("multicloudworkload.skyfleet.io/search-indexer"),
        "{all}"
    );
    let explain = env.kubectl_ok("mgmt", &["explain", "mcw.spec.placement"]);
    for field in [
        "redundancy",
        "spread",
        "poolSelector",
        "maxMovesPerDecision",
        "What must survive",
    ] {
        assert!(explain.contains(field), "explain lacks {field}:\n{explain}");
    }

    // Defaults are applied by the API server, so users see them in `-o yaml`.
    let scaling = env.kubectl_ok(
        "mgmt",
        &[
            "get",
            "mcw",
            "search-indexer",
            "-n",
            &ns,
            "-o",
            "jsonpath={.spec.scaling}",
        ],
    );
    let scaling: Value = serde_json::from_str(&scaling).expect("scaling is JSON");
    assert_eq!(scaling["forecast"]["season"], "24h");
    assert_eq!(scaling["forecast"]["quantile"], 0.95);
    assert_eq!(scaling["scaleDownStabilization"], "5m");
    env.kubectl_ok("mgmt", &["delete", "namespace", &ns, "--wait=false"]);
}

/// Applies `yaml` with a server-side dry run and returns the API server's error.
fn rejection(env: &Env, ns: &str, yaml: &str) -> String {
    let file = env.path(format!("target/e2e-{}.yaml", skyfleet_e2e::unique()));
    std::fs::create_dir_all(file.parent().expect("target dir")).expect("mkdir");
    std::fs::write(&file, yaml).expect("write manifest");
    let out = env.kubectl(
        "mgmt",
        &[
            "apply",
            "--dry-run=server",
            "-n",
            ns,
            "-f",
            file.to_str().expect("utf-8 path"),
        ],
    );
    let _ = std::fs::remove_file(&file);
    assert!(
        !out.status.success(),
        "the API server accepted a bad object:\n{yaml}"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn workload(replicas: &str, extra: &str, requests: &str) -> String {
    format!(
        "apiVersion: skyfleet.io/v1alpha1\nkind: MultiCloudWorkload\nmetadata: {{name: bad}}\nspec:\n  replicas: {replicas}\n  template:\n    metadata: {{labels: {{app: bad}}}}\n    spec:\n      containers:\n      - name: app\n        image: app:1\n        resources: {{requests: {requests}}}\n{extra}"
    )
}

fn pool(spec: &str) -> String {
    format!(
        "apiVersion: skyfleet.io/v1alpha1\nkind: CloudPool\nmetadata: {{name: bad-pool}}\nspec:\n{spec}"
    )
}

#[test]
fn bad_objects_are_rejected_by_the_api_server_with_clear_messages() {
    let env = Env::get();
    let _g = env.shared();
    env.install_crds();
    let ns = env.namespace("e2e-bad", &["mgmt"]);
    let ok_requests = "{cpu: 100m, memory: 64Mi}";
    let pricing = "  pricing: {cpuPerHour: 0.04, memoryGiBPerHour: 0.004}\n";
    let cases: Vec<(String, &str)> = vec![
        (
            workload("{min: 5, max: 3}", "", ok_requests),
            "replicas.min must not exceed replicas.max",
        ),
        (
            workload("{min: 1, max: 3}", "", "{cpu: 100m}"),
            "every container in template.spec.containers must set resources.requests.cpu and resources.requests.memory",
        ),
        (
            workload(
                "{min: 1, max: 3}",
                "  scaling: {forecast: {quantile: 1.5}}\n",
                ok_requests,
            ),
            "scaling.forecast.quantile must be strictly between 0 and 1",
        ),
        (
            workload(
                "{min: 1, max: 3}",
                "  scaling: {forecast: {horizon: soon}}\n",
                ok_requests,
            ),
            "scaling.forecast.horizon must be a duration such as 30m, 1h or 1d",
        ),
        (
            workload(
                "{min: 1, max: 3}",
                "  scaling: {targetCPUUtilizationPercentage: 0}\n",
                ok_requests,
            ),
            "scaling.targetCPUUtilizationPercentage must be between 1 and 100",
        ),
        (
            workload(
                "{min: 1, max: 3}",
                "  placement: {redundancy: {tolerate: 5}}\n",
                ok_requests,
            ),
            "placement.redundancy.tolerate must be between 0 and 3",
        ),
        (
            workload(
                "{min: 1, max: 3}",
                "  placement: {pools: [{name: a, minReplicas: 3, maxReplicas: 1}]}\n",
                ok_requests,
            ),
            "placement.pools[].minReplicas must not exceed maxReplicas",
        ),
        (
            workload(
                "{min: 1, max: 3}",
                "  selector: {matchLabels: {app: other}}\n",
                ok_requests,
            ),
            "selector.matchLabels must match template.metadata.labels",
        ),
        // Enums are checked by the schema itself.
        (
            workload(
                "{min: 1, max: 3}",
                "  placement: {redundancy: {domain: Zone}}\n",
                ok_requests,
            ),
            "Unsupported value: \"Zone\"",
        ),
        (
            workload(
                "{min: 1, max: 3}",
                "  scaling: {forecast: {model: Prophet}}\n",
                ok_requests,
            ),
            "Unsupported value: \"Prophet\"",
        ),
        (
            pool(&format!("  provider: AWS\n  region: us-east-1\n{pricing}")),
            "provider must be a lowercase name such as aws, azure, gcp or onprem",
        ),
        (
            pool(
                "  provider: aws\n  region: us-east-1\n  pricing: {cpuPerHour: -1, memoryGiBPerHour: 0.004}\n",
            ),
            "pricing.cpuPerHour must not be negative",
        ),
        (
            pool(&format!(
                "  provider: aws\n  region: us-east-1\n{pricing}  capacity: {{cpu: lots}}\n"
            )),
            "capacity.cpu must be a non-negative quantity such as 64 or 500m",
        ),
        (
            pool("  provider: aws\n  pricing: {cpuPerHour: 0.04, memoryGiBPerHour: 0.004}\n"),
            "spec.region: Required value",
        ),
    ];
    for (yaml, expected) in cases {
        let err = rejection(env, &ns, &yaml);
        assert!(
            err.contains(expected),
            "expected {expected:?} in the API server's answer, got:\n{err}\nfor:\n{yaml}"
        );
    }
    env.kubectl_ok("mgmt", &["delete", "namespace", &ns, "--wait=false"]);
}

/// CPU of every pod in `ns` as metrics.k8s.io reports it, in cores.
fn pod_cpu(env: &Env, cluster: &str, ns: &str) -> Vec<f64> {
    let out = env.kubectl(
        cluster,
        &[
            "get",
            "--raw",
            &format!("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods"),
        ],
    );
    if !out.status.success() {
        return Vec::new();
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|pod| {
                    pod["containers"]
                        .as_array()
                        .map(|cs| {
                            cs.iter()
                                .filter_map(|c| c["usage"]["cpu"].as_str())
                                .filter_map(|q| skyfleet::api::quantity::parse(q).ok())
                                .sum()
                        })
                        .unwrap_or(0.0)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn pods_run_on_kwok_nodes_and_metrics_follow_usage() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let cluster = "aws";
    let ns = env.namespace("e2e-metrics", &[cluster]);
    env.kubectl_ok(
        cluster,
        &[
            "create",
            "deployment",
            "web",
            "-n",
            &ns,
            "--image=registry.example.com/web:1",
            "--replicas=2",
        ],
    );
    env.kubectl_ok(
        cluster,
        &[
            "set",
            "resources",
            "deployment/web",
            "-n",
            &ns,
            "--requests=cpu=500m,memory=64Mi",
        ],
    );
    env.set_usage(cluster, &ns, "200m");

    let nodes = eventually(
        "two Running pods on kwok nodes",
        Duration::from_secs(90),
        || async {
            let out = env.kubectl(cluster, &["get", "pods", "-n", &ns, "-o", "json"]);
            let v: Value = serde_json::from_slice(&out.stdout).ok()?;
            let pods = v["items"].as_array()?;
            let running: Vec<String> = pods
                .iter()
                .filter(|p| {
                    p["status"]["phase"] == "Running"
                        && p["metadata"]["deletionTimestamp"].is_null()
                })
                .filter_map(|p| p["spec"]["nodeName"].as_str().map(str::to_string))
                .collect();
            (running.len() == 2).then_some(running)
        },
    )
    .await;
    for node in &nodes {
        let labels = env.kubectl_ok(cluster, &["get", "node", node, "-o", "jsonpath={.metadata.annotations.kwok\\.x-k8s\\.io/node} {.metadata.labels.skyfleet\\.io/provider} {.status.addresses[0].address}"]);
        assert_eq!(
            labels.trim(),
            "fake aws 127.0.0.1",
            "node {node} is a kwok node of provider aws on loopback"
        );
    }

    let near = |values: &[f64], want: f64| {
        values.len() == 2 && values.iter().all(|v| (v - want).abs() <= want * 0.1)
    };
    eventually(
        "metrics.k8s.io to report 200m per pod",
        Duration::from_secs(120),
        || async {
            let cpu = pod_cpu(env, cluster, &ns);
            near(&cpu, 0.2).then_some(())
        },
    )
    .await;
    env.set_usage(cluster, &ns, "750m");
    eventually(
        "metrics.k8s.io to follow the change to 750m per pod",
        Duration::from_secs(120),
        || async {
            let cpu = pod_cpu(env, cluster, &ns);
            near(&cpu, 0.75).then_some(())
        },
    )
    .await;
    env.kubectl_ok(cluster, &["delete", "namespace", &ns, "--wait=false"]);
}

#[test]
fn versions_are_the_pinned_ones() {
    let env = Env::get();
    let _g = env.shared();
    let gomod = std::fs::read_to_string(env.path("hack/k8s/go.mod")).expect("hack/k8s/go.mod");
    let pinned = |module: &str| {
        gomod
            .lines()
            .map(str::split_whitespace)
            .filter_map(|mut w| (w.next() == Some(module)).then(|| w.next()).flatten())
            .find(|v| v.starts_with('v'))
            .map(str::to_string)
            .expect("module pinned in hack/k8s/go.mod")
    };
    let k8s = pinned("k8s.io/kubernetes");
    for cluster in &env.clusters {
        let out = env.kubectl_ok(cluster, &["version", "-o", "json"]);
        let v: Value = serde_json::from_str(&out).expect("kubectl version JSON");
        assert_eq!(
            v["serverVersion"]["gitVersion"],
            k8s.as_str(),
            "server version of {cluster}"
        );
    }
    let versions = std::fs::read_to_string(env.path("hack/versions.sh")).expect("hack/versions.sh");
    let pin = |name: &str| {
        versions
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.split_whitespace().next())
            .map(str::to_string)
            .expect("pinned in hack/versions.sh")
    };
    let bin = std::env::var("SKYFLEET_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").expect("HOME"))
                .join(".cache/skyfleet/bin")
        });
    let run = |b: &str, arg: &str| {
        let out = std::process::Command::new(bin.join(b))
            .arg(arg)
            .output()
            .expect("run binary");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let helm = run("helm", "version");
    assert!(
        helm.contains(&format!("Version:\"{}\"", pin("HELM_VERSION"))),
        "helm version: {helm}"
    );
    assert!(
        run("kwok", "--version").contains(&pin("KWOK_VERSION")),
        "kwok version"
    );
    assert!(
        run("metrics-server", "--version").contains(&pin("METRICS_SERVER_VERSION")),
        "metrics-server version"
    );
    let etcd = pinned("go.etcd.io/etcd/server/v3");
    assert!(
        run("etcd", "--version").contains(etcd.trim_start_matches('v')),
        "etcd version"
    );
}
