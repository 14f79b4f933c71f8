//! The stateful forecaster the operator keeps per workload.
//!
//! Every candidate model forecasts at every origin and is scored as the actuals arrive
//! (an exponentially discounted summary per model and horizon step, [`Track`]). `Auto`
//! issues the forecast of the candidate with the lowest recent error; last value and
//! seasonal naive are always among the candidates, so `Auto` can only be worse than them by
//! what picking on the recent past costs when the future differs. The combination averages
//! only the models whose recent error is within [`COMBINE_WITHIN`] of the best one's. The
//! upper quantile comes from the issued forecasts' own out-of-sample errors per step,
//! calibrated adaptively ([`Conformal`]).

use std::collections::VecDeque;

use super::autoregressive::{Autoregressive, SharedProfile};
use super::conformal::Conformal;
use super::flags::FlagRing;
use super::holt_winters::HoltWinters;
use super::naive::{LastValue, RecentMedian, SeasonalNaive};
use super::theta::{damped_trend, exponential_smoothing, theta};
use super::track::Track;
use super::{
    CandidateScore, Forecast, ForecastConfig, ForecastError, ModelChoice, ModelKind, Selection,
    SeriesModel,
};

/// Fewer scored errors than this and an interval is not trusted to be calibrated.
const MIN_RESIDUALS: usize = 20;

/// A model joins the combination only if its recent error is at most this multiple of the
/// best candidate's: averaging with a far worse model only adds its error. With members
/// within ρ of the best, the mean of two can be at most (1 + ρ)/2 times worse than the best
/// member by the triangle inequality, and is usually better than each.
pub(crate) const COMBINE_WITHIN: f64 = 1.25;

/// Half-lives of origins a rebuilt backtest replays: an error older than three weighs under
/// an eighth. Replaying a week of 1-minute origins for every candidate was most of the cost of
/// resuming a workload's history (a restarted operator does it for every workload at once).
const REPLAY_HALF_LIVES: f64 = 3.0;

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
}

impl Candidate {
    fn new(kind: ModelKind, model: Option<Box<dyn SeriesModel>>, h: usize, half_life: f64) -> Self {
        Self {
            kind,
            model,
            fallback: false,
            track: Track::new(h, half_life),
            path: vec![0.0; h],
            ready: false,
            failed: None,
        }
    }
}

/// Where the samples a refit fits on are kept.
#[derive(Debug)]
enum Window {
    /// Here: the last `window` samples, as `f32` (half the memory, and 7 significant digits
    /// are more than any demand measurement has), with whether each was imputed (missing
    /// or non-finite on arrival).
    Owned {
        history: VecDeque<f32>,
        imputed: FlagRing,
    },
    /// By the caller, who hands the window over when a refit is due
    /// ([`Forecaster::observe_external`]): the operator's demand history already holds
    /// these samples, and a second copy was a fifth of a workload's memory. Only how many
    /// samples the window holds and the latest one are kept here.
    External { len: usize, last: Option<f32> },
}

/// Forecasts one demand series sample by sample.
///
/// The operator calls [`observe`](Self::observe) once per sync period and
/// [`forecast`](Self::forecast) when it decides. Parameters are refitted every
/// `refit_every` samples on the last `window` samples; between refits each new sample only
/// filters the model states (microseconds), and every model's forecast is scored against
/// the actuals as they arrive, which drives `Auto`'s choice; the issued forecasts' errors
/// drive the intervals.
#[derive(Debug)]
pub struct Forecaster {
    config: ForecastConfig,
    window: Window,
    since_refit: usize,
    /// Whether the candidates were built with the season (history ≥ two seasons).
    seasonal: Option<bool>,
    candidates: Vec<Candidate>,
    winner: Option<usize>,
    /// The members of the combination at the current origin.
    members: Vec<usize>,
    /// The issued forecasts' errors and the adaptive upper quantile.
    issued: Conformal,
    /// Why the last refit degraded something.
    notes: Vec<String>,
}

impl Forecaster {
    /// A forecaster with no history yet. Fails only on a configuration that cannot work.
    pub fn new(config: ForecastConfig) -> Result<Self, ForecastError> {
        config.validate()?;
        let issued = Conformal::new(
            config.horizon,
            config.backtest_origins(),
            config.quantile,
            MIN_RESIDUALS,
        );
        Ok(Self {
            window: Window::Owned {
                history: VecDeque::with_capacity(config.window),
                imputed: FlagRing::with_capacity(config.window),
            },
            config,
            since_refit: 0,
            seasonal: None,
            candidates: Vec::new(),
            winner: None,
            members: Vec::new(),
            issued,
            notes: Vec::new(),
        })
    }

