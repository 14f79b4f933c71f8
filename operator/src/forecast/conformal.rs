//! Upper quantiles from the issued forecasts' own out-of-sample errors: split conformal
//! prediction per horizon step, made adaptive with ACI (Gibbs & Candès, "Adaptive
//! conformal inference under distribution shift", 2021).
//!
//! For each scored step k ([`super::steps::ScoredSteps`]: every step of a horizon of up
//! to 12, else 12 evenly spaced ones, and a step between two uses the later one's interval)
//! the last `cap` signed errors e = y − ŷ of the forecasts actually issued are kept in a ring, and
//! nothing else: no sorted index, which would double the memory, the largest part of a
//! workload's forecast state. The adaptive quantile is found after each actual by a cursor
//! moved from where it was (the rank moves a few places a step), a quantile at another
//! level by two counting passes over the ring. An error is kept to within 0.4 % of itself
//! ([`Bf16`]), so an offset differs from the exact one by at most that, far below a replica,
//! and the ring takes half the memory of `f32` errors. The offset added to the point
//! forecast is the ⌈(1 − αₖ)(n + 1)⌉-th smallest error, the conformal rank. ACI then steers
//! αₖ with the interval's own record: after each scored actual, αₖ ← αₖ + γ(α − missₖ),
//! where α = 1 − q is the miscoverage asked for. Whatever the errors do (drift, level shifts, heavy tails,
//! a model switch), the long-run share of misses is pulled to α: a run of misses widens the
//! interval until they stop, and a run of easy covers narrows it. No distribution is
//! assumed.

use super::steps::{MAX_SCORED_STEPS, Pending};

/// ACI step size. Gibbs & Candès use 0.005; the coverage error after T scored errors is
/// at most (1 + γ)/(γT) in the worst case and far smaller in practice, and a larger γ
/// makes the interval jumpier. Shared by all workloads, not fitted to any trace.
pub(crate) const ACI_GAMMA: f64 = 0.005;

/// Most errors kept per scored step, whatever window a spec asks for: 128 KiB per step.
const MAX_CAP: usize = u16::MAX as usize + 1;

/// Per-step residual windows, adaptive levels and the pending issued forecasts.
#[derive(Debug, Clone)]
pub(crate) struct Conformal {
    cap: usize,
    /// The asked miscoverage, 1 − q.
    alpha: f64,
    gamma: f64,
    min_count: usize,
    /// Current adaptive miscoverage per scored step.
    level: Vec<f64>,
    /// Ring of errors per scored step (`cap` slots each); `head[j]` is the next slot and
    /// `filled[j]` how many slots hold an error (the first ones, until the ring is full).
    ring: Vec<Bf16>,
    head: Vec<usize>,
    filled: Vec<usize>,
    /// The adaptive offset per scored step (NaN: not calibrated), selected once after each
    /// actual changes a step's errors or level: the issued record and every forecast read it.
    offsets: Vec<f32>,
    /// Per scored step, where its adaptive offset was last found, kept up to date as errors
    /// come and go.
    cursor: Vec<Cursor>,
    /// The pending issued forecasts at the scored steps.
    pending: Pending,
    /// Per pending slot and scored step, the offset issued with the forecast (NaN: none), so
    /// each actual can be judged covered (`f32`, as the errors are).
    used: Vec<f32>,
}

