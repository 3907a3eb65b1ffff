//! The resolve phase: one query to one resolver, over its own transport, timed and classified.
//!
//! UDP and TCP exchanges are written here on hickory-proto's message codec rather than through a
//! resolver or hickory's client, because the prober must own what those hide: a fresh socket per
//! probe (nothing cached or pooled between probes), the exact time of the one exchange, the rcode
//! as sent, the EDNS client subnet, a TC reply retried over TCP, and replies with a wrong id ignored
//! until the timeout. DoH is the same query POSTed over HTTP/1.1 and TLS (`doh`).

mod answer;
mod doh;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::config::{self, Transport};
use crate::model::{DnsAnswer, Failure, FailureClass, Phase, Rcode};

use answer::parse_answer;

/// The outcome of the resolve phase.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsOutcome {
    /// The answer, when one parsed (even one with a failing rcode).
    pub answer: Option<DnsAnswer>,
    /// How long the phase took.
    pub dns_ms: f64,
    /// Why the phase failed; `None` when it passed.
    pub failure: Option<Failure>,
}

/// Largest UDP reply read; larger replies are cut by the kernel and fail to parse.
const UDP_BUF: usize = 4096;

fn fail(class: FailureClass, detail: impl Into<String>) -> Failure {
    Failure::new(class, Phase::Resolve, detail)
}

/// Resolves `name` (A records) through `transport`, within `timeout`, sending `subnet` as EDNS
/// client subnet when given. Never panics and never outlives `timeout` by more than scheduling.
pub async fn resolve(
    transport: &Transport,
    name: &str,
    subnet: Option<config::ClientSubnet>,
    timeout: Duration,
) -> DnsOutcome {
    let started = Instant::now();
    let result = match tokio::time::timeout(timeout, exchange(transport, name, subnet)).await {
        Ok(r) => r,
        Err(_) => Err(fail(
            FailureClass::DnsTimeout,
            format!("no answer within {} ms", timeout.as_millis()),
        )),
    };
    let dns_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(answer) => {
            let failure = answer_failure(&answer);
            DnsOutcome {
                answer: Some(answer),
                dns_ms,
                failure,
            }
        }
        Err(failure) => DnsOutcome {
            answer: None,
            dns_ms,
            failure: Some(failure),
        },
    }
}

/// The class of an answer that parsed: its rcode, or no address at the end of the chain.
fn answer_failure(a: &DnsAnswer) -> Option<Failure> {
    let class = match a.rcode {
        Rcode::NoError if a.ips.is_empty() => FailureClass::DnsNoAnswer,
        Rcode::NoError => return None,
        Rcode::ServFail => FailureClass::DnsServfail,
        Rcode::NXDomain => FailureClass::DnsNxdomain,
        Rcode::Refused => FailureClass::DnsRefused,
        _ => FailureClass::DnsProtocol,
    };
    let detail = if class == FailureClass::DnsNoAnswer {
        "NOERROR but no address record".to_string()
    } else {
        format!("the resolver answered {}", a.rcode)
    };
    Some(fail(class, detail))
}

async fn exchange(
    transport: &Transport,
    name: &str,
    subnet: Option<config::ClientSubnet>,
) -> Result<DnsAnswer, Failure> {
    let mut qname = Name::from_ascii(name)
        .map_err(|e| fail(FailureClass::DnsProtocol, format!("bad name {name}: {e}")))?;
    // Asked as a fully qualified name, so the reply's question (always absolute) compares equal.
    qname.set_fqdn(true);
    match transport {
        Transport::Udp(addr) => {
            let query = build_query(&qname, subnet)?;
            let reply = udp_exchange(*addr, &query).await?;
            if reply.metadata.truncation {
                // The answer did not fit: ask again over TCP, as resolvers do (RFC 7766).
                let query = build_query(&qname, subnet)?;
                return parse_answer(&qname, &tcp_exchange(*addr, &query).await?);
            }
            parse_answer(&qname, &reply)
        }
        Transport::Tcp(addr) => {
            let query = build_query(&qname, subnet)?;
            parse_answer(&qname, &tcp_exchange(*addr, &query).await?)
        }
        Transport::Doh(url) => doh::resolve(url.as_str(), &qname, subnet, None).await,
    }
}

fn build_query(name: &Name, subnet: Option<config::ClientSubnet>) -> Result<Message, Failure> {
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name.clone(), RecordType::A));
    let mut edns = Edns::new();
    edns.set_max_payload(UDP_BUF as u16);
    if let Some(config::ClientSubnet { ip, prefix }) = subnet {
        edns.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(ip, prefix, 0)));
    }
    msg.set_edns(edns);
    Ok(msg)
}

fn encode(msg: &Message) -> Result<Vec<u8>, Failure> {
    msg.to_vec().map_err(|e| {
        fail(
            FailureClass::DnsProtocol,
            format!("cannot encode the query: {e}"),
        )
    })
}

