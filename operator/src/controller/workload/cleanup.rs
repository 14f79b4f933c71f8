//! Cleanup: when a workload is deleted, remove its Deployments and Services from every member (owner
//! references cannot cross clusters, so a finalizer does it). Only clusters where the
//! workload has, or may have, Deployments hold the finalizer: a pool with a broken Secret that
//! never ran it does not block the delete. Every other reachable cluster is cleaned too, as a
//! courtesy that blocks nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use tracing::{info, warn};

use super::observe::{self, cluster_key};
use super::{WorkloadContext, WorkloadError, act, member, report};
use crate::api::cloud_pool::CloudPool;
use crate::api::workload::MultiCloudWorkload;
use crate::controller::desired::Owner;
use crate::decide::{EventReason, Notice};

/// Removes the workload's Deployments from the members, then lets the finalizer go.
pub async fn run(
    workload: Arc<MultiCloudWorkload>,
    ctx: &WorkloadContext,
) -> Result<Action, WorkloadError> {
    let name = workload.name_any();
    let namespace = workload.namespace().ok_or(WorkloadError::NoNamespace)?;
    let owner = Owner::of(&workload, &ctx.installation);
    let now = jiff::Timestamp::now();
    let (memory, _) = observe::memory(ctx, &workload, &namespace, now).await?;
    // Pools where it runs or ran: its memory, and its status (written by older versions too).
    let mut in_use: BTreeSet<String> = memory.known.keys().cloned().collect();
    if let Some(s) = &workload.status {
        in_use.extend(s.pools.iter().map(|p| p.name.clone()));
    }
    let key = super::memory_key(&namespace, &name);
    ctx.put_memory(key.clone(), memory);

    let pools = ctx.pools().await?;
    // One entry per member cluster: whether a pool there holds the finalizer.
    let mut clusters: BTreeMap<String, (CloudPool, bool)> = BTreeMap::new();
    for p in pools {
        let must = in_use.contains(&p.name_any());
        let entry = clusters
            .entry(cluster_key(&p))
            .or_insert_with(|| ((*p).clone(), false));
        entry.1 |= must;
    }
    let mut pending = Vec::new();
    let mut deleted = Vec::new();
    // Every member at once: one that does not answer delays none of the others.
    let cleaned = futures::future::join_all(
        clusters
            .values()
            .map(|(pool, _)| clean_cluster(ctx, pool, &owner)),
    )
    .await;
    for ((pool, must), outcome) in clusters.values().zip(cleaned) {
        match outcome {
            Ok(names) => deleted.extend(
                names
                    .into_iter()
                    .map(|d| format!("{}: {d}", pool.name_any())),
            ),
            Err(e) if *must => pending.push(format!("pool {}: {e}", pool.name_any())),
            Err(e) => {
                info!(workload = %name, %namespace, pool = %pool.name_any(), error = %e, "member not cleaned; the workload never ran there")
            }
        }
    }
    if !deleted.is_empty() {
        info!(workload = %name, %namespace, deleted = %deleted.join(", "), "member Deployments deleted");
        let notice = Notice {
            warning: false,
            reason: EventReason::Deleted,
            action: "Cleanup",
            note: format!("deleted member Deployments: {}", deleted.join(", ")),
        };
        report::publish(ctx, &workload, &notice);
    }
    if !pending.is_empty() {
        let why = pending.join("; ");
        warn!(workload = %name, %namespace, pending = %why, "cleanup waits for members");
        let notice = Notice {
            warning: true,
            reason: EventReason::CleanupPending,
            action: "Cleanup",
            note: why.clone(),
        };
        report::publish(ctx, &workload, &notice);
        return Err(WorkloadError::CleanupPending(why));
    }
    ctx.take_memory(&key);
    ctx.forget_applied(&key);
    ctx.metrics.forget_workload(&namespace, &name);
    info!(workload = %name, %namespace, "cleaned up; finalizer removed");
    Ok(Action::await_change())
}

/// Deletes the owner's Deployments in one member cluster (UID preconditions); returns their
/// names.
async fn clean_cluster(
    ctx: &WorkloadContext,
    pool: &CloudPool,
    owner: &Owner,
) -> Result<Vec<String>, String> {
    let client = ctx
        .registry
        .client(pool.spec.kubeconfig_secret_ref.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    // The Service first: it selects pods that are about to go.
    let services: Api<Service> = Api::namespaced(client.clone(), &owner.namespace);
    let found = member(
        ctx.member_timeout,
        services.list(&ListParams::default().labels(&owner.selector())),
    )
    .await?;
    let mut deleted = Vec::new();
    for svc in found
        .items
        .into_iter()
        .filter(|s| owner.owns_meta(&s.metadata))
    {
        let sname = svc.name_any();
        act::delete_exactly(ctx, &services, &sname, act::by_uid(svc.uid()))
            .await
            .map_err(|e| format!("deleting Service {sname}: {e}"))?;
        deleted.push(format!("Service {sname}"));
    }
    let api: Api<Deployment> = Api::namespaced(client, &owner.namespace);
    let list = member(
        ctx.member_timeout,
        api.list(&ListParams::default().labels(&owner.selector())),
    )
    .await?;
    for d in list.items.into_iter().filter(|d| owner.owns(d)) {
        let dname = d.name_any();
        act::delete_exactly(ctx, &api, &dname, act::by_uid(d.uid()))
            .await
            .map_err(|e| format!("deleting {dname}: {e}"))?;
        deleted.push(dname);
    }
    Ok(deleted)
}
