//! Handing task runs to worker hosts: the board of connected workers,
//! the runs waiting for one, and each run a worker holds.
//!
//! A task's driver stays on the server: it judges every command with the
//! command gate, writes every event and keeps the worktree the diff is
//! shown and committed from. What a worker does is run the commands in its
//! own sandbox and clone and send back output, each command's end and, at
//! the end, the run's diff and artifacts (an agent's run is mirrored
//! command by command instead, `mirrored_run.rs`); it keeps warm caches of
//! its own, built when the driver asks. A driver asks [`Dispatch::place`] where its run
//! goes; a worker asks [`Dispatch::next`] (a long poll) for its next
//! instruction. A run belongs to one worker under one lease: reports under
//! another lease are refused, so a worker that comes back after its run was
//! given away cannot write over it. A worker silent for
//! `[workers] silence_secs` while it holds a run loses it (`lost`).
//!
//! Over 400 lines: the board and the placement work on one lock-guarded
//! state, and keeping them together keeps its rules in one place; what a
//! worker sends about a run is `worker_requests.rs`, the remote runner
//! `remote_run.rs`, the mirrored one `mirrored_run.rs`.

mod agent_on_worker;
mod mirrored_run;
mod remote_run;
mod worker_requests;

pub(crate) use agent_on_worker::AgentOnWorker;
pub(crate) use mirrored_run::MirroredRun;
pub(crate) use remote_run::{InBuild, OnWorker, RemoteRun};

use crate::current::Current;
use crate::settings::Settings;
use pushpals_core::TaskId;
use pushpals_core::worker_wire::{ArtifactsReport, Asking, Instruction, OfferedAgent, WarmReport};
use pushpals_sandbox::{CommandOutcome, OutputChunk, RunError};
use pushpals_store::Store;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

/// How long a worker's `next` waits for an instruction before answering
/// that there is none.
pub const LONG_POLL: Duration = Duration::from_secs(20);
/// How many network connections of commands on workers may be open
/// through the server at once, in all.
pub const MAX_TUNNELS: usize = 512;
/// How many one command on a worker may have open at once.
pub const MAX_TUNNELS_PER_COMMAND: usize = 64;

/// The largest diff a worker may send back.
pub const MAX_DIFF: usize = 64 * 1024 * 1024;

/// Why a worker's request was refused.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The task is not one this worker holds.
    #[error("{0}")]
    NotYours(String),
    /// The lease is over: the run ended or went to another worker.
    #[error(
        "this run of task {task} is no longer this worker's (lease {lease} is over: the run ended \
         or was given to another worker); drop it"
    )]
    Stale {
        /// The task.
        task: String,
        /// The lease the worker gave.
        lease: u64,
    },
    /// Output came out of order.
    #[error("send output chunk {expected} of command {seq} first")]
    OutOfOrder {
        /// The command.
        seq: u64,
        /// The chunk the server waits for.
        expected: u64,
    },
    /// A mirrored command's end came before its changes.
    #[error("send what command {seq} changed (PUT .../diff?lease=&seq={seq}) before how it ended")]
    ChangesFirst {
        /// The command.
        seq: u64,
    },
    /// Too many at once; try later.
    #[error("{0}")]
    Busy(String),
    /// The request itself is wrong.
    #[error("{0}")]
    BadInput(String),
}

/// What a task of the external agent `name` needs of a worker: that the
/// agent is installed there (a worker offers each agent it finds).
pub(crate) fn agent_need(name: &str) -> String {
    format!("agent:{name}")
}

/// Whether a need is an agent's ([`agent_need`]); labels an admin gives
/// cannot look like one.
pub(crate) fn is_agent_need(need: &str) -> bool {
    need.starts_with("agent:")
}

/// What a connection relayed through a worker's request reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relay {
    /// The network proxy of a command granted network.
    Network,
    /// The model gateway, for an external agent.
    Gateway,
}

/// Where a run goes.
pub(crate) enum Placement {
    /// On this machine.
    Local,
    /// On a worker host.
    Remote(Arc<RemoteRun>),
}

