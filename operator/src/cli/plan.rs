//! `skyfleet plan`: the operator's decision for manifests on disk, before anything is applied.
//!
//! It reads CloudPool and MultiCloudWorkload manifests exactly as users write them (several
//! files, multi-document YAML), runs the operator's own [`decide`](crate::decide::decide) once
//! on a world where every pool is Ready (but those given as unavailable) and runs what
//! `--current` says, and prints the plan as a table or JSON.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::de::DeserializeOwned;

use crate::api::cloud_pool::CloudPoolSpec;
use crate::api::workload::MultiCloudWorkloadSpec;
use crate::placement::{self, PoolInput};

/// Arguments of `skyfleet plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Manifest files with CloudPools and MultiCloudWorkloads (multi-document YAML).
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Demand measured now, in CPU cores; the plan carries at least this × (1 +
    /// `scaling.burstHeadroomPercent` / 100), as the operator's would.
    #[arg(long, allow_negative_numbers = true)]
    pub demand: f64,
    /// The workload to plan, when the files hold several.
    #[arg(long)]
    pub workload: Option<String>,
    /// Replicas running now, e.g. `aws-us-east-1=3,gcp-us-central1=2`: plans moving away
    /// from it obey the churn budget and the saving rule.
    #[arg(long, value_delimiter = ',')]
    pub current: Vec<String>,
    /// Pools to treat as lost (not Ready), e.g. `azure-eastus`.
    #[arg(long, value_delimiter = ',')]
    pub unavailable: Vec<String>,
    /// Output format: table or json.
    #[arg(short = 'o', long = "output", default_value = "table", value_parser = ["table", "json"])]
    pub output: String,
}

/// A manifest that names an object of one kind.
pub(crate) struct Manifest<T> {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) spec: T,
}

/// Reads every CloudPool and MultiCloudWorkload in `files`; other kinds are skipped.
#[allow(clippy::type_complexity)]
pub(crate) fn read(
    files: &[PathBuf],
) -> anyhow::Result<(
    Vec<Manifest<CloudPoolSpec>>,
    Vec<Manifest<MultiCloudWorkloadSpec>>,
)> {
    let mut pools = Vec::new();
    let mut workloads = Vec::new();
    for file in files {
        let path = file.display();
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {path}"))?;
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)
            .with_context(|| format!("{path}: not valid YAML"))?;
        for (i, doc) in docs.into_iter().enumerate() {
            if doc.is_null() {
                continue;
            }
            let kind = doc.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
            let name = doc
                .pointer("/metadata/name")
                .and_then(|n| n.as_str())
                .map(str::to_string);
            let what = |kind: &str| match &name {
                Some(n) => format!("{path}: {kind} {n:?}"),
                None => format!("{path}: document {} ({kind})", i + 1),
            };
            match kind {
                "CloudPool" => pools.push(manifest(&doc, name.clone(), &what(kind))?),
                "MultiCloudWorkload" => workloads.push(manifest(&doc, name.clone(), &what(kind))?),
                _ => {}
            }
        }
    }
    Ok((pools, workloads))
}

fn manifest<T: DeserializeOwned>(
    doc: &serde_json::Value,
    name: Option<String>,
    what: &str,
) -> anyhow::Result<Manifest<T>> {
    let Some(name) = name else {
        bail!("{what}: metadata.name is missing");
    };
    let Some(spec) = doc.get("spec") else {
        bail!("{what}: spec is missing");
    };
    let spec: T = serde_path_to_error::deserialize(spec).map_err(|e| {
        let field = e.path().to_string();
        anyhow::anyhow!("{what}: spec.{field}: {}", e.into_inner())
    })?;
    let labels = doc
        .pointer("/metadata/labels")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default();
    Ok(Manifest { name, labels, spec })
}