    /// A forecaster whose window the caller keeps: feed it with
    /// [`observe_external`](Self::observe_external) and
    /// [`extend_external`](Self::extend_external).
    pub fn new_external(config: ForecastConfig) -> Result<Self, ForecastError> {
        let mut f = Self::new(config)?;
        f.window = Window::External { len: 0, last: None };
        Ok(f)
    }

    /// The configuration in use.
    pub fn config(&self) -> &ForecastConfig {
        &self.config
    }

    /// Samples of history kept (at most the window): what status reports as history.
    pub fn history_len(&self) -> usize {
        match &self.window {
            Window::Owned { history, .. } => history.len(),
            Window::External { len, .. } => *len,
        }
    }

    /// The latest sample of the window (imputed or not).
    fn last(&self) -> Option<f64> {
        match &self.window {
            Window::Owned { history, .. } => history.back().copied(),
            Window::External { last, .. } => *last,
        }
        .map(f64::from)
    }

    /// The history kept, oldest first (imputed samples included); empty when the caller
    /// keeps the window.
    pub fn history(&self) -> Vec<f64> {
        match &self.window {
            Window::Owned { history, .. } => history.iter().map(|&v| f64::from(v)).collect(),
            Window::External { .. } => Vec::new(),
        }
    }

    /// Adds one sample. A missing or non-finite sample is imputed with the current
    /// one-step forecast (or the last value) so the season stays aligned, and is not
    /// scored. Refits when due.
    pub fn observe(&mut self, value: f64) {
        self.observe_with(value, None::<fn() -> Vec<f64>>);
    }

    /// [`observe`](Self::observe) for a forecaster made with
    /// [`new_external`](Self::new_external): `window` gives, when a refit is due, the
    /// samples up to and including `value`, oldest first, NaN where one is missing (at most
    /// the configured window is used). Missing samples are then carried forward from the
    /// one before, as after a restart; a gap before the first measurement is skipped.
    pub fn observe_external(&mut self, value: f64, window: impl FnOnce() -> Vec<f64>) {
        self.observe_with(value, Some(window));
    }

    fn observe_with<W: FnOnce() -> Vec<f64>>(&mut self, value: f64, window: Option<W>) {
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
        for c in &mut self.candidates {
            c.track.actual(actual);
            if let Some(m) = c.model.as_mut() {
                m.update(v);
            }
        }
        self.issued.actual(actual);
        self.push(v, missing);
        self.since_refit += 1;
        if self.refit_due() {
            match (&self.window, window) {
                (Window::External { .. }, Some(window)) => self.extend_external(&window()),
                _ => self.refit(),
            }
            return;
        }
        self.predict_all();
        self.record_tracks(None);
        self.choose();
        self.issue();
    }

    /// Adds many samples at once (e.g. the persisted history after a restart) and refits
    /// once at the end instead of filtering each.
    pub fn extend_from_slice(&mut self, values: &[f64]) {
        if let Window::External { .. } = self.window {
            self.extend_external(values);
            return;
        }
        let keep = values.len().min(self.config.window);
        for &value in &values[values.len() - keep..] {
            if value.is_finite() {
                self.push(value, false);
            } else if let Some(last) = self.last() {
                self.push(last, true);
            }
        }
        if self.history_len() > 0 {
            self.refit();
        }
    }

    /// For a forecaster whose caller keeps the window: refits on `values` (oldest first,
    /// NaN where missing; the last `window` are used), which replace the window, as
    /// [`extend_from_slice`](Self::extend_from_slice) does for a kept one.
    pub fn extend_external(&mut self, values: &[f64]) {
        let keep = values.len().min(self.config.window);
        let mut y = Vec::with_capacity(keep);
        let mut imputed = Vec::with_capacity(keep);
        for &value in &values[values.len() - keep..] {
            if value.is_finite() {
                // As `f32`, as a kept window holds it, so both fit the same samples.
                y.push(f64::from(value as f32));
                imputed.push(false);
            } else if let Some(&last) = y.last() {
                y.push(last);
                imputed.push(true);
            }
        }
        self.window = Window::External {
            len: y.len(),
            last: y.last().map(|&v| v as f32),
        };
        self.refit_on(y, &imputed);
    }

