//! The ConfigMaps and Secrets a workload's pod template references follow it into every
//! member that runs it: copied, kept in sync, removed where it stops running and with the
//! workload (also from a member that was down when it was deleted, once it is back); a
//! missing one is reported and changes nothing that runs.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use skyfleet_e2e::{Env, eventually, unique};

/// The pod-template annotation that carries the copies' checksum with rollOnChange.
const CHECKSUM: &str = "skyfleet.io/dependencies-checksum";

use super::{
    MEMBERS, apply_json, apply_pools, cluster_of, condition, get_json, operator, patch_workload,
    running_pods, status_pools, wait_event_saying, wait_placed, workload,
};

/// The copy of `kind/name` in `cluster`, if any.
fn copy(env: &Env, cluster: &str, namespace: &str, kind: &str, name: &str) -> Option<Value> {
    get_json(env, cluster, &[kind, name, "-n", namespace])
}

/// The member clusters where the workload's status plans replicas.
fn clusters_in_use(w: &Value) -> BTreeSet<&'static str> {
    status_pools(w).iter().map(|(p, _)| cluster_of(p)).collect()
}

/// The pod templates of the workload's Deployments in `cluster`, as JSON text.
fn member_templates(env: &Env, cluster: &str, namespace: &str, name: &str) -> Vec<String> {
    get_json(
        env,
        cluster,
        &[
            "deployments",
            "-n",
            namespace,
            "-l",
            &format!("skyfleet.io/workload={name}"),
        ],
    )
    .and_then(|l| l["items"].as_array().cloned())
    .into_iter()
    .flatten()
    .map(|d| d["spec"]["template"].to_string())
    .collect()
}

/// The workload's pods take their environment from `settings` and the value of `MODE` from
/// it again, and mount the Secret `creds`.
fn web(namespace: &str, name: &str, run: &str, settings: &str, creds: &str) -> Value {
    json!({
        "apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": {"min": 2, "max": 6},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{
                        "name": "app", "image": "registry.example/web:1",
                        "envFrom": [{"configMapRef": {"name": settings}}],
                        "env": [{"name": "MODE", "valueFrom":
                            {"configMapKeyRef": {"name": settings, "key": "MODE"}}}],
                        "volumeMounts": [{"name": "creds", "mountPath": "/creds"}],
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}
                    }],
                    "volumes": [{"name": "creds", "secret": {"secretName": creds}}]
                }
            },
            "scaling": {"targetCPUUtilizationPercentage": 50},
            "placement": {"poolSelector": {"matchLabels": {"e2e-run": run}},
                          "redundancy": {"tolerate": 1, "domain": "Provider"}}
        }
    })
}

