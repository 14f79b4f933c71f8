//! The placement solver against brute force: on hundreds of random small instances its
//! optimum has exactly the cost (then the closeness to the current placement) of the best
//! assignment found by trying every one, and it is infeasible exactly when none exists.
//! (About half the generated instances are feasible, half not: both answers are checked.)

use proptest::prelude::*;
use skyfleet::placement::solver::{self, Bounds, Prepared, Score};
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

/// Every assignment within the bounds, the best valid one by (cost, distance).
fn brute_force(prep: &Prepared, b: &Bounds) -> Option<Score> {
    let n = b.lo.len();
    let mut x = b.lo.clone();
    let mut best: Option<Score> = None;
    loop {
        if prep.valid(b, &x) {
            let s = prep.score(&x);
            if best.is_none_or(|bs| s < bs) {
                best = Some(s);
            }
        }
        let mut i = 0;
        loop {
            if i == n {
                return best;
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn the_optimum_equals_brute_force(problem in instance()) {
        let prep = Prepared::new(&problem);
        let b = full_bounds(&problem);
        let exact = solver::optimum(&prep, &b);
        let brute = brute_force(&prep, &b);
        prop_assert_eq!(exact.as_ref().map(|s| s.score), brute, "{:?}", problem);
        if let Some(s) = exact {
            prop_assert!(prep.valid(&b, &s.x), "the optimum must meet every constraint");
            prop_assert!(s.proven);
        }
    }

    #[test]
    fn every_plan_is_valid_or_says_why(problem in instance()) {
        let plan = solve(&problem);
        let prep = Prepared::new(&problem);
        let b = full_bounds(&problem);
        let x: Vec<u32> = plan.pools.iter().map(|p| p.replicas).collect();
        if plan.feasible {
            prop_assert!(prep.valid(&b, &x), "{:?} {:?}", problem, x);
            prop_assert!(plan.reason.is_none());
            prop_assert!(plan.redundancy_satisfied);
        } else {
            prop_assert!(brute_force(&prep, &b).is_none(), "infeasible only when nothing is feasible");
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
            let prep = Prepared::new(&problem);
            let b = full_bounds(&problem);
            let stay_possible = {
                // Is there a valid plan that moves nothing? Then the budget must hold.
                let mut found = false;
                let n = b.lo.len();
                let mut x = b.lo.clone();
                'outer: loop {
                    let cur: Vec<u32> = problem.pools.iter().zip(&b.hi).map(|(p, h)| p.current.min(*h)).collect();
                    if prep.valid(&b, &x) && skyfleet::placement::stability::moves(&cur, &x) == 0 {
                        found = true;
                        break;
                    }
                    let mut i = 0;
                    loop {
                        if i == n { break 'outer; }
                        if x[i] < b.hi[i] { x[i] += 1; break; }
                        x[i] = b.lo[i];
                        i += 1;
                    }
                }
                found
            };
            if stay_possible {
                prop_assert!(plan.moves <= budget, "{} moves > budget {}: {:?}", plan.moves, budget, problem);
            }
        }
    }
}
