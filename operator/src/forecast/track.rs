//! A model's running rolling-origin backtest, kept as an exponentially discounted summary.
//!
//! Every forecast a model makes is scored as the actuals arrive; each step's absolute error
//! is added to a per-horizon-step sum whose older terms are discounted by `λ` per sample, so
//! the score says how the model has done *lately* (a change of regime shows up within a few
//! half-lives) while the state stays O(h) per model however long the window: the pending
//! forecasts of the last `h` origins at the scored steps ([`Pending`], at most 12 steps), plus
//! two sums per scored step. Raw error rows are kept only for the forecast that is actually
//! issued, in [`super::conformal`].

use super::steps::Pending;

/// Pending forecasts of the last `h` origins and the discounted error sums.
#[derive(Debug, Clone)]
pub(crate) struct Track {
    pending: Pending,
    /// Discount per sample: the weight of an error `a` samples old is `λ^a`.
    lambda: f64,
    /// Discounted Σ|y − ŷ| per scored step.
    abse: Vec<f64>,
    /// Discounted count of scored errors per scored step.
    count: Vec<f64>,
    /// Discounted Σ|y| over all steps.
    absy: f64,
    /// Errors scored since the last clear (undiscounted), to know when a score is trusted.
    scored: u64,
}

impl Track {
    /// A track for forecasts of `h` steps whose errors lose half their weight every
    /// `half_life` samples.
    pub(crate) fn new(h: usize, half_life: f64) -> Self {
        let pending = Pending::new(h);
        let m = pending.steps().len();
        let lambda = if half_life.is_finite() && half_life > 0.0 {
            0.5f64.powf(1.0 / half_life)
        } else {
            1.0
        };
        Self {
            pending,
            lambda,
            abse: vec![0.0; m],
            count: vec![0.0; m],
            absy: 0.0,
            scored: 0,
        }
    }

    /// Forgets everything (a new model or a rebuilt backtest).
    pub(crate) fn clear(&mut self) {
        let lambda = self.lambda;
        *self = Self::new(self.pending.steps().horizon(), f64::INFINITY);
        self.lambda = lambda;
    }

    /// Errors scored since the last clear.
    pub(crate) fn scored(&self) -> u64 {
        self.scored
    }

    /// Registers the forecast made at the current origin (`None`: the model had none).
    pub(crate) fn record(&mut self, path: Option<&[f64]>) {
        self.pending.record(path);
    }

    /// Discounts the sums by one sample and scores pending forecasts against the sample
    /// that just arrived (`None`: missing, nothing scored).
    pub(crate) fn actual(&mut self, y: Option<f64>) {
        let l = self.lambda;
        self.abse.iter_mut().for_each(|v| *v *= l);
        self.count.iter_mut().for_each(|v| *v *= l);
        self.absy *= l;
        let Self {
            pending,
            abse,
            count,
            absy,
            scored,
            ..
        } = self;
        pending.advance(|_, j, forecast| {
            let Some(v) = y else { return };
            let e = (v - forecast).abs();
            if e.is_finite() {
                abse[j] += e;
                count[j] += 1.0;
                *absy += v.abs();
                *scored += 1;
            }
        });
    }

    /// Discounted mean absolute error per scored step, every step weighted alike; the
    /// choice criterion (all candidates are scored on the same series, so no scaling is
    /// needed).
    pub(crate) fn mae(&self) -> Option<f64> {
        let n: f64 = self.count.iter().sum();
        (self.scored > 0 && n > 0.0).then(|| self.abse.iter().sum::<f64>() / n)
    }

    /// Discounted WAPE, Σ|y − ŷ| / Σ|y|: the error users are told.
    pub(crate) fn wape(&self) -> Option<f64> {
        (self.scored > 0 && self.absy > 0.0).then(|| self.abse.iter().sum::<f64>() / self.absy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_each_forecast_against_the_right_actuals() {
        // No discount: plain sums.
        let mut t = Track::new(2, f64::INFINITY);
        // Origin 0 forecasts [1, 2]; actuals 1.5 then 2.5.
        t.record(Some(&[1.0, 2.0]));
        t.actual(Some(1.5));
        t.record(Some(&[1.5, 1.5]));
        t.actual(Some(2.5));
        // Errors so far: 0.5 (o0 s1), 0.5 (o0 s2), 1.0 (o1 s1); |y| = 1.5 + 2.5 + 2.5.
        assert_eq!(t.scored(), 3);
        assert!((t.mae().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((t.wape().unwrap() - 2.0 / 6.5).abs() < 1e-12);
        t.record(None);
        t.actual(None);
        assert_eq!(t.scored(), 3, "a missing actual is not scored");
    }

    #[test]
    fn recent_errors_weigh_more() {
        let mut t = Track::new(1, 10.0);
        for i in 0..200 {
            t.record(Some(&[0.0]));
            // Error 10 for a long time, then error 1 for the last 50 samples.
            t.actual(Some(if i < 150 { 10.0 } else { 1.0 }));
        }
        let mae = t.mae().unwrap();
        // 50 samples = 5 half-lives: the old regime keeps ~3% of the weight.
        assert!(mae < 1.5, "{mae}");
        t.clear();
        assert_eq!(t.mae(), None);
    }
}
