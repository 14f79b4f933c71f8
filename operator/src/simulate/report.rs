//! What a run measured, per strategy, and the table people read.

use std::collections::BTreeMap;

use serde::Serialize;

use super::strategy::Strategy;

/// One strategy's totals over the trace.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Money for every replica that existed, starting ones included.
    pub cost: f64,
    /// Replica-hours, starting ones included.
    pub replica_hours: f64,
    /// Cores used over cores requested by ready replicas (demand capped at their capacity).
    pub utilization: f64,
    /// Core-hours of demand above what ready replicas could serve (their CPU requests).
    pub unmet_core_hours: f64,
    /// Unmet over total demand core-hours.
    pub unmet_share: f64,
    /// Share of steps with no unmet demand.
    pub availability: f64,
    /// Replicas moved between pools: min(Σ decreases, Σ increases) per step, summed.
    pub moves: u64,
    /// The largest shortfall of one step, in cores: demand above what Ready replicas serve.
    pub worst_shortfall_cores: f64,
    /// That shortfall as a share of the demand of its step (0 when nothing was unmet).
    pub worst_shortfall_share: f64,
}

/// One step of one strategy, as the CSV and the plot show it, so a surprising total can be
/// traced to the steps that made it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Step {
    /// Seconds after the start of the trace (the time `--fail` offsets count from).
    pub offset: u64,
    /// Demand in cores.
    pub demand: f64,
    /// Cores the strategy sized for (skyfleet: its estimate after stabilisation; oracle: the
    /// highest demand until new replicas are ready; static-peak: the peak), when it sizes for
    /// a demand at all (the reactive baseline scales on utilisation instead).
    pub sized_for: Option<f64>,
    /// What can be served, in time order: the CPU requests of the replicas ready at the
    /// step's start (`from` 0), then more at each moment within the step that starting
    /// replicas finish their startup.
    pub ready: Vec<Ready>,
    /// Replicas per pool, starting ones included, in the order of the pools given.
    pub replicas: Vec<u32>,
    /// Replicas per pool the strategy asked for at this step (a Deployment's
    /// `spec.replicas`; a lost pool keeps what it was asked for before it was lost).
    pub desired: Vec<u32>,
    /// Cost per hour of every replica that exists.
    pub cost_per_hour: f64,
    /// Demand above capacity, in cores, averaged over the step.
    pub unmet: f64,
    /// Replicas moved between pools at this step.
    pub moves: u32,
}

/// Ready capacity within a step: from `from` seconds after the step's start until the next
/// [`Ready`] of the step (or its end), `capacity` cores of ready replicas' requests serve.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ready {
    pub from: u64,
    pub capacity: f64,
}

impl Step {
    /// Replicas in all pools.
    pub fn total_replicas(&self) -> u32 {
        self.replicas.iter().sum()
    }

    /// Cores ready at the step's start.
    pub fn capacity(&self) -> f64 {
        self.ready.first().map_or(0.0, |r| r.capacity)
    }

    /// The last capacity that comes within the step, if any does.
    pub fn later(&self) -> Option<Ready> {
        self.ready.get(1..).and_then(<[Ready]>::last).copied()
    }
}

/// Sums one strategy's steps into a [`Summary`].
#[derive(Debug, Clone, Default)]
pub struct Meter {
    cost: f64,
    replica_hours: f64,
    used_core_hours: f64,
    capacity_core_hours: f64,
    demand_core_hours: f64,
    unmet_core_hours: f64,
    steps: u64,
    met_steps: u64,
    moves: u64,
    worst: (f64, f64),
}

impl Meter {
    /// One step of `seconds`: `replicas` existing at `cost_per_hour`, the step's `ready`
    /// capacity in time order (see [`Step::ready`]), `demand` cores, and `moves` replicas
    /// moved. Returns the unmet cores averaged over the step.
    pub fn step(
        &mut self,
        seconds: u64,
        replicas: u32,
        cost_per_hour: f64,
        ready: &[Ready],
        demand: f64,
        moves: u32,
    ) -> f64 {
        let hours = seconds as f64 / 3600.0;
        let ends = ready.iter().skip(1).map(|r| r.from).chain([seconds]);
        let shares: Vec<(f64, f64)> = ready
            .iter()
            .zip(ends)
            .map(|(r, end)| {
                let share = end.saturating_sub(r.from) as f64 / seconds.max(1) as f64;
                (share, r.capacity)
            })
            .collect();
        let mean = |f: &dyn Fn(f64) -> f64| shares.iter().map(|&(w, c)| w * f(c)).sum();
        let served: f64 = mean(&|c| demand.min(c));
        let capacity: f64 = mean(&|c| c);
        let unmet: f64 = mean(&|c| (demand - c).max(0.0));
        let worst = ready
            .iter()
            .map(|r| (demand - r.capacity).max(0.0))
            .fold(0.0, f64::max);
        self.cost += cost_per_hour * hours;
        self.replica_hours += f64::from(replicas) * hours;
        self.used_core_hours += served * hours;
        self.capacity_core_hours += capacity * hours;
        self.demand_core_hours += demand * hours;
        self.unmet_core_hours += unmet * hours;
        self.steps += 1;
        // A relative tolerance so float noise at exactly full capacity is not an outage.
        if unmet <= 1e-9 * demand.max(1.0) {
            self.met_steps += 1;
        }
        self.moves += u64::from(moves);
        if worst > self.worst.0 {
            self.worst = (worst, if demand > 0.0 { worst / demand } else { 0.0 });
        }
        unmet
    }

