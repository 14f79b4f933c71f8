//! Make-before-break, on the real control planes with pods that take 15 s to become Ready:
//! whatever moves a workload's replicas (a changed pool selector, a drain), the Ready
//! replicas never drop below what the workload needs, sampled every half second. And an
//! object of another owner that holds skyfleet's name is never touched.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};
use skyfleet_e2e::{Env, eventually, unique};

use super::{
    SECRET_NS, apply_json, condition, get_json, operator, patch_workload, wait_event_saying,
    workload,
};

/// How long a pod of these tests takes to become Ready (kwok's pod-ready stage delay).
const STARTUP: &str = "15s";

/// A CloudPool named `name` in member `cluster`, with `labels`.
fn apply_pool(env: &Env, name: &str, cluster: &str, price: f64, labels: Value) {
    apply_pool_with(env, name, cluster, price, labels, json!({}));
}

/// A CloudPool named `name` in member `cluster`, with `labels` and `extra` fields of its spec.
pub(super) fn apply_pool_with(
    env: &Env,
    name: &str,
    cluster: &str,
    price: f64,
    labels: Value,
    extra: Value,
) {
    let (provider, region) = match cluster {
        "aws" => ("aws", "us-east-1"),
        "azure" => ("azure", "eastus"),
        _ => ("gcp", "us-central1"),
    };
    let mut spec = json!({
        "provider": provider, "region": region,
        "kubeconfigSecretRef": {"namespace": SECRET_NS, "name": format!("member-{cluster}")},
        "pricing": {"cpuPerHour": price, "memoryGiBPerHour": 0.004}
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        spec[k] = v.clone();
    }
    apply_json(
        env,
        &json!({
            "apiVersion": "skyfleet.io/v1alpha1", "kind": "CloudPool",
            "metadata": {"name": name, "labels": labels},
            "spec": spec
        }),
    );
}

/// A workload of exactly `replicas` replicas whose pods take [`STARTUP`] to become Ready.
fn apply_slow_workload(env: &Env, namespace: &str, name: &str, selector: Value, replicas: i32) {
    apply_json(
        env,
        &json!({
            "apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": {"min": replicas, "max": replicas},
                "template": {
                    "metadata": {
                        "labels": {"app": name},
                        "annotations": {"pod-ready.stage.kwok.x-k8s.io/delay": STARTUP}
                    },
                    "spec": {"containers": [{
                        "name": "app", "image": "registry.example/web:1",
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}
                    }]}
                },
                "scaling": {"targetCPUUtilizationPercentage": 50},
                "placement": {"poolSelector": {"matchLabels": selector}, "redundancy": {"tolerate": 0}}
            }
        }),
    );
}

/// `(spec.replicas, readyReplicas)` of the workload's Deployments, per pool, in every member.
type Snapshot = BTreeMap<String, (i32, i32)>;

async fn snapshot(
    clients: &[(String, kube::Client)],
    namespace: &str,
    name: &str,
) -> Option<Snapshot> {
    let mut out = Snapshot::new();
    for (_, client) in clients {
        let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
        let list = api
            .list(&ListParams::default().labels(&format!("skyfleet.io/workload={name}")))
            .await
            .ok()?;
        for d in list.items {
            let pool = d.metadata.labels.as_ref()?.get("skyfleet.io/pool")?.clone();
            let spec = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            let ready = d
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            out.insert(pool, (spec, ready));
        }
    }
    Some(out)
}

fn ready(s: &Snapshot) -> i32 {
    s.values().map(|v| v.1).sum()
}

/// Samples the workload's Deployments in every member every 500 ms until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<(Duration, Snapshot)>>,
}

impl Sampler {
    async fn start(env: &Env, namespace: &str, name: &str) -> Self {
        let mut clients = Vec::new();
        for m in env.members() {
            clients.push((m.to_string(), env.client(m).await));
        }
        let (namespace, name) = (namespace.to_string(), name.to_string());
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let t0 = Instant::now();
            let mut samples = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                if let Some(s) = snapshot(&clients, &namespace, &name).await {
                    samples.push((t0.elapsed(), s));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            samples
        });
        Sampler { stop, task }
    }

    async fn finish(self) -> Vec<(Duration, Snapshot)> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("sampler")
    }
}

