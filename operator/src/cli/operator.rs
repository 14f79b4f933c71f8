//! `skyfleet operator`: runs the controllers against a management cluster.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::{Recorder, Reporter};

use crate::controller::{pool, registry::MemberRegistry};

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
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::api::duration::parse(s).map_err(|e| e.to_string())
}

/// Runs the operator until SIGTERM or Ctrl-C.
pub fn run(args: Args, _out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let client = match &args.kubeconfig {
            Some(path) => {
                let kc = kube::config::Kubeconfig::read_from(path)?;
                let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
                kube::Client::try_from(config)?
            }
            None => kube::Client::try_default().await?,
        };
        let instance = std::env::var("POD_NAME").ok();
        let reporter = Reporter {
            controller: "skyfleet".into(),
            instance,
        };
        let registry = MemberRegistry::new(
            client.clone(),
            args.member_kubeconfig_namespace,
            args.probe_timeout,
        );
        let ctx = Arc::new(pool::PoolContext {
            registry,
            recorder: Recorder::new(client, reporter),
            probe_period: args.probe_period,
            probe_timeout: args.probe_timeout,
        });
        tracing::info!("skyfleet operator started");
        pool::run(ctx).await;
        anyhow::Ok(())
    })
}
