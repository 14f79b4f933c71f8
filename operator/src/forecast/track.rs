//! A model's running rolling-origin backtest: every forecast it made, scored as the
//! actuals arrive.
//!
//! The same record serves model choice (mean absolute error and WAPE over recent origins)
//! and prediction intervals (per-step empirical quantiles of the signed errors), so both
//! come from the model's own out-of-sample behaviour and cost O(h) per sample to keep.

/// Pending forecasts of the last `h` origins and the completed error rows of the last
/// `cap` origins.
#[derive(Debug, Clone)]
pub(crate) struct Track {
    h: usize,
    cap: usize,
    // Pending rows, one slot per origin modulo h.
    pred: Vec<f64>,
    perr: Vec<f64>,
    page: Vec<usize>,
    pabse: Vec<f64>,
    pabsy: Vec<f64>,
    plive: Vec<bool>,
    next: usize,
    // Completed rows: a ring of `cap` rows of `h` signed errors (NaN = actual missing),
    // grown as origins complete, so a young history costs little. f32: the errors feed
    // quantiles, where seven significant digits are plenty, and this is most of a
    // workload's memory.
    errs: Vec<f32>,
    abse: Vec<f64>,
    absy: Vec<f64>,
    steps: Vec<u32>,
    head: usize,
    len: usize,
    sum_abse: f64,
    sum_absy: f64,
    sum_steps: u64,
}

impl Track {
    /// A track for forecasts of `h` steps remembering `cap` origins.
    pub(crate) fn new(h: usize, cap: usize) -> Self {
        let h = h.max(1);
        let cap = cap.max(1);
        Self {
            h,
            cap,
            pred: vec![0.0; h * h],
            perr: vec![0.0; h * h],
            page: vec![0; h],
            pabse: vec![0.0; h],
            pabsy: vec![0.0; h],
            plive: vec![false; h],
            next: 0,
            errs: Vec::new(),
            abse: Vec::new(),
            absy: Vec::new(),
            steps: Vec::new(),
            head: 0,
            len: 0,
            sum_abse: 0.0,
            sum_absy: 0.0,
            sum_steps: 0,
        }
    }

    /// Forgets everything (a new model or a rebuilt backtest).
    pub(crate) fn clear(&mut self) {
        *self = Self::new(self.h, self.cap);
    }

    /// Completed origins remembered.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Registers the forecast made at the current origin (`None`: the model had none).
    pub(crate) fn record(&mut self, path: Option<&[f64]>) {
        let slot = self.next;
        self.next = (self.next + 1) % self.h;
        match path {
            Some(p) if p.len() >= self.h => {
                self.pred[slot * self.h..(slot + 1) * self.h].copy_from_slice(&p[..self.h]);
                self.page[slot] = 0;
                self.pabse[slot] = 0.0;
                self.pabsy[slot] = 0.0;
                self.plive[slot] = true;
            }
            _ => self.plive[slot] = false,
        }
    }

    /// Scores pending forecasts against the sample that just arrived (`None`: missing).
    pub(crate) fn actual(&mut self, y: Option<f64>) {
        let h = self.h;
        for slot in 0..h {
            if !self.plive[slot] {
                continue;
            }
            let k = self.page[slot];
            let e = match y {
                Some(v) => {
                    let e = v - self.pred[slot * h + k];
                    self.pabse[slot] += e.abs();
                    self.pabsy[slot] += v.abs();
                    e
                }
                None => f64::NAN,
            };
            self.perr[slot * h + k] = e;
            self.page[slot] = k + 1;
            if k + 1 == h {
                self.complete(slot);
                self.plive[slot] = false;
            }
        }
    }

