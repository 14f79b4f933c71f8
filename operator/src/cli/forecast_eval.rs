//! Placeholder until this subcommand is built.

/// Arguments of the subcommand.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the subcommand, writing its report to `out`.
pub fn run(_args: Args, _out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
