//! Fake DingTalk, Feishu, WeCom and Slack robots (and an Alertmanager-style webhook receiver) on
//! 127.0.0.1, each checking what the real service checks — its token in the URL, DingTalk's
//! signature and timestamp (within an hour), Feishu's (its own construction, recomputed here
//! from the published algorithm), the content's size — and answering as the real one does:
//! HTTP 200 with an `errcode`/`code` for the Chinese robots, 429 with `Retry-After` for Slack,
//! including its throttle answer past `per_minute` messages in a sliding minute. It records the
//! messages it accepted and counts the ones it refused or throttled. Stopped when dropped.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use cdnwatch::config::ChannelKind;
use cdnwatch::notify::channels::hmac_sha256;
use serde_json::{Value, json};

/// The tokens the fakes' URLs carry.
pub const DINGTALK_TOKEN: &str = "fake-dingtalk-token";
pub const FEISHU_HOOK: &str = "fake-feishu-hook";
pub const WECOM_KEY: &str = "fake-wecom-key";
pub const SLACK_PATH: &str = "/services/T0000/B0000/fakeslacktoken";

/// How far a signed timestamp may be from now (DingTalk and Feishu: one hour).
const SIGN_WINDOW: Duration = Duration::from_secs(3600);

pub struct FakeRobot {
    kind: ChannelKind,
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Seen {
    received: Vec<Value>,
    refused: usize,
    throttled: usize,
    accepted_at: VecDeque<Instant>,
}

struct Robot {
    kind: ChannelKind,
    secret: Option<String>,
    per_minute: u32,
    seen: Arc<Mutex<Seen>>,
}

impl FakeRobot {
    /// A fake `kind` robot signed with `secret` (DingTalk, Feishu), taking `per_minute` messages
    /// in any sliding minute. Call inside a tokio runtime.
    pub fn start(kind: ChannelKind, secret: Option<&str>, per_minute: u32) -> FakeRobot {
        let std = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std.set_nonblocking(true).unwrap();
        let addr = std.local_addr().unwrap();
        let listener = tokio::net::TcpListener::from_std(std).unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let robot = Arc::new(Robot {
            kind,
            secret: secret.map(str::to_string),
            per_minute,
            seen: seen.clone(),
        });
        let app = axum::Router::new().fallback(handle).with_state(robot);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeRobot {
            kind,
            addr,
            seen,
            task,
        }
    }

    /// What it fakes.
    pub fn kind(&self) -> ChannelKind {
        self.kind
    }

    /// Its webhook URL, with the right token.
    pub fn url(&self) -> String {
        self.url_with(match self.kind {
            ChannelKind::Dingtalk => DINGTALK_TOKEN,
            ChannelKind::Feishu => FEISHU_HOOK,
            ChannelKind::Wecom => WECOM_KEY,
            ChannelKind::Slack => SLACK_PATH,
            ChannelKind::Webhook | ChannelKind::Alertmanager => "",
        })
    }

    /// Its webhook URL with a wrong token (or Slack path).
    pub fn wrong_url(&self) -> String {
        self.url_with(match self.kind {
            ChannelKind::Slack => "/services/T0000/B0000/wrong",
            _ => "wrong-token",
        })
    }

    fn url_with(&self, token: &str) -> String {
        let base = format!("http://{}", self.addr);
        match self.kind {
            ChannelKind::Dingtalk => format!("{base}/robot/send?access_token={token}"),
            ChannelKind::Feishu => format!("{base}/open-apis/bot/v2/hook/{token}"),
            ChannelKind::Wecom => format!("{base}/cgi-bin/webhook/send?key={token}"),
            ChannelKind::Slack => format!("{base}{token}"),
            ChannelKind::Webhook | ChannelKind::Alertmanager => format!("{base}/hook"),
        }
    }

    /// The messages it accepted, in order.
    pub fn received(&self) -> Vec<Value> {
        self.seen.lock().unwrap().received.clone()
    }

    /// Messages it refused (bad token, signature, timestamp, size or payload).
    pub fn refused(&self) -> usize {
        self.seen.lock().unwrap().refused
    }

