//! The stateful forecaster the operator keeps per workload.

use std::collections::VecDeque;

use super::autoregressive::Autoregressive;
use super::holt_winters::HoltWinters;
use super::naive::{LastValue, SeasonalNaive};
use super::track::Track;
use super::{Forecast, ForecastConfig, ForecastError, ModelChoice, ModelKind, SeriesModel};

/// Fewer scored errors than this and an interval is not trusted to be calibrated.
const MIN_RESIDUALS: usize = 20;

/// One competing model with its running backtest.
#[derive(Debug)]
struct Candidate {
    kind: ModelKind,
    /// `None` for the combination, which forecasts from the others.
    model: Option<Box<dyn SeriesModel>>,
    /// Chosen only when no primary candidate can forecast.
    fallback: bool,
    track: Track,
    /// The latest point forecast (steps 1..=config.horizon), if the model had one.
    path: Vec<f64>,
    ready: bool,
    /// Why the model was disabled at the last refit.
    failed: Option<String>,
    /// Cached per-step upper offsets for the configured quantile.
    offsets: Vec<Option<f64>>,
}

impl Candidate {
    fn new(kind: ModelKind, model: Option<Box<dyn SeriesModel>>, h: usize, cap: usize) -> Self {
        Self {
            kind,
            model,
            fallback: false,
            track: Track::new(h, cap),
            path: vec![0.0; h],
            ready: false,
            failed: None,
            offsets: Vec::new(),
        }
    }
}

/// Forecasts one demand series sample by sample.
///
/// The operator calls [`observe`](Self::observe) once per sync period and
/// [`forecast`](Self::forecast) when it decides. Parameters are refitted every
/// `refit_every` samples on the last `window` samples; between refits each new sample only
/// filters the model states (microseconds), and every model's forecast is scored against
/// the actuals as they arrive, which drives `Auto`'s choice and the residual intervals.
#[derive(Debug)]
pub struct Forecaster {
    config: ForecastConfig,
    history: VecDeque<f64>,
    /// Whether each kept sample was imputed (missing or non-finite on arrival).
    imputed: VecDeque<bool>,
    observed: u64,
    since_refit: usize,
    /// Whether the candidates were built with the season (history ≥ two seasons).
    seasonal: Option<bool>,
    candidates: Vec<Candidate>,
    winner: Option<usize>,
    /// Why the last refit degraded something.
    notes: Vec<String>,
    since_offsets: usize,
    scratch: Vec<f64>,
}

