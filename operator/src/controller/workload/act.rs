//! Act: carry out a decision in the members. Only Deployments that skyfleet owns are
//! changed (the observe phase found them by labels and UID); a delete carries the UID as a
//! precondition, so an object recreated under the same name by someone else is never hit.
//! Members are reached concurrently, so a slow one never delays the others.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Api, ResourceExt};

use super::observe::{self, Handle, ServiceSeen};
use super::{WorkloadContext, member};
use crate::api::cloud_pool::{CloudPool, PodSecurityLevel};
use crate::api::workload::MultiCloudWorkload;
use crate::controller::dependencies::{self, Kind, Reference, Resolved, Source};
use crate::controller::desired::{self, Owner};
use crate::controller::dns_endpoint;
use crate::controller::labels;
use crate::controller::registry::sanitize;
use crate::decide::MemberAction;

/// What happened in one pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to do, or done.
    Done,
    /// The member refused or did not answer: the reason, short and sanitised.
    Failed(String),
}

/// Carries out `actions` (one per handle), with the template's dependencies as `resolved`.
/// Returns, per handle, what happened and the UID of the workload's Deployment there
/// afterwards (the copies of its dependencies are owned by it).
pub async fn members(
    ctx: &WorkloadContext,
    workload: &MultiCloudWorkload,
    owner: &Owner,
    handles: &[Handle],
    actions: &[MemberAction],
    resolved: &Resolved,
) -> Vec<(Outcome, Option<String>)> {
    let work = handles.iter().zip(actions).map(|(h, &action)| async move {
        let live = h.existing.as_ref().and_then(|d| d.metadata.uid.clone());
        let Some(client) = &h.client else {
            return (Outcome::Done, live);
        };
        let result = match action {
            MemberAction::Leave => Ok(live.clone()),
            MemberAction::Apply(n) => {
                apply(ctx, workload, owner, h, client.clone(), n, resolved).await
            }
            MemberAction::Delete => delete(ctx, owner, h, client.clone()).await.map(|()| None),
        };
        match result {
            Ok(uid) => (Outcome::Done, uid),
            Err(e) => (Outcome::Failed(sanitize(&e)), live),
        }
    });
    join_all(work).await
}

/// Server-side applies the workload's Deployment with `replicas` in one member; returns its
/// UID.
async fn apply(
    ctx: &WorkloadContext,
    workload: &MultiCloudWorkload,
    owner: &Owner,
    h: &Handle,
    client: kube::Client,
    replicas: u32,
    resolved: &Resolved,
) -> Result<Option<String>, String> {
    let replicas = i32::try_from(replicas).map_err(|e| e.to_string())?;
    ctx.fence.check().map_err(|e| e.to_string())?;
    let mut desired = desired::deployment(workload, owner, &h.pool, &h.name, replicas)
        .map_err(|e| e.to_string())?;
    let roll = workload.spec.dependencies.is_some_and(|d| d.roll_on_change);
    dependencies::annotate(&mut desired, resolved, roll);
    let key = super::memory_key(&owner.namespace, &owner.name);
    if h.existing.is_none() {
        // The watch shows only skyfleet's Deployments, and what it remembered of the name
        // may be old: the name is checked once more just before anything is created there.
        let taken = observe::foreign(ctx, &client, &owner.namespace, &h.name, owner).await?;
        let check = observe::conflict_key(&observe::cluster_key(&h.pool), &h.name);
        ctx.remember_conflict(&key, check, taken.clone());
        if let Some(why) = taken {
            return Err(why);
        }
        member(
            ctx.member_timeout,
            ensure_namespace(client.clone(), &owner.namespace, pod_security(&h.pool)),
        )
        .await?;
    }
    let fingerprint = fingerprint(&desired)?;
    let pool = h.pool.name_any();
    let live_generation = h.existing.as_ref().and_then(|d| d.metadata.generation);
    if live_generation.is_some_and(|g| ctx.applied(&key, &pool) == Some((fingerprint, g))) {
        return Ok(h.existing.as_ref().and_then(|d| d.metadata.uid.clone()));
    }
    let api: Api<Deployment> = Api::namespaced(client, &owner.namespace);
    let applied = server_side_apply(ctx, &api, &h.name, &desired, labels::FIELD_MANAGER).await?;
    if let Some(generation) = applied.metadata.generation {
        ctx.remember_applied(&key, &pool, (fingerprint, generation));
    }
    Ok(applied.metadata.uid)
}

