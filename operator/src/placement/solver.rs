//! The exact placement solver.
//!
//! # The integer program
//! Choose replicas `x_p` per pool, `lo_p ≤ x_p ≤ hi_p` (0 for ineligible pools), to minimise
//! `Σ c_p x_p` such that losing any `K` failure domains leaves at least `R` replicas, at least
//! the asked number of pools, providers and regions run replicas, and `Σ x_p ≤ max_total`.
//! Among plans of equal cost the one closest to the current placement (`Σ |x_p − cur_p|`)
//! wins.
//!
//! # The idea
//! With domain totals `y_d`, "losing any K domains leaves ≥ R" says `T − top_K(y) ≥ R`. The
//! sum of the K largest values is `min_t (K·t + Σ_d (y_d − t)⁺)`, so the constraint holds iff
//! for some integer `t` (a cap on what one domain may count for):
//!
//! `Σ_d min(y_d, t) ≥ R + K·t`
//!
//! and `t ≤ R` always suffices. For a fixed `t` the problem separates by domain: a domain
//! counts for at most `t`, its per-replica costs are non-decreasing once pools are filled
//! cheapest first, so taking the cheapest `R + K·t − (what the per-pool minimums already
//! count)` replica-units over all domains, each domain capped at `t`, is optimal (a greedy
//! over a partition matroid). The solver tries every `t` in `0..=R` and keeps the best, in
//! O(R · P) after one sort.
//!
//! Spread (`minPools`, `minProviders`, `minRegions`) counts pools with at least one replica,
//! which no greedy can see; it is handled by branch and bound on "pool p runs ≥ 1 replica"
//! versus "pool p runs none", with the greedy optimum (spread ignored) as the bound. The
//! first branch usually meets spread at once, so few nodes are explored; exactness is
//! checked against brute force in `tests/placement_exact.rs`.
//!
//! # The spot budget
//! `redundancy.spot: Tolerate` adds a second, separate loss scenario: every Spot pool at once.
//! It leaves exactly the on-demand replicas, so it is the linear constraint
//! `Σ_{p on-demand} x_p ≥ R_od`. Beside the cap `t` this no longer separates by domain (a
//! domain mixes Spot and on-demand pools), but for a fixed `t` the whole program is a
//! min-cost circulation with integer bounds (see [`spot_budget_at`]), hence integral: its
//! optimum is the integer optimum. The greedy above drops only this constraint, so its
//! optimum at `t` is a lower bound, and it *is* the optimum at `t` whenever it already puts
//! `R_od` on on-demand pools. The solver visits the caps by increasing bound, takes the
//! greedy where it suffices, solves the flow where it does not, and stops once the bound
//! reaches the best plan found. Without a spot budget the greedy alone runs, as before.
//!
//! Costs are compared as integers (nano-units per hour), so ties are real ties.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::flow::{Circulation, Cost, UNLIMITED};
use super::{FailureDomain, Problem, SpreadRule};

/// Most branch-and-bound nodes before the best plan found so far is returned; far above
/// what realistic spread rules need (see the bench), there only to bound the worst case.
pub const MAX_NODES: usize = 200_000;

/// A problem prepared for solving: integer costs, domain and group indices.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Cost per replica in nano-units per hour.
    pub cost: Vec<i64>,
    /// Failure domain index of each pool.
    pub domain: Vec<usize>,
    /// Provider index of each pool.
    pub provider: Vec<usize>,
    /// Region (provider + region) index of each pool.
    pub region: Vec<usize>,
    /// Number of failure domains.
    pub domains: usize,
    /// Current replicas per pool, counted only where the pool may still hold them.
    pub current: Vec<u32>,
    /// Whether each pool is Spot (lost in a spot reclaim).
    pub spot: Vec<bool>,
}

/// Bounds and requirements one solve works under; the stability and partial-plan logic
/// call the solver with tightened or relaxed copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    /// Least replicas per pool.
    pub lo: Vec<u32>,
    /// Most replicas per pool (0 for ineligible pools).
    pub hi: Vec<u32>,
    /// R: replicas that must survive.
    pub required: u32,
    /// K: domains that may be lost.
    pub tolerate: u32,
    /// Least replicas on on-demand pools (what a spot reclaim leaves); 0 without a budget.
    pub on_demand_required: u32,
    /// Least replicas in total (partial plans place more than survive).
    pub min_total: u32,
    /// Most replicas in total.
    pub max_total: u32,
    /// Least spread.
    pub spread: SpreadRule,
}

