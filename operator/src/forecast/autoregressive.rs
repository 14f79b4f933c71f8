//! AR(p) by least squares on the seasonally adjusted series.
//!
//! The season is removed first (each phase's mean over the window), because an AR model
//! would otherwise need a season's worth of lags. What remains is short-term momentum:
//! after a burst, demand stays high for a while, which neither naive model knows. The
//! order p is chosen by BIC, the coefficients θ = (XᵀX)⁻¹Xᵀy by a Cholesky solve with a
//! ridge fallback, and forecasts are iterated step by step and re-seasonalised.

use std::sync::Arc;

use ndarray::{Array1, Array2, s};

use super::SeriesModel;
use super::linalg::solve_spd;

/// The largest order tried. More lags rarely help once the season is removed and cost
/// O(p²) per fit.
const MAX_LAG: usize = 16;

/// The AR model and its filter state.
#[derive(Debug)]
pub(crate) struct Autoregressive {
    season_len: usize,
    /// Seasonal offset per phase, phase 0 being the first sample of the fit window; shared
    /// with the other models fitted on the same window ([`SharedProfile`]).
    profile: Arc<[f32]>,
    /// Intercept, then lag 1..=p coefficients.
    coef: Vec<f64>,
    /// The last p adjusted samples, oldest first in ring order from `head`.
    lags: Vec<f64>,
    head: usize,
    seen: usize,
    /// Phase of the next sample.
    phase: usize,
    /// A bound on believable forecasts: iterating an AR model near a unit root can drift.
    clamp: (f64, f64),
}

impl Autoregressive {
    /// A model for seasons of `season_len` samples (1 = no seasonal adjustment).
    pub(crate) fn new(season_len: usize) -> Self {
        Self {
            season_len: season_len.max(1),
            profile: Arc::from([0.0f32]),
            coef: vec![0.0, 1.0],
            lags: vec![0.0],
            head: 0,
            seen: 0,
            phase: 0,
            clamp: (f64::MIN, f64::MAX),
        }
    }

    /// The chosen order p (for tests and reports).
    #[cfg(test)]
    pub(crate) fn order(&self) -> usize {
        self.coef.len() - 1
    }
}

/// The seasonal profile of one fit window, computed once and shared by the models that
/// adjust for it (the autoregression, Theta, damped trend): at 1-minute steps a profile is
/// 1 440 values, and its trimmed means are most of a refit's cost after the AR solve.
/// `f32`: the profile is made of measurements that have seven significant digits at most.
#[derive(Debug, Default)]
pub(crate) struct SharedProfile {
    /// The season length and the profile of the window this was made for.
    cached: Option<(usize, Arc<[f32]>)>,
}

impl SharedProfile {
    /// The profile of `y` for seasons of `s` samples. One `SharedProfile` serves one window.
    pub(crate) fn of(&mut self, y: &[f64], s: usize) -> Arc<[f32]> {
        if let Some((len, p)) = &self.cached
            && *len == s
        {
            return p.clone();
        }
        let p: Arc<[f32]> = seasonal_profile(y, s)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        self.cached = Some((s, p.clone()));
        p
    }
}

/// Each phase's offset (phase 0 = `y[0]`; `[0.0]` without two whole seasons): the trimmed mean over whole seasons of the sample minus its
/// season's median, centred. Robust statistics, because one burst in a week of history
/// would otherwise come back as a phantom burst at the same time every day; a trimmed
/// mean rather than a median, because it wastes less of a smooth series' information.
pub(crate) fn seasonal_profile(y: &[f64], s: usize) -> Vec<f64> {
    let s = s.max(1);
    let cycles = y.len() / s;
    if s < 2 || cycles < 2 {
        return vec![0.0];
    }
    // Phases are counted from y[0]; use the most recent whole seasons.
    let offset = y.len() - cycles * s;
    let mut buf: Vec<f64> = Vec::with_capacity(s.max(cycles));
    let levels: Vec<f64> = (0..cycles)
        .map(|c| {
            buf.clear();
            buf.extend_from_slice(&y[offset + c * s..offset + (c + 1) * s]);
            median(&mut buf)
        })
        .collect();
    let mut prof = vec![0.0; s];
    for j in 0..s {
        buf.clear();
        buf.extend((0..cycles).map(|c| y[offset + c * s + j] - levels[c]));
        prof[(offset + j) % s] = trimmed_mean(&mut buf);
    }
    let mean = prof.iter().sum::<f64>() / s as f64;
    prof.iter_mut().for_each(|p| *p -= mean);
    prof
}

