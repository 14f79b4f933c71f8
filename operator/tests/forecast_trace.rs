//! The forecast engine on a real trace (NAB nyc_taxi, first 3000 half-hours; MIT licence,
//! see traces/LICENSE-NAB.txt), through the same evaluation `forecast-eval` runs.

use std::path::Path;

use skyfleet::cli::forecast_eval::{self, Args, parse_trace};
use skyfleet::forecast::{ForecastConfig, ModelChoice, evaluate};

const TRACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../traces/nyc_taxi.csv");

/// The first 3000 half-hours (about two months) of the trace.
fn taxi() -> Vec<f64> {
    let text = std::fs::read_to_string(TRACE).unwrap();
    let trace = parse_trace(Path::new(TRACE), &text).unwrap();
    assert_eq!(trace.step.as_secs(), 1800);
    trace.values[..3000].to_vec()
}

fn cfg(model: ModelChoice) -> ForecastConfig {
    // Season 24h, window 7d, horizon 1h at 30-minute steps.
    ForecastConfig {
        model,
        season_len: 48,
        window: 336,
        horizon: 2,
        quantile: 0.95,
        ..ForecastConfig::default()
    }
}

/// Users rely on `auto` being at least as good as the trivial forecasts on clearly
/// seasonal demand, and on the upper quantile covering about what it says.
#[test]
fn auto_beats_the_naive_forecasts_on_taxi_demand() {
    let y = taxi();
    let auto = evaluate(&y, &cfg(ModelChoice::Auto)).unwrap();
    let last = evaluate(&y, &cfg(ModelChoice::LastValue)).unwrap();
    let seasonal = evaluate(&y, &cfg(ModelChoice::SeasonalNaive)).unwrap();
    assert_eq!(auto.origins, y.len() - 336 - 2 + 1);
    assert!(
        auto.wape < 0.8 * last.wape,
        "auto {} vs last value {}",
        auto.wape,
        last.wape
    );
    assert!(
        auto.wape < seasonal.wape,
        "auto {} vs seasonal naive {}",
        auto.wape,
        seasonal.wape
    );
    assert!(
        (0.92..=0.98).contains(&auto.coverage),
        "coverage {}",
        auto.coverage
    );
}

/// Holt-Winters and the autoregression each learn the daily cycle: both beat last value.
#[test]
fn fitted_models_beat_last_value_on_taxi_demand() {
    let y = taxi();
    let last = evaluate(&y, &cfg(ModelChoice::LastValue)).unwrap();
    for m in [ModelChoice::HoltWinters, ModelChoice::Autoregressive] {
        let r = evaluate(&y, &cfg(m)).unwrap();
        assert!(
            r.wape < last.wape,
            "{m:?} {} vs last value {}",
            r.wape,
            last.wape
        );
    }
}

fn args(trace: &Path, output: &str) -> Args {
    Args {
        traces: Vec::new(),
        trace: Some(trace.to_path_buf()),
        models: Vec::new(),
        horizon: "1h".into(),
        window: "7d".into(),
        season: "24h".into(),
        model: ModelChoice::Auto,
        quantile: 0.95,
        output: output.into(),
    }
}

/// The CSV header and the first 3000 samples, as a file for the CLI (in a directory removed
/// when the returned guard is dropped).
fn taxi_head_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let text = std::fs::read_to_string(TRACE).unwrap();
    let head: Vec<&str> = text.lines().take(3001).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nyc_taxi_head.csv");
    std::fs::write(&path, head.join("\n") + "\n").unwrap();
    (dir, path)
}

#[test]
fn cli_prints_the_summary_line_and_json() {
    let mut out = Vec::new();
    let (_dir, head) = taxi_head_file();
    forecast_eval::run(args(&head, "text"), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with("wape=") && last.contains(" model=auto origins=2663 seconds="),
        "{text}"
    );
    assert!(text.contains("coverage="), "{text}");

    let mut out = Vec::new();
    forecast_eval::run(args(&head, "json"), &mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    for key in ["wape", "model", "origins", "seconds", "coverage"] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["origins"], 2663);
}

fn run_on(content: &str) -> anyhow::Result<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.csv");
    std::fs::write(&path, content).unwrap();
    let mut out = Vec::new();
    let r = forecast_eval::run(args(&path, "text"), &mut out);
    r.map(|()| String::from_utf8(out).unwrap())
}