/// Deletes the workload's Deployment in one member, with its UID as a precondition.
async fn delete(
    ctx: &WorkloadContext,
    owner: &Owner,
    h: &Handle,
    client: kube::Client,
) -> Result<(), String> {
    let Some(existing) = &h.existing else {
        return Ok(());
    };
    let api: Api<Deployment> = Api::namespaced(client, &owner.namespace);
    delete_exactly(ctx, &api, &h.name, by_uid(existing.uid())).await
}

/// Keeps the workload's Service in each member cluster that runs it (a Deployment of the
/// workload stays or is applied there) when `spec.service` asks for one, and removes the one
/// skyfleet made where it no longer runs or no Service is asked for. Returns, per failed
/// cluster, the index of its first pool and why.
pub async fn services(
    ctx: &WorkloadContext,
    workload: &MultiCloudWorkload,
    owner: &Owner,
    handles: &[Handle],
    actions: &[MemberAction],
) -> Vec<(usize, String)> {
    let desired = desired::service(workload, owner);
    let work = clusters(handles).into_values().filter_map(|group| {
        // The cluster as a pool that answered saw it; nothing is done where none did.
        let first = group.iter().copied().find(|&i| {
            handles[i].client.is_some() && !matches!(handles[i].service, ServiceSeen::Unknown)
        })?;
        let runs = group.iter().any(|&i| match actions.get(i) {
            Some(MemberAction::Apply(_)) => true,
            Some(MemberAction::Leave) => handles[i].existing.is_some(),
            _ => false,
        });
        let wanted = desired.clone().filter(|_| runs);
        let h = &handles[first];
        Some(async move {
            let client = h.client.clone()?;
            let result = match (&h.service, wanted) {
                (ServiceSeen::Foreign, Some(_)) => Err(foreign_service(owner)),
                (ServiceSeen::Mine(live), Some(svc)) => {
                    apply_service(ctx, owner, &h.cluster, client, svc, Some(live)).await
                }
                (ServiceSeen::Absent, Some(svc)) => {
                    apply_service(ctx, owner, &h.cluster, client, svc, None).await
                }
                (ServiceSeen::Mine(live), None) => {
                    let api: Api<Service> = Api::namespaced(client, &owner.namespace);
                    delete_exactly(ctx, &api, &owner.name, by_uid(live.uid())).await
                }
                _ => Ok(()),
            };
            result.err().map(|e| (first, sanitize(&e)))
        })
    });
    join_all(work).await.into_iter().flatten().collect()
}

/// How often a copy of a dependency that nothing changed is applied again anyway: one edited
/// or deleted by hand in a member is put back within this. Copies are not watched, since a
/// watch would need the right to list every Secret in the member.
pub const COPY_REFRESH: Duration = Duration::from_secs(300);

