//! Demand from a recorded trace: values scaled so the trace's maximum is the peak asked for.

/// Scales `values` so their maximum equals `peak_cores`. Missing values (NaN) take the last
/// known value (0 before the first), as a metrics gap leaves the last measurement standing.
pub fn scale(values: &[f64], peak_cores: f64) -> Vec<f64> {
    let max = values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let factor = if max > 0.0 { peak_cores / max } else { 0.0 };
    let mut last = 0.0;
    values
        .iter()
        .map(|&v| {
            if v.is_finite() {
                last = (v * factor).max(0.0);
            }
            last
        })
        .collect()
}

/// The highest demand over the next `ahead` steps including `i` (what an oracle provisions
/// for so that replicas started now are ready for everything until they are).
pub fn max_ahead(demand: &[f64], i: usize, ahead: usize) -> f64 {
    let end = (i + ahead + 1).min(demand.len());
    demand[i.min(end)..end].iter().copied().fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_maximum_becomes_the_peak_and_gaps_carry_the_last_value() {
        let d = scale(&[1.0, f64::NAN, 4.0, 2.0], 20.0);
        assert_eq!(d, vec![5.0, 5.0, 20.0, 10.0]);
        assert_eq!(scale(&[f64::NAN, 2.0], 4.0), vec![0.0, 4.0]);
    }

    #[test]
    fn the_oracle_looks_ahead_over_the_startup() {
        let d = [1.0, 3.0, 2.0, 5.0];
        assert_eq!(max_ahead(&d, 0, 0), 1.0);
        assert_eq!(max_ahead(&d, 0, 2), 3.0);
        assert_eq!(max_ahead(&d, 1, 2), 5.0);
        assert_eq!(max_ahead(&d, 3, 5), 5.0);
    }
}