    /// Messages it throttled.
    pub fn throttled(&self) -> usize {
        self.seen.lock().unwrap().throttled
    }
}

impl Drop for FakeRobot {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why a message is not taken.
enum Verdict {
    Refuse(Box<Response>),
    Throttle(Box<Response>),
}

fn refuse(r: Response) -> Verdict {
    Verdict::Refuse(Box::new(r))
}

async fn handle(State(robot): State<Arc<Robot>>, uri: Uri, body: Bytes) -> Response {
    let query: HashMap<String, String> =
        serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let checked = robot
        .check(uri.path(), &query, json.as_ref(), body.len())
        .and_then(|()| robot.admit());
    let mut seen = robot.seen.lock().unwrap();
    match checked {
        Ok(()) => {
            seen.received.push(json.unwrap_or_default());
            robot.ok()
        }
        Err(Verdict::Refuse(r)) => {
            seen.refused += 1;
            *r
        }
        Err(Verdict::Throttle(r)) => {
            seen.throttled += 1;
            *r
        }
    }
}

/// `{"errcode": code, "errmsg": msg}` with HTTP 200, as DingTalk and WeCom answer.
fn errcode(code: i64, msg: &str) -> Response {
    axum::Json(json!({ "errcode": code, "errmsg": msg })).into_response()
}

/// `{"code": code, "msg": msg, "data": {}}` with HTTP 200, as Feishu answers.
fn feishu_code(code: i64, msg: &str) -> Response {
    axum::Json(json!({ "code": code, "msg": msg, "data": {} })).into_response()
}

fn slack(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}

fn b64(bytes: [u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Whether `ts` (in `unit` per second) is within the signing window of now.
fn fresh(ts: Option<i64>, per_second: i64) -> bool {
    let now = chrono::Utc::now().timestamp_millis() * per_second / 1000;
    let window = SIGN_WINDOW.as_secs() as i64 * per_second;
    ts.is_some_and(|t| (now - t).abs() <= window)
}

impl Robot {
    fn check(
        &self,
        path: &str,
        query: &HashMap<String, String>,
        json: Option<&Value>,
        len: usize,
    ) -> Result<(), Verdict> {
        let str_at = |ptr: &str| json.and_then(|j| j.pointer(ptr)?.as_str()).unwrap_or("");
        match self.kind {
            ChannelKind::Dingtalk => {
                if query.get("access_token").map(String::as_str) != Some(DINGTALK_TOKEN) {
                    return Err(refuse(errcode(300001, "token is not exist")));
                }
                if let Some(secret) = &self.secret {
                    let ts = query.get("timestamp").and_then(|t| t.parse().ok());
                    if !fresh(ts, 1000) {
                        return Err(refuse(errcode(310000, "invalid timestamp")));
                    }
                    // Published: base64(HMAC-SHA256(secret, timestamp + "\n" + secret)).
                    let to_sign = format!("{}\n{secret}", ts.unwrap_or_default());
                    let want = b64(hmac_sha256(secret.as_bytes(), to_sign.as_bytes()));
                    if query.get("sign") != Some(&want) {
                        return Err(refuse(errcode(310000, "sign not match")));
                    }
                }
                if str_at("/msgtype") != "markdown" || str_at("/markdown/title").is_empty() {
                    return Err(refuse(errcode(40035, "缺少参数 json")));
                }
                if str_at("/markdown/text").len() > 20_000 {
                    return Err(refuse(errcode(460101, "message too long")));
                }
            }
            ChannelKind::Feishu => {
                if path != format!("/open-apis/bot/v2/hook/{FEISHU_HOOK}") {
                    return Err(refuse(feishu_code(
                        19001,
                        "param invalid: incoming webhook access token invalid",
                    )));
                }
                if len > 20 * 1024 {
                    return Err(refuse(feishu_code(19002, "request body too large")));
                }
                if let Some(secret) = &self.secret {
                    let ts: Option<i64> = str_at("/timestamp").parse().ok();
                    // Published: base64(HMAC-SHA256(key = timestamp + "\n" + secret, msg = "")).
                    let key = format!("{}\n{secret}", ts.unwrap_or_default());
                    let want = b64(hmac_sha256(key.as_bytes(), b""));
                    if !fresh(ts, 1) || str_at("/sign") != want {
                        return Err(refuse(feishu_code(
                            19021,
                            "sign match fail or timestamp is not within one hour from current time",
                        )));
                    }
                }
                if str_at("/msg_type").is_empty() {
                    return Err(refuse(feishu_code(9499, "Bad Request")));
                }
            }
            ChannelKind::Wecom => {
                if query.get("key").map(String::as_str) != Some(WECOM_KEY) {
                    return Err(refuse(errcode(93000, "invalid webhook url")));
                }
                if str_at("/msgtype") != "markdown" {
                    return Err(refuse(errcode(40008, "invalid message type")));
                }
                if str_at("/markdown/content").len() > 4096 {
                    return Err(refuse(errcode(
                        40058,
                        "markdown.content exceed max length 4096",
                    )));
                }
            }
            ChannelKind::Slack => {
                if path != SLACK_PATH {
                    return Err(refuse(slack(StatusCode::NOT_FOUND, "no_service")));
                }
                if json.is_none() {
                    return Err(refuse(slack(StatusCode::BAD_REQUEST, "invalid_payload")));
                }
                let text = str_at("/text");
                if text.is_empty() {
                    return Err(refuse(slack(StatusCode::BAD_REQUEST, "no_text")));
                }
                if text.chars().count() > 40_000 {
                    return Err(refuse(slack(StatusCode::BAD_REQUEST, "msg_too_long")));
                }
            }
            ChannelKind::Webhook | ChannelKind::Alertmanager => {
                if str_at("/version") != "4" {
                    return Err(refuse(slack(
                        StatusCode::BAD_REQUEST,
                        "not a version 4 payload",
                    )));
                }
            }
        }
        Ok(())
    }

    /// Takes the message, or throttles it past `per_minute` in the last minute.
    fn admit(&self) -> Result<(), Verdict> {
        let mut seen = self.seen.lock().unwrap();
        let now = Instant::now();
        while seen
            .accepted_at
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            seen.accepted_at.pop_front();
        }
        if seen.accepted_at.len() >= self.per_minute as usize {
            return Err(Verdict::Throttle(Box::new(match self.kind {
                ChannelKind::Dingtalk => {
                    errcode(130101, "send too fast, exceed 20 times per minute")
                }
                ChannelKind::Wecom => errcode(45009, "api freq out of limit"),
                ChannelKind::Feishu => feishu_code(11232, "frequency limited"),
                _ => {
                    let mut r = slack(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                    r
                }
            })));
        }
        seen.accepted_at.push_back(now);
        Ok(())
    }

    /// The real service's "taken".
    fn ok(&self) -> Response {
        match self.kind {
            ChannelKind::Dingtalk | ChannelKind::Wecom => errcode(0, "ok"),
            ChannelKind::Feishu => feishu_code(0, "success"),
            ChannelKind::Slack => slack(StatusCode::OK, "ok"),
            ChannelKind::Webhook | ChannelKind::Alertmanager => StatusCode::OK.into_response(),
        }
    }
}
