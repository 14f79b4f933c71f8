//! What to do in each member once a plan is made, so that nothing that runs is lost.
//!
//! - Make-before-break: a pool shrinks only while the replicas that are *Ready* (elsewhere,
//!   or surplus in the pool itself) still cover the plan's total and leave no less redundancy
//!   than the plan promises (or than there is now, when that is less), for the loss of
//!   `tolerate` domains and, under a spot budget, for a spot reclaim. Removals count against
//!   `maxMovesPerDecision`.
//! - An infeasible plan never takes capacity away: every pool keeps what it runs, and the
//!   plan's growth is added only while the total stays within `replicas.max`.
//! - A member that did not answer, or where a foreign object holds skyfleet's name, is never
//!   touched.

use std::collections::BTreeMap;

use crate::api::workload::FailureDomain;

/// What to do with the workload's Deployment in one pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberAction {
    /// Server-side apply the Deployment with this many replicas.
    Apply(u32),
    /// Delete the Deployment (UID precondition): the pool is to run nothing and may not take
    /// replicas.
    Delete,
    /// Touch nothing.
    Leave,
}

/// One pool as the gate sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// The CloudPool.
    pub name: String,
    /// Its failure domain for the configured redundancy (pool, provider/region, provider).
    pub domain: String,
    /// The plan may put replicas here.
    pub eligible: bool,
    /// The member answered and skyfleet may act there.
    pub actionable: bool,
    /// The workload's Deployment exists there.
    pub has_deployment: bool,
    /// Its `spec.replicas` (the last known count when the member did not answer).
    pub current: u32,
    /// Its Ready replicas (0 when the member did not answer: unknown is not Ready).
    pub ready: u32,
    /// What the plan puts here.
    pub planned: u32,
    /// Price of one replica here: the dearest go first.
    pub cost: f64,
    /// Spot capacity: lost in a spot reclaim.
    pub spot: bool,
}

/// What the gate decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Gated {
    /// One action per slot, in order.
    pub actions: Vec<MemberAction>,
    /// Replicas each slot is to run after the actions.
    pub after: Vec<u32>,
    /// Replicas kept beyond the plan until replacements are Ready, or by the churn budget.
    pub held: u32,
}

/// The rules the gate keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// Whether the plan meets every constraint.
    pub feasible: bool,
    /// `replicas.max`.
    pub max_total: u32,
    /// R: the replicas demand needs.
    pub required: u32,
    /// K: domains whose loss must leave R.
    pub tolerate: u32,
    /// Ready replicas a spot reclaim must leave (on on-demand pools); 0 without a budget.
    pub on_demand_required: u32,
    /// Most removals on answering pools in this decision.
    pub max_removals: Option<u32>,
}

/// The key of the domain a pool belongs to.
pub fn domain_key(domain: FailureDomain, pool: &str, provider: &str, region: &str) -> String {
    match domain {
        FailureDomain::Pool => format!("pool/{pool}"),
        FailureDomain::Region => format!("region/{provider}/{region}"),
        FailureDomain::Provider => format!("provider/{provider}"),
    }
}

/// Ready replicas left after losing the `k` domains with the most Ready replicas.
pub fn surviving(slots: &[Slot], ready: &[u32], k: u32) -> u32 {
    let mut per: BTreeMap<&str, u32> = BTreeMap::new();
    for (s, &r) in slots.iter().zip(ready) {
        *per.entry(s.domain.as_str()).or_default() += r;
    }
    let mut counts: Vec<u32> = per.into_values().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    counts.iter().skip(k as usize).sum()
}

/// Ready replicas on on-demand pools: what a spot reclaim leaves.
pub fn on_demand(slots: &[Slot], ready: &[u32]) -> u32 {
    slots
        .iter()
        .zip(ready)
        .filter(|(s, _)| !s.spot)
        .map(|(_, r)| *r)
        .sum()
}

/// Ready replicas each slot has when it runs `after[i]`: a Deployment scaled down removes
/// its not-Ready pods first.
pub fn ready_after(slots: &[Slot], after: &[u32]) -> Vec<u32> {
    slots
        .iter()
        .zip(after)
        .map(|(s, &a)| s.ready.min(a))
        .collect()
}