    fn complete(&mut self, slot: usize) {
        let h = self.h;
        let row = self.head;
        if self.len == self.cap {
            self.sum_abse -= self.abse[row];
            self.sum_absy -= self.absy[row];
            self.sum_steps -= u64::from(self.steps[row]);
        } else {
            self.len += 1;
        }
        let src = &self.perr[slot * h..(slot + 1) * h];
        let steps = src.iter().filter(|e| !e.is_nan()).count() as u32;
        if self.abse.len() <= row {
            // Still filling: rows are appended in order (head == len until the ring is full).
            self.errs.extend(src.iter().map(|&e| e as f32));
            self.abse.push(self.pabse[slot]);
            self.absy.push(self.pabsy[slot]);
            self.steps.push(steps);
        } else {
            for (dst, &e) in self.errs[row * h..(row + 1) * h].iter_mut().zip(src) {
                *dst = e as f32;
            }
            self.abse[row] = self.pabse[slot];
            self.absy[row] = self.pabsy[slot];
            self.steps[row] = steps;
        }
        self.sum_abse += self.pabse[slot];
        self.sum_absy += self.pabsy[slot];
        self.sum_steps += u64::from(steps);
        self.head = (self.head + 1) % self.cap;
        if self.head == 0 {
            // Running sums drift with many subtractions; recompute once per lap.
            self.sum_abse = self.abse[..self.len].iter().sum();
            self.sum_absy = self.absy[..self.len].iter().sum();
        }
    }

    /// Mean absolute error per scored step; the choice criterion (scale-free comparisons
    /// are not needed: every candidate is scored on the same series).
    pub(crate) fn mae(&self) -> Option<f64> {
        (self.sum_steps > 0).then(|| self.sum_abse.max(0.0) / self.sum_steps as f64)
    }

    /// WAPE over the remembered origins: Σ|y − ŷ| / Σ|y|, the error users are told.
    pub(crate) fn wape(&self) -> Option<f64> {
        (self.sum_steps > 0 && self.sum_absy > 0.0).then(|| self.sum_abse.max(0.0) / self.sum_absy)
    }

    /// Signed errors of step `k` (0-based) that were scored.
    fn column(&self, k: usize, into: &mut Vec<f64>) {
        into.clear();
        let h = self.h;
        into.extend(
            (0..self.len)
                .map(|r| f64::from(self.errs[r * h + k]))
                .filter(|e| !e.is_nan()),
        );
    }

    /// The `q` quantile of the signed errors of each step, or `None` for steps with
    /// fewer than `min_count` scored errors. Uses the ⌈q(n+1)⌉-th smallest error, the
    /// conformal choice that keeps coverage at or above `q` for exchangeable errors.
    pub(crate) fn quantiles(&self, q: f64, min_count: usize, out: &mut Vec<Option<f64>>) {
        out.clear();
        let mut col = Vec::with_capacity(self.len);
        for k in 0..self.h {
            self.column(k, &mut col);
            let n = col.len();
            if n < min_count.max(1) {
                out.push(None);
                continue;
            }
            let rank = ((q * (n + 1) as f64).ceil() as usize).clamp(1, n) - 1;
            let (_, v, _) = col.select_nth_unstable_by(rank, f64::total_cmp);
            out.push(Some(*v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_each_forecast_against_the_right_actuals() {
        let mut t = Track::new(2, 10);
        // Origin 0 forecasts [1, 2]; actuals 1.5 then 2.5.
        t.record(Some(&[1.0, 2.0]));
        t.actual(Some(1.5));
        t.record(Some(&[1.5, 1.5]));
        t.actual(Some(2.5));
        assert_eq!(t.len(), 1);
        // Row 0: errors 0.5, 0.5; |y| = 4.
        assert!((t.wape().unwrap() - 1.0 / 4.0).abs() < 1e-12);
        t.record(None);
        t.actual(Some(1.5));
        // Row 1: errors 1.0, 0.0.
        assert_eq!(t.len(), 2);
        assert!((t.mae().unwrap() - 2.0 / 4.0).abs() < 1e-12);
        let mut q = Vec::new();
        t.quantiles(0.5, 1, &mut q);
        // Conformal rank ⌈0.5·3⌉ = 2: the larger of the two errors per step.
        assert_eq!(q, vec![Some(1.0), Some(0.5)]);
    }

    #[test]
    fn forgets_the_oldest_rows() {
        let mut t = Track::new(1, 3);
        for i in 0..10 {
            t.record(Some(&[0.0]));
            t.actual(Some(i as f64));
        }
        assert_eq!(t.len(), 3);
        // Remembers errors 7, 8, 9.
        assert!((t.mae().unwrap() - 8.0).abs() < 1e-12);
    }
}
