//! Events sent in the background. A reconcile that waited for each Event it publishes holds
//! its concurrency slot for one more API round trip per Event: in a failover of a thousand
//! workloads each published two or three, in series before its status. client-go's
//! recorder sends Events from a queue for the same reason; like it, a full queue drops the
//! Event (counted, and logged) rather than holding up the decisions it describes, and at
//! shutdown what is queued is still sent, for a while.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, Recorder};
use tokio::sync::{Notify, mpsc};
use tracing::warn;

use super::metrics::Metrics;

/// Events waiting to be sent; beyond this many a new one is dropped. A thousand workloads
/// failing over at once queue two or three each.
pub const QUEUE_CAPACITY: usize = 4096;

/// Events sent at the same time.
pub const SENDERS: usize = 4;

/// How long a graceful shutdown waits for the queued Events to be sent: well inside a
/// pod's default 30 s termination grace.
pub const FLUSH_ON_SHUTDOWN: Duration = Duration::from_secs(5);

/// One Event and the object it is about.
struct Queued {
    event: Event,
    about: ObjectReference,
}

/// The sending side of the queue; clones share it.
#[derive(Clone)]
pub struct EventQueue {
    queue: mpsc::Sender<Queued>,
    metrics: Arc<Metrics>,
    unsent: Arc<Unsent>,
}

/// Events queued or being sent, and a wake-up for whoever waits until there are none.
#[derive(Default)]
struct Unsent {
    count: AtomicUsize,
    none_left: Notify,
}

impl Unsent {
    fn add(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    fn done(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.none_left.notify_waiters();
        }
    }

    fn none(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }
}

impl EventQueue {
    /// A queue of `capacity` whose Events `recorder` sends, `senders` at a time, from a
    /// task of its own. Needs a tokio runtime.
    pub fn start(
        recorder: Recorder,
        metrics: Arc<Metrics>,
        capacity: usize,
        senders: usize,
    ) -> Self {
        let (queue, waiting) = mpsc::channel::<Queued>(capacity.max(1));
        let unsent = Arc::new(Unsent::default());
        let sent = unsent.clone();
        let waiting =
            futures::stream::unfold(
                waiting,
                |mut w| async move { w.recv().await.map(|q| (q, w)) },
            );
        tokio::spawn(waiting.for_each_concurrent(senders.max(1), move |q| {
            let recorder = recorder.clone();
            let sent = sent.clone();
            async move {
                if let Err(e) = recorder.publish(&q.event, &q.about).await {
                    warn!(
                        name = q.about.name.as_deref().unwrap_or_default(),
                        namespace = q.about.namespace.as_deref().unwrap_or_default(),
                        reason = %q.event.reason,
                        error = %e,
                        "could not publish event"
                    );
                }
                sent.done();
            }
        }));
        Self {
            queue,
            metrics,
            unsent,
        }
    }

