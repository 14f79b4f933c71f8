//! The Helm chart on a real management cluster: lint and template, bad values refused by the
//! schema, install / upgrade / uninstall, the CRDs identical to `crds/`, and RBAC that denies
//! what the operator must not do (asserted with `kubectl auth can-i` as its ServiceAccount).

use std::path::PathBuf;
use std::process::{Command, Output};

use skyfleet_e2e::{Env, ok, unique};

fn helm(env: &Env, args: &[&str]) -> Output {
    let bin = std::env::var("SKYFLEET_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/skyfleet/bin")
        });
    Command::new(bin.join("helm"))
        .arg(format!("--kubeconfig={}", env.kubeconfig("mgmt").display()))
        .args(args)
        .current_dir(&env.root)
        .output()
        .expect("run helm")
}

/// A release installed in a namespace of its own, reading member kubeconfigs from another.
struct Release {
    name: String,
    ns: String,
    members: String,
}

fn install(env: &Env, prefix: &str, extra: &[&str]) -> Release {
    let name = format!("sf{}", unique());
    let ns = env.namespace(prefix, &["mgmt"]);
    let members = env.namespace("chart-members", &["mgmt"]);
    let member_ns = format!("memberKubeconfigNamespace={members}");
    let mut args = vec![
        "install",
        &name,
        "charts/skyfleet",
        "-n",
        &ns,
        "--set",
        &member_ns,
    ];
    args.extend_from_slice(extra);
    ok(helm(env, &args), "helm install");
    Release { name, ns, members }
}

#[test]
fn the_chart_lints_renders_and_refuses_bad_values() {
    let env = Env::get();
    let _g = env.shared();
    let lint = ok(
        helm(env, &["lint", "charts/skyfleet", "--strict"]),
        "helm lint",
    );
    assert!(lint.contains("0 chart(s) failed"), "{lint}");

    let rendered = ok(
        helm(
            env,
            &["template", "sf", "charts/skyfleet", "-n", "skyfleet-system"],
        ),
        "helm template",
    );
    for kind in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    ] {
        assert!(
            rendered.contains(&format!("kind: {kind}\n")),
            "{kind} missing"
        );
    }
    assert!(!rendered.contains("ServiceMonitor"), "off by default");
    assert!(
        rendered.contains("readOnlyRootFilesystem: true")
            && rendered.contains("runAsNonRoot: true")
    );
    assert!(rendered.contains("- ALL") && rendered.contains("type: RuntimeDefault"));
    assert!(rendered.contains("--leader-elect") && rendered.contains("replicas: 2"));
    assert!(
        !rendered.contains("'*'") && !rendered.contains("\"*\""),
        "no wildcards in RBAC"
    );

    let monitored = ok(
        helm(
            env,
            &[
                "template",
                "sf",
                "charts/skyfleet",
                "--set",
                "metrics.serviceMonitor.enabled=true",
            ],
        ),
        "helm template with a ServiceMonitor",
    );
    assert!(monitored.contains("kind: ServiceMonitor"));
    assert!(
        rendered.contains("--concurrency=64") && !rendered.contains("--namespace="),
        "every namespace by default"
    );
    let scoped = ok(
        helm(
            env,
            &[
                "template",
                "sf",
                "charts/skyfleet",
                "--set",
                "operator.watchNamespace=team-a",
            ],
        ),
        "helm template scoped to one namespace",
    );
    assert!(scoped.contains("- --namespace=team-a"), "{scoped}");
    // Secrets a template references are readable only in the workloads' namespace(s).
    let dependencies = "name: sf-skyfleet-dependencies\n  namespace: team-a";
    assert!(scoped.contains(dependencies), "{scoped}");
    assert!(
        !rendered.contains("sf-skyfleet-dependencies"),
        "no namespace is given Secret reads unless named: {rendered}"
    );

    for (set, message) in [
        ("replicaCount=abc", "/replicaCount"),
        (
            "replicaCont=2",
            "additional properties 'replicaCont' not allowed",
        ),
        ("operator.syncPeriod=soon", "'soon' does not match pattern"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("operator.watchNamespace=Team_A", "/operator/watchNamespace"),
        ("operator.concurrency=-1", "/operator/concurrency"),
        ("leaderElection.enabled=false", "/leaderElection/enabled"),
    ] {
        let out = helm(env, &["template", "sf", "charts/skyfleet", "--set", set]);
        assert!(!out.status.success(), "{set} must be refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{set}: {err}");
    }
}