/// What a driver offers: a run waiting for a worker.
struct Offer {
    task: TaskId,
    repo: String,
    base: String,
    needs: Vec<String>,
    worktree: PathBuf,
    reply: oneshot::Sender<Arc<RemoteRun>>,
}

/// A worker that asked for work lately.
struct Connected {
    /// The labels an admin gave it, and `agent:NAME` for each agent it has.
    labels: Vec<String>,
    /// The external agents it has, and their programs there.
    agents: Vec<OfferedAgent>,
    /// When it last said anything (a poll, output, a report, a heartbeat).
    last_word: Instant,
    /// Its long polls open now: a worker waiting for an instruction is not
    /// silent (a poll ends within [`LONG_POLL`], so a cut one shows soon).
    polls: u32,
    /// The tasks it runs.
    running: Vec<TaskId>,
    /// How many it runs at once.
    slots: usize,
    /// Instructions it has not taken yet.
    mailbox: VecDeque<Instruction>,
    /// Rung when its mailbox or the offers change.
    bell: Arc<Notify>,
    /// Runs it finished (any way) since the server started.
    runs: u64,
    /// Time it spent holding runs.
    busy: Duration,
    busy_since: Option<Instant>,
}

/// A run a worker holds.
struct HeldRun {
    worker: String,
    lease: u64,
    /// The server's worktree of the task (its base, for the bundle).
    worktree: PathBuf,
    steps: HashMap<u64, StepLink>,
    /// What each running command's relayed connections reach (its network
    /// proxy, the model gateway), and how many more it may open.
    relays: HashMap<(u64, Relay), (PathBuf, Arc<Semaphore>)>,
    /// Commands that ended: a report or chunk sent again for one is taken
    /// as already had.
    ended: std::collections::HashSet<u64>,
    next_seq: u64,
    /// Waiting for the worker's answer about a warm cache.
    warm: Option<oneshot::Sender<WarmReport>>,
    /// Waiting for the worker's artifacts report.
    artifacts: Option<oneshot::Sender<ArtifactsReport>>,
    lost: watch::Sender<Option<String>>,
}

/// Where one command's output and end go.
struct StepLink {
    output: mpsc::Sender<OutputChunk>,
    next_chunk: u64,
    /// What a mirrored command changed, once the worker sent it.
    changes: Option<Vec<u8>>,
    done: Option<oneshot::Sender<Result<Ended, RunError>>>,
}

/// How a command on a worker ended.
pub(crate) struct Ended {
    pub(crate) outcome: CommandOutcome,
    /// A mirrored command that changed the clone: its tree after, and the
    /// diff to it from the tree it started at.
    pub(crate) changes: Option<(String, Vec<u8>)>,
    /// An agent's record, when the worker sent one back.
    pub(crate) trajectory: Option<String>,
}

#[derive(Default)]
struct Board {
    workers: HashMap<String, Connected>,
    offers: Vec<Offer>,
    runs: HashMap<TaskId, HeldRun>,
}

/// One worker as the board sees it, for `GET /workers` and metrics.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkerActivity {
    /// Its name.
    pub name: String,
    /// The tasks it runs now.
    pub running: Vec<String>,
    /// Runs it ended since the server started.
    pub runs: u64,
    /// Seconds it spent holding runs since the server started.
    pub busy_secs: f64,
    /// Seconds since it last said anything.
    pub silent_secs: f64,
    /// The external agents it has, as it last said.
    pub agents: Vec<String>,
}

/// The board of workers and runs; shared as `Arc<Dispatch>`.
pub struct Dispatch {
    store: Store,
    settings: Arc<Current<Settings>>,
    board: Mutex<Board>,
    /// The next lease; starts from the clock so leases of an earlier start
    /// are never reused.
    leases: AtomicU64,
    /// Network connections of commands on workers open now.
    tunnels: Arc<Semaphore>,
}

/// Held while one network connection of a command on a worker is open.
pub struct TunnelPermit {
    _all: OwnedSemaphorePermit,
    _command: OwnedSemaphorePermit,
}

