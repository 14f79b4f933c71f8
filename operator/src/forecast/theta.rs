//! Two cheap exponential-smoothing models on the seasonally adjusted series.
//!
//! - The Theta method, which Hyndman & Billah (2003) showed to be simple exponential
//!   smoothing with a drift of half the series' linear-trend slope: robust, and among the
//!   best single methods of the M3 competition.
//! - Damped-trend ETS(A,Ad,N): Holt's linear trend with a fitted damping factor.
//!
//! Both run on the series minus its robust seasonal profile (the one the autoregression
//! uses) and add the profile back, i.e. classical decomposition forecasting; without two
//! whole seasons the profile is zero and they are the plain non-seasonal methods.
//!
//! A third, simple exponential smoothing, ETS(A,N,N), runs on the raw series: it is what an
//! ETS model selection settles on for a level that wanders without a season, where
//! subtracting a seasonal profile estimated from noise only adds that noise back.

use super::SeriesModel;
use std::sync::Arc;

use super::autoregressive::SharedProfile;
use super::holt_winters::HoltWinters;

/// A non-seasonal model run on the seasonally adjusted series.
#[derive(Debug)]
pub(crate) struct Deseasonalized<M> {
    season_len: usize,
    /// Shared with the other models fitted on the same window ([`SharedProfile`]).
    profile: Arc<[f32]>,
    /// Phase of the next sample.
    phase: usize,
    inner: M,
}

impl<M: SeriesModel> Deseasonalized<M> {
    fn with(season_len: usize, inner: M) -> Self {
        Self {
            season_len: season_len.max(1),
            profile: Arc::from([0.0f32]),
            phase: 0,
            inner,
        }
    }
}

/// The Theta method for seasons of `season_len` samples.
pub(crate) fn theta(season_len: usize) -> Deseasonalized<SesDrift> {
    Deseasonalized::with(season_len, SesDrift::default())
}

/// Damped-trend exponential smoothing for seasons of `season_len` samples.
pub(crate) fn damped_trend(season_len: usize) -> Deseasonalized<HoltWinters> {
    Deseasonalized::with(season_len, HoltWinters::new(1))
}

impl<M: SeriesModel> SeriesModel for Deseasonalized<M> {
    fn fit(&mut self, y: &[f64]) -> Result<(), String> {
        self.fit_sharing(y, &mut SharedProfile::default())
    }

    fn fit_sharing(&mut self, y: &[f64], profiles: &mut SharedProfile) -> Result<(), String> {
        self.profile = profiles.of(y, self.season_len);
        let ps = self.profile.len();
        let x: Vec<f64> = y
            .iter()
            .enumerate()
            .map(|(i, v)| v - f64::from(self.profile[i % ps]))
            .collect();
        self.phase = 0;
        self.inner.fit(&x)
    }

    fn update(&mut self, y: f64) {
        let ps = self.profile.len();
        self.inner.update(y - f64::from(self.profile[self.phase]));
        self.phase = (self.phase + 1) % ps;
    }

    fn predict(&self, out: &mut [f64]) -> bool {
        if !self.inner.predict(out) {
            return false;
        }
        let ps = self.profile.len();
        for (k, o) in out.iter_mut().enumerate() {
            *o += f64::from(self.profile[(self.phase + k) % ps]);
        }
        out.iter().all(|v| v.is_finite())
    }
}

/// Simple exponential smoothing on the raw series, without a season or drift: ETS(A,N,N).
pub(crate) fn exponential_smoothing() -> SesDrift {
    SesDrift {
        no_drift: true,
        ..SesDrift::default()
    }
}

/// Simple exponential smoothing with a fixed drift b (half the least-squares slope of the
/// fit window, or none for plain ETS(A,N,N)): ℓₜ = ℓₜ₋₁ + b + α(yₜ − ℓₜ₋₁ − b), forecast
/// ℓₜ + k·b. α and the initial level ℓ₀ minimise the one-step squared error over the window,
/// which is ETS(A,N,N)'s maximum likelihood: α by golden-section search (the loss is smooth in
/// α), ℓ₀ in closed form for each α, since every one-step forecast is linear in ℓ₀ with weight
/// (1 − α)ᵗ. Fixing ℓ₀ at the first sample instead lets one unusual first sample bend α.
#[derive(Debug, Default)]
pub(crate) struct SesDrift {
    /// Plain simple exponential smoothing: the drift stays 0.
    no_drift: bool,
    alpha: f64,
    drift: f64,
    init: f64,
    level: Option<f64>,
}

impl SesDrift {
    /// For smoothing `alpha`: the initial level with the least one-step squared error over
    /// `y`, and that error. The forecast of yₜ is cₜ + (1 − α)ᵗ·ℓ₀, where cₜ is the forecast
    /// from ℓ₀ = 0, so the best ℓ₀ is Σ wₜ(yₜ − cₜ) / Σ wₜ² with wₜ = (1 − α)ᵗ.
    fn best_init(y: &[f64], alpha: f64, drift: f64) -> (f64, f64) {
        let (mut level, mut weight) = (0.0, 1.0);
        let (mut rr, mut wr, mut ww) = (0.0, 0.0, 0.0);
        for &v in y {
            let r = v - (level + drift);
            rr += r * r;
            wr += weight * r;
            ww += weight * weight;
            level += drift + alpha * r;
            weight *= 1.0 - alpha;
        }
        if ww > 0.0 {
            (wr / ww, rr - wr * wr / ww)
        } else {
            (0.0, rr)
        }
    }
}