/// The lexicographic objective: cost first, then distance from the current placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Score {
    /// Σ c_p x_p in nano-units per hour.
    pub cost: i64,
    /// Σ |x_p − cur_p|.
    pub distance: u64,
}

/// An optimal assignment and its score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solution {
    /// Replicas per pool.
    pub x: Vec<u32>,
    /// Its score.
    pub score: Score,
    /// False when the node limit cut the search short (the plan is valid, maybe not optimal).
    pub proven: bool,
}

/// Converts a price per hour to integer nano-units.
pub fn nano(price: f64) -> i64 {
    if price.is_finite() && price > 0.0 {
        (price * 1e9).round().min(i64::MAX as f64 / 4.0) as i64
    } else {
        0
    }
}

impl Prepared {
    /// Indexes `problem`'s pools by domain, provider and region.
    pub fn new(problem: &Problem) -> Self {
        let mut providers: HashMap<&str, usize> = HashMap::new();
        let mut regions: HashMap<(&str, &str), usize> = HashMap::new();
        let mut provider = Vec::with_capacity(problem.pools.len());
        let mut region = Vec::with_capacity(problem.pools.len());
        for p in &problem.pools {
            let n = providers.len();
            provider.push(*providers.entry(p.provider.as_str()).or_insert(n));
            let n = regions.len();
            region.push(
                *regions
                    .entry((p.provider.as_str(), p.region.as_str()))
                    .or_insert(n),
            );
        }
        let (domain, domains) = match problem.domain {
            FailureDomain::Pool => ((0..problem.pools.len()).collect(), problem.pools.len()),
            FailureDomain::Region => (region.clone(), regions.len()),
            FailureDomain::Provider => (provider.clone(), providers.len()),
        };
        Self {
            cost: problem
                .pools
                .iter()
                .map(|p| nano(p.cost_per_replica))
                .collect(),
            domain,
            provider,
            region,
            domains,
            current: problem.pools.iter().map(|p| p.current).collect(),
            spot: problem.pools.iter().map(|p| p.spot).collect(),
        }
    }

    /// Replicas on on-demand pools: what a spot reclaim leaves.
    pub fn on_demand(&self, x: &[u32]) -> u32 {
        x.iter()
            .zip(&self.spot)
            .filter(|(_, spot)| !**spot)
            .map(|(n, _)| *n)
            .sum()
    }

    /// Σ c_p x_p and Σ |x_p − cur_p|.
    pub fn score(&self, x: &[u32]) -> Score {
        let mut s = Score {
            cost: 0,
            distance: 0,
        };
        for (i, &n) in x.iter().enumerate() {
            s.cost = s
                .cost
                .saturating_add(self.cost[i].saturating_mul(i64::from(n)));
            s.distance += u64::from(n.abs_diff(self.current[i]));
        }
        s
    }

    /// Replicas left after losing the `k` domains that hold the most.
    pub fn surviving(&self, x: &[u32], k: u32) -> u32 {
        let mut per_domain = vec![0u32; self.domains];
        for (i, &n) in x.iter().enumerate() {
            per_domain[self.domain[i]] += n;
        }
        per_domain.sort_unstable_by(|a, b| b.cmp(a));
        per_domain.iter().skip(k as usize).sum()
    }

    /// Pools, providers and regions that run at least one replica.
    pub fn spread_of(&self, x: &[u32]) -> SpreadRule {
        let mut providers = vec![false; self.provider.len()];
        let mut regions = vec![false; self.region.len()];
        let mut pools = 0;
        for (i, &n) in x.iter().enumerate() {
            if n > 0 {
                pools += 1;
                providers[self.provider[i]] = true;
                regions[self.region[i]] = true;
            }
        }
        let count = |v: &[bool]| v.iter().filter(|b| **b).count() as u32;
        SpreadRule {
            min_pools: pools,
            min_providers: count(&providers),
            min_regions: count(&regions),
        }
    }

