//! The API users write: `CloudPool` and `MultiCloudWorkload` (group `skyfleet.io`, `v1alpha1`).
//!
//! Validation lives in the schema (types, enums, required fields) and in CEL rules
//! (`x-kubernetes-validations`) so that the API server itself rejects bad objects with a
//! message a person understands; the operator only has to judge what it alone can see.

pub mod cloud_pool;
pub mod conditions;
pub mod duration;
pub mod quantity;
pub mod workload;

pub use cloud_pool::{CloudPool, CloudPoolSpec, CloudPoolStatus};
pub use workload::{MultiCloudWorkload, MultiCloudWorkloadSpec, MultiCloudWorkloadStatus};

/// The API group of every skyfleet resource.
pub const GROUP: &str = "skyfleet.io";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";

/// A CEL rule with the message the API server returns when it fails.
///
/// Built as JSON so rules can be attached with `schemars(extend(...))` on any field type.
pub(crate) fn rule(rule: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "rule": rule, "message": message })
}
