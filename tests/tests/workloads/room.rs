//! A pool's room comes from its nodes (issue 16, "capacity from the nodes"): the plan puts
//! no more replicas in a pool than its matching nodes can still take, and replicas left
//! Pending there because another tenant took the room are reported and moved to a pool
//! with room, the Ready ones staying until their replacements are Ready. Room is counted in
//! what the scheduler reserves for a pod, its init containers included.

use std::time::Duration;

use serde_json::json;
use skyfleet_e2e::{Env, eventually, unique};

use super::{SECRET_NS, apply_json, get_json, member_deployment, operator, wait_event};

/// The member whose one small node the cheap pool selects.
const SMALL: &str = "azure";
/// The member of the dear pool, on the shared nodes.
const LARGE: &str = "aws";
/// The label (value: the run) and taint key of the small node.
const KEY: &str = "skyfleet.io/e2e-room";
/// Pods the small node takes.
const SLOTS: i64 = 3;
/// Replicas the workload runs (`replicas.min`, demand is low).
const REPLICAS: i64 = 5;

/// Deletes the small node and the foreign pod when dropped, also when the test fails.
struct Cleanup {
    env: &'static Env,
    node: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.env.kubectl(
            SMALL,
            &["delete", "pod", "-n", "default", &self.node, "--wait=false"],
        );
        let _ = self
            .env
            .kubectl(SMALL, &["delete", "node", &self.node, "--wait=false"]);
    }
}

/// Ready replicas and `spec.replicas` of the workload's Deployment for `pool`.
fn counts(env: &Env, cluster: &str, namespace: &str, name: &str, pool: &str) -> (i64, i64) {
    member_deployment(env, cluster, namespace, name, pool).map_or((0, 0), |d| {
        (
            d["status"]["readyReplicas"].as_i64().unwrap_or(0),
            d["spec"]["replicas"].as_i64().unwrap_or(0),
        )
    })
}

/// One kwok node of [`SLOTS`] pod slots and `cpu` cores in [`SMALL`], that only this run's
/// cheap pool selects and tolerates, and a dear pool on [`LARGE`]'s shared nodes; returns
/// the two pools' names.
fn small_node_and_pools(env: &Env, run: &str, node: &str, cpu: &str) -> (String, String) {
    let node_doc = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": node, "type": "kwok", (KEY): run}},
        "spec": {"taints": [{"key": KEY, "value": run, "effect": "NoSchedule"}]},
        "status": {"allocatable": {"cpu": cpu, "memory": "128Gi", "pods": SLOTS.to_string()},
                   "capacity": {"cpu": cpu, "memory": "128Gi", "pods": SLOTS.to_string()}}
    });
    super::apply_json_in(env, SMALL, &node_doc);

    let cheap = format!("small-{run}");
    let dear = format!("large-{run}");
    for (pool, cluster, price, nodes) in
        [(&cheap, SMALL, 0.01, Some(run)), (&dear, LARGE, 0.04, None)]
    {
        let mut spec = json!({
            "provider": cluster, "region": "r1",
            "kubeconfigSecretRef": {"namespace": SECRET_NS, "name": format!("member-{cluster}")},
            "pricing": {"cpuPerHour": price, "memoryGiBPerHour": 0.004}
        });
        if let Some(run) = nodes {
            spec["nodeSelector"] = json!({(KEY): run});
            spec["tolerations"] = json!([{"key": KEY, "operator": "Equal", "value": run,
                                          "effect": "NoSchedule"}]);
        }
        apply_json(
            env,
            &json!({
                "apiVersion": "skyfleet.io/v1alpha1", "kind": "CloudPool",
                "metadata": {"name": pool, "labels": {"e2e-run": run}},
                "spec": spec
            }),
        );
    }
    (cheap, dear)
}

/// A workload of [`REPLICAS`] replicas with `pod` as its pod spec, over this run's pools.
fn apply_workload(env: &Env, namespace: &str, name: &str, run: &str, pod: serde_json::Value) {
    apply_json(
        env,
        &json!({
            "apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": {"min": REPLICAS, "max": REPLICAS},
                "template": {"metadata": {"labels": {"app": name}}, "spec": pod},
                "scaling": {"targetCPUUtilizationPercentage": 50},
                "placement": {
                    "poolSelector": {"matchLabels": {"e2e-run": run}},
                    "redundancy": {"tolerate": 0}
                }
            }
        }),
    );
}

