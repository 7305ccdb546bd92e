//! Pacing GitHub calls per installation, within GitHub's limits, on the App's clock.
//!
//! Three gates, checked before every call made with an installation token
//! ([`Pacer::admit`]), in this order:
//!
//! 1. **The shared pause.** A 403/429 rate-limit answer (`Retry-After`, or
//!    `x-ratelimit-remaining: 0` with `x-ratelimit-reset`) pauses the whole installation
//!    ([`Pacer::pause`]): every later call of every worker of this process is refused without
//!    reaching GitHub until the pause ends, not only the job that hit it.
//! 2. **The primary budget** (about 5,000 requests an hour per installation), as GitHub reports
//!    it in the `x-ratelimit-remaining` / `x-ratelimit-reset` headers of every answer
//!    ([`Pacer::observe`]); counted down locally between answers. When only
//!    [`PRIMARY_RESERVE`] requests remain, calls wait for the reset.
//! 3. **The content budget** (writes: issues, comments, labels, edits), below GitHub's
//!    secondary limits: a `governor` GCRA limiter per installation derived from
//!    [`ContentBudget`] (defaults 80 a minute and 500 an hour) so that no sliding minute and no
//!    sliding hour ever holds more than the budget, while the long-run rate stays within 2 % of
//!    the binding limit.
//!
//! A refused call never reaches GitHub: it returns [`Paced`] (which gate, until when), and the
//! worker postpones its job without counting an attempt, so nothing sleeps and the job queue
//! stays the one place where waiting work is visible. A job refused by the content gate joins
//! the installation's **queue** ([`Pacer::postpone`]): the most urgent first ([`Priority`]), then
//! in the order they were refused, a job refused again keeping its place. While jobs wait, the
//! content gate admits only the writes of the job woken for the next permit ([`Pacer::wake`],
//! which the worker turns into a due job); any other job's write (a new one, even a CRITICAL
//! one) joins the queue at its rank. So every permit goes to the most urgent waiting job, a
//! job that writes nothing leaves its permit to the next one, one that writes several times
//! keeps its turn, and a backlog of thousands of jobs is leased about once per write instead of
//! once per permit. The queue lives in the process; each queued job also gets a fallback time
//! in the store, so a restart loses no job, only the order until it is rebuilt.
//!
//! Replicas share the pause and the content budget through [`SharedPacing`] (the store, in
//! `lever serve`: one GCRA per installation in the database, taken atomically): with it, the
//! content gate is the shared budget rather than the process's own limiter, so two processes
//! on one database together stay within the budget, and a rate-limit answer seen by one pauses
//! every replica. Without it (unit tests, a bare `GitHub` client) the process's limiter paces
//! alone. The primary budget needs no sharing: GitHub reports what remains for the whole
//! installation in every answer, to every replica. See `docs/DESIGN.md`, "Pacing".

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::clock::Clock;

/// Requests of the primary budget left untouched: at this many, calls wait for the reset (a
/// margin for requests already in flight on other workers).
pub const PRIMARY_RESERVE: u64 = 10;
/// How long a rate-limit answer without `Retry-After` or reset pauses an installation
/// (GitHub: "wait for at least one minute").
pub const DEFAULT_PAUSE: chrono::Duration = chrono::Duration::seconds(60);
/// Added to each window when deriving the limiter, for the skew between Lever's clock and
/// GitHub's and the time a request travels.
const WINDOW_MARGIN: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// Content-creating requests Lever allows itself per installation (`[github]
/// content_per_minute` and `content_per_hour`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentBudget {
    per_minute: NonZeroU32,
    per_hour: NonZeroU32,
}

impl Default for ContentBudget {
    /// GitHub's documented secondary limits: 80 a minute, 500 an hour.
    fn default() -> Self {
        ContentBudget::new(80, 500).expect("non-zero")
    }
}

impl ContentBudget {
    /// `None` when either is zero.
    pub fn new(per_minute: u32, per_hour: u32) -> Option<ContentBudget> {
        Some(ContentBudget {
            per_minute: NonZeroU32::new(per_minute)?,
            per_hour: NonZeroU32::new(per_hour)?,
        })
    }

    pub fn per_minute(&self) -> u32 {
        self.per_minute.get()
    }

    pub fn per_hour(&self) -> u32 {
        self.per_hour.get()
    }

    /// Writes allowed back to back after a quiet spell: a fiftieth of the binding budget (the
    /// hour's when `per_hour <= 60 × per_minute`, else the minute's), at least 1: 10 of the
    /// default 500 an hour. The burst costs the long-run rate as much (`period`), so it stays
    /// within 2 % of it.
    pub fn burst(&self) -> u32 {
        let (m, h) = (self.per_minute(), self.per_hour());
        let binding = if u64::from(h) <= 60 * u64::from(m) {
            h
        } else {
            m
        };
        (binding / 50).clamp(1, m.min(h))
    }

