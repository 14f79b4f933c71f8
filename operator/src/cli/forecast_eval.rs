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
    /// CSV file with the header `timestamp,value` (timestamps like `2014-07-01 00:00:00`).
    #[arg(long)]
    pub trace: PathBuf,
    /// How far ahead to forecast, e.g. 30m or 1h.
    #[arg(long, default_value = "1h")]
    pub horizon: String,
    /// History the model sees at each origin, e.g. 7d.
    #[arg(long, default_value = "7d")]
    pub window: String,
    /// Length of one demand cycle, e.g. 24h.
    #[arg(long, default_value = "24h")]
    pub season: String,
    /// auto, holt-winters, autoregressive, seasonal-naive or last-value.
    #[arg(long, default_value = "auto", value_parser = parse_model)]
    pub model: ModelChoice,
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
            "unknown model {s:?}: use auto, holt-winters, autoregressive, seasonal-naive or last-value"
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
    /// Timestamps go backwards or repeat.
    #[error("{path}:{line}: timestamp {ts} is not after the previous one")]
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
        if times.last().is_some_and(|prev| t <= *prev) {
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
    let mut gaps_s: Vec<f64> = times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_secs_f64())
        .collect();
    gaps_s.sort_unstable_by(f64::total_cmp);
    let step_s = gaps_s[gaps_s.len() / 2];
    let gaps = gaps_s.iter().filter(|&&g| g > 1.5 * step_s).count();
    Ok(Trace {
        values,
        step: Duration::from_secs_f64(step_s),
        gaps,
    })
}

/// Runs the subcommand, writing its report to `out`.
pub fn run(args: Args, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.trace)
        .with_context(|| format!("reading {}", args.trace.display()))?;
    let trace = parse_trace(&args.trace, &text)?;
    let span = |name: &str, v: &str| -> anyhow::Result<usize> {
        let d = duration::parse(v).with_context(|| format!("--{name}"))?;
        Ok(forecast::steps(d, trace.step))
    };
    let config = ForecastConfig {
        model: args.model,
        season_len: span("season", &args.season)?,
        horizon: span("horizon", &args.horizon)?,
        quantile: args.quantile,
        window: span("window", &args.window)?,
        ..ForecastConfig::default()
    };
    let start = Instant::now();
    let report = forecast::evaluate(&trace.values, &config).with_context(|| {
        format!(
            "{}: {} samples at a {} step, window {} and horizon {} samples",
            args.trace.display(),
            trace.values.len(),
            duration::format(trace.step),
            config.window,
            config.horizon
        )
    })?;
    let seconds = start.elapsed().as_secs_f64();
    let chosen: serde_json::Map<String, serde_json::Value> = report
        .chosen
        .iter()
        .map(|(k, n)| (k.name().to_string(), (*n).into()))
        .collect();
    if args.output == "json" {
        let v = serde_json::json!({
            "wape": report.wape,
            "model": args.model.cli_name(),
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
        args.trace.display(),
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
        args.model.cli_name(),
        report.origins,
        seconds
    )?;
    Ok(())
}
