//! The single writer: group commit of whatever writes arrived together.
//!
//! All writes go through one thread that owns the write connection (of
//! either backend). It takes every request waiting in its queue, runs each
//! inside its own savepoint (a failing request rolls back alone), commits
//! them in one transaction, and only then answers each caller and publishes
//! the new events. A caller that got `Ok` knows its events are committed.

use crate::error::{StoreError, StoreResult};
use crate::sql::Db;
use crate::write_tx::{ChainHead, WriteTx};
use pushpals_core::Event;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Hears how the writer performs, for metrics. Called on the writer's
/// thread and on callers' tasks, so keep it quick.
pub trait WriteObserver: Send + Sync {
    /// A group commit ended: how many requests it held, how many events
    /// they appended, how long it took and whether it committed.
    fn batch(&self, requests: usize, events: usize, took: Duration, committed: bool);
    /// One write's latency as its caller saw it: queueing and commit.
    fn write(&self, took: Duration);
}

/// Where the observer is set once the store is open.
pub(crate) type ObserverSlot = Arc<OnceLock<Arc<dyn WriteObserver>>>;

/// How many queued requests one transaction takes at most.
const MAX_BATCH: usize = 512;

/// What a request's closure hands back: whether it succeeded, and how to
/// deliver its result once the transaction's fate is known.
type Delivery = Box<dyn FnOnce(Result<(), Failure>) + Send>;

/// Why a group commit failed.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// The disk is full.
    DiskFull(String),
    /// Anything else.
    Other(String),
}

impl Failure {
    fn of(what: &str, error: StoreError) -> Self {
        match error.classified() {
            StoreError::DiskFull(message) => Self::DiskFull(format!("{what}: {message}")),
            other => Self::Other(format!("{what}: {other}")),
        }
    }

    fn into_error(self) -> StoreError {
        match self {
            Self::DiskFull(message) => StoreError::DiskFull(message),
            Self::Other(message) => StoreError::Writer(message),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DiskFull(message) | Self::Other(message) => f.write_str(message),
        }
    }
}

/// One queued write.
pub(crate) type Job = Box<dyn FnOnce(&mut WriteTx<'_>) -> (bool, Delivery) + Send>;

/// The sending side of the writer's queue.
#[derive(Clone)]
pub(crate) struct WriterHandle {
    queue: mpsc::Sender<Job>,
    observer: ObserverSlot,
    /// Writes submitted and not yet answered.
    in_flight: Arc<AtomicUsize>,
}

/// How long a lone write waits for its answer without giving up its
/// thread: the writer answers a lone write within tens of microseconds,
/// and catching the answer awake saves the thread a sleep and a wake-up.
const LONE_WAIT: Duration = Duration::from_micros(200);

/// Counts a write as in flight while it lasts (a dropped caller too).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl WriterHandle {
    /// Starts the writer thread on `conn`.
    pub(crate) fn spawn(
        conn: Box<dyn Db + Send>,
        head: ChainHead,
        published: broadcast::Sender<Event>,
    ) -> StoreResult<Self> {
        let (queue, jobs) = mpsc::channel::<Job>();
        let observer: ObserverSlot = Arc::new(OnceLock::new());
        let heard = observer.clone();
        std::thread::Builder::new()
            .name("pushpals-store-writer".into())
            .spawn(move || run(conn, head, jobs, published, &heard))
            .map_err(|e| StoreError::Writer(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            queue,
            observer,
            in_flight: Arc::default(),
        })
    }

    /// Sets the observer; only the first call counts.
    pub(crate) fn observe(&self, observer: Arc<dyn WriteObserver>) {
        let _ = self.observer.set(observer);
    }

    /// Runs `op` in the next group commit and returns its result once
    /// committed.
    pub(crate) async fn submit<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteTx<'_>) -> StoreResult<T> + Send + 'static,
    {
        let started = Instant::now();
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |tx| {
            let outcome = op(tx).map_err(StoreError::classified);
            let succeeded = outcome.is_ok();
            let deliver: Delivery = Box::new(move |committed| {
                let result = match committed {
                    Ok(()) => outcome,
                    Err(failure) => outcome.and(Err(failure.into_error())),
                };
                let _ = answer.send(result);
            });
            (succeeded, deliver)
        });
        let alone = self.in_flight.fetch_add(1, Ordering::AcqRel) == 0;
        let _counted = InFlight(&self.in_flight);
        self.queue
            .send(job)
            .map_err(|_| StoreError::Writer("the writer thread has stopped".into()))?;
        let mut answered = answered;
        let mut early = None;
        if alone {
            // The only write in flight: its answer comes soon, and waiting
            // for it here beats sleeping and being woken. With others in
            // flight, the group commit takes longer and this does not pay.
            let until = Instant::now() + LONE_WAIT;
            loop {
                match answered.try_recv() {
                    Ok(result) => {
                        early = Some(result);
                        break;
                    }
                    Err(tokio::sync::oneshot::error::TryRecvError::Closed) => break,
                    Err(tokio::sync::oneshot::error::TryRecvError::Empty)
                        if Instant::now() < until =>
                    {
                        std::thread::yield_now();
                    }
                    Err(tokio::sync::oneshot::error::TryRecvError::Empty) => break,
                }
            }
        }
        let result = match early {
            Some(result) => result,
            None => answered
                .await
                .map_err(|_| StoreError::Writer("the writer dropped the request".into()))?,
        };
        if let Some(observer) = self.observer.get() {
            observer.write(started.elapsed());
        }
        result
    }
}

