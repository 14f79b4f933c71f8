//! A real Prometheus scrapes the operator: every query of the chart's dashboard returns
//! plausible series for a live workload, and during a member outage the chart's pool,
//! redundancy and failover alerts go pending, then firing, and resolve once it is back.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use skyfleet_e2e::{Env, Prometheus, eventually, unique};

use super::{
    STEP_SECS, apply_json, apply_pools, condition, operator, seed_history, wait_placed, workload,
};

/// The alert durations the test renders the chart's rules with: short enough to fire within
/// an outage of a minute, long enough that `pending` is seen first (rules are evaluated
/// every second).
const FOR: &str = "3s";

/// Every `expr` of the dashboard, with the panel's title.
fn dashboard_queries(env: &Env) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(env.path("charts/skyfleet/dashboards/skyfleet.json"))
        .expect("the chart's dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        let title = panel["title"].as_str().unwrap_or_default().to_string();
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str().filter(|e| !e.trim().is_empty()) {
                out.push((title.clone(), expr.to_string()));
            }
        }
    }
    out
}

/// The chart's alert rules (`hack/render-rules.sh`, as `monitoring/skyfleet.rules.yaml` is
/// made) with every `for` at [`FOR`].
fn rules(env: &Env) -> std::path::PathBuf {
    let mut args = Vec::new();
    for value in [
        "redundancyLostFor",
        "placementInfeasibleFor",
        "poolNotReadyFor",
        "failoverFor",
        "forecastErrorFor",
        "overBudgetFor",
        "reconcileErrorsFor",
        "operatorAbsentFor",
        "noLeaderFor",
    ] {
        args.push("--set".to_string());
        args.push(format!("monitoring.alerts.{value}={FOR}"));
    }
    let out = Command::new(env.path("hack/render-rules.sh"))
        .args(&args)
        .current_dir(&env.root)
        .output()
        .expect("run hack/render-rules.sh");
    assert!(
        out.status.success(),
        "hack/render-rules.sh failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = env
        .root
        .join("target")
        .join(format!("e2e-rules-{}.yaml", unique()));
    std::fs::write(&path, &out.stdout).expect("write the rules");
    path
}

fn one(prom: &Prometheus, expr: &str) -> f64 {
    let got = prom.query(expr).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.len(), 1, "{expr}: {got:?}");
    got[0].1
}

/// What Prometheus says of one alert (by name and the labels that pick our object) over time:
/// the states seen, in order, without repeats.
struct AlertWatch {
    seen: BTreeMap<String, Vec<String>>,
    since: Instant,
}

impl AlertWatch {
    fn new() -> Self {
        AlertWatch {
            seen: BTreeMap::new(),
            since: Instant::now(),
        }
    }

    fn record(&mut self, prom: &Prometheus, watched: &[(&str, (&str, &str))]) {
        let alerts = prom.alerts().unwrap_or_default();
        for (alert, (key, value)) in watched {
            let state = alerts
                .iter()
                .find(|(l, _)| {
                    l.get("alertname").map(String::as_str) == Some(alert)
                        && l.get(*key).map(String::as_str) == Some(value)
                })
                .map_or("inactive", |(_, s)| s.as_str());
            let states = self.seen.entry(alert.to_string()).or_default();
            if states.last().map(String::as_str) != Some(state) {
                eprintln!("{alert}: {state} at {:.1?}", self.since.elapsed());
                states.push(state.to_string());
            }
        }
    }

    fn states(&self, alert: &str) -> Vec<String> {
        self.seen.get(alert).cloned().unwrap_or_default()
    }
}

