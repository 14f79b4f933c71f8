//! Weighted DNS: `spec.traffic.dns` keeps one ExternalDNS `DNSEndpoint` with a record per
//! pool that has traffic, its weight under the pool's property; a real ExternalDNS (built
//! from its pinned module, CRD source, webhook provider) reads it and hands the weighted
//! records to a DNS provider, here a fake one on 127.0.0.1 that keeps what it is given.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use skyfleet_e2e::{Env, bin_dir, eventually, free_port, unique};

use super::{
    apply_json, apply_pools, apply_workload, cluster_of, condition, events, get_json, operator,
    patch_workload, ready_pools, status_pools, traffic, wait_placed, workload,
};

const MEDIA_TYPE: &str = "application/external.dns.webhook+json;version=1";

/// A DNS provider behind ExternalDNS's webhook protocol that keeps the records it is given.
struct FakeProvider {
    port: u16,
    records: Arc<Mutex<Vec<Value>>>,
}

impl FakeProvider {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake provider");
        let port = listener.local_addr().expect("its address").port();
        let records = Arc::new(Mutex::new(Vec::new()));
        let shared = records.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let records = shared.clone();
                std::thread::spawn(move || serve(stream, &records));
            }
        });
        Self { port, records }
    }

    /// Weight and targets per set identifier of the records for `name`.
    fn weights(&self, name: &str) -> BTreeMap<String, (String, Value)> {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        by_pool(records.iter().filter(|r| r["dnsName"] == name))
    }
}

/// One connection: HTTP/1.1 requests with bodies of Content-Length, kept alive.
fn serve(stream: TcpStream, records: &Mutex<Vec<Value>>) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        );
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim();
            if header.is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (status, reply) = {
            let mut records = records.lock().unwrap_or_else(|e| e.into_inner());
            match (method.as_str(), path.as_str()) {
                ("GET", "/") => ("200 OK", Some(json!({}))),
                ("GET", "/records") => ("200 OK", Some(Value::Array(records.clone()))),
                ("POST", "/adjustendpoints") => ("200 OK", Some(body)),
                ("POST", "/records") => {
                    let key = |r: &Value| {
                        (
                            r["dnsName"].clone(),
                            r["recordType"].clone(),
                            r["setIdentifier"].clone(),
                        )
                    };
                    for gone in ["delete", "updateOld"]
                        .iter()
                        .filter_map(|k| body[k].as_array())
                        .flatten()
                    {
                        records.retain(|r| key(r) != key(gone));
                    }
                    for new in ["create", "updateNew"]
                        .iter()
                        .filter_map(|k| body[k].as_array())
                        .flatten()
                    {
                        records.push(new.clone());
                    }
                    ("204 No Content", None)
                }
                _ => ("400 Bad Request", None),
            }
        };
        let text = reply.map(|r| r.to_string()).unwrap_or_default();
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {MEDIA_TYPE}\r\nContent-Length: {}\r\n\r\n",
            text.len()
        );
        if out.write_all(head.as_bytes()).is_err() || out.write_all(text.as_bytes()).is_err() {
            return;
        }
    }
}

/// ExternalDNS, reading the DNSEndpoints of `namespace`, killed when dropped.
struct ExternalDns(Child);

impl ExternalDns {
    fn start(env: &Env, namespace: &str, provider: u16) -> Self {
        let log = env.path(format!("target/e2e-logs/external-dns-{namespace}.log"));
        let _ = std::fs::create_dir_all(log.parent().expect("log dir"));
        let file = std::fs::File::create(&log).expect("external-dns log");
        let child = Command::new(bin_dir().join("external-dns"))
            .args([
                "--source=crd",
                "--crd-source-apiversion=externaldns.k8s.io/v1alpha1",
                "--crd-source-kind=DNSEndpoint",
                &format!("--namespace={namespace}"),
                "--provider=webhook",
                &format!("--webhook-provider-url=http://127.0.0.1:{provider}"),
                "--registry=noop",
                "--policy=sync",
                "--interval=1s",
                &format!("--metrics-address=127.0.0.1:{}", free_port()),
                &format!("--kubeconfig={}", env.kubeconfig("mgmt").display()),
                "--log-level=debug",
            ])
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start external-dns");
        Self(child)
    }
}

impl Drop for ExternalDns {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The workload's DNSEndpoint records: weight (under `webhook/weight`) and targets per pool.
fn dns_records(
    env: &Env,
    namespace: &str,
    name: &str,
) -> Option<BTreeMap<String, (String, Value)>> {
    let object = get_json(
        env,
        "mgmt",
        &["dnsendpoints.externaldns.k8s.io", name, "-n", namespace],
    )?;
    object["spec"]["endpoints"]
        .as_array()
        .map(|records| by_pool(records.iter()))
}

/// Weight (under `webhook/weight`) and targets per set identifier of `records`, as the
/// DNSEndpoint and the provider both hold them.
fn by_pool<'a>(records: impl Iterator<Item = &'a Value>) -> BTreeMap<String, (String, Value)> {
    records
        .filter_map(|r| {
            let weight = r["providerSpecific"]
                .as_array()?
                .iter()
                .find(|p| p["name"] == "webhook/weight")?["value"]
                .as_str()?
                .to_string();
            Some((
                r["setIdentifier"].as_str()?.to_string(),
                (weight, r["targets"].clone()),
            ))
        })
        .collect()
}