    /// The spacing of writes once the burst is spent. A GCRA limiter with burst `b` and period
    /// `T` admits at most `b + ceil(W / T) - 1` requests in any window of length `W`; `T` is
    /// the smallest period keeping that within both budgets (each window widened by a second),
    /// rounded up to the nanosecond. Defaults: 7.334 s, about 491 writes an hour.
    pub fn period(&self) -> Duration {
        let b = self.burst();
        let spacing = |window: Duration, n: u32| {
            let slots = u128::from(n - b + 1);
            let nanos = (window + WINDOW_MARGIN).as_nanos().div_ceil(slots);
            Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
        };
        spacing(MINUTE, self.per_minute()).max(spacing(HOUR, self.per_hour()))
    }

    fn quota(&self) -> Quota {
        Quota::with_period(self.period())
            .expect("a positive period")
            .allow_burst(NonZeroU32::new(self.burst()).expect("at least 1"))
    }
}

/// How urgent a job's GitHub work is, 0 to 100 (higher goes first when the content budget is
/// scarce). Derived by the worker from the job kind and its group (`worker::pacing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Priority(u8);

impl Priority {
    pub const MAX: Priority = Priority(100);

    /// `n`, capped at 100.
    pub fn new(n: u8) -> Priority {
        Priority(n.min(100))
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// How far behind its permit a job of this priority is scheduled: jobs due at the same
    /// permit are leased (by `run_at`) in priority order.
    fn offset(self) -> chrono::Duration {
        chrono::Duration::microseconds(i64::from(100 - self.0))
    }
}

/// What a call is, for the content budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// GET: counts against the primary budget only.
    Read,
    /// POST, PATCH, PUT, DELETE: also against the content budget.
    Write,
}

/// Which gate refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Gate {
    /// The installation is paused after a rate-limit answer.
    Paused,
    /// The primary budget is spent until its reset.
    Primary,
    /// The content budget has no permit yet.
    Content,
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Gate::Paused => "paused after a rate-limit answer",
            Gate::Primary => "primary rate limit spent",
            Gate::Content => "content budget spent",
        })
    }
}

/// A call Lever did not make, and when it could be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paced {
    pub installation: u64,
    pub until: DateTime<Utc>,
    pub gate: Gate,
}

impl fmt::Display for Paced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "installation {}: {} until {}",
            self.installation,
            self.gate,
            self.until.to_rfc3339()
        )
    }
}

/// The primary budget as GitHub last reported it (`x-ratelimit-remaining`, `-reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateHeaders {
    pub remaining: Option<u64>,
    pub reset: Option<DateTime<Utc>>,
}

