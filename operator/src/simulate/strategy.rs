//! The baselines beside skyfleet's own decision: an even split (Karmada static equal
//! weights) and an HPA-like reactive autoscaler.

use std::collections::VecDeque;

use serde::Serialize;

/// How replicas are decided in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Strategy {
    /// The operator's own decision: forecast, stabilisation, `plan_workload`.
    #[serde(rename = "skyfleet")]
    Skyfleet,
    /// Replicas for the trace's peak with the same redundancy, split evenly, fixed.
    #[serde(rename = "static-peak")]
    StaticPeak,
    /// HPA-like: scale on measured utilisation, split evenly.
    #[serde(rename = "reactive")]
    Reactive,
    /// Perfect knowledge of demand over the startup delay, optimal placement, no delay.
    #[serde(rename = "oracle")]
    Oracle,
}

impl Strategy {
    /// Every strategy, in report order.
    pub const ALL: [Strategy; 4] = [
        Strategy::Skyfleet,
        Strategy::StaticPeak,
        Strategy::Reactive,
        Strategy::Oracle,
    ];

    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Skyfleet => "skyfleet",
            Strategy::StaticPeak => "static-peak",
            Strategy::Reactive => "reactive",
            Strategy::Oracle => "oracle",
        }
    }
}

/// `total` replicas split evenly over the pools where `eligible` holds, the remainder going
/// to the first ones. Nothing goes where `eligible` is false; with none eligible, nothing.
pub fn even_split(total: u32, eligible: &[bool]) -> Vec<u32> {
    let n = eligible.iter().filter(|&&e| e).count() as u32;
    let mut out = vec![0; eligible.len()];
    if n == 0 {
        return out;
    }
    let (base, mut extra) = (total / n, total % n);
    for (slot, _) in out.iter_mut().zip(eligible).filter(|(_, e)| **e) {
        *slot = base + u32::from(extra > 0);
        extra = extra.saturating_sub(1);
    }
    out
}

/// HPA's rule: desired = ⌈current × usage / target⌉, unchanged within the tolerance, the
/// highest recommendation of the scale-down window, clamped to min and max.
#[derive(Debug, Clone)]
pub struct Reactive {
    /// Utilisation to aim for, as a share of the CPU request (0.7 for 70 %).
    pub target: f64,
    /// No change while |usage/target − 1| ≤ tolerance (0.1).
    pub tolerance: f64,
    /// Seconds a recommendation is kept for scale-down (300).
    pub window: u64,
    /// Fewest replicas.
    pub min: u32,
    /// Most replicas.
    pub max: u32,
    recent: VecDeque<(u64, u32)>,
}

impl Reactive {
    /// The autoscaler with HPA's defaults for tolerance (10 %) and scale-down window (5 min).
    pub fn new(target: f64, min: u32, max: u32) -> Self {
        Self {
            target,
            tolerance: 0.1,
            window: 300,
            min,
            max: max.max(min),
            recent: VecDeque::new(),
        }
    }

    /// Desired replicas at `now`, given `current` replicas (the scale target's spec), the
    /// `ready` ones that report metrics, each requesting `cpu` cores, and `demand` cores in use.
    pub fn desired(&mut self, now: u64, current: u32, ready: u32, cpu: f64, demand: f64) -> u32 {
        let raw = if ready == 0 || current == 0 {
            // No metrics: HPA keeps the count; from nothing it starts at what demand needs.
            if current == 0 && demand > 0.0 {
                (demand / (cpu * self.target)).ceil() as u32
            } else {
                current
            }
        } else {
            let usage = demand / (f64::from(ready) * cpu);
            let ratio = usage / self.target;
            if (ratio - 1.0).abs() <= self.tolerance {
                current
            } else {
                (f64::from(current) * ratio - 1e-9).ceil().max(0.0) as u32
            }
        };
        let raw = raw.clamp(self.min, self.max);
        self.recent
            .retain(|&(t, _)| now.saturating_sub(t) < self.window);
        self.recent.push_back((now, raw));
        self.recent.iter().map(|r| r.1).max().unwrap_or(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_split_spreads_the_remainder_and_skips_ineligible_pools() {
        assert_eq!(even_split(10, &[true, true, true]), vec![4, 3, 3]);
        assert_eq!(even_split(10, &[true, false, true, true]), vec![4, 0, 3, 3]);
        assert_eq!(even_split(5, &[false, false]), vec![0, 0]);
    }

    #[test]
    fn reactive_holds_within_the_tolerance_and_scales_outside_it() {
        let mut r = Reactive::new(0.7, 1, 100);
        // 10 replicas of 1 core at 70 % is 7 cores; 7.5 cores is 75 %: within 10 %.
        assert_eq!(r.desired(0, 10, 10, 1.0, 7.5), 10);
        assert_eq!(r.desired(15, 10, 10, 1.0, 6.4), 10, "91 % of target: hold");
        // 8.4 cores is 120 % of target: ⌈10 × 1.2⌉ = 12.
        assert_eq!(r.desired(30, 10, 10, 1.0, 8.4), 12);
    }

    #[test]
    fn reactive_scale_down_waits_for_the_window_and_clamps() {
        let mut r = Reactive::new(0.5, 2, 20);
        assert_eq!(r.desired(0, 10, 10, 1.0, 10.0), 20, "clamped to max");
        assert_eq!(r.desired(60, 20, 20, 1.0, 1.0), 20, "a fall waits");
        assert_eq!(r.desired(299, 20, 20, 1.0, 1.0), 20);
        assert_eq!(
            r.desired(300, 20, 20, 1.0, 1.0),
            2,
            "after 5 min, clamped to min"
        );
        assert_eq!(
            r.desired(400, 0, 0, 1.0, 3.0),
            6,
            "from nothing: what demand needs"
        );
    }
}
