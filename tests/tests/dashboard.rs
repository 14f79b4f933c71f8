//! The chart's Grafana dashboard, linted without Grafana (which is AGPL and not built here):
//! valid JSON, a Prometheus datasource variable, unique panel ids, a query in every panel,
//! only metrics the operator documents (and every documented one shown), and the ConfigMap the
//! chart renders for Grafana's sidecar. That each query returns data is shown end to end by
//! the workloads suite's monitoring test, against a real Prometheus.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;
use skyfleet_e2e::{bin_dir, repo_root};

const DASHBOARD: &str = "charts/skyfleet/dashboards/skyfleet.json";

fn dashboard() -> Value {
    let text = std::fs::read_to_string(repo_root().join(DASHBOARD)).expect(DASHBOARD);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

fn panels(d: &Value) -> Vec<Value> {
    d["panels"].as_array().cloned().unwrap_or_default()
}

fn exprs(d: &Value) -> Vec<String> {
    panels(d)
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect()
}

/// The `skyfleet_…` names in `text`, histogram suffixes taken off.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("skyfleet_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        out.insert(base.to_string());
        rest = &tail[end..];
    }
    out
}

/// The metrics the chart README's "Metrics" table documents.
fn documented() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(repo_root().join("charts/skyfleet/README.md"))
        .expect("chart README");
    let section = readme
        .split("\n## Metrics")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Metrics section");
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|n| n.starts_with("skyfleet_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_dashboard_is_well_formed() {
    let d = dashboard();
    assert!(d["uid"].as_str().is_some_and(|u| !u.is_empty()), "a uid");
    assert!(
        d["title"].as_str().is_some_and(|t| !t.is_empty()),
        "a title"
    );
    let vars = d["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        vars.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "a Prometheus datasource variable: {vars:?}"
    );
    let mut ids = BTreeSet::new();
    let all = panels(&d);
    assert!(all.len() >= 8, "the panels the issue lists: {}", all.len());
    for p in &all {
        let id = p["id"].as_i64().expect("every panel has an integer id");
        assert!(ids.insert(id), "panel id {id} is used twice");
        if p["type"] == "row" {
            continue;
        }
        let title = p["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "panel {id} has a title");
        assert!(
            p["description"].as_str().is_some_and(|s| !s.is_empty()),
            "panel {title:?} says what it shows"
        );
        assert!(
            p["gridPos"]["w"].as_i64().is_some(),
            "panel {title:?} has a gridPos"
        );
        assert_eq!(
            p["datasource"]["uid"], "${datasource}",
            "panel {title:?} uses the datasource variable"
        );
        let targets = p["targets"].as_array().cloned().unwrap_or_default();
        assert!(!targets.is_empty(), "panel {title:?} has a query");
        for t in targets {
            let expr = t["expr"].as_str().unwrap_or_default();
            assert!(!expr.trim().is_empty(), "panel {title:?}: an empty query");
            assert_eq!(t["datasource"]["uid"], "${datasource}", "panel {title:?}");
            // Only the variables the end-to-end test substitutes.
            let mut rest = expr;
            while let Some(at) = rest.find('$') {
                let var: String = rest[at + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    ["namespace", "workload", "__rate_interval"].contains(&var.as_str()),
                    "panel {title:?} uses ${var}: {expr}"
                );
                rest = &rest[at + 1..];
            }
        }
    }
}

#[test]
fn the_dashboard_shows_every_documented_metric_and_no_other() {
    let documented = documented();
    assert!(documented.len() >= 20, "{documented:?}");
    let used: BTreeSet<String> = exprs(&dashboard())
        .iter()
        .flat_map(|e| metric_names(e))
        .collect();
    let unknown: Vec<&String> = used.difference(&documented).collect();
    assert!(
        unknown.is_empty(),
        "queries name undocumented metrics: {unknown:?}"
    );
    let unused: Vec<&String> = documented
        .iter()
        .filter(|m| !["skyfleet_build_info", "skyfleet_pool_info"].contains(&m.as_str()))
        .filter(|m| !used.contains(*m))
        .collect();
    assert!(
        unused.is_empty(),
        "documented metrics no panel shows: {unused:?}"
    );
}

#[test]
fn the_chart_ships_the_dashboard_for_grafanas_sidecar_only_when_asked() {
    let helm = |args: &[&str]| {
        Command::new(bin_dir().join("helm"))
            .args(["template", "skyfleet", "charts/skyfleet"])
            .args(args)
            .current_dir(repo_root())
            .output()
            .expect("run helm (built by hack/build-bins.sh)")
    };
    let default = helm(&[]);
    assert!(
        default.status.success(),
        "{}",
        String::from_utf8_lossy(&default.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&default.stdout).contains("-dashboard"),
        "no dashboard ConfigMap by default"
    );
    let on = helm(&[
        "--set",
        "monitoring.dashboard.enabled=true",
        "--set",
        "monitoring.dashboard.labelKey=my_dash",
        "--set",
        "monitoring.dashboard.labelValue=yes",
        "--set",
        "monitoring.dashboard.namespace=grafana",
        "--show-only",
        "templates/dashboard-configmap.yaml",
    ]);
    assert!(
        on.status.success(),
        "{}",
        String::from_utf8_lossy(&on.stderr)
    );
    let cm: Value =
        serde_saphyr::from_str(&String::from_utf8_lossy(&on.stdout)).expect("ConfigMap YAML");
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(
        cm["metadata"]["labels"]["my_dash"], "yes",
        "the sidecar's label"
    );
    assert_eq!(cm["metadata"]["namespace"], "grafana");
    let shipped: Value = serde_json::from_str(cm["data"]["skyfleet.json"].as_str().expect("data"))
        .expect("the shipped dashboard is JSON");
    assert_eq!(
        shipped,
        dashboard(),
        "the ConfigMap carries the dashboard as it is"
    );
}