#[test]
fn the_chart_ships_the_generated_crds_and_the_crate_version() {
    let env = Env::get();
    let generated = std::fs::read_to_string(env.path("crds/skyfleet.yaml")).unwrap();
    let shipped = std::fs::read_to_string(env.path("charts/skyfleet/crds/skyfleet.yaml")).unwrap();
    assert!(
        generated == shipped,
        "charts/skyfleet/crds/skyfleet.yaml differs from crds/skyfleet.yaml: copy it"
    );
    let chart = std::fs::read_to_string(env.path("charts/skyfleet/Chart.yaml")).unwrap();
    let cargo = std::fs::read_to_string(env.path("Cargo.toml")).unwrap();
    let version = cargo
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .expect("workspace version")
        .trim_matches('"');
    assert!(
        chart.contains(&format!("appVersion: \"{version}\"")),
        "appVersion must be {version}"
    );
}

#[test]
fn install_upgrade_uninstall_with_least_privilege() {
    let env = Env::get();
    let _g = env.shared();
    // Secrets are read only in the namespaces the chart names for dependencies.
    let apps = env.namespace("chart-deps", &["mgmt"]);
    let secret_namespaces = format!("dependencies.secretNamespaces={{{apps}}}");
    let Release {
        name: release,
        ns,
        members,
    } = install(env, "chart", &["--set", &secret_namespaces]);
    let sa = format!("system:serviceaccount:{ns}:{release}-skyfleet");
    // ExternalDNS's CRD, as a cluster that uses spec.traffic.dns has it: `auth can-i` answers
    // "no" for a resource type the API server does not serve, whatever the role grants.
    env.kubectl_ok(
        "mgmt",
        &[
            "apply",
            "--server-side",
            "-f",
            skyfleet_e2e::bin_dir()
                .join("external-dns-crds/dnsendpoints.externaldns.k8s.io.yaml")
                .to_str()
                .expect("path"),
        ],
    );
    let can = |args: &[&str]| -> bool {
        let mut a = vec!["auth", "can-i", "--as", sa.as_str()];
        a.extend_from_slice(args);
        let out = env.kubectl("mgmt", &a);
        String::from_utf8_lossy(&out.stdout).trim() == "yes"
    };
    // What it needs.
    for needed in [
        vec!["watch", "cloudpools.skyfleet.io"],
        vec!["patch", "cloudpools.skyfleet.io", "--subresource=status"],
        vec!["patch", "cloudpools.skyfleet.io"],
        vec!["patch", "multicloudworkloads.skyfleet.io", "-n", "shop"],
        vec![
            "patch",
            "multicloudworkloads.skyfleet.io",
            "--subresource=status",
            "-n",
            "shop",
        ],
        vec!["create", "workloadhistories.skyfleet.io", "-n", "shop"],
        vec!["patch", "workloadhistories.skyfleet.io", "-n", "shop"],
        vec!["get", "configmaps", "-n", "shop"],
        vec!["create", "events.events.k8s.io", "-n", "shop"],
        vec!["patch", "dnsendpoints.externaldns.k8s.io", "-n", "shop"],
        vec!["get", "secrets", "-n", members.as_str()],
        vec!["get", "secrets", "-n", apps.as_str()],
        vec!["update", "leases.coordination.k8s.io", "-n", ns.as_str()],
    ] {
        assert!(can(&needed), "the operator needs {needed:?}");
    }
    // What it must not do.
    for denied in [
        vec!["get", "secrets", "-n", "kube-system"],
        vec!["get", "secrets", "-n", ns.as_str()],
        vec!["get", "secrets", "-n", "shop"],
        vec!["list", "secrets", "-n", apps.as_str()],
        vec!["watch", "secrets", "-n", apps.as_str()],
        vec!["list", "secrets", "--all-namespaces"],
        vec!["create", "deployments.apps", "-n", "shop"],
        vec!["delete", "customresourcedefinitions.apiextensions.k8s.io"],
        vec!["delete", "cloudpools.skyfleet.io"],
        vec!["patch", "configmaps", "-n", "kube-system"],
        vec!["create", "configmaps", "-n", "shop"],
        vec!["update", "leases.coordination.k8s.io", "-n", "kube-system"],
        vec!["create", "clusterrolebindings.rbac.authorization.k8s.io"],
        vec!["*", "*"],
    ] {
        assert!(!can(&denied), "the operator must not {denied:?}");
    }

    ok(
        helm(
            env,
            &[
                "upgrade",
                &release,
                "charts/skyfleet",
                "-n",
                &ns,
                "--reuse-values",
                "--set",
                "replicaCount=3",
            ],
        ),
        "helm upgrade",
    );
    let replicas = env.kubectl_ok(
        "mgmt",
        &[
            "get",
            "deploy",
            &format!("{release}-skyfleet"),
            "-n",
            &ns,
            "-o",
            "jsonpath={.spec.replicas}",
        ],
    );
    assert_eq!(replicas, "3");

    ok(
        helm(env, &["uninstall", &release, "-n", &ns]),
        "helm uninstall",
    );
    let left = env.kubectl(
        "mgmt",
        &["get", "clusterrole", &format!("{release}-skyfleet")],
    );
    assert!(
        !left.status.success(),
        "cluster-scoped RBAC is removed with the release"
    );
    // Helm never deletes CRDs from crds/: deleting them would delete every CloudPool and
    // MultiCloudWorkload, so they stay.
    env.kubectl_ok(
        "mgmt",
        &[
            "get",
            "crd",
            "cloudpools.skyfleet.io",
            "multicloudworkloads.skyfleet.io",
        ],
    );
    env.kubectl_ok(
        "mgmt",
        &["delete", "namespace", &ns, &members, &apps, "--wait=false"],
    );
}

