//! Two operator replicas: exactly one holds the lease and acts; kill it and the other takes
//! over and keeps the pools probed. Also checks the admin endpoints of each replica.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use skyfleet_e2e::{Env, Operator, eventually, unique};

const LEASE_NS: &str = "skyfleet-system";

fn holder(env: &Env, lease: &str) -> Option<String> {
    let out = env.kubectl(
        "mgmt",
        &[
            "get",
            "lease",
            lease,
            "-n",
            LEASE_NS,
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
    );
    let h = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !h.is_empty()).then_some(h)
}

fn leader_gauge(op: &Operator) -> Option<i64> {
    let (code, body) = op.admin_get("/metrics")?;
    if code != 200 {
        return None;
    }
    body.lines()
        .find_map(|l| l.strip_prefix("skyfleet_leader "))
        .and_then(|v| v.trim().parse().ok())
}

fn pool_ready(env: &Env, pool: &str) -> bool {
    let out = env.kubectl("mgmt", &["get", "cpool", pool, "-o", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

#[tokio::test]
async fn one_leader_acts_and_a_standby_takes_over() {
    let env = Env::get();
    let _g = env.exclusive().await;
    env.install_crds();
    let _ = env.kubectl("mgmt", &["create", "namespace", LEASE_NS]);
    let lease = format!("skyfleet-leader-{}", unique());
    let args = |id: &str| {
        vec![
            "--leader-elect".to_string(),
            format!("--lease-name={lease}"),
            format!("--lease-namespace={LEASE_NS}"),
            "--lease-duration=6s".to_string(),
            "--lease-grace=2s".to_string(),
            format!("--identity={id}"),
            "--probe-period=2s".to_string(),
        ]
    };
    let a_args = args("replica-a");
    let b_args = args("replica-b");
    let mut a = env.start_operator(&a_args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut b = env.start_operator(&b_args.iter().map(String::as_str).collect::<Vec<_>>());

    // Both are alive and ready (a standby is ready: it can take over), exactly one leads.
    for op in [&a, &b] {
        eventually(
            "/healthz and /readyz answer 200",
            Duration::from_secs(30),
            || async {
                let h = op.admin_get("/healthz")?;
                let r = op.admin_get("/readyz")?;
                (h.0 == 200 && r.0 == 200).then_some(())
            },
        )
        .await;
    }
    let first = eventually("a lease holder", Duration::from_secs(30), || async {
        holder(env, &lease)
    })
    .await;
    let (leader, standby) = if first == "replica-a" {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    eventually(
        "the leader's metrics say it leads and the standby's say it does not",
        Duration::from_secs(20),
        || async {
            (leader_gauge(leader) == Some(1) && leader_gauge(standby) == Some(0)).then_some(())
        },
    )
    .await;

    // Only the leader acts: a new pool gets its status.
    let pool = format!("leader-pool-{}", unique());
    let spec = json!({"apiVersion": "skyfleet.io/v1alpha1", "kind": "CloudPool", "metadata": {"name": pool},
        "spec": {"provider": "onprem", "region": "mgmt", "pricing": {"cpuPerHour": 0.01, "memoryGiBPerHour": 0.001}}});
    let file = env.path(format!("target/e2e-{pool}.json"));
    std::fs::write(&file, spec.to_string()).expect("write pool");
    env.kubectl_ok("mgmt", &["apply", "-f", file.to_str().expect("path")]);
    eventually(
        "the leader probes the new pool",
        Duration::from_secs(30),
        || async { pool_ready(env, &pool).then_some(()) },
    )
    .await;

    // Kill the leader: the standby takes the lease after it expires, and acts.
    leader.kill();
    let killed = Instant::now();
    let second = eventually(
        &format!("the standby to take over\n{}", standby.log_text()),
        Duration::from_secs(40),
        || async { holder(env, &lease).filter(|h| *h != first) },
    )
    .await;
    let took = killed.elapsed();
    eprintln!("lease moved from {first} to {second} {took:?} after the leader was killed");
    eventually(
        "the new leader's metrics say it leads",
        Duration::from_secs(20),
        || async { (leader_gauge(standby) == Some(1)).then_some(()) },
    )
    .await;
    env.kubectl_ok(
        "mgmt",
        &[
            "patch",
            "cpool",
            &pool,
            "--type=merge",
            "-p",
            r#"{"spec":{"unschedulable":true}}"#,
        ],
    );
    eventually(
        "the new leader acts on a change",
        Duration::from_secs(30),
        || async {
            let out = env.kubectl(
                "mgmt",
                &[
                    "get",
                    "cpool",
                    &pool,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}",
                ],
            );
            (String::from_utf8_lossy(&out.stdout) == "Drained").then_some(())
        },
    )
    .await;
    assert!(standby.running(), "the new leader keeps running");
    env.kubectl_ok("mgmt", &["delete", "cpool", &pool]);
    let _ = std::fs::remove_file(file);
}

/// Applies `doc` on the management cluster.
fn apply(env: &Env, doc: &Value) {
    let file = env.path(format!("target/e2e-leader-{}.json", unique()));
    std::fs::write(&file, doc.to_string()).expect("write manifest");
    env.kubectl_ok("mgmt", &["apply", "-f", file.to_str().expect("path")]);
    let _ = std::fs::remove_file(file);
}

/// `spec.replicas` of the workload's Deployment on the management cluster (its pool).
fn replicas(env: &Env, namespace: &str, name: &str) -> Option<i64> {
    let out = env.kubectl(
        "mgmt",
        &[
            "get",
            "deploy",
            "-n",
            namespace,
            "-l",
            &format!("skyfleet.io/workload={name}"),
            "-o",
            "jsonpath={.items[*].spec.replicas}",
        ],
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Each of `ids` gets a ServiceAccount with what the operator needs (wide, for a test) and
/// its own RoleBinding for Leases, so one instance's lease access can be revoked alone.
fn fence_rbac(env: &Env, run: &str, ids: &[&str]) {
    let role = format!("skyfleet-e2e-fence-{run}");
    let mut items = vec![
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": role},
        "rules": [
            {"apiGroups": ["skyfleet.io"], "resources": ["*"], "verbs": ["*"]},
            {"apiGroups": [""], "resources": ["configmaps", "namespaces", "nodes", "secrets", "events"], "verbs": ["*"]},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["*"]},
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]},
            {"apiGroups": ["metrics.k8s.io"], "resources": ["pods"], "verbs": ["get", "list"]}
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": format!("{role}-leases"), "namespace": LEASE_NS},
            "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["*"]}]}),
    ];
    for id in ids {
        let subject = json!([{"kind": "ServiceAccount", "name": id, "namespace": LEASE_NS}]);
        items.push(json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": id, "namespace": LEASE_NS}}));
        items.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": format!("{role}-{id}")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": subject}));
        items.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": format!("{id}-leases"), "namespace": LEASE_NS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": format!("{role}-leases")},
            "subjects": subject}));
    }
    apply(
        env,
        &json!({"apiVersion": "v1", "kind": "List", "items": items}),
    );
}

