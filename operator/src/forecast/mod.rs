//! Demand forecasting: pure functions over plain series, no I/O.
