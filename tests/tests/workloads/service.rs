//! `spec.service`: a Service of the workload's name in every member cluster that runs it,
//! selecting exactly its pods there (not another workload's with the same template labels),
//! removed where it no longer runs, when the spec drops it, and with the workload.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use skyfleet_e2e::{Env, eventually, unique};

use super::{
    MEMBERS, apply_json, apply_pools, apply_workload, cluster_of, condition, get_json, operator,
    patch_workload, status_pools, wait_placed, workload,
};

/// The Service `name` in `cluster`, if any.
fn member_service(env: &Env, cluster: &str, namespace: &str, name: &str) -> Option<Value> {
    get_json(env, cluster, &["service", name, "-n", namespace])
}

/// The names of the pods in `cluster` that carry `labels` (a Service's selector).
fn pods_selected(env: &Env, cluster: &str, namespace: &str, selector: &Value) -> BTreeSet<String> {
    let sel: Vec<String> = selector
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pod_names(env, cluster, namespace, &sel.join(","))
}

fn pod_names(env: &Env, cluster: &str, namespace: &str, selector: &str) -> BTreeSet<String> {
    get_json(env, cluster, &["pods", "-n", namespace, "-l", selector])
        .and_then(|l| l["items"].as_array().cloned())
        .into_iter()
        .flatten()
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// The member clusters where the workload's status plans replicas.
fn clusters_in_use(w: &Value) -> BTreeSet<&'static str> {
    status_pools(w).iter().map(|(p, _)| cluster_of(p)).collect()
}

/// A workload of exactly `replicas` small replicas whose pods carry `app: <app>`, over the
/// run's pools with `redundancy`.
fn fixed(
    namespace: &str,
    name: &str,
    run: &str,
    replicas: i32,
    app: &str,
    redundancy: Value,
) -> Value {
    json!({
        "apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": {"min": replicas, "max": replicas},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [{
                    "name": "app", "image": "registry.example/web:1",
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}
                }]}
            },
            "scaling": {"targetCPUUtilizationPercentage": 50},
            "placement": {"poolSelector": {"matchLabels": {"e2e-run": run}},
                          "redundancy": redundancy}
        }
    })
}