/// Keeps the copies of the template's ConfigMaps and Secrets in each member cluster where a
/// Deployment of the workload stays or was applied, owned by those Deployments (the member's
/// garbage collector removes a copy with the last of them), and releases this workload's
/// part of a copy whose reference the template dropped. Nothing is done while a dependency
/// cannot be read. Returns, per failed cluster, the index of its first pool and why.
pub async fn dependencies(
    ctx: &WorkloadContext,
    owner: &Owner,
    handles: &[Handle],
    actions: &[MemberAction],
    uids: &[Option<String>],
    resolved: &Resolved,
) -> Vec<(usize, String)> {
    if !resolved.missing.is_empty() {
        return Vec::new();
    }
    let wanted: BTreeSet<Reference> = resolved.sources.iter().map(Source::reference).collect();
    let work = clusters(handles)
        .into_iter()
        .filter_map(|(cluster, group)| {
            // On the management cluster the workload's namespace holds the originals.
            if cluster == observe::MANAGEMENT {
                return None;
            }
            let owners: Vec<OwnerReference> = group
                .iter()
                .filter(|&&i| !matches!(actions.get(i), Some(MemberAction::Delete)))
                .filter_map(|&i| {
                    let uid = uids.get(i)?.as_deref()?;
                    Some(dependencies::owned_by(&handles[i].name, uid))
                })
                .collect();
            let previous: BTreeSet<Reference> = group
                .iter()
                .filter_map(|&i| handles[i].existing.as_ref())
                .flat_map(|d| dependencies::listed_on(&d.metadata))
                .collect();
            let first = group
                .iter()
                .copied()
                .find(|&i| handles[i].client.is_some())?;
            // Where none runs, the garbage collector removes the copies with the Deployments.
            if owners.is_empty() {
                return None;
            }
            let h = &handles[first];
            let wanted = &wanted;
            Some(async move {
                let client = h.client.clone()?;
                let mut failed = Vec::new();
                for source in &resolved.sources {
                    if let Err(e) =
                        keep_copy(ctx, owner, &h.cluster, &client, source, &owners).await
                    {
                        failed.push(e);
                    }
                }
                for dropped in previous.difference(wanted) {
                    if let Err(e) = release_copy(ctx, owner, &h.cluster, &client, dropped).await {
                        failed.push(e);
                    }
                }
                (!failed.is_empty()).then(|| (first, sanitize(&failed.join("; "))))
            })
        });
    join_all(work).await.into_iter().flatten().collect()
}

/// Keeps the workload's DNSEndpoint on the management cluster: its records follow
/// `traffic` (the split just decided), applied when they change or every
/// [`COPY_REFRESH`]; removed when `spec.traffic.dns` is dropped (the garbage collector removes
/// it with the workload). One of the name that is not this workload's is left untouched.
pub async fn dns_endpoint(
    ctx: &WorkloadContext,
    workload: &MultiCloudWorkload,
    owner: &Owner,
    handles: &[Handle],
    traffic: Option<&crate::api::workload::TrafficStatus>,
) -> Result<(), String> {
    use kube::core::DynamicObject;
    let resource = dns_endpoint::api_resource();
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.registry.management(), &owner.namespace, &resource);
    let key = super::memory_key(&owner.namespace, &owner.name);
    let slot = "DNSEndpoint";
    let now = unix_now();
    let dns = workload.spec.traffic.as_ref().and_then(|t| t.dns.as_ref());
    let Some(dns) = dns else {
        // Looked for once per operator start, then only after one was applied.
        if ctx.applied(&key, slot).is_some_and(|(fp, _)| fp == 0) {
            return Ok(());
        }
        // Where ExternalDNS's CRD is not installed there can be no DNSEndpoint to remove.
        let found = match member(ctx.member_timeout, dns_endpoint_of(&api, &owner.name)).await? {
            Served::Yes(found) => found,
            Served::No => None,
        };
        if let Some(found) = found.filter(|f| dns_endpoint::is_mine(owner, &f.metadata)) {
            ctx.fence.check().map_err(|e| e.to_string())?;
            delete_exactly(ctx, &api, &owner.name, by_uid(found.metadata.uid.clone())).await?;
        }
        ctx.remember_applied(&key, slot, (0, now));
        return Ok(());
    };
    let property = |pool: &str| {
        handles
            .iter()
            .find(|h| h.pool.name_any() == pool)
            .and_then(|h| h.pool.spec.traffic.as_ref())
            .and_then(|t| t.weight_property.clone())
            .unwrap_or_else(|| ctx.dns_weight_property.clone())
    };
    let empty = crate::api::workload::TrafficStatus::default();
    let (records, without_endpoint) =
        dns_endpoint::records(dns, traffic.unwrap_or(&empty), property);
    let desired = dns_endpoint::desired(owner, &records);
    let fingerprint = fingerprint(&desired)?.max(1);
    if let Some((applied, at)) = ctx.applied(&key, slot)
        && applied == fingerprint
        && now.saturating_sub(at) < COPY_REFRESH.as_secs() as i64
    {
        return without_endpoint_said(&without_endpoint);
    }
    let found = match member(ctx.member_timeout, dns_endpoint_of(&api, &owner.name)).await? {
        Served::Yes(found) => found,
        Served::No => {
            return Err(format!(
                "spec.traffic.dns needs ExternalDNS's DNSEndpoint resource ({}/{}), which the management cluster does not serve: install its CRD",
                dns_endpoint::GROUP,
                dns_endpoint::VERSION
            ));
        }
    };
    if let Some(found) = found
        && !dns_endpoint::is_mine(owner, &found.metadata)
    {
        return Err(format!(
            "DNSEndpoint {}/{} exists and is not skyfleet's for this workload; it is left untouched",
            owner.namespace, owner.name
        ));
    }
    server_side_apply(ctx, &api, &owner.name, &desired, labels::FIELD_MANAGER).await?;
    ctx.remember_applied(&key, slot, (fingerprint, now));
    without_endpoint_said(&without_endpoint)
}

