//! How long new replicas take to become useful, and the lead time replicas are added for.
//!
//! Adding replicas for the whole forecast horizon pays for capacity long before it is
//! needed; adding them for demand now is too late by the time they start. The plan is sized
//! for the forecast over the lead time: the startup (from `scaling.startup`, or measured
//! here) plus one decision period, the soonest the next decision could add more.
//!
//! The startup is measured from the decision that first planned more replicas than were
//! Ready to the first decision that sees that many Ready, kept as a maximum that decays
//! slowly, so one fast start does not undo what slow ones taught.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::api::limits::MAX_STARTUP_SECS;
use crate::api::workload::Scaling;

/// A scale-up being timed: since when, and how many Ready replicas complete it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// Unix time of the decision that planned more replicas than were Ready.
    pub since: i64,
    /// Ready replicas that complete it.
    pub target: u32,
}

/// The measured startup of one workload's replicas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartupTracker {
    /// The scale-up being timed, if any.
    pub pending: Option<Pending>,
    /// The estimate in seconds, once one scale-up completed.
    pub measured: Option<u64>,
}

impl StartupTracker {
    /// A tracker restored from stored values, keeping only plausible ones.
    pub fn restore(stored: Self, now: i64) -> Self {
        Self {
            pending: stored
                .pending
                .filter(|p| p.since <= now && now - p.since <= MAX_STARTUP_SECS as i64),
            measured: stored.measured.filter(|&s| s <= MAX_STARTUP_SECS),
        }
    }

    /// The measured startup as status shows it (`status.demand.startupSeconds`).
    pub fn measured_seconds(&self) -> Option<i64> {
        self.measured.and_then(|s| i64::try_from(s).ok())
    }

    /// Notes a decision at `at` that plans `planned` replicas where `ready` are Ready.
    pub fn observe(&mut self, at: i64, planned: u32, ready: u32) {
        match self.pending {
            None if planned > ready => {
                self.pending = Some(Pending {
                    since: at,
                    target: planned,
                });
            }
            None => {}
            Some(p) if ready >= p.target => {
                self.pending = None;
                let took = u64::try_from(at.saturating_sub(p.since)).unwrap_or(0);
                self.measured = Some(match self.measured {
                    Some(was) if was > took => was - (was - took) / 4,
                    _ => took,
                });
            }
            // The plan shrank to what is Ready: nothing more to wait for, nothing learnt.
            Some(_) if planned <= ready => self.pending = None,
            // Replicas that never become Ready (no room, a bad image) are not a startup:
            // after the longest startup allowed, stop timing without learning from it.
            Some(p) if at.saturating_sub(p.since) > MAX_STARTUP_SECS as i64 => {
                self.pending = None;
            }
            // The plan shrank but still waits: the replicas asked for first are timed.
            Some(p) if planned < p.target => {
                self.pending = Some(Pending {
                    target: planned,
                    ..p
                });
            }
            Some(_) => {}
        }
    }
}

/// The startup to plan with: the spec's, else the measured one; `None` while neither is
/// known (the caller then sizes for the whole horizon, as if replicas started slowly).
pub fn startup(scaling: &Scaling, tracker: &StartupTracker) -> Option<Duration> {
    scaling
        .startup
        .as_deref()
        .and_then(|s| crate::api::duration::parse(s).ok())
        .map(|d| d.min(Duration::from_secs(MAX_STARTUP_SECS)))
        .or(tracker.measured.map(Duration::from_secs))
}

/// Forecast steps of `step` that cover `startup` plus one decision `period` (at least one,
/// at most `horizon`); the whole horizon when the startup is unknown.
pub fn lead_steps(
    startup: Option<Duration>,
    period: Duration,
    step: Duration,
    horizon: usize,
) -> usize {
    let Some(startup) = startup else {
        return horizon.max(1);
    };
    let step = step.as_secs().max(1);
    let lead = startup.saturating_add(period).as_secs();
    usize::try_from(lead.div_ceil(step))
        .unwrap_or(usize::MAX)
        .clamp(1, horizon.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scale_up_is_timed_until_its_replicas_are_ready() {
        let mut t = StartupTracker::default();
        t.observe(0, 3, 3);
        assert_eq!(t, StartupTracker::default(), "nothing to wait for");
        t.observe(10, 6, 3);
        t.observe(20, 8, 4);
        t.observe(40, 8, 5);
        assert_eq!(t.measured, None);
        t.observe(70, 8, 6);
        assert_eq!(
            t.measured,
            Some(60),
            "from the decision that planned 6 to 6 Ready"
        );
        // A faster start lowers the estimate only a quarter of the way; a slower one at once.
        t.observe(100, 9, 8);
        t.observe(120, 9, 9);
        assert_eq!(t.measured, Some(60 - 40 / 4));
        t.observe(200, 12, 9);
        t.observe(400, 12, 12);
        assert_eq!(t.measured, Some(200));
    }

    #[test]
    fn replicas_that_never_become_ready_teach_nothing() {
        let mut t = StartupTracker::default();
        t.observe(0, 5, 2);
        t.observe(MAX_STARTUP_SECS as i64 + 1, 5, 2);
        assert_eq!(t, StartupTracker::default());
        // A plan that shrinks while waiting completes at what it now asks for.
        t.observe(10_000, 5, 2);
        t.observe(10_010, 3, 2);
        t.observe(10_030, 3, 3);
        assert_eq!(t.measured, Some(30));
        // One that shrinks to what is Ready learns nothing.
        t.observe(20_000, 9, 3);
        t.observe(20_005, 3, 3);
        assert_eq!((t.pending, t.measured), (None, Some(30)));
    }

    #[test]
    fn implausible_stored_values_are_dropped() {
        let stored = StartupTracker {
            pending: Some(Pending {
                since: 500,
                target: 3,
            }),
            measured: Some(MAX_STARTUP_SECS + 1),
        };
        assert_eq!(
            StartupTracker::restore(stored, 100),
            StartupTracker::default()
        );
    }

    #[test]
    fn the_lead_covers_startup_and_one_period_within_the_horizon() {
        let s = Duration::from_secs;
        assert_eq!(lead_steps(Some(s(180)), s(15), s(60), 60), 4);
        assert_eq!(lead_steps(Some(s(0)), s(2), s(5), 6), 1);
        assert_eq!(lead_steps(Some(s(3600)), s(15), s(60), 30), 30);
        assert_eq!(
            lead_steps(None, s(15), s(60), 30),
            30,
            "unknown: the horizon"
        );
        let spec = Scaling {
            startup: Some("2m".into()),
            ..Scaling::default()
        };
        let measured = StartupTracker {
            pending: None,
            measured: Some(30),
        };
        assert_eq!(startup(&spec, &measured), Some(s(120)), "the spec wins");
        assert_eq!(startup(&Scaling::default(), &measured), Some(s(30)));
        assert_eq!(
            startup(&Scaling::default(), &StartupTracker::default()),
            None
        );
    }
}
