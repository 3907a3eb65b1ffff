//! The answer of one DNS exchange read into ours: the CNAME chain followed to its addresses, the
//! smallest TTL, the rcode as sent. Shared by every transport of the resolve phase; sends nothing.

use std::net::IpAddr;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RData};

use crate::model::{DnsAnswer, Failure, FailureClass, Rcode};

use super::fail;

/// Longest CNAME chain followed inside one answer.
const MAX_CHAIN: usize = 16;

/// Follows the CNAME chain from `qname` through the answer section and collects the addresses.
pub(super) fn parse_answer(qname: &Name, reply: &Message) -> Result<DnsAnswer, Failure> {
    if reply.metadata.op_code != OpCode::Query {
        return Err(fail(
            FailureClass::DnsProtocol,
            "the reply is not a query response",
        ));
    }
    let rcode = reply.metadata.response_code;
    let mut answer = DnsAnswer {
        rcode: rcode_of(rcode),
        ..DnsAnswer::default()
    };
    let mut current = qname.clone();
    let mut ttl: Option<u32> = None;
    for _ in 0..MAX_CHAIN {
        let mut next = None;
        for r in reply.answers.iter().filter(|r| r.name == current) {
            ttl = Some(ttl.map_or(r.ttl, |t| t.min(r.ttl)));
            match &r.data {
                RData::A(a) => answer.ips.push(IpAddr::V4(a.0)),
                RData::AAAA(a) => answer.ips.push(IpAddr::V6(a.0)),
                RData::CNAME(c) => next = Some(c.0.clone()),
                _ => {}
            }
        }
        match next {
            Some(target) if answer.ips.is_empty() => {
                answer
                    .cname_chain
                    .push(target.to_ascii().trim_end_matches('.').to_string());
                current = target;
            }
            _ => break,
        }
    }
    answer.ttl_s = ttl;
    Ok(answer)
}

/// Hickory's response code as ours.
pub(super) fn rcode_of(r: ResponseCode) -> Rcode {
    Rcode::from(u16::from(r))
}
