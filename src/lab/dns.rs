//! The lab's resolvers: one hickory-server per (region, resolver) on its own loopback address,
//! answering the lab hosts with a CNAME to the vendor's name and the region's own edges, and
//! applying DNS faults (SERVFAIL, NXDOMAIN, REFUSED, silence, delay, a stale answer).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hickory_proto::op::{HeaderCounts, Metadata, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo, Server};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};

use super::Shared;
use super::fault::{Context, FaultKind};
use super::topology::Topology;

const CNAME_TTL: u32 = 300;
const A_TTL: u32 = 60;
/// How long the TCP side keeps an idle connection.
const TCP_IDLE: Duration = Duration::from_secs(10);

pub(crate) struct ResolverHandler {
    shared: Arc<Shared>,
    region: &'static str,
    resolver: &'static str,
}

pub(crate) fn server(
    shared: Arc<Shared>,
    udp: UdpSocket,
    tcp: TcpListener,
    region: &'static str,
    resolver: &'static str,
) -> Server<ResolverHandler> {
    let mut server = Server::new(ResolverHandler {
        shared,
        region,
        resolver,
    });
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE, 4096);
    server
}

fn name(s: &str) -> Name {
    Name::from_ascii(format!("{s}.")).expect("lab names are valid")
}

#[async_trait::async_trait]
impl RequestHandler for ResolverHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        self.shared.dns_queries.fetch_add(1, Ordering::Relaxed);
        let builder = MessageResponseBuilder::from_message_request(request);
        let Ok(info) = request.request_info() else {
            let msg = builder.error_msg(&request.metadata, ResponseCode::FormErr);
            return sent(response.send_response(msg).await, &request.metadata);
        };
        let qname = info.query.name().to_string();
        let qtype = info.query.query_type();
        let Some(host) = Topology::host_of_name(&qname) else {
            let msg = builder.error_msg(&request.metadata, ResponseCode::NXDomain);
            return sent(response.send_response(msg).await, &request.metadata);
        };
        let vendor = Topology::vendor_of(host).expect("lab host");
        let ctx = Context {
            vendor: Some(vendor),
            host: Some(host),
            region: Some(self.region),
            resolver: Some(self.resolver),
            ..Context::default()
        };
        let faults = &self.shared.faults;
        let errors = [
            FaultKind::DnsTimeout,
            FaultKind::DnsServfail,
            FaultKind::DnsNxdomain,
            FaultKind::DnsRefused,
        ];
        if let Some(f) = faults.pick(&ctx, &errors) {
            let code = match f.kind {
                FaultKind::DnsServfail => ResponseCode::ServFail,
                FaultKind::DnsNxdomain => ResponseCode::NXDomain,
                FaultKind::DnsRefused => ResponseCode::Refused,
                // Silence: the query is read and never answered.
                _ => return unsent(&request.metadata),
            };
            let msg = builder.error_msg(&request.metadata, code);
            return sent(response.send_response(msg).await, &request.metadata);
        }
        if let Some(f) = faults.pick(&ctx, &[FaultKind::DnsDelay]) {
            tokio::time::sleep(Duration::from_millis(f.ms.unwrap_or(0))).await;
        }
        let stale = faults.pick(&ctx, &[FaultKind::StaleDns]).is_some();
        let target = Topology::cname_of(host).expect("lab host");
        let mut records = Vec::new();
        if qname.trim_end_matches('.').eq_ignore_ascii_case(host) {
            records.push(Record::from_rdata(
                name(host),
                CNAME_TTL,
                RData::CNAME(CNAME(name(&target))),
            ));
        }
        let empty = faults.pick(&ctx, &[FaultKind::DnsEmpty]).is_some();
        if qtype == RecordType::A && !empty {
            let edges = if stale {
                Topology::retired_edge(vendor, self.region)
                    .into_iter()
                    .collect()
            } else {
                Topology::edges(vendor, self.region)
            };
            for ip in edges {
                records.push(Record::from_rdata(name(&target), A_TTL, RData::A(A(ip))));
            }
        }
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        let msg = builder.build(metadata, records.iter(), [], [], []);
        sent(response.send_response(msg).await, &request.metadata)
    }
}

fn unsent(request: &Metadata) -> ResponseInfo {
    ResponseInfo::from(hickory_proto::op::Header {
        metadata: Metadata::response_from_request(request),
        counts: HeaderCounts::default(),
    })
}

fn sent(result: Result<ResponseInfo, impl std::fmt::Display>, request: &Metadata) -> ResponseInfo {
    match result {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(error = %e, "lab resolver could not send its answer");
            let mut info = Metadata::response_from_request(request);
            info.response_code = ResponseCode::ServFail;
            ResponseInfo::from(hickory_proto::op::Header {
                metadata: info,
                counts: HeaderCounts::default(),
            })
        }
    }
}
