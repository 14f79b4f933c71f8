//! One client and one set of watches per member cluster, built from its kubeconfig Secret.
//!
//! Pools that share a cluster (and so a kubeconfig) share them; they are rebuilt only when
//! the kubeconfig's content changes. Secrets are read only from the one namespace the
//! operator is given (from a reflector of that namespace), so it needs no cluster-wide
//! Secret access.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, ResourceExt};
use tokio::sync::RwLock;

use super::kubeconfig::{KubeconfigError, parse_untrusted};
use super::member_cache::MemberCluster;
use super::progress::Wakes;
use crate::api::cloud_pool::KubeconfigSecretRef;

/// Why a pool's member cluster cannot be reached; shown as the pool's `Ready` reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MemberError {
    #[error(
        "kubeconfigSecretRef.namespace is {given:?}, but skyfleet reads member kubeconfigs only from namespace {allowed:?}"
    )]
    NamespaceNotAllowed { given: String, allowed: String },
    #[error("Secret {namespace}/{name} was not found")]
    SecretNotFound { namespace: String, name: String },
    #[error("Secret {namespace}/{name} has no key {key:?}")]
    KeyMissing {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("the kubeconfig in Secret {namespace}/{name} was refused: {source}")]
    Kubeconfig {
        namespace: String,
        name: String,
        source: KubeconfigError,
    },
    #[error("the member API server did not answer: {0}")]
    Unreachable(String),
    #[error("could not read Secret: {0}")]
    Management(String),
}

impl MemberError {
    /// A member call failed on the wire: the message names the innermost cause (such as
    /// "Connection refused") rather than only the client's outer "client error (Connect)".
    pub fn unreachable(error: &(dyn std::error::Error + 'static)) -> Self {
        Self::Unreachable(sanitize(&error_chain(error)))
    }

    /// A CamelCase reason for conditions and events.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NamespaceNotAllowed { .. } => "SecretNamespaceNotAllowed",
            Self::SecretNotFound { .. } => "SecretNotFound",
            Self::KeyMissing { .. } => "SecretKeyMissing",
            Self::Kubeconfig { .. } => "KubeconfigRejected",
            Self::Unreachable(_) => crate::decide::reason::pool::UNREACHABLE,
            Self::Management(_) => "ManagementClusterError",
        }
    }
}

/// Member clusters by kubeconfig fingerprint, each with its client and watches.
#[derive(Clone)]
pub struct MemberRegistry {
    management: kube::Client,
    secret_namespace: String,
    connect_timeout: Duration,
    /// The kubeconfig Secrets, from a reflector when the operator runs (read from the API
    /// server otherwise: the CLI and unit tests).
    secrets: Option<Store<Secret>>,
    clusters: Arc<RwLock<HashMap<u64, Cached>>>,
    /// Per Secret key: the resourceVersion last parsed and the kubeconfig's fingerprint, so
    /// an unchanged Secret is not parsed again on every reconcile.
    parsed: Arc<RwLock<HashMap<SecretKey, (String, u64)>>>,
    /// The management cluster as a member, for pools without a kubeconfig Secret.
    local: Arc<tokio::sync::OnceCell<Arc<MemberCluster>>>,
    /// Where every member's Deployment watch says which workload progressed.
    wakes: Wakes,
}

/// A member cluster and when it was last asked for: one no pool has used for
/// [`IDLE_CLUSTER`] (its kubeconfig changed, its pools went) is dropped with its watches.
#[derive(Clone)]
struct Cached {
    cluster: Arc<MemberCluster>,
    used: Instant,
}

/// A kubeconfig's place: the Secret's name and the key in it.
type SecretKey = (String, String);

/// How long a member cluster no pool asks for keeps its watches.
const IDLE_CLUSTER: Duration = Duration::from_secs(600);

impl MemberRegistry {
    /// A registry that reads kubeconfig Secrets from `secret_namespace` of the management cluster.
    pub fn new(
        management: kube::Client,
        secret_namespace: String,
        connect_timeout: Duration,
    ) -> Self {
        Self {
            management,
            secret_namespace,
            connect_timeout,
            secrets: None,
            clusters: Arc::default(),
            parsed: Arc::default(),
            local: Arc::default(),
            wakes: Wakes::default(),
        }
    }

    /// The workloads whose member Deployments progress from now on (see
    /// [`super::progress`]).
    pub fn progress(&self) -> tokio::sync::broadcast::Receiver<super::progress::WorkloadKey> {
        self.wakes.subscribe()
    }

    /// The same registry reading kubeconfig Secrets from `secrets` (a reflector's store of
    /// the Secret namespace) instead of the API server.
    pub fn with_secret_cache(mut self, secrets: Store<Secret>) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// The management cluster's client, for pools without a kubeconfig Secret.
    pub fn management(&self) -> kube::Client {
        self.management.clone()
    }

    /// The namespace member kubeconfig Secrets are read from.
    pub fn secret_namespace(&self) -> &str {
        &self.secret_namespace
    }

