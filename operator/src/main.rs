//! The `skyfleet` command: the operator, and the tools that run its decision offline.

use clap::{Parser, Subcommand};
use skyfleet::cli;

/// skyfleet places one workload across clusters in several clouds at the lowest cost that
/// still survives losing a cloud, sized ahead of demand.
#[derive(Debug, Parser)]
#[command(name = "skyfleet", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions as YAML.
    Crd(cli::crd::Args),
    /// Evaluate the forecast models on a demand trace (rolling origin, WAPE).
    ForecastEval(cli::forecast_eval::Args),
    /// Run the operator against a management cluster.
    Operator(cli::operator::Args),
    /// Show the placement decision for manifests on disk, without applying anything.
    Plan(cli::plan::Args),
    /// Replay a demand trace through the operator's decision beside baselines.
    Simulate(cli::simulate::Args),
}

fn main() -> std::process::ExitCode {
    let args = Cli::parse();
    // Not locked for the whole run: the operator logs from worker threads.
    let mut stdout = std::io::stdout();
    let result = match args.command {
        Command::Crd(a) => cli::crd::run(a, &mut stdout),
        Command::ForecastEval(a) => cli::forecast_eval::run(a, &mut stdout),
        Command::Plan(a) => cli::plan::run(a, &mut stdout),
        Command::Simulate(a) => cli::simulate::run(a, &mut stdout),
        Command::Operator(a) => cli::operator::run(a, &mut stdout),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
