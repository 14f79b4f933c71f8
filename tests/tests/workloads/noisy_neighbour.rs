//! One tenant cannot stall the others: the worst workload the CRD bounds still allow (10 000
//! replicas, 90 days of stored history, a 24 h horizon, a 14-day season) beside twenty
//! ordinary ones. The ordinary ones converge, the worst one is decided (a decision that
//! overruns its deadline is reported, never hung on), and the operator stays live. The figures (convergence times
//! alone and beside it, the operator's RSS) are printed for the note, not asserted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use skyfleet_e2e::{Env, eventually, unique};

use super::make_before_break::apply_pool_with;
use super::{
    MEMBERS, STEP_SECS, apply_json, apply_pools, events, get_json, operator, seed_history,
};

const ORDINARY: usize = 20;

/// Creates `ORDINARY` two-replica workloads at once and returns, per workload, how long after
/// its creation status first showed both replicas Ready.
async fn converge_ordinary(env: &Env, namespace: &str, run: &str, tag: &str) -> Vec<Duration> {
    let names: Vec<String> = (0..ORDINARY).map(|i| format!("n{tag}{i}-{run}")).collect();
    let start = Instant::now();
    for name in &names {
        apply_json(
            env,
            &json!({
                "apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "replicas": {"min": 2, "max": 2},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{
                            "name": "app", "image": "registry.example/web:1",
                            "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}}
                        }]}
                    },
                    "placement": {"poolSelector": {"matchLabels": {"e2e-run": run}},
                                  "redundancy": {"tolerate": 1, "domain": "Provider"}}
                }
            }),
        );
    }
    let mut converged: Vec<Option<Duration>> = vec![None; ORDINARY];
    eventually(
        &format!("{ORDINARY} ordinary workloads ({tag}) with 2 Ready replicas each"),
        Duration::from_secs(240),
        || {
            let all = get_json(env, "mgmt", &["mcw", "-n", namespace]);
            let at = start.elapsed();
            let items = all
                .as_ref()
                .and_then(|a| a["items"].as_array().cloned())
                .unwrap_or_default();
            for (i, name) in names.iter().enumerate() {
                let ready = items.iter().any(|w| {
                    w["metadata"]["name"] == json!(name)
                        && w["status"]["desiredReplicas"] == json!(2)
                        && w["status"]["readyReplicas"] == json!(2)
                });
                if ready && converged[i].is_none() {
                    converged[i] = Some(at);
                }
            }
            let done = converged.iter().all(Option::is_some);
            async move { done.then_some(()) }
        },
    )
    .await;
    for name in &names {
        env.kubectl_ok(
            "mgmt",
            &["delete", "mcw", name, "-n", namespace, "--wait=false"],
        );
    }
    converged.into_iter().flatten().collect()
}

