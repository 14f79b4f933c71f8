//! `skyfleet simulate` as users run it: a real trace (NAB's ec2_cpu_utilization_825cc2, shipped
//! in traces/) through the example manifests, in JSON and as a table, with a lost
//! provider, and with bad input that must say what is wrong and exit non-zero.

use std::path::PathBuf;
use std::process::{Command, Output};

mod common;

const TRACE: &str = "traces/ec2_cpu_utilization_825cc2.csv";
const STRATEGIES: [&str; 4] = ["skyfleet", "static-peak", "reactive", "oracle"];
const KEYS: [&str; 7] = [
    "cost",
    "replicaHours",
    "utilization",
    "unmetCoreHours",
    "unmetShare",
    "availability",
    "moves",
];

fn simulate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skyfleet"))
        .arg("simulate")
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run skyfleet simulate")
}

/// The example manifests and `checkout` on `trace` at 6 cores peak, with `extra` arguments.
fn checkout(trace: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "--trace",
        trace,
        "--peak-cores",
        "6",
        "-f",
        "crds/examples/cloudpools.yaml",
        "-f",
        "crds/examples/workloads.yaml",
        "--workload",
        "checkout",
    ];
    args.extend_from_slice(extra);
    simulate(&args)
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn num(v: &serde_json::Value, strategy: &str, key: &str) -> f64 {
    v["strategies"][strategy][key]
        .as_f64()
        .unwrap_or_else(|| panic!("{strategy}.{key} missing in {v}"))
}

fn failing(out: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should fail: {stderr}");
    assert!(
        stderr.contains(expected),
        "stderr should mention {expected:?}: {stderr}"
    );
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("simulate-{name}"));
    std::fs::write(&path, text).expect("write temp file");
    path
}

#[test]
fn json_reports_every_strategy_and_skyfleet_beats_static_peak_without_losing_demand() {
    let v = json(&checkout(TRACE, &["-o", "json"]));
    let strategies = v["strategies"].as_object().expect("strategies object");
    assert_eq!(strategies.len(), 4, "{v}");
    for s in STRATEGIES {
        for k in KEYS {
            assert!(v["strategies"][s][k].is_number(), "{s}.{k} in {v}");
        }
        assert!(num(&v, s, "cost") > 0.0, "{s} costs something");
        assert!(num(&v, s, "replicaHours") > 0.0);
        let u = num(&v, s, "utilization");
        assert!((0.0..=1.0).contains(&u), "{s} utilization {u}");
    }
    let sky = num(&v, "skyfleet", "cost");
    assert!(
        num(&v, "oracle", "cost") <= sky,
        "the oracle is a lower bound: {v}"
    );
    assert!(sky < num(&v, "static-peak", "cost"), "{v}");
    assert_eq!(
        num(&v, "static-peak", "availability"),
        1.0,
        "peak provisioning never runs short: {v}"
    );
    assert_eq!(num(&v, "oracle", "unmetShare"), 0.0, "{v}");
    assert!(num(&v, "skyfleet", "unmetShare") < 0.01, "{v}");
    assert!(num(&v, "skyfleet", "availability") > 0.99, "{v}");
}

/// Rows of one strategy's `--out` CSV as header → value maps.
fn steps_csv(path: &std::path::Path) -> Vec<std::collections::BTreeMap<String, f64>> {
    let text = std::fs::read_to_string(path).expect("steps CSV");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split(','))
                .map(|(h, v)| (h.to_string(), v.parse().unwrap_or(f64::NAN)))
                .collect()
        })
        .collect()
}

