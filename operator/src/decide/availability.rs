//! Whether a pool may be planned on, from its `Ready` condition and the failover grace.
//!
//! Every not-Ready reason except an explicit drain is given the failover grace: a member that
//! stops answering, a node group that vanishes (a spot reclaim), a kubeconfig Secret that
//! cannot be read. Within the grace the pool keeps what it runs but is never planned to grow;
//! past it, its replicas are planned elsewhere (and removed there only once replacements are
//! Ready, see [`super::safety`]).

use std::time::Duration;

use crate::api::cloud_pool::CloudPoolStatus;
use crate::api::conditions;

use super::reason::pool as reason;

/// A pool's health as the workload decision reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Ready: planned on freely.
    Ready,
    /// Not Ready for less than the grace: keeps what it runs, never grows.
    InGrace {
        /// The pool's reason and message.
        why: String,
        /// When the grace runs out.
        left: Duration,
    },
    /// Not Ready past the grace, or never seen Ready: planned on no more.
    Lost {
        /// The pool's reason and message, with how long.
        why: String,
    },
    /// Not probed yet.
    NotProbed,
}

/// Why a pool the CloudPool controller has not looked at yet is not planned on.
pub const NOT_PROBED: &str = "not probed yet";

/// How long a new workload waits for the first probe of a just-created pool before it is
/// placed without it.
pub const FIRST_PROBE_WAIT: Duration = Duration::from_secs(30);

/// Whether a pool may be planned on and whether its member is worth contacting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    /// What the plan may do with the pool.
    pub health: Health,
    /// Whether the member is worth contacting now: false while the probe says it does not
    /// answer, so a reconcile never waits on a dead API server.
    pub contact: bool,
}

impl Availability {
    /// Planned on (Ready or within the grace).
    pub fn available(&self) -> bool {
        matches!(self.health, Health::Ready | Health::InGrace { .. })
    }

    /// Why not planned on, for the plan's explanation.
    pub fn reason(&self) -> Option<String> {
        match &self.health {
            Health::Ready | Health::InGrace { .. } => None,
            Health::Lost { why } => Some(why.clone()),
            Health::NotProbed => Some(NOT_PROBED.to_string()),
        }
    }

    /// When the grace runs out, so the workload is looked at again right then.
    pub fn grace_left(&self) -> Option<Duration> {
        match self.health {
            Health::InGrace { left, .. } => Some(left),
            _ => None,
        }
    }
}

/// The pool's availability from its status at `now`.
pub fn availability(
    status: Option<&CloudPoolStatus>,
    grace: Duration,
    now: jiff::Timestamp,
) -> Availability {
    let ready = status.and_then(|s| s.conditions.iter().find(|c| c.type_ == conditions::READY));
    let Some(ready) = ready else {
        return Availability {
            health: Health::NotProbed,
            contact: false,
        };
    };
    if ready.status == "True" {
        return Availability {
            health: Health::Ready,
            contact: true,
        };
    }
    let for_secs =
        u64::try_from(now.duration_since(ready.last_transition_time.0).as_secs()).unwrap_or(0);
    let was_seen = status.is_some_and(|s| s.last_probe_time.is_some());
    let contact = ready.reason != reason::UNREACHABLE;
    let why = format!("{}: {}", ready.reason, ready.message);
    // A drain is on purpose: no grace, its replicas move at once (make-before-break).
    let drained = ready.reason == reason::DRAINED;
    let health = if !drained && was_seen && for_secs < grace.as_secs() {
        Health::InGrace {
            why,
            left: grace.saturating_sub(Duration::from_secs(for_secs)),
        }
    } else {
        Health::Lost {
            why: format!("not Ready for {for_secs}s: {why}"),
        }
    };
    Availability { health, contact }
}

/// Why a CloudPool being deleted is planned on no more.
pub const DELETING: &str =
    "the CloudPool is being deleted: its replicas move elsewhere, make-before-break";

/// The availability of an observed pool: its status's, except that a CloudPool being deleted
/// is treated as drained (no grace, nothing new placed there) whatever its last probe said.
pub fn of_pool(pool: &super::ObservedPool, grace: Duration, now: jiff::Timestamp) -> Availability {
    let a = availability(pool.status.as_ref(), grace, now);
    if !pool.deleting {
        return a;
    }
    Availability {
        health: Health::Lost {
            why: DELETING.to_string(),
        },
        contact: a.contact,
    }
}