/// A kubeconfig for the management cluster that authenticates as the release's
/// ServiceAccount (a TokenRequest token), so the operator runs with the chart's RBAC only.
fn sa_kubeconfig(env: &Env, release: &str, ns: &str) -> PathBuf {
    env.token_kubeconfig("mgmt", ns, &format!("{release}-skyfleet"))
}

/// A Secret with the member's kubeconfig in `members` and a CloudPool `pool` that uses it.
fn member_pool(
    env: &Env,
    members: &str,
    member: &str,
    pool: &str,
    label: &str,
) -> Vec<serde_json::Value> {
    let (provider, region) = match member {
        "aws" => ("aws", "us-east-1"),
        "azure" => ("azure", "eastus"),
        _ => ("gcp", "us-central1"),
    };
    let member_kc = env.member_kubeconfig(member);
    let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": format!("member-{member}"), "namespace": members},
        "stringData": {"kubeconfig": member_kc}});
    let pool = serde_json::json!({"apiVersion": "skyfleet.io/v1alpha1", "kind": "CloudPool",
        "metadata": {"name": pool, "labels": {"chart-test": label}},
        "spec": {"provider": provider, "region": region,
                 "kubeconfigSecretRef": {"name": format!("member-{member}"), "namespace": members},
                 "pricing": {"cpuPerHour": 0.04, "memoryGiBPerHour": 0.004}}});
    vec![secret, pool]
}

/// Applies `items` on the management cluster as one List.
fn apply_items(env: &Env, tag: &str, items: Vec<serde_json::Value>) {
    let manifests =
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string();
    let file = env.path(format!("target/e2e-chart-{tag}.json"));
    std::fs::write(&file, manifests).expect("write manifests");
    env.kubectl_ok("mgmt", &["apply", "-f", file.to_str().expect("path")]);
}