    /// Refits every model on the kept history now (normally done on schedule); nothing
    /// when the caller keeps the window (see [`extend_external`](Self::extend_external)).
    pub fn refit(&mut self) {
        let (y, imputed): (Vec<f64>, Vec<bool>) = match &self.window {
            Window::Owned { history, imputed } => (
                history.iter().map(|&v| f64::from(v)).collect(),
                imputed.iter().collect(),
            ),
            Window::External { .. } => return,
        };
        self.refit_on(y, &imputed);
    }

    /// Refits every model on `y` (finite; `imputed` says which samples were not measured).
    fn refit_on(&mut self, y: Vec<f64>, imputed: &[bool]) {
        self.since_refit = 0;
        self.notes.clear();
        let n = y.len();
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
        if self.seasonal != Some(seasonal) {
            self.build_candidates(seasonal);
        }
        // A new model's backtest is built by replaying the window (in-sample: its parameters
        // saw these samples; a cold start has nothing better). From then on it is the
        // genuine out-of-sample record, also while history grows: refits change the
        // parameters, and the discount lets the errors of an early, poorly fitted model fade.
        let mut rebuild = Vec::with_capacity(self.candidates.len());
        let mut profiles = SharedProfile::default();
        for c in &mut self.candidates {
            let fresh = c.track.scored() == 0;
            c.failed = None;
            if let Some(m) = c.model.as_mut()
                && let Err(reason) = m.fit_sharing(&y, &mut profiles)
            {
                c.failed = Some(reason);
            }
            if fresh {
                c.track.clear();
            }
            rebuild.push(fresh);
        }
        let any_fresh = rebuild.iter().any(|&f| f);
        // A rebuilt backtest replays only the origins whose errors still count: the last
        // REPLAY_HALF_LIVES half-lives (older errors weigh under an eighth, and were in-sample
        // anyway), and at least what the interval keeps. Models still filter every sample.
        let replay_from = y.len().saturating_sub(self.replay_origins());
        // The issued record is rebuilt with the backtests, replaying the choice made at
        // each origin.
        let issued_fresh = any_fresh;
        if issued_fresh {
            self.issued.clear();
        }
        for (i, (&v, &miss)) in y.iter().zip(imputed).enumerate() {
            let last = i + 1 == y.len();
            for (c, &fresh) in self.candidates.iter_mut().zip(&rebuild) {
                if fresh {
                    c.track.actual((!miss).then_some(v));
                }
                if let Some(m) = c.model.as_mut() {
                    m.update(v);
                }
            }
            if issued_fresh {
                self.issued.actual((!miss).then_some(v));
            }
            if !((any_fresh && i >= replay_from) || last) {
                // Only the end state matters for a backtest that is kept.
                continue;
            }
            self.predict_all();
            let record: Vec<bool> = rebuild.iter().map(|&f| f || last).collect();
            self.record_tracks(Some(&record));
            self.choose();
            if issued_fresh || last {
                self.issue();
            }
        }
        for c in &self.candidates {
            if let Some(reason) = &c.failed {
                self.notes.push(format!("{} disabled: {reason}", c.kind));
            }
        }
    }

    /// How many of the latest origins a rebuilt backtest replays.
    fn replay_origins(&self) -> usize {
        let discounted = (REPLAY_HALF_LIVES * self.config.half_life()).ceil() as usize;
        discounted.max(self.config.backtest_origins() + self.config.horizon)
    }

    /// Every model candidate's path for the current origin, then the combination.
    fn predict_all(&mut self) {
        let h = self.config.horizon;
        for c in &mut self.candidates {
            if c.model.is_some() {
                c.path.resize(h, 0.0);
                c.ready =
                    c.failed.is_none() && c.model.as_ref().is_some_and(|m| m.predict(&mut c.path));
            }
        }
        self.combine();
    }

    /// Records the current origin's forecasts in the tracks (all, or those `which` says).
    fn record_tracks(&mut self, which: Option<&[bool]>) {
        for (i, c) in self.candidates.iter_mut().enumerate() {
            if which.is_none_or(|w| w.get(i).copied().unwrap_or(false)) {
                let path = c.ready.then_some(&c.path[..]);
                c.track.record(path);
            }
        }
    }