impl Dispatch {
    /// An empty board.
    pub(crate) fn new(store: Store, settings: Arc<Current<Settings>>) -> Self {
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2));
        Self {
            store,
            settings,
            board: Mutex::default(),
            leases: AtomicU64::new(start),
            tunnels: Arc::new(Semaphore::new(MAX_TUNNELS)),
        }
    }

    fn board(&self) -> MutexGuard<'_, Board> {
        // A panic while holding the lock leaves a consistent board (every
        // change is one insert or remove), so a poisoned lock is taken.
        self.board
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn silence(&self) -> Duration {
        self.settings.get().workers.silence()
    }

    /// Where a task's run goes: to a connected idle worker whose labels
    /// cover `needs`, else this machine when it takes such a task, else
    /// the first such worker to ask (waiting until one does, or `cancel`).
    /// Refused when no enrolled worker offers what the task needs.
    pub(crate) async fn place(
        self: &Arc<Self>,
        task: &TaskId,
        repo: &str,
        base: &str,
        needs: &[String],
        worktree: PathBuf,
        cancel: &mut watch::Receiver<bool>,
    ) -> Result<Placement, String> {
        let settings = self.settings.get();
        let silence = settings.workers.silence();
        let (reply, taken) = oneshot::channel();
        let offer = Offer {
            task: task.clone(),
            repo: repo.to_owned(),
            base: base.to_owned(),
            needs: needs.to_vec(),
            worktree,
            reply,
        };
        {
            let mut board = self.board();
            let idle = board
                .workers
                .iter()
                .filter(|(_, w)| {
                    w.running.len() < w.slots
                        && w.last_word.elapsed() < silence
                        && covers(&w.labels, needs)
                })
                .map(|(name, _)| name.clone())
                .next();
            if let Some(name) = idle {
                let (run, _) = self.hand_out(&mut board, &name, offer);
                return Ok(Placement::Remote(run));
            }
            if settings.workers.local_takes(needs) {
                return Ok(Placement::Local);
            }
        }
        let enrolled = self
            .store
            .workers()
            .await
            .map_err(|e| format!("cannot read the workers: {e}"))?;
        // An agent may be installed on a worker later: the task waits.
        let labelled: Vec<String> = needs
            .iter()
            .filter(|n| !is_agent_need(n))
            .cloned()
            .collect();
        let any = enrolled
            .iter()
            .any(|w| w.revoked_at.is_none() && covers(&w.labels, &labelled));
        if !any {
            return Err(format!(
                "no worker offers what this task needs ({}) and this machine does not take it \
                 ([workers] local / local_labels): add one with `pushpals worker token --name \
                 NAME --labels {}`",
                if needs.is_empty() {
                    "nothing in particular".to_owned()
                } else {
                    needs.join(", ")
                },
                needs.join(",")
            ));
        }
        {
            let mut board = self.board();
            for worker in board.workers.values() {
                if worker.running.len() < worker.slots && covers(&worker.labels, needs) {
                    worker.bell.notify_one();
                }
            }
            board.offers.push(offer);
        }
        tokio::select! {
            run = taken => run
                .map(Placement::Remote)
                .map_err(|_| "the offer was withdrawn".to_owned()),
            _ = cancel.wait_for(|stop| *stop) => {
                self.board().offers.retain(|o| &o.task != task);
                Err("cancelled while waiting for a worker".into())
            }
        }
    }

    /// Gives `offer` to worker `name` (which must be on the board): a new
    /// lease, the run held, `Start` in its mailbox. Returns the run and the
    /// instruction.
    fn hand_out(
        self: &Arc<Self>,
        board: &mut Board,
        name: &str,
        offer: Offer,
    ) -> (Arc<RemoteRun>, Instruction) {
        let lease = self.leases.fetch_add(1, Ordering::Relaxed);
        let (lost, lost_seen) = watch::channel(None);
        let start = Instruction::Start {
            task: offer.task.to_string(),
            lease,
            repo: offer.repo.clone(),
            base_commit: offer.base.clone(),
        };
        board.runs.insert(
            offer.task.clone(),
            HeldRun {
                worker: name.to_owned(),
                lease,
                worktree: offer.worktree,
                steps: HashMap::new(),
                relays: HashMap::new(),
                ended: std::collections::HashSet::new(),
                next_seq: 1,
                warm: None,
                artifacts: None,
                lost,
            },
        );
        if let Some(worker) = board.workers.get_mut(name) {
            worker.running.push(offer.task.clone());
            worker.busy_since.get_or_insert_with(Instant::now);
            worker.mailbox.push_back(start.clone());
            worker.bell.notify_one();
        }
        let run = Arc::new(RemoteRun::new(
            Arc::clone(self),
            offer.task.clone(),
            name.to_owned(),
            lease,
            offer.needs,
            lost_seen,
        ));
        let _ = offer.reply.send(Arc::clone(&run));
        (run, start)
    }

    /// A worker's long poll: its next instruction, or `None` after
    /// [`LONG_POLL`] without one. Taking an offer happens here.
    pub async fn next(
        self: &Arc<Self>,
        name: &str,
        labels: &[String],
        asking: &Asking,
    ) -> Result<Option<Instruction>, DispatchError> {
        let until = tokio::time::Instant::now() + LONG_POLL;
        let labels = &offered_labels(labels, &asking.agents);
        let _open = OpenPoll::new(self, name, labels, asking.slots());
        self.forget_dropped(name, asking);
        loop {
            let bell = {
                let mut board = self.board();
                let worker = connect(&mut board, name, labels, asking.slots());
                worker.agents.clone_from(&asking.agents);
                if let Some(instruction) = worker.mailbox.pop_front() {
                    return Ok(Some(instruction));
                }
                if worker.running.len() < worker.slots {
                    // The oldest offer whose driver still waits and whose
                    // needs this worker covers.
                    while let Some(at) = board.offers.iter().position(|o| covers(labels, &o.needs))
                    {
                        let offer = board.offers.remove(at);
                        if offer.reply.is_closed() {
                            continue;
                        }
                        let (_, start) = self.hand_out(&mut board, name, offer);
                        if let Some(worker) = board.workers.get_mut(name) {
                            worker.mailbox.retain(|i| i != &start);
                        }
                        return Ok(Some(start));
                    }
                }
                board
                    .workers
                    .get(name)
                    .map(|w| Arc::clone(&w.bell))
                    .unwrap_or_default()
            };
            tokio::select! {
                () = bell.notified() => {}
                () = tokio::time::sleep_until(until) => return Ok(None),
            }
        }
    }

    /// Ends each run the board counts as `name`'s that the worker says it
    /// does not hold (it restarted, or could not take the run's base),
    /// unless its `start` is still waiting in its mailbox; and tells it to
    /// drop each run it holds that is no longer its.
    fn forget_dropped(&self, name: &str, asking: &Asking) {
        let mut board = self.board();
        // Runs the worker still holds that are no longer its (lost, given
        // away, or from before the server restarted): it is told to drop
        // them, which stops their commands.
        for holding in &asking.holding {
            let current = board
                .runs
                .values()
                .any(|r| r.worker == name && r.lease == holding.lease);
            if let Some(worker) = board.workers.get_mut(name)
                && !current
                && !worker.mailbox.iter().any(|i| i.lease() == holding.lease)
            {
                worker.mailbox.push_back(Instruction::Done {
                    task: holding.task.clone(),
                    lease: holding.lease,
                });
            }
        }
        let Some(worker) = board.workers.get(name) else {
            return;
        };
        let dropped: Vec<(TaskId, u64)> = worker
            .running
            .iter()
            .filter_map(|task| board.runs.get(task).map(|run| (task.clone(), run.lease)))
            .filter(|(task, lease)| {
                let held = asking
                    .holding
                    .iter()
                    .any(|h| h.task == task.as_str() && h.lease == *lease);
                let starting = worker
                    .mailbox
                    .iter()
                    .any(|i| matches!(i, Instruction::Start { lease: l, .. } if l == lease));
                !held && !starting
            })
            .collect();
        for (task, lease) in dropped {
            if let Some(run) = board.runs.remove(&task) {
                let _ = run.lost.send(Some(format!(
                    "worker {name} no longer holds the run (it restarted, or could not take the \
                     task's base)"
                )));
            }
            if let Some(worker) = board.workers.get_mut(name) {
                // What was sent for the run and not taken goes with it.
                worker.mailbox.retain(|i| i.lease() != lease);
                worker.ended_run(&task);
            }
        }
    }

    /// A worker said something (its heartbeat): it is not silent.
    pub fn heard_from(&self, name: &str) {
        if let Some(worker) = self.board().workers.get_mut(name) {
            worker.last_word = Instant::now();
        }
    }

    /// The worker holding `task`'s run, if one does.
    pub(crate) fn holder(&self, task: &TaskId) -> Option<String> {
        self.board().runs.get(task).map(|run| run.worker.clone())
    }

    /// What `task`'s run waits for a worker to offer, while it waits.
    pub(crate) fn waiting_for(&self, task: &TaskId) -> Option<Vec<String>> {
        self.board()
            .offers
            .iter()
            .find(|offer| &offer.task == task)
            .map(|offer| offer.needs.clone())
    }

    /// What each worker on the board is doing.
    pub fn activity(&self) -> Vec<WorkerActivity> {
        let board = self.board();
        let mut all: Vec<WorkerActivity> = board
            .workers
            .iter()
            .map(|(name, w)| WorkerActivity {
                name: name.clone(),
                running: w.running.iter().map(ToString::to_string).collect(),
                runs: w.runs,
                busy_secs: (w.busy + w.busy_since.map_or(Duration::ZERO, |s| s.elapsed()))
                    .as_secs_f64(),
                silent_secs: w.last_word.elapsed().as_secs_f64(),
                agents: w.agents.iter().map(|a| a.name.clone()).collect(),
            })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Ends the runs of workers silent for longer than `[workers]
    /// silence_secs` (each driver hears it as `lost`) and forgets a worker
    /// revoked or silent that long.
    pub(crate) fn sweep(&self, revoked: &[String]) {
        let silence = self.silence();
        let mut board = self.board();
        let gone: Vec<String> = board
            .workers
            .iter()
            .filter(|(name, w)| {
                (w.polls == 0 && w.last_word.elapsed() >= silence) || revoked.contains(name)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            let Some(worker) = board.workers.remove(&name) else {
                continue;
            };
            for task in &worker.running {
                let Some(run) = board.runs.remove(task) else {
                    continue;
                };
                let why = if revoked.contains(&name) {
                    format!("worker {name} was revoked")
                } else {
                    format!(
                        "worker {name} said nothing for {} s",
                        worker.last_word.elapsed().as_secs()
                    )
                };
                let _ = run.lost.send(Some(why));
            }
        }
    }

    /// Keeps sweeping (every second) while the server runs.
    pub(crate) fn start_sweeping(self: &Arc<Self>) {
        let dispatch = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(dispatch) = dispatch.upgrade() else {
                    return;
                };
                let revoked: Vec<String> = match dispatch.store.workers().await {
                    Ok(all) => all
                        .into_iter()
                        .filter(|w| w.revoked_at.is_some())
                        .map(|w| w.name)
                        .collect(),
                    Err(_) => Vec::new(),
                };
                dispatch.sweep(&revoked);
            }
        });
    }

    /// Sends `instruction` to the worker holding `task` under `lease`;
    /// false when the run is no longer held.
    fn send(&self, board: &mut Board, task: &TaskId, lease: u64, instruction: Instruction) -> bool {
        let Some(run) = board.runs.get(task).filter(|r| r.lease == lease) else {
            return false;
        };
        let worker = run.worker.clone();
        match board.workers.get_mut(&worker) {
            Some(w) => {
                w.mailbox.push_back(instruction);
                w.bell.notify_one();
                true
            }
            None => false,
        }
    }

    /// Ends a run: the worker is told to drop its clone and is free again.
    fn release(&self, task: &TaskId, lease: u64) {
        let mut board = self.board();
        if board.runs.get(task).is_none_or(|r| r.lease != lease) {
            return;
        }
        let done = Instruction::Done {
            task: task.to_string(),
            lease,
        };
        // Nothing else of the run is worth taking any more.
        if let Some(worker) = board
            .runs
            .get(task)
            .map(|r| r.worker.clone())
            .and_then(|name| board.workers.get_mut(&name))
        {
            worker.mailbox.retain(|i| i.lease() != lease);
        }
        self.send(&mut board, task, lease, done);
        let Some(run) = board.runs.remove(task) else {
            return;
        };
        if let Some(worker) = board.workers.get_mut(&run.worker) {
            worker.ended_run(task);
            worker.bell.notify_one();
        }
    }
}

