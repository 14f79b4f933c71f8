//! A member cluster with 2 000 Nodes is probed without a false `Unreachable` (issue 16,
//! "probe robustness"): the probe must not need a full Node LIST inside its timeout.
//!
//! The Nodes are plain API objects, not kwok-managed: kwok would renew a Lease for each every
//! few seconds and metrics-server would scrape each, hundreds of requests a second on a
//! 2-core machine, for a test that needs none of it. Unmanaged Nodes are instead marked
//! `Ready=Unknown` and tainted `node.kubernetes.io/unreachable` by the node lifecycle
//! controller after its grace (a one-off burst of writes); the test's pool tolerates those
//! taints, so what it counts stays the same. They carry what a kubelet reports, including the
//! 50 images a kubelet lists by default (`--node-status-max-images`), so a LIST of them is as
//! large as one of real Nodes.
//!
//! They must not disturb other tests: a label only this test's CloudPool selects, a
//! `NoSchedule` taint only it tolerates (no other pool counts them, no pod lands there), and
//! deletion at the end, also when the test fails (a drop guard). The test has its own binary
//! (so no other operator of the suite probes its pool) and takes `Env::exclusive`: on an
//! operator that LISTs every Node, 2 000 more slow every probe of the member.

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use skyfleet_e2e::{Env, Operator, eventually, unique};

const SECRET_NS: &str = "skyfleet-system";
/// The member that gets the Nodes.
const MEMBER: &str = "azure";
/// How many.
const NODES: usize = 2_000;
/// CPU cores each Node offers.
const NODE_CPU: usize = 4;
/// Images each Node lists in status, as a kubelet does by default.
const IMAGES: usize = 50;
/// The label (value: the test's id) and taint key the Nodes carry.
const KEY: &str = "skyfleet.io/e2e-many-nodes";
/// The probe period and timeout the operator runs with. A LIST of the 2 000 Nodes (37 MB of
/// JSON once the node lifecycle controller has written their conditions) took 2.9-5.0 s with
/// curl on a 2-core machine at load 15, `/version` 74-90 ms: 1 s (the smallest the flag takes)
/// is well below the one and far above the other.
const PROBE_PERIOD: &str = "2s";
const PROBE_TIMEOUT: &str = "1s";
/// Probes the pool must stay Ready for.
const PROBES: u64 = 5;

/// Deletes the Nodes and the CloudPool when dropped, so a failing test leaves nothing behind.
struct Cleanup {
    env: &'static Env,
    id: String,
    pool: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self
            .env
            .kubectl("mgmt", &["delete", "cpool", &self.pool, "--wait=false"]);
        // Nothing of the pool's is in the member, so its finalizer has nothing to wait for,
        // and this test's operator may be gone already.
        let _ = self.env.kubectl(
            "mgmt",
            &[
                "patch",
                "cpool",
                &self.pool,
                "--type=merge",
                "-p",
                r#"{"metadata":{"finalizers":null}}"#,
            ],
        );
        delete_nodes(self.env, &format!("{KEY}={}", self.id));
    }
}

/// Deletes the Nodes a label selector picks, a delete collection at a time (one request; on a
/// busy machine the API server may time out before it has deleted them all, and goes on).
fn delete_nodes(env: &Env, selector: &str) {
    let url = format!("/api/v1/nodes?labelSelector={selector}");
    for _ in 0..20 {
        let _ = env.kubectl(MEMBER, &["delete", "--raw", &url]);
        let left = env.kubectl(MEMBER, &["get", "nodes", "-l", selector, "-o", "name"]);
        if left.status.success() && left.stdout.is_empty() {
            return;
        }
    }
    eprintln!("nodes {selector} are still in {MEMBER} after 20 delete collections");
}

/// One Node as a kubelet would report it, with no kubelet behind it.
fn node(id: &str, i: usize) -> Node {
    let name = format!("e2e-many-{id}-{i}");
    let images: Vec<Value> = (0..IMAGES)
        .map(|j| {
            let repo = format!("registry.example/team-{}/service-{j}", j % 7);
            json!({
                "names": [
                    format!("{repo}@sha256:{:064x}", (i * IMAGES + j) as u128 * 0x9e37_79b9_7f4a_7c15),
                    format!("{repo}:v1.{j}.{}", i % 10),
                ],
                "sizeBytes": 50_000_000 + j * 1_234_567,
            })
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                KEY: id,
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "e2e.xlarge",
                "topology.kubernetes.io/region": "e2e-many",
                "topology.kubernetes.io/zone": format!("e2e-many-{}", i % 3),
            },
        },
        "spec": {"taints": [{"key": KEY, "value": id, "effect": "NoSchedule"}]},
        "status": {
            "capacity": {"cpu": NODE_CPU.to_string(), "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "allocatable": {"cpu": NODE_CPU.to_string(), "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "nodeInfo": {
                "architecture": "amd64", "operatingSystem": "linux", "osImage": "e2e",
                "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://2.0.0",
                "kubeletVersion": "v1.34.10", "kubeProxyVersion": "",
                "machineID": format!("{i:032x}"), "systemUUID": format!("{i:032x}"), "bootID": format!("{i:032x}"),
            },
            "images": images,
        },
    }))
    .expect("a Node")
}