    /// Registers the winner's forecast as the one issued at this origin.
    fn issue(&mut self) {
        let path = self
            .winner
            .map(|w| &self.candidates[w])
            .filter(|c| c.ready && c.path.iter().all(|v| v.is_finite()))
            .map(|c| c.path.clone());
        self.issued.record(path.as_deref());
    }

    /// Forecasts `horizon` steps ahead with the upper `quantile`. Steps beyond the
    /// configured horizon reuse the last tracked step's interval width.
    pub fn forecast(&self, horizon: usize, quantile: f64) -> Result<Forecast, ForecastError> {
        let Some(last) = self.last() else {
            return Err(ForecastError::NoHistory);
        };
        if horizon == 0 {
            return Err(ForecastError::Config {
                field: "horizon",
                message: "must be at least one sample".into(),
            });
        }
        if !(quantile > 0.0 && quantile < 1.0) {
            return Err(ForecastError::Config {
                field: "quantile",
                message: "must be strictly between 0 and 1".into(),
            });
        }
        let mut reasons = self.notes.clone();
        let reactive = |reason: Option<String>| Forecast {
            mean: vec![last; horizon],
            upper: vec![last; horizon],
            peak_upper: last,
            quantile,
            model: ModelKind::Reactive,
            backtest_wape: None,
            reason,
            selection: None,
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
        let h = self.config.horizon;
        let adaptive = quantile == self.config.quantile;
        let mut upper = Vec::with_capacity(horizon);
        let mut uncalibrated = false;
        for (k, m) in mean.iter().enumerate() {
            let k = k.min(h - 1);
            let off = if adaptive {
                self.issued.offset(k)
            } else {
                self.issued.offset_at(k, quantile)
            };
            let off = off.unwrap_or_else(|| {
                uncalibrated = true;
                0.0
            });
            upper.push(m + off);
        }
        if uncalibrated {
            reasons.push(format!(
                "fewer than {} scored forecasts: the upper bound is the point forecast",
                self.issued.min_count()
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
            selection: Some(self.selection(w)),
        })
    }

    /// The explanation of the current choice.
    fn selection(&self, w: usize) -> Selection {
        let candidates: Vec<CandidateScore> = self
            .candidates
            .iter()
            .filter(|c| !c.fallback || self.candidates[w].fallback)
            .map(|c| CandidateScore {
                model: c.kind,
                wape: c.track.wape(),
                mae: c.track.mae(),
                ready: c.ready,
            })
            .collect();
        let runner_up = self
            .candidates
            .iter()
            .enumerate()
            .filter(|(i, c)| *i != w && c.ready && !c.fallback)
            .filter_map(|(_, c)| c.track.mae().map(|m| (m, c)))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, c)| (c.kind, c.track.wape()));
        Selection {
            chosen: self.candidates[w].kind,
            chosen_wape: self.candidates[w].track.wape(),
            runner_up,
            candidates,
            combined: self
                .members
                .iter()
                .map(|&i| self.candidates[i].kind)
                .collect(),
            half_life: self.config.half_life(),
        }
    }

    /// Every candidate's latest point forecast (steps 1..=config.horizon), for evaluations
    /// that score all models of an `Auto` run at once.
    pub(crate) fn candidate_paths(&self) -> impl Iterator<Item = (ModelKind, Option<&[f64]>)> {
        self.candidates
            .iter()
            .filter(|c| !c.fallback)
            .map(|c| (c.kind, c.ready.then_some(&c.path[..])))
    }

    /// Each candidate model with its recent backtest WAPE, so status and reports can show
    /// why `Auto` chose what it chose.
    pub fn backtests(&self) -> Vec<(ModelKind, Option<f64>)> {
        self.candidates
            .iter()
            .filter(|c| !c.fallback)
            .map(|c| (c.kind, c.track.wape()))
            .collect()
    }

    fn push(&mut self, v: f64, missing: bool) {
        let window = self.config.window;
        match &mut self.window {
            Window::Owned { history, imputed } => {
                if history.len() == window {
                    history.pop_front();
                }
                history.push_back(v as f32);
                imputed.push_back(missing);
            }
            Window::External { len, last } => {
                *len = (*len + 1).min(window);
                *last = Some(v as f32);
            }
        }
    }