impl HeldRun {
    /// Command `seq` ended: its output link and proxy go (so its recorder
    /// finishes), and a report or chunk sent again for it is taken as had.
    fn end_step(&mut self, seq: u64) {
        self.steps.remove(&seq);
        self.relays.retain(|(command, _), _| *command != seq);
        self.ended.insert(seq);
    }
}

impl Connected {
    /// Counts a run of `task` as over: a slot is free again, and the time
    /// it was busy (holding any run) is added up when it holds none.
    fn ended_run(&mut self, task: &TaskId) {
        let before = self.running.len();
        self.running.retain(|t| t != task);
        if self.running.len() < before {
            self.runs += 1;
        }
        if self.running.is_empty()
            && let Some(since) = self.busy_since.take()
        {
            self.busy += since.elapsed();
        }
    }
}

/// Counts a worker's open long poll while it lasts (a dropped request
/// ends it too).
struct OpenPoll<'a> {
    dispatch: &'a Dispatch,
    name: &'a str,
}

impl<'a> OpenPoll<'a> {
    fn new(dispatch: &'a Dispatch, name: &'a str, labels: &[String], slots: usize) -> Self {
        connect(&mut dispatch.board(), name, labels, slots).polls += 1;
        Self { dispatch, name }
    }
}

impl Drop for OpenPoll<'_> {
    fn drop(&mut self) {
        if let Some(worker) = self.dispatch.board().workers.get_mut(self.name) {
            worker.polls = worker.polls.saturating_sub(1);
            worker.last_word = Instant::now();
        }
    }
}

