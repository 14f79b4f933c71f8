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

    /// The index of step `k` among the scored ones, if it is scored.
    pub(crate) fn index_of(&self, k: usize) -> Option<usize> {
        self.steps.binary_search(&k).ok()
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
        assert_eq!(s.index_of(7), Some(7));
        assert_eq!(s.covering(7), 7);
    }

    #[test]
    fn a_long_horizon_scores_twelve_evenly_spaced_steps_ending_at_the_last() {
        let s = ScoredSteps::new(60);
        let steps: Vec<usize> = s.iter().map(|(_, k)| k).collect();
        assert_eq!(steps, vec![4, 9, 14, 19, 24, 29, 34, 39, 44, 49, 54, 59]);
        assert_eq!(s.index_of(9), Some(1));
        assert_eq!(s.index_of(10), None);
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
}
