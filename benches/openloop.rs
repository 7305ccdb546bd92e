//! An open-loop load generator (`cargo bench --bench openloop`), used by
//! `tools/bench/latency.sh`; numbers recorded in docs/PERFORMANCE.md.
//!
//! Sends one POST every 1/rate seconds whatever the server does (open loop, like wrk2 or
//! `oha -q`), each with a fresh value in one header (`X-GitHub-Delivery` by default), which
//! `oha` cannot do: with one repeated delivery id every request after the first is a duplicate
//! that writes nothing. At most `OPENLOOP_CONNECTIONS` requests are in flight; a request that
//! waits for a connection is late, and its latency counts from when it was *due*, not from when
//! it was sent (no coordinated omission).
//!
//! Environment (all but the URL and body have defaults):
//! - `OPENLOOP_URL`: the endpoint.
//! - `OPENLOOP_BODY`: a file whose bytes are every request's body.
//! - `OPENLOOP_HEADERS`: `Name: value` lines (newline-separated) sent with every request.
//! - `OPENLOOP_FRESH_HEADER`: the header given a new UUID per request (default
//!   `X-GitHub-Delivery`; empty for none).
//! - `OPENLOOP_RATE` (requests/s, default 2000), `OPENLOOP_SECONDS` (measured, default 10),
//!   `OPENLOOP_WARMUP` (seconds at the same rate before measuring, default 2),
//!   `OPENLOOP_CONNECTIONS` (default 32).
//!
//! - `OPENLOOP_MODE`: `open` (the default: one request every 1/rate s) or `closed` (each of the
//!   connections sends its next request when the previous one is answered, like `wrk -c N`).
//! - `OPENLOOP_SIGN_SECRET` and `OPENLOOP_VARY`: make every body unique and sign it as GitHub
//!   does. Each request's body is the file's with the first occurrence of `OPENLOOP_VARY` (a
//!   run of digits, e.g. a label id of `999999999999`) replaced by `1` and the request's number
//!   zero-padded to the same width (the length never changes; no leading zero), and `X-Hub-Signature-256` is the
//!   HMAC-SHA-256 of that body with the secret. Lever deduplicates replays by the body's
//!   SHA-256 as well as by delivery id, so a benchmark that repeats one body measures only the
//!   duplicate path after its first request. `OPENLOOP_FIRST` is the first request number
//!   (default 0): a second run against the same server starts where the first cannot reach.
//!
//! Prints a human summary and one JSON line (`openloop: {...}`) for the scripts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;
use tokio::sync::Semaphore;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid number")),
        _ => default,
    }
}