/// Worker `name` on the board (put there when new), heard from now.
fn connect<'b>(
    board: &'b mut Board,
    name: &str,
    labels: &[String],
    slots: usize,
) -> &'b mut Connected {
    let worker = board
        .workers
        .entry(name.to_owned())
        .or_insert_with(|| Connected {
            labels: labels.to_vec(),
            agents: Vec::new(),
            last_word: Instant::now(),
            polls: 0,
            running: Vec::new(),
            slots,
            mailbox: VecDeque::new(),
            bell: Arc::new(Notify::new()),
            runs: 0,
            busy: Duration::ZERO,
            busy_since: None,
        });
    worker.last_word = Instant::now();
    worker.labels = labels.to_vec();
    worker.slots = slots;
    worker
}

/// A worker's labels with `agent:NAME` for each agent it has.
fn offered_labels(labels: &[String], agents: &[OfferedAgent]) -> Vec<String> {
    labels
        .iter()
        .cloned()
        .chain(agents.iter().map(|a| agent_need(&a.name)))
        .collect()
}

/// Whether `labels` offer everything `needs` asks.
fn covers(labels: &[String], needs: &[String]) -> bool {
    needs.iter().all(|n| labels.contains(n))
}

#[cfg(test)]
mod tests {
    use super::covers;

    #[test]
    fn a_worker_covers_what_its_labels_offer() {
        let labels = vec!["cargo".to_owned(), "node".to_owned()];
        assert!(covers(&labels, &[]));
        assert!(covers(&labels, &["node".into()]));
        assert!(!covers(&labels, &["python".into()]));
        assert!(!covers(&[], &["cargo".into()]));
    }

    #[test]
    fn a_worker_offers_the_agents_it_has() {
        let agents = vec![pushpals_core::worker_wire::OfferedAgent {
            name: "codex".into(),
            program: "/usr/local/bin/codex".into(),
        }];
        let labels = super::offered_labels(&["cargo".into()], &agents);
        assert!(covers(
            &labels,
            &["cargo".into(), super::agent_need("codex")]
        ));
        assert!(!covers(&labels, &[super::agent_need("aider")]));
        assert!(super::is_agent_need(&super::agent_need("codex")));
        assert!(!super::is_agent_need("cargo"));
    }
}
