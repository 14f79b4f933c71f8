//! `WorkloadHistory`: a workload's demand history and decision memory, in a resource of
//! skyfleet's own, so the operator needs no write access to ConfigMaps (on EKS, writing
//! `kube-system/aws-auth` is cluster-admin). One per MultiCloudWorkload, same name and
//! namespace, owned by it. It sits in the tenant's namespace and the tenant may edit it, so
//! the operator decodes it as untrusted input (see `decide::history`).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The most bytes of encoded history stored (the decoder refuses more).
pub const MAX_HISTORY_BYTES: u32 = 256 * 1024;
/// The most bytes of encoded decision memory stored.
pub const MAX_MEMORY_BYTES: u32 = 64 * 1024;

/// What skyfleet remembers of a workload between decisions and across restarts.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "skyfleet.io",
    version = "v1alpha1",
    kind = "WorkloadHistory",
    plural = "workloadhistories",
    namespaced,
    shortname = "wlh",
    category = "skyfleet",
    derive = "PartialEq",
    doc = "What skyfleet remembers of a MultiCloudWorkload of the same name: its demand history (written by the operator; edits are checked, never trusted)."
)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadHistorySpec {
    /// The demand history, in skyfleet's compact text format.
    #[serde(default)]
    #[schemars(length(max = 262_144))]
    pub history: String,
    /// The decision memory as an older skyfleet stored it (JSON); it now lives in the
    /// workload's `status.memory`, and this is read only where status has none.
    #[serde(default)]
    #[schemars(length(max = 65_536))]
    pub memory: String,
}
