//! Pool failures given on the command line: `POOL@OFFSET+DURATION`, e.g.
//! `aws-us-east-1@6h+1h` (offsets and durations as 30s, 5m, 1h, 1d), or `Spot@6h+1h` for a
//! spot reclaim: every pool with `pricing.capacityType: Spot` lost at once. `Spot` is
//! capitalised as in the manifest, so it cannot be a CloudPool's (lowercase) name.

use crate::api::duration;

/// What `--fail` takes down for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One CloudPool, by name.
    Pool(String),
    /// Every Spot pool at once (a reclaim wave).
    Spot,
}

/// The word that names every Spot pool in `--fail`.
pub const SPOT: &str = "Spot";

/// Pools lost from `start` for `duration` seconds after the trace begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The CloudPool, or every Spot pool.
    pub target: Target,
    /// Seconds after the start of the trace.
    pub start: u64,
    /// Seconds it stays lost.
    pub duration: u64,
}

/// Why a `--fail` argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailureError {
    #[error(
        "--fail {0:?}: expected POOL@OFFSET+DURATION, e.g. aws-us-east-1@6h+1h, or Spot@OFFSET+DURATION for every Spot pool (durations like 30s, 5m, 1h, 1d)"
    )]
    Syntax(String),
    #[error("--fail {arg:?}: {source}")]
    Duration {
        arg: String,
        source: duration::DurationError,
    },
    #[error("--fail {arg:?}: the duration must be longer than zero")]
    Empty { arg: String },
}

impl Failure {
    /// Parses `POOL@OFFSET+DURATION`.
    pub fn parse(arg: &str) -> Result<Self, FailureError> {
        let syntax = || FailureError::Syntax(arg.to_string());
        let (pool, when) = arg.split_once('@').ok_or_else(syntax)?;
        let (offset, length) = when.split_once('+').ok_or_else(syntax)?;
        let pool = pool.trim();
        if pool.is_empty() || offset.is_empty() || length.is_empty() {
            return Err(syntax());
        }
        let parse = |s: &str| {
            duration::parse(s.trim()).map_err(|source| FailureError::Duration {
                arg: arg.to_string(),
                source,
            })
        };
        let start = parse(offset)?.as_secs();
        let duration = parse(length)?.as_secs();
        if duration == 0 {
            return Err(FailureError::Empty {
                arg: arg.to_string(),
            });
        }
        let target = if pool == SPOT {
            Target::Spot
        } else {
            Target::Pool(pool.to_string())
        };
        Ok(Self {
            target,
            start,
            duration,
        })
    }

    /// Whether the failure takes down the pool `name` (Spot or not).
    pub fn hits(&self, name: &str, spot: bool) -> bool {
        match &self.target {
            Target::Pool(p) => p == name,
            Target::Spot => spot,
        }
    }

    /// The pool named, when the failure names one.
    pub fn pool(&self) -> Option<&str> {
        match &self.target {
            Target::Pool(p) => Some(p),
            Target::Spot => None,
        }
    }

    /// Seconds the pool has been down at `t`, when it is down then.
    pub fn down_for(&self, t: u64) -> Option<u64> {
        (t >= self.start && t < self.start + self.duration).then(|| t - self.start)
    }
}

/// Seconds `pool` (Spot when `spot`) has been down at `t` under any of `failures` (the
/// longest), if down.
pub fn down_for(failures: &[Failure], pool: &str, spot: bool, t: u64) -> Option<u64> {
    failures
        .iter()
        .filter(|f| f.hits(pool, spot))
        .filter_map(|f| f.down_for(t))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pool_offset_and_duration() {
        let f = Failure::parse("aws-us-east-1@6h+1h").unwrap();
        assert_eq!(
            f,
            Failure {
                target: Target::Pool("aws-us-east-1".into()),
                start: 6 * 3600,
                duration: 3600
            }
        );
        assert_eq!(Failure::parse("p@1d+30s").unwrap().start, 86_400);
    }

    #[test]
    fn bad_syntax_is_refused_with_the_expected_form() {
        for bad in ["aws", "aws@6h", "@6h+1h", "aws@+1h", "aws@6h+"] {
            let e = Failure::parse(bad).unwrap_err().to_string();
            assert!(e.contains("POOL@OFFSET+DURATION"), "{bad}: {e}");
        }
        let e = Failure::parse("aws@6x+1h").unwrap_err().to_string();
        assert!(e.contains("units s, m, h or d"), "{e}");
        assert!(Failure::parse("aws@6h+0s").is_err());
    }

    #[test]
    fn the_failure_window_is_half_open() {
        let f = [Failure::parse("a@10m+5m").unwrap()];
        assert_eq!(down_for(&f, "a", false, 599), None);
        assert_eq!(down_for(&f, "a", false, 600), Some(0));
        assert_eq!(down_for(&f, "a", false, 899), Some(299));
        assert_eq!(down_for(&f, "a", false, 900), None);
        assert_eq!(down_for(&f, "b", true, 700), None);
    }

    #[test]
    fn spot_takes_down_every_spot_pool_and_nothing_else() {
        let f = [Failure::parse("Spot@1h+30m").unwrap()];
        assert_eq!(f[0].target, Target::Spot);
        assert_eq!(f[0].pool(), None);
        assert_eq!(down_for(&f, "aws-spot", true, 3600 + 60), Some(60));
        assert_eq!(down_for(&f, "gcp-spot", true, 3600), Some(0));
        assert_eq!(down_for(&f, "aws-us-east-1", false, 3600 + 60), None);
        // A lowercase pool named "spot" is a pool like any other.
        let f = [Failure::parse("spot@1h+30m").unwrap()];
        assert_eq!(f[0].pool(), Some("spot"));
        assert_eq!(down_for(&f, "aws-spot", true, 3600), None);
    }
}
