//! The spot budget: with `placement.redundancy.spot: Tolerate`, a reclaim of every Spot pool
//! at once must still leave the required replicas, so they move to on-demand capacity, and
//! the Spot replicas go only once the on-demand ones are Ready.

use std::time::Duration;

use serde_json::json;
use skyfleet_e2e::{Env, eventually, unique};

use super::{SECRET_NS, apply_json, condition, member_replicas, operator, patch_workload};

#[tokio::test]
async fn a_spot_budget_moves_the_required_replicas_to_on_demand_before_the_spot_ones_go() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    // A cheap Spot pool on the azure member and a dearer on-demand one on aws.
    let spot = format!("azure-spot-{run}");
    let on_demand = format!("aws-od-{run}");
    for (name, cluster, provider, price, capacity_type) in [
        (&spot, "azure", "azure", 0.01, "Spot"),
        (&on_demand, "aws", "aws", 0.04, "OnDemand"),
    ] {
        apply_json(
            env,
            &json!({
                "apiVersion": "skyfleet.io/v1alpha1", "kind": "CloudPool",
                "metadata": {"name": name, "labels": {"e2e-run": run}},
                "spec": {
                    "provider": provider, "region": "r1",
                    "kubeconfigSecretRef": {"namespace": SECRET_NS, "name": format!("member-{cluster}")},
                    "pricing": {"cpuPerHour": price, "memoryGiBPerHour": 0.004,
                                "capacityType": capacity_type}
                }
            }),
        );
    }
    let namespace = env.namespace("spot", &["mgmt"]);
    let name = format!("s-{run}");
    apply_json(
        env,
        &json!({
            "apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": {"min": 3, "max": 10},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{
                        "name": "app", "image": "registry.example/web:1",
                        "resources": {"requests": {"cpu": "500m", "memory": "128Mi"}}
                    }]}
                },
                "scaling": {"targetCPUUtilizationPercentage": 50},
                "placement": {
                    "poolSelector": {"matchLabels": {"e2e-run": run}},
                    "redundancy": {"tolerate": 0}
                }
            }
        }),
    );
    // Without the budget, the cheapest plan is all three on Spot.
    eventually(
        &format!("{name}: 3 Ready on the Spot pool\n{}", op.log_text()),
        Duration::from_secs(90),
        || async {
            let w = super::workload(env, &namespace, &name)?;
            (w["status"]["readyReplicas"].as_i64()? == 3
                && member_replicas(env, "azure", &namespace, &name, &spot) == Some(3))
            .then_some(())
        },
    )
    .await;

    // With it, the required three must survive losing the Spot pool: they move to on-demand.
    // Until the on-demand replicas are Ready, the Spot ones stay (sampled on every poll).
    patch_workload(
        env,
        &namespace,
        &name,
        &json!({"spec": {"placement": {"redundancy": {"spot": "Tolerate"}}}}),
    );
    let mut seen: Vec<(Option<i64>, i64)> = Vec::new();
    let moved = eventually(
        &format!(
            "{name}: 3 Ready on-demand and none left on Spot\n{}",
            op.log_text()
        ),
        Duration::from_secs(90),
        || {
            let w = super::workload(env, &namespace, &name);
            let spot_replicas = member_replicas(env, "azure", &namespace, &name, &spot);
            let od_ready = super::member_deployment(env, "aws", &namespace, &name, &on_demand)
                .and_then(|d| d["status"]["readyReplicas"].as_i64())
                .unwrap_or(0);
            seen.push((spot_replicas, od_ready));
            async move {
                let w = w?;
                (spot_replicas.unwrap_or(0) == 0
                    && od_ready == 3
                    && condition(&w, "RedundancySatisfied")?.0 == "True")
                    .then_some(w)
            }
        },
    )
    .await;
    assert!(
        seen.iter()
            .all(|&(spot_replicas, od_ready)| od_ready >= 3 || spot_replicas == Some(3)),
        "the Spot replicas stayed until three on-demand ones were Ready: {seen:?}"
    );
    let redundancy = condition(&moved, "RedundancySatisfied").unwrap_or_default();
    assert!(
        redundancy.2.contains("every Spot pool"),
        "the condition names the spot reclaim among the losses: {redundancy:?}"
    );
    let text = moved["status"]["message"].as_str().unwrap_or_default();
    assert!(
        text.to_lowercase().contains("spot"),
        "the sentence names the spot budget: {text}"
    );

    env.kubectl_ok("mgmt", &["delete", "mcw", &name, "-n", &namespace]);
    for p in [&spot, &on_demand] {
        env.kubectl_ok("mgmt", &["delete", "cpool", p]);
    }
}
