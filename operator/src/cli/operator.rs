//! `skyfleet operator`: runs the controllers against a management cluster, optionally behind a
//! leader lease so that of several replicas exactly one acts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kube::runtime::events::{Recorder, Reporter};
use kube_lease_manager::{LeaseCreateMode, LeaseManagerBuilder};
use tracing::{error, info, warn};

use crate::controller::admin::{self, AdminState};
use crate::controller::cache::ManagementCache;
use crate::controller::event_queue::{self, EventQueue};
use crate::controller::{fence, pool, registry::MemberRegistry, workload};

/// Arguments of `skyfleet operator`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kubeconfig of the management cluster; default: $KUBECONFIG, ~/.kube/config or in-cluster.
    #[arg(long, env = "SKYFLEET_KUBECONFIG")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The only namespace member kubeconfig Secrets are read from.
    #[arg(
        long,
        env = "SKYFLEET_MEMBER_KUBECONFIG_NAMESPACE",
        default_value = "skyfleet-system"
    )]
    pub member_kubeconfig_namespace: String,
    /// How often each CloudPool's member cluster is probed.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub probe_period: Duration,
    /// How long one probe may take before the member counts as unreachable.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub probe_timeout: Duration,
    /// Every MultiCloudWorkload is reconciled at least this often (member Deployments edited
    /// by hand are put back, demand is measured).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub sync_period: Duration,
    /// How long a pool that stops answering keeps its replicas before they are planned
    /// elsewhere.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub failover_grace: Duration,
    /// How long one call to a member cluster may take while reconciling a workload (reads,
    /// applies, deletes); an API server that does not answer in time is left alone until the
    /// next sync.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub member_timeout: Duration,
    /// Step of the demand history kept per workload (and of its forecast).
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub history_step: Duration,
    /// Most time between two writes of a workload's history when nothing else in its state
    /// changed: what a crash can lose of it, against etcd writes (a week of history is about
    /// 50 KB per workload: 30 KB/s at 1 000 workloads). Rounded down to whole history steps,
    /// at least one.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub history_persist_interval: Duration,
    /// The ExternalDNS provider-specific property that carries a pool's weight in a
    /// workload's DNSEndpoint, where its CloudPool names none (`spec.traffic.weightProperty`).
    #[arg(long, default_value = crate::controller::dns_endpoint::DEFAULT_WEIGHT_PROPERTY)]
    pub dns_weight_property: String,
    /// Reconcile only the MultiCloudWorkloads of this namespace (CloudPools are
    /// cluster-scoped and always watched); default: every namespace.
    #[arg(long, env = "SKYFLEET_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Most MultiCloudWorkloads reconciled at the same time; 0 means no bound. A reconcile
    /// mostly waits on API servers (its decision takes one of a core-sized set of slots), so
    /// this bounds the requests in flight: 16 left the saturated API servers idle between
    /// answers (at 1 000 workloads, converging took 275 s against about 200 s at 64).
    #[arg(long, default_value_t = 64)]
    pub concurrency: u16,
    /// Where /healthz, /readyz and /metrics are served.
    #[arg(long, env = "SKYFLEET_ADMIN_ADDRESS", default_value = "0.0.0.0:8080")]
    pub admin_address: SocketAddr,
    /// Act only while holding a Lease, so that several replicas never both act.
    #[arg(long, env = "SKYFLEET_LEADER_ELECT")]
    pub leader_elect: bool,
    /// The id this installation labels its member objects with, so two management clusters
    /// sharing a member never touch each other's. Default: the UID of the management
    /// cluster's kube-system namespace (stable for the cluster's life).
    #[arg(long, env = "SKYFLEET_INSTALLATION_ID")]
    pub installation_id: Option<String>,
    /// Name of the leader Lease.
    #[arg(long, default_value = "skyfleet-leader")]
    pub lease_name: String,
    /// Namespace of the leader Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "skyfleet-system")]
    pub lease_namespace: String,
    /// How long a lease holds without renewal; a crashed leader is replaced after about this.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// Margin before expiry at which the holder renews.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub lease_grace: Duration,
    /// This instance's identity in the Lease; default: $POD_NAME, else host name and PID.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::api::duration::parse(s).map_err(|e| e.to_string())
}

