//! Words for a plan: which constraints bind it, what it saves against an even split, and the
//! one sentence that status, Events and `skyfleet plan` show.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::solver::{Bounds, Prepared};
use super::stability::domain_word;
use super::{FailureDomain, Plan, Problem};

/// The constraints that hold with equality in `x`, named as users write them.
pub fn tight(problem: &Problem, prep: &Prepared, full: &Bounds, x: &[u32]) -> Vec<String> {
    let mut out = Vec::new();
    let total: u32 = x.iter().sum();
    if full.tolerate > 0 && full.required > 0 && prep.surviving(x, full.tolerate) == full.required {
        out.push(format!(
            "placement.redundancy (tolerate {} {})",
            full.tolerate,
            domain_word(problem.domain, full.tolerate)
        ));
    }
    if full.on_demand_required > 0 && prep.on_demand(x) <= full.on_demand_required {
        out.push(format!(
            "placement.redundancy.spot (a spot reclaim leaves {} of {})",
            prep.on_demand(x),
            full.on_demand_required
        ));
    }
    if total == full.max_total && total > 0 {
        out.push(format!("replicas.max ({})", full.max_total));
    }
    let have = prep.spread_of(x);
    for (what, want, got) in [
        ("minPools", full.spread.min_pools, have.min_pools),
        (
            "minProviders",
            full.spread.min_providers,
            have.min_providers,
        ),
        ("minRegions", full.spread.min_regions, have.min_regions),
    ] {
        if want > 0 && want == got {
            out.push(format!("placement.spread.{what} ({want})"));
        }
    }
    for (i, p) in problem.pools.iter().enumerate() {
        if !p.eligible {
            continue;
        }
        if x[i] > 0 && x[i] == full.hi[i] && full.hi[i] < full.max_total {
            out.push(format!("{} is full ({} replicas fit)", p.name, full.hi[i]));
        }
        if full.lo[i] > 0 && x[i] == full.lo[i] {
            out.push(format!(
                "placement.pools[{}].minReplicas ({})",
                p.name, full.lo[i]
            ));
        }
    }
    out
}

/// The cost per hour of `total` replicas spread as evenly as possible over the eligible
/// pools with room (bounds ignored): the naive split skyfleet is compared with.
pub fn even_split_cost(problem: &Problem, full: &Bounds, total: u32) -> Option<f64> {
    let pools: Vec<f64> = problem
        .pools
        .iter()
        .enumerate()
        .filter(|(i, p)| p.eligible && full.hi[*i] > 0)
        .map(|(_, p)| p.cost_per_replica)
        .collect();
    if pools.is_empty() || total == 0 {
        return None;
    }
    let n = pools.len() as u32;
    let (base, extra) = (total / n, total % n);
    Some(
        pools
            .iter()
            .enumerate()
            .map(|(i, c)| c * f64::from(base + u32::from((i as u32) < extra)))
            .sum(),
    )
}

/// Money as people read it: two decimals, more when the amount is small.
pub fn money(v: f64) -> String {
    if v != 0.0 && v.abs() < 0.1 {
        format!("{v:.4}")
    } else {
        format!("{v:.2}")
    }
}

/// The sentence: replicas per pool, what losing the worst domains leaves, cost and saving.
pub fn sentence(problem: &Problem, prep: &Prepared, plan: &Plan, note: Option<&str>) -> String {
    let mut s = String::new();
    let used: Vec<(usize, u32)> = plan
        .pools
        .iter()
        .enumerate()
        .filter(|(_, p)| p.replicas > 0)
        .map(|(i, p)| (i, p.replicas))
        .collect();
    let cheapest = used
        .iter()
        .min_by_key(|(i, _)| prep.cost[*i])
        .map(|(i, _)| *i)
        .filter(|_| used.len() > 1);
    if let Some(reason) = &plan.reason {
        let _ = write!(s, "Infeasible: {reason}. Best partial plan: ");
    }
    let _ = write!(
        s,
        "{} replicas for {} required",
        plan.total_replicas, plan.required_replicas
    );
    if used.is_empty() {
        s.push('.');
    } else {
        s.push_str(": ");
        let parts: Vec<String> = used
            .iter()
            .map(|(i, n)| {
                let mark = if Some(*i) == cheapest {
                    " (cheapest)"
                } else {
                    ""
                };
                format!("{n} in {}{mark}", problem.pools[*i].name)
            })
            .collect();
        s.push_str(&parts.join(", "));
        if problem.tolerate > 0 && plan.required_replicas > 0 {
            let worst = worst_domains(problem, prep, &plan_x(plan), problem.tolerate);
            let _ = write!(
                s,
                "; losing {} {} leaves {} {} {} required",
                domain_word(problem.domain, worst.len() as u32),
                worst.join(" and "),
                plan.surviving_replicas,
                if plan.surviving_replicas >= plan.required_replicas {
                    "≥"
                } else {
                    "<"
                },
                plan.required_replicas
            );
        }
        if let Some(left) = plan.surviving_spot_reclaim {
            let _ = write!(
                s,
                "; a spot reclaim leaves {left} on on-demand pools {} {} required",
                if left >= plan.required_replicas {
                    "≥"
                } else {
                    "<"
                },
                plan.required_replicas
            );
        }
        let _ = write!(s, ". {}/h", money(plan.total_cost_per_hour));
        if let Some(even) = plan.even_split_cost_per_hour
            && even > plan.total_cost_per_hour * 1.0005
        {
            let _ = write!(
                s,
                ", {:.0}% below an even split",
                (even - plan.total_cost_per_hour) / even * 100.0
            );
        }
        s.push('.');
    }
    if let Some(note) = note {
        let _ = write!(s, " {}{}.", note[..1].to_uppercase(), &note[1..]);
    }
    s
}

fn plan_x(plan: &Plan) -> Vec<u32> {
    plan.pools.iter().map(|p| p.replicas).collect()
}

/// Names of the `k` domains holding the most replicas (the loss the plan is sized for).
fn worst_domains(problem: &Problem, prep: &Prepared, x: &[u32], k: u32) -> Vec<String> {
    let mut per: BTreeMap<usize, (u32, String)> = BTreeMap::new();
    for (i, p) in problem.pools.iter().enumerate() {
        let name = match problem.domain {
            FailureDomain::Pool => p.name.clone(),
            FailureDomain::Region => format!("{}/{}", p.provider, p.region),
            FailureDomain::Provider => p.provider.clone(),
        };
        let e = per.entry(prep.domain[i]).or_insert((0, name));
        e.0 += x[i];
    }
    let mut v: Vec<(u32, String)> = per.into_values().filter(|(n, _)| *n > 0).collect();
    v.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    v.into_iter().take(k as usize).map(|(_, n)| n).collect()
}
