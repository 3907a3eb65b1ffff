//! The service's side of its regional agents: who they are (`[[agents]]`, their tokens read from
//! the file's digests or token files), what each is assigned, how each is doing (heartbeats, its
//! clock's skew, its backlog), whether each is up, and what each may put into the store (its own
//! regions' configured series only, at a bounded rate, within its share of the store's queue).
//!
//! An agent that misses [`MISSED_HEARTBEATS`] heartbeats is **down**: its regions have no valid
//! evidence (invalid, not failing) until it is back, so nothing ever flips because an agent died
//! or was cut off. A region whose agent has not been heard since start is the same. The
//! transitions are `agent_down` / `agent_up` events.
//!
//! Layout: `assign` (each agent's assignment), `check` (what a batch must be), `skew` (the clock
//! offset from the heartbeats). Nothing here does I/O but reading token and CA files on load.

mod assign;
pub mod check;
pub mod skew;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

pub use assign::{AssignError, Served};
pub use check::Checked;

use crate::agent::wire::{
    Batch, HEARTBEAT_EVERY, Heartbeat, HeartbeatAnswer, MISSED_HEARTBEATS, Refusal,
};
use crate::auth::TokenDigest;
use crate::config::{AgentSettings, Config};
use crate::engine::{Event, Reason};
use crate::series::SeriesKey;
use skew::SkewEstimate;

/// Results per second one agent may send, sustained; beyond, 429 with `Retry-After`.
pub const RECORDS_PER_SEC: f64 = 25_000.0;
/// Results one agent may send at once above the sustained rate (a backlog's first batches).
pub const RECORDS_BURST: f64 = 100_000.0;

/// Why the agents could not be set up from a config.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A token file could not be used.
    #[error("agents[{index}] `{agent}`: {why}")]
    Token {
        /// The agent's position in the file.
        index: usize,
        /// Its id.
        agent: String,
        /// What is wrong.
        why: String,
    },
    /// An assignment could not be built.
    #[error(transparent)]
    Assign(#[from] AssignError),
}

/// What the service last heard from an agent.
#[derive(Debug, Clone, Default)]
struct Heard {
    last_ms: Option<i64>,
    boot: String,
    version: String,
    assignment_version: Option<String>,
    backlog_records: u64,
    in_flight: u64,
    concurrency: u64,
    spool_dropped: u64,
    skew: SkewEstimate,
    up: bool,
    /// An `agent_down` event was made for the current silence.
    told_down: bool,
    /// Results received in the current rate window, its start, and the last window's rate.
    window: (i64, u64, f64),
}

/// The sustained rate limit of one agent (a token bucket in results).
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: std::time::Instant,
}

/// One configured agent.
pub struct Member {
    /// Its id.
    pub id: String,
    /// The regions it speaks for.
    pub regions: Vec<String>,
    tokens: Vec<TokenDigest>,
    heard: Mutex<Heard>,
    bucket: Mutex<Bucket>,
    /// Its batches in the store's queue now.
    queued: AtomicUsize,
    received: AtomicU64,
    refused: [AtomicU64; Refusal::ALL.len()],
}

/// What the pages, the API and `/metrics` show of one agent.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AgentView {
    /// Its id.
    pub id: String,
    /// Its regions.
    pub regions: Vec<String>,
    /// Whether it is up (a heartbeat within the last 30 s).
    pub up: bool,
    /// Its last heartbeat, Unix ms (service clock).
    pub last_seen_ms: Option<i64>,
    /// Its clock minus the service's, in ms, and the round trip that figure stands on.
    pub skew_ms: Option<f64>,
    /// See `skew_ms`.
    pub skew_rtt_ms: Option<i64>,
    /// Its skew is beyond 2 s: its times are re-stamped, and it should be fixed.
    pub skew_flagged: bool,
    /// Results it has spooled and not yet had acknowledged.
    pub backlog_records: u64,
    /// Batches its spool dropped (beyond its bounds) since it started.
    pub spool_dropped: u64,
    /// Its cdnwatch version and boot id.
    pub version: String,
    /// See `version`.
    pub boot: String,
    /// The assignment it says it runs, and whether that is the one in force.
    pub assignment_version: Option<String>,
    /// See `assignment_version`.
    pub assignment_current: bool,
    /// Probes it runs now, and the most at once.
    pub in_flight: u64,
    /// See `in_flight`.
    pub concurrency: u64,
    /// Results stored from it since the service started.
    pub received: u64,
    /// Results refused, by reason, since the service started.
    pub refused: BTreeMap<&'static str, u64>,
    /// Results per second over its last ten-second window.
    pub results_per_sec: f64,
}

