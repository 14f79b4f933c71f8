//! One workload's demand as the reconciler keeps it: the step history (persisted in a
//! ConfigMap) and a long-lived [`Forecaster`] fed with every finished step. Pure: the caller
//! measures and persists.

use std::collections::VecDeque;
use std::time::Duration;

use super::history::{DemandHistory, HistoryError};
use crate::api::workload::{DemandStatus, ForecastSpec};
use crate::forecast::{ForecastConfig, Forecaster, ModelChoice, ModelKind};

/// Most samples a forecaster fits on: 14 days of 1-minute steps. A longer window (the CRD
/// allows 90 days, and the operator may record every few seconds) is forecast at a coarser
/// step, `k` history steps averaged to one, with the smallest `k` that fits: a cold fit grows
/// faster than linearly with the window (measured: 10 080 samples 0.1 s, 18 514 samples
/// 1.2 s, 43 200 samples 7.5 s, 129 600 samples 390 s), so without this one tenant's
/// settings would cost minutes of a core per decision. The history itself stays at the
/// recording step.
pub const MAX_FORECAST_SAMPLES: usize = 20_160;

/// Most finished history steps that are stored only when the decision memory changes: the
/// history alone is written once every this many steps. At the default 1-minute step a
/// restart loses at most the last 30 minutes of demand history (gaps the forecaster imputes,
/// in a 7-day window), and the history write rate falls thirtyfold: a week of history is
/// about 50 KB per workload, so at 1 000 workloads rewriting it every minute is 900 KB/s of
/// etcd writes, every 15 minutes 60 KB/s, every 30 minutes 30 KB/s. Decision memory changes
/// are still written at once (see [`super::Memory::needs_persist`]), and each such write
/// carries the history as it is.
pub const PERSIST_EVERY_STEPS: i64 = 30;

/// How many history steps make one forecast step for a window of `capacity` steps.
pub fn forecast_factor(capacity: usize) -> usize {
    capacity.div_ceil(MAX_FORECAST_SAMPLES).max(1)
}

/// Fewest samples before a forecast is trusted over current demand: two horizons, at least
/// a dozen, at most the window.
pub fn min_samples(config: &ForecastConfig) -> usize {
    (2 * config.horizon).max(12).min(config.window.max(2))
}

/// Demand the plan must carry, and what status says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// What replicas are added for: max(current, forecast peak over the lead time), in cores.
    pub cores: f64,
    /// max(current, forecast peak over the horizon): replicas are not removed below it.
    pub horizon_peak: f64,
    /// Demand now: measured, or the latest recorded value standing in.
    pub current: f64,
    /// For status.
    pub status: DemandStatus,
    /// Why a forecast was not used, or what degraded it.
    pub note: Option<String>,
    /// The forecast behind it, unrounded, for metrics; None while scaling reactively.
    pub forecast: Option<ForecastSummary>,
}

/// What a forecast said, as the metrics export it (status rounds these and keeps no point
/// forecast and no per-model errors).
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastSummary {
    /// Peak of the chosen model's point forecast over the horizon, in cores.
    pub mean_peak: f64,
    /// Peak of the upper quantile over the horizon, in cores.
    pub upper_peak: f64,
    /// The quantile provisioned for.
    pub quantile: f64,
    /// The chosen model's recent backtest WAPE.
    pub wape: Option<f64>,
    /// Each candidate's recent backtest WAPE; candidates not yet scored are left out.
    pub backtests: Vec<(ModelKind, f64)>,
}

/// One workload's history and forecaster.
#[derive(Debug)]
pub struct DemandTracker {
    history: DemandHistory,
    forecaster: Option<Forecaster>,
    config: Option<ForecastConfig>,
    /// Absolute step index up to which finished steps were fed to the forecaster.
    fed_to: i64,
    /// The step after the last finished one when the history was last stored (`None`:
    /// never), to store the history alone at most every `persist_every` steps.
    persisted_at: Option<i64>,
    /// Steps between two stores of the history alone ([`PERSIST_EVERY_STEPS`] unless the
    /// operator is told otherwise).
    persist_every: i64,
}

impl DemandTracker {
    /// Empty history with `step` and room for the spec's history window.
    pub fn new(spec: &ForecastSpec, step: Duration) -> Self {
        Self::with_history(DemandHistory::new(step_secs(step), capacity(spec, step)))
    }