/// Median and largest of `d`, in seconds.
fn spread(d: &[Duration]) -> (f64, f64) {
    let mut s: Vec<f64> = d.iter().map(Duration::as_secs_f64).collect();
    s.sort_by(f64::total_cmp);
    (s[s.len() / 2], s[s.len() - 1])
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// A stored history as full as the worst workload's window holds: 90 days at the suite's
/// step of a daily cycle around 4 000 cores.
fn worst_history(env: &Env, namespace: &str, name: &str) {
    let window = 90 * 86_400 / STEP_SECS;
    seed_history(env, namespace, name, window as usize, |i| {
        let day = (i as f64 * STEP_SECS as f64 * std::f64::consts::TAU / 86_400.0).sin();
        4_000.0 + 2_000.0 * day
    });
}

#[tokio::test]
async fn the_worst_workload_the_bounds_allow_does_not_stall_twenty_others() {
    let env = Env::get();
    // Alone on the suite's operator, so what is measured is this test's load.
    let _g = env.exclusive().await;
    let op = operator(env);
    let pid = op.pid();
    let run = unique();
    let pools = apply_pools(env, &run);
    // The worst workload gets pools of its own, each capped at 3 cores, so its 10 000
    // replicas cannot flood the members: what it costs is the operator's forecast and solve.
    let worst_run = format!("{run}-worst");
    let worst_pools: Vec<String> = MEMBERS
        .iter()
        .map(|(cluster, ..)| {
            let name = format!("worst-{cluster}-{run}");
            apply_pool_with(
                env,
                &name,
                cluster,
                0.01,
                json!({"e2e-run": worst_run}),
                json!({"capacity": {"cpu": "3", "memory": "8Gi"}}),
            );
            name
        })
        .collect();
    let namespace = env.namespace("noisy", &["mgmt"]);

    let peak = Arc::new(AtomicU64::new(rss_kib(pid)));
    let before = peak.load(Ordering::Relaxed);
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    let alone = converge_ordinary(env, &namespace, &run, "a").await;

    let worst = format!("worst-{run}");
    worst_history(env, &namespace, &worst);
    let created = Instant::now();
    apply_json(
        env,
        &json!({
            "apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
            "metadata": {"name": worst, "namespace": namespace},
            "spec": {
                "replicas": {"min": 1, "max": 10_000},
                "template": {
                    "metadata": {"labels": {"app": worst}},
                    "spec": {"containers": [{
                        "name": "app", "image": "registry.example/web:1",
                        "resources": {"requests": {"cpu": "1", "memory": "64Mi"}}
                    }]}
                },
                "scaling": {
                    "targetCPUUtilizationPercentage": 1,
                    "scaleDownStabilization": "24h",
                    "forecast": {"model": "Auto", "horizon": "24h", "season": "14d",
                                 "history": "90d", "quantile": 0.999}
                },
                "placement": {
                    "poolSelector": {"matchLabels": {"e2e-run": worst_run}},
                    "redundancy": {"tolerate": 3, "domain": "Pool"},
                    "spread": {"minPools": 3}
                }
            }
        }),
    );
    // The ordinary workloads come while the worst one's history is being fitted.
    eventually(
        &format!("the operator reads {worst}'s stored history"),
        Duration::from_secs(60),
        || {
            let log = op.log_text();
            let read = log
                .lines()
                .any(|l| l.contains(&worst) && l.contains("demand history"));
            async move { read.then_some(()) }
        },
    )
    .await;
    let beside = converge_ordinary(env, &namespace, &run, "b").await;

    // The worst workload is decided: an overrun of the decision deadline is reported, and the
    // decision that overran keeps what it fitted for the next one, which then finishes in time.
    let decided = eventually(
        &format!("{worst}: a decision in status\n{}", op.log_text()),
        Duration::from_secs(300),
        || async {
            let w: Value = get_json(env, "mgmt", &["mcw", &worst, "-n", &namespace])?;
            let model = w["status"]["demand"]["model"].as_str().unwrap_or("");
            (w["status"]["observedGeneration"].is_i64() && !model.is_empty())
                .then(|| format!("{} desired, model {model}", w["status"]["desiredReplicas"]))
        },
    )
    .await;
    let timeouts = events(env, &namespace, &worst, "DecisionTimedOut");
    let outcome = format!(
        "decided ({decided}), {} DecisionTimedOut event(s) before",
        timeouts.lines().filter(|l| !l.trim().is_empty()).count()
    );
    let first_answer = created.elapsed();
    let live = op.admin_get("/healthz").map(|(code, _)| code);
    sampler.abort();
    let peak = peak.load(Ordering::Relaxed);
    let (alone_med, alone_max) = spread(&alone);
    let (beside_med, beside_max) = spread(&beside);
    eprintln!(
        "noisy-neighbour figures: {ORDINARY} ordinary workloads converged alone in median \
         {alone_med:.1}s / max {alone_max:.1}s, beside the worst in median {beside_med:.1}s / \
         max {beside_max:.1}s; worst workload: {outcome} after {:.1}s; operator RSS {} MiB \
         before, peak {} MiB",
        first_answer.as_secs_f64(),
        before / 1024,
        peak / 1024
    );
    assert_eq!(live, Some(200), "the operator stays live");

    env.kubectl_ok(
        "mgmt",
        &["delete", "mcw", &worst, "-n", &namespace, "--wait=false"],
    );
    for p in pools.iter().chain(&worst_pools) {
        env.kubectl_ok("mgmt", &["delete", "cpool", p, "--wait=false"]);
    }
}