impl Conformal {
    /// Intervals for `h` steps at quantile `q`, from the last `cap` errors per step, trusted
    /// once `min_count` errors of a step are known.
    pub(crate) fn new(h: usize, cap: usize, q: f64, min_count: usize) -> Self {
        let pending = Pending::new(h);
        let (h, m) = (pending.steps().horizon(), pending.steps().len());
        let cap = cap.clamp(1, MAX_CAP);
        let alpha = (1.0 - q).clamp(0.0, 1.0);
        Self {
            cap,
            alpha,
            gamma: ACI_GAMMA,
            min_count: min_count.max(1),
            level: vec![alpha; m],
            ring: Vec::new(),
            head: vec![0; m],
            filled: vec![0; m],
            offsets: vec![f32::NAN; m],
            cursor: vec![Cursor::default(); m],
            pending,
            used: vec![f32::NAN; h * m],
        }
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        *self = Self::new(
            self.pending.steps().horizon(),
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
        self.filled
            .get(self.pending.steps().covering(k))
            .copied()
            .unwrap_or(0)
    }

    /// The adaptive offset of step `k` (0-based) for the configured quantile, if calibrated.
    pub(crate) fn offset(&self, k: usize) -> Option<f64> {
        self.scored_offset(self.pending.steps().covering(k))
    }

    /// The adaptive offset of the `j`-th scored step.
    fn scored_offset(&self, j: usize) -> Option<f64> {
        let v = *self.offsets.get(j)?;
        v.is_finite().then_some(f64::from(v))
    }

    /// The offset of step `k` for a fixed `level` (a quantile other than the configured
    /// one: plain split conformal, no adaptation).
    pub(crate) fn offset_at(&self, k: usize, level: f64) -> Option<f64> {
        self.offset_of(self.pending.steps().covering(k), level)
    }

    /// The `j`-th scored step's offset at `level`.
    fn offset_of(&self, j: usize, level: f64) -> Option<f64> {
        let errors = self.errors(j)?;
        let rank = self.rank(errors.len(), level)?;
        nth_smallest(errors, rank).map(|c| f64::from(Bf16::from_key(c.key).get()))
    }

    /// The errors the `j`-th scored step holds, in ring order.
    fn errors(&self, j: usize) -> Option<&[Bf16]> {
        let n = *self.filled.get(j)?;
        self.ring.get(j * self.cap..j * self.cap + n)
    }

    /// Registers the forecast issued at the current origin (`None`: none was issued).
    pub(crate) fn record(&mut self, path: Option<&[f64]>) {
        let m = self.pending.steps().len();
        if let Some(slot) = self.pending.record(path) {
            for (used, offset) in self.used[slot * m..(slot + 1) * m]
                .iter_mut()
                .zip(&self.offsets)
            {
                *used = if offset.is_finite() {
                    *offset
                } else {
                    f32::NAN
                };
            }
        }
    }

    /// Scores the pending issued forecasts against the sample that just arrived.
    pub(crate) fn actual(&mut self, y: Option<f64>) {
        let Some(v) = y else {
            self.pending.advance(|_, _, _| {});
            return;
        };
        let m = self.pending.steps().len();
        // Each scored step gets at most one error per actual (one origin is at each lead):
        // the error and the offset issued with its forecast.
        let mut arrived = [None; MAX_SCORED_STEPS];
        let used = &self.used;
        self.pending.advance(|slot, j, forecast| {
            if let Some(a) = arrived.get_mut(j) {
                *a = Some((v - forecast, f64::from(used[slot * m + j])));
            }
        });
        let mut changed = [false; MAX_SCORED_STEPS];
        for (j, (e, used)) in arrived
            .into_iter()
            .enumerate()
            .filter_map(|(j, a)| Some((j, a?)))
        {
            if !e.is_finite() {
                continue;
            }
            if used.is_finite() {
                let miss = if e > used { 1.0 } else { 0.0 };
                // Held within [−γ, 1 + γ], where ACI's own dynamics keep it: below 0 its
                // interval is unbounded and cannot miss. Ours stops at the largest error,
                // which can, so without the bound a burst of misses would wind the level
                // down further than the offset can follow, and the interval would stay at the
                // largest error for as long again after the burst (integrator windup).
                self.level[j] = (self.level[j] + self.gamma * (self.alpha - miss))
                    .clamp(-self.gamma, 1.0 + self.gamma);
            }
            self.push(j, e as f32);
            changed[j] = true;
        }
        for (j, _) in changed.iter().enumerate().filter(|(_, c)| **c) {
            let offset = self.adaptive_offset(j);
            if let Some(o) = self.offsets.get_mut(j) {
                *o = offset.map_or(f32::NAN, |v| v.get());
            }
        }
    }

    /// The `j`-th scored step's offset at its adaptive level, found by moving its cursor
    /// from where it was to the conformal rank. The rank moves a few places a step (one
    /// error in, one out, and a level change of γ), so this is a pass or two over the ring
    /// where a fresh selection ([`nth_smallest`]) is two passes with histograms.
    fn adaptive_offset(&mut self, j: usize) -> Option<Bf16> {
        let errors = self.errors(j)?;
        let rank = self.rank(errors.len(), 1.0 - *self.level.get(j)?)?;
        let mut cursor = *self.cursor.get(j)?;
        let offset = cursor.seek(errors, rank);
        self.cursor[j] = cursor;
        Some(offset)
    }

    /// The conformal rank, 1-based, among `n` errors at `level`; `None` until `min_count`.
    fn rank(&self, n: usize, level: f64) -> Option<usize> {
        if n < self.min_count || !level.is_finite() {
            return None;
        }
        // ⌈level·(n+1)⌉-th smallest; above the largest error the interval would be
        // unbounded, which cannot be provisioned: the largest error is used, and ACI keeps
        // counting the misses until the level comes back.
        let rank = (level * (n + 1) as f64).ceil();
        Some(if rank < 1.0 {
            1
        } else {
            (rank as usize).min(n)
        })
    }

    fn push(&mut self, k: usize, e: f32) {
        if !e.is_finite() {
            return;
        }
        if self.ring.is_empty() {
            self.ring = vec![Bf16::default(); self.pending.steps().len() * self.cap];
        }
        let (Some(ring), Some(head), Some(filled), Some(cursor)) = (
            self.ring.get_mut(k * self.cap..(k + 1) * self.cap),
            self.head.get_mut(k),
            self.filled.get_mut(k),
            self.cursor.get_mut(k),
        ) else {
            return;
        };
        let e = Bf16::new(e);
        if *filled == 0 {
            *cursor = Cursor::at(e.key());
        } else {
            // The oldest error, when the ring is full, is the one overwritten.
            if *filled == self.cap {
                cursor.count(ring[*head].key(), false);
            }
            cursor.count(e.key(), true);
        }
        ring[*head] = e;
        *head = (*head + 1) % self.cap;
        *filled = (*filled + 1).min(self.cap);
    }
}

/// A place among one step's errors: a key, and how many errors are below it and equal to it.
#[derive(Debug, Clone, Copy, Default)]
struct Cursor {
    key: u16,
    below: u32,
    equal: u32,
}

impl Cursor {
    /// At the only error there is.
    fn at(key: u16) -> Self {
        Self {
            key,
            below: 0,
            equal: 1,
        }
    }