/// A dot product with four independent accumulators: a plain fold is one long chain of
/// dependent additions, and this is the inner loop of every AR forecast.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let (ca, ra) = a.split_at(a.len() - a.len() % 4);
    let (cb, rb) = b.split_at(ca.len());
    for (x, y) in ca.chunks_exact(4).zip(cb.chunks_exact(4)) {
        for i in 0..4 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// The mean of the middle half (a quarter trimmed from each end; 0 if empty), reordering
/// the slice.
fn trimmed_mean(v: &mut [f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    v.sort_unstable_by(f64::total_cmp);
    let cut = n / 4;
    let mid = &v[cut..n - cut];
    mid.iter().sum::<f64>() / mid.len() as f64
}

/// The median of a slice (0 if empty), reordering it.
fn median(v: &mut [f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    let (_, m, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    let m = *m;
    if n % 2 == 1 {
        m
    } else {
        let lo = v[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lo + m)
    }
}

impl SeriesModel for Autoregressive {
    fn fit(&mut self, y: &[f64]) -> Result<(), String> {
        self.fit_sharing(y, &mut SharedProfile::default())
    }

    fn fit_sharing(&mut self, y: &[f64], profiles: &mut SharedProfile) -> Result<(), String> {
        let n = y.len();
        let pmax = MAX_LAG.min(n / 10);
        if pmax < 1 {
            return Err(format!("autoregression needs at least 10 samples, has {n}"));
        }
        self.profile = profiles.of(y, self.season_len);
        let ps = self.profile.len();
        let x: Vec<f64> = y
            .iter()
            .enumerate()
            .map(|(i, v)| v - f64::from(self.profile[i % ps]))
            .collect();
        // Shared design over rows t = pmax..n so every order sees the same targets.
        let m = n - pmax;
        let mut design = Array2::<f64>::zeros((m, pmax + 1));
        let mut target = Array1::<f64>::zeros(m);
        for (r, t) in (pmax..n).enumerate() {
            design[[r, 0]] = 1.0;
            for l in 1..=pmax {
                design[[r, l]] = x[t - l];
            }
            target[r] = x[t];
        }
        let gram = design.t().dot(&design);
        let xty = design.t().dot(&target);
        let yty = target.dot(&target);
        let mut best: Option<(f64, Vec<f64>)> = None;
        for p in 1..=pmax {
            let g = gram.slice(s![..=p, ..=p]);
            let b = xty.slice(s![..=p]);
            let Some(theta) = solve_spd(g, b) else {
                continue;
            };
            // Residual sum of squares from the normal equations, floored for exact fits.
            let rss = (yty - 2.0 * theta.dot(&b) + theta.dot(&g.dot(&theta)))
                .max(1e-12 * yty.max(1e-300));
            let bic = m as f64 * (rss / m as f64).ln() + (p + 1) as f64 * (m as f64).ln();
            if bic.is_finite() && best.as_ref().is_none_or(|(b, _)| bic < *b) {
                best = Some((bic, theta.to_vec()));
            }
        }
        let Some((_, coef)) = best else {
            return Err("autoregression: least squares failed on this window".into());
        };
        let (lo, hi) = y
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let span = (hi - lo).max(hi.abs().max(lo.abs()) * 1e-6).max(1e-9);
        self.clamp = (lo - span, hi + span);
        let p = coef.len() - 1;
        self.coef = coef;
        self.lags = vec![0.0; p];
        self.head = 0;
        self.seen = 0;
        self.phase = 0;
        Ok(())
    }

    fn update(&mut self, y: f64) {
        let ps = self.profile.len();
        let p = self.lags.len();
        self.lags[self.head] = y - f64::from(self.profile[self.phase]);
        self.head += 1;
        if self.head == p {
            self.head = 0;
        }
        self.phase += 1;
        if self.phase == ps {
            self.phase = 0;
        }
        self.seen += 1;
    }

    fn predict(&self, out: &mut [f64]) -> bool {
        let p = self.lags.len();
        if self.seen < p {
            return false;
        }
        let ps = self.profile.len();
        let h = out.len();
        // buf = [x_{t-p+1} .. x_t, x̂_{t+1} .. x̂_{t+h}]: each step is a dot product over
        // the p entries before it. On the stack for the usual horizons.
        let mut stack = [0.0; 128];
        let mut heap = Vec::new();
        let buf: &mut [f64] = if p + h <= stack.len() {
            &mut stack[..p + h]
        } else {
            heap.resize(p + h, 0.0);
            &mut heap
        };
        let (older, newer) = self.lags.split_at(self.head);
        buf[..newer.len()].copy_from_slice(newer);
        buf[newer.len()..p].copy_from_slice(older);
        // Lag coefficients in time order (oldest lag first) for a forward dot product.
        let mut rev = [0.0; MAX_LAG];
        for (r, c) in rev[..p].iter_mut().rev().zip(&self.coef[1..]) {
            *r = *c;
        }
        let mut phase = self.phase;
        for k in 0..h {
            let v = self.coef[0] + dot(&rev[..p], &buf[k..k + p]);
            buf[p + k] = v;
            out[k] = (v + f64::from(self.profile[phase])).clamp(self.clamp.0, self.clamp.1);
            phase += 1;
            if phase == ps {
                phase = 0;
            }
        }
        out.iter().all(|v| v.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_fitted_on_one_window_share_one_profile_equal_to_their_own() {
        let y: Vec<f64> = (0..24 * 7)
            .map(|t| 10.0 + (t % 24) as f64 + ((t * 37) % 5) as f64 * 0.1)
            .collect();
        let mut shared = SharedProfile::default();
        let (mut a, mut b) = (Autoregressive::new(24), Autoregressive::new(24));
        a.fit_sharing(&y, &mut shared).unwrap();
        b.fit_sharing(&y, &mut shared).unwrap();
        assert!(Arc::ptr_eq(&a.profile, &b.profile));
        let mut alone = Autoregressive::new(24);
        alone.fit(&y).unwrap();
        assert_eq!(alone.profile[..], a.profile[..]);
        assert_eq!(alone.coef, a.coef);
        // Another season length gets its own.
        let mut c = Autoregressive::new(12);
        c.fit_sharing(&y, &mut shared).unwrap();
        assert_eq!(c.profile.len(), 12);
    }

    #[test]
    fn recovers_ar1_coefficient() {
        // x_t = 0.8 x_{t-1} + noise (deterministic pseudo-noise).
        let mut x = 0.0;
        let mut seed: u64 = 42;
        let y: Vec<f64> = (0..2000)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = ((seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5;
                x = 0.8 * x + u;
                10.0 + x
            })
            .collect();
        let mut m = Autoregressive::new(1);
        m.fit(&y).unwrap();
        assert!(m.order() >= 1);
        assert!((m.coef[1] - 0.8).abs() < 0.05, "{:?}", m.coef);
    }

    #[test]
    fn constant_series_is_fitted_without_failure() {
        let y = vec![3.0; 100];
        let mut m = Autoregressive::new(10);
        m.fit(&y).unwrap();
        for &v in &y {
            m.update(v);
        }
        let mut out = [0.0; 5];
        assert!(m.predict(&mut out));
        assert!(out.iter().all(|v| (v - 3.0).abs() < 1e-6), "{out:?}");
    }
}