/// Whether the API server serves a resource at all.
enum Served<T> {
    Yes(T),
    No,
}

/// The workload's DNSEndpoint, if any; [`Served::No`] when the API server answers a bare 404
/// (no such resource type: ExternalDNS's CRD is not installed), not the `NotFound` status of a
/// missing object.
async fn dns_endpoint_of(
    api: &Api<kube::core::DynamicObject>,
    name: &str,
) -> Result<Served<Option<kube::core::DynamicObject>>, kube::Error> {
    match api.get_opt(name).await {
        Ok(found) => Ok(Served::Yes(found)),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(Served::No),
        Err(e) => Err(e),
    }
}

/// Pools with traffic but no endpoint get no record: said, since users cannot reach them.
fn without_endpoint_said(pools: &[String]) -> Result<(), String> {
    if pools.is_empty() {
        return Ok(());
    }
    Err(format!(
        "no DNS record for {}: no traffic.endpoint on the CloudPool and no LoadBalancer address in the member",
        pools.join(", ")
    ))
}

/// The handles of each member cluster, by index.
fn clusters(handles: &[Handle]) -> BTreeMap<&str, Vec<usize>> {
    let mut clusters: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, h) in handles.iter().enumerate() {
        clusters.entry(h.cluster.as_str()).or_default().push(i);
    }
    clusters
}

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Applies the copy of `source` in one member cluster, unless the same copy was applied there
/// less than [`COPY_REFRESH`] ago. An object under its name that is not skyfleet's copy is
/// left untouched and refused.
async fn keep_copy(
    ctx: &WorkloadContext,
    owner: &Owner,
    cluster: &str,
    client: &kube::Client,
    source: &Source,
    owners: &[OwnerReference],
) -> Result<(), String> {
    let reference = source.reference();
    let desired = dependencies::copy(source, owner, owners);
    let fingerprint = fingerprint(&desired)?;
    let key = super::memory_key(&owner.namespace, &owner.name);
    let slot = format!("{reference}@{cluster}");
    let now = unix_now();
    if let Some((applied, at)) = ctx.applied(&key, &slot)
        && applied == fingerprint
        && now.saturating_sub(at) < COPY_REFRESH.as_secs() as i64
    {
        return Ok(());
    }
    match reference.kind {
        Kind::ConfigMap => {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), &owner.namespace);
            put_copy(ctx, owner, &api, &reference, &desired).await?;
        }
        Kind::Secret => {
            let api: Api<Secret> = Api::namespaced(client.clone(), &owner.namespace);
            put_copy(ctx, owner, &api, &reference, &desired).await?;
        }
    }
    ctx.remember_applied(&key, &slot, (fingerprint, now));
    Ok(())
}

