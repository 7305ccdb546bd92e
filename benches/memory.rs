//! Memory and start-up (`cargo bench --bench memory`), numbers recorded in docs/PERFORMANCE.md.
//!
//! 1. Start-up: the release `lever serve` (SQLite, a fresh database) spawned until the first 200
//!    on `/readyz` (polled every millisecond), five times; then its resident set when idle.
//! 2. The resident set of `lever sync --record-only` during a first sync of 100,000 findings
//!    from the fake Security Hub (GetFindings paced at 3/s of real time, 100 a page: about
//!    334 s), sampled every 100 ms from /proc. `MEMORY_SYNC_FINDINGS` and
//!    `MEMORY_SYNC_SECONDS` (default 600, the bound) shorten it.
//!
//! Loopback only; GitHub points at a closed port (nothing here calls it).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "../tests/it/fakes/mod.rs"]
#[allow(unused_imports)]
mod fakes;
#[path = "../tests/it/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use support::app::root;
use support::targets::{self, Goal};

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn lever(args: &[&str], work: &Path, sh_url: &str, config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lever"))
        .args(args)
        .arg("--config")
        .arg(config)
        .current_dir(work)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GITHUB_APP_ID", "1")
        .env(
            "GITHUB_PRIVATE_KEY_PATH",
            root().join("tests/fixtures/github-app-test-key.TEST-ONLY.pem"),
        )
        .env("GITHUB_API_URL", "http://127.0.0.1:9")
        .env("GITHUB_WEBHOOK_SECRET", "bench-secret")
        .env("LEVER_INGEST_TOKEN", "bench-token")
        .env("AWS_ENDPOINT_URL_SECURITYHUB", sh_url)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn lever")
}

/// HTTP/1.1 GET on loopback without a client library: the status code, if any answer.
fn get_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).ok()?;
    std::str::from_utf8(&buf[..n])
        .ok()?
        .get(9..12)?
        .parse()
        .ok()
}

