//! Wakes a workload when one of its member Deployments changes in what a decision reads of
//! its progress: how many replicas are Ready, whether the member refuses its pods, or that
//! it went away.
//!
//! Without it a workload whose replicas were starting had to be polled every few seconds
//! to see them get Ready (to report them, and to let make-before-break remove what they
//! replace); with a thousand workloads starting at once that poll filled the reconcile
//! queue and delayed the failovers and first placements behind it. The member watches
//! already see every change, so the change itself wakes the one workload it concerns; the
//! sync period stays the safety net for a wake that was dropped.
//!
//! Changes skyfleet makes itself (a Deployment created, its replicas or template changed)
//! wake nothing: the reconcile that made them knows them.

use std::collections::{HashMap, HashSet};

use kube::runtime::watcher;
use tokio::sync::broadcast;

use super::labels;
use super::watched_deployment::WatchedDeployment;

/// A workload by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkloadKey {
    /// The workload's namespace.
    pub namespace: String,
    /// The workload's name.
    pub name: String,
}

/// How many wakes may wait for the workload controller before the oldest are dropped
/// (bounded memory whatever the members do; a dropped wake waits for the sync period).
const PENDING_WAKES: usize = 4096;

/// Where every member's Deployment watch sends its wakes, and where the workload controller
/// takes them from.
#[derive(Debug, Clone)]
pub struct Wakes {
    sender: broadcast::Sender<WorkloadKey>,
}

impl Default for Wakes {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(PENDING_WAKES).0,
        }
    }
}

impl Wakes {
    /// The wakes sent from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<WorkloadKey> {
        self.sender.subscribe()
    }

    fn send(&self, key: WorkloadKey) {
        // No receiver (the CLI, or before the controller starts) is not an error.
        let _ = self.sender.send(key);
    }
}

/// What a decision reads of a Deployment's progress, beyond what skyfleet wrote into it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Progress {
    ready: i32,
    failure: Option<(String, String)>,
}

fn progress(d: &WatchedDeployment) -> Progress {
    let failure = d.replica_failure().map(|c| {
        (
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default(),
        )
    });
    Progress {
        ready: d.ready(),
        failure,
    }
}

/// The workload a member Deployment belongs to, from skyfleet's labels on it.
fn owner(d: &WatchedDeployment) -> Option<WorkloadKey> {
    let l = d.metadata.labels.as_ref()?;
    Some(WorkloadKey {
        namespace: l.get(labels::WORKLOAD_NAMESPACE)?.clone(),
        name: l.get(labels::WORKLOAD_NAME)?.clone(),
    })
}

/// Follows one member's Deployment watch and sends a wake for each change of progress.
/// Holds one small entry per skyfleet Deployment in the member.
#[derive(Debug)]
pub struct ProgressWatch {
    wakes: Wakes,
    last: HashMap<(String, String), (Progress, Option<WorkloadKey>)>,
    /// The Deployments a relist has shown so far (those it does not show are gone).
    relisted: Option<HashSet<(String, String)>>,
}

impl ProgressWatch {
    /// Follows a member's Deployment watch, sending to `wakes`.
    pub fn new(wakes: Wakes) -> Self {
        Self {
            wakes,
            last: HashMap::new(),
            relisted: None,
        }
    }

    /// Takes in one event of the watch.
    pub fn on_event(&mut self, event: &watcher::Event<WatchedDeployment>) {
        match event {
            watcher::Event::Init => self.relisted = Some(HashSet::new()),
            watcher::Event::InitApply(d) => {
                if let Some(seen) = self.relisted.as_mut() {
                    seen.insert(key(d));
                }
                self.applied(d);
            }
            watcher::Event::InitDone => {
                // Gone while the watch was down: forgotten, and their workloads woken.
                if let Some(seen) = self.relisted.take() {
                    let gone: Vec<_> = self
                        .last
                        .keys()
                        .filter(|k| !seen.contains(*k))
                        .cloned()
                        .collect();
                    for k in gone {
                        if let Some((_, Some(w))) = self.last.remove(&k) {
                            self.wakes.send(w);
                        }
                    }
                }
            }
            watcher::Event::Apply(d) => self.applied(d),
            watcher::Event::Delete(d) => {
                self.last.remove(&key(d));
                if let Some(w) = owner(d) {
                    self.wakes.send(w);
                }
            }
        }
    }

    fn applied(&mut self, d: &WatchedDeployment) {
        let now = progress(d);
        let workload = owner(d);
        let before = self.last.insert(key(d), (now.clone(), workload.clone()));
        // A Deployment seen for the first time was just created (by skyfleet, whose
        // reconcile knows it) or is first listed: nothing to wake for.
        if before.is_some_and(|(b, _)| b != now)
            && let Some(w) = workload
        {
            self.wakes.send(w);
        }
    }
}

