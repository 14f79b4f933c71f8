//! Upper quantiles from the issued forecasts' own out-of-sample errors: split conformal
//! prediction per horizon step, made adaptive with ACI (Gibbs & Candès, "Adaptive
//! conformal inference under distribution shift", 2021).
//!
//! For each scored step k ([`ScoredSteps`]: every step of a horizon of up to 12, else 12
//! evenly spaced ones, and a step between two uses the later one's interval) the last
//! `cap` signed errors e = y − ŷ of the forecasts actually issued are kept (a ring, plus its
//! slots in the order of their errors, so a quantile is one lookup and an update is one
//! binary-search insert and remove). An error is kept to within 0.4 % of itself ([`Bf16`]),
//! so an offset differs from the exact one by at most that, far below a replica, and the
//! ring takes half the memory of `f32` errors. The offset added to the point forecast is the
//! ⌈(1 − αₖ)(n + 1)⌉-th smallest error, the conformal rank. ACI then steers αₖ with the
//! interval's own record: after each scored actual, αₖ ← αₖ + γ(α − missₖ), where α = 1 − q
//! is the miscoverage asked for. Whatever the errors do (drift, level shifts, heavy tails,
//! a model switch), the long-run share of misses is pulled to α: a run of misses widens the
//! interval until they stop, and a run of easy covers narrows it. No distribution is
//! assumed.

use super::steps::ScoredSteps;

/// ACI step size. Gibbs & Candès use 0.005; the coverage error after T scored errors is
/// at most (1 + γ)/(γT) in the worst case and far smaller in practice, and a larger γ
/// makes the interval jumpier. Shared by all workloads, not fitted to any trace.
pub(crate) const ACI_GAMMA: f64 = 0.005;

/// Most errors kept per scored step: what a slot number can address.
const MAX_CAP: usize = u16::MAX as usize + 1;

/// Per-step residual windows, adaptive levels and the pending issued forecasts.
#[derive(Debug, Clone)]
pub(crate) struct Conformal {
    steps: ScoredSteps,
    cap: usize,
    /// The asked miscoverage, 1 − q.
    alpha: f64,
    gamma: f64,
    min_count: usize,
    /// Current adaptive miscoverage per scored step.
    level: Vec<f64>,
    /// Ring of errors per scored step (`cap` slots each); `head[j]` is the next slot.
    ring: Vec<Bf16>,
    head: Vec<usize>,
    /// Per scored step, the filled slots of its ring ordered by their errors: a quantile is
    /// one lookup. Slot numbers (`u16`, so `cap` ≤ [`MAX_CAP`]) take half the memory of a
    /// sorted copy of the errors, the largest part of a workload's forecast state.
    order: Vec<Vec<u16>>,
    // Pending issued forecasts at the scored steps, one slot per origin modulo h: the point
    // forecast and the offset that was issued with it (NaN: none), so each actual can be
    // judged covered.
    // (`f32`, as the errors are.)
    pred: Vec<f32>,
    used: Vec<f32>,
    page: Vec<usize>,
    plive: Vec<bool>,
    next: usize,
}

impl Conformal {
    /// Intervals for `h` steps at quantile `q`, from the last `cap` errors per step, trusted
    /// once `min_count` errors of a step are known.
    pub(crate) fn new(h: usize, cap: usize, q: f64, min_count: usize) -> Self {
        let steps = ScoredSteps::new(h);
        let (h, m) = (steps.horizon(), steps.len());
        let cap = cap.clamp(1, MAX_CAP);
        let alpha = (1.0 - q).clamp(0.0, 1.0);
        Self {
            steps,
            cap,
            alpha,
            gamma: ACI_GAMMA,
            min_count: min_count.max(1),
            level: vec![alpha; m],
            ring: Vec::new(),
            head: vec![0; m],
            order: vec![Vec::new(); m],
            pred: vec![0.0; h * m],
            used: vec![f32::NAN; h * m],
            page: vec![0; h],
            plive: vec![false; h],
            next: 0,
        }
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        *self = Self::new(
            self.steps.horizon(),
            self.cap,
            1.0 - self.alpha,
            self.min_count,
        );
    }

    /// The fewest errors of a step before its offset is trusted.
    pub(crate) fn min_count(&self) -> usize {
        self.min_count
    }

    /// Errors known for step `k`'s interval.
    #[cfg(test)]
    pub(crate) fn count(&self, k: usize) -> usize {
        self.order.get(self.steps.covering(k)).map_or(0, Vec::len)
    }

    /// The adaptive offset of step `k` (0-based) for the configured quantile, if calibrated.
    pub(crate) fn offset(&self, k: usize) -> Option<f64> {
        self.scored_offset(self.steps.covering(k))
    }

