//! Demand history: metrics-server keeps none, so the operator keeps its own, aggregated to a
//! fixed step, bounded to the forecast's history window, and persisted on the management
//! cluster so a restart resumes with what it had.
//!
//! Samples within one step are averaged; steps with no sample stay missing (NaN), which the
//! forecast treats as gaps rather than as zero demand.
//!
//! Held in two bytes a step ([`PackedMillicores`]) in a ring that never grows past the
//! window: a week of 1-minute steps is 20 KB per workload, where `f32` took 40 KB and an `f64`
//! vector doubling past its window 160 KB. A step is kept in millicores, as the stored form
//! keeps it: exactly below 2 cores, and within 0.025 % above, so a restart resumes the
//! history the operator had, to that.
//!
//! # Stored form, and why it is bounded
//!
//! The history is stored in a ConfigMap, and etcd refuses objects over 1 MiB, while the
//! longest window the CRD allows at a fine step is long (90 days of 5 s steps is 1.5 million
//! samples). So [`DemandHistory::encode`] never writes more than [`MAX_STORED_SAMPLES`] values:
//!
//! - `v1 <step> <start> <v,v,,v>`: every step, in millicores, an empty field for a gap; used
//!   whenever the series fits.
//! - `v2 <step> <start> <k> <coarse>;<recent>`: the [`RECENT_EXACT`] most recent steps exactly,
//!   and the older ones averaged `k` steps to a value (gaps ignored; a bucket with no
//!   measurement stays a gap), with `k` the smallest factor that fits the budget. The oldest
//!   `< k` steps that do not fill a bucket are dropped. Decoding repeats each coarse value `k`
//!   times, so the history comes back at the configured step: the recent part exact, the older
//!   part as its `k`-step means (a forecaster fitting a daily season loses little from
//!   minutes-wide plateaus weeks ago).
//!
//! Values are at most [`MAX_CORES`] (12 characters each), so an encoded history is at most
//! about 150 KiB whatever the window and step.
//!
//! # Stored history is untrusted
//!
//! The ConfigMap sits in the tenant's namespace. Decoding refuses (with a [`HistoryError`])
//! text over [`MAX_ENCODED_BYTES`], an unknown version, a step other than the configured one,
//! negative or implausible values, a start outside plausible unix time or in the future of
//! `now`; it never allocates more than the capacity (older values beyond it are skipped, the
//! newest kept), and a start far in the past costs nothing: a gap longer than the window
//! empties the history instead of filling it with gaps step by step.

/// Most bytes of stored history read back; more is refused before parsing.
pub const MAX_ENCODED_BYTES: usize = 256 * 1024;
/// Most values [`DemandHistory::encode`] writes; longer series are compacted.
pub const MAX_STORED_SAMPLES: usize = 12_000;
/// Most recent steps a compacted encoding keeps exactly.
pub const RECENT_EXACT: usize = 6_000;
/// Highest demand recorded or believed, in cores: ten thousand replicas of a thousand cores.
pub const MAX_CORES: f64 = 10_000_000.0;
/// How far ahead of a measurement the history may end before it is dropped as from the future.
pub const FUTURE_TOLERANCE_SECS: i64 = 600;
/// Latest plausible unix time a history may start at (about the year 3000).
pub const MAX_START: i64 = 32_503_680_000;

/// Why stored history could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    #[error("stored demand history is malformed: {0}")]
    Malformed(String),
    #[error("stored demand history is {0} bytes, more than the {MAX_ENCODED_BYTES} allowed")]
    TooLarge(usize),
    #[error(
        "stored demand history has a step of {stored}s, not the {expected}s the operator records at"
    )]
    StepMismatch { stored: i64, expected: i64 },
    #[error("stored demand history starts at unix time {start}, which is implausible")]
    ImplausibleStart { start: i64 },
    #[error("stored demand history ends at unix time {end}, after now ({now})")]
    FromTheFuture { end: i64, now: i64 },
    #[error("stored demand history holds an implausible value {0:?}: values are millicores between 0 and {max}", max = MAX_CORES * 1000.0)]
    ImplausibleValue(String),
}

use std::collections::VecDeque;