/// `status.traffic` as the records should carry it: weight and target per pool with traffic.
fn expected(w: &Value, endpoints: &BTreeMap<String, String>) -> BTreeMap<String, (String, Value)> {
    w["status"]["traffic"]["pools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["weight"].as_i64().unwrap_or(0) > 0)
        .filter_map(|r| {
            let pool = r["name"].as_str()?.to_string();
            let target = endpoints.get(&pool)?.clone();
            Some((pool, (r["weight"].as_i64()?.to_string(), json!([target]))))
        })
        .collect()
}

#[tokio::test]
async fn weighted_dns_follows_the_traffic_split_through_external_dns() {
    let env = Env::get();
    let _g = env.shared_async().await;
    let op = operator(env);
    env.kubectl_ok(
        "mgmt",
        &[
            "apply",
            "--server-side",
            "-f",
            bin_dir()
                .join("external-dns-crds/dnsendpoints.externaldns.k8s.io.yaml")
                .to_str()
                .expect("path"),
        ],
    );
    let run = unique();
    let pools = apply_pools(env, &run);
    // Each pool declares its ingress address and the webhook provider's weight property.
    let mut endpoints = BTreeMap::new();
    for (i, pool) in pools.iter().enumerate() {
        let address = format!("127.0.1.{}", i + 1);
        env.kubectl_ok(
            "mgmt",
            &[
                "patch",
                "cpool",
                pool,
                "--type=merge",
                "-p",
                &json!({"spec": {"traffic": {"endpoint": address, "weightProperty": "webhook/weight"}}})
                    .to_string(),
            ],
        );
        endpoints.insert(pool.clone(), address);
    }
    let namespace = env.namespace("dns", &["mgmt"]);
    let name = format!("shop-{run}");
    let hostname = format!("shop-{run}.example.test");
    apply_json(
        env,
        &json!({
            "apiVersion": "skyfleet.io/v1alpha1", "kind": "MultiCloudWorkload",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": {"min": 2, "max": 6},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{
                        "name": "app", "image": "registry.example/web:1",
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}
                    }]}
                },
                "scaling": {"targetCPUUtilizationPercentage": 50},
                "placement": {"poolSelector": {"matchLabels": {"e2e-run": run}},
                              "redundancy": {"tolerate": 1, "domain": "Provider"}},
                "traffic": {"dns": {"hostname": hostname, "ttl": 30}}
            }
        }),
    );
    wait_placed(env, op, &namespace, &name, &pools).await;

    // The DNSEndpoint carries status.traffic: a record per pool with traffic. The first
    // pool to have Ready replicas gets all of it at once; the others join at the next
    // published split (`traffic.updatePeriod`, 30 s), which is the one compared.
    let (w, records) = eventually(
        &format!(
            "{name}'s DNSEndpoint follows status.traffic over every pool with Ready replicas\n{}",
            op.log_text()
        ),
        Duration::from_secs(75),
        || async {
            let w = workload(env, &namespace, &name)?;
            let records = dns_records(env, &namespace, &name)?;
            let serving: Vec<String> = ready_pools(&w).into_iter().map(|(p, _)| p).collect();
            let mut weighted: Vec<String> = traffic(&w)
                .into_iter()
                .filter(|(_, weight)| *weight > 0)
                .map(|(p, _)| p)
                .collect();
            weighted.sort();
            let mut serving = serving;
            serving.sort();
            (serving.len() >= 2 && weighted == serving && records == expected(&w, &endpoints))
                .then_some((w, records))
        },
    )
    .await;
    let object = get_json(
        env,
        "mgmt",
        &["dnsendpoints.externaldns.k8s.io", &name, "-n", &namespace],
    )
    .expect("DNSEndpoint");
    let first = &object["spec"]["endpoints"][0];
    assert_eq!(first["dnsName"], hostname.as_str(), "{object}");
    assert_eq!(
        (first["recordType"].clone(), first["recordTTL"].clone()),
        (json!("A"), json!(30))
    );
    assert_eq!(
        object["metadata"]["ownerReferences"][0]["uid"],
        w["metadata"]["uid"]
    );

    // ExternalDNS reads it and gives the provider the same weighted records.
    let provider = FakeProvider::start();
    let _external_dns = ExternalDns::start(env, &namespace, provider.port);
    eventually(
        &format!("the provider holds {hostname}'s weighted records"),
        Duration::from_secs(60),
        || async { (provider.weights(&hostname) == records).then_some(()) },
    )
    .await;

    // A pool that leaves the selection loses its traffic, its record, and the provider's.
    let dropped = status_pools(&w)
        .first()
        .map(|(p, _)| p.clone())
        .expect("a pool in use");
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
    let after = eventually(
        &format!(
            "{dropped} ({}) out of the record set\n{}",
            cluster_of(&dropped),
            op.log_text()
        ),
        Duration::from_secs(120),
        || async {
            let w = workload(env, &namespace, &name)?;
            let records = dns_records(env, &namespace, &name)?;
            (!records.contains_key(&dropped)
                && !records.is_empty()
                && records == expected(&w, &endpoints))
            .then_some(records)
        },
    )
    .await;
    eventually(
        &format!("the provider follows: no {dropped}"),
        Duration::from_secs(60),
        || async { (provider.weights(&hostname) == after).then_some(()) },
    )
    .await;

    // Dropping spec.traffic.dns removes the DNSEndpoint, and ExternalDNS the records.
    patch_workload(
        env,
        &namespace,
        &name,
        &json!({"spec": {"traffic": {"dns": null}}}),
    );
    eventually(
        &format!("{name}'s DNSEndpoint removed\n{}", op.log_text()),
        Duration::from_secs(60),
        || async {
            (dns_records(env, &namespace, &name).is_none()
                && provider.weights(&hostname).is_empty())
            .then_some(())
        },
    )
    .await;
    // Asked for again, then the workload deleted: it goes with the workload.
    patch_workload(
        env,
        &namespace,
        &name,
        &json!({"spec": {"traffic": {"dns": {"hostname": hostname}}}}),
    );
    eventually(
        &format!("{name}'s DNSEndpoint back\n{}", op.log_text()),
        Duration::from_secs(60),
        || async { dns_records(env, &namespace, &name).filter(|r| !r.is_empty()) },
    )
    .await;
    env.kubectl_ok(
        "mgmt",
        &["delete", "mcw", &name, "-n", &namespace, "--timeout=90s"],
    );
    eventually(
        "the DNSEndpoint goes with the workload",
        Duration::from_secs(60),
        || async { dns_records(env, &namespace, &name).is_none().then_some(()) },
    )
    .await;
    for p in &pools {
        env.kubectl_ok("mgmt", &["delete", "cpool", p, "--wait=false"]);
    }
}