#[derive(Default)]
struct Tally {
    /// Microseconds from due time to the end of the response, measured requests only.
    latencies: Vec<u64>,
    statuses: BTreeMap<String, u64>,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn main() {
    // `cargo bench` passes `--bench`; this binary takes no arguments.
    let url = std::env::var("OPENLOOP_URL").expect("OPENLOOP_URL: the endpoint to load");
    let body_path = std::env::var("OPENLOOP_BODY").expect("OPENLOOP_BODY: the request body file");
    let body = bytes::Bytes::from(
        std::fs::read(&body_path).unwrap_or_else(|e| panic!("OPENLOOP_BODY {body_path}: {e}")),
    );
    let mut headers = HeaderMap::new();
    for line in std::env::var("OPENLOOP_HEADERS")
        .unwrap_or_default()
        .lines()
    {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("OPENLOOP_HEADERS line {line:?} is not `Name: value`"));
        headers.insert(
            HeaderName::from_bytes(name.trim().as_bytes()).expect("header name"),
            HeaderValue::from_str(value.trim()).expect("header value"),
        );
    }
    let fresh =
        std::env::var("OPENLOOP_FRESH_HEADER").unwrap_or_else(|_| "X-GitHub-Delivery".to_string());
    let fresh = (!fresh.trim().is_empty())
        .then(|| HeaderName::from_bytes(fresh.trim().as_bytes()).expect("fresh header name"));
    let vary = Vary::from_env(&body);
    let first: u64 = env_or("OPENLOOP_FIRST", 0);
    let closed = match std::env::var("OPENLOOP_MODE").unwrap_or_default().trim() {
        "" | "open" => false,
        "closed" => true,
        other => panic!("OPENLOOP_MODE={other:?}: expected open or closed"),
    };
    let rate: f64 = env_or("OPENLOOP_RATE", 2000.0);
    let seconds: f64 = env_or("OPENLOOP_SECONDS", 10.0);
    let warmup: f64 = env_or("OPENLOOP_WARMUP", 2.0);
    let connections: usize = env_or("OPENLOOP_CONNECTIONS", 32);
    assert!(rate > 0.0 && seconds > 0.0 && connections > 0);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if closed {
        runtime.block_on(closed_loop(
            url,
            body,
            headers,
            fresh,
            vary,
            seconds,
            warmup,
            connections,
        ));
        return;
    }
    runtime.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .http1_only()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let slots = Arc::new(Semaphore::new(connections));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let total = ((warmup + seconds) * rate).round() as u64;
        let warm = (warmup * rate).round() as u64;
        let interval = Duration::from_secs_f64(1.0 / rate);
        let start = Instant::now() + Duration::from_millis(50);
        // The schedule is kept by a thread of its own with the operating system's sleep (tens of
        // microseconds late at most), not by tokio's timer, whose 1 ms ticks would send a
        // request up to 1 ms after it was due: late time the latency counts (from `due`), which
        // the server never caused.
        let (due_tx, mut due_rx) = tokio::sync::mpsc::unbounded_channel();
        let pacer = std::thread::spawn(move || {
            for i in 0..total {
                let due = start + interval.mul_f64(i as f64);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                if due_tx.send((i, due)).is_err() {
                    return;
                }
            }
        });
        let mut tasks = Vec::with_capacity(total as usize);
        while let Some((i, due)) = due_rx.recv().await {
            let client = client.clone();
            let slots = slots.clone();
            let tally = tally.clone();
            let (headers, body) = request(&headers, fresh.as_ref(), vary.as_ref(), &body, first + i);
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let _slot = slots.acquire_owned().await.unwrap();
                let status = send(&client, &url, headers, body).await;
                let micros = due.elapsed().as_micros() as u64;
                if i >= warm {
                    let mut t = tally.lock().unwrap();
                    t.latencies.push(micros);
                    *t.statuses.entry(status).or_default() += 1;
                }
            }));
        }
        pacer.join().expect("the pacing thread");
        let sent_in = start.elapsed();
        for t in tasks {
            let _ = t.await;
        }
        let mut t = Arc::try_unwrap(tally)
            .ok()
            .expect("all tasks done")
            .into_inner()
            .unwrap();
        t.latencies.sort_unstable();
        let measured = t.latencies.len() as f64;
        let achieved = measured / (sent_in.as_secs_f64() - warmup).max(f64::MIN_POSITIVE);
        let summary = json!({
            "rate": rate,
            "achieved": (achieved * 10.0).round() / 10.0,
            "requests": t.latencies.len(),
            "p50_ms": percentile(&t.latencies, 50.0),
            "p90_ms": percentile(&t.latencies, 90.0),
            "p99_ms": percentile(&t.latencies, 99.0),
            "p999_ms": percentile(&t.latencies, 99.9),
            "max_ms": percentile(&t.latencies, 100.0),
            "statuses": t.statuses,
            "fresh_header": fresh.as_ref().map(|h| h.as_str().to_string()),
            "unique_bodies": vary.is_some(),
        });
        println!(
            "open loop at {rate}/s for {seconds}s (after {warmup}s warm-up), {connections} connections: \
             p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; statuses {:?}",
            percentile(&t.latencies, 50.0),
            percentile(&t.latencies, 99.0),
            percentile(&t.latencies, 99.9),
            percentile(&t.latencies, 100.0),
            t.statuses
        );
        println!("openloop: {summary}");
    });
}

/// Unique, signed bodies (`OPENLOOP_SIGN_SECRET`, `OPENLOOP_VARY`).
#[derive(Clone)]
struct Vary {
    body: Vec<u8>,
    at: usize,
    width: usize,
    secret: Vec<u8>,
}

impl Vary {
    fn from_env(body: &[u8]) -> Option<Vary> {
        let secret = std::env::var("OPENLOOP_SIGN_SECRET").ok()?;
        let marker = std::env::var("OPENLOOP_VARY")
            .expect("OPENLOOP_VARY: the digits of the body to replace by a request number");
        assert!(
            !marker.is_empty() && marker.bytes().all(|b| b.is_ascii_digit()),
            "OPENLOOP_VARY={marker:?} must be digits (it stands where a number goes)"
        );
        let at = body
            .windows(marker.len())
            .position(|w| w == marker.as_bytes())
            .unwrap_or_else(|| panic!("OPENLOOP_VARY={marker:?} is not in the body"));
        Some(Vary {
            body: body.to_vec(),
            at,
            width: marker.len(),
            secret: secret.into_bytes(),
        })
    }

