//! The operator's shell: member clusters, reconcilers and status. Each reconciler observes,
//! calls the pure [`crate::decide::decide`], acts on the members, and reports; the decision
//! itself lives in `decide`, `forecast` and `placement`.

pub mod admin;
pub mod cache;
pub mod dependencies;
pub mod desired;
pub mod dns_endpoint;
pub mod event_queue;
pub mod fence;
pub mod kubeconfig;
pub mod labels;
pub mod member_cache;
pub mod metrics;
pub mod metrics_api;
pub mod node_room;
pub mod pool;
pub mod progress;
pub mod registry;
pub mod watched_deployment;
pub mod workload;
