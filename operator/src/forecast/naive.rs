//! The two naive forecasts: hard to beat on many real series, and the fallbacks when
//! fitted models cannot be trusted.

use super::SeriesModel;

/// Forecasts the latest value for every step: optimal for a random walk, and needs only
/// one sample.
#[derive(Debug, Default)]
pub(crate) struct LastValue {
    last: Option<f64>,
}

impl SeriesModel for LastValue {
    fn fit(&mut self, _y: &[f64]) -> Result<(), String> {
        self.last = None;
        Ok(())
    }
    fn update(&mut self, y: f64) {
        self.last = Some(y);
    }
    fn predict(&self, out: &mut [f64]) -> bool {
        match self.last {
            Some(v) => {
                out.fill(v);
                true
            }
            None => false,
        }
    }
}

/// Forecasts the value one season earlier: right when each day repeats the one before.
#[derive(Debug)]
pub(crate) struct SeasonalNaive {
    ring: Vec<f64>,
    /// The slot of the oldest sample, i.e. the one a season before the next sample.
    head: usize,
    seen: usize,
}

impl SeasonalNaive {
    /// A seasonal naive model for seasons of `season` samples (at least 1).
    pub(crate) fn new(season: usize) -> Self {
        Self {
            ring: vec![0.0; season.max(1)],
            head: 0,
            seen: 0,
        }
    }
}

impl SeriesModel for SeasonalNaive {
    fn fit(&mut self, _y: &[f64]) -> Result<(), String> {
        self.head = 0;
        self.seen = 0;
        Ok(())
    }
    fn update(&mut self, y: f64) {
        self.ring[self.head] = y;
        self.head = (self.head + 1) % self.ring.len();
        self.seen += 1;
    }
    fn predict(&self, out: &mut [f64]) -> bool {
        let s = self.ring.len();
        if self.seen < s {
            return false;
        }
        for (k, o) in out.iter_mut().enumerate() {
            *o = self.ring[(self.head + k % s) % s];
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seasonal_naive_repeats_the_last_season() {
        let mut m = SeasonalNaive::new(3);
        m.fit(&[]).unwrap();
        let mut out = [0.0; 7];
        assert!(!m.predict(&mut out));
        for v in [1.0, 2.0, 3.0, 4.0] {
            m.update(v);
        }
        assert!(m.predict(&mut out));
        assert_eq!(out, [2.0, 3.0, 4.0, 2.0, 3.0, 4.0, 2.0]);
    }

    #[test]
    fn last_value_repeats_the_latest_sample() {
        let mut m = LastValue::default();
        let mut out = [0.0; 3];
        assert!(!m.predict(&mut out));
        m.update(5.0);
        m.update(7.0);
        assert!(m.predict(&mut out));
        assert_eq!(out, [7.0; 3]);
    }
}