/// The actions for `slots` under `rules`.
pub fn gate(slots: &[Slot], rules: &Rules) -> Gated {
    // Targets: a feasible plan as planned; an infeasible one only grows, within the ceiling.
    let running: u32 = slots
        .iter()
        .filter(|s| s.actionable)
        .map(|s| s.current)
        .sum();
    let mut room = rules.max_total.saturating_sub(running);
    let target: Vec<u32> = slots
        .iter()
        .map(|s| {
            if !s.actionable {
                s.current
            } else if rules.feasible {
                if s.eligible { s.planned } else { 0 }
            } else if s.eligible {
                let growth = s.planned.saturating_sub(s.current).min(room);
                room -= growth;
                s.current + growth
            } else {
                s.current
            }
        })
        .collect();
    // Growth at once; removals held back, then released one by one while they are safe.
    let mut after: Vec<u32> = slots
        .iter()
        .zip(&target)
        .map(|(s, &t)| t.max(s.current))
        .collect();
    let need: u32 = slots
        .iter()
        .zip(&target)
        .map(|(s, &t)| {
            if s.actionable {
                t
            } else {
                s.planned.min(s.current)
            }
        })
        .sum();
    let ready_now = ready_after(slots, &after);
    let redundancy_floor = if rules.tolerate > 0 {
        rules
            .required
            .min(surviving(slots, &ready_now, rules.tolerate))
    } else {
        0
    };
    let on_demand_floor = rules.on_demand_required.min(on_demand(slots, &ready_now));
    let mut budget = rules.max_removals.unwrap_or(u32::MAX);
    let mut order: Vec<usize> = (0..slots.len())
        .filter(|&i| slots[i].actionable && target[i] < after[i])
        .collect();
    // Ineligible pools first, then the dearest; ties by name for a stable order.
    order.sort_by(|&a, &b| {
        let (sa, sb) = (&slots[a], &slots[b]);
        sa.eligible
            .cmp(&sb.eligible)
            .then(sb.cost.total_cmp(&sa.cost))
            .then(sa.name.cmp(&sb.name))
    });
    let safe = |after: &[u32]| {
        let ready = ready_after(slots, after);
        ready.iter().sum::<u32>() >= need
            && (rules.tolerate == 0 || surviving(slots, &ready, rules.tolerate) >= redundancy_floor)
            && on_demand(slots, &ready) >= on_demand_floor
    };
    for &i in &order {
        while budget > 0 && after[i] > target[i] {
            after[i] -= 1;
            // Removing a replica that is not Ready costs nothing; a Ready one must be covered.
            if slots[i].ready.min(after[i] + 1) == slots[i].ready.min(after[i]) || safe(&after) {
                budget -= 1;
            } else {
                after[i] += 1;
                break;
            }
        }
    }
    let held = slots
        .iter()
        .zip(&target)
        .zip(&after)
        .filter(|((s, _), _)| s.actionable)
        .map(|((_, &t), &a)| a.saturating_sub(t))
        .sum();
    let actions = slots
        .iter()
        .zip(&after)
        .map(|(s, &a)| {
            if !s.actionable {
                MemberAction::Leave
            } else if a == 0 && !s.eligible && s.has_deployment && rules.feasible {
                MemberAction::Delete
            } else if a > 0 || s.has_deployment {
                MemberAction::Apply(a)
            } else {
                MemberAction::Leave
            }
        })
        .collect();
    Gated {
        actions,
        after,
        held,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(name: &str, domain: &str, current: u32, ready: u32, planned: u32) -> Slot {
        Slot {
            name: name.into(),
            domain: domain.into(),
            eligible: planned > 0,
            actionable: true,
            has_deployment: current > 0,
            current,
            ready,
            planned,
            cost: 1.0,
            spot: false,
        }
    }

    fn rules(required: u32, tolerate: u32) -> Rules {
        Rules {
            feasible: true,
            max_total: 100,
            required,
            tolerate,
            on_demand_required: 0,
            max_removals: None,
        }
    }

    #[test]
    fn a_move_to_a_disjoint_set_keeps_the_old_replicas_until_the_new_are_ready() {
        let old = slot("a", "a", 6, 6, 0);
        let mut new = slot("b", "b", 0, 0, 6);
        new.eligible = true;
        let g = gate(&[old.clone(), new.clone()], &rules(6, 0));
        assert_eq!(
            g.actions,
            vec![MemberAction::Apply(6), MemberAction::Apply(6)]
        );
        assert_eq!(g.held, 6);

        // Four of the new ones are Ready: four of the old may go.
        let new4 = Slot {
            current: 6,
            ready: 4,
            has_deployment: true,
            ..new.clone()
        };
        let g = gate(&[old.clone(), new4], &rules(6, 0));
        assert_eq!(g.after, vec![2, 6]);

        // All Ready: the old Deployment goes.
        let new6 = Slot {
            current: 6,
            ready: 6,
            has_deployment: true,
            ..new
        };
        let g = gate(&[old, new6], &rules(6, 0));
        assert_eq!(
            g.actions,
            vec![MemberAction::Delete, MemberAction::Apply(6)]
        );
        assert_eq!(g.held, 0);
    }

    #[test]
    fn scale_down_removes_unready_pods_freely_and_ready_ones_only_when_covered() {
        // 6 planned down to 4 while one pod is not Ready.
        let g = gate(
            &[slot("a", "a", 3, 2, 2), slot("b", "b", 3, 3, 2)],
            &rules(4, 0),
        );
        assert_eq!(g.after, vec![2, 2]);
        // A pool whose pods never get Ready: nothing elsewhere shrinks below the plan.
        let g = gate(
            &[slot("a", "a", 4, 4, 0), slot("b", "b", 4, 0, 4)],
            &rules(4, 0),
        );
        assert_eq!(g.after, vec![4, 4]);
    }

    #[test]
    fn removals_never_cut_redundancy_below_what_the_plan_promises() {
        // Tolerate one provider: 3 + 3 over two providers, moving the first provider's three
        // to a third provider that is not Ready yet.
        let slots = [
            slot("a", "p1", 3, 3, 0),
            slot("b", "p2", 3, 3, 3),
            Slot {
                eligible: true,
                has_deployment: true,
                ..slot("c", "p3", 3, 0, 3)
            },
        ];
        let g = gate(&slots, &rules(3, 1));
        assert_eq!(g.after, vec![3, 3, 3], "losing p2 must still leave 3 Ready");
        let mut slots = slots;
        slots[2].ready = 3;
        assert_eq!(gate(&slots, &rules(3, 1)).after, vec![0, 3, 3]);
    }

    #[test]
    fn removals_never_cut_what_a_spot_reclaim_leaves() {
        // 4 move from one on-demand pool to another whose replicas are not Ready yet, while
        // a Spot pool shrinks from 8 to 4: the Spot surplus covers the total, but not a
        // reclaim, so the old on-demand replicas stay until their replacements are Ready.
        let slots = [
            slot("od-a", "p1", 4, 4, 0),
            Slot {
                spot: true,
                has_deployment: true,
                ..slot("spot", "p1", 8, 8, 4)
            },
            Slot {
                eligible: true,
                has_deployment: true,
                ..slot("od-b", "p2", 4, 0, 4)
            },
        ];
        let mut r = rules(4, 0);
        r.on_demand_required = 4;
        assert_eq!(gate(&slots, &r).after, vec![4, 4, 4]);
        r.on_demand_required = 0;
        assert_eq!(
            gate(&slots, &r).after,
            vec![0, 8, 4],
            "without a budget they may go"
        );
        let mut slots = slots;
        slots[2].ready = 4;
        r.on_demand_required = 4;
        assert_eq!(gate(&slots, &r).after, vec![0, 4, 4]);
    }

    #[test]
    fn the_churn_budget_bounds_removals_per_decision() {
        let mut r = rules(2, 0);
        r.max_removals = Some(1);
        let g = gate(&[slot("a", "a", 3, 3, 1), slot("b", "b", 3, 3, 1)], &r);
        assert_eq!(g.after.iter().sum::<u32>(), 5, "one removal only");
        assert_eq!(g.held, 3);
    }

    #[test]
    fn members_that_did_not_answer_are_never_touched_and_not_counted_ready() {
        let mut gone = slot("a", "a", 3, 3, 3);
        gone.actionable = false;
        gone.ready = 0;
        let g = gate(&[gone.clone(), slot("b", "b", 5, 5, 3)], &rules(6, 0));
        assert_eq!(g.actions[0], MemberAction::Leave);
        assert_eq!(
            g.after,
            vec![3, 5],
            "b keeps what covers a's unknown replicas"
        );
        // A lost pool (planned 0) does not hold back the others.
        gone.planned = 0;
        gone.eligible = false;
        let g = gate(&[gone, slot("b", "b", 5, 5, 3)], &rules(3, 0));
        assert_eq!(g.after, vec![3, 3]);
    }

    #[test]
    fn infeasible_plans_never_reduce_and_grow_only_to_the_ceiling() {
        let mut r = rules(6, 0);
        r.feasible = false;
        r.max_total = 6;
        let slots = [
            slot("a", "a", 4, 4, 1),
            slot("b", "b", 2, 2, 2),
            Slot {
                eligible: true,
                ..slot("c", "c", 0, 0, 3)
            },
        ];
        let g = gate(&slots, &r);
        assert_eq!(
            g.actions,
            vec![
                MemberAction::Apply(4),
                MemberAction::Apply(2),
                MemberAction::Leave
            ]
        );
        r.max_total = 8;
        assert_eq!(gate(&slots, &r).actions[2], MemberAction::Apply(2));
        let drained = Slot {
            eligible: false,
            ..slot("d", "d", 2, 2, 0)
        };
        assert_eq!(
            gate(&[drained], &r).actions,
            vec![MemberAction::Apply(2)],
            "nothing deleted"
        );
    }
}