/// A batch may go to the store: holds the agent's share of the queue until dropped.
pub struct Admitted(Arc<Member>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a batch may not go to the store now; the agent keeps it and tries again after the wait.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wait {
    /// Past its rate: try again after this long.
    Rate(Duration),
    /// Its share of the store's queue is full.
    Queue,
    /// No heartbeat since the service started: its clock is not known yet.
    Clock,
}

/// The agents and what the service knows of them.
pub struct Fleet {
    members: RwLock<BTreeMap<String, Arc<Member>>>,
    series: RwLock<Arc<HashSet<SeriesKey>>>,
    assignments: watch::Sender<Arc<BTreeMap<String, Arc<Served>>>>,
    /// The queue's batches one agent may hold.
    share: AtomicUsize,
    /// When the service started (an agent never heard is down from `MISSED_HEARTBEATS` after).
    started_ms: i64,
}

impl Fleet {
    /// The agents of `config`, none heard yet, at `now`.
    pub fn new(config: &Config, now: DateTime<Utc>) -> Result<Fleet, FleetError> {
        let fleet = Fleet {
            members: RwLock::default(),
            series: RwLock::default(),
            assignments: watch::Sender::new(Arc::default()),
            share: AtomicUsize::new(1),
            started_ms: now.timestamp_millis(),
        };
        fleet.reload(config)?;
        Ok(fleet)
    }

    /// Applies a new config: tokens read again, assignments rebuilt (agents' long polls answer at
    /// once when theirs changed); an agent that stays keeps what was heard of it.
    pub fn reload(&self, config: &Config) -> Result<(), FleetError> {
        let assignments = assign::build_all(config)?;
        let mut members = BTreeMap::new();
        let old = self.members.read().expect("members").clone();
        for (index, a) in config.agents.iter().enumerate() {
            let tokens = read_tokens(a, config).map_err(|why| FleetError::Token {
                index,
                agent: a.id.clone(),
                why,
            })?;
            let member = Member::new(a, tokens, old.get(&a.id).map(|m| &**m));
            members.insert(a.id.clone(), Arc::new(member));
        }
        let series: HashSet<SeriesKey> = crate::scheduler::series_of(config)
            .into_iter()
            .map(|s| s.key)
            .collect();
        let n = members.len().max(1);
        let share = (crate::store::writer::AGENT_BATCHES_QUEUED / n).max(2);
        self.share.store(share, Ordering::Relaxed);
        *self.members.write().expect("members") = members;
        *self.series.write().expect("series") = Arc::new(series);
        self.assignments.send_if_modified(|current| {
            let changed = **current != assignments;
            if changed {
                *current = Arc::new(assignments);
            }
            changed
        });
        Ok(())
    }

    /// The agent called `id`, if configured.
    pub fn member(&self, id: &str) -> Option<Arc<Member>> {
        self.members.read().expect("members").get(id).cloned()
    }

    /// Whether any agent is configured.
    pub fn is_empty(&self) -> bool {
        self.members.read().expect("members").is_empty()
    }

    /// Every agent's assignment, as a watch: changed on each reload that changes one.
    pub fn assignments(&self) -> watch::Receiver<Arc<BTreeMap<String, Arc<Served>>>> {
        self.assignments.subscribe()
    }

    /// Takes in a heartbeat of `m` that arrived at `received_ms` (service clock).
    pub fn heartbeat(&self, m: &Member, hb: &Heartbeat, received_ms: i64) -> HeartbeatAnswer {
        let current = self
            .assignments
            .borrow()
            .get(&m.id)
            .map(|s| s.version.clone())
            .unwrap_or_default();
        let mut heard = m.heard.lock().expect("heard");
        if let Some(previous) = &hb.previous {
            heard.skew.exchange(previous);
        }
        heard.skew.one_way(hb.sent_ms, received_ms);
        heard.last_ms = Some(received_ms);
        heard.boot.clone_from(&hb.boot);
        heard.version.clone_from(&hb.version);
        heard.assignment_version.clone_from(&hb.assignment_version);
        heard.backlog_records = hb.backlog_records;
        heard.in_flight = hb.in_flight;
        heard.concurrency = hb.concurrency;
        heard.spool_dropped = hb.spool_dropped;
        HeartbeatAnswer {
            received_ms,
            answered_ms: received_ms,
            assignment_version: current,
        }
    }

    /// Whether `m` may send a batch of `records` results now; the permit holds its share of the
    /// store's queue.
    pub fn admit(&self, m: &Arc<Member>, records: usize) -> Result<Admitted, Wait> {
        if m.heard.lock().expect("heard").skew.skew_ms().is_none() {
            return Err(Wait::Clock);
        }
        let share = self.share.load(Ordering::Relaxed);
        if m.queued.fetch_add(1, Ordering::AcqRel) >= share {
            m.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Wait::Queue);
        }
        let admitted = Admitted(m.clone());
        let mut bucket = m.bucket.lock().expect("bucket");
        let now = std::time::Instant::now();
        let refill = now.duration_since(bucket.at).as_secs_f64() * RECORDS_PER_SEC;
        bucket.tokens = (bucket.tokens + refill).min(RECORDS_BURST);
        bucket.at = now;
        let need = records as f64;
        if bucket.tokens < need.min(RECORDS_BURST) {
            let wait = (need.min(RECORDS_BURST) - bucket.tokens) / RECORDS_PER_SEC;
            return Err(Wait::Rate(Duration::from_secs_f64(wait)));
        }
        bucket.tokens -= need;
        Ok(admitted)
    }

    /// Checks `batch` of `m` at `now` (service clock), counting what it refuses.
    pub fn check(&self, m: &Member, batch: Batch, now: DateTime<Utc>) -> Checked {
        let skew = m.heard.lock().expect("heard").skew.skew_ms().unwrap_or(0.0);
        let series = self.series.read().expect("series").clone();
        let checked = check::check(&series, &m.regions, skew, now, batch);
        for (why, n) in &checked.refused {
            m.refused[why.index()].fetch_add(*n as u64, Ordering::Relaxed);
        }
        checked
    }

    /// Counts `stored` results of `m` received at `now_ms`.
    pub fn stored(&self, m: &Member, stored: usize, now_ms: i64) {
        m.received.fetch_add(stored as u64, Ordering::Relaxed);
        let mut heard = m.heard.lock().expect("heard");
        let (start, count, rate) = &mut heard.window;
        *count += stored as u64;
        let elapsed = now_ms - *start;
        if elapsed >= 10_000 {
            *rate = *count as f64 * 1000.0 / elapsed as f64;
            *start = now_ms;
            *count = 0;
        }
    }

    /// Decides which agents are up at `now_ms`: returns the `agent_down` / `agent_up` events of
    /// those that changed, and the regions that have no live agent.
    pub fn liveness(&self, now_ms: i64) -> (Vec<Event>, BTreeSet<String>) {
        let limit = (HEARTBEAT_EVERY * MISSED_HEARTBEATS).as_millis() as i64;
        let at = DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        let mut events = Vec::new();
        let mut unheard = BTreeSet::new();
        for m in self.members.read().expect("members").values() {
            let mut heard = m.heard.lock().expect("heard");
            let up = heard.last_ms.is_some_and(|t| now_ms - t <= limit);
            let regions = m.regions.join(", ");
            if up && heard.told_down {
                events.push(Event::bare(
                    at,
                    Reason::AgentUp,
                    format!("agent {} is up: regions {regions} vote again", m.id),
                ));
            }
            // Down once it was up, or once it has not been heard for as long since start.
            let quiet_since = heard.last_ms.unwrap_or(self.started_ms);
            if !up && !heard.told_down && now_ms - quiet_since > limit {
                let quiet = (now_ms - quiet_since) / 1000;
                let what = if heard.last_ms.is_some() {
                    format!("no heartbeat for {quiet} s")
                } else {
                    format!("not heard since the service started {quiet} s ago")
                };
                events.push(Event::bare(
                    at,
                    Reason::AgentDown,
                    format!(
                        "agent {} is down: {what}; regions {regions} have no valid evidence until it is back",
                        m.id
                    ),
                ));
                heard.told_down = true;
            }
            if up {
                heard.told_down = false;
            }
            heard.up = up;
            if !up {
                unheard.extend(m.regions.iter().cloned());
            }
        }
        (events, unheard)
    }

    /// Every agent as the pages and `/metrics` show it, at `now_ms`.
    pub fn views(&self) -> Vec<AgentView> {
        let current = self.assignments.borrow().clone();
        let members = self.members.read().expect("members");
        members
            .values()
            .map(|m| m.view(current.get(&m.id).map(|s| s.version.as_str())))
            .collect()
    }
}