#[test]
fn losing_a_provider_moves_replicas_and_skyfleet_still_carries_demand() {
    let calm = json(&checkout(TRACE, &["-o", "json"]));
    let out = std::env::temp_dir().join(format!("skyfleet-sim-fail-{}", std::process::id()));
    let v = json(&checkout(
        TRACE,
        &[
            "-o",
            "json",
            "--fail",
            "aws-us-east-1@3d+6h",
            "--failover-grace",
            "1m",
            "--out",
            out.to_str().expect("path"),
        ],
    ));
    // The lost pool's replicas are replaced in the others once the grace has passed.
    let rows = steps_csv(&out.join("skyfleet.csv"));
    let elsewhere = |r: &std::collections::BTreeMap<String, f64>| -> f64 {
        r.iter()
            .filter(|(k, _)| k.starts_with("replicas_") && k.as_str() != "replicas_aws-us-east-1")
            .map(|(_, v)| v)
            .sum()
    };
    let at = |offset: f64| {
        rows.iter()
            .find(|r| r["offset_s"] >= offset)
            .expect("a step at that offset")
    };
    let day = 86_400.0;
    let before = at(3.0 * day - 600.0);
    assert!(
        before["replicas_aws-us-east-1"] > 0.0,
        "aws runs replicas before: {before:?}"
    );
    let during = at(3.0 * day + 1800.0);
    assert!(
        elsewhere(during) > elsewhere(before),
        "replicas are replaced elsewhere: {before:?} → {during:?}"
    );
    let _ = std::fs::remove_dir_all(&out);
    assert!(num(&v, "skyfleet", "unmetShare") < 0.01, "{v}");
    assert_eq!(
        num(&v, "static-peak", "availability"),
        1.0,
        "redundancy covers the loss: {v}"
    );
    assert!(
        num(&v, "static-peak", "cost") < num(&calm, "static-peak", "cost"),
        "lost replicas cost nothing while lost"
    );
}

#[test]
fn the_table_has_a_row_per_strategy_and_the_comparison() {
    let out = checkout(TRACE, &[]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for s in STRATEGIES {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{s} "))),
            "{s} row in {text}"
        );
    }
    assert!(text.contains("of static-peak's cost"), "{text}");
    assert!(text.contains("the oracle's"), "{text}");
    assert!(text.contains("step=5m"), "{text}");
}

#[test]
fn bad_traces_are_refused_with_the_reason() {
    let cases = [
        (
            "cols.csv",
            "time,cpu\n2024-01-01 00:00:00,1\n",
            "header `timestamp,value`",
        ),
        (
            "unsorted.csv",
            "timestamp,value\n2024-01-01 00:05:00,1\n2024-01-01 00:00:00,2\n",
            "is before the previous one",
        ),
        (
            "empty.csv",
            "timestamp,value\n",
            "need at least two samples",
        ),
        (
            "short-row.csv",
            "timestamp,value\n2024-01-01 00:00:00\n",
            "expected 2 columns",
        ),
    ];
    for (name, text, expected) in cases {
        let path = temp_file(name, text);
        failing(&checkout(path.to_str().unwrap(), &[]), expected);
    }
}

#[test]
fn bad_arguments_are_refused_with_the_reason() {
    failing(
        &checkout(TRACE, &["--fail", "nowhere@1h+1h"]),
        "unknown pool \"nowhere\"",
    );
    failing(
        &checkout(TRACE, &["--fail", "aws-us-east-1@1h"]),
        "POOL@OFFSET+DURATION",
    );
    failing(
        &checkout(TRACE, &["--fail", "aws-us-east-1@1x+1h"]),
        "units s, m, h or d",
    );
    failing(&checkout(TRACE, &["--startup", "soon"]), "--startup");
    for peak in ["0", "-3"] {
        let out = simulate(&[
            "--trace",
            TRACE,
            "--peak-cores",
            peak,
            "-f",
            "crds/examples/cloudpools.yaml",
            "-f",
            "crds/examples/workloads.yaml",
            "--workload",
            "checkout",
        ]);
        failing(&out, "--peak-cores must be a positive number");
    }
    let out = simulate(&[
        "--trace",
        TRACE,
        "--peak-cores",
        "6",
        "-f",
        "crds/examples/cloudpools.yaml",
    ]);
    failing(&out, "no MultiCloudWorkload");
    failing(
        &simulate(&[
            "--trace",
            TRACE,
            "--peak-cores",
            "6",
            "-f",
            "crds/examples/cloudpools.yaml",
            "-f",
            "crds/examples/workloads.yaml",
        ]),
        "choose one with --workload",
    );
}

