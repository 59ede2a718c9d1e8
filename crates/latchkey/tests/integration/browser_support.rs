//! Debian's chromium, headless, driven over WebDriver (chromedriver + fantoccini)
//! for the browser tests.
//!
//! Each test starts its own chromedriver on a free port; each [`Browser`] is a
//! separate WebDriver session with its own fresh profile, so two sessions are
//! two people's browsers (separate cookie jars). Missing chromium or
//! chromedriver fails the test with instructions: CI installs them, and a
//! browser test that silently skips proves nothing.

use fantoccini::wd::Capabilities;
use fantoccini::{Client as WebDriver, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// A desktop browser window.
pub const DESKTOP: (u32, u32) = (1280, 800);
/// A phone screen (CSS pixels).
pub const PHONE: (u32, u32) = (390, 844);

/// Set to `1` to (re)write the screenshots in `docs/screenshots/`.
pub const SCREENSHOTS_ENV: &str = "LATCHKEY_SCREENSHOTS";

/// How long a page may take to show what a test waits for. Generous: this checks
/// that things happen (liveness), not how fast.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// What chromium is started with: headless, offline, no first-run or background
/// chatter, no sandbox (CI runs as root in a container).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--force-device-scale-factor=1",
    // Phones draw overlay scrollbars; without this a 390 px window loses 15 px to one.
    "--hide-scrollbars",
];

const INSTALL_HINT: &str = "the browser tests need Debian's chromium and chromedriver: \
     install them with `apt-get update && apt-get install -y chromium chromium-driver` \
     (.ci/run does this)";

