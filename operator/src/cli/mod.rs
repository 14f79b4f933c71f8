//! The `skyfleet` subcommands. Each file holds one subcommand's arguments and its `run`,
//! so the binary's `main` only parses and dispatches.

pub mod crd;
pub mod forecast_eval;
pub mod operator;
pub mod plan;
pub mod simulate;