    fn impute(&self) -> Option<f64> {
        let last = self.last()?;
        let guess = self
            .winner
            .map(|w| &self.candidates[w])
            .filter(|c| c.ready)
            .and_then(|c| c.path.first().copied())
            .filter(|v| v.is_finite());
        Some(guess.unwrap_or(last))
    }

    fn refit_due(&self) -> bool {
        let n = self.history_len();
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
        let half_life = self.config.half_life();
        let s = if seasonal { self.config.season() } else { 1 };
        let boxed = |kind: ModelKind| -> Option<Box<dyn SeriesModel>> {
            Some(match kind {
                ModelKind::LastValue => Box::new(LastValue::default()),
                ModelKind::SeasonalNaive => Box::new(SeasonalNaive::new(s)),
                ModelKind::RecentMedian => Box::new(RecentMedian::new(h)),
                ModelKind::Autoregressive => Box::new(Autoregressive::new(s)),
                ModelKind::HoltWinters => Box::new(HoltWinters::new(s)),
                ModelKind::Theta => Box::new(theta(s)),
                ModelKind::ExponentialSmoothing => Box::new(exponential_smoothing()),
                ModelKind::DampedTrend => Box::new(damped_trend(s)),
                ModelKind::Combined | ModelKind::Reactive => return None,
            })
        };
        let primaries: Vec<ModelKind> = match self.config.model {
            ModelChoice::Auto => {
                // The simple models first: ties go to them.
                let mut v = vec![ModelKind::LastValue];
                if seasonal {
                    v.push(ModelKind::SeasonalNaive);
                }
                v.extend([
                    ModelKind::RecentMedian,
                    ModelKind::ExponentialSmoothing,
                    ModelKind::Theta,
                    ModelKind::DampedTrend,
                    ModelKind::Autoregressive,
                    ModelKind::HoltWinters,
                    ModelKind::Combined,
                ]);
                v
            }
            ModelChoice::HoltWinters => vec![ModelKind::HoltWinters],
            ModelChoice::Autoregressive => vec![ModelKind::Autoregressive],
            ModelChoice::RecentMedian => vec![ModelKind::RecentMedian],
            ModelChoice::Theta => vec![ModelKind::Theta],
            ModelChoice::DampedTrend => vec![ModelKind::DampedTrend],
            ModelChoice::ExponentialSmoothing => vec![ModelKind::ExponentialSmoothing],
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
            .map(|&k| Candidate::new(k, boxed(k), h, half_life))
            .collect();
        if !primaries.contains(&ModelKind::LastValue) {
            let mut lv = Candidate::new(
                ModelKind::LastValue,
                boxed(ModelKind::LastValue),
                h,
                half_life,
            );
            lv.fallback = true;
            self.candidates.push(lv);
        }
        self.winner = None;
        self.members.clear();
    }

    /// Indices of the model candidates (not the combination) that could join it: ready,
    /// primary, scored, and within [`COMBINE_WITHIN`] of the best recent error.
    fn combination_members(&self) -> Vec<usize> {
        let scored: Vec<(usize, f64)> = self
            .candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.model.is_some() && !c.fallback && c.ready)
            .filter_map(|(i, c)| c.track.mae().map(|m| (i, m)))
            .collect();
        let Some(best) = scored.iter().map(|&(_, m)| m).min_by(f64::total_cmp) else {
            return Vec::new();
        };
        scored
            .into_iter()
            .filter(|&(_, m)| m <= COMBINE_WITHIN * best)
            .map(|(i, _)| i)
            .collect()
    }

    /// The combination's forecast: the per-step mean of the members.
    fn combine(&mut self) {
        let Some(ci) = self
            .candidates
            .iter()
            .position(|c| c.kind == ModelKind::Combined)
        else {
            return;
        };
        let h = self.config.horizon;
        let members = self.combination_members();
        let ready = members.len() >= 2;
        let mut path = std::mem::take(&mut self.candidates[ci].path);
        path.resize(h, 0.0);
        if ready {
            for (k, p) in path.iter_mut().enumerate() {
                let sum: f64 = members.iter().map(|&i| self.candidates[i].path[k]).sum();
                *p = sum / members.len() as f64;
            }
        }
        let c = &mut self.candidates[ci];
        c.path = path;
        c.ready = ready;
        self.members = if ready { members } else { Vec::new() };
    }