async fn put_copy<K>(
    ctx: &WorkloadContext,
    owner: &Owner,
    api: &Api<K>,
    reference: &Reference,
    desired: &serde_json::Value,
) -> Result<(), String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    if let Some(found) = member(ctx.member_timeout, api.get_opt(&reference.name)).await?
        && !dependencies::is_copy(owner, found.meta())
    {
        return Err(format!(
            "{} {}/{} exists there and is not skyfleet's copy; it is left untouched",
            reference.kind.as_str(),
            owner.namespace,
            reference.name
        ));
    }
    let manager = dependencies::field_manager(owner);
    server_side_apply::<K>(ctx, api, &reference.name, desired, &manager).await?;
    Ok(())
}

/// Gives up this workload's part of the copy named by `reference` in one member cluster (its
/// owner references and the fields only it applied) and deletes the copy when no other
/// workload's Deployment owns it any more (preconditioned on the UID and version just seen).
async fn release_copy(
    ctx: &WorkloadContext,
    owner: &Owner,
    cluster: &str,
    client: &kube::Client,
    reference: &Reference,
) -> Result<(), String> {
    let key = super::memory_key(&owner.namespace, &owner.name);
    ctx.forget_applied_slot(&key, &format!("{reference}@{cluster}"));
    match reference.kind {
        Kind::ConfigMap => {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), &owner.namespace);
            drop_copy(ctx, owner, &api, reference).await
        }
        Kind::Secret => {
            let api: Api<Secret> = Api::namespaced(client.clone(), &owner.namespace);
            drop_copy(ctx, owner, &api, reference).await
        }
    }
}

async fn drop_copy<K>(
    ctx: &WorkloadContext,
    owner: &Owner,
    api: &Api<K>,
    reference: &Reference,
) -> Result<(), String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let Some(found) = member(ctx.member_timeout, api.get_opt(&reference.name)).await? else {
        return Ok(());
    };
    if !dependencies::is_copy(owner, found.meta()) {
        return Ok(());
    }
    let manager = dependencies::field_manager(owner);
    let released = dependencies::release(reference, owner);
    let left: K = server_side_apply(ctx, api, &reference.name, &released, &manager).await?;
    let meta = left.meta();
    if meta
        .owner_references
        .as_ref()
        .is_some_and(|o| !o.is_empty())
    {
        return Ok(());
    }
    let preconditions = Preconditions {
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
    };
    delete_exactly(ctx, api, &reference.name, preconditions).await
}

fn foreign_service(owner: &Owner) -> String {
    format!(
        "Service {}/{} exists there and is not skyfleet's for this workload; it is left untouched",
        owner.namespace, owner.name
    )
}

/// Server-side applies the workload's Service in one member cluster. One not yet in the
/// watch is read first, so a Service of someone else's that holds the name is never taken.
async fn apply_service(
    ctx: &WorkloadContext,
    owner: &Owner,
    cluster: &str,
    client: kube::Client,
    desired: Service,
    live: Option<&std::sync::Arc<Service>>,
) -> Result<(), String> {
    let api: Api<Service> = Api::namespaced(client.clone(), &owner.namespace);
    let key = super::memory_key(&owner.namespace, &owner.name);
    let slot = format!("service@{cluster}");
    let fingerprint = fingerprint(&desired)?;
    let version = |s: &Service| -> i64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        s.resource_version().hash(&mut h);
        h.finish() as i64
    };
    match live {
        Some(live) if ctx.applied(&key, &slot) == Some((fingerprint, version(live))) => {
            return Ok(());
        }
        Some(_) => {}
        None => {
            if let Some(found) = member(ctx.member_timeout, api.get_opt(&owner.name)).await?
                && !owner.owns_meta(&found.metadata)
            {
                return Err(foreign_service(owner));
            }
        }
    }
    let applied =
        server_side_apply(ctx, &api, &owner.name, &desired, labels::FIELD_MANAGER).await?;
    ctx.remember_applied(&key, &slot, (fingerprint, version(&applied)));
    Ok(())
}

