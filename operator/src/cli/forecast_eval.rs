//! `skyfleet forecast-eval`: how well would each model have forecast this demand trace?
//!
//! Users run it on their own recorded demand before trusting a model (or `auto`) with
//! their replicas; we run it to compare the engine with statsmodels on public traces.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::api::duration;
use crate::forecast::{self, ForecastConfig, ModelChoice};

/// Arguments of the subcommand.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// CSV files with the header `timestamp,value` (timestamps like `2014-07-01 00:00:00`).
    /// With several traces or models, one table is printed.
    #[arg(value_name = "TRACE")]
    pub traces: Vec<PathBuf>,
    /// One more trace (the single-trace spelling).
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// How far ahead to forecast, e.g. 30m or 1h.
    #[arg(long, default_value = "1h")]
    pub horizon: String,
    /// History the model sees at each origin, e.g. 7d.
    #[arg(long, default_value = "7d")]
    pub window: String,
    /// Length of one demand cycle, e.g. 24h.
    #[arg(long, default_value = "24h")]
    pub season: String,
    /// auto, holt-winters, autoregressive, theta, damped-trend, exponential-smoothing,
    /// recent-median, seasonal-naive or last-value.
    #[arg(long, default_value = "auto", value_parser = parse_model)]
    pub model: ModelChoice,
    /// Several models, comma-separated (replaces --model), e.g.
    /// auto,last-value,seasonal-naive,holt-winters: the table compares the first with the
    /// best of the others.
    #[arg(long, value_delimiter = ',', value_parser = parse_model)]
    pub models: Vec<ModelChoice>,
    /// The upper quantile whose coverage is reported.
    #[arg(long, default_value_t = 0.95)]
    pub quantile: f64,
    /// Output format: text or json.
    #[arg(short = 'o', long = "output", default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
}

fn parse_model(s: &str) -> Result<ModelChoice, String> {
    ModelChoice::from_cli_name(s).ok_or_else(|| {
        format!(
            "unknown model {s:?}: use auto, holt-winters, autoregressive, theta, damped-trend, exponential-smoothing, recent-median, seasonal-naive or last-value"
        )
    })
}

/// Why a trace file was refused.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The first line is not `timestamp,value`.
    #[error("{path}: the first line must be the header `timestamp,value`, found {found:?}")]
    Header {
        /// The file.
        path: String,
        /// What the first line said.
        found: String,
    },
    /// A row does not have exactly two columns or does not parse.
    #[error("{path}:{line}: {message}")]
    Row {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Timestamps go backwards.
    #[error("{path}:{line}: timestamp {ts} is before the previous one")]
    Order {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// The offending timestamp.
        ts: String,
    },
    /// Fewer than two samples.
    #[error("{path}: need at least two samples to find the sampling step, found {0}", .count)]
    TooFew {
        /// The file.
        path: String,
        /// Samples found.
        count: usize,
    },
}

/// A demand trace: values at (nearly) regular timestamps.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Sample values; empty or `NaN` fields are kept as NaN (missing).
    pub values: Vec<f64>,
    /// The median spacing of the timestamps: the protocol's step.
    pub step: Duration,
    /// Spacings more than 1.5 steps: gaps in the recording.
    pub gaps: usize,
    /// Rows whose timestamp repeats the previous one. Recorders that write local time
    /// stamp the hour skipped at a daylight-saving change with one time (NAB's
    /// `2014-03-09 03:00:00`); the rows are still one step apart, so they are kept in order.
    pub repeated: usize,
}

