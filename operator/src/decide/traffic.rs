//! How users should be split across pools: in proportion to the replicas each pool has
//! Ready and can serve from, damped so that small changes do not churn DNS.
//!
//! A pool that cannot serve (its CloudPool not Ready, its member not answering, no Ready
//! replica) drops to weight 0 in the decision that sees it, even while its replicas are
//! still planned there within the failover grace: users leave a dark cloud at once. Every
//! other change is published only when some pool's weight moves by `minWeightChange` points
//! or more, and at most once per `updatePeriod`.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::workload::{TrafficSpec, TrafficStatus, TrafficWeight};

/// What one pool offers traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The CloudPool.
    pub pool: String,
    /// Ready replicas it can serve from (0 when it cannot serve).
    pub ready: u32,
    /// Its `traffic.endpoint`, when declared.
    pub endpoint: Option<String>,
}

/// How changes are damped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damping {
    /// Least change of a weight, in points, worth publishing.
    pub min_change: u32,
    /// Shortest time between two published splits.
    pub period: Duration,
}

impl Damping {
    /// The damping `spec` asks for (its defaults when absent or unreadable).
    pub fn of(spec: Option<&TrafficSpec>) -> Self {
        let spec = spec.cloned().unwrap_or_default();
        let period =
            crate::api::duration::parse(&spec.update_period).unwrap_or(Duration::from_secs(30));
        Self {
            min_change: u32::try_from(spec.min_weight_change.clamp(0, 100)).unwrap_or(5),
            period,
        }
    }
}

/// Weights in percent, summing to 100 over the offers with Ready replicas, proportional to
/// their Ready replicas (largest remainder, ties to the earlier pool); pools with none are
/// left out.
pub fn proportional(offers: &[Offer]) -> Vec<(String, u32)> {
    let total: u64 = offers.iter().map(|o| u64::from(o.ready)).sum();
    if total == 0 {
        return Vec::new();
    }
    let mut shares: Vec<(usize, u64, u64)> = offers
        .iter()
        .enumerate()
        .filter(|(_, o)| o.ready > 0)
        .map(|(i, o)| {
            let exact = u64::from(o.ready) * 100;
            (i, exact / total, exact % total)
        })
        .collect();
    let given: u64 = shares.iter().map(|s| s.1).sum();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| shares[b].2.cmp(&shares[a].2).then(a.cmp(&b)));
    for &k in order.iter().take(usize::try_from(100 - given).unwrap_or(0)) {
        shares[k].1 += 1;
    }
    shares
        .into_iter()
        .filter(|s| s.1 > 0)
        .map(|(i, w, _)| (offers[i].pool.clone(), u32::try_from(w).unwrap_or(100)))
        .collect()
}