/// A leader that can no longer renew its lease (its access to Leases revoked) stops writing
/// to members once the lease may have passed, and stops; it never acts beside the next
/// leader. The workload changes after the takeover, while nobody else is running: any write
/// then is the old leader's.
#[tokio::test]
async fn a_leader_that_cannot_renew_writes_nothing_once_its_lease_may_have_passed() {
    let env = Env::get();
    let _g = env.exclusive().await;
    env.install_crds();
    let _ = env.kubectl("mgmt", &["create", "namespace", LEASE_NS]);
    let run = unique();
    let (id_a, id_b) = (format!("fence-a-{run}"), format!("fence-b-{run}"));
    fence_rbac(env, &run, &[&id_a, &id_b]);
    let lease = format!("skyfleet-fence-{run}");
    let args = |id: &str| {
        vec![
            "--leader-elect".to_string(),
            format!("--lease-name={lease}"),
            format!("--lease-namespace={LEASE_NS}"),
            "--lease-duration=6s".to_string(),
            "--lease-grace=2s".to_string(),
            format!("--identity={id}"),
            "--probe-period=2s".to_string(),
            "--sync-period=2s".to_string(),
        ]
    };
    let start = |id: &str| {
        let kubeconfig = env.token_kubeconfig("mgmt", LEASE_NS, id);
        let a = args(id);
        env.start_operator_as(
            &kubeconfig,
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };
    let mut leader = start(&id_a);
    eventually(
        &format!("{id_a} leads\n{}", leader.log_text()),
        Duration::from_secs(30),
        || async { holder(env, &lease).filter(|h| *h == id_a) },
    )
    .await;
    let mut standby = start(&id_b);

    // A workload on a pool of the management cluster itself, placed by the leader.
    let pool = format!("fence-pool-{run}");
    apply(
        env,
        &json!({"apiVersion": "skyfleet.io/v1alpha1", "kind": "CloudPool",
            "metadata": {"name": pool, "labels": {"fence-run": run}},
            "spec": {"provider": "onprem", "region": "mgmt",
                     "pricing": {"cpuPerHour": 0.01, "memoryGiBPerHour": 0.001}}}),
    );
    let namespace = env.namespace("fence", &["mgmt"]);
    let name = format!("fw-{run}");
    let workload = |n: i32| {
        json!({"apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": {"min": n, "max": n},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": "app:1",
                                      "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}},
                     "scaling": {"forecast": {"model": "None"}},
                     "placement": {"poolSelector": {"matchLabels": {"fence-run": run}},
                                   "redundancy": {"tolerate": 0}}}})
    };
    apply(env, &workload(2));
    eventually(
        &format!("{name} placed by the leader\n{}", leader.log_text()),
        Duration::from_secs(60),
        || async { (replicas(env, &namespace, &name) == Some(2)).then_some(()) },
    )
    .await;

    // The leader loses its access to Leases: the standby takes over once the lease expires.
    env.kubectl_ok(
        "mgmt",
        &[
            "delete",
            "rolebinding",
            &format!("{id_a}-leases"),
            "-n",
            LEASE_NS,
        ],
    );
    eventually(
        &format!("{id_b} takes over\n{}", standby.log_text()),
        Duration::from_secs(40),
        || async { holder(env, &lease).filter(|h| *h == id_b) },
    )
    .await;
    // The new leader goes too, and the workload changes while nobody else runs.
    standby.kill();
    let before = leader.log_text().len();
    apply(env, &workload(3));
    let changed = Instant::now();
    while changed.elapsed() < Duration::from_secs(4) {
        assert_eq!(
            replicas(env, &namespace, &name),
            Some(2),
            "the old leader wrote to a member after its lease had passed\n{}",
            &leader.log_text()[before..]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !leader.running(),
        "the old leader stopped once its lease may have passed\n{}",
        leader.log_text()
    );
    assert!(
        leader.log_text().contains("not renewed in time"),
        "{}",
        leader.log_text()
    );
    let _ = env.kubectl(
        "mgmt",
        &["delete", "mcw", &name, "-n", &namespace, "--wait=false"],
    );
    let _ = env.kubectl("mgmt", &["delete", "cpool", &pool, "--wait=false"]);
}