    /// The adaptive offset of the `j`-th scored step.
    fn scored_offset(&self, j: usize) -> Option<f64> {
        self.offset_of(j, 1.0 - self.level.get(j).copied()?)
    }

    /// The offset of step `k` for a fixed `level` (a quantile other than the configured
    /// one: plain split conformal, no adaptation).
    pub(crate) fn offset_at(&self, k: usize, level: f64) -> Option<f64> {
        self.offset_of(self.steps.covering(k), level)
    }

    /// The `j`-th scored step's offset at `level`.
    fn offset_of(&self, j: usize, level: f64) -> Option<f64> {
        let col = self.order.get(j)?;
        let n = col.len();
        if n < self.min_count || !level.is_finite() {
            return None;
        }
        // ⌈level·(n+1)⌉-th smallest; above the largest error the interval would be
        // unbounded, which cannot be provisioned: the largest error is used, and ACI keeps
        // counting the misses until the level comes back.
        let rank = (level * (n + 1) as f64).ceil();
        let rank = if rank < 1.0 {
            1
        } else {
            (rank as usize).min(n)
        };
        let slot = j * self.cap + usize::from(*col.get(rank - 1)?);
        self.ring.get(slot).map(|&v| f64::from(v.get()))
    }

    /// Registers the forecast issued at the current origin (`None`: none was issued).
    pub(crate) fn record(&mut self, path: Option<&[f64]>) {
        let (h, m) = (self.steps.horizon(), self.steps.len());
        let slot = self.next;
        self.next = (self.next + 1) % h;
        match path {
            Some(p) if p.len() >= h => {
                for (j, k) in self.steps.iter() {
                    self.pred[slot * m + j] = p[k] as f32;
                    self.used[slot * m + j] = self.scored_offset(j).map_or(f32::NAN, |v| v as f32);
                }
                self.page[slot] = 0;
                self.plive[slot] = true;
            }
            _ => self.plive[slot] = false,
        }
    }

    /// Scores the pending issued forecasts against the sample that just arrived.
    pub(crate) fn actual(&mut self, y: Option<f64>) {
        let (h, m) = (self.steps.horizon(), self.steps.len());
        for slot in 0..h {
            if !self.plive[slot] {
                continue;
            }
            let k = self.page[slot];
            if let (Some(v), Some(j)) = (y, self.steps.index_of(k)) {
                let e = v - f64::from(self.pred[slot * m + j]);
                if e.is_finite() {
                    let used = f64::from(self.used[slot * m + j]);
                    if used.is_finite() {
                        let miss = if e > used { 1.0 } else { 0.0 };
                        // Bounded so a long calm spell cannot bank unlimited slack.
                        self.level[j] =
                            (self.level[j] + self.gamma * (self.alpha - miss)).clamp(-1.0, 1.0);
                    }
                    self.push(j, e as f32);
                }
            }
            self.page[slot] = k + 1;
            if k + 1 == h {
                self.plive[slot] = false;
            }
        }
    }

    fn push(&mut self, k: usize, e: f32) {
        if !e.is_finite() {
            return;
        }
        if self.ring.is_empty() {
            self.ring = vec![Bf16::default(); self.steps.len() * self.cap];
            // Exactly the window: growing by doubling would leave a quarter unused.
            for col in &mut self.order {
                col.reserve_exact(self.cap);
            }
        }
        let (Some(ring), Some(col), Some(head)) = (
            self.ring.get_mut(k * self.cap..(k + 1) * self.cap),
            self.order.get_mut(k),
            self.head.get_mut(k),
        ) else {
            return;
        };
        let slot = *head;
        if col.len() == self.cap {
            // The oldest error leaves: its slot is among those of the errors equal to it.
            let old = ring[slot];
            let from = col.partition_point(|&s| ring[usize::from(s)].key() < old.key());
            if let Some(at) = col[from..].iter().position(|&s| usize::from(s) == slot) {
                col.remove(from + at);
            }
        }
        let e = Bf16::new(e);
        ring[slot] = e;
        let at = col.partition_point(|&s| ring[usize::from(s)].key() < e.key());
        // `slot` < `cap` ≤ MAX_CAP, so it fits.
        col.insert(at, slot as u16);
        *head = (slot + 1) % self.cap;
    }
}

/// A finite `f32` kept as its upper 16 bits (bfloat16: the same range, an 8-bit
/// significand), rounded to nearest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bf16(u16);

impl Bf16 {
    fn new(v: f32) -> Self {
        let bits = v.to_bits();
        let rounded = bits.wrapping_add(0x7FFF + ((bits >> 16) & 1)) >> 16;
        // Rounding up past the largest finite value would give infinity: truncate instead.
        let rounded = if f32::from_bits(rounded << 16).is_finite() {
            rounded
        } else {
            bits >> 16
        };
        Self(rounded as u16)
    }

