//! State that survives: the failover memory and the scale-down stabiliser outlive an
//! operator crash, failback moves at most `maxMovesPerDecision` replicas per decision, and
//! what the members refuse reaches the user.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use skyfleet_e2e::{Env, eventually, stored_history, unique};

use super::{
    SECRET_NS, apply_json, apply_pools, condition, events, member_replicas, operator, status_pools,
    wait_event_saying, wait_placed, workload,
};

/// How many times the workload's Events with `reason` were said, repeats of one Event
/// (its `count`) included.
fn event_count(env: &Env, namespace: &str, name: &str, reason: &str) -> i64 {
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
            "jsonpath={range .items[*]}{.count}{\"\\n\"}{end}",
        ],
    )
    .lines()
    .map(|c| c.trim().parse::<i64>().unwrap_or(1).max(1))
    .sum()
}

/// MultiCloudWorkload reconciles the running operator has finished, from its /metrics.
fn workload_reconciles(op: &super::SharedOperator) -> f64 {
    let metrics =
        op.0.lock()
            .unwrap_or_else(|e| e.into_inner())
            .admin_get("/metrics")
            .map(|(_, body)| body)
            .unwrap_or_default();
    metrics
        .lines()
        .filter(|l| l.starts_with("skyfleet_reconciles_total") && l.contains("multicloudworkload"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The replicas each pool lost or gained in one Scaled event: `pool a→b, …: why`.
fn changes(note: &str) -> Vec<(String, i64, i64)> {
    let head = note.split(": ").next().unwrap_or_default();
    let head = head.split(" (").next().unwrap_or_default();
    head.split(", ")
        .filter_map(|c| {
            let (pool, ab) = c.rsplit_once(' ')?;
            let (a, b) = ab.split_once('→')?;
            Some((pool.to_string(), a.parse().ok()?, b.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn an_outage_fails_over_once_across_a_crash_and_fails_back_one_replica_per_decision() {
    let env = Env::get();
    let _g = env.exclusive().await;
    let op = operator(env);
    let run = unique();
    let pools = apply_pools(env, &run);
    let namespace = env.namespace("fb", &["mgmt"]);
    let name = format!("fb-{run}");
    apply_json(
        env,
        &json!({
            "apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": {"min": 3, "max": 8},
                "template": {
                    "metadata": {"labels": {"app": name},
                                 "annotations": {"pod-ready.stage.kwok.x-k8s.io/delay": "3s"}},
                    "spec": {"containers": [{"name": "app", "image": "registry.example/web:1",
                        "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}}}]}
                },
                "scaling": {"targetCPUUtilizationPercentage": 50},
                "placement": {
                    "poolSelector": {"matchLabels": {"e2e-run": run}},
                    "redundancy": {"tolerate": 1, "domain": "Provider"},
                    "maxMovesPerDecision": 1
                }
            }
        }),
    );
    let azure = format!("azure-{run}");
    let placed = wait_placed(env, op, &namespace, &name, &pools).await;
    let before = status_pools(&placed);
    assert!(
        before.iter().any(|(p, _)| *p == azure),
        "the cheapest provider is used: {before:?}"
    );

    let out = env.cluster_sh(&["stop-apiserver", "azure"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(
        &format!("a Failover event\n{}", op.log_text()),
        Duration::from_secs(60),
        || async { (!events(env, &namespace, &name, "Failover").trim().is_empty()).then_some(()) },
    )
    .await;
    // A crash during the outage: the new operator remembers the loss.
    op.restart(env);
    eventually(
        &format!(
            "the restarted operator has decided a few times\n{}",
            op.log_text()
        ),
        Duration::from_secs(60),
        || async { (workload_reconciles(op) >= 10.0).then_some(()) },
    )
    .await;
    let failovers = event_count(env, &namespace, &name, "Failover");
    assert_eq!(
        failovers,
        1,
        "one Failover event in total, repeats counted: {}",
        events(env, &namespace, &name, "Failover")
    );

    // Back: replicas return to the cheapest pool, one move per decision.
    let out = env.start_apiserver("azure");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(
        &format!("{name} back on {azure}\n{}", op.log_text()),
        Duration::from_secs(180),
        || async {
            let w = workload(env, &namespace, &name)?;
            let rows = status_pools(&w);
            let on_azure = rows.iter().find(|r| r.0 == azure).map_or(0, |r| r.1);
            let ready = w["status"]["readyReplicas"].as_i64()?;
            let desired = w["status"]["desiredReplicas"].as_i64()?;
            let in_member = member_replicas(env, "azure", &namespace, &name, &azure).unwrap_or(0);
            (on_azure > 0
                && in_member == on_azure
                && ready == desired
                && condition(&w, "Ready").map(|c| c.0).as_deref() == Some("True"))
            .then_some(w)
        },
    )
    .await;
    let scaled = events(env, &namespace, &name, "Scaled");
    let mut shrinks = 0;
    for note in scaled.lines() {
        let removed: i64 = changes(note).iter().map(|(_, a, b)| (a - b).max(0)).sum();
        assert!(
            removed <= 1,
            "at most one replica leaves a pool per decision: {note}"
        );
        shrinks += usize::from(removed > 0);
    }
    assert!(shrinks >= 1, "failback moved replicas: {scaled}");
    env.kubectl_ok(
        "mgmt",
        &["delete", "mcw", &name, "-n", &namespace, "--timeout=90s"],
    );
    for p in &pools {
        env.kubectl_ok("mgmt", &["delete", "cpool", p, "--wait=false"]);
    }
}

#[tokio::test]
async fn a_crash_inside_the_stabilisation_window_does_not_scale_down_early() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    let pools = apply_pools(env, &run);
    let namespace = env.namespace("stab", &["mgmt"]);
    let name = format!("st-{run}");
    let window = Duration::from_secs(90);
    for cluster in ["aws", "azure", "gcp"] {
        env.set_usage(cluster, &namespace, "400m");
    }
    apply_json(
        env,
        &json!({
            "apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": {"min": 3, "max": 8},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": "registry.example/web:1",
                        "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}}}]}},
                "scaling": {"targetCPUUtilizationPercentage": 50, "scaleDownStabilization": "90s",
                            "forecast": {"model": "None"}},
                "placement": {"poolSelector": {"matchLabels": {"e2e-run": run}},
                              "redundancy": {"tolerate": 0}}
            }
        }),
    );
    let high = eventually(
        &format!("{name} scaled up on demand\n{}", op.log_text()),
        Duration::from_secs(120),
        || async {
            let w = workload(env, &namespace, &name)?;
            (w["status"]["desiredReplicas"].as_i64()? >= 6).then_some(w)
        },
    )
    .await;
    let peak = high["status"]["desiredReplicas"].as_i64().expect("desired");
    // Demand falls; the operator crashes a little later, inside the window.
    for cluster in ["aws", "azure", "gcp"] {
        env.set_usage(cluster, &namespace, "10m");
    }
    let dropped = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    op.restart(env);
    let total = |env: &Env| -> i64 {
        pools
            .iter()
            .map(|p| member_replicas(env, super::cluster_of(p), &namespace, &name, p).unwrap_or(0))
            .sum()
    };
    // Until the window has passed since demand fell, nothing is removed.
    while dropped.elapsed() < window - Duration::from_secs(5) {
        let now = total(env);
        assert!(
            now >= peak,
            "scaled down {:?} after demand fell, inside the {window:?} window: {now} < {peak}\n{}",
            dropped.elapsed(),
            op.log_text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // And afterwards it does scale down.
    eventually(
        &format!("{name} scaled down after the window\n{}", op.log_text()),
        Duration::from_secs(120),
        || async { (total(env) < peak).then_some(()) },
    )
    .await;
    env.kubectl_ok(
        "mgmt",
        &["delete", "mcw", &name, "-n", &namespace, "--timeout=60s"],
    );
    for p in &pools {
        env.kubectl_ok("mgmt", &["delete", "cpool", p, "--wait=false"]);
    }
}

#[tokio::test]
async fn a_member_quota_that_refuses_the_pods_is_named_and_the_replicas_go_elsewhere() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    let namespace = env.namespace("quota", &["mgmt", "azure"]);
    let quota = format!("pods-{run}");
    let doc = json!({
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": quota, "namespace": namespace},
        "spec": {"hard": {"pods": "1"}}
    });
    let file = std::env::temp_dir().join(format!("skyfleet-e2e-quota-{run}.json"));
    std::fs::write(&file, doc.to_string()).expect("write manifest");
    env.kubectl_ok("azure", &["apply", "-f", file.to_str().expect("path")]);
    let _ = std::fs::remove_file(&file);
    let (cheap, dear) = (format!("azure-quota-{run}"), format!("gcp-room-{run}"));
    for (pool, cluster, price) in [(&cheap, "azure", 0.01), (&dear, "gcp", 0.09)] {
        let (provider, region) = if cluster == "azure" {
            ("azure", "eastus")
        } else {
            ("gcp", "us-central1")
        };
        apply_json(
            env,
            &json!({
                "apiVersion": "skyfleet.io/v1alpha1", "kind": "CloudPool",
                "metadata": {"name": pool, "labels": {"e2e-run": run}},
                "spec": {"provider": provider, "region": region,
                         "kubeconfigSecretRef": {"namespace": SECRET_NS, "name": format!("member-{cluster}")},
                         "pricing": {"cpuPerHour": price, "memoryGiBPerHour": 0.004}}
            }),
        );
    }
    let name = format!("q-{run}");
    apply_json(
        env,
        &json!({
            "apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": {"min": 3, "max": 3},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": "registry.example/web:1",
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}},
                "placement": {"poolSelector": {"matchLabels": {"e2e-run": run}},
                              "redundancy": {"tolerate": 0}}
            }
        }),
    );
    let w = eventually(
        &format!(
            "{name}: Degraded=MemberRefused naming the quota\n{}",
            op.log_text()
        ),
        Duration::from_secs(90),
        || async {
            let w = workload(env, &namespace, &name)?;
            let (status, reason, message) = condition(&w, "Degraded")?;
            (status == "True" && reason == "MemberRefused" && message.contains(&quota)).then_some(w)
        },
    )
    .await;
    wait_event_saying(env, &namespace, &name, "MemberRefused", &quota).await;
    // The replicas the quota refuses are missing: the plan puts them where there is room.
    let placed: Value = eventually(
        &format!(
            "{name}: 3 Ready replicas despite the quota\n{w}\n{}",
            op.log_text()
        ),
        Duration::from_secs(90),
        || async {
            let w = workload(env, &namespace, &name)?;
            let ready = w["status"]["readyReplicas"].as_i64()?;
            let on_dear = member_replicas(env, "gcp", &namespace, &name, &dear).unwrap_or(0);
            (ready >= 3 && on_dear >= 2).then_some(w)
        },
    )
    .await;
    assert!(
        status_pools(&placed).iter().map(|r| r.1).sum::<i64>() >= 3,
        "{placed}"
    );
    // Held at its Ready one, the cheap pool's Deployment no longer reports the quota; it is
    // not planned in full again (and refused again) until its hold ends, and says so.
    let (status, reason, message) = condition(&placed, "Degraded").expect("Degraded");
    assert!(
        status == "True" && reason == "MemberRefused" && message.contains("then tried again"),
        "{reason}: {message}"
    );
    let cheap_now = member_replicas(env, "azure", &namespace, &name, &cheap).unwrap_or(0);
    assert!(
        cheap_now <= 1,
        "the cheap pool is held at no more than the quota admits: {cheap_now}"
    );
    env.kubectl_ok(
        "mgmt",
        &["delete", "mcw", &name, "-n", &namespace, "--timeout=60s"],
    );
    for p in [&cheap, &dear] {
        env.kubectl_ok("mgmt", &["delete", "cpool", p, "--wait=false"]);
    }
}

#[tokio::test]
async fn deleting_a_workload_is_not_held_by_a_pool_it_never_ran_in() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    let (good, broken) = (format!("gcp-ok-{run}"), format!("aws-nosecret-{run}"));
    for (pool, provider, region, secret) in [
        (&good, "gcp", "us-central1", "member-gcp".to_string()),
        (&broken, "aws", "us-east-1", format!("missing-{run}")),
    ] {
        apply_json(
            env,
            &json!({
                "apiVersion": "skyfleet.io/v1alpha1", "kind": "CloudPool",
                "metadata": {"name": pool, "labels": {"e2e-run": run}},
                "spec": {"provider": provider, "region": region,
                         "kubeconfigSecretRef": {"namespace": SECRET_NS, "name": secret},
                         "pricing": {"cpuPerHour": 0.05, "memoryGiBPerHour": 0.004}}
            }),
        );
    }
    let namespace = env.namespace("del", &["mgmt"]);
    let name = format!("del-{run}");
    apply_json(
        env,
        &json!({
            "apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": {"min": 2, "max": 2},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": "registry.example/web:1",
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}},
                "placement": {"poolSelector": {"matchLabels": {"e2e-run": run}},
                              "redundancy": {"tolerate": 0}}
            }
        }),
    );
    eventually(
        &format!("{name} runs in {good}\n{}", op.log_text()),
        Duration::from_secs(90),
        || async {
            (member_replicas(env, "gcp", &namespace, &name, &good) == Some(2)).then_some(())
        },
    )
    .await;
    env.kubectl_ok(
        "mgmt",
        &["delete", "mcw", &name, "-n", &namespace, "--wait=false"],
    );
    eventually(
        &format!(
            "{name} deleted although {broken}'s Secret is missing\n{}",
            op.log_text()
        ),
        Duration::from_secs(60),
        || async {
            let gone = !env
                .kubectl("mgmt", &["get", "mcw", &name, "-n", &namespace])
                .status
                .success();
            (gone && member_replicas(env, "gcp", &namespace, &name, &good).is_none()).then_some(())
        },
    )
    .await;
    for p in [&good, &broken] {
        env.kubectl_ok("mgmt", &["delete", "cpool", p, "--wait=false"]);
    }
}

#[tokio::test]
async fn a_management_api_server_restart_keeps_the_history() {
    let env = Env::get();
    let _g = env.exclusive().await;
    let op = operator(env);
    let run = unique();
    let pools = apply_pools(env, &run);
    let namespace = env.namespace("hist", &["mgmt"]);
    for cluster in ["aws", "azure", "gcp"] {
        env.set_usage(cluster, &namespace, "200m");
    }
    let name = format!("h-{run}");
    super::apply_workload(env, &namespace, &name, &run, 6, "500m");
    let before = eventually(
        &format!("{name}: a few history steps stored\n{}", op.log_text()),
        Duration::from_secs(120),
        || async {
            let h = stored_history(env, &namespace, &name)?;
            (h.2.iter().filter(|v| !v.is_empty()).count() >= 4).then_some(h)
        },
    )
    .await;

    let out = env.cluster_sh(&["stop-apiserver", "mgmt"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let out = env.cluster_sh(&["start-apiserver", "mgmt"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let after = eventually(
        &format!(
            "{name}: history grows again after the restart\n{}",
            op.log_text()
        ),
        Duration::from_secs(120),
        || async {
            let h = stored_history(env, &namespace, &name)?;
            (h.2.len() >= before.2.len() + 3).then_some(h)
        },
    )
    .await;
    assert_eq!(
        (&after.0, &after.1),
        (&before.0, &before.1),
        "same step and start"
    );
    let done = before.2.len() - 1;
    assert_eq!(
        after.2[..done],
        before.2[..done],
        "the steps stored before are intact"
    );
    env.kubectl_ok(
        "mgmt",
        &["delete", "mcw", &name, "-n", &namespace, "--timeout=60s"],
    );
    for p in &pools {
        env.kubectl_ok("mgmt", &["delete", "cpool", p, "--wait=false"]);
    }
}

/// An upgrade from a version that kept the history in a ConfigMap: the history is carried
/// into the workload's WorkloadHistory with every stored step intact, and the ConfigMap is
/// left as it was (read only; it goes with the workload).
#[tokio::test]
async fn a_history_kept_in_a_configmap_by_an_older_version_is_migrated_intact() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    let pools = apply_pools(env, &run);
    let namespace = env.namespace("migrate", &["mgmt"]);
    let name = format!("mg-{run}");
    // What an older skyfleet stored: a minute of 5 s steps, in millicores.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let start = (now - 60) / 5 * 5;
    let old: Vec<String> = (0..12).map(|i| (300 + 10 * i).to_string()).collect();
    let text = format!("v1 5 {start} {}", old.join(","));
    apply_json(
        env,
        &json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("{name}-skyfleet-history"), "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "skyfleet", "skyfleet.io/workload": name}},
            "data": {"history": text}}),
    );
    super::apply_workload(env, &namespace, &name, &run, 6, "500m");
    let migrated = eventually(
        &format!(
            "{name}: its WorkloadHistory holds the old steps\n{}",
            op.log_text()
        ),
        Duration::from_secs(90),
        || async {
            let h = stored_history(env, &namespace, &name)?;
            (h.2.len() > old.len()).then_some(h)
        },
    )
    .await;
    assert_eq!(
        (migrated.0.as_str(), migrated.1.as_str()),
        ("5", start.to_string().as_str())
    );
    assert_eq!(
        migrated.2[..old.len()],
        old[..],
        "every stored step carried over"
    );
    assert!(
        op.log_text()
            .contains("migrating the demand history from its ConfigMap")
    );
    let left = env.kubectl_ok(
        "mgmt",
        &[
            "get",
            "configmap",
            &format!("{name}-skyfleet-history"),
            "-n",
            &namespace,
            "-o",
            "jsonpath={.data.history}",
        ],
    );
    assert_eq!(left, text, "the ConfigMap is left as it was");
    env.kubectl_ok(
        "mgmt",
        &["delete", "mcw", &name, "-n", &namespace, "--timeout=60s"],
    );
    for p in &pools {
        env.kubectl_ok("mgmt", &["delete", "cpool", p, "--wait=false"]);
    }
}

/// A stored history a tenant made implausible (it starts a day in the future) is refused:
/// the workload says `HistoryValid=False/HistoryInvalid` with the reason and an Event, and
/// runs reactively all the same.
#[tokio::test]
async fn a_tampered_history_is_refused_with_a_condition_and_the_workload_runs_on() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    let pools = apply_pools(env, &run);
    let namespace = env.namespace("tamper", &["mgmt"]);
    let name = format!("tp-{run}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    apply_json(
        env,
        &json!({"apiVersion": "skyfleet.io/v1alpha1", "kind": "WorkloadHistory",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"history": format!("v1 5 {} 100,200,300", now + 86_400)}}),
    );
    super::apply_workload(env, &namespace, &name, &run, 6, "500m");
    let w = eventually(
        &format!("{name}: HistoryValid=False\n{}", op.log_text()),
        Duration::from_secs(90),
        || async {
            let w = workload(env, &namespace, &name)?;
            let (status, reason, _) = condition(&w, "HistoryValid")?;
            (status == "False" && reason == "HistoryInvalid").then_some(w)
        },
    )
    .await;
    let (_, _, message) = condition(&w, "HistoryValid").expect("HistoryValid");
    assert!(message.contains("after now"), "{message}");
    wait_event_saying(env, &namespace, &name, "HistoryInvalid", "after now").await;
    wait_placed(env, op, &namespace, &name, &pools).await;
    env.kubectl_ok(
        "mgmt",
        &["delete", "mcw", &name, "-n", &namespace, "--timeout=60s"],
    );
    for p in &pools {
        env.kubectl_ok("mgmt", &["delete", "cpool", p, "--wait=false"]);
    }
}
