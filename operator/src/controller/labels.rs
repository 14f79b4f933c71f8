//! Labels that tie member objects to skyfleet. Owner references cannot cross clusters, so
//! these labels are how the operator finds, counts and cleans up what it created.

/// Set on every object skyfleet creates in a member cluster.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY`].
pub const MANAGER: &str = "skyfleet";
/// The CloudPool a member Deployment belongs to.
pub const POOL: &str = "skyfleet.io/pool";
/// The namespace of the owning MultiCloudWorkload.
pub const WORKLOAD_NAMESPACE: &str = "skyfleet.io/workload-namespace";
/// The name of the owning MultiCloudWorkload.
pub const WORKLOAD_NAME: &str = "skyfleet.io/workload";
/// The UID of the owning MultiCloudWorkload (on member Deployments, not on pods, so adding
/// it to a Deployment made by an older skyfleet does not roll its pods).
pub const WORKLOAD_UID: &str = "skyfleet.io/workload-uid";
/// The skyfleet installation (management cluster) that owns a member object, so two
/// management clusters sharing a member never touch each other's objects.
pub const INSTALLATION: &str = "skyfleet.io/installation";
/// The annotation naming the owning workload as `namespace/name`.
pub const OWNER: &str = "skyfleet.io/owner";
/// The field manager of every server-side apply skyfleet makes.
pub const FIELD_MANAGER: &str = "skyfleet";
/// On a member copy of a workload's ConfigMap or Secret (shared by the workloads of its
/// namespace that reference it).
pub const COPY: &str = "skyfleet.io/copy";
