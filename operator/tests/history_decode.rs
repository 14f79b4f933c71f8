//! Stored demand history sits in the tenant's namespace: whatever it says, decoding never
//! panics, and what it allocates is bounded by the capacity the spec allows, not by the text.

use std::time::Duration;

use proptest::prelude::*;
use skyfleet::api::workload::ForecastSpec;
use skyfleet::decide::demand::DemandTracker;
use skyfleet::decide::history::{DemandHistory, HistoryError, MAX_ENCODED_BYTES};

const NOW: i64 = 1_700_000_000;

/// Decodes, then records twice as the operator would; checks every bound on the way.
fn decode_and_resume(text: &str, step: i64, capacity: usize, now: Option<i64>) {
    let Ok(mut h) = DemandHistory::decode(text, step, capacity, now) else {
        return;
    };
    assert_eq!(h.step_secs, step);
    assert!(
        h.finished_steps() <= capacity.max(1),
        "{} > {capacity}",
        h.finished_steps()
    );
    assert!(
        (0..h.finished_steps())
            .map(|i| h.value(i))
            .all(|v| v.is_nan() || (v >= 0.0 && v.is_finite()))
    );
    let at = now.unwrap_or(NOW);
    h.record(at, 1.0);
    h.record(at + step, 2.0);
    h.record(at + 2 * step, 3.0);
    assert!(h.finished_steps() <= capacity.max(1));
    assert!(h.series().len() <= capacity.max(1) + 1);
    // What it writes back is readable and no larger than the limit.
    let again = h.encode();
    assert!(again.len() <= MAX_ENCODED_BYTES);
    assert!(DemandHistory::decode(&again, step, capacity, Some(at + 2 * step)).is_ok());
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[0-9]{1,12}",
        "-[0-9]{1,5}",
        "[0-9]{18,25}",
        "[a-z.eE+-]{1,4}",
    ]
}

fn list() -> impl Strategy<Value = String> {
    prop::collection::vec(field(), 0..60).prop_map(|v| v.join(","))
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (0i64..4_000_000_000).prop_map(|n| n.to_string()),
        (NOW - 100_000..NOW + 100_000).prop_map(|n| n.to_string()),
        Just("0".to_string()),
        Just("-1".to_string()),
        "[0-9]{19,30}",
        "[a-z]{0,3}",
    ]
}

/// Texts shaped like the stored form, with hostile numbers in every slot.
fn structured() -> impl Strategy<Value = String> {
    let step = prop_oneof![Just("60".to_string()), Just("5".to_string()), number()];
    prop_oneof![
        (step.clone(), number(), list()).prop_map(|(s, t, v)| format!("v1 {s} {t} {v}")),
        (step, number(), number(), list(), list())
            .prop_map(|(s, t, k, a, b)| format!("v2 {s} {t} {k} {a};{b}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>(), capacity in 0usize..200) {
        decode_and_resume(&text, 60, capacity, Some(NOW));
        decode_and_resume(&text, 60, capacity, None);
    }

    #[test]
    fn hostile_structured_text_is_bounded(
        text in structured(),
        capacity in 1usize..500,
        step in prop_oneof![Just(5i64), Just(60)],
        with_now in any::<bool>(),
    ) {
        decode_and_resume(&text, step, capacity, with_now.then_some(NOW));
    }

    #[test]
    fn the_tracker_is_bounded_by_the_spec(text in structured(), days in 1u32..5) {
        let spec = ForecastSpec {
            history: format!("{days}d"),
            ..Default::default()
        };
        let step = Duration::from_secs(60);
        if let Ok(t) = DemandTracker::decode_at(&text, &spec, step, NOW) {
            let encoded = t.encode();
            let back = DemandHistory::decode(&encoded, 60, usize::MAX, None).unwrap();
            prop_assert!(back.finished_steps() <= days as usize * 1440 + 1);
        }
    }
}

#[test]
fn a_mebibyte_is_refused_before_it_is_parsed() {
    let text = format!("v1 60 {NOW} {}", "1,".repeat(512 * 1024));
    assert!(text.len() >= 1024 * 1024);
    assert_eq!(
        DemandHistory::decode(&text, 60, 100, Some(NOW)),
        Err(HistoryError::TooLarge(text.len()))
    );
}

#[test]
fn the_largest_accepted_text_allocates_no_more_than_the_capacity() {
    // Just under the byte limit: a hundred thousand values, or a compaction factor that
    // would stand for billions of steps.
    let many = "1,".repeat((MAX_ENCODED_BYTES - 100) / 2);
    let v1 = format!(
        "v1 60 {} {}",
        NOW - 60 * 200_000,
        many.trim_end_matches(',')
    );
    let v2 = format!(
        "v2 60 {} 100 {}0;5",
        NOW - 60 * 200_000,
        "7,".repeat((MAX_ENCODED_BYTES - 100) / 2 - 1)
    );
    for text in [v1, v2] {
        assert!(text.len() <= MAX_ENCODED_BYTES);
        let h = DemandHistory::decode(&text, 60, 1_000, None).unwrap();
        assert_eq!(h.finished_steps(), 1_000);
        assert!(h.held_bytes() <= 1_000 * 2, "{} bytes", h.held_bytes());
    }
    // A factor larger than the capacity is not a history this operator wrote.
    assert!(DemandHistory::decode("v2 60 0 100000 1;2", 60, 1_000, None).is_err());
}

#[test]
fn a_refused_history_says_why() {
    let spec = ForecastSpec::default();
    let e = DemandTracker::decode_at("v1 30 0 1", &spec, Duration::from_secs(60), NOW)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        e.as_deref(),
        Some("stored demand history has a step of 30s, not the 60s the operator records at")
    );
    let e = DemandTracker::decode_at(
        &format!("v1 60 {} 1,2,3", NOW + 86_400),
        &spec,
        Duration::from_secs(60),
        NOW,
    )
    .err();
    assert!(
        matches!(e, Some(HistoryError::FromTheFuture { .. })),
        "{e:?}"
    );
}
