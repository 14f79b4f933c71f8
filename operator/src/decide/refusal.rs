//! Pools whose member refused to create this workload's pods (a `ReplicaFailure`: a
//! ResourceQuota, an admission webhook, a namespace whose ServiceAccount is not there yet).
//!
//! A refusal caps the pool at the replicas it has Ready, and the plan puts the rest
//! elsewhere. Scaling the pool down to that cap clears the member's condition, so without
//! memory the next decision would plan the pool in full again, be refused again, and move
//! replicas back and forth every few seconds. Each refusal therefore holds the cap for a
//! while, and a pool that refuses again after its hold ends is held twice as long (up to
//! [`MAX_HOLD_SECS`]), as a crash-looping container is backed off. A pool that later runs
//! more replicas than it was held at, all Ready, is forgiven.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::world::MemberDeployment;

/// How long a first refusal holds a pool at its Ready replicas, in seconds.
pub const FIRST_HOLD_SECS: i64 = 60;
/// The longest hold, in seconds, however often a pool refused.
pub const MAX_HOLD_SECS: i64 = 16 * 60;
/// Most refusals counted: the hold stops doubling there.
const MAX_STRIKES: u32 = 5;

/// One pool's refusal hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    /// Unix time the hold ends.
    pub until: i64,
    /// Refusals in a row (each after the previous hold ended).
    pub strikes: u32,
    /// Replicas the pool had Ready when it last refused: the cap while held.
    pub ready: u32,
    /// What the member said, while this process saw it (not stored: the stored memory is in
    /// the tenant's namespace and this text is the member's).
    #[serde(skip)]
    pub why: Option<String>,
}

/// Every pool's refusal hold, by pool name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Holds(BTreeMap<String, Hold>);

/// How long the `strikes`-th refusal in a row holds a pool.
fn hold_secs(strikes: u32) -> i64 {
    let doublings = strikes.clamp(1, MAX_STRIKES) - 1;
    (FIRST_HOLD_SECS << doublings).min(MAX_HOLD_SECS)
}

impl Holds {
    /// Takes what a member showed of the workload's Deployment in `pool` at unix time `now`:
    /// a refusal starts or renews a hold, a pool that runs more than it was held at, all
    /// Ready, once its hold ended, is forgiven.
    pub fn observe(&mut self, pool: &str, seen: Option<&MemberDeployment>, now: i64) {
        let failure = seen.and_then(|d| d.failure.as_deref());
        let ready = seen.map_or(0, |d| d.ready);
        match (self.0.get_mut(pool), failure) {
            (Some(hold), Some(why)) => {
                if hold.until <= now {
                    hold.strikes = (hold.strikes + 1).min(MAX_STRIKES);
                    hold.until = now + hold_secs(hold.strikes);
                    hold.ready = ready;
                }
                hold.why = Some(why.to_string());
            }
            (None, Some(why)) => {
                self.0.insert(
                    pool.to_string(),
                    Hold {
                        until: now + hold_secs(1),
                        strikes: 1,
                        ready,
                        why: Some(why.to_string()),
                    },
                );
            }
            (Some(hold), None) => {
                let grown = seen.is_some_and(|d| d.replicas > hold.ready && d.ready >= d.replicas);
                if hold.until <= now && grown {
                    self.0.remove(pool);
                }
            }
            (None, None) => {}
        }
    }

    /// The hold on `pool` at unix time `now`, while it lasts.
    pub fn held(&self, pool: &str, now: i64) -> Option<&Hold> {
        self.0.get(pool).filter(|h| h.until > now)
    }

