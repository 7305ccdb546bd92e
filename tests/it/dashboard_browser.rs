//! The dashboard in a real browser: Debian's `chromium` driven by `chromedriver` over
//! WebDriver (a small client on reqwest: the WebDriver crates bring second copies of crates
//! `deny.toml` bans). A month of history is seeded, the real server started, the person signs
//! in through GitHub (the fake GitHub's OAuth flow), and the page must show the numbers
//! `lever report` prints for the same store and instant, log no console error (a CSP
//! violation is one), and its screenshot is saved as `docs/dashboard.png` (the README shows
//! it).
//!
//! Skipped, loudly, when `chromium` or `chromedriver` is missing; `LEVER_REQUIRE_BROWSER=1`
//! (set by `.ci/run`) makes that a failure.

use std::time::Duration as StdDuration;

use base64::Engine;
use serde_json::{Value, json};

use crate::report::{expected_cards, report_json, seeded, total};
use crate::support::app::{TestApp, demo_config_with, root};
use crate::support::pg::loud;

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: std::process::Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start(chromedriver: &std::path::Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        for _ in 0..100 {
            if let Ok(r) = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                return driver;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        panic!("chromedriver did not become ready");
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("WebDriver request");
        let status = r.status();
        let v: Value = r.json().await.expect("WebDriver JSON");
        assert!(status.is_success(), "WebDriver {path}: {status} {v}");
        v["value"].clone()
    }
}

struct Session<'d> {
    driver: &'d Driver,
    id: String,
}

impl Session<'_> {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.driver
            .call(method, &format!("/session/{}{path}", self.id), body)
            .await
    }
    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }
    async fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }
    async fn browser_log(&self) -> Vec<Value> {
        self.call(
            reqwest::Method::POST,
            "/se/log",
            Some(json!({ "type": "browser" })),
        )
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_in_chromium_shows_the_reports_numbers() {
    let required = std::env::var("LEVER_REQUIRE_BROWSER").as_deref() == Ok("1");
    let (Some(chromium), Some(chromedriver)) = (
        which("chromium").or_else(|| which("chromium-browser")),
        which("chromedriver"),
    ) else {
        assert!(
            !required,
            "LEVER_REQUIRE_BROWSER=1 but chromium or chromedriver is not installed (apt-get install chromium chromium-driver)"
        );
        loud(
            "*** SKIPPED: dashboard_browser (chromium or chromedriver not installed; \
             apt-get install chromium chromium-driver, or LEVER_REQUIRE_BROWSER=1 to fail) ***",
        );
        return;
    };

    let (_db, url) = seeded().await;
    let config = demo_config_with("[dashboard]\ngithub_org = \"acme\"\n");
    let json = report_json(&url, config.path());
    let app = TestApp::builder()
        .config(config.path())
        .database(&url)
        .start()
        .await;
    app.gh.add_org_member("acme", "alice");
    app.gh.sign_in_as("alice");

    let driver = Driver::start(&chromedriver).await;
    let created = driver
        .call(
            reqwest::Method::POST,
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium.to_string_lossy(),
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--hide-scrollbars",
                             "--force-device-scale-factor=1", "--window-size=1280,2200"]
                },
                "goog:loggingPrefs": {"browser": "ALL"}
            }}})),
        )
        .await;
    let session = Session {
        driver: &driver,
        id: created["sessionId"].as_str().unwrap().to_string(),
    };
    // Sign in: `/` → `/auth/github/login` → GitHub's authorize page → the callback → `/`.
    session.go(&format!("{}/", app.url)).await;
    let at = session.script("return location.href").await;
    assert_eq!(
        at,
        json!(format!("{}/", app.url)),
        "back on the page after sign-in"
    );
    let shown = session
        .script(
            "const o = {metrics: {}, teams: {}, days: {}};
             document.querySelectorAll('[data-metric]').forEach(e => o.metrics[e.dataset.metric] = e.textContent);
             document.querySelectorAll('tr[data-team]').forEach(r => {
               const t = {}; r.querySelectorAll('[data-field]').forEach(c => t[c.dataset.field] = Number(c.textContent));
               o.teams[r.dataset.team] = t; });
             document.querySelectorAll('tr[data-day]').forEach(r => {
               const d = {}; r.querySelectorAll('[data-field]').forEach(c => d[c.dataset.field] = Number(c.textContent));
               o.days[r.dataset.day] = d; });
             o.signedInAs = document.querySelector('header strong').textContent;
             o.svgs = document.querySelectorAll('svg[role=img] > title').length;
             return o;",
        )
        .await;
    assert_eq!(shown["signedInAs"], "alice");
    assert!(
        shown["svgs"].as_u64().unwrap() >= 2,
        "both charts have a title"
    );
    let m = &shown["metrics"];
    for (name, want) in expected_cards(&json) {
        assert_eq!(m[name], json!(want.to_string()), "{name}");
    }
    for team in json["teams"].as_array().unwrap() {
        let name = team["team"].as_str().unwrap();
        let row = &shown["teams"][name];
        for sev in ["critical", "high", "medium", "low", "informational"] {
            assert_eq!(row[sev], team["open_now"][sev], "{name} {sev}");
        }
        for f in ["opened", "closed", "overdue", "not_acknowledged"] {
            assert_eq!(row[f], team[f], "{name} {f}");
        }
        assert_eq!(
            row["open_at_start"],
            json!(total(&team["open_at_start"])),
            "{name}"
        );
    }
    let days = json["burndown"].as_array().unwrap();
    assert_eq!(shown["days"].as_object().unwrap().len(), days.len());
    for p in days {
        let d = &shown["days"][p["date"].as_str().unwrap()];
        for sev in ["critical", "high", "medium", "low", "informational"] {
            assert_eq!(d[sev], p["open"][sev], "{} {sev}", p["date"]);
        }
    }

    // No console errors (a blocked resource or a CSP violation would be one).
    let errors: Vec<Value> = session
        .browser_log()
        .await
        .into_iter()
        .filter(|e| e["level"] == "SEVERE")
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    // The screenshot the README shows: the page's full height.
    let height = session
        .script("return Math.ceil(document.documentElement.scrollHeight)")
        .await
        .as_u64()
        .unwrap_or(2200)
        .clamp(600, 4000);
    session
        .call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": 1280, "height": height})),
        )
        .await;
    let png = session
        .call(reqwest::Method::GET, "/screenshot", None)
        .await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(root().join("docs/dashboard.png"), &png).expect("docs/dashboard.png");
    // Readable on a phone: at a phone's width nothing makes the page scroll sideways (wide
    // tables scroll in their own box).
    session
        .call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": 412, "height": 915})),
        )
        .await;
    let widths = session
        .script("return [document.documentElement.scrollWidth, window.innerWidth]")
        .await;
    let (page, viewport) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
    assert!(viewport <= 500, "the window is phone-sized: {widths}");
    assert!(
        page <= viewport,
        "no sideways scrolling on a phone: {widths}"
    );
    session.call(reqwest::Method::DELETE, "", None).await;
    app.gh.assert_conformant();
}
