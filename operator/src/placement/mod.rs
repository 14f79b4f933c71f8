//! Sizing and placement: pure functions over plain data, no I/O.