    /// Keeps only the pools named by `keep` (the workload's world).
    pub fn retain<'a>(&mut self, keep: impl IntoIterator<Item = &'a str>) {
        let keep: std::collections::BTreeSet<&str> = keep.into_iter().collect();
        self.0.retain(|p, _| keep.contains(p.as_str()));
    }

    /// Each pool with the end of its hold and its strikes, to tell when storing is due.
    pub fn fingerprint(&self) -> Vec<(String, i64, u32)> {
        self.0
            .iter()
            .map(|(p, h)| (p.clone(), h.until, h.strikes))
            .collect()
    }

    /// Holds restored from stored (untrusted) text at unix time `now`: at most `max_pools`,
    /// named plausibly, ending no later than the longest hold from now.
    pub fn restore(self, now: i64, max_pools: usize) -> Self {
        Self(
            self.0
                .into_iter()
                .filter(|(p, h)| {
                    !p.is_empty()
                        && p.len() <= 253
                        && h.until <= now.saturating_add(MAX_HOLD_SECS)
                        && (1..=MAX_STRIKES).contains(&h.strikes)
                })
                .take(max_pools)
                .collect(),
        )
    }

    /// Whether no pool is remembered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(replicas: u32, ready: u32, failure: Option<&str>) -> MemberDeployment {
        MemberDeployment {
            replicas,
            ready,
            failure: failure.map(str::to_string),
        }
    }

    #[test]
    fn a_refusal_holds_the_pool_and_each_one_after_a_hold_doubles_it() {
        let mut h = Holds::default();
        h.observe("azure", Some(&seen(3, 1, Some("FailedCreate: quota"))), 0);
        let hold = h.held("azure", 0).expect("held").clone();
        assert_eq!((hold.ready, hold.until), (1, FIRST_HOLD_SECS));
        // Scaled down to its Ready one, the member's condition clears: still held.
        h.observe("azure", Some(&seen(1, 1, None)), 30);
        assert!(
            h.held("azure", 30).is_some(),
            "the hold outlives the condition"
        );
        // Refused again while held: the hold is not extended.
        h.observe("azure", Some(&seen(1, 1, Some("FailedCreate: quota"))), 40);
        assert_eq!(h.held("azure", 40).map(|h| h.until), Some(FIRST_HOLD_SECS));
        // Ended, not yet tried at more: not forgiven, not held.
        h.observe("azure", Some(&seen(1, 1, None)), 61);
        assert!(h.held("azure", 61).is_none());
        // Tried at three, refused again: held twice as long.
        h.observe("azure", Some(&seen(3, 1, Some("FailedCreate: quota"))), 70);
        assert_eq!(
            h.held("azure", 70).map(|h| h.until),
            Some(70 + 2 * FIRST_HOLD_SECS)
        );
        let mut t = 70;
        for _ in 0..10 {
            t += MAX_HOLD_SECS;
            h.observe("azure", Some(&seen(3, 1, Some("FailedCreate: quota"))), t);
        }
        assert_eq!(h.held("azure", t).map(|h| h.until), Some(t + MAX_HOLD_SECS));
    }

    #[test]
    fn a_pool_that_runs_more_than_it_was_held_at_is_forgiven() {
        let mut h = Holds::default();
        h.observe("azure", Some(&seen(4, 2, Some("FailedCreate: quota"))), 0);
        // All Ready at the held count is not enough.
        h.observe("azure", Some(&seen(2, 2, None)), 100);
        assert!(h.held("azure", 100).is_none());
        assert!(!h.is_empty(), "all Ready, but no more than it was held at");
        h.observe("azure", Some(&seen(4, 3, None)), 110);
        assert!(!h.is_empty(), "not all Ready yet");
        h.observe("azure", Some(&seen(4, 4, None)), 120);
        assert!(h.is_empty(), "runs four, all Ready: forgiven");
    }

    #[test]
    fn stored_holds_are_bounded_and_plausible() {
        let text = r#"{"a":{"until":100,"strikes":1,"ready":0},
                       "b":{"until":99999999,"strikes":1,"ready":0},
                       "c":{"until":100,"strikes":0,"ready":0},
                       "":{"until":100,"strikes":1,"ready":0}}"#;
        let holds: Holds = serde_json::from_str(text).expect("parses");
        let back = holds.restore(50, 10);
        assert_eq!(
            back.fingerprint(),
            vec![("a".to_string(), 100, 1)],
            "a hold from the far future, with no strikes, or of no pool is dropped"
        );
        let mut h = Holds::default();
        h.observe("x", Some(&seen(1, 0, Some("refused"))), 0);
        h.retain(["y"]);
        assert!(
            h.is_empty(),
            "a pool the workload no longer sees is dropped"
        );
    }
}
