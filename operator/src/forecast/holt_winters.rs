//! Additive Holt-Winters (ETS(A,Ad,A)) with a fitted damping factor.
//!
//! Level, trend and one additive offset per phase of the season are smoothed in error
//! correction form. The four parameters (α, β, γ, φ) are fitted by Nelder-Mead on the
//! one-step squared error over the window, within the usual admissible region
//! 0 < β < α < 1, 0 < γ < 1 − α, 0.8 ≤ φ ≤ 1 (φ = 1 is the undamped model, so one fit
//! covers both; damping keeps the trend from running away over the horizon). A refit
//! starts from the previous parameters, so daily refits need few evaluations.

use super::SeriesModel;
use super::optimize::nelder_mead;

/// Smoothing parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HwParams {
    pub alpha: f64,
    pub beta: f64,
    pub gamma: f64,
    pub phi: f64,
}

/// Filter state: level, trend and season offsets; `idx` is the slot of the next sample.
#[derive(Debug, Clone)]
struct State {
    level: f64,
    trend: f64,
    season: Vec<f64>,
    idx: usize,
}

/// The Holt-Winters model; with a season of one it is Holt's damped linear trend, used
/// when history is shorter than two seasons.
#[derive(Debug)]
pub(crate) struct HoltWinters {
    season_len: usize,
    params: HwParams,
    /// Unconstrained parameters of the last fit, the warm start of the next.
    raw: Option<Vec<f64>>,
    state: Option<State>,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl HoltWinters {
    /// A model for seasons of `season_len` samples (1 = no season).
    pub(crate) fn new(season_len: usize) -> Self {
        Self {
            season_len: season_len.max(1),
            params: HwParams {
                alpha: 0.5,
                beta: 0.01,
                gamma: 0.1,
                phi: 0.98,
            },
            raw: None,
            state: None,
        }
    }

    /// The fitted parameters (for tests and reports).
    #[cfg(test)]
    pub(crate) fn params(&self) -> HwParams {
        self.params
    }

    fn seasonal(&self) -> bool {
        self.season_len > 1
    }

    /// Maps unconstrained optimiser coordinates into the admissible region.
    fn map(&self, u: &[f64]) -> HwParams {
        let alpha = 1e-4 + (1.0 - 2e-4) * sigmoid(u[0]);
        let beta = alpha * sigmoid(u[1]);
        let phi = 0.8 + 0.2 * sigmoid(u[2]);
        let gamma = if self.seasonal() {
            (1.0 - alpha) * sigmoid(u[3])
        } else {
            0.0
        };
        HwParams {
            alpha,
            beta,
            gamma,
            phi,
        }
    }

    /// Initial state from the data, the classical way: the level is the mean of the first
    /// season, the trend the per-sample change between the first and last full season,
    /// and each phase's offset its average deviation from its season's mean (detrended,
    /// centred). Averaging over all seasons in the window keeps one odd day from
    /// defining the profile.
    fn initial_state(&self, y: &[f64]) -> State {
        let s = self.season_len;
        let cycles = y.len() / s;
        if !self.seasonal() || cycles < 2 {
            let k = y.len().min(10);
            let trend = if k >= 2 {
                (y[k - 1] - y[0]) / (k - 1) as f64
            } else {
                0.0
            };
            let level = y.first().copied().unwrap_or(0.0) - trend;
            return State {
                level,
                trend,
                season: vec![0.0; s],
                idx: 0,
            };
        }
        let means: Vec<f64> = (0..cycles)
            .map(|c| y[c * s..(c + 1) * s].iter().sum::<f64>() / s as f64)
            .collect();
        let trend = (means[cycles - 1] - means[0]) / ((cycles - 1) * s) as f64;
        let centre = (s as f64 - 1.0) / 2.0;
        let mut season = vec![0.0; s];
        for (c, m) in means.iter().enumerate() {
            for (j, off) in season.iter_mut().enumerate() {
                *off += y[c * s + j] - (m + trend * (j as f64 - centre));
            }
        }
        let avg = season.iter().sum::<f64>() / s as f64;
        season
            .iter_mut()
            .for_each(|v| *v = (*v / cycles as f64) - avg);
        State {
            // The level just before y[0]: the first season's mean, walked back from its centre.
            level: means[0] - trend * (centre + 1.0),
            trend,
            season,
            idx: 0,
        }
    }

    /// One step of the filter; returns the one-step error.
    #[inline]
    fn step(p: &HwParams, st: &mut State, y: f64) -> f64 {
        let s = st.season[st.idx];
        let damped = p.phi * st.trend;
        let e = y - (st.level + damped + s);
        st.level += damped + p.alpha * e;
        st.trend = damped + p.beta * e;
        st.season[st.idx] = s + p.gamma * e;
        st.idx += 1;
        if st.idx == st.season.len() {
            st.idx = 0;
        }
        e
    }
}

impl SeriesModel for HoltWinters {
    fn fit(&mut self, y: &[f64]) -> Result<(), String> {
        if y.len() < 3 {
            return Err(format!(
                "Holt-Winters needs at least 3 samples, has {}",
                y.len()
            ));
        }
        if self.seasonal() && y.len() < 2 * self.season_len {
            return Err(format!(
                "Holt-Winters with a season of {} needs two seasons of history, has {}",
                self.season_len,
                y.len()
            ));
        }
        let init = self.initial_state(y);
        let scale = y.iter().map(|v| v.abs()).fold(0.0, f64::max).max(1e-12);
        let mut work = init.clone();
        let this = &*self;
        let loss = |u: &[f64]| {
            let p = this.map(u);
            work.level = init.level;
            work.trend = init.trend;
            work.season.copy_from_slice(&init.season);
            work.idx = 0;
            let mut sse = 0.0;
            for &v in y {
                let e = HoltWinters::step(&p, &mut work, v) / scale;
                sse += e * e;
            }
            sse
        };
        let dims = if self.seasonal() { 4 } else { 3 };
        let (x0, evals) = match &self.raw {
            Some(r) if r.len() == dims => (r.clone(), 60 * dims),
            _ => {
                // α = 0.5, β = 0.05α, φ = 0.98, γ = 0.1(1 − α).
                let mut x = vec![0.0, -2.94, 2.2];
                if dims == 4 {
                    x.push(-2.2);
                }
                (x, 120 * dims)
            }
        };
        let (u, _) = nelder_mead(loss, &x0, 1.0, evals, 1e-6);
        self.params = self.map(&u);
        self.raw = Some(u);
        self.state = Some(init);
        Ok(())
    }