/// A short trace: 5-minute steps over 12 hours, a slow swell and a sharp rise.
fn short_trace() -> PathBuf {
    let mut text = String::from("timestamp,value\n");
    for i in 0..144 {
        let h = i / 12;
        let m = (i % 12) * 5;
        let v = if (60..70).contains(&i) {
            90.0
        } else {
            20.0 + f64::from(i % 24)
        };
        text += &format!("2024-01-01 {h:02}:{m:02}:00,{v}\n");
    }
    temp_file("short.csv", &text)
}

#[test]
fn out_writes_a_csv_per_strategy_whose_columns_add_up_and_an_svg_plot() {
    let trace = short_trace();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("simulate-out/nested");
    let _ = std::fs::remove_dir_all(&dir);
    let out = checkout(
        trace.to_str().unwrap(),
        &[
            "--out",
            dir.to_str().unwrap(),
            "--fail",
            "aws-us-east-1@2h+1h",
        ],
    );
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("wrote 5 files"));
    let pools = [
        "aws-us-east-1",
        "aws-us-east-1-spot",
        "azure-eastus",
        "gcp-us-central1",
    ];
    for s in STRATEGIES {
        let path = dir.join(format!("{s}.csv"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().expect("header").split(',').collect();
        let col = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .unwrap_or_else(|| panic!("{s}: column {name} in {header:?}"))
        };
        let (demand, capacity, ready, replicas, cost, unmet) = (
            col("demand_cores"),
            col("capacity_cores"),
            col("ready_replicas"),
            col("replicas"),
            col("cost_per_hour"),
            col("unmet_cores"),
        );
        let (later_from, later_capacity) = (col("later_from_s"), col("later_capacity_cores"));
        assert_eq!(col("offset_s"), 0);
        let pool_cols: Vec<usize> = header
            .iter()
            .enumerate()
            .filter(|(_, h)| h.starts_with("replicas_"))
            .map(|(i, _)| i)
            .collect();
        for p in pools {
            assert!(
                header.contains(&format!("replicas_{p}").as_str()),
                "{header:?}"
            );
        }
        let rows: Vec<Vec<f64>> = lines
            .map(|l| {
                l.split(',')
                    .map(|f| {
                        if f.is_empty() {
                            f64::NAN
                        } else {
                            f.parse().unwrap()
                        }
                    })
                    .collect()
            })
            .collect();
        assert_eq!(rows.len(), 144, "{s}: one row per step");
        let mut lost_seen = false;
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r.len(), header.len(), "{s} row {i}");
            assert_eq!(r[0], (i * 300) as f64, "{s}: offsets step by 5m");
            let per_pool: f64 = pool_cols.iter().map(|&c| r[c]).sum();
            assert_eq!(
                per_pool, r[replicas],
                "{s} row {i}: pools add up to replicas"
            );
            assert!(r[ready] <= r[replicas], "{s} row {i}");
            assert!(
                (r[capacity] - 0.5 * r[ready]).abs() < 1e-3,
                "{s} row {i}: capacity is ready replicas × 500m"
            );
            // Replicas asked for at a rise serve from the end of their startup (3m into
            // the 5m step); the shortfall is averaged over the step.
            let short = |c: f64| (r[demand] - c).max(0.0);
            let expected = if r[later_from].is_nan() {
                short(r[capacity])
            } else {
                assert_eq!(r[later_from], 180.0, "{s} row {i}: the startup");
                assert!(r[later_capacity] > r[capacity], "{s} row {i}: more later");
                0.6 * short(r[capacity]) + 0.4 * short(r[later_capacity])
            };
            assert!((r[unmet] - expected).abs() < 1e-3, "{s} row {i}: unmet");
            assert!(r[cost] > 0.0 || r[replicas] == 0.0, "{s} row {i}");
            // Offsets 2h..3h: the failed pool holds nothing.
            if (24..36).contains(&i) {
                assert_eq!(r[col("replicas_aws-us-east-1")], 0.0, "{s} row {i}");
                lost_seen = true;
            }
        }
        assert!(lost_seen);
        if s == "static-peak" {
            let first = rows[0][replicas];
            assert!(rows[..24].iter().all(|r| r[replicas] == first), "fixed");
        }
    }
    let svg = std::fs::read_to_string(dir.join("simulate.svg")).expect("simulate.svg");
    assert!(svg.starts_with("<svg") && svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"), "complete document");
    assert_eq!(svg.matches("<svg").count(), svg.matches("</svg>").count());
    // Demand and four capacities on top, four costs below, each drawn as one polyline
    // longer than a legend sample.
    let long_lines = svg
        .split("<polyline")
        .skip(1)
        .filter(|p| {
            p.split("points=\"")
                .nth(1)
                .is_some_and(|pts| pts.split(' ').count() > 50)
        })
        .count();
    assert!(long_lines >= 9, "{long_lines} long polylines");
    for label in [
        "demand",
        "skyfleet capacity",
        "static-peak capacity",
        "Cost per hour",
    ] {
        assert!(svg.contains(label), "{label} in the SVG");
    }
}