impl Member {
    fn new(a: &AgentSettings, tokens: Vec<TokenDigest>, old: Option<&Member>) -> Member {
        let heard = old.map(|o| o.heard.lock().expect("heard").clone());
        let received = old.map_or(0, |o| o.received.load(Ordering::Relaxed));
        Member {
            id: a.id.clone(),
            regions: a.regions.clone(),
            tokens,
            heard: Mutex::new(heard.unwrap_or_default()),
            bucket: Mutex::new(Bucket {
                tokens: RECORDS_BURST,
                at: std::time::Instant::now(),
            }),
            queued: AtomicUsize::new(0),
            received: AtomicU64::new(received),
            refused: std::array::from_fn(|i| {
                AtomicU64::new(old.map_or(0, |o| o.refused[i].load(Ordering::Relaxed)))
            }),
        }
    }

    /// Its valid tokens' digests.
    pub fn tokens(&self) -> &[TokenDigest] {
        &self.tokens
    }

    fn view(&self, current: Option<&str>) -> AgentView {
        let heard = self.heard.lock().expect("heard");
        let best = heard.skew.best();
        let skew_ms = best.map(|(s, _)| s);
        AgentView {
            id: self.id.clone(),
            regions: self.regions.clone(),
            up: heard.up,
            last_seen_ms: heard.last_ms,
            skew_ms,
            skew_rtt_ms: best.and_then(|(_, d)| d),
            skew_flagged: skew_ms.is_some_and(|s| s.abs() > check::FLAG_SKEW_MS),
            backlog_records: heard.backlog_records,
            spool_dropped: heard.spool_dropped,
            version: heard.version.clone(),
            boot: heard.boot.clone(),
            assignment_current: heard.assignment_version.as_deref() == current,
            assignment_version: heard.assignment_version.clone(),
            in_flight: heard.in_flight,
            concurrency: heard.concurrency,
            received: self.received.load(Ordering::Relaxed),
            refused: Refusal::ALL
                .iter()
                .zip(&self.refused)
                .map(|(r, n)| (r.as_str(), n.load(Ordering::Relaxed)))
                .collect(),
            results_per_sec: heard.window.2,
        }
    }
}