    /// Resumes from what [`encode`](Self::encode) stored. The text is untrusted: see
    /// [`DemandHistory::decode`]. A history that ends in the future is dropped by the first
    /// measurement; [`decode_at`](Self::decode_at) refuses it at once.
    pub fn decode(text: &str, spec: &ForecastSpec, step: Duration) -> Result<Self, HistoryError> {
        Self::decode_checked(text, spec, step, None)
    }

    /// [`decode`](Self::decode) at unix time `now`: a history ending after `now` is refused,
    /// one older than the window is forgotten.
    pub fn decode_at(
        text: &str,
        spec: &ForecastSpec,
        step: Duration,
        now: i64,
    ) -> Result<Self, HistoryError> {
        Self::decode_checked(text, spec, step, Some(now))
    }

    fn decode_checked(
        text: &str,
        spec: &ForecastSpec,
        step: Duration,
        now: Option<i64>,
    ) -> Result<Self, HistoryError> {
        let history = DemandHistory::decode(text, step_secs(step), capacity(spec, step), now)?;
        let mut tracker = Self::with_history(history);
        tracker.persisted_at = Some(tracker.finished());
        Ok(tracker)
    }

    fn with_history(history: DemandHistory) -> Self {
        Self {
            history,
            forecaster: None,
            config: None,
            fed_to: i64::MIN,
            persisted_at: None,
            persist_every: PERSIST_EVERY_STEPS,
        }
    }

    /// Records `cores` measured at unix time `at`.
    pub fn record(&mut self, at: i64, cores: f64) {
        self.history.record(at, cores);
    }

    /// The history's step.
    pub fn step(&self) -> Duration {
        Duration::from_secs(self.history.step_secs.max(1) as u64)
    }

    fn base(&self) -> i64 {
        self.history.start / self.history.step_secs.max(1)
    }

    /// The absolute step after the last finished one.
    fn finished(&self) -> i64 {
        self.base()
            .saturating_add(i64::try_from(self.history.finished_steps()).unwrap_or(i64::MAX))
    }

    /// Stores the history alone at most every `steps` steps (at least 1) instead of
    /// [`PERSIST_EVERY_STEPS`].
    pub fn with_persist_every(mut self, steps: i64) -> Self {
        self.persist_every = steps.max(1);
        self
    }

    /// Whether the history alone is worth storing: never stored yet, at least
    /// `persist_every` steps finished since it was, or it moved back (dropped as
    /// from the future, or emptied by a gap longer than the window).
    pub fn persist_due(&self) -> bool {
        match self.persisted_at {
            None => true,
            Some(at) => {
                let now = self.finished();
                now < at || now - at >= self.persist_every
            }
        }
    }

    /// The text to persist, when [`persist_due`](Self::persist_due).
    pub fn to_persist(&self) -> Option<String> {
        self.persist_due().then(|| self.history.encode())
    }

    /// Notes that the history as [`encode`](Self::encode) gives it now was stored.
    pub fn persisted(&mut self) {
        self.persisted_at = Some(self.finished());
    }

    /// The history in stored form.
    pub fn encode(&self) -> String {
        self.history.encode()
    }

    /// The forecast's step: the history's, or a multiple of it for a long window (see
    /// [`MAX_FORECAST_SAMPLES`]).
    pub fn forecast_step(&self) -> Duration {
        self.step()
            .saturating_mul(u32::try_from(self.factor()).unwrap_or(u32::MAX))
    }

    fn factor(&self) -> usize {
        forecast_factor(self.history.capacity)
    }

    /// The forecast samples of the finished history steps from absolute step `from` on:
    /// whole groups of `factor` steps (aligned on absolute step numbers, so feeding more
    /// later continues the same grouping), each the mean of its measured steps (NaN when
    /// none was measured). Returns them with the absolute step after the last group used.
    fn forecast_samples(&self, from: i64) -> (Vec<f64>, i64) {
        let end = self.finished();
        self.forecast_samples_until(from, end)
    }

    /// [`forecast_samples`](Self::forecast_samples) of the steps before absolute step `end`.
    fn forecast_samples_until(&self, from: i64, end: i64) -> (Vec<f64>, i64) {
        let base = self.base();
        let end = end.min(self.finished());
        let k = self.factor() as i64;
        // The first whole group at or after both `from` and the oldest step kept.
        let first = from.max(base).div_euclid(k) + i64::from(from.max(base).rem_euclid(k) != 0);
        let last = end.div_euclid(k);
        let mut out = Vec::new();
        for g in first..last {
            let lo = usize::try_from(g * k - base).unwrap_or(0);
            let (sum, n) = (lo..lo.saturating_add(k as usize))
                .map(|i| self.history.value(i))
                .filter(|v| v.is_finite())
                .fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
            out.push(if n == 0 { f64::NAN } else { sum / f64::from(n) });
        }
        (out, last.max(first) * k)
    }