#[tokio::test]
async fn replicas_go_only_where_nodes_have_room_and_pending_ones_move_to_a_pool_with_room() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    let node = format!("room-{run}");
    let _cleanup = Cleanup {
        env,
        node: node.clone(),
    };
    let (cheap, dear) = small_node_and_pools(env, &run, &node, "32");
    let namespace = env.namespace("room", &["mgmt"]);
    let name = format!("r-{run}");
    apply_workload(
        env,
        &namespace,
        &name,
        &run,
        json!({"containers": [{
            "name": "app", "image": "registry.example/web:1",
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}
        }]}),
    );
    // The cheap pool takes what its node has room for, the dear one the rest; all Ready.
    eventually(
        &format!(
            "{name}: {SLOTS} Ready on the small node, the rest on {LARGE}\n{}",
            op.log_text()
        ),
        Duration::from_secs(120),
        || async {
            let small = counts(env, SMALL, &namespace, &name, &cheap);
            let large = counts(env, LARGE, &namespace, &name, &dear);
            (small == (SLOTS, SLOTS) && large == (REPLICAS - SLOTS, REPLICAS - SLOTS)).then_some(())
        },
    )
    .await;

    // Another tenant's pod takes a slot on the node (bound directly, as a DaemonSet's or a
    // static pod would be), and one of skyfleet's pods there is replaced: the replacement
    // finds no room and stays Pending.
    super::apply_json_in(
        env,
        SMALL,
        &json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": node, "namespace": "default"},
            "spec": {"nodeName": node,
                "tolerations": [{"key": KEY, "operator": "Exists"}],
                "containers": [{"name": "other", "image": "registry.example/other:1"}]}
        }),
    );
    let pods = get_json(
        env,
        SMALL,
        &["pods", "-n", &namespace, "-l", &format!("app={name}")],
    )
    .and_then(|v| {
        v["items"][0]["metadata"]["name"]
            .as_str()
            .map(str::to_string)
    })
    .expect("a pod of the workload on the small node");
    env.kubectl_ok(SMALL, &["delete", "pod", "-n", &namespace, &pods]);

    // It is reported, and the plan moves it to the pool with room; the two that run on the
    // small node stay. Sampled on every poll: the Ready replicas never fall below the four
    // left after the pod was replaced.
    let note = wait_event(env, &namespace, &name, "NoRoom").await;
    assert!(
        note.contains(&format!("pool {cheap}: 1 replicas Pending")),
        "the event names the pool and the Pending replica: {note}"
    );
    let mut lowest = REPLICAS;
    eventually(
        &format!(
            "{name}: {} on the small node, {} on {LARGE}, all Ready\n{}",
            SLOTS - 1,
            REPLICAS - SLOTS + 1,
            op.log_text()
        ),
        Duration::from_secs(120),
        || {
            let small = counts(env, SMALL, &namespace, &name, &cheap);
            let large = counts(env, LARGE, &namespace, &name, &dear);
            lowest = lowest.min(small.0 + large.0);
            async move {
                (small == (SLOTS - 1, SLOTS - 1)
                    && large == (REPLICAS - SLOTS + 1, REPLICAS - SLOTS + 1))
                    .then_some(())
            }
        },
    )
    .await;
    assert!(
        lowest >= REPLICAS - 1,
        "no Ready replica was removed to make the move: {lowest} Ready at the lowest"
    );

    env.kubectl_ok("mgmt", &["delete", "mcw", &name, "-n", &namespace]);
    for p in [&cheap, &dear] {
        env.kubectl_ok("mgmt", &["delete", "cpool", p]);
    }
}

/// Room is counted in what the scheduler reserves for a pod: an init container that asks
/// for more CPU than a node has free keeps the pod off that node, although the app alone
/// would fit. No replica is ever planned on such a node: counted in the app's requests, the
/// room said they fit, so they stayed there Pending and were never moved.
#[tokio::test]
async fn a_pod_whose_init_container_fits_no_node_of_a_pool_is_never_planned_there() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    let node = format!("room-init-{run}");
    let _cleanup = Cleanup {
        env,
        node: node.clone(),
    };
    // 1.5 cores: room for the app's 100m in each of its pod slots, and none for the init
    // container's 2 cores.
    let (cheap, dear) = small_node_and_pools(env, &run, &node, "1500m");
    let namespace = env.namespace("room-init", &["mgmt"]);
    let name = format!("ri-{run}");
    apply_workload(
        env,
        &namespace,
        &name,
        &run,
        json!({
            "initContainers": [{
                "name": "warm", "image": "registry.example/warm:1",
                "resources": {"requests": {"cpu": "2", "memory": "64Mi"}}
            }],
            "containers": [{
                "name": "app", "image": "registry.example/web:1",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}
            }]
        }),
    );
    // Sampled on every poll: the cheap pool is never given a replica.
    let mut most_on_cheap = 0;
    eventually(
        &format!("{name}: all {REPLICAS} Ready on {LARGE}\n{}", op.log_text()),
        Duration::from_secs(120),
        || {
            let small = counts(env, SMALL, &namespace, &name, &cheap);
            let large = counts(env, LARGE, &namespace, &name, &dear);
            most_on_cheap = most_on_cheap.max(small.1);
            async move { (large == (REPLICAS, REPLICAS)).then_some(()) }
        },
    )
    .await;
    assert_eq!(
        most_on_cheap, 0,
        "replicas were planned on the node their init container does not fit"
    );
    let plan = super::workload(env, &namespace, &name).expect("the workload");
    let rows = plan["status"]["pools"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        rows.iter()
            .filter(|r| r["name"] == cheap.as_str())
            .all(|r| r["replicas"].as_i64().unwrap_or(0) == 0),
        "the status plans nothing on {cheap}: {rows:?}"
    );

    env.kubectl_ok("mgmt", &["delete", "mcw", &name, "-n", &namespace]);
    for p in [&cheap, &dear] {
        env.kubectl_ok("mgmt", &["delete", "cpool", p]);
    }
}
