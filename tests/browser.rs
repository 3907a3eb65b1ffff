//! Pages of a running service in a real headless Chromium (Debian's `chromium`, installed by
//! scripts/install-test-deps.sh), driven over the DevTools protocol with chromiumoxide.
//!
//! The service runs on the lab with a fault injected through the lab's fault API; every page in
//! [`PAGES`] is loaded, must show its text in its element, is saved as a screenshot, and must
//! raise no console error and no uncaught exception. The override form is driven end to end like
//! an operator would. Chromium only ever loads pages on 127.0.0.1: every request it makes is
//! recorded and checked, and it resolves no host name at all.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel};
use chromiumoxide::cdp::browser_protocol::network::EventRequestWillBeSent;
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::page::{Page, ScreenshotParams};
use common::service::*;
use futures_util::StreamExt as _;

/// Every page checked with the fault in place: path, text that must appear, CSS selector of the
/// element it must appear in. One line per page.
const PAGES: &[(&str, &str, &str)] = &[
    ("/", "cdn.shop.test is disabled", "p.summary"),
    ("/", "disabled", "table.board tbody tr:first-child"),
    ("/hosts/cdn.shop.test", "http_status", "table.results"),
    ("/paths", "http_status", "table.paths"),
    ("/events", "vendor_wide", "main"),
    (
        "/events/incident?host=cdn.shop.test&since=1h",
        "http_status",
        "body",
    ),
    ("/config", "cdn.shop.test: enabled → disabled", "#versions"),
];

/// The fault the pages are looked at under: every alpha edge answers 502.
const FAULT: &str = r#"{"kind":"http_status","status":502,"vendor":"alpha"}"#;

const CHROMIUM: &str = "/usr/bin/chromium";
/// How long a page may take to show what it must.
const PAGE_WAIT: Duration = Duration::from_secs(15);

/// A headless Chromium with a fresh profile of its own.
struct Chromium {
    browser: Browser,
    handler: tokio::task::JoinHandle<()>,
    _profile: tempfile::TempDir,
}

impl Chromium {
    async fn launch() -> Chromium {
        let profile = tempfile::tempdir().unwrap();
        let config = BrowserConfig::builder()
            .chrome_executable(CHROMIUM)
            .disable_default_args()
            .no_sandbox()
            .user_data_dir(profile.path())
            .window_size(1280, 900)
            .viewport(None)
            .args([
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--no-proxy-server",
                // No host name resolves: pages are only ever loaded from 127.0.0.1 by address.
                "--host-resolver-rules=MAP * ~NOTFOUND",
            ])
            .build()
            .expect("a browser config");
        let (browser, mut events) = Browser::launch(config).await.unwrap_or_else(|e| {
            panic!("cannot start {CHROMIUM} (run scripts/install-test-deps.sh): {e}")
        });
        let handler = tokio::spawn(async move { while events.next().await.is_some() {} });
        Chromium {
            browser,
            handler,
            _profile: profile,
        }
    }

    async fn tab(&self) -> Tab {
        Tab::new(self.browser.new_page("about:blank").await.unwrap()).await
    }

    async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        self.handler.abort();
    }
}

/// One tab, with every console error, uncaught exception and request it saw.
struct Tab {
    page: Page,
    problems: Arc<Mutex<Vec<String>>>,
    requests: Arc<Mutex<Vec<String>>>,
    listeners: Vec<tokio::task::JoinHandle<()>>,
}

