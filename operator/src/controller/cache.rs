//! The management cluster's objects that every reconcile reads, kept by kube-runtime
//! reflectors: the CloudPools and the member kubeconfig Secrets. A workload reconcile then
//! lists nothing on the management cluster; it reads these stores.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use tokio::task::AbortHandle;

use super::member_cache::{Watched, watch};
use crate::api::cloud_pool::CloudPool;

/// The reflected CloudPools and kubeconfig Secrets.
pub struct ManagementCache {
    /// Every CloudPool.
    pub pools: Watched<CloudPool>,
    /// The Secrets of the one namespace member kubeconfigs are read from.
    pub secrets: Watched<Secret>,
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
    /// Starts the reflectors (on the current tokio runtime).
    pub fn start(client: kube::Client, secret_namespace: &str) -> Self {
        let mut tasks = Vec::new();
        let pools = watch(
            Api::<CloudPool>::all(client.clone()),
            kube::runtime::watcher::Config::default(),
            |p: &mut CloudPool| p.metadata.managed_fields = None,
            &mut tasks,
        );
        let secrets = watch(
            Api::<Secret>::namespaced(client, secret_namespace),
            kube::runtime::watcher::Config::default(),
            |s: &mut Secret| s.metadata.managed_fields = None,
            &mut tasks,
        );
        Self {
            pools,
            secrets,
            tasks,
        }
    }

    /// Waits up to `limit` for both first lists (a watch retries its errors meanwhile); on
    /// timeout, the error says what the watches last heard.
    pub async fn listed(&self, limit: Duration) -> Result<(), String> {
        let both = async {
            let p = self.pools.store.wait_until_ready().await;
            let s = self.secrets.store.wait_until_ready().await;
            p.is_ok() && s.is_ok()
        };
        if tokio::time::timeout(limit, both).await.unwrap_or(false) {
            return Ok(());
        }
        let last = self
            .pools
            .health
            .error()
            .or_else(|| self.secrets.health.error());
        Err(format!(
            "not listed within {limit:?}{}",
            last.map(|e| format!(" ({e})")).unwrap_or_default()
        ))
    }
}