#[test]
fn out_into_a_path_that_is_a_file_is_refused_with_the_path() {
    let file = temp_file("not-a-dir", "x");
    let path = file.to_str().unwrap();
    failing(
        &checkout(TRACE, &["--out", path]),
        &format!("--out: cannot write {path}"),
    );
}

/// [`common::spot_fleet`] (Spot pools at about a third of the on-demand price, no capacity
/// limit) written to a file.
fn spot_fleet(spot: &str) -> PathBuf {
    temp_file(
        &format!("spot-fleet-{spot}.yaml"),
        &common::spot_fleet(spot, None),
    )
}

#[test]
fn a_spot_reclaim_leaves_unmet_demand_only_without_a_spot_budget() {
    let start = 3.0 * 86_400.0;
    let (startup, grace) = (180.0, 30.0);
    // Unmet cores per step inside the reclaim, as (seconds since it began, cores).
    let unmet_during_reclaim = |spot: &str| -> Vec<(f64, f64)> {
        let manifests = spot_fleet(spot);
        let out =
            std::env::temp_dir().join(format!("skyfleet-sim-spot-{spot}-{}", std::process::id()));
        let v = json(&simulate(&[
            "--trace",
            TRACE,
            "--peak-cores",
            "6",
            "-f",
            manifests.to_str().expect("path"),
            "--fail",
            "Spot@3d+2h",
            "--startup",
            "3m",
            "--failover-grace",
            "30s",
            "-o",
            "json",
            "--out",
            out.to_str().expect("path"),
        ]));
        assert!(num(&v, "skyfleet", "cost") > 0.0);
        let rows = steps_csv(&out.join("skyfleet.csv"));
        let _ = std::fs::remove_dir_all(&out);
        rows.iter()
            .filter(|r| (start..start + 7200.0).contains(&r["offset_s"]))
            .map(|r| (r["offset_s"] - start, r["unmet_cores"]))
            .collect()
    };
    let tolerate = unmet_during_reclaim("Tolerate");
    assert!(!tolerate.is_empty());
    let late: Vec<&(f64, f64)> = tolerate
        .iter()
        .filter(|(since, unmet)| *since >= startup + grace && *unmet > 0.0)
        .collect();
    assert!(
        late.is_empty(),
        "with a spot budget the on-demand replicas carry the demand: {late:?}"
    );
    let ignore = unmet_during_reclaim("Ignore");
    let lost: f64 = ignore.iter().map(|(_, unmet)| unmet).sum();
    assert!(
        lost > 0.0,
        "without one every replica sat on Spot pools and the reclaim leaves demand unmet: {ignore:?}"
    );
}

#[test]
fn fail_spot_needs_a_spot_pool() {
    let pools = temp_file(
        "no-spot.yaml",
        "apiVersion: skyfleet.io/v1alpha1\nkind: CloudPool\nmetadata: {name: only-od}\nspec: {provider: aws, region: r1, pricing: {cpuPerHour: 0.04, memoryGiBPerHour: 0.004}}\n",
    );
    let out = simulate(&[
        "--trace",
        TRACE,
        "--peak-cores",
        "6",
        "-f",
        pools.to_str().expect("path"),
        "-f",
        "crds/examples/workloads.yaml",
        "--workload",
        "checkout",
        "--fail",
        "Spot@1h+1h",
    ]);
    failing(&out, "no CloudPool has pricing.capacityType: Spot");
}