impl Tab {
    async fn new(page: Page) -> Tab {
        let problems = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        page.enable_log().await.unwrap();
        page.enable_runtime().await.unwrap();
        let mut listeners = Vec::new();
        let mut console = page
            .event_listener::<EventConsoleApiCalled>()
            .await
            .unwrap();
        let sink = problems.clone();
        listeners.push(tokio::spawn(async move {
            while let Some(e) = console.next().await {
                if matches!(
                    e.r#type,
                    ConsoleApiCalledType::Error | ConsoleApiCalledType::Assert
                ) {
                    let args: Vec<String> =
                        e.args.iter().map(|a| format!("{:?}", a.value)).collect();
                    sink.lock()
                        .unwrap()
                        .push(format!("console.error: {}", args.join(" ")));
                }
            }
        }));
        let mut thrown = page.event_listener::<EventExceptionThrown>().await.unwrap();
        let sink = problems.clone();
        listeners.push(tokio::spawn(async move {
            while let Some(e) = thrown.next().await {
                let d = &e.exception_details;
                let what = d.exception.as_ref().and_then(|x| x.description.clone());
                sink.lock().unwrap().push(format!(
                    "uncaught: {} {}",
                    d.text,
                    what.unwrap_or_default()
                ));
            }
        }));
        let mut log = page.event_listener::<EventEntryAdded>().await.unwrap();
        let sink = problems.clone();
        listeners.push(tokio::spawn(async move {
            while let Some(e) = log.next().await {
                if e.entry.level == LogEntryLevel::Error {
                    let url = e.entry.url.clone().unwrap_or_default();
                    sink.lock()
                        .unwrap()
                        .push(format!("log: {} {url}", e.entry.text));
                }
            }
        }));
        let mut sent = page
            .event_listener::<EventRequestWillBeSent>()
            .await
            .unwrap();
        let sink = requests.clone();
        listeners.push(tokio::spawn(async move {
            while let Some(e) = sent.next().await {
                sink.lock().unwrap().push(e.request.url.clone());
            }
        }));
        Tab {
            page,
            problems,
            requests,
            listeners,
        }
    }

