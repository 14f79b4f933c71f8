//! A MultiCloudWorkload runs as one Deployment per pool in the member clusters, as the plan
//! says; what is changed by hand in a member is put back; deleting the workload removes its
//! Deployments everywhere; a member that stops answering loses its replicas to the others
//! after the failover grace and is reconciled to the plan when it is back.

mod burst;
mod dependencies;
mod dns;
mod make_before_break;
mod monitoring;
mod noisy_neighbour;
mod room;
mod service;
mod spot;
mod state;
mod tenancy;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};
use skyfleet_e2e::{Env, Operator, eventually, unique};

const SECRET_NS: &str = "skyfleet-system";
const MEMBERS: [(&str, &str, &str, f64); 3] = [
    // cluster, provider, region, price per vCPU-hour: azure is cheapest, gcp dearest.
    ("aws", "aws", "us-east-1", 0.04),
    ("azure", "azure", "eastus", 0.03),
    ("gcp", "gcp", "us-central1", 0.05),
];

const OPERATOR_ARGS: [&str; 6] = [
    "--probe-period=2s",
    "--probe-timeout=2s",
    "--sync-period=2s",
    "--failover-grace=10s",
    "--history-step=5s",
    // Two steps: the restart and state tests read the stored history within a minute.
    "--history-persist-interval=10s",
];

/// The history step the suite's operator records at (`--history-step`).
const STEP_SECS: i64 = 5;

/// The operator shared by the tests of this binary; a restart test replaces it.
struct SharedOperator(Mutex<Operator>);

impl SharedOperator {
    fn log_text(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).log_text()
    }

    fn admin_get(&self, path: &str) -> Option<(u16, String)> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admin_get(path)
    }

    /// The port of its /metrics on 127.0.0.1 (a restart gives a new one).
    fn admin_port(&self) -> u16 {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).admin_port
    }

    fn pid(&self) -> u32 {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pid()
    }

    /// Kills the operator (SIGKILL, as a crash would) and starts a new one.
    fn restart(&self, env: &Env) {
        let mut op = self.0.lock().unwrap_or_else(|e| e.into_inner());
        op.kill();
        *op = env.start_operator(&OPERATOR_ARGS);
    }
}

fn operator(env: &'static Env) -> &'static SharedOperator {
    static OP: OnceLock<SharedOperator> = OnceLock::new();
    OP.get_or_init(|| {
        env.install_crds();
        let _ = env.kubectl("mgmt", &["create", "namespace", SECRET_NS]);
        for member in env.members() {
            let kubeconfig = env.member_kubeconfig(member).into_bytes();
            put_secret(env, &format!("member-{member}"), kubeconfig);
        }
        SharedOperator(Mutex::new(env.start_operator(&OPERATOR_ARGS)))
    })
}

fn put_secret(env: &Env, name: &str, kubeconfig: Vec<u8>) {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(SECRET_NS.into()),
            ..Default::default()
        },
        data: Some([("kubeconfig".to_string(), ByteString(kubeconfig))].into()),
        ..Default::default()
    };
    let mut doc = serde_json::to_value(&secret).expect("secret JSON");
    doc["apiVersion"] = json!("v1");
    doc["kind"] = json!("Secret");
    apply_json(env, &doc);
}

fn apply_json(env: &Env, doc: &Value) {
    apply_json_in(env, "mgmt", doc);
}

/// `kubectl apply` of one manifest in `cluster`.
fn apply_json_in(env: &Env, cluster: &str, doc: &Value) {
    let file = std::env::temp_dir().join(format!("skyfleet-e2e-{}.json", unique()));
    std::fs::write(&file, doc.to_string()).expect("write manifest");
    env.kubectl_ok(cluster, &["apply", "-f", file.to_str().expect("path")]);
    let _ = std::fs::remove_file(file);
}

/// One CloudPool per member, labelled with `run` so that only this test's workload selects them.
fn apply_pools(env: &Env, run: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (cluster, provider, region, price) in MEMBERS {
        let name = format!("{cluster}-{run}");
        apply_json(
            env,
            &json!({
                "apiVersion": "skyfleet.io/v1alpha1", "kind": "CloudPool",
                "metadata": {"name": name, "labels": {"e2e-run": run}},
                "spec": {
                    "provider": provider, "region": region,
                    "kubeconfigSecretRef": {"namespace": SECRET_NS, "name": format!("member-{cluster}")},
                    "pricing": {"cpuPerHour": price, "memoryGiBPerHour": 0.004}
                }
            }),
        );
        names.push(name);
    }
    names
}

/// Stores `samples` steps of demand history for workload `name`, ending now, with `cores(i)`
/// at step `i` (encoded as the operator encodes it, in the ConfigMap every version of
/// skyfleet reads), so a forecast has history from the first decision.
fn seed_history(
    env: &Env,
    namespace: &str,
    name: &str,
    samples: usize,
    cores: impl Fn(i64) -> f64,
) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut h = skyfleet::decide::history::DemandHistory::new(STEP_SECS, samples);
    let n = samples as i64;
    let from = now - n * STEP_SECS;
    for i in 0..n {
        h.record(from + i * STEP_SECS, cores(i));
    }
    apply_json(
        env,
        &json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("{name}-skyfleet-history"), "namespace": namespace},
            "data": {"history": h.encode()}
        }),
    );
}

fn apply_workload(env: &Env, namespace: &str, name: &str, run: &str, max: i32, cpu: &str) {
    apply_json(
        env,
        &json!({
            "apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": {"min": 3, "max": max},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{
                        "name": "app", "image": "registry.example/web:1",
                        "resources": {"requests": {"cpu": cpu, "memory": "256Mi"}}
                    }]}
                },
                "scaling": {"targetCPUUtilizationPercentage": 50},
                "placement": {
                    "poolSelector": {"matchLabels": {"e2e-run": run}},
                    "redundancy": {"tolerate": 1, "domain": "Provider"}
                }
            }
        }),
    );
}

