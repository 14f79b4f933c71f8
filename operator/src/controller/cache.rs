//! The management cluster's objects that every reconcile reads, kept by kube-runtime
//! reflectors: the CloudPools, the member kubeconfig Secrets and the Namespaces' labels
//! (what a pool's `allowedNamespaces` selects on). A workload reconcile then reads nothing
//! of these from the API server; it reads these stores.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::runtime::watcher;
use tokio::task::AbortHandle;

use super::member_cache::{Watched, watch};
use crate::api::cloud_pool::CloudPool;

/// The reflected CloudPools and kubeconfig Secrets.
pub struct ManagementCache {
    /// Every CloudPool.
    pub pools: Watched<CloudPool>,
    /// The Secrets of the one namespace member kubeconfigs are read from.
    pub secrets: Watched<Secret>,
    /// The Namespaces workloads may be in (one, for an operator scoped to one), reduced to
    /// their names and labels.
    pub namespaces: Watched<Namespace>,
    tasks: Vec<AbortHandle>,
}

impl Drop for ManagementCache {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl ManagementCache {
    /// Starts the reflectors (on the current tokio runtime). `scope`: the one namespace
    /// whose workloads are reconciled, if the operator is limited to one.
    pub fn start(client: kube::Client, secret_namespace: &str, scope: Option<&str>) -> Self {
        let mut tasks = Vec::new();
        let pools = watch(
            Api::<CloudPool>::all(client.clone()),
            watcher::Config::default(),
            |p: &mut CloudPool| p.metadata.managed_fields = None,
            |_| {},
            &mut tasks,
        );
        let secrets = watch(
            Api::<Secret>::namespaced(client.clone(), secret_namespace),
            watcher::Config::default(),
            |s: &mut Secret| s.metadata.managed_fields = None,
            |_| {},
            &mut tasks,
        );
        let namespaces_wanted = match scope {
            Some(ns) => watcher::Config::default().fields(&format!("metadata.name={ns}")),
            None => watcher::Config::default(),
        };
        let namespaces = watch(
            Api::<Namespace>::all(client),
            namespaces_wanted,
            |n: &mut Namespace| {
                n.metadata.managed_fields = None;
                n.metadata.annotations = None;
                n.spec = None;
                n.status = None;
            },
            |_| {},
            &mut tasks,
        );
        Self {
            pools,
            secrets,
            namespaces,
            tasks,
        }
    }

    /// Waits up to `limit` for the first lists (a watch retries its errors meanwhile); on
    /// timeout, the error says what the watches last heard.
    pub async fn listed(&self, limit: Duration) -> Result<(), String> {
        let all = async {
            let p = self.pools.store.wait_until_ready().await;
            let s = self.secrets.store.wait_until_ready().await;
            let n = self.namespaces.store.wait_until_ready().await;
            p.is_ok() && s.is_ok() && n.is_ok()
        };
        if tokio::time::timeout(limit, all).await.unwrap_or(false) {
            return Ok(());
        }
        let last = self
            .pools
            .health
            .error()
            .or_else(|| self.secrets.health.error())
            .or_else(|| self.namespaces.health.error());
        Err(format!(
            "not listed within {limit:?}{}",
            last.map(|e| format!(" ({e})")).unwrap_or_default()
        ))
    }
}