    /// Request `n`'s body, and its signature in `headers`.
    fn apply(&self, n: u64, headers: &mut HeaderMap) -> bytes::Bytes {
        let mut body = self.body.clone();
        // 1 followed by the number, zero-padded: the same width, and a valid JSON number (no
        // leading zero).
        let digits = format!("1{n:0width$}", width = self.width - 1);
        assert!(
            digits.len() == self.width,
            "request number {n} overflows OPENLOOP_VARY"
        );
        body[self.at..self.at + self.width].copy_from_slice(digits.as_bytes());
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.secret).expect("any key");
        mac.update(&body);
        let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        headers.insert(
            HeaderName::from_static("x-hub-signature-256"),
            HeaderValue::from_str(&sig).unwrap(),
        );
        bytes::Bytes::from(body)
    }
}

/// `connections` loops, each sending its next request when the previous one is answered, for
/// `warmup` then `seconds`; latency from send to answer.
#[allow(clippy::too_many_arguments)]
async fn closed_loop(
    url: String,
    body: bytes::Bytes,
    headers: HeaderMap,
    fresh: Option<HeaderName>,
    vary: Option<Vary>,
    seconds: f64,
    warmup: f64,
    connections: usize,
) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .http1_only()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let first: u64 = env_or("OPENLOOP_FIRST", 0);
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(first));
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(warmup);
    let end = measure_from + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url, body, headers, fresh, vary, counter) = (
            client.clone(),
            url.clone(),
            body.clone(),
            headers.clone(),
            fresh.clone(),
            vary.clone(),
            counter.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (headers, body) = request(&headers, fresh.as_ref(), vary.as_ref(), &body, n);
                let status = send(&client, &url, headers, body).await;
                if sent >= measure_from && Instant::now() <= end {
                    tally.latencies.push(sent.elapsed().as_micros() as u64);
                    *tally.statuses.entry(status).or_default() += 1;
                }
            }
            tally
        }));
    }
    let mut all = Tally::default();
    for t in tasks {
        let t = t.await.unwrap();
        all.latencies.extend(t.latencies);
        for (k, v) in t.statuses {
            *all.statuses.entry(k).or_default() += v;
        }
    }
    all.latencies.sort_unstable();
    let achieved = all.latencies.len() as f64 / seconds;
    let summary = json!({
        "mode": "closed",
        "connections": connections,
        "achieved": (achieved * 10.0).round() / 10.0,
        "requests": all.latencies.len(),
        "p50_ms": percentile(&all.latencies, 50.0),
        "p99_ms": percentile(&all.latencies, 99.0),
        "p999_ms": percentile(&all.latencies, 99.9),
        "max_ms": percentile(&all.latencies, 100.0),
        "statuses": all.statuses,
        "unique_bodies": vary.is_some(),
    });
    println!(
        "closed loop, {connections} connections, {seconds}s after {warmup}s warm-up: {achieved:.0} requests/s, \
         p50 {:.2} ms, p99 {:.2} ms; statuses {:?}",
        percentile(&all.latencies, 50.0),
        percentile(&all.latencies, 99.0),
        all.statuses
    );
    println!("openloop: {summary}");
}

/// Request `n`'s headers and body: a fresh value in the `fresh` header, and with `vary` a
/// unique signed body.
fn request(
    headers: &HeaderMap,
    fresh: Option<&HeaderName>,
    vary: Option<&Vary>,
    body: &bytes::Bytes,
    n: u64,
) -> (HeaderMap, bytes::Bytes) {
    let mut headers = headers.clone();
    if let Some(name) = fresh {
        headers.insert(
            name.clone(),
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).unwrap(),
        );
    }
    let body = match vary {
        Some(v) => v.apply(n, &mut headers),
        None => body.clone(),
    };
    (headers, body)
}

/// POSTs one request and reads the answer: its status code, `timeout` or `error`.
async fn send(
    client: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> String {
    match client.post(url).headers(headers).body(body).send().await {
        Ok(r) => {
            let status = r.status().as_u16().to_string();
            let _ = r.bytes().await;
            status
        }
        Err(e) if e.is_timeout() => "timeout".to_string(),
        Err(_) => "error".to_string(),
    }
}
