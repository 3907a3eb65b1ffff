use super::*;
use crate::model::{Failure, FailureClass, Outcome, Phase};

fn result(at_ms: i64, region: &str, failure: Option<FailureClass>) -> EdgeResult {
    EdgeResult {
        at: chrono::DateTime::from_timestamp_millis(at_ms).unwrap(),
        host: "cdn.shop.test".into(),
        path: "/image/probe.jpg".into(),
        region: region.into(),
        resolver: "isp".into(),
        edge_ip: Some("127.21.1.1".parse().unwrap()),
        dns_ms: Some(0.5),
        connect_ms: Some(0.25),
        tls_ms: Some(1.0),
        first_byte_ms: Some(0.75),
        transfer_ms: Some(0.1),
        total_ms: Some(2.6),
        status: Some(if failure.is_some() { 502 } else { 200 }),
        body_bytes: 4096,
        cert: None,
        failure: failure.map(|c| Failure::new(c, Phase::Processing, "test")),
    }
}

fn rec(r: EdgeResult) -> Record {
    Record {
        prober: Arc::from("local"),
        result: r,
    }
}

async fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("cdnwatch.db")).await.unwrap();
    (dir, store)
}

const T0: i64 = 1_800_000_000_000; // a whole hour: 1_800_000_000_000 % 3_600_000 == 0

#[tokio::test]
async fn a_batch_is_stored_and_the_latest_probe_is_read_back() {
    let (_d, store) = open().await;
    let batch: Vec<Record> = (0..1000)
        .map(|i| rec(result(T0 + i * 10, "cn-east", None)))
        .collect();
    store.write_batch(&batch).await.unwrap();
    store
        .write_batch(&[rec(result(
            T0 + 20_000,
            "cn-east",
            Some(FailureClass::HttpStatus),
        ))])
        .await
        .unwrap();
    assert_eq!(store.result_count().await.unwrap(), 1001);
    let latest = store.latest().await.unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].failure.as_deref(), Some("http_status"));
    assert_eq!(latest[0].status, Some(502));
    let counts = store.counts_since(T0).await.unwrap();
    assert_eq!((counts[0].1, counts[0].2), (1001, 1));
}

#[tokio::test]
async fn minutes_and_hours_roll_up_once_complete_and_never_twice() {
    let (_d, store) = open().await;
    // Two hours of results, one every 10 s, a failure every sixth.
    let batch: Vec<Record> = (0..720)
        .map(|i| {
            rec(result(
                T0 + i * 10_000,
                "cn-east",
                (i % 6 == 0).then_some(FailureClass::HttpStatus),
            ))
        })
        .collect();
    store.write_batch(&batch).await.unwrap();
    let mut total = RollupReport::default();
    loop {
        let r = store.roll_up(T0 + 2 * 3_600_000 + 120_000).await.unwrap();
        if r == RollupReport::default() {
            break;
        }
        total.minutes += r.minutes;
        total.hours += r.hours;
    }
    assert_eq!((total.minutes, total.hours), (120, 2));
    let key = SeriesKey::of(&batch[0].result);
    let hours = store
        .rollups(&key, true, T0, T0 + 2 * 3_600_000)
        .await
        .unwrap();
    assert_eq!(hours.len(), 2);
    assert_eq!((hours[0].agg.count, hours[0].agg.failures), (360, 60));
    assert_eq!(
        hours[0]
            .agg
            .by_class
            .get(&Outcome::new(FailureClass::HttpStatus, Some(502))),
        Some(&60)
    );
    let p50 = hours[0].agg.hists[3].quantile_ms(0.5).unwrap();
    assert!((p50 - 0.75).abs() < 0.08, "first-byte p50 {p50}");
    let minutes = store.rollups(&key, false, T0, T0 + 60_000).await.unwrap();
    assert_eq!(minutes[0].agg.count, 6);
}

#[tokio::test]
async fn a_minute_still_in_its_grace_period_is_not_rolled_up() {
    let (_d, store) = open().await;
    store
        .write_batch(&[rec(result(T0 + 1_000, "cn-east", None))])
        .await
        .unwrap();
    let r = store.roll_up(T0 + 60_000 + 30_000).await.unwrap();
    assert_eq!(r.minutes, 0);
    let r = store.roll_up(T0 + 120_000).await.unwrap();
    assert_eq!(r.minutes, 1);
}

