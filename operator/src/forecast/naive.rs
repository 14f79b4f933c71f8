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
    /// `f32`, as the forecaster's own history: a season of 1-minute steps is 1 440 values.
    ring: Vec<f32>,
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
        self.ring[self.head] = y as f32;
        self.head = (self.head + 1) % self.ring.len();
        self.seen += 1;
    }
    fn predict(&self, out: &mut [f64]) -> bool {
        let s = self.ring.len();
        if self.seen < s {
            return false;
        }
        for (k, o) in out.iter_mut().enumerate() {
            *o = f64::from(self.ring[(self.head + k % s) % s]);
        }
        true
    }
}

/// Forecasts the median of the last `len` samples for every step. Under absolute error the
/// best point forecast is the median of what comes next, and on spiky demand (short bursts
/// on a steady base) the recent median stays on the base where the latest value jumps with
/// every burst; on smooth demand it lags the latest value by about `len / 2` samples.
#[derive(Debug)]
pub(crate) struct RecentMedian {
    ring: Vec<f64>,
    head: usize,
    seen: usize,
}

impl RecentMedian {
    /// The median of the last `len` samples (at least 1).
    pub(crate) fn new(len: usize) -> Self {
        Self {
            ring: vec![0.0; len.max(1)],
            head: 0,
            seen: 0,
        }
    }
}

impl SeriesModel for RecentMedian {
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
        let n = self.seen.min(self.ring.len());
        if n == 0 {
            return false;
        }
        let mut stack = [0.0; 64];
        let mut heap = Vec::new();
        let v: &mut [f64] = if n <= stack.len() {
            &mut stack[..n]
        } else {
            heap.extend_from_slice(&self.ring[..n]);
            &mut heap
        };
        if n <= 64 {
            v.copy_from_slice(&self.ring[..n]);
        }
        v.sort_unstable_by(f64::total_cmp);
        let m = if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
        };
        out.fill(m);
        m.is_finite()
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
    fn recent_median_ignores_a_burst() {
        let mut m = RecentMedian::new(5);
        let mut out = [0.0; 2];
        assert!(!m.predict(&mut out));
        for v in [10.0, 11.0, 500.0, 9.0, 10.0, 12.0] {
            m.update(v);
        }
        // Last five: 11, 500, 9, 10, 12.
        assert!(m.predict(&mut out));
        assert_eq!(out, [11.0; 2]);
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