/// Asserts that no sample shows fewer than `need` Ready replicas, and that samples were
/// taken at least every second.
fn assert_never_below(samples: &[(Duration, Snapshot)], need: i32, what: &str) {
    assert!(
        samples.len() >= 10,
        "{what}: too few samples: {}",
        samples.len()
    );
    for pair in samples.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap <= Duration::from_secs(1),
            "{what}: a {gap:?} gap between samples"
        );
    }
    let worst = samples
        .iter()
        .min_by_key(|(_, s)| ready(s))
        .expect("samples");
    assert!(
        ready(&worst.1) >= need,
        "{what}: only {} Ready replicas at {:?} ({:?}); {need} needed",
        ready(&worst.1),
        worst.0,
        worst.1
    );
}

/// Waits until the workload runs `replicas` Ready replicas, all in `pool`, and no Deployment
/// elsewhere.
async fn wait_all_in(
    env: &Env,
    namespace: &str,
    name: &str,
    pool: &str,
    replicas: i32,
) -> Snapshot {
    let mut clients = Vec::new();
    for m in env.members() {
        clients.push((m.to_string(), env.client(m).await));
    }
    eventually(
        &format!("{name}: {replicas} Ready replicas in {pool} only"),
        Duration::from_secs(120),
        || async {
            let s = snapshot(&clients, namespace, name).await?;
            (s.len() == 1 && s.get(pool) == Some(&(replicas, replicas))).then_some(s)
        },
    )
    .await
}

#[tokio::test]
async fn a_pool_selector_moved_to_a_disjoint_set_keeps_every_replica_ready_until_replaced() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    let (from, to) = (format!("azure-from-{run}"), format!("gcp-to-{run}"));
    apply_pool(
        env,
        &from,
        "azure",
        0.03,
        json!({"e2e-run": run, "set": "a"}),
    );
    apply_pool(env, &to, "gcp", 0.05, json!({"e2e-run": run, "set": "b"}));
    let namespace = env.namespace("mbb", &["mgmt"]);
    let name = format!("mv-{run}");
    apply_slow_workload(
        env,
        &namespace,
        &name,
        json!({"e2e-run": run, "set": "a"}),
        6,
    );
    wait_all_in(env, &namespace, &name, &from, 6).await;

    let sampler = Sampler::start(env, &namespace, &name).await;
    patch_workload(
        env,
        &namespace,
        &name,
        &json!({"spec": {"placement": {"poolSelector": {"matchLabels": {"e2e-run": run, "set": "b"}}}}}),
    );
    let end = wait_all_in(env, &namespace, &name, &to, 6).await;
    let samples = sampler.finish().await;
    assert_never_below(&samples, 6, "moving to a disjoint set of pools");
    // The move really waited for the new pods: at some point both pools ran replicas.
    assert!(
        samples
            .iter()
            .any(|(_, s)| s.get(&from).is_some_and(|v| v.0 > 0)
                && s.get(&to).is_some_and(|v| v.0 > 0)),
        "both pools ran replicas during the move: {samples:?}"
    );
    assert_eq!(end.get(&to), Some(&(6, 6)));
    let w = workload(env, &namespace, &name).expect("workload");
    assert_eq!(
        condition(&w, "Ready").map(|c| c.0).as_deref(),
        Some("True"),
        "{w}\n{}",
        op.log_text()
    );
    env.kubectl_ok("mgmt", &["delete", "mcw", &name, "-n", &namespace]);
    for p in [&from, &to] {
        env.kubectl_ok("mgmt", &["delete", "cpool", p, "--wait=false"]);
    }
}

#[tokio::test]
async fn a_drained_pool_hands_its_replicas_over_before_it_empties() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let _op = operator(env);
    let run = unique();
    let (cheap, dear) = (format!("aws-drain-{run}"), format!("azure-stay-{run}"));
    apply_pool(env, &cheap, "aws", 0.02, json!({"e2e-run": run}));
    apply_pool(env, &dear, "azure", 0.06, json!({"e2e-run": run}));
    let namespace = env.namespace("drain", &["mgmt"]);
    let name = format!("dr-{run}");
    apply_slow_workload(env, &namespace, &name, json!({"e2e-run": run}), 5);
    wait_all_in(env, &namespace, &name, &cheap, 5).await;

    let sampler = Sampler::start(env, &namespace, &name).await;
    env.kubectl_ok(
        "mgmt",
        &[
            "patch",
            "cpool",
            &cheap,
            "--type=merge",
            "-p",
            r#"{"spec":{"unschedulable":true}}"#,
        ],
    );
    wait_all_in(env, &namespace, &name, &dear, 5).await;
    let samples = sampler.finish().await;
    assert_never_below(&samples, 5, "draining a pool (spec.unschedulable)");
    wait_event_saying(
        env,
        &namespace,
        &name,
        "Scaled",
        "kept until their replacements are Ready",
    )
    .await;
    env.kubectl_ok("mgmt", &["delete", "mcw", &name, "-n", &namespace]);
    for p in [&cheap, &dear] {
        env.kubectl_ok("mgmt", &["delete", "cpool", p, "--wait=false"]);
    }
}

