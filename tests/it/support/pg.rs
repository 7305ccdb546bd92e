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