/// RBAC is sufficient: the operator, run with nothing but a token of the chart's
/// ServiceAccount (TokenRequest API), probes pools, places a workload in the members, writes
/// status and cleans up on delete.
#[tokio::test]
async fn the_operator_does_its_job_with_only_the_charts_rbac() {
    let env = Env::get();
    let _g = env.shared_async().await;
    env.install_crds();
    let apps = env.namespace("chart-apps", &["mgmt"]);
    let secret_namespaces = format!("dependencies.secretNamespaces={{{apps}}}");
    let Release {
        name: release,
        ns,
        members,
    } = install(
        env,
        "chart-op",
        &["--set", "replicaCount=1", "--set", &secret_namespaces],
    );
    // What the template references, copied to the members with the chart's rights.
    env.kubectl_ok(
        "mgmt",
        &[
            "create",
            "configmap",
            "web-env",
            "--from-literal=MODE=shop",
            "-n",
            &apps,
        ],
    );
    env.kubectl_ok(
        "mgmt",
        &[
            "create",
            "secret",
            "generic",
            "web-tls",
            "--from-literal=key=k",
            "-n",
            &apps,
        ],
    );
    let kubeconfig = sa_kubeconfig(env, &release, &ns);
    let mut items = Vec::new();
    for member in ["aws", "azure", "gcp"] {
        items.extend(member_pool(
            env,
            &members,
            member,
            &format!("{release}-{member}"),
            &release,
        ));
    }
    let workload = serde_json::json!({"apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
        "metadata": {"name": "web", "namespace": apps},
        "spec": {"replicas": {"min": 2, "max": 10},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "web:1",
                                                       "envFrom": [{"configMapRef": {"name": "web-env"}}],
                                                       "volumeMounts": [{"name": "tls", "mountPath": "/tls"}],
                                                       "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}],
                                       "volumes": [{"name": "tls", "secret": {"secretName": "web-tls"}}]}},
                 "scaling": {"forecast": {"model": "None"}},
                 "placement": {"poolSelector": {"matchLabels": {"chart-test": release}},
                               "redundancy": {"tolerate": 1, "domain": "Provider"}}}});
    // The same workload in a namespace the operator is not scoped to: left alone.
    let other = env.namespace("chart-other", &["mgmt"]);
    let mut outside = workload.clone();
    outside["metadata"]["namespace"] = serde_json::json!(other);
    items.push(workload);
    items.push(outside);
    apply_items(env, &release, items);

    let mut op = env.start_operator_as(
        &kubeconfig,
        &[
            &format!("--member-kubeconfig-namespace={members}"),
            "--leader-elect",
            &format!("--lease-namespace={ns}"),
            &format!("--lease-name={release}-skyfleet-leader"),
            "--probe-period=2s",
            "--sync-period=2s",
            &format!("--namespace={apps}"),
        ],
    );
    let placed = skyfleet_e2e::eventually(
        "the workload placed by the ServiceAccount-run operator, members carrying status.desiredReplicas",
        std::time::Duration::from_secs(120),
        || async {
            let out = env.kubectl(
                "mgmt",
                &[
                    "get",
                    "mcw",
                    "web",
                    "-n",
                    &apps,
                    "-o",
                    "jsonpath={.status.desiredReplicas} {.status.poolsInUse}",
                ],
            );
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let mut it = text
                .split_whitespace()
                .map(|v| v.parse::<u32>().unwrap_or(0));
            let (Some(desired), Some(pools)) = (it.next(), it.next()) else {
                return None;
            };
            // Each pool's Deployment exists in its member with the planned replicas: the
            // members carry what status says (read together, since the plan may still move).
            // Where it runs, the copies of its ConfigMap and Secret are there too.
            let copied = ["aws", "azure", "gcp"].iter().all(|member| {
                let runs = env.kubectl(
                    member,
                    &["get", "deploy", "-n", &apps, "-l", "skyfleet.io/workload=web", "-o", "name"],
                );
                runs.stdout.is_empty()
                    || env
                        .kubectl(member, &["get", "configmap/web-env", "secret/web-tls", "-n", &apps])
                        .status
                        .success()
            });
            let total: u32 = ["aws", "azure", "gcp"]
                .iter()
                .map(|member| {
                    let out = env.kubectl(
                        member,
                        &[
                            "get",
                            "deploy",
                            "-n",
                            &apps,
                            "-l",
                            "skyfleet.io/workload=web",
                            "-o",
                            "jsonpath={.items[*].spec.replicas}",
                        ],
                    );
                    String::from_utf8_lossy(&out.stdout)
                        .split_whitespace()
                        .map(|v| v.parse::<u32>().unwrap_or(0))
                        .sum::<u32>()
                })
                .sum();
            (desired >= 2 && pools >= 2 && total == desired && copied).then_some((desired, pools))
        },
    )
    .await;
    assert!(placed.1 >= 2, "spread over at least two pools");
    let untouched = env.kubectl_ok(
        "mgmt",
        &[
            "get",
            "mcw",
            "web",
            "-n",
            &other,
            "-o",
            "jsonpath={.metadata.finalizers}|{.status}",
        ],
    );
    assert_eq!(
        untouched, "|",
        "a workload outside --namespace gets no finalizer and no status"
    );
    for member in ["aws", "azure", "gcp"] {
        let out = env.kubectl(member, &["get", "deploy", "-n", &other, "-o", "name"]);
        assert!(
            out.stdout.is_empty(),
            "nothing of {other} in {member}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // Denials about this test's own objects (another suite's leftover pools on the
    // management cluster are not this release's to reach).
    let log = op.log_text();
    let denied: Vec<&str> = log
        .lines()
        .filter(|l| l.to_lowercase().contains("forbidden"))
        .filter(|l| l.contains(&release) || l.contains(&apps) || l.contains(&members))
        .collect();
    assert!(
        denied.is_empty(),
        "the operator hit an RBAC denial:\n{}",
        denied.join("\n")
    );

    // Deleting the workload removes its Deployments everywhere (finalizer, with this RBAC).
    env.kubectl_ok(
        "mgmt",
        &["delete", "mcw", "web", "-n", &apps, "--wait=false"],
    );
    skyfleet_e2e::eventually(
        "member Deployments removed",
        std::time::Duration::from_secs(90),
        || async {
            let gone = ["aws", "azure", "gcp"].iter().all(|m| {
                let out = env.kubectl(
                    m,
                    &[
                        "get",
                        "deploy",
                        "-n",
                        &apps,
                        "-l",
                        "skyfleet.io/workload=web",
                        "-o",
                        "name",
                    ],
                );
                out.status.success() && out.stdout.is_empty()
            });
            let mcw = env.kubectl("mgmt", &["get", "mcw", "web", "-n", &apps]);
            (gone && !mcw.status.success()).then_some(())
        },
    )
    .await;
    // Deleting its pools: the drain finalizer, released with this RBAC once nothing of this
    // installation runs there.
    let pools: Vec<String> = ["aws", "azure", "gcp"]
        .iter()
        .map(|m| format!("{release}-{m}"))
        .collect();
    for pool in &pools {
        let finalizers = env.kubectl_ok(
            "mgmt",
            &[
                "get",
                "cpool",
                pool,
                "-o",
                "jsonpath={.metadata.finalizers}",
            ],
        );
        assert!(
            finalizers.contains("skyfleet.io/drain"),
            "{pool}: {finalizers}"
        );
        env.kubectl_ok("mgmt", &["delete", "cpool", pool, "--wait=false"]);
    }
    skyfleet_e2e::eventually(
        "the deleted pools released by the ServiceAccount-run operator",
        std::time::Duration::from_secs(60),
        || async {
            pools
                .iter()
                .all(|p| !env.kubectl("mgmt", &["get", "cpool", p]).status.success())
                .then_some(())
        },
    )
    .await;
    op.kill();
    ok(
        helm(env, &["uninstall", &release, "-n", &ns]),
        "helm uninstall",
    );
    let _ = std::fs::remove_file(kubeconfig);
    env.kubectl_ok(
        "mgmt",
        &[
            "delete",
            "namespace",
            &ns,
            &members,
            &apps,
            &other,
            "--wait=false",
        ],
    );
}

/// The release's ClusterRole as it can be given to `kubectl replace` (no server fields).
fn replaceable(role: &serde_json::Value) -> serde_json::Value {
    let mut role = role.clone();
    if let Some(meta) = role["metadata"].as_object_mut() {
        for key in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "managedFields",
        ] {
            meta.remove(key);
        }
    }
    role
}