#[tokio::test]
async fn a_deployment_of_another_owner_with_skyfleets_name_is_never_touched() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    let pool = format!("gcp-foreign-{run}");
    apply_pool(env, &pool, "gcp", 0.03, json!({"e2e-run": run}));
    let namespace = env.namespace("foreign", &["mgmt", "gcp"]);
    let name = format!("fg-{run}");
    // Someone else's Deployment, with the name skyfleet gives this workload in this pool.
    let taken = skyfleet::controller::desired::deployment_name(&name, &pool);
    let foreign = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": taken, "namespace": namespace, "labels": {"team": "other"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "other"}},
            "template": {"metadata": {"labels": {"app": "other"}},
                         "spec": {"containers": [{"name": "c", "image": "other:1"}]}}
        }
    });
    let file = std::env::temp_dir().join(format!("skyfleet-e2e-foreign-{run}.json"));
    std::fs::write(&file, foreign.to_string()).expect("write manifest");
    env.kubectl_ok("gcp", &["apply", "-f", file.to_str().expect("path")]);
    let _ = std::fs::remove_file(&file);
    let before = get_json(env, "gcp", &["deployment", &taken, "-n", &namespace]).expect("foreign");

    apply_slow_workload(env, &namespace, &name, json!({"e2e-run": run}), 3);
    let w = eventually(
        &format!("{name}: Degraded=Conflict\n{}", op.log_text()),
        Duration::from_secs(60),
        || async {
            let w = workload(env, &namespace, &name)?;
            let (status, reason, _) = condition(&w, "Degraded")?;
            (status == "True" && reason == "Conflict").then_some(w)
        },
    )
    .await;
    let (_, _, message) = condition(&w, "Degraded").expect("Degraded");
    assert!(
        message.contains(&taken) && message.contains("left untouched"),
        "{message}"
    );
    wait_event_saying(env, &namespace, &name, "Conflict", &taken).await;
    // A few more decisions: the foreign Deployment is exactly as its owner left it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after =
        get_json(env, "gcp", &["deployment", &taken, "-n", &namespace]).expect("still there");
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);
    assert_eq!(
        after["metadata"]["generation"],
        before["metadata"]["generation"]
    );
    assert_eq!(after["metadata"]["labels"], before["metadata"]["labels"]);
    assert_eq!(after["spec"]["replicas"], json!(2));

    // Deleting the workload leaves it too.
    env.kubectl_ok(
        "mgmt",
        &["delete", "mcw", &name, "-n", &namespace, "--timeout=60s"],
    );
    let after = get_json(env, "gcp", &["deployment", &taken, "-n", &namespace])
        .expect("survives the delete");
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);
    env.kubectl_ok("mgmt", &["delete", "cpool", &pool, "--wait=false"]);
}