/// Demand in CPU cores, one value per step.
#[derive(Debug, Clone, PartialEq)]
pub struct DemandHistory {
    /// Seconds per value.
    pub step_secs: i64,
    /// Unix time (seconds) at which the first value's step starts.
    pub start: i64,
    /// Finished steps, oldest first; a gap where nothing was measured.
    values: VecDeque<PackedMillicores>,
    /// Most steps kept; older ones are dropped.
    pub capacity: usize,
    current: Option<(i64, f64, u32)>,
}

impl DemandHistory {
    /// An empty history of `capacity` steps of `step_secs` seconds.
    pub fn new(step_secs: i64, capacity: usize) -> Self {
        Self {
            step_secs: step_secs.max(1),
            start: 0,
            values: VecDeque::new(),
            capacity: capacity.max(1),
            current: None,
        }
    }

    /// How many finished steps are held (gaps included), at most the capacity.
    pub fn finished_steps(&self) -> usize {
        self.values.len()
    }

    /// Heap bytes the finished steps take (two a step of what is allocated).
    pub fn held_bytes(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<PackedMillicores>()
    }

    /// Records a measurement of `cores` at unix time `at`. Measurements older than the
    /// current step are ignored: history only moves forward.
    pub fn record(&mut self, at: i64, cores: f64) {
        if !cores.is_finite() || cores < 0.0 {
            return;
        }
        let cores = cores.min(MAX_CORES);
        let bucket = at.div_euclid(self.step_secs);
        // A late measurement is ignored, but finished steps well ahead of it (more than
        // [`FUTURE_TOLERANCE_SECS`] or two steps) come from a clock that was wrong or a stored
        // history that lies: believing them would stop recording until they are reached.
        let tolerance = (FUTURE_TOLERANCE_SECS / self.step_secs).max(2);
        if self
            .end_bucket()
            .is_some_and(|end| end > bucket.saturating_add(tolerance))
        {
            self.values.clear();
            self.current = None;
        }
        match self.current {
            Some((b, sum, n)) if b == bucket => self.current = Some((b, sum + cores, n + 1)),
            Some((b, _, _)) if bucket < b => {}
            _ => {
                self.finish_current(bucket);
                self.current = Some((bucket, cores, 1));
            }
        }
    }

    /// The step after the last finished one, when there is one.
    fn end_bucket(&self) -> Option<i64> {
        (!self.values.is_empty())
            .then(|| (self.start / self.step_secs).saturating_add(self.values.len() as i64))
    }

    /// Closes the current step and fills skipped steps up to `next_bucket` with gaps.
    fn finish_current(&mut self, next_bucket: i64) {
        let Some((b, sum, n)) = self.current.take() else {
            return;
        };
        // A gap longer than the whole window leaves nothing of what came before it.
        if self
            .end_bucket()
            .is_some_and(|end| b.saturating_sub(end) >= self.capacity as i64)
        {
            self.values.clear();
        }
        if self.values.is_empty() {
            self.start = b * self.step_secs;
        }
        let expected = self.start / self.step_secs + self.values.len() as i64;
        for _ in expected..b {
            self.push(f64::NAN);
        }
        if b >= expected {
            self.push(sum / f64::from(n));
        }
        let gaps = (next_bucket - b - 1).clamp(0, self.capacity as i64);
        for _ in 0..gaps {
            self.push(f64::NAN);
        }
    }

    /// Appends one finished step, dropping the oldest when the window is full. Grows by
    /// doubling up to the window, never past it.
    fn push(&mut self, cores: f64) {
        if self.values.len() >= self.capacity {
            self.values.pop_front();
            self.start += self.step_secs;
        }
        let len = self.values.len();
        if len == self.values.capacity() {
            let want = len.saturating_mul(2).max(64).min(self.capacity);
            self.values.reserve_exact(want.saturating_sub(len));
        }
        self.values.push_back(PackedMillicores::new(cores));
    }

    fn trim(&mut self) {
        if self.values.len() > self.capacity {
            let drop = self.values.len() - self.capacity;
            self.values.drain(..drop);
            self.start += drop as i64 * self.step_secs;
        }
    }

    /// Finished step `i` (0 = oldest kept) as `f64`; NaN past the end.
    pub fn value(&self, i: usize) -> f64 {
        self.values.get(i).map_or(f64::NAN, |v| v.cores())
    }