impl Forecaster {
    /// A forecaster with no history yet. Fails only on a configuration that cannot work.
    pub fn new(config: ForecastConfig) -> Result<Self, ForecastError> {
        config.validate()?;
        Ok(Self {
            history: VecDeque::with_capacity(config.window),
            imputed: VecDeque::with_capacity(config.window),
            config,
            observed: 0,
            since_refit: 0,
            seasonal: None,
            candidates: Vec::new(),
            winner: None,
            notes: Vec::new(),
            since_offsets: 0,
            scratch: Vec::new(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ForecastConfig {
        &self.config
    }

    /// Samples of history kept (at most the window): what status reports as history.
    pub fn history_len(&self) -> usize {
        self.history.len()
    }

    /// The history kept, oldest first (imputed samples included), so it can be persisted
    /// and a restarted operator can pick up where it stopped via
    /// [`extend_from_slice`](Self::extend_from_slice).
    pub fn history(&self) -> Vec<f64> {
        self.history.iter().copied().collect()
    }

    /// Adds one sample. A missing or non-finite sample is imputed with the current
    /// one-step forecast (or the last value) so the season stays aligned, and is not
    /// scored. Refits when due.
    pub fn observe(&mut self, value: f64) {
        self.observed += 1;
        let (v, missing) = if value.is_finite() {
            (value, false)
        } else {
            match self.impute() {
                Some(v) => (v, true),
                // Nothing to impute from: a leading gap is simply skipped.
                None => return,
            }
        };
        let actual = (!missing).then_some(v);
        let h = self.config.horizon;
        for c in &mut self.candidates {
            c.track.actual(actual);
            if let Some(m) = c.model.as_mut() {
                m.update(v);
            }
        }
        self.push(v, missing);
        self.since_refit += 1;
        if self.refit_due() {
            self.refit();
            return;
        }
        for i in 0..self.candidates.len() {
            if self.candidates[i].model.is_some() {
                let c = &mut self.candidates[i];
                c.path.resize(h, 0.0);
                c.ready = c.model.as_ref().is_some_and(|m| m.predict(&mut c.path));
            }
        }
        self.combine();
        for c in &mut self.candidates {
            let path = c.ready.then_some(&c.path[..]);
            c.track.record(path);
        }
        self.choose();
        self.since_offsets += 1;
        if self.since_offsets >= h {
            self.since_offsets = 0;
            if let Some(w) = self.winner {
                self.refresh_offsets(w);
            }
        }
    }

    /// Adds many samples at once (e.g. the persisted history after a restart) and refits
    /// once at the end instead of filtering each.
    pub fn extend_from_slice(&mut self, values: &[f64]) {
        let keep = values.len().min(self.config.window);
        self.observed += (values.len() - keep) as u64;
        for &value in &values[values.len() - keep..] {
            self.observed += 1;
            if value.is_finite() {
                self.push(value, false);
            } else if let Some(&last) = self.history.back() {
                self.push(last, true);
            }
        }
        if !self.history.is_empty() {
            self.refit();
        }
    }

    /// Refits every model on the kept history now (normally done on schedule).
    pub fn refit(&mut self) {
        self.since_refit = 0;
        self.notes.clear();
        let n = self.history.len();
        if n == 0 {
            return;
        }
        let season = self.config.season();
        let seasonal = season > 1 && n >= 2 * season;
        if season > 1 && !seasonal {
            self.notes.push(format!(
                "history of {n} samples is shorter than two seasons ({}): seasonal models disabled",
                2 * season
            ));
        }
        let growing = n < self.config.window;
        if self.seasonal != Some(seasonal) {
            self.build_candidates(seasonal);
        }
        let y: Vec<f64> = self.history.iter().copied().collect();
        let imputed: Vec<bool> = self.imputed.iter().copied().collect();
        // A backtest is rebuilt from the window while history is still growing (or the
        // model is new); once the window is full it is the genuine out-of-sample record.
        let mut rebuild = Vec::with_capacity(self.candidates.len());
        for c in &mut self.candidates {
            let fresh = c.track.len() == 0 || growing;
            c.failed = None;
            if let Some(m) = c.model.as_mut()
                && let Err(reason) = m.fit(&y)
            {
                c.failed = Some(reason);
            }
            if fresh {
                c.track.clear();
            }
            rebuild.push(fresh);
        }
        let h = self.config.horizon;
        let any_fresh = rebuild.iter().any(|&f| f);
        for (i, (&v, &miss)) in y.iter().zip(&imputed).enumerate() {
            let last = i + 1 == y.len();
            for (c, &fresh) in self.candidates.iter_mut().zip(&rebuild) {
                if fresh {
                    c.track.actual((!miss).then_some(v));
                }
                if let Some(m) = c.model.as_mut() {
                    m.update(v);
                }
            }
            if !(any_fresh || last) {
                // Only the end state matters for a backtest that is kept.
                continue;
            }
            for c in &mut self.candidates {
                if c.model.is_some() {
                    c.path.resize(h, 0.0);
                    c.ready = c.failed.is_none()
                        && c.model.as_ref().is_some_and(|m| m.predict(&mut c.path));
                }
            }
            self.combine();
            for (c, &fresh) in self.candidates.iter_mut().zip(&rebuild) {
                if fresh || last {
                    let path = c.ready.then_some(&c.path[..]);
                    c.track.record(path);
                }
            }
        }
        for c in &self.candidates {
            if let Some(reason) = &c.failed {
                self.notes.push(format!("{} disabled: {reason}", c.kind));
            }
        }
        for c in &mut self.candidates {
            c.offsets.clear();
        }
        self.choose();
    }

    /// Forecasts `horizon` steps ahead with the upper `quantile`. Steps beyond the
    /// configured horizon reuse the last tracked step's interval width.
    pub fn forecast(&self, horizon: usize, quantile: f64) -> Result<Forecast, ForecastError> {
        let Some(&last) = self.history.back() else {
            return Err(ForecastError::NoHistory);
        };
        if !(quantile > 0.0 && quantile < 1.0) {
            return Err(ForecastError::Config {
                field: "quantile",
                message: "must be strictly between 0 and 1".into(),
            });
        }
        let horizon = horizon.max(1);
        let mut reasons = self.notes.clone();
        let reactive = |reason: Option<String>| Forecast {
            mean: vec![last; horizon],
            upper: vec![last; horizon],
            peak_upper: last,
            quantile,
            model: ModelKind::Reactive,
            backtest_wape: None,
            reason,
        };
        if self.config.model == ModelChoice::None {
            return Ok(reactive(None));
        }
        let Some(w) = self.winner else {
            reasons.push("no model can forecast yet: using current demand".into());
            return Ok(reactive(Some(reasons.join("; "))));
        };
        let cand = &self.candidates[w];
        if cand.fallback {
            let asked: Vec<_> = self
                .candidates
                .iter()
                .filter(|c| !c.fallback)
                .map(|c| c.kind.name())
                .collect();
            reasons.push(format!(
                "{} cannot forecast yet: using {}",
                asked.join(", "),
                cand.kind
            ));
        }
        let mean = self.path_of(w, horizon);
        let computed;
        let offsets: &[Option<f64>] =
            if quantile == self.config.quantile && !cand.offsets.is_empty() {
                &cand.offsets
            } else {
                let mut o = Vec::new();
                cand.track.quantiles(quantile, MIN_RESIDUALS, &mut o);
                computed = o;
                &computed
            };
        let mut upper = Vec::with_capacity(horizon);
        let mut uncalibrated = false;
        for (k, m) in mean.iter().enumerate() {
            let off = offsets
                .get(k.min(offsets.len().saturating_sub(1)))
                .copied()
                .flatten();
            let off = off.unwrap_or_else(|| {
                uncalibrated = true;
                0.0
            });
            upper.push(m + off);
        }
        if uncalibrated {
            reasons.push(format!(
                "fewer than {MIN_RESIDUALS} scored forecasts: the upper bound is the point forecast"
            ));
        }
        if mean.iter().chain(&upper).any(|v| !v.is_finite()) {
            reasons.push(format!("{} produced a non-finite forecast", cand.kind));
            return Ok(reactive(Some(reasons.join("; "))));
        }
        let peak_upper = upper.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Ok(Forecast {
            mean,
            upper,
            peak_upper,
            quantile,
            model: cand.kind,
            backtest_wape: cand.track.wape(),
            reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
        })
    }

    /// Every candidate's latest point forecast (steps 1..=config.horizon), for evaluations
    /// that score all models of an `Auto` run at once.
    pub(crate) fn candidate_paths(&self) -> impl Iterator<Item = (ModelKind, Option<&[f64]>)> {
        self.candidates
            .iter()
            .filter(|c| !c.fallback)
            .map(|c| (c.kind, c.ready.then_some(&c.path[..])))
    }

    /// Each candidate model with its backtest WAPE over recent origins, so status and
    /// reports can show why `Auto` chose what it chose.
    pub fn backtests(&self) -> Vec<(ModelKind, Option<f64>)> {
        self.candidates
            .iter()
            .filter(|c| !c.fallback)
            .map(|c| (c.kind, c.track.wape()))
            .collect()
    }

    fn push(&mut self, v: f64, imputed: bool) {
        if self.history.len() == self.config.window {
            self.history.pop_front();
            self.imputed.pop_front();
        }
        self.history.push_back(v);
        self.imputed.push_back(imputed);
    }

    fn impute(&self) -> Option<f64> {
        let last = *self.history.back()?;
        let guess = self
            .winner
            .map(|w| &self.candidates[w])
            .filter(|c| c.ready)
            .and_then(|c| c.path.first().copied())
            .filter(|v| v.is_finite());
        Some(guess.unwrap_or(last))
    }

    fn refit_due(&self) -> bool {
        let n = self.history.len();
        let season = self.config.season();
        let period = self.config.refit_period();
        self.since_refit >= period
            || self.candidates.is_empty()
            // While history is young, refit as it doubles: cheap, and models improve fast.
            || (n < self.config.window && n < period && n.is_power_of_two())
            // The first time two seasons are available, switch the season on.
            || (self.seasonal == Some(false) && season > 1 && n >= 2 * season)
    }

    fn build_candidates(&mut self, seasonal: bool) {
        self.seasonal = Some(seasonal);
        let h = self.config.horizon;
        let cap = self.config.backtest_origins();
        let s = if seasonal { self.config.season() } else { 1 };
        let boxed = |kind: ModelKind| -> Option<Box<dyn SeriesModel>> {
            Some(match kind {
                ModelKind::LastValue => Box::new(LastValue::default()),
                ModelKind::SeasonalNaive => Box::new(SeasonalNaive::new(s)),
                ModelKind::Autoregressive => Box::new(Autoregressive::new(s)),
                ModelKind::HoltWinters => Box::new(HoltWinters::new(s)),
                ModelKind::Combined | ModelKind::Reactive => return None,
            })
        };
        let primaries: Vec<ModelKind> = match self.config.model {
            ModelChoice::Auto => {
                let mut v = vec![ModelKind::LastValue];
                if seasonal {
                    v.push(ModelKind::SeasonalNaive);
                }
                v.extend([
                    ModelKind::Autoregressive,
                    ModelKind::HoltWinters,
                    ModelKind::Combined,
                ]);
                v
            }
            ModelChoice::HoltWinters => vec![ModelKind::HoltWinters],
            ModelChoice::Autoregressive => vec![ModelKind::Autoregressive],
            ModelChoice::SeasonalNaive if seasonal => vec![ModelKind::SeasonalNaive],
            ModelChoice::SeasonalNaive => {
                self.notes
                    .push("seasonal naive needs two seasons of history".into());
                vec![]
            }
            ModelChoice::LastValue | ModelChoice::None => vec![ModelKind::LastValue],
        };
        self.candidates = primaries
            .iter()
            .map(|&k| Candidate::new(k, boxed(k), h, cap))
            .collect();
        if !primaries.contains(&ModelKind::LastValue) {
            let mut lv = Candidate::new(ModelKind::LastValue, boxed(ModelKind::LastValue), h, cap);
            lv.fallback = true;
            self.candidates.push(lv);
        }
        self.winner = None;
    }

    /// The combination's forecast: the per-step median of the other primary models. A
    /// median ignores one model going astray, and averaging models with different errors
    /// is the most reliable way known to beat each of them.
    fn combine(&mut self) {
        let Some(ci) = self
            .candidates
            .iter()
            .position(|c| c.kind == ModelKind::Combined)
        else {
            return;
        };
        let h = self.config.horizon;
        let members: Vec<usize> = (0..self.candidates.len())
            .filter(|&i| i != ci && !self.candidates[i].fallback && self.candidates[i].ready)
            .collect();
        let mut path = std::mem::take(&mut self.candidates[ci].path);
        path.resize(h, 0.0);
        let ready = members.len() >= 2;
        if ready {
            for (k, p) in path.iter_mut().enumerate() {
                self.scratch.clear();
                self.scratch
                    .extend(members.iter().map(|&i| self.candidates[i].path[k]));
                *p = median(&mut self.scratch);
            }
        }
        let c = &mut self.candidates[ci];
        c.path = path;
        c.ready = ready;
    }

    /// Picks the candidate with the lowest backtest error among primaries that can
    /// forecast now; ties go to the simpler model (listed first).
    fn choose(&mut self) {
        let before = self.winner;
        self.pick();
        // Intervals are only needed for the model that forecasts: compute its residual
        // quantiles when it takes over, and every horizon's worth of samples after.
        if let Some(w) = self.winner
            && (before != self.winner || self.candidates[w].offsets.is_empty())
        {
            self.refresh_offsets(w);
            self.since_offsets = 0;
        }
    }

    fn pick(&mut self) {
        let mut best: Option<(usize, f64)> = None;
        for fallback in [false, true] {
            for (i, c) in self.candidates.iter().enumerate() {
                if c.fallback != fallback || !c.ready {
                    continue;
                }
                let score = c.track.mae().unwrap_or(f64::INFINITY);
                if best.is_none_or(|(_, b)| score < b) {
                    best = Some((i, score));
                }
            }
            if best.is_some() {
                break;
            }
        }
        self.winner = best.map(|(i, _)| i);
    }

    fn refresh_offsets(&mut self, i: usize) {
        let c = &mut self.candidates[i];
        let mut o = std::mem::take(&mut c.offsets);
        c.track
            .quantiles(self.config.quantile, MIN_RESIDUALS, &mut o);
        c.offsets = o;
    }

    /// Candidate `i`'s point forecast for `horizon` steps.
    fn path_of(&self, i: usize, horizon: usize) -> Vec<f64> {
        let c = &self.candidates[i];
        if horizon == c.path.len() {
            return c.path.clone();
        }
        let mut out = vec![0.0; horizon];
        match &c.model {
            Some(m) => {
                if !m.predict(&mut out) {
                    out.fill(f64::NAN);
                }
            }
            None => {
                let members: Vec<Vec<f64>> = self
                    .candidates
                    .iter()
                    .enumerate()
                    .filter(|(j, o)| *j != i && !o.fallback && o.ready && o.model.is_some())
                    .map(|(j, _)| self.path_of(j, horizon))
                    .collect();
                let mut col = Vec::with_capacity(members.len());
                for (k, o) in out.iter_mut().enumerate() {
                    col.clear();
                    col.extend(members.iter().map(|p| p[k]));
                    *o = median(&mut col);
                }
            }
        }
        out
    }
}

/// The median of a small slice (NaN if empty).
fn median(v: &mut [f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    v.sort_unstable_by(f64::total_cmp);
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daily(t: usize, s: usize) -> f64 {
        50.0 + 20.0 * (t as f64 * std::f64::consts::TAU / s as f64).sin()
    }

    fn cfg(model: ModelChoice, season_len: usize, window: usize) -> ForecastConfig {
        ForecastConfig {
            model,
            season_len,
            horizon: 4,
            window,
            ..ForecastConfig::default()
        }
    }

    #[test]
    fn no_history_is_an_error_and_none_is_reactive() {
        let f = Forecaster::new(cfg(ModelChoice::Auto, 24, 200)).unwrap();
        assert_eq!(f.forecast(4, 0.95), Err(ForecastError::NoHistory));
        let mut f = Forecaster::new(cfg(ModelChoice::None, 24, 200)).unwrap();
        f.observe(3.0);
        f.observe(5.0);
        let fc = f.forecast(4, 0.95).unwrap();
        assert_eq!(fc.model, ModelKind::Reactive);
        assert_eq!(fc.peak_upper, 5.0);
    }

    #[test]
    fn short_history_falls_back_to_non_seasonal_models_and_says_so() {
        let mut f = Forecaster::new(cfg(ModelChoice::SeasonalNaive, 24, 200)).unwrap();
        for t in 0..30 {
            f.observe(daily(t, 24));
        }
        let fc = f.forecast(4, 0.95).unwrap();
        assert_eq!(fc.model, ModelKind::LastValue);
        let reason = fc.reason.unwrap();
        assert!(reason.contains("shorter than two seasons"), "{reason}");
        // Once two seasons are there, the season is switched on without being asked.
        for t in 30..60 {
            f.observe(daily(t, 24));
        }
        let fc = f.forecast(4, 0.95).unwrap();
        assert_eq!(fc.model, ModelKind::SeasonalNaive, "{:?}", fc.reason);
    }

    #[test]
    fn missing_samples_are_imputed_and_not_scored() {
        let mut f = Forecaster::new(cfg(ModelChoice::Auto, 24, 200)).unwrap();
        for t in 0..150 {
            let v = if t % 10 == 3 { f64::NAN } else { daily(t, 24) };
            f.observe(v);
        }
        assert_eq!(f.history_len(), 150);
        assert!(f.history().iter().all(|v| v.is_finite()));
        let fc = f.forecast(4, 0.95).unwrap();
        for (k, m) in fc.mean.iter().enumerate() {
            assert!((m - daily(150 + k, 24)).abs() < 2.0, "step {k}: {m}");
        }
        // A leading gap has nothing to impute from and is skipped.
        let mut f = Forecaster::new(cfg(ModelChoice::Auto, 24, 200)).unwrap();
        f.observe(f64::NAN);
        assert_eq!(f.history_len(), 0);
    }

    #[test]
    fn samples_between_refits_only_filter() {
        let mut f = Forecaster::new(cfg(ModelChoice::Auto, 24, 200)).unwrap();
        let y: Vec<f64> = (0..200).map(|t| daily(t, 24)).collect();
        f.extend_from_slice(&y);
        assert_eq!(f.since_refit, 0);
        for t in 200..223 {
            f.observe(daily(t, 24));
        }
        assert_eq!(f.since_refit, 23, "refitted before the schedule");
        f.observe(daily(223, 24));
        assert_eq!(f.since_refit, 0, "did not refit after one season");
        assert_eq!(f.history_len(), 200);
    }

    #[test]
    fn interval_covers_noise_on_a_noisy_series() {
        let mut seed: u64 = 1;
        let mut noise = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        let mut f = Forecaster::new(cfg(ModelChoice::Auto, 24, 480)).unwrap();
        let mut covered = 0;
        let mut total = 0;
        let mut pending: Vec<(usize, f64)> = Vec::new();
        for t in 0..3000 {
            let v = daily(t, 24) + 10.0 * noise();
            for &(at, up) in &pending {
                if at == t {
                    total += 1;
                    covered += usize::from(v <= up);
                }
            }
            pending.retain(|&(at, _)| at > t);
            f.observe(v);
            if t >= 480 {
                let fc = f.forecast(4, 0.9).unwrap();
                pending.extend(fc.upper.iter().enumerate().map(|(k, u)| (t + 1 + k, *u)));
            }
        }
        let share = covered as f64 / total as f64;
        assert!((0.86..=0.94).contains(&share), "coverage {share}");
    }
}