#[tokio::test]
async fn a_pool_whose_nodes_vanish_keeps_its_replicas_until_replacements_are_ready() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    // A node group of our own in the gcp member, and a pool pinned to it.
    let nodes: Vec<String> = (0..2).map(|i| format!("group-{run}-{i}")).collect();
    for node in &nodes {
        let doc = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": node,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {"kubernetes.io/hostname": node, "type": "kwok", "e2e-group": run}},
            "spec": {"taints": []},
            "status": {"allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                       "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"}}
        });
        let file = std::env::temp_dir().join(format!("skyfleet-e2e-{node}.json"));
        std::fs::write(&file, doc.to_string()).expect("write manifest");
        env.kubectl_ok(
            "gcp",
            &["apply", "--server-side", "-f", file.to_str().expect("path")],
        );
        let _ = std::fs::remove_file(&file);
    }
    let (group, other) = (format!("gcp-group-{run}"), format!("azure-other-{run}"));
    apply_json(
        env,
        &json!({
            "apiVersion": "skyfleet.io/v1alpha1", "kind": "CloudPool",
            "metadata": {"name": group, "labels": {"e2e-run": run}},
            "spec": {"provider": "gcp", "region": "us-central1",
                     "kubeconfigSecretRef": {"namespace": SECRET_NS, "name": "member-gcp"},
                     "nodeSelector": {"e2e-group": run},
                     "pricing": {"cpuPerHour": 0.01, "memoryGiBPerHour": 0.001}}
        }),
    );
    apply_pool(env, &other, "azure", 0.05, json!({"e2e-run": run}));
    let namespace = env.namespace("nodes", &["mgmt"]);
    let name = format!("nd-{run}");
    apply_slow_workload(env, &namespace, &name, json!({"e2e-run": run}), 4);
    wait_all_in(env, &namespace, &name, &group, 4).await;

    let sampler = Sampler::start(env, &namespace, &name).await;
    let mut args = vec!["delete", "node"];
    args.extend(nodes.iter().map(String::as_str));
    env.kubectl_ok("gcp", &args);
    let done = wait_all_in(env, &namespace, &name, &other, 4).await;
    let mut samples = sampler.finish().await;
    // The operator removes the group's Deployment as soon as it sees the replacements
    // Ready, which can fall between two samples: the state the wait saw ends the record.
    let end = samples.last().map_or(Duration::ZERO, |(t, _)| *t);
    samples.push((end, done));
    // The group's Deployment stays until its replacements are Ready elsewhere.
    let last_with_group = samples
        .iter()
        .rposition(|(_, s)| s.contains_key(&group))
        .expect("the group's Deployment was there");
    let after = &samples[(last_with_group + 1).min(samples.len() - 1)].1;
    assert_eq!(
        after.get(&other).map(|v| v.1),
        Some(4),
        "when the node group's Deployment went, its replacements were Ready: {samples:?}\n{}",
        op.log_text()
    );
    let w = workload(env, &namespace, &name).expect("workload");
    let (_, reason, _) = condition(&w, "Degraded").expect("Degraded");
    assert_ne!(reason, "Conflict", "{w}");
    env.kubectl_ok("mgmt", &["delete", "mcw", &name, "-n", &namespace]);
    for p in [&group, &other] {
        env.kubectl_ok("mgmt", &["delete", "cpool", p, "--wait=false"]);
    }
}

#[tokio::test]
async fn a_renamed_pool_hands_its_replicas_to_its_successor_before_it_goes() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    // A rename is a delete and a create: the same cloud under a new name.
    let (old, new) = (format!("aws-old-{run}"), format!("aws-new-{run}"));
    apply_pool(env, &old, "aws", 0.02, json!({"e2e-run": run}));
    let namespace = env.namespace("rename", &["mgmt"]);
    let name = format!("rn-{run}");
    apply_slow_workload(env, &namespace, &name, json!({"e2e-run": run}), 4);
    wait_all_in(env, &namespace, &name, &old, 4).await;

    let sampler = Sampler::start(env, &namespace, &name).await;
    apply_pool(env, &new, "aws", 0.02, json!({"e2e-run": run}));
    env.kubectl_ok("mgmt", &["delete", "cpool", &old, "--wait=false"]);
    let end = wait_all_in(env, &namespace, &name, &new, 4).await;
    let samples = sampler.finish().await;
    assert_never_below(&samples, 4, "renaming a pool (delete and create)");
    assert_eq!(end.get(&new), Some(&(4, 4)));
    // The deleted pool waited for its replicas to move out, then went.
    eventually(
        &format!("{old} released by its finalizer\n{}", op.log_text()),
        Duration::from_secs(60),
        || async {
            (!env
                .kubectl("mgmt", &["get", "cpool", &old])
                .status
                .success())
            .then_some(())
        },
    )
    .await;
    wait_event_saying(
        env,
        "default",
        &old,
        "DeleteWaiting",
        "replacements elsewhere are Ready",
    )
    .await;
    env.kubectl_ok("mgmt", &["delete", "mcw", &name, "-n", &namespace]);
    env.kubectl_ok("mgmt", &["delete", "cpool", &new, "--wait=false"]);
}