/// Parses a `timestamp,value` CSV, so the protocol and the tests read traces the same way.
pub fn parse_trace(path: &Path, text: &str) -> Result<Trace, TraceError> {
    let p = path.display().to_string();
    let mut lines = text.lines().enumerate();
    let header = lines
        .next()
        .map(|(_, l)| l.trim_start_matches('\u{feff}').trim().to_string())
        .unwrap_or_default();
    let cols: Vec<String> = header
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    if cols != ["timestamp", "value"] {
        return Err(TraceError::Header {
            path: p,
            found: header,
        });
    }
    let mut times: Vec<jiff::civil::DateTime> = Vec::new();
    let mut values = Vec::new();
    for (i, line) in lines {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let row_err = |message: String| TraceError::Row {
            path: p.clone(),
            line: line_no,
            message,
        };
        let fields: Vec<&str> = line
            .split(',')
            .map(|f| f.trim().trim_matches('"'))
            .collect();
        let [ts, value] = fields[..] else {
            return Err(row_err(format!(
                "expected 2 columns (timestamp,value), found {}",
                fields.len()
            )));
        };
        let t: jiff::civil::DateTime = ts
            .parse()
            .map_err(|e| row_err(format!("timestamp {ts:?} does not parse: {e}")))?;
        let v = if value.is_empty() || value.eq_ignore_ascii_case("nan") {
            f64::NAN
        } else {
            value
                .parse::<f64>()
                .map_err(|_| row_err(format!("value {value:?} is not a number")))?
        };
        if times.last().is_some_and(|prev| t < *prev) {
            return Err(TraceError::Order {
                path: p,
                line: line_no,
                ts: ts.to_string(),
            });
        }
        times.push(t);
        values.push(v);
    }
    if values.len() < 2 {
        return Err(TraceError::TooFew {
            path: p,
            count: values.len(),
        });
    }
    let all_gaps: Vec<f64> = times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_secs_f64())
        .collect();
    let repeated = all_gaps.iter().filter(|&&g| g <= 0.0).count();
    let mut gaps_s: Vec<f64> = all_gaps.into_iter().filter(|&g| g > 0.0).collect();
    if gaps_s.is_empty() {
        return Err(TraceError::Row {
            path: p,
            line: 2,
            message: "every timestamp is the same: no sampling step".into(),
        });
    }
    gaps_s.sort_unstable_by(f64::total_cmp);
    let step_s = gaps_s[gaps_s.len() / 2];
    let gaps = gaps_s.iter().filter(|&&g| g > 1.5 * step_s).count();
    Ok(Trace {
        values,
        step: Duration::from_secs_f64(step_s),
        gaps,
        repeated,
    })
}

/// One model evaluated on one trace.
struct Run {
    model: ModelChoice,
    report: forecast::EvalReport,
    seconds: f64,
}

/// One trace evaluated with every asked model.
struct TraceRuns {
    path: PathBuf,
    trace: Trace,
    config: ForecastConfig,
    runs: Vec<Run>,
}

fn evaluate_trace(args: &Args, path: &Path, models: &[ModelChoice]) -> anyhow::Result<TraceRuns> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let trace = parse_trace(path, &text)?;
    let span = |name: &str, v: &str| -> anyhow::Result<usize> {
        let d = duration::parse(v).with_context(|| format!("--{name}"))?;
        Ok(forecast::steps(d, trace.step))
    };
    let base = ForecastConfig {
        model: ModelChoice::Auto,
        season_len: span("season", &args.season)?,
        horizon: span("horizon", &args.horizon)?,
        quantile: args.quantile,
        window: span("window", &args.window)?,
        ..ForecastConfig::default()
    };
    let mut runs = Vec::with_capacity(models.len());
    for &model in models {
        let config = ForecastConfig {
            model,
            ..base.clone()
        };
        let start = Instant::now();
        let report = forecast::evaluate(&trace.values, &config).with_context(|| {
            format!(
                "{}: {} samples at a {} step, window {} and horizon {} samples",
                path.display(),
                trace.values.len(),
                duration::format(trace.step),
                config.window,
                config.horizon
            )
        })?;
        runs.push(Run {
            model,
            report,
            seconds: start.elapsed().as_secs_f64(),
        });
    }
    Ok(TraceRuns {
        path: path.to_path_buf(),
        trace,
        config: base,
        runs,
    })
}

