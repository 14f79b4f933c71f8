//! Kubernetes quantities (`500m`, `2`, `1.5Gi`) as plain numbers for the decision code.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Why a quantity could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0:?} is not a Kubernetes quantity (such as 500m, 2, 512Mi or 1.5Gi)")]
pub struct QuantityError(pub String);

/// Parses a quantity into its value in base units (cores for CPU, bytes for memory).
pub fn to_f64(q: &Quantity) -> Result<f64, QuantityError> {
    parse(&q.0)
}

/// Parses a quantity string into its value in base units.
pub fn parse(text: &str) -> Result<f64, QuantityError> {
    let err = || QuantityError(text.to_string());
    let t = text.trim();
    let (number, factor) = split_suffix(t).ok_or_else(err)?;
    if number.is_empty() || number == "+" || number == "-" || number == "." {
        return Err(err());
    }
    let valid = number
        .trim_start_matches(['+', '-'])
        .chars()
        .all(|c| c.is_ascii_digit() || c == '.');
    if !valid {
        return Err(err());
    }
    let value: f64 = number.parse().map_err(|_| err())?;
    let out = value * factor;
    if out.is_finite() { Ok(out) } else { Err(err()) }
}

fn split_suffix(t: &str) -> Option<(&str, f64)> {
    const BINARY: [(&str, f64); 6] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
    ];
    for (s, f) in BINARY {
        if let Some(n) = t.strip_suffix(s) {
            return Some((n, f));
        }
    }
    // Decimal exponent form: 1e3, 2E-3.
    if let Some(pos) = t.find(['e', 'E']) {
        let (n, e) = t.split_at(pos);
        let exp: i32 = e[1..].parse().ok()?;
        return Some((n, 10f64.powi(exp)));
    }
    const DECIMAL: [(&str, f64); 8] = [
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
    ];
    for (s, f) in DECIMAL {
        if let Some(n) = t.strip_suffix(s) {
            return Some((n, f));
        }
    }
    Some((t, 1.0))
}

/// Bytes in one GiB, the unit memory prices are quoted in.
pub const GIB: f64 = 1_073_741_824.0;

/// Formats cores the way `kubectl` shows CPU (`250m`, `2`, `3500m`).
pub fn format_cores(cores: f64) -> String {
    let milli = (cores * 1000.0).round() as i64;
    if milli % 1000 == 0 {
        format!("{}", milli / 1000)
    } else {
        format!("{milli}m")
    }
}

/// Formats bytes as a binary quantity (`512Mi`, `4Gi`) when exact, otherwise in Ki.
pub fn format_bytes(bytes: f64) -> String {
    let b = bytes.round() as i64;
    for (suffix, unit) in [("Gi", 1_i64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if b != 0 && b % unit == 0 {
            return format!("{}{}", b / unit, suffix);
        }
    }
    b.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_and_memory() {
        assert_eq!(parse("500m").unwrap(), 0.5);
        assert_eq!(parse("2").unwrap(), 2.0);
        assert_eq!(parse("1.5").unwrap(), 1.5);
        assert_eq!(parse("512Mi").unwrap(), 512.0 * 1_048_576.0);
        assert_eq!(parse("1Gi").unwrap(), GIB);
        assert_eq!(parse("1k").unwrap(), 1000.0);
        assert_eq!(parse("1e3").unwrap(), 1000.0);
    }

    #[test]
    fn refuses_garbage() {
        for bad in ["", "abc", "1x", "--1", "1.2.3Gi", "Gi", "."] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn formats_like_kubectl() {
        assert_eq!(format_cores(0.25), "250m");
        assert_eq!(format_cores(2.0), "2");
        assert_eq!(format_bytes(4.0 * GIB), "4Gi");
        assert_eq!(format_bytes(512.0 * 1_048_576.0), "512Mi");
    }
}