fn get_json(env: &Env, cluster: &str, args: &[&str]) -> Option<Value> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let out = env.kubectl(cluster, &all);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn workload(env: &Env, namespace: &str, name: &str) -> Option<Value> {
    get_json(env, "mgmt", &["mcw", name, "-n", namespace])
}

/// Replicas per pool as status says, pools with none left out.
fn status_pools(w: &Value) -> Vec<(String, i64)> {
    w["status"]["pools"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| Some((r["name"].as_str()?.to_string(), r["replicas"].as_i64()?)))
                .filter(|(_, n)| *n > 0)
                .collect()
        })
        .unwrap_or_default()
}

/// The workload's Deployment for `pool` in `cluster`, found as users find it: by skyfleet's
/// labels (its name carries a hash, so that no two workloads and pools share one).
fn member_deployment(
    env: &Env,
    cluster: &str,
    namespace: &str,
    name: &str,
    pool: &str,
) -> Option<Value> {
    let selector = format!("skyfleet.io/workload={name},skyfleet.io/pool={pool}");
    let list = get_json(
        env,
        cluster,
        &["deployments", "-n", namespace, "-l", &selector],
    )?;
    let items = list["items"].as_array()?;
    assert!(
        items.len() <= 1,
        "one Deployment per workload and pool: {list}"
    );
    items.first().cloned()
}

/// `spec.replicas` of the workload's Deployment for `pool` in `cluster`, if it exists.
fn member_replicas(
    env: &Env,
    cluster: &str,
    namespace: &str,
    name: &str,
    pool: &str,
) -> Option<i64> {
    member_deployment(env, cluster, namespace, name, pool)?["spec"]["replicas"].as_i64()
}

fn condition(w: &Value, kind: &str) -> Option<(String, String, String)> {
    let c = w["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)?;
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str()?.to_string(),
        c["message"].as_str()?.to_string(),
    ))
}

fn running_pods(env: &Env, cluster: &str, namespace: &str, name: &str) -> usize {
    pod_names(env, cluster, namespace, name).len()
}

/// Running pods of the workload in `cluster`, by name.
fn pod_names(env: &Env, cluster: &str, namespace: &str, name: &str) -> Vec<String> {
    get_json(
        env,
        cluster,
        &["pods", "-n", namespace, "-l", &format!("app={name}")],
    )
    .and_then(|v| {
        Some(
            v["items"]
                .as_array()?
                .iter()
                .filter(|p| p["status"]["phase"] == "Running")
                .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
                .collect(),
        )
    })
    .unwrap_or_default()
}

fn cluster_of(pool: &str) -> &'static str {
    MEMBERS
        .iter()
        .map(|m| m.0)
        .find(|c| pool.starts_with(&format!("{c}-")))
        .expect("a pool of this test")
}

/// Waits until every pool in status has a member Deployment with that many replicas, every
/// other pool has none (or 0), and the workload reports all replicas ready.
async fn wait_placed(
    env: &Env,
    op: &SharedOperator,
    namespace: &str,
    name: &str,
    pools: &[String],
) -> Value {
    eventually(
        &format!("workload {name} placed and ready\n{}", op.log_text()),
        Duration::from_secs(90),
        || async {
            let w = workload(env, namespace, name)?;
            let desired = w["status"]["desiredReplicas"].as_i64()?;
            let ready = w["status"]["readyReplicas"].as_i64()?;
            if desired < 3 || ready != desired {
                return None;
            }
            let rows = status_pools(&w);
            if rows.iter().map(|r| r.1).sum::<i64>() != desired {
                return None;
            }
            for pool in pools {
                let want = rows.iter().find(|r| &r.0 == pool).map_or(0, |r| r.1);
                let got =
                    member_replicas(env, cluster_of(pool), namespace, name, pool).unwrap_or(0);
                if got != want {
                    return None;
                }
            }
            Some(w)
        },
    )
    .await
}

