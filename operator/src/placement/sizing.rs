//! Sizing: how many replicas demand needs, and what one replica costs in a pool.

use k8s_openapi::api::core::v1::{Container, PodTemplateSpec};

use super::input::PlanInputError;
use crate::api::cloud_pool::Pricing;
use crate::api::quantity;

/// What one replica requests: the sum over the template's containers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplicaShape {
    /// CPU cores.
    pub cpu: f64,
    /// Memory bytes.
    pub memory: f64,
}

impl ReplicaShape {
    /// The requests of one pod of `template`. Init containers are not counted: they do not
    /// run beside the app, and the CRD prices steady state.
    pub fn of(template: &PodTemplateSpec) -> Result<Self, PlanInputError> {
        let spec = template.spec.as_ref();
        let shape = Self::sum(spec.map(|s| s.containers.as_slice()).unwrap_or_default())?;
        if shape.cpu <= 0.0 || !shape.cpu.is_finite() {
            return Err(PlanInputError::NoCpuRequest);
        }
        Ok(shape)
    }

    /// What the scheduler reserves on a node for one pod of `template`, per resource: the
    /// larger of the containers' sum and the largest init container, plus the pod overhead.
    /// Room on the nodes is counted in this, so a pod whose init container asks for more
    /// than its app is not planned onto a node where it would stay Pending.
    pub fn scheduled(template: &PodTemplateSpec) -> Result<Self, PlanInputError> {
        let mut shape = Self::of(template)?;
        let Some(spec) = template.spec.as_ref() else {
            return Ok(shape);
        };
        for init in spec.init_containers.iter().flatten() {
            let one = Self::sum(std::slice::from_ref(init))?;
            shape.cpu = shape.cpu.max(one.cpu);
            shape.memory = shape.memory.max(one.memory);
        }
        for (resource, total) in [("cpu", &mut shape.cpu), ("memory", &mut shape.memory)] {
            if let Some(q) = spec.overhead.as_ref().and_then(|o| o.get(resource)) {
                *total += quantity::to_f64(q).map_err(|_| PlanInputError::BadRequest {
                    container: "(pod overhead)".into(),
                    resource,
                    value: q.0.clone(),
                })?;
            }
        }
        Ok(shape)
    }

    /// The requests of `containers`, summed.
    fn sum(containers: &[Container]) -> Result<Self, PlanInputError> {
        let mut shape = Self {
            cpu: 0.0,
            memory: 0.0,
        };
        for c in containers {
            let Some(requests) = c.resources.as_ref().and_then(|r| r.requests.as_ref()) else {
                continue;
            };
            for (resource, total) in [("cpu", &mut shape.cpu), ("memory", &mut shape.memory)] {
                if let Some(q) = requests.get(resource) {
                    *total += quantity::to_f64(q).map_err(|_| PlanInputError::BadRequest {
                        container: c.name.clone(),
                        resource,
                        value: q.0.clone(),
                    })?;
                }
            }
        }
        Ok(shape)
    }
}

/// R = clamp(⌈demand / (cpu request × target)⌉, min, max).
///
/// A non-finite or negative demand counts as none, so bad metrics never scale to `max` by
/// accident; `min` still holds.
pub fn required_replicas(
    demand_cores: f64,
    cpu_request: f64,
    target_percent: i32,
    min: i32,
    max: i32,
) -> u32 {
    let min = min.max(0);
    let max = max.max(min);
    let per_replica = cpu_request * f64::from(target_percent.clamp(1, 100)) / 100.0;
    let demand = if demand_cores.is_finite() && demand_cores > 0.0 {
        demand_cores
    } else {
        0.0
    };
    let needed = if per_replica > 0.0 {
        // Round away float noise first: 2.1 cores at 0.7 each is exactly 3 replicas, not 4.
        let ratio = demand / per_replica;
        let snapped = (ratio * 1e9).round() / 1e9;
        snapped.ceil().min(f64::from(max))
    } else {
        f64::from(max)
    };
    (needed as i32).clamp(min, max) as u32
}

/// Price of one replica of `shape` for one hour under `pricing`.
pub fn replica_cost(pricing: &Pricing, shape: &ReplicaShape) -> f64 {
    shape.cpu * pricing.cpu_per_hour
        + shape.memory / quantity::GIB * pricing.memory_gib_per_hour
        + pricing.replica_per_hour
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_replicas_follow_the_formula_and_clamp() {
        // 2.1 cores at 500m × 70% = 0.35 per replica → exactly 6.
        assert_eq!(required_replicas(2.1, 0.5, 70, 1, 30), 6);
        assert_eq!(required_replicas(2.11, 0.5, 70, 1, 30), 7);
        assert_eq!(required_replicas(0.0, 0.5, 70, 3, 30), 3, "min holds");
        assert_eq!(required_replicas(100.0, 0.5, 70, 3, 30), 30, "max holds");
        assert_eq!(required_replicas(f64::NAN, 0.5, 70, 2, 30), 2);
        assert_eq!(required_replicas(-4.0, 0.5, 70, 2, 30), 2);
        assert_eq!(required_replicas(f64::INFINITY, 0.5, 70, 2, 30), 2);
    }

    #[test]
    fn a_replica_costs_cpu_memory_and_a_flat_fee() {
        let pricing = Pricing {
            cpu_per_hour: 0.04,
            memory_gib_per_hour: 0.004,
            replica_per_hour: 0.01,
            capacity_type: Default::default(),
        };
        let shape = ReplicaShape {
            cpu: 0.5,
            memory: 512.0 * 1024.0 * 1024.0,
        };
        let c = replica_cost(&pricing, &shape);
        assert!((c - (0.02 + 0.002 + 0.01)).abs() < 1e-12, "{c}");
    }

    #[test]
    fn the_scheduler_reserves_the_largest_init_container_and_the_overhead() {
        let template: PodTemplateSpec = serde_json::from_value(serde_json::json!({
            "spec": {
                "containers": [
                    {"name": "app", "image": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                    {"name": "side", "image": "s", "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}}}
                ],
                "initContainers": [
                    {"name": "big-cpu", "image": "i", "resources": {"requests": {"cpu": "2", "memory": "64Mi"}}},
                    {"name": "big-memory", "image": "i", "resources": {"requests": {"memory": "3Gi"}}}
                ],
                "overhead": {"cpu": "100m", "memory": "128Mi"}
            }
        }))
        .expect("a template");
        const GI: f64 = 1024.0 * 1024.0 * 1024.0;
        let priced = ReplicaShape::of(&template).expect("a shape");
        assert_eq!(
            (priced.cpu, priced.memory),
            (0.75, 2.0 * GI),
            "prices count the app only"
        );
        let scheduled = ReplicaShape::scheduled(&template).expect("a shape");
        assert!((scheduled.cpu - 2.1).abs() < 1e-12, "{scheduled:?}");
        assert_eq!(scheduled.memory, 3.0 * GI + 128.0 * 1024.0 * 1024.0);
    }
}
