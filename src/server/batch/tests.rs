use std::sync::Mutex as StdMutex;

use super::*;

/// Records each batch it is given; holds a batch while `hold` is closed; fails or panics on
/// the values it is told to.
#[derive(Debug)]
struct Probe {
    batches: Arc<StdMutex<Vec<Vec<u32>>>>,
    /// When set, a commit waits for one permit before returning.
    hold: Option<Arc<tokio::sync::Semaphore>>,
    /// Entered the commit: one permit per batch.
    entered: Arc<tokio::sync::Semaphore>,
}

impl Default for Probe {
    fn default() -> Self {
        Probe {
            batches: Arc::default(),
            hold: None,
            entered: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }
}

impl Commit for Probe {
    type Item = u32;
    type Output = u32;

    async fn commit(&self, items: &[u32]) -> Result<Vec<u32>, StoreError> {
        self.batches.lock().unwrap().push(items.to_vec());
        self.entered.add_permits(1);
        if let Some(hold) = &self.hold {
            hold.acquire().await.unwrap().forget();
        }
        if items.contains(&666) {
            panic!("the devil's item");
        }
        if items.contains(&13) {
            return Err(StoreError::Corrupt("unlucky".into()));
        }
        Ok(items.iter().map(|i| i * 10).collect())
    }
}

/// A writer whose commits wait for a permit of `hold` (each adds a permit to `entered`).
struct Held {
    writer: Arc<GroupCommit<Probe>>,
    batches: Arc<StdMutex<Vec<Vec<u32>>>>,
    hold: Arc<tokio::sync::Semaphore>,
    entered: Arc<tokio::sync::Semaphore>,
}

fn held() -> Held {
    let hold = Arc::new(tokio::sync::Semaphore::new(0));
    let probe = Probe {
        hold: Some(hold.clone()),
        ..Probe::default()
    };
    Held {
        batches: probe.batches.clone(),
        entered: probe.entered.clone(),
        writer: Arc::new(GroupCommit::start(probe, 100)),
        hold,
    }
}

async fn until_submitted(w: &GroupCommit<Probe>, n: u64) {
    while w.stats().submitted < n {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn what_waits_during_a_commit_is_committed_together() {
    let Held {
        writer: w,
        batches,
        hold,
        entered,
    } = held();
    let first = tokio::spawn({
        let w = w.clone();
        async move { w.submit(1).await }
    });
    entered.acquire().await.unwrap().forget();
    let rest: Vec<_> = (2..=6)
        .map(|i| {
            let w = w.clone();
            tokio::spawn(async move { w.submit(i).await })
        })
        .collect();
    until_submitted(&w, 6).await;
    hold.add_permits(2);
    assert_eq!(first.await.unwrap().unwrap(), 10);
    let mut got = Vec::new();
    for r in rest {
        got.push(r.await.unwrap().unwrap());
    }
    assert_eq!(got, [20, 30, 40, 50, 60], "each its own result");
    let mut seen = batches.lock().unwrap().clone();
    seen[1].sort();
    assert_eq!(seen, [vec![1], vec![2, 3, 4, 5, 6]]);
    assert_eq!(
        w.stats(),
        BatchStats {
            submitted: 6,
            batches: 2,
            committed: 6,
            failed: 0,
            largest: 5
        }
    );
}

#[tokio::test]
async fn an_error_or_a_panic_fails_every_item_of_its_batch_only() {
    let Held {
        writer: w,
        hold,
        entered,
        ..
    } = held();
    let first = tokio::spawn({
        let w = w.clone();
        async move { w.submit(1).await }
    });
    entered.acquire().await.unwrap().forget();
    let doomed: Vec<_> = [2, 13, 3]
        .into_iter()
        .map(|i| {
            let w = w.clone();
            tokio::spawn(async move { w.submit(i).await })
        })
        .collect();
    until_submitted(&w, 4).await;
    hold.add_permits(10);
    assert_eq!(first.await.unwrap().unwrap(), 10);
    for r in doomed {
        let e = r.await.unwrap().unwrap_err();
        assert!(e.to_string().contains("unlucky"), "{e}");
    }
    let e = w.submit(666).await.unwrap_err();
    assert!(e.to_string().contains("panicked"), "{e}");
    assert_eq!(w.submit(4).await.unwrap(), 40, "the writer lives on");
    let stats = w.stats();
    assert_eq!((stats.batches, stats.failed, stats.committed), (4, 2, 2));
}

#[tokio::test]
async fn close_commits_what_waits_then_refuses() {
    let Held {
        writer: w,
        batches,
        hold,
        entered,
    } = held();
    let first = tokio::spawn({
        let w = w.clone();
        async move { w.submit(1).await }
    });
    entered.acquire().await.unwrap().forget();
    let waiting = tokio::spawn({
        let w = w.clone();
        async move { w.submit(2).await }
    });
    until_submitted(&w, 2).await;
    let closed = tokio::spawn({
        let w = w.clone();
        async move { w.close().await }
    });
    hold.add_permits(10);
    closed.await.unwrap();
    assert_eq!(first.await.unwrap().unwrap(), 10);
    assert_eq!(waiting.await.unwrap().unwrap(), 20, "flushed on close");
    assert!(matches!(w.submit(3).await, Err(NotCommitted::Closed)));
    assert_eq!(batches.lock().unwrap().clone(), [vec![1], vec![2]]);
}