/// The workload to act on: the one named, or the only one in the files; and at least one
/// CloudPool must be there.
pub(crate) fn choose_workload<'a>(
    pools: &[Manifest<CloudPoolSpec>],
    workloads: &'a [Manifest<MultiCloudWorkloadSpec>],
    name: Option<&str>,
) -> anyhow::Result<&'a Manifest<MultiCloudWorkloadSpec>> {
    let workload = match (name, workloads.len()) {
        (Some(name), _) => workloads.iter().find(|w| w.name == name).with_context(|| {
            format!(
                "no MultiCloudWorkload {name:?} in the files (found: {})",
                names(workloads)
            )
        })?,
        (None, 1) => &workloads[0],
        (None, 0) => bail!("the files hold no MultiCloudWorkload"),
        (None, _) => bail!(
            "the files hold several MultiCloudWorkloads ({}): choose one with --workload",
            names(workloads)
        ),
    };
    if pools.is_empty() {
        bail!("the files hold no CloudPool");
    }
    Ok(workload)
}

fn parse_current(items: &[String]) -> anyhow::Result<BTreeMap<String, u32>> {
    let mut out = BTreeMap::new();
    for item in items.iter().filter(|s| !s.is_empty()) {
        let Some((pool, n)) = item.split_once('=') else {
            bail!("--current {item:?}: expected POOL=REPLICAS, e.g. aws-us-east-1=3");
        };
        let n: u32 = n
            .trim()
            .parse()
            .with_context(|| format!("--current {item:?}: {n:?} is not a replica count"))?;
        out.insert(pool.trim().to_string(), n);
    }
    Ok(out)
}

/// Runs `skyfleet plan`, writing the plan to `out`.
pub fn run(args: Args, out: &mut dyn Write) -> anyhow::Result<()> {
    if !args.demand.is_finite() || args.demand < 0.0 {
        bail!(
            "--demand must be a non-negative number of CPU cores, got {}",
            args.demand
        );
    }
    let (pools, workloads) = read(&args.files)?;
    let workload = choose_workload(&pools, &workloads, args.workload.as_deref())?;
    let current = parse_current(&args.current)?;
    for name in current.keys().chain(&args.unavailable) {
        if !pools.iter().any(|p| &p.name == name) {
            bail!(
                "unknown pool {name:?} (pools in the files: {})",
                names(&pools)
            );
        }
    }
    let spec = &workload.spec;
    if spec.replicas.min > spec.replicas.max {
        bail!(
            "MultiCloudWorkload {:?}: replicas.min must not exceed replicas.max",
            workload.name
        );
    }
    let inputs: Vec<PoolInput> = pools
        .iter()
        .map(|p| {
            let lost = args.unavailable.contains(&p.name);
            PoolInput {
                labels: p.labels.clone(),
                available: !lost,
                unavailable_reason: lost.then(|| "unavailable (--unavailable)".to_string()),
                current: current.get(&p.name).copied().unwrap_or(0),
                ..PoolInput::new(p.name.clone(), p.spec.clone())
            }
        })
        .collect();
    let problem = placement::input::problem(spec, &inputs, args.demand)
        .with_context(|| format!("MultiCloudWorkload {:?}", workload.name))?;
    let (plan, planned_cores) = decide_once(spec, &inputs, args.demand)
        .with_context(|| format!("MultiCloudWorkload {:?}", workload.name))?;
    if args.output == "json" {
        serde_json::to_writer_pretty(&mut *out, &plan)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<24} {:<10} {:<16} {:>8} {:>10}  NOTE",
        "POOL", "PROVIDER", "REGION", "REPLICAS", "COST/H"
    )?;
    for ((row, input), option) in plan.pools.iter().zip(&inputs).zip(&problem.pools) {
        let note = option.ineligible_reason.as_deref().unwrap_or_default();
        writeln!(
            out,
            "{:<24} {:<10} {:<16} {:>8} {:>10}  {note}",
            row.name,
            input.spec.provider,
            input.spec.region,
            row.replicas,
            placement::explain::money(row.cost_per_hour)
        )?;
    }
    writeln!(
        out,
        "{:<52} {:>8} {:>10}",
        format!("TOTAL ({} required)", plan.required_replicas),
        plan.total_replicas,
        placement::explain::money(plan.total_cost_per_hour)
    )?;
    writeln!(
        out,
        "\nfeasible: {}",
        if plan.feasible { "yes" } else { "no" }
    )?;
    if let Some(reason) = &plan.reason {
        writeln!(out, "reason:   {reason}")?;
    }
    if let Some(left) = plan.surviving_spot_reclaim {
        writeln!(
            out,
            "spot:     survives a spot reclaim: {left} of {} required stay on on-demand pools{}",
            plan.required_replicas,
            if left >= plan.required_replicas {
                ""
            } else {
                " (too few)"
            }
        )?;
    }
    if !plan.tight.is_empty() {
        writeln!(out, "tight:    {}", plan.tight.join("; "))?;
    }
    writeln!(
        out,
        "demand:   {planned_cores:.3} cores planned for ({} measured × {:.2} burst headroom)",
        args.demand,
        spec.scaling.burst_factor()
    )?;
    writeln!(out, "why:      {}", plan.explanation)?;
    Ok(())
}