/// Whether a workload that runs nothing yet should wait before its first placement: a pool
/// it selects was created `age` ago and has not been probed. Placing at once would put
/// everything in the pools that happened to be probed first and move it again seconds later;
/// waiting is bounded by [`FIRST_PROBE_WAIT`], so a pool the controller never reaches cannot
/// hold it forever.
pub fn wait_for_first_probe(ineligible: Option<&str>, age: Duration, runs_nothing: bool) -> bool {
    runs_nothing && ineligible == Some(NOT_PROBED) && age < FIRST_PROBE_WAIT
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn t(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn pool_status(ready: &str, reason: &str, since: &str, probed: bool) -> CloudPoolStatus {
        CloudPoolStatus {
            conditions: vec![Condition {
                type_: conditions::READY.into(),
                status: ready.into(),
                reason: reason.into(),
                message: "connection refused".into(),
                observed_generation: None,
                last_transition_time: Time(t(since)),
            }],
            last_probe_time: probed.then(|| Time(t("2026-01-01T00:00:00Z"))),
            ..Default::default()
        }
    }

    #[test]
    fn every_not_ready_reason_but_a_drain_gets_the_grace() {
        let grace = Duration::from_secs(30);
        let now = t("2026-01-01T00:01:00Z");
        let ready = pool_status("True", reason::PROBED, "2026-01-01T00:00:00Z", true);
        assert_eq!(availability(Some(&ready), grace, now).health, Health::Ready);

        for why in [
            reason::UNREACHABLE,
            reason::NO_MATCHING_NODES,
            "SecretNotFound",
        ] {
            let blip = pool_status("False", why, "2026-01-01T00:00:40Z", true);
            let a = availability(Some(&blip), grace, now);
            assert!(a.available(), "{why}: 20s into a 30s grace: {a:?}");
            assert_eq!(a.grace_left(), Some(Duration::from_secs(10)), "{why}");
            assert_eq!(a.contact, why != reason::UNREACHABLE, "{why}");

            let lost = pool_status("False", why, "2026-01-01T00:00:15Z", true);
            let a = availability(Some(&lost), grace, now);
            assert!(!a.available(), "{why}");
            assert_eq!(
                a.reason(),
                Some(format!("not Ready for 45s: {why}: connection refused"))
            );
        }

        let never_seen = pool_status("False", reason::UNREACHABLE, "2026-01-01T00:00:50Z", false);
        assert!(
            !availability(Some(&never_seen), grace, now).available(),
            "a pool that never answered has nothing to protect"
        );

        let drained = pool_status("False", reason::DRAINED, "2026-01-01T00:00:59Z", true);
        let a = availability(Some(&drained), grace, now);
        assert!(!a.available(), "a drain is on purpose: no grace");
        assert!(a.contact, "a drained member answers and can be cleaned up");

        let none = availability(None, grace, now);
        assert!(!none.available() && !none.contact);
        assert_eq!(none.reason().as_deref(), Some(NOT_PROBED));
    }

    #[test]
    fn a_pool_being_deleted_is_drained_at_once_and_still_contacted() {
        let grace = Duration::from_secs(30);
        let now = t("2026-01-01T00:01:00Z");
        let mut pool = super::super::ObservedPool {
            name: "aws".into(),
            labels: Default::default(),
            spec: serde_json::from_value(serde_json::json!({"provider": "aws", "region": "r",
                "pricing": {"cpuPerHour": 0.1, "memoryGiBPerHour": 0.01}}))
            .unwrap(),
            status: Some(pool_status(
                "True",
                reason::PROBED,
                "2026-01-01T00:00:00Z",
                true,
            )),
            used_by_others: (0.0, 0.0),
            age: Duration::from_secs(3600),
            deleting: false,
            member: super::super::Member::Unknown,
            room: None,
            ingress: None,
        };
        assert_eq!(of_pool(&pool, grace, now).health, Health::Ready);
        pool.deleting = true;
        let a = of_pool(&pool, grace, now);
        assert!(!a.available(), "no grace for a deletion: {a:?}");
        assert!(a.contact, "its replicas are removed once replaced");
        assert_eq!(a.reason().as_deref(), Some(DELETING));
        pool.status = Some(pool_status(
            "False",
            reason::UNREACHABLE,
            "2026-01-01T00:00:50Z",
            true,
        ));
        assert!(
            !of_pool(&pool, grace, now).contact,
            "a dead member is not waited on"
        );
    }

    #[test]
    fn a_new_workload_waits_briefly_for_the_first_probe_of_a_new_pool() {
        let young = Duration::from_secs(3);
        assert!(wait_for_first_probe(Some(NOT_PROBED), young, true));
        assert!(!wait_for_first_probe(Some(NOT_PROBED), young, false));
        assert!(!wait_for_first_probe(
            Some(NOT_PROBED),
            FIRST_PROBE_WAIT,
            true
        ));
        assert!(!wait_for_first_probe(Some("drained"), young, true));
        assert!(!wait_for_first_probe(None, young, true));
    }
}
