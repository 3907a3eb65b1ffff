//! Control targets: addresses that depend on no CDN. When none of a region's targets accepts a TCP
//! connection, the region's own network is down and its round must not vote.

use std::net::SocketAddr;
use std::time::Duration;

/// True when at least one target accepts a connection within `timeout` (or there is none to try).
pub async fn any_reachable(targets: &[SocketAddr], timeout: Duration) -> bool {
    if targets.is_empty() {
        return true;
    }
    let attempts = targets.iter().map(|addr| async move {
        matches!(
            tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await,
            Ok(Ok(_))
        )
    });
    futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .any(|ok| ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_listening_target_counts_and_a_closed_one_does_not() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let t = Duration::from_millis(500);
        assert!(any_reachable(&[closed, open], t).await);
        assert!(!any_reachable(&[closed], t).await);
        assert!(any_reachable(&[], t).await);
    }
}