#[tokio::test]
async fn configmaps_and_secrets_follow_the_workload_into_its_members() {
    let env = Env::get();
    // A member's API server is stopped below.
    let _g = env.exclusive().await;
    let op = operator(env);
    let run = unique();
    let pools = apply_pools(env, &run);
    let namespace = env.namespace("deps", &["mgmt"]);
    let (name, settings, creds) = (
        format!("web-{run}"),
        format!("settings-{run}"),
        format!("creds-{run}"),
    );
    env.kubectl_ok(
        "mgmt",
        &[
            "create",
            "configmap",
            &settings,
            "--from-literal=MODE=blue",
            "-n",
            &namespace,
        ],
    );
    env.kubectl_ok(
        "mgmt",
        &[
            "create",
            "secret",
            "generic",
            &creds,
            "--from-literal=password=s3cret",
            "-n",
            &namespace,
        ],
    );
    apply_json(env, &web(&namespace, &name, &run, &settings, &creds));
    let placed = wait_placed(env, op, &namespace, &name, &pools).await;
    let uid = placed["metadata"]["uid"].clone();
    let used = clusters_in_use(&placed);
    assert!(used.len() >= 2, "tolerating a provider: {used:?}");

    // The copies are in every member that runs it, with the originals' data and skyfleet's
    // labels, and the pods there are Running.
    for cluster in &used {
        let (cm, secret) = eventually(
            &format!("copies in {cluster}\n{}", op.log_text()),
            Duration::from_secs(60),
            || async {
                Some((
                    copy(env, cluster, &namespace, "configmap", &settings)?,
                    copy(env, cluster, &namespace, "secret", &creds)?,
                ))
            },
        )
        .await;
        assert_eq!(cm["data"]["MODE"], "blue", "{cm}");
        assert_eq!(secret["data"]["password"], "czNjcmV0", "{secret}");
        for object in [&cm, &secret] {
            let labels = &object["metadata"]["labels"];
            assert_eq!(
                labels["app.kubernetes.io/managed-by"], "skyfleet",
                "{object}"
            );
            let owners = object["metadata"]["ownerReferences"].as_array();
            assert!(
                owners.is_some_and(|o| o.iter().all(|r| r["kind"] == "Deployment")),
                "owned by the workload's Deployments there: {object}"
            );
        }
        assert!(
            running_pods(env, cluster, &namespace, &name) > 0,
            "{cluster}"
        );
    }
    for (cluster, _, _, _) in MEMBERS {
        if !used.contains(cluster) {
            assert!(
                copy(env, cluster, &namespace, "configmap", &settings).is_none(),
                "no copy where it does not run ({cluster})"
            );
        }
    }

    // Editing the ConfigMap updates every copy, and rolls no pods unless asked to.
    let templates = |c: &str| member_templates(env, c, &namespace, &name);
    let unrolled: Vec<Vec<String>> = used.iter().map(|c| templates(c)).collect();
    env.kubectl_ok(
        "mgmt",
        &[
            "patch",
            "configmap",
            &settings,
            "-n",
            &namespace,
            "-p",
            r#"{"data":{"MODE":"green"}}"#,
        ],
    );
    eventually(
        &format!("every copy of {settings} says green\n{}", op.log_text()),
        Duration::from_secs(60),
        || async {
            used.iter()
                .all(|c| {
                    copy(env, c, &namespace, "configmap", &settings)
                        .is_some_and(|cm| cm["data"]["MODE"] == "green")
                })
                .then_some(())
        },
    )
    .await;
    let after: Vec<Vec<String>> = used.iter().map(|c| templates(c)).collect();
    assert_eq!(after, unrolled, "no roll without rollOnChange");
    assert!(!after.concat().concat().contains(CHECKSUM));
    // With rollOnChange, the pod templates carry a checksum of the copies, which an edit changes.
    patch_workload(
        env,
        &namespace,
        &name,
        &json!({"spec": {"dependencies": {"rollOnChange": true}}}),
    );
    let checksums = |want_all: bool| {
        let all: Vec<String> = used.iter().flat_map(|c| templates(c)).collect();
        let sums: BTreeSet<String> = all
            .iter()
            .filter_map(|t| serde_json::from_str::<Value>(t).ok())
            .filter_map(|t| {
                t["metadata"]["annotations"][CHECKSUM]
                    .as_str()
                    .map(str::to_string)
            })
            .collect();
        (!want_all || sums.len() == 1).then_some(sums)
    };
    let first = eventually(
        &format!("a checksum in every pod template\n{}", op.log_text()),
        Duration::from_secs(60),
        || async {
            let all: Vec<String> = used.iter().flat_map(|c| templates(c)).collect();
            (!all.is_empty() && all.iter().all(|t| t.contains(CHECKSUM)))
                .then(|| checksums(true))
                .flatten()
        },
    )
    .await;
    env.kubectl_ok(
        "mgmt",
        &[
            "patch",
            "configmap",
            &settings,
            "-n",
            &namespace,
            "-p",
            r#"{"data":{"MODE":"red"}}"#,
        ],
    );
    eventually(
        &format!(
            "every pod template rolled to a new checksum\n{}",
            op.log_text()
        ),
        Duration::from_secs(60),
        || async { checksums(true).filter(|s| !s.is_empty() && *s != first) },
    )
    .await;

    // A Secret the template now mounts does not exist: said, and nothing that runs changes.
    let absent = format!("absent-{run}");
    let before: Vec<(String, Vec<String>)> = MEMBERS
        .iter()
        .map(|m| {
            (
                m.0.to_string(),
                member_templates(env, m.0, &namespace, &name),
            )
        })
        .collect();
    patch_workload(
        env,
        &namespace,
        &name,
        &json!({"spec": {"template": {"spec": {
            "imagePullSecrets": [{"name": absent}]
        }}}}),
    );
    let degraded = eventually(
        &format!("{name}: Degraded=MissingDependency\n{}", op.log_text()),
        Duration::from_secs(60),
        || async {
            let w = workload(env, &namespace, &name)?;
            let (status, reason, message) = condition(&w, "Degraded")?;
            (status == "True" && reason == "MissingDependency").then_some(message)
        },
    )
    .await;
    assert!(
        degraded.contains(&format!("Secret {namespace}/{absent}")),
        "{degraded}"
    );
    wait_event_saying(env, &namespace, &name, "MissingDependency", &absent).await;
    // Over the next decisions (the suite syncs every 2 s), the members stay as they were:
    // sampled once a second for three sync periods.
    for _ in 0..6 {
        for (cluster, templates) in &before {
            assert_eq!(
                &member_templates(env, cluster, &namespace, &name),
                templates,
                "nothing changed in {cluster} while a dependency is missing"
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Once it exists, it is copied and the template applied.
    env.kubectl_ok(
        "mgmt",
        &[
            "create",
            "secret",
            "docker-registry",
            &absent,
            "--docker-server=registry.example",
            "--docker-username=u",
            "--docker-password=p",
            "-n",
            &namespace,
        ],
    );
    eventually(
        &format!("{absent} copied and referenced\n{}", op.log_text()),
        Duration::from_secs(60),
        || async {
            let w = workload(env, &namespace, &name)?;
            let ok = condition(&w, "Degraded").is_some_and(|c| c.1 != "MissingDependency")
                && clusters_in_use(&w).iter().all(|c| {
                    copy(env, c, &namespace, "secret", &absent).is_some()
                        && member_templates(env, c, &namespace, &name)
                            .iter()
                            .all(|t| t.contains(&absent))
                });
            ok.then_some(())
        },
    )
    .await;

    // Removing a pool from the workload's selection removes the copies there.
    let w = workload(env, &namespace, &name).expect("workload");
    let dropped = status_pools(&w)
        .first()
        .map(|(p, _)| p.clone())
        .expect("a pool in use");
    let dropped_cluster = cluster_of(&dropped);
    env.kubectl_ok(
        "mgmt",
        &[
            "label",
            "cpool",
            &dropped,
            &format!("e2e-run=dropped-{run}"),
            "--overwrite",
        ],
    );
    eventually(
        &format!("copies gone from {dropped_cluster}\n{}", op.log_text()),
        Duration::from_secs(90),
        || async {
            (member_templates(env, dropped_cluster, &namespace, &name).is_empty()
                && copy(env, dropped_cluster, &namespace, "configmap", &settings).is_none()
                && copy(env, dropped_cluster, &namespace, "secret", &creds).is_none())
            .then_some(())
        },
    )
    .await;
    let kept: Vec<&str> = MEMBERS
        .iter()
        .map(|m| m.0)
        .filter(|c| *c != dropped_cluster)
        .collect();
    let w = eventually(
        &format!("{name} placed on the two pools left\n{}", op.log_text()),
        Duration::from_secs(90),
        || async {
            let w = workload(env, &namespace, &name)?;
            let in_use = clusters_in_use(&w);
            (in_use.len() == 2
                && in_use.iter().all(|c| {
                    copy(env, c, &namespace, "configmap", &settings).is_some()
                        && copy(env, c, &namespace, "secret", &creds).is_some()
                }))
            .then_some(w)
        },
    )
    .await;
    assert_eq!(w["metadata"]["uid"], uid);

    // Deleted while one member is down: the others lose their copies at once, and that one
    // once it is back.
    let down = kept[0];
    let out = env.cluster_sh(&["stop-apiserver", down]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.kubectl_ok(
        "mgmt",
        &["delete", "mcw", &name, "-n", &namespace, "--wait=false"],
    );
    let up = kept[1];
    eventually(
        &format!("copies gone from {up}\n{}", op.log_text()),
        Duration::from_secs(60),
        || async {
            (copy(env, up, &namespace, "configmap", &settings).is_none()
                && copy(env, up, &namespace, "secret", &creds).is_none())
            .then_some(())
        },
    )
    .await;
    assert!(
        workload(env, &namespace, &name).is_some(),
        "the finalizer waits for {down}"
    );
    let out = env.start_apiserver(down);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(
        &format!("copies gone from {down} once it is back\n{}", op.log_text()),
        Duration::from_secs(120),
        || async {
            (workload(env, &namespace, &name).is_none()
                && copy(env, down, &namespace, "configmap", &settings).is_none()
                && copy(env, down, &namespace, "secret", &creds).is_none()
                && copy(env, down, &namespace, "secret", &absent).is_none())
            .then_some(())
        },
    )
    .await;
    // The originals on the management cluster are untouched.
    env.kubectl_ok(
        "mgmt",
        &[
            "get",
            &format!("configmap/{settings}"),
            &format!("secret/{creds}"),
            "-n",
            &namespace,
        ],
    );
    for p in &pools {
        env.kubectl_ok("mgmt", &["delete", "cpool", p, "--wait=false"]);
    }
}