#[test]
fn bad_traces_are_refused_with_a_clear_error() {
    let err = run_on("time,value\n2014-07-01 00:00:00,1\n").unwrap_err();
    assert!(
        format!("{err:#}").contains("header `timestamp,value`"),
        "{err:#}"
    );

    let err =
        run_on("timestamp,value\n2014-07-01 00:00:00,1\n2014-07-01 00:30:00,abc\n").unwrap_err();
    assert!(
        format!("{err:#}").contains(":3: value \"abc\" is not a number"),
        "{err:#}"
    );

    let err = run_on("timestamp,value\n2014-07-01 00:00:00\n").unwrap_err();
    assert!(format!("{err:#}").contains("expected 2 columns"), "{err:#}");

    let err = run_on("timestamp,value\nyesterday,1\n").unwrap_err();
    assert!(
        format!("{err:#}").contains("timestamp \"yesterday\" does not parse"),
        "{err:#}"
    );

    let mut short = String::from("timestamp,value\n");
    for i in 0..10 {
        short.push_str(&format!("2014-07-01 0{i}:00:00,{i}\n"));
    }
    let err = run_on(&short).unwrap_err();
    assert!(format!("{err:#}").contains("too short"), "{err:#}");
}

fn all_traces() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../traces");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    v.sort();
    v
}

/// The protocol on every shipped trace (1 h ahead, 7-day window, daily season,
/// q = 0.95, each at its own step): `auto` is at or below the best of last value,
/// seasonal naive and Holt-Winters on every trace, and its upper quantile covers within
/// two points of 0.95. The traces are a development set; this guards against regressions.
#[test]
fn auto_is_never_worse_than_the_simple_models_on_the_shipped_traces() {
    let traces = all_traces();
    assert!(traces.len() >= 19, "{traces:?}");
    let mut ratios = Vec::new();
    for path in &traces {
        let text = std::fs::read_to_string(path).unwrap();
        let trace = parse_trace(path, &text).unwrap();
        let steps =
            |secs: u64| skyfleet::forecast::steps(std::time::Duration::from_secs(secs), trace.step);
        let cfg = |model| ForecastConfig {
            model,
            season_len: steps(86_400),
            window: steps(7 * 86_400),
            horizon: steps(3_600),
            quantile: 0.95,
            ..ForecastConfig::default()
        };
        let auto = evaluate(&trace.values, &cfg(ModelChoice::Auto)).unwrap();
        let best = [
            ModelChoice::LastValue,
            ModelChoice::SeasonalNaive,
            ModelChoice::HoltWinters,
        ]
        .into_iter()
        .map(|m| evaluate(&trace.values, &cfg(m)).unwrap().wape)
        .fold(f64::INFINITY, f64::min);
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(
            auto.wape <= best,
            "{name}: auto {} vs best simple {best}",
            auto.wape
        );
        assert!(
            (auto.coverage - 0.95).abs() <= 0.02,
            "{name}: coverage {}",
            auto.coverage
        );
        ratios.push(auto.wape / best);
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    assert!(
        mean <= 0.9,
        "auto is on average {mean} of the best simple model"
    );
}

/// Several traces and models print one table: a row per trace, then the totals.
#[test]
fn cli_prints_one_table_for_several_traces() {
    let (_dir, head) = taxi_head_file();
    let second = all_traces()
        .into_iter()
        .find(|p| p.ends_with("ec2_cpu_utilization_825cc2.csv"))
        .unwrap();
    let a = Args {
        traces: vec![head, second],
        trace: None,
        models: vec![ModelChoice::Auto, ModelChoice::LastValue],
        ..args(Path::new("unused"), "text")
    };
    let mut out = Vec::new();
    forecast_eval::run(a, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[1].starts_with("trace") && lines[1].contains("last-value"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("nyc_taxi_head ") && lines[2].contains(" 2663 "),
        "{text}"
    );
    assert!(
        lines[3].starts_with("ec2_cpu_utilization_825cc2 "),
        "{text}"
    );
    assert!(
        text.contains("auto vs the best of the others: at or below on "),
        "{text}"
    );
    assert!(text.contains("coverage of the 0.95 quantile"), "{text}");
}

/// Recorders writing local time stamp the skipped daylight-saving hour with one time; such
/// rows are kept in order, while a timestamp going backwards is still refused.
#[test]
fn repeated_timestamps_are_kept_and_backwards_ones_refused() {
    let text = "timestamp,value\n2014-03-09 01:50:00,1\n2014-03-09 01:55:00,2\n2014-03-09 03:00:00,3\n2014-03-09 03:00:00,4\n2014-03-09 03:05:00,5\n";
    let t = parse_trace(Path::new("dst.csv"), text).unwrap();
    assert_eq!(t.values, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(t.step.as_secs(), 300);
    assert_eq!(t.repeated, 1);
    let back = "timestamp,value\n2014-03-09 01:50:00,1\n2014-03-09 01:45:00,2\n";
    let err = parse_trace(Path::new("b.csv"), back).unwrap_err();
    assert!(err.to_string().contains("before the previous one"), "{err}");
}
