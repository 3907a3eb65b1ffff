//! Silences and maintenance windows: a silence mutes the messages it matches and nothing else, the
//! engine still decides (hosts are disabled as ever), an expired silence mutes nothing, and a
//! fail-open always reaches on-call. Made through the API (admin token, fields named in errors)
//! and on the config page (session + CSRF), audited as events. Stepped clock; the senders run in
//! real time, so a look at the fake robot waits a little for them.

use std::time::{Duration, Instant};

use cdnwatch::config::{ChannelKind, ChannelSettings, Config};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::harness::robots::FakeRobot;
use crate::harness::*;

const SETTLE: Duration = Duration::from_secs(15);
/// How long (real time) a message may take from the outbox to the fake robot.
const DELIVERY: Duration = Duration::from_secs(10);

/// The lab with one Slack channel pointing at `robot`, no grouping window.
async fn with_robot(robot: &FakeRobot) -> TestApp {
    let file =
        std::env::temp_dir().join(format!("cdnwatch-test-silence-{}.url", fastrand::u64(..)));
    std::fs::write(&file, robot.url()).unwrap();
    let channel = ChannelSettings {
        name: "chat".into(),
        kind: ChannelKind::Slack,
        url_file: Some(file),
        url_env: None,
        secret_file: None,
        secret_env: None,
    };
    TestApp::stepped_with(move |c: &mut Config| {
        c.notify.group_window_ms = 0;
        c.notify.channels = vec![channel];
    })
    .await
}