    /// The client for a pool: the management cluster when `secret` is absent.
    pub async fn client(
        &self,
        secret: Option<&KubeconfigSecretRef>,
    ) -> Result<kube::Client, MemberError> {
        let Some(r) = secret else {
            return Ok(self.management.clone());
        };
        Ok(self.cluster(Some(r)).await?.client.clone())
    }

    /// The member cluster of a pool (the management cluster when `secret` is absent), its
    /// watches started on first use.
    pub async fn cluster(
        &self,
        secret: Option<&KubeconfigSecretRef>,
    ) -> Result<Arc<MemberCluster>, MemberError> {
        let Some(r) = secret else {
            let management = self.management.clone();
            let wakes = self.wakes.clone();
            let local = self
                .local
                .get_or_init(|| async move { Arc::new(MemberCluster::start(management, wakes)) })
                .await;
            return Ok(local.clone());
        };
        if r.namespace != self.secret_namespace {
            return Err(MemberError::NamespaceNotAllowed {
                given: r.namespace.clone(),
                allowed: self.secret_namespace.clone(),
            });
        }
        let secret = self.secret(r).await?;
        let version = secret.resource_version().unwrap_or_default();
        let key = (r.name.clone(), r.key.clone());
        let known = self.parsed.read().await.get(&key).cloned();
        if let Some((v, fingerprint)) = known
            && v == version
            && let Some(c) = self.touch(fingerprint).await
        {
            return Ok(c);
        }
        let bytes = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&r.key))
            .map(|b| b.0.clone())
            .ok_or_else(|| MemberError::KeyMissing {
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                key: r.key.clone(),
            })?;
        let kubeconfig = parse_untrusted(&bytes).map_err(|source| MemberError::Kubeconfig {
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            source,
        })?;
        if let Some(c) = self.touch(kubeconfig.fingerprint).await {
            self.parsed
                .write()
                .await
                .insert(key, (version, kubeconfig.fingerprint));
            return Ok(c);
        }
        let client = kubeconfig
            .client(self.connect_timeout)
            .await
            .map_err(|source| MemberError::Kubeconfig {
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                source,
            })?;
        let cluster = Arc::new(MemberCluster::start(client, self.wakes.clone()));
        let mut clusters = self.clusters.write().await;
        // Clusters nobody asked for in a while are dropped, which stops their watches.
        clusters.retain(|_, c| c.used.elapsed() < IDLE_CLUSTER);
        let entry = clusters
            .entry(kubeconfig.fingerprint)
            .or_insert_with(|| Cached {
                cluster,
                used: Instant::now(),
            });
        let cluster = entry.cluster.clone();
        drop(clusters);
        self.parsed
            .write()
            .await
            .insert(key, (version, kubeconfig.fingerprint));
        Ok(cluster)
    }

    /// The cluster with this kubeconfig fingerprint, marked as used.
    async fn touch(&self, fingerprint: u64) -> Option<Arc<MemberCluster>> {
        let mut clusters = self.clusters.write().await;
        let c = clusters.get_mut(&fingerprint)?;
        c.used = Instant::now();
        Some(c.cluster.clone())
    }

    /// The kubeconfig Secret `r`, from the cache when there is one.
    async fn secret(&self, r: &KubeconfigSecretRef) -> Result<Arc<Secret>, MemberError> {
        let not_found = || MemberError::SecretNotFound {
            namespace: r.namespace.clone(),
            name: r.name.clone(),
        };
        match &self.secrets {
            Some(store) => {
                // Until the first list has arrived, an absent Secret is not yet known absent.
                if tokio::time::timeout(SECRET_SYNC, store.wait_until_ready())
                    .await
                    .is_err()
                {
                    return Err(MemberError::Management(
                        "the kubeconfig Secrets have not been listed yet".into(),
                    ));
                }
                store
                    .get(&ObjectRef::new(&r.name).within(&r.namespace))
                    .ok_or_else(not_found)
            }
            None => {
                let api: Api<Secret> = Api::namespaced(self.management.clone(), &r.namespace);
                api.get_opt(&r.name)
                    .await
                    .map_err(|e| MemberError::Management(e.to_string()))?
                    .map(Arc::new)
                    .ok_or_else(not_found)
            }
        }
    }
}

/// How long a reconcile waits for the Secret cache's first list.
const SECRET_SYNC: Duration = Duration::from_secs(10);

/// A member's message, made short and printable for status, Events and logs: a member's
/// error body is its own text, so no more than a short reason of it is passed on.
pub fn sanitize(message: &str) -> String {
    let clean: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MESSAGE_LIMIT)
        .collect();
    clean.trim().to_string()
}

/// The most characters of a member's message that are passed on.
pub const MESSAGE_LIMIT: usize = 300;

/// `error` and each of its sources, joined by ": ", leaving out a source whose text the
/// previous one already contains.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Connect(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("ServiceError: {0}")]
    struct Service(#[source] Connect);

    #[test]
    fn an_unreachable_member_is_described_by_its_innermost_cause() {
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let e = MemberError::unreachable(&Service(Connect(refused)));
        assert_eq!(
            e.to_string(),
            "the member API server did not answer: ServiceError: client error (Connect): Connection refused"
        );
        assert_eq!(e.reason(), "Unreachable");
    }
}
