//! Demand forecasting: pure functions over plain series, no I/O.
//!
//! metrics-server only tells the operator how much CPU a workload uses *now*, yet replicas
//! take minutes to start, so skyfleet keeps the demand history and provisions for the upper
//! quantile of a forecast over the horizon. Everything here works on plain `f64` samples at
//! a fixed step, knows nothing of Kubernetes, and never panics on bad data: it falls back
//! to a simpler model and says why.
//!
//! The entry point for the operator and the simulator is the stateful [`Forecaster`]: feed
//! it one sample per step with [`Forecaster::observe`] and ask [`Forecaster::forecast`]
//! whenever a decision is due. It refits model parameters on a schedule and only filters
//! between refits, so one step costs microseconds. [`forecast`] is the one-shot form, and
//! [`evaluate`] runs the rolling-origin protocol used by `skyfleet forecast-eval`.

mod autoregressive;
mod conformal;
mod eval;
mod flags;
mod forecaster;
mod holt_winters;
mod linalg;
mod naive;
mod optimize;
mod steps;
mod theta;
mod track;

use std::time::Duration;

pub use eval::{EvalReport, evaluate};
pub use forecaster::Forecaster;

use crate::api::workload::{ForecastModel, ForecastSpec};

/// Which model the user asked for; mirrors the CRD's [`ForecastModel`] so a manifest maps
/// onto the engine one to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub enum ModelChoice {
    /// Pick per series by rolling backtest among all models and their combination: users
    /// should not have to know which model suits their demand.
    #[default]
    Auto,
    /// Additive Holt-Winters with a (possibly) damped trend, for smooth daily cycles.
    HoltWinters,
    /// AR(p) by least squares on the seasonally adjusted series, for short-term momentum.
    Autoregressive,
    /// The value one season ago, for cycles that repeat sharply.
    SeasonalNaive,
    /// The latest value, for series without structure (random walks, spikes).
    LastValue,
    /// The median of the last horizon's samples, for spiky demand. Not in the CRD yet:
    /// `forecast-eval` and the library only.
    RecentMedian,
    /// The Theta method (exponential smoothing with drift) on the seasonally adjusted
    /// series. Not in the CRD yet: `forecast-eval` and the library only.
    Theta,
    /// Damped-trend exponential smoothing on the seasonally adjusted series. Not in the
    /// CRD yet: `forecast-eval` and the library only.
    DampedTrend,
    /// Simple exponential smoothing, ETS(A,N,N), on the raw series. Not in the CRD yet:
    /// `forecast-eval` and the library only.
    ExponentialSmoothing,
    /// No forecast at all: scale on current usage only (reactive autoscaling).
    None,
}

impl From<ForecastModel> for ModelChoice {
    fn from(m: ForecastModel) -> Self {
        match m {
            ForecastModel::Auto => Self::Auto,
            ForecastModel::HoltWinters => Self::HoltWinters,
            ForecastModel::Autoregressive => Self::Autoregressive,
            ForecastModel::SeasonalNaive => Self::SeasonalNaive,
            ForecastModel::LastValue => Self::LastValue,
            ForecastModel::None => Self::None,
        }
    }
}

impl ModelChoice {
    /// The command-line spelling (`holt-winters`), so reports name models the way users
    /// typed them.
    pub fn cli_name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::HoltWinters => "holt-winters",
            Self::Autoregressive => "autoregressive",
            Self::SeasonalNaive => "seasonal-naive",
            Self::LastValue => "last-value",
            Self::RecentMedian => "recent-median",
            Self::Theta => "theta",
            Self::DampedTrend => "damped-trend",
            Self::ExponentialSmoothing => "exponential-smoothing",
            Self::None => "none",
        }
    }

    /// Parses the command-line spelling, so the CLI and tests share one list of names.
    pub fn from_cli_name(name: &str) -> Option<Self> {
        [
            Self::Auto,
            Self::HoltWinters,
            Self::Autoregressive,
            Self::SeasonalNaive,
            Self::LastValue,
            Self::RecentMedian,
            Self::Theta,
            Self::DampedTrend,
            Self::ExponentialSmoothing,
            Self::None,
        ]
        .into_iter()
        .find(|m| m.cli_name() == name)
    }
}

