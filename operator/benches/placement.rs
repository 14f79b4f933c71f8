//! How long a placement decision takes: the operator re-plans every workload every sync
//! period, so one workload over 50 pools must take well under a millisecond, and a fleet of
//! 10 000 workloads over 50 pools about a second on one core.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use skyfleet::placement::{FailureDomain, PoolOption, Problem, SpotLoss, SpreadRule, solve};

/// 50 pools: 5 providers × 5 regions × 2 node groups (on-demand and spot), prices and
/// capacities varied deterministically, a few per-pool minimums.
fn pools(seed: u64) -> Vec<PoolOption> {
    let mut s = seed;
    let mut rnd = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 33) as f64 / (1u64 << 31) as f64
    };
    let mut out = Vec::new();
    for provider in 0..5 {
        for region in 0..5 {
            for spot in [false, true] {
                let base = 0.02 + 0.01 * rnd();
                out.push(PoolOption {
                    name: format!("p{provider}-r{region}-{}", if spot { "spot" } else { "od" }),
                    provider: format!("provider{provider}"),
                    region: format!("region{region}"),
                    cost_per_replica: if spot { base * 0.35 } else { base },
                    min: u32::from(provider == 4 && region == 0 && !spot),
                    max: 5 + (rnd() * 40.0) as u32,
                    eligible: rnd() > 0.05,
                    ineligible_reason: None,
                    current: 0,
                    spot,
                });
            }
        }
    }
    out
}

fn problem(pools: Vec<PoolOption>, required: u32, domain: FailureDomain) -> Problem {
    Problem {
        pools,
        required,
        max_total: 200,
        tolerate: 1,
        domain,
        spread: SpreadRule {
            min_pools: 3,
            min_providers: 2,
            min_regions: 3,
        },
        max_moves: Some(4),
        spot: SpotLoss::Ignore,
    }
}

fn bench(c: &mut Criterion) {
    let one = problem(pools(1), 30, FailureDomain::Provider);
    c.bench_function(
        "one workload, 50 pools, R=30, tolerate 1 provider, spread 3/2/3",
        |b| b.iter(|| black_box(solve(black_box(&one)))),
    );
    let region = problem(pools(2), 30, FailureDomain::Region);
    c.bench_function("one workload, 50 pools, R=30, tolerate 1 region", |b| {
        b.iter(|| black_box(solve(black_box(&region))))
    });
    // A re-plan with replicas already running (the churn rule solves three problems).
    let mut running = problem(pools(3), 30, FailureDomain::Provider);
    let first = solve(&running);
    for (p, row) in running.pools.iter_mut().zip(&first.pools) {
        p.current = row.replicas;
    }
    running.required = 36;
    c.bench_function(
        "one workload, 50 pools, re-plan from a running placement",
        |b| b.iter(|| black_box(solve(black_box(&running)))),
    );

    // A spot budget: the cheap spot half of every region must not carry the forecast alone.
    let spot = Problem {
        spot: SpotLoss::Tolerate,
        ..problem(pools(1), 30, FailureDomain::Provider)
    };
    c.bench_function(
        "one workload, 50 pools, R=30, tolerate 1 provider and a spot reclaim",
        |b| b.iter(|| black_box(solve(black_box(&spot)))),
    );

    // The fleet: 10 000 workloads with demands from 2 to 60 replicas, domains mixed.
    let fleet: Vec<Problem> = (0..10_000u64)
        .map(|i| {
            let domain = match i % 3 {
                0 => FailureDomain::Pool,
                1 => FailureDomain::Region,
                _ => FailureDomain::Provider,
            };
            problem(pools(i), 2 + (i % 59) as u32, domain)
        })
        .collect();
    let mut group = c.benchmark_group("fleet");
    group.sample_size(10);
    group.bench_function("10 000 workloads, 50 pools each", |b| {
        b.iter(|| {
            for p in &fleet {
                black_box(solve(p));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
