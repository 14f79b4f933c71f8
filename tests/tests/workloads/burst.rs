//! Burst protection: demand that jumps past what the Ready replicas carry is met at once,
//! with headroom, while the forecast still says it will stay low.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use skyfleet_e2e::{Env, eventually, unique};

use super::{STEP_SECS, apply_json, apply_pools, operator, pod_names, seed_history, wait_event};

#[tokio::test]
async fn a_burst_the_forecast_does_not_see_is_met_at_once_with_headroom() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    // Only the aws member, which no test stops (see the forecast test in main.rs).
    let pools = apply_pools(env, &run);
    for p in pools.iter().filter(|p| !p.starts_with("aws-")) {
        env.kubectl_ok("mgmt", &["delete", "cpool", p]);
    }
    let pool = format!("aws-{run}");
    let namespace = env.namespace("burst", &["mgmt"]);
    let name = format!("b-{run}");
    // Ten minutes of a flat 0.3 cores: a one-minute seasonal-naive forecast says 0.3 for the
    // next minute, whatever is measured now.
    seed_history(env, &namespace, &name, (600 / STEP_SECS) as usize, |_| 0.3);
    env.set_usage("aws", &namespace, "100m");
    apply_json(
        env,
        &json!({
            "apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": {"min": 3, "max": 30},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{
                        "name": "app", "image": "registry.example/web:1",
                        "resources": {"requests": {"cpu": "500m", "memory": "128Mi"}}
                    }]}
                },
                "scaling": {
                    "targetCPUUtilizationPercentage": 50,
                    "burstHeadroomPercent": 10,
                    "forecast": {"model": "SeasonalNaive", "horizon": "30s", "season": "1m",
                                 "history": "10m", "quantile": 0.9}
                },
                "placement": {
                    "poolSelector": {"matchLabels": {"e2e-run": run}},
                    "redundancy": {"tolerate": 0}
                }
            }
        }),
    );
    let calm = eventually(
        &format!("{name}: 3 Ready replicas on a forecast\n{}", op.log_text()),
        Duration::from_secs(120),
        || async {
            let w = super::workload(env, &namespace, &name)?;
            let s = &w["status"];
            (s["readyReplicas"].as_i64()? == 3
                && s["desiredReplicas"].as_i64()? == 3
                && s["demand"]["model"] == "SeasonalNaive")
                .then_some(w)
        },
    )
    .await;
    assert!(
        calm["status"]["demand"]["burst"].is_null(),
        "no burst at 0.3 cores on 3 replicas that carry 0.75: {calm}"
    );

    // The three pods jump to 1 core each: 3 cores, where the three Ready replicas carry
    // 0.75 (250m each at the 50% target). Pods added later report nothing, so the total
    // stays 3 cores.
    let pods = pod_names(env, "aws", &namespace, &name);
    assert_eq!(pods.len(), 3, "{pods:?}");
    env.set_pod_usage("aws", &namespace, &pods, "1000m");
    let jumped = Instant::now();
    // 3 × 1.1 headroom = 3.3 cores: 14 replicas of 250m (12 would carry 3 cores exactly).
    let need = (3.0_f64 * 1.1 / 0.25).ceil() as i64;
    let seen: Value = eventually(
        &format!(
            "{name}: {need} replicas planned for the burst while the forecast says less\n{}",
            op.log_text()
        ),
        Duration::from_secs(50),
        || async {
            let w = super::workload(env, &namespace, &name)?;
            let d = &w["status"]["demand"];
            let measured = d["currentCores"].as_f64()?;
            let forecast = d["forecastPeakCores"].as_f64()?;
            (measured >= 2.9 && forecast < 1.0 && w["status"]["desiredReplicas"].as_i64()? >= need)
                .then_some(w)
        },
    )
    .await;
    let took = jumped.elapsed();
    assert!(
        seen["status"]["demand"]["floorCores"].as_f64() >= Some(3.3 - 0.05),
        "the floor is measured demand × 1.1: {seen}"
    );
    let note = wait_event(env, &namespace, &name, "BurstScaleUp").await;
    assert!(
        note.contains("exceeds the") && note.contains("whatever the forecast says"),
        "{note}"
    );
    eprintln!(
        "burst figures: {need} replicas planned {:.1}s after usage jumped to 3 cores (forecast \
         {} cores); event: {}",
        took.as_secs_f64(),
        seen["status"]["demand"]["forecastPeakCores"],
        note.lines().next().unwrap_or("")
    );

    // The scale-up taught the operator how long replicas take to be Ready here (kwok starts
    // pods within seconds), and the lead time replicas are sized for is that startup plus
    // one decision period, in whole 5 s history steps.
    let started: Value = eventually(
        &format!("{name}: the measured startup in status\n{}", op.log_text()),
        Duration::from_secs(60),
        || async {
            let w = super::workload(env, &namespace, &name)?;
            (w["status"]["readyReplicas"].as_i64()? >= need
                && w["status"]["demand"]["startupSeconds"].as_i64().is_some())
            .then_some(w)
        },
    )
    .await;
    let demand = &started["status"]["demand"];
    let startup = demand["startupSeconds"].as_i64().unwrap_or(-1);
    assert!(
        (0..=30).contains(&startup),
        "kwok pods are Ready within seconds: {demand}"
    );
    let lead = demand["leadSeconds"].as_i64().unwrap_or(-1);
    let step = super::STEP_SECS;
    assert!(
        lead >= startup + 2 && lead % step == 0 && lead < startup + 2 + step,
        "lead = startup + the 2 s sync period, rounded up to a {step} s step: {demand}"
    );

    env.kubectl_ok("mgmt", &["delete", "mcw", &name, "-n", &namespace]);
    env.kubectl_ok("mgmt", &["delete", "cpool", &pool]);
}
