//! The end-to-end harness: real control planes started by `hack/cluster.sh`, shared by every
//! test of one test binary.
//!
//! The environment is brought up once per test binary, or reused when one already runs (as
//! `hack/test.sh` arranges, so that several test binaries share one start-up); a harness that
//! started it stops it when the binary exits. Each test works in namespaces of its own; tests
//! that disturb shared parts (stopping an API server) take [`Env::exclusive`].

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use std::time::{Duration, Instant};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The running environment: one management cluster and the member clusters.
pub struct Env {
    /// The repository root.
    pub root: PathBuf,
    /// Cluster names, management first (`mgmt`, `aws`, `azure`, `gcp`).
    pub clusters: Vec<String>,
    state: PathBuf,
    disruption: RwLock<()>,
}

static ENV: OnceLock<Env> = OnceLock::new();
static STARTED_BY_US: Mutex<Option<PathBuf>> = Mutex::new(None);
/// Operator processes still running, killed when the test binary exits.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

extern "C" fn tear_down() {
    for pid in CHILDREN.lock().map(|g| g.clone()).unwrap_or_default() {
        // SAFETY: sending a signal to a child process we started.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    }
    let started = STARTED_BY_US.lock().ok().and_then(|mut g| g.take());
    if let Some(root) = started {
        let _ = Command::new(root.join("hack/cluster.sh"))
            .arg("down")
            .output();
    }
}

impl Env {
    /// The shared environment, started on first use.
    ///
    /// Panics with the script's output when the control planes cannot be started: every
    /// end-to-end test needs them, and a clear failure beats a hang.
    pub fn get() -> &'static Env {
        ENV.get_or_init(|| {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
            let root = root.canonicalize().unwrap_or(root);
            let state = std::env::var_os("SKYFLEET_CLUSTER_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join(".local/cluster"));
            let script = root.join("hack/cluster.sh");
            let healthy = Command::new(&script)
                .arg("healthy")
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !healthy {
                let build = Command::new(root.join("hack/build-bins.sh"))
                    .output()
                    .expect("run hack/build-bins.sh");
                assert!(
                    build.status.success(),
                    "hack/build-bins.sh failed:\n{}",
                    String::from_utf8_lossy(&build.stderr)
                );
                let up = Command::new(&script)
                    .arg("up")
                    .output()
                    .expect("run hack/cluster.sh up");
                assert!(
                    up.status.success(),
                    "hack/cluster.sh up failed:\n{}{}",
                    String::from_utf8_lossy(&up.stdout),
                    String::from_utf8_lossy(&up.stderr)
                );
                *STARTED_BY_US.lock().expect("lock") = Some(root.clone());
            }
            // SAFETY: registering a plain extern "C" function with no captured state.
            unsafe {
                libc::atexit(tear_down);
            }
            let clusters = std::fs::read_to_string(state.join("clusters"))
                .expect("hack/cluster.sh writes the cluster list")
                .lines()
                .map(str::to_string)
                .collect();
            Env {
                root,
                clusters,
                state,
                disruption: RwLock::new(()),
            }
        })
    }

    /// The member clusters (every cluster but `mgmt`).
    pub fn members(&self) -> Vec<&str> {
        self.clusters
            .iter()
            .map(String::as_str)
            .filter(|c| *c != "mgmt")
            .collect()
    }

    /// The admin kubeconfig of a cluster.
    pub fn kubeconfig(&self, cluster: &str) -> PathBuf {
        self.state.join(cluster).join("kubeconfig")
    }

    /// The kubeconfig skyfleet gets for a member, as a platform engineer would give it: a
    /// token of the ServiceAccount that `charts/member/rbac.yaml` binds to exactly what
    /// skyfleet does there, not the admin certificate. The role is applied once per test
    /// binary and member.
    pub fn member_kubeconfig(&self, member: &str) -> String {
        static DONE: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
        let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, kc)) = done.iter().find(|(m, _)| m == member) {
            return kc.clone();
        }
        self.kubectl_ok(member, &["apply", "-f", "charts/member/rbac.yaml"]);
        let token = self.kubectl_ok(
            member,
            &[
                "create",
                "token",
                "skyfleet",
                "-n",
                "skyfleet-member",
                "--duration=24h",
            ],
        );
        let admin = self.kubectl_ok(
            member,
            &["config", "view", "--raw", "--minify", "-o", "json"],
        );
        let mut kc: serde_json::Value = serde_json::from_str(&admin).expect("kubeconfig JSON");
        let user = kc["contexts"][0]["context"]["user"].clone();
        kc["users"] = serde_json::json!([{"name": user, "user": {"token": token.trim()}}]);
        let text = kc.to_string();
        done.push((member.to_string(), text.clone()));
        text
    }

    /// A kubeconfig file for `cluster` that authenticates as ServiceAccount `ns/sa` (a
    /// TokenRequest token), so a process run with it has that account's RBAC and no more.
    pub fn token_kubeconfig(&self, cluster: &str, ns: &str, sa: &str) -> PathBuf {
        let token = self.kubectl_ok(cluster, &["create", "token", sa, "-n", ns, "--duration=2h"]);
        let path = self
            .root
            .join(format!("target/e2e-sa-{cluster}-{ns}-{sa}.kubeconfig"));
        std::fs::copy(self.kubeconfig(cluster), &path).expect("copy kubeconfig");
        let kc = path.to_str().expect("path");
        for args in [
            vec![
                "config",
                "set-credentials",
                "e2e-sa",
                &format!("--token={}", token.trim()),
            ],
            vec!["config", "set-context", "--current", "--user=e2e-sa"],
        ] {
            let out = Command::new("kubectl")
                .arg(format!("--kubeconfig={kc}"))
                .args(&args)
                .output()
                .expect("kubectl config");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let whoami = Command::new("kubectl")
            .args([
                &format!("--kubeconfig={kc}"),
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.username}",
            ])
            .output()
            .expect("whoami");
        assert_eq!(
            String::from_utf8_lossy(&whoami.stdout),
            format!("system:serviceaccount:{ns}:{sa}")
        );
        path
    }

    /// A kube client for a cluster, with admin rights.
    pub async fn client(&self, cluster: &str) -> kube::Client {
        let kc =
            kube::config::Kubeconfig::read_from(self.kubeconfig(cluster)).expect("read kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .expect("kubeconfig is usable");
        kube::Client::try_from(config).expect("client")
    }

    /// Runs kubectl against a cluster, from the repository root, as a user would.
    pub fn kubectl(&self, cluster: &str, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg(format!(
                "--kubeconfig={}",
                self.kubeconfig(cluster).display()
            ))
            .args(args)
            .current_dir(&self.root)
            .output()
            .expect("run kubectl")
    }

    /// Runs kubectl and returns stdout, panicking with stderr when it fails.
    pub fn kubectl_ok(&self, cluster: &str, args: &[&str]) -> String {
        let out = self.kubectl(cluster, args);
        assert!(
            out.status.success(),
            "kubectl {args:?} on {cluster} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `hack/cluster.sh` with the given arguments.
    pub fn cluster_sh(&self, args: &[&str]) -> Output {
        Command::new(self.root.join("hack/cluster.sh"))
            .args(args)
            .output()
            .expect("run hack/cluster.sh")
    }

    /// Starts a member's stopped API server again (`hack/cluster.sh start-apiserver`) and
    /// waits until the member runs a new pod end to end. Its controller manager, scheduler
    /// and kwok reconnect on their own backoff after an outage (tens of seconds); a test that
    /// stopped the member waits for that, so the test that runs after it does not.
    pub fn start_apiserver(&self, cluster: &str) -> Output {
        let out = self.cluster_sh(&["start-apiserver", cluster]);
        if !out.status.success() {
            return out;
        }
        let canary = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "skyfleet-e2e-canary", "namespace": "kube-system"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "skyfleet-e2e-canary"}},
                "template": {
                    "metadata": {"labels": {"app": "skyfleet-e2e-canary"}},
                    "spec": {
                        "nodeSelector": {"kubernetes.io/hostname": format!("{cluster}-node-0")},
                        "containers": [{"name": "canary", "image": "registry.example/canary:1"}]
                    }
                }
            }
        });
        let file = self.path(format!("target/e2e-canary-{cluster}.json"));
        std::fs::write(&file, canary.to_string()).expect("write the canary");
        let file = file.to_str().expect("path");
        self.kubectl_ok(cluster, &["apply", "--server-side", "-f", file]);
        self.kubectl_ok(
            cluster,
            &[
                "rollout",
                "status",
                "deployment/skyfleet-e2e-canary",
                "-n",
                "kube-system",
                "--timeout=180s",
            ],
        );
        self.kubectl_ok(cluster, &["delete", "-f", file, "--wait=true"]);
        out
    }

    /// The `skyfleet` binary, built once per test binary so tests run the current code.
    pub fn skyfleet_bin(&self) -> PathBuf {
        static BIN: OnceLock<PathBuf> = OnceLock::new();
        BIN.get_or_init(|| {
            // Another build to run the suites against (an older commit, to show that a test
            // fails there).
            if let Some(bin) = std::env::var_os("SKYFLEET_E2E_OPERATOR_BIN") {
                return PathBuf::from(bin);
            }
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let out = Command::new(cargo)
                .args(["build", "--quiet", "-p", "skyfleet", "--bin", "skyfleet"])
                .current_dir(&self.root)
                .output()
                .expect("run cargo build");
            assert!(
                out.status.success(),
                "building skyfleet failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| self.root.join("target"));
            // A copy of this build, so that a later build into the same target directory
            // cannot change the operator under a running suite.
            let dir = target.join("e2e-bin");
            std::fs::create_dir_all(&dir).expect("e2e-bin dir");
            // Copies of suites that have finished are not needed any more.
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let pid = name
                    .strip_prefix("skyfleet-")
                    .and_then(|p| p.parse::<u32>().ok());
                if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
            let copy = dir.join(format!("skyfleet-{}", std::process::id()));
            std::fs::copy(target.join("debug/skyfleet"), &copy).expect("copy the operator");
            copy
        })
        .clone()
    }

    /// Starts `skyfleet operator` against the management cluster as a separate process, with
    /// its log in `target/e2e-logs/`. It is killed when the returned handle is dropped, or
    /// when the test binary exits.
    pub fn start_operator(&self, extra_args: &[&str]) -> Operator {
        self.start_operator_as(&self.kubeconfig("mgmt"), extra_args)
    }

    /// Starts `skyfleet operator` with the given management-cluster kubeconfig (e.g. one
    /// holding a ServiceAccount token, to prove that its RBAC is enough).
    pub fn start_operator_as(&self, kubeconfig: &Path, extra_args: &[&str]) -> Operator {
        let logs = self.root.join("target/e2e-logs");
        std::fs::create_dir_all(&logs).expect("log dir");
        let log_path = logs.join(format!("operator-{}.log", unique()));
        let log = std::fs::File::create(&log_path).expect("log file");
        let admin_port = free_port();
        let child = Command::new(self.skyfleet_bin())
            .arg("operator")
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!("--admin-address=127.0.0.1:{admin_port}"))
            .args(extra_args)
            .env("RUST_LOG", "info,skyfleet=debug")
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start skyfleet operator");
        CHILDREN.lock().expect("lock").push(child.id());
        Operator {
            child,
            log: log_path,
            admin_port,
        }
    }

    /// Installs the CRDs on the management cluster as a user would (`kubectl apply -f crds/`)
    /// and waits until they are established; once per test binary, since concurrent
    /// client-side applies of the same new object race. A `helm install` in a test running
    /// beside it creates the same CRDs (from the chart's `crds/`): an apply that lost that
    /// race (`AlreadyExists`) is run again, and then finds them.
    pub fn install_crds(&self) {
        static DONE: Mutex<bool> = Mutex::new(false);
        let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
        if *done {
            return;
        }
        for attempt in 1.. {
            let out = self.kubectl("mgmt", &["apply", "-f", "crds/"]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                break;
            }
            assert!(
                attempt < 3 && stderr.contains("AlreadyExists"),
                "kubectl apply -f crds/ on mgmt failed:\n{stderr}"
            );
        }
        // `kubectl wait` fails at once, rather than waiting, while a new CRD has no
        // status.conditions yet ("accessor error"), so that case is retried.
        let start = Instant::now();
        loop {
            let out = self.kubectl(
                "mgmt",
                &[
                    "wait",
                    "--for=condition=Established",
                    "--timeout=60s",
                    "crd/cloudpools.skyfleet.io",
                    "crd/multicloudworkloads.skyfleet.io",
                    "crd/workloadhistories.skyfleet.io",
                ],
            );
            if out.status.success() {
                break;
            }
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(
                err.contains("accessor error") && start.elapsed() < Duration::from_secs(60),
                "the CRDs did not become Established: {err}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        *done = true;
    }

    /// Makes every pod in `namespace` of `cluster` report `cpu` (e.g. "250m") to metrics.k8s.io.
    pub fn set_usage(&self, cluster: &str, namespace: &str, cpu: &str) {
        let out = self.cluster_sh(&["usage", cluster, namespace, cpu]);
        assert!(
            out.status.success(),
            "set usage: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Sets the CPU usage of the named pods of `namespace` in `cluster`; every other pod of
    /// the namespace then reports none (so a total stays fixed while replicas are added).
    pub fn set_pod_usage(&self, cluster: &str, namespace: &str, pods: &[String], cpu: &str) {
        let out = self.cluster_sh(&["usage", cluster, namespace, cpu, &pods.join(",")]);
        assert!(
            out.status.success(),
            "set usage: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Creates a fresh namespace with this name prefix in each of `clusters`.
    pub fn namespace(&self, prefix: &str, clusters: &[&str]) -> String {
        let name = format!("{prefix}-{}", unique());
        for c in clusters {
            self.kubectl_ok(c, &["create", "namespace", &name]);
        }
        name
    }

    /// Shared access for a synchronous test: ordinary tests run side by side.
    pub fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.disruption.blocking_read()
    }

    /// Shared access for an async test.
    pub async fn shared_async(&self) -> RwLockReadGuard<'_, ()> {
        self.disruption.read().await
    }

    /// Exclusive access, for tests that stop API servers or otherwise disturb others.
    pub async fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.disruption.write().await
    }

    /// The repository path of a file.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }
}

/// The stored history of a workload: `(step, start, values)`, values as stored (millicores,
/// empty where nothing was measured); the last one is the step still being measured.
pub fn stored_history(
    env: &Env,
    namespace: &str,
    name: &str,
) -> Option<(String, String, Vec<String>)> {
    let out = env.kubectl(
        "mgmt",
        &[
            "get",
            "workloadhistory",
            name,
            "-n",
            namespace,
            "-o",
            "jsonpath={.spec.history}",
        ],
    );
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut parts = text.split(' ');
    let (_, step, start) = (parts.next()?, parts.next()?, parts.next()?);
    let values = parts
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    Some((step.to_string(), start.to_string(), values))
}

/// The directory of the binaries `hack/build-bins.sh` built (helm, promtool, prometheus, the
/// control planes): `$SKYFLEET_BIN`, or `~/.cache/skyfleet/bin` as the script defaults to.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("SKYFLEET_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/skyfleet/bin")
        })
}