#[tokio::test]
async fn retention_deletes_in_bounded_steps() {
    let (_d, store) = open().await;
    let old: Vec<Record> = (0..12_000)
        .map(|i| rec(result(T0 + i, "cn-east", None)))
        .collect();
    store.write_batch(&old).await.unwrap();
    store
        .write_batch(&[rec(result(T0 + 50 * 3_600_000, "cn-east", None))])
        .await
        .unwrap();
    let retention = Retention {
        raw: Duration::from_secs(48 * 3600),
        minute: Duration::from_secs(7 * 86400),
        hour: Duration::from_secs(90 * 86400),
    };
    let now = T0 + 50 * 3_600_000;
    let steps: Vec<u64> = [(); 4].iter().map(|_| 0).collect();
    let mut deleted = steps;
    for d in deleted.iter_mut() {
        *d = store.prune_step(now, &retention).await.unwrap();
    }
    assert_eq!(deleted, vec![5_000, 5_000, 2_000, 0]);
    assert_eq!(store.result_count().await.unwrap(), 1);
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}

/// Batches of 500, a queue of `queue_capacity`, no maintenance during a test.
fn writer_settings(queue_capacity: usize) -> writer::WriterSettings {
    writer::WriterSettings {
        batch_size: 500,
        queue_capacity,
        maintenance_interval: Duration::from_secs(3600),
        retention: Retention {
            raw: Duration::from_secs(3600),
            minute: Duration::from_secs(3600),
            hour: Duration::from_secs(3600),
        },
        clock: crate::clock::Clock::system(),
    }
}

#[tokio::test]
async fn the_writer_drains_its_queue_at_shutdown_and_counts_what_did_not_fit() {
    let (_d, store) = open().await;
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let ingest = writer::spawn(
        store.clone(),
        writer_settings(2_000),
        token.clone(),
        &tracker,
    );
    let mut refused = 0;
    for i in 0..5_000 {
        if ingest.submit(rec(result(T0 + i, "cn-east", None))).is_err() {
            refused += 1;
        }
    }
    token.cancel();
    tracker.close();
    tracker.wait().await;
    let stored = store.result_count().await.unwrap();
    assert_eq!(stored as u64 + refused, 5_000);
    assert_eq!(
        ingest
            .stats()
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        refused
    );
    assert_eq!(
        ingest
            .stats()
            .written
            .load(std::sync::atomic::Ordering::Relaxed),
        stored as u64
    );
}

#[tokio::test]
async fn a_retry_backoff_never_holds_up_shutdown() {
    let (_d, store) = open().await;
    store.close().await; // every write fails from now on
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let ingest = writer::spawn(store, writer_settings(10), token.clone(), &tracker);
    ingest.submit(rec(result(T0, "cn-east", None))).unwrap();
    // Tries at 0, 50, 150 and 350 ms: the writer is now in a pause of 400 ms, the next ones would
    // be 0.8 s and 1.6 s (2.7 s in all before the fix).
    tokio::time::sleep(Duration::from_millis(450)).await;
    let t = std::time::Instant::now();
    token.cancel();
    tracker.close();
    tracker.wait().await;
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(
        ingest
            .stats()
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "given up after its three tries at shutdown"
    );
}

#[tokio::test]
async fn a_flush_returns_once_everything_queued_before_it_is_written() {
    let (_d, store) = open().await;
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let ingest = writer::spawn(store.clone(), writer_settings(10), token.clone(), &tracker);
    for i in 0..8 {
        ingest
            .submit(rec(result(T0 + i * 1000, "cn-east", None)))
            .unwrap();
    }
    assert!(ingest.flush(Duration::from_secs(5)).await);
    assert_eq!(
        store.result_count().await.unwrap(),
        8,
        "all written when flush returns"
    );
    // A writer that cannot write: flush waits for its first try, then says so at once instead of
    // waiting out its limit.
    store.close().await;
    ingest.submit(rec(result(T0, "cn-east", None))).unwrap();
    let t = std::time::Instant::now();
    assert!(!ingest.flush(Duration::from_secs(30)).await);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    token.cancel();
    tracker.close();
    tracker.wait().await;
}

use rollup::RollupReport;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mod reads;