/// The model that actually produced a forecast; reported in the workload status so users
/// can see what `Auto` picked, or what a fallback replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum ModelKind {
    /// The latest value.
    LastValue,
    /// The value one season ago.
    SeasonalNaive,
    /// The median of the last horizon's samples.
    RecentMedian,
    /// AR(p) on the seasonally adjusted series.
    Autoregressive,
    /// Additive Holt-Winters with a fitted damping factor.
    HoltWinters,
    /// Simple exponential smoothing, ETS(A,N,N), on the raw series.
    ExponentialSmoothing,
    /// The Theta method (exponential smoothing with drift) on the seasonally adjusted series.
    Theta,
    /// Damped-trend exponential smoothing on the seasonally adjusted series.
    DampedTrend,
    /// The mean of the models whose recent error is close to the best one's: a combination
    /// of good models is more reliable than any of them, and the far worse are left out.
    Combined,
    /// No model: current usage only (asked for, or too little history to forecast).
    Reactive,
}

impl ModelKind {
    /// The name written to status and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::LastValue => "LastValue",
            Self::SeasonalNaive => "SeasonalNaive",
            Self::RecentMedian => "RecentMedian",
            Self::Autoregressive => "Autoregressive",
            Self::HoltWinters => "HoltWinters",
            Self::ExponentialSmoothing => "ExponentialSmoothing",
            Self::Theta => "Theta",
            Self::DampedTrend => "DampedTrend",
            Self::Combined => "Combined",
            Self::Reactive => "Reactive",
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How to forecast, in samples (steps) rather than durations, so the engine stays free of
/// clocks; [`ForecastConfig::from_spec`] converts a manifest's durations.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ForecastConfig {
    /// Which model to use.
    pub model: ModelChoice,
    /// Samples per season (one demand cycle, e.g. a day); 0 or 1 means no seasonality.
    pub season_len: usize,
    /// Samples to forecast ahead: how long new replicas need before they help.
    pub horizon: usize,
    /// The upper quantile to provision for, in (0, 1).
    pub quantile: f64,
    /// Samples of history kept and fitted on; older samples are forgotten.
    pub window: usize,
    /// Refit model parameters every this many samples (filter in between); 0 picks one
    /// season (or one seventh of the window without seasonality), as a daily refit does.
    pub refit_every: usize,
    /// Forecast origins remembered for backtests and residual quantiles; 0 picks the
    /// window, so the choice is judged on the same history the models see.
    pub backtest_len: usize,
}

impl Default for ForecastConfig {
    /// One day of 5-minute samples per season, 30 minutes ahead, 7 days of history: the
    /// CRD's defaults at metrics-server's usual resolution.
    fn default() -> Self {
        Self {
            model: ModelChoice::Auto,
            season_len: 288,
            horizon: 6,
            quantile: 0.95,
            window: 2016,
            refit_every: 0,
            backtest_len: 0,
        }
    }
}

impl ForecastConfig {
    /// Builds the configuration from a workload's forecast settings and the sampling step,
    /// so the operator and the simulator translate manifests the same way.
    pub fn from_spec(spec: &ForecastSpec, step: Duration) -> Result<Self, ForecastError> {
        let samples = |field: &'static str, text: &str| -> Result<usize, ForecastError> {
            let d = crate::api::duration::parse(text).map_err(|e| ForecastError::Config {
                field,
                message: e.to_string(),
            })?;
            Ok(steps(d, step))
        };
        if step.is_zero() {
            return Err(ForecastError::Config {
                field: "step",
                message: "the sampling step must be positive".into(),
            });
        }
        let cfg = Self {
            model: spec.model.into(),
            season_len: samples("season", &spec.season)?,
            horizon: samples("horizon", &spec.horizon)?.max(1),
            quantile: spec.quantile,
            window: samples("history", &spec.history)?,
            refit_every: 0,
            backtest_len: 0,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the settings that would make forecasting meaningless, so mistakes surface
    /// as an error instead of a silent bad forecast.
    pub fn validate(&self) -> Result<(), ForecastError> {
        let bad = |field: &'static str, message: &str| {
            Err(ForecastError::Config {
                field,
                message: message.to_string(),
            })
        };
        if self.horizon == 0 {
            return bad("horizon", "must be at least one sample");
        }
        if !(self.quantile > 0.0 && self.quantile < 1.0) {
            return bad("quantile", "must be strictly between 0 and 1");
        }
        if self.window < 2 {
            return bad("window", "must hold at least two samples");
        }
        Ok(())
    }

    /// The season length actually usable: none below two samples.
    pub(crate) fn season(&self) -> usize {
        if self.season_len >= 2 {
            self.season_len
        } else {
            1
        }
    }