/// An agent's tokens' digests: those written in the file, and those of its token files.
fn read_tokens(a: &AgentSettings, config: &Config) -> Result<Vec<TokenDigest>, String> {
    let mut out = Vec::new();
    for d in &a.token_sha256 {
        let bytes = hex::decode(d).map_err(|_| format!("token_sha256 `{d}` is not hex"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "token_sha256 must be 64 hex digits".to_string())?;
        out.push(TokenDigest::from_bytes(bytes));
    }
    for f in &a.token_files {
        let token = crate::config::read_token_file(&config.base_dir.join(f))?;
        out.push(TokenDigest::of(&token));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(agents: usize) -> Fleet {
        let mut text = String::from(
            "[[vendors]]\nname = \"a\"\n[[hosts]]\ndomain = \"cdn.x.test\"\nvendor = \"a\"\nrole = \"primary\"\npaths = [{ path = \"/p\" }]\n",
        );
        for i in 0..agents {
            let digest = "ab".repeat(32);
            text.push_str(&format!(
                "[[regions]]\nname = \"r{i}\"\nresolvers = [{{ name = \"isp\", udp = \"127.0.0.1:53\" }}]\n[[agents]]\nid = \"agent-{i}\"\nregions = [\"r{i}\"]\ntoken_sha256 = [\"{digest}\"]\n"
            ));
        }
        let config = Config::parse(&text, "t", std::path::Path::new(".")).unwrap();
        Fleet::new(&config, Utc::now()).unwrap()
    }

    /// An agent heard once: its clock is known, so only its rate and its queue share hold it.
    fn heard(fleet: &Fleet, id: &str) -> Arc<Member> {
        let m = fleet.member(id).unwrap();
        let now = Utc::now().timestamp_millis();
        let hb = Heartbeat {
            boot: "b".into(),
            version: "test".into(),
            assignment_version: None,
            backlog_records: 0,
            in_flight: 0,
            concurrency: 1,
            sent_ms: now,
            previous: None,
            spool_dropped: 0,
        };
        fleet.heartbeat(&m, &hb, now);
        m
    }

    #[test]
    fn an_agent_past_its_burst_waits_for_its_rate() {
        let fleet = fleet(1);
        let m = heard(&fleet, "agent-0");
        let burst = RECORDS_BURST as usize;
        drop(
            fleet
                .admit(&m, burst)
                .expect("a backlog's first batches go at once"),
        );
        match fleet.admit(&m, 5_000) {
            Err(Wait::Rate(wait)) => {
                let want = 5_000.0 / RECORDS_PER_SEC;
                assert!((wait.as_secs_f64() - want).abs() < 0.05, "{wait:?}");
            }
            other => panic!("past its burst: {:?}", other.err()),
        }
    }

    /// Each agent holds at most its share of the agents' queue (64 batches among the agents,
    /// at least two each), so one agent's backlog never takes another's room.
    #[test]
    fn an_agent_holds_only_its_share_of_the_queue() {
        let fleet = fleet(4);
        let (a, b) = (heard(&fleet, "agent-0"), heard(&fleet, "agent-1"));
        let share = crate::store::writer::AGENT_BATCHES_QUEUED / 4;
        let held: Vec<Admitted> = (0..share).map(|_| fleet.admit(&a, 1).unwrap()).collect();
        assert_eq!(fleet.admit(&a, 1).err(), Some(Wait::Queue));
        assert!(
            fleet.admit(&b, 1).is_ok(),
            "another agent's share is its own"
        );
        drop(held);
        assert!(
            fleet.admit(&a, 1).is_ok(),
            "a written batch frees its place"
        );
    }

    #[test]
    fn an_agent_never_heard_is_told_to_send_its_heartbeat_first() {
        let fleet = fleet(1);
        let m = fleet.member("agent-0").unwrap();
        assert_eq!(fleet.admit(&m, 1).err(), Some(Wait::Clock));
    }
}
