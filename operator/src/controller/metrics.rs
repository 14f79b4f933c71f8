//! The operator's Prometheus metrics: what a platform team graphs and alerts on (the chart's
//! dashboard and rules read exactly these; the chart README's "Metrics" table lists them).
//!
//! Labels are bounded: one set per workload, pool, forecast model, condition type and reason,
//! never per pod or request. A workload's series are removed when it is deleted, a row it no
//! longer has (a pool, a model, a condition's old reason) when it is published again, and a
//! pool's series when the CloudPool is deleted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::api::workload::MultiCloudWorkloadStatus;
use crate::decide::Telemetry;

/// Labels of per-pool series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// The CloudPool.
    pub pool: String,
}

/// Where a pool is, for joins (`skyfleet_pool_info`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolInfoLabels {
    /// The CloudPool.
    pub pool: String,
    /// Its `spec.provider`.
    pub provider: String,
    /// Its `spec.region`.
    pub region: String,
    /// `OnDemand` or `Spot`.
    pub capacity_type: String,
}

/// Labels of per-controller series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// `cloudpool` or `multicloudworkload`.
    pub controller: String,
}

/// Labels of per-workload series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct WorkloadLabels {
    /// The MultiCloudWorkload's namespace.
    pub namespace: String,
    /// The MultiCloudWorkload's name.
    pub workload: String,
}

/// Labels of a workload's row for one pool.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkloadPoolLabels {
    /// The MultiCloudWorkload's namespace.
    pub namespace: String,
    /// The MultiCloudWorkload's name.
    pub workload: String,
    /// The CloudPool.
    pub pool: String,
}

/// Labels of a workload's row for one forecast model.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkloadModelLabels {
    /// The MultiCloudWorkload's namespace.
    pub namespace: String,
    /// The MultiCloudWorkload's name.
    pub workload: String,
    /// The forecast model.
    pub model: String,
}

/// Labels of a workload's condition series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkloadConditionLabels {
    /// The MultiCloudWorkload's namespace.
    pub namespace: String,
    /// The MultiCloudWorkload's name.
    pub workload: String,
    /// The condition type (`Ready`, `RedundancySatisfied`, `Degraded`, `HistoryValid`).
    pub condition: String,
    /// Its current reason.
    pub reason: String,
}

/// Labels of `skyfleet_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// What one decision of a workload exports.
pub struct WorkloadReport<'a> {
    /// The status in effect after acting.
    pub status: &'a MultiCloudWorkloadStatus,
    /// The decision's numbers beyond the status.
    pub telemetry: &'a Telemetry,
    /// Demand the plan is sized for, in cores.
    pub planned_cores: f64,
    /// `spec.budget.costPerHour`, when set.
    pub budget_per_hour: Option<f64>,
}