/// Where ExternalDNS is not installed (no DNSEndpoint resource on the management cluster), a
/// workload that asks for no DNS is placed and is not Degraded. Before, every reconcile asked
/// for its DNSEndpoint, got the bare 404 of a resource type the API server does not serve, and
/// said `Degraded=MemberRefused` with a fresh transition time, rewriting status at every sync.
#[tokio::test]
async fn without_external_dns_installed_a_workload_that_asks_for_no_dns_is_not_degraded() {
    let env = Env::get();
    // Alone: the DNSEndpoint resource type is removed for the duration.
    let _g = env.exclusive().await;
    let op = operator(env);
    env.kubectl_ok(
        "mgmt",
        &[
            "delete",
            "crd",
            "dnsendpoints.externaldns.k8s.io",
            "--ignore-not-found",
            "--wait=true",
        ],
    );
    let run = unique();
    let pools = apply_pools(env, &run);
    let namespace = env.namespace("nodns", &["mgmt"]);
    let name = format!("plain-{run}");
    apply_workload(env, &namespace, &name, &run, 6, "500m");
    wait_placed(env, op, &namespace, &name, &pools).await;
    // Over ten syncs, Degraded stays False with the same transition time.
    let degraded = |w: &Value| {
        let c = w["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Degraded"))
            .cloned();
        (
            condition(w, "Degraded"),
            c.map(|c| c["lastTransitionTime"].clone()),
        )
    };
    let first = degraded(&workload(env, &namespace, &name).expect("workload"));
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < until {
        let w = workload(env, &namespace, &name).expect("workload");
        let now = degraded(&w);
        let (status, reason, message) = now.0.clone().unwrap_or_default();
        assert!(
            status == "False",
            "Degraded={status} ({reason}: {message}) without ExternalDNS, though the workload asks for no DNS\n{}",
            op.log_text()
        );
        assert_eq!(now.1, first.1, "Degraded keeps its transition time: {w}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let refused = events(env, &namespace, &name, "MemberRefused");
    assert!(refused.trim().is_empty(), "no refusal was said: {refused}");
    env.kubectl_ok(
        "mgmt",
        &["delete", "mcw", &name, "-n", &namespace, "--timeout=60s"],
    );
    for p in &pools {
        env.kubectl_ok("mgmt", &["delete", "cpool", p, "--wait=false"]);
    }
}
