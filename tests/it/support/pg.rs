//! PostgreSQL for tests: one fresh schema per test, a loud skip when the server is absent
//! (`LEVER_REQUIRE_POSTGRES=1` turns the skip into a failure, as `.ci/run` does).

use std::io::Write;
use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, PgConnection};

pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn url() -> String {
    std::env::var("LEVER_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_string())
}

pub fn required() -> bool {
    std::env::var("LEVER_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// Written straight to the process's stderr: libtest captures `eprintln!` of passing tests,
/// and a skipped suite must be visible in CI logs.
pub fn loud(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Whether PostgreSQL answers, probed once per test binary.
pub async fn available() -> Result<(), String> {
    static PROBE: tokio::sync::OnceCell<Result<(), String>> = tokio::sync::OnceCell::const_new();
    PROBE
        .get_or_init(|| async {
            match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&url())).await
            {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    Ok(())
                }
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("timed out after 5 s".to_string()),
            }
        })
        .await
        .clone()
}

/// `Some(url)` when PostgreSQL can be used by `test`; otherwise prints the loud skip line
/// (or panics when PostgreSQL is required).
pub async fn or_skip(test: &str) -> Option<String> {
    match available().await {
        Ok(()) => Some(url()),
        Err(e) if required() => panic!(
            "{test}: PostgreSQL required (LEVER_REQUIRE_POSTGRES=1) but {}: {e}",
            url()
        ),
        Err(e) => {
            loud(&format!(
                "*** SKIPPED: PostgreSQL test {test} (cannot connect to {}: {e}) ***",
                url()
            ));
            None
        }
    }
}

/// A schema that exists for the life of the value and is dropped afterwards.
pub struct Schema {
    pub url: String,
    pub name: String,
}

impl Schema {
    pub async fn create(url: &str) -> Schema {
        let name = format!("lever_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(url).await.expect("admin connection");
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut admin)
            .await
            .expect("create schema");
        let _ = admin.close().await;
        Schema {
            url: url.to_string(),
            name,
        }
    }

    /// A `DATABASE_URL` whose connections use this schema (`search_path` in `options`), for
    /// code that takes a URL only (`lever::store::open`).
    pub fn database_url(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-c%20search_path%3D{}", self.url, self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop runs inside an async test: do the blocking cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&url).await {
                    let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {name} CASCADE"
                    )))
                    .execute(&mut admin)
                    .await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

/// A loopback relay between a store and PostgreSQL that keeps what the client sent, message
/// writes as they came (in the clear: its URL asks for no TLS). A ping, an empty `Sync`, is a
/// write of its own, exactly `S` and the length 4; a simple query such as `BEGIN` shows its text.
pub struct Relay {
    /// The database URL through the relay.
    pub url: String,
    sent: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

impl Relay {
    /// Relays to the server of `direct` (a database URL), for as long as the test runs.
    pub async fn start(direct: &str) -> Relay {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let direct = url::Url::parse(direct).expect("a database URL");
        let server = (
            direct.host_str().expect("a host").to_string(),
            direct.port().unwrap_or(5432),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let mut relayed = direct.clone();
        relayed.set_host(Some("127.0.0.1")).expect("a host");
        relayed
            .set_port(Some(listener.local_addr().expect("its address").port()))
            .expect("a port");
        relayed.query_pairs_mut().append_pair("sslmode", "disable");
        let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = sent.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = tokio::net::TcpStream::connect((server.0.as_str(), server.1))
                    .await
                    .expect("PostgreSQL");
                // As the store's own connections do (and `store::postgres_connections_send_
                // without_delay`, in the same process, checks every socket to the server).
                upstream.set_nodelay(true).expect("TCP_NODELAY");
                client.set_nodelay(true).expect("TCP_NODELAY");
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = upstream.into_split();
                let kept = kept.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = from_client.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        kept.lock()
                            .expect("the relay's log")
                            .push(buf[..n].to_vec());
                        if to_server.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                });
            }
        });
        Relay {
            url: relayed.to_string(),
            sent,
        }
    }

    /// Forgets what was sent so far.
    pub fn clear(&self) {
        self.sent.lock().expect("the relay's log").clear();
    }

    /// Pings sent since the last [`clear`](Self::clear).
    pub fn pings(&self) -> usize {
        let sent = self.sent.lock().expect("the relay's log");
        sent.iter().filter(|w| w[..] == *b"S\0\0\0\x04").count()
    }

    /// Writes since the last [`clear`](Self::clear) that contain `needle`.
    pub fn containing(&self, needle: &[u8]) -> usize {
        let sent = self.sent.lock().expect("the relay's log");
        sent.iter()
            .filter(|w| w.windows(needle.len()).any(|x| x == needle))
            .count()
    }
}