    /// The finished steps plus the current one (its mean so far), oldest first.
    pub fn series(&self) -> Vec<f64> {
        let mut out: Vec<f64> = self.values.iter().map(|v| v.cores()).collect();
        if let Some((b, sum, n)) = self.current {
            let expected = if out.is_empty() {
                b
            } else {
                self.start / self.step_secs + out.len() as i64
            };
            if b.saturating_sub(expected) >= self.capacity as i64 {
                // What came before is older than the window (see `finish_current`).
                out.clear();
            } else {
                for _ in expected..b {
                    out.push(f64::NAN);
                }
            }
            out.push(sum / f64::from(n));
        }
        out
    }

    /// Unix time the series of [`series`](Self::series) starts at.
    fn series_start(&self) -> i64 {
        match self.current {
            Some((b, _, _))
                if self.values.is_empty()
                    || b.saturating_sub(self.end_bucket().unwrap_or(b)) >= self.capacity as i64 =>
            {
                b * self.step_secs
            }
            _ => self.start,
        }
    }

    /// Whether the current step is so far past the finished ones that [`series`](Self::series)
    /// starts at it: what came before is older than the window.
    fn current_starts_over(&self) -> bool {
        matches!(
            (self.current, self.end_bucket()),
            (Some((b, _, _)), Some(end)) if b.saturating_sub(end) >= self.capacity as i64
        )
    }

    /// Steps of [`series`](Self::series) with a measurement, counted without copying it
    /// (every decision asks, and the series is a week of steps).
    pub fn measured(&self) -> usize {
        let current = usize::from(self.current.is_some());
        if self.current_starts_over() {
            return current;
        }
        self.values.iter().filter(|v| !v.is_gap()).count() + current
    }

    /// The latest measured value of [`series`](Self::series), without copying it.
    pub fn latest(&self) -> Option<f64> {
        if let Some((_, sum, n)) = self.current {
            return Some(sum / f64::from(n.max(1)));
        }
        self.values
            .iter()
            .rev()
            .find(|v| !v.is_gap())
            .map(|v| v.cores())
    }

    /// The text form for a ConfigMap (see the module documentation): `v1` when the series
    /// fits [`MAX_STORED_SAMPLES`], `v2` (compacted) when not. The current step is included,
    /// so a restart loses nothing.
    pub fn encode(&self) -> String {
        let series = self.series();
        let start = self.series_start();
        if series.len() <= MAX_STORED_SAMPLES {
            return format!("v1 {} {} {}", self.step_secs, start, join(&series));
        }
        let recent_from = series.len() - RECENT_EXACT;
        let (older, recent) = series.split_at(recent_from);
        let room = MAX_STORED_SAMPLES - RECENT_EXACT;
        let k = older.len().div_ceil(room).max(2);
        let dropped = older.len() % k;
        let coarse: Vec<f64> = older[dropped..].chunks(k).map(mean_of_finite).collect();
        let start = start + dropped as i64 * self.step_secs;
        format!(
            "v2 {} {} {} {};{}",
            self.step_secs,
            start,
            k,
            join(&coarse),
            join(recent)
        )
    }