#[tokio::test]
async fn prometheus_reads_every_dashboard_query_and_the_alerts_follow_an_outage() {
    let env = Env::get();
    let _g = env.exclusive().await;
    let op = operator(env);
    let rules = rules(env);
    let prom = Prometheus::start(
        &env.root,
        &[format!("127.0.0.1:{}", op.admin_port())],
        &rules,
    );

    let run = unique();
    let pools = apply_pools(env, &run);
    let namespace = env.namespace("mon", &["mgmt"]);
    let name = format!("web-{run}");
    // Half an hour of a five-minute cycle, so Auto forecasts (and scores its models) from
    // the first decision.
    seed_history(env, &namespace, &name, (1800 / STEP_SECS) as usize, |i| {
        let phase = (i * STEP_SECS) as f64 / 300.0 * std::f64::consts::TAU;
        0.6 + 0.3 * phase.sin()
    });
    env.set_usage("aws", &namespace, "150m");
    env.set_usage("azure", &namespace, "150m");
    env.set_usage("gcp", &namespace, "150m");
    apply_json(
        env,
        &json!({
            "apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": {"min": 3, "max": 8},
                "template": {
                    "metadata": {"labels": {"app": name},
                                 // Replacements take a while, so redundancy stays lost
                                 // for longer than the alerts' `for`.
                                 "annotations": {"pod-ready.stage.kwok.x-k8s.io/delay": "10s"}},
                    "spec": {"containers": [{
                        "name": "app", "image": "registry.example/web:1",
                        "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}}
                    }]}
                },
                "scaling": {
                    "targetCPUUtilizationPercentage": 50,
                    "forecast": {"model": "Auto", "horizon": "1m", "season": "5m",
                                 "history": "30m", "quantile": 0.9}
                },
                "placement": {
                    "poolSelector": {"matchLabels": {"e2e-run": run}},
                    "redundancy": {"tolerate": 1, "domain": "Provider"}
                },
                // Far below what it costs, so the over-budget series has this workload.
                "budget": {"costPerHour": 0.001}
            }
        }),
    );
    let placed = wait_placed(env, op, &namespace, &name, &pools).await;
    let (redundant, _, message) = condition(&placed, "RedundancySatisfied").expect("condition");
    assert_eq!(redundant, "True", "{message}");

    // Every dashboard query has data once the operator has been scraped for a while (rates
    // need two samples in their window).
    let queries = dashboard_queries(env);
    assert!(
        queries.len() >= 8,
        "the dashboard has its panels: {queries:?}"
    );
    let substituted = |expr: &str| {
        expr.replace("$namespace", &namespace)
            .replace("$workload", &name)
            .replace("$__rate_interval", "1m")
    };
    let results = eventually(
        &format!(
            "every dashboard query returns a series\n{}",
            prom.log_text()
        ),
        Duration::from_secs(90),
        || async {
            let mut all = Vec::new();
            for (title, expr) in &queries {
                let expr = substituted(expr);
                let got = prom.query(&expr).ok()?;
                if got.is_empty() {
                    return None;
                }
                all.push((title.clone(), expr, got));
            }
            Some(all)
        },
    )
    .await;
    for (title, expr, got) in &results {
        assert!(
            got.iter().all(|(_, v)| v.is_finite() && *v >= 0.0),
            "panel {title:?}: {expr} gives values that are not finite and non-negative: {got:?}"
        );
    }

    // The numbers agree with the workload's status and with each other.
    let (cost, per_pool, desired, ready, status) = eventually(
        "the scraped numbers match one status",
        Duration::from_secs(60),
        || async {
            let before = workload(env, &namespace, &name)?;
            let sel = format!("{{namespace=\"{namespace}\",workload=\"{name}\"}}");
            let cost = one(&prom, &format!("skyfleet_workload_cost_per_hour{sel}"));
            let per_pool = one(
                &prom,
                &format!("sum(skyfleet_workload_pool_cost_per_hour{sel})"),
            );
            let desired = one(&prom, &format!("skyfleet_workload_desired_replicas{sel}"));
            let ready = one(&prom, &format!("skyfleet_workload_ready_replicas{sel}"));
            let after = workload(env, &namespace, &name)?;
            (before["status"] == after["status"]
                && after["status"]["desiredReplicas"].as_f64() == Some(desired))
            .then_some((cost, per_pool, desired, ready, after))
        },
    )
    .await;
    assert!(
        (cost - per_pool).abs() < 1e-6,
        "the pools' costs ({per_pool}) add up to the workload's ({cost})"
    );
    assert!(
        (cost - status["status"]["costPerHour"].as_f64().unwrap_or(f64::NAN)).abs() < 1e-6,
        "the exported cost is the status's: {cost} vs {}",
        status["status"]["costPerHour"]
    );
    assert!(ready <= desired, "ready {ready} <= desired {desired}");
    let sel = format!("{{namespace=\"{namespace}\",workload=\"{name}\"}}");
    let pool_ready = prom
        .query(&format!("skyfleet_workload_pool_ready_replicas{sel}"))
        .unwrap_or_default();
    let pool_desired = prom
        .query(&format!("skyfleet_workload_pool_desired_replicas{sel}"))
        .unwrap_or_default();
    for (labels, r) in &pool_ready {
        let d = pool_desired
            .iter()
            .find(|(l, _)| l.get("pool") == labels.get("pool"))
            .map(|(_, v)| *v);
        assert!(
            d.is_some_and(|d| *r <= d),
            "pool {:?}: ready {r} <= desired {d:?}",
            labels.get("pool")
        );
    }
    assert_eq!(
        one(&prom, &format!("skyfleet_workload_forecast_quantile{sel}")),
        0.9,
        "the quantile the spec asks for"
    );
    let models = prom
        .query(&format!("skyfleet_workload_model_backtest_wape_ratio{sel}"))
        .unwrap_or_default();
    let names: BTreeSet<&str> = models
        .iter()
        .filter_map(|(l, _)| l.get("model").map(String::as_str))
        .collect();
    assert!(
        names.contains("LastValue") && names.contains("SeasonalNaive"),
        "the baselines are always scored: {names:?}"
    );
    let conditions = prom
        .query(&format!("skyfleet_workload_condition{sel}"))
        .unwrap_or_default();
    let types: BTreeSet<&str> = conditions
        .iter()
        .filter_map(|(l, _)| l.get("condition").map(String::as_str))
        .collect();
    assert!(
        types.contains("Ready") && types.contains("RedundancySatisfied"),
        "{conditions:?}"
    );
    assert_eq!(
        conditions.len(),
        types.len(),
        "one series per condition: {conditions:?}"
    );

    // A member goes dark: its pool, the workload's redundancy and its failover alert go
    // pending, then firing; all resolve once it is back and redundancy is restored.
    let azure = format!("azure-{run}");
    let watched = [
        ("SkyfleetPoolNotReady", ("pool", azure.as_str())),
        ("SkyfleetRedundancyLost", ("workload", name.as_str())),
        ("SkyfleetFailoverInProgress", ("workload", name.as_str())),
    ];
    // A new workload is not yet redundant while its first replicas start, so the alert may
    // have fired then; it is quiet once they are Ready.
    let quiet = Instant::now();
    let mut watch = loop {
        let mut watch = AlertWatch::new();
        watch.record(&prom, &watched);
        if watched.iter().all(|(a, _)| watch.states(a) == ["inactive"]) {
            break watch;
        }
        assert!(
            quiet.elapsed() < Duration::from_secs(60),
            "the alerts are quiet before the outage: {:?}\n{:?}",
            watch.seen,
            prom.query(&format!("skyfleet_workload_condition{sel}"))
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let out = env.cluster_sh(&["stop-apiserver", "azure"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("azure stopped at {:.1?}", watch.since.elapsed());
    let outage = Instant::now();
    while watched
        .iter()
        .any(|(a, _)| !watch.states(a).iter().any(|s| s == "firing"))
    {
        assert!(
            outage.elapsed() < Duration::from_secs(120),
            "alerts during the outage: {:?}\n{}",
            watch.seen,
            op.log_text()
        );
        watch.record(&prom, &watched);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let out = env.start_apiserver("azure");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("azure started at {:.1?}", watch.since.elapsed());
    let back = Instant::now();
    while watched
        .iter()
        .any(|(a, _)| watch.states(a).last().map(String::as_str) != Some("inactive"))
    {
        assert!(
            back.elapsed() < Duration::from_secs(180),
            "alerts after the member returned: {:?}\n{}",
            watch.seen,
            op.log_text()
        );
        watch.record(&prom, &watched);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Pending came before firing, as Prometheus itself recorded each evaluation (the `ALERTS`
    // series): a poll of /api/v1/alerts can miss a pending spell of a few seconds on a busy
    // machine.
    let window = watch.since.elapsed().as_secs();
    for (alert, (key, value)) in &watched {
        let first = |state: &str| {
            prom.range(&format!(
                "ALERTS{{alertname=\"{alert}\", {key}=\"{value}\", alertstate=\"{state}\"}}[{window}s]"
            ))
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .flat_map(|(_, points)| points.iter().map(|p| p.0))
            .fold(f64::INFINITY, f64::min)
        };
        let (pending, firing) = (first("pending"), first("firing"));
        assert!(
            pending.is_finite() && pending < firing,
            "{alert}: pending (first at {pending}) before firing (first at {firing}), then \
             resolved; polled: {:?}",
            watch.states(alert)
        );
    }
    let (redundant, _, message) = condition(
        &workload(env, &namespace, &name).expect("workload"),
        "RedundancySatisfied",
    )
    .expect("condition");
    assert_eq!(redundant, "True", "{message}");

    // Deleted: the workload's series go with it.
    env.kubectl_ok("mgmt", &["delete", "mcw", &name, "-n", &namespace]);
    let left = eventually(
        "the workload's series are gone from /metrics",
        Duration::from_secs(60),
        || async {
            let (_, body) = op.admin_get("/metrics")?;
            let mine: Vec<&str> = body
                .lines()
                .filter(|l| l.contains(&format!("workload=\"{name}\"")))
                .collect();
            mine.is_empty().then_some(body.len())
        },
    )
    .await;
    assert!(left > 0, "the rest of /metrics is still served");
    for p in &pools {
        env.kubectl_ok("mgmt", &["delete", "cpool", p]);
    }
    eventually(
        "the pools' series are gone from /metrics",
        Duration::from_secs(60),
        || async {
            let (_, body) = op.admin_get("/metrics")?;
            (!pools
                .iter()
                .any(|p| body.contains(&format!("pool=\"{p}\""))))
            .then_some(())
        },
    )
    .await;
    let _ = std::fs::remove_file(rules);
}