    /// Whether `x` meets every constraint of `b`.
    pub fn valid(&self, b: &Bounds, x: &[u32]) -> bool {
        let total: u32 = x.iter().sum();
        let s = self.spread_of(x);
        x.iter()
            .enumerate()
            .all(|(i, &n)| n >= b.lo[i] && n <= b.hi[i])
            && total <= b.max_total
            && total >= b.min_total
            && self.surviving(x, b.tolerate) >= b.required
            && self.on_demand(x) >= b.on_demand_required
            && s.min_pools >= b.spread.min_pools
            && s.min_providers >= b.spread.min_providers
            && s.min_regions >= b.spread.min_regions
    }
}

/// A run of replica-units of one pool with the same marginal score.
#[derive(Debug, Clone, Copy)]
struct Block {
    pool: usize,
    cost: i64,
    /// −1 while the unit keeps a current replica, +1 when it adds one.
    distance: i8,
    count: u32,
}

/// The units above each pool's minimum, cheapest first (ties: units that keep a current
/// replica, then pools already running replicas, then pool order).
fn blocks(p: &Prepared, b: &Bounds) -> Vec<Block> {
    let mut out = Vec::with_capacity(2 * b.lo.len());
    for i in 0..b.lo.len() {
        let (lo, hi) = (b.lo[i], b.hi[i]);
        if hi <= lo {
            continue;
        }
        let keep_until = p.current[i].clamp(lo, hi);
        if keep_until > lo {
            out.push(Block {
                pool: i,
                cost: p.cost[i],
                distance: -1,
                count: keep_until - lo,
            });
        }
        if hi > keep_until {
            out.push(Block {
                pool: i,
                cost: p.cost[i],
                distance: 1,
                count: hi - keep_until,
            });
        }
    }
    out.sort_by(|a, b| {
        (a.cost, a.distance)
            .cmp(&(b.cost, b.distance))
            .then_with(|| (p.current[b.pool] > 0).cmp(&(p.current[a.pool] > 0)))
            .then_with(|| a.pool.cmp(&b.pool))
    });
    out
}

/// The optimum with spread ignored, or `None` when bounds, redundancy, the spot budget and
/// totals cannot all hold.
pub fn relaxed(p: &Prepared, b: &Bounds) -> Option<Solution> {
    if b.lo.iter().zip(&b.hi).any(|(lo, hi)| lo > hi) {
        return None;
    }
    let spot_budget = b.on_demand_required > 0;
    if spot_budget {
        let room: u64 = (0..b.hi.len())
            .filter(|&i| !p.spot[i])
            .map(|i| u64::from(b.hi[i]))
            .sum();
        if room < u64::from(b.on_demand_required) || b.on_demand_required > b.max_total {
            return None;
        }
    }
    let order = blocks(p, b);
    let mandatory: u32 = b.lo.iter().sum();
    if mandatory > b.max_total {
        return None;
    }
    let mut lo_per_domain = vec![0u32; p.domains];
    for (i, &lo) in b.lo.iter().enumerate() {
        lo_per_domain[p.domain[i]] += lo;
    }
    let ts: Vec<u32> = if b.required == 0 {
        vec![0]
    } else if b.tolerate == 0 {
        vec![b.required]
    } else {
        (1..=b.required).collect()
    };
    let mut best: Option<Solution> = None;
    // Under a spot budget: each cap's greedy optimum (a lower bound there), kept when it
    // already meets the budget.
    let mut bounds_at: Vec<(Score, u32, Option<Vec<u32>>)> = Vec::new();
    let mut x = vec![0u32; b.lo.len()];
    let mut cap = vec![0u32; p.domains];
    for t in ts {
        let target = u64::from(b.required) + u64::from(b.tolerate) * u64::from(t);
        let counted: u64 = lo_per_domain.iter().map(|&l| u64::from(l.min(t))).sum();
        let mut need = target.saturating_sub(counted);
        if u64::from(mandatory) + need > u64::from(b.max_total) {
            continue;
        }
        for (d, c) in cap.iter_mut().enumerate() {
            *c = t.saturating_sub(lo_per_domain[d]);
        }
        x.copy_from_slice(&b.lo);
        for blk in &order {
            if need == 0 {
                break;
            }
            let d = p.domain[blk.pool];
            let take = u64::from(blk.count.min(cap[d])).min(need) as u32;
            if take > 0 {
                x[blk.pool] += take;
                cap[d] -= take;
                need -= u64::from(take);
            }
        }
        if need > 0 {
            continue;
        }
        // Partial plans ask for more replicas in total than must survive: add the cheapest
        // units left, wherever they are.
        let mut total: u32 = x.iter().sum();
        if total < b.min_total {
            for blk in &order {
                let room = b.hi[blk.pool] - x[blk.pool];
                let take = room.min(blk.count).min(b.min_total - total);
                x[blk.pool] += take;
                total += take;
                if total == b.min_total {
                    break;
                }
            }
            if total < b.min_total || total > b.max_total {
                continue;
            }
        }
        let score = p.score(&x);
        if spot_budget {
            let met = p.on_demand(&x) >= b.on_demand_required;
            bounds_at.push((score, t, met.then(|| x.clone())));
            continue;
        }
        if best.as_ref().is_none_or(|s| score < s.score) {
            best = Some(Solution {
                x: x.clone(),
                score,
                proven: true,
            });
        }
    }
    if spot_budget {
        return best_under_spot_budget(p, b, bounds_at);
    }
    best
}

