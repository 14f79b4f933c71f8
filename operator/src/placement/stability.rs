//! The decision around the exact optimum: churn, and what to do when nothing is feasible.
//!
//! # Stability rule (when replicas already run)
//! Moving a replica between pools restarts it, so a plan that only saves money is not taken
//! at any price:
//! 1. The best plan that moves nothing (every pool only grows, or every pool only shrinks)
//!    is the default.
//! 2. The exact optimum replaces it only if it moves at most `maxMovesPerDecision` replicas
//!    and its hourly saving, as a share of the default's cost, is at least
//!    [`SAVING_PER_MOVED_SHARE`] × the share of replicas it moves (in the spirit of
//!    Karpenter's balanced consolidation: moving 1 of 10 replicas must save ≥ 2 %, moving
//!    all of them ≥ 20 %).
//! 3. When the optimum moves more than the budget allows, the plan walks from the default
//!    towards it, one replica moved at a time (plus the removals that move makes possible),
//!    keeping every constraint at every step and never exceeding the budget; the same
//!    saving rule then applies. The next decision continues the walk, so a large rebalance
//!    (failback after an outage) is spread over several decisions.
//!
//! Replicas on a pool that was lost, drained or shrank below them are not "moves": they
//! must go, so the current placement is counted only where it may stay.
//!
//! # Infeasible problems
//! The answer is never empty: the plan says why in words, and places as many replicas as
//! fit, with as many of them surviving the loss of `tolerate` domains as possible, then as
//! many surviving a spot reclaim as possible: a spot budget that cannot hold never costs
//! replicas or the redundancy across domains.

use super::explain;
use super::solver::{self, Bounds, Prepared, Solution};
use super::{FailureDomain, Plan, PoolPlan, Problem, SpotLoss, SpreadRule};

/// How much of its cost a rebalance must save per share of replicas it moves.
pub const SAVING_PER_MOVED_SHARE: f64 = 0.2;

/// Replicas moved between pools from `from` to `to`: growing or shrinking is not a move.
pub fn moves(from: &[u32], to: &[u32]) -> u32 {
    let (mut down, mut up) = (0u32, 0u32);
    for (a, b) in from.iter().zip(to) {
        if a > b {
            down += a - b;
        } else {
            up += b - a;
        }
    }
    down.min(up)
}

/// The plan for `problem`: the exact optimum, damped by the stability rule when replicas
/// already run, or the best partial plan with a reason when the constraints cannot all hold.
pub fn solve(problem: &Problem) -> Plan {
    let mut prep = Prepared::new(problem);
    let full = bounds(problem);
    for (i, c) in prep.current.iter_mut().enumerate() {
        *c = (*c).min(full.hi[i]);
    }
    match solver::optimum(&prep, &full) {
        Some(opt) => {
            let (x, note) = if prep.current.iter().any(|&c| c > 0) {
                stabilise(&prep, &full, opt, problem.max_moves)
            } else {
                (opt.x, None)
            };
            build(problem, &prep, &full, x, None, note)
        }
        None => {
            let reason = diagnose(problem, &prep, &full);
            let x = partial(&prep, &full);
            build(problem, &prep, &full, x, Some(reason), None)
        }
    }
}

/// The bounds the problem states: eligible pools between their min and max, others at 0.
fn bounds(problem: &Problem) -> Bounds {
    let (lo, hi) = problem
        .pools
        .iter()
        .map(|p| if p.eligible { (p.min, p.max) } else { (0, 0) })
        .unzip();
    Bounds {
        lo,
        hi,
        required: problem.required,
        tolerate: problem.tolerate,
        on_demand_required: problem.on_demand_required(),
        min_total: 0,
        max_total: problem.max_total,
        spread: problem.spread,
    }
}

