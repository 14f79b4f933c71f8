//! What runs in each pool: cohorts of replicas with the time they become ready. New replicas
//! serve only after the startup delay; removed replicas stop at once, youngest first.

/// Replicas per pool, as cohorts `(ready_at, count)` in the order they were started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fleet {
    pools: Vec<Vec<(u64, u32)>>,
}

impl Fleet {
    /// No replicas in `pools` pools.
    pub fn new(pools: usize) -> Self {
        Self {
            pools: vec![Vec::new(); pools],
        }
    }

    /// Sets pool `p` to `target` replicas at `now`: new ones are ready at `now + startup`,
    /// and surplus ones are removed youngest first.
    pub fn set(&mut self, p: usize, target: u32, now: u64, startup: u64) {
        let have = self.total(p);
        let cohorts = &mut self.pools[p];
        if target > have {
            cohorts.push((now + startup, target - have));
            return;
        }
        let mut remove = have - target;
        while remove > 0 {
            let Some(last) = cohorts.last_mut() else {
                break;
            };
            let n = last.1.min(remove);
            last.1 -= n;
            remove -= n;
            if last.1 == 0 {
                cohorts.pop();
            }
        }
    }

    /// Pool `p` lost: every replica there is gone.
    pub fn lose(&mut self, p: usize) {
        self.pools[p].clear();
    }

    /// Replicas in pool `p`, starting or ready.
    pub fn total(&self, p: usize) -> u32 {
        self.pools[p].iter().map(|c| c.1).sum()
    }

    /// Replicas in pool `p` ready at `now`.
    pub fn ready(&self, p: usize, now: u64) -> u32 {
        self.pools[p]
            .iter()
            .filter(|c| c.0 <= now)
            .map(|c| c.1)
            .sum()
    }

    /// When, within `(from, until)`, more replicas become ready: the earliest ready time of a
    /// starting cohort in that span. Replicas start and stop only at decisions, so a step
    /// between two decisions gains ready replicas at most at the cohorts' ready times; the
    /// meter splits the step there so a replica serves from its startup on, not from the next
    /// step on.
    pub fn next_ready(&self, from: u64, until: u64) -> Option<u64> {
        self.pools
            .iter()
            .flatten()
            .map(|c| c.0)
            .filter(|&at| at > from && at < until)
            .min()
    }
}

/// Replicas moved between pools from `before` to `after`: min(Σ decreases, Σ increases).
pub fn moves(before: &[u32], after: &[u32]) -> u32 {
    let (mut down, mut up) = (0u32, 0u32);
    for (&b, &a) in before.iter().zip(after) {
        if a > b {
            up += a - b;
        } else {
            down += b - a;
        }
    }
    down.min(up)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_replicas_serve_only_after_the_startup_delay() {
        let mut f = Fleet::new(1);
        f.set(0, 3, 0, 180);
        assert_eq!(f.total(0), 3);
        assert_eq!(f.ready(0, 0), 0);
        assert_eq!(f.ready(0, 179), 0);
        assert_eq!(f.ready(0, 180), 3);
        f.set(0, 5, 300, 180);
        assert_eq!((f.total(0), f.ready(0, 300), f.ready(0, 480)), (5, 3, 5));
    }

    #[test]
    fn the_next_ready_time_is_the_earliest_cohort_within_the_span() {
        let mut f = Fleet::new(2);
        f.set(0, 2, 0, 0);
        f.set(0, 4, 300, 180);
        f.set(1, 1, 300, 120);
        assert_eq!(f.next_ready(300, 600), Some(420));
        assert_eq!(f.next_ready(420, 600), Some(480));
        assert_eq!(
            f.next_ready(480, 600),
            None,
            "ready at the span's start is not later"
        );
        assert_eq!(
            f.next_ready(0, 300),
            None,
            "ready at once is not within the span"
        );
    }

    #[test]
    fn removal_takes_the_youngest_first_and_stops_at_once() {
        let mut f = Fleet::new(1);
        f.set(0, 2, 0, 60);
        f.set(0, 5, 100, 60);
        // Three starting replicas; removing three takes exactly those, the ready two stay.
        f.set(0, 2, 120, 60);
        assert_eq!((f.total(0), f.ready(0, 120)), (2, 2));
        f.set(0, 1, 130, 60);
        assert_eq!((f.total(0), f.ready(0, 1000)), (1, 1));
    }

    #[test]
    fn a_lost_pool_holds_nothing_and_restarts_cold() {
        let mut f = Fleet::new(2);
        f.set(0, 4, 0, 0);
        f.set(1, 4, 0, 0);
        f.lose(0);
        assert_eq!((f.total(0), f.ready(1, 10)), (0, 4));
        f.set(0, 4, 500, 180);
        assert_eq!((f.ready(0, 500), f.ready(0, 680)), (0, 4));
    }

    #[test]
    fn moves_count_replicas_that_changed_pools() {
        assert_eq!(moves(&[3, 3, 0], &[2, 2, 2]), 2);
        assert_eq!(moves(&[3, 3], &[5, 5]), 0, "pure scale-up moves nothing");
        assert_eq!(moves(&[3, 3], &[1, 1]), 0, "pure scale-down moves nothing");
        assert_eq!(moves(&[4, 0], &[0, 6]), 4);
    }
}
