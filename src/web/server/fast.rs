//! The host-list fast path on the wire: a connection's plain `GET /api/v1/hostlist` requests are
//! answered from bytes made once per version and thread, before hyper sees the connection; the
//! first request of any other kind hands the connection, with what has been read of it, to hyper
//! for good.
//!
//! Written by hand because no crate offers it: hyper has no hook below its dispatcher, and for
//! this one request — what every app polls, mostly answered 304 — building a `Request` with its
//! header map and URI, then encoding a `Response`, cost as much user time as nginx spends on the
//! whole request (README, "Benchmarks"). The head is parsed with `httparse`, hyper's own parser.
//! Only a request answered here exactly as hyper would answer it is taken ([`head`]): HTTP/1.1,
//! `GET`, exactly the host-list target, no body, no `Expect` or `Upgrade`, at most one
//! `If-None-Match`, a head within the listener's caps. Anything else — a head not complete within
//! [`FAST_HEAD_MAX`] bytes too — goes to hyper, which answers or refuses it as before. The
//! answer's bytes are hyper's own serialization of `hostlist::current_answer` (same headers, same
//! order, same `date`), so the two paths cannot drift apart.

use std::cell::RefCell;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Buf as _, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::activity::{Activity, Watched};
use super::limits::Limits;
use crate::publish::{Published, Publisher};
use crate::web::hostlist;

/// The target the fast path answers.
const PATH: &str = "/api/v1/hostlist";
/// A head not complete within this many bytes is left to hyper (and its caps).
pub(super) const FAST_HEAD_MAX: usize = 4096;
/// Headers a fast-path head may have; more go to hyper.
const MAX_HEADERS: usize = 32;
/// How much room a read is given.
const READ_ROOM: usize = 2048;

/// What the start of a connection's unread bytes is.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Head<'a> {
    /// A host-list request whose head is `len` bytes, with its `If-None-Match` if any, and
    /// whether it asked for the connection to be closed after it.
    HostList {
        len: usize,
        if_none_match: Option<&'a [u8]>,
        close: bool,
    },
    /// Not yet a whole head.
    Partial,
    /// Anything else: hyper's to answer.
    Other,
}

/// Reads what `buf` begins with; see the module's comment for what the fast path takes.
pub(super) fn head<'a>(buf: &'a [u8], limits: &Limits) -> Head<'a> {
    // Uninitialized, as hyper does: a request does not pay for zeroing slots it does not fill.
    let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let len = match request.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::Other,
    };
    if request.method != Some("GET") || request.version != Some(1) || request.path != Some(PATH) {
        return Head::Other;
    }
    let (mut if_none_match, mut close, mut header_bytes) = (None, false, 0);
    for h in request.headers.iter() {
        header_bytes += Limits::header_bytes(h.name, h.value);
        let name = h.name;
        if name.eq_ignore_ascii_case("if-none-match") {
            if if_none_match.replace(h.value).is_some() {
                return Head::Other;
            }
        } else if name.eq_ignore_ascii_case("connection") {
            match closes(h.value) {
                Some(c) => close |= c,
                None => return Head::Other,
            }
        } else if ["content-length", "transfer-encoding", "expect", "upgrade"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
        {
            return Head::Other;
        }
    }
    if !limits.within_caps(PATH.len(), header_bytes) {
        return Head::Other;
    }
    Head::HostList {
        len,
        if_none_match,
        close,
    }
}

/// A `Connection` header's options: whether it says `close`; `None` for an option other than
/// `close` and `keep-alive` (an upgrade, a hop-by-hop header: hyper's to handle).
fn closes(value: &[u8]) -> Option<bool> {
    let mut close = false;
    for option in value.split(|b| *b == b',') {
        let option = option.trim_ascii();
        if option.eq_ignore_ascii_case(b"close") {
            close = true;
        } else if !option.eq_ignore_ascii_case(b"keep-alive") && !option.is_empty() {
            return None;
        }
    }
    Some(close)
}

/// How a connection's fast path ended.
#[derive(Debug)]
pub(super) enum Outcome {
    /// The client closed it, it failed, or it asked to be closed after an answer.
    Closed,
    /// A request for hyper: these bytes, read already, begin it ([`Watched::replay`]).
    Hyper(BytesMut),
}

/// Serves `io`'s host-list requests until one is not (or nothing is published yet, so hyper
/// answers the 503), noting each answer in `activity` as the hyper path does. Pipelined requests
/// are answered in order, up to [`OUT_BATCH`] bytes of answers a write: a client that sends
/// without reading holds no more than that of ours.
pub(super) async fn serve(
    io: &mut Watched,
    publisher: &Publisher,
    activity: &Activity,
    limits: &Limits,
) -> Outcome {
    let mut read = BytesMut::new();
    let mut out = Vec::new();
    let mut step = Step::Read;
    loop {
        if step == Step::Read {
            if read.capacity() - read.len() < READ_ROOM / 2 {
                read.reserve(READ_ROOM);
            }
            match io.read_buf(&mut read).await {
                Ok(0) | Err(_) => return Outcome::Closed,
                Ok(_) => {}
            }
        }
        step = answer_read(&mut read, &mut out, (publisher, activity, limits));
        if !out.is_empty() {
            if io.write_all(&out).await.is_err() {
                return Outcome::Closed;
            }
            out.clear();
        }
        match step {
            Step::Read | Step::Again => {}
            Step::Close => {
                let _ = io.shutdown().await;
                return Outcome::Closed;
            }
            Step::Hyper => return Outcome::Hyper(read),
        }
    }
}