    fn update(&mut self, y: f64) {
        let p = self.params;
        if let Some(st) = self.state.as_mut() {
            HoltWinters::step(&p, st, y);
        }
    }

    fn predict(&self, out: &mut [f64]) -> bool {
        let Some(st) = &self.state else {
            return false;
        };
        let s = st.season.len();
        let mut phi_sum = 0.0;
        let mut phi_k = 1.0;
        for (k, o) in out.iter_mut().enumerate() {
            phi_k *= self.params.phi;
            phi_sum += phi_k;
            *o = st.level + phi_sum * st.trend + st.season[(st.idx + k) % s];
        }
        out.iter().all(|v| v.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(m: &mut HoltWinters, y: &[f64]) {
        m.fit(y).unwrap();
        for &v in y {
            m.update(v);
        }
    }

    #[test]
    fn learns_a_seasonal_profile_with_trend() {
        let s = 24;
        let y: Vec<f64> = (0..24 * 8)
            .map(|t| {
                100.0 + 0.1 * t as f64 + 20.0 * (t as f64 * std::f64::consts::TAU / 24.0).sin()
            })
            .collect();
        let mut m = HoltWinters::new(s);
        replay(&mut m, &y);
        let mut out = vec![0.0; 30];
        assert!(m.predict(&mut out));
        for (k, f) in out.iter().enumerate() {
            let t = (y.len() + k) as f64;
            let truth = 100.0 + 0.1 * t + 20.0 * (t * std::f64::consts::TAU / 24.0).sin();
            assert!((f - truth).abs() < 1.0, "step {k}: {f} vs {truth}");
        }
    }

    #[test]
    fn parameters_stay_admissible() {
        let y: Vec<f64> = (0..200).map(|t| ((t * 7919) % 13) as f64).collect();
        let mut m = HoltWinters::new(10);
        m.fit(&y).unwrap();
        let p = m.params();
        assert!(0.0 < p.alpha && p.alpha < 1.0);
        assert!(0.0 <= p.beta && p.beta <= p.alpha);
        assert!(0.0 <= p.gamma && p.gamma <= 1.0 - p.alpha);
        assert!((0.8..=1.0).contains(&p.phi));
    }

    #[test]
    fn short_history_is_refused_for_the_seasonal_form() {
        let mut m = HoltWinters::new(24);
        assert!(m.fit(&[1.0; 30]).is_err());
        let mut m = HoltWinters::new(1);
        assert!(m.fit(&[1.0; 30]).is_ok());
    }
}
