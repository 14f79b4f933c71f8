//! The operator's admin endpoints: `/healthz` (the process runs; never depends on an API
//! server, so an API blip does not restart the pod), `/readyz` (connected, and leading or
//! standing by) and `/metrics` in Prometheus text format.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of per-pool series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// The CloudPool.
    pub pool: String,
}

/// Labels of per-controller series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// `cloudpool` or `multicloudworkload`.
    pub controller: String,
}

/// Labels of per-workload series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkloadLabels {
    /// The MultiCloudWorkload's namespace.
    pub namespace: String,
    /// The MultiCloudWorkload's name.
    pub workload: String,
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    /// 1 while the pool's member answers and the pool may take replicas.
    pub pool_ready: Family<PoolLabels, Gauge>,
    /// Seconds one probe of the pool's member took.
    pub pool_probe_seconds: Family<PoolLabels, Histogram>,
    /// Reconciles run.
    pub reconciles: Family<ControllerLabels, Counter>,
    /// Reconciles that failed.
    pub reconcile_errors: Family<ControllerLabels, Counter>,
    /// Seconds per reconcile.
    pub reconcile_seconds: Family<ControllerLabels, Histogram>,
    /// 1 while this instance holds the leader lease (or runs without leader election).
    pub leader: Gauge,
    /// Replicas planned for the workload in total.
    pub workload_desired_replicas: Family<WorkloadLabels, Gauge>,
    /// Replicas of the workload ready in total.
    pub workload_ready_replicas: Family<WorkloadLabels, Gauge>,
    /// Cost per hour of the workload's planned replicas.
    pub workload_cost_per_hour: Family<WorkloadLabels, Gauge<f64, AtomicU64>>,
}

fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 12))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("skyfleet");
        let pool_ready = Family::<PoolLabels, Gauge>::default();
        let pool_probe_seconds = Family::<PoolLabels, Histogram>::new_with_constructor(
            seconds_histogram as fn() -> Histogram,
        );
        let reconciles = Family::<ControllerLabels, Counter>::default();
        let reconcile_errors = Family::<ControllerLabels, Counter>::default();
        let reconcile_seconds = Family::<ControllerLabels, Histogram>::new_with_constructor(
            seconds_histogram as fn() -> Histogram,
        );
        let leader = Gauge::default();
        let workload_desired_replicas = Family::<WorkloadLabels, Gauge>::default();
        let workload_ready_replicas = Family::<WorkloadLabels, Gauge>::default();
        let workload_cost_per_hour = Family::<WorkloadLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "pool_ready",
            "Whether the pool's member answers and may take replicas",
            pool_ready.clone(),
        );
        registry.register(
            "pool_probe_seconds",
            "Time one probe of the pool's member cluster took",
            pool_probe_seconds.clone(),
        );
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that failed",
            reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_seconds",
            "Time one reconcile took",
            reconcile_seconds.clone(),
        );
        registry.register(
            "leader",
            "Whether this instance is the acting leader",
            leader.clone(),
        );
        registry.register(
            "workload_desired_replicas",
            "Replicas planned for the workload across pools",
            workload_desired_replicas.clone(),
        );
        registry.register(
            "workload_ready_replicas",
            "Replicas of the workload ready across pools",
            workload_ready_replicas.clone(),
        );
        registry.register(
            "workload_cost_per_hour",
            "Cost per hour of the workload's planned replicas",
            workload_cost_per_hour.clone(),
        );
        Self {
            registry,
            pool_ready,
            pool_probe_seconds,
            reconciles,
            reconcile_errors,
            reconcile_seconds,
            leader,
            workload_desired_replicas,
            workload_ready_replicas,
            workload_cost_per_hour,
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

    /// Counts one reconcile of `controller` that took `elapsed`, and whether it failed.
    pub fn observe_reconcile(&self, controller: &str, elapsed: Duration, failed: bool) {
        let labels = ControllerLabels {
            controller: controller.to_string(),
        };
        self.reconciles.get_or_create(&labels).inc();
        if failed {
            self.reconcile_errors.get_or_create(&labels).inc();
        }
        self.reconcile_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }
}

/// State the admin endpoints read.
#[derive(Clone, Default)]
pub struct AdminState {
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Set once the operator reached the API server and is leading or standing by.
    pub ready: Arc<AtomicBool>,
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn metrics(State(s): State<AdminState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

/// The admin router.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Serves the admin endpoints on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, state: AdminState) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_exported_with_the_skyfleet_prefix() {
        let m = Metrics::default();
        m.pool_ready
            .get_or_create(&PoolLabels { pool: "aws".into() })
            .set(1);
        m.observe_reconcile("cloudpool", Duration::from_millis(20), true);
        m.leader.set(1);
        let w = WorkloadLabels {
            namespace: "shop".into(),
            workload: "checkout".into(),
        };
        m.workload_desired_replicas.get_or_create(&w).set(3);
        m.workload_cost_per_hour.get_or_create(&w).set(0.25);
        let text = m.encode();
        assert!(
            text.contains(
                "skyfleet_workload_desired_replicas{namespace=\"shop\",workload=\"checkout\"} 3"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "skyfleet_workload_cost_per_hour{namespace=\"shop\",workload=\"checkout\"} 0.25"
            ),
            "{text}"
        );
        assert!(
            text.contains("skyfleet_pool_ready{pool=\"aws\"} 1"),
            "{text}"
        );
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