    /// Reads what [`encode`](Self::encode) wrote, for a history recorded every `step_secs`
    /// seconds and holding at most `capacity` steps (the newest are kept). `now` (unix
    /// seconds), when given, refuses a history that ends in the future. Allocates at most
    /// `capacity` values whatever the text says.
    pub fn decode(
        text: &str,
        step_secs: i64,
        capacity: usize,
        now: Option<i64>,
    ) -> Result<Self, HistoryError> {
        if text.len() > MAX_ENCODED_BYTES {
            return Err(HistoryError::TooLarge(text.len()));
        }
        let bad = |why: &str| HistoryError::Malformed(why.to_string());
        let capacity = capacity.max(1);
        let step_secs = step_secs.max(1);
        let mut parts = text.trim().splitn(4, ' ');
        let version = parts.next().unwrap_or("");
        if version != "v1" && version != "v2" {
            return Err(bad("unknown version"));
        }
        let stored_step: i64 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .filter(|s| *s > 0)
            .ok_or_else(|| bad("step"))?;
        if stored_step != step_secs {
            return Err(HistoryError::StepMismatch {
                stored: stored_step,
                expected: step_secs,
            });
        }
        let start: i64 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("start"))?;
        if !(0..=MAX_START).contains(&start) {
            return Err(HistoryError::ImplausibleStart { start });
        }
        let rest = parts.next().unwrap_or("");
        let (k, coarse, recent) = if version == "v1" {
            (1, "", rest)
        } else {
            let (k, body) = rest
                .split_once(' ')
                .ok_or_else(|| bad("compaction factor"))?;
            let k: usize = k
                .parse()
                .ok()
                .filter(|k| (2..=capacity).contains(k))
                .ok_or_else(|| bad("compaction factor"))?;
            let (coarse, recent) = body.split_once(';').ok_or_else(|| bad("no ';'"))?;
            (k, coarse, recent)
        };
        let coarse_n = fields(coarse);
        let recent_n = fields(recent);
        // Steps the text stands for; the oldest beyond the capacity are skipped unread.
        let total = coarse_n.saturating_mul(k).saturating_add(recent_n);
        let mut skip = total.saturating_sub(capacity);
        let mut values = VecDeque::with_capacity(total.min(capacity));
        for (field, repeat) in split_fields(coarse)
            .map(|f| (f, k))
            .chain(split_fields(recent).map(|f| (f, 1)))
        {
            let v = parse_value(field)?;
            let keep = repeat.saturating_sub(skip);
            skip = skip.saturating_sub(repeat);
            values.extend(std::iter::repeat_n(PackedMillicores::new(v), keep));
        }
        let start = start
            .checked_add(
                i64::try_from(total - values.len())
                    .ok()
                    .and_then(|n| n.checked_mul(step_secs))
                    .ok_or_else(|| bad("too long"))?,
            )
            .ok_or_else(|| bad("too long"))?;
        // Aligned to the step, as recording would have made it.
        let start = start - start.rem_euclid(step_secs);
        if let Some(now) = now {
            let end = start.saturating_add((values.len() as i64).saturating_mul(step_secs));
            // The current step is stored too, so the end may be one step past now.
            if end > now.saturating_add(step_secs) {
                return Err(HistoryError::FromTheFuture { end, now });
            }
            // Everything older than the window is forgotten now rather than at the next step.
            let window = (capacity as i64).saturating_mul(step_secs);
            if end.saturating_add(window) <= now {
                values.clear();
            }
        }
        let mut h = Self {
            step_secs,
            start,
            values,
            capacity,
            current: None,
        };
        h.trim();
        Ok(h)
    }
}

/// One finished step's demand in two bytes: millicores as a small float with a 5-bit exponent
/// and an 11-bit significand. Below 2 048 m it is the millicores exactly; above, within half
/// a unit in the 12th bit (at most 1/4 096 of the value, 0.025 %), finer than the scrape-to-
/// scrape noise of metrics-server's CPU readings and far below a replica.
/// Up to [`MAX_CORES`] needs exponents up to 24 of 31; the all-ones code is a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PackedMillicores(u16);

impl PackedMillicores {
    const GAP: Self = Self(u16::MAX);
    /// Significand bits kept, the implicit leading one included.
    const PRECISION: u32 = 12;

    /// `cores` (NaN or infinite: a gap), rounded to the nearest representable millicores.
    fn new(cores: f64) -> Self {
        if !cores.is_finite() {
            return Self::GAP;
        }
        let milli = (cores.clamp(0.0, MAX_CORES) * 1000.0).round() as u64;
        if milli < 1 << (Self::PRECISION - 1) {
            return Self(milli as u16);
        }
        let shift = (u64::BITS - milli.leading_zeros()).saturating_sub(Self::PRECISION);
        let half = (1u64 << shift) >> 1;
        let (mut significand, mut exponent) = ((milli + half) >> shift, shift + 1);
        if significand >> Self::PRECISION != 0 {
            // Rounding carried into a new bit.
            significand >>= 1;
            exponent += 1;
        }
        // significand ∈ [2 048, 4 096) and exponent ≤ 24 for anything up to MAX_CORES.
        let low = (significand & 0x7FF) as u16;
        Self(((exponent as u16) << 11) | low)
    }

    fn is_gap(self) -> bool {
        self == Self::GAP
    }

    /// The step's demand in cores; NaN for a gap.
    fn cores(self) -> f64 {
        if self.is_gap() {
            return f64::NAN;
        }
        let (exponent, low) = (u32::from(self.0 >> 11), u64::from(self.0 & 0x7FF));
        let milli = if exponent == 0 {
            low
        } else {
            (low | 0x800) << (exponent - 1)
        };
        milli as f64 / 1000.0
    }
}