impl RateHeaders {
    pub fn from_headers(h: &http::HeaderMap) -> RateHeaders {
        let num = |k: &str| {
            h.get(k)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        RateHeaders {
            remaining: num("x-ratelimit-remaining"),
            reset: num("x-ratelimit-reset")
                .and_then(|s| i64::try_from(s).ok())
                .and_then(|s| DateTime::from_timestamp(s, 0)),
        }
    }
}

/// The App's clock as a `governor` clock: time since the Unix epoch.
#[derive(Debug, Clone)]
struct AppClock(Arc<dyn Clock>);

impl GovernorClock for AppClock {
    type Instant = Duration;
    fn now(&self) -> Duration {
        (self.0.now() - DateTime::UNIX_EPOCH)
            .to_std()
            .unwrap_or_default()
    }
}

fn at(since_epoch: Duration) -> DateTime<Utc> {
    DateTime::UNIX_EPOCH + chrono::Duration::from_std(since_epoch).unwrap_or(chrono::Duration::MAX)
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, AppClock, NoOpMiddleware<Duration>>;

/// One installation's pacing state.
struct Installation {
    content: Limiter,
    paused_until: Option<DateTime<Utc>>,
    primary: Option<(u64, DateTime<Utc>)>,
    /// Jobs refused by the content gate, in the order they get its permits: the most urgent
    /// first, then the one refused first. Its key is kept while the job waits, so a job that
    /// is refused again (it writes several times, or a permit went elsewhere) keeps its place.
    queue: BTreeMap<(Reverse<Priority>, u64), i64>,
    /// Job id → its key in `queue`.
    queued: HashMap<i64, (Reverse<Priority>, u64)>,
    /// How many queued jobs have each priority: where a new job's place is without walking
    /// the queue (thousands wait during a flood, and each new job asks).
    by_priority: [usize; Priority::MAX.0 as usize + 1],
    /// The next key's sequence number.
    seq: u64,
    /// When the content gate has its next permit, as its last refusal said.
    next_permit: DateTime<Utc>,
    /// The queued job woken for the next permit (and when): the only job whose writes the
    /// content gate admits while others wait.
    woken: Option<(i64, DateTime<Utc>)>,
}

impl Installation {
    /// `job` is no longer the woken one (if it was): the turn passes to the next.
    fn unwake(&mut self, job: i64) {
        if self.woken.is_some_and(|(id, _)| id == job) {
            self.woken = None;
        }
    }

    /// How many queued jobs are at least as urgent as `priority`.
    fn at_least(&self, priority: Priority) -> usize {
        self.by_priority[usize::from(priority.0)..].iter().sum()
    }

    fn dequeue(&mut self, job: i64) {
        if let Some(key) = self.queued.remove(&job) {
            self.queue.remove(&key);
            self.by_priority[usize::from(key.0.0.0)] -= 1;
        }
        self.unwake(job);
    }

    /// The queue's turn: with jobs waiting, only the woken one's writes reach the content
    /// budget; anyone else's (a new job, or a queued one whose fallback time came first)
    /// waits its turn in the queue. Writes outside a job (no [`CURRENT_JOB`]) are not queued.
    fn turn(&self, installation: u64, job: Option<i64>, now: DateTime<Utc>) -> Result<(), Paced> {
        match job {
            Some(job) if !self.queue.is_empty() && self.woken.is_none_or(|(id, _)| id != job) => {
                Err(Paced {
                    installation,
                    until: self.next_permit.max(now),
                    gate: Gate::Content,
                })
            }
            _ => Ok(()),
        }
    }
}

tokio::task_local! {
    /// The job whose work is running (set by the worker around each job), so that the content
    /// gate can keep the queue's order.
    pub static CURRENT_JOB: i64;
}

fn current_job() -> Option<i64> {
    CURRENT_JOB.try_with(|id| *id).ok()
}

/// How long a woken job may take to come and write before the next one is woken instead (it
/// may have been leased elsewhere, or finished without telling).
pub const WAKE_STALE: chrono::Duration = chrono::Duration::minutes(2);

/// Where every replica's pacing meets: the content budget's permits and the pause after a
/// rate-limit answer, shared by the processes on one database (implemented over the store by
/// the composition root). Errors are the backend's, as text: the pacer then fails closed.
#[async_trait::async_trait]
pub trait SharedPacing: Send + Sync {
    /// Takes a content permit (GCRA with `period` and `burst`) unless paused: `None` when
    /// taken, else until when not, and whether because of a pause.
    async fn take_permit(
        &self,
        installation: u64,
        now: DateTime<Utc>,
        period: Duration,
        burst: u32,
    ) -> Result<Option<(DateTime<Utc>, bool)>, String>;
    /// Pauses every replica's calls until `until` (a later pause wins).
    async fn pause(&self, installation: u64, until: DateTime<Utc>) -> Result<(), String>;
    /// Until when the installation is paused, if a replica paused it.
    async fn paused_until(&self, installation: u64) -> Result<Option<DateTime<Utc>>, String>;
}

/// How long a call waits when the shared pacing cannot be read (the database is unreachable):
/// failing closed, so that a replica never writes beyond a budget it cannot see.
pub const SHARED_UNAVAILABLE_WAIT: chrono::Duration = chrono::Duration::seconds(5);

/// Per-installation pacing of one process (shared by its workers through the `GitHub`
/// client), and of every replica through [`SharedPacing`] when it has one.
pub struct Pacer {
    clock: Arc<dyn Clock>,
    budget: ContentBudget,
    shared: Option<Arc<dyn SharedPacing>>,
    installations: Mutex<HashMap<u64, Installation>>,
    /// Account login (lower case) → its installation.
    owners: Mutex<HashMap<String, u64>>,
    /// Where the calls and waits are counted (`GET /metrics`), when set.
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl fmt::Debug for Pacer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pacer")
            .field("budget", &self.budget)
            .finish()
    }
}

impl Pacer {
    pub fn new(budget: ContentBudget, clock: Arc<dyn Clock>) -> Pacer {
        Pacer {
            clock,
            budget,
            shared: None,
            installations: Mutex::default(),
            owners: Mutex::default(),
            metrics: None,
        }
    }

    /// Counts the calls paced here, and their waits, in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Pacer {
        self.metrics = Some(metrics);
        self
    }

    /// Counts one call as an installation that ended with `outcome` (a call GitHub answered,
    /// or [`GitHubError::Paced`](super::GitHubError::Paced) for one Lever did not make, whose
    /// wait is counted too).
    pub(super) fn count(&self, call: Call, outcome: Result<(), &super::GitHubError>) {
        use super::GitHubError as E;
        let Some(m) = &self.metrics else {
            return;
        };
        let label = match outcome {
            Ok(()) => "ok",
            Err(E::NotFound(_)) => "not-found",
            Err(E::Validation { .. }) => "validation",
            Err(E::Unauthorized(_)) => "unauthorized",
            Err(E::Forbidden(_)) => "forbidden",
            Err(E::RateLimited { .. }) => "rate-limited",
            Err(E::Paced(_)) => "paced",
            Err(E::Server { .. }) => "server-error",
            Err(E::Transport(_)) => "transport",
            Err(E::Other { .. }) => "other",
        };
        m.github_call(call == Call::Write, label);
        if let Err(E::Paced(p)) = outcome {
            let gate = match p.gate {
                Gate::Paused => "paused",
                Gate::Primary => "primary",
                Gate::Content => "content",
            };
            let wait = (p.until - self.now()).to_std().unwrap_or_default();
            m.github_wait(gate, wait);
        }
    }

    /// Shares the pause and the content budget with every replica through `shared`.
    pub fn with_shared(mut self, shared: Arc<dyn SharedPacing>) -> Pacer {
        self.shared = Some(shared);
        self
    }

