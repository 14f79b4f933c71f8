//! The rolling-origin evaluation protocol behind `skyfleet forecast-eval`.
//!
//! At every origin t = W−1 … N−h−1 the forecaster has seen y[..=t] through the same
//! incremental path the operator uses (history window W, refits on schedule, filtering in
//! between) and forecasts steps 1..=h. Each origin's forecast uses only samples up to t, and
//! its interval only the errors of forecasts whose actuals were known by t. A trace shorter
//! than W + h starts at the first origin with two seasons (or two horizons) of history, as
//! a new workload would, and the history grows to the window from there. WAPE = Σ|y − ŷ| / Σ|y| over all origins and steps,
//! with ŷ the point forecast; coverage is the share of actuals at or below the upper
//! quantile forecast.

use std::collections::BTreeMap;

use super::{ForecastConfig, ForecastError, Forecaster, ModelChoice, ModelKind};

/// What an evaluation measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvalReport {
    /// The model asked for.
    pub model: ModelChoice,
    /// Σ|y − ŷ| / Σ|y| over all origins and steps (NaN if every actual is zero).
    pub wape: f64,
    /// Share of actuals at or below the upper-quantile forecast.
    pub coverage: f64,
    /// The quantile the upper forecast stands for.
    pub quantile: f64,
    /// Forecast origins evaluated.
    pub origins: usize,
    /// Samples of history at the first origin (the window, unless the trace is shorter
    /// than window + horizon).
    pub first_history: usize,
    /// How many origins each model made the forecast at (what `Auto` chose).
    pub chosen: BTreeMap<ModelKind, usize>,
    /// Under `Auto`, the WAPE each candidate would have scored alone on the same origins
    /// (only over origins where it could forecast).
    pub candidates: BTreeMap<ModelKind, f64>,
}

/// Evaluates `config` on `series` by the rolling-origin protocol (window =
/// `config.window`, horizon = `config.horizon`). Non-finite samples are treated as
/// missing: fed to the forecaster as gaps and not scored.
pub fn evaluate(series: &[f64], config: &ForecastConfig) -> Result<EvalReport, ForecastError> {
    config.validate()?;
    let w = config.window;
    let h = config.horizon;
    let n = series.len();
    let start = if n >= w + h {
        w
    } else {
        (2 * config.season()).max(2 * h).max(2).min(w)
    };
    if n < start + h {
        return Err(ForecastError::TooShort {
            len: n,
            need: start + h,
        });
    }
    let mut f = Forecaster::new(config.clone())?;
    f.extend_from_slice(&series[..start]);
    let mut abs_err = 0.0;
    let mut abs_y = 0.0;
    let mut covered = 0usize;
    let mut scored = 0usize;
    let mut chosen = BTreeMap::new();
    let mut per_model: BTreeMap<ModelKind, (f64, f64)> = BTreeMap::new();
    let last_origin = n - h - 1;
    for t in (start - 1)..=last_origin {
        let fc = f.forecast(h, config.quantile)?;
        *chosen.entry(fc.model).or_insert(0) += 1;
        for k in 0..h {
            let y = series[t + 1 + k];
            if !y.is_finite() {
                continue;
            }
            abs_err += (y - fc.mean[k]).abs();
            abs_y += y.abs();
            scored += 1;
            if y <= fc.upper[k] {
                covered += 1;
            }
        }
        if config.model == ModelChoice::Auto {
            for (kind, path) in f.candidate_paths() {
                let Some(path) = path else { continue };
                let e = per_model.entry(kind).or_insert((0.0, 0.0));
                for (k, p) in path.iter().enumerate().take(h) {
                    let y = series[t + 1 + k];
                    if y.is_finite() {
                        e.0 += (y - p).abs();
                        e.1 += y.abs();
                    }
                }
            }
        }
        if t < last_origin {
            f.observe(series[t + 1]);
        }
    }
    Ok(EvalReport {
        model: config.model,
        wape: if abs_y > 0.0 {
            abs_err / abs_y
        } else {
            f64::NAN
        },
        coverage: if scored > 0 {
            covered as f64 / scored as f64
        } else {
            f64::NAN
        },
        quantile: config.quantile,
        origins: last_origin + 2 - start,
        first_history: start,
        chosen,
        candidates: per_model
            .into_iter()
            .map(|(k, (e, y))| (k, if y > 0.0 { e / y } else { f64::NAN }))
            .collect(),
    })
}