impl SeriesModel for SesDrift {
    fn fit(&mut self, y: &[f64]) -> Result<(), String> {
        let n = y.len();
        if n < 3 {
            return Err(format!("Theta needs at least 3 samples, has {n}"));
        }
        // Least-squares slope against the sample index.
        let nf = n as f64;
        let tm = (nf - 1.0) / 2.0;
        let ym = y.iter().sum::<f64>() / nf;
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for (i, v) in y.iter().enumerate() {
            let dt = i as f64 - tm;
            sxy += dt * (v - ym);
            sxx += dt * dt;
        }
        let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        self.drift = if slope.is_finite() && !self.no_drift {
            slope / 2.0
        } else {
            0.0
        };
        let (mut lo, mut hi) = (1e-3, 1.0);
        let g = (5f64.sqrt() - 1.0) / 2.0;
        let f = |a: f64| Self::best_init(y, a, self.drift).1;
        let (mut a, mut b) = (hi - g * (hi - lo), lo + g * (hi - lo));
        let (mut fa, mut fb) = (f(a), f(b));
        for _ in 0..30 {
            if fa <= fb {
                hi = b;
                b = a;
                fb = fa;
                a = hi - g * (hi - lo);
                fa = f(a);
            } else {
                lo = a;
                a = b;
                fa = fb;
                b = lo + g * (hi - lo);
                fb = f(b);
            }
        }
        let alpha = 0.5 * (lo + hi);
        let init = Self::best_init(y, alpha, self.drift).0;
        if !alpha.is_finite() || !init.is_finite() {
            return Err("Theta: the smoothing fit failed on this window".into());
        }
        self.alpha = alpha;
        self.init = init;
        self.level = None;
        Ok(())
    }

    fn update(&mut self, y: f64) {
        let level = self.level.unwrap_or(self.init);
        let e = y - (level + self.drift);
        self.level = Some(level + self.drift + self.alpha * e);
    }

    fn predict(&self, out: &mut [f64]) -> bool {
        let Some(level) = self.level else {
            return false;
        };
        for (k, o) in out.iter_mut().enumerate() {
            *o = level + (k + 1) as f64 * self.drift;
        }
        out.iter().all(|v| v.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(m: &mut dyn SeriesModel, y: &[f64]) {
        m.fit(y).unwrap();
        for &v in y {
            m.update(v);
        }
    }

    #[test]
    fn theta_follows_a_seasonal_ramp() {
        let s = 24;
        let at = |t: usize| {
            let t = t as f64;
            50.0 + 0.05 * t + 10.0 * (t * std::f64::consts::TAU / 24.0).sin()
        };
        let y: Vec<f64> = (0..s * 7).map(at).collect();
        for m in [
            &mut theta(s) as &mut dyn SeriesModel,
            &mut damped_trend(s) as &mut dyn SeriesModel,
        ] {
            replay(m, &y);
            let mut out = [0.0; 6];
            assert!(m.predict(&mut out));
            for (k, f) in out.iter().enumerate() {
                let truth = at(y.len() + k);
                assert!((f - truth).abs() < 1.5, "{m:?} step {k}: {f} vs {truth}");
            }
        }
    }

    #[test]
    fn exponential_smoothing_forecasts_a_flat_level_and_follows_a_level_shift() {
        // A level of 10 with alternating noise, then a shift to 30: the forecast is flat
        // (no drift, no season) and near the new level, after a few samples.
        let y: Vec<f64> = (0..400)
            .map(|t| if t < 300 { 10.0 } else { 30.0 } + if t % 2 == 0 { 0.5 } else { -0.5 })
            .collect();
        let mut m = exponential_smoothing();
        replay(&mut m, &y);
        let mut out = [0.0; 5];
        assert!(m.predict(&mut out));
        assert!(out.windows(2).all(|w| w[0] == w[1]), "{out:?}");
        assert!((out[0] - 30.0).abs() < 1.0, "{out:?}");
    }

    #[test]
    fn an_unusual_first_sample_does_not_bend_the_smoothing() {
        // A flat level of 10 with alternating noise, whose first sample is an outlier of 100.
        // The least-squares fit smooths hard (a small α) and starts near the level; starting
        // at the outlier instead makes the fit raise α to forget it fast, and the forecasts
        // then chase the noise.
        let y: Vec<f64> = (0..2000)
            .map(|t| match t {
                0 => 100.0,
                _ if t % 2 == 0 => 10.5,
                _ => 9.5,
            })
            .collect();
        let mut m = exponential_smoothing();
        m.fit(&y).unwrap();
        assert!(m.alpha < 0.01, "α {}", m.alpha);
        assert!((m.init - 10.0).abs() < 1.0, "ℓ₀ {}", m.init);
    }

    #[test]
    fn ses_drift_fits_alpha_near_one_on_a_random_walk() {
        let mut seed: u64 = 3;
        let mut x = 0.0;
        let y: Vec<f64> = (0..1000)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                x += ((seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5;
                x
            })
            .collect();
        let mut m = SesDrift::default();
        m.fit(&y).unwrap();
        assert!(m.alpha > 0.8, "{}", m.alpha);
    }
}