    fn get(self) -> f32 {
        f32::from_bits(u32::from(self.0) << 16)
    }

    /// A key whose order is `f32::total_cmp`'s order of the values (−0 before +0).
    fn key(self) -> u16 {
        if self.0 & 0x8000 != 0 {
            !self.0
        } else {
            self.0 | 0x8000
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random uniform in [0, 1).
    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn offset_is_the_conformal_rank_of_the_errors() {
        let mut c = Conformal::new(1, 100, 0.5, 1);
        for e in [3.0, 1.0, 2.0] {
            c.record(Some(&[0.0]));
            c.actual(Some(e));
        }
        assert_eq!(c.count(0), 3);
        // ⌈0.5 · 4⌉ = 2nd smallest of {1, 2, 3}.
        assert_eq!(c.offset_at(0, 0.5), Some(2.0));
        assert_eq!(c.offset_at(0, 0.99), Some(3.0));
    }

    #[test]
    fn forgets_the_oldest_errors() {
        let mut c = Conformal::new(1, 3, 0.5, 1);
        for e in [100.0, 1.0, 2.0, 3.0] {
            c.record(Some(&[0.0]));
            c.actual(Some(e));
        }
        assert_eq!(c.count(0), 3);
        assert_eq!(c.offset_at(0, 0.99), Some(3.0));
    }

    /// With ties, negative zeros and a full window, every offset is the rank of the last
    /// `cap` errors, as a plain sort of a bounded queue of them gives it.
    #[test]
    fn offsets_match_a_sort_of_the_last_errors() {
        let mut seed = 3;
        for cap in [1, 2, 5, 40] {
            let mut c = Conformal::new(1, cap, 0.9, 1);
            let mut last = std::collections::VecDeque::new();
            for _ in 0..400 {
                // Few distinct values, so most errors tie with others in the window.
                let e = match (lcg(&mut seed) * 6.0) as u32 {
                    0 => -0.0,
                    1 => 0.0,
                    k => f64::from(k) - 3.0,
                };
                c.record(Some(&[0.0]));
                c.actual(Some(e));
                if last.len() == cap {
                    last.pop_front();
                }
                last.push_back(e as f32);
                let mut sorted: Vec<f32> = last.iter().copied().collect();
                sorted.sort_by(f32::total_cmp);
                for level in [0.05, 0.5, 0.9, 0.99] {
                    let rank = ((level * (sorted.len() + 1) as f64).ceil() as usize)
                        .clamp(1, sorted.len());
                    let want = f64::from(sorted[rank - 1]);
                    let got = c.offset_at(0, level).unwrap();
                    assert_eq!(got.to_bits(), want.to_bits(), "cap {cap} level {level}");
                }
            }
        }
    }

    /// Kept errors are within 0.4 % of the errors, ordered as the errors are, and the extremes
    /// stay finite.
    #[test]
    fn errors_are_kept_within_0_4_percent_and_in_their_order() {
        let mut seed = 5;
        let mut values: Vec<f32> = (0..2000)
            .map(|_| ((lcg(&mut seed) - 0.5) * 10f64.powf(lcg(&mut seed) * 12.0 - 6.0)) as f32)
            .collect();
        values.extend([0.0, -0.0, f32::MAX, f32::MIN, f32::MIN_POSITIVE, 1.0, -1.0]);
        for &v in &values {
            let b = Bf16::new(v);
            assert!(b.get().is_finite(), "{v}");
            assert!(
                (b.get() - v).abs() <= v.abs() / 256.0,
                "{v} kept as {}",
                b.get()
            );
        }
        for a in &values {
            for b in values.iter().take(50) {
                let (x, y) = (Bf16::new(*a), Bf16::new(*b));
                assert_eq!(
                    x.key().cmp(&y.key()),
                    x.get().total_cmp(&y.get()),
                    "{a} {b}"
                );
            }
        }
    }

    /// After a jump in the noise scale the fixed-level quantile of a long window lags;
    /// ACI restores the asked coverage on the new regime.
    #[test]
    fn adapts_to_a_change_of_scale() {
        let mut seed = 9;
        let mut c = Conformal::new(1, 2000, 0.9, 20);
        let (mut covered, mut total) = (0usize, 0usize);
        for t in 0..8000 {
            let scale = if t < 4000 { 1.0 } else { 3.0 };
            let y = scale * (lcg(&mut seed) - 0.5);
            c.record(Some(&[0.0]));
            if t >= 4000
                && let Some(off) = c.offset(0)
            {
                total += 1;
                covered += usize::from(y <= off);
            }
            c.actual(Some(y));
        }
        let share = covered as f64 / total as f64;
        assert!((0.88..=0.92).contains(&share), "coverage {share}");
    }
}