#[tokio::test]
async fn a_workload_is_placed_repaired_and_cleaned_up_across_members() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    let pools = apply_pools(env, &run);
    let namespace = env.namespace("mcw", &["mgmt"]);
    let name = format!("web-{run}");
    apply_workload(env, &namespace, &name, &run, 6, "500m");

    // (a) Deployments appear in the members as status says, and their pods run.
    let w = wait_placed(env, op, &namespace, &name, &pools).await;
    let rows = status_pools(&w);
    let desired = w["status"]["desiredReplicas"].as_i64().expect("desired");
    assert!(desired >= 3, "replicas.min is 3: {w}");
    // Tolerating the loss of one provider: replicas in at least two, and what is left after
    // losing any one still carries the minimum.
    assert!(rows.len() >= 2, "spread over providers: {rows:?}");
    let largest = rows.iter().map(|r| r.1).max().unwrap_or(0);
    assert!(
        desired - largest >= 3,
        "survives losing any provider: {rows:?}"
    );
    assert_eq!(
        condition(&w, "RedundancySatisfied").map(|c| c.0),
        Some("True".to_string()),
        "{w}"
    );
    for (pool, replicas) in &rows {
        let cluster = cluster_of(pool);
        let pods = eventually(
            &format!("{replicas} Running pods in {cluster}"),
            Duration::from_secs(60),
            || async {
                let n = running_pods(env, cluster, &namespace, &name);
                (n as i64 == *replicas).then_some(n)
            },
        )
        .await;
        assert_eq!(pods as i64, *replicas);
    }
    assert_eq!(
        w["metadata"]["finalizers"],
        json!(["skyfleet.io/cleanup"]),
        "the finalizer is in place: {w}"
    );
    assert_eq!(
        w["status"]["observedGeneration"], w["metadata"]["generation"],
        "status describes the current spec"
    );
    let cost = w["status"]["costPerHour"].as_f64().expect("cost");
    assert!(cost > 0.0, "a cost is reported: {w}");
    assert!(
        w["status"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "the decision is explained: {w}"
    );
    assert_eq!(
        condition(&w, "Ready").map(|c| c.0),
        Some("True".to_string()),
        "{w}"
    );
    assert_eq!(w["status"]["demand"]["model"], "Reactive", "{w}");
    let history = env.kubectl_ok(
        "mgmt",
        &[
            "get",
            "workloadhistory",
            &name,
            "-n",
            &namespace,
            "-o",
            "jsonpath={.spec.history}",
        ],
    );
    assert!(
        history.starts_with("v1 5 "),
        "demand history is persisted: {history}"
    );

    // `kubectl get mcw` reads like `kubectl get deploy`, with cost. The columns are read
    // from status between two reads of the same status, so a decision taken meanwhile (a
    // probe that timed out on a loaded machine moves replicas) cannot pass for a wrong column.
    let settled = |w: &Value| {
        let s = &w["status"];
        json!([
            s["desiredReplicas"],
            s["readyReplicas"],
            s["pools"],
            s["costPerHour"],
            s["conditions"]
        ])
    };
    let (table, now) = eventually(
        &format!("{name}: `kubectl get mcw` beside an unchanged status"),
        Duration::from_secs(60),
        || async {
            let before = workload(env, &namespace, &name)?;
            let table = env.kubectl_ok("mgmt", &["get", "mcw", &name, "-n", &namespace]);
            let after = workload(env, &namespace, &name)?;
            (settled(&before) == settled(&after)).then_some((table, after))
        },
    )
    .await;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    let row: Vec<&str> = lines.next().expect("row").split_whitespace().collect();
    let col = |h: &str| {
        header
            .iter()
            .position(|c| *c == h)
            .and_then(|i| row.get(i).copied())
            .unwrap_or_else(|| panic!("column {h} in\n{table}"))
    };
    let status = &now["status"];
    assert_eq!(
        col("DESIRED"),
        status["desiredReplicas"].to_string(),
        "{table}"
    );
    assert_eq!(col("READY"), status["readyReplicas"].to_string(), "{table}");
    assert_eq!(
        col("POOLS"),
        status_pools(&now).len().to_string(),
        "{table}"
    );
    let redundant = condition(&now, "RedundancySatisfied").map_or(String::new(), |c| c.0);
    assert_eq!(col("REDUNDANT"), redundant, "{table}");
    let shown: f64 = col("COST/H").parse().expect("a number");
    let cost_now = status["costPerHour"].as_f64().expect("cost");
    assert!((shown - cost_now).abs() < 1e-6, "{table}");

    // (b) A member Deployment deleted or scaled by hand is put back, as the plan has it then
    // (a pool that refuses pods for a while, e.g. while a new namespace's ServiceAccount is
    // made, moves replicas between the others).
    let (pool, _) = rows.first().cloned().expect("a pool in use");
    let cluster = cluster_of(&pool);
    let old = member_deployment(env, cluster, &namespace, &name, &pool)
        .expect("the Deployment of a pool in use");
    let deployment = old["metadata"]["name"]
        .as_str()
        .map(str::to_string)
        .expect("a name");
    let old_uid = old["metadata"]["uid"].clone();
    let planned = |pool: &str| {
        workload(env, &namespace, &name)
            .map(|w| status_pools(&w))
            .and_then(|rows| rows.into_iter().find(|r| r.0 == pool).map(|r| r.1))
    };
    env.kubectl_ok(
        cluster,
        &["delete", "deployment", &deployment, "-n", &namespace],
    );
    eventually(
        &format!("{deployment} back in {cluster}\n{}", op.log_text()),
        Duration::from_secs(30),
        || async {
            let back = member_deployment(env, cluster, &namespace, &name, &pool)?;
            let replicas = back["spec"]["replicas"].as_i64()?;
            (back["metadata"]["uid"] != old_uid && Some(replicas) == planned(&pool)).then_some(())
        },
    )
    .await;
    env.kubectl_ok(
        cluster,
        &[
            "scale",
            "deployment",
            &deployment,
            "-n",
            &namespace,
            "--replicas=9",
        ],
    );
    eventually(
        &format!("{deployment} scaled back as planned\n{}", op.log_text()),
        Duration::from_secs(30),
        || async {
            let replicas = member_replicas(env, cluster, &namespace, &name, &pool)?;
            (replicas != 9 && Some(replicas) == planned(&pool)).then_some(())
        },
    )
    .await;

    // (c) Deleting the workload removes its Deployments from every member, then the workload.
    env.kubectl_ok(
        "mgmt",
        &["delete", "mcw", &name, "-n", &namespace, "--wait=false"],
    );
    eventually(
        &format!("workload {name} gone\n{}", op.log_text()),
        Duration::from_secs(60),
        || async { workload(env, &namespace, &name).is_none().then_some(()) },
    )
    .await;
    for (cluster, _, _, _) in MEMBERS {
        let left = get_json(
            env,
            cluster,
            &[
                "deployments",
                "-n",
                &namespace,
                "-l",
                &format!("skyfleet.io/workload={name}"),
            ],
        )
        .and_then(|v| v["items"].as_array().map(Vec::len))
        .unwrap_or(0);
        assert_eq!(left, 0, "no Deployment of {name} is left in {cluster}");
    }
    for p in &pools {
        env.kubectl_ok("mgmt", &["delete", "cpool", p]);
    }
}

