//! What a workload's decisions remember from one to the next, and the part of it that is
//! stored beside the demand history so that a restart or a leader change loses nothing: the
//! scale-down stabiliser (no early scale-down after a restart), the failover memory (which
//! pools are lost, and since when: one Failover event per loss), and the replicas last seen
//! in each pool (where the workload may still have Deployments, for the finalizer).
//!
//! The stored form lives in the tenant's namespace, so it is untrusted: [`Memory::restore`]
//! refuses what is too large and drops what is implausible.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::demand::{DemandTracker, Stabilizer};
use super::refusal::Holds;
use super::startup::StartupTracker;

/// Most bytes of stored memory read back; more is refused, not parsed.
pub const MAX_STORED_BYTES: usize = 64 * 1024;
/// Most pools remembered; a fleet has far fewer.
pub const MAX_POOLS: usize = 1024;

/// One workload's memory.
#[derive(Debug)]
pub struct Memory {
    /// Demand history and forecaster.
    pub demand: DemandTracker,
    /// Recent demand estimates, for scale-down stabilisation.
    pub stabilizer: Stabilizer,
    /// How long new replicas take to become Ready, for the lead time.
    pub startup: StartupTracker,
    /// Pools lost past the failover grace while the workload had replicas there, with the
    /// unix time the loss was first acted on.
    pub lost: BTreeMap<String, i64>,
    /// Replicas last seen in each pool's Deployment while its member answered; a pool is
    /// here from the first apply until its Deployment is gone.
    pub known: BTreeMap<String, u32>,
    /// Pools whose member refused the pods, held at what they have Ready for a while.
    pub refusals: Holds,
    /// The cores one replica carries at the utilisation target, as the last decision saw
    /// it (`None`: not known). A rise of the stabiliser's peak is worth a write only when it
    /// implies another replica. Never stored.
    pub replica_cores: Option<f64>,
    /// Why the stored history or memory was refused when this process read it (shown as
    /// `HistoryValid=False` while this process runs); never stored itself.
    pub refused: Option<String>,
    /// What was last stored, to tell when storing again is worth it.
    stored: Option<Fingerprint>,
}

/// What matters of the stored part for deciding whether to write it again.
#[derive(Debug, Clone, PartialEq)]
struct Fingerprint {
    lost: Vec<String>,
    known: Vec<(String, u32)>,
    refusals: Vec<(String, i64, u32)>,
    peak: f64,
    latest: f64,
    startup: StartupTracker,
}

/// Why stored memory was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    #[error("stored decision memory is {0} bytes, more than the {MAX_STORED_BYTES} allowed")]
    TooLarge(usize),
    #[error("stored decision memory does not parse: {0}")]
    Parse(String),
}

/// The stored form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    #[serde(default)]
    stabilizer: Vec<(i64, f64)>,
    #[serde(default)]
    lost: BTreeMap<String, i64>,
    #[serde(default)]
    known: BTreeMap<String, u32>,
    #[serde(default)]
    startup: StartupTracker,
    #[serde(default)]
    refusals: Holds,
}

impl Memory {
    /// Fresh memory around `demand`.
    pub fn new(demand: DemandTracker) -> Self {
        Self {
            demand,
            stabilizer: Stabilizer::default(),
            startup: StartupTracker::default(),
            lost: BTreeMap::new(),
            known: BTreeMap::new(),
            refusals: Holds::default(),
            replica_cores: None,
            refused: None,
            stored: None,
        }
    }

    fn fingerprint(&self) -> Fingerprint {
        Fingerprint {
            lost: self.lost.keys().cloned().collect(),
            known: self.known.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            refusals: self.refusals.fingerprint(),
            peak: self
                .stabilizer
                .entries()
                .map(|(_, c)| c)
                .fold(0.0, f64::max),
            latest: self.stabilizer.latest().unwrap_or(0.0),
            startup: self.startup,
        }
    }