/// The most bytes of answers written at once.
const OUT_BATCH: usize = 16 * 1024;

/// What [`serve`] does after answering what it has read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Read more: no whole head is left.
    Read,
    /// Answer more of what is read, once this batch is written.
    Again,
    /// Close the connection: its last request asked for it.
    Close,
    /// Hand the connection to hyper.
    Hyper,
}

/// Answers the whole host-list heads at the start of `read` into `out`, consuming them, until a
/// batch is full, a head is not whole or not ours, or one asks for the connection to be closed.
fn answer_read(
    read: &mut BytesMut,
    out: &mut Vec<u8>,
    (publisher, activity, limits): (&Publisher, &Activity, &Limits),
) -> Step {
    loop {
        match head(read, limits) {
            Head::HostList {
                len,
                if_none_match,
                close,
            } => {
                if !answer(publisher, if_none_match, close, out) {
                    return Step::Hyper;
                }
                read.advance(len);
                activity.answered_at_once();
                if close {
                    return Step::Close;
                }
                if !read.is_empty() {
                    // The next head has begun: it is due within the header timeout.
                    activity.read();
                }
                if out.len() >= OUT_BATCH {
                    return Step::Again;
                }
            }
            Head::Partial if read.len() < FAST_HEAD_MAX => return Step::Read,
            Head::Partial | Head::Other => return Step::Hyper,
        }
    }
}

/// The answer to a host-list request with `if_none_match`, appended to `out`; false when nothing
/// is published yet.
fn answer(
    publisher: &Publisher,
    if_none_match: Option<&[u8]>,
    close: bool,
    out: &mut Vec<u8>,
) -> bool {
    let serving = publisher.serving();
    let Some(p) = (*serving).as_ref() else {
        return false;
    };
    let not_modified = if_none_match.is_some_and(|v| hostlist::etag_matches(v, p));
    WIRE.with_borrow_mut(|wire| wire.answer(p, not_modified, close, out));
    true
}

thread_local! {
    /// This HTTP thread's serialized answers and `date` line.
    static WIRE: RefCell<Wire> = const { RefCell::new(Wire::new()) };
}

/// The answers for the version being served, as bytes, and the `date` line of this second.
struct Wire {
    /// The version they were made for (held, so its address is not reused by another).
    version: Option<Arc<Published>>,
    /// The 200's head up to its `connection` line, and the 304's; the 200's `content-length`.
    ok: Vec<u8>,
    not_modified: Vec<u8>,
    length: Vec<u8>,
    /// The second `date` was made for, since the epoch.
    second: u64,
    /// `date: <IMF-fixdate>\r\n`.
    date: Vec<u8>,
}

impl Wire {
    const fn new() -> Wire {
        Wire {
            version: None,
            ok: Vec::new(),
            not_modified: Vec::new(),
            length: Vec::new(),
            second: u64::MAX,
            date: Vec::new(),
        }
    }

    fn answer(&mut self, p: &Arc<Published>, not_modified: bool, close: bool, out: &mut Vec<u8>) {
        if !self.version.as_ref().is_some_and(|v| Arc::ptr_eq(v, p)) {
            self.ok = serialize(p, false);
            self.not_modified = serialize(p, true);
            self.length = format!("content-length: {}\r\n", p.body.len()).into_bytes();
            self.version = Some(p.clone());
        }
        self.refresh_date();
        out.extend_from_slice(if not_modified {
            &self.not_modified
        } else {
            &self.ok
        });
        // hyper's order: the response's headers, `connection`, `content-length`, `date`.
        if close {
            out.extend_from_slice(b"connection: close\r\n");
        }
        if !not_modified {
            out.extend_from_slice(&self.length);
        }
        out.extend_from_slice(&self.date);
        out.extend_from_slice(b"\r\n");
        if !not_modified {
            out.extend_from_slice(&p.body);
        }
    }

    /// hyper's `date`: the current second as an IMF-fixdate, made again when the second changes.
    fn refresh_date(&mut self) {
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second != self.second {
            self.date.clear();
            let _ = write!(self.date, "date: {}\r\n", httpdate::HttpDate::from(now));
            self.second = second;
        }
    }
}

/// The head of `hostlist::current_answer` for `p` as hyper writes it, up to the lines hyper adds
/// (`connection`, `content-length`, `date`).
fn serialize(p: &Published, not_modified: bool) -> Vec<u8> {
    let response = hostlist::current_answer(p, not_modified);
    let status = response.status();
    let mut head = Vec::with_capacity(512);
    let _ = write!(
        head,
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    );
    for (name, value) in response.headers() {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head
}

#[cfg(test)]
mod tests;