/// The label sets last published for one workload, so rows it no longer has are removed.
#[derive(Default)]
struct Published {
    pools: BTreeSet<String>,
    models: BTreeSet<String>,
    conditions: BTreeMap<String, String>,
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    /// 1 while the pool's member answers and the pool may take replicas.
    pool_ready: Family<PoolLabels, Gauge>,
    pool_info: Family<PoolInfoLabels, Gauge>,
    /// Seconds one probe of the pool's member took.
    pool_probe_seconds: Family<PoolLabels, Histogram>,
    reconciles: Family<ControllerLabels, Counter>,
    reconcile_errors: Family<ControllerLabels, Counter>,
    reconcile_seconds: Family<ControllerLabels, Histogram>,
    /// 1 while this instance holds the leader lease (or runs without leader election).
    pub leader: Gauge,
    workload_desired_replicas: Family<WorkloadLabels, Gauge>,
    workload_ready_replicas: Family<WorkloadLabels, Gauge>,
    workload_cost_per_hour: Family<WorkloadLabels, FloatGauge>,
    workload_cost_budget_per_hour: Family<WorkloadLabels, FloatGauge>,
    workload_pool_desired_replicas: Family<WorkloadPoolLabels, Gauge>,
    workload_pool_ready_replicas: Family<WorkloadPoolLabels, Gauge>,
    workload_pool_cost_per_hour: Family<WorkloadPoolLabels, FloatGauge>,
    workload_pool_traffic_ratio: Family<WorkloadPoolLabels, FloatGauge>,
    workload_demand_cores: Family<WorkloadLabels, FloatGauge>,
    workload_planned_cores: Family<WorkloadLabels, FloatGauge>,
    workload_forecast_cores: Family<WorkloadLabels, FloatGauge>,
    workload_forecast_upper_cores: Family<WorkloadLabels, FloatGauge>,
    workload_forecast_quantile: Family<WorkloadLabels, FloatGauge>,
    workload_forecast_wape_ratio: Family<WorkloadLabels, FloatGauge>,
    workload_model_backtest_wape_ratio: Family<WorkloadModelLabels, FloatGauge>,
    workload_condition: Family<WorkloadConditionLabels, Gauge>,
    workload_failed_over_pools: Family<WorkloadLabels, Gauge>,
    /// Events not sent because the queue of Events to send was full.
    events_dropped: Counter,
    published: Mutex<HashMap<WorkloadLabels, Published>>,
    pool_infos: Mutex<HashMap<String, PoolInfoLabels>>,
}

fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 12))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut r = Registry::with_prefix("skyfleet");
        fn reg<M: prometheus_client::registry::Metric + Clone>(
            r: &mut Registry,
            name: &str,
            help: &str,
            m: M,
        ) -> M {
            r.register(name, help, m.clone());
            m
        }
        fn histograms<L: Clone + std::hash::Hash + Eq>() -> Family<L, Histogram> {
            Family::new_with_constructor(seconds_histogram as fn() -> Histogram)
        }
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        r.register(
            "build_info",
            "Always 1; the operator's version as a label",
            build_info,
        );
        Self {
            pool_ready: reg(
                &mut r,
                "pool_ready",
                "Whether the pool's member answers and the pool may take replicas",
                Family::default(),
            ),
            pool_info: reg(
                &mut r,
                "pool_info",
                "Always 1; where the pool is (provider, region, capacity type)",
                Family::default(),
            ),
            pool_probe_seconds: reg(
                &mut r,
                "pool_probe_seconds",
                "Time one probe of the pool's member API server took",
                histograms(),
            ),
            reconciles: reg(&mut r, "reconciles", "Reconciles run", Family::default()),
            reconcile_errors: reg(
                &mut r,
                "reconcile_errors",
                "Reconciles that failed",
                Family::default(),
            ),
            reconcile_seconds: reg(
                &mut r,
                "reconcile_seconds",
                "Time one reconcile took",
                histograms(),
            ),
            leader: reg(
                &mut r,
                "leader",
                "Whether this instance is the acting leader",
                Gauge::default(),
            ),
            workload_desired_replicas: reg(
                &mut r,
                "workload_desired_replicas",
                "Replicas planned for the workload across pools",
                Family::default(),
            ),
            workload_ready_replicas: reg(
                &mut r,
                "workload_ready_replicas",
                "Replicas of the workload Ready across pools",
                Family::default(),
            ),
            workload_cost_per_hour: reg(
                &mut r,
                "workload_cost_per_hour",
                "Cost per hour of the workload's planned replicas, in the currency of the CloudPools' pricing",
                Family::default(),
            ),
            workload_cost_budget_per_hour: reg(
                &mut r,
                "workload_cost_budget_per_hour",
                "The workload's spec.budget.costPerHour, when set",
                Family::default(),
            ),
            workload_pool_desired_replicas: reg(
                &mut r,
                "workload_pool_desired_replicas",
                "Replicas of the workload planned in one pool",
                Family::default(),
            ),
            workload_pool_ready_replicas: reg(
                &mut r,
                "workload_pool_ready_replicas",
                "Replicas of the workload Ready in one pool",
                Family::default(),
            ),
            workload_pool_cost_per_hour: reg(
                &mut r,
                "workload_pool_cost_per_hour",
                "Cost per hour of the workload's replicas planned in one pool",
                Family::default(),
            ),
            workload_pool_traffic_ratio: reg(
                &mut r,
                "workload_pool_traffic_ratio",
                "Share of the workload's traffic published for one pool (status.traffic, 0-1)",
                Family::default(),
            ),
            workload_demand_cores: reg(
                &mut r,
                "workload_demand_cores",
                "CPU demand of the workload measured now, in cores",
                Family::default(),
            ),
            workload_planned_cores: reg(
                &mut r,
                "workload_planned_cores",
                "Demand the plan is sized for, in cores (forecast over the lead time, burst floor, scale-down stabilisation)",
                Family::default(),
            ),
            workload_forecast_cores: reg(
                &mut r,
                "workload_forecast_cores",
                "Peak over the horizon of the chosen model's point forecast, in cores",
                Family::default(),
            ),
            workload_forecast_upper_cores: reg(
                &mut r,
                "workload_forecast_upper_cores",
                "Peak over the horizon of the forecast's upper quantile, in cores",
                Family::default(),
            ),
            workload_forecast_quantile: reg(
                &mut r,
                "workload_forecast_quantile",
                "The quantile of demand the workload is provisioned for",
                Family::default(),
            ),
            workload_forecast_wape_ratio: reg(
                &mut r,
                "workload_forecast_wape_ratio",
                "The chosen forecast model's recent backtest WAPE",
                Family::default(),
            ),
            workload_model_backtest_wape_ratio: reg(
                &mut r,
                "workload_model_backtest_wape_ratio",
                "Each candidate forecast model's recent backtest WAPE",
                Family::default(),
            ),
            workload_condition: reg(
                &mut r,
                "workload_condition",
                "1 while the workload's condition is True, 0 while False, labelled with its reason",
                Family::default(),
            ),
            workload_failed_over_pools: reg(
                &mut r,
                "workload_failed_over_pools",
                "Pools lost past the failover grace whose replicas are planned elsewhere",
                Family::default(),
            ),
            events_dropped: reg(
                &mut r,
                "events_dropped",
                "Events not sent because the queue of Events to send was full",
                Counter::default(),
            ),
            registry: r,
            published: Mutex::default(),
            pool_infos: Mutex::default(),
        }
    }
}

impl Metrics {
    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Counts an Event dropped because the queue of Events to send was full.
    pub fn event_dropped(&self) {
        self.events_dropped.inc();
    }

