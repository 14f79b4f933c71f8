//! Fencing: a leader writes to members only while its lease is provably still its own.
//!
//! The lease library renews in the background and says when leadership is lost, but only
//! once it notices; a leader that was paused (a stopped process, a long GC, a partition) wakes
//! up believing it leads, with reconciles in flight. So every write to a member first checks
//! the fence, whose deadline is the last renewal this instance saw of its own lease plus the
//! lease duration, less a margin, on its own clock (the `renewTime` it wrote). After that
//! instant another replica may lead, and nothing is written. [`watch`] keeps the deadline
//! fresh and resolves once it has passed, so the operator can stop at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use tracing::{debug, warn};

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this instance's leader lease may have passed to another (its last renewal was too long ago): not writing"
)]
pub struct Fenced;

/// The instant until which this instance may write to members.
#[derive(Debug)]
pub struct Fence {
    /// Unix milliseconds; `i64::MAX` when there is no leader election.
    until_ms: AtomicI64,
}

impl Fence {
    /// A fence that never closes: one instance, no leader election.
    pub fn open() -> Arc<Self> {
        Arc::new(Self {
            until_ms: AtomicI64::new(i64::MAX),
        })
    }

    /// A fence that is closed until a renewal of the lease is seen.
    pub fn closed() -> Arc<Self> {
        Arc::new(Self {
            until_ms: AtomicI64::new(i64::MIN),
        })
    }

    /// Whether a write may happen at `now`.
    pub fn allows(&self, now: jiff::Timestamp) -> bool {
        now.as_millisecond() < self.until_ms.load(Ordering::SeqCst)
    }

    /// Refuses a write at this instant when the lease may have passed.
    pub fn check(&self) -> Result<(), Fenced> {
        if self.allows(jiff::Timestamp::now()) {
            Ok(())
        } else {
            Err(Fenced)
        }
    }

    /// Whether a renewal was ever seen.
    pub fn was_opened(&self) -> bool {
        self.until_ms.load(Ordering::SeqCst) != i64::MIN
    }

    /// Moves the deadline to `until`, never back.
    pub fn extend_to(&self, until: jiff::Timestamp) {
        self.until_ms
            .fetch_max(until.as_millisecond(), Ordering::SeqCst);
    }
}

/// The deadline a lease gives its holder `identity`: its `renewTime` plus its duration, less
/// `margin`; None when the lease is someone else's or says nothing.
pub fn deadline(lease: &Lease, identity: &str, margin: Duration) -> Option<jiff::Timestamp> {
    let spec = lease.spec.as_ref()?;
    if spec.holder_identity.as_deref() != Some(identity) {
        return None;
    }
    let renewed = spec.renew_time.as_ref()?.0;
    let duration = u64::try_from(spec.lease_duration_seconds?).ok()?;
    let valid = Duration::from_secs(duration).checked_sub(margin)?;
    renewed.checked_add(valid).ok()
}

/// Reads the lease every `period`, extends `fence` by each renewal of `identity`'s, and
/// returns once the fence has closed (the lease was not renewed in time, or is another's),
/// or when no renewal of its own was seen within `first_within`.
pub async fn watch(
    api: Api<Lease>,
    name: String,
    identity: String,
    margin: Duration,
    period: Duration,
    first_within: Duration,
    fence: Arc<Fence>,
) {
    let started = std::time::Instant::now();
    loop {
        match api.get_opt(&name).await {
            Ok(Some(lease)) => {
                if let Some(until) = deadline(&lease, &identity, margin) {
                    fence.extend_to(until);
                }
            }
            Ok(None) => debug!(lease = %name, "no lease yet"),
            Err(e) => warn!(lease = %name, error = %e, "could not read the leader lease"),
        }
        let closed = !fence.allows(jiff::Timestamp::now());
        if closed && (fence.was_opened() || started.elapsed() > first_within) {
            warn!(lease = %name, %identity, "the leader lease was not renewed in time: fenced");
            return;
        }
        tokio::time::sleep(period).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn lease(holder: &str, renewed: &str, seconds: i32) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                renew_time: Some(MicroTime(renewed.parse().unwrap())),
                lease_duration_seconds: Some(seconds),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_lease_of_ones_own_opens_the_fence_until_it_may_have_passed() {
        let t = |s: &str| -> jiff::Timestamp { s.parse().unwrap() };
        let l = lease("a", "2026-01-01T00:00:00Z", 6);
        let until = deadline(&l, "a", Duration::from_secs(1)).unwrap();
        assert_eq!(until, t("2026-01-01T00:00:05Z"));
        assert_eq!(
            deadline(&l, "b", Duration::from_secs(1)),
            None,
            "someone else's"
        );

        let fence = Fence::closed();
        assert!(
            !fence.allows(t("2026-01-01T00:00:00Z")),
            "closed until a renewal"
        );
        fence.extend_to(until);
        assert!(fence.allows(t("2026-01-01T00:00:04Z")));
        assert!(
            !fence.allows(t("2026-01-01T00:00:05Z")),
            "not a moment past it"
        );
        fence.extend_to(t("2026-01-01T00:00:01Z"));
        assert!(fence.allows(t("2026-01-01T00:00:04Z")), "never moved back");
        assert!(Fence::open().allows(t("2100-01-01T00:00:00Z")));
    }
}