#[tokio::test]
async fn an_agent_batch_is_stored_once_and_its_late_results_are_rolled_up_again() {
    let (_d, store) = open().await;
    // Two hours done: minutes and hours rolled up behind their watermarks.
    let local: Vec<Record> = (0..720)
        .map(|i| rec(result(T0 + i * 10_000, "cn-east", None)))
        .collect();
    store.write_batch(&local).await.unwrap();
    let now = T0 + 2 * 3_600_000 + 120_000;
    while store.roll_up(now).await.unwrap() != RollupReport::default() {}
    // An agent's backlog arrives for the first minute, then the same batch again.
    let key = BatchKey {
        agent: "agent-east".into(),
        boot: "b00t".into(),
        seq: 7,
    };
    let late: Vec<Record> = (0..4)
        .map(|i| Record {
            prober: Arc::from("agent-east"),
            result: result(T0 + 1_000 + i, "cn-east", Some(FailureClass::HttpStatus)),
        })
        .collect();
    let first = store.write_agent_batch(&key, &late, now).await.unwrap();
    let again = store.write_agent_batch(&key, &late, now).await.unwrap();
    assert_eq!((first, again), (BatchStored::New, BatchStored::Duplicate));
    assert_eq!(store.result_count().await.unwrap(), 724);
    assert_eq!(store.agent_batches("agent-east").await.unwrap(), (1, 4));
    let r = store.roll_up(now).await.unwrap();
    assert_eq!(
        (r.minutes, r.hours),
        (1, 1),
        "the late minute and its hour, again"
    );
    let series = SeriesKey::of(&late[0].result);
    let minutes = store
        .rollups(&series, false, T0, T0 + 60_000)
        .await
        .unwrap();
    assert_eq!((minutes[0].agg.count, minutes[0].agg.failures), (10, 4));
    let hours = store
        .rollups(&series, true, T0, T0 + 3_600_000)
        .await
        .unwrap();
    assert_eq!((hours[0].agg.count, hours[0].agg.failures), (364, 4));
    assert_eq!(store.roll_up(now).await.unwrap(), RollupReport::default());
}

/// Agents' batches of 5,000 results offered until their queue is full and 8 more: the answers
/// to come of those queued, and how many were refused at once.
fn fill_agents_queue(
    ingest: &writer::Ingest,
) -> (Vec<tokio::sync::oneshot::Receiver<BatchStored>>, usize) {
    let mut pending = Vec::new();
    let mut refused = 0;
    for seq in 0..writer::AGENT_BATCHES_QUEUED as u64 + 8 {
        let key = BatchKey {
            agent: "agent-east".into(),
            boot: "b00t".into(),
            seq,
        };
        let records = (0..5_000)
            .map(|i| Record {
                prober: Arc::from("agent-east"),
                result: result(T0 + seq as i64 * 5_000 + i, "cn-east", None),
            })
            .collect();
        match ingest.submit_agent_batch(key, records) {
            Ok(done) => pending.push(done),
            Err(writer::Busy) => refused += 1,
        }
    }
    (pending, refused)
}

/// Agents filling their whole share of the writer (every queued batch 5,000 results) neither
/// drop a local result nor hold one up behind their backlog: the writer takes what the local
/// probers queued before each next agent batch, and the agents' queue refuses at once when full
/// (the agent keeps its batch) instead of taking the local queue's room.
#[tokio::test]
async fn agents_filling_their_queue_never_drop_or_delay_a_local_result() {
    let (_d, store) = open().await;
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let ingest = writer::spawn(
        store.clone(),
        writer_settings(10_000),
        token.clone(),
        &tracker,
    );
    let (pending, refused) = fill_agents_queue(&ingest);
    assert!(
        refused >= 7,
        "a full agents' queue refuses at once ({refused} refused)"
    );
    let accepted = pending.len() as i64;
    for i in 0..3_000 {
        let local = result(T0 + 10_000_000 + i, "cn-north", None);
        ingest
            .submit(rec(local))
            .expect("a local result is never dropped");
    }
    assert!(
        ingest.flush(Duration::from_secs(60)).await,
        "the local results are written"
    );
    let stats = ingest.stats();
    assert_eq!(stats.dropped.load(std::sync::atomic::Ordering::Relaxed), 0);
    let mut behind = Vec::new();
    for mut done in pending {
        match done.try_recv() {
            Ok(stored) => assert_eq!(stored, BatchStored::New),
            Err(_) => behind.push(done),
        }
    }
    assert!(
        behind.len() >= writer::AGENT_BATCHES_QUEUED / 2,
        "the local results went before the agents' backlog ({} batches still queued)",
        behind.len()
    );
    for done in behind {
        let stored = tokio::time::timeout(Duration::from_secs(120), done).await;
        assert!(matches!(stored, Ok(Ok(BatchStored::New))), "{stored:?}");
    }
    assert_eq!(
        store.result_count().await.unwrap(),
        3_000 + accepted * 5_000
    );
    token.cancel();
    tracker.close();
    tracker.wait().await;
}
