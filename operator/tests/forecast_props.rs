//! Property tests of the forecast engine: what must hold for any input.

use proptest::prelude::*;
use skyfleet::forecast::{ForecastConfig, Forecaster, ModelChoice, forecast};

const CHOICES: [ModelChoice; 6] = [
    ModelChoice::Auto,
    ModelChoice::HoltWinters,
    ModelChoice::Autoregressive,
    ModelChoice::SeasonalNaive,
    ModelChoice::LastValue,
    ModelChoice::None,
];

fn config(model: ModelChoice, season_len: usize, horizon: usize, window: usize) -> ForecastConfig {
    ForecastConfig {
        model,
        season_len,
        horizon,
        window,
        ..ForecastConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any finite history, any model: a finite forecast with upper ≥ nothing absurd and a
    /// peak that is the maximum of the upper path. The operator sizes replicas from it, so
    /// a NaN here would become a nonsense replica count.
    #[test]
    fn finite_input_gives_finite_output(
        values in prop::collection::vec(-1e6f64..1e6, 1..200),
        season in 0usize..30,
        horizon in 1usize..8,
        choice in 0usize..CHOICES.len(),
    ) {
        let cfg = config(CHOICES[choice], season, horizon, 150);
        let f = forecast(&values, &cfg).unwrap();
        prop_assert_eq!(f.mean.len(), horizon);
        prop_assert_eq!(f.upper.len(), horizon);
        prop_assert!(f.mean.iter().chain(&f.upper).all(|v| v.is_finite()), "{:?}", f);
        let peak = f.upper.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        prop_assert_eq!(f.peak_upper, peak);
    }

    /// The incremental path stays finite too, even with missing samples mixed in.
    #[test]
    fn incremental_with_gaps_stays_finite(
        values in prop::collection::vec(prop::option::weighted(0.9, -1e3f64..1e3), 1..300),
        season in 2usize..20,
    ) {
        let mut f = Forecaster::new(config(ModelChoice::Auto, season, 3, 100)).unwrap();
        for v in &values {
            f.observe(v.unwrap_or(f64::NAN));
            if let Ok(fc) = f.forecast(3, 0.95) {
                prop_assert!(fc.mean.iter().chain(&fc.upper).all(|v| v.is_finite()), "{:?}", fc);
            }
        }
    }

    /// A series that repeats exactly each season is forecast (almost) exactly, by `Auto`
    /// and by each seasonal model.
    #[test]
    fn pure_seasonal_signal_is_forecast_almost_exactly(
        profile in prop::collection::vec(0.0f64..100.0, 4..24),
        base in -50.0f64..500.0,
        seasons in 3usize..6,
        horizon in 1usize..10,
        choice in prop::sample::select(vec![
            ModelChoice::Auto,
            ModelChoice::SeasonalNaive,
            ModelChoice::HoltWinters,
            ModelChoice::Autoregressive,
        ]),
    ) {
        let s = profile.len();
        let n = s * seasons + 1;
        let at = |t: usize| base + profile[t % s];
        let y: Vec<f64> = (0..n).map(at).collect();
        let f = forecast(&y, &config(choice, s, horizon, n)).unwrap();
        let scale = 1.0 + base.abs() + 100.0;
        for (k, m) in f.mean.iter().enumerate() {
            let truth = at(n + k);
            prop_assert!((m - truth).abs() <= 1e-3 * scale,
                "{:?} step {}: {} vs {} ({:?})", choice, k + 1, m, truth, f.model);
        }
    }

    /// A constant series forecasts the constant, with no spread: nothing to provision for
    /// beyond what is used now.
    #[test]
    fn constant_series_forecasts_the_constant(
        c in -1e6f64..1e6,
        n in 1usize..200,
        season in 0usize..30,
        choice in 0usize..CHOICES.len(),
    ) {
        let y = vec![c; n];
        let f = forecast(&y, &config(CHOICES[choice], season, 4, 150)).unwrap();
        let tol = 1e-9 * (1.0 + c.abs());
        for v in f.mean.iter().chain(&f.upper) {
            prop_assert!((v - c).abs() <= tol, "{} vs {} ({:?})", v, c, f);
        }
    }
}