fn stabilise(
    prep: &Prepared,
    full: &Bounds,
    opt: Solution,
    budget: Option<u32>,
) -> (Vec<u32>, Option<String>) {
    let cur = &prep.current;
    let grow_only = Bounds {
        lo: full.lo.iter().zip(cur).map(|(l, c)| (*l).max(*c)).collect(),
        ..full.clone()
    };
    let shrink_only = Bounds {
        hi: full.hi.iter().zip(cur).map(|(h, c)| (*h).min(*c)).collect(),
        ..full.clone()
    };
    let stay = [
        solver::optimum(prep, &grow_only),
        solver::optimum(prep, &shrink_only),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|s| s.score);
    let Some(stay) = stay else {
        let m = moves(cur, &opt.x);
        return (
            opt.x,
            Some(format!(
                "the current placement no longer meets the constraints, so {} {}",
                replicas_word(m),
                if m == 1 { "moves" } else { "move" }
            )),
        );
    };
    if opt.score.cost >= stay.score.cost {
        return (stay.x, None);
    }
    let budget = budget.unwrap_or(u32::MAX);
    let cut_short = moves(cur, &opt.x) > budget;
    let candidate = if cut_short {
        walk(prep, full, &stay.x, &opt.x, budget)
    } else {
        opt.x
    };
    let m = moves(cur, &candidate);
    let cost = prep.score(&candidate).cost;
    if m == 0 || cost >= stay.score.cost {
        return (stay.x, None);
    }
    let saving = (stay.score.cost - cost) as f64 / stay.score.cost as f64;
    let total: u32 = stay.x.iter().sum();
    let moved_share = f64::from(m) / f64::from(total.max(1));
    if saving >= SAVING_PER_MOVED_SHARE * moved_share {
        let limited = if cut_short {
            " (the most placement.maxMovesPerDecision allows)"
        } else {
            ""
        };
        (
            candidate,
            Some(format!(
                "rebalancing {}{limited} saves {:.0}% per hour",
                replicas_word(m),
                saving * 100.0
            )),
        )
    } else {
        (
            stay.x,
            Some(format!(
                "moving {} would save only {:.1}% per hour, below the {:.1}% that is worth the disruption, so nothing moves",
                replicas_word(m),
                saving * 100.0,
                SAVING_PER_MOVED_SHARE * moved_share * 100.0
            )),
        )
    }
}

/// "1 replica", "3 replicas".
fn replicas_word(n: u32) -> String {
    if n == 1 {
        "1 replica".to_string()
    } else {
        format!("{n} replicas")
    }
}

/// From `start` towards `goal` while `moves` from the current placement stay within
/// `budget`: each step moves one replica to a pool the goal wants bigger, then removes the
/// replicas the constraints no longer need (removals are not moves, unless the plan grows
/// overall); the step that leaves the cheapest valid plan wins, until no step saves money.
fn walk(prep: &Prepared, full: &Bounds, start: &[u32], goal: &[u32], budget: u32) -> Vec<u32> {
    let mut x = start.to_vec();
    let mut cost = prep.score(&x).cost;
    loop {
        let mut best: Option<(i64, Vec<u32>)> = None;
        let mut consider = |y: Vec<u32>| {
            if !prep.valid(full, &y) || moves(&prep.current, &y) > budget {
                return;
            }
            let c = prep.score(&y).cost;
            if c < cost && best.as_ref().is_none_or(|(bc, _)| c < *bc) {
                best = Some((c, y));
            }
        };
        consider(prune(prep, full, x.clone(), goal));
        for a in (0..x.len()).filter(|&a| x[a] > goal[a]) {
            for b in (0..x.len()).filter(|&b| x[b] < goal[b]) {
                let mut y = x.clone();
                y[a] -= 1;
                y[b] += 1;
                consider(prune(prep, full, y, goal));
            }
        }
        let Some((c, y)) = best else { return x };
        x = y;
        cost = c;
    }
}

/// Removes replicas above `goal`, dearest first, while the plan stays valid.
fn prune(prep: &Prepared, full: &Bounds, mut y: Vec<u32>, goal: &[u32]) -> Vec<u32> {
    loop {
        let mut order: Vec<usize> = (0..y.len()).filter(|&p| y[p] > goal[p]).collect();
        order.sort_by_key(|&p| std::cmp::Reverse(prep.cost[p]));
        let removed = order.into_iter().find(|&p| {
            y[p] -= 1;
            let ok = prep.valid(full, &y);
            if !ok {
                y[p] += 1;
            }
            ok
        });
        if removed.is_none() {
            return y;
        }
    }
}

