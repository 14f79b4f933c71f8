//! A small exact min-cost circulation with lower bounds, for the one placement constraint the
//! greedy cannot see: a share of the replicas on on-demand pools (the spot budget).
//!
//! Edges carry `[lo, hi]` bounds and a lexicographic cost (price, then distance from the
//! current placement). Lower bounds are pushed up front and negative-cost edges saturated,
//! so the residual graph starts without negative cycles; the imbalance this leaves is then
//! routed from a super source to a super sink by successive shortest paths (Bellman-Ford
//! with a queue), each augmentation pushing its bottleneck. Network flows with integer
//! bounds have integral optima, so the answer is the exact integer optimum.

use std::collections::VecDeque;
use std::ops::{Add, Neg};

/// Capacity standing for "no limit": above any replica total a problem can ask for.
pub const UNLIMITED: i64 = 1 << 40;

/// Price (nano-units per hour) first, then distance from the current placement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cost {
    /// Σ price; i128 so that long residual paths cannot overflow.
    pub price: i128,
    /// Σ ±1 per replica kept or added.
    pub distance: i64,
}

impl Cost {
    /// A cost of `price` and `distance` per unit.
    pub fn new(price: i64, distance: i64) -> Self {
        Self {
            price: i128::from(price),
            distance,
        }
    }
}

impl Add for Cost {
    type Output = Cost;
    fn add(self, o: Cost) -> Cost {
        Cost {
            price: self.price + o.price,
            distance: self.distance + o.distance,
        }
    }
}

impl Neg for Cost {
    type Output = Cost;
    fn neg(self) -> Cost {
        Cost {
            price: -self.price,
            distance: -self.distance,
        }
    }
}

#[derive(Debug, Clone)]
struct Arc {
    to: usize,
    /// Residual capacity.
    room: i64,
    cost: Cost,
}

/// A circulation problem: nodes `0..n`, edges with bounds and costs.
#[derive(Debug, Clone)]
pub struct Circulation {
    arcs: Vec<Arc>,
    out: Vec<Vec<usize>>,
    /// Flow that must still leave (positive) or reach (negative) each node after the lower
    /// bounds and saturated negative edges were pushed.
    excess: Vec<i64>,
    /// Lower bound of each edge (indexed by edge, arcs `2e` and `2e + 1`).
    lo: Vec<i64>,
    /// Some edge has `lo > hi`.
    broken: bool,
}

impl Circulation {
    /// An empty network on `n` nodes.
    pub fn new(n: usize) -> Self {
        Self {
            arcs: Vec::new(),
            out: vec![Vec::new(); n],
            excess: vec![0; n],
            lo: Vec::new(),
            broken: false,
        }
    }

    /// Adds an edge `from → to` carrying between `lo` and `hi` units at `cost` each; returns
    /// its index for [`Circulation::flow`].
    pub fn edge(&mut self, from: usize, to: usize, lo: i64, hi: i64, cost: Cost) -> usize {
        if lo > hi {
            self.broken = true;
        }
        // Start at the lower bound, or at the upper one when every unit pays back.
        let start = if cost < Cost::default() { hi } else { lo }.max(lo);
        let e = self.lo.len();
        self.lo.push(lo);
        self.excess[from] -= start;
        self.excess[to] += start;
        self.out[from].push(self.arcs.len());
        self.arcs.push(Arc {
            to,
            room: (hi - start).max(0),
            cost,
        });
        self.out[to].push(self.arcs.len());
        self.arcs.push(Arc {
            to: from,
            room: start - lo,
            cost: -cost,
        });
        e
    }

    /// Units on edge `e` in the solved circulation.
    pub fn flow(&self, e: usize) -> i64 {
        self.lo[e] + self.arcs[2 * e + 1].room
    }

    /// Solves for the cheapest circulation meeting every bound; false when none exists.
    pub fn solve(&mut self) -> bool {
        if self.broken {
            return false;
        }
        let n = self.out.len();
        let (source, sink) = (n, n + 1);
        self.out.push(Vec::new());
        self.out.push(Vec::new());
        let mut need = 0i64;
        for v in 0..n {
            let ex = self.excess[v];
            if ex > 0 {
                need += ex;
                self.raw_arc(source, v, ex);
            } else if ex < 0 {
                self.raw_arc(v, sink, -ex);
            }
        }
        let mut sent = 0i64;
        while sent < need {
            let Some(pred) = self.shortest_path(source, sink) else {
                break;
            };
            let mut push = need - sent;
            let mut v = sink;
            while v != source {
                let a = pred[v];
                push = push.min(self.arcs[a].room);
                v = self.arcs[a ^ 1].to;
            }
            let mut v = sink;
            while v != source {
                let a = pred[v];
                self.arcs[a].room -= push;
                self.arcs[a ^ 1].room += push;
                v = self.arcs[a ^ 1].to;
            }
            sent += push;
        }
        sent == need
    }

    /// An uncosted arc pair for the super source and sink (not an edge of the problem).
    fn raw_arc(&mut self, from: usize, to: usize, room: i64) {
        self.out[from].push(self.arcs.len());
        self.arcs.push(Arc {
            to,
            room,
            cost: Cost::default(),
        });
        self.out[to].push(self.arcs.len());
        self.arcs.push(Arc {
            to: from,
            room: 0,
            cost: Cost::default(),
        });
    }