    /// Counts an error coming in (`true`) or going out.
    fn count(&mut self, key: u16, comes: bool) {
        let n = match key.cmp(&self.key) {
            std::cmp::Ordering::Less => &mut self.below,
            std::cmp::Ordering::Equal => &mut self.equal,
            std::cmp::Ordering::Greater => return,
        };
        *n = if comes {
            n.saturating_add(1)
        } else {
            n.saturating_sub(1)
        };
    }

    /// Moves to the `rank`-th smallest (1-based, ≤ `errors.len()`) of `errors`, the errors
    /// it has counted, and returns it: nothing to do while the rank stays on its value, two
    /// vectorised passes to the next distinct value either side, and a fresh selection for
    /// a longer move (an ACI miss moves the rank by γ·n).
    fn seek(&mut self, errors: &[Bf16], rank: usize) -> Bf16 {
        let rank = rank.clamp(1, errors.len().max(1)) as u32;
        let up = if rank == self.below {
            false
        } else if rank == self.below.saturating_add(self.equal).saturating_add(1) {
            true
        } else {
            if (rank < self.below || rank > self.below.saturating_add(self.equal))
                && let Some(c) = nth_smallest(errors, rank as usize)
            {
                *self = c;
            }
            return Bf16::from_key(self.key);
        };
        // Finite errors never have key 0 or u16::MAX (NaNs'), so those mean none.
        let next = if up {
            errors
                .iter()
                .map(|e| e.key())
                .map(|k| if k > self.key { k } else { u16::MAX })
                .min()
                .filter(|&k| k != u16::MAX)
        } else {
            errors
                .iter()
                .map(|e| e.key())
                .map(|k| if k < self.key { k } else { 0 })
                .max()
                .filter(|&k| k != 0)
        };
        if let Some(key) = next {
            let equal = count_equal(errors, key);
            self.below = if up {
                self.below.saturating_add(self.equal)
            } else {
                self.below.saturating_sub(equal)
            };
            self.key = key;
            self.equal = equal;
        }
        Bf16::from_key(self.key)
    }
}

/// How many of `errors` have `key`, counted in lanes of `u16` (vectorised eight at a time).
fn count_equal(errors: &[Bf16], key: u16) -> u32 {
    errors
        .chunks(u16::MAX as usize)
        .map(|chunk| {
            let n = chunk
                .iter()
                .fold(0u16, |n, e| n + u16::from(e.key() == key));
            u32::from(n)
        })
        .sum()
}

/// The `rank`-th smallest (1-based) of `errors` in `f32::total_cmp` order, by counting: one
/// pass counts the errors per upper byte of their keys, which finds the byte of the answer;
/// a second counts the lower bytes of the errors that share it. Two linear passes and no
/// allocation, exact with ties.
fn nth_smallest(errors: &[Bf16], rank: usize) -> Option<Cursor> {
    if rank == 0 || rank > errors.len() {
        return None;
    }
    let asked = rank as u32;
    // `rank` ≤ errors.len() ≤ MAX_CAP, so the counts fit.
    let within = |counts: &[u32; 256], mut rank: u32| -> (u16, u32) {
        for (byte, &count) in counts.iter().enumerate() {
            if rank <= count {
                return (byte as u16, rank);
            }
            rank -= count;
        }
        (u16::from(u8::MAX), rank)
    };
    let mut upper = [0u32; 256];
    for e in errors {
        upper[usize::from(e.key() >> 8)] += 1;
    }
    let (hi, rank) = within(&upper, rank as u32);
    let mut lower = [0u32; 256];
    for key in errors.iter().map(|e| e.key()).filter(|k| k >> 8 == hi) {
        lower[usize::from(key & 0xFF)] += 1;
    }
    let (lo, rank) = within(&lower, rank);
    Some(Cursor {
        key: hi << 8 | lo,
        below: asked - rank,
        equal: lower[usize::from(lo)],
    })
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
        // Negative: all bits flipped; positive: the sign bit set. Without a branch, so the
        // passes over a ring vectorise.
        let negative = ((self.0 as i16) >> 15) as u16;
        self.0 ^ (negative | 0x8000)
    }