/// The split to publish at `now`, given the one published before.
pub fn next(
    previous: Option<&TrafficStatus>,
    offers: &[Offer],
    damping: Damping,
    now: jiff::Timestamp,
) -> TrafficStatus {
    let target = proportional(offers);
    let endpoint = |pool: &str| {
        offers
            .iter()
            .find(|o| o.pool == pool)
            .and_then(|o| o.endpoint.clone())
    };
    let publish = || TrafficStatus {
        split: target
            .iter()
            .map(|(p, w)| format!("{p}={w}"))
            .collect::<Vec<_>>()
            .join(" "),
        pools: target
            .iter()
            .map(|(p, w)| TrafficWeight {
                name: p.clone(),
                weight: i32::try_from(*w).unwrap_or(100),
                endpoint: endpoint(p),
            })
            .collect(),
        last_update_time: Some(Time(now)),
    };
    let Some(previous) = previous.filter(|p| p.last_update_time.is_some()) else {
        return publish();
    };
    let weight_then = |pool: &str| {
        previous
            .pools
            .iter()
            .find(|r| r.name == pool)
            .map_or(0, |r| u32::try_from(r.weight.max(0)).unwrap_or(0))
    };
    let weight_now = |pool: &str| target.iter().find(|t| t.0 == pool).map_or(0, |t| t.1);
    // A pool that can no longer serve, or whose address changed, is published at once.
    let urgent = previous.pools.iter().any(|r| {
        weight_now(&r.name) == 0 || (weight_now(&r.name) > 0 && r.endpoint != endpoint(&r.name))
    }) || (previous.pools.is_empty() && !target.is_empty());
    if urgent {
        return publish();
    }
    let moved = target
        .iter()
        .map(|(p, w)| w.abs_diff(weight_then(p)))
        .chain(
            previous
                .pools
                .iter()
                .map(|r| weight_now(&r.name).abs_diff(weight_then(&r.name))),
        )
        .max()
        .unwrap_or(0);
    let since = previous
        .last_update_time
        .as_ref()
        .map_or(Duration::MAX, |Time(t)| {
            Duration::try_from(now.duration_since(*t)).unwrap_or(Duration::ZERO)
        });
    if moved > 0 && moved >= damping.min_change.max(1) && since >= damping.period {
        publish()
    } else {
        previous.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(pool: &str, ready: u32) -> Offer {
        Offer {
            pool: pool.into(),
            ready,
            endpoint: Some(format!("{pool}.example.com")),
        }
    }

    fn t(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn weights(s: &TrafficStatus) -> Vec<(String, i32)> {
        s.pools.iter().map(|r| (r.name.clone(), r.weight)).collect()
    }

    const DAMPING: Damping = Damping {
        min_change: 5,
        period: Duration::from_secs(30),
    };

    #[test]
    fn weights_follow_ready_replicas_and_sum_to_100() {
        let w = proportional(&[offer("a", 1), offer("b", 1), offer("c", 1), offer("d", 0)]);
        assert_eq!(
            w,
            [("a".into(), 34), ("b".into(), 33), ("c".into(), 33)],
            "largest remainder; a pool with nothing Ready gets no traffic"
        );
        assert_eq!(
            proportional(&[offer("a", 3), offer("b", 1)])
                .iter()
                .map(|x| x.1)
                .collect::<Vec<_>>(),
            [75, 25]
        );
        assert!(proportional(&[offer("a", 0)]).is_empty());
        for n in 1..40u32 {
            let offers: Vec<Offer> = (0..n).map(|i| offer(&format!("p{i}"), i % 7)).collect();
            let sum: u32 = proportional(&offers).iter().map(|x| x.1).sum();
            assert!(
                sum == 100 || offers.iter().all(|o| o.ready == 0),
                "{n}: {sum}"
            );
        }
    }

    #[test]
    fn a_dark_pool_drops_to_zero_at_once_small_changes_wait() {
        let first = next(None, &[offer("a", 2), offer("b", 2)], DAMPING, t(0));
        assert_eq!(weights(&first), [("a".into(), 50), ("b".into(), 50)]);
        assert_eq!(first.split, "a=50 b=50");
        assert_eq!(first.pools[0].endpoint.as_deref(), Some("a.example.com"));
        // b goes dark 5 s later: at once, whatever the period.
        let dark = next(Some(&first), &[offer("a", 2), offer("b", 0)], DAMPING, t(5));
        assert_eq!(weights(&dark), [("a".into(), 100)]);
        assert_eq!(dark.last_update_time, Some(Time(t(5))));
        // b is back: a rise waits for the period.
        let early = next(Some(&dark), &[offer("a", 2), offer("b", 2)], DAMPING, t(20));
        assert_eq!(
            early, dark,
            "within the period nothing but a drop is published"
        );
        let back = next(Some(&dark), &[offer("a", 2), offer("b", 2)], DAMPING, t(35));
        assert_eq!(weights(&back), [("a".into(), 50), ("b".into(), 50)]);
        // 50/50 to 52/48 (25 vs 23 Ready): below the least change.
        let small = next(
            Some(&back),
            &[offer("a", 25), offer("b", 23)],
            DAMPING,
            t(100),
        );
        assert_eq!(small, back);
        // 50/50 to 75/25: published.
        let big = next(
            Some(&back),
            &[offer("a", 3), offer("b", 1)],
            DAMPING,
            t(100),
        );
        assert_eq!(weights(&big), [("a".into(), 75), ("b".into(), 25)]);
        // No pool can serve: every weight drops.
        let none = next(Some(&big), &[offer("a", 0), offer("b", 0)], DAMPING, t(101));
        assert!(none.pools.is_empty() && none.split.is_empty());
    }
}