fn run(
    conn: Box<dyn Db + Send>,
    mut head: ChainHead,
    jobs: mpsc::Receiver<Job>,
    published: broadcast::Sender<Event>,
    observer: &ObserverSlot,
) {
    while let Some(first) = next_job(&jobs) {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let head_before = head.clone();
        let started = Instant::now();
        let requests = batch.len();
        let (deliveries, events, committed) = run_batch(conn.as_ref(), &mut head, batch);
        if let Some(observer) = observer.get() {
            observer.batch(requests, events.len(), started.elapsed(), committed.is_ok());
        }
        match committed {
            Ok(()) => {
                // Publish first: a caller that subscribes right after its
                // write returns must not see that write's events again.
                for event in events {
                    let _ = published.send(event);
                }
                for delivery in deliveries {
                    delivery(Ok(()));
                }
            }
            Err(failure) => {
                tracing::error!(error = %failure, "group commit failed");
                head = head_before;
                for delivery in deliveries {
                    delivery(Err(failure.clone()));
                }
            }
        }
    }
}

/// How long the writer looks for the next request before it sleeps: a
/// writer that awaits each write submits its next one within
/// microseconds, and catching it awake saves two thread wake-ups.
const AWAKE_FOR: Duration = Duration::from_micros(50);

/// The next request; `None` when every sender is gone.
fn next_job(jobs: &mpsc::Receiver<Job>) -> Option<Job> {
    let started = Instant::now();
    loop {
        match jobs.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if started.elapsed() < AWAKE_FOR => {
                std::thread::yield_now();
            }
            Err(mpsc::TryRecvError::Empty) => return jobs.recv().ok(),
        }
    }
}

fn run_batch(
    db: &dyn Db,
    head: &mut ChainHead,
    batch: Vec<Job>,
) -> (Vec<Delivery>, Vec<Event>, Result<(), Failure>) {
    let mut deliveries = Vec::with_capacity(batch.len());
    let mut events = Vec::new();
    if let Err(e) = db.batch("BEGIN") {
        // Every job still gets an answer: run none, fail all.
        let failure = Failure::of("cannot begin a transaction", e);
        for job in batch {
            deliveries.push(deliver_failure(job, &failure.to_string()));
        }
        return (deliveries, events, Err(failure));
    }
    // A lone request needs no savepoint: if it fails, the whole transaction
    // is rolled back instead. Between requests, releasing one savepoint and
    // opening the next go to the database together (one round trip on
    // PostgreSQL).
    let alone = batch.len() == 1;
    let mut all_failed = true;
    let mut open = false;
    let count = batch.len();
    let mut jobs = batch.into_iter().enumerate();
    while let Some((index, job)) = jobs.next() {
        if !alone && !open {
            if let Err(e) = db.batch("SAVEPOINT job") {
                let message = format!("cannot open a savepoint: {e}");
                deliveries.push(deliver_failure(job, &message));
                continue;
            }
            open = true;
        }
        let head_before = head.clone();
        let mut write_tx = WriteTx::new(db, head);
        let (succeeded, delivery) = job(&mut write_tx);
        let appended = write_tx.into_appended();
        let last = index + 1 == count;
        if succeeded && !alone {
            let release = if last {
                "RELEASE job"
            } else {
                "RELEASE job; SAVEPOINT job"
            };
            if let Err(e) = db.batch(release) {
                // What the database kept of this request is unknown: keep
                // nothing of the batch, and tell every request so.
                let failure = Failure::of("cannot end a savepoint", e);
                let _ = db.batch("ROLLBACK");
                deliveries.push(delivery);
                for (_, job) in jobs {
                    deliveries.push(deliver_failure(job, &failure.to_string()));
                }
                return (deliveries, Vec::new(), Err(failure));
            }
        }
        if succeeded {
            all_failed = false;
            events.extend(appended);
        } else {
            if !alone {
                let _ = db.batch("ROLLBACK TO job; RELEASE job");
                open = false;
            }
            *head = head_before;
        }
        deliveries.push(delivery);
    }
    if all_failed {
        // Nothing to keep: roll back and let each request report its own
        // error.
        if let Err(error) = db.batch("ROLLBACK") {
            tracing::error!(%error, "cannot roll back a failed write");
        }
        return (deliveries, events, Ok(()));
    }
    let committed = db
        .batch("COMMIT")
        .map_err(|e| Failure::of("commit failed", e));
    if committed.is_err() {
        // A failed COMMIT may leave the transaction open (SQLite's full
        // disk): end it, so the next batch starts clean.
        let _ = db.batch("ROLLBACK");
    }
    (deliveries, events, committed)
}

/// Answers a job that could not run at all.
fn deliver_failure(job: Job, message: &str) -> Delivery {
    let message = message.to_owned();
    drop(job);
    Box::new(move |_| {
        tracing::error!(error = %message, "write request could not run");
    })
}
