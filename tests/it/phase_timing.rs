//! Each phase is timed where its time goes: an injected delay shows in its own phase within two
//! milliseconds, a slow body as transfer and not first byte. Both hold the machine alone.

use crate::harness::TestLab;

/// The smallest of `n` runs, to keep scheduler noise out of a ±2 ms comparison.
async fn min_of<F, Fut>(n: usize, mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = f64>,
{
    let mut best = f64::INFINITY;
    for _ in 0..n {
        best = best.min(f().await);
    }
    best
}

#[tokio::test]
async fn an_injected_delay_shows_in_its_own_phase_within_two_milliseconds() {
    let s = TestLab::spawn_alone_with(|_| {}).await;
    let first_byte = || async { s.probe_primary().await.results[0].first_byte_ms.unwrap() };
    let dns = || async { s.probe_primary().await.dns.dns_ms };
    let connect = || async { s.probe_primary().await.results[0].connect_ms.unwrap() };
    let base_fb = min_of(5, first_byte).await;
    let base_dns = min_of(5, dns).await;
    let base_connect = min_of(5, connect).await;

    s.fault(r#"{"kind":"delay","ms":150,"edge":"127.21.1.1"}"#)
        .await;
    let fb = min_of(5, first_byte).await;
    let connect_then = min_of(5, connect).await;
    assert!(
        (fb - base_fb - 150.0).abs() <= 2.0,
        "first byte {fb:.2} ms, {base_fb:.2} ms without the delay"
    );
    assert!(
        connect_then < base_connect + 2.0,
        "connect unaffected: {connect_then:.2} vs {base_connect:.2}"
    );
    s.clear().await;

    s.fault(r#"{"kind":"dns_delay","ms":120}"#).await;
    let d = min_of(5, dns).await;
    assert!(
        (d - base_dns - 120.0).abs() <= 2.0,
        "DNS {d:.2} ms, {base_dns:.2} ms without the delay"
    );
    let fb_then = min_of(5, first_byte).await;
    assert!(
        fb_then < base_fb + 2.0,
        "first byte unaffected: {fb_then:.2} vs {base_fb:.2}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_slow_body_is_timed_as_transfer_not_first_byte() {
    let s = TestLab::spawn_alone_with(|c| c.probe.timeouts.transfer_ms = 5000).await;
    // 600 bytes at 2000 B/s: 0.3 s of transfer after a prompt first byte.
    s.fault(r#"{"kind":"slow_body","bytes_per_sec":2000,"edge":"127.21.1.1"}"#)
        .await;
    let r = s
        .probe("cdn.shop.test", "/product/probe.json", "cn-east", "isp")
        .await;
    let e = &r.results[0];
    assert!(e.ok(), "{:?}", e.failure);
    let transfer = e.transfer_ms.unwrap();
    assert!(
        (250.0..450.0).contains(&transfer),
        "transfer {transfer:.1} ms"
    );
    assert!(
        e.first_byte_ms.unwrap() < 150.0,
        "first byte {:?}",
        e.first_byte_ms
    );
    s.shutdown().await;
}