#[tokio::test]
async fn a_lost_member_fails_over_after_the_grace_and_is_reconciled_when_back() {
    let env = Env::get();
    let _g = env.exclusive().await;
    let op = operator(env);
    let run = unique();
    let pools = apply_pools(env, &run);
    let namespace = env.namespace("mcw", &["mgmt"]);
    let name = format!("web-{run}");
    apply_workload(env, &namespace, &name, &run, 6, "500m");
    let w = wait_placed(env, op, &namespace, &name, &pools).await;
    let azure = format!("azure-{run}");
    let before = status_pools(&w);
    assert!(
        before.iter().any(|(p, _)| *p == azure),
        "the cheapest provider is used: {before:?}"
    );

    // Traffic: split by Ready replicas, undamped here so the test need not wait periods.
    patch_workload(
        env,
        &namespace,
        &name,
        &json!({"spec": {"traffic": {"minWeightChange": 1, "updatePeriod": "0s"}}}),
    );
    eventually(
        &format!("traffic split by Ready replicas\n{}", op.log_text()),
        Duration::from_secs(60),
        || async {
            let w = workload(env, &namespace, &name)?;
            let weights = traffic(&w);
            let ready = ready_pools(&w);
            let total: i64 = ready.iter().map(|r| r.1).sum();
            let proportional = ready.iter().all(|(p, r)| {
                let w = weights.iter().find(|x| x.0 == *p).map_or(0, |x| x.1);
                (w * total - 100 * r).abs() < total
            });
            (weights.iter().any(|x| x.0 == azure)
                && weights.iter().map(|x| x.1).sum::<i64>() == 100
                && proportional)
                .then_some(())
        },
    )
    .await;
    let wide = env.kubectl_ok(
        "mgmt",
        &["get", "mcw", &name, "-n", &namespace, "-o", "wide"],
    );
    assert!(
        wide.contains("TRAFFIC") && wide.contains(&format!("{azure}=")),
        "kubectl get -o wide shows the split:\n{wide}"
    );

    let stopping = std::time::Instant::now();
    let out = env.cluster_sh(&["stop-apiserver", "azure"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stopped = std::time::Instant::now();
    eprintln!("stop-apiserver took {:.1?}", stopped - stopping);
    let dark = eventually(
        &format!("traffic leaves {azure}\n{}", op.log_text()),
        Duration::from_secs(60),
        || async {
            let w = workload(env, &namespace, &name)?;
            let weights = traffic(&w);
            (!weights.iter().any(|x| x.0 == azure)
                && weights.iter().map(|x| x.1).sum::<i64>() == 100)
                .then_some(w)
        },
    )
    .await;
    eprintln!(
        "traffic left {azure} {:.1?} after its API server stopped",
        stopped.elapsed()
    );
    // Users left while its replicas were still planned there (within the failover grace).
    assert!(
        status_pools(&dark)
            .iter()
            .any(|(p, n)| *p == azure && *n > 0),
        "traffic left {azure} before its replicas were planned elsewhere: {}",
        dark["status"]
    );
    let lost = eventually(
        &format!("replicas planned off {azure}\n{}", op.log_text()),
        Duration::from_secs(60),
        || async {
            let w = workload(env, &namespace, &name)?;
            let rows = status_pools(&w);
            let elsewhere: i64 = rows.iter().filter(|r| r.0 != azure).map(|r| r.1).sum();
            (!rows.iter().any(|r| r.0 == azure) && elsewhere >= 3).then_some(w)
        },
    )
    .await;
    let (status, reason, message) = condition(&lost, "Degraded").expect("Degraded");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "PoolLost"),
        "{message}"
    );
    assert!(message.contains(&azure), "{message}");
    // The surviving members run what the plan now says.
    for (pool, replicas) in status_pools(&lost) {
        let cluster = cluster_of(&pool);
        eventually(
            &format!("{pool} runs {replicas}"),
            Duration::from_secs(30),
            || async {
                (member_replicas(env, cluster, &namespace, &name, &pool) == Some(replicas))
                    .then_some(())
            },
        )
        .await;
    }
    let events = env.kubectl_ok(
        "mgmt",
        &[
            "get",
            "events",
            "-n",
            &namespace,
            "--field-selector",
            &format!("involvedObject.name={name}"),
            "-o",
            "jsonpath={range .items[*]}{.reason}{\"\\n\"}{end}",
        ],
    );
    assert!(
        events.lines().any(|r| r == "Failover"),
        "a Failover event: {events}"
    );
    let out = env.start_apiserver("azure");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Back: what azure still runs is reconciled to the plan.
    eventually(
        &format!("{azure} reconciled to the plan\n{}", op.log_text()),
        Duration::from_secs(60),
        || async {
            let w = workload(env, &namespace, &name)?;
            let want = status_pools(&w)
                .into_iter()
                .find(|r| r.0 == azure)
                .map_or(0, |r| r.1);
            (member_replicas(env, "azure", &namespace, &name, &azure) == Some(want)).then_some(())
        },
    )
    .await;

    // Back with Ready replicas: its traffic returns.
    eventually(
        &format!(
            "traffic back to {azure} with its Ready replicas\n{}",
            op.log_text()
        ),
        Duration::from_secs(90),
        || async {
            let w = workload(env, &namespace, &name)?;
            let ready = ready_pools(&w).into_iter().find(|r| r.0 == azure)?.1;
            (ready > 0 && traffic(&w).iter().any(|x| x.0 == azure && x.1 > 0)).then_some(())
        },
    )
    .await;

    // Deleted while a member is down: the finalizer holds until that member's Deployment is
    // gone too, so nothing is left behind.
    let out = env.cluster_sh(&["stop-apiserver", "azure"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.kubectl_ok(
        "mgmt",
        &["delete", "mcw", &name, "-n", &namespace, "--wait=false"],
    );
    let pending = eventually(
        &format!("a CleanupPending event\n{}", op.log_text()),
        Duration::from_secs(60),
        || async {
            let out = env.kubectl_ok(
                "mgmt",
                &[
                    "get",
                    "events",
                    "-n",
                    &namespace,
                    "--field-selector",
                    &format!("involvedObject.name={name},reason=CleanupPending"),
                    "-o",
                    "jsonpath={.items[*].message}",
                ],
            );
            (!out.trim().is_empty()).then_some(out)
        },
    )
    .await;
    // The message names a pool of the member that is down (any pool of that cluster).
    assert!(pending.contains("azure-"), "{pending}");
    let held = workload(env, &namespace, &name).expect("the workload waits for its cleanup");
    assert_eq!(
        held["metadata"]["finalizers"],
        json!(["skyfleet.io/cleanup"])
    );
    for cluster in ["aws", "gcp"] {
        let left = get_json(
            env,
            cluster,
            &[
                "deployments",
                "-n",
                &namespace,
                "-l",
                &format!("skyfleet.io/workload={name}"),
            ],
        )
        .and_then(|v| v["items"].as_array().map(Vec::len))
        .unwrap_or(0);
        assert_eq!(
            left, 0,
            "members that answer are cleaned up at once ({cluster})"
        );
    }
    let out = env.start_apiserver("azure");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(
        &format!("workload {name} gone once azure answers\n{}", op.log_text()),
        Duration::from_secs(60),
        || async { workload(env, &namespace, &name).is_none().then_some(()) },
    )
    .await;
    assert_eq!(
        member_replicas(env, "azure", &namespace, &name, &azure),
        None,
        "the Deployment in the member that was down is gone too"
    );
    for p in &pools {
        env.kubectl_ok("mgmt", &["delete", "cpool", p]);
    }
}

#[tokio::test]
async fn replicas_follow_measured_demand() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    let pools = apply_pools(env, &run);
    let namespace = env.namespace("mcw", &["mgmt"]);
    // Every pod uses 400m of its 500m request; at the 50% target one replica carries 250m,
    // so three replicas are not enough, and the workload grows until replicas.max.
    for (cluster, _, _, _) in MEMBERS {
        env.set_usage(cluster, &namespace, "400m");
    }
    let name = format!("web-{run}");
    apply_workload(env, &namespace, &name, &run, 6, "500m");
    let w = eventually(
        &format!(
            "workload {name} scaled to replicas.max on demand\n{}",
            op.log_text()
        ),
        Duration::from_secs(180),
        || async {
            let w = workload(env, &namespace, &name)?;
            (w["status"]["desiredReplicas"].as_i64()? >= 6).then_some(w)
        },
    )
    .await;
    let current = w["status"]["demand"]["currentCores"]
        .as_f64()
        .expect("current demand");
    // Without demand, three replicas that survive losing a provider need five; more than
    // that is the measured demand at work.
    assert!(
        current >= 0.4 - 1e-9,
        "pods using 400m each were measured: {w}"
    );
    assert!(
        w["status"]["demand"]["historySamples"].as_i64() >= Some(1),
        "{w}"
    );
    let placed = wait_placed(env, op, &namespace, &name, &pools).await;
    // At replicas.max the redundancy spare does not fit: the plan is infeasible, keeps what
    // runs and grows only up to replicas.max.
    assert_eq!(
        placed["status"]["desiredReplicas"].as_i64(),
        Some(6),
        "{placed}"
    );

    env.kubectl_ok("mgmt", &["delete", "mcw", &name, "-n", &namespace]);
    for p in &pools {
        env.kubectl_ok("mgmt", &["delete", "cpool", p]);
    }
}

#[tokio::test]
async fn an_invalid_spec_is_reported_and_changes_nothing_until_fixed() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    let pools = apply_pools(env, &run);
    let namespace = env.namespace("mcw", &["mgmt"]);
    let name = format!("web-{run}");
    // A CPU request of 0 passes the schema, but nothing can be sized from it.
    apply_workload(env, &namespace, &name, &run, 6, "0");
    let w = eventually(
        &format!("Ready=False InvalidSpec\n{}", op.log_text()),
        Duration::from_secs(60),
        || async {
            let w = workload(env, &namespace, &name)?;
            let generation = w["metadata"]["generation"].as_i64()?;
            let (status, reason, _) = condition(&w, "Ready")?;
            (w["status"]["observedGeneration"].as_i64() == Some(generation)
                && status == "False"
                && reason == "InvalidSpec")
                .then_some(w)
        },
    )
    .await;
    let (_, _, message) = condition(&w, "Ready").expect("Ready");
    assert!(message.contains("requests no CPU"), "{message}");
    let events = env.kubectl_ok(
        "mgmt",
        &[
            "get",
            "events",
            "-n",
            &namespace,
            "--field-selector",
            &format!("involvedObject.name={name},reason=InvalidSpec,type=Warning"),
            "-o",
            "jsonpath={.items[*].message}",
        ],
    );
    assert!(
        events.contains("requests no CPU"),
        "a Warning event: {events}"
    );

    // Fixed: placed as usual.
    let fixed = json!({"spec": {"template": {"spec": {"containers": [{
        "name": "app", "image": "registry.example/web:1",
        "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}}
    }]}}}});
    patch_workload(env, &namespace, &name, &fixed);
    let placed = wait_placed(env, op, &namespace, &name, &pools).await;
    assert_eq!(
        condition(&placed, "Ready").map(|c| c.1),
        Some("Placed".to_string()),
        "{placed}"
    );

    env.kubectl_ok("mgmt", &["delete", "mcw", &name, "-n", &namespace]);
    for p in &pools {
        env.kubectl_ok("mgmt", &["delete", "cpool", p]);
    }
}

