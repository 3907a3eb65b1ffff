//! DNS over HTTPS (RFC 8484) for the resolve phase: the same query message as over UDP and TCP
//! (with the region's client subnet), POSTed as `application/dns-message` over HTTP/1.1 on a new
//! TLS connection per probe (nothing shared between probes), through `crate::outbound`. The URL's
//! host must be an IP address (a DoH server named by host name would need another resolver to
//! find it, which would blur whose answer this is); the certificate is verified for that IP.
//!
//! Written on `outbound` rather than hickory-resolver's DoH client: that client alone brought
//! HTTP/2 (h2), a cache crate and the resolver into the release build — about six seconds of a
//! first build that must stay under three minutes — for one request per probe.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use hickory_proto::op::Message;
use hickory_proto::rr::Name;

use crate::config::{ClientSubnet, split_doh_url};
use crate::model::{DnsAnswer, Failure, FailureClass, Phase};
use crate::outbound::{self, Outbound, PostError};

/// The longest DoH answer read (a DNS message is at most 64 KiB).
const ANSWER_CAP: usize = 65_535;
/// A bound of its own; the resolve phase's timeout (around this call) is what counts.
const CALL_BOUND: Duration = Duration::from_secs(120);
/// Asks the DoH server at `url` for `qname`'s A records; `tls` verifies its certificate
/// (Mozilla's roots when `None`).
pub(super) async fn resolve(
    url: &str,
    qname: &Name,
    subnet: Option<ClientSubnet>,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<DnsAnswer, Failure> {
    let fail = |class, detail: String| Failure::new(class, Phase::Resolve, detail);
    let (ip, port, path) = split_doh_url(url).map_err(|e| fail(FailureClass::DnsProtocol, e))?;
    let query = super::build_query(qname, subnet)?;
    let body = super::encode(&query)?;
    let host = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let target = format!("https://{host}:{port}{path}");
    let request = Outbound {
        method: hyper::Method::POST,
        url: &target,
        headers: vec![
            (
                hyper::header::CONTENT_TYPE,
                "application/dns-message".into(),
            ),
            (hyper::header::ACCEPT, "application/dns-message".into()),
        ],
        body: Bytes::from(body),
        answer_cap: ANSWER_CAP,
    };
    let tls = tls.unwrap_or_else(mozilla);
    let answer = outbound::send(request, &tls, CALL_BOUND)
        .await
        .map_err(|e| match e {
            PostError::Timeout(_) => fail(
                FailureClass::DnsTimeout,
                format!("no DoH answer from {url}"),
            ),
            e => fail(FailureClass::DnsProtocol, format!("DoH to {url}: {e}")),
        })?;
    if answer.status != 200 {
        return Err(fail(
            FailureClass::DnsProtocol,
            format!("DoH to {url}: HTTP {}", answer.status),
        ));
    }
    let reply = Message::from_vec(&answer.body).map_err(|e| {
        fail(
            FailureClass::DnsProtocol,
            format!("DoH answer from {url}: {e}"),
        )
    })?;
    if !super::answers(&query, &reply) {
        return Err(fail(
            FailureClass::DnsProtocol,
            format!("the DoH answer from {url} is not for this query"),
        ));
    }
    super::answer::parse_answer(qname, &reply)
}

/// The TLS setup for DoH servers: Mozilla's roots, built once.
fn mozilla() -> Arc<rustls::ClientConfig> {
    static TLS: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    TLS.get_or_init(|| outbound::tls(crate::trust::root_store(true, &[])))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer of the test DoH server to one request: an A record of 127.0.0.9 for the
    /// query's name (127.0.0.10 when the query carried a client subnet); FORMERR when the request
    /// is not a POST of `application/dns-message`.
    fn answer(post: bool, body: &[u8]) -> Bytes {
        use hickory_proto::op::{MessageType, ResponseCode};
        use hickory_proto::rr::{RData, Record, rdata::A};
        let query = Message::from_vec(body).unwrap();
        let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
        reply.metadata.message_type = MessageType::Response;
        reply.metadata.response_code = if post {
            ResponseCode::NoError
        } else {
            ResponseCode::FormErr
        };
        let q = query.queries[0].clone();
        let name = q.name().clone();
        reply.add_query(q);
        let subnet = (query.edns.as_ref()).is_some_and(|e| !e.options().as_ref().is_empty());
        let ip = if subnet {
            [127, 0, 0, 10]
        } else {
            [127, 0, 0, 9]
        };
        let a = RData::A(A::from(std::net::Ipv4Addr::from(ip)));
        reply.add_answer(Record::from_rdata(name, 60, a));
        Bytes::from(reply.to_vec().unwrap())
    }

    /// A DoH server on 127.0.0.1 (the lab CA's certificate for that IP) answering with
    /// [`answer`]; its address and the CA.
    async fn doh_server() -> (std::net::SocketAddr, String) {
        use http_body_util::{BodyExt as _, Full};
        let ca = crate::lab::LabCa::new().unwrap();
        let config = (ca.server_config("127.0.0.1", crate::lab::CertVariant::Valid)).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let tls = tokio_rustls::TlsAcceptor::from(config.clone());
                tokio::spawn(async move {
                    let Ok(stream) = tls.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(
                        |req: hyper::Request<hyper::body::Incoming>| async move {
                            let post = req.method() == hyper::Method::POST
                                && req.headers()[hyper::header::CONTENT_TYPE]
                                    == "application/dns-message";
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let reply = Full::new(answer(post, &body));
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(reply))
                        },
                    );
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let http = hyper::server::conn::http1::Builder::new();
                    let _ = http.serve_connection(io, service).await;
                });
            }
        });
        (addr, ca.ca_pem().to_string())
    }

    #[tokio::test]
    async fn a_doh_query_is_posted_over_tls_and_its_answer_read_with_the_subnet() {
        let (addr, ca) = doh_server().await;
        let roots = crate::trust::root_store(
            false,
            &crate::trust::parse_pem_certs(ca.as_bytes(), "lab CA").unwrap(),
        );
        let tls = Some(outbound::tls(roots));
        let url = format!("https://127.0.0.1:{}/dns-query", addr.port());
        let qname = Name::from_ascii("cdn.shop.test.").unwrap();
        let a = resolve(&url, &qname, None, tls.clone()).await.unwrap();
        assert_eq!(a.ips, vec![IpAddr::from([127, 0, 0, 9])], "{a:?}");
        let subnet = ClientSubnet {
            ip: IpAddr::from([198, 51, 100, 0]),
            prefix: 24,
        };
        let a = resolve(&url, &qname, Some(subnet), tls).await.unwrap();
        assert_eq!(
            a.ips,
            vec![IpAddr::from([127, 0, 0, 10])],
            "the subnet went along"
        );
        // Mozilla's roots do not know the lab's CA: a certificate failure, not an answer.
        let e = resolve(&url, &qname, None, None).await.unwrap_err();
        assert_eq!(e.class, FailureClass::DnsProtocol, "{e:?}");
        assert!(e.detail.contains("TLS"), "{}", e.detail);
    }
}