    /// Picks the candidate with the lowest recent backtest error among primaries that can
    /// forecast now; ties go to the simpler model (listed first). A candidate not scored
    /// yet is only chosen when none is.
    fn choose(&mut self) {
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
                    .members
                    .iter()
                    .map(|&j| self.path_of(j, horizon))
                    .collect();
                for (k, o) in out.iter_mut().enumerate() {
                    let sum: f64 = members.iter().map(|p| p[k]).sum();
                    *o = if members.is_empty() {
                        f64::NAN
                    } else {
                        sum / members.len() as f64
                    };
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handed_window_skips_a_leading_gap_and_carries_values_over_inner_ones() {
        let cfg = ForecastConfig {
            season_len: 0,
            horizon: 2,
            window: 50,
            ..ForecastConfig::default()
        };
        let mut f = Forecaster::new_external(cfg).unwrap();
        let mut y = vec![f64::NAN; 5];
        y.extend((0..40).map(|i| {
            if i % 7 == 3 {
                f64::NAN
            } else {
                10.0 + i as f64
            }
        }));
        f.extend_external(&y);
        assert_eq!(f.history_len(), 40);
        assert!(f.history().is_empty(), "the caller keeps the window");
        let fc = f.forecast(2, 0.9).unwrap();
        assert!(fc.mean.iter().all(|v| v.is_finite() && *v > 40.0), "{fc:?}");
        // A window handed over later replaces it; a longer one is cut to the configured 50.
        let long: Vec<f64> = (0..80).map(f64::from).collect();
        f.extend_external(&long);
        assert_eq!(f.history_len(), 50);
    }

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

    #[test]
    fn auto_explains_its_choice_with_the_simple_models_among_the_candidates() {
        let mut f = Forecaster::new(cfg(ModelChoice::Auto, 24, 240)).unwrap();
        let y: Vec<f64> = (0..400).map(|t| daily(t, 24) + (t % 7) as f64).collect();
        f.extend_from_slice(&y[..240]);
        for &v in &y[240..] {
            f.observe(v);
        }
        let fc = f.forecast(4, 0.95).unwrap();
        let sel = fc.selection.clone().expect("auto explains its choice");
        assert_eq!(sel.chosen, fc.model);
        assert_eq!(sel.chosen_wape, fc.backtest_wape);
        let kinds: Vec<ModelKind> = sel.candidates.iter().map(|c| c.model).collect();
        for k in [ModelKind::LastValue, ModelKind::SeasonalNaive] {
            assert!(kinds.contains(&k), "{kinds:?}");
        }
        // The chosen model has the lowest recent error of the ready candidates.
        let best = sel
            .candidates
            .iter()
            .filter(|c| c.ready)
            .filter_map(|c| c.mae)
            .fold(f64::INFINITY, f64::min);
        let chosen = sel
            .candidates
            .iter()
            .find(|c| c.model == sel.chosen)
            .unwrap();
        assert_eq!(chosen.mae, Some(best));
        let (runner, _) = sel.runner_up.expect("a runner-up");
        assert_ne!(runner, sel.chosen);
        let line = sel.summary();
        assert!(line.starts_with(sel.chosen.name()), "{line}");
        assert!(line.contains("runner-up"), "{line}");
    }

    #[test]
    fn combination_leaves_out_models_far_worse_than_the_best() {
        let mut f = Forecaster::new(cfg(ModelChoice::Auto, 24, 240)).unwrap();
        let y: Vec<f64> = (0..500).map(|t| daily(t, 24)).collect();
        f.extend_from_slice(&y[..240]);
        for &v in &y[240..] {
            f.observe(v);
        }
        let best = f
            .candidates
            .iter()
            .filter(|c| c.model.is_some() && c.ready)
            .filter_map(|c| c.track.mae())
            .fold(f64::INFINITY, f64::min);
        for &i in &f.members {
            let m = f.candidates[i].track.mae().unwrap();
            assert!(
                m <= COMBINE_WITHIN * best,
                "{:?} {m} vs {best}",
                f.candidates[i].kind
            );
        }
        // Last value is far worse than the seasonal models on a clean daily cycle.
        let lv = f
            .candidates
            .iter()
            .position(|c| c.kind == ModelKind::LastValue)
            .unwrap();
        assert!(!f.members.contains(&lv));
    }
}