    /// Feeds finished steps to the forecaster, rebuilding it when the spec changed.
    fn sync(&mut self, spec: &ForecastSpec) -> Result<(), String> {
        let config =
            ForecastConfig::from_spec(spec, self.forecast_step()).map_err(|e| e.to_string())?;
        if self.config.as_ref() != Some(&config) || self.forecaster.is_none() {
            // The forecaster keeps no copy of the history: it is handed the window from
            // `self.history` when it refits.
            let mut f = Forecaster::new_external(config.clone()).map_err(|e| e.to_string())?;
            let (samples, fed_to) = self.forecast_samples(i64::MIN);
            f.extend_from_slice(&samples);
            self.forecaster = Some(f);
            self.config = Some(config);
            self.fed_to = fed_to;
            return Ok(());
        }
        let (samples, fed_to) = self.forecast_samples(self.fed_to);
        let k = self.factor() as i64;
        let window = i64::try_from(config.window).unwrap_or(i64::MAX);
        // The absolute step after the group of the first sample fed now.
        let first_end = fed_to - (samples.len() as i64 - 1) * k;
        if let Some(mut f) = self.forecaster.take() {
            for (i, &v) in samples.iter().enumerate() {
                let end = first_end + i as i64 * k;
                let from = end.saturating_sub(window.saturating_mul(k));
                f.observe_external(v, || self.forecast_samples_until(from, end).0);
            }
            self.forecaster = Some(f);
        }
        self.fed_to = self.fed_to.max(fed_to);
        Ok(())
    }

    /// The demand to plan for. `current` is the demand measured now (None when no member
    /// answered with metrics; the latest recorded value stands in). Replicas are added for
    /// the forecast over the lead time, `startup` plus one decision `period` (the whole
    /// horizon while the startup is unknown); see [`super::startup`].
    pub fn estimate(
        &mut self,
        spec: &ForecastSpec,
        current: Option<f64>,
        startup: Option<Duration>,
        period: Duration,
    ) -> Estimate {
        let samples = self.history.measured();
        let current = current
            .or_else(|| self.history.latest())
            .unwrap_or(0.0)
            .max(0.0);
        let reactive = |note: String| Estimate {
            cores: current,
            horizon_peak: current,
            current,
            status: DemandStatus {
                current_cores: super::status::round(current, 3),
                forecast_peak_cores: super::status::round(current, 3),
                model: ModelKind::Reactive.name().to_string(),
                backtest_error: None,
                history_samples: i32::try_from(samples).unwrap_or(i32::MAX),
                selection: None,
                floor_cores: None,
                burst: false,
                lead_peak_cores: None,
                lead_seconds: None,
                startup_seconds: None,
            },
            note: Some(note),
            forecast: None,
        };
        if let Err(e) = self.sync(spec) {
            return reactive(format!("forecast settings unusable: {e}"));
        }
        let (Some(f), Some(config)) = (self.forecaster.as_ref(), self.config.as_ref()) else {
            return reactive("no forecaster".to_string());
        };
        if config.model == ModelChoice::None {
            return reactive("forecast model None: scaling on current demand".to_string());
        }
        let need = min_samples(config);
        if f.history_len() < need {
            return reactive(format!(
                "{} of {need} history samples: scaling on current demand until there is enough to forecast",
                f.history_len()
            ));
        }
        match f.forecast(config.horizon, config.quantile) {
            Ok(fc) => {
                let finite = |v: f64| if v.is_finite() { v.max(0.0) } else { 0.0 };
                let peak = finite(fc.peak_upper);
                let step = self.forecast_step();
                let lead = super::startup::lead_steps(startup, period, step, config.horizon);
                let lead_peak = fc
                    .upper
                    .iter()
                    .take(lead)
                    .map(|&v| finite(v))
                    .fold(0.0, f64::max)
                    .min(peak);
                let lead_secs = step.as_secs().saturating_mul(lead as u64);
                let forecast = ForecastSummary {
                    mean_peak: fc.mean.iter().map(|&v| finite(v)).fold(0.0, f64::max),
                    upper_peak: peak,
                    quantile: fc.quantile,
                    wape: fc.backtest_wape.filter(|w| w.is_finite()),
                    backtests: fc
                        .selection
                        .as_ref()
                        .map(|s| {
                            s.candidates
                                .iter()
                                .filter_map(|c| Some((c.model, c.wape.filter(|w| w.is_finite())?)))
                                .collect()
                        })
                        .unwrap_or_default(),
                };
                Estimate {
                    cores: current.max(lead_peak),
                    horizon_peak: current.max(peak),
                    current,
                    status: DemandStatus {
                        current_cores: super::status::round(current, 3),
                        forecast_peak_cores: super::status::round(peak, 3),
                        model: fc.model.name().to_string(),
                        backtest_error: fc.backtest_wape.map(|w| super::status::round(w, 4)),
                        history_samples: i32::try_from(samples).unwrap_or(i32::MAX),
                        selection: fc.selection.as_ref().map(|s| s.summary()),
                        floor_cores: None,
                        burst: false,
                        lead_peak_cores: Some(super::status::round(lead_peak, 3)),
                        lead_seconds: i64::try_from(lead_secs).ok(),
                        startup_seconds: None,
                    },
                    note: fc.reason,
                    forecast: (fc.model != ModelKind::Reactive).then_some(forecast),
                }
            }
            Err(e) => reactive(format!("no forecast: {e}")),
        }
    }
}

