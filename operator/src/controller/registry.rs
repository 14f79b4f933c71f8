//! One client per member cluster, built from its kubeconfig Secret.
//!
//! Pools that share a cluster (and so a kubeconfig) share one client; a client is rebuilt only
//! when the kubeconfig's content changes. Secrets are read only from the one namespace the
//! operator is given, so it needs no cluster-wide Secret access.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use tokio::sync::RwLock;

use super::kubeconfig::{KubeconfigError, parse_untrusted};
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

/// Member clients by kubeconfig fingerprint.
#[derive(Clone)]
pub struct MemberRegistry {
    management: kube::Client,
    secret_namespace: String,
    connect_timeout: Duration,
    clients: Arc<RwLock<HashMap<u64, kube::Client>>>,
}

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
            clients: Arc::default(),
        }
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
        if r.namespace != self.secret_namespace {
            return Err(MemberError::NamespaceNotAllowed {
                given: r.namespace.clone(),
                allowed: self.secret_namespace.clone(),
            });
        }
        let api: Api<Secret> = Api::namespaced(self.management.clone(), &r.namespace);
        let secret = api
            .get_opt(&r.name)
            .await
            .map_err(|e| MemberError::Management(e.to_string()))?
            .ok_or_else(|| MemberError::SecretNotFound {
                namespace: r.namespace.clone(),
                name: r.name.clone(),
            })?;
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
        if let Some(c) = self.clients.read().await.get(&kubeconfig.fingerprint) {
            return Ok(c.clone());
        }
        let client = kubeconfig
            .client(self.connect_timeout)
            .await
            .map_err(|source| MemberError::Kubeconfig {
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                source,
            })?;
        self.clients
            .write()
            .await
            .insert(kubeconfig.fingerprint, client.clone());
        Ok(client)
    }
}

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