#[tokio::test]
async fn an_operator_restart_keeps_what_runs_and_the_demand_history() {
    let env = Env::get();
    let _g = env.exclusive().await;
    let op = operator(env);
    let run = unique();
    let pools = apply_pools(env, &run);
    // Every pool Ready first: a member that an earlier test stopped may still be coming back,
    // and a placement made without it would move, rightly, once it is back; this test is
    // about the restart.
    eventually(
        &format!("pools {pools:?} Ready\n{}", op.log_text()),
        Duration::from_secs(60),
        || async {
            pools
                .iter()
                .all(|p| {
                    get_json(env, "mgmt", &["cpool", p]).is_some_and(|c| {
                        condition(&c, "Ready").is_some_and(|(status, _, _)| status == "True")
                    })
                })
                .then_some(())
        },
    )
    .await;
    let namespace = env.namespace("mcw", &["mgmt"]);
    let name = format!("web-{run}");
    apply_workload(env, &namespace, &name, &run, 6, "500m");
    let placed = wait_placed(env, op, &namespace, &name, &pools).await;
    let history = || {
        env.kubectl(
            "mgmt",
            &[
                "get",
                "workloadhistory",
                &name,
                "-n",
                &namespace,
                "-o",
                "jsonpath={.spec.history}",
            ],
        )
    };
    let samples = |text: &str| text.rsplit(' ').next().map_or(0, |v| v.split(',').count());
    let before = eventually(
        "a few steps of history",
        Duration::from_secs(60),
        || async {
            let text = String::from_utf8_lossy(&history().stdout).into_owned();
            (samples(&text) >= 3).then_some(text)
        },
    )
    .await;
    let uids = |w: &Value| -> Vec<(String, String)> {
        status_pools(w)
            .into_iter()
            .filter_map(|(pool, _)| {
                let d = member_deployment(env, cluster_of(&pool), &namespace, &name, &pool)?;
                Some((pool, d["metadata"]["uid"].as_str()?.to_string()))
            })
            .collect()
    };
    let uids_before = uids(&placed);

    op.restart(env);
    // The new operator resumes the stored history (same start, more samples) rather than
    // starting afresh, and keeps the member Deployments (same objects, same replicas).
    let start = |text: &str| text.split(' ').nth(2).map(str::to_string);
    eventually(
        &format!("history resumed after the restart\n{}", op.log_text()),
        Duration::from_secs(60),
        || async {
            let text = String::from_utf8_lossy(&history().stdout).into_owned();
            (start(&text) == start(&before) && samples(&text) > samples(&before)).then_some(())
        },
    )
    .await;
    let after = wait_placed(env, op, &namespace, &name, &pools).await;
    assert_eq!(
        status_pools(&after),
        status_pools(&placed),
        "the same placement"
    );
    assert_eq!(
        uids(&after),
        uids_before,
        "the member Deployments were not recreated"
    );
    // Status refreshes the sample count lazily (at most every 15 minutes while demand is
    // steady), but never shows the history as lost.
    assert!(
        after["status"]["demand"]["historySamples"].as_i64()
            >= placed["status"]["demand"]["historySamples"].as_i64(),
        "{after}"
    );

    env.kubectl_ok("mgmt", &["delete", "mcw", &name, "-n", &namespace]);
    for p in &pools {
        env.kubectl_ok("mgmt", &["delete", "cpool", p]);
    }
}