/// The standard output of a command that must have succeeded; otherwise panics with `what`
/// and everything the command printed.
pub fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The repository root (no control plane needed).
pub fn repo_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    root.canonicalize().unwrap_or(root)
}

/// A short string unique within this test run.
pub fn unique() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}{}",
        std::process::id() % 10_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `check` until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// GETs `path` from 127.0.0.1:`port` (HTTP/1.0, so the server closes the connection):
/// the status code and body, or `None` when nothing answers within `timeout`.
pub fn http_get(port: u16, path: &str, timeout: Duration) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(timeout)).ok()?;
    write!(conn, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// A running `skyfleet operator` process.
pub struct Operator {
    child: std::process::Child,
    /// Where its log goes.
    pub log: PathBuf,
    /// The port of its /healthz, /readyz and /metrics, on 127.0.0.1.
    pub admin_port: u16,
}

impl Operator {
    /// GETs an admin path (`/metrics`, `/readyz`) and returns the status code and body, or
    /// `None` when nothing answers yet.
    pub fn admin_get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.admin_port, path, Duration::from_secs(5))
    }

    /// The process id, e.g. to read its resident memory from /proc.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The operator's log so far, for assertion messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` (e.g. `libc::SIGSTOP` to pause the process, `libc::SIGCONT` to resume it).
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on a child this handle owns; no memory is shared.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal})");
    }

    /// Kills the process at once (SIGKILL), as a crash or node loss would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Prometheus server on 127.0.0.1 (built by `hack/build-bins.sh` from its pinned Go module),