/// Runs the subcommand, writing its report to `out`.
pub fn run(args: Args, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    let mut paths = args.traces.clone();
    paths.extend(args.trace.clone());
    if paths.is_empty() {
        anyhow::bail!("no trace given: pass one or more CSV files (or --trace FILE)");
    }
    let models = if args.models.is_empty() {
        vec![args.model]
    } else {
        args.models.clone()
    };
    if paths.len() == 1 && models.len() == 1 {
        return run_one(&args, &paths[0], out);
    }
    let mut all = Vec::with_capacity(paths.len());
    for p in &paths {
        all.push(evaluate_trace(&args, p, &models)?);
    }
    if args.output == "json" {
        let rows: Vec<serde_json::Value> = all.iter().map(json_of).collect();
        writeln!(out, "{}", serde_json::Value::Array(rows))?;
        return Ok(());
    }
    write_table(&all, &models, out)
}

fn json_of(t: &TraceRuns) -> serde_json::Value {
    let models: serde_json::Map<String, serde_json::Value> = t
        .runs
        .iter()
        .map(|r| {
            (
                r.model.cli_name().to_string(),
                serde_json::json!({
                    "wape": r.report.wape,
                    "coverage": r.report.coverage,
                    "seconds": r.seconds,
                    "origins": r.report.origins,
                    "chosen": r.report.chosen.iter().map(|(k, n)| (k.name().to_string(), serde_json::json!(n))).collect::<serde_json::Map<_, _>>(),
                }),
            )
        })
        .collect();
    serde_json::json!({
        "trace": t.path.display().to_string(),
        "samples": t.trace.values.len(),
        "step_seconds": t.trace.step.as_secs_f64(),
        "season": t.config.season_len,
        "window": t.config.window,
        "horizon": t.config.horizon,
        "quantile": t.config.quantile,
        "models": models,
    })
}

/// One row per trace: each model's WAPE, the first model's ratio to the best of the others,
/// its coverage and seconds; then the totals the issue asks about.
fn write_table(
    all: &[TraceRuns],
    models: &[ModelChoice],
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let name_w = all
        .iter()
        .map(|t| stem(&t.path).len())
        .max()
        .unwrap_or(5)
        .max(5);
    let q = all
        .first()
        .map_or(args_quantile_default(), |t| t.config.quantile);
    let mut header = format!("{:<name_w$} {:>5} {:>6}", "trace", "step", "origins");
    for m in models {
        header.push_str(&format!(" {:>14}", m.cli_name()));
    }
    let first = models.first().map_or("", |m| m.cli_name());
    let compare = models.len() > 1;
    if compare {
        header.push_str(&format!(" {:>10}", "vs best"));
    }
    header.push_str(&format!(
        " {:>8} {:>7}  chosen most",
        format!("cov@{q}"),
        "seconds"
    ));
    writeln!(
        out,
        "WAPE per model (lower is better); {first}: coverage of the {q} quantile, seconds per trace"
    )?;
    writeln!(out, "{header}")?;
    let (mut ratios, mut wins, mut covs) = (Vec::new(), 0usize, Vec::new());
    for t in all {
        let step = duration::format(t.trace.step);
        let mut line = format!(
            "{:<name_w$} {:>5} {:>6}",
            stem(&t.path),
            step,
            t.runs.first().map_or(0, |r| r.report.origins)
        );
        for r in &t.runs {
            line.push_str(&format!(" {:>14.4}", r.report.wape));
        }
        let Some(head) = t.runs.first() else {
            continue;
        };
        if compare {
            let best = t.runs[1..]
                .iter()
                .map(|r| r.report.wape)
                .filter(|w| w.is_finite())
                .fold(f64::INFINITY, f64::min);
            let ratio = head.report.wape / best;
            if ratio.is_finite() {
                ratios.push(ratio);
                wins += usize::from(ratio <= 1.0);
            }
            line.push_str(&format!(" {:>10.3}", ratio));
        }
        covs.push(head.report.coverage);
        let total: usize = head.report.chosen.values().sum();
        let most = head
            .report
            .chosen
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(k, n)| format!("{k} {:.0}%", 100.0 * *n as f64 / total.max(1) as f64))
            .unwrap_or_default();
        line.push_str(&format!(
            " {:>8.3} {:>7.3}  {most}",
            head.report.coverage, head.seconds
        ));
        if head.report.first_history < t.config.window {
            line.push_str(&format!(
                " (short trace: from {} samples of history)",
                head.report.first_history
            ));
        }
        writeln!(out, "{line}")?;
    }
    if compare && !ratios.is_empty() {
        let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
        let worst = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        writeln!(
            out,
            "{first} vs the best of the others: at or below on {wins} of {}; mean ratio {mean:.3} ({:+.1}%), worst {worst:.3}",
            ratios.len(),
            100.0 * (mean - 1.0)
        )?;
    }
    if !covs.is_empty() {
        let lo = covs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = covs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let within = covs.iter().filter(|c| (*c - q).abs() <= 0.02).count();
        writeln!(
            out,
            "{first} coverage of the {q} quantile: {lo:.3} to {hi:.3}; within ±0.02 on {within} of {}",
            covs.len()
        )?;
    }
    Ok(())
}

