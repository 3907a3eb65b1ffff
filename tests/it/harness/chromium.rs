//! A headless Chromium (Debian's `chromium`, installed by scripts/install-test-deps.sh) driven
//! over the DevTools protocol with chromiumoxide: a fresh profile per launch, no host name
//! resolvable, and per tab every console error, uncaught exception and request it saw.

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
use futures_util::StreamExt as _;

const CHROMIUM: &str = "/usr/bin/chromium";
/// How long a page may take to show what it must.
const PAGE_WAIT: Duration = Duration::from_secs(15);

/// A headless Chromium with a fresh profile of its own.
pub struct Chromium {
    browser: Browser,
    handler: tokio::task::JoinHandle<()>,
    _profile: tempfile::TempDir,
}

impl Chromium {
    pub async fn launch() -> Chromium {
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

    pub async fn tab(&self) -> Tab {
        Tab::new(self.browser.new_page("about:blank").await.unwrap()).await
    }

    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        self.handler.abort();
    }
}

/// One tab, with every console error, uncaught exception and request it saw.
pub struct Tab {
    pub page: Page,
    problems: Arc<Mutex<Vec<String>>>,
    requests: Arc<Mutex<Vec<String>>>,
    listeners: Vec<tokio::task::JoinHandle<()>>,
}

impl Tab {
    pub async fn new(page: Page) -> Tab {
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
    pub async fn open(&self, url: &str) {
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
    pub async fn wait_text(&self, selector: &str, text: &str) -> String {
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

    pub async fn type_into(&self, selector: &str, text: &str) {
        let el = self.page.find_element(selector).await.unwrap();
        el.click().await.unwrap().type_str(text).await.unwrap();
    }

    pub async fn click(&self, selector: &str) {
        self.page
            .find_element(selector)
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Chooses an option of a `<select>` as the keyboard would leave it.
    pub async fn choose(&self, selector: &str, value: &str) {
        let js = format!(
            "(() => {{ const s = document.querySelector({selector:?}); s.value = {value:?}; return s.value; }})()"
        );
        let chosen: String = self.page.evaluate(js).await.unwrap().into_value().unwrap();
        assert_eq!(chosen, value, "no option {value} in {selector}");
    }

    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let path = screenshot_dir().join(format!("{name}.png"));
        self.page
            .save_screenshot(ScreenshotParams::builder().full_page(true).build(), &path)
            .await
            .unwrap();
        println!("screenshot: {}", path.display());
        path
    }

    pub fn problems(&self) -> Vec<String> {
        self.problems.lock().unwrap().clone()
    }

    /// No console error, no uncaught exception, and nothing loaded from anywhere but 127.0.0.1.
    pub fn assert_clean(&self) {
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
pub fn screenshot_name(path: &str) -> String {
    let name = path.trim_matches('/').replace(['/', '?', '&', '='], "_");
    if name.is_empty() {
        "index".into()
    } else {
        name
    }
}