/// Messages of the workload's Events with `reason`, one per line.
fn events(env: &Env, namespace: &str, name: &str, reason: &str) -> String {
    env.kubectl_ok(
        "mgmt",
        &[
            "get",
            "events",
            "-n",
            namespace,
            "--field-selector",
            &format!("involvedObject.name={name},reason={reason}"),
            "-o",
            "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
        ],
    )
}

/// The workload's `status.traffic` weights by pool.
fn traffic(w: &Value) -> Vec<(String, i64)> {
    w["status"]["traffic"]["pools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r["name"].as_str()?.to_string(), r["weight"].as_i64()?)))
        .collect()
}

/// Ready replicas by pool, from status.
fn ready_pools(w: &Value) -> Vec<(String, i64)> {
    w["status"]["pools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some((
                r["name"].as_str()?.to_string(),
                r["readyReplicas"].as_i64()?,
            ))
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Waits for an Event of the workload with `reason`; returns their messages.
async fn wait_event(env: &Env, namespace: &str, name: &str, reason: &str) -> String {
    wait_event_saying(env, namespace, name, reason, "").await
}

/// Waits for an Event of the workload with `reason` whose message holds `needle` (Events are
/// sent in the background, so one may land just after the status it goes with); returns
/// the messages of all the workload's Events with that reason.
async fn wait_event_saying(
    env: &Env,
    namespace: &str,
    name: &str,
    reason: &str,
    needle: &str,
) -> String {
    let what = if needle.is_empty() {
        format!("a {reason} event for {name}")
    } else {
        format!("a {reason} event for {name} saying {needle:?}")
    };
    eventually(&what, Duration::from_secs(30), || async {
        let e = events(env, namespace, name, reason);
        (!e.trim().is_empty() && e.contains(needle)).then_some(e)
    })
    .await
}

/// Replicas of the workload's Deployment in each of `pools`, as the members say.
fn running_replicas(env: &Env, namespace: &str, name: &str, pools: &[String]) -> Vec<i64> {
    pools
        .iter()
        .map(|p| member_replicas(env, cluster_of(p), namespace, name, p).unwrap_or(0))
        .collect()
}

fn patch_workload(env: &Env, namespace: &str, name: &str, patch: &Value) {
    env.kubectl_ok(
        "mgmt",
        &[
            "patch",
            "mcw",
            name,
            "-n",
            namespace,
            "--type=merge",
            "-p",
            &patch.to_string(),
        ],
    );
}

/// Waits for `Degraded=True` with `reason` on the current generation.
async fn wait_degraded(
    env: &Env,
    op: &SharedOperator,
    namespace: &str,
    name: &str,
    reason: &str,
) -> Value {
    eventually(
        &format!("Degraded={reason} on {name}\n{}", op.log_text()),
        Duration::from_secs(60),
        || async {
            let w = workload(env, namespace, name)?;
            let generation = w["metadata"]["generation"].as_i64()?;
            let (status, why, _) = condition(&w, "Degraded")?;
            (w["status"]["observedGeneration"].as_i64() == Some(generation)
                && status == "True"
                && why == reason)
                .then_some(w)
        },
    )
    .await
}

#[tokio::test]
async fn constraints_that_cannot_hold_are_reported_and_reduce_nothing() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    let pools = apply_pools(env, &run);
    let namespace = env.namespace("mcw", &["mgmt"]);
    let name = format!("web-{run}");
    apply_workload(env, &namespace, &name, &run, 6, "500m");
    wait_placed(env, op, &namespace, &name, &pools).await;
    let before = running_replicas(env, &namespace, &name, &pools);

    // Surviving the loss of any 3 providers needs 4 of them; there are 3.
    patch_workload(
        env,
        &namespace,
        &name,
        &json!({"spec": {"placement": {"redundancy": {"tolerate": 3}}}}),
    );
    let w = wait_degraded(env, op, &namespace, &name, "Infeasible").await;
    let (_, _, message) = condition(&w, "Degraded").expect("Degraded");
    assert!(
        message.contains("needs at least 4 providers") && message.contains("there are 3"),
        "the message says why: {message}"
    );
    assert_eq!(
        condition(&w, "RedundancySatisfied").map(|c| (c.0, c.1)),
        Some(("False".to_string(), "Infeasible".to_string())),
        "{w}"
    );
    let warned = wait_event(env, &namespace, &name, "PlacementInfeasible").await;
    assert!(warned.contains("needs at least 4 providers"), "{warned}");
    // A few syncs later nothing that ran was reduced, and replicas.max still holds.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let infeasible = running_replicas(env, &namespace, &name, &pools);
    for (i, pool) in pools.iter().enumerate() {
        assert!(
            infeasible[i] >= before[i],
            "{pool}: {} running before, {} now",
            before[i],
            infeasible[i]
        );
    }
    assert!(
        infeasible.iter().sum::<i64>() <= 6,
        "replicas.max 6 holds: {infeasible:?}"
    );

    // A pool selector that matches no pool: nothing may take replicas, nothing is removed.
    patch_workload(
        env,
        &namespace,
        &name,
        &json!({"spec": {"placement": {
            "redundancy": {"tolerate": 1},
            "poolSelector": {"matchLabels": {"e2e-run": format!("none-{run}")}}
        }}}),
    );
    let w = wait_degraded(env, op, &namespace, &name, "NoEligiblePools").await;
    let (ready, reason, message) = condition(&w, "Ready").expect("Ready");
    assert_eq!(
        (ready.as_str(), reason.as_str()),
        ("False", "NoEligiblePools")
    );
    assert!(message.contains("no pool may take replicas"), "{message}");
    let warned = wait_event(env, &namespace, &name, "NoEligiblePools").await;
    assert!(warned.contains("no pool may take replicas"), "{warned}");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        running_replicas(env, &namespace, &name, &pools),
        infeasible,
        "what runs is kept while no pool matches"
    );

    env.kubectl_ok("mgmt", &["delete", "mcw", &name, "-n", &namespace]);
    for p in &pools {
        env.kubectl_ok("mgmt", &["delete", "cpool", p]);
    }
}