    /// The totals.
    pub fn summary(&self) -> Summary {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        Summary {
            cost: self.cost,
            replica_hours: self.replica_hours,
            utilization: ratio(self.used_core_hours, self.capacity_core_hours),
            unmet_core_hours: self.unmet_core_hours,
            unmet_share: ratio(self.unmet_core_hours, self.demand_core_hours),
            availability: if self.steps > 0 {
                self.met_steps as f64 / self.steps as f64
            } else {
                1.0
            },
            moves: self.moves,
            worst_shortfall_cores: self.worst.0,
            worst_shortfall_share: self.worst.1,
        }
    }
}

/// Every strategy's summary, keyed by its name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// `skyfleet`, `static-peak`, `reactive`, `oracle`.
    pub strategies: BTreeMap<&'static str, Summary>,
    /// Every strategy's steps, for `--out` (not in the JSON: it would be one object per step).
    #[serde(skip)]
    pub steps: BTreeMap<&'static str, Vec<Step>>,
    /// The pools' names, in the order of [`Step::replicas`].
    #[serde(skip)]
    pub pools: Vec<String>,
}

impl Report {
    /// The summary of `s`.
    pub fn get(&self, s: Strategy) -> Option<&Summary> {
        self.strategies.get(s.name())
    }

    /// The table for people: one row per strategy, then skyfleet against the baselines.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<12} {:>12} {:>13} {:>11} {:>12} {:>11} {:>13} {:>7} {:>16}\n",
            "STRATEGY",
            "COST",
            "REPLICA-H",
            "UTIL",
            "UNMET-CORE-H",
            "UNMET",
            "AVAILABILITY",
            "MOVES",
            "WORST-STEP"
        );
        for s in Strategy::ALL {
            let Some(r) = self.get(s) else { continue };
            out += &format!(
                "{:<12} {:>12.2} {:>13.1} {:>10.1}% {:>12.2} {:>10.3}% {:>12.2}% {:>7} {:>16}\n",
                s.name(),
                r.cost,
                r.replica_hours,
                100.0 * r.utilization,
                r.unmet_core_hours,
                100.0 * r.unmet_share,
                100.0 * r.availability,
                r.moves,
                format!(
                    "{:.2}c ({:.0}%)",
                    r.worst_shortfall_cores,
                    100.0 * r.worst_shortfall_share
                )
            );
        }
        if let (Some(sky), Some(peak), Some(oracle)) = (
            self.get(Strategy::Skyfleet),
            self.get(Strategy::StaticPeak),
            self.get(Strategy::Oracle),
        ) {
            if peak.cost > 0.0 {
                out += &format!(
                    "\nskyfleet saves {:.1}% of static-peak's cost\n",
                    100.0 * (1.0 - sky.cost / peak.cost)
                );
            }
            if oracle.cost > 0.0 {
                out += &format!(
                    "skyfleet costs {:.3}× the oracle's\n",
                    sky.cost / oracle.cost
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meter_counts_unmet_demand_utilisation_and_availability() {
        let mut m = Meter::default();
        // Half an hour: 4 replicas at $2/h, 2 cores of capacity, 1 core of demand.
        let two = [Ready {
            from: 0,
            capacity: 2.0,
        }];
        m.step(1800, 4, 2.0, &two, 1.0, 0);
        // Half an hour: 3 cores of demand, 2 served, 1 unmet; 1 replica moved.
        m.step(1800, 4, 2.0, &two, 3.0, 1);
        let s = m.summary();
        assert!((s.worst_shortfall_cores - 1.0).abs() < 1e-12, "{s:?}");
        assert!((s.worst_shortfall_share - 1.0 / 3.0).abs() < 1e-12, "{s:?}");
        assert!((s.cost - 2.0).abs() < 1e-12);
        assert!((s.replica_hours - 4.0).abs() < 1e-12);
        assert!(
            (s.utilization - 0.75).abs() < 1e-12,
            "3 of 4 core-hours used"
        );
        assert!((s.unmet_core_hours - 0.5).abs() < 1e-12);
        assert!((s.unmet_share - 0.25).abs() < 1e-12);
        assert!((s.availability - 0.5).abs() < 1e-12);
        assert_eq!(s.moves, 1);
    }

    #[test]
    fn capacity_that_comes_within_a_step_serves_its_share_of_the_step() {
        let mut m = Meter::default();
        // An hour at 3 cores of demand: 1 core ready for the first 0.6 of it, then 4.
        let ready = [
            Ready {
                from: 0,
                capacity: 1.0,
            },
            Ready {
                from: 2160,
                capacity: 4.0,
            },
        ];
        let unmet = m.step(3600, 4, 1.0, &ready, 3.0, 0);
        let s = m.summary();
        assert!(
            (unmet - 1.2).abs() < 1e-12,
            "2 cores short for 0.6 of the step"
        );
        assert!((s.unmet_core_hours - 1.2).abs() < 1e-12);
        assert!((s.utilization - 1.8 / 2.2).abs() < 1e-12, "{s:?}");
        assert!(
            (s.worst_shortfall_cores - 2.0).abs() < 1e-12,
            "the worst moment"
        );
        assert_eq!(s.availability, 0.0);
    }
}
