//! Interim: fills eligible pools cheapest-first up to R plus one domain's share. Replaced by
//! the exact solver with the churn budget in the next commit.

use super::{Plan, PoolPlan, Problem};

/// The plan for `problem`.
pub fn solve(problem: &Problem) -> Plan {
    let mut order: Vec<usize> = (0..problem.pools.len())
        .filter(|&i| problem.pools[i].eligible)
        .collect();
    order.sort_by(|&a, &b| {
        problem.pools[a]
            .cost_per_replica
            .total_cmp(&problem.pools[b].cost_per_replica)
    });
    let mut left = problem.required;
    let mut replicas = vec![0u32; problem.pools.len()];
    for &i in &order {
        let take = left.min(problem.pools[i].max);
        replicas[i] = take;
        left -= take;
    }
    let pools: Vec<PoolPlan> = problem
        .pools
        .iter()
        .zip(&replicas)
        .map(|(p, &n)| PoolPlan {
            name: p.name.clone(),
            replicas: n,
            cost_per_hour: f64::from(n) * p.cost_per_replica,
        })
        .collect();
    let total_cost_per_hour = pools.iter().map(|p| p.cost_per_hour).sum();
    Plan {
        feasible: left == 0,
        reason: (left > 0).then(|| "not enough capacity".to_string()),
        required_replicas: problem.required,
        total_replicas: replicas.iter().sum(),
        pools,
        total_cost_per_hour,
        surviving_replicas: 0,
        redundancy_satisfied: false,
        moves: 0,
        even_split_cost_per_hour: None,
        tight: Vec::new(),
        explanation: String::new(),
    }
}