/// Resolves when SIGTERM or Ctrl-C arrives.
async fn signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// How long the operator waits at start for its management-cluster caches.
const CACHE_SYNC: Duration = Duration::from_secs(60);

/// Runs the operator until SIGTERM or Ctrl-C, or until it loses the leader lease (then it
/// exits non-zero and is restarted, as client-go's leader election does, so that a former
/// leader never acts on stale state).
pub fn run(args: Args, _out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    if args.lease_grace >= args.lease_duration {
        anyhow::bail!("--lease-grace must be shorter than --lease-duration");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(operate(args))
}

/// Runs the CloudPool and MultiCloudWorkload controllers side by side until `shutdown`.
async fn run_controllers(
    pools: Arc<pool::PoolContext>,
    workloads: Arc<workload::WorkloadContext>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    use futures::FutureExt;
    let shutdown = shutdown.boxed().shared();
    tokio::join!(
        pool::run(pools, shutdown.clone()),
        workload::run(workloads, shutdown),
    );
}

/// Sends what the last decisions queued before a graceful exit (not after a lost lease:
/// another leader speaks for the workloads by then).
async fn flush_events(events: &EventQueue) {
    if !events.flush(event_queue::FLUSH_ON_SHUTDOWN).await {
        warn!(
            within = ?event_queue::FLUSH_ON_SHUTDOWN,
            "exiting with Events not yet sent"
        );
    }
}

/// The installation id: given, or the management cluster's kube-system namespace UID.
async fn installation_id(client: &kube::Client, given: Option<String>) -> anyhow::Result<String> {
    if let Some(id) = given.filter(|s| !s.is_empty()) {
        let valid = id.len() <= 63
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && id.starts_with(|c: char| c.is_ascii_alphanumeric())
            && id.ends_with(|c: char| c.is_ascii_alphanumeric());
        anyhow::ensure!(
            valid,
            "--installation-id {id:?} is not a label value (at most 63 letters, digits, '-', '_', '.')"
        );
        return Ok(id);
    }
    let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
    let ns = api.get("kube-system").await.map_err(|e| {
        anyhow::anyhow!(
            "reading namespace kube-system for the installation id (or give --installation-id): {e}"
        )
    })?;
    ns.metadata
        .uid
        .ok_or_else(|| anyhow::anyhow!("namespace kube-system has no UID; give --installation-id"))
}

async fn operate(args: Args) -> anyhow::Result<()> {
    let client = match &args.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)?;
            let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
            kube::Client::try_from(config)?
        }
        None => kube::Client::try_default().await?,
    };
    let identity = args.identity.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_else(|_| "skyfleet".into());
        format!("{}-{}", host.trim(), std::process::id())
    });
    let state = AdminState::default();
    let listener = tokio::net::TcpListener::bind(args.admin_address).await?;
    info!(address = %listener.local_addr()?, "admin endpoints: /healthz /readyz /metrics");
    let admin_state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = admin::serve(listener, admin_state).await {
            error!(error = %e, "admin server stopped");
        }
    });
    client.apiserver_version().await?;
    let installation = installation_id(&client, args.installation_id.clone()).await?;
    info!(%installation, "installation id");

    // The reflectors every reconcile reads from; a reconcile lists nothing itself.
    let cache = ManagementCache::start(
        client.clone(),
        &args.member_kubeconfig_namespace,
        args.namespace.as_deref(),
    );
    if let Err(e) = cache.listed(CACHE_SYNC).await {
        anyhow::bail!(
            "CloudPools, Namespaces and the Secrets of namespace {} could not be listed (the chart's ClusterRole lets the operator list and watch the first two): {e}",
            args.member_kubeconfig_namespace
        );
    }
    let registry = MemberRegistry::new(
        client.clone(),
        args.member_kubeconfig_namespace.clone(),
        args.probe_timeout,
    )
    .with_secret_cache(cache.secrets.store.clone());
    let reporter = Reporter {
        controller: "skyfleet".into(),
        instance: Some(identity.clone()),
    };
    let events = EventQueue::start(
        Recorder::new(client.clone(), reporter),
        state.metrics.clone(),
        event_queue::QUEUE_CAPACITY,
        event_queue::SENDERS,
    );
    // Without leader election one instance writes freely; with it, only while its lease is
    // provably its own.
    let fence = if args.leader_elect {
        fence::Fence::closed()
    } else {
        fence::Fence::open()
    };
    let ctx = Arc::new(pool::PoolContext {
        registry: registry.clone(),
        events: events.clone(),
        probe_period: args.probe_period,
        probe_timeout: args.probe_timeout,
        metrics: state.metrics.clone(),
        installation: installation.clone(),
        failover_grace: args.failover_grace,
    });
    let workload_ctx = Arc::new(
        workload::WorkloadContext::new(
            registry,
            events.clone(),
            args.sync_period,
            args.failover_grace,
            args.history_step,
            args.member_timeout,
            state.metrics.clone(),
        )
        .with_pools(cache.pools.store.clone())
        .with_namespaces(cache.namespaces.store.clone())
        .with_history_persistence(args.history_persist_interval)
        .with_scope(workload::Scope {
            namespace: args.namespace.clone(),
            concurrency: args.concurrency,
        })
        .with_installation(installation)
        .with_fence(fence.clone())
        .with_dns_weight_property(args.dns_weight_property.clone()),
    );

    if !args.leader_elect {
        state.ready.store(true, Ordering::Relaxed);
        state.metrics.leader.set(1);
        info!(%identity, "skyfleet operator started without leader election");
        run_controllers(ctx, workload_ctx, signal()).await;
        flush_events(&events).await;
        return Ok(());
    }

    let client_for_fence = client.clone();
    let manager = LeaseManagerBuilder::new(client, &args.lease_name)
        .with_namespace(&args.lease_namespace)
        .with_identity(&identity)
        .with_duration(args.lease_duration.as_secs().max(2))
        .with_grace(args.lease_grace.as_secs().max(1))
        .with_create_mode(LeaseCreateMode::AutoCreate)
        .build()
        .await?;
    let (mut leading, _lease_task) = manager.watch().await;
    state.ready.store(true, Ordering::Relaxed);
    info!(%identity, lease = %args.lease_name, namespace = %args.lease_namespace, "waiting for the leader lease");
    tokio::select! {
        _ = signal() => return Ok(()),
        changed = async { while !*leading.borrow_and_update() { if leading.changed().await.is_err() { return false; } } true } => {
            if !changed { anyhow::bail!("the lease manager stopped"); }
        }
    }
    info!(%identity, "became leader");
    state.metrics.leader.set(1);
    let mut watch_loss = leading.clone();
    let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let lost_flag = lost.clone();
    let shutdown = async move {
        tokio::select! {
            _ = signal() => {}
            _ = async {
                while *watch_loss.borrow_and_update() {
                    if watch_loss.changed().await.is_err() { break; }
                }
            } => { lost_flag.store(true, Ordering::Relaxed); }
        }
    };
    let margin = Duration::from_secs(1).min(args.lease_duration / 4);
    let period = (args.lease_grace / 2).clamp(Duration::from_millis(250), Duration::from_secs(1));
    let fenced = fence::watch(
        kube::Api::namespaced(client_for_fence, &args.lease_namespace),
        args.lease_name.clone(),
        identity.clone(),
        margin,
        period,
        args.lease_duration,
        fence,
    );
    // A closed fence stops everything at once: in-flight reconciles are dropped, not finished.
    tokio::select! {
        () = run_controllers(ctx, workload_ctx, shutdown) => {}
        () = fenced => {
            state.metrics.leader.set(0);
            anyhow::bail!("the leader lease was not renewed in time; stopped at once, writing nothing more");
        }
    }
    state.metrics.leader.set(0);
    if lost.load(Ordering::Relaxed) {
        anyhow::bail!("lost the leader lease; exiting so that a restart begins from fresh state");
    }
    flush_events(&events).await;
    Ok(())
}