/// `POST /api/v1/silences` with the admin token (or `token`).
async fn post_silence(e: &TestApp, body: &Value, token: Option<&str>) -> reqwest::Response {
    let mut req = e
        .http
        .post(format!("{}/api/v1/silences", e.base))
        .json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn silence(e: &TestApp, body: Value) -> i64 {
    let resp = post_silence(e, &body, Some(ADMIN_TOKEN)).await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// Waits (real time) until the robot has a message whose text passes `pred`; the messages.
async fn wait_message(robot: &FakeRobot, what: &str, pred: impl Fn(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + DELIVERY;
    loop {
        let texts: Vec<String> = robot.received().iter().map(Value::to_string).collect();
        if texts.iter().any(|t| pred(t)) {
            return texts;
        }
        assert!(Instant::now() < deadline, "no message {what}: {texts:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_on_a_vendor_mutes_its_messages_while_the_engine_still_disables_its_hosts() {
    let robot = FakeRobot::start(ChannelKind::Slack, None, 100);
    let e = with_robot(&robot).await;
    e.wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    silence(
        &e,
        json!({"vendor": "alpha", "reason": "alpha's planned maintenance", "actor": "oncall@shop", "expires_in_s": 3600}),
    )
    .await;
    e.fault(r#"{"kind":"http_status","status":502,"vendor":"alpha"}"#)
        .await;
    // The engine decides as ever: a silence mutes messages only.
    e.wait_doc(SETTLE, "both alpha hosts disabled", |d| {
        disabled(d, PRIMARY) && disabled(d, SAME_VENDOR)
    })
    .await;
    let page = e.get("/").await.text().await.unwrap();
    assert!(page.contains("1 silence active"), "{page}");
    e.clear_faults().await;
    e.wait_doc(SETTLE, "alpha back", all_enabled).await;
    // A beta-only incident is not inside the silence: it is told.
    e.fault(r#"{"kind":"http_status","status":502,"vendor":"beta"}"#)
        .await;
    e.wait_doc(SETTLE, "beta disabled", |d| disabled(d, OTHER_VENDOR))
        .await;
    let texts = wait_message(&robot, "about beta", |t| t.contains("vendor beta")).await;
    // The alpha notices were recorded rounds before beta's (the outbox is sent in order): had
    // they been recorded, they would have been sent first.
    assert!(
        texts.iter().all(|t| !t.contains("alpha")),
        "a message about the silenced vendor went out: {texts:#?}"
    );
    let incidents = e.get("/incidents").await.text().await.unwrap();
    assert!(
        incidents.contains("alpha&#39;s planned maintenance")
            || incidents.contains("alpha's planned maintenance"),
        "{incidents}"
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_silence_mutes_nothing() {
    let robot = FakeRobot::start(ChannelKind::Slack, None, 100);
    let e = with_robot(&robot).await;
    e.wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    silence(
        &e,
        json!({"vendor": "alpha", "reason": "a short one", "actor": "oncall@shop", "expires_in_s": 60}),
    )
    .await;
    assert_eq!(e.list("/api/v1/silences").await.len(), 1);
    e.clock.advance(Duration::from_secs(61));
    assert!(e.list("/api/v1/silences").await.is_empty(), "expired");
    e.fault(r#"{"kind":"http_status","status":502,"vendor":"alpha"}"#)
        .await;
    e.wait_doc(SETTLE, "both alpha hosts disabled", |d| {
        disabled(d, PRIMARY) && disabled(d, SAME_VENDOR)
    })
    .await;
    wait_message(&robot, "about alpha", |t| t.contains("vendor alpha")).await;
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fail_open_gets_through_silences_that_match_everything_else() {
    let robot = FakeRobot::start(ChannelKind::Slack, None, 100);
    let e = with_robot(&robot).await;
    e.wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    // One silence per scope kind and vendor: every incident of the lab lies inside one.
    for scope in [
        "edge",
        "resolver",
        "region_vendor",
        "vendor",
        "prefix_vendor",
        "origin",
        "probe_network",
    ] {
        silence(
            &e,
            json!({"scope": scope, "reason": "everything muted", "actor": "oncall@shop"}),
        )
        .await;
    }
    e.fault(r#"{"kind":"reset"}"#).await;
    e.wait_event(SETTLE, "fail_open").await;
    e.rounds(2).await;
    // The lab's fail-open keeps cdn.shop.test in the list: a flip for `fail_open`.
    wait_message(&robot, "about the fail-open", |t| t.contains("(fail_open)")).await;
    // One Slack section per notice: each told notice is the fail-open (the openings, the other
    // flips and the beta incident were muted).
    let sections: Vec<String> = robot
        .received()
        .iter()
        .flat_map(|m| m["blocks"].as_array().cloned().unwrap_or_default())
        .filter(|b| b["type"] == "section")
        .map(|b| b["text"]["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        sections.iter().all(|t| t.contains("(fail_open)")),
        "only the fail-open is told: {sections:#?}"
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_a_bad_silence_naming_the_field_and_audits_making_and_clearing_one() {
    let e = TestApp::stepped().await;
    let good = json!({"vendor": "alpha", "reason": "maintenance", "actor": "oncall@shop"});
    let resp = post_silence(&e, &good, None).await;
    assert_eq!(resp.status(), 401);
    let resp = post_silence(&e, &good, Some("wrong-token")).await;
    assert_eq!(resp.status(), 403);
    for (body, field) in [
        (json!({"reason": "r", "actor": "a"}), "`host`"),
        (
            json!({"scope": "planet", "reason": "r", "actor": "a"}),
            "`scope`",
        ),
        (
            json!({"vendor": "gamma", "reason": "r", "actor": "a"}),
            "`vendor`",
        ),
        (
            json!({"vendor": "alpha", "reason": " ", "actor": "a"}),
            "`reason`",
        ),
        (
            json!({"vendor": "alpha", "reason": "r", "actor": "a", "expires_in_s": 10}),
            "`expires_in_s`",
        ),
        (
            json!({"vendor": "alpha", "reason": "r", "actor": "a", "every": {"weekly": {"day": "funday", "start": "02:00", "minutes": 60}}}),
            "`every.weekly.day`",
        ),
    ] {
        let resp = post_silence(&e, &body, Some(ADMIN_TOKEN)).await;
        assert_eq!(resp.status(), 400, "{body}");
        let err: Value = resp.json().await.unwrap();
        let why = err["error"].as_str().unwrap();
        assert!(why.starts_with(field), "{body} → {why}");
    }
    assert!(e.list("/api/v1/silences").await.is_empty());
    // A weekly window: kept until cleared, listed with whether it is in effect.
    let id = silence(
        &e,
        json!({"scope": "vendor", "region": "cn-east", "reason": "Sunday maintenance", "actor": "oncall@shop",
               "every": {"weekly": {"day": "sun", "start": "02:00", "minutes": 120}}}),
    )
    .await;
    let listed = e.list("/api/v1/silences").await;
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["every"]["weekly"]["start"], "02:00");
    assert_eq!(listed[0]["expires_at"], Value::Null);
    let url = format!("{}/api/v1/silences/{id}", e.base);
    assert_eq!(e.http.delete(&url).send().await.unwrap().status(), 401);
    let resp = e
        .http
        .delete(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(e.list("/api/v1/silences").await.is_empty());
    let resp = e
        .http
        .delete(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let made = e.wait_event(SETTLE, "silenced").await;
    let detail = made["detail"].as_str().unwrap();
    assert!(
        detail.contains("oncall@shop") && detail.contains("Sunday maintenance"),
        "{detail}"
    );
    let cleared = e.wait_event(SETTLE, "silence_cleared").await;
    assert!(
        cleared["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("silence {id}"))
    );
    e.stop().await;
}

/// A form post from the config page itself (its `Origin`), with `cookie` if any.
async fn post_form(
    http: &reqwest::Client,
    e: &TestApp,
    path: &str,
    fields: &[(&str, &str)],
    cookie: Option<&str>,
) -> reqwest::Response {
    let mut req = http
        .post(format!("{}{path}", e.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", &e.base)
        .body(serde_urlencoded::to_string(fields).unwrap());
    if let Some(c) = cookie {
        req = req.header(COOKIE, c);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_page_form_makes_a_silence_with_a_session_and_its_csrf_token() {
    let e = TestApp::stepped().await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = post_form(
        &http,
        &e,
        "/config/sign-in",
        &[("token", ADMIN_TOKEN)],
        None,
    )
    .await;
    assert_eq!(resp.status(), 303);
    let set = resp.headers()[SET_COOKIE].to_str().unwrap().to_string();
    let cookie = set.split(';').next().unwrap().to_string();
    let page = (http.get(format!("{}/config", e.base)))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"id="add-silence""#), "{page}");
    let at = page.find(r#"name="csrf" value=""#).unwrap() + r#"name="csrf" value=""#.len();
    let csrf = page[at..at + page[at..].find('"').unwrap()].to_string();
    let fields = |csrf: &str| {
        [
            ("csrf", csrf.to_string()),
            ("vendor", "alpha".into()),
            ("host", String::new()),
            ("reason", "weekly alpha maintenance".into()),
            ("actor", "oncall@shop".into()),
            ("day", "sun".into()),
            ("start", "02:00".into()),
            ("minutes", "120".into()),
        ]
    };
    // Without the CSRF token, or without the session: refused, nothing made.
    let wrong = fields("not-the-token");
    let wrong: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let resp = post_form(&http, &e, "/config/silences", &wrong, Some(&cookie)).await;
    assert_eq!(resp.status(), 403);
    let right = fields(&csrf);
    let right: Vec<(&str, &str)> = right.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let resp = post_form(&http, &e, "/config/silences", &right, None).await;
    assert_eq!(resp.status(), 401);
    assert!(e.list("/api/v1/silences").await.is_empty());
    let resp = post_form(&http, &e, "/config/silences", &right, Some(&cookie)).await;
    assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
    let to = resp.headers()[LOCATION].to_str().unwrap().to_string();
    assert!(to.starts_with("/config?done=silenced&id="), "{to}");
    let listed = e.list("/api/v1/silences").await;
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["vendor"], "alpha");
    assert_eq!(listed[0]["every"]["weekly"]["day"], "sun");
    let id = listed[0]["id"].as_i64().unwrap();
    // A bad value is said above the form, with what was typed kept.
    let mut bad = right.clone();
    bad.retain(|(k, _)| *k != "vendor");
    bad.push(("scope", "planet"));
    let resp = post_form(&http, &e, "/config/silences", &bad, Some(&cookie)).await;
    assert_eq!(resp.status(), 400);
    let page = resp.text().await.unwrap();
    assert!(page.contains("`scope`"), "{page}");
    assert!(page.contains("weekly alpha maintenance"));
    // Listed with a clear button, which clears it.
    let page = (http.get(format!("{}/config", e.base)))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!(r#"action="/config/silences/{id}/clear""#)),
        "{page}"
    );
    let clear = format!("/config/silences/{id}/clear");
    let resp = post_form(&http, &e, &clear, &[("csrf", &csrf)], Some(&cookie)).await;
    assert_eq!(resp.status(), 303);
    assert!(e.list("/api/v1/silences").await.is_empty());
    e.stop().await;
}
