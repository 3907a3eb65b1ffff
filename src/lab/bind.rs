//! Binding the lab's sockets before anything serves: every edge-port address on one port, every
//! resolver address (UDP and TCP) on one port, and the fault API. Serves nothing.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::{TcpListener, UdpSocket};

use super::LabError;
use super::topology::{Owner, Topology};

/// How many ports [`on_one_port`] tries before it gives up.
const PORT_TRIES: usize = 50;

/// Every edge-port address, bound, with its owner.
pub(super) type EdgeListeners = Vec<(TcpListener, Ipv4Addr, Owner)>;

/// Every resolver address, bound for UDP and TCP, with its (region, resolver).
pub(super) type ResolverSockets = Vec<(UdpSocket, TcpListener, &'static str, &'static str)>;

/// Binds every edge-port address on one port: `port`, or when 0 the first port the kernel gives
/// the first address that is free on all the others too.
pub(super) async fn edges(port: u16) -> Result<(u16, EdgeListeners), LabError> {
    let addrs = Topology::edge_port_addresses();
    let ips: Vec<Ipv4Addr> = addrs.iter().map(|(ip, _)| *ip).collect();
    let (port, listeners) = on_one_port("edge", port, &ips, |addr| async move {
        let tcp = TcpListener::bind(addr).await?;
        let port = tcp.local_addr()?.port();
        Ok((tcp, port))
    })
    .await?;
    let bound = listeners
        .into_iter()
        .zip(addrs)
        .map(|(tcp, (ip, owner))| (tcp, ip, owner))
        .collect();
    Ok((port, bound))
}

/// Binds UDP and TCP for every resolver address on one port, as [`edges`] does.
pub(super) async fn resolvers(port: u16) -> Result<(u16, ResolverSockets), LabError> {
    let addrs = Topology::resolver_addresses();
    let ips: Vec<Ipv4Addr> = addrs.iter().map(|(ip, _, _)| *ip).collect();
    let (port, sockets) = on_one_port("resolver", port, &ips, |addr| async move {
        let udp = UdpSocket::bind(addr).await?;
        let addr = udp.local_addr()?;
        let tcp = TcpListener::bind(addr).await?;
        Ok(((udp, tcp), addr.port()))
    })
    .await?;
    let bound = sockets
        .into_iter()
        .zip(addrs)
        .map(|((udp, tcp), (_, region, resolver))| (udp, tcp, region, resolver))
        .collect();
    Ok((port, bound))
}

/// Binds the fault API's listener; the address it got.
pub(super) async fn api(listen: SocketAddr) -> Result<(TcpListener, SocketAddr), LabError> {
    let failed = |source: std::io::Error| LabError::Bind {
        what: "the fault API on",
        addr: listen,
        source,
    };
    let listener = TcpListener::bind(listen).await.map_err(failed)?;
    let addr = listener.local_addr().map_err(failed)?;
    Ok((listener, addr))
}

/// Calls `bind` for every address in `ips` (in order) with one port and returns what it bound
/// and the port: `port`, or when 0 the port the first bind got, tried again from the start
/// (up to [`PORT_TRIES`] times) when it is taken on a later address.
async fn on_one_port<T, F, Fut>(
    what: &'static str,
    port: u16,
    ips: &[Ipv4Addr],
    bind: F,
) -> Result<(u16, Vec<T>), LabError>
where
    F: Fn(SocketAddr) -> Fut,
    Fut: Future<Output = std::io::Result<(T, u16)>>,
{
    'tries: for _ in 0..PORT_TRIES {
        let mut out = Vec::with_capacity(ips.len());
        let mut chosen = port;
        for ip in ips {
            let addr = SocketAddr::from((*ip, chosen));
            match bind(addr).await {
                Ok((bound, got)) => {
                    chosen = got;
                    out.push(bound);
                }
                Err(e) if port == 0 && e.kind() == std::io::ErrorKind::AddrInUse => {
                    continue 'tries;
                }
                Err(source) => return Err(LabError::Bind { what, addr, source }),
            }
        }
        return Ok((chosen, out));
    }
    Err(LabError::NoPort {
        what,
        tries: PORT_TRIES,
    })
}