/// The best plan over the caps, given each cap's greedy bound: caps in order of increasing
/// bound, the greedy plan where it meets the budget, the flow where it does not, until the
/// bound reaches the best plan found.
///
/// The greedy is the exact relaxed optimum at a cap only when no unit pays back (every
/// usable pool has a price) and no total is forced (`min_total`, partial plans); otherwise
/// every cap the greedy does not rule out is solved by the flow.
fn best_under_spot_budget(
    p: &Prepared,
    b: &Bounds,
    mut bounds_at: Vec<(Score, u32, Option<Vec<u32>>)>,
) -> Option<Solution> {
    let greedy_exact = b.min_total == 0 && (0..b.hi.len()).all(|i| b.hi[i] == 0 || p.cost[i] > 0);
    bounds_at.sort_by_key(|(score, t, _)| (*score, *t));
    let mut best: Option<Solution> = None;
    for (bound, t, greedy) in bounds_at {
        let greedy = if greedy_exact {
            if best.as_ref().is_some_and(|s| bound >= s.score) {
                break;
            }
            greedy
        } else {
            None
        };
        let Some(x) = greedy.or_else(|| spot_budget_at(p, b, t)) else {
            continue;
        };
        let score = p.score(&x);
        if best.as_ref().is_none_or(|s| score < s.score) {
            best = Some(Solution {
                x,
                score,
                proven: true,
            });
        }
    }
    best
}

/// The optimum at cap `t` with the spot budget, spread ignored, as a min-cost circulation:
///
/// ```text
/// S → SPOT [0, ∞) → each Spot pool         S → OD [R_od, ∞) → each on-demand pool
/// pool p → domain(p) → COUNTED [0, t]  or  → UNCOUNTED [0, ∞)
/// COUNTED → T [R + K·t, ∞)    UNCOUNTED → T [0, ∞)    T → S [min_total, max_total]
/// ```
///
/// Each pool edge carries `[lo_p, hi_p]` at (price, ∓1): units up to the current replicas
/// keep one (distance −1), units above add one (+1). A domain counts for at most `t`; what
/// it holds beyond that (or what minimums force) still runs and still counts for the spot
/// budget, but not for the loss of `K` domains. `None` when no plan meets all of it.
pub fn spot_budget_at(p: &Prepared, b: &Bounds, t: u32) -> Option<Vec<u32>> {
    const S: usize = 0;
    const T: usize = 1;
    const SPOT: usize = 2;
    const OD: usize = 3;
    const COUNTED: usize = 4;
    const UNCOUNTED: usize = 5;
    let pools = b.lo.len();
    let first_domain = 6 + pools;
    let mut net = Circulation::new(first_domain + p.domains);
    let free = Cost::default();
    net.edge(S, SPOT, 0, UNLIMITED, free);
    net.edge(S, OD, i64::from(b.on_demand_required), UNLIMITED, free);
    let mut pool_edges = Vec::with_capacity(pools);
    for i in 0..pools {
        let (lo, hi) = (b.lo[i], b.hi[i]);
        if hi == 0 {
            pool_edges.push(None);
            continue;
        }
        let from = if p.spot[i] { SPOT } else { OD };
        let keep = p.current[i].clamp(lo, hi);
        let kept = net.edge(
            from,
            6 + i,
            i64::from(lo),
            i64::from(keep),
            Cost::new(p.cost[i], -1),
        );
        let added = net.edge(
            from,
            6 + i,
            0,
            i64::from(hi - keep),
            Cost::new(p.cost[i], 1),
        );
        net.edge(6 + i, first_domain + p.domain[i], 0, UNLIMITED, free);
        pool_edges.push(Some((kept, added)));
    }
    for d in 0..p.domains {
        net.edge(first_domain + d, COUNTED, 0, i64::from(t), free);
        net.edge(first_domain + d, UNCOUNTED, 0, UNLIMITED, free);
    }
    let target = i64::from(b.required) + i64::from(b.tolerate) * i64::from(t);
    net.edge(COUNTED, T, target, UNLIMITED, free);
    net.edge(UNCOUNTED, T, 0, UNLIMITED, free);
    net.edge(T, S, i64::from(b.min_total), i64::from(b.max_total), free);
    if !net.solve() {
        return None;
    }
    pool_edges
        .iter()
        .map(|e| match e {
            None => Some(0),
            Some((kept, added)) => u32::try_from(net.flow(*kept) + net.flow(*added)).ok(),
        })
        .collect()
}

