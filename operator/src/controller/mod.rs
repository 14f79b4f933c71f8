//! The operator's shell: member clusters, reconcilers and status. It gathers state, calls the
//! pure decision, applies it and reports; decisions themselves live in `forecast` and
//! `placement`.

pub mod admin;
pub mod decide;
pub mod desired;
pub mod kubeconfig;
pub mod labels;
pub mod metrics_api;
pub mod pool;
pub mod registry;
pub mod workload;