    pub fn budget(&self) -> ContentBudget {
        self.budget
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Installation>> {
        self.installations.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with<T>(&self, installation: u64, f: impl FnOnce(&mut Installation) -> T) -> T {
        let mut all = self.lock();
        let st = all.entry(installation).or_insert_with(|| Installation {
            content: RateLimiter::direct_with_clock(
                self.budget.quota(),
                AppClock(self.clock.clone()),
            ),
            paused_until: None,
            primary: None,
            queue: BTreeMap::new(),
            by_priority: [0; Priority::MAX.0 as usize + 1],
            queued: HashMap::new(),
            seq: 0,
            next_permit: DateTime::<Utc>::MIN_UTC,
            woken: None,
        });
        f(st)
    }

    /// The pause and the primary budget: whether any call may be made now.
    fn open(st: &mut Installation, installation: u64, now: DateTime<Utc>) -> Result<(), Paced> {
        let refuse = |until, gate| {
            Err(Paced {
                installation,
                until,
                gate,
            })
        };
        match st.paused_until {
            Some(until) if until > now => return refuse(until, Gate::Paused),
            Some(_) => st.paused_until = None,
            None => {}
        }
        match st.primary {
            Some((remaining, reset)) if reset > now && remaining <= PRIMARY_RESERVE => {
                refuse(reset, Gate::Primary)
            }
            Some((_, reset)) if reset <= now => {
                st.primary = None;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Remembers that `owner`'s repositories belong to `installation` (an App is installed
    /// once per account), so [`Pacer::blocked`] can answer before the repository's
    /// installation is looked up.
    pub fn learn_owner(&self, owner: &str, installation: u64) {
        self.owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(owner.to_ascii_lowercase(), installation);
    }

    /// `owner`'s installation, if [`Pacer::learn_owner`] told it.
    fn installation_of(&self, owner: &str) -> Option<u64> {
        self.owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&owner.to_ascii_lowercase())
            .copied()
    }

    /// Whether calls for `owner`'s repositories are paused (or out of primary budget) now, as
    /// far as this process knows: then not even the App's lookup of the installation is made.
    pub fn blocked(&self, owner: &str) -> Option<Paced> {
        let id = self.installation_of(owner)?;
        let now = self.now();
        self.with(id, |st| Pacer::open(st, id, now)).err()
    }

    /// Whether a call may be made now; a write takes a permit of the content budget. A refusal
    /// says until when (a refused call takes nothing). The process's own gates only: see
    /// [`Pacer::admit_shared`] for what the GitHub client calls.
    pub fn admit(&self, installation: u64, call: Call) -> Result<(), Paced> {
        self.admit_local(installation, call, true)
    }

    /// [`Pacer::admit`] across replicas: the local pause and primary budget first (no round
    /// trip when they refuse), then the shared pause, and for a write a permit of the shared
    /// content budget instead of the process's own. Without [`SharedPacing`], `admit`.
    pub async fn admit_shared(&self, installation: u64, call: Call) -> Result<(), Paced> {
        let Some(shared) = self.shared.clone() else {
            return self.admit_local(installation, call, true);
        };
        self.admit_local(installation, call, false)?;
        let now = self.now();
        let refused = |until, gate| Paced {
            installation,
            until,
            gate,
        };
        let unavailable = |e: String| {
            tracing::warn!(installation, error = %e, "shared GitHub pacing unreadable; waiting");
            refused(now + SHARED_UNAVAILABLE_WAIT, Gate::Paused)
        };
        match call {
            Call::Write => {
                match shared
                    .take_permit(installation, now, self.budget.period(), self.budget.burst())
                    .await
                {
                    Ok(None) => Ok(()),
                    Ok(Some((until, true))) => {
                        self.pause_local(installation, until);
                        Err(refused(until, Gate::Paused))
                    }
                    Ok(Some((until, false))) => {
                        self.with(installation, |st| st.next_permit = until);
                        Err(refused(until, Gate::Content))
                    }
                    Err(e) => Err(unavailable(e)),
                }
            }
            Call::Read => match shared.paused_until(installation).await {
                Ok(Some(until)) if until > now => {
                    self.pause_local(installation, until);
                    Err(refused(until, Gate::Paused))
                }
                Ok(_) => Ok(()),
                Err(e) => Err(unavailable(e)),
            },
        }
    }

    fn admit_local(&self, installation: u64, call: Call, content: bool) -> Result<(), Paced> {
        let now = self.now();
        let job = current_job();
        self.with(installation, |st| {
            Pacer::open(st, installation, now)?;
            if call == Call::Write {
                st.turn(installation, job, now)?;
                // `content`: the process's own limiter is the content budget (no replicas).
                if content && let Err(not_until) = st.content.check() {
                    let until = at(not_until.earliest_possible());
                    st.next_permit = until;
                    return Err(Paced {
                        installation,
                        until,
                        gate: Gate::Content,
                    });
                }
            }
            if let Some((remaining, _)) = &mut st.primary {
                *remaining = remaining.saturating_sub(1);
            }
            Ok(())
        })
    }

    /// Records the primary budget GitHub reported in an answer's headers.
    pub fn observe(&self, installation: u64, rate: RateHeaders) {
        if let (Some(remaining), Some(reset)) = (rate.remaining, rate.reset) {
            self.with(installation, |st| st.primary = Some((remaining, reset)));
        }
    }

    /// Pauses every call of `installation` until `until` (a later pause wins), in this process.
    pub fn pause(&self, installation: u64, until: DateTime<Utc>) -> Paced {
        let until = self.pause_local(installation, until);
        tracing::warn!(installation, until = %until.to_rfc3339(), "GitHub rate limit answered; pausing the installation");
        Paced {
            installation,
            until,
            gate: Gate::Paused,
        }
    }

    /// [`Pacer::pause`], and in every replica through [`SharedPacing`] when there is one.
    pub async fn pause_shared(&self, installation: u64, until: DateTime<Utc>) -> Paced {
        let paced = self.pause(installation, until);
        if let Some(shared) = &self.shared
            && let Err(e) = shared.pause(installation, paced.until).await
        {
            tracing::warn!(installation, error = %e, "could not share the pause with the other replicas");
        }
        paced
    }

    fn pause_local(&self, installation: u64, until: DateTime<Utc>) -> DateTime<Utc> {
        self.with(installation, |st| {
            let until = st.paused_until.map_or(until, |p| p.max(until));
            st.paused_until = Some(until);
            until
        })
    }

    /// When a job refused by `paced` should run again (`job`: its id, when it is a queued job).
    ///
    /// For a pause or the primary budget: when it ends, offset by the priority so jobs due
    /// together leave in priority order. For the content budget, `job` joins the
    /// installation's queue (or keeps its place there) and is woken by [`Pacer::wake`] when a
    /// permit is its turn; the time returned is only a fallback, should this process stop
    /// before then: after those ahead of it, two periods each (late rather than early: a job
    /// due before its turn is refused again, which costs a lease).
    pub fn postpone(&self, paced: &Paced, job: Option<i64>, priority: Priority) -> DateTime<Utc> {
        let now = self.now();
        let base = paced.until.max(now);
        let Some(job) = job.filter(|_| paced.gate == Gate::Content) else {
            if let Some(job) = job {
                // Refused by a pause: it keeps its place in the queue, but the turn passes on
                // once the pause ends.
                self.with(paced.installation, |st| st.unwake(job));
            }
            return base + priority.offset();
        };
        self.with(paced.installation, |st| {
            let ahead = match st.queued.get(&job) {
                // Refused again: it keeps its place, unless it became more urgent.
                Some(key) if key.0.0 >= priority => st.queue.range(..*key).count(),
                _ => {
                    st.dequeue(job);
                    st.seq += 1;
                    let key = (Reverse(priority), st.seq);
                    st.queue.insert(key, job);
                    st.queued.insert(job, key);
                    st.by_priority[usize::from(priority.0)] += 1;
                    // Last of its priority: behind every job at least as urgent.
                    st.at_least(priority) - 1
                }
            };
            st.unwake(job);
            st.next_permit = st.next_permit.max(paced.until);
            self.fallback_after(ahead, base, priority)
        })
    }

    /// The fallback time of a job with `ahead` jobs before it in the queue, its turn not
    /// before `base`: two periods per job up to and including it (see [`Pacer::postpone`]).
    fn fallback_after(
        &self,
        ahead: usize,
        base: DateTime<Utc>,
        priority: Priority,
    ) -> DateTime<Utc> {
        let period =
            chrono::Duration::from_std(self.budget.period()).unwrap_or(chrono::Duration::MAX);
        let ahead = i32::try_from(ahead + 1).unwrap_or(i32::MAX / 2);
        base.checked_add_signed(period * ahead.saturating_mul(2))
            .unwrap_or(base)
            + priority.offset()
    }

    /// The installation of `owner`'s repositories when its content queue already holds jobs,
    /// as far as this process knows: a new job that writes there would only be leased,
    /// refused by the queue's turn and postponed into it, so it can join the queue when it is
    /// enqueued instead ([`Pacer::queue_place`], then [`Pacer::enqueue`] once it has an id).
    pub fn queue_of(&self, owner: &str) -> Option<u64> {
        let id = self.installation_of(owner)?;
        self.with(id, |st| !st.queue.is_empty()).then_some(id)
    }

    /// The fallback time a new job of `priority` would get were it queued in `installation`'s
    /// content queue now (what [`Pacer::postpone`] would answer): the `run_at` to store it
    /// with, so that the store's lease leaves it to the queue.
    pub fn queue_place(&self, installation: u64, priority: Priority) -> DateTime<Utc> {
        let now = self.now();
        self.with(installation, |st| {
            let base = st.next_permit.max(now);
            // Behind every queued job at least as urgent (those refused before it).
            self.fallback_after(st.at_least(priority), base, priority)
        })
    }

    /// Queues `job`, not yet leased, in `installation`'s content queue at `priority`, as if it
    /// had been refused by the content gate now: it is woken at its turn ([`Pacer::wake`]).
    /// Returns its fallback time. See [`Pacer::queue_of`].
    pub fn enqueue(&self, installation: u64, job: i64, priority: Priority) -> DateTime<Utc> {
        let now = self.now();
        let until = self.with(installation, |st| st.next_permit.max(now));
        self.postpone(
            &Paced {
                installation,
                until,
                gate: Gate::Content,
            },
            Some(job),
            priority,
        )
    }

    /// The queued job whose turn it is now, if any: the head of the queue of an installation
    /// whose content gate has a permit (it is open, nobody else was woken for it, its next
    /// permit has come). The worker leases it at once
    /// ([`Store::lease_job_id`](crate::store::Store::lease_job_id)); a job it cannot lease
    /// (gone, or running) leaves the queue with [`Pacer::finished`].
    pub fn wake(&self) -> Option<i64> {
        let now = self.now();
        let mut all = self.lock();
        for (id, st) in all.iter_mut() {
            if st.woken.is_some_and(|(_, at)| now - at >= WAKE_STALE) {
                st.woken = None;
            }
            if st.woken.is_some() || st.next_permit > now || Pacer::open(st, *id, now).is_err() {
                continue;
            }
            if let Some((_, job)) = st.queue.first_key_value() {
                st.woken = Some((*job, now));
                return Some(*job);
            }
        }
        None
    }

    /// When [`Pacer::wake`] has a job to wake next, if any job waits for a permit.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        let all = self.lock();
        all.values()
            .filter(|st| !st.queue.is_empty())
            .map(|st| match st.woken {
                Some((_, at)) => at + WAKE_STALE,
                None => {
                    let mut at = st.next_permit;
                    if let Some(p) = st.paused_until {
                        at = at.max(p);
                    }
                    if let Some((remaining, reset)) = st.primary
                        && remaining <= PRIMARY_RESERVE
                    {
                        at = at.max(reset);
                    }
                    at
                }
            })
            .min()
    }

    /// `job` ran without being refused by the content gate (done, failed or postponed for
    /// another reason): it leaves the queue, and if it was woken, the next job's turn comes.
    pub fn finished(&self, job: i64) {
        let mut all = self.lock();
        for st in all.values_mut() {
            st.dequeue(job);
        }
    }

    /// Jobs waiting in `installation`'s queue for the content budget.
    pub fn waiting(&self, installation: u64) -> usize {
        self.with(installation, |st| st.queue.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn pacer(per_minute: u32, per_hour: u32) -> (Pacer, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(t0()));
        (
            Pacer::new(
                ContentBudget::new(per_minute, per_hour).unwrap(),
                clock.clone(),
            ),
            clock,
        )
    }

    /// Writes as fast as the pacer admits them for `span`, jumping the clock to each refusal's
    /// `until`: the times of the admitted writes.
    fn drain(pacer: &Pacer, clock: &ManualClock, span: chrono::Duration) -> Vec<DateTime<Utc>> {
        let end = clock.now() + span;
        let mut out = vec![];
        while clock.now() < end {
            match pacer.admit(7, Call::Write) {
                Ok(()) => out.push(clock.now()),
                Err(p) => {
                    assert_eq!(p.gate, Gate::Content);
                    assert!(p.until > clock.now(), "a refusal names a later instant");
                    clock.set(p.until);
                }
            }
        }
        out.retain(|t| *t < end);
        out
    }

    /// The most admitted writes in any window of `len` (half-open, as GitHub counts).
    fn max_in_window(times: &[DateTime<Utc>], len: chrono::Duration) -> usize {
        (0..times.len())
            .map(|i| {
                times[i..]
                    .iter()
                    .take_while(|t| **t < times[i] + len)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn default_budget_shape() {
        let b = ContentBudget::default();
        assert_eq!((b.per_minute(), b.per_hour(), b.burst()), (80, 500, 10));
        // (3600 s + 1 s) / 491 permits after the burst.
        assert_eq!(b.period(), Duration::from_nanos(7_334_012_220));
    }

    #[test]
    fn no_sliding_window_exceeds_the_budget_and_the_budget_is_used() {
        // (per minute, per hour): the defaults, a minute-bound budget, tiny ones.
        for (m, h) in [(80, 500), (5, 1000), (2, 3), (1, 1), (30, 100)] {
            let (pacer, clock) = pacer(m, h);
            let times = drain(&pacer, &clock, chrono::Duration::hours(3));
            let per_min = max_in_window(&times, chrono::Duration::minutes(1));
            let per_hour = max_in_window(&times, chrono::Duration::hours(1));
            assert!(per_min <= m as usize, "({m}, {h}): {per_min} in a minute");
            assert!(per_hour <= h as usize, "({m}, {h}): {per_hour} in an hour");
            // Three hours of the binding limit, less the margins: at least 95 %.
            let allowed = (3 * h).min(180 * m) as usize;
            assert!(
                times.len() * 100 >= allowed * 95 || times.len() + 2 >= allowed,
                "({m}, {h}): {} of {allowed}",
                times.len()
            );
        }
    }

    #[test]
    fn a_quiet_spell_gives_back_only_the_burst() {
        let (pacer, clock) = pacer(80, 500);
        let first = drain(&pacer, &clock, chrono::Duration::minutes(10));
        assert_eq!(
            first.iter().filter(|t| **t == t0()).count(),
            10,
            "burst at once"
        );
        clock.advance(chrono::Duration::hours(5));
        let start = clock.now();
        let again = drain(&pacer, &clock, chrono::Duration::seconds(1));
        assert_eq!(
            again,
            vec![start; 10],
            "the burst again, not five hours' worth"
        );
    }

    #[test]
    fn installations_have_their_own_budgets_and_reads_take_no_permit() {
        let (pacer, _clock) = pacer(1, 1);
        assert_eq!(pacer.admit(7, Call::Write), Ok(()));
        assert_eq!(pacer.admit(7, Call::Write).unwrap_err().gate, Gate::Content);
        assert_eq!(
            pacer.admit(7, Call::Read),
            Ok(()),
            "reads do not spend content"
        );
        assert_eq!(pacer.admit(8, Call::Write), Ok(()), "another installation");
    }

    #[test]
    fn a_pause_stops_every_call_of_the_installation_until_it_ends() {
        let (pacer, clock) = pacer(80, 500);
        let until = t0() + chrono::Duration::seconds(90);
        pacer.pause(7, until);
        pacer.pause(7, t0() + chrono::Duration::seconds(30)); // an earlier end does not shorten it
        for call in [Call::Read, Call::Write] {
            assert_eq!(
                pacer.admit(7, call),
                Err(Paced {
                    installation: 7,
                    until,
                    gate: Gate::Paused
                })
            );
        }
        assert_eq!(
            pacer.admit(8, Call::Write),
            Ok(()),
            "other installations go on"
        );
        clock.set(until);
        assert_eq!(pacer.admit(7, Call::Write), Ok(()));
    }

    #[test]
    fn the_primary_budget_follows_the_headers_and_keeps_a_reserve() {
        let (pacer, clock) = pacer(80, 500);
        let reset = t0() + chrono::Duration::minutes(20);
        pacer.observe(
            7,
            RateHeaders {
                remaining: Some(PRIMARY_RESERVE + 2),
                reset: Some(reset),
            },
        );
        assert_eq!(pacer.admit(7, Call::Read), Ok(()));
        assert_eq!(pacer.admit(7, Call::Read), Ok(()));
        let refused = pacer.admit(7, Call::Read).unwrap_err();
        assert_eq!((refused.gate, refused.until), (Gate::Primary, reset));
        clock.set(reset);
        assert_eq!(
            pacer.admit(7, Call::Read),
            Ok(()),
            "a new window after the reset"
        );
        // Headers without a reset change nothing.
        pacer.observe(
            7,
            RateHeaders {
                remaining: Some(0),
                reset: None,
            },
        );
        assert_eq!(pacer.admit(7, Call::Read), Ok(()));
    }

    #[test]
    fn rate_headers_are_read_from_an_answer() {
        let mut h = http::HeaderMap::new();
        h.insert("x-ratelimit-remaining", "4990".parse().unwrap());
        h.insert("x-ratelimit-reset", "1795435200".parse().unwrap());
        let r = RateHeaders::from_headers(&h);
        assert_eq!(r.remaining, Some(4990));
        assert_eq!(r.reset, DateTime::from_timestamp(1_795_435_200, 0));
        assert_eq!(
            RateHeaders::from_headers(&http::HeaderMap::new()),
            RateHeaders::default()
        );
    }

    /// Runs `f` as job `id` (what the worker does around each job).
    fn as_job<T>(id: i64, f: impl FnOnce() -> T) -> T {
        CURRENT_JOB.sync_scope(id, f)
    }

    /// The count of queued jobs per priority, which places a new job without walking the
    /// queue, always agrees with the queue itself, whatever joins, rejoins or leaves it.
    #[test]
    fn the_priority_counts_agree_with_the_queue() {
        let (pacer, _clock) = pacer(1, 60);
        let refused = as_job(0, || {
            pacer.admit(7, Call::Write).unwrap();
            pacer.admit(7, Call::Write).unwrap_err()
        });
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for step in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let job = i64::try_from(x % 200).unwrap();
            let priority = Priority::new(u8::try_from(x / 200 % 101).unwrap());
            match x / 20_200 % 3 {
                0 | 1 => _ = pacer.postpone(&refused, Some(job), priority),
                _ => pacer.finished(job),
            }
            pacer.with(7, |st| {
                for p in (0..=100).map(Priority::new) {
                    assert_eq!(
                        st.at_least(p),
                        st.queue.range(..(Reverse(p), u64::MAX)).count(),
                        "step {step}, priority {p:?}"
                    );
                }
                assert_eq!(st.queue.len(), st.queued.len());
            });
        }
    }

    /// A job that would only be refused joins the queue when enqueued: not before the owner's
    /// installation is known and its queue holds a job; at the place, and with the fallback
    /// time, that `postpone` would give it; woken at its turn like a refused one.
    #[test]
    fn a_new_job_joins_a_waiting_queue_at_the_place_a_refusal_would_give_it() {
        let (pacer, clock) = pacer(1, 60);
        let (low, high) = (Priority::new(10), Priority::new(85));
        assert_eq!(pacer.queue_of("Acme"), None, "installation unknown");
        pacer.learn_owner("acme", 7);
        assert_eq!(pacer.queue_of("Acme"), None, "nothing waits");
        assert_eq!(as_job(1, || pacer.admit(7, Call::Write)), Ok(()));
        let refused = as_job(2, || pacer.admit(7, Call::Write)).unwrap_err();
        pacer.postpone(&refused, Some(2), low);
        assert_eq!(pacer.queue_of("ACME"), Some(7));
        assert_eq!(pacer.queue_of("other"), None);
        // The place a new job gets, before it exists, is where postponing it would put it.
        for (id, priority) in [(3, low), (4, high), (5, low)] {
            let planned = pacer.queue_place(7, priority);
            assert_eq!(pacer.enqueue(7, id, priority), planned, "job {id}");
        }
        assert!(pacer.queue_place(7, high) < pacer.queue_place(7, low));
        assert_eq!(pacer.waiting(7), 4);
        // The most urgent first, then in the order they joined.
        let mut woken = Vec::new();
        for _ in 0..20 {
            if pacer.waiting(7) == 0 {
                break;
            }
            clock.set(pacer.next_wake().expect("jobs wait").max(clock.now()));
            let Some(id) = pacer.wake() else { continue };
            match as_job(id, || pacer.admit(7, Call::Write)) {
                Ok(()) => {
                    pacer.finished(id);
                    woken.push(id);
                }
                // Woken before the limiter's permit: it keeps its place.
                Err(refused) => _ = pacer.postpone(&refused, Some(id), Priority::new(0)),
            }
        }
        assert_eq!(woken, [4, 2, 3, 5]);
        assert_eq!(pacer.queue_of("acme"), None, "drained");
    }

    #[test]
    fn refused_jobs_queue_by_priority_and_each_permit_goes_to_the_woken_one() {
        let (pacer, clock) = pacer(1, 60); // burst 1, one write a minute (61 s with the margin)
        let low = Priority::new(10);
        let high = Priority::new(85);
        assert_eq!(as_job(1, || pacer.admit(7, Call::Write)), Ok(()));
        // Three low jobs are refused and queue, in the order refused.
        let mut fallback = Vec::new();
        for id in [2, 3, 4] {
            let refused = as_job(id, || pacer.admit(7, Call::Write)).unwrap_err();
            assert_eq!(refused.gate, Gate::Content);
            fallback.push(pacer.postpone(&refused, Some(id), low));
        }
        assert!(fallback.windows(2).all(|w| w[0] < w[1]), "{fallback:?}");
        let first = as_job(5, || pacer.admit(7, Call::Write)).unwrap_err();
        assert!(
            fallback[0] > first.until,
            "the fallback comes after the turn"
        );
        // A later, more urgent job goes before them.
        assert!(pacer.postpone(&first, Some(5), high) < fallback[0]);
        assert_eq!(pacer.waiting(7), 4);
        assert_eq!(pacer.wake(), None, "no permit yet");
        assert_eq!(pacer.next_wake(), Some(first.until));
        clock.set(first.until);
        // While jobs wait, a newcomer's write joins the queue even with a permit free.
        let newcomer = as_job(6, || pacer.admit(7, Call::Write)).unwrap_err();
        assert_eq!(
            (newcomer.gate, newcomer.until),
            (Gate::Content, first.until)
        );
        // The permit is the urgent job's; nobody else is woken until it has written.
        assert_eq!(pacer.wake(), Some(5));
        assert_eq!(pacer.wake(), None);
        assert!(
            as_job(2, || pacer.admit(7, Call::Write)).is_err(),
            "not its turn"
        );
        assert_eq!(as_job(5, || pacer.admit(7, Call::Write)), Ok(()));
        // It writes again: refused by the budget, it keeps its place at the head.
        let again = as_job(5, || pacer.admit(7, Call::Write)).unwrap_err();
        pacer.postpone(&again, Some(5), high);
        clock.set(again.until);
        assert_eq!(pacer.wake(), Some(5));
        assert_eq!(as_job(5, || pacer.admit(7, Call::Write)), Ok(()));
        pacer.finished(5);
        // A job that writes nothing gives its permit to the next one.
        let next = clock.now() + chrono::Duration::seconds(61);
        clock.set(next);
        assert_eq!(pacer.wake(), Some(2));
        pacer.finished(2);
        assert_eq!(pacer.wake(), Some(3));
        assert_eq!(as_job(3, || pacer.admit(7, Call::Write)), Ok(()));
        pacer.finished(3);
        assert_eq!(pacer.waiting(7), 1);
        // A woken job that never comes is passed over after a while.
        let refused = as_job(4, || pacer.admit(7, Call::Write)).unwrap_err();
        pacer.postpone(&refused, Some(4), low);
        clock.set(refused.until);
        assert_eq!(pacer.wake(), Some(4));
        clock.advance(WAKE_STALE);
        assert_eq!(pacer.wake(), Some(4), "woken again");
        // Writes outside a job are not queued, and reads never are.
        assert_eq!(pacer.admit(7, Call::Read), Ok(()));
        // A pause is not queued: everyone comes back when it ends, in priority order.
        let pause = pacer.pause(7, clock.now() + chrono::Duration::seconds(30));
        assert!(pacer.postpone(&pause, Some(9), high) < pacer.postpone(&pause, Some(8), low));
        assert_eq!(pacer.postpone(&pause, None, Priority::MAX), pause.until);
        assert_eq!(
            pacer.waiting(7),
            1,
            "paused jobs do not join the content queue"
        );
    }
}