    /// Whether anything is worth storing: the decision memory ([`memory_due`](Self::memory_due))
    /// or the history ([`DemandTracker::persist_due`]: at most every
    /// [`PERSIST_EVERY_STEPS`](super::demand::PERSIST_EVERY_STEPS) steps). They are stored
    /// apart: the memory is small and changes with decisions, the history is large and only
    /// grows.
    pub fn needs_persist(&self) -> bool {
        self.demand.persist_due() || self.memory_due()
    }

    /// Whether the decision memory is worth writing: the failover memory, the pools in use or
    /// the startup changed, or the stabiliser holds more replicas than the latest estimate
    /// asks for and more than the stored peak implies, all at once.
    ///
    /// The peak is what a restart must not forget only while it holds replicas the estimate
    /// alone would release: while demand rises, the peak is the latest estimate, which a
    /// restarted operator measures again at once. So a rise is written when the estimate
    /// first falls a replica below it, and a fall, or a rise within the same replica count,
    /// is not written (the restored stabiliser holds the stored peak for a whole window from
    /// the restart, see [`Stabilizer::restore`]). Writing every rise wrote at nearly every
    /// decision of a rising curve.
    pub fn memory_due(&self) -> bool {
        let (before_acting, with_status) = self.due();
        before_acting || with_status
    }

    /// Whether the memory must be stored before the decision is acted on: the failover
    /// memory, the pools that may hold a Deployment, or the refusals changed. A restart
    /// between acting and storing would forget a Deployment it just created (the finalizer
    /// would leave it behind) or a loss it just acted on. The rest (the stabiliser's peak,
    /// the startup time) may wait for the status write that follows the action, and ride
    /// in it: one request instead of two.
    pub fn memory_due_before_acting(&self) -> bool {
        self.due().0
    }

    /// What of the memory changed since it was stored: (what must be stored before acting,
    /// what may wait for the status write).
    fn due(&self) -> (bool, bool) {
        let now = self.fingerprint();
        match &self.stored {
            None => (
                !now.lost.is_empty() || !now.known.is_empty() || !now.refusals.is_empty(),
                now.peak > 0.0 || now.startup != StartupTracker::default(),
            ),
            Some(was) => (
                was.lost != now.lost || was.known != now.known || was.refusals != now.refusals,
                (self.replicas_of(now.peak) > self.replicas_of(now.latest)
                    && self.replicas_of(now.peak) > self.replicas_of(was.peak))
                    || was.startup != now.startup,
            ),
        }
    }

    /// A peak in the units a restart cares about: the replicas it implies when the cores
    /// per replica are known, else the cores.
    fn replicas_of(&self, cores: f64) -> f64 {
        match self.replica_cores {
            Some(per) if per.is_finite() && per > 0.0 => (cores / per - 1e-9).ceil(),
            _ => cores,
        }
    }

    /// Notes that what [`encode`](Self::encode) and the history's encoding gave was stored.
    pub fn persisted(&mut self) {
        self.demand.persisted();
        self.memory_persisted();
    }

    /// Notes that what [`encode`](Self::encode) gave was stored.
    pub fn memory_persisted(&mut self) {
        self.stored = Some(self.fingerprint());
    }

    /// The part to store, as text.
    pub fn encode(&self) -> String {
        let stored = Stored {
            stabilizer: self.stabilizer.entries().collect(),
            lost: self.lost.clone(),
            known: self.known.clone(),
            startup: self.startup,
            refusals: self.refusals.clone(),
        };
        serde_json::to_string(&stored).unwrap_or_default()
    }

    /// Memory around `demand` with what [`encode`](Self::encode) stored, at unix time `now`
    /// (nothing from the future is believed). Stored text that is refused gives fresh memory
    /// around `demand`, and the reason.
    pub fn restore(demand: DemandTracker, text: &str, now: i64) -> (Self, Option<MemoryError>) {
        match Self::parse(text) {
            Ok(stored) => (Self::from_stored(demand, stored, now), None),
            Err(e) => (Self::new(demand), Some(e)),
        }
    }