/// scraping `targets` every second and evaluating a rules file every second, with its data in
/// `target/e2e-prometheus/`. It is killed when dropped, or when the test binary exits.
pub struct Prometheus {
    child: std::process::Child,
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
    log: PathBuf,
}

/// The labels of a series or an alert.
pub type Labels = std::collections::BTreeMap<String, String>;
/// One series of an instant query: its labels and value.
pub type Sample = (Labels, f64);
/// One alert: its labels (with `alertname`) and state (`pending` or `firing`).
pub type Alert = (Labels, String);

/// One series of a range: its labels and its samples as (unix time, value), oldest first.
pub type Series = (Labels, Vec<(f64, f64)>);

impl Prometheus {
    /// Starts Prometheus with job `skyfleet` scraping `targets` (`host:port`) and `rules`
    /// loaded, and waits until it is ready.
    pub fn start(root: &Path, targets: &[String], rules: &Path) -> Prometheus {
        let dir = root
            .join("target/e2e-prometheus")
            .join(format!("prometheus-{}", unique()));
        std::fs::create_dir_all(&dir).expect("prometheus dir");
        let rules_copy = dir.join("rules.yaml");
        std::fs::copy(rules, &rules_copy).expect("copy the rules");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files: [{rules}]\n\
             scrape_configs:\n  - job_name: skyfleet\n    static_configs:\n      - targets: [{targets}]\n",
            rules = rules_copy.display(),
            targets = targets
                .iter()
                .map(|t| format!("'{t}'"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let port = free_port();
        let log = dir.join("prometheus.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(bin_dir().join("prometheus"))
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("start prometheus (built by hack/build-bins.sh)");
        CHILDREN.lock().expect("lock").push(child.id());
        let p = Prometheus { child, port, log };
        let start = Instant::now();
        while p.http_get("/-/ready").map(|(c, _)| c) != Some(200) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "prometheus not ready after 60s:\n{}",
                p.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        p
    }

    /// Its log so far, for assertion messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn http_get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.port, path, Duration::from_secs(10))
    }

    /// The `data` of an API answer, or what went wrong.
    fn api(&self, path: &str) -> Result<serde_json::Value, String> {
        let (code, body) = self
            .http_get(path)
            .ok_or_else(|| format!("no answer from prometheus for {path}"))?;
        let v: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| format!("{path}: HTTP {code}: {e}: {body}"))?;
        if v["status"] != "success" {
            return Err(format!("{path}: HTTP {code}: {body}"));
        }
        Ok(v["data"].clone())
    }

    /// Evaluates `expr` now: every series of the (vector or scalar) result.
    pub fn query(&self, expr: &str) -> Result<Vec<Sample>, String> {
        let data = self.api(&format!("/api/v1/query?query={}", url_encode(expr)))?;
        let value = |v: &serde_json::Value| -> f64 {
            v[1].as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(f64::NAN)
        };
        match data["resultType"].as_str() {
            Some("vector") => Ok(data["result"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| (labels_of(&s["metric"]), value(&s["value"])))
                .collect()),
            Some("scalar") => Ok(vec![(Default::default(), value(&data["result"]))]),
            other => Err(format!("{expr}: unexpected result type {other:?}")),
        }
    }

    /// Evaluates a range selector (`metric{…}[5m]`) now: each series with its samples as
    /// (unix time, value), oldest first.
    pub fn range(&self, selector: &str) -> Result<Vec<Series>, String> {
        let data = self.api(&format!("/api/v1/query?query={}", url_encode(selector)))?;
        if data["resultType"].as_str() != Some("matrix") {
            return Err(format!("{selector}: not a range: {data}"));
        }
        Ok(data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                let points = s["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| {
                        let t = p[0].as_f64()?;
                        let v = p[1].as_str()?.parse().ok()?;
                        Some((t, v))
                    })
                    .collect();
                (labels_of(&s["metric"]), points)
            })
            .collect())
    }

    /// The alerts now pending or firing: their labels (with `alertname`) and state.
    pub fn alerts(&self) -> Result<Vec<Alert>, String> {
        let data = self.api("/api/v1/alerts")?;
        Ok(data["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                (
                    labels_of(&a["labels"]),
                    a["state"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JSON object of label names to values, as Prometheus' API gives them.
fn labels_of(v: &serde_json::Value) -> Labels {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// `s` percent-encoded for a URL query value.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
