//! The placement solver against brute force: on hundreds of random small instances its
//! optimum has exactly the cost (then the closeness to the current placement) of the best
//! assignment found by trying every one, and it is infeasible exactly when none exists.
//! (About half the generated instances are feasible, half not: both answers are checked.)

use proptest::prelude::*;
use skyfleet::placement::solver::{self, Bounds, Prepared};
use skyfleet::placement::{FailureDomain, PoolOption, Problem, SpreadRule, solve};

fn pool(i: usize, provider: u8, region: u8, cost: u32, min: u32, max: u32, cur: u32) -> PoolOption {
    PoolOption {
        name: format!("p{i}"),
        provider: format!("prov{provider}"),
        region: format!("r{region}"),
        cost_per_replica: f64::from(cost) / 100.0,
        min,
        max,
        eligible: true,
        ineligible_reason: None,
        current: cur,
    }
}

fn instance() -> impl Strategy<Value = Problem> {
    let pools = (
        0u8..3,
        0u8..2,
        1u32..20,
        prop_oneof![3 => Just(0u32), 1 => Just(1u32)],
        1u32..6,
        0u32..4,
        prop_oneof![5 => Just(true), 1 => Just(false)],
    );
    (
        prop::collection::vec(pools, 1..=5),
        0u32..7,
        0u32..3,
        prop_oneof![
            Just(FailureDomain::Pool),
            Just(FailureDomain::Region),
            Just(FailureDomain::Provider)
        ],
        (0u32..3, 0u32..3, 0u32..3),
        8u32..20,
    )
        .prop_map(
            |(pools, required, tolerate, domain, spread, max_total)| Problem {
                pools: pools
                    .into_iter()
                    .enumerate()
                    .map(|(i, (prov, reg, cost, min, extra, cur, eligible))| {
                        let mut p = pool(i, prov, reg, cost, min, min + extra, cur);
                        p.eligible = eligible || i == 0;
                        p
                    })
                    .collect(),
                required,
                max_total,
                tolerate,
                domain,
                spread: SpreadRule {
                    min_pools: spread.0,
                    min_providers: spread.1,
                    min_regions: spread.2,
                },
                max_moves: None,
            },
        )
}

fn full_bounds(p: &Problem) -> Bounds {
    Bounds {
        lo: p
            .pools
            .iter()
            .map(|o| if o.eligible { o.min } else { 0 })
            .collect(),
        hi: p
            .pools
            .iter()
            .map(|o| if o.eligible { o.max } else { 0 })
            .collect(),
        required: p.required,
        tolerate: p.tolerate,
        min_total: 0,
        max_total: p.max_total,
        spread: p.spread,
    }
}

/// Calls `visit` with every assignment between `b.lo` and `b.hi`; stops when it returns true.
fn any_assignment(b: &Bounds, mut visit: impl FnMut(&[u32]) -> bool) -> bool {
    let mut x = b.lo.clone();
    loop {
        if visit(&x) {
            return true;
        }
        let mut i = 0;
        loop {
            if i == x.len() {
                return false;
            }
            if x[i] < b.hi[i] {
                x[i] += 1;
                break;
            }
            x[i] = b.lo[i];
            i += 1;
        }
    }
}

// The oracle: the constraints and the objective written again from the problem's own words,
// sharing nothing with the solver's helpers.

/// The failure domain a pool belongs to.
fn domain_of(problem: &Problem, i: usize) -> String {
    let p = &problem.pools[i];
    match problem.domain {
        FailureDomain::Pool => p.name.clone(),
        FailureDomain::Region => format!("{}/{}", p.provider, p.region),
        FailureDomain::Provider => p.provider.clone(),
    }
}

/// Whether `x` meets every constraint of `problem`.
fn oracle_valid(problem: &Problem, x: &[u32]) -> bool {
    use std::collections::{BTreeMap, BTreeSet};
    let within = problem.pools.iter().zip(x).all(|(p, &n)| {
        if p.eligible {
            (p.min..=p.max).contains(&n)
        } else {
            n == 0
        }
    });
    let total: u32 = x.iter().sum();
    let mut per_domain: BTreeMap<String, u32> = BTreeMap::new();
    for (i, &n) in x.iter().enumerate() {
        *per_domain.entry(domain_of(problem, i)).or_default() += n;
    }
    let mut sizes: Vec<u32> = per_domain.into_values().collect();
    sizes.sort_unstable();
    let lost: u32 = sizes.iter().rev().take(problem.tolerate as usize).sum();
    let used = |key: &dyn Fn(usize) -> String| -> usize {
        (0..x.len())
            .filter(|&i| x[i] > 0)
            .map(key)
            .collect::<BTreeSet<_>>()
            .len()
    };
    let pools = used(&|i| problem.pools[i].name.clone());
    let providers = used(&|i| problem.pools[i].provider.clone());
    let regions = used(&|i| format!("{}/{}", problem.pools[i].provider, problem.pools[i].region));
    within
        && total <= problem.max_total
        && total - lost >= problem.required
        && pools >= problem.spread.min_pools as usize
        && providers >= problem.spread.min_providers as usize
        && regions >= problem.spread.min_regions as usize
}

