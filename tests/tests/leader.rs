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
