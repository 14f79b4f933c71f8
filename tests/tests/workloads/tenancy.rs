//! Members are opened no wider than the platform team allows: namespaces skyfleet creates in
//! a member enforce the pool's Pod Security level, and a pool that admits only some
//! management namespaces is never used by a workload from another.

use std::time::Duration;

use serde_json::{Value, json};
use skyfleet_e2e::{Env, eventually, unique};

use super::make_before_break::apply_pool_with;
use super::{
    apply_json, condition, get_json, member_replicas, operator, wait_event, wait_event_saying,
    workload,
};

/// A workload of exactly `replicas` replicas over the pools labelled `e2e-run: run`.
fn apply_fixed_workload(env: &Env, namespace: &str, name: &str, run: &str, replicas: i32) {
    apply_json(
        env,
        &json!({
            "apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": {"min": replicas, "max": replicas},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{
                        "name": "app", "image": "registry.example/web:1",
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}
                    }]}
                },
                "scaling": {"targetCPUUtilizationPercentage": 50},
                "placement": {"poolSelector": {"matchLabels": {"e2e-run": run}},
                              "redundancy": {"tolerate": 0}}
            }
        }),
    );
}

fn labels(ns: &Value) -> Value {
    ns["metadata"]["labels"].clone()
}

#[tokio::test]
async fn namespaces_created_in_members_enforce_the_pools_pod_security_level() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    let (strict, plain) = (format!("gcp-strict-{run}"), format!("azure-plain-{run}"));
    apply_pool_with(
        env,
        &strict,
        "gcp",
        0.01,
        json!({"e2e-run": run}),
        json!({"podSecurity": {"enforce": "restricted"}}),
    );
    apply_pool_with(
        env,
        &plain,
        "azure",
        0.05,
        json!({"e2e-run": run}),
        json!({}),
    );
    // The namespace exists only on the management cluster: skyfleet creates it in members.
    let namespace = env.namespace("psa", &["mgmt"]);
    let name = format!("ps-{run}");
    apply_fixed_workload(env, &namespace, &name, &run, 2);

    // The cheap, restricted pool is tried first; its member refuses the pods (they run as
    // root), the workload says so, and the replicas go to the baseline pool.
    let w = eventually(
        &format!(
            "{name}: Degraded=MemberRefused naming PodSecurity\n{}",
            op.log_text()
        ),
        Duration::from_secs(90),
        || async {
            let w = workload(env, &namespace, &name)?;
            let (status, reason, message) = condition(&w, "Degraded")?;
            (status == "True" && reason == "MemberRefused" && message.contains("PodSecurity"))
                .then_some(w)
        },
    )
    .await;
    let strict_ns = get_json(env, "gcp", &["namespace", &namespace]).expect("created in gcp");
    assert_eq!(
        labels(&strict_ns)["pod-security.kubernetes.io/enforce"],
        json!("restricted"),
        "{strict_ns}"
    );
    assert_eq!(
        labels(&strict_ns)["app.kubernetes.io/managed-by"],
        json!("skyfleet")
    );
    eventually(
        &format!("{name}: 2 replicas in {plain}\n{w}"),
        Duration::from_secs(90),
        || async {
            (member_replicas(env, "azure", &namespace, &name, &plain) == Some(2)).then_some(())
        },
    )
    .await;
    let plain_ns = get_json(env, "azure", &["namespace", &namespace]).expect("created in azure");
    assert_eq!(
        labels(&plain_ns)["pod-security.kubernetes.io/enforce"],
        json!("baseline"),
        "baseline by default: {plain_ns}"
    );
    wait_event(env, &namespace, &name, "MemberRefused").await;
    env.kubectl_ok(
        "mgmt",
        &["delete", "mcw", &name, "-n", &namespace, "--timeout=60s"],
    );
    for p in [&strict, &plain] {
        env.kubectl_ok("mgmt", &["delete", "cpool", p, "--wait=false"]);
    }
}

#[tokio::test]
async fn a_pool_that_admits_other_namespaces_is_not_used_and_the_workload_says_why() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    let (payments, shared) = (format!("aws-payments-{run}"), format!("gcp-shared-{run}"));
    let team = format!("payments-{run}");
    apply_pool_with(
        env,
        &payments,
        "aws",
        0.01,
        json!({"e2e-run": run}),
        json!({"allowedNamespaces": {"matchLabels": {"team": team}}}),
    );
    apply_pool_with(
        env,
        &shared,
        "gcp",
        0.05,
        json!({"e2e-run": run}),
        json!({}),
    );
    let namespace = env.namespace("tenant", &["mgmt"]);
    let name = format!("tn-{run}");
    apply_fixed_workload(env, &namespace, &name, &run, 3);

    let w = eventually(
        &format!("{name}: Degraded=NamespaceNotAllowed\n{}", op.log_text()),
        Duration::from_secs(90),
        || async {
            let w = workload(env, &namespace, &name)?;
            let (status, reason, _) = condition(&w, "Degraded")?;
            let placed = member_replicas(env, "gcp", &namespace, &name, &shared) == Some(3);
            (status == "True" && reason == "NamespaceNotAllowed" && placed).then_some(w)
        },
    )
    .await;
    let (_, _, message) = condition(&w, "Degraded").expect("Degraded");
    assert!(
        message.contains(&payments) && message.contains(&format!("team={team}")),
        "the condition names the pool and its rule: {message}"
    );
    assert_eq!(
        member_replicas(env, "aws", &namespace, &name, &payments),
        None,
        "nothing in the pool that does not admit the namespace"
    );
    wait_event_saying(env, &namespace, &name, "NamespaceNotAllowed", &payments).await;

    // Admitted once the namespace carries the label: the cheaper pool is used.
    env.kubectl_ok(
        "mgmt",
        &["label", "namespace", &namespace, &format!("team={team}")],
    );
    eventually(
        &format!(
            "{name}: moved to {payments} once admitted\n{}",
            op.log_text()
        ),
        Duration::from_secs(90),
        || async {
            // The shared pool stays eligible: its Deployment may stay, at zero.
            (member_replicas(env, "aws", &namespace, &name, &payments) == Some(3)
                && member_replicas(env, "gcp", &namespace, &name, &shared).unwrap_or(0) == 0)
                .then_some(())
        },
    )
    .await;
    env.kubectl_ok(
        "mgmt",
        &["delete", "mcw", &name, "-n", &namespace, "--timeout=60s"],
    );
    for p in [&payments, &shared] {
        env.kubectl_ok("mgmt", &["delete", "cpool", p, "--wait=false"]);
    }
}
