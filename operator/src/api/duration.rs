//! Durations as users write them in manifests: `30s`, `5m`, `1h30m`, `7d`.
//!
//! Kubernetes has no duration type for CRDs, and Go's syntax has no days, which users need
//! for history windows. The CEL rule below and [`parse`] accept exactly the same strings.

use std::time::Duration;

/// The regular expression every duration field must match (used by the CRD's CEL rules).
pub const PATTERN: &str = "^([0-9]+(s|m|h|d))+$";

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("duration {0:?} is empty")]
    Empty(String),
    #[error("duration {0:?} must be numbers with units s, m, h or d, such as 30m, 1h30m or 7d")]
    Malformed(String),
    #[error("duration {0:?} is too long")]
    Overflow(String),
}

/// Parses a duration such as `1h30m` or `7d`.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty(text.to_string()));
    }
    let malformed = || DurationError::Malformed(text.to_string());
    let overflow = || DurationError::Overflow(text.to_string());
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for ch in text.chars() {
        if let Some(d) = ch.to_digit(10) {
            let n = number.unwrap_or(0);
            number = Some(
                n.checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(d)))
                    .ok_or_else(overflow)?,
            );
            continue;
        }
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => return Err(malformed()),
        };
        let n = number.take().ok_or_else(malformed)?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(overflow)?;
    }
    if number.is_some() {
        return Err(malformed());
    }
    Ok(Duration::from_secs(total))
}

/// Formats a duration the way users write them (`1h30m`, `7d`), for status and reports.
pub fn format(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, suffix) in [(86_400, 'd'), (3_600, 'h'), (60, 'm'), (1, 's')] {
        if secs >= unit {
            out.push_str(&format!("{}{}", secs / unit, suffix));
            secs %= unit;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_users_write() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(604_800)));
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for bad in ["", "5", "m", "5 m", "1.5h", "-5m", "5min", "1w", "h1"] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(matches!(
            parse("99999999999999999999d"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn the_cel_pattern_and_the_parser_agree() {
        let cel = kube::core::cel::Validator::new();
        let schema = serde_json::json!({
            "type": "string",
            "x-kubernetes-validations": [{"rule": format!("self.matches('{PATTERN}')"), "message": "bad"}]
        });
        for text in ["30s", "1h30m", "7d", "", "5", "1.5h", "5min", "-1m"] {
            let by_cel = cel
                .validate(&schema, &serde_json::json!(text), None)
                .is_ok();
            assert_eq!(
                by_cel,
                parse(text).is_ok(),
                "CEL and parser disagree on {text:?}"
            );
        }
    }

    #[test]
    fn formats_round_trip() {
        for text in ["30s", "5m", "1h30m", "7d", "1d2h3m4s"] {
            let d = parse(text).unwrap();
            assert_eq!(format(d), text);
        }
    }
}