/// The release's ClusterRole without `get` on WorkloadHistories (create and patch stay).
fn without_history_get(role: &serde_json::Value) -> serde_json::Value {
    let mut role = replaceable(role);
    for rule in role["rules"].as_array_mut().expect("rules") {
        if rule["resources"] == serde_json::json!(["workloadhistories"]) {
            let verbs = rule["verbs"].as_array_mut().expect("verbs");
            verbs.retain(|v| v != "get");
        }
    }
    role
}

/// A history that cannot be read (the operator's `get` on WorkloadHistories revoked) is retried,
/// never taken as "no history" and never overwritten (the operator may still write); once it
/// can be read again, the operator resumes it with every stored step intact.
#[tokio::test]
async fn a_history_that_cannot_be_read_is_retried_and_never_overwritten() {
    let env = Env::get();
    let _g = env.shared_async().await;
    env.install_crds();
    let Release {
        name: release,
        ns,
        members,
    } = install(env, "chart-hist", &["--set", "replicaCount=1"]);
    let apps = env.namespace("chart-hist-apps", &["mgmt"]);
    let kubeconfig = sa_kubeconfig(env, &release, &ns);
    let pool = format!("{release}-azure");
    let mut items = member_pool(env, &members, "azure", &pool, &release);
    items.push(serde_json::json!({"apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
        "metadata": {"name": "api", "namespace": apps},
        "spec": {"replicas": {"min": 1, "max": 4},
                 "template": {"metadata": {"labels": {"app": "api"}},
                              "spec": {"containers": [{"name": "api", "image": "api:1", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}},
                 "scaling": {"forecast": {"model": "None"}},
                 "placement": {"poolSelector": {"matchLabels": {"chart-test": release}},
                               "redundancy": {"tolerate": 0}}}}));
    apply_items(env, &format!("{release}-hist"), items);
    env.set_usage("azure", &apps, "150m");
    let args = [
        format!("--member-kubeconfig-namespace={members}"),
        "--probe-period=2s".into(),
        "--sync-period=2s".into(),
        "--history-step=2s".into(),
        // The history alone is stored every interval (30 min by default); the decision
        // memory, stored at once, lives in status and no longer carries it along.
        "--history-persist-interval=10s".into(),
        format!("--namespace={apps}"),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let history = |env: &Env| skyfleet_e2e::stored_history(env, &apps, "api");
    let mut op = env.start_operator_as(&kubeconfig, &args);
    let before = skyfleet_e2e::eventually(
        "a few history steps stored",
        std::time::Duration::from_secs(120),
        || async { history(env).filter(|h| h.2.iter().filter(|v| !v.is_empty()).count() >= 4) },
    )
    .await;
    op.kill();
    let before = history(env).unwrap_or(before);

    // The operator's get on WorkloadHistories revoked: it may still create and patch them.
    let role_name = format!("{release}-skyfleet");
    let role: serde_json::Value = serde_json::from_str(
        &env.kubectl_ok("mgmt", &["get", "clusterrole", &role_name, "-o", "json"]),
    )
    .expect("ClusterRole JSON");
    let replace = |role: &serde_json::Value, tag: &str| {
        let file = env.path(format!("target/e2e-role-{release}-{tag}.json"));
        std::fs::write(&file, role.to_string()).expect("write role");
        env.kubectl_ok("mgmt", &["replace", "-f", file.to_str().expect("path")]);
    };
    replace(&without_history_get(&role), "denied");
    let sa = format!("system:serviceaccount:{ns}:{role_name}");
    let can_get = |env: &Env| {
        let out = env.kubectl(
            "mgmt",
            &[
                "auth",
                "can-i",
                "get",
                "workloadhistories.skyfleet.io",
                "-n",
                &apps,
                "--as",
                &sa,
            ],
        );
        String::from_utf8_lossy(&out.stdout).trim() == "yes"
    };
    skyfleet_e2e::eventually(
        "get on WorkloadHistories denied",
        std::time::Duration::from_secs(30),
        || async { (!can_get(env)).then_some(()) },
    )
    .await;
    let mut op = env.start_operator_as(&kubeconfig, &args);
    let failing = "reading the demand history (retried";
    skyfleet_e2e::eventually(
        "the unreadable history retried three times",
        std::time::Duration::from_secs(60),
        || async { (op.log_text().matches(failing).count() >= 3).then_some(()) },
    )
    .await;
    assert_eq!(
        history(env),
        Some(before.clone()),
        "an unreadable history is left exactly as stored\n{}",
        op.log_text()
    );

    // Readable again: resumed, with every step stored before intact.
    replace(&replaceable(&role), "restored");
    let after = skyfleet_e2e::eventually(
        "history grows again once it can be read",
        std::time::Duration::from_secs(90),
        || async { history(env).filter(|h| h.2.len() >= before.2.len() + 3) },
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
    assert!(
        op.log_text().contains("resumed demand history"),
        "{}",
        op.log_text()
    );

    env.kubectl_ok(
        "mgmt",
        &["delete", "mcw", "api", "-n", &apps, "--timeout=60s"],
    );
    env.kubectl_ok("mgmt", &["delete", "cpool", &pool, "--timeout=60s"]);
    op.kill();
    ok(
        helm(env, &["uninstall", &release, "-n", &ns]),
        "helm uninstall",
    );
    let _ = std::fs::remove_file(kubeconfig);
    env.kubectl_ok(
        "mgmt",
        &["delete", "namespace", &ns, &members, &apps, "--wait=false"],
    );
}