/// One observation of the forecast test: seconds into the demand cycle, the demand the test
/// drives, and what status said.
#[derive(Debug, Clone)]
struct Sample {
    cycle: u64,
    phase: u64,
    driven: f64,
    measured: f64,
    forecast: f64,
    model: String,
    desired: i64,
}

#[tokio::test]
async fn replicas_rise_ahead_of_a_recurring_peak_and_fall_after_the_stabilisation_window() {
    // A demand cycle of 100 s: 0.5 cores for 75 s, then 2.5 cores for 25 s. One replica
    // carries 250m (500m at the 50% target), so the trough needs 2 replicas and the peak 10.
    // The workload forecasts 30 s ahead with a 100 s season and says its replicas take 20 s
    // to start, so replicas are added for the forecast over 25 s (20 s + the 2 s sync
    // period, in 5 s steps). After a couple of cycles of measured history it must add
    // replicas while usage is still low, ahead of the peak, and remove them again once the
    // peak has passed and the 15 s stabilisation window is over.
    const SEASON: u64 = 100;
    const PEAK_FROM: u64 = 75;
    const LOW: f64 = 0.5;
    const HIGH: f64 = 2.5;
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    let pools = apply_pools(env, &run);
    // Only the aws member, which no test stops: a member whose API server was stopped and
    // started reports no pod CPU for minutes afterwards (see `hack/cluster.sh
    // start-apiserver`), and this test measures CPU.
    for p in pools.iter().filter(|p| !p.starts_with("aws-")) {
        env.kubectl_ok("mgmt", &["delete", "cpool", p]);
    }
    let pools: Vec<String> = pools
        .into_iter()
        .filter(|p| p.starts_with("aws-"))
        .collect();
    let namespace = env.namespace("mcw", &["mgmt"]);
    let name = format!("web-{run}");
    apply_json(
        env,
        &json!({
            "apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": {"min": 2, "max": 20},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{
                        "name": "app", "image": "registry.example/web:1",
                        "resources": {"requests": {"cpu": "500m", "memory": "128Mi"}}
                    }]}
                },
                "scaling": {
                    "targetCPUUtilizationPercentage": 50,
                    "scaleDownStabilization": "15s",
                    "startup": "20s",
                    "forecast": {"model": "Auto", "horizon": "30s", "season": format!("{SEASON}s"),
                                 "history": "30m", "quantile": 0.9}
                },
                "placement": {
                    "poolSelector": {"matchLabels": {"e2e-run": run}},
                    "redundancy": {"tolerate": 0, "domain": "Provider"}
                }
            }
        }),
    );
    // Drive the cycle: every pod reports total demand / running pods, so the total is what the
    // cycle says whatever the replica count. Watch status as it goes.
    let start = std::time::Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut last_usage = String::new();
    let outcome = loop {
        let elapsed = start.elapsed().as_secs();
        let (cycle, phase) = (elapsed / SEASON, elapsed % SEASON);
        let driven = if phase >= PEAK_FROM { HIGH } else { LOW };
        let pods: usize = MEMBERS
            .iter()
            .map(|m| running_pods(env, m.0, &namespace, &name))
            .sum();
        let per_pod = format!("{}m", (driven * 1000.0 / pods.max(1) as f64).round());
        if per_pod != last_usage {
            for (cluster, _, _, _) in MEMBERS {
                env.set_usage(cluster, &namespace, &per_pod);
            }
            last_usage = per_pod;
        }
        if let Some(w) = workload(env, &namespace, &name) {
            let d = &w["status"]["demand"];
            samples.push(Sample {
                cycle,
                phase,
                driven,
                measured: d["currentCores"].as_f64().unwrap_or(0.0),
                forecast: d["forecastPeakCores"].as_f64().unwrap_or(0.0),
                model: d["model"].as_str().unwrap_or("").to_string(),
                desired: w["status"]["desiredReplicas"].as_i64().unwrap_or(0),
            });
        }
        // Judge each finished cycle after the first two (the history the forecast learns from).
        if phase < 5 && cycle >= 3 {
            let prev = cycle - 1;
            let of = |c: u64, lo: u64, hi: u64| {
                samples
                    .iter()
                    .filter(move |s| s.cycle == c && (lo..hi).contains(&s.phase))
            };
            // The trough after the previous peak, once the stabilisation window has passed.
            let trough = of(prev, 30, 45)
                .map(|s| s.desired)
                .min()
                .unwrap_or(i64::MAX);
            // Shortly before the peak: usage is still low, as measured.
            let ahead: Vec<&Sample> = of(prev, 60, PEAK_FROM)
                .filter(|s| s.driven == LOW && s.measured < 1.0 && s.model != "Reactive")
                .collect();
            let risen = ahead.iter().find(|s| s.desired >= 8 && s.forecast >= 2.0);
            // The trough needs 2 replicas for 0.5 cores, plus what the 0.9 upper quantile of a
            // noisy trough adds (measured swings 0.25–0.5 as the driver catches up with the
            // pod count): at most 6, well below the peak's 10.
            if trough <= 6
                && let Some(r) = risen
            {
                break Ok((trough, (*r).clone()));
            }
        }
        if cycle >= 8 {
            break Err(());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let table: String = samples.iter().map(|s| format!("{s:?}\n")).collect();
    let (trough, risen) = match outcome {
        Ok(found) => found,
        Err(()) => panic!(
            "no cycle where replicas rose ahead of the peak and fell after it:\n{table}\n{}",
            op.log_text()
        ),
    };
    // The peak provisioned for did come, and the replicas raised ahead of it were still there
    // when it did: measured demand reached the driven peak while at least as many replicas
    // as at the rise were planned, or at least as many as the peak needs (the rise may have
    // gone above the peak's need, from the forecast's upper quantile, and the 15 s
    // stabilisation window may then bring it down to the need inside the 25 s peak).
    let peak: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            (s.cycle == risen.cycle && s.phase >= risen.phase)
                || (s.cycle == risen.cycle + 1 && s.phase < 5)
        })
        .filter(|s| s.measured >= 0.8 * HIGH)
        .collect();
    assert!(
        !peak.is_empty(),
        "the peak was measured after the rise:\n{table}"
    );
    // 250m carried per replica at the 50% target.
    let peak_need = (HIGH / 0.25).ceil() as i64;
    let held = risen.desired.min(peak_need);
    assert!(
        peak.iter().all(|s| s.desired >= held),
        "replicas held at {held} through the peak after rising to {} (trough {trough}):\n{table}",
        risen.desired
    );
    // The forecast's model is named with its backtest error, and the lead time is the
    // spec's startup plus one sync period, in whole steps.
    let w = workload(env, &namespace, &name).expect("workload");
    assert!(
        w["status"]["demand"]["backtestError"].as_f64().is_some(),
        "{w}"
    );
    assert_eq!(w["status"]["demand"]["leadSeconds"], 25, "{w}");

    env.kubectl_ok("mgmt", &["delete", "mcw", &name, "-n", &namespace]);
    for p in &pools {
        env.kubectl_ok("mgmt", &["delete", "cpool", p]);
    }
}