/// The exact optimum under `b`, spread included, or `None` when nothing meets `b`.
pub fn optimum(p: &Prepared, b: &Bounds) -> Option<Solution> {
    let mut incumbent: Option<Solution> = None;
    let mut stack = vec![(b.lo.clone(), b.hi.clone())];
    let mut nodes = 0usize;
    let mut proven = true;
    while let Some((lo, hi)) = stack.pop() {
        nodes += 1;
        if nodes > MAX_NODES {
            proven = false;
            break;
        }
        let node = Bounds {
            lo,
            hi,
            ..b.clone()
        };
        let Some(relax) = relaxed(p, &node) else {
            continue;
        };
        if incumbent.as_ref().is_some_and(|s| relax.score >= s.score) {
            continue;
        }
        let Some(pool) = branch_pool(p, &node, &relax.x) else {
            if spread_met(p, &node.spread, &relax.x) {
                incumbent = Some(relax);
            }
            continue;
        };
        let mut closed = node.hi.clone();
        closed[pool] = 0;
        stack.push((node.lo.clone(), closed));
        let mut open = node.lo;
        open[pool] = open[pool].max(1);
        stack.push((open, node.hi));
    }
    incumbent.map(|mut s| {
        s.proven = proven;
        s
    })
}

fn spread_met(p: &Prepared, want: &SpreadRule, x: &[u32]) -> bool {
    let have = p.spread_of(x);
    have.min_pools >= want.min_pools
        && have.min_providers >= want.min_providers
        && have.min_regions >= want.min_regions
}

/// The pool to branch on when `x` misses the spread: an empty pool that could open and
/// would add a provider (then a region, then a pool) that is missing, cheapest first.
/// `None` when `x` meets the spread or no pool could help (the node is then infeasible).
fn branch_pool(p: &Prepared, b: &Bounds, x: &[u32]) -> Option<usize> {
    let have = p.spread_of(x);
    let mut used_provider = vec![false; p.provider.len()];
    let mut used_region = vec![false; p.region.len()];
    for (i, &n) in x.iter().enumerate() {
        if n > 0 {
            used_provider[p.provider[i]] = true;
            used_region[p.region[i]] = true;
        }
    }
    let helps: Box<dyn Fn(usize) -> bool> = if have.min_providers < b.spread.min_providers {
        Box::new(|i| !used_provider[p.provider[i]])
    } else if have.min_regions < b.spread.min_regions {
        Box::new(|i| !used_region[p.region[i]])
    } else if have.min_pools < b.spread.min_pools {
        Box::new(|_| true)
    } else {
        return None;
    };
    (0..x.len())
        .filter(|&i| x[i] == 0 && b.hi[i] > 0 && helps(i))
        .min_by(|&a, &c| match p.cost[a].cmp(&p.cost[c]) {
            Ordering::Equal => a.cmp(&c),
            o => o,
        })
}