    fn parse(text: &str) -> Result<Stored, MemoryError> {
        if text.len() > MAX_STORED_BYTES {
            return Err(MemoryError::TooLarge(text.len()));
        }
        serde_json::from_str(text).map_err(|e| MemoryError::Parse(e.to_string()))
    }

    fn from_stored(demand: DemandTracker, stored: Stored, now: i64) -> Self {
        let plausible_pool = |name: &String| !name.is_empty() && name.len() <= 253;
        let mut memory = Self {
            demand,
            stabilizer: Stabilizer::restore(stored.stabilizer, now),
            startup: StartupTracker::restore(stored.startup, now),
            lost: stored
                .lost
                .into_iter()
                .filter(|(p, at)| plausible_pool(p) && *at <= now)
                .take(MAX_POOLS)
                .collect(),
            known: stored
                .known
                .into_iter()
                .filter(|(p, _)| plausible_pool(p))
                .take(MAX_POOLS)
                .collect(),
            refusals: stored.refusals.restore(now, MAX_POOLS),
            replica_cores: None,
            refused: None,
            stored: None,
        };
        memory.stored = Some(memory.fingerprint());
        memory
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::workload::ForecastSpec;
    use std::time::Duration;

    fn tracker() -> DemandTracker {
        DemandTracker::new(&ForecastSpec::default(), Duration::from_secs(60))
    }

    #[test]
    fn the_stored_part_survives_a_restart() {
        let mut m = Memory::new(tracker());
        let window = Duration::from_secs(300);
        m.stabilizer.apply(100, 4.0, window);
        m.stabilizer.apply(110, 1.0, window);
        m.lost.insert("aws".into(), 90);
        m.known.insert("gcp".into(), 3);
        let refused = super::super::world::MemberDeployment {
            replicas: 3,
            ready: 1,
            failure: Some("FailedCreate: quota".into()),
        };
        m.refusals.observe("azure", Some(&refused), 100);
        m.startup.observe(60, 5, 2);
        m.startup.observe(100, 5, 5);
        m.startup.observe(110, 7, 5);
        let (back, error) = Memory::restore(tracker(), &m.encode(), 120);
        assert_eq!(error, None);
        assert_eq!(
            back.startup, m.startup,
            "the measured startup and the one being timed"
        );
        assert_eq!(back.stabilizer.planned(), m.stabilizer.planned());
        assert_eq!(back.lost, m.lost);
        assert_eq!(back.known, m.known);
        assert_eq!(
            back.refusals.fingerprint(),
            m.refusals.fingerprint(),
            "a refusal's hold"
        );
        // The restored stabiliser holds the peak for a whole window from the restart (the
        // original may have raised it after the store), and no longer.
        let mut s = back.stabilizer;
        assert_eq!(s.apply(130, 0.5, window), 4.0);
        assert_eq!(s.apply(120 + 299, 0.5, window), 4.0);
        assert_eq!(s.apply(120 + 300, 0.5, window), 0.5);
    }

    #[test]
    fn a_stabiliser_peak_is_stored_once_it_holds_a_replica_the_estimate_would_release() {
        let window = Duration::from_secs(300);
        let mut m = Memory::new(tracker());
        m.replica_cores = Some(0.7);
        m.demand.record(0, 1.0);
        m.stabilizer.apply(0, 1.0, window);
        assert!(m.needs_persist());
        m.persisted();
        // A rising estimate is the peak itself: a restart measures it again.
        for (i, cores) in [1.1, 1.4, 2.0, 3.0].into_iter().enumerate() {
            m.stabilizer.apply(10 * (i as i64 + 1), cores, window);
            assert!(!m.needs_persist(), "{cores} cores and rising");
        }
        // Falling within the peak's replica count (3.0 is 5 replicas of 0.7, 2.9 too).
        m.stabilizer.apply(50, 2.9, window);
        assert!(
            !m.needs_persist(),
            "the estimate still asks for the peak's replicas"
        );
        // Falling a replica below: the peak now holds a replica and is stored.
        m.stabilizer.apply(60, 2.7, window);
        assert!(
            m.needs_persist(),
            "the peak holds a fifth replica the estimate would drop"
        );
        m.persisted();
        m.stabilizer.apply(70, 1.0, window);
        assert!(!m.needs_persist(), "the same peak, stored already");
        // Without the size of a replica, a held rise is stored in cores.
        m.replica_cores = None;
        m.stabilizer.apply(80, 3.05, window);
        m.stabilizer.apply(90, 3.0, window);
        assert!(m.needs_persist());
    }

    #[test]
    fn appends_are_batched_and_a_decision_memory_change_is_persisted_at_once() {
        use super::super::demand::PERSIST_EVERY_STEPS;
        let mut m = Memory::new(tracker());
        m.demand.record(0, 1.0);
        assert!(
            m.needs_persist(),
            "a new workload's history is stored at once"
        );
        m.persisted();
        // Ten steps of pure appends, four measurements a step.
        let mut writes = 0;
        for i in 1..=40 {
            m.demand.record(i * 15, 1.0);
            if m.needs_persist() {
                writes += 1;
                m.persisted();
            }
        }
        let bound =
            10i64.div_euclid(PERSIST_EVERY_STEPS) + i64::from(10 % PERSIST_EVERY_STEPS != 0);
        assert!(i64::from(writes) <= bound, "{writes} writes in 10 steps");
        let window = Duration::from_secs(300);
        // Each change is stored at once; those that name where Deployments are or what was
        // lost and refused before the decision is acted on, the rest with the status write.
        let change = |m: &mut Memory, what: &str, before_acting: bool, f: &dyn Fn(&mut Memory)| {
            m.demand.record(600, 1.0);
            if m.needs_persist() {
                m.persisted();
            }
            f(m);
            assert!(m.needs_persist(), "{what} is stored at once");
            assert_eq!(m.memory_due_before_acting(), before_acting, "{what}");
            m.persisted();
            assert!(!m.needs_persist(), "{what}: stored once");
            assert!(!m.memory_due_before_acting(), "{what}: stored once");
        };
        change(&mut m, "a lost pool", true, &|m| {
            m.lost.insert("aws".into(), 600);
        });
        change(&mut m, "a pool in use", true, &|m| {
            m.known.insert("gcp".into(), 2);
        });
        change(
            &mut m,
            "a higher stabiliser peak that holds replicas",
            false,
            &|m| {
                m.stabilizer.apply(600, 7.0, window);
                m.stabilizer.apply(600, 1.0, window);
            },
        );
        change(&mut m, "a refusal", true, &|m| {
            let refused = super::super::world::MemberDeployment {
                replicas: 2,
                ready: 0,
                failure: Some("FailedCreate".into()),
            };
            m.refusals.observe("azure", Some(&refused), 600);
        });
        change(&mut m, "a startup being timed", false, &|m| {
            m.startup.observe(600, 5, 2);
        });
    }

    #[test]
    fn implausible_stored_memory_is_refused_or_dropped() {
        assert!(matches!(
            Memory::restore(tracker(), &"x".repeat(MAX_STORED_BYTES + 1), 0).1,
            Some(MemoryError::TooLarge(_))
        ));
        let (m, e) = Memory::restore(tracker(), "{not json", 0);
        assert!(matches!(e, Some(MemoryError::Parse(_))));
        assert!(m.lost.is_empty() && m.known.is_empty());
        let text = r#"{"stabilizer":[[50,2.0],[500,9.0],[60,-1.0]],"lost":{"aws":10,"future":999},"known":{"":3}}"#;
        let (m, e) = Memory::restore(tracker(), text, 100);
        assert_eq!(e, None);
        // The future and negative entries are dropped; the plausible peak is held from the
        // restore on.
        assert_eq!(m.stabilizer.entries().collect::<Vec<_>>(), vec![(100, 2.0)]);
        assert_eq!(m.lost.keys().collect::<Vec<_>>(), ["aws"]);
        assert!(m.known.is_empty());
    }
}