    /// Events dropped so far.
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped.get()
    }

    /// Counts one reconcile of `controller` that took `elapsed`, and whether it failed.
    pub fn observe_reconcile(&self, controller: &str, elapsed: Duration, failed: bool) {
        let labels = ControllerLabels {
            controller: controller.to_string(),
        };
        self.reconciles.get_or_create(&labels).inc();
        // Created at zero, so an error rate reads 0 rather than nothing before the first one.
        let errors = self.reconcile_errors.get_or_create(&labels);
        if failed {
            errors.inc();
        }
        self.reconcile_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Publishes one probe of a pool: how long it took, whether the pool is Ready, and where
    /// it is (a changed provider, region or capacity type replaces the old info series).
    pub fn observe_probe(&self, info: PoolInfoLabels, ready: bool, took: Duration) {
        let labels = PoolLabels {
            pool: info.pool.clone(),
        };
        self.pool_probe_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.pool_ready.get_or_create(&labels).set(i64::from(ready));
        let mut infos = self.pool_infos.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = infos.insert(info.pool.clone(), info.clone())
            && old != info
        {
            self.pool_info.remove(&old);
        }
        self.pool_info.get_or_create(&info).set(1);
    }

    /// Removes a deleted pool's series.
    pub fn forget_pool(&self, pool: &str) {
        let labels = PoolLabels {
            pool: pool.to_string(),
        };
        self.pool_ready.remove(&labels);
        self.pool_probe_seconds.remove(&labels);
        let mut infos = self.pool_infos.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = infos.remove(pool) {
            self.pool_info.remove(&old);
        }
    }

    /// Publishes what one decision of a workload shows, replacing what it showed before.
    pub fn publish_workload(&self, namespace: &str, workload: &str, report: &WorkloadReport) {
        let w = WorkloadLabels {
            namespace: namespace.to_string(),
            workload: workload.to_string(),
        };
        let status = report.status;
        let t = report.telemetry;
        self.workload_desired_replicas
            .get_or_create(&w)
            .set(i64::from(status.desired_replicas));
        self.workload_ready_replicas
            .get_or_create(&w)
            .set(i64::from(status.ready_replicas));
        self.workload_cost_per_hour
            .get_or_create(&w)
            .set(status.cost_per_hour);
        set_or_remove(
            &self.workload_cost_budget_per_hour,
            &w,
            report.budget_per_hour,
        );
        let demand = status.demand.as_ref().map(|d| d.current_cores);
        set_or_remove(&self.workload_demand_cores, &w, demand);
        self.workload_planned_cores
            .get_or_create(&w)
            .set(report.planned_cores);
        let f = t.forecast.as_ref();
        set_or_remove(&self.workload_forecast_cores, &w, f.map(|f| f.mean_peak));
        set_or_remove(
            &self.workload_forecast_upper_cores,
            &w,
            f.map(|f| f.upper_peak),
        );
        set_or_remove(&self.workload_forecast_quantile, &w, f.map(|f| f.quantile));
        set_or_remove(
            &self.workload_forecast_wape_ratio,
            &w,
            f.and_then(|f| f.wape),
        );
        self.workload_failed_over_pools
            .get_or_create(&w)
            .set(i64::try_from(t.failed_over_pools).unwrap_or(i64::MAX));

        let pool = |p: &str| WorkloadPoolLabels {
            namespace: w.namespace.clone(),
            workload: w.workload.clone(),
            pool: p.to_string(),
        };
        let model = |m: &str| WorkloadModelLabels {
            namespace: w.namespace.clone(),
            workload: w.workload.clone(),
            model: m.to_string(),
        };
        let condition = |c: &str, r: &str| WorkloadConditionLabels {
            namespace: w.namespace.clone(),
            workload: w.workload.clone(),
            condition: c.to_string(),
            reason: r.to_string(),
        };
        let now = Published {
            pools: status.pools.iter().map(|r| r.name.clone()).collect(),
            models: f
                .map(|f| f.backtests.iter().map(|(m, _)| m.name().to_string()))
                .into_iter()
                .flatten()
                .collect(),
            conditions: status
                .conditions
                .iter()
                .map(|c| (c.type_.clone(), c.reason.clone()))
                .collect(),
        };
        let mut published = self.published.lock().unwrap_or_else(|e| e.into_inner());
        let before = published.remove(&w).unwrap_or_default();
        for p in before.pools.difference(&now.pools) {
            self.remove_pool_row(&pool(p));
        }
        for m in before.models.difference(&now.models) {
            self.workload_model_backtest_wape_ratio.remove(&model(m));
        }
        for (c, r) in &before.conditions {
            if now.conditions.get(c) != Some(r) {
                self.workload_condition.remove(&condition(c, r));
            }
        }
        for row in &status.pools {
            let l = pool(&row.name);
            self.workload_pool_desired_replicas
                .get_or_create(&l)
                .set(i64::from(row.replicas));
            self.workload_pool_ready_replicas
                .get_or_create(&l)
                .set(i64::from(row.ready_replicas));
            self.workload_pool_cost_per_hour
                .get_or_create(&l)
                .set(row.cost_per_hour);
            let weight = status
                .traffic
                .iter()
                .flat_map(|t| &t.pools)
                .find(|t| t.name == row.name)
                .map_or(0, |t| t.weight);
            self.workload_pool_traffic_ratio
                .get_or_create(&l)
                .set(f64::from(weight) / 100.0);
        }
        for (m, wape) in f.map(|f| f.backtests.as_slice()).unwrap_or_default() {
            self.workload_model_backtest_wape_ratio
                .get_or_create(&model(m.name()))
                .set(*wape);
        }
        for c in &status.conditions {
            self.workload_condition
                .get_or_create(&condition(&c.type_, &c.reason))
                .set(i64::from(c.status == "True"));
        }
        published.insert(w, now);
    }

    /// Removes every series of a deleted workload.
    pub fn forget_workload(&self, namespace: &str, workload: &str) {
        let w = WorkloadLabels {
            namespace: namespace.to_string(),
            workload: workload.to_string(),
        };
        for family in [
            &self.workload_cost_per_hour,
            &self.workload_cost_budget_per_hour,
            &self.workload_demand_cores,
            &self.workload_planned_cores,
            &self.workload_forecast_cores,
            &self.workload_forecast_upper_cores,
            &self.workload_forecast_quantile,
            &self.workload_forecast_wape_ratio,
        ] {
            family.remove(&w);
        }
        for family in [
            &self.workload_desired_replicas,
            &self.workload_ready_replicas,
            &self.workload_failed_over_pools,
        ] {
            family.remove(&w);
        }
        let mut published = self.published.lock().unwrap_or_else(|e| e.into_inner());
        let Some(before) = published.remove(&w) else {
            return;
        };
        for p in before.pools {
            self.remove_pool_row(&WorkloadPoolLabels {
                namespace: w.namespace.clone(),
                workload: w.workload.clone(),
                pool: p,
            });
        }
        for m in before.models {
            self.workload_model_backtest_wape_ratio
                .remove(&WorkloadModelLabels {
                    namespace: w.namespace.clone(),
                    workload: w.workload.clone(),
                    model: m,
                });
        }
        for (c, r) in before.conditions {
            self.workload_condition.remove(&WorkloadConditionLabels {
                namespace: w.namespace.clone(),
                workload: w.workload.clone(),
                condition: c,
                reason: r,
            });
        }
    }

    fn remove_pool_row(&self, l: &WorkloadPoolLabels) {
        self.workload_pool_desired_replicas.remove(l);
        self.workload_pool_ready_replicas.remove(l);
        self.workload_pool_cost_per_hour.remove(l);
        self.workload_pool_traffic_ratio.remove(l);
    }
}