/// Scale-down stabilisation: the demand planned for is the highest estimate of the last
/// `window`, so replicas are removed only once demand has stayed lower that long, while a
/// rise is acted on at once.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stabilizer {
    recent: VecDeque<(i64, f64)>,
}

/// Most estimates a restored stabiliser keeps: what it holds is a decreasing run of maxima,
/// so a longer stored list is not one it wrote.
pub const STABILIZER_MAX_ENTRIES: usize = 4096;

impl Stabilizer {
    /// A stabiliser restored at unix time `now` from stored entries, keeping only plausible
    /// ones: finite, non-negative, not in the future of `now`, at most
    /// [`STABILIZER_MAX_ENTRIES`]. Their highest is held as if estimated at `now`: the
    /// original may have raised its peak after the last store without writing (a rise is
    /// stored only when it implies another replica, see
    /// [`Memory::needs_persist`](super::Memory::needs_persist)), and that rise was at most
    /// `now`, so a restored stabiliser never releases replicas earlier than the original
    /// would have; at worst one window later.
    pub fn restore(entries: impl IntoIterator<Item = (i64, f64)>, now: i64) -> Self {
        let peak = entries
            .into_iter()
            .take(STABILIZER_MAX_ENTRIES)
            .filter(|&(at, cores)| at <= now && cores.is_finite() && cores >= 0.0)
            .map(|(_, cores)| cores)
            .reduce(f64::max);
        Self {
            recent: peak.map(|c| (now, c)).into_iter().collect(),
        }
    }

    /// The entries to store.
    pub fn entries(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.recent.iter().copied()
    }

    /// What the last [`apply`](Self::apply) returned (the highest entry kept), whatever the
    /// window; restored with the entries, so a restart does not forget what was planned.
    pub fn planned(&self) -> Option<f64> {
        self.recent.iter().map(|&(_, c)| c).reduce(f64::max)
    }

    /// The latest estimate applied (the newest entry is always the latest estimate: older,
    /// lower ones are dropped as it arrives).
    pub fn latest(&self) -> Option<f64> {
        self.recent.back().map(|&(_, c)| c)
    }

    /// Adds the estimate `cores` at unix time `at` and returns the demand to plan for.
    pub fn apply(&mut self, at: i64, cores: f64, window: Duration) -> f64 {
        let window = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
        let cores = if cores.is_finite() {
            cores.max(0.0)
        } else {
            0.0
        };
        self.recent
            .retain(|&(t, _)| t <= at && at.saturating_sub(t) < window);
        // Older, lower estimates can never be the maximum again.
        while self.recent.back().is_some_and(|&(_, c)| c <= cores) {
            self.recent.pop_back();
        }
        self.recent.push_back((at, cores));
        self.recent.iter().map(|&(_, c)| c).fold(cores, f64::max)
    }
}

/// The history step in whole seconds (at least one).
fn step_secs(step: Duration) -> i64 {
    i64::try_from(step.as_secs()).unwrap_or(i64::MAX).max(1)
}

