//! The placement solver against brute force: on hundreds of random small instances its
//! optimum has exactly the cost (then the closeness to the current placement) of the best
//! assignment found by trying every one, and it is infeasible exactly when none exists.
//! (About half the generated instances are feasible, half not: both answers are checked.)
//! Half the instances also ask to survive a spot reclaim (every Spot pool lost at once)
//! besides the loss of `tolerate` domains; the oracle checks both by listing the scenarios.

use proptest::prelude::*;
use skyfleet::placement::solver::{self, Bounds, Prepared};
use skyfleet::placement::{FailureDomain, PoolOption, Problem, SpotLoss, SpreadRule, solve};

fn pool(i: usize, provider: u8, region: u8, cost: u32, min: u32, max: u32, cur: u32) -> PoolOption {
    PoolOption {
        spot: false,
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
        any::<bool>(),
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
        prop_oneof![Just(SpotLoss::Ignore), Just(SpotLoss::Tolerate)],
    )
        .prop_map(
            |(pools, required, tolerate, domain, spread, max_total, spot)| Problem {
                pools: pools
                    .into_iter()
                    .enumerate()
                    .map(
                        |(i, (prov, reg, cost, min, extra, cur, eligible, is_spot))| {
                            let mut p = pool(i, prov, reg, cost, min, min + extra, cur);
                            p.eligible = eligible || i == 0;
                            p.spot = is_spot;
                            p
                        },
                    )
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
                spot,
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
        on_demand_required: match p.spot {
            SpotLoss::Ignore => 0,
            SpotLoss::Tolerate => p.required,
        },
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

/// Replicas left in the worst loss `problem` must survive, found by listing every scenario:
/// each set of at most `tolerate` failure domains lost at once, and (when the spot budget
/// is on) every Spot pool reclaimed at once.
fn oracle_worst_loss(problem: &Problem, x: &[u32]) -> u32 {
    let mut domains: Vec<String> = (0..x.len()).map(|i| domain_of(problem, i)).collect();
    domains.sort();
    domains.dedup();
    let total: u32 = x.iter().sum();
    let mut worst = total;
    for lost in 0u32..(1 << domains.len()) {
        if lost.count_ones() > problem.tolerate {
            continue;
        }
        let left: u32 = (0..x.len())
            .filter(|&i| {
                let d = domains
                    .iter()
                    .position(|n| *n == domain_of(problem, i))
                    .unwrap_or(0);
                lost & (1 << d) == 0
            })
            .map(|i| x[i])
            .sum();
        worst = worst.min(left);
    }
    if problem.spot == SpotLoss::Tolerate {
        let left: u32 = (0..x.len())
            .filter(|&i| !problem.pools[i].spot)
            .map(|i| x[i])
            .sum();
        worst = worst.min(left);
    }
    worst
}

/// Whether `x` meets every constraint of `problem`.
fn oracle_valid(problem: &Problem, x: &[u32]) -> bool {
    use std::collections::BTreeSet;
    let within = problem.pools.iter().zip(x).all(|(p, &n)| {
        if p.eligible {
            (p.min..=p.max).contains(&n)
        } else {
            n == 0
        }
    });
    let total: u32 = x.iter().sum();
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
        && oracle_worst_loss(problem, x) >= problem.required
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

/// Instances where the spot budget and `tolerate` over providers both bind: at least one
/// Spot and one on-demand pool, `tolerate ≥ 1`, Spot pools at about a third of the price
/// (so the cheapest plan without the budget leans on them), no spread (so the flow, not
/// branch and bound, decides).
fn spot_instance() -> impl Strategy<Value = Problem> {
    (instance(), 1u32..3, any::<u64>()).prop_map(|(mut problem, tolerate, bits)| {
        problem.spot = SpotLoss::Tolerate;
        problem.tolerate = tolerate;
        problem.spread = SpreadRule::default();
        let n = problem.pools.len();
        for (i, p) in problem.pools.iter_mut().enumerate() {
            p.spot = (n >= 2 && i == 0) || (i >= 2 && bits & (1 << i) != 0);
            if p.spot {
                let cents = (p.cost_per_replica * 100.0 / 3.0).round().max(1.0);
                p.cost_per_replica = cents / 100.0;
            }
        }
        problem
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn the_spot_budget_optimum_equals_brute_force(problem in spot_instance()) {
        let prep = Prepared::new(&problem);
        let b = full_bounds(&problem);
        let exact = solver::optimum(&prep, &b);
        let brute = brute_force(&problem, &b);
        prop_assert_eq!(exact.as_ref().map(|s| oracle_score(&problem, &s.x)), brute, "{:?}", problem);
        if let Some(s) = exact {
            prop_assert!(oracle_valid(&problem, &s.x));
        }
        // The greedy path and the flow agree where the spot budget asks nothing.
        let ignore = Problem { spot: SpotLoss::Ignore, ..problem.clone() };
        let b0 = full_bounds(&ignore);
        prop_assert_eq!(
            solver::optimum(&prep, &b0).map(|s| oracle_score(&ignore, &s.x)),
            brute_force(&ignore, &b0)
        );
    }

    #[test]
    fn a_spot_budget_that_cannot_hold_costs_no_other_redundancy(problem in spot_instance()) {
        let ignore = Problem { spot: SpotLoss::Ignore, ..problem.clone() };
        let without = solve(&ignore);
        let with = solve(&problem);
        let on_demand = |plan: &skyfleet::placement::Plan| -> u32 {
            plan.pools.iter().zip(&problem.pools).filter(|(_, o)| !o.spot).map(|(p, _)| p.replicas).sum()
        };
        prop_assert_eq!(with.surviving_spot_reclaim, Some(on_demand(&with)));
        prop_assert_eq!(without.surviving_spot_reclaim, None);
        if without.feasible {
            // Whatever the on-demand pools can hold, the loss of `tolerate` providers is
            // still survived and nothing less runs than the demand needs.
            prop_assert!(with.surviving_replicas >= problem.required, "{:?}\n{:?}", problem, with);
            prop_assert!(with.total_replicas >= problem.required);
            if !with.feasible {
                let reason = with.reason.clone().unwrap_or_default();
                prop_assert!(reason.contains("spot reclaim"), "{}", reason);
                prop_assert!(with.tight.iter().any(|t| t.contains("redundancy.spot")), "{:?}", with.tight);
                // As many on-demand replicas as any plan meeting the rest could have.
                let b = Bounds { on_demand_required: 0, ..full_bounds(&problem) };
                let mut most = 0;
                any_assignment(&b, |x| {
                    if oracle_valid(&ignore, x) {
                        let od: u32 = x.iter().zip(&problem.pools).filter(|(_, o)| !o.spot).map(|(n, _)| *n).sum();
                        most = most.max(od.min(problem.required));
                    }
                    false
                });
                prop_assert_eq!(on_demand(&with).min(problem.required), most, "{:?}\n{:?}", problem, with);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    /// The flow on its own, at every cap, with a forced total (as partial plans ask): its
    /// best over the caps is the brute-force optimum.
    #[test]
    fn the_flow_alone_equals_brute_force(problem in spot_instance(), min_total in 0u32..8) {
        let prep = Prepared::new(&problem);
        let b = Bounds { min_total, ..full_bounds(&problem) };
        let flow = (0..=problem.required)
            .filter_map(|t| solver::spot_budget_at(&prep, &b, t))
            .map(|x| {
                prop_assert!(oracle_valid(&problem, &x), "{:?} {:?}", problem, x);
                prop_assert!(x.iter().sum::<u32>() >= min_total);
                Ok(oracle_score(&problem, &x))
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .min();
        let mut brute: Option<(u64, u64)> = None;
        any_assignment(&b, |x| {
            if oracle_valid(&problem, x) && x.iter().sum::<u32>() >= min_total {
                let s = oracle_score(&problem, x);
                if brute.is_none_or(|bs| s < bs) {
                    brute = Some(s);
                }
            }
            false
        });
        prop_assert_eq!(flow, brute, "{:?}", problem);
    }
}