/// Sets the gauge to `value`, or removes the series when there is none (a gauge left at its
/// last value would say something that is no longer known).
fn set_or_remove(
    family: &Family<WorkloadLabels, FloatGauge>,
    w: &WorkloadLabels,
    value: Option<f64>,
) {
    match value.filter(|v| v.is_finite()) {
        Some(v) => {
            family.get_or_create(w).set(v);
        }
        None => {
            family.remove(w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::workload::{DemandStatus, PoolPlacementStatus};
    use crate::decide::demand::ForecastSummary;
    use crate::forecast::ModelKind;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn condition(type_: &str, status: &str, reason: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
        }
    }

    fn status(pools: &[(&str, i32, i32, f64)], redundant: bool) -> MultiCloudWorkloadStatus {
        MultiCloudWorkloadStatus {
            desired_replicas: pools.iter().map(|p| p.1).sum(),
            ready_replicas: pools.iter().map(|p| p.2).sum(),
            cost_per_hour: pools.iter().map(|p| p.3).sum(),
            demand: Some(DemandStatus {
                current_cores: 1.5,
                ..Default::default()
            }),
            pools: pools
                .iter()
                .map(
                    |&(name, replicas, ready_replicas, cost_per_hour)| PoolPlacementStatus {
                        name: name.into(),
                        replicas,
                        ready_replicas,
                        cost_per_hour,
                    },
                )
                .collect(),
            conditions: vec![if redundant {
                condition("RedundancySatisfied", "True", "Redundant")
            } else {
                condition("RedundancySatisfied", "False", "InsufficientRedundancy")
            }],
            ..Default::default()
        }
    }

    fn telemetry(models: &[ModelKind]) -> Telemetry {
        Telemetry {
            forecast: Some(ForecastSummary {
                mean_peak: 2.0,
                upper_peak: 2.5,
                quantile: 0.95,
                wape: Some(0.125),
                backtests: models.iter().map(|&m| (m, 0.25)).collect(),
            }),
            failed_over_pools: 1,
        }
    }

    fn lines(m: &Metrics, needle: &str) -> Vec<String> {
        m.encode()
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(needle))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn a_workload_is_exported_with_its_pools_models_and_conditions() {
        let m = Metrics::default();
        let mut s = status(&[("aws", 3, 2, 0.3), ("gcp", 2, 2, 0.2)], true);
        s.traffic = Some(crate::api::workload::TrafficStatus {
            split: "aws=50 gcp=50".into(),
            pools: ["aws", "gcp"]
                .map(|p| crate::api::workload::TrafficWeight {
                    name: p.into(),
                    weight: 50,
                    endpoint: None,
                })
                .to_vec(),
            last_update_time: None,
        });
        let t = telemetry(&[ModelKind::LastValue, ModelKind::SeasonalNaive]);
        m.publish_workload(
            "shop",
            "checkout",
            &WorkloadReport {
                status: &s,
                telemetry: &t,
                planned_cores: 2.25,
                budget_per_hour: Some(1.0),
            },
        );
        let text = m.encode();
        for want in [
            "skyfleet_workload_desired_replicas{namespace=\"shop\",workload=\"checkout\"} 5",
            "skyfleet_workload_ready_replicas{namespace=\"shop\",workload=\"checkout\"} 4",
            "skyfleet_workload_cost_budget_per_hour{namespace=\"shop\",workload=\"checkout\"} 1.0",
            "skyfleet_workload_pool_desired_replicas{namespace=\"shop\",workload=\"checkout\",pool=\"aws\"} 3",
            "skyfleet_workload_pool_ready_replicas{namespace=\"shop\",workload=\"checkout\",pool=\"aws\"} 2",
            "skyfleet_workload_pool_cost_per_hour{namespace=\"shop\",workload=\"checkout\",pool=\"gcp\"} 0.2",
            "skyfleet_workload_pool_traffic_ratio{namespace=\"shop\",workload=\"checkout\",pool=\"aws\"} 0.5",
            "skyfleet_workload_demand_cores{namespace=\"shop\",workload=\"checkout\"} 1.5",
            "skyfleet_workload_planned_cores{namespace=\"shop\",workload=\"checkout\"} 2.25",
            "skyfleet_workload_forecast_cores{namespace=\"shop\",workload=\"checkout\"} 2.0",
            "skyfleet_workload_forecast_upper_cores{namespace=\"shop\",workload=\"checkout\"} 2.5",
            "skyfleet_workload_forecast_quantile{namespace=\"shop\",workload=\"checkout\"} 0.95",
            "skyfleet_workload_forecast_wape_ratio{namespace=\"shop\",workload=\"checkout\"} 0.125",
            "skyfleet_workload_model_backtest_wape_ratio{namespace=\"shop\",workload=\"checkout\",model=\"SeasonalNaive\"} 0.25",
            "skyfleet_workload_condition{namespace=\"shop\",workload=\"checkout\",condition=\"RedundancySatisfied\",reason=\"Redundant\"} 1",
            "skyfleet_workload_failed_over_pools{namespace=\"shop\",workload=\"checkout\"} 1",
            "skyfleet_build_info{version=",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }

    #[test]
    fn rows_a_workload_no_longer_has_are_removed_and_a_deleted_workload_leaves_nothing() {
        let m = Metrics::default();
        let first = status(&[("aws", 3, 3, 0.3), ("gcp", 2, 2, 0.2)], true);
        let t = telemetry(&[ModelKind::LastValue, ModelKind::SeasonalNaive]);
        let report = |s| WorkloadReport {
            status: s,
            telemetry: &t,
            planned_cores: 1.0,
            budget_per_hour: None,
        };
        m.publish_workload("shop", "checkout", &report(&first));
        m.publish_workload("shop", "other", &report(&first));
        let second = status(&[("aws", 5, 3, 0.5)], false);
        let fewer = telemetry(&[ModelKind::LastValue]);
        m.publish_workload(
            "shop",
            "checkout",
            &WorkloadReport {
                status: &second,
                telemetry: &fewer,
                planned_cores: 1.0,
                budget_per_hour: None,
            },
        );
        let checkout = "workload=\"checkout\"";
        let rows = lines(&m, "skyfleet_workload_pool_desired_replicas");
        assert!(
            rows.iter()
                .all(|l| !(l.contains(checkout) && l.contains("gcp"))),
            "{rows:?}"
        );
        let conditions: Vec<String> = lines(&m, "skyfleet_workload_condition")
            .into_iter()
            .filter(|l| l.contains(checkout))
            .collect();
        assert_eq!(
            conditions.len(),
            1,
            "one series per condition: {conditions:?}"
        );
        assert!(conditions[0].contains("InsufficientRedundancy") && conditions[0].ends_with(" 0"));
        let models: Vec<String> = lines(&m, "skyfleet_workload_model_backtest_wape_ratio")
            .into_iter()
            .filter(|l| l.contains(checkout))
            .collect();
        assert_eq!(models.len(), 1, "{models:?}");

        m.forget_workload("shop", "checkout");
        let left: Vec<String> = m
            .encode()
            .lines()
            .filter(|l| l.contains(checkout))
            .map(str::to_string)
            .collect();
        assert!(left.is_empty(), "series left after delete: {left:?}");
        assert!(
            m.encode().contains("workload=\"other\""),
            "another workload's series stay"
        );
    }

    #[test]
    fn a_pool_is_exported_with_where_it_is_and_forgotten_when_deleted() {
        let m = Metrics::default();
        let info = |region: &str| PoolInfoLabels {
            pool: "aws-east".into(),
            provider: "aws".into(),
            region: region.into(),
            capacity_type: "OnDemand".into(),
        };
        m.observe_probe(info("us-east-1"), true, Duration::from_millis(20));
        m.observe_probe(info("us-east-2"), false, Duration::from_millis(20));
        let infos = lines(&m, "skyfleet_pool_info");
        assert_eq!(infos.len(), 1, "{infos:?}");
        assert!(infos[0].contains("us-east-2"));
        assert!(
            m.encode()
                .contains("skyfleet_pool_ready{pool=\"aws-east\"} 0")
        );
        m.forget_pool("aws-east");
        assert!(!m.encode().contains("aws-east"), "{}", m.encode());
    }

    #[test]
    fn reconciles_and_leadership_are_counted() {
        let m = Metrics::default();
        m.observe_reconcile("cloudpool", Duration::from_millis(20), true);
        m.leader.set(1);
        let text = m.encode();
        assert!(
            text.contains("skyfleet_reconciles_total{controller=\"cloudpool\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("skyfleet_reconcile_errors_total{controller=\"cloudpool\"} 1"),
            "{text}"
        );
        assert!(text.contains("skyfleet_leader 1"), "{text}");
        assert!(text.contains("skyfleet_reconcile_seconds_bucket"), "{text}");
    }
}
