//! The operator probes every CloudPool's member cluster and reports it in status: Ready with
//! the Kubernetes version and what the pool's nodes offer; not Ready, with a reason a person
//! understands, for a missing Secret, an unsafe kubeconfig or a member that stops answering.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};
use skyfleet_e2e::{Env, Operator, eventually, unique};

const SECRET_NS: &str = "skyfleet-system";

/// One operator for the whole test binary, with the member Secrets in place.
fn operator(env: &'static Env) -> &'static Operator {
    static OP: OnceLock<Operator> = OnceLock::new();
    OP.get_or_init(|| {
        env.install_crds();
        let _ = env.kubectl("mgmt", &["create", "namespace", SECRET_NS]);
        for member in env.members() {
            let kubeconfig = env.member_kubeconfig(member).into_bytes();
            put_secret(env, &format!("member-{member}"), kubeconfig);
        }
        env.start_operator(&["--probe-period=2s", "--probe-timeout=2s"])
    })
}

fn put_secret(env: &Env, name: &str, kubeconfig: Vec<u8>) {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(SECRET_NS.into()),
            ..Default::default()
        },
        data: Some([("kubeconfig".to_string(), ByteString(kubeconfig))].into()),
        ..Default::default()
    };
    let mut doc = serde_json::to_value(&secret).expect("secret JSON");
    doc["apiVersion"] = json!("v1");
    doc["kind"] = json!("Secret");
    apply_json(env, &doc);
}

/// Applies one object with kubectl, as a user would.
fn apply_json(env: &Env, doc: &Value) {
    let file = env.path(format!("target/e2e-{}.json", unique()));
    std::fs::write(&file, doc.to_string()).expect("write manifest");
    env.kubectl_ok("mgmt", &["apply", "-f", file.to_str().expect("path")]);
    let _ = std::fs::remove_file(file);
}

fn apply_pool(env: &Env, name: &str, spec: Value) {
    let pool = json!({"apiVersion": "skyfleet.io/v1alpha1", "kind": "CloudPool", "metadata": {"name": name}, "spec": spec});
    apply_json(env, &pool);
}

fn pool_spec(secret: Option<(&str, &str)>, extra: Value) -> Value {
    let mut spec = json!({
        "provider": "aws", "region": "us-east-1",
        "pricing": {"cpuPerHour": 0.04, "memoryGiBPerHour": 0.004}
    });
    if let Some((ns, name)) = secret {
        spec["kubeconfigSecretRef"] = json!({"namespace": ns, "name": name});
    }
    if let Value::Object(m) = extra {
        for (k, v) in m {
            spec[k] = v;
        }
    }
    spec
}