#[tokio::test]
async fn a_service_follows_the_workload_into_each_member_and_selects_only_its_pods() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let run = unique();
    let pools = apply_pools(env, &run);
    // The namespace exists in the members too, so someone else's Service can hold a name.
    let namespace = env.namespace("svc", &["mgmt", "aws", "azure", "gcp"]);
    let taken = format!("taken-{run}");
    for (cluster, _, _, _) in MEMBERS {
        env.kubectl_ok(
            cluster,
            &[
                "create",
                "service",
                "clusterip",
                &taken,
                "--tcp=443:443",
                "-n",
                &namespace,
            ],
        );
    }
    let (web, twin) = (format!("web-{run}"), format!("twin-{run}"));
    apply_workload(env, &namespace, &web, &run, 6, "100m");
    patch_workload(
        env,
        &namespace,
        &web,
        &json!({"spec": {"service": {
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            "annotations": {"example.com/team": "shop"}
        }}}),
    );
    // Another workload whose pods carry the same template labels (`app: web-…`), no Service.
    apply_json(
        env,
        &fixed(
            &namespace,
            &twin,
            &run,
            3,
            &web,
            json!({"tolerate": 1, "domain": "Provider"}),
        ),
    );
    let placed = wait_placed(env, op, &namespace, &web, &pools).await;
    wait_placed(env, op, &namespace, &twin, &pools).await;

    let used = clusters_in_use(&placed);
    assert!(used.len() >= 2, "tolerating a provider: {used:?}");
    for cluster in &used {
        let svc = eventually(
            &format!("Service {web} in {cluster}\n{}", op.log_text()),
            Duration::from_secs(60),
            || async { member_service(env, cluster, &namespace, &web) },
        )
        .await;
        assert_eq!(svc["spec"]["type"], "ClusterIP", "{svc}");
        assert_eq!(svc["spec"]["ports"][0]["port"], 80, "{svc}");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080, "{svc}");
        assert_eq!(
            svc["metadata"]["annotations"]["example.com/team"], "shop",
            "{svc}"
        );
        let labels = &svc["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/managed-by"], "skyfleet", "{svc}");
        assert_eq!(
            labels["skyfleet.io/workload-uid"], placed["metadata"]["uid"],
            "{svc}"
        );
        // What its selector picks is exactly this workload's pods there: the twin's pods share
        // the template label and are not among them.
        let mine = pod_names(
            env,
            cluster,
            &namespace,
            &format!("skyfleet.io/workload={web}"),
        );
        let twins = pod_names(
            env,
            cluster,
            &namespace,
            &format!("skyfleet.io/workload={twin}"),
        );
        let selected = pods_selected(env, cluster, &namespace, &svc["spec"]["selector"]);
        assert!(!mine.is_empty(), "{web} runs pods in {cluster}");
        assert_eq!(
            selected, mine,
            "the Service selects {web}'s pods in {cluster}"
        );
        assert!(
            selected.is_disjoint(&twins),
            "none of {twin}'s pods ({twins:?}) in {cluster}"
        );
    }
    for (cluster, _, _, _) in MEMBERS {
        if !used.contains(cluster) {
            assert!(
                member_service(env, cluster, &namespace, &web).is_none(),
                "no Service where {web} does not run ({cluster})"
            );
        }
        assert!(
            member_service(env, cluster, &namespace, &twin).is_none(),
            "no Service for a workload that asks for none ({cluster})"
        );
    }

    // A workload whose Service name is someone else's Service in the member: that Service is
    // left exactly as it was, the workload's pods still run, and status says why.
    let mut doc = fixed(&namespace, &taken, &run, 1, &taken, json!({"tolerate": 0}));
    doc["spec"]["service"] = json!({"ports": [{"port": 80}]});
    apply_json(env, &doc);
    let refused = eventually(
        &format!(
            "{taken}: Degraded names the foreign Service\n{}",
            op.log_text()
        ),
        Duration::from_secs(90),
        || async {
            let w = workload(env, &namespace, &taken)?;
            let (status, reason, message) = condition(&w, "Degraded")?;
            (status == "True"
                && reason == "MemberRefused"
                && message.contains("Service")
                && message.contains("not skyfleet's")
                && w["status"]["readyReplicas"].as_i64() == Some(1))
            .then_some(w)
        },
    )
    .await;
    for (cluster, _, _, _) in MEMBERS {
        let svc = member_service(env, cluster, &namespace, &taken).expect("still there");
        assert!(
            svc["metadata"]["labels"]["app.kubernetes.io/managed-by"].is_null()
                && svc["spec"]["ports"].as_array().map(Vec::len) == Some(1)
                && svc["spec"]["ports"][0]["port"] == 443,
            "someone else's Service is untouched in {cluster}: {svc}\n{refused}"
        );
    }
    env.kubectl_ok(
        "mgmt",
        &["delete", "mcw", &taken, "-n", &namespace, "--timeout=90s"],
    );
    for (cluster, _, _, _) in MEMBERS {
        assert!(
            member_service(env, cluster, &namespace, &taken).is_some(),
            "deleting the workload left someone else's Service in {cluster}"
        );
    }

    // The spec drops the Service: it goes from every member.
    patch_workload(env, &namespace, &web, &json!({"spec": {"service": null}}));
    eventually(
        &format!("{web}'s Services removed\n{}", op.log_text()),
        Duration::from_secs(60),
        || async {
            MEMBERS
                .iter()
                .all(|m| member_service(env, m.0, &namespace, &web).is_none())
                .then_some(())
        },
    )
    .await;

    // Asked for again, then the workload deleted: the finalizer removes them too.
    patch_workload(
        env,
        &namespace,
        &web,
        &json!({"spec": {"service": {"type": "ClusterIP", "ports": [{"port": 80}]}}}),
    );
    eventually(
        &format!("{web}'s Services back\n{}", op.log_text()),
        Duration::from_secs(60),
        || async {
            let w = workload(env, &namespace, &web)?;
            clusters_in_use(&w)
                .iter()
                .all(|c| member_service(env, c, &namespace, &web).is_some())
                .then_some(())
        },
    )
    .await;
    env.kubectl_ok(
        "mgmt",
        &[
            "delete",
            "mcw",
            &web,
            &twin,
            "-n",
            &namespace,
            "--timeout=90s",
        ],
    );
    for (cluster, _, _, _) in MEMBERS {
        assert!(
            member_service(env, cluster, &namespace, &web).is_none(),
            "deleting the workload removed its Service in {cluster}"
        );
    }
    for p in &pools {
        env.kubectl_ok("mgmt", &["delete", "cpool", p, "--wait=false"]);
    }
}