    /// Queues `event` about `about`; never waits. A full queue drops it.
    pub fn send(&self, event: Event, about: ObjectReference) {
        self.unsent.add();
        let why = match self.queue.try_send(Queued { event, about }) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(q)) => {
                (q, "event dropped: the queue of events to send is full")
            }
            Err(mpsc::error::TrySendError::Closed(q)) => {
                (q, "event dropped: the event sender has stopped")
            }
        };
        self.unsent.done();
        self.metrics.event_dropped();
        let (q, why) = why;
        warn!(
            name = q.about.name.as_deref().unwrap_or_default(),
            namespace = q.about.namespace.as_deref().unwrap_or_default(),
            reason = %q.event.reason,
            "{why}"
        );
    }

    /// Waits until every queued Event has been sent (or refused by the API server), for at
    /// most `within`; whether none is left. A graceful shutdown calls it so the last
    /// decisions' Events are not lost with the process.
    pub async fn flush(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let none_left = self.unsent.none_left.notified();
            tokio::pin!(none_left);
            // Registered before the count is read, so a send finishing in between still wakes it.
            none_left.as_mut().enable();
            if self.unsent.none() {
                return true;
            }
            if tokio::time::timeout_at(deadline, none_left).await.is_err() {
                return self.unsent.none();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::client::Body;
    use kube::runtime::events::{EventType, Reporter};
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn event(n: usize) -> Event {
        Event {
            type_: EventType::Normal,
            reason: format!("R{n}"),
            note: None,
            action: "Test".into(),
            secondary: None,
        }
    }

    fn about() -> ObjectReference {
        ObjectReference {
            kind: Some("MultiCloudWorkload".into()),
            name: Some("web".into()),
            namespace: Some("shop".into()),
            ..ObjectReference::default()
        }
    }

    /// A client whose API server takes each request and never answers, counting them.
    fn hanging_client(requests: Arc<AtomicUsize>) -> kube::Client {
        let service = tower::service_fn(move |_: http::Request<Body>| {
            requests.fetch_add(1, Ordering::SeqCst);
            async { futures::future::pending::<Result<http::Response<Body>, Infallible>>().await }
        });
        kube::Client::new(service, "default")
    }

    fn recorder(client: kube::Client) -> Recorder {
        Recorder::new(
            client,
            Reporter {
                controller: "skyfleet".into(),
                instance: None,
            },
        )
    }

    /// A queue of `capacity` with `senders` whose API server never answers; with the count
    /// of requests it took and the metrics the queue counts drops in.
    fn hanging_queue(
        capacity: usize,
        senders: usize,
    ) -> (EventQueue, Arc<AtomicUsize>, Arc<Metrics>) {
        let requests = Arc::new(AtomicUsize::new(0));
        let metrics = Arc::new(Metrics::default());
        let queue = EventQueue::start(
            recorder(hanging_client(requests.clone())),
            metrics.clone(),
            capacity,
            senders,
        );
        (queue, requests, metrics)
    }

    #[tokio::test]
    async fn a_send_never_waits_for_the_api_server_and_a_full_queue_drops_and_counts() {
        let (queue, requests, metrics) = hanging_queue(2, 1);
        // The one sender takes the first Event and hangs on it.
        queue.send(event(0), about());
        while requests.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // Two more fill the queue; the fourth and fifth find it full. None of these waits.
        for n in 1..5 {
            queue.send(event(n), about());
        }
        assert_eq!(metrics.events_dropped(), 2);
        assert_eq!(requests.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn queued_events_are_sent_several_at_a_time() {
        let (queue, requests, metrics) = hanging_queue(16, 3);
        for n in 0..5 {
            queue.send(event(n), about());
        }
        // Three senders each wait on an answer that never comes: three requests in flight,
        // the other two still queued, nothing dropped.
        while requests.load(Ordering::SeqCst) < 3 {
            tokio::task::yield_now().await;
        }
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(requests.load(Ordering::SeqCst), 3);
        assert_eq!(metrics.events_dropped(), 0);
    }

    #[tokio::test]
    async fn flush_waits_until_the_queued_events_are_sent_or_its_time_is_up() {
        // An API server that holds every request until the gate opens, then refuses it: a
        // refused Event is done with, as a sent one is.
        let requests = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let (counted, held) = (requests.clone(), gate.clone());
        let service = tower::service_fn(move |_: http::Request<Body>| {
            counted.fetch_add(1, Ordering::SeqCst);
            let held = held.clone();
            async move {
                let _pass = held.acquire().await;
                let mut refused = http::Response::new(Body::from(b"{}".to_vec()));
                *refused.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                Ok::<_, Infallible>(refused)
            }
        });
        let queue = EventQueue::start(
            recorder(kube::Client::new(service, "default")),
            Arc::new(Metrics::default()),
            16,
            2,
        );
        for n in 0..5 {
            queue.send(event(n), about());
        }
        assert!(
            !queue.flush(Duration::from_millis(50)).await,
            "nothing can be sent while the API server holds the requests"
        );
        gate.add_permits(1000);
        assert!(queue.flush(Duration::from_secs(10)).await);
        assert!(
            requests.load(Ordering::SeqCst) >= 5,
            "every Event was tried"
        );
        assert!(
            queue.flush(Duration::ZERO).await,
            "an empty queue is flushed at once"
        );
    }
}
