//! Demand history: metrics-server keeps none, so the operator keeps its own, aggregated to a
//! fixed step, bounded to the forecast's history window, and persisted on the management
//! cluster so a restart resumes with what it had.
//!
//! Samples within one step are averaged; steps with no sample stay missing (NaN), which the
//! forecast treats as gaps rather than as zero demand.

/// Why stored history could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    #[error("stored demand history is malformed: {0}")]
    Malformed(String),
}

/// Demand in CPU cores, one value per step.
#[derive(Debug, Clone, PartialEq)]
pub struct DemandHistory {
    /// Seconds per value.
    pub step_secs: i64,
    /// Unix time (seconds) at which the first value's step starts.
    pub start: i64,
    /// Finished steps; NaN where nothing was measured.
    pub values: Vec<f64>,
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
            values: Vec::new(),
            capacity: capacity.max(1),
            current: None,
        }
    }

    /// Records a measurement of `cores` at unix time `at`. Measurements older than the
    /// current step are ignored: history only moves forward.
    pub fn record(&mut self, at: i64, cores: f64) {
        if !cores.is_finite() || cores < 0.0 {
            return;
        }
        let bucket = at.div_euclid(self.step_secs);
        match self.current {
            Some((b, sum, n)) if b == bucket => self.current = Some((b, sum + cores, n + 1)),
            Some((b, _, _)) if bucket < b => {}
            _ => {
                self.finish_current(bucket);
                self.current = Some((bucket, cores, 1));
            }
        }
    }

    /// Closes the current step and fills skipped steps up to `next_bucket` with gaps.
    fn finish_current(&mut self, next_bucket: i64) {
        let Some((b, sum, n)) = self.current.take() else {
            return;
        };
        if self.values.is_empty() {
            self.start = b * self.step_secs;
        }
        let expected = self.start / self.step_secs + self.values.len() as i64;
        for _ in expected..b {
            self.values.push(f64::NAN);
        }
        if b >= expected {
            self.values.push(sum / f64::from(n));
        }
        let gaps = (next_bucket - b - 1).clamp(0, self.capacity as i64);
        for _ in 0..gaps {
            self.values.push(f64::NAN);
        }
        self.trim();
    }

    fn trim(&mut self) {
        if self.values.len() > self.capacity {
            let drop = self.values.len() - self.capacity;
            self.values.drain(..drop);
            self.start += drop as i64 * self.step_secs;
        }
    }

    /// The finished steps plus the current one (its mean so far), oldest first.
    pub fn series(&self) -> Vec<f64> {
        let mut out = self.values.clone();
        if let Some((b, sum, n)) = self.current {
            let expected = if out.is_empty() {
                b
            } else {
                self.start / self.step_secs + out.len() as i64
            };
            for _ in expected..b {
                out.push(f64::NAN);
            }
            out.push(sum / f64::from(n));
        }
        out
    }

    /// Steps with a measurement.
    pub fn measured(&self) -> usize {
        self.series().iter().filter(|v| v.is_finite()).count()
    }

    /// A compact text form for a ConfigMap: `v1 <step> <start> <v,v,,v>` in millicores, an
    /// empty field for a gap. The current step is included, so a restart loses nothing.
    pub fn encode(&self) -> String {
        let series = self.series();
        let start = if self.values.is_empty() {
            self.current
                .map(|(b, _, _)| b * self.step_secs)
                .unwrap_or(self.start)
        } else {
            self.start
        };
        let values: Vec<String> = series
            .iter()
            .map(|v| {
                if v.is_finite() {
                    format!("{}", (v * 1000.0).round() as i64)
                } else {
                    String::new()
                }
            })
            .collect();
        format!("v1 {} {} {}", self.step_secs, start, values.join(","))
    }

    /// Reads what [`encode`](Self::encode) wrote. A different step or a shorter capacity
    /// than stored is fine: values are kept as they were and trimmed to the capacity.
    pub fn decode(text: &str, capacity: usize) -> Result<Self, HistoryError> {
        let bad = |why: &str| HistoryError::Malformed(why.to_string());
        let mut parts = text.trim().splitn(4, ' ');
        if parts.next() != Some("v1") {
            return Err(bad("unknown version"));
        }
        let step_secs: i64 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .filter(|s| *s > 0)
            .ok_or_else(|| bad("step"))?;
        let start: i64 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("start"))?;
        let mut values = Vec::new();
        for field in parts.next().unwrap_or("").split(',') {
            if field.is_empty() {
                values.push(f64::NAN);
            } else {
                let milli: i64 = field.parse().map_err(|_| bad("value"))?;
                values.push(milli as f64 / 1000.0);
            }
        }
        if values.len() == 1 && values[0].is_nan() {
            values.clear();
        }
        let mut h = Self {
            step_secs,
            start,
            values,
            capacity: capacity.max(1),
            current: None,
        };
        h.trim();
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finite(v: &[f64]) -> Vec<Option<f64>> {
        v.iter().map(|x| x.is_finite().then_some(*x)).collect()
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
        let back = DemandHistory::decode(&text, 100).unwrap();
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
        assert!(DemandHistory::decode("v2 60 0 1", 10).is_err());
        assert!(DemandHistory::decode("v1 0 0 1", 10).is_err());
        assert!(DemandHistory::decode("v1 60 x 1", 10).is_err());
        assert!(DemandHistory::decode("v1 60 0 1,abc", 10).is_err());
        let mut h = DemandHistory::new(60, 10);
        h.record(0, f64::NAN);
        h.record(0, -1.0);
        assert_eq!(h.measured(), 0);
        assert_eq!(
            DemandHistory::decode(&h.encode(), 10)
                .unwrap()
                .series()
                .len(),
            0
        );
    }
}
