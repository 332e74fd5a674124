//! The `max_parallel` slots all repositories share, handed out fairly: when
//! a slot frees up, it goes to the waiting repository with the fewest tasks
//! running, and among those the one served least recently; within a
//! repository, tasks go in the order they asked. One busy repository with
//! a long queue cannot keep another's task waiting behind the whole queue.
//! A repository may have a limit of its own (`[repos.NAME] max_parallel`):
//! its tasks wait at its limit while others' go ahead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;

/// See the module's documentation.
pub(crate) struct FairSlots {
    state: Arc<Mutex<State>>,
}

struct State {
    capacity: usize,
    in_use: usize,
    running: HashMap<String, usize>,
    /// When each repository last got a slot (a counter, not a time).
    last_served: HashMap<String, u64>,
    served: u64,
    waiting: Vec<Waiter>,
    tickets: u64,
}

struct Waiter {
    repo: String,
    /// The repository's own limit.
    limit: Option<usize>,
    ticket: u64,
    grant: oneshot::Sender<Slot>,
}

/// A held slot; dropping it frees the slot for the next waiter.
pub(crate) struct Slot {
    state: Arc<Mutex<State>>,
    repo: String,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FairSlots {
    /// `capacity` slots (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                capacity: capacity.max(1),
                in_use: 0,
                running: HashMap::new(),
                last_served: HashMap::new(),
                served: 0,
                waiting: Vec::new(),
                tickets: 0,
            })),
        }
    }

    /// Waits for a slot for a task of `repo`, which may have at most
    /// `limit` tasks holding one. A caller that stops waiting (its task
    /// cancelled) gives up its place; a slot granted to it as it stopped
    /// is freed again.
    pub(crate) async fn acquire(&self, repo: &str, limit: Option<usize>) -> Slot {
        let receiver = {
            let mut state = lock(&self.state);
            let (grant, receiver) = oneshot::channel();
            state.tickets += 1;
            let ticket = state.tickets;
            state.waiting.push(Waiter {
                repo: repo.to_owned(),
                limit,
                ticket,
                grant,
            });
            hand_on(state, &self.state);
            receiver
        };
        match receiver.await {
            Ok(slot) => slot,
            // Unreachable while `self` lives (waiters are only dropped when
            // granted); wait in line again rather than run without a slot.
            Err(_) => Box::pin(self.acquire(repo, limit)).await,
        }
    }

    /// How many tasks of each repository hold a slot now.
    #[cfg(test)]
    fn running(&self) -> HashMap<String, usize> {
        lock(&self.state).running.clone()
    }
}

/// Marks a slot taken by `repo` and returns it.
fn take(state: &mut State, shared: &Arc<Mutex<State>>, repo: &str) -> Slot {
    state.in_use += 1;
    *state.running.entry(repo.to_owned()).or_default() += 1;
    state.served += 1;
    let served = state.served;
    state.last_served.insert(repo.to_owned(), served);
    Slot {
        state: Arc::clone(shared),
        repo: repo.to_owned(),
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let shared = Arc::clone(&self.state);
        let mut state = lock(&shared);
        state.in_use = state.in_use.saturating_sub(1);
        if let Some(count) = state.running.get_mut(&self.repo) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.running.remove(&self.repo);
            }
        }
        hand_on(state, &shared);
    }
}

