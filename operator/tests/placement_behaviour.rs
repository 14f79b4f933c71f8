//! What users rely on from a placement decision, on the example manifests users copy:
//! redundancy as capacity, the sentence in status, damped failback, the churn budget, and
//! infeasible constraints that say why and still place what fits.

use skyfleet::api::cloud_pool::CloudPoolSpec;
use skyfleet::api::workload::MultiCloudWorkloadSpec;
use skyfleet::placement::{Plan, PoolInput, plan_workload};

fn docs(file: &str) -> Vec<serde_json::Value> {
    let path = format!("{}/../crds/examples/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_multiple(&text).unwrap()
}

fn pools() -> Vec<PoolInput> {
    docs("cloudpools.yaml")
        .into_iter()
        .map(|d| {
            let spec: CloudPoolSpec = serde_json::from_value(d["spec"].clone()).unwrap();
            let mut p = PoolInput::new(d["metadata"]["name"].as_str().unwrap(), spec);
            p.labels = serde_json::from_value(d["metadata"]["labels"].clone()).unwrap();
            p
        })
        .collect()
}

fn workload(name: &str) -> MultiCloudWorkloadSpec {
    let d = docs("workloads.yaml")
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
        .unwrap();
    serde_json::from_value(d["spec"].clone()).unwrap()
}

fn replicas(plan: &Plan, pool: &str) -> u32 {
    plan.replicas_for(pool)
}

fn with_current(mut pools: Vec<PoolInput>, current: &[(&str, u32)]) -> Vec<PoolInput> {
    for p in &mut pools {
        p.current = current
            .iter()
            .find(|(n, _)| *n == p.name)
            .map_or(0, |(_, c)| *c);
    }
    pools
}

/// Replicas left when every pool of `provider` is lost.
fn without(plan: &Plan, pools: &[PoolInput], provider: &str) -> u32 {
    plan.pools
        .iter()
        .zip(pools)
        .filter(|(_, p)| p.spec.provider != provider)
        .map(|(r, _)| r.replicas)
        .sum()
}

#[test]
fn checkout_survives_losing_any_provider_at_the_lowest_cost() {
    let pools = pools();
    // 2.1 cores at 500m × 70 % is 6 replicas.
    let plan = plan_workload(&workload("checkout"), &pools, 2.1).unwrap();
    assert!(plan.feasible, "{plan:?}");
    assert_eq!(plan.required_replicas, 6);
    for provider in ["aws", "azure", "gcp"] {
        assert!(
            without(&plan, &pools, provider) >= 6,
            "losing {provider}: {plan:?}"
        );
    }
    // Three providers carrying 3 each is the fewest replicas that survive any loss.
    assert_eq!(plan.total_replicas, 9);
    assert_eq!(
        replicas(&plan, "aws-us-east-1-spot"),
        0,
        "not selected by the pool selector"
    );
    // Sanity of the price: what the rows say adds up, and the cheapest cloud carries no less
    // than the dearest.
    let sum: f64 = plan.pools.iter().map(|p| p.cost_per_hour).sum();
    assert!((sum - plan.total_cost_per_hour).abs() < 1e-9);
    assert!(replicas(&plan, "aws-us-east-1") >= replicas(&plan, "gcp-us-central1"));
    assert!(
        plan.explanation.contains("9 replicas for 6 required"),
        "{}",
        plan.explanation
    );
    assert!(
        plan.explanation.contains("leaves 6 ≥ 6 required"),
        "{}",
        plan.explanation
    );
}

#[test]
fn the_sentence_names_pools_the_cheapest_and_what_a_loss_leaves() {
    let pools: Vec<PoolInput> = pools()
        .into_iter()
        .filter(|p| p.name == "aws-us-east-1" || p.name == "gcp-us-central1")
        .collect();
    let mut w = workload("checkout");
    w.placement.spread.min_providers = 0;
    // 1.05 cores → 3 replicas; surviving the loss of either provider needs 3 in each.
    let plan = plan_workload(&w, &pools, 1.05).unwrap();
    assert_eq!(
        (
            replicas(&plan, "aws-us-east-1"),
            replicas(&plan, "gcp-us-central1")
        ),
        (3, 3)
    );
    assert!(
        plan.explanation.starts_with(
            "6 replicas for 3 required: 3 in aws-us-east-1 (cheapest), 3 in gcp-us-central1; losing provider aws leaves 3 ≥ 3 required."
        ),
        "{}",
        plan.explanation
    );
}

#[test]
fn a_lost_provider_is_replaced_and_failback_is_damped_by_the_budget() {
    let w = workload("checkout"); // maxMovesPerDecision: 4
    let healthy = plan_workload(&w, &pools(), 2.1).unwrap();
    let running: Vec<(&str, u32)> = ["aws-us-east-1", "azure-eastus", "gcp-us-central1"]
        .into_iter()
        .map(|n| (n, replicas(&healthy, n)))
        .collect();

    // gcp is lost: its replicas are not "moves", and the others carry the whole demand.
    let mut lost = with_current(pools(), &running);
    for p in &mut lost {
        if p.name == "gcp-us-central1" {
            p.available = false;
            p.unavailable_reason = Some("not Ready for 45s: Unreachable".into());
        }
    }
    let failover = plan_workload(&w, &lost, 2.1).unwrap();
    assert!(failover.feasible, "{failover:?}");
    assert_eq!(replicas(&failover, "gcp-us-central1"), 0);
    let aws = replicas(&failover, "aws-us-east-1");
    let azure = replicas(&failover, "azure-eastus");
    assert!(
        aws >= 6 && azure >= 6,
        "either survivor alone carries 6: {failover:?}"
    );
    assert_eq!(failover.moves, 0, "growing the survivors is not a move");

    // gcp returns. Going back to 3+3+3 saves a third of the cost; it moves 3 replicas,
    // within the budget of 4, so it happens at once.
    let back = with_current(pools(), &[("aws-us-east-1", aws), ("azure-eastus", azure)]);
    let failback = plan_workload(&w, &back, 2.1).unwrap();
    assert_eq!(failback.total_replicas, 9, "{failback:?}");
    assert!(failback.moves <= 4);

    // With a budget of one move per decision, failback takes several decisions, each one
    // valid and cheaper than the last.
    let mut tight = w.clone();
    tight.placement.max_moves_per_decision = Some(1);
    let mut current = vec![
        ("aws-us-east-1", aws),
        ("azure-eastus", azure),
        ("gcp-us-central1", 0),
    ];
    let mut last_cost = f64::INFINITY;
    for step in 0..10 {
        let plan = plan_workload(&tight, &with_current(pools(), &current), 2.1).unwrap();
        assert!(
            plan.feasible && plan.redundancy_satisfied,
            "step {step}: {plan:?}"
        );
        assert!(plan.moves <= 1, "step {step}: {} moves", plan.moves);
        assert!(plan.total_cost_per_hour <= last_cost + 1e-12);
        let next: Vec<(&str, u32)> = current
            .iter()
            .map(|(n, _)| (*n, replicas(&plan, n)))
            .collect();
        if next == current {
            break;
        }
        last_cost = plan.total_cost_per_hour;
        current = next;
    }
    let total: u32 = current.iter().map(|(_, n)| n).sum();
    assert_eq!(
        total, 9,
        "failback completes within a few decisions: {current:?}"
    );
}

#[test]
fn a_small_saving_does_not_move_running_replicas() {
    // aws and azure cost almost the same; replicas running on azure stay there.
    let w = {
        let mut w = workload("checkout");
        w.placement.redundancy.tolerate = 0;
        w.placement.spread.min_providers = 0;
        w
    };
    let plan = plan_workload(&w, &with_current(pools(), &[("azure-eastus", 6)]), 2.1).unwrap();
    assert_eq!(replicas(&plan, "azure-eastus"), 6, "{plan:?}");
    assert_eq!(plan.moves, 0);
    assert!(
        plan.explanation.contains("would save only"),
        "{}",
        plan.explanation
    );
    // On gcp, 10 % dearer, moving 4 of 6 would save about 6 %: not worth it either.
    let plan = plan_workload(&w, &with_current(pools(), &[("gcp-us-central1", 6)]), 2.1).unwrap();
    assert_eq!(replicas(&plan, "gcp-us-central1"), 6, "{plan:?}");
    // At twice the price it is: four move to the cheapest pool (the budget), two stay.
    let mut dear = with_current(pools(), &[("gcp-us-central1", 6)]);
    for p in &mut dear {
        if p.name == "gcp-us-central1" {
            p.spec.pricing.cpu_per_hour *= 2.0;
            p.spec.pricing.memory_gib_per_hour *= 2.0;
        }
    }
    let plan = plan_workload(&w, &dear, 2.1).unwrap();
    assert_eq!(
        (
            replicas(&plan, "aws-us-east-1"),
            replicas(&plan, "gcp-us-central1")
        ),
        (4, 2),
        "{plan:?}"
    );
    assert_eq!(plan.moves, 4, "four moves, the budget");
    assert!(
        plan.explanation
            .contains("the most placement.maxMovesPerDecision allows"),
        "{}",
        plan.explanation
    );
}

#[test]
fn infeasible_redundancy_says_why_and_still_places_what_fits() {
    let mut w = workload("checkout");
    w.placement.redundancy.tolerate = 3; // only three providers are selected
    let plan = plan_workload(&w, &pools(), 2.1).unwrap();
    assert!(!plan.feasible);
    let reason = plan.reason.clone().unwrap();
    assert!(
        reason.contains("surviving the loss of any 3 providers needs at least 4 providers"),
        "{reason}"
    );
    assert!(
        plan.total_replicas >= 6,
        "as many replicas as fit: {plan:?}"
    );
    assert!(plan.explanation.starts_with("Infeasible: "));
}

#[test]
fn nothing_eligible_and_not_enough_room_are_explained() {
    let mut w = workload("checkout");
    w.placement.pool_selector = Some(
        serde_json::from_value(serde_json::json!({"matchLabels": {"skyfleet.io/tier": "gold"}}))
            .unwrap(),
    );
    let plan = plan_workload(&w, &pools(), 2.1).unwrap();
    assert!(!plan.feasible);
    assert!(plan.reason.unwrap().starts_with(
        "no CloudPool is eligible: aws-us-east-1 (not selected by placement.poolSelector)"
    ));
    assert_eq!(plan.total_replicas, 0);

    // 64 cores per pool hold 128 replicas of 500m; 30 replicas at max fit, but surviving
    // a provider loss with 30 needs 45 > replicas.max.
    let plan = plan_workload(&workload("checkout"), &pools(), 1000.0).unwrap();
    assert_eq!(plan.required_replicas, 30);
    assert!(!plan.feasible);
    assert!(
        plan.reason
            .clone()
            .unwrap()
            .contains("need 45 in total, above replicas.max 30"),
        "{:?}",
        plan.reason
    );
    assert_eq!(plan.total_replicas, 30, "as many as replicas.max allows");
    assert_eq!(
        plan.surviving_replicas, 20,
        "redundancy as close as possible: 10+10+10"
    );
}

#[test]
fn capacity_limits_bound_a_pool() {
    let mut pools = pools();
    for p in &mut pools {
        if p.name == "aws-us-east-1" {
            // Other workloads hold 63 of its 64 cores: two replicas of 500m fit.
            p.used_by_others = (63.0, 0.0);
        }
    }
    let mut w = workload("checkout");
    w.placement.redundancy.tolerate = 0;
    w.placement.spread.min_providers = 0;
    let plan = plan_workload(&w, &pools, 2.1).unwrap();
    assert_eq!(replicas(&plan, "aws-us-east-1"), 2, "{plan:?}");
    assert_eq!(replicas(&plan, "azure-eastus"), 4);
    assert!(
        plan.tight
            .iter()
            .any(|t| t.starts_with("aws-us-east-1 is full")),
        "{:?}",
        plan.tight
    );
}
