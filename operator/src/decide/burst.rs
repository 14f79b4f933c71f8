//! Burst protection: the plan never carries less than the demand measured now times a
//! headroom factor, and a burst (measured demand above what the Ready replicas carry at the
//! target) is named, so a forecast that missed it cannot hold replicas back.
//!
//! Measured CPU is a lower bound on demand once replicas are saturated (they cannot use
//! more than they are given), which is why the floor multiplies it rather than copying it.

use crate::api::workload::Scaling;

/// What the burst check found for one decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    /// The least demand the plan carries, in cores.
    pub floor: f64,
    /// Cores the Ready replicas carry at the target utilisation.
    pub ready_cores: f64,
    /// Whether measured demand exceeds `ready_cores`.
    pub active: bool,
}

/// The floor and burst state for demand `current` (cores; `measured` when a member gave
/// metrics now, not a stand-in from history) with `ready` Ready replicas of `cpu_per_replica`
/// cores each.
pub fn assess(
    scaling: &Scaling,
    current: f64,
    measured: bool,
    ready: u32,
    cpu_per_replica: Option<f64>,
) -> Burst {
    let current = if current.is_finite() {
        current.max(0.0)
    } else {
        0.0
    };
    let target = f64::from(scaling.target_cpu_utilization_percentage.clamp(1, 100)) / 100.0;
    let ready_cores = cpu_per_replica.map_or(0.0, |c| f64::from(ready) * c * target);
    Burst {
        floor: current * scaling.burst_factor(),
        ready_cores,
        active: measured && cpu_per_replica.is_some() && current > ready_cores + 1e-9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scaling(headroom: i32) -> Scaling {
        Scaling {
            burst_headroom_percent: headroom,
            ..Scaling::default()
        }
    }

    #[test]
    fn demand_above_what_ready_replicas_carry_is_a_burst_with_a_raised_floor() {
        // Three Ready replicas of 500m at 70% carry 1.05 cores; 1.5 are used.
        let b = assess(&scaling(20), 1.5, true, 3, Some(0.5));
        assert!(b.active);
        assert!((b.ready_cores - 1.05).abs() < 1e-9);
        assert!((b.floor - 1.8).abs() < 1e-9);
        // Within what they carry: no burst, the floor still holds.
        let calm = assess(&scaling(20), 1.0, true, 3, Some(0.5));
        assert!(!calm.active);
        assert!((calm.floor - 1.2).abs() < 1e-9);
    }

    #[test]
    fn a_stand_in_from_history_or_a_bad_value_is_no_burst() {
        assert!(!assess(&scaling(10), 5.0, false, 0, Some(0.5)).active);
        let nan = assess(&scaling(10), f64::NAN, true, 0, Some(0.5));
        assert_eq!(nan.floor, 0.0);
        assert!(!nan.active);
        // A headroom outside the schema's range is clamped, never negative.
        assert_eq!(assess(&scaling(-50), 2.0, true, 0, Some(0.5)).floor, 2.0);
        assert_eq!(assess(&scaling(10_000), 1.0, true, 9, Some(0.5)).floor, 5.0);
    }
}