    /// The refit period in samples.
    pub(crate) fn refit_period(&self) -> usize {
        if self.refit_every > 0 {
            self.refit_every
        } else if self.season() > 1 {
            self.season()
        } else {
            (self.window / 7).max(1)
        }
    }

    /// How many origins of the issued forecasts' errors the interval remembers: the whole
    /// window, unless that would keep more than [`MAX_BACKTEST_CELLS`] errors (origins ×
    /// horizon). Model choice keeps no rows at all, only discounted sums per model. Every origin
    /// keeps a row of `horizon` errors, so a long window with a fine step and a long horizon
    /// (7 days of 5 s steps, 30 min ahead: 44 million errors, 350 MB per model) would make one
    /// workload cost gigabytes; the most recent origins are plenty to choose a model and to
    /// estimate its error quantiles.
    pub(crate) fn backtest_origins(&self) -> usize {
        if self.backtest_len > 0 {
            return self.backtest_len;
        }
        let within_budget = (MAX_BACKTEST_CELLS / self.horizon.max(1)).max(self.horizon + 1);
        self.window.max(self.horizon + 1).min(within_budget)
    }
}

impl ForecastConfig {
    /// The half-life, in samples, of the discount on backtest errors that drives model
    /// choice: one season (one demand cycle, a day by default), or a seventh of the window
    /// without a season, the same period models are refitted on; never below one horizon.
    /// An error a day old then counts half, a week old under 1%: the choice follows a
    /// change of regime within a day or two and still rests on hundreds of origins.
    pub fn half_life(&self) -> f64 {
        let period = if self.season() > 1 {
            self.season()
        } else {
            (self.window / 7).max(1)
        };
        (period as f64).max(self.horizon as f64)
    }
}

/// Most backtest errors one model keeps (origins × horizon): 200 KB of memory. The NAB
/// traces at 5 min steps with a 7 day window and a 1 h horizon (2016 × 12) fit whole.
pub const MAX_BACKTEST_CELLS: usize = 25_000;

/// Rounds a duration to a whole number of steps (at least one).
pub fn steps(d: Duration, step: Duration) -> usize {
    if step.is_zero() {
        return 1;
    }
    let n = (d.as_secs_f64() / step.as_secs_f64()).round();
    if n.is_finite() && n >= 1.0 {
        n as usize
    } else {
        1
    }
}

/// A forecast the sizing step can act on: plain data, ready for status and reports.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Forecast {
    /// Point forecast for steps 1..=horizon.
    pub mean: Vec<f64>,
    /// Upper `quantile` forecast for steps 1..=horizon: what to provision for.
    pub upper: Vec<f64>,
    /// The highest upper-quantile value over the horizon: the demand the plan must carry.
    pub peak_upper: f64,
    /// The quantile `upper` stands for.
    pub quantile: f64,
    /// The model that made this forecast.
    pub model: ModelKind,
    /// That model's rolling-origin backtest error (WAPE) over recent history, if known.
    pub backtest_wape: Option<f64>,
    /// Why a simpler model was used, or why the interval is not yet calibrated.
    pub reason: Option<String>,
    /// Why this model: every candidate's recent backtest and the runner-up, so status can
    /// explain `Auto`'s choice. `None` when no model forecast (reactive).
    pub selection: Option<Selection>,
}

/// How the forecasting model was chosen: the rolling backtest behind the choice.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Selection {
    /// The model that made the forecast.
    pub chosen: ModelKind,
    /// Its recent backtest WAPE (errors discounted with a half-life of
    /// [`Selection::half_life`] samples), if scored yet.
    pub chosen_wape: Option<f64>,
    /// The best other candidate and its recent backtest WAPE.
    pub runner_up: Option<(ModelKind, Option<f64>)>,
    /// Every candidate, in the order they were considered (simplest first).
    pub candidates: Vec<CandidateScore>,
    /// The models averaged by [`ModelKind::Combined`] at this origin (empty if it had
    /// fewer than two close enough to the best).
    pub combined: Vec<ModelKind>,
    /// The half-life, in samples, of the discount on backtest errors.
    pub half_life: f64,
}