    /// The arc into each node on a cheapest residual path from `source`, if `sink` is
    /// reachable. The residual graph never has a negative cycle (the flow so far is a
    /// cheapest one for its value), so Bellman-Ford terminates.
    fn shortest_path(&self, source: usize, sink: usize) -> Option<Vec<usize>> {
        let n = self.out.len();
        let mut dist: Vec<Option<Cost>> = vec![None; n];
        let mut pred = vec![usize::MAX; n];
        let mut queued = vec![false; n];
        let mut queue = VecDeque::from([source]);
        dist[source] = Some(Cost::default());
        queued[source] = true;
        while let Some(u) = queue.pop_front() {
            queued[u] = false;
            let Some(du) = dist[u] else { continue };
            for &a in &self.out[u] {
                let arc = &self.arcs[a];
                if arc.room <= 0 {
                    continue;
                }
                let d = du + arc.cost;
                if dist[arc.to].is_none_or(|old| d < old) {
                    dist[arc.to] = Some(d);
                    pred[arc.to] = a;
                    if !queued[arc.to] {
                        queued[arc.to] = true;
                        queue.push_back(arc.to);
                    }
                }
            }
        }
        dist[sink].map(|_| pred)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lower_bound_forces_the_dear_path() {
        // 0 → 1 → 3 is cheap, 0 → 2 → 3 dear but must carry 2; 3 → 0 carries exactly 5.
        let mut c = Circulation::new(4);
        let cheap = c.edge(0, 1, 0, 10, Cost::new(1, 0));
        let dear = c.edge(0, 2, 2, 10, Cost::new(5, 0));
        c.edge(1, 3, 0, UNLIMITED, Cost::default());
        c.edge(2, 3, 0, UNLIMITED, Cost::default());
        c.edge(3, 0, 5, 5, Cost::default());
        assert!(c.solve());
        assert_eq!((c.flow(cheap), c.flow(dear)), (3, 2));
    }

    #[test]
    fn conflicting_bounds_have_no_circulation() {
        let mut c = Circulation::new(2);
        c.edge(0, 1, 3, 10, Cost::default());
        c.edge(1, 0, 0, 2, Cost::default());
        assert!(!c.solve());
        let mut c = Circulation::new(2);
        c.edge(0, 1, 3, 2, Cost::default());
        c.edge(1, 0, 0, 9, Cost::default());
        assert!(!c.solve());
    }

    #[test]
    fn negative_edges_are_used_as_far_as_they_pay() {
        // Keeping a unit (distance −1) is worth it; the loop back is bounded by 4.
        let mut c = Circulation::new(2);
        let keep = c.edge(0, 1, 0, 6, Cost::new(0, -1));
        let back = c.edge(1, 0, 0, 4, Cost::default());
        assert!(c.solve());
        assert_eq!((c.flow(keep), c.flow(back)), (4, 4));
    }

    #[test]
    fn price_outranks_distance() {
        // Two parallel ways for exactly 3 units: price 1 distance +1, or price 2 distance −1.
        let mut c = Circulation::new(2);
        let a = c.edge(0, 1, 0, 3, Cost::new(1, 1));
        let b = c.edge(0, 1, 0, 3, Cost::new(2, -1));
        c.edge(1, 0, 3, 3, Cost::default());
        assert!(c.solve());
        assert_eq!((c.flow(a), c.flow(b)), (3, 0));
    }

    /// Every flow on a two-path network with a shared cap, against enumeration.
    #[test]
    fn small_networks_match_enumeration() {
        for seed in 0..200u64 {
            let mut s = seed.wrapping_mul(2654435761).wrapping_add(7);
            let mut rnd = |m: i64| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
                ((s >> 33) % m as u64) as i64
            };
            let (lo_a, hi_a) = {
                let l = rnd(3);
                (l, l + rnd(4))
            };
            let (lo_b, hi_b) = {
                let l = rnd(3);
                (l, l + rnd(4))
            };
            let (ca, cb) = (rnd(5) - 1, rnd(5) - 1);
            let total_lo = rnd(6);
            let total_hi = total_lo + rnd(4);
            let at_least_b = rnd(3);
            // 0 → 1 (a), 0 → 2 (b) → 1, 2 carrying at least `at_least_b` via 0 → 2.
            let mut c = Circulation::new(3);
            let a = c.edge(0, 1, lo_a, hi_a, Cost::new(ca, 0));
            let b = c.edge(0, 2, lo_b.max(at_least_b), hi_b, Cost::new(cb, 0));
            c.edge(2, 1, 0, UNLIMITED, Cost::default());
            c.edge(1, 0, total_lo, total_hi, Cost::default());
            let mut best: Option<i64> = None;
            for fa in lo_a..=hi_a {
                for fb in lo_b.max(at_least_b)..=hi_b {
                    if (total_lo..=total_hi).contains(&(fa + fb)) {
                        let cost = fa * ca + fb * cb;
                        best = Some(best.map_or(cost, |x: i64| x.min(cost)));
                    }
                }
            }
            let solved = c.solve();
            assert_eq!(solved, best.is_some(), "seed {seed}");
            if let Some(best) = best {
                assert_eq!(c.flow(a) * ca + c.flow(b) * cb, best, "seed {seed}");
            }
        }
    }
}
