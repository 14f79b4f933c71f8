//! The pure decision: what the operator, `skyfleet plan` and `skyfleet simulate` all call to
//! turn a workload's spec, the observed world and the workload's memory into what to do.
//! No I/O, no locks, no clock of its own.
//!
//! - [`history`]: the demand history and its compact text codec.
//! - [`demand`]: one workload's history and forecaster, and scale-down stabilisation.

pub mod demand;
pub mod history;