/// (cost in cents, replicas away from the current placement): lower is better.
fn oracle_score(problem: &Problem, x: &[u32]) -> (u64, u64) {
    problem.pools.iter().zip(x).fold((0, 0), |(c, d), (p, &n)| {
        let cents = (p.cost_per_replica * 100.0).round() as u64;
        (
            c + cents * u64::from(n),
            d + u64::from(n.abs_diff(p.current)),
        )
    })
}

/// Replicas moved from `from` to `to`: the smaller of what leaves and what arrives.
fn oracle_moves(from: &[u32], to: &[u32]) -> u32 {
    let left: u32 = from.iter().zip(to).map(|(a, b)| a.saturating_sub(*b)).sum();
    let came: u32 = from.iter().zip(to).map(|(a, b)| b.saturating_sub(*a)).sum();
    left.min(came)
}

/// Every assignment within the pools' bounds, the best valid one by (cost, distance).
fn brute_force(problem: &Problem, b: &Bounds) -> Option<(u64, u64)> {
    let mut best: Option<(u64, u64)> = None;
    any_assignment(b, |x| {
        if oracle_valid(problem, x) {
            let s = oracle_score(problem, x);
            if best.is_none_or(|bs| s < bs) {
                best = Some(s);
            }
        }
        false
    });
    best
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn the_optimum_equals_brute_force(problem in instance()) {
        let prep = Prepared::new(&problem);
        let b = full_bounds(&problem);
        let exact = solver::optimum(&prep, &b);
        let brute = brute_force(&problem, &b);
        prop_assert_eq!(exact.as_ref().map(|s| oracle_score(&problem, &s.x)), brute, "{:?}", problem);
        if let Some(s) = exact {
            prop_assert!(oracle_valid(&problem, &s.x), "the optimum must meet every constraint");
            prop_assert!(s.proven);
        }
    }

    #[test]
    fn every_plan_is_valid_or_says_why(problem in instance()) {
        let plan = solve(&problem);
        let b = full_bounds(&problem);
        let x: Vec<u32> = plan.pools.iter().map(|p| p.replicas).collect();
        if plan.feasible {
            prop_assert!(oracle_valid(&problem, &x), "{:?} {:?}", problem, x);
            prop_assert!(plan.reason.is_none());
            prop_assert!(plan.redundancy_satisfied);
        } else {
            prop_assert!(brute_force(&problem, &b).is_none(), "infeasible only when nothing is feasible");
            let reason = plan.reason.clone().unwrap_or_default();
            prop_assert!(!reason.is_empty());
            prop_assert!(plan.explanation.contains(&reason));
        }
        // Never above the caps, never on an ineligible pool.
        for (p, n) in problem.pools.iter().zip(&x) {
            prop_assert!(*n <= p.max || !p.eligible);
            if !p.eligible { prop_assert_eq!(*n, 0); }
        }
        prop_assert!(plan.total_replicas <= problem.max_total);
        prop_assert!(!plan.explanation.is_empty());
    }

    #[test]
    fn the_churn_budget_holds(problem in instance(), budget in 0u32..3) {
        let problem = Problem { max_moves: Some(budget), ..problem };
        let plan = solve(&problem);
        if plan.feasible {
            let b = full_bounds(&problem);
            // Is there a valid plan that moves nothing? Then the budget must hold.
            let cur: Vec<u32> = problem.pools.iter().zip(&b.hi).map(|(p, h)| p.current.min(*h)).collect();
            let stay_possible = any_assignment(&b, |x| {
                oracle_valid(&problem, x) && oracle_moves(&cur, x) == 0
            });
            if stay_possible {
                let x: Vec<u32> = plan.pools.iter().map(|p| p.replicas).collect();
                let moved = oracle_moves(&cur, &x);
                prop_assert!(moved <= budget, "{} moves > budget {}: {:?}", moved, budget, problem);
            }
        }
    }
}
