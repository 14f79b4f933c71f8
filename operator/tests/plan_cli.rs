//! `skyfleet plan` as users run it: on the example manifests, in JSON and as a table, and
//! with bad input that must name the file, the object and the field, and exit non-zero.

use std::process::{Command, Output};

mod common;

fn plan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skyfleet"))
        .arg("plan")
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run skyfleet plan")
}

const EXAMPLES: [&str; 4] = [
    "-f",
    "crds/examples/cloudpools.yaml",
    "-f",
    "crds/examples/workloads.yaml",
];

/// `skyfleet plan` on the example manifests with `extra` arguments.
fn plan_examples(extra: &[&str]) -> Output {
    let mut args = EXAMPLES.to_vec();
    args.extend_from_slice(extra);
    plan(&args)
}

#[test]
fn json_has_the_documented_keys_and_a_valid_plan() {
    let out = plan_examples(&["--workload", "checkout", "--demand", "2.1", "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["feasible"], true);
    assert!(v["reason"].is_null());
    // 2.1 cores measured × 1.1 burst headroom, 350m per replica (500m at 70%): ⌈6.6⌉.
    assert_eq!(v["requiredReplicas"], 7);
    let pools = v["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 4);
    for p in pools {
        assert!(p["name"].is_string() && p["replicas"].is_u64() && p["costPerHour"].is_f64());
    }
    let sum: f64 = pools
        .iter()
        .map(|p| p["costPerHour"].as_f64().unwrap())
        .sum();
    assert!((sum - v["totalCostPerHour"].as_f64().unwrap()).abs() < 1e-9);
    assert!(v["explanation"].as_str().unwrap().contains("required"));
}

#[test]
fn the_table_reads_like_kubectl_and_honours_lost_pools() {
    let out = plan_examples(&[
        "--workload",
        "checkout",
        "--demand",
        "2.1",
        "--unavailable",
        "gcp-us-central1",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("POOL"), "{text}");
    let gcp = text
        .lines()
        .find(|l| l.starts_with("gcp-us-central1"))
        .unwrap();
    assert!(gcp.contains("unavailable (--unavailable)"), "{gcp}");
    assert!(gcp.split_whitespace().nth(3) == Some("0"), "{gcp}");
    assert!(text.contains("feasible: yes"));
}

#[test]
fn infeasible_constraints_exit_zero_with_the_reason() {
    let out = plan_examples(&["--workload", "checkout", "--demand", "1000", "-o", "json"]);
    assert!(
        out.status.success(),
        "an infeasible plan is an answer, not an error"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["feasible"], false);
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("above replicas.max 30")
    );
}

#[test]
fn bad_input_names_the_file_object_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("pools.yaml");
    std::fs::write(
        &bad,
        "apiVersion: skyfleet.io/v1alpha1\nkind: CloudPool\nmetadata: {name: broken}\nspec: {provider: aws, region: x, pricing: {cpuPerHour: cheap, memoryGiBPerHour: 1}}\n",
    )
    .unwrap();
    let bad = bad.to_str().unwrap();
    let out = plan(&[
        "-f",
        bad,
        "-f",
        "crds/examples/workloads.yaml",
        "--workload",
        "checkout",
        "--demand",
        "1",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(bad)
            && err.contains("CloudPool \"broken\"")
            && err.contains("spec.pricing.cpuPerHour"),
        "{err}"
    );

    for (args, want) in [
        (
            vec!["--demand", "1"],
            "several MultiCloudWorkloads (checkout, search-indexer)",
        ),
        (
            vec!["--workload", "nope", "--demand", "1"],
            "no MultiCloudWorkload \"nope\"",
        ),
        (
            vec!["--workload", "checkout", "--demand", "-1"],
            "--demand must be a non-negative",
        ),
        (
            vec![
                "--workload",
                "checkout",
                "--demand",
                "1",
                "--current",
                "mars=3",
            ],
            "unknown pool \"mars\"",
        ),
        (
            vec![
                "--workload",
                "checkout",
                "--demand",
                "1",
                "--current",
                "aws-us-east-1",
            ],
            "expected POOL=REPLICAS",
        ),
    ] {
        let out = plan_examples(&args);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "want {want:?} in {err}");
    }
    let out = plan(&["-f", "does/not/exist.yaml", "--demand", "1"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("does/not/exist.yaml"));
}

/// [`common::spot_fleet`] written to a file.
fn spot_fleet(spot: &str, od_cpu: Option<&str>) -> std::path::PathBuf {
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "plan-spot-{spot}-{}.yaml",
        od_cpu.unwrap_or("unlimited")
    ));
    std::fs::write(&path, common::spot_fleet(spot, od_cpu)).unwrap();
    path
}

fn plan_spot(spot: &str, od_cpu: Option<&str>, extra: &[&str]) -> (String, serde_json::Value) {
    let file = spot_fleet(spot, od_cpu);
    let file = file.to_str().unwrap();
    // 1.9 cores × 1.1 burst headroom at 350m per replica: 6 replicas.
    let args = |more: &[&'static str]| {
        let mut a = vec!["-f", file, "--demand", "1.9"];
        a.extend_from_slice(more);
        a.extend_from_slice(extra);
        a
    };
    let table = plan(&args(&[]));
    assert!(
        table.status.success(),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    let json = plan(&args(&["-o", "json"]));
    assert!(json.status.success());
    (
        String::from_utf8(table.stdout).unwrap(),
        serde_json::from_slice(&json.stdout).unwrap(),
    )
}

#[test]
fn the_spot_budget_keeps_a_reclaim_survivable_and_shows_it() {
    let (text, v) = plan_spot("Tolerate", None, &[]);
    assert_eq!(v["requiredReplicas"], 6);
    assert_eq!(v["feasible"], true);
    assert_eq!(v["survivingSpotReclaim"], 6, "{v}");
    let od: u64 = ["aws-od", "gcp-od"]
        .iter()
        .map(|n| {
            v["pools"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == *n)
                .unwrap()["replicas"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(od, 6);
    assert!(
        text.contains("spot:     survives a spot reclaim: 6 of 6 required stay on on-demand pools"),
        "{text}"
    );
    assert!(text.contains("placement.redundancy.spot"), "{text}");
    assert!(
        text.contains("a spot reclaim leaves 6 on on-demand pools ≥ 6 required"),
        "{text}"
    );

    // Without it everything sits on the Spot pools and no line is printed.
    let (text, v) = plan_spot("Ignore", None, &[]);
    assert!(v.get("survivingSpotReclaim").is_none(), "{v}");
    assert!(!text.contains("spot reclaim"), "{text}");
}

#[test]
fn an_impossible_spot_budget_says_why_and_still_places_everything() {
    // 1 core per on-demand pool: 2 replicas of 500m each, 4 in all.
    let (text, v) = plan_spot("Tolerate", Some("1"), &[]);
    assert_eq!(v["feasible"], false);
    assert_eq!(
        v["reason"],
        "on-demand pools can hold only 4 of the 6 replicas a spot reclaim must leave (placement.redundancy.spot: Tolerate)"
    );
    assert_eq!(v["survivingSpotReclaim"], 4);
    assert!(
        v["survivingReplicas"].as_u64().unwrap() >= 6,
        "the loss of a provider is still survived: {v}"
    );
    assert!(
        text.contains("survives a spot reclaim: 4 of 6 required stay on on-demand pools (too few)"),
        "{text}"
    );
}