/// The best plan when the full problem is infeasible: as many replicas as fit, then as many
/// surviving the loss of `tolerate` domains as possible, then as many on on-demand pools
/// (surviving a spot reclaim) as the spot budget asks and the rest allows.
fn partial(prep: &Prepared, full: &Bounds) -> Vec<u32> {
    let hi_sum: u32 = full.hi.iter().sum();
    let placeable = full.required.min(hi_sum).min(full.max_total);
    let achievable = prep.spread_of(&full.hi);
    let spread = SpreadRule {
        min_pools: full
            .spread
            .min_pools
            .min(achievable.min_pools)
            .min(placeable),
        min_providers: full
            .spread
            .min_providers
            .min(achievable.min_providers)
            .min(placeable),
        min_regions: full
            .spread
            .min_regions
            .min(achievable.min_regions)
            .min(placeable),
    };
    let lo: Vec<u32> = full
        .lo
        .iter()
        .zip(&full.hi)
        .map(|(l, h)| *l.min(h))
        .collect();
    for lo in [lo, vec![0; full.lo.len()]] {
        let at = |survive: u32, on_demand: u32| {
            solver::optimum(
                prep,
                &Bounds {
                    lo: lo.clone(),
                    required: survive,
                    on_demand_required: on_demand,
                    min_total: placeable,
                    spread,
                    ..full.clone()
                },
            )
        };
        let Some(best) = at(0, 0) else { continue };
        let (survive, best) = most(placeable, best, |m| at(m, 0));
        let (_, best) = most(full.on_demand_required, best, |m| at(survive, m));
        return best.x;
    }
    vec![0; full.lo.len()]
}

/// The largest `m ≤ limit` for which `at(m)` has a plan, and that plan, when `at(0)` gave
/// `base` and feasibility only shrinks as `m` grows (binary search).
fn most(limit: u32, base: Solution, at: impl Fn(u32) -> Option<Solution>) -> (u32, Solution) {
    let mut best = base;
    let (mut ok, mut bad) = (0u32, limit.saturating_add(1));
    while bad - ok > 1 {
        let mid = ok + (bad - ok) / 2;
        match at(mid) {
            Some(s) => {
                ok = mid;
                best = s;
            }
            None => bad = mid,
        }
    }
    (ok, best)
}

/// Why no plan meets every constraint, in words.
fn diagnose(problem: &Problem, prep: &Prepared, full: &Bounds) -> String {
    let eligible: Vec<usize> = (0..problem.pools.len())
        .filter(|&i| problem.pools[i].eligible)
        .collect();
    if eligible.is_empty() {
        if problem.pools.is_empty() {
            return "there are no CloudPools".to_string();
        }
        let why: Vec<String> = problem
            .pools
            .iter()
            .take(5)
            .map(|p| {
                format!(
                    "{} ({})",
                    p.name,
                    p.ineligible_reason.as_deref().unwrap_or("not eligible")
                )
            })
            .collect();
        let more = problem.pools.len().saturating_sub(5);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        return format!("no CloudPool is eligible: {}{more}", why.join(", "));
    }
    for &i in &eligible {
        let p = &problem.pools[i];
        if p.min > p.max {
            return format!(
                "placement.pools[{}].minReplicas is {} but only {} replicas fit there (maxReplicas or capacity)",
                p.name, p.min, p.max
            );
        }
    }
    let lo_sum: u32 = full.lo.iter().sum();
    if lo_sum > full.max_total {
        return format!(
            "the per-pool minimums add up to {lo_sum} replicas, above replicas.max {}",
            full.max_total
        );
    }
    let room = prep.spread_of(&full.hi);
    for (what, want, have) in [
        (
            "minProviders",
            full.spread.min_providers,
            room.min_providers,
        ),
        ("minRegions", full.spread.min_regions, room.min_regions),
        ("minPools", full.spread.min_pools, room.min_pools),
    ] {
        if want > have {
            return format!(
                "placement.spread.{what} is {want} but only {have} have eligible pools with room"
            );
        }
    }
    let word = domain_word(problem.domain, full.tolerate);
    if full.required > 0 && full.tolerate > 0 {
        let mut domains_with_room = vec![false; prep.domains];
        for (i, &h) in full.hi.iter().enumerate() {
            if h > 0 {
                domains_with_room[prep.domain[i]] = true;
            }
        }
        let n = domains_with_room.iter().filter(|b| **b).count() as u32;
        if n <= full.tolerate {
            return format!(
                "surviving the loss of any {} {word} needs at least {} {} with eligible pools and room; there {} {n}",
                full.tolerate,
                full.tolerate + 1,
                domain_word(problem.domain, 2),
                if n == 1 { "is" } else { "are" }
            );
        }
    }
    let hi_sum: u32 = full.hi.iter().sum();
    if hi_sum < full.required {
        return format!(
            "{} replicas are needed but the eligible pools have room for only {hi_sum}",
            full.required
        );
    }
    let on_demand_room = prep.on_demand(&full.hi);
    if on_demand_room < full.on_demand_required {
        return format!(
            "on-demand pools can hold only {on_demand_room} of the {} replicas a spot reclaim must leave (placement.redundancy.spot: Tolerate)",
            full.on_demand_required
        );
    }
    let losses = losses_phrase(problem.domain, full);
    let unbounded = Bounds {
        max_total: u32::MAX,
        ..full.clone()
    };
    if let Some(s) = solver::optimum(prep, &unbounded) {
        let total: u32 = s.x.iter().sum();
        if total > full.max_total {
            return format!(
                "{} replicas surviving {losses} need {total} in total, above replicas.max {}",
                full.required, full.max_total
            );
        }
    }
    format!(
        "the eligible pools have too little room for {} replicas that survive {losses}",
        full.required
    )
}

