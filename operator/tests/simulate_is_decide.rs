//! `skyfleet simulate` says what the operator would do: a scripted world (a demand ramp and
//! fall, pods that serve 10 minutes after they are created, a pool lost for two hours and
//! back) driven through `decide` step by step here, with this file's own model of the world,
//! asks every pool for exactly the replicas that `skyfleet simulate` reports for the same
//! trace, pools and failure.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use skyfleet::api::cloud_pool::{CloudPoolSpec, CloudPoolStatus};
use skyfleet::api::workload::{MultiCloudWorkloadSpec, MultiCloudWorkloadStatus};
use skyfleet::decide::demand::DemandTracker;
use skyfleet::decide::{
    self, Measured, Member, MemberAction, MemberDeployment, Memory, ObservedPool, Settings, World,
};

const STEP: u64 = 300;
const STARTUP: u64 = 600;
const GRACE: u64 = 60;
const LOST: &str = "aws-us-east-1";
const LOST_FROM: u64 = 6 * 3600;
const LOST_FOR: u64 = 2 * 3600;
const PEAK: f64 = 6.0;

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Demand in trace units: quiet, a ramp to a plateau, a fall; 5-minute steps over a day.
fn trace() -> Vec<f64> {
    (0..288)
        .map(|i| match i {
            0..60 => 10.0,
            60..120 => 10.0 + f64::from(i - 60) * 1.5,
            120..200 => 100.0,
            _ => 30.0,
        })
        .collect()
}

fn docs(path: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(root().join(path)).expect("example manifests");
    serde_saphyr::from_multiple(&text).expect("YAML")
}

/// This test's model of a pool: its Deployment's `spec.replicas`, and when each of its pods
/// serves; a lost pool loses its pods, and when it is back its Deployment starts them again.
#[derive(Default, Clone)]
struct ModelPool {
    deployed: bool,
    spec: u32,
    pods: Vec<u64>,
}

impl ModelPool {
    fn scale(&mut self, to: u32, now: u64, startup: u64) {
        while (self.pods.len() as u32) < to {
            self.pods.push(now + startup);
        }
        // Youngest first, as a Deployment removes not-Ready pods first.
        self.pods.sort_unstable();
        self.pods.truncate(to as usize);
    }

    fn ready(&self, now: u64) -> u32 {
        self.pods.iter().filter(|&&at| at <= now).count() as u32
    }
}

fn at(offset: u64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_800_000_000 + offset as i64).unwrap()
}

fn condition(ready: bool, reason: &str, since: u64) -> CloudPoolStatus {
    CloudPoolStatus {
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            reason: reason.into(),
            message: "scripted".into(),
            observed_generation: None,
            last_transition_time: Time(at(since)),
        }],
        last_probe_time: Some(Time(at(0))),
        ..Default::default()
    }
}

/// Desired replicas per pool at every step, from `decide` on this file's world model.
fn decide_through_the_script(
    spec: &MultiCloudWorkloadSpec,
    pools: &[(String, BTreeMap<String, String>, CloudPoolSpec)],
    demand: &[f64],
) -> Vec<BTreeMap<String, u32>> {
    let mut model = vec![ModelPool::default(); pools.len()];
    let mut memory = Memory::new(DemandTracker::new(
        &spec.scaling.forecast,
        Duration::from_secs(STEP),
    ));
    let mut previous = MultiCloudWorkloadStatus::default();
    let settings = Settings {
        failover_grace: Duration::from_secs(GRACE),
        sync_period: Duration::from_secs(STEP),
    };
    let mut out = Vec::new();
    for (i, &cores) in demand.iter().enumerate() {
        let t = i as u64 * STEP;
        let down = |name: &str| name == LOST && (LOST_FROM..LOST_FROM + LOST_FOR).contains(&t);
        let world = World {
            pools: pools
                .iter()
                .zip(&mut model)
                .map(|((name, labels, pool), m)| {
                    let (status, member) = if down(name) {
                        m.pods.clear();
                        (condition(false, "Unreachable", LOST_FROM), Member::Unknown)
                    } else {
                        let seen = m.deployed.then(|| MemberDeployment {
                            replicas: m.spec,
                            ready: m.ready(t),
                            failure: None,
                        });
                        (condition(true, "Probed", 0), Member::Seen(seen))
                    };
                    ObservedPool {
                        name: name.clone(),
                        labels: labels.clone(),
                        spec: pool.clone(),
                        status: Some(status),
                        used_by_others: (0.0, 0.0),
                        age: Duration::from_secs(3600),
                        deleting: false,
                        member,
                        room: None,
                        ingress: None,
                    }
                })
                .collect(),
            measured: Measured {
                cores: Some(cores),
                partial: false,
            },
            namespace_labels: None,
            missing_dependencies: Vec::new(),
        };
        let workload = decide::Workload {
            spec,
            generation: Some(1),
            previous: &previous,
        };
        let d = decide::decide(&workload, &world, memory, &settings, at(t));
        let startup = if i == 0 { 0 } else { STARTUP };
        for (m, a) in model.iter_mut().zip(&d.actions) {
            match *a {
                MemberAction::Apply(n) => {
                    m.deployed = true;
                    m.spec = n;
                }
                MemberAction::Delete => {
                    m.deployed = false;
                    m.spec = 0;
                }
                MemberAction::Leave => {}
            }
        }
        for ((name, _, _), m) in pools.iter().zip(&mut model) {
            if !down(name) {
                let spec = m.spec;
                m.scale(spec, t, startup);
            }
        }
        out.push(
            pools
                .iter()
                .zip(&model)
                .map(|((name, _, _), m)| (name.clone(), m.spec))
                .collect(),
        );
        previous = d.status;
        memory = d.memory;
    }
    out
}