/// Hands free slots to waiters: the repository with the fewest running,
/// then the one served least recently, then the oldest ask; a repository
/// at its own limit waits, and a waiter that gave up is skipped.
fn hand_on(mut state: MutexGuard<'_, State>, shared: &Arc<Mutex<State>>) {
    while state.in_use < state.capacity {
        let next = {
            let running = &state.running;
            state
                .waiting
                .iter()
                .enumerate()
                .filter(|(_, w)| {
                    w.limit
                        .is_none_or(|limit| running.get(&w.repo).copied().unwrap_or(0) < limit)
                })
                .min_by_key(|(_, w)| {
                    (
                        state.running.get(&w.repo).copied().unwrap_or(0),
                        state.last_served.get(&w.repo).copied().unwrap_or(0),
                        w.ticket,
                    )
                })
                .map(|(index, _)| index)
        };
        let Some(index) = next else { break };
        let waiter = state.waiting.remove(index);
        if waiter.grant.is_closed() {
            continue;
        }
        let slot = take(&mut state, shared, &waiter.repo);
        // A receiver dropped just now drops the slot, which frees it
        // again (after this lock is released).
        if let Err(slot) = waiter.grant.send(slot) {
            drop(state);
            drop(slot);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Lets the spawned waiters queue up in the order they were spawned.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    #[tokio::test]
    async fn a_freed_slot_goes_to_the_repository_served_least_recently() {
        let slots = Arc::new(FairSlots::new(1));
        let first = slots.acquire("busy", None).await;
        let (order_tx, mut order) = tokio::sync::mpsc::unbounded_channel();
        for (n, repo) in ["busy", "busy", "busy", "quiet"].into_iter().enumerate() {
            let (slots, order_tx) = (Arc::clone(&slots), order_tx.clone());
            tokio::spawn(async move {
                let _slot = slots.acquire(repo, None).await;
                order_tx.send(format!("{repo}{n}")).unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            });
            settle().await;
        }
        drop(first);
        let mut served = Vec::new();
        for _ in 0..4 {
            served.push(order.recv().await.unwrap());
        }
        // The quiet repository's one task comes second, not last.
        assert_eq!(served, ["quiet3", "busy0", "busy1", "busy2"]);
    }

    #[tokio::test]
    async fn the_repository_with_fewer_running_goes_first_and_capacity_holds() {
        let slots = Arc::new(FairSlots::new(2));
        let a = slots.acquire("a", None).await;
        let _b = slots.acquire("a", None).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for repo in ["a", "b"] {
            let (slots, tx) = (Arc::clone(&slots), tx.clone());
            tokio::spawn(async move {
                let slot = slots.acquire(repo, None).await;
                tx.send(repo).unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
                drop(slot);
            });
            settle().await;
        }
        drop(a);
        assert_eq!(rx.recv().await.unwrap(), "b");
        let running = slots.running();
        assert_eq!(running.values().sum::<usize>(), 2, "{running:?}");
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_loses_its_place_and_no_slot() {
        let slots = Arc::new(FairSlots::new(1));
        let held = slots.acquire("a", None).await;
        let gave_up = {
            let slots = Arc::clone(&slots);
            tokio::spawn(async move { slots.acquire("b", None).await })
        };
        settle().await;
        gave_up.abort();
        settle().await;
        let next = {
            let slots = Arc::clone(&slots);
            tokio::spawn(async move { slots.acquire("c", None).await })
        };
        settle().await;
        drop(held);
        let slot = tokio::time::timeout(Duration::from_secs(2), next)
            .await
            .expect("the next waiter gets the slot")
            .unwrap();
        assert_eq!(slots.running().get("c"), Some(&1));
        drop(slot);
        assert!(slots.running().is_empty());
    }

    #[tokio::test]
    async fn a_repository_at_its_own_limit_waits_while_others_go_ahead() {
        let slots = Arc::new(FairSlots::new(3));
        let first = slots.acquire("capped", Some(1)).await;
        let second = {
            let slots = Arc::clone(&slots);
            tokio::spawn(async move { slots.acquire("capped", Some(1)).await })
        };
        settle().await;
        // The capped repository's second task waits with slots free; another
        // repository's task does not wait behind it.
        let other = tokio::time::timeout(Duration::from_secs(2), slots.acquire("other", None))
            .await
            .expect("another repository's task gets a free slot");
        assert_eq!(slots.running().get("capped"), Some(&1));
        assert!(!second.is_finished());
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(2), second)
            .await
            .expect("the capped repository's next task gets the freed place")
            .unwrap();
        assert_eq!(slots.running().get("capped"), Some(&1));
        drop((second, other));
        assert!(slots.running().is_empty());
    }
}