/// Creates the Nodes, a few requests at a time.
async fn create_nodes(env: &'static Env, id: &str) {
    let api: Api<Node> = Api::all(env.client(MEMBER).await);
    let workers = 16;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let (api, id) = (api.clone(), id.to_string());
        tasks.spawn(async move {
            for i in (w..NODES).step_by(workers) {
                api.create(&PostParams::default(), &node(&id, i))
                    .await
                    .unwrap_or_else(|e| panic!("creating node {i} in {MEMBER}: {e}"));
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a node-creating task");
    }
}

fn pool_json(env: &Env, pool: &str) -> Option<Value> {
    let out = env.kubectl("mgmt", &["get", "cpool", pool, "-o", "json"]);
    serde_json::from_slice(&out.stdout).ok()
}

fn ready(pool: &Value) -> Option<(String, String, String)> {
    let c = pool["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?;
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str()?.to_string(),
        c["message"].as_str()?.to_string(),
    ))
}

/// Probes of `pool` the operator finished, from its /metrics.
fn probes(op: &Operator, pool: &str) -> Option<u64> {
    let (_, body) = op.admin_get("/metrics")?;
    let prefix = format!("skyfleet_pool_probe_seconds_count{{pool=\"{pool}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// Panics unless the pool is Ready, reason Probed, with every Node's capacity.
fn assert_ready_with_all_nodes(env: &Env, op: &Operator, pool: &str) {
    let v = pool_json(env, pool).expect("the pool");
    let (status, reason, message) = ready(&v).expect("a Ready condition");
    assert!(
        status == "True" && reason == "Probed",
        "pool {pool} on a member with {NODES} Nodes is Ready={status} ({reason}: {message}), \
         though its API server answers\n{}",
        op.log_text()
    );
    let cpu = v["status"]["allocatable"]["cpu"].as_str().unwrap_or("");
    assert_eq!(
        cpu,
        (NODES * NODE_CPU).to_string(),
        "allocatable CPU of {NODES} Nodes of {NODE_CPU} cores"
    );
    let memory = v["status"]["allocatable"]["memory"].as_str().unwrap_or("");
    assert_eq!(
        memory,
        format!("{}Gi", NODES * 16),
        "allocatable memory of {NODES} Nodes of 16Gi"
    );
    assert!(
        message.contains(&format!("{NODES} nodes")),
        "the message counts the Nodes: {message}"
    );
}

#[tokio::test]
async fn a_member_with_2000_nodes_is_probed_without_false_unreachable() {
    let env = Env::get();
    let _g = env.exclusive().await;
    assert!(
        env.members().contains(&MEMBER),
        "the environment has no member {MEMBER}"
    );
    env.install_crds();
    let _ = env.kubectl("mgmt", &["create", "namespace", SECRET_NS]);
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": format!("member-{MEMBER}"), "namespace": SECRET_NS},
        "stringData": {"kubeconfig": env.member_kubeconfig(MEMBER)},
    });
    let file = env.path(format!("target/e2e-{}.json", unique()));
    std::fs::write(&file, secret.to_string()).expect("write manifest");
    env.kubectl_ok("mgmt", &["apply", "-f", file.to_str().expect("path")]);
    let _ = std::fs::remove_file(&file);

    // Nodes an earlier run could not delete (killed), then this run's.
    delete_nodes(env, KEY);
    let id = unique();
    let pool = format!("many-nodes-{id}");
    let _cleanup = Cleanup {
        env,
        id: id.clone(),
        pool: pool.clone(),
    };
    create_nodes(env, &id).await;
    let listed = env.kubectl_ok(
        MEMBER,
        &["get", "nodes", "-l", &format!("{KEY}={id}"), "-o", "name"],
    );
    assert_eq!(listed.lines().count(), NODES, "the Nodes were created");

    // Its own operator, reconciling no workloads (a namespace with none), probing often and
    // with a short timeout.
    let quiet = env.namespace("many-nodes", &["mgmt"]);
    let op = env.start_operator(&[
        &format!("--probe-period={PROBE_PERIOD}"),
        &format!("--probe-timeout={PROBE_TIMEOUT}"),
        &format!("--namespace={quiet}"),
    ]);
    let spec = json!({
        "provider": MEMBER, "region": "e2e-many",
        "kubeconfigSecretRef": {"namespace": SECRET_NS, "name": format!("member-{MEMBER}")},
        "pricing": {"cpuPerHour": 0.04, "memoryGiBPerHour": 0.004},
        "nodeSelector": {KEY: id},
        "tolerations": [
            {"key": KEY, "operator": "Exists", "effect": "NoSchedule"},
            // Set by the node lifecycle controller on Nodes no kubelet keeps alive.
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists"},
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists"},
        ],
    });
    let doc = json!({"apiVersion": "skyfleet.io/v1alpha1", "kind": "CloudPool", "metadata": {"name": pool}, "spec": spec});
    let file = env.path(format!("target/e2e-{}.json", unique()));
    std::fs::write(&file, doc.to_string()).expect("write manifest");
    env.kubectl_ok("mgmt", &["apply", "-f", file.to_str().expect("path")]);
    let _ = std::fs::remove_file(&file);

    // The first probe's outcome, whatever it is: a member that answers is never Unreachable.
    let (p, o) = (pool.as_str(), &op);
    eventually(
        &format!("a probe of {pool}"),
        Duration::from_secs(60),
        move || async move { pool_json(env, p).as_ref().and_then(ready) },
    )
    .await;
    assert_ready_with_all_nodes(env, o, p);

    // And it stays so, probe after probe.
    let first = probes(o, p).expect("skyfleet_pool_probe_seconds_count for the pool");
    eventually(
        &format!("{PROBES} more probes of {pool}"),
        Duration::from_secs(120),
        move || async move {
            assert_ready_with_all_nodes(env, o, p);
            probes(o, p).filter(|n| *n >= first + PROBES)
        },
    )
    .await;
    assert_ready_with_all_nodes(env, o, p);
    env.kubectl_ok("mgmt", &["delete", "cpool", &pool, "--timeout=60s"]);
}
