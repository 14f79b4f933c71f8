//! Condition types and reasons shared by both kinds, and a helper that keeps
//! `lastTransitionTime` honest (it moves only when the status really changes).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The pool answers and may take replicas; on a workload, every pool runs what was planned.
pub const READY: &str = "Ready";
/// Losing the configured number of domains still leaves enough capacity for the forecast.
pub const REDUNDANCY_SATISFIED: &str = "RedundancySatisfied";
/// Something runs below what was asked: a pool lost, a partial plan, a bad reference.
pub const DEGRADED: &str = "Degraded";
/// The stored demand history and decision memory were accepted when read (a tenant can edit
/// them; a refused one is replaced by a fresh start).
pub const HISTORY_VALID: &str = "HistoryValid";

/// Sets `kind` in `conditions` to the given status, reason and message.
///
/// `lastTransitionTime` is kept when the status does not change, so `kubectl describe`
/// tells how long a condition has held.
pub fn set(
    conditions: &mut Vec<Condition>,
    kind: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
    now: jiff::Timestamp,
) {
    let status = if status { "True" } else { "False" }.to_string();
    let message = message.into();
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == kind) {
        if c.status != status {
            c.last_transition_time = Time(now);
        }
        c.status = status;
        c.reason = reason.to_string();
        c.message = message;
        c.observed_generation = observed_generation;
        return;
    }
    conditions.push(Condition {
        type_: kind.to_string(),
        status,
        reason: reason.to_string(),
        message,
        observed_generation,
        last_transition_time: Time(now),
    });
}

/// Whether `kind` is present with status `True`.
pub fn is_true(conditions: &[Condition], kind: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == kind && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_on_change() {
        let t0: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: jiff::Timestamp = "2026-01-01T00:05:00Z".parse().unwrap();
        let mut cs = Vec::new();
        set(&mut cs, READY, true, "Probed", "ok", Some(1), t0);
        set(&mut cs, READY, true, "Probed", "still ok", Some(2), t1);
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].last_transition_time.0, t0);
        assert_eq!(cs[0].message, "still ok");
        set(&mut cs, READY, false, "Unreachable", "down", Some(2), t1);
        assert_eq!(cs[0].last_transition_time.0, t1);
        assert!(!is_true(&cs, READY));
    }
}
