//! skyfleet places one workload across clusters in several clouds at the lowest cost that
//! still survives the loss of a cloud, sized ahead of demand from a forecast.
//!
//! The decision is pure (`forecast` → `placement`) and has three callers: the operator
//! (`controller`), `skyfleet plan` and `skyfleet simulate`. See DESIGN.md for the picture.

pub mod api;
pub mod cli;
pub mod controller;
pub mod decide;
pub mod forecast;
pub mod placement;
pub mod simulate;
