//! The connect phase: one TCP connection to one edge IP, timed and classified.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::PhaseFailure;
use crate::model::{Failure, FailureClass, Phase};

/// Connects within `timeout`; returns the stream (Nagle off) and the connect time in ms. A
/// connect that times out (ours or the kernel's) carries the time it waited.
pub async fn connect(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<(TcpStream, f64), PhaseFailure> {
    let started = Instant::now();
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let f = Failure::new(
                classify(&e),
                Phase::Connect,
                format!("connect to {addr}: {e}"),
            );
            return Err(PhaseFailure::ended(f, started));
        }
        Err(_) => {
            let f = Failure::new(
                FailureClass::TcpTimeout,
                Phase::Connect,
                format!(
                    "connect to {addr}: no answer within {} ms",
                    timeout.as_millis()
                ),
            );
            return Err(PhaseFailure::ended(f, started));
        }
    };
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    // Small requests must not wait for Nagle's algorithm; it would distort the first-byte time.
    let _ = stream.set_nodelay(true);
    Ok((stream, ms))
}

fn classify(e: &std::io::Error) -> FailureClass {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => FailureClass::TcpRefused,
        std::io::ErrorKind::ConnectionReset => FailureClass::ConnReset,
        std::io::ErrorKind::TimedOut => FailureClass::TcpTimeout,
        _ => FailureClass::TcpError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_is_tcp_refused_and_an_open_one_connects() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = connect(closed, Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(
            (err.failure.class, err.failure.phase, err.waited_ms),
            (FailureClass::TcpRefused, Phase::Connect, None),
            "a refused connect failed fast: it records no connect time"
        );
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (_s, ms) = connect(open.local_addr().unwrap(), Duration::from_secs(1))
            .await
            .unwrap();
        assert!(ms < 1000.0);
    }
}
