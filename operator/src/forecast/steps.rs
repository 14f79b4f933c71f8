//! Which steps of the horizon the backtests and the interval keep errors for.
//!
//! Every origin's forecast stays pending until the last of its `h` steps has arrived, so
//! scoring every step keeps `h × h` values per model. At the operator's 1-minute step and a
//! 1-hour horizon that is 3 600 per model and per workload, most of a workload's memory.
//! Errors of neighbouring steps say nearly the same thing, so at most [`MAX_SCORED_STEPS`]
//! steps are kept, evenly spaced and always including the last: `h × 12` values. A horizon
//! of 12 steps or fewer (an hour at 5-minute steps) keeps every step, unchanged.

/// Most steps of the horizon whose errors are kept.
pub(crate) const MAX_SCORED_STEPS: usize = 12;

/// The scored steps of a horizon of `h` steps (0-based, ascending, the last one `h − 1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScoredSteps {
    h: usize,
    steps: Vec<usize>,
}

impl ScoredSteps {
    /// The steps scored for a horizon of `h` steps (at least one).
    pub(crate) fn new(h: usize) -> Self {
        let h = h.max(1);
        let m = h.min(MAX_SCORED_STEPS);
        let steps = (1..=m).map(|j| (j * h).div_ceil(m) - 1).collect();
        Self { h, steps }
    }

    /// The horizon, in steps.
    pub(crate) fn horizon(&self) -> usize {
        self.h
    }

    /// How many steps are scored.
    pub(crate) fn len(&self) -> usize {
        self.steps.len()
    }

    /// Each scored step's index among the scored ones, with the step.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.steps.iter().copied().enumerate()
    }

    /// The `j`-th scored step (`None` past the last).
    pub(crate) fn step(&self, j: usize) -> Option<usize> {
        self.steps.get(j).copied()
    }

    /// The index of the scored step whose interval step `k` uses: the first scored at or
    /// after `k` (errors grow with the lead, so the later step's interval is the cautious
    /// one), the last for a step beyond the horizon.
    pub(crate) fn covering(&self, k: usize) -> usize {
        self.steps
            .partition_point(|&s| s < k)
            .min(self.steps.len().saturating_sub(1))
    }
}

/// The forecasts of the last `h` origins still waiting for their actuals, at the scored
/// steps: one slot per origin modulo `h`. The backtest tracks and the conformal interval
/// score the same kind of pending forecasts in different ways, and share this bookkeeping.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    steps: ScoredSteps,
    /// Per slot and scored step, the point forecast (`f32`: half the memory, and an error
    /// of 1e-7 relative changes neither a choice nor an interval).
    pred: Vec<f32>,
    /// Per slot, the step of the horizon its forecast is at (`u32`: a horizon is far
    /// shorter, and the `pred` rows of a longer one would not fit in memory).
    page: Vec<u32>,
    /// Per slot, the index of the first scored step at or after its page: a compare, not a
    /// search, tells whether the page is scored (this runs for every slot of every model at
    /// every sample of a replayed week).
    due: Vec<u8>,
    live: Vec<bool>,
    next: usize,
}

impl Pending {
    /// No forecast pending yet, for a horizon of `h` steps.
    pub(crate) fn new(h: usize) -> Self {
        let steps = ScoredSteps::new(h);
        let (h, m) = (steps.horizon(), steps.len());
        Self {
            steps,
            pred: vec![0.0; h * m],
            page: vec![0; h],
            due: vec![0; h],
            live: vec![false; h],
            next: 0,
        }
    }

    /// The scored steps.
    pub(crate) fn steps(&self) -> &ScoredSteps {
        &self.steps
    }

    /// Registers the forecast made at the current origin, replacing the one `h` origins
    /// ago. Returns its slot, or `None` when there is no forecast of `h` steps to score.
    pub(crate) fn record(&mut self, path: Option<&[f64]>) -> Option<usize> {
        let (h, m) = (self.steps.horizon(), self.steps.len());
        let slot = self.next;
        self.next = (self.next + 1) % h;
        match path {
            Some(p) if p.len() >= h => {
                for (j, k) in self.steps.iter() {
                    self.pred[slot * m + j] = p[k] as f32;
                }
                self.page[slot] = 0;
                self.due[slot] = 0;
                self.live[slot] = true;
                Some(slot)
            }
            _ => {
                self.live[slot] = false;
                None
            }
        }
    }

    /// Moves every pending forecast one step on, as an actual arrives: `scored(slot, j,
    /// forecast)` is called for each forecast whose step just arrived is the `j`-th scored
    /// one (at most one per `j`: one origin is at each lead). A forecast whose last step
    /// arrived is done.
    pub(crate) fn advance(&mut self, mut scored: impl FnMut(usize, usize, f64)) {
        let (h, m) = (self.steps.horizon(), self.steps.len());
        for slot in 0..h {
            if !self.live[slot] {
                continue;
            }
            let k = self.page[slot] as usize;
            let j = usize::from(self.due[slot]);
            if self.steps.step(j) == Some(k) {
                // At most MAX_SCORED_STEPS (12), so it fits.
                self.due[slot] = u8::try_from(j + 1).unwrap_or(u8::MAX);
                scored(slot, j, f64::from(self.pred[slot * m + j]));
            }
            self.page[slot] = self.page[slot].saturating_add(1);
            if k + 1 == h {
                self.live[slot] = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_horizon_scores_every_step() {
        let s = ScoredSteps::new(12);
        assert_eq!(
            s.iter().map(|(_, k)| k).collect::<Vec<_>>(),
            (0..12).collect::<Vec<_>>()
        );
        assert_eq!(s.covering(7), 7);
    }

    #[test]
    fn a_long_horizon_scores_twelve_evenly_spaced_steps_ending_at_the_last() {
        let s = ScoredSteps::new(60);
        let steps: Vec<usize> = s.iter().map(|(_, k)| k).collect();
        assert_eq!(steps, vec![4, 9, 14, 19, 24, 29, 34, 39, 44, 49, 54, 59]);
        // Steps 0..=4 use step 4's interval, 5..=9 step 9's, and beyond the horizon the last.
        assert_eq!(s.covering(0), 0);
        assert_eq!(s.covering(5), 1);
        assert_eq!(s.covering(59), 11);
        assert_eq!(s.covering(200), 11);
        // Uneven horizons still end at the last step, and never repeat one.
        for h in 1..200 {
            let s = ScoredSteps::new(h);
            let k: Vec<usize> = s.iter().map(|(_, k)| k).collect();
            assert_eq!(k.last(), Some(&(h - 1)), "h={h}");
            assert!(k.windows(2).all(|w| w[0] < w[1]), "h={h}: {k:?}");
            assert_eq!(k.len(), h.min(MAX_SCORED_STEPS));
        }
    }

    #[test]
    fn each_pending_forecast_is_scored_once_at_each_scored_step_then_done() {
        // A horizon of 24 scores 12 steps: 1, 3, …, 23.
        let h = 24;
        let mut p = Pending::new(h);
        let path: Vec<f64> = (0..h).map(|k| k as f64).collect();
        assert_eq!(p.record(Some(&path)), Some(0));
        assert_eq!(p.record(Some(&path[..h - 1])), None, "too short to score");
        let mut seen = Vec::new();
        for _ in 0..2 * h {
            p.advance(|slot, j, forecast| seen.push((slot, j, forecast)));
        }
        let expected: Vec<(usize, usize, f64)> =
            p.steps().iter().map(|(j, k)| (0, j, k as f64)).collect();
        assert_eq!(seen, expected);
    }
}