/// Values as the stored form writes them: millicores, an empty field for a gap.
fn join(values: &[f64]) -> String {
    let mut out = String::with_capacity(values.len() * 6);
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if v.is_finite() {
            let milli = (v.clamp(0.0, MAX_CORES) * 1000.0).round() as i64;
            out.push_str(&milli.to_string());
        }
    }
    out
}

fn mean_of_finite(chunk: &[f64]) -> f64 {
    let (sum, n) = chunk
        .iter()
        .filter(|v| v.is_finite())
        .fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    if n == 0 { f64::NAN } else { sum / f64::from(n) }
}

/// The fields of a comma-separated list; an empty list has none.
fn split_fields(list: &str) -> impl Iterator<Item = &str> {
    (!list.is_empty())
        .then(|| list.split(','))
        .into_iter()
        .flatten()
}

fn fields(list: &str) -> usize {
    if list.is_empty() {
        0
    } else {
        list.bytes().filter(|&b| b == b',').count() + 1
    }
}

/// One stored value: a gap, or millicores within [`MAX_CORES`].
fn parse_value(field: &str) -> Result<f64, HistoryError> {
    if field.is_empty() {
        return Ok(f64::NAN);
    }
    if !field.bytes().all(|b| b.is_ascii_digit()) {
        return Err(if field.starts_with('-') {
            HistoryError::ImplausibleValue(field.to_string())
        } else {
            HistoryError::Malformed("value".to_string())
        });
    }
    match field.parse::<u64>() {
        Ok(milli) if milli as f64 <= MAX_CORES * 1000.0 => Ok(milli as f64 / 1000.0),
        _ => Err(HistoryError::ImplausibleValue(field.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The measured steps to the millicore (what the stored form keeps; the current step
    /// is `f64`, finished ones [`PackedMillicores`]).
    fn finite(v: &[f64]) -> Vec<Option<f64>> {
        v.iter()
            .map(|x| x.is_finite().then(|| (x * 1000.0).round() / 1000.0))
            .collect()
    }

    #[test]
    fn samples_in_one_step_are_averaged_and_gaps_stay_gaps() {
        let mut h = DemandHistory::new(60, 100);
        h.record(0, 1.0);
        h.record(30, 3.0);
        h.record(60, 4.0);
        h.record(200, 5.0); // steps 2 is missing; 200 falls in step 3
        assert_eq!(
            finite(&h.series()),
            vec![Some(2.0), Some(4.0), None, Some(5.0)]
        );
        assert_eq!(h.measured(), 3);
    }

    #[test]
    fn the_measured_count_and_latest_value_are_those_of_the_series() {
        // Irregular times (gaps, repeats, jumps past the window, late samples), checked
        // after each measurement against the series they stand for.
        let mut seed: u64 = 11;
        let mut h = DemandHistory::new(60, 20);
        let mut t: i64 = 1_000;
        for _ in 0..3_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = seed >> 33;
            t += match r % 10 {
                0 => -120,
                1 => 60 * 25,
                2..=4 => 0,
                _ => 60 * (r % 3) as i64,
            };
            let cores = if r.is_multiple_of(17) {
                f64::NAN
            } else {
                (r % 5000) as f64 / 1000.0
            };
            h.record(t.max(0), cores);
            let series = h.series();
            assert_eq!(
                h.measured(),
                series.iter().filter(|v| v.is_finite()).count()
            );
            assert_eq!(
                h.latest(),
                series.iter().rev().find(|v| v.is_finite()).copied()
            );
        }
    }

    #[test]
    fn history_is_bounded_and_moves_forward_only() {
        let mut h = DemandHistory::new(10, 3);
        for t in 0..10 {
            h.record(t * 10, t as f64);
        }
        h.record(5, 99.0); // out of order: ignored
        let s = h.series();
        assert!(s.len() <= 4, "{s:?}");
        assert_eq!(s.last(), Some(&9.0));
        assert!(!s.contains(&99.0));
    }

    #[test]
    fn encode_decode_round_trips_including_the_current_step() {
        let mut h = DemandHistory::new(60, 100);
        h.record(120, 0.25);
        h.record(180, 1.5);
        h.record(300, 2.0);
        let text = h.encode();
        assert_eq!(text, "v1 60 120 250,1500,,2000");
        let back = DemandHistory::decode(&text, 60, 100, None).unwrap();
        assert_eq!(finite(&back.series()), finite(&h.series()));
        // A restart resumes recording where it stopped.
        let mut resumed = back;
        resumed.record(360, 3.0);
        assert_eq!(
            finite(&resumed.series()),
            vec![Some(0.25), Some(1.5), None, Some(2.0), Some(3.0)]
        );
    }

    #[test]
    fn bad_input_is_refused_not_trusted() {
        let d = |text: &str| DemandHistory::decode(text, 60, 10, Some(1_000_000));
        assert!(d("v3 60 0 1").is_err());
        assert!(d("v1 0 0 1").is_err());
        assert!(d("v1 60 x 1").is_err());
        assert!(d("v1 60 0 1,abc").is_err());
        let mut h = DemandHistory::new(60, 10);
        h.record(0, f64::NAN);
        h.record(0, -1.0);
        assert_eq!(h.measured(), 0);
        assert_eq!(d(&h.encode()).unwrap().series().len(), 0);
    }

    #[test]
    fn implausible_history_is_refused_with_a_reason() {
        let now = 1_700_000_000;
        let d = |text: &str| DemandHistory::decode(text, 60, 100, Some(now));
        assert_eq!(
            d("v1 30 0 1"),
            Err(HistoryError::StepMismatch {
                stored: 30,
                expected: 60
            })
        );
        assert!(matches!(
            d("v1 60 999999999999 1"),
            Err(HistoryError::ImplausibleStart { .. })
        ));
        assert!(matches!(
            d("v1 60 -60 1"),
            Err(HistoryError::ImplausibleStart { .. })
        ));
        assert!(matches!(
            d(&format!("v1 60 {} 1,2", now + 3600)),
            Err(HistoryError::FromTheFuture { .. })
        ));
        assert!(matches!(
            d("v1 60 0 1,-5"),
            Err(HistoryError::ImplausibleValue(_))
        ));
        assert!(matches!(
            d("v1 60 0 99999999999999999999"),
            Err(HistoryError::ImplausibleValue(_))
        ));
        assert!(matches!(d("v1 60 0 1e3"), Err(HistoryError::Malformed(_))));
        assert!(matches!(d("v1 60 0 NaN"), Err(HistoryError::Malformed(_))));
        let big = format!("v1 60 0 {}", "1,".repeat(MAX_ENCODED_BYTES));
        assert_eq!(d(&big), Err(HistoryError::TooLarge(big.len())));
        assert!(matches!(
            d("v2 60 0 1000000 1;2"),
            Err(HistoryError::Malformed(_))
        ));
        assert!(matches!(
            d("v2 60 0 5 1,2"),
            Err(HistoryError::Malformed(_))
        ));
    }

    #[test]
    fn a_start_long_ago_costs_nothing() {
        // Once, `v1 5 0 1000` resumed and then padded every 5 s step since 1970 with a gap.
        let mut h = DemandHistory::decode("v1 5 0 1000", 5, 100, None).unwrap();
        let now = 1_700_000_000;
        h.record(now, 1.0);
        h.record(now + 5, 2.0);
        h.record(now + 10, 3.0);
        assert!(h.finished_steps() <= h.capacity);
        assert_eq!(finite(&h.series()), vec![Some(1.0), Some(2.0), Some(3.0)]);
        // With `now`, decode forgets a history older than the window at once.
        let h = DemandHistory::decode("v1 5 0 1000", 5, 100, Some(now)).unwrap();
        assert_eq!(h.finished_steps(), 0);
    }

    #[test]
    fn a_history_from_the_future_does_not_stop_recording() {
        // Without `now`, decode cannot tell; the first measurement can.
        let mut h = DemandHistory::decode("v1 60 32503600000 1000,2000", 60, 100, None).unwrap();
        h.record(1_700_000_000, 1.5);
        h.record(1_700_000_060, 2.5);
        assert_eq!(finite(&h.series()), vec![Some(1.5), Some(2.5)]);
    }

    /// Two bytes a step: exact millicores below 2 048 m, within 1/4 096 above, in order,
    /// up to the highest demand believed, and a gap stays a gap.
    #[test]
    fn a_packed_step_keeps_its_millicores() {
        let pack = |cores: f64| PackedMillicores::new(cores).cores();
        for milli in 0..5000u32 {
            let cores = f64::from(milli) / 1000.0;
            if milli < 2048 {
                assert_eq!(pack(cores), cores);
            }
            assert!((pack(cores) - cores).abs() <= cores / 4096.0, "{cores}");
        }
        let mut previous = -1.0;
        let mut cores = 0.0005;
        while cores <= MAX_CORES {
            let got = pack(cores);
            let milli = (cores * 1000.0).round() / 1000.0;
            assert!(
                (got - milli).abs() <= milli / 4096.0,
                "{cores} kept as {got}"
            );
            assert!(got >= previous, "{cores} kept as {got}, below {previous}");
            previous = got;
            cores *= 1.0007;
        }
        assert!(pack(MAX_CORES).is_finite());
        assert!((pack(MAX_CORES) - MAX_CORES).abs() <= MAX_CORES / 4096.0);
        assert!(pack(f64::NAN).is_nan());
        assert!(pack(f64::INFINITY).is_nan());
        assert_eq!(pack(-1.0), 0.0);
    }

    #[test]
    fn more_values_than_the_capacity_keep_the_newest() {
        let text = format!(
            "v1 60 0 {}",
            (1..=1000)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        let h = DemandHistory::decode(&text, 60, 10, None).unwrap();
        assert_eq!(h.finished_steps(), 10);
        assert_eq!(h.value(9), 1.0);
        assert_eq!(h.value(0), 0.991);
        assert_eq!(h.start, 990 * 60);
    }

    fn filled(step: i64, capacity: usize, cores: impl Fn(usize) -> f64) -> DemandHistory {
        let mut h = DemandHistory::new(step, capacity);
        let t0 = 1_700_000_000 - 1_700_000_000 % step;
        for i in 0..capacity {
            h.record(t0 + i as i64 * step, cores(i));
        }
        h
    }

    #[test]
    fn the_largest_window_at_the_smallest_step_stays_small() {
        // 90 days (the CRD's limit) of 5 s steps: 1.5 million samples, at the highest
        // demand believed, with every digit used.
        let step = 5;
        let capacity = (crate::api::limits::MAX_HISTORY_SECS / step as u64) as usize;
        let h = filled(step, capacity, |i| MAX_CORES - (i % 7) as f64 * 0.001);
        let text = h.encode();
        assert!(text.len() < 256 * 1024, "{} bytes", text.len());
        assert!(text.starts_with("v2 5 "));
        let back = DemandHistory::decode(&text, step, capacity, None).unwrap();
        let (a, b) = (h.series(), back.series());
        assert!(
            b.len() <= capacity && b.len() + 1000 > a.len(),
            "{} of {}",
            b.len(),
            a.len()
        );
        // The recent part is exact to what a finished step holds: twelve significant bits,
        // which at ten million cores is a couple of kilocores, not a millicore.
        for (x, y) in a[a.len() - RECENT_EXACT..]
            .iter()
            .zip(&b[b.len() - RECENT_EXACT..])
        {
            assert!((x - y).abs() <= x.abs() / 4096.0, "{x} vs {y}");
        }
    }

    #[test]
    fn compaction_keeps_recent_data_exact_and_older_data_as_means() {
        let step = 60;
        let capacity = 50_000;
        // Whole millicores (below 2 cores, so a finished step keeps them exactly, as the
        // current one does), a daily-ish cycle, and some gaps.
        let h = filled(step, capacity, |i| {
            if i % 97 == 0 {
                f64::NAN
            } else {
                (i % 1440) as f64 / 1000.0
            }
        });
        let text = h.encode();
        assert!(text.starts_with("v2 60 "));
        let back = DemandHistory::decode(&text, step, capacity, None).unwrap();
        let (a, b) = (h.series(), back.series());
        assert_eq!(
            finite(&a[a.len() - RECENT_EXACT..]),
            finite(&b[b.len() - RECENT_EXACT..])
        );
        // The series ends at the same step and has the same step: the tracker resumes there.
        assert_eq!(back.step_secs, step);
        assert_eq!(
            back.start + b.len() as i64 * step,
            h.series_start() + a.len() as i64 * step
        );
        // Older values are the means of their buckets: the overall mean barely moves.
        let mean = |v: &[f64]| {
            let f: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
            f.iter().sum::<f64>() / f.len() as f64
        };
        let older = b.len() - RECENT_EXACT;
        let shift = a.len() - b.len();
        assert!((mean(&a[shift..shift + older]) - mean(&b[..older])).abs() < 0.01);
        // A short history is stored exactly.
        let short = filled(step, 500, |i| i as f64);
        assert!(short.encode().starts_with("v1 "));
    }
}
