//! How long the forecast of the worst workload the CRD bounds allow takes, cold: 90 days of
//! history at `--history-step` (default 1m; the e2e suites use 5s), a 24 h horizon and a
//! 14-day season. `cargo run --release -p skyfleet --example worst_forecast -- STEP [HISTORY
//! SEASON HORIZON]`, all in seconds.
use std::time::Instant;

use skyfleet::forecast::{ForecastConfig, Forecaster, ModelChoice};

fn main() {
    let step: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(60);
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let window = arg(2, 90 * 86_400) / step;
    let season = arg(3, 14 * 86_400) / step;
    let horizon = arg(4, 86_400) / step;
    let config = ForecastConfig {
        model: ModelChoice::Auto,
        season_len: season,
        horizon,
        window,
        quantile: 0.95,
        ..ForecastConfig::default()
    };
    let mut seed: u64 = 7;
    let y: Vec<f64> = (0..window)
        .map(|t| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = ((seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5;
            let day = (t as f64 * std::f64::consts::TAU * step as f64 / 86_400.0).sin();
            40.0 + 15.0 * day + 4.0 * noise
        })
        .collect();
    let t = Instant::now();
    let mut f = match Forecaster::new(config) {
        Ok(f) => f,
        Err(e) => return eprintln!("config refused: {e}"),
    };
    f.extend_from_slice(&y);
    let fitted = t.elapsed();
    let fc = f.forecast(horizon, 0.95);
    println!(
        "step {step}s window {window} fit+feed {:?} forecast {:?} model {:?}",
        fitted,
        t.elapsed() - fitted,
        fc.map(|f| f.model)
    );
}