#[tokio::test]
async fn a_deployment_made_before_ownership_labels_is_adopted_with_nothing_recreated() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    let pool = format!("azure-adopt-{run}");
    apply_pool(env, &pool, "azure", 0.03, json!({"e2e-run": run}));
    let namespace = env.namespace("adopt", &["mgmt", "azure"]);
    let name = format!("ad-{run}");
    // What skyfleet applied for this workload in this pool before this version: named
    // `<workload>-<pool>`, labelled with the workload's name, namespace and pool and the owner
    // annotation, but with neither its UID nor an installation id.
    let legacy = format!("{name}-{pool}");
    let owners = json!({
        "app.kubernetes.io/managed-by": "skyfleet", "skyfleet.io/pool": pool,
        "skyfleet.io/workload": name, "skyfleet.io/workload-namespace": namespace
    });
    let mut pod_labels = owners.clone();
    pod_labels["app"] = json!(name);
    let old = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": legacy, "namespace": namespace, "labels": owners,
                     "annotations": {"skyfleet.io/owner": format!("{namespace}/{name}")}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": name, "skyfleet.io/pool": pool}},
            "template": {
                "metadata": {"labels": pod_labels,
                             "annotations": {"pod-ready.stage.kwok.x-k8s.io/delay": STARTUP}},
                "spec": {"containers": [{
                    "name": "app", "image": "registry.example/web:1",
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}
                }]}
            }
        }
    });
    let file = std::env::temp_dir().join(format!("skyfleet-e2e-legacy-{run}.json"));
    std::fs::write(&file, old.to_string()).expect("write manifest");
    env.kubectl_ok(
        "azure",
        &["apply", "--server-side", "-f", file.to_str().expect("path")],
    );
    let _ = std::fs::remove_file(&file);
    let before = wait_all_in(env, &namespace, &name, &pool, 3).await;
    let deployment = |env: &Env| get_json(env, "azure", &["deployment", &legacy, "-n", &namespace]);
    let pods = |env: &Env| -> Vec<String> {
        let out = env.kubectl_ok(
            "azure",
            &[
                "get",
                "pods",
                "-n",
                &namespace,
                "-o",
                "jsonpath={.items[*].metadata.uid}",
            ],
        );
        let mut uids: Vec<String> = out.split_whitespace().map(str::to_string).collect();
        uids.sort();
        uids
    };
    let (was, pods_before) = (deployment(env).expect("legacy"), pods(env));
    assert_eq!(pods_before.len(), 3);

    // The upgraded operator meets a workload that already runs there.
    apply_slow_workload(env, &namespace, &name, json!({"e2e-run": run}), 3);
    let uid = eventually(
        &format!("{name}: Ready"),
        Duration::from_secs(60),
        || async {
            let w = workload(env, &namespace, &name)?;
            (condition(&w, "Ready")?.0 == "True")
                .then(|| w["metadata"]["uid"].as_str().map(str::to_string))?
        },
    )
    .await;
    let adopted = eventually(
        &format!(
            "{legacy} labelled with the workload's UID\n{}",
            op.log_text()
        ),
        Duration::from_secs(60),
        || async {
            let d = deployment(env)?;
            (d["metadata"]["labels"]["skyfleet.io/workload-uid"] == json!(uid)).then_some(d)
        },
    )
    .await;
    assert!(
        adopted["metadata"]["labels"]["skyfleet.io/installation"]
            .as_str()
            .is_some_and(|i| !i.is_empty()),
        "{adopted}"
    );
    assert_eq!(
        adopted["metadata"]["uid"], was["metadata"]["uid"],
        "the same object"
    );
    assert_eq!(
        adopted["metadata"]["generation"], was["metadata"]["generation"],
        "its spec untouched: no rollout"
    );
    assert_eq!(pods(env), pods_before, "every pod kept");
    let clients = vec![("azure".to_string(), env.client("azure").await)];
    let now = snapshot(&clients, &namespace, &name).await;
    assert_eq!(now, Some(before), "no second Deployment");

    // Adopted means owned: deleting the workload removes it.
    env.kubectl_ok(
        "mgmt",
        &["delete", "mcw", &name, "-n", &namespace, "--timeout=60s"],
    );
    assert!(
        deployment(env).is_none(),
        "{legacy} deleted with its workload"
    );
    env.kubectl_ok("mgmt", &["delete", "cpool", &pool, "--wait=false"]);
}
