//! DNS over HTTPS for the resolve phase, through hickory-resolver built per probe with its cache
//! off, so nothing is shared between probes. The URL's host must be an IP address (a DoH server
//! named by host name would need another resolver to find it, which would blur whose answer this is).

use std::net::IpAddr;
use std::sync::Arc;

use hickory_resolver::Resolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::Message;
use hickory_resolver::proto::rr::{Name, RecordType};

use crate::model::{DnsAnswer, Failure, FailureClass, Phase};

/// Splits `https://IP[:PORT]/PATH`.
pub(super) fn parse_url(url: &str) -> Result<(IpAddr, u16, String), String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("`{url}` is not an https:// URL"))?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/dns-query".to_string()), |(a, p)| {
            (a, format!("/{p}"))
        });
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, rest) = v6
            .split_once(']')
            .ok_or_else(|| format!("`{authority}` has no closing `]`"))?;
        (h, rest.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("`{p}` is not a port"))?,
        None => 443,
    };
    let ip: IpAddr = host
        .parse()
        .map_err(|_| format!("the DoH host `{host}` must be an IP address"))?;
    Ok((ip, port, path))
}

pub(super) async fn resolve(
    url: &str,
    qname: &Name,
    tls: Option<rustls::ClientConfig>,
) -> Result<DnsAnswer, Failure> {
    let fail = |class, detail: String| Failure::new(class, Phase::Resolve, detail);
    let (ip, port, path) = parse_url(url).map_err(|e| fail(FailureClass::DnsProtocol, e))?;
    let mut ns = NameServerConfig::https(ip, Arc::from(ip.to_string()), Some(Arc::from(path)));
    for c in &mut ns.connections {
        c.port = port;
    }
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    opts.attempts = 1;
    let mut builder = Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![ns]),
        TokioRuntimeProvider::default(),
    )
    .with_options(opts);
    if let Some(tls) = tls {
        builder = builder.with_tls_config(tls);
    }
    let resolver = builder
        .build()
        .map_err(|e| fail(FailureClass::DnsProtocol, format!("DoH client: {e}")))?;
    match resolver.lookup(qname.clone(), RecordType::A).await {
        Ok(lookup) => super::answer::parse_answer(qname, &Message::from(lookup)),
        Err(NetError::Dns(DnsError::ResponseCode(rc))) => Ok(DnsAnswer {
            rcode: super::answer::rcode_of(rc),
            ..DnsAnswer::default()
        }),
        Err(NetError::Dns(DnsError::NoRecordsFound(nr))) => Ok(DnsAnswer {
            rcode: super::answer::rcode_of(nr.response_code),
            ..DnsAnswer::default()
        }),
        Err(NetError::Timeout) => Err(fail(
            FailureClass::DnsTimeout,
            format!("no DoH answer from {url}"),
        )),
        Err(e) => Err(fail(
            FailureClass::DnsProtocol,
            format!("DoH to {url}: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doh_urls_are_split_into_ip_port_and_path() {
        assert_eq!(
            parse_url("https://127.0.0.1:8443/dns-query").unwrap(),
            ("127.0.0.1".parse().unwrap(), 8443, "/dns-query".into())
        );
        assert_eq!(
            parse_url("https://[::1]/q").unwrap(),
            ("::1".parse().unwrap(), 443, "/q".into())
        );
        assert_eq!(parse_url("https://127.0.0.2").unwrap().2, "/dns-query");
        assert!(
            parse_url("https://dns.example/dns-query")
                .unwrap_err()
                .contains("must be an IP address")
        );
        assert!(parse_url("http://127.0.0.1/").is_err());
    }
}