/// An executable on `PATH` (or in `/usr/bin`), or the path in `env`.
fn binary(env: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "{env} names {}, which does not exist; {INSTALL_HINT}", p.display());
        return p;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` not found on PATH: {INSTALL_HINT} (or set {env})"))
}

/// A port nothing listens on right now (chromedriver cannot be given port 0).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// The last lines of a log file, for failure messages.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A chromedriver of this test's own, and the browsers it started.
pub struct Chrome {
    driver: Child,
    url: String,
    chromium: PathBuf,
    /// Holds the profiles and chromedriver's log; removed on drop.
    dir: PathBuf,
    sessions: Mutex<Vec<WebDriver>>,
    profiles: std::sync::atomic::AtomicUsize,
}

impl Chrome {
    /// Starts chromedriver; fails (never skips) if chromium or chromedriver is missing.
    pub async fn start() -> Chrome {
        let chromium = binary("LATCHKEY_CHROMIUM", "chromium");
        let chromedriver = binary("LATCHKEY_CHROMEDRIVER", "chromedriver");
        let dir = std::env::temp_dir().join(format!("latchkey-browser-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("browser temp dir");
        let log = dir.join("chromedriver.log");
        // The free port can be taken between our check and chromedriver's bind: try again then.
        for _ in 0..3 {
            let port = free_port();
            let mut driver = Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}; {INSTALL_HINT}", chromedriver.display()));
            let url = format!("http://127.0.0.1:{port}");
            if wait_ready(&url, &mut driver).await {
                return Chrome {
                    driver,
                    url,
                    chromium,
                    dir,
                    sessions: Mutex::new(Vec::new()),
                    profiles: Default::default(),
                };
            }
            let _ = driver.kill().await;
        }
        panic!("chromedriver did not start; its log says:\n{}", tail(&log));
    }

    /// A new browser (its own profile and cookies) with a window of `size`.
    pub async fn browser(&self, size: (u32, u32)) -> Browser {
        let n = self.profiles.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let profile = self.dir.join(format!("profile-{n}"));
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.push(format!("--window-size={},{}", size.0, size.1));
        let mut caps = Capabilities::new();
        caps.insert("browserName".into(), serde_json::json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": self.chromium.display().to_string(), "args": args }),
        );
        let wd =
            ClientBuilder::new(HttpConnector::new()).capabilities(caps).connect(&self.url).await.unwrap_or_else(|e| {
                panic!(
                    "chromium did not start ({e}); chromedriver's log says:\n{}",
                    tail(&self.dir.join("chromedriver.log"))
                )
            });
        if let Ok(mut s) = self.sessions.lock() {
            s.push(wd.clone());
        }
        let b = Browser { wd };
        b.resize(size).await;
        b
    }

    /// Closes every browser and stops chromedriver.
    pub async fn stop(mut self) {
        let sessions = self.sessions.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default();
        for wd in sessions {
            let _ = wd.close().await;
        }
        let _ = self.driver.kill().await;
    }
}

/// Polls chromedriver's `/status` until it is ready (or it exits).
async fn wait_ready(url: &str, driver: &mut Child) -> bool {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = driver.try_wait() {
            return false;
        }
        if let Ok(r) = http.get(format!("{url}/status")).send().await {
            if let Ok(v) = r.json::<serde_json::Value>().await {
                if v["value"]["ready"] == serde_json::json!(true) {
                    return true;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

impl Drop for Chrome {
    fn drop(&mut self) {
        // A test that panicked never reached `stop`: end the chromium processes that
        // use this test's profiles (ours alone, found by their command line), then
        // chromedriver (kill_on_drop), then remove the profiles.
        let marker = self.dir.display().to_string();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for e in entries.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
                let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline).contains(&format!("--user-data-dir={marker}")) {
                    let _ = std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status();
                }
            }
        }
        let _ = self.driver.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One browser window (one WebDriver session).
pub struct Browser {
    wd: WebDriver,
}

impl Browser {
    /// The underlying WebDriver client.
    pub fn webdriver(&self) -> &WebDriver {
        &self.wd
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.wd.goto(url).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The address bar.
    pub async fn url(&self) -> String {
        self.wd.current_url().await.expect("current URL").to_string()
    }

    /// Resizes the window so the page's viewport is `size` CSS pixels.
    pub async fn resize(&self, size: (u32, u32)) {
        self.wd.set_window_size(size.0, size.1).await.expect("resize");
        // The outer window may include decorations; correct so the viewport is exact.
        let inner = self.wd.execute("return [window.innerWidth, window.innerHeight];", vec![]).await.expect("viewport");
        let (iw, ih) = (inner[0].as_u64().unwrap_or(0) as u32, inner[1].as_u64().unwrap_or(0) as u32);
        if (iw, ih) != size && iw > 0 && ih > 0 {
            let w = size.0 + size.0.saturating_sub(iw);
            let h = size.1 + size.1.saturating_sub(ih);
            self.wd.set_window_size(w, h).await.expect("resize");
        }
    }

    /// The element matching `css`, which must be on the page now.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self.wd.find(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => panic!("no {css:?} on {} ({e}); the page shows:\n{}", self.url().await, self.body_text().await),
        }
    }

    /// Whether an element matches `css` now.
    pub async fn has(&self, css: &str) -> bool {
        self.wd.find_all(Locator::Css(css)).await.map(|v| !v.is_empty()).unwrap_or(false)
    }

    /// The visible text of `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    /// The visible text of the whole page.
    pub async fn body_text(&self) -> String {
        match self.wd.find(Locator::Css("body")).await {
            Ok(b) => b.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Types `value` into the (emptied) field `css`, key by key.
    pub async fn type_into(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear field");
        field.send_keys(value).await.unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Clicks `css`.
    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Waits until the text of `css` contains `needle`; returns the text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut last = String::new();
        loop {
            if let Ok(e) = self.wd.find(Locator::Css(css)).await {
                last = e.text().await.unwrap_or_default();
                if last.contains(needle) {
                    return last;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "after {PATIENCE:?}, {css:?} on {} still does not say {needle:?}; it says {last:?}; the page shows:\n{}",
                    self.url().await,
                    self.body_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the address bar starts with `prefix`; returns the URL.
    pub async fn wait_url(&self, prefix: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let url = self.url().await;
            if url.starts_with(prefix) {
                return url;
            }
            if Instant::now() > deadline {
                panic!(
                    "after {PATIENCE:?} the browser is at {url}, not {prefix}…; the page shows:\n{}",
                    self.body_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Signs in on the sign-in page the browser is showing.
    pub async fn sign_in(&self, username: &str, password: &str) {
        self.wait_text("h1", "Sign in").await;
        self.type_into("#username", username).await;
        self.type_into("#password", password).await;
        self.click("form[action='/signin'] button[type='submit']").await;
    }

    /// The value of cookie `name` (HttpOnly ones too: WebDriver sees every cookie).
    pub async fn cookie(&self, name: &str) -> String {
        self.wd
            .get_named_cookie(name)
            .await
            .unwrap_or_else(|e| panic!("no cookie {name} in the browser: {e}"))
            .value()
            .to_string()
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.wd.screenshot().await.expect("screenshot")
    }

    /// Saves a screenshot as `docs/screenshots/{name}.png`, when
    /// [`SCREENSHOTS_ENV`] is `1` and this is the run that keeps them.
    pub async fn keep_screenshot(&self, keep: bool, name: &str) {
        if !keep {
            return;
        }
        let png = self.screenshot().await;
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).expect("screenshots dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

/// axe-core, the accessibility checker (MPL-2.0; see `vendor/README.md`).
const AXE: &str = include_str!("vendor/axe.min.js");

/// Runs axe-core on the page and hands back its serious and critical violations
/// (rule, impact, help, and each offending element with what is wrong).
const AXE_RUN: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, { resultTypes: ['violations'] })
  .then(r => done(r.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => ({ id: v.id, impact: v.impact, help: v.help,
                 nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary) }))))
  .catch(e => done({ error: String(e) }));
"#;

impl Browser {
    /// The serious and critical accessibility violations axe-core finds on the page shown
    /// (a JSON array of `{id, impact, help, nodes}`); `what` names the page in failures.
    pub async fn accessibility_violations(&self, what: &str) -> serde_json::Value {
        let loaded = self.wd.execute("return typeof window.axe === 'object';", vec![]).await.expect("probe axe");
        if loaded != serde_json::json!(true) {
            self.wd.execute(AXE, vec![]).await.unwrap_or_else(|e| panic!("inject axe-core into {what}: {e}"));
        }
        let found = self.wd.execute_async(AXE_RUN, vec![]).await.unwrap_or_else(|e| panic!("run axe on {what}: {e}"));
        assert!(found.get("error").is_none(), "axe failed on {what}: {found}");
        found
    }

    /// Checks the page shown with axe-core and fails on any serious or critical
    /// accessibility violation; `what` names the page in the failure.
    pub async fn assert_accessible(&self, what: &str) {
        let found = self.accessibility_violations(what).await;
        let none = found.as_array().is_some_and(|v| v.is_empty());
        assert!(
            none,
            "the {what} page ({}) has serious or critical accessibility violations:\n{}",
            self.url().await,
            serde_json::to_string_pretty(&found).unwrap_or_default()
        );
    }
}

/// Where the README's screenshots live.
pub fn screenshots_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
}

/// Whether this run writes screenshots: asked for, and on SQLite only (both
/// backends render the same pages; one writer avoids two tests racing on a file).
pub fn keep_screenshots(backend: &crate::support::Backend) -> bool {
    std::env::var(SCREENSHOTS_ENV).as_deref() == Ok("1") && matches!(backend, crate::support::Backend::Sqlite)
}

/// Every QR code in a PNG, decoded with a real decoder (rqrr).
pub fn decode_qr(png: &[u8]) -> Vec<String> {
    let img = image::load_from_memory_with_format(png, image::ImageFormat::Png).expect("a PNG image").to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    prepared
        .detect_grids()
        .into_iter()
        .map(|grid| grid.decode().unwrap_or_else(|e| panic!("a QR code was found but does not decode: {e}")).1)
        .collect()
}

/// Width and height of a PNG.
pub fn png_size(png: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory_with_format(png, image::ImageFormat::Png).expect("a PNG image");
    (img.width(), img.height())
}
