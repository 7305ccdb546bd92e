//! A fresh database of one backend, before Lever opens it: its `DATABASE_URL`, raw SQL with
//! the literals of its dialect, and 64600c1's schema.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sqlx::{AssertSqlSafe, PgPool, SqlitePool};

use lever::store::{PostgresStore, SqliteStore};

use crate::support::app::root;
use crate::support::pg;

/// An empty database (a temporary SQLite file, or a fresh PostgreSQL schema dropped
/// afterwards), not migrated.
pub struct Fresh {
    /// What `lever serve` would be given as `DATABASE_URL`.
    pub url: String,
    pub raw: Raw,
    _dir: Option<tempfile::TempDir>,
    _schema: Option<pg::Schema>,
}

impl Fresh {
    pub async fn sqlite() -> Fresh {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("lever.db").display());
        let store = SqliteStore::connect(&url).await.expect("sqlite");
        Fresh {
            url,
            raw: Raw::Sqlite(store.pool().clone()),
            _dir: Some(dir),
            _schema: None,
        }
    }

    /// `None` (after the loud skip line) when PostgreSQL is absent and not required.
    pub async fn postgres(test: &str) -> Option<Fresh> {
        let schema = pg::Schema::create(&pg::or_skip(test).await?).await;
        let url = schema.database_url();
        let store = PostgresStore::connect(&url).await.expect("postgres");
        Some(Fresh {
            url,
            raw: Raw::Postgres(store.pool().clone()),
            _dir: None,
            _schema: Some(schema),
        })
    }
}

/// Raw SQL on either backend. Literals are built by the test from its own values (`'` doubled).
pub enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A text literal.
pub fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub fn q_opt(s: Option<&str>) -> String {
    s.map(q).unwrap_or_else(|| "NULL".into())
}

impl Raw {
    pub fn backend(&self) -> &'static str {
        match self {
            Raw::Sqlite(_) => "sqlite",
            Raw::Postgres(_) => "postgres",
        }
    }

    /// A timestamp literal: INTEGER microseconds on SQLite, TIMESTAMPTZ on PostgreSQL.
    pub fn ts(&self, at: DateTime<Utc>) -> String {
        match self {
            Raw::Sqlite(_) => at.timestamp_micros().to_string(),
            Raw::Postgres(_) => format!(
                "{}::timestamptz",
                q(&at.to_rfc3339_opts(SecondsFormat::Micros, true))
            ),
        }
    }

    pub fn ts_opt(&self, at: Option<DateTime<Utc>>) -> String {
        at.map(|at| self.ts(at)).unwrap_or_else(|| "NULL".into())
    }

    /// A JSON literal: TEXT on SQLite, JSONB on PostgreSQL.
    pub fn json(&self, v: &Value) -> String {
        match self {
            Raw::Sqlite(_) => q(&v.to_string()),
            Raw::Postgres(_) => format!("{}::jsonb", q(&v.to_string())),
        }
    }

    /// Runs statements separated by `;`.
    pub async fn exec(&self, sql: &str) {
        let sql = AssertSqlSafe(sql.to_string());
        match self {
            Raw::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await.map(drop),
            Raw::Postgres(p) => sqlx::raw_sql(sql).execute(p).await.map(drop),
        }
        .unwrap_or_else(|e| panic!("{}: {e}", self.backend()));
    }

    pub async fn count(&self, table: &str) -> i64 {
        let sql = AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
        match self {
            Raw::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await,
            Raw::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await,
        }
        .unwrap_or_else(|e| panic!("{}: count {table}: {e}", self.backend()))
    }

    /// Row counts of every table 64600c1 had.
    pub async fn counts(&self) -> BTreeMap<&'static str, i64> {
        let mut out = BTreeMap::new();
        for table in ["findings", "groups", "jobs", "deliveries", "audit", "kv"] {
            out.insert(table, self.count(table).await);
        }
        out
    }

    pub async fn job_ids(&self) -> Vec<i64> {
        let sql = "SELECT id FROM jobs ORDER BY id";
        match self {
            Raw::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await,
            Raw::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await,
        }
        .unwrap()
    }

    /// Every group's `data` column as stored.
    pub async fn group_data(&self) -> BTreeMap<String, Value> {
        let rows: Vec<(String, String)> = match self {
            Raw::Sqlite(p) => {
                sqlx::query_as("SELECT group_key, data FROM groups")
                    .fetch_all(p)
                    .await
            }
            Raw::Postgres(p) => {
                sqlx::query_as("SELECT group_key, data::text FROM groups")
                    .fetch_all(p)
                    .await
            }
        }
        .unwrap();
        rows.into_iter()
            .map(|(k, d)| (k, serde_json::from_str(&d).unwrap()))
            .collect()
    }

    /// What 691e1c2 did when it opened 64600c1's database: this version's migrations up to
    /// 0002 (the files 691e1c2 shipped, unchanged since), applied by sqlx's migrator.
    pub async fn migrate_like_691e1c2(&self) {
        let dir = root().join("migrations").join(self.backend());
        let mut migrator = sqlx::migrate::Migrator::new(dir.as_path())
            .await
            .expect("this version's migrations");
        let upto_0002: Vec<_> = (migrator.iter())
            .filter(|m| m.version <= 2)
            .cloned()
            .collect();
        assert_eq!(upto_0002.len(), 2, "691e1c2 shipped 0001 and 0002");
        migrator.migrations = upto_0002.into();
        match self {
            Raw::Sqlite(p) => migrator.run(p).await,
            Raw::Postgres(p) => migrator.run(p).await,
        }
        .expect("691e1c2's schema");
        assert_eq!(self.count("_sqlx_migrations").await, 2);
    }

    /// The bytes each delivery stores in its own columns, by id (`payload` before 0003;
    /// `body_sha256`, `body` after).
    pub async fn delivery_bytes(&self, columns: &str) -> BTreeMap<String, i64> {
        let sql = AssertSqlSafe(format!(
            "SELECT id, CAST(COALESCE({columns}, 0) AS BIGINT) FROM deliveries"
        ));
        let rows: Vec<(String, i64)> = match self {
            Raw::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await,
            Raw::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await,
        }
        .unwrap_or_else(|e| panic!("{}: delivery sizes: {e}", self.backend()));
        rows.into_iter().collect()
    }

    /// 64600c1's schema, made as 64600c1 made it: its one migration applied by sqlx's
    /// migrator, which records it in `_sqlx_migrations` with its checksum. That migration is
    /// this version's `migrations/<backend>/0001_initial.sql` (sqlx refuses to start on a
    /// database whose applied migration changed, so the file never changes): it is copied
    /// alone into a directory of its own.
    pub async fn migrate_like_64600c1(&self) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::copy(
            root()
                .join("migrations")
                .join(self.backend())
                .join("0001_initial.sql"),
            dir.join("0001_initial.sql"),
        )
        .expect("migration 0001");
        let migrator = sqlx::migrate::Migrator::new(dir)
            .await
            .expect("64600c1's migrations");
        assert_eq!(migrator.iter().count(), 1, "64600c1 shipped one migration");
        match self {
            Raw::Sqlite(p) => migrator.run(p).await,
            Raw::Postgres(p) => migrator.run(p).await,
        }
        .expect("64600c1's schema");
        assert_eq!(self.count("_sqlx_migrations").await, 1);
    }
}
