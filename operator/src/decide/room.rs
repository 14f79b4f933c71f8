//! What a pool's nodes can still take of a workload: its pods already bound there, plus as
//! many more as fit in what each matching node has free (allocatable pods, CPU and memory
//! minus what the pods bound to it request). `spec.capacity` is a budget; this is the
//! room the scheduler will actually find, so a plan never puts replicas where they would
//! stay Pending.
//!
//! Replicas are counted per node, not against the pool's total, because a pod needs one
//! node with room for all of it: three nodes with half a core free each take no replica of
//! one core.

use crate::placement::sizing::ReplicaShape;

/// One node's free room.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Free {
    /// Pod slots (`allocatable.pods` minus the pods bound to it).
    pub pods: u32,
    /// CPU cores.
    pub cpu: f64,
    /// Memory bytes.
    pub memory: f64,
}

/// What a pool's nodes hold of one workload and have free, as the member's Node and Pod
/// watches showed it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeRoom {
    /// Each matching node that has a pod slot free.
    pub free: Vec<Free>,
    /// This workload's pods bound to a node of the pool.
    pub scheduled: u32,
    /// This workload's pods in the pool the scheduler found no node for
    /// (`PodScheduled=False`, reason `Unschedulable`).
    pub unschedulable: u32,
}

impl NodeRoom {
    /// Most replicas of `shape` the pool's nodes can run: those bound there now plus what
    /// fits in the free room, node by node.
    pub fn holds(&self, shape: &ReplicaShape) -> u32 {
        let fits = |f: &Free| {
            let by = |free: f64, each: f64| {
                if each > 0.0 {
                    // A tiny tolerance, so that 3 × 0.1 cores fits in 0.3 free.
                    ((free.max(0.0) / each) + 1e-9)
                        .floor()
                        .min(f64::from(u32::MAX)) as u32
                } else {
                    u32::MAX
                }
            };
            f.pods
                .min(by(f.cpu, shape.cpu))
                .min(by(f.memory, shape.memory))
        };
        self.free
            .iter()
            .map(fits)
            .fold(self.scheduled, u32::saturating_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GI: f64 = 1024.0 * 1024.0 * 1024.0;

    fn free(pods: u32, cpu: f64, memory: f64) -> Free {
        Free { pods, cpu, memory }
    }

    #[test]
    fn replicas_fit_node_by_node_not_against_the_pools_total() {
        let shape = ReplicaShape {
            cpu: 1.0,
            memory: GI,
        };
        let room = NodeRoom {
            // 1.5 cores free over three nodes is no room for a 1-core replica.
            free: vec![free(10, 0.5, 8.0 * GI); 3],
            scheduled: 2,
            unschedulable: 1,
        };
        assert_eq!(room.holds(&shape), 2);
    }

    #[test]
    fn the_scarcest_of_pods_cpu_and_memory_bounds_each_node() {
        let shape = ReplicaShape {
            cpu: 0.1,
            memory: GI,
        };
        let room = NodeRoom {
            free: vec![
                free(2, 4.0, 64.0 * GI),   // two pod slots
                free(100, 0.3, 64.0 * GI), // three by CPU (0.3 / 0.1 exactly)
                free(100, 4.0, 2.5 * GI),  // two by memory
            ],
            scheduled: 0,
            unschedulable: 0,
        };
        assert_eq!(room.holds(&shape), 7);
    }

    #[test]
    fn a_replica_requesting_nothing_is_bounded_by_pod_slots() {
        let shape = ReplicaShape {
            cpu: 0.0,
            memory: 0.0,
        };
        let room = NodeRoom {
            free: vec![free(3, 0.0, 0.0), free(4, -1.0, 0.0)],
            scheduled: 5,
            unschedulable: 0,
        };
        assert_eq!(room.holds(&shape), 12);
    }
}
