//! Group commit: many requests, one transaction.
//!
//! A request handler [`submit`](GroupCommit::submit)s what it verified and parsed, and waits.
//! One task per [`GroupCommit`] takes every item waiting (at most its `max_items`) and hands
//! them to its [`Commit`], which writes them in one transaction; each handler then gets its own
//! item's result, and only then answers. There is no timer: while one batch commits, the next
//! one gathers, so a lone request waits for nothing but its own commit, and under load a batch
//! holds what arrived during the previous commit (one fsync for all of them).
//!
//! An error (or a panic) in a commit fails every item of that batch: nothing of it was written,
//! every handler answers 503, and the senders retry. [`close`](GroupCommit::close) refuses new
//! items, commits those already waiting, and returns when the last batch is done.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::FutureExt;
use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::store::StoreError;

/// Writes a batch of items in one transaction.
pub trait Commit: Send + Sync + 'static {
    type Item: Send + 'static;
    type Output: Send + 'static;

    /// Commits `items` together: one output per item, in order, or an error for all of them
    /// (then nothing of the batch was written).
    fn commit(
        &self,
        items: &[Self::Item],
    ) -> impl Future<Output = Result<Vec<Self::Output>, StoreError>> + Send;
}

/// Why a submitted item was not committed; the handler answers 503 (the sender retries).
#[derive(Debug, Clone, thiserror::Error)]
pub enum NotCommitted {
    #[error("the batch failed to commit: {0}")]
    Failed(Arc<str>),
    #[error("intake is shutting down")]
    Closed,
}

/// Counters of one [`GroupCommit`], for logs, tests and, later, metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Items handed to [`GroupCommit::submit`] (including those not committed yet).
    pub submitted: u64,
    /// Commits attempted (each one transaction).
    pub batches: u64,
    /// Items in the batches that committed.
    pub committed: u64,
    /// Batches that failed (every item answered 503).
    pub failed: u64,
    /// The most items one batch held.
    pub largest: u64,
}

#[derive(Debug, Default)]
struct Counters {
    submitted: AtomicU64,
    batches: AtomicU64,
    committed: AtomicU64,
    failed: AtomicU64,
    largest: AtomicU64,
}

type Reply<C> = oneshot::Sender<Result<<C as Commit>::Output, NotCommitted>>;

/// The batching writer in front of one [`Commit`] (see the module doc).
pub struct GroupCommit<C: Commit> {
    queue: mpsc::Sender<(C::Item, Reply<C>)>,
    counters: Arc<Counters>,
    closing: Arc<Notify>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl<C: Commit> std::fmt::Debug for GroupCommit<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<C: Commit> GroupCommit<C> {
    /// Starts the committing task (on the current tokio runtime): batches of at most
    /// `max_items`.
    pub fn start(commit: C, max_items: usize) -> Self {
        let max_items = max_items.max(1);
        let (queue, rx) = mpsc::channel(max_items * 4);
        let counters = Arc::new(Counters::default());
        let closing = Arc::new(Notify::new());
        let task = tokio::spawn(run(
            commit,
            rx,
            max_items,
            counters.clone(),
            closing.clone(),
        ));
        GroupCommit {
            queue,
            counters,
            closing,
            task: Mutex::new(Some(task)),
        }
    }

    /// Queues `item` for the next batch and waits until that batch committed (or failed).
    pub async fn submit(&self, item: C::Item) -> Result<C::Output, NotCommitted> {
        let (reply, answer) = oneshot::channel();
        self.counters.submitted.fetch_add(1, Ordering::Relaxed);
        if self.queue.send((item, reply)).await.is_err() {
            return Err(NotCommitted::Closed);
        }
        // The task never drops a reply unanswered unless it is gone.
        answer.await.unwrap_or(Err(NotCommitted::Closed))
    }

    /// Refuses new items, commits the waiting ones, and returns once the task has finished.
    pub async fn close(&self) {
        self.closing.notify_one();
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }

    pub fn stats(&self) -> BatchStats {
        let c = &self.counters;
        BatchStats {
            submitted: c.submitted.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            committed: c.committed.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            largest: c.largest.load(Ordering::Relaxed),
        }
    }
}

async fn run<C: Commit>(
    commit: C,
    mut rx: mpsc::Receiver<(C::Item, Reply<C>)>,
    max_items: usize,
    counters: Arc<Counters>,
    closing: Arc<Notify>,
) {
    let mut waiting = Vec::with_capacity(max_items);
    loop {
        tokio::select! {
            biased;
            () = closing.notified() => {
                // Senders now fail; what is buffered is still received, then `recv_many`
                // answers 0.
                rx.close();
                continue;
            }
            n = rx.recv_many(&mut waiting, max_items) => {
                if n == 0 {
                    return; // closed, and nothing is left
                }
            }
        }
        let (items, replies): (Vec<C::Item>, Vec<Reply<C>>) = waiting.drain(..).unzip();
        let n = items.len() as u64;
        counters.batches.fetch_add(1, Ordering::Relaxed);
        counters.largest.fetch_max(n, Ordering::Relaxed);
        let result = AssertUnwindSafe(commit.commit(&items)).catch_unwind().await;
        let outputs = match result {
            Ok(Ok(outputs)) if outputs.len() == items.len() => Ok(outputs),
            Ok(Ok(outputs)) => Err(format!(
                "{} results for {} items (a bug)",
                outputs.len(),
                items.len()
            )),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the commit panicked".to_string()),
        };
        match outputs {
            Ok(outputs) => {
                counters.committed.fetch_add(n, Ordering::Relaxed);
                for (reply, output) in replies.into_iter().zip(outputs) {
                    // The handler may be gone (its client hung up): the item is committed
                    // anyway, and a redelivery will be a duplicate.
                    let _ = reply.send(Ok(output));
                }
            }
            Err(message) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %message, items = n, "committing a batch failed");
                let message: Arc<str> = message.into();
                for reply in replies {
                    let _ = reply.send(Err(NotCommitted::Failed(message.clone())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
