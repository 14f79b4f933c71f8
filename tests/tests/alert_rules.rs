//! The chart's alert rules as a platform team gets them: the plain rules file is what the
//! chart renders, Prometheus's own promtool accepts it and its unit tests pass (a firing and a
//! quiet case per alert), every alert has a runbook, and the PrometheusRule renders only when
//! asked for. No cluster is needed.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use skyfleet_e2e::{bin_dir, ok, repo_root};

const RULES: &str = "monitoring/skyfleet.rules.yaml";
const RULE_TESTS: &str = "monitoring/skyfleet.rules.test.yaml";

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "run {} (built by hack/build-bins.sh): {e}",
                program.display()
            )
        })
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join(path)).expect(path);
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The alert names the rules file defines.
fn alerts() -> BTreeSet<String> {
    yaml(RULES)["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["alert"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn the_plain_rules_file_is_what_the_chart_renders() {
    let rendered = ok(
        run(&repo_root().join("hack/render-rules.sh"), &[]),
        "hack/render-rules.sh",
    );
    let committed = std::fs::read_to_string(repo_root().join(RULES)).expect(RULES);
    assert!(
        rendered == committed,
        "{RULES} is out of date: run hack/render-rules.sh > {RULES}"
    );
    let names = alerts();
    for alert in [
        "SkyfleetRedundancyLost",
        "SkyfleetPlacementInfeasible",
        "SkyfleetPoolNotReady",
        "SkyfleetFailoverInProgress",
        "SkyfleetForecastErrorHigh",
        "SkyfleetWorkloadOverBudget",
        "SkyfleetReconcileErrors",
        "SkyfleetOperatorAbsent",
        "SkyfleetNoLeader",
    ] {
        assert!(names.contains(alert), "{alert} in {names:?}");
    }
}

#[test]
fn promtool_accepts_the_rules_and_their_unit_tests_pass() {
    let promtool = bin_dir().join("promtool");
    let checked = ok(
        run(&promtool, &["check", "rules", RULES]),
        "promtool check rules",
    );
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = ok(
        run(&promtool, &["test", "rules", RULE_TESTS]),
        "promtool test rules",
    );
    assert!(tested.contains("SUCCESS"), "{tested}");
}

#[test]
fn every_alert_has_a_firing_and_a_quiet_case_and_a_runbook() {
    let tests = yaml(RULE_TESTS);
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for case in tests["tests"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["alert_rule_test"].as_array().cloned().unwrap_or_default())
    {
        let name = case["alertname"].as_str().unwrap_or_default().to_string();
        if case["exp_alerts"].as_array().is_some_and(|a| !a.is_empty()) {
            fires.insert(name);
        } else {
            quiet.insert(name);
        }
    }
    let readme = std::fs::read_to_string(repo_root().join("charts/skyfleet/README.md"))
        .expect("chart README");
    let rules = yaml(RULES);
    for alert in alerts() {
        assert!(fires.contains(&alert), "{alert} has no firing case");
        assert!(quiet.contains(&alert), "{alert} has no quiet case");
        assert!(
            readme
                .lines()
                .any(|l| l.starts_with("### ") && l.contains(&alert)),
            "{alert} has no runbook section in charts/skyfleet/README.md"
        );
        let rule = rules["groups"][0]["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["alert"] == alert.as_str())
            .cloned()
            .unwrap_or_default();
        for key in ["summary", "description", "runbook"] {
            assert!(
                rule["annotations"][key]
                    .as_str()
                    .is_some_and(|s| !s.is_empty()),
                "{alert} has no {key}"
            );
        }
        let anchor = format!("#{}", alert.to_lowercase());
        assert!(
            rule["annotations"]["runbook"]
                .as_str()
                .is_some_and(|r| r.ends_with(&anchor)),
            "{alert}'s runbook points at its section"
        );
    }
}

#[test]
fn the_prometheus_rule_renders_only_when_enabled_and_bad_values_are_refused() {
    let helm = bin_dir().join("helm");
    let off = run(
        &helm,
        &[
            "template",
            "skyfleet",
            "charts/skyfleet",
            "--show-only",
            "templates/prometheusrule.yaml",
        ],
    );
    assert!(
        !off.status.success() || String::from_utf8_lossy(&off.stdout).trim().is_empty(),
        "no PrometheusRule by default"
    );
    let on = ok(
        run(
            &helm,
            &[
                "template",
                "skyfleet",
                "charts/skyfleet",
                "--set",
                "monitoring.prometheusRule.enabled=true",
                "--set",
                "monitoring.prometheusRule.labels.release=kube-prometheus-stack",
                "--set",
                "monitoring.alerts.poolNotReadyFor=7m",
                "--show-only",
                "templates/prometheusrule.yaml",
            ],
        ),
        "helm template with the PrometheusRule",
    );
    let rule: Value = serde_saphyr::from_str(&on).expect("PrometheusRule YAML");
    assert_eq!(rule["kind"], "PrometheusRule");
    assert_eq!(
        rule["metadata"]["labels"]["release"], "kube-prometheus-stack",
        "the Prometheus's ruleSelector label"
    );
    let not_ready = rule["spec"]["groups"][0]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["alert"] == "SkyfleetPoolNotReady")
        .cloned()
        .unwrap_or_default();
    assert_eq!(not_ready["for"], "7m", "durations come from the values");
    let bad = run(
        &helm,
        &[
            "template",
            "skyfleet",
            "charts/skyfleet",
            "--set",
            "monitoring.alerts.redundancyLostFor=soon",
        ],
    );
    assert!(
        !bad.status.success(),
        "a duration that is not one is refused"
    );
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("/monitoring/alerts/redundancyLostFor") && err.contains("soon"),
        "{err}"
    );
}