/// "the loss of any 1 provider", "... or a spot reclaim", "a spot reclaim": what the plan
/// must survive, each scenario on its own.
fn losses_phrase(domain: FailureDomain, full: &Bounds) -> String {
    let domains = format!(
        "the loss of any {} {}",
        full.tolerate,
        domain_word(domain, full.tolerate)
    );
    match (full.tolerate > 0, full.on_demand_required > 0) {
        (true, true) => format!("{domains} or a spot reclaim"),
        (false, true) => "a spot reclaim".to_string(),
        _ => domains,
    }
}

/// "provider", "providers", "pool", ... for sentences.
pub fn domain_word(domain: FailureDomain, n: u32) -> &'static str {
    match (domain, n == 1) {
        (FailureDomain::Pool, true) => "pool",
        (FailureDomain::Pool, false) => "pools",
        (FailureDomain::Region, true) => "region",
        (FailureDomain::Region, false) => "regions",
        (FailureDomain::Provider, true) => "provider",
        (FailureDomain::Provider, false) => "providers",
    }
}

fn build(
    problem: &Problem,
    prep: &Prepared,
    full: &Bounds,
    x: Vec<u32>,
    reason: Option<String>,
    note: Option<String>,
) -> Plan {
    let pools: Vec<PoolPlan> = problem
        .pools
        .iter()
        .zip(&x)
        .map(|(p, &n)| PoolPlan {
            name: p.name.clone(),
            replicas: n,
            cost_per_hour: f64::from(n) * p.cost_per_replica,
        })
        .collect();
    let total: u32 = x.iter().sum();
    let surviving = prep.surviving(&x, full.tolerate);
    let surviving_spot_reclaim = (problem.spot == SpotLoss::Tolerate).then(|| prep.on_demand(&x));
    let tight = explain::tight(problem, prep, full, &x);
    let even = explain::even_split_cost(problem, full, total);
    let moves = moves(&prep.current, &x);
    let mut plan = Plan {
        feasible: reason.is_none(),
        reason,
        required_replicas: problem.required,
        total_cost_per_hour: pools.iter().map(|p| p.cost_per_hour).sum(),
        pools,
        total_replicas: total,
        surviving_replicas: surviving,
        surviving_spot_reclaim,
        redundancy_satisfied: surviving >= problem.required
            && surviving_spot_reclaim.is_none_or(|n| n >= problem.required),
        moves,
        even_split_cost_per_hour: even,
        tight,
        explanation: String::new(),
    };
    plan.explanation = explain::sentence(problem, prep, &plan, note.as_deref());
    plan
}