/// Steps the spec's history window holds at `step`, never more than the longest window the
/// CRD allows ([`MAX_HISTORY_SECS`](crate::api::limits::MAX_HISTORY_SECS)), whatever the
/// stored object says.
fn capacity(spec: &ForecastSpec, step: Duration) -> usize {
    let longest = Duration::from_secs(crate::api::limits::MAX_HISTORY_SECS);
    crate::api::duration::parse(&spec.history)
        .map(|d| crate::forecast::steps(d.min(longest), step))
        .unwrap_or(10_080)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn spec(horizon: &str) -> ForecastSpec {
        ForecastSpec {
            horizon: horizon.into(),
            season: "1h".into(),
            history: "1d".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_long_window_is_forecast_at_a_coarser_step_with_every_step_fed_once() {
        // 90 days at 1 minute: 129 600 steps, forecast in groups of 7 (18 515 samples).
        let s = ForecastSpec {
            horizon: "1h".into(),
            season: "1d".into(),
            history: "90d".into(),
            ..Default::default()
        };
        let mut t = DemandTracker::new(&s, Duration::from_secs(60));
        assert_eq!(t.forecast_step(), Duration::from_secs(7 * 60));
        // Three days of a ramp, recorded from a time that is not a multiple of the group.
        let t0 = 3 * 60;
        for i in 0..3 * 1440 {
            t.record(t0 + i * 60, i as f64 / 1440.0);
        }
        t.estimate(&s, None, None, MIN);
        let fed = t.forecaster.as_ref().map_or(0, |f| f.history_len());
        // Finished steps: all but the one still being measured; whole groups only.
        let whole = (3 * 1440 - 1 - 4) / 7;
        assert_eq!(fed, whole, "each whole group of 7 steps is one sample");
        // More steps later continue the same groups: nothing fed twice, nothing skipped.
        for i in 3 * 1440..3 * 1440 + 70 {
            t.record(t0 + i * 60, i as f64 / 1440.0);
        }
        t.estimate(&s, None, None, MIN);
        assert_eq!(
            t.forecaster.as_ref().map(|f| f.history_len()),
            Some(whole + 10)
        );
        // A window that fits is forecast at the history's own step.
        let short = spec("5m");
        assert_eq!(
            DemandTracker::new(&short, Duration::from_secs(60)).forecast_step(),
            Duration::from_secs(60)
        );
    }

    /// The tracker hands its forecaster the window at each refit instead of the forecaster
    /// keeping a copy; what it forecasts is what a forecaster keeping its own window
    /// forecasts from the same samples, at every step, through refits, the window filling
    /// and sliding, at the history's step and at a coarser one.
    #[test]
    fn forecasts_are_those_of_a_forecaster_that_keeps_its_own_window() {
        for (s, steps) in [
            (spec("10m"), 3 * 1440),
            (
                ForecastSpec {
                    horizon: "1h".into(),
                    season: "1d".into(),
                    history: "60d".into(),
                    ..Default::default()
                },
                4 * 1440,
            ),
        ] {
            let mut t = DemandTracker::new(&s, MIN);
            let config = ForecastConfig::from_spec(&s, t.forecast_step()).unwrap();
            let mut own = Forecaster::new(config.clone()).unwrap();
            let k = t.factor() as i64;
            let demand = |i: i64| {
                let day = (i as f64 / 1440.0 * std::f64::consts::TAU).sin();
                // On a 4 m grid, which a finished step keeps exactly at these values.
                ((5.0 + 2.0 * day + ((i * 7919) % 13) as f64 * 0.05) * 250.0).round() / 250.0
            };
            let mut group = Vec::new();
            let mut fed = 0;
            for i in 0..steps {
                t.record(i * 60, demand(i));
                let e = t.estimate(&s, None, None, MIN);
                // Step i - 1 finished with this measurement: the owned forecaster gets it
                // once its group is whole.
                if i > 0 {
                    group.push(demand(i - 1));
                    if i % k == 0 {
                        let mean = group.iter().sum::<f64>() / group.len() as f64;
                        own.observe(mean);
                        group.clear();
                        fed += 1;
                    }
                }
                let f = t.forecaster.as_ref().unwrap();
                assert_eq!(f.history_len(), own.history_len(), "step {i}");
                if fed >= min_samples(&config) {
                    let want = own.forecast(config.horizon, config.quantile).unwrap();
                    let got = f.forecast(config.horizon, config.quantile).unwrap();
                    assert_eq!(got, want, "step {i}");
                    assert_ne!(e.status.model, "Reactive", "step {i}");
                }
            }
        }
    }

    #[test]
    fn short_history_scales_reactively_and_says_so() {
        let s = spec("5m");
        let mut t = DemandTracker::new(&s, Duration::from_secs(60));
        t.record(0, 1.0);
        t.record(60, 1.2);
        let e = t.estimate(&s, Some(1.5), None, MIN);
        assert_eq!(e.status.model, "Reactive");
        assert_eq!(e.cores, 1.5);
        assert_eq!(e.status.forecast_peak_cores, 1.5);
        assert!(e.note.unwrap().contains("of 12 history samples"));
        assert_eq!(
            t.estimate(&s, None, None, MIN).cores,
            1.2,
            "latest value stands in"
        );
    }

    #[test]
    fn enough_history_forecasts_and_never_plans_below_current() {
        let s = spec("5m");
        let mut t = DemandTracker::new(&s, Duration::from_secs(60));
        // A rising ramp: the forecast peak over the horizon is above the last value.
        for i in 0..40 {
            t.record(i * 60, 1.0 + 0.1 * i as f64);
        }
        let e = t.estimate(&s, Some(4.9), None, MIN);
        assert_ne!(e.status.model, "Reactive", "{e:?}");
        assert!(e.status.forecast_peak_cores > 4.9, "{e:?}");
        // Status says why this model: its recent error, against the simple baselines'.
        let why = e.status.selection.clone().unwrap_or_default();
        assert!(
            why.starts_with(&e.status.model) && why.contains("WAPE"),
            "{why:?} for {}",
            e.status.model
        );
        assert!(e.cores >= 4.9);
        // New steps are fed incrementally and the answer stays sane.
        for i in 40..45 {
            t.record(i * 60, 1.0 + 0.1 * i as f64);
        }
        let later = t.estimate(&s, Some(0.2), None, MIN);
        assert!(
            later.cores >= later.status.forecast_peak_cores - 1e-9,
            "{later:?}"
        );
        assert!(
            later.cores > 4.0,
            "a forecast peak outweighs a dip: {later:?}"
        );
    }

    #[test]
    fn scale_down_waits_for_the_stabilization_window_and_scale_up_does_not() {
        let w = Duration::from_secs(300);
        let mut s = Stabilizer::default();
        assert_eq!(s.apply(0, 2.0, w), 2.0);
        assert_eq!(s.apply(60, 5.0, w), 5.0, "a rise is immediate");
        assert_eq!(s.apply(120, 1.0, w), 5.0, "a fall waits");
        assert_eq!(s.apply(359, 1.0, w), 5.0);
        assert_eq!(s.apply(360, 1.5, w), 1.5, "five minutes after the peak");
        assert_eq!(s.planned(), Some(1.5), "what the last decision planned for");
        assert_eq!(s.apply(400, f64::NAN, w), 1.5);
        assert_eq!(Stabilizer::default().apply(0, 3.0, Duration::ZERO), 3.0);
    }

    #[test]
    fn history_alone_is_persisted_at_most_every_n_steps_and_resumes() {
        let s = spec("5m");
        let step = Duration::from_secs(60);
        let mut t = DemandTracker::new(&s, step);
        t.record(0, 1.0);
        assert!(t.to_persist().is_some(), "a new history is stored at once");
        t.persisted();
        t.record(30, 2.0);
        assert!(t.to_persist().is_none(), "same step: no write");
        // Ten steps of pure appends, four measurements each: at most ceil(10 / N) writes.
        let mut writes = 0;
        for i in 1..=40 {
            t.record(i * 15, 1.0 + i as f64);
            if t.to_persist().is_some() {
                writes += 1;
                t.persisted();
            }
        }
        let bound =
            10i64.div_euclid(PERSIST_EVERY_STEPS) + i64::from(10 % PERSIST_EVERY_STEPS != 0);
        assert!(i64::from(writes) <= bound, "{writes} writes in 10 steps");
        // Once N steps finished, the history is due again.
        let mut at = 40 * 15;
        let text = loop {
            if let Some(text) = t.to_persist() {
                break text;
            }
            at += 60;
            t.record(at, 3.0);
            assert!(at < 40 * 15 + (PERSIST_EVERY_STEPS + 2) * 60, "never due");
        };
        let back = DemandTracker::decode(&text, &s, step).unwrap();
        assert!(
            back.to_persist().is_none(),
            "what was just read is not written back"
        );
        assert_eq!(back.encode(), text, "resumes with what was stored");
    }
}