/// The operator's decision for `demand` cores now, with no history (so the plan is sized for
/// the demand given), on pools that run `current` and are Ready unless marked unavailable.
fn decide_once(
    spec: &MultiCloudWorkloadSpec,
    inputs: &[PoolInput],
    demand: f64,
) -> anyhow::Result<(placement::Plan, f64)> {
    use crate::decide::{self, Measured, Member, MemberDeployment, Memory, ObservedPool, World};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    let now = jiff::Timestamp::now();
    let long_ago = now
        .checked_sub(jiff::SignedDuration::from_hours(24))
        .unwrap_or(now);
    let pools = inputs
        .iter()
        .map(|p| {
            let (ok, reason) = if p.available {
                (true, decide::reason::pool::PROBED)
            } else {
                (false, "Unavailable")
            };
            let status = crate::api::cloud_pool::CloudPoolStatus {
                conditions: vec![Condition {
                    type_: crate::api::conditions::READY.to_string(),
                    status: if ok { "True" } else { "False" }.to_string(),
                    reason: reason.to_string(),
                    message: p.unavailable_reason.clone().unwrap_or_default(),
                    observed_generation: None,
                    last_transition_time: Time(long_ago),
                }],
                last_probe_time: Some(Time(long_ago)),
                ..Default::default()
            };
            ObservedPool {
                name: p.name.clone(),
                labels: p.labels.clone(),
                spec: p.spec.clone(),
                status: Some(status),
                used_by_others: p.used_by_others,
                age: std::time::Duration::from_secs(86_400),
                deleting: false,
                member: Member::Seen((p.current > 0).then_some(MemberDeployment {
                    replicas: p.current,
                    ready: p.current,
                    failure: None,
                })),
                room: None,
                ingress: None,
            }
        })
        .collect();
    let world = World {
        pools,
        measured: Measured {
            cores: Some(demand),
            partial: false,
        },
        namespace_labels: None,
        missing_dependencies: Vec::new(),
    };
    let memory = Memory::new(crate::decide::demand::DemandTracker::new(
        &spec.scaling.forecast,
        std::time::Duration::from_secs(60),
    ));
    let previous = Default::default();
    let workload = decide::Workload {
        spec,
        generation: None,
        previous: &previous,
    };
    let settings = decide::Settings {
        failover_grace: std::time::Duration::from_secs(30),
        sync_period: std::time::Duration::from_secs(15),
    };
    let d = decide::decide(&workload, &world, memory, &settings, now);
    let planned = d.demand_cores;
    d.plan
        .map(|p| (p, planned))
        .ok_or_else(|| anyhow::anyhow!("the spec cannot be planned"))
}

pub(crate) fn names<T>(items: &[Manifest<T>]) -> String {
    items
        .iter()
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