fn stop(mut child: Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn config_dir(work: &Path) -> std::path::PathBuf {
    let dir = work.join("config");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["lever.toml", "OWNERS"] {
        std::fs::copy(root().join("examples/demo").join(f), dir.join(f)).unwrap();
    }
    let mut toml = std::fs::read_to_string(dir.join("lever.toml")).unwrap();
    toml.push_str("\n[sync]\ninterval = \"off\"\nwebhooks = \"off\"\n");
    std::fs::write(dir.join("lever.toml"), toml).unwrap();
    dir
}

fn startup(sh_url: &str) {
    let mut times = Vec::new();
    let mut idle = Vec::new();
    for _ in 0..5 {
        let work = tempfile::tempdir().unwrap();
        let config = config_dir(work.path());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let t0 = Instant::now();
        let mut child = lever(
            &["serve", "--listen", &listen],
            work.path(),
            sh_url,
            &config,
        );
        let ready = loop {
            if get_status(port, "/readyz") == Some(200) {
                break t0.elapsed();
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("lever serve exited: {status}");
            }
            assert!(t0.elapsed() < Duration::from_secs(30), "not ready in 30 s");
            std::thread::sleep(Duration::from_millis(1));
        };
        times.push(ready);
        std::thread::sleep(Duration::from_secs(3));
        idle.push(status_kib(child.id(), "VmRSS:").unwrap_or(0));
        stop(child);
    }
    let mut sorted = times.clone();
    sorted.sort();
    println!(
        "memory: start-up to the first 200 on /readyz (fresh SQLite database, migrations included), 5 runs: {:?}; median {:.1?}",
        times, sorted[2]
    );
    println!(
        "memory: resident set idle (3 s after ready), 5 runs: {:?} KiB; max {:.1} MiB",
        idle,
        *idle.iter().max().unwrap() as f64 / 1024.0
    );
    targets::report(
        "ready: start-up to the first 200 on /readyz (median of 5)",
        sorted[2].as_secs_f64() * 1000.0,
        Goal::Below(200.0),
        " ms",
    );
    let idle_mb = *idle.iter().max().unwrap() as f64 * 1024.0 / 1e6;
    targets::report(
        "memory: resident set idle (max of 5)",
        idle_mb,
        Goal::Below(30.0),
        " MB",
    );
}

fn sync(sh: &fakes::securityhub::FakeSecurityHub, sh_url: &str) {
    let findings: usize = std::env::var("MEMORY_SYNC_FINDINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let bound: u64 = std::env::var("MEMORY_SYNC_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    // The demo findings, each repeated with its own id and resource, in the fake.
    let dir = root().join("examples/demo/findings");
    let mut templates = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for p in paths {
        let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        let list = if let Some(f) = v.get("Findings") {
            f.as_array().unwrap().clone()
        } else if let Some(f) = v.pointer("/detail/findings") {
            f.as_array().unwrap().clone()
        } else if v.is_array() {
            v.as_array().unwrap().clone()
        } else {
            vec![v]
        };
        templates.extend(list);
    }
    let mut batch = Vec::with_capacity(10_000);
    for n in 0..findings {
        let mut f = templates[n % templates.len()].clone();
        f["Id"] = json!(format!("{}-sync-{n:06}", f["Id"].as_str().unwrap()));
        let rid = f["Resources"][0]["Id"].as_str().unwrap().to_string();
        f["Resources"][0]["Id"] = json!(format!("{rid}-sync-{n:06}"));
        batch.push(f);
        if batch.len() == 10_000 {
            sh.seed(Value::Array(std::mem::take(&mut batch)));
        }
    }
    if !batch.is_empty() {
        sh.seed(Value::Array(batch));
    }
    sh.drain_events();
    let work = tempfile::tempdir().unwrap();
    let config = config_dir(work.path());
    let t0 = Instant::now();
    let mut child = lever(&["sync", "--record-only"], work.path(), sh_url, &config);
    let pid = child.id();
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    let mut peak_hwm = 0;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if let Some(rss) = status_kib(pid, "VmRSS:") {
            samples.push((t0.elapsed(), rss));
        }
        if let Some(hwm) = status_kib(pid, "VmHWM:") {
            peak_hwm = peak_hwm.max(hwm);
        }
        if t0.elapsed() > Duration::from_secs(bound) {
            println!("memory: sync STOPPED at the {bound} s bound");
            stop(child);
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let elapsed = t0.elapsed();
    let pages = sh.count("GetFindings");
    let max = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let at = |frac: f64| {
        samples
            .get(((samples.len() as f64 * frac) as usize).min(samples.len().saturating_sub(1)))
            .map(|s| format!("{:.0?} {:.1} MiB", s.0, s.1 as f64 / 1024.0))
            .unwrap_or_default()
    };
    println!(
        "memory: sync of {findings} seeded findings: {} in {elapsed:.1?}, {pages} GetFindings calls (≈ {} findings read)",
        status.map_or("stopped".to_string(), |s| s.to_string()),
        pages * 100
    );
    println!(
        "memory: sync resident set: peak sampled {:.1} MiB, VmHWM {:.1} MiB; at 10/50/90 % of the run: {} / {} / {}",
        max as f64 / 1024.0,
        peak_hwm as f64 / 1024.0,
        at(0.1),
        at(0.5),
        at(0.9)
    );
    let peak_mb = max.max(peak_hwm) as f64 * 1024.0 / 1e6;
    targets::report(
        &format!("memory: resident set during the sync of {findings} findings (peak)"),
        peak_mb,
        Goal::Below(150.0),
        " MB",
    );
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sh = rt.block_on(fakes::securityhub::FakeSecurityHub::start());
    let sh_url = sh.url();
    if std::env::var("MEMORY_SKIP_STARTUP").is_err() {
        startup(&sh_url);
    }
    sync(&sh, &sh_url);
    drop(rt);
}