impl Selection {
    /// One line for status and events, e.g. `HoltWinters (recent WAPE 0.031; runner-up
    /// Theta 0.034; LastValue 0.052)`.
    pub fn summary(&self) -> String {
        let w = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
        let mut s = format!("{} (recent WAPE {}", self.chosen, w(self.chosen_wape));
        if let Some((k, v)) = self.runner_up {
            s.push_str(&format!("; runner-up {k} {}", w(v)));
        }
        for c in &self.candidates {
            let named = c.model == self.chosen || self.runner_up.is_some_and(|(k, _)| k == c.model);
            if !named && matches!(c.model, ModelKind::LastValue | ModelKind::SeasonalNaive) {
                s.push_str(&format!("; {} {}", c.model, w(c.wape)));
            }
        }
        if self.chosen == ModelKind::Combined && !self.combined.is_empty() {
            let m: Vec<&str> = self.combined.iter().map(|k| k.name()).collect();
            s.push_str(&format!("; mean of {}", m.join(", ")));
        }
        s.push(')');
        s
    }
}

/// One candidate model's standing in the rolling backtest.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CandidateScore {
    /// The model.
    pub model: ModelKind,
    /// Recent (discounted) backtest WAPE, if scored.
    pub wape: Option<f64>,
    /// Recent (discounted) mean absolute error per step: the choice criterion.
    pub mae: Option<f64>,
    /// Whether it could forecast at this origin.
    pub ready: bool,
}

/// Why no forecast could be made at all (every other problem degrades to a simpler model).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForecastError {
    /// The configuration cannot work.
    #[error("forecast setting {field}: {message}")]
    Config {
        /// The offending setting.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// No finite sample has been seen yet.
    #[error("no demand history yet: at least one finite sample is needed")]
    NoHistory,
    /// The series is too short for the asked evaluation.
    #[error(
        "series of {len} samples is too short: need at least {need} (window, or two seasons, + horizon)"
    )]
    TooShort {
        /// Samples given.
        len: usize,
        /// Samples needed.
        need: usize,
    },
}

/// What every model offers the [`Forecaster`]: fit on a window, filter one sample at a
/// time, and forecast from the current state. Fitting only estimates parameters and resets
/// the state to just before the window, so the forecaster can replay the window to get
/// in-sample backtest errors and the end state in one pass.
pub(crate) trait SeriesModel: Send + Sync + std::fmt::Debug {
    /// Estimates parameters on `y` (finite samples) and resets the state to before `y[0]`.
    fn fit(&mut self, y: &[f64]) -> Result<(), String>;
    /// [`fit`](Self::fit), taking the window's seasonal profile from `profiles`, which
    /// computes it once for every model fitted on the same window.
    fn fit_sharing(
        &mut self,
        y: &[f64],
        profiles: &mut autoregressive::SharedProfile,
    ) -> Result<(), String> {
        let _ = profiles;
        self.fit(y)
    }
    /// Filters one new (finite) sample into the state.
    fn update(&mut self, y: f64);
    /// Writes the point forecast for steps 1..=out.len(); false while the state is not
    /// ready (e.g. less than a season seen since the fit).
    fn predict(&self, out: &mut [f64]) -> bool;
}

/// Forecasts once from a whole history, for callers without a long-lived [`Forecaster`]
/// (e.g. `skyfleet plan`). Uses the last `config.window` samples.
pub fn forecast(history: &[f64], config: &ForecastConfig) -> Result<Forecast, ForecastError> {
    let mut f = Forecaster::new(config.clone())?;
    f.extend_from_slice(history);
    f.forecast(config.horizon, config.quantile)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::workload::ForecastSpec;

    fn config(step_secs: u64, horizon: &str) -> ForecastConfig {
        let spec = ForecastSpec {
            horizon: horizon.to_string(),
            ..ForecastSpec::default()
        };
        ForecastConfig::from_spec(&spec, Duration::from_secs(step_secs)).expect("valid")
    }

    #[test]
    fn the_backtest_keeps_the_whole_window_only_while_it_is_small() {
        // 7 days of 5 min steps, 1 h ahead: the whole window fits.
        let small = config(300, "1h");
        assert_eq!(small.backtest_origins(), small.window);
        // 7 days of 5 s steps, 30 min ahead: bounded, yet more origins than one horizon.
        let fine = config(5, "30m");
        let origins = fine.backtest_origins();
        assert!(origins > fine.horizon, "{origins}");
        assert!(
            origins * fine.horizon <= MAX_BACKTEST_CELLS.max((fine.horizon + 1) * fine.horizon)
        );
        // The operator's default: 1 min steps, 7 days, 30 min ahead.
        let default = config(60, "30m");
        assert!(default.backtest_origins() * default.horizon <= MAX_BACKTEST_CELLS);
        assert!(
            default.backtest_origins() >= 12 * 60,
            "at least half a day of origins"
        );
    }
}