fn args_quantile_default() -> f64 {
    0.95
}

fn stem(p: &Path) -> String {
    p.file_stem().map_or_else(
        || p.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    )
}

/// The single-trace, single-model report (the original format).
fn run_one(args: &Args, path: &Path, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    let t = evaluate_trace(
        args,
        path,
        &[args.models.first().copied().unwrap_or(args.model)],
    )?;
    let Some(run) = t.runs.first() else {
        anyhow::bail!("no model evaluated");
    };
    let (trace, config, report, seconds) = (&t.trace, &t.config, &run.report, run.seconds);
    let model = run.model;
    let chosen: serde_json::Map<String, serde_json::Value> = report
        .chosen
        .iter()
        .map(|(k, n)| (k.name().to_string(), (*n).into()))
        .collect();
    if args.output == "json" {
        let v = serde_json::json!({
            "wape": report.wape,
            "model": model.cli_name(),
            "origins": report.origins,
            "seconds": seconds,
            "coverage": report.coverage,
            "quantile": report.quantile,
            "chosen": chosen,
            "candidates": report.candidates.iter().map(|(k, w)| (k.name().to_string(), serde_json::json!(w))).collect::<serde_json::Map<_, _>>(),
            "samples": trace.values.len(),
            "step_seconds": trace.step.as_secs_f64(),
            "season": config.season_len,
            "window": config.window,
            "horizon": config.horizon,
        });
        writeln!(out, "{v}")?;
        return Ok(());
    }
    writeln!(
        out,
        "trace={} samples={} step={} gaps={} season={} window={} horizon={} (samples)",
        path.display(),
        trace.values.len(),
        duration::format(trace.step),
        trace.gaps,
        config.season_len,
        config.window,
        config.horizon
    )?;
    let total: usize = report.chosen.values().sum();
    let shares: Vec<String> = report
        .chosen
        .iter()
        .map(|(k, n)| format!("{k}={:.1}%", 100.0 * *n as f64 / total.max(1) as f64))
        .collect();
    writeln!(out, "chosen: {}", shares.join(" "))?;
    if !report.candidates.is_empty() {
        let c: Vec<String> = report
            .candidates
            .iter()
            .map(|(k, w)| format!("{k}={w:.4}"))
            .collect();
        writeln!(out, "candidates alone (wape): {}", c.join(" "))?;
    }
    writeln!(
        out,
        "coverage={:.4} (share of actuals at or below the {} quantile forecast)",
        report.coverage, report.quantile
    )?;
    writeln!(
        out,
        "wape={:.4} model={} origins={} seconds={:.3}",
        report.wape,
        model.cli_name(),
        report.origins,
        seconds
    )?;
    Ok(())
}
