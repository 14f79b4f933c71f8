//! A workload is not polled while its replicas start: its member's Deployment watch wakes it
//! as they get Ready. Shown with an operator whose sync period (10 minutes) is far longer
//! than the test: the status still follows the replicas as they get Ready, and
//! make-before-break still removes what a move replaces once the replacements are Ready.

use std::time::Duration;

use serde_json::{Value, json};
use skyfleet_e2e::{Env, eventually, unique};

/// Far longer than the test: anything seen within it was not brought by the sync.
const SYNC_PERIOD: &str = "10m";
/// How long each step may take, well within the sync period.
const STEP: Duration = Duration::from_secs(90);

fn apply(env: &Env, doc: &Value) {
    let file = env.path(format!("target/e2e-{}.json", unique()));
    std::fs::write(&file, doc.to_string()).expect("write manifest");
    env.kubectl_ok("mgmt", &["apply", "-f", file.to_str().expect("path")]);
    let _ = std::fs::remove_file(file);
}

/// A pool on the management cluster itself (no kubeconfig Secret), labelled for this run.
fn apply_pool(env: &Env, name: &str, run: &str, price: f64) {
    apply(
        env,
        &json!({"apiVersion": "skyfleet.io/v1alpha1", "kind": "CloudPool",
            "metadata": {"name": name, "labels": {"e2e-progress": run}},
            "spec": {"provider": "onprem", "region": "mgmt",
                     "pricing": {"cpuPerHour": price, "memoryGiBPerHour": 0.001}}}),
    );
}

fn get(env: &Env, args: &[&str]) -> Option<Value> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let out = env.kubectl("mgmt", &all);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

fn condition(w: &Value, type_: &str) -> Option<(String, String)> {
    w["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// The workload's Deployments, by pool, with their replicas.
fn deployments(env: &Env, namespace: &str, name: &str) -> Vec<(String, i64)> {
    let selector = format!("skyfleet.io/workload={name}");
    let list = get(env, &["deployments", "-n", namespace, "-l", &selector]);
    let mut out: Vec<(String, i64)> = list
        .and_then(|l| l["items"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|d| {
            Some((
                d["metadata"]["labels"]["skyfleet.io/pool"]
                    .as_str()?
                    .to_string(),
                d["spec"]["replicas"].as_i64()?,
            ))
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn replicas_getting_ready_wake_their_workload_without_a_poll() {
    let env = Env::get();
    env.install_crds();
    let run = unique();
    let namespace = env.namespace("progress", &["mgmt"]);
    let op = env.start_operator(&[
        &format!("--namespace={namespace}"),
        &format!("--sync-period={SYNC_PERIOD}"),
        "--probe-period=2s",
    ]);
    let dear = format!("progress-dear-{run}");
    let cheap = format!("progress-cheap-{run}");
    apply_pool(env, &dear, &run, 0.09);

    // A new workload: created, then Ready once its replicas are, with no sync in between.
    let name = "web";
    apply(
        env,
        &json!({"apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": {"min": 2, "max": 4},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.example/web:1",
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}},
            "scaling": {"targetCPUUtilizationPercentage": 50, "forecast": {"model": "None"}},
            "placement": {"poolSelector": {"matchLabels": {"e2e-progress": run}},
                          "redundancy": {"tolerate": 0}}
        }}),
    );
    let (ns, o) = (namespace.as_str(), &op);
    eventually(
        &format!("the workload Ready with its 2 replicas\n{}", o.log_text()),
        STEP,
        || async {
            let w = get(env, &["mcw", name, "-n", ns])?;
            let ready = condition(&w, "Ready")?;
            (ready.0 == "True" && w["status"]["readyReplicas"].as_i64() == Some(2)).then_some(())
        },
    )
    .await;
    assert_eq!(deployments(env, ns, name), vec![(dear.clone(), 2)]);

    // A cheaper pool appears: the replicas move there, and the dear pool's are removed only
    // once the cheap pool's are Ready. That removal needs a decision after they got Ready,
    // which only their watch can bring within the test.
    apply_pool(env, &cheap, &run, 0.01);
    eventually(
        &format!(
            "the replicas moved to the cheaper pool, the dear pool's removed\n{}",
            o.log_text()
        ),
        STEP,
        || async {
            let now = deployments(env, ns, name);
            let moved = now.iter().any(|(p, n)| *p == cheap && *n == 2)
                && now.iter().all(|(p, n)| *p == cheap || *n == 0);
            let w = get(env, &["mcw", name, "-n", ns])?;
            let ready = condition(&w, "Ready")?;
            (moved && ready.0 == "True" && w["status"]["readyReplicas"].as_i64() == Some(2))
                .then_some(())
        },
    )
    .await;
    let _ = env.kubectl("mgmt", &["delete", "mcw", name, "-n", ns, "--wait=true"]);
    let _ = env.kubectl("mgmt", &["delete", "cpool", &dear, &cheap]);
    let _ = env.kubectl("mgmt", &["delete", "namespace", ns, "--wait=false"]);
}