#[test]
fn simulate_asks_every_pool_for_what_decide_asks_at_every_step() {
    let pools: Vec<(String, BTreeMap<String, String>, CloudPoolSpec)> =
        docs("crds/examples/cloudpools.yaml")
            .into_iter()
            .map(|d| {
                (
                    d["metadata"]["name"].as_str().unwrap().to_string(),
                    serde_json::from_value(d["metadata"]["labels"].clone()).unwrap_or_default(),
                    serde_json::from_value(d["spec"].clone()).unwrap(),
                )
            })
            .collect();
    assert!(
        pools.iter().any(|p| p.0 == LOST),
        "the example fleet has {LOST}"
    );
    let spec: MultiCloudWorkloadSpec = docs("crds/examples/workloads.yaml")
        .into_iter()
        .find(|d| d["metadata"]["name"] == "checkout")
        .map(|d| serde_json::from_value(d["spec"].clone()).unwrap())
        .unwrap();

    // The trace as a CSV for `skyfleet simulate`, and scaled to cores for `decide`.
    let raw = trace();
    let dir = std::env::temp_dir().join(format!("skyfleet-sim-is-decide-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut csv = String::from("timestamp,value\n");
    let start = jiff::Timestamp::from_second(1_700_000_000).unwrap();
    for (i, v) in raw.iter().enumerate() {
        let ts = start + jiff::SignedDuration::from_secs(i as i64 * STEP as i64);
        csv += &format!("{},{v}\n", ts.strftime("%Y-%m-%d %H:%M:%S"));
    }
    let trace_file = dir.join("trace.csv");
    std::fs::write(&trace_file, csv).unwrap();
    let max = raw.iter().copied().fold(0.0, f64::max);
    let demand: Vec<f64> = raw.iter().map(|v| v / max * PEAK).collect();

    let out = dir.join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_skyfleet"))
        .current_dir(root())
        .args(["simulate", "--trace"])
        .arg(&trace_file)
        .args([
            "--peak-cores",
            &PEAK.to_string(),
            "-f",
            "crds/examples/cloudpools.yaml",
            "-f",
            "crds/examples/workloads.yaml",
            "--workload",
            "checkout",
            "--startup",
            "10m",
            "--failover-grace",
            "1m",
            "--fail",
            &format!("{LOST}@6h+2h"),
            "-o",
            "json",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("run skyfleet simulate");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(out.join("skyfleet.csv")).expect("skyfleet.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let simulated: Vec<BTreeMap<String, u32>> = lines
        .map(|l| {
            header
                .iter()
                .zip(l.split(','))
                .filter_map(|(h, v)| {
                    Some((h.strip_prefix("desired_")?.to_string(), v.parse().ok()?))
                })
                .collect()
        })
        .collect();

    let decided = decide_through_the_script(&spec, &pools, &demand);
    assert_eq!(simulated.len(), decided.len());
    for (i, (s, d)) in simulated.iter().zip(&decided).enumerate() {
        assert_eq!(s, d, "step {i} (offset {}s)", i as u64 * STEP);
    }
    // The script is not trivial: the loss and the ramp both change what is asked.
    let lost_during: u32 = decided[(LOST_FROM / STEP + 2) as usize]
        .iter()
        .filter(|(p, _)| p.as_str() != LOST)
        .map(|(_, n)| n)
        .sum();
    let before: u32 = decided[(LOST_FROM / STEP - 1) as usize]
        .iter()
        .filter(|(p, _)| p.as_str() != LOST)
        .map(|(_, n)| n)
        .sum();
    assert!(
        lost_during > before,
        "replicas replace the lost pool's: {before} → {lost_during}"
    );
    let total = |m: &BTreeMap<String, u32>| m.values().sum::<u32>();
    assert!(
        total(&decided[150]) > total(&decided[30]),
        "the ramp scales up"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