fn ready_condition(env: &Env, pool: &str) -> Option<(String, String, String)> {
    let out = env.kubectl("mgmt", &["get", "cpool", pool, "-o", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    let c = v["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?
        .clone();
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str()?.to_string(),
        c["message"].as_str()?.to_string(),
    ))
}

fn status(env: &Env, pool: &str, path: &str) -> String {
    env.kubectl_ok(
        "mgmt",
        &["get", "cpool", pool, "-o", &format!("jsonpath={path}")],
    )
}

async fn wait_ready(env: &Env, op: &Operator, pool: &str, want: &str) -> (String, String, String) {
    eventually(
        &format!("pool {pool} Ready={want}\n{}", op.log_text()),
        Duration::from_secs(30),
        || async { ready_condition(env, pool).filter(|c| c.0 == want) },
    )
    .await
}

#[tokio::test]
async fn pools_become_ready_with_version_and_capacity() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let id = unique();
    let plain = format!("aws-plain-{id}");
    let spot = format!("aws-spot-{id}");
    apply_pool(
        env,
        &plain,
        pool_spec(Some((SECRET_NS, "member-aws")), json!({})),
    );
    apply_pool(
        env,
        &spot,
        pool_spec(
            Some((SECRET_NS, "member-aws")),
            json!({
                "nodeSelector": {"eks.amazonaws.com/capacityType": "SPOT"},
                "tolerations": [{"key": "spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]
            }),
        ),
    );
    let (_, reason, message) = wait_ready(env, op, &plain, "True").await;
    assert_eq!(reason, "Probed");
    assert!(message.contains("v1.34.10"), "{message}");
    wait_ready(env, op, &spot, "True").await;
    // The aws member has three untainted on-demand nodes and two tainted spot nodes, 32 CPUs each:
    // one cluster, two pools that see different node groups.
    assert_eq!(status(env, &plain, "{.status.allocatable.cpu}"), "96");
    assert_eq!(status(env, &spot, "{.status.allocatable.cpu}"), "64");
    assert_eq!(status(env, &spot, "{.status.allocatable.memory}"), "256Gi");
    assert_eq!(
        status(env, &plain, "{.status.kubernetesVersion}"),
        "v1.34.10"
    );
    let row = env.kubectl_ok("mgmt", &["get", "cpool", &plain, "--no-headers"]);
    assert!(
        row.split_whitespace().nth(3) == Some("True"),
        "READY column: {row}"
    );
    for p in [&plain, &spot] {
        env.kubectl_ok("mgmt", &["delete", "cpool", p]);
    }
}

#[tokio::test]
async fn bad_references_give_a_reason_and_an_event() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    let id = unique();
    // A kubeconfig that would run a program: refused before anything is run.
    let exec = format!("exec-{id}");
    let evil = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user:\n    exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh, args: [-c, 'touch /tmp/skyfleet-pwned']}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n";
    put_secret(env, &exec, evil.as_bytes().to_vec());
    let cases = [
        (
            format!("missing-{id}"),
            pool_spec(Some((SECRET_NS, "no-such-secret")), json!({})),
            "SecretNotFound",
            "was not found",
        ),
        (
            format!("evil-{id}"),
            pool_spec(Some((SECRET_NS, &exec)), json!({})),
            "KubeconfigRejected",
            "never runs programs",
        ),
        (
            format!("elsewhere-{id}"),
            pool_spec(Some(("kube-system", "member-aws")), json!({})),
            "SecretNamespaceNotAllowed",
            "only from namespace \"skyfleet-system\"",
        ),
        (
            format!("nonodes-{id}"),
            pool_spec(
                Some((SECRET_NS, "member-aws")),
                json!({"nodeSelector": {"no": "such-node"}}),
            ),
            "NoMatchingNodes",
            "no schedulable node",
        ),
    ];
    for (name, spec, _, _) in &cases {
        apply_pool(env, name, spec.clone());
    }
    for (name, _, reason, text) in &cases {
        let (_, got_reason, message) = wait_ready(env, op, name, "False").await;
        assert_eq!(&got_reason, reason, "{name}: {message}");
        assert!(message.contains(text), "{name}: {message}");
        let events = eventually("a PoolNotReady event", Duration::from_secs(20), || async {
            let out = env.kubectl_ok(
                "mgmt",
                &[
                    "get",
                    "events",
                    "-n",
                    "default",
                    "--field-selector",
                    &format!("involvedObject.name={name}"),
                    "-o",
                    "json",
                ],
            );
            let v: Value = serde_json::from_str(&out).ok()?;
            let found = v["items"].as_array()?.iter().any(|e| {
                e["reason"] == "PoolNotReady"
                    && e["message"].as_str().is_some_and(|n| n.contains(*reason))
            });
            found.then_some(())
        })
        .await;
        let () = events;
    }
    assert!(
        !std::path::Path::new("/tmp/skyfleet-pwned").exists(),
        "the exec plugin must never run"
    );
    for (name, _, _, _) in &cases {
        env.kubectl_ok("mgmt", &["delete", "cpool", name]);
    }
}

#[tokio::test]
async fn a_member_that_stops_answering_is_not_ready_within_seconds() {
    let env = Env::get();
    let _g = env.exclusive().await;
    let op = operator(env);
    let pool = format!("gcp-probe-{}", unique());
    apply_pool(
        env,
        &pool,
        pool_spec(
            Some((SECRET_NS, "member-gcp")),
            json!({"provider": "gcp", "region": "us-central1"}),
        ),
    );
    wait_ready(env, op, &pool, "True").await;

    let out = env.cluster_sh(&["stop-apiserver", "gcp"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stopped = Instant::now();
    let (_, reason, _) = wait_ready(env, op, &pool, "False").await;
    let took = stopped.elapsed();
    assert_eq!(reason, "Unreachable");
    assert!(
        took < Duration::from_secs(15),
        "Ready=False took {took:?}, more than 15 s"
    );
    eprintln!("pool {pool} reported Ready=False {took:?} after its API server stopped");

    let out = env.start_apiserver("gcp");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_ready(env, op, &pool, "True").await;
    env.kubectl_ok("mgmt", &["delete", "cpool", &pool]);
}