/// Whether `reply` answers `query`: a response with the same id and the same question.
fn answers(query: &Message, reply: &Message) -> bool {
    reply.metadata.id == query.metadata.id
        && reply.metadata.message_type == MessageType::Response
        && reply.queries.first().map(|q| q.name()) == query.queries.first().map(|q| q.name())
}

async fn udp_exchange(server: SocketAddr, query: &Message) -> Result<Message, Failure> {
    let io = |e: std::io::Error| fail(FailureClass::DnsProtocol, format!("UDP to {server}: {e}"));
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .expect("literal");
    let socket = UdpSocket::bind(bind).await.map_err(io)?;
    socket.connect(server).await.map_err(io)?;
    socket.send(&encode(query)?).await.map_err(io)?;
    let mut buf = vec![0u8; UDP_BUF];
    loop {
        let n = match socket.recv(&mut buf).await {
            Ok(n) => n,
            // An ICMP port unreachable: nothing listens there.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(fail(
                    FailureClass::DnsTimeout,
                    format!("{server} refused the UDP query (nothing listens)"),
                ));
            }
            Err(e) => return Err(io(e)),
        };
        // A reply that does not parse or does not match is ignored, as a spoofed or stray datagram
        // would be; the timeout ends the wait.
        if let Ok(reply) = Message::from_vec(&buf[..n])
            && answers(query, &reply)
        {
            return Ok(reply);
        }
    }
}

async fn tcp_exchange(server: SocketAddr, query: &Message) -> Result<Message, Failure> {
    let io = |e: std::io::Error| fail(FailureClass::DnsProtocol, format!("TCP to {server}: {e}"));
    let mut stream = TcpStream::connect(server).await.map_err(|e| {
        let class = if e.kind() == std::io::ErrorKind::ConnectionRefused {
            FailureClass::DnsTimeout
        } else {
            FailureClass::DnsProtocol
        };
        fail(class, format!("TCP to {server}: {e}"))
    })?;
    stream.set_nodelay(true).map_err(io)?;
    let bytes = encode(query)?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    framed.extend_from_slice(&bytes);
    stream.write_all(&framed).await.map_err(io)?;
    loop {
        let len = stream.read_u16().await.map_err(|e| {
            fail(
                FailureClass::DnsProtocol,
                format!("TCP reply from {server} ended early: {e}"),
            )
        })?;
        let mut buf = vec![0u8; usize::from(len)];
        stream.read_exact(&mut buf).await.map_err(|e| {
            fail(
                FailureClass::DnsProtocol,
                format!("TCP reply from {server} ended early: {e}"),
            )
        })?;
        let reply = Message::from_vec(&buf).map_err(|e| {
            fail(
                FailureClass::DnsProtocol,
                format!("malformed reply from {server}: {e}"),
            )
        })?;
        if answers(query, &reply) {
            return Ok(reply);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{OpCode, ResponseCode};
    use hickory_proto::rr::rdata::{A, CNAME};
    use hickory_proto::rr::{RData, Record};
    use std::net::IpAddr;

    #[test]
    fn a_cname_chain_is_followed_to_its_addresses_with_the_smallest_ttl() {
        let q = Name::from_ascii("cdn.shop.test.").unwrap();
        let mid = Name::from_ascii("cdn.shop.test.alpha-cdn.test.").unwrap();
        let mut reply = Message::response(7, OpCode::Query);
        reply.add_answer(Record::from_rdata(
            q.clone(),
            300,
            RData::CNAME(CNAME(mid.clone())),
        ));
        reply.add_answer(Record::from_rdata(
            mid.clone(),
            30,
            RData::A(A::new(127, 21, 1, 1)),
        ));
        reply.add_answer(Record::from_rdata(mid, 60, RData::A(A::new(127, 21, 1, 2))));
        let a = parse_answer(&q, &reply).unwrap();
        assert_eq!(a.cname_chain, ["cdn.shop.test.alpha-cdn.test"]);
        assert_eq!(
            a.ips,
            [
                "127.21.1.1".parse::<IpAddr>().unwrap(),
                "127.21.1.2".parse().unwrap()
            ]
        );
        assert_eq!(a.ttl_s, Some(30));
        assert_eq!(a.rcode.as_str(), "NoError");
        assert!(answer_failure(&a).is_none());
    }

    #[test]
    fn rcodes_and_empty_answers_get_their_classes() {
        let q = Name::from_ascii("x.test.").unwrap();
        for (code, class) in [
            (ResponseCode::ServFail, FailureClass::DnsServfail),
            (ResponseCode::NXDomain, FailureClass::DnsNxdomain),
            (ResponseCode::Refused, FailureClass::DnsRefused),
            (ResponseCode::NotImp, FailureClass::DnsProtocol),
            (ResponseCode::NoError, FailureClass::DnsNoAnswer),
        ] {
            let reply = Message::error_msg(1, OpCode::Query, code);
            let a = parse_answer(&q, &reply).unwrap();
            assert_eq!(answer_failure(&a).map(|f| f.class), Some(class), "{code:?}");
        }
    }
}
