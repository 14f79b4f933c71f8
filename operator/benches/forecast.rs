//! How long a forecast takes: the operator forecasts every workload every sync period,
//! so both a cold start (fit from a persisted 7-day history) and the steady state (one new
//! sample, then a forecast) must be cheap.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use skyfleet::forecast::{ForecastConfig, Forecaster, ModelChoice};

/// Seven days of 5-minute samples: a daily cycle, a slow trend and deterministic noise.
fn week() -> Vec<f64> {
    let mut seed: u64 = 7;
    (0..2016 + 4032)
        .map(|t| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = ((seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5;
            let day = (t as f64 * std::f64::consts::TAU / 288.0).sin();
            40.0 + 0.001 * t as f64 + 15.0 * day + 4.0 * noise
        })
        .collect()
}

fn config(model: ModelChoice) -> ForecastConfig {
    ForecastConfig {
        model,
        season_len: 288,
        horizon: 12,
        window: 2016,
        quantile: 0.95,
        ..ForecastConfig::default()
    }
}

fn bench(c: &mut Criterion) {
    let y = week();
    let window = &y[..2016];
    for (name, model) in [
        ("auto", ModelChoice::Auto),
        ("holt_winters", ModelChoice::HoltWinters),
        ("autoregressive", ModelChoice::Autoregressive),
    ] {
        c.bench_function(&format!("cold_fit_and_forecast_2016/{name}"), |b| {
            b.iter(|| {
                let mut f = Forecaster::new(config(model)).unwrap();
                f.extend_from_slice(black_box(window));
                black_box(f.forecast(12, 0.95).unwrap())
            })
        });
    }
    // Steady state: observe one sample and forecast, refits on schedule amortised in.
    let mut f = Forecaster::new(config(ModelChoice::Auto)).unwrap();
    f.extend_from_slice(window);
    let mut i = 2016;
    c.bench_function("observe_and_forecast_2016/auto", |b| {
        b.iter(|| {
            f.observe(black_box(y[i]));
            i = if i + 1 == y.len() { 2016 } else { i + 1 };
            black_box(f.forecast(12, 0.95).unwrap())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