/// Server-side applies `desired` as `name` (as `manager`, forced), the fence checked just
/// before the write: it may have closed while this waited.
async fn server_side_apply<K>(
    ctx: &WorkloadContext,
    api: &Api<K>,
    name: &str,
    desired: &(impl serde::Serialize + std::fmt::Debug),
    manager: &str,
) -> Result<K, String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    ctx.fence.check().map_err(|e| e.to_string())?;
    member(
        ctx.member_timeout,
        api.patch(
            name,
            &PatchParams::apply(manager).force(),
            &Patch::Apply(desired),
        ),
    )
    .await
}

/// Deletes the object `name` only if it is still the object the preconditions name (its UID,
/// and its version when given); one already gone is no error.
pub(super) async fn delete_exactly<K>(
    ctx: &WorkloadContext,
    api: &Api<K>,
    name: &str,
    preconditions: Preconditions,
) -> Result<(), String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    ctx.fence.check().map_err(|e| e.to_string())?;
    let params = DeleteParams {
        preconditions: Some(preconditions),
        ..DeleteParams::background()
    };
    match member(ctx.member_timeout, api.delete(name, &params)).await {
        Ok(_) => Ok(()),
        Err(e) if e.contains("NotFound") || e.contains("not found") => Ok(()),
        Err(e) => Err(e),
    }
}

/// The precondition that the object is still the one with `uid`.
pub(super) fn by_uid(uid: Option<String>) -> Preconditions {
    Preconditions {
        uid,
        resource_version: None,
    }
}

/// A stable fingerprint of what is applied, to skip applies nobody needs.
fn fingerprint(desired: &impl serde::Serialize) -> Result<u64, String> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(desired)
        .map_err(|e| e.to_string())?
        .hash(&mut h);
    Ok(h.finish())
}

/// The Pod Security Admission level for namespaces skyfleet creates in the pool's member.
fn pod_security(pool: &CloudPool) -> PodSecurityLevel {
    pool.spec.pod_security.unwrap_or_default().enforce
}

/// The labels of a namespace skyfleet creates: its own, and Pod Security Admission enforcing,
/// warning about and auditing `level` (pinned to `latest`).
pub fn namespace_labels(level: PodSecurityLevel) -> BTreeMap<String, String> {
    let mut out = BTreeMap::from([(labels::MANAGED_BY.to_string(), labels::MANAGER.to_string())]);
    for mode in ["enforce", "warn", "audit"] {
        out.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            level.as_str().to_string(),
        );
        out.insert(
            format!("pod-security.kubernetes.io/{mode}-version"),
            "latest".to_string(),
        );
    }
    out
}

/// Creates the namespace in a member when it is missing, labelled as skyfleet's and with
/// Pod Security Admission at `level`. A namespace that exists is someone's: left as it is.
async fn ensure_namespace(
    client: kube::Client,
    namespace: &str,
    level: PodSecurityLevel,
) -> Result<(), kube::Error> {
    let api: Api<Namespace> = Api::all(client);
    if api.get_opt(namespace).await?.is_some() {
        return Ok(());
    }
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.to_string()),
            labels: Some(namespace_labels(level)),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_namespaces_enforce_the_pools_pod_security_level() {
        let l = namespace_labels(PodSecurityLevel::Restricted);
        for mode in ["enforce", "warn", "audit"] {
            assert_eq!(
                l[&format!("pod-security.kubernetes.io/{mode}")],
                "restricted"
            );
        }
        let pool: CloudPool = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "aws"},
            "spec": {"provider": "aws", "region": "r", "pricing": {"cpuPerHour": 0.1, "memoryGiBPerHour": 0.01}}
        }))
        .unwrap();
        assert_eq!(
            pod_security(&pool),
            PodSecurityLevel::Baseline,
            "baseline by default"
        );
    }
}