    /// Loads `url`, which must be on 127.0.0.1.
    async fn open(&self, url: &str) {
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "not a loopback page: {url}"
        );
        self.page
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("loading {url}: {e}"));
    }

    /// Waits until the element at `selector` shows `text`; returns its text.
    async fn wait_text(&self, selector: &str, text: &str) -> String {
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            let shown = match self.page.find_element(selector).await {
                Ok(el) => el.inner_text().await.ok().flatten().unwrap_or_default(),
                Err(_) => String::new(),
            };
            if shown.contains(text) {
                return shown;
            }
            assert!(
                Instant::now() < deadline,
                "`{text}` never appeared in `{selector}`; it shows: {shown:?}; page at {:?}",
                self.page.url().await.ok().flatten()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn type_into(&self, selector: &str, text: &str) {
        let el = self.page.find_element(selector).await.unwrap();
        el.click().await.unwrap().type_str(text).await.unwrap();
    }

    async fn click(&self, selector: &str) {
        self.page
            .find_element(selector)
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Chooses an option of a `<select>` as the keyboard would leave it.
    async fn choose(&self, selector: &str, value: &str) {
        let js = format!(
            "(() => {{ const s = document.querySelector({selector:?}); s.value = {value:?}; return s.value; }})()"
        );
        let chosen: String = self.page.evaluate(js).await.unwrap().into_value().unwrap();
        assert_eq!(chosen, value, "no option {value} in {selector}");
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let path = screenshot_dir().join(format!("{name}.png"));
        self.page
            .save_screenshot(ScreenshotParams::builder().full_page(true).build(), &path)
            .await
            .unwrap();
        println!("screenshot: {}", path.display());
        path
    }

    fn problems(&self) -> Vec<String> {
        self.problems.lock().unwrap().clone()
    }

    /// No console error, no uncaught exception, and nothing loaded from anywhere but 127.0.0.1.
    fn assert_clean(&self) {
        assert_eq!(
            self.problems(),
            Vec::<String>::new(),
            "console errors or exceptions"
        );
        let requests = self.requests.lock().unwrap().clone();
        assert!(!requests.is_empty(), "requests are recorded");
        for url in requests {
            assert!(
                url.starts_with("http://127.0.0.1:") || url == "about:blank",
                "Chromium requested {url}"
            );
        }
    }
}

impl Drop for Tab {
    fn drop(&mut self) {
        for l in &self.listeners {
            l.abort();
        }
    }
}

/// `<target>/browser-screenshots`, beside the target directory's tmp/.
fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("browser-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `/hosts/cdn.shop.test` → `hosts_cdn.shop.test`; `/` → `index`.
fn screenshot_name(path: &str) -> String {
    let name = path.trim_matches('/').replace(['/', '?', '&', '='], "_");
    if name.is_empty() {
        "index".into()
    } else {
        name
    }
}

/// Injects a fault through the lab's HTTP fault API.
async fn inject(e: &E2e, fault: &str) {
    let resp = e
        .http
        .post(format!("http://{}/faults", e.lab.api_addr()))
        .header("content-type", "application/json")
        .body(fault.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "fault {fault} refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_shows_the_injected_fault_with_no_console_error() {
    let e = E2e::start(|_| {}).await;
    e.wait_doc(Duration::from_secs(15), "the first document", all_enabled)
        .await;
    inject(&e, FAULT).await;
    e.wait_doc(Duration::from_secs(30), "alpha disabled", |d| {
        disabled(d, PRIMARY) && disabled(d, SAME_VENDOR)
    })
    .await;

    let chromium = Chromium::launch().await;
    let tab = chromium.tab().await;
    for (path, text, selector) in PAGES {
        tab.open(&format!("{}{path}", e.base)).await;
        tab.wait_text(selector, text).await;
        tab.screenshot(&screenshot_name(path)).await;
    }
    tab.assert_clean();

    // The harness itself: a failed load and an uncaught exception are both caught.
    let probe = chromium.tab().await;
    probe
        .open(&format!("{}/static/no-such-file.css", e.base))
        .await;
    probe
        .page
        .evaluate("setTimeout(() => { throw new Error('harness self-check') }, 0)")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !probe.problems().join("\n").contains("harness self-check") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = probe.problems().join("\n");
    assert!(seen.contains("404"), "a failed load is caught: {seen}");
    assert!(
        seen.contains("harness self-check"),
        "an exception is caught: {seen}"
    );

    drop((tab, probe));
    chromium.close().await;
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_forces_a_host_off_sees_it_published_and_clears_it_in_the_browser() {
    let e = E2e::start(|_| {}).await;
    let first = e
        .wait_doc(Duration::from_secs(15), "the first document", all_enabled)
        .await;
    let chromium = Chromium::launch().await;
    let tab = chromium.tab().await;
    let config = format!("{}/config", e.base);
    tab.open(&config).await;

    tab.type_into("#token", ADMIN_TOKEN).await;
    tab.click("#sign-in button").await;
    tab.wait_text("#flash", "Signed in").await;
    let cookie: String = tab
        .page
        .evaluate("document.cookie")
        .await
        .unwrap()
        .into_value()
        .unwrap();
    assert_eq!(
        cookie, "",
        "the session cookie is HttpOnly: scripts cannot read it"
    );
    assert!(!tab.page.content().await.unwrap().contains(ADMIN_TOKEN));

    tab.choose("#host", SAME_VENDOR).await;
    tab.choose("#kind", "force_disable").await;
    tab.type_into("#reason", "vendor maintenance window").await;
    tab.type_into("#actor", "oncall@shop").await;
    tab.choose("#expires_in_s", "3600").await;
    tab.click("#add-override button").await;
    tab.wait_text("#flash", "added").await;
    let row = tab.wait_text("#overrides", SAME_VENDOR).await;
    assert!(
        row.contains("force_disable") && row.contains("oncall@shop"),
        "{row}"
    );

    let doc = e
        .wait_doc(Duration::from_secs(10), "the override published", |d| {
            disabled(d, SAME_VENDOR)
        })
        .await;
    assert!(version(&doc) > version(&first));
    tab.open(&config).await;
    let versions = tab
        .wait_text("#versions", &format!("{SAME_VENDOR}: enabled → disabled"))
        .await;
    assert!(versions.contains("override"), "{versions}");
    tab.screenshot("config_signed_in").await;

    tab.click("#overrides form button").await;
    tab.wait_text("#flash", "cleared").await;
    tab.wait_text("#overrides", "None.").await;
    e.wait_doc(Duration::from_secs(15), "the host back", all_enabled)
        .await;

    tab.click("#sign-out button").await;
    tab.wait_text("#flash", "Signed out").await;
    tab.wait_text("#admin", "Admin token").await;
    tab.assert_clean();
    drop(tab);
    chromium.close().await;
    e.stop().await;
}