fn key(d: &WatchedDeployment) -> (String, String) {
    (
        d.metadata.namespace.clone().unwrap_or_default(),
        d.metadata.name.clone().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Deployment of `shop/web` as the member watch keeps it.
    fn deployment(
        name: &str,
        replicas: i32,
        ready: i32,
        failure: Option<&str>,
    ) -> WatchedDeployment {
        let conditions: Vec<serde_json::Value> = failure
            .map(|m| {
                serde_json::json!({"type": "ReplicaFailure", "status": "True",
                    "reason": "FailedCreate", "message": m})
            })
            .into_iter()
            .collect();
        let served = serde_json::json!({
            "metadata": {
                "name": name,
                "namespace": "shop",
                "labels": {
                    (labels::MANAGED_BY): labels::MANAGER,
                    (labels::WORKLOAD_NAMESPACE): "shop",
                    (labels::WORKLOAD_NAME): "web"
                }
            },
            "spec": {"replicas": replicas},
            "status": {"readyReplicas": ready, "conditions": conditions}
        });
        let mut d: WatchedDeployment = serde_json::from_value(served).unwrap_or_default();
        super::super::watched_deployment::reduce(&mut d);
        d
    }

    fn drain(rx: &mut broadcast::Receiver<WorkloadKey>) -> Vec<WorkloadKey> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    #[test]
    fn a_replica_getting_ready_or_refused_wakes_its_workload_and_skyfleets_own_writes_do_not() {
        let wakes = Wakes::default();
        let mut rx = wakes.subscribe();
        let mut watch = ProgressWatch::new(wakes);
        let web = WorkloadKey {
            namespace: "shop".into(),
            name: "web".into(),
        };

        // Created by skyfleet, then scaled by it: nothing the reconcile does not know.
        watch.on_event(&watcher::Event::Apply(deployment("web-aws", 2, 0, None)));
        watch.on_event(&watcher::Event::Apply(deployment("web-aws", 3, 0, None)));
        assert_eq!(drain(&mut rx), vec![]);

        // A replica gets Ready; then the member refuses the next one (a quota).
        watch.on_event(&watcher::Event::Apply(deployment("web-aws", 3, 1, None)));
        assert_eq!(drain(&mut rx), vec![web.clone()]);
        let refused = deployment("web-aws", 3, 1, Some("exceeded quota"));
        watch.on_event(&watcher::Event::Apply(refused.clone()));
        watch.on_event(&watcher::Event::Apply(refused.clone()));
        assert_eq!(drain(&mut rx), vec![web.clone()], "once per change");

        // Deleted by hand: woken, to be put back.
        watch.on_event(&watcher::Event::Delete(refused));
        assert_eq!(drain(&mut rx), vec![web.clone()]);
    }

    #[test]
    fn a_relist_wakes_for_what_changed_meanwhile_and_forgets_what_went() {
        let wakes = Wakes::default();
        let mut rx = wakes.subscribe();
        let mut watch = ProgressWatch::new(wakes);
        watch.on_event(&watcher::Event::Apply(deployment("web-aws", 2, 0, None)));
        watch.on_event(&watcher::Event::Apply(deployment("web-gcp", 2, 2, None)));
        assert_eq!(watch.last.len(), 2);

        // The watch was down while web-aws got Ready and web-gcp was deleted: one wake for
        // each.
        watch.on_event(&watcher::Event::Init);
        watch.on_event(&watcher::Event::InitApply(deployment(
            "web-aws", 2, 2, None,
        )));
        watch.on_event(&watcher::Event::InitDone);
        assert_eq!(drain(&mut rx).len(), 2);
        assert_eq!(
            watch.last.keys().cloned().collect::<Vec<_>>(),
            vec![("shop".to_string(), "web-aws".to_string())],
            "what the relist did not show is forgotten"
        );
    }

    #[test]
    fn a_deployment_without_skyfleets_workload_labels_wakes_nothing() {
        let wakes = Wakes::default();
        let mut rx = wakes.subscribe();
        let mut watch = ProgressWatch::new(wakes);
        let mut d = deployment("other", 1, 0, None);
        d.metadata.labels = None;
        watch.on_event(&watcher::Event::Apply(d.clone()));
        let mut ready = deployment("other", 1, 1, None);
        ready.metadata.labels = None;
        watch.on_event(&watcher::Event::Apply(ready));
        watch.on_event(&watcher::Event::Delete(d));
        assert_eq!(drain(&mut rx), vec![]);
    }
}
