//! `skyfleet simulate`: replays a demand trace through the operator's own decision, beside
//! static peak provisioning, an HPA-like autoscaler and an oracle, and reports cost,
//! utilisation and unmet demand for each.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};

use super::forecast_eval::parse_trace;
use super::plan::{choose_workload, names, read};
use crate::api::duration;
use crate::placement::PoolInput;
use crate::placement::sizing::ReplicaShape;
use crate::simulate::{self, Failure, Scenario};

/// Arguments of `skyfleet simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// CSV file with the header `timestamp,value`: demand, in any unit.
    #[arg(long)]
    pub trace: PathBuf,
    /// CPU cores the trace's maximum stands for.
    #[arg(long, allow_negative_numbers = true)]
    pub peak_cores: f64,
    /// Manifest files with the CloudPools and the MultiCloudWorkload (multi-document YAML).
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// The workload to simulate, when the files hold several.
    #[arg(long)]
    pub workload: Option<String>,
    /// Time from a replica's creation until it serves, e.g. 3m.
    #[arg(long, default_value = "3m")]
    pub startup: String,
    /// A pool lost for a while: POOL@OFFSET+DURATION, e.g. aws-us-east-1@6h+1h; Spot@6h+1h
    /// loses every pool with pricing.capacityType Spot at once (a spot reclaim). Repeatable.
    #[arg(long = "fail")]
    pub fail: Vec<String>,
    /// How long a pool is down before skyfleet, the reactive baseline and the oracle place
    /// its replicas elsewhere.
    #[arg(long, default_value = "30s")]
    pub failover_grace: String,
    /// A directory (created if missing) for `<strategy>.csv`, one row per step, and
    /// `simulate.svg`, demand, capacity and cost over time.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Output format: table or json.
    #[arg(short = 'o', long = "output", default_value = "table", value_parser = ["table", "json"])]
    pub output: String,
}

/// Runs `skyfleet simulate`, writing the report to `out`.
pub fn run(args: Args, out: &mut dyn Write) -> anyhow::Result<()> {
    if !args.peak_cores.is_finite() || args.peak_cores <= 0.0 {
        bail!(
            "--peak-cores must be a positive number of CPU cores, got {}",
            args.peak_cores
        );
    }
    let startup = duration::parse(&args.startup).context("--startup")?;
    let grace = duration::parse(&args.failover_grace).context("--failover-grace")?;
    let failures = args
        .fail
        .iter()
        .map(|f| Failure::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    let (pools, workloads) = read(&args.files)?;
    let workload = choose_workload(&pools, &workloads, args.workload.as_deref())?;
    if let Some(f) = failures
        .iter()
        .filter_map(Failure::pool)
        .find(|f| !pools.iter().any(|p| p.name == *f))
    {
        bail!(
            "--fail names unknown pool {f:?} (pools in the files: {})",
            names(&pools)
        );
    }
    let spec = &workload.spec;
    if spec.replicas.min > spec.replicas.max {
        bail!(
            "MultiCloudWorkload {:?}: replicas.min must not exceed replicas.max",
            workload.name
        );
    }
    let text = std::fs::read_to_string(&args.trace)
        .with_context(|| format!("reading {}", args.trace.display()))?;
    let trace = parse_trace(&args.trace, &text)?;
    if !trace.values.iter().any(|v| v.is_finite()) {
        bail!("{}: the trace has no numeric values", args.trace.display());
    }
    let demand = simulate::trace::scale(&trace.values, args.peak_cores);
    let inputs: Vec<PoolInput> = pools
        .iter()
        .map(|p| PoolInput {
            labels: p.labels.clone(),
            ..PoolInput::new(p.name.clone(), p.spec.clone())
        })
        .collect();
    let scenario = Scenario {
        workload: spec,
        pools: &inputs,
        demand: &demand,
        step: trace.step,
        startup,
        failures: &failures,
        failover_grace: grace,
    };
    let report = simulate::run(&scenario)
        .with_context(|| format!("MultiCloudWorkload {:?}", workload.name))?;
    let written = match &args.out {
        Some(dir) => {
            let cpu = ReplicaShape::of(&spec.template)?.cpu;
            simulate::output::write_all(dir, &report, cpu)?
        }
        None => Vec::new(),
    };
    if args.output == "json" {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
        return Ok(());
    }
    let peak_r = simulate::peak_replicas(spec, args.peak_cores)?;
    writeln!(
        out,
        "workload={} trace={} steps={} step={} span={} peak={} cores ({} replicas before redundancy) startup={} failures={}\n",
        workload.name,
        args.trace.display(),
        demand.len(),
        duration::format(trace.step),
        duration::format(trace.step * u32::try_from(demand.len()).unwrap_or(u32::MAX)),
        args.peak_cores,
        peak_r,
        duration::format(startup),
        if args.fail.is_empty() {
            "none".to_string()
        } else {
            args.fail.join(",")
        }
    )?;
    write!(out, "{}", report.table())?;
    if let Some(dir) = &args.out {
        writeln!(
            out,
            "\nwrote {} files to {}: one CSV per strategy and {}",
            written.len(),
            dir.display(),
            simulate::output::PLOT
        )?;
    }
    Ok(())
}
