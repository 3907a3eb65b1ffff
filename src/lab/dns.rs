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

/// The DNS faults that answer with an error (or, `dns_timeout`, not at all).
const ERROR_FAULTS: [FaultKind; 4] = [
    FaultKind::DnsTimeout,
    FaultKind::DnsServfail,
    FaultKind::DnsNxdomain,
    FaultKind::DnsRefused,
];

#[async_trait::async_trait]
impl RequestHandler for ResolverHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        self.shared.dns_queries.fetch_add(1, Ordering::Relaxed);
        let Ok(info) = request.request_info() else {
            return error(request, &mut response, ResponseCode::FormErr).await;
        };
        let qname = info.query.name().to_string();
        let Some(host) = self.shared.topology.host_of_name(&qname) else {
            return error(request, &mut response, ResponseCode::NXDomain).await;
        };
        let ctx = self.context(host);
        let faults = &self.shared.faults;
        if let Some(f) = faults.pick(&ctx, &ERROR_FAULTS) {
            let Some(code) = error_code(f.kind) else {
                // Silence: the query is read and never answered.
                return unsent(&request.metadata);
            };
            return error(request, &mut response, code).await;
        }
        if let Some(f) = faults.pick(&ctx, &[FaultKind::DnsDelay]) {
            super::fault::delay(f.ms.unwrap_or(0)).await;
        }
        let records = self.records(&ctx, &qname, info.query.query_type());
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        let builder = MessageResponseBuilder::from_message_request(request);
        let msg = builder.build(metadata, records.iter(), [], [], []);
        sent(response.send_response(msg).await, &request.metadata)
    }
}

impl ResolverHandler {
    /// What is known when this resolver is asked about lab host `host`.
    fn context(&self, host: &'static str) -> Context<'static> {
        Context {
            vendor: Some(self.shared.topology.vendor_of(host).expect("lab host")),
            host: Some(host),
            region: Some(self.region),
            resolver: Some(self.resolver),
            ..Context::default()
        }
    }

    /// The answer to `qname` (the host itself or its CNAME target): the CNAME when asked for the
    /// host, then for A the region's edges (the retired one under `stale_dns`, none under
    /// `dns_empty`).
    fn records(&self, ctx: &Context<'static>, qname: &str, qtype: RecordType) -> Vec<Record> {
        // A lab host's context (see `context`) names both.
        let host = ctx.host.expect("lab host");
        let vendor = ctx.vendor.expect("lab host");
        let faults = &self.shared.faults;
        let stale = faults.pick(ctx, &[FaultKind::StaleDns]).is_some();
        let target = self.shared.topology.cname_of(host).expect("lab host");
        let mut records = Vec::new();
        if qname.trim_end_matches('.').eq_ignore_ascii_case(host) {
            records.push(Record::from_rdata(
                name(host),
                CNAME_TTL,
                RData::CNAME(CNAME(name(&target))),
            ));
        }
        let empty = faults.pick(ctx, &[FaultKind::DnsEmpty]).is_some();
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
        records
    }
}

/// The response code an error fault answers with; `None` for `dns_timeout` (silence).
fn error_code(kind: FaultKind) -> Option<ResponseCode> {
    match kind {
        FaultKind::DnsServfail => Some(ResponseCode::ServFail),
        FaultKind::DnsNxdomain => Some(ResponseCode::NXDomain),
        FaultKind::DnsRefused => Some(ResponseCode::Refused),
        _ => None,
    }
}

/// Answers `request` with the error `code` and no records.
async fn error<R: ResponseHandler>(
    request: &Request,
    response: &mut R,
    code: ResponseCode,
) -> ResponseInfo {
    let builder = MessageResponseBuilder::from_message_request(request);
    let msg = builder.error_msg(&request.metadata, code);
    sent(response.send_response(msg).await, &request.metadata)
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