    /// The value whose [`key`](Self::key) is `key`.
    fn from_key(key: u16) -> Self {
        if key & 0x8000 != 0 {
            Self(key & 0x7FFF)
        } else {
            Self(!key)
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

    /// The last `cap` errors in a plain queue: what a conformal offset is checked against.
    struct LastErrors {
        cap: usize,
        errors: std::collections::VecDeque<f32>,
    }

    impl LastErrors {
        fn new(cap: usize) -> Self {
            Self {
                cap,
                errors: std::collections::VecDeque::new(),
            }
        }

        fn push(&mut self, e: f32) {
            if self.errors.len() == self.cap {
                self.errors.pop_front();
            }
            self.errors.push_back(e);
        }

        /// The ⌈level·(n+1)⌉-th smallest (clamped to the errors there are), from a sort.
        fn rank(&self, level: f64) -> f64 {
            let mut sorted: Vec<f32> = self.errors.iter().copied().collect();
            sorted.sort_by(f32::total_cmp);
            let rank = ((level * (sorted.len() + 1) as f64).ceil() as usize).clamp(1, sorted.len());
            f64::from(sorted[rank - 1])
        }
    }

    /// With ties, negative zeros and a full window, every offset is the rank of the last
    /// `cap` errors, as a plain sort of a bounded queue of them gives it.
    #[test]
    fn offsets_match_a_sort_of_the_last_errors() {
        let mut seed = 3;
        for cap in [1, 2, 5, 40] {
            let mut c = Conformal::new(1, cap, 0.9, 1);
            let mut last = LastErrors::new(cap);
            for _ in 0..400 {
                // Few distinct values, so most errors tie with others in the window.
                let e = match (lcg(&mut seed) * 6.0) as u32 {
                    0 => -0.0,
                    1 => 0.0,
                    k => f64::from(k) - 3.0,
                };
                c.record(Some(&[0.0]));
                c.actual(Some(e));
                last.push(e as f32);
                for level in [0.05, 0.5, 0.9, 0.99] {
                    let want = last.rank(level);
                    let got = c.offset_at(0, level).unwrap();
                    assert_eq!(got.to_bits(), want.to_bits(), "cap {cap} level {level}");
                }
            }
        }
    }

    /// The adaptive offset, found by moving a cursor from where it last was, is the
    /// conformal rank at the step's current level among the last `cap` errors, as a sort
    /// of them gives it: through ties, a full window, the short moves of a hit and the long
    /// ones of a miss, and a change of scale.
    #[test]
    fn the_adaptive_offset_is_the_rank_at_the_current_level() {
        let mut seed = 11;
        for cap in [1, 3, 40, 500] {
            let mut c = Conformal::new(1, cap, 0.8, 1);
            let mut last = LastErrors::new(cap);
            for t in 0..3000 {
                let e = if t % 700 < 350 {
                    f64::from((lcg(&mut seed) * 8.0) as u32) - 4.0
                } else {
                    (lcg(&mut seed) - 0.3) * (1.0 + f64::from(t) / 100.0)
                };
                c.record(Some(&[0.0]));
                c.actual(Some(e));
                last.push(Bf16::new(e as f32).get());
                let want = last.rank(1.0 - c.level[0]);
                let got = c.offset(0).unwrap();
                assert_eq!(got.to_bits(), want.to_bits(), "cap {cap} t {t}");
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
            assert_eq!(Bf16::from_key(b.key()), b, "{v}");
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

    /// A burst of misses, each error a new largest one (a demand spike climbing faster
    /// than any forecast), takes the interval to the largest error; once the burst is over,
    /// the interval comes back as soon as the burst's errors are a smaller share of the
    /// window than the asked miscoverage, not after as many calm steps again as the misses
    /// wound the level down. The calm steps that takes: the level climbs γα a covered step,
    /// from where ACI's own dynamics bound it (−γ) to the burst's share of the window.
    #[test]
    fn after_a_burst_of_misses_the_interval_comes_back_within_the_steps_aci_needs() {
        let (cap, burst, q) = (4000, 40, 0.95);
        let mut c = Conformal::new(1, cap, q, 20);
        let mut seed = 13;
        let mut calm = || 2.0 * lcg(&mut seed) - 1.0;
        let step = |c: &mut Conformal, e: f64| {
            c.record(Some(&[0.0]));
            c.actual(Some(e));
        };
        for _ in 0..cap {
            step(&mut c, calm());
        }
        assert!(c.offset(0).is_some_and(|o| o <= 1.0), "{:?}", c.offset(0));
        for k in 0..burst {
            step(&mut c, 100.0 + 10.0 * k as f64);
        }
        assert!(c.offset(0).is_some_and(|o| o >= 100.0), "{:?}", c.offset(0));
        let alpha = 1.0 - q;
        let needed =
            ((burst as f64 / cap as f64 + ACI_GAMMA) / (ACI_GAMMA * alpha)).ceil() as usize;
        let mut back_after = None;
        for k in 0..cap {
            step(&mut c, calm());
            if c.offset(0).is_some_and(|o| o <= 1.0) {
                back_after = Some(k + 1);
                break;
            }
        }
        let back_after = back_after.expect("the interval never came back");
        assert!(
            back_after <= needed + 5,
            "back after {back_after} calm steps, ACI needs {needed}"
        );
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
